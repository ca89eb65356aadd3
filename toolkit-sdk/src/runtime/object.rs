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

/// Implements [`FluxStatus`] for a status struct with the usual Flux field names:
/// `conditions: Vec<Condition>`, `observed_generation: i64` and
/// `last_handled_reconcile_at: Option<String>`.
///
/// ```
/// use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
///
/// #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
/// struct WidgetStatus {
///     observed_generation: i64,
///     conditions: Vec<Condition>,
///     last_handled_reconcile_at: Option<String>,
/// }
/// toolkit_sdk::impl_flux_status!(WidgetStatus);
/// ```
#[macro_export]
macro_rules! impl_flux_status {
    ($status:ty) => {
        impl $crate::runtime::FluxStatus for $status {
            fn conditions(&self) -> &[::k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition] {
                &self.conditions
            }

            fn conditions_mut(
                &mut self,
            ) -> &mut ::std::vec::Vec<::k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>
            {
                &mut self.conditions
            }

            fn observed_generation(&self) -> i64 {
                self.observed_generation
            }

            fn set_observed_generation(&mut self, generation: i64) {
                self.observed_generation = generation;
            }

            fn last_handled_reconcile_at(&self) -> ::std::option::Option<&str> {
                self.last_handled_reconcile_at.as_deref()
            }

            fn set_last_handled_reconcile_at(&mut self, value: ::std::string::String) {
                self.last_handled_reconcile_at = ::std::option::Option::Some(value);
            }
        }
    };
}
