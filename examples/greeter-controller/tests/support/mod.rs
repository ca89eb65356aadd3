//! Test support: the CRD, a namespace per test, the controller as a real process, fixtures,
//! polling, and a local sink for Flux events.
#![allow(clippy::unwrap_used, dead_code, missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use greeter_controller::{Greeting, GreetingSpec};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::Value;
use tokio::sync::OnceCell;
use toolkit_sdk::api::GoDuration;

/// A namespace of its own, with the Greeting CRD installed in the cluster.
pub struct Env {
    pub ns: e2e::TestNamespace,
    pub kubeconfig: PathBuf,
    pub greetings: Api<Greeting>,
    pub config_maps: Api<ConfigMap>,
}

pub async fn env(prefix: &str) -> Result<Env> {
    let cluster = e2e::cluster().await?;
    static CRD: OnceCell<()> = OnceCell::const_new();
    CRD.get_or_try_init(|| async {
        let client = cluster.client().await?;
        e2e::crds::install(&client, &[greeter_controller::crd()]).await?;
        anyhow::Ok(())
    })
    .await?;
    let ns = cluster.namespace(prefix).await?;
    Ok(Env {
        greetings: Api::namespaced(ns.client.clone(), &ns.name),
        config_maps: Api::namespaced(ns.client.clone(), &ns.name),
        kubeconfig: cluster.kubeconfig_path().to_path_buf(),
        ns,
    })
}

impl Env {
    /// Starts a controller that watches only this namespace.
    pub fn controller(&self, extra: &[&str]) -> Result<ControllerProcess> {
        ControllerProcess::start(&self.kubeconfig, &self.ns.name, extra)
    }

    pub async fn create(&self, greeting: &Greeting) -> Result<Greeting> {
        Ok(self
            .greetings
            .create(&PostParams::default(), greeting)
            .await?)
    }

    /// Merge-patches the Greeting (spec, metadata).
    pub async fn patch(&self, name: &str, patch: Value) -> Result<Greeting> {
        Ok(self
            .greetings
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?)
    }

    pub async fn config_map_message(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .config_maps
            .get_opt(name)
            .await?
            .and_then(|cm| cm.data)
            .and_then(|d| d.get("message").cloned()))
    }

    /// Polls the Greeting until `check` holds, or fails with its last state and the log.
    pub async fn wait_greeting(
        &self,
        name: &str,
        controller: &ControllerProcess,
        what: &str,
        check: impl Fn(&Greeting) -> bool,
    ) -> Result<Greeting> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let current = self.greetings.get_opt(name).await?;
            if let Some(g) = &current
                && check(g)
            {
                return Ok(current.unwrap());
            }
            if Instant::now() > deadline {
                bail!(
                    "timed out waiting for Greeting {name}: {what}\nlast seen: {}\ncontroller log:\n{}",
                    serde_json::to_string_pretty(&current).unwrap(),
                    controller.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A Greeting fixture that reads like its YAML.
pub fn greeting(name: &str, message: &str) -> Greeting {
    Greeting {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: GreetingSpec {
            message: message.into(),
            interval: GoDuration::from_mins(10),
            retry_interval: None,
            suspend: false,
            config_map_name: None,
            depends_on: None,
        },
        status: None,
    }
}

pub fn condition<'a>(
    g: &'a Greeting,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    g.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

/// `Some((status, reason))` of the condition `type_`.
pub fn cond(g: &Greeting, type_: &str) -> Option<(String, String)> {
    condition(g, type_).map(|c| (c.status.clone(), c.reason.clone()))
}

pub fn is_ready(g: &Greeting) -> bool {
    cond(g, "Ready").is_some_and(|(s, _)| s == "True")
        && g.status.as_ref().map(|s| s.observed_generation) == g.metadata.generation
}

pub fn observed_generation(g: &Greeting) -> i64 {
    g.status.as_ref().map_or(-1, |s| s.observed_generation)
}

/// The greeter controller as a real process (killed when the test thread ends).
pub struct ControllerProcess {
    child: Option<std::process::Child>,
    pub pid: u32,
    pub metrics_port: u16,
    pub health_port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl ControllerProcess {
    pub fn start(kubeconfig: &Path, namespace: &str, extra: &[&str]) -> Result<Self> {
        Self::start_with_env(
            &[
                ("KUBECONFIG", kubeconfig.to_str().unwrap()),
                ("RUNTIME_NAMESPACE", namespace),
            ],
            &["--watch-all-namespaces=false"],
            extra,
        )
    }

    /// Starts the binary with exactly `env` (plus PATH/HOME) and `args`.
    pub fn start_with_env(env: &[(&str, &str)], base: &[&str], extra: &[&str]) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("controller.log");
        let metrics_port = e2e::process::free_port()?;
        let health_port = e2e::process::free_port()?;
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new("setpriv");
        cmd.args(["--pdeathsig", "KILL", "--"])
            .arg(env!("CARGO_BIN_EXE_greeter-controller"))
            .arg(format!("--metrics-addr=127.0.0.1:{metrics_port}"))
            .arg(format!("--health-addr=127.0.0.1:{health_port}"))
            .arg("--log-level=debug")
            .args(base)
            .args(extra)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", dir.path())
            .env(
                "RUST_LOG",
                "info,toolkit_sdk=debug,greeter_controller=debug",
            )
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        let child = cmd.spawn().context("cannot start greeter-controller")?;
        Ok(Self {
            pid: child.id(),
            child: Some(child),
            metrics_port,
            health_port,
            log,
            _dir: dir,
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self, lines: usize) -> String {
        e2e::process::log_tail(&self.log, lines)
    }

    async fn get(&self, port: u16, path: &str) -> Result<(u16, String)> {
        let http = toolkit_sdk::tls::http_client_builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let resp = http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    pub async fn metrics(&self) -> Result<String> {
        Ok(self.get(self.metrics_port, "/metrics").await?.1)
    }

    /// How many reconciles of `namespace/name` the controller has observed in
    /// `gotk_reconcile_duration_seconds` (0 when there is no series yet).
    pub async fn reconcile_count(&self, namespace: &str, name: &str) -> Result<u64> {
        let text = self.metrics().await?;
        let prefix = format!(
            r#"gotk_reconcile_duration_seconds_count{{kind="Greeting",name="{name}",namespace="{namespace}"}} "#
        );
        Ok(text
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.trim().parse().unwrap()))
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, _)) = self.get(self.health_port, "/readyz").await {
                return Ok(());
            }
            if let Some(status) = self.try_wait()? {
                bail!("controller exited early ({status}):\n{}", self.log_tail(40));
            }
            if Instant::now() > deadline {
                bail!("controller not ready within 30s:\n{}", self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        match self.child.as_mut() {
            Some(child) => Ok(child.try_wait()?),
            None => bail!("already reaped"),
        }
    }

    /// Waits for the process to exit on its own, up to `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                bail!(
                    "controller still running after {timeout:?}:\n{}",
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        e2e::process::signal(self.pid, "TERM");
    }

    /// Waits until the log contains `needle`.
    pub async fn wait_log(&self, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while !self.log().contains(needle) {
            if Instant::now() > deadline {
                bail!("log never said {needle:?}:\n{}", self.log_tail(40));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An HTTP endpoint on loopback that records the JSON bodies POSTed to it.
pub struct EventSink {
    pub url: String,
    pub received: Arc<Mutex<Vec<Value>>>,
}

pub async fn event_sink() -> Result<EventSink> {
    use axum::routing::post;
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/",
        post({
            let received = received.clone();
            move |body: String| {
                let received = received.clone();
                async move {
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        received.lock().unwrap().push(v);
                    }
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(EventSink { url, received })
}

impl EventSink {
    /// Waits for a payload matching `check`.
    pub async fn wait_for(&self, what: &str, check: impl Fn(&Value) -> bool) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = self.received.lock().unwrap().iter().find(|v| check(v)) {
                return Ok(v.clone());
            }
            if Instant::now() > deadline {
                bail!(
                    "no event {what}; received: {}",
                    serde_json::to_string_pretty(&*self.received.lock().unwrap()).unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
