//! One kind's reconcile loop inside a [`Manager`](super::Manager): the watch, the queue, and
//! the runtime's steps around each [`Reconciler::reconcile`] call.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, ReconcileReason, ReconcileRequest};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, applier, watcher};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::object::{FluxObject, FluxStatus};
use super::reconciler::{Context, Reconciler};
use super::schedule::{Backoff, Failure, Requeue, RequeuePolicy, jitter_draw};
use super::status;
use super::trigger::TriggerFilter;
use crate::api::GoDuration;
use crate::api::meta::{FINALIZER, requested_at};
use crate::conditions::Stamp;
use crate::error::ReconcileError;
use crate::events::{EventRecorder, EventSeverity};
use crate::flags::RuntimeArgs;
use crate::metrics::Metrics;
use crate::observability::Readiness;

/// What the manager gives each kind's loop: the process-wide parts and the shared settings.
pub(super) struct LoopEnv {
    /// The API client.
    pub client: Client,
    /// The controller (process) name: field manager and event reporter.
    pub name: Arc<str>,
    /// The process's event recorder.
    pub recorder: EventRecorder,
    /// The process's metrics registry.
    pub metrics: Metrics,
    /// The process's readiness.
    pub readiness: Readiness,
    /// The readiness check this loop passes once its watch has listed the objects.
    pub check: String,
    /// `true` while this process leads.
    pub leading: watch::Receiver<bool>,
    /// Cancelled when the manager stops: no new work, drain what runs.
    pub stop: CancellationToken,
    /// `--concurrent`, the watch scope and selector, retry delays.
    pub runtime: RuntimeArgs,
    /// When to come back after success or failure.
    pub policy: RequeuePolicy,
    /// The process's own namespace (the watch scope with `--watch-all-namespaces=false`).
    pub namespace: String,
    /// Bound on draining in-flight reconciles once `stop` is cancelled.
    pub shutdown_timeout: Duration,
}

/// Reconcile requests from outside the watch (see `Manager::with_controller_requested_by`).
pub(super) type Requests<K> = std::pin::Pin<Box<dyn futures::Stream<Item = ObjectRef<K>> + Send>>;

/// Runs the reconcile loop of `R::Object` until `env.stop` is cancelled, then lets in-flight
/// reconciles finish (bounded by `env.shutdown_timeout`).
pub(super) async fn run<R: Reconciler>(
    reconciler: Arc<R>,
    env: LoopEnv,
    requests: Option<Requests<R::Object>>,
) {
    let LoopEnv {
        client,
        name,
        recorder,
        metrics,
        readiness,
        check,
        leading,
        stop,
        runtime,
        policy,
        namespace,
        shutdown_timeout,
    } = env;
    let api: Api<R::Object> = if runtime.watch_all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), &namespace)
    };
    let mut watch_config = watcher::Config::default();
    if !runtime.watch_label_selector.is_empty() {
        watch_config = watch_config.labels(&runtime.watch_label_selector);
    }
    let kind = R::Object::kind(&()).into_owned();
    let span = tracing::info_span!("controller", %kind);
    span.in_scope(|| {
        tracing::info!(
            namespace = if runtime.watch_all_namespaces { "*" } else { namespace.as_str() },
            selector = %runtime.watch_label_selector,
            concurrency = runtime.concurrent,
            "starting controller"
        );
    });

    let shared = Arc::new(Shared {
        reconciler,
        client,
        name,
        kind,
        recorder,
        metrics,
        policy,
        backoff: Backoff::new(runtime.min_retry_delay, runtime.max_retry_delay),
    });

    let (writer_store, writer) = reflector::store();
    let (queue_tx, queue_rx) = mpsc::channel::<ReconcileRequest<R::Object>>(1024);
    let driver = tokio::spawn(
        drive_watch::<R::Object>(
            api,
            watch_config,
            writer,
            writer_store.clone(),
            queue_tx,
            requests,
            leading,
            stop.clone(),
            (readiness, check),
        )
        .instrument(span.clone()),
    );

    let concurrency = u16::try_from(runtime.concurrent.max(1)).unwrap_or(u16::MAX);
    let queue = tokio_stream_from(queue_rx).map(Ok::<_, Infallible>);
    let reconciles = applier(
        {
            let shared = shared.clone();
            move |obj: Arc<R::Object>, _ctx: Arc<()>| {
                let shared = shared.clone();
                Box::pin(async move {
                    match tokio::spawn(reconcile_object(obj, shared)).await {
                        Ok(result) => result,
                        Err(join) => Err(JoinFailed(join.to_string())),
                    }
                })
            }
        },
        {
            let shared = shared.clone();
            move |obj: Arc<R::Object>, err: &JoinFailed, _ctx: Arc<()>| {
                let key = object_key(obj.as_ref());
                tracing::error!(object = %key, error = %err, "reconcile task failed");
                Action::requeue(shared.backoff.next_delay(&key))
            }
        },
        Arc::new(()),
        writer_store,
        queue,
        kube::runtime::controller::Config::default().concurrency(concurrency),
    )
    .for_each(|result| async move {
        if let Err(err) = result {
            match err {
                kube::runtime::controller::Error::ObjectNotFound(_) => {
                    tracing::debug!(error = %err, "object is gone")
                }
                err => tracing::warn!(error = &err as &dyn std::error::Error, "controller"),
            }
        }
    });
    let mut reconciles = std::pin::pin!(reconciles.instrument(span.clone()));

    let finished = tokio::select! {
        () = &mut reconciles => true,
        () = stop.cancelled() => false,
    };
    // The driver stops on `stop`, which closes the queue: the applier finishes what runs. (A
    // stream that already finished must not be polled again: it panics.)
    if !finished
        && tokio::time::timeout(shutdown_timeout, &mut reconciles)
            .await
            .is_err()
    {
        span.in_scope(|| {
            tracing::warn!(
                timeout = ?shutdown_timeout,
                "in-flight reconciles did not finish in time; stopping anyway"
            );
        });
    }
    let _ = driver.await;
    span.in_scope(|| tracing::info!("controller stopped"));
}

/// An error of the runtime's own API calls around a reconcile (finalizer, status write).
#[derive(Debug, thiserror::Error)]
enum ObjectError {
    #[error("cannot add the finalizer")]
    AddFinalizer(#[source] kube::Error),
    #[error("cannot remove the finalizer")]
    RemoveFinalizer(#[source] kube::Error),
    #[error("cannot serialize the status")]
    Serialize(#[source] serde_json::Error),
    #[error("cannot write the status")]
    WriteStatus(#[source] kube::Error),
}

/// A reconcile task that panicked or was cancelled.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct JoinFailed(String);

fn tokio_stream_from<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// Everything a reconcile task needs, shared by all of them.
struct Shared<R: Reconciler> {
    reconciler: Arc<R>,
    client: Client,
    name: Arc<str>,
    kind: String,
    recorder: EventRecorder,
    metrics: Metrics,
    policy: RequeuePolicy,
    backoff: Backoff,
}

/// Keeps the store in sync with the API server, reports readiness once the objects are
/// listed, and forwards objects that need a reconcile (see [`TriggerFilter`]) to the queue
/// while this replica leads.
///
/// The watcher's events are handled here rather than through `Store::wait_until_ready` from
/// another task: that future wakes only one of several concurrent waiters, and the applier
/// already waits on it.
#[allow(clippy::too_many_arguments)]
async fn drive_watch<K: FluxObject>(
    api: Api<K>,
    config: watcher::Config,
    writer: reflector::store::Writer<K>,
    store: Store<K>,
    queue: mpsc::Sender<ReconcileRequest<K>>,
    requests: Option<Requests<K>>,
    mut leading: watch::Receiver<bool>,
    stop: CancellationToken,
    (readiness, check): (Readiness, String),
) {
    let stream = watcher(api, config).default_backoff().reflect(writer);
    let mut stream = std::pin::pin!(stream);
    let mut filter = TriggerFilter::new();
    let request = |obj: &K| ReconcileRequest {
        obj_ref: ObjectRef::from_obj(obj),
        reason: ReconcileReason::ObjectUpdated,
    };
    let mut requests = requests.unwrap_or_else(|| Box::pin(futures::stream::pending()));
    let mut was_leading = *leading.borrow_and_update();
    let mut elector_alive = true;
    let mut listed = false;
    loop {
        let changed = async {
            if elector_alive {
                leading.changed().await.is_ok()
            } else {
                std::future::pending().await
            }
        };
        tokio::select! {
            () = stop.cancelled() => break,
            alive = changed => {
                if !alive {
                    // The elector is gone (or was never there); keep the last state.
                    elector_alive = false;
                    continue;
                }
                let now_leading = *leading.borrow_and_update();
                if now_leading && !was_leading {
                    tracing::info!("leading: reconciling every watched object");
                    for obj in store.state() {
                        if queue.send(request(obj.as_ref())).await.is_err() {
                            return;
                        }
                    }
                }
                was_leading = now_leading;
            }
            Some(obj_ref) = requests.next() => {
                // Only objects the watch knows: the applier would drop the others anyway.
                if was_leading
                    && store.get(&obj_ref).is_some()
                    && queue
                        .send(ReconcileRequest {
                            obj_ref,
                            reason: ReconcileReason::Custom {
                                reason: "requested".to_owned(),
                            },
                        })
                        .await
                        .is_err()
                {
                    return;
                }
            }
            item = stream.next() => match item {
                Some(Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj))) => {
                    if filter.admit(&obj)
                        && was_leading
                        && queue.send(request(&obj)).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(watcher::Event::Delete(obj))) => filter.forget(&obj),
                Some(Ok(watcher::Event::Init)) => {}
                Some(Ok(watcher::Event::InitDone)) => {
                    let current = store.state();
                    filter.retain(current.iter().map(AsRef::as_ref));
                    if !listed {
                        listed = true;
                        tracing::info!(objects = current.len(), "watch is running");
                        readiness.set_check(&check, Ok(()));
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(error = &err as &dyn std::error::Error, "watch error; retrying");
                }
                None => break,
            },
        }
    }
}

fn object_key<K: Resource>(obj: &K) -> String {
    format!(
        "{}/{}",
        obj.meta().namespace.as_deref().unwrap_or_default(),
        obj.meta().name.as_deref().unwrap_or_default()
    )
}

fn has_finalizer<K: Resource>(obj: &K) -> bool {
    obj.finalizers().iter().any(|f| f == FINALIZER)
}

/// How one pass over an object ended.
struct Done {
    /// When to come back.
    requeue: Requeue,
    /// False when the reconcile (or cleanup) failed.
    ok: bool,
    /// The finalizer was removed: the object is going away, forget its metrics.
    finalized: bool,
}

impl Done {
    fn new(requeue: Requeue, ok: bool) -> Self {
        Self {
            requeue,
            ok,
            finalized: false,
        }
    }
}

/// One reconcile of one object, with the runtime's steps around the reconciler.
async fn reconcile_object<R: Reconciler>(
    obj: Arc<R::Object>,
    shared: Arc<Shared<R>>,
) -> Result<Action, JoinFailed> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let span = tracing::info_span!(
        "reconcile",
        kind = %shared.kind,
        namespace = %namespace,
        name = %name,
        revision = tracing::field::Empty,
    );
    let started = Instant::now();
    let key = object_key(obj.as_ref());
    let result = run_steps(obj.as_ref(), &shared, span.clone())
        .instrument(span.clone())
        .await;
    let elapsed = started.elapsed();
    let requeue = span.in_scope(|| match result {
        Ok(done) => {
            if !done.finalized {
                shared
                    .metrics
                    .observe_reconcile(&shared.kind, &namespace, &name, elapsed, done.ok);
            }
            if done.ok {
                match done.requeue {
                    Requeue::After(next) => {
                        tracing::info!(duration = ?elapsed, next_run = %GoDuration::from(next), "reconciliation finished")
                    }
                    Requeue::OnChange => {
                        tracing::info!(duration = ?elapsed, "reconciliation finished")
                    }
                }
            }
            done.requeue
        }
        Err(err) => {
            shared
                .metrics
                .observe_reconcile(&shared.kind, &namespace, &name, elapsed, false);
            let delay = shared.backoff.next_delay(&key);
            tracing::error!(
                error = &err as &dyn std::error::Error,
                retry_in = ?delay,
                "reconcile failed"
            );
            Requeue::After(delay)
        }
    });
    Ok(to_action(requeue))
}

/// The reconcile shape: deletion, finalizer, suspend, Reconciling, the reconciler, status,
/// event, requeue.
async fn run_steps<R: Reconciler>(
    obj: &R::Object,
    shared: &Shared<R>,
    span: tracing::Span,
) -> Result<Done, ObjectError> {
    let namespace = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let key = object_key(obj);
    let api: Api<R::Object> = Api::namespaced(shared.client.clone(), &namespace);
    let ctx = Context::new(
        shared.client.clone(),
        shared.name.clone(),
        shared.recorder.clone(),
        span,
    );

    if obj.meta().deletion_timestamp.is_some() {
        if !has_finalizer(obj) {
            return Ok(Done::new(Requeue::OnChange, true));
        }
        if obj.suspended() {
            tracing::info!("object is suspended; removing the finalizer without cleanup");
        } else if let Err(err) = shared.reconciler.cleanup(obj, &ctx).await {
            tracing::error!(
                reason = err.reason(),
                error = %err.detailed_message(),
                "cleanup failed; keeping the finalizer"
            );
            return Ok(Done::new(failure_requeue(shared, obj, &key, &err), false));
        }
        remove_finalizer(&api, obj, &shared.name)
            .await
            .map_err(ObjectError::RemoveFinalizer)?;
        shared.backoff.reset(&key);
        shared
            .metrics
            .forget_object(&shared.kind, &namespace, &name);
        tracing::info!("finalizer removed; object can be deleted");
        return Ok(Done {
            requeue: Requeue::OnChange,
            ok: true,
            finalized: true,
        });
    }

    if R::USES_FINALIZER && !has_finalizer(obj) {
        add_finalizer(&api, obj, &shared.name)
            .await
            .map_err(ObjectError::AddFinalizer)?;
    }

    if obj.suspended() {
        tracing::info!("reconciliation is suspended for this object");
        shared.backoff.reset(&key);
        return Ok(Done::new(Requeue::OnChange, true));
    }

    let previous = obj.status().cloned().unwrap_or_default();
    let mut working = previous.clone();
    let stamp = Stamp::new(Time(jiff::Timestamp::now()), obj.meta().generation);
    status::begin(&mut working, &stamp);
    tracing::debug!("reconciling");
    let result = shared.reconciler.reconcile(obj, &mut working, &ctx).await;
    status::finish(
        &mut working,
        &stamp,
        requested_at(obj.meta()),
        result.as_ref(),
        R::NEGATIVE_POLARITY,
    );

    if working != previous {
        let body = status::apply_body(obj, &working).map_err(ObjectError::Serialize)?;
        let params = PatchParams::apply(&shared.name).force();
        match api.patch_status(&name, &params, &Patch::Apply(&body)).await {
            Ok(_) => {}
            Err(kube::Error::Api(resp)) if resp.code == 404 => {
                tracing::debug!("object is gone; status not written");
                return Ok(Done::new(Requeue::OnChange, true));
            }
            Err(err) => return Err(ObjectError::WriteStatus(err)),
        }
    }

    let ready_changed =
        status::ready_view(previous.conditions()) != status::ready_view(working.conditions());
    let object_ref = obj.object_ref(&());
    match &result {
        Ok(outcome) => {
            if let Some((reason, message, metadata)) =
                outcome.event_to_emit(ready_changed, ctx.revision())
            {
                shared.recorder.publish(
                    &object_ref,
                    EventSeverity::Info,
                    reason,
                    message,
                    metadata,
                );
            }
            shared.backoff.reset(&key);
            let interval = outcome.requeue_after.unwrap_or_else(|| obj.interval());
            let requeue = shared.policy.after_success(interval, jitter_draw());
            Ok(Done::new(requeue, true))
        }
        Err(err) => {
            let message = err.detailed_message();
            let requeue = failure_requeue(shared, obj, &key, err);
            let retry_in = match requeue {
                Requeue::After(delay) => Some(delay),
                Requeue::OnChange => None,
            };
            if err.is_waiting() {
                tracing::info!(reason = err.reason(), detail = %message, ?retry_in, "waiting");
            } else {
                tracing::error!(
                    class = %err.class(),
                    reason = err.reason(),
                    error = %message,
                    ?retry_in,
                    "reconciliation failed"
                );
            }
            if ready_changed {
                let mut metadata = BTreeMap::new();
                if let Some(revision) = ctx.revision() {
                    metadata.insert("revision".to_owned(), revision);
                }
                shared.recorder.publish(
                    &object_ref,
                    err.severity(),
                    err.reason(),
                    &message,
                    metadata,
                );
            }
            Ok(Done::new(requeue, false))
        }
    }
}

fn failure_requeue<R: Reconciler>(
    shared: &Shared<R>,
    obj: &R::Object,
    key: &str,
    err: &ReconcileError,
) -> Requeue {
    let backoff = if err.is_transient() {
        shared.backoff.next_delay(key)
    } else {
        shared.backoff.reset(key);
        shared.policy.min_retry_delay
    };
    shared.policy.after_failure(
        Failure {
            class: err.class(),
            retry_after: err.retry_delay(),
        },
        obj.retry_interval(),
        backoff,
    )
}

fn to_action(requeue: Requeue) -> Action {
    match requeue {
        Requeue::After(delay) => Action::requeue(delay),
        Requeue::OnChange => Action::await_change(),
    }
}

/// Adds the finalizer with a merge patch guarded by the resource version.
async fn add_finalizer<K: FluxObject>(
    api: &Api<K>,
    obj: &K,
    manager: &str,
) -> Result<(), kube::Error> {
    let mut finalizers = obj.finalizers().to_vec();
    finalizers.push(FINALIZER.to_owned());
    patch_finalizers(api, obj, finalizers, manager).await
}

/// Removes the finalizer with a merge patch guarded by the resource version.
async fn remove_finalizer<K: FluxObject>(
    api: &Api<K>,
    obj: &K,
    manager: &str,
) -> Result<(), kube::Error> {
    let finalizers: Vec<String> = obj
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    match patch_finalizers(api, obj, finalizers, manager).await {
        Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(()),
        other => other,
    }
}

async fn patch_finalizers<K: FluxObject>(
    api: &Api<K>,
    obj: &K,
    finalizers: Vec<String>,
    manager: &str,
) -> Result<(), kube::Error> {
    let patch = json!({
        "metadata": {
            "resourceVersion": obj.resource_version(),
            "finalizers": finalizers,
        }
    });
    let params = PatchParams {
        field_manager: Some(manager.to_owned()),
        ..PatchParams::default()
    };
    api.patch(&obj.name_any(), &params, &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
