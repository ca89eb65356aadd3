//! The command line of the `source-controller` binary: Flux's flag names and defaults.
//!
//! Besides the SDK's shared groups (`--concurrent`, `--metrics-addr`, `--enable-leader-election`,
//! ...), source-controller has the storage flags of Flux's source-controller:
//!
//! | flag | env | default | meaning |
//! |---|---|---|---|
//! | `--storage-path` | `STORAGE_PATH` | `/data` | where artifacts are stored |
//! | `--storage-addr` | `STORAGE_ADDR` | `:9090` | where the artifact file server listens |
//! | `--storage-adv-addr` | `STORAGE_ADV_ADDR` | derived | the host (and port) written into `status.artifact.url` |
//! | `--artifact-retention-ttl` | | `60s` | how long superseded artifacts are kept |
//! | `--artifact-retention-records` | | `2` | how many artifacts of an object are kept |
//! | `--artifact-max-size` | | `536870912` | largest artifact in bytes (ours, not Flux's) |
//! | `--requeue-dependency` | | `30s` | retry delay while an include is not ready |
//!
//! When `--storage-adv-addr` is empty it is derived from `--storage-addr` as Flux does: an
//! empty host (`:9090`) becomes `localhost:9090`, `0.0.0.0` becomes `$HOSTNAME` (or the
//! machine's host name) with the same port, and any other address is advertised as it is.
//! In a cluster, set it to the Service name, as the install manifests do
//! (`source-controller.$(RUNTIME_NAMESPACE).svc.cluster.local.`).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use toolkit_sdk::api::GoDuration;
use toolkit_sdk::flags::{LeaderElectionArgs, ListenAddr, ObservabilityArgs, RuntimeArgs};
use toolkit_sdk::runtime::ControllerOptions;

use super::{CONTROLLER_NAME, Config};
use crate::storage::{ArchiveLimits, Retention};

/// The flags of the `source-controller` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "source-controller",
    version,
    about = "Turns GitRepositories and OCIRepositories into artifacts served over HTTP."
)]
pub struct Args {
    /// Reconcile loop flags (`--concurrent`, retry delays, watched namespaces).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Leader election flags.
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,
    /// Logs, metrics, health probes and the event sink.
    #[command(flatten)]
    pub observability: ObservabilityArgs,

    /// The directory artifacts are stored in.
    #[arg(
        long,
        env = "STORAGE_PATH",
        default_value = "/data",
        value_name = "PATH"
    )]
    pub storage_path: PathBuf,

    /// The address the artifact file server listens on (`:9090` means all interfaces).
    #[arg(
        long,
        env = "STORAGE_ADDR",
        default_value = ":9090",
        value_name = "ADDR"
    )]
    pub storage_addr: ListenAddr,

    /// The address (`host[:port]`, or an `http://` URL prefix) written into artifact URLs;
    /// empty derives it from --storage-addr as Flux does.
    #[arg(
        long,
        env = "STORAGE_ADV_ADDR",
        default_value = "",
        value_name = "ADDR"
    )]
    pub storage_adv_addr: String,

    /// How long artifacts other than the current one are kept (Go duration).
    #[arg(long, default_value = "60s", value_name = "DURATION")]
    pub artifact_retention_ttl: GoDuration,

    /// How many artifacts of each object are kept, the current one included.
    #[arg(long, default_value_t = 2, value_name = "N")]
    pub artifact_retention_records: usize,

    /// The largest artifact (compressed bytes) a source may produce; the content it archives may
    /// be at most four times that. The same caps apply to the OCI layers and included artifacts it
    /// downloads and unpacks. A larger source ends in `Ready=False` (`ArchiveOperationFailed`,
    /// or `OCIArtifactLayerOperationFailed` for a layer). Ours: Flux has no such limit.
    #[arg(long, default_value_t = ArchiveLimits::default().max_archive_bytes, value_name = "BYTES")]
    pub artifact_max_size: u64,

    /// How long to wait before checking an include that is not ready again (Go duration).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub requeue_dependency: GoDuration,

    /// The kubeconfig file; by default $KUBECONFIG, ~/.kube/config, or the in-cluster account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// Flux's source-controller reconciles two objects of each kind at a time by default (the SDK's
/// `--concurrent` default is 4, as most Flux controllers).
pub const DEFAULT_CONCURRENT: &str = "2";

impl Args {
    /// Parses the process's command line with source-controller's own defaults (exits with
    /// clap's message on bad flags or `--help`).
    pub fn from_command_line() -> Self {
        Self::try_parse_with_defaults(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// Parses `argv` (program name first) with source-controller's own defaults.
    ///
    /// # Errors
    /// clap's error for unknown or invalid flags.
    pub fn try_parse_with_defaults<I, T>(argv: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let matches = Self::command()
            .mut_arg("concurrent", |arg| arg.default_value(DEFAULT_CONCURRENT))
            .try_get_matches_from(argv)?;
        Self::from_arg_matches(&matches)
    }

    /// The controller configuration these flags describe.
    pub fn config(&self) -> Config {
        let mut options = ControllerOptions::new(CONTROLLER_NAME);
        options.runtime = self.runtime.clone();
        options.leader_election = self.leader_election.clone();
        options.observability = self.observability.clone();
        options.dependency_requeue = self.requeue_dependency.as_duration();
        Config {
            options,
            storage_path: self.storage_path.clone(),
            storage_addr: self.storage_addr,
            storage_adv_addr: Some(self.storage_adv_addr.trim().to_owned())
                .filter(|addr| !addr.is_empty()),
            retention: Retention {
                records: self.artifact_retention_records,
                ttl: self.artifact_retention_ttl.as_duration(),
            },
            artifact_limits: ArchiveLimits::for_max_size(self.artifact_max_size),
        }
    }
}

/// The advertised address Flux derives from the storage listen address when
/// `--storage-adv-addr` is empty: `listen` as given on the command line, `bound` the address
/// actually bound (so port 0 is replaced by the real port).
///
/// An empty host becomes `localhost`, `0.0.0.0` becomes `hostname`, any other IP stays.
pub fn derived_advertised_addr(listen: &ListenAddr, bound: SocketAddr, hostname: &str) -> String {
    let port = bound.port();
    if listen.to_string().starts_with(':') {
        return format!("localhost:{port}");
    }
    let ip = listen.socket_addr().ip();
    if ip.is_unspecified() {
        let host = if hostname.is_empty() {
            "localhost"
        } else {
            hostname
        };
        return format!("{host}:{port}");
    }
    SocketAddr::new(ip, port).to_string()
}

/// This machine's host name as Flux finds it: `$HOSTNAME`, else the kernel's host name,
/// else empty.
pub fn hostname() -> String {
    if let Ok(name) = std::env::var("HOSTNAME")
        && !name.trim().is_empty()
    {
        return name.trim().to_owned();
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|name| name.trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn concurrent_defaults_to_fluxs_two_and_can_be_set() {
        let args = Args::try_parse_with_defaults(["source-controller"]).unwrap();
        assert_eq!(args.runtime.concurrent, 2);
        let args = Args::try_parse_with_defaults(["source-controller", "--concurrent=10"]).unwrap();
        assert_eq!(args.runtime.concurrent, 10);
    }

    #[test]
    fn defaults_are_fluxs() {
        let args = Args::try_parse_from(["source-controller"]).unwrap();
        let config = args.config();
        assert_eq!(config.options.name, "source-controller");
        assert_eq!(config.storage_addr.to_string(), ":9090");
        assert_eq!(config.storage_addr.socket_addr().port(), 9090);
        assert_eq!(config.retention.records, 2);
        assert_eq!(config.retention.ttl, Duration::from_secs(60));
        assert_eq!(config.options.dependency_requeue, Duration::from_secs(30));
        assert_eq!(
            config.options.observability.metrics_addr.to_string(),
            ":8080"
        );
        assert_eq!(
            config.options.observability.health_addr.to_string(),
            ":9440"
        );
        // STORAGE_* may be set in the environment; only check when they are not.
        if std::env::var_os("STORAGE_PATH").is_none() {
            assert_eq!(config.storage_path, PathBuf::from("/data"));
        }
        if std::env::var_os("STORAGE_ADV_ADDR").is_none() {
            assert_eq!(config.storage_adv_addr, None);
        }
    }

    #[test]
    fn a_flux_deployment_command_line_parses() {
        let args = Args::try_parse_from([
            "source-controller",
            "--watch-all-namespaces",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--storage-path=/data",
            "--storage-adv-addr=source-controller.flux-system.svc.cluster.local.",
            "--storage-addr=:9090",
            "--artifact-retention-ttl=2m",
            "--artifact-retention-records=5",
            "--requeue-dependency=5s",
        ])
        .unwrap();
        let config = args.config();
        assert!(config.options.leader_election.enable_leader_election);
        assert_eq!(
            config.storage_adv_addr.as_deref(),
            Some("source-controller.flux-system.svc.cluster.local.")
        );
        assert_eq!(config.retention.ttl, Duration::from_secs(120));
        assert_eq!(config.retention.records, 5);
        assert_eq!(config.options.dependency_requeue, Duration::from_secs(5));
    }

    #[test]
    fn advertised_address_is_derived_like_flux() {
        let bound: SocketAddr = "0.0.0.0:9090".parse().unwrap();
        let cases = [
            (":9090", bound, "localhost:9090"),
            ("0.0.0.0:9090", bound, "source-controller-7d9f:9090"),
            (
                "127.0.0.1:0",
                "127.0.0.1:41234".parse().unwrap(),
                "127.0.0.1:41234",
            ),
            (
                "10.0.0.7:9090",
                "10.0.0.7:9090".parse().unwrap(),
                "10.0.0.7:9090",
            ),
        ];
        for (listen, bound, want) in cases {
            let listen: ListenAddr = listen.parse().unwrap();
            assert_eq!(
                derived_advertised_addr(&listen, bound, "source-controller-7d9f"),
                want,
                "{listen}"
            );
        }
        let any: ListenAddr = "0.0.0.0:9090".parse().unwrap();
        assert_eq!(derived_advertised_addr(&any, bound, ""), "localhost:9090");
    }
}
