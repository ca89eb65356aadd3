//! `toolkit-sdk`: the runtime every Ferroflux controller is built on.
//!
//! It holds the Flux API vocabulary ([`api`]), the condition helpers ([`conditions`]),
//! the reconcile error type ([`error`]), the reconcile runtime ([`runtime`]) with events,
//! metrics, health endpoints and leader election, the shared command-line flags ([`flags`]),
//! and the client side of artifacts ([`artifact_fetch`]).
//!
//! A controller built on it implements one trait, [`runtime::Reconciler`], and gets the
//! reconcile shape of the design contract for free: finalizer, suspend, `Reconciling`,
//! ordered steps, a summarised `Ready`, one status write, an event on change, and a
//! requeue at the interval (with jitter) or a backoff on failure.

pub mod api;
pub mod artifact_fetch;
pub mod cel;
pub mod conditions;
pub mod error;
pub mod events;
pub mod flags;
pub mod leader;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod observability;
pub mod runtime;
pub mod semver;
pub mod tls;
