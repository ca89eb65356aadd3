//! The `OCIRepository` kind: an OCI artifact in a container registry turned into an artifact.
//!
//! ```yaml
//! apiVersion: source.toolkit.fluxcd.io/v1
//! kind: OCIRepository
//! metadata:
//!   name: podinfo
//! spec:
//!   url: oci://ghcr.io/stefanprodan/manifests/podinfo
//!   interval: 5m
//!   ref:
//!     semver: ">=6.0.0"
//! ```

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, CustomResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use toolkit_sdk::api::{Artifact, GoDuration, LocalObjectReference};
use toolkit_sdk::runtime::FluxObject;

use super::shared::{DEFAULT_TIMEOUT, is_false, never_observed, require_property, without_default};

/// The scheme every `spec.url` starts with.
pub const OCI_URL_PREFIX: &str = "oci://";

/// The tag pulled when `spec.ref` names nothing else.
pub const DEFAULT_TAG: &str = "latest";

/// The desired state of an OCIRepository: where the artifact is, which version to follow, and
/// which layer becomes the artifact.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "OCIRepository",
    root = "OciRepository",
    namespaced,
    status = "OciRepositoryStatus",
    shortname = "ocirepo",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-sources",
    doc = "An OCIRepository follows an OCI artifact in a container registry and publishes one of its layers as an artifact.",
    printcolumn = r#"{"name":"URL","type":"string","jsonPath":".spec.url"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct OciRepositorySpec {
    /// The repository in the registry, such as `oci://ghcr.io/org/manifests/app`.
    #[schemars(pattern(r"^oci://.*$"))]
    pub url: String,

    /// The version to pull; the `latest` tag when unset.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub reference: Option<OciRepositoryRef>,

    /// Which layer of the artifact to use; the first layer when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_selector: Option<OciLayerSelector>,

    /// Who provides the registry credentials: `generic` (the default: `secretRef` or the
    /// ServiceAccount's pull secrets), or the workload identity of `aws`, `azure` or `gcp`.
    #[serde(default)]
    pub provider: OciProvider,

    /// Secret of type `kubernetes.io/dockerconfigjson` with the registry credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// Verify the signature of the artifact before using it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<OciRepositoryVerification>,

    /// ServiceAccount whose image pull secrets authenticate to the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Secret (`Opaque` or `kubernetes.io/tls`) with a client certificate (`tls.crt`,
    /// `tls.key`) and/or a CA certificate (`ca.crt`) for the registry connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_secret_ref: Option<LocalObjectReference>,

    /// Secret with the proxy (`address`, optional `username` and `password`) for the registry
    /// connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_secret_ref: Option<LocalObjectReference>,

    /// How often the registry is checked for a new version (approximately: the controller may
    /// add jitter).
    pub interval: GoDuration,

    /// Time limit of remote operations such as a pull; `60s` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(\.[0-9]+)?(ms|s|m))+$"), extend("default" = "60s"))]
    pub timeout: Option<GoDuration>,

    /// Exclusion patterns in `.gitignore` format; they replace the default exclusions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<String>,

    /// Talk to the registry over plain HTTP.
    #[serde(default, skip_serializing_if = "is_false")]
    pub insecure: bool,

    /// Stop reconciling this object; the last artifact stays served.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspend: bool,
}

/// The version of an OCI artifact to pull (`spec.ref`). When several fields are set, the
/// precedence is `digest` > `semver` > `tag`; see [`OciRepositoryRef::effective`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciRepositoryRef {
    /// Manifest digest to pull, as `sha256:<hex>`; takes precedence over `semver` and `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,

    /// SemVer range; the highest matching tag is pulled. Takes precedence over `tag`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver: Option<String>,

    /// Regular expression that tags must match to be considered by `semver`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub semver_filter: Option<String>,

    /// Tag to pull; `latest` when nothing else is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// What an OCIRepository pulls, once Flux's precedence rules are applied to `spec.ref`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum OciSelection {
    /// A manifest digest (`sha256:<hex>`).
    Digest(String),
    /// The highest tag within a SemVer range, among the tags matching `filter` if set.
    SemVer {
        /// The SemVer range.
        range: String,
        /// `spec.ref.semverFilter`, if set.
        filter: Option<String>,
    },
    /// A tag.
    Tag(String),
}

/// A field of `spec.ref` that is set: present and not empty.
fn set(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|v| !v.is_empty())
}

impl OciRepositoryRef {
    /// What to pull: `digest` > `semver` (with `semverFilter`) > `tag`, and the `latest` tag
    /// when none is set. Empty strings count as unset.
    pub fn effective(&self) -> OciSelection {
        if let Some(digest) = set(&self.digest) {
            return OciSelection::Digest(digest.to_owned());
        }
        if let Some(range) = set(&self.semver) {
            return OciSelection::SemVer {
                range: range.to_owned(),
                filter: set(&self.semver_filter).map(str::to_owned),
            };
        }
        OciSelection::Tag(set(&self.tag).unwrap_or(DEFAULT_TAG).to_owned())
    }
}

impl OciSelection {
    /// The revision Flux writes for the manifest `digest` pulled this way:
    /// `<tag>@sha256:<hex>` for a tag (for a SemVer range, `resolved_tag` is the tag it
    /// resolved to), and the bare digest when pulled by digest.
    pub fn revision(&self, digest: &str, resolved_tag: Option<&str>) -> String {
        match self {
            OciSelection::Digest(_) => oci_revision(None, digest),
            OciSelection::SemVer { .. } => oci_revision(resolved_tag, digest),
            OciSelection::Tag(tag) => oci_revision(Some(tag), digest),
        }
    }
}

/// `<tag>@<digest>`, or the digest alone without a tag.
pub fn oci_revision(tag: Option<&str>, digest: &str) -> String {
    match tag.filter(|t| !t.is_empty()) {
        Some(tag) => format!("{tag}@{digest}"),
        None => digest.to_owned(),
    }
}

/// Who provides the credentials of an OCIRepository (`spec.provider`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OciProvider {
    /// Static credentials: `secretRef`, or the ServiceAccount's pull secrets.
    #[default]
    Generic,
    /// Amazon ECR with workload identity.
    Aws,
    /// Azure Container Registry with workload identity.
    Azure,
    /// Google Artifact Registry with workload identity.
    Gcp,
}

/// Which layer of the artifact to use, and how (`spec.layerSelector`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OciLayerSelector {
    /// Media type of the layer; the first layer of this type is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,

    /// What to do with the layer: `extract` its tarball (the default) or `copy` the
    /// compressed layer as it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OciLayerOperation>,
}

/// What to do with the selected layer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OciLayerOperation {
    /// Unpack the layer's tarball into the artifact.
    #[default]
    Extract,
    /// Store the compressed layer as the artifact, unchanged.
    Copy,
}

impl OciLayerSelector {
    /// The operation: `operation`, or `extract`.
    pub fn operation(&self) -> OciLayerOperation {
        self.operation.unwrap_or_default()
    }
}

/// Signature verification of an OCIRepository (`spec.verify`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = provider_required)]
pub struct OciRepositoryVerification {
    /// The signing technology: `cosign` (the default) or `notation`.
    #[serde(default)]
    pub provider: OciVerificationProvider,

    /// Secret with the trusted public keys (or Notation trust policy and certificates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,

    /// For Cosign keyless signatures: the accepted identities (regular expressions for the
    /// OIDC issuer and subject of the signing certificate); any match is enough.
    #[serde(
        default,
        rename = "matchOIDCIdentity",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_oidc_identity: Vec<OidcIdentityMatch>,

    /// Secret with a Sigstore `trusted_root.json`, to verify against self-hosted Sigstore
    /// infrastructure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted_root_secret_ref: Option<LocalObjectReference>,
}

/// Flux lists `provider` as required even though it has a default (the API server fills it in
/// before validating, so leaving it out is still accepted).
fn provider_required(schema: &mut schemars::Schema) {
    require_property(schema, "provider");
}

/// The signing technology of an OCI artifact.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OciVerificationProvider {
    /// Sigstore Cosign.
    #[default]
    Cosign,
    /// Notary Project Notation.
    Notation,
}

/// An accepted identity of a Cosign keyless signature.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcIdentityMatch {
    /// Regular expression the certificate's OIDC issuer must match.
    pub issuer: String,

    /// Regular expression the certificate's identity subject must match.
    pub subject: String,
}

/// The observed state of an OCIRepository.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = {"observedGeneration": -1}))]
pub struct OciRepositoryStatus {
    /// The last generation reconciled to the end (-1 before the first one).
    #[serde(default = "never_observed")]
    #[schemars(transform = without_default)]
    pub observed_generation: i64,

    /// `Ready`, `Reconciling`, `Stalled`, `ArtifactInStorage`, `SourceVerified` and the
    /// negative-polarity `FetchFailed`, `ArtifactOutdated`, `StorageOperationFailed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,

    /// The download address of the artifact (the same as `artifact.url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,

    /// The artifact of the last successful reconcile; OCI annotations of the manifest are in
    /// its `metadata`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<Artifact>,

    /// The exclusion patterns (`spec.ignore`) the artifact was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_ignore: Option<String>,

    /// The `spec.layerSelector` the artifact was built with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_layer_selector: Option<OciLayerSelector>,

    /// The last `reconcile.fluxcd.io/requestedAt` value handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl Default for OciRepositoryStatus {
    fn default() -> Self {
        Self {
            observed_generation: never_observed(),
            conditions: Vec::new(),
            url: None,
            artifact: None,
            observed_ignore: None,
            observed_layer_selector: None,
            last_handled_reconcile_at: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(OciRepositoryStatus);

impl OciRepositorySpec {
    /// What to pull (see [`OciRepositoryRef::effective`]); the `latest` tag without
    /// `spec.ref`.
    pub fn selection(&self) -> OciSelection {
        self.reference.as_ref().map_or_else(
            || OciRepositoryRef::default().effective(),
            OciRepositoryRef::effective,
        )
    }

    /// The repository without the `oci://` scheme, such as `ghcr.io/org/app`.
    pub fn repository(&self) -> &str {
        self.url.strip_prefix(OCI_URL_PREFIX).unwrap_or(&self.url)
    }

    /// The media type of the layer to use, if one is selected.
    pub fn layer_media_type(&self) -> Option<&str> {
        self.layer_selector
            .as_ref()?
            .media_type
            .as_deref()
            .filter(|m| !m.is_empty())
    }

    /// What to do with the layer: `extract` unless `spec.layerSelector.operation` says `copy`.
    pub fn layer_operation(&self) -> OciLayerOperation {
        self.layer_selector
            .as_ref()
            .map(OciLayerSelector::operation)
            .unwrap_or_default()
    }

    /// The time limit of remote operations: `spec.timeout`, or 60 seconds.
    pub fn timeout(&self) -> Duration {
        self.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_duration())
    }
}

impl OciRepository {
    /// The CustomResourceDefinition as committed in `config/crd/bases/`, aligned with Flux's.
    pub fn flux_crd() -> CustomResourceDefinition {
        toolkit_sdk::api::crd::finish(Self::crd())
    }

    /// The artifact of the last successful reconcile, if any.
    pub fn artifact(&self) -> Option<&Artifact> {
        self.status.as_ref()?.artifact.as_ref()
    }
}

impl FluxObject for OciRepository {
    type Status = OciRepositoryStatus;

    fn suspended(&self) -> bool {
        self.spec.suspend
    }

    fn interval(&self) -> Duration {
        self.spec.interval.as_duration()
    }

    fn status(&self) -> Option<&OciRepositoryStatus> {
        self.status.as_ref()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const DIGEST: &str = "sha256:6f2a9d41f1e34a5a8f3b5d8a4c0b1b6c8e2a7d9f0c1e2d3b4a5f6e7d8c9b0a1f";

    fn reference(value: serde_json::Value) -> OciRepositoryRef {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn effective_reference_follows_flux_precedence() {
        let semver = |range: &str, filter: Option<&str>| OciSelection::SemVer {
            range: range.into(),
            filter: filter.map(Into::into),
        };
        let cases = [
            (json!({}), OciSelection::Tag("latest".into())),
            (json!({"tag": ""}), OciSelection::Tag("latest".into())),
            (json!({"tag": "6.5.0"}), OciSelection::Tag("6.5.0".into())),
            (
                json!({"tag": "6.5.0", "semver": ">=6.0"}),
                semver(">=6.0", None),
            ),
            (
                json!({"semver": ">=6.0", "semverFilter": ".*-rc.*"}),
                semver(">=6.0", Some(".*-rc.*")),
            ),
            (
                json!({"semverFilter": ".*-rc.*"}),
                OciSelection::Tag("latest".into()),
            ),
            (
                json!({"digest": DIGEST, "semver": ">=6.0", "tag": "6.5.0"}),
                OciSelection::Digest(DIGEST.into()),
            ),
            (
                json!({"digest": "", "semver": "", "tag": "v1"}),
                OciSelection::Tag("v1".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(reference(input.clone()).effective(), want, "{input}");
        }
    }

    #[test]
    fn revisions_are_written_as_flux_writes_them() {
        let cases: Vec<(serde_json::Value, Option<&str>, String)> = vec![
            (json!({}), None, format!("latest@{DIGEST}")),
            (json!({"tag": "6.5.0"}), None, format!("6.5.0@{DIGEST}")),
            (
                json!({"semver": ">=6.0"}),
                Some("6.5.1"),
                format!("6.5.1@{DIGEST}"),
            ),
            (
                json!({"digest": DIGEST, "tag": "6.5.0"}),
                None,
                DIGEST.to_owned(),
            ),
        ];
        for (input, resolved_tag, want) in cases {
            let got = reference(input.clone())
                .effective()
                .revision(DIGEST, resolved_tag);
            assert_eq!(got, want, "{input}");
        }
        assert_eq!(oci_revision(Some(""), DIGEST), DIGEST);
    }

    #[test]
    fn spec_helpers_apply_flux_defaults() {
        let spec: OciRepositorySpec =
            serde_json::from_value(json!({"url": "oci://ghcr.io/org/app", "interval": "10m"}))
                .unwrap();
        assert_eq!(spec.selection(), OciSelection::Tag("latest".into()));
        assert_eq!(spec.repository(), "ghcr.io/org/app");
        assert_eq!(spec.provider, OciProvider::Generic);
        assert_eq!(spec.layer_media_type(), None);
        assert_eq!(spec.layer_operation(), OciLayerOperation::Extract);
        assert_eq!(spec.timeout(), Duration::from_secs(60));

        let spec: OciRepositorySpec = serde_json::from_value(json!({
            "url": "oci://ghcr.io/org/app",
            "interval": "10m",
            "timeout": "2m",
            "layerSelector": {"mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip", "operation": "copy"}
        }))
        .unwrap();
        assert_eq!(
            spec.layer_media_type(),
            Some("application/vnd.cncf.helm.chart.content.v1.tar+gzip")
        );
        assert_eq!(spec.layer_operation(), OciLayerOperation::Copy);
        assert_eq!(spec.timeout(), Duration::from_secs(120));
    }

    #[test]
    fn full_object_round_trips_with_flux_field_names() {
        let object = json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "OCIRepository",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {
                "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
                "ref": {"semver": ">=6.0.0", "semverFilter": ".*-rc.*"},
                "layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "operation": "extract"},
                "provider": "aws",
                "secretRef": {"name": "regcred"},
                "verify": {
                    "provider": "cosign",
                    "matchOIDCIdentity": [{"issuer": "^https://token.actions.githubusercontent.com$", "subject": "^https://github.com/org/.*$"}],
                    "trustedRootSecretRef": {"name": "sigstore-root"}
                },
                "serviceAccountName": "puller",
                "certSecretRef": {"name": "tls"},
                "proxySecretRef": {"name": "proxy"},
                "interval": "5m0s",
                "timeout": "1m0s",
                "ignore": "*.md",
                "insecure": true,
                "suspend": true
            },
            "status": {
                "observedGeneration": 2,
                "url": "http://source-controller./ocirepository/flux-system/podinfo/latest.tar.gz",
                "artifact": {
                    "path": "ocirepository/flux-system/podinfo/abc.tar.gz",
                    "url": "http://source-controller./ocirepository/flux-system/podinfo/abc.tar.gz",
                    "revision": format!("6.5.1@{DIGEST}"),
                    "digest": "sha256:0000",
                    "lastUpdateTime": "2026-01-02T03:04:05Z",
                    "metadata": {"org.opencontainers.image.revision": "main@sha1:abc"}
                },
                "observedIgnore": "*.md",
                "observedLayerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "operation": "extract"},
                "lastHandledReconcileAt": "2026-01-02T03:04:05Z"
            }
        });
        let repo: OciRepository = serde_json::from_value(object.clone()).unwrap();
        assert!(repo.suspended());
        assert_eq!(repo.interval(), Duration::from_secs(300));
        assert_eq!(
            repo.spec.verify.as_ref().unwrap().match_oidc_identity.len(),
            1
        );
        assert_eq!(serde_json::to_value(&repo).unwrap(), object);
    }

    #[test]
    fn verification_provider_defaults_to_cosign() {
        let v: OciRepositoryVerification = serde_json::from_value(json!({})).unwrap();
        assert_eq!(v.provider, OciVerificationProvider::Cosign);
        assert!(
            serde_json::from_value::<OciRepositoryVerification>(json!({"provider": "gpg"}))
                .is_err()
        );
    }
}
