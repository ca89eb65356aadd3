//! The `Alert` kind: which events are sent through which Provider.
//!
//! ```yaml
//! apiVersion: notification.toolkit.fluxcd.io/v1beta3
//! kind: Alert
//! metadata:
//!   name: on-call
//! spec:
//!   providerRef:
//!     name: slack
//!   eventSeverity: error
//!   eventSources:
//!     - kind: Kustomization
//!       name: '*'
//!   exclusionList:
//!     - "waiting.*socket"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolkit_sdk::api::LocalObjectReference;
use toolkit_sdk::events::EventSeverity;
use toolkit_sdk::runtime::FluxObject;

use super::shared::{is_false, never_observed, without_default};

/// How often an Alert's Provider reference is checked again after a successful check. Ours:
/// Flux v1beta3 Alerts are not reconciled at all.
pub const DEFAULT_ALERT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The kinds an event source may name, as Flux v2.9 lists them.
pub const EVENT_SOURCE_KINDS: [&str; 12] = [
    "Bucket",
    "GitRepository",
    "Kustomization",
    "HelmRelease",
    "HelmChart",
    "HelmRepository",
    "ImageRepository",
    "ImagePolicy",
    "ImageUpdateAutomation",
    "OCIRepository",
    "ArtifactGenerator",
    "ExternalArtifact",
];

/// The metadata key `spec.summary` is sent under.
pub const SUMMARY_METADATA_KEY: &str = "summary";

/// The desired state of an Alert: the events to select and the Provider to send them through.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Alert",
    namespaced,
    status = "AlertStatus",
    doc = "An Alert selects events by the object they are about, their severity and their message, and sends them through a Provider.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct AlertSpec {
    /// The Provider (in the Alert's namespace) notifications are sent through.
    pub provider_ref: LocalObjectReference,

    /// `info` sends every event, `error` only errors.
    #[serde(default)]
    pub event_severity: EventSeverity,

    /// The objects whose events are sent: any source matching the event's object is enough.
    pub event_sources: Vec<CrossNamespaceObjectReference>,

    /// Regular expressions on the message: when set, only messages matching one are sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inclusion_list: Vec<String>,

    /// Metadata added to every event sent; a key the event already has keeps the event's value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub event_metadata: BTreeMap<String, String>,

    /// Regular expressions on the message: a message matching one is not sent (this wins over
    /// `inclusionList`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclusion_list: Vec<String>,

    /// Deprecated: use `eventMetadata.summary`. A short description of the impact, sent as the
    /// `summary` metadata.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 255))]
    pub summary: String,

    /// Stop sending events for this Alert.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// Objects selected by kind, name (or `*`), namespace (or `*`) and labels.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the referent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,

    /// Kind of the referent.
    #[schemars(extend("enum" = EVENT_SOURCE_KINDS))]
    pub kind: String,

    /// Name of the referent; `*` selects every object of the kind.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent (the referrer's when unset); `*` selects every namespace and
    /// requires the name `*`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: String,

    /// Labels the object must have (with name `*`): every pair must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// The observed state of an Alert. Ours: Flux v1beta3 Alerts have no status; this one says
/// whether the Alert can deliver (its Provider exists and is ready, its regexes compile).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct AlertStatus {
    /// The last generation checked to the end (-1 before the first check).
    #[serde(default = "never_observed")]
    #[schemars(transform = without_default)]
    pub observed_generation: i64,

    /// `Ready` (with `Reconciling` and `Stalled` while checking or stuck).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for AlertStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            last_handled_reconcile_at: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(AlertStatus);

impl Alert {
    /// The CRD as committed in `config/crd/bases/` (corrected like every Flux CRD).
    pub fn flux_crd() -> CustomResourceDefinition {
        toolkit_sdk::api::crd::finish(Self::crd())
    }
}

impl FluxObject for Alert {
    type Status = AlertStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        DEFAULT_ALERT_INTERVAL
    }

    fn status(&self) -> Option<&AlertStatus> {
        self.status.as_ref()
    }
}
