//! The finalizer, annotations and labels of the Flux v2.9 API.
//!
//! Users and tools (`flux reconcile`, dashboards, policy engines) rely on these exact keys
//! and values; Ferroflux controllers honour them as Flux does.
//!
//! # Reconcile requests
//!
//! Setting [`RECONCILE_REQUEST_ANNOTATION`] to a new value (any token; `flux` writes the
//! current time) asks for a reconcile now. The controller copies the value it handled into
//! `status.lastHandledReconcileAt` (see [`super::ReconcileRequestStatus`]).
//! [`FORCE_REQUEST_ANNOTATION`] and [`RESET_REQUEST_ANNOTATION`] only take effect when their
//! value equals the request annotation's value.
//!
//! # Objects applied by kustomize-controller
//!
//! Every object applied for a Kustomization carries the owner labels
//! [`KUSTOMIZE_NAME_LABEL`] and [`KUSTOMIZE_NAMESPACE_LABEL`]. Annotations on an object in
//! the source change how it is applied: [`KUSTOMIZE_PRUNE_ANNOTATION`]`: disabled` keeps it on
//! prune, [`KUSTOMIZE_SSA_ANNOTATION`] picks the apply policy, [`KUSTOMIZE_FORCE_ANNOTATION`]`:
//! enabled` recreates it when an immutable field changes, and
//! [`KUSTOMIZE_RECONCILE_ANNOTATION`]`: disabled` leaves the in-cluster object alone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The finalizer every toolkit controller adds to the objects it reconciles.
pub const FINALIZER: &str = "finalizers.fluxcd.io";

/// Annotation requesting a reconcile outside the interval; its value is an opaque token.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// Annotation requesting a one-off forced reconcile (for example a Helm upgrade without
/// changes). Effective only when equal to [`RECONCILE_REQUEST_ANNOTATION`]'s value.
pub const FORCE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/forceAt";

/// Annotation requesting a reset of the failure counters (for example Helm remediation
/// retries). Effective only when equal to [`RECONCILE_REQUEST_ANNOTATION`]'s value.
pub const RESET_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/resetAt";

/// Label that makes a Secret or ConfigMap watched by the controllers that reference it, so a
/// change to it triggers a reconcile. The value is [`WATCH_LABEL_ENABLED`].
pub const WATCH_LABEL: &str = "toolkit.fluxcd.io/watch";

/// Value of [`WATCH_LABEL`] that enables watching.
pub const WATCH_LABEL_ENABLED: &str = "Enabled";

/// Label whose value assigns an object to a controller shard (`--watch-label-selector`).
pub const SHARDING_KEY_LABEL: &str = "sharding.fluxcd.io/key";

/// The value that switches a per-object behaviour off (`prune`, `reconcile`, `substitute`,
/// `driftDetection` annotations).
pub const DISABLED_VALUE: &str = "disabled";

/// The value that switches a per-object behaviour on (`force` annotation).
pub const ENABLED_VALUE: &str = "enabled";

/// Owner label: name of the Kustomization that applied the object.
pub const KUSTOMIZE_NAME_LABEL: &str = "kustomize.toolkit.fluxcd.io/name";

/// Owner label: namespace of the Kustomization that applied the object.
pub const KUSTOMIZE_NAMESPACE_LABEL: &str = "kustomize.toolkit.fluxcd.io/namespace";

/// Annotation that, set to [`DISABLED_VALUE`], keeps the object when it leaves the source or
/// the Kustomization is deleted.
pub const KUSTOMIZE_PRUNE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/prune";

/// Annotation choosing the server-side apply policy of one object; see [`ssa`] for values.
pub const KUSTOMIZE_SSA_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/ssa";

/// Annotation that, set to [`ENABLED_VALUE`], deletes and recreates the object when an
/// apply fails on an immutable field.
pub const KUSTOMIZE_FORCE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/force";

/// Annotation that, set to [`DISABLED_VALUE`] on an in-cluster object, stops
/// kustomize-controller from updating it.
pub const KUSTOMIZE_RECONCILE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/reconcile";

/// Annotation that, set to [`DISABLED_VALUE`], skips post-build variable substitution for the
/// object.
pub const KUSTOMIZE_SUBSTITUTE_ANNOTATION: &str = "kustomize.toolkit.fluxcd.io/substitute";

/// Owner label: name of the HelmRelease that manages the object.
pub const HELM_NAME_LABEL: &str = "helm.toolkit.fluxcd.io/name";

/// Owner label: namespace of the HelmRelease that manages the object.
pub const HELM_NAMESPACE_LABEL: &str = "helm.toolkit.fluxcd.io/namespace";

/// Annotation that, set to [`DISABLED_VALUE`] on a release object, excludes it from drift
/// detection and correction.
pub const HELM_DRIFT_DETECTION_ANNOTATION: &str = "helm.toolkit.fluxcd.io/driftDetection";

/// Values of [`KUSTOMIZE_SSA_ANNOTATION`].
pub mod ssa {
    /// Apply the object and take ownership of every field in it (the default).
    pub const OVERRIDE: &str = "Override";
    /// Apply the object, keeping fields other managers set that are not in the source.
    pub const MERGE: &str = "Merge";
    /// Create the object if it is missing; never update it afterwards.
    pub const IF_NOT_PRESENT: &str = "IfNotPresent";
    /// Leave the object alone: neither apply nor prune it.
    pub const IGNORE: &str = "Ignore";
}

/// The value of `key` in the object's annotations.
pub fn annotation<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

/// The value of `key` in the object's labels.
pub fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

/// The reconcile request token ([`RECONCILE_REQUEST_ANNOTATION`]), if one is set.
pub fn requested_at(meta: &ObjectMeta) -> Option<&str> {
    annotation(meta, RECONCILE_REQUEST_ANNOTATION)
}

/// Whether a forced reconcile is requested: [`FORCE_REQUEST_ANNOTATION`] is set and equals
/// the reconcile request token.
pub fn force_requested(meta: &ObjectMeta) -> bool {
    paired_request(meta, FORCE_REQUEST_ANNOTATION)
}

/// Whether a reset is requested: [`RESET_REQUEST_ANNOTATION`] is set and equals the
/// reconcile request token.
pub fn reset_requested(meta: &ObjectMeta) -> bool {
    paired_request(meta, RESET_REQUEST_ANNOTATION)
}

fn paired_request(meta: &ObjectMeta, key: &str) -> bool {
    match (annotation(meta, key), requested_at(meta)) {
        (Some(v), Some(token)) => !v.is_empty() && v == token,
        _ => false,
    }
}

/// Whether the annotation `key` is set to [`DISABLED_VALUE`] (compared case-insensitively).
pub fn is_disabled(meta: &ObjectMeta, key: &str) -> bool {
    annotation(meta, key).is_some_and(|v| v.eq_ignore_ascii_case(DISABLED_VALUE))
}

/// Whether the annotation `key` is set to [`ENABLED_VALUE`] (compared case-insensitively).
pub fn is_enabled(meta: &ObjectMeta, key: &str) -> bool {
    annotation(meta, key).is_some_and(|v| v.eq_ignore_ascii_case(ENABLED_VALUE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(annotations: &[(&str, &str)], labels: &[(&str, &str)]) -> ObjectMeta {
        let map = |kv: &[(&str, &str)]| {
            (!kv.is_empty()).then(|| {
                kv.iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            })
        };
        ObjectMeta {
            annotations: map(annotations),
            labels: map(labels),
            ..Default::default()
        }
    }

    #[test]
    fn requested_at_reads_the_flux_annotation() {
        assert_eq!(requested_at(&ObjectMeta::default()), None);
        let m = meta(
            &[("reconcile.fluxcd.io/requestedAt", "2026-05-01T10:00:00Z")],
            &[],
        );
        assert_eq!(requested_at(&m), Some("2026-05-01T10:00:00Z"));
        let other = meta(&[("fluxcd.io/reconcileAt", "x")], &[]);
        assert_eq!(requested_at(&other), None);
    }

    #[test]
    fn force_and_reset_need_a_matching_token() {
        let cases = [
            (vec![], false, false),
            (vec![(FORCE_REQUEST_ANNOTATION, "t1")], false, false),
            (
                vec![
                    (RECONCILE_REQUEST_ANNOTATION, "t1"),
                    (FORCE_REQUEST_ANNOTATION, "t1"),
                ],
                true,
                false,
            ),
            (
                vec![
                    (RECONCILE_REQUEST_ANNOTATION, "t2"),
                    (FORCE_REQUEST_ANNOTATION, "t1"),
                ],
                false,
                false,
            ),
            (
                vec![
                    (RECONCILE_REQUEST_ANNOTATION, "t1"),
                    (RESET_REQUEST_ANNOTATION, "t1"),
                ],
                false,
                true,
            ),
            (
                vec![
                    (RECONCILE_REQUEST_ANNOTATION, ""),
                    (RESET_REQUEST_ANNOTATION, ""),
                ],
                false,
                false,
            ),
        ];
        for (annotations, force, reset) in cases {
            let m = meta(&annotations, &[]);
            assert_eq!(force_requested(&m), force, "{annotations:?}");
            assert_eq!(reset_requested(&m), reset, "{annotations:?}");
        }
    }

    #[test]
    fn disabled_and_enabled_values() {
        let m = meta(
            &[
                (KUSTOMIZE_PRUNE_ANNOTATION, "disabled"),
                (KUSTOMIZE_RECONCILE_ANNOTATION, "Disabled"),
                (KUSTOMIZE_FORCE_ANNOTATION, "enabled"),
                (KUSTOMIZE_SUBSTITUTE_ANNOTATION, "enabled"),
            ],
            &[],
        );
        assert!(is_disabled(&m, KUSTOMIZE_PRUNE_ANNOTATION));
        assert!(is_disabled(&m, KUSTOMIZE_RECONCILE_ANNOTATION));
        assert!(!is_disabled(&m, KUSTOMIZE_SUBSTITUTE_ANNOTATION));
        assert!(!is_disabled(&m, HELM_DRIFT_DETECTION_ANNOTATION));
        assert!(is_enabled(&m, KUSTOMIZE_FORCE_ANNOTATION));
        assert!(!is_enabled(&m, KUSTOMIZE_PRUNE_ANNOTATION));
    }

    #[test]
    fn labels() {
        let m = meta(
            &[],
            &[
                (KUSTOMIZE_NAME_LABEL, "apps"),
                (KUSTOMIZE_NAMESPACE_LABEL, "flux-system"),
            ],
        );
        assert_eq!(label(&m, "kustomize.toolkit.fluxcd.io/name"), Some("apps"));
        assert_eq!(
            label(&m, "kustomize.toolkit.fluxcd.io/namespace"),
            Some("flux-system")
        );
        assert_eq!(label(&m, SHARDING_KEY_LABEL), None);
    }

    #[test]
    fn keys_live_under_their_groups() {
        use crate::api::groups;
        for key in [
            KUSTOMIZE_NAME_LABEL,
            KUSTOMIZE_NAMESPACE_LABEL,
            KUSTOMIZE_PRUNE_ANNOTATION,
            KUSTOMIZE_SSA_ANNOTATION,
            KUSTOMIZE_FORCE_ANNOTATION,
            KUSTOMIZE_RECONCILE_ANNOTATION,
            KUSTOMIZE_SUBSTITUTE_ANNOTATION,
        ] {
            assert_eq!(
                key.split_once('/').map(|p| p.0),
                Some(groups::KUSTOMIZE),
                "{key}"
            );
        }
        for key in [
            HELM_NAME_LABEL,
            HELM_NAMESPACE_LABEL,
            HELM_DRIFT_DETECTION_ANNOTATION,
        ] {
            assert_eq!(
                key.split_once('/').map(|p| p.0),
                Some(groups::HELM),
                "{key}"
            );
        }
    }
}
