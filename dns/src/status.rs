//! The HTTP endpoints CoreDNS serves and kubeadm's probes use: `/health` (the `health` plugin,
//! 200 while the process runs), `/ready` (the `ready` plugin: 200 once the kubernetes plugin has
//! synced, 503 listing it before) and `/metrics` (the `prometheus` plugin). Each answers 404
//! while the running Corefile lacks its plugin, so removing `prometheus` from the ConfigMap
//! takes effect without a restart; the listen addresses come from flags.

use std::sync::Arc;

use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio_util::sync::CancellationToken;

use crate::{
    Config, Shared,
    error::{Error, Result},
};

/// Binds `/health`, `/ready` and `/metrics` on their flag addresses and serves until `shutdown`.
pub async fn serve(shared: Arc<Shared>, cfg: &Config, shutdown: CancellationToken) -> Result<()> {
    serve_guarded(shared, cfg, None, shutdown).await
}

/// [`serve`], with `/health` and `/ready` failing while a component fault holds the process,
/// and `/fault` beside `/ready`.
pub async fn serve_guarded(
    shared: Arc<Shared>,
    cfg: &Config,
    faults: Option<&netlab_faults::Faults>,
    shutdown: CancellationToken,
) -> Result<()> {
    let routes = [
        ("health", cfg.health_listen, Router::new().route("/health", get(health))),
        ("ready", cfg.ready_listen, Router::new().route("/ready", get(ready))),
        ("prometheus", cfg.metrics_listen, Router::new().route("/metrics", get(metrics))),
    ];
    for (what, addr, router) in routes {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|source| Error::Bind { what, addr, source })?;
        let local = listener.local_addr().map_err(|source| Error::Bind { what, addr, source })?;
        tracing::info!(plugin = what, addr = %local, "Serving HTTP.");
        let app = router.with_state(shared.clone());
        let app = match faults {
            Some(f) if what == "ready" => f.guard(app),
            Some(f) => app.layer(axum::middleware::from_fn_with_state(f.clone(), netlab_faults::http::guard)),
            None => app,
        };
        let token = shutdown.clone();
        tokio::spawn(async move {
            if let Err(error) =
                axum::serve(listener, app).with_graceful_shutdown(token.cancelled_owned()).await
            {
                tracing::warn!(plugin = what, %error, "HTTP server stopped.");
            }
        });
    }
    Ok(())
}

async fn health(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if !shared.blocks().has("health") {
        return (StatusCode::NOT_FOUND, "404 page not found\n");
    }
    (StatusCode::OK, "OK")
}

async fn ready(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    if !shared.blocks().has("ready") {
        return (StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if shared.is_synced() { (StatusCode::OK, "OK") } else { (StatusCode::SERVICE_UNAVAILABLE, "kubernetes") }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let blocks = shared.blocks();
    if !blocks.has("prometheus") {
        return (StatusCode::NOT_FOUND, "404 page not found\n".to_string());
    }
    let mut text = shared.metrics.render();
    text.push_str(&blocks.render_gauges(&shared.metrics));
    (StatusCode::OK, text)
}
