//! `ferroflux-kustomize build DIR`. TODO(KD)
fn main() {}
