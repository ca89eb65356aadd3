//! Sources, read generically: any kind that publishes a `status.artifact` (GitRepository,
//! OCIRepository, Bucket, ExternalArtifact, or a third-party kind) is read as a
//! [`DynamicObject`], so a Kustomization never needs to know the source's Rust type.
//!
//! Also the "new revision" signal: [`SourceWatcher`] watches GitRepositories and
//! OCIRepositories and, when a source publishes a new revision, asks for a reconcile of every
//! Kustomization that references it (at once, not at the next interval) and interrupts the
//! health checks of those still waiting on an older revision (see [`Revisions`]).
//! The reconcile is requested on a stream the runtime's controller takes
//! (`Manager::with_controller_requested_by`), as Flux enqueues internally: nothing is written to
//! the Kustomization, and only the replica holding the Lease acts on it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::channel::mpsc::UnboundedSender;
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use toolkit_sdk::api::Artifact;
use toolkit_sdk::conditions;

use super::artifacts::ArtifactCache;
use crate::api::v1::{CrossNamespaceSourceReference, Kustomization};
use crate::apply::{ApiCache, DiscoveryError};
use crate::object_ref::{ObjectRef, split_api_version};
use toolkit_sdk::artifact_fetch::ArtifactFetcher;

/// The artifact metadata key holding the revision a source was built from (OCI artifacts
/// pushed by `flux push artifact`), reported as `lastAppliedOriginRevision`.
pub const ORIGIN_REVISION_KEY: &str = "org.opencontainers.image.revision";

/// The source kinds watched for new revisions, with their resource names.
pub const WATCHED_SOURCE_KINDS: [(&str, &str); 2] = [
    ("GitRepository", "gitrepositories"),
    ("OCIRepository", "ocirepositories"),
];

/// A source, as the Kustomization needs it.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where it is.
    pub key: SourceKey,
    /// Its latest artifact, if it has published one.
    pub artifact: Option<Artifact>,
}

impl Source {
    /// The origin revision of the artifact (its `org.opencontainers.image.revision` metadata).
    pub fn origin_revision(&self) -> Option<&str> {
        self.artifact
            .as_ref()?
            .metadata
            .as_ref()?
            .get(ORIGIN_REVISION_KEY)
            .map(String::as_str)
            .filter(|r| !r.is_empty())
    }
}

/// Group, kind, namespace and name of a source: what the Kustomizations are indexed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    /// API group (`source.toolkit.fluxcd.io`).
    pub group: String,
    /// Kind (`GitRepository`).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl SourceKey {
    /// The source `reference` of a Kustomization in `namespace`.
    pub fn of(reference: &CrossNamespaceSourceReference, namespace: &str) -> Self {
        let (group, _) = split_api_version(reference.api_version());
        Self {
            group: group.to_owned(),
            kind: reference.kind.clone(),
            namespace: reference.namespace_or(namespace).to_owned(),
            name: reference.name.clone(),
        }
    }

    /// The source a Kustomization points at.
    pub fn of_kustomization(ks: &Kustomization) -> Self {
        Self::of(&ks.spec.source_ref, &ks.namespace().unwrap_or_default())
    }
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The kind is not served by the API server.
    #[error("source kind {kind} ({api_version}) is not served by the API server")]
    UnknownKind {
        /// The kind.
        kind: String,
        /// The API version asked for.
        api_version: String,
        /// Discovery's answer.
        #[source]
        source: DiscoveryError,
    },
    /// The source does not exist.
    #[error("Source '{reference}' not found")]
    NotFound {
        /// `Kind/namespace/name`.
        reference: String,
    },
    /// The API server refused or failed the read.
    #[error("unable to get source '{reference}'")]
    Api {
        /// `Kind/namespace/name`.
        reference: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// `status.artifact` is not an artifact.
    #[error("source '{reference}' has an invalid status.artifact")]
    InvalidArtifact {
        /// `Kind/namespace/name`.
        reference: String,
        /// What did not parse.
        #[source]
        source: serde_json::Error,
    },
}

/// Reads the source `reference` of a Kustomization in `namespace`.
///
/// # Errors
/// See [`SourceError`].
pub async fn get_source(
    client: &Client,
    cache: &ApiCache,
    reference: &CrossNamespaceSourceReference,
    namespace: &str,
) -> Result<Source, SourceError> {
    let key = SourceKey::of(reference, namespace);
    let (group, version) = split_api_version(reference.api_version());
    let target = ObjectRef {
        group: group.to_owned(),
        version: version.to_owned(),
        kind: reference.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
    };
    let shown = format!("{}/{}/{}", key.kind, key.namespace, key.name);
    let resolved =
        cache
            .resolve(client, &target)
            .await
            .map_err(|source| SourceError::UnknownKind {
                kind: reference.kind.clone(),
                api_version: reference.api_version().to_owned(),
                source,
            })?;
    let api = resolved.api(client, &target);
    let object = match api.get_opt(&key.name).await {
        Ok(Some(object)) => object,
        Ok(None) => return Err(SourceError::NotFound { reference: shown }),
        Err(source) => {
            return Err(SourceError::Api {
                reference: shown,
                source,
            });
        }
    };
    let artifact = artifact_of(&object).map_err(|source| SourceError::InvalidArtifact {
        reference: shown,
        source,
    })?;
    Ok(Source { key, artifact })
}

/// The `status.artifact` of any object, `None` when it has none.
///
/// # Errors
/// A `status.artifact` that is not an artifact.
pub fn artifact_of(object: &DynamicObject) -> Result<Option<Artifact>, serde_json::Error> {
    match object.data.get("status").and_then(|s| s.get("artifact")) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone()).map(Some),
    }
}

/// The latest revision of every watched source, with subscribers: a health check waiting on
/// revision R of a source is interrupted once the source publishes another one.
#[derive(Debug, Clone, Default)]
pub struct Revisions {
    inner: Arc<Mutex<HashMap<SourceKey, watch::Sender<Option<String>>>>>,
}

impl Revisions {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn sender(&self, key: &SourceKey) -> watch::Sender<Option<String>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.clone())
            .or_insert_with(|| watch::channel(None).0)
            .clone()
    }

    /// Records the latest revision of `key`; returns the previous one.
    pub fn publish(&self, key: &SourceKey, revision: Option<String>) -> Option<String> {
        let sender = self.sender(key);
        let mut previous = None;
        sender.send_if_modified(|current| {
            previous = current.clone();
            if *current == revision {
                false
            } else {
                *current = revision;
                true
            }
        });
        previous
    }

    /// A token cancelled as soon as `key` publishes a revision other than `revision` (not
    /// before `parent` is cancelled or dropped; the watch task ends with `parent`).
    pub fn cancel_on_new_revision(
        &self,
        key: &SourceKey,
        revision: &str,
        parent: &CancellationToken,
    ) -> CancellationToken {
        let token = parent.child_token();
        let mut rx = self.sender(key).subscribe();
        let revision = revision.to_owned();
        let cancel = token.clone();
        tokio::spawn(async move {
            let newer = rx.wait_for(|latest| latest.as_deref().is_some_and(|r| r != revision));
            tokio::select! {
                result = newer => {
                    if result.is_ok() {
                        cancel.cancel();
                    }
                }
                () = cancel.cancelled() => {}
            }
        });
        token
    }
}

/// Watches the sources and the Kustomizations, and asks for a reconcile of every Kustomization
/// whose source published a new revision, and of every Kustomization whose dependency became
/// ready (so a chain of `dependsOn` converges without waiting `--requeue-dependency` at each
/// step).
#[derive(Clone)]
pub struct SourceWatcher {
    client: Client,
    revisions: Revisions,
    namespace: Option<String>,
    label_selector: String,
    requests: UnboundedSender<reflector::ObjectRef<Kustomization>>,
    artifacts: Option<ArtifactAccess>,
}

/// What the watcher needs to compare two revisions of a source (see
/// [`SourceWatcher::with_artifacts`]).
#[derive(Clone, Debug)]
pub struct ArtifactAccess {
    /// The trees the builds use.
    pub cache: Arc<ArtifactCache>,
    /// How to fetch a tree that is not there yet.
    pub fetcher: ArtifactFetcher,
    /// `SOURCE_CONTROLLER_LOCALHOST`: the host artifacts are fetched from instead of theirs.
    pub source_localhost: Option<String>,
}

impl std::fmt::Debug for SourceWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceWatcher")
            .field("namespace", &self.namespace)
            .field("label_selector", &self.label_selector)
            .finish_non_exhaustive()
    }
}

impl SourceWatcher {
    /// A watcher using `client`. `namespace` limits the Kustomizations watched (as
    /// `--watch-all-namespaces=false` does); `label_selector` is `--watch-label-selector`.
    /// Reconciles are asked for on `requests`, the stream the runtime's Kustomization
    /// controller takes (`Manager::with_controller_requested_by`): nothing is written to the
    /// Kustomizations, and only the leader acts on them.
    pub fn new(
        client: Client,
        revisions: Revisions,
        namespace: Option<String>,
        label_selector: String,
        requests: UnboundedSender<reflector::ObjectRef<Kustomization>>,
    ) -> Self {
        Self {
            client,
            revisions,
            namespace,
            label_selector,
            requests,
            artifacts: None,
        }
    }

    /// On a new revision, queue first the Kustomizations whose `path` holds changed files
    /// (the previous and the new artifact are compared; both are usually in the cache the
    /// builds share): a commit to one app of a thousand is applied first, not after the
    /// others are found unchanged.
    pub fn with_artifacts(mut self, access: ArtifactAccess) -> Self {
        self.artifacts = Some(access);
        self
    }

    /// Runs until `stop` is cancelled.
    pub async fn run(self, stop: CancellationToken) {
        let api: Api<Kustomization> = match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        };
        let mut config = watcher::Config::default();
        if !self.label_selector.is_empty() {
            config = config.labels(&self.label_selector);
        }
        let (store, writer) = reflector::store();
        let kustomizations = watcher(api, config)
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .boxed();
        let this = Arc::new(self);
        let mut tasks = tokio::task::JoinSet::new();
        for (kind, plural) in WATCHED_SOURCE_KINDS {
            tasks.spawn(
                this.clone()
                    .watch_sources(kind, plural, store.clone(), stop.clone()),
            );
        }
        tasks.spawn(
            this.clone()
                .watch_dependencies(kustomizations, store, stop.clone()),
        );
        while tasks.join_next().await.is_some() {}
    }

    async fn watch_sources(
        self: Arc<Self>,
        kind: &'static str,
        plural: &'static str,
        store: Store<Kustomization>,
        stop: CancellationToken,
    ) {
        let group = toolkit_sdk::api::groups::SOURCE;
        let resource = ApiResource {
            group: group.to_owned(),
            version: "v1".to_owned(),
            api_version: format!("{group}/v1"),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
        };
        let api: Api<DynamicObject> = match &self.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        // Until the CRD exists, list attempts fail; check quietly instead of logging a
        // watch error every few seconds.
        loop {
            match api
                .list_metadata(&kube::api::ListParams::default().limit(1))
                .await
            {
                Ok(_) => break,
                Err(err) => {
                    tracing::debug!(%kind, error = %err, "source kind not served yet");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(Duration::from_secs(30)) => {}
                    }
                }
            }
        }
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .applied_objects()
            .boxed();
        // Sources seen before the first list completed are not "new": they only seed the map.
        let mut seeded: HashMap<SourceKey, ()> = HashMap::new();
        // The last artifact of each source, to compare with the next one.
        let mut artifacts: HashMap<SourceKey, Artifact> = HashMap::new();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = stream.next() => next,
            };
            let object = match next {
                Some(Ok(object)) => object,
                Some(Err(err)) => {
                    tracing::warn!(%kind, error = &err as &dyn std::error::Error, "source watch error; retrying");
                    continue;
                }
                None => return,
            };
            let key = SourceKey {
                group: group.to_owned(),
                kind: kind.to_owned(),
                namespace: object.namespace().unwrap_or_default(),
                name: object.name_any(),
            };
            let artifact = artifact_of(&object).ok().flatten();
            let previous_artifact = match &artifact {
                Some(artifact) => artifacts.insert(key.clone(), artifact.clone()),
                None => artifacts.remove(&key),
            };
            let revision = artifact.as_ref().map(|artifact| artifact.revision.clone());
            let first_sight = seeded.insert(key.clone(), ()).is_none();
            let previous = self.revisions.publish(&key, revision.clone());
            let Some(revision) = revision else { continue };
            if first_sight || previous.as_deref() == Some(revision.as_str()) {
                continue;
            }
            let targets: Vec<Arc<Kustomization>> = store
                .state()
                .into_iter()
                .filter(|ks| SourceKey::of_kustomization(ks) == key)
                .filter(|ks| {
                    ks.status
                        .as_ref()
                        .and_then(|s| s.last_applied_revision.as_deref())
                        != Some(revision.as_str())
                })
                .collect();
            if targets.is_empty() {
                continue;
            }
            tracing::info!(
                source = %format!("{kind}/{}/{}", key.namespace, key.name),
                %revision,
                kustomizations = targets.len(),
                "new source revision; requesting reconciles"
            );
            let (first, rest) = match (&self.artifacts, previous_artifact, artifact) {
                (Some(access), Some(old), Some(new)) => {
                    split_changed(access, &old, &new, targets).await
                }
                _ => (targets, Vec::new()),
            };
            self.request_all(&first);
            if !rest.is_empty() {
                // The runtime's queue does not keep the order of requests made at the same
                // instant: give the changed ones a head start.
                let this = self.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(UNCHANGED_DELAY).await;
                    this.request_all(&rest);
                });
            }
        }
    }

    async fn watch_dependencies(
        self: Arc<Self>,
        mut kustomizations: futures::stream::BoxStream<
            'static,
            Result<Kustomization, watcher::Error>,
        >,
        store: Store<Kustomization>,
        stop: CancellationToken,
    ) {
        // The last (ready, applied revision) of each Kustomization seen.
        let mut seen: HashMap<(String, String), (bool, Option<String>)> = HashMap::new();
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return,
                next = kustomizations.next() => next,
            };
            let ks = match next {
                Some(Ok(ks)) => ks,
                Some(Err(err)) => {
                    tracing::warn!(
                        error = &err as &dyn std::error::Error,
                        "Kustomization watch error; retrying"
                    );
                    continue;
                }
                None => return,
            };
            let id = (ks.namespace().unwrap_or_default(), ks.name_any());
            let state = ks.status.as_ref().map_or((false, None), |s| {
                (
                    conditions::is_ready(&s.conditions),
                    s.last_applied_revision.clone(),
                )
            });
            let before = seen.insert(id.clone(), state.clone());
            let became_ready = state.0 && before.as_ref() != Some(&state);
            if !became_ready || before.is_none() {
                continue;
            }
            // Dependents still waiting on this one.
            let waiting: Vec<Arc<Kustomization>> = store
                .state()
                .into_iter()
                .filter(|dep| {
                    let ns = dep.namespace().unwrap_or_default();
                    dep.spec
                        .depends_on
                        .iter()
                        .any(|d| d.name == id.1 && d.namespace_or(&ns) == id.0)
                })
                .filter(|dep| {
                    dep.status.as_ref().is_some_and(|s| {
                        conditions::reason(&s.conditions, conditions::types::READY)
                            == Some(conditions::reasons::DEPENDENCY_NOT_READY)
                    })
                })
                .collect();
            if !waiting.is_empty() {
                tracing::info!(
                    dependency = %format!("{}/{}", id.0, id.1),
                    dependents = waiting.len(),
                    "dependency is ready; requesting reconciles of its dependents"
                );
                self.request_all(&waiting);
            }
        }
    }

    fn request_all(&self, targets: &[Arc<Kustomization>]) {
        for ks in targets {
            // Fails only once the controller stopped.
            let _ = self
                .requests
                .unbounded_send(reflector::ObjectRef::from_obj(ks.as_ref()));
        }
    }
}

/// How long the Kustomizations whose path did not change wait behind those whose path did.
const UNCHANGED_DELAY: Duration = Duration::from_millis(250);

/// `targets` split into those whose `spec.path` changed between `old` and `new` and the others
/// (order kept); all in the first part when either artifact cannot be fetched.
async fn split_changed(
    access: &ArtifactAccess,
    old: &Artifact,
    new: &Artifact,
    targets: Vec<Arc<Kustomization>>,
) -> (Vec<Arc<Kustomization>>, Vec<Arc<Kustomization>>) {
    let located = |artifact: &Artifact| {
        let mut artifact = artifact.clone();
        if let Some(host) = &access.source_localhost {
            artifact.url = super::kustomization::with_host(&artifact.url, host);
        }
        artifact
    };
    let (old, new) = (located(old), located(new));
    let (old_tree, new_tree) = match futures::join!(
        access.cache.get(&access.fetcher, &old),
        access.cache.get(&access.fetcher, &new),
    ) {
        (Ok(old), Ok(new)) => (old, new),
        (Err(err), _) | (_, Err(err)) => {
            tracing::debug!(error = %err, "cannot compare revisions; queueing every Kustomization at once");
            return (targets, Vec::new());
        }
    };
    let split = tokio::task::spawn_blocking(move || {
        targets.into_iter().partition::<Vec<_>, _>(|ks| {
            super::artifacts::path_changed(old_tree.path(), new_tree.path(), ks.spec.path())
        })
    })
    .await
    .unwrap_or_default();
    tracing::info!(
        changed = split.0.len(),
        unchanged = split.1.len(),
        "Kustomizations whose path changed are queued first"
    );
    split
}

/// Metadata of an event about `revision` (and the origin revision, when known).
pub fn revision_metadata(revision: &str, origin: Option<&str>) -> BTreeMap<String, String> {
    let mut metadata = BTreeMap::new();
    metadata.insert("revision".to_owned(), revision.to_owned());
    if let Some(origin) = origin {
        metadata.insert("originRevision".to_owned(), origin.to_owned());
    }
    metadata
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> SourceKey {
        SourceKey {
            group: "source.toolkit.fluxcd.io".into(),
            kind: "GitRepository".into(),
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn source_keys_default_group_and_namespace() {
        let reference: CrossNamespaceSourceReference =
            serde_json::from_value(json!({"kind": "GitRepository", "name": "a"})).unwrap();
        assert_eq!(SourceKey::of(&reference, "ns"), key("a"));
    }

    #[test]
    fn artifacts_are_read_from_any_kind() {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Thing",
            "metadata": {"name": "a", "namespace": "ns"},
            "status": {"artifact": {
                "path": "p", "url": "http://x/p.tar.gz", "revision": "main@sha1:abc",
                "digest": "sha256:00", "lastUpdateTime": "2024-01-01T00:00:00Z",
                "metadata": {"org.opencontainers.image.revision": "v1@sha1:abc"}
            }}
        }))
        .unwrap();
        let artifact = artifact_of(&object).unwrap().unwrap();
        assert_eq!(artifact.revision, "main@sha1:abc");
        let source = Source {
            key: key("a"),
            artifact: Some(artifact),
        };
        assert_eq!(source.origin_revision(), Some("v1@sha1:abc"));
        let bare: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "a"}
        }))
        .unwrap();
        assert!(artifact_of(&bare).unwrap().is_none());
    }

    #[tokio::test]
    async fn a_new_revision_cancels_the_wait_on_the_old_one() {
        let revisions = Revisions::new();
        let parent = CancellationToken::new();
        assert_eq!(revisions.publish(&key("a"), Some("r1".into())), None);
        let token = revisions.cancel_on_new_revision(&key("a"), "r1", &parent);
        // Same revision again, or another source: no cancel.
        revisions.publish(&key("a"), Some("r1".into()));
        revisions.publish(&key("b"), Some("r9".into()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!token.is_cancelled());
        assert_eq!(
            revisions.publish(&key("a"), Some("r2".into())),
            Some("r1".into())
        );
        tokio::time::timeout(Duration::from_secs(5), token.cancelled())
            .await
            .unwrap();
        // A wait that starts after the new revision is cancelled at once.
        let late = revisions.cancel_on_new_revision(&key("a"), "r1", &parent);
        tokio::time::timeout(Duration::from_secs(5), late.cancelled())
            .await
            .unwrap();
        let current = revisions.cancel_on_new_revision(&key("a"), "r2", &parent);
        parent.cancel();
        assert!(current.is_cancelled());
    }
}
