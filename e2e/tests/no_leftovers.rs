//! A test process that dies (a panic, or an abort that runs no destructor) leaves no etcd or
//! kube-apiserver behind: the kernel kills them with their parent.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};

const CHILD_MODE: &str = "E2E_NO_LEFTOVERS_CHILD";

/// Runs only inside the child process: starts its own control plane, prints the component pids, dies.
#[tokio::test]
async fn child_starts_a_control_plane_and_dies() -> Result<()> {
    let Ok(mode) = std::env::var(CHILD_MODE) else {
        return Ok(());
    };
    let cluster = e2e::cluster().await?;
    let client = cluster.client().await?;
    client.apiserver_version().await?;
    let pids = component_pids(
        cluster
            .kubeconfig_path()
            .parent()
            .unwrap()
            .to_str()
            .unwrap(),
    );
    println!(
        "PIDS {}",
        pids.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    );
    if mode == "abort" {
        std::process::abort();
    }
    panic!("the child test panics on purpose");
}

fn component_pids(data_dir: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).contains(data_dir) {
            pids.push(pid);
        }
    }
    pids
}

fn run_child(mode: &str) -> Result<()> {
    let output = Command::new(std::env::current_exe()?)
        .args([
            "--exact",
            "child_starts_a_control_plane_and_dies",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_MODE, mode)
        .env_remove(e2e::SHARED_KUBECONFIG_ENV)
        .output()?;
    ensure!(!output.status.success(), "the child was meant to die");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("PIDS ").map(|(_, pids)| pids))
        .with_context(|| {
            format!(
                "the child printed no pids: {stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            )
        })?;
    let pids: Vec<u32> = line
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    ensure!(
        pids.len() >= 2,
        "expected etcd and kube-apiserver, got {pids:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while pids.iter().any(|pid| e2e::process::alive(*pid)) {
        ensure!(
            Instant::now() < deadline,
            "control-plane processes {pids:?} outlived their test process"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

#[test]
fn a_panicking_test_process_leaves_no_control_plane_behind() -> Result<()> {
    if std::env::var_os(CHILD_MODE).is_some() {
        return Ok(());
    }
    run_child("panic")
}

#[test]
fn an_aborted_test_process_leaves_no_control_plane_behind() -> Result<()> {
    if std::env::var_os(CHILD_MODE).is_some() {
        return Ok(());
    }
    run_child("abort")
}
