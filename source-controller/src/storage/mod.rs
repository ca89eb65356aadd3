//! The artifact store: reproducible archives, atomic writes, garbage collection and the HTTP
//! file server.
//!
//! Artifacts live under the storage root as `<kind>/<namespace>/<name>/<file>`, the kind in
//! lower case (`gitrepository/flux-system/podinfo/6b7aab8a….tar.gz`), as in Flux, and are
//! served over plain HTTP by [`server`] at the same paths.
//!
//! ```no_run
//! # async fn example(src: std::path::PathBuf) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use source_controller::storage::{ArchiveLimits, Filter, ObjectKey, Storage};
//!
//! let storage = Storage::new("/data", "source-controller.flux-system.svc.cluster.local.")?;
//! let key = ObjectKey::new("GitRepository", "flux-system", "podinfo")?;
//! let lock = storage.lock(&key).await;
//! let artifact = tokio::task::spawn_blocking(move || {
//!     let filter = Filter::for_source(&src, None)?;
//!     let archive = storage.archive_dir(&key, &src, &filter, &ArchiveLimits::default())?;
//!     let artifact = lock.store(archive, "6b7aab8a.tar.gz", "main@sha1:6b7aab8a")?;
//!     lock.garbage_collect(&artifact)?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(artifact)
//! })
//! .await??;
//! println!("{} {}", artifact.url, artifact.digest.unwrap_or_default());
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - An archive is written to a hidden staging file in the object's directory, synced, and
//!   renamed over its final name, then the directory is synced: a reader (the file server, a
//!   consumer mid-download) sees the old file or the new one, never a partial one, and a
//!   crash leaves at most a hidden staging file behind (removed by a later garbage
//!   collection once it is an hour old).
//! - Files whose name starts with `.` (staging files, temporary links) are never served,
//!   never counted as artifacts by garbage collection, and never accepted as artifact names.
//! - Garbage collection never deletes the current artifact.
//!
//! # Concurrency
//!
//! Everything that changes an object's directory ([`ObjectLock::store`],
//! [`ObjectLock::garbage_collect`], [`ObjectLock::remove_all`], [`ObjectLock::symlink`]) is
//! a method of [`ObjectLock`], which only [`Storage::lock`] hands out: one holder per object
//! at a time, within this process. Hold it for the whole "archive, store, collect garbage"
//! sequence, so that a concurrent reconcile of the same object cannot collect the artifact
//! another one has just stored. Archiving ([`Storage::archive_dir`]) needs no lock: staging
//! files have unique names. The lock is an in-process mutex, not a file lock: the storage
//! directory belongs to one controller process (as with Flux, where it is the pod's volume
//! and leader election keeps one active replica).
//!
//! # Blocking
//!
//! Apart from [`Storage::lock`], these functions do blocking file I/O (archiving and
//! [`Storage::verify`] read whole trees or files); from async code, run them in
//! `tokio::task::spawn_blocking`. [`ObjectLock`] is `Send + 'static` so it can move there.

pub mod archive;
pub mod ignore;
pub mod server;

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use sha2::Digest as _;
use tokio::sync::OwnedMutexGuard;
use toolkit_sdk::api::Artifact;

pub use self::archive::{Archive, ArchiveError, ArchiveLimits, archive_dir};
pub use self::ignore::{Filter, LoadIgnoreError, Pattern};
pub use self::server::{FileServer, ServeError, serve};

/// Default of `--artifact-retention-records`: how many artifacts of an object are kept.
pub const DEFAULT_RETENTION_RECORDS: usize = 2;

/// Default of `--artifact-retention-ttl`: how long artifacts other than the current one are
/// kept.
pub const DEFAULT_RETENTION_TTL: Duration = Duration::from_secs(60);

/// Age after which a leftover staging file (from a crash or an abandoned archive) is removed
/// by garbage collection.
pub const STALE_STAGING_AGE: Duration = Duration::from_secs(60 * 60);

/// Prefix of the temporary symlinks made by [`ObjectLock::symlink`].
const LINK_PREFIX: &str = ".link-";

/// How many artifacts of one object garbage collection keeps, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retention {
    /// At most this many artifacts remain after garbage collection, the current one
    /// included (`--artifact-retention-records`, default 2).
    pub records: usize,
    /// Artifacts other than the current one older than this are removed, whatever their
    /// number (`--artifact-retention-ttl`, default 60 s).
    pub ttl: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            records: DEFAULT_RETENTION_RECORDS,
            ttl: DEFAULT_RETENTION_TTL,
        }
    }
}

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// A kind, namespace, name or file name that cannot be used as a path component.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        /// What the value is (`kind`, `namespace`, `name`, `file name`).
        what: &'static str,
        /// The value.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// An artifact's `path` does not name a file inside the storage.
    #[error("artifact path {path:?} does not name a file in the storage")]
    InvalidArtifactPath {
        /// The path.
        path: String,
    },
    /// The artifact belongs to another object than the lock's.
    #[error("artifact {path} does not belong to {object}")]
    ForeignArtifact {
        /// The artifact's path.
        path: String,
        /// The locked object's directory.
        object: String,
    },
    /// The artifact records no digest to verify against.
    #[error("artifact {path} has no digest")]
    NoDigest {
        /// The artifact's path.
        path: String,
    },
    /// The artifact's digest uses an algorithm other than sha256, sha384 or sha512, or is
    /// malformed.
    #[error("artifact {path} has an unsupported digest {digest:?}")]
    UnsupportedDigest {
        /// The artifact's path.
        path: String,
        /// The digest.
        digest: String,
    },
    /// The stored file does not match the artifact's digest.
    #[error("artifact {path} does not match its digest: expected {expected}, found {actual}")]
    DigestMismatch {
        /// The artifact's path.
        path: String,
        /// The digest recorded in the artifact.
        expected: String,
        /// The digest of the stored file.
        actual: String,
    },
    /// A file system operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

impl StorageError {
    fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether the error means the file is not on disk (for example after a restart with
    /// an empty volume): the artifact should be rebuilt.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Checks that `value` can be one path component of the storage layout.
fn check_component(what: &'static str, value: &str) -> Result<(), StorageError> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value.contains('/') || value.contains('\\') {
        "it contains a slash"
    } else if value.contains('\0') {
        "it contains a NUL byte"
    } else if value.starts_with('.') {
        "it starts with a dot"
    } else {
        return Ok(());
    };
    Err(StorageError::InvalidName {
        what,
        value: value.to_owned(),
        reason,
    })
}

/// Identifies the object whose artifacts a directory holds: kind (stored lower case),
/// namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectKey {
    kind: String,
    namespace: String,
    name: String,
}

impl ObjectKey {
    /// The key of the object `namespace/name` of `kind` (`GitRepository`, …).
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidName`] if a part is empty, has a `/`, `\` or NUL, or starts
    /// with a dot (never the case for valid Kubernetes names).
    pub fn new(kind: &str, namespace: &str, name: &str) -> Result<Self, StorageError> {
        check_component("kind", kind)?;
        check_component("namespace", namespace)?;
        check_component("name", name)?;
        Ok(Self {
            kind: kind.to_lowercase(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The kind, in lower case.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The object's directory relative to the storage root: `<kind>/<namespace>/<name>`.
    pub fn dir(&self) -> String {
        format!("{}/{}/{}", self.kind, self.namespace, self.name)
    }

    /// The path of `file` relative to the storage root, as recorded in `artifact.path`.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidName`] if `file` is not a plain, non-hidden file name.
    pub fn artifact_path(&self, file: &str) -> Result<String, StorageError> {
        check_component("file name", file)?;
        Ok(format!("{}/{file}", self.dir()))
    }
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.dir())
    }
}

type LockMap = Mutex<HashMap<ObjectKey, Arc<tokio::sync::Mutex<()>>>>;

struct Inner {
    root: PathBuf,
    advertised_addr: String,
    retention: Retention,
    locks: LockMap,
}

/// The artifact storage of a controller: a root directory and the address it is served at.
/// Cheap to clone; clones share the per-object locks.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("root", &self.inner.root)
            .field("advertised_addr", &self.inner.advertised_addr)
            .field("retention", &self.inner.retention)
            .finish_non_exhaustive()
    }
}

impl Storage {
    /// A storage rooted at `root` (created if missing), whose artifacts are advertised at
    /// `advertised_addr` (`--storage-adv-addr`: a `host[:port]`, or a URL prefix starting
    /// with `http://` or `https://`), with the default [`Retention`].
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if `root` cannot be created.
    pub fn new(
        root: impl Into<PathBuf>,
        advertised_addr: impl Into<String>,
    ) -> Result<Self, StorageError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| {
            StorageError::io(
                format!("cannot create the storage directory {}", root.display()),
                e,
            )
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                root,
                advertised_addr: advertised_addr.into(),
                retention: Retention::default(),
                locks: Mutex::default(),
            }),
        })
    }

    /// This storage with another retention policy. Call it before sharing the storage:
    /// the result does not share locks with `self`.
    pub fn with_retention(self, retention: Retention) -> Self {
        Self {
            inner: Arc::new(Inner {
                root: self.inner.root.clone(),
                advertised_addr: self.inner.advertised_addr.clone(),
                retention,
                locks: Mutex::default(),
            }),
        }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The advertised address artifact URLs are built with.
    pub fn advertised_addr(&self) -> &str {
        &self.inner.advertised_addr
    }

    /// The retention policy of [`ObjectLock::garbage_collect`].
    pub fn retention(&self) -> &Retention {
        &self.inner.retention
    }

    /// The directory of `key`'s artifacts.
    pub fn object_dir(&self, key: &ObjectKey) -> PathBuf {
        self.inner
            .root
            .join(&key.kind)
            .join(&key.namespace)
            .join(&key.name)
    }

    /// The URL an artifact stored at `path` (relative to the root) is served at:
    /// `http://<advertised addr>/<path>`, or `<advertised addr>/<path>` when the advertised
    /// address already has a scheme. Use it to refresh `artifact.url` when the controller
    /// restarts with another advertised address.
    pub fn artifact_url(&self, path: &str) -> String {
        let addr = self.inner.advertised_addr.trim_end_matches('/');
        let path = path.trim_start_matches('/');
        if addr.starts_with("http://") || addr.starts_with("https://") {
            format!("{addr}/{path}")
        } else {
            format!("http://{addr}/{path}")
        }
    }

    /// Where `artifact` is on disk, or `None` if its path does not name a file inside the
    /// storage (absolute after its leading `/`, with `..`, `.` or empty components, or hidden
    /// names).
    pub fn local_path(&self, artifact: &Artifact) -> Option<PathBuf> {
        let rel = safe_relative_path(artifact.path.trim_start_matches('/'))?;
        Some(self.inner.root.join(rel))
    }

    /// Whether `artifact` is on disk as a regular file. An artifact recorded in an object's
    /// status but missing here (the volume was emptied by a restart, say) must be rebuilt.
    pub fn exists(&self, artifact: &Artifact) -> bool {
        self.local_path(artifact)
            .and_then(|path| fs::symlink_metadata(path).ok())
            .is_some_and(|meta| meta.is_file())
    }

    /// Re-hashes the stored file of `artifact` and checks it against `artifact.digest`
    /// (`sha256`, `sha384` or `sha512`). Reads the whole file: blocking.
    ///
    /// # Errors
    ///
    /// [`StorageError::DigestMismatch`] when the file differs; [`StorageError::NoDigest`],
    /// [`StorageError::UnsupportedDigest`] or [`StorageError::InvalidArtifactPath`] when it
    /// cannot be checked; [`StorageError::Io`] when it cannot be read
    /// ([`StorageError::is_not_found`] when it is missing).
    pub fn verify(&self, artifact: &Artifact) -> Result<(), StorageError> {
        let path = self
            .local_path(artifact)
            .ok_or_else(|| StorageError::InvalidArtifactPath {
                path: artifact.path.clone(),
            })?;
        let expected = artifact
            .digest
            .as_deref()
            .ok_or_else(|| StorageError::NoDigest {
                path: artifact.path.clone(),
            })?;
        let unsupported = || StorageError::UnsupportedDigest {
            path: artifact.path.clone(),
            digest: expected.to_owned(),
        };
        let expected_parsed: toolkit_sdk::artifact_fetch::Digest =
            expected.parse().map_err(|_| unsupported())?;
        let mut file = File::open(&path)
            .map_err(|e| StorageError::io(format!("cannot read artifact {}", artifact.path), e))?;
        let actual_hex = hash_file(&mut file, expected_parsed.algorithm())
            .map_err(|e| StorageError::io(format!("cannot read artifact {}", artifact.path), e))?;
        let actual = format!("{}:{actual_hex}", expected_parsed.algorithm());
        if actual_hex != expected_parsed.hex() {
            return Err(StorageError::DigestMismatch {
                path: artifact.path.clone(),
                expected: expected.to_owned(),
                actual,
            });
        }
        Ok(())
    }

    /// [`archive_dir`] of `src` into a staging file in `key`'s directory (created if
    /// missing), so that [`ObjectLock::store`] is a rename. Blocking.
    ///
    /// # Errors
    ///
    /// As [`archive_dir`].
    pub fn archive_dir(
        &self,
        key: &ObjectKey,
        src: &Path,
        filter: &Filter,
        limits: &ArchiveLimits,
    ) -> Result<Archive, ArchiveError> {
        let dir = self.object_dir(key);
        fs::create_dir_all(&dir).map_err(|e| ArchiveError::Io {
            context: format!("cannot create {}", dir.display()),
            source: e,
        })?;
        archive_dir(src, filter, limits, &dir)
    }

    /// Stages the bytes of `reader` as they are (an OCI layer stored with the `copy`
    /// operation, say) in `key`'s directory, for [`ObjectLock::store`]. Blocking.
    ///
    /// # Errors
    ///
    /// As [`Archive::from_reader`].
    pub fn stage(
        &self,
        key: &ObjectKey,
        reader: impl Read,
        max_bytes: u64,
    ) -> Result<Archive, ArchiveError> {
        let dir = self.object_dir(key);
        fs::create_dir_all(&dir).map_err(|e| ArchiveError::Io {
            context: format!("cannot create {}", dir.display()),
            source: e,
        })?;
        Archive::from_reader(reader, &dir, max_bytes)
    }

    /// Waits for exclusive access to `key`'s directory (within this process).
    pub async fn lock(&self, key: &ObjectKey) -> ObjectLock {
        let mutex = self.lock_entry(key);
        let guard = mutex.lock_owned().await;
        ObjectLock {
            storage: self.clone(),
            key: key.clone(),
            guard: Some(guard),
        }
    }

    /// [`lock`](Self::lock) without waiting: `None` if someone holds the lock.
    pub fn try_lock(&self, key: &ObjectKey) -> Option<ObjectLock> {
        let mutex = self.lock_entry(key);
        let guard = mutex.try_lock_owned().ok()?;
        Some(ObjectLock {
            storage: self.clone(),
            key: key.clone(),
            guard: Some(guard),
        })
    }

    fn lock_entry(&self, key: &ObjectKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(key.clone()).or_default())
    }

    fn create_object_dir(&self, key: &ObjectKey) -> Result<PathBuf, StorageError> {
        let dir = self.object_dir(key);
        fs::create_dir_all(&dir)
            .map_err(|e| StorageError::io(format!("cannot create {}", dir.display()), e))?;
        Ok(dir)
    }
}

/// Exclusive access to one object's artifact directory, from [`Storage::lock`]. Released when
/// dropped.
pub struct ObjectLock {
    storage: Storage,
    key: ObjectKey,
    guard: Option<OwnedMutexGuard<()>>,
}

impl std::fmt::Debug for ObjectLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectLock")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Drop for ObjectLock {
    fn drop(&mut self) {
        drop(self.guard.take());
        // Forget the object's mutex once nobody holds or waits for it. Waiters clone the
        // Arc under the map lock, so the count cannot grow behind our back.
        let mut locks = self
            .storage
            .inner
            .locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if locks
            .get(&self.key)
            .is_some_and(|mutex| Arc::strong_count(mutex) == 1)
        {
            locks.remove(&self.key);
        }
    }
}

impl ObjectLock {
    /// The object this lock is for.
    pub fn key(&self) -> &ObjectKey {
        &self.key
    }

    /// The storage this lock belongs to.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Moves `archive` to `<kind>/<namespace>/<name>/<file_name>` (replacing a file of that
    /// name atomically) and returns the artifact to record in the object's status: path,
    /// URL, `revision`, digest, size, and the current time (whole seconds) as
    /// `lastUpdateTime`. Flux names Git artifacts `<commit hash>.tar.gz` and OCI artifacts
    /// after the digest part of their revision, `sha256:<hex>.tar.gz`.
    ///
    /// The file's modification time is set to now: garbage collection orders artifacts by
    /// it.
    ///
    /// # Errors
    ///
    /// [`StorageError::InvalidName`] for a file name with `/` or a leading dot,
    /// [`StorageError::Io`] if the file cannot be moved into place; the archive is then
    /// discarded.
    pub fn store(
        &self,
        archive: Archive,
        file_name: &str,
        revision: &str,
    ) -> Result<Artifact, StorageError> {
        let path = self.key.artifact_path(file_name)?;
        let dir = self.storage.create_object_dir(&self.key)?;
        let target = dir.join(file_name);
        let digest = archive.digest().to_owned();
        let size = archive.size();
        let mut staged = archive.into_temp_path();
        if staged.parent() != Some(dir.as_path()) {
            // Staged elsewhere (maybe another file system): copy next to the target first.
            let file = File::open(&staged)
                .map_err(|e| StorageError::io(format!("cannot read {}", staged.display()), e))?;
            let copy = Archive::from_reader(file, &dir, u64::MAX).map_err(|e| {
                StorageError::io(
                    format!("cannot copy the artifact to {}", dir.display()),
                    io::Error::other(e),
                )
            })?;
            staged = copy.into_temp_path();
        }
        let write_error = |e| StorageError::io(format!("cannot store artifact {path}"), e);
        File::options()
            .write(true)
            .open(&staged)
            .and_then(|f| f.set_modified(SystemTime::now()))
            .map_err(write_error)?;
        staged.persist(&target).map_err(|e| write_error(e.error))?;
        sync_dir(&dir).map_err(write_error)?;
        tracing::debug!(path, digest, size, revision, "stored artifact");
        Ok(Artifact {
            url: self.storage.artifact_url(&path),
            path,
            revision: revision.to_owned(),
            digest: Some(digest),
            last_update_time: now_seconds(),
            size: i64::try_from(size).ok(),
            metadata: None,
        })
    }

    /// Points the symlink `link_name` in the object's directory at `artifact` (replacing it
    /// atomically) and returns its URL: Flux's best-effort `latest.tar.gz` link behind
    /// `status.url`. The link is relative, so the storage can move.
    ///
    /// # Errors
    ///
    /// [`StorageError::ForeignArtifact`] if `artifact` is not one of this object's,
    /// [`StorageError::InvalidName`] for a bad link name, [`StorageError::Io`] otherwise.
    pub fn symlink(&self, artifact: &Artifact, link_name: &str) -> Result<String, StorageError> {
        let file_name = self.own_file_name(artifact)?;
        let link_path = self.key.artifact_path(link_name)?;
        let dir = self.storage.create_object_dir(&self.key)?;
        let link_error = |e| StorageError::io(format!("cannot update symlink {link_path}"), e);
        let temp = tempfile::Builder::new()
            .prefix(LINK_PREFIX)
            .make_in(&dir, |path| std::os::unix::fs::symlink(&file_name, path))
            .map_err(link_error)?;
        temp.into_temp_path()
            .persist(dir.join(link_name))
            .map_err(|e| link_error(e.error))?;
        sync_dir(&dir).map_err(link_error)?;
        Ok(self.storage.artifact_url(&link_path))
    }

    /// Removes old artifacts of the object according to the storage's [`Retention`], and
    /// staging files older than [`STALE_STAGING_AGE`]. Returns the paths (relative to the
    /// root) of the artifacts removed, oldest first.
    ///
    /// Every file other than `current` older than the TTL is removed; then, while more
    /// than `records` files remain, the oldest other than `current` is removed. Symlinks,
    /// directories and hidden files are not artifacts and are left alone (stale staging
    /// files aside). Files are ordered by modification time (the time
    /// [`store`](Self::store) wrote them), then by name.
    ///
    /// Unlike Flux, files expired by the TTL count towards the records removed, so at most
    /// `records` files remain whenever there are enough others to remove.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if the directory cannot be listed or a file cannot be removed
    /// (the others are still attempted; the first error is returned).
    pub fn garbage_collect(&self, current: &Artifact) -> Result<Vec<String>, StorageError> {
        let dir = self.storage.object_dir(&self.key);
        let current_name = self.own_file_name(current).ok();
        let retention = self.storage.retention();
        let now = SystemTime::now();
        let age = |modified: SystemTime| now.duration_since(modified).unwrap_or_default();

        let list_error = |e| StorageError::io(format!("cannot list {}", self.key.dir()), e);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(list_error(e)),
        };
        let mut artifacts = Vec::new();
        let mut stale = Vec::new();
        for entry in entries {
            let entry = entry.map_err(list_error)?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let meta = entry.metadata().map_err(list_error)?;
            let modified = meta.modified().map_err(list_error)?;
            if name.starts_with('.') {
                let temporary =
                    name.starts_with(archive::STAGING_PREFIX) || name.starts_with(LINK_PREFIX);
                if temporary && age(modified) > STALE_STAGING_AGE {
                    stale.push(name);
                }
                continue;
            }
            if meta.is_file() {
                artifacts.push((modified, name));
            }
        }
        artifacts.sort();

        let is_current = |name: &str| current_name.as_deref() == Some(name);
        let mut doomed: Vec<bool> = artifacts
            .iter()
            .map(|(modified, name)| !is_current(name) && age(*modified) > retention.ttl)
            .collect();
        let mut remaining = doomed.iter().filter(|d| !**d).count();
        for (i, (_, name)) in artifacts.iter().enumerate() {
            if remaining <= retention.records {
                break;
            }
            if !doomed[i] && !is_current(name) {
                doomed[i] = true;
                remaining -= 1;
            }
        }

        let mut first_error = None;
        let mut removed = Vec::new();
        for ((_, name), doomed) in artifacts.iter().zip(doomed) {
            if !doomed {
                continue;
            }
            let path = format!("{}/{name}", self.key.dir());
            match fs::remove_file(dir.join(name)) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert(StorageError::io(format!("cannot remove {path}"), e));
                }
            }
        }
        for name in stale {
            if let Err(e) = fs::remove_file(dir.join(&name))
                && e.kind() != io::ErrorKind::NotFound
            {
                first_error.get_or_insert(StorageError::io(
                    format!("cannot remove {}/{name}", self.key.dir()),
                    e,
                ));
            }
        }
        if !removed.is_empty() {
            tracing::debug!(object = %self.key, removed = ?removed, "garbage collected artifacts");
        }
        match first_error {
            Some(err) => Err(err),
            None => Ok(removed),
        }
    }

    /// Removes the object's directory and everything in it (the object was deleted).
    /// Returns whether there was anything to remove.
    ///
    /// # Errors
    ///
    /// [`StorageError::Io`] if the directory cannot be removed.
    pub fn remove_all(&self) -> Result<bool, StorageError> {
        let dir = self.storage.object_dir(&self.key);
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::debug!(object = %self.key, "removed all artifacts");
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(StorageError::io(
                format!("cannot remove the artifacts of {}", self.key.dir()),
                e,
            )),
        }
    }

    /// The file name of `artifact` if it is in this object's directory.
    fn own_file_name(&self, artifact: &Artifact) -> Result<String, StorageError> {
        let foreign = || StorageError::ForeignArtifact {
            path: artifact.path.clone(),
            object: self.key.dir(),
        };
        let path = artifact.path.trim_start_matches('/');
        let (dir, file) = path.rsplit_once('/').ok_or_else(foreign)?;
        if dir != self.key.dir() || check_component("file name", file).is_err() {
            return Err(foreign());
        }
        Ok(file.to_owned())
    }
}

/// `path` as a relative path if every `/`-separated component is a plain, non-hidden name.
fn safe_relative_path(path: &str) -> Option<PathBuf> {
    if path.is_empty() {
        return None;
    }
    let mut rel = PathBuf::new();
    for component in path.split('/') {
        check_component("path component", component).ok()?;
        rel.push(component);
    }
    Some(rel)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The current time, truncated to whole seconds (as Kubernetes serialises it).
fn now_seconds() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// The hex digest of everything `file` holds.
fn hash_file(
    file: &mut File,
    algorithm: toolkit_sdk::artifact_fetch::DigestAlgorithm,
) -> io::Result<String> {
    use toolkit_sdk::artifact_fetch::DigestAlgorithm;
    fn run<D: sha2::Digest>(file: &mut File, mut hasher: D) -> io::Result<String> {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            match file.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => hasher.update(&buffer[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(hex::encode(hasher.finalize()))
    }
    match algorithm {
        DigestAlgorithm::Sha256 => run(file, sha2::Sha256::new()),
        DigestAlgorithm::Sha384 => run(file, sha2::Sha384::new()),
        DigestAlgorithm::Sha512 => run(file, sha2::Sha512::new()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_paths_follow_the_flux_layout() {
        let key = ObjectKey::new("GitRepository", "flux-system", "podinfo").unwrap();
        assert_eq!(key.dir(), "gitrepository/flux-system/podinfo");
        assert_eq!(
            key.artifact_path("abc.tar.gz").unwrap(),
            "gitrepository/flux-system/podinfo/abc.tar.gz"
        );
        // OCI artifacts are named after the digest part of their revision.
        assert_eq!(
            key.artifact_path("sha256:0a1b.tar.gz").unwrap(),
            "gitrepository/flux-system/podinfo/sha256:0a1b.tar.gz"
        );
        for bad in ["", "a/b", "..", ".hidden", "a\0b"] {
            assert!(
                ObjectKey::new("GitRepository", bad, "x").is_err(),
                "{bad:?}"
            );
            assert!(key.artifact_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn urls_use_the_advertised_address() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), "source-controller.flux-system.svc").unwrap();
        assert_eq!(
            storage.artifact_url("gitrepository/a/b/c.tar.gz"),
            "http://source-controller.flux-system.svc/gitrepository/a/b/c.tar.gz"
        );
        let storage = Storage::new(dir.path(), "https://files.example.com/").unwrap();
        assert_eq!(
            storage.artifact_url("/x/y"),
            "https://files.example.com/x/y"
        );
    }

    #[test]
    fn local_paths_stay_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), "h").unwrap();
        let with_path = |path: &str| Artifact {
            path: path.into(),
            url: String::new(),
            revision: String::new(),
            digest: None,
            last_update_time: now_seconds(),
            size: None,
            metadata: None,
        };
        assert_eq!(
            storage.local_path(&with_path("gitrepository/ns/n/f.tar.gz")),
            Some(dir.path().join("gitrepository/ns/n/f.tar.gz"))
        );
        assert_eq!(
            storage.local_path(&with_path("/gitrepository/ns/n/f.tar.gz")),
            Some(dir.path().join("gitrepository/ns/n/f.tar.gz"))
        );
        for bad in [
            "",
            "a/../../etc/passwd",
            "a//b",
            "a/./b",
            "a/.staging-x",
            "../x",
        ] {
            assert_eq!(storage.local_path(&with_path(bad)), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn locks_are_exclusive_per_object_and_forgotten_when_free() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::new(dir.path(), "h").unwrap();
        let a = ObjectKey::new("GitRepository", "ns", "a").unwrap();
        let b = ObjectKey::new("GitRepository", "ns", "b").unwrap();
        let held = storage.lock(&a).await;
        assert!(storage.try_lock(&a).is_none());
        let other = storage.try_lock(&b).unwrap();
        drop(other);

        let waiter = tokio::spawn({
            let storage = storage.clone();
            let a = a.clone();
            async move { storage.lock(&a).await.key().clone() }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(held);
        assert_eq!(waiter.await.unwrap(), a);
        assert!(storage.inner.locks.lock().unwrap().is_empty());
    }
}
