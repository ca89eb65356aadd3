//! The Greeting reconciler: validate, wait for the dependency, apply the ConfigMap.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde_json::json;
use toolkit_sdk::api::LocalObjectReference;
use toolkit_sdk::conditions::reasons;
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use crate::api::{Greeting, GreetingStatus};

/// The controller's name: field manager, event reporter, Lease prefix.
pub const CONTROLLER_NAME: &str = "greeter-controller";

/// Reason of `Ready=False`/`Stalled=True` when the spec cannot work.
pub const INVALID_SPEC_REASON: &str = "InvalidSpec";

/// Reason of `Ready=False` when applying the ConfigMap failed.
pub const APPLY_FAILED_REASON: &str = "ApplyFailed";

/// Label put on the ConfigMaps the controller writes, with the Greeting's name.
pub const GREETING_LABEL: &str = "example.ferroflux.dev/greeting";

/// Writes each Greeting's message to its ConfigMap.
#[derive(Debug, Default, Clone)]
pub struct GreeterReconciler;

impl Reconciler for GreeterReconciler {
    type Object = Greeting;

    async fn reconcile(
        &self,
        greeting: &Greeting,
        status: &mut GreetingStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        let namespace = greeting.namespace().unwrap_or_default();
        let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), &namespace);

        // 1. Validate: an empty message cannot succeed until the spec changes.
        if greeting.spec.message.trim().is_empty() {
            return Err(ReconcileError::stalled(
                INVALID_SPEC_REASON,
                "spec.message must not be empty",
            ));
        }

        // 2. Wait for the dependency.
        if let Some(dependency) = greeting.spec.depends_on.as_deref() {
            let found = config_maps.get_opt(dependency).await.map_err(|err| {
                ReconcileError::transient(
                    reasons::DEPENDENCY_NOT_READY,
                    format!("cannot read dependency ConfigMap '{namespace}/{dependency}'"),
                )
                .with_source(err)
            })?;
            if found.is_none() {
                return Err(ReconcileError::waiting(
                    reasons::DEPENDENCY_NOT_READY,
                    format!("dependency ConfigMap '{namespace}/{dependency}' does not exist yet"),
                ));
            }
        }

        // 3. Apply the ConfigMap, owned by the Greeting.
        let name = greeting.config_map_name();
        let owner = greeting.controller_owner_ref(&()).ok_or_else(|| {
            ReconcileError::stalled(INVALID_SPEC_REASON, "the Greeting has no uid")
        })?;
        let desired = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": { GREETING_LABEL: greeting.name_any() },
                "ownerReferences": [owner],
            },
            "data": { "message": greeting.spec.message },
        });
        let applied = config_maps
            .patch(
                &name,
                &PatchParams::apply(ctx.controller_name()).force(),
                &Patch::Apply(&desired),
            )
            .await
            .map_err(|err| {
                ReconcileError::transient(
                    APPLY_FAILED_REASON,
                    format!("cannot apply ConfigMap '{namespace}/{name}'"),
                )
                .with_source(err)
            })?;
        if let Some(version) = applied.resource_version() {
            ctx.set_revision(version);
        }

        // 4. Delete the previous ConfigMap when the name changed.
        if let Some(previous) = &status.config_map_ref
            && previous.name != name
        {
            delete_owned_config_map(&config_maps, &previous.name, greeting).await?;
        }
        status.config_map_ref = Some(LocalObjectReference { name: name.clone() });

        Ok(Outcome::ready(format!(
            "Greeting written to ConfigMap '{namespace}/{name}'"
        )))
    }

    async fn cleanup(&self, greeting: &Greeting, ctx: &Context) -> Result<(), ReconcileError> {
        let namespace = greeting.namespace().unwrap_or_default();
        let config_maps: Api<ConfigMap> = Api::namespaced(ctx.client().clone(), &namespace);
        let name = greeting
            .status
            .as_ref()
            .and_then(|s| s.config_map_ref.as_ref())
            .map_or_else(|| greeting.config_map_name(), |r| r.name.clone());
        delete_owned_config_map(&config_maps, &name, greeting).await
    }
}

/// Deletes the ConfigMap `name` if `greeting` owns it; a missing one is fine.
async fn delete_owned_config_map(
    api: &Api<ConfigMap>,
    name: &str,
    greeting: &Greeting,
) -> Result<(), ReconcileError> {
    let failed = |err: kube::Error| {
        ReconcileError::transient(
            APPLY_FAILED_REASON,
            format!("cannot delete ConfigMap '{name}'"),
        )
        .with_source(err)
    };
    let Some(existing) = api.get_opt(name).await.map_err(failed)? else {
        return Ok(());
    };
    let uid = greeting.uid();
    let owned = existing
        .owner_references()
        .iter()
        .any(|owner| Some(&owner.uid) == uid.as_ref());
    if !owned {
        tracing::info!(
            config_map = name,
            "not deleting a ConfigMap this Greeting does not own"
        );
        return Ok(());
    }
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(resp)) if resp.code == 404 => Ok(()),
        Err(err) => Err(failed(err)),
    }
}
