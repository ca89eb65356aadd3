//! `notification-controller`: Flux events in, notifications out through Providers as Alerts
//! select; Receivers' webhooks in, immediate reconciles out. See the library docs
//! (`notification_controller::controller`).

use std::process::ExitCode;

use notification_controller::controller::{self, args::Args};

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::from_command_line();
    toolkit_sdk::logging::init(&args.observability());
    match controller::run(args.config(), args.kubeconfig.as_deref()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // The whole cause chain on one line, without a backtrace.
            eprintln!("error: {:#}", anyhow::Error::new(err));
            ExitCode::FAILURE
        }
    }
}
