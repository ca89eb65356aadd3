//! The `notification.toolkit.fluxcd.io` API, wire-compatible with Flux v2.9.
//!
//! Types and pure helpers only (no reconciler):
//!
//! - `Provider` and `Alert` in [`v1beta3`];
//! - `Receiver` in [`v1`].
//!
//! The CustomResourceDefinitions in `config/crd/bases/` are generated from these types by
//! `cargo xtask gen-crds`; [`crds`] lists them.

pub mod v1;
pub mod v1beta3;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Every CustomResourceDefinition of this crate, with the file name it is committed under in
/// `config/crd/bases/` (the names Flux uses).
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        (
            "notification.toolkit.fluxcd.io_providers.yaml",
            v1beta3::Provider::flux_crd(),
        ),
        (
            "notification.toolkit.fluxcd.io_alerts.yaml",
            v1beta3::Alert::flux_crd(),
        ),
        (
            "notification.toolkit.fluxcd.io_receivers.yaml",
            v1::Receiver::flux_crd(),
        ),
    ]
}
