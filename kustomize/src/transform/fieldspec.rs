//! Field specs: which field of which kinds a transformer reads or writes, and the walk that
//! reaches those fields in an object.
//!
//! A path is a `/`-separated list of mapping keys (`spec/template/metadata/labels`). A `\/`
//! inside a key stands for a literal slash (`metadata/annotations/example.com\/key`). When the
//! walk meets a sequence it continues into every element with the rest of the path, so
//! `spec/containers/image` reaches the image of every container; a trailing `[]` on a key
//! (`containers[]`) says the same thing explicitly and never creates the key.

use serde::{Deserialize, Serialize};
use serde_yaml::{Mapping, Value};

/// A group/version/kind selector: an empty part matches anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gvk {
    /// API group (`apps`); empty matches every group.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version (`v1`); empty matches every version.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Kind (`Deployment`); empty matches every kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
}

impl Gvk {
    /// A selector for one kind, in any group and version.
    pub fn kind(kind: &str) -> Self {
        Self {
            kind: kind.to_string(),
            ..Self::default()
        }
    }

    /// Whether an object of this group, version and kind is selected by `selector`.
    pub fn is_selected_by(&self, selector: &Gvk) -> bool {
        selects(selector, &self.group, &self.version, &self.kind)
    }

    /// The group and version as one `apiVersion` string (`apps/v1`, `v1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Kustomize's ordering of kinds (Namespace first, webhooks last, then by group, version
    /// and kind); used to order field specs the way kustomize does.
    pub(crate) fn sort_key(&self) -> (i32, String) {
        (
            kind_order(&self.kind),
            format!(
                "{}_{}_{}",
                if self.group.is_empty() {
                    "~G"
                } else {
                    &self.group
                },
                if self.version.is_empty() {
                    "~V"
                } else {
                    &self.version
                },
                if self.kind.is_empty() {
                    "~K"
                } else {
                    &self.kind
                },
            ),
        )
    }
}

/// Kustomize's fixed order of well-known kinds: negative for kinds that come first, positive
/// for kinds that come last, zero for the rest.
pub(crate) fn kind_order(kind: &str) -> i32 {
    use crate::build::{LEGACY_ORDER_FIRST as FIRST, LEGACY_ORDER_LAST as LAST};
    if let Some(i) = FIRST.iter().position(|k| *k == kind) {
        return i as i32 - FIRST.len() as i32;
    }
    if let Some(i) = LAST.iter().position(|k| *k == kind) {
        return i as i32 + 1;
    }
    0
}

/// Whether `selector` selects an object of `group`, `version` and `kind`.
pub(crate) fn selects(selector: &Gvk, group: &str, version: &str, kind: &str) -> bool {
    (selector.group.is_empty() || selector.group == group)
        && (selector.version.is_empty() || selector.version == version)
        && (selector.kind.is_empty() || selector.kind == kind)
}

/// One field of the objects a selector picks, as kustomize's configuration files write it
/// (`{group, version, kind, path, create}`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    /// The objects this spec applies to.
    #[serde(flatten)]
    pub gvk: Gvk,
    /// `/`-separated path to the field.
    #[serde(default)]
    pub path: String,
    /// Create the field (and the mappings leading to it) when it is missing.
    #[serde(default, rename = "create", skip_serializing_if = "std::ops::Not::not")]
    pub create: bool,
}

impl FieldSpec {
    /// A spec for `path` in objects of `kind` (any group and version).
    pub fn new(kind: &str, path: &str, create: bool) -> Self {
        Self {
            gvk: Gvk::kind(kind),
            path: path.to_string(),
            create,
        }
    }

    /// Whether this spec applies to an object with this `apiVersion` and `kind`.
    pub fn applies_to(&self, api_version: &str, kind: &str) -> bool {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        selects(&self.gvk, group, version, kind)
    }

    /// The path split into keys (`\/` kept as a literal slash).
    pub fn path_keys(&self) -> Vec<String> {
        split_path(&self.path)
    }

    /// Whether `incoming` names the same field as this (existing) spec, for objects this spec
    /// covers (kustomize's notion of a duplicate when merging configurations).
    pub(crate) fn effectively_equals(&self, incoming: &FieldSpec) -> bool {
        self.gvk.is_selected_by(&incoming.gvk) && self.path == incoming.path
    }
}

/// Splits a field-spec path on `/`, honouring `\/` as an escaped slash and ignoring one
/// leading `/`.
pub fn split_path(path: &str) -> Vec<String> {
    let mut parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 1 && parts[0].is_empty() {
        parts.remove(0);
    }
    let mut out: Vec<String> = Vec::with_capacity(parts.len());
    for part in parts {
        match out.last_mut() {
            Some(last) if last.ends_with('\\') => {
                last.pop();
                last.push('/');
                last.push_str(part);
            }
            _ => out.push(part.to_string()),
        }
    }
    out
}

/// What to create for a missing field at the end of a path (intermediate fields are always
/// created as mappings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Create {
    /// Create an empty string.
    Scalar,
    /// Create an empty mapping.
    Mapping,
}

/// Why a walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WalkError(pub String);

/// Walks `spec`'s path in `object` and calls `set` on every field it reaches.
///
/// Missing fields are skipped, or created when the spec says `create` and `create_kind` is
/// given. A `null` met along the way ends that branch silently (or becomes an empty value of
/// the right kind when creating). A scalar where the path needs a mapping or a sequence is an
/// error, as in kustomize.
pub(crate) fn walk(
    object: &mut Value,
    spec: &FieldSpec,
    create_kind: Option<Create>,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), WalkError> {
    let keys = spec.path_keys();
    let create = if spec.create { create_kind } else { None };
    walk_keys(object, &keys, create, set).map_err(WalkError)
}

fn walk_keys(
    node: &mut Value,
    keys: &[String],
    create: Option<Create>,
    set: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((first, rest)) = keys.split_first() else {
        return set(node);
    };
    match node {
        Value::Null => Ok(()),
        Value::Sequence(items) => {
            for item in items {
                walk_keys(item, keys, create, set)?;
            }
            Ok(())
        }
        Value::Mapping(map) => {
            let (name, is_seq) = match first.strip_suffix("[]") {
                Some(short) => (short, true),
                None => (first.as_str(), false),
            };
            if name.is_empty() {
                return Err("cannot set or create an empty field name".to_string());
            }
            // What a missing (or null) field becomes, if anything.
            let fill: Option<Value> = if is_seq {
                // Sequences are never created, but an explicit null turns into an empty list.
                Some(Value::Sequence(Vec::new()))
            } else {
                match create {
                    None => None,
                    Some(kind) if rest.is_empty() => Some(match kind {
                        Create::Scalar => Value::String(String::new()),
                        Create::Mapping => Value::Mapping(Mapping::new()),
                    }),
                    Some(_) => Some(Value::Mapping(Mapping::new())),
                }
            };
            let key = Value::String(name.to_string());
            let field = match map.get_mut(&key) {
                Some(field) => field,
                None => {
                    if is_seq || create.is_none() {
                        return Ok(());
                    }
                    let Some(new) = fill.clone() else {
                        return Ok(());
                    };
                    map.insert(key.clone(), new);
                    match map.get_mut(&key) {
                        Some(field) => field,
                        None => return Ok(()),
                    }
                }
            };
            if field.is_null()
                && let Some(new) = fill
            {
                *field = new;
            }
            walk_keys(field, rest, create, set).map_err(|e| format!("fieldName: {name}: {e}"))
        }
        Value::Tagged(tagged) => walk_keys(&mut tagged.value, keys, create, set),
        _ => Err("expected sequence or mapping node".to_string()),
    }
}

/// A scalar's text, as kustomize reads it (numbers and booleans by their YAML spelling).
pub(crate) fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_text(&t.value),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn split_path_honours_escaped_slashes() {
        assert_eq!(
            split_path("metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret"),
            vec![
                "metadata",
                "annotations",
                "nginx.ingress.kubernetes.io/auth-secret"
            ]
        );
        assert_eq!(split_path("/a/b"), vec!["a", "b"]);
        assert_eq!(split_path("a"), vec!["a"]);
    }

    #[test]
    fn walk_visits_every_sequence_element_and_creates_only_when_asked() {
        let mut obj: Value =
            serde_yaml::from_str("spec:\n  containers:\n  - name: a\n    image: x\n  - name: b\n")
                .unwrap();
        let mut seen = Vec::new();
        walk(
            &mut obj,
            &FieldSpec::new("", "spec/containers[]/image", true),
            None,
            &mut |v| {
                seen.push(v.clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, vec![Value::from("x")]);

        walk(
            &mut obj,
            &FieldSpec::new("", "spec/template/metadata/labels", true),
            Some(Create::Mapping),
            &mut |_| Ok(()),
        )
        .unwrap();
        assert!(obj["spec"]["template"]["metadata"]["labels"].is_mapping());
    }

    #[test]
    fn field_specs_deserialize_strictly() {
        let spec: FieldSpec =
            serde_yaml::from_str("{path: spec/x, kind: Foo, group: g, version: v1, create: true}")
                .unwrap();
        assert_eq!(spec.gvk.group, "g");
        assert!(spec.create);
        assert!(serde_yaml::from_str::<FieldSpec>("{path: spec/x, bogus: 1}").is_err());
    }

    #[test]
    fn walk_into_a_scalar_is_an_error() {
        let mut obj: Value = serde_yaml::from_str("spec: oops\n").unwrap();
        let err = walk(
            &mut obj,
            &FieldSpec::new("", "spec/selector", true),
            Some(Create::Mapping),
            &mut |_| Ok(()),
        )
        .unwrap_err();
        assert!(
            err.0.contains("expected sequence or mapping node"),
            "{err:?}"
        );
    }
}
