//! `cargo xtask cluster up|down|env|status`: a long-lived local control plane for development.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use e2e::control_plane::{self, ControlPlane, Options, State, Tier};
use e2e::process::{Lifetime, alive};

/// What to do with the development control plane.
#[derive(Subcommand)]
pub enum Action {
    /// Start it (tier 2 unless --api-server-only) and print how to use it.
    Up {
        /// Only etcd + kube-apiserver (faster; no Deployments become Available).
        #[arg(long)]
        api_server_only: bool,
    },
    /// Stop it and remove its data.
    Down,
    /// Print `export KUBECONFIG=...` for the running control plane.
    Env,
    /// Say whether it runs.
    Status,
}

fn state_dir() -> PathBuf {
    e2e::binaries::cache_dir().join("cluster")
}

fn state_file() -> PathBuf {
    state_dir().join("state.json")
}

/// Reads the state of a running development control plane, if any.
pub fn running() -> Result<Option<State>> {
    let path = state_file();
    if !path.exists() {
        return Ok(None);
    }
    let state: State = serde_json::from_slice(&std::fs::read(&path)?)
        .with_context(|| format!("{} is corrupt; remove it", path.display()))?;
    if state.pids.iter().all(|pid| alive(*pid)) {
        Ok(Some(state))
    } else {
        // Some component died: clean up what is left so `up` can start afresh.
        control_plane::stop_detached(&state)?;
        std::fs::remove_file(&path)?;
        Ok(None)
    }
}

pub fn run(action: Action) -> Result<()> {
    match action {
        Action::Up { api_server_only } => {
            let state = up(if api_server_only {
                Tier::ApiServer
            } else {
                Tier::Full
            })?;
            println!("export KUBECONFIG={}", state.kubeconfig.display());
            eprintln!(
                "control plane ({:?}) at {}; stop it with `cargo xtask cluster down`",
                state.tier, state.server
            );
            Ok(())
        }
        Action::Down => {
            match running()? {
                Some(state) => {
                    control_plane::stop_detached(&state)?;
                    std::fs::remove_file(state_file())?;
                    eprintln!("stopped the control plane at {}", state.server);
                }
                None => eprintln!("no local control plane is running"),
            }
            Ok(())
        }
        Action::Env => match running()? {
            Some(state) => {
                println!("export KUBECONFIG={}", state.kubeconfig.display());
                Ok(())
            }
            None => {
                bail!("no local control plane is running; start one with `cargo xtask cluster up`")
            }
        },
        Action::Status => {
            match running()? {
                Some(state) => println!("running ({:?}) at {}", state.tier, state.server),
                None => println!("not running"),
            }
            Ok(())
        }
    }
}

/// Starts a detached control plane (or reuses the running one if it has at least `tier`).
pub fn up(tier: Tier) -> Result<State> {
    if let Some(state) = running()? {
        if state.tier == Tier::Full || tier == Tier::ApiServer {
            eprintln!("reusing the running control plane at {}", state.server);
            return Ok(state);
        }
        control_plane::stop_detached(&state)?;
    }
    let data_dir = state_dir().join("data");
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)?;
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let plane = runtime.block_on(ControlPlane::start(Options {
        tier,
        data_dir: Some(data_dir),
        lifetime: Lifetime::Detached,
        ..Options::default()
    }))?;
    for (phase, at) in &plane.timings {
        eprintln!("  {phase}: {:.2}s", at.as_secs_f64());
    }
    eprintln!(
        "control plane started in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    let state = plane.detach();
    save(&state)?;
    Ok(state)
}

/// Records the development control plane (and any process started next to it) for `down` and `env`.
pub fn save(state: &State) -> Result<()> {
    std::fs::create_dir_all(state_dir())?;
    std::fs::write(state_file(), serde_json::to_vec_pretty(state)?)?;
    Ok(())
}
