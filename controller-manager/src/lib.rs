//! netlab's kube-controller-manager: the controllers that turn what users write (Services,
//! Deployments, StatefulSets, Nodes) into what the cluster needs (EndpointSlices, ReplicaSets,
//! Pods, pod CIDRs). Each controller lists and watches through [`netlab_client::reflector`], queues
//! the keys that changed on a [`queue::Queue`], and reconciles each key idempotently with several
//! workers, so a relist or a restart converges without duplicates.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors. [`queue`]: the work queue.
//! - [`nodeipam`]: a podCIDR per Node from the cluster CIDR.
//! - [`nodelifecycle`]: Nodes whose kubelet went silent turn NotReady and are tainted.
//! - [`endpointslice`]: EndpointSlices for Services with selectors.
//! - [`deployment`], [`replicaset`]: Deployment → ReplicaSet → Pods, rolling updates.
//! - [`statefulset`]: ordered, stable pods.
//! - [`gc`]: garbage collection through ownerReferences.

use std::time::Duration;

use netlab_client::Client;
use tokio_util::sync::CancellationToken;

pub mod config;
pub mod deployment;
pub mod endpointslice;
pub mod error;
pub mod gc;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod queue;
pub mod replicaset;
pub mod statefulset;

pub use config::Config;
pub use error::{Error, Result};

/// What every controller gets.
#[derive(Clone)]
pub struct Context {
    /// The apiserver.
    pub client: Client,
    /// The flags.
    pub config: std::sync::Arc<Config>,
}

/// Runs every enabled controller until `shutdown` fires.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> anyhow::Result<()> {
    let health = netlab_health::Health::new();
    netlab_health::serve_or_warn(cfg.healthz_bind_address, health.routes(), shutdown.child_token()).await;
    let client = Client::new(&cfg.server)?;
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = client.wait_ready(Duration::from_millis(500)) => {}
    }
    health.set_ready(true);
    let ctx = Context { client, config: std::sync::Arc::new(cfg) };
    let tracker = tokio_util::task::TaskTracker::new();
    macro_rules! start {
        ($name:literal, $module:ident) => {
            if ctx.config.enabled($name) {
                let (ctx, token) = (ctx.clone(), shutdown.child_token());
                tracker.spawn(async move {
                    if let Err(error) = $module::run(ctx, token).await {
                        tracing::error!(controller = $name, %error, "Controller stopped.");
                    }
                });
                tracing::info!(controller = $name, "Started.");
            }
        };
    }
    start!("nodeipam", nodeipam);
    start!("nodelifecycle", nodelifecycle);
    start!("endpointslice", endpointslice);
    start!("deployment", deployment);
    start!("replicaset", replicaset);
    start!("statefulset", statefulset);
    start!("garbagecollector", gc);
    tracker.close();
    shutdown.cancelled().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    Ok(())
}
