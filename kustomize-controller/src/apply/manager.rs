//! [`ResourceManager`]: staged server-side apply with dry-run drift detection, and prune.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use futures::{StreamExt, stream};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, Preconditions,
    PropagationPolicy,
};
use serde_json::Value;
use tracing::debug;

use super::changeset::{Action, Change, ChangeSet};
use super::discovery::{ApiCache, DiscoveryError, ResolvedKind};
use super::error::{ApplyError, Failure};
use super::ignore;
use super::options::{ApplyOptions, DeleteOptions, ManagerOptions, Propagation};
use super::policy::{self, Stage};
use crate::object_ref::ObjectRef;

/// How many requests a manager has in flight at most, by default.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// From how many objects of one kind in one namespace the live objects are listed (one
/// request) instead of read one by one.
const LIST_THRESHOLD: usize = 4;

/// Live objects read ahead by list, by group, kind, namespace and name.
type Prefetched = HashMap<(String, String, String, String), Value>;

/// How often a wait (CRD established, recreated object gone) looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// Applies and prunes the objects of one Kustomization. Cheap to build: one per reconcile.
#[derive(Clone)]
pub struct ResourceManager {
    client: kube::Client,
    cache: ApiCache,
    options: ManagerOptions,
    concurrency: usize,
}

impl std::fmt::Debug for ResourceManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResourceManager")
            .field("options", &self.options)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// An object to apply, its reference, and the version of the object given.
struct Desired {
    object: Value,
    reference: ObjectRef,
}

/// A server-side apply to make after every dry-run of the stage passed.
struct Write {
    desired: Desired,
    api: Api<DynamicObject>,
    action: Action,
    /// The live object was deleted for an immutable change: it must be written back even
    /// when another object of the stage failed.
    recreated: bool,
}

/// The decision about one object after its dry-run.
enum Plan {
    Done(Change),
    Write(Box<Write>),
}

impl ResourceManager {
    /// A manager writing through `client`, resolving kinds through `cache`.
    pub fn new(client: kube::Client, cache: ApiCache, options: ManagerOptions) -> Self {
        Self {
            client,
            cache,
            options,
            concurrency: DEFAULT_CONCURRENCY,
        }
    }

    /// At most `limit` requests in flight (at least one); [`DEFAULT_CONCURRENCY`] otherwise.
    pub fn with_concurrency(mut self, limit: usize) -> Self {
        self.concurrency = limit.max(1);
        self
    }

    /// The options this manager was built with.
    pub fn options(&self) -> &ManagerOptions {
        &self.options
    }

    /// Applies in stages: first cluster definitions (CustomResourceDefinitions, Namespaces,
    /// ClusterRoles), waiting until applied CRDs are established and served (bounded by
    /// `options.crd_wait_timeout`), then kinds named `*Class`, then everything else.
    ///
    /// Every object gets the owner labels first. Per object: read the live object, honour
    /// `kustomize.toolkit.fluxcd.io/ssa` (`Ignore`, `IfNotPresent`) and `.../reconcile:
    /// disabled`, run a server-side apply dry-run (force, our field manager) and compare it
    /// with the live object; objects that would not change are reported
    /// [`Action::Unchanged`] and not written. Unless `ssa: Merge`, fields of the
    /// `takeover_managers` are taken over first (a JSON patch of `metadata.managedFields`, and
    /// kubectl's last-applied annotation removed), so fields they added that left the source
    /// are removed by the apply.
    ///
    /// # Errors
    /// An object that is not a Kubernetes object, an unknown kind, a refused dry-run (an
    /// immutable change without force is an error that [`ApplyError::is_immutable`]), or a
    /// failed write. A stage stops the apply when any of its objects fails: every failed
    /// object of that stage is named (one line each). When a dry-run fails, no object of the
    /// stage is applied (take-over patches already sent stay); when a write fails, the kinds
    /// ranked before it in the stage are applied and the rest are not.
    ///
    /// # Caveats
    /// A recreate (immutable change with force) deletes the object during the dry-run phase;
    /// it is created again even when another object of its stage fails.
    pub async fn apply_all(
        &self,
        objects: Vec<Value>,
        options: &ApplyOptions,
    ) -> Result<ChangeSet, ApplyError> {
        let mut stages: [Vec<Desired>; 3] = Default::default();
        let mut invalid = Vec::new();
        for (index, mut object) in objects.into_iter().enumerate() {
            match validate(&object) {
                Ok(reference) => {
                    policy::set_owner_labels(&mut object, &self.options.owner);
                    let slot = match policy::stage_of(&reference) {
                        Stage::Definitions => 0,
                        Stage::Classes => 1,
                        Stage::Resources => 2,
                    };
                    stages[slot].push(Desired { object, reference });
                }
                Err(problem) => invalid.push(ApplyError::InvalidObject {
                    position: index + 1,
                    problem,
                }),
            }
        }
        if let Some(error) = ApplyError::from_many(invalid) {
            return Err(error);
        }

        let mut changes = ChangeSet::default();
        for (slot, mut objects) in stages.into_iter().enumerate() {
            if objects.is_empty() {
                continue;
            }
            objects.sort_by(|a, b| policy::apply_order(&a.reference, &b.reference));
            let entries = self.apply_stage(objects, options).await?;
            if slot == 0 {
                self.wait_for_definitions(&entries, options.crd_wait_timeout)
                    .await?;
            }
            changes.entries.extend(entries);
        }
        Ok(changes)
    }

    /// Deletes the given objects (prune), dependents first (the reverse of the apply order):
    /// objects annotated (or labelled) `kustomize.toolkit.fluxcd.io/prune: disabled` or
    /// `.../reconcile: disabled`, and those without our owner labels (claimed by another
    /// Kustomization or not ours), are [`Action::Skipped`]. Missing objects, and objects of
    /// kinds the API server no longer serves, count as [`Action::Deleted`].
    ///
    /// Delete requests carry the live object's UID as a precondition, so an object recreated
    /// in between is not deleted. The call returns once the requests are accepted; it does not
    /// wait for finalizers.
    ///
    /// # Errors
    /// Every object whose lookup or delete failed, one line each; the others are still
    /// deleted.
    pub async fn delete_all(
        &self,
        objects: &[ObjectRef],
        options: &DeleteOptions,
    ) -> Result<ChangeSet, ApplyError> {
        let mut sorted: Vec<&ObjectRef> = objects.iter().collect();
        sorted.sort_by(|a, b| delete_order(a, b));
        let mut entries = Vec::with_capacity(sorted.len());
        let mut errors = Vec::new();
        let same_group = |a: &&ObjectRef, b: &&ObjectRef| {
            policy::stage_of(a) == policy::stage_of(b)
                && policy::kind_rank(&a.kind) == policy::kind_rank(&b.kind)
        };
        for run in sorted.chunk_by(same_group) {
            let work: Vec<_> = run.iter().map(|o| self.delete_one(o, options)).collect();
            let results = self.bounded(work).await;
            for result in results {
                match result {
                    Ok(change) => entries.push(change),
                    Err(error) => errors.push(error),
                }
            }
        }
        match ApplyError::from_many(errors) {
            Some(error) => Err(error),
            None => Ok(ChangeSet { entries }),
        }
    }

    /// Runs `work` with at most `concurrency` futures in flight; results in input order.
    ///
    /// The futures are built before the stream (not by a closure inside it), so the returned
    /// future is provably `Send` for every lifetime.
    async fn bounded<F: Future>(&self, work: Vec<F>) -> Vec<F::Output> {
        stream::iter(work)
            .buffered(self.concurrency)
            .collect()
            .await
    }

    /// Dry-runs every object of a stage, then writes the ones that change, kind rank by kind
    /// rank.
    async fn apply_stage(
        &self,
        objects: Vec<Desired>,
        options: &ApplyOptions,
    ) -> Result<Vec<Change>, ApplyError> {
        let prefetched = self.prefetch(&objects).await;
        let work: Vec<_> = objects
            .into_iter()
            .map(|d| self.plan(d, options, &prefetched))
            .collect();
        let plans = self.bounded(work).await;
        let mut entries: Vec<Option<Change>> = Vec::with_capacity(plans.len());
        let mut writes = Vec::new();
        let mut errors = Vec::new();
        for plan in plans {
            match plan {
                Ok(Plan::Done(change)) => entries.push(Some(change)),
                Ok(Plan::Write(write)) => {
                    writes.push((entries.len(), write));
                    entries.push(None);
                }
                Err(error) => errors.push(error),
            }
        }
        if !errors.is_empty() {
            // Objects deleted for a recreate are not left missing.
            for (_, write) in writes.iter().filter(|(_, w)| w.recreated) {
                if let Err(error) = self.write(write).await {
                    errors.push(error);
                }
            }
            return Err(
                ApplyError::from_many(errors).unwrap_or(ApplyError::Many { errors: Vec::new() })
            );
        }

        let same_rank = |a: &(usize, Box<Write>), b: &(usize, Box<Write>)| {
            policy::kind_rank(&a.1.desired.reference.kind)
                == policy::kind_rank(&b.1.desired.reference.kind)
        };
        for run in writes.chunk_by(same_rank) {
            let work: Vec<_> = run.iter().map(|(_, write)| self.write(write)).collect();
            let results = self.bounded(work).await;
            let mut errors = Vec::new();
            for ((index, _), result) in run.iter().zip(results) {
                match result {
                    Ok(change) => entries[*index] = Some(change),
                    Err(error) => errors.push(error),
                }
            }
            if let Some(error) = ApplyError::from_many(errors) {
                return Err(error);
            }
        }
        Ok(entries.into_iter().flatten().collect())
    }

    /// Reads, dry-runs and compares one object; takes over foreign fields; recreates it when
    /// an immutable change is forced.
    async fn plan(
        &self,
        mut desired: Desired,
        options: &ApplyOptions,
        prefetched: &Prefetched,
    ) -> Result<Plan, ApplyError> {
        let resolved = self.resolve(&desired.reference).await?;
        scope(&mut desired, &resolved)?;
        let api = resolved.api(&self.client, &desired.reference);
        let mut live = match prefetched.get(&key(&desired.reference)) {
            Some(live) => Some(live.clone()),
            None => get(&api, &desired.reference).await?,
        };

        let skip = policy::is_excluded(&desired.object, live.as_ref())
            || (live.is_some() && policy::is_if_not_present(&desired.object));
        if skip {
            return Ok(done(desired.reference, Action::Skipped));
        }
        if let Some(live) = &live {
            ignore::keep_live_values(&options.ignore, &mut desired.object, live);
        }

        let mut recreated = false;
        let dry_run = match self.dry_run(&api, &desired).await {
            Ok(result) => result,
            Err(failure) => {
                let immutable = live.is_some()
                    && policy::is_immutable_error(failure.code, &failure.reason, &failure.message);
                let forced =
                    options.force || policy::is_force_annotated(&desired.object, live.as_ref());
                if !(immutable && forced) {
                    return Err(dry_run_error(&desired.reference, failure, immutable));
                }
                debug!(object = %desired.reference, "immutable field changed, recreating");
                recreate(
                    &api,
                    &desired.reference,
                    live.as_ref(),
                    options.crd_wait_timeout,
                )
                .await?;
                live = None;
                recreated = true;
                self.dry_run(&api, &desired)
                    .await
                    .map_err(|failure| dry_run_error(&desired.reference, failure, false))?
            }
        };

        let Some(live) = live else {
            return Ok(Plan::Write(Box::new(Write {
                desired,
                api,
                action: Action::Created,
                recreated,
            })));
        };
        let mut patched = false;
        if !policy::is_merge(&desired.object, Some(&live))
            && let Some(patch) = policy::takeover_patch(
                &live,
                &self.options.field_manager,
                &self.options.takeover_managers,
            )
        {
            self.take_over(&api, &desired.reference, patch).await?;
            patched = true;
        }
        let drifted = policy::has_drifted(&live, &dry_run)
            && !matches_when_read_again(&api, &desired.reference.name, &live, &dry_run).await;
        if patched || drifted {
            Ok(Plan::Write(Box::new(Write {
                desired,
                api,
                action: Action::Configured,
                recreated: false,
            })))
        } else {
            Ok(done(desired.reference, Action::Unchanged))
        }
    }

    /// Lists the live objects that carry our owner labels, one request per kind and namespace
    /// with at least [`LIST_THRESHOLD`] objects, so a large Kustomization costs a few lists
    /// instead of one read per object. Objects not found this way (not labelled yet, or a
    /// failed list) are read one by one later.
    async fn prefetch(&self, objects: &[Desired]) -> Prefetched {
        let mut groups: BTreeMap<(&str, &str, &str, &str), Vec<&ObjectRef>> = BTreeMap::new();
        for desired in objects {
            let r = &desired.reference;
            groups
                .entry((&r.group, &r.version, &r.kind, &r.namespace))
                .or_default()
                .push(r);
        }
        let selector = format!(
            "{}={},{}={}",
            toolkit_sdk::api::meta::KUSTOMIZE_NAME_LABEL,
            self.options.owner.name,
            toolkit_sdk::api::meta::KUSTOMIZE_NAMESPACE_LABEL,
            self.options.owner.namespace
        );
        let lists: Vec<_> = groups
            .into_values()
            .filter(|members| members.len() >= LIST_THRESHOLD)
            .filter_map(|members| members.first().copied())
            .map(|sample| self.list_owned(sample, &selector))
            .collect();
        self.bounded(lists).await.into_iter().flatten().collect()
    }

    /// The live objects of `sample`'s kind and namespace that match `selector`; nothing when
    /// the kind is unknown or the list fails.
    async fn list_owned(
        &self,
        sample: &ObjectRef,
        selector: &str,
    ) -> Vec<((String, String, String, String), Value)> {
        let Ok(resolved) = self.cache.resolve(&self.client, sample).await else {
            return Vec::new();
        };
        if resolved.namespaced == sample.namespace.is_empty() {
            return Vec::new();
        }
        let api = resolved.api(&self.client, sample);
        let Ok(list) = api.list(&ListParams::default().labels(selector)).await else {
            return Vec::new();
        };
        list.items
            .into_iter()
            .filter_map(|item| {
                let name = item.metadata.name.clone()?;
                let namespace = item.metadata.namespace.clone().unwrap_or_default();
                let mut object = serde_json::to_value(item).ok()?;
                // A list leaves out the items' kind; a read has it.
                if let Some(map) = object.as_object_mut() {
                    map.insert("apiVersion".into(), sample.api_version().into());
                    map.insert("kind".into(), sample.kind.clone().into());
                }
                let id = (sample.group.clone(), sample.kind.clone(), namespace, name);
                Some((id, object))
            })
            .collect()
    }

    /// The server-side apply of one planned object.
    async fn write(&self, write: &Write) -> Result<Change, ApplyError> {
        let reference = &write.desired.reference;
        let params = PatchParams::apply(&self.options.field_manager).force();
        write
            .api
            .patch(
                &reference.name,
                &params,
                &Patch::Apply(&write.desired.object),
            )
            .await
            .map_err(|error| ApplyError::Apply {
                object: reference.clone().into(),
                detail: Failure::from(&error).message,
            })?;
        debug!(object = %reference, action = %write.action, "applied");
        Ok(Change {
            object: reference.clone(),
            action: write.action,
        })
    }

    async fn dry_run(&self, api: &Api<DynamicObject>, desired: &Desired) -> Result<Value, Failure> {
        let params = PatchParams::apply(&self.options.field_manager)
            .force()
            .dry_run();
        let result = api
            .patch(
                &desired.reference.name,
                &params,
                &Patch::Apply(&desired.object),
            )
            .await
            .map_err(|error| Failure::from(&error))?;
        serde_json::to_value(result).map_err(|error| Failure {
            message: format!("cannot read the dry-run result: {error}"),
            ..Failure::default()
        })
    }

    /// Sends the take-over patch (a JSON patch of metadata).
    async fn take_over(
        &self,
        api: &Api<DynamicObject>,
        reference: &ObjectRef,
        patch: Value,
    ) -> Result<(), ApplyError> {
        let cleanup_error = |detail: String| ApplyError::Cleanup {
            object: reference.clone().into(),
            detail,
        };
        let patch = serde_json::from_value(patch).map_err(|e| cleanup_error(e.to_string()))?;
        let params = PatchParams {
            field_manager: Some(self.options.field_manager.clone()),
            ..PatchParams::default()
        };
        api.patch(&reference.name, &params, &Patch::Json::<()>(patch))
            .await
            .map_err(|error| cleanup_error(Failure::from(&error).message))?;
        debug!(object = %reference, "took over fields of other managers");
        Ok(())
    }

    /// The resource serving the object's kind, with "no such kind" told apart from a failed
    /// request.
    async fn resolve(&self, reference: &ObjectRef) -> Result<ResolvedKind, ApplyError> {
        self.cache
            .resolve(&self.client, reference)
            .await
            .map_err(|error| {
                if is_unknown_kind(&error) {
                    ApplyError::UnknownKind {
                        object: reference.clone().into(),
                    }
                } else {
                    ApplyError::Discovery {
                        object: reference.clone().into(),
                        detail: Failure::from(&error.source).message,
                    }
                }
            })
    }

    /// Waits until every applied CRD of the first stage is established and its versions are
    /// served, refreshing the discovery cache when a CRD changed.
    async fn wait_for_definitions(
        &self,
        entries: &[Change],
        timeout: Duration,
    ) -> Result<(), ApplyError> {
        let crds: Vec<&Change> = entries
            .iter()
            .filter(|c| is_crd(&c.object) && c.action != Action::Skipped)
            .collect();
        if crds.is_empty() {
            return Ok(());
        }
        if crds.iter().any(|c| c.action.is_change()) {
            self.cache.invalidate();
        }
        let deadline = Instant::now() + timeout;
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        for change in crds {
            loop {
                let crd =
                    api.get_opt(&change.object.name)
                        .await
                        .map_err(|error| ApplyError::Query {
                            object: change.object.clone().into(),
                            detail: Failure::from(&error).message,
                        })?;
                if let Some(crd) = crd
                    && is_established(&crd)
                    && self.serves_all_versions(&crd).await
                {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(ApplyError::NotEstablished {
                        object: change.object.clone().into(),
                        timeout,
                    });
                }
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
        Ok(())
    }

    /// Whether discovery finds the kind of `crd` in every served version.
    async fn serves_all_versions(&self, crd: &CustomResourceDefinition) -> bool {
        for version in crd.spec.versions.iter().filter(|v| v.served) {
            let reference = ObjectRef {
                group: crd.spec.group.clone(),
                version: version.name.clone(),
                kind: crd.spec.names.kind.clone(),
                namespace: String::new(),
                name: String::new(),
            };
            if self.cache.resolve(&self.client, &reference).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Prunes one object.
    async fn delete_one(
        &self,
        object: &ObjectRef,
        options: &DeleteOptions,
    ) -> Result<Change, ApplyError> {
        let resolved = match self.cache.resolve(&self.client, object).await {
            Ok(resolved) => resolved,
            Err(error) if is_unknown_kind(&error) => {
                return Ok(done_change(object, Action::Deleted));
            }
            Err(error) => {
                return Err(ApplyError::Discovery {
                    object: object.clone().into(),
                    detail: Failure::from(&error.source).message,
                });
            }
        };
        if resolved.namespaced && object.namespace.is_empty() {
            return Err(ApplyError::NamespaceNotSpecified {
                object: object.clone().into(),
            });
        }
        let api = resolved.api(&self.client, object);
        let Some(live) = get(&api, object).await? else {
            return Ok(done_change(object, Action::Deleted));
        };
        if !policy::is_owned_by(&live, &self.options.owner) || policy::is_prune_excluded(&live) {
            debug!(object = %object, "kept: not ours or prune disabled");
            return Ok(done_change(object, Action::Skipped));
        }
        let params = DeleteParams {
            propagation_policy: Some(match options.propagation {
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            preconditions: uid_of(&live).map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&object.name, &params).await {
            Ok(_) => {}
            Err(error) => {
                let failure = Failure::from(&error);
                if !failure.is_not_found() {
                    return Err(ApplyError::Delete {
                        object: object.clone().into(),
                        detail: failure.message,
                    });
                }
            }
        }
        debug!(object = %object, "deleted");
        Ok(done_change(object, Action::Deleted))
    }
}

/// The reference of a desired object, or what it lacks.
fn validate(object: &Value) -> Result<ObjectRef, &'static str> {
    fn text(v: Option<&Value>) -> Option<&str> {
        v.and_then(Value::as_str).filter(|s| !s.is_empty())
    }
    if !object.is_object() {
        return Err("not a map");
    }
    if text(object.get("apiVersion")).is_none() {
        return Err("missing apiVersion");
    }
    if text(object.get("kind")).is_none() {
        return Err("missing kind");
    }
    if text(object.get("metadata").and_then(|m| m.get("name"))).is_none() {
        return Err("missing metadata.name");
    }
    ObjectRef::from_object(object).ok_or("malformed metadata")
}

/// Checks the namespace against the kind's scope: namespaced objects need one; cluster-scoped
/// objects lose one set by mistake (so their inventory id is right).
fn scope(desired: &mut Desired, resolved: &ResolvedKind) -> Result<(), ApplyError> {
    if resolved.namespaced {
        if desired.reference.namespace.is_empty() {
            return Err(ApplyError::NamespaceNotSpecified {
                object: desired.reference.clone().into(),
            });
        }
    } else if !desired.reference.namespace.is_empty() {
        desired.reference.namespace.clear();
        if let Some(metadata) = desired
            .object
            .get_mut("metadata")
            .and_then(Value::as_object_mut)
        {
            metadata.remove("namespace");
        }
    }
    Ok(())
}

/// The live object, `None` when it does not exist.
async fn get(api: &Api<DynamicObject>, reference: &ObjectRef) -> Result<Option<Value>, ApplyError> {
    let query_error = |detail: String| ApplyError::Query {
        object: reference.clone().into(),
        detail,
    };
    let live = api
        .get_opt(&reference.name)
        .await
        .map_err(|error| query_error(Failure::from(&error).message))?;
    live.map(serde_json::to_value)
        .transpose()
        .map_err(|error| query_error(error.to_string()))
}

/// Deletes the live object (background propagation, its UID as precondition) and waits until
/// it is gone.
async fn recreate(
    api: &Api<DynamicObject>,
    reference: &ObjectRef,
    live: Option<&Value>,
    timeout: Duration,
) -> Result<(), ApplyError> {
    let recreate_error = |detail: String| ApplyError::Recreate {
        object: reference.clone().into(),
        detail,
    };
    let uid = live.and_then(uid_of);
    let params = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: uid.clone().map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(error) = api.delete(&reference.name, &params).await {
        let failure = Failure::from(&error);
        if !failure.is_not_found() {
            return Err(recreate_error(failure.message));
        }
    }
    let deadline = Instant::now() + timeout;
    loop {
        let current = get(api, reference).await?;
        let gone = match (&current, &uid) {
            (None, _) => true,
            (Some(object), Some(uid)) => uid_of(object).as_deref() != Some(uid.as_str()),
            (Some(_), None) => false,
        };
        if gone {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(recreate_error(format!(
                "the object is still there after {}s (finalizers?)",
                timeout.as_secs()
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The key of an object in [`Prefetched`].
fn key(reference: &ObjectRef) -> (String, String, String, String) {
    (
        reference.group.clone(),
        reference.kind.clone(),
        reference.namespace.clone(),
        reference.name.clone(),
    )
}

/// Whether a difference between `live` and `dry_run` only comes from a write by someone else
/// between our read and the dry-run (kube-controller-manager annotating a new Deployment, say):
/// the dry-run ran on a newer version, and the object read again at that version matches it.
async fn matches_when_read_again(
    api: &Api<DynamicObject>,
    name: &str,
    live: &Value,
    dry_run: &Value,
) -> bool {
    let version = |o: &Value| {
        o.pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    if version(live) == version(dry_run) {
        return false;
    }
    match api.get(name).await.map(serde_json::to_value) {
        Ok(Ok(fresh)) => {
            version(&fresh) == version(dry_run) && !policy::has_drifted(&fresh, dry_run)
        }
        _ => false,
    }
}

fn dry_run_error(reference: &ObjectRef, failure: Failure, immutable: bool) -> ApplyError {
    ApplyError::DryRun {
        object: reference.clone().into(),
        reason: failure.reason,
        detail: failure.message,
        immutable,
    }
}

fn done(object: ObjectRef, action: Action) -> Plan {
    Plan::Done(Change { object, action })
}

fn done_change(object: &ObjectRef, action: Action) -> Change {
    Change {
        object: object.clone(),
        action,
    }
}

fn uid_of(object: &Value) -> Option<String> {
    object
        .get("metadata")?
        .get("uid")?
        .as_str()
        .map(str::to_owned)
}

fn is_crd(object: &ObjectRef) -> bool {
    object.group == "apiextensions.k8s.io" && object.kind == "CustomResourceDefinition"
}

fn is_established(crd: &CustomResourceDefinition) -> bool {
    crd.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        })
}

/// Whether discovery failed because the kind is not served (rather than the request failing).
fn is_unknown_kind(error: &DiscoveryError) -> bool {
    match &error.source {
        // An unknown group answers a plain-text 404, which kube turns into a Status without
        // the NotFound reason.
        kube::Error::Api(status) => status.code == 404 || status.is_not_found(),
        kube::Error::Discovery(_) => true,
        _ => false,
    }
}

/// Prune order: the reverse of the apply order (resources, then classes, then definitions;
/// webhooks first, namespaces and CRDs last).
fn delete_order(a: &ObjectRef, b: &ObjectRef) -> Ordering {
    policy::stage_of(b)
        .cmp(&policy::stage_of(a))
        .then_with(|| policy::apply_order(b, a))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reference(api_version: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef::from_object(
            &json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}),
        )
        .unwrap()
    }

    #[test]
    fn objects_without_identity_are_named_by_position_and_problem() {
        assert_eq!(validate(&json!("text")), Err("not a map"));
        assert_eq!(
            validate(&json!({"kind": "ConfigMap"})),
            Err("missing apiVersion")
        );
        assert_eq!(validate(&json!({"apiVersion": "v1"})), Err("missing kind"));
        assert_eq!(
            validate(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}})),
            Err("missing metadata.name")
        );
        assert!(
            validate(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}))
                .is_ok()
        );
    }

    #[test]
    fn prune_deletes_dependents_before_definitions() {
        let mut objects = [
            reference("v1", "Namespace", "apps"),
            reference(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "widgets.example.com",
            ),
            reference("apps/v1", "Deployment", "d"),
            reference("example.com/v1", "Widget", "w"),
            reference("v1", "ServiceAccount", "sa"),
        ];
        objects.sort_by(delete_order);
        let kinds: Vec<_> = objects.iter().map(|o| o.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "Widget",
                "Deployment",
                "ServiceAccount",
                "Namespace",
                "CustomResourceDefinition"
            ]
        );
    }
}

/// The futures of [`ResourceManager`] are `Send` even where the compiler has to prove it for
/// every lifetime (an `async fn` in a trait whose future must be `Send`, as a reconciler's).
#[cfg(test)]
#[allow(dead_code)]
mod send_check {
    use super::*;

    trait Job {
        fn run(
            &self,
            manager: &ResourceManager,
            refs: &[ObjectRef],
        ) -> impl Future<Output = ()> + Send;
    }

    struct Reconcile;

    impl Job for Reconcile {
        async fn run(&self, manager: &ResourceManager, refs: &[ObjectRef]) {
            let options = ApplyOptions::default();
            let _ = manager.apply_all(Vec::new(), &options).await;
            let _ = manager.delete_all(refs, &DeleteOptions::default()).await;
        }
    }
}
