//! The HTTP endpoints a controller exposes besides its work: `/metrics`, `/healthz`, `/readyz`.
//!
//! [`serve`] binds `--metrics-addr` (serving `/metrics`) and `--health-addr` (serving
//! `/healthz` and `/readyz`) and serves them until a [`CancellationToken`] is cancelled. When
//! both flags name the same address, one listener serves all three paths.
//!
//! - `/healthz` (liveness) answers `200 ok` while the process serves HTTP.
//! - `/readyz` answers `200` when every readiness check passes and `503` otherwise; the body
//!   lists each check as `[+]name ok` or `[-]name failed: reason`, like Kubernetes components.
//! - `/metrics` is the OpenMetrics text of [`Metrics`].
//!
//! Readiness is driven by the runtime through a [`Readiness`] handle:
//!
//! ```
//! use toolkit_sdk::observability::Readiness;
//!
//! let readiness = Readiness::new();           // not ready until told otherwise
//! assert!(!readiness.is_ready());
//! readiness.set_check("informers-synced", Ok(()));
//! readiness.set_ready(true);
//! assert!(readiness.is_ready());
//! readiness.set_check("leader-lease", Err("lost".into()));
//! assert!(!readiness.is_ready());
//! ```
//!
//! # Errors
//!
//! Binding errors name the flag and the address, e.g. `--metrics-addr 127.0.0.1:8080 is
//! already in use; choose another address with --metrics-addr`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::flags::{ListenAddr, ObservabilityArgs};
use crate::metrics::{self, Metrics};

/// Name of the check that [`Readiness::set_ready`] sets.
pub const READY_CHECK: &str = "ready";

/// Shared, cloneable readiness state: a list of named checks that must all pass.
///
/// A new handle holds one failing check, [`READY_CHECK`] ("not ready yet"), so a controller
/// is not ready until its runtime says so.
#[derive(Clone, Debug)]
pub struct Readiness {
    checks: Arc<RwLock<BTreeMap<String, Result<(), String>>>>,
}

impl Default for Readiness {
    fn default() -> Self {
        Self::new()
    }
}

impl Readiness {
    /// A handle that reports not ready until [`set_ready(true)`](Self::set_ready).
    pub fn new() -> Self {
        let mut checks = BTreeMap::new();
        checks.insert(READY_CHECK.to_owned(), Err("not ready yet".to_owned()));
        Self {
            checks: Arc::new(RwLock::new(checks)),
        }
    }

    /// Sets the [`READY_CHECK`] check: the runtime's own verdict.
    pub fn set_ready(&self, ready: bool) {
        self.set_check(
            READY_CHECK,
            if ready {
                Ok(())
            } else {
                Err("not ready".to_owned())
            },
        );
    }

    /// Adds or updates the check `name`: `Ok(())` passes, `Err(reason)` fails with a reason
    /// shown on `/readyz`.
    pub fn set_check(&self, name: &str, result: Result<(), String>) {
        let mut checks = self
            .checks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checks.insert(name.to_owned(), result);
    }

    /// Removes the check `name`, if present.
    pub fn remove_check(&self, name: &str) {
        let mut checks = self
            .checks
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        checks.remove(name);
    }

    /// True when every check passes.
    pub fn is_ready(&self) -> bool {
        self.snapshot().values().all(Result::is_ok)
    }

    /// A copy of every check and its result, by name.
    pub fn snapshot(&self) -> BTreeMap<String, Result<(), String>> {
        self.checks
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Why the endpoints could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Another process (or another listener of ours) holds the address.
    #[error("{flag} {addr} is already in use; choose another address with {flag}")]
    AddrInUse {
        /// The flag that named the address, e.g. `--metrics-addr`.
        flag: &'static str,
        /// The address as given.
        addr: ListenAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Binding failed for another reason (no such local address, permission denied, ...).
    #[error("cannot listen on {flag} {addr}; choose another address with {flag}")]
    Bind {
        /// The flag that named the address.
        flag: &'static str,
        /// The address as given.
        addr: ListenAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The server stopped with an I/O error after it started.
    #[error("serving {flag} {addr} failed")]
    Serve {
        /// The flag that named the address.
        flag: &'static str,
        /// The address as given.
        addr: ListenAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
}

/// The running endpoints. Dropping it does not stop them: cancel the token given to
/// [`serve`], then [`wait`](Self::wait).
#[derive(Debug)]
pub struct ObservabilityServer {
    metrics_addr: SocketAddr,
    health_addr: SocketAddr,
    tasks: JoinSet<Result<(), ServeError>>,
}

impl ObservabilityServer {
    /// The address `/metrics` is bound to (the real port when the flag said port 0).
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The address `/healthz` and `/readyz` are bound to.
    pub fn health_addr(&self) -> SocketAddr {
        self.health_addr
    }

    /// Waits until the servers have stopped (after cancellation, once in-flight requests are
    /// answered) and returns the first error, if any.
    pub async fn wait(mut self) -> Result<(), ServeError> {
        let mut result = Ok(());
        while let Some(joined) = self.tasks.join_next().await {
            match joined {
                Ok(Err(err)) if result.is_ok() => result = Err(err),
                Ok(_) => {}
                Err(join_err) if join_err.is_panic() => {
                    std::panic::resume_unwind(join_err.into_panic())
                }
                Err(_) => {}
            }
        }
        result
    }
}

#[derive(Clone)]
struct AppState {
    metrics: Metrics,
    readiness: Readiness,
}

/// Binds `--metrics-addr` and `--health-addr` from `args` and serves the endpoints in the
/// background until `shutdown` is cancelled.
///
/// Returns once both addresses are bound, so a port conflict is reported here, before the
/// controller starts any work.
pub async fn serve(
    args: &ObservabilityArgs,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<ObservabilityServer, ServeError> {
    serve_on(
        args.metrics_addr,
        args.health_addr,
        metrics,
        readiness,
        shutdown,
    )
    .await
}

/// [`serve`] with explicit addresses.
pub async fn serve_on(
    metrics_addr: ListenAddr,
    health_addr: ListenAddr,
    metrics: Metrics,
    readiness: Readiness,
    shutdown: CancellationToken,
) -> Result<ObservabilityServer, ServeError> {
    let state = AppState { metrics, readiness };
    let metrics_routes = Router::new().route("/metrics", get(metrics_handler));
    let health_routes = Router::new()
        .route("/healthz", get(healthz_handler))
        .route("/readyz", get(readyz_handler));

    let mut tasks = JoinSet::new();
    let metrics_listener = bind("--metrics-addr", metrics_addr).await?;
    let bound_metrics = local_addr("--metrics-addr", metrics_addr, &metrics_listener)?;

    let bound_health = if metrics_addr.socket_addr() == health_addr.socket_addr()
        && metrics_addr.socket_addr().port() != 0
    {
        let router = metrics_routes.merge(health_routes).with_state(state);
        spawn_server(
            &mut tasks,
            "--metrics-addr",
            metrics_addr,
            metrics_listener,
            router,
            shutdown,
        );
        bound_metrics
    } else {
        let health_listener = bind("--health-addr", health_addr).await?;
        let bound_health = local_addr("--health-addr", health_addr, &health_listener)?;
        spawn_server(
            &mut tasks,
            "--metrics-addr",
            metrics_addr,
            metrics_listener,
            metrics_routes.with_state(state.clone()),
            shutdown.clone(),
        );
        spawn_server(
            &mut tasks,
            "--health-addr",
            health_addr,
            health_listener,
            health_routes.with_state(state),
            shutdown,
        );
        bound_health
    };
    tracing::info!(metrics_addr = %bound_metrics, health_addr = %bound_health, "serving metrics and health probes");
    Ok(ObservabilityServer {
        metrics_addr: bound_metrics,
        health_addr: bound_health,
        tasks,
    })
}

async fn bind(flag: &'static str, addr: ListenAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr.socket_addr())
        .await
        .map_err(|source| {
            if source.kind() == io::ErrorKind::AddrInUse {
                ServeError::AddrInUse { flag, addr, source }
            } else {
                ServeError::Bind { flag, addr, source }
            }
        })
}

fn local_addr(
    flag: &'static str,
    addr: ListenAddr,
    listener: &TcpListener,
) -> Result<SocketAddr, ServeError> {
    listener
        .local_addr()
        .map_err(|source| ServeError::Bind { flag, addr, source })
}

fn spawn_server(
    tasks: &mut JoinSet<Result<(), ServeError>>,
    flag: &'static str,
    addr: ListenAddr,
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
) {
    tasks.spawn(async move {
        axum::serve(crate::net::no_delay(listener), router)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
            .map_err(|source| ServeError::Serve { flag, addr, source })
    });
}

async fn metrics_handler(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.encode(),
    )
}

async fn healthz_handler() -> &'static str {
    "ok"
}

async fn readyz_handler(State(state): State<AppState>) -> impl IntoResponse {
    let checks = state.readiness.snapshot();
    let mut body = String::new();
    let mut ready = true;
    for (name, result) in &checks {
        let _ = match result {
            Ok(()) => writeln!(body, "[+]{name} ok"),
            Err(reason) => {
                ready = false;
                writeln!(body, "[-]{name} failed: {reason}")
            }
        };
    }
    if ready {
        body.push_str("readyz check passed\n");
        (StatusCode::OK, body)
    } else {
        body.push_str("readyz check failed\n");
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}
