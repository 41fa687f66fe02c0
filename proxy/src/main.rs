//! netlab-proxy: parse flags, then run until SIGINT/SIGTERM; telemetry, signals and the exit code are
//! [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_proxy::Config::parse();
    let telemetry = cfg.telemetry.clone();
    netlab_telemetry::run("kube-proxy", "netlab_proxy", &telemetry, |shutdown| {
        netlab_proxy::run(cfg, shutdown)
    })
    .await
}
