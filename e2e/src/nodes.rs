//! Fake nodes for tier 2: plain Node objects that kwok keeps Ready and whose pods kwok runs.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::{Node, ServiceAccount};
use kube::api::{Api, ListParams, Patch, PatchParams};

use crate::process::Managed;

/// The annotation kwok is told to manage nodes by.
pub const KWOK_NODE_ANNOTATION: &str = "kwok.x-k8s.io/node";

/// Creates (or updates) `count` fake nodes named `kwok-node-<i>`.
pub async fn create_fake_nodes(client: &kube::Client, count: usize) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    for i in 0..count {
        let name = format!("kwok-node-{i}");
        let node: Node = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "annotations": { KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0" },
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/agent": "",
                },
            },
            "status": {
                "allocatable": { "cpu": "32", "memory": "256Gi", "pods": "250" },
                "capacity": { "cpu": "32", "memory": "256Gi", "pods": "250" },
                "nodeInfo": {
                    "architecture": "amd64",
                    "operatingSystem": "linux",
                    "kubeletVersion": "fake",
                    "kubeProxyVersion": "fake",
                },
            },
        }))?;
        nodes
            .patch(
                &name,
                &PatchParams::apply("ferroflux-e2e").force(),
                &Patch::Apply(&node),
            )
            .await?;
    }
    Ok(())
}

/// Waits until `count` nodes report `Ready=True` (kwok sets it).
pub async fn wait_nodes_ready(
    client: &kube::Client,
    count: usize,
    processes: &mut [Managed],
    timeout: Duration,
) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    let deadline = Instant::now() + timeout;
    loop {
        for process in processes.iter_mut() {
            process.check_running()?;
        }
        let list = nodes
            .list(&ListParams::default().labels("type=kwok"))
            .await?;
        let ready = list
            .items
            .iter()
            .filter(|node| {
                node.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .count();
        if ready >= count {
            // The NodeRestriction/TaintNodesByCondition admission marks new nodes `not-ready`; the node
            // lifecycle controller (not run here: kwok fakes the kubelet) would lift it once Ready.
            for node in &list.items {
                if let Some(name) = node.metadata.name.as_deref() {
                    let patch = serde_json::json!({ "spec": { "taints": null } });
                    nodes
                        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await?;
                }
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "only {ready} of {count} kwok nodes became Ready within {timeout:?}; see kwok.log"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until kube-controller-manager has created the `default` ServiceAccount (pods need it).
pub async fn wait_default_service_account(
    client: &kube::Client,
    processes: &mut [Managed],
    timeout: Duration,
) -> Result<()> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + timeout;
    loop {
        for process in processes.iter_mut() {
            process.check_running()?;
        }
        if accounts.get_opt("default").await?.is_some() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "kube-controller-manager did not create the default ServiceAccount within {timeout:?}; see kube-controller-manager.log"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
