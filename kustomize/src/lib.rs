//! `ferroflux-kustomize`: a native kustomize engine.
//!
//! [`build()`] turns a kustomization directory into the list of objects `kubectl kustomize` prints,
//! in the same order. The binary `ferroflux-kustomize build DIR` prints them as a YAML stream.

pub mod build;
pub mod error;
pub mod generators;
pub mod kustomization;
pub mod loader;
pub mod patch;
pub mod replacements;
pub mod resource;
pub mod transform;

pub use build::{BuildOptions, build, to_yaml};
pub use error::Error;
pub use kustomization::Kustomization;
pub use loader::LoadRestrictions;
pub use resource::{ResId, Resource};
