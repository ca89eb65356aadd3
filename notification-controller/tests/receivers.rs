//! Receivers against a real kube-apiserver: the reconciler publishes the webhook path, and the
//! webhook server annotates GitRepositories when (and only when) a request passes its checks.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use notification_controller::api::v1::{Receiver, webhook_path};
use notification_controller::controller::receiver::ReceiverReconciler;
use notification_controller::controller::secret_changes::receivers_of_changed_secrets;
use notification_controller::receiver::{ReceiverServerConfig, ReceiverState, serve};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use toolkit_sdk::conditions;
use toolkit_sdk::runtime::{ControllerOptions, Manager};

const WAIT: Duration = Duration::from_secs(30);
const TOKEN: &str = "webhook-s3cret";
const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// A namespace with a Receiver reconciler and a webhook server watching only it.
struct Env {
    ns: String,
    client: kube::Client,
    base: String,
    http: reqwest::Client,
    state: ReceiverState,
    shutdown: Vec<CancellationToken>,
}

impl Drop for Env {
    fn drop(&mut self) {
        for token in &self.shutdown {
            token.cancel();
        }
    }
}

async fn env(prefix: &str) -> Result<Env> {
    env_with(prefix, |_| {}).await
}

async fn env_with(prefix: &str, configure: impl FnOnce(&mut ReceiverServerConfig)) -> Result<Env> {
    toolkit_sdk::tls::install_crypto_provider();
    let _ = toolkit_sdk::logging::init_with(
        toolkit_sdk::flags::LogLevel::Info,
        toolkit_sdk::flags::LogEncoding::Console,
    );
    let cluster = e2e::cluster().await?;
    let client = cluster.client().await?;
    e2e::crds::install(&client, &[Receiver::flux_crd()]).await?;
    let ns = cluster.namespace(prefix).await?.name;

    let mut options = ControllerOptions::new("notification-controller");
    options.namespace = Some(ns.clone());
    options.runtime.watch_all_namespaces = false;
    options.runtime.min_retry_delay = Duration::from_millis(200);
    options.runtime.max_retry_delay = Duration::from_secs(1);
    options.observability.metrics_addr = "127.0.0.1:0".parse().unwrap();
    options.observability.health_addr = "127.0.0.1:0".parse().unwrap();
    // Wired as the controller binary wires it: Secret changes request reconciles.
    let controller = Manager::new(options).with_controller_requested_by(
        ReceiverReconciler::new(),
        receivers_of_changed_secrets(client.clone(), Some(ns.clone()), None),
    );
    let controller_stop = controller.shutdown_token();
    tokio::spawn(controller.run(client.clone()));

    let mut config = ReceiverServerConfig::new("notification-controller");
    config.namespace = Some(ns.clone());
    configure(&mut config);
    let state = ReceiverState::new(client.clone(), config)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server_stop = CancellationToken::new();
    tokio::spawn(serve(listener, state.clone(), server_stop.clone()));
    let deadline = Instant::now() + WAIT;
    while !state.is_synced() {
        if Instant::now() > deadline {
            bail!("the receiver index did not sync");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Env {
        ns,
        client,
        base,
        http: reqwest::Client::new(),
        state,
        shutdown: vec![controller_stop, server_stop],
    })
}

fn git_repository_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("source.toolkit.fluxcd.io", "v1", "GitRepository"),
        "gitrepositories",
    )
}

impl Env {
    fn receivers(&self) -> Api<Receiver> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn git_repositories(&self) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.ns, &git_repository_resource())
    }

    async fn secret(&self, name: &str, data: &[(&str, &str)]) -> Result<()> {
        let data: BTreeMap<&str, &str> = data.iter().copied().collect();
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.ns},
            "stringData": data,
        }))?;
        Api::<Secret>::namespaced(self.client.clone(), &self.ns)
            .create(&PostParams::default(), &secret)
            .await?;
        Ok(())
    }

    async fn git_repository(&self, name: &str, labels: &[(&str, &str)]) -> Result<()> {
        let labels: BTreeMap<&str, &str> = labels.iter().copied().collect();
        let mut object = DynamicObject::new(name, &git_repository_resource()).within(&self.ns);
        object.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        object.data = json!({"spec": {"url": "https://example.com/org/repo", "interval": "1h"}});
        self.git_repositories()
            .create(&PostParams::default(), &object)
            .await?;
        Ok(())
    }

    async fn requested_at(&self, name: &str) -> Result<Option<String>> {
        let object = self.git_repositories().get(name).await?;
        Ok(object
            .metadata
            .annotations
            .and_then(|mut a| a.remove(REQUESTED_AT)))
    }

    /// Creates a Receiver from its spec and waits until it is Ready; returns its webhook URL.
    async fn receiver(&self, name: &str, spec: Value) -> Result<String> {
        let receiver: Receiver = serde_json::from_value(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": spec,
        }))?;
        self.receivers()
            .create(&PostParams::default(), &receiver)
            .await?;
        let ready = self
            .wait_receiver(name, "Ready=True", |r| {
                r.status
                    .as_ref()
                    .is_some_and(|s| conditions::is_ready(&s.conditions))
            })
            .await?;
        let path = ready.webhook_path().unwrap().to_owned();
        // The server sees the path through its own watch; wait until it does.
        let deadline = Instant::now() + WAIT;
        while self.state.index().get(&path).is_none() {
            if Instant::now() > deadline {
                bail!("the webhook server never served {path}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(format!("{}{path}", self.base))
    }

    async fn wait_receiver(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&Receiver) -> bool,
    ) -> Result<Receiver> {
        let deadline = Instant::now() + WAIT;
        loop {
            let receiver = self.receivers().get(name).await?;
            if check(&receiver) {
                return Ok(receiver);
            }
            if Instant::now() > deadline {
                bail!(
                    "Receiver {name} never reached {what}; status: {}",
                    serde_json::to_string_pretty(&receiver.status)?
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn hmac_sha256(key: &[u8], body: &[u8]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn github_spec(events: &[&str]) -> Value {
    json!({
        "type": "github",
        "events": events,
        "secretRef": {"name": "webhook-token"},
        "resources": [{"kind": "GitRepository", "name": "app"}],
    })
}

#[tokio::test]
async fn ready_receiver_publishes_flux_webhook_path() -> Result<()> {
    let env = env("recv-path").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.receiver("github", github_spec(&["push"])).await?;
    let receiver = env.receivers().get("github").await?;
    let status = receiver.status.unwrap();
    let expected = webhook_path(TOKEN.as_bytes(), "github", &env.ns);
    assert_eq!(status.webhook_path.as_deref(), Some(expected.as_str()));
    let ready = conditions::get(&status.conditions, "Ready").unwrap();
    assert_eq!(ready.reason, "Succeeded");
    assert_eq!(
        ready.message,
        format!("Receiver initialized for path: {expected}")
    );
    assert_eq!(status.observed_generation, 1);
    Ok(())
}

#[tokio::test]
async fn missing_secret_or_token_key_is_not_ready_until_fixed() -> Result<()> {
    let env = env("recv-secret").await?;
    let receiver: Receiver = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "r", "namespace": env.ns},
        "spec": github_spec(&[]),
    }))?;
    env.receivers()
        .create(&PostParams::default(), &receiver)
        .await?;
    let failed = env
        .wait_receiver("r", "Ready=False TokenNotFound", |r| {
            r.status.as_ref().is_some_and(|s| {
                conditions::reason(&s.conditions, "Ready") == Some("TokenNotFound")
            })
        })
        .await?;
    let status = failed.status.unwrap();
    assert!(conditions::is_false(&status.conditions, "Ready"));
    let message = conditions::message(&status.conditions, "Ready").unwrap();
    assert!(
        message.contains(&format!("'{}/webhook-token'", env.ns)),
        "{message}"
    );
    assert_eq!(status.webhook_path, None);

    // A Secret without the `token` key names the missing key.
    env.secret("webhook-token", &[("other", "x")]).await?;
    env.wait_receiver("r", "a message about the token key", |r| {
        r.status.as_ref().is_some_and(|s| {
            conditions::message(&s.conditions, "Ready")
                .is_some_and(|m| m.contains("required field 'token'"))
        })
    })
    .await?;

    // Adding the key makes it Ready on the next retry.
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .patch(
            "webhook-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": TOKEN}})),
        )
        .await?;
    let ready = env
        .wait_receiver("r", "Ready=True", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| conditions::is_ready(&s.conditions))
        })
        .await?;
    assert_eq!(
        ready.webhook_path(),
        Some(webhook_path(TOKEN.as_bytes(), "r", &env.ns).as_str())
    );
    Ok(())
}

#[tokio::test]
async fn a_rotated_token_moves_the_webhook_path_without_waiting_for_the_interval() -> Result<()> {
    let env = env("recv-rotate").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    let mut spec = github_spec(&["push"]);
    spec["interval"] = json!("1h");
    let old_url = env.receiver("github", spec).await?;
    let old_path = webhook_path(TOKEN.as_bytes(), "github", &env.ns);
    assert!(old_url.ends_with(&old_path));

    // Only the Secret changes; the Receiver's next interval is an hour away.
    let rotated = "a-new-token-after-rotation";
    Api::<Secret>::namespaced(env.client.clone(), &env.ns)
        .patch(
            "webhook-token",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": rotated}})),
        )
        .await?;
    let new_path = webhook_path(rotated.as_bytes(), "github", &env.ns);
    let started = Instant::now();
    env.wait_receiver("github", "the rotated token's path", |r| {
        r.webhook_path() == Some(new_path.as_str())
    })
    .await?;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    // The server follows: the new path is served, the old one is gone.
    let deadline = Instant::now() + WAIT;
    while env.state.index().get(&new_path).is_none() || env.state.index().get(&old_path).is_some() {
        if Instant::now() > deadline {
            bail!("the webhook server did not move to {new_path}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let response = env
        .http
        .post(&old_url)
        .header("x-github-event", "ping")
        .body("{}")
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    Ok(())
}

#[tokio::test]
async fn github_webhook_annotates_only_when_signed_and_accepted() -> Result<()> {
    let env = env("recv-github").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.git_repository("app", &[]).await?;
    let url = env.receiver("github", github_spec(&["push"])).await?;
    let body = br#"{"ref":"refs/heads/main","after":"0123abcd"}"#.to_vec();
    let signature = format!("sha256={}", hmac_sha256(TOKEN.as_bytes(), &body));
    let post = |event: &'static str, signature: String, body: Vec<u8>| {
        env.http
            .post(&url)
            .header("content-type", "application/json")
            .header("x-github-event", event)
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
    };

    // Ping: accepted, nothing reconciled.
    let response = post("ping", signature.clone(), body.clone()).await?;
    assert_eq!(response.status(), 200);
    assert_eq!(env.requested_at("app").await?, None);

    // Wrong signature: refused, nothing reconciled.
    let forged = format!("sha256={}", hmac_sha256(b"guess", &body));
    let response = post("push", forged, body.clone()).await?;
    assert_eq!(response.status(), 401);
    let text = response.text().await?;
    assert!(!text.contains(TOKEN));
    assert_eq!(env.requested_at("app").await?, None);

    // An event the Receiver does not accept: refused.
    let response = post("issues", signature.clone(), body.clone()).await?;
    assert_eq!(response.status(), 400);
    assert_eq!(env.requested_at("app").await?, None);

    // A signed push: the GitRepository is asked to reconcile.
    let before = jiff::Timestamp::now();
    let response = post("push", signature.clone(), body.clone()).await?;
    assert_eq!(response.status(), 200);
    let first = env.requested_at("app").await?.expect("requestedAt set");
    let stamp: jiff::Timestamp = first.parse()?;
    assert!(stamp >= before, "{first} is not the time of the request");

    // Every push sets a new value, so each one triggers a reconcile.
    let response = post("push", signature, body).await?;
    assert_eq!(response.status(), 200);
    let second = env.requested_at("app").await?.unwrap();
    assert_ne!(first, second);
    Ok(())
}

#[tokio::test]
async fn unknown_paths_oversized_bodies_and_suspended_receivers() -> Result<()> {
    let env = env("recv-http").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.git_repository("app", &[]).await?;
    let url = env
        .receiver(
            "generic",
            json!({
                "type": "generic",
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;

    // Unknown paths: 404 with the same empty body as any other unknown route.
    let unknown = format!("{}/hook/{}", env.base, "0".repeat(64));
    let response = env.http.post(&unknown).body("{}").send().await?;
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await?, "");
    let response = env
        .http
        .post(format!("{}/elsewhere", env.base))
        .send()
        .await?;
    assert_eq!(response.status(), 404);
    assert_eq!(response.text().await?, "");

    // A body over 3 MiB: 413, nothing reconciled.
    let big = vec![b' '; 3 * 1024 * 1024 + 1];
    let response = env.http.post(&url).body(big).send().await?;
    assert_eq!(response.status(), 413);
    assert_eq!(env.requested_at("app").await?, None);

    // A generic receiver needs nothing but the path.
    let response = env.http.post(&url).send().await?;
    assert_eq!(response.status(), 200);
    assert!(env.requested_at("app").await?.is_some());

    // Suspended: 503.
    env.receivers()
        .patch(
            "generic",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"suspend": true}})),
        )
        .await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let status = env.http.post(&url).send().await?.status();
        if status == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "still answered {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

#[tokio::test]
async fn gitlab_token_and_event_filter() -> Result<()> {
    let env = env("recv-gitlab").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.git_repository("app", &[]).await?;
    let url = env
        .receiver(
            "gitlab",
            json!({
                "type": "gitlab",
                "events": ["Push Hook"],
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;
    let post = |token: &'static str, event: &'static str| {
        env.http
            .post(&url)
            .header("x-gitlab-token", token)
            .header("x-gitlab-event", event)
            .body("{}")
            .send()
    };
    assert_eq!(post("wrong", "Push Hook").await?.status(), 401);
    assert_eq!(post(TOKEN, "Tag Push Hook").await?.status(), 400);
    assert_eq!(env.requested_at("app").await?, None);
    assert_eq!(post(TOKEN, "push hook").await?.status(), 200);
    assert!(env.requested_at("app").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn generic_hmac_signature() -> Result<()> {
    let env = env("recv-hmac").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.git_repository("app", &[]).await?;
    let url = env
        .receiver(
            "hmac",
            json!({
                "type": "generic-hmac",
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;
    let body = b"{\"image\":\"ghcr.io/org/app:v2\"}".to_vec();
    let response = env
        .http
        .post(&url)
        .header(
            "x-signature",
            format!("sha256={}", hmac_sha256(b"no", &body)),
        )
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(response.status(), 401);
    let response = env.http.post(&url).body(body.clone()).send().await?;
    assert_eq!(response.status(), 401);
    assert_eq!(env.requested_at("app").await?, None);
    let response = env
        .http
        .post(&url)
        .header(
            "x-signature",
            format!("sha256={}", hmac_sha256(TOKEN.as_bytes(), &body)),
        )
        .body(body)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert!(env.requested_at("app").await?.is_some());
    Ok(())
}

#[tokio::test]
async fn wildcard_targets_only_labelled_objects_and_filter_narrows() -> Result<()> {
    let env = env("recv-labels").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.git_repository("frontend", &[("team", "web")]).await?;
    env.git_repository("backend", &[("team", "web")]).await?;
    env.git_repository("other", &[("team", "data")]).await?;
    env.git_repository("plain", &[]).await?;
    let url = env
        .receiver(
            "labels",
            json!({
                "type": "generic",
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "web"}}],
            }),
        )
        .await?;
    assert_eq!(env.http.post(&url).send().await?.status(), 200);
    assert!(env.requested_at("frontend").await?.is_some());
    assert!(env.requested_at("backend").await?.is_some());
    assert_eq!(env.requested_at("other").await?, None);
    assert_eq!(env.requested_at("plain").await?, None);

    // resourceFilter: only the object the payload names.
    let filtered = env
        .receiver(
            "filtered",
            json!({
                "type": "generic",
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "data"}},
                              {"kind": "GitRepository", "name": "plain"}],
                "resourceFilter": "res.metadata.name == req.target",
            }),
        )
        .await?;
    let response = env
        .http
        .post(&filtered)
        .header("content-type", "application/json")
        .body(r#"{"target":"plain"}"#)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert!(env.requested_at("plain").await?.is_some());
    assert_eq!(env.requested_at("other").await?, None);
    Ok(())
}

#[tokio::test]
async fn invalid_filter_stalls_and_missing_target_answers_500() -> Result<()> {
    let env = env("recv-errors").await?;
    env.secret("webhook-token", &[("token", TOKEN)]).await?;
    env.git_repository("app", &[]).await?;

    let receiver: Receiver = serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "bad-filter", "namespace": env.ns},
        "spec": {
            "type": "generic",
            "secretRef": {"name": "webhook-token"},
            "resources": [{"kind": "GitRepository", "name": "app"}],
            "resourceFilter": "res.metadata.name ==",
        },
    }))?;
    env.receivers()
        .create(&PostParams::default(), &receiver)
        .await?;
    let stalled = env
        .wait_receiver("bad-filter", "Stalled", |r| {
            r.status
                .as_ref()
                .is_some_and(|s| conditions::is_stalled(&s.conditions))
        })
        .await?;
    let status = stalled.status.unwrap();
    assert_eq!(
        conditions::reason(&status.conditions, "Ready"),
        Some("InvalidCELExpression")
    );

    // One target missing: the other is still annotated, and the answer says it failed.
    let url = env
        .receiver(
            "partial",
            json!({
                "type": "generic",
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "missing"},
                              {"kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;
    let response = env.http.post(&url).send().await?;
    assert_eq!(response.status(), 500);
    assert!(env.requested_at("app").await?.is_some());
    Ok(())
}

/// The `gcr` type with a key set served on loopback in place of Google's.
#[tokio::test]
async fn gcr_checks_the_google_signed_token() -> Result<()> {
    use ring::rand::SystemRandom;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair, RsaPublicKeyComponents};

    let der = base64::engine::general_purpose::STANDARD.decode(TEST_RSA_PKCS1.replace('\n', ""))?;
    let key = RsaKeyPair::from_der(&der).map_err(|e| anyhow::anyhow!("{e}"))?;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let public = RsaPublicKeyComponents::<Vec<u8>>::from(key.public());
    let jwks = json!({"keys": [{
        "kid": "k1", "kty": "RSA", "alg": "RS256", "use": "sig",
        "n": b64(&public.n),
        "e": b64(&public.e),
    }]});
    let certs = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let certs_url = format!("http://{}/certs", certs.local_addr()?);
    let app = axum::Router::new().route(
        "/certs",
        axum::routing::get(move || {
            let body = jwks.to_string();
            async move { body }
        }),
    );
    tokio::spawn(async move { axum::serve(certs, app).await });

    let sign = |claims: Value| {
        let header = b64(br#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#);
        let payload = b64(claims.to_string().as_bytes());
        let input = format!("{header}.{payload}");
        let mut signature = vec![0; key.public().modulus_len()];
        key.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut signature,
        )
        .unwrap();
        format!("{input}.{}", b64(&signature))
    };
    let claims = |email: &str, aud: &str| {
        json!({
            "iss": "https://accounts.google.com", "aud": aud, "email": email,
            "email_verified": true, "exp": jiff::Timestamp::now().as_second() + 600,
        })
    };

    let env = env_with("recv-gcr", |c| c.google_certs_url = certs_url.clone()).await?;
    env.secret(
        "webhook-token",
        &[
            ("token", TOKEN),
            ("email", "pusher@p.iam.gserviceaccount.com"),
            ("audience", "https://flux.example.com"),
        ],
    )
    .await?;
    env.git_repository("app", &[]).await?;
    let url = env
        .receiver(
            "gcr",
            json!({
                "type": "gcr",
                "secretRef": {"name": "webhook-token"},
                "resources": [{"kind": "GitRepository", "name": "app"}],
            }),
        )
        .await?;
    let data = base64::engine::general_purpose::STANDARD.encode(
        br#"{"action":"INSERT","digest":"gcr.io/p/app@sha256:ab","tag":"gcr.io/p/app:v1"}"#,
    );
    let body =
        json!({"message": {"data": data, "messageId": "1"}, "subscription": "s"}).to_string();
    let post = |token: String| {
        env.http
            .post(&url)
            .header("authorization", format!("Bearer {token}"))
            .body(body.clone())
            .send()
    };

    let wrong_audience = sign(claims("pusher@p.iam.gserviceaccount.com", "https://other"));
    assert_eq!(post(wrong_audience).await?.status(), 401);
    let wrong_email = sign(claims("someone@else.com", "https://flux.example.com"));
    assert_eq!(post(wrong_email).await?.status(), 401);
    let good = sign(claims(
        "pusher@p.iam.gserviceaccount.com",
        "https://flux.example.com",
    ));
    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    parts[1] = b64(claims("pusher@p.iam.gserviceaccount.com", "https://other")
        .to_string()
        .as_bytes());
    assert_eq!(
        post(parts.join(".")).await?.status(),
        401,
        "tampered claims"
    );
    assert_eq!(env.requested_at("app").await?, None);
    assert_eq!(post(good).await?.status(), 200);
    assert!(env.requested_at("app").await?.is_some());
    Ok(())
}

/// A 2048-bit RSA test key (PKCS#1 RSAPrivateKey DER, base64), used only to sign tokens in this test.
const TEST_RSA_PKCS1: &str = "\
MIIEoQIBAAKCAQEAzp6BNmw0Al3eOo+0yt4AjVuTRLSuWon2UMDafnCq3YpVfg6SxF0lxbPSgSbk\
TYZ94GZXPouiQfxTImKErWX6vxwgoSsVq+3L47Sra+IjsuT7BuHUwiBatoGn2T718vLLtjeWqJDC\
Ux1VGi4Kda/Yg033q7ewusPP86qaxQcWUnHYx062/8/iPnXbM2fI4gXGjl7/s3wOT1WrjQi7TUsv\
1NFcfII3OR+PZ1F+15lwiLNVSR1jXilLh7o1rmCFxdyCIpj4jE6WxTwsssc93rL5dmgBQnzdJxyE\
yM04WvZYR1F5VSV3Yy8EcoRLKnUcq6ptfWtcuDMQVsU7dfxfIO9eCQIDAQABAoH/VFtYlxXHdPTU\
N5SSBZBFUNO+22bVjWZtrzH6AtakdexOe0taW7PnFZCfKv4nLgmOn+MosbQzLVFIs4sFgsXzvFfY\
IfUN1UaBBqLpHtjrOkr9qEy8n13u5mNOC3zy90yV1V4hn6bc6uDsdoPVo95J2yqcZPp3u/AsXiz/\
b7arMEIPCKxCpXAxOh+q/maym0QtmIZ4GQZZeDk5BI+RzNgYFBFcc55D62mPXYx0syaOZuIFvNQL\
v5DuNY++QaQs4gWAyUZDdbDvY47V59nIVVKHES7tSDvmwuPuDN1Vb+1717AhWtVs2jPUFyHpi6JG\
UUVlzttjxYB/UXbTI7gy8waBAoGBAO0sdTA8A7YPiRubLE/uTEZ6+8cpKSqmD0mlGE7TfSFITMQF\
hcdNTlYdnpZAEh4ZIUW1+7F0/dh+JhWGWv45onyfQvNSGqW0YcfWaevJ+wYgmEIUGq5ymD8f/G3E\
MZasatWftZO17qUBf8empeXAGURkEcq7c4E4JXzI+hWx2GzBAoGBAN8FKDhP0RcBo6rpaI0j22BK\
L/S93kyqXis93Y6uxVHD1+EAYusMNlrZzPhH2olenxrp7f0uRtlH9h7P/O+Je9Hjl6c0AJNHIbjW\
uh8vEwKJh/pU8WTuZaiT+1N7a+E1TgxP1PGucjAX2tJmKc79oujAjQoc2sj6QuLU7++GwBtJAoGB\
AM5z3K7YDwL0Ew2Mzc3mSU8wzupW0hbl5njc1YQIZOwL24bmp8UNbhtYPSvdKeg5R9U+zJF0nWNO\
rCgghCS4VtDUcZsM5VVI57Tk198AOxriVKdwiKlB53VLipiiJ+hYvcam95BU1h+cZnaMgey0g0od\
Mb+f3LOnBDrTV5566UIBAoGAU+ZtxhmI8J3GQ9MBaS+XJTdjqTAQxEjHmn7wre/j/amuuk/Z5tE2\
VaFgcfseJNW7B3X/+WKCdtWSqu7WGgtf0ItNjzKKEN4OuqnVZUvhW+//ftab5bul9PCO+U4SPKxA\
C3OxCab2AE/JG6QhkGRs+CEQLkDCsh8sMIepKDRKazkCgYBLN9duW9Mm+JGCciP4yULVV2X0Np4e\
Gfyu6El1b/1LBQZvqEOTzy/z8YX6bc3K/j3WrUMlF30CETw1HMb521+3yNDAotFffRwlgBQ1neRA\
hZrMpFWfzaECEhI+9byhjki0aJJF8NofcohiMSVuvzmtof7galQ7tFqeqZ0DUHMrSw==";
