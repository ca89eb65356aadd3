//! Fetching artifacts: download, verify, and unpack what a source published.
//!
//! A source (a `GitRepository`, an `OCIRepository`, a third-party kind…) reports its latest
//! artifact in `status.artifact`: a URL served over plain HTTP by the source controller, a
//! revision, a digest (`sha256:<hex>`; `sha384` and `sha512` are accepted too) and a size.
//! The artifact is a gzip-compressed tar archive. [`ArtifactFetcher`] turns that into a
//! directory on local disk that a consumer (kustomize-controller, helm-controller, your own
//! controller) can read.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use toolkit_sdk::artifact_fetch::{ArtifactFetcher, FetchLimits, RetryPolicy};
//!
//! let client = toolkit_sdk::tls::http_client_builder().build()?;
//! let fetcher = ArtifactFetcher::new(client, FetchLimits::default(), RetryPolicy::default());
//! let fetched = fetcher
//!     .fetch(
//!         "http://source-controller.flux-system.svc/gitrepository/apps/podinfo/6b7aab8a.tar.gz",
//!         Some("sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"),
//!         std::path::Path::new("/tmp/work/apps-podinfo"),
//!     )
//!     .await?;
//! println!("{} entries in {}", fetched.entries, fetched.path.display());
//! // Or straight from a source's `status.artifact`:
//! // fetcher.fetch_artifact(&artifact, &dest).await?;
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - The body is streamed to a temporary file next to the destination while it is hashed;
//!   it is never held in memory, and the download stops as soon as it passes
//!   [`FetchLimits::max_download_bytes`].
//! - The digest is verified before anything is unpacked.
//! - The archive is unpacked into a fresh temporary directory next to the destination and
//!   only then renamed into place, replacing a previous extraction. A reader of the
//!   destination path sees the old tree or the new tree, never a partial one. (Replacing an
//!   existing destination takes two renames, so for an instant the path may not exist.)
//! - When anything fails, the destination is left exactly as it was and the temporary
//!   files are removed: the last good extraction stays usable.
//! - No entry can be written outside the destination; see the rules below.
//!
//! # Extraction rules
//!
//! - At most [`FetchLimits::max_entries`] entries and [`FetchLimits::max_extracted_bytes`]
//!   bytes of content; tar metadata between entries is bounded as well.
//! - Entry paths must be relative without `..`; absolute paths and `..` are refused.
//! - Symlinks must be relative and resolve inside the destination; `..` is allowed only at
//!   the start of a target. Nothing is ever written through a symlink, even one pointing
//!   inside (the "symlink, then a file below it" escape).
//! - Hard links must name a regular file extracted earlier from the same archive.
//! - Character and block devices and FIFOs are skipped, not created.
//! - Modes are normalised: `0755` for directories and executable files, `0644` otherwise.
//!   Owners and modification times are not restored.
//!
//! # Errors
//!
//! Every failure is a [`FetchError`] naming what went wrong, with URLs stripped of
//! credentials and query. A 404 is [`FetchError::NotFound`]: the source has not produced
//! the artifact yet, or garbage-collected it after publishing a newer one, so the consumer
//! should requeue rather than report a failure. [`FetchError::is_retryable`] and the
//! conversion into [`ReconcileError`](crate::error::ReconcileError) tell callers what to do next.
//!
//! # Caveats
//!
//! - Two fetches into the same destination at the same time are not coordinated; give each
//!   object its own destination (or serialise fetches per object, as the runtime does).
//! - If a fetch future is dropped while unpacking, unpacking runs to completion on the
//!   blocking thread pool and the destination may still be replaced.
//! - Temporary files are named `.<dest name>.download-*`, `.<dest name>.extract-*` and
//!   `.<dest name>.old-*`; a process killed mid-fetch may leave them behind.

mod digest;
mod error;
mod extract;

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use self::digest::Hasher;
pub use self::digest::{Digest, DigestAlgorithm, DigestParseError};
pub use self::error::FetchError;
use self::error::redact_url;
use crate::api::Artifact;

/// Size limits applied to every fetch, protecting the consumer's disk and memory from an
/// oversized or malicious artifact.
///
/// The defaults fit the artifacts Flux users actually have (Kubernetes manifests, Helm
/// charts, Kustomize overlays; usually well under 10 MiB) with a wide margin, while keeping
/// a single artifact from exhausting a pod's ephemeral storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchLimits {
    /// Largest compressed download accepted, in bytes. Default 512 MiB: far above any
    /// configuration repository, yet a single download cannot run for hours.
    pub max_download_bytes: u64,
    /// Largest total size of the unpacked content, in bytes. Default 2 GiB: four times the
    /// download limit, since configuration text compresses well, and the cap that defeats a
    /// "zip bomb" that inflates a small download into a full disk.
    pub max_extracted_bytes: u64,
    /// Largest number of archive entries (files, directories, links, anything). Default
    /// 100 000: a large monorepo has tens of thousands of files, while millions of tiny
    /// entries would exhaust inodes and time long before bytes.
    pub max_entries: u64,
}

impl FetchLimits {
    /// Default for [`FetchLimits::max_download_bytes`]: 512 MiB.
    pub const DEFAULT_MAX_DOWNLOAD_BYTES: u64 = 512 * 1024 * 1024;
    /// Default for [`FetchLimits::max_extracted_bytes`]: 2 GiB.
    pub const DEFAULT_MAX_EXTRACTED_BYTES: u64 = 2 * 1024 * 1024 * 1024;
    /// Default for [`FetchLimits::max_entries`]: 100 000.
    pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
}

impl Default for FetchLimits {
    fn default() -> Self {
        Self {
            max_download_bytes: Self::DEFAULT_MAX_DOWNLOAD_BYTES,
            max_extracted_bytes: Self::DEFAULT_MAX_EXTRACTED_BYTES,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
        }
    }
}

/// How a download is retried within one [`ArtifactFetcher::fetch`] call.
///
/// Only connection errors (refused, reset, timed out, broken mid-body) and 5xx answers are
/// retried; any 4xx answer, including 404, is returned at once. The wait before retry `n`
/// (counting from 1) is `initial_backoff * 2^(n-1)`, capped at `max_backoff`, without jitter:
/// these retries ride out a source-controller restart or a brief network blip, while longer
/// outages are the reconcile loop's business (it requeues with its own backoff and jitter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included. `1` disables retries; `0` is treated as `1`.
    /// Default 4.
    pub max_attempts: u32,
    /// Wait before the first retry. Default 500 ms.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts. Default 8 s.
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// A policy that makes a single attempt.
    pub fn no_retries() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(31);
        self.initial_backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// What a successful [`ArtifactFetcher::fetch`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedArtifact {
    /// The directory holding the unpacked artifact (the `dest` that was passed in).
    pub path: PathBuf,
    /// The digest of the downloaded bytes, as `<algorithm>:<hex>`, in the expected digest's
    /// algorithm (`sha256` when no digest was expected).
    pub digest: String,
    /// Size of the download (the compressed archive), in bytes.
    pub size_bytes: u64,
    /// Number of entries in the archive (directories, links and skipped entries included).
    pub entries: u64,
}

/// Downloads, verifies and unpacks artifacts. Cheap to clone; share one per controller.
#[derive(Debug, Clone)]
pub struct ArtifactFetcher {
    client: reqwest::Client,
    limits: FetchLimits,
    retry: RetryPolicy,
}

impl ArtifactFetcher {
    /// A fetcher using `client` (build it with [`crate::tls::http_client_builder`]), the
    /// given size limits and retry policy.
    pub fn new(client: reqwest::Client, limits: FetchLimits, retry: RetryPolicy) -> Self {
        Self {
            client,
            limits,
            retry,
        }
    }

    /// The size limits this fetcher applies.
    pub fn limits(&self) -> &FetchLimits {
        &self.limits
    }

    /// The retry policy this fetcher applies.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Downloads the artifact at `url`, checks it against `expected_digest` when given, and
    /// unpacks it into the directory `dest`, replacing what was there.
    ///
    /// `dest`'s parent is created if missing and holds the temporary files. See the module
    /// documentation for the guarantees and extraction rules.
    ///
    /// # Errors
    ///
    /// A [`FetchError`] saying what failed; in every case `dest` is left untouched.
    pub async fn fetch(
        &self,
        url: &str,
        expected_digest: Option<&str>,
        dest: &Path,
    ) -> Result<FetchedArtifact, FetchError> {
        let shown_url = redact_url(url);
        let expected = expected_digest
            .map(|digest| {
                digest
                    .parse::<Digest>()
                    .map_err(|source| FetchError::UnsupportedDigest {
                        digest: digest.to_owned(),
                        source,
                    })
            })
            .transpose()?;
        let algorithm = expected
            .as_ref()
            .map_or(DigestAlgorithm::Sha256, Digest::algorithm);

        let (parent, name) = split_dest(dest)?;
        tokio::fs::create_dir_all(&parent)
            .await
            .map_err(|e| FetchError::io(format!("cannot create {}", parent.display()), e))?;

        let download = TempPath::new(sibling(&parent, &name, "download"));
        let (digest, size_bytes) = self
            .download(url, &shown_url, algorithm, download.path())
            .await?;
        if let Some(expected) = expected
            && expected != digest
        {
            return Err(FetchError::DigestMismatch {
                url: shown_url,
                expected: expected.to_string(),
                actual: digest.to_string(),
            });
        }

        let limits = self.limits.clone();
        let archive = download.path().to_path_buf();
        let dest_owned = dest.to_path_buf();
        let extracted = tokio::task::spawn_blocking(move || {
            unpack_and_replace(&archive, &dest_owned, &parent, &name, &limits)
        })
        .await
        .map_err(|e| FetchError::io("artifact extraction task failed", io::Error::other(e)))??;
        drop(download);

        tracing::debug!(
            url = %shown_url,
            digest = %digest,
            size_bytes,
            entries = extracted.entries,
            dest = %dest.display(),
            "fetched artifact"
        );
        Ok(FetchedArtifact {
            path: dest.to_path_buf(),
            digest: digest.to_string(),
            size_bytes,
            entries: extracted.entries,
        })
    }

    /// [`fetch`](Self::fetch) for the artifact a source reports in `status.artifact`: its
    /// URL, verified against its digest when it has one.
    ///
    /// An artifact whose reported size is already over
    /// [`FetchLimits::max_download_bytes`] is refused without downloading.
    ///
    /// # Errors
    ///
    /// As [`fetch`](Self::fetch).
    pub async fn fetch_artifact(
        &self,
        artifact: &Artifact,
        dest: &Path,
    ) -> Result<FetchedArtifact, FetchError> {
        let limit = self.limits.max_download_bytes;
        if let Some(size) = artifact.size
            && u64::try_from(size).is_ok_and(|size| size > limit)
        {
            return Err(FetchError::TooLarge {
                url: redact_url(&artifact.url),
                limit,
            });
        }
        self.fetch(&artifact.url, artifact.digest.as_deref(), dest)
            .await
    }

    /// Downloads `url` to `path` with retries, returning the digest and size of the body.
    async fn download(
        &self,
        url: &str,
        shown_url: &str,
        algorithm: DigestAlgorithm,
        path: &Path,
    ) -> Result<(Digest, u64), FetchError> {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.download_once(url, shown_url, algorithm, path).await {
                Ok(done) => return Ok(done),
                Err(err) if attempt < max_attempts && retry_download(&err) => {
                    let wait = self.retry.backoff(attempt);
                    tracing::debug!(
                        url = %shown_url,
                        attempt,
                        max_attempts,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        error = %err,
                        "artifact download failed, retrying"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        }
    }

    async fn download_once(
        &self,
        url: &str,
        shown_url: &str,
        algorithm: DigestAlgorithm,
        path: &Path,
    ) -> Result<(Digest, u64), FetchError> {
        let limit = self.limits.max_download_bytes;
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| request_error(e, shown_url))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(FetchError::NotFound {
                url: shown_url.to_owned(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Http {
                url: shown_url.to_owned(),
                status,
            });
        }
        let too_large = || FetchError::TooLarge {
            url: shown_url.to_owned(),
            limit,
        };
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(too_large());
        }

        let write_error = |e| FetchError::io(format!("cannot write {}", path.display()), e);
        // `create` truncates what an earlier attempt left in the same file.
        let file = tokio::fs::File::create(path).await.map_err(write_error)?;
        let mut file = tokio::io::BufWriter::with_capacity(64 * 1024, file);
        let mut hasher = Hasher::new(algorithm);
        let mut size = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| request_error(e, shown_url))?
        {
            size = size.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
            if size > limit {
                return Err(too_large());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(write_error)?;
        }
        file.flush().await.map_err(write_error)?;
        Ok((hasher.finish(), size))
    }
}

/// Whether a failed download attempt is worth repeating within the same fetch.
fn retry_download(err: &FetchError) -> bool {
    match err {
        FetchError::Transport { .. } => true,
        FetchError::Http { status, .. } => status.is_server_error(),
        _ => false,
    }
}

/// Classifies a client error, removing the URL reqwest keeps in it.
fn request_error(err: reqwest::Error, shown_url: &str) -> FetchError {
    let err = err.without_url();
    if err.is_builder() {
        FetchError::InvalidUrl {
            url: shown_url.to_owned(),
            source: Box::new(err),
        }
    } else {
        FetchError::Transport {
            url: shown_url.to_owned(),
            source: err,
        }
    }
}

/// What [`unpack`] put in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unpacked {
    /// The directory holding the unpacked tree (the `dest` that was passed in).
    pub path: PathBuf,
    /// How many entries the archive held.
    pub entries: u64,
}

/// Unpacks a local `.tar.gz` into `dest` with the same rules as [`ArtifactFetcher::fetch`]:
/// the limits, the refusal of entries and links that escape, and the atomic replacement of an
/// existing `dest` (a failure leaves the previous tree in place).
///
/// This is blocking file-system work: call it from `tokio::task::spawn_blocking` in async code.
///
/// # Errors
/// [`FetchError::CorruptArchive`] when the file is not a gzip-compressed tar,
/// [`FetchError::UnsafeEntry`] for an entry that escapes `dest`, the limit errors, and
/// [`FetchError::Io`] for local file-system failures.
pub fn unpack(archive: &Path, dest: &Path, limits: &FetchLimits) -> Result<Unpacked, FetchError> {
    let (parent, name) = split_dest(dest)?;
    fs::create_dir_all(&parent)
        .map_err(|e| FetchError::io(format!("cannot create {}", parent.display()), e))?;
    let extracted = unpack_and_replace(archive, dest, &parent, &name, limits)?;
    Ok(Unpacked {
        path: dest.to_path_buf(),
        entries: extracted.entries,
    })
}

/// The parent directory and file name of `dest`.
fn split_dest(dest: &Path) -> Result<(PathBuf, OsString), FetchError> {
    let name = dest.file_name().ok_or_else(|| {
        FetchError::io(
            format!("cannot unpack into {}", dest.display()),
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "the destination must end in a directory name",
            ),
        )
    })?;
    let parent = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    Ok((parent, name.to_owned()))
}

/// A hidden, randomly named path next to the destination: `.<name>.<purpose>-<random>`.
fn sibling(parent: &Path, name: &OsStr, purpose: &str) -> PathBuf {
    let mut file_name = OsString::from(".");
    file_name.push(name);
    file_name.push(format!(".{purpose}-{:016x}", rand::random::<u64>()));
    parent.join(file_name)
}

/// Unpacks `archive` into a fresh directory next to `dest` and swaps it into place.
fn unpack_and_replace(
    archive: &Path,
    dest: &Path,
    parent: &Path,
    name: &OsStr,
    limits: &FetchLimits,
) -> Result<extract::Extracted, FetchError> {
    let staging = TempPath::new(sibling(parent, name, "extract"));
    fs::create_dir(staging.path())
        .map_err(|e| FetchError::io(format!("cannot create {}", staging.path().display()), e))?;
    let extracted = extract::unpack(archive, staging.path(), limits)?;
    replace(staging.path(), dest, parent, name)?;
    staging.disarm();
    Ok(extracted)
}

/// Moves `staging` to `dest`, replacing whatever `dest` was.
fn replace(staging: &Path, dest: &Path, parent: &Path, name: &OsStr) -> Result<(), FetchError> {
    let rename_error = |e| {
        FetchError::io(
            format!("cannot move the unpacked artifact to {}", dest.display()),
            e,
        )
    };
    match fs::symlink_metadata(dest) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::rename(staging, dest).map_err(rename_error)
        }
        Err(e) => Err(FetchError::io(
            format!("cannot inspect {}", dest.display()),
            e,
        )),
        Ok(_) => {
            let old = TempPath::new(sibling(parent, name, "old"));
            fs::rename(dest, old.path()).map_err(rename_error)?;
            if let Err(e) = fs::rename(staging, dest) {
                // Put the previous tree back; if even that fails, it stays in `old`'s place
                // rather than being deleted.
                if fs::rename(old.path(), dest).is_ok() {
                    old.disarm();
                }
                return Err(rename_error(e));
            }
            Ok(())
        }
    }
}

/// A temporary file or directory, removed when dropped unless disarmed.
struct TempPath {
    path: PathBuf,
    armed: bool,
}

impl TempPath {
    fn new(path: PathBuf) -> Self {
        Self { path, armed: true }
    }

    fn path(&self) -> &Path {
        &self.path
    }

    fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let result = match fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.is_dir() => fs::remove_dir_all(&self.path),
            Ok(_) => fs::remove_file(&self.path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(error) = result {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove temporary artifact files");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(700),
        };
        let waits: Vec<_> = (1..=5).map(|n| policy.backoff(n).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 700, 700]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_millis(700));
    }

    #[test]
    fn dest_is_split_into_parent_and_name() {
        let (parent, name) = split_dest(Path::new("/tmp/work/app")).unwrap();
        assert_eq!(
            (parent.as_path(), name.as_os_str()),
            (Path::new("/tmp/work"), OsStr::new("app"))
        );
        let (parent, _) = split_dest(Path::new("app")).unwrap();
        assert_eq!(parent, Path::new("."));
        assert!(split_dest(Path::new("/")).is_err());
        assert!(split_dest(Path::new("work/..")).is_err());
    }

    #[test]
    fn temporary_names_are_hidden_siblings() {
        let path = sibling(Path::new("/w"), OsStr::new("app"), "download");
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".app.download-"), "{name}");
        assert_eq!(path.parent(), Some(Path::new("/w")));
        assert_ne!(
            path,
            sibling(Path::new("/w"), OsStr::new("app"), "download")
        );
    }
}
