//! `netlab`, the lab's kubectl: parse the command line and hand over to the library.
//!
//! Unlike the servers, main prints nothing itself: kubectl's error wording is part of the
//! interface, so `netlab_cli::run` prints its own errors and only returns the exit code.

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    netlab_cli::run(netlab_cli::Cli::parse()).await
}
