//! The OCIRepository reconciler: resolve the reference first, pull only what changed, store
//! one layer as the artifact.
//!
//! The steps, in order (the first error ends the reconcile, with the previous artifact still
//! served):
//!
//! 1. **Storage.** The recorded artifact must be on disk and match its digest, else it is
//!    dropped from the status and rebuilt. Its URLs are refreshed and old artifacts are
//!    garbage collected.
//! 2. **Credentials.** `spec.secretRef` (docker config JSON) → `AuthenticationFailed`.
//! 3. **Resolve.** `spec.ref` (digest > semver > tag, default `latest`) → the revision
//!    `<tag>@sha256:<digest>`, with one request for a tag. Errors: `URLInvalid` (stalled),
//!    `ReadOperationFailed`, `OCIArtifactPullFailed`, on `FetchFailed`.
//! 4. **No change.** Same revision as the stored artifact, same `ignore` and
//!    `layerSelector` as observed: done, nothing is pulled or written.
//! 5. **Pull** the selected layer (`OCIArtifactPullFailed`,
//!    `OCIArtifactLayerOperationFailed`), extracting it (`extract`) or keeping it as it is
//!    (`copy`).
//! 6. **Store**: an extracted layer is archived with `spec.ignore`, `.sourceignore` files and
//!    Flux's default exclusions; the manifest's annotations become `artifact.metadata`;
//!    `status.url` points at `latest.tar.gz`. Errors: `ArchiveOperationFailed` on
//!    `StorageOperationFailed`.
//! 7. **Announce** a new artifact with a `NewArtifact` event (the revision and digest as
//!    metadata), the only event of the reconcile.
//!
//! # Caveats
//!
//! Signature verification (`spec.verify`), cloud providers (`spec.provider` other than
//! `generic`, `spec.serviceAccountName`), `spec.certSecretRef` and `spec.proxySecretRef`
//! are not supported yet: an object that sets them is stalled with a message saying so,
//! rather than served without what it asked for.

use std::sync::Arc;

use kube::{Resource, ResourceExt};
use toolkit_sdk::conditions::{self, reasons, types};
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use super::common::{self, Shared, Stored};
use crate::api::v1::{
    OciLayerOperation, OciLayerSelector, OciProvider, OciRepository, OciRepositoryStatus,
};
use crate::oci::{self, OciAuth, OciError, OciOptions, OciUrl};

/// The kind, as stored (`ocirepository/<ns>/<name>/...`) and reported.
const KIND: &str = "OCIRepository";

/// The name of the symlink to the current artifact, behind `status.url`.
const LATEST: &str = "latest.tar.gz";

/// Reconciles OCIRepositories into artifacts.
#[derive(Debug, Clone)]
pub struct OciRepositoryReconciler {
    shared: Arc<Shared>,
}

impl OciRepositoryReconciler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Reconciler for OciRepositoryReconciler {
    type Object = OciRepository;

    const NEGATIVE_POLARITY: &'static [&'static str] = &types::SOURCE_NEGATIVE_POLARITY;

    async fn reconcile(
        &self,
        obj: &OciRepository,
        status: &mut OciRepositoryStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        let namespace = obj.namespace().unwrap_or_default();
        let key = Shared::key(KIND, &namespace, &obj.name_any())?;
        let stamp = common::stamp(obj.meta().generation);
        let object_ref = obj.object_ref(&());
        let spec = &obj.spec;
        let previous = status.artifact.clone();

        // 1. Storage.
        let stored = self
            .shared
            .check_stored(
                &key,
                &mut status.artifact,
                &mut status.conditions,
                &object_ref,
                ctx,
            )
            .await;
        match stored {
            Stored::Present => {
                let link = key.dir() + "/" + LATEST;
                if status.url.is_some() {
                    status.url = Some(self.shared.storage().artifact_url(&link));
                }
            }
            Stored::None | Stored::Disappeared => status.url = None,
        }

        // 2. Credentials.
        check_supported(obj, &mut status.conditions, &stamp)?;
        let url =
            OciUrl::parse(&spec.url).map_err(|err| fetch_failed(err, &spec.url, RESOLVING))?;
        let auth = match &spec.secret_ref {
            Some(secret_ref) => {
                let secret = common::get_secret(ctx.client(), &namespace, &secret_ref.name).await?;
                OciAuth::from_secret(&secret.data.unwrap_or_default(), url.registry()).map_err(
                    |err| {
                        ReconcileError::transient(
                            reasons::AUTHENTICATION_FAILED,
                            "failed to get credential",
                        )
                        .with_source(err)
                        .on_condition(types::FETCH_FAILED)
                    },
                )?
            }
            None => OciAuth::Anonymous,
        };

        // 3. Resolve.
        let options = OciOptions::new(spec.insecure, spec.timeout());
        let resolved = oci::resolve(&spec.url, &spec.selection(), &auth, &options)
            .await
            .map_err(|err| fetch_failed(err, &spec.url, RESOLVING))?;
        ctx.set_revision(&resolved.revision);

        // 4. No change.
        if let Some(current) = &status.artifact
            && current.has_revision(&resolved.revision)
            && !content_config_changed(obj, status)
        {
            let message = stored_message(&current.revision);
            conditions::mark_true(
                &mut status.conditions,
                &stamp,
                types::ARTIFACT_IN_STORAGE,
                reasons::SUCCEEDED,
                &message,
            );
            tracing::debug!(revision = %current.revision, "artifact up-to-date with remote revision");
            return Ok(Outcome::ready(message));
        }

        // 5. Pull.
        let work = tempfile::Builder::new()
            .prefix("ocirepository-")
            .tempdir()
            .map_err(|err| {
                ReconcileError::transient(
                    reasons::DIRECTORY_CREATION_FAILED,
                    "failed to create temporary working directory",
                )
                .with_source(err)
                .on_condition(types::STORAGE_OPERATION_FAILED)
            })?;
        let operation = spec.layer_operation();
        let dest = work.path().join(match operation {
            OciLayerOperation::Extract => "content",
            OciLayerOperation::Copy => "layer.tgz",
        });
        let selector = spec.layer_selector.clone().unwrap_or_default();
        let pulled = oci::pull(
            &spec.url,
            &resolved,
            &auth,
            &options,
            &selector,
            &dest,
            &self.shared.fetch_limits(),
        )
        .await
        .map_err(|err| fetch_failed(err, &spec.url, PULLING))?;

        // 6. Store.
        let file_name = format!("{}.tar.gz", digest_of(&resolved.revision));
        let mut artifact = match operation {
            OciLayerOperation::Extract => {
                self.shared
                    .archive_and_store(
                        &key,
                        pulled.path.clone(),
                        spec.ignore.clone(),
                        file_name,
                        resolved.revision.clone(),
                    )
                    .await?
            }
            OciLayerOperation::Copy => {
                let staged = self.shared.stage_file(&key, pulled.path.clone()).await?;
                self.shared
                    .store(&key, staged, file_name, resolved.revision.clone())
                    .await?
            }
        };
        if !pulled.metadata.is_empty() {
            artifact.metadata = Some(pulled.metadata.clone());
        }
        status.url = self.shared.symlink(&key, &artifact, LATEST).await;
        status.observed_ignore = spec.ignore.clone();
        status.observed_layer_selector = spec.layer_selector.clone();
        let message = stored_message(&artifact.revision);
        conditions::mark_true(
            &mut status.conditions,
            &stamp,
            types::ARTIFACT_IN_STORAGE,
            reasons::SUCCEEDED,
            &message,
        );

        // 7. Announce.
        let digest = artifact.digest.clone().unwrap_or_default();
        let outcome = if previous.as_ref().is_some_and(|p| p.has_digest(&digest)) {
            Outcome::ready(message)
        } else {
            common::new_artifact(message, &event_message(obj, &artifact), &artifact)
        };
        status.artifact = Some(artifact);
        Ok(outcome)
    }

    async fn cleanup(&self, obj: &OciRepository, _ctx: &Context) -> Result<(), ReconcileError> {
        let key = Shared::key(KIND, &obj.namespace().unwrap_or_default(), &obj.name_any())?;
        self.shared.remove_all(&key).await
    }
}

/// Flux's `Ready` / `ArtifactInStorage` message for an OCI artifact.
fn stored_message(revision: &str) -> String {
    format!("stored artifact for digest '{revision}'")
}

/// Flux's `NewArtifact` message, with the origin source and revision when the artifact's
/// annotations name them.
fn event_message(obj: &OciRepository, artifact: &toolkit_sdk::api::Artifact) -> String {
    let mut message = format!(
        "stored artifact with revision '{}' from '{}'",
        artifact.revision, obj.spec.url
    );
    if let Some(metadata) = &artifact.metadata
        && let (Some(source), Some(revision)) = (
            metadata.get(ANNOTATION_SOURCE),
            metadata.get(ANNOTATION_REVISION),
        )
    {
        message.push_str(&format!(
            ", origin source '{source}', origin revision '{revision}'"
        ));
    }
    message
}

/// The OCI annotation naming the source an artifact was built from.
const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// The OCI annotation naming the source revision an artifact was built from.
const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";

/// The digest part of a revision (`latest@sha256:abc` → `sha256:abc`).
fn digest_of(revision: &str) -> &str {
    revision
        .rsplit_once('@')
        .map_or(revision, |(_, digest)| digest)
}

/// Whether the stored artifact was built with other content settings than the spec's.
fn content_config_changed(obj: &OciRepository, status: &OciRepositoryStatus) -> bool {
    obj.spec.ignore != status.observed_ignore
        || !layer_selector_equal(
            obj.spec.layer_selector.as_ref(),
            status.observed_layer_selector.as_ref(),
        )
}

/// Layer selectors are equal when they pick the same layer the same way (an absent
/// selector and an empty one are the same).
fn layer_selector_equal(a: Option<&OciLayerSelector>, b: Option<&OciLayerSelector>) -> bool {
    let media_type = |s: Option<&OciLayerSelector>| {
        s.and_then(|s| s.media_type.clone())
            .filter(|m| !m.is_empty())
    };
    let operation =
        |s: Option<&OciLayerSelector>| s.map(OciLayerSelector::operation).unwrap_or_default();
    media_type(a) == media_type(b) && operation(a) == operation(b)
}

/// Resolving `spec.ref` (step 3).
const RESOLVING: bool = true;
/// Pulling the layer (step 5).
const PULLING: bool = false;

/// An [`OciError`] as the reconcile error Flux reports for it, on `FetchFailed`.
fn fetch_failed(err: OciError, url: &str, resolving: bool) -> ReconcileError {
    let url = crate::oci::redact_url(url);
    let reason = err.reason();
    let message = match reason {
        reasons::URL_INVALID => format!("URL validation failed for '{url}'"),
        reasons::READ_OPERATION_FAILED => {
            format!("failed to determine the artifact tag for '{url}'")
        }
        reasons::OCI_ARTIFACT_LAYER_OPERATION_FAILED => {
            "failed to extract layer contents from artifact".to_owned()
        }
        reasons::AUTHENTICATION_FAILED => "failed to get credential".to_owned(),
        _ if resolving => "failed to determine artifact digest".to_owned(),
        _ => format!("failed to pull artifact from '{url}'"),
    };
    let error = if err.is_spec_error() {
        ReconcileError::stalled(reason, message)
    } else {
        ReconcileError::transient(reason, message)
    };
    error.with_source(err).on_condition(types::FETCH_FAILED)
}

/// Stalls objects that ask for what this controller cannot do yet, rather than serving
/// content without it.
fn check_supported(
    obj: &OciRepository,
    conditions: &mut Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    stamp: &toolkit_sdk::conditions::Stamp,
) -> Result<(), ReconcileError> {
    let spec = &obj.spec;
    if let Some(verify) = &spec.verify {
        let provider = serde_json::to_value(verify.provider)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let message = format!(
            "failed to verify the signature using provider '{provider}': signature verification is not supported yet"
        );
        conditions::mark_false(
            conditions,
            stamp,
            types::SOURCE_VERIFIED,
            reasons::VERIFICATION_ERROR,
            &message,
        );
        return Err(ReconcileError::stalled(
            reasons::VERIFICATION_ERROR,
            message,
        ));
    }
    conditions::delete(conditions, types::SOURCE_VERIFIED);
    let unsupported = if spec.provider != OciProvider::Generic {
        Some("spec.provider other than 'generic'")
    } else if spec.service_account_name.is_some() {
        Some("spec.serviceAccountName")
    } else if spec.cert_secret_ref.is_some() {
        Some("spec.certSecretRef")
    } else if spec.proxy_secret_ref.is_some() {
        Some("spec.proxySecretRef")
    } else {
        None
    };
    match unsupported {
        Some(field) => Err(ReconcileError::stalled(
            reasons::AUTHENTICATION_FAILED,
            format!("{field} is not supported yet; use spec.secretRef with a docker config JSON"),
        )
        .on_condition(types::FETCH_FAILED)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_the_part_after_the_tag() {
        assert_eq!(digest_of("latest@sha256:abc"), "sha256:abc");
        assert_eq!(digest_of("sha256:abc"), "sha256:abc");
        assert_eq!(digest_of("v1.0.0@sha256:abc"), "sha256:abc");
    }

    #[test]
    fn absent_and_default_layer_selectors_are_equal() {
        let extract = OciLayerSelector {
            media_type: None,
            operation: Some(OciLayerOperation::Extract),
        };
        let copy = OciLayerSelector {
            media_type: None,
            operation: Some(OciLayerOperation::Copy),
        };
        let typed = OciLayerSelector {
            media_type: Some("application/vnd.cncf.flux.content.v1.tar+gzip".into()),
            operation: None,
        };
        assert!(layer_selector_equal(None, None));
        assert!(layer_selector_equal(
            None,
            Some(&OciLayerSelector::default())
        ));
        assert!(layer_selector_equal(None, Some(&extract)));
        assert!(!layer_selector_equal(None, Some(&copy)));
        assert!(!layer_selector_equal(Some(&typed), None));
        assert!(layer_selector_equal(Some(&typed), Some(&typed.clone())));
    }
}
