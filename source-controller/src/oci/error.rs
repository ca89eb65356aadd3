//! The error type of registry operations.

use std::io;
use std::time::Duration;

use toolkit_sdk::conditions::reasons;

/// Why an OCI artifact could not be resolved or pulled.
///
/// Messages never contain credentials: secrets are not echoed, and registry answers are
/// reduced to their status and error codes.
///
/// [`OciError::is_retryable`] tells whether trying again later, unchanged, can succeed, and
/// [`OciError::reason`] gives the Flux condition reason for it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// `spec.url` is not `oci://<host>/<repository>` (or carries a tag or digest).
    #[error("URL `{url}` is invalid: {why}; expected `oci://<host>/<repository>`")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: String,
    },

    /// `spec.ref.digest` is not a valid `<algorithm>:<hex>` digest.
    #[error("digest `{digest}` is invalid: {why}")]
    InvalidDigest {
        /// The digest as given.
        digest: String,
        /// What is wrong with it.
        why: String,
    },

    /// `spec.ref.semver` is not a valid SemVer range.
    #[error("semver range `{range}` is invalid: {why}")]
    InvalidSemver {
        /// The range as given.
        range: String,
        /// What is wrong with it.
        why: String,
    },

    /// `spec.ref.semverFilter` is not a valid regular expression.
    #[error("semverFilter `{filter}` is not a valid regular expression")]
    InvalidSemverFilter {
        /// The filter as given.
        filter: String,
        /// The regex compiler's complaint.
        #[source]
        source: Box<regex::Error>,
    },

    /// The docker config JSON of the credentials secret cannot be used.
    #[error("registry credentials are invalid: {why}")]
    InvalidCredentials {
        /// What is wrong with them (never their content).
        why: String,
    },

    /// The registry refused access (HTTP 401/403, or a failed token exchange).
    #[error(
        "registry {registry} refused access to {repository} {}",
        if *.with_credentials { "with the given credentials" } else { "without credentials (anonymous)" }
    )]
    AuthenticationFailed {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// Whether credentials were sent.
        with_credentials: bool,
    },

    /// The repository, tag, manifest or blob does not exist.
    #[error("{what} not found in {registry}/{repository}")]
    NotFound {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// What was missing: `tag 'v1'`, `manifest sha256:...`, `repository`, `blob sha256:...`.
        what: String,
    },

    /// No tag of the repository satisfies the SemVer range (and filter).
    #[error(
        "no tag of {registry}/{repository} matches semver `{range}`{} ({tags} tags listed)",
        filter.as_ref().map(|f| format!(" with filter `{f}`")).unwrap_or_default()
    )]
    NoMatchingTag {
        /// The registry host.
        registry: String,
        /// The repository.
        repository: String,
        /// The SemVer range.
        range: String,
        /// The tag filter, if any.
        filter: Option<String>,
        /// How many tags the registry listed.
        tags: usize,
    },

    /// The manifest has a media type this client does not handle.
    #[error("manifest {digest} has unsupported media type `{media_type}`")]
    UnsupportedManifest {
        /// The manifest digest.
        digest: String,
        /// Its media type.
        media_type: String,
    },

    /// The manifest could not be parsed.
    #[error("manifest {digest} is malformed")]
    InvalidManifest {
        /// The manifest digest.
        digest: String,
        /// The parser's complaint.
        #[source]
        source: serde_json::Error,
    },

    /// An image index has no image for the platform this controller pulls (`linux/amd64`).
    #[error("image index {digest} has no manifest for platform {platform}")]
    NoMatchingPlatform {
        /// The index digest.
        digest: String,
        /// The platform looked for.
        platform: String,
    },

    /// The image manifest has no layers.
    #[error("no layers found in artifact {digest}")]
    NoLayers {
        /// The image manifest digest.
        digest: String,
    },

    /// No layer has the media type of `spec.layerSelector.mediaType`.
    #[error("failed to find layer with media type '{media_type}' in artifact {digest}")]
    LayerNotFound {
        /// The media type looked for.
        media_type: String,
        /// The image manifest digest.
        digest: String,
    },

    /// The layer to extract is not a gzip-compressed tarball.
    #[error(
        "layer {digest} ({media_type}) is not a gzip-compressed tarball; use operation `copy` to keep it as-is"
    )]
    NotATarball {
        /// The layer digest.
        digest: String,
        /// The layer media type.
        media_type: String,
        /// What the decoder found wrong.
        #[source]
        source: io::Error,
    },

    /// A size or entry-count limit was exceeded (a tar bomb, or a layer over the download limit).
    #[error("layer {digest} exceeds the {what} limit of {limit}")]
    LimitExceeded {
        /// The layer digest.
        digest: String,
        /// Which limit: `download size (bytes)`, `extracted size (bytes)` or `entry count`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },

    /// A tar entry would land outside the destination (or is otherwise refused).
    #[error("layer {digest} has an unsafe entry `{path}`: {why}")]
    UnsafeEntry {
        /// The layer digest.
        digest: String,
        /// The entry path as written in the archive.
        path: String,
        /// Why it was refused.
        why: String,
    },

    /// Downloaded bytes do not hash to the digest they were asked by.
    #[error("{what} does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What was downloaded (`manifest`, `layer`).
        what: &'static str,
        /// The expected digest.
        expected: String,
        /// The digest of the bytes received.
        actual: String,
    },

    /// The operation did not finish within `spec.timeout`.
    #[error("{operation} on {registry} timed out after {after:?}")]
    Timeout {
        /// The registry host.
        registry: String,
        /// What was being done.
        operation: &'static str,
        /// The time limit.
        after: Duration,
    },

    /// The registry could not be reached (connection refused, DNS, TLS, a broken body).
    #[error("cannot reach registry {registry}")]
    Unreachable {
        /// The registry host.
        registry: String,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The registry answered with an error not covered above (5xx, 429, a protocol error).
    #[error("registry {registry} failed: {message}")]
    Registry {
        /// The registry host.
        registry: String,
        /// HTTP status, when known.
        status: Option<u16>,
        /// The registry's error codes or a short description (no credentials).
        message: String,
    },

    /// A local file system operation failed.
    #[error("{context}")]
    Io {
        /// What was being done, and on which path.
        context: String,
        /// The operating system error.
        #[source]
        source: io::Error,
    },
}

impl OciError {
    /// Whether the same operation, retried soon with nothing changed, may succeed.
    ///
    /// True for network problems, timeouts, server-side errors (5xx, 429), digest mismatches
    /// (content replaced mid-download), missing tags or manifests (they may be pushed) and
    /// local I/O. False for what needs a spec, secret, registry or artifact change: invalid
    /// URL, digest, range or filter, refused credentials, unsupported or malformed manifests,
    /// a missing layer media type, a non-tarball layer, exceeded limits and unsafe entries.
    ///
    /// Only [`is_spec_error`](Self::is_spec_error) errors are final for the object's current
    /// generation (Flux stalls on those). The others can be fixed outside the object (a new
    /// push, a rotated secret, a permission granted), so Flux keeps retrying them with
    /// backoff; a reconciler should too, rather than stall.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::NotFound { .. }
            | Self::NoMatchingTag { .. }
            | Self::DigestMismatch { .. }
            | Self::Timeout { .. }
            | Self::Unreachable { .. }
            | Self::Io { .. } => true,
            Self::Registry { status, .. } => match status {
                Some(code) => *code >= 500 || *code == 408 || *code == 429,
                None => true,
            },
            Self::InvalidUrl { .. }
            | Self::InvalidDigest { .. }
            | Self::InvalidSemver { .. }
            | Self::InvalidSemverFilter { .. }
            | Self::InvalidCredentials { .. }
            | Self::AuthenticationFailed { .. }
            | Self::UnsupportedManifest { .. }
            | Self::InvalidManifest { .. }
            | Self::NoMatchingPlatform { .. }
            | Self::NoLayers { .. }
            | Self::LayerNotFound { .. }
            | Self::NotATarball { .. }
            | Self::LimitExceeded { .. }
            | Self::UnsafeEntry { .. } => false,
        }
    }

    /// Whether the object can never succeed without a spec change (Flux stalls on these):
    /// an invalid URL, digest, SemVer range or filter.
    pub fn is_spec_error(&self) -> bool {
        matches!(
            self,
            Self::InvalidUrl { .. }
                | Self::InvalidDigest { .. }
                | Self::InvalidSemver { .. }
                | Self::InvalidSemverFilter { .. }
        )
    }

    /// The Flux condition reason for this error, as source-controller sets it on
    /// `FetchFailed` / `Ready`:
    ///
    /// - `URLInvalid`: invalid URL or digest;
    /// - `AuthenticationFailed`: unusable credentials secret;
    /// - `ReadOperationFailed`: the tag could not be determined (SemVer range, filter, no
    ///   matching tag);
    /// - `OCIArtifactLayerOperationFailed`: layer selection and extraction (no layers, media
    ///   type not found, not a tarball, limits, unsafe entries);
    /// - `OCIArtifactPullFailed`: everything that talks to the registry (including a refused
    ///   login, as in Flux).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::InvalidUrl { .. } | Self::InvalidDigest { .. } => reasons::URL_INVALID,
            Self::InvalidCredentials { .. } => reasons::AUTHENTICATION_FAILED,
            Self::InvalidSemver { .. }
            | Self::InvalidSemverFilter { .. }
            | Self::NoMatchingTag { .. } => reasons::READ_OPERATION_FAILED,
            Self::NoLayers { .. }
            | Self::LayerNotFound { .. }
            | Self::NotATarball { .. }
            | Self::LimitExceeded { .. }
            | Self::UnsafeEntry { .. } => reasons::OCI_ARTIFACT_LAYER_OPERATION_FAILED,
            Self::AuthenticationFailed { .. }
            | Self::NotFound { .. }
            | Self::UnsupportedManifest { .. }
            | Self::InvalidManifest { .. }
            | Self::NoMatchingPlatform { .. }
            | Self::DigestMismatch { .. }
            | Self::Timeout { .. }
            | Self::Unreachable { .. }
            | Self::Registry { .. }
            | Self::Io { .. } => reasons::OCI_ARTIFACT_PULL_FAILED,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
