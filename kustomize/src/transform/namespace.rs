//! The `namespace:` transformer.
//!
//! Sets `metadata.namespace` on every object kustomize considers namespaced (see
//! [`is_cluster_scoped`]); renames `v1` Namespace objects to the namespace; sets the namespace
//! of role binding subjects named `default` (any kind, by default); and sets the other
//! namespace fields of the config (APIService `spec.service.namespace`, CRD conversion webhook
//! service namespace). Subjects naming a ServiceAccount of the build that moved also follow it,
//! but that is done later by [`fix_name_references`](super::fix_name_references).

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use super::Error;
use super::config::TransformerConfig;
use super::fieldspec::{Create, FieldSpec, walk};
use super::scope::is_cluster_scoped;
use super::tracking::record_previous_id;
use crate::resource::Resource;

/// Which subjects of RoleBindings and ClusterRoleBindings get the namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleBindingSubjects {
    /// Subjects named `default` (kustomize's default).
    #[default]
    #[serde(rename = "defaultOnly")]
    DefaultOnly,
    /// Every subject of kind ServiceAccount.
    #[serde(rename = "allServiceAccounts")]
    AllServiceAccounts,
    /// No subject.
    #[serde(rename = "none")]
    None,
}

impl std::str::FromStr for RoleBindingSubjects {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "defaultOnly" => Ok(Self::DefaultOnly),
            "allServiceAccounts" => Ok(Self::AllServiceAccounts),
            "none" => Ok(Self::None),
            other => Err(Error::InvalidRoleBindingSubjects(other.to_string())),
        }
    }
}

/// Options of the namespace transformer (only settable through a NamespaceTransformer plugin
/// config in kustomize; a kustomization's `namespace:` uses the defaults).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NamespaceOptions {
    /// Only set namespace fields that are missing or empty.
    pub unset_only: bool,
    /// Which role binding subjects get the namespace.
    pub role_binding_subjects: RoleBindingSubjects,
}

/// Moves every object to `namespace` (a no-op when it is empty).
///
/// # Errors
///
/// [`Error::NamespaceConflict`] when two objects end up with the same identity, and
/// [`Error::Field`] when a namespace field spec reaches something that is not a scalar.
pub fn set_namespace(
    resources: &mut [Resource],
    namespace: &str,
    options: &NamespaceOptions,
    config: &TransformerConfig,
) -> Result<(), Error> {
    if namespace.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        if resource.value.as_mapping().is_none_or(|m| m.is_empty()) {
            continue;
        }
        record_previous_id(resource);
        set_one(resource, namespace, options, config)?;
    }
    let mut seen = std::collections::HashSet::with_capacity(resources.len());
    for resource in resources.iter() {
        let id = resource.id();
        if !seen.insert(id.clone()) {
            return Err(Error::NamespaceConflict { id: Box::new(id) });
        }
    }
    Ok(())
}

fn set_one(
    resource: &mut Resource,
    namespace: &str,
    options: &NamespaceOptions,
    config: &TransformerConfig,
) -> Result<(), Error> {
    let api_version = resource.api_version().to_string();
    let kind = resource.kind().to_string();
    let is_binding = kind == "RoleBinding" || kind == "ClusterRoleBinding";
    let specs: Vec<&FieldSpec> = config
        .namespace
        .iter()
        .filter(|spec| spec.path != "metadata/namespace")
        .filter(|spec| api_version == "v1" || spec.path != "metadata/name")
        .filter(|spec| {
            !(is_binding
                && (spec.gvk.kind == "RoleBinding" || spec.gvk.kind == "ClusterRoleBinding")
                && spec.path == "subjects/namespace")
        })
        .collect();

    let mut setter = |node: &mut Value| set_scalar(node, namespace, options.unset_only);
    let id = resource.id();
    let field_error = |path: &str, reason: String| Error::Field {
        transformer: "namespace",
        path: path.to_string(),
        id: Box::new(id.clone()),
        reason,
    };

    if !is_cluster_scoped(&api_version, &kind) {
        let spec = FieldSpec::new("", "metadata/namespace", true);
        walk(
            &mut resource.value,
            &spec,
            Some(Create::Scalar),
            &mut setter,
        )
        .map_err(|e| field_error(&spec.path, e.0))?;
    }

    if is_binding
        && options.role_binding_subjects != RoleBindingSubjects::None
        && let Some(Value::Sequence(subjects)) = resource.value.get_mut("subjects")
    {
        for subject in subjects.iter_mut() {
            let selected = match options.role_binding_subjects {
                RoleBindingSubjects::DefaultOnly => {
                    subject.get("name").and_then(Value::as_str) == Some("default")
                }
                RoleBindingSubjects::AllServiceAccounts => {
                    subject.get("kind").and_then(Value::as_str) == Some("ServiceAccount")
                }
                RoleBindingSubjects::None => false,
            };
            if !selected {
                continue;
            }
            if let Value::Mapping(map) = subject {
                let entry = map
                    .entry(Value::from("namespace"))
                    .or_insert_with(|| Value::String(String::new()));
                setter(entry).map_err(|e| field_error("subjects/namespace", e))?;
            }
        }
    }

    for spec in specs {
        if !spec.applies_to(&api_version, &kind) {
            continue;
        }
        walk(&mut resource.value, spec, Some(Create::Scalar), &mut setter).map_err(|e| {
            field_error(
                &spec.path,
                format!("namespace field specs must target scalar nodes: {}", e.0),
            )
        })?;
    }
    Ok(())
}

/// Replaces a scalar (or null) with `value`; with `unset_only`, only when it is empty.
pub(crate) fn set_scalar(node: &mut Value, value: &str, unset_only: bool) -> Result<(), String> {
    match node {
        Value::Mapping(_) | Value::Sequence(_) => {
            Err("wrong node kind: expected ScalarNode".to_string())
        }
        _ => {
            if unset_only && super::fieldspec::scalar_text(node).is_some_and(|t| !t.is_empty()) {
                return Ok(());
            }
            *node = Value::String(value.to_string());
            Ok(())
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::transform::tests_support::{assert_resources, resources};

    fn run(input: &str, options: NamespaceOptions) -> Vec<Resource> {
        let mut res = resources(input);
        set_namespace(&mut res, "target", &options, TransformerConfig::builtin()).unwrap();
        res
    }

    // Expected outputs checked with `kubectl kustomize` (kustomize v5.5.0), `namespace: target`.
    #[test]
    fn namespaced_objects_move_and_cluster_scoped_ones_do_not() {
        let cases = [
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: already}\n",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm, namespace: target}\n",
            ),
            (
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: foo}\n",
                "apiVersion: v1\nkind: Namespace\nmetadata: {name: target}\n",
            ),
            (
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n",
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n",
            ),
            (
                "apiVersion: rbac.authorization.k8s.io/v1alpha1\nkind: ClusterRole\nmetadata: {name: r}\n",
                "apiVersion: rbac.authorization.k8s.io/v1alpha1\nkind: ClusterRole\nmetadata: {name: r, namespace: target}\n",
            ),
            (
                "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\nmetadata: {name: f}\n",
                "apiVersion: flowcontrol.apiserver.k8s.io/v1\nkind: FlowSchema\nmetadata: {name: f, namespace: target}\n",
            ),
            (
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: foos.example.com}\n",
                "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: foos.example.com}\n",
            ),
            (
                "apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: f}\n",
                "apiVersion: example.com/v1\nkind: Foo\nmetadata: {name: f, namespace: target}\n",
            ),
            (
                "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.foo}\nspec: {service: {name: svc}}\n",
                "apiVersion: apiregistration.k8s.io/v1\nkind: APIService\nmetadata: {name: v1.foo}\nspec: {service: {name: svc, namespace: target}}\n",
            ),
        ];
        for (input, expected) in cases {
            assert_resources(&run(input, NamespaceOptions::default()), expected);
        }
    }

    #[test]
    fn binding_subjects_named_default_get_the_namespace() {
        let input = "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb}\nsubjects:\n- {kind: ServiceAccount, name: default, namespace: other}\n- {kind: ServiceAccount, name: sa2, namespace: default}\n- {kind: User, name: default}\n- {kind: Group, name: g}\n";
        assert_resources(
            &run(input, NamespaceOptions::default()),
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb, namespace: target}\nsubjects:\n- {kind: ServiceAccount, name: default, namespace: target}\n- {kind: ServiceAccount, name: sa2, namespace: default}\n- {kind: User, name: default, namespace: target}\n- {kind: Group, name: g}\n",
        );
        let all = NamespaceOptions {
            role_binding_subjects: RoleBindingSubjects::AllServiceAccounts,
            ..NamespaceOptions::default()
        };
        assert_resources(
            &run(input, all),
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: rb, namespace: target}\nsubjects:\n- {kind: ServiceAccount, name: default, namespace: target}\n- {kind: ServiceAccount, name: sa2, namespace: target}\n- {kind: User, name: default}\n- {kind: Group, name: g}\n",
        );
        let none = NamespaceOptions {
            role_binding_subjects: RoleBindingSubjects::None,
            ..NamespaceOptions::default()
        };
        assert_resources(
            &run(input, none),
            &input.replace(
                "metadata: {name: rb}",
                "metadata: {name: rb, namespace: target}",
            ),
        );
    }

    #[test]
    fn unset_only_keeps_existing_namespaces() {
        let options = NamespaceOptions {
            unset_only: true,
            ..NamespaceOptions::default()
        };
        assert_resources(
            &run(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: keep}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
                options,
            ),
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: keep}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: target}\n",
        );
    }

    #[test]
    fn two_objects_landing_on_the_same_id_conflict() {
        let mut res = resources(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: x}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: y}\n",
        );
        let err = set_namespace(
            &mut res,
            "target",
            &NamespaceOptions::default(),
            TransformerConfig::builtin(),
        )
        .unwrap_err();
        assert!(matches!(err, Error::NamespaceConflict { .. }), "{err}");
    }
}
