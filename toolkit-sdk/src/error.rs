//! The reconcile error type.
//!
//! A [`ReconcileError`] is the single value a reconcile step returns when it cannot finish.
//! The runtime derives everything else from it, in one place:
//!
//! - the **condition**: `Ready=False` with [`ReconcileError::reason`] and the message, plus the
//!   negative-polarity condition named by [`ReconcileError::condition_type`] (for example
//!   `FetchFailed`) when one is set; a [`ErrorClass::Stalled`] error also sets `Stalled=True`;
//! - the **event**: its severity is [`ReconcileError::severity`] (`info` while waiting on a
//!   dependency, `error` otherwise) and its reason and message are the error's;
//! - the **requeue**: [`ErrorClass::Transient`] retries with backoff (or after
//!   [`ReconcileError::retry_delay`] when set), [`ErrorClass::Waiting`] retries after the
//!   dependency requeue interval (or [`ReconcileError::retry_delay`]), and
//!   [`ErrorClass::Stalled`] does not retry until the object's spec changes.
//!
//! # Display and sources
//!
//! `Display` prints the message only; the underlying cause (if any) is returned by
//! [`std::error::Error::source`], so a reporter that walks the chain prints every part once.
//! [`ReconcileError::detailed_message`] joins the message and the chain for places that show
//! a single string, such as a condition message.
//!
//! # Caveats
//!
//! Messages end up in status conditions, events and logs. Never put secret values (tokens,
//! passwords, URLs with credentials) in a message or in a source error's text.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a failed reconcile should be retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Something that may go away by itself (a network error, a conflict, an API timeout):
    /// retry with exponential backoff.
    Transient,
    /// The object waits on something else (a dependency that is not ready, a source without an
    /// artifact yet): retry after the dependency requeue interval. Not reported as an error.
    Waiting,
    /// Retrying cannot help (invalid spec, unsupported option): mark `Stalled=True` and wait
    /// until the spec changes.
    Stalled,
}

impl ErrorClass {
    /// The class name, as used in logs and metrics labels (`transient`, `waiting`, `stalled`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Transient => "transient",
            ErrorClass::Waiting => "waiting",
            ErrorClass::Stalled => "stalled",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Severity of a Flux event, as carried in the event payload (`"info"` or `"error"`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    /// A normal event: a change was applied, a reconcile is waiting on a dependency.
    #[default]
    Info,
    /// A failure.
    Error,
}

impl EventSeverity {
    /// The payload spelling: `info` or `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventSeverity::Info => "info",
            EventSeverity::Error => "error",
        }
    }

    /// The Kubernetes Event `type` matching this severity: `Normal` or `Warning`.
    pub fn kubernetes_event_type(self) -> &'static str {
        match self {
            EventSeverity::Info => "Normal",
            EventSeverity::Error => "Warning",
        }
    }
}

impl fmt::Display for EventSeverity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The boxed cause of a [`ReconcileError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a reconcile did not finish: a class, a condition reason and a message a person can act on.
///
/// Build one with [`ReconcileError::transient`], [`ReconcileError::waiting`] or
/// [`ReconcileError::stalled`], then refine it with the builder methods:
///
/// ```
/// use std::time::Duration;
/// use toolkit_sdk::conditions::{reasons, types};
/// use toolkit_sdk::error::{ErrorClass, ReconcileError};
///
/// let io = std::io::Error::other("connection reset");
/// let err = ReconcileError::transient(reasons::GIT_OPERATION_FAILED, "failed to clone 'https://example.com/repo'")
///     .on_condition(types::FETCH_FAILED)
///     .with_source(io)
///     .retry_after(Duration::from_secs(30));
///
/// assert_eq!(err.class(), ErrorClass::Transient);
/// assert_eq!(err.to_string(), "failed to clone 'https://example.com/repo'");
/// assert_eq!(err.detailed_message(), "failed to clone 'https://example.com/repo': connection reset");
/// ```
#[derive(Debug)]
pub struct ReconcileError {
    class: ErrorClass,
    reason: Cow<'static, str>,
    message: String,
    condition_type: Option<Cow<'static, str>>,
    source: Option<BoxError>,
    retry_after: Option<Duration>,
}

impl ReconcileError {
    /// A new error of the given class.
    pub fn new(
        class: ErrorClass,
        reason: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        ReconcileError {
            class,
            reason: reason.into(),
            message: message.into(),
            condition_type: None,
            source: None,
            retry_after: None,
        }
    }

    /// A failure worth retrying with backoff.
    pub fn transient(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, reason, message)
    }

    /// The object waits on something else (usually reason `DependencyNotReady`).
    pub fn waiting(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Waiting, reason, message)
    }

    /// A failure that retrying cannot fix; the object stays `Stalled` until its spec changes.
    pub fn stalled(reason: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Stalled, reason, message)
    }

    /// Attach the underlying cause (returned by [`std::error::Error::source`]).
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Ask for the next attempt after `delay` instead of the class default.
    pub fn retry_after(mut self, delay: Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }

    /// Name the negative-polarity condition this failure sets to `True` (for example
    /// `FetchFailed` or `BuildFailed`), in addition to `Ready=False`.
    pub fn on_condition(mut self, condition_type: impl Into<Cow<'static, str>>) -> Self {
        self.condition_type = Some(condition_type.into());
        self
    }

    /// How the failure should be retried.
    pub fn class(&self) -> ErrorClass {
        self.class
    }

    /// The condition reason, a CamelCase word such as `GitOperationFailed`.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// The human-readable message, without the source chain.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The message followed by every cause in the source chain, joined by `": "`.
    ///
    /// A cause whose text is already the tail of the text so far is skipped, so wrappers that
    /// repeat their source do not print it twice.
    pub fn detailed_message(&self) -> String {
        let mut out = self.message.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> = self
            .source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static));
        while let Some(err) = next {
            let text = err.to_string();
            if !text.is_empty() && !out.ends_with(&text) {
                if !out.is_empty() {
                    out.push_str(": ");
                }
                out.push_str(&text);
            }
            next = err.source();
        }
        out
    }

    /// The negative-polarity condition to set, if any.
    pub fn condition_type(&self) -> Option<&str> {
        self.condition_type.as_deref()
    }

    /// The requested delay before the next attempt, if the step asked for one.
    pub fn retry_delay(&self) -> Option<Duration> {
        self.retry_after
    }

    /// Whether the object should be marked `Stalled` and not retried.
    pub fn is_stalled(&self) -> bool {
        self.class == ErrorClass::Stalled
    }

    /// Whether the object is waiting on a dependency.
    pub fn is_waiting(&self) -> bool {
        self.class == ErrorClass::Waiting
    }

    /// Whether the failure is retried with backoff.
    pub fn is_transient(&self) -> bool {
        self.class == ErrorClass::Transient
    }

    /// The severity of the event this error produces: `info` while waiting, `error` otherwise.
    pub fn severity(&self) -> EventSeverity {
        match self.class {
            ErrorClass::Waiting => EventSeverity::Info,
            ErrorClass::Transient | ErrorClass::Stalled => EventSeverity::Error,
        }
    }
}

impl fmt::Display for ReconcileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReconcileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("tls handshake failed")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("request to registry failed")]
    struct Outer(#[source] Inner);

    #[test]
    fn constructors_set_class_reason_and_message() {
        let cases = [
            (
                ReconcileError::transient("GitOperationFailed", "clone failed"),
                ErrorClass::Transient,
                EventSeverity::Error,
            ),
            (
                ReconcileError::waiting(
                    "DependencyNotReady",
                    "dependency 'flux-system/infra' is not ready",
                ),
                ErrorClass::Waiting,
                EventSeverity::Info,
            ),
            (
                ReconcileError::stalled("InvalidSTSConfiguration", "unsupported provider"),
                ErrorClass::Stalled,
                EventSeverity::Error,
            ),
        ];
        for (err, class, severity) in cases {
            assert_eq!(err.class(), class);
            assert_eq!(err.severity(), severity);
            assert_eq!(err.is_stalled(), class == ErrorClass::Stalled);
            assert_eq!(err.is_waiting(), class == ErrorClass::Waiting);
            assert_eq!(err.is_transient(), class == ErrorClass::Transient);
            assert!(err.condition_type().is_none());
            assert!(err.retry_delay().is_none());
            assert!(err.source().is_none());
        }
        let err = ReconcileError::waiting("DependencyNotReady", "not ready");
        assert_eq!(err.reason(), "DependencyNotReady");
        assert_eq!(err.message(), "not ready");
    }

    #[test]
    fn reason_accepts_owned_strings() {
        let reason = format!("{}Failed", "Build");
        let err = ReconcileError::transient(reason, "kustomize build failed");
        assert_eq!(err.reason(), "BuildFailed");
    }

    #[test]
    fn builders_set_condition_and_retry() {
        let err = ReconcileError::transient("ArtifactFailed", "artifact not found")
            .on_condition("FetchFailed")
            .retry_after(Duration::from_secs(42));
        assert_eq!(err.condition_type(), Some("FetchFailed"));
        assert_eq!(err.retry_delay(), Some(Duration::from_secs(42)));
    }

    #[test]
    fn display_is_the_message_and_the_chain_is_walkable() {
        let err = ReconcileError::transient("OCIOperationFailed", "failed to pull artifact")
            .with_source(Outer(Inner));
        assert_eq!(err.to_string(), "failed to pull artifact");

        let mut chain = Vec::new();
        let mut next = err.source();
        while let Some(e) = next {
            chain.push(e.to_string());
            next = e.source();
        }
        assert_eq!(
            chain,
            ["request to registry failed", "tls handshake failed"]
        );
        assert_eq!(
            err.detailed_message(),
            "failed to pull artifact: request to registry failed: tls handshake failed"
        );
    }

    #[test]
    fn detailed_message_does_not_repeat_a_source_already_in_the_text() {
        #[derive(Debug, thiserror::Error)]
        #[error("wrapped: tls handshake failed")]
        struct Repeats(#[source] Inner);

        let err = ReconcileError::transient("Failed", "fetch").with_source(Repeats(Inner));
        assert_eq!(
            err.detailed_message(),
            "fetch: wrapped: tls handshake failed"
        );
    }

    #[test]
    fn with_source_accepts_strings() {
        let err = ReconcileError::stalled("InvalidPath", "path not found").with_source("./apps");
        assert_eq!(err.source().unwrap().to_string(), "./apps");
    }

    #[test]
    fn reconcile_error_is_send_sync_and_static() {
        fn assert_bounds<T: std::error::Error + Send + Sync + 'static>() {}
        assert_bounds::<ReconcileError>();
    }

    #[test]
    fn severity_serializes_like_the_flux_event_payload() {
        assert_eq!(
            serde_json::to_string(&EventSeverity::Info).unwrap(),
            "\"info\""
        );
        assert_eq!(
            serde_json::to_string(&EventSeverity::Error).unwrap(),
            "\"error\""
        );
        let parsed: EventSeverity = serde_json::from_str("\"error\"").unwrap();
        assert_eq!(parsed, EventSeverity::Error);
        assert!(serde_json::from_str::<EventSeverity>("\"Error\"").is_err());
        assert_eq!(EventSeverity::Error.kubernetes_event_type(), "Warning");
        assert_eq!(EventSeverity::Info.kubernetes_event_type(), "Normal");
    }

    #[test]
    fn class_names() {
        assert_eq!(ErrorClass::Transient.to_string(), "transient");
        assert_eq!(ErrorClass::Waiting.to_string(), "waiting");
        assert_eq!(ErrorClass::Stalled.to_string(), "stalled");
    }
}
