//! Ferroflux kustomize-controller: a `Kustomization` turns the artifact of a source into objects
//! applied to the cluster, kept there, and pruned when they leave the source.
//!
//! - [`api`]: the `kustomize.toolkit.fluxcd.io/v1` kind.
//! - [`object_ref`]: how an applied object is named in `status.inventory`.
//! - [`substitute`]: `postBuild` variable substitution.
//! - [`decrypt`]: SOPS decryption with age keys.
//! - [`apply`]: server-side apply in stages, dry-run comparison, prune.
//! - [`health`]: kstatus health of applied objects and waiting for it.
//! - [`controller`]: the reconciler and the process.

pub mod api;
pub mod apply;
pub mod controller;
pub mod decrypt;
pub mod health;
pub mod object_ref;
pub mod substitute;
