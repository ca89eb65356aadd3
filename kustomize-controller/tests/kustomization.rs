//! The Kustomization reconciler against the real API server (tier 2): an artifact served by a
//! test HTTP server, published through a GitRepository whose status the test writes, and an
//! in-process kustomize-controller per test namespace.
#![allow(clippy::unwrap_used)]

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::ResourceExt;
use kustomize_controller::api::v1::Kustomization;
use serde_json::json;
use support::{env, inventory_ids, ready_message, resource_versions};

const REV1: &str = "main@sha1:1111111111111111111111111111111111111111";
const REV2: &str = "main@sha1:2222222222222222222222222222222222222222";
const REV3: &str = "main@sha1:3333333333333333333333333333333333333333";

fn config_map(name: &str, extra: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n{extra}data:\n  key: value-{name}\n"
    )
}

fn spec(path: &str, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "interval": "10m",
        "path": path,
        "prune": true,
        "sourceRef": {"kind": "GitRepository", "name": "repo"},
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

/// Apply, Ready, inventory, event, health; then a reconcile without change writes nothing;
/// then a new revision (picked up at once through the source watch) prunes what left, except
/// what is marked `prune: disabled`; then a broken build keeps everything in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_prunes_and_keeps_the_last_good_state() {
    let env = env("ks-lifecycle").await.unwrap();
    let ns = env.ns.name.clone();
    env.git_repository("repo").await.unwrap();
    let keep = "  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n";
    env.publish(
        "repo",
        REV1,
        &[
            ("app/a.yaml", &config_map("a", "")),
            ("app/b.yaml", &config_map("b", "")),
            ("app/kept.yaml", &config_map("kept", keep)),
            ("other/ignored.yaml", &config_map("ignored", "")),
        ],
    )
    .await
    .unwrap();
    env.kustomization(
        "app",
        spec("./app", json!({"targetNamespace": ns, "wait": true})),
    )
    .await
    .unwrap();

    let ks = env
        .wait_ready("app", "True", "ReconciliationSucceeded")
        .await
        .unwrap();
    assert_eq!(ready_message(&ks), format!("Applied revision: {REV1}"));
    let status = ks.status.clone().unwrap();
    assert_eq!(status.last_applied_revision.as_deref(), Some(REV1));
    assert_eq!(status.last_attempted_revision.as_deref(), Some(REV1));
    assert_eq!(
        inventory_ids(&ks),
        [
            format!("{ns}_a__ConfigMap"),
            format!("{ns}_b__ConfigMap"),
            format!("{ns}_kept__ConfigMap"),
        ]
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Healthy" && c.status == "True"),
        "{:?}",
        status.conditions
    );
    assert_eq!(status.history.len(), 1);
    assert_eq!(
        status.history[0].last_reconciled_status,
        "ReconciliationSucceeded"
    );
    assert_eq!(status.history[0].metadata["revision"], REV1);
    let a = env.api::<ConfigMap>().get("a").await.unwrap();
    assert_eq!(a.labels()["kustomize.toolkit.fluxcd.io/name"], "app");
    assert_eq!(a.labels()["kustomize.toolkit.fluxcd.io/namespace"], ns);
    assert!(
        env.api::<ConfigMap>()
            .get_opt("ignored")
            .await
            .unwrap()
            .is_none()
    );
    let event = env
        .wait_event("app", &format!("ConfigMap/{ns}/a created"))
        .await
        .unwrap();
    assert_eq!(
        event.metadata.annotations.unwrap()["kustomize.toolkit.fluxcd.io/revision"],
        REV1
    );

    // No drift: a requested reconcile writes nothing.
    let before = resource_versions(&env, &["a", "b", "kept"]).await.unwrap();
    let events_before = env.events("app").await.unwrap().len();
    let token = env.request_reconcile("app").await.unwrap();
    env.wait_ks("app", "reconciled again", |ks| {
        ks.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some(token.as_str())
            && support::ready_is(ks, "True", "ReconciliationSucceeded")
    })
    .await
    .unwrap();
    assert_eq!(
        resource_versions(&env, &["a", "b", "kept"]).await.unwrap(),
        before
    );
    assert_eq!(env.events("app").await.unwrap().len(), events_before);

    // A new revision without b and kept: b is pruned at once, kept stays.
    env.publish("repo", REV2, &[("app/a.yaml", &config_map("a", ""))])
        .await
        .unwrap();
    let ks = env
        .wait_ks("app", "at REV2", |ks| {
            ks.status
                .as_ref()
                .and_then(|s| s.last_applied_revision.as_deref())
                == Some(REV2)
        })
        .await
        .unwrap();
    assert_eq!(inventory_ids(&ks), [format!("{ns}_a__ConfigMap")]);
    env.wait_gone::<ConfigMap>("b").await.unwrap();
    assert!(
        env.api::<ConfigMap>()
            .get_opt("kept")
            .await
            .unwrap()
            .is_some()
    );
    env.wait_event("app", &format!("ConfigMap/{ns}/b deleted"))
        .await
        .unwrap();

    // A broken build: BuildFailed, the last applied state and inventory stay.
    env.publish(
        "repo",
        REV3,
        &[("app/kustomization.yaml", "resources: [missing.yaml]\n")],
    )
    .await
    .unwrap();
    let ks = env.wait_ready("app", "False", "BuildFailed").await.unwrap();
    assert!(
        ready_message(&ks).contains("missing.yaml"),
        "{}",
        ready_message(&ks)
    );
    let status = ks.status.unwrap();
    assert_eq!(status.last_attempted_revision.as_deref(), Some(REV3));
    assert_eq!(status.last_applied_revision.as_deref(), Some(REV2));
    assert_eq!(
        status.inventory.unwrap().entries[0].id,
        format!("{ns}_a__ConfigMap")
    );
    assert!(env.api::<ConfigMap>().get_opt("a").await.unwrap().is_some());
}

/// A Kustomization waits for its dependency, then applies once the dependency is Ready with
/// the same revision.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn depends_on_waits_for_the_dependency() {
    let env = env("ks-depends").await.unwrap();
    let ns = env.ns.name.clone();
    env.git_repository("repo").await.unwrap();
    env.publish(
        "repo",
        REV1,
        &[
            ("infra/x.yaml", &config_map("infra", "")),
            ("apps/y.yaml", &config_map("app", "")),
        ],
    )
    .await
    .unwrap();
    env.kustomization(
        "apps",
        spec(
            "./apps",
            json!({"targetNamespace": ns, "dependsOn": [{"name": "infra"}]}),
        ),
    )
    .await
    .unwrap();
    let ks = env
        .wait_ready("apps", "False", "DependencyNotReady")
        .await
        .unwrap();
    assert_eq!(
        ready_message(&ks),
        format!("dependency '{ns}/infra' not found")
    );
    assert!(
        env.api::<ConfigMap>()
            .get_opt("app")
            .await
            .unwrap()
            .is_none()
    );

    env.kustomization("infra", spec("./infra", json!({"targetNamespace": ns})))
        .await
        .unwrap();
    env.wait_ready("infra", "True", "ReconciliationSucceeded")
        .await
        .unwrap();
    env.wait_ready("apps", "True", "ReconciliationSucceeded")
        .await
        .unwrap();
    assert!(
        env.api::<ConfigMap>()
            .get_opt("app")
            .await
            .unwrap()
            .is_some()
    );
}

/// `postBuild`: inline variables win over `substituteFrom`, a missing optional source is
/// empty, defaults apply, `$${x}` stays literal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn substitutes_post_build_variables() {
    let env = env("ks-subst").await.unwrap();
    let ns = env.ns.name.clone();
    env.git_repository("repo").await.unwrap();
    env.create::<ConfigMap>(json!({
        "metadata": {"name": "vars"},
        "data": {"region": "eu-1", "tier": "from-configmap"}
    }))
    .await
    .unwrap();
    let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  region: ${region}\n  tier: ${tier}\n  size: ${size:=small}\n  literal: $${region}\n";
    env.publish("repo", REV1, &[("deploy/settings.yaml", manifest)])
        .await
        .unwrap();
    env.kustomization(
        "subst",
        spec(
            "deploy",
            json!({
                "targetNamespace": ns,
                "postBuild": {
                    "substitute": {"tier": "inline"},
                    "substituteFrom": [
                        {"kind": "ConfigMap", "name": "vars"},
                        {"kind": "Secret", "name": "absent", "optional": true}
                    ]
                }
            }),
        ),
    )
    .await
    .unwrap();
    env.wait_ready("subst", "True", "ReconciliationSucceeded")
        .await
        .unwrap();
    let data = env
        .api::<ConfigMap>()
        .get("settings")
        .await
        .unwrap()
        .data
        .unwrap();
    assert_eq!(data["region"], "eu-1");
    assert_eq!(data["tier"], "inline");
    assert_eq!(data["size"], "small");
    assert_eq!(data["literal"], "${region}");
}

/// A Kustomization impersonating a ServiceAccount without rights is refused by RBAC, with a
/// message naming the account; nothing is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_is_limited_by_rbac() {
    let env = env("ks-tenant").await.unwrap();
    let ns = env.ns.name.clone();
    env.git_repository("repo").await.unwrap();
    env.create::<ServiceAccount>(json!({"metadata": {"name": "tenant"}}))
        .await
        .unwrap();
    env.publish("repo", REV1, &[("cm.yaml", &config_map("tenant-cm", ""))])
        .await
        .unwrap();
    env.kustomization(
        "tenant",
        spec(
            "./",
            json!({"targetNamespace": ns, "serviceAccountName": "tenant"}),
        ),
    )
    .await
    .unwrap();
    let ks = env
        .wait_ready("tenant", "False", "ReconciliationFailed")
        .await
        .unwrap();
    let message = ready_message(&ks);
    assert!(
        message.contains(&format!("system:serviceaccount:{ns}:tenant"))
            && message.contains("forbidden"),
        "{message}"
    );
    assert!(
        env.api::<ConfigMap>()
            .get_opt("tenant-cm")
            .await
            .unwrap()
            .is_none()
    );
    assert!(ks.status.unwrap().inventory.is_none());
}

/// Deleting a Kustomization with `prune: true` (deletion policy MirrorPrune) deletes what it
/// applied; with `deletionPolicy: Orphan` the objects stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_follows_the_deletion_policy() {
    let env = env("ks-delete").await.unwrap();
    let ns = env.ns.name.clone();
    env.git_repository("repo").await.unwrap();
    env.publish(
        "repo",
        REV1,
        &[
            ("mirror/m.yaml", &config_map("mirrored", "")),
            ("orphan/o.yaml", &config_map("orphaned", "")),
        ],
    )
    .await
    .unwrap();
    env.kustomization("mirror", spec("mirror", json!({"targetNamespace": ns})))
        .await
        .unwrap();
    env.kustomization(
        "orphan",
        spec(
            "orphan",
            json!({"targetNamespace": ns, "deletionPolicy": "Orphan"}),
        ),
    )
    .await
    .unwrap();
    for name in ["mirror", "orphan"] {
        env.wait_ready(name, "True", "ReconciliationSucceeded")
            .await
            .unwrap();
    }
    for name in ["mirror", "orphan"] {
        env.api::<Kustomization>()
            .delete(name, &Default::default())
            .await
            .unwrap();
    }
    env.wait_gone::<Kustomization>("mirror").await.unwrap();
    env.wait_gone::<Kustomization>("orphan").await.unwrap();
    env.wait_gone::<ConfigMap>("mirrored").await.unwrap();
    assert!(
        env.api::<ConfigMap>()
            .get_opt("orphaned")
            .await
            .unwrap()
            .is_some()
    );
}

/// A source in another namespace is refused with `--no-cross-namespace-refs`, and a missing
/// path is an `ArtifactFailed` naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_references_are_reported() {
    let mut env = env("ks-refs").await.unwrap();
    env.stop().await.unwrap();
    let mut config = env.config();
    config.settings.no_cross_namespace_refs = true;
    env.controller = Some(
        kustomize_controller::controller::KustomizeController::start(
            config,
            env.kube_config.clone(),
        )
        .unwrap(),
    );
    env.git_repository("repo").await.unwrap();
    env.publish("repo", REV1, &[("cm.yaml", &config_map("x", ""))])
        .await
        .unwrap();
    let mut cross = spec("./", json!({}));
    cross["sourceRef"]["namespace"] = json!("elsewhere");
    env.kustomization("cross", cross).await.unwrap();
    let ks = env
        .wait_ready("cross", "False", "AccessDenied")
        .await
        .unwrap();
    assert_eq!(
        ready_message(&ks),
        "can't access 'GitRepository/elsewhere/repo', cross-namespace references have been blocked"
    );
    env.kustomization("nopath", spec("./does-not-exist", json!({})))
        .await
        .unwrap();
    let ks = env
        .wait_ready("nopath", "False", "ArtifactFailed")
        .await
        .unwrap();
    assert!(
        ready_message(&ks).contains("kustomization path not found"),
        "{}",
        ready_message(&ks)
    );
    // A drift ignore rule that cannot work stalls with the rule named.
    let mut bad_rule = spec("./", json!({}));
    bad_rule["driftIgnoreRules"] = json!([{"paths": ["spec/replicas"]}]);
    env.kustomization("badrule", bad_rule).await.unwrap();
    let ks = env
        .wait_ready("badrule", "False", "ReconciliationFailed")
        .await
        .unwrap();
    assert!(
        ready_message(&ks).contains("spec.driftIgnoreRules[0]: path 'spec/replicas'"),
        "{}",
        ready_message(&ks)
    );
    let stalled = ks
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .any(|c| c.type_ == "Stalled" && c.status == "True");
    assert!(stalled, "a configuration error is not retried");
}
