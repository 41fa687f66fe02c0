//! netlab's cloud: the world outside the cluster, reached over real protocols. This first part
//! serves the public image registry (the OCI distribution API, read side, over a catalogue of
//! images whose configs select the lab's built-in apps) and the upstream DNS resolver that the
//! cluster DNS forwards to. The AWS APIs (EC2, IMDS, STS, ECR) join later, on the same process.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`registry`]: the image store ([`registry::catalog`], [`registry::image`],
//!   [`registry::tar`]) and its HTTP edge ([`registry::http`]).
//! - [`upstream`]: the DNS server edge; [`upstream::zone`]: the outside world's records.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

pub mod config;
pub mod error;
pub mod registry;
pub mod upstream;

pub use config::Config;
pub use error::{Error, Result};

/// Starts the registry, the upstream resolver and the health endpoints; returns when
/// `shutdown` fires (or a server fails).
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let health = netlab_health::Health::new();
    let faults = netlab_faults::Faults::new(netlab_faults::Me::component(netlab_faults::Component::Cloud));
    netlab_health::serve_or_warn(
        cfg.healthz_bind_address,
        faults.guard(health.routes()),
        shutdown.child_token(),
    )
    .await;

    let registry = Arc::new(registry::Registry::from_catalog());
    let listener = tokio::net::TcpListener::bind(cfg.registry_listen)
        .await
        .map_err(|source| Error::Bind { what: "registry", addr: cfg.registry_listen, source })?;
    let registry_addr = listener.local_addr().map_err(Error::Registry)?;
    tracing::info!(addr = %registry_addr, repositories = registry.catalog(None, None).items.len(), "Serving the OCI registry.");

    let dns_addr =
        upstream::serve(upstream::World::new(cfg.advertise_address), cfg.dns_listen, shutdown.child_token())
            .await?;
    tracing::info!(addr = %dns_addr, advertise = %cfg.advertise_address, "Serving upstream DNS.");
    health.set_ready(true);

    // Component faults come through the apiserver, when the cloud is given one (it is the world
    // outside the cluster and runs without it otherwise).
    if let Some(server) = &cfg.server {
        match netlab_client::Client::new(server) {
            Ok(client) => faults.spawn_watch(client, shutdown.child_token()),
            Err(error) => tracing::warn!(%error, "Component faults are not followed."),
        }
    }
    let listener = faults.listener(listener).map_err(Error::Registry)?;
    // The registry runs on this task; the DNS and health servers stop on their child tokens.
    axum::serve(listener, registry::http::router(registry))
        .with_graceful_shutdown(shutdown.child_token().cancelled_owned())
        .await
        .map_err(Error::Registry)
}
