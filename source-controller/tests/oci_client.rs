//! The OCI client against a real registry: Debian's `docker-registry` on loopback (plain HTTP,
//! hence `insecure: true`), with artifacts pushed the way `flux push artifact` makes them.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::oci_registry::{
    ANNOTATION_REVISION, ANNOTATION_SOURCE, FLUX_CONTENT_MEDIA_TYPE, OCI_INDEX_MEDIA_TYPE,
    OciArtifact, OciRegistry, RegistryOptions, docker_config_json, sha256_digest, tar_gz,
};
use k8s_openapi::ByteString;
use source_controller::api::v1::{
    OciLayerOperation, OciLayerSelector, OciRepositoryRef, OciSelection,
};
use source_controller::oci::{
    self, DOCKER_CONFIG_JSON_KEY, OciAuth, OciError, OciOptions, Pulled, Resolved,
};
use toolkit_sdk::artifact_fetch::FetchLimits;

const SOURCE: &str = "https://github.com/org/app";
const REVISION: &str = "main@sha1:0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "org/app";

fn insecure() -> OciOptions {
    OciOptions::new(true, Duration::from_secs(20))
}

fn registry() -> OciRegistry {
    OciRegistry::start(RegistryOptions::default()).unwrap()
}

fn artifact(files: &[(&str, &str)]) -> OciArtifact {
    OciArtifact::flux(files, SOURCE, REVISION).unwrap()
}

fn tag(t: &str) -> OciSelection {
    OciSelection::Tag(t.into())
}

fn semver(range: &str, filter: Option<&str>) -> OciSelection {
    OciSelection::SemVer {
        range: range.into(),
        filter: filter.map(Into::into),
    }
}

fn extract() -> OciLayerSelector {
    OciLayerSelector::default()
}

fn copy(media_type: &str) -> OciLayerSelector {
    OciLayerSelector {
        media_type: Some(media_type.into()),
        operation: Some(OciLayerOperation::Copy),
    }
}

async fn resolve(reg: &OciRegistry, selection: &OciSelection) -> Result<Resolved, OciError> {
    oci::resolve(
        &reg.oci_url(REPO),
        selection,
        &OciAuth::Anonymous,
        &insecure(),
    )
    .await
}

async fn pull_into(
    reg: &OciRegistry,
    resolved: &Resolved,
    selector: &OciLayerSelector,
    dest: &Path,
    limits: &FetchLimits,
) -> Result<Pulled, OciError> {
    oci::pull(
        &reg.oci_url(REPO),
        resolved,
        &OciAuth::Anonymous,
        &insecure(),
        selector,
        dest,
        limits,
    )
    .await
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// A gzipped tarball with `count` small files.
fn many_files(count: usize) -> Vec<u8> {
    let files: Vec<(String, String)> = (0..count)
        .map(|i| (format!("f{i}.txt"), format!("{i}")))
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    tar_gz(&refs).unwrap()
}

#[tokio::test]
async fn a_tag_resolves_to_its_manifest_digest_and_pulls_its_files_and_annotations() {
    let reg = registry();
    let pushed = reg
        .client()
        .push_artifact(
            REPO,
            "v1.0.0",
            &artifact(&[
                ("deploy/app.yaml", "kind: ConfigMap\n"),
                ("README.md", "hi"),
            ]),
        )
        .await
        .unwrap();

    let resolved = resolve(&reg, &tag("v1.0.0")).await.unwrap();
    assert_eq!(resolved.tag.as_deref(), Some("v1.0.0"));
    assert_eq!(resolved.digest, pushed.digest);
    assert_eq!(resolved.revision, format!("v1.0.0@{}", pushed.digest));

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let pulled = pull_into(&reg, &resolved, &extract(), &dest, &FetchLimits::default())
        .await
        .unwrap();
    assert_eq!(read(&dest.join("deploy/app.yaml")), "kind: ConfigMap\n");
    assert_eq!(read(&dest.join("README.md")), "hi");
    assert_eq!(pulled.path, dest);
    assert_eq!(pulled.operation, OciLayerOperation::Extract);
    assert_eq!(pulled.entries, Some(2));
    assert_eq!(pulled.manifest_digest, pushed.digest);
    assert_eq!(pulled.layer_digest, pushed.layer_digests[0]);
    assert_eq!(pulled.layer_media_type, FLUX_CONTENT_MEDIA_TYPE);
    assert_eq!(pulled.metadata.get(ANNOTATION_SOURCE).unwrap(), SOURCE);
    assert_eq!(pulled.metadata.get(ANNOTATION_REVISION).unwrap(), REVISION);
    // Nothing but the destination is left next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["out"]);
}

#[tokio::test]
async fn without_a_ref_the_latest_tag_is_followed() {
    let reg = registry();
    reg.client()
        .push_artifact(REPO, "v1", &artifact(&[("a", "old")]))
        .await
        .unwrap();
    let latest = reg
        .client()
        .push_artifact(REPO, "latest", &artifact(&[("a", "new")]))
        .await
        .unwrap();

    let selection = OciRepositoryRef::default().effective();
    let resolved = resolve(&reg, &selection).await.unwrap();
    assert_eq!(resolved.tag.as_deref(), Some("latest"));
    assert_eq!(resolved.revision, format!("latest@{}", latest.digest));
}

#[tokio::test]
async fn a_digest_is_pulled_as_is_and_its_revision_is_the_bare_digest() {
    let reg = registry();
    let v1 = reg
        .client()
        .push_artifact(REPO, "v1", &artifact(&[("a", "one")]))
        .await
        .unwrap();
    // The tag moves on; the digest still names the first manifest.
    reg.client()
        .push_artifact(REPO, "v1", &artifact(&[("a", "two")]))
        .await
        .unwrap();

    let resolved = resolve(&reg, &OciSelection::Digest(v1.digest.clone()))
        .await
        .unwrap();
    assert_eq!(resolved.tag, None);
    assert_eq!(resolved.digest, v1.digest);
    assert_eq!(resolved.revision, v1.digest);

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    pull_into(&reg, &resolved, &extract(), &dest, &FetchLimits::default())
        .await
        .unwrap();
    assert_eq!(read(&dest.join("a")), "one");

    // A digest the registry does not have: resolving does not ask (as in Flux), pulling fails.
    let missing = sha256_digest(b"nothing");
    let resolved = resolve(&reg, &OciSelection::Digest(missing.clone()))
        .await
        .unwrap();
    let err = pull_into(
        &reg,
        &resolved,
        &extract(),
        &dir.path().join("missing"),
        &FetchLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains(&missing), "{err}");
    assert!(!dir.path().join("missing").exists());

    // A malformed digest is a spec error, found before any request.
    let err = resolve(&reg, &OciSelection::Digest("sha256:xyz".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::InvalidDigest { .. }), "{err:?}");
    assert!(err.is_spec_error() && !err.is_retryable());
}

#[tokio::test]
async fn semver_picks_the_highest_tag_in_range_among_filtered_tags() {
    let reg = registry();
    let client = reg.client();
    let mut digests = BTreeMap::new();
    for (t, content) in [
        ("1.0.0", "a"),
        ("1.2.0", "b"),
        ("1.3.0-rc.1", "c"),
        ("2.0.0", "d"),
        ("latest", "e"),
        ("not-a-version", "f"),
    ] {
        let pushed = client
            .push_artifact(REPO, t, &artifact(&[("v", content)]))
            .await
            .unwrap();
        digests.insert(t, pushed.digest);
    }

    let resolved = resolve(&reg, &semver(">=1.0.0 <2.0.0", None))
        .await
        .unwrap();
    assert_eq!(resolved.tag.as_deref(), Some("1.2.0"));
    assert_eq!(resolved.revision, format!("1.2.0@{}", digests["1.2.0"]));

    let resolved = resolve(&reg, &semver("*", None)).await.unwrap();
    assert_eq!(resolved.tag.as_deref(), Some("2.0.0"));

    // The filter narrows the tags first; pre-releases need a range that admits them.
    let resolved = resolve(&reg, &semver(">=1.0.0-0", Some(".*-rc.*")))
        .await
        .unwrap();
    assert_eq!(resolved.tag.as_deref(), Some("1.3.0-rc.1"));
    assert_eq!(
        resolved.revision,
        format!("1.3.0-rc.1@{}", digests["1.3.0-rc.1"])
    );
    let resolved = resolve(&reg, &semver("1.x", Some("^1\\.0"))).await.unwrap();
    assert_eq!(resolved.tag.as_deref(), Some("1.0.0"));

    let err = resolve(&reg, &semver(">=3.0.0", None)).await.unwrap_err();
    assert!(matches!(err, OciError::NoMatchingTag { .. }), "{err:?}");
    assert_eq!(err.reason(), "ReadOperationFailed");
    assert!(err.is_retryable(), "a matching tag may be pushed later");

    let err = resolve(&reg, &semver("*", Some("(unclosed")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, OciError::InvalidSemverFilter { .. }),
        "{err:?}"
    );
    assert!(err.is_spec_error());

    let err = resolve(&reg, &semver("not a range", None))
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::InvalidSemver { .. }), "{err:?}");
    assert!(err.is_spec_error());
}

#[tokio::test]
async fn a_moved_tag_changes_the_digest_and_unchanged_content_keeps_it() {
    let reg = registry();
    let client = reg.client();
    let first = client
        .push_artifact(REPO, "stable", &artifact(&[("a", "one")]))
        .await
        .unwrap();
    let before = resolve(&reg, &tag("stable")).await.unwrap();
    assert_eq!(before.digest, first.digest);

    // Pushing the same content again (under the same or another tag) is the same manifest.
    client
        .push_artifact(REPO, "stable", &artifact(&[("a", "one")]))
        .await
        .unwrap();
    client
        .push_artifact(REPO, "copy", &artifact(&[("a", "one")]))
        .await
        .unwrap();
    assert_eq!(resolve(&reg, &tag("stable")).await.unwrap(), before);
    assert_eq!(
        resolve(&reg, &tag("copy")).await.unwrap().digest,
        before.digest
    );

    // New content under the same tag: a new digest and a new revision.
    let second = client
        .push_artifact(REPO, "stable", &artifact(&[("a", "two")]))
        .await
        .unwrap();
    let after = resolve(&reg, &tag("stable")).await.unwrap();
    assert_ne!(after.digest, before.digest);
    assert_eq!(after.digest, second.digest);
    assert_eq!(after.revision, format!("stable@{}", second.digest));

    // Pulling the new revision replaces the previous extraction.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    pull_into(&reg, &before, &extract(), &dest, &FetchLimits::default())
        .await
        .unwrap();
    assert_eq!(read(&dest.join("a")), "one");
    pull_into(&reg, &after, &extract(), &dest, &FetchLimits::default())
        .await
        .unwrap();
    assert_eq!(read(&dest.join("a")), "two");
}

#[tokio::test]
async fn missing_tags_and_repositories_are_not_found() {
    let reg = registry();
    reg.client()
        .push_artifact(REPO, "v1", &artifact(&[("a", "1")]))
        .await
        .unwrap();

    let err = resolve(&reg, &tag("v2")).await.unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("tag 'v2'"), "{err}");
    assert!(err.is_retryable());
    assert_eq!(err.reason(), "OCIArtifactPullFailed");

    let err = oci::resolve(
        &reg.oci_url("org/other"),
        &tag("v1"),
        &OciAuth::Anonymous,
        &insecure(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err:?}");

    let err = oci::resolve(
        &reg.oci_url("org/other"),
        &semver("*", None),
        &OciAuth::Anonymous,
        &insecure(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::NotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn credentials_from_a_docker_config_secret_are_required_and_checked() {
    let reg = OciRegistry::start(RegistryOptions::default().basic_auth("flux", "s3cret")).unwrap();
    let pushed = reg
        .client()
        .push_artifact(REPO, "v1", &artifact(&[("a", "private")]))
        .await
        .unwrap();
    let url = reg.oci_url(REPO);
    let secret = |json: String| {
        BTreeMap::from([(
            DOCKER_CONFIG_JSON_KEY.to_owned(),
            ByteString(json.into_bytes()),
        )])
    };

    // Right credentials, as a `kubernetes.io/dockerconfigjson` secret holds them.
    let right =
        OciAuth::from_secret(&secret(reg.docker_config_json().unwrap()), &reg.host()).unwrap();
    assert!(!right.is_anonymous());
    let resolved = oci::resolve(&url, &tag("v1"), &right, &insecure())
        .await
        .unwrap();
    assert_eq!(resolved.digest, pushed.digest);
    // Listing tags (SemVer) is authenticated too.
    let by_semver = oci::resolve(&url, &semver("*", None), &right, &insecure())
        .await
        .unwrap();
    assert_eq!(by_semver.revision, format!("v1@{}", pushed.digest));
    let err = oci::resolve(&url, &semver("*", None), &OciAuth::Anonymous, &insecure())
        .await
        .unwrap_err();
    assert!(
        matches!(err, OciError::AuthenticationFailed { .. }),
        "{err:?}"
    );
    let dir = tempfile::tempdir().unwrap();
    for (selector, dest) in [
        (extract(), dir.path().join("tree")),
        (copy(FLUX_CONTENT_MEDIA_TYPE), dir.path().join("layer.tgz")),
    ] {
        oci::pull(
            &url,
            &resolved,
            &right,
            &insecure(),
            &selector,
            &dest,
            &FetchLimits::default(),
        )
        .await
        .unwrap();
    }
    assert_eq!(read(&dir.path().join("tree/a")), "private");

    // Wrong password.
    let wrong = OciAuth::from_secret(
        &secret(docker_config_json(&reg.host(), "flux", "wrong-password")),
        &reg.host(),
    )
    .unwrap();
    let err = oci::resolve(&url, &tag("v1"), &wrong, &insecure())
        .await
        .unwrap_err();
    match &err {
        OciError::AuthenticationFailed {
            with_credentials, ..
        } => assert!(with_credentials),
        other => panic!("expected AuthenticationFailed, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(!format!("{err} {err:?}").contains("wrong-password"));
    assert!(!format!("{wrong:?}").contains("wrong-password"));

    // No credentials at all (and a secret for another registry counts as none).
    let other_host = OciAuth::from_secret(
        &secret(docker_config_json("ghcr.io", "flux", "s3cret")),
        &reg.host(),
    )
    .unwrap();
    assert!(other_host.is_anonymous());
    let err = oci::resolve(&url, &tag("v1"), &OciAuth::Anonymous, &insecure())
        .await
        .unwrap_err();
    match &err {
        OciError::AuthenticationFailed {
            with_credentials, ..
        } => assert!(!with_credentials),
        other => panic!("expected AuthenticationFailed, got {other:?}"),
    }
    assert!(err.to_string().contains("without credentials"), "{err}");

    // Pulling with wrong credentials fails as well, and leaves no destination behind.
    let err = oci::pull(
        &url,
        &resolved,
        &wrong,
        &insecure(),
        &extract(),
        &dir.path().join("denied"),
        &FetchLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, OciError::AuthenticationFailed { .. }),
        "{err:?}"
    );
    assert!(!dir.path().join("denied").exists());
}

#[tokio::test]
async fn the_layer_is_selected_by_media_type_and_copied_or_extracted() {
    let reg = registry();
    let blob = b"plain bytes, not a tarball".to_vec();
    let pushed = reg
        .client()
        .push_artifact(
            REPO,
            "v1",
            &artifact(&[("manifests/cm.yaml", "kind: ConfigMap\n")])
                .layer("application/vnd.example.blob", blob.clone()),
        )
        .await
        .unwrap();
    let resolved = resolve(&reg, &tag("v1")).await.unwrap();
    let dir = tempfile::tempdir().unwrap();

    // Copy keeps the blob exactly as stored.
    let file = dir.path().join("blob.bin");
    let pulled = pull_into(
        &reg,
        &resolved,
        &copy("application/vnd.example.blob"),
        &file,
        &FetchLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), blob);
    assert_eq!(pulled.operation, OciLayerOperation::Copy);
    assert_eq!(pulled.entries, None);
    assert_eq!(pulled.layer_digest, pushed.layer_digests[1]);
    assert_eq!(pulled.layer_size, blob.len() as u64);

    // Copy of the tarball layer: the compressed bytes, unchanged.
    let tgz = dir.path().join("layer.tgz");
    pull_into(
        &reg,
        &resolved,
        &copy(FLUX_CONTENT_MEDIA_TYPE),
        &tgz,
        &FetchLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        sha256_digest(&std::fs::read(&tgz).unwrap()),
        pushed.layer_digests[0]
    );

    // Extract by media type.
    let tree = dir.path().join("tree");
    let selector = OciLayerSelector {
        media_type: Some(FLUX_CONTENT_MEDIA_TYPE.into()),
        operation: Some(OciLayerOperation::Extract),
    };
    pull_into(&reg, &resolved, &selector, &tree, &FetchLimits::default())
        .await
        .unwrap();
    assert_eq!(read(&tree.join("manifests/cm.yaml")), "kind: ConfigMap\n");

    // A media type the artifact does not have.
    let err = pull_into(
        &reg,
        &resolved,
        &copy("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
        &dir.path().join("chart.tgz"),
        &FetchLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::LayerNotFound { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("application/vnd.cncf.helm.chart.content.v1.tar+gzip"),
        "{err}"
    );
    assert_eq!(err.reason(), "OCIArtifactLayerOperationFailed");
    assert!(!err.is_retryable());
    assert!(!dir.path().join("chart.tgz").exists());
}

#[tokio::test]
async fn a_layer_that_is_not_a_tarball_cannot_be_extracted_and_the_old_tree_stays() {
    let reg = registry();
    reg.client()
        .push_artifact(REPO, "good", &artifact(&[("a", "good")]))
        .await
        .unwrap();
    let mut bad = artifact(&[]);
    bad.layers[0].data = b"this is not gzip".to_vec();
    reg.client().push_artifact(REPO, "bad", &bad).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let good = resolve(&reg, &tag("good")).await.unwrap();
    pull_into(&reg, &good, &extract(), &dest, &FetchLimits::default())
        .await
        .unwrap();

    let bad = resolve(&reg, &tag("bad")).await.unwrap();
    let err = pull_into(&reg, &bad, &extract(), &dest, &FetchLimits::default())
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::NotATarball { .. }), "{err:?}");
    assert!(err.to_string().contains("copy"), "{err}");
    assert_eq!(err.reason(), "OCIArtifactLayerOperationFailed");
    assert_eq!(read(&dest.join("a")), "good");
}

#[tokio::test]
async fn tar_bombs_are_stopped_by_the_limits() {
    let reg = registry();
    let mut wide = artifact(&[]);
    wide.layers[0].data = many_files(50);
    reg.client()
        .push_artifact(REPO, "wide", &wide)
        .await
        .unwrap();
    let zeros = "\0".repeat(4 * 1024 * 1024);
    let deep = artifact(&[("zeros.bin", zeros.as_str())]);
    reg.client()
        .push_artifact(REPO, "deep", &deep)
        .await
        .unwrap();

    let limits = FetchLimits {
        max_download_bytes: 1024 * 1024,
        max_extracted_bytes: 1024 * 1024,
        max_entries: 10,
    };
    let dir = tempfile::tempdir().unwrap();

    let wide = resolve(&reg, &tag("wide")).await.unwrap();
    let err = pull_into(&reg, &wide, &extract(), &dir.path().join("wide"), &limits)
        .await
        .unwrap_err();
    match &err {
        OciError::LimitExceeded { what, limit, .. } => {
            assert_eq!(*what, "entry count");
            assert_eq!(*limit, 10);
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(!dir.path().join("wide").exists());

    // 4 MiB of zeros compress to a few KiB: the download is small, the content is not.
    let deep = resolve(&reg, &tag("deep")).await.unwrap();
    let err = pull_into(&reg, &deep, &extract(), &dir.path().join("deep"), &limits)
        .await
        .unwrap_err();
    match &err {
        OciError::LimitExceeded { what, .. } => assert_eq!(*what, "extracted size (bytes)"),
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(!dir.path().join("deep").exists());

    // A layer over the download limit is refused before it is downloaded, copy or extract.
    let small = FetchLimits {
        max_download_bytes: 16,
        ..FetchLimits::default()
    };
    for (selector, dest) in [
        (extract(), dir.path().join("big")),
        (copy(FLUX_CONTENT_MEDIA_TYPE), dir.path().join("big.tgz")),
    ] {
        let err = pull_into(&reg, &deep, &selector, &dest, &small)
            .await
            .unwrap_err();
        match &err {
            OciError::LimitExceeded { what, .. } => assert_eq!(*what, "download size (bytes)"),
            other => panic!("expected LimitExceeded, got {other:?}"),
        }
        assert!(!dest.exists());
    }

    // Within the limits the same artifact extracts.
    pull_into(
        &reg,
        &wide,
        &extract(),
        &dir.path().join("ok"),
        &FetchLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(read(&dir.path().join("ok/f49.txt")), "49");
}

#[tokio::test]
async fn an_image_index_is_followed_to_its_linux_amd64_image() {
    let reg = registry();
    let client = reg.client();
    let amd64 = client
        .push_artifact(REPO, "amd64", &artifact(&[("arch", "amd64")]))
        .await
        .unwrap();
    let arm64 = client
        .push_artifact(REPO, "arm64", &artifact(&[("arch", "arm64")]))
        .await
        .unwrap();
    let entry = |digest: &str, size: usize, arch: &str| {
        serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest,
            "size": size,
            "platform": {"os": "linux", "architecture": arch}
        })
    };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": [
            entry(&arm64.digest, arm64.manifest.len(), "arm64"),
            entry(&amd64.digest, amd64.manifest.len(), "amd64"),
        ]
    })
    .to_string();
    let index_digest = client
        .push_manifest(REPO, "multi", OCI_INDEX_MEDIA_TYPE, index.as_bytes())
        .await
        .unwrap();

    let resolved = resolve(&reg, &tag("multi")).await.unwrap();
    assert_eq!(resolved.digest, index_digest);
    assert_eq!(resolved.revision, format!("multi@{index_digest}"));
    let dir = tempfile::tempdir().unwrap();
    let pulled = pull_into(
        &reg,
        &resolved,
        &extract(),
        &dir.path().join("out"),
        &FetchLimits::default(),
    )
    .await
    .unwrap();
    assert_eq!(read(&dir.path().join("out/arch")), "amd64");
    assert_eq!(pulled.manifest_digest, amd64.digest);
    assert_eq!(pulled.metadata.get(ANNOTATION_SOURCE).unwrap(), SOURCE);

    let arm_only = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX_MEDIA_TYPE,
        "manifests": [entry(&arm64.digest, arm64.manifest.len(), "arm64")]
    })
    .to_string();
    client
        .push_manifest(REPO, "arm-only", OCI_INDEX_MEDIA_TYPE, arm_only.as_bytes())
        .await
        .unwrap();
    let resolved = resolve(&reg, &tag("arm-only")).await.unwrap();
    let err = pull_into(
        &reg,
        &resolved,
        &extract(),
        &dir.path().join("arm"),
        &FetchLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, OciError::NoMatchingPlatform { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("linux/amd64"), "{err}");
}

#[tokio::test]
async fn without_insecure_only_https_is_spoken() {
    let reg = registry();
    reg.client()
        .push_artifact(REPO, "v1", &artifact(&[("a", "1")]))
        .await
        .unwrap();
    let secure = OciOptions::new(false, Duration::from_secs(10));
    let err = oci::resolve(&reg.oci_url(REPO), &tag("v1"), &OciAuth::Anonymous, &secure)
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn an_unreachable_registry_fails_fast_and_a_silent_one_within_the_timeout() {
    // Nothing listens on this port: the connection is refused at once.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("oci://127.0.0.1:{port}/{REPO}");
    let started = Instant::now();
    let err = oci::resolve(&url, &tag("v1"), &OciAuth::Anonymous, &insecure())
        .await
        .unwrap_err();
    assert!(matches!(err, OciError::Unreachable { .. }), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.reason(), "OCIArtifactPullFailed");
    assert!(started.elapsed() < Duration::from_secs(5));

    // A registry that accepts connections and never answers: the timeout ends it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            open.push(stream);
        }
    });
    let url = format!("oci://{addr}/{REPO}");
    let timeout = Duration::from_secs(1);
    let started = Instant::now();
    for selection in [tag("v1"), semver("*", None)] {
        let err = oci::resolve(
            &url,
            &selection,
            &OciAuth::Anonymous,
            &OciOptions::new(true, timeout),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, OciError::Timeout { .. }), "{err:?}");
        assert!(err.is_retryable());
    }
    let resolved = Resolved {
        tag: None,
        digest: sha256_digest(b"x"),
        revision: sha256_digest(b"x"),
    };
    let dir = tempfile::tempdir().unwrap();
    let err = oci::pull(
        &url,
        &resolved,
        &OciAuth::Anonymous,
        &OciOptions::new(true, timeout),
        &extract(),
        &dir.path().join("out"),
        &FetchLimits::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OciError::Timeout { .. }), "{err:?}");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(3) && elapsed < Duration::from_secs(8),
        "three operations with a 1 s timeout took {elapsed:?}"
    );
    held.abort();
}

#[tokio::test]
async fn invalid_urls_are_refused_before_any_request() {
    for url in [
        "https://ghcr.io/org/app",
        "oci://ghcr.io",
        "oci://ghcr.io/org/app:v1.0.0",
    ] {
        let err = oci::resolve(url, &tag("v1"), &OciAuth::Anonymous, &insecure())
            .await
            .unwrap_err();
        assert!(matches!(err, OciError::InvalidUrl { .. }), "{url}: {err:?}");
        assert_eq!(err.reason(), "URLInvalid");
        assert!(err.is_spec_error());
    }
}
