//! The GitRepository reconciler: ask the remote first, clone only when something changed,
//! store the checked-out tree as the artifact.
//!
//! The steps, in order (the first error ends the reconcile, with the previous artifact still
//! served):
//!
//! 1. **Storage.** The recorded artifact must be on disk and match its digest, else it is
//!    dropped from the status and rebuilt. Its URL is refreshed and old artifacts are
//!    garbage collected.
//! 2. **Credentials.** `spec.secretRef` → `AuthenticationFailed` on `FetchFailed` when the
//!    Secret is missing or its keys cannot be used.
//! 3. **Includes.** Every `spec.include` must name a GitRepository with an artifact, else
//!    `IncludeUnavailable` (reasons `NotFound`, `NoArtifact`), retried after
//!    `--requeue-dependency`.
//! 4. **Remote.** The remote's references are listed and `spec.ref` resolved (commit, then
//!    name, semver, tag, branch; default `master`) into the revision (`master@sha1:<hash>`).
//!    Errors: `GitOperationFailed` on `FetchFailed` (`URLInvalid`, stalled, for a URL that
//!    cannot work).
//! 5. **No change.** Same revision as the stored artifact, same `ignore`,
//!    `recurseSubmodules`, `sparseCheckout`, includes (and their artifacts) as observed, and
//!    no pending signature verification: done, without a clone or a write.
//! 6. **Checkout** of that one commit (shallow) into a temporary directory
//!    (`GitOperationFailed`).
//! 7. **Verify** the HEAD commit and/or the tag (`spec.verify`): `SourceVerified`.
//! 8. **Includes**: each included artifact is checked against its digest, unpacked from the
//!    local storage and copied into its `toPath` (`CopyFailure` on `StorageOperationFailed`).
//! 9. **Store**: the tree is archived without what `spec.ignore`, `.sourceignore` files and
//!    Flux's default exclusions leave out, stored as `<commit>.tar.gz`
//!    (`ArchiveOperationFailed` on `StorageOperationFailed`), and old artifacts are collected.
//! 10. **Status**: `artifact`, `includedArtifacts`, `observedIgnore`, `observedInclude`,
//!     `observedSparseCheckout`, `observedRecurseSubmodules`, `ArtifactInStorage`; when the
//!     content changed, a `NewArtifact` event (`stored artifact for commit '<subject>'`, with
//!     the revision and digest as metadata) as the only event of the reconcile.
//!
//! # Caveats
//!
//! `spec.provider` other than `generic`, `spec.serviceAccountName` and
//! `spec.proxySecretRef` are not supported yet: such an object is stalled with a message
//! saying so.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::Api;
use kube::{Resource, ResourceExt};
use toolkit_sdk::api::Artifact;
use toolkit_sdk::conditions::{self, Stamp, reasons, types};
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::runtime::{Context, Outcome, Reconciler};

use super::common::{self, Shared, Stored};
use crate::api::v1::{
    GitProvider, GitRepository, GitRepositoryInclude, GitRepositorySpec, GitRepositoryStatus,
};
use crate::git::{self, CheckoutOptions, CommitInfo, GitAuth, GitError};

/// The kind, as stored (`gitrepository/<ns>/<name>/...`) and reported.
const KIND: &str = "GitRepository";

/// `IncludeUnavailable` reason: the included GitRepository does not exist (Flux's).
pub const INCLUDE_NOT_FOUND_REASON: &str = "NotFound";
/// `IncludeUnavailable` reason: the included GitRepository has no artifact yet (Flux's).
pub const INCLUDE_NO_ARTIFACT_REASON: &str = "NoArtifact";
/// `StorageOperationFailed` reason: an include could not be copied (Flux's).
pub const COPY_FAILURE_REASON: &str = "CopyFailure";
/// `StorageOperationFailed` reason: an include's `toPath` leaves the checkout (Flux's).
pub const ILLEGAL_PATH_REASON: &str = "IllegalPath";
/// `SourceVerified` reason: a tag is to be verified but none was checked out (Flux's).
pub const INVALID_VERIFICATION_MODE_REASON: &str = "InvalidVerificationMode";
/// `Ready` reason when a spec field this controller does not support yet is set.
pub const UNSUPPORTED_REASON: &str = "InvalidProviderConfiguration";

/// Reconciles GitRepositories into artifacts.
#[derive(Debug, Clone)]
pub struct GitRepositoryReconciler {
    shared: Arc<Shared>,
}

impl GitRepositoryReconciler {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

impl Reconciler for GitRepositoryReconciler {
    type Object = GitRepository;

    const NEGATIVE_POLARITY: &'static [&'static str] = &types::SOURCE_NEGATIVE_POLARITY;

    async fn reconcile(
        &self,
        obj: &GitRepository,
        status: &mut GitRepositoryStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        let namespace = obj.namespace().unwrap_or_default();
        let key = Shared::key(KIND, &namespace, &obj.name_any())?;
        let stamp = common::stamp(obj.meta().generation);
        let object_ref = obj.object_ref(&());
        let spec = &obj.spec;
        let previous = status.artifact.clone();

        // 1. Storage.
        let _stored: Stored = self
            .shared
            .check_stored(
                &key,
                &mut status.artifact,
                &mut status.conditions,
                &object_ref,
                ctx,
            )
            .await;
        // A failed verification is recomputed; a successful one describes the stored
        // artifact and stays until the next one.
        if conditions::is_false(&status.conditions, types::SOURCE_VERIFIED) {
            conditions::delete(&mut status.conditions, types::SOURCE_VERIFIED);
        }

        // 2. Credentials.
        check_supported(spec)?;
        let auth = self.auth(ctx, &namespace, spec).await?;

        // 3. Includes.
        let includes = fetch_includes(ctx, &namespace, &spec.include).await?;

        // 4. Remote.
        // Only the refs this checkout can resolve to (not every pull-request ref of a big host).
        let checkout = spec.checkout();
        let refs = git::remote_refs_for(&spec.url, &auth, &checkout, spec.timeout())
            .await
            .map_err(git_failed)?;
        let resolved = git::resolve(&checkout, &refs).map_err(git_failed)?;
        ctx.set_revision(&resolved.revision);

        // 5. No change.
        if let Some(current) = &status.artifact
            && resolved.is_same_revision(&current.revision)
            && !content_config_changed(spec, status, &includes)
        {
            let message = stored_message(&current.revision);
            conditions::mark_true(
                &mut status.conditions,
                &stamp,
                types::ARTIFACT_IN_STORAGE,
                reasons::SUCCEEDED,
                &message,
            );
            tracing::debug!(
                revision = %current.revision,
                "no changes since last reconciliation"
            );
            return Ok(Outcome::ready(message));
        }

        // 6. Checkout.
        let work = tempfile::Builder::new()
            .prefix("gitrepository-")
            .tempdir()
            .map_err(|err| {
                ReconcileError::transient(
                    reasons::DIRECTORY_CREATION_FAILED,
                    "failed to create temporary working directory",
                )
                .with_source(err)
                .on_condition(types::STORAGE_OPERATION_FAILED)
            })?;
        let dir = work.path().join("checkout");
        let options = CheckoutOptions {
            sparse_checkout: spec
                .sparse_checkout
                .iter()
                .map(|path| path.trim_start_matches("./").to_owned())
                .collect(),
            recurse_submodules: spec.recurse_submodules,
            timeout: spec.timeout(),
            ..CheckoutOptions::default()
        };
        let commit = git::checkout(&spec.url, &auth, &resolved, &dir, &options)
            .await
            .map_err(git_failed)?;

        // 7. Verify.
        self.verify(ctx, &namespace, obj, &commit, status, &stamp)
            .await?;

        // 8. Includes.
        self.copy_includes(&namespace, work.path(), &dir, &includes)
            .await?;

        // 9. Store.
        let artifact = self
            .shared
            .archive_and_store(
                &key,
                dir,
                spec.ignore.clone(),
                format!("{}.tar.gz", commit.hash),
                // What was fetched, which may be newer than what was listed if the ref moved.
                commit.revision.clone(),
            )
            .await?;

        // 10. Status.
        status.included_artifacts = includes.iter().map(|(_, a)| a.clone()).collect();
        status.observed_ignore = spec.ignore.clone();
        status.observed_recurse_submodules = spec.recurse_submodules;
        status.observed_include = spec.include.clone();
        status.observed_sparse_checkout = spec.sparse_checkout.clone();
        let message = stored_message(&artifact.revision);
        conditions::mark_true(
            &mut status.conditions,
            &stamp,
            types::ARTIFACT_IN_STORAGE,
            reasons::SUCCEEDED,
            &message,
        );
        let digest = artifact.digest.clone().unwrap_or_default();
        let outcome = if previous.as_ref().is_some_and(|p| p.has_digest(&digest)) {
            Outcome::ready(message)
        } else {
            let event = format!("stored artifact for commit '{}'", commit.summary());
            common::new_artifact(message, &event, &artifact)
        };
        status.artifact = Some(artifact);
        Ok(outcome)
    }

    async fn cleanup(&self, obj: &GitRepository, _ctx: &Context) -> Result<(), ReconcileError> {
        let key = Shared::key(KIND, &obj.namespace().unwrap_or_default(), &obj.name_any())?;
        self.shared.remove_all(&key).await
    }
}

impl GitRepositoryReconciler {
    /// The credentials of `spec.secretRef` (anonymous without one).
    async fn auth(
        &self,
        ctx: &Context,
        namespace: &str,
        spec: &GitRepositorySpec,
    ) -> Result<GitAuth, ReconcileError> {
        let data = match &spec.secret_ref {
            Some(secret_ref) => {
                let secret = common::get_secret(ctx.client(), namespace, &secret_ref.name).await?;
                secret_bytes(secret.data)
            }
            None => BTreeMap::new(),
        };
        GitAuth::from_secret(&data, &spec.url).map_err(|err| match err {
            GitError::InvalidUrl { .. } => git_failed(err),
            err => ReconcileError::transient(
                reasons::AUTHENTICATION_FAILED,
                "failed to configure authentication options",
            )
            .with_source(err)
            .on_condition(types::FETCH_FAILED),
        })
    }

    /// Verifies the commit and/or tag signatures asked for by `spec.verify`, recording the
    /// outcome in `SourceVerified` and `status.sourceVerificationMode`.
    async fn verify(
        &self,
        ctx: &Context,
        namespace: &str,
        obj: &GitRepository,
        commit: &CommitInfo,
        status: &mut GitRepositoryStatus,
        stamp: &Stamp,
    ) -> Result<(), ReconcileError> {
        let Some(verification) = &obj.spec.verification else {
            status.source_verification_mode = None;
            conditions::delete(&mut status.conditions, types::SOURCE_VERIFIED);
            return Ok(());
        };
        let failed = |conds: &mut Vec<Condition>, err: ReconcileError| {
            conditions::mark_false(
                conds,
                stamp,
                types::SOURCE_VERIFIED,
                err.reason(),
                &err.detailed_message(),
            );
            err
        };
        let name = &verification.secret_ref.name;
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(ctx.client().clone(), namespace);
        let secret = match api.get_opt(name).await {
            Ok(Some(secret)) => secret,
            Ok(None) => {
                return Err(failed(
                    &mut status.conditions,
                    ReconcileError::transient(
                        reasons::VERIFICATION_ERROR,
                        format!(
                            "PGP public keys secret error: secret '{namespace}/{name}' not found"
                        ),
                    ),
                ));
            }
            Err(err) => {
                return Err(failed(
                    &mut status.conditions,
                    ReconcileError::transient(
                        reasons::VERIFICATION_ERROR,
                        "PGP public keys secret error",
                    )
                    .with_source(err),
                ));
            }
        };
        let mode = verification.mode();
        let keys = git::TrustedKeys::from_secret(&secret_bytes(secret.data)).map_err(|err| {
            failed(
                &mut status.conditions,
                ReconcileError::transient(reasons::VERIFICATION_ERROR, "invalid verification keys")
                    .with_source(err),
            )
        })?;
        let verified = git::verify(commit, mode, &keys).map_err(|err| {
            let reason = verification_reason(&err, commit);
            let error = if reason == INVALID_VERIFICATION_MODE_REASON {
                ReconcileError::stalled(reason, "signature verification failed")
            } else {
                ReconcileError::transient(reason, "signature verification failed")
            };
            failed(&mut status.conditions, error.with_source(err))
        })?;
        let message = verified_message(commit, &verified);
        status.source_verification_mode = Some(mode);
        conditions::mark_true(
            &mut status.conditions,
            stamp,
            types::SOURCE_VERIFIED,
            reasons::SUCCEEDED,
            &message,
        );
        Ok(())
    }

    /// Copies the included artifacts into the checkout at `dir`, each at its `toPath`: the
    /// stored archive of each included GitRepository (in `namespace`) is checked against its
    /// digest and unpacked from local storage.
    async fn copy_includes(
        &self,
        namespace: &str,
        work: &Path,
        dir: &Path,
        includes: &[(GitRepositoryInclude, Artifact)],
    ) -> Result<(), ReconcileError> {
        if includes.is_empty() {
            return Ok(());
        }
        for (index, (include, artifact)) in includes.iter().enumerate() {
            let name = &include.repository.name;
            let to = secure_join(dir, include.to_path())
                .filter(|to| to != dir)
                .ok_or_else(|| {
                ReconcileError::transient(
                    ILLEGAL_PATH_REASON,
                    format!(
                        "path calculation for include '{name}' failed: '{}' is not a directory inside the repository",
                        include.to_path()
                    ),
                )
                .on_condition(types::STORAGE_OPERATION_FAILED)
            })?;
            let failed = || copy_failed(name, include.from_path(), include.to_path());
            let unpacked = work.join(format!("include-{index}"));
            let owner = Shared::key(KIND, namespace, name)?;
            self.shared
                .unpack(&owner, artifact, &unpacked)
                .await
                .map_err(|err| failed().with_source(err))?;
            let from = secure_join(&unpacked, include.from_path())
                .filter(|from| from.exists())
                .ok_or_else(|| {
                    failed().with_source(std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        format!("'{}' does not exist in the artifact", include.from_path()),
                    ))
                })?;
            replace_path(&from, &to).map_err(|err| failed().with_source(err))?;
        }
        Ok(())
    }
}

/// Flux's `Ready` / `ArtifactInStorage` message for a Git artifact.
fn stored_message(revision: &str) -> String {
    format!("stored artifact for revision '{revision}'")
}

/// A secret's data as the byte maps the Git client takes.
fn secret_bytes(
    data: Option<BTreeMap<String, k8s_openapi::ByteString>>,
) -> BTreeMap<String, Vec<u8>> {
    data.unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.0))
        .collect()
}

/// Stalls objects that ask for what this controller cannot do yet.
fn check_supported(spec: &GitRepositorySpec) -> Result<(), ReconcileError> {
    let unsupported = if spec.provider() != GitProvider::Generic {
        Some("spec.provider other than 'generic'")
    } else if spec.service_account_name.is_some() {
        Some("spec.serviceAccountName")
    } else if spec.proxy_secret_ref.is_some() {
        Some("spec.proxySecretRef")
    } else {
        None
    };
    match unsupported {
        Some(field) => Err(ReconcileError::stalled(
            UNSUPPORTED_REASON,
            format!("{field} is not supported yet; use spec.secretRef"),
        )
        .on_condition(types::FETCH_FAILED)),
        None => Ok(()),
    }
}

/// The artifacts of the included GitRepositories, in `spec.include` order.
///
/// # Errors
///
/// A waiting `IncludeUnavailable` error when one does not exist or has no artifact yet.
async fn fetch_includes(
    ctx: &Context,
    namespace: &str,
    includes: &[GitRepositoryInclude],
) -> Result<Vec<(GitRepositoryInclude, Artifact)>, ReconcileError> {
    let api: Api<GitRepository> = Api::namespaced(ctx.client().clone(), namespace);
    let mut artifacts = Vec::with_capacity(includes.len());
    for include in includes {
        let name = &include.repository.name;
        let unavailable = |reason: &'static str, message: String| {
            ReconcileError::waiting(reason, message).on_condition(types::INCLUDE_UNAVAILABLE)
        };
        let dependency = match api.get_opt(name).await {
            Ok(Some(dependency)) => dependency,
            Ok(None) => {
                return Err(unavailable(
                    INCLUDE_NOT_FOUND_REASON,
                    format!("could not get resource for include '{name}': not found"),
                ));
            }
            Err(err) => {
                return Err(unavailable(
                    INCLUDE_NOT_FOUND_REASON,
                    format!("could not get resource for include '{name}'"),
                )
                .with_source(err));
            }
        };
        let Some(artifact) = dependency.artifact() else {
            return Err(unavailable(
                INCLUDE_NO_ARTIFACT_REASON,
                format!("no artifact available for include '{name}'"),
            ));
        };
        artifacts.push((include.clone(), artifact.clone()));
    }
    Ok(artifacts)
}

/// Whether the stored artifact was built with other content settings than the spec's
/// (Flux's `gitContentConfigChanged`), or a signature must be verified again.
fn content_config_changed(
    spec: &GitRepositorySpec,
    status: &GitRepositoryStatus,
    includes: &[(GitRepositoryInclude, Artifact)],
) -> bool {
    if spec.ignore != status.observed_ignore
        || spec.recurse_submodules != status.observed_recurse_submodules
        || spec.sparse_checkout != status.observed_sparse_checkout
        || spec.include != status.observed_include
        || includes.len() != status.included_artifacts.len()
        || requires_verification(spec, status)
    {
        return true;
    }
    includes
        .iter()
        .zip(&status.included_artifacts)
        .any(|((_, current), observed)| {
            observed.revision != current.revision || observed.digest != current.digest
        })
}

/// Whether `spec.verify` asks for a verification the stored artifact did not get (Flux's
/// `requiresVerification`): none recorded, or the tag or the HEAD newly asked for.
fn requires_verification(spec: &GitRepositorySpec, status: &GitRepositoryStatus) -> bool {
    use crate::api::v1::GitVerificationMode as Mode;
    let Some(verification) = &spec.verification else {
        return false;
    };
    let wanted = verification.mode();
    match status.source_verification_mode.map(Mode::normalized) {
        None => true,
        Some(Mode::Tag) => matches!(wanted, Mode::Head | Mode::TagAndHead),
        Some(Mode::Head | Mode::LegacyHead) => matches!(wanted, Mode::Tag | Mode::TagAndHead),
        Some(Mode::TagAndHead) => false,
    }
}

/// A [`GitError`] of the remote or the checkout as Flux reports it: `GitOperationFailed` on
/// `FetchFailed`, or `URLInvalid` (stalled) for a URL that cannot work.
fn git_failed(err: GitError) -> ReconcileError {
    let (reason, message) = match &err {
        GitError::InvalidUrl { .. } => (reasons::URL_INVALID, "failed to parse url"),
        GitError::InvalidCredentials(_) => (
            reasons::AUTHENTICATION_FAILED,
            "failed to configure authentication options",
        ),
        _ => (
            reasons::GIT_OPERATION_FAILED,
            "failed to checkout and determine revision",
        ),
    };
    // A fix to a Secret does not change the object's generation: errors that a Secret can
    // fix are retried rather than stalled.
    let stalls = err.is_stalled()
        && !matches!(
            err,
            GitError::InvalidCredentials(_) | GitError::InvalidKeys(_)
        );
    let error = if stalls {
        ReconcileError::stalled(reason, message)
    } else {
        ReconcileError::transient(reason, message)
    };
    error.with_source(err).on_condition(types::FETCH_FAILED)
}

/// Flux's `SourceVerified=False` reason for a failed verification.
fn verification_reason(err: &GitError, commit: &CommitInfo) -> &'static str {
    match err {
        GitError::VerificationFailed { object, .. } if object.starts_with("tag") => {
            if commit
                .tag
                .as_ref()
                .is_some_and(|tag| tag.object.is_none() || tag.signature.is_none())
            {
                "InvalidGitObject"
            } else {
                "InvalidTagSignature"
            }
        }
        GitError::VerificationFailed { reason, .. }
            if reason.contains("not checked out through a tag") =>
        {
            INVALID_VERIFICATION_MODE_REASON
        }
        GitError::VerificationFailed { .. } => "InvalidCommitSignature",
        _ => reasons::VERIFICATION_ERROR,
    }
}

/// Flux's `SourceVerified=True` message: which objects were verified with which keys.
fn verified_message(commit: &CommitInfo, verified: &git::Verified) -> String {
    let mut message = String::from("verified signature of");
    if let (Some(key), Some(tag)) = (&verified.tag_key, &commit.tag) {
        message.push_str(&format!("\n\t- tag '{}' with key '{key}'", tag.name));
    }
    if let Some(key) = &verified.commit_key {
        message.push_str(&format!("\n\t- commit '{}' with key '{key}'", commit.hash));
    }
    message
}

fn copy_failed(name: &str, from: &str, to: &str) -> ReconcileError {
    ReconcileError::transient(
        COPY_FAILURE_REASON,
        format!("failed to copy '{name}' include from '{from}' to '{to}'"),
    )
    .on_condition(types::STORAGE_OPERATION_FAILED)
}

/// `root` joined with the relative path `rel`, or `None` when `rel` climbs out of `root`
/// or is absolute. `.` and empty components are ignored; the result may be `root` itself.
fn secure_join(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    let mut depth = 0usize;
    for component in Path::new(rel).components() {
        match component {
            Component::Normal(part) => {
                out.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return None;
                }
                out.pop();
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Moves `from` to `to`, replacing what is there.
fn replace_path(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(to) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(to)?,
        Ok(_) => std::fs::remove_file(to)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(from, to)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secure_join_stays_inside_the_root() {
        let root = Path::new("/work/checkout");
        assert_eq!(secure_join(root, "lib"), Some(root.join("lib")));
        assert_eq!(secure_join(root, "./a/b/"), Some(root.join("a/b")));
        assert_eq!(secure_join(root, "a/../b"), Some(root.join("b")));
        assert_eq!(secure_join(root, ""), Some(root.to_path_buf()));
        assert_eq!(secure_join(root, "../x"), None);
        assert_eq!(secure_join(root, "a/../../x"), None);
        assert_eq!(secure_join(root, "/etc"), None);
    }

    #[test]
    fn replace_path_replaces_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let from = tmp.path().join("from");
        std::fs::create_dir_all(from.join("sub")).unwrap();
        std::fs::write(from.join("sub/new.yaml"), "new").unwrap();
        let to = tmp.path().join("repo/vendor/lib");
        std::fs::create_dir_all(&to).unwrap();
        std::fs::write(to.join("old.yaml"), "old").unwrap();
        replace_path(&from, &to).unwrap();
        assert_eq!(
            std::fs::read_to_string(to.join("sub/new.yaml")).unwrap(),
            "new"
        );
        assert!(!to.join("old.yaml").exists());
        assert!(!from.exists());
    }

    fn spec(value: serde_json::Value) -> GitRepositorySpec {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn content_config_follows_flux() {
        let base = serde_json::json!({"url": "https://example.com/r", "interval": "1m"});
        let observed = GitRepositoryStatus::default();
        assert!(!content_config_changed(&spec(base.clone()), &observed, &[]));

        let mut with_ignore = base.clone();
        with_ignore["ignore"] = "/*\n!/deploy\n".into();
        assert!(content_config_changed(&spec(with_ignore), &observed, &[]));

        let mut sparse = base.clone();
        sparse["sparseCheckout"] = serde_json::json!(["deploy"]);
        assert!(content_config_changed(&spec(sparse), &observed, &[]));

        let mut verify = base.clone();
        verify["verify"] = serde_json::json!({"mode": "HEAD", "secretRef": {"name": "keys"}});
        let verify = spec(verify);
        assert!(content_config_changed(&verify, &observed, &[]));
        let mut verified = observed.clone();
        verified.source_verification_mode = Some(crate::api::v1::GitVerificationMode::Head);
        assert!(!content_config_changed(&verify, &verified, &[]));
        verified.source_verification_mode = Some(crate::api::v1::GitVerificationMode::Tag);
        assert!(content_config_changed(&verify, &verified, &[]));
    }
}
