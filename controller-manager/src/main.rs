//! netlab-controller-manager: parse flags, then run until SIGINT/SIGTERM;
//! telemetry, signals and the exit code are [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_controller_manager::Config::parse();
    let telemetry = cfg.telemetry.clone();
    netlab_telemetry::run("kube-controller-manager", "netlab_controller_manager", &telemetry, |shutdown| {
        netlab_controller_manager::run(cfg, shutdown)
    })
    .await
}
