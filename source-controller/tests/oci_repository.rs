//! OCIRepository end to end: a real API server, a real registry (Debian's `docker-registry`),
//! artifacts pushed as `flux push artifact` does, the controller in-process with its own
//! storage, artifacts downloaded over HTTP and checked against their digest.
#![allow(clippy::unwrap_used)]

mod support;

use anyhow::Result;
use e2e::oci_registry::{
    ANNOTATION_REVISION, ANNOTATION_SOURCE, OciArtifact, OciRegistry, RegistryOptions,
    sha256_digest,
};
use serde_json::json;
use source_controller::api::v1::OciRepository;
use support::{condition, env, fetch, files, ready_is};

fn oci_repository(name: &str, url: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut value = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": {"name": name},
        "spec": {"url": url, "interval": "10m", "insecure": true},
    });
    if let serde_json::Value::Object(extra) = spec {
        for (key, field) in extra {
            value["spec"][key] = field;
        }
    }
    value
}

fn ready(repo: &OciRepository) -> bool {
    repo.status
        .as_ref()
        .is_some_and(|s| ready_is(&s.conditions, "True", "Succeeded"))
}

#[tokio::test]
async fn the_latest_tag_becomes_an_artifact_with_the_manifest_annotations() -> Result<()> {
    let env = env("ocirepo-ready").await?;
    let registry = OciRegistry::start(RegistryOptions::default())?;
    let source_revision = "main@sha1:0123456789abcdef0123456789abcdef01234567";
    let artifact = OciArtifact::flux(
        &[
            ("deploy/app.yaml", "kind: ConfigMap\n"),
            ("logo.png", "png"),
        ],
        "https://github.com/org/app",
        source_revision,
    )?;
    let pushed = registry
        .client()
        .push_artifact("org/app", "latest", &artifact)
        .await?;

    env.create::<OciRepository>(oci_repository(
        "app",
        &registry.oci_url("org/app"),
        json!({}),
    ))
    .await?;
    let revision = format!("latest@{}", pushed.digest);
    let obj = env
        .wait_for::<OciRepository>("app", "ready", |r| {
            ready(r)
                && r.status
                    .as_ref()
                    .and_then(|s| s.artifact.as_ref())
                    .is_some_and(|a| a.revision == revision)
        })
        .await?;
    let status = obj.status.unwrap();
    let stored = status.artifact.clone().unwrap();
    assert_eq!(
        condition(&status.conditions, "Ready").unwrap().message,
        format!("stored artifact for digest '{revision}'")
    );
    assert_eq!(
        stored.path,
        format!("ocirepository/{}/app/{}.tar.gz", env.ns.name, pushed.digest)
    );
    let metadata = stored.metadata.clone().unwrap();
    assert_eq!(
        metadata.get(ANNOTATION_SOURCE).map(String::as_str),
        Some("https://github.com/org/app")
    );
    assert_eq!(
        metadata.get(ANNOTATION_REVISION).map(String::as_str),
        Some(source_revision)
    );
    assert_eq!(
        status.url.as_deref(),
        Some(
            format!(
                "http://{}/ocirepository/{}/app/latest.tar.gz",
                env.controller().advertised_addr(),
                env.ns.name
            )
            .as_str()
        )
    );

    let (_tmp, dir) = fetch(&stored).await?;
    assert_eq!(
        files(&dir)?.keys().collect::<Vec<_>>(),
        ["deploy/app.yaml"],
        "the layer is extracted and archived with Flux's default exclusions"
    );

    let events = env.wait_event("app", "NewArtifact").await?;
    assert_eq!(
        events[0].message.as_deref(),
        Some(
            format!(
                "stored artifact with revision '{revision}' from '{}', origin source 'https://github.com/org/app', origin revision '{source_revision}'",
                registry.oci_url("org/app")
            )
            .as_str()
        )
    );

    // An unchanged tag: one more reconcile, no pull, no new artifact.
    let (time_before, count_before) = env.reconcile_time("OCIRepository", "app");
    let token = env.request_reconcile::<OciRepository>("app").await?;
    let after = env
        .wait_for::<OciRepository>("app", "reconciled again", |r| {
            r.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some(token.as_str())
        })
        .await?;
    let (time_after, count_after) = env.reconcile_time("OCIRepository", "app");
    assert_eq!(after.status.unwrap().artifact, Some(stored.clone()));
    // The new artifact produced exactly one event, Flux's NewArtifact with the revision and
    // digest, and neither reconcile a generic Ready event.
    let events = env.events("app", "NewArtifact").await?;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].count.unwrap_or(1), 1);
    let annotations = events[0].metadata.annotations.clone().unwrap_or_default();
    assert_eq!(
        annotations.get("source.toolkit.fluxcd.io/revision"),
        Some(&stored.revision)
    );
    assert_eq!(
        annotations.get("source.toolkit.fluxcd.io/digest"),
        stored.digest.as_ref()
    );
    assert!(env.events("app", "Succeeded").await?.is_empty());
    assert_eq!(count_after, count_before + 1);
    eprintln!(
        "no-change reconcile took {:.1} ms",
        (time_after - time_before) * 1000.0
    );
    Ok(())
}

#[tokio::test]
async fn a_copied_layer_is_stored_as_pushed_with_registry_credentials() -> Result<()> {
    let env = env("ocirepo-copy").await?;
    let registry = OciRegistry::start(RegistryOptions::default().basic_auth("flux", "s3cret"))?;
    let artifact = OciArtifact::flux(&[("a.yaml", "a\n")], "https://example.com/r", "v1")?;
    let layer = artifact.layers[0].data.clone();
    let pushed = registry
        .client()
        .push_artifact("org/copy", "v1.0.0", &artifact)
        .await?;
    let docker_config = registry.docker_config_json().unwrap();
    env.secret("registry", &[(".dockerconfigjson", docker_config.as_str())])
        .await?;

    env.create::<OciRepository>(oci_repository(
        "copy",
        &registry.oci_url("org/copy"),
        json!({
            "ref": {"tag": "v1.0.0"},
            "secretRef": {"name": "registry"},
            "layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip", "operation": "copy"},
        }),
    ))
    .await?;
    let obj = env
        .wait_for::<OciRepository>("copy", "ready", ready)
        .await?;
    let status = obj.status.unwrap();
    let stored = status.artifact.unwrap();
    assert_eq!(stored.revision, format!("v1.0.0@{}", pushed.digest));
    assert_eq!(
        stored.digest.as_deref(),
        Some(sha256_digest(&layer).as_str())
    );
    assert_eq!(
        status
            .observed_layer_selector
            .unwrap()
            .media_type
            .as_deref(),
        Some("application/vnd.cncf.flux.content.v1.tar+gzip")
    );
    let (_tmp, dir) = fetch(&stored).await?;
    assert_eq!(files(&dir)?["a.yaml"], "a\n");
    Ok(())
}

#[tokio::test]
async fn a_tag_that_does_not_exist_fails_with_the_reason() -> Result<()> {
    let env = env("ocirepo-bad-ref").await?;
    let registry = OciRegistry::start(RegistryOptions::default())?;
    let artifact = OciArtifact::flux(&[("a.yaml", "a\n")], "https://example.com/r", "v1")?;
    registry
        .client()
        .push_artifact("org/app", "v1.0.0", &artifact)
        .await?;

    env.create::<OciRepository>(oci_repository(
        "app",
        &registry.oci_url("org/app"),
        json!({"ref": {"tag": "v9.9.9"}}),
    ))
    .await?;
    let obj = env
        .wait_for::<OciRepository>("app", "failing", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| ready_is(&s.conditions, "False", "OCIArtifactPullFailed"))
        })
        .await?;
    let status = obj.status.unwrap();
    let ready = condition(&status.conditions, "Ready").unwrap();
    assert!(ready.message.contains("v9.9.9"), "{}", ready.message);
    let fetch_failed = condition(&status.conditions, "FetchFailed").unwrap();
    assert_eq!(fetch_failed.status, "True");
    assert!(status.artifact.is_none());
    Ok(())
}

#[tokio::test]
async fn both_kinds_run_in_one_process_under_one_lease_one_metrics_and_one_readyz() -> Result<()> {
    use e2e::git_server::{GitServer, HttpOptions};
    use k8s_openapi::api::coordination::v1::Lease;
    use kube::ResourceExt;
    use kube::api::ListParams;
    use source_controller::api::v1::GitRepository;
    use source_controller::controller::SourceController;

    let mut env = support::env_without_controller("source-one-process").await?;
    let metrics_port = e2e::process::free_port()?;
    let health_port = e2e::process::free_port()?;
    let mut config = env.config();
    config.options.leader_election.enable_leader_election = true;
    config.options.observability.metrics_addr = format!("127.0.0.1:{metrics_port}").parse()?;
    config.options.observability.health_addr = format!("127.0.0.1:{health_port}").parse()?;
    env.controller = Some(SourceController::start(config, env.client.clone()).await?);

    let server = GitServer::new()?;
    server
        .create_repo("app")?
        .working_copy()?
        .commit(&[("a.yaml", "a\n")], "one")?;
    let http = server.serve_http(HttpOptions::default())?;
    let registry = OciRegistry::start(RegistryOptions::default())?;
    let artifact = OciArtifact::flux(&[("b.yaml", "b\n")], "https://example.com/r", "v1")?;
    registry
        .client()
        .push_artifact("org/app", "latest", &artifact)
        .await?;
    env.create::<GitRepository>(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "git"},
        "spec": {"url": http.url("app"), "interval": "10m"},
    }))
    .await?;
    env.create::<OciRepository>(oci_repository(
        "oci",
        &registry.oci_url("org/app"),
        json!({}),
    ))
    .await?;
    env.wait_for::<GitRepository>("git", "ready", |r| {
        r.status
            .as_ref()
            .is_some_and(|s| ready_is(&s.conditions, "True", "Succeeded"))
    })
    .await?;
    env.wait_for::<OciRepository>("oci", "ready", ready).await?;

    // One Lease for the process, whatever the number of kinds.
    let leases = env.api::<Lease>().list(&ListParams::default()).await?.items;
    assert_eq!(
        leases.iter().map(ResourceExt::name_any).collect::<Vec<_>>(),
        ["source-controller-leader-election"]
    );
    let holder = |lease: &Lease| {
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty())
    };
    assert!(holder(&leases[0]).is_some(), "{:?}", leases[0].spec);

    // One /metrics with both kinds, one /readyz with a check for each.
    let http_client = toolkit_sdk::tls::http_client_builder().build()?;
    let metrics = http_client
        .get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for (kind, name) in [("GitRepository", "git"), ("OCIRepository", "oci")] {
        let series = format!(
            r#"gotk_reconcile_duration_seconds_count{{kind="{kind}",name="{name}",namespace="{}"}}"#,
            env.ns.name
        );
        assert!(
            metrics.lines().any(|l| l.starts_with(&series)),
            "{series} not in:\n{metrics}"
        );
    }
    let readyz = http_client
        .get(format!("http://127.0.0.1:{health_port}/readyz"))
        .send()
        .await?;
    assert_eq!(readyz.status().as_u16(), 200);
    let body = readyz.text().await?;
    assert!(body.contains("[+]gitrepository-controller ok"), "{body}");
    assert!(body.contains("[+]ocirepository-controller ok"), "{body}");

    // A graceful stop releases the one Lease.
    env.stop().await?;
    let lease = env
        .api::<Lease>()
        .get("source-controller-leader-election")
        .await?;
    assert_eq!(holder(&lease), None, "the Lease was not released");
    Ok(())
}
