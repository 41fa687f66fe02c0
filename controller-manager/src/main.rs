//! netlab-controller-manager: parse flags, set up telemetry, run until SIGINT/SIGTERM.

use clap::Parser as _;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_controller_manager::Config::parse();
    let _telemetry = match netlab_telemetry::init(
        "kube-controller-manager",
        "netlab_controller_manager",
        &cfg.telemetry,
    ) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(netlab_telemetry::shutdown_on_signal(shutdown.clone()));
    match netlab_controller_manager::run(cfg, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
