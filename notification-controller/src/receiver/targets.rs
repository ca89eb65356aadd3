//! Asking the targets of an accepted webhook to reconcile: each object named by
//! `spec.resources` (an exact name, or `*` with `matchLabels`) that passes the
//! `resourceFilter` gets `reconcile.fluxcd.io/requestedAt` set by a merge patch.
//!
//! An exact name without a filter costs one PATCH and nothing else; the kinds' API resources
//! are discovered once per process and cached.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use futures::future::join_all;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{GroupVersionKind, PartialObjectMeta};
use kube::discovery::{ApiResource, Scope};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use toolkit_sdk::api::meta::RECONCILE_REQUEST_ANNOTATION;
use toolkit_sdk::cel::Expression;

use crate::api::v1::{CrossNamespaceObjectReference, Receiver};

/// The name that selects every object of a kind matching `matchLabels`.
pub const WILDCARD: &str = "*";

/// What could not be done for one entry of `spec.resources`. The message names the target and
/// never holds secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TargetError(pub String);

/// Patches targets with the controller's client, caching API resource discovery.
pub struct Annotator {
    client: Client,
    field_manager: String,
    no_cross_namespace_refs: bool,
    resources: Mutex<HashMap<GroupVersionKind, (ApiResource, Scope)>>,
}

impl std::fmt::Debug for Annotator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Annotator")
            .field("field_manager", &self.field_manager)
            .field("no_cross_namespace_refs", &self.no_cross_namespace_refs)
            .finish_non_exhaustive()
    }
}

/// One object that the webhook asks to reconcile.
struct Target<'a> {
    api: Api<DynamicObject>,
    api_version: &'a str,
    kind: &'a str,
}

impl Annotator {
    /// An annotator writing as `field_manager`; with `no_cross_namespace_refs`, targets in
    /// another namespace than the Receiver's are refused (Flux's `--no-cross-namespace-refs`).
    pub fn new(client: Client, field_manager: String, no_cross_namespace_refs: bool) -> Self {
        Self {
            client,
            field_manager,
            no_cross_namespace_refs,
            resources: Mutex::new(HashMap::new()),
        }
    }

    /// Sets `reconcile.fluxcd.io/requestedAt: <now>` on every target of `receiver` that
    /// passes `filter` (evaluated with `res` = the target's metadata and `req` = `request`).
    /// Every entry of `spec.resources` is tried; returns how many objects were annotated and
    /// the errors.
    pub async fn request_reconcile(
        &self,
        receiver: &Receiver,
        filter: Option<&Expression>,
        request: &Value,
        now: &str,
    ) -> (usize, Vec<TargetError>) {
        let namespace = receiver.namespace().unwrap_or_default();
        let results = join_all(
            receiver
                .spec
                .resources
                .iter()
                .map(|r| self.one_entry(r, &namespace, filter, request, now)),
        )
        .await;
        let mut annotated = 0;
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok(n) => annotated += n,
                Err(e) => errors.push(e),
            }
        }
        (annotated, errors)
    }

    async fn one_entry(
        &self,
        reference: &CrossNamespaceObjectReference,
        receiver_namespace: &str,
        filter: Option<&Expression>,
        request: &Value,
        now: &str,
    ) -> Result<usize, TargetError> {
        let kind = reference.kind.as_str();
        let namespace = reference.namespace_or(receiver_namespace);
        let all_namespaces = namespace == WILDCARD;
        if all_namespaces && reference.name != WILDCARD {
            return Err(TargetError(format!(
                "{kind} '{}': namespace '*' requires name '*'",
                reference.name
            )));
        }
        if self.no_cross_namespace_refs && namespace != receiver_namespace {
            return Err(TargetError(format!(
                "{kind} '{namespace}/{}': cross-namespace references are not allowed",
                reference.name
            )));
        }
        let api_version = reference.api_version_or_default().ok_or_else(|| {
            TargetError(format!("apiVersion must be specified for kind '{kind}'"))
        })?;
        let (resource, scope) = self.resource(api_version, kind).await?;
        let api = match (scope, all_namespaces) {
            (Scope::Cluster, _) | (_, true) => Api::all_with(self.client.clone(), &resource),
            (Scope::Namespaced, false) => {
                Api::namespaced_with(self.client.clone(), namespace, &resource)
            }
        };
        let target = Target {
            api,
            api_version,
            kind,
        };

        if reference.name == WILDCARD {
            let labels = reference.match_labels.as_ref().ok_or_else(|| {
                TargetError(format!(
                    "{kind} '*' in '{namespace}': matchLabels field not set when using wildcard '*' as name"
                ))
            })?;
            return self
                .by_labels(&target, namespace, labels, filter, request, now)
                .await;
        }

        let name = reference.name.as_str();
        if let Some(filter) = filter {
            let meta = target.api.get_metadata(name).await.map_err(|e| {
                TargetError(format!("unable to read {kind} '{namespace}/{name}': {e}"))
            })?;
            if !self.passes(&target, &meta, filter, request)? {
                return Ok(0);
            }
        }
        self.patch(&target, namespace, name, now).await?;
        Ok(1)
    }

    async fn by_labels(
        &self,
        target: &Target<'_>,
        namespace: &str,
        labels: &BTreeMap<String, String>,
        filter: Option<&Expression>,
        request: &Value,
        now: &str,
    ) -> Result<usize, TargetError> {
        let kind = target.kind;
        let selector = labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let list = target
            .api
            .list_metadata(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| {
                TargetError(format!(
                    "failed listing {kind} in namespace '{namespace}' with labels '{selector}': {e}"
                ))
            })?;
        if list.items.is_empty() {
            tracing::warn!(
                kind,
                namespace,
                selector,
                "no resources found with matching labels"
            );
            return Ok(0);
        }
        let mut annotated = 0;
        for meta in &list.items {
            if let Some(filter) = filter
                && !self.passes(target, meta, filter, request)?
            {
                continue;
            }
            let ns = meta.namespace().unwrap_or_default();
            let api = if ns.is_empty() {
                target.api.clone()
            } else {
                // The list may span namespaces; patch each object in its own.
                Api::namespaced_with(
                    self.client.clone(),
                    &ns,
                    &self.resource(target.api_version, kind).await?.0,
                )
            };
            let one = Target {
                api,
                api_version: target.api_version,
                kind,
            };
            self.patch(&one, &ns, &meta.name_any(), now).await?;
            annotated += 1;
        }
        Ok(annotated)
    }

    /// Evaluates the filter for one object.
    fn passes(
        &self,
        target: &Target<'_>,
        meta: &PartialObjectMeta<DynamicObject>,
        filter: &Expression,
        request: &Value,
    ) -> Result<bool, TargetError> {
        let res = json!({
            "apiVersion": target.api_version,
            "kind": target.kind,
            "metadata": meta.metadata,
        });
        let accept = filter
            .evaluate_bool(&[("res", &res), ("req", request)])
            .map_err(|e| {
                TargetError(format!(
                    "{} '{}': resourceFilter failed: {e}",
                    target.kind,
                    meta.name_any()
                ))
            })?;
        if !accept {
            tracing::debug!(
                kind = target.kind,
                name = %meta.name_any(),
                "resource not annotated: the resourceFilter returned false"
            );
        }
        Ok(accept)
    }

    async fn patch(
        &self,
        target: &Target<'_>,
        namespace: &str,
        name: &str,
        now: &str,
    ) -> Result<(), TargetError> {
        let patch = json!({"metadata": {"annotations": {RECONCILE_REQUEST_ANNOTATION: now}}});
        let params = PatchParams {
            field_manager: Some(self.field_manager.clone()),
            ..PatchParams::default()
        };
        target
            .api
            .patch_metadata(name, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| {
                TargetError(format!(
                    "unable to annotate {} '{namespace}/{name}': {e}",
                    target.kind
                ))
            })?;
        tracing::info!(kind = target.kind, namespace, name, "resource annotated");
        Ok(())
    }

    /// The API resource of `kind` in `api_version`, discovered once.
    async fn resource(
        &self,
        api_version: &str,
        kind: &str,
    ) -> Result<(ApiResource, Scope), TargetError> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        if let Some(found) = self
            .resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&gvk)
        {
            return Ok(found.clone());
        }
        let (resource, caps) = kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .map_err(|e| {
                TargetError(format!(
                    "cannot find kind '{kind}' in API version '{api_version}': {e}"
                ))
            })?;
        let found = (resource, caps.scope);
        self.resources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gvk, found.clone());
        Ok(found)
    }
}
