//! The `labels:`, `commonLabels:` and `commonAnnotations:` transformers.
//!
//! A `labels:` entry goes on `metadata.labels`; with `includeTemplates` also on the pod
//! templates (and StatefulSet volume claim templates) of the built-in workload kinds; with
//! `includeSelectors` also on their selectors (as `commonLabels` does); plus the entry's own
//! `fields`. `commonAnnotations` go on `metadata.annotations` and the pod templates. Keys are
//! applied in sorted order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::Error;
use super::config::{TransformerConfig, merge_specs};
use super::fieldspec::{Create, FieldSpec, walk};
use crate::resource::Resource;

/// One entry of a kustomization's `labels:` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Label {
    /// The labels to add.
    #[serde(default, deserialize_with = "super::de::string_map")]
    pub pairs: BTreeMap<String, String>,
    /// Also add them to selectors (and templates), like `commonLabels`.
    #[serde(default)]
    pub include_selectors: bool,
    /// Also add them to pod templates.
    #[serde(default)]
    pub include_templates: bool,
    /// More fields to add them to.
    #[serde(default, rename = "fields")]
    pub fields: Vec<FieldSpec>,
}

/// Applies the `labels:` entries, then `commonLabels` (kustomize's order).
///
/// # Errors
///
/// [`Error::ConflictingFieldSpecs`] when an entry's `fields` name a built-in field with a
/// different `create` flag; [`Error::Field`] when a field spec reaches something that is not a
/// mapping.
pub fn add_labels(
    resources: &mut [Resource],
    labels: &[Label],
    common_labels: &BTreeMap<String, String>,
    config: &TransformerConfig,
) -> Result<(), Error> {
    for label in labels {
        let mut specs = label.fields.clone();
        merge_specs(&mut specs, &config.labels, "labels")?;
        if label.include_selectors {
            merge_specs(&mut specs, &config.common_labels, "labels")?;
        } else {
            if label.include_templates {
                merge_specs(&mut specs, &config.template_labels, "labels")?;
            }
            merge_specs(
                &mut specs,
                &[FieldSpec::new("", "metadata/labels", true)],
                "labels",
            )?;
        }
        set_entries(resources, &label.pairs, &specs, "labels")?;
    }
    set_entries(
        resources,
        common_labels,
        &config.common_labels,
        "commonLabels",
    )
}

/// Applies `commonAnnotations`.
///
/// # Errors
///
/// [`Error::Field`] when a field spec reaches something that is not a mapping.
pub fn add_annotations(
    resources: &mut [Resource],
    annotations: &BTreeMap<String, String>,
    config: &TransformerConfig,
) -> Result<(), Error> {
    set_entries(
        resources,
        annotations,
        &config.common_annotations,
        "commonAnnotations",
    )
}

/// Sets every `entries` key in the mappings the specs reach (created when the spec says so).
fn set_entries(
    resources: &mut [Resource],
    entries: &BTreeMap<String, String>,
    specs: &[FieldSpec],
    transformer: &'static str,
) -> Result<(), Error> {
    if entries.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        let api_version = resource.api_version().to_string();
        let kind = resource.kind().to_string();
        let applicable: Vec<&FieldSpec> = specs
            .iter()
            .filter(|spec| spec.applies_to(&api_version, &kind))
            .collect();
        for (key, value) in entries {
            for spec in &applicable {
                let mut setter = |node: &mut Value| match node {
                    Value::Mapping(map) => {
                        map.insert(Value::from(key.as_str()), Value::from(value.as_str()));
                        Ok(())
                    }
                    Value::Null => Ok(()),
                    _ => Err(format!(
                        "wrong node kind: expected MappingNode to set {key}"
                    )),
                };
                walk(
                    &mut resource.value,
                    spec,
                    Some(Create::Mapping),
                    &mut setter,
                )
                .map_err(|e| Error::Field {
                    transformer,
                    path: spec.path.clone(),
                    id: Box::new(resource.id()),
                    reason: e.0,
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transform::tests_support::{assert_resources, resources};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const INPUT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec:
  template:
    spec:
      containers: [{name: c, image: nginx}]
---
apiVersion: v1
kind: Service
metadata: {name: s}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj}
spec:
  jobTemplate:
    spec:
      template:
        spec: {}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: st}
spec:
  volumeClaimTemplates:
  - metadata: {name: v}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: np}
spec:
  podSelector: {}
  ingress:
  - from:
    - podSelector:
        matchLabels: {a: b}
"#;

    // The kustomization of this test, built with `kubectl kustomize` (v5.5.0):
    //   commonLabels: {version: "1"}
    //   labels:
    //   - {pairs: {tier: web}, includeTemplates: true}
    //   - {pairs: {sel: "yes"}, includeSelectors: true,
    //      fields: [{path: spec/custom/labels, kind: Deployment, create: true}]}
    //   commonAnnotations: {note: "1.0"}
    const EXPECTED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  annotations: {note: "1.0"}
  labels: {sel: "yes", tier: web, version: "1"}
  name: d
spec:
  custom:
    labels: {sel: "yes"}
  selector:
    matchLabels: {sel: "yes", version: "1"}
  template:
    metadata:
      annotations: {note: "1.0"}
      labels: {sel: "yes", tier: web, version: "1"}
    spec:
      containers: [{image: nginx, name: c}]
---
apiVersion: v1
kind: Service
metadata:
  annotations: {note: "1.0"}
  labels: {sel: "yes", tier: web, version: "1"}
  name: s
spec:
  selector: {sel: "yes", version: "1"}
---
apiVersion: batch/v1
kind: CronJob
metadata:
  annotations: {note: "1.0"}
  labels: {sel: "yes", tier: web, version: "1"}
  name: cj
spec:
  jobTemplate:
    metadata:
      annotations: {note: "1.0"}
      labels: {sel: "yes", tier: web, version: "1"}
    spec:
      template:
        metadata:
          annotations: {note: "1.0"}
          labels: {sel: "yes", tier: web, version: "1"}
        spec: {}
---
apiVersion: apps/v1
kind: StatefulSet
metadata:
  annotations: {note: "1.0"}
  labels: {sel: "yes", tier: web, version: "1"}
  name: st
spec:
  selector:
    matchLabels: {sel: "yes", version: "1"}
  template:
    metadata:
      annotations: {note: "1.0"}
      labels: {sel: "yes", tier: web, version: "1"}
  volumeClaimTemplates:
  - metadata:
      labels: {sel: "yes", tier: web, version: "1"}
      name: v
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  annotations: {note: "1.0"}
  labels: {sel: "yes", tier: web, version: "1"}
  name: np
spec:
  ingress:
  - from:
    - podSelector:
        matchLabels: {a: b, sel: "yes", version: "1"}
  podSelector: {}
"#;

    #[test]
    fn labels_common_labels_and_annotations_reach_their_fields() {
        let mut res = resources(INPUT);
        let labels = vec![
            Label {
                pairs: map(&[("tier", "web")]),
                include_templates: true,
                ..Label::default()
            },
            Label {
                pairs: map(&[("sel", "yes")]),
                include_selectors: true,
                fields: vec![FieldSpec::new("Deployment", "spec/custom/labels", true)],
                ..Label::default()
            },
        ];
        let config = TransformerConfig::builtin();
        add_labels(&mut res, &labels, &map(&[("version", "1")]), config).unwrap();
        add_annotations(&mut res, &map(&[("note", "1.0")]), config).unwrap();
        assert_resources(&res, EXPECTED);
    }

    #[test]
    fn plain_labels_entry_touches_only_metadata() {
        let mut res = resources(INPUT);
        let labels = vec![Label {
            pairs: map(&[("tier", "web")]),
            ..Label::default()
        }];
        add_labels(
            &mut res,
            &labels,
            &BTreeMap::new(),
            TransformerConfig::builtin(),
        )
        .unwrap();
        let d = &res[0].value;
        assert_eq!(d["metadata"]["labels"]["tier"], Value::from("web"));
        assert!(d["spec"].get("selector").is_none());
        assert!(d["spec"]["template"].get("metadata").is_none());
    }

    #[test]
    fn labels_entry_deserializes_from_kustomization_yaml() {
        let label: Label = serde_yaml::from_str(
            "pairs: {a: b}\nincludeSelectors: true\nfields:\n- {path: spec/x, kind: Foo, create: true}\n",
        )
        .unwrap();
        assert!(label.include_selectors);
        assert_eq!(label.fields[0].gvk.kind, "Foo");
        assert!(serde_yaml::from_str::<Label>("pair: {a: b}\n").is_err());
    }

    #[test]
    fn a_scalar_where_labels_go_is_an_error() {
        let mut res =
            resources("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, labels: oops}\n");
        let err = add_labels(
            &mut res,
            &[],
            &map(&[("a", "b")]),
            TransformerConfig::builtin(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::Field { .. }), "{err}");
    }
}
