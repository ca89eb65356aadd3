//! `cargo xtask demo`: build, start the local control plane, run the controllers as their own
//! processes, sync a Git repository to the cluster and show the result: source-controller turns
//! a repository on a local Git server into an artifact, kustomize-controller applies its
//! `infrastructure/` and then (dependsOn) its `apps/`, and the example controller built on
//! toolkit-sdk reconciles a Greeting.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::control_plane::Tier;
use e2e::process::{Lifetime, Managed, free_port};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, Patch, PatchParams};

const NAMESPACE: &str = "ferroflux-demo";
/// Where the demo's sources live, as in a Flux installation.
const SOURCE_NAMESPACE: &str = "flux-system";

pub fn run() -> Result<()> {
    let root = e2e::repo_root();
    eprintln!("==> building the controllers");
    let mut build = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    build.args(["build", "--quiet"]);
    for binary in [
        "greeter-controller",
        "source-controller",
        "kustomize-controller",
    ] {
        build.args(["--package", binary, "--bin", binary]);
    }
    if !build.current_dir(&root).status()?.success() {
        bail!("building the controllers failed");
    }
    eprintln!("==> starting the local control plane (tier 2)");
    let mut state = crate::cluster::up(Tier::Full)?;

    eprintln!("==> starting greeter-controller as its own process");
    let binary = cargo_target_dir(&root).join("debug/greeter-controller");
    let log = state.data_dir.join("logs/greeter-controller.log");
    let metrics_port = free_port()?;
    let health_port = free_port()?;
    let args = vec![
        format!("--kubeconfig={}", state.kubeconfig.display()),
        format!("--metrics-addr=127.0.0.1:{metrics_port}"),
        format!("--health-addr=127.0.0.1:{health_port}"),
        "--log-encoding=console".to_string(),
    ];
    let controller = Managed::start(
        "greeter-controller",
        &binary,
        &args,
        &log,
        Lifetime::Detached,
    )?;
    state.pids.push(controller.detach());
    crate::cluster::save(&state)?;

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(apply_and_wait(&state.kubeconfig))?;

    eprintln!("==> starting a Git server with the example repository");
    let git_dir = crate::demo_git::data_dir(&state.data_dir);
    let ready_file = git_dir.join("ready.json");
    let git_log = state.data_dir.join("logs/demo-git-server.log");
    let git_args = vec![
        "demo-git-server".to_string(),
        format!("--dir={}", git_dir.display()),
        format!("--ready-file={}", ready_file.display()),
    ];
    let git_server = Managed::start(
        "demo-git-server",
        &std::env::current_exe()?,
        &git_args,
        &git_log,
        Lifetime::Detached,
    )?;
    state.pids.push(git_server.detach());
    crate::cluster::save(&state)?;
    let git = crate::demo_git::wait_ready(&ready_file, &git_log, Duration::from_secs(30))?;

    eprintln!("==> starting source-controller as its own process");
    let storage_port = free_port()?;
    let source_log = state.data_dir.join("logs/source-controller.log");
    let source_args = vec![
        format!("--kubeconfig={}", state.kubeconfig.display()),
        format!(
            "--storage-path={}",
            state.data_dir.join("storage").display()
        ),
        format!("--storage-addr=127.0.0.1:{storage_port}"),
        format!("--storage-adv-addr=127.0.0.1:{storage_port}"),
        format!("--metrics-addr=127.0.0.1:{}", free_port()?),
        format!("--health-addr=127.0.0.1:{}", free_port()?),
        "--log-encoding=console".to_string(),
    ];
    let source_controller = Managed::start(
        "source-controller",
        &cargo_target_dir(&root).join("debug/source-controller"),
        &source_args,
        &source_log,
        Lifetime::Detached,
    )?;
    state.pids.push(source_controller.detach());
    crate::cluster::save(&state)?;
    let artifact = runtime.block_on(sync_git_repository(&state.kubeconfig, &git.url))?;

    eprintln!("==> starting kustomize-controller as its own process");
    let kustomize_log = state.data_dir.join("logs/kustomize-controller.log");
    let kustomize_args = vec![
        format!("--kubeconfig={}", state.kubeconfig.display()),
        format!("--metrics-addr=127.0.0.1:{}", free_port()?),
        format!("--health-addr=127.0.0.1:{}", free_port()?),
        "--log-encoding=console".to_string(),
    ];
    let kustomize_controller = Managed::start(
        "kustomize-controller",
        &cargo_target_dir(&root).join("debug/kustomize-controller"),
        &kustomize_args,
        &kustomize_log,
        Lifetime::Detached,
    )?;
    state.pids.push(kustomize_controller.detach());
    crate::cluster::save(&state)?;
    runtime.block_on(apply_kustomizations(&state.kubeconfig))?;

    eprintln!("\n==> what the controllers did");
    let kubectl = |args: &[&str]| -> Result<()> {
        let status = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &state.kubeconfig)
            .status()
            .context("kubectl must be on PATH")?;
        if !status.success() {
            bail!("kubectl {} failed", args.join(" "));
        }
        Ok(())
    };
    kubectl(&["get", "nodes"])?;
    kubectl(&["-n", SOURCE_NAMESPACE, "get", "gitrepositories"])?;
    println!(
        "artifact {} ({})",
        artifact.url,
        artifact.digest.as_deref().unwrap_or("?")
    );
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!("curl -sf {} | tar tzf -", artifact.url))
        .status()?;
    if !listing.success() {
        bail!("cannot download the artifact from {}", artifact.url);
    }
    kubectl(&["-n", SOURCE_NAMESPACE, "get", "kustomizations"])?;
    kubectl(&[
        "get",
        "namespaces,configmaps,deployments,services",
        "--all-namespaces",
        "-l",
        "kustomize.toolkit.fluxcd.io/namespace=flux-system",
    ])?;
    kubectl(&["-n", NAMESPACE, "get", "greetings"])?;
    kubectl(&[
        "-n",
        NAMESPACE,
        "get",
        "configmap",
        "hello-greeting",
        "-o",
        "jsonpath={.data.message}{\"\\n\"}",
    ])?;
    println!(
        "\nThe control plane, the Git server and the controllers keep running. Try:\n\n  \
         export KUBECONFIG={kubeconfig}\n  \
         git clone {git_url} /tmp/fleet && cd /tmp/fleet\n  \
         sed -i 's/replicas: 2/replicas: 3/' apps/podinfo/deployment.yaml && git commit -qam 'Scale podinfo' && git push\n  \
         kubectl -n {SOURCE_NAMESPACE} get gitrepository,kustomizations -w   # new revision within 10s, applied at once\n  \
         kubectl -n podinfo get deployment podinfo                          # 3/3 ready\n  \
         kubectl -n podinfo delete service podinfo                          # drift: restored by the next reconcile\n  \
         kubectl -n {SOURCE_NAMESPACE} annotate kustomization apps reconcile.fluxcd.io/requestedAt=\"$(date +%s)\" --overwrite\n  \
         kubectl -n {NAMESPACE} patch greeting hello --type merge -p '{{\"spec\":{{\"message\":\"Hi again\"}}}}'\n  \
         kubectl -n {NAMESPACE} get configmap hello-greeting -o jsonpath='{{.data.message}}'\n  \
         kubectl -n {NAMESPACE} annotate greeting hello reconcile.fluxcd.io/requestedAt=\"$(date +%s)\" --overwrite\n  \
         curl -s http://127.0.0.1:{metrics_port}/metrics | grep gotk_reconcile_duration_seconds_count\n  \
         tail -f {kustomize_log}\n\nStop everything with `cargo xtask cluster down`.",
        kubeconfig = state.kubeconfig.display(),
        git_url = git.url,
        kustomize_log = kustomize_log.display(),
    );
    Ok(())
}

async fn apply_and_wait(kubeconfig: &Path) -> Result<()> {
    let client = e2e::client_from_kubeconfig(kubeconfig, None).await?;
    let crd_file = e2e::repo_root().join("examples/greeter-controller/config/crd.yaml");
    e2e::crds::install_from(&client, &crd_file).await?;
    let params = PatchParams::apply("ferroflux-demo").force();
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": NAMESPACE } }))?;
    Api::<Namespace>::all(client.clone())
        .patch(NAMESPACE, &params, &Patch::Apply(&namespace))
        .await?;
    let greeting = serde_json::json!({
        "apiVersion": "example.ferroflux.dev/v1",
        "kind": "Greeting",
        "metadata": { "name": "hello", "namespace": NAMESPACE },
        "spec": { "message": "Hello from Ferroflux", "interval": "1m" },
    });
    let greetings: Api<greeter_controller::Greeting> = Api::namespaced(client.clone(), NAMESPACE);
    greetings
        .patch("hello", &params, &Patch::Apply(&greeting))
        .await
        .context("cannot apply the demo Greeting")?;
    eprintln!("==> applied Greeting {NAMESPACE}/hello; waiting until it is Ready");
    let started = Instant::now();
    let config_maps: Api<ConfigMap> = Api::namespaced(client, NAMESPACE);
    loop {
        let greeting = greetings.get("hello").await?;
        let ready = greeting
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
            .iter()
            .find(|c| c.type_ == "Ready")
            .cloned();
        if let Some(ready) = &ready
            && ready.status == "True"
            && config_maps.get_opt("hello-greeting").await?.is_some()
        {
            eprintln!(
                "==> Ready after {:.2}s: {}",
                started.elapsed().as_secs_f64(),
                ready.message
            );
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the Greeting was not Ready after 60s (Ready: {ready:?}); see the controller log in the cluster's data folder"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Applies the GitRepository `flux-system/fleet` for `url` and waits until its artifact is stored.
async fn sync_git_repository(kubeconfig: &Path, url: &str) -> Result<toolkit_sdk::api::Artifact> {
    use source_controller::api::v1::GitRepository;
    let client = e2e::client_from_kubeconfig(kubeconfig, None).await?;
    let params = PatchParams::apply("ferroflux-demo").force();
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({ "metadata": { "name": SOURCE_NAMESPACE } }))?;
    Api::<Namespace>::all(client.clone())
        .patch(SOURCE_NAMESPACE, &params, &Patch::Apply(&namespace))
        .await?;
    let repository = serde_json::json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": { "name": "fleet", "namespace": SOURCE_NAMESPACE },
        "spec": { "url": url, "interval": "10s", "ref": { "branch": "master" } },
    });
    let repositories: Api<GitRepository> = Api::namespaced(client, SOURCE_NAMESPACE);
    repositories
        .patch("fleet", &params, &Patch::Apply(&repository))
        .await
        .context("cannot apply the demo GitRepository")?;
    eprintln!(
        "==> applied GitRepository {SOURCE_NAMESPACE}/fleet ({url}); waiting for its artifact"
    );
    let started = Instant::now();
    loop {
        let repository = repositories.get("fleet").await?;
        let status = repository.status.unwrap_or_default();
        let ready = status
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready")
            .cloned();
        if let (Some(ready), Some(artifact)) = (&ready, &status.artifact)
            && ready.status == "True"
        {
            eprintln!(
                "==> Ready after {:.2}s: {}",
                started.elapsed().as_secs_f64(),
                ready.message
            );
            return Ok(artifact.clone());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!(
                "the GitRepository was not Ready after 60s (Ready: {ready:?}); see logs/source-controller.log in the cluster's data folder"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Applies the Kustomizations `flux-system/infrastructure` and `flux-system/apps` (which
/// depends on it) for the demo repository and waits until both are Ready.
async fn apply_kustomizations(kubeconfig: &Path) -> Result<()> {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let client = e2e::client_from_kubeconfig(kubeconfig, None).await?;
    let params = PatchParams::apply("ferroflux-demo").force();
    let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "Kustomization",
    ));
    let kustomizations: Api<DynamicObject> =
        Api::namespaced_with(client, SOURCE_NAMESPACE, &resource);
    let source = serde_json::json!({ "kind": "GitRepository", "name": "fleet" });
    let specs = [
        (
            "infrastructure",
            serde_json::json!({
                "interval": "10m", "path": "./infrastructure", "prune": true, "wait": true,
                "timeout": "2m", "sourceRef": source,
            }),
        ),
        (
            "apps",
            serde_json::json!({
                "interval": "10m", "path": "./apps", "prune": true, "wait": true,
                "timeout": "2m", "sourceRef": source,
                "dependsOn": [{ "name": "infrastructure" }],
                "postBuild": { "substitute": { "cluster_name": "ferroflux-demo" } },
            }),
        ),
    ];
    for (name, spec) in specs {
        let object = serde_json::json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": { "name": name, "namespace": SOURCE_NAMESPACE },
            "spec": spec,
        });
        kustomizations
            .patch(name, &params, &Patch::Apply(&object))
            .await
            .with_context(|| format!("cannot apply the demo Kustomization {name}"))?;
    }
    eprintln!(
        "==> applied Kustomizations {SOURCE_NAMESPACE}/infrastructure and {SOURCE_NAMESPACE}/apps (dependsOn infrastructure); waiting until both are Ready"
    );
    let started = Instant::now();
    for name in ["infrastructure", "apps"] {
        loop {
            let object = kustomizations.get(name).await?;
            let ready = object
                .data
                .pointer("/status/conditions")
                .and_then(|c| c.as_array())
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .cloned();
            if let Some(ready) = &ready
                && ready["status"] == "True"
            {
                eprintln!(
                    "==> {name} Ready after {:.2}s: {}",
                    started.elapsed().as_secs_f64(),
                    ready["message"].as_str().unwrap_or_default()
                );
                break;
            }
            if started.elapsed() > Duration::from_secs(180) {
                bail!(
                    "the Kustomization {name} was not Ready after 180s (Ready: {ready:?}); see logs/kustomize-controller.log in the cluster's data folder"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

fn cargo_target_dir(root: &Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
