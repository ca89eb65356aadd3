//! Why an apply or a prune failed, naming the object.
//!
//! The API server's answer is kept as text in the message (its `message` field, or the
//! transport error), so one `to_string()` is a complete, actionable status message. Object
//! contents never appear in these messages.

use std::time::Duration;

use crate::object_ref::ObjectRef;

/// An apply or prune failure.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// An object of the build lacks what every Kubernetes object has.
    #[error("object {position} of the build is not a Kubernetes object: {problem}")]
    InvalidObject {
        /// Position of the object in the input (starting at 1).
        position: usize,
        /// What is missing.
        problem: &'static str,
    },
    /// No API resource serves the object's kind (no such CRD installed).
    #[error("{object} dry-run failed: no matches for kind \"{}\" in version \"{}\"", object.kind, object.api_version())]
    UnknownKind {
        /// The object.
        object: Box<ObjectRef>,
    },
    /// Discovery of the object's kind failed for another reason (the API server unreachable).
    #[error("{object} discovery failed: {detail}")]
    Discovery {
        /// The object.
        object: Box<ObjectRef>,
        /// The error.
        detail: String,
    },
    /// A namespaced object without `metadata.namespace`.
    #[error("{object} namespace not specified")]
    NamespaceNotSpecified {
        /// The object.
        object: Box<ObjectRef>,
    },
    /// Reading the live object failed.
    #[error("{object} query failed: {detail}")]
    Query {
        /// The object.
        object: Box<ObjectRef>,
        /// The API server's answer.
        detail: String,
    },
    /// The server-side apply dry-run was refused.
    #[error("{object} dry-run failed{}: {detail}", reason_suffix(reason))]
    DryRun {
        /// The object.
        object: Box<ObjectRef>,
        /// The API server's reason (`Invalid`, `Forbidden`, `NotFound`, ...), possibly empty.
        reason: String,
        /// The API server's message.
        detail: String,
        /// Whether the refusal is about an immutable field (recreating the object, with
        /// `force`, would apply it).
        immutable: bool,
    },
    /// An immutable-field change asked for a recreate, and deleting the old object failed.
    #[error("{object} immutable field detected, failed to delete object: {detail}")]
    Recreate {
        /// The object.
        object: Box<ObjectRef>,
        /// What failed.
        detail: String,
    },
    /// Taking over fields of other managers (a JSON patch of `metadata.managedFields`) failed.
    #[error("{object} metadata.managedFields cleanup failed: {detail}")]
    Cleanup {
        /// The object.
        object: Box<ObjectRef>,
        /// The API server's answer.
        detail: String,
    },
    /// The server-side apply itself failed.
    #[error("{object} apply failed: {detail}")]
    Apply {
        /// The object.
        object: Box<ObjectRef>,
        /// The API server's answer.
        detail: String,
    },
    /// An applied CustomResourceDefinition was not established and served in time.
    #[error("{object} not established after {}s", timeout.as_secs())]
    NotEstablished {
        /// The CustomResourceDefinition.
        object: Box<ObjectRef>,
        /// How long we waited.
        timeout: Duration,
    },
    /// A delete request failed.
    #[error("{object} delete failed: {detail}")]
    Delete {
        /// The object.
        object: Box<ObjectRef>,
        /// The API server's answer.
        detail: String,
    },
    /// Several objects failed in the same stage; one line each.
    #[error("{}", errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Many {
        /// Every failure, in object order.
        errors: Vec<ApplyError>,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" ({reason})")
    }
}

impl ApplyError {
    /// The object the failure is about; for [`ApplyError::Many`] the first one's.
    pub fn object(&self) -> Option<&ObjectRef> {
        match self {
            Self::InvalidObject { .. } => None,
            Self::UnknownKind { object }
            | Self::NamespaceNotSpecified { object }
            | Self::Discovery { object, .. }
            | Self::Query { object, .. }
            | Self::DryRun { object, .. }
            | Self::Recreate { object, .. }
            | Self::Cleanup { object, .. }
            | Self::Apply { object, .. }
            | Self::NotEstablished { object, .. }
            | Self::Delete { object, .. } => Some(object.as_ref()),
            Self::Many { errors } => errors.iter().find_map(Self::object),
        }
    }

    /// Every object named by the failure.
    pub fn objects(&self) -> Vec<&ObjectRef> {
        match self {
            Self::Many { errors } => errors.iter().flat_map(Self::objects).collect(),
            other => other.object().into_iter().collect(),
        }
    }

    /// Whether the failure is an immutable-field change that `force` (or the object's
    /// `kustomize.toolkit.fluxcd.io/force: enabled`) would resolve by recreating the object;
    /// for [`ApplyError::Many`], whether any of them is.
    pub fn is_immutable(&self) -> bool {
        match self {
            Self::DryRun { immutable, .. } => *immutable,
            Self::Many { errors } => errors.iter().any(Self::is_immutable),
            _ => false,
        }
    }

    /// One error for a list of failures: the failure itself when there is one.
    pub(crate) fn from_many(mut errors: Vec<ApplyError>) -> Option<ApplyError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(Self::Many { errors }),
        }
    }
}

/// The status code, reason and message of a failed request (the transport error's text when
/// the API server did not answer).
#[derive(Debug, Clone, Default)]
pub(crate) struct Failure {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

impl From<&kube::Error> for Failure {
    fn from(error: &kube::Error) -> Self {
        match error {
            kube::Error::Api(status) => Self {
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            other => Self {
                code: 0,
                reason: String::new(),
                message: other.to_string(),
            },
        }
    }
}

impl Failure {
    pub fn is_not_found(&self) -> bool {
        self.code == 404 || self.reason == "NotFound"
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> ObjectRef {
        ObjectRef::from_object(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "podinfo", "namespace": "apps"}
        }))
        .unwrap()
    }

    #[test]
    fn messages_name_the_object() {
        let dry_run = ApplyError::DryRun {
            object: deployment().into(),
            reason: "Invalid".into(),
            detail: "Deployment.apps \"podinfo\" is invalid: spec.selector: field is immutable"
                .into(),
            immutable: true,
        };
        assert_eq!(
            dry_run.to_string(),
            "Deployment/apps/podinfo dry-run failed (Invalid): Deployment.apps \"podinfo\" is invalid: spec.selector: field is immutable"
        );
        assert!(dry_run.is_immutable());
        assert_eq!(dry_run.object(), Some(&deployment()));

        let unknown = ApplyError::UnknownKind {
            object: ObjectRef::from_object(&json!({
                "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "apps"}
            }))
            .unwrap()
            .into(),
        };
        assert_eq!(
            unknown.to_string(),
            "Widget/apps/w dry-run failed: no matches for kind \"Widget\" in version \"example.com/v1\""
        );
        assert!(!unknown.is_immutable());
    }

    #[test]
    fn many_failures_are_one_line_each() {
        let many = ApplyError::from_many(vec![
            ApplyError::NamespaceNotSpecified {
                object: deployment().into(),
            },
            ApplyError::Apply {
                object: deployment().into(),
                detail: "boom".into(),
            },
        ])
        .unwrap();
        assert_eq!(
            many.to_string(),
            "Deployment/apps/podinfo namespace not specified\nDeployment/apps/podinfo apply failed: boom"
        );
        assert_eq!(many.objects().len(), 2);
        assert!(!many.is_immutable());
        assert!(ApplyError::from_many(Vec::new()).is_none());
        assert!(matches!(
            ApplyError::from_many(vec![ApplyError::NamespaceNotSpecified {
                object: deployment().into()
            }]),
            Some(ApplyError::NamespaceNotSpecified { .. })
        ));
    }
}
