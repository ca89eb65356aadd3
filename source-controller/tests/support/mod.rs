//! Test support for the source-controller integration tests: a namespace per test with its own
//! in-process source-controller (own storage, file server and endpoints on loopback, watching
//! only that namespace), polling, artifact downloads and the reconcile duration metric.
#![allow(clippy::unwrap_used, dead_code, missing_docs)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::{Event, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use source_controller::controller::{Config, SourceController};
use tempfile::TempDir;
use toolkit_sdk::api::Artifact;
use toolkit_sdk::artifact_fetch::{ArtifactFetcher, FetchLimits, RetryPolicy};
use toolkit_sdk::flags::{LogEncoding, LogLevel};

/// How long a test waits for the controller to reach a state.
pub const WAIT: Duration = Duration::from_secs(60);

/// A namespace with a source-controller of its own.
pub struct Env {
    pub ns: e2e::TestNamespace,
    pub client: kube::Client,
    pub storage: TempDir,
    pub controller: Option<SourceController>,
}

/// A fresh namespace and a controller watching only it.
pub async fn env(prefix: &str) -> Result<Env> {
    let mut env = env_without_controller(prefix).await?;
    env.start().await?;
    Ok(env)
}

/// A fresh namespace; start the controller with [`Env::start`] or [`Env::start_as`].
pub async fn env_without_controller(prefix: &str) -> Result<Env> {
    toolkit_sdk::tls::install_crypto_provider();
    let _ = toolkit_sdk::logging::init_with(LogLevel::Info, LogEncoding::Console);
    let cluster = e2e::cluster().await?;
    let ns = cluster.namespace(prefix).await?;
    let client = cluster.client().await?;
    let storage = tempfile::Builder::new()
        .prefix("source-controller-storage-")
        .tempdir()?;
    Ok(Env {
        ns,
        client,
        storage,
        controller: None,
    })
}

impl Env {
    /// The controller configuration of this test: loopback ports, this namespace only, fast
    /// retries.
    pub fn config(&self) -> Config {
        let mut config = Config::new(self.storage.path());
        config.storage_addr = "127.0.0.1:0".parse().unwrap();
        config.options.namespace = Some(self.ns.name.clone());
        config.options.runtime.watch_all_namespaces = false;
        config.options.runtime.min_retry_delay = Duration::from_millis(200);
        config.options.runtime.max_retry_delay = Duration::from_secs(2);
        config.options.dependency_requeue = Duration::from_secs(1);
        config.options.observability.metrics_addr = "127.0.0.1:0".parse().unwrap();
        config.options.observability.health_addr = "127.0.0.1:0".parse().unwrap();
        config
    }

    /// Starts (or restarts) the controller on the same storage directory.
    pub async fn start(&mut self) -> Result<()> {
        self.start_as(self.client.clone()).await
    }

    /// Starts the controller with `client` (for instance one acting as its ServiceAccount).
    pub async fn start_as(&mut self, client: kube::Client) -> Result<()> {
        let controller = SourceController::start(self.config(), client).await?;
        self.controller = Some(controller);
        Ok(())
    }

    /// Stops the controller gracefully.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(controller) = self.controller.take() {
            controller.stop().await?;
        }
        Ok(())
    }

    pub fn controller(&self) -> &SourceController {
        self.controller.as_ref().unwrap()
    }

    pub fn storage_path(&self) -> &Path {
        self.storage.path()
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns.name)
    }

    /// Creates an object from its YAML-like JSON (namespace filled in).
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
    pub async fn request_reconcile<K>(&self, name: &str) -> Result<String>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned,
    {
        let token = format!("{}", jiff::Timestamp::now().as_nanosecond());
        self.patch::<K>(
            name,
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        )
        .await?;
        Ok(token)
    }

    /// Creates a Secret with string data.
    pub async fn secret(&self, name: &str, data: &[(&str, &str)]) -> Result<Secret> {
        let data: BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ns.name},
            "stringData": data,
        }))?;
        Ok(self
            .api::<Secret>()
            .create(&PostParams::default(), &secret)
            .await?)
    }

    /// Replaces the string data of a Secret.
    pub async fn update_secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        let data: BTreeMap<String, String> = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.api::<Secret>()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"data": null, "stringData": data})),
            )
            .await?;
        Ok(())
    }

    /// Polls the object until `check` holds; fails with its last state.
    pub async fn wait_for<K>(&self, name: &str, what: &str, check: impl Fn(&K) -> bool) -> Result<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + serde::Serialize,
    {
        let api = self.api::<K>();
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
                    serde_yaml_like(&current)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls until the object is gone.
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

    /// The Kubernetes Events about `name` with `reason`, oldest first.
    pub async fn events(&self, name: &str, reason: &str) -> Result<Vec<Event>> {
        let events = self.api::<Event>().list(&ListParams::default()).await?;
        let mut found: Vec<Event> = events
            .items
            .into_iter()
            .filter(|e| {
                e.involved_object.name.as_deref() == Some(name)
                    && e.reason.as_deref() == Some(reason)
            })
            .collect();
        found.sort_by_key(|e| e.metadata.creation_timestamp.clone().map(|t| t.0));
        Ok(found)
    }

    /// Polls until an Event about `name` with `reason` exists.
    pub async fn wait_event(&self, name: &str, reason: &str) -> Result<Vec<Event>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = self.events(name, reason).await?;
            if !events.is_empty() {
                return Ok(events);
            }
            if Instant::now() > deadline {
                bail!("no {reason} event about {name}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The total time spent reconciling `kind` `name` and how many reconciles that was, from
    /// `gotk_reconcile_duration_seconds`.
    pub fn reconcile_time(&self, kind: &str, name: &str) -> (f64, u64) {
        let text = self.controller().metrics().encode();
        let labels = format!(
            r#"kind="{kind}",name="{name}",namespace="{}""#,
            self.ns.name
        );
        let mut sum = 0.0;
        let mut count = 0;
        for line in text.lines() {
            if !line.contains(&labels) {
                continue;
            }
            let value = line.rsplit(' ').next().unwrap_or_default();
            if line.starts_with("gotk_reconcile_duration_seconds_sum") {
                sum = value.parse().unwrap_or_default();
            } else if line.starts_with("gotk_reconcile_duration_seconds_count") {
                count = value.parse().unwrap_or_default();
            }
        }
        (sum, count)
    }
}

fn serde_yaml_like<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

/// The condition of `type_`.
pub fn condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether `Ready` has `status` and `reason`.
pub fn ready_is(conditions: &[Condition], status: &str, reason: &str) -> bool {
    condition(conditions, "Ready").is_some_and(|c| c.status == status && c.reason == reason)
}

/// Downloads `artifact` from its URL, verifying its digest, into a fresh directory.
pub async fn fetch(artifact: &Artifact) -> Result<(TempDir, PathBuf)> {
    let http = toolkit_sdk::tls::http_client_builder().build()?;
    let fetcher = ArtifactFetcher::new(http, FetchLimits::default(), RetryPolicy::no_retries());
    let dir = tempfile::tempdir()?;
    let dest = dir.path().join("artifact");
    fetcher
        .fetch_artifact(artifact, &dest)
        .await
        .with_context(|| format!("cannot fetch {}", artifact.url))?;
    Ok((dir, dest))
}

/// Every file under `root`, relative, sorted, with its content.
pub fn files(root: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                stack.push(path);
            } else {
                let rel = path.strip_prefix(root)?.to_string_lossy().into_owned();
                out.insert(rel, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    Ok(out)
}

/// The names of the files in `dir` (empty when it does not exist).
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// The name of an object (for messages).
pub fn name_of<K: Resource>(obj: &K) -> String {
    obj.name_any()
}

/// A TCP server on loopback that accepts connections and never answers: a host that hangs.
/// Connections are held open until the value is dropped (the thread then ends with the
/// process).
pub struct SilentHost {
    pub addr: std::net::SocketAddr,
    _listener: std::sync::Arc<std::net::TcpListener>,
}

/// Starts a [`SilentHost`] on a free loopback port.
pub fn silent_host() -> Result<SilentHost> {
    let listener = std::sync::Arc::new(std::net::TcpListener::bind("127.0.0.1:0")?);
    let addr = listener.local_addr()?;
    let accepting = std::sync::Arc::clone(&listener);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in accepting.incoming() {
            match stream {
                Ok(stream) => held.push(stream),
                Err(_) => break,
            }
        }
    });
    Ok(SilentHost {
        addr,
        _listener: listener,
    })
}

/// Whether `Ready` has `status` and `reason` for the object's current generation.
pub fn ready_now<K>(obj: &K, conditions: &[Condition], status: &str, reason: &str) -> bool
where
    K: Resource,
{
    let generation = obj.meta().generation;
    condition(conditions, "Ready").is_some_and(|c| {
        c.status == status && c.reason == reason && c.observed_generation == generation
    })
}

/// Whether `Stalled` is `True`.
pub fn is_stalled(conditions: &[Condition]) -> bool {
    condition(conditions, "Stalled").is_some_and(|c| c.status == "True")
}
