//! netlab's cloud: the world outside the cluster, reached over real protocols. This first part
//! serves the public image registry (the OCI distribution API, read side, over a catalogue of
//! images whose configs select the lab's built-in apps) and the upstream DNS resolver that the
//! cluster DNS forwards to. The AWS APIs (EC2, IMDS, STS, ECR) join later, on the same process.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`registry`]: the image store ([`registry::catalog`], [`registry::image`],
//!   [`registry::tar`]) and its HTTP edge ([`registry::http`]).
//! - [`upstream`]: the DNS server edge; [`upstream::zone`]: the outside world's records;
//!   [`upstream::faults`]: UpstreamDNSChaos, followed when `--apiserver` is given.

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
    netlab_health::serve_or_warn(cfg.healthz_bind_address, health.routes(), shutdown.child_token()).await;

    let registry = Arc::new(registry::Registry::from_catalog());
    let listener = tokio::net::TcpListener::bind(cfg.registry_listen)
        .await
        .map_err(|source| Error::Bind { what: "registry", addr: cfg.registry_listen, source })?;
    let registry_addr = listener.local_addr().map_err(Error::Registry)?;
    tracing::info!(addr = %registry_addr, repositories = registry.catalog(None, None).items.len(), "Serving the OCI registry.");

    let faults = Arc::new(upstream::faults::State::default());
    if let Some(apiserver) = &cfg.apiserver {
        let client = netlab_client::Client::new(apiserver).map_err(Error::Client)?;
        tokio::spawn(upstream::faults::watch(client, faults.clone(), shutdown.child_token()));
    }
    let dns_addr = upstream::serve(
        upstream::World::new(cfg.advertise_address),
        faults,
        cfg.dns_listen,
        shutdown.child_token(),
    )
    .await?;
    tracing::info!(addr = %dns_addr, advertise = %cfg.advertise_address, "Serving upstream DNS.");
    health.set_ready(true);

    // The registry runs on this task; the DNS and health servers stop on their child tokens.
    axum::serve(listener, registry::http::router(registry))
        .with_graceful_shutdown(shutdown.child_token().cancelled_owned())
        .await
        .map_err(Error::Registry)
}
