//! Events about reconciled objects: Kubernetes Events, and Flux event payloads POSTed to
//! notification-controller.
//!
//! An [`EventRecorder`] belongs to one controller. [`EventRecorder::publish`] never blocks and
//! never fails: it queues the event and returns. A background task then
//!
//! 1. records a core/v1 Kubernetes Event on the involved object (type `Normal` for
//!    [`EventSeverity::Info`], `Warning` for [`EventSeverity::Error`]; the metadata goes into
//!    the Event's annotations, like Flux; a repeat of the same event increments `count` on the
//!    existing Event instead of creating another);
//! 2. when an events address is configured (`--events-addr`), POSTs the Flux event payload as
//!    JSON to it:
//!
//! ```json
//! {
//!   "involvedObject": {"kind": "Kustomization", "namespace": "apps", "name": "webapp",
//!                      "uid": "7d0cdc51-...", "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
//!                      "resourceVersion": "1234"},
//!   "severity": "info",
//!   "timestamp": "2025-01-02T03:04:05Z",
//!   "message": "Applied revision: main@sha1:0123abcd",
//!   "reason": "ReconciliationSucceeded",
//!   "metadata": {"kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123abcd"},
//!   "reportingController": "kustomize-controller",
//!   "reportingInstance": "kustomize-controller-7f9c-x2x4k"
//! }
//! ```
//!
//! # Guarantees
//!
//! - Metadata keys are given unprefixed (`revision`) and sent prefixed with the API group of
//!   the involved object (`kustomize.toolkit.fluxcd.io/revision`). A key that already holds a
//!   `/` is sent as given; objects of the core group (`apiVersion: v1`) get no prefix.
//! - Delivery to the events address is retried with exponential backoff on connection errors,
//!   timeouts and `5xx` answers ([`RetryPolicy`]); never on `429` (notification-controller's
//!   answer to a duplicate it rate-limits) nor on other `4xx` answers.
//! - Failures are logged, never returned: events are best-effort, like Kubernetes Events.
//! - At most [`EventRecorderOptions::max_in_flight`] deliveries run at once and at most
//!   [`EventRecorderOptions::queue_capacity`] events wait; past that, new events are dropped
//!   with a warning rather than slowing reconciles down.
//!
//! # Caveats
//!
//! [`EventRecorder::new`] spawns its task, so it must be called inside a Tokio runtime. Call
//! [`EventRecorder::flush`] before the process exits so queued events are not lost.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;

pub use crate::error::EventSeverity;

/// The Flux event payload, as POSTed to the events address.
///
/// Field names and optionality follow Flux's `event.toolkit.fluxcd.io` `Event`: when
/// deserializing, `metadata` and `reportingInstance` may be missing, every other field is
/// required.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FluxEvent {
    /// The object the event is about.
    pub involved_object: ObjectReference,
    /// `info` or `error`.
    pub severity: EventSeverity,
    /// When the event was recorded, RFC 3339 in UTC with second precision.
    pub timestamp: String,
    /// What happened, for people.
    pub message: String,
    /// Why, for machines (`ReconciliationSucceeded`, `ArtifactFailed`, ...).
    pub reason: String,
    /// Extra data, keys prefixed with the object's API group.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The controller that emitted the event, e.g. `source-controller`.
    pub reporting_controller: String,
    /// The replica that emitted it (its hostname, i.e. the pod name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reporting_instance: String,
}

/// How deliveries to the events address are retried.
///
/// The defaults match Flux's HTTP client: up to 4 retries, waiting 1s, 2s, 4s, 8s (doubling,
/// capped at 30s), each attempt limited to 5s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The wait before the first retry; it doubles for each further retry.
    pub min_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
    /// The time limit of one attempt (connect, send, and read the status).
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 4,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based).
    fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry);
        self.min_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// Settings of an [`EventRecorder`]; [`EventRecorderOptions::new`] fills in the defaults.
#[derive(Clone, Debug)]
pub struct EventRecorderOptions {
    /// The controller name, e.g. `source-controller` (`reportingController`, and the Event's
    /// `source.component`).
    pub reporting_controller: String,
    /// The replica's name (`reportingInstance`); defaults to the hostname, i.e. the pod name.
    pub reporting_instance: String,
    /// Where Flux event payloads are POSTed (`--events-addr`); `None` records Kubernetes
    /// Events only.
    pub events_addr: Option<reqwest::Url>,
    /// How deliveries to `events_addr` are retried.
    pub retry: RetryPolicy,
    /// Events waiting to be recorded before new ones are dropped (default 1024).
    pub queue_capacity: usize,
    /// Deliveries to `events_addr` running at once (default 16).
    pub max_in_flight: usize,
}

impl EventRecorderOptions {
    /// Defaults for `reporting_controller` with the hostname as instance and no events address.
    pub fn new(reporting_controller: impl Into<String>) -> Self {
        let reporting_controller = reporting_controller.into();
        Self {
            reporting_instance: hostname().unwrap_or_else(|| reporting_controller.clone()),
            reporting_controller,
            events_addr: None,
            retry: RetryPolicy::default(),
            queue_capacity: 1024,
            max_in_flight: 16,
        }
    }
}

/// The hostname (the pod name in a pod), from `$HOSTNAME` or the kernel.
fn hostname() -> Option<String> {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
}

enum Message {
    Publish(Box<Pending>),
    Flush(oneshot::Sender<()>),
}

struct Pending {
    object: ObjectReference,
    severity: EventSeverity,
    reason: String,
    message: String,
    metadata: BTreeMap<String, String>,
    time: jiff::Timestamp,
}

/// Records events for one controller; see the [module docs](self). Cheap to clone; clones
/// share one queue.
#[derive(Clone, Debug)]
pub struct EventRecorder {
    tx: mpsc::Sender<Message>,
    reporting_controller: String,
    reporting_instance: String,
}

impl EventRecorder {
    /// A recorder for `reporting_controller` that records Kubernetes Events through `client`
    /// and, when `events_addr` is set, POSTs payloads there. Spawns the delivery task.
    pub fn new(
        client: kube::Client,
        reporting_controller: impl Into<String>,
        events_addr: Option<reqwest::Url>,
    ) -> Self {
        let mut options = EventRecorderOptions::new(reporting_controller);
        options.events_addr = events_addr;
        Self::with_options(Some(client), options)
    }

    /// A recorder with explicit options. Without a `client`, no Kubernetes Events are
    /// recorded (useful in tests and tools that only forward payloads).
    pub fn with_options(client: Option<kube::Client>, options: EventRecorderOptions) -> Self {
        let (tx, rx) = mpsc::channel(options.queue_capacity.max(1));
        let recorder = Self {
            tx,
            reporting_controller: options.reporting_controller.clone(),
            reporting_instance: options.reporting_instance.clone(),
        };
        let http = match options.events_addr {
            Some(_) => match crate::tls::http_client_builder()
                .timeout(options.retry.timeout)
                .build()
            {
                Ok(http) => Some(http),
                Err(err) => {
                    tracing::error!(
                        error = &err as &dyn std::error::Error,
                        "cannot build the HTTP client for --events-addr; events will not be forwarded"
                    );
                    None
                }
            },
            None => None,
        };
        let worker = Worker {
            client,
            http,
            options,
            kube_events: EventCache::default(),
            deliveries: JoinSet::new(),
        };
        tokio::spawn(worker.run(rx));
        recorder
    }

    /// The controller name events are reported under.
    pub fn reporting_controller(&self) -> &str {
        &self.reporting_controller
    }

    /// The replica name events are reported under.
    pub fn reporting_instance(&self) -> &str {
        &self.reporting_instance
    }

    /// Queues an event about `object` and returns at once.
    ///
    /// `object` needs at least `kind`, `name` and `apiVersion` (for the metadata prefix);
    /// `kube::Resource::object_ref` on the reconciled object gives exactly that plus `uid`,
    /// `namespace` and `resourceVersion`. `metadata` keys are given unprefixed (`revision`).
    pub fn publish(
        &self,
        object: &ObjectReference,
        severity: EventSeverity,
        reason: &str,
        message: &str,
        metadata: BTreeMap<String, String>,
    ) {
        let pending = Pending {
            object: object.clone(),
            severity,
            reason: reason.to_owned(),
            message: message.to_owned(),
            metadata,
            time: jiff::Timestamp::now(),
        };
        match self.tx.try_send(Message::Publish(Box::new(pending))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    kind = object.kind.as_deref().unwrap_or_default(),
                    namespace = object.namespace.as_deref().unwrap_or_default(),
                    name = object.name.as_deref().unwrap_or_default(),
                    reason,
                    "event queue is full; dropping event"
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                tracing::warn!(reason, "event recorder has stopped; dropping event");
            }
        }
    }

    /// Waits until every event published before this call has been recorded and delivered
    /// (or given up on).
    pub async fn flush(&self) {
        let (done_tx, done_rx) = oneshot::channel();
        if self.tx.send(Message::Flush(done_tx)).await.is_ok() {
            let _ = done_rx.await;
        }
    }
}

/// The prefixed metadata keys of an event about an object of `api_version`.
pub fn prefixed_metadata(
    api_version: &str,
    metadata: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let group = api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or_default();
    metadata
        .iter()
        .map(|(key, value)| {
            let key = if group.is_empty() || key.contains('/') {
                key.clone()
            } else {
                format!("{group}/{key}")
            };
            (key, value.clone())
        })
        .collect()
}

/// RFC 3339 in UTC with second precision, like Kubernetes' `metav1.Time`.
fn rfc3339_seconds(time: jiff::Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

struct Worker {
    client: Option<kube::Client>,
    http: Option<reqwest::Client>,
    options: EventRecorderOptions,
    kube_events: EventCache,
    deliveries: JoinSet<()>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        while let Some(message) = rx.recv().await {
            // Reap finished deliveries so the set does not grow.
            while self.deliveries.try_join_next().is_some() {}
            match message {
                Message::Publish(pending) => self.handle(*pending).await,
                Message::Flush(done) => {
                    while self.deliveries.join_next().await.is_some() {}
                    let _ = done.send(());
                }
            }
        }
        while self.deliveries.join_next().await.is_some() {}
    }

    async fn handle(&mut self, pending: Pending) {
        let api_version = pending.object.api_version.as_deref().unwrap_or_default();
        let metadata = prefixed_metadata(api_version, &pending.metadata);
        tracing::debug!(
            kind = pending.object.kind.as_deref().unwrap_or_default(),
            namespace = pending.object.namespace.as_deref().unwrap_or_default(),
            name = pending.object.name.as_deref().unwrap_or_default(),
            severity = %pending.severity,
            reason = %pending.reason,
            message = %pending.message,
            "event"
        );
        if let Some(client) = &self.client {
            self.kube_events
                .record(client, &self.options, &pending, &metadata)
                .await;
        }
        if let (Some(http), Some(url)) = (&self.http, &self.options.events_addr) {
            let object = &pending.object;
            let missing = [
                ("kind", &object.kind),
                ("name", &object.name),
                ("namespace", &object.namespace),
            ]
            .into_iter()
            .find(|(_, v)| v.as_deref().unwrap_or_default().is_empty());
            if let Some((field, _)) = missing {
                tracing::error!(
                    field,
                    reason = %pending.reason,
                    "cannot forward event: the involved object has no {field}"
                );
                return;
            }
            let payload = FluxEvent {
                involved_object: pending.object,
                severity: pending.severity,
                timestamp: rfc3339_seconds(pending.time),
                message: pending.message,
                reason: pending.reason,
                metadata,
                reporting_controller: self.options.reporting_controller.clone(),
                reporting_instance: self.options.reporting_instance.clone(),
            };
            let max = self.options.max_in_flight.max(1);
            while self.deliveries.len() >= max {
                let _ = self.deliveries.join_next().await;
            }
            self.deliveries.spawn(deliver(
                http.clone(),
                url.clone(),
                self.options.retry,
                payload,
            ));
        }
    }
}

/// What one POST attempt came to.
#[derive(Debug, PartialEq, Eq)]
enum Attempt {
    Delivered,
    /// Worth another try (connection error, timeout, 5xx).
    Retry(String),
    /// Not worth another try (429, other 4xx, a request that cannot be built).
    GiveUp(String),
}

async fn post_once(http: &reqwest::Client, url: &reqwest::Url, payload: &FluxEvent) -> Attempt {
    match http.post(url.clone()).json(payload).send().await {
        Ok(response) => {
            let status = response.status();
            if status.is_success() {
                Attempt::Delivered
            } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Attempt::GiveUp("rate limited (429); not retrying".to_owned())
            } else if status.is_server_error() {
                Attempt::Retry(format!("server answered {status}"))
            } else {
                Attempt::GiveUp(format!("server answered {status}; not retrying"))
            }
        }
        Err(err) if err.is_builder() => Attempt::GiveUp(error_chain(&err)),
        Err(err) => Attempt::Retry(error_chain(&err)),
    }
}

async fn deliver(http: reqwest::Client, url: reqwest::Url, retry: RetryPolicy, payload: FluxEvent) {
    let mut attempt = 0u32;
    loop {
        let outcome = post_once(&http, &url, &payload).await;
        let failure = match outcome {
            Attempt::Delivered => {
                tracing::trace!(url = %url, reason = %payload.reason, "event delivered");
                return;
            }
            Attempt::GiveUp(why) => {
                let rate_limited = why.starts_with("rate limited");
                if rate_limited {
                    tracing::debug!(url = %url, reason = %payload.reason, "event not delivered: {why}");
                } else {
                    tracing::error!(url = %url, reason = %payload.reason, "event not delivered: {why}");
                }
                return;
            }
            Attempt::Retry(why) => why,
        };
        if attempt >= retry.max_retries {
            tracing::error!(
                url = %url,
                reason = %payload.reason,
                attempts = attempt + 1,
                "event not delivered, giving up: {failure}"
            );
            return;
        }
        let wait = retry.backoff(attempt);
        tracing::debug!(url = %url, attempt = attempt + 1, wait = ?wait, "event delivery failed, retrying: {failure}");
        tokio::time::sleep(wait).await;
        attempt += 1;
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

/// Identity of a Kubernetes Event for de-duplication.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct EventKey {
    namespace: String,
    object: (String, String, String, String),
    type_: &'static str,
    reason: String,
    message: String,
}

/// Recently created Kubernetes Events, so a repeat bumps `count` instead of creating another.
#[derive(Default)]
struct EventCache {
    seen: HashMap<EventKey, (String, i32)>,
}

/// Entries kept before the cache starts over.
const EVENT_CACHE_LIMIT: usize = 4096;

impl EventCache {
    async fn record(
        &mut self,
        client: &kube::Client,
        options: &EventRecorderOptions,
        pending: &Pending,
        metadata: &BTreeMap<String, String>,
    ) {
        let object = &pending.object;
        // Events about cluster-scoped objects live in `default`, as with client-go.
        let namespace = object
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| "default".to_owned());
        let type_ = pending.severity.kubernetes_event_type();
        let key = EventKey {
            namespace: namespace.clone(),
            object: (
                object.api_version.clone().unwrap_or_default(),
                object.kind.clone().unwrap_or_default(),
                object.name.clone().unwrap_or_default(),
                object.uid.clone().unwrap_or_default(),
            ),
            type_,
            reason: pending.reason.clone(),
            message: pending.message.clone(),
        };
        let api: Api<KubeEvent> = Api::namespaced(client.clone(), &namespace);
        let now = Time(pending.time);

        if let Some((name, count)) = self.seen.get(&key).cloned() {
            let patch = serde_json::json!({
                "count": count + 1,
                "lastTimestamp": now,
            });
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.seen.insert(key, (name, count + 1));
                    return;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {
                    // Expired (events have a TTL); create a fresh one below.
                    self.seen.remove(&key);
                }
                Err(err) => {
                    tracing::error!(error = &err as &dyn std::error::Error, event = %name, "cannot update Kubernetes Event");
                    return;
                }
            }
        }

        let object_name = object.name.clone().unwrap_or_default();
        let nanos = pending.time.as_nanosecond();
        let event = KubeEvent {
            metadata: ObjectMeta {
                name: Some(format!("{object_name}.{nanos:x}")),
                namespace: Some(namespace.clone()),
                annotations: (!metadata.is_empty()).then(|| metadata.clone()),
                ..ObjectMeta::default()
            },
            involved_object: object.clone(),
            reason: Some(pending.reason.clone()),
            message: Some(pending.message.clone()),
            type_: Some(type_.to_owned()),
            source: Some(EventSource {
                component: Some(options.reporting_controller.clone()),
                host: None,
            }),
            reporting_component: Some(options.reporting_controller.clone()),
            reporting_instance: Some(options.reporting_instance.clone()),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            count: Some(1),
            ..KubeEvent::default()
        };
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                if self.seen.len() >= EVENT_CACHE_LIMIT {
                    self.seen.clear();
                }
                if let Some(name) = created.metadata.name {
                    self.seen.insert(key, (name, 1));
                }
            }
            Err(err) => {
                tracing::error!(
                    error = &err as &dyn std::error::Error,
                    kind = object.kind.as_deref().unwrap_or_default(),
                    namespace = %namespace,
                    name = %object_name,
                    reason = %pending.reason,
                    "cannot record Kubernetes Event"
                );
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn metadata_keys_get_the_api_group() {
        let metadata = BTreeMap::from([
            ("revision".to_owned(), "main@sha1:0123".to_owned()),
            ("example.com/custom".to_owned(), "kept".to_owned()),
        ]);
        let prefixed = prefixed_metadata("kustomize.toolkit.fluxcd.io/v1", &metadata);
        assert_eq!(
            prefixed,
            BTreeMap::from([
                (
                    "kustomize.toolkit.fluxcd.io/revision".to_owned(),
                    "main@sha1:0123".to_owned()
                ),
                ("example.com/custom".to_owned(), "kept".to_owned()),
            ])
        );
        let core = prefixed_metadata("v1", &metadata);
        assert!(core.contains_key("revision"));
    }

    #[test]
    fn payload_serialises_with_flux_field_names() {
        let payload = FluxEvent {
            involved_object: ObjectReference {
                api_version: Some("source.toolkit.fluxcd.io/v1".into()),
                kind: Some("GitRepository".into()),
                name: Some("podinfo".into()),
                namespace: Some("flux-system".into()),
                uid: Some("u-1".into()),
                resource_version: Some("42".into()),
                ..ObjectReference::default()
            },
            severity: EventSeverity::Error,
            timestamp: rfc3339_seconds("2025-01-02T03:04:05.678Z".parse().unwrap()),
            message: "auth failed".into(),
            reason: "GitOperationFailed".into(),
            metadata: BTreeMap::new(),
            reporting_controller: "source-controller".into(),
            reporting_instance: String::new(),
        };
        let json = serde_json::to_value(&payload).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "involvedObject": {
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "name": "podinfo",
                    "namespace": "flux-system",
                    "uid": "u-1",
                    "resourceVersion": "42"
                },
                "severity": "error",
                "timestamp": "2025-01-02T03:04:05Z",
                "message": "auth failed",
                "reason": "GitOperationFailed",
                "reportingController": "source-controller"
            })
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy::default();
        let waits: Vec<u64> = (0..7).map(|i| policy.backoff(i).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn options_default_to_hostname_and_no_forwarding() {
        let options = EventRecorderOptions::new("source-controller");
        assert!(!options.reporting_instance.is_empty());
        assert_eq!(options.events_addr, None);
        assert_eq!(options.retry, RetryPolicy::default());
    }
}
