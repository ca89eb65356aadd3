//! `cargo xtask bench-kustomize`: our kustomize engine against `kubectl kustomize`, side by side,
//! on one large generated overlay.
//!
//! The input (written to a temporary directory) is a base of `apps` applications, five objects each
//! (Deployment, Service, ServiceAccount, ConfigMap, HorizontalPodAutoscaler), plus ConfigMap and
//! Secret generators, under three overlay levels that each add a name prefix or suffix, labels or
//! annotations, generators (new and `behavior: merge`), strategic merge and JSON 6902 patches
//! (by kind, name regex, label selector and one per object), images, replicas and a namespace.
//!
//! Both tools build it once to check the outputs are the same objects in the same order, then
//! `runs` more times each, alternating; wall time comes from the parent, CPU time and peak RSS from
//! GNU time (`/usr/bin/time`, the Debian package `time`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_yaml::Value;

const GNU_TIME: &str = "/usr/bin/time";
/// Generated ConfigMaps the Deployments share (each refers to one).
const SHARED_CONFIGS: usize = 20;
/// Deployments that get a patch of their own in the middle overlay.
const SINGLE_PATCHES: usize = 50;
/// Deployments whose replica count the middle overlay sets.
const REPLICA_ENTRIES: usize = 25;

/// Generates the overlay, checks both tools agree on it, and prints a timing and memory table.
pub fn run(apps: usize, runs: usize, keep: bool) -> Result<()> {
    let runs = runs.max(1);
    if !Path::new(GNU_TIME).exists() {
        bail!("{GNU_TIME} is missing: install GNU time (Debian/Ubuntu: apt-get install -y time)");
    }
    let root = e2e::repo_root();
    eprintln!("==> cargo build --release -p ferroflux-kustomize");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "ferroflux-kustomize"])
        .current_dir(&root)
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building ferroflux-kustomize failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let ours = target.join("release/ferroflux-kustomize");

    let work =
        std::env::temp_dir().join(format!("ferroflux-bench-kustomize-{}", std::process::id()));
    let result = (|| {
        let overlay = generate(&work, apps)?;
        compare(&work, &overlay, &ours, runs)
    })();
    if keep {
        eprintln!("kept the generated overlay in {}", work.display());
    } else {
        let _ = std::fs::remove_dir_all(&work);
    }
    result
}

/// One tool: the command line that builds `dir`.
struct Tool {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
}

impl Tool {
    fn command(&self, dir: &Path) -> Vec<String> {
        let mut argv = vec![self.program.display().to_string()];
        argv.extend(self.args.iter().cloned());
        argv.push(dir.display().to_string());
        argv
    }
}

/// One measured run.
struct Sample {
    wall: Duration,
    /// User plus system CPU time in seconds: less sensitive to other load than wall time.
    cpu: f64,
    peak_rss_kib: u64,
}

/// Runs `argv` under GNU time with stdout to `out`; returns wall time, CPU time and peak RSS.
fn measure(argv: &[String], out: &Path, time_file: &Path) -> Result<Sample> {
    let stdout = std::fs::File::create(out)?;
    let started = Instant::now();
    let output = Command::new(GNU_TIME)
        .arg("--format=%M %U %S")
        .arg("--output")
        .arg(time_file)
        .args(argv)
        .stdout(stdout)
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("cannot run {}", argv[0]))?;
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
    let ((peak_rss_kib, user), system) =
        parsed.with_context(|| format!("cannot read GNU time's output {text:?}"))?;
    Ok(Sample {
        wall,
        cpu: user + system,
        peak_rss_kib,
    })
}

fn parse_stream(path: &Path) -> Result<Vec<Value>> {
    // Both tools separate documents with a `---` line; inside a document such a line would be
    // indented (block scalars), so splitting on it is exact for this output.
    let text = std::fs::read_to_string(path)?;
    let mut docs = Vec::new();
    let mut current = String::new();
    for line in text.lines().chain(std::iter::once("---")) {
        if line == "---" {
            let value: Value = serde_yaml::from_str(&current)
                .with_context(|| format!("{} is not a YAML stream", path.display()))?;
            if !value.is_null() {
                docs.push(value);
            }
            current.clear();
        } else {
            current.push_str(line);
            current.push('\n');
        }
    }
    Ok(docs)
}

fn describe(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object["metadata"]["name"].as_str().unwrap_or("?")
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn compare(work: &Path, overlay: &Path, ours: &Path, runs: usize) -> Result<()> {
    let tools = [
        Tool {
            name: "kubectl kustomize",
            program: PathBuf::from("kubectl"),
            args: vec!["kustomize".into()],
        },
        Tool {
            name: "ferroflux-kustomize build",
            program: ours.to_path_buf(),
            args: vec!["build".into()],
        },
    ];
    let time_file = work.join("time.txt");

    // First build of each: the outputs must be the same objects in the same order.
    let mut outputs = Vec::new();
    for (index, tool) in tools.iter().enumerate() {
        let out = work.join(format!("output-{index}.yaml"));
        measure(&tool.command(overlay), &out, &time_file)?;
        outputs.push(parse_stream(&out)?);
    }
    let (reference, ours_out) = (&outputs[0], &outputs[1]);
    let equal = reference == ours_out;
    let bytes = std::fs::metadata(work.join("output-0.yaml"))?.len();
    println!(
        "input: {} objects out of kubectl kustomize ({:.1} MiB of YAML)",
        reference.len(),
        bytes as f64 / 1024.0 / 1024.0
    );
    if equal {
        println!("outputs: equal ({} objects, same order)", ours_out.len());
    } else {
        let first = reference
            .iter()
            .zip(ours_out.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(reference.len().min(ours_out.len()));
        let differing = reference
            .iter()
            .zip(ours_out.iter())
            .filter(|(a, b)| a != b)
            .count();
        println!(
            "outputs: DIFFERENT (kubectl {} objects, ours {}; {differing} differ; first at index {first}: {} vs {})",
            reference.len(),
            ours_out.len(),
            reference.get(first).map_or("-".into(), describe),
            ours_out.get(first).map_or("-".into(), describe),
        );
    }

    // Timed runs, alternating so both see the same machine state.
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(), Vec::new()];
    for _ in 0..runs {
        for (index, tool) in tools.iter().enumerate() {
            let out = work.join(format!("run-{index}.yaml"));
            samples[index].push(measure(&tool.command(overlay), &out, &time_file)?);
        }
    }

    let mut table = String::new();
    writeln!(
        table,
        "| tool | runs | wall min | wall median | wall max | CPU (median) | peak RSS (median) |"
    )?;
    writeln!(table, "|---|---|---|---|---|---|---|")?;
    // Per tool: (wall, CPU, peak RSS in MiB), medians.
    let mut medians = Vec::new();
    for (tool, samples) in tools.iter().zip(&samples) {
        let walls: Vec<f64> = samples.iter().map(|s| s.wall.as_secs_f64()).collect();
        let cpu: Vec<f64> = samples.iter().map(|s| s.cpu).collect();
        let rss: Vec<f64> = samples
            .iter()
            .map(|s| s.peak_rss_kib as f64 / 1024.0)
            .collect();
        let min = walls.iter().copied().fold(f64::INFINITY, f64::min);
        let max = walls.iter().copied().fold(0.0, f64::max);
        let (wall, cpu, rss) = (median(walls), median(cpu), median(rss));
        medians.push((wall, cpu, rss));
        writeln!(
            table,
            "| {} | {runs} | {min:.3} s | {wall:.3} s | {max:.3} s | {cpu:.2} s | {rss:.1} MiB |",
            tool.name
        )?;
    }
    print!("{table}");
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let speedup = medians[0].0 / medians[1].0;
    let cpu_ratio = medians[0].1 / medians[1].1;
    let memory = medians[1].2 / medians[0].2;
    println!(
        "ours: {speedup:.1}x faster in wall time (target >= 5x: {}), {cpu_ratio:.1}x less CPU, {:.0}% of kubectl's peak memory (target <= 33%: {})",
        met(speedup >= 5.0),
        memory * 100.0,
        met(memory <= 1.0 / 3.0),
    );
    if !equal {
        bail!("the outputs differ: the figures above compare different work");
    }
    Ok(())
}

/// Writes the base and the three overlays under `work`; returns the top overlay's directory.
fn generate(work: &Path, apps: usize) -> Result<PathBuf> {
    let write = |rel: &str, text: &str| -> Result<()> {
        let path = work.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    };

    // The base: `apps` applications of five objects each, and generators they refer to.
    let mut base = String::from("resources:\n");
    for app in 0..apps {
        let name = format!("app-{app:04}");
        let shared = app % SHARED_CONFIGS;
        base.push_str(&format!("- apps/{name}.yaml\n"));
        write(
            &format!("base/apps/{name}.yaml"),
            &app_objects(&name, shared),
        )?;
    }
    base.push_str("configMapGenerator:\n");
    for shared in 0..SHARED_CONFIGS {
        base.push_str(&format!(
            "- name: shared-{shared:02}\n  literals:\n  - SHARD={shared}\n  - LOG_LEVEL=info\n  - FEATURE_FLAGS=a,b,c\n"
        ));
    }
    base.push_str(
        "secretGenerator:\n- name: registry-creds\n  type: kubernetes.io/dockerconfigjson\n  literals:\n  - .dockerconfigjson={\"auths\":{}}\n",
    );
    write("base/kustomization.yaml", &base)?;

    // Level 1: a team prefix, labels with selectors, patches by kind and by name regex, merges.
    let mut team = String::from(
        "namePrefix: team-\nresources:\n- ../base\ncommonLabels:\n  team: payments\npatches:\n\
- target:\n    kind: Deployment\n  patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: any\n    spec:\n      template:\n        spec:\n          securityContext:\n            runAsNonRoot: true\n          containers:\n          - name: app\n            resources:\n              limits:\n                memory: 256Mi\n\
- target:\n    kind: Service\n    name: app-00.*\n  patch: |-\n    - op: add\n      path: /metadata/annotations\n      value:\n        tier: front\n\
configMapGenerator:\n",
    );
    for shared in 0..5 {
        team.push_str(&format!(
            "- name: shared-{shared:02}\n  behavior: merge\n  literals:\n  - TEAM=payments\n"
        ));
    }
    write("team/kustomization.yaml", &team)?;

    // Level 2: namespace, suffix, images, replicas, one patch per object for some, a generator.
    let mut env = String::from(
        "namespace: production\nnameSuffix: -prod\nresources:\n- ../team\nlabels:\n- pairs:\n    env: prod\n  includeTemplates: true\nimages:\n- name: ghcr.io/acme/app\n  newTag: 2.0.0\nreplicas:\n",
    );
    for app in 0..REPLICA_ENTRIES.min(apps) {
        env.push_str(&format!(
            "- name: team-app-{app:04}\n  count: {}\n",
            2 + app % 3
        ));
    }
    env.push_str(
        "configMapGenerator:\n- name: env-settings\n  literals:\n  - ENV=production\npatches:\n",
    );
    for app in 0..SINGLE_PATCHES.min(apps) {
        env.push_str(&format!(
            "- patch: |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: team-app-{app:04}\n    spec:\n      template:\n        spec:\n          containers:\n          - name: app\n            env:\n            - name: PATCHED\n              value: \"{app}\"\n"
        ));
    }
    write("env/kustomization.yaml", &env)?;

    // Level 3 (the root): a region prefix, annotations, a secret, patches by label and by kind.
    let region = "namePrefix: eu-\nresources:\n- ../env\ncommonAnnotations:\n  region: eu-west-1\n\
secretGenerator:\n- name: region-token\n  literals:\n  - TOKEN=abc\n\
patches:\n\
- target:\n    kind: Service\n    labelSelector: team=payments\n  patch: |-\n    - op: add\n      path: /spec/sessionAffinity\n      value: ClientIP\n\
- target:\n    kind: HorizontalPodAutoscaler\n  patch: |-\n    apiVersion: autoscaling/v2\n    kind: HorizontalPodAutoscaler\n    metadata:\n      name: any\n    spec:\n      maxReplicas: 20\n";
    write("region/kustomization.yaml", region)?;
    Ok(work.join("region"))
}

/// The five objects of one application.
fn app_objects(name: &str, shared: usize) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      serviceAccountName: {name}
      imagePullSecrets:
      - name: registry-creds
      containers:
      - name: app
        image: ghcr.io/acme/app:1.0.0
        ports:
        - containerPort: 8080
          name: http
        envFrom:
        - configMapRef:
            name: shared-{shared:02}
        env:
        - name: APP
          value: {name}
        volumeMounts:
        - name: config
          mountPath: /etc/app
      volumes:
      - name: config
        configMap:
          name: {name}
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
  labels:
    app: {name}
spec:
  selector:
    app: {name}
  ports:
  - name: http
    port: 80
    targetPort: http
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {name}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
data:
  app.properties: |
    name={name}
    port=8080
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {name}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {name}
  minReplicas: 1
  maxReplicas: 5
"
    )
}
