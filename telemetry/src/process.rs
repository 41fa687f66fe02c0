//! The life of a netlab component binary, which every `main` would otherwise write again: install
//! telemetry, make one shutdown token that SIGINT or SIGTERM cancels, run the component, and turn
//! its result into the exit code, printing a failure as `Error: outer: cause: cause` (the whole
//! source chain, as anyhow's `{:#}` does) on stderr.

use std::{error::Error as StdError, future::Future, process::ExitCode};

use tokio_util::sync::CancellationToken;

use crate::Args;

/// Runs one component: `service_name` is its Kubernetes name (the `service.name` of its spans),
/// `crate_filter` the log directives it adds to `info` (see [`crate::init`]), and `component` the
/// library's `run(config, shutdown)` with the config already moved in.
///
/// Must be called inside a Tokio runtime.
pub async fn run<F, Fut, E>(
    service_name: &'static str,
    crate_filter: &str,
    args: &Args,
    component: F,
) -> ExitCode
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Into<Box<dyn StdError + Send + Sync>>,
{
    let _telemetry = match crate::init(service_name, crate_filter, args) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("Error: {}", chain(&e));
            return ExitCode::FAILURE;
        }
    };
    let shutdown = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(shutdown.clone()));
    match component(shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let e: Box<dyn StdError + Send + Sync> = e.into();
            // Said once, on stderr, where the log also goes (STYLE: log an error once).
            eprintln!("Error: {}", chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// `error: source: source ...`, each cause once (a cause whose text its parent already ends
/// with, as `#[error(transparent)]` and `{source}` formats give, is not repeated).
pub fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        let part = cause.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = cause.source();
    }
    text
}

/// Cancels `token` on SIGINT or SIGTERM: every binary's one shutdown signal.
pub async fn shutdown_on_signal(token: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT: shutting down."),
        _ = term => tracing::info!("SIGTERM: shutting down."),
    }
    token.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("reading {path}")]
    struct Outer {
        path: &'static str,
        #[source]
        source: std::io::Error,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("starting: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn chain_names_every_cause_once() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        assert_eq!(chain(&Outer { path: "/x", source: io() }), "reading /x: no such file");
        assert_eq!(chain(&Repeats(io())), "starting: no such file");
    }
}
