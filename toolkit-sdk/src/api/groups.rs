//! API group names of the toolkit kinds, as Flux v2.9 spells them.
//!
//! Event metadata keys are prefixed with the group of the object they describe
//! (`kustomize.toolkit.fluxcd.io/revision`), and labels and annotations owned by a controller
//! live under its group.

/// Group of GitRepository, OCIRepository, HelmRepository, HelmChart and Bucket (`v1`).
pub const SOURCE: &str = "source.toolkit.fluxcd.io";

/// Group of Kustomization (`v1`).
pub const KUSTOMIZE: &str = "kustomize.toolkit.fluxcd.io";

/// Group of HelmRelease (`v2`).
pub const HELM: &str = "helm.toolkit.fluxcd.io";

/// Group of Provider and Alert (`v1beta3`) and Receiver (`v1`).
pub const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";

/// Group of ImageRepository, ImagePolicy and ImageUpdateAutomation (`v1`).
pub const IMAGE: &str = "image.toolkit.fluxcd.io";

/// Every toolkit group, in the order of the table in the design contract.
pub const ALL: [&str; 5] = [SOURCE, KUSTOMIZE, HELM, NOTIFICATION, IMAGE];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_distinct_subdomains_of_the_toolkit() {
        for (i, g) in ALL.iter().enumerate() {
            assert!(g.ends_with(".toolkit.fluxcd.io"), "{g}");
            assert!(!ALL[i + 1..].contains(g), "{g} listed twice");
        }
    }
}
