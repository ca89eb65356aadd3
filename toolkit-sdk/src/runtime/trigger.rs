//! Which watch events start a reconcile.
//!
//! A reconcile starts at once when an object is first seen, when its spec changes (a new
//! `metadata.generation`), when someone asks for one with the `reconcile.fluxcd.io/requestedAt`
//! annotation, or when it is marked for deletion. Every other update, in particular the
//! controller's own status writes and metadata edits such as adding the finalizer, is ignored:
//! this is what keeps a controller from reconciling in a loop after writing its status.

use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use kube::Resource;

use crate::api::meta::RECONCILE_REQUEST_ANNOTATION;

/// The part of an object that decides whether a watch event should trigger a reconcile.
///
/// Two versions of an object with equal keys do not need a second reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TriggerKey {
    /// `metadata.generation` (bumped by the API server on every spec change).
    pub generation: Option<i64>,
    /// The value of the `reconcile.fluxcd.io/requestedAt` annotation.
    pub requested_at: Option<String>,
    /// Whether `metadata.deletionTimestamp` is set.
    pub deleting: bool,
}

impl TriggerKey {
    /// The trigger key of `obj`.
    pub fn of<K: Resource>(obj: &K) -> Self {
        let meta = obj.meta();
        Self {
            generation: meta.generation,
            requested_at: meta
                .annotations
                .as_ref()
                .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION))
                .cloned(),
            deleting: meta.deletion_timestamp.is_some(),
        }
    }
}

/// A [`kube::runtime::Predicate`] over [`TriggerKey`]: the hash changes exactly when a reconcile
/// is needed.
pub fn trigger_hash<K: Resource>(obj: &K) -> Option<u64> {
    let mut hasher = DefaultHasher::new();
    TriggerKey::of(obj).hash(&mut hasher);
    Some(hasher.finish())
}

/// Remembers the [`TriggerKey`] of every object seen, and admits an object only when its key
/// changed (or it is new).
///
/// Objects are told apart by namespace, name and uid, so an object deleted and created again
/// under the same name is new.
#[derive(Debug, Default)]
pub struct TriggerFilter {
    seen: HashMap<(String, String, String), u64>,
}

impl TriggerFilter {
    /// An empty filter: every object is new.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `obj` needs a reconcile; records it as seen.
    pub fn admit<K: Resource>(&mut self, obj: &K) -> bool {
        let hash = trigger_hash(obj).unwrap_or_default();
        self.seen.insert(identity(obj), hash) != Some(hash)
    }

    /// Forgets `obj` (after it was deleted).
    pub fn forget<K: Resource>(&mut self, obj: &K) {
        self.seen.remove(&identity(obj));
    }

    /// Keeps only the objects in `current` (after a relist: the objects that still exist), so
    /// the filter does not grow with objects deleted while the watch was down.
    pub fn retain<'a, K: Resource + 'a>(&mut self, current: impl IntoIterator<Item = &'a K>) {
        let current: std::collections::HashSet<_> = current.into_iter().map(identity).collect();
        self.seen.retain(|key, _| current.contains(key));
    }

    /// How many objects are remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no object is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

fn identity<K: Resource>(obj: &K) -> (String, String, String) {
    let meta = obj.meta();
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
        meta.uid.clone().unwrap_or_default(),
    )
}

/// The value of the `reconcile.fluxcd.io/requestedAt` annotation, if any.
pub fn requested_at<K: Resource>(obj: &K) -> Option<&str> {
    obj.meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION))
        .map(String::as_str)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

    fn object(generation: i64) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some("a".into()),
                namespace: Some("ns".into()),
                generation: Some(generation),
                resource_version: Some("1".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn status_and_metadata_only_updates_do_not_trigger() {
        let before = object(3);
        let mut after = before.clone();
        after.metadata.resource_version = Some("2".into());
        after.metadata.finalizers = Some(vec!["finalizers.fluxcd.io".into()]);
        after.metadata.labels = Some([("team".to_owned(), "a".to_owned())].into());
        after
            .metadata
            .annotations
            .get_or_insert_default()
            .insert("unrelated".into(), "x".into());
        after.data = Some([("k".to_owned(), "v".to_owned())].into());
        assert_eq!(trigger_hash(&before), trigger_hash(&after));
    }

    #[test]
    fn generation_change_triggers() {
        assert_ne!(trigger_hash(&object(3)), trigger_hash(&object(4)));
    }

    #[test]
    fn requested_at_change_triggers() {
        let before = object(3);
        let mut first = before.clone();
        first.metadata.annotations.get_or_insert_default().insert(
            RECONCILE_REQUEST_ANNOTATION.into(),
            "2024-01-01T00:00:00Z".into(),
        );
        let mut second = first.clone();
        second.metadata.annotations.get_or_insert_default().insert(
            RECONCILE_REQUEST_ANNOTATION.into(),
            "2024-01-01T00:00:01Z".into(),
        );
        assert_ne!(trigger_hash(&before), trigger_hash(&first));
        assert_ne!(trigger_hash(&first), trigger_hash(&second));
        assert_eq!(requested_at(&second), Some("2024-01-01T00:00:01Z"));
        assert_eq!(requested_at(&before), None);
    }

    #[test]
    fn filter_admits_new_and_changed_objects_only() {
        let mut filter = TriggerFilter::new();
        let first = object(1);
        assert!(filter.admit(&first), "a new object is admitted");
        let mut status_only = first.clone();
        status_only.metadata.resource_version = Some("9".into());
        assert!(!filter.admit(&status_only), "a status-only update is not");
        assert!(filter.admit(&object(2)), "a new generation is");
        assert!(!filter.admit(&object(2)));

        // Same name, new uid: a different object.
        let mut recreated = object(2);
        recreated.metadata.uid = Some("other".into());
        assert!(filter.admit(&recreated));
        assert_eq!(filter.len(), 2);

        filter.forget(&recreated);
        assert!(filter.admit(&recreated), "forgotten objects are new again");

        let mut other = object(1);
        other.metadata.name = Some("b".into());
        filter.admit(&other);
        filter.retain([&other]);
        assert_eq!(filter.len(), 1);
        assert!(!filter.admit(&other));
        assert!(filter.admit(&object(2)));
    }

    #[test]
    fn deletion_triggers() {
        let before = object(3);
        let mut after = before.clone();
        after.metadata.deletion_timestamp = Some(Time(jiff::Timestamp::UNIX_EPOCH));
        assert_ne!(trigger_hash(&before), trigger_hash(&after));
    }
}
