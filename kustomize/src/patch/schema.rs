//! The strategic-merge metadata of the built-in kinds.
//!
//! Extracted from the OpenAPI v2 document of a real kube-apiserver ([`PatchSchema::from_openapi`],
//! run by `cargo xtask gen-patch-schema`) and committed as `schema.json` next to this file. Only what
//! a strategic merge needs is kept: per definition, the fields that carry
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` / `x-kubernetes-list-map-keys`, or
//! that lead (through `$ref`, array items or map values) to such a field; and the map from
//! group/version/kind to definition.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use super::PatchError;

/// The committed schema data.
const BUILT_IN: &str = include_str!("schema.json");

/// The strategic-merge metadata of a set of kinds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PatchSchema {
    /// `apiVersion/kind` (`apps/v1/Deployment`, `v1/Service`) -> definition name.
    pub kinds: BTreeMap<String, String>,
    /// Definition name (`io.k8s.api.core.v1.PodSpec`) -> its shape.
    pub definitions: BTreeMap<String, TypeInfo>,
    /// `apiVersion/kind` of the cluster-scoped kinds (served under no `{namespace}` path).
    #[serde(rename = "clusterScoped", default)]
    pub cluster_scoped: BTreeSet<String>,
}

/// What a strategic merge needs to know about one schema position (a definition, a field, the
/// items of a list or the values of a map). Empty parts are left out of the data file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TypeInfo {
    /// `x-kubernetes-patch-strategy` (`merge`, `retainKeys`, `merge,retainKeys`, `replace`).
    #[serde(rename = "s", default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// `x-kubernetes-patch-merge-key`.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub merge_key: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    #[serde(rename = "lk", default, skip_serializing_if = "Vec::is_empty")]
    pub list_map_keys: Vec<String>,
    /// `$ref`: the named definition this position has.
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// `properties`: the fields of an object.
    #[serde(rename = "p", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, TypeInfo>,
    /// `items`: the elements of a list.
    #[serde(rename = "i", default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<TypeInfo>>,
    /// `additionalProperties`: the values of a map.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Box<TypeInfo>>,
}

/// A position in a kind's schema, for walking an object and its patch side by side.
#[derive(Debug, Clone, Copy)]
pub struct SchemaNode<'a> {
    schema: &'a PatchSchema,
    info: &'a TypeInfo,
}

/// The schema of the built-in kinds (parsed once from the committed data).
pub fn built_in() -> &'static PatchSchema {
    static SCHEMA: OnceLock<PatchSchema> = OnceLock::new();
    SCHEMA.get_or_init(|| PatchSchema::from_data(BUILT_IN).unwrap_or_default())
}

/// The schema of a built-in kind, `None` for custom resources and unknown kinds (whose lists a
/// strategic merge replaces).
pub fn for_kind(api_version: &str, kind: &str) -> Option<SchemaNode<'static>> {
    built_in().kind(api_version, kind)
}

impl PatchSchema {
    /// Parses the compact data written by [`PatchSchema::to_data`].
    pub fn from_data(text: &str) -> Result<Self, PatchError> {
        serde_json::from_str(text).map_err(|e| PatchError::Schema(e.to_string()))
    }

    /// The compact JSON form committed as `schema.json`: one kind or definition a line, sorted, so
    /// a regeneration diffs well.
    pub fn to_data(&self) -> Result<String, PatchError> {
        fn line<T: Serialize>(key: &str, value: &T) -> Result<String, PatchError> {
            let key = serde_json::to_string(key).map_err(|e| PatchError::Schema(e.to_string()))?;
            let value =
                serde_json::to_string(value).map_err(|e| PatchError::Schema(e.to_string()))?;
            Ok(format!("{key}:{value}"))
        }
        let kinds = self
            .kinds
            .iter()
            .map(|(k, v)| line(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        let definitions = self
            .definitions
            .iter()
            .map(|(k, v)| line(k, v))
            .collect::<Result<Vec<_>, _>>()?;
        let cluster_scoped = serde_json::to_string(&self.cluster_scoped)
            .map_err(|e| PatchError::Schema(e.to_string()))?;
        Ok(format!(
            "{{\"kinds\":{{\n{}\n}},\n\"clusterScoped\":{cluster_scoped},\n\"definitions\":{{\n{}\n}}}}\n",
            kinds.join(",\n"),
            definitions.join(",\n")
        ))
    }

    /// Extracts the strategic-merge metadata from an OpenAPI v2 document (`GET /openapi/v2`).
    ///
    /// Keeps the definitions named by `x-kubernetes-group-version-kind` and what they lead to, and
    /// in them only what bears on a strategic merge (see the module docs).
    pub fn from_openapi(document: &serde_json::Value) -> Result<Self, PatchError> {
        let definitions = document
            .get("definitions")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| {
                PatchError::Schema("the OpenAPI document has no `definitions` object".into())
            })?;
        let mut all = BTreeMap::new();
        let mut kinds = BTreeMap::new();
        for (name, definition) in definitions {
            all.insert(name.clone(), extract(definition));
            let gvks = definition
                .get("x-kubernetes-group-version-kind")
                .and_then(serde_json::Value::as_array);
            for gvk in gvks.into_iter().flatten() {
                let field = |key: &str| gvk.get(key).and_then(serde_json::Value::as_str);
                let (Some(group), Some(version), Some(kind)) =
                    (field("group"), field("version"), field("kind"))
                else {
                    continue;
                };
                let api_version = if group.is_empty() {
                    version.to_string()
                } else {
                    format!("{group}/{version}")
                };
                kinds.insert(format!("{api_version}/{kind}"), name.clone());
            }
        }
        // Which definitions lead to strategic-merge metadata (a fixpoint: references may cycle).
        let mut relevant: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = relevant.len();
            for (name, info) in &all {
                if !relevant.contains(name) && info.is_relevant(&relevant) {
                    relevant.insert(name.clone());
                }
            }
            if relevant.len() == before {
                break;
            }
        }
        let kinds: BTreeMap<String, String> = kinds
            .into_iter()
            .filter(|(_, definition)| relevant.contains(definition))
            .collect();
        // Keep only what the kinds reach.
        let mut reached = BTreeSet::new();
        let mut pending: Vec<String> = kinds.values().cloned().collect();
        let mut kept = BTreeMap::new();
        while let Some(name) = pending.pop() {
            if !reached.insert(name.clone()) {
                continue;
            }
            let Some(info) = all.get(&name) else {
                continue;
            };
            let pruned = info.pruned(&relevant);
            pruned.references(&mut pending);
            kept.insert(name, pruned);
        }
        Ok(Self {
            kinds,
            definitions: kept,
            cluster_scoped: cluster_scoped(document),
        })
    }

    /// The schema of `kind` in `apiVersion`, if known.
    ///
    /// An exact match first; then, for kinds of built-in groups served under another version
    /// here (`batch/v1beta1` CronJob), the same group and kind in another version; then the
    /// groups old `extensions/v1beta1` kinds moved to.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<SchemaNode<'_>> {
        let name = match self.kinds.get(&format!("{api_version}/{kind}")) {
            Some(name) => name,
            None => self.other_version(api_version, kind)?,
        };
        let info = self.definitions.get(name)?;
        Some(SchemaNode { schema: self, info })
    }
}

impl PatchSchema {
    /// Whether `kind` in `apiVersion` is namespaced; `None` when the kind is unknown here (custom
    /// resources: kustomize then takes it as namespaced).
    pub fn is_namespaced(&self, api_version: &str, kind: &str) -> Option<bool> {
        let key = format!("{api_version}/{kind}");
        if self.cluster_scoped.contains(&key) {
            return Some(false);
        }
        if self.kinds.contains_key(&key) {
            return Some(true);
        }
        // Another version of a built-in kind.
        let name = self.other_version(api_version, kind)?;
        let cluster_scoped = self
            .kinds
            .iter()
            .any(|(key, other)| other == name && self.cluster_scoped.contains(key));
        Some(!cluster_scoped)
    }

    /// The definition of `kind` in the same built-in group under another version (or, for
    /// `extensions`, in the group the kind moved to). Custom groups never match: their kinds are
    /// never in the data.
    fn other_version(&self, api_version: &str, kind: &str) -> Option<&String> {
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        let groups: Vec<&str> = match group {
            "extensions" => vec!["apps", "networking.k8s.io", "policy"],
            other => vec![other],
        };
        groups.into_iter().find_map(|group| {
            self.kinds.iter().find_map(|(key, name)| {
                let (api_version, key_kind) = key.rsplit_once('/')?;
                let key_group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                (key_kind == kind && key_group == group).then_some(name)
            })
        })
    }
}

impl TypeInfo {
    /// Whether this position carries, or leads to, strategic-merge metadata.
    fn is_relevant(&self, relevant: &BTreeSet<String>) -> bool {
        self.strategy.is_some()
            || self.merge_key.is_some()
            || !self.list_map_keys.is_empty()
            || self
                .reference
                .as_ref()
                .is_some_and(|name| relevant.contains(name))
            || self.properties.values().any(|p| p.is_relevant(relevant))
            || self.items.as_ref().is_some_and(|i| i.is_relevant(relevant))
            || self
                .values
                .as_ref()
                .is_some_and(|v| v.is_relevant(relevant))
    }

    /// A copy without the parts that lead nowhere.
    fn pruned(&self, relevant: &BTreeSet<String>) -> Self {
        let keep = |info: &TypeInfo| info.is_relevant(relevant).then(|| info.pruned(relevant));
        Self {
            strategy: self.strategy.clone(),
            merge_key: self.merge_key.clone(),
            list_map_keys: self.list_map_keys.clone(),
            reference: self
                .reference
                .clone()
                .filter(|name| relevant.contains(name)),
            properties: self
                .properties
                .iter()
                .filter_map(|(name, info)| Some((name.clone(), keep(info)?)))
                .collect(),
            items: self.items.as_deref().and_then(keep).map(Box::new),
            values: self.values.as_deref().and_then(keep).map(Box::new),
        }
    }

    /// Adds the definitions this position names to `out`.
    fn references(&self, out: &mut Vec<String>) {
        out.extend(self.reference.iter().cloned());
        for info in self.properties.values() {
            info.references(out);
        }
        for info in self.items.iter().chain(self.values.iter()) {
            info.references(out);
        }
    }
}

/// The `apiVersion/kind` of every kind the document serves only outside namespaces: each
/// operation names its kind in `x-kubernetes-group-version-kind`, and namespaced kinds are served
/// under a path with a `{namespace}` segment.
fn cluster_scoped(document: &serde_json::Value) -> BTreeSet<String> {
    let mut namespaced = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let paths = document.get("paths").and_then(serde_json::Value::as_object);
    for (path, item) in paths.into_iter().flatten() {
        let Some(operations) = item.as_object() else {
            continue;
        };
        for operation in operations.values() {
            let Some(gvk) = operation.get("x-kubernetes-group-version-kind") else {
                continue;
            };
            let field = |key: &str| gvk.get(key).and_then(serde_json::Value::as_str);
            let (Some(group), Some(version), Some(kind)) =
                (field("group"), field("version"), field("kind"))
            else {
                continue;
            };
            let key = if group.is_empty() {
                format!("{version}/{kind}")
            } else {
                format!("{group}/{version}/{kind}")
            };
            if path.contains("{namespace}") {
                namespaced.insert(key.clone());
            }
            seen.insert(key);
        }
    }
    seen.difference(&namespaced).cloned().collect()
}

/// The strategic-merge view of one OpenAPI v2 schema object.
fn extract(schema: &serde_json::Value) -> TypeInfo {
    let text = |key: &str| {
        schema
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
    };
    let reference = text("$ref")
        .or_else(|| {
            // `allOf: [{$ref}]` is how a reference with its own description is sometimes written.
            let all_of = schema.get("allOf")?.as_array()?;
            all_of
                .iter()
                .find_map(|s| s.get("$ref")?.as_str().map(str::to_string))
        })
        .map(|r| r.trim_start_matches("#/definitions/").to_string());
    let properties = schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, s)| (name.clone(), extract(s)))
                .collect()
        })
        .unwrap_or_default();
    let nested = |key: &str| {
        schema
            .get(key)
            .filter(|s| s.is_object())
            .map(|s| Box::new(extract(s)))
    };
    TypeInfo {
        strategy: text("x-kubernetes-patch-strategy"),
        merge_key: text("x-kubernetes-patch-merge-key"),
        list_map_keys: schema
            .get("x-kubernetes-list-map-keys")
            .and_then(serde_json::Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        reference,
        properties,
        items: nested("items"),
        values: nested("additionalProperties"),
    }
}

impl<'a> SchemaNode<'a> {
    /// The named definition this position refers to, or the position itself.
    fn resolved(&self) -> &'a TypeInfo {
        let mut info = self.info;
        // References may chain; a cycle of pure references is not a real schema, so stop early.
        for _ in 0..8 {
            match info
                .reference
                .as_ref()
                .and_then(|name| self.schema.definitions.get(name))
            {
                Some(next) => info = next,
                None => break,
            }
        }
        info
    }

    fn at(&self, info: &'a TypeInfo) -> SchemaNode<'a> {
        SchemaNode {
            schema: self.schema,
            info,
        }
    }

    /// The schema of field `name` of the object at this position.
    pub fn field(&self, name: &str) -> Option<SchemaNode<'a>> {
        let info = self.resolved();
        info.properties
            .get(name)
            .or(info.values.as_deref())
            .map(|i| self.at(i))
    }

    /// The schema of the elements of the list at this position.
    pub fn elements(&self) -> Option<SchemaNode<'a>> {
        self.resolved().items.as_deref().map(|i| self.at(i))
    }

    /// The patch strategy at this position (`merge`, `retainKeys`, `merge,retainKeys`, `replace`).
    pub fn strategy(&self) -> Option<&'a str> {
        self.info.strategy.as_deref()
    }

    /// Whether the strategy includes `merge`: a list merged element by element.
    pub fn merges(&self) -> bool {
        self.has_strategy("merge")
    }

    /// Whether the strategy includes `retainKeys`.
    pub fn retains_keys(&self) -> bool {
        self.has_strategy("retainKeys")
    }

    fn has_strategy(&self, wanted: &str) -> bool {
        self.strategy()
            .is_some_and(|s| s.split(',').any(|part| part.trim() == wanted))
    }

    /// `x-kubernetes-patch-merge-key` at this position (the single key the API server's strategic
    /// merge uses).
    pub fn merge_key(&self) -> Option<&'a str> {
        self.info.merge_key.as_deref()
    }

    /// The keys that identify a list element, as kustomize picks them: `x-kubernetes-list-map-keys`
    /// when there is a patch strategy and such keys, otherwise the merge key; empty for a list of
    /// primitives.
    pub fn merge_keys(&self) -> Vec<&'a str> {
        if self.info.strategy.is_some() && !self.info.list_map_keys.is_empty() {
            return self.info.list_map_keys.iter().map(String::as_str).collect();
        }
        self.info.merge_key.as_deref().into_iter().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A small OpenAPI v2 document shaped like the API server's.
    fn fragment() -> serde_json::Value {
        serde_json::json!({
            "definitions": {
                "io.k8s.api.apps.v1.Deployment": {
                    "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
                    "properties": {
                        "metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"},
                        "spec": {"allOf": [{"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"}], "description": "spec"},
                        "status": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentStatus"}
                    }
                },
                "io.k8s.api.apps.v1.DeploymentSpec": {
                    "properties": {
                        "replicas": {"type": "integer"},
                        "strategy": {"$ref": "#/definitions/io.k8s.api.apps.v1.DeploymentStrategy", "x-kubernetes-patch-strategy": "retainKeys"},
                        "containers": {
                            "type": "array",
                            "items": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"},
                            "x-kubernetes-list-map-keys": ["name"],
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-patch-merge-key": "name",
                            "x-kubernetes-patch-strategy": "merge"
                        },
                        "byName": {"type": "object", "additionalProperties": {"$ref": "#/definitions/io.k8s.api.core.v1.Container"}}
                    }
                },
                "io.k8s.api.apps.v1.DeploymentStrategy": {"properties": {"type": {"type": "string"}}},
                "io.k8s.api.apps.v1.DeploymentStatus": {"properties": {"replicas": {"type": "integer"}}},
                "io.k8s.api.core.v1.Container": {
                    "properties": {
                        "name": {"type": "string"},
                        "ports": {
                            "type": "array",
                            "items": {"$ref": "#/definitions/io.k8s.api.core.v1.ContainerPort"},
                            "x-kubernetes-list-map-keys": ["containerPort", "protocol"],
                            "x-kubernetes-patch-merge-key": "containerPort",
                            "x-kubernetes-patch-strategy": "merge"
                        },
                        "args": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "atomic"}
                    }
                },
                "io.k8s.api.core.v1.ContainerPort": {"properties": {"containerPort": {"type": "integer"}}},
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                    "properties": {
                        "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-patch-strategy": "merge"},
                        "name": {"type": "string"}
                    }
                },
                "io.k8s.api.core.v1.Namespace": {
                    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Namespace"}],
                    "properties": {"metadata": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}}
                },
                "io.k8s.api.core.v1.Unrelated": {"properties": {"x": {"type": "string"}}}
            },
            "paths": {
                "/apis/apps/v1/namespaces/{namespace}/deployments/{name}": {
                    "get": {"x-kubernetes-group-version-kind": {"group": "apps", "version": "v1", "kind": "Deployment"}},
                    "parameters": []
                },
                "/api/v1/namespaces/{name}": {
                    "get": {"x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": "Namespace"}}
                }
            }
        })
    }

    #[test]
    fn extraction_keeps_only_what_a_merge_needs() {
        let schema = PatchSchema::from_openapi(&fragment()).unwrap();
        assert_eq!(
            schema.kinds,
            BTreeMap::from([
                (
                    "apps/v1/Deployment".to_string(),
                    "io.k8s.api.apps.v1.Deployment".to_string()
                ),
                (
                    "v1/Namespace".to_string(),
                    "io.k8s.api.core.v1.Namespace".to_string()
                ),
            ])
        );
        // Definitions without strategic-merge metadata on any path are gone, and so are the
        // properties that lead to none.
        let names: Vec<&str> = schema.definitions.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                "io.k8s.api.apps.v1.Deployment",
                "io.k8s.api.apps.v1.DeploymentSpec",
                "io.k8s.api.core.v1.Container",
                "io.k8s.api.core.v1.Namespace",
                "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            ]
        );
        let spec = &schema.definitions["io.k8s.api.apps.v1.DeploymentSpec"];
        assert_eq!(
            spec.properties.keys().collect::<Vec<_>>(),
            ["byName", "containers", "strategy"]
        );
        // A reference to a definition without metadata is dropped, the strategy kept.
        assert_eq!(spec.properties["strategy"].reference, None);
        assert_eq!(
            spec.properties["strategy"].strategy.as_deref(),
            Some("retainKeys")
        );
        assert_eq!(
            schema.cluster_scoped,
            BTreeSet::from(["v1/Namespace".to_string()])
        );
    }

    #[test]
    fn nodes_walk_references_items_and_map_values() {
        let schema = PatchSchema::from_openapi(&fragment()).unwrap();
        let deployment = schema.kind("apps/v1", "Deployment").unwrap();
        // `spec` was written as `allOf: [{$ref}]`.
        let spec = deployment.field("spec").unwrap();
        let containers = spec.field("containers").unwrap();
        assert!(containers.merges());
        assert_eq!(containers.merge_keys(), ["name"]);
        assert_eq!(containers.merge_key(), Some("name"));
        let ports = containers.elements().unwrap().field("ports").unwrap();
        assert_eq!(ports.merge_keys(), ["containerPort", "protocol"]);
        assert_eq!(ports.merge_key(), Some("containerPort"));
        assert!(containers.elements().unwrap().field("args").is_none());
        let by_name = spec.field("byName").unwrap().field("anything").unwrap();
        assert!(by_name.field("ports").unwrap().merges());
        let strategy = spec.field("strategy").unwrap();
        assert!(strategy.retains_keys() && !strategy.merges());
        let finalizers = deployment
            .field("metadata")
            .unwrap()
            .field("finalizers")
            .unwrap();
        assert!(finalizers.merges());
        assert!(finalizers.merge_keys().is_empty());
        assert!(schema.kind("example.com/v1", "Deployment").is_none());
        assert_eq!(schema.is_namespaced("apps/v1", "Deployment"), Some(true));
        assert_eq!(schema.is_namespaced("v1", "Namespace"), Some(false));
        assert_eq!(schema.is_namespaced("example.com/v1", "Widget"), None);
    }

    #[test]
    fn data_round_trips() {
        let schema = PatchSchema::from_openapi(&fragment()).unwrap();
        let data = schema.to_data().unwrap();
        assert_eq!(PatchSchema::from_data(&data).unwrap(), schema);
    }

    /// The committed file is in the canonical form `gen-patch-schema` writes.
    #[test]
    fn committed_data_is_canonical() {
        assert_eq!(built_in().to_data().unwrap(), BUILT_IN);
    }

    fn keys_at(api_version: &str, kind: &str, path: &[&str]) -> (bool, Vec<&'static str>) {
        let mut node = for_kind(api_version, kind)
            .unwrap_or_else(|| panic!("{api_version} {kind} is not in the committed schema"));
        for (i, step) in path.iter().enumerate() {
            node = if *step == "[]" {
                node.elements()
            } else {
                node.field(step)
            }
            .unwrap_or_else(|| panic!("no schema at {:?}", &path[..=i]));
        }
        (node.merges(), node.merge_keys())
    }

    #[test]
    fn committed_data_has_the_known_merge_keys() {
        let pod_spec = ["spec", "template", "spec"];
        let at = |rest: &[&'static str]| [&pod_spec[..], rest].concat();
        assert_eq!(
            keys_at("apps/v1", "Deployment", &at(&["containers"])),
            (true, vec!["name"])
        );
        assert_eq!(
            keys_at("apps/v1", "Deployment", &at(&["initContainers"])),
            (true, vec!["name"])
        );
        assert_eq!(
            keys_at("apps/v1", "Deployment", &at(&["volumes"])),
            (true, vec!["name"])
        );
        assert_eq!(
            keys_at("apps/v1", "Deployment", &at(&["containers", "[]", "env"])),
            (true, vec!["name"])
        );
        assert_eq!(
            keys_at("apps/v1", "Deployment", &at(&["containers", "[]", "ports"])),
            (true, vec!["containerPort", "protocol"])
        );
        assert_eq!(
            keys_at(
                "apps/v1",
                "Deployment",
                &at(&["containers", "[]", "volumeMounts"])
            ),
            (true, vec!["mountPath"])
        );
        assert_eq!(
            keys_at("apps/v1", "Deployment", &at(&["imagePullSecrets"])),
            (true, vec!["name"])
        );
        assert_eq!(
            keys_at("v1", "Service", &["spec", "ports"]),
            (true, vec!["port", "protocol"])
        );
        assert_eq!(
            keys_at("v1", "ConfigMap", &["metadata", "finalizers"]),
            (true, vec![])
        );
        assert_eq!(
            keys_at("v1", "ConfigMap", &["metadata", "ownerReferences"]),
            (true, vec!["uid"])
        );
        assert_eq!(
            keys_at(
                "batch/v1",
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers"
                ]
            ),
            (true, vec!["name"])
        );
        // Lists without a merge strategy have no schema entry at all (and are replaced).
        let pod = for_kind("apps/v1", "Deployment").unwrap();
        let spec = pod
            .field("spec")
            .unwrap()
            .field("template")
            .unwrap()
            .field("spec")
            .unwrap();
        assert!(spec.field("tolerations").is_none());
        assert!(
            spec.field("containers")
                .unwrap()
                .elements()
                .unwrap()
                .field("args")
                .is_none()
        );
        let volumes = spec.field("volumes").unwrap();
        assert!(volumes.merges() && volumes.retains_keys());
        let strategy = pod.field("spec").unwrap().field("strategy").unwrap();
        assert_eq!(strategy.strategy(), Some("retainKeys"));
        assert!(for_kind("rbac.authorization.k8s.io/v1", "Role").is_some());
        assert!(for_kind("example.com/v1", "Widget").is_none());
    }

    #[test]
    fn old_versions_of_built_in_kinds_fall_back() {
        assert_eq!(
            keys_at(
                "batch/v1beta1",
                "CronJob",
                &[
                    "spec",
                    "jobTemplate",
                    "spec",
                    "template",
                    "spec",
                    "containers"
                ]
            ),
            (true, vec!["name"])
        );
        assert_eq!(
            keys_at(
                "extensions/v1beta1",
                "Deployment",
                &["spec", "template", "spec", "containers"]
            ),
            (true, vec!["name"])
        );
        assert!(for_kind("example.com/v1beta1", "CronJob").is_none());
    }

    #[test]
    fn committed_data_knows_the_scope_of_kinds() {
        let schema = built_in();
        assert_eq!(schema.is_namespaced("v1", "Namespace"), Some(false));
        assert_eq!(
            schema.is_namespaced("rbac.authorization.k8s.io/v1", "ClusterRole"),
            Some(false)
        );
        assert_eq!(
            schema.is_namespaced("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            Some(false)
        );
        assert_eq!(schema.is_namespaced("v1", "PersistentVolume"), Some(false));
        assert_eq!(schema.is_namespaced("v1", "ConfigMap"), Some(true));
        assert_eq!(schema.is_namespaced("apps/v1", "Deployment"), Some(true));
        assert_eq!(
            schema.is_namespaced("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
            Some(false)
        );
        assert_eq!(schema.is_namespaced("example.com/v1", "Widget"), None);
    }
}
