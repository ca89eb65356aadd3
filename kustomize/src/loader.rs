//! Reading the files a kustomization names.
//!
//! A [`Loader`] is rooted at one kustomization directory. Relative references are resolved against
//! that root; with [`LoadRestrictions::RootOnly`] (the default, like `kubectl kustomize`) a file
//! must stay in or below the root after symlinks are resolved. Directories of other kustomizations
//! (bases, components) may sit anywhere, but never at or above a kustomization already being
//! built: that is how kustomize detects cycles, and how we do.
//!
//! Remote references (`https://...`, `github.com/...`, `git::...`) are refused: this engine builds
//! what is on disk, as Flux does with `--no-remote-bases`.
//!
//! [`parse_resources`] turns a YAML stream into objects; [`generate_kustomization`] lists the
//! manifests of a directory that has no kustomization file, as Flux's kustomize-controller does.

mod values;

use std::path::{Component, Path, PathBuf};

use serde::de::DeserializeSeed;

use serde_yaml::Value;

use crate::error::Error;
use crate::kustomization::{Kustomization, find_kustomization_file};

/// Whether files outside a kustomization's directory may be read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LoadRestrictions {
    /// Files must be in or below the kustomization directory (`LoadRestrictionsRootOnly`).
    #[default]
    RootOnly,
    /// Any file may be read (`LoadRestrictionsNone`).
    None,
}

impl std::str::FromStr for LoadRestrictions {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "LoadRestrictionsRootOnly" | "rootOnly" => Ok(Self::RootOnly),
            "LoadRestrictionsNone" | "none" => Ok(Self::None),
            other => Err(format!(
                "unknown load restrictor '{other}' (expected LoadRestrictionsRootOnly or LoadRestrictionsNone)"
            )),
        }
    }
}

/// Reads files relative to one kustomization directory, under a load restrictor.
#[derive(Debug, Clone)]
pub struct Loader {
    root: PathBuf,
    kustomization_file: PathBuf,
    restrictions: LoadRestrictions,
    confinement: Option<PathBuf>,
}

impl Loader {
    /// A loader rooted at `root` (made absolute, symlinks resolved). `kustomization_file` is the
    /// file named in error messages (the kustomization whose references are being read).
    pub fn new(
        root: &Path,
        kustomization_file: &Path,
        restrictions: LoadRestrictions,
    ) -> Result<Self, Error> {
        let root = root.canonicalize().map_err(|source| Error::Io {
            path: root.to_path_buf(),
            source,
        })?;
        Ok(Self {
            root,
            kustomization_file: kustomization_file.to_path_buf(),
            restrictions,
            confinement: None,
        })
    }

    /// Confines every path this loader resolves (files and directories) to `dir`, which must
    /// be absolute with symlinks resolved: see [`crate::BuildOptions::confine_to`].
    pub fn confined_to(mut self, dir: Option<PathBuf>) -> Self {
        self.confinement = dir;
        self
    }

    /// The kustomization directory (absolute, symlinks resolved).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The kustomization file this loader reads for.
    pub fn kustomization_file(&self) -> &Path {
        &self.kustomization_file
    }

    /// The load restrictor in force.
    pub fn restrictions(&self) -> LoadRestrictions {
        self.restrictions
    }

    /// The absolute, lexically cleaned path of `reference` (not checked against anything).
    pub fn join(&self, reference: &str) -> PathBuf {
        clean(&self.root.join(reference))
    }

    /// Resolves `reference` to an existing path (symlinks resolved), refusing remote URLs, and
    /// files outside the root under [`LoadRestrictions::RootOnly`].
    pub fn resolve_file(&self, reference: &str) -> Result<PathBuf, Error> {
        let path = self.resolve_existing(reference)?;
        if self.restrictions == LoadRestrictions::RootOnly && !path.starts_with(&self.root) {
            return Err(Error::OutsideRoot {
                kustomization: self.kustomization_file.clone(),
                path,
                root: self.root.clone(),
            });
        }
        Ok(path)
    }

    /// Resolves `reference` to an existing path (symlinks resolved) without the load restrictor:
    /// for directories of other kustomizations.
    pub fn resolve_existing(&self, reference: &str) -> Result<PathBuf, Error> {
        if is_remote(reference) {
            return Err(Error::RemoteNotSupported {
                kustomization: self.kustomization_file.clone(),
                reference: reference.to_string(),
            });
        }
        let joined = self.join(reference);
        let path = joined.canonicalize().map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                Error::NotFound {
                    kustomization: self.kustomization_file.clone(),
                    reference: reference.to_string(),
                    path: joined.clone(),
                }
            } else {
                Error::Io {
                    path: joined.clone(),
                    source,
                }
            }
        })?;
        if let Some(confinement) = &self.confinement
            && !path.starts_with(confinement)
        {
            return Err(Error::OutsideRoot {
                kustomization: self.kustomization_file.clone(),
                path,
                root: confinement.clone(),
            });
        }
        Ok(path)
    }

    /// The bytes of the file `reference`.
    pub fn read(&self, reference: &str) -> Result<Vec<u8>, Error> {
        let path = self.resolve_file(reference)?;
        std::fs::read(&path).map_err(|source| Error::Io { path, source })
    }

    /// The text of the file `reference` (UTF-8).
    pub fn read_to_string(&self, reference: &str) -> Result<String, Error> {
        let path = self.resolve_file(reference)?;
        read_text(&path)
    }

    /// The entries of the directory `reference` (file names, sorted), under the load restrictor.
    pub fn list_dir(&self, reference: &str) -> Result<Vec<String>, Error> {
        let path = self.resolve_file(reference)?;
        let entries = std::fs::read_dir(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Whether `reference` names an existing directory (no restrictor check).
    pub fn is_dir(&self, reference: &str) -> bool {
        !is_remote(reference) && self.join(reference).is_dir()
    }
}

/// Generators and replacements read their files through the loader, under its restrictor. A
/// directory is refused: kustomize requires a file.
impl crate::generators::FileSource for Loader {
    fn read_file(&self, path: &str) -> Result<Vec<u8>, crate::generators::FileSourceError> {
        let resolved = self.resolve_file(path)?;
        if resolved.is_dir() {
            return Err(Box::new(Error::Invalid {
                path: resolved,
                message: "is a directory, not a file".to_string(),
            }));
        }
        std::fs::read(&resolved).map_err(|source| {
            Box::new(Error::Io {
                path: resolved,
                source,
            }) as crate::generators::FileSourceError
        })
    }
}

/// Reads a UTF-8 file.
pub(crate) fn read_text(path: &Path) -> Result<String, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|_| Error::InvalidResource {
        path: path.to_path_buf(),
        message: "the file is not UTF-8 text".to_string(),
    })
}

/// Whether a reference is a remote URL (git or HTTP) rather than a local path.
pub fn is_remote(reference: &str) -> bool {
    const PREFIXES: [&str; 9] = [
        "git::",
        "gh:",
        "ssh://",
        "https://",
        "http://",
        "git@",
        "github.com:",
        "github.com/",
        "file://",
    ];
    let lower = reference.to_ascii_lowercase();
    PREFIXES.iter().any(|prefix| lower.starts_with(prefix))
}

/// Removes `.` and resolves `..` lexically (without touching the file system).
pub fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Parses the documents of a YAML (or JSON) stream, typing unquoted scalars as kustomize does
/// and resolving merge keys; empty documents are kept as nulls.
pub fn parse_documents(text: &str, path: &Path) -> Result<Vec<Value>, Error> {
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(text) {
        let mut value = values::Document { input: text }
            .deserialize(document)
            .map_err(|err| malformed(path, &err))?;
        value.apply_merge().map_err(|err| malformed(path, &err))?;
        documents.push(value);
    }
    Ok(documents)
}

/// Parses a YAML (or JSON) stream into Kubernetes objects.
///
/// Unquoted scalars are typed as kustomize types them (`0644` is the octal 420, a date becomes
/// its RFC 3339 string, ...: see the `values` module); merge keys are resolved.
///
/// Empty documents are skipped; `FooList` objects with `items` are replaced by their items (as
/// kustomize does). Every object must be a mapping with a `kind` and a `metadata.name`, and no list
/// may hold a null item. Errors name `path`, with line and column for malformed YAML.
pub fn parse_resources(text: &str, path: &Path) -> Result<Vec<Value>, Error> {
    let documents = parse_documents(text, path)?;
    let mut objects = Vec::new();
    let mut queue: std::collections::VecDeque<Value> = documents.into();
    while let Some(value) = queue.pop_front() {
        if is_empty(&value) {
            continue;
        }
        validate_object(&value, path)?;
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if kind.ends_with("List")
            && let Some(items) = value.get("items")
        {
            match items {
                Value::Sequence(items) => {
                    for item in items.iter().rev() {
                        queue.push_front(item.clone());
                    }
                }
                Value::Null => {}
                _ => {
                    return Err(Error::InvalidResource {
                        path: path.to_path_buf(),
                        message: format!("expected a list in {kind}/items"),
                    });
                }
            }
            continue;
        }
        objects.push(value);
    }
    Ok(objects)
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Mapping(map) => map.is_empty(),
        _ => false,
    }
}

/// Turns a serde_yaml error into [`Error::MalformedYaml`] with the file, line and column.
pub fn malformed(path: &Path, err: &serde_yaml::Error) -> Error {
    let location = err.location();
    let message = err.to_string();
    let message = match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message,
    };
    Error::MalformedYaml {
        path: path.to_path_buf(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message,
    }
}

fn validate_object(value: &Value, path: &Path) -> Result<(), Error> {
    let invalid = |message: String| Error::InvalidResource {
        path: path.to_path_buf(),
        message,
    };
    if !value.is_mapping() {
        return Err(invalid(
            "missing Resource metadata: a document is not a mapping".to_string(),
        ));
    }
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if kind.is_empty() {
        return Err(invalid("missing Resource metadata: no 'kind'".to_string()));
    }
    let is_list = kind.ends_with("List") && value.get("items").is_some();
    let name = value
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if name.is_empty() && !is_list {
        return Err(invalid(format!("missing metadata.name in a {kind} object")));
    }
    if let Some(field) = null_item(value, &mut Vec::new()) {
        return Err(invalid(format!("empty item at {field} in {kind} {name}")));
    }
    Ok(())
}

/// The path of the first null item of a list, if any.
fn null_item(value: &Value, path: &mut Vec<String>) -> Option<String> {
    match value {
        Value::Mapping(map) => {
            for (key, child) in map {
                path.push(key.as_str().unwrap_or("?").to_string());
                let found = null_item(child, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        Value::Sequence(items) => {
            for (index, item) in items.iter().enumerate() {
                if item.is_null() {
                    return Some(format!("{}[{index}]", path.join(".")));
                }
                path.push(format!("[{index}]"));
                let found = null_item(item, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            None
        }
        _ => None,
    }
}

/// What Flux's kustomize-controller does for a directory without a kustomization file: a
/// kustomization listing every `.yaml`/`.yml` file below `dir` (recursively, in lexical order),
/// where a subdirectory that has its own kustomization file is listed as a directory and not
/// descended into. Every listed file must parse as Kubernetes objects.
pub fn generate_kustomization(dir: &Path) -> Result<Kustomization, Error> {
    let mut resources = Vec::new();
    scan_manifests(dir, dir, &mut resources)?;
    Ok(Kustomization {
        resources,
        ..Kustomization::default()
    })
}

fn scan_manifests(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), Error> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut paths = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        // Like Go's filepath.Walk: a symlink to a directory is not descended into.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        paths.push((entry.path(), is_dir));
    }
    paths.sort();
    for (path, is_dir) in paths {
        let relative = path
            .strip_prefix(base)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if is_dir {
            if find_kustomization_file(&path)?.is_some() {
                out.push(relative);
            } else {
                scan_manifests(base, &path, out)?;
            }
            continue;
        }
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if extension != "yaml" && extension != "yml" {
            continue;
        }
        let text = read_text(&path)?;
        parse_resources(&text, &path)?;
        out.push(relative);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n";

    #[test]
    fn multi_document_streams_skip_empty_documents_and_expand_lists() {
        let text = "---\n# only a comment\n---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: b}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: c}\n";
        let objects = parse_resources(text, Path::new("f.yaml")).unwrap();
        let kinds: Vec<_> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ConfigMap", "Secret", "Service"]);
    }

    #[test]
    fn anchors_and_merge_keys_are_resolved() {
        let text = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: &l {a: b}\n  annotations:\n    <<: *l\n    x: y\ndata:\n  k: &v hello\n  k2: *v\n";
        let objects = parse_resources(text, Path::new("f")).unwrap();
        let expected: Value = serde_yaml::from_str(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  labels: {a: b}\n  annotations: {a: b, x: y}\ndata: {k: hello, k2: hello}\n",
        )
        .unwrap();
        assert_eq!(objects, [expected]);
    }

    #[test]
    fn malformed_yaml_names_file_line_and_column() {
        let err = parse_resources("apiVersion: v1\nkind: [\n", Path::new("dir/bad.yaml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dir/bad.yaml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("column"), "{err}");
    }

    #[test]
    fn objects_need_kind_and_name() {
        assert!(parse_resources("foo: bar\n", Path::new("f")).is_err());
        assert!(parse_resources("- a\n", Path::new("f")).is_err());
        assert!(parse_resources("apiVersion: v1\nkind: ConfigMap\n", Path::new("f")).is_err());
        let err = parse_resources(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  x: [1, null]\n",
            Path::new("f"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("empty item"), "{err}");
    }

    #[test]
    fn remote_references_are_recognised() {
        for remote in [
            "https://github.com/org/repo//dir?ref=v1",
            "github.com/org/repo/dir",
            "git::https://example.com/repo.git",
            "git@github.com:org/repo.git",
            "ssh://git@example.com/repo",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in ["base", "../base", "deploy.yaml", "githubcom/x"] {
            assert!(!is_remote(local), "{local}");
        }
    }

    #[test]
    fn restrictor_refuses_files_outside_the_root_unless_disabled() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "outside.yaml", CM);
        write(tmp.path(), "app/inside.yaml", CM);
        let app = tmp.path().join("app");
        let kfile = app.join("kustomization.yaml");
        let loader = Loader::new(&app, &kfile, LoadRestrictions::RootOnly).unwrap();
        assert!(loader.read_to_string("inside.yaml").is_ok());
        let err = loader.read_to_string("../outside.yaml").unwrap_err();
        assert!(matches!(err, Error::OutsideRoot { .. }), "{err}");
        let open = Loader::new(&app, &kfile, LoadRestrictions::None).unwrap();
        assert!(open.read_to_string("../outside.yaml").is_ok());
        let missing = loader.read_to_string("nope.yaml").unwrap_err().to_string();
        assert!(missing.contains("nope.yaml"), "{missing}");
        let remote = loader
            .read_to_string("https://example.com/x.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            remote.contains("remote bases are not supported"),
            "{remote}"
        );
    }

    #[test]
    fn confinement_bounds_every_path_whatever_the_restrictor() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "host.yaml", CM);
        write(tmp.path(), "artifact/shared/patch.yaml", CM);
        write(tmp.path(), "artifact/app/inside.yaml", CM);
        let artifact = tmp.path().join("artifact").canonicalize().unwrap();
        let app = artifact.join("app");
        let kfile = app.join("kustomization.yaml");
        let loader = Loader::new(&app, &kfile, LoadRestrictions::None)
            .unwrap()
            .confined_to(Some(artifact.clone()));
        // Any file of the artifact, even outside the kustomization directory.
        assert!(loader.read_to_string("../shared/patch.yaml").is_ok());
        assert!(loader.resolve_existing("../shared").is_ok());
        // Nothing of the host, neither files nor directories.
        let err = loader.read_to_string("../../host.yaml").unwrap_err();
        assert!(
            matches!(&err, Error::OutsideRoot { root, .. } if root == &artifact),
            "{err}"
        );
        assert!(loader.resolve_existing("../..").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn restrictor_follows_symlinks() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "outside.yaml", CM);
        std::fs::create_dir_all(tmp.path().join("app")).unwrap();
        std::os::unix::fs::symlink(
            tmp.path().join("outside.yaml"),
            tmp.path().join("app/link.yaml"),
        )
        .unwrap();
        let app = tmp.path().join("app");
        let loader = Loader::new(&app, &app.join("k"), LoadRestrictions::RootOnly).unwrap();
        assert!(matches!(
            loader.read_to_string("link.yaml"),
            Err(Error::OutsideRoot { .. })
        ));
    }

    #[test]
    fn generated_kustomization_lists_manifests_recursively() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "b.yaml", CM);
        write(tmp.path(), "a.yml", CM);
        write(tmp.path(), "notes.txt", "not yaml");
        write(tmp.path(), "sub/c.yaml", CM);
        write(tmp.path(), "sub/deeper/d.yaml", CM);
        write(
            tmp.path(),
            "app/kustomization.yaml",
            "resources: [e.yaml]\n",
        );
        write(tmp.path(), "app/e.yaml", CM);
        let k = generate_kustomization(tmp.path()).unwrap();
        assert_eq!(
            k.resources,
            ["a.yml", "app", "b.yaml", "sub/c.yaml", "sub/deeper/d.yaml"]
        );
        write(tmp.path(), "sub/bad.yaml", "a: [\n");
        let err = generate_kustomization(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("bad.yaml"), "{err}");
    }

    #[test]
    fn file_source_reads_files_under_the_restrictor() {
        use crate::generators::FileSource;
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "app/data.txt", "hello");
        write(tmp.path(), "secret.txt", "nope");
        std::fs::create_dir_all(tmp.path().join("app/dir")).unwrap();
        let app = tmp.path().join("app");
        let loader = Loader::new(&app, &app.join("k"), LoadRestrictions::RootOnly).unwrap();
        assert_eq!(loader.read_file("data.txt").unwrap(), b"hello");
        assert!(loader.read_file("../secret.txt").is_err());
        assert!(loader.read_file("dir").is_err());
        assert!(loader.read_file("missing.txt").is_err());
    }

    #[test]
    fn clean_resolves_dots() {
        assert_eq!(clean(Path::new("/a/b/../c/./d")), PathBuf::from("/a/c/d"));
        assert_eq!(clean(Path::new("a/../..")), PathBuf::from(".."));
        assert_eq!(clean(Path::new("../../x")), PathBuf::from("../../x"));
        assert_eq!(clean(Path::new("../a/../b")), PathBuf::from("../b"));
        assert_eq!(clean(Path::new("/..")), PathBuf::from("/"));
    }
}
