//! The `Kustomization` kind: the artifact of a source, built with kustomize and applied to a
//! cluster, kept there and pruned when it leaves the source.
//!
//! ```yaml
//! apiVersion: kustomize.toolkit.fluxcd.io/v1
//! kind: Kustomization
//! metadata:
//!   name: apps
//!   namespace: flux-system
//! spec:
//!   interval: 10m
//!   sourceRef:
//!     kind: GitRepository
//!     name: fleet
//!   path: ./apps/production
//!   prune: true
//!   dependsOn:
//!     - name: infrastructure
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolkit_sdk::api::{
    DependencyReference, GoDuration, KubeConfigReference, LocalObjectReference,
    NamespacedObjectKindReference,
};
use toolkit_sdk::runtime::FluxObject;

use crate::object_ref::{InvalidId, ObjectRef};

/// The shortest health check timeout Flux uses, whatever the interval.
pub const MIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How many snapshots `status.history` keeps (Flux's `HistoryMaxSize`).
pub const HISTORY_MAX_SIZE: usize = 5;

/// The API group and version a `sourceRef` without `apiVersion` points at.
pub const DEFAULT_SOURCE_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";

/// The desired state of a Kustomization: which source, which path in it, how to build it, and
/// how to apply, check and prune the result.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "kustomize.toolkit.fluxcd.io",
    version = "v1",
    kind = "Kustomization",
    namespaced,
    status = "KustomizationStatus",
    shortname = "ks",
    doc = "A Kustomization builds a path of a source's artifact with kustomize and keeps the result applied to the cluster.",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct KustomizationSpec {
    /// Labels and annotations set on every applied object, replacing existing values of the
    /// same keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_metadata: Option<CommonMetadata>,

    /// Kustomizations that must be ready (and, when they use the same source, must have
    /// applied the same revision) before this one is reconciled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<DependencyReference>,

    /// Decrypt SOPS-encrypted Secrets and files before applying them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decryption: Option<Decryption>,

    /// How often the Kustomization is reconciled (approximately: the controller adds jitter).
    pub interval: GoDuration,

    /// The delay before retrying a failed reconcile; `interval` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_interval: Option<GoDuration>,

    /// A kubeconfig to apply into another cluster. With `serviceAccountName`, that account is
    /// impersonated in the target cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_config: Option<KubeConfigReference>,

    /// Directory of the artifact to build: one with a `kustomization.yaml`, or plain YAML files
    /// for which one is generated. The artifact's root when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,

    /// What to do with the built manifests before applying them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_build: Option<PostBuild>,

    /// Delete the objects that left the source (garbage collection).
    pub prune: bool,

    /// What happens to the applied objects when the Kustomization is deleted:
    /// `MirrorPrune` (the default: delete them if `prune` is true), `Delete`,
    /// `WaitForTermination` (delete and wait until they are gone) or `Orphan`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,

    /// Objects whose health is checked after each apply (ignored when `wait` is true).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_checks: Vec<NamespacedObjectKindReference>,

    /// Prefix added to the names of all applied objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_prefix: Option<String>,

    /// Suffix added to the names of all applied objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name_suffix: Option<String>,

    /// Strategic merge and JSON 6902 patches, inline, each with an optional target selector.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,

    /// Image name, tag or digest replacements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,

    /// ServiceAccount (in the Kustomization's namespace) impersonated for every operation on
    /// the applied objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// The source whose artifact is built.
    pub source_ref: CrossNamespaceSourceReference,

    /// Stop reconciling; what was applied stays as it is.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,

    /// Namespace set on (or replacing the one of) every namespaced object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63))]
    pub target_namespace: Option<String>,

    /// Time limit of the apply and the health checks; `interval` minus 30 s (at least 30 s)
    /// when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<GoDuration>,

    /// Recreate objects whose change touches an immutable field.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub force: bool,

    /// Check the health of every applied object; `healthChecks` is then ignored.
    #[serde(default, skip_serializing_if = "is_false")]
    pub wait: bool,

    /// Kustomize components (paths relative to `path`) added to the build.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<String>,

    /// Leave out the `components` that do not exist in the artifact instead of failing.
    #[serde(default, skip_serializing_if = "is_false")]
    pub ignore_missing_components: bool,

    /// CEL expressions that tell the health of custom kinds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub health_check_exprs: Vec<CustomHealthCheck>,

    /// JSON pointer paths left out of drift detection and apply, per target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drift_ignore_rules: Vec<DriftIgnoreRule>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Labels and annotations for every applied object (`spec.commonMetadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommonMetadata {
    /// Annotations to set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,

    /// Labels to set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// How encrypted manifests are decrypted (`spec.decryption`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Decryption {
    /// The decryption engine: `sops`.
    pub provider: DecryptionProvider,

    /// ServiceAccount whose workload identity authenticates to a cloud KMS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Secret holding the private keys (`*.agekey` entries for age).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
}

/// The decryption engine of `spec.decryption.provider`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DecryptionProvider {
    /// Mozilla SOPS.
    #[serde(rename = "sops")]
    Sops,
}

/// What to do with the built manifests before applying them (`spec.postBuild`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PostBuild {
    /// Variables substituted for `${name}` in the manifests; they win over `substituteFrom`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub substitute: BTreeMap<String, String>,

    /// ConfigMaps and Secrets (in the Kustomization's namespace) whose data keys are
    /// variables, read in order (later ones win).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub substitute_from: Vec<SubstituteReference>,
}

/// A ConfigMap or Secret holding substitution variables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubstituteReference {
    /// `Secret` or `ConfigMap`.
    pub kind: SubstituteKind,

    /// Name of the object, in the Kustomization's namespace.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// A missing object counts as empty instead of failing the reconcile.
    #[serde(default, skip_serializing_if = "is_false")]
    #[schemars(extend("default" = false))]
    pub optional: bool,
}

/// The kind of a [`SubstituteReference`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SubstituteKind {
    /// A Secret (values base64-decoded).
    Secret,
    /// A ConfigMap.
    ConfigMap,
}

/// What happens to the applied objects when the Kustomization is deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum DeletionPolicy {
    /// Delete them when `spec.prune` is true, leave them otherwise.
    #[default]
    MirrorPrune,
    /// Delete them.
    Delete,
    /// Delete them and wait until they are gone (bounded by the timeout).
    WaitForTermination,
    /// Leave them.
    Orphan,
}

impl DeletionPolicy {
    /// The value as written in the spec.
    pub fn as_str(self) -> &'static str {
        match self {
            DeletionPolicy::MirrorPrune => "MirrorPrune",
            DeletionPolicy::Delete => "Delete",
            DeletionPolicy::WaitForTermination => "WaitForTermination",
            DeletionPolicy::Orphan => "Orphan",
        }
    }
}

/// A kustomize patch (`spec.patches[]`): strategic merge or JSON 6902, with a target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// The patch document, inline YAML or JSON.
    pub patch: String,

    /// The objects the patch applies to; for a strategic merge patch without target, the
    /// object the patch names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// Selects objects by kind, name, namespace, labels and annotations; an object must match
/// every field that is set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// API group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// API version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name (a regular expression in kustomize).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Label selector expression matched against the annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotation_selector: Option<String>,
    /// Label selector expression matched against the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

/// An image replacement (`spec.images[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    /// The image name as written in the manifests, without tag.
    pub name: String,
    /// The name that replaces it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_name: Option<String>,
    /// The tag that replaces the original tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_tag: Option<String>,
    /// The digest that replaces the original tag (`newTag` is then ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// A CEL health check for one kind (`spec.healthCheckExprs[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomHealthCheck {
    /// API version of the kind.
    pub api_version: String,
    /// The kind.
    pub kind: String,
    /// True when the object is healthy.
    pub current: String,
    /// True when the object is still progressing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_progress: Option<String>,
    /// True when the object failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

/// Paths ignored by drift detection for some objects (`spec.driftIgnoreRules[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftIgnoreRule {
    /// JSON pointers (RFC 6901) to leave out.
    pub paths: Vec<String>,
    /// The objects the rule applies to; all when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Selector>,
}

/// The source of a Kustomization (`spec.sourceRef`): any kind with a `status.artifact`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CrossNamespaceSourceReference {
    /// API version of the source; `source.toolkit.fluxcd.io/v1` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the source (`GitRepository`, `OCIRepository`, `Bucket`, `ExternalArtifact`, or
    /// any other kind that publishes a `status.artifact`).
    pub kind: String,
    /// Name of the source.
    pub name: String,
    /// Namespace of the source; the Kustomization's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

impl CrossNamespaceSourceReference {
    /// The API version to read the source with.
    pub fn api_version(&self) -> &str {
        match self.api_version.as_deref() {
            Some(v) if !v.is_empty() => v,
            _ => DEFAULT_SOURCE_API_VERSION,
        }
    }

    /// The namespace of the source, given the Kustomization's.
    pub fn namespace_or<'a>(&'a self, referrer_namespace: &'a str) -> &'a str {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => ns,
            _ => referrer_namespace,
        }
    }
}

/// `Kind/name`, or `Kind/namespace/name` when a namespace is given (Flux's form).
impl fmt::Display for CrossNamespaceSourceReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.namespace.as_deref() {
            Some(ns) if !ns.is_empty() => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            _ => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// The observed state of a Kustomization.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct KustomizationStatus {
    /// The last generation reconciled to completion.
    #[serde(default = "never_observed")]
    #[schemars(transform = without_default)]
    pub observed_generation: i64,

    /// `Ready`, `Reconciling`, `Stalled`, `Healthy`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The source revision last applied successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_revision: Option<String>,

    /// The origin revision (from the artifact's metadata, such as
    /// `org.opencontainers.image.revision`) last applied successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_origin_revision: Option<String>,

    /// The source revision of the last attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_revision: Option<String>,

    /// The objects applied by the last successful apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<ResourceInventory>,

    /// The last reconciles, most recent first, grouped by the digest of what was built.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<Snapshot>,

    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

fn never_observed() -> i64 {
    -1
}

/// Removes a `default` schemars derived from a serde default: Flux defaults
/// `observedGeneration` on the whole status, not on the property.
fn without_default(schema: &mut schemars::Schema) {
    if let Some(object) = schema.as_object_mut() {
        object.remove("default");
    }
}

impl Default for KustomizationStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            last_applied_revision: None,
            last_applied_origin_revision: None,
            last_attempted_revision: None,
            inventory: None,
            history: Vec::new(),
            last_handled_reconcile_at: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(KustomizationStatus);

/// The objects a Kustomization applied (`status.inventory`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceInventory {
    /// One entry per object.
    #[serde(default)]
    pub entries: Vec<ResourceRef>,
}

/// One object of the inventory.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct ResourceRef {
    /// `<namespace>_<name>_<group>_<kind>`.
    pub id: String,
    /// The API version the object was applied with (without the group).
    pub v: String,
}

impl ResourceInventory {
    /// The inventory of `objects`, sorted by id as Flux sorts it.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a ObjectRef>) -> Self {
        let mut entries: Vec<ResourceRef> = objects
            .into_iter()
            .map(|o| ResourceRef {
                id: o.id(),
                v: o.version.clone(),
            })
            .collect();
        entries.sort_by(|a, b| a.id.cmp(&b.id));
        entries.dedup_by(|a, b| a.id == b.id);
        Self { entries }
    }

    /// The objects of the inventory.
    ///
    /// # Errors
    /// The first entry whose id is malformed.
    pub fn objects(&self) -> Result<Vec<ObjectRef>, InvalidId> {
        self.entries
            .iter()
            .map(|e| ObjectRef::from_inventory(&e.id, &e.v))
            .collect()
    }
}

/// One reconciled state of the Kustomization (`status.history[]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// Checksum of the built manifests, `sha256:<hex>`.
    pub digest: String,
    /// When this digest was first reconciled.
    pub first_reconciled: Time,
    /// When this digest was last reconciled.
    pub last_reconciled: Time,
    /// How long the last reconcile of this digest took (Go duration).
    pub last_reconciled_duration: String,
    /// The reason the last reconcile of this digest ended with.
    pub last_reconciled_status: String,
    /// How many reconciles of this digest with this status there were.
    pub total_reconciliations: i64,
    /// `revision` and `originRevision` of the source.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
}

/// Records a reconcile in `history`, as Flux does: the snapshot with the same digest and status
/// is updated and moved to the front, otherwise a new one is added at the front; at most
/// [`HISTORY_MAX_SIZE`] are kept.
pub fn upsert_history(
    history: &mut Vec<Snapshot>,
    digest: &str,
    now: Time,
    duration: Duration,
    status: &str,
    metadata: BTreeMap<String, String>,
) {
    let duration = GoDuration::from(Duration::from_millis(
        u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    ))
    .to_string();
    if let Some(index) = history
        .iter()
        .position(|s| s.digest == digest && s.last_reconciled_status == status)
    {
        let mut snapshot = history.remove(index);
        snapshot.last_reconciled = now;
        snapshot.last_reconciled_duration = duration;
        snapshot.total_reconciliations += 1;
        snapshot.metadata = metadata;
        history.insert(0, snapshot);
    } else {
        history.insert(
            0,
            Snapshot {
                digest: digest.to_owned(),
                first_reconciled: now.clone(),
                last_reconciled: now,
                last_reconciled_duration: duration,
                last_reconciled_status: status.to_owned(),
                total_reconciliations: 1,
                metadata,
            },
        );
    }
    history.truncate(HISTORY_MAX_SIZE);
}

impl KustomizationSpec {
    /// The time limit of apply and health checks: `timeout`, else `interval` minus 30 s; never
    /// less than 30 s (Flux's `GetTimeout`).
    pub fn timeout(&self) -> Duration {
        let duration = match self.timeout {
            Some(t) => t.as_duration(),
            None => self.interval.as_duration().saturating_sub(MIN_TIMEOUT),
        };
        duration.max(MIN_TIMEOUT)
    }

    /// The delay after a failure: `retryInterval`, else `interval`.
    pub fn retry_interval(&self) -> Duration {
        self.retry_interval
            .map_or_else(|| self.interval.as_duration(), |d| d.as_duration())
    }

    /// The deletion policy, `MirrorPrune` when unset.
    pub fn deletion_policy(&self) -> DeletionPolicy {
        self.deletion_policy.unwrap_or_default()
    }

    /// Whether deleting the Kustomization deletes the objects of its inventory.
    pub fn deletes_on_finalize(&self) -> bool {
        match self.deletion_policy() {
            DeletionPolicy::MirrorPrune => self.prune,
            DeletionPolicy::Delete | DeletionPolicy::WaitForTermination => true,
            DeletionPolicy::Orphan => false,
        }
    }

    /// `path` without the leading `./` and surrounding slashes; empty for the artifact root.
    pub fn path(&self) -> &str {
        let path = self.path.as_deref().unwrap_or_default().trim();
        let path = path.strip_prefix("./").unwrap_or(path);
        path.trim_matches('/')
    }

    /// The ServiceAccount to impersonate: `serviceAccountName`, else `default` (the
    /// `--default-service-account` flag) when given; `None` means the controller's own.
    pub fn service_account<'a>(&'a self, default: Option<&'a str>) -> Option<&'a str> {
        match self.service_account_name.as_deref() {
            Some(name) if !name.is_empty() => Some(name),
            _ => default.filter(|d| !d.is_empty()),
        }
    }
}

impl Kustomization {
    /// The CRD, corrected to match Flux's (see `toolkit_sdk::api::crd::finish`).
    pub fn flux_crd() -> CustomResourceDefinition {
        toolkit_sdk::api::crd::finish(Self::crd())
    }
}

impl FluxObject for Kustomization {
    type Status = KustomizationStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        self.spec.interval.as_duration()
    }

    fn retry_interval(&self) -> Option<Duration> {
        Some(self.spec.retry_interval())
    }

    fn status(&self) -> Option<&KustomizationStatus> {
        self.status.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(value: serde_json::Value) -> KustomizationSpec {
        serde_json::from_value(value).unwrap()
    }

    fn minimal(extra: serde_json::Value) -> KustomizationSpec {
        let mut base = json!({
            "interval": "10m",
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "fleet"}
        });
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        spec(base)
    }

    #[test]
    fn timeout_defaults_like_flux() {
        assert_eq!(minimal(json!({})).timeout(), Duration::from_secs(570));
        assert_eq!(
            minimal(json!({"interval": "40s"})).timeout(),
            Duration::from_secs(30)
        );
        assert_eq!(
            minimal(json!({"timeout": "2m"})).timeout(),
            Duration::from_secs(120)
        );
        assert_eq!(
            minimal(json!({"timeout": "5s"})).timeout(),
            Duration::from_secs(30)
        );
        assert_eq!(
            minimal(json!({})).retry_interval(),
            Duration::from_secs(600)
        );
        assert_eq!(
            minimal(json!({"retryInterval": "1m"})).retry_interval(),
            Duration::from_secs(60)
        );
    }

    #[test]
    fn deletion_policy_mirrors_prune_by_default() {
        let cases = [
            (json!({"prune": true}), true),
            (json!({"prune": false}), false),
            (json!({"prune": false, "deletionPolicy": "Delete"}), true),
            (
                json!({"prune": false, "deletionPolicy": "WaitForTermination"}),
                true,
            ),
            (json!({"prune": true, "deletionPolicy": "Orphan"}), false),
        ];
        for (input, want) in cases {
            assert_eq!(
                minimal(input.clone()).deletes_on_finalize(),
                want,
                "{input}"
            );
        }
        assert_eq!(
            minimal(json!({})).deletion_policy(),
            DeletionPolicy::MirrorPrune
        );
    }

    #[test]
    fn paths_and_accounts() {
        assert_eq!(minimal(json!({})).path(), "");
        assert_eq!(minimal(json!({"path": "./"})).path(), "");
        assert_eq!(minimal(json!({"path": "./apps/prod/"})).path(), "apps/prod");
        assert_eq!(minimal(json!({"path": "apps"})).path(), "apps");
        let plain = minimal(json!({}));
        assert_eq!(plain.service_account(None), None);
        assert_eq!(plain.service_account(Some("")), None);
        assert_eq!(plain.service_account(Some("default")), Some("default"));
        let own = minimal(json!({"serviceAccountName": "tenant"}));
        assert_eq!(own.service_account(Some("default")), Some("tenant"));
    }

    #[test]
    fn source_reference_defaults_and_display() {
        let plain = minimal(json!({})).source_ref;
        assert_eq!(plain.api_version(), "source.toolkit.fluxcd.io/v1");
        assert_eq!(plain.namespace_or("apps"), "apps");
        assert_eq!(plain.to_string(), "GitRepository/fleet");
        let other: CrossNamespaceSourceReference = serde_json::from_value(json!({
            "apiVersion": "example.com/v1", "kind": "Thing", "name": "a", "namespace": "b"
        }))
        .unwrap();
        assert_eq!(other.api_version(), "example.com/v1");
        assert_eq!(other.namespace_or("apps"), "b");
        assert_eq!(other.to_string(), "Thing/b/a");
    }

    #[test]
    fn spec_round_trips_without_writing_unset_fields() {
        let input = json!({
            "interval": "10m0s",
            "prune": true,
            "sourceRef": {"kind": "GitRepository", "name": "fleet"},
            "postBuild": {"substitute": {"a": "b"}, "substituteFrom": [{"kind": "Secret", "name": "vars", "optional": true}]},
            "patches": [{"patch": "- op: add", "target": {"kind": "Deployment"}}],
            "images": [{"name": "nginx", "newTag": "1.25"}],
            "healthCheckExprs": [{"apiVersion": "example.com/v1", "kind": "Thing", "current": "true"}],
            "decryption": {"provider": "sops", "secretRef": {"name": "keys"}},
            "deletionPolicy": "WaitForTermination"
        });
        let parsed = spec(input.clone());
        assert_eq!(serde_json::to_value(&parsed).unwrap(), input);
    }

    #[test]
    fn inventory_is_sorted_and_round_trips() {
        let a = ObjectRef::from_inventory("apps_b__ConfigMap", "v1").unwrap();
        let b = ObjectRef::from_inventory("_apps__Namespace", "v1").unwrap();
        let inventory = ResourceInventory::from_objects([&a, &b, &a]);
        assert_eq!(
            serde_json::to_value(&inventory).unwrap(),
            json!({"entries": [
                {"id": "_apps__Namespace", "v": "v1"},
                {"id": "apps_b__ConfigMap", "v": "v1"}
            ]})
        );
        assert_eq!(inventory.objects().unwrap(), vec![b, a]);
    }

    #[test]
    fn history_keeps_five_most_recent_first() {
        let mut history = Vec::new();
        let at = |s: i64| Time(jiff::Timestamp::from_second(s).unwrap());
        upsert_history(
            &mut history,
            "sha256:a",
            at(1),
            Duration::from_millis(1500),
            "ReconciliationSucceeded",
            BTreeMap::new(),
        );
        upsert_history(
            &mut history,
            "sha256:b",
            at(2),
            Duration::from_secs(1),
            "ReconciliationSucceeded",
            BTreeMap::new(),
        );
        upsert_history(
            &mut history,
            "sha256:a",
            at(3),
            Duration::from_secs(2),
            "ReconciliationSucceeded",
            BTreeMap::new(),
        );
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].digest, "sha256:a");
        assert_eq!(history[0].total_reconciliations, 2);
        assert_eq!(history[0].first_reconciled, at(1));
        assert_eq!(history[0].last_reconciled, at(3));
        assert_eq!(history[0].last_reconciled_duration, "2s");
        for i in 0..10 {
            upsert_history(
                &mut history,
                &format!("sha256:{i}"),
                at(10 + i),
                Duration::ZERO,
                "BuildFailed",
                BTreeMap::new(),
            );
        }
        assert_eq!(history.len(), HISTORY_MAX_SIZE);
        assert_eq!(history[0].digest, "sha256:9");
    }
}
