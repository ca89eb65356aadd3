//! The command line of the `kustomize-controller` binary: Flux's flag names and defaults.
//!
//! Besides the SDK's shared groups (`--concurrent` (4), `--metrics-addr`,
//! `--enable-leader-election`, `--watch-label-selector`, ...):
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--requeue-dependency` | `30s` | how long to wait before checking unready dependencies (or a missing artifact) again |
//! | `--default-service-account` | none | ServiceAccount impersonated by Kustomizations that name none |
//! | `--no-cross-namespace-refs` | `false` | refuse `sourceRef`s to other namespaces |
//! | `--no-remote-bases` | `false` | refuse remote bases (always the case: our engine never fetches them) |
//! | `--override-manager` | none | field managers (repeatable) whose fields the controller takes over |
//! | `--feature-gates` | none | `StrictPostBuildSubstitutions=true` makes undefined variables errors; other gates are accepted and ignored |
//!
//! `$SOURCE_CONTROLLER_LOCALHOST`, as in Flux, replaces the host of artifact URLs.

use std::path::PathBuf;

use clap::Parser;
use toolkit_sdk::api::GoDuration;
use toolkit_sdk::flags::{LeaderElectionArgs, ObservabilityArgs, RuntimeArgs};
use toolkit_sdk::runtime::ControllerOptions;

use super::{CONTROLLER_NAME, Config, Settings};

/// The feature gate that makes undefined substitution variables errors.
pub const STRICT_SUBSTITUTIONS_GATE: &str = "StrictPostBuildSubstitutions";

/// The flags of the `kustomize-controller` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "kustomize-controller",
    version,
    about = "Builds Kustomizations from source artifacts and keeps them applied to the cluster."
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

    /// How long to wait before checking dependencies that are not ready again (Go duration).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub requeue_dependency: GoDuration,

    /// ServiceAccount impersonated by Kustomizations without spec.serviceAccountName.
    #[arg(long, default_value = "", value_name = "NAME")]
    pub default_service_account: String,

    /// Refuse sources in another namespace than the Kustomization's.
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

    /// Refuse remote bases in kustomizations (ours never fetches them, so they always fail).
    #[arg(
        long,
        default_value_t = false,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    pub no_remote_bases: bool,

    /// A field manager whose fields are taken over on apply (repeatable).
    #[arg(long = "override-manager", value_name = "NAME")]
    pub override_managers: Vec<String>,

    /// Feature gates, `Name=true|false` separated by commas.
    #[arg(long, default_value = "", value_name = "GATES")]
    pub feature_gates: String,

    /// The kubeconfig file; by default $KUBECONFIG, ~/.kube/config, or the in-cluster account.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

impl Args {
    /// Parses the process's command line (exits with clap's message on bad flags or `--help`).
    pub fn from_command_line() -> Self {
        Self::parse()
    }

    /// Whether the feature gate `name` is set to `true`.
    pub fn gate(&self, name: &str) -> bool {
        self.feature_gates
            .split(',')
            .filter_map(|gate| gate.split_once('='))
            .any(|(key, value)| key.trim() == name && value.trim().eq_ignore_ascii_case("true"))
    }

    /// The controller configuration these flags describe.
    pub fn config(&self) -> Config {
        let mut options = ControllerOptions::new(CONTROLLER_NAME);
        options.runtime = self.runtime.clone();
        options.leader_election = self.leader_election.clone();
        options.observability = self.observability.clone();
        options.dependency_requeue = self.requeue_dependency.as_duration();
        let base = Config::new();
        Config {
            options,
            settings: Settings {
                default_service_account: Some(self.default_service_account.trim().to_owned())
                    .filter(|s| !s.is_empty()),
                no_cross_namespace_refs: self.no_cross_namespace_refs,
                no_remote_bases: self.no_remote_bases,
                override_managers: self.override_managers.clone(),
                dependency_requeue: self.requeue_dependency.as_duration(),
                strict_substitutions: self.gate(STRICT_SUBSTITUTIONS_GATE),
                source_localhost: base.settings.source_localhost,
            },
            fetch_limits: base.fetch_limits,
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
        let config = Args::try_parse_from(["kustomize-controller"])
            .unwrap()
            .config();
        assert_eq!(config.options.name, "kustomize-controller");
        assert_eq!(config.options.runtime.concurrent, 4);
        assert_eq!(config.options.dependency_requeue, Duration::from_secs(30));
        assert_eq!(config.settings.default_service_account, None);
        assert!(!config.settings.no_cross_namespace_refs);
        assert!(!config.settings.strict_substitutions);
        assert!(config.settings.override_managers.is_empty());
    }

    #[test]
    fn a_flux_deployment_command_line_parses() {
        let args = Args::try_parse_from([
            "kustomize-controller",
            "--events-addr=http://notification-controller.flux-system.svc.cluster.local./",
            "--watch-all-namespaces=true",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
            "--concurrent=10",
            "--requeue-dependency=5s",
            "--default-service-account=default",
            "--no-cross-namespace-refs=true",
            "--no-remote-bases=true",
            "--override-manager=helm",
            "--override-manager=terraform",
            "--feature-gates=StrictPostBuildSubstitutions=true,OtherGate=false",
        ])
        .unwrap();
        let config = args.config();
        assert_eq!(config.options.runtime.concurrent, 10);
        assert_eq!(config.options.dependency_requeue, Duration::from_secs(5));
        assert_eq!(
            config.settings.default_service_account.as_deref(),
            Some("default")
        );
        assert!(config.settings.no_cross_namespace_refs);
        assert!(config.settings.no_remote_bases);
        assert_eq!(config.settings.override_managers, ["helm", "terraform"]);
        assert!(config.settings.strict_substitutions);
        assert!(!args.gate("OtherGate"));
    }
}
