//! Two replicas with leader election: only the leader reconciles, and SIGTERM hands over fast.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::{env, greeting, is_ready, observed_generation};

const ACQUIRED: &str = "acquired leader lease";
/// Lease timings short enough for a test; the takeover must beat the lease duration.
const ELECTION: [&str; 4] = [
    "--enable-leader-election",
    "--leader-election-lease-duration=8s",
    "--leader-election-renew-deadline=6s",
    "--leader-election-retry-period=1s",
];

#[tokio::test]
async fn only_the_leader_reconciles_and_sigterm_hands_over() -> anyhow::Result<()> {
    let env = env("greet-leader").await?;
    let mut first = env.controller(&ELECTION)?;
    first.wait_log(ACQUIRED, Duration::from_secs(30)).await?;
    let mut second = env.controller(&ELECTION)?;
    // The standby is ready (its watch runs) without leading.
    second.wait_ready().await?;
    first.wait_ready().await?;
    assert!(
        !second.log().contains(ACQUIRED),
        "two leaders:\n{}",
        second.log_tail(20)
    );

    env.create(&greeting("elected", "one")).await?;
    env.wait_greeting("elected", &first, "Ready", is_ready)
        .await?;
    assert_eq!(first.reconcile_count(&env.ns.name, "elected").await?, 1);
    assert_eq!(second.reconcile_count(&env.ns.name, "elected").await?, 0);

    // SIGTERM the leader: it exits cleanly and releases the Lease, so the standby takes over
    // well before the 8s lease would have expired.
    let stopped = Instant::now();
    first.terminate();
    let status = first.wait_exit(Duration::from_secs(15)).await?;
    assert!(
        status.success(),
        "leader exit {status}:\n{}",
        first.log_tail(20)
    );
    second.wait_log(ACQUIRED, Duration::from_secs(15)).await?;
    let takeover = stopped.elapsed();
    assert!(
        takeover < Duration::from_secs(6),
        "takeover took {takeover:?}; the lease was not released"
    );

    env.patch("elected", json!({"spec": {"message": "two"}}))
        .await?;
    let g = env
        .wait_greeting("elected", &second, "reconciled by the new leader", |g| {
            observed_generation(g) == 2
        })
        .await?;
    assert!(is_ready(&g));
    assert_eq!(
        env.config_map_message("elected-greeting").await?.as_deref(),
        Some("two")
    );
    assert!(second.reconcile_count(&env.ns.name, "elected").await? >= 1);
    drop(second);
    Ok(())
}

#[tokio::test]
async fn standby_does_not_reconcile() -> anyhow::Result<()> {
    // A replica that cannot get the Lease stays passive, whatever happens to the objects.
    let env = env("greet-standby").await?;
    let mut leader = env.controller(&ELECTION)?;
    leader.wait_log(ACQUIRED, Duration::from_secs(30)).await?;
    // Stop the leader without releasing: SIGKILL leaves the Lease held until it expires.
    let mut standby = env.controller(&ELECTION)?;
    standby.wait_ready().await?;
    e2e::process::signal(leader.pid, "KILL");
    leader.wait_exit(Duration::from_secs(5)).await?;

    env.create(&greeting("orphan", "waits")).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        env.greetings.get("orphan").await?.status,
        None,
        "the standby reconciled while the Lease was still held"
    );
    // Once the lease expires the standby leads and catches up.
    standby.wait_log(ACQUIRED, Duration::from_secs(20)).await?;
    env.wait_greeting("orphan", &standby, "Ready", is_ready)
        .await?;
    Ok(())
}
