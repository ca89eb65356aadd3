//! The Flux v2.9 API vocabulary every Ferroflux kind shares.
//!
//! These types match the shapes of Flux's generic `meta` API (field names, optionality,
//! validation), so that a Ferroflux CRD embedding them serialises exactly like its Flux
//! counterpart:
//!
//! - [`Artifact`]: what a source publishes in `status.artifact`;
//! - object references: [`LocalObjectReference`], [`NamespacedObjectReference`],
//!   [`NamespacedObjectKindReference`], [`SecretKeyReference`], [`KubeConfigReference`],
//!   [`DependencyReference`], [`ValuesReference`];
//! - [`ReconcileRequestStatus`]: `status.lastHandledReconcileAt`, flattened into each status;
//! - [`GoDuration`]: `spec.interval`, `spec.timeout` and friends, in Go's duration syntax;
//! - [`meta`]: the finalizer, annotations and labels Flux users and tools rely on;
//! - [`groups`]: the API group names of the toolkit.
//!
//! All structs serialise in camelCase, leave out unset optional fields, and derive
//! `schemars::JsonSchema` for CRD generation.

mod artifact;
pub mod crd;
mod duration;
pub mod groups;
pub mod meta;
mod references;
mod status;

pub use artifact::{Artifact, DIGEST_PATTERN};
pub use duration::{GoDuration, INTERVAL_PATTERN, ParseDurationError};
pub use references::{
    DependencyReference, KubeConfigReference, LocalObjectReference, NamespacedObjectKindReference,
    NamespacedObjectReference, SecretKeyReference, ValuesReference, ValuesReferenceKind,
};
pub use status::ReconcileRequestStatus;
