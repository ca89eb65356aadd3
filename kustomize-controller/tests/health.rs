//! Health checks against a real API server: `HealthChecker::wait` returns once objects are
//! Current, fails fast on a stalled object, lists what is not ready on timeout, stops when
//! cancelled, and evaluates `healthCheckExprs` on custom resources.
//!
//! The custom resource is a tiny `Widget` kind installed by the tests, whose status the tests
//! write through the status subresource the way a controller would.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kustomize_controller::apply::ApiCache;
use kustomize_controller::health::{CustomHealthCheck, HealthChecker, HealthError, Status};
use kustomize_controller::object_ref::ObjectRef;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const GROUP: &str = "health.ferroflux.test";
const POLL: Duration = Duration::from_millis(200);

fn widget_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: "v1".into(),
        api_version: format!("{GROUP}/v1"),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// Installs the Widget CRD (if this cluster does not have it yet) and waits until it is served.
///
/// Not memoised: the tests of this file may run against two control planes (the full one of the
/// Deployment test becomes the one `e2e::cluster()` hands out once it is up).
async fn widget_crd(client: &kube::Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{GROUP}")},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                      "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object",
                                 "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object",
                                   "x-kubernetes-preserve-unknown-fields": true}
                    }
                }}
            }]
        }
    }))?;
    match crds.create(&PostParams::default(), &crd).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => return Err(error).context("cannot create the Widget CRD"),
    }
    let widgets: Api<DynamicObject> = Api::all_with(client.clone(), &widget_resource());
    let started = Instant::now();
    while widgets.list(&Default::default()).await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the Widget CRD is not served after 30 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

struct Env {
    ns: e2e::TestNamespace,
    widgets: Api<DynamicObject>,
}

async fn env(prefix: &str) -> Result<Env> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace(prefix).await?;
    widget_crd(&ns.client).await?;
    let widgets = Api::namespaced_with(ns.client.clone(), &ns.name, &widget_resource());
    Ok(Env { ns, widgets })
}

impl Env {
    fn checker(&self, checks: &[CustomHealthCheck]) -> HealthChecker {
        HealthChecker::new(self.ns.client.clone(), ApiCache::new(), checks)
            .unwrap()
            .with_poll_interval(POLL)
    }

    fn widget_ref(&self, name: &str) -> ObjectRef {
        ObjectRef {
            group: GROUP.into(),
            version: "v1".into(),
            kind: "Widget".into(),
            namespace: self.ns.name.clone(),
            name: name.into(),
        }
    }

    /// Creates a Widget and gives it `status` (as its controller would).
    async fn widget(&self, name: &str, status: Value) -> Result<ObjectRef> {
        let widget: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{GROUP}/v1"), "kind": "Widget",
            "metadata": {"name": name}, "spec": {"size": 1}
        }))?;
        self.widgets.create(&PostParams::default(), &widget).await?;
        self.set_status(name, status).await?;
        Ok(self.widget_ref(name))
    }

    async fn set_status(&self, name: &str, status: Value) -> Result<()> {
        self.widgets
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .with_context(|| format!("cannot write the status of {name}"))?;
        Ok(())
    }
}

fn ready(status: &str, message: &str) -> Value {
    json!({"observedGeneration": 1, "conditions": [{
        "type": "Ready", "status": status, "reason": "Testing", "message": message,
        "lastTransitionTime": "2025-01-01T00:00:00Z"
    }]})
}

fn core(kind: &str, namespace: &str, name: &str) -> ObjectRef {
    ObjectRef {
        group: String::new(),
        version: "v1".into(),
        kind: kind.into(),
        namespace: namespace.into(),
        name: name.into(),
    }
}

#[tokio::test]
async fn config_map_and_service_are_current_at_once() -> Result<()> {
    let env = env("health-core").await?;
    let client = env.ns.client.clone();
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), &env.ns.name);
    config_maps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "settings"},
                                           "data": {"a": "1"}}))?,
        )
        .await?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), &env.ns.name);
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "web"},
                "spec": {"ports": [{"port": 80}], "selector": {"app": "web"}}}))?,
        )
        .await?;

    let checker = env.checker(&[]);
    let objects = [
        core("ConfigMap", &env.ns.name, "settings"),
        core("Service", &env.ns.name, "web"),
    ];
    let started = Instant::now();
    checker
        .wait(&objects, Duration::from_secs(30), &CancellationToken::new())
        .await?;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let status = checker.check(&objects[1]).await?;
    assert_eq!(status.status, Status::Current);
    assert_eq!(status.message, "Service is ready");
    Ok(())
}

#[tokio::test]
async fn wait_returns_once_ready_turns_true() -> Result<()> {
    let env = env("health-ready").await?;
    let widget = env
        .widget("slow", ready("Unknown", "reconciliation in progress"))
        .await?;
    let checker = env.checker(&[]);
    assert_eq!(checker.check(&widget).await?.status, Status::InProgress);

    let setter = {
        let widgets = env.widgets.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            widgets
                .patch_status(
                    "slow",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": ready("True", "all good")})),
                )
                .await
        })
    };
    let started = Instant::now();
    checker
        .wait(
            std::slice::from_ref(&widget),
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await?;
    let waited = started.elapsed();
    setter.await??;
    assert!(
        waited >= Duration::from_millis(1500),
        "returned before Ready was True: {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "took {waited:?}");
    let status = checker.check(&widget).await?;
    assert_eq!(status.status, Status::Current);
    assert_eq!(status.message, "all good");
    Ok(())
}

#[tokio::test]
async fn stalled_object_fails_fast() -> Result<()> {
    let env = env("health-stalled").await?;
    let healthy = env.widget("healthy", ready("True", "ok")).await?;
    let stalled = env
        .widget(
            "broken",
            json!({"observedGeneration": 1, "conditions": [
                {"type": "Ready", "status": "False", "reason": "InstallFailed",
                 "message": "install failed", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "Stalled", "status": "True", "reason": "RetriesExceeded",
                 "message": "retries exhausted", "lastTransitionTime": "2025-01-01T00:00:00Z"}
            ]}),
        )
        .await?;
    let started = Instant::now();
    let error = env
        .checker(&[])
        .wait(
            &[healthy, stalled],
            Duration::from_secs(120),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "did not fail fast: {:?}",
        started.elapsed()
    );
    let HealthError::Failed { objects } = &error else {
        bail!("expected Failed, got {error:?}");
    };
    assert_eq!(objects.len(), 1);
    assert_eq!(
        error.to_string(),
        format!(
            "failed early due to stalled resources: \
             [Widget/{}/broken status: 'Failed': retries exhausted]",
            env.ns.name
        )
    );
    Ok(())
}

#[tokio::test]
async fn timeout_lists_each_object_that_is_not_ready() -> Result<()> {
    let env = env("health-timeout").await?;
    let healthy = env.widget("healthy", ready("True", "ok")).await?;
    let waiting = env
        .widget("waiting", ready("False", "dependency not ready"))
        .await?;
    let missing = env.widget_ref("missing");
    let started = Instant::now();
    let error = env
        .checker(&[])
        .wait(
            &[healthy, waiting, missing],
            Duration::from_secs(2),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(6),
        "{waited:?}"
    );
    assert!(matches!(error, HealthError::Timeout { .. }), "{error:?}");
    let ns = &env.ns.name;
    assert_eq!(
        error.to_string(),
        format!(
            "timeout waiting for: [Widget/{ns}/waiting status: 'InProgress', \
             Widget/{ns}/missing status: 'NotFound']"
        )
    );
    Ok(())
}

#[tokio::test]
async fn cancel_stops_the_wait() -> Result<()> {
    let env = env("health-cancel").await?;
    let waiting = env.widget("waiting", ready("False", "not yet")).await?;
    let cancel = CancellationToken::new();
    let trigger = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            cancel.cancel();
        })
    };
    let started = Instant::now();
    let error = env
        .checker(&[])
        .wait(&[waiting], Duration::from_secs(120), &cancel)
        .await
        .unwrap_err();
    trigger.await?;
    assert!(matches!(error, HealthError::Cancelled), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test]
async fn health_check_exprs_decide_for_their_kind() -> Result<()> {
    let env = env("health-cel").await?;
    let checks = [CustomHealthCheck {
        api_version: format!("{GROUP}/v1"),
        kind: "Widget".into(),
        current: Some("status.phase == 'Done'".into()),
        in_progress: Some("status.phase == 'Working'".into()),
        failed: Some("status.phase == 'Broken'".into()),
    }];
    let checker = env.checker(&checks);
    // Ready=True would make kstatus say Current; the expressions win for this kind.
    let widget = env
        .widget(
            "job",
            json!({"phase": "Working", "conditions": ready("True", "ok")["conditions"]}),
        )
        .await?;
    assert_eq!(checker.check(&widget).await?.status, Status::InProgress);

    let setter = {
        let widgets = env.widgets.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            widgets
                .patch_status(
                    "job",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"status": {"phase": "Done"}})),
                )
                .await
        })
    };
    checker
        .wait(
            std::slice::from_ref(&widget),
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await?;
    setter.await??;

    let broken = env.widget("broken", json!({"phase": "Broken"})).await?;
    let error = checker
        .wait(
            &[broken],
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, HealthError::Failed { .. }), "{error:?}");

    let bad = HealthChecker::new(
        env.ns.client.clone(),
        ApiCache::new(),
        &[CustomHealthCheck {
            current: Some("status.phase ==".into()),
            ..checks[0].clone()
        }],
    )
    .unwrap_err();
    assert!(
        matches!(
            bad,
            HealthError::InvalidExpression {
                field: "current",
                ..
            }
        ),
        "{bad:?}"
    );
    Ok(())
}

#[tokio::test]
async fn reads_refused_by_rbac_end_the_wait() -> Result<()> {
    let env = env("health-rbac").await?;
    let widget = env.widget("w", ready("True", "ok")).await?;
    let cluster = e2e::cluster().await?;
    let nobody = cluster
        .impersonating_client("health-nobody", &["system:authenticated"])
        .await?;
    let checker = HealthChecker::new(nobody, ApiCache::new(), &[])?.with_poll_interval(POLL);
    let error = checker
        .wait(
            &[widget],
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, HealthError::Api { .. }), "{error:?}");
    assert!(
        error
            .to_string()
            .contains(&format!("Widget/{}/w", env.ns.name)),
        "{error}"
    );
    Ok(())
}

/// Tier 3 (kwok nodes): a real Deployment goes from InProgress to Current with kstatus's message.
#[tokio::test]
async fn deployment_becomes_current_on_a_full_cluster() -> Result<()> {
    let cluster = e2e::full_cluster().await?;
    let ns = cluster.namespace("health-deploy").await?;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(ns.client.clone(), &ns.name);
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "web"},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "web", "image": "nginx:fake"}]}
                    }
                }
            }))?,
        )
        .await?;
    let deployment = ObjectRef {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: ns.name.clone(),
        name: "web".into(),
    };
    let checker =
        HealthChecker::new(ns.client.clone(), ApiCache::new(), &[])?.with_poll_interval(POLL);
    checker
        .wait(
            std::slice::from_ref(&deployment),
            Duration::from_secs(90),
            &CancellationToken::new(),
        )
        .await?;
    let status = checker.check(&deployment).await?;
    assert_eq!(status.status, Status::Current);
    assert_eq!(status.message, "Deployment is available. Replicas: 2");
    Ok(())
}
