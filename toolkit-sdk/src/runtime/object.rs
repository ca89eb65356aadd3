//! What the runtime needs to know about a reconciled kind and its status.

use std::fmt::Debug;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A kind reconciled by the runtime: a namespaced custom resource with the Flux conventions
/// (`spec.suspend`, `spec.interval`, optional `spec.retryInterval`, and a [`FluxStatus`]).
///
/// Implement it next to the `#[derive(CustomResource)]` type; every method is a field read.
pub trait FluxObject:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The status type (the `#[kube(status = ...)]` of the custom resource).
    type Status: FluxStatus;

    /// `spec.suspend`: while true the runtime does no work on the object and leaves its status
    /// as it is.
    fn suspended(&self) -> bool;

    /// `spec.interval`: how often the object is reconciled after a success.
    fn interval(&self) -> Duration;

    /// `spec.retryInterval`, for kinds that have one: the delay after a transient failure,
    /// instead of the exponential backoff.
    fn retry_interval(&self) -> Option<Duration> {
        None
    }

    /// The current status, if the object has one yet.
    fn status(&self) -> Option<&Self::Status>;
}

/// The status fields the runtime owns. The reconciler owns everything else in the status.
///
/// The runtime writes the whole status in one server-side apply, so the type must serialize
/// every field it wants to keep (fields left out are removed from the object). `None` fields
/// may serialize as `null`; the runtime drops nulls before applying.
pub trait FluxStatus:
    Default + Clone + Debug + PartialEq + Serialize + Send + Sync + 'static
{
    /// `status.conditions`.
    fn conditions(&self) -> &[Condition];

    /// `status.conditions`, for the runtime and the reconciler to update.
    fn conditions_mut(&mut self) -> &mut Vec<Condition>;

    /// `status.observedGeneration` (Flux's default for a never-reconciled object is -1).
    fn observed_generation(&self) -> i64;

    /// Sets `status.observedGeneration`.
    fn set_observed_generation(&mut self, generation: i64);

    /// `status.lastHandledReconcileAt`: the last `reconcile.fluxcd.io/requestedAt` value handled.
    fn last_handled_reconcile_at(&self) -> Option<&str>;

    /// Sets `status.lastHandledReconcileAt`.
    fn set_last_handled_reconcile_at(&mut self, value: String);
}
