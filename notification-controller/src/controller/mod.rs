//! The notification-controller process: the Provider, Alert and Receiver reconcilers on one
//! `toolkit_sdk` [`Manager`], the event endpoint (`--events-addr`) and the webhook receiver
//! (`--receiverAddr`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), notification_controller::controller::RunError> {
//! use clap::Parser;
//! use notification_controller::controller::{self, args::Args};
//!
//! let args = Args::parse();
//! controller::run(args.config(), args.kubeconfig.as_deref()).await
//! # }
//! ```
//!
//! - [`provider`]: a Provider is `Ready` when its Secrets exist and its type can be built;
//! - [`alert`]: an Alert is `Ready` when its patterns compile and its Provider is `Ready`;
//! - [`receiver`]: a Receiver gets its `status.webhookPath`;
//! - [`args`]: the binary's flags (Flux's names and defaults).
//!
//! # Guarantees
//!
//! - Both servers are bound before [`NotificationController::start`] returns; every replica
//!   serves them (as in Flux), only the leader reconciles.
//! - On SIGTERM the reconcilers drain first, then both servers stop taking requests, then the
//!   deliveries already started get up to 10 seconds to finish and the Kubernetes Events are
//!   flushed.
//! - One `/metrics` registry holds the reconcile metrics and the intake counters (see
//!   [`crate::intake`]).

pub mod alert;
pub mod args;
pub mod provider;
pub mod receiver;
pub mod secret_changes;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use kube::Client;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::events::EventRecorder;
use toolkit_sdk::flags::ListenAddr;
use toolkit_sdk::metrics::Metrics;
use toolkit_sdk::runtime::{
    ConnectError, ControllerOptions, Manager, RUNTIME_NAMESPACE_ENV, RuntimeError, connect,
};

use crate::intake::{self, Intake, IntakeMetrics, IntakeOptions, ServeError};
use crate::receiver::{self as webhooks, ReceiverServerConfig, ReceiverServerError, ReceiverState};

pub use self::alert::AlertReconciler;
pub use self::provider::ProviderReconciler;
pub use self::receiver::ReceiverReconciler;

/// The controller's name: field manager of its writes, `reportingController` of its events,
/// prefix of its leader election Lease.
pub const CONTROLLER_NAME: &str = "notification-controller";

/// How long deliveries already started may take to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// How the notification-controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime options shared by the three reconcilers (name, flags, own namespace);
    /// `dependency_requeue` is how soon a missing Secret or Provider is checked again.
    pub options: ControllerOptions,
    /// Where the event endpoint listens (`--events-addr`); port 0 picks a free port.
    pub events_addr: ListenAddr,
    /// Where the webhook receiver listens (`--receiverAddr`); port 0 picks a free port.
    pub receiver_addr: ListenAddr,
    /// `--rate-limit-interval`.
    pub rate_limit_interval: Duration,
    /// `--no-cross-namespace-refs`.
    pub no_cross_namespace_refs: bool,
}

impl Config {
    /// Flux's defaults.
    pub fn new() -> Self {
        Self {
            options: ControllerOptions::new(CONTROLLER_NAME),
            events_addr: ListenAddr::all_interfaces(9090),
            receiver_addr: ListenAddr::all_interfaces(9292),
            rate_limit_interval: intake::DEFAULT_RATE_LIMIT_INTERVAL,
            no_cross_namespace_refs: false,
        }
    }

    /// The namespace watched when `--watch-all-namespaces=false` (`None` when all are).
    fn watched_namespace(&self, client: &Client) -> Option<String> {
        if self.options.runtime.watch_all_namespaces {
            return None;
        }
        let namespace = self
            .options
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .or_else(|| {
                std::env::var(RUNTIME_NAMESPACE_ENV)
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
            .or_else(|| {
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
                    .ok()
                    .map(|ns| ns.trim().to_owned())
                    .filter(|ns| !ns.is_empty())
            })
            .unwrap_or_else(|| client.default_namespace().to_owned());
        Some(namespace)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Why the notification-controller could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The API server could not be reached.
    #[error("cannot connect to the Kubernetes API server")]
    Connect(#[source] ConnectError),
    /// The event endpoint could not start or failed.
    #[error("the event server failed (--events-addr)")]
    EventServer(#[source] ServeError),
    /// The webhook receiver could not start or failed.
    #[error("the webhook receiver failed (--receiverAddr {addr})")]
    ReceiverServer {
        /// The receiver address.
        addr: ListenAddr,
        /// What failed.
        #[source]
        source: ReceiverServerError,
    },
    /// The reconcilers stopped with an error (endpoints, leader election, signals).
    #[error("the controllers stopped with an error")]
    Runtime(#[source] RuntimeError),
}

/// A running notification-controller.
#[derive(Debug)]
pub struct NotificationController {
    events_addr: SocketAddr,
    receiver_addr: SocketAddr,
    intake: Intake,
    metrics: Metrics,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RunError>>,
}

impl NotificationController {
    /// Binds both servers and starts the watches and the reconcilers with `client`. Returns once
    /// the servers listen.
    ///
    /// # Errors
    ///
    /// [`RunError::EventServer`] or [`RunError::ReceiverServer`] when an address cannot be
    /// bound. Errors of the reconcilers are returned by [`wait`](Self::wait).
    pub async fn start(config: Config, client: Client) -> Result<Self, RunError> {
        toolkit_sdk::tls::install_crypto_provider();
        let namespace = config.watched_namespace(&client);
        let mut registry = Registry::default();
        let intake_metrics = IntakeMetrics::register(&mut registry);
        let metrics = Metrics::with_registry(registry);

        let servers = CancellationToken::new();
        let recorder = EventRecorder::new(client.clone(), CONTROLLER_NAME, None);
        let intake = Intake::start(
            client.clone(),
            IntakeOptions {
                rate_limit_interval: config.rate_limit_interval,
                no_cross_namespace_refs: config.no_cross_namespace_refs,
                namespace: namespace.clone(),
                ..IntakeOptions::default()
            },
            recorder.clone(),
            intake_metrics,
            servers.clone(),
        );
        let event_server = intake::serve(
            intake.clone(),
            config.events_addr.socket_addr(),
            servers.clone(),
        )
        .await
        .map_err(RunError::EventServer)?;
        let events_addr = event_server.local_addr();

        let receiver_error = |source| RunError::ReceiverServer {
            addr: config.receiver_addr,
            source,
        };
        let listener = tokio::net::TcpListener::bind(config.receiver_addr.socket_addr())
            .await
            .map_err(|err| receiver_error(ReceiverServerError::Bind(err)))?;
        let receiver_addr = listener
            .local_addr()
            .map_err(|err| receiver_error(ReceiverServerError::Bind(err)))?;
        let selector = Some(config.options.runtime.watch_label_selector.clone())
            .filter(|s| !s.trim().is_empty());
        let state = ReceiverState::new(
            client.clone(),
            ReceiverServerConfig {
                namespace: namespace.clone(),
                label_selector: selector.clone(),
                no_cross_namespace_refs: config.no_cross_namespace_refs,
                ..ReceiverServerConfig::new(CONTROLLER_NAME)
            },
        )
        .map_err(receiver_error)?;
        let receiver_server = tokio::spawn(webhooks::serve(listener, state, servers.clone()));

        let recheck = config.options.dependency_requeue;
        let manager = Manager::new(config.options)
            .with_metrics(metrics.clone())
            .with_controller(ProviderReconciler::new(recheck))
            .with_controller(AlertReconciler::new(recheck))
            .with_controller_requested_by(
                ReceiverReconciler::new(),
                secret_changes::receivers_of_changed_secrets(
                    client.clone(),
                    namespace.clone(),
                    selector.clone(),
                ),
            );
        let shutdown = manager.shutdown_token();
        let drained = intake.clone();
        let receiver_addr_flag = config.receiver_addr;
        let task = tokio::spawn(async move {
            let result = manager.run(client).await.map_err(RunError::Runtime);
            servers.cancel();
            let events = event_server.wait().await.map_err(RunError::EventServer);
            let receiver = match receiver_server.await {
                Ok(result) => result.map_err(|source| RunError::ReceiverServer {
                    addr: receiver_addr_flag,
                    source,
                }),
                Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
                Err(_) => Ok(()),
            };
            drained.drain(DRAIN_TIMEOUT).await;
            recorder.flush().await;
            result.and(events).and(receiver)
        });
        Ok(Self {
            events_addr,
            receiver_addr,
            intake,
            metrics,
            shutdown,
            task,
        })
    }

    /// The address the event endpoint is bound to.
    pub fn events_addr(&self) -> SocketAddr {
        self.events_addr
    }

    /// The address the webhook receiver is bound to.
    pub fn receiver_addr(&self) -> SocketAddr {
        self.receiver_addr
    }

    /// The event intake (its counters, its readiness).
    pub fn intake(&self) -> &Intake {
        &self.intake
    }

    /// The metrics registry served on `--metrics-addr`.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token that stops the controller gracefully (like SIGTERM) when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until everything has stopped: after SIGTERM/SIGINT, after the
    /// [`shutdown_token`](Self::shutdown_token) is cancelled, or once the reconcilers fail.
    ///
    /// # Errors
    ///
    /// The error of the reconcilers, else of the servers.
    pub async fn wait(self) -> Result<(), RunError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Stops gracefully and waits.
    ///
    /// # Errors
    ///
    /// As [`wait`](Self::wait).
    pub async fn stop(self) -> Result<(), RunError> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Connects to the API server (`kubeconfig`, or the usual inference) and runs the
/// notification-controller until SIGTERM/SIGINT.
///
/// # Errors
///
/// Fails fast when the API server cannot be reached or an address cannot be bound, and later
/// when a reconciler fails (for example when this replica loses its leader Lease).
pub async fn run(config: Config, kubeconfig: Option<&Path>) -> Result<(), RunError> {
    toolkit_sdk::tls::install_crypto_provider();
    let client = connect(kubeconfig).await.map_err(RunError::Connect)?;
    NotificationController::start(config, client)
        .await?
        .wait()
        .await
}
