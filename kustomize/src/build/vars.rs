//! Legacy `vars`: `$(NAME)` in some fields of some kinds replaced by a field of one object.
//!
//! As kustomize does it: at the end of each kustomization, every var of that kustomization is
//! tied to the object its `objref` names (by the object's original identity, before prefixes,
//! suffixes and namespaces; any namespace when `objref` has none). Var names are unique over the
//! whole build. Once, after name references are fixed, each var takes the value of its field
//! (`metadata.name` by default) in its object, and `$(NAME)` is expanded in the fields listed
//! under `varReference` (kustomize's defaults plus `configurations:`): string scalars, the
//! strings of a list, the string values of a map. `$$` stands for a literal `$`; an unknown
//! `$(NAME)` stays as written. A field that is exactly `$(NAME)` takes the value with its type
//! (a port stays a number).

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

use crate::error::Error;
use crate::kustomization::Var;
use crate::resource::{ResId, Resource};
use crate::transform::{self, FieldSpec};

/// The internal annotation listing the vars that read an object.
const REF_VAR_ANNOTATION: &str = "internal.config.kubernetes.io/refVarNames";

/// kustomize's default `varReference` field specs: `(kind, path)`, an empty kind for any kind.
const DEFAULT_VAR_REFERENCES: &[(&str, &str)] = &[
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/containers/args",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/containers/command",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/containers/env/value",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/containers/volumeMounts/mountPath",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/initContainers/args",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/initContainers/command",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/initContainers/env/value",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/initContainers/volumeMounts/mountPath",
    ),
    (
        "CronJob",
        "spec/jobTemplate/spec/template/spec/volumes/nfs/server",
    ),
    ("DaemonSet", "spec/template/spec/containers/args"),
    ("DaemonSet", "spec/template/spec/containers/command"),
    ("DaemonSet", "spec/template/spec/containers/env/value"),
    (
        "DaemonSet",
        "spec/template/spec/containers/volumeMounts/mountPath",
    ),
    ("DaemonSet", "spec/template/spec/initContainers/args"),
    ("DaemonSet", "spec/template/spec/initContainers/command"),
    ("DaemonSet", "spec/template/spec/initContainers/env/value"),
    (
        "DaemonSet",
        "spec/template/spec/initContainers/volumeMounts/mountPath",
    ),
    ("DaemonSet", "spec/template/spec/volumes/nfs/server"),
    ("Deployment", "spec/template/spec/containers/args"),
    ("Deployment", "spec/template/spec/containers/command"),
    ("Deployment", "spec/template/spec/containers/env/value"),
    (
        "Deployment",
        "spec/template/spec/containers/volumeMounts/mountPath",
    ),
    ("Deployment", "spec/template/spec/initContainers/args"),
    ("Deployment", "spec/template/spec/initContainers/command"),
    ("Deployment", "spec/template/spec/initContainers/env/value"),
    (
        "Deployment",
        "spec/template/spec/initContainers/volumeMounts/mountPath",
    ),
    ("Deployment", "spec/template/spec/volumes/nfs/server"),
    ("Ingress", "spec/rules/host"),
    ("Ingress", "spec/tls/hosts"),
    ("Ingress", "spec/tls/secretName"),
    ("Job", "spec/template/spec/containers/args"),
    ("Job", "spec/template/spec/containers/command"),
    ("Job", "spec/template/spec/containers/env/value"),
    (
        "Job",
        "spec/template/spec/containers/volumeMounts/mountPath",
    ),
    ("Job", "spec/template/spec/initContainers/args"),
    ("Job", "spec/template/spec/initContainers/command"),
    ("Job", "spec/template/spec/initContainers/env/value"),
    (
        "Job",
        "spec/template/spec/initContainers/volumeMounts/mountPath",
    ),
    ("Job", "spec/template/spec/volumes/nfs/server"),
    ("Pod", "spec/containers/args"),
    ("Pod", "spec/containers/command"),
    ("Pod", "spec/containers/env/value"),
    ("Pod", "spec/containers/volumeMounts/mountPath"),
    ("Pod", "spec/initContainers/args"),
    ("Pod", "spec/initContainers/command"),
    ("Pod", "spec/initContainers/env/value"),
    ("Pod", "spec/initContainers/volumeMounts/mountPath"),
    ("Pod", "spec/volumes/nfs/server"),
    ("ReplicaSet", "spec/template/spec/containers/args"),
    ("ReplicaSet", "spec/template/spec/containers/command"),
    ("ReplicaSet", "spec/template/spec/containers/env/value"),
    (
        "ReplicaSet",
        "spec/template/spec/containers/volumeMounts/mountPath",
    ),
    ("ReplicaSet", "spec/template/spec/initContainers/args"),
    ("ReplicaSet", "spec/template/spec/initContainers/command"),
    ("ReplicaSet", "spec/template/spec/initContainers/env/value"),
    (
        "ReplicaSet",
        "spec/template/spec/initContainers/volumeMounts/mountPath",
    ),
    ("ReplicaSet", "spec/template/spec/volumes/nfs/server"),
    ("Service", "spec/ports/port"),
    ("Service", "spec/ports/targetPort"),
    ("StatefulSet", "spec/template/spec/containers/args"),
    ("StatefulSet", "spec/template/spec/containers/command"),
    ("StatefulSet", "spec/template/spec/containers/env/value"),
    (
        "StatefulSet",
        "spec/template/spec/containers/volumeMounts/mountPath",
    ),
    ("StatefulSet", "spec/template/spec/initContainers/args"),
    ("StatefulSet", "spec/template/spec/initContainers/command"),
    ("StatefulSet", "spec/template/spec/initContainers/env/value"),
    (
        "StatefulSet",
        "spec/template/spec/initContainers/volumeMounts/mountPath",
    ),
    ("StatefulSet", "spec/volumeClaimTemplates/spec/nfs/server"),
    ("PersistentVolume", "spec/nfs/server"),
    ("", "metadata/labels"),
    ("", "metadata/annotations"),
];

/// The vars declared so far, by name.
#[derive(Debug, Default)]
pub(super) struct VarSet {
    vars: BTreeMap<String, Var>,
}

impl VarSet {
    /// Whether no var is declared.
    pub(super) fn is_empty(&self) -> bool {
        self.vars.is_empty()
    }

    /// Declares the vars of one kustomization (`file`) and ties each to the object it names
    /// among `resources`, by original identity.
    pub(super) fn declare(
        &mut self,
        incoming: &[Var],
        resources: &mut [Resource],
        file: &Path,
    ) -> Result<(), Error> {
        for var in incoming {
            let matches: Vec<usize> = (0..resources.len())
                .filter(|&i| refers_to(var, &original_id(&resources[i])))
                .collect();
            if matches.len() > 1 {
                return Err(invalid(
                    file,
                    format!(
                        "found {} objects for var '{}' (unable to disambiguate)",
                        matches.len(),
                        var.name
                    ),
                ));
            }
            if let Some(&index) = matches.first() {
                tag(&mut resources[index], &var.name);
            }
            self.insert(var.clone(), file)?;
        }
        Ok(())
    }

    /// Takes the vars of a kustomization below this one (names must not repeat).
    pub(super) fn absorb(&mut self, other: VarSet, file: &Path) -> Result<(), Error> {
        for var in other.vars.into_values() {
            self.insert(var, file)?;
        }
        Ok(())
    }

    fn insert(&mut self, var: Var, file: &Path) -> Result<(), Error> {
        if self.vars.contains_key(&var.name) {
            return Err(invalid(
                file,
                format!("var '{}' already encountered", var.name),
            ));
        }
        self.vars.insert(var.name.clone(), var);
        Ok(())
    }

    /// Resolves every var and expands `$(NAME)` in the `varReference` fields of `resources`.
    /// `extra_specs` are the `varReference` specs of `configurations:` files.
    pub(super) fn resolve(
        &self,
        resources: &mut [Resource],
        extra_specs: &[FieldSpec],
        file: &Path,
    ) -> Result<(), Error> {
        if self.vars.is_empty() {
            return Ok(());
        }
        let mut values: BTreeMap<&str, Value> = BTreeMap::new();
        for (name, var) in &self.vars {
            let Some(resource) = resources.iter().find(|r| is_tagged(r, name)) else {
                return Err(invalid(
                    file,
                    format!(
                        "var '{name}' cannot be mapped to a field in the set of known resources"
                    ),
                ));
            };
            let path = var
                .fieldref
                .field_path
                .as_deref()
                .filter(|p| !p.is_empty())
                .unwrap_or("metadata.name");
            let value = field_value(&resource.value, path)
                .filter(|v| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_)))
                .ok_or_else(|| {
                    invalid(
                        file,
                        format!(
                            "field '{path}' specified in var '{name}' not found in {}",
                            resource.id()
                        ),
                    )
                })?;
            values.insert(name, value.clone());
        }
        let mut specs: Vec<FieldSpec> = DEFAULT_VAR_REFERENCES
            .iter()
            .map(|(kind, path)| FieldSpec::new(kind, path, false))
            .collect();
        specs.extend(extra_specs.iter().cloned());
        for resource in resources.iter_mut() {
            let (api_version, kind) = (
                resource.api_version().to_string(),
                resource.kind().to_string(),
            );
            let id = resource.id();
            for spec in specs.iter().filter(|s| s.applies_to(&api_version, &kind)) {
                let keys = spec.path_keys();
                expand_at(&mut resource.value, &keys, &values).map_err(|message| {
                    invalid(file, format!("vars: {message} at '{}' of {id}", spec.path))
                })?;
            }
        }
        Ok(())
    }
}

fn invalid(file: &Path, message: String) -> Error {
    Error::Invalid {
        path: file.to_path_buf(),
        message,
    }
}

/// The identity an object had when it entered the build.
fn original_id(resource: &Resource) -> ResId {
    transform::previous_ids(resource)
        .into_iter()
        .next()
        .unwrap_or_else(|| resource.id())
}

/// Whether a var's `objref` names the object with this original identity: same group, version,
/// kind and name, and the same namespace when `objref` gives one (or the kind is cluster-scoped).
fn refers_to(var: &Var, id: &ResId) -> bool {
    let objref = &var.objref;
    let (group, version) = objref.group_version();
    if group != id.group
        || version != id.version
        || objref.kind.as_deref().unwrap_or_default() != id.kind
        || objref.name != id.name
    {
        return false;
    }
    let api_version = if group.is_empty() {
        version.clone()
    } else {
        format!("{group}/{version}")
    };
    let wanted = objref.namespace.as_deref().filter(|ns| !ns.is_empty());
    if wanted.is_none() && !transform::is_cluster_scoped(&api_version, &id.kind) {
        return true;
    }
    effective_namespace(wanted) == effective_namespace(id.namespace.as_deref())
}

fn effective_namespace(namespace: Option<&str>) -> &str {
    namespace.filter(|ns| !ns.is_empty()).unwrap_or("default")
}

fn tag(resource: &mut Resource, name: &str) {
    let mut names = tagged_names(resource);
    names.push(name.to_string());
    let metadata = crate::resource::ensure_mapping(&mut resource.value, "metadata");
    let annotations = crate::resource::ensure_child_mapping(metadata, "annotations");
    annotations.insert(
        Value::from(REF_VAR_ANNOTATION),
        Value::from(names.join(",")),
    );
}

fn tagged_names(resource: &Resource) -> Vec<String> {
    crate::resource::get_str(
        &resource.value,
        &["metadata", "annotations", REF_VAR_ANNOTATION],
    )
    .map(|text| {
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn is_tagged(resource: &Resource, name: &str) -> bool {
    tagged_names(resource).iter().any(|n| n == name)
}

/// The value at a dotted field path (`spec.ports[0].port`, `data.key`).
fn field_value<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    let mut current = value;
    for segment in path.split('.') {
        let (key, indexes) = match segment.find('[') {
            Some(at) => (&segment[..at], &segment[at..]),
            None => (segment, ""),
        };
        if !key.is_empty() {
            current = current.get(key)?;
        }
        let mut rest = indexes;
        while let Some(stripped) = rest.strip_prefix('[') {
            let end = stripped.find(']')?;
            let index: usize = stripped[..end].parse().ok()?;
            current = current.get(index)?;
            rest = &stripped[end + 1..];
        }
    }
    Some(current)
}

/// Walks `keys` (continuing into every element of a list) and expands the field found.
fn expand_at(
    node: &mut Value,
    keys: &[String],
    values: &BTreeMap<&str, Value>,
) -> Result<(), String> {
    if let Value::Sequence(items) = node
        && !keys.is_empty()
    {
        for item in items {
            expand_at(item, keys, values)?;
        }
        return Ok(());
    }
    let Some((first, rest)) = keys.split_first() else {
        return expand_field(node, values);
    };
    let key = first.trim_end_matches("[]");
    match node.get_mut(key) {
        Some(child) => expand_at(child, rest, values),
        None => Ok(()),
    }
}

fn expand_field(node: &mut Value, values: &BTreeMap<&str, Value>) -> Result<(), String> {
    match node {
        Value::String(text) => {
            *node = expand(text, values);
            Ok(())
        }
        Value::Mapping(map) => {
            for (key, value) in map.iter_mut() {
                if !key.is_string() {
                    return Err(format!("invalid map key {key:?}"));
                }
                if let Value::String(text) = value {
                    *value = expand(text, values);
                }
            }
            Ok(())
        }
        Value::Sequence(items) => {
            for item in items.iter_mut() {
                let Value::String(text) = item else {
                    return Err("invalid value type, expected a string".to_string());
                };
                *item = expand(text, values);
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Expands `$(NAME)` references in `input` (Kubernetes' expansion syntax). A string that is
/// exactly one reference takes the value with its own type.
fn expand(input: &str, values: &BTreeMap<&str, Value>) -> Value {
    if let Some(name) = input
        .strip_prefix("$(")
        .and_then(|rest| rest.strip_suffix(')'))
        .filter(|name| !name.contains(')'))
        && let Some(value) = values.get(name)
    {
        return value.clone();
    }
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            let advance = match rest.as_bytes()[0] {
                b'$' => {
                    out.push('$');
                    1
                }
                b'(' => match rest.find(')') {
                    Some(end) => {
                        let name = &rest[1..end];
                        match values.get(name) {
                            Some(value) => out.push_str(&scalar_text(value)),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        end + 1
                    }
                    None => {
                        out.push_str("$(");
                        1
                    }
                },
                _ => {
                    // `$` before anything else stays, with that character.
                    let ch = rest.chars().next().unwrap_or_default();
                    out.push('$');
                    out.push(ch);
                    ch.len_utf8()
                }
            };
            cursor += advance + 1;
            checkpoint = cursor;
        } else {
            cursor += 1;
        }
    }
    out.push_str(&input[checkpoint.min(input.len())..]);
    Value::String(out)
}

fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<&'static str, Value> {
        let mut values = BTreeMap::new();
        values.insert("SVC", Value::from("p-svc"));
        values.insert("PORT", serde_yaml::from_str("8080").unwrap());
        values
    }

    #[test]
    fn expansion_follows_kubernetes_syntax() {
        let v = values();
        assert_eq!(
            expand("$(SVC)-x $$(SVC) $(NOPE) $(PORT)", &v),
            Value::from("p-svc-x $(SVC) $(NOPE) 8080")
        );
        assert_eq!(expand("--port=$(PORT)", &v), Value::from("--port=8080"));
        assert_eq!(
            expand("$(PORT)", &v),
            serde_yaml::from_str::<Value>("8080").unwrap()
        );
        assert_eq!(expand("a $(unclosed", &v), Value::from("a $(unclosed"));
        assert_eq!(expand("cost: 5$", &v), Value::from("cost: 5$"));
        assert_eq!(expand("$x €$é", &v), Value::from("$x €$é"));
    }

    #[test]
    fn field_values_follow_dotted_paths_with_indexes() {
        let object: Value =
            serde_yaml::from_str("spec:\n  ports:\n  - port: 80\n  - port: 81\n").unwrap();
        assert_eq!(
            field_value(&object, "spec.ports[1].port"),
            Some(&Value::from(81))
        );
        assert_eq!(field_value(&object, "spec.ports[2].port"), None);
        assert_eq!(field_value(&object, "spec.missing"), None);
    }
}
