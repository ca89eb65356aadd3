//! `kustomize-controller`: Kustomizations from source artifacts to a converged cluster.
//! See the library docs (`kustomize_controller::controller`).

use std::process::ExitCode;

use kustomize_controller::controller::{self, args::Args};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::from_command_line();
    toolkit_sdk::logging::init(&args.observability);
    match controller::run(args.config(), args.kubeconfig.as_deref()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole cause chain on one line, without a backtrace.
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::FAILURE
        }
    }
}
