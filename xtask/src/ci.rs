//! `cargo xtask test` and `cargo xtask ci`.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use e2e::control_plane::{ControlPlane, Options, Tier};
use e2e::process::Lifetime;

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(what: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {what}");
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("cannot run {what}"))?;
    eprintln!(
        "<== {what}: {status} in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Runs the whole test suite with one tier-2 control plane shared by every test binary.
pub fn test(extra: &[String]) -> Result<()> {
    // Build first so compile time does not count against the control plane, and so a compile error
    // shows before anything starts.
    run(
        "cargo build --workspace --all-targets",
        cargo().args(["build", "--workspace", "--all-targets"]),
    )?;
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let plane = runtime.block_on(ControlPlane::start(Options {
        tier: Tier::Full,
        lifetime: Lifetime::Owner,
        ..Options::default()
    }))?;
    eprintln!(
        "shared control plane (tier 2) ready in {:.2}s at {}",
        started.elapsed().as_secs_f64(),
        plane.server()
    );
    let result = run(
        "cargo test --workspace",
        cargo()
            // Every failing test binary, not only the first.
            .args(["test", "--workspace", "--all-targets", "--no-fail-fast"])
            .args(extra)
            .env(e2e::SHARED_KUBECONFIG_ENV, plane.kubeconfig_path())
            .env(e2e::SHARED_TIER_ENV, "Full"),
    );
    drop(plane);
    result?;
    run(
        "cargo test --doc",
        cargo().args(["test", "--workspace", "--doc"]),
    )
}

/// Formatting, generated files and clippy, fastest first.
pub fn lint() -> Result<()> {
    run(
        "cargo fmt --check",
        cargo().args(["fmt", "--all", "--", "--check"]),
    )?;
    crate::gen_crds::run(true)?;
    run(
        "cargo clippy",
        cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    run(
        "cargo doc (warnings are errors: broken links, missing docs)",
        cargo()
            .args(["doc", "--workspace", "--no-deps", "--quiet"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    )
}
