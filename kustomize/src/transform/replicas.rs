//! The `replicas:` transformer.
//!
//! Each entry sets the replica count (`spec.replicas` of Deployments, ReplicationControllers,
//! ReplicaSets and StatefulSets by default) of the objects whose current or any previous name
//! is the entry's name. An entry that matches nothing is an error.

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::Error;
use super::config::TransformerConfig;
use super::fieldspec::{Create, Gvk, walk};
use super::tracking::previous_ids;
use crate::resource::Resource;

/// One entry of a kustomization's `replicas:` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Replica {
    /// The name of the objects to scale.
    #[serde(default, deserialize_with = "super::de::string")]
    pub name: String,
    /// The replica count.
    #[serde(default)]
    pub count: i64,
}

/// Applies the `replicas:` entries, in order.
///
/// # Errors
///
/// [`Error::ReplicaTargetNotFound`] when an entry matches no object of the configured kinds;
/// [`Error::Field`] when the replicas field holds a mapping or a list.
pub fn set_replicas(
    resources: &mut [Resource],
    replicas: &[Replica],
    config: &TransformerConfig,
) -> Result<(), Error> {
    for replica in replicas {
        let mut found = false;
        for spec in &config.replicas {
            for resource in resources.iter_mut() {
                if !matches_any_id(resource, &replica.name, &spec.gvk) {
                    continue;
                }
                found = true;
                if !spec.applies_to(resource.api_version(), resource.kind()) {
                    continue;
                }
                let mut set = |node: &mut Value| {
                    if node.is_mapping() || node.is_sequence() {
                        return Err("wrong node kind: expected ScalarNode".to_string());
                    }
                    *node = Value::from(replica.count);
                    Ok(())
                };
                walk(&mut resource.value, spec, Some(Create::Scalar), &mut set).map_err(|e| {
                    Error::Field {
                        transformer: "replicas",
                        path: spec.path.clone(),
                        id: Box::new(resource.id()),
                        reason: e.0,
                    }
                })?;
            }
        }
        if !found {
            let kinds = config
                .replicas
                .iter()
                .map(|spec| gvk_text(&spec.gvk))
                .collect::<Vec<_>>()
                .join(" ");
            return Err(Error::ReplicaTargetNotFound {
                name: replica.name.clone(),
                kinds,
            });
        }
    }
    Ok(())
}

/// Whether the current or a previous identity of `resource` has `name` and a kind `selector`
/// picks.
fn matches_any_id(resource: &Resource, name: &str, selector: &Gvk) -> bool {
    let current = resource.id();
    std::iter::once(current)
        .chain(previous_ids(resource))
        .any(|id| {
            id.name == name && super::fieldspec::selects(selector, &id.group, &id.version, &id.kind)
        })
}

/// kustomize's `group_version_kind` spelling of a selector, with `~G`/`~V`/`~K` for empty parts.
fn gvk_text(gvk: &Gvk) -> String {
    let part = |s: &str, empty: &str| {
        if s.is_empty() {
            empty.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        part(&gvk.group, "~G"),
        part(&gvk.version, "~V"),
        part(&gvk.kind, "~K")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transform::add_name_prefix;
    use crate::transform::tests_support::{assert_resources, resources};

    // Checked with `kubectl kustomize` (v5.5.0).
    #[test]
    fn replicas_are_set_by_current_or_previous_name() {
        let mut res = resources(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {replicas: 1}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n",
        );
        let config = TransformerConfig::builtin();
        add_name_prefix(&mut res, "p-", config).unwrap();
        let entries = [
            Replica {
                name: "web".into(),
                count: 3,
            },
            Replica {
                name: "p-db".into(),
                count: 5,
            },
        ];
        set_replicas(&mut res, &entries, config).unwrap();
        assert_resources(
            &res,
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: p-web}\nspec: {replicas: 3}\n---\napiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: p-db}\nspec: {replicas: 5}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: p-web}\n",
        );
    }

    #[test]
    fn an_entry_matching_nothing_is_an_error() {
        let mut res = resources("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n");
        let err = set_replicas(
            &mut res,
            &[Replica {
                name: "web".into(),
                count: 2,
            }],
            TransformerConfig::builtin(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::ReplicaTargetNotFound { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("resource with name web does not match"),
            "{err}"
        );
    }
}
