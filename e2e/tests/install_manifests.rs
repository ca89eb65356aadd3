//! `config/default` is what users install: it must build with kustomize and be accepted by a real API
//! server (server-side dry-run).
#![allow(clippy::unwrap_used)]

use std::process::Command;

use anyhow::{Context, Result, ensure};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};
use serde::Deserialize;

#[tokio::test]
async fn config_default_is_accepted_by_the_api_server_with_server_side_dry_run() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let client = cluster.client().await?;
    let root = e2e::repo_root();
    let built = Command::new("kubectl")
        .args(["kustomize"])
        .arg(root.join("config/default"))
        .output()
        .context("kubectl (with its built-in kustomize) must be on PATH")?;
    ensure!(
        built.status.success(),
        "kubectl kustomize config/default failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let text = String::from_utf8(built.stdout)?;
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let object = DynamicObject::deserialize(document)?;
        objects.push(object);
    }
    ensure!(!objects.is_empty(), "config/default built to nothing");
    // Namespaces are created for real first: a dry-run namespace does not exist for the objects in it.
    objects.sort_by_key(|o| o.types.as_ref().is_none_or(|t| t.kind != "Namespace"));
    for object in &objects {
        let types = object
            .types
            .as_ref()
            .context("an object without apiVersion/kind")?;
        let (group, version) = match types.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), types.api_version.clone()),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, &types.kind);
        let (resource, capabilities) = pinned_kind(&client, &gvk)
            .await
            .with_context(|| format!("the API server does not know {gvk:?}"))?;
        let name = object
            .metadata
            .name
            .clone()
            .context("an object without a name")?;
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => {
                let ns = object
                    .metadata
                    .namespace
                    .clone()
                    .with_context(|| format!("{} {name} has no namespace", types.kind))?;
                Api::namespaced_with(client.clone(), &ns, &resource)
            }
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let mut params = PatchParams::apply("ferroflux-install-test").force();
        if types.kind != "Namespace" {
            params = params.dry_run();
        }
        api.patch(&name, &params, &Patch::Apply(object))
            .await
            .with_context(|| format!("the API server refused {} {name}", types.kind))?;
    }
    Ok(())
}
