//! Flux's overlay: the Kustomization's `targetNamespace`, `namePrefix`, `nameSuffix`,
//! `patches`, `images` and `components` written into the kustomization file of the build
//! directory before the build, as Flux's kustomize-controller does.
//!
//! A directory without a kustomization file gets one listing its manifests first (every
//! `.yaml`/`.yml` file below it; a subdirectory with its own kustomization file is listed as a
//! directory). Then the spec is merged in:
//!
//! - `targetNamespace` replaces `namespace`;
//! - `namePrefix` and `nameSuffix` replace the file's own;
//! - `patches` are appended after the file's own;
//! - `images` replace the file's entry of the same `name`, or are appended;
//! - `components` are appended; with `ignoreMissingComponents`, those that do not exist in the
//!   artifact are left out.
//!
//! The file is written only when the spec asks for something, so a plain Kustomization builds
//! the directory exactly as `kubectl kustomize` would.

use std::path::{Path, PathBuf};

use serde_yaml::{Mapping, Value};

use crate::api::v1::{KustomizationSpec, Selector};

/// Why the overlay could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The directory's manifests or kustomization file could not be read.
    #[error(transparent)]
    Kustomize(#[from] ferroflux_kustomize::Error),
    /// The kustomization file is not a YAML mapping.
    #[error("{}: not a valid kustomization file", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_yaml::Error,
    },
    /// The kustomization file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A component listed in `spec.components` does not exist.
    #[error(
        "component '{component}' not found in the source (set ignoreMissingComponents to skip it)"
    )]
    MissingComponent {
        /// The component path as written.
        component: String,
    },
}

/// Whether the spec changes the build at all.
pub fn has_overlay(spec: &KustomizationSpec) -> bool {
    spec.target_namespace.is_some()
        || spec.name_prefix.is_some()
        || spec.name_suffix.is_some()
        || !spec.patches.is_empty()
        || !spec.images.is_empty()
        || !spec.components.is_empty()
}

/// Writes the overlay of `spec` into the kustomization file of `dir` (creating one when the
/// directory has none).
///
/// # Errors
/// See [`GenerateError`].
pub fn write_overlay(dir: &Path, spec: &KustomizationSpec) -> Result<(), GenerateError> {
    let Some((file, text)) = overlay(dir, spec)? else {
        return Ok(());
    };
    std::fs::write(&file, text).map_err(|source| GenerateError::Write { path: file, source })
}

/// The kustomization file of `dir` with the overlay of `spec` merged in, and the path it
/// stands for, without writing anything (for `BuildOptions::top_kustomization`); `None` when
/// the spec changes nothing.
///
/// # Errors
/// See [`GenerateError`].
pub fn overlay(
    dir: &Path,
    spec: &KustomizationSpec,
) -> Result<Option<(PathBuf, String)>, GenerateError> {
    if !has_overlay(spec) {
        return Ok(None);
    }
    let (file, mut document) =
        match ferroflux_kustomize::kustomization::find_kustomization_file(dir)? {
            Some(file) => {
                let text = std::fs::read_to_string(&file).map_err(|source| {
                    ferroflux_kustomize::Error::Io {
                        path: file.clone(),
                        source,
                    }
                })?;
                let value: Value =
                    serde_yaml::from_str(&text).map_err(|source| GenerateError::Invalid {
                        path: file.clone(),
                        source,
                    })?;
                let mapping = match value {
                    Value::Mapping(mapping) => mapping,
                    Value::Null => Mapping::new(),
                    _ => {
                        return Err(GenerateError::Invalid {
                            path: file.clone(),
                            source: serde::de::Error::custom("expected a mapping"),
                        });
                    }
                };
                (file, mapping)
            }
            None => {
                let generated = ferroflux_kustomize::loader::generate_kustomization(dir)?;
                let mut mapping = Mapping::new();
                mapping.insert(
                    "apiVersion".into(),
                    "kustomize.config.k8s.io/v1beta1".into(),
                );
                mapping.insert("kind".into(), "Kustomization".into());
                mapping.insert(
                    "resources".into(),
                    Value::Sequence(generated.resources.into_iter().map(Value::from).collect()),
                );
                (dir.join("kustomization.yaml"), mapping)
            }
        };
    merge(&mut document, spec, dir)?;
    let text = serde_yaml::to_string(&Value::Mapping(document)).map_err(|source| {
        GenerateError::Invalid {
            path: file.clone(),
            source,
        }
    })?;
    Ok(Some((file, text)))
}

/// Merges the overlay of `spec` into the kustomization `document` of `dir`.
fn merge(
    document: &mut Mapping,
    spec: &KustomizationSpec,
    dir: &Path,
) -> Result<(), GenerateError> {
    if let Some(namespace) = &spec.target_namespace {
        document.insert("namespace".into(), namespace.as_str().into());
    }
    if let Some(prefix) = &spec.name_prefix {
        document.insert("namePrefix".into(), prefix.as_str().into());
    }
    if let Some(suffix) = &spec.name_suffix {
        document.insert("nameSuffix".into(), suffix.as_str().into());
    }
    if !spec.patches.is_empty() {
        let mut patches = take_sequence(document, "patches");
        for patch in &spec.patches {
            let mut entry = Mapping::new();
            entry.insert("patch".into(), patch.patch.as_str().into());
            if let Some(target) = &patch.target {
                entry.insert("target".into(), Value::Mapping(selector(target)));
            }
            patches.push(Value::Mapping(entry));
        }
        document.insert("patches".into(), Value::Sequence(patches));
    }
    if !spec.images.is_empty() {
        let mut images = take_sequence(document, "images");
        for image in &spec.images {
            let mut entry = Mapping::new();
            entry.insert("name".into(), image.name.as_str().into());
            for (key, value) in [
                ("newName", &image.new_name),
                ("newTag", &image.new_tag),
                ("digest", &image.digest),
            ] {
                if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                    entry.insert(key.into(), value.into());
                }
            }
            let existing = images
                .iter_mut()
                .find(|i| i.get("name").and_then(Value::as_str) == Some(image.name.as_str()));
            match existing {
                Some(slot) => *slot = Value::Mapping(entry),
                None => images.push(Value::Mapping(entry)),
            }
        }
        document.insert("images".into(), Value::Sequence(images));
    }
    if !spec.components.is_empty() {
        let mut wanted = Vec::new();
        for component in &spec.components {
            if dir.join(component).exists() {
                wanted.push(component.clone());
            } else if spec.ignore_missing_components {
                tracing::debug!(%component, "component not found; ignored");
            } else {
                return Err(GenerateError::MissingComponent {
                    component: component.clone(),
                });
            }
        }
        let mut components = take_sequence(document, "components");
        components.extend(wanted.into_iter().map(Value::from));
        document.insert("components".into(), Value::Sequence(components));
    }
    Ok(())
}

/// The items of the sequence under `key` (empty when absent or not a sequence); the caller
/// puts the sequence back.
fn take_sequence(document: &mut Mapping, key: &str) -> Vec<Value> {
    match document.remove(key) {
        Some(Value::Sequence(items)) => items,
        _ => Vec::new(),
    }
}

/// A kustomize patch target.
fn selector(target: &Selector) -> Mapping {
    let mut out = Mapping::new();
    for (key, value) in [
        ("group", &target.group),
        ("version", &target.version),
        ("kind", &target.kind),
        ("name", &target.name),
        ("namespace", &target.namespace),
        ("labelSelector", &target.label_selector),
        ("annotationSelector", &target.annotation_selector),
    ] {
        if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
            out.insert(key.into(), value.into());
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ferroflux_kustomize::BuildOptions;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> KustomizationSpec {
        let mut base = json!({
            "interval": "1m", "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "s"}
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        serde_json::from_value(base).unwrap()
    }

    fn write(dir: &Path, name: &str, text: &str) {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn build(dir: &Path) -> Vec<serde_yaml::Value> {
        ferroflux_kustomize::build(dir, &BuildOptions::default())
            .unwrap()
            .into_iter()
            .map(|r| r.value)
            .collect()
    }

    const CM: &str =
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm\n  namespace: a\ndata:\n  k: v\n";
    const DEPLOY: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n      - name: web\n        image: nginx:1.0\n";

    #[test]
    fn plain_directory_gets_a_kustomization_with_the_overlay() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "cm.yaml", CM);
        write(tmp.path(), "sub/deploy.yml", DEPLOY);
        write(tmp.path(), "README.md", "not yaml");
        let spec = spec(json!({
            "targetNamespace": "prod", "namePrefix": "p-", "nameSuffix": "-s",
            "images": [{"name": "nginx", "newTag": "1.25"}],
            "patches": [{
                "patch": "- op: add\n  path: /metadata/labels\n  value: {patched: \"yes\"}",
                "target": {"kind": "ConfigMap"}
            }]
        }));
        write_overlay(tmp.path(), &spec).unwrap();
        let objects = build(tmp.path());
        assert_eq!(objects.len(), 2);
        let cm = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
        assert_eq!(cm["metadata"]["name"], "p-cm-s");
        assert_eq!(cm["metadata"]["namespace"], "prod");
        assert_eq!(cm["metadata"]["labels"]["patched"], "yes");
        let deploy = objects.iter().find(|o| o["kind"] == "Deployment").unwrap();
        assert_eq!(deploy["metadata"]["name"], "p-web-s");
        assert_eq!(
            deploy["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.25"
        );
    }

    #[test]
    fn existing_kustomization_is_merged_not_replaced() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "cm.yaml", CM);
        write(
            tmp.path(),
            "kustomization.yaml",
            "resources: [cm.yaml]\nnamespace: old\nimages:\n- name: nginx\n  newTag: '0.1'\n- name: redis\n  newTag: '7'\ncommonLabels:\n  team: a\n",
        );
        write(
            tmp.path(),
            "comp/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\ncommonAnnotations:\n  from: component\n",
        );
        let spec = spec(json!({
            "targetNamespace": "new",
            "images": [{"name": "nginx", "newName": "mirror/nginx"}],
            "components": ["comp", "missing"],
            "ignoreMissingComponents": true
        }));
        write_overlay(tmp.path(), &spec).unwrap();
        let written: serde_yaml::Value = serde_yaml::from_str(
            &std::fs::read_to_string(tmp.path().join("kustomization.yaml")).unwrap(),
        )
        .unwrap();
        assert_eq!(written["namespace"], "new");
        assert_eq!(written["commonLabels"]["team"], "a");
        assert_eq!(written["images"][0]["newName"], "mirror/nginx");
        assert!(written["images"][0].get("newTag").is_none());
        assert_eq!(written["images"][1]["name"], "redis");
        assert_eq!(
            written["components"],
            serde_yaml::from_str::<serde_yaml::Value>("[comp]").unwrap()
        );
        let objects = build(tmp.path());
        assert_eq!(objects[0]["metadata"]["namespace"], "new");
        assert_eq!(objects[0]["metadata"]["annotations"]["from"], "component");
    }

    #[test]
    fn missing_component_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "cm.yaml", CM);
        let err = write_overlay(tmp.path(), &spec(json!({"components": ["nope"]}))).unwrap_err();
        assert!(err.to_string().contains("'nope'"), "{err}");
    }

    #[test]
    fn nothing_is_written_without_an_overlay() {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), "cm.yaml", CM);
        write_overlay(tmp.path(), &spec(json!({}))).unwrap();
        assert!(!tmp.path().join("kustomization.yaml").exists());
    }
}
