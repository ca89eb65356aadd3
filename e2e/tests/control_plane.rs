//! The local control plane does what tests and the demo rely on: a real, RBAC-enforcing API server,
//! clients for other users, and (tier 2) Deployments that become Available, namespace deletion and
//! garbage collection.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use anyhow::Result;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, PostParams};

async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await? {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn api_server_reports_the_pinned_kubernetes_version() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let client = cluster.client().await?;
    let version = client.apiserver_version().await?;
    assert_eq!(
        version.git_version,
        format!("v{}", e2e::binaries::KUBERNETES_VERSION)
    );
    Ok(())
}

#[tokio::test]
async fn rbac_is_enforced_for_impersonated_users_and_service_accounts() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace("rbac").await?;
    let admin_maps: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "probe"}, "data": {"k": "v"}
    }))?;
    admin_maps.create(&PostParams::default(), &cm).await?;

    let stranger = cluster
        .impersonating_client("jane", &["developers"])
        .await?;
    let stranger_maps: Api<ConfigMap> = Api::namespaced(stranger, &ns.name);
    let denied = stranger_maps.get("probe").await.unwrap_err();
    assert!(
        matches!(&denied, kube::Error::Api(status) if status.code == 403),
        "expected 403 Forbidden, got {denied:?}"
    );

    let sa = cluster.service_account_client(&ns.name, "reader").await?;
    let sa_maps: Api<ConfigMap> = Api::namespaced(sa.clone(), &ns.name);
    assert!(sa_maps.get("probe").await.is_err());

    // Grant the service account read access and it can read.
    let role: k8s_openapi::api::rbac::v1::Role = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "read-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
    }))?;
    let binding: k8s_openapi::api::rbac::v1::RoleBinding = serde_json::from_value(
        serde_json::json!({
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns.name}]
        }),
    )?;
    Api::<k8s_openapi::api::rbac::v1::Role>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &role)
        .await?;
    Api::<k8s_openapi::api::rbac::v1::RoleBinding>::namespaced(ns.client.clone(), &ns.name)
        .create(&PostParams::default(), &binding)
        .await?;
    eventually(
        "the binding to take effect",
        Duration::from_secs(10),
        || {
            let sa_maps = sa_maps.clone();
            async move { Ok(sa_maps.get("probe").await.is_ok()) }
        },
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn tier2_runs_deployments_to_available_and_collects_garbage() -> Result<()> {
    let cluster = e2e::full_cluster().await?;
    let ns = cluster.namespace("tier2").await?;
    let deployments: Api<Deployment> = Api::namespaced(ns.client.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:fake"}]}
            }
        }
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;
    eventually(
        "the Deployment to become Available",
        Duration::from_secs(60),
        || {
            let deployments = deployments.clone();
            async move {
                let d = deployments.get("web").await?;
                let status = d.status.unwrap_or_default();
                let available = status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Available" && c.status == "True");
                Ok(available && status.available_replicas == Some(2))
            }
        },
    )
    .await?;
    let pods: Api<Pod> = Api::namespaced(ns.client.clone(), &ns.name);
    let running = pods.list(&ListParams::default().labels("app=web")).await?;
    assert_eq!(running.items.len(), 2);
    assert!(running.items.iter().all(|p| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some_and(|n| n.starts_with("kwok-node-"))
    }));

    // Garbage collection: deleting the Deployment removes its ReplicaSet.
    deployments
        .delete("web", &DeleteParams::background())
        .await?;
    let replicasets: Api<ReplicaSet> = Api::namespaced(ns.client.clone(), &ns.name);
    eventually(
        "the ReplicaSet to be garbage collected",
        Duration::from_secs(60),
        || {
            let replicasets = replicasets.clone();
            async move {
                Ok(replicasets
                    .list(&ListParams::default())
                    .await?
                    .items
                    .is_empty())
            }
        },
    )
    .await?;

    // Namespace deletion completes (the namespace controller finalises it).
    let namespaces: Api<Namespace> = Api::all(ns.client.clone());
    let name = ns.name.clone();
    ns.delete().await?;
    eventually(
        "the namespace to be deleted",
        Duration::from_secs(60),
        || {
            let namespaces = namespaces.clone();
            let name = name.clone();
            async move { Ok(namespaces.get_opt(&name).await?.is_none()) }
        },
    )
    .await?;
    Ok(())
}
