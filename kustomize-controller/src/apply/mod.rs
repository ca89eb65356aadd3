//! Server-side apply of a Kustomization's objects (being written).

pub mod discovery;

pub use discovery::{ApiCache, DiscoveryError, ResolvedKind};
