//! The GitRepository and OCIRepository CRDs behave like Flux's in a real API server: the same
//! defaults are filled in, the same invalid input is rejected, and discovery shows the same
//! short names, categories and printer columns.
//!
//! `e2e::cluster()` installs `config/crd/bases` when it starts, so these tests only create objects.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::{Client, CustomResourceExt};
use serde_json::{Value, json};
use source_controller::api::v1::{
    GitCheckout, GitRepository, GitVerificationMode, OciLayerOperation, OciProvider, OciRepository,
    OciSelection, OciVerificationProvider,
};
use toolkit_sdk::runtime::FluxObject;

/// An API for `resource` objects in `namespace`, untyped, so tests can send what a user could
/// write (including invalid values our Rust types cannot even represent).
fn dynamic_api(client: &Client, namespace: &str, resource: &ApiResource) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, resource)
}

fn object(kind: &str, name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

/// Creates the object and returns it as the API server stored it (defaults applied).
async fn create(api: &Api<DynamicObject>, obj: &DynamicObject) -> Result<Value> {
    let name = obj.metadata.name.clone().context("object without a name")?;
    api.create(&PostParams::default(), obj)
        .await
        .with_context(|| format!("cannot create {name}"))?;
    let stored = api.get(&name).await?;
    Ok(serde_json::to_value(stored)?)
}

/// Creates the object, expects the API server to refuse it as invalid, and returns the message.
async fn rejected(api: &Api<DynamicObject>, obj: &DynamicObject) -> Result<String> {
    let name = obj.metadata.name.clone().unwrap_or_default();
    match api.create(&PostParams::default(), obj).await {
        Ok(_) => bail!("{name} was accepted but should have been rejected"),
        Err(kube::Error::Api(status)) => {
            ensure!(
                status.code == 422,
                "{name}: expected 422 Invalid, got {}: {}",
                status.code,
                status.message
            );
            Ok(status.message)
        }
        Err(other) => Err(other).context(format!("creating {name}")),
    }
}

#[tokio::test]
async fn minimal_git_repository_gets_flux_defaults() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace("gitrepo-defaults").await?;
    let api = dynamic_api(&ns.client, &ns.name, &GitRepository::api_resource());

    let stored = create(
        &api,
        &object(
            "GitRepository",
            "podinfo",
            json!({"url": "https://github.com/stefanprodan/podinfo", "interval": "5m"}),
        ),
    )
    .await?;
    // Exactly what Flux's CRD fills in: the timeout, and the never-observed status.
    assert_eq!(
        stored["spec"],
        json!({"url": "https://github.com/stefanprodan/podinfo", "interval": "5m", "timeout": "60s"})
    );
    assert_eq!(stored["status"], json!({"observedGeneration": -1}));

    let stored = create(
        &api,
        &object(
            "GitRepository",
            "verified",
            json!({
                "url": "ssh://git@github.com/org/repo",
                "interval": "1m",
                "ref": {"tag": "v1.0.0"},
                "verify": {"secretRef": {"name": "keys"}}
            }),
        ),
    )
    .await?;
    assert_eq!(
        stored["spec"]["verify"],
        json!({"mode": "HEAD", "secretRef": {"name": "keys"}})
    );

    // The typed API reads what the server stored, helpers included.
    let typed: Api<GitRepository> = Api::namespaced(ns.client.clone(), &ns.name);
    let repo = typed.get("verified").await?;
    assert_eq!(repo.spec.timeout(), Duration::from_secs(60));
    assert_eq!(repo.spec.checkout(), GitCheckout::Tag("v1.0.0".into()));
    let verify = repo.spec.verification.as_ref().context("verify lost")?;
    assert_eq!(verify.mode(), GitVerificationMode::Head);
    assert_eq!(repo.status().map(|s| s.observed_generation), Some(-1));
    assert_eq!(repo.interval(), Duration::from_secs(60));
    Ok(())
}

#[tokio::test]
async fn minimal_oci_repository_gets_flux_defaults() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace("ocirepo-defaults").await?;
    let api = dynamic_api(&ns.client, &ns.name, &OciRepository::api_resource());

    let stored = create(
        &api,
        &object(
            "OCIRepository",
            "podinfo",
            json!({"url": "oci://ghcr.io/stefanprodan/manifests/podinfo", "interval": "10m"}),
        ),
    )
    .await?;
    assert_eq!(
        stored["spec"],
        json!({
            "url": "oci://ghcr.io/stefanprodan/manifests/podinfo",
            "interval": "10m",
            "provider": "generic",
            "timeout": "60s"
        })
    );
    assert_eq!(stored["status"], json!({"observedGeneration": -1}));

    let stored = create(
        &api,
        &object(
            "OCIRepository",
            "signed",
            json!({
                "url": "oci://ghcr.io/org/app",
                "interval": "10m",
                "ref": {"semver": ">=1.0.0"},
                "layerSelector": {"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip"},
                "verify": {"secretRef": {"name": "cosign-pub"}}
            }),
        ),
    )
    .await?;
    assert_eq!(
        stored["spec"]["verify"],
        json!({"provider": "cosign", "secretRef": {"name": "cosign-pub"}})
    );
    // No default for the layer operation in the CRD: extraction is the controller's default.
    assert_eq!(
        stored["spec"]["layerSelector"],
        json!({"mediaType": "application/vnd.cncf.flux.content.v1.tar+gzip"})
    );

    let typed: Api<OciRepository> = Api::namespaced(ns.client.clone(), &ns.name);
    let repo = typed.get("signed").await?;
    assert_eq!(repo.spec.provider, OciProvider::Generic);
    assert_eq!(repo.spec.layer_operation(), OciLayerOperation::Extract);
    assert_eq!(
        repo.spec.selection(),
        OciSelection::SemVer {
            range: ">=1.0.0".into(),
            filter: None
        }
    );
    assert_eq!(
        repo.spec.verify.as_ref().map(|v| v.provider),
        Some(OciVerificationProvider::Cosign)
    );
    assert_eq!(repo.status().map(|s| s.observed_generation), Some(-1));
    Ok(())
}

#[tokio::test]
async fn invalid_git_repositories_are_rejected_like_flux() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace("gitrepo-invalid").await?;
    let api = dynamic_api(&ns.client, &ns.name, &GitRepository::api_resource());
    let valid = json!({"url": "https://example.com/org/repo", "interval": "1m"});
    let with = |patch: Value| {
        let mut spec = valid.clone();
        for (k, v) in patch.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };

    // (name, spec, a fragment of the API server's message)
    let cases = [
        (
            "ftp-url",
            with(json!({"url": "ftp://example.com/repo"})),
            "spec.url",
        ),
        (
            "scp-url",
            with(json!({"url": "git@github.com:org/repo.git"})),
            "spec.url",
        ),
        ("no-url", json!({"interval": "1m"}), "spec.url"),
        (
            "word-interval",
            with(json!({"interval": "10 minutes"})),
            "spec.interval",
        ),
        (
            "day-interval",
            with(json!({"interval": "1d"})),
            "spec.interval",
        ),
        (
            "no-interval",
            json!({"url": "https://example.com/r"}),
            "spec.interval",
        ),
        (
            "hour-timeout",
            with(json!({"timeout": "1h"})),
            "spec.timeout",
        ),
        (
            "bad-provider",
            with(json!({"provider": "gitlab"})),
            "spec.provider",
        ),
        (
            "bad-mode",
            with(json!({"verify": {"mode": "tag", "secretRef": {"name": "k"}}})),
            "spec.verify.mode",
        ),
        (
            "verify-no-secret",
            with(json!({"verify": {"mode": "HEAD"}})),
            "spec.verify.secretRef",
        ),
        (
            "include-no-repo",
            with(json!({"include": [{"toPath": "x"}]})),
            "spec.include[0].repository",
        ),
        (
            "sa-without-provider",
            with(json!({"serviceAccountName": "git"})),
            "serviceAccountName can only be set when provider is 'azure' or 'aws'",
        ),
        (
            "sa-generic-provider",
            with(json!({"serviceAccountName": "git", "provider": "github"})),
            "serviceAccountName can only be set when provider is 'azure' or 'aws'",
        ),
    ];
    for (name, spec, fragment) in cases {
        let message = rejected(&api, &object("GitRepository", name, spec)).await?;
        assert!(
            message.contains(fragment),
            "{name}: {fragment:?} not in {message:?}"
        );
    }

    // The same rules let valid input through.
    for (name, spec) in [
        (
            "sa-azure",
            with(json!({"serviceAccountName": "git", "provider": "azure"})),
        ),
        (
            "sa-aws",
            with(json!({"serviceAccountName": "git", "provider": "aws"})),
        ),
        (
            "ssh-url",
            with(json!({"url": "ssh://git@github.com/org/repo"})),
        ),
        ("http-url", with(json!({"url": "http://git.local/repo"}))),
        (
            "fancy-durations",
            with(json!({"interval": "1h30m", "timeout": "1.5m"})),
        ),
        (
            "legacy-mode",
            with(json!({"verify": {"mode": "head", "secretRef": {"name": "k"}}})),
        ),
    ] {
        create(&api, &object("GitRepository", name, spec)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn invalid_oci_repositories_are_rejected_like_flux() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace("ocirepo-invalid").await?;
    let api = dynamic_api(&ns.client, &ns.name, &OciRepository::api_resource());
    let valid = json!({"url": "oci://ghcr.io/org/app", "interval": "5m"});
    let with = |patch: Value| {
        let mut spec = valid.clone();
        for (k, v) in patch.as_object().unwrap() {
            spec[k] = v.clone();
        }
        spec
    };

    let cases = [
        (
            "https-url",
            with(json!({"url": "https://ghcr.io/org/app"})),
            "spec.url",
        ),
        (
            "bare-url",
            with(json!({"url": "ghcr.io/org/app"})),
            "spec.url",
        ),
        (
            "word-interval",
            with(json!({"interval": "often"})),
            "spec.interval",
        ),
        (
            "hour-timeout",
            with(json!({"timeout": "2h"})),
            "spec.timeout",
        ),
        (
            "bad-operation",
            with(json!({"layerSelector": {"operation": "unpack"}})),
            "spec.layerSelector.operation",
        ),
        (
            "bad-provider",
            with(json!({"provider": "docker"})),
            "spec.provider",
        ),
        (
            "bad-verify-provider",
            with(json!({"verify": {"provider": "gpg"}})),
            "spec.verify.provider",
        ),
        (
            "oidc-no-subject",
            with(json!({"verify": {"matchOIDCIdentity": [{"issuer": ".*"}]}})),
            "spec.verify.matchOIDCIdentity[0].subject",
        ),
    ];
    for (name, spec, fragment) in cases {
        let message = rejected(&api, &object("OCIRepository", name, spec)).await?;
        assert!(
            message.contains(fragment),
            "{name}: {fragment:?} not in {message:?}"
        );
    }

    for (name, spec) in [
        (
            "copy-layer",
            with(json!({"layerSelector": {"operation": "copy"}})),
        ),
        (
            "notation",
            with(json!({"verify": {"provider": "notation"}})),
        ),
        (
            "digest",
            with(json!({"ref": {"digest": "sha256:abc"}, "provider": "gcp"})),
        ),
    ] {
        create(&api, &object("OCIRepository", name, spec)).await?;
    }
    Ok(())
}

#[tokio::test]
async fn discovery_shows_flux_short_names_categories_and_columns() -> Result<()> {
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace("source-discovery").await?;
    let client = ns.client.clone();

    let list: k8s_openapi::apimachinery::pkg::apis::meta::v1::APIResourceList = client
        .request(http::Request::get("/apis/source.toolkit.fluxcd.io/v1").body(Vec::new())?)
        .await?;
    for (plural, short) in [
        ("gitrepositories", "gitrepo"),
        ("ocirepositories", "ocirepo"),
    ] {
        let resource = list
            .resources
            .iter()
            .find(|r| r.name == plural)
            .with_context(|| format!("{plural} not served"))?;
        assert_eq!(
            resource.short_names.as_deref(),
            Some(&[short.to_owned()][..])
        );
        assert_eq!(
            resource.categories.as_deref(),
            Some(
                &[
                    "all".to_owned(),
                    "fluxcd".to_owned(),
                    "fluxcd-sources".to_owned()
                ][..]
            )
        );
        assert!(resource.namespaced);
    }
    ensure!(
        list.resources
            .iter()
            .any(|r| r.name == "gitrepositories/status"),
        "no status subresource for gitrepositories"
    );

    // `kubectl get gitrepositories` columns, as the server renders them.
    let api = dynamic_api(&client, &ns.name, &GitRepository::api_resource());
    create(
        &api,
        &object(
            "GitRepository",
            "table",
            json!({"url": "https://example.com/r", "interval": "1m"}),
        ),
    )
    .await?;
    let api = dynamic_api(&client, &ns.name, &OciRepository::api_resource());
    create(
        &api,
        &object(
            "OCIRepository",
            "table",
            json!({"url": "oci://example.com/r", "interval": "1m"}),
        ),
    )
    .await?;
    for (plural, want) in [
        ("gitrepositories", ["Name", "URL", "Age", "Ready", "Status"]),
        ("ocirepositories", ["Name", "URL", "Ready", "Status", "Age"]),
    ] {
        let request = http::Request::get(format!(
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/{}/{plural}",
            ns.name
        ))
        .header(
            http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        )
        .body(Vec::new())?;
        let table: Value = client.request(request).await?;
        let columns: Vec<&str> = table["columnDefinitions"]
            .as_array()
            .context("not a Table")?
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(columns, want, "{plural}");
        assert_eq!(
            table["rows"][0]["cells"][1],
            json!(if plural == "gitrepositories" {
                "https://example.com/r"
            } else {
                "oci://example.com/r"
            })
        );
    }
    Ok(())
}
