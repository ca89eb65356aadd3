//! The notification.toolkit.fluxcd.io kinds (being written).

pub mod v1;
pub mod v1beta3;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Every CustomResourceDefinition of this crate, with the file name it is committed under in
/// `config/crd/bases/` (the names Flux uses).
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    Vec::new()
}
