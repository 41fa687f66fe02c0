//! `netlab`, the lab's kubectl: parse the command line and hand over to the library.
//!
//! Unlike the servers, main prints no `Error: ...` itself: kubectl's error wording is part of the
//! interface, so `netlab_cli::run` prints its own errors and only returns the exit code.

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match netlab_cli::Cli::try_parse() {
        Ok(cli) => netlab_cli::run(cli).await,
        Err(e) => {
            let _ = e.print();
            // kubectl exits 1 on a bad flag, not clap's 2; `--help` and `--version` succeed.
            if e.use_stderr() { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
    }
}
