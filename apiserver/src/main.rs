//! netlab-apiserver: parse flags, then run until SIGINT/SIGTERM; telemetry, signals and the exit code are
//! [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_apiserver::Config::parse();
    let telemetry = cfg.telemetry.clone();
    netlab_telemetry::run("kube-apiserver", "netlab_apiserver", &telemetry, |shutdown| {
        netlab_apiserver::run(cfg, shutdown)
    })
    .await
}
