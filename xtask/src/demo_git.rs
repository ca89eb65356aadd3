//! `cargo xtask demo-git-server`: the demo's Git server, a long-lived smart-HTTP server over a
//! repository seeded with an example. The demo starts it detached (this same binary) and stops it
//! with the control plane.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use e2e::git_server::{GitServer, HttpOptions};
use serde::{Deserialize, Serialize};

/// The repository the demo serves.
pub const REPO: &str = "fleet";

/// What the server writes once it listens, for the demo to read.
#[derive(Debug, Serialize, Deserialize)]
pub struct Ready {
    /// Clone URL of the demo repository.
    pub url: String,
}

/// The example the repository starts with: what a platform team keeps in Git. Two
/// Kustomizations apply it: `infrastructure` (the namespace and cluster-wide settings) and
/// `apps`, which depends on it.
const EXAMPLE: &[(&str, &str)] = &[
    (
        "infrastructure/namespaces.yaml",
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: podinfo\n",
    ),
    (
        "infrastructure/cluster-settings.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cluster-settings\n  namespace: podinfo\ndata:\n  region: local\n",
    ),
    (
        "infrastructure/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- namespaces.yaml\n- cluster-settings.yaml\n",
    ),
    (
        "apps/podinfo/deployment.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app: podinfo\n  template:\n    metadata:\n      labels:\n        app: podinfo\n    spec:\n      containers:\n      - name: podinfo\n        image: ghcr.io/stefanprodan/podinfo:6.7.0\n        env:\n        - name: CLUSTER_NAME\n          value: ${cluster_name}\n        ports:\n        - containerPort: 9898\n          name: http\n",
    ),
    (
        "apps/podinfo/service.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: podinfo\n  namespace: podinfo\nspec:\n  selector:\n    app: podinfo\n  ports:\n  - name: http\n    port: 9898\n    targetPort: http\n",
    ),
    (
        "apps/podinfo/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n- service.yaml\n",
    ),
    (
        "apps/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- podinfo\n",
    ),
    (
        "README.md",
        "# fleet\n\nThe demo's GitOps repository. Commit here: source-controller packs a new artifact and\nkustomize-controller applies `infrastructure/`, then `apps/`.\n",
    ),
];

/// Runs the server in the foreground until killed: seeds `dir`, listens, writes `ready_file`.
pub fn serve(dir: &Path, ready_file: &Path) -> Result<()> {
    let server = GitServer::new_in(dir)?;
    let repo = server.create_repo(REPO)?;
    repo.working_copy()?
        .commit(EXAMPLE, "Add infrastructure and podinfo")
        .context("cannot seed the demo repository")?;
    let http = server.serve_http(HttpOptions::default())?;
    let ready = Ready {
        url: http.url(REPO),
    };
    let temp = ready_file.with_extension("tmp");
    std::fs::write(&temp, serde_json::to_vec(&ready)?)?;
    std::fs::rename(&temp, ready_file)?;
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Waits for a server started with [`serve`] to write its `ready_file`.
pub fn wait_ready(ready_file: &Path, log: &Path, timeout: Duration) -> Result<Ready> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(bytes) = std::fs::read(ready_file) {
            return Ok(serde_json::from_slice(&bytes)?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!(
        "the demo Git server did not start within {timeout:?}; its log:\n{}",
        e2e::process::log_tail(log, 20)
    )
}

/// Where the demo Git server keeps its data inside the cluster's data folder.
pub fn data_dir(cluster_data: &Path) -> PathBuf {
    cluster_data.join("git")
}
