//! References from one object to another, with Flux's field names and validation.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A reference to an object in the same namespace as the referrer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectReference {
    /// Name of the referent.
    pub name: String,
}

/// A reference to an object in any namespace; without a namespace it means the referrer's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectReference {
    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent; the referrer's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl NamespacedObjectReference {
    /// The namespace of the referent, given the referrer's namespace.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(referrer_namespace)
    }
}

/// A typed reference to an object in any namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespacedObjectKindReference {
    /// API version of the referent; the server's preferred version when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    pub kind: String,

    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent; the referrer's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl NamespacedObjectKindReference {
    /// The namespace of the referent, given the referrer's namespace.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(referrer_namespace)
    }
}

/// A reference to a Secret in the referrer's namespace, and optionally a key in it.
///
/// Unlike core/v1 `SecretKeySelector`, the key may be left out; each user of the type
/// documents its default key.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyReference {
    /// Name of the Secret.
    pub name: String,

    /// Key in the Secret; an implementation-specific default when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

impl SecretKeyReference {
    /// The key to read, or `default` when none is set.
    pub fn key_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.key.as_deref().unwrap_or(default)
    }
}

/// Where to find the credentials for a remote cluster (`spec.kubeConfig`).
///
/// Exactly one of the two references is expected (the schema does not enforce it, so a
/// controller must reject both or neither being set): a Secret holding a self-contained
/// kubeconfig file (read from the key `value`, or `value.yaml`, when no key is given), or a
/// ConfigMap describing a cluster to reach with workload identity (keys `provider`,
/// `cluster`, `address`, `ca.crt`, `audiences`, `serviceAccountName`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubeConfigReference {
    /// ConfigMap with the remote cluster description for workload identity.
    /// Mutually exclusive with `secretRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,

    /// Secret holding a self-contained kubeconfig file. Mutually exclusive with
    /// `configMapRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretKeyReference>,
}

/// A dependency of a Kustomization or HelmRelease on another object of the same kind
/// (`spec.dependsOn`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DependencyReference {
    /// Name of the referent.
    pub name: String,

    /// Namespace of the referent; the referrer's namespace when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,

    /// A CEL expression deciding whether the dependency is ready; it replaces the built-in
    /// readiness check when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_expr: Option<String>,
}

impl DependencyReference {
    /// The namespace of the dependency, given the referrer's namespace.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(referrer_namespace)
    }
}

/// The kind of object a [`ValuesReference`] points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ValuesReferenceKind {
    /// A Secret.
    Secret,
    /// A ConfigMap.
    ConfigMap,
}

/// A reference to Helm values held in a Secret or ConfigMap in the referrer's namespace.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValuesReference {
    /// Kind of the referent: `Secret` or `ConfigMap`.
    pub kind: ValuesReferenceKind,

    /// Name of the referent.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Data key holding the values; `values.yaml` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253), pattern(r"^[\-._a-zA-Z0-9]+$"))]
    pub values_key: Option<String>,

    /// Dot-notation path at which a single value is merged; the values are merged at the
    /// root when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 250), pattern(r"^([a-zA-Z0-9_\-.\\\/]|\[[0-9]{1,5}\])+$"))]
    pub target_path: Option<String>,

    /// When true, a missing referent is ignored (other errors still fail the reconcile).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
}

impl ValuesReference {
    /// The default data key.
    pub const DEFAULT_VALUES_KEY: &'static str = "values.yaml";

    /// The data key to read: [`values_key`](Self::values_key) or `values.yaml`.
    pub fn values_key(&self) -> &str {
        self.values_key
            .as_deref()
            .unwrap_or(Self::DEFAULT_VALUES_KEY)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
        v: &T,
        expected: Value,
    ) {
        let got = serde_json::to_value(v).unwrap();
        assert_eq!(got, expected);
        let back: T = serde_json::from_value(got).unwrap();
        assert_eq!(&back, v);
    }

    fn required_of<T: JsonSchema>() -> Vec<String> {
        let schema = serde_json::to_value(schemars::schema_for!(T)).unwrap();
        let mut r: Vec<String> = schema["required"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_owned()).collect())
            .unwrap_or_default();
        r.sort();
        r
    }

    #[test]
    fn references_serialize_with_flux_names() {
        round_trip(
            &LocalObjectReference { name: "a".into() },
            json!({"name": "a"}),
        );
        round_trip(
            &NamespacedObjectReference {
                name: "a".into(),
                namespace: None,
            },
            json!({"name": "a"}),
        );
        round_trip(
            &NamespacedObjectReference {
                name: "a".into(),
                namespace: Some("ns".into()),
            },
            json!({"name": "a", "namespace": "ns"}),
        );
        round_trip(
            &NamespacedObjectKindReference {
                api_version: Some("source.toolkit.fluxcd.io/v1".into()),
                kind: "GitRepository".into(),
                name: "podinfo".into(),
                namespace: None,
            },
            json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository", "name": "podinfo"}),
        );
        round_trip(
            &SecretKeyReference {
                name: "s".into(),
                key: None,
            },
            json!({"name": "s"}),
        );
        round_trip(
            &KubeConfigReference {
                config_map_ref: None,
                secret_ref: Some(SecretKeyReference {
                    name: "kc".into(),
                    key: Some("value".into()),
                }),
            },
            json!({"secretRef": {"name": "kc", "key": "value"}}),
        );
        round_trip(
            &KubeConfigReference {
                config_map_ref: Some(LocalObjectReference {
                    name: "cluster".into(),
                }),
                secret_ref: None,
            },
            json!({"configMapRef": {"name": "cluster"}}),
        );
        round_trip(
            &DependencyReference {
                name: "infra".into(),
                namespace: Some("flux-system".into()),
                ready_expr: Some("dep.status.observedGeneration == dep.metadata.generation".into()),
            },
            json!({
                "name": "infra",
                "namespace": "flux-system",
                "readyExpr": "dep.status.observedGeneration == dep.metadata.generation"
            }),
        );
        round_trip(
            &ValuesReference {
                kind: ValuesReferenceKind::ConfigMap,
                name: "values".into(),
                values_key: None,
                target_path: None,
                optional: false,
            },
            json!({"kind": "ConfigMap", "name": "values"}),
        );
        round_trip(
            &ValuesReference {
                kind: ValuesReferenceKind::Secret,
                name: "values".into(),
                values_key: Some("prod.yaml".into()),
                target_path: Some("image.tag".into()),
                optional: true,
            },
            json!({"kind": "Secret", "name": "values", "valuesKey": "prod.yaml", "targetPath": "image.tag", "optional": true}),
        );
    }

    #[test]
    fn schemas_require_what_flux_requires() {
        assert_eq!(required_of::<LocalObjectReference>(), ["name"]);
        assert_eq!(required_of::<NamespacedObjectReference>(), ["name"]);
        assert_eq!(
            required_of::<NamespacedObjectKindReference>(),
            ["kind", "name"]
        );
        assert_eq!(required_of::<SecretKeyReference>(), ["name"]);
        assert!(required_of::<KubeConfigReference>().is_empty());
        assert_eq!(required_of::<DependencyReference>(), ["name"]);
        assert_eq!(required_of::<ValuesReference>(), ["kind", "name"]);
    }

    #[test]
    fn values_reference_schema_validation() {
        let schema = serde_json::to_value(schemars::schema_for!(ValuesReference)).unwrap();
        let props = &schema["properties"];
        assert_eq!(props["name"]["minLength"], json!(1));
        assert_eq!(props["name"]["maxLength"], json!(253));
        assert_eq!(props["valuesKey"]["maxLength"], json!(253));
        assert_eq!(props["targetPath"]["maxLength"], json!(250));
        assert!(props["valuesKey"]["pattern"].is_string());
        let kinds = serde_json::to_string(&schema).unwrap();
        assert!(kinds.contains("\"Secret\"") && kinds.contains("\"ConfigMap\""));
        assert!(
            serde_json::from_value::<ValuesReference>(json!({"kind": "Pod", "name": "x"})).is_err()
        );
    }

    #[test]
    fn defaults() {
        let r = NamespacedObjectReference {
            name: "a".into(),
            namespace: None,
        };
        assert_eq!(r.namespace_or("default"), "default");
        let r = NamespacedObjectReference {
            name: "a".into(),
            namespace: Some("other".into()),
        };
        assert_eq!(r.namespace_or("default"), "other");
        let d = DependencyReference {
            name: "a".into(),
            ..Default::default()
        };
        assert_eq!(d.namespace_or("apps"), "apps");
        let s = SecretKeyReference {
            name: "s".into(),
            key: None,
        };
        assert_eq!(s.key_or("value"), "value");
        let v: ValuesReference =
            serde_json::from_value(json!({"kind": "Secret", "name": "v"})).unwrap();
        assert_eq!(v.values_key(), "values.yaml");
        assert!(!v.optional);
    }
}
