//! Node IPAM: every Node gets its own podCIDR (`spec.podCIDR` and `spec.podCIDRs`) carved out of
//! `--cluster-cidr` in blocks of `--node-cidr-mask-size`, as kube-controller-manager's range
//! allocator (`pkg/controller/nodeipam/ipam/range_allocator.go`) does. The CNI plugin on the node
//! (host-local IPAM) then hands out pod IPs from that block, so two nodes must never share one.
//!
//! Nothing is remembered outside the Nodes themselves: on start the allocator waits for the
//! first list of Nodes and marks every podCIDR they already have as taken before it assigns any,
//! so a restart never hands out a block twice. A deleted Node's block goes back to the pool.
//! When the range is exhausted the Node gets upstream's `CIDRNotAvailable` event (source
//! `cidrAllocator`) and no CIDR, and is retried with backoff until a block frees up.

use std::sync::{Arc, Mutex};

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use netlab_client::{
    Client, ListParams,
    recorder::{EventType, Recorder},
    reflector::{Cache, Change},
};
use tracing::{debug, info, warn};

use crate::{
    Context, Error, Result,
    cidrset::{CidrSet, CidrSetError},
    controller::{self, Reconcile, ReconcileError},
};

/// The event source upstream's range allocator records with.
const COMPONENT: &str = "cidrAllocator";
/// The Node event upstream records when the range is exhausted.
const CIDR_NOT_AVAILABLE: &str = "CIDRNotAvailable";
/// Why one Node's sync must be retried.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// Writing the Node failed.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// The range is exhausted (upstream's log line).
    #[error("failed to allocate cidr from cluster cidr at idx:0: {0}")]
    Allocate(#[source] CidrSetError),
}

/// The Node's IPv4 podCIDRs (`spec.podCIDRs`, else `spec.podCIDR`). Unparsable or IPv6 entries
/// are not ours to track and are skipped.
fn pod_cidrs(node: &Node) -> Vec<Ipv4Net> {
    let spec = node.spec.as_ref();
    let mut raw: Vec<&str> = spec
        .and_then(|s| s.pod_cidrs.as_ref())
        .map(|v| v.iter().map(String::as_str).collect())
        .unwrap_or_default();
    if raw.is_empty()
        && let Some(c) = spec.and_then(|s| s.pod_cidr.as_deref()).filter(|c| !c.is_empty())
    {
        raw.push(c);
    }
    raw.iter().filter_map(|c| c.parse::<Ipv4Net>().ok()).collect()
}

fn has_cidr(node: &Node) -> bool {
    let spec = node.spec.as_ref();
    spec.and_then(|s| s.pod_cidrs.as_ref()).is_some_and(|v| !v.is_empty())
        || spec.and_then(|s| s.pod_cidr.as_deref()).is_some_and(|c| !c.is_empty())
}

struct Controller {
    client: Client,
    nodes: Cache<Node>,
    set: Mutex<CidrSet>,
    recorder: Recorder,
}

// === impl Controller ===

impl Controller {
    fn set(&self) -> std::sync::MutexGuard<'_, CidrSet> {
        // Only short, panic-free sections hold the lock.
        self.set.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn occupy(&self, node: &Node) {
        for cidr in pod_cidrs(node) {
            if let Err(error) = self.set().occupy(cidr) {
                warn!(node = node.metadata.name.as_deref().unwrap_or(""), %error, "Cannot track the Node's podCIDR.");
            }
        }
    }

    /// Frees a deleted Node's blocks; the Nodes waiting for one, which need not wait out their
    /// backoff.
    fn release(&self, node: &Node) -> Vec<String> {
        let cidrs = pod_cidrs(node);
        for cidr in &cidrs {
            let _ = self.set().release(*cidr);
        }
        if cidrs.is_empty() {
            return Vec::new();
        }
        self.nodes
            .list()
            .iter()
            .filter(|n| !has_cidr(n))
            .map(|n| n.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    /// A Node change: a block in use is taken, a Node without one is queued, a deleted Node's
    /// block is freed.
    fn on_node(&self, change: &Change<Node>) -> Vec<String> {
        match change {
            Change::Applied(node) if has_cidr(node) => {
                self.occupy(node);
                Vec::new()
            }
            Change::Applied(node) => vec![node.metadata.name.clone().unwrap_or_default()],
            Change::Deleted(node) => self.release(node),
        }
    }

    #[tracing::instrument(skip_all, fields(node = %name))]
    async fn sync(&self, name: &str) -> Result<(), SyncError> {
        let Some(node) = self.nodes.get(name) else { return Ok(()) };
        if has_cidr(&node) {
            self.occupy(&node);
            return Ok(());
        }
        let allocated = self.set().allocate_next();
        let cidr = match allocated {
            Ok(cidr) => cidr,
            Err(error) => {
                let message = format!("Node {name} status is now: {CIDR_NOT_AVAILABLE}");
                self.recorder.record(node.as_ref(), EventType::Normal, CIDR_NOT_AVAILABLE, &message).await;
                return Err(SyncError::Allocate(error));
            }
        };
        let mut updated = (*node).clone();
        let spec = updated.spec.get_or_insert_with(Default::default);
        spec.pod_cidr = Some(cidr.to_string());
        spec.pod_cidrs = Some(vec![cidr.to_string()]);
        match self.client.update(&updated).await {
            Ok(_) => {
                info!(%cidr, "Set Node PodCIDR.");
                Ok(())
            }
            Err(e) if e.is_not_found() => {
                let _ = self.set().release(cidr);
                Ok(())
            }
            Err(e) if e.is_conflict() => {
                // Our copy was stale: the Node may have got a CIDR meanwhile (from us, before a
                // restart's cache caught up, or from someone else). Keep whichever it holds.
                let _ = self.set().release(cidr);
                match self.client.get::<Node>("", name).await {
                    Ok(live) if has_cidr(&live) => {
                        self.occupy(&live);
                        Ok(())
                    }
                    Ok(_) => Err(e.into()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            Err(e) if matches!(e, netlab_client::Error::Transport(_)) => {
                // As upstream on a timeout: the write may have landed, so the block stays taken
                // (a leak a restart repairs beats a block handed out twice).
                Err(e.into())
            }
            Err(e) => {
                let _ = self.set().release(cidr);
                Err(e.into())
            }
        }
    }
}

impl ReconcileError for SyncError {}

impl Reconcile for Controller {
    const NAME: &'static str = "nodeipam";
    type Error = SyncError;

    async fn reconcile(&self, key: &str) -> Result<Option<std::time::Duration>, SyncError> {
        self.sync(key).await.map(|()| None)
    }

    fn error_policy(&self, key: &str, error: &SyncError) {
        debug!(node = %key, %error, "Requeuing.");
    }
}

/// Starts the allocator on `ctx.tasks`. Every block a Node already holds is taken before any is
/// handed out.
pub fn start(ctx: &Context) -> Result<()> {
    let (cluster_cidr, node_cidr_mask_size) = (ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size);
    let set = CidrSet::new(cluster_cidr, node_cidr_mask_size).map_err(|source| Error::NodeCidrs {
        cluster_cidr,
        node_cidr_mask_size,
        source,
    })?;
    let (nodes, changes) = ctx.reflector::<Node>(ListParams::default());
    let ctl = Arc::new(Controller {
        client: ctx.client.clone(),
        nodes: nodes.clone(),
        set: Mutex::new(set),
        recorder: Recorder::new(ctx.client.clone(), COMPONENT, None),
    });
    let (on_node, prime) = (ctl.clone(), ctl.clone());
    controller::Controller::new(ctl)
        .watches(&nodes, changes, move |change| on_node.on_node(change))
        .on_synced(move || {
            for node in prime.nodes.list() {
                prime.occupy(&node);
            }
            // One guard at a time: std's Mutex is not reentrant.
            let (allocated, capacity) = {
                let set = prime.set();
                (set.allocated(), set.capacity())
            };
            info!(allocated, capacity, "Starting range CIDR allocator.");
            Vec::new()
        })
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn a_nodes_cidrs_are_read_from_pod_cidrs_or_pod_cidr() {
        let mut node = Node::default();
        assert!(!has_cidr(&node));
        node.spec = Some(k8s_openapi::api::core::v1::NodeSpec {
            pod_cidr: Some("10.244.3.0/24".into()),
            ..Default::default()
        });
        assert_eq!(pod_cidrs(&node), [net("10.244.3.0/24")]);
        assert!(has_cidr(&node));
    }
}
