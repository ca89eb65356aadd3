//! How an applied object is named: the identity a Kustomization records in
//! `status.inventory` and later prunes by.
//!
//! The id format is Flux's (from the Kubernetes `cli-utils` object metadata):
//! `<namespace>_<name>_<group>_<kind>`, with an empty namespace for cluster-scoped objects, an
//! empty group for the core API group, and every `:` of the name (RBAC names such as
//! `system:auth-delegator`) written as `__`. The API version is kept beside the id (`v`), so
//! an object can be read back with the version it was applied with.

use std::fmt;

/// The identity of one object in the cluster, plus the version it was applied with.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// API group, empty for the core group (`""` for ConfigMap, `apps` for Deployment).
    pub group: String,
    /// API version without the group (`v1`).
    pub version: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

/// An inventory id that does not have the four `_`-separated parts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid inventory id {id:?}: want <namespace>_<name>_<group>_<kind>")]
pub struct InvalidId {
    /// The id as read.
    pub id: String,
}

impl ObjectRef {
    /// The reference of an object given as JSON (`apiVersion`, `kind`, `metadata.name`,
    /// `metadata.namespace`); `None` when a field other than the namespace is missing.
    pub fn from_object(object: &serde_json::Value) -> Option<Self> {
        let (group, version) = split_api_version(object.get("apiVersion")?.as_str()?);
        let metadata = object.get("metadata")?;
        Some(Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: object.get("kind")?.as_str()?.to_owned(),
            namespace: metadata
                .get("namespace")
                .and_then(|n| n.as_str())
                .unwrap_or_default()
                .to_owned(),
            name: metadata.get("name")?.as_str()?.to_owned(),
        })
    }

    /// Parses an inventory entry (`id` and `v`).
    pub fn from_inventory(id: &str, version: &str) -> Result<Self, InvalidId> {
        let invalid = || InvalidId { id: id.to_owned() };
        let (namespace, rest) = id.split_once('_').ok_or_else(invalid)?;
        let (rest, kind) = rest.rsplit_once('_').ok_or_else(invalid)?;
        let (name, group) = rest.rsplit_once('_').ok_or_else(invalid)?;
        if name.is_empty() || kind.is_empty() {
            return Err(invalid());
        }
        Ok(Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.replace("__", ":"),
        })
    }

    /// The inventory id, `<namespace>_<name>_<group>_<kind>`.
    pub fn id(&self) -> String {
        format!(
            "{}_{}_{}_{}",
            self.namespace,
            self.name.replace(':', "__"),
            self.group,
            self.kind
        )
    }

    /// `apiVersion` as written in a manifest (`apps/v1`, or `v1` for the core group).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether two references name the same object, whatever version each was applied with.
    pub fn same_object(&self, other: &Self) -> bool {
        self.group == other.group
            && self.kind == other.kind
            && self.namespace == other.namespace
            && self.name == other.name
    }
}

/// `Kind/namespace/name` (or `Kind/name` when cluster-scoped), the form Flux uses in events
/// and messages.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.namespace.is_empty() {
            write!(f, "{}/{}", self.kind, self.name)
        } else {
            write!(f, "{}/{}/{}", self.kind, self.namespace, self.name)
        }
    }
}

/// Splits `apps/v1` into `("apps", "v1")` and `v1` into `("", "v1")`.
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    api_version.rsplit_once('/').unwrap_or(("", api_version))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_fluxs_format_and_round_trip() {
        let deployment = ObjectRef::from_object(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "apps"}
        }))
        .unwrap();
        assert_eq!(deployment.id(), "apps_podinfo_apps_Deployment");
        assert_eq!(deployment.to_string(), "Deployment/apps/podinfo");
        assert_eq!(
            ObjectRef::from_inventory(&deployment.id(), "v1").unwrap(),
            deployment
        );

        let namespace = ObjectRef::from_object(&json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "apps"}
        }))
        .unwrap();
        assert_eq!(namespace.id(), "_apps__Namespace");
        assert_eq!(namespace.api_version(), "v1");
        assert_eq!(namespace.to_string(), "Namespace/apps");
        assert_eq!(
            ObjectRef::from_inventory("_apps__Namespace", "v1").unwrap(),
            namespace
        );
    }

    #[test]
    fn colons_in_names_are_written_as_double_underscores() {
        let role = ObjectRef::from_object(&json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:flux:view"}
        }))
        .unwrap();
        assert_eq!(
            role.id(),
            "_system__flux__view_rbac.authorization.k8s.io_ClusterRole"
        );
        assert_eq!(
            ObjectRef::from_inventory(&role.id(), "v1").unwrap().name,
            "system:flux:view"
        );
    }

    #[test]
    fn malformed_ids_are_refused() {
        for id in ["", "a_b", "ns__apps_", "ns_name"] {
            assert!(ObjectRef::from_inventory(id, "v1").is_err(), "{id}");
        }
    }
}
