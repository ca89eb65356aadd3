//! The transformer configuration: which fields each built-in transformer touches.
//!
//! [`TransformerConfig::builtin`] is kustomize's default set (kept as data in
//! `data/builtin_fieldspecs.yaml`). A kustomization's `configurations:` files use the same
//! schema ([`TransformerConfig::from_yaml`]) and are merged into it, as are the name references
//! found in `crds:` files ([`TransformerConfig::from_crd_definitions`]).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::Error;
use super::fieldspec::{FieldSpec, Gvk};

/// The objects of one kind (the referent) and the fields of other objects (the referrers) that
/// hold their names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameBackReference {
    /// The referent's group, version and kind (empty parts match anything).
    #[serde(flatten)]
    pub gvk: Gvk,
    /// Fields of referrers that hold a referent's name (kustomize calls them `fieldSpecs`).
    #[serde(default, rename = "fieldSpecs")]
    pub referrers: Vec<FieldSpec>,
}

/// Field specs per built-in transformer, in the schema of kustomize's `configurations:` files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TransformerConfig {
    /// Fields that get the `namePrefix`.
    #[serde(default)]
    pub name_prefix: Vec<FieldSpec>,
    /// Fields that get the `nameSuffix`.
    #[serde(default)]
    pub name_suffix: Vec<FieldSpec>,
    /// Fields that get the `namespace`, besides `metadata.namespace` of namespaced objects and
    /// role binding subjects (handled by the namespace transformer itself).
    #[serde(default)]
    pub namespace: Vec<FieldSpec>,
    /// Fields that get `commonLabels` (and `labels` with `includeSelectors`): metadata,
    /// templates and selectors.
    #[serde(default)]
    pub common_labels: Vec<FieldSpec>,
    /// Extra fields that get every `labels` entry.
    #[serde(default)]
    pub labels: Vec<FieldSpec>,
    /// Fields that get `labels` entries with `includeTemplates`: metadata and templates.
    #[serde(default)]
    pub template_labels: Vec<FieldSpec>,
    /// Fields that get `commonAnnotations`.
    #[serde(default)]
    pub common_annotations: Vec<FieldSpec>,
    /// Name references rewritten after renames.
    #[serde(default)]
    pub name_reference: Vec<NameBackReference>,
    /// Fields read by `vars` (kept so configurations that set them still load).
    #[serde(default)]
    pub var_reference: Vec<FieldSpec>,
    /// Image fields the `images` transformer rewrites.
    #[serde(default)]
    pub images: Vec<FieldSpec>,
    /// Replica count fields the `replicas` transformer sets.
    #[serde(default)]
    pub replicas: Vec<FieldSpec>,
}

const BUILTIN: &str = include_str!("data/builtin_fieldspecs.yaml");

impl TransformerConfig {
    /// Kustomize's default field specs.
    pub fn builtin() -> &'static TransformerConfig {
        static CONFIG: OnceLock<TransformerConfig> = OnceLock::new();
        CONFIG.get_or_init(
            || match serde_yaml::from_str::<TransformerConfig>(BUILTIN) {
                Ok(mut config) => {
                    config.sort();
                    config
                }
                // The data file is part of the crate and covered by a unit test.
                Err(_) => TransformerConfig::default(),
            },
        )
    }

    /// Parses a `configurations:` file. Unknown fields are errors, as in kustomize.
    pub fn from_yaml(text: &str) -> Result<Self, Error> {
        let mut config: TransformerConfig =
            serde_yaml::from_str(text).map_err(|source| Error::Configuration { source })?;
        config.sort();
        Ok(config)
    }

    /// Adds the specs of `other` that this config does not have yet. A spec naming the same
    /// field of the same objects with a different `create` flag is an error.
    pub fn merge(&mut self, other: &TransformerConfig) -> Result<(), Error> {
        merge_specs(&mut self.name_prefix, &other.name_prefix, "namePrefix")?;
        merge_specs(&mut self.name_suffix, &other.name_suffix, "nameSuffix")?;
        merge_specs(&mut self.namespace, &other.namespace, "namespace")?;
        merge_specs(
            &mut self.common_annotations,
            &other.common_annotations,
            "commonAnnotations",
        )?;
        merge_specs(
            &mut self.common_labels,
            &other.common_labels,
            "commonLabels",
        )?;
        merge_specs(&mut self.labels, &other.labels, "labels")?;
        merge_specs(
            &mut self.template_labels,
            &other.template_labels,
            "templateLabels",
        )?;
        merge_specs(
            &mut self.var_reference,
            &other.var_reference,
            "varReference",
        )?;
        for backref in &other.name_reference {
            match self
                .name_reference
                .iter_mut()
                .find(|mine| mine.gvk == backref.gvk)
            {
                Some(mine) => {
                    merge_specs(&mut mine.referrers, &backref.referrers, "nameReference")?
                }
                None => self.name_reference.push(backref.clone()),
            }
        }
        merge_specs(&mut self.images, &other.images, "images")?;
        merge_specs(&mut self.replicas, &other.replicas, "replicas")?;
        self.sort();
        Ok(())
    }

    /// The name references (and labels, annotations and prefix fields) declared by OpenAPI
    /// definitions, as in a kustomization's `crds:` files: a map from type name to
    /// `{Schema: {properties: ...}}` whose properties carry the `x-kubernetes-object-ref-kind`
    /// / `x-kubernetes-object-ref-api-version` (and `-name-key`), `x-kubernetes-annotation`,
    /// `x-kubernetes-label-selector` and `x-kubernetes-identity` extensions. The kind is the
    /// last `.`-separated part of the type name.
    pub fn from_crd_definitions(definitions: &Value) -> Result<Self, Error> {
        let mut result = TransformerConfig::default();
        let Some(map) = definitions.as_mapping() else {
            return Ok(result);
        };
        for (name, definition) in map {
            let Some(name) = name.as_str() else { continue };
            let Some(properties) = schema_properties(definition) else {
                continue;
            };
            let looks_like_object = ["kind", "apiVersion", "metadata"]
                .iter()
                .all(|key| properties.contains_key(*key));
            if !looks_like_object {
                continue;
            }
            let kind = name.rsplit('.').next().unwrap_or(name);
            let mut one = TransformerConfig::default();
            load_crd_type(&mut one, kind, map, name, &mut Vec::new(), 0)?;
            result.merge(&one)?;
        }
        Ok(result)
    }

    /// Orders every list the way kustomize does (by kind, then group, version and kind).
    fn sort(&mut self) {
        for list in [
            &mut self.name_prefix,
            &mut self.name_suffix,
            &mut self.namespace,
            &mut self.common_labels,
            &mut self.labels,
            &mut self.template_labels,
            &mut self.common_annotations,
            &mut self.var_reference,
            &mut self.images,
            &mut self.replicas,
        ] {
            list.sort_by_key(|spec| spec.gvk.sort_key());
        }
        self.name_reference
            .sort_by_key(|backref| backref.gvk.sort_key());
    }
}

/// Adds each spec of `incoming` unless an equivalent one is already there.
pub(crate) fn merge_specs(
    into: &mut Vec<FieldSpec>,
    incoming: &[FieldSpec],
    list: &'static str,
) -> Result<(), Error> {
    for spec in incoming {
        match into.iter().find(|mine| mine.effectively_equals(spec)) {
            Some(mine) if mine.create != spec.create => {
                return Err(Error::ConflictingFieldSpecs {
                    list,
                    path: spec.path.clone(),
                });
            }
            Some(_) => {}
            None => into.push(spec.clone()),
        }
    }
    Ok(())
}

fn schema_properties(definition: &Value) -> Option<&serde_yaml::Mapping> {
    let map = definition.as_mapping()?;
    // Go's JSON decoding matches the `Schema` field name case-insensitively.
    let schema = map.iter().find_map(|(key, value)| {
        key.as_str()
            .filter(|k| k.eq_ignore_ascii_case("schema"))
            .map(|_| value)
    })?;
    schema.get("properties")?.as_mapping()
}

fn load_crd_type(
    config: &mut TransformerConfig,
    kind: &str,
    definitions: &serde_yaml::Mapping,
    type_name: &str,
    path: &mut Vec<String>,
    depth: usize,
) -> Result<(), Error> {
    // Definitions may refer to each other in a loop; real schemas are far shallower.
    if depth > 32 {
        return Ok(());
    }
    let Some(definition) = definitions.get(type_name) else {
        return Ok(());
    };
    let Some(properties) = schema_properties(definition) else {
        return Ok(());
    };
    for (prop_name, property) in properties {
        let Some(prop_name) = prop_name.as_str() else {
            continue;
        };
        let ext = |key: &str| property.get(key).and_then(Value::as_str);
        let spec_for = |extra: &[&str]| {
            let mut parts: Vec<&str> = path.iter().map(String::as_str).collect();
            parts.push(prop_name);
            parts.extend_from_slice(extra);
            FieldSpec {
                gvk: Gvk::kind(kind),
                path: parts.join("/"),
                create: false,
            }
        };
        if ext("x-kubernetes-annotation").is_some() {
            merge_specs(
                &mut config.common_annotations,
                &[spec_for(&[])],
                "commonAnnotations",
            )?;
        }
        if ext("x-kubernetes-label-selector").is_some() {
            merge_specs(&mut config.common_labels, &[spec_for(&[])], "commonLabels")?;
        }
        if ext("x-kubernetes-identity").is_some() {
            merge_specs(&mut config.name_prefix, &[spec_for(&[])], "namePrefix")?;
        }
        if let (Some(version), Some(ref_kind)) = (
            ext("x-kubernetes-object-ref-api-version"),
            ext("x-kubernetes-object-ref-kind"),
        ) {
            let name_key = ext("x-kubernetes-object-ref-name-key").unwrap_or("name");
            let backref = NameBackReference {
                gvk: Gvk {
                    group: String::new(),
                    version: version.to_string(),
                    kind: ref_kind.to_string(),
                },
                referrers: vec![spec_for(&[name_key])],
            };
            config.merge(&TransformerConfig {
                name_reference: vec![backref],
                ..TransformerConfig::default()
            })?;
        }
        if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
            path.push(prop_name.to_string());
            load_crd_type(config, kind, definitions, reference, path, depth + 1)?;
            path.pop();
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn builtin_config_loads() {
        let parsed: TransformerConfig = serde_yaml::from_str(BUILTIN).unwrap();
        assert!(!parsed.name_reference.is_empty());
        let builtin = TransformerConfig::builtin();
        assert_eq!(builtin.name_prefix.len(), 1);
        assert_eq!(builtin.replicas.len(), 4);
        assert!(
            builtin
                .name_reference
                .iter()
                .any(|b| b.gvk.kind == "Secret")
        );
        // Namespace-related kinds sort first, as in kustomize.
        assert_eq!(builtin.name_reference[0].gvk.kind, "StorageClass");
    }

    #[test]
    fn merge_adds_new_specs_and_rejects_conflicts() {
        let mut config = TransformerConfig::builtin().clone();
        let extra = TransformerConfig::from_yaml(
            "commonLabels:\n- path: spec/selectors\n  kind: MyKind\n  create: true\nnameReference:\n- kind: ConfigMap\n  version: v1\n  fieldSpecs:\n  - path: spec/configName\n    kind: MyKind\n",
        )
        .unwrap();
        config.merge(&extra).unwrap();
        assert!(
            config
                .common_labels
                .iter()
                .any(|s| s.path == "spec/selectors")
        );
        let cm = config
            .name_reference
            .iter()
            .find(|b| b.gvk.kind == "ConfigMap")
            .unwrap();
        assert!(cm.referrers.iter().any(|s| s.path == "spec/configName"));

        let conflicting =
            TransformerConfig::from_yaml("commonLabels:\n- path: metadata/labels\n").unwrap();
        assert!(matches!(
            config.merge(&conflicting),
            Err(Error::ConflictingFieldSpecs { .. })
        ));
        assert!(TransformerConfig::from_yaml("bogus: []\n").is_err());
    }

    #[test]
    fn crd_definitions_declare_name_references() {
        let defs: Value = serde_yaml::from_str(
            r##"
github.com/example/pkg/apis/v1.MyKind:
  Schema:
    properties:
      apiVersion: {type: string}
      kind: {type: string}
      metadata: {$ref: "k8s.io/apimachinery/pkg/apis/meta/v1.ObjectMeta"}
      spec: {$ref: "github.com/example/pkg/apis/v1.MyKindSpec"}
github.com/example/pkg/apis/v1.MyKindSpec:
  Schema:
    properties:
      secretRef:
        type: object
        x-kubernetes-object-ref-api-version: v1
        x-kubernetes-object-ref-kind: Secret
"##,
        )
        .unwrap();
        let config = TransformerConfig::from_crd_definitions(&defs).unwrap();
        assert_eq!(config.name_reference.len(), 1);
        let backref = &config.name_reference[0];
        assert_eq!(backref.gvk.kind, "Secret");
        assert_eq!(backref.referrers[0].path, "spec/secretRef/name");
        assert_eq!(backref.referrers[0].gvk.kind, "MyKind");
    }
}
