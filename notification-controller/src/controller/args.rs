//! The command line of the `notification-controller` binary: Flux's flag names and defaults.
//!
//! Besides the SDK's reconcile-loop and leader election flags (`--concurrent`,
//! `--watch-all-namespaces`, `--enable-leader-election`, ...):
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--events-addr` | `:9090` | where the event endpoint listens (not a URL to send to, unlike the other controllers) |
//! | `--receiverAddr` | `:9292` | where the webhook receiver listens |
//! | `--metrics-addr` | `:8080` | where `/metrics` is served |
//! | `--health-addr` | `:9440` | where `/healthz` and `/readyz` are served |
//! | `--rate-limit-interval` | `5m` | repeats of an event within it are refused (429) |
//! | `--no-cross-namespace-refs` | `false` | Alerts take events, and Receivers annotate objects, of their own namespace only |
//! | `--requeue-dependency` | `30s` | ours: how soon a Provider with a missing Secret, an Alert with a missing Provider, is checked again |
//! | `--log-level`, `--log-encoding` | `info`, `json` | logs |
//! | `--feature-gates`, `--export-http-path-metrics` | | accepted for compatibility with Flux Deployments, ignored |

use std::path::PathBuf;

use clap::Parser;
use toolkit_sdk::api::GoDuration;
use toolkit_sdk::flags::{
    LeaderElectionArgs, ListenAddr, LogEncoding, LogLevel, ObservabilityArgs, RuntimeArgs,
};
use toolkit_sdk::runtime::ControllerOptions;

use super::{CONTROLLER_NAME, Config};

/// The flags of the `notification-controller` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "notification-controller",
    version,
    about = "Takes Flux events and sends them through Providers as Alerts select; serves the webhooks of Receivers."
)]
pub struct Args {
    /// Reconcile loop flags (`--concurrent`, retry delays, watched namespaces).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    /// Leader election flags.
    #[command(flatten)]
    pub leader_election: LeaderElectionArgs,

    /// Where `/metrics` is served (`:8080` means all interfaces).
    #[arg(long, default_value = ":8080", value_name = "ADDR")]
    pub metrics_addr: ListenAddr,

    /// Where `/healthz` and `/readyz` are served.
    #[arg(long, default_value = ":9440", value_name = "ADDR")]
    pub health_addr: ListenAddr,

    /// Where the event endpoint listens.
    #[arg(long, default_value = ":9090", value_name = "ADDR")]
    pub events_addr: ListenAddr,

    /// Where the webhook receiver listens.
    #[arg(long = "receiverAddr", default_value = ":9292", value_name = "ADDR")]
    pub receiver_addr: ListenAddr,

    /// Repeats of the same event within this interval are refused (Go duration; 0 disables).
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub rate_limit_interval: GoDuration,

    /// Alerts take events only about objects in their own namespace, and Receivers annotate
    /// only objects in theirs.
    #[arg(
        long,
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub no_cross_namespace_refs: bool,

    /// How soon a Provider with a missing Secret, or an Alert with a missing or unready
    /// Provider, is checked again (Go duration).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub requeue_dependency: GoDuration,

    /// Log verbosity: trace, debug, info or error.
    #[arg(long, value_enum, default_value_t = LogLevel::Info, value_name = "LEVEL")]
    pub log_level: LogLevel,

    /// Log encoding: json or console.
    #[arg(long, value_enum, default_value_t = LogEncoding::Json, value_name = "ENCODING")]
    pub log_encoding: LogEncoding,

    /// Flux feature gates; accepted for compatibility and ignored.
    #[arg(long, default_value = "", value_name = "GATES")]
    pub feature_gates: String,

    /// Flux's per-path HTTP metrics switch; accepted for compatibility and ignored.
    #[arg(
        long,
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub export_http_path_metrics: bool,

    /// The kubeconfig file; by default $KUBECONFIG, ~/.kube/config, or the in-cluster account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

impl Args {
    /// Parses the process's command line (exits with clap's message on bad flags or `--help`).
    pub fn from_command_line() -> Self {
        Self::parse()
    }

    /// The logging, metrics and health flags in the SDK's shape (no events address: this
    /// controller records Kubernetes Events only).
    pub fn observability(&self) -> ObservabilityArgs {
        ObservabilityArgs {
            metrics_addr: self.metrics_addr,
            health_addr: self.health_addr,
            events_addr: None,
            log_level: self.log_level,
            log_encoding: self.log_encoding,
        }
    }

    /// The controller configuration these flags describe.
    pub fn config(&self) -> Config {
        let mut options = ControllerOptions::new(CONTROLLER_NAME);
        options.runtime = self.runtime.clone();
        options.leader_election = self.leader_election.clone();
        options.observability = self.observability();
        options.dependency_requeue = self.requeue_dependency.as_duration();
        Config {
            options,
            events_addr: self.events_addr,
            receiver_addr: self.receiver_addr,
            rate_limit_interval: self.rate_limit_interval.as_duration(),
            no_cross_namespace_refs: self.no_cross_namespace_refs,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn defaults_are_fluxs() {
        let config = Args::try_parse_from(["notification-controller"])
            .unwrap()
            .config();
        assert_eq!(config.options.name, "notification-controller");
        assert_eq!(config.events_addr.to_string(), ":9090");
        assert_eq!(config.receiver_addr.to_string(), ":9292");
        assert_eq!(
            config.options.observability.metrics_addr.to_string(),
            ":8080"
        );
        assert_eq!(
            config.options.observability.health_addr.to_string(),
            ":9440"
        );
        assert_eq!(config.options.observability.events_addr, None);
        assert_eq!(config.rate_limit_interval, Duration::from_secs(300));
        assert!(!config.no_cross_namespace_refs);
        assert_eq!(config.options.runtime.concurrent, 4);
    }

    #[test]
    fn a_flux_deployment_command_line_parses() {
        let config = Args::try_parse_from([
            "notification-controller",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--events-addr=:19090",
            "--receiverAddr=127.0.0.1:19292",
            "--rate-limit-interval=30s",
            "--no-cross-namespace-refs=true",
            "--feature-gates=CacheSecretsAndConfigMaps=true",
        ])
        .unwrap()
        .config();
        assert!(config.options.leader_election.enable_leader_election);
        assert_eq!(config.events_addr.socket_addr().port(), 19090);
        assert_eq!(
            config.receiver_addr.socket_addr(),
            "127.0.0.1:19292".parse().unwrap()
        );
        assert_eq!(config.rate_limit_interval, Duration::from_secs(30));
        assert!(config.no_cross_namespace_refs);
    }

    #[test]
    fn bad_values_name_the_flag() {
        for (arg, flag) in [
            ("--events-addr=http://x/", "--events-addr"),
            ("--rate-limit-interval=5", "--rate-limit-interval"),
            ("--receiverAddr=9292", "--receiverAddr"),
        ] {
            let err = Args::try_parse_from(["notification-controller", arg])
                .unwrap_err()
                .to_string();
            assert!(err.contains(flag), "{arg}: {err}");
        }
    }
}
