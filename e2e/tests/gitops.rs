//! Tier 3: Git to a converged cluster, with the controllers as separate processes.
//!
//! Each test gets its own namespace, Git server, source-controller and kustomize-controller
//! (both restricted to that namespace with `--watch-all-namespaces=false`), on the shared tier-2
//! control plane where kwok nodes make Deployments really become Available.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::git_server::{GitServer, HttpGitServer, HttpOptions, WorkingCopy};
use e2e::process::{Lifetime, Managed, free_port, workspace_binary};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};

/// How long a test waits for a state the controllers should reach.
const WAIT: Duration = Duration::from_secs(90);

/// A Git repository synced to a namespace by real controller processes.
struct Fleet {
    ns: e2e::TestNamespace,
    wc: WorkingCopy,
    http: HttpGitServer,
    _server: GitServer,
    _storage: tempfile::TempDir,
    _logs: tempfile::TempDir,
    controllers: Vec<Managed>,
    /// notification-controller's webhook receiver, when it runs.
    receiver_port: Option<u16>,
}

/// What else a [`Fleet`] runs.
#[derive(Default)]
struct FleetOptions {
    /// The GitRepository's interval (2s when `None`).
    source_interval: Option<&'static str>,
    /// Run notification-controller too, and point the others' events at it.
    notifications: bool,
}

impl Fleet {
    /// Starts the controllers for a fresh namespace and a repository holding `files`.
    async fn start(prefix: &str, files: &[(&str, &str)]) -> Result<Self> {
        Self::start_with(prefix, files, FleetOptions::default()).await
    }

    async fn start_with(
        prefix: &str,
        files: &[(&str, &str)],
        options: FleetOptions,
    ) -> Result<Self> {
        let cluster = e2e::full_cluster().await?;
        let ns = cluster.namespace(prefix).await?;
        let server = GitServer::new()?;
        let repo = server.create_repo("fleet")?;
        let wc = repo.working_copy()?;
        wc.commit(files, "initial")?;
        let http = server.serve_http(HttpOptions::default())?;
        let storage = tempfile::tempdir()?;
        let logs = tempfile::Builder::new().prefix("gitops-logs-").tempdir()?;
        let kubeconfig = cluster.kubeconfig_path().display().to_string();
        let storage_port = free_port()?;
        let events_port = free_port()?;
        let receiver_port = free_port()?;
        let common = |kubeconfig: &str| -> Result<Vec<String>> {
            let mut args = vec![
                format!("RUNTIME_NAMESPACE={}", ns.name),
                String::new(), // the binary, filled in below
                format!("--kubeconfig={kubeconfig}"),
                "--watch-all-namespaces=false".into(),
                format!("--metrics-addr=127.0.0.1:{}", free_port()?),
                format!("--health-addr=127.0.0.1:{}", free_port()?),
                "--log-encoding=console".into(),
            ];
            if options.notifications {
                args.push(format!("--events-addr=http://127.0.0.1:{events_port}/"));
            }
            Ok(args)
        };
        let mut source = common(&kubeconfig)?;
        source[1] = workspace_binary("source-controller")?.display().to_string();
        source.extend([
            format!("--storage-path={}", storage.path().display()),
            format!("--storage-addr=127.0.0.1:{storage_port}"),
            format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
        ]);
        let mut kustomize = common(&kubeconfig)?;
        kustomize[1] = workspace_binary("kustomize-controller")?
            .display()
            .to_string();
        kustomize.push("--requeue-dependency=2s".into());
        let mut processes = vec![
            ("source-controller", source),
            ("kustomize-controller", kustomize),
        ];
        if options.notifications {
            let mut notification = common(&kubeconfig)?;
            notification.retain(|a| !a.starts_with("--events-addr"));
            notification[1] = workspace_binary("notification-controller")?
                .display()
                .to_string();
            notification.extend([
                format!("--events-addr=127.0.0.1:{events_port}"),
                format!("--receiverAddr=127.0.0.1:{receiver_port}"),
            ]);
            processes.push(("notification-controller", notification));
        }
        let mut controllers = Vec::new();
        for (name, args) in processes {
            let log = logs.path().join(format!("{name}.log"));
            controllers.push(Managed::start(
                name,
                Path::new("env"),
                &args,
                &log,
                Lifetime::Owner,
            )?);
        }
        let fleet = Self {
            ns,
            wc,
            http,
            _server: server,
            _storage: storage,
            _logs: logs,
            controllers,
            receiver_port: options.notifications.then_some(receiver_port),
        };
        fleet
            .apply(
                &source_resource(),
                json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1",
                    "kind": "GitRepository",
                    "metadata": { "name": "fleet" },
                    "spec": {
                        "url": fleet.http.url("fleet"),
                        "interval": options.source_interval.unwrap_or("2s"),
                    },
                }),
            )
            .await?;
        Ok(fleet)
    }

    fn client(&self) -> kube::Client {
        self.ns.client.clone()
    }

    async fn apply(&self, resource: &ApiResource, mut object: Value) -> Result<()> {
        object["metadata"]["namespace"] = json!(self.ns.name);
        let name = object["metadata"]["name"].as_str().unwrap().to_owned();
        let api: Api<DynamicObject> = Api::namespaced_with(self.client(), &self.ns.name, resource);
        api.patch(
            &name,
            &PatchParams::apply("gitops-test").force(),
            &Patch::Apply(&object),
        )
        .await
        .with_context(|| format!("applying {name}"))?;
        Ok(())
    }

    /// Applies a Kustomization of the fleet repository at `path` with `extra` spec fields.
    async fn kustomization(&self, name: &str, path: &str, extra: Value) -> Result<()> {
        let mut spec = json!({
            "interval": "1h", "path": path, "prune": true, "wait": true, "timeout": "40s",
            "retryInterval": "2s", "targetNamespace": self.ns.name,
            "sourceRef": { "kind": "GitRepository", "name": "fleet" },
        });
        for (key, value) in extra.as_object().into_iter().flatten() {
            spec[key] = value.clone();
        }
        self.apply(
            &kustomization_resource(),
            json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": { "name": name },
                "spec": spec,
            }),
        )
        .await
    }

    async fn get_kustomization(&self, name: &str) -> Result<Value> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client(), &self.ns.name, &kustomization_resource());
        Ok(serde_json::to_value(api.get(name).await?)?)
    }

    /// Waits until the Kustomization `name` satisfies `check`, or fails with its status and
    /// the controllers' logs.
    async fn wait_kustomization(
        &mut self,
        name: &str,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let started = Instant::now();
        loop {
            let object = self.get_kustomization(name).await?;
            if check(&object) {
                return Ok(object);
            }
            for controller in &mut self.controllers {
                controller.check_running()?;
            }
            if started.elapsed() > WAIT {
                bail!(
                    "Kustomization {name} is not {what} after {WAIT:?}; status: {}\n{}",
                    serde_json::to_string_pretty(&object["status"])?,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until `name` is Ready at the repository's current head.
    async fn wait_applied(&mut self, name: &str) -> Result<Value> {
        let head = self.wc.head()?;
        self.wait_kustomization(name, &format!("Ready at {head}"), |ks| {
            ready(ks).0 == "True"
                && ks["status"]["lastAppliedRevision"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&head))
        })
        .await
    }

    /// Waits until `name` has Ready=False with `reason` for the repository's current head.
    async fn wait_failed(&mut self, name: &str, reason: &str) -> Result<Value> {
        let head = self.wc.head()?;
        self.wait_kustomization(name, &format!("failing with {reason} at {head}"), |ks| {
            let (status, found) = ready(ks);
            status == "False"
                && found == reason
                && ks["status"]["lastAttemptedRevision"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&head))
        })
        .await
    }

    fn logs(&self) -> String {
        let mut out = String::new();
        for controller in &self.controllers {
            out.push_str(&format!(
                "--- {} log (tail) ---\n{}\n",
                controller.name(),
                e2e::process::log_tail(controller.log(), 40)
            ));
        }
        out
    }

    async fn config_map(&self, name: &str) -> Result<Option<ConfigMap>> {
        Ok(Api::<ConfigMap>::namespaced(self.client(), &self.ns.name)
            .get_opt(name)
            .await?)
    }

    async fn deployment(&self, name: &str) -> Result<Deployment> {
        Ok(Api::<Deployment>::namespaced(self.client(), &self.ns.name)
            .get(name)
            .await?)
    }

    /// Asks for a reconcile now, as `flux reconcile` does.
    async fn request_reconcile(&self, name: &str) -> Result<()> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client(), &self.ns.name, &kustomization_resource());
        let now = format!("{:?}", Instant::now());
        api.patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": { "annotations": { "reconcile.fluxcd.io/requestedAt": now } }
            })),
        )
        .await?;
        Ok(())
    }
}

fn source_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "source.toolkit.fluxcd.io",
        "v1",
        "GitRepository",
    ))
}

fn kustomization_resource() -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
    ))
}

/// The status and reason of the Ready condition.
fn ready(object: &Value) -> (String, String) {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| {
            (
                c["status"].as_str().unwrap_or_default().to_owned(),
                c["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .unwrap_or_default()
}

fn ready_message(object: &Value) -> String {
    object["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["message"].as_str())
        .unwrap_or_default()
        .to_owned()
}

fn deployment(name: &str, replicas: u32, extra_pod_spec: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: {replicas}\n  progressDeadlineSeconds: 8\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n{extra_pod_spec}      containers:\n      - name: app\n        image: registry.local/{name}:1.0.0\n"
    )
}

fn config_map(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}

const APP_KUSTOMIZATION: &str = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- settings.yaml\n";

fn ready_replicas(deployment: &Deployment) -> i32 {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or_default()
}

#[tokio::test]
async fn commits_are_applied_removed_files_pruned_and_drift_corrected() -> Result<()> {
    let app = deployment("web", 2, "");
    let settings = config_map("settings", "one");
    let mut fleet = Fleet::start(
        "gitops-sync",
        &[
            ("app/kustomization.yaml", APP_KUSTOMIZATION),
            ("app/deployment.yaml", &app),
            ("app/settings.yaml", &settings),
        ],
    )
    .await?;
    fleet.kustomization("app", "./app", json!({})).await?;
    let ks = fleet.wait_applied("app").await?;
    // wait: true means the Deployment was Available before Ready=True.
    assert_eq!(ready_replicas(&fleet.deployment("web").await?), 2);
    let inventory: Vec<&str> = ks["status"]["inventory"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    let ns = fleet.ns.name.clone();
    assert!(inventory.contains(&format!("{ns}_web_apps_Deployment").as_str()));
    assert!(inventory.contains(&format!("{ns}_settings__ConfigMap").as_str()));

    // A commit is applied.
    let started = Instant::now();
    fleet.wc.commit(
        &[
            ("app/deployment.yaml", deployment("web", 3, "").as_str()),
            ("app/settings.yaml", config_map("settings", "two").as_str()),
        ],
        "scale up and change settings",
    )?;
    fleet.wait_applied("app").await?;
    eprintln!(
        "commit to applied in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(
        fleet.config_map("settings").await?.unwrap().data.unwrap()["value"],
        "two"
    );
    assert_eq!(ready_replicas(&fleet.deployment("web").await?), 3);

    // A removed file is pruned.
    fleet.wc.commit(
        &[(
            "app/kustomization.yaml",
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n",
        )],
        "drop the settings",
    )?;
    fleet.wc.remove(&["app/settings.yaml"], "remove the file")?;
    fleet.wait_applied("app").await?;
    assert!(fleet.config_map("settings").await?.is_none(), "pruned");

    // A manual edit by another manager is corrected on the next reconcile.
    Api::<Deployment>::namespaced(fleet.client(), &ns)
        .patch(
            "web",
            &PatchParams::apply("kubectl-edit").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": { "name": "web" }, "spec": { "replicas": 1 }
            })),
        )
        .await?;
    fleet.request_reconcile("app").await?;
    let deadline = Instant::now() + WAIT;
    while fleet.deployment("web").await?.spec.unwrap().replicas != Some(3) {
        assert!(
            Instant::now() < deadline,
            "drift was not corrected\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test]
async fn a_broken_commit_keeps_the_last_good_state_until_it_is_fixed() -> Result<()> {
    let mut fleet = Fleet::start(
        "gitops-broken",
        &[
            ("app/kustomization.yaml", APP_KUSTOMIZATION),
            ("app/deployment.yaml", &deployment("api", 1, "")),
            ("app/settings.yaml", &config_map("settings", "good")),
        ],
    )
    .await?;
    fleet.kustomization("app", "./app", json!({})).await?;
    fleet.wait_applied("app").await?;
    let good_revision = fleet.get_kustomization("app").await?["status"]["lastAppliedRevision"]
        .as_str()
        .unwrap()
        .to_owned();

    // Bad YAML: the build fails, nothing applied, nothing pruned.
    fleet.wc.commit(
        &[(
            "app/settings.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata: [unclosed\n",
        )],
        "break the YAML",
    )?;
    let ks = fleet.wait_failed("app", "BuildFailed").await?;
    assert!(
        ready_message(&ks).contains("settings.yaml"),
        "the message names the file: {}",
        ready_message(&ks)
    );
    assert_eq!(ks["status"]["lastAppliedRevision"], json!(good_revision));
    assert_eq!(
        fleet.config_map("settings").await?.unwrap().data.unwrap()["value"],
        "good"
    );
    assert_eq!(ready_replicas(&fleet.deployment("api").await?), 1);

    // An unknown kind: the apply fails and names it; the last good objects stay.
    fleet.wc.commit(
        &[(
            "app/settings.yaml",
            "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: settings\n",
        )],
        "an unknown kind",
    )?;
    let ks = fleet.wait_failed("app", "ReconciliationFailed").await?;
    assert!(
        ready_message(&ks).contains("Widget"),
        "the message names the kind: {}",
        ready_message(&ks)
    );
    assert!(fleet.config_map("settings").await?.is_some(), "not pruned");

    // A Deployment that never becomes ready (no node matches): the health check fails.
    fleet.wc.commit(
        &[
            ("app/settings.yaml", config_map("settings", "good").as_str()),
            (
                "app/deployment.yaml",
                deployment(
                    "api",
                    1,
                    "      nodeSelector:\n        no-such-node: \"true\"\n",
                )
                .as_str(),
            ),
        ],
        "a Deployment that cannot be scheduled",
    )?;
    let ks = fleet.wait_failed("app", "HealthCheckFailed").await?;
    assert!(
        ready_message(&ks).contains("Deployment/"),
        "the message names the Deployment: {}",
        ready_message(&ks)
    );
    // The old ReplicaSet keeps serving while the new one cannot start.
    assert_eq!(ready_replicas(&fleet.deployment("api").await?), 1);

    // The fix recovers.
    fleet.wc.commit(
        &[("app/deployment.yaml", deployment("api", 1, "").as_str())],
        "fix the Deployment",
    )?;
    fleet.wait_applied("app").await?;
    Ok(())
}

#[tokio::test]
async fn dependencies_are_applied_first_and_a_tenant_is_held_to_its_rbac() -> Result<()> {
    let mut fleet = Fleet::start(
        "gitops-tenant",
        &[
            (
                "infra/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- settings.yaml\n",
            ),
            ("infra/settings.yaml", &config_map("infra", "base")),
            (
                "tenant/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- settings.yaml\n",
            ),
            ("tenant/settings.yaml", &config_map("tenant", "mine")),
        ],
    )
    .await?;
    let ns = fleet.ns.name.clone();
    // The tenant's ServiceAccount may manage ConfigMaps in its namespace, nothing else.
    let client = fleet.client();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": "tenant" } }))?,
        )
        .await?;
    Api::<Role>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "configmaps" },
                "rules": [{ "apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"] }],
            }))?,
        )
        .await?;
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "tenant" },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmaps" },
                "subjects": [{ "kind": "ServiceAccount", "name": "tenant", "namespace": ns }],
            }))?,
        )
        .await?;

    // `tenant` waits for `infra`, which does not exist yet.
    fleet
        .kustomization(
            "tenant",
            "./tenant",
            json!({ "serviceAccountName": "tenant", "dependsOn": [{ "name": "infra" }] }),
        )
        .await?;
    fleet
        .wait_kustomization("tenant", "waiting on infra", |ks| {
            ready(ks) == ("False".into(), "DependencyNotReady".into())
        })
        .await?;
    assert!(fleet.config_map("tenant").await?.is_none());
    fleet.kustomization("infra", "./infra", json!({})).await?;
    fleet.wait_applied("infra").await?;
    fleet.wait_applied("tenant").await?;
    assert!(fleet.config_map("tenant").await?.is_some());

    // A Secret is outside the tenant's rights: denied, and the ConfigMap it had stays.
    fleet.wc.commit(
        &[
            (
                "tenant/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- settings.yaml\n- secret.yaml\n",
            ),
            (
                "tenant/secret.yaml",
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tenant\nstringData:\n  token: not-allowed\n",
            ),
        ],
        "a Secret the tenant may not create",
    )?;
    let ks = fleet.wait_failed("tenant", "ReconciliationFailed").await?;
    // `infra` builds the same objects at the new revision: it records the revision as applied.
    let infra_version = fleet
        .config_map("infra")
        .await?
        .unwrap()
        .metadata
        .resource_version;
    fleet.wait_applied("infra").await?;
    assert_eq!(
        fleet
            .config_map("infra")
            .await?
            .unwrap()
            .metadata
            .resource_version,
        infra_version
    );
    let message = ready_message(&ks);
    assert!(
        message.contains("forbidden") && message.contains("system:serviceaccount"),
        "the message says who was denied what: {message}"
    );
    assert!(fleet.config_map("tenant").await?.is_some());
    assert!(
        Api::<Secret>::namespaced(client, &ns)
            .get_opt("tenant")
            .await?
            .is_none()
    );
    Ok(())
}

#[tokio::test]
async fn a_kustomization_applies_into_a_second_cluster_through_its_kubeconfig() -> Result<()> {
    let mut fleet = Fleet::start(
        "gitops-remote",
        &[
            (
                "remote/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: default\nresources:\n- settings.yaml\n",
            ),
            ("remote/settings.yaml", &config_map("remote-settings", "far")),
        ],
    )
    .await?;
    let second = e2e::control_plane::ControlPlane::start(e2e::control_plane::Options {
        crds: Vec::new(),
        ..Default::default()
    })
    .await?;
    let kubeconfig = inline_kubeconfig(second.kubeconfig_path())?;
    Api::<Secret>::namespaced(fleet.client(), &fleet.ns.name)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "second-cluster" },
                "stringData": { "value": kubeconfig },
            }))?,
        )
        .await?;
    fleet
        .kustomization(
            "remote",
            "./remote",
            json!({
                "kubeConfig": { "secretRef": { "name": "second-cluster" } },
                "targetNamespace": "default",
            }),
        )
        .await?;
    fleet.wait_applied("remote").await?;
    let remote = Api::<ConfigMap>::namespaced(second.client().await?, "default");
    assert_eq!(
        remote.get("remote-settings").await?.data.unwrap()["value"],
        "far"
    );
    assert!(
        fleet.config_map("remote-settings").await?.is_none(),
        "not applied to the controller's own cluster"
    );
    Ok(())
}

/// The kubeconfig at `path` with its certificate files inlined as `*-data` fields, the form a
/// kubeconfig Secret carries.
fn inline_kubeconfig(path: &Path) -> Result<String> {
    use base64::Engine;
    let mut config: serde_yaml::Value = serde_yaml::from_str(&std::fs::read_to_string(path)?)?;
    let encode = |file: &serde_yaml::Value| -> Result<serde_yaml::Value> {
        let bytes = std::fs::read(file.as_str().context("a file path")?)?;
        Ok(base64::engine::general_purpose::STANDARD
            .encode(bytes)
            .into())
    };
    for cluster in config["clusters"].as_sequence_mut().into_iter().flatten() {
        let cluster = &mut cluster["cluster"];
        let ca = encode(&cluster["certificate-authority"])?;
        let map = cluster.as_mapping_mut().unwrap();
        map.remove("certificate-authority");
        map.insert("certificate-authority-data".into(), ca);
    }
    for user in config["users"].as_sequence_mut().into_iter().flatten() {
        let user = &mut user["user"];
        let cert = encode(&user["client-certificate"])?;
        let key = encode(&user["client-key"])?;
        let map = user.as_mapping_mut().unwrap();
        map.remove("client-certificate");
        map.remove("client-key");
        map.insert("client-certificate-data".into(), cert);
        map.insert("client-key-data".into(), key);
    }
    Ok(serde_yaml::to_string(&config)?)
}

/// A loopback HTTP endpoint that records the JSON bodies POSTed to it: the `generic` Provider's
/// address.
async fn event_sink() -> Result<(String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>)> {
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let store = received.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::post(move |body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                if let Ok(value) = serde_json::from_slice::<Value>(&body) {
                    store.lock().unwrap().push(value);
                }
                http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, received))
}

#[tokio::test]
async fn a_signed_github_push_reconciles_the_source_and_its_kustomization_at_once() -> Result<()> {
    use hmac::Mac;
    const TOKEN: &str = "webhook-s3cret";
    let mut fleet = Fleet::start_with(
        "gitops-webhook",
        &[
            (
                "app/kustomization.yaml",
                "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- settings.yaml\n",
            ),
            ("app/settings.yaml", &config_map("settings", "one")),
        ],
        // Without the webhook, a new commit would wait an hour.
        FleetOptions {
            source_interval: Some("1h"),
            notifications: true,
        },
    )
    .await?;
    let ns = fleet.ns.name.clone();
    let (sink_url, received) = event_sink().await?;
    let notification = |kind: &str, version: &str| {
        ApiResource::from_gvk(&GroupVersionKind::gvk(
            "notification.toolkit.fluxcd.io",
            version,
            kind,
        ))
    };
    Api::<Secret>::namespaced(fleet.client(), &ns)
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": { "name": "webhook-token" },
                "stringData": { "token": TOKEN },
            }))?,
        )
        .await?;
    fleet
        .apply(
            &notification("Receiver", "v1"),
            json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1",
                "kind": "Receiver",
                "metadata": { "name": "github" },
                "spec": {
                    "type": "github", "events": ["push"],
                    "secretRef": { "name": "webhook-token" },
                    "resources": [{ "kind": "GitRepository", "name": "fleet" }],
                },
            }),
        )
        .await?;
    fleet
        .apply(
            &notification("Provider", "v1beta3"),
            json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
                "kind": "Provider",
                "metadata": { "name": "sink" },
                "spec": { "type": "generic", "address": sink_url },
            }),
        )
        .await?;
    fleet
        .apply(
            &notification("Alert", "v1beta3"),
            json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1beta3",
                "kind": "Alert",
                "metadata": { "name": "all" },
                "spec": {
                    "providerRef": { "name": "sink" }, "eventSeverity": "info",
                    "eventSources": [{ "kind": "Kustomization", "name": "*" }],
                },
            }),
        )
        .await?;
    fleet.kustomization("app", "./app", json!({})).await?;
    fleet.wait_applied("app").await?;

    // The Receiver publishes its path once it has read the token.
    let receivers: Api<DynamicObject> =
        Api::namespaced_with(fleet.client(), &ns, &notification("Receiver", "v1"));
    let deadline = Instant::now() + WAIT;
    let path = loop {
        let receiver = receivers.get("github").await?;
        if let Some(path) = receiver.data["status"]["webhookPath"].as_str()
            && ready(&serde_json::to_value(&receiver)?).0 == "True"
        {
            break path.to_owned();
        }
        assert!(Instant::now() < deadline, "the Receiver never became Ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    fleet.wc.commit(
        &[("app/settings.yaml", config_map("settings", "two").as_str())],
        "change the settings",
    )?;
    let body = serde_json::to_vec(&json!({ "ref": "refs/heads/master" }))?;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(TOKEN.as_bytes())?;
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let url = format!("http://127.0.0.1:{}{path}", fleet.receiver_port.unwrap());
    let http = reqwest::Client::new();
    let forged = http
        .post(&url)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", "sha256=00")
        .body(body.clone())
        .send()
        .await?;
    assert!(forged.status().is_client_error(), "{}", forged.status());
    let started = Instant::now();
    let answer = http
        .post(&url)
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", signature)
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await?;
    assert_eq!(answer.status(), http::StatusCode::OK);
    fleet.wait_applied("app").await?;
    eprintln!(
        "webhook to applied in {:.2}s",
        started.elapsed().as_secs_f64()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        fleet.config_map("settings").await?.unwrap().data.unwrap()["value"],
        "two"
    );

    // kustomize-controller's events reached the Alert's Provider, with the revision.
    let head = fleet.wc.head()?;
    let deadline = Instant::now() + WAIT;
    loop {
        let events = received.lock().unwrap().clone();
        if events.iter().any(|e| {
            e["involvedObject"]["kind"] == "Kustomization"
                && e["metadata"]["revision"]
                    .as_str()
                    .is_some_and(|r| r.ends_with(&head))
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no Kustomization event for {head} reached the sink: {events:#?}\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}
