//! The reconcile runtime: a controller implements [`Reconciler`] for a [`FluxObject`] kind, and
//! the runtime does the rest, with kube-runtime underneath. A process that reconciles one kind
//! runs a [`Controller`]:
//!
//! ```no_run
//! # use toolkit_sdk::runtime::{Controller, ControllerOptions, Reconciler};
//! # async fn demo<R: Reconciler>(reconciler: R) -> anyhow::Result<()> {
//! let client = toolkit_sdk::runtime::connect(None).await?;
//! Controller::new(reconciler, ControllerOptions::new("greeter-controller"))
//!     .run(client)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # One process, several kinds
//!
//! A process that reconciles several kinds (source-controller: GitRepository, OCIRepository,
//! ...) runs one [`Manager`] with one controller per kind; [`Controller`] is a [`Manager`]
//! with one controller.
//!
//! ```no_run
//! # use toolkit_sdk::runtime::{ControllerOptions, Manager, Reconciler};
//! # async fn demo(git: impl Reconciler, oci: impl Reconciler) -> anyhow::Result<()> {
//! let client = toolkit_sdk::runtime::connect(None).await?;
//! Manager::new(ControllerOptions::new("source-controller"))
//!     .with_controller(git)
//!     .with_controller(oci)
//!     .run(client)
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! The controllers run concurrently, each with its own watch, queue and `--concurrent`
//! workers, and share what the process has once: one `/metrics` registry, one `/healthz`, one
//! `/readyz` with a check per controller (`<kind>-controller`, lower case), one leader
//! election Lease and identity, one event recorder, one SIGTERM/SIGINT handler. They share
//! the name too: it is the field manager and `reportingController` for every kind, as in
//! Flux.
//!
//! # The reconcile shape
//!
//! For every object, one at a time per object and `--concurrent` objects at once:
//!
//! 1. **Deletion.** If the object is being deleted and carries the `finalizers.fluxcd.io`
//!    finalizer, [`Reconciler::cleanup`] runs (skipped while suspended) and the finalizer is
//!    removed once it succeeds. A failed cleanup is retried like a failed reconcile.
//! 2. **Finalizer.** Added if missing (a merge patch guarded by `resourceVersion`).
//! 3. **Suspend.** With `spec.suspend: true` nothing else happens: no status write, no
//!    requeue. Setting it back to `false` changes the spec, which reconciles at once.
//! 4. **Reconciling.** The working copy of the status gets `Reconciling=True` and loses
//!    `Stalled`.
//! 5. **Steps.** [`Reconciler::reconcile`] runs the controller's ordered steps on the working
//!    copy and stops at the first [`ReconcileError`](crate::error::ReconcileError).
//! 6. **Summary.** `Ready`, `Reconciling`, `Stalled`, negative-polarity conditions,
//!    `observedGeneration` and `lastHandledReconcileAt` are derived from the result (see
//!    [`status::finish`]).
//! 7. **One status write**, only if the status changed: server-side apply of the whole status
//!    on the status subresource, field manager = the controller's name, forced.
//! 8. **At most one event**, recorded as a Kubernetes Event and POSTed to `--events-addr`: after
//!    a success, the event the [`Outcome`] chose with [`Outcome::with_event_as`] (for example
//!    `NewArtifact`), else `Ready`'s reason and message when `Ready`'s status, reason or
//!    message changed (or [`Outcome::with_event`] forces it); after a failure, the error's
//!    reason and message when `Ready` changed. Metadata: `revision` (see
//!    [`Context::set_revision`]) and the outcome's [`Outcome::with_metadata`], prefixed with
//!    the object's API group.
//! 9. **Requeue**: after success, `spec.interval` ± `--interval-jitter-percentage`; after a
//!    failure, by the error's class (see [`schedule::RequeuePolicy::after_failure`]):
//!    transient → the object's `spec.retryInterval` or exponential backoff between
//!    `--min-retry-delay` and `--max-retry-delay`; waiting → `--requeue-dependency`; stalled →
//!    not until the spec changes or a reconcile is requested.
//!
//! Each reconcile runs in a tracing span `reconcile` with `kind`, `namespace`, `name` and,
//! once the reconciler calls [`Context::set_revision`], `revision`; its duration is observed in
//! `gotk_reconcile_duration_seconds`.
//!
//! # Triggers
//!
//! Objects are watched with `--watch-label-selector`, in all namespaces or (with
//! `--watch-all-namespaces=false`) only in the controller's own namespace. A watch event
//! reconciles at once only if the generation, the `reconcile.fluxcd.io/requestedAt`
//! annotation or the deletion state changed (see [`trigger`]); the controller's own status
//! writes do not trigger it again.
//!
//! # Leader election and shutdown
//!
//! With `--enable-leader-election`, every replica watches (and is ready once every watch has
//! listed its objects) but only the holder of the `<name>-leader-election` Lease reconciles
//! (plus a hash of `--watch-label-selector` when set, so each shard elects its own leader):
//! one Lease per process, whatever the number of kinds. On SIGTERM or SIGINT every controller
//! stops taking work and lets its in-flight reconciles finish (bounded by
//! [`ControllerOptions::shutdown_timeout`]); once all have, the Lease is released so a standby
//! takes over at once, events are flushed, and the endpoints stop. A replica that loses the
//! Lease stops reconciling every kind and [`Manager::run`] returns an error, so the process
//! exits and is restarted, as in Flux.
//!
//! # Caveats
//!
//! The status type must serialize every field the controller wants to keep: fields that the
//! controller stops sending are removed by the server-side apply.

pub mod connect;
mod controller;
mod manager;
mod object;
mod reconcile_loop;
mod reconciler;
pub mod schedule;
pub mod status;
pub mod trigger;

pub use connect::{ConnectError, ConnectOptions, connect, connect_with};
pub use controller::{
    Controller, ControllerOptions, DEFAULT_SHUTDOWN_TIMEOUT, RUNTIME_NAMESPACE_ENV, RuntimeError,
};
pub use manager::Manager;
pub use object::{FluxObject, FluxStatus};
pub use reconciler::{Context, Outcome, Reconciler};
