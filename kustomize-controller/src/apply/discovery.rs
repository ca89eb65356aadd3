//! Which REST resource serves a kind: the discovery answers, cached and shared by every
//! Kustomization of the process, so a thousand Kustomizations do not each ask the API server
//! the same question.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::api::{Api, ApiResource, DynamicObject};
use kube::core::GroupVersionKind;
use kube::discovery::{Scope, pinned_kind};

use crate::object_ref::ObjectRef;

/// A kind the API server does not serve (yet), or a discovery request that failed.
#[derive(Debug, thiserror::Error)]
#[error("no API resource serves {api_version} {kind}")]
pub struct DiscoveryError {
    /// `apiVersion` asked for.
    pub api_version: String,
    /// Kind asked for.
    pub kind: String,
    /// What the API server answered.
    #[source]
    pub source: kube::Error,
}

/// The REST resource of a kind and whether its objects live in namespaces.
#[derive(Clone, Debug)]
pub struct ResolvedKind {
    /// Group, version, plural: what an [`Api`] needs.
    pub resource: ApiResource,
    /// `true` for namespaced kinds.
    pub namespaced: bool,
}

impl ResolvedKind {
    /// An [`Api`] for the object `object` (namespaced or cluster-wide as the kind requires).
    pub fn api(&self, client: &kube::Client, object: &ObjectRef) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client.clone(), &object.namespace, &self.resource)
        } else {
            Api::all_with(client.clone(), &self.resource)
        }
    }
}

/// Resolved kinds by (group, version, kind).
type KindMap = HashMap<(String, String, String), ResolvedKind>;

/// Discovery results by group, version and kind. Cloning shares the cache.
#[derive(Clone, Debug, Default)]
pub struct ApiCache {
    kinds: Arc<RwLock<KindMap>>,
}

impl ApiCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// The resource serving the kind of `object`, asked of the API server on first use.
    ///
    /// A kind that is not served is not cached, so a CRD applied later is found then.
    pub async fn resolve(
        &self,
        client: &kube::Client,
        object: &ObjectRef,
    ) -> Result<ResolvedKind, DiscoveryError> {
        let key = (
            object.group.clone(),
            object.version.clone(),
            object.kind.clone(),
        );
        if let Some(found) = self.read().get(&key) {
            return Ok(found.clone());
        }
        let gvk = GroupVersionKind::gvk(&object.group, &object.version, &object.kind);
        let (resource, capabilities) =
            pinned_kind(client, &gvk)
                .await
                .map_err(|source| DiscoveryError {
                    api_version: object.api_version(),
                    kind: object.kind.clone(),
                    source,
                })?;
        let resolved = ResolvedKind {
            resource,
            namespaced: matches!(capabilities.scope, Scope::Namespaced),
        };
        self.kinds
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, resolved.clone());
        Ok(resolved)
    }

    /// Forgets every answer, e.g. after CRDs changed their served versions.
    pub fn invalidate(&self) {
        self.kinds
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, KindMap> {
        self.kinds
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
