//! Reconcile requests for the Receivers whose Secret changed, so a rotated token moves
//! `status.webhookPath` at once rather than at the Receiver's next interval.
//!
//! Two watches feed it: the Receivers (kept in a store, to look up who references a
//! Secret) and the Secrets' metadata only (their data never reaches this process). Secrets
//! seen while a watch (re)lists are not changes and request nothing; a change made while
//! a watch was down is picked up at the Receiver's interval, as before.

use futures::{Stream, StreamExt as _, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::core::PartialObjectMeta;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt as _};

use crate::api::v1::Receiver;
use crate::intake::api;

/// Requests a reconcile of every Receiver (among those `namespace` and `label_selector`
/// select) whose `spec.secretRef` names a Secret that was changed, created or deleted.
pub fn receivers_of_changed_secrets(
    client: Client,
    namespace: Option<String>,
    label_selector: Option<String>,
) -> impl Stream<Item = ObjectRef<Receiver>> + Send + 'static {
    let (store, writer) = reflector::store::<Receiver>();
    let mut receiver_config = watcher::Config::default();
    if let Some(selector) = label_selector {
        receiver_config = receiver_config.labels(&selector);
    }
    let receivers = watcher::watcher(
        api::<Receiver>(&client, namespace.as_deref()),
        receiver_config,
    )
    .default_backoff()
    .reflect(writer)
    .map(|_| Vec::new());
    let secrets = watcher::watcher(
        api::<PartialObjectMeta<Secret>>(&client, namespace.as_deref()),
        watcher::Config::default(),
    )
    .default_backoff()
    .map(move |event| match event {
        Ok(Event::Apply(secret) | Event::Delete(secret)) => referencing(
            &store,
            &secret.namespace().unwrap_or_default(),
            &secret.name_any(),
        ),
        Ok(_) => Vec::new(),
        Err(err) => {
            tracing::warn!(error = %err, "watching Secrets for Receivers failed; retrying");
            Vec::new()
        }
    });
    stream::select(receivers, secrets).flat_map(stream::iter)
}

/// The Receivers in `store` whose Secret is `namespace/name`.
fn referencing(store: &Store<Receiver>, namespace: &str, name: &str) -> Vec<ObjectRef<Receiver>> {
    store
        .state()
        .iter()
        .filter(|r| r.namespace().as_deref() == Some(namespace) && r.spec.secret_ref.name == name)
        .map(|r| ObjectRef::from_obj(r.as_ref()))
        .collect()
}
