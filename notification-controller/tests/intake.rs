//! The event intake against a real API server: events POSTed to the controller's event endpoint
//! reach a loopback sink through a `generic` Provider exactly as Alerts select, and broken
//! Providers and Alerts say so in their conditions and Kubernetes Events.
#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::Uri;
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::Resource;
use kube::api::{Api, ListParams, PostParams};
use notification_controller::api::v1beta3::{Alert, Provider};
use notification_controller::controller::{Config, NotificationController};
use notification_controller::intake::{DeliveryResult, EventResult};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use toolkit_sdk::conditions;
use toolkit_sdk::flags::{LogEncoding, LogLevel};

const WAIT: Duration = Duration::from_secs(30);

static CRDS: tokio::sync::OnceCell<Vec<String>> = tokio::sync::OnceCell::const_new();

/// The requests a [`Sink`] received: path and JSON body.
type Recorded = Arc<Mutex<Vec<(String, Value)>>>;

/// A loopback HTTP server that records every request (path and JSON body) and answers 200.
#[derive(Clone, Default)]
struct Sink {
    requests: Recorded,
    url: String,
}

impl Sink {
    async fn start() -> Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let mut sink = Sink {
            url: format!("http://{}", listener.local_addr()?),
            ..Sink::default()
        };
        let requests = sink.requests.clone();
        let app = Router::new()
            .fallback(
                |State(requests): State<Recorded>, uri: Uri, body: Bytes| async move {
                    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    requests
                        .lock()
                        .unwrap()
                        .push((uri.path().to_owned(), value));
                    "ok"
                },
            )
            .with_state(requests);
        tokio::spawn(async move { axum::serve(listener, app).await });
        sink.url.push('/');
        Ok(sink)
    }

    fn requests(&self) -> Vec<(String, Value)> {
        self.requests.lock().unwrap().clone()
    }

    fn on_path(&self, path: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|(p, _)| p == path)
            .map(|(_, v)| v)
            .collect()
    }

    async fn wait_for(&self, path: &str, count: usize) -> Result<Vec<Value>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let got = self.on_path(path);
            if got.len() >= count {
                return Ok(got);
            }
            if Instant::now() > deadline {
                bail!(
                    "sink got {} request(s) on {path}, wanted {count}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A namespace with its own notification-controller watching only it.
struct Env {
    ns: String,
    client: kube::Client,
    controller: NotificationController,
    http: reqwest::Client,
}

async fn env(prefix: &str) -> Result<Env> {
    toolkit_sdk::tls::install_crypto_provider();
    let _ = toolkit_sdk::logging::init_with(LogLevel::Info, LogEncoding::Console);
    let cluster = e2e::cluster().await?;
    let client = cluster.client().await?;
    // The shared control plane may predate these CRDs: apply the current ones, once per
    // process (a CRD changing under a running watch can leave the watch silent).
    CRDS.get_or_try_init(|| async {
        let crds: Vec<_> = notification_controller::api::crds()
            .into_iter()
            .map(|(_, crd)| crd)
            .collect();
        e2e::crds::install(&client, &crds).await
    })
    .await?;
    let ns = cluster.namespace(prefix).await?.name;
    let mut config = Config::new();
    config.events_addr = "127.0.0.1:0".parse()?;
    config.receiver_addr = "127.0.0.1:0".parse()?;
    config.options.namespace = Some(ns.clone());
    config.options.runtime.watch_all_namespaces = false;
    config.options.runtime.min_retry_delay = Duration::from_millis(200);
    config.options.runtime.max_retry_delay = Duration::from_secs(2);
    config.options.dependency_requeue = Duration::from_secs(1);
    config.options.observability.metrics_addr = "127.0.0.1:0".parse()?;
    config.options.observability.health_addr = "127.0.0.1:0".parse()?;
    let controller = NotificationController::start(config, client.clone()).await?;
    tokio::time::timeout(WAIT, controller.intake().wait_ready()).await?;
    Ok(Env {
        ns,
        client,
        controller,
        http: reqwest::Client::new(),
    })
}

impl Env {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn create<K>(&self, mut value: Value) -> Result<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + serde::Serialize,
    {
        value["metadata"]["namespace"] = json!(self.ns);
        let object: K = serde_json::from_value(value)?;
        Ok(self
            .api::<K>()
            .create(&PostParams::default(), &object)
            .await?)
    }

    async fn provider(&self, name: &str, spec: Value) -> Result<Provider> {
        let provider: Provider = self
            .create(json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
                "kind": "Provider",
                "metadata": {"name": name},
                "spec": spec
            }))
            .await?;
        self.wait_until(&format!("intake knows Provider {name}"), || {
            self.controller.intake().has_provider(&self.ns, name)
        })
        .await?;
        Ok(provider)
    }

    async fn alert(&self, name: &str, spec: Value) -> Result<Alert> {
        let alert: Alert = self
            .create(json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
                "kind": "Alert",
                "metadata": {"name": name},
                "spec": spec
            }))
            .await?;
        self.wait_until(&format!("intake knows Alert {name}"), || {
            self.controller.intake().has_alert(&self.ns, name, None)
        })
        .await?;
        Ok(alert)
    }

    async fn wait_until(&self, what: &str, check: impl Fn() -> bool) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        while !check() {
            if Instant::now() > deadline {
                bail!("{what}: not reached within {WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// The event a Kustomization `name` in this namespace would send.
    fn event(&self, name: &str, severity: &str, message: &str) -> Value {
        json!({
            "involvedObject": {
                "kind": "Kustomization",
                "namespace": self.ns,
                "name": name,
                "uid": "7d0cdc51-0000-0000-0000-000000000000",
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "resourceVersion": "1"
            },
            "severity": severity,
            "timestamp": "2026-01-02T03:04:05Z",
            "message": message,
            "reason": "ReconciliationSucceeded",
            "metadata": {
                "kustomize.toolkit.fluxcd.io/revision": "main@sha1:0123abcd",
                "kustomize.toolkit.fluxcd.io/digest": "sha256:ffff",
                "kustomize.toolkit.fluxcd.io/token": "internal"
            },
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-1"
        })
    }

    async fn post_raw(&self, body: impl Into<reqwest::Body>) -> Result<(u16, String)> {
        let url = format!("http://{}/", self.controller.events_addr());
        let response = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        Ok((response.status().as_u16(), response.text().await?))
    }

    async fn post(&self, event: &Value) -> Result<u16> {
        Ok(self.post_raw(serde_json::to_vec(event)?).await?.0)
    }

    /// Waits until `name` of kind `K` has `Ready` with `status` and `reason`; returns the message.
    async fn wait_ready<K>(&self, name: &str, status: &str, reason: &str) -> Result<String>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + DeserializeOwned
            + serde::Serialize,
    {
        let deadline = Instant::now() + WAIT;
        loop {
            let object = self.api::<K>().get(name).await?;
            let value = serde_json::to_value(&object)?;
            let conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> =
                serde_json::from_value(value["status"]["conditions"].clone()).unwrap_or_default();
            if let Some(ready) = conditions::get(&conditions, conditions::types::READY)
                && ready.status == status
                && ready.reason == reason
            {
                return Ok(ready.message.clone());
            }
            if Instant::now() > deadline {
                bail!("{name}: Ready is not {status}/{reason}: {conditions:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for a Kubernetes Event about `name` with `reason`; returns its message.
    async fn wait_event(&self, name: &str, reason: &str, contains: &str) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        let api: Api<Event> = self.api();
        loop {
            let events = api
                .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                .await?;
            if let Some(event) = events.items.iter().find(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.message.as_deref().unwrap_or_default().contains(contains)
            }) {
                return Ok(event.message.clone().unwrap_or_default());
            }
            if Instant::now() > deadline {
                let seen: Vec<_> = events
                    .items
                    .iter()
                    .map(|e| (e.reason.clone(), e.message.clone()))
                    .collect();
                bail!("no event {reason} on {name} containing {contains:?}; seen {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn a_matching_event_is_delivered_once_and_repeats_are_refused() -> Result<()> {
    let env = env("intake-deliver").await?;
    let sink = Sink::start().await?;
    env.provider(
        "sink",
        json!({"type": "generic", "address": format!("{}webapp", sink.url)}),
    )
    .await?;
    env.alert(
        "webapp",
        json!({
            "providerRef": {"name": "sink"},
            "eventSources": [{"kind": "Kustomization", "name": "webapp"}],
            "eventMetadata": {"cluster": "eu-1"},
            "summary": "production"
        }),
    )
    .await?;

    let event = env.event("webapp", "info", "Applied revision: main@sha1:0123abcd");
    assert_eq!(env.post(&event).await?, 202);
    let got = sink.wait_for("/webapp", 1).await?;
    let body = &got[0];
    assert_eq!(body["involvedObject"]["name"], json!("webapp"));
    assert_eq!(
        body["message"],
        json!("Applied revision: main@sha1:0123abcd")
    );
    assert_eq!(body["severity"], json!("info"));
    // Metadata: unprefixed, the Alert's added, digest and the internal token dropped.
    assert_eq!(
        body["metadata"],
        json!({"cluster": "eu-1", "revision": "main@sha1:0123abcd", "summary": "production"})
    );

    // The same event again within the rate limit interval: 429, not forwarded.
    assert_eq!(env.post(&event).await?, 429);
    // The same event with another severity is still the same event (Flux's key).
    let mut as_error = event.clone();
    as_error["severity"] = json!("error");
    assert_eq!(env.post(&as_error).await?, 429);
    // Another revision is another event.
    let mut next = env.event("webapp", "info", "Applied revision: main@sha1:0123abcd");
    next["metadata"]["kustomize.toolkit.fluxcd.io/revision"] = json!("main@sha1:4567");
    assert_eq!(env.post(&next).await?, 202);
    sink.wait_for("/webapp", 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.on_path("/webapp").len(), 2);

    let metrics = env.controller.intake().metrics();
    assert_eq!(metrics.events(EventResult::Accepted), 2);
    assert_eq!(metrics.events(EventResult::Duplicate), 2);
    assert_eq!(metrics.deliveries(DeliveryResult::Success), 2);
    let exposition = env.controller.metrics().encode();
    assert!(
        exposition.contains(r#"notification_controller_events_total{result="duplicate"} 2"#),
        "{exposition}"
    );

    // The Provider and the Alert are Ready.
    env.wait_ready::<Provider>("sink", "True", "Succeeded")
        .await?;
    env.wait_ready::<Alert>("webapp", "True", "Succeeded")
        .await?;
    // As in Flux, neither holds a finalizer: deleting them never waits for the controller.
    let provider = env.api::<Provider>().get("sink").await?;
    let alert = env.api::<Alert>().get("webapp").await?;
    assert_eq!(provider.metadata.finalizers, None);
    assert_eq!(alert.metadata.finalizers, None);
    env.controller.stop().await?;
    Ok(())
}

#[tokio::test]
async fn events_that_do_not_match_are_not_sent() -> Result<()> {
    let env = env("intake-filter").await?;
    let sink = Sink::start().await?;
    env.provider(
        "errors",
        json!({"type": "generic", "address": format!("{}errors", sink.url)}),
    )
    .await?;
    env.provider(
        "suspended-alert",
        json!({"type": "generic", "address": format!("{}suspended", sink.url)}),
    )
    .await?;
    env.alert(
        "errors",
        json!({
            "providerRef": {"name": "errors"},
            "eventSeverity": "error",
            "eventSources": [{"kind": "Kustomization", "name": "*"}],
            "inclusionList": ["failed"],
            "exclusionList": ["timeout"]
        }),
    )
    .await?;
    env.alert(
        "suspended",
        json!({
            "providerRef": {"name": "suspended-alert"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}, {"kind": "GitRepository", "name": "*"}],
            "suspend": true
        }),
    )
    .await?;

    // Wrong severity, message not included, message excluded, another kind, another namespace.
    let info = env.event("app", "info", "health check failed");
    let not_included = env.event("app", "error", "something odd");
    let excluded = env.event("app", "error", "health check failed: timeout");
    let mut other_kind = env.event("app", "error", "fetch failed");
    other_kind["involvedObject"]["kind"] = json!("GitRepository");
    let mut other_namespace = env.event("app", "error", "apply failed");
    other_namespace["involvedObject"]["namespace"] = json!("elsewhere");
    for event in [
        &info,
        &not_included,
        &excluded,
        &other_kind,
        &other_namespace,
    ] {
        assert_eq!(env.post(event).await?, 202, "{event}");
    }
    // A matching event last, as a marker that the others were processed.
    let matching = env.event("app", "error", "health check failed after 5m");
    assert_eq!(env.post(&matching).await?, 202);
    let got = sink.wait_for("/errors", 1).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.on_path("/errors").len(), 1, "{:?}", sink.requests());
    assert_eq!(got[0]["message"], json!("health check failed after 5m"));
    // The suspended Alert sent nothing at all.
    assert!(sink.on_path("/suspended").is_empty());
    env.controller.stop().await?;
    Ok(())
}

#[tokio::test]
async fn bad_payloads_are_refused_with_a_reason() -> Result<()> {
    let env = env("intake-bad").await?;
    let (status, text) = env.post_raw("{\"involvedObject\": ").await?;
    assert_eq!(status, 400);
    assert!(text.contains("invalid event payload"), "{text}");

    let mut missing = env.event("app", "info", "m");
    missing.as_object_mut().unwrap().remove("reason");
    let (status, text) = env.post_raw(serde_json::to_vec(&missing)?).await?;
    assert_eq!(status, 400);
    assert!(text.contains("missing field `reason`"), "{text}");

    let mut no_name = env.event("", "info", "m");
    no_name["involvedObject"]["name"] = json!("");
    let (status, text) = env.post_raw(serde_json::to_vec(&no_name)?).await?;
    assert_eq!(status, 400);
    assert!(text.contains("involvedObject.name"), "{text}");

    let mut huge = env.event("app", "info", "m");
    huge["message"] = json!("x".repeat(3 * 1024 * 1024));
    let (status, _) = env.post_raw(serde_json::to_vec(&huge)?).await?;
    assert_eq!(status, 413);

    let response = env
        .http
        .get(format!("http://{}/", env.controller.events_addr()))
        .send()
        .await?;
    assert_eq!(response.status().as_u16(), 405);

    let metrics = env.controller.intake().metrics();
    assert_eq!(metrics.events(EventResult::Invalid), 3);
    assert_eq!(metrics.events(EventResult::TooLarge), 1);
    env.controller.stop().await?;
    Ok(())
}

#[tokio::test]
async fn an_alert_with_a_missing_provider_says_so_and_sends_nothing() -> Result<()> {
    let env = env("intake-no-provider").await?;
    let sink = Sink::start().await?;
    env.alert(
        "orphan",
        json!({
            "providerRef": {"name": "missing"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }),
    )
    .await?;
    let message = env
        .wait_ready::<Alert>("orphan", "False", "ValidationFailed")
        .await?;
    assert!(
        message.contains("Provider")
            && message.contains("missing")
            && message.contains("not found"),
        "{message}"
    );
    env.wait_event("orphan", "ValidationFailed", "not found")
        .await?;

    assert_eq!(env.post(&env.event("app", "info", "Applied")).await?, 202);
    let message = env
        .wait_event("orphan", "NotificationDispatchFailed", "Kustomization/")
        .await?;
    assert!(message.contains("not found"), "{message}");
    assert!(sink.requests().is_empty());

    // Creating the Provider makes the Alert Ready without touching it.
    env.provider(
        "missing",
        json!({"type": "generic", "address": format!("{}late", sink.url)}),
    )
    .await?;
    env.wait_ready::<Alert>("orphan", "True", "Succeeded")
        .await?;
    assert_eq!(
        env.post(&env.event("app", "info", "Applied again")).await?,
        202
    );
    sink.wait_for("/late", 1).await?;
    env.controller.stop().await?;
    Ok(())
}

#[tokio::test]
async fn a_provider_with_a_missing_secret_says_so_and_sends_nothing() -> Result<()> {
    let env = env("intake-no-secret").await?;
    let sink = Sink::start().await?;
    env.provider(
        "hook",
        json!({"type": "generic", "secretRef": {"name": "hook-address"}}),
    )
    .await?;
    env.alert(
        "all",
        json!({
            "providerRef": {"name": "hook"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }),
    )
    .await?;
    let message = env
        .wait_ready::<Provider>("hook", "False", "ValidationFailed")
        .await?;
    assert_eq!(
        message,
        format!(
            "secret '{}/hook-address' referenced by spec.secretRef not found",
            env.ns
        )
    );
    env.wait_event("hook", "ValidationFailed", "hook-address")
        .await?;
    let message = env
        .wait_ready::<Alert>("all", "False", "DependencyNotReady")
        .await?;
    assert!(message.contains("is not ready"), "{message}");

    assert_eq!(env.post(&env.event("app", "info", "Applied 1")).await?, 202);
    let message = env
        .wait_event("all", "NotificationDispatchFailed", "hook-address")
        .await?;
    assert!(message.contains("not found"), "{message}");
    assert!(sink.requests().is_empty());

    // The Secret appears: the next event goes out, the Provider and the Alert become Ready.
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "hook-address", "namespace": env.ns},
        "stringData": {"address": format!("{}from-secret", sink.url)}
    }))?;
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    env.wait_ready::<Provider>("hook", "True", "Succeeded")
        .await?;
    env.wait_ready::<Alert>("all", "True", "Succeeded").await?;
    assert_eq!(env.post(&env.event("app", "info", "Applied 2")).await?, 202);
    let got = sink.wait_for("/from-secret", 1).await?;
    assert_eq!(got[0]["message"], json!("Applied 2"));

    // A type that cannot be built is stalled with a message naming it.
    env.provider(
        "cloud",
        json!({"type": "googlepubsub", "address": "project"}),
    )
    .await?;
    let message = env
        .wait_ready::<Provider>("cloud", "False", "ValidationFailed")
        .await?;
    assert!(message.contains("googlepubsub"), "{message}");
    env.controller.stop().await?;
    Ok(())
}

#[tokio::test]
async fn commit_status_expr_names_the_commit_status() -> Result<()> {
    let env = env("intake-status-expr").await?;
    let sink = Sink::start().await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "git-token", "namespace": env.ns},
        "stringData": {"token": "t0ken"}
    }))?;
    env.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    env.provider(
        "status",
        json!({
            "type": "github",
            "address": format!("{}org/repo", sink.url),
            "secretRef": {"name": "git-token"},
            "commitStatusExpr": "event.involvedObject.kind.lowerAscii() + '/' + event.involvedObject.name + '/' + alert.metadata.name + '/' + provider.metadata.name"
        }),
    )
    .await?;
    env.alert(
        "commits",
        json!({
            "providerRef": {"name": "status"},
            "eventSources": [{"kind": "Kustomization", "name": "*"}]
        }),
    )
    .await?;
    env.wait_ready::<Provider>("status", "True", "Succeeded")
        .await?;

    let sha = "0123456789abcdef0123456789abcdef01234567";
    let mut event = env.event("webapp", "info", "Applied revision");
    event["metadata"]["kustomize.toolkit.fluxcd.io/revision"] = json!(format!("main@sha1:{sha}"));
    assert_eq!(env.post(&event).await?, 202);
    let posted = sink
        .wait_for(&format!("/api/v3/repos/org/repo/statuses/{sha}"), 1)
        .await?;
    assert_eq!(
        posted[0]["context"],
        json!("kustomization/webapp/commits/status")
    );

    // An expression that does not parse stalls the Provider.
    env.provider(
        "broken",
        json!({
            "type": "github",
            "address": format!("{}org/repo", sink.url),
            "secretRef": {"name": "git-token"},
            "commitStatusExpr": "event.("
        }),
    )
    .await?;
    let message = env
        .wait_ready::<Provider>("broken", "False", "InvalidCELExpression")
        .await?;
    assert!(message.contains("commitStatusExpr"), "{message}");
    env.controller.stop().await?;
    Ok(())
}
