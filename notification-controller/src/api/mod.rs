//! notification.toolkit.fluxcd.io (v1beta3 and v1) (being written).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// Every CustomResourceDefinition of this crate, with the file name it is committed under in
/// `config/crd/bases/` (the names Flux uses).
pub fn crds() -> Vec<(&'static str, CustomResourceDefinition)> {
    Vec::new()
}
