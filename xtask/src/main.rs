//! `cargo xtask <task>`: project chores that need nothing beyond cargo (and Go, for the first control-plane build).

mod bench;
mod ci;
mod cluster;
mod demo;
mod gen_crds;

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
    /// Build the control-plane binaries into the cache (done on demand otherwise).
    ControlPlane,
    /// Write config/crd/bases/*.yaml (and the examples' CRDs) from the Rust types.
    GenCrds {
        /// Fail instead of writing when a committed file differs.
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
        Task::ControlPlane => {
            e2e::binaries::Binaries::ensure(e2e::binaries::Need::Full)?;
            println!(
                "control-plane binaries ready in {}",
                e2e::binaries::bin_dir().display()
            );
            Ok(())
        }
        Task::GenCrds { check } => gen_crds::run(check),
        Task::Test { args } => ci::test(&args),
        Task::BenchControlPlane { runs } => bench::control_plane(runs),
        Task::Lint => ci::lint(),
        Task::Ci => {
            ci::lint()?;
            ci::test(&[])
        }
    }
}
