//! `cargo xtask bench-notification`: notification-controller's event intake and webhook
//! receiver, on a tier-1 control plane with the controller as a process, built with the
//! `release-small` profile it ships with (`--debug` for a debug build).
//!
//! 1. **Event intake.** Ten Alerts, each for the events of one GitRepository name, all sending
//!    to one `generic` Provider whose address is a loopback sink run by the benchmark. `events`
//!    distinct events (spread over the ten names) are POSTed by `connections` concurrent
//!    keep-alive clients. Measured: events accepted per second (from the first request to the
//!    last answer), events delivered per second (until the sink has them all), and the
//!    controller's peak RSS (`VmHWM`).
//! 2. **Webhook.** A `generic` Receiver targeting one GitRepository; `webhooks` requests one
//!    after the other. Measured: the time from sending the request to its answer, which the
//!    receiver gives once `reconcile.fluxcd.io/requestedAt` is written (checked on the object
//!    after each request).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::control_plane::{ControlPlane, Options, Tier};
use e2e::process::free_port;
use kube::api::{Api, ApiResource, DynamicObject, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

use crate::bench_kustomize_controller::Process;
use crate::bench_source::{load_average, ms, percentile, rss_kib};

const NAMESPACE: &str = "bench";
const ALERTS: usize = 10;
const EVENTS_TARGET: f64 = 5000.0;
const RSS_TARGET_MIB: f64 = 20.0;
const WEBHOOK_TARGET: Duration = Duration::from_millis(20);

/// What the command line asked for.
pub struct Settings {
    /// Events POSTed in phase 1.
    pub events: usize,
    /// Concurrent clients posting them.
    pub connections: usize,
    /// Webhook requests in phase 2.
    pub webhooks: usize,
    /// Build and run the `release-small` binary (else debug).
    pub release: bool,
    /// Build the binary first (else use the one in target/).
    pub build: bool,
}

struct Report {
    accepted_per_second: f64,
    delivered_per_second: f64,
    refused: u64,
    peak_rss_mib: f64,
    /// RSS once the Alerts are loaded, before the load.
    idle_rss_mib: f64,
    /// The controller's CPU time during phase 1.
    cpu_seconds: f64,
    webhook_latencies: Vec<Duration>,
}

/// Builds notification-controller, runs both phases and prints the report.
pub fn run(settings: Settings) -> Result<()> {
    let root = e2e::repo_root();
    // The profile the controller ships with (see `[profile.release-small]` in Cargo.toml).
    let profile = if settings.release {
        "release-small"
    } else {
        "debug"
    };
    if settings.build {
        eprintln!("==> cargo build notification-controller ({profile})");
        let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        build
            .args([
                "build",
                "--quiet",
                "--package",
                "notification-controller",
                "--bin",
                "notification-controller",
            ])
            .current_dir(&root);
        if settings.release {
            build.args(["--profile", "release-small"]);
        }
        if !build.status().context("cannot run cargo")?.success() {
            bail!("building notification-controller failed");
        }
    }
    let binary = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join(profile)
        .join("notification-controller");
    e2e::binaries::Binaries::ensure(e2e::binaries::Need::ApiServer)?;
    let load_before = load_average();
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(bench(&binary, &settings))?;
    print!("{}", render(&settings, &report));
    println!(
        "machine load average (1 min) before: {load_before}, after: {} ({} cores)",
        load_average(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    Ok(())
}

fn resource(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

async fn create(
    client: &kube::Client,
    resource: &ApiResource,
    object: serde_json::Value,
) -> Result<()> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), NAMESPACE, resource);
    api.create(&PostParams::default(), &serde_json::from_value(object)?)
        .await?;
    Ok(())
}

/// A loopback HTTP sink counting the requests it answers.
async fn sink() -> Result<(String, Arc<AtomicU64>)> {
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, count))
}

fn event(index: usize) -> serde_json::Value {
    json!({
        "involvedObject": {
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "name": format!("app-{}", index % ALERTS), "namespace": NAMESPACE,
        },
        "severity": "info",
        "timestamp": "2026-01-01T00:00:00Z",
        "message": format!("stored artifact for revision 'main@sha1:{index:040x}'"),
        "reason": "NewArtifact",
        "metadata": { "source.toolkit.fluxcd.io/revision": format!("main@sha1:{index:040x}") },
        "reportingController": "source-controller",
        "reportingInstance": "bench",
    })
}

async fn bench(binary: &Path, settings: &Settings) -> Result<Report> {
    let plane = ControlPlane::start(Options {
        tier: Tier::ApiServer,
        ..Options::default()
    })
    .await?;
    let client = plane.client().await?;
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?,
        )
        .await?;
    let (sink_url, delivered) = sink().await?;
    let notification =
        |version: &str, kind: &str| resource("notification.toolkit.fluxcd.io", version, kind);
    create(
        &client,
        &notification("v1beta3", "Provider"),
        json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Provider",
            "metadata": { "name": "sink" },
            "spec": { "type": "generic", "address": sink_url },
        }),
    )
    .await?;
    for index in 0..ALERTS {
        create(
            &client,
            &notification("v1beta3", "Alert"),
            json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1beta3", "kind": "Alert",
                "metadata": { "name": format!("app-{index}") },
                "spec": {
                    "providerRef": { "name": "sink" }, "eventSeverity": "info",
                    "eventSources": [{ "kind": "GitRepository", "name": format!("app-{index}") }],
                },
            }),
        )
        .await?;
    }
    let events_port = free_port()?;
    let receiver_port = free_port()?;
    let controller = Process::start(
        "notification-controller",
        binary,
        &plane,
        &[
            format!("--events-addr=127.0.0.1:{events_port}"),
            format!("--receiverAddr=127.0.0.1:{receiver_port}"),
        ],
    )?;
    let http = toolkit_sdk::tls::http_client_builder()
        .pool_max_idle_per_host(settings.connections)
        .build()?;
    let events_url = format!("http://127.0.0.1:{events_port}/");
    // Wait until the Alerts are loaded: a probe event is delivered. Each probe is new (a
    // repeat would be refused as a duplicate); late deliveries of earlier probes are let in
    // before counting starts.
    let started = Instant::now();
    for attempt in 0.. {
        let _ = http
            .post(&events_url)
            .json(&event(usize::MAX / 2 + attempt))
            .send()
            .await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if delivered.load(Ordering::Relaxed) > 0 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            break;
        }
        controller.check()?;
        if started.elapsed() > Duration::from_secs(60) {
            bail!("notification-controller did not deliver a probe event within 60 s");
        }
    }
    let base = delivered.load(Ordering::Relaxed);
    let (_, idle_kib) = rss_kib(controller.managed.pid())?;
    let cpu_before = cpu_seconds(controller.managed.pid())?;

    eprintln!(
        "==> phase 1: {} events over {} connections, {ALERTS} Alerts",
        settings.events, settings.connections
    );
    // The requests are serialized before the clock starts and written on raw keep-alive
    // connections: the load generator shares the machine, so it must cost as little as it can.
    let requests: Vec<Vec<u8>> = (0..settings.events)
        .map(|index| {
            let body = serde_json::to_vec(&event(index)).unwrap_or_default();
            let mut request = format!(
                "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            request.extend_from_slice(&body);
            request
        })
        .collect();
    let requests = Arc::new(requests);
    let refused = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..settings.connections {
        let (requests, refused, step) = (requests.clone(), refused.clone(), settings.connections);
        let addr = format!("127.0.0.1:{events_port}");
        clients.spawn(async move {
            use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _};
            let stream = tokio::net::TcpStream::connect(&addr).await?;
            stream.set_nodelay(true)?;
            let mut stream = tokio::io::BufReader::new(stream);
            let mut line = String::new();
            for index in (worker..requests.len()).step_by(step) {
                stream.get_mut().write_all(&requests[index]).await?;
                // Status line, headers (for the body length), body.
                line.clear();
                stream.read_line(&mut line).await?;
                if !line.starts_with("HTTP/1.1 2") {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
                let mut length = 0usize;
                loop {
                    line.clear();
                    stream.read_line(&mut line).await?;
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0; length];
                stream.read_exact(&mut body).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(result) = clients.join_next().await {
        result??;
    }
    let accepted_in = started.elapsed();
    let want = base + settings.events as u64;
    while delivered.load(Ordering::Relaxed) < want {
        controller.check()?;
        if started.elapsed() > Duration::from_secs(300) {
            bail!(
                "only {} of {} events delivered after 300 s",
                delivered.load(Ordering::Relaxed) - base,
                settings.events
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let delivered_in = started.elapsed();
    let (peak_kib, _) = rss_kib(controller.managed.pid())?;
    let cpu = cpu_seconds(controller.managed.pid())? - cpu_before;

    eprintln!("==> phase 2: {} webhooks", settings.webhooks);
    let sources = resource("source.toolkit.fluxcd.io", "v1", "GitRepository");
    create(
        &client,
        &sources,
        json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": { "name": "app-0" },
            "spec": { "url": "https://example.com/app.git", "interval": "1h" },
        }),
    )
    .await?;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), NAMESPACE);
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "token" }, "stringData": { "token": "bench-token" },
            }))?,
        )
        .await?;
    create(
        &client,
        &notification("v1", "Receiver"),
        json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
            "metadata": { "name": "hook" },
            "spec": {
                "type": "generic", "secretRef": { "name": "token" },
                "resources": [{ "kind": "GitRepository", "name": "app-0" }],
            },
        }),
    )
    .await?;
    let receivers: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &notification("v1", "Receiver"));
    let started = Instant::now();
    let path = loop {
        let receiver = receivers.get("hook").await?;
        if let Some(path) = receiver.data["status"]["webhookPath"].as_str() {
            break path.to_owned();
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the Receiver has no webhookPath after 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let hook_url = format!("http://127.0.0.1:{receiver_port}{path}");
    let repositories: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), NAMESPACE, &sources);
    let mut webhook_latencies = Vec::new();
    let mut attempts = 0;
    while webhook_latencies.len() < settings.webhooks {
        attempts += 1;
        if attempts > settings.webhooks + 100 {
            bail!("the receiver kept refusing requests (it answers 503 until it is ready)");
        }
        let before = repositories.get("app-0").await?;
        let sent = Instant::now();
        let answer = http.post(&hook_url).body("{}").send().await?;
        let latency = sent.elapsed();
        if answer.status() == http::StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        if !answer.status().is_success() {
            bail!("the webhook was answered {}", answer.status());
        }
        let after = repositories.get("app-0").await?;
        let annotation = |o: &DynamicObject| {
            o.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("reconcile.fluxcd.io/requestedAt"))
                .cloned()
        };
        if annotation(&after).is_none() || annotation(&after) == annotation(&before) {
            bail!("a webhook answered 200 without setting reconcile.fluxcd.io/requestedAt");
        }
        webhook_latencies.push(latency);
    }
    drop(controller);
    drop(plane);
    Ok(Report {
        accepted_per_second: settings.events as f64 / accepted_in.as_secs_f64(),
        delivered_per_second: settings.events as f64 / delivered_in.as_secs_f64(),
        refused: refused.load(Ordering::Relaxed),
        peak_rss_mib: peak_kib as f64 / 1024.0,
        idle_rss_mib: idle_kib as f64 / 1024.0,
        cpu_seconds: cpu,
        webhook_latencies,
    })
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn render(settings: &Settings, report: &Report) -> String {
    let mut out = String::new();
    let build = if settings.release {
        "release-small"
    } else {
        "debug"
    };
    let _ = writeln!(
        out,
        "\n## notification-controller ({build} build)\n\n| figure | value | target |\n|---|---|---|"
    );
    let _ = writeln!(
        out,
        "| events accepted ({} events, {} connections, {ALERTS} Alerts; refused: {}) | {:.0} /s | > {EVENTS_TARGET} /s ({}) |",
        settings.events,
        settings.connections,
        report.refused,
        report.accepted_per_second,
        verdict(report.accepted_per_second > EVENTS_TARGET && report.refused == 0)
    );
    let _ = writeln!(
        out,
        "| events delivered to the sink Provider | {:.0} /s | |",
        report.delivered_per_second
    );
    let _ = writeln!(
        out,
        "| controller CPU time for phase 1 (events per CPU second) | {:.1} s ({:.0} /s) | |",
        report.cpu_seconds,
        settings.events as f64 / report.cpu_seconds.max(0.001)
    );
    let _ = writeln!(
        out,
        "| RSS before the load / peak (VmHWM) | {:.1} MiB / {:.1} MiB | peak < {RSS_TARGET_MIB} MiB ({}) |",
        report.idle_rss_mib,
        report.peak_rss_mib,
        verdict(report.peak_rss_mib < RSS_TARGET_MIB)
    );
    let p50 = percentile(&report.webhook_latencies, 0.5);
    let _ = writeln!(
        out,
        "| webhook to `requestedAt` set, p50 / p90 / max of {} | {} / {} / {} | p50 < {} ms ({}) |",
        report.webhook_latencies.len(),
        ms(p50),
        ms(percentile(&report.webhook_latencies, 0.9)),
        ms(percentile(&report.webhook_latencies, 1.0)),
        WEBHOOK_TARGET.as_millis(),
        verdict(p50 < WEBHOOK_TARGET)
    );
    out
}

/// User + system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let (user, system) = ticks(11)
        .zip(ticks(12))
        .context("cannot parse /proc/pid/stat")?;
    Ok((user + system) / 100.0)
}
