//! Health by CEL expressions for kinds kstatus does not understand: a Kustomization's
//! `healthCheckExprs` (Flux's RFC 0009).
//!
//! Each entry names a kind by `apiVersion` (only its group counts, so every version of the
//! kind is covered) and `kind`, and gives up to three expressions over the object's top-level
//! fields (`apiVersion`, `kind`, `metadata`, `spec`, `status`, and any other a kind has):
//! `current` (required), `inProgress` and `failed`. They are tried in the order `inProgress`,
//! `failed`, `current`; the first that is true decides; when none is, the object is still in
//! progress. Before the expressions, an object being deleted is Terminating and an object whose
//! `status.observedGeneration` lags `metadata.generation` is in progress.

use serde_json::Value;
use toolkit_sdk::cel::Expression;

use super::kstatus::{ObjectStatus, Status, generation_not_observed};
use super::{CustomHealthCheck, HealthError};
use crate::object_ref::{ObjectRef, split_api_version};

/// One `healthCheckExprs` entry, compiled.
#[derive(Debug)]
pub(crate) struct CompiledCheck {
    group: String,
    kind: String,
    in_progress: Option<Expression>,
    failed: Option<Expression>,
    current: Expression,
}

impl CompiledCheck {
    /// Compiles the expressions of `check`; `current` is required.
    pub(crate) fn compile(check: &CustomHealthCheck) -> Result<Self, HealthError> {
        let compile = |field: &'static str, source: &str| {
            Expression::compile(source).map_err(|source| HealthError::InvalidExpression {
                api_version: check.api_version.clone(),
                kind: check.kind.clone(),
                field,
                source: Box::new(source),
            })
        };
        let optional = |field: &'static str, source: &Option<String>| {
            source
                .as_deref()
                .filter(|s| !s.trim().is_empty())
                .map(|s| compile(field, s))
                .transpose()
        };
        Ok(Self {
            group: split_api_version(&check.api_version).0.to_owned(),
            kind: check.kind.clone(),
            in_progress: optional("inProgress", &check.in_progress)?,
            failed: optional("failed", &check.failed)?,
            current: compile("current", check.current.as_deref().unwrap_or_default())?,
        })
    }

    /// Whether this entry is the one for `object`'s kind.
    pub(crate) fn matches(&self, object: &ObjectRef) -> bool {
        self.group == object.group && self.kind == object.kind
    }

    /// The health of `object` (its JSON as read from the API server).
    pub(crate) fn evaluate(&self, object: &Value) -> ObjectStatus {
        let deleting = object
            .pointer("/metadata/deletionTimestamp")
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty());
        if deleting {
            return ObjectStatus::new(Status::Terminating, "Resource scheduled for deletion");
        }
        if let Some(message) = generation_not_observed(object) {
            return ObjectStatus::new(Status::InProgress, message);
        }
        let vars: Vec<(&str, &Value)> = object
            .as_object()
            .map(|fields| fields.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        for (name, expression, status) in [
            ("inProgress", self.in_progress.as_ref(), Status::InProgress),
            ("failed", self.failed.as_ref(), Status::Failed),
            ("current", Some(&self.current), Status::Current),
        ] {
            let Some(expression) = expression else {
                continue;
            };
            match expression.evaluate_bool(&vars) {
                Ok(true) => {
                    return ObjectStatus::new(
                        status,
                        format!("healthCheckExprs: '{name}' is true"),
                    );
                }
                Ok(false) => {}
                Err(error) => return ObjectStatus::new(Status::Unknown, error.to_string()),
            }
        }
        ObjectStatus::new(
            Status::InProgress,
            "healthCheckExprs: waiting for 'current' to be true",
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(current: &str, in_progress: Option<&str>, failed: Option<&str>) -> CompiledCheck {
        CompiledCheck::compile(&CustomHealthCheck {
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            current: Some(current.into()),
            in_progress: in_progress.map(Into::into),
            failed: failed.map(Into::into),
        })
        .unwrap()
    }

    fn widget(status: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "apps", "generation": 1},
               "spec": {"size": 1}, "status": status})
    }

    const READY: &str = "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')";
    const FAILED: &str =
        "status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'False')";

    #[test]
    fn expressions_see_top_level_fields() {
        let check = check(READY, None, Some(FAILED));
        let ready = widget(json!({"conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(check.evaluate(&ready).status, Status::Current);
        let failed = widget(json!({"conditions": [{"type": "Ready", "status": "False"}]}));
        assert_eq!(check.evaluate(&failed).status, Status::Failed);
        assert_eq!(
            check.evaluate(&failed).message,
            "healthCheckExprs: 'failed' is true"
        );
        let unknown = widget(json!({"conditions": [{"type": "Ready", "status": "Unknown"}]}));
        assert_eq!(
            check.evaluate(&unknown),
            ObjectStatus::new(
                Status::InProgress,
                "healthCheckExprs: waiting for 'current' to be true"
            )
        );
    }

    #[test]
    fn in_progress_is_tried_first_then_failed_then_current() {
        let check = check("true", Some("spec.size > 0"), Some("true"));
        assert_eq!(
            check.evaluate(&widget(json!({}))).status,
            Status::InProgress
        );
        let check = super::tests::check("true", Some("spec.size > 5"), Some("true"));
        assert_eq!(check.evaluate(&widget(json!({}))).status, Status::Failed);
    }

    #[test]
    fn unobserved_generation_and_deletion_come_before_expressions() {
        let check = check("true", None, None);
        let stale = widget(json!({"observedGeneration": 0}));
        assert_eq!(check.evaluate(&stale).status, Status::InProgress);
        let mut deleting = widget(json!({}));
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:00Z");
        assert_eq!(check.evaluate(&deleting).status, Status::Terminating);
    }

    #[test]
    fn evaluation_errors_are_unknown_with_the_reason() {
        let check = check(READY, None, None);
        let no_status = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                               "metadata": {"name": "w"}});
        let got = check.evaluate(&no_status);
        assert_eq!(got.status, Status::Unknown);
        assert!(got.message.contains("status"), "{}", got.message);
        let check = super::tests::check("spec.size", None, None);
        let got = check.evaluate(&widget(json!({})));
        assert_eq!(got.status, Status::Unknown);
        assert!(
            got.message.contains("must evaluate to a bool"),
            "{}",
            got.message
        );
    }

    #[test]
    fn matches_by_group_and_kind_whatever_the_version() {
        let check = check("true", None, None);
        let mut object = ObjectRef {
            group: "example.com".into(),
            version: "v2".into(),
            kind: "Widget".into(),
            namespace: "apps".into(),
            name: "w".into(),
        };
        assert!(check.matches(&object));
        object.kind = "Gadget".into();
        assert!(!check.matches(&object));
    }

    #[test]
    fn current_is_required_and_bad_expressions_are_named() {
        let error = CompiledCheck::compile(&CustomHealthCheck {
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            current: None,
            in_progress: None,
            failed: None,
        })
        .unwrap_err();
        assert!(
            matches!(
                error,
                HealthError::InvalidExpression {
                    field: "current",
                    ..
                }
            ),
            "{error:?}"
        );
        let error = CompiledCheck::compile(&CustomHealthCheck {
            api_version: "example.com/v1".into(),
            kind: "Widget".into(),
            current: Some("true".into()),
            in_progress: None,
            failed: Some("status.phase ==".into()),
        })
        .unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid 'failed' expression in healthCheckExprs for example.com/v1 Widget"
        );
        let source = std::error::Error::source(&error).unwrap().to_string();
        assert!(source.contains("status.phase =="), "{source}");
    }
}
