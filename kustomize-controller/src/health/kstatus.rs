//! kstatus: the health of one object computed from its JSON, with the rules of the Kubernetes
//! `cli-utils` status library that Flux uses, plus the `Ready` condition of Flux objects and of
//! any other kind that has one.
//!
//! The order of the rules:
//! 1. `metadata.deletionTimestamp` set: [`Status::Terminating`].
//! 2. `status.observedGeneration` present and different from `metadata.generation`:
//!    [`Status::InProgress`] (the controller has not seen the latest spec).
//! 3. A `Reconciling` condition that is `True`: [`Status::InProgress`]; a `Stalled` condition
//!    that is `True`: [`Status::Failed`].
//! 4. The rules of the built-in kinds (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod,
//!    PersistentVolumeClaim, Service, CustomResourceDefinition, PodDisruptionBudget; ConfigMap,
//!    Secret and CronJob are always current).
//! 5. Any other kind with a `Ready` condition: `True` is [`Status::Current`], `False` or
//!    `Unknown` is [`Status::InProgress`] (a failure that will not heal on its own is reported
//!    through `Stalled`, rule 3).
//! 6. Anything else, an object without status included: [`Status::Current`].

use std::fmt;

use serde_json::Value;

/// The health of an object, kstatus's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The object is still being reconciled towards its spec.
    InProgress,
    /// The object failed and will not recover without a change (a stalled rollout, a failed
    /// Job, a crash-looping Pod).
    Failed,
    /// The object is reconciled: its observed state matches its spec.
    Current,
    /// The object is being deleted.
    Terminating,
    /// The object does not exist.
    NotFound,
    /// The status could not be determined (an API error, an expression that fails).
    Unknown,
}

impl Status {
    /// kstatus's name for the status (`InProgress`, `Current`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InProgress => "InProgress",
            Self::Failed => "Failed",
            Self::Current => "Current",
            Self::Terminating => "Terminating",
            Self::NotFound => "NotFound",
            Self::Unknown => "Unknown",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The health of one object and why, in kstatus's words (`Deployment is available.
/// Replicas: 1`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectStatus {
    /// The status.
    pub status: Status,
    /// What a person reads to understand the status.
    pub message: String,
}

impl ObjectStatus {
    /// A status with its message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn current(message: impl Into<String>) -> Self {
        Self::new(Status::Current, message)
    }

    fn in_progress(message: impl Into<String>) -> Self {
        Self::new(Status::InProgress, message)
    }

    fn failed(message: impl Into<String>) -> Self {
        Self::new(Status::Failed, message)
    }
}

/// How long a Pod may stay unschedulable before it counts as failed (kstatus's window).
const SCHEDULE_WINDOW: jiff::SignedDuration = jiff::SignedDuration::from_secs(15);

/// The kstatus of one object given as JSON (as read from the API server, with its status).
pub fn compute_status(object: &Value) -> ObjectStatus {
    compute_status_at(object, jiff::Timestamp::now())
}

/// [`compute_status`] as of `now` (only Pods that cannot be scheduled depend on the time).
pub(crate) fn compute_status_at(object: &Value, now: jiff::Timestamp) -> ObjectStatus {
    if let Some(result) = generic_status(object) {
        return result;
    }
    let kind = str_at(object, &["kind"]).unwrap_or_default();
    let group = str_at(object, &["apiVersion"])
        .and_then(|v| v.rsplit_once('/'))
        .map(|(group, _)| group)
        .unwrap_or_default();
    match (group, kind) {
        ("", "Service") => service(object),
        ("", "Pod") => pod(object, now),
        ("", "PersistentVolumeClaim") => pvc(object),
        ("", "Secret" | "ConfigMap") | ("batch", "CronJob") => {
            ObjectStatus::current("Resource is always ready")
        }
        ("apps", "StatefulSet") => stateful_set(object),
        ("apps" | "extensions", "DaemonSet") => daemon_set(object),
        ("apps" | "extensions", "Deployment") => deployment(object),
        ("apps" | "extensions", "ReplicaSet") => replica_set(object),
        ("policy", "PodDisruptionBudget") => {
            ObjectStatus::current("AllowedDisruptions has been computed.")
        }
        ("batch", "Job") => job(object),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd(object),
        _ => ready_condition(object),
    }
}

/// Rules 1 to 3: deletion, generation, and the `Reconciling` / `Stalled` conditions.
pub(crate) fn generic_status(object: &Value) -> Option<ObjectStatus> {
    if str_at(object, &["metadata", "deletionTimestamp"]).is_some_and(|t| !t.is_empty()) {
        return Some(ObjectStatus::new(
            Status::Terminating,
            "Resource scheduled for deletion",
        ));
    }
    if let Some(message) = generation_not_observed(object) {
        return Some(ObjectStatus::in_progress(message));
    }
    for condition in conditions(object) {
        if condition.is("Reconciling", "True") {
            return Some(ObjectStatus::in_progress(condition.message));
        }
        if condition.is("Stalled", "True") {
            return Some(ObjectStatus::failed(condition.message));
        }
    }
    None
}

/// The message when `status.observedGeneration` is set and differs from `metadata.generation`.
pub(crate) fn generation_not_observed(object: &Value) -> Option<String> {
    let generation = int_at(object, &["metadata", "generation"])?;
    let observed = int_at(object, &["status", "observedGeneration"])?;
    (generation != observed).then(|| {
        format!(
            "{} generation is {generation}, but latest observed generation is {observed}",
            str_at(object, &["kind"]).unwrap_or_default()
        )
    })
}

fn ready_condition(object: &Value) -> ObjectStatus {
    match conditions(object).find(|c| c.kind == "Ready") {
        Some(ready) if ready.status == "True" => {
            ObjectStatus::current(if ready.message.is_empty() {
                "Resource is Ready"
            } else {
                ready.message
            })
        }
        Some(ready) => ObjectStatus::in_progress(if ready.message.is_empty() {
            format!("Ready condition is {}", ready.status)
        } else {
            ready.message.to_owned()
        }),
        None => ObjectStatus::current("Resource is current"),
    }
}

fn deployment(object: &Value) -> ObjectStatus {
    // Without a progress deadline the controller never sets Progressing, so the rollout counts
    // as progressing.
    let mut progressing = int_at(object, &["spec", "progressDeadlineSeconds"])
        .is_none_or(|deadline| deadline == i64::from(i32::MAX));
    let mut available = false;
    for condition in conditions(object) {
        match condition.kind {
            "Progressing" => {
                if condition.reason == "ProgressDeadlineExceeded" {
                    return ObjectStatus::failed("Progress deadline exceeded");
                }
                if condition.status == "True" && condition.reason == "NewReplicaSetAvailable" {
                    progressing = true;
                }
            }
            "Available" if condition.status == "True" => available = true,
            _ => {}
        }
    }
    let spec = int_or(object, &["spec", "replicas"], 1);
    let replicas = int_or(object, &["status", "replicas"], 0);
    let updated = int_or(object, &["status", "updatedReplicas"], 0);
    let ready = int_or(object, &["status", "readyReplicas"], 0);
    let available_replicas = int_or(object, &["status", "availableReplicas"], 0);
    if spec > replicas {
        return ObjectStatus::in_progress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > updated {
        return ObjectStatus::in_progress(format!("Updated: {updated}/{spec}"));
    }
    if replicas > spec {
        return ObjectStatus::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    if updated > available_replicas {
        return ObjectStatus::in_progress(format!("Available: {available_replicas}/{updated}"));
    }
    if spec > ready {
        return ObjectStatus::in_progress(format!("Ready: {ready}/{spec}"));
    }
    if !progressing {
        return ObjectStatus::in_progress("ReplicaSet not Available");
    }
    if !available {
        return ObjectStatus::in_progress("Deployment not Available");
    }
    ObjectStatus::current(format!("Deployment is available. Replicas: {replicas}"))
}

fn stateful_set(object: &Value) -> ObjectStatus {
    if str_at(object, &["spec", "updateStrategy", "type"]) == Some("OnDelete") {
        return ObjectStatus::current("StatefulSet is using the ondelete update strategy");
    }
    let spec = int_or(object, &["spec", "replicas"], 1);
    let ready = int_or(object, &["status", "readyReplicas"], 0);
    let current = int_or(object, &["status", "currentReplicas"], 0);
    let updated = int_or(object, &["status", "updatedReplicas"], 0);
    let replicas = int_or(object, &["status", "replicas"], 0);
    let partition = int_at(
        object,
        &["spec", "updateStrategy", "rollingUpdate", "partition"],
    );
    if spec > replicas {
        return ObjectStatus::in_progress(format!("Replicas: {replicas}/{spec}"));
    }
    if spec > ready {
        return ObjectStatus::in_progress(format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return ObjectStatus::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    if let Some(partition) = partition {
        if updated < spec - partition {
            return ObjectStatus::in_progress(format!("updated: {updated}/{}", spec - partition));
        }
        return ObjectStatus::current(format!("Partition rollout complete. updated: {updated}"));
    }
    if spec > current {
        return ObjectStatus::in_progress(format!("current: {current}/{spec}"));
    }
    let current_revision = str_at(object, &["status", "currentRevision"]).unwrap_or_default();
    let update_revision = str_at(object, &["status", "updateRevision"]).unwrap_or_default();
    if current_revision != update_revision {
        return ObjectStatus::in_progress("Waiting for updated revision to match current");
    }
    ObjectStatus::current(format!(
        "All replicas scheduled as expected. Replicas: {replicas}"
    ))
}

fn daemon_set(object: &Value) -> ObjectStatus {
    // The DaemonSet controller always sets both; without them it has not acted yet.
    let kind = "DaemonSet";
    if int_at(object, &["metadata", "generation"]).is_none() {
        return ObjectStatus::in_progress(format!("{kind} metadata.generation not found"));
    }
    if int_at(object, &["status", "observedGeneration"]).is_none() {
        return ObjectStatus::in_progress(format!("{kind} status.observedGeneration not found"));
    }
    let Some(desired) = int_at(object, &["status", "desiredNumberScheduled"]) else {
        return ObjectStatus::in_progress("Missing .status.desiredNumberScheduled");
    };
    let current = int_or(object, &["status", "currentNumberScheduled"], 0);
    let updated = int_or(object, &["status", "updatedNumberScheduled"], 0);
    let available = int_or(object, &["status", "numberAvailable"], 0);
    let ready = int_or(object, &["status", "numberReady"], 0);
    if desired > current {
        return ObjectStatus::in_progress(format!("Current: {current}/{desired}"));
    }
    if desired > updated {
        return ObjectStatus::in_progress(format!("Updated: {updated}/{desired}"));
    }
    if desired > available {
        return ObjectStatus::in_progress(format!("Available: {available}/{desired}"));
    }
    if desired > ready {
        return ObjectStatus::in_progress(format!("Ready: {ready}/{desired}"));
    }
    ObjectStatus::current(format!(
        "All replicas scheduled as expected. Replicas: {desired}"
    ))
}

fn replica_set(object: &Value) -> ObjectStatus {
    if conditions(object).any(|c| c.is("ReplicaFailure", "True")) {
        return ObjectStatus::in_progress("Replica Failure condition. Check Pods");
    }
    let spec = int_or(object, &["spec", "replicas"], 1);
    let replicas = int_or(object, &["status", "replicas"], 0);
    let ready = int_or(object, &["status", "readyReplicas"], 0);
    let available = int_or(object, &["status", "availableReplicas"], 0);
    let labelled = int_or(object, &["status", "fullyLabeledReplicas"], 0);
    if spec > labelled {
        return ObjectStatus::in_progress(format!("Labelled: {labelled}/{spec}"));
    }
    if spec > available {
        return ObjectStatus::in_progress(format!("Available: {available}/{spec}"));
    }
    if spec > ready {
        return ObjectStatus::in_progress(format!("Ready: {ready}/{spec}"));
    }
    if replicas > spec {
        return ObjectStatus::in_progress(format!("Pending termination: {}", replicas - spec));
    }
    ObjectStatus::current(format!("ReplicaSet is available. Replicas: {replicas}"))
}

fn job(object: &Value) -> ObjectStatus {
    let parallelism = int_or(object, &["spec", "parallelism"], 1);
    let completions = int_or(object, &["spec", "completions"], parallelism);
    let succeeded = int_or(object, &["status", "succeeded"], 0);
    let active = int_or(object, &["status", "active"], 0);
    let failed = int_or(object, &["status", "failed"], 0);
    for condition in conditions(object) {
        match (condition.kind, condition.status) {
            ("Complete", "True") => {
                return ObjectStatus::current(format!(
                    "Job Completed. succeeded: {succeeded}/{completions}"
                ));
            }
            ("Failed", "True") => {
                return ObjectStatus::failed(format!("Job Failed. failed: {failed}/{completions}"));
            }
            ("Suspended", "True") => return ObjectStatus::current("Job is suspended"),
            _ => {}
        }
    }
    if str_at(object, &["status", "startTime"]).is_none_or(str::is_empty) {
        return ObjectStatus::in_progress("Job not started");
    }
    ObjectStatus::current(format!(
        "Job in progress. success:{succeeded}, active: {active}, failed: {failed}"
    ))
}

fn pod(object: &Value, now: jiff::Timestamp) -> ObjectStatus {
    match str_at(object, &["status", "phase"]).unwrap_or_default() {
        "Succeeded" => ObjectStatus::current("Pod has completed successfully"),
        "Failed" => ObjectStatus::current("Pod has completed, but not successfully"),
        "Running" => {
            if conditions(object).any(|c| c.is("Ready", "True")) {
                return ObjectStatus::current("Pod is Ready");
            }
            let crash_looping: Vec<&str> = array_at(object, &["status", "containerStatuses"])
                .iter()
                .filter(|container| {
                    str_at(container, &["state", "waiting", "reason"]) == Some("CrashLoopBackOff")
                })
                .filter_map(|container| str_at(container, &["name"]))
                .collect();
            if !crash_looping.is_empty() {
                return ObjectStatus::failed(format!(
                    "Containers in CrashLoop state: {}",
                    crash_looping.join(",")
                ));
            }
            ObjectStatus::in_progress("Pod is running but is not Ready")
        }
        "Pending" => {
            let unschedulable = conditions(object)
                .any(|c| c.is("PodScheduled", "False") && c.reason == "Unschedulable");
            if !unschedulable {
                return ObjectStatus::in_progress("Pod is in the Pending phase");
            }
            let created = str_at(object, &["metadata", "creationTimestamp"])
                .and_then(|t| t.parse::<jiff::Timestamp>().ok());
            match created {
                Some(created) if now.duration_since(created) <= SCHEDULE_WINDOW => {
                    ObjectStatus::in_progress("Pod has not been scheduled")
                }
                _ => ObjectStatus::failed("Pod could not be scheduled"),
            }
        }
        "" => ObjectStatus::in_progress("Pod phase not available"),
        other => ObjectStatus::new(Status::Unknown, format!("unknown phase {other}")),
    }
}

fn pvc(object: &Value) -> ObjectStatus {
    match str_at(object, &["status", "phase"]) {
        Some("Bound") => ObjectStatus::current("PVC is Bound"),
        phase => ObjectStatus::in_progress(format!(
            "PVC is not Bound. phase: {}",
            phase.unwrap_or("unknown")
        )),
    }
}

fn service(object: &Value) -> ObjectStatus {
    // kstatus only requires a cluster IP of a LoadBalancer, not an external address: a cluster
    // without a load-balancer implementation would otherwise never become healthy.
    let load_balancer = str_at(object, &["spec", "type"]) == Some("LoadBalancer");
    if load_balancer && str_at(object, &["spec", "clusterIP"]).is_none_or(str::is_empty) {
        return ObjectStatus::in_progress("ClusterIP not set. Service type: LoadBalancer");
    }
    ObjectStatus::current("Service is ready")
}

fn crd(object: &Value) -> ObjectStatus {
    for condition in conditions(object) {
        if condition.is("NamesAccepted", "False") {
            return ObjectStatus::failed(condition.message);
        }
        if condition.kind == "Established" {
            if condition.status == "False" && condition.reason != "Installing" {
                return ObjectStatus::failed(condition.message);
            }
            if condition.status == "True" {
                return ObjectStatus::current("CRD is established");
            }
        }
    }
    ObjectStatus::in_progress("Install in progress")
}

/// One entry of `status.conditions`, with missing fields empty.
struct Condition<'a> {
    kind: &'a str,
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

impl Condition<'_> {
    fn is(&self, kind: &str, status: &str) -> bool {
        self.kind == kind && self.status == status
    }
}

fn conditions(object: &Value) -> impl Iterator<Item = Condition<'_>> {
    array_at(object, &["status", "conditions"])
        .iter()
        .map(|c| Condition {
            kind: str_at(c, &["type"]).unwrap_or_default(),
            status: str_at(c, &["status"]).unwrap_or_default(),
            reason: str_at(c, &["reason"]).unwrap_or_default(),
            message: str_at(c, &["message"]).unwrap_or_default(),
        })
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path)?.as_str()
}

fn int_at(value: &Value, path: &[&str]) -> Option<i64> {
    at(value, path)?.as_i64()
}

fn int_or(value: &Value, path: &[&str], default: i64) -> i64 {
    int_at(value, path).unwrap_or(default)
}

fn array_at<'a>(value: &'a Value, path: &[&str]) -> &'a [Value] {
    at(value, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(object: Value, status: Status, message: &str) {
        let got = compute_status(&object);
        assert_eq!(
            got,
            ObjectStatus::new(status, message),
            "object: {object:#}"
        );
    }

    fn deployment(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "podinfo", "namespace": "apps", "generation": 2},
            "spec": spec, "status": status,
        })
    }

    fn available_conditions() -> Value {
        json!([
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}
        ])
    }

    #[test]
    fn deployment_available() {
        check(
            deployment(
                json!({"replicas": 2, "progressDeadlineSeconds": 600}),
                json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                       "readyReplicas": 2, "availableReplicas": 2,
                       "conditions": available_conditions()}),
            ),
            Status::Current,
            "Deployment is available. Replicas: 2",
        );
        // Scaled to zero: nothing to wait for once the rollout is recorded.
        check(
            deployment(
                json!({"replicas": 0, "progressDeadlineSeconds": 600}),
                json!({"observedGeneration": 2, "conditions": available_conditions()}),
            ),
            Status::Current,
            "Deployment is available. Replicas: 0",
        );
    }

    #[test]
    fn deployment_rolling_out() {
        let spec = json!({"replicas": 3, "progressDeadlineSeconds": 600});
        for (status, message) in [
            (json!({}), "Replicas: 0/3"),
            (
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1}),
                "Updated: 1/3",
            ),
            (
                json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3}),
                "Pending termination: 1",
            ),
            (
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                       "availableReplicas": 2}),
                "Available: 2/3",
            ),
            (
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                       "availableReplicas": 3, "readyReplicas": 1}),
                "Ready: 1/3",
            ),
            (
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                       "availableReplicas": 3, "readyReplicas": 3,
                       "conditions": [{"type": "Available", "status": "True"},
                                      {"type": "Progressing", "status": "True",
                                       "reason": "ReplicaSetUpdated"}]}),
                "ReplicaSet not Available",
            ),
            (
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                       "availableReplicas": 3, "readyReplicas": 3,
                       "conditions": [{"type": "Available", "status": "False"},
                                      {"type": "Progressing", "status": "True",
                                       "reason": "NewReplicaSetAvailable"}]}),
                "Deployment not Available",
            ),
        ] {
            check(
                deployment(spec.clone(), status),
                Status::InProgress,
                message,
            );
        }
    }

    #[test]
    fn deployment_without_progress_deadline_needs_no_progressing_condition() {
        check(
            deployment(
                json!({"replicas": 1}),
                json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": 1, "availableReplicas": 1,
                       "conditions": [{"type": "Available", "status": "True"}]}),
            ),
            Status::Current,
            "Deployment is available. Replicas: 1",
        );
    }

    #[test]
    fn deployment_past_its_progress_deadline_failed() {
        check(
            deployment(
                json!({"replicas": 1, "progressDeadlineSeconds": 60}),
                json!({"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                       "conditions": [{"type": "Progressing", "status": "False",
                                       "reason": "ProgressDeadlineExceeded",
                                       "message": "ReplicaSet \"podinfo-1\" has timed out progressing."}]}),
            ),
            Status::Failed,
            "Progress deadline exceeded",
        );
    }

    #[test]
    fn unobserved_generation_is_in_progress_for_every_kind() {
        check(
            deployment(
                json!({"replicas": 1}),
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
                       "readyReplicas": 1, "availableReplicas": 1,
                       "conditions": available_conditions()}),
            ),
            Status::InProgress,
            "Deployment generation is 2, but latest observed generation is 1",
        );
        check(
            json!({"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                   "metadata": {"name": "apps", "generation": 1},
                   "status": {"observedGeneration": -1}}),
            Status::InProgress,
            "Kustomization generation is 1, but latest observed generation is -1",
        );
    }

    #[test]
    fn terminating_wins_over_everything() {
        check(
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "x", "deletionTimestamp": "2025-01-01T00:00:00Z"}}),
            Status::Terminating,
            "Resource scheduled for deletion",
        );
    }

    #[test]
    fn stateful_sets() {
        let sts = |spec: Value, status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
                   "metadata": {"name": "db", "generation": 1}, "spec": spec, "status": status})
        };
        check(
            sts(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2,
                       "currentReplicas": 2, "updatedReplicas": 2,
                       "currentRevision": "db-1", "updateRevision": "db-1"}),
            ),
            Status::Current,
            "All replicas scheduled as expected. Replicas: 2",
        );
        check(
            sts(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 1}),
            ),
            Status::InProgress,
            "Ready: 1/2",
        );
        check(
            sts(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2,
                       "currentReplicas": 2, "currentRevision": "db-1", "updateRevision": "db-2"}),
            ),
            Status::InProgress,
            "Waiting for updated revision to match current",
        );
        check(
            sts(
                json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate",
                       "rollingUpdate": {"partition": 2}}}),
                json!({"observedGeneration": 1, "replicas": 3, "readyReplicas": 3,
                       "updatedReplicas": 1}),
            ),
            Status::Current,
            "Partition rollout complete. updated: 1",
        );
        check(
            sts(
                json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}}),
                json!({}),
            ),
            Status::Current,
            "StatefulSet is using the ondelete update strategy",
        );
    }

    #[test]
    fn daemon_sets() {
        let ds = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                   "metadata": {"name": "agent", "generation": 1}, "status": status})
        };
        check(
            ds(json!({})),
            Status::InProgress,
            "DaemonSet status.observedGeneration not found",
        );
        check(
            ds(json!({"observedGeneration": 1})),
            Status::InProgress,
            "Missing .status.desiredNumberScheduled",
        );
        check(
            ds(json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                      "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
                      "numberAvailable": 2, "numberReady": 3})),
            Status::InProgress,
            "Available: 2/3",
        );
        check(
            ds(json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                      "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
                      "numberAvailable": 3, "numberReady": 3})),
            Status::Current,
            "All replicas scheduled as expected. Replicas: 3",
        );
    }

    #[test]
    fn replica_sets() {
        let rs = |status: Value| {
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                   "metadata": {"name": "web"}, "spec": {"replicas": 2}, "status": status})
        };
        check(
            rs(
                json!({"replicas": 2, "fullyLabeledReplicas": 2, "availableReplicas": 2,
                      "readyReplicas": 2}),
            ),
            Status::Current,
            "ReplicaSet is available. Replicas: 2",
        );
        check(
            rs(json!({"conditions": [{"type": "ReplicaFailure", "status": "True"}]})),
            Status::InProgress,
            "Replica Failure condition. Check Pods",
        );
        check(
            rs(json!({"replicas": 2, "fullyLabeledReplicas": 1})),
            Status::InProgress,
            "Labelled: 1/2",
        );
    }

    #[test]
    fn jobs() {
        let job = |status: Value| {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
                   "spec": {"completions": 1}, "status": status})
        };
        check(job(json!({})), Status::InProgress, "Job not started");
        check(
            job(json!({"startTime": "2025-01-01T00:00:00Z", "active": 1})),
            Status::Current,
            "Job in progress. success:0, active: 1, failed: 0",
        );
        check(
            job(json!({"succeeded": 1, "startTime": "2025-01-01T00:00:00Z",
                       "conditions": [{"type": "Complete", "status": "True"}]})),
            Status::Current,
            "Job Completed. succeeded: 1/1",
        );
        check(
            job(json!({"failed": 6, "startTime": "2025-01-01T00:00:00Z",
                       "conditions": [{"type": "Failed", "status": "True",
                                       "reason": "BackoffLimitExceeded"}]})),
            Status::Failed,
            "Job Failed. failed: 6/1",
        );
        check(
            job(json!({"conditions": [{"type": "Suspended", "status": "True"}]})),
            Status::Current,
            "Job is suspended",
        );
    }

    fn pod(created: &str, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-0", "creationTimestamp": created}, "status": status})
    }

    #[test]
    fn pods() {
        check(
            pod(
                "2025-01-01T00:00:00Z",
                json!({"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}]}),
            ),
            Status::Current,
            "Pod is Ready",
        );
        check(
            pod(
                "2025-01-01T00:00:00Z",
                json!({"phase": "Running",
                "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [
                    {"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}},
                    {"name": "sidecar", "state": {"running": {}}},
                    {"name": "init", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
                ]}),
            ),
            Status::Failed,
            "Containers in CrashLoop state: app,init",
        );
        check(
            pod("2025-01-01T00:00:00Z", json!({"phase": "Running"})),
            Status::InProgress,
            "Pod is running but is not Ready",
        );
        check(
            pod("2025-01-01T00:00:00Z", json!({"phase": "Succeeded"})),
            Status::Current,
            "Pod has completed successfully",
        );
        check(
            pod("2025-01-01T00:00:00Z", json!({"phase": "Failed"})),
            Status::Current,
            "Pod has completed, but not successfully",
        );
        check(
            pod("2025-01-01T00:00:00Z", json!({})),
            Status::InProgress,
            "Pod phase not available",
        );
        check(
            pod("2025-01-01T00:00:00Z", json!({"phase": "Weird"})),
            Status::Unknown,
            "unknown phase Weird",
        );
    }

    #[test]
    fn unschedulable_pods_fail_after_the_schedule_window() {
        let unschedulable = json!({"phase": "Pending", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}
        ]});
        let created: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let object = pod("2025-01-01T00:00:00Z", unschedulable);
        let early = created + jiff::SignedDuration::from_secs(5);
        let late = created + jiff::SignedDuration::from_secs(16);
        assert_eq!(
            compute_status_at(&object, early),
            ObjectStatus::new(Status::InProgress, "Pod has not been scheduled")
        );
        assert_eq!(
            compute_status_at(&object, late),
            ObjectStatus::new(Status::Failed, "Pod could not be scheduled")
        );
        check(
            pod("2025-01-01T00:00:00Z", json!({"phase": "Pending"})),
            Status::InProgress,
            "Pod is in the Pending phase",
        );
    }

    #[test]
    fn persistent_volume_claims() {
        let pvc = |status: Value| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "data"}, "status": status})
        };
        check(
            pvc(json!({"phase": "Bound"})),
            Status::Current,
            "PVC is Bound",
        );
        check(
            pvc(json!({"phase": "Pending"})),
            Status::InProgress,
            "PVC is not Bound. phase: Pending",
        );
        check(
            pvc(json!({})),
            Status::InProgress,
            "PVC is not Bound. phase: unknown",
        );
    }

    #[test]
    fn services() {
        let svc = |spec: Value| {
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                   "spec": spec})
        };
        check(
            svc(json!({"type": "ClusterIP", "clusterIP": "10.0.0.1"})),
            Status::Current,
            "Service is ready",
        );
        check(
            svc(json!({"type": "LoadBalancer", "clusterIP": "10.0.0.1"})),
            Status::Current,
            "Service is ready",
        );
        check(
            svc(json!({"type": "LoadBalancer"})),
            Status::InProgress,
            "ClusterIP not set. Service type: LoadBalancer",
        );
    }

    #[test]
    fn custom_resource_definitions() {
        let crd = |conditions: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"},
                   "status": {"conditions": conditions}})
        };
        check(
            crd(json!([{"type": "NamesAccepted", "status": "True"},
                       {"type": "Established", "status": "True"}])),
            Status::Current,
            "CRD is established",
        );
        check(
            crd(json!([{"type": "Established", "status": "False", "reason": "Installing"}])),
            Status::InProgress,
            "Install in progress",
        );
        check(
            crd(
                json!([{"type": "NamesAccepted", "status": "False", "reason": "MultipleNamesNotAllowed",
                        "message": "\"widget\" is already in use"}]),
            ),
            Status::Failed,
            "\"widget\" is already in use",
        );
    }

    fn flux(status: Value) -> Value {
        json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
               "metadata": {"name": "podinfo", "namespace": "apps", "generation": 1},
               "status": status})
    }

    #[test]
    fn flux_objects_follow_ready_reconciling_and_stalled() {
        check(
            flux(json!({"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "True", "reason": "InstallSucceeded",
                 "message": "Helm install succeeded for release apps/podinfo.v1"}]})),
            Status::Current,
            "Helm install succeeded for release apps/podinfo.v1",
        );
        check(
            flux(json!({"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "Unknown", "reason": "Progressing",
                 "message": "Fresh install in progress"},
                {"type": "Reconciling", "status": "True", "reason": "Progressing",
                 "message": "Fresh install in progress"}]})),
            Status::InProgress,
            "Fresh install in progress",
        );
        check(
            flux(json!({"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "InstallFailed",
                 "message": "install retries exhausted"},
                {"type": "Stalled", "status": "True", "reason": "RetriesExceeded",
                 "message": "Failed to install after 1 attempt(s)"}]})),
            Status::Failed,
            "Failed to install after 1 attempt(s)",
        );
        check(
            flux(json!({"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "ArtifactFailed",
                 "message": "source not ready"}]})),
            Status::InProgress,
            "source not ready",
        );
        check(
            flux(json!({"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "False"}]})),
            Status::InProgress,
            "Ready condition is False",
        );
    }

    #[test]
    fn objects_without_status_are_current() {
        check(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}),
            Status::Current,
            "Resource is always ready",
        );
        check(
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                   "metadata": {"name": "x"}}),
            Status::Current,
            "Resource is current",
        );
        check(
            json!({"apiVersion": "example.com/v1", "kind": "Widget",
                   "metadata": {"name": "x", "generation": 4}, "status": {"phase": "odd"}}),
            Status::Current,
            "Resource is current",
        );
    }

    #[test]
    fn status_names_are_kstatus_names() {
        assert_eq!(Status::InProgress.to_string(), "InProgress");
        assert_eq!(Status::NotFound.to_string(), "NotFound");
        assert_eq!(Status::Current.as_str(), "Current");
    }
}
