//! netlab's kube-controller-manager: the controllers that turn what users write (Services,
//! Deployments, StatefulSets, DaemonSets, Nodes) into what the cluster needs (EndpointSlices,
//! ReplicaSets, Pods, pod CIDRs). Each controller lists and watches through [`netlab_client::reflector`] and
//! runs on the one [`controller::Controller`] runner: the keys that changed are queued on a
//! [`queue::Queue`] and reconciled idempotently by several workers, so a relist or a restart
//! converges without duplicates. Every task is spawned on one [`tasks::Tasks`], so shutdown stops
//! them all.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`tasks`]: every task the process starts, tracked and cancelled together.
//! - [`events`]: Events recorded in the background.
//! - [`controller`]: the runner: watched kinds → keys → [`queue`] → workers running a reconcile.
//! - [`queue`]: the work queue (deduplicated keys, per-key backoff, delayed keys).
//! - [`nodeipam`]: a podCIDR per Node from the cluster CIDR, allocated by [`cidrset`].
//! - [`nodelifecycle`]: Nodes whose kubelet went silent turn NotReady and are tainted.
//! - [`endpointslice`]: EndpointSlices for Services with selectors.
//! - [`deployment`], [`replicaset`]: Deployment → ReplicaSet → Pods, rolling updates.
//! - [`statefulset`]: ordered, stable pods.
//! - [`daemonset`]: one pod per node (the VPC CNI's `aws-node`, kube-proxy), rolling updates.
//! - what those three share: [`claim`] (adopting and releasing), [`pod`] (pod predicates,
//!   ownerReferences, deletion order), [`selector`] (label selector matching), [`hash`]
//!   (pod-template hashes).
//! - [`gc`]: garbage collection through ownerReferences.
//! - [`serviceaccount`]: a `default` ServiceAccount in every namespace.
//! - [`chaos`]: the fault objects' records, phases, conditions and events (the only place pod
//!   selectors of faults are evaluated), and pod-kill.

use std::time::Duration;

use netlab_client::Client;
use tokio_util::sync::CancellationToken;

pub mod chaos;
pub mod cidrset;
pub mod claim;
pub mod config;
pub mod controller;
pub mod daemonset;
pub mod deployment;
pub mod endpointslice;
pub mod error;
pub mod events;
pub mod gc;
pub mod hash;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod pod;
pub mod queue;
pub mod replicaset;
pub mod selector;
pub mod serviceaccount;
pub mod statefulset;
pub mod tasks;

pub use config::Config;
pub use error::{Error, Result};

/// What every controller gets.
#[derive(Clone)]
pub struct Context {
    /// The apiserver.
    pub client: Client,
    /// The flags.
    pub config: std::sync::Arc<Config>,
    /// Where every task is spawned.
    pub tasks: tasks::Tasks,
}

// === impl Context ===

impl Context {
    /// A reflector (list-watch into a cache, and its changes) for the `K`s `params` selects,
    /// stopped with the other tasks.
    pub fn reflector<K: netlab_client::Object>(
        &self,
        params: netlab_client::ListParams,
    ) -> (
        netlab_client::reflector::Cache<K>,
        tokio::sync::mpsc::UnboundedReceiver<netlab_client::reflector::Change<K>>,
    ) {
        let (cache, changes, task) = netlab_client::reflector::reflector_task(self.client.clone(), params);
        self.tasks.spawn(task);
        (cache, changes)
    }

    /// Events recorded as `component`.
    pub fn events(&self, component: &str) -> events::Events {
        events::Events::new(self.client.clone(), component, self.tasks.clone())
    }
}

/// How long [`run`] waits for its tasks after shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How a controller starts: its reflectors and runner, spawned on `ctx.tasks`.
type Start = fn(&Context) -> Result<()>;

/// Each controller by its `--controllers` name, and how it starts.
const STARTERS: [(&str, Start); 10] = [
    ("nodeipam", nodeipam::start),
    ("nodelifecycle", nodelifecycle::start),
    ("endpointslice", endpointslice::start),
    ("deployment", deployment::start),
    ("replicaset", replicaset::start),
    ("statefulset", statefulset::start),
    ("daemonset", daemonset::start),
    ("garbagecollector", gc::start),
    ("chaos", chaos::start),
    ("serviceaccount", serviceaccount::start),
];

/// Starts every controller `--controllers` enables on `ctx.tasks`. One that cannot start (a bad
/// flag of its own) is logged and left out; the others run.
pub fn start(ctx: &Context) {
    for (name, start) in STARTERS {
        if !ctx.config.enabled(name) {
            continue;
        }
        match start(ctx) {
            Ok(()) => tracing::info!(controller = name, "Started."),
            Err(error) => {
                let cause = std::error::Error::source(&error).map(ToString::to_string).unwrap_or_default();
                tracing::error!(controller = name, %error, %cause, "Controller stopped.");
            }
        }
    }
}

/// Runs every enabled controller until `shutdown` fires, then waits (a while) for every task.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let health = netlab_health::Health::new();
    let faults =
        netlab_faults::Faults::new(netlab_faults::Me::component(netlab_faults::Component::ControllerManager));
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
    health.set_ready(true);
    let tasks = tasks::Tasks::new(shutdown.clone()).gated(faults.gate().clone());
    let ctx = Context { client, config: std::sync::Arc::new(cfg), tasks };
    start(&ctx);
    shutdown.cancelled().await;
    if tokio::time::timeout(SHUTDOWN_GRACE, ctx.tasks.wait()).await.is_err() {
        tracing::warn!(tasks = ctx.tasks.len(), "Tasks still running at exit.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn every_controller_named_in_the_flags_has_a_starter() {
        assert_eq!(STARTERS.map(|(name, _)| name), config::CONTROLLERS);
    }

    #[tokio::test]
    async fn every_task_of_every_controller_stops_on_shutdown() {
        // Nothing listens on port 1: the reflectors retry, the runners wait for their caches.
        let config = Config::parse_from(["netlab-controller-manager", "--server", "http://127.0.0.1:1"]);
        let shutdown = CancellationToken::new();
        let ctx = Context {
            client: Client::new(&config.server).unwrap(),
            config: std::sync::Arc::new(config),
            tasks: tasks::Tasks::new(shutdown.clone()),
        };
        start(&ctx);
        tokio::time::sleep(Duration::from_millis(50)).await;
        // A waiting runner or monitor per controller, and the reflectors they read.
        assert!(ctx.tasks.len() > STARTERS.len(), "{} tasks", ctx.tasks.len());

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(1), ctx.tasks.wait()).await.expect("the tracker drains");
        assert!(ctx.tasks.is_empty());
    }
}
