//! `cargo xtask <task>`: project chores that need nothing beyond cargo (and Go, for the first control-plane build).

mod bench;
mod bench_kustomize;
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
        Task::Lint => ci::lint(),
        Task::Ci => {
            ci::lint()?;
            ci::test(&[])
        }
    }
}
