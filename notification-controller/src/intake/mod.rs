//! The event endpoint: Flux events in over HTTP, matched against Alerts, sent out through
//! Providers.
//!
//! `POST /` (any path, like Flux) with the Flux event payload as JSON is answered:
//!
//! | answer | when |
//! |---|---|
//! | `202 Accepted` | the event is valid and not a duplicate; matching and delivery follow in the background |
//! | `400 Bad Request` | the body is not an event: malformed JSON, a missing field, an empty `involvedObject.kind` or `name`; the body of the answer says what is wrong |
//! | `413 Payload Too Large` | the body is larger than 3 MiB |
//! | `429 Too Many Requests` | the same event (object, message, revision, see [`event::event_key`]) was accepted less than `--rate-limit-interval` ago; it is not sent again |
//! | `405 Method Not Allowed` | not a `POST` |
//!
//! Matching follows Flux's rules (see [`matching`]); the metadata a Provider receives is
//! combined as Flux does (see [`event::combine_metadata`]).
//!
//! # Guarantees
//!
//! - Alerts, Providers and the metadata of Secrets are kept in memory from watches: an event
//!   costs no API request, except a metadata GET of the involved object when an Alert matching
//!   it uses `matchLabels` (at most one per event).
//! - Each delivery runs on its own task: a slow or failing Provider never delays the answer,
//!   other Alerts, or other Providers. At most [`IntakeOptions::max_in_flight_per_provider`]
//!   deliveries to one Provider run at once; beyond that, deliveries to it are dropped (logged
//!   and counted) rather than piling up.
//! - One notifier (with its HTTP client) is built per Provider and reused until the Provider's
//!   generation or one of its Secrets changes. A Provider that cannot be built (missing Secret,
//!   unsupported type) is not retried for each event: the failure is kept for 10 seconds or
//!   until the Provider or its Secrets change.
//! - A failed delivery, a missing Provider, a refused cross-namespace event are logged, counted
//!   in `notification_controller_deliveries_total{result="failure"}`, and recorded as a
//!   `Warning` Kubernetes Event on the Alert (`NotificationDispatchFailed`), never forwarded.
//!   Messages never contain secret values.
//!
//! # Metrics
//!
//! | metric | labels |
//! |---|---|
//! | `notification_controller_events_total` | `result`: `accepted`, `duplicate`, `invalid`, `too_large` |
//! | `notification_controller_deliveries_total` | `result`: `success`, `failure`, `dropped` |

pub mod event;
pub mod matching;
pub mod ratelimit;
pub mod settings;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use http::{Method, StatusCode};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PartialObjectMeta};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::sync::{OnceCell, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::cel::Expression;
use toolkit_sdk::events::{EventRecorder, EventSeverity, FluxEvent};

use self::event::InvalidEvent;
use self::matching::{CompiledAlert, SourceMatch, labels_match};
use self::ratelimit::DuplicateFilter;
use crate::api::v1beta3::{Alert, Provider};
use crate::provider::Notifier;

/// The largest event body accepted (Flux's limit): 3 MiB.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Flux's `--rate-limit-interval` default.
pub const DEFAULT_RATE_LIMIT_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// Deliveries to one Provider running at once before further ones are dropped.
pub const DEFAULT_MAX_IN_FLIGHT_PER_PROVIDER: usize = 256;

/// How long a Provider that could not be built is not rebuilt (unless it or a Secret changes).
const FAILED_NOTIFIER_TTL: Duration = Duration::from_secs(10);

/// Kubernetes Event reason of a delivery that failed (Flux's).
pub const NOTIFICATION_DISPATCH_FAILED: &str = "NotificationDispatchFailed";
/// Kubernetes Event reason when the involved object could not be read for `matchLabels`.
pub const SOURCE_FETCH_FAILED: &str = "SourceFetchFailed";
/// Kubernetes Event reason when metadata keys from different sources collided.
pub const METADATA_APPEND_FAILED: &str = "MetadataAppendFailed";

/// How the event endpoint behaves.
#[derive(Clone, Debug)]
pub struct IntakeOptions {
    /// `--rate-limit-interval`: repeats of an event within it are refused; zero disables.
    pub rate_limit_interval: Duration,
    /// `--no-cross-namespace-refs`: an Alert only takes events about objects in its own
    /// namespace.
    pub no_cross_namespace_refs: bool,
    /// Watch Alerts, Providers and Secrets only in this namespace (`None`: all namespaces).
    pub namespace: Option<String>,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// Deliveries to one Provider running at once before further ones are dropped.
    pub max_in_flight_per_provider: usize,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        Self {
            rate_limit_interval: DEFAULT_RATE_LIMIT_INTERVAL,
            no_cross_namespace_refs: false,
            namespace: None,
            max_body_bytes: MAX_BODY_BYTES,
            max_in_flight_per_provider: DEFAULT_MAX_IN_FLIGHT_PER_PROVIDER,
        }
    }
}

/// The fate of a received event, as counted in `notification_controller_events_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventResult {
    /// Valid and new: answered 202.
    Accepted,
    /// A repeat within the rate limit interval: answered 429.
    Duplicate,
    /// Not an event: answered 400.
    Invalid,
    /// Too large: answered 413.
    TooLarge,
}

impl EventResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Duplicate => "duplicate",
            Self::Invalid => "invalid",
            Self::TooLarge => "too_large",
        }
    }
}

/// The fate of one delivery, as counted in `notification_controller_deliveries_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryResult {
    /// The Provider took the event.
    Success,
    /// The Provider, its Secrets or the service failed; nothing was delivered.
    Failure,
    /// Too many deliveries to the Provider were running; this one was not attempted.
    Dropped,
}

impl DeliveryResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Dropped => "dropped",
        }
    }
}

impl EncodeLabelValue for EventResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

impl EncodeLabelValue for DeliveryResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> fmt::Result {
        fmt::Write::write_str(encoder, self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    result: EventResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    result: DeliveryResult,
}

/// The intake's counters. Cheap to clone; clones share the counters.
#[derive(Clone, Debug, Default)]
pub struct IntakeMetrics {
    events: Family<EventLabels, Counter>,
    deliveries: Family<DeliveryLabels, Counter>,
}

impl IntakeMetrics {
    /// Counters registered in `registry` (give it to `toolkit_sdk::metrics::Metrics::with_registry`
    /// so they are served on `/metrics`).
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "notification_controller_events",
            "Events received on the event endpoint, by result",
            metrics.events.clone(),
        );
        registry.register(
            "notification_controller_deliveries",
            "Deliveries of events to Providers, by result",
            metrics.deliveries.clone(),
        );
        metrics
    }

    /// Events received with `result` so far.
    pub fn events(&self, result: EventResult) -> u64 {
        self.events.get_or_create(&EventLabels { result }).get()
    }

    /// Deliveries with `result` so far.
    pub fn deliveries(&self, result: DeliveryResult) -> u64 {
        self.deliveries
            .get_or_create(&DeliveryLabels { result })
            .get()
    }

    fn count_event(&self, result: EventResult) {
        self.events.get_or_create(&EventLabels { result }).inc();
    }

    fn count_delivery(&self, result: DeliveryResult) {
        self.deliveries
            .get_or_create(&DeliveryLabels { result })
            .inc();
    }
}

/// Why an event was refused by [`Intake::accept`].
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Not a valid event (answered 400).
    #[error(transparent)]
    Invalid(#[from] InvalidEvent),
    /// The same event was accepted less than the rate limit interval ago (answered 429).
    #[error("duplicate event: the same event was accepted less than {0:?} ago")]
    Duplicate(Duration),
}

/// The event intake: in-memory Alerts and Providers, duplicate filter, notifier cache and
/// dispatch. Cheap to clone.
#[derive(Clone)]
pub struct Intake {
    inner: Arc<Inner>,
}

impl fmt::Debug for Intake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Intake")
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

struct Inner {
    client: Client,
    options: IntakeOptions,
    recorder: EventRecorder,
    metrics: IntakeMetrics,
    duplicates: DuplicateFilter,
    alerts: RwLock<Arc<Vec<Arc<CompiledAlert>>>>,
    alert_store: Store<Alert>,
    providers: Store<Provider>,
    secrets: Store<PartialObjectMeta<Secret>>,
    notifiers: Mutex<HashMap<(String, String), NotifierEntry>>,
    in_flight: AtomicUsize,
    /// One bit per watch ([`ALL_LISTED`] once each has listed its objects).
    listed: tokio::sync::watch::Sender<u8>,
}

/// The `listed` bits of the three watches.
const ALERTS_LISTED: u8 = 0b001;
const PROVIDERS_LISTED: u8 = 0b010;
const SECRETS_LISTED: u8 = 0b100;
const ALL_LISTED: u8 = ALERTS_LISTED | PROVIDERS_LISTED | SECRETS_LISTED;

/// What a notifier was built from: a change of any part rebuilds it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct NotifierKey {
    uid: String,
    generation: i64,
    secrets: settings::SecretVersions,
}

type BuildResult = Result<Notifier, Arc<str>>;

struct NotifierEntry {
    key: NotifierKey,
    created: Instant,
    cell: Arc<OnceCell<BuildResult>>,
    permits: Arc<Semaphore>,
}

impl NotifierEntry {
    fn usable_for(&self, key: &NotifierKey) -> bool {
        self.key == *key
            && !(matches!(self.cell.get(), Some(Err(_)))
                && self.created.elapsed() >= FAILED_NOTIFIER_TTL)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// The message of an error followed by its sources, joined by `": "`.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(source) = next {
        let part = source.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = source.source();
    }
    text
}

/// `Kind/namespace/name` of the event's object, as Flux writes it in messages.
fn object_string(event: &FluxEvent) -> String {
    let object = &event.involved_object;
    format!(
        "{}/{}/{}",
        object.kind.as_deref().unwrap_or_default(),
        object.namespace.as_deref().unwrap_or_default(),
        object.name.as_deref().unwrap_or_default()
    )
}

impl Intake {
    /// Starts the watches of Alerts, Providers and Secret metadata (in `options.namespace` or
    /// everywhere) on background tasks that run until `token` is cancelled. Kubernetes Events
    /// about Alerts go through `recorder`.
    pub fn start(
        client: Client,
        options: IntakeOptions,
        recorder: EventRecorder,
        metrics: IntakeMetrics,
        token: CancellationToken,
    ) -> Self {
        let (alert_store, alert_writer) = reflector::store::<Alert>();
        let (providers, provider_writer) = reflector::store::<Provider>();
        let (secrets, secret_writer) = reflector::store::<PartialObjectMeta<Secret>>();
        let inner = Arc::new(Inner {
            duplicates: DuplicateFilter::new(options.rate_limit_interval),
            client: client.clone(),
            recorder,
            metrics,
            alerts: RwLock::new(Arc::new(Vec::new())),
            alert_store,
            providers,
            secrets,
            notifiers: Mutex::new(HashMap::new()),
            in_flight: AtomicUsize::new(0),
            listed: tokio::sync::watch::Sender::new(0),
            options,
        });
        let namespace = inner.options.namespace.clone();
        let alert_api: Api<Alert> = api(&client, namespace.as_deref());
        let provider_api: Api<Provider> = api(&client, namespace.as_deref());
        let secret_api: Api<PartialObjectMeta<Secret>> = api(&client, namespace.as_deref());

        let alerts = watcher::watcher(alert_api, watcher::Config::default())
            .default_backoff()
            .reflect(alert_writer);
        let weak = Arc::downgrade(&inner);
        spawn_until(token.clone(), "Alert", alerts, move |event| {
            if let (Event::InitDone, Some(inner)) = (event, weak.upgrade()) {
                inner.mark_listed(ALERTS_LISTED);
            }
            if matches!(event, Event::InitDone | Event::Apply(_) | Event::Delete(_))
                && let Some(inner) = weak.upgrade()
            {
                inner.rebuild_alerts();
            }
        });

        let providers = watcher::watcher(provider_api, watcher::Config::default())
            .default_backoff()
            .reflect(provider_writer);
        let weak = Arc::downgrade(&inner);
        spawn_until(token.clone(), "Provider", providers, move |event| {
            if let (Event::InitDone, Some(inner)) = (event, weak.upgrade()) {
                inner.mark_listed(PROVIDERS_LISTED);
            }
            if let Event::Delete(provider) = event
                && let Some(inner) = weak.upgrade()
            {
                let id = (
                    provider.namespace().unwrap_or_default(),
                    provider.name_any(),
                );
                lock(&inner.notifiers).remove(&id);
            }
        });

        // Only what identifies a Secret version is kept: no data, and no annotations (a
        // `kubectl apply`-ed Secret carries its data in one).
        let secrets = watcher::watcher(secret_api, watcher::Config::default())
            .default_backoff()
            .modify(|secret| {
                let meta = &mut secret.metadata;
                meta.annotations = None;
                meta.labels = None;
                meta.managed_fields = None;
                meta.owner_references = None;
                meta.finalizers = None;
            })
            .reflect(secret_writer);
        let weak = Arc::downgrade(&inner);
        spawn_until(token, "Secret", secrets, move |event| {
            if let (Event::InitDone, Some(inner)) = (event, weak.upgrade()) {
                inner.mark_listed(SECRETS_LISTED);
            }
        });

        Self { inner }
    }

    /// Waits until the Alerts, Providers and Secrets have been listed once.
    pub async fn wait_ready(&self) {
        let mut listed = self.inner.listed.subscribe();
        let _ = listed.wait_for(|bits| *bits == ALL_LISTED).await;
    }

    /// Whether the Alert `namespace/name` is in the intake's index (with the given
    /// `resourceVersion`, when one is given): events are matched against it from then on.
    pub fn has_alert(&self, namespace: &str, name: &str, resource_version: Option<&str>) -> bool {
        self.inner.alerts().iter().any(|a| {
            a.namespace == namespace
                && a.name == name
                && resource_version.is_none_or(|rv| a.resource_version == rv)
        })
    }

    /// Whether the intake knows the Provider `namespace/name`.
    pub fn has_provider(&self, namespace: &str, name: &str) -> bool {
        self.inner
            .providers
            .get(&ObjectRef::new(name).within(namespace))
            .is_some()
    }

    /// The counters of this intake.
    pub fn metrics(&self) -> &IntakeMetrics {
        &self.inner.metrics
    }

    /// Deliveries running now.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::Relaxed)
    }

    /// Waits (at most `timeout`) until no delivery is running.
    pub async fn drain(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes one event payload: validates it, refuses duplicates, and hands it to a background
    /// task that matches and delivers it. Must be called within a Tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Refusal::Invalid`] for a payload that is not an event, [`Refusal::Duplicate`] for a
    /// repeat within the rate limit interval.
    pub fn accept(&self, body: &[u8]) -> Result<(), Refusal> {
        let inner = &self.inner;
        let mut event = match event::parse(body) {
            Ok(event) => event,
            Err(err) => {
                inner.metrics.count_event(EventResult::Invalid);
                tracing::warn!(error = %err, "refusing event: invalid payload");
                return Err(err.into());
            }
        };
        event::clean_metadata(&mut event);
        if !inner
            .duplicates
            .accept(event::event_key(&event), Instant::now())
        {
            inner.metrics.count_event(EventResult::Duplicate);
            tracing::debug!(
                object = %object_string(&event),
                "discarding event, rate limiting duplicate events"
            );
            return Err(Refusal::Duplicate(inner.options.rate_limit_interval));
        }
        event::remove_internal_metadata(&mut event);
        inner.metrics.count_event(EventResult::Accepted);
        tokio::spawn(self.inner.clone().process(event));
        Ok(())
    }
}

/// An `Api` over `namespace`, or over every namespace when there is none.
pub(crate) fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Drives a watch stream until `token` is cancelled, calling `on_event` for each event and
/// logging errors (the stream retries with backoff).
fn spawn_until<K, S>(
    token: CancellationToken,
    kind: &'static str,
    stream: S,
    mut on_event: impl FnMut(&Event<K>) + Send + 'static,
) where
    K: Send + 'static,
    S: futures::Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
{
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        loop {
            let next = tokio::select! {
                () = token.cancelled() => return,
                next = stream.next() => next,
            };
            match next {
                Some(Ok(event)) => on_event(&event),
                Some(Err(err)) => {
                    tracing::warn!(kind, error = %error_chain(&err), "watch failed; retrying");
                }
                None => return,
            }
        }
    });
}

/// Decrements the in-flight counter when a delivery ends, however it ends.
struct InFlight(Arc<Inner>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Inner {
    fn mark_listed(&self, bit: u8) {
        self.listed.send_modify(|bits| *bits |= bit);
    }

    /// Recompiles the Alert index from the store, reusing Alerts whose resourceVersion did
    /// not change.
    fn rebuild_alerts(&self) {
        let previous = match self.alerts.read() {
            Ok(alerts) => alerts.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let known: HashMap<(&str, &str), &Arc<CompiledAlert>> = previous
            .iter()
            .map(|a| ((a.namespace.as_str(), a.name.as_str()), a))
            .collect();
        let mut next: Vec<Arc<CompiledAlert>> = self
            .alert_store
            .state()
            .iter()
            .map(|alert| {
                let namespace = alert.metadata.namespace.as_deref().unwrap_or_default();
                let name = alert.metadata.name.as_deref().unwrap_or_default();
                match known.get(&(namespace, name)) {
                    Some(compiled)
                        if Some(compiled.resource_version.as_str())
                            == alert.metadata.resource_version.as_deref() =>
                    {
                        Arc::clone(compiled)
                    }
                    _ => Arc::new(CompiledAlert::compile(alert)),
                }
            })
            .collect();
        next.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        let next = Arc::new(next);
        match self.alerts.write() {
            Ok(mut alerts) => *alerts = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    fn alerts(&self) -> Arc<Vec<Arc<CompiledAlert>>> {
        match self.alerts.read() {
            Ok(alerts) => alerts.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Matches one accepted event against the Alerts and starts a delivery per match.
    async fn process(self: Arc<Self>, event: FluxEvent) {
        let alerts = self.alerts();
        let event = Arc::new(event);
        let mut labels: Option<Result<BTreeMap<String, String>, String>> = None;
        let mut matched = 0usize;
        for alert in alerts.iter() {
            if alert.suspended || !alert.message_allowed(&event.message) {
                continue;
            }
            match alert.source_match(&event) {
                SourceMatch::No => continue,
                SourceMatch::Yes => {}
                SourceMatch::IfLabels(required) => {
                    if labels.is_none() {
                        labels = Some(self.object_labels(&event).await);
                    }
                    match &labels {
                        Some(Ok(labels)) => {
                            if !required.iter().any(|r| labels_match(r, labels)) {
                                continue;
                            }
                        }
                        Some(Err(message)) => {
                            let message = format!(
                                "error getting source object {}: {message}",
                                object_string(&event)
                            );
                            tracing::warn!(alert = %alert.key(), "{message}");
                            self.recorder.publish(
                                &alert.object_ref,
                                EventSeverity::Error,
                                SOURCE_FETCH_FAILED,
                                &message,
                                BTreeMap::new(),
                            );
                            continue;
                        }
                        None => continue,
                    }
                }
            }
            matched += 1;
            let namespace = event
                .involved_object
                .namespace
                .as_deref()
                .unwrap_or_default();
            if self.options.no_cross_namespace_refs && namespace != alert.namespace {
                self.fail(
                    alert,
                    format!(
                        "failed to dispatch notification for {}: alert '{}' can't process event from another namespace, cross-namespace references have been blocked",
                        object_string(&event),
                        alert.key()
                    ),
                );
                continue;
            }
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            let guard = InFlight(self.clone());
            tokio::spawn(self.clone().deliver(alert.clone(), event.clone(), guard));
        }
        if matched == 0 {
            tracing::debug!(
                object = %object_string(&event),
                "discarding event, no alerts found for the involved object"
            );
        }
    }

    /// The commit status key the Provider's `spec.commitStatusExpr` gives for `event`
    /// (variables `event`, `provider` and `alert`, as in Flux); `None` when it has none or
    /// its type sets no commit status.
    fn commit_status_id(
        &self,
        provider: &Provider,
        alert: &CompiledAlert,
        event: &FluxEvent,
    ) -> Result<Option<String>, String> {
        let source = provider.spec.commit_status_expr.trim();
        if source.is_empty() || !provider.spec.type_.is_commit_status() {
            return Ok(None);
        }
        let expression = Expression::compile(source).map_err(|e| e.to_string())?;
        let to_json = |value: serde_json::Result<serde_json::Value>| {
            value.map_err(|e| format!("cannot pass the objects to commitStatusExpr: {e}"))
        };
        let event = to_json(serde_json::to_value(event))?;
        let provider = to_json(serde_json::to_value(provider))?;
        let alert = match self
            .alert_store
            .get(&ObjectRef::<Alert>::new(&alert.name).within(&alert.namespace))
        {
            Some(object) => to_json(serde_json::to_value(&*object))?,
            None => serde_json::Value::Null,
        };
        let vars = [
            ("event", &event),
            ("provider", &provider),
            ("alert", &alert),
        ];
        match expression.evaluate(&vars).map_err(|e| e.to_string())? {
            serde_json::Value::String(id) if !id.trim().is_empty() => Ok(Some(id)),
            other => Err(format!(
                "commitStatusExpr '{source}' must evaluate to a non-empty string, not {other}"
            )),
        }
    }

    /// The labels of the event's object, read from the API (metadata only).
    async fn object_labels(&self, event: &FluxEvent) -> Result<BTreeMap<String, String>, String> {
        let object = &event.involved_object;
        let api_version = object.api_version.as_deref().unwrap_or_default();
        if api_version.is_empty() {
            return Err("the event has no involvedObject.apiVersion".to_owned());
        }
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let gvk = GroupVersionKind::gvk(group, version, object.kind.as_deref().unwrap_or_default());
        let resource = ApiResource::from_gvk(&gvk);
        let namespace = object.namespace.as_deref().unwrap_or_default();
        let api: Api<DynamicObject> = if namespace.is_empty() {
            Api::all_with(self.client.clone(), &resource)
        } else {
            Api::namespaced_with(self.client.clone(), namespace, &resource)
        };
        api.get_metadata(object.name.as_deref().unwrap_or_default())
            .await
            .map(|meta| meta.metadata.labels.unwrap_or_default())
            .map_err(|err| error_chain(&err))
    }

    /// Sends one event through the Provider of one Alert.
    async fn deliver(
        self: Arc<Self>,
        alert: Arc<CompiledAlert>,
        event: Arc<FluxEvent>,
        _guard: InFlight,
    ) {
        let reference = ObjectRef::<Provider>::new(&alert.provider_name).within(&alert.namespace);
        let Some(provider) = self.providers.get(&reference) else {
            self.fail(
                &alert,
                format!(
                    "failed to dispatch notification for {}: failed to read provider: Provider '{}/{}' not found",
                    object_string(&event),
                    alert.namespace,
                    alert.provider_name
                ),
            );
            return;
        };
        if provider.spec.suspend {
            return;
        }
        let (metadata, conflicts) =
            event::combine_metadata(&event, &alert.event_metadata, &alert.summary);
        if !conflicts.is_empty() {
            let keys: Vec<&str> = conflicts.iter().map(|c| c.key.as_str()).collect();
            tracing::info!(alert = %alert.key(), conflicting_keys = ?keys, "warning: metadata key conflicts detected");
            let annotations = conflicts
                .iter()
                .map(|c| (c.key.clone(), c.sources.join(", ")))
                .collect();
            self.recorder.publish(
                &alert.object_ref,
                EventSeverity::Error,
                METADATA_APPEND_FAILED,
                "metadata key conflicts detected (please refer to the Alert API docs and Flux RFC 0008 for more information)",
                annotations,
            );
        }
        let mut notification = (*event).clone();
        notification.metadata = metadata;

        let (notifier, permits) = match self.notifier_for(&provider).await {
            Ok(found) => found,
            Err(message) => {
                self.fail(
                    &alert,
                    format!(
                        "failed to dispatch notification for {}: failed to initialize notifier for provider '{}': {message}",
                        object_string(&event),
                        provider.name_any()
                    ),
                );
                return;
            }
        };
        let Ok(_permit) = permits.try_acquire_owned() else {
            self.metrics.count_delivery(DeliveryResult::Dropped);
            tracing::warn!(
                alert = %alert.key(),
                provider = %provider.name_any(),
                object = %object_string(&event),
                "dropping notification: too many deliveries to this provider are in flight"
            );
            return;
        };
        let status_id = match self.commit_status_id(&provider, &alert, &notification) {
            Ok(id) => id,
            Err(message) => {
                self.fail(
                    &alert,
                    format!(
                        "failed to dispatch notification for {}: provider '{}': {message}",
                        object_string(&event),
                        provider.name_any()
                    ),
                );
                return;
            }
        };
        match notifier
            .send_with_status_id(&notification, status_id.as_deref())
            .await
        {
            Ok(()) => {
                self.metrics.count_delivery(DeliveryResult::Success);
                tracing::debug!(alert = %alert.key(), object = %object_string(&event), "notification sent");
            }
            Err(err) => self.fail(
                &alert,
                format!(
                    "failed to send notification for {}: {}",
                    object_string(&event),
                    error_chain(&err)
                ),
            ),
        }
    }

    /// Logs, counts and records on the Alert a delivery that did not happen.
    fn fail(&self, alert: &CompiledAlert, message: String) {
        self.metrics.count_delivery(DeliveryResult::Failure);
        tracing::warn!(alert = %alert.key(), "{message}");
        self.recorder.publish(
            &alert.object_ref,
            EventSeverity::Error,
            NOTIFICATION_DISPATCH_FAILED,
            &message,
            BTreeMap::new(),
        );
    }

    /// The notifier of `provider`, built once per generation and Secret versions.
    async fn notifier_for(
        &self,
        provider: &Provider,
    ) -> Result<(Notifier, Arc<Semaphore>), Arc<str>> {
        let namespace = provider.namespace().unwrap_or_default();
        let versions = settings::secret_versions(provider, |name| {
            self.secrets
                .get(&ObjectRef::new(name).within(&namespace))
                .map(|s| s.metadata.resource_version.clone().unwrap_or_default())
        });
        let key = NotifierKey {
            uid: provider.uid().unwrap_or_default(),
            generation: provider.metadata.generation.unwrap_or_default(),
            secrets: versions,
        };
        let (cell, permits) = {
            let mut notifiers = lock(&self.notifiers);
            let id = (namespace.clone(), provider.name_any());
            match notifiers.get(&id) {
                Some(entry) if entry.usable_for(&key) => {
                    (entry.cell.clone(), entry.permits.clone())
                }
                previous => {
                    let permits = previous.map_or_else(
                        || Arc::new(Semaphore::new(self.options.max_in_flight_per_provider)),
                        |entry| entry.permits.clone(),
                    );
                    let entry = NotifierEntry {
                        key,
                        created: Instant::now(),
                        cell: Arc::new(OnceCell::new()),
                        permits: permits.clone(),
                    };
                    let cell = entry.cell.clone();
                    notifiers.insert(id, entry);
                    (cell, permits)
                }
            }
        };
        let built = cell
            .get_or_init(|| async {
                let settings = settings::resolve(&self.client, provider)
                    .await
                    .map_err(|err| Arc::<str>::from(error_chain(&err)))?;
                crate::provider::notifier(settings)
                    .map_err(|err| Arc::<str>::from(error_chain(&err)))
            })
            .await;
        match built {
            Ok(notifier) => Ok((notifier.clone(), permits)),
            Err(message) => Err(message.clone()),
        }
    }
}

/// Why the event server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr} (--events-addr)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The server failed while serving.
    #[error("the event server failed")]
    Serve(#[source] std::io::Error),
}

/// A running event server.
#[derive(Debug)]
pub struct EventServer {
    local_addr: SocketAddr,
    task: JoinHandle<Result<(), ServeError>>,
}

impl EventServer {
    /// The address the server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits until the server has stopped (after its token was cancelled).
    ///
    /// # Errors
    ///
    /// [`ServeError::Serve`] when serving failed.
    pub async fn wait(self) -> Result<(), ServeError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }
}

/// Binds `addr` and serves the event endpoint of `intake` until `token` is cancelled. Requests
/// are answered once the intake's caches are ready.
///
/// # Errors
///
/// [`ServeError::Bind`] when `addr` cannot be bound.
pub async fn serve(
    intake: Intake,
    addr: SocketAddr,
    token: CancellationToken,
) -> Result<EventServer, ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;
    let max_body = intake.inner.options.max_body_bytes;
    let router = Router::new()
        .fallback(receive)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(intake.clone());
    let task = tokio::spawn(async move {
        tokio::select! {
            () = intake.wait_ready() => {}
            () = token.cancelled() => return Ok(()),
        }
        tracing::info!(addr = %local_addr, "event server listening");
        axum::serve(toolkit_sdk::net::no_delay(listener), router)
            .with_graceful_shutdown(token.cancelled_owned())
            .await
            .map_err(ServeError::Serve)
    });
    Ok(EventServer { local_addr, task })
}

async fn receive(
    State(intake): State<Intake>,
    method: Method,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted\n").into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let max = intake.inner.options.max_body_bytes;
            intake.inner.metrics.count_event(EventResult::TooLarge);
            tracing::warn!(max_bytes = max, "refusing event: request body too large");
            return (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("request body exceeds the maximum size of {max} bytes\n"),
            )
                .into_response();
        }
        Err(rejection) => {
            intake.inner.metrics.count_event(EventResult::Invalid);
            return (rejection.status(), rejection.body_text()).into_response();
        }
    };
    match intake.accept(&body) {
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        Err(refusal @ Refusal::Invalid(_)) => (
            StatusCode::BAD_REQUEST,
            format!("{}\n", error_chain(&refusal)),
        )
            .into_response(),
        Err(refusal @ Refusal::Duplicate(_)) => {
            (StatusCode::TOO_MANY_REQUESTS, format!("{refusal}\n")).into_response()
        }
    }
}
