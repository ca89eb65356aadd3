//! The `Provider` kind: where and how notifications are sent.
//!
//! ```yaml
//! apiVersion: notification.toolkit.fluxcd.io/v1beta3
//! kind: Provider
//! metadata:
//!   name: slack
//! spec:
//!   type: slack
//!   channel: general
//!   secretRef:
//!     name: slack-webhook   # key `address` holds the webhook URL
//! ```

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolkit_sdk::api::{GoDuration, LocalObjectReference};
use toolkit_sdk::runtime::FluxObject;

use super::shared::{is_false, never_observed, without_default};

/// How long one delivery to a Provider may take when `spec.timeout` is not set (Flux's default).
pub const DEFAULT_PROVIDER_TIMEOUT: Duration = Duration::from_secs(15);

/// How often a Provider's references are checked again after a successful check, when
/// `spec.interval` is not set. Ours: Flux v1beta3 Providers are not reconciled at all.
pub const DEFAULT_PROVIDER_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The longest `address`, `channel`, `username` and `proxy` Flux accepts.
pub const MAX_FIELD_LENGTH: u32 = 2048;

/// The validation pattern of `spec.timeout`: a Go duration in `ms`, `s` and `m`.
pub const PROVIDER_TIMEOUT_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$";

/// The desired state of a Provider: the type of service, its address and credentials.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1beta3",
    kind = "Provider",
    namespaced,
    status = "ProviderStatus",
    doc = "A Provider is a service notifications are sent to (a chat, an incident tool, a Git host's commit statuses, a webhook), with its address and credentials.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.type == 'github' || self.type == 'gitlab' || self.type == 'gitea' || self.type == 'bitbucketserver' || self.type == 'bitbucket' || self.type == 'azuredevops' || !has(self.commitStatusExpr)",
    "message": "spec.commitStatusExpr is only supported for the 'github', 'gitlab', 'gitea', 'bitbucketserver', 'bitbucket', 'azuredevops' provider types"
}]))]
pub struct ProviderSpec {
    /// The kind of service: `slack`, `msteams`, `generic`, `github`, ...
    #[serde(rename = "type")]
    pub type_: ProviderType,

    /// Deprecated and unused by Flux v1beta3; here, how often the references of the Provider
    /// are checked again (10m when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<GoDuration>,

    /// The channel (or room, topic, ...) notifications are posted to.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048))]
    pub channel: String,

    /// The name notifications are posted under.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048))]
    pub username: String,

    /// Where notifications go: a webhook URL for most types, an API base URL or a project for
    /// others. The `address` key of the `secretRef` Secret takes precedence.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048))]
    pub address: String,

    /// Time limit of one delivery; 15s when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"))]
    pub timeout: Option<GoDuration>,

    /// Deprecated: use `proxySecretRef`. The HTTP/S address of a proxy.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    #[schemars(length(max = 2048), pattern(r"^(http|https)://.*$"))]
    pub proxy: String,

    /// Secret with the proxy: key `address` (an HTTP/S URL), optional `username` and
    /// `password`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Secret with the credentials: keys `address`, `token`, `username`, `password`,
    /// `headers` (a YAML map of HTTP headers), depending on the type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// ServiceAccount whose workload identity authenticates to a cloud service
    /// (`azureeventhub`, `azuredevops`, `googlepubsub`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub service_account_name: String,

    /// Secret with TLS material: `ca.crt` to trust a server, `tls.crt` and `tls.key` for a
    /// client certificate (the keys `caFile`, `certFile`, `keyFile` are read too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// Stop sending notifications through this Provider.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,

    /// CEL expression giving the commit status name, for the Git commit status types.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub commit_status_expr: String,
}

/// The kinds of service a Provider can send to (`spec.type`), as Flux v2.9 lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ProviderType {
    /// Slack, by incoming webhook or bot token.
    #[serde(rename = "slack")]
    Slack,
    /// Discord webhook.
    #[serde(rename = "discord")]
    Discord,
    /// Microsoft Teams webhook.
    #[serde(rename = "msteams")]
    MsTeams,
    /// Rocket.Chat webhook.
    #[serde(rename = "rocket")]
    Rocket,
    /// The Flux event as JSON, POSTed to `address`.
    #[serde(rename = "generic")]
    Generic,
    /// As `generic`, signed with HMAC (`X-Signature`).
    #[serde(rename = "generic-hmac")]
    GenericHmac,
    /// GitHub commit status.
    #[serde(rename = "github")]
    GitHub,
    /// GitLab commit status.
    #[serde(rename = "gitlab")]
    GitLab,
    /// Gitea commit status.
    #[serde(rename = "gitea")]
    Gitea,
    /// Bitbucket Server / Data Center build status.
    #[serde(rename = "bitbucketserver")]
    BitbucketServer,
    /// Bitbucket Cloud build status.
    #[serde(rename = "bitbucket")]
    Bitbucket,
    /// Azure DevOps commit status.
    #[serde(rename = "azuredevops")]
    AzureDevOps,
    /// Google Chat webhook.
    #[serde(rename = "googlechat")]
    GoogleChat,
    /// Google Cloud Pub/Sub topic.
    #[serde(rename = "googlepubsub")]
    GooglePubSub,
    /// Webex room.
    #[serde(rename = "webex")]
    Webex,
    /// Sentry.
    #[serde(rename = "sentry")]
    Sentry,
    /// Azure Event Hub.
    #[serde(rename = "azureeventhub")]
    AzureEventHub,
    /// Telegram chat.
    #[serde(rename = "telegram")]
    Telegram,
    /// Lark webhook.
    #[serde(rename = "lark")]
    Lark,
    /// Matrix room.
    #[serde(rename = "matrix")]
    Matrix,
    /// Opsgenie alerts.
    #[serde(rename = "opsgenie")]
    Opsgenie,
    /// Prometheus Alertmanager.
    #[serde(rename = "alertmanager")]
    Alertmanager,
    /// Grafana annotations.
    #[serde(rename = "grafana")]
    Grafana,
    /// GitHub repository dispatch.
    #[serde(rename = "githubdispatch")]
    GitHubDispatch,
    /// GitHub pull request comments.
    #[serde(rename = "githubpullrequestcomment")]
    GitHubPullRequestComment,
    /// PagerDuty events.
    #[serde(rename = "pagerduty")]
    PagerDuty,
    /// Datadog events.
    #[serde(rename = "datadog")]
    Datadog,
    /// NATS subject.
    #[serde(rename = "nats")]
    Nats,
    /// Zulip stream.
    #[serde(rename = "zulip")]
    Zulip,
    /// OpenTelemetry traces.
    #[serde(rename = "otel")]
    Otel,
}

impl ProviderType {
    /// The `spec.type` spelling, e.g. `generic-hmac`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::MsTeams => "msteams",
            Self::Rocket => "rocket",
            Self::Generic => "generic",
            Self::GenericHmac => "generic-hmac",
            Self::GitHub => "github",
            Self::GitLab => "gitlab",
            Self::Gitea => "gitea",
            Self::BitbucketServer => "bitbucketserver",
            Self::Bitbucket => "bitbucket",
            Self::AzureDevOps => "azuredevops",
            Self::GoogleChat => "googlechat",
            Self::GooglePubSub => "googlepubsub",
            Self::Webex => "webex",
            Self::Sentry => "sentry",
            Self::AzureEventHub => "azureeventhub",
            Self::Telegram => "telegram",
            Self::Lark => "lark",
            Self::Matrix => "matrix",
            Self::Opsgenie => "opsgenie",
            Self::Alertmanager => "alertmanager",
            Self::Grafana => "grafana",
            Self::GitHubDispatch => "githubdispatch",
            Self::GitHubPullRequestComment => "githubpullrequestcomment",
            Self::PagerDuty => "pagerduty",
            Self::Datadog => "datadog",
            Self::Nats => "nats",
            Self::Zulip => "zulip",
            Self::Otel => "otel",
        }
    }

    /// Whether the type sets commit statuses on a Git host (and so only takes events that
    /// carry a commit revision, and may read `ca.crt` from `secretRef`).
    pub fn is_commit_status(self) -> bool {
        matches!(
            self,
            Self::GitHub
                | Self::GitLab
                | Self::Gitea
                | Self::BitbucketServer
                | Self::Bitbucket
                | Self::AzureDevOps
        )
    }
}

impl std::fmt::Display for ProviderType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The observed state of a Provider. Ours: Flux v1beta3 Providers have no status; this one says
/// whether the Provider can be used (its Secrets exist and its type is supported).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct ProviderStatus {
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

impl Default for ProviderStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            last_handled_reconcile_at: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(ProviderStatus);

impl ProviderSpec {
    /// The time limit of one delivery: `spec.timeout`, or 15s.
    pub fn timeout(&self) -> Duration {
        self.timeout
            .as_ref()
            .map_or(DEFAULT_PROVIDER_TIMEOUT, GoDuration::as_duration)
    }
}

impl Provider {
    /// The CRD as committed in `config/crd/bases/` (corrected like every Flux CRD).
    pub fn flux_crd() -> CustomResourceDefinition {
        toolkit_sdk::api::crd::finish(Self::crd())
    }
}

impl FluxObject for Provider {
    type Status = ProviderStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        self.spec
            .interval
            .as_ref()
            .map_or(DEFAULT_PROVIDER_INTERVAL, GoDuration::as_duration)
    }

    fn status(&self) -> Option<&ProviderStatus> {
        self.status.as_ref()
    }
}
