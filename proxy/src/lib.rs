//! netlab's kube-proxy for one node: watches Services, EndpointSlices and its own Node, and
//! programs the node's kernel (the node-agent's `netlab.node.v1.Kernel`) with the rules
//! kube-proxy would write, as `iptables-restore` text in iptables mode or `ipvsadm-restore` text
//! in ipvs mode. The rule text is upstream's, hash-named chains and all, so `iptables-save` on a
//! netlab node reads as on a real one; rule syncs are rate-limited, partial where they can be, and
//! retried until the kernel takes them.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`model`]: Services and EndpointSlices reduced to what the rules need, mode-neutral
//!   (endpoint selection, change tracking, the snapshot each mode keeps its own ports in).
//! - [`conntrack`]: the UDP flows a sync left stale, as `conntrack -D` filters.
//! - [`iptables`]: the `iptables-restore` text kube-proxy's iptables mode writes, and the
//!   per-port chain names that mode keeps.
//! - [`ipvs`]: the `ipvsadm-restore` text for ipvs mode.
//! - [`dataplane`]: the node's kernel behind a trait: the gRPC client of the node-agent's kernel
//!   API, and (feature `test-util`) the fake over netlab-kernel's model.
//! - [`runner`]: when a sync may run (upstream's bounded-frequency runner).
//! - [`sync`]: the sync task: fold changes in, render, restore, clean conntrack.
//! - [`healthz`]: kube-proxy's `/healthz`.

use std::{sync::Arc, time::Duration};

use k8s_openapi::api::{
    core::v1::{Node, Service},
    discovery::v1::EndpointSlice,
};
use netlab_client::{
    Client, ListParams, Object,
    reflector::{Cache, Change, reflector},
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub mod config;
pub mod conntrack;
pub mod dataplane;
pub mod error;
pub mod healthz;
pub mod iptables;
pub mod ipvs;
pub mod model;
pub mod runner;
pub mod sync;

pub use config::Config;
pub use error::{Error, Result};

use crate::{
    config::ProxyMode,
    dataplane::Kernel,
    healthz::ProxyHealth,
    runner::Settings,
    sync::{Handle, Mode, Runner},
};

/// How long tasks get to finish after shutdown.
const GRACE: Duration = Duration::from_secs(5);

/// Proxies until `shutdown` fires.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let node = cfg.node_name();
    // kube-proxy's health timeout is twice its sync period.
    let health = ProxyHealth::new(cfg.iptables_sync_period * 2);
    let faults =
        netlab_faults::Faults::new(netlab_faults::Me::on_node(netlab_faults::Component::KubeProxy, &node));
    netlab_health::serve_or_warn(
        cfg.healthz_bind_address,
        faults.guard(health.routes()),
        shutdown.child_token(),
    )
    .await;
    let client = Client::new(&cfg.server)?;
    faults.spawn_watch(client.clone(), shutdown.child_token());
    let kernel = Kernel::new(&cfg.kernel)?;
    let mode = match cfg.proxy_mode {
        ProxyMode::Iptables => Mode::Iptables(iptables::Iptables::new(iptables::Options {
            cluster_cidr: Some(cfg.cluster_cidr),
            masquerade_all: cfg.masquerade_all,
            random_fully: true,
        })),
        ProxyMode::Ipvs => Mode::Ipvs(ipvs::Ipvs::new(&cfg.ipvs_scheduler)),
    };
    tracing::info!(node, mode = mode.name(), kernel = %cfg.kernel, "Starting.");
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = client.wait_ready(Duration::from_millis(500)) => {}
    }

    let handle = Handle::new(&node, health);
    let tasks = TaskTracker::new();
    let (services, service_changes) =
        reflector::<Service>(client.clone(), ListParams::default(), shutdown.child_token());
    let (slices, slice_changes) =
        reflector::<EndpointSlice>(client.clone(), ListParams::default(), shutdown.child_token());
    let node_params = ListParams { fields: format!("metadata.name={node}"), ..Default::default() };
    let (nodes, node_changes) = reflector::<Node>(client, node_params, shutdown.child_token());
    {
        let (h, s) = (handle.clone(), handle.clone());
        tasks.spawn(feed(
            services,
            service_changes,
            move |c| h.service(c),
            move || s.services_synced(),
            shutdown.child_token(),
        ));
    }
    {
        let (h, s) = (handle.clone(), handle.clone());
        tasks.spawn(feed(
            slices,
            slice_changes,
            move |c| h.endpoint_slice(c),
            move || s.endpoint_slices_synced(),
            shutdown.child_token(),
        ));
    }
    {
        let h = handle.clone();
        let apply = move |c: Change<Node>| match c {
            Change::Applied(n) => h.node(Some(&n)),
            Change::Deleted(_) => h.node(None),
        };
        tasks.spawn(feed(nodes, node_changes, apply, || {}, shutdown.child_token()));
    }
    let settings = Settings::new(cfg.iptables_min_sync_period, cfg.iptables_sync_period);
    tasks.spawn(
        Runner::new(handle, Arc::new(kernel), mode, settings)
            .gated(faults.gate().clone())
            .run(shutdown.child_token()),
    );
    tasks.close();
    shutdown.cancelled().await;
    let _ = tokio::time::timeout(GRACE, tasks.wait()).await;
    Ok(())
}

/// Feeds a reflector's changes to `apply`, and calls `synced` once every object of the first
/// list has been applied (the reflector marks its cache synced after sending the list, so
/// draining the channel after seeing the mark applies the whole list first).
async fn feed<K: Object>(
    cache: Cache<K>,
    mut changes: UnboundedReceiver<Change<K>>,
    apply: impl Fn(Change<K>),
    synced: impl Fn(),
    shutdown: CancellationToken,
) {
    let mut marked = false;
    loop {
        let listed = cache.is_synced();
        while let Ok(c) = changes.try_recv() {
            apply(c);
        }
        if listed && !marked {
            synced();
            marked = true;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            c = changes.recv() => match c {
                Some(c) => apply(c),
                None => return,
            },
            _ = cache.wait_synced(), if !marked => {}
        }
    }
}
