//! Ferroflux source-controller: turns Git repositories and OCI artifacts into reproducible
//! `.tar.gz` artifacts, served over plain HTTP, with their revision and digest in `status.artifact`.
//!
//! - [`api`]: the `source.toolkit.fluxcd.io/v1` kinds, light enough for other crates to use.
//! - [`storage`]: the artifact store: reproducible archives, atomic writes, garbage collection, and
//!   the HTTP file server.

pub mod api;
pub mod storage;
