//! netlab-dns: parse flags, set up telemetry, serve DNS until SIGINT/SIGTERM.

use clap::Parser as _;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_dns::Config::parse();
    // The crate name becomes the `<crate>=debug` directive of the default log filter; putting
    // `hickory_server=warn` in front keeps hickory's one-line-per-query INFO logs out of the way
    // (CoreDNS logs queries only with its `log` plugin).
    let _telemetry = match netlab_telemetry::init("coredns", "hickory_server=warn,netlab_dns", &cfg.telemetry)
    {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("Error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(netlab_telemetry::shutdown_on_signal(shutdown.clone()));
    match netlab_dns::run(cfg, shutdown).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
