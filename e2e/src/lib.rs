//! The local Kubernetes control plane that Ferroflux's tests, benchmarks and demo run against.
//!
//! Tier 1 is a real etcd and kube-apiserver on loopback (generated certificates, RBAC authorization,
//! service-account tokens). Tier 2 adds kube-controller-manager, kube-scheduler and kwok fake nodes, so a
//! Deployment really becomes Available. The binaries come from `KUBEBUILDER_ASSETS` or are built once from
//! the Go module proxy into a per-user cache (see [`binaries`]).
//!
//! Tests use [`cluster`] (tier 1 is enough) or [`full_cluster`] (tier 2), then [`Cluster::namespace`] for a
//! fresh namespace of their own:
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let cluster = e2e::cluster().await?;
//! let ns = cluster.namespace("my-test").await?;
//! // use ns.client in ns.name ...
//! # Ok(()) }
//! ```
//!
//! # Sharing one control plane
//! When `FERROFLUX_KUBECONFIG` is set (by `cargo xtask test`, or after `cargo xtask cluster up`), every
//! test binary uses that control plane instead of starting its own, so a whole test run pays the start-up
//! once. Otherwise each test process starts one on first use; the kernel stops it when the process ends,
//! even after a panic.

pub mod binaries;
pub mod certs;
pub mod control_plane;
pub mod crds;
pub mod git_server;
pub mod nodes;
pub mod oci_registry;
pub mod process;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, DeleteParams, PostParams};
use tokio::sync::OnceCell;

pub use control_plane::{ControlPlane, Options, Tier};

/// The environment variable naming the admin kubeconfig of an already running control plane to share.
pub const SHARED_KUBECONFIG_ENV: &str = "FERROFLUX_KUBECONFIG";
/// The environment variable that says which tier the shared control plane runs (`ApiServer` or `Full`).
pub const SHARED_TIER_ENV: &str = "FERROFLUX_CLUSTER_TIER";

/// The workspace root (where `config/` lives).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// A control plane a test can use: either shared (through [`SHARED_KUBECONFIG_ENV`]) or owned by this process.
#[derive(Debug)]
pub struct Cluster {
    kubeconfig: PathBuf,
    tier: Tier,
    // Keeps an owned control plane alive for the whole process.
    _owned: Option<ControlPlane>,
}

impl Cluster {
    /// The admin kubeconfig file (give it to a controller process as `KUBECONFIG`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The tier this control plane runs.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// An admin client (`system:masters`).
    pub async fn client(&self) -> Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig, None).await
    }

    /// A client that acts as `user` in `groups`, through impersonation by the admin.
    pub async fn impersonating_client(&self, user: &str, groups: &[&str]) -> Result<kube::Client> {
        client_from_kubeconfig(&self.kubeconfig, Some((user, groups))).await
    }

    /// A client that acts as the ServiceAccount `namespace/name`, with the groups Kubernetes gives it.
    pub async fn service_account_client(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client> {
        let user = format!("system:serviceaccount:{namespace}:{name}");
        let ns_group = format!("system:serviceaccounts:{namespace}");
        self.impersonating_client(
            &user,
            &["system:serviceaccounts", &ns_group, "system:authenticated"],
        )
        .await
    }

    /// Creates a fresh namespace whose name starts with `prefix` (lowercased, shortened to fit).
    pub async fn namespace(&self, prefix: &str) -> Result<TestNamespace> {
        let client = self.client().await?;
        let api: Api<Namespace> = Api::all(client.clone());
        let mut stem: String = prefix
            .to_ascii_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect();
        stem.truncate(50);
        let name = format!("{}-{:08x}", stem.trim_matches('-'), rand::random::<u32>());
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": { "name": name, "labels": { "ferroflux.dev/test": "true" } }
        }))?;
        api.create(&PostParams::default(), &namespace)
            .await
            .with_context(|| format!("cannot create namespace {name}"))?;
        Ok(TestNamespace { name, client })
    }
}

/// A namespace of one test, and an admin client.
#[derive(Clone)]
pub struct TestNamespace {
    /// The namespace name.
    pub name: String,
    /// An admin client.
    pub client: kube::Client,
}

impl std::fmt::Debug for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestNamespace")
            .field("name", &self.name)
            .finish()
    }
}

impl TestNamespace {
    /// Deletes the namespace (best effort; a throwaway control plane is removed whole anyway).
    pub async fn delete(self) -> Result<()> {
        let api: Api<Namespace> = Api::all(self.client);
        api.delete(&self.name, &DeleteParams::background()).await?;
        Ok(())
    }
}

static TIER1: OnceCell<Cluster> = OnceCell::const_new();
static TIER2: OnceCell<Cluster> = OnceCell::const_new();

/// The control plane of this test process (tier 1 or better), started on first use.
pub async fn cluster() -> Result<&'static Cluster> {
    if let Some(shared) = TIER2.get() {
        return Ok(shared);
    }
    TIER1
        .get_or_try_init(|| start_or_share(Tier::ApiServer))
        .await
}

/// A tier-2 control plane (controller-manager, scheduler, kwok nodes), started on first use.
pub async fn full_cluster() -> Result<&'static Cluster> {
    TIER2.get_or_try_init(|| start_or_share(Tier::Full)).await
}

async fn start_or_share(tier: Tier) -> Result<Cluster> {
    crate::install_crypto_provider();
    if let Some(path) = std::env::var_os(SHARED_KUBECONFIG_ENV) {
        let shared_tier = match std::env::var(SHARED_TIER_ENV).as_deref() {
            Ok("ApiServer") => Tier::ApiServer,
            _ => Tier::Full,
        };
        if shared_tier == Tier::Full || tier == Tier::ApiServer {
            return Ok(Cluster {
                kubeconfig: PathBuf::from(path),
                tier: shared_tier,
                _owned: None,
            });
        }
    }
    let plane = ControlPlane::start(Options {
        tier,
        ..Options::default()
    })
    .await
    .context("cannot start the local control plane for this test process")?;
    Ok(Cluster {
        kubeconfig: plane.kubeconfig_path().to_path_buf(),
        tier,
        _owned: Some(plane),
    })
}

/// Installs rustls' ring provider as the process default (kube and reqwest both use it).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client from a kubeconfig file, optionally impersonating a user and groups.
pub async fn client_from_kubeconfig(
    path: &Path,
    impersonate: Option<(&str, &[&str])>,
) -> Result<kube::Client> {
    install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
    if let Some((user, groups)) = impersonate {
        config.auth_info.impersonate = Some(user.to_string());
        config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    }
    Ok(kube::Client::try_from(config)?)
}
