//! The trait a controller implements, what it returns, and what it gets to work with.

use std::borrow::Cow;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;

use super::object::FluxObject;
use crate::conditions::reasons;
use crate::error::ReconcileError;

/// The logic of one controller for one kind. The runtime calls it; see the
/// [module docs](super) for what happens around each call.
///
/// # Guarantees
/// - Never called twice at the same time for the same object.
/// - [`reconcile`](Self::reconcile) is not called for suspended objects nor for objects being
///   deleted; [`cleanup`](Self::cleanup) is called once an object with the finalizer is deleted
///   (unless it is suspended), and the finalizer is removed only after it succeeds.
pub trait Reconciler: Send + Sync + 'static {
    /// The reconciled kind.
    type Object: FluxObject;

    /// Negative-polarity condition types (such as `FetchFailed`) that errors of this reconciler
    /// may name with [`ReconcileError::on_condition`]. They exist only while true: the runtime
    /// removes them at the end of every reconcile except the one that sets them.
    const NEGATIVE_POLARITY: &'static [&'static str] = &[];

    /// Runs the controller's ordered steps, stopping at the first error.
    ///
    /// `status` is a working copy of the object's status: update your own fields (and any extra
    /// conditions) there; the runtime writes it in one server-side apply after this returns,
    /// whatever the result. `Ready`, `Reconciling`, `Stalled`, `observedGeneration` and
    /// `lastHandledReconcileAt` are the runtime's: they are overwritten.
    fn reconcile(
        &self,
        obj: &Self::Object,
        status: &mut <Self::Object as FluxObject>::Status,
        ctx: &Context,
    ) -> impl Future<Output = Result<Outcome, ReconcileError>> + Send;

    /// Releases what the object owns outside Kubernetes garbage collection, before the
    /// finalizer is removed. The default does nothing.
    fn cleanup(
        &self,
        obj: &Self::Object,
        ctx: &Context,
    ) -> impl Future<Output = Result<(), ReconcileError>> + Send {
        let _ = (obj, ctx);
        async { Ok(()) }
    }
}

/// What a successful reconcile reports: the `Ready=True` reason and message, and optionally a
/// different requeue delay or an event even when `Ready` did not change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub(crate) reason: Cow<'static, str>,
    pub(crate) message: String,
    pub(crate) requeue_after: Option<Duration>,
    pub(crate) force_event: bool,
}

impl Outcome {
    /// `Ready=True` with reason `Succeeded` and `message`.
    pub fn ready(message: impl Into<String>) -> Self {
        Self {
            reason: Cow::Borrowed(reasons::SUCCEEDED),
            message: message.into(),
            requeue_after: None,
            force_event: false,
        }
    }

    /// Uses `reason` for `Ready=True` instead of `Succeeded` (for example
    /// `ReconciliationSucceeded`).
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Reconciles again after `delay` (jittered) instead of `spec.interval`.
    pub fn requeue_after(mut self, delay: Duration) -> Self {
        self.requeue_after = Some(delay);
        self
    }

    /// Emits an event for this reconcile even if `Ready` is unchanged (for example when a new
    /// revision was applied with the same message shape).
    pub fn with_event(mut self) -> Self {
        self.force_event = true;
        self
    }

    /// The `Ready` reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The `Ready` message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// What a reconcile gets besides the object: the client, the controller's name (use it as the
/// field manager of your own server-side applies), and a way to report the revision.
#[derive(Clone)]
pub struct Context {
    client: Client,
    controller_name: Arc<str>,
    span: tracing::Span,
    revision: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("controller_name", &self.controller_name)
            .field("revision", &self.revision())
            .finish_non_exhaustive()
    }
}

impl Context {
    pub(crate) fn new(client: Client, controller_name: Arc<str>, span: tracing::Span) -> Self {
        Self {
            client,
            controller_name,
            span,
            revision: Arc::new(Mutex::new(None)),
        }
    }

    /// A client for the API server (cheap to clone).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The controller's name, e.g. `greeter-controller`: the field manager of its writes and
    /// the `reportingController` of its events.
    pub fn controller_name(&self) -> &str {
        &self.controller_name
    }

    /// Records the revision this reconcile works on: it is added to the reconcile's tracing
    /// span (so every log line carries it) and to the event metadata (`<group>/revision`).
    pub fn set_revision(&self, revision: impl Into<String>) {
        let revision = revision.into();
        self.span.record("revision", revision.as_str());
        *self
            .revision
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(revision);
    }

    /// The revision set with [`set_revision`](Self::set_revision), if any.
    pub fn revision(&self) -> Option<String> {
        self.revision
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
