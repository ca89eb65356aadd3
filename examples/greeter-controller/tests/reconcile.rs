//! The greeter controller against a real kube-apiserver: one namespace and one controller
//! process per test.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams};
use serde_json::json;
use support::{cond, env, event_sink, greeting, is_ready, observed_generation};

#[tokio::test]
async fn greeting_becomes_a_ready_configmap_without_reconcile_loops() -> anyhow::Result<()> {
    let env = env("greet-ready").await?;
    let mut controller = env.controller(&[])?;
    controller.wait_ready().await?;

    env.create(&greeting("hello", "Hello, world")).await?;
    let g = env
        .wait_greeting("hello", &controller, "Ready=True", is_ready)
        .await?;
    assert_eq!(cond(&g, "Ready").unwrap().1, "Succeeded");
    assert_eq!(cond(&g, "Reconciling"), None);
    assert_eq!(cond(&g, "Stalled"), None);
    assert_eq!(observed_generation(&g), 1);
    assert_eq!(
        g.metadata.finalizers.as_deref(),
        Some(&["finalizers.fluxcd.io".to_owned()][..])
    );
    assert_eq!(
        g.status
            .as_ref()
            .unwrap()
            .config_map_ref
            .as_ref()
            .unwrap()
            .name,
        "hello-greeting"
    );

    let cm = env.config_maps.get("hello-greeting").await?;
    assert_eq!(
        cm.data.as_ref().unwrap().get("message").map(String::as_str),
        Some("Hello, world")
    );
    let owner = &cm.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.kind, "Greeting");
    assert_eq!(Some(&owner.uid), g.metadata.uid.as_ref());
    assert_eq!(owner.controller, Some(true));

    // The controller's own writes (finalizer, status) must not trigger more reconciles.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(controller.reconcile_count(&env.ns.name, "hello").await?, 1);

    // A spec change reconciles at once and bumps observedGeneration.
    env.patch("hello", json!({"spec": {"message": "Hello again"}}))
        .await?;
    let g = env
        .wait_greeting("hello", &controller, "generation 2 observed", |g| {
            observed_generation(g) == 2
        })
        .await?;
    assert!(is_ready(&g));
    assert_eq!(
        env.config_map_message("hello-greeting").await?.as_deref(),
        Some("Hello again")
    );
    assert_eq!(controller.reconcile_count(&env.ns.name, "hello").await?, 2);
    Ok(())
}

#[tokio::test]
async fn empty_message_stalls_until_the_spec_is_fixed() -> anyhow::Result<()> {
    let env = env("greet-stalled").await?;
    let mut controller = env.controller(&["--min-retry-delay=100ms"])?;
    controller.wait_ready().await?;

    env.create(&greeting("empty", "")).await?;
    let g = env
        .wait_greeting("empty", &controller, "Stalled=True", |g| {
            cond(g, "Stalled").is_some()
        })
        .await?;
    assert_eq!(
        cond(&g, "Stalled"),
        Some(("True".into(), "InvalidSpec".into()))
    );
    assert_eq!(
        cond(&g, "Ready"),
        Some(("False".into(), "InvalidSpec".into()))
    );
    assert_eq!(cond(&g, "Reconciling"), None);
    assert_eq!(
        support::condition(&g, "Ready").unwrap().message,
        "spec.message must not be empty"
    );
    // Stalled is final for this generation: observed, and not retried.
    assert_eq!(observed_generation(&g), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(controller.reconcile_count(&env.ns.name, "empty").await?, 1);
    assert_eq!(env.config_map_message("empty-greeting").await?, None);

    env.patch("empty", json!({"spec": {"message": "fixed"}}))
        .await?;
    let g = env
        .wait_greeting("empty", &controller, "Ready=True after the fix", is_ready)
        .await?;
    assert_eq!(cond(&g, "Stalled"), None);
    assert_eq!(observed_generation(&g), 2);
    assert_eq!(
        env.config_map_message("empty-greeting").await?.as_deref(),
        Some("fixed")
    );
    Ok(())
}

#[tokio::test]
async fn missing_dependency_waits_then_succeeds_when_it_appears() -> anyhow::Result<()> {
    let env = env("greet-deps").await?;
    let mut controller = env.controller(&["--requeue-dependency=1s"])?;
    controller.wait_ready().await?;

    let mut g = greeting("dependent", "after settings");
    g.spec.depends_on = Some("settings".into());
    env.create(&g).await?;
    let g = env
        .wait_greeting("dependent", &controller, "DependencyNotReady", |g| {
            cond(g, "Ready").is_some()
        })
        .await?;
    assert_eq!(
        cond(&g, "Ready"),
        Some(("False".into(), "DependencyNotReady".into()))
    );
    assert_eq!(
        cond(&g, "Reconciling"),
        Some(("True".into(), "ProgressingWithRetry".into()))
    );
    assert_eq!(cond(&g, "Stalled"), None);
    assert_eq!(observed_generation(&g), -1);
    assert_eq!(env.config_map_message("dependent-greeting").await?, None);

    // Only the dependency appears; the Greeting is not touched.
    let settings = ConfigMap {
        metadata: ObjectMeta {
            name: Some("settings".into()),
            ..ObjectMeta::default()
        },
        ..ConfigMap::default()
    };
    env.config_maps
        .create(&PostParams::default(), &settings)
        .await?;
    let g = env
        .wait_greeting(
            "dependent",
            &controller,
            "Ready after the dependency",
            is_ready,
        )
        .await?;
    assert_eq!(cond(&g, "Reconciling"), None);
    assert_eq!(
        env.config_map_message("dependent-greeting")
            .await?
            .as_deref(),
        Some("after settings")
    );
    Ok(())
}

#[tokio::test]
async fn transient_failures_are_retried_at_the_retry_interval() -> anyhow::Result<()> {
    let env = env("greet-retry").await?;
    let mut controller = env.controller(&["--min-retry-delay=1h", "--max-retry-delay=1h"])?;
    controller.wait_ready().await?;

    // The API server rejects the ConfigMap name, every time.
    let mut g = greeting("rejected", "hi");
    g.spec.config_map_name = Some("Not_A_Valid_Name".into());
    g.spec.retry_interval = Some("500ms".parse()?);
    env.create(&g).await?;
    let g = env
        .wait_greeting("rejected", &controller, "ApplyFailed", |g| {
            cond(g, "Ready").is_some()
        })
        .await?;
    assert_eq!(
        cond(&g, "Ready"),
        Some(("False".into(), "ApplyFailed".into()))
    );
    assert_eq!(
        cond(&g, "Reconciling"),
        Some(("True".into(), "ProgressingWithRetry".into()))
    );
    assert_eq!(cond(&g, "Stalled"), None);
    let message = &support::condition(&g, "Ready").unwrap().message;
    assert!(
        message.starts_with(&format!(
            "cannot apply ConfigMap '{}/Not_A_Valid_Name': ",
            env.ns.name
        )),
        "{message}"
    );
    // spec.retryInterval (500ms) wins over the 1h backoff: several attempts in 3s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let attempts = controller.reconcile_count(&env.ns.name, "rejected").await?;
    assert!((3..=10).contains(&attempts), "{attempts} attempts in 3s");
    Ok(())
}

#[tokio::test]
async fn suspended_greeting_is_left_alone_until_resumed() -> anyhow::Result<()> {
    let env = env("greet-suspend").await?;
    let mut controller = env.controller(&[])?;
    controller.wait_ready().await?;

    env.create(&greeting("paused", "before")).await?;
    let before = env
        .wait_greeting("paused", &controller, "Ready", is_ready)
        .await?;

    env.patch(
        "paused",
        json!({"spec": {"suspend": true, "message": "during"}}),
    )
    .await?;
    controller
        .wait_log("reconciliation is suspended", Duration::from_secs(10))
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        env.config_map_message("paused-greeting").await?.as_deref(),
        Some("before"),
        "a suspended Greeting must not be applied"
    );
    let during = env.greetings.get("paused").await?;
    assert_eq!(
        during.status, before.status,
        "status is kept while suspended"
    );

    env.patch("paused", json!({"spec": {"suspend": false}}))
        .await?;
    let after = env
        .wait_greeting("paused", &controller, "Ready after resume", is_ready)
        .await?;
    assert_eq!(observed_generation(&after), 3);
    assert_eq!(
        env.config_map_message("paused-greeting").await?.as_deref(),
        Some("during")
    );
    Ok(())
}

#[tokio::test]
async fn requested_at_reconciles_at_once_and_is_echoed() -> anyhow::Result<()> {
    let env = env("greet-request").await?;
    let mut controller = env.controller(&[])?;
    controller.wait_ready().await?;

    let mut g = greeting("poke", "hi");
    g.spec.interval = "1h".parse()?;
    env.create(&g).await?;
    env.wait_greeting("poke", &controller, "Ready", is_ready)
        .await?;

    // Drift that the controller does not watch: only the interval or a request repairs it.
    env.config_maps
        .delete("poke-greeting", &DeleteParams::default())
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(env.config_map_message("poke-greeting").await?, None);

    env.patch(
        "poke",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2026-01-01T00:00:00Z"}}}),
    )
    .await?;
    let g = env
        .wait_greeting("poke", &controller, "lastHandledReconcileAt echoed", |g| {
            g.status
                .as_ref()
                .and_then(|s| s.last_handled_reconcile_at.as_deref())
                == Some("2026-01-01T00:00:00Z")
        })
        .await?;
    assert!(is_ready(&g));
    assert_eq!(
        env.config_map_message("poke-greeting").await?.as_deref(),
        Some("hi")
    );
    assert_eq!(
        observed_generation(&g),
        1,
        "a request is not a new generation"
    );
    Ok(())
}

#[tokio::test]
async fn events_are_recorded_and_forwarded_on_change_only() -> anyhow::Result<()> {
    let env = env("greet-events").await?;
    let sink = event_sink().await?;
    let mut controller = env.controller(&[&format!("--events-addr={}", sink.url)])?;
    controller.wait_ready().await?;

    env.create(&greeting("evented", "")).await?;
    let stalled = sink
        .wait_for("InvalidSpec", |e| e["reason"] == "InvalidSpec")
        .await?;
    assert_eq!(stalled["severity"], "error");
    assert_eq!(stalled["message"], "spec.message must not be empty");
    assert_eq!(stalled["involvedObject"]["kind"], "Greeting");
    assert_eq!(stalled["involvedObject"]["name"], "evented");
    assert_eq!(stalled["involvedObject"]["namespace"], env.ns.name.as_str());
    assert_eq!(
        stalled["involvedObject"]["apiVersion"],
        "example.ferroflux.dev/v1"
    );
    assert_eq!(stalled["reportingController"], "greeter-controller");

    env.patch("evented", json!({"spec": {"message": "now valid"}}))
        .await?;
    let ready = sink
        .wait_for("Succeeded", |e| e["reason"] == "Succeeded")
        .await?;
    assert_eq!(ready["severity"], "info");
    assert_eq!(
        ready["message"],
        format!(
            "Greeting written to ConfigMap '{}/evented-greeting'",
            env.ns.name
        )
    );
    assert!(
        ready["metadata"]["example.ferroflux.dev/revision"].is_string(),
        "revision metadata: {ready}"
    );

    // The same events exist as Kubernetes Events on the Greeting.
    let events: Api<Event> = Api::namespaced(env.ns.client.clone(), &env.ns.name);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let list = events
            .list(&ListParams::default().fields("involvedObject.name=evented"))
            .await?;
        let found = |reason: &str, type_: &str| {
            list.items
                .iter()
                .any(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some(type_))
        };
        if found("InvalidSpec", "Warning") && found("Succeeded", "Normal") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Kubernetes Events missing: {:?}",
            list.items
                .iter()
                .map(|e| (&e.reason, &e.type_))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A reconcile that changes nothing in Ready emits nothing.
    let before = sink.received.lock().unwrap().len();
    env.patch(
        "evented",
        json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "again"}}}),
    )
    .await?;
    env.wait_greeting("evented", &controller, "request handled", |g| {
        g.status
            .as_ref()
            .and_then(|s| s.last_handled_reconcile_at.as_deref())
            == Some("again")
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(sink.received.lock().unwrap().len(), before);
    Ok(())
}

#[tokio::test]
async fn metrics_observe_each_reconcile_of_the_object() -> anyhow::Result<()> {
    let env = env("greet-metrics").await?;
    let mut controller = env.controller(&[])?;
    controller.wait_ready().await?;
    env.create(&greeting("measured", "hi")).await?;
    env.wait_greeting("measured", &controller, "Ready", is_ready)
        .await?;
    let text = controller.metrics().await?;
    let series = format!(
        r#"gotk_reconcile_duration_seconds_bucket{{le="+Inf",kind="Greeting",name="measured",namespace="{}"}} 1"#,
        env.ns.name
    );
    assert!(
        text.lines().any(|l| l == series),
        "{series} not in:\n{text}"
    );
    Ok(())
}

#[tokio::test]
async fn watch_label_selector_limits_what_is_reconciled() -> anyhow::Result<()> {
    let env = env("greet-shard").await?;
    let mut controller =
        env.controller(&["--watch-label-selector=example.ferroflux.dev/shard=a"])?;
    controller.wait_ready().await?;

    let mut inside = greeting("inside", "mine");
    inside.metadata.labels = Some([("example.ferroflux.dev/shard".into(), "a".into())].into());
    env.create(&greeting("outside", "not mine")).await?;
    env.create(&inside).await?;
    env.wait_greeting("inside", &controller, "Ready", is_ready)
        .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let outside = env.greetings.get("outside").await?;
    assert_eq!(
        outside.status, None,
        "an object outside the selector was reconciled"
    );
    assert_eq!(outside.metadata.finalizers, None);
    assert_eq!(env.config_map_message("outside-greeting").await?, None);
    Ok(())
}

#[tokio::test]
async fn deleting_a_greeting_cleans_up_its_configmap() -> anyhow::Result<()> {
    let env = env("greet-delete").await?;
    let mut controller = env.controller(&[])?;
    controller.wait_ready().await?;
    env.create(&greeting("bye", "so long")).await?;
    env.wait_greeting("bye", &controller, "Ready", is_ready)
        .await?;
    assert!(env.config_map_message("bye-greeting").await?.is_some());

    env.greetings
        .delete("bye", &DeleteParams::default())
        .await?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while env.greetings.get_opt("bye").await?.is_some() {
        assert!(
            std::time::Instant::now() < deadline,
            "Greeting not finalized:\n{}",
            controller.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(env.config_map_message("bye-greeting").await?, None);
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_the_controller_cleanly() -> anyhow::Result<()> {
    let env = env("greet-sigterm").await?;
    let mut controller = env.controller(&[])?;
    controller.wait_ready().await?;
    controller.terminate();
    let status = controller.wait_exit(Duration::from_secs(10)).await?;
    assert!(
        status.success(),
        "exit status {status}:\n{}",
        controller.log_tail(20)
    );
    Ok(())
}
