//! Startup failures: a bad kubeconfig or an unreachable API server ends the process fast,
//! non-zero, with a message that says what was tried.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::ControllerProcess;

async fn run_to_exit(
    env: &[(&str, &str)],
    extra: &[&str],
) -> anyhow::Result<(bool, String, Duration)> {
    let started = Instant::now();
    let mut controller = ControllerProcess::start_with_env(env, &[], extra)?;
    let status = controller.wait_exit(Duration::from_secs(20)).await?;
    Ok((status.success(), controller.log(), started.elapsed()))
}

#[tokio::test]
async fn missing_kubeconfig_fails_fast_and_names_the_file() -> anyhow::Result<()> {
    let (ok, log, took) =
        run_to_exit(&[("KUBECONFIG", "/nonexistent/ferroflux-kubeconfig")], &[]).await?;
    assert!(!ok, "exited successfully:\n{log}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(log.contains("/nonexistent/ferroflux-kubeconfig"), "{log}");
    assert!(log.contains("KUBECONFIG"), "{log}");
    Ok(())
}

#[tokio::test]
async fn unreachable_api_server_fails_fast_and_names_the_server() -> anyhow::Result<()> {
    let port = e2e::process::free_port()?;
    let dir = tempfile::tempdir()?;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n\
             contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\n\
             users:\n- name: u\n  user:\n    token: t\n"
        ),
    )?;
    let (ok, log, took) =
        run_to_exit(&[], &[&format!("--kubeconfig={}", kubeconfig.display())]).await?;
    assert!(!ok, "exited successfully:\n{log}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
    assert!(log.contains(&kubeconfig.display().to_string()), "{log}");
    assert!(
        log.contains("cannot reach the Kubernetes API server"),
        "{log}"
    );
    Ok(())
}
