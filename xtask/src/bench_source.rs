//! `cargo xtask bench-source`: source-controller at scale and on a no-change reconcile.
//!
//! Every phase gets a fresh tier-1 control plane (our CRDs installed) and a fresh
//! `source-controller` process, started as a user would start it (release build by default):
//!
//! 1. **Many objects.** One small Flux artifact is pushed to a real `docker-registry`; `objects`
//!    OCIRepositories pointing at it (`insecure: true`, interval 10m) are created across a few
//!    namespaces as fast as the API server takes them. Measured: time from the first create to
//!    every object Ready=True with an artifact, the controller's peak RSS (`VmHWM` of
//!    `/proc/<pid>/status`) and CPU time, and the writes it made (from the API server's own
//!    `apiserver_request_total`). Once with the flag default of `--concurrent`, then with each
//!    extra value asked for.
//! 2. **No change.** One GitRepository (a real smart HTTP Git server) and one OCIRepository;
//!    once Ready, `reconciles` reconciles are requested one after the other with the
//!    `reconcile.fluxcd.io/requestedAt` annotation. Each reconcile's duration comes from the
//!    controller's `gotk_reconcile_duration_seconds` sum (read before and after each one, so it
//!    is exact despite Flux's decade buckets); the writes from the API server's metrics; for
//!    Git, the requests the Git server answered (a clone would be a second upload-pack POST).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::control_plane::{ControlPlane, Options, Tier};
use e2e::git_server::{GitServer, HttpOptions};
use e2e::oci_registry::{OciArtifact, OciRegistry, RegistryOptions};
use e2e::process::{Lifetime, Managed, free_port};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

/// Namespaces the OCIRepositories are spread over.
const NAMESPACES: usize = 4;
/// Tasks creating objects at the same time.
const CREATORS: usize = 16;
/// How long phase 1 may take before the benchmark gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// The repository (registry and Git server) the benchmark uses.
const REPOSITORY: &str = "bench/app";
/// The tag the artifact is pushed under.
const TAG: &str = "v1.0.0";
/// The no-change targets (issue): reconcile duration, and phase 1 all Ready / peak RSS.
const NO_CHANGE_TARGET: Duration = Duration::from_millis(50);
const READY_TARGET: Duration = Duration::from_secs(30);
const RSS_TARGET_MIB: f64 = 48.0;

/// What the command line asked for.
pub struct Settings {
    /// OCIRepositories in phase 1.
    pub objects: usize,
    /// `--concurrent` values run after the flag default.
    pub concurrent: Vec<usize>,
    /// Requested reconciles per object in phase 2.
    pub reconciles: usize,
    /// Build and run the release binary (else debug).
    pub release: bool,
    /// Build the binary first (else use the one in target/).
    pub build: bool,
}

/// Builds source-controller, runs both phases and prints the tables.
pub fn run(settings: Settings) -> Result<()> {
    let root = e2e::repo_root();
    let profile = if settings.release { "release" } else { "debug" };
    if settings.build {
        build(&root, settings.release)?;
    }
    let binary = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(profile)
        .join("source-controller");
    e2e::binaries::Binaries::ensure(e2e::binaries::Need::ApiServer)?;

    let runtime = tokio::runtime::Runtime::new()?;
    let load_before = load_average();
    let mut runs = Vec::new();
    for concurrent in std::iter::once(None).chain(settings.concurrent.iter().copied().map(Some)) {
        let label = concurrent.map_or("flag default".to_string(), |n| n.to_string());
        eprintln!(
            "==> phase 1: {} OCIRepositories, --concurrent {label}",
            settings.objects
        );
        let run = runtime.block_on(many_objects(&binary, settings.objects, concurrent))?;
        eprintln!(
            "    all Ready after {:.2} s, peak RSS {:.1} MiB",
            run.all_ready.as_secs_f64(),
            run.peak_rss_mib
        );
        runs.push((label, run));
    }
    eprintln!(
        "==> phase 2: {} requested no-change reconciles each",
        settings.reconciles
    );
    let no_change = runtime.block_on(no_change(&binary, settings.reconciles))?;

    let report = render(&settings, &runs, &no_change)?;
    print!("{report}");
    println!(
        "machine load average (1 min) before: {load_before}, after: {} ({} cores)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

/// The 1-minute load average: other work on the machine skews every figure here.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn build(root: &Path, release: bool) -> Result<()> {
    let profile = if release { "--release" } else { "--debug" };
    eprintln!("==> cargo build {profile} -p source-controller");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build
        .args(["build", "--quiet", "-p", "source-controller", "--bin"])
        .arg("source-controller")
        .current_dir(root);
    if release {
        build.arg("--release");
    }
    if !build.status().context("cannot run cargo")?.success() {
        bail!("building source-controller failed");
    }
    Ok(())
}

/// The figures of one phase-1 run.
struct ManyObjects {
    created: Duration,
    first_ready: Duration,
    all_ready: Duration,
    peak_rss_mib: f64,
    max_sampled_rss_mib: f64,
    cpu_seconds: f64,
    /// Writes by verb and subresource (`PATCH status`), besides the benchmark's own creates.
    writes: BTreeMap<String, f64>,
    reconciles: f64,
}

/// The figures of one no-change series.
struct NoChange {
    kind: &'static str,
    /// Duration of each requested reconcile, from the metric's sum.
    durations: Vec<Duration>,
    /// From the annotation patch to `lastHandledReconcileAt` seen by the benchmark (polled).
    round_trips: Vec<Duration>,
    /// Reconciles the metric counted per request (more than 1: the status write re-queued it).
    reconciles_per_request: f64,
    /// Status writes per request (API server metrics).
    status_writes_per_request: f64,
    /// Other writes to the object per request, the benchmark's annotation excluded.
    other_writes_per_request: f64,
    /// Git server requests per reconcile (`GET info/refs`, `POST git-upload-pack`), Git only.
    git_requests: Option<BTreeMap<String, usize>>,
    /// Artifact revision unchanged over the series.
    same_artifact: bool,
    /// `git ls-remote` of the same ref against the same server, p50 (Git only): the floor set
    /// by the test server, which runs one `git http-backend` process per request.
    ls_remote_p50: Option<Duration>,
}

fn api_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", kind),
        plural,
    )
}

/// A running source-controller process and its endpoints.
struct Controller {
    process: Managed,
    metrics_port: u16,
}

impl Controller {
    fn start(binary: &Path, plane: &ControlPlane, extra: &[String]) -> Result<Self> {
        // Inside the control plane's data folder: removed with it.
        let storage = plane.data_dir().join("storage");
        let storage_port = free_port()?;
        let metrics_port = free_port()?;
        let mut args = vec![
            format!("--kubeconfig={}", plane.kubeconfig_path().display()),
            format!("--storage-path={}", storage.display()),
            format!("--storage-addr=127.0.0.1:{storage_port}"),
            format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
            format!("--metrics-addr=127.0.0.1:{metrics_port}"),
            format!("--health-addr=127.0.0.1:{}", free_port()?),
        ];
        args.extend(extra.iter().cloned());
        let log = plane.data_dir().join("logs/source-controller.log");
        let process = Managed::start("source-controller", binary, &args, &log, Lifetime::Owner)?;
        let controller = Self {
            process,
            metrics_port,
        };
        // Ready when /metrics answers (the manager serves it once started).
        let started = Instant::now();
        while http_get(metrics_port, "/metrics").is_err() {
            controller.check()?;
            if started.elapsed() > Duration::from_secs(30) {
                bail!("source-controller did not serve /metrics within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(controller)
    }

    fn check(&self) -> Result<()> {
        if !e2e::process::alive(self.process.pid()) {
            bail!(
                "source-controller exited:\n{}",
                e2e::process::log_tail(self.process.log(), 30)
            );
        }
        Ok(())
    }

    fn metrics(&self) -> Result<String> {
        http_get(self.metrics_port, "/metrics")
    }

    /// (peak, current) resident set size in KiB.
    fn rss_kib(&self) -> Result<(u64, u64)> {
        rss_kib(self.process.pid())
    }

    fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.pid()))?;
        // Fields after the command (which may contain spaces): utime and stime are 14 and 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let (user, system) = ticks(11)
            .zip(ticks(12))
            .context("cannot parse /proc/pid/stat")?;
        Ok((user + system) / 100.0)
    }
}

pub(crate) fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    field("VmHWM:")
        .zip(field("VmRSS:"))
        .context("no VmHWM/VmRSS in /proc/<pid>/status")
}

/// A plain HTTP/1.0 GET on 127.0.0.1 (the metrics endpoint needs nothing more).
pub(crate) fn http_get(port: u16, path: &str) -> Result<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("malformed HTTP response")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        bail!("GET {path}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

/// The labels of a Prometheus sample line, and its value.
pub(crate) fn parse_sample(line: &str) -> Option<(&str, BTreeMap<&str, &str>, f64)> {
    let (name_labels, value) = line.rsplit_once(' ')?;
    let value = value.parse::<f64>().ok()?;
    let (name, labels) = match name_labels.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}')?),
        None => (name_labels, ""),
    };
    let mut map = BTreeMap::new();
    for pair in labels.split("\",").filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once("=\"")?;
        map.insert(key, value.trim_end_matches('"'));
    }
    Some((name, map, value))
}

/// `gotk_reconcile_duration_seconds` (sum, count) of one object.
pub(crate) fn reconcile_duration(
    metrics: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> (f64, f64) {
    let (mut sum, mut count) = (0.0, 0.0);
    for (metric, labels, value) in metrics.lines().filter_map(parse_sample) {
        if labels.get("kind") != Some(&kind)
            || labels.get("namespace") != Some(&namespace)
            || labels.get("name") != Some(&name)
        {
            continue;
        }
        match metric {
            "gotk_reconcile_duration_seconds_sum" => sum += value,
            "gotk_reconcile_duration_seconds_count" => count += value,
            _ => {}
        }
    }
    (sum, count)
}

/// All reconciles of `kind` the controller counted.
pub(crate) fn reconcile_count(metrics: &str, kind: &str) -> f64 {
    metrics
        .lines()
        .filter_map(parse_sample)
        .filter(|(m, l, _)| {
            *m == "gotk_reconcile_duration_seconds_count" && l.get("kind") == Some(&kind)
        })
        .map(|(_, _, v)| v)
        .sum()
}

/// The API server's write counts for `resource` of `group` (`""` for the core group), keyed
/// by `VERB subresource`; dry-run requests are not writes and are left out.
pub(crate) async fn api_writes(
    client: &kube::Client,
    group: &str,
    resource: &str,
) -> Result<BTreeMap<String, f64>> {
    let request = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(request).await?;
    let mut writes = BTreeMap::new();
    for (metric, labels, value) in text.lines().filter_map(parse_sample) {
        let verb = labels.get("verb").copied().unwrap_or_default();
        if metric != "apiserver_request_total"
            || labels.get("resource") != Some(&resource)
            || labels.get("group").copied().unwrap_or_default() != group
            || labels.get("dry_run").is_some_and(|d| !d.is_empty())
            || matches!(verb, "GET" | "LIST" | "WATCH")
        {
            continue;
        }
        let sub = labels.get("subresource").copied().unwrap_or_default();
        let key = if sub.is_empty() {
            verb.to_string()
        } else {
            format!("{verb} {sub}")
        };
        *writes.entry(key).or_insert(0.0) += value;
    }
    Ok(writes)
}

pub(crate) fn diff(
    after: &BTreeMap<String, f64>,
    before: &BTreeMap<String, f64>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

fn condition_true(object: &DynamicObject, type_: &str) -> bool {
    object.data["status"]["conditions"]
        .as_array()
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c["type"] == type_ && c["status"] == "True")
        })
}

fn ready_with_artifact(object: &DynamicObject) -> bool {
    condition_true(object, "Ready") && object.data["status"]["artifact"]["revision"].is_string()
}

async fn ensure_namespace(client: &kube::Client, name: &str) -> Result<()> {
    let namespace: Namespace = serde_json::from_value(json!({ "metadata": { "name": name } }))?;
    Api::<Namespace>::all(client.clone())
        .patch(
            name,
            &PatchParams::apply("ferroflux-bench").force(),
            &Patch::Apply(&namespace),
        )
        .await?;
    Ok(())
}

fn oci_repository(namespace: &str, name: &str, url: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "OCIRepository",
        "metadata": { "name": name, "namespace": namespace },
        "spec": { "url": url, "ref": { "tag": TAG }, "insecure": true, "interval": "10m" },
    }))?)
}

async fn push_artifact(registry: &OciRegistry) -> Result<()> {
    let artifact = OciArtifact::flux(
        &[
            (
                "deploy/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  greeting: hello\n",
            ),
            (
                "deploy/kustomization.yaml",
                "resources:\n- configmap.yaml\n",
            ),
        ],
        "https://example.com/bench/app",
        "main@sha1:0123456789abcdef0123456789abcdef01234567",
    )?;
    registry
        .client()
        .push_artifact(REPOSITORY, TAG, &artifact)
        .await?;
    Ok(())
}

/// Phase 1 with a fresh control plane, registry and controller.
async fn many_objects(
    binary: &Path,
    objects: usize,
    concurrent: Option<usize>,
) -> Result<ManyObjects> {
    let plane = ControlPlane::start(Options {
        tier: Tier::ApiServer,
        ..Options::default()
    })
    .await?;
    let client = plane.client().await?;
    let registry = OciRegistry::start(RegistryOptions::default())?;
    push_artifact(&registry).await?;
    let url = registry.oci_url(REPOSITORY);
    let namespaces: Vec<String> = (0..NAMESPACES).map(|i| format!("bench-{i}")).collect();
    for namespace in &namespaces {
        ensure_namespace(&client, namespace).await?;
    }

    let extra: Vec<String> = concurrent
        .map(|n| vec![format!("--concurrent={n}")])
        .unwrap_or_default();
    let controller = Controller::start(binary, &plane, &extra)?;
    let writes_before = api_writes(&client, "source.toolkit.fluxcd.io", "ocirepositories").await?;

    // Sample the resident set while the phase runs (VmHWM is the kernel's own peak as well).
    let stop = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_rss, pid) = (stop.clone(), max_rss.clone(), controller.process.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, rss)) = rss_kib(pid) {
                    max_rss.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    let resource = api_resource("OCIRepository", "ocirepositories");
    let started = Instant::now();
    let mut creators = tokio::task::JoinSet::new();
    for creator in 0..CREATORS {
        let (client, resource, url, namespaces) = (
            client.clone(),
            resource.clone(),
            url.clone(),
            namespaces.clone(),
        );
        creators.spawn(async move {
            for index in (creator..objects).step_by(CREATORS) {
                let namespace = &namespaces[index % namespaces.len()];
                let api: Api<DynamicObject> =
                    Api::namespaced_with(client.clone(), namespace, &resource);
                let object = oci_repository(namespace, &format!("app-{index:05}"), &url)?;
                api.create(&PostParams::default(), &object).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = creators.join_next().await {
        result??;
    }
    let created = started.elapsed();

    let all: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let mut first_ready = None;
    let all_ready = loop {
        let list = all.list(&ListParams::default()).await?;
        let ready = list.items.iter().filter(|o| ready_with_artifact(o)).count();
        if ready > 0 && first_ready.is_none() {
            first_ready = Some(started.elapsed());
        }
        if ready == objects {
            break started.elapsed();
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "only {ready} of {objects} OCIRepositories Ready after {READY_TIMEOUT:?}; see {}",
                controller.process.log().display()
            );
        }
        controller.check()?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Let follow-up reconciles (triggered by the controller's own status writes) settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let (peak_kib, _) = controller.rss_kib()?;
    let cpu_seconds = controller.cpu_seconds()?;
    let reconciles = reconcile_count(&controller.metrics()?, "OCIRepository");
    let mut writes = diff(
        &api_writes(&client, "source.toolkit.fluxcd.io", "ocirepositories").await?,
        &writes_before,
    );
    if let Some(posts) = writes.get_mut("POST") {
        *posts -= objects as f64;
    }
    writes.retain(|_, v| *v != 0.0);
    drop(controller);
    drop(registry);
    drop(plane);
    Ok(ManyObjects {
        created,
        first_ready: first_ready.unwrap_or(all_ready),
        all_ready,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        max_sampled_rss_mib: max_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        cpu_seconds,
        writes,
        reconciles,
    })
}

/// Phase 2 with a fresh control plane, Git server, registry and controller.
async fn no_change(binary: &Path, reconciles: usize) -> Result<Vec<NoChange>> {
    let plane = ControlPlane::start(Options {
        tier: Tier::ApiServer,
        ..Options::default()
    })
    .await?;
    let client = plane.client().await?;
    let namespace = "bench-no-change";
    ensure_namespace(&client, namespace).await?;

    let git = GitServer::new()?;
    let repo = git.create_repo("app")?;
    let working_copy = repo.working_copy()?;
    working_copy.commit(
        &[
            (
                "deploy/configmap.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\n",
            ),
            (
                "deploy/kustomization.yaml",
                "resources:\n- configmap.yaml\n",
            ),
        ],
        "first",
    )?;
    let http = git.serve_http(HttpOptions::default())?;
    let registry = OciRegistry::start(RegistryOptions::default())?;
    push_artifact(&registry).await?;

    let controller = Controller::start(binary, &plane, &[])?;
    let git_resource = api_resource("GitRepository", "gitrepositories");
    let oci_resource = api_resource("OCIRepository", "ocirepositories");
    let git_object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": { "name": "app", "namespace": namespace },
        "spec": { "url": http.url("app"), "ref": { "branch": "master" }, "interval": "10m" },
    }))?;
    let oci_object = oci_repository(namespace, "app", &registry.oci_url(REPOSITORY))?;

    let mut series = Vec::new();
    for (kind, plural, resource, object) in [
        (
            "GitRepository",
            "gitrepositories",
            &git_resource,
            git_object,
        ),
        (
            "OCIRepository",
            "ocirepositories",
            &oci_resource,
            oci_object,
        ),
    ] {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, resource);
        api.create(&PostParams::default(), &object).await?;
        let started = Instant::now();
        let mut current = loop {
            let current = api.get("app").await?;
            if ready_with_artifact(&current) {
                break current;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "{kind} {namespace}/app not Ready after 60 s: {}",
                    current.data["status"]
                );
            }
            controller.check()?;
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let revision = current.data["status"]["artifact"]["revision"].clone();
        // Let the first reconcile's follow-ups (its own status write) finish.
        tokio::time::sleep(Duration::from_secs(2)).await;

        let writes_before = api_writes(&client, "source.toolkit.fluxcd.io", plural).await?;
        let (mut sum, mut count) =
            reconcile_duration(&controller.metrics()?, kind, namespace, "app");
        let (count_start, requests_start) = (count, http.requests().len());
        let mut durations = Vec::new();
        let mut round_trips = Vec::new();
        for index in 0..reconciles {
            let token = format!("bench-{index}-{}", std::process::id());
            let patch = json!({
                "metadata": { "annotations": { "reconcile.fluxcd.io/requestedAt": token } }
            });
            let requested = Instant::now();
            api.patch("app", &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
            loop {
                current = api.get("app").await?;
                if current.data["status"]["lastHandledReconcileAt"] == token.as_str() {
                    break;
                }
                if requested.elapsed() > Duration::from_secs(30) {
                    bail!("{kind} did not handle reconcile request {token} within 30 s");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            round_trips.push(requested.elapsed());
            // The metric is recorded when the reconcile returns, just after its status write.
            let waited = Instant::now();
            let (new_sum, new_count) = loop {
                let (s, c) = reconcile_duration(&controller.metrics()?, kind, namespace, "app");
                if c > count || waited.elapsed() > Duration::from_secs(5) {
                    break (s, c);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            };
            // A follow-up reconcile (triggered by the status write) would land here too.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (settled_sum, settled_count) =
                reconcile_duration(&controller.metrics()?, kind, namespace, "app");
            if new_count > count {
                durations.push(Duration::from_secs_f64(
                    (new_sum - sum) / (new_count - count),
                ));
            }
            (sum, count) = (settled_sum, settled_count);
        }
        let requested = reconciles.max(1) as f64;
        let writes = diff(
            &api_writes(&client, "source.toolkit.fluxcd.io", plural).await?,
            &writes_before,
        );
        let status_writes: f64 = writes
            .iter()
            .filter(|(k, _)| k.ends_with(" status"))
            .map(|(_, v)| v)
            .sum();
        let other_writes: f64 = writes
            .iter()
            .filter(|(k, _)| !k.ends_with(" status"))
            .map(|(_, v)| v)
            .sum::<f64>()
            - reconciles as f64;
        let git_requests = (kind == "GitRepository").then(|| {
            let mut by_request = BTreeMap::new();
            for request in &http.requests()[requests_start..] {
                let key = format!(
                    "{} {}",
                    request.method,
                    request.path.rsplit('/').next().unwrap_or_default()
                );
                *by_request.entry(key).or_insert(0) += 1;
            }
            by_request
        });
        let ls_remote_p50 = if kind == "GitRepository" {
            let mut samples = Vec::new();
            for _ in 0..reconciles {
                let started = Instant::now();
                let output = e2e::git_server::git_command()
                    .args(["ls-remote", &http.url("app"), "refs/heads/master"])
                    .output()?;
                if !output.status.success() {
                    bail!(
                        "git ls-remote failed: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
                samples.push(started.elapsed());
            }
            Some(percentile(&samples, 0.5))
        } else {
            None
        };
        series.push(NoChange {
            ls_remote_p50,
            kind,
            durations,
            round_trips,
            reconciles_per_request: (count - count_start) / requested,
            status_writes_per_request: status_writes / requested,
            other_writes_per_request: other_writes / requested,
            git_requests,
            same_artifact: current.data["status"]["artifact"]["revision"] == revision,
        });
    }
    drop(controller);
    Ok(series)
}

pub(crate) fn percentile(values: &[Duration], fraction: f64) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * fraction).round() as usize;
    sorted[index]
}

pub(crate) fn mean(values: &[Duration]) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.iter().sum::<Duration>() / values.len() as u32
}

pub(crate) fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}

fn render(
    settings: &Settings,
    runs: &[(String, ManyObjects)],
    series: &[NoChange],
) -> Result<String> {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut out = String::new();
    writeln!(
        out,
        "\n{} OCIRepositories ({NAMESPACES} namespaces, {CREATORS} concurrent creates), one registry artifact:\n",
        settings.objects
    )?;
    writeln!(
        out,
        "| --concurrent | all created | first Ready | all Ready | peak RSS (VmHWM) | max sampled RSS | controller CPU | reconciles | controller writes |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for (label, run) in runs {
        let writes = run
            .writes
            .iter()
            .map(|(k, v)| format!("{v:.0} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        writeln!(
            out,
            "| {label} | {:.2} s | {:.2} s | **{:.2} s** | **{:.1} MiB** | {:.1} MiB | {:.2} s | {:.0} | {} |",
            run.created.as_secs_f64(),
            run.first_ready.as_secs_f64(),
            run.all_ready.as_secs_f64(),
            run.peak_rss_mib,
            run.max_sampled_rss_mib,
            run.cpu_seconds,
            run.reconciles,
            if writes.is_empty() {
                "-".into()
            } else {
                writes
            },
        )?;
    }
    writeln!(out)?;
    for (label, run) in runs {
        writeln!(
            out,
            "--concurrent {label}: all Ready < {}s: {}; peak RSS < {RSS_TARGET_MIB} MiB: {}",
            READY_TARGET.as_secs(),
            met(run.all_ready < READY_TARGET),
            met(run.peak_rss_mib < RSS_TARGET_MIB)
        )?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "No-change reconcile, {} requests each (`reconcile.fluxcd.io/requestedAt`), --concurrent flag default:\n",
        settings.reconciles
    )?;
    writeln!(
        out,
        "| kind | p50 | mean | max | request → status (p50) | reconciles per request | status writes per request | other writes | Git requests per reconcile | `git ls-remote` p50 | artifact unchanged |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    let mut worst_p50 = Duration::ZERO;
    for s in series {
        let p50 = percentile(&s.durations, 0.5);
        worst_p50 = worst_p50.max(p50);
        let git = s.git_requests.as_ref().map_or("-".to_string(), |r| {
            r.iter()
                .map(|(k, v)| format!("{:.1} {k}", *v as f64 / settings.reconciles.max(1) as f64))
                .collect::<Vec<_>>()
                .join(", ")
        });
        writeln!(
            out,
            "| {} | **{}** | {} | {} | {} | {:.2} | {:.2} | {:.2} | {git} | {} | {} |",
            s.kind,
            ms(p50),
            ms(mean(&s.durations)),
            ms(s.durations.iter().max().copied().unwrap_or_default()),
            ms(percentile(&s.round_trips, 0.5)),
            s.reconciles_per_request,
            s.status_writes_per_request,
            s.other_writes_per_request,
            s.ls_remote_p50.map_or("-".to_string(), ms),
            if s.same_artifact { "yes" } else { "NO" },
        )?;
    }
    writeln!(
        out,
        "\nno-change reconcile < {} ms: {}",
        NO_CHANGE_TARGET.as_millis(),
        met(worst_p50 < NO_CHANGE_TARGET)
    )?;
    Ok(out)
}
