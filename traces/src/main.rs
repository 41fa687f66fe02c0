//! netlab-traces: parse flags, then receive and serve traces until SIGINT/SIGTERM; logging,
//! signals and the exit code are [`netlab_telemetry::run`]'s (with export off: see
//! [`netlab_traces::Config::telemetry`]).

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_traces::Config::parse();
    let telemetry = cfg.telemetry();
    netlab_telemetry::run("netlab-traces", "netlab_traces", &telemetry, |shutdown| {
        netlab_traces::run(cfg, shutdown)
    })
    .await
}
