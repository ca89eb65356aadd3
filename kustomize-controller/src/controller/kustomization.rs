//! The Kustomization reconciler: Flux's steps, reasons and messages.
//!
//! Each reconcile, in order, stopping at the first failure:
//!
//! 1. **Expressions.** `healthCheckExprs` must compile (else `Stalled`, `InvalidCELExpression`).
//! 2. **Source.** The `sourceRef` is read generically (any kind with `status.artifact`);
//!    a reference to another namespace is refused with `--no-cross-namespace-refs`
//!    (`AccessDenied`, stalled). No source or no artifact yet: `ArtifactFailed`, retried.
//! 3. **Dependencies.** Every `dependsOn` Kustomization must exist, be Ready for its current
//!    generation and, when it uses the same source, have applied the same revision; a
//!    `readyExpr` replaces that check (CEL, `self` = this Kustomization, `dep` = the
//!    dependency). Otherwise `DependencyNotReady`, checked again after
//!    `--requeue-dependency` (and at once when the dependency becomes ready).
//! 4. **Fetch.** The artifact is downloaded, verified against its digest and unpacked into a
//!    fresh temporary directory (`ArtifactFailed`); `spec.path` must exist inside it.
//! 5. **Build.** SOPS-encrypted files the kustomizations reference are decrypted, Flux's
//!    overlay is written ([`super::generate`]), the path is built with our kustomize engine,
//!    encrypted Secrets are decrypted, `postBuild` variables substituted, `commonMetadata`
//!    set (`BuildFailed`).
//! 6. **Apply.** Server-side apply in stages with field manager `kustomize-controller`, as the
//!    Kustomization's ServiceAccount or in the `kubeConfig` cluster when set
//!    (`ReconciliationFailed`). What changed is reported in one event.
//! 7. **Inventory and prune.** `status.inventory` becomes what was applied, *only now*, after
//!    a successful apply; with `prune: true`, objects of the previous inventory that are no
//!    longer in it are deleted (`PruneFailed`; they stay in the inventory to be retried).
//! 8. **Health.** With `wait`, every applied object, else the `healthChecks`, must become
//!    healthy within `timeout` (`HealthCheckFailed`; a Stalled object fails at once). A new
//!    revision of the source interrupts the wait (`HealthCheckCanceled`) and the new
//!    revision is reconciled right away.
//! 9. **Ready.** `lastAppliedRevision` and `lastAppliedOriginRevision` are set and
//!    `Ready=True` (`ReconciliationSucceeded`, `Applied revision: <revision>`).
//!
//! Every attempt that reached the build is recorded in `status.history`.
//!
//! On deletion, the inventory is deleted according to `deletionPolicy` (see
//! [`Reconciler::cleanup`] below).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;
use toolkit_sdk::artifact_fetch::ArtifactFetcher;
use toolkit_sdk::cel::Expression;
use toolkit_sdk::conditions::{self, Stamp, reasons, types};
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::events::EventSeverity;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use super::client::{Clients, Target};
use super::generate;
use super::source::{Revisions, Source, SourceKey, get_source, revision_metadata};
use super::{CONTROLLER_NAME, Settings};
use crate::api::v1::{
    Kustomization, KustomizationSpec, KustomizationStatus, PostBuild, ResourceInventory,
    SubstituteKind, upsert_history,
};
use crate::apply::{
    ApplyOptions, ChangeSet, DEFAULT_TAKEOVER_MANAGERS, DeleteOptions, IgnoreRule, ManagerOptions,
    Owner, ResourceManager,
};
use crate::decrypt::Decryptor;
use crate::health::{CustomHealthCheck, HealthChecker, HealthError};
use crate::object_ref::ObjectRef;

/// Reason of `Ready=False` when a reference is refused by the controller's access rules
/// (Flux's `acl.AccessDeniedReason`).
pub const ACCESS_DENIED_REASON: &str = "AccessDenied";

/// Reason of `Ready=False` when a new source revision interrupted the health checks.
pub const HEALTH_CHECK_CANCELED_REASON: &str = "HealthCheckCanceled";

/// Reason of the events emitted while a reconcile is in progress (Flux reports the `Ready`
/// reason of that moment, `Progressing`).
pub const PROGRESSING_REASON: &str = "Progressing";

/// What the reconciler shares between reconciles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub clients: Clients,
    pub fetcher: ArtifactFetcher,
    pub artifacts: Arc<super::artifacts::ArtifactCache>,
    pub revisions: Revisions,
    pub settings: Settings,
    pub stop: CancellationToken,
}

/// Reconciles Kustomizations; see the [module docs](self).
#[derive(Debug, Clone)]
pub struct KustomizationReconciler {
    shared: Arc<Shared>,
}

impl KustomizationReconciler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

/// Why the manifests could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Flux's overlay could not be written.
    #[error("failed to generate the kustomization")]
    Generate(#[source] generate::GenerateError),
    /// SOPS-encrypted files could not be decrypted before the build.
    #[error("error decrypting sources")]
    DecryptSources(#[source] Box<crate::decrypt::DecryptError>),
    /// The kustomize build failed.
    #[error("kustomize build failed")]
    Kustomize(#[source] ferroflux_kustomize::Error),
    /// A built object lacks its apiVersion, kind or name.
    #[error("failed to decode Kubernetes apiVersion, kind and name of an object from {origin}")]
    NotAnObject {
        /// The file the object came from.
        origin: String,
    },
    /// A built object could not be converted to JSON.
    #[error("object from {origin} is not valid JSON")]
    Json {
        /// The file the object came from.
        origin: String,
        /// The conversion error.
        #[source]
        source: serde_json::Error,
    },
    /// An object could not be decrypted.
    #[error("decryption failed for '{object}'")]
    DecryptObject {
        /// The object.
        object: String,
        /// Why.
        #[source]
        source: Box<crate::decrypt::DecryptError>,
    },
    /// A SOPS-encrypted Secret without `spec.decryption`.
    #[error(
        "{object} is SOPS encrypted, configuring decryption is required for this secret to be reconciled"
    )]
    Encrypted {
        /// The Secret.
        object: String,
    },
    /// Variable substitution failed.
    #[error("post build failed")]
    Substitute(#[source] crate::substitute::SubstituteError),
}

/// The inputs of a build, gathered before it runs on a blocking thread.
struct BuildInput {
    root: PathBuf,
    /// The tree is this reconcile's own copy (files may be changed before the build); when
    /// `false` it is shared and must not be written to.
    private: bool,
    dir: PathBuf,
    spec: KustomizationSpec,
    decryptor: Option<Decryptor>,
    vars: Option<BTreeMap<String, String>>,
    strict: bool,
}

/// The built objects and the digest of the manifests.
struct Built {
    objects: Vec<Value>,
    digest: String,
}

impl Reconciler for KustomizationReconciler {
    type Object = Kustomization;

    async fn reconcile(
        &self,
        obj: &Kustomization,
        status: &mut KustomizationStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        let started = Instant::now();
        let namespace = obj.namespace().unwrap_or_default();
        let spec = &obj.spec;
        let settings = &self.shared.settings;

        // 1. Expressions.
        let checks = custom_health_checks(spec);
        if let Err(err) = HealthChecker::new(
            self.shared.clients.own().clone(),
            self.shared.clients.cache().clone(),
            &checks,
        ) {
            return Err(ReconcileError::stalled(
                reasons::INVALID_CEL_EXPRESSION,
                "Reconciliation failed terminally due to configuration error",
            )
            .with_source(err));
        }
        let ignore = IgnoreRule::compile_all(&spec.drift_ignore_rules).map_err(|why| {
            ReconcileError::stalled(
                reasons::RECONCILIATION_FAILED,
                format!("Reconciliation failed terminally due to configuration error: {why}"),
            )
        })?;
        if spec.decryption.as_ref().is_some_and(|d| {
            d.service_account_name
                .as_deref()
                .is_some_and(|s| !s.is_empty())
        }) {
            return Err(ReconcileError::stalled(
                reasons::FEATURE_GATE_DISABLED,
                "spec.decryption.serviceAccountName (workload identity for KMS) is not supported; \
                 use spec.decryption.secretRef",
            ));
        }

        // 2. Source.
        let source = self.source(obj, &namespace).await?;
        let Some(artifact) = source.artifact.clone() else {
            return Err(ReconcileError::waiting(
                reasons::ARTIFACT_FAILED,
                format!(
                    "Source artifact not found, retrying in {}",
                    toolkit_sdk::api::GoDuration::from(settings.dependency_requeue)
                ),
            )
            .retry_after(settings.dependency_requeue));
        };
        let revision = artifact.revision.clone();
        let origin = source.origin_revision().map(str::to_owned);
        ctx.set_revision(&revision);

        // 3. Dependencies.
        if !spec.depends_on.is_empty() {
            self.check_dependencies(obj, &namespace, &source).await?;
            tracing::info!("all dependencies are ready, proceeding with reconciliation");
        }

        // 4. Fetch: into a tree shared with the other Kustomizations of the artifact, or into
        //    a private copy when SOPS sources are decrypted in place.
        let mut artifact = artifact;
        if let Some(host) = &settings.source_localhost {
            artifact.url = with_host(&artifact.url, host);
        }
        let private = spec.decryption.is_some();
        let (work, shared_tree, root) = if private {
            let work = tempfile::Builder::new()
                .prefix("kustomization-")
                .tempdir()
                .map_err(|e| {
                    ReconcileError::transient(
                        reasons::ARTIFACT_FAILED,
                        "cannot create a temporary directory",
                    )
                    .with_source(e)
                })?;
            let root = work.path().join("source");
            self.shared
                .fetcher
                .fetch_artifact(&artifact, &root)
                .await
                .map_err(ReconcileError::from)?;
            (Some(work), None, root)
        } else {
            let tree = self
                .shared
                .artifacts
                .get(&self.shared.fetcher, &artifact)
                .await
                .map_err(ReconcileError::from)?;
            let root = tree.path().to_path_buf();
            (None, Some(tree), root)
        };
        let dir = build_dir(&root, spec.path())?;
        status.last_attempted_revision = Some(revision.clone());

        // 5. Build.
        let history_meta = history_metadata(&revision, origin.as_deref());
        let target = self.target(obj, &namespace).await?;
        let decryptor = self.decryptor(obj, &namespace).await?;
        let vars = match &spec.post_build {
            Some(post_build) => Some(self.substitution_vars(&namespace, post_build).await?),
            None => None,
        };
        let input = BuildInput {
            root: root.clone(),
            private,
            dir,
            spec: spec.clone(),
            decryptor,
            vars,
            strict: settings.strict_substitutions,
        };
        let built = match tokio::task::spawn_blocking(move || build(input)).await {
            Ok(Ok(built)) => built,
            Ok(Err(err)) => {
                return Err(
                    ReconcileError::transient(reasons::BUILD_FAILED, err.to_string())
                        .with_source(err),
                );
            }
            Err(join) => {
                return Err(ReconcileError::transient(
                    reasons::BUILD_FAILED,
                    format!("kustomize build failed: {join}"),
                ));
            }
        };
        // The tree is not needed past the build.
        drop((work, shared_tree));

        // A new revision that builds exactly what was applied last (another app of the same
        // repository changed) is recorded without contacting the objects, so a commit to one
        // app of a thousand costs the others no API requests. Drift is still corrected on
        // every interval and requested reconcile, which always apply in full.
        if unchanged_build(obj, status, &revision, &built.digest) {
            tracing::debug!(digest = %built.digest, "new revision, same objects; nothing to apply");
            status.last_applied_revision = Some(revision.clone());
            status.last_applied_origin_revision = origin;
            upsert_history(
                &mut status.history,
                &built.digest,
                now(),
                started.elapsed(),
                reasons::RECONCILIATION_SUCCEEDED,
                history_meta,
            );
            return Ok(Outcome::ready(format!("Applied revision: {revision}"))
                .with_reason(reasons::RECONCILIATION_SUCCEEDED));
        }

        // 6. Apply.
        let to_apply = built.objects;
        let manager = ResourceManager::new(
            target.client.clone(),
            target.cache.clone(),
            ManagerOptions {
                field_manager: CONTROLLER_NAME.to_owned(),
                owner: Owner {
                    name: obj.name_any(),
                    namespace: namespace.clone(),
                },
                takeover_managers: takeover_managers(&settings.override_managers),
            },
        );
        let timeout = spec.timeout();
        let fail = |status: &mut KustomizationStatus, reason: &'static str, err: ReconcileError| {
            upsert_history(
                &mut status.history,
                &built.digest,
                now(),
                started.elapsed(),
                reason,
                history_meta.clone(),
            );
            err
        };
        let applied = if to_apply.is_empty() {
            ChangeSet {
                entries: Vec::new(),
            }
        } else {
            let options = ApplyOptions {
                force: spec.force,
                crd_wait_timeout: timeout,
                ignore,
            };
            match tokio::time::timeout(timeout, manager.apply_all(to_apply, &options)).await {
                Ok(Ok(changes)) => changes,
                Ok(Err(err)) => {
                    let error =
                        ReconcileError::transient(reasons::RECONCILIATION_FAILED, err.to_string())
                            .with_source(err);
                    return Err(fail(status, reasons::RECONCILIATION_FAILED, error));
                }
                Err(_) => {
                    let error = ReconcileError::transient(
                        reasons::RECONCILIATION_FAILED,
                        format!(
                            "apply did not finish within the timeout of {}",
                            toolkit_sdk::api::GoDuration::from(timeout)
                        ),
                    );
                    return Err(fail(status, reasons::RECONCILIATION_FAILED, error));
                }
            }
        };
        let drifted = applied.has_changes();
        if drifted {
            let summary = applied.summary();
            tracing::info!(changes = %summary, "server-side apply completed");
            self.event(
                ctx,
                obj,
                EventSeverity::Info,
                &summary,
                &revision,
                origin.as_deref(),
            );
        }

        // 7. Inventory and prune.
        let old = status
            .inventory
            .as_ref()
            .map(ResourceInventory::objects)
            .transpose()
            .unwrap_or_else(|err| {
                tracing::warn!(error = %err, "ignoring a malformed inventory");
                None
            })
            .unwrap_or_default();
        // Skipped objects (`ssa: Ignore`, `reconcile: disabled`) stay in the inventory, so
        // they are not pruned, as in Flux.
        let current: Vec<ObjectRef> = applied
            .entries
            .iter()
            .map(|change| change.object.clone())
            .collect();
        status.inventory = Some(ResourceInventory::from_objects(&current));
        let stale: Vec<ObjectRef> = old
            .into_iter()
            .filter(|o| !current.iter().any(|c| c.same_object(o)))
            .collect();
        if spec.prune && !stale.is_empty() {
            match delete_all(manager, stale.clone()).await {
                Ok(deleted) => {
                    if deleted.has_changes() {
                        let summary = deleted.summary();
                        tracing::info!(changes = %summary, "garbage collection completed");
                        self.event(
                            ctx,
                            obj,
                            EventSeverity::Info,
                            &summary,
                            &revision,
                            origin.as_deref(),
                        );
                    }
                }
                Err(error) => {
                    // Keep the stale objects tracked so the next reconcile retries them.
                    let mut tracked = current.clone();
                    tracked.extend(stale);
                    status.inventory = Some(ResourceInventory::from_objects(&tracked));
                    return Err(fail(status, reasons::PRUNE_FAILED, error));
                }
            }
        }

        // 8. Health.
        let is_new_revision = status.last_applied_revision.as_deref() != Some(revision.as_str());
        if let Err(err) = self
            .check_health(
                obj,
                status,
                &target,
                &applied,
                &source.key,
                &revision,
                (is_new_revision && drifted, ctx, origin.as_deref()),
            )
            .await
        {
            if err.reason() == HEALTH_CHECK_CANCELED_REASON {
                return Err(err);
            }
            return Err(fail(status, reasons::HEALTH_CHECK_FAILED, err));
        }

        // 9. Ready.
        status.last_applied_revision = Some(revision.clone());
        status.last_applied_origin_revision = origin;
        upsert_history(
            &mut status.history,
            &built.digest,
            now(),
            started.elapsed(),
            reasons::RECONCILIATION_SUCCEEDED,
            history_meta,
        );
        Ok(Outcome::ready(format!("Applied revision: {revision}"))
            .with_reason(reasons::RECONCILIATION_SUCCEEDED))
    }

    async fn cleanup(&self, obj: &Kustomization, ctx: &Context) -> Result<(), ReconcileError> {
        let spec = &obj.spec;
        let Some(status) = obj.status.as_ref() else {
            return Ok(());
        };
        let objects = match status.inventory.as_ref().map(ResourceInventory::objects) {
            Some(Ok(objects)) if !objects.is_empty() => objects,
            _ => return Ok(()),
        };
        if !spec.deletes_on_finalize() {
            tracing::info!(
                policy = spec.deletion_policy().as_str(),
                objects = objects.len(),
                "leaving the applied objects in place"
            );
            return Ok(());
        }
        let namespace = obj.namespace().unwrap_or_default();
        let revision = status.last_applied_revision.clone().unwrap_or_default();
        let origin = status.last_applied_origin_revision.clone();
        let account = spec.service_account(self.shared.settings.default_service_account.as_deref());
        if let Some(account) = account
            && spec.kube_config.is_none()
            && !self
                .shared
                .clients
                .service_account_exists(&namespace, account)
                .await
        {
            let list: Vec<String> = objects.iter().map(ToString::to_string).collect();
            let message = format!("unable to prune objects: \n{}", list.join("\n"));
            tracing::error!(
                service_account = account,
                "skipping pruning: the ServiceAccount to impersonate does not exist"
            );
            self.event(
                ctx,
                obj,
                EventSeverity::Error,
                &message,
                &revision,
                origin.as_deref(),
            );
            return Ok(());
        }
        let target = self.target(obj, &namespace).await?;
        let manager = ResourceManager::new(
            target.client.clone(),
            target.cache.clone(),
            ManagerOptions {
                field_manager: CONTROLLER_NAME.to_owned(),
                owner: Owner {
                    name: obj.name_any(),
                    namespace: namespace.clone(),
                },
                takeover_managers: Vec::new(),
            },
        );
        let deleted = match delete_all(manager, objects).await {
            Ok(deleted) => deleted,
            Err(err) => {
                self.event(
                    ctx,
                    obj,
                    EventSeverity::Error,
                    "pruning for deleted resource failed",
                    &revision,
                    origin.as_deref(),
                );
                return Err(err);
            }
        };
        if deleted.has_changes() {
            self.event(
                ctx,
                obj,
                EventSeverity::Info,
                &deleted.summary(),
                &revision,
                origin.as_deref(),
            );
            if spec.deletion_policy() == crate::api::v1::DeletionPolicy::WaitForTermination {
                let gone = deleted
                    .entries
                    .iter()
                    .filter(|c| matches!(c.action, crate::apply::Action::Deleted))
                    .map(|c| c.object.clone())
                    .collect::<Vec<_>>();
                if let Err(still) = wait_for_termination(&target, &gone, spec.timeout()).await {
                    let message = "failed to wait for resources termination";
                    tracing::error!(remaining = %still.join(", "), "{message}");
                    self.event(
                        ctx,
                        obj,
                        EventSeverity::Error,
                        message,
                        &revision,
                        origin.as_deref(),
                    );
                }
            }
        }
        Ok(())
    }
}

impl KustomizationReconciler {
    /// Step 2: the source, with the cross-namespace rule.
    async fn source(&self, obj: &Kustomization, namespace: &str) -> Result<Source, ReconcileError> {
        let reference = &obj.spec.source_ref;
        let source_namespace = reference.namespace_or(namespace);
        if self.shared.settings.no_cross_namespace_refs && source_namespace != namespace {
            return Err(ReconcileError::stalled(
                ACCESS_DENIED_REASON,
                format!(
                    "can't access '{}/{}/{}', cross-namespace references have been blocked",
                    reference.kind, source_namespace, reference.name
                ),
            ));
        }
        get_source(
            self.shared.clients.own(),
            self.shared.clients.cache(),
            reference,
            namespace,
        )
        .await
        .map_err(|err| {
            let retry = obj.spec.retry_interval();
            match &err {
                super::source::SourceError::NotFound { .. } => {
                    ReconcileError::transient(reasons::ARTIFACT_FAILED, err.to_string())
                        .retry_after(retry)
                }
                _ => ReconcileError::transient(reasons::ARTIFACT_FAILED, err.to_string())
                    .with_source(err),
            }
        })
    }

    /// Step 3: Flux's dependency rules.
    async fn check_dependencies(
        &self,
        obj: &Kustomization,
        namespace: &str,
        source: &Source,
    ) -> Result<(), ReconcileError> {
        let api_for = |ns: &str| -> Api<Kustomization> {
            Api::namespaced(self.shared.clients.own().clone(), ns)
        };
        let self_json = serde_json::to_value(obj).unwrap_or(Value::Null);
        let artifact_revision = source
            .artifact
            .as_ref()
            .map(|a| a.revision.as_str())
            .unwrap_or_default();
        for dependency in &obj.spec.depends_on {
            let dep_ns = dependency.namespace_or(namespace);
            let dep_name = format!("{dep_ns}/{}", dependency.name);
            let not_ready =
                |message: String| ReconcileError::waiting(reasons::DEPENDENCY_NOT_READY, message);
            let dep = match api_for(dep_ns).get_opt(&dependency.name).await {
                Ok(Some(dep)) => dep,
                Ok(None) => {
                    return Err(not_ready(format!("dependency '{dep_name}' not found")));
                }
                Err(err) => {
                    return Err(not_ready(format!(
                        "dependency '{dep_name}' not found: {err}"
                    )));
                }
            };
            if let Some(expr) = dependency.ready_expr.as_deref().filter(|e| !e.is_empty()) {
                let invalid = |err: toolkit_sdk::cel::CelError| {
                    ReconcileError::stalled(
                        reasons::INVALID_CEL_EXPRESSION,
                        format!(
                            "Reconciliation failed terminally due to configuration error: \
                             failed to evaluate dependency {}: {err}",
                            dependency.name
                        ),
                    )
                };
                let expression = Expression::compile(expr).map_err(invalid)?;
                let dep_json = serde_json::to_value(&dep).unwrap_or(Value::Null);
                let ready = expression
                    .evaluate_bool(&[("self", &self_json), ("dep", &dep_json)])
                    .map_err(invalid)?;
                if !ready {
                    return Err(not_ready(format!(
                        "dependency '{dep_name}' is not ready according to readyExpr eval"
                    )));
                }
                continue;
            }
            let dep_status = dep.status.clone().unwrap_or_default();
            if dep_status.conditions.is_empty()
                || dep.meta().generation != Some(dep_status.observed_generation)
                || !conditions::is_ready(&dep_status.conditions)
            {
                return Err(not_ready(format!("dependency '{dep_name}' is not ready")));
            }
            let dep_source = SourceKey::of_kustomization(&dep);
            if dep_source == source.key
                && dep_status.last_applied_revision.as_deref() != Some(artifact_revision)
            {
                return Err(not_ready(format!(
                    "dependency '{dep_name}' revision is not up to date"
                )));
            }
        }
        Ok(())
    }

    /// The client objects are applied with (step 6), as the ServiceAccount or in the remote
    /// cluster.
    async fn target(&self, obj: &Kustomization, namespace: &str) -> Result<Target, ReconcileError> {
        let account = obj
            .spec
            .service_account(self.shared.settings.default_service_account.as_deref());
        self.shared
            .clients
            .target(namespace, account, obj.spec.kube_config.as_ref())
            .await
            .map_err(|err| {
                let unsupported = matches!(
                    err,
                    super::client::ClientError::ConfigMapRefUnsupported
                        | super::client::ClientError::NoKubeConfigReference
                );
                let base = if unsupported {
                    ReconcileError::stalled(reasons::RECONCILIATION_FAILED, err.to_string())
                } else {
                    ReconcileError::transient(reasons::RECONCILIATION_FAILED, err.to_string())
                };
                base.with_source(err)
            })
    }

    /// The decryptor of `spec.decryption`, with the keys of its Secret.
    async fn decryptor(
        &self,
        obj: &Kustomization,
        namespace: &str,
    ) -> Result<Option<Decryptor>, ReconcileError> {
        let Some(decryption) = &obj.spec.decryption else {
            return Ok(None);
        };
        let Some(secret_ref) = &decryption.secret_ref else {
            return Ok(Some(
                Decryptor::from_secret_data(&BTreeMap::new()).map_err(|err| {
                    ReconcileError::transient(reasons::BUILD_FAILED, err.to_string())
                        .with_source(err)
                })?,
            ));
        };
        let api: Api<Secret> = Api::namespaced(self.shared.clients.own().clone(), namespace);
        let secret = api.get_opt(&secret_ref.name).await.map_err(|err| {
            ReconcileError::transient(
                reasons::BUILD_FAILED,
                format!(
                    "cannot get decryption Secret '{namespace}/{}'",
                    secret_ref.name
                ),
            )
            .with_source(err)
        })?;
        let Some(secret) = secret else {
            return Err(ReconcileError::transient(
                reasons::BUILD_FAILED,
                format!(
                    "decryption Secret '{namespace}/{}' not found",
                    secret_ref.name
                ),
            ));
        };
        let data: BTreeMap<String, Vec<u8>> = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        Decryptor::from_secret_data(&data).map(Some).map_err(|err| {
            ReconcileError::transient(
                reasons::BUILD_FAILED,
                format!(
                    "invalid decryption keys in Secret '{namespace}/{}'",
                    secret_ref.name
                ),
            )
            .with_source(err)
        })
    }

    /// The variables of `postBuild`: `substituteFrom` in order (later ones win), then
    /// `substitute` (wins over all).
    async fn substitution_vars(
        &self,
        namespace: &str,
        post_build: &PostBuild,
    ) -> Result<BTreeMap<String, String>, ReconcileError> {
        let client = self.shared.clients.own();
        let mut vars = BTreeMap::new();
        for reference in &post_build.substitute_from {
            let kind = match reference.kind {
                SubstituteKind::ConfigMap => "ConfigMap",
                SubstituteKind::Secret => "Secret",
            };
            let shown = format!("{kind}/{namespace}/{}", reference.name);
            let failed = |message: String| {
                ReconcileError::transient(
                    reasons::BUILD_FAILED,
                    format!("substitute from '{shown}' failed: {message}"),
                )
            };
            let data: Option<BTreeMap<String, String>> = match reference.kind {
                SubstituteKind::ConfigMap => {
                    let api: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
                    api.get_opt(&reference.name)
                        .await
                        .map_err(|e| failed(e.to_string()))?
                        .map(|cm| cm.data.unwrap_or_default())
                }
                SubstituteKind::Secret => {
                    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
                    match api
                        .get_opt(&reference.name)
                        .await
                        .map_err(|e| failed(e.to_string()))?
                    {
                        None => None,
                        Some(secret) => {
                            let mut values = BTreeMap::new();
                            for (key, value) in secret.data.unwrap_or_default() {
                                let text = String::from_utf8(value.0).map_err(|_| {
                                    failed(format!("the value of key '{key}' is not UTF-8"))
                                })?;
                                values.insert(key, text);
                            }
                            Some(values)
                        }
                    }
                }
            };
            match data {
                Some(data) => vars.extend(data),
                None if reference.optional => {}
                None => return Err(failed(format!("{kind} '{}' not found", reference.name))),
            }
        }
        vars.extend(post_build.substitute.clone());
        Ok(vars)
    }

    /// Step 8. `Ok` when nothing is to be checked or everything is healthy; sets `Healthy`.
    #[allow(clippy::too_many_arguments)]
    async fn check_health(
        &self,
        obj: &Kustomization,
        status: &mut KustomizationStatus,
        target: &Target,
        applied: &ChangeSet,
        source: &SourceKey,
        revision: &str,
        (announce, ctx, origin): (bool, &Context, Option<&str>),
    ) -> Result<(), ReconcileError> {
        let spec = &obj.spec;
        let stamp = Stamp::new(Time(jiff::Timestamp::now()), obj.meta().generation);
        let objects: Vec<ObjectRef> = if spec.wait {
            applied
                .entries
                .iter()
                .filter(|c| !matches!(c.action, crate::apply::Action::Skipped))
                .map(|c| c.object.clone())
                .collect()
        } else {
            spec.health_checks
                .iter()
                .map(|r| {
                    let (group, version) = crate::object_ref::split_api_version(
                        r.api_version.as_deref().unwrap_or("v1"),
                    );
                    ObjectRef {
                        group: group.to_owned(),
                        version: version.to_owned(),
                        kind: r.kind.clone(),
                        namespace: r
                            .namespace_or(&obj.namespace().unwrap_or_default())
                            .to_owned(),
                        name: r.name.clone(),
                    }
                })
                .collect()
        };
        // Never wait on itself.
        let own_name = obj.name_any();
        let own_namespace = obj.namespace().unwrap_or_default();
        let objects: Vec<ObjectRef> = objects
            .into_iter()
            .filter(|o| {
                !(o.kind == "Kustomization"
                    && o.group == toolkit_sdk::api::groups::KUSTOMIZE
                    && o.name == own_name
                    && o.namespace == own_namespace)
            })
            .collect();
        if objects.is_empty() {
            conditions::delete(&mut status.conditions, types::HEALTHY);
            return Ok(());
        }
        let was_healthy = conditions::is_true(&status.conditions, types::HEALTHY);
        let checker = HealthChecker::new(
            target.client.clone(),
            target.cache.clone(),
            &custom_health_checks(spec),
        )
        .map_err(|err| {
            ReconcileError::stalled(
                reasons::INVALID_CEL_EXPRESSION,
                "Reconciliation failed terminally due to configuration error",
            )
            .with_source(err)
        })?;
        let cancel =
            self.shared
                .revisions
                .cancel_on_new_revision(source, revision, &self.shared.stop);
        let started = Instant::now();
        let timeout = spec.timeout();
        let waiting = cancel.clone();
        let result = checker.wait(&objects, timeout, &waiting).await;
        cancel.cancel();
        match result {
            Ok(()) => {
                let message = format!(
                    "Health check passed in {}",
                    toolkit_sdk::api::GoDuration::from(round_ms(started.elapsed()))
                );
                if !was_healthy || announce {
                    self.event(ctx, obj, EventSeverity::Info, &message, revision, origin);
                }
                conditions::mark_true(
                    &mut status.conditions,
                    &stamp,
                    types::HEALTHY,
                    reasons::SUCCEEDED,
                    &message,
                );
                Ok(())
            }
            Err(HealthError::Cancelled) if !self.shared.stop.is_cancelled() => {
                let message = format!(
                    "New reconciliation triggered by {}/{}/{}",
                    source.kind, source.namespace, source.name
                );
                tracing::info!("new source revision; health checks canceled");
                Err(
                    ReconcileError::transient(HEALTH_CHECK_CANCELED_REASON, message)
                        .retry_after(Duration::from_millis(100)),
                )
            }
            Err(err) => {
                let message = format!(
                    "health check failed after {}",
                    toolkit_sdk::api::GoDuration::from(round_ms(started.elapsed()))
                );
                let error = ReconcileError::transient(reasons::HEALTH_CHECK_FAILED, message)
                    .with_source(err);
                conditions::mark_false(
                    &mut status.conditions,
                    &stamp,
                    types::HEALTHY,
                    reasons::HEALTH_CHECK_FAILED,
                    &error.detailed_message(),
                );
                Err(error)
            }
        }
    }

    /// An event about `obj` with the revision metadata, besides the one the runtime emits.
    fn event(
        &self,
        ctx: &Context,
        obj: &Kustomization,
        severity: EventSeverity,
        message: &str,
        revision: &str,
        origin: Option<&str>,
    ) {
        let metadata = if revision.is_empty() {
            BTreeMap::new()
        } else {
            revision_metadata(revision, origin)
        };
        let reason = match severity {
            EventSeverity::Info => PROGRESSING_REASON,
            EventSeverity::Error => reasons::RECONCILIATION_FAILED,
        };
        ctx.recorder()
            .publish(&obj.object_ref(&()), severity, reason, message, metadata);
    }
}

/// [`ResourceManager::delete_all`] (background propagation), as a `PruneFailed` error on
/// failure.
async fn delete_all(
    manager: ResourceManager,
    objects: Vec<ObjectRef>,
) -> Result<ChangeSet, ReconcileError> {
    manager
        .delete_all(&objects, &DeleteOptions::default())
        .await
        .map_err(|err| {
            ReconcileError::transient(reasons::PRUNE_FAILED, err.to_string()).with_source(err)
        })
}

/// Whether `revision` is new but builds the objects last applied successfully with the
/// current spec: then applying, pruning and health checks would find nothing to do.
fn unchanged_build(
    obj: &Kustomization,
    status: &KustomizationStatus,
    revision: &str,
    digest: &str,
) -> bool {
    let Some(last) = obj.status.as_ref() else {
        return false;
    };
    last.last_applied_revision
        .as_deref()
        .is_some_and(|applied| applied != revision)
        && Some(last.observed_generation) == obj.metadata.generation
        && conditions::is_ready(&last.conditions)
        && last.inventory.is_some()
        && status.history.first().is_some_and(|snapshot| {
            snapshot.digest == digest
                && snapshot.last_reconciled_status == reasons::RECONCILIATION_SUCCEEDED
        })
}

/// The custom health checks of `spec.healthCheckExprs`.
fn custom_health_checks(spec: &KustomizationSpec) -> Vec<CustomHealthCheck> {
    spec.health_check_exprs
        .iter()
        .map(|c| CustomHealthCheck {
            api_version: c.api_version.clone(),
            kind: c.kind.clone(),
            current: Some(c.current.clone()),
            in_progress: c.in_progress.clone(),
            failed: c.failed.clone(),
        })
        .collect()
}

/// `--override-manager` values after the managers always taken over.
fn takeover_managers(overrides: &[String]) -> Vec<String> {
    let mut managers: Vec<String> = DEFAULT_TAKEOVER_MANAGERS
        .iter()
        .map(|m| (*m).to_owned())
        .collect();
    for manager in overrides {
        if !manager.is_empty() && !managers.contains(manager) {
            managers.push(manager.clone());
        }
    }
    managers
}

/// The directory to build: `path` inside `root`, which must exist and stay inside it.
fn build_dir(root: &Path, path: &str) -> Result<PathBuf, ReconcileError> {
    let not_found = |detail: String| {
        ReconcileError::transient(
            reasons::ARTIFACT_FAILED,
            format!("kustomization path not found: {detail}"),
        )
    };
    let canonical_root = root
        .canonicalize()
        .map_err(|e| not_found(format!("artifact root: {e}")))?;
    let dir = root.join(path);
    let canonical = dir
        .canonicalize()
        .map_err(|_| not_found(format!("'{path}' does not exist in the artifact")))?;
    if !canonical.starts_with(&canonical_root) {
        return Err(ReconcileError::transient(
            reasons::ARTIFACT_FAILED,
            format!("path '{path}' points outside the artifact"),
        ));
    }
    if !canonical.is_dir() {
        return Err(not_found(format!("'{path}' is not a directory")));
    }
    Ok(canonical)
}

/// Step 5, on a blocking thread.
fn build(input: BuildInput) -> Result<Built, BuildError> {
    let BuildInput {
        root,
        private,
        dir,
        spec,
        decryptor,
        vars,
        strict,
    } = input;
    if let Some(decryptor) = &decryptor {
        decryptor
            .decrypt_sources(&root, &dir)
            .map_err(|e| BuildError::DecryptSources(Box::new(e)))?;
    }
    let top_kustomization = if private {
        generate::write_overlay(&dir, &spec).map_err(BuildError::Generate)?;
        None
    } else {
        generate::overlay(&dir, &spec)
            .map_err(BuildError::Generate)?
            .map(|(_, text)| text)
    };
    // As Flux: any file of the artifact may be used from any kustomization in it (a patch in
    // `../base`), nothing outside the artifact.
    let options = ferroflux_kustomize::BuildOptions {
        load_restrictions: ferroflux_kustomize::LoadRestrictions::None,
        generate_missing_kustomization: true,
        confine_to: Some(root.clone()),
        top_kustomization,
        ..ferroflux_kustomize::BuildOptions::default()
    };
    let resources = ferroflux_kustomize::build(&dir, &options).map_err(BuildError::Kustomize)?;
    let mut objects = Vec::with_capacity(resources.len());
    for resource in resources {
        let origin = if resource.origin.is_empty() {
            "the build output".to_owned()
        } else {
            resource.origin.clone()
        };
        if resource.api_version().is_empty()
            || resource.kind().is_empty()
            || resource.name().is_empty()
        {
            return Err(BuildError::NotAnObject { origin });
        }
        let mut object = serde_json::to_value(&resource.value)
            .map_err(|source| BuildError::Json { origin, source })?;
        let shown = ObjectRef::from_object(&object)
            .map(|o| o.to_string())
            .unwrap_or_default();
        if let Some(decryptor) = &decryptor {
            object =
                decryptor
                    .decrypt_object(object)
                    .map_err(|source| BuildError::DecryptObject {
                        object: shown.clone(),
                        source: Box::new(source),
                    })?;
        } else if is_sops_encrypted_secret(&object) {
            return Err(BuildError::Encrypted { object: shown });
        }
        objects.push(object);
    }
    if let Some(vars) = &vars {
        objects = crate::substitute::substitute_objects(objects, vars, strict)
            .map_err(BuildError::Substitute)?;
    }
    if let Some(common) = &spec.common_metadata {
        for object in &mut objects {
            set_common_metadata(object, &common.labels, &common.annotations);
        }
    }
    let mut hasher = Sha256::new();
    for object in &objects {
        hasher.update(object.to_string().as_bytes());
        hasher.update(b"\n---\n");
    }
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    Ok(Built { objects, digest })
}

/// A Secret still carrying SOPS metadata, without the `kustomize.toolkit.fluxcd.io/decrypt:
/// disabled` opt-out.
fn is_sops_encrypted_secret(object: &Value) -> bool {
    let opted_out = object
        .pointer("/metadata/annotations/kustomize.toolkit.fluxcd.io~1decrypt")
        .and_then(Value::as_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("disabled"));
    object.get("kind").and_then(Value::as_str) == Some("Secret")
        && crate::decrypt::is_sops_encrypted(object)
        && !opted_out
}

/// Sets `labels` and `annotations` on `object`, replacing values of the same keys.
fn set_common_metadata(
    object: &mut Value,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) {
    let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    for (field, values) in [("labels", labels), ("annotations", annotations)] {
        if values.is_empty() {
            continue;
        }
        let slot = metadata
            .entry(field)
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(serde_json::Map::new());
        }
        if let Some(map) = slot.as_object_mut() {
            for (key, value) in values {
                map.insert(key.clone(), Value::String(value.clone()));
            }
        }
    }
}

/// `url` with its `host[:port]` replaced by `host` (Flux's `SOURCE_CONTROLLER_LOCALHOST`, for a
/// controller that reaches source-controller by another address than the one it advertises).
pub fn with_host(url: &str, host: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    format!("{scheme}://{host}{path}")
}

/// Waits until every object in `objects` is gone; the names of the remaining ones on timeout.
async fn wait_for_termination(
    target: &Target,
    objects: &[ObjectRef],
    timeout: Duration,
) -> Result<(), Vec<String>> {
    let deadline = Instant::now() + timeout;
    let mut remaining: Vec<ObjectRef> = objects.to_vec();
    loop {
        let mut still = Vec::new();
        for object in remaining {
            let exists = match target.cache.resolve(&target.client, &object).await {
                Ok(kind) => !matches!(
                    kind.api(&target.client, &object)
                        .get_opt(&object.name)
                        .await,
                    Ok(None)
                ),
                Err(_) => false,
            };
            if exists {
                still.push(object);
            }
        }
        if still.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(still.iter().map(ToString::to_string).collect());
        }
        remaining = still;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn history_metadata(revision: &str, origin: Option<&str>) -> BTreeMap<String, String> {
    revision_metadata(revision, origin)
}

fn now() -> Time {
    Time(jiff::Timestamp::now())
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hosts_are_replaced_keeping_the_path() {
        assert_eq!(
            with_host(
                "http://source-controller.flux-system.svc.cluster.local./gitrepository/a/b/c.tar.gz",
                "localhost:9090"
            ),
            "http://localhost:9090/gitrepository/a/b/c.tar.gz"
        );
        assert_eq!(with_host("not a url", "x"), "not a url");
    }

    #[test]
    fn common_metadata_overrides_existing_keys() {
        let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"team": "x", "keep": "y"}}});
        let labels = [("team".to_owned(), "z".to_owned())].into();
        let annotations = [("note".to_owned(), "n".to_owned())].into();
        set_common_metadata(&mut object, &labels, &annotations);
        assert_eq!(
            object["metadata"]["labels"],
            json!({"team": "z", "keep": "y"})
        );
        assert_eq!(object["metadata"]["annotations"], json!({"note": "n"}));
    }

    #[test]
    fn build_dir_must_stay_inside_the_artifact() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("apps")).unwrap();
        assert!(build_dir(tmp.path(), "apps").is_ok());
        assert!(build_dir(tmp.path(), "").is_ok());
        let missing = build_dir(tmp.path(), "nope").unwrap_err();
        assert_eq!(missing.reason(), "ArtifactFailed");
        assert!(missing.message().contains("kustomization path not found"));
        let outside = build_dir(tmp.path(), "../..").unwrap_err();
        assert!(
            outside.message().contains("outside"),
            "{}",
            outside.message()
        );
    }

    #[test]
    fn takeover_managers_include_overrides_once() {
        let managers = takeover_managers(&["helm".to_owned(), "kubectl".to_owned()]);
        assert_eq!(
            managers,
            [
                "kubectl",
                "before-first-apply",
                "kubectl-client-side-apply",
                "helm"
            ]
        );
    }

    #[test]
    fn encrypted_secrets_are_recognised() {
        assert!(is_sops_encrypted_secret(
            &json!({"kind": "Secret", "sops": {"mac": "x"}})
        ));
        assert!(!is_sops_encrypted_secret(
            &json!({"kind": "Secret", "data": {}})
        ));
        assert!(!is_sops_encrypted_secret(
            &json!({"kind": "ConfigMap", "sops": {"mac": "x"}})
        ));
        assert!(!is_sops_encrypted_secret(
            &json!({"kind": "Secret", "sops": {"mac": "x"},
            "metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/decrypt": "disabled"}}})
        ));
    }
}
