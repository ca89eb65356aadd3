//! The test OCI registry (Debian's docker-registry), exercised through its HTTP API: push a Flux-style
//! artifact, pull it back by tag and by digest, list and move tags, and require credentials when set.
#![allow(clippy::unwrap_used)]

use std::io::Read as _;
use std::time::Instant;

use e2e::oci_registry::{
    ANNOTATION_CREATED, ANNOTATION_REVISION, ANNOTATION_SOURCE, FLUX_CONFIG_MEDIA_TYPE,
    FLUX_CONTENT_MEDIA_TYPE, OCI_MANIFEST_MEDIA_TYPE, OciArtifact, OciRegistry, RegistryOptions,
    sha256_digest,
};

fn artifact(content: &str) -> OciArtifact {
    OciArtifact::flux(
        &[("deploy/app.yaml", content), ("README.md", "hello\n")],
        "https://github.com/org/app",
        "main@sha1:0123456789abcdef0123456789abcdef01234567",
    )
    .unwrap()
}

fn untar(data: &[u8]) -> Vec<(String, String)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(data));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            (entry.path().unwrap().display().to_string(), text)
        })
        .collect()
}

#[tokio::test]
async fn push_then_pull_by_tag_and_by_digest() {
    let started = Instant::now();
    let registry = OciRegistry::start(RegistryOptions::default()).unwrap();
    eprintln!("docker-registry started in {:?}", started.elapsed());
    assert_eq!(
        registry.oci_url("org/app"),
        format!("oci://127.0.0.1:{}/org/app", registry.port())
    );
    let client = registry.client();

    let pushed = client
        .push_artifact("org/app", "v1.0.0", &artifact("kind: ConfigMap\n"))
        .await
        .unwrap();
    assert_eq!(pushed.digest, sha256_digest(&pushed.manifest));

    let by_tag = client.manifest("org/app", "v1.0.0").await.unwrap();
    assert_eq!(by_tag.digest, pushed.digest);
    assert_eq!(by_tag.bytes, pushed.manifest);
    assert_eq!(by_tag.media_type, OCI_MANIFEST_MEDIA_TYPE);
    let by_digest = client.manifest("org/app", &pushed.digest).await.unwrap();
    assert_eq!(by_digest, by_tag);

    let manifest: serde_json::Value = serde_json::from_slice(&by_tag.bytes).unwrap();
    assert_eq!(manifest["config"]["mediaType"], FLUX_CONFIG_MEDIA_TYPE);
    assert_eq!(manifest["config"]["digest"], pushed.config_digest);
    assert_eq!(manifest["layers"][0]["mediaType"], FLUX_CONTENT_MEDIA_TYPE);
    assert_eq!(manifest["layers"][0]["digest"], pushed.layer_digests[0]);
    assert_eq!(
        manifest["annotations"][ANNOTATION_SOURCE],
        "https://github.com/org/app"
    );
    assert_eq!(
        manifest["annotations"][ANNOTATION_REVISION],
        "main@sha1:0123456789abcdef0123456789abcdef01234567"
    );
    assert_eq!(
        manifest["annotations"][ANNOTATION_CREATED],
        "2024-01-01T00:00:00Z"
    );

    let layer = client
        .blob("org/app", &pushed.layer_digests[0])
        .await
        .unwrap();
    assert_eq!(
        untar(&layer),
        [
            (
                "deploy/app.yaml".to_string(),
                "kind: ConfigMap\n".to_string()
            ),
            ("README.md".to_string(), "hello\n".to_string()),
        ]
    );
    assert_eq!(client.tags("org/app").await.unwrap(), ["v1.0.0"]);

    // The same content pushed again under another tag has the same digest.
    let again = client
        .push_artifact("org/app", "latest", &artifact("kind: ConfigMap\n"))
        .await
        .unwrap();
    assert_eq!(again.digest, pushed.digest);
    // New content under an existing tag moves the tag.
    let changed = client
        .push_artifact("org/app", "latest", &artifact("kind: Secret\n"))
        .await
        .unwrap();
    assert_ne!(changed.digest, pushed.digest);
    assert_eq!(
        client.manifest("org/app", "latest").await.unwrap().digest,
        changed.digest
    );
    // Retag like `flux tag artifact`.
    let retagged = client.tag("org/app", "v1.0.0", "stable").await.unwrap();
    assert_eq!(retagged, pushed.digest);
    let mut tags = client.tags("org/app").await.unwrap();
    tags.sort();
    assert_eq!(tags, ["latest", "stable", "v1.0.0"]);

    // Deleting the manifest removes every tag on it.
    client
        .delete_manifest("org/app", &pushed.digest)
        .await
        .unwrap();
    let err = client.manifest("org/app", "v1.0.0").await.unwrap_err();
    assert!(format!("{err:#}").contains("404"), "{err:#}");
}

#[tokio::test]
async fn credentials_are_required_when_configured() {
    let started = Instant::now();
    let registry =
        OciRegistry::start(RegistryOptions::default().basic_auth("flux", "s3cret")).unwrap();
    eprintln!(
        "docker-registry with htpasswd started in {:?}",
        started.elapsed()
    );

    let (status, challenge) = registry.anonymous_client().ping().await.unwrap();
    assert_eq!(status, 401);
    assert_eq!(
        challenge.as_deref(),
        Some("Basic realm=\"ferroflux-registry\"")
    );
    let (status, _) = registry.client().ping().await.unwrap();
    assert_eq!(status, 200);

    let pushed = registry
        .client()
        .push_artifact("app", "v1", &artifact("a: 1\n"))
        .await
        .unwrap();
    assert_eq!(
        registry
            .client()
            .manifest("app", "v1")
            .await
            .unwrap()
            .digest,
        pushed.digest
    );

    let anonymous = registry
        .anonymous_client()
        .manifest("app", "v1")
        .await
        .unwrap_err();
    assert!(format!("{anonymous:#}").contains("401"), "{anonymous:#}");
    let wrong = registry
        .client()
        .with_credentials("flux", "wrong")
        .tags("app")
        .await
        .unwrap_err();
    assert!(format!("{wrong:#}").contains("401"), "{wrong:#}");
    let push_denied = registry
        .anonymous_client()
        .push_artifact("app", "v2", &artifact("a: 2\n"))
        .await
        .unwrap_err();
    assert!(format!("{push_denied:#}").contains("401"));
    assert_eq!(registry.client().tags("app").await.unwrap(), ["v1"]);

    let config: serde_json::Value =
        serde_json::from_str(&registry.docker_config_json().unwrap()).unwrap();
    assert_eq!(config["auths"][registry.host()]["username"], "flux");
    assert_eq!(config["auths"][registry.host()]["password"], "s3cret");
}
