//! Ferroflux source-controller: turns Git repositories and OCI artifacts into reproducible
//! `.tar.gz` artifacts, served over plain HTTP, with their revision and digest in `status.artifact`.
//!
//! - [`api`]: the `source.toolkit.fluxcd.io/v1` kinds, light enough for other crates to use.
//! - [`storage`]: the artifact store: reproducible archives, atomic writes, garbage collection, and
//!   the HTTP file server.

pub mod api;
pub mod controller;
/// The Git side of GitRepository: list refs, resolve `spec.ref`, check out a commit, verify signatures.
pub mod git;
/// The registry side of OCIRepository: resolve `spec.ref` to a digest, pull and unpack a layer.
pub mod oci;
pub mod storage;
