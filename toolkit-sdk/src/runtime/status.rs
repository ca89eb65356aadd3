//! The runtime's part of the status: conditions from the reconcile result, the observed
//! generation, the handled reconcile request, and the server-side apply body.
//!
//! Pure functions over a [`FluxStatus`], so the rules are unit-tested without a cluster.

use kube::Resource;
use serde_json::{Map, Value, json};

use super::object::FluxStatus;
use super::reconciler::Outcome;
use crate::conditions::{self, Stamp, Summary, types};
use crate::error::{ErrorClass, ReconcileError};

/// Message of the `Reconciling` condition while a reconcile runs (and after a retriable
/// failure, with reason `ProgressingWithRetry`).
pub const RECONCILING_MESSAGE: &str = "Reconciliation in progress";

/// `Ready`'s status, reason and message: an event is emitted when this changes.
pub type ReadyView = Option<(String, String, String)>;

/// The current `Ready` condition, as compared for "did it change".
pub fn ready_view(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> ReadyView {
    conditions::get(conditions, types::READY)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Marks the start of a reconcile in the working copy: `Reconciling=True`, `Stalled` removed.
pub fn begin<S: FluxStatus>(status: &mut S, stamp: &Stamp) {
    conditions::mark_reconciling(status.conditions_mut(), stamp, RECONCILING_MESSAGE);
}

/// Writes the runtime's fields after the reconciler returned `result`.
///
/// - Success: `Reconciling` and `Stalled` removed, `Ready=True` with the outcome's reason and
///   message, `observedGeneration` = the generation.
/// - Stalled error: `Stalled=True` and `Ready=False` with the error's reason and message,
///   `Reconciling` removed, `observedGeneration` = the generation (the reconcile is finished,
///   it failed).
/// - Transient or waiting error: `Reconciling=True` with reason `ProgressingWithRetry`,
///   `Ready=False` with the error's reason and message; `observedGeneration` unchanged.
/// - Every declared negative-polarity condition is removed, except the one the error names,
///   which is set to `True` with the error's reason and message.
/// - `lastHandledReconcileAt` echoes `requested_at` when the annotation is present.
pub fn finish<S: FluxStatus>(
    status: &mut S,
    stamp: &Stamp,
    requested_at: Option<&str>,
    result: Result<&Outcome, &ReconcileError>,
    negative_polarity: &[&str],
) {
    let conditions = status.conditions_mut();
    for type_ in negative_polarity {
        conditions::delete(conditions, type_);
    }
    let message;
    let summary = match result {
        Ok(outcome) => {
            conditions::finish_reconciling(conditions);
            Summary::new(negative_polarity, &outcome.reason, &outcome.message)
        }
        Err(err) => {
            message = err.detailed_message();
            if let Some(type_) = err.condition_type() {
                conditions::mark_true(conditions, stamp, type_, err.reason(), &message);
            }
            match err.class() {
                ErrorClass::Stalled => {
                    conditions::mark_stalled(conditions, stamp, err.reason(), &message)
                }
                ErrorClass::Transient | ErrorClass::Waiting => {
                    conditions::mark_reconciling_with_retry(conditions, stamp, None)
                }
            }
            Summary::new(negative_polarity, "", "").with_failure(err.reason(), &message)
        }
    };
    conditions::summarize_ready(conditions, stamp, &summary);
    if conditions::limit_messages(conditions) {
        tracing::warn!(
            "a condition message was longer than the API server accepts; its end is cut in the status"
        );
    }
    let finished = match result {
        Ok(_) => true,
        Err(err) => err.is_stalled(),
    };
    if finished && let Some(generation) = stamp.generation {
        status.set_observed_generation(generation);
    }
    if let Some(token) = requested_at {
        status.set_last_handled_reconcile_at(token.to_owned());
    }
}

/// The server-side apply body that sets `status` on `obj`: `apiVersion`, `kind`, name and
/// namespace, and the status with `null`s removed (an applied `null` would be an error or
/// would claim the field for nothing).
pub fn apply_body<K: Resource<DynamicType = ()>>(
    obj: &K,
    status: &impl serde::Serialize,
) -> Result<Value, serde_json::Error> {
    let mut status = serde_json::to_value(status)?;
    strip_nulls(&mut status);
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(obj.meta().name));
    if let Some(ns) = &obj.meta().namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    Ok(json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "metadata": metadata,
        "status": status,
    }))
}

/// Removes `null` members of objects, recursively.
fn strip_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(strip_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::conditions::reasons;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use serde::Serialize;

    #[derive(Debug, Clone, Default, PartialEq, Serialize)]
    #[serde(rename_all = "camelCase")]
    struct TestStatus {
        observed_generation: i64,
        conditions: Vec<Condition>,
        last_handled_reconcile_at: Option<String>,
        extra: Option<String>,
    }

    crate::impl_flux_status!(TestStatus);

    fn stamp(generation: i64) -> Stamp {
        Stamp::new(
            Time("2026-01-01T00:00:00Z".parse().unwrap()),
            Some(generation),
        )
    }

    fn fresh() -> TestStatus {
        TestStatus {
            observed_generation: -1,
            ..TestStatus::default()
        }
    }

    fn types_of(status: &TestStatus) -> Vec<(&str, &str, &str)> {
        status
            .conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    fn run(status: &mut TestStatus, generation: i64, result: Result<&Outcome, &ReconcileError>) {
        let stamp = stamp(generation);
        begin(status, &stamp);
        finish(status, &stamp, None, result, &[types::FETCH_FAILED]);
    }

    #[test]
    fn success_sets_ready_true_and_observed_generation() {
        let mut status = fresh();
        run(&mut status, 3, Ok(&Outcome::ready("hello applied")));
        assert_eq!(types_of(&status), [("Ready", "True", "Succeeded")]);
        assert_eq!(status.conditions[0].message, "hello applied");
        assert_eq!(status.conditions[0].observed_generation, Some(3));
        assert_eq!(status.observed_generation, 3);
    }

    #[test]
    fn an_error_longer_than_the_api_accepts_still_fits_in_the_status() {
        let mut status = fresh();
        let err = ReconcileError::stalled("BuildFailed", "x".repeat(100_000));
        run(&mut status, 2, Err(&err));
        for condition in &status.conditions {
            assert!(
                condition.message.chars().count() <= conditions::MESSAGE_MAX_CHARS,
                "{} has {} characters",
                condition.type_,
                condition.message.len()
            );
            assert!(condition.message.starts_with("xxxx"));
        }
        assert_eq!(types_of(&status)[0], ("Ready", "False", "BuildFailed"));
    }

    #[test]
    fn stalled_sets_stalled_and_ready_false_and_observes_generation() {
        let mut status = fresh();
        let err = ReconcileError::stalled("InvalidSpec", "message must not be empty");
        run(&mut status, 2, Err(&err));
        assert_eq!(
            types_of(&status),
            [
                ("Ready", "False", "InvalidSpec"),
                ("Stalled", "True", "InvalidSpec")
            ]
        );
        assert_eq!(
            conditions::message(&status.conditions, types::READY),
            Some("message must not be empty")
        );
        assert_eq!(status.observed_generation, 2);

        // Fixing the spec clears Stalled.
        run(&mut status, 3, Ok(&Outcome::ready("ok")));
        assert_eq!(types_of(&status), [("Ready", "True", "Succeeded")]);
        assert_eq!(status.observed_generation, 3);
    }

    #[test]
    fn retriable_errors_keep_reconciling_with_retry_and_the_old_generation() {
        for err in [
            ReconcileError::transient("ApplyFailed", "conflict"),
            ReconcileError::waiting(reasons::DEPENDENCY_NOT_READY, "dependency 'x' not found"),
        ] {
            let mut status = fresh();
            run(&mut status, 5, Err(&err));
            assert_eq!(
                types_of(&status),
                [
                    ("Ready", "False", err.reason()),
                    ("Reconciling", "True", reasons::PROGRESSING_WITH_RETRY)
                ],
                "{err:?}"
            );
            assert_eq!(status.observed_generation, -1, "{err:?}");
        }
    }

    #[test]
    fn negative_polarity_exists_only_while_true() {
        let mut status = fresh();
        let err = ReconcileError::transient("GitOperationFailed", "clone failed")
            .on_condition(types::FETCH_FAILED)
            .with_source("connection refused");
        run(&mut status, 1, Err(&err));
        assert_eq!(
            types_of(&status),
            [
                ("Ready", "False", "GitOperationFailed"),
                ("FetchFailed", "True", "GitOperationFailed"),
                ("Reconciling", "True", reasons::PROGRESSING_WITH_RETRY)
            ]
        );
        assert_eq!(
            conditions::message(&status.conditions, types::FETCH_FAILED),
            Some("clone failed: connection refused")
        );
        run(&mut status, 1, Ok(&Outcome::ready("fetched")));
        assert_eq!(types_of(&status), [("Ready", "True", "Succeeded")]);
    }

    #[test]
    fn requested_at_is_echoed() {
        let mut status = fresh();
        let stamp = stamp(1);
        begin(&mut status, &stamp);
        finish(
            &mut status,
            &stamp,
            Some("token-1"),
            Ok(&Outcome::ready("ok")),
            &[],
        );
        assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("token-1"));
        finish(&mut status, &stamp, None, Ok(&Outcome::ready("ok")), &[]);
        assert_eq!(status.last_handled_reconcile_at.as_deref(), Some("token-1"));
    }

    #[test]
    fn unchanged_result_leaves_status_equal() {
        let mut status = fresh();
        run(&mut status, 1, Ok(&Outcome::ready("ok")));
        let before = status.clone();
        let later = Stamp::new(Time("2026-02-01T00:00:00Z".parse().unwrap()), Some(1));
        begin(&mut status, &later);
        finish(&mut status, &later, None, Ok(&Outcome::ready("ok")), &[]);
        assert_eq!(
            status, before,
            "a no-op reconcile must not need a status write"
        );
        assert_eq!(
            ready_view(&status.conditions),
            ready_view(&before.conditions)
        );
    }

    #[test]
    fn apply_body_names_the_object_and_drops_nulls() {
        use k8s_openapi::api::core::v1::ConfigMap;
        let obj = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some("a".into()),
                namespace: Some("ns".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut status = fresh();
        run(&mut status, 1, Ok(&Outcome::ready("ok")));
        let body = apply_body(&obj, &status).unwrap();
        assert_eq!(body["apiVersion"], "v1");
        assert_eq!(body["kind"], "ConfigMap");
        assert_eq!(body["metadata"], json!({"name": "a", "namespace": "ns"}));
        assert_eq!(body["status"]["observedGeneration"], 1);
        let status = body["status"].as_object().unwrap();
        assert!(!status.contains_key("extra"));
        assert!(!status.contains_key("lastHandledReconcileAt"));
    }
}
