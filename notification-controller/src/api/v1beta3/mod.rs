//! `notification.toolkit.fluxcd.io/v1beta3`: Provider and Alert.
//!
//! Field names, defaults, validation and printer columns are those of Flux v2.9. One addition
//! is ours: Flux v1beta3 Providers and Alerts have no status, ours have an optional
//! `status.conditions` (with `observedGeneration` and `lastHandledReconcileAt`) saying whether
//! they can be used: a Provider whose Secret is missing or whose type is not supported, and an
//! Alert whose Provider is missing or not ready, are `Ready=False` with a message naming what
//! is wrong.

mod alert;
mod provider;
mod shared;

pub use alert::{
    Alert, AlertSpec, AlertStatus, CrossNamespaceObjectReference, DEFAULT_ALERT_INTERVAL,
    EVENT_SOURCE_KINDS, SUMMARY_METADATA_KEY,
};
pub use provider::{
    DEFAULT_PROVIDER_INTERVAL, DEFAULT_PROVIDER_TIMEOUT, MAX_FIELD_LENGTH,
    PROVIDER_TIMEOUT_PATTERN, Provider, ProviderSpec, ProviderStatus, ProviderType,
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod crd_tests {
    //! The generated CRDs carry the facts Flux users and tools rely on.

    use serde_json::{Value, json};

    use super::*;

    fn crd_json(kind: &str) -> Value {
        let crd = match kind {
            "Provider" => Provider::flux_crd(),
            "Alert" => Alert::flux_crd(),
            other => panic!("unknown kind {other}"),
        };
        serde_json::to_value(crd).unwrap()
    }

    fn schema(crd: &Value) -> &Value {
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
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
    fn names_versions_and_columns_match_flux() {
        for (kind, name) in [
            ("Provider", "providers.notification.toolkit.fluxcd.io"),
            ("Alert", "alerts.notification.toolkit.fluxcd.io"),
        ] {
            let crd = crd_json(kind);
            assert_eq!(crd["metadata"]["name"], json!(name));
            assert_eq!(crd["spec"]["scope"], json!("Namespaced"));
            assert_eq!(crd["spec"]["names"]["kind"], json!(kind));
            let version = &crd["spec"]["versions"][0];
            assert_eq!(version["name"], json!("v1beta3"));
            assert_eq!(version["storage"], json!(true));
            assert_eq!(version["subresources"], json!({"status": {}}));
            assert_eq!(
                version["additionalPrinterColumns"],
                json!([{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}])
            );
            assert_eq!(count_nullable(&crd), 0, "{kind}");
            assert_eq!(
                schema(&crd)["properties"]["status"]["default"],
                json!({"observedGeneration": -1})
            );
        }
    }

    #[test]
    fn provider_validation_matches_flux() {
        let crd = crd_json("Provider");
        let spec = &schema(&crd)["properties"]["spec"];
        let props = &spec["properties"];
        assert_eq!(spec["required"], json!(["type"]));
        let types: Vec<&str> = props["type"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "slack",
                "discord",
                "msteams",
                "rocket",
                "generic",
                "generic-hmac",
                "github",
                "gitlab",
                "gitea",
                "bitbucketserver",
                "bitbucket",
                "azuredevops",
                "googlechat",
                "googlepubsub",
                "webex",
                "sentry",
                "azureeventhub",
                "telegram",
                "lark",
                "matrix",
                "opsgenie",
                "alertmanager",
                "grafana",
                "githubdispatch",
                "githubpullrequestcomment",
                "pagerduty",
                "datadog",
                "nats",
                "zulip",
                "otel"
            ]
        );
        for field in ["address", "channel", "username", "proxy"] {
            assert_eq!(props[field]["maxLength"], json!(2048), "{field}");
        }
        assert_eq!(props["proxy"]["pattern"], json!("^(http|https)://.*$"));
        assert_eq!(props["timeout"]["pattern"], json!(PROVIDER_TIMEOUT_PATTERN));
        assert_eq!(
            props["interval"]["pattern"],
            json!(toolkit_sdk::api::INTERVAL_PATTERN)
        );
        assert_eq!(props["secretRef"]["required"], json!(["name"]));
        assert_eq!(props["suspend"]["type"], json!("boolean"));
        assert_eq!(props["suspend"].get("default"), None);
        let rules = spec["x-kubernetes-validations"].as_array().unwrap();
        assert_eq!(rules.len(), 1);
        assert!(
            rules[0]["rule"]
                .as_str()
                .unwrap()
                .ends_with("|| !has(self.commitStatusExpr)")
        );
    }

    #[test]
    fn alert_validation_matches_flux() {
        let crd = crd_json("Alert");
        let spec = &schema(&crd)["properties"]["spec"];
        let props = &spec["properties"];
        assert_eq!(spec["required"], json!(["eventSources", "providerRef"]));
        assert_eq!(props["eventSeverity"]["enum"], json!(["info", "error"]));
        assert_eq!(props["eventSeverity"]["default"], json!("info"));
        assert_eq!(props["summary"]["maxLength"], json!(255));
        assert_eq!(
            props["eventMetadata"]["additionalProperties"]["type"],
            json!("string")
        );
        let source = &props["eventSources"]["items"];
        assert_eq!(source["required"], json!(["kind", "name"]));
        assert_eq!(
            source["properties"]["kind"]["enum"],
            json!(EVENT_SOURCE_KINDS)
        );
        for field in ["name", "namespace"] {
            assert_eq!(source["properties"][field]["minLength"], json!(1));
            assert_eq!(source["properties"][field]["maxLength"], json!(253));
        }
        assert_eq!(
            source["properties"]["matchLabels"]["additionalProperties"]["type"],
            json!("string")
        );
    }
}
