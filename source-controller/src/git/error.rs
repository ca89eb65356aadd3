//! The error of every Git operation, precise enough to pick a condition reason.

use std::time::Duration;

use toolkit_sdk::semver::SemverError;

/// A boxed error from a lower layer (gix, the HTTP client, the file system), kept as the
/// [`std::error::Error::source`] of a [`GitError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a Git operation.
///
/// Messages never contain secret material: credentials, keys and passphrases are neither
/// printed nor kept in sources. URLs are printed without their user-info part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// The URL cannot be used: unparsable, an unsupported scheme, or credentials that do not
    /// fit it (an SSH key for an HTTPS URL).
    #[error("invalid Git URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL, without user info.
        url: String,
        /// Why it cannot be used.
        reason: String,
    },

    /// The credentials secret is incomplete or malformed (a key that does not parse, `password`
    /// without `username`, SSH without `known_hosts`). Names the key, never its value.
    #[error("invalid Git credentials: {0}")]
    InvalidCredentials(String),

    /// The remote rejected the credentials (HTTP 401/403, SSH `Permission denied`).
    #[error("authentication to {url} failed")]
    AuthenticationFailed {
        /// The URL, without user info.
        url: String,
        /// What the transport reported.
        #[source]
        source: Option<BoxError>,
    },

    /// The SSH host key of the remote is not in `known_hosts` (or differs from it).
    #[error("host key verification of {url} failed: the host key does not match known_hosts")]
    HostKeyMismatch {
        /// The URL, without user info.
        url: String,
    },

    /// The TLS certificate of the remote is not trusted (unknown CA, wrong host name).
    #[error("TLS certificate of {url} is not trusted")]
    CertificateInvalid {
        /// The URL, without user info.
        url: String,
        /// What the TLS layer reported.
        #[source]
        source: Option<BoxError>,
    },

    /// The repository does not exist on the remote (HTTP 404, `does not appear to be a git
    /// repository`).
    #[error("repository {url} not found")]
    RepositoryNotFound {
        /// The URL, without user info.
        url: String,
    },

    /// The remote cannot be reached or broke the connection (DNS, connection refused, reset,
    /// a server error).
    #[error("cannot reach {url}")]
    RemoteUnreachable {
        /// The URL, without user info.
        url: String,
        /// What the transport reported.
        #[source]
        source: Option<BoxError>,
    },

    /// The operation did not finish within its time limit (`spec.timeout`).
    #[error("{operation} of {url} timed out after {timeout:?}")]
    Timeout {
        /// `listing references` or `checkout`.
        operation: &'static str,
        /// The URL, without user info.
        url: String,
        /// The time limit that was exceeded.
        timeout: Duration,
    },

    /// The branch, tag, reference or commit does not exist on the remote.
    #[error("{kind} '{name}' not found in {url}")]
    RefNotFound {
        /// `branch`, `tag`, `reference` or `commit`.
        kind: &'static str,
        /// The name as the user wrote it.
        name: String,
        /// The URL, without user info.
        url: String,
    },

    /// No tag of the remote is a version within the SemVer range.
    #[error("no tag in {url} matches the SemVer range '{range}'")]
    NoMatchingTag {
        /// The range as written in `spec.ref.semver`.
        range: String,
        /// The URL, without user info.
        url: String,
    },

    /// `spec.ref.semver` is not a valid range.
    #[error("invalid SemVer range '{range}'")]
    InvalidSemver {
        /// The range as written.
        range: String,
        /// Why it does not parse.
        #[source]
        source: SemverError,
    },

    /// `spec.ref` cannot be used as written (a commit that is not a full hash).
    #[error("invalid reference: {0}")]
    InvalidReference(String),

    /// A directory of `spec.sparseCheckout` does not exist in the commit.
    #[error("sparse checkout directory '{0}' does not exist in the commit")]
    SparseCheckoutPathNotFound(String),

    /// The fetch failed in the Git protocol itself (a malformed response, a pack that does not
    /// check out).
    #[error("fetching from {url} failed")]
    Fetch {
        /// The URL, without user info.
        url: String,
        /// What gix reported.
        #[source]
        source: BoxError,
    },

    /// Writing the worktree failed after the objects were fetched.
    #[error("checkout of commit {commit} failed")]
    Checkout {
        /// The commit being checked out.
        commit: String,
        /// What failed.
        #[source]
        source: BoxError,
    },

    /// The checked-out files exceed [`super::CheckoutOptions::max_size`].
    #[error("the checkout exceeds the size limit of {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },

    /// A submodule could not be checked out.
    #[error("submodule '{path}' failed")]
    Submodule {
        /// The submodule's path in the superproject.
        path: String,
        /// Why it failed.
        #[source]
        source: Box<GitError>,
    },

    /// A local file-system operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// The trusted keys of `spec.verify.secretRef` are missing or do not parse. Names the
    /// secret key, never its value.
    #[error("invalid verification keys: {0}")]
    InvalidKeys(String),

    /// A signature is missing, malformed, or made by none of the trusted keys.
    #[error("signature verification of {object} failed: {reason}")]
    VerificationFailed {
        /// `commit <hash>` or `tag <name>`.
        object: String,
        /// Why (no signature, no trusted key made it, an unsupported format).
        reason: String,
    },
}

impl GitError {
    /// Whether trying again later may succeed without a change to the object's spec: the
    /// network, the remote, a timeout, a ref that a push may create, and anything a change to
    /// a Secret can fix (credentials, trusted keys), since editing a Secret does not bump the
    /// object's generation.
    pub fn is_retryable(&self) -> bool {
        match self {
            GitError::RemoteUnreachable { .. }
            | GitError::Timeout { .. }
            | GitError::Fetch { .. }
            | GitError::RefNotFound { .. }
            | GitError::NoMatchingTag { .. }
            | GitError::RepositoryNotFound { .. }
            | GitError::AuthenticationFailed { .. }
            | GitError::CertificateInvalid { .. }
            | GitError::HostKeyMismatch { .. }
            | GitError::Io { .. }
            | GitError::Checkout { .. }
            | GitError::SparseCheckoutPathNotFound(_)
            | GitError::VerificationFailed { .. }
            | GitError::InvalidCredentials(_)
            | GitError::InvalidKeys(_) => true,
            GitError::Submodule { source, .. } => source.is_retryable(),
            GitError::InvalidUrl { .. }
            | GitError::InvalidSemver { .. }
            | GitError::InvalidReference(_)
            | GitError::TooLarge { .. } => false,
        }
    }

    /// Whether the object cannot succeed until its spec changes: a malformed URL, SemVer
    /// range or reference, or an oversized checkout. The reconciler marks these `Stalled`.
    pub fn is_stalled(&self) -> bool {
        match self {
            GitError::Submodule { source, .. } => source.is_stalled(),
            other => !other.is_retryable(),
        }
    }

    /// Whether the remote rejected the credentials or the host could not be authenticated
    /// (wrong password, unknown SSH key, host key or TLS certificate not trusted).
    pub fn is_auth(&self) -> bool {
        match self {
            GitError::AuthenticationFailed { .. }
            | GitError::HostKeyMismatch { .. }
            | GitError::CertificateInvalid { .. } => true,
            GitError::Submodule { source, .. } => source.is_auth(),
            _ => false,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        GitError::Io {
            context: context.into(),
            source,
        }
    }
}
