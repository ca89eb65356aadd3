//! The `namePrefix:` and `nameSuffix:` transformers.
//!
//! The prefix (suffix) goes on every field of the config's `namePrefix` (`nameSuffix`) list,
//! by default `metadata.name` of every object except CustomResourceDefinitions, APIServices
//! and Namespaces. Each renamed object remembers its previous identity and the prefix (suffix)
//! it got, for [`fix_name_references`](super::fix_name_references).

use serde_yaml::Value;

use super::Error;
use super::config::TransformerConfig;
use super::fieldspec::{Create, FieldSpec, Gvk, walk};
use super::tracking::{add_prefix_record, add_suffix_record, org_id, record_previous_id};
use crate::resource::Resource;

#[derive(Clone, Copy)]
enum End {
    Prefix,
    Suffix,
}

/// Adds `prefix` to the names of the objects (a no-op when it is empty).
///
/// # Errors
///
/// [`Error::Field`] when a field spec reaches something that is not a scalar.
pub fn add_name_prefix(
    resources: &mut [Resource],
    prefix: &str,
    config: &TransformerConfig,
) -> Result<(), Error> {
    apply(resources, prefix, End::Prefix, &config.name_prefix)
}

/// Adds `suffix` to the names of the objects (a no-op when it is empty).
///
/// # Errors
///
/// [`Error::Field`] when a field spec reaches something that is not a scalar.
pub fn add_name_suffix(
    resources: &mut [Resource],
    suffix: &str,
    config: &TransformerConfig,
) -> Result<(), Error> {
    apply(resources, suffix, End::Suffix, &config.name_suffix)
}

/// Kinds whose names never get a prefix or suffix.
fn skipped(id_group: &str, id_kind: &str) -> bool {
    id_kind == "CustomResourceDefinition"
        || id_kind == "Namespace"
        || (id_kind == "APIService" && id_group == "apiregistration.k8s.io")
}

fn apply(
    resources: &mut [Resource],
    affix: &str,
    end: End,
    specs: &[FieldSpec],
) -> Result<(), Error> {
    if affix.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        let original = org_id(resource);
        if skipped(&original.group, &original.kind) {
            continue;
        }
        let original_gvk = Gvk {
            group: original.group.clone(),
            version: original.version.clone(),
            kind: original.kind.clone(),
        };
        for spec in specs {
            if !original_gvk.is_selected_by(&spec.gvk) {
                continue;
            }
            if spec.path == "metadata/name" {
                match end {
                    End::Prefix => add_prefix_record(resource, affix),
                    End::Suffix => add_suffix_record(resource, affix),
                }
                record_previous_id(resource);
            }
            if !spec.applies_to(resource.api_version(), resource.kind()) {
                continue;
            }
            let mut setter = |node: &mut Value| {
                if node.is_mapping() || node.is_sequence() {
                    return Err("wrong node kind: expected ScalarNode".to_string());
                }
                let current = super::fieldspec::scalar_text(node).unwrap_or_default();
                *node = Value::String(match end {
                    End::Prefix => format!("{affix}{current}"),
                    End::Suffix => format!("{current}{affix}"),
                });
                Ok(())
            };
            walk(&mut resource.value, spec, Some(Create::Scalar), &mut setter).map_err(|e| {
                Error::Field {
                    transformer: match end {
                        End::Prefix => "namePrefix",
                        End::Suffix => "nameSuffix",
                    },
                    path: spec.path.clone(),
                    id: Box::new(resource.id()),
                    reason: e.0,
                }
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transform::tests_support::{assert_resources, resources};
    use crate::transform::{name_prefixes, name_suffixes, previous_ids};

    // Checked with `kubectl kustomize` (namePrefix: p-, nameSuffix: -s).
    #[test]
    fn names_get_prefix_and_suffix_except_skipped_kinds() {
        let mut res = resources(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: foos.example.com}\n---\napiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.foo}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cr}\n",
        );
        let config = TransformerConfig::builtin();
        add_name_prefix(&mut res, "p-", config).unwrap();
        add_name_suffix(&mut res, "-s", config).unwrap();
        assert_resources(
            &res,
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: p-cm-s}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: foos.example.com}\n---\napiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.foo}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: p-cr-s}\n",
        );
        let names: Vec<String> = previous_ids(&res[0])
            .into_iter()
            .map(|id| id.name)
            .collect();
        assert_eq!(names, vec!["cm", "p-cm"]);
        assert_eq!(name_prefixes(&res[0]), vec!["p-"]);
        assert_eq!(name_suffixes(&res[0]), vec!["-s"]);
        assert!(previous_ids(&res[1]).is_empty());
    }

    #[test]
    fn empty_affixes_change_nothing() {
        let mut res = resources("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n");
        add_name_prefix(&mut res, "", TransformerConfig::builtin()).unwrap();
        add_name_suffix(&mut res, "", TransformerConfig::builtin()).unwrap();
        assert_eq!(
            res[0].value,
            resources("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n")[0].value
        );
    }
}
