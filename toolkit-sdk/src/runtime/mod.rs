//! The reconcile runtime: a controller implements [`Reconciler`] for a [`FluxObject`] kind, and
//! [`Controller`] does the rest, with kube-runtime underneath.
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
//! 8. **Event on change only**: when `Ready`'s status, reason or message changed, or when the
//!    [`Outcome`] asks for one; recorded as a Kubernetes Event and POSTed to `--events-addr`.
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
//! With `--enable-leader-election`, every replica watches (and is ready once its watch has
//! listed the objects) but only the holder of the `<name>-leader-election` Lease reconciles
//! (plus a hash of `--watch-label-selector` when set, so each shard elects its own leader).
//! On SIGTERM or SIGINT the controller stops taking work, lets in-flight reconciles finish
//! (bounded by [`ControllerOptions::shutdown_timeout`]), then releases the Lease so a standby
//! takes over at once, flushes events, and stops the endpoints. A replica that loses the Lease
//! stops reconciling and [`Controller::run`] returns an error, so the process exits and is
//! restarted, as in Flux.
//!
//! # Caveats
//!
//! The status type must serialize every field the controller wants to keep: fields that the
//! controller stops sending are removed by the server-side apply.

pub mod connect;
mod controller;
mod object;
mod reconciler;
pub mod schedule;
pub mod status;
pub mod trigger;

pub use connect::{ConnectError, ConnectOptions, connect, connect_with};
pub use controller::{
    Controller, ControllerOptions, DEFAULT_SHUTDOWN_TIMEOUT, RUNTIME_NAMESPACE_ENV, RuntimeError,
};
pub use object::{FluxObject, FluxStatus};
pub use reconciler::{Context, Outcome, Reconciler};
