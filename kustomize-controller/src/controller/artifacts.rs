//! Source artifacts unpacked once and shared by every Kustomization that builds from them.
//!
//! A thousand Kustomizations of one repository would otherwise each download, verify and
//! unpack the whole artifact on every reconcile. Here each artifact (by digest) is fetched
//! once into a directory that builds only read: Flux's overlay goes to the engine in memory
//! (`BuildOptions::top_kustomization`) and generated kustomizations never touch the disk. A
//! Kustomization that must change files before the build (SOPS-encrypted sources) still gets a
//! private copy.
//!
//! The most recently used artifacts are kept ([`ArtifactCache::new`]'s capacity); an evicted
//! one is removed from disk once the last build using it lets go of it.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;
use toolkit_sdk::api::Artifact;
use toolkit_sdk::artifact_fetch::{ArtifactFetcher, FetchError};

/// An unpacked artifact, removed from disk when the last holder drops it.
#[derive(Debug)]
pub struct SharedTree {
    path: PathBuf,
}

impl SharedTree {
    /// The unpacked tree. Never write into it: other builds read it at the same time.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SharedTree {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove an unpacked artifact");
        }
    }
}

type Slot = Arc<OnceCell<Arc<SharedTree>>>;

/// Unpacked artifacts by digest.
#[derive(Debug)]
pub struct ArtifactCache {
    root: tempfile::TempDir,
    capacity: usize,
    next: AtomicU64,
    slots: Mutex<VecDeque<(String, Slot)>>,
}

impl ArtifactCache {
    /// A cache keeping up to `capacity` unpacked artifacts in a fresh temporary directory.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(capacity: usize) -> std::io::Result<Self> {
        Ok(Self {
            root: tempfile::Builder::new().prefix("artifacts-").tempdir()?,
            capacity: capacity.max(1),
            next: AtomicU64::new(0),
            slots: Mutex::new(VecDeque::new()),
        })
    }

    /// The unpacked tree of `artifact`, fetched (digest verified) on first use. Concurrent
    /// callers for the same artifact wait for one fetch.
    ///
    /// # Errors
    /// The fetch failed (nothing is cached then; the next call tries again).
    pub async fn get(
        &self,
        fetcher: &ArtifactFetcher,
        artifact: &Artifact,
    ) -> Result<Arc<SharedTree>, FetchError> {
        // Without a digest (older sources), the revision names the content.
        let key = match &artifact.digest {
            Some(digest) => digest.clone(),
            None => format!("{}#{}", artifact.url, artifact.revision),
        };
        let slot = self.slot(&key);
        let tree = slot
            .get_or_try_init(|| async {
                let path = self
                    .root
                    .path()
                    .join(self.next.fetch_add(1, Ordering::Relaxed).to_string());
                match fetcher.fetch_artifact(artifact, &path).await {
                    Ok(_) => Ok(Arc::new(SharedTree { path })),
                    Err(err) => {
                        let _ = std::fs::remove_dir_all(&path);
                        Err(err)
                    }
                }
            })
            .await?;
        Ok(tree.clone())
    }

    /// The slot of `key`, made most recently used; the least recently used slots beyond the
    /// capacity are dropped.
    fn slot(&self, key: &str) -> Slot {
        let mut slots = self
            .slots
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = match slots.iter().position(|(k, _)| k == key) {
            Some(index) => slots.remove(index).map(|(_, slot)| slot),
            None => None,
        }
        .unwrap_or_default();
        slots.push_back((key.to_owned(), slot.clone()));
        while slots.len() > self.capacity {
            slots.pop_front();
        }
        slot
    }
}

/// Whether the files below `path` differ between two unpacked trees (names, contents, or a
/// side missing). Only an ordering hint: a build may also read files outside its path.
pub fn path_changed(old: &Path, new: &Path, path: &str) -> bool {
    let relative = path.trim_start_matches("./");
    digest_below(&old.join(relative)) != digest_below(&new.join(relative))
}

/// A digest of every file below `dir` (relative names and contents, in name order); `None`
/// when `dir` cannot be read.
fn digest_below(dir: &Path) -> Option<[u8; 32]> {
    use sha2::Digest as _;
    fn walk(dir: &Path, base: &Path, hasher: &mut sha2::Sha256) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let kind = entry.file_type()?;
            let name = path.strip_prefix(base).unwrap_or(&path);
            hasher.update(name.as_os_str().as_encoded_bytes());
            hasher.update([0]);
            if kind.is_dir() {
                walk(&path, base, hasher)?;
            } else if kind.is_file() {
                hasher.update(std::fs::read(&path)?);
                hasher.update([0]);
            }
        }
        Ok(())
    }
    let mut hasher = sha2::Sha256::new();
    walk(dir, dir, &mut hasher).ok()?;
    Some(hasher.finalize().into())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        dir
    }

    #[test]
    fn only_paths_whose_files_differ_are_changed() {
        let old = tree(&[("apps/a/x.yaml", "1"), ("apps/b/x.yaml", "1")]);
        let new = tree(&[
            ("apps/a/x.yaml", "2"),
            ("apps/b/x.yaml", "1"),
            ("apps/c/x.yaml", "1"),
        ]);
        assert!(path_changed(old.path(), new.path(), "./apps/a"));
        assert!(!path_changed(old.path(), new.path(), "./apps/b"));
        assert!(!path_changed(old.path(), new.path(), "apps/b"));
        // A new path, or a file added below one, is a change.
        assert!(path_changed(old.path(), new.path(), "./apps/c"));
        assert!(path_changed(old.path(), new.path(), "./apps"));
    }
}
