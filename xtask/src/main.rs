//! `cargo xtask <task>`: project chores that need nothing beyond cargo (and Go, for the first control-plane build).

mod bench;
mod bench_git_artifact;
mod bench_kustomize;
mod bench_kustomize_controller;
mod bench_notification;
mod bench_source;
mod ci;
mod cluster;
mod demo;
mod demo_git;
mod gen_crds;
mod gen_patch_schema;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Ferroflux project chores")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Start, stop or locate the local control plane.
    Cluster {
        #[command(subcommand)]
        action: cluster::Action,
    },
    /// Build, start the local control plane, run a controller, reconcile an object, show the result.
    Demo,
    /// The demo's Git server (started detached by `demo`; runs until killed).
    #[command(hide = true)]
    DemoGitServer {
        /// Folder for the repositories.
        #[arg(long)]
        dir: std::path::PathBuf,
        /// File written with the clone URL once the server listens.
        #[arg(long)]
        ready_file: std::path::PathBuf,
    },
    /// Build the control-plane binaries into the cache (done on demand otherwise).
    ControlPlane,
    /// Write config/crd/bases/*.yaml (and the examples' CRDs) from the Rust types.
    GenCrds {
        /// Fail instead of writing when a committed file differs.
        #[arg(long)]
        check: bool,
    },
    /// Write kustomize/src/patch/schema.json (strategic-merge keys) from the local API server's OpenAPI.
    GenPatchSchema {
        /// Fail instead of writing when the committed file differs.
        #[arg(long)]
        check: bool,
    },
    /// Run the whole test suite against one shared tier-2 control plane.
    Test {
        /// Extra arguments for `cargo test`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Measure the warm start-up time of each control-plane tier.
    BenchControlPlane {
        /// Starts per tier.
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Our kustomize engine against `kubectl kustomize` on a large generated overlay.
    BenchKustomize {
        /// Timed builds per tool (after one build each that checks the outputs agree).
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Applications in the base (five objects each).
        #[arg(long, default_value_t = 400)]
        apps: usize,
        /// Keep the generated overlay (its path is printed).
        #[arg(long)]
        keep: bool,
    },
    /// kustomize-controller: many Kustomizations to Ready (time, peak RSS), one-file changes
    /// (latency, writes), no-drift reconciles (duration, writes).
    BenchKustomizeController {
        /// Apps (one Kustomization each) in the scale run.
        #[arg(long, default_value_t = 1000)]
        apps: usize,
        /// One-file changes measured.
        #[arg(long, default_value_t = 10)]
        changes: usize,
        /// ConfigMaps of the no-drift Kustomization.
        #[arg(long, default_value_t = 100)]
        objects: usize,
        /// Requested no-drift reconciles.
        #[arg(long, default_value_t = 20)]
        reconciles: usize,
        /// Build and run the debug binaries instead of release ones.
        #[arg(long)]
        debug: bool,
        /// Run the binaries already in target/ without building them first.
        #[arg(long)]
        no_build: bool,
    },
    /// notification-controller: event intake throughput and peak RSS, webhook latency.
    BenchNotification {
        /// Events POSTed.
        #[arg(long, default_value_t = 20000)]
        events: usize,
        /// Concurrent clients posting them.
        #[arg(long, default_value_t = 32)]
        connections: usize,
        /// Webhook requests measured.
        #[arg(long, default_value_t = 50)]
        webhooks: usize,
        /// Build and run the debug binary instead of the release one.
        #[arg(long)]
        debug: bool,
        /// Run the binary already in target/ without building it first.
        #[arg(long)]
        no_build: bool,
    },
    /// source-controller: many OCIRepositories to Ready (time, peak RSS), and no-change reconciles.
    BenchSource {
        /// OCIRepositories created in the scale run.
        #[arg(long, default_value_t = 1000)]
        objects: usize,
        /// `--concurrent` values measured after the flag default (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "10")]
        concurrent: Vec<usize>,
        /// Requested reconciles per object in the no-change run.
        #[arg(long, default_value_t = 20)]
        reconciles: usize,
        /// Build and run the release binary (the default).
        #[arg(long, default_value_t = true, conflicts_with = "debug")]
        release: bool,
        /// Build and run the debug binary instead.
        #[arg(long)]
        debug: bool,
        /// Run the binary already in target/ without building it first.
        #[arg(long)]
        no_build: bool,
    },
    /// source-controller: the artifact of a large generated Git repository against
    /// `git clone --depth 1` + `tar czf` (time and peak RSS, two history sizes).
    BenchGitArtifact {
        /// Files in the repository's HEAD tree.
        #[arg(long, default_value_t = 50_000)]
        files: usize,
        /// Pack size of the large repository's history in MiB (the second one has a quarter).
        #[arg(long, default_value_t = 1024)]
        history_mib: u64,
        /// Timed runs per tool and repository (after one warm-up run each).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        /// Keep the generated repositories (their path is printed).
        #[arg(long)]
        keep: bool,
        /// Run the release binary already in target/ without building it first.
        #[arg(long)]
        no_build: bool,
    },
    /// Formatting, clippy and generated files up to date.
    Lint,
    /// What CI runs: `lint`, then `test`.
    Ci,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.task {
        Task::Cluster { action } => cluster::run(action),
        Task::Demo => demo::run(),
        Task::DemoGitServer { dir, ready_file } => demo_git::serve(&dir, &ready_file),
        Task::ControlPlane => {
            e2e::binaries::Binaries::ensure(e2e::binaries::Need::Full)?;
            println!(
                "control-plane binaries ready in {}",
                e2e::binaries::bin_dir().display()
            );
            Ok(())
        }
        Task::GenCrds { check } => gen_crds::run(check),
        Task::GenPatchSchema { check } => gen_patch_schema::run(check),
        Task::Test { args } => ci::test(&args),
        Task::BenchControlPlane { runs } => bench::control_plane(runs),
        Task::BenchKustomize { runs, apps, keep } => bench_kustomize::run(apps, runs, keep),
        Task::BenchKustomizeController {
            apps,
            changes,
            objects,
            reconciles,
            debug,
            no_build,
        } => bench_kustomize_controller::run(bench_kustomize_controller::Settings {
            apps,
            changes,
            objects,
            reconciles,
            release: !debug,
            build: !no_build,
        }),
        Task::BenchNotification {
            events,
            connections,
            webhooks,
            debug,
            no_build,
        } => bench_notification::run(bench_notification::Settings {
            events,
            connections,
            webhooks,
            release: !debug,
            build: !no_build,
        }),
        Task::BenchSource {
            objects,
            concurrent,
            reconciles,
            release,
            debug,
            no_build,
        } => bench_source::run(bench_source::Settings {
            objects,
            concurrent,
            reconciles,
            release: release && !debug,
            build: !no_build,
        }),
        Task::BenchGitArtifact {
            files,
            history_mib,
            runs,
            keep,
            no_build,
        } => bench_git_artifact::run(&bench_git_artifact::Settings {
            files,
            history_mib,
            runs,
            keep,
            build: !no_build,
        }),
        Task::Lint => ci::lint(),
        Task::Ci => {
            ci::lint()?;
            ci::test(&[])
        }
    }
}
