//! netlab-node-agent: parse flags, then run the node until SIGINT/SIGTERM;
//! telemetry, signals and the exit code are [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_node_agent::Config::parse();
    let telemetry = cfg.telemetry.clone();
    netlab_telemetry::run("kubelet", "netlab_node_agent", &telemetry, |shutdown| {
        netlab_node_agent::run(cfg, shutdown)
    })
    .await
}
