//! OCIRepository inputs that cannot produce an artifact, through the controller: a layer that
//! is not a tarball, tar bombs (too many entries, an entry that inflates past the extraction
//! limit), a SemVer range that matches no tag, a registry that is down or never answers.
//! Each ends in `Ready=False` with Flux's reason and a message naming what to fix, not
//! `Stalled` (a new push or the registry coming back can fix each), and the last good artifact
//! still recorded and served.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::Result;
use e2e::oci_registry::{
    FLUX_CONFIG_MEDIA_TYPE, FLUX_CONTENT_MEDIA_TYPE, OciArtifact, OciLayer, OciRegistry,
    RegistryOptions,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use source_controller::api::v1::OciRepository;
use support::{Env, condition, env, fetch, files, is_stalled, ready_is, ready_now, silent_host};
use toolkit_sdk::artifact_fetch::FetchLimits;

const REPOSITORY: &str = "org/app";

/// A registry with a good artifact (`app.yaml`) pushed as `v1.0.0`.
async fn registry_with_good_artifact() -> Result<OciRegistry> {
    let registry = OciRegistry::start(RegistryOptions::default())?;
    let good = OciArtifact::flux(
        &[("app.yaml", "replicas: 1\n")],
        "https://example.com/app",
        "v1",
    )?;
    registry
        .client()
        .push_artifact(REPOSITORY, "v1.0.0", &good)
        .await?;
    Ok(registry)
}

/// Creates OCIRepository `name` with `spec` and waits until it is Ready with an artifact.
async fn ready_repository(env: &Env, name: &str, spec: Value) -> Result<OciRepository> {
    let mut value = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name},
        "spec": {"interval": "10m", "insecure": true},
    });
    if let Value::Object(fields) = spec {
        for (key, field) in fields {
            value["spec"][key] = field;
        }
    }
    env.create::<OciRepository>(value).await?;
    env.wait_for::<OciRepository>(name, "ready with a first artifact", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| ready_is(&s.conditions, "True", "Succeeded") && s.artifact.is_some())
    })
    .await
}

/// Waits until `Ready=False` with `reason` for the current generation; returns the object.
async fn failed_with(env: &Env, name: &str, reason: &str) -> Result<OciRepository> {
    env.wait_for::<OciRepository>(name, &format!("Ready=False {reason}"), |r| {
        r.status
            .as_ref()
            .is_some_and(|s| ready_now(r, &s.conditions, "False", reason))
    })
    .await
}

/// Checks the failure: `Ready` names every one of `parts`, `FetchFailed` has the same reason,
/// the object is not stalled, and the last good artifact is still recorded and served.
async fn assert_fails_keeping(
    failed: &OciRepository,
    good: &OciRepository,
    reason: &str,
    parts: &[&str],
) -> Result<String> {
    let status = failed.status.as_ref().unwrap();
    let ready = condition(&status.conditions, "Ready").unwrap();
    for part in parts {
        assert!(
            ready.message.contains(part),
            "{part:?} not in the Ready message: {}",
            ready.message
        );
    }
    let fetch_failed = condition(&status.conditions, "FetchFailed").unwrap();
    assert_eq!(fetch_failed.status, "True");
    assert_eq!(fetch_failed.reason, reason);
    assert!(
        !is_stalled(&status.conditions),
        "a failure that a new push can fix stalled: {:?}",
        condition(&status.conditions, "Stalled")
    );
    let good_status = good.status.as_ref().unwrap();
    let good_artifact = good_status.artifact.clone().unwrap();
    assert_eq!(
        status.artifact.as_ref(),
        Some(&good_artifact),
        "the last good artifact is no longer recorded"
    );
    assert_eq!(status.url, good_status.url, "status.url changed");
    let (_tmp, dir) = fetch(&good_artifact).await?;
    assert_eq!(files(&dir)?["app.yaml"], "replicas: 1\n");
    Ok(ready.message.clone())
}

/// An artifact whose one layer, under Flux's content media type, is `data`.
fn artifact_with_layer(data: Vec<u8>) -> OciArtifact {
    OciArtifact {
        config_media_type: FLUX_CONFIG_MEDIA_TYPE.to_owned(),
        config: b"{}".to_vec(),
        layers: vec![OciLayer {
            media_type: FLUX_CONTENT_MEDIA_TYPE.to_owned(),
            data,
            annotations: BTreeMap::new(),
        }],
        annotations: BTreeMap::new(),
    }
}

/// Pushes `artifact` as `v2.0.0` and points the object at that tag; returns the manifest
/// digest.
async fn push_and_select(
    env: &Env,
    registry: &OciRegistry,
    artifact: &OciArtifact,
) -> Result<String> {
    let pushed = registry
        .client()
        .push_artifact(REPOSITORY, "v2.0.0", artifact)
        .await?;
    env.patch::<OciRepository>("app", json!({"spec": {"ref": {"tag": "v2.0.0"}}}))
        .await?;
    Ok(pushed.digest)
}

/// A ustar header for `path` of `size` bytes.
fn header(path: &str, size: u64) -> Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

#[tokio::test]
async fn a_layer_that_is_not_a_tarball_fails_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("ocirepo-not-tarball").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    // 64 KiB of noise that does not start like gzip.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    noise[0] = b'X';
    let layer_digest = e2e::oci_registry::sha256_digest(&noise);
    push_and_select(&env, &registry, &artifact_with_layer(noise)).await?;

    let failed = failed_with(&env, "app", "OCIArtifactLayerOperationFailed").await?;
    assert_fails_keeping(
        &failed,
        &good,
        "OCIArtifactLayerOperationFailed",
        &[
            "failed to extract layer contents from artifact",
            &layer_digest,
            "not a gzip-compressed tarball",
        ],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_tar_bomb_of_entries_fails_at_the_entry_limit_and_keeps_the_last_artifact() -> Result<()>
{
    let env = env("ocirepo-entry-bomb").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    // One empty file more than the extractor's entry limit (the controller uses the default
    // limits): a few MB compressed.
    let limit = FetchLimits::DEFAULT_MAX_ENTRIES;
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for i in 0..=limit {
        let path = format!("d{}/{i}", i % 100);
        builder.append(&header(&path, 0)?, std::io::empty())?;
    }
    let bomb = builder.into_inner()?.finish()?;
    eprintln!("entry bomb: {} bytes compressed", bomb.len());
    push_and_select(&env, &registry, &artifact_with_layer(bomb)).await?;

    let failed = failed_with(&env, "app", "OCIArtifactLayerOperationFailed").await?;
    assert_fails_keeping(
        &failed,
        &good,
        "OCIArtifactLayerOperationFailed",
        &[&format!("exceeds the entry count limit of {limit}")],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_tar_bomb_inflating_past_the_size_limit_fails_and_keeps_the_last_artifact() -> Result<()>
{
    let env = env("ocirepo-size-bomb").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    // A valid tar.gz whose one file is 1 byte over the extraction limit, all zeros: gzip
    // members concatenated (one compressed MiB of zeros repeated), about 2 MB in all.
    let limit = FetchLimits::DEFAULT_MAX_EXTRACTED_BYTES;
    let size = limit + 1;
    let gz = |data: &[u8]| -> Result<Vec<u8>> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(data)?;
        Ok(encoder.finish()?)
    };
    let mebibyte = 1024 * 1024;
    let mut bomb = gz(header("zeros.bin", size)?.as_bytes())?;
    let zeros = gz(&vec![0; mebibyte])?;
    for _ in 0..size / mebibyte as u64 {
        bomb.extend_from_slice(&zeros);
    }
    // The last byte of the file, its padding to 512 bytes, and the two end-of-archive blocks.
    let rest = (size % mebibyte as u64) as usize;
    let padding = (512 - size % 512) as usize % 512;
    bomb.extend_from_slice(&gz(&vec![0; rest + padding + 1024])?);
    eprintln!("size bomb: {} bytes compressed", bomb.len());
    push_and_select(&env, &registry, &artifact_with_layer(bomb)).await?;

    let failed = failed_with(&env, "app", "OCIArtifactLayerOperationFailed").await?;
    assert_fails_keeping(
        &failed,
        &good,
        "OCIArtifactLayerOperationFailed",
        &[&format!(
            "exceeds the extracted size (bytes) limit of {limit}"
        )],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_semver_range_matching_no_tag_fails_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("ocirepo-bad-semver").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"semver": ">=1.0.0"}}),
    )
    .await?;
    assert!(
        good.status
            .as_ref()
            .unwrap()
            .artifact
            .as_ref()
            .unwrap()
            .revision
            .starts_with("v1.0.0@sha256:")
    );

    env.patch::<OciRepository>("app", json!({"spec": {"ref": {"semver": ">=9.0.0"}}}))
        .await?;
    let failed = failed_with(&env, "app", "ReadOperationFailed").await?;
    assert_fails_keeping(
        &failed,
        &good,
        "ReadOperationFailed",
        &[
            &format!(
                "failed to determine the artifact tag for '{}'",
                registry.oci_url(REPOSITORY)
            ),
            ">=9.0.0",
        ],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_registry_that_is_down_fails_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("ocirepo-down").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    // Nothing listens on this port.
    let closed = e2e::process::free_port()?;
    let url = format!("oci://127.0.0.1:{closed}/{REPOSITORY}");
    env.patch::<OciRepository>("app", json!({"spec": {"url": url, "timeout": "2s"}}))
        .await?;
    let failed = failed_with(&env, "app", "OCIArtifactPullFailed").await?;
    assert_fails_keeping(
        &failed,
        &good,
        "OCIArtifactPullFailed",
        &[&format!("127.0.0.1:{closed}")],
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_registry_that_never_answers_fails_after_spec_timeout_and_keeps_the_last_artifact()
-> Result<()> {
    let env = env("ocirepo-silent").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    let silent = silent_host()?;
    let url = format!("oci://{}/{REPOSITORY}", silent.addr);
    let started = Instant::now();
    env.patch::<OciRepository>("app", json!({"spec": {"url": url, "timeout": "2s"}}))
        .await?;
    let failed = failed_with(&env, "app", "OCIArtifactPullFailed").await?;
    let elapsed = started.elapsed();
    eprintln!("a silent registry failed the reconcile after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_secs(2),
        "failed before the 2s timeout ({elapsed:?}): not a timeout"
    );
    assert!(
        elapsed < Duration::from_secs(2 + 8),
        "spec.timeout 2s not honoured: failed after {elapsed:?}"
    );
    let message = assert_fails_keeping(
        &failed,
        &good,
        "OCIArtifactPullFailed",
        &[&silent.addr.to_string()],
    )
    .await?;
    assert!(message.contains("timed out"), "{message}");
    Ok(())
}

/// Waits for `Ready=False` `URLInvalid`, `Stalled=True`, the last artifact kept; returns the
/// `Ready` message.
async fn assert_stalls_on_url(env: &Env, good: &OciRepository, url: &str) -> Result<String> {
    env.patch::<OciRepository>("app", json!({"spec": {"url": url}}))
        .await?;
    let failed = failed_with(env, "app", "URLInvalid").await?;
    let status = failed.status.as_ref().unwrap();
    assert!(
        is_stalled(&status.conditions),
        "an invalid URL is retried: {:?}",
        status.conditions
    );
    let fetch_failed = condition(&status.conditions, "FetchFailed").unwrap();
    assert_eq!(fetch_failed.reason, "URLInvalid");
    let good_artifact = good.status.as_ref().unwrap().artifact.clone().unwrap();
    assert_eq!(status.artifact.as_ref(), Some(&good_artifact));
    let (_tmp, dir) = fetch(&good_artifact).await?;
    assert_eq!(files(&dir)?["app.yaml"], "replicas: 1\n");
    Ok(condition(&status.conditions, "Ready")
        .unwrap()
        .message
        .clone())
}

#[tokio::test]
async fn a_malformed_url_stalls_with_url_invalid_and_keeps_the_last_artifact() -> Result<()> {
    let env = env("ocirepo-bad-url").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    // Passes the CRD's `^oci://.*$`; repository names are lower case.
    let url = format!("oci://{}/Org/App", registry.host());
    let message = assert_stalls_on_url(&env, &good, &url).await?;
    assert!(
        message.contains(&format!("URL validation failed for '{url}'")),
        "{message}"
    );
    Ok(())
}

#[tokio::test]

async fn a_url_with_credentials_never_shows_the_password() -> Result<()> {
    let env = env("ocirepo-bad-url-secret").await?;
    let registry = registry_with_good_artifact().await?;
    let good = ready_repository(
        &env,
        "app",
        json!({"url": registry.oci_url(REPOSITORY), "ref": {"tag": "v1.0.0"}}),
    )
    .await?;

    let url = format!("oci://flux:pa55-w0rd@{}/{REPOSITORY}", registry.host());
    let message = assert_stalls_on_url(&env, &good, &url).await?;
    let status = serde_json::to_string(&env.api::<OciRepository>().get("app").await?.status)?;
    assert!(
        !status.contains("pa55-w0rd"),
        "the password leaked into the status: {message}"
    );
    assert!(message.contains("secretRef"), "{message}");
    Ok(())
}
