//! The options of a controller process, its errors, and [`Controller`], the one-kind shortcut
//! for a [`Manager`].

use std::time::Duration;

use kube::Client;
use tokio_util::sync::CancellationToken;

use super::manager::Manager;
use super::reconciler::Reconciler;
use super::schedule::RequeuePolicy;
use crate::flags::{LeaderElectionArgs, ObservabilityArgs, RuntimeArgs};
use crate::leader::LeaderElectionError;
use crate::metrics::Metrics;
use crate::observability::{Readiness, ServeError};

/// Environment variable naming the controller's own namespace (as in Flux).
pub const RUNTIME_NAMESPACE_ENV: &str = "RUNTIME_NAMESPACE";

/// Default bound on finishing in-flight reconciles after a shutdown signal.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// How a controller process runs: its name and the shared flag groups. Every controller of a
/// [`Manager`] shares them.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// The controller's name, e.g. `source-controller`: field manager of the status writes,
    /// `reportingController` of the events, and prefix of the leader election Lease
    /// (`<name>-leader-election`), for every kind the process reconciles.
    pub name: String,
    /// `--concurrent`, retry delays, jitter, and which objects are watched.
    pub runtime: RuntimeArgs,
    /// `--enable-leader-election` and its timings.
    pub leader_election: LeaderElectionArgs,
    /// `--metrics-addr`, `--health-addr`, `--events-addr`.
    pub observability: ObservabilityArgs,
    /// How long to wait before retrying an object that waits on a dependency
    /// (Flux's `--requeue-dependency`, default 30s).
    pub dependency_requeue: Duration,
    /// The controller's own namespace (for `--watch-all-namespaces=false` and the Lease).
    /// `None` reads `$RUNTIME_NAMESPACE`, then the service account's namespace, then the
    /// kubeconfig's default namespace.
    pub namespace: Option<String>,
    /// Bound on finishing in-flight reconciles after SIGTERM/SIGINT.
    pub shutdown_timeout: Duration,
}

impl ControllerOptions {
    /// Options with Flux's defaults for the controller `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            runtime: RuntimeArgs::default(),
            leader_election: LeaderElectionArgs::default(),
            observability: ObservabilityArgs::default(),
            dependency_requeue: Duration::from_secs(30),
            namespace: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }

    pub(super) fn requeue_policy(&self) -> RequeuePolicy {
        RequeuePolicy {
            jitter_percent: f64::from(self.runtime.interval_jitter_percentage),
            min_retry_delay: self.runtime.min_retry_delay,
            max_retry_delay: self.runtime.max_retry_delay,
            dependency_requeue: self.dependency_requeue,
        }
    }
}

/// Why a controller process stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// [`Manager::run`] was called without any controller.
    #[error("the manager has no controller to run")]
    NoControllers,
    /// Two controllers were added for the same kind.
    #[error("more than one controller for kind {kind}")]
    DuplicateKind {
        /// The kind.
        kind: String,
    },
    /// A controller's loop ended (or panicked) while the process was not shutting down.
    #[error("the {kind} controller stopped unexpectedly")]
    ControllerStopped {
        /// The kind it reconciles.
        kind: String,
    },
    /// The metrics or health endpoints could not be served.
    #[error("cannot serve the metrics and health endpoints")]
    Serve(#[source] ServeError),
    /// Leader election could not start or this replica lost the lease.
    #[error("leader election failed")]
    LeaderElection(#[source] LeaderElectionError),
    /// The signal handlers could not be installed.
    #[error("cannot install the SIGTERM/SIGINT handlers")]
    Signals(#[source] std::io::Error),
}

/// A process that reconciles one kind: a [`Manager`] with one controller, for the common
/// case. See the [module docs](super).
///
/// `Controller::new(reconciler, options).run(client)` is
/// `Manager::new(options).with_controller(reconciler).run(client)`.
#[derive(Debug)]
pub struct Controller {
    manager: Manager,
}

impl Controller {
    /// A controller running `reconciler` with `options`.
    pub fn new<R: Reconciler>(reconciler: R, options: ControllerOptions) -> Self {
        Self {
            manager: Manager::new(options).with_controller(reconciler),
        }
    }

    /// Uses `metrics` (which may hold the controller's own metrics) instead of a fresh registry.
    pub fn with_metrics(self, metrics: Metrics) -> Self {
        Self {
            manager: self.manager.with_metrics(metrics),
        }
    }

    /// A token that stops the controller gracefully when cancelled, like SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.manager.shutdown_token()
    }

    /// The readiness handle served on `/readyz` (ready once the watch has listed the objects).
    pub fn readiness(&self) -> Readiness {
        self.manager.readiness()
    }

    /// The [`Manager`] this controller runs in, to add more kinds to.
    pub fn into_manager(self) -> Manager {
        self.manager
    }

    /// Runs until SIGTERM/SIGINT (or the [`shutdown_token`](Self::shutdown_token)), then
    /// finishes in-flight reconciles (bounded by `shutdown_timeout`), hands leadership over,
    /// flushes events and stops the endpoints; see [`Manager::run`].
    ///
    /// # Errors
    /// Returns an error when the endpoints cannot be bound, when leader election cannot start,
    /// or when this replica loses the lease (the process should then exit, as Flux does).
    pub async fn run(self, client: Client) -> Result<(), RuntimeError> {
        self.manager.run(client).await
    }
}
