//! `greeter-controller`: turns Greetings into ConfigMaps. See the library docs.

use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use toolkit_sdk::api::GoDuration;
use toolkit_sdk::flags::{LeaderElectionArgs, ObservabilityArgs, RuntimeArgs};
use toolkit_sdk::runtime::ControllerOptions;

/// The greeter controller's flags: the SDK's groups plus its own.
#[derive(Debug, Parser)]
#[command(version, about = "Turns Greetings into ConfigMaps.")]
struct Args {
    #[command(flatten)]
    runtime: RuntimeArgs,
    #[command(flatten)]
    leader_election: LeaderElectionArgs,
    #[command(flatten)]
    observability: ObservabilityArgs,
    /// How long to wait before checking a missing dependency again (Go duration).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    requeue_dependency: GoDuration,
    /// The kubeconfig file; by default $KUBECONFIG, ~/.kube/config, or the in-cluster account.
    #[arg(long, value_name = "PATH")]
    kubeconfig: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    toolkit_sdk::logging::init(&args.observability);
    let mut options = ControllerOptions::new(greeter_controller::CONTROLLER_NAME);
    options.runtime = args.runtime;
    options.leader_election = args.leader_election;
    options.observability = args.observability;
    options.dependency_requeue = args.requeue_dependency.as_duration();
    match greeter_controller::run(options, args.kubeconfig.as_deref()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole cause chain on one line, without a backtrace.
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
