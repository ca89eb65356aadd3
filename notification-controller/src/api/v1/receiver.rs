//! The `Receiver` kind: an incoming webhook that asks for immediate reconciles.
//!
//! ```yaml
//! apiVersion: notification.toolkit.fluxcd.io/v1
//! kind: Receiver
//! metadata:
//!   name: github-push
//!   namespace: flux-system
//! spec:
//!   type: github
//!   events: ["ping", "push"]
//!   secretRef:
//!     name: webhook-token
//!   resources:
//!     - kind: GitRepository
//!       name: flux-system
//! ```
//!
//! The controller publishes the webhook's address in `status.webhookPath`:
//! `/hook/` followed by the hex SHA-256 of the token, the name and the namespace (see
//! [`webhook_path`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::{JsonSchema, Schema};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use toolkit_sdk::api::{GoDuration, LocalObjectReference};
use toolkit_sdk::runtime::FluxObject;

/// The prefix of every webhook path.
pub const WEBHOOK_PATH_PREFIX: &str = "/hook/";

/// The reconcile interval of a Receiver when `spec.interval` is unset (Flux's `10m`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The key of the Receiver's Secret that holds the token.
pub const TOKEN_KEY: &str = "token";

/// `Ready=False` reason: the Secret or its `token` key is missing (Flux's `TokenNotFound`).
pub const TOKEN_NOT_FOUND_REASON: &str = "TokenNotFound";

/// The desired state of a Receiver: who sends the webhook, how it is authenticated, and which
/// objects it asks to reconcile.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    namespaced,
    status = "ReceiverStatus",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    doc = "A Receiver turns webhooks from Git hosts, registries and CI systems into immediate reconciles of the objects it names.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverSpec {
    /// Who sends the webhook; decides how a request is authenticated and its payload read.
    #[serde(rename = "type")]
    pub type_: ReceiverType,

    /// How often the Receiver is reconciled with its Secret; `10m` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "10m"))]
    pub interval: Option<GoDuration>,

    /// The event types to act on (such as `push` for GitHub or `Push Hook` for GitLab),
    /// compared without regard to case; every event when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<String>,

    /// The objects to reconcile when a webhook is accepted.
    pub resources: Vec<CrossNamespaceObjectReference>,

    /// CEL expression evaluated for each target object (`res`, its metadata) and the request
    /// body (`req`, when it is JSON); the object is annotated only when it returns `true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,

    /// Secret in the Receiver's namespace whose `token` key authenticates the webhook (and is
    /// part of its path).
    pub secret_ref: LocalObjectReference,

    /// Stop handling webhooks for this Receiver (they are answered 503).
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// Who sends the webhooks of a Receiver (`spec.type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ReceiverType {
    /// No authentication beyond the secret path.
    #[serde(rename = "generic")]
    Generic,
    /// An HMAC of the body with the token in `X-Signature` (`sha1=`, `sha256=` or `sha512=`).
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// GitHub (and Gitea): HMAC in `X-Hub-Signature-256` or `X-Hub-Signature`, event in
    /// `X-GitHub-Event`.
    #[serde(rename = "github")]
    GitHub,
    /// GitLab: the token in `X-Gitlab-Token`, event in `X-Gitlab-Event`.
    #[serde(rename = "gitlab")]
    GitLab,
    /// Bitbucket Server: HMAC in `X-Hub-Signature`, event in `X-Event-Key`.
    #[serde(rename = "bitbucket")]
    Bitbucket,
    /// Harbor: the token as the `Authorization` header.
    #[serde(rename = "harbor")]
    Harbor,
    /// Docker Hub: a push payload, no signature.
    #[serde(rename = "dockerhub")]
    DockerHub,
    /// Quay: a push payload, no signature.
    #[serde(rename = "quay")]
    Quay,
    /// Google Container/Artifact Registry through Pub/Sub push: a Google-signed OIDC token.
    #[serde(rename = "gcr")]
    Gcr,
    /// Sonatype Nexus: HMAC-SHA1 of the body in `X-Nexus-Webhook-Signature`.
    #[serde(rename = "nexus")]
    Nexus,
    /// Azure Container Registry: a push payload, no signature.
    #[serde(rename = "acr")]
    Acr,
    /// A CDEvent; its type in the `Ce-Type` header.
    #[serde(rename = "cdevents")]
    CdEvents,
}

impl ReceiverType {
    /// The spelling in `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiverType::Generic => "generic",
            ReceiverType::GenericHmac => "generic-hmac",
            ReceiverType::GitHub => "github",
            ReceiverType::GitLab => "gitlab",
            ReceiverType::Bitbucket => "bitbucket",
            ReceiverType::Harbor => "harbor",
            ReceiverType::DockerHub => "dockerhub",
            ReceiverType::Quay => "quay",
            ReceiverType::Gcr => "gcr",
            ReceiverType::Nexus => "nexus",
            ReceiverType::Acr => "acr",
            ReceiverType::CdEvents => "cdevents",
        }
    }
}

impl fmt::Display for ReceiverType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kinds a Receiver may target (Flux's list).
pub const TARGET_KINDS: [&str; 12] = [
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

/// An object (or, with name `*`, the objects matching `matchLabels`) a Receiver reconciles.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceObjectReference {
    /// API version of the referent; the Flux version of `kind` when unset (see
    /// [`CrossNamespaceObjectReference::api_version_or_default`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent.
    #[schemars(transform = kind_enum)]
    pub kind: String,

    /// Name of the referent, or `*` for every object of the kind matching `matchLabels`.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent; the Receiver's namespace when unset. `*` (with name `*`)
    /// means every namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,

    /// Labels the referents must all carry; requires name `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
}

/// Restricts `kind` to [`TARGET_KINDS`].
fn kind_enum(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.insert("enum".into(), TARGET_KINDS.into());
    }
}

impl CrossNamespaceObjectReference {
    /// `apiVersion`, or the Flux v2.9 API version of `kind` when unset; `None` for a kind this
    /// controller does not know without an `apiVersion`.
    pub fn api_version_or_default(&self) -> Option<&str> {
        match self.api_version.as_deref().filter(|v| !v.is_empty()) {
            Some(v) => Some(v),
            None => default_api_version(&self.kind),
        }
    }

    /// The namespace of the referent, given the Receiver's namespace.
    pub fn namespace_or<'a>(&'a self, receiver_namespace: &'a str) -> &'a str {
        self.namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(receiver_namespace)
    }
}

/// The Flux v2.9 API version of a kind a Receiver may target.
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "Bucket" | "GitRepository" | "HelmChart" | "HelmRepository" | "OCIRepository"
        | "ExternalArtifact" => "source.toolkit.fluxcd.io/v1",
        "Kustomization" => "kustomize.toolkit.fluxcd.io/v1",
        "HelmRelease" => "helm.toolkit.fluxcd.io/v2",
        "ImageRepository" | "ImagePolicy" | "ImageUpdateAutomation" => "image.toolkit.fluxcd.io/v1",
        "ArtifactGenerator" => "source.extensions.fluxcd.io/v1beta1",
        _ => return None,
    })
}

/// The observed state of a Receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ReceiverStatus {
    /// The last generation reconciled (-1 before the first one).
    #[serde(default = "never_observed")]
    #[schemars(transform = without_default)]
    pub observed_generation: i64,

    /// `Ready`, `Reconciling` and `Stalled`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The path the webhook is served on: `/hook/` + hex(sha256(token + name + namespace)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,

    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for ReceiverStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            webhook_path: None,
            last_handled_reconcile_at: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(ReceiverStatus);

/// The value of `status.observedGeneration` before the first reconcile finished.
fn never_observed() -> i64 {
    -1
}

/// Whether a boolean flag is unset: left out of the JSON, as Go's `omitempty` does.
fn is_false(value: &bool) -> bool {
    !*value
}

/// Removes the `default` schemars derives from a serde default (the default is on `status`).
fn without_default(schema: &mut Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
    }
}

/// The webhook path of the Receiver `name` in `namespace` for `token`:
/// `/hook/` + hex(sha256(token + name + namespace)), as Flux computes it.
pub fn webhook_path(token: &[u8], name: &str, namespace: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(token);
    hasher.update(name.as_bytes());
    hasher.update(namespace.as_bytes());
    format!("{WEBHOOK_PATH_PREFIX}{}", hex::encode(hasher.finalize()))
}

impl ReceiverSpec {
    /// The reconcile interval: `spec.interval`, or 10 minutes.
    pub fn interval(&self) -> Duration {
        self.interval.map_or(DEFAULT_INTERVAL, |i| i.as_duration())
    }

    /// The CEL resource filter, if one is set and not blank.
    pub fn resource_filter(&self) -> Option<&str> {
        self.resource_filter
            .as_deref()
            .filter(|f| !f.trim().is_empty())
    }

    /// Whether `event` passes `spec.events`: every event when the list is empty, else an
    /// entry equal to it without regard to case.
    pub fn accepts_event(&self, event: &str) -> bool {
        self.events.is_empty() || self.events.iter().any(|e| e.eq_ignore_ascii_case(event))
    }
}

impl Receiver {
    /// The CustomResourceDefinition as committed in `config/crd/bases/`, aligned with Flux's.
    pub fn flux_crd() -> CustomResourceDefinition {
        toolkit_sdk::api::crd::finish(Self::crd())
    }

    /// `status.webhookPath`, if the controller has published one.
    pub fn webhook_path(&self) -> Option<&str> {
        self.status
            .as_ref()?
            .webhook_path
            .as_deref()
            .filter(|p| !p.is_empty())
    }
}

impl FluxObject for Receiver {
    type Status = ReceiverStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        self.spec.interval()
    }

    fn status(&self) -> Option<&ReceiverStatus> {
        self.status.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn webhook_path_is_flux_digest() {
        // sha256("tokenreceiverflux-system"), computed independently with sha256sum.
        assert_eq!(
            webhook_path(b"token", "receiver", "flux-system"),
            "/hook/82c055fa0743ee447b0870be16fa51a43bb6604b21ef8fae7ccf02bdc860b0f9"
        );
        assert_ne!(
            webhook_path(b"token", "receiver", "flux-system"),
            webhook_path(b"token", "receiver", "other")
        );
    }

    #[test]
    fn spec_round_trips_with_flux_field_names() {
        let value = json!({
            "type": "generic-hmac",
            "interval": "5m0s",
            "events": ["push"],
            "resources": [
                {"kind": "GitRepository", "name": "app"},
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                 "name": "*", "namespace": "apps", "matchLabels": {"team": "a"}}
            ],
            "resourceFilter": "res.metadata.name == 'app'",
            "secretRef": {"name": "token"},
            "suspend": true
        });
        let spec: ReceiverSpec = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(spec.type_, ReceiverType::GenericHmac);
        assert_eq!(spec.interval(), Duration::from_secs(300));
        assert_eq!(serde_json::to_value(&spec).unwrap(), value);
    }

    #[test]
    fn defaults() {
        let spec: ReceiverSpec = serde_json::from_value(json!({
            "type": "github", "resources": [], "secretRef": {"name": "t"}
        }))
        .unwrap();
        assert_eq!(spec.interval(), DEFAULT_INTERVAL);
        assert!(spec.accepts_event("anything"));
        assert_eq!(spec.resource_filter(), None);
        let status: ReceiverStatus = serde_json::from_value(json!({})).unwrap();
        assert_eq!(status.observed_generation, -1);
    }

    #[test]
    fn events_are_compared_without_case() {
        let spec = ReceiverSpec {
            type_: ReceiverType::GitLab,
            interval: None,
            events: vec!["Push Hook".into()],
            resources: vec![],
            resource_filter: None,
            secret_ref: LocalObjectReference { name: "t".into() },
            suspend: false,
        };
        assert!(spec.accepts_event("push hook"));
        assert!(!spec.accepts_event("Tag Push Hook"));
    }

    #[test]
    fn every_type_round_trips() {
        for name in [
            "generic",
            "generic-hmac",
            "github",
            "gitlab",
            "bitbucket",
            "harbor",
            "dockerhub",
            "quay",
            "gcr",
            "nexus",
            "acr",
            "cdevents",
        ] {
            let t: ReceiverType = serde_json::from_value(json!(name)).unwrap();
            assert_eq!(t.as_str(), name);
            assert_eq!(serde_json::to_value(t).unwrap(), json!(name));
        }
        assert!(serde_json::from_value::<ReceiverType>(json!("gitea")).is_err());
    }

    #[test]
    fn api_versions_default_by_kind() {
        let r = |kind: &str, api: Option<&str>| CrossNamespaceObjectReference {
            api_version: api.map(Into::into),
            kind: kind.into(),
            name: "x".into(),
            ..Default::default()
        };
        assert_eq!(
            r("GitRepository", None).api_version_or_default(),
            Some("source.toolkit.fluxcd.io/v1")
        );
        assert_eq!(
            r("HelmRelease", None).api_version_or_default(),
            Some("helm.toolkit.fluxcd.io/v2")
        );
        assert_eq!(
            r("GitRepository", Some("source.toolkit.fluxcd.io/v1beta2")).api_version_or_default(),
            Some("source.toolkit.fluxcd.io/v1beta2")
        );
        assert_eq!(r("Widget", None).api_version_or_default(), None);
        for kind in TARGET_KINDS {
            assert!(default_api_version(kind).is_some(), "{kind}");
        }
    }

    #[test]
    fn crd_matches_flux_shape() {
        let crd = serde_json::to_value(Receiver::flux_crd()).unwrap();
        assert_eq!(
            crd["metadata"]["name"],
            "receivers.notification.toolkit.fluxcd.io"
        );
        let version = &crd["spec"]["versions"][0];
        assert_eq!(version["name"], "v1");
        let columns: Vec<&str> = version["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(columns, ["Age", "Ready", "Status"]);
        let schema = &version["schema"]["openAPIV3Schema"]["properties"];
        let spec = &schema["spec"];
        assert_eq!(spec["required"], json!(["resources", "secretRef", "type"]));
        assert_eq!(spec["properties"]["interval"]["default"], "10m");
        assert_eq!(
            spec["properties"]["type"]["enum"].as_array().unwrap().len(),
            12
        );
        let kind = &spec["properties"]["resources"]["items"]["properties"]["kind"];
        assert_eq!(kind["enum"].as_array().unwrap().len(), TARGET_KINDS.len());
        assert_eq!(
            schema["status"]["default"],
            json!({"observedGeneration": -1})
        );
        assert!(
            schema["status"]["properties"]["observedGeneration"]
                .get("default")
                .is_none()
        );
    }
}
