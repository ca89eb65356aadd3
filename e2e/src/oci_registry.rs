//! A real OCI registry for tests: Debian's `docker-registry` (CNCF distribution v2) on a loopback port
//! over plain HTTP, with filesystem storage in a temporary folder and optional htpasswd basic auth, plus
//! a small client that pushes and pulls artifacts through the registry HTTP API.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use e2e::oci_registry::{OciArtifact, OciRegistry, RegistryOptions};
//!
//! let registry = OciRegistry::start(RegistryOptions::default().basic_auth("flux", "s3cret"))?;
//! let artifact = OciArtifact::flux(
//!     &[("deploy/app.yaml", "kind: ConfigMap\n")],
//!     "https://github.com/org/app",
//!     "main@sha1:0123456789abcdef0123456789abcdef01234567",
//! )?;
//! let pushed = registry.client().push_artifact("org/app", "v1.0.0", &artifact).await?;
//! let url = registry.oci_url("org/app"); // oci://127.0.0.1:<port>/org/app
//! # let _ = (url, pushed); Ok(()) }
//! ```
//!
//! # Guarantees
//! - The same [`OciArtifact`] always gives the same manifest digest (fixed `created` annotation unless
//!   set, tarballs with zeroed times and owners).
//! - The registry process stops when [`OciRegistry`] is dropped and dies with the test process.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use reqwest::{Method, StatusCode, header};
use sha2::{Digest as _, Sha256};
use tempfile::TempDir;

use crate::process::{Lifetime, Managed, free_port, log_tail};

/// Where Debian's `docker-registry` package installs the registry.
const REGISTRY_BINARY: &str = "/usr/bin/docker-registry";

/// The media type of an OCI image manifest.
pub const OCI_MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The media type of an OCI image index.
pub const OCI_INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// The config media type of artifacts made by `flux push artifact`.
pub const FLUX_CONFIG_MEDIA_TYPE: &str = "application/vnd.cncf.flux.config.v1+json";
/// The layer media type of artifacts made by `flux push artifact` (a gzipped tarball).
pub const FLUX_CONTENT_MEDIA_TYPE: &str = "application/vnd.cncf.flux.content.v1.tar+gzip";
/// The manifest annotation naming where the content comes from (a Git URL).
pub const ANNOTATION_SOURCE: &str = "org.opencontainers.image.source";
/// The manifest annotation naming the source revision (`main@sha1:<hash>`).
pub const ANNOTATION_REVISION: &str = "org.opencontainers.image.revision";
/// The manifest annotation with the creation time (RFC 3339).
pub const ANNOTATION_CREATED: &str = "org.opencontainers.image.created";
/// The `created` annotation of [`OciArtifact::flux`] unless [`OciArtifact::created`] changes it.
pub const DEFAULT_CREATED: &str = "2024-01-01T00:00:00Z";

/// How the registry authenticates. The default lets everyone push and pull.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    basic_auth: Option<(String, String)>,
}

impl RegistryOptions {
    /// Requires HTTP basic auth with this user and password (an htpasswd file with a bcrypt hash).
    pub fn basic_auth(mut self, user: &str, password: &str) -> Self {
        self.basic_auth = Some((user.to_string(), password.to_string()));
        self
    }
}

/// A running `docker-registry` on 127.0.0.1. Dropping it stops the registry and removes its storage.
#[derive(Debug)]
pub struct OciRegistry {
    port: u16,
    credentials: Option<(String, String)>,
    http: reqwest::Client,
    process: Managed,
    // Dropped after the process (fields drop in order).
    dir: TempDir,
}

impl OciRegistry {
    /// Starts a registry on a free loopback port and waits until it answers.
    pub fn start(options: RegistryOptions) -> Result<Self> {
        if !Path::new(REGISTRY_BINARY).exists() {
            bail!("{REGISTRY_BINARY} is missing: install Debian's docker-registry package");
        }
        let dir = tempfile::Builder::new()
            .prefix("ferroflux-registry-")
            .tempdir()
            .context("cannot create the registry folder")?;
        let htpasswd = match &options.basic_auth {
            Some((user, password)) => {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, htpasswd_line(user, password)?)?;
                Some(path)
            }
            None => None,
        };
        let config = dir.path().join("config.yml");
        let http = http_client()?;
        let mut last_error = None;
        for attempt in 0..3 {
            let port = free_port()?;
            std::fs::write(
                &config,
                registry_config(dir.path(), port, htpasswd.as_deref()),
            )?;
            let log = dir.path().join(format!("registry-{attempt}.log"));
            let args = vec!["serve".to_string(), config.display().to_string()];
            let mut process = Managed::start(
                "docker-registry",
                Path::new(REGISTRY_BINARY),
                &args,
                &log,
                Lifetime::Owner,
            )?;
            match wait_for_port(&mut process, port) {
                Ok(()) => {
                    return Ok(Self {
                        port,
                        credentials: options.basic_auth,
                        http,
                        process,
                        dir,
                    });
                }
                Err(e) => {
                    let port_taken = log_tail(&log, 20).contains("address already in use");
                    last_error = Some(e);
                    if !port_taken {
                        break;
                    }
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("docker-registry did not start")))
    }

    /// `127.0.0.1:<port>`: the registry host as it appears in image references and docker configs.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.host())
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `oci://127.0.0.1:<port>/<repository>`: an OCIRepository `spec.url` (set `spec.insecure`: the
    /// registry speaks plain HTTP).
    pub fn oci_url(&self, repository: &str) -> String {
        format!("oci://{}/{repository}", self.host())
    }

    /// The user and password, when basic auth is configured.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(user, password)| (user.as_str(), password.as_str()))
    }

    /// A docker config JSON (the `.dockerconfigjson` key of a `kubernetes.io/dockerconfigjson` secret)
    /// with this registry's credentials, when basic auth is configured.
    pub fn docker_config_json(&self) -> Option<String> {
        self.credentials()
            .map(|(user, password)| docker_config_json(&self.host(), user, password))
    }

    /// A client that uses the registry's own credentials (if any).
    pub fn client(&self) -> RegistryClient {
        RegistryClient::with_http(&self.base_url(), self.credentials(), self.http.clone())
    }

    /// A client without credentials.
    pub fn anonymous_client(&self) -> RegistryClient {
        RegistryClient::with_http(&self.base_url(), None, self.http.clone())
    }

    /// The registry's log file.
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// The registry's storage folder.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }
}

/// A docker config JSON for one registry host: `{"auths":{"<host>":{"username","password","auth"}}}`.
pub fn docker_config_json(host: &str, user: &str, password: &str) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    serde_json::json!({
        "auths": { host: { "username": user, "password": password, "auth": auth } }
    })
    .to_string()
}

/// One htpasswd line with a bcrypt hash (the only scheme the registry accepts). The lowest cost keeps
/// each authenticated request fast.
fn htpasswd_line(user: &str, password: &str) -> Result<String> {
    let hash = bcrypt::hash(password, 4).context("cannot hash the registry password")?;
    Ok(format!("{user}:{hash}\n"))
}

fn registry_config(dir: &Path, port: u16, htpasswd: Option<&Path>) -> String {
    let mut config = format!(
        "version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:{port}
  secret: {secret}
",
        storage = dir.join("storage").display(),
        secret = hex::encode(rand::random::<[u8; 16]>()),
    );
    if let Some(path) = htpasswd {
        config.push_str(&format!(
            "auth:
  htpasswd:
    realm: ferroflux-registry
    path: {}
",
            path.display()
        ));
    }
    config
}

fn wait_for_port(process: &mut Managed, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        process.check_running()?;
        if TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "docker-registry did not listen on 127.0.0.1:{port}; last lines of {}:\n{}",
                process.log().display(),
                log_tail(process.log(), 20)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP client for loopback registries: no proxy, a bounded wait.
fn http_client() -> Result<reqwest::Client> {
    crate::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .context("cannot build an HTTP client")
}

/// The `sha256:<hex>` digest of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// A reproducible gzipped tarball of `files` (path, content): entries in the given order, mode 0644,
/// owner 0, time 0, and a gzip header without time or name.
pub fn tar_gz<C: AsRef<[u8]>>(files: &[(&str, C)]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, content) in files {
        let content = content.as_ref();
        let mut header = tar::Header::new_ustar();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, content)
            .with_context(|| format!("cannot add {path} to the tarball"))?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// One layer of an [`OciArtifact`].
#[derive(Debug, Clone)]
pub struct OciLayer {
    /// The layer media type.
    pub media_type: String,
    /// The layer bytes.
    pub data: Vec<u8>,
    /// Layer annotations (in the manifest's layer descriptor).
    pub annotations: BTreeMap<String, String>,
}

/// An artifact to push: a config blob, layers and manifest annotations, as one OCI image manifest.
#[derive(Debug, Clone)]
pub struct OciArtifact {
    /// The config media type.
    pub config_media_type: String,
    /// The config blob.
    pub config: Vec<u8>,
    /// The layers, in order.
    pub layers: Vec<OciLayer>,
    /// Manifest annotations.
    pub annotations: BTreeMap<String, String>,
}

impl OciArtifact {
    /// An artifact as `flux push artifact` makes it: config `{}` of [`FLUX_CONFIG_MEDIA_TYPE`], one
    /// [`FLUX_CONTENT_MEDIA_TYPE`] layer with `files` (see [`tar_gz`]), and the source, revision and
    /// created ([`DEFAULT_CREATED`]) annotations.
    pub fn flux<C: AsRef<[u8]>>(files: &[(&str, C)], source: &str, revision: &str) -> Result<Self> {
        Ok(Self {
            config_media_type: FLUX_CONFIG_MEDIA_TYPE.to_string(),
            config: b"{}".to_vec(),
            layers: vec![OciLayer {
                media_type: FLUX_CONTENT_MEDIA_TYPE.to_string(),
                data: tar_gz(files)?,
                annotations: BTreeMap::new(),
            }],
            annotations: BTreeMap::from([
                (ANNOTATION_SOURCE.to_string(), source.to_string()),
                (ANNOTATION_REVISION.to_string(), revision.to_string()),
                (ANNOTATION_CREATED.to_string(), DEFAULT_CREATED.to_string()),
            ]),
        })
    }

    /// Sets the `created` annotation (RFC 3339).
    pub fn created(self, created: &str) -> Self {
        self.annotation(ANNOTATION_CREATED, created)
    }

    /// Sets one manifest annotation.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        self.annotations.insert(key.to_string(), value.to_string());
        self
    }

    /// Appends a layer (for `layerSelector` tests: another media type, or a plain file to copy).
    pub fn layer(mut self, media_type: &str, data: Vec<u8>) -> Self {
        self.layers.push(OciLayer {
            media_type: media_type.to_string(),
            data,
            annotations: BTreeMap::new(),
        });
        self
    }

    /// The manifest JSON that [`RegistryClient::push_artifact`] pushes.
    pub fn manifest(&self) -> Vec<u8> {
        let descriptor = |media_type: &str, data: &[u8], annotations: &BTreeMap<String, String>| {
            let mut d = serde_json::json!({
                "mediaType": media_type,
                "digest": sha256_digest(data),
                "size": data.len(),
            });
            if !annotations.is_empty() {
                d["annotations"] = serde_json::json!(annotations);
            }
            d
        };
        let mut manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST_MEDIA_TYPE,
            "config": descriptor(&self.config_media_type, &self.config, &BTreeMap::new()),
            "layers": self
                .layers
                .iter()
                .map(|l| descriptor(&l.media_type, &l.data, &l.annotations))
                .collect::<Vec<_>>(),
        });
        if !self.annotations.is_empty() {
            manifest["annotations"] = serde_json::json!(self.annotations);
        }
        manifest.to_string().into_bytes()
    }
}

/// What [`RegistryClient::push_artifact`] pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedArtifact {
    /// The manifest digest (`sha256:<hex>`): what an OCIRepository revision ends with.
    pub digest: String,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The config blob digest.
    pub config_digest: String,
    /// The layer digests, in order.
    pub layer_digests: Vec<String>,
}

/// A manifest fetched from the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedManifest {
    /// The digest the registry reported (checked against the bytes).
    pub digest: String,
    /// The `Content-Type` the registry answered with.
    pub media_type: String,
    /// The manifest bytes.
    pub bytes: Vec<u8>,
}

/// A client of the registry HTTP API (`/v2/...`) with optional basic auth.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base_url: String,
    credentials: Option<(String, String)>,
    http: reqwest::Client,
}

impl RegistryClient {
    /// A client of the registry at `base_url` (`http://127.0.0.1:<port>`).
    pub fn new(base_url: &str, credentials: Option<(&str, &str)>) -> Result<Self> {
        Ok(Self::with_http(base_url, credentials, http_client()?))
    }

    fn with_http(base_url: &str, credentials: Option<(&str, &str)>, http: reqwest::Client) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials: credentials.map(|(u, p)| (u.to_string(), p.to_string())),
            http,
        }
    }

    /// The same client with other credentials.
    pub fn with_credentials(mut self, user: &str, password: &str) -> Self {
        self.credentials = Some((user.to_string(), password.to_string()));
        self
    }

    /// `GET /v2/`: the API version check; returns the status (200, or 401 when credentials are missing
    /// or wrong) and the `WWW-Authenticate` header.
    pub async fn ping(&self) -> Result<(StatusCode, Option<String>)> {
        let response = self.request(Method::GET, "/v2/").send().await?;
        let challenge = response
            .headers()
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((response.status(), challenge))
    }

    /// Uploads a blob unless the repository has it (monolithic upload: `POST` a session, then `PUT`
    /// the bytes with their digest). Returns the digest.
    pub async fn push_blob(&self, repository: &str, data: &[u8]) -> Result<String> {
        let digest = sha256_digest(data);
        let head = self
            .request(Method::HEAD, &format!("/v2/{repository}/blobs/{digest}"))
            .send()
            .await?;
        if head.status() == StatusCode::OK {
            return Ok(digest);
        }
        let started = self
            .request(Method::POST, &format!("/v2/{repository}/blobs/uploads/"))
            .send()
            .await?;
        let started = expect(started, StatusCode::ACCEPTED, "start a blob upload").await?;
        let location = started
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("the registry gave no upload location")?;
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base_url)
        } else {
            location.to_string()
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = self
            .authorize(
                self.http
                    .put(format!("{location}{separator}digest={digest}"))
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .body(data.to_vec()),
            )
            .send()
            .await?;
        expect(put, StatusCode::CREATED, "upload a blob").await?;
        Ok(digest)
    }

    /// `PUT`s a manifest under `reference` (a tag or a digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        manifest: &[u8],
    ) -> Result<String> {
        let digest = sha256_digest(manifest);
        let response = self
            .request(
                Method::PUT,
                &format!("/v2/{repository}/manifests/{reference}"),
            )
            .header(header::CONTENT_TYPE, media_type)
            .body(manifest.to_vec())
            .send()
            .await?;
        let response = expect(response, StatusCode::CREATED, "push a manifest").await?;
        if let Some(reported) = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            ensure!(
                reported == digest,
                "the registry stored manifest {reported}, expected {digest}"
            );
        }
        Ok(digest)
    }

    /// Pushes the config, the layers and the manifest of `artifact` under `tag`.
    pub async fn push_artifact(
        &self,
        repository: &str,
        tag: &str,
        artifact: &OciArtifact,
    ) -> Result<PushedArtifact> {
        let config_digest = self.push_blob(repository, &artifact.config).await?;
        let mut layer_digests = Vec::with_capacity(artifact.layers.len());
        for layer in &artifact.layers {
            layer_digests.push(self.push_blob(repository, &layer.data).await?);
        }
        let manifest = artifact.manifest();
        let digest = self
            .push_manifest(repository, tag, OCI_MANIFEST_MEDIA_TYPE, &manifest)
            .await?;
        Ok(PushedArtifact {
            digest,
            manifest,
            config_digest,
            layer_digests,
        })
    }

    /// Fetches the manifest named by `reference` (a tag or a digest), checking its digest.
    pub async fn manifest(&self, repository: &str, reference: &str) -> Result<FetchedManifest> {
        let response = self
            .request(
                Method::GET,
                &format!("/v2/{repository}/manifests/{reference}"),
            )
            .header(
                header::ACCEPT,
                format!(
                    "{OCI_MANIFEST_MEDIA_TYPE}, {OCI_INDEX_MEDIA_TYPE}, \
                     application/vnd.docker.distribution.manifest.v2+json, \
                     application/vnd.docker.distribution.manifest.list.v2+json"
                ),
            )
            .send()
            .await?;
        let response = expect(response, StatusCode::OK, "fetch a manifest").await?;
        let media_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let reported = response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = response.bytes().await?.to_vec();
        let digest = sha256_digest(&bytes);
        if let Some(reported) = reported {
            ensure!(
                reported == digest,
                "the registry says {reported} but the manifest hashes to {digest}"
            );
        }
        Ok(FetchedManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Fetches a blob and checks its digest.
    pub async fn blob(&self, repository: &str, digest: &str) -> Result<Vec<u8>> {
        let response = self
            .request(Method::GET, &format!("/v2/{repository}/blobs/{digest}"))
            .send()
            .await?;
        let response = expect(response, StatusCode::OK, "fetch a blob").await?;
        let bytes = response.bytes().await?.to_vec();
        ensure!(
            sha256_digest(&bytes) == digest,
            "blob {digest} has other content"
        );
        Ok(bytes)
    }

    /// The tags of a repository (`GET /v2/<repository>/tags/list`), as the registry lists them.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let response = self
            .request(Method::GET, &format!("/v2/{repository}/tags/list"))
            .send()
            .await?;
        let response = expect(response, StatusCode::OK, "list tags").await?;
        Ok(response.json::<TagList>().await?.tags.unwrap_or_default())
    }

    /// Tags the manifest named by `reference` as `tag` too (like `flux tag artifact`); returns its digest.
    pub async fn tag(&self, repository: &str, reference: &str, tag: &str) -> Result<String> {
        let manifest = self.manifest(repository, reference).await?;
        self.push_manifest(repository, tag, &manifest.media_type, &manifest.bytes)
            .await
    }

    /// Deletes a manifest by digest (every tag pointing to it goes with it).
    pub async fn delete_manifest(&self, repository: &str, digest: &str) -> Result<()> {
        let response = self
            .request(
                Method::DELETE,
                &format!("/v2/{repository}/manifests/{digest}"),
            )
            .send()
            .await?;
        expect(response, StatusCode::ACCEPTED, "delete a manifest").await?;
        Ok(())
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.authorize(
            self.http
                .request(method, format!("{}{path}", self.base_url)),
        )
    }

    fn authorize(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some((user, password)) => builder.basic_auth(user, Some(password)),
            None => builder,
        }
    }
}

/// Fails with the status and body unless the response has the `wanted` status.
async fn expect(
    response: reqwest::Response,
    wanted: StatusCode,
    what: &str,
) -> Result<reqwest::Response> {
    if response.status() == wanted {
        return Ok(response);
    }
    let status = response.status();
    let url = response.url().clone();
    let body = response.text().await.unwrap_or_default();
    bail!(
        "cannot {what}: {status} from {}: {}",
        url.path(),
        body.trim()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tarballs_are_reproducible_and_readable() {
        let files = [("a/b.yaml", "x: 1\n"), ("c.txt", "hello")];
        let first = tar_gz(&files).unwrap();
        assert_eq!(first, tar_gz(&files).unwrap());
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(first.as_slice()));
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            seen.push((entry.path().unwrap().display().to_string(), text));
        }
        assert_eq!(
            seen,
            [
                ("a/b.yaml".to_string(), "x: 1\n".to_string()),
                ("c.txt".to_string(), "hello".to_string())
            ]
        );
    }

    #[test]
    fn flux_manifest_describes_config_layer_and_annotations() {
        let artifact = OciArtifact::flux(&[("f", "1")], "https://example.org/r", "main@sha1:ab")
            .unwrap()
            .created("2025-05-05T00:00:00Z");
        let manifest: serde_json::Value = serde_json::from_slice(&artifact.manifest()).unwrap();
        assert_eq!(manifest["mediaType"], OCI_MANIFEST_MEDIA_TYPE);
        assert_eq!(manifest["config"]["mediaType"], FLUX_CONFIG_MEDIA_TYPE);
        assert_eq!(manifest["config"]["digest"], sha256_digest(b"{}"));
        assert_eq!(manifest["config"]["size"], 2);
        assert_eq!(manifest["layers"][0]["mediaType"], FLUX_CONTENT_MEDIA_TYPE);
        assert_eq!(
            manifest["layers"][0]["digest"],
            sha256_digest(&artifact.layers[0].data)
        );
        assert_eq!(
            manifest["annotations"][ANNOTATION_CREATED],
            "2025-05-05T00:00:00Z"
        );
        assert_eq!(manifest["annotations"][ANNOTATION_REVISION], "main@sha1:ab");
        assert_eq!(
            manifest["annotations"][ANNOTATION_SOURCE],
            "https://example.org/r"
        );
    }

    #[test]
    fn htpasswd_line_is_a_bcrypt_hash_of_the_password() {
        let line = htpasswd_line("flux", "s3cret").unwrap();
        let (user, hash) = line.trim_end().split_once(':').unwrap();
        assert_eq!(user, "flux");
        assert!(hash.starts_with("$2"));
        assert!(bcrypt::verify("s3cret", hash).unwrap());
        assert!(!bcrypt::verify("other", hash).unwrap());
    }

    #[test]
    fn docker_config_json_carries_user_password_and_auth() {
        let json: serde_json::Value =
            serde_json::from_str(&docker_config_json("127.0.0.1:5000", "u", "p")).unwrap();
        let entry = &json["auths"]["127.0.0.1:5000"];
        assert_eq!(entry["username"], "u");
        assert_eq!(entry["password"], "p");
        assert_eq!(entry["auth"], "dTpw");
    }
}
