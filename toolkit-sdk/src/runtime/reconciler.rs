//! The trait a controller implements, what it returns, and what it gets to work with.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;

use super::object::FluxObject;
use crate::conditions::reasons;
use crate::error::ReconcileError;
use crate::events::EventRecorder;

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

    /// Whether the runtime adds Flux's finalizer (`finalizers.fluxcd.io`) before the first
    /// reconcile, so that [`cleanup`](Self::cleanup) runs before the object goes away. Kinds
    /// with nothing to release, which Flux creates without a finalizer (Provider, Alert), set
    /// it to `false`: their objects are then deleted at once, even while the controller is down.
    const USES_FINALIZER: bool = true;

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
/// different requeue delay and the event to emit.
///
/// # Events
///
/// By default the runtime emits an event (reason and message of `Ready`) only when `Ready`
/// changed. [`with_event`](Self::with_event) emits that event even when `Ready` did not change;
/// [`with_event_as`](Self::with_event_as) emits a reason and message of the reconciler's own
/// instead, and then it is the only event of this reconcile. [`with_metadata`](Self::with_metadata)
/// adds metadata to whichever event is emitted.
///
/// ```
/// use toolkit_sdk::runtime::Outcome;
///
/// // Flux's source-controller: one `NewArtifact` event per new artifact, nothing else.
/// let outcome = Outcome::ready("stored artifact for revision 'main@sha1:0123abcd'")
///     .with_event_as("NewArtifact", "stored artifact for commit 'Add podinfo'")
///     .with_metadata("revision", "main@sha1:0123abcd")
///     .with_metadata("digest", "sha256:2f1e");
/// assert_eq!(outcome.event(), Some(("NewArtifact", "stored artifact for commit 'Add podinfo'")));
/// assert_eq!(outcome.metadata()["digest"], "sha256:2f1e");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub(crate) reason: Cow<'static, str>,
    pub(crate) message: String,
    pub(crate) requeue_after: Option<Duration>,
    pub(crate) force_event: bool,
    pub(crate) event: Option<(Cow<'static, str>, String)>,
    pub(crate) metadata: BTreeMap<String, String>,
}

impl Outcome {
    /// `Ready=True` with reason `Succeeded` and `message`.
    pub fn ready(message: impl Into<String>) -> Self {
        Self {
            reason: Cow::Borrowed(reasons::SUCCEEDED),
            message: message.into(),
            requeue_after: None,
            force_event: false,
            event: None,
            metadata: BTreeMap::new(),
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

    /// Emits the `Ready` event (its reason and message) for this reconcile even if `Ready` is
    /// unchanged (for example when a new revision was applied with the same message shape).
    /// [`with_event_as`](Self::with_event_as) takes precedence.
    pub fn with_event(mut self) -> Self {
        self.force_event = true;
        self
    }

    /// Emits an `Info` event with `reason` and `message` for this reconcile, whether `Ready`
    /// changed or not, *instead of* the `Ready` event: a reconcile emits at most one event.
    /// Use it for what a person wants to be told about, such as Flux's `NewArtifact`.
    pub fn with_event_as(
        mut self,
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        self.event = Some((reason.into(), message.into()));
        self
    }

    /// Adds `key: value` to the metadata of the event this reconcile emits, if any. Keys are
    /// given unprefixed (`digest`) and sent prefixed with the object's API group
    /// (`source.toolkit.fluxcd.io/digest`), like the `revision` from
    /// [`Context::set_revision`], which a `revision` key given here replaces.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
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

    /// The reason and message of the event chosen with [`with_event_as`](Self::with_event_as).
    pub fn event(&self) -> Option<(&str, &str)> {
        self.event
            .as_ref()
            .map(|(reason, message)| (reason.as_ref(), message.as_str()))
    }

    /// The metadata added with [`with_metadata`](Self::with_metadata), unprefixed.
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// The event this outcome emits, if any: `(reason, message, metadata)`, with
    /// `revision` (from [`Context::set_revision`]) under the outcome's own metadata.
    pub(crate) fn event_to_emit(
        &self,
        ready_changed: bool,
        revision: Option<String>,
    ) -> Option<(&str, &str, BTreeMap<String, String>)> {
        let (reason, message) = match &self.event {
            Some((reason, message)) => (reason.as_ref(), message.as_str()),
            None if ready_changed || self.force_event => (self.reason(), self.message()),
            None => return None,
        };
        let mut metadata = BTreeMap::new();
        if let Some(revision) = revision {
            metadata.insert("revision".to_owned(), revision);
        }
        metadata.extend(self.metadata.clone());
        Some((reason, message, metadata))
    }
}

/// What a reconcile gets besides the object: the client, the controller's name (use it as the
/// field manager of your own server-side applies), the process's event recorder, and a way to
/// report the revision.
#[derive(Clone)]
pub struct Context {
    client: Client,
    controller_name: Arc<str>,
    recorder: EventRecorder,
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
    pub(crate) fn new(
        client: Client,
        controller_name: Arc<str>,
        recorder: EventRecorder,
        span: tracing::Span,
    ) -> Self {
        Self {
            client,
            controller_name,
            recorder,
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

    /// The event recorder of the process, shared by all its controllers, for events besides
    /// the one the runtime emits at the end of the reconcile (see [`Outcome`]), such as a
    /// warning about something found and repaired on the way.
    pub fn recorder(&self) -> &EventRecorder {
        &self.recorder
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn emitted(
        outcome: &Outcome,
        ready_changed: bool,
        revision: Option<&str>,
    ) -> Option<(String, String, BTreeMap<String, String>)> {
        outcome
            .event_to_emit(ready_changed, revision.map(str::to_owned))
            .map(|(r, m, md)| (r.to_owned(), m.to_owned(), md))
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn ready_event_only_when_ready_changed_or_forced() {
        let plain = Outcome::ready("done");
        assert_eq!(emitted(&plain, false, Some("r1")), None);
        assert_eq!(
            emitted(&plain, true, Some("r1")),
            Some((
                "Succeeded".to_owned(),
                "done".to_owned(),
                map(&[("revision", "r1")])
            ))
        );
        let forced = Outcome::ready("done").with_reason("Applied").with_event();
        assert_eq!(
            emitted(&forced, false, None),
            Some(("Applied".to_owned(), "done".to_owned(), BTreeMap::new()))
        );
    }

    #[test]
    fn custom_event_replaces_the_ready_event_and_carries_metadata() {
        let outcome = Outcome::ready("stored artifact for revision 'main@sha1:abc'")
            .with_event_as("NewArtifact", "stored artifact for commit 'one'")
            .with_metadata("digest", "sha256:123")
            .with_event();
        let expected = Some((
            "NewArtifact".to_owned(),
            "stored artifact for commit 'one'".to_owned(),
            map(&[("digest", "sha256:123"), ("revision", "main@sha1:abc")]),
        ));
        // Whether Ready changed or not: exactly this one event.
        assert_eq!(emitted(&outcome, true, Some("main@sha1:abc")), expected);
        assert_eq!(emitted(&outcome, false, Some("main@sha1:abc")), expected);
    }

    #[test]
    fn outcome_metadata_wins_over_the_context_revision() {
        let outcome = Outcome::ready("done")
            .with_event_as("NewThing", "made it")
            .with_metadata("revision", "v2");
        let (_, _, metadata) = emitted(&outcome, false, Some("v1")).unwrap();
        assert_eq!(metadata, map(&[("revision", "v2")]));
    }

    #[test]
    fn metadata_without_an_event_emits_nothing() {
        let outcome = Outcome::ready("done").with_metadata("digest", "sha256:1");
        assert_eq!(emitted(&outcome, false, None), None);
        assert_eq!(outcome.event(), None);
        assert_eq!(outcome.metadata(), &map(&[("digest", "sha256:1")]));
    }
}
