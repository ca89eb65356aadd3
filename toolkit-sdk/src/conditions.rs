//! Status condition types, reasons and pure helpers over `status.conditions`.
//!
//! Conditions are Kubernetes' `metav1.Condition`
//! ([`Condition`]). The
//! condition [`types`] and [`reasons`] are spelled exactly as Flux v2.9 spells them. The
//! helpers are pure functions over a `Vec<Condition>` (or a slice), taking the current time
//! and the object's generation as a [`Stamp`] so tests are deterministic.
//!
//! Ferroflux follows Flux's use of kstatus:
//!
//! - `Ready` says whether the last reconcile achieved the desired state;
//! - `Reconciling=True` while a reconcile is in progress (reason `Progressing`), or being
//!   retried after a failure (reason `ProgressingWithRetry`);
//! - `Stalled=True` when retrying cannot help until the spec changes;
//! - negative-polarity conditions (`FetchFailed`, `BuildFailed`, `ArtifactOutdated`, ...)
//!   exist only while true: they are set to `True` on failure and deleted when resolved.
//!
//! # Guarantees
//!
//! - [`set`] and the `mark_*` helpers keep `lastTransitionTime` when the status does not
//!   change, and set it to `now` when it does (or when the condition is new). Reason, message
//!   and `observedGeneration` are always updated.
//! - After any helper, at most one condition of each type exists, and conditions are sorted
//!   `Ready` first, then by type; writing the same facts twice gives the same list, so a
//!   status write compares equal and can be skipped.
//! - [`mark_reconciling`] deletes `Stalled` and [`mark_stalled`] deletes `Reconciling`: the
//!   two are never true together.
//! - [`summarize_ready`] derives `Ready` only from the list and its [`Summary`] input, with
//!   these rules, first match wins:
//!   1. `Stalled=True`: `Ready=False` with the `Stalled` reason and message;
//!   2. a [`Summary::failure`] of this reconcile: `Ready=False` with its reason and message;
//!   3. the first negative-polarity type of [`Summary::negative_polarity`] whose condition is
//!      `True`: `Ready=False` with that condition's reason and message;
//!   4. `Reconciling=True`: `Ready=Unknown`, reason `Progressing`, with the `Reconciling`
//!      message;
//!   5. otherwise `Ready=True` with [`Summary::success_reason`] and
//!      [`Summary::success_message`].
//!
//! # Caveats
//!
//! - [`summarize_ready`] does not remove `Reconciling`: the runtime deletes it when the
//!   reconcile ends successfully (see [`finish_reconciling`]); keeping it while a failure is
//!   retried is what kstatus expects.
//! - [`is_unknown`] is true for a missing condition, like Flux's helper; use [`has`] to tell
//!   the two apart.

use std::cmp::Ordering;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition status values.
pub mod status {
    /// The condition holds.
    pub const TRUE: &str = "True";
    /// The condition does not hold.
    pub const FALSE: &str = "False";
    /// It is not known whether the condition holds.
    pub const UNKNOWN: &str = "Unknown";
}

/// Condition types used by Flux v2.9 kinds.
pub mod types {
    // Generic types, on every kind (fluxcd/pkg `apis/meta`).

    /// Whether the object reached its desired state. Set on every kind.
    pub const READY: &str = "Ready";
    /// The reconcile cannot make progress until the object changes (kstatus).
    pub const STALLED: &str = "Stalled";
    /// A reconcile is in progress or being retried (kstatus).
    pub const RECONCILING: &str = "Reconciling";
    /// The applied workloads passed their health checks (Kustomization, HelmRelease).
    pub const HEALTHY: &str = "Healthy";

    // Source kinds (source-controller).

    /// Negative polarity: the stored artifact is older than what the source now points at.
    pub const ARTIFACT_OUTDATED: &str = "ArtifactOutdated";
    /// The artifact in `status.artifact` exists in storage.
    pub const ARTIFACT_IN_STORAGE: &str = "ArtifactInStorage";
    /// Negative polarity: fetching from the upstream source failed.
    pub const FETCH_FAILED: &str = "FetchFailed";
    /// Negative polarity: building the artifact failed (also used by kustomize-controller's
    /// reason of the same name; as a condition type it is set by HelmChart).
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// Negative polarity: reading or writing the artifact storage failed.
    pub const STORAGE_OPERATION_FAILED: &str = "StorageOperationFailed";
    /// Negative polarity: a GitRepository `spec.include` could not be resolved.
    pub const INCLUDE_UNAVAILABLE: &str = "IncludeUnavailable";
    /// The signature of the fetched content was verified (GitRepository, OCIRepository,
    /// HelmChart).
    pub const SOURCE_VERIFIED: &str = "SourceVerified";

    /// The negative-polarity types of the source kinds, in the order Flux ranks them when
    /// summarising `Ready`.
    pub const SOURCE_NEGATIVE_POLARITY: [&str; 5] = [
        STORAGE_OPERATION_FAILED,
        FETCH_FAILED,
        INCLUDE_UNAVAILABLE,
        ARTIFACT_OUTDATED,
        BUILD_FAILED,
    ];
}

/// Condition reasons used by Flux v2.9 kinds, grouped by where they apply.
pub mod reasons {
    // Generic reasons (fluxcd/pkg `apis/meta`).

    /// The reconcile succeeded (sources and most kinds, for `Ready=True`).
    pub const SUCCEEDED: &str = "Succeeded";
    /// The reconcile failed (generic `Ready=False`).
    pub const FAILED: &str = "Failed";
    /// A reconcile is in progress.
    pub const PROGRESSING: &str = "Progressing";
    /// A reconcile failed and is being retried.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// The object is suspended (`spec.suspend: true`).
    pub const SUSPENDED: &str = "Suspended";
    /// A dependency (`spec.dependsOn`, a source) is not ready yet.
    pub const DEPENDENCY_NOT_READY: &str = "DependencyNotReady";
    /// The reconcile succeeded (Kustomization, HelmRelease and notification kinds).
    pub const RECONCILIATION_SUCCEEDED: &str = "ReconciliationSucceeded";
    /// The reconcile failed (Kustomization, HelmRelease and notification kinds).
    pub const RECONCILIATION_FAILED: &str = "ReconciliationFailed";
    /// Health checks of the applied objects failed or timed out.
    pub const HEALTH_CHECK_FAILED: &str = "HealthCheckFailed";
    /// The source artifact could not be fetched or verified by a consumer.
    pub const ARTIFACT_FAILED: &str = "ArtifactFailed";
    /// Building the manifests (kustomize build, chart rendering) failed.
    pub const BUILD_FAILED: &str = "BuildFailed";
    /// A CEL expression in the spec does not compile.
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
    /// The spec asks for plain HTTP while the controller forbids it (`--insecure-allow-http=false`).
    pub const INSECURE_CONNECTIONS_DISALLOWED: &str = "InsecureConnectionsDisallowed";
    /// The spec uses a feature whose gate is off in the controller.
    pub const FEATURE_GATE_DISABLED: &str = "FeatureGateDisabled";

    // Source kinds (source-controller).

    /// `ArtifactOutdated` reason: the upstream has a revision the artifact does not hold.
    pub const NEW_REVISION: &str = "NewRevision";
    /// The stored artifact already holds the upstream revision.
    pub const ARTIFACT_UP_TO_DATE: &str = "ArtifactUpToDate";
    /// The source URL cannot be parsed or is not supported.
    pub const URL_INVALID: &str = "URLInvalid";
    /// The credentials were missing, malformed or rejected.
    pub const AUTHENTICATION_FAILED: &str = "AuthenticationFailed";
    /// Verifying a signature failed.
    pub const VERIFICATION_ERROR: &str = "VerificationError";
    /// A storage directory could not be created.
    pub const DIRECTORY_CREATION_FAILED: &str = "DirectoryCreationFailed";
    /// A stat call on storage failed.
    pub const STAT_OPERATION_FAILED: &str = "StatOperationFailed";
    /// Reading from storage failed.
    pub const READ_OPERATION_FAILED: &str = "ReadOperationFailed";
    /// The storage lock for the artifact could not be acquired.
    pub const ACQUIRE_LOCK_FAILED: &str = "AcquireLockFailed";
    /// A path in the spec does not exist in the source or escapes it.
    pub const INVALID_PATH: &str = "InvalidPath";
    /// Writing the artifact archive failed.
    pub const ARCHIVE_OPERATION_FAILED: &str = "ArchiveOperationFailed";
    /// Updating the `latest` symlink in storage failed.
    pub const SYMLINK_UPDATE_FAILED: &str = "SymlinkUpdateFailed";
    /// A git clone, fetch or checkout failed (GitRepository, ImageUpdateAutomation).
    pub const GIT_OPERATION_FAILED: &str = "GitOperationFailed";
    /// Pulling an OCI artifact failed (OCIRepository).
    pub const OCI_ARTIFACT_PULL_FAILED: &str = "OCIArtifactPullFailed";
    /// Extracting an OCI layer failed (OCIRepository).
    pub const OCI_ARTIFACT_LAYER_OPERATION_FAILED: &str = "OCIArtifactLayerOperationFailed";
    /// Fetching or parsing a Helm repository index failed (HelmRepository).
    pub const INDEXATION_FAILED: &str = "IndexationFailed";
    /// Pulling a Helm chart failed (HelmChart).
    pub const CHART_PULL_FAILED: &str = "ChartPullFailed";
    /// Packaging a Helm chart from a source failed (HelmChart).
    pub const CHART_PACKAGE_FAILED: &str = "ChartPackageFailed";
    /// A bucket operation failed (Bucket).
    pub const BUCKET_OPERATION_FAILED: &str = "BucketOperationFailed";

    // Kustomization (kustomize-controller).

    /// Deleting objects that left the source failed.
    pub const PRUNE_FAILED: &str = "PruneFailed";
}

/// When a condition change happens, and for which generation of the object.
#[derive(Clone, Debug, PartialEq)]
pub struct Stamp {
    /// The time written to `lastTransitionTime` when a status changes.
    pub now: Time,
    /// The object's `metadata.generation`, written to `observedGeneration`.
    pub generation: Option<i64>,
}

impl Stamp {
    /// A stamp for the given time and generation.
    pub fn new(now: Time, generation: Option<i64>) -> Self {
        Stamp { now, generation }
    }
}

/// The condition of the given type, if present.
pub fn get<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether a condition of the given type is present.
pub fn has(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_some()
}

/// Whether the condition is present with the given status.
pub fn has_status(conditions: &[Condition], type_: &str, status: &str) -> bool {
    get(conditions, type_).is_some_and(|c| c.status == status)
}

/// Whether the condition is present with status `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    has_status(conditions, type_, status::TRUE)
}

/// Whether the condition is present with status `False`.
pub fn is_false(conditions: &[Condition], type_: &str) -> bool {
    has_status(conditions, type_, status::FALSE)
}

/// Whether the condition has status `Unknown` or is missing.
pub fn is_unknown(conditions: &[Condition], type_: &str) -> bool {
    get(conditions, type_).is_none_or(|c| c.status == status::UNKNOWN)
}

/// Whether `Ready=True`.
pub fn is_ready(conditions: &[Condition]) -> bool {
    is_true(conditions, types::READY)
}

/// Whether `Stalled=True`.
pub fn is_stalled(conditions: &[Condition]) -> bool {
    is_true(conditions, types::STALLED)
}

/// Whether `Reconciling=True`.
pub fn is_reconciling(conditions: &[Condition]) -> bool {
    is_true(conditions, types::RECONCILING)
}

/// The reason of the condition, if present.
pub fn reason<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    get(conditions, type_).map(|c| c.reason.as_str())
}

/// The message of the condition, if present.
pub fn message<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a str> {
    get(conditions, type_).map(|c| c.message.as_str())
}

/// Insert or update the condition of type `type_`.
///
/// `lastTransitionTime` becomes `stamp.now` when the condition is new or its status changes
/// and is kept otherwise; reason, message and `observedGeneration` are always written.
pub fn set(
    conditions: &mut Vec<Condition>,
    stamp: &Stamp,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
) {
    match conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(existing) => {
            if existing.status != status {
                existing.status = status.to_owned();
                existing.last_transition_time = stamp.now.clone();
            }
            reason.clone_into(&mut existing.reason);
            message.clone_into(&mut existing.message);
            existing.observed_generation = stamp.generation;
        }
        None => conditions.push(Condition {
            type_: type_.to_owned(),
            status: status.to_owned(),
            reason: reason.to_owned(),
            message: message.to_owned(),
            observed_generation: stamp.generation,
            last_transition_time: stamp.now.clone(),
        }),
    }
    normalize(conditions);
}

/// The longest condition message the API server accepts, in characters (the `maxLength` of
/// `metav1.Condition.message`); a status write with a longer one is rejected as a whole.
pub const MESSAGE_MAX_CHARS: usize = 32768;

/// Shortens every message longer than [`MESSAGE_MAX_CHARS`] characters to its beginning (where
/// errors say what failed) followed by a note of how much was cut, so the status that carries
/// it can still be written. Returns whether a message was shortened.
pub fn limit_messages(conditions: &mut [Condition]) -> bool {
    let mut shortened = false;
    for condition in conditions.iter_mut() {
        let total = condition.message.chars().count();
        if total <= MESSAGE_MAX_CHARS {
            continue;
        }
        // The note added below is well under 64 characters.
        let keep = MESSAGE_MAX_CHARS - 64;
        let cut_at = condition
            .message
            .char_indices()
            .nth(keep)
            .map_or(condition.message.len(), |(index, _)| index);
        condition.message.truncate(cut_at);
        condition.message.push_str(&format!(
            " ... [{} more characters not shown]",
            total - keep
        ));
        shortened = true;
    }
    shortened
}

/// Insert or update a whole condition, following the rules of [`set`]: the given
/// `lastTransitionTime` is used for a new condition or a status change (the existing one is
/// kept otherwise), and `observedGeneration` is taken from the condition as given.
pub fn set_condition(conditions: &mut Vec<Condition>, condition: Condition) {
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            let keep = existing.status == condition.status;
            let previous = existing.last_transition_time.clone();
            *existing = condition;
            if keep {
                existing.last_transition_time = previous;
            }
        }
        None => conditions.push(condition),
    }
    normalize(conditions);
}

/// Remove the condition of the given type. Returns whether one was removed.
pub fn delete(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_);
    before != conditions.len()
}

/// Set the condition to `True`.
pub fn mark_true(
    conditions: &mut Vec<Condition>,
    stamp: &Stamp,
    type_: &str,
    reason: &str,
    message: &str,
) {
    set(conditions, stamp, type_, status::TRUE, reason, message);
}

/// Set the condition to `False`.
pub fn mark_false(
    conditions: &mut Vec<Condition>,
    stamp: &Stamp,
    type_: &str,
    reason: &str,
    message: &str,
) {
    set(conditions, stamp, type_, status::FALSE, reason, message);
}

/// Set the condition to `Unknown`.
pub fn mark_unknown(
    conditions: &mut Vec<Condition>,
    stamp: &Stamp,
    type_: &str,
    reason: &str,
    message: &str,
) {
    set(conditions, stamp, type_, status::UNKNOWN, reason, message);
}

/// `Reconciling=True` with reason `Progressing`; deletes `Stalled`.
pub fn mark_reconciling(conditions: &mut Vec<Condition>, stamp: &Stamp, message: &str) {
    delete(conditions, types::STALLED);
    mark_true(
        conditions,
        stamp,
        types::RECONCILING,
        reasons::PROGRESSING,
        message,
    );
}

/// `Reconciling=True` with reason `ProgressingWithRetry` (a failed reconcile will be
/// retried); deletes `Stalled`. The message is kept when `message` is `None`.
pub fn mark_reconciling_with_retry(
    conditions: &mut Vec<Condition>,
    stamp: &Stamp,
    message: Option<&str>,
) {
    delete(conditions, types::STALLED);
    let message = message
        .map(str::to_owned)
        .or_else(|| self::message(conditions, types::RECONCILING).map(str::to_owned))
        .unwrap_or_default();
    mark_true(
        conditions,
        stamp,
        types::RECONCILING,
        reasons::PROGRESSING_WITH_RETRY,
        &message,
    );
}

/// `Stalled=True` with the given reason and message; deletes `Reconciling`.
pub fn mark_stalled(conditions: &mut Vec<Condition>, stamp: &Stamp, reason: &str, message: &str) {
    delete(conditions, types::RECONCILING);
    mark_true(conditions, stamp, types::STALLED, reason, message);
}

/// End of a successful reconcile: delete `Reconciling` and `Stalled`.
pub fn finish_reconciling(conditions: &mut Vec<Condition>) {
    delete(conditions, types::RECONCILING);
    delete(conditions, types::STALLED);
}

/// Delete every negative-polarity condition in `negative_polarity` that is not `True`.
///
/// Negative-polarity conditions exist only while true; call this after the steps ran, or
/// use [`resolve`] when a step knows its failure is gone.
pub fn remove_resolved(conditions: &mut Vec<Condition>, negative_polarity: &[&str]) {
    conditions
        .retain(|c| !(negative_polarity.contains(&c.type_.as_str()) && c.status != status::TRUE));
}

/// A negative-polarity condition is resolved: delete it. Returns whether it was present.
pub fn resolve(conditions: &mut Vec<Condition>, type_: &str) -> bool {
    delete(conditions, type_)
}

/// A reconcile failure not recorded in any condition (for example a dependency that is
/// not ready).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure<'a> {
    /// The `Ready` reason.
    pub reason: &'a str,
    /// The `Ready` message.
    pub message: &'a str,
}

/// The input of [`summarize_ready`] besides the conditions themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary<'a> {
    /// Negative-polarity condition types of the kind, highest priority first.
    pub negative_polarity: &'a [&'a str],
    /// A failure of this reconcile that no condition records, if any.
    pub failure: Option<Failure<'a>>,
    /// `Ready` reason when everything succeeded, for example `Succeeded` or
    /// `ReconciliationSucceeded`.
    pub success_reason: &'a str,
    /// `Ready` message when everything succeeded, for example
    /// `stored artifact for revision 'main@sha1:...'`.
    pub success_message: &'a str,
}

impl<'a> Summary<'a> {
    /// A summary with the given negative-polarity types and success reason and message.
    pub fn new(
        negative_polarity: &'a [&'a str],
        success_reason: &'a str,
        success_message: &'a str,
    ) -> Self {
        Summary {
            negative_polarity,
            failure: None,
            success_reason,
            success_message,
        }
    }

    /// Record a failure of this reconcile that no condition holds.
    pub fn with_failure(mut self, reason: &'a str, message: &'a str) -> Self {
        self.failure = Some(Failure { reason, message });
        self
    }
}

/// Derive `Ready` from the other conditions (rules in the module docs).
///
/// Returns the resulting `Ready` status: `"True"`, `"False"` or `"Unknown"`.
pub fn summarize_ready(
    conditions: &mut Vec<Condition>,
    stamp: &Stamp,
    summary: &Summary<'_>,
) -> &'static str {
    let (status, reason, message) = ready_from(conditions, summary);
    set(conditions, stamp, types::READY, status, &reason, &message);
    status
}

fn ready_from(conditions: &[Condition], summary: &Summary<'_>) -> (&'static str, String, String) {
    if let Some(stalled) = get(conditions, types::STALLED).filter(|c| c.status == status::TRUE) {
        return (
            status::FALSE,
            stalled.reason.clone(),
            stalled.message.clone(),
        );
    }
    if let Some(failure) = summary.failure {
        return (
            status::FALSE,
            failure.reason.to_owned(),
            failure.message.to_owned(),
        );
    }
    for type_ in summary.negative_polarity {
        if let Some(c) = get(conditions, type_).filter(|c| c.status == status::TRUE) {
            return (status::FALSE, c.reason.clone(), c.message.clone());
        }
    }
    if let Some(reconciling) =
        get(conditions, types::RECONCILING).filter(|c| c.status == status::TRUE)
    {
        return (
            status::UNKNOWN,
            reasons::PROGRESSING.to_owned(),
            reconciling.message.clone(),
        );
    }
    (
        status::TRUE,
        summary.success_reason.to_owned(),
        summary.success_message.to_owned(),
    )
}

/// Sort `Ready` first, then by type, and keep one condition per type (the first seen).
fn normalize(conditions: &mut Vec<Condition>) {
    let mut seen = std::collections::BTreeSet::new();
    conditions.retain(|c| seen.insert(c.type_.clone()));
    conditions.sort_by(|a, b| order(&a.type_, &b.type_));
}

fn order(a: &str, b: &str) -> Ordering {
    match (a == types::READY, b == types::READY) {
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.cmp(b),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn at(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:05:00Z";

    fn stamp(t: &str, generation: i64) -> Stamp {
        Stamp::new(at(t), Some(generation))
    }

    fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: Some(1),
            last_transition_time: at(T0),
        }
    }

    /// (type, status, reason, message) of each condition, in list order.
    fn view(conditions: &[Condition]) -> Vec<(&str, &str, &str, &str)> {
        conditions
            .iter()
            .map(|c| {
                (
                    c.type_.as_str(),
                    c.status.as_str(),
                    c.reason.as_str(),
                    c.message.as_str(),
                )
            })
            .collect()
    }

    #[test]
    fn getters() {
        let list = vec![
            cond("Ready", "True", "Succeeded", "ok"),
            cond("FetchFailed", "False", "GitOperationFailed", "x"),
            cond("Healthy", "Unknown", "Progressing", "y"),
        ];
        assert_eq!(
            get(&list, "Ready").map(|c| c.reason.as_str()),
            Some("Succeeded")
        );
        assert!(get(&list, "Stalled").is_none());
        assert!(has(&list, "Healthy") && !has(&list, "Stalled"));

        // (type, is_true, is_false, is_unknown)
        let table = [
            ("Ready", true, false, false),
            ("FetchFailed", false, true, false),
            ("Healthy", false, false, true),
            ("Stalled", false, false, true),
        ];
        for (t, want_true, want_false, want_unknown) in table {
            assert_eq!(is_true(&list, t), want_true, "{t}");
            assert_eq!(is_false(&list, t), want_false, "{t}");
            assert_eq!(is_unknown(&list, t), want_unknown, "{t}");
        }
        assert!(is_ready(&list));
        assert!(!is_stalled(&list) && !is_reconciling(&list));
        assert_eq!(reason(&list, "FetchFailed"), Some("GitOperationFailed"));
        assert_eq!(message(&list, "Healthy"), Some("y"));
        assert_eq!(message(&list, "Stalled"), None);
    }

    #[test]
    fn set_table() {
        struct Case {
            name: &'static str,
            before: Vec<Condition>,
            status: &'static str,
            reason: &'static str,
            message: &'static str,
            want_transition: &'static str,
        }
        let cases = [
            Case {
                name: "new condition gets now",
                before: vec![],
                status: "True",
                reason: "Succeeded",
                message: "ok",
                want_transition: T1,
            },
            Case {
                name: "same status keeps lastTransitionTime",
                before: vec![cond("Ready", "True", "Succeeded", "ok")],
                status: "True",
                reason: "Succeeded",
                message: "ok",
                want_transition: T0,
            },
            Case {
                name: "same status, new reason and message keeps lastTransitionTime",
                before: vec![cond("Ready", "False", "GitOperationFailed", "clone failed")],
                status: "False",
                reason: "AuthenticationFailed",
                message: "bad credentials",
                want_transition: T0,
            },
            Case {
                name: "status change moves lastTransitionTime",
                before: vec![cond("Ready", "False", "Failed", "boom")],
                status: "True",
                reason: "Succeeded",
                message: "ok",
                want_transition: T1,
            },
            Case {
                name: "unknown to false is a change",
                before: vec![cond("Ready", "Unknown", "Progressing", "")],
                status: "False",
                reason: "Failed",
                message: "boom",
                want_transition: T1,
            },
        ];
        for case in cases {
            let mut list = case.before;
            set(
                &mut list,
                &stamp(T1, 7),
                "Ready",
                case.status,
                case.reason,
                case.message,
            );
            assert_eq!(list.len(), 1, "{}", case.name);
            let c = &list[0];
            assert_eq!(
                (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
                (case.status, case.reason, case.message),
                "{}",
                case.name
            );
            assert_eq!(
                c.last_transition_time,
                at(case.want_transition),
                "{}",
                case.name
            );
            assert_eq!(
                c.observed_generation,
                Some(7),
                "{}: observedGeneration",
                case.name
            );
        }
    }

    #[test]
    fn set_without_generation_clears_observed_generation() {
        let mut list = vec![cond("Ready", "True", "Succeeded", "ok")];
        set(
            &mut list,
            &Stamp::new(at(T1), None),
            "Ready",
            "True",
            "Succeeded",
            "ok",
        );
        assert_eq!(list[0].observed_generation, None);
    }

    #[test]
    fn set_is_idempotent_and_ordered() {
        let s = stamp(T1, 2);
        let mut a = Vec::new();
        mark_true(&mut a, &s, "Reconciling", "Progressing", "working");
        mark_true(&mut a, &s, "FetchFailed", "GitOperationFailed", "x");
        mark_false(&mut a, &s, "Ready", "GitOperationFailed", "x");

        let mut b = Vec::new();
        mark_false(&mut b, &s, "Ready", "GitOperationFailed", "x");
        mark_true(&mut b, &s, "FetchFailed", "GitOperationFailed", "x");
        mark_true(&mut b, &s, "Reconciling", "Progressing", "working");
        assert_eq!(a, b, "order of calls does not matter");
        assert_eq!(
            a.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Ready", "FetchFailed", "Reconciling"]
        );

        let again = a.clone();
        mark_true(
            &mut a,
            &stamp("2026-02-02T00:00:00Z", 2),
            "FetchFailed",
            "GitOperationFailed",
            "x",
        );
        assert_eq!(a, again, "writing the same facts later changes nothing");
    }

    #[test]
    fn set_condition_keeps_transition_time_on_same_status() {
        let mut list = vec![cond("Healthy", "True", "Succeeded", "old")];
        let mut update = cond("Healthy", "True", "Succeeded", "new");
        update.last_transition_time = at(T1);
        update.observed_generation = Some(4);
        set_condition(&mut list, update.clone());
        assert_eq!(list[0].last_transition_time, at(T0));
        assert_eq!(list[0].message, "new");
        assert_eq!(list[0].observed_generation, Some(4));

        update.status = "False".into();
        set_condition(&mut list, update);
        assert_eq!(list[0].last_transition_time, at(T1));
        assert_eq!(list[0].status, "False");

        set_condition(&mut list, cond("Ready", "True", "Succeeded", "ok"));
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].type_, "Ready");
    }

    #[test]
    fn mark_helpers_set_the_status() {
        let s = stamp(T1, 3);
        type Mark = fn(&mut Vec<Condition>, &Stamp, &str, &str, &str);
        let table: [(Mark, &str); 3] = [
            (mark_true, "True"),
            (mark_false, "False"),
            (mark_unknown, "Unknown"),
        ];
        for (mark, want) in table {
            let mut list = Vec::new();
            mark(&mut list, &s, "Healthy", "Reason", "message");
            assert_eq!(view(&list), [("Healthy", want, "Reason", "message")]);
            assert_eq!(list[0].observed_generation, Some(3));
        }
    }

    #[test]
    fn delete_and_resolve() {
        let mut list = vec![
            cond("Ready", "False", "Failed", "x"),
            cond("FetchFailed", "True", "GitOperationFailed", "x"),
        ];
        assert!(resolve(&mut list, "FetchFailed"));
        assert!(!resolve(&mut list, "FetchFailed"));
        assert!(!delete(&mut list, "Stalled"));
        assert!(delete(&mut list, "Ready"));
        assert!(list.is_empty());
    }

    #[test]
    fn remove_resolved_keeps_only_true_negative_conditions() {
        let mut list = vec![
            cond("Ready", "False", "Failed", "x"),
            cond(
                "ArtifactInStorage",
                "False",
                "Failed",
                "kept: not negative polarity",
            ),
            cond("ArtifactOutdated", "False", "NewRevision", "resolved"),
            cond("BuildFailed", "Unknown", "x", "unknown counts as resolved"),
            cond("FetchFailed", "True", "GitOperationFailed", "still failing"),
        ];
        remove_resolved(&mut list, &types::SOURCE_NEGATIVE_POLARITY);
        assert_eq!(
            list.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(),
            ["Ready", "ArtifactInStorage", "FetchFailed"]
        );
    }

    #[test]
    fn reconciling_and_stalled_exclude_each_other() {
        let s = stamp(T1, 2);
        let mut list = vec![cond("Stalled", "True", "InvalidPath", "bad path")];
        mark_reconciling(&mut list, &s, "reconciling new generation 2");
        assert_eq!(
            view(&list),
            [(
                "Reconciling",
                "True",
                "Progressing",
                "reconciling new generation 2"
            )]
        );

        mark_reconciling_with_retry(&mut list, &s, None);
        assert_eq!(
            view(&list),
            [(
                "Reconciling",
                "True",
                "ProgressingWithRetry",
                "reconciling new generation 2"
            )]
        );
        assert_eq!(
            list[0].last_transition_time,
            at(T1),
            "reason change alone keeps the transition time set when it became True"
        );
        mark_reconciling_with_retry(&mut list, &s, Some("retrying after failure"));
        assert_eq!(
            view(&list),
            [(
                "Reconciling",
                "True",
                "ProgressingWithRetry",
                "retrying after failure"
            )]
        );

        mark_stalled(&mut list, &s, "InvalidCELExpression", "cannot compile");
        assert_eq!(
            view(&list),
            [("Stalled", "True", "InvalidCELExpression", "cannot compile")]
        );

        mark_reconciling(&mut list, &s, "again");
        finish_reconciling(&mut list);
        assert!(list.is_empty());
    }

    #[test]
    fn reconciling_keeps_transition_time_across_reason_changes() {
        let mut list = Vec::new();
        mark_reconciling(&mut list, &stamp(T0, 1), "working");
        mark_reconciling_with_retry(&mut list, &stamp(T1, 1), Some("retry"));
        assert_eq!(list[0].last_transition_time, at(T0));
    }

    #[test]
    fn summarize_ready_table() {
        const NEG: [&str; 3] = ["StorageOperationFailed", "FetchFailed", "ArtifactOutdated"];
        struct Case {
            name: &'static str,
            conditions: Vec<Condition>,
            failure: Option<(&'static str, &'static str)>,
            want: (&'static str, &'static str, &'static str),
        }
        let cases = [
            Case {
                name: "nothing else: ready",
                conditions: vec![],
                failure: None,
                want: (
                    "True",
                    "Succeeded",
                    "stored artifact for revision 'main@sha1:abc'",
                ),
            },
            Case {
                name: "stalled wins over everything",
                conditions: vec![
                    cond("Stalled", "True", "InvalidPath", "path './x' not found"),
                    cond("FetchFailed", "True", "GitOperationFailed", "clone failed"),
                    cond("Reconciling", "True", "Progressing", "working"),
                ],
                failure: Some(("DependencyNotReady", "dependency not ready")),
                want: ("False", "InvalidPath", "path './x' not found"),
            },
            Case {
                name: "stalled=false is ignored",
                conditions: vec![cond("Stalled", "False", "InvalidPath", "old")],
                failure: None,
                want: (
                    "True",
                    "Succeeded",
                    "stored artifact for revision 'main@sha1:abc'",
                ),
            },
            Case {
                name: "explicit failure before negative conditions",
                conditions: vec![cond(
                    "ArtifactOutdated",
                    "True",
                    "NewRevision",
                    "new upstream revision",
                )],
                failure: Some((
                    "DependencyNotReady",
                    "dependency 'flux-system/infra' is not ready",
                )),
                want: (
                    "False",
                    "DependencyNotReady",
                    "dependency 'flux-system/infra' is not ready",
                ),
            },
            Case {
                name: "first true negative condition in priority order",
                conditions: vec![
                    cond(
                        "ArtifactOutdated",
                        "True",
                        "NewRevision",
                        "new upstream revision",
                    ),
                    cond("FetchFailed", "True", "GitOperationFailed", "clone failed"),
                ],
                failure: None,
                want: ("False", "GitOperationFailed", "clone failed"),
            },
            Case {
                name: "negative condition beats reconciling",
                conditions: vec![
                    cond("Reconciling", "True", "ProgressingWithRetry", "retrying"),
                    cond(
                        "StorageOperationFailed",
                        "True",
                        "ArchiveOperationFailed",
                        "disk full",
                    ),
                ],
                failure: None,
                want: ("False", "ArchiveOperationFailed", "disk full"),
            },
            Case {
                name: "negative type not in the list is ignored",
                conditions: vec![cond("BuildFailed", "True", "BuildFailed", "not listed")],
                failure: None,
                want: (
                    "True",
                    "Succeeded",
                    "stored artifact for revision 'main@sha1:abc'",
                ),
            },
            Case {
                name: "false negative condition does not fail ready",
                conditions: vec![cond(
                    "FetchFailed",
                    "False",
                    "GitOperationFailed",
                    "resolved",
                )],
                failure: None,
                want: (
                    "True",
                    "Succeeded",
                    "stored artifact for revision 'main@sha1:abc'",
                ),
            },
            Case {
                name: "reconciling without failure: unknown",
                conditions: vec![cond(
                    "Reconciling",
                    "True",
                    "Progressing",
                    "building artifact",
                )],
                failure: None,
                want: ("Unknown", "Progressing", "building artifact"),
            },
            Case {
                name: "reconciling with retry reason still reads Progressing on Ready",
                conditions: vec![cond(
                    "Reconciling",
                    "True",
                    "ProgressingWithRetry",
                    "retrying",
                )],
                failure: None,
                want: ("Unknown", "Progressing", "retrying"),
            },
            Case {
                name: "a stale Ready is replaced",
                conditions: vec![cond("Ready", "False", "GitOperationFailed", "old failure")],
                failure: None,
                want: (
                    "True",
                    "Succeeded",
                    "stored artifact for revision 'main@sha1:abc'",
                ),
            },
        ];
        for case in cases {
            let mut list = case.conditions;
            let mut summary = Summary::new(
                &NEG,
                "Succeeded",
                "stored artifact for revision 'main@sha1:abc'",
            );
            if let Some((r, m)) = case.failure {
                summary = summary.with_failure(r, m);
            }
            let got = summarize_ready(&mut list, &stamp(T1, 5), &summary);
            assert_eq!(got, case.want.0, "{}", case.name);
            let ready = get(&list, "Ready").unwrap();
            assert_eq!(
                (
                    ready.status.as_str(),
                    ready.reason.as_str(),
                    ready.message.as_str()
                ),
                case.want,
                "{}",
                case.name
            );
            assert_eq!(ready.observed_generation, Some(5), "{}", case.name);
            assert_eq!(list[0].type_, "Ready", "{}: Ready sorts first", case.name);
        }
    }

    #[test]
    fn summarize_ready_keeps_transition_time_when_nothing_changed() {
        let summary = Summary::new(
            &[],
            "ReconciliationSucceeded",
            "Applied revision: main@sha1:abc",
        );
        let mut list = Vec::new();
        summarize_ready(&mut list, &stamp(T0, 1), &summary);
        let first = list.clone();

        summarize_ready(&mut list, &stamp(T1, 1), &summary);
        assert_eq!(list, first, "same outcome later: identical conditions");

        summarize_ready(&mut list, &stamp(T1, 2), &summary);
        assert_eq!(
            list[0].last_transition_time,
            at(T0),
            "new generation, same status"
        );
        assert_eq!(list[0].observed_generation, Some(2));

        let failed = summary.with_failure(
            "HealthCheckFailed",
            "timeout waiting for Deployment/apps/web",
        );
        summarize_ready(&mut list, &stamp(T1, 2), &failed);
        assert_eq!(list[0].status, "False");
        assert_eq!(list[0].last_transition_time, at(T1));
    }

    #[test]
    fn full_cycle_of_a_failing_then_recovering_source() {
        let neg = types::SOURCE_NEGATIVE_POLARITY;
        let ok = Summary::new(
            &neg,
            reasons::SUCCEEDED,
            "stored artifact for revision 'main@sha1:abc'",
        );
        let mut list = Vec::new();

        // Reconcile 1: fetch fails, retried.
        let s1 = stamp(T0, 1);
        mark_reconciling(&mut list, &s1, "reconciling new object");
        mark_true(
            &mut list,
            &s1,
            types::FETCH_FAILED,
            reasons::GIT_OPERATION_FAILED,
            "clone failed",
        );
        mark_reconciling_with_retry(&mut list, &s1, None);
        assert_eq!(summarize_ready(&mut list, &s1, &ok), status::FALSE);
        assert_eq!(
            reason(&list, types::READY),
            Some(reasons::GIT_OPERATION_FAILED)
        );
        assert!(
            is_reconciling(&list),
            "kstatus: still reconciling while retried"
        );

        // Reconcile 2: fetch works.
        let s2 = stamp(T1, 1);
        mark_reconciling(&mut list, &s2, "reconciling");
        resolve(&mut list, types::FETCH_FAILED);
        remove_resolved(&mut list, &neg);
        finish_reconciling(&mut list);
        assert_eq!(summarize_ready(&mut list, &s2, &ok), status::TRUE);
        assert_eq!(
            view(&list),
            [(
                "Ready",
                "True",
                "Succeeded",
                "stored artifact for revision 'main@sha1:abc'"
            )]
        );
        assert_eq!(list[0].last_transition_time, at(T1));
    }

    #[test]
    fn duplicates_are_collapsed() {
        let mut list = vec![
            cond("Ready", "True", "Succeeded", "first"),
            cond("Ready", "False", "Failed", "second"),
        ];
        set(
            &mut list,
            &stamp(T1, 1),
            "Healthy",
            "True",
            "Succeeded",
            "ok",
        );
        assert_eq!(
            view(&list),
            [
                ("Ready", "True", "Succeeded", "first"),
                ("Healthy", "True", "Succeeded", "ok")
            ]
        );
    }

    #[test]
    fn constants_match_flux_spelling() {
        assert_eq!(
            [
                types::READY,
                types::STALLED,
                types::RECONCILING,
                types::HEALTHY
            ],
            ["Ready", "Stalled", "Reconciling", "Healthy"]
        );
        assert_eq!(
            [
                reasons::PROGRESSING,
                reasons::PROGRESSING_WITH_RETRY,
                reasons::DEPENDENCY_NOT_READY
            ],
            ["Progressing", "ProgressingWithRetry", "DependencyNotReady"]
        );
        assert_eq!(
            [status::TRUE, status::FALSE, status::UNKNOWN],
            ["True", "False", "Unknown"]
        );
    }

    #[test]
    fn messages_over_the_api_limit_are_shortened_at_a_character_boundary() {
        let stamp = Stamp::new(at(T0), Some(1));
        let mut conditions = Vec::new();
        // Multi-byte characters: the limit counts characters, as the API server does.
        let long = "é".repeat(MESSAGE_MAX_CHARS + 10);
        set(
            &mut conditions,
            &stamp,
            "Ready",
            "False",
            "BuildFailed",
            &long,
        );
        set(
            &mut conditions,
            &stamp,
            "Healthy",
            "True",
            "Succeeded",
            "short",
        );
        let exactly = "x".repeat(MESSAGE_MAX_CHARS);
        set(
            &mut conditions,
            &stamp,
            "Stalled",
            "True",
            "BuildFailed",
            &exactly,
        );

        assert!(limit_messages(&mut conditions));
        let ready = get(&conditions, "Ready").unwrap();
        assert!(ready.message.chars().count() <= MESSAGE_MAX_CHARS);
        assert!(ready.message.starts_with("éé"));
        assert!(
            ready
                .message
                .ends_with(" ... [74 more characters not shown]"),
            "{}",
            &ready.message[ready.message.len() - 60..]
        );
        assert_eq!(get(&conditions, "Healthy").unwrap().message, "short");
        assert_eq!(get(&conditions, "Stalled").unwrap().message, exactly);
        assert!(!limit_messages(&mut conditions), "already within the limit");
    }
}
