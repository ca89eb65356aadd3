//! `cargo xtask bench-git-artifact`: the artifact of a large Git repository, source-controller
//! against `git clone --depth 1` + `tar czf` on the same machine.
//!
//! 1. Two bare repositories are generated with `git fast-import` from a seeded PRNG (the same
//!    repositories on every machine): `files` small YAML files in HEAD, spread over directories
//!    of 100, under a history of commits that each rewrite 256 files with 4–28 KiB of random
//!    base64 (incompressible but for base64's 6 bits per byte), until the pack reaches
//!    `history_mib`; a last commit rewrites every file small again. The second repository has a
//!    4x smaller history and the same files.
//! 2. Both are served by `e2e::git_server` over smart HTTP (`git http-backend`).
//! 3. For each repository, alternating, `runs` times each after one warm-up run each:
//!    - baseline: `git clone --depth 1` then `tar czf` of the tree without `.git`, each under
//!      GNU time; wall times summed, peak RSS the larger of the two;
//!    - ours: the release `source-controller` binary against a tier-1 control plane. A fresh
//!      controller process per run; once it serves `/metrics`, a GitRepository is created and
//!      the time until `Ready=True` with an artifact is measured; peak RSS is the controller's
//!      `VmHWM` (its idle footprint included, printed apart). The object is then deleted and
//!      the controller stopped.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::control_plane::{ControlPlane, Options, Tier};
use e2e::git_server::{GitServer, HttpGitServer, HttpOptions};
use e2e::process::{Lifetime, Managed, free_port};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use serde_json::json;

const GNU_TIME: &str = "/usr/bin/time";
/// Files per directory of the generated tree.
const FILES_PER_DIR: usize = 100;
/// Files each history commit rewrites.
const FILES_PER_COMMIT: usize = 256;
/// Namespace of the GitRepositories.
const NAMESPACE: &str = "bench-git";
/// The 1-minute load average the timed runs wait for (at most [`MAX_QUIET_WAIT`]).
const QUIET_LOAD: f64 = 1.5;
/// How long the timed runs wait for a quiet machine.
const MAX_QUIET_WAIT: Duration = Duration::from_secs(300);
/// The PRNG seed of the generated repositories.
const SEED: u64 = 0x5eed_f1a5;

/// What `cargo xtask bench-git-artifact` measures.
pub struct Settings {
    /// Files in the HEAD tree.
    pub files: usize,
    /// Pack size of the large repository's history, in MiB.
    pub history_mib: u64,
    /// Timed runs per tool and repository.
    pub runs: usize,
    /// Keep the generated repositories (the path is printed).
    pub keep: bool,
    /// Build the release binary first.
    pub build: bool,
}

/// Generates the repositories, measures both tools and prints the table.
pub fn run(settings: &Settings) -> Result<()> {
    if !Path::new(GNU_TIME).exists() {
        bail!("{GNU_TIME} is missing: install GNU time (Debian/Ubuntu: apt-get install -y time)");
    }
    let runs = settings.runs.max(1);
    let root = e2e::repo_root();
    let parent = std::env::temp_dir();
    check_disk(&parent, settings.history_mib)?;
    if settings.build {
        eprintln!("==> cargo build --release -p source-controller");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--quiet", "-p", "source-controller"])
            .args(["--bin", "source-controller"])
            .current_dir(&root)
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("building source-controller failed");
        }
    }
    let binary = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/source-controller");
    e2e::binaries::Binaries::ensure(e2e::binaries::Need::ApiServer)?;

    let server = GitServer::new_in(&parent)?;
    let work = server.repos_dir().with_file_name("bench");
    std::fs::create_dir_all(&work)?;
    let result = (|| {
        let small_mib = (settings.history_mib / 4).max(1);
        let mut repos = Vec::new();
        for (name, mib) in [("large", settings.history_mib), ("small", small_mib)] {
            eprintln!(
                "==> generating {name}: {} files, history ~{mib} MiB",
                settings.files
            );
            let repo = server.create_repo(name)?;
            let generated = generate(repo.path(), settings.files, mib << 20)?;
            eprintln!(
                "    {} commits, pack {:.0} MiB, {:.1} s",
                generated.commits,
                mib_of(generated.pack_bytes),
                generated.elapsed.as_secs_f64()
            );
            repos.push((name, generated));
        }
        let http = server.serve_http(HttpOptions::default())?;
        let runtime = tokio::runtime::Runtime::new()?;
        let results = runtime.block_on(measure_all(&binary, &http, &work, &repos, runs))?;
        print!("{}", render(settings, &repos, &results, runs));
        Ok(())
    })();
    if settings.keep {
        eprintln!("kept the repositories in {}", server.repos_dir().display());
        // The folder is removed when the last handle is dropped: never drop this one.
        std::mem::forget(server);
    }
    result
}

/// Fails early when the temporary folder cannot hold both repositories and the checkouts.
fn check_disk(dir: &Path, history_mib: u64) -> Result<()> {
    let output = Command::new("df")
        .args(["--output=avail", "-B1M"])
        .arg(dir)
        .output()
        .context("cannot run df")?;
    let text = String::from_utf8_lossy(&output.stdout);
    let avail: u64 = text
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .with_context(|| format!("cannot read df's output {text:?}"))?;
    // Both packs (1 + 1/4), the pack indexes and checkouts, with a margin.
    let need = history_mib * 2 + 2048;
    eprintln!(
        "==> {avail} MiB free in {}, need ~{need} MiB",
        dir.display()
    );
    if avail < need {
        bail!(
            "only {avail} MiB free in {}; need about {need} MiB",
            dir.display()
        );
    }
    Ok(())
}

/// SplitMix64: a small, fast, seeded generator (the content only needs to be the same
/// everywhere, not cryptographically random).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `len` random base64 characters.
    fn base64(&mut self, out: &mut Vec<u8>, len: usize) {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let start = out.len();
        out.resize(start + len, 0);
        for chunk in out[start..].chunks_mut(10) {
            let mut bits = self.next();
            for byte in chunk {
                *byte = ALPHABET[(bits & 63) as usize];
                bits >>= 6;
            }
        }
    }
}

/// What [`generate`] made.
struct Generated {
    commits: usize,
    pack_bytes: u64,
    elapsed: Duration,
}

fn file_path(index: usize) -> String {
    format!(
        "apps/app-{:04}/config-{index:06}.yaml",
        index / FILES_PER_DIR
    )
}

/// A small YAML file (about 600 bytes); `blob` adds a `blob:` field of that many random
/// characters in lines of 76.
fn file_content(rng: &mut Rng, index: usize, revision: usize, blob: usize) -> Vec<u8> {
    let dir = index / FILES_PER_DIR;
    let mut out = Vec::with_capacity(700 + blob + blob / 76 * 5);
    let _ = write!(
        out,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config-{index:06}\n  namespace: app-{dir:04}\n  labels:\n    app.kubernetes.io/name: app-{dir:04}\n    app.kubernetes.io/part-of: bench\n  annotations:\n    bench.ferroflux.dev/revision: \"{revision}\"\ndata:\n  replicas: \"{}\"\n  checksum: ",
        rng.below(10)
    );
    rng.base64(&mut out, 64);
    out.extend_from_slice(b"\n  settings: |\n");
    for line in 0..(4 + rng.below(5)) {
        let _ = write!(out, "    key{line}: ");
        let len = 24 + rng.below(24);
        rng.base64(&mut out, len);
        out.push(b'\n');
    }
    if blob > 0 {
        out.extend_from_slice(b"  blob: |\n");
        let mut left = blob;
        while left > 0 {
            let n = left.min(76);
            out.extend_from_slice(b"    ");
            rng.base64(&mut out, n);
            out.push(b'\n');
            left -= n;
        }
    }
    out
}

/// The size of the pack `git fast-import` is writing (or wrote) in `repo`.
fn pack_bytes(repo: &Path) -> u64 {
    std::fs::read_dir(repo.join("objects/pack"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("tmp_pack_") || name.ends_with(".pack")
                })
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn commit_header(out: &mut impl std::io::Write, number: usize, message: &str) -> Result<()> {
    let time = 1_704_067_200 + number as u64 * 600;
    writeln!(out, "commit refs/heads/master")?;
    writeln!(
        out,
        "committer Ferroflux Bench <bench@ferroflux.dev> {time} +0000"
    )?;
    writeln!(out, "data {}\n{message}", message.len())?;
    Ok(())
}

fn modify(out: &mut impl std::io::Write, path: &str, content: &[u8]) -> Result<()> {
    writeln!(out, "M 100644 inline {path}\ndata {}", content.len())?;
    out.write_all(content)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes a repository into the bare repository `repo` with `git fast-import`.
fn generate(repo: &Path, files: usize, target_pack: u64) -> Result<Generated> {
    let started = Instant::now();
    let mut rng = Rng(SEED ^ target_pack);
    let mut child = e2e::git_server::git_command()
        .arg("-C")
        .arg(repo)
        // Fast zlib: the content is random, so a higher level gains nothing but time.
        .args([
            "-c",
            "core.compression=1",
            "fast-import",
            "--quiet",
            "--done",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run git fast-import")?;
    let stdin = child.stdin.take().context("no stdin")?;
    let mut out = BufWriter::with_capacity(1 << 20, stdin);

    let mut commits = 0;
    commit_header(&mut out, commits, "initial layout")?;
    for index in 0..files {
        modify(
            &mut out,
            &file_path(index),
            &file_content(&mut rng, index, 0, 0),
        )?;
    }
    commits += 1;
    out.flush()?;
    // The last commit adds about as much as the first (measured here), so stop the history
    // that much early.
    let layout = pack_bytes(repo);
    while pack_bytes(repo) + layout < target_pack {
        commit_header(&mut out, commits, &format!("change {commits}"))?;
        for _ in 0..FILES_PER_COMMIT {
            let index = rng.below(files);
            let blob = 4096 + rng.below(24 * 1024);
            modify(
                &mut out,
                &file_path(index),
                &file_content(&mut rng, index, commits, blob),
            )?;
        }
        commits += 1;
        out.flush()?;
    }
    commit_header(&mut out, commits, "small files again")?;
    for index in 0..files {
        modify(
            &mut out,
            &file_path(index),
            &file_content(&mut rng, index, commits, 0),
        )?;
    }
    commits += 1;
    writeln!(out, "done")?;
    out.flush()?;
    drop(out);
    let status = child.wait()?;
    if !status.success() {
        bail!("git fast-import failed: {status}");
    }
    Ok(Generated {
        commits,
        pack_bytes: pack_bytes(repo),
        elapsed: started.elapsed(),
    })
}

/// One measured run.
#[derive(Clone, Copy)]
struct Sample {
    wall: Duration,
    /// User plus system CPU time in seconds (steadier than wall time on a busy machine).
    cpu: f64,
    peak_rss_kib: u64,
    /// Artifact (or tarball) size.
    bytes: u64,
}

/// Runs `argv` under GNU time with the environment of `e2e::git_server::git_command` (no
/// machine or user Git configuration); returns wall time, CPU time and peak RSS.
fn timed(argv: &[&str], cwd: &Path, time_file: &Path) -> Result<(Duration, f64, u64)> {
    let template = e2e::git_server::git_command();
    let mut cmd = Command::new(GNU_TIME);
    for (key, value) in template.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    let started = Instant::now();
    let output = cmd
        .arg("--format=%M %U %S")
        .arg("--output")
        .arg(time_file)
        .args(argv)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", argv.join(" ")))?;
    let wall = started.elapsed();
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = std::fs::read_to_string(time_file)?;
    let fields: Vec<&str> = text
        .lines()
        .last()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let parsed = match fields.as_slice() {
        [rss, user, system] => rss
            .parse::<u64>()
            .ok()
            .zip(user.parse::<f64>().ok())
            .zip(system.parse::<f64>().ok()),
        _ => None,
    };
    let ((rss, user), system) =
        parsed.with_context(|| format!("cannot read GNU time's output {text:?}"))?;
    Ok((wall, user + system, rss))
}

/// `git clone --depth 1` + `tar czf` (without `.git`).
fn baseline(url: &str, work: &Path) -> Result<Sample> {
    let dir = work.join("clone");
    let tarball = work.join("clone.tar.gz");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(&tarball);
    let time_file = work.join("time.txt");
    let dir_arg = dir.to_string_lossy().into_owned();
    let (clone_wall, clone_cpu, clone_rss) = timed(
        &["git", "clone", "--quiet", "--depth", "1", url, &dir_arg],
        work,
        &time_file,
    )?;
    let tar_arg = tarball.to_string_lossy().into_owned();
    let (tar_wall, tar_cpu, tar_rss) = timed(
        &[
            "tar",
            "czf",
            &tar_arg,
            "--exclude=./.git",
            "-C",
            &dir_arg,
            ".",
        ],
        work,
        &time_file,
    )?;
    let bytes = std::fs::metadata(&tarball)?.len();
    std::fs::remove_dir_all(&dir)?;
    std::fs::remove_file(&tarball)?;
    Ok(Sample {
        wall: clone_wall + tar_wall,
        cpu: clone_cpu + tar_cpu,
        peak_rss_kib: clone_rss.max(tar_rss),
        bytes,
    })
}

/// The results of one repository.
#[derive(Default)]
struct Results {
    baseline: Vec<Sample>,
    ours: Vec<Sample>,
    /// The controller's resident set once started, before any object (KiB).
    idle_rss_kib: Vec<u64>,
}

async fn measure_all(
    binary: &Path,
    http: &HttpGitServer,
    work: &Path,
    repos: &[(&str, Generated)],
    runs: usize,
) -> Result<BTreeMap<String, Results>> {
    let plane = ControlPlane::start(Options {
        tier: Tier::ApiServer,
        ..Options::default()
    })
    .await?;
    let client = plane.client().await?;
    let namespace: k8s_openapi::api::core::v1::Namespace =
        serde_json::from_value(json!({ "metadata": { "name": NAMESPACE } }))?;
    Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone())
        .patch(
            NAMESPACE,
            &PatchParams::apply("ferroflux-bench").force(),
            &Patch::Apply(&namespace),
        )
        .await?;
    let resource = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "GitRepository"),
        "gitrepositories",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, NAMESPACE, &resource);

    // Other work on the machine skews the ratio: wait a while for it to calm down.
    let waited = Instant::now();
    while load_1m() > QUIET_LOAD && waited.elapsed() < MAX_QUIET_WAIT {
        if waited.elapsed().is_zero() || waited.elapsed().as_secs() % 60 < 15 {
            eprintln!(
                "    waiting for a load average below {QUIET_LOAD} (now {})",
                load_average()
            );
        }
        tokio::time::sleep(Duration::from_secs(15)).await;
    }

    let mut results: BTreeMap<String, Results> = BTreeMap::new();
    let mut counter = 0;
    // Run 0 is a warm-up (page cache, first connections) and is not counted.
    for run in 0..=runs {
        if run == 1 {
            eprintln!("==> timed runs; load average {}", load_average());
        }
        for (name, _) in repos {
            let url = http.url(name);
            let base = baseline(&url, work)?;
            counter += 1;
            let (ours, idle) = ours(binary, &plane, &api, &resource, &url, counter).await?;
            eprintln!(
                "    {name} run {run}{}: baseline {:.2} s (CPU {:.2} s) {:.0} MiB, ours {:.2} s (CPU {:.2} s) {:.0} MiB (idle {:.0} MiB); tar.gz {:.1} MiB, artifact {:.1} MiB",
                if run == 0 { " (warm-up)" } else { "" },
                base.wall.as_secs_f64(),
                base.cpu,
                base.peak_rss_kib as f64 / 1024.0,
                ours.wall.as_secs_f64(),
                ours.cpu,
                ours.peak_rss_kib as f64 / 1024.0,
                idle as f64 / 1024.0,
                mib_of(base.bytes),
                mib_of(ours.bytes),
            );
            if run > 0 {
                let entry = results.entry((*name).to_string()).or_default();
                entry.baseline.push(base);
                entry.ours.push(ours);
                entry.idle_rss_kib.push(idle);
            }
        }
    }
    eprintln!("    load average after the timed runs {}", load_average());
    Ok(results)
}

/// One cold artifact by a fresh controller: (sample, idle RSS in KiB).
async fn ours(
    binary: &Path,
    plane: &ControlPlane,
    api: &Api<DynamicObject>,
    resource: &ApiResource,
    url: &str,
    counter: usize,
) -> Result<(Sample, u64)> {
    let storage = plane.data_dir().join("storage");
    let storage_port = free_port()?;
    let metrics_port = free_port()?;
    let args = vec![
        format!("--kubeconfig={}", plane.kubeconfig_path().display()),
        format!("--storage-path={}", storage.display()),
        format!("--storage-addr=127.0.0.1:{storage_port}"),
        format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
        format!("--metrics-addr=127.0.0.1:{metrics_port}"),
        format!("--health-addr=127.0.0.1:{}", free_port()?),
    ];
    let log = plane
        .data_dir()
        .join(format!("logs/source-controller-{counter}.log"));
    let mut process = Managed::start("source-controller", binary, &args, &log, Lifetime::Owner)?;
    let pid = process.pid();
    let started = Instant::now();
    while http_get(metrics_port, "/metrics").is_err() {
        process.check_running()?;
        if started.elapsed() > Duration::from_secs(30) {
            bail!("source-controller did not serve /metrics within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, idle) = rss_kib(pid)?;

    let name = format!("repo-{counter}");
    let mut object = DynamicObject::new(&name, resource).within(NAMESPACE);
    object.data = json!({
        "spec": {
            "url": url,
            "interval": "60m",
            "timeout": "10m",
            "ref": { "branch": "master" },
        }
    });
    let cpu_before = cpu_seconds(pid)?;
    let created = Instant::now();
    api.create(&PostParams::default(), &object).await?;
    let artifact_size = loop {
        let current = api.get(&name).await?;
        let ready = current.data["status"]["conditions"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["type"] == "Ready").cloned());
        if let Some(ready) = ready {
            let artifact = &current.data["status"]["artifact"];
            if ready["status"] == "True" && artifact["revision"].is_string() {
                break artifact["size"].as_u64().unwrap_or(0);
            }
            if ready["status"] == "False" {
                bail!(
                    "GitRepository {name} failed: {} {}\n{}",
                    ready["reason"],
                    ready["message"],
                    e2e::process::log_tail(&log, 20)
                );
            }
        }
        process.check_running()?;
        if created.elapsed() > Duration::from_secs(900) {
            bail!("GitRepository {name} not Ready after 15 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let wall = created.elapsed();
    let (peak, _) = rss_kib(pid)?;
    let cpu = cpu_seconds(pid)? - cpu_before;

    // Delete while the controller runs (it removes its finalizer and the artifacts).
    api.delete(&name, &DeleteParams::default()).await?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while api.get_opt(&name).await?.is_some() {
        if Instant::now() > deadline {
            bail!("GitRepository {name} still exists a minute after its deletion");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    process.stop(Duration::from_secs(10));
    Ok((
        Sample {
            wall,
            cpu,
            peak_rss_kib: peak,
            bytes: artifact_size,
        },
        idle,
    ))
}

/// (peak, current) resident set of `pid` in KiB.
fn rss_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .with_context(|| format!("no {name} in /proc/{pid}/status"))
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// User plus system CPU time of `pid` so far, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // After the command name (which may hold spaces): utime and stime are fields 14 and 15.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    let (user, system) = ticks(11)
        .zip(ticks(12))
        .context("cannot parse /proc/pid/stat")?;
    Ok((user + system) / 100.0)
}

fn http_get(port: u16, path: &str) -> Result<String> {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    if !text.starts_with("HTTP/1.1 200") {
        bail!("GET {path}: {}", text.lines().next().unwrap_or_default());
    }
    Ok(text)
}

fn load_1m() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn mib_of(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1u32 << 20)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn render(
    settings: &Settings,
    repos: &[(&str, Generated)],
    results: &BTreeMap<String, Results>,
    runs: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} files in HEAD; {runs} timed runs per tool and repository, alternating, after one warm-up each\n",
        settings.files
    );
    let _ = writeln!(
        out,
        "| repository | pack | tool | wall min | wall median | wall max | CPU median | peak RSS median (max) | output |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|");
    let mut summary = Vec::new();
    for (name, generated) in repos {
        let Some(result) = results.get(*name) else {
            continue;
        };
        let mut medians = Vec::new();
        for (tool, samples) in [
            ("`git clone --depth 1` + `tar czf`", &result.baseline),
            ("source-controller (release)", &result.ours),
        ] {
            let walls: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
            let rss: Vec<f64> = samples
                .iter()
                .map(|s| s.peak_rss_kib as f64 / 1024.0)
                .collect();
            let min = walls.iter().copied().fold(f64::INFINITY, f64::min);
            let max = walls.iter().copied().fold(0.0, f64::max);
            let rss_max = rss.iter().copied().fold(0.0, f64::max);
            let wall = median(walls);
            let cpu = median(samples.iter().map(|s| s.cpu).collect());
            let rss_median = median(rss);
            let bytes = samples.first().map_or(0, |s| s.bytes);
            let _ = writeln!(
                out,
                "| {name} | {:.0} MiB | {tool} | {min:.2} s | {wall:.2} s | {max:.2} s | {cpu:.2} s | {rss_median:.0} MiB ({rss_max:.0}) | {:.1} MiB |",
                mib_of(generated.pack_bytes),
                mib_of(bytes)
            );
            medians.push((wall, rss_median, cpu));
        }
        let idle = median(
            result
                .idle_rss_kib
                .iter()
                .map(|k| *k as f64 / 1024.0)
                .collect(),
        );
        summary.push((
            name,
            medians[1].0 / medians[0].0,
            medians[1].1,
            idle,
            medians[1].2 / medians[0].2,
        ));
    }
    let _ = writeln!(out);
    for (name, ratio, rss, idle, cpu_ratio) in &summary {
        let _ = writeln!(
            out,
            "{name}: ours / baseline wall time = {ratio:.2} (target <= 1.2: {}), CPU time = {cpu_ratio:.2}; controller peak RSS {rss:.0} MiB (idle {idle:.0} MiB)",
            if *ratio <= 1.2 { "met" } else { "NOT met" }
        );
    }
    if let [large, small] = summary.as_slice() {
        let _ = writeln!(
            out,
            "peak RSS large / small = {:.2} for a {}x larger history",
            large.2 / small.2,
            4
        );
    }
    out
}
