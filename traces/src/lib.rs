//! netlab's embedded trace store: an OTLP/gRPC receiver that keeps spans in bounded memory and
//! answers Jaeger's HTTP query API, so that `netlab up` without a Jaeger still gives
//! `netlab trace` and the labs' checks somewhere to read traces from. It plays the two parts of
//! Jaeger that netlab relies on (compose runs the real Jaeger); the end-to-end tests' in-process
//! collector is this same store and API.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`id`]: trace and span ids as Jaeger reads and prints them.
//! - [`span`]: a stored span: OTLP as received, with its resource and scope.
//! - [`store`]: the bounded store and its indexes.
//! - [`receiver`]: the OTLP `TraceService`.
//! - [`jaeger`]: OTLP to Jaeger's JSON model, as Jaeger's translator maps it.
//! - [`search`]: Jaeger's search parameters and matching.
//! - [`api`]: Jaeger's query API over HTTP.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod api;
pub mod config;
pub mod error;
pub mod id;
pub mod jaeger;
pub mod receiver;
pub mod search;
pub mod span;
pub mod store;

/// Spans and exports for tests, here and in netlab-e2e (feature `test-util`).
#[cfg(any(test, feature = "test-util"))]
pub mod fixture;

pub use config::Config;
pub use error::{Error, Result};
pub use store::Store;

/// Binds both listeners and serves until `shutdown` fires.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let bind = |what: &'static str, addr| async move {
        TcpListener::bind(addr).await.map_err(|source| Error::Bind { what, addr, source })
    };
    let otlp = bind("OTLP", cfg.otlp_bind).await?;
    let http = bind("query", cfg.http_bind).await?;
    tracing::info!(otlp = %cfg.otlp_bind, http = %cfg.http_bind, max_spans = cfg.max_spans, "Receiving traces.");
    serve(otlp, http, Store::new(cfg.max_spans), shutdown).await
}

/// Serves OTLP on `otlp` and the query API (with `/healthz` and `/readyz`) on `http` over
/// `store`, until `shutdown` fires or either server fails.
pub async fn serve(
    otlp: TcpListener,
    http: TcpListener,
    store: Store,
    shutdown: CancellationToken,
) -> Result<()> {
    let health = netlab_health::Health::new();
    // Both listeners are bound: exports are accepted (queued by the kernel) from here on.
    health.set_ready(true);
    let routes = api::router(store.clone()).merge(health.routes());
    let stop = shutdown.child_token();
    let grpc = receiver::serve(otlp, store, stop.clone());
    let query = api::serve(http, routes, stop.clone());
    // One server failing stops the other: the process is useless half up.
    let stopped = tokio::try_join!(async { grpc.await.inspect_err(|_| stop.cancel()) }, async {
        query.await.inspect_err(|_| stop.cancel())
    });
    stopped.map(|_| ())
}
