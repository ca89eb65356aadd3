//! The pure decisions of server-side apply: which stage an object belongs to, what its
//! annotations ask for, whether a dry-run result differs from the live object, which
//! `managedFields` entries to take over, and which API errors mean an immutable field.
//!
//! No I/O here, so every rule has a table test.

use serde_json::{Map, Value, json};
use toolkit_sdk::api::meta;

use super::options::Owner;
use crate::object_ref::ObjectRef;

/// The annotation left by `kubectl apply` (client-side), removed on take-over.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Annotations removed from live objects before apply: kubectl's client-side record and the
/// checksums of Flux v1 and early Flux v2.
pub const CLEANUP_ANNOTATIONS: &[&str] = &[
    LAST_APPLIED_ANNOTATION,
    "kustomize.toolkit.fluxcd.io/checksum",
    "fluxcd.io/sync-checksum",
];

/// Labels removed from live objects before apply (Flux v1's garbage-collection mark).
pub const CLEANUP_LABELS: &[&str] = &["fluxcd.io/sync-gc-mark"];

/// The apply stages, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions, Namespaces and ClusterRoles: what other objects need to
    /// exist first.
    Definitions,
    /// Kinds whose name ends in `Class` (StorageClass, IngressClass, PriorityClass, ...).
    Classes,
    /// Everything else.
    Resources,
}

/// The stage of an object, as Flux stages them.
pub fn stage_of(object: &ObjectRef) -> Stage {
    let crd = object.group == "apiextensions.k8s.io"
        && object.kind.eq_ignore_ascii_case("CustomResourceDefinition");
    let namespace = object.group.is_empty()
        && object.version == "v1"
        && object.kind.eq_ignore_ascii_case("Namespace");
    let cluster_role = object.group == "rbac.authorization.k8s.io"
        && object.kind.eq_ignore_ascii_case("ClusterRole");
    if crd || namespace || cluster_role {
        Stage::Definitions
    } else if object.kind.ends_with("Class") {
        Stage::Classes
    } else {
        Stage::Resources
    }
}

/// Kinds applied before the others within a stage (a ServiceAccount before the Deployment that
/// runs as it), in order; kinds not listed come after them.
const ORDER_FIRST: &[&str] = &[
    "CustomResourceDefinition",
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "PriorityClass",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

/// Kinds applied after all others (webhooks that could intercept the other objects).
const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// The rank of a kind in the apply order: lower ranks are applied first; objects of the same
/// rank are applied concurrently.
pub fn kind_rank(kind: &str) -> i32 {
    if let Some(i) = ORDER_FIRST.iter().position(|k| *k == kind) {
        return i as i32 - ORDER_FIRST.len() as i32;
    }
    if let Some(i) = ORDER_LAST.iter().position(|k| *k == kind) {
        return i as i32 + 1;
    }
    0
}

/// A total, deterministic order: rank, then group and kind, then namespace and name.
pub fn apply_order(a: &ObjectRef, b: &ObjectRef) -> std::cmp::Ordering {
    kind_rank(&a.kind)
        .cmp(&kind_rank(&b.kind))
        .then_with(|| a.group.cmp(&b.group))
        .then_with(|| a.kind.cmp(&b.kind))
        .then_with(|| a.namespace.cmp(&b.namespace))
        .then_with(|| a.name.cmp(&b.name))
}

/// The value of `key` in the object's `metadata.<field>` (`labels` or `annotations`).
pub fn metadata_value<'a>(object: &'a Value, field: &str, key: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.get(key)?.as_str()
}

/// Whether the object has `key: value` among its labels or annotations (value compared
/// case-insensitively, as Flux does).
pub fn has_marker(object: &Value, key: &str, value: &str) -> bool {
    ["labels", "annotations"].iter().any(|field| {
        metadata_value(object, field, key).is_some_and(|v| v.eq_ignore_ascii_case(value))
    })
}

/// Whether apply must leave the object alone: `ssa: Ignore` or `reconcile: disabled` on the
/// desired or the live object.
pub fn is_excluded(desired: &Value, live: Option<&Value>) -> bool {
    let excluded = |o: &Value| {
        has_marker(o, meta::KUSTOMIZE_SSA_ANNOTATION, meta::ssa::IGNORE)
            || has_marker(
                o,
                meta::KUSTOMIZE_RECONCILE_ANNOTATION,
                meta::DISABLED_VALUE,
            )
    };
    excluded(desired) || live.is_some_and(excluded)
}

/// Whether the desired object asks to be created only (`ssa: IfNotPresent`).
pub fn is_if_not_present(desired: &Value) -> bool {
    has_marker(
        desired,
        meta::KUSTOMIZE_SSA_ANNOTATION,
        meta::ssa::IF_NOT_PRESENT,
    )
}

/// Whether the object keeps fields other managers own (`ssa: Merge` on the desired or the live
/// object): no take-over of their `managedFields`, no removal of kubectl's annotation.
pub fn is_merge(desired: &Value, live: Option<&Value>) -> bool {
    let merge = |o: &Value| has_marker(o, meta::KUSTOMIZE_SSA_ANNOTATION, meta::ssa::MERGE);
    merge(desired) || live.is_some_and(merge)
}

/// Whether the object may be deleted and recreated on an immutable-field error
/// (`force: enabled` on the desired or the live object).
pub fn is_force_annotated(desired: &Value, live: Option<&Value>) -> bool {
    let force = |o: &Value| has_marker(o, meta::KUSTOMIZE_FORCE_ANNOTATION, meta::ENABLED_VALUE);
    force(desired) || live.is_some_and(force)
}

/// Whether prune must keep the live object: `prune: disabled` or `reconcile: disabled`.
pub fn is_prune_excluded(live: &Value) -> bool {
    has_marker(live, meta::KUSTOMIZE_PRUNE_ANNOTATION, meta::DISABLED_VALUE)
        || has_marker(
            live,
            meta::KUSTOMIZE_RECONCILE_ANNOTATION,
            meta::DISABLED_VALUE,
        )
}

/// Whether the live object carries the owner labels of `owner` (it was applied by that
/// Kustomization and is not claimed by another one since).
pub fn is_owned_by(live: &Value, owner: &Owner) -> bool {
    metadata_value(live, "labels", meta::KUSTOMIZE_NAME_LABEL) == Some(owner.name.as_str())
        && metadata_value(live, "labels", meta::KUSTOMIZE_NAMESPACE_LABEL)
            == Some(owner.namespace.as_str())
}

/// Sets the owner labels on the desired object (creating `metadata.labels` if needed).
pub fn set_owner_labels(object: &mut Value, owner: &Owner) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Some(labels) = labels.as_object_mut() {
        labels.insert(meta::KUSTOMIZE_NAME_LABEL.into(), owner.name.clone().into());
        labels.insert(
            meta::KUSTOMIZE_NAMESPACE_LABEL.into(),
            owner.namespace.clone().into(),
        );
    }
}

/// Whether applying would change the live object: its labels, its annotations, or anything
/// outside `metadata` and `status` differ between the dry-run result and the live object.
///
/// Server-set metadata (`managedFields`, `resourceVersion`, `generation`, timestamps) is not
/// compared, so a dry-run that only refreshes ownership records counts as no change.
pub fn has_drifted(live: &Value, dry_run: &Value) -> bool {
    for field in ["labels", "annotations"] {
        if metadata_map(live, field) != metadata_map(dry_run, field) {
            return true;
        }
    }
    let body = |o: &Value| -> Map<String, Value> {
        o.as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| k.as_str() != "metadata" && k.as_str() != "status")
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    };
    body(live) != body(dry_run)
}

/// `metadata.<field>` when it is a non-empty map: an absent map and an empty one are the
/// same thing.
fn metadata_map<'a>(object: &'a Value, field: &str) -> Option<&'a Map<String, Value>> {
    object
        .get("metadata")?
        .get(field)?
        .as_object()
        .filter(|m| !m.is_empty())
}

/// The JSON patch (RFC 6902) that prepares a live object for our apply, or `None` when it
/// needs nothing:
/// - removes [`CLEANUP_ANNOTATIONS`] and [`CLEANUP_LABELS`];
/// - rewrites the `managedFields` entries of managers whose name starts with one of
///   `takeover` (operation Apply or Update), and our own Update entries, into our Apply entry
///   (their field sets merged into it), so the next apply owns those fields and removes the
///   ones that left the source.
///
/// Entries of subresources (`status`, `scale`) are left alone.
pub fn takeover_patch(live: &Value, field_manager: &str, takeover: &[String]) -> Option<Value> {
    let mut ops = Vec::new();
    for (field, keys) in [
        ("annotations", CLEANUP_ANNOTATIONS),
        ("labels", CLEANUP_LABELS),
    ] {
        for key in keys {
            if metadata_value(live, field, key).is_some() {
                ops.push(json!({"op": "remove", "path": format!("/metadata/{field}/{}", pointer_escape(key))}));
            }
        }
    }
    if let Some(entries) = live
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .and_then(Value::as_array)
        && let Some(rewritten) = rewrite_managed_fields(entries, field_manager, takeover)
    {
        ops.push(json!({"op": "replace", "path": "/metadata/managedFields", "value": rewritten}));
    }
    (!ops.is_empty()).then_some(Value::Array(ops))
}

/// `entries` with the taken-over managers folded into our Apply entry, or `None` when no entry
/// is taken over.
fn rewrite_managed_fields(
    entries: &[Value],
    field_manager: &str,
    takeover: &[String],
) -> Option<Vec<Value>> {
    let text = |e: &Value, k: &str| {
        e.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let is_ours =
        |e: &Value| text(e, "manager") == field_manager && text(e, "operation") == "Apply";
    let taken = |e: &Value| {
        if !text(e, "subresource").is_empty() || is_ours(e) {
            return false;
        }
        let manager = text(e, "manager");
        let operation = text(e, "operation");
        (manager == field_manager && operation == "Update")
            || takeover
                .iter()
                .any(|t| !t.is_empty() && manager.starts_with(t.as_str()))
    };
    if !entries.iter().any(taken) {
        return None;
    }
    let mut target: Option<Value> = entries.iter().find(|e| is_ours(e)).cloned();
    let mut kept = Vec::with_capacity(entries.len());
    for entry in entries {
        if is_ours(entry) {
            continue;
        }
        if !taken(entry) {
            kept.push(entry.clone());
            continue;
        }
        match target.as_mut() {
            None => {
                let mut renamed = entry.clone();
                if let Some(m) = renamed.as_object_mut() {
                    m.insert("manager".into(), field_manager.into());
                    m.insert("operation".into(), "Apply".into());
                }
                target = Some(renamed);
            }
            Some(ours) => {
                let theirs = entry.get("fieldsV1").cloned().unwrap_or(Value::Null);
                if let Some(m) = ours.as_object_mut() {
                    let merged = match m.remove("fieldsV1") {
                        Some(mine) => merge_field_sets(mine, theirs),
                        None => theirs,
                    };
                    if !merged.is_null() {
                        m.insert("fieldsV1".into(), merged);
                        m.insert("fieldsType".into(), "FieldsV1".into());
                    }
                }
            }
        }
    }
    kept.extend(target);
    Some(kept)
}

/// The union of two `fieldsV1` sets (tries of `f:`/`k:`/`v:`/`i:` keys; a union is a deep
/// merge of the JSON objects).
fn merge_field_sets(mine: Value, theirs: Value) -> Value {
    match (mine, theirs) {
        (Value::Object(mut a), Value::Object(b)) => {
            for (key, value) in b {
                let merged = match a.remove(&key) {
                    Some(existing) => merge_field_sets(existing, value),
                    None => value,
                };
                a.insert(key, merged);
            }
            Value::Object(a)
        }
        (Value::Null, other) => other,
        (mine, _) => mine,
    }
}

/// A JSON pointer segment (`~` as `~0`, `/` as `~1`).
fn pointer_escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Whether an API error means the change touches an immutable field, so deleting and
/// recreating the object is the only way to apply it.
///
/// Narrower than Flux (which treats every Invalid and Conflict answer as immutable): an object
/// that is merely invalid is never deleted. Recognised: a 422 Invalid answer that says a field
/// is immutable (`field is immutable`, CEL's `is immutable`, `immutable field`) or that updates
/// to a spec are forbidden (StatefulSet), and any answer from an admission webhook that says
/// so.
pub fn is_immutable_error(code: u16, reason: &str, message: &str) -> bool {
    let says_immutable = message.contains("is immutable") || message.contains("immutable field");
    let invalid = code == 422 || reason == "Invalid";
    says_immutable || (invalid && message.contains("Forbidden: updates to"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn reference(api_version: &str, kind: &str) -> ObjectRef {
        ObjectRef::from_object(
            &json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}),
        )
        .unwrap()
    }

    fn owner() -> Owner {
        Owner {
            name: "apps".into(),
            namespace: "flux-system".into(),
        }
    }

    #[test]
    fn definitions_then_classes_then_the_rest() {
        let cases = [
            (
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                Stage::Definitions,
            ),
            ("v1", "Namespace", Stage::Definitions),
            (
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                Stage::Definitions,
            ),
            (
                "rbac.authorization.k8s.io/v1",
                "ClusterRoleBinding",
                Stage::Resources,
            ),
            ("storage.k8s.io/v1", "StorageClass", Stage::Classes),
            ("networking.k8s.io/v1", "IngressClass", Stage::Classes),
            ("example.com/v1", "Namespace", Stage::Resources),
            ("apps/v1", "Deployment", Stage::Resources),
        ];
        for (api_version, kind, stage) in cases {
            assert_eq!(stage_of(&reference(api_version, kind)), stage, "{kind}");
        }
    }

    #[test]
    fn apply_order_puts_dependencies_first_and_webhooks_last() {
        let mut objects = [
            reference(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
            ),
            reference("example.com/v1", "Widget"),
            reference("apps/v1", "Deployment"),
            reference("v1", "ServiceAccount"),
            reference("v1", "ConfigMap"),
        ];
        objects.sort_by(apply_order);
        let kinds: Vec<_> = objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ConfigMap",
                "Deployment",
                "Widget",
                "ValidatingWebhookConfiguration"
            ]
        );
    }

    #[test]
    fn markers_match_labels_or_annotations_case_insensitively() {
        let desired =
            json!({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "ignore"}}});
        assert!(is_excluded(&desired, None));
        let live =
            json!({"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/reconcile": "Disabled"}}});
        assert!(is_excluded(&json!({}), Some(&live)));
        assert!(!is_excluded(&json!({"metadata": {}}), Some(&json!({}))));
        let merge =
            json!({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/ssa": "Merge"}}});
        assert!(is_merge(&json!({}), Some(&merge)));
        assert!(!is_if_not_present(&merge));
        let force =
            json!({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/force": "Enabled"}}});
        assert!(is_force_annotated(&force, None));
        let keep =
            json!({"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/prune": "disabled"}}});
        assert!(is_prune_excluded(&keep));
    }

    #[test]
    fn owner_labels_are_set_and_recognised() {
        let mut object =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
        set_owner_labels(&mut object, &owner());
        assert_eq!(
            object["metadata"]["labels"],
            json!({"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"})
        );
        assert!(is_owned_by(&object, &owner()));
        let other = Owner {
            name: "apps".into(),
            namespace: "tenant".into(),
        };
        assert!(!is_owned_by(&object, &other));
    }

    #[test]
    fn drift_ignores_server_metadata_and_status() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "resourceVersion": "1", "generation": 1, "labels": {"x": "1"},
                         "managedFields": [{"manager": "a"}]},
            "data": {"k": "v"}, "status": {"phase": "old"}
        });
        let mut same = live.clone();
        same["metadata"]["resourceVersion"] = json!("2");
        same["metadata"]["managedFields"] = json!([{"manager": "b"}]);
        same["status"] = json!({"phase": "new"});
        assert!(!has_drifted(&live, &same));

        let mut data = live.clone();
        data["data"]["k"] = json!("w");
        assert!(has_drifted(&live, &data));
        let mut label = live.clone();
        label["metadata"]["labels"]["y"] = json!("2");
        assert!(has_drifted(&live, &label));
        let mut annotation = live.clone();
        annotation["metadata"]["annotations"] = json!({"a": "b"});
        assert!(has_drifted(&live, &annotation));
        let mut empty_annotations = live.clone();
        empty_annotations["metadata"]["annotations"] = json!({});
        assert!(!has_drifted(&live, &empty_annotations));
    }

    #[test]
    fn takeover_folds_kubectl_managers_into_ours_and_drops_last_applied() {
        let live = json!({"metadata": {
        "annotations": {LAST_APPLIED_ANNOTATION: "{}", "keep": "me"},
        "managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}}}},
            {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:b": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
            {"manager": "kubectl", "operation": "Update", "subresource": "status",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}},
            {"manager": "other", "operation": "Update", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:c": {}}}}
        ]}});
        let takeover = vec!["kubectl".to_owned(), "before-first-apply".to_owned()];
        let patch = takeover_patch(&live, "kustomize-controller", &takeover).unwrap();
        let ops = patch.as_array().unwrap();
        assert_eq!(
            ops[0],
            json!({"op": "remove", "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration"})
        );
        let entries = ops[1]["value"].as_array().unwrap();
        let managers: Vec<_> = entries
            .iter()
            .map(|e| e["manager"].as_str().unwrap())
            .collect();
        assert_eq!(
            managers,
            [
                "kube-controller-manager",
                "kubectl",
                "other",
                "kustomize-controller"
            ]
        );
        assert_eq!(entries[3]["operation"], "Apply");
        assert_eq!(
            entries[3]["fieldsV1"],
            json!({"f:data": {"f:a": {}, "f:b": {}}})
        );
    }

    #[test]
    fn takeover_renames_the_first_match_when_we_own_nothing_yet() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "before-first-apply", "operation": "Update", "fieldsV1": {"f:a": {}}},
            {"manager": "kustomize-controller", "operation": "Update", "fieldsV1": {"f:b": {}}}
        ]}});
        let patch = takeover_patch(
            &live,
            "kustomize-controller",
            &["before-first-apply".into()],
        )
        .unwrap();
        let entries = patch[0]["value"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0]["manager"], "kustomize-controller");
        assert_eq!(entries[0]["operation"], "Apply");
        assert_eq!(entries[0]["fieldsV1"], json!({"f:a": {}, "f:b": {}}));
    }

    #[test]
    fn nothing_to_take_over_means_no_patch() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "kustomize-controller", "operation": "Apply", "fieldsV1": {"f:a": {}}},
            {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {}}}
        ]}});
        assert_eq!(
            takeover_patch(&live, "kustomize-controller", &["kubectl".into()]),
            None
        );
    }

    #[test]
    fn immutable_errors_are_recognised_and_plain_invalid_ones_are_not() {
        let cases = [
            (
                422,
                "Invalid",
                "ConfigMap \"a\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
                true,
            ),
            (
                422,
                "Invalid",
                "Job.batch \"j\" is invalid: spec.template: Invalid value: ...: field is immutable",
                true,
            ),
            (
                422,
                "Invalid",
                "StatefulSet.apps \"s\" is invalid: spec: Forbidden: updates to statefulset spec for fields other than 'replicas' are forbidden",
                true,
            ),
            (
                422,
                "Invalid",
                "Widget.example.com \"w\" is invalid: spec.size: Invalid value: \"string\": Value is immutable",
                true,
            ),
            (
                400,
                "BadRequest",
                "admission webhook \"x\" denied the request: immutable field changed",
                true,
            ),
            (
                422,
                "Invalid",
                "Deployment.apps \"d\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                false,
            ),
            (409, "Conflict", "Operation cannot be fulfilled", false),
        ];
        for (code, reason, message, immutable) in cases {
            assert_eq!(
                is_immutable_error(code, reason, message),
                immutable,
                "{message}"
            );
        }
    }
}
