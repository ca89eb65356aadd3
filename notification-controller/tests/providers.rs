//! Every Provider type against a loopback HTTP sink that plays the service: the exact request
//! (method, path, auth header, key JSON fields), retries, TLS with a custom CA, the proxy, and
//! secrets kept out of errors.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::ObjectReference;
use notification_controller::provider::{
    DeliveryError, Notifier, ProviderError, ProviderSettings, RetryPolicy, notifier,
};
use serde_json::{Value, json};
use sha1::Digest as _;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use toolkit_sdk::events::{EventSeverity, FluxEvent};

const HASH: &str = "0123456789abcdef0123456789abcdef01234567";
const PROVIDER_UID: &str = "4c1e2a7b-0d1f-4e5a-9b6c-7d8e9f0a1b2c";
/// The default status key: `<kind>/<name>/<first segment of the Provider UID>`.
const STATUS_ID: &str = "kustomization/webapp/4c1e2a7b";
const TOKEN: &str = "s3cr3t-t0ken-value";

// ---------------------------------------------------------------------------------------------
// The sink
// ---------------------------------------------------------------------------------------------

/// One request the sink received.
#[derive(Clone, Debug)]
struct Recorded {
    method: String,
    /// The request target as sent: a path and query, or an absolute URI through a proxy.
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Recorded {
    fn path(&self) -> String {
        let uri: Uri = self.uri.parse().unwrap();
        uri.path_and_query().unwrap().to_string()
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

#[derive(Default)]
struct SinkState {
    requests: Vec<Recorded>,
    /// Answers to give, in order; afterwards 200 with `[]`.
    script: VecDeque<(u16, String)>,
}

/// A loopback HTTP server that records every request and answers from a script.
#[derive(Clone)]
struct Sink {
    addr: SocketAddr,
    state: Arc<Mutex<SinkState>>,
}

impl Sink {
    async fn start() -> Sink {
        let state = Arc::new(Mutex::new(SinkState::default()));
        let app = Router::new().fallback(record).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink { addr, state }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Queues answers for the next requests.
    fn answer(&self, answers: &[(u16, &str)]) {
        let mut state = self.state.lock().unwrap();
        state
            .script
            .extend(answers.iter().map(|(s, b)| (*s, b.to_string())));
    }

    fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The only request received.
    fn single(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(requests.len(), 1, "expected one request, got {requests:#?}");
        requests.into_iter().next().unwrap()
    }
}

async fn record(
    State(state): State<Arc<Mutex<SinkState>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> impl IntoResponse {
    let mut state = state.lock().unwrap();
    state.requests.push(Recorded {
        method: method.to_string(),
        uri: uri.to_string(),
        headers,
        body: body.to_vec(),
    });
    let (status, body) = state.script.pop_front().unwrap_or((200, "[]".to_string()));
    (
        axum::http::StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
}

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

/// `Kustomization apps/webapp` applied `main@sha1:<HASH>`.
fn event() -> FluxEvent {
    FluxEvent {
        involved_object: ObjectReference {
            kind: Some("Kustomization".into()),
            namespace: Some("apps".into()),
            name: Some("webapp".into()),
            uid: Some("7d0cdc51-1111-2222-3333-444455556666".into()),
            api_version: Some("kustomize.toolkit.fluxcd.io/v1".into()),
            ..Default::default()
        },
        severity: EventSeverity::Info,
        timestamp: "2025-01-02T03:04:05Z".into(),
        message: format!("Applied revision: main@sha1:{HASH}"),
        reason: "ReconciliationSucceeded".into(),
        metadata: BTreeMap::from([(
            "kustomize.toolkit.fluxcd.io/revision".to_string(),
            format!("main@sha1:{HASH}"),
        )]),
        reporting_controller: "kustomize-controller".into(),
        reporting_instance: "kustomize-controller-0".into(),
    }
}

fn error_event() -> FluxEvent {
    FluxEvent {
        severity: EventSeverity::Error,
        reason: "HealthCheckFailed".into(),
        message: "Health check failed after 5m".into(),
        ..event()
    }
}

fn event_without_revision() -> FluxEvent {
    FluxEvent {
        metadata: BTreeMap::new(),
        ..event()
    }
}

fn settings(provider_type: &str, address: String) -> ProviderSettings {
    ProviderSettings {
        provider_uid: PROVIDER_UID.into(),
        ..ProviderSettings::new(provider_type, address)
    }
}

fn with_token(provider_type: &str, address: String) -> ProviderSettings {
    ProviderSettings {
        token: Some(TOKEN.into()),
        ..settings(provider_type, address)
    }
}

/// Fast retries for tests.
fn fast(n: Notifier) -> Notifier {
    n.with_retry(RetryPolicy {
        max_retries: 3,
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(200),
    })
}

async fn send(settings: ProviderSettings, event: &FluxEvent) -> Result<(), DeliveryError> {
    toolkit_sdk::tls::install_crypto_provider();
    fast(notifier(settings).unwrap()).send(event).await
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Webhooks and chat
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn generic_posts_the_event_with_the_secret_headers() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        headers: BTreeMap::from([("X-Api-Key".to_string(), "key-123".to_string())]),
        ..settings("generic", sink.url("/hook"))
    };
    send(settings, &event()).await.unwrap();

    let req = sink.single();
    assert_eq!(
        (req.method.as_str(), req.path().as_str()),
        ("POST", "/hook")
    );
    assert_eq!(req.header("content-type").unwrap(), "application/json");
    assert_eq!(
        req.header("gotk-component").unwrap(),
        "kustomize-controller"
    );
    assert_eq!(req.header("x-api-key").unwrap(), "key-123");
    assert!(req.header("x-signature").is_none());
    let body = req.json();
    assert_eq!(body["involvedObject"]["kind"], "Kustomization");
    assert_eq!(body["involvedObject"]["name"], "webapp");
    assert_eq!(body["severity"], "info");
    assert_eq!(body["reason"], "ReconciliationSucceeded");
    assert_eq!(body["reportingController"], "kustomize-controller");
    assert_eq!(body["timestamp"], "2025-01-02T03:04:05Z");
    // Metadata keys arrive bare, as Flux forwards them.
    assert_eq!(body["metadata"]["revision"], format!("main@sha1:{HASH}"));
}

#[tokio::test]
async fn generic_hmac_signs_the_body_with_the_token() {
    let sink = Sink::start().await;
    send(with_token("generic-hmac", sink.url("/hook")), &event())
        .await
        .unwrap();

    let req = sink.single();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(TOKEN.as_bytes()).unwrap();
    mac.update(&req.body);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(req.header("x-signature").unwrap(), expected);
    assert_eq!(req.json()["involvedObject"]["name"], "webapp");
}

#[tokio::test]
async fn slack_webhook_gets_an_attachment() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "#flux".into(),
        ..settings("slack", sink.url("/services/T0/B0/XYZ"))
    };
    send(settings, &error_event()).await.unwrap();

    let req = sink.single();
    assert_eq!(req.path(), "/services/T0/B0/XYZ");
    assert!(req.header("authorization").is_none());
    let body = req.json();
    assert_eq!(body["channel"], "#flux");
    assert_eq!(body["username"], "kustomize-controller");
    let attachment = &body["attachments"][0];
    assert_eq!(attachment["color"], "danger");
    assert_eq!(attachment["author_name"], "kustomization/webapp.apps");
    assert_eq!(attachment["text"], "Health check failed after 5m");
    assert_eq!(attachment["mrkdwn_in"], json!(["text"]));
    assert_eq!(attachment["fields"][0]["title"], "revision");
    assert_eq!(
        attachment["fields"][0]["value"],
        format!("main@sha1:{HASH}")
    );
}

#[tokio::test]
async fn slack_bot_token_uses_bearer_auth_and_reports_refusals() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "C123".into(),
        username: "flux-bot".into(),
        ..with_token("slack", sink.url("/api/chat.postMessage"))
    };
    sink.answer(&[
        (200, r#"{"ok": true}"#),
        (200, r#"{"ok": false, "error": "channel_not_found"}"#),
    ]);
    send(settings.clone(), &event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/chat.postMessage");
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert_eq!(req.json()["channel"], "C123");
    assert_eq!(req.json()["username"], "flux-bot");
    assert_eq!(req.json()["attachments"][0]["color"], "good");

    let err = send(settings, &event()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("channel_not_found"), "{err}");
    assert!(!error_chain(&err).contains(TOKEN), "{err}");
}

#[tokio::test]
async fn discord_uses_the_slack_compatible_path() {
    let sink = Sink::start().await;
    send(
        settings("discord", sink.url("/api/webhooks/1/abc")),
        &event(),
    )
    .await
    .unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/webhooks/1/abc/slack");
    assert_eq!(
        req.json()["attachments"][0]["author_name"],
        "kustomization/webapp.apps"
    );
}

#[tokio::test]
async fn rocket_gets_a_slack_style_message() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "ops".into(),
        username: "flux".into(),
        ..settings("rocket", sink.url("/hooks/abc"))
    };
    send(settings, &event()).await.unwrap();
    let body = sink.single().json();
    assert_eq!(body["icon_emoji"], ":rocket:");
    assert_eq!(body["channel"], "ops");
    assert_eq!(body["username"], "flux");
    assert_eq!(body["attachments"][0]["color"], "#0076D7");
}

#[tokio::test]
async fn msteams_workflow_gets_an_adaptive_card() {
    let sink = Sink::start().await;
    let mut e = event();
    e.metadata.insert("summary".into(), "Production".into());
    send(
        settings("msteams", sink.url("/workflows/x/triggers/manual")),
        &e,
    )
    .await
    .unwrap();
    let body = sink.single().json();
    assert_eq!(body["type"], "message");
    let card = &body["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    assert_eq!(card["content"]["version"], "1.4");
    let items = &card["content"]["body"][0]["items"];
    assert_eq!(items[0]["text"], "kustomization/webapp.apps");
    assert_eq!(items[1]["text"], e.message);
    // `summary` comes first.
    assert_eq!(
        items[2]["facts"][0],
        json!({"title": "summary", "value": "Production"})
    );
    assert_eq!(items[2]["facts"][1]["title"], "revision");
}

#[tokio::test]
async fn msteams_office_connector_gets_a_message_card_through_the_proxy() {
    // The sink plays an HTTP proxy: the connector host is never resolved.
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        proxy: Some(format!("http://proxy-user:proxy-pass@{}", sink.addr)),
        ..settings(
            "msteams",
            "http://contoso.webhook.office.com/webhookb2/abc".to_string(),
        )
    };
    send(settings, &error_event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.uri, "http://contoso.webhook.office.com/webhookb2/abc");
    assert_eq!(
        req.header("proxy-authorization").unwrap(),
        basic("proxy-user", "proxy-pass")
    );
    let body = req.json();
    assert_eq!(body["@type"], "MessageCard");
    assert_eq!(body["themeColor"], "FF0000");
    assert_eq!(body["summary"], "kustomization/webapp.apps");
    assert_eq!(
        body["sections"][0]["activityTitle"],
        "Health check failed after 5m"
    );
}

#[tokio::test]
async fn googlechat_gets_a_card_and_skips_progressing() {
    let sink = Sink::start().await;
    let settings = settings("googlechat", sink.url("/v1/spaces/AAA/messages?key=k"));
    send(settings.clone(), &event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/v1/spaces/AAA/messages?key=k");
    let card = &req.json()["cards"][0];
    assert_eq!(card["header"]["title"], "kustomization/webapp.apps");
    assert_eq!(card["header"]["subtitle"], "kustomize-controller");
    assert_eq!(
        card["sections"][0]["widgets"][0]["textParagraph"]["text"],
        event().message
    );
    assert_eq!(
        card["sections"][1]["widgets"][0]["keyValue"]["topLabel"],
        "TIMESTAMP"
    );

    let progressing = FluxEvent {
        reason: "Progressing".into(),
        ..event()
    };
    send(settings, &progressing).await.unwrap();
    assert_eq!(sink.requests().len(), 1, "Progressing events are not sent");
}

#[tokio::test]
async fn webex_posts_markdown_to_the_room() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "room-1".into(),
        ..with_token("webex", sink.url("/v1/messages"))
    };
    send(settings, &event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/v1/messages");
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    let body = req.json();
    assert_eq!(body["roomId"], "room-1");
    let markdown = body["markdown"].as_str().unwrap();
    assert!(
        markdown.starts_with("✅ **Kustomization/apps/webapp**\n"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!(">**revision**: main@sha1:{HASH}")),
        "{markdown}"
    );
}

#[tokio::test]
async fn telegram_calls_send_message_with_markdown_v2() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "-100123:42".into(),
        token: Some("123456:ABC-def".into()),
        ..settings("telegram", sink.url(""))
    };
    send(settings, &event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/bot123456:ABC-def/sendMessage");
    let body = req.json();
    assert_eq!(body["chat_id"], "-100123");
    assert_eq!(body["message_thread_id"], "42");
    assert_eq!(body["parse_mode"], "MarkdownV2");
    let text = body["text"].as_str().unwrap();
    assert!(
        text.starts_with("*💫 kustomization/webapp/apps*\n"),
        "{text}"
    );
    assert!(text.contains("\\- *revision*: main@sha1:"), "{text}");
}

#[tokio::test]
async fn matrix_puts_a_room_message_with_a_transaction_id() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "!room:example.org".into(),
        ..with_token("matrix", sink.url(""))
    };
    send(settings, &event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.method, "PUT");
    let path = req.path();
    let prefix = "/_matrix/client/r0/rooms/!room:example.org/send/m.room.message/";
    assert!(path.starts_with(prefix), "{path}");
    let txn = &path[prefix.len()..];
    assert!(
        txn.len() == 40 && txn.chars().all(|c| c.is_ascii_hexdigit()),
        "{txn}"
    );
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    let body = req.json();
    assert_eq!(body["msgtype"], "m.text");
    assert!(
        body["body"]
            .as_str()
            .unwrap()
            .starts_with("💫 kustomization/webapp.apps\n")
    );
}

#[tokio::test]
async fn lark_gets_an_interactive_card() {
    let sink = Sink::start().await;
    send(
        settings("lark", sink.url("/open-apis/bot/v2/hook/x")),
        &error_event(),
    )
    .await
    .unwrap();
    let body = sink.single().json();
    assert_eq!(body["msg_type"], "interactive");
    assert_eq!(body["card"]["header"]["template"], "red");
    assert_eq!(
        body["card"]["header"]["title"]["content"],
        "🚨 kustomization/webapp.apps"
    );
    assert_eq!(body["card"]["elements"][0]["text"]["tag"], "lark_md");
}

#[tokio::test]
async fn zulip_posts_a_form_with_basic_auth() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "deploys/flux".into(),
        username: "bot@zulip.example.com".into(),
        password: Some("api-key".into()),
        ..settings("zulip", sink.url("/"))
    };
    send(settings, &event()).await.unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/v1/messages");
    assert_eq!(
        req.header("authorization").unwrap(),
        basic("bot@zulip.example.com", "api-key")
    );
    assert_eq!(
        req.header("content-type").unwrap(),
        "application/x-www-form-urlencoded"
    );
    let form: BTreeMap<String, String> = url_decode(&req.body);
    assert_eq!(form["type"], "stream");
    assert_eq!(form["to"], "deploys");
    assert_eq!(form["topic"], "flux");
    assert!(
        form["content"].starts_with("## Flux Status\n\nℹ️ Kustomization/apps/webapp"),
        "{}",
        form["content"]
    );
}

fn url_decode(body: &[u8]) -> BTreeMap<String, String> {
    let url = reqwest::Url::parse(&format!("http://x/?{}", String::from_utf8_lossy(body))).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Alerting
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn alertmanager_gets_a_firing_alert() {
    let sink = Sink::start().await;
    let mut e = error_event();
    e.metadata.insert("summary".into(), "Cluster prod".into());
    send(settings("alertmanager", sink.url("/api/v2/alerts")), &e)
        .await
        .unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/v2/alerts");
    let alert = &req.json()[0];
    assert_eq!(alert["status"], "firing");
    let labels = &alert["labels"];
    assert_eq!(labels["alertname"], "FluxKustomizationHealthCheckFailed");
    assert_eq!(labels["severity"], "error");
    assert_eq!(labels["reason"], "HealthCheckFailed");
    assert_eq!(labels["kind"], "Kustomization");
    assert_eq!(labels["name"], "webapp");
    assert_eq!(labels["namespace"], "apps");
    assert_eq!(labels["reportingcontroller"], "kustomize-controller");
    assert_eq!(labels["revision"], format!("main@sha1:{HASH}"));
    assert!(labels.get("summary").is_none());
    assert_eq!(alert["annotations"]["summary"], "Cluster prod");
    assert_eq!(
        alert["annotations"]["message"],
        "Health check failed after 5m"
    );
}

#[tokio::test]
async fn grafana_gets_an_annotation_with_bearer_or_basic_auth() {
    let sink = Sink::start().await;
    send(
        with_token("grafana", sink.url("/api/annotations")),
        &event(),
    )
    .await
    .unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/annotations");
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    let body = req.json();
    assert_eq!(body["when"], 1_735_787_045);
    assert_eq!(body["text"], "kustomization/webapp.apps");
    assert_eq!(body["tags"][0], "flux");
    assert_eq!(body["tags"][1], "kustomize-controller");
    assert_eq!(body["tags"][2], format!("revision: main@sha1:{HASH}"));

    let sink = Sink::start().await;
    let settings = ProviderSettings {
        username: "admin".into(),
        password: Some("pw".into()),
        ..settings("grafana", sink.url("/api/annotations"))
    };
    send(settings, &event()).await.unwrap();
    assert_eq!(
        sink.single().header("authorization").unwrap(),
        basic("admin", "pw")
    );
}

#[tokio::test]
async fn pagerduty_resolves_and_records_a_change_for_info_and_triggers_for_errors() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        channel: "routing-key-1".into(),
        ..settings("pagerduty", sink.url("/ignored/path"))
    };
    send(settings.clone(), &event()).await.unwrap();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].path(), "/v2/enqueue");
    let resolve = requests[0].json();
    assert_eq!(resolve["routing_key"], "routing-key-1");
    assert_eq!(resolve["event_action"], "resolve");
    assert_eq!(resolve["dedup_key"], "7d0cdc51-1111-2222-3333-444455556666");
    assert_eq!(requests[1].path(), "/v2/change/enqueue");
    let change = requests[1].json();
    assert_eq!(
        change["payload"]["summary"],
        "reconciliation succeeded: kustomization/webapp"
    );
    assert_eq!(change["payload"]["source"], "Flux kustomize-controller");

    let sink = Sink::start().await;
    let settings = ProviderSettings {
        address: sink.url(""),
        ..settings
    };
    send(settings, &error_event()).await.unwrap();
    let trigger = sink.single().json();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["payload"]["severity"], "error");
    assert_eq!(
        trigger["payload"]["summary"],
        "health check failed: kustomization/webapp"
    );
    assert_eq!(trigger["payload"]["component"], "webapp");
    assert_eq!(trigger["payload"]["group"], "Kustomization");
    assert_eq!(
        trigger["payload"]["custom_details"]["message"],
        "Health check failed after 5m"
    );
}

#[tokio::test]
async fn opsgenie_uses_the_genie_key() {
    let sink = Sink::start().await;
    send(
        with_token("opsgenie", sink.url("/v2/alerts")),
        &error_event(),
    )
    .await
    .unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/v2/alerts");
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("GenieKey {TOKEN}")
    );
    let body = req.json();
    assert_eq!(body["message"], "Kustomization/webapp");
    assert_eq!(body["description"], "Health check failed after 5m");
    assert_eq!(body["details"]["severity"], "error");
    assert_eq!(body["details"]["revision"], format!("main@sha1:{HASH}"));
}

#[tokio::test]
async fn datadog_posts_to_the_events_api() {
    let sink = Sink::start().await;
    send(with_token("datadog", sink.url("/")), &error_event())
        .await
        .unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/v1/events");
    assert_eq!(req.header("dd-api-key").unwrap(), TOKEN);
    let body = req.json();
    assert_eq!(body["title"], "Events from the Kustomization webapp/apps");
    assert_eq!(body["alert_type"], "error");
    assert_eq!(body["source_type_name"], "fluxcd");
    assert_eq!(body["date_happened"], 1_735_787_045);
    let tags: Vec<&str> = body["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"kube_kind:kustomization"), "{tags:?}");
    assert!(tags.contains(&"flux_reason:healthcheckfailed"), "{tags:?}");
    assert!(tags.contains(&"kube_namespace:apps"), "{tags:?}");
}

// ---------------------------------------------------------------------------------------------
// Git commit statuses and dispatch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn github_lists_then_sets_the_status_keyed_by_object_and_cluster() {
    let sink = Sink::start().await;
    let settings = with_token("github", sink.url("/org/repo.git"));
    send(settings.clone(), &event()).await.unwrap();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(requests[0].method, "GET");
    assert_eq!(
        requests[0].path(),
        format!("/api/v3/repos/org/repo/commits/{HASH}/statuses?per_page=50")
    );
    let post = &requests[1];
    assert_eq!(post.method, "POST");
    assert_eq!(
        post.path(),
        format!("/api/v3/repos/org/repo/statuses/{HASH}")
    );
    assert_eq!(
        post.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    assert_eq!(
        post.json(),
        json!({"state": "success", "context": STATUS_ID, "description": "reconciliation succeeded"})
    );

    // The same status again: listed, found, not set twice.
    let sink = Sink::start().await;
    let existing =
        json!([{"context": STATUS_ID, "state": "failure", "description": "health check failed"}]);
    sink.answer(&[(200, &existing.to_string())]);
    let settings = ProviderSettings {
        address: sink.url("/org/repo"),
        ..settings
    };
    send(settings, &error_event()).await.unwrap();
    assert_eq!(sink.single().method, "GET");
}

#[tokio::test]
async fn gitlab_sets_the_status_on_the_url_encoded_project() {
    let sink = Sink::start().await;
    send(
        with_token("gitlab", sink.url("/group/sub/repo.git")),
        &error_event(),
    )
    .await
    .unwrap();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        requests[0].path(),
        format!(
            "/api/v4/projects/group%2Fsub%2Frepo/repository/commits/{HASH}/statuses?name=kustomization%2Fwebapp%2F4c1e2a7b"
        )
    );
    assert_eq!(requests[0].header("private-token").unwrap(), TOKEN);
    assert_eq!(
        requests[1].path(),
        format!("/api/v4/projects/group%2Fsub%2Frepo/statuses/{HASH}")
    );
    assert_eq!(requests[1].header("private-token").unwrap(), TOKEN);
    assert_eq!(
        requests[1].json(),
        json!({"state": "failed", "name": STATUS_ID, "description": "health check failed"})
    );
}

#[tokio::test]
async fn gitea_sets_pending_for_progressing_events() {
    let sink = Sink::start().await;
    let progressing = FluxEvent {
        reason: "Progressing".into(),
        ..event()
    };
    send(with_token("gitea", sink.url("/org/repo")), &progressing)
        .await
        .unwrap();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        requests[0].path(),
        format!("/api/v1/repos/org/repo/statuses/{HASH}?page=1&limit=50")
    );
    assert_eq!(
        requests[1].path(),
        format!("/api/v1/repos/org/repo/statuses/{HASH}")
    );
    assert_eq!(
        requests[1].header("authorization").unwrap(),
        format!("token {TOKEN}")
    );
    let body = requests[1].json();
    assert_eq!(body["state"], "pending");
    assert_eq!(body["context"], STATUS_ID);
    assert_eq!(body["description"], "progressing");
}

#[tokio::test]
async fn bitbucket_sets_a_build_status_keyed_by_the_sha1_of_the_status_id() {
    let sink = Sink::start().await;
    sink.answer(&[(404, r#"{"type": "error"}"#)]);
    let settings = ProviderSettings {
        token: Some("user:app-password".into()),
        ..settings("bitbucket", sink.url("/org/repo.git"))
    };
    send(settings, &event()).await.unwrap();
    let key = hex::encode(sha1::Sha1::digest(STATUS_ID.as_bytes()));
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    assert_eq!(
        requests[0].path(),
        format!("/2.0/repositories/org/repo/commit/{HASH}/statuses/build/{key}")
    );
    assert_eq!(
        requests[1].path(),
        format!("/2.0/repositories/org/repo/commit/{HASH}/statuses/build")
    );
    assert_eq!(
        requests[1].header("authorization").unwrap(),
        basic("user", "app-password")
    );
    let body = requests[1].json();
    assert_eq!(body["key"], key);
    assert_eq!(body["state"], "SUCCESSFUL");
    assert_eq!(body["name"], STATUS_ID);
    assert_eq!(body["description"], "reconciliation succeeded");
}

#[tokio::test]
async fn bitbucketserver_sets_a_build_status_under_the_context_path() {
    let sink = Sink::start().await;
    sink.answer(&[(404, "")]);
    let address = sink.url("/bitbucket/scm/proj/repo.git");
    send(
        with_token("bitbucketserver", address.clone()),
        &error_event(),
    )
    .await
    .unwrap();
    let key = hex::encode(sha1::Sha1::digest(STATUS_ID.as_bytes()));
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let path = format!("/bitbucket/rest/api/latest/projects/proj/repos/repo/commits/{HASH}/builds");
    assert_eq!(requests[0].path(), format!("{path}?key={key}"));
    assert_eq!(requests[1].path(), path);
    for req in &requests {
        assert_eq!(
            req.header("authorization").unwrap(),
            format!("Bearer {TOKEN}")
        );
        assert_eq!(req.header("x-atlassian-token").unwrap(), "no-check");
    }
    let body = requests[1].json();
    assert_eq!(body["key"], key);
    assert_eq!(body["state"], "FAILED");
    assert_eq!(body["url"], address);
    assert_eq!(body["name"], "kustomization/webapp [health check failed]");
}

#[tokio::test]
async fn azuredevops_sets_a_fluxcd_status_with_a_pat() {
    let sink = Sink::start().await;
    sink.answer(&[(200, r#"{"count": 0, "value": []}"#)]);
    send(
        with_token("azuredevops", sink.url("/org/proj/_git/repo")),
        &event(),
    )
    .await
    .unwrap();
    let requests = sink.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    let path =
        format!("/org/proj/_apis/git/repositories/repo/commits/{HASH}/statuses?api-version=6.0");
    assert_eq!(requests[0].path(), path);
    assert_eq!(requests[1].path(), path);
    assert_eq!(
        requests[1].header("authorization").unwrap(),
        basic("", TOKEN)
    );
    assert_eq!(
        requests[1].json(),
        json!({
            "state": "succeeded",
            "description": "reconciliation succeeded",
            "context": {"genre": "fluxcd", "name": STATUS_ID},
        })
    );
}

#[tokio::test]
async fn githubdispatch_sends_a_repository_dispatch() {
    let sink = Sink::start().await;
    send(
        with_token("githubdispatch", sink.url("/org/repo")),
        &event_without_revision(),
    )
    .await
    .unwrap();
    let req = sink.single();
    assert_eq!(req.path(), "/api/v3/repos/org/repo/dispatches");
    assert_eq!(
        req.header("authorization").unwrap(),
        format!("Bearer {TOKEN}")
    );
    let body = req.json();
    assert_eq!(body["event_type"], "Kustomization/webapp.apps");
    assert_eq!(body["client_payload"]["involvedObject"]["name"], "webapp");
    assert_eq!(body["client_payload"]["reason"], "ReconciliationSucceeded");
}

#[tokio::test]
async fn commit_status_types_send_nothing_for_events_without_a_revision() {
    for (provider_type, path, token) in [
        ("github", "/org/repo", TOKEN),
        ("gitlab", "/org/repo", TOKEN),
        ("gitea", "/org/repo", TOKEN),
        ("bitbucket", "/org/repo", "user:pw"),
        ("bitbucketserver", "/scm/proj/repo.git", TOKEN),
        ("azuredevops", "/org/proj/_git/repo", TOKEN),
    ] {
        let sink = Sink::start().await;
        let settings = ProviderSettings {
            token: Some(token.into()),
            ..settings(provider_type, sink.url(path))
        };
        send(settings, &event_without_revision()).await.unwrap();
        assert!(
            sink.requests().is_empty(),
            "{provider_type}: {:#?}",
            sink.requests()
        );
    }
}

#[tokio::test]
async fn an_explicit_commit_status_key_replaces_the_default() {
    let sink = Sink::start().await;
    let settings = ProviderSettings {
        commit_status: Some("flux/prod/webapp".into()),
        ..with_token("github", sink.url("/org/repo"))
    };
    send(settings, &event()).await.unwrap();
    assert_eq!(sink.requests()[1].json()["context"], "flux/prod/webapp");
}

// ---------------------------------------------------------------------------------------------
// Retries, limits, errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let sink = Sink::start().await;
    sink.answer(&[(500, "oops"), (503, "busy")]);
    send(settings("generic", sink.url("/hook")), &event())
        .await
        .unwrap();
    let requests = sink.requests();
    assert_eq!(requests.len(), 3, "two failures, then delivered once");
    assert!(requests.iter().all(|r| r.body == requests[0].body));
}

#[tokio::test]
async fn too_many_requests_is_retried() {
    let sink = Sink::start().await;
    sink.answer(&[(429, "slow down")]);
    send(settings("generic", sink.url("/hook")), &event())
        .await
        .unwrap();
    assert_eq!(sink.requests().len(), 2);
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let sink = Sink::start().await;
    sink.answer(&[(400, r#"{"message": "bad payload"}"#)]);
    let err = send(settings("generic", sink.url("/hook")), &event())
        .await
        .unwrap_err();
    assert_eq!(sink.requests().len(), 1);
    assert!(
        matches!(
            err,
            DeliveryError::Status {
                status: 400,
                attempts: 1,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("HTTP 400"), "{err}");
    assert!(err.to_string().contains("bad payload"), "{err}");
}

#[tokio::test]
async fn connection_refused_fails_after_the_retries() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = send(
        settings("generic", format!("http://127.0.0.1:{port}/hook")),
        &event(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, DeliveryError::Transport { attempts: 4, .. }),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn the_timeout_bounds_all_attempts_together() {
    let sink = Sink::start().await;
    sink.answer(&[(503, ""); 50]);
    toolkit_sdk::tls::install_crypto_provider();
    let n = notifier(ProviderSettings {
        timeout: Duration::from_millis(700),
        ..settings("generic", sink.url("/hook"))
    })
    .unwrap()
    .with_retry(RetryPolicy {
        max_retries: 50,
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(100),
    });
    let started = Instant::now();
    let err = n.send(&event()).await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
    assert!(err.attempts() >= 2 && err.attempts() < 50, "{err:?}");
    assert_eq!(sink.requests().len() as u32, err.attempts());
}

#[tokio::test]
async fn tokens_never_show_in_errors() {
    // The token is part of the Telegram URL, and the service echoes it back.
    let token = "987654:SECRET-bot-token";
    let sink = Sink::start().await;
    sink.answer(&[(
        401,
        &format!(r#"{{"description": "Unauthorized token {token}"}}"#),
    )]);
    let settings = ProviderSettings {
        channel: "42".into(),
        token: Some(token.into()),
        ..settings("telegram", sink.url(""))
    };
    let err = send(settings.clone(), &event()).await.unwrap_err();
    assert!(
        matches!(err, DeliveryError::Status { status: 401, .. }),
        "{err:?}"
    );
    let chain = error_chain(&err);
    assert!(
        !chain.contains(token) && !chain.contains("SECRET"),
        "{chain}"
    );
    assert!(chain.contains("Unauthorized token *****"), "{chain}");

    // Nothing listening: the transport error must not quote the URL either.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let settings = ProviderSettings {
        address: format!("http://127.0.0.1:{port}"),
        ..settings
    };
    let err = send(settings, &event()).await.unwrap_err();
    let chain = error_chain(&err);
    assert!(!chain.contains("SECRET"), "{chain}");
    assert!(!format!("{err:?}").contains("SECRET"), "{err:?}");
}

#[tokio::test]
async fn bad_provider_settings_are_refused_clearly() {
    let err = notifier(settings("googlepubsub", "projects/p".into())).unwrap_err();
    assert!(
        matches!(err, ProviderError::UnsupportedType { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("googlepubsub"), "{err}");

    let err = notifier(settings("github", "https://github.com/just-an-org".into())).unwrap_err();
    assert!(err.to_string().contains("<owner>/<repository>"), "{err}");

    let err = notifier(settings("github", "https://github.com/org/repo".into())).unwrap_err();
    assert!(err.to_string().contains("token"), "{err}");

    let err = notifier(settings("zulip", "https://zulip.example.com".into())).unwrap_err();
    assert!(err.to_string().contains("spec.channel"), "{err}");

    let err = notifier(ProviderSettings {
        ca_pem: Some(b"not a certificate".to_vec()),
        ..settings("generic", "https://example.com".into())
    })
    .unwrap_err();
    assert!(err.to_string().contains("ca.crt"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

/// A CA and an HTTPS server on 127.0.0.1 with a certificate it signed; answers 200 to one
/// request per connection and records the request line.
async fn https_server() -> (SocketAddr, Vec<u8>, Arc<Mutex<Vec<String>>>) {
    let (addr, ca, seen, _) = https_server_with(false).await;
    (addr, ca, seen)
}

/// A client certificate and its key (PEM).
type ClientIdentity = (Vec<u8>, Vec<u8>);

/// [`https_server`]; with `require_client_cert`, the server accepts only clients presenting a
/// certificate signed by the same CA, and one such certificate is returned.
async fn https_server_with(
    require_client_cert: bool,
) -> (
    SocketAddr,
    Vec<u8>,
    Arc<Mutex<Vec<String>>>,
    Option<ClientIdentity>,
) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    toolkit_sdk::tls::install_crypto_provider();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "providers-test-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .distinguished_name
        .push(DnType::CommonName, "providers-test-server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();

    let mut client_identity = None;
    let builder = tokio_rustls::rustls::ServerConfig::builder();
    let builder = if require_client_cert {
        let mut client_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "notification-controller");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();
        client_identity = Some((
            client_cert.pem().into_bytes(),
            client_key.serialize_pem().into_bytes(),
        ));
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.add(ca_cert.der().clone()).unwrap();
        let verifier = tokio_rustls::rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
            .build()
            .unwrap();
        builder.with_client_cert_verifier(verifier)
    } else {
        builder.with_no_client_auth()
    };
    let config = builder
        .with_single_cert(
            vec![cert.der().clone()],
            tokio_rustls::rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let record = record.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await
                    && let Some(line) = read_request(&mut tls).await
                {
                    record.lock().unwrap().push(line);
                    let _ = tls
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    let _ = tls.shutdown().await;
                }
            });
        }
    });
    (addr, ca_cert.pem().into_bytes(), seen, client_identity)
}

/// Reads one HTTP/1.1 request (head and `content-length` body); returns its request line.
async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Option<String> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_string();
            let length = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let n = stream.read(&mut buf).await.ok()?;
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return head.lines().next().map(str::to_string);
        }
    }
}

#[tokio::test]
async fn https_with_a_custom_ca_works_and_is_refused_without_it() {
    let (addr, ca, seen) = https_server().await;
    let url = format!("https://127.0.0.1:{}/hook", addr.port());
    let settings = ProviderSettings {
        ca_pem: Some(ca),
        ..settings("generic", url.clone())
    };
    send(settings, &event()).await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), ["POST /hook HTTP/1.1"]);

    let err = send(settings_without_ca(url), &event()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transport { .. }), "{err:?}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no request without trusting the CA"
    );
}

fn settings_without_ca(url: String) -> ProviderSettings {
    settings("generic", url)
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_servers_that_require_one() {
    let (addr, ca, seen, identity) = https_server_with(true).await;
    let (cert, key) = identity.unwrap();
    let url = format!("https://127.0.0.1:{}/mtls", addr.port());
    let with_identity = ProviderSettings {
        ca_pem: Some(ca.clone()),
        client_cert_pem: Some(cert),
        client_key_pem: Some(key),
        ..settings("generic", url.clone())
    };
    send(with_identity, &event()).await.unwrap();
    assert_eq!(seen.lock().unwrap().as_slice(), ["POST /mtls HTTP/1.1"]);

    // Trusting the server is not enough: without the client certificate the handshake fails.
    let ca_only = ProviderSettings {
        ca_pem: Some(ca),
        ..settings("generic", url)
    };
    let err = send(ca_only, &event()).await.unwrap_err();
    assert!(matches!(err, DeliveryError::Transport { .. }), "{err:?}");
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "no request without the certificate"
    );
}
