//! The Git client of source-controller: list a remote's references, resolve `spec.ref`
//! against them, check out one commit into a folder, and verify its signatures.
//!
//! A reconcile uses it in this order:
//!
//! ```no_run
//! # async fn demo(spec: &source_controller::api::v1::GitRepositorySpec,
//! #     secret: &std::collections::BTreeMap<String, Vec<u8>>,
//! #     last_revision: Option<&str>) -> Result<(), source_controller::git::GitError> {
//! use source_controller::git::{self, CheckoutOptions, GitAuth};
//!
//! let auth = GitAuth::from_secret(secret, &spec.url)?;
//! // 1. Ask the remote first: cheap, and an unchanged revision needs no clone.
//! let refs = git::remote_refs_for(&spec.url, &auth, &spec.checkout(), spec.timeout()).await?;
//! let resolved = git::resolve(&spec.checkout(), &refs)?;
//! if last_revision == Some(resolved.revision.as_str()) {
//!     return Ok(());
//! }
//! // 2. Fetch only that commit and write its files.
//! let dir = tempfile::tempdir().map_err(|e| git::GitError::Io { context: "tempdir".into(), source: e })?;
//! let options = CheckoutOptions {
//!     sparse_checkout: spec.sparse_checkout.clone(),
//!     recurse_submodules: spec.recurse_submodules,
//!     timeout: spec.timeout(),
//!     ..CheckoutOptions::default()
//! };
//! let commit = git::checkout(&spec.url, &auth, &resolved, dir.path(), &options).await?;
//! // 3. Verify, if asked to.
//! # let keys = git::TrustedKeys::default();
//! let verified = git::verify(&commit, source_controller::api::v1::GitVerificationMode::Head, &keys)?;
//! # let _ = verified; Ok(()) }
//! ```
//!
//! # Transports
//! - HTTP(S) through gix's HTTP transport on the workspace's `reqwest` (rustls with the
//!   process-wide `ring` provider, see [`toolkit_sdk::tls`]); the system CAs plus `ca.crt`.
//! - SSH through the `ssh` program (OpenSSH), as Git itself does: the identity and
//!   `known_hosts` of the secret are written to a private temporary folder for the duration of
//!   the operation, with strict host key checking and nothing read from the user's or the
//!   system's SSH configuration. The `ssh` program must be installed.
//!
//! # Guarantees
//! - Nothing from the machine's Git configuration, credential helpers or environment
//!   (`GIT_*`) changes the outcome; no prompt is ever shown.
//! - Each operation returns within its timeout (plus a small margin), whether or not the
//!   host answers; work still running in the background is told to stop.
//! - Errors and logs never contain secret material; URLs are printed without user info.
//!
//! # Caveats
//! - A commit given by hash is fetched by hash, alone (GitHub, GitLab and `git http-backend`
//!   with `uploadpack.allowAnySHA1InWant` serve that); when the server refuses, the branch (or
//!   every branch) is fetched with its history and the commit looked up there. With a branch,
//!   the branch must exist, but a commit fetched by hash is not checked to be on it.
//! - On a timeout the call returns at once, but an `ssh` process may live on until its own
//!   limits (`ConnectTimeout` set to the operation's timeout, then keep-alives) end it.
//! - Over HTTP(S), a password or token is sent only to the superproject's host: submodules
//!   elsewhere are fetched anonymously. Over SSH, submodules use the same identity and
//!   `known_hosts`.
//! - The checkout has no `.git` folder: it is the tree of the commit (and of its submodules),
//!   ready to archive. Symbolic links are written as links; file modes keep only the
//!   executable bit.

mod auth;
mod checkout;
mod commit;
mod error;
mod refs;
mod transport;
mod url;
mod verify;

pub use auth::{DEFAULT_SSH_USER, GitAuth};
pub use checkout::CheckoutOptions;
pub use commit::{CommitInfo, Person, TagInfo};
pub use error::{BoxError, GitError};
pub use refs::{RefTarget, RemoteRefs, ResolvedRef, resolve};
pub use verify::{TrustedKeys, Verified, verify};

use std::path::Path;
use std::time::Duration;

use crate::api::v1::GitCheckout;

/// Lists the references of the remote at `url` (`git ls-remote`): branches, tags with the
/// commits annotated tags point to, other references such as `refs/pull/1/head`, and the
/// branch `HEAD` points to.
///
/// # Errors
/// [`GitError::InvalidUrl`], [`GitError::AuthenticationFailed`],
/// [`GitError::HostKeyMismatch`], [`GitError::CertificateInvalid`],
/// [`GitError::RepositoryNotFound`], [`GitError::RemoteUnreachable`], or
/// [`GitError::Timeout`] after `timeout`.
pub async fn remote_refs(
    url: &str,
    auth: &GitAuth,
    timeout: Duration,
) -> Result<RemoteRefs, GitError> {
    let parsed = url::GitUrl::parse(url)?;
    let auth = auth.clone();
    let target = parsed.clone();
    transport::run_with_timeout("listing references", &target, timeout, move |ctx| {
        transport::list_refs(&parsed, &auth, &[], ctx)
    })
    .await
}

/// Like [`remote_refs`], but asks the remote only for the references `checkout` can resolve
/// to (the branch, the tag, every tag for a SemVer range, the named reference; only `HEAD`
/// for a bare commit). On hosts with many references (every pull request has some) this is
/// the cheap way to poll; servers that do not speak Git protocol v2 send every reference
/// anyway.
///
/// # Errors
/// As [`remote_refs`].
pub async fn remote_refs_for(
    url: &str,
    auth: &GitAuth,
    checkout: &GitCheckout,
    timeout: Duration,
) -> Result<RemoteRefs, GitError> {
    let parsed = url::GitUrl::parse(url)?;
    let auth = auth.clone();
    let target = parsed.clone();
    let refspecs = listing_refspecs(checkout);
    transport::run_with_timeout("listing references", &target, timeout, move |ctx| {
        transport::list_refs(&parsed, &auth, &refspecs, ctx)
    })
    .await
}

/// The refspecs whose sources cover what `checkout` may resolve to.
fn listing_refspecs(checkout: &GitCheckout) -> Vec<String> {
    let source = match checkout {
        GitCheckout::Branch(branch)
        | GitCheckout::Commit {
            branch: Some(branch),
            ..
        } => format!("refs/heads/{branch}"),
        GitCheckout::Tag(tag) => format!("refs/tags/{tag}"),
        GitCheckout::SemVer(_) => return vec!["refs/tags/*:refs/ferroflux/tags/*".to_string()],
        GitCheckout::Name(name) => name.clone(),
        GitCheckout::Commit { branch: None, .. } => "HEAD".to_string(),
    };
    vec![format!("{source}:refs/ferroflux/listed")]
}

/// Fetches the commit of `resolved` from `url` and writes its files (and, if asked, those of
/// its submodules) into `dest`, which must be empty or not exist yet.
///
/// Returns the commit with its signature and, when the reference is a tag, the tag; the
/// repository data itself is discarded.
///
/// # Errors
/// Those of [`remote_refs`], plus [`GitError::RefNotFound`] when the commit cannot be
/// fetched, [`GitError::SparseCheckoutPathNotFound`], [`GitError::TooLarge`],
/// [`GitError::Submodule`], [`GitError::Checkout`] and [`GitError::Io`].
pub async fn checkout(
    url: &str,
    auth: &GitAuth,
    resolved: &ResolvedRef,
    dest: &Path,
    options: &CheckoutOptions,
) -> Result<CommitInfo, GitError> {
    let parsed = url::GitUrl::parse(url)?;
    let auth = auth.clone();
    let resolved = resolved.clone();
    let dest = dest.to_path_buf();
    let options = options.clone();
    let timeout = options.timeout;
    let target = parsed.clone();
    transport::run_with_timeout("checkout", &target, timeout, move |ctx| {
        checkout::checkout(&parsed, &auth, &resolved, &dest, &options, ctx)
    })
    .await
}
