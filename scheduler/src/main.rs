//! netlab-scheduler: parse flags, then run until SIGINT/SIGTERM; telemetry, signals and the exit code are
//! [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_scheduler::Config::parse();
    let telemetry = cfg.telemetry.clone();
    netlab_telemetry::run("kube-scheduler", "netlab_scheduler", &telemetry, |shutdown| {
        netlab_scheduler::run(cfg, shutdown)
    })
    .await
}
