//! What both source reconcilers do with the storage: check the recorded artifact, archive and
//! store a new one, unpack a stored one, collect garbage, remove everything of a deleted
//! object, announce new artifacts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Api;
use toolkit_sdk::api::Artifact;
use toolkit_sdk::artifact_fetch::{self, FetchError, FetchLimits};
use toolkit_sdk::conditions::{Stamp, reasons, types};
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::events::EventSeverity;
use toolkit_sdk::runtime::{Context, Outcome};

use crate::storage::{
    Archive, ArchiveError, ArchiveLimits, Filter, LoadIgnoreError, ObjectKey, Storage, StorageError,
};

/// Reason of the event emitted when a stored artifact does not match its digest.
pub(crate) const ARTIFACT_VERIFICATION_FAILED: &str = "ArtifactVerificationFailed";
/// Reason of the event emitted for a new artifact (Flux's).
pub(crate) const NEW_ARTIFACT: &str = "NewArtifact";
/// Reason of a failed garbage collection of a deleted object's artifacts (Flux's).
pub(crate) const GARBAGE_COLLECTION_FAILED: &str = "GarbageCollectionFailed";
/// Reason of a failure to load `.sourceignore` files (Flux's).
pub(crate) const SOURCE_IGNORE_ERROR: &str = "SourceIgnoreError";

/// Size and modification time of a stored file, as last stored or verified by this process.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    digest: String,
    len: u64,
    modified: Option<SystemTime>,
}

/// State shared by the reconcilers of one process.
pub(crate) struct Shared {
    storage: Storage,
    limits: ArchiveLimits,
    verified: Mutex<HashMap<String, FileStamp>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("storage", &self.storage)
            .finish_non_exhaustive()
    }
}

/// Why a stored artifact could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnpackError {
    /// The artifact is not one of the object's own files in storage, or does not match its
    /// digest.
    #[error("the stored artifact cannot be used")]
    Storage(#[source] StorageError),
    /// The archive could not be unpacked.
    #[error("cannot unpack the stored artifact")]
    Unpack(#[source] FetchError),
    /// The blocking task failed.
    #[error("the unpacking task failed: {0}")]
    Task(String),
}

/// Whether the artifact recorded in a status can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    /// The status records no artifact.
    None,
    /// The recorded artifact is on disk and matches its digest.
    Present,
    /// The recorded artifact was missing or corrupt; it has been removed from the status.
    Disappeared,
}

impl Shared {
    pub(crate) fn new(storage: Storage, limits: ArchiveLimits) -> Self {
        Self {
            storage,
            limits,
            verified: Mutex::default(),
        }
    }

    /// The artifact storage.
    pub(crate) fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The limits for what the controller downloads and unpacks (OCI layers, includes): the
    /// same as for the artifacts it builds (`--artifact-max-size`).
    pub(crate) fn fetch_limits(&self) -> FetchLimits {
        FetchLimits {
            max_download_bytes: self.limits.max_archive_bytes,
            max_extracted_bytes: self.limits.max_content_bytes,
            max_entries: self.limits.max_entries,
        }
    }

    /// Unpacks `artifact`, a stored artifact of the object `owner` (an include of a
    /// GitRepository), into the directory `dest`, after checking it against its digest.
    ///
    /// The owner's storage lock is held meanwhile, so garbage collection cannot remove the file
    /// half-way. Extraction has the limits and escape rules of
    /// [`artifact_fetch::unpack`].
    ///
    /// # Errors
    ///
    /// [`UnpackError::Storage`] when the artifact is not a file of `owner` in storage or does
    /// not match its digest; [`UnpackError::Unpack`] when it cannot be unpacked.
    pub(crate) async fn unpack(
        &self,
        owner: &ObjectKey,
        artifact: &Artifact,
        dest: &Path,
    ) -> Result<(), UnpackError> {
        let in_owner_dir = artifact
            .path
            .trim_start_matches('/')
            .strip_prefix(&format!("{}/", owner.dir()))
            .is_some_and(|file| !file.is_empty() && !file.contains('/'));
        let archive = self
            .storage
            .local_path(artifact)
            .filter(|_| in_owner_dir)
            .ok_or_else(|| {
                UnpackError::Storage(StorageError::InvalidArtifactPath {
                    path: artifact.path.clone(),
                })
            })?;
        let _lock = self.storage.lock(owner).await;
        self.verify(artifact.clone())
            .await
            .map_err(UnpackError::Storage)?;
        let dest = dest.to_path_buf();
        let limits = self.fetch_limits();
        tokio::task::spawn_blocking(move || artifact_fetch::unpack(&archive, &dest, &limits))
            .await
            .map_err(|join| UnpackError::Task(join.to_string()))?
            .map_err(UnpackError::Unpack)?;
        Ok(())
    }

    /// The storage key of a `kind` object.
    pub(crate) fn key(
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<ObjectKey, ReconcileError> {
        ObjectKey::new(kind, namespace, name).map_err(|err| {
            ReconcileError::stalled(reasons::INVALID_PATH, "the object cannot be stored")
                .with_source(err)
        })
    }

    /// Checks the artifact recorded in the status against the disk (Flux's storage step).
    ///
    /// A missing artifact, or one whose file no longer matches its digest (the file is then
    /// removed and an `ArtifactVerificationFailed` warning is emitted), is removed from the
    /// status together with `ArtifactInStorage`, so that it is rebuilt. A present one gets its
    /// URL refreshed (the advertised address may have changed) and old artifacts of the
    /// object are garbage collected.
    pub(crate) async fn check_stored(
        &self,
        key: &ObjectKey,
        artifact: &mut Option<Artifact>,
        conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
        object: &ObjectReference,
        ctx: &Context,
    ) -> Stored {
        let Some(current) = artifact.as_mut() else {
            toolkit_sdk::conditions::delete(conditions, types::ARTIFACT_IN_STORAGE);
            return Stored::None;
        };
        match self.verify(current.clone()).await {
            Ok(()) => {
                current.url = self.storage.artifact_url(&current.path);
                self.collect_garbage(key, current.clone()).await;
                Stored::Present
            }
            Err(err) => {
                if err.is_not_found() || matches!(err, StorageError::InvalidArtifactPath { .. }) {
                    tracing::info!(path = %current.path, "the recorded artifact is not in storage; rebuilding it");
                } else {
                    let message = format!("failed to verify integrity of artifact: {err}");
                    tracing::warn!(path = %current.path, error = %err, "rebuilding the artifact");
                    ctx.recorder().publish(
                        object,
                        EventSeverity::Error,
                        ARTIFACT_VERIFICATION_FAILED,
                        &message,
                        BTreeMap::new(),
                    );
                    if let Some(path) = self.storage.local_path(current) {
                        let _ = std::fs::remove_file(path);
                    }
                }
                self.forget(&current.path);
                *artifact = None;
                toolkit_sdk::conditions::delete(conditions, types::ARTIFACT_IN_STORAGE);
                Stored::Disappeared
            }
        }
    }

    /// Re-hashes the stored file of `artifact` unless this process stored or verified the
    /// same file (same size and modification time) before.
    async fn verify(&self, artifact: Artifact) -> Result<(), StorageError> {
        let Some(path) = self.storage.local_path(&artifact) else {
            return Err(StorageError::InvalidArtifactPath {
                path: artifact.path.clone(),
            });
        };
        let digest = artifact.digest.clone().unwrap_or_default();
        let meta = tokio::fs::metadata(&path)
            .await
            .map_err(|source| StorageError::Io {
                context: format!("cannot read artifact {}", artifact.path),
                source,
            })?;
        let stamp = FileStamp {
            digest,
            len: meta.len(),
            modified: meta.modified().ok(),
        };
        if self.lock_verified().get(&artifact.path) == Some(&stamp) {
            return Ok(());
        }
        let storage = self.storage.clone();
        let checked = artifact.clone();
        tokio::task::spawn_blocking(move || storage.verify(&checked))
            .await
            .map_err(|join| StorageError::Io {
                context: "artifact verification task failed".to_owned(),
                source: std::io::Error::other(join.to_string()),
            })??;
        self.lock_verified().insert(artifact.path, stamp);
        Ok(())
    }

    /// Remembers a freshly stored artifact as verified.
    fn remember(&self, artifact: &Artifact) {
        let Some(path) = self.storage.local_path(artifact) else {
            return;
        };
        if let Ok(meta) = std::fs::metadata(path) {
            self.lock_verified().insert(
                artifact.path.clone(),
                FileStamp {
                    digest: artifact.digest.clone().unwrap_or_default(),
                    len: meta.len(),
                    modified: meta.modified().ok(),
                },
            );
        }
    }

    fn forget(&self, path: &str) {
        self.lock_verified().remove(path);
    }

    fn lock_verified(&self) -> std::sync::MutexGuard<'_, HashMap<String, FileStamp>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes superseded artifacts of `key` (best effort: failures are logged).
    async fn collect_garbage(&self, key: &ObjectKey, current: Artifact) {
        let lock = self.storage.lock(key).await;
        let collected = tokio::task::spawn_blocking(move || lock.garbage_collect(&current)).await;
        match collected {
            Ok(Ok(removed)) => {
                for path in &removed {
                    self.forget(path);
                }
                if !removed.is_empty() {
                    tracing::debug!(removed = removed.len(), "garbage collected artifacts");
                }
            }
            Ok(Err(err)) => tracing::warn!(
                error = &err as &dyn std::error::Error,
                "garbage collection of artifacts failed"
            ),
            Err(join) => tracing::warn!(error = %join, "garbage collection task failed"),
        }
    }

    /// Archives the directory `src` (minus what `.sourceignore` files and `ignore` exclude,
    /// plus Flux's default exclusions) and stores it as `file_name` for `revision`, then
    /// collects garbage.
    ///
    /// # Errors
    ///
    /// `ArchiveOperationFailed` on `StorageOperationFailed`; `SourceIgnoreError` when the
    /// ignore files cannot be read.
    pub(crate) async fn archive_and_store(
        &self,
        key: &ObjectKey,
        src: PathBuf,
        ignore: Option<String>,
        file_name: String,
        revision: String,
    ) -> Result<Artifact, ReconcileError> {
        let storage = self.storage.clone();
        let archive_key = key.clone();
        let limits = self.limits.clone();
        let archived = tokio::task::spawn_blocking(move || {
            let filter = Filter::for_source(&src, ignore.as_deref()).map_err(Staging::Ignore)?;
            storage
                .archive_dir(&archive_key, &src, &filter, &limits)
                .map_err(Staging::Archive)
        })
        .await
        .map_err(|join| {
            archive_failed(ArchiveError::Io {
                context: "archiving task failed".to_owned(),
                source: std::io::Error::other(join.to_string()),
            })
        })?
        .map_err(|err| match err {
            Staging::Ignore(err) => ReconcileError::transient(
                SOURCE_IGNORE_ERROR,
                "failed to load source ignore patterns from repository",
            )
            .with_source(err),
            Staging::Archive(err) => archive_failed(err),
        })?;
        self.store(key, archived, file_name, revision).await
    }

    /// Stores a staged archive (or copied file) as `file_name` for `revision`, then collects
    /// garbage.
    ///
    /// # Errors
    ///
    /// `ArchiveOperationFailed` on `StorageOperationFailed`.
    pub(crate) async fn store(
        &self,
        key: &ObjectKey,
        archive: Archive,
        file_name: String,
        revision: String,
    ) -> Result<Artifact, ReconcileError> {
        let lock = self.storage.lock(key).await;
        let stored = tokio::task::spawn_blocking(move || {
            let artifact = lock.store(archive, &file_name, &revision)?;
            let removed = match lock.garbage_collect(&artifact) {
                Ok(removed) => removed,
                Err(err) => {
                    tracing::warn!(
                        error = &err as &dyn std::error::Error,
                        "garbage collection of artifacts failed"
                    );
                    Vec::new()
                }
            };
            Ok::<_, StorageError>((artifact, removed))
        })
        .await
        .map_err(|join| StorageError::Io {
            context: "storing task failed".to_owned(),
            source: std::io::Error::other(join.to_string()),
        })
        .and_then(|stored| stored)
        .map_err(|err| {
            ReconcileError::transient(
                reasons::ARCHIVE_OPERATION_FAILED,
                "unable to archive artifact to storage",
            )
            .with_source(err)
            .on_condition(types::STORAGE_OPERATION_FAILED)
        })?;
        let (artifact, removed) = stored;
        for path in &removed {
            self.forget(path);
        }
        self.remember(&artifact);
        Ok(artifact)
    }

    /// Stages `reader`'s bytes as they are in `key`'s directory (blocking I/O on the
    /// blocking pool).
    ///
    /// # Errors
    ///
    /// `ArchiveOperationFailed` on `StorageOperationFailed`.
    pub(crate) async fn stage_file(
        &self,
        key: &ObjectKey,
        file: PathBuf,
    ) -> Result<Archive, ReconcileError> {
        let storage = self.storage.clone();
        let key = key.clone();
        let limits = self.limits.clone();
        tokio::task::spawn_blocking(move || {
            let reader = std::fs::File::open(&file).map_err(|source| ArchiveError::Io {
                context: format!("cannot read {}", file.display()),
                source,
            })?;
            storage.stage(&key, reader, limits.max_archive_bytes)
        })
        .await
        .map_err(|join| ArchiveError::Io {
            context: "staging task failed".to_owned(),
            source: std::io::Error::other(join.to_string()),
        })
        .and_then(|staged| staged)
        .map_err(archive_failed)
    }

    /// Points the symlink `link` of `key`'s directory at `artifact` and returns its URL; best
    /// effort, as in Flux (a failure is logged and gives `None`).
    pub(crate) async fn symlink(
        &self,
        key: &ObjectKey,
        artifact: &Artifact,
        link: &'static str,
    ) -> Option<String> {
        let lock = self.storage.lock(key).await;
        let target = artifact.clone();
        match tokio::task::spawn_blocking(move || lock.symlink(&target, link)).await {
            Ok(Ok(url)) => Some(url),
            Ok(Err(err)) => {
                tracing::warn!(
                    error = &err as &dyn std::error::Error,
                    "failed to update status URL symlink"
                );
                None
            }
            Err(join) => {
                tracing::warn!(error = %join, "symlink task failed");
                None
            }
        }
    }

    /// Removes every artifact of a deleted object.
    ///
    /// # Errors
    ///
    /// `GarbageCollectionFailed` when the directory cannot be removed.
    pub(crate) async fn remove_all(&self, key: &ObjectKey) -> Result<(), ReconcileError> {
        let lock = self.storage.lock(key).await;
        let prefix = format!("{}/", key.dir());
        let removed = tokio::task::spawn_blocking(move || lock.remove_all())
            .await
            .map_err(|join| StorageError::Io {
                context: "removal task failed".to_owned(),
                source: std::io::Error::other(join.to_string()),
            })
            .and_then(|removed| removed)
            .map_err(|err| {
                ReconcileError::transient(
                    GARBAGE_COLLECTION_FAILED,
                    "garbage collection for deleted resource failed",
                )
                .with_source(err)
            })?;
        self.lock_verified()
            .retain(|path, _| !path.starts_with(&prefix));
        if removed {
            tracing::info!(object = %key, "garbage collected artifacts for deleted resource");
        }
        Ok(())
    }
}

/// A successful reconcile that stored a new artifact: `Ready` with `ready_message`, and Flux's
/// `NewArtifact` event (`event_message`, with the revision and digest as metadata) as the one
/// event of the reconcile.
pub(crate) fn new_artifact(
    ready_message: String,
    event_message: &str,
    artifact: &Artifact,
) -> Outcome {
    tracing::info!("{event_message}");
    let mut outcome = Outcome::ready(ready_message)
        .with_event_as(NEW_ARTIFACT, event_message)
        .with_metadata("revision", artifact.revision.clone());
    if let Some(digest) = &artifact.digest {
        outcome = outcome.with_metadata("digest", digest.clone());
    }
    outcome
}

/// Why staging an archive failed.
enum Staging {
    Ignore(LoadIgnoreError),
    Archive(ArchiveError),
}

fn archive_failed(err: ArchiveError) -> ReconcileError {
    ReconcileError::transient(
        reasons::ARCHIVE_OPERATION_FAILED,
        "unable to archive artifact to storage",
    )
    .with_source(err)
    .on_condition(types::STORAGE_OPERATION_FAILED)
}

/// The stamp condition helpers need: now, and the object's generation.
pub(crate) fn stamp(generation: Option<i64>) -> Stamp {
    Stamp::new(Time(jiff::Timestamp::now()), generation)
}

/// Reads the Secret `namespace/name`.
///
/// # Errors
///
/// `AuthenticationFailed` on `FetchFailed` when it cannot be read or does not exist.
pub(crate) async fn get_secret(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Secret, ReconcileError> {
    let failed = |message: String| {
        ReconcileError::transient(reasons::AUTHENTICATION_FAILED, message)
            .on_condition(types::FETCH_FAILED)
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(secret)) => Ok(secret),
        Ok(None) => Err(failed(format!(
            "failed to get secret '{namespace}/{name}': secret not found"
        ))),
        Err(err) => {
            Err(failed(format!("failed to get secret '{namespace}/{name}'")).with_source(err))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A storage holding one artifact of `gitrepository/apps/lib` with `manifests/lib.yaml`.
    async fn stored_lib() -> (tempfile::TempDir, Shared, ObjectKey, Artifact) {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("manifests")).unwrap();
        std::fs::write(src.join("manifests/lib.yaml"), "lib\n").unwrap();
        let storage = Storage::new(tmp.path().join("storage"), "localhost:9090").unwrap();
        let key = ObjectKey::new("GitRepository", "apps", "lib").unwrap();
        let shared = Shared::new(storage, ArchiveLimits::default());
        let artifact = shared
            .archive_and_store(
                &key,
                src,
                None,
                "abc.tar.gz".to_owned(),
                "master@sha1:abc".to_owned(),
            )
            .await
            .unwrap();
        (tmp, shared, key, artifact)
    }

    #[tokio::test]
    async fn a_stored_artifact_unpacks_from_local_storage() {
        let (tmp, shared, key, artifact) = stored_lib().await;
        let dest = tmp.path().join("work/include-0");
        shared.unpack(&key, &artifact, &dest).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(dest.join("manifests/lib.yaml")).unwrap(),
            "lib\n"
        );
    }

    #[tokio::test]
    async fn a_tampered_artifact_is_refused() {
        let (tmp, shared, key, artifact) = stored_lib().await;
        let file = shared.storage().local_path(&artifact).unwrap();
        let mut modified = std::fs::read(&file).unwrap();
        modified.push(0);
        std::fs::write(&file, modified).unwrap();
        let dest = tmp.path().join("work/include-0");
        let err = shared.unpack(&key, &artifact, &dest).await.unwrap_err();
        assert!(
            matches!(
                err,
                UnpackError::Storage(StorageError::DigestMismatch { .. })
            ),
            "{err:?}"
        );
        assert!(!dest.exists());
    }

    #[tokio::test]
    async fn only_the_owners_own_files_are_unpacked() {
        let (tmp, shared, _key, artifact) = stored_lib().await;
        let dest = tmp.path().join("work/include-0");
        let other = ObjectKey::new("GitRepository", "apps", "other").unwrap();
        let err = shared.unpack(&other, &artifact, &dest).await.unwrap_err();
        assert!(
            matches!(
                err,
                UnpackError::Storage(StorageError::InvalidArtifactPath { .. })
            ),
            "{err:?}"
        );
        let mut escaping = artifact.clone();
        escaping.path = "gitrepository/apps/lib/../other/abc.tar.gz".to_owned();
        let lib = ObjectKey::new("GitRepository", "apps", "lib").unwrap();
        assert!(shared.unpack(&lib, &escaping, &dest).await.is_err());
        assert!(!dest.exists());
    }
}
