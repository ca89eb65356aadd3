//! The `GitRepository` kind: a Git repository revision turned into an artifact.
//!
//! ```yaml
//! apiVersion: source.toolkit.fluxcd.io/v1
//! kind: GitRepository
//! metadata:
//!   name: podinfo
//! spec:
//!   url: https://github.com/stefanprodan/podinfo
//!   interval: 5m
//!   ref:
//!     branch: master
//! ```

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolkit_sdk::api::{Artifact, GoDuration, LocalObjectReference};
use toolkit_sdk::runtime::FluxObject;

use super::shared::{DEFAULT_TIMEOUT, is_false, never_observed, without_default};

/// The branch checked out when `spec.ref` names nothing else.
pub const DEFAULT_BRANCH: &str = "master";

/// The desired state of a GitRepository: where the repository is, which revision to follow,
/// and how to turn it into an artifact.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "GitRepository",
    namespaced,
    status = "GitRepositoryStatus",
    shortname = "gitrepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    doc = "A GitRepository follows a reference in a Git repository and publishes the checked-out tree as an artifact.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.serviceAccountName) || (has(self.provider) && (self.provider == 'azure' || self.provider == 'aws'))",
    "message": "serviceAccountName can only be set when provider is 'azure' or 'aws'"
}]))]
pub struct GitRepositorySpec {
    /// Address of the repository over HTTP(S) or SSH, such as
    /// `https://github.com/org/repo` or `ssh://git@github.com/org/repo`.
    #[schemars(pattern(r"^(http|https|ssh)://.*$"))]
    pub url: String,

    /// Secret with the credentials: `username` and `password` (or `bearerToken`) over HTTPS,
    /// optionally `ca.crt`; `identity` and `known_hosts` over SSH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Who provides the credentials: `generic` (the Secret, the default), or the workload
    /// identity of `aws`, `azure` or `github` (a GitHub App).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<GitProvider>,

    /// ServiceAccount whose workload identity authenticates to the repository; only with the
    /// `azure` and `aws` providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// How often the repository is checked for a new revision (approximately: the controller
    /// may add jitter).
    pub interval: GoDuration,

    /// Time limit of remote Git operations such as a clone; `60s` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"), extend("default" = "60s"))]
    pub timeout: Option<GoDuration>,

    /// The reference to follow; the `master` branch when unset.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<GitRepositoryRef>,

    /// Verify the signature of the checked-out commit and/or tag.
    #[serde(default, rename = "verify", skip_serializing_if = "Option::is_none")]
    pub verification: Option<GitRepositoryVerification>,

    /// Secret with the proxy (`address`, optional `username` and `password`) for all remote
    /// operations of this object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// Exclusion patterns in `.gitignore` format; they replace the default exclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Stop reconciling this object; the last artifact stays served.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,

    /// Also clone the submodules of the repository.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recurse_submodules: bool,

    /// Artifacts of other GitRepositories (same namespace) to copy into this one's artifact.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<GitRepositoryInclude>,

    /// Check out only these directories; the artifact holds only them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sparse_checkout: Vec<String>,
}

/// Who provides the credentials of a GitRepository (`spec.provider`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GitProvider {
    /// Credentials from `spec.secretRef`, if any.
    #[default]
    Generic,
    /// AWS CodeCommit with IAM credentials from workload identity.
    Aws,
    /// Azure DevOps with a managed identity.
    Azure,
    /// GitHub with a GitHub App installation token.
    Github,
}

/// A GitRepository whose artifact is copied into another's, and where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryInclude {
    /// The GitRepository (same namespace) whose artifact is included.
    #[serde(rename = "repository")]
    pub repository: LocalObjectReference,

    /// Directory of the included artifact to copy from; its root when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_path: Option<String>,

    /// Directory of this artifact to copy to; the included GitRepository's name when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_path: Option<String>,
}

impl GitRepositoryInclude {
    /// The directory to copy from (empty means the root of the included artifact).
    pub fn from_path(&self) -> &str {
        self.from_path.as_deref().unwrap_or_default()
    }

    /// The directory to copy to: `toPath`, or the included GitRepository's name.
    pub fn to_path(&self) -> &str {
        match self.to_path.as_deref() {
            Some(path) if !path.is_empty() => path,
            _ => &self.repository.name,
        }
    }
}

/// The Git reference to follow (`spec.ref`). When several fields are set, the precedence is
/// `commit` > `name` > `semver` > `tag` > `branch`; see [`GitRepositoryRef::effective`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryRef {
    /// Branch to check out; `master` when no other field is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,

    /// Tag to check out; takes precedence over `branch`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,

    /// SemVer range; the highest matching tag is checked out. Takes precedence over `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,

    /// Full reference name such as `refs/heads/main`, `refs/tags/v1.0.0` or
    /// `refs/pull/42/head`; takes precedence over `branch`, `tag` and `semver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,

    /// Commit SHA to check out; takes precedence over every other field. With `branch`, only
    /// that branch is fetched and the commit must be on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// What a GitRepository checks out, once Flux's precedence rules are applied to `spec.ref`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum GitCheckout {
    /// A commit by SHA. `branch` limits the fetch to that branch; the revision is reported under
    /// `name` if set, else under the branch, else as the bare commit.
    Commit {
        /// The commit SHA.
        commit: String,
        /// `spec.ref.branch`, if set.
        branch: Option<String>,
        /// `spec.ref.name`, if set.
        name: Option<String>,
    },
    /// A full reference name (`refs/...`).
    Name(String),
    /// The highest tag within a SemVer range.
    SemVer(String),
    /// A tag.
    Tag(String),
    /// A branch.
    Branch(String),
}

/// A field of `spec.ref` that is set: present and not empty (Flux reads an empty string as
/// unset).
fn set(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|v| !v.is_empty())
}

impl GitRepositoryRef {
    /// What to check out: `commit` > `name` > `semver` > `tag` > `branch`, and the
    /// [`DEFAULT_BRANCH`] when none is set. Empty strings count as unset.
    pub fn effective(&self) -> GitCheckout {
        if let Some(commit) = set(&self.commit) {
            return GitCheckout::Commit {
                commit: commit.to_owned(),
                branch: set(&self.branch).map(str::to_owned),
                name: set(&self.name).map(str::to_owned),
            };
        }
        if let Some(name) = set(&self.name) {
            return GitCheckout::Name(name.to_owned());
        }
        if let Some(range) = set(&self.semver) {
            return GitCheckout::SemVer(range.to_owned());
        }
        if let Some(tag) = set(&self.tag) {
            return GitCheckout::Tag(tag.to_owned());
        }
        GitCheckout::Branch(set(&self.branch).unwrap_or(DEFAULT_BRANCH).to_owned())
    }
}

impl GitCheckout {
    /// The full Git reference the revision is reported under, if there is one: the branch
    /// (`refs/heads/...`), the tag (`refs/tags/...`) or `spec.ref.name` as written. A SemVer
    /// range has none until it is resolved to a tag (pass that tag as `resolved_tag`).
    pub fn reference(&self, resolved_tag: Option<&str>) -> Option<String> {
        match self {
            GitCheckout::Commit {
                name: Some(name), ..
            } => Some(name.clone()),
            GitCheckout::Commit {
                branch: Some(branch),
                ..
            } => Some(format!("refs/heads/{branch}")),
            GitCheckout::Commit { .. } => None,
            GitCheckout::Name(name) => Some(name.clone()),
            GitCheckout::SemVer(_) => resolved_tag.map(|tag| format!("refs/tags/{tag}")),
            GitCheckout::Tag(tag) => Some(format!("refs/tags/{tag}")),
            GitCheckout::Branch(branch) => Some(format!("refs/heads/{branch}")),
        }
    }

    /// Whether `spec.ref.name` decides the reference, in which case Flux reports the revision
    /// under the full reference name ([`git_absolute_revision`]).
    fn reports_full_name(&self) -> bool {
        matches!(
            self,
            GitCheckout::Name(_) | GitCheckout::Commit { name: Some(_), .. }
        )
    }

    /// The revision Flux writes for the commit `hash` checked out this way, such as
    /// `main@sha1:<hash>`, `v1.2.3@sha1:<hash>`, `refs/pull/1/head@sha1:<hash>` or
    /// `sha1:<hash>`. For a SemVer range, `resolved_tag` is the tag it resolved to.
    pub fn revision(&self, hash: &str, resolved_tag: Option<&str>) -> String {
        let reference = self.reference(resolved_tag);
        if self.reports_full_name() {
            git_absolute_revision(reference.as_deref(), hash)
        } else {
            git_revision(reference.as_deref(), hash)
        }
    }
}

/// `<algorithm>:<hash>` for a commit hash: `sha1` for a 40-character hash, and `<unknown>`
/// otherwise (as Flux writes it), or an empty string for an empty hash.
pub fn git_hash_digest(hash: &str) -> String {
    if hash.is_empty() {
        return String::new();
    }
    let algorithm = if hash.len() == 40 {
        "sha1"
    } else {
        "<unknown>"
    };
    format!("{algorithm}:{hash}")
}

/// The revision of a commit under a full reference, in Flux's short form: the reference
/// without its first two components (`refs/heads/main` gives `main`, `refs/tags/v1` gives
/// `v1`), then `@` and [`git_hash_digest`]. Without a reference (or with one of fewer than
/// three components), only the digest.
pub fn git_revision(reference: Option<&str>, hash: &str) -> String {
    match reference.and_then(|r| r.splitn(3, '/').nth(2)) {
        Some(short) => format!("{short}@{}", git_hash_digest(hash)),
        None => git_hash_digest(hash),
    }
}

/// The revision of a commit under a full reference, with the reference kept whole
/// (`refs/pull/1/head@sha1:<hash>`); only the digest without a reference.
pub fn git_absolute_revision(reference: Option<&str>, hash: &str) -> String {
    match reference.filter(|r| !r.is_empty()) {
        Some(reference) => format!("{reference}@{}", git_hash_digest(hash)),
        None => git_hash_digest(hash),
    }
}

/// The commit hash in a revision, whatever form Flux wrote it in: `main@sha1:<hash>`,
/// `sha1:<hash>`, the legacy `main/<hash>`, or a bare hash.
pub fn git_hash_from_revision(revision: &str) -> &str {
    let after_ref = revision.rsplit_once('@').map_or(revision, |(_, r)| r);
    if let Some((_, hash)) = after_ref.split_once(':') {
        return hash;
    }
    after_ref.rsplit_once('/').map_or(after_ref, |(_, h)| h)
}

/// What to verify (`spec.verify.mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum GitVerificationMode {
    /// The old spelling of `HEAD`, still accepted.
    #[serde(rename = "head")]
    LegacyHead,
    /// The commit that HEAD points to after the checkout.
    #[default]
    #[serde(rename = "HEAD")]
    Head,
    /// The tag object named by `spec.ref` (tag, semver or name).
    Tag,
    /// The tag object and the commit it points to.
    #[serde(rename = "TagAndHEAD")]
    TagAndHead,
}

impl GitVerificationMode {
    /// The mode with the legacy spelling folded into `HEAD`.
    pub fn normalized(self) -> Self {
        match self {
            GitVerificationMode::LegacyHead => GitVerificationMode::Head,
            other => other,
        }
    }

    /// How Flux writes the mode in `status.sourceVerificationMode`.
    pub fn as_str(self) -> &'static str {
        match self {
            GitVerificationMode::LegacyHead => "head",
            GitVerificationMode::Head => "HEAD",
            GitVerificationMode::Tag => "Tag",
            GitVerificationMode::TagAndHead => "TagAndHEAD",
        }
    }
}

/// Signature verification of a GitRepository (`spec.verify`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryVerification {
    /// Which Git objects to verify: `HEAD` (the default), `Tag` or `TagAndHEAD`.
    #[serde(default)]
    pub mode: GitVerificationMode,

    /// Secret with the trusted public keys: PGP keys under keys ending in `.asc`, SSH keys
    /// under keys ending in `.sshpub`.
    pub secret_ref: LocalObjectReference,
}

impl GitRepositoryVerification {
    /// The mode, with `head` read as `HEAD`.
    pub fn mode(&self) -> GitVerificationMode {
        self.mode.normalized()
    }

    /// Whether the checked-out commit must be verified.
    pub fn verify_head(&self) -> bool {
        matches!(
            self.mode(),
            GitVerificationMode::Head | GitVerificationMode::TagAndHead
        )
    }

    /// Whether the tag object must be verified.
    pub fn verify_tag(&self) -> bool {
        matches!(
            self.mode(),
            GitVerificationMode::Tag | GitVerificationMode::TagAndHead
        )
    }
}

/// The observed state of a GitRepository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct GitRepositoryStatus {
    /// The last generation reconciled to the end (-1 before the first one).
    #[serde(default = "never_observed")]
    #[schemars(transform = without_default)]
    pub observed_generation: i64,

    /// `Ready`, `Reconciling`, `Stalled`, `ArtifactInStorage`, `SourceVerified` and the
    /// negative-polarity `FetchFailed`, `ArtifactOutdated`, `IncludeUnavailable`,
    /// `StorageOperationFailed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The artifact of the last successful reconcile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// The artifacts of `spec.include` that went into the artifact, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub included_artifacts: Vec<Artifact>,

    /// The exclusion patterns (`spec.ignore`) the artifact was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// Whether submodules were cloned for the artifact.
    #[serde(default, skip_serializing_if = "is_false")]
    pub observed_recurse_submodules: bool,

    /// The `spec.include` list the artifact was built with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_include: Vec<GitRepositoryInclude>,

    /// The `spec.sparseCheckout` directories the artifact was built with.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observed_sparse_checkout: Vec<String>,

    /// Which Git objects were verified for the artifact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub source_verification_mode: Option<GitVerificationMode>,

    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for GitRepositoryStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            artifact: None,
            included_artifacts: Vec::new(),
            observed_ignore: None,
            observed_recurse_submodules: false,
            observed_include: Vec::new(),
            observed_sparse_checkout: Vec::new(),
            source_verification_mode: None,
            last_handled_reconcile_at: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(GitRepositoryStatus);

impl GitRepositorySpec {
    /// What to check out (see [`GitRepositoryRef::effective`]); the `master` branch without
    /// `spec.ref`.
    pub fn checkout(&self) -> GitCheckout {
        self.reference.as_ref().map_or_else(
            || GitRepositoryRef::default().effective(),
            GitRepositoryRef::effective,
        )
    }

    /// The time limit of remote operations: `spec.timeout`, or 60 seconds.
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_duration())
    }

    /// The credentials provider: `spec.provider`, or `generic`.
    pub fn provider(&self) -> GitProvider {
        self.provider.unwrap_or_default()
    }
}

impl GitRepository {
    /// The CustomResourceDefinition as committed in `config/crd/bases/`, aligned with Flux's.
    pub fn flux_crd() -> CustomResourceDefinition {
        toolkit_sdk::api::crd::finish(Self::crd())
    }

    /// The artifact of the last successful reconcile, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl FluxObject for GitRepository {
    type Status = GitRepositoryStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        self.spec.interval.as_duration()
    }

    fn status(&self) -> Option<&GitRepositoryStatus> {
        self.status.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const HASH: &str = "5394cb7f48332b2de7c17dd8b8384bbc84b7e738";

    fn reference(value: serde_json::Value) -> GitRepositoryRef {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn effective_reference_follows_flux_precedence() {
        let commit = |branch: Option<&str>, name: Option<&str>| GitCheckout::Commit {
            commit: "abc".into(),
            branch: branch.map(Into::into),
            name: name.map(Into::into),
        };
        let cases = [
            (json!({}), GitCheckout::Branch("master".into())),
            (json!({"branch": ""}), GitCheckout::Branch("master".into())),
            (
                json!({"branch": "main"}),
                GitCheckout::Branch("main".into()),
            ),
            (
                json!({"branch": "main", "tag": "v1"}),
                GitCheckout::Tag("v1".into()),
            ),
            (
                json!({"branch": "main", "tag": "v1", "semver": ">=1.0"}),
                GitCheckout::SemVer(">=1.0".into()),
            ),
            (
                json!({"tag": "v1", "semver": ">=1.0", "name": "refs/pull/1/head"}),
                GitCheckout::Name("refs/pull/1/head".into()),
            ),
            (
                json!({"tag": "v1", "semver": ">=1.0", "commit": "abc"}),
                commit(None, None),
            ),
            (
                json!({"branch": "main", "commit": "abc"}),
                commit(Some("main"), None),
            ),
            (
                json!({"branch": "main", "name": "refs/tags/v1", "commit": "abc"}),
                commit(Some("main"), Some("refs/tags/v1")),
            ),
            (
                json!({"tag": "", "semver": "", "name": "", "commit": ""}),
                GitCheckout::Branch("master".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(reference(input.clone()).effective(), want, "{input}");
        }
    }

    #[test]
    fn spec_without_ref_checks_out_master() {
        let spec: GitRepositorySpec =
            serde_json::from_value(json!({"url": "https://example.com/r", "interval": "1m"}))
                .unwrap();
        assert_eq!(spec.checkout(), GitCheckout::Branch("master".into()));
        assert_eq!(spec.timeout(), Duration::from_secs(60));
        assert_eq!(spec.provider(), GitProvider::Generic);
    }

    #[test]
    fn revisions_are_written_as_flux_writes_them() {
        let long = "a".repeat(64);
        let cases: Vec<(serde_json::Value, Option<&str>, &str, String)> = vec![
            (json!({}), None, HASH, format!("master@sha1:{HASH}")),
            (
                json!({"branch": "main"}),
                None,
                HASH,
                format!("main@sha1:{HASH}"),
            ),
            (
                json!({"branch": "feature/x"}),
                None,
                HASH,
                format!("feature/x@sha1:{HASH}"),
            ),
            (
                json!({"tag": "v1.2.3"}),
                None,
                HASH,
                format!("v1.2.3@sha1:{HASH}"),
            ),
            (
                json!({"semver": ">=1.0.0"}),
                Some("v1.2.3"),
                HASH,
                format!("v1.2.3@sha1:{HASH}"),
            ),
            (
                json!({"name": "refs/pull/1/head"}),
                None,
                HASH,
                format!("refs/pull/1/head@sha1:{HASH}"),
            ),
            (
                json!({"name": "refs/heads/main"}),
                None,
                HASH,
                format!("refs/heads/main@sha1:{HASH}"),
            ),
            (json!({"commit": HASH}), None, HASH, format!("sha1:{HASH}")),
            (
                json!({"tag": "v1", "commit": HASH}),
                None,
                HASH,
                format!("sha1:{HASH}"),
            ),
            (
                json!({"branch": "main", "commit": HASH}),
                None,
                HASH,
                format!("main@sha1:{HASH}"),
            ),
            (
                json!({"branch": "main", "name": "refs/tags/v1", "commit": HASH}),
                None,
                HASH,
                format!("refs/tags/v1@sha1:{HASH}"),
            ),
            (
                json!({"branch": "main"}),
                None,
                long.as_str(),
                format!("main@<unknown>:{long}"),
            ),
        ];
        for (input, resolved_tag, hash, want) in cases {
            let got = reference(input.clone())
                .effective()
                .revision(hash, resolved_tag);
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn revision_building_blocks() {
        assert_eq!(git_hash_digest(""), "");
        assert_eq!(git_hash_digest(HASH), format!("sha1:{HASH}"));
        assert_eq!(git_revision(None, HASH), format!("sha1:{HASH}"));
        assert_eq!(git_revision(Some("main"), HASH), format!("sha1:{HASH}"));
        assert_eq!(
            git_revision(Some("refs/pull/1/head"), HASH),
            format!("1/head@sha1:{HASH}")
        );
        assert_eq!(
            git_absolute_revision(Some(""), HASH),
            format!("sha1:{HASH}")
        );
        assert_eq!(
            git_absolute_revision(Some("refs/heads/main"), HASH),
            format!("refs/heads/main@sha1:{HASH}")
        );
    }

    #[test]
    fn hash_is_found_in_every_revision_form() {
        for revision in [
            format!("main@sha1:{HASH}"),
            format!("refs/pull/1/head@sha1:{HASH}"),
            format!("sha1:{HASH}"),
            format!("main/{HASH}"),
            format!("feature/x/{HASH}"),
            HASH.to_owned(),
        ] {
            assert_eq!(git_hash_from_revision(&revision), HASH, "{revision}");
        }
    }

    #[test]
    fn include_paths_default_to_root_and_repository_name() {
        let include: GitRepositoryInclude =
            serde_json::from_value(json!({"repository": {"name": "shared"}})).unwrap();
        assert_eq!(include.from_path(), "");
        assert_eq!(include.to_path(), "shared");
        let include: GitRepositoryInclude = serde_json::from_value(
            json!({"repository": {"name": "shared"}, "fromPath": "deploy", "toPath": "vendor/shared"}),
        )
        .unwrap();
        assert_eq!(include.from_path(), "deploy");
        assert_eq!(include.to_path(), "vendor/shared");
    }

    #[test]
    fn verification_mode_reads_legacy_head_as_head() {
        let cases = [
            (
                json!({"secretRef": {"name": "k"}}),
                GitVerificationMode::Head,
                true,
                false,
            ),
            (
                json!({"mode": "head", "secretRef": {"name": "k"}}),
                GitVerificationMode::Head,
                true,
                false,
            ),
            (
                json!({"mode": "HEAD", "secretRef": {"name": "k"}}),
                GitVerificationMode::Head,
                true,
                false,
            ),
            (
                json!({"mode": "Tag", "secretRef": {"name": "k"}}),
                GitVerificationMode::Tag,
                false,
                true,
            ),
            (
                json!({"mode": "TagAndHEAD", "secretRef": {"name": "k"}}),
                GitVerificationMode::TagAndHead,
                true,
                true,
            ),
        ];
        for (input, mode, head, tag) in cases {
            let v: GitRepositoryVerification = serde_json::from_value(input.clone()).unwrap();
            assert_eq!(v.mode(), mode, "{input}");
            assert_eq!((v.verify_head(), v.verify_tag()), (head, tag), "{input}");
        }
        assert!(
            serde_json::from_value::<GitRepositoryVerification>(
                json!({"mode": "tag", "secretRef": {"name": "k"}})
            )
            .is_err()
        );
        assert_eq!(GitVerificationMode::TagAndHead.as_str(), "TagAndHEAD");
    }

    #[test]
    fn full_object_round_trips_with_flux_field_names() {
        let object = json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {
                "url": "ssh://git@github.com/org/repo",
                "secretRef": {"name": "ssh"},
                "provider": "github",
                "interval": "5m0s",
                "timeout": "1m30s",
                "ref": {"branch": "main"},
                "verify": {"mode": "TagAndHEAD", "secretRef": {"name": "keys"}},
                "proxySecretRef": {"name": "proxy"},
                "ignore": "/*\n!/deploy\n",
                "suspend": true,
                "recurseSubmodules": true,
                "include": [{"repository": {"name": "shared"}, "toPath": "shared"}],
                "sparseCheckout": ["deploy"]
            },
            "status": {
                "observedGeneration": 3,
                "artifact": {
                    "path": "gitrepository/flux-system/podinfo/abc.tar.gz",
                    "url": "http://source-controller./gitrepository/flux-system/podinfo/abc.tar.gz",
                    "revision": format!("main@sha1:{HASH}"),
                    "digest": "sha256:0000",
                    "lastUpdateTime": "2026-01-02T03:04:05Z"
                },
                "observedIgnore": "/*\n!/deploy\n",
                "observedRecurseSubmodules": true,
                "observedInclude": [{"repository": {"name": "shared"}, "toPath": "shared"}],
                "observedSparseCheckout": ["deploy"],
                "sourceVerificationMode": "TagAndHEAD",
                "lastHandledReconcileAt": "2026-01-02T03:04:05Z"
            }
        });
        let repo: GitRepository = serde_json::from_value(object.clone()).unwrap();
        assert!(repo.suspended());
        assert_eq!(repo.interval(), Duration::from_secs(300));
        assert_eq!(repo.spec.timeout(), Duration::from_secs(90));
        assert_eq!(
            repo.status.as_ref().unwrap().source_verification_mode,
            Some(GitVerificationMode::TagAndHead)
        );
        assert_eq!(serde_json::to_value(&repo).unwrap(), object);
    }

    #[test]
    fn status_defaults_to_never_observed() {
        let status: GitRepositoryStatus = serde_json::from_value(json!({})).unwrap();
        assert_eq!(status, GitRepositoryStatus::default());
        assert_eq!(status.observed_generation, -1);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            json!({"observedGeneration": -1})
        );
    }
}
