//! Which kinds are cluster-scoped, as kustomize decides it.
//!
//! kustomize asks the OpenAPI schema it embeds (Kubernetes 1.21) and treats every kind that
//! schema does not list as namespaced, custom resources included. The decision is made on the
//! exact `apiVersion` and kind: `flowcontrol.apiserver.k8s.io/v1beta1` FlowSchema is
//! cluster-scoped, `flowcontrol.apiserver.k8s.io/v1` FlowSchema (absent from that schema) gets a
//! namespace. We reproduce that list, checked against `kubectl kustomize`.

/// The cluster-scoped `(apiVersion, kind)` pairs of kustomize's embedded schema.
const CLUSTER_SCOPED: [(&str, &str); 36] = [
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingWebhookConfiguration",
    ),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
    ("apiregistration.k8s.io/v1", "APIService"),
    ("apiregistration.k8s.io/v1beta1", "APIService"),
    ("certificates.k8s.io/v1", "CertificateSigningRequest"),
    ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
    (
        "flowcontrol.apiserver.k8s.io/v1beta1",
        "PriorityLevelConfiguration",
    ),
    ("networking.k8s.io/v1", "IngressClass"),
    ("networking.k8s.io/v1beta1", "IngressClass"),
    ("node.k8s.io/v1", "RuntimeClass"),
    ("node.k8s.io/v1beta1", "RuntimeClass"),
    ("policy/v1beta1", "PodSecurityPolicy"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("scheduling.k8s.io/v1beta1", "PriorityClass"),
    ("storage.k8s.io/v1", "CSIDriver"),
    ("storage.k8s.io/v1", "CSINode"),
    ("storage.k8s.io/v1", "StorageClass"),
    ("storage.k8s.io/v1", "VolumeAttachment"),
    ("storage.k8s.io/v1beta1", "CSIDriver"),
    ("storage.k8s.io/v1beta1", "CSINode"),
    ("storage.k8s.io/v1beta1", "StorageClass"),
    ("storage.k8s.io/v1beta1", "VolumeAttachment"),
    ("v1", "ComponentStatus"),
    ("v1", "Namespace"),
    ("v1", "Node"),
    ("v1", "NodeProxyOptions"),
    ("v1", "PersistentVolume"),
];

/// Whether kustomize treats objects of this `apiVersion` and kind as cluster-scoped (they get
/// no namespace from the `namespace` transformer). Unknown kinds are namespaced.
pub fn is_cluster_scoped(api_version: &str, kind: &str) -> bool {
    CLUSTER_SCOPED
        .iter()
        .any(|(v, k)| *v == api_version && *k == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_follows_the_exact_api_version() {
        assert!(is_cluster_scoped("v1", "Namespace"));
        assert!(is_cluster_scoped(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole"
        ));
        assert!(is_cluster_scoped(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition"
        ));
        assert!(is_cluster_scoped(
            "flowcontrol.apiserver.k8s.io/v1beta1",
            "FlowSchema"
        ));
        assert!(!is_cluster_scoped(
            "flowcontrol.apiserver.k8s.io/v1",
            "FlowSchema"
        ));
        assert!(!is_cluster_scoped(
            "rbac.authorization.k8s.io/v1alpha1",
            "ClusterRole"
        ));
        assert!(!is_cluster_scoped("example.com/v1", "Foo"));
        assert!(!is_cluster_scoped("v1", "ConfigMap"));
    }
}
