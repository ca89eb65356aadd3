//! Health of applied objects: kstatus for one object ([`compute_status`]), CEL health checks
//! for other kinds ([`CustomHealthCheck`], a Kustomization's `healthCheckExprs`), and waiting
//! until a set of objects is healthy ([`HealthChecker::wait`]), which `wait: true` and
//! `healthChecks` use.
//!
//! # Guarantees
//!
//! - The first check runs at once, then every poll interval (1 s by default) until every object
//!   is [`Status::Current`]. An object once Current is not read again during the same wait.
//! - The wait fails fast: as soon as one object is [`Status::Failed`] (a stalled rollout, a failed
//!   Job, a `Stalled` Flux object) it ends with [`HealthError::Failed`], without waiting for the
//!   timeout.
//! - The wait ends with [`HealthError::Cancelled`] as soon as the cancellation token fires (a
//!   newer source revision pre-empts the reconcile), even in the middle of a poll.
//!
//! # Errors
//!
//! - [`HealthError::Timeout`] lists every object that was not Current, with its last status, in
//!   Flux's words: `timeout waiting for: [Deployment/apps/podinfo status: 'InProgress']`.
//! - [`HealthError::Api`] only when the API server refuses the reads (401, 403): waiting longer
//!   would not help. Other read errors (a kind not served yet, a passing network error) leave the
//!   object [`Status::Unknown`] and the wait goes on.
//! - [`HealthError::InvalidExpression`] from [`HealthChecker::new`] for a `healthCheckExprs`
//!   entry that does not compile or has no `current` expression.
//!
//! # Caveats
//!
//! A Service of type LoadBalancer is healthy once it has a cluster IP, as in kstatus: an external
//! address is not awaited.

mod custom;
mod kstatus;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::apply::ApiCache;
use crate::object_ref::ObjectRef;
use custom::CompiledCheck;

pub use kstatus::{ObjectStatus, Status, compute_status};

/// A boxed error, the cause of an API failure.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How often objects are read while waiting, unless [`HealthChecker::with_poll_interval`] says
/// otherwise.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The first wait between two polls; it doubles up to the poll interval. Most objects become
/// healthy within milliseconds of being applied (their controller only has to observe them),
/// and a reconcile holds one of the `--concurrent` workers while it waits.
pub const FIRST_POLL_DELAY: Duration = Duration::from_millis(50);

/// How many objects are read at the same time during one poll.
const CONCURRENT_READS: usize = 8;

/// One `healthCheckExprs` entry of a Kustomization: CEL expressions that tell the health of a
/// kind (over the object's top-level fields: `status.conditions...`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CustomHealthCheck {
    /// `apiVersion` of the kind; only its group is compared, so every version matches.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// True when the object is healthy (required).
    pub current: Option<String>,
    /// True when the object is still progressing (tried first).
    pub in_progress: Option<String>,
    /// True when the object has failed (tried second).
    pub failed: Option<String>,
}

/// Why objects are not healthy, or why the wait could not run.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// A `healthCheckExprs` expression is missing or does not compile.
    #[error("invalid '{field}' expression in healthCheckExprs for {api_version} {kind}")]
    InvalidExpression {
        /// `apiVersion` of the entry.
        api_version: String,
        /// Kind of the entry.
        kind: String,
        /// Which expression: `current`, `inProgress` or `failed`.
        field: &'static str,
        /// What is wrong with it.
        #[source]
        source: Box<toolkit_sdk::cel::CelError>,
    },
    /// At least one object failed (fail fast).
    #[error("failed early due to stalled resources: [{}]", describe_failed(.objects))]
    Failed {
        /// The failed objects with their status.
        objects: Vec<(ObjectRef, ObjectStatus)>,
    },
    /// The timeout passed before every object was Current.
    #[error("timeout waiting for: [{}]", describe_pending(.objects))]
    Timeout {
        /// The objects that were not Current, with their last status (`None` when none could be
        /// read in time).
        objects: Vec<(ObjectRef, Option<ObjectStatus>)>,
    },
    /// The wait was cancelled through its token.
    #[error("health check cancelled")]
    Cancelled,
    /// The API server refused to let us read an object.
    #[error("cannot read {object} to check its health")]
    Api {
        /// The object (`Kind/namespace/name`).
        object: String,
        /// The API server's answer.
        #[source]
        source: BoxError,
    },
}

fn describe_failed(objects: &[(ObjectRef, ObjectStatus)]) -> String {
    objects
        .iter()
        .map(|(object, status)| format!("{object} status: '{}': {}", status.status, status.message))
        .collect::<Vec<_>>()
        .join(", ")
}

fn describe_pending(objects: &[(ObjectRef, Option<ObjectStatus>)]) -> String {
    objects
        .iter()
        .map(|(object, status)| match status {
            None => format!("{object} (unknown status)"),
            Some(ObjectStatus {
                status: Status::Unknown,
                message,
            }) => format!("{object} status: 'Unknown': {message}"),
            Some(status) => format!("{object} status: '{}'", status.status),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads objects from the cluster and waits for them to be healthy. Cloning is cheap and
/// shares the compiled expressions.
#[derive(Clone)]
pub struct HealthChecker {
    client: kube::Client,
    cache: ApiCache,
    checks: Arc<[CompiledCheck]>,
    poll_interval: Duration,
}

impl std::fmt::Debug for HealthChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthChecker")
            .field("checks", &self.checks)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl HealthChecker {
    /// A checker reading through `client` (the Kustomization's, impersonating if it must), with
    /// the CEL health checks `checks` for the kinds they name (kstatus for every other kind).
    ///
    /// # Errors
    ///
    /// [`HealthError::InvalidExpression`] when an expression does not compile or `current` is
    /// missing.
    pub fn new(
        client: kube::Client,
        cache: ApiCache,
        checks: &[CustomHealthCheck],
    ) -> Result<Self, HealthError> {
        let checks = checks
            .iter()
            .map(CompiledCheck::compile)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            client,
            cache,
            checks: checks.into(),
            poll_interval: DEFAULT_POLL_INTERVAL,
        })
    }

    /// The same checker polling every `interval` instead of [`DEFAULT_POLL_INTERVAL`].
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The health of one object as JSON: its `healthCheckExprs` entry when there is one for its
    /// kind, kstatus otherwise.
    pub fn status_of(&self, object: &ObjectRef, json: &serde_json::Value) -> ObjectStatus {
        match self.checks.iter().find(|check| check.matches(object)) {
            Some(check) => check.evaluate(json),
            None => compute_status(json),
        }
    }

    /// Reads `object` and computes its health; [`Status::NotFound`] when it does not exist.
    ///
    /// # Errors
    ///
    /// [`HealthError::Api`] when the API server answers 401 or 403; any other failure is
    /// [`Status::Unknown`] with the reason as message.
    pub async fn check(&self, object: &ObjectRef) -> Result<ObjectStatus, HealthError> {
        let resolved = match self.cache.resolve(&self.client, object).await {
            Ok(resolved) => resolved,
            Err(error) if is_denied(&error.source) => {
                return Err(HealthError::Api {
                    object: object.to_string(),
                    source: Box::new(error),
                });
            }
            Err(error) => return Ok(ObjectStatus::new(Status::Unknown, error.to_string())),
        };
        let found = match resolved
            .api(&self.client, object)
            .get_opt(&object.name)
            .await
        {
            Ok(found) => found,
            Err(error) if is_denied(&error) => {
                return Err(HealthError::Api {
                    object: object.to_string(),
                    source: Box::new(error),
                });
            }
            Err(error) => return Ok(ObjectStatus::new(Status::Unknown, error.to_string())),
        };
        let Some(found) = found else {
            return Ok(ObjectStatus::new(Status::NotFound, "Resource not found"));
        };
        match serde_json::to_value(&found) {
            Ok(json) => Ok(self.status_of(object, &json)),
            Err(error) => Ok(ObjectStatus::new(Status::Unknown, error.to_string())),
        }
    }

    /// Waits until every object in `objects` is [`Status::Current`].
    ///
    /// Polls at once, then after [`FIRST_POLL_DELAY`] doubling up to the poll interval, until
    /// every object is Current, or one is Failed (fail fast), or `timeout` passes, or `cancel`
    /// fires.
    ///
    /// # Errors
    ///
    /// [`HealthError::Failed`], [`HealthError::Timeout`], [`HealthError::Cancelled`], and
    /// [`HealthError::Api`] when reads are refused; see the module documentation.
    pub async fn wait(
        &self,
        objects: &[ObjectRef],
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<(), HealthError> {
        let deadline = Instant::now() + timeout;
        let mut last: Vec<Option<ObjectStatus>> = vec![None; objects.len()];
        let mut delay = FIRST_POLL_DELAY.min(self.poll_interval);
        loop {
            let pending: Vec<usize> = (0..objects.len())
                .filter(|&i| !is_current(&last[i]))
                .collect();
            let round = self.poll(objects, &pending);
            let results = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(HealthError::Cancelled),
                results = round => results,
                () = tokio::time::sleep_until(deadline) => {
                    return Err(timeout_error(objects, last));
                }
            };
            for (i, result) in results {
                last[i] = Some(result?);
            }
            let failed: Vec<(ObjectRef, ObjectStatus)> = objects
                .iter()
                .zip(&last)
                .filter_map(|(object, status)| match status {
                    Some(status) if status.status == Status::Failed => {
                        Some((object.clone(), status.clone()))
                    }
                    _ => None,
                })
                .collect();
            if !failed.is_empty() {
                return Err(HealthError::Failed { objects: failed });
            }
            if last.iter().all(is_current) {
                return Ok(());
            }
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(HealthError::Cancelled),
                () = tokio::time::sleep_until(deadline) => {
                    return Err(timeout_error(objects, last));
                }
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.poll_interval);
        }
    }

    /// Reads the objects at `indices`, a few at a time.
    async fn poll(
        &self,
        objects: &[ObjectRef],
        indices: &[usize],
    ) -> Vec<(usize, Result<ObjectStatus, HealthError>)> {
        // The futures are built into a Vec first: a stream that maps borrowed items lazily
        // makes the caller's future impossible to prove `Send`.
        let reads: Vec<_> = indices
            .iter()
            .map(|&i| {
                let object = &objects[i];
                async move {
                    let result = self.check(object).await;
                    if let Ok(status) = &result {
                        tracing::debug!(
                            %object,
                            status = %status.status,
                            message = %status.message,
                            "health"
                        );
                    }
                    (i, result)
                }
            })
            .collect();
        futures::stream::iter(reads)
            .buffer_unordered(CONCURRENT_READS)
            .collect()
            .await
    }
}

fn is_current(status: &Option<ObjectStatus>) -> bool {
    matches!(
        status,
        Some(ObjectStatus {
            status: Status::Current,
            ..
        })
    )
}

fn timeout_error(objects: &[ObjectRef], last: Vec<Option<ObjectStatus>>) -> HealthError {
    HealthError::Timeout {
        objects: objects
            .iter()
            .cloned()
            .zip(last)
            .filter(|(_, status)| !is_current(status))
            .collect(),
    }
}

/// Whether the API server refused the request for who we are (401, 403).
fn is_denied(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 401 || status.code == 403)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn object(kind: &str, namespace: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: "apps".into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    #[test]
    fn timeout_message_is_fluxs() {
        let error = HealthError::Timeout {
            objects: vec![
                (
                    object("Deployment", "apps", "podinfo"),
                    Some(ObjectStatus::new(Status::InProgress, "Ready: 0/1")),
                ),
                (
                    object("Deployment", "apps", "redis"),
                    Some(ObjectStatus::new(Status::NotFound, "Resource not found")),
                ),
                (object("DaemonSet", "kube-system", "agent"), None),
                (
                    object("Widget", "", "w"),
                    Some(ObjectStatus::new(Status::Unknown, "connection refused")),
                ),
            ],
        };
        assert_eq!(
            error.to_string(),
            "timeout waiting for: [Deployment/apps/podinfo status: 'InProgress', \
             Deployment/apps/redis status: 'NotFound', \
             DaemonSet/kube-system/agent (unknown status), \
             Widget/w status: 'Unknown': connection refused]"
        );
    }

    #[test]
    fn failed_message_names_each_object_and_why() {
        let error = HealthError::Failed {
            objects: vec![(
                object("Deployment", "apps", "podinfo"),
                ObjectStatus::new(Status::Failed, "Progress deadline exceeded"),
            )],
        };
        assert_eq!(
            error.to_string(),
            "failed early due to stalled resources: \
             [Deployment/apps/podinfo status: 'Failed': Progress deadline exceeded]"
        );
    }

    #[test]
    fn only_objects_not_current_are_listed_on_timeout() {
        let objects = [
            object("Deployment", "apps", "a"),
            object("Deployment", "apps", "b"),
        ];
        let error = timeout_error(
            &objects,
            vec![
                Some(ObjectStatus::new(Status::Current, "ok")),
                Some(ObjectStatus::new(Status::InProgress, "Ready: 0/1")),
            ],
        );
        let HealthError::Timeout { objects } = error else {
            panic!("not a timeout");
        };
        assert_eq!(objects.len(), 1);
        assert_eq!(objects[0].0.name, "b");
    }
}
