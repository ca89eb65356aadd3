//! The process around the controllers: endpoints, leader election, events, signals.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::controller::{ControllerOptions, RUNTIME_NAMESPACE_ENV, RuntimeError};
use super::reconcile_loop::{self, LoopEnv};
use super::reconciler::Reconciler;
use crate::events::EventRecorder;
use crate::leader::{LeaderElector, always_leader, default_identity, lease_name};
use crate::metrics::Metrics;
use crate::observability::{self, Readiness};

/// How long queued events may take to be delivered at shutdown.
const EVENT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

type LoopFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One registered controller, its kind erased until [`Manager::run`] starts it.
struct Registered {
    kind: String,
    check: String,
    start: Box<dyn FnOnce(LoopEnv) -> LoopFuture + Send>,
}

/// Runs the controllers of one process: one per kind, each with its own [`Reconciler`], all
/// sharing what a process has once. See the [module docs](super#one-process-several-kinds).
///
/// ```no_run
/// # use toolkit_sdk::runtime::{ControllerOptions, Manager, Reconciler};
/// # async fn demo(git: impl Reconciler, oci: impl Reconciler) -> anyhow::Result<()> {
/// let client = toolkit_sdk::runtime::connect(None).await?;
/// Manager::new(ControllerOptions::new("source-controller"))
///     .with_controller(git)
///     .with_controller(oci)
///     .run(client)
///     .await?;
/// # Ok(()) }
/// ```
///
/// Owned once per process, whatever the number of controllers:
/// - the `/metrics` registry and the `/healthz` and `/readyz` endpoints; `/readyz` has one
///   check per controller, `<kind>-controller` in lower case (`gitrepository-controller`),
///   that passes once its watch has listed the objects;
/// - leader election: one Lease, [`lease_name`]`(options.name, --watch-label-selector)`, one
///   identity; every controller reconciles only while the process leads;
/// - the [`EventRecorder`] (`reportingController` = `options.name`), handed to reconcilers
///   through [`Context::recorder`](super::Context::recorder);
/// - the SIGTERM/SIGINT handling: every controller stops taking work and drains, then the
///   Lease is released, then events are flushed and the endpoints stop.
pub struct Manager {
    options: ControllerOptions,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
    controllers: Vec<Registered>,
    duplicate: Option<String>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("options", &self.options)
            .field(
                "controllers",
                &self.controllers.iter().map(|c| &c.kind).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Manager {
    /// A manager for the process named `options.name` (e.g. `source-controller`), with no
    /// controller yet.
    pub fn new(options: ControllerOptions) -> Self {
        Self {
            options,
            metrics: Metrics::new(),
            readiness: Readiness::new(),
            shutdown: CancellationToken::new(),
            controllers: Vec::new(),
            duplicate: None,
        }
    }

    /// Adds the controller of `R::Object`, reconciled by `reconciler`. Each kind may have one
    /// controller: [`run`](Self::run) fails with [`RuntimeError::DuplicateKind`] otherwise.
    pub fn with_controller<R: Reconciler>(self, reconciler: R) -> Self {
        self.register(reconciler, None)
    }

    /// Like [`with_controller`](Self::with_controller), and every object named by `requests`
    /// is reconciled as if its watch had seen it change: how a controller reacts to other
    /// kinds (a Kustomization to its source's new revision) without writing to its objects.
    ///
    /// Requests are honoured while this replica leads; a request for an object the watch
    /// does not know (another namespace, another shard, deleted) is dropped.
    pub fn with_controller_requested_by<R, S>(self, reconciler: R, requests: S) -> Self
    where
        R: Reconciler,
        S: futures::Stream<Item = ObjectRef<R::Object>> + Send + 'static,
    {
        self.register(reconciler, Some(Box::pin(requests)))
    }

    fn register<R: Reconciler>(
        mut self,
        reconciler: R,
        requests: Option<reconcile_loop::Requests<R::Object>>,
    ) -> Self {
        let kind = R::Object::kind(&()).into_owned();
        let check = readiness_check(&kind);
        if self.controllers.iter().any(|c| c.check == check) {
            self.duplicate.get_or_insert(kind);
            return self;
        }
        self.readiness.set_check(
            &check,
            Err("the watch has not listed the objects yet".to_owned()),
        );
        let reconciler = Arc::new(reconciler);
        self.controllers.push(Registered {
            kind,
            check,
            start: Box::new(move |env| Box::pin(reconcile_loop::run(reconciler, env, requests))),
        });
        self
    }

    /// Uses `metrics` (which may hold the process's own metrics) instead of a fresh registry.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The registry served on `/metrics`, shared by every controller.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token that stops the process gracefully when cancelled, like SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The readiness served on `/readyz`: ready once the manager runs and every controller's
    /// watch has listed its objects; not ready again once shutting down.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Runs every controller until SIGTERM/SIGINT (or the
    /// [`shutdown_token`](Self::shutdown_token)), then lets each finish its in-flight
    /// reconciles (bounded by `shutdown_timeout`), and only once all have stopped hands the
    /// Lease over, flushes events and stops the endpoints.
    ///
    /// # Errors
    /// [`RuntimeError::NoControllers`] or [`RuntimeError::DuplicateKind`] for a manager built
    /// wrong; otherwise an error when the endpoints cannot be bound, when leader election
    /// cannot start, when this replica loses the Lease (the process should then exit, as Flux
    /// does), or when a controller stops on its own.
    pub async fn run(self, client: Client) -> Result<(), RuntimeError> {
        let Self {
            options,
            metrics,
            readiness,
            shutdown,
            controllers,
            duplicate,
        } = self;
        if let Some(kind) = duplicate {
            return Err(RuntimeError::DuplicateKind { kind });
        }
        if controllers.is_empty() {
            return Err(RuntimeError::NoControllers);
        }
        spawn_signal_handler(shutdown.clone()).map_err(RuntimeError::Signals)?;

        let servers_token = CancellationToken::new();
        let servers = observability::serve(
            &options.observability,
            metrics.clone(),
            readiness.clone(),
            servers_token.clone(),
        )
        .await
        .map_err(RuntimeError::Serve)?;

        let own_namespace = own_namespace(&options, &client);
        let recorder = EventRecorder::new(
            client.clone(),
            options.name.clone(),
            options.observability.events_addr.clone(),
        );

        // Leader election: every replica watches (so a standby is ready and takes over with a
        // warm cache), only the leader reconciles, whatever the kind.
        let election_token = CancellationToken::new();
        let (leading, election) = if options.leader_election.enable_leader_election {
            let elector = LeaderElector::new(
                client.clone(),
                &own_namespace,
                &lease_name(&options.name, &options.runtime.watch_label_selector),
                default_identity(),
                (&options.leader_election).into(),
            )
            .map_err(RuntimeError::LeaderElection)?;
            let leading = elector.subscribe();
            (
                leading,
                Some(tokio::spawn(elector.run(election_token.clone()))),
            )
        } else {
            (always_leader(), None)
        };

        let name: Arc<str> = options.name.clone().into();
        let stop = CancellationToken::new();
        let mut loops = JoinSet::new();
        let mut kinds = HashMap::new();
        for controller in controllers {
            let env = LoopEnv {
                client: client.clone(),
                name: name.clone(),
                recorder: recorder.clone(),
                metrics: metrics.clone(),
                readiness: readiness.clone(),
                check: controller.check,
                leading: leading.clone(),
                stop: stop.clone(),
                runtime: options.runtime.clone(),
                policy: options.requeue_policy(),
                namespace: own_namespace.clone(),
                shutdown_timeout: options.shutdown_timeout,
            };
            let handle = loops.spawn((controller.start)(env));
            kinds.insert(handle.id(), controller.kind);
        }
        readiness.set_ready(true);

        // Run until shutdown, lost leadership, or a controller stopping on its own.
        let mut leading_watch = leading.clone();
        let lost = async move {
            // Lost means: we led, and now we do not. A closed channel without that sequence
            // (leader election disabled) never resolves.
            let led = leading_watch.wait_for(|&l| l).await.is_ok();
            if !(led && leading_watch.wait_for(|&l| !l).await.is_ok()) {
                std::future::pending::<()>().await;
            }
        };
        let mut result = Ok(());
        tokio::select! {
            () = shutdown.cancelled() => {
                tracing::info!("shutdown requested; finishing in-flight reconciles");
            }
            () = lost => {
                tracing::error!("leadership lost; stopping reconciles");
            }
            Some(ended) = loops.join_next_with_id() => {
                let id = match &ended {
                    Ok((id, ())) => *id,
                    Err(join) => join.id(),
                };
                let kind = kinds.get(&id).cloned().unwrap_or_default();
                tracing::error!(%kind, "controller stopped on its own; stopping the others");
                result = Err(RuntimeError::ControllerStopped { kind });
            }
        }

        // Drain every controller before anything else goes.
        readiness.set_ready(false);
        stop.cancel();
        while let Some(ended) = loops.join_next_with_id().await {
            if let Err(join) = ended {
                let kind = kinds.get(&join.id()).cloned().unwrap_or_default();
                tracing::error!(%kind, error = %join, "controller task failed");
                if result.is_ok() {
                    result = Err(RuntimeError::ControllerStopped { kind });
                }
            }
        }

        // Hand leadership over only once nothing reconciles any more.
        election_token.cancel();
        if let Some(election) = election {
            match election.await {
                Ok(Ok(())) => {}
                Ok(Err(err)) => result = Err(RuntimeError::LeaderElection(err)),
                Err(join) => tracing::error!(error = %join, "leader election task failed"),
            }
        }
        if tokio::time::timeout(EVENT_FLUSH_TIMEOUT, recorder.flush())
            .await
            .is_err()
        {
            tracing::warn!("events were still being delivered at shutdown");
        }
        servers_token.cancel();
        if let Err(err) = servers.wait().await {
            tracing::warn!(
                error = &err as &dyn std::error::Error,
                "endpoint server error"
            );
        }
        tracing::info!("controllers stopped");
        result
    }
}

/// The `/readyz` check of the controller of `kind`: `gitrepository-controller`.
fn readiness_check(kind: &str) -> String {
    format!("{}-controller", kind.to_ascii_lowercase())
}

/// The process's own namespace; see [`ControllerOptions::namespace`].
fn own_namespace(options: &ControllerOptions, client: &Client) -> String {
    if let Some(ns) = options.namespace.as_ref().filter(|ns| !ns.is_empty()) {
        return ns.clone();
    }
    if let Ok(ns) = std::env::var(RUNTIME_NAMESPACE_ENV)
        && !ns.is_empty()
    {
        return ns;
    }
    if let Ok(ns) =
        std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        && !ns.trim().is_empty()
    {
        return ns.trim().to_owned();
    }
    client.default_namespace().to_owned()
}

/// Cancels `token` on SIGTERM or SIGINT.
fn spawn_signal_handler(token: CancellationToken) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("received SIGTERM"),
            _ = int.recv() => tracing::info!("received SIGINT"),
            () = token.cancelled() => return,
        }
        token.cancel();
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_checks_are_named_after_the_kind() {
        assert_eq!(readiness_check("GitRepository"), "gitrepository-controller");
        assert_eq!(readiness_check("OCIRepository"), "ocirepository-controller");
    }
}
