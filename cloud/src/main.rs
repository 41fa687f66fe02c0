//! netlab-cloud: parse flags, then run until SIGINT/SIGTERM; telemetry, signals and the exit code are
//! [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_cloud::Config::parse();
    let telemetry = cfg.telemetry.clone();
    netlab_telemetry::run("cloud", "netlab_cloud", &telemetry, |shutdown| netlab_cloud::run(cfg, shutdown))
        .await
}
