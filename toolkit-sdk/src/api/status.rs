//! Status fields shared by every kind.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The last `reconcile.fluxcd.io/requestedAt` value a controller acted on.
///
/// Embed it in a status struct with `#[serde(flatten)]` so that the field appears as
/// `status.lastHandledReconcileAt`, as in Flux. Tools such as `flux reconcile` set the
/// annotation and wait for this field to take the same value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileRequestStatus {
    /// The value of the most recent reconcile request annotation the controller handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ReconcileRequestStatus {
    /// Record that the request carried by `meta` (if any) has been handled.
    ///
    /// Returns whether the value changed.
    pub fn handle(
        &mut self,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    ) -> bool {
        match super::meta::requested_at(meta) {
            Some(v) if self.last_handled_reconcile_at.as_deref() != Some(v) => {
                self.last_handled_reconcile_at = Some(v.to_owned());
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
    #[serde(rename_all = "camelCase")]
    struct DemoStatus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        observed_generation: Option<i64>,
        #[serde(flatten)]
        request: ReconcileRequestStatus,
    }

    #[test]
    fn flattens_into_a_status() {
        let status = DemoStatus {
            observed_generation: Some(3),
            request: ReconcileRequestStatus {
                last_handled_reconcile_at: Some("2026-01-02T03:04:05Z".into()),
            },
        };
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(
            v,
            json!({"observedGeneration": 3, "lastHandledReconcileAt": "2026-01-02T03:04:05Z"})
        );
        let back: DemoStatus = serde_json::from_value(v).unwrap();
        assert_eq!(back, status);

        let empty = DemoStatus {
            observed_generation: None,
            request: ReconcileRequestStatus::default(),
        };
        assert_eq!(serde_json::to_value(&empty).unwrap(), json!({}));
    }

    #[test]
    fn flattened_schema_has_the_field() {
        let schema = serde_json::to_value(schemars::schema_for!(DemoStatus)).unwrap();
        assert_eq!(
            schema["properties"]["lastHandledReconcileAt"]["type"],
            json!(["string", "null"])
        );
    }

    #[test]
    fn handle_copies_the_request_annotation() {
        let mut status = ReconcileRequestStatus::default();
        let mut meta = ObjectMeta::default();
        assert!(!status.handle(&meta));
        assert_eq!(status.last_handled_reconcile_at, None);

        meta.annotations = Some(
            [(
                super::super::meta::RECONCILE_REQUEST_ANNOTATION.to_owned(),
                "now".to_owned(),
            )]
            .into(),
        );
        assert!(status.handle(&meta));
        assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("now"));
        assert!(!status.handle(&meta), "same token handled twice");
    }
}
