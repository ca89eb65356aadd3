//! The `source.toolkit.fluxcd.io` API, wire-compatible with Flux v2.9.
//!
//! This module holds only types and pure helpers (no reconciler), so any crate that reads a
//! source's `status.artifact` can depend on it cheaply.
//!
//! - [`v1`]: `GitRepository` and `OCIRepository` (`source.toolkit.fluxcd.io/v1`).
//!
//! The CustomResourceDefinitions in `config/crd/bases/` are generated from these types by
//! `cargo xtask gen-crds`; [`crds`] lists them.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

pub mod v1;

/// Every CustomResourceDefinition of this crate, with the file name it is committed under in
/// `config/crd/bases/` (the names Flux uses).
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    vec![
        (
            "source.toolkit.fluxcd.io_gitrepositories.yaml",
            v1::GitRepository::flux_crd(),
        ),
        (
            "source.toolkit.fluxcd.io_ocirepositories.yaml",
            v1::OciRepository::flux_crd(),
        ),
    ]
}
