//! The kustomization file: its schema, and how it is found and read.
//!
//! [`Kustomization`] mirrors `kustomize.config.k8s.io/v1beta1` `Kustomization` (and
//! `kustomize.config.k8s.io/v1alpha1` `Component`) field for field. Unknown fields are refused,
//! as `kubectl kustomize` refuses them, with the file and the field in the message.
//!
//! The nested types (patches, selectors, generator arguments, replacements, ...) are the file's
//! schema; the modules that act on them (`patch`, `generators`, `replacements`, `transform`) take
//! them as input.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;
pub use crate::generators::{ConfigMapArgs, GeneratorOptions, SecretArgs};
pub use crate::replacements::ReplacementField;
pub use crate::transform::{Image, Label, Replica};

/// `apiVersion` of a `Kustomization`.
pub const KUSTOMIZATION_API_VERSION: &str = "kustomize.config.k8s.io/v1beta1";
/// `kind` of a kustomization.
pub const KUSTOMIZATION_KIND: &str = "Kustomization";
/// `apiVersion` of a `Component`.
pub const COMPONENT_API_VERSION: &str = "kustomize.config.k8s.io/v1alpha1";
/// `kind` of a component.
pub const COMPONENT_KIND: &str = "Component";

/// The file names kustomize recognises, in the order it tries them.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// String-to-string map (labels, annotations); sorted, as kustomize iterates Go maps sorted.
pub type StringMap = BTreeMap<String, String>;

/// Deserializes a [`StringMap`] where a null value stands for the empty string (as Go's JSON
/// decoding leaves it).
fn string_map<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<StringMap, D::Error> {
    let map: Option<BTreeMap<String, Option<String>>> = Deserialize::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// A kustomization file (`Kustomization` or `Component`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Kustomization {
    /// `kustomize.config.k8s.io/v1beta1` (or `v1alpha1` for a component); optional.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `Kustomization` or `Component`; `Kustomization` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name and labels of the kustomization itself (not applied to anything).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<ObjectMeta>,
    /// A custom OpenAPI schema for strategic merge patches (refused by the build).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub openapi: StringMap,

    /// Prepended to the name of every object (and every reference to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// Appended to the name of every object (and every reference to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_suffix: Option<String>,
    /// Namespace set on every namespaced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels added to every object, its selectors and templates (legacy; see `labels`).
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub common_labels: StringMap,
    /// Labels added to objects, with control over selectors and templates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    /// Annotations added to every object (and pod templates).
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub common_annotations: StringMap,

    /// Strategic merge patches: file paths or inline YAML (legacy; see `patches`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches_strategic_merge: Vec<String>,
    /// JSON 6902 patches with a target (legacy; see `patches`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches_json6902: Vec<Patch>,
    /// Patches (strategic merge or JSON 6902), inline or from a file, with optional targets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
    /// Image name, tag and digest changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    /// Legacy spelling of `images`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_tags: Vec<Image>,
    /// Copies of field values from a source object into target objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replacements: Vec<ReplacementField>,
    /// Replica counts by object name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Replica>,
    /// Legacy variables (`$(VAR)`), resolved after name references (prefer `replacements`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<Var>,
    /// Output order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sort_options: Option<SortOptions>,

    /// Files, directories (nested kustomizations) to include.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    /// Component directories applied to this kustomization's objects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,
    /// CustomResourceDefinition files whose schemas declare name references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crds: Vec<String>,
    /// Legacy spelling of directory `resources`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bases: Vec<String>,

    /// ConfigMaps to generate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_map_generator: Vec<ConfigMapArgs>,
    /// Secrets to generate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secret_generator: Vec<SecretArgs>,
    /// Options for every generator of this kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator_options: Option<GeneratorOptions>,

    /// Helm settings (refused: Helm charts are not inflated by this engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm_globals: Option<serde_yaml::Value>,
    /// Helm charts (refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_charts: Vec<serde_yaml::Value>,
    /// Legacy Helm charts (refused).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub helm_chart_inflation_generator: Vec<serde_yaml::Value>,

    /// Transformer configuration files (custom field specs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub configurations: Vec<String>,
    /// Built-in generator plugin configurations (inline YAML, files or directories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<String>,
    /// Built-in transformer plugin configurations (inline YAML, files or directories).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transformers: Vec<String>,
    /// Validator plugin configurations (refused: validators are external plugins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub validators: Vec<String>,
    /// Legacy inventory object (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<serde_yaml::Value>,
    /// Build options: `originAnnotations`, `transformerAnnotations`, `managedByLabel`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub build_metadata: Vec<String>,
}

/// `metadata` of a kustomization file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObjectMeta {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: StringMap,
    /// Annotations.
    #[serde(
        default,
        deserialize_with = "string_map",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: StringMap,
}

/// One entry of `patches` or `patchesJson6902`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Patch {
    /// A file holding the patch, relative to the kustomization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The patch itself (YAML or JSON text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    /// The objects to patch; without it, the patch names its target itself (strategic merge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
    /// `allowNameChange`, `allowKindChange`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, bool>,
}

/// Selects objects: by group/version/kind/name/namespace (regular expressions, anchored) and by
/// label and annotation selectors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kubernetes label selector expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Kubernetes label selector expression, matched against annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
}

/// A legacy variable: `$(NAME)` in some fields is replaced by a field of an object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Var {
    /// The variable name (`$(NAME)`).
    pub name: String,
    /// The object it reads (by its name before prefixes and suffixes).
    pub objref: VarObjectRef,
    /// The field it reads (`metadata.name` when absent).
    #[serde(default)]
    pub fieldref: VarFieldRef,
}

/// The object a [`Var`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VarObjectRef {
    /// `group/version` (wins over `group` and `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace (any namespace when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl VarObjectRef {
    /// Group and version: from `apiVersion` when set, else from `group` and `version`.
    pub fn group_version(&self) -> (String, String) {
        match self.api_version.as_deref().filter(|v| !v.is_empty()) {
            Some(api_version) => crate::resource::ResId::split_api_version(api_version),
            None => (
                self.group.clone().unwrap_or_default(),
                self.version.clone().unwrap_or_default(),
            ),
        }
    }
}

/// The field a [`Var`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VarFieldRef {
    /// Dotted path (`spec.ports[0].port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_path: Option<String>,
}

/// `sortOptions`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SortOptions {
    /// `legacy` (the default) or `fifo`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// Tweaks of the legacy order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// Kinds to put first and last in the legacy order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LegacySortOptions {
    /// Kinds first, in this order.
    #[serde(default)]
    pub order_first: Vec<String>,
    /// Kinds last, in this order.
    #[serde(default)]
    pub order_last: Vec<String>,
}

impl Kustomization {
    /// Parses the text of a kustomization file; `path` is used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, Error> {
        let to_error = |err: serde_yaml::Error| {
            let location = err.location();
            Error::InvalidKustomization {
                path: path.to_path_buf(),
                line: location.as_ref().map(|l| l.line()),
                column: location.as_ref().map(|l| l.column()),
                message: strip_location(&err.to_string()),
            }
        };
        let mut raw: serde_yaml::Value = serde_yaml::from_str(text).map_err(to_error)?;
        if is_empty_kustomization(&raw) {
            return Err(Error::Invalid {
                path: path.to_path_buf(),
                message: "the kustomization is empty".to_string(),
            });
        }
        let before_merge = raw.clone();
        raw.apply_merge().map_err(to_error)?;
        let kustomization: Kustomization = if raw == before_merge {
            // Decoded from the text, so errors have a line and column.
            serde_yaml::from_str(text).map_err(to_error)?
        } else {
            // YAML merge keys (`<<: *anchor`) resolved first.
            serde_yaml::from_value(raw.clone()).map_err(to_error)?
        };
        // serde_yaml turns numbers and booleans into strings where a string is expected; kustomize
        // (YAML converted to JSON, then decoded) refuses them. Decoding the JSON form catches them.
        let json = serde_json::to_value(&raw).map_err(|err| Error::InvalidKustomization {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: err.to_string(),
        })?;
        serde_json::from_value::<Kustomization>(json).map_err(|err| {
            Error::InvalidKustomization {
                path: path.to_path_buf(),
                line: None,
                column: None,
                message: err.to_string(),
            }
        })?;
        kustomization.check_kind(path)?;
        Ok(kustomization)
    }

    /// Whether this is a `Component`.
    pub fn is_component(&self) -> bool {
        self.kind.as_deref() == Some(COMPONENT_KIND)
    }

    fn check_kind(&self, path: &Path) -> Result<(), Error> {
        let kind = self.kind.as_deref().unwrap_or(KUSTOMIZATION_KIND);
        if kind != KUSTOMIZATION_KIND && kind != COMPONENT_KIND {
            return Err(Error::Invalid {
                path: path.to_path_buf(),
                message: format!("kind should be {KUSTOMIZATION_KIND} or {COMPONENT_KIND}"),
            });
        }
        let required = if kind == COMPONENT_KIND {
            COMPONENT_API_VERSION
        } else {
            KUSTOMIZATION_API_VERSION
        };
        match self.api_version.as_deref() {
            Some(version) if !version.is_empty() && version != required => Err(Error::Invalid {
                path: path.to_path_buf(),
                message: format!("apiVersion for {kind} should be {required}"),
            }),
            _ => Ok(()),
        }
    }

    /// `resources` followed by the legacy `bases`, as kustomize merges them.
    pub fn all_resources(&self) -> impl Iterator<Item = &String> {
        self.resources.iter().chain(self.bases.iter())
    }

    /// `images` followed by the legacy `imageTags`.
    pub fn all_images(&self) -> impl Iterator<Item = &Image> {
        self.images.iter().chain(self.image_tags.iter())
    }
}

/// Whether a kustomization sets nothing but `apiVersion` and `kind` (kustomize refuses it as
/// empty). A field set to an empty list counts as set, as it does for kustomize.
fn is_empty_kustomization(raw: &serde_yaml::Value) -> bool {
    match raw {
        serde_yaml::Value::Null => true,
        serde_yaml::Value::Mapping(map) => map.iter().all(|(key, value)| {
            value.is_null() || matches!(key.as_str(), Some("apiVersion" | "kind"))
        }),
        _ => false,
    }
}

/// serde_yaml appends " at line L column C" to its messages; the location is reported apart.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}

/// Finds the kustomization file of `dir`: exactly one of [`KUSTOMIZATION_FILE_NAMES`].
///
/// Returns `Ok(None)` when there is none, and an error when there are several.
pub fn find_kustomization_file(dir: &Path) -> Result<Option<PathBuf>, Error> {
    let mut found = Vec::new();
    for name in KUSTOMIZATION_FILE_NAMES {
        let candidate = dir.join(name);
        if candidate.is_file() {
            found.push(name);
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(dir.join(one))),
        _ => Err(Error::MultipleKustomizations {
            dir: dir.to_path_buf(),
            names: found.iter().map(|name| name.to_string()).collect(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Kustomization, Error> {
        Kustomization::parse(text, Path::new("dir/kustomization.yaml"))
    }

    #[test]
    fn parses_the_common_fields() {
        let k = parse(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ns\n\
             namePrefix: p-\nresources: [a.yaml, base]\nbases: [old]\ncommonLabels: {app: x}\n\
             images: [{name: nginx, newTag: '1.2'}]\nreplicas: [{name: web, count: 3}]\n\
             patches:\n- path: p.yaml\n  target: {kind: Deployment, labelSelector: 'a=b'}\n",
        )
        .unwrap();
        assert_eq!(k.namespace.as_deref(), Some("ns"));
        assert_eq!(k.name_prefix.as_deref(), Some("p-"));
        assert_eq!(
            k.all_resources().cloned().collect::<Vec<_>>(),
            ["a.yaml", "base", "old"]
        );
        assert_eq!(k.common_labels.get("app").map(String::as_str), Some("x"));
        assert_eq!(k.images[0].new_tag, "1.2");
        assert_eq!(k.replicas[0].count, 3);
        let target = k.patches[0].target.as_ref().unwrap();
        assert_eq!(target.kind.as_deref(), Some("Deployment"));
        assert_eq!(target.label_selector.as_deref(), Some("a=b"));
        assert!(!k.is_component());
    }

    #[test]
    fn unknown_field_names_the_file_and_the_field() {
        let err = parse("resources: []\nfoo: bar\n").unwrap_err().to_string();
        assert!(err.contains("dir/kustomization.yaml"), "{err}");
        assert!(err.contains("foo"), "{err}");
        assert!(err.contains("line 2"), "{err}");
    }

    #[test]
    fn labels_with_field_specs_parse() {
        let k = parse(
            "labels:\n- pairs: {a: b}\n  includeSelectors: true\n  fields:\n  - kind: Foo\n    group: g\n    version: v\n    path: spec/x\n    create: true\n",
        )
        .unwrap();
        assert_eq!(k.labels[0].fields[0].path, "spec/x");
        assert!(k.labels[0].fields[0].create);
        assert!(parse("labels:\n- pairs: {a: b}\n  includeVolumeClaimTemplates: true\n").is_err());
    }

    #[test]
    fn unknown_nested_field_is_refused() {
        let err = parse("patches:\n- path: p.yaml\n  targte: {kind: X}\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("targte"), "{err}");
    }

    #[test]
    fn label_values_must_be_strings() {
        assert!(parse("commonLabels:\n  a: 1\n").is_err());
        assert!(parse("commonLabels:\n  a: '1'\n").is_ok());
        assert!(parse("images:\n- name: a\n  newTag: 1.20\n").is_err());
        let k = parse("commonLabels:\n  a:\n").unwrap();
        assert_eq!(k.common_labels.get("a").map(String::as_str), Some(""));
    }

    #[test]
    fn kind_and_api_version_are_checked() {
        let with = |head: &str| parse(&format!("{head}resources: []\n"));
        assert!(with("kind: Component\napiVersion: kustomize.config.k8s.io/v1alpha1\n").is_ok());
        let err = with("kind: Component\napiVersion: kustomize.config.k8s.io/v1beta1\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("should be kustomize.config.k8s.io/v1alpha1"),
            "{err}"
        );
        assert!(with("kind: Other\n").is_err());
        assert!(with("apiVersion: v1\n").is_err());
        assert!(with("kind: Component\n").unwrap().is_component());
        assert!(!with("").unwrap().is_component());
    }

    #[test]
    fn empty_kustomizations_are_refused() {
        for empty in ["", "---\n", "kind: Kustomization\n", "resources:\n"] {
            let err = parse(empty).unwrap_err().to_string();
            assert!(err.contains("empty"), "{empty:?}: {err}");
        }
        assert!(parse("resources: []\n").is_ok());
    }

    #[test]
    fn several_kustomization_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_kustomization_file(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("Kustomization"), "").unwrap();
        assert_eq!(
            find_kustomization_file(dir.path()).unwrap(),
            Some(dir.path().join("Kustomization"))
        );
        std::fs::write(dir.path().join("kustomization.yml"), "").unwrap();
        let err = find_kustomization_file(dir.path()).unwrap_err().to_string();
        assert!(err.contains("multiple"), "{err}");
    }
}
