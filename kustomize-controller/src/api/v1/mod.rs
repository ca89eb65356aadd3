//! `kustomize.toolkit.fluxcd.io/v1`: the `Kustomization` kind.
//!
//! Field names, defaults, validation, printer columns and the short name are those of Flux
//! v2.9. Defaults Flux writes in Go code rather than in the CRD are methods
//! (`spec.timeout()`, `spec.retry_interval()`, `spec.deletion_policy()`, ...), so the
//! controller never re-implements them.
//!
//! One difference, an extension: `spec.sourceRef.kind` is not limited to Flux's four source
//! kinds. Any kind that publishes a `status.artifact` may be referenced (with its
//! `apiVersion`), so a third-party source works like a GitRepository.

mod kustomization;

pub use kustomization::{
    CommonMetadata, CrossNamespaceSourceReference, CustomHealthCheck, DEFAULT_SOURCE_API_VERSION,
    Decryption, DecryptionProvider, DeletionPolicy, DriftIgnoreRule, HISTORY_MAX_SIZE, Image,
    Kustomization, KustomizationSpec, KustomizationStatus, MIN_TIMEOUT, Patch, PostBuild,
    ResourceInventory, ResourceRef, Selector, Snapshot, SubstituteKind, SubstituteReference,
    upsert_history,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod crd_tests {
    //! The generated CRD carries the facts Flux users and tools rely on.

    use serde_json::{Value, json};
    use toolkit_sdk::api::INTERVAL_PATTERN;

    use super::*;

    fn crd() -> Value {
        serde_json::to_value(Kustomization::flux_crd()).unwrap()
    }

    fn count_nullable(value: &Value) -> usize {
        match value {
            Value::Object(map) => {
                usize::from(map.contains_key("nullable"))
                    + map.values().map(count_nullable).sum::<usize>()
            }
            Value::Array(items) => items.iter().map(count_nullable).sum(),
            _ => 0,
        }
    }

    #[test]
    fn names_columns_and_subresources_match_flux() {
        let crd = crd();
        assert_eq!(
            crd["metadata"]["name"],
            json!("kustomizations.kustomize.toolkit.fluxcd.io")
        );
        let names = &crd["spec"]["names"];
        assert_eq!(names["kind"], json!("Kustomization"));
        assert_eq!(names["plural"], json!("kustomizations"));
        assert_eq!(names["shortNames"], json!(["ks"]));
        assert_eq!(crd["spec"]["scope"], json!("Namespaced"));
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], json!("v1"));
        assert_eq!(version["subresources"], json!({"status": {}}));
        let columns: Vec<(String, String)> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().unwrap().to_owned(),
                    c["jsonPath"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let ready = r#".status.conditions[?(@.type=="Ready")]"#;
        assert_eq!(
            columns,
            vec![
                ("Age".to_owned(), ".metadata.creationTimestamp".to_owned()),
                ("Ready".to_owned(), format!("{ready}.status")),
                ("Status".to_owned(), format!("{ready}.message")),
            ]
        );
        assert_eq!(count_nullable(&crd), 0);
    }

    #[test]
    fn validation_and_defaults_match_flux() {
        let crd = crd();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        let spec = &schema["properties"]["spec"];
        let props = &spec["properties"];
        assert_eq!(spec["required"], json!(["interval", "prune", "sourceRef"]));
        for field in ["interval", "retryInterval", "timeout"] {
            assert_eq!(props[field]["pattern"], json!(INTERVAL_PATTERN), "{field}");
        }
        assert_eq!(props["force"]["default"], json!(false));
        assert_eq!(
            props["deletionPolicy"]["enum"],
            json!(["MirrorPrune", "Delete", "WaitForTermination", "Orphan"])
        );
        assert_eq!(props["deletionPolicy"].get("default"), None);
        assert_eq!(props["targetNamespace"]["maxLength"], json!(63));
        assert_eq!(props["namePrefix"]["maxLength"], json!(200));
        assert_eq!(props["nameSuffix"]["minLength"], json!(1));
        assert_eq!(props["sourceRef"]["required"], json!(["kind", "name"]));
        assert_eq!(
            props["decryption"]["properties"]["provider"]["enum"],
            json!(["sops"])
        );
        let from = &props["postBuild"]["properties"]["substituteFrom"]["items"];
        assert_eq!(from["required"], json!(["kind", "name"]));
        assert_eq!(
            from["properties"]["kind"]["enum"],
            json!(["Secret", "ConfigMap"])
        );
        assert_eq!(from["properties"]["optional"]["default"], json!(false));
        assert_eq!(props["dependsOn"]["items"]["required"], json!(["name"]));
        assert!(props["dependsOn"]["items"]["properties"]["readyExpr"].is_object());
        assert_eq!(
            props["healthCheckExprs"]["items"]["required"],
            json!(["apiVersion", "current", "kind"])
        );
        assert_eq!(props["images"]["items"]["required"], json!(["name"]));
        assert_eq!(props["patches"]["items"]["required"], json!(["patch"]));
        let status = &schema["properties"]["status"];
        assert_eq!(status["default"], json!({"observedGeneration": -1}));
        assert_eq!(
            status["properties"]["observedGeneration"].get("default"),
            None
        );
        let entries = &status["properties"]["inventory"]["properties"]["entries"]["items"];
        assert_eq!(entries["required"], json!(["id", "v"]));
        assert_eq!(
            status["properties"]["history"]["items"]["required"],
            json!([
                "digest",
                "firstReconciled",
                "lastReconciled",
                "lastReconciledDuration",
                "lastReconciledStatus",
                "totalReconciliations"
            ])
        );
    }
}
