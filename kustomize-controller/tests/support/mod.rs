//! Test support for the kustomize-controller integration tests: a namespace per test with its
//! own in-process controller (watching only that namespace), a tiny artifact server on
//! loopback, reproducible artifacts made from a map of files, and a GitRepository whose status
//! the test writes itself (no source-controller needed).
#![allow(clippy::unwrap_used, dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::core::v1::Event;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use kustomize_controller::api::v1::Kustomization;
use kustomize_controller::controller::{Config, KustomizeController};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use toolkit_sdk::flags::{LogEncoding, LogLevel};

/// How long a test waits for the controller to reach a state.
pub const WAIT: Duration = Duration::from_secs(60);

/// A namespace with a kustomize-controller of its own and an artifact server.
pub struct Env {
    pub ns: e2e::TestNamespace,
    pub client: kube::Client,
    pub kube_config: kube::Config,
    pub server: ArtifactServer,
    pub controller: Option<KustomizeController>,
}

/// A fresh namespace, an artifact server, and a controller watching only the namespace.
pub async fn env(prefix: &str) -> Result<Env> {
    toolkit_sdk::tls::install_crypto_provider();
    let _ = toolkit_sdk::logging::init_with(LogLevel::Info, LogEncoding::Console);
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace(prefix).await?;
    let client = cluster.client().await?;
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig_path())?;
    let kube_config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await?;
    let server = ArtifactServer::start().await?;
    let mut env = Env {
        ns,
        client,
        kube_config,
        server,
        controller: None,
    };
    env.start()?;
    Ok(env)
}

impl Env {
    /// The controller configuration of this test: loopback endpoints, this namespace only, fast
    /// retries.
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        config.options.namespace = Some(self.ns.name.clone());
        config.options.runtime.watch_all_namespaces = false;
        config.options.runtime.min_retry_delay = Duration::from_millis(200);
        config.options.runtime.max_retry_delay = Duration::from_secs(2);
        config.options.dependency_requeue = Duration::from_secs(1);
        config.options.observability.metrics_addr = "127.0.0.1:0".parse().unwrap();
        config.options.observability.health_addr = "127.0.0.1:0".parse().unwrap();
        config
    }

    /// Starts the controller.
    pub fn start(&mut self) -> Result<()> {
        self.controller = Some(KustomizeController::start(
            self.config(),
            self.kube_config.clone(),
        )?);
        Ok(())
    }

    /// Stops the controller gracefully.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(controller) = self.controller.take() {
            controller.stop().await?;
        }
        Ok(())
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    fn git_repositories(&self) -> Api<DynamicObject> {
        let resource = ApiResource {
            group: "source.toolkit.fluxcd.io".into(),
            version: "v1".into(),
            api_version: "source.toolkit.fluxcd.io/v1".into(),
            kind: "GitRepository".into(),
            plural: "gitrepositories".into(),
        };
        Api::namespaced_with(self.client.clone(), &self.ns.name, &resource)
    }

    /// Creates the GitRepository `name` (its URL is never fetched).
    pub async fn git_repository(&self, name: &str) -> Result<()> {
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": self.ns.name},
            "spec": {"url": "https://example.invalid/repo", "interval": "10m"}
        }))?;
        self.git_repositories()
            .create(&PostParams::default(), &object)
            .await?;
        Ok(())
    }

    /// Serves `files` as a reproducible tarball and publishes it as the artifact of the
    /// GitRepository `name` with `revision`.
    pub async fn publish(&self, name: &str, revision: &str, files: &[(&str, &str)]) -> Result<()> {
        let bytes = tarball(files)?;
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let path = format!(
            "gitrepository/{}/{name}/{}.tar.gz",
            self.ns.name,
            &digest[7..19]
        );
        let size = bytes.len();
        self.server.put(&path, bytes);
        let status = json!({"status": {
            "observedGeneration": 1,
            "conditions": [{
                "type": "Ready", "status": "True", "reason": "Succeeded",
                "message": format!("stored artifact for revision '{revision}'"),
                "lastTransitionTime": jiff::Timestamp::now().to_string(),
            }],
            "artifact": {
                "path": path,
                "url": format!("http://{}/{path}", self.server.addr),
                "revision": revision,
                "digest": digest,
                "lastUpdateTime": jiff::Timestamp::now().to_string(),
                "size": size,
            }
        }});
        self.git_repositories()
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
            .await?;
        Ok(())
    }

    /// Creates a Kustomization from its spec.
    pub async fn kustomization(&self, name: &str, spec: Value) -> Result<Kustomization> {
        let ks: Kustomization = serde_json::from_value(json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": name, "namespace": self.ns.name},
            "spec": spec,
        }))?;
        Ok(self
            .api::<Kustomization>()
            .create(&PostParams::default(), &ks)
            .await?)
    }

    /// Creates any namespaced object from its JSON (namespace filled in).
    pub async fn create<K>(&self, mut value: Value) -> Result<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + serde::Serialize,
    {
        value["metadata"]["namespace"] = json!(self.ns.name);
        let object: K = serde_json::from_value(value)?;
        Ok(self
            .api::<K>()
            .create(&PostParams::default(), &object)
            .await?)
    }

    /// Merge-patches an object.
    pub async fn patch<K>(&self, name: &str, patch: Value) -> Result<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
    {
        Ok(self
            .api::<K>()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?)
    }

    /// Asks for a reconcile with `reconcile.fluxcd.io/requestedAt` and returns the token.
    pub async fn request_reconcile(&self, name: &str) -> Result<String> {
        let token = format!("{}", jiff::Timestamp::now().as_nanosecond());
        self.patch::<Kustomization>(
            name,
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        )
        .await?;
        Ok(token)
    }

    /// Polls the Kustomization until `check` holds; fails with its last state.
    pub async fn wait_ks(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Kustomization) -> bool,
    ) -> Result<Kustomization> {
        let api = self.api::<Kustomization>();
        let deadline = Instant::now() + WAIT;
        loop {
            let current = api.get_opt(name).await?;
            if let Some(obj) = &current
                && check(obj)
            {
                return Ok(obj.clone());
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for {name} to be {what}; last state:\n{}",
                    serde_json::to_string_pretty(&current.map(|k| k.status)).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `Ready` has `status` and `reason` for the current generation.
    pub async fn wait_ready(
        &self,
        name: &str,
        status: &str,
        reason: &str,
    ) -> Result<Kustomization> {
        self.wait_ks(name, &format!("Ready={status} ({reason})"), |ks| {
            ready_is(ks, status, reason)
        })
        .await
    }

    /// Polls until the object `name` of type `K` is gone.
    pub async fn wait_gone<K>(&self, name: &str) -> Result<()>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
    {
        let api = self.api::<K>();
        let deadline = Instant::now() + WAIT;
        while api.get_opt(name).await?.is_some() {
            if Instant::now() > deadline {
                bail!("timed out waiting for {name} to be deleted");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// The Kubernetes Events about the Kustomization `name`, oldest first.
    pub async fn events(&self, name: &str) -> Result<Vec<Event>> {
        let events = self.api::<Event>().list(&ListParams::default()).await?;
        let mut found: Vec<Event> = events
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.involved_object.kind.as_deref() == Some("Kustomization")
            })
            .collect();
        found.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        Ok(found)
    }

    /// Waits for an Event about `name` whose message contains `text`.
    pub async fn wait_event(&self, name: &str, text: &str) -> Result<Event> {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = self.events(name).await?;
            if let Some(event) = events
                .iter()
                .find(|e| e.message.as_deref().is_some_and(|m| m.contains(text)))
            {
                return Ok(event.clone());
            }
            if Instant::now() > deadline {
                let messages: Vec<_> = events.iter().map(|e| e.message.clone()).collect();
                bail!("no event about {name} containing {text:?}; events: {messages:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Whether `Ready` has `status` and `reason`, for the current generation when True.
pub fn ready_is(ks: &Kustomization, status: &str, reason: &str) -> bool {
    let Some(st) = &ks.status else { return false };
    let ready = st.conditions.iter().find(|c| c.type_ == "Ready");
    ready.is_some_and(|c| c.status == status && c.reason == reason)
        && (status != "True" || ks.metadata.generation == Some(st.observed_generation))
}

/// The message of `Ready`.
pub fn ready_message(ks: &Kustomization) -> String {
    ks.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// The inventory ids of a Kustomization.
pub fn inventory_ids(ks: &Kustomization) -> Vec<String> {
    ks.status
        .as_ref()
        .and_then(|s| s.inventory.as_ref())
        .map(|i| i.entries.iter().map(|e| e.id.clone()).collect())
        .unwrap_or_default()
}

/// A reproducible `.tar.gz` of `files` (path, content): sorted, zero times and owners, mode
/// 0644.
pub fn tarball(files: &[(&str, &str)]) -> Result<Vec<u8>> {
    let mut sorted: Vec<&(&str, &str)> = files.iter().collect();
    sorted.sort();
    let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut builder = tar::Builder::new(encoder);
    for (path, content) in sorted {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, content.as_bytes())?;
    }
    Ok(builder.into_inner()?.finish()?)
}

/// A minimal HTTP/1.1 file server on loopback, serving what the test puts in it.
#[derive(Clone)]
pub struct ArtifactServer {
    pub addr: std::net::SocketAddr,
    files: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl ArtifactServer {
    pub async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let files: Arc<Mutex<BTreeMap<String, Vec<u8>>>> = Arc::default();
        let served = files.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let served = served.clone();
                tokio::spawn(async move {
                    let mut buffer = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buffer.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&buffer);
                    let path = request
                        .split_whitespace()
                        .nth(1)
                        .unwrap_or("/")
                        .trim_start_matches('/')
                        .to_owned();
                    let body = served.lock().unwrap().get(&path).cloned();
                    let response = match body {
                        Some(body) => {
                            let mut head = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            head.extend_from_slice(&body);
                            head
                        }
                        None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
                    };
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Ok(Self { addr, files })
    }

    pub fn put(&self, path: &str, bytes: Vec<u8>) {
        self.files.lock().unwrap().insert(path.to_owned(), bytes);
    }
}

/// The resourceVersions of the named ConfigMaps.
pub async fn resource_versions(env: &Env, names: &[&str]) -> Result<Vec<String>> {
    let api = env.api::<k8s_openapi::api::core::v1::ConfigMap>();
    let mut versions = Vec::new();
    for name in names {
        versions.push(api.get(name).await?.resource_version().unwrap_or_default());
    }
    Ok(versions)
}
