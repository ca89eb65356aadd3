//! The `kustomize.toolkit.fluxcd.io` API, wire-compatible with Flux v2.9.
//!
//! Types and pure helpers only (no reconciler), so a crate that reads Kustomizations (a CLI, a
//! dashboard, another controller's dependency check) can depend on it cheaply.
//!
//! - [`v1`]: `Kustomization` (`kustomize.toolkit.fluxcd.io/v1`).
//!
//! The CustomResourceDefinition in `config/crd/bases/` is generated from these types by
//! `cargo xtask gen-crds`; [`crds`] lists it.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub mod v1;

/// Every CustomResourceDefinition of this crate, with the file name it is committed under in
/// `config/crd/bases/` (the names Flux uses).
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![(
        "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
        v1::Kustomization::flux_crd(),
    )]
}
