//! `cargo xtask bench-kustomize-controller`: kustomize-controller at scale, on a one-file
//! change, and on a no-drift reconcile.
//!
//! One tier-2 control plane (kube-controller-manager and kwok, so Deployments get a status), a
//! real smart HTTP Git server holding `apps` small apps (ServiceAccount, Service, Deployment with
//! 0 replicas, one folder each) plus a `bulk/` folder of `objects` ConfigMaps, and the
//! controllers as processes started as a user starts them (release builds by default):
//! source-controller packs the repository, kustomize-controller applies it.
//!
//! 1. **Many Kustomizations.** `apps` Kustomizations (one per app folder, all from the same
//!    GitRepository, `wait: true`) are created as fast as the API server takes them. Measured:
//!    time from the first create to every Kustomization Ready=True at the source revision, and
//!    kustomize-controller's peak RSS (`VmHWM`) and CPU time.
//! 2. **One file changed.** `changes` times, one app's Deployment is changed in a new commit.
//!    Measured: time from the GitRepository's new artifact (seen by a watch) to that app's
//!    Kustomization reporting the revision as applied; and the writes the API server counted on
//!    ServiceAccounts, Services and Deployments (dry-runs excluded) until every Kustomization
//!    has the new revision: one per change is the target.
//! 3. **No drift.** A Kustomization of the `objects` ConfigMaps; once Ready, `reconciles`
//!    reconciles are requested one after the other. Measured: each reconcile's duration (the
//!    controller's `gotk_reconcile_duration_seconds` sum) and the writes to ConfigMaps.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::control_plane::{ControlPlane, Options, Tier};
use e2e::git_server::{GitServer, HttpOptions, WorkingCopy};
use e2e::process::{Lifetime, Managed, free_port};
use futures::StreamExt as _;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

use crate::bench_source::{
    api_writes, diff, http_get, load_average, mean, ms, percentile, reconcile_count,
    reconcile_duration, rss_kib,
};

/// The namespace everything runs in.
const NAMESPACE: &str = "bench";
/// Tasks creating Kustomizations at the same time.
const CREATORS: usize = 16;
/// How long phase 1 may take before the benchmark gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(900);
/// Targets from the issue.
const READY_TARGET: Duration = Duration::from_secs(60);
const RSS_TARGET_MIB: f64 = 64.0;
const CHANGE_TARGET: Duration = Duration::from_secs(2);
const NO_DRIFT_TARGET: Duration = Duration::from_millis(300);

/// What the command line asked for.
pub struct Settings {
    /// Apps, hence Kustomizations, in phase 1.
    pub apps: usize,
    /// One-file changes in phase 2.
    pub changes: usize,
    /// ConfigMaps of the phase-3 Kustomization.
    pub objects: usize,
    /// Requested reconciles in phase 3.
    pub reconciles: usize,
    /// Build and run release binaries (else debug).
    pub release: bool,
    /// Build the binaries first (else use the ones in target/).
    pub build: bool,
}

/// Builds the controllers, runs the three phases and prints the report.
pub fn run(settings: Settings) -> Result<()> {
    let root = e2e::repo_root();
    let profile = if settings.release { "release" } else { "debug" };
    if settings.build {
        build(&root, settings.release)?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(profile);
    e2e::binaries::Binaries::ensure(e2e::binaries::Need::Full)?;
    let load_before = load_average();
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(bench(&target, &settings))?;
    print!("{}", render(&settings, &report));
    println!(
        "machine load average (1 min) before: {load_before}, after: {} ({} cores)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

fn build(root: &Path, release: bool) -> Result<()> {
    eprintln!("==> cargo build source-controller and kustomize-controller");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "--quiet"]).current_dir(root);
    for binary in ["source-controller", "kustomize-controller"] {
        build.args(["--package", binary, "--bin", binary]);
    }
    if release {
        build.arg("--release");
    }
    if !build.status().context("cannot run cargo")?.success() {
        bail!("building the controllers failed");
    }
    Ok(())
}

/// Everything the report shows.
struct Report {
    created: Duration,
    all_ready: Duration,
    peak_rss_mib: f64,
    max_sampled_rss_mib: f64,
    cpu_seconds: f64,
    reconciles: f64,
    change_latencies: Vec<Duration>,
    /// Writes to the apps' objects per change, by resource and verb.
    change_writes: Vec<std::collections::BTreeMap<String, f64>>,
    no_drift: Vec<Duration>,
    no_drift_writes: std::collections::BTreeMap<String, f64>,
    rss_after_mib: f64,
    /// VmHWM at the end of all three phases.
    peak_all_mib: f64,
}

/// A controller process with its metrics endpoint.
pub(crate) struct Process {
    pub(crate) managed: Managed,
    metrics_port: u16,
}

impl Process {
    pub(crate) fn start(
        name: &str,
        binary: &Path,
        plane: &ControlPlane,
        extra: &[String],
    ) -> Result<Self> {
        let metrics_port = free_port()?;
        let mut args = vec![
            format!("--kubeconfig={}", plane.kubeconfig_path().display()),
            format!("--metrics-addr=127.0.0.1:{metrics_port}"),
            format!("--health-addr=127.0.0.1:{}", free_port()?),
        ];
        args.extend(extra.iter().cloned());
        let log = plane.data_dir().join(format!("logs/{name}.log"));
        let managed = Managed::start(name, binary, &args, &log, Lifetime::Owner)?;
        let process = Self {
            managed,
            metrics_port,
        };
        let started = Instant::now();
        while http_get(metrics_port, "/metrics").is_err() {
            process.check()?;
            if started.elapsed() > Duration::from_secs(30) {
                bail!("{name} did not serve /metrics within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(process)
    }

    pub(crate) fn check(&self) -> Result<()> {
        if !e2e::process::alive(self.managed.pid()) {
            bail!(
                "{} exited:\n{}",
                self.managed.name(),
                e2e::process::log_tail(self.managed.log(), 30)
            );
        }
        Ok(())
    }

    fn metrics(&self) -> Result<String> {
        http_get(self.metrics_port, "/metrics")
    }

    fn cpu_seconds(&self) -> Result<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.managed.pid()))?;
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let (user, system) = ticks(11)
            .zip(ticks(12))
            .context("cannot parse /proc/pid/stat")?;
        Ok((user + system) / 100.0)
    }
}

fn resource(group: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
}

fn kustomizations() -> ApiResource {
    resource(
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
    )
}

fn git_repositories() -> ApiResource {
    resource(
        "source.toolkit.fluxcd.io",
        "GitRepository",
        "gitrepositories",
    )
}

fn app_name(index: usize) -> String {
    format!("app-{index:04}")
}

/// The files of one app; `revision` lands in a Deployment annotation, so changing it changes
/// exactly one object.
fn app_files(index: usize, revision: usize) -> Vec<(String, String)> {
    let name = app_name(index);
    let dir = format!("apps/{name}");
    vec![
        (
            format!("{dir}/kustomization.yaml"),
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- serviceaccount.yaml\n- service.yaml\n- deployment.yaml\n".into(),
        ),
        (
            format!("{dir}/serviceaccount.yaml"),
            format!("apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {name}\n"),
        ),
        (
            format!("{dir}/service.yaml"),
            format!("apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  selector:\n    app: {name}\n  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n"),
        ),
        (format!("{dir}/deployment.yaml"), deployment(&name, revision)),
    ]
}

fn deployment(name: &str, revision: usize) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  annotations:\n    bench.ferroflux.dev/revision: \"{revision}\"\nspec:\n  replicas: 0\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      serviceAccountName: {name}\n      containers:\n      - name: app\n        image: registry.local/{name}:1.0.0\n        ports:\n        - containerPort: 8080\n"
    )
}

fn bulk_files(objects: usize) -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut resources = String::new();
    for index in 0..objects {
        let file = format!("configmap-{index:03}.yaml");
        let _ = writeln!(resources, "- {file}");
        files.push((
            format!("bulk/{file}"),
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bulk-{index:03}\ndata:\n  index: \"{index}\"\n  payload: \"{}\"\n", "x".repeat(64)),
        ));
    }
    files.push((
        "bulk/kustomization.yaml".into(),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n{resources}"
        ),
    ));
    files
}

fn commit(wc: &WorkingCopy, files: &[(String, String)], message: &str) -> Result<String> {
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    wc.commit(&refs, message)
}

fn condition(object: &DynamicObject, type_: &str) -> Option<(String, String)> {
    object.data["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

fn applied(object: &DynamicObject, revision: &str) -> bool {
    condition(object, "Ready").is_some_and(|(status, _)| status == "True")
        && object.data["status"]["lastAppliedRevision"].as_str() == Some(revision)
}

fn kustomization(name: &str, path: &str) -> Result<DynamicObject> {
    Ok(serde_json::from_value(json!({
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": { "name": name, "namespace": NAMESPACE },
        "spec": {
            "interval": "1h", "path": path, "prune": true, "wait": true, "timeout": "5m",
            "targetNamespace": NAMESPACE,
            "sourceRef": { "kind": "GitRepository", "name": "fleet" },
        },
    }))?)
}

/// Writes to the apps' kinds (ServiceAccounts, Services, Deployments), by `resource VERB`.
async fn app_writes(client: &kube::Client) -> Result<std::collections::BTreeMap<String, f64>> {
    let mut all = std::collections::BTreeMap::new();
    for (group, plural) in [
        ("", "serviceaccounts"),
        ("", "services"),
        ("apps", "deployments"),
    ] {
        for (verb, count) in api_writes(client, group, plural).await? {
            all.insert(format!("{plural} {verb}"), count);
        }
    }
    Ok(all)
}

/// Annotates `name` with `reconcile.fluxcd.io/requestedAt` and returns the value.
async fn request_reconcile(api: &Api<DynamicObject>, name: &str) -> Result<String> {
    let token = jiff::Timestamp::now().to_string();
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({
            "metadata": { "annotations": { "reconcile.fluxcd.io/requestedAt": token } }
        })),
    )
    .await?;
    Ok(token)
}

/// Waits until the GitRepository has an artifact for `commit`; returns its revision.
async fn wait_artifact(api: &Api<DynamicObject>, commit: &str, source: &Process) -> Result<String> {
    let started = Instant::now();
    loop {
        let repo = api.get("fleet").await?;
        if let Some(revision) = repo.data["status"]["artifact"]["revision"].as_str()
            && revision.ends_with(commit)
        {
            return Ok(revision.to_owned());
        }
        source.check()?;
        if started.elapsed() > Duration::from_secs(120) {
            bail!("no artifact for {commit} after 120 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn bench(target: &Path, settings: &Settings) -> Result<Report> {
    let plane = ControlPlane::start(Options {
        tier: Tier::Full,
        ..Options::default()
    })
    .await?;
    let client = plane.client().await?;
    let api_ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    api_ns
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?,
        )
        .await?;

    eprintln!(
        "==> a Git repository with {} apps and {} ConfigMaps",
        settings.apps, settings.objects
    );
    let server = GitServer::new()?;
    let repo = server.create_repo("fleet")?;
    let wc = repo.working_copy()?;
    let mut files: Vec<(String, String)> = (0..settings.apps)
        .flat_map(|index| app_files(index, 0))
        .collect();
    files.extend(bulk_files(settings.objects));
    let mut head = commit(&wc, &files, "apps")?;
    let http = server.serve_http(HttpOptions::default())?;

    let storage_port = free_port()?;
    let source = Process::start(
        "source-controller",
        &target.join("source-controller"),
        &plane,
        &[
            format!(
                "--storage-path={}",
                plane.data_dir().join("storage").display()
            ),
            format!("--storage-addr=127.0.0.1:{storage_port}"),
            format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
        ],
    )?;
    let repositories: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &git_repositories());
    repositories
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": { "name": "fleet", "namespace": NAMESPACE },
                "spec": { "url": http.url("fleet"), "interval": "1h" },
            }))?,
        )
        .await?;
    let mut revision = wait_artifact(&repositories, &head, &source).await?;

    let kustomize = Process::start(
        "kustomize-controller",
        &target.join("kustomize-controller"),
        &plane,
        &[],
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, max_rss, pid) = (stop.clone(), max_rss.clone(), kustomize.managed.pid());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok((_, rss)) = rss_kib(pid) {
                    max_rss.fetch_max(rss, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };

    // Phase 1.
    eprintln!("==> phase 1: {} Kustomizations", settings.apps);
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &kustomizations());
    let started = Instant::now();
    let mut creators = tokio::task::JoinSet::new();
    for creator in 0..CREATORS {
        let (api, apps) = (api.clone(), settings.apps);
        creators.spawn(async move {
            for index in (creator..apps).step_by(CREATORS) {
                let name = app_name(index);
                let object = kustomization(&name, &format!("./apps/{name}"))?;
                api.create(&PostParams::default(), &object).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = creators.join_next().await {
        result??;
    }
    let created = started.elapsed();
    let all_ready = loop {
        let list = api.list(&ListParams::default()).await?;
        let ready = list.items.iter().filter(|k| applied(k, &revision)).count();
        if ready == settings.apps {
            break started.elapsed();
        }
        if started.elapsed() > READY_TIMEOUT {
            let stuck = list
                .items
                .iter()
                .find(|k| !applied(k, &revision))
                .map(|k| format!("{:?}", condition(k, "Ready")));
            bail!(
                "only {ready} of {} Kustomizations Ready after {READY_TIMEOUT:?} (one of the others: {stuck:?}); see {}",
                settings.apps,
                kustomize.managed.log().display()
            );
        }
        kustomize.check()?;
        // Listing a thousand objects loads the API server too: not more than once a second.
        tokio::time::sleep(Duration::from_millis(1000)).await;
    };
    eprintln!(
        "    all Ready after {:.2} s (created in {:.2} s)",
        all_ready.as_secs_f64(),
        created.as_secs_f64()
    );
    // Let follow-up reconciles settle before reading the peak.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (peak_kib, _) = rss_kib(kustomize.managed.pid())?;
    let cpu_seconds = kustomize.cpu_seconds()?;
    let reconciles = reconcile_count(&kustomize.metrics()?, "Kustomization");

    // Phase 2.
    eprintln!("==> phase 2: {} one-file changes", settings.changes);
    let mut change_latencies = Vec::new();
    let mut change_writes = Vec::new();
    for change in 0..settings.changes {
        let index = (change * 7919 + settings.apps / 2) % settings.apps;
        let name = app_name(index);
        let writes_before = app_writes(&client).await?;
        head = commit(
            &wc,
            &[(
                format!("apps/{name}/deployment.yaml"),
                deployment(&name, change + 1),
            )],
            &format!("change {name}"),
        )?;
        // Watch the source so the new artifact's arrival is seen at once.
        let watch_api = repositories.clone();
        let (seen_tx, seen_rx) = tokio::sync::oneshot::channel::<Instant>();
        let commit_hash = head.clone();
        let watcher = tokio::spawn(async move {
            let config = kube::runtime::watcher::Config::default().fields("metadata.name=fleet");
            let mut stream = kube::runtime::watcher(watch_api, config).boxed();
            while let Some(event) = stream.next().await {
                if let Ok(kube::runtime::watcher::Event::Apply(repo)) = event
                    && repo.data["status"]["artifact"]["revision"]
                        .as_str()
                        .is_some_and(|r| r.ends_with(&commit_hash))
                {
                    let _ = seen_tx.send(Instant::now());
                    return;
                }
            }
        });
        request_reconcile(&repositories, "fleet").await?;
        revision = wait_artifact(&repositories, &head, &source).await?;
        let artifact_at = tokio::time::timeout(Duration::from_secs(10), seen_rx)
            .await
            .context("the watch did not see the new artifact")??;
        watcher.abort();
        loop {
            let ks = api.get(&name).await?;
            if applied(&ks, &revision) {
                break;
            }
            if artifact_at.elapsed() > Duration::from_secs(300) {
                bail!("{name} did not apply {revision} within 300 s");
            }
            kustomize.check()?;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let latency = artifact_at.elapsed();
        change_latencies.push(latency);
        // Every Kustomization of the source reconciles the new revision; count what they wrote.
        let settle = Instant::now();
        loop {
            let list = api.list(&ListParams::default()).await?;
            if list.items.iter().all(|k| applied(k, &revision)) {
                break;
            }
            if settle.elapsed() > Duration::from_secs(600) {
                bail!("not every Kustomization applied {revision} within 600 s");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let writes = diff(&app_writes(&client).await?, &writes_before);
        eprintln!(
            "    {name}: applied {} after the artifact; all apps at the revision {:.2} s later; writes {writes:?}",
            ms(latency),
            settle.elapsed().as_secs_f64()
        );
        change_writes.push(writes);
    }

    // Phase 3.
    eprintln!(
        "==> phase 3: no-drift reconciles of {} ConfigMaps",
        settings.objects
    );
    api.create(&PostParams::default(), &kustomization("bulk", "./bulk")?)
        .await?;
    let started = Instant::now();
    loop {
        if applied(&api.get("bulk").await?, &revision) {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            bail!("the bulk Kustomization was not Ready within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let writes_before = api_writes(&client, "", "configmaps").await?;
    let mut no_drift = Vec::new();
    for _ in 0..settings.reconciles {
        let (sum_before, count_before) =
            reconcile_duration(&kustomize.metrics()?, "Kustomization", NAMESPACE, "bulk");
        let token = request_reconcile(&api, "bulk").await?;
        let started = Instant::now();
        loop {
            let ks = api.get("bulk").await?;
            let (_, count) =
                reconcile_duration(&kustomize.metrics()?, "Kustomization", NAMESPACE, "bulk");
            if ks.data["status"]["lastHandledReconcileAt"].as_str() == Some(token.as_str())
                && count > count_before
            {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!("a requested reconcile of bulk did not finish within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (sum, count) =
            reconcile_duration(&kustomize.metrics()?, "Kustomization", NAMESPACE, "bulk");
        no_drift.push(Duration::from_secs_f64(
            (sum - sum_before) / (count - count_before).max(1.0),
        ));
    }
    let no_drift_writes = diff(
        &api_writes(&client, "", "configmaps").await?,
        &writes_before,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let (peak_after, rss_after) = rss_kib(kustomize.managed.pid())?;
    drop(kustomize);
    drop(source);
    drop(http);
    drop(plane);
    Ok(Report {
        created,
        all_ready,
        peak_rss_mib: peak_kib as f64 / 1024.0,
        max_sampled_rss_mib: max_rss.load(Ordering::Relaxed) as f64 / 1024.0,
        cpu_seconds,
        reconciles,
        change_latencies,
        change_writes,
        no_drift,
        no_drift_writes,
        rss_after_mib: rss_after as f64 / 1024.0,
        peak_all_mib: peak_after as f64 / 1024.0,
    })
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn render(settings: &Settings, report: &Report) -> String {
    let mut out = String::new();
    let build = if settings.release { "release" } else { "debug" };
    let _ = writeln!(
        out,
        "\n## kustomize-controller ({build} build)\n\n| figure | value | target |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| {} Kustomizations created | {:.2} s | |",
        settings.apps,
        report.created.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| all Ready (wait: true) from the first create | {:.2} s | < {} s ({}) |",
        report.all_ready.as_secs_f64(),
        READY_TARGET.as_secs(),
        verdict(report.all_ready < READY_TARGET)
    );
    let _ = writeln!(
        out,
        "| kustomize-controller peak RSS (VmHWM; sampled max {:.1} MiB) | {:.1} MiB | < {RSS_TARGET_MIB} MiB ({}) |",
        report.max_sampled_rss_mib,
        report.peak_rss_mib,
        verdict(report.peak_rss_mib < RSS_TARGET_MIB)
    );
    let _ = writeln!(
        out,
        "| CPU time for phase 1 / reconciles counted | {:.1} s / {} | |",
        report.cpu_seconds, report.reconciles
    );
    let p50 = percentile(&report.change_latencies, 0.5);
    let _ = writeln!(
        out,
        "| one file changed: artifact to app applied, p50 / max of {} | {} / {} | p50 < {} s ({}) |",
        report.change_latencies.len(),
        ms(p50),
        ms(percentile(&report.change_latencies, 1.0)),
        CHANGE_TARGET.as_secs(),
        verdict(p50 < CHANGE_TARGET)
    );
    // Status writes are kube-controller-manager's (the Deployment's rollout), not ours.
    let only_one = report.change_writes.iter().all(|w| {
        let ours: Vec<_> = w.iter().filter(|(k, _)| !k.contains(" status")).collect();
        ours.len() == 1 && ours[0].0 == "deployments APPLY" && *ours[0].1 == 1.0
    });
    let _ = writeln!(
        out,
        "| writes per change to ServiceAccounts/Services/Deployments (dry-runs excluded; `status` ones are kube-controller-manager's) | {:?} | only the changed Deployment ({}) |",
        report.change_writes.first(),
        verdict(only_one)
    );
    let p50 = percentile(&report.no_drift, 0.5);
    let _ = writeln!(
        out,
        "| no-drift reconcile of {} ConfigMaps, p50 / mean / max of {} | {} / {} / {} | < {} ms ({}) |",
        settings.objects,
        report.no_drift.len(),
        ms(p50),
        ms(mean(&report.no_drift)),
        ms(percentile(&report.no_drift, 1.0)),
        NO_DRIFT_TARGET.as_millis(),
        verdict(p50 < NO_DRIFT_TARGET)
    );
    let _ = writeln!(
        out,
        "| writes to ConfigMaps over those reconciles | {:?} | none ({}) |",
        report.no_drift_writes,
        verdict(report.no_drift_writes.is_empty())
    );
    let _ = writeln!(
        out,
        "| kustomize-controller RSS at the end / peak over all phases | {:.1} MiB / {:.1} MiB | < {RSS_TARGET_MIB} MiB ({}) |",
        report.rss_after_mib,
        report.peak_all_mib,
        verdict(report.peak_all_mib < RSS_TARGET_MIB)
    );
    out
}
