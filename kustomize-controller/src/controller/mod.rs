//! The kustomize-controller process: the Kustomization reconciler on the `toolkit_sdk`
//! runtime, plus the watch that reconciles Kustomizations as soon as their source publishes a
//! new revision.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kustomize_controller::controller::RunError> {
//! use clap::Parser;
//! use kustomize_controller::controller::{self, args::Args};
//!
//! let args = Args::parse();
//! controller::run(args.config(), args.kubeconfig.as_deref()).await
//! # }
//! ```
//!
//! - [`kustomization`]: the reconcile, step by step;
//! - [`source`]: reading any source kind, and the new-revision watch;
//! - [`generate`]: Flux's overlay written before the build;
//! - [`client`]: impersonation and remote clusters;
//! - [`args`]: the binary's flags (Flux's names and defaults).
//!
//! # Guarantees
//!
//! - Nothing is pruned after a failed fetch, build or apply: the inventory changes only after
//!   a successful apply, and only objects of the previous inventory that carry this
//!   Kustomization's owner labels are deleted.
//! - One discovery cache serves every Kustomization of the process (local cluster).
//! - Secrets (decryption keys, substitution values, kubeconfigs) never reach logs, events or
//!   status messages from this module.

pub mod args;
pub mod artifacts;
pub mod client;
pub mod generate;
pub mod kustomization;
pub mod source;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::artifact_fetch::{ArtifactFetcher, FetchLimits, RetryPolicy};
use toolkit_sdk::metrics::Metrics;
use toolkit_sdk::runtime::{ControllerOptions, Manager, RuntimeError};

use crate::apply::ApiCache;

pub use self::kustomization::KustomizationReconciler;

/// The controller's name: field manager of its applies and status writes,
/// `reportingController` of its events, prefix of its leader election Lease.
pub const CONTROLLER_NAME: &str = "kustomize-controller";

/// The controller's own settings (besides the runtime's).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--default-service-account`: impersonated when a Kustomization names none.
    pub default_service_account: Option<String>,
    /// `--no-cross-namespace-refs`: refuse sources in other namespaces.
    pub no_cross_namespace_refs: bool,
    /// `--no-remote-bases`: refuse remote bases (our engine never fetches them, so this only
    /// documents intent).
    pub no_remote_bases: bool,
    /// `--override-manager`: field managers whose fields are taken over on apply.
    pub override_managers: Vec<String>,
    /// `--requeue-dependency`: the delay before checking dependencies and missing artifacts
    /// again.
    pub dependency_requeue: Duration,
    /// Undefined variables without a default are errors (Flux's `StrictPostBuildSubstitutions`
    /// feature gate).
    pub strict_substitutions: bool,
    /// `$SOURCE_CONTROLLER_LOCALHOST`: the `host[:port]` that replaces the one of artifact URLs.
    pub source_localhost: Option<String>,
}

/// How the kustomize-controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime options (name, flags, own namespace).
    pub options: ControllerOptions,
    /// The controller's own settings.
    pub settings: Settings,
    /// Artifact size limits.
    pub fetch_limits: FetchLimits,
}

impl Config {
    /// A configuration with Flux's defaults.
    pub fn new() -> Self {
        Self {
            options: ControllerOptions::new(CONTROLLER_NAME),
            settings: Settings {
                dependency_requeue: Duration::from_secs(30),
                source_localhost: std::env::var("SOURCE_CONTROLLER_LOCALHOST")
                    .ok()
                    .filter(|v| !v.is_empty()),
                ..Settings::default()
            },
            fetch_limits: FetchLimits::default(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}

/// Unpacked artifacts kept for reuse: a few revisions of a few sources.
const ARTIFACTS_KEPT: usize = 16;

/// Why the kustomize-controller could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The client configuration could not be loaded.
    #[error("cannot load the Kubernetes client configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The API server could not be reached.
    #[error("cannot connect to the Kubernetes API server")]
    Connect(#[source] toolkit_sdk::runtime::ConnectError),
    /// The HTTP client for artifacts could not be built.
    #[error("cannot build the HTTP client for artifacts")]
    HttpClient(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The directory of unpacked artifacts could not be created.
    #[error("cannot create the directory for unpacked artifacts")]
    ArtifactCache(#[source] std::io::Error),
    /// The controller stopped with an error (endpoints, leader election, signals).
    #[error("the controller stopped with an error")]
    Runtime(#[source] RuntimeError),
}

/// A running kustomize-controller.
#[derive(Debug)]
pub struct KustomizeController {
    metrics: Metrics,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RunError>>,
}

impl KustomizeController {
    /// Starts the controller: the Kustomization reconciler and the source watch, with clients
    /// derived from `kube_config` (impersonation needs the configuration, not just a client).
    ///
    /// # Errors
    /// [`RunError::Config`] or [`RunError::HttpClient`] when the clients cannot be built.
    /// Errors of the running controller are returned by [`wait`](Self::wait).
    pub fn start(config: Config, kube_config: kube::Config) -> Result<Self, RunError> {
        toolkit_sdk::tls::install_crypto_provider();
        let Config {
            options,
            mut settings,
            fetch_limits,
        } = config;
        settings.dependency_requeue = options.dependency_requeue;
        let client =
            Client::try_from(kube_config.clone()).map_err(|e| RunError::Config(Box::new(e)))?;
        let http = toolkit_sdk::tls::http_client_builder()
            .build()
            .map_err(|e| RunError::HttpClient(Box::new(e)))?;
        let fetcher = ArtifactFetcher::new(http, fetch_limits, RetryPolicy::default());
        let cache = ApiCache::new();
        let revisions = source::Revisions::new();
        let stop = CancellationToken::new();
        let artifacts = Arc::new(
            artifacts::ArtifactCache::new(ARTIFACTS_KEPT).map_err(RunError::ArtifactCache)?,
        );
        let access = source::ArtifactAccess {
            cache: artifacts.clone(),
            fetcher: fetcher.clone(),
            source_localhost: settings.source_localhost.clone(),
        };
        let shared = Arc::new(kustomization::Shared {
            clients: client::Clients::new(kube_config, client.clone(), cache),
            fetcher,
            artifacts: artifacts.clone(),
            revisions: revisions.clone(),
            settings,
            stop: stop.clone(),
        });

        let watch_namespace = if options.runtime.watch_all_namespaces {
            None
        } else {
            options.namespace.clone().or_else(|| {
                std::env::var(toolkit_sdk::runtime::RUNTIME_NAMESPACE_ENV)
                    .ok()
                    .filter(|ns| !ns.is_empty())
            })
        };
        let (requests, requested) = futures::channel::mpsc::unbounded();
        let watcher = source::SourceWatcher::new(
            client.clone(),
            revisions,
            watch_namespace,
            options.runtime.watch_label_selector.clone(),
            requests,
        )
        .with_artifacts(access);

        let metrics = Metrics::new();
        let manager = Manager::new(options)
            .with_metrics(metrics.clone())
            .with_controller_requested_by(KustomizationReconciler::new(shared), requested);
        let shutdown = manager.shutdown_token();
        let task = tokio::spawn(async move {
            let watch = tokio::spawn(watcher.run(stop.clone()));
            let result = manager.run(client).await.map_err(RunError::Runtime);
            stop.cancel();
            let _ = watch.await;
            result
        });
        Ok(Self {
            metrics,
            shutdown,
            task,
        })
    }

    /// The metrics registry (served on `--metrics-addr`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token that stops the controller gracefully (like SIGTERM) when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the controller has stopped.
    ///
    /// # Errors
    /// The controller's error.
    pub async fn wait(self) -> Result<(), RunError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Stops the controller gracefully and waits for it.
    ///
    /// # Errors
    /// As [`wait`](Self::wait).
    pub async fn stop(self) -> Result<(), RunError> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Loads the client configuration (`kubeconfig`, or the usual inference), checks that the API
/// server answers, and runs the kustomize-controller until SIGTERM/SIGINT.
///
/// # Errors
/// Fails fast when the API server cannot be reached, and later when the controller fails (for
/// example when this replica loses its leader Lease).
pub async fn run(config: Config, kubeconfig: Option<&Path>) -> Result<(), RunError> {
    toolkit_sdk::tls::install_crypto_provider();
    // Fail fast with the SDK's clear message when the API server is not there.
    toolkit_sdk::runtime::connect(kubeconfig)
        .await
        .map_err(RunError::Connect)?;
    let kube_config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| RunError::Config(Box::new(e)))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| RunError::Config(Box::new(e)))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::Config(Box::new(e)))?,
    };
    KustomizeController::start(config, kube_config)?
        .wait()
        .await
}
