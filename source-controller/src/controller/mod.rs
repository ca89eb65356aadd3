//! The source-controller process: the GitRepository and OCIRepository reconcilers on the
//! `toolkit_sdk` runtime, sharing one artifact [`Storage`] and its HTTP file server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), source_controller::controller::RunError> {
//! use clap::Parser;
//! use source_controller::controller::{self, args::Args};
//!
//! let args = Args::parse();
//! controller::run(args.config(), args.kubeconfig.as_deref()).await
//! # }
//! ```
//!
//! - [`git_repository`]: a `GitRepository` becomes the archive of a commit's tree;
//! - [`oci_repository`]: an `OCIRepository` becomes the archive of one layer of an OCI artifact;
//! - [`args`]: the binary's flags (Flux's names and defaults).
//!
//! # Guarantees
//!
//! - The storage file server is bound before any reconcile runs, so every URL written into
//!   `status.artifact.url` is served by the time a consumer reads it.
//! - An artifact recorded in a status is checked against the disk at the start of every
//!   reconcile: missing (an emptied volume after a restart) or not matching its digest, it
//!   is rebuilt rather than trusted. A file is re-hashed only when its size or modification
//!   time differs from what this process last stored or verified.
//! - A failed fetch or build leaves the previous artifact in storage and in the status, so
//!   consumers keep getting the last good content.
//! - Deleting an object removes every artifact stored for it.
//! - Both kinds run under one [`toolkit_sdk::runtime::Manager`]: one `/metrics` registry, one
//!   `/readyz` (checks `gitrepository-controller` and `ocirepository-controller`), one
//!   `source-controller-leader-election` Lease with one identity, one event recorder. On
//!   SIGTERM both drain before the Lease is released; the file server stops last.
//! - A new artifact produces exactly one event, Flux's `NewArtifact`, with the revision and
//!   digest as metadata.

pub mod args;
mod common;
pub mod git_repository;
pub mod oci_repository;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use kube::Client;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::flags::ListenAddr;
use toolkit_sdk::metrics::Metrics;
use toolkit_sdk::runtime::{ConnectError, ControllerOptions, Manager, RuntimeError, connect};

use crate::storage::{self, ArchiveLimits, Retention, Storage, StorageError};

pub use self::git_repository::GitRepositoryReconciler;
pub use self::oci_repository::OciRepositoryReconciler;

/// The controller's name: field manager of its status writes, `reportingController` of its
/// events, prefix of its leader election Lease.
pub const CONTROLLER_NAME: &str = "source-controller";

/// How the source-controller runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The runtime options of the process, shared by both controllers (name, flags, own
    /// namespace).
    pub options: ControllerOptions,
    /// The storage directory (`--storage-path`), created if missing.
    pub storage_path: PathBuf,
    /// Where the artifact file server listens (`--storage-addr`); port 0 picks a free port.
    pub storage_addr: ListenAddr,
    /// The address written into artifact URLs (`--storage-adv-addr`); `None` derives it from
    /// the bound storage address as Flux does (see [`args::derived_advertised_addr`]).
    pub storage_adv_addr: Option<String>,
    /// Garbage collection of superseded artifacts.
    pub retention: Retention,
    /// The size and entry limits every artifact is built under (`--artifact-max-size`).
    pub artifact_limits: ArchiveLimits,
}

impl Config {
    /// A configuration with Flux's defaults, storing under `storage_path`.
    pub fn new(storage_path: impl Into<PathBuf>) -> Self {
        Self {
            options: ControllerOptions::new(CONTROLLER_NAME),
            storage_path: storage_path.into(),
            storage_addr: ListenAddr::all_interfaces(9090),
            storage_adv_addr: None,
            retention: Retention::default(),
            artifact_limits: ArchiveLimits::default(),
        }
    }
}

/// Why the source-controller could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The API server could not be reached.
    #[error("cannot connect to the Kubernetes API server")]
    Connect(#[source] ConnectError),
    /// The storage directory could not be created.
    #[error("cannot use {} as the artifact storage (--storage-path)", path.display())]
    Storage {
        /// The storage path.
        path: PathBuf,
        /// What failed.
        #[source]
        source: StorageError,
    },
    /// The artifact file server could not start or failed.
    #[error("the artifact file server failed (--storage-addr)")]
    FileServer(#[source] storage::ServeError),
    /// The controllers stopped with an error (endpoints, leader election, signals).
    #[error("the controllers stopped with an error")]
    Runtime(#[source] RuntimeError),
}

/// A running source-controller: both controllers and the artifact file server.
#[derive(Debug)]
pub struct SourceController {
    storage_addr: SocketAddr,
    advertised_addr: String,
    storage: Storage,
    metrics: Metrics,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), RunError>>,
}

impl SourceController {
    /// Opens the storage, binds the file server, and starts the GitRepository and
    /// OCIRepository controllers with `client`. Returns once the file server listens; the
    /// controllers bind their endpoints and start watching in the background.
    ///
    /// # Errors
    ///
    /// [`RunError::Storage`] or [`RunError::FileServer`] when the storage cannot be used.
    /// Errors of the controllers themselves are returned by [`wait`](Self::wait).
    pub async fn start(config: Config, client: Client) -> Result<Self, RunError> {
        toolkit_sdk::tls::install_crypto_provider();
        let Config {
            options,
            storage_path,
            storage_addr,
            storage_adv_addr,
            retention,
            artifact_limits,
        } = config;
        std::fs::create_dir_all(&storage_path).map_err(|source| RunError::Storage {
            path: storage_path.clone(),
            source: StorageError::Io {
                context: format!("cannot create {}", storage_path.display()),
                source,
            },
        })?;
        let files_token = CancellationToken::new();
        let file_server = storage::serve(
            storage_path.clone(),
            storage_addr.socket_addr(),
            files_token.clone(),
        )
        .await
        .map_err(RunError::FileServer)?;
        let bound = file_server.local_addr();
        let advertised_addr = storage_adv_addr.unwrap_or_else(|| {
            args::derived_advertised_addr(&storage_addr, bound, &args::hostname())
        });
        let storage = Storage::new(&storage_path, advertised_addr.clone())
            .map_err(|source| RunError::Storage {
                path: storage_path.clone(),
                source,
            })?
            .with_retention(retention);
        tracing::info!(
            path = %storage_path.display(),
            addr = %bound,
            advertised = %advertised_addr,
            "artifact storage ready"
        );

        let shared = Arc::new(common::Shared::new(storage.clone(), artifact_limits));
        let metrics = Metrics::new();
        let manager = Manager::new(options)
            .with_metrics(metrics.clone())
            .with_controller(GitRepositoryReconciler::new(shared.clone()))
            .with_controller(OciRepositoryReconciler::new(shared));
        let shutdown = manager.shutdown_token();
        let task = tokio::spawn(async move {
            let result = manager.run(client).await.map_err(RunError::Runtime);
            // The file server outlives every reconcile that could write a URL to it.
            files_token.cancel();
            let served = file_server.wait().await.map_err(RunError::FileServer);
            result.and(served)
        });
        Ok(Self {
            storage_addr: bound,
            advertised_addr,
            storage,
            metrics,
            shutdown,
            task,
        })
    }

    /// The address the artifact file server is bound to.
    pub fn storage_addr(&self) -> SocketAddr {
        self.storage_addr
    }

    /// The address written into artifact URLs.
    pub fn advertised_addr(&self) -> &str {
        &self.advertised_addr
    }

    /// The artifact storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The metrics registry both controllers record into (served on `--metrics-addr`).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// A token that stops both controllers gracefully (like SIGTERM) when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until both controllers and the file server have stopped: after SIGTERM/SIGINT,
    /// after [`shutdown_token`](Self::shutdown_token) is cancelled, or once the controllers
    /// fail (for example when this replica loses its leader Lease).
    ///
    /// # Errors
    ///
    /// The error of the controllers, else of the file server.
    pub async fn wait(self) -> Result<(), RunError> {
        match self.task.await {
            Ok(result) => result,
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => Ok(()),
        }
    }

    /// Stops both controllers gracefully and waits for them.
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
/// source-controller until SIGTERM/SIGINT.
///
/// # Errors
///
/// Fails fast when the API server cannot be reached or the storage cannot be used, and
/// later when a controller fails (for example when this replica loses its leader Lease).
pub async fn run(config: Config, kubeconfig: Option<&Path>) -> Result<(), RunError> {
    toolkit_sdk::tls::install_crypto_provider();
    let client = connect(kubeconfig).await.map_err(RunError::Connect)?;
    SourceController::start(config, client).await?.wait().await
}
