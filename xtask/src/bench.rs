//! `cargo xtask bench-control-plane`: warm start-up time of each control-plane tier.

use std::time::{Duration, Instant};

use anyhow::Result;
use e2e::control_plane::{ControlPlane, Options, Tier};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Starts and stops each tier `runs` times and prints min / median / max time to ready.
pub fn control_plane(runs: usize) -> Result<()> {
    let runs = runs.max(1);
    let runtime = tokio::runtime::Runtime::new()?;
    // Make sure the binaries exist so the first sample is not a build.
    e2e::binaries::Binaries::ensure(e2e::binaries::Need::Full)?;
    println!("| tier | runs | min | median | max |");
    println!("|---|---|---|---|---|");
    for tier in [Tier::ApiServer, Tier::Full] {
        let mut samples = Vec::with_capacity(runs);
        for _ in 0..runs {
            let started = Instant::now();
            let plane = runtime.block_on(ControlPlane::start(Options {
                tier,
                ..Options::default()
            }))?;
            samples.push(started.elapsed());
            drop(plane);
        }
        let min = samples.iter().min().copied().unwrap_or_default();
        let max = samples.iter().max().copied().unwrap_or_default();
        println!(
            "| {tier:?} | {runs} | {:.2}s | {:.2}s | {:.2}s |",
            min.as_secs_f64(),
            median(samples).as_secs_f64(),
            max.as_secs_f64()
        );
    }
    Ok(())
}
