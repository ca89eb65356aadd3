//! The in-memory index of Receivers by `status.webhookPath`, fed by a watch, so a request
//! finds its Receiver without a call to the API server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Client, ResourceExt};

use crate::api::v1::Receiver;

/// Namespace and name of a Receiver.
type Key = (String, String);

#[derive(Debug, Default)]
struct Maps {
    by_path: HashMap<String, Arc<Receiver>>,
    path_of: HashMap<Key, String>,
}

impl Maps {
    fn remove(&mut self, key: &Key) {
        if let Some(path) = self.path_of.remove(key) {
            // Another Receiver may have taken the path since; remove only our own entry.
            if self.by_path.get(&path).is_some_and(|r| key_of(r) == *key) {
                self.by_path.remove(&path);
            }
        }
    }

    fn apply(&mut self, receiver: Receiver) {
        let key = key_of(&receiver);
        self.remove(&key);
        if let Some(path) = receiver.webhook_path().map(str::to_owned) {
            self.path_of.insert(key, path.clone());
            self.by_path.insert(path, Arc::new(receiver));
        }
    }
}

fn key_of(receiver: &Receiver) -> Key {
    (
        receiver.namespace().unwrap_or_default(),
        receiver.name_any(),
    )
}

/// Receivers by webhook path; cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub struct ReceiverIndex {
    maps: Arc<RwLock<Maps>>,
    synced: Arc<AtomicBool>,
}

impl ReceiverIndex {
    /// The Receiver whose `status.webhookPath` is `path`.
    pub fn get(&self, path: &str) -> Option<Arc<Receiver>> {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        maps.by_path.get(path).cloned()
    }

    /// Whether the first list of Receivers has been loaded.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Number of Receivers with a webhook path.
    pub fn len(&self) -> usize {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        maps.by_path.len()
    }

    /// Whether no Receiver has a webhook path.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Applies one watch event.
    fn handle(&self, event: Event<Receiver>, pending: &mut Option<Maps>) {
        match event {
            Event::Init => *pending = Some(Maps::default()),
            Event::InitApply(receiver) => pending.get_or_insert_with(Maps::default).apply(receiver),
            Event::InitDone => {
                let fresh = pending.take().unwrap_or_default();
                *self.maps.write().unwrap_or_else(|e| e.into_inner()) = fresh;
                self.synced.store(true, Ordering::Release);
            }
            Event::Apply(receiver) => self
                .maps
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .apply(receiver),
            Event::Delete(receiver) => self
                .maps
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key_of(&receiver)),
        }
    }

    /// Watches Receivers (in `namespace`, or all namespaces, with an optional label selector)
    /// and keeps the index current until the future is dropped. Watch errors are logged and
    /// retried with backoff.
    pub async fn run(self, client: Client, namespace: Option<String>, labels: Option<String>) {
        let api: Api<Receiver> = match namespace {
            Some(ns) => Api::namespaced(client, &ns),
            None => Api::all(client),
        };
        let mut config = watcher::Config::default();
        if let Some(selector) = labels.filter(|s| !s.is_empty()) {
            config = config.labels(&selector);
        }
        let mut pending = None;
        let mut stream = watcher::watcher(api, config).default_backoff().boxed();
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => self.handle(event, &mut pending),
                Err(error) => tracing::warn!(%error, "watch of Receivers failed; retrying"),
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn receiver(ns: &str, name: &str, path: Option<&str>) -> Receiver {
        let mut value = json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"type": "generic", "resources": [], "secretRef": {"name": "t"}}
        });
        if let Some(path) = path {
            value["status"] = json!({"webhookPath": path});
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn follows_the_watch() {
        let index = ReceiverIndex::default();
        let mut pending = None;
        assert!(!index.is_synced());
        index.handle(Event::Init, &mut pending);
        index.handle(
            Event::InitApply(receiver("a", "r1", Some("/hook/1"))),
            &mut pending,
        );
        index.handle(Event::InitApply(receiver("a", "r2", None)), &mut pending);
        assert!(
            index.get("/hook/1").is_none(),
            "visible only once the list is done"
        );
        index.handle(Event::InitDone, &mut pending);
        assert!(index.is_synced());
        assert_eq!(index.get("/hook/1").unwrap().name_any(), "r1");
        assert_eq!(index.len(), 1);

        // The path changes with the token: the old one is gone.
        index.handle(
            Event::Apply(receiver("a", "r1", Some("/hook/2"))),
            &mut pending,
        );
        assert!(index.get("/hook/1").is_none());
        assert!(index.get("/hook/2").is_some());

        // A failed reconcile clears the path.
        index.handle(Event::Apply(receiver("a", "r1", None)), &mut pending);
        assert!(index.is_empty());

        index.handle(
            Event::Apply(receiver("b", "r3", Some("/hook/3"))),
            &mut pending,
        );
        index.handle(
            Event::Delete(receiver("b", "r3", Some("/hook/3"))),
            &mut pending,
        );
        assert!(index.get("/hook/3").is_none());

        // A relist replaces everything.
        index.handle(
            Event::Apply(receiver("b", "r4", Some("/hook/4"))),
            &mut pending,
        );
        index.handle(Event::Init, &mut pending);
        index.handle(
            Event::InitApply(receiver("c", "r5", Some("/hook/5"))),
            &mut pending,
        );
        index.handle(Event::InitDone, &mut pending);
        assert!(index.get("/hook/4").is_none());
        assert!(index.get("/hook/5").is_some());
    }
}
