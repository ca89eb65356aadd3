//! Event delivery: the Flux payload POSTed to a real HTTP sink on loopback, and the
//! Kubernetes Event recorded on a real API server.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use k8s_openapi::api::core::v1::{ConfigMap, Event, ObjectReference};
use kube::api::{Api, ListParams, PostParams};
use kube::{Resource, ResourceExt};
use toolkit_sdk::events::{EventRecorder, EventRecorderOptions, EventSeverity, RetryPolicy};

/// One request the sink received: its `Content-Type` and its JSON body.
type Received = (Option<String>, serde_json::Value);

/// What the sink received, and the statuses it answers with (200 once the script runs out).
#[derive(Clone, Default)]
struct Sink {
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Sink {
    async fn start(script: &[u16]) -> (Self, SocketAddr) {
        let sink = Sink::default();
        sink.script.lock().unwrap().extend(script);
        let app = Router::new()
            .route("/", post(receive))
            .with_state(sink.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (sink, addr)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn receive(State(sink): State<Sink>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let content_type = headers
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    sink.received.lock().unwrap().push((content_type, json));
    let status = sink.script.lock().unwrap().pop_front().unwrap_or(200);
    StatusCode::from_u16(status).unwrap()
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        timeout: Duration::from_secs(5),
    }
}

fn forwarding_recorder(addr: SocketAddr) -> EventRecorder {
    let mut options = EventRecorderOptions::new("kustomize-controller");
    options.reporting_instance = "kustomize-controller-7f9c-x2x4k".to_owned();
    options.events_addr = Some(format!("http://{addr}/").parse().unwrap());
    options.retry = fast_retries();
    EventRecorder::with_options(None, options)
}

fn kustomization() -> ObjectReference {
    ObjectReference {
        api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
        kind: Some("Kustomization".into()),
        name: Some("webapp".into()),
        namespace: Some("apps".into()),
        uid: Some("7d0cdc51-ddcf-4743-b223-83ca5c699632".into()),
        resource_version: Some("1234".into()),
        ..ObjectReference::default()
    }
}

fn revision() -> BTreeMap<String, String> {
    BTreeMap::from([("revision".to_owned(), "main@sha1:0123abcd".to_owned())])
}

#[tokio::test]
async fn posts_the_flux_payload() {
    let (sink, addr) = Sink::start(&[]).await;
    let recorder = forwarding_recorder(addr);
    let before = jiff::Timestamp::now();
    recorder.publish(
        &kustomization(),
        EventSeverity::Info,
        "ReconciliationSucceeded",
        "Applied revision: main@sha1:0123abcd",
        revision(),
    );
    recorder.flush().await;

    let received = sink.received();
    assert_eq!(received.len(), 1);
    let (content_type, mut body) = received.into_iter().next().unwrap();
    assert_eq!(content_type.as_deref(), Some("application/json"));

    let timestamp = body["timestamp"].take();
    let timestamp = timestamp.as_str().unwrap();
    assert_eq!(timestamp.len(), "2025-01-02T03:04:05Z".len(), "{timestamp}");
    assert!(timestamp.ends_with('Z'), "{timestamp}");
    let at: jiff::Timestamp = timestamp.parse().unwrap();
    assert!(at >= before.round(jiff::Unit::Second).unwrap() - jiff::SignedDuration::from_secs(1));
    assert!(at <= jiff::Timestamp::now());

    assert_eq!(
        body,
        serde_json::json!({
            "involvedObject": {
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "name": "webapp",
                "namespace": "apps",
                "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
                "resourceVersion": "1234"
            },
            "severity": "info",
            "timestamp": null,
            "message": "Applied revision: main@sha1:0123abcd",
            "reason": "ReconciliationSucceeded",
            "metadata": {
                "kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123abcd"
            },
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-7f9c-x2x4k"
        })
    );
}

#[tokio::test]
async fn error_severity_and_no_metadata() {
    let (sink, addr) = Sink::start(&[]).await;
    let recorder = forwarding_recorder(addr);
    recorder.publish(
        &kustomization(),
        EventSeverity::Error,
        "BuildFailed",
        "kustomization path not found",
        BTreeMap::new(),
    );
    recorder.flush().await;
    let received = sink.received();
    assert_eq!(received.len(), 1);
    let body = &received[0].1;
    assert_eq!(body["severity"], "error");
    assert_eq!(body["reason"], "BuildFailed");
    assert!(
        body.get("metadata").is_none(),
        "empty metadata is left out: {body}"
    );
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let (sink, addr) = Sink::start(&[503, 500]).await;
    let recorder = forwarding_recorder(addr);
    recorder.publish(
        &kustomization(),
        EventSeverity::Info,
        "ReconciliationSucceeded",
        "ok",
        revision(),
    );
    recorder.flush().await;
    let received = sink.received();
    assert_eq!(received.len(), 3, "two failures, then the delivery");
    assert!(
        received.windows(2).all(|w| w[0].1 == w[1].1),
        "the same payload each time"
    );
}

#[tokio::test]
async fn retries_stop_after_the_limit() {
    let (sink, addr) = Sink::start(&[503; 10]).await;
    let recorder = forwarding_recorder(addr);
    recorder.publish(&kustomization(), EventSeverity::Info, "R", "m", revision());
    recorder.flush().await;
    assert_eq!(
        sink.received().len(),
        1 + fast_retries().max_retries as usize
    );
}

#[tokio::test]
async fn rate_limited_and_rejected_events_are_not_retried() {
    for status in [429, 400, 403] {
        let (sink, addr) = Sink::start(&[status]).await;
        let recorder = forwarding_recorder(addr);
        recorder.publish(&kustomization(), EventSeverity::Info, "R", "m", revision());
        recorder.flush().await;
        // Give a (wrong) retry time to happen before counting.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(
            sink.received().len(),
            1,
            "status {status} must not be retried"
        );
    }
}

#[tokio::test]
async fn publish_does_not_wait_for_a_slow_sink() {
    // Nothing listens on this port: every attempt fails to connect and is retried.
    let addr: SocketAddr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut options = EventRecorderOptions::new("source-controller");
    options.events_addr = Some(format!("http://{addr}/").parse().unwrap());
    options.retry = RetryPolicy {
        max_retries: 2,
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_millis(200),
        timeout: Duration::from_secs(1),
    };
    let recorder = EventRecorder::with_options(None, options);
    let started = std::time::Instant::now();
    for i in 0..50 {
        recorder.publish(
            &kustomization(),
            EventSeverity::Error,
            "R",
            &format!("event {i}"),
            BTreeMap::new(),
        );
    }
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "publish blocked for {:?}",
        started.elapsed()
    );
    // Deliveries give up after their retries; flush then returns.
    tokio::time::timeout(Duration::from_secs(30), recorder.flush())
        .await
        .expect("flush returns once retries are exhausted");
}

#[tokio::test]
async fn records_a_kubernetes_event_on_the_object() {
    let cluster = e2e::cluster().await.unwrap();
    let ns = cluster.namespace("events").await.unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(ns.client.clone(), &ns.name);
    let cm = configmaps
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": "settings"},
                "data": {"a": "b"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let object = cm.object_ref(&());

    let recorder = EventRecorder::new(ns.client.clone(), "greeter-controller", None);
    let mut metadata = revision();
    metadata.insert("example.com/extra".into(), "x".into());
    recorder.publish(
        &object,
        EventSeverity::Error,
        "ProgressingWithRetry",
        "upstream unreachable",
        metadata.clone(),
    );
    recorder.publish(
        &object,
        EventSeverity::Error,
        "ProgressingWithRetry",
        "upstream unreachable",
        metadata,
    );
    recorder.publish(
        &object,
        EventSeverity::Info,
        "Progressing",
        "upstream back",
        BTreeMap::new(),
    );
    recorder.flush().await;

    let events: Api<Event> = Api::namespaced(ns.client.clone(), &ns.name);
    let list = events
        .list(
            &ListParams::default()
                .fields("involvedObject.name=settings,involvedObject.kind=ConfigMap"),
        )
        .await
        .unwrap();
    assert_eq!(
        list.items.len(),
        2,
        "a repeat bumps count: {:#?}",
        list.items
    );
    let warning = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("ProgressingWithRetry"))
        .unwrap();
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    assert_eq!(warning.message.as_deref(), Some("upstream unreachable"));
    assert_eq!(warning.count, Some(2));
    assert_eq!(warning.involved_object.uid, cm.metadata.uid);
    assert_eq!(warning.involved_object.kind.as_deref(), Some("ConfigMap"));
    assert_eq!(
        warning.source.as_ref().and_then(|s| s.component.as_deref()),
        Some("greeter-controller")
    );
    assert_eq!(
        warning.reporting_component.as_deref(),
        Some("greeter-controller")
    );
    assert_eq!(
        warning.reporting_instance.as_deref(),
        Some(recorder.reporting_instance())
    );
    // ConfigMaps are in the core group, so keys stay unprefixed; qualified keys stay as given.
    let annotations = warning.annotations();
    assert_eq!(
        annotations.get("revision").map(String::as_str),
        Some("main@sha1:0123abcd")
    );
    assert_eq!(
        annotations.get("example.com/extra").map(String::as_str),
        Some("x")
    );
    assert!(warning.last_timestamp.is_some() && warning.first_timestamp.is_some());

    let normal = list
        .items
        .iter()
        .find(|e| e.reason.as_deref() == Some("Progressing"))
        .unwrap();
    assert_eq!(normal.type_.as_deref(), Some("Normal"));
    assert_eq!(normal.count, Some(1));

    ns.delete().await.unwrap();
}
