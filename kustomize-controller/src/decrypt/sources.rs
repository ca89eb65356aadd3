//! Decrypting, before the build, the files kustomizations reference.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use serde_yaml::Value;

use super::formats::{self, Format, contains};
use super::{DecryptError, Decryptor, MAX_FILE_SIZE};

/// The names kustomize recognises for a kustomization file.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

pub(super) fn decrypt_sources(
    decryptor: &Decryptor,
    root: &Path,
    path: &Path,
) -> Result<(), DecryptError> {
    let root = fs::canonicalize(root).map_err(|source| DecryptError::Io {
        path: root.display().to_string(),
        source,
    })?;
    let start = if path.is_absolute() {
        path.to_path_buf()
    } else {
        root.join(path)
    };
    let start = fs::canonicalize(&start).map_err(|source| DecryptError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if !start.starts_with(&root) {
        return Err(DecryptError::OutsideRoot {
            path: path.display().to_string(),
        });
    }
    let mut walk = Walk {
        decryptor,
        root: &root,
        visited: BTreeSet::new(),
        decrypted: BTreeSet::new(),
    };
    walk.directory(&start)
}

struct Walk<'a> {
    decryptor: &'a Decryptor,
    root: &'a Path,
    visited: BTreeSet<PathBuf>,
    decrypted: BTreeSet<PathBuf>,
}

impl Walk<'_> {
    fn relative(&self, path: &Path) -> String {
        path.strip_prefix(self.root)
            .map(|p| {
                if p.as_os_str().is_empty() {
                    ".".to_string()
                } else {
                    p.display().to_string()
                }
            })
            .unwrap_or_else(|_| path.display().to_string())
    }

    /// Visits the kustomization in `dir` (canonical, inside the root).
    fn directory(&mut self, dir: &Path) -> Result<(), DecryptError> {
        if !self.visited.insert(dir.to_path_buf()) {
            return Ok(());
        }
        let Some(file) = self.kustomization_file(dir)? else {
            return Ok(());
        };
        let invalid = |message: String| DecryptError::Kustomization {
            path: self.relative(&file),
            message,
        };
        let text = fs::read_to_string(&file).map_err(|source| DecryptError::Io {
            path: self.relative(&file),
            source,
        })?;
        let kustomization: Value =
            serde_yaml::from_str(&text).map_err(|err| invalid(format!("not valid YAML: {err}")))?;

        for generator in list(&kustomization, "secretGenerator") {
            for source in strings(generator, "files") {
                let (key, file_path) = source.split_once('=').unwrap_or((source, source));
                self.file(dir, file_path, Format::for_path(key))?;
            }
            let envs = strings(generator, "envs");
            let env = generator.get("env").and_then(Value::as_str);
            for env_file in envs.into_iter().chain(env) {
                let format = match Format::for_path(env_file) {
                    Format::Binary => Format::Dotenv,
                    other => other,
                };
                self.file(dir, env_file, format)?;
            }
        }
        for patch in list(&kustomization, "patches") {
            let Some(patch_path) = patch.get("path").and_then(Value::as_str) else {
                continue;
            };
            if patch_path.is_empty() || is_remote(patch_path) {
                continue;
            }
            self.file(dir, patch_path, Format::for_path(patch_path))?;
        }

        let nested: Vec<String> = strings(&kustomization, "resources")
            .into_iter()
            .chain(strings(&kustomization, "components"))
            .map(str::to_string)
            .collect();
        for reference in nested {
            if is_remote(&reference) {
                continue;
            }
            // Missing paths, files and references leaving the root are the build's concern.
            let Some(target) = self.resolve(dir, &reference) else {
                continue;
            };
            if target.is_dir() {
                self.directory(&target)?;
            }
        }
        Ok(())
    }

    /// The kustomization file of `dir`, if it has one; several is an error.
    fn kustomization_file(&self, dir: &Path) -> Result<Option<PathBuf>, DecryptError> {
        let mut found = None;
        for name in KUSTOMIZATION_FILES {
            let candidate = dir.join(name);
            if fs::symlink_metadata(&candidate).is_err() {
                continue;
            }
            let Some(resolved) = self.resolve(dir, name) else {
                return Err(DecryptError::OutsideRoot {
                    path: self.relative(&candidate),
                });
            };
            if !resolved.is_file() {
                return Err(DecryptError::Kustomization {
                    path: self.relative(&candidate),
                    message: "not a regular file".into(),
                });
            }
            if found.is_some() {
                return Err(DecryptError::Kustomization {
                    path: self.relative(dir),
                    message: "found multiple kustomization files".into(),
                });
            }
            found = Some(resolved);
        }
        Ok(found)
    }

    /// `reference` (relative to `dir`, or absolute inside the root) resolved with its symlinks;
    /// `None` when it does not exist or leaves the root.
    fn resolve(&self, dir: &Path, reference: &str) -> Option<PathBuf> {
        let joined = if Path::new(reference).is_absolute() {
            PathBuf::from(reference)
        } else {
            dir.join(reference)
        };
        let canonical = fs::canonicalize(joined).ok()?;
        canonical.starts_with(self.root).then_some(canonical)
    }

    /// Decrypts the file `reference` (relative to `dir`) in place when it is SOPS-encrypted.
    fn file(&mut self, dir: &Path, reference: &str, format: Format) -> Result<(), DecryptError> {
        let joined = if Path::new(reference).is_absolute() {
            PathBuf::from(reference)
        } else {
            dir.join(reference)
        };
        if !lexically_inside(&joined, self.root) {
            return Err(DecryptError::OutsideRoot {
                path: reference.to_string(),
            });
        }
        let path = fs::canonicalize(&joined).map_err(|source| DecryptError::Io {
            path: self.relative(&normalize(&joined)),
            source,
        })?;
        if !path.starts_with(self.root) {
            return Err(DecryptError::OutsideRoot {
                path: reference.to_string(),
            });
        }
        if self.decrypted.contains(&path) {
            return Ok(());
        }
        let shown = self.relative(&path);
        let metadata = fs::metadata(&path).map_err(|source| DecryptError::Io {
            path: shown.clone(),
            source,
        })?;
        if !metadata.is_file() {
            return Err(DecryptError::NotRegular { path: shown });
        }
        if metadata.len() > MAX_FILE_SIZE {
            return Err(DecryptError::TooLarge {
                path: shown,
                size: metadata.len(),
            });
        }
        let data = fs::read(&path).map_err(|source| DecryptError::Io {
            path: shown.clone(),
            source,
        })?;
        if !contains(&data, format.marker()) {
            return Ok(());
        }
        let plain = formats::decrypt_file(
            &data,
            format,
            format,
            &self.decryptor.identities,
            formats::Mac::Verify,
        )
        .map_err(|source| DecryptError::File {
            path: shown.clone(),
            source: Box::new(source),
        })?;
        let plain = zeroize::Zeroizing::new(plain);
        fs::write(&path, &*plain).map_err(|source| DecryptError::Io {
            path: shown,
            source,
        })?;
        self.decrypted.insert(path);
        Ok(())
    }
}

/// The sequence at `key` of a mapping (empty when absent or not a sequence).
fn list<'v>(value: &'v Value, key: &str) -> &'v [Value] {
    value
        .get(key)
        .and_then(Value::as_sequence)
        .map_or(&[], Vec::as_slice)
}

/// The strings of the sequence at `key`.
fn strings<'v>(value: &'v Value, key: &str) -> Vec<&'v str> {
    list(value, key).iter().filter_map(Value::as_str).collect()
}

/// Whether a reference is a remote URL (`https://host/...`, `git@host:...`).
fn is_remote(reference: &str) -> bool {
    reference
        .split_once("://")
        .is_some_and(|(scheme, rest)| !scheme.is_empty() && !rest.is_empty())
        || reference.starts_with("git@")
}

/// `path` with `.` and `..` resolved lexically.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Whether `path`, resolved lexically, stays inside `root`.
fn lexically_inside(path: &Path, root: &Path) -> bool {
    let mut depth: usize = 0;
    let Ok(relative) = normalize_keep_parents(path)
        .strip_prefix(root)
        .map(Path::to_path_buf)
    else {
        return false;
    };
    for component in relative.components() {
        match component {
            Component::ParentDir => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
            }
            Component::Normal(_) => depth += 1,
            _ => {}
        }
    }
    true
}

/// `path` with `.` removed but `..` kept (so a climb above the root can be seen).
fn normalize_keep_parents(path: &Path) -> PathBuf {
    path.components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect()
}
