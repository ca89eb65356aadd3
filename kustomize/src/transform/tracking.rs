//! Bookkeeping of renames, kept (as kustomize does) in annotations of the object itself.
//!
//! Each rename appends the identity the object had before it to comma-separated lists under
//! `internal.config.kubernetes.io/`; the prefixes and suffixes added to the name are recorded
//! the same way. Name-reference rewriting reads them; [`strip_build_annotations`] removes them
//! before output.

use serde_yaml::{Mapping, Value};

use super::scope::is_cluster_scoped;
use crate::resource::{ResId, Resource};

const PREVIOUS_NAMES: &str = "internal.config.kubernetes.io/previousNames";
const PREVIOUS_NAMESPACES: &str = "internal.config.kubernetes.io/previousNamespaces";
const PREVIOUS_KINDS: &str = "internal.config.kubernetes.io/previousKinds";
const PREFIXES: &str = "internal.config.kubernetes.io/prefixes";
const SUFFIXES: &str = "internal.config.kubernetes.io/suffixes";

/// The annotations kustomize removes from every object before output: the ones the build
/// keeps for itself (renames, prefixes, suffixes, generator options, file positions), whether
/// this build or a user put them there. Other `internal.config.kubernetes.io/` annotations stay.
pub const BUILD_ANNOTATIONS: [&str; 18] = [
    PREVIOUS_KINDS,
    PREVIOUS_NAMES,
    PREFIXES,
    SUFFIXES,
    PREVIOUS_NAMESPACES,
    "internal.config.kubernetes.io/allowNameChange",
    "internal.config.kubernetes.io/allowKindChange",
    "internal.config.kubernetes.io/refBy",
    "internal.config.kubernetes.io/generatorBehavior",
    "internal.config.kubernetes.io/needsHashSuffix",
    "internal.config.kubernetes.io/path",
    "internal.config.kubernetes.io/index",
    "internal.config.kubernetes.io/seqindent",
    "internal.config.kubernetes.io/id",
    "internal.config.kubernetes.io/annotations-migration-resource-id",
    "config.kubernetes.io/path",
    "config.kubernetes.io/index",
    "config.k8s.io/id",
];

/// The namespace kustomize uses for namespaced objects without one.
const DEFAULT_NAMESPACE: &str = "default";
/// The namespace kustomize records for cluster-scoped objects.
const NO_NAMESPACE: &str = "_non_namespaceable_";

/// Remembers `resource`'s current identity as a previous one. Call it right before renaming
/// an object (or moving it to another namespace).
pub fn record_previous_id(resource: &mut Resource) {
    let namespace = effective_namespace(
        resource.api_version(),
        resource.kind(),
        resource.namespace(),
    )
    .to_string();
    let name = resource.name().to_string();
    let kind = resource.kind().to_string();
    append_csv(resource, PREVIOUS_NAMES, &name);
    append_csv(resource, PREVIOUS_NAMESPACES, &namespace);
    append_csv(resource, PREVIOUS_KINDS, &kind);
}

/// The identities `resource` had before its renames, oldest first, without the current one.
///
/// Namespaces are kustomize's effective ones: `default` for a namespaced object without a
/// namespace, `_non_namespaceable_` for a cluster-scoped object. Group and version are the
/// current ones (kinds do change, through patches, and are recorded).
///
/// When no rename was recorded but [`Resource::original_id`] differs from the current identity
/// (a step renamed the object without [`record_previous_id`]), that original id is returned.
pub fn previous_ids(resource: &Resource) -> Vec<ResId> {
    let names = csv_annotation(resource, PREVIOUS_NAMES);
    if names.is_empty() {
        let current = resource.id();
        let original = &resource.original_id;
        if *original != current && !original.name.is_empty() {
            let api_version = if original.group.is_empty() {
                original.version.clone()
            } else {
                format!("{}/{}", original.group, original.version)
            };
            let namespace =
                effective_namespace(&api_version, &original.kind, original.namespace.as_deref());
            return vec![ResId {
                group: current.group,
                version: current.version,
                kind: original.kind.clone(),
                namespace: Some(namespace.to_string()),
                name: original.name.clone(),
            }];
        }
        return Vec::new();
    }
    let namespaces = csv_annotation(resource, PREVIOUS_NAMESPACES);
    let kinds = csv_annotation(resource, PREVIOUS_KINDS);
    let (group, version) = ResId::split_api_version(resource.api_version());
    names
        .into_iter()
        .enumerate()
        .map(|(i, name)| ResId {
            group: group.clone(),
            version: version.clone(),
            kind: kinds.get(i).cloned().unwrap_or_default(),
            namespace: namespaces.get(i).filter(|ns| !ns.is_empty()).cloned(),
            name,
        })
        .collect()
}

/// The identity `resource` had when it entered the build: the oldest previous id, or the
/// current one when it was never renamed.
pub(crate) fn org_id(resource: &Resource) -> ResId {
    previous_ids(resource)
        .into_iter()
        .next()
        .unwrap_or_else(|| resource.id())
}

/// The name prefixes added to `resource` by the levels it went through, innermost first.
pub fn name_prefixes(resource: &Resource) -> Vec<String> {
    csv_annotation(resource, PREFIXES)
}

/// The name suffixes added to `resource` by the levels it went through, innermost first.
pub fn name_suffixes(resource: &Resource) -> Vec<String> {
    csv_annotation(resource, SUFFIXES)
}

pub(crate) fn add_prefix_record(resource: &mut Resource, prefix: &str) {
    append_csv(resource, PREFIXES, prefix);
}

pub(crate) fn add_suffix_record(resource: &mut Resource, suffix: &str) {
    append_csv(resource, SUFFIXES, suffix);
}

/// Removes the [`BUILD_ANNOTATIONS`] from every object, and `metadata.annotations` itself
/// when it is (or becomes) empty, as kustomize's output does.
pub fn strip_build_annotations(resources: &mut [Resource]) {
    for resource in resources {
        let Some(Value::Mapping(metadata)) = resource.value.get_mut("metadata") else {
            continue;
        };
        let Some(Value::Mapping(annotations)) = metadata.get_mut("annotations") else {
            continue;
        };
        annotations.retain(|key, _| !key.as_str().is_some_and(|k| BUILD_ANNOTATIONS.contains(&k)));
        if annotations.is_empty() {
            metadata.remove("annotations");
        }
    }
}

/// kustomize's "effective" namespace of an identity: `default` for namespaced objects without
/// one, a fixed marker for cluster-scoped ones.
pub(crate) fn effective_namespace<'a>(
    api_version: &str,
    kind: &str,
    namespace: Option<&'a str>,
) -> &'a str {
    if is_cluster_scoped(api_version, kind) {
        return NO_NAMESPACE;
    }
    match namespace {
        None | Some("") => DEFAULT_NAMESPACE,
        Some(ns) => ns,
    }
}

/// The effective namespace of a recorded identity (as [`previous_ids`] returns them).
pub(crate) fn recorded_effective_namespace(id: &ResId) -> &str {
    match id.namespace.as_deref() {
        None | Some("") => DEFAULT_NAMESPACE,
        Some(ns) => ns,
    }
}

/// The marker kustomize uses as the namespace of cluster-scoped objects.
pub(crate) const CLUSTER_MARKER: &str = NO_NAMESPACE;

fn annotations(resource: &Resource) -> Option<&Mapping> {
    resource
        .value
        .get("metadata")?
        .get("annotations")?
        .as_mapping()
}

fn csv_annotation(resource: &Resource, key: &str) -> Vec<String> {
    match annotations(resource)
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
    {
        Some(text) => text.split(',').map(str::to_string).collect(),
        None => Vec::new(),
    }
}

fn append_csv(resource: &mut Resource, key: &str, value: &str) {
    if value.is_empty() {
        return;
    }
    let mut list = csv_annotation(resource, key);
    list.push(value.to_string());
    let joined = list.join(",");
    let metadata = resource.metadata_mut();
    let entry = metadata
        .entry(Value::from("annotations"))
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if !entry.is_mapping() {
        *entry = Value::Mapping(Mapping::new());
    }
    if let Value::Mapping(annotations) = entry {
        annotations.insert(Value::from(key), Value::from(joined));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cm(name: &str) -> Resource {
        Resource::new(
            serde_yaml::from_str(&format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"
            ))
            .unwrap(),
            "test",
        )
    }

    #[test]
    fn previous_ids_accumulate_and_strip_cleans_up() {
        let mut r = cm("a");
        assert!(previous_ids(&r).is_empty());
        record_previous_id(&mut r);
        r.set_name("p-a");
        record_previous_id(&mut r);
        r.set_name("p-a-s");
        let ids = previous_ids(&r);
        assert_eq!(
            ids.iter().map(|id| id.name.as_str()).collect::<Vec<_>>(),
            vec!["a", "p-a"]
        );
        assert_eq!(ids[0].namespace.as_deref(), Some("default"));
        let mut all = vec![r];
        strip_build_annotations(&mut all);
        assert!(all[0].value["metadata"].get("annotations").is_none());
    }

    // Checked with `kubectl kustomize`: only kustomize's own keys go (the legacy
    // `config.kubernetes.io/path|index` and `config.k8s.io/id` too), and an empty annotations
    // mapping is dropped.
    #[test]
    fn strip_removes_exactly_kustomizes_keys() {
        let mut all = vec![
            Resource::new(
                serde_yaml::from_str(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    config.kubernetes.io/index: '3'\n    config.kubernetes.io/path: x.yaml\n    internal.config.kubernetes.io/foo: bar\n    config.k8s.io/id: '1'\n    kustomize.config.k8s.io/id: '2'\n    keep: me\n",
                )
                .unwrap(),
                "test",
            ),
            Resource::new(
                serde_yaml::from_str(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  annotations: {}\n  labels: {}\n",
                )
                .unwrap(),
                "test",
            ),
        ];
        strip_build_annotations(&mut all);
        let expected: Vec<Value> = [
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  annotations:\n    internal.config.kubernetes.io/foo: bar\n    kustomize.config.k8s.io/id: '2'\n    keep: me\n",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {}\n",
        ]
        .iter()
        .map(|s| serde_yaml::from_str(s).unwrap())
        .collect();
        assert_eq!(
            all.into_iter().map(|r| r.value).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn original_id_is_the_fallback_history() {
        let mut r = cm("a");
        r.set_name("renamed");
        let mut expected = r.original_id.clone();
        expected.namespace = Some("default".to_string());
        assert_eq!(previous_ids(&r), vec![expected]);
    }
}
