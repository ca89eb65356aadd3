//! The `Greeting` kind (`example.ferroflux.dev/v1`): a message that becomes a ConfigMap.
//!
//! ```yaml
//! apiVersion: example.ferroflux.dev/v1
//! kind: Greeting
//! metadata:
//!   name: hello
//! spec:
//!   message: Hello, world
//!   interval: 10m            # default
//!   dependsOn: team-settings # optional: wait until this ConfigMap exists
//! ```

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolkit_sdk::api::{GoDuration, LocalObjectReference};
use toolkit_sdk::runtime::FluxObject;

/// The desired greeting.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "example.ferroflux.dev",
    version = "v1",
    kind = "Greeting",
    namespaced,
    status = "GreetingStatus",
    shortname = "greet",
    doc = "A Greeting is a message that the greeter controller writes to a ConfigMap.",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct GreetingSpec {
    /// The message written to the ConfigMap's `data.message`. Must not be empty.
    pub message: String,

    /// How often the ConfigMap is brought back to the desired state.
    #[serde(default = "default_interval")]
    pub interval: GoDuration,

    /// How long to wait after a failed attempt; defaults to exponential backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<GoDuration>,

    /// Stop reconciling this Greeting (the ConfigMap is left as it is).
    #[serde(default)]
    pub suspend: bool,

    /// The name of the ConfigMap to write; defaults to `<name>-greeting`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_name: Option<String>,

    /// The name of a ConfigMap in the same namespace that must exist before the greeting is
    /// written (reason `DependencyNotReady` while it does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depends_on: Option<String>,
}

fn default_interval() -> GoDuration {
    GoDuration::from_mins(10)
}

/// The observed state of a Greeting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GreetingStatus {
    /// The last generation that was reconciled to the end (successfully or stalled).
    #[serde(default = "never_observed")]
    pub observed_generation: i64,

    /// `Ready`, `Reconciling` and `Stalled`, following kstatus.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,

    /// The ConfigMap that holds the greeting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<LocalObjectReference>,
}

fn never_observed() -> i64 {
    -1
}

impl Default for GreetingStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            last_handled_reconcile_at: None,
            config_map_ref: None,
        }
    }
}

impl Greeting {
    /// The name of the ConfigMap this Greeting writes.
    pub fn config_map_name(&self) -> String {
        match &self.spec.config_map_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => format!(
                "{}-greeting",
                self.metadata.name.as_deref().unwrap_or_default()
            ),
        }
    }
}

impl FluxObject for Greeting {
    type Status = GreetingStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        self.spec.interval.as_duration()
    }

    fn retry_interval(&self) -> Option<Duration> {
        self.spec
            .retry_interval
            .as_ref()
            .map(GoDuration::as_duration)
    }

    fn status(&self) -> Option<&GreetingStatus> {
        self.status.as_ref()
    }
}

toolkit_sdk::impl_flux_status!(GreetingStatus);
