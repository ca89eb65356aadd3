//! A [`Manager`] running two kinds in one process against a real kube-apiserver: one Lease,
//! one `/metrics`, one `/readyz`, both kinds reconciled, custom success events, and a Lease
//! released only once every controller has drained.
#![allow(clippy::unwrap_used, missing_docs)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::reflector::ObjectRef;
use kube::{CustomResource, CustomResourceExt, Resource, ResourceExt};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolkit_sdk::error::ReconcileError;
use toolkit_sdk::leader::lease_name;
use toolkit_sdk::runtime::{
    Context, ControllerOptions, FluxObject, Manager, Outcome, Reconciler, RuntimeError,
};

const GROUP: &str = "runtime-test.ferroflux.dev";
const NAME: &str = "manager-test-controller";

// ----- two kinds -----------------------------------------------------------------------------

/// A thing that only has to become Ready.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "runtime-test.ferroflux.dev",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "TestStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct WidgetSpec {
    pub message: String,
    #[serde(default)]
    pub suspend: bool,
}

/// A thing that announces each new message with an event of its own.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "runtime-test.ferroflux.dev",
    version = "v1",
    kind = "Gadget",
    namespaced,
    status = "TestStatus"
)]
#[serde(rename_all = "camelCase")]
pub struct GadgetSpec {
    pub message: String,
    #[serde(default)]
    pub suspend: bool,
    /// How long a reconcile takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestStatus {
    #[serde(default = "never")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
    /// The message announced last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announced: Option<String>,
}

fn never() -> i64 {
    -1
}

impl Default for TestStatus {
    fn default() -> Self {
        Self {
            observed_generation: -1,
            conditions: Vec::new(),
            last_handled_reconcile_at: None,
            announced: None,
        }
    }
}

toolkit_sdk::impl_flux_status!(TestStatus);

impl FluxObject for Widget {
    type Status = TestStatus;
    fn suspended(&self) -> bool {
        self.spec.suspend
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(3600)
    }
    fn status(&self) -> Option<&TestStatus> {
        self.status.as_ref()
    }
}

impl FluxObject for Gadget {
    type Status = TestStatus;
    fn suspended(&self) -> bool {
        self.spec.suspend
    }
    fn interval(&self) -> Duration {
        Duration::from_secs(3600)
    }
    fn status(&self) -> Option<&TestStatus> {
        self.status.as_ref()
    }
}

// ----- their reconcilers ---------------------------------------------------------------------

struct WidgetReconciler;

impl Reconciler for WidgetReconciler {
    type Object = Widget;

    async fn reconcile(
        &self,
        obj: &Widget,
        _status: &mut TestStatus,
        _ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        Ok(Outcome::ready(format!("widget says {}", obj.spec.message)))
    }
}

/// What the Gadget reconciler saw: whether a reconcile started, and who held the Lease when
/// one finished.
#[derive(Default)]
struct Seen {
    started: bool,
    holder_at_finish: Option<String>,
}

struct GadgetReconciler {
    namespace: String,
    seen: Arc<Mutex<Seen>>,
}

impl Reconciler for GadgetReconciler {
    type Object = Gadget;

    async fn reconcile(
        &self,
        obj: &Gadget,
        status: &mut TestStatus,
        ctx: &Context,
    ) -> Result<Outcome, ReconcileError> {
        self.seen.lock().unwrap().started = true;
        if let Some(delay) = obj.spec.delay_ms {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let leases: Api<Lease> = Api::namespaced(ctx.client().clone(), &self.namespace);
        let holder = leases
            .get_opt(&lease_name(NAME, ""))
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        self.seen.lock().unwrap().holder_at_finish = holder;

        let generation = obj.metadata.generation.unwrap_or_default();
        ctx.set_revision(format!("gen-{generation}"));
        let ready = Outcome::ready(format!("gadget says {}", obj.spec.message));
        if status.announced.as_deref() == Some(obj.spec.message.as_str()) {
            return Ok(ready);
        }
        status.announced = Some(obj.spec.message.clone());
        Ok(ready
            .with_event_as("NewGadget", format!("made gadget '{}'", obj.spec.message))
            .with_metadata("digest", format!("sha256:{generation:04}")))
    }
}

// ----- harness -------------------------------------------------------------------------------

struct Env {
    ns: e2e::TestNamespace,
    metrics_port: u16,
    health_port: u16,
    sink: EventSink,
    seen: Arc<Mutex<Seen>>,
}

async fn env(prefix: &str) -> Result<Env> {
    toolkit_sdk::tls::install_crypto_provider();
    let cluster = e2e::cluster().await?;
    let client = cluster.client().await?;
    e2e::crds::install(&client, &[Widget::crd(), Gadget::crd()]).await?;
    Ok(Env {
        ns: cluster.namespace(prefix).await?,
        metrics_port: e2e::process::free_port()?,
        health_port: e2e::process::free_port()?,
        sink: event_sink().await?,
        seen: Arc::default(),
    })
}

impl Env {
    fn manager(&self) -> Manager {
        let mut options = ControllerOptions::new(NAME);
        options.namespace = Some(self.ns.name.clone());
        options.runtime.watch_all_namespaces = false;
        options.leader_election.enable_leader_election = true;
        options.leader_election.leader_election_lease_duration = Duration::from_secs(4);
        options.leader_election.leader_election_renew_deadline = Duration::from_secs(3);
        options.leader_election.leader_election_retry_period = Duration::from_millis(500);
        options.observability.metrics_addr =
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.metrics_port)).into();
        options.observability.health_addr =
            SocketAddr::from((Ipv4Addr::LOCALHOST, self.health_port)).into();
        options.observability.events_addr = Some(self.sink.url.parse().unwrap());
        Manager::new(options)
            .with_controller(WidgetReconciler)
            .with_controller(GadgetReconciler {
                namespace: self.ns.name.clone(),
                seen: self.seen.clone(),
            })
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ns.client.clone(), &self.ns.name)
    }

    async fn get(&self, port: u16, path: &str) -> Result<(u16, String)> {
        let http = toolkit_sdk::tls::http_client_builder()
            .timeout(Duration::from_secs(2))
            .build()?;
        let resp = http
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await?;
        Ok((resp.status().as_u16(), resp.text().await?))
    }

    async fn wait_ready_endpoint(&self) -> Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((200, body)) = self.get(self.health_port, "/readyz").await {
                return Ok(body);
            }
            if Instant::now() > deadline {
                bail!("/readyz never answered 200");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_ready<K>(&self, name: &str) -> Result<K>
    where
        K: FluxObject<Status = TestStatus>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let obj = self.api::<K>().get(name).await?;
            let ready = obj.status().is_some_and(|s| {
                s.observed_generation == obj.meta().generation.unwrap_or_default()
                    && s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
            });
            if ready {
                return Ok(obj);
            }
            if Instant::now() > deadline {
                bail!("{name} never became Ready: {:?}", obj.status());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn leases(&self) -> Result<Vec<Lease>> {
        Ok(self
            .api::<Lease>()
            .list(&ListParams::default())
            .await?
            .items)
    }

    /// The event payloads received about `name`.
    fn events_about(&self, name: &str) -> Vec<Value> {
        self.sink
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e["involvedObject"]["name"] == name)
            .cloned()
            .collect()
    }

    async fn wait_events_about(&self, name: &str, count: usize) -> Result<Vec<Value>> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let events = self.events_about(name);
            if events.len() >= count {
                // Anything else would arrive right behind: give it the time to.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                return Ok(self.events_about(name));
            }
            if Instant::now() > deadline {
                bail!("expected {count} events about {name}, got {events:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn widget(name: &str, message: &str) -> Widget {
    Widget::new(
        name,
        WidgetSpec {
            message: message.into(),
            suspend: false,
        },
    )
}

fn gadget(name: &str, message: &str, delay_ms: Option<u64>) -> Gadget {
    Gadget::new(
        name,
        GadgetSpec {
            message: message.into(),
            suspend: false,
            delay_ms,
        },
    )
}

struct EventSink {
    url: String,
    received: Arc<Mutex<Vec<Value>>>,
}

async fn event_sink() -> Result<EventSink> {
    use axum::routing::post;
    let received = Arc::new(Mutex::new(Vec::new()));
    let app = axum::Router::new().route(
        "/",
        post({
            let received = received.clone();
            move |body: String| {
                let received = received.clone();
                async move {
                    if let Ok(v) = serde_json::from_str::<Value>(&body) {
                        received.lock().unwrap().push(v);
                    }
                    "ok"
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(EventSink { url, received })
}

fn holder(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

async fn stop(
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), RuntimeError>>,
) -> Result<()> {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(30), task).await???;
    Ok(())
}

// ----- tests ---------------------------------------------------------------------------------

#[tokio::test]
async fn two_kinds_share_one_lease_one_metrics_endpoint_and_one_readyz() -> Result<()> {
    let env = env("manager-two-kinds").await?;
    let manager = env.manager();
    let shutdown = manager.shutdown_token();
    let client = env.ns.client.clone();
    let task = tokio::spawn(manager.run(client));

    // One /readyz with a check per controller.
    let body = env.wait_ready_endpoint().await?;
    assert!(body.contains("[+]widget-controller ok"), "{body}");
    assert!(body.contains("[+]gadget-controller ok"), "{body}");

    env.api::<Widget>()
        .create(&PostParams::default(), &widget("w", "hello"))
        .await?;
    env.api::<Gadget>()
        .create(&PostParams::default(), &gadget("g", "first", None))
        .await?;
    let w: Widget = env.wait_ready("w").await?;
    let g: Gadget = env.wait_ready("g").await?;
    assert_eq!(
        w.finalizers(),
        ["finalizers.fluxcd.io".to_owned()],
        "the widget was reconciled"
    );
    assert_eq!(g.status.unwrap().announced.as_deref(), Some("first"));

    // One Lease for the process, held while both kinds reconcile.
    let leases = env.leases().await?;
    assert_eq!(
        leases.iter().map(ResourceExt::name_any).collect::<Vec<_>>(),
        [lease_name(NAME, "")],
        "exactly one Lease for the whole process"
    );
    let identity = holder(&leases[0]).expect("the Lease is held");

    // One /metrics with both kinds.
    let (status, metrics) = env.get(env.metrics_port, "/metrics").await?;
    assert_eq!(status, 200);
    for kind in ["Widget", "Gadget"] {
        let name = if kind == "Widget" { "w" } else { "g" };
        let series = format!(
            r#"gotk_reconcile_duration_seconds_count{{kind="{kind}",name="{name}",namespace="{}"}} 1"#,
            env.ns.name
        );
        assert!(
            metrics.lines().any(|l| l == series),
            "{series} not in:\n{metrics}"
        );
    }

    // Events: the widget gets the Ready event; the gadget gets its own event instead, and
    // only that one, with the metadata prefixed with the API group.
    let widget_events = env.wait_events_about("w", 1).await?;
    assert_eq!(widget_events.len(), 1, "{widget_events:#?}");
    assert_eq!(widget_events[0]["reason"], "Succeeded");
    assert_eq!(widget_events[0]["message"], "widget says hello");
    assert_eq!(widget_events[0]["reportingController"], NAME);
    let gadget_events = env.wait_events_about("g", 1).await?;
    assert_eq!(gadget_events.len(), 1, "{gadget_events:#?}");
    let new = &gadget_events[0];
    assert_eq!(new["reason"], "NewGadget");
    assert_eq!(new["severity"], "info");
    assert_eq!(new["message"], "made gadget 'first'");
    assert_eq!(new["metadata"][format!("{GROUP}/digest")], "sha256:0001");
    assert_eq!(new["metadata"][format!("{GROUP}/revision")], "gen-1");
    assert_eq!(new["reportingController"], NAME);

    // The same as a Kubernetes Event, with the metadata as annotations.
    let deadline = Instant::now() + Duration::from_secs(10);
    let kube_event = loop {
        let events = env
            .api::<Event>()
            .list(&ListParams::default().fields("involvedObject.name=g"))
            .await?;
        if let Some(e) = events
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("NewGadget"))
        {
            break e;
        }
        assert!(Instant::now() < deadline, "no NewGadget Kubernetes Event");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(kube_event.type_.as_deref(), Some("Normal"));
    assert_eq!(
        kube_event
            .metadata
            .annotations
            .unwrap_or_default()
            .get(&format!("{GROUP}/digest"))
            .map(String::as_str),
        Some("sha256:0001")
    );

    // A new message: exactly one more event, the custom one.
    env.api::<Gadget>()
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"message": "second"}})),
        )
        .await?;
    let gadget_events = env.wait_events_about("g", 2).await?;
    assert_eq!(gadget_events.len(), 2, "{gadget_events:#?}");
    assert_eq!(gadget_events[1]["reason"], "NewGadget");
    assert_eq!(gadget_events[1]["message"], "made gadget 'second'");
    assert_eq!(
        gadget_events[1]["metadata"][format!("{GROUP}/digest")],
        "sha256:0002"
    );

    // Nothing new: no event at all.
    env.api::<Gadget>()
        .patch(
            "g",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}),
            ),
        )
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while env
        .api::<Gadget>()
        .get("g")
        .await?
        .status
        .and_then(|s| s.last_handled_reconcile_at)
        .as_deref()
        != Some("now")
    {
        assert!(Instant::now() < deadline, "the request was not handled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(env.events_about("g").len(), 2);

    // Still one Lease, same holder; released at shutdown.
    let leases = env.leases().await?;
    assert_eq!(leases.len(), 1);
    assert_eq!(holder(&leases[0]).as_deref(), Some(identity.as_str()));
    stop(shutdown, task).await?;
    let leases = env.leases().await?;
    assert_eq!(leases.len(), 1);
    assert_eq!(holder(&leases[0]), None, "the Lease was not released");
    Ok(())
}

#[tokio::test]
async fn the_lease_is_released_only_after_every_controller_drained() -> Result<()> {
    let env = env("manager-drain").await?;
    let manager = env.manager();
    let shutdown = manager.shutdown_token();
    let task = tokio::spawn(manager.run(env.ns.client.clone()));
    env.wait_ready_endpoint().await?;

    // A slow Gadget reconcile is in flight when the shutdown comes; the Widget controller has
    // nothing to do and drains at once.
    env.api::<Gadget>()
        .create(&PostParams::default(), &gadget("slow", "zzz", Some(2000)))
        .await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !env.seen.lock().unwrap().started {
        assert!(Instant::now() < deadline, "the reconcile never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let leases = env.leases().await?;
    let identity = holder(&leases[0]).expect("the Lease is held");
    stop(shutdown, task).await?;

    // The slow reconcile finished (its status is written) while the Lease was still held.
    assert_eq!(
        env.seen.lock().unwrap().holder_at_finish.as_deref(),
        Some(identity.as_str()),
        "the Lease was released before every controller drained"
    );
    let slow = env.api::<Gadget>().get("slow").await?;
    assert_eq!(
        slow.status.and_then(|s| s.announced).as_deref(),
        Some("zzz")
    );
    let leases = env.leases().await?;
    assert_eq!(leases.len(), 1);
    assert_eq!(holder(&leases[0]), None, "released after draining");
    Ok(())
}

#[tokio::test]
async fn a_manager_built_wrong_says_so() -> Result<()> {
    let env = env("manager-wrong").await?;
    let mut options = ControllerOptions::new(NAME);
    options.namespace = Some(env.ns.name.clone());
    let empty = Manager::new(options.clone())
        .run(env.ns.client.clone())
        .await;
    assert!(
        matches!(empty, Err(RuntimeError::NoControllers)),
        "{empty:?}"
    );
    let twice = Manager::new(options)
        .with_controller(WidgetReconciler)
        .with_controller(WidgetReconciler)
        .run(env.ns.client.clone())
        .await;
    match twice {
        Err(RuntimeError::DuplicateKind { kind }) => assert_eq!(kind, "Widget"),
        other => panic!("{other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn objects_are_reconciled_on_request_from_outside_their_watch() -> Result<()> {
    let env = env("manager-requested").await?;
    let (requests, received) = futures::channel::mpsc::unbounded();
    let mut options = ControllerOptions::new(NAME);
    options.namespace = Some(env.ns.name.clone());
    options.runtime.watch_all_namespaces = false;
    options.observability.metrics_addr =
        SocketAddr::from((Ipv4Addr::LOCALHOST, env.metrics_port)).into();
    options.observability.health_addr =
        SocketAddr::from((Ipv4Addr::LOCALHOST, env.health_port)).into();
    let manager = Manager::new(options).with_controller_requested_by(
        GadgetReconciler {
            namespace: env.ns.name.clone(),
            seen: env.seen.clone(),
        },
        received,
    );
    let shutdown = manager.shutdown_token();
    let task = tokio::spawn(manager.run(env.ns.client.clone()));
    env.wait_ready_endpoint().await?;
    env.api::<Gadget>()
        .create(&PostParams::default(), &gadget("g", "hi", None))
        .await?;
    let before = env.wait_ready::<Gadget>("g").await?;
    let reconciles = |metrics: &str| -> f64 {
        metrics
            .lines()
            .filter(|l| {
                l.starts_with("gotk_reconcile_duration_seconds_count")
                    && l.contains("kind=\"Gadget\"")
                    && l.contains("name=\"g\"")
            })
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    let count = reconciles(&env.get(env.metrics_port, "/metrics").await?.1);
    assert!(count >= 1.0);

    // A request for an object the watch does not know is dropped without harm.
    requests.unbounded_send(ObjectRef::new("missing").within(&env.ns.name))?;
    requests.unbounded_send(ObjectRef::new("g").within(&env.ns.name))?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while reconciles(&env.get(env.metrics_port, "/metrics").await?.1) < count + 1.0 {
        assert!(Instant::now() < deadline, "the request was not honoured");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Nothing was written to the object to make it happen.
    let after = env.api::<Gadget>().get("g").await?;
    assert_eq!(after.metadata.annotations, before.metadata.annotations);
    assert_eq!(
        after
            .status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.clone()),
        before
            .status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.clone())
    );
    stop(shutdown, task).await?;
    Ok(())
}
