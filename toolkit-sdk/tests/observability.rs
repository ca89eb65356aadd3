//! The metrics and health endpoints, served over real HTTP on loopback.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use toolkit_sdk::flags::{ListenAddr, ObservabilityArgs};
use toolkit_sdk::metrics::Metrics;
use toolkit_sdk::observability::{self, Readiness, ServeError};

fn loopback_any_port() -> ListenAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn http() -> reqwest::Client {
    toolkit_sdk::tls::http_client_builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn get(addr: SocketAddr, path: &str) -> (u16, Option<String>, String) {
    let response = http()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, response.text().await.unwrap())
}

#[tokio::test]
async fn serves_metrics_and_probes_until_cancelled() {
    let metrics = Metrics::new();
    let readiness = Readiness::new();
    let shutdown = CancellationToken::new();
    let args = ObservabilityArgs {
        metrics_addr: loopback_any_port(),
        health_addr: loopback_any_port(),
        ..ObservabilityArgs::default()
    };
    let server = observability::serve(&args, metrics.clone(), readiness.clone(), shutdown.clone())
        .await
        .unwrap();
    let metrics_addr = server.metrics_addr();
    let health_addr = server.health_addr();
    assert_ne!(metrics_addr.port(), 0);
    assert_ne!(health_addr.port(), 0);
    assert_ne!(metrics_addr, health_addr);

    // Metrics recorded after start-up show in the next scrape.
    metrics.observe_reconcile(
        "GitRepository",
        "flux-system",
        "podinfo",
        Duration::from_millis(42),
        true,
    );
    let (status, content_type, body) = get(metrics_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    assert!(
        body.contains(
            r#"gotk_reconcile_duration_seconds_count{kind="GitRepository",name="podinfo",namespace="flux-system"} 1"#
        ),
        "{body}"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");

    // Liveness is up; readiness starts false and follows the handle.
    let (status, _, body) = get(health_addr, "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));
    let (status, _, body) = get(health_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("[-]ready failed: not ready yet"), "{body}");

    readiness.set_ready(true);
    readiness.set_check("informers-synced", Ok(()));
    let (status, _, body) = get(health_addr, "/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("[+]informers-synced ok"), "{body}");
    assert!(body.contains("[+]ready ok"), "{body}");

    readiness.set_check(
        "informers-synced",
        Err("GitRepository watch not synced".into()),
    );
    let (status, _, body) = get(health_addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("[-]informers-synced failed: GitRepository watch not synced"),
        "{body}"
    );

    // Each path lives on its own address only.
    let (status, _, _) = get(metrics_addr, "/readyz").await;
    assert_eq!(status, 404);
    let (status, _, _) = get(health_addr, "/metrics").await;
    assert_eq!(status, 404);

    // Cancelling stops both servers.
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), server.wait())
        .await
        .expect("servers stop after cancellation")
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(metrics_addr).await.is_err(),
        "metrics port still accepts connections after shutdown"
    );
    assert!(tokio::net::TcpStream::connect(health_addr).await.is_err());
}

#[tokio::test]
async fn an_occupied_port_names_the_flag_and_what_to_do() {
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = occupied.local_addr().unwrap();
    let shutdown = CancellationToken::new();

    let err = observability::serve_on(
        ListenAddr::from(addr),
        loopback_any_port(),
        Metrics::new(),
        Readiness::new(),
        shutdown.clone(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ServeError::AddrInUse {
                flag: "--metrics-addr",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "--metrics-addr {addr} is already in use; choose another address with --metrics-addr"
        )
    );

    let err = observability::serve_on(
        loopback_any_port(),
        ListenAddr::from(addr),
        Metrics::new(),
        Readiness::new(),
        shutdown.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "--health-addr {addr} is already in use; choose another address with --health-addr"
        )
    );
    // The OS error is kept as the source, not repeated in the message.
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(!err.to_string().contains(&source), "{err}");
    shutdown.cancel();
}

#[tokio::test]
async fn one_address_for_both_serves_all_paths() {
    // Find a free port, then ask for it for both flags.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: ListenAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let shutdown = CancellationToken::new();
    let readiness = Readiness::new();
    readiness.set_ready(true);
    let server = observability::serve_on(addr, addr, Metrics::new(), readiness, shutdown.clone())
        .await
        .unwrap();
    assert_eq!(server.metrics_addr(), server.health_addr());
    let (status, _, _) = get(server.health_addr(), "/readyz").await;
    assert_eq!(status, 200);
    let (status, _, _) = get(server.metrics_addr(), "/metrics").await;
    assert_eq!(status, 200);
    shutdown.cancel();
    server.wait().await.unwrap();
}
