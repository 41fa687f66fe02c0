//! netlab's kube-scheduler: watches Pods and Nodes, and binds each pending pod (no
//! `spec.nodeName`, `spec.schedulerName` naming this scheduler) to a node, running the filters
//! and the scoring kube-scheduler runs by default for what netlab's pods ask of a node (pod
//! count, readiness, cordons, taints, node selectors and affinity). A pod that fits nowhere stays
//! Pending with upstream's `PodScheduled=False`/`Unschedulable` condition and `FailedScheduling`
//! event, and is retried when the cluster changes.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`filter`]: the Filter plugins and the `0/N nodes are available` message.
//! - [`score`]: least-allocated scoring and random tie-breaking.
//! - [`cache`]: nodes and per-node pod counts, with assumed pods.
//! - [`queue`]: active, backoff and unschedulable pods.
//! - [`scheduler`]: the loop that ties them to the apiserver.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use netlab_client::{Client, ListParams, reflector::reflector};
use tokio_util::sync::CancellationToken;

pub mod cache;
pub mod config;
pub mod error;
pub mod filter;
pub mod queue;
pub mod scheduler;
pub mod score;

pub use config::Config;
pub use error::{Error, Result};

/// Pods that hold a node or want one: upstream's scheduler informer drops finished pods the same
/// way, so a pod that completes leaves the watch (and frees its slot).
const POD_FIELDS: &str = "status.phase!=Succeeded,status.phase!=Failed";

/// Schedules pods until `shutdown` fires.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    if cfg.max_in_flight == 0 {
        return Err(Error::Config("--max-in-flight must be at least 1".into()));
    }
    let health = netlab_health::Health::new();
    let faults =
        netlab_faults::Faults::new(netlab_faults::Me::component(netlab_faults::Component::Scheduler));
    netlab_health::serve_or_warn(
        cfg.healthz_bind_address,
        faults.guard(health.routes()),
        shutdown.child_token(),
    )
    .await;
    let client = Client::new(&cfg.server)?;
    faults.spawn_watch(client.clone(), shutdown.child_token());
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = client.wait_ready(Duration::from_millis(500)) => {}
    }
    let (nodes, node_changes) =
        reflector::<Node>(client.clone(), ListParams::default(), shutdown.child_token());
    let pod_params = ListParams { fields: POD_FIELDS.into(), ..Default::default() };
    let (pods, pod_changes) = reflector::<Pod>(client.clone(), pod_params, shutdown.child_token());
    // Nothing is decided before both lists are in: a pod bound before a restart must count
    // before any new pod is placed.
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = async { nodes.wait_synced().await; pods.wait_synced().await } => {}
    }
    health.set_ready(true);
    tracing::info!(scheduler = %cfg.scheduler_name, nodes = nodes.list().len(), pods = pods.list().len(), "Synced; scheduling.");
    scheduler::Scheduler::run(
        cfg.scheduler_name,
        client,
        cfg.max_in_flight,
        node_changes,
        pod_changes,
        faults.gate().clone(),
        shutdown,
    )
    .await;
    Ok(())
}
