//! Starting and stopping the local control plane.
//!
//! Tier 1 is etcd + kube-apiserver (RBAC authorization, real certificates, service-account tokens).
//! Tier 2 adds kube-controller-manager, kube-scheduler and kwok with a few fake nodes, so Deployments
//! become Available, namespaces finalise and garbage collection runs.
//!
//! # Guarantees
//! - Every port is a free loopback port chosen at start, so several control planes can run at once.
//! - [`ControlPlane::start`] returns only once `/readyz` answers `ok` and our CRDs are Established;
//!   it fails (never hangs) with the tail of the failing component's log.
//! - Dropping an owned control plane stops its processes and removes its data folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::binaries::{Binaries, Need};
use crate::certs::Pki;
use crate::process::{Lifetime, Managed, alive, free_port, log_tail, signal};

/// How much of the control plane to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Tier {
    /// etcd + kube-apiserver.
    ApiServer,
    /// Tier 1 plus kube-controller-manager, kube-scheduler and kwok fake nodes.
    Full,
}

/// Options for [`ControlPlane::start`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Which components to run.
    pub tier: Tier,
    /// Where data, certificates, logs and the kubeconfig go; a fresh temp folder when `None`.
    pub data_dir: Option<PathBuf>,
    /// Owned processes die with this process; detached ones keep running (`cargo xtask cluster up`).
    pub lifetime: Lifetime,
    /// Fake nodes kwok manages in tier 2.
    pub nodes: usize,
    /// CRD manifests (files or folders of YAML) to install once the API server is ready.
    pub crds: Vec<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tier: Tier::ApiServer,
            data_dir: None,
            lifetime: Lifetime::Owner,
            nodes: 3,
            crds: vec![crate::repo_root().join("config/crd/bases")],
        }
    }
}

/// What a detached control plane leaves on disk so `cluster down|env` can find it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    /// The data folder (removed by `down`).
    pub data_dir: PathBuf,
    /// The API server URL.
    pub server: String,
    /// Running tier.
    pub tier: Tier,
    /// Pids of the components, in start order.
    pub pids: Vec<u32>,
}

/// A running local control plane.
#[derive(Debug)]
pub struct ControlPlane {
    data_dir: PathBuf,
    pki: Pki,
    server: String,
    kubeconfig: PathBuf,
    tier: Tier,
    lifetime: Lifetime,
    // Stopped in reverse order on drop: tier-2 components first, etcd last.
    processes: Vec<Managed>,
    binaries: Binaries,
    remove_data_on_drop: bool,
    /// How long each phase took, for reporting.
    pub timings: Vec<(String, Duration)>,
}

impl ControlPlane {
    /// Starts a control plane as described by `options`.
    pub async fn start(options: Options) -> Result<Self> {
        let need = match options.tier {
            Tier::ApiServer => Need::ApiServer,
            Tier::Full => Need::Full,
        };
        let binaries = tokio::task::spawn_blocking(move || Binaries::ensure(need)).await??;
        let (data_dir, remove_data_on_drop) = match &options.data_dir {
            Some(dir) => (dir.clone(), false),
            None => (make_temp_dir()?, true),
        };
        std::fs::create_dir_all(data_dir.join("logs"))?;
        let started = Instant::now();
        let pki = Pki::generate(&data_dir.join("pki"))?;
        let mut plane = Self {
            server: String::new(),
            kubeconfig: data_dir.join("kubeconfig"),
            data_dir,
            pki,
            tier: Tier::ApiServer,
            lifetime: options.lifetime,
            processes: Vec::new(),
            binaries,
            remove_data_on_drop,
            timings: Vec::new(),
        };
        plane.start_etcd_and_apiserver(options.tier).await?;
        plane
            .timings
            .push(("tier 1 ready".into(), started.elapsed()));
        if options.tier == Tier::Full {
            plane.finish_tier2(options.nodes).await?;
            plane
                .timings
                .push(("tier 2 ready".into(), started.elapsed()));
        }
        let client = plane.client().await?;
        for path in &options.crds {
            crate::crds::install_from(&client, path).await?;
        }
        plane
            .timings
            .push(("CRDs installed".into(), started.elapsed()));
        Ok(plane)
    }

    /// The admin kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The API server URL (`https://127.0.0.1:<port>`).
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The running tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The data folder (certificates, logs, etcd data).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// An admin client (`system:masters`).
    pub async fn client(&self) -> Result<kube::Client> {
        crate::client_from_kubeconfig(&self.kubeconfig, None).await
    }

    /// What `cluster down|env` need to find this control plane again.
    pub fn state(&self) -> State {
        State {
            kubeconfig: self.kubeconfig.clone(),
            data_dir: self.data_dir.clone(),
            server: self.server.clone(),
            tier: self.tier,
            pids: self.processes.iter().map(Managed::pid).collect(),
        }
    }

    /// Leaves the processes and data in place after this handle is dropped; returns the state to persist.
    pub fn detach(mut self) -> State {
        let state = self.state();
        self.remove_data_on_drop = false;
        for process in std::mem::take(&mut self.processes) {
            process.detach();
        }
        state
    }

    async fn start_etcd_and_apiserver(&mut self, tier: Tier) -> Result<()> {
        let etcd_client = free_port()?;
        let etcd_peer = free_port()?;
        let etcd_dir = self.data_dir.join("etcd");
        let etcd_args = vec![
            format!("--data-dir={}", etcd_dir.display()),
            format!("--listen-client-urls=http://127.0.0.1:{etcd_client}"),
            format!("--advertise-client-urls=http://127.0.0.1:{etcd_client}"),
            format!("--listen-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-advertise-peer-urls=http://127.0.0.1:{etcd_peer}"),
            format!("--initial-cluster=default=http://127.0.0.1:{etcd_peer}"),
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
            "--quota-backend-bytes=8589934592".into(),
        ];
        let etcd = self.spawn("etcd", &self.binaries.etcd.clone(), &etcd_args)?;
        self.processes.push(etcd);
        wait_for_port(
            "etcd",
            etcd_client,
            &mut self.processes,
            Duration::from_secs(20),
        )
        .await?;

        let port = free_port()?;
        self.server = format!("https://127.0.0.1:{port}");
        let pki = &self.pki;
        let apiserver_args = vec![
            format!("--etcd-servers=http://127.0.0.1:{etcd_client}"),
            "--bind-address=127.0.0.1".into(),
            "--advertise-address=127.0.0.1".into(),
            format!("--secure-port={port}"),
            format!(
                "--cert-dir={}",
                self.data_dir.join("apiserver-certs").display()
            ),
            format!("--tls-cert-file={}", pki.apiserver.cert.display()),
            format!("--tls-private-key-file={}", pki.apiserver.key.display()),
            format!("--client-ca-file={}", pki.ca.cert.display()),
            format!(
                "--service-account-key-file={}",
                pki.service_account_pub.display()
            ),
            format!(
                "--service-account-signing-key-file={}",
                pki.service_account_key.display()
            ),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            "--api-audiences=https://kubernetes.default.svc.cluster.local".into(),
            "--service-cluster-ip-range=10.0.0.0/16".into(),
            "--authorization-mode=RBAC".into(),
            "--allow-privileged=true".into(),
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
            "--endpoint-reconciler-type=none".into(),
            "--v=0".into(),
        ];
        let apiserver = self.spawn(
            "kube-apiserver",
            &self.binaries.kube_apiserver.clone(),
            &apiserver_args,
        )?;
        self.processes.push(apiserver);
        self.write_kubeconfig(&self.kubeconfig.clone(), &self.pki.admin.clone())?;
        if tier == Tier::Full {
            self.spawn_controllers()?;
        }
        self.wait_ready(Duration::from_secs(60)).await
    }

    /// Spawns kube-controller-manager and kube-scheduler. Called right after kube-apiserver is
    /// spawned, so their start-up overlaps its own (both wait for the API server by themselves).
    fn spawn_controllers(&mut self) -> Result<()> {
        let kcm_kubeconfig = self.data_dir.join("kube-controller-manager.kubeconfig");
        self.write_kubeconfig(&kcm_kubeconfig, &self.pki.controller_manager.clone())?;
        let scheduler_kubeconfig = self.data_dir.join("kube-scheduler.kubeconfig");
        self.write_kubeconfig(&scheduler_kubeconfig, &self.pki.scheduler.clone())?;
        let pki = self.pki.clone();
        let kcm_args = vec![
            format!("--kubeconfig={}", kcm_kubeconfig.display()),
            format!("--authentication-kubeconfig={}", kcm_kubeconfig.display()),
            format!("--authorization-kubeconfig={}", kcm_kubeconfig.display()),
            // Started before the API server is ready: do not read the (not yet readable)
            // extension-apiserver-authentication ConfigMap at start.
            "--authentication-skip-lookup=true".into(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()?),
            format!("--cert-dir={}", self.data_dir.join("kcm-certs").display()),
            format!("--service-account-private-key-file={}", pki.service_account_key.display()),
            format!("--root-ca-file={}", pki.ca.cert.display()),
            format!("--cluster-signing-cert-file={}", pki.ca.cert.display()),
            format!("--cluster-signing-key-file={}", pki.ca.key.display()),
            "--use-service-account-credentials=true".into(),
            // Only what workloads and namespaces need: each extra controller costs start-up time.
            "--controllers=serviceaccount-token-controller,serviceaccount-controller,namespace-controller,garbage-collector-controller,deployment-controller,replicaset-controller,statefulset-controller,daemonset-controller,job-controller,cronjob-controller,ttl-after-finished-controller,pod-garbage-collector-controller,endpoints-controller,endpointslice-controller,root-ca-certificate-publisher-controller,disruption-controller,clusterrole-aggregation-controller,persistentvolumeclaim-protection-controller".into(),
            "--concurrent-deployment-syncs=10".into(),
            "--concurrent-replicaset-syncs=10".into(),
            // The default client rate (20 requests/s) makes a thousand new Deployments wait
            // minutes for their status; managed control planes run it higher too.
            "--kube-api-qps=200".into(),
            "--kube-api-burst=400".into(),
            "--v=0".into(),
        ];
        let kcm = self.spawn(
            "kube-controller-manager",
            &self.binaries.kube_controller_manager.clone(),
            &kcm_args,
        )?;
        self.processes.push(kcm);
        let scheduler_args = vec![
            format!("--kubeconfig={}", scheduler_kubeconfig.display()),
            format!(
                "--authentication-kubeconfig={}",
                scheduler_kubeconfig.display()
            ),
            format!(
                "--authorization-kubeconfig={}",
                scheduler_kubeconfig.display()
            ),
            // Started before the API server is ready: do not read the (not yet readable)
            // extension-apiserver-authentication ConfigMap at start.
            "--authentication-skip-lookup=true".into(),
            "--leader-elect=false".into(),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", free_port()?),
            "--v=0".into(),
        ];
        let scheduler = self.spawn(
            "kube-scheduler",
            &self.binaries.kube_scheduler.clone(),
            &scheduler_args,
        )?;
        self.processes.push(scheduler);
        Ok(())
    }

    /// Starts kwok and its fake nodes, and waits until kube-controller-manager works.
    async fn finish_tier2(&mut self, nodes: usize) -> Result<()> {
        let started = Instant::now();
        let kwok_args = vec![
            format!("--kubeconfig={}", self.kubeconfig.display()),
            "--manage-all-nodes=false".into(),
            format!(
                "--manage-nodes-with-annotation-selector={}=fake",
                crate::nodes::KWOK_NODE_ANNOTATION
            ),
            "--cidr=10.244.0.1/16".into(),
            "--node-ip=10.96.0.1".into(),
            "--server-address=127.0.0.1:0".into(),
            "--enable-crds=".into(),
        ];
        let kwok = self.spawn("kwok", &self.binaries.kwok.clone(), &kwok_args)?;
        self.processes.push(kwok);
        let client = self.client().await?;
        crate::nodes::create_fake_nodes(&client, nodes).await?;
        crate::nodes::wait_nodes_ready(
            &client,
            nodes,
            &mut self.processes,
            Duration::from_secs(30),
        )
        .await?;
        self.timings
            .push(("fake nodes ready".into(), started.elapsed()));
        crate::nodes::wait_default_service_account(
            &client,
            &mut self.processes,
            Duration::from_secs(30),
        )
        .await?;
        self.timings
            .push(("controller-manager working".into(), started.elapsed()));
        self.tier = Tier::Full;
        Ok(())
    }

    fn spawn(&self, name: &str, program: &Path, args: &[String]) -> Result<Managed> {
        let log = self.data_dir.join("logs").join(format!("{name}.log"));
        Managed::start(name, program, args, &log, self.lifetime)
    }

    fn write_kubeconfig(&self, path: &Path, user: &crate::certs::CertFiles) -> Result<()> {
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: ferroflux-local\n  cluster:\n    server: {server}\n    certificate-authority: {ca}\nusers:\n- name: admin\n  user:\n    client-certificate: {cert}\n    client-key: {key}\ncontexts:\n- name: ferroflux-local\n  context:\n    cluster: ferroflux-local\n    user: admin\n    namespace: default\ncurrent-context: ferroflux-local\n",
            server = self.server,
            ca = self.pki.ca.cert.display(),
            cert = user.cert.display(),
            key = user.key.display(),
        );
        std::fs::write(path, config).with_context(|| format!("cannot write {}", path.display()))
    }

    async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        // A plain HTTPS probe (`/readyz` is readable anonymously): kube's client would log every
        // not-yet-ready answer as an error.
        crate::install_crypto_provider();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.pki.ca.cert)?)?;
        let probe = reqwest::Client::builder()
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(2))
            .build()?;
        let url = format!("{}/readyz", self.server);
        loop {
            for process in &mut self.processes {
                process.check_running()?;
            }
            let last_error = match probe.get(&url).send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    if status.is_success() && body.trim() == "ok" {
                        return Ok(());
                    }
                    format!("{status}: {}", body.lines().last().unwrap_or_default())
                }
                Err(e) => e.to_string(),
            };
            if Instant::now() > deadline {
                let log = self
                    .processes
                    .iter()
                    .find(|p| p.name() == "kube-apiserver")
                    .map(|p| log_tail(p.log(), 25))
                    .unwrap_or_default();
                bail!(
                    "kube-apiserver at {} was not ready after {timeout:?} (last answer: {last_error}); last log lines:\n{log}",
                    self.server
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        while let Some(mut process) = self.processes.pop() {
            process.stop(Duration::from_secs(5));
        }
        if self.remove_data_on_drop {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }
}

/// Stops a detached control plane recorded in `state` and removes its data.
pub fn stop_detached(state: &State) -> Result<()> {
    for pid in state.pids.iter().rev() {
        if !alive(*pid) {
            continue;
        }
        signal(*pid, "TERM");
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(*pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if alive(*pid) {
            signal(*pid, "KILL");
        }
    }
    if state.data_dir.exists() {
        std::fs::remove_dir_all(&state.data_dir)
            .with_context(|| format!("cannot remove {}", state.data_dir.display()))?;
    }
    Ok(())
}

async fn wait_for_port(
    name: &str,
    port: u16,
    processes: &mut [Managed],
    timeout: Duration,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        for process in processes.iter_mut() {
            process.check_running()?;
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{name} did not listen on 127.0.0.1:{port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A fresh `ferroflux-cp-<pid>-<random>` folder in the temp dir. Folders of processes that are gone are
/// removed first: a control plane held in a `static` is never dropped, so its process cannot clean up.
fn make_temp_dir() -> Result<PathBuf> {
    let base = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&base) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("ferroflux-cp-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|pid| pid.parse::<u32>().ok())
            else {
                continue;
            };
            if !alive(pid) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    for _ in 0..16 {
        let dir = base.join(format!(
            "ferroflux-cp-{}-{:08x}",
            std::process::id(),
            rand::random::<u32>()
        ));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", dir.display())),
        }
    }
    bail!("cannot create a temp folder under {}", base.display())
}
