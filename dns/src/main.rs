//! netlab-dns: parse flags, then serve DNS until SIGINT/SIGTERM; telemetry, signals and the exit code are
//! [`netlab_telemetry::run`]'s.

use clap::Parser as _;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cfg = netlab_dns::Config::parse();
    let telemetry = cfg.telemetry.clone();
    // The crate name becomes the `<crate>=debug` directive of the default log filter; putting
    // `hickory_server=warn` in front keeps hickory's one-line-per-query INFO logs out of the way
    // (CoreDNS logs queries only with its `log` plugin).
    netlab_telemetry::run("coredns", "hickory_server=warn,netlab_dns", &telemetry, |shutdown| {
        netlab_dns::run(cfg, shutdown)
    })
    .await
}
