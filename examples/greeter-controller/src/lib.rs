//! An example controller built only on `toolkit-sdk`: a [`Greeting`] becomes a
//! ConfigMap holding its message.
//!
//! It shows everything a Ferroflux controller gets from the SDK: the Flux conventions on the
//! kind (`spec.interval`, `spec.suspend`, `spec.retryInterval`, `status.conditions`,
//! `status.observedGeneration`, `status.lastHandledReconcileAt`), a stalled error
//! (`InvalidSpec` for an empty message), a waiting error (`DependencyNotReady` until
//! `spec.dependsOn` exists), events, metrics, leader election and graceful shutdown.
//!
//! - [`api`]: the `Greeting` custom resource (`example.ferroflux.dev/v1`);
//! - [`controller`]: the reconciler;
//! - [`run`]: connect and run the controller (what `main` calls).

pub mod api;
pub mod controller;

use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use toolkit_sdk::runtime::{Controller, ControllerOptions, connect};

pub use api::{Greeting, GreetingSpec, GreetingStatus};
pub use controller::{CONTROLLER_NAME, GreeterReconciler};

/// The CustomResourceDefinition of `Greeting` (written to `config/crd.yaml` by
/// `cargo xtask gen-crds`).
pub fn crd() -> CustomResourceDefinition {
    Greeting::crd()
}

/// Connects to the API server (`kubeconfig`, or the usual inference) and runs the greeter
/// controller until SIGTERM/SIGINT.
///
/// # Errors
/// Fails fast when the API server cannot be reached, when the endpoints cannot be bound, or
/// when this replica loses its leader Lease.
pub async fn run(options: ControllerOptions, kubeconfig: Option<&Path>) -> anyhow::Result<()> {
    let client = connect(kubeconfig).await?;
    Controller::new(GreeterReconciler, options)
        .run(client)
        .await?;
    Ok(())
}
