//! What a [`ResourceManager`](super::ResourceManager) is configured with.

use std::time::Duration;

use super::IgnoreRule;

/// Field managers whose fields an apply takes over by default (Flux's list): `kubectl apply
/// --server-side` (`kubectl`), client-side `kubectl apply`/`edit`/`patch` (`kubectl-*`), and
/// `before-first-apply` (what the API server names fields set before the first server-side
/// apply). Names match as prefixes.
pub const DEFAULT_TAKEOVER_MANAGERS: &[&str] =
    &["kubectl", "before-first-apply", "kubectl-client-side-apply"];

/// The Kustomization that owns the applied objects: written into the owner labels
/// `kustomize.toolkit.fluxcd.io/name` and `kustomize.toolkit.fluxcd.io/namespace`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Name of the Kustomization.
    pub name: String,
    /// Namespace of the Kustomization.
    pub namespace: String,
}

/// How a [`ResourceManager`](super::ResourceManager) writes.
#[derive(Clone, Debug)]
pub struct ManagerOptions {
    /// The server-side apply field manager (`kustomize-controller`).
    pub field_manager: String,
    /// Whose owner labels applied objects get, and which objects prune may delete.
    pub owner: Owner,
    /// Field managers whose fields are taken over before an apply (prefix match, any
    /// operation, main resource only); see [`DEFAULT_TAKEOVER_MANAGERS`].
    pub takeover_managers: Vec<String>,
}

impl ManagerOptions {
    /// Options with [`DEFAULT_TAKEOVER_MANAGERS`].
    pub fn new(field_manager: impl Into<String>, owner: Owner) -> Self {
        Self {
            field_manager: field_manager.into(),
            owner,
            takeover_managers: DEFAULT_TAKEOVER_MANAGERS
                .iter()
                .map(|m| (*m).to_owned())
                .collect(),
        }
    }
}

/// Options of one [`apply_all`](super::ResourceManager::apply_all).
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// Delete and recreate objects whose change touches an immutable field (the
    /// Kustomization's `spec.force`). Objects annotated `kustomize.toolkit.fluxcd.io/force:
    /// enabled` are recreated whatever this says.
    pub force: bool,
    /// How long to wait for applied CustomResourceDefinitions to be established and served
    /// (and for a recreated object to be gone).
    pub crd_wait_timeout: Duration,
    /// `spec.driftIgnoreRules`: fields existing objects keep as they are live.
    pub ignore: Vec<IgnoreRule>,
}

impl Default for ApplyOptions {
    /// No force; one minute for CRDs; nothing ignored.
    fn default() -> Self {
        Self {
            force: false,
            crd_wait_timeout: Duration::from_secs(60),
            ignore: Vec::new(),
        }
    }
}

/// What happens to the dependents of a deleted object (Kubernetes' `propagationPolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Propagation {
    /// The object goes at once; the garbage collector deletes its dependents afterwards.
    #[default]
    Background,
    /// The object stays (with a deletion timestamp) until its dependents are gone.
    Foreground,
    /// The dependents are kept and lose their owner reference.
    Orphan,
}

/// Options of one [`delete_all`](super::ResourceManager::delete_all).
#[derive(Clone, Copy, Debug, Default)]
pub struct DeleteOptions {
    /// Propagation policy of every delete request.
    pub propagation: Propagation,
}
