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

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
};

use ipnet::Ipv4Net;
use k8s_openapi::api::core::v1::Node;
use netlab_client::{
    Client, ListParams,
    recorder::{EventType, Recorder},
    reflector::{self, Cache, Change},
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::{Context, Error, Result, queue::Queue};

/// The event source upstream's range allocator records with.
const COMPONENT: &str = "cidrAllocator";
/// The Node event upstream records when the range is exhausted.
const CIDR_NOT_AVAILABLE: &str = "CIDRNotAvailable";
/// The node mask may be at most this many bits longer than the cluster mask (upstream
/// `clusterSubnetMaxDiff`): a /16 with /24 blocks has 256 of them, a /8 with /24 65,536.
const CLUSTER_SUBNET_MAX_DIFF: u8 = 16;

/// Why the allocator refused. The messages are upstream's (`pkg/controller/nodeipam/ipam/cidrset`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrSetError {
    /// Every block is taken.
    #[error("CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range")]
    Exhausted,
    /// The node mask is too long for the cluster CIDR, or shorter than it.
    #[error("New CIDR set failed; the node CIDR size is too big")]
    SubnetTooBig,
    /// A Node holds a CIDR outside the cluster CIDR.
    #[error("cidr {cidr} is out the range of cluster cidr {cluster}")]
    OutOfRange {
        /// The Node's CIDR.
        cidr: Ipv4Net,
        /// `--cluster-cidr`.
        cluster: Ipv4Net,
    },
}

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

/// The blocks of one cluster CIDR and which are taken, with upstream's round-robin: the search
/// for a free block starts after the last one handed out, so a released block is reused only
/// after the others (a deleted Node's pod IPs are not immediately someone else's).
#[derive(Debug, Clone)]
pub struct CidrSet {
    cluster: Ipv4Net,
    mask: u8,
    used: Vec<bool>,
    allocated: usize,
    next: usize,
}

// === impl CidrSet ===

impl CidrSet {
    /// The blocks of length `mask` in `cluster`.
    pub fn new(cluster: Ipv4Net, mask: u8) -> Result<Self, CidrSetError> {
        let cluster = cluster.trunc();
        if mask < cluster.prefix_len() || mask > 32 || mask - cluster.prefix_len() > CLUSTER_SUBNET_MAX_DIFF {
            return Err(CidrSetError::SubnetTooBig);
        }
        let blocks = 1usize << (mask - cluster.prefix_len());
        Ok(Self { cluster, mask, used: vec![false; blocks], allocated: 0, next: 0 })
    }

    /// How many blocks there are.
    pub fn capacity(&self) -> usize {
        self.used.len()
    }

    /// How many blocks are taken.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    fn block(&self, i: usize) -> Ipv4Net {
        // In u64 so that a /0 cluster (shift 32) cannot overflow; i < 2^(mask - prefix), so the
        // sum stays inside the cluster CIDR and fits in u32.
        let addr = u64::from(u32::from(self.cluster.network())) + ((i as u64) << (32 - u32::from(self.mask)));
        Ipv4Net::new(Ipv4Addr::from(addr as u32), self.mask).unwrap_or(self.cluster)
    }

    /// The indexes of the blocks `cidr` covers.
    fn range_of(&self, cidr: Ipv4Net) -> Result<std::ops::Range<usize>, CidrSetError> {
        let out = CidrSetError::OutOfRange { cidr, cluster: self.cluster };
        if !self.cluster.contains(&cidr.network()) || cidr.prefix_len() < self.cluster.prefix_len() {
            return Err(out);
        }
        let offset = u64::from(u32::from(cidr.network()) - u32::from(self.cluster.network()));
        let first = (offset >> (32 - u32::from(self.mask))) as usize;
        let len = if cidr.prefix_len() >= self.mask { 1 } else { 1usize << (self.mask - cidr.prefix_len()) };
        Ok(first..(first + len).min(self.used.len()))
    }

    /// Hands out the next free block.
    pub fn allocate_next(&mut self) -> Result<Ipv4Net, CidrSetError> {
        let n = self.used.len();
        for step in 0..n {
            let i = (self.next + step) % n;
            if !self.used[i] {
                self.used[i] = true;
                self.allocated += 1;
                self.next = (i + 1) % n;
                return Ok(self.block(i));
            }
        }
        Err(CidrSetError::Exhausted)
    }

    /// Marks `cidr` (a Node's existing podCIDR) as taken. Taking a taken block is a no-op.
    pub fn occupy(&mut self, cidr: Ipv4Net) -> Result<(), CidrSetError> {
        for i in self.range_of(cidr)? {
            if !self.used[i] {
                self.used[i] = true;
                self.allocated += 1;
            }
        }
        Ok(())
    }

    /// Gives `cidr` back.
    pub fn release(&mut self, cidr: Ipv4Net) -> Result<(), CidrSetError> {
        for i in self.range_of(cidr)? {
            if self.used[i] {
                self.used[i] = false;
                self.allocated -= 1;
            }
        }
        Ok(())
    }

    /// Whether `cidr` is taken.
    pub fn is_taken(&self, cidr: Ipv4Net) -> bool {
        self.range_of(cidr).is_ok_and(|mut r| r.all(|i| self.used[i]))
    }
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
    queue: Queue,
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

    fn release(&self, node: &Node) {
        let cidrs = pod_cidrs(node);
        for cidr in &cidrs {
            let _ = self.set().release(*cidr);
        }
        if !cidrs.is_empty() {
            // Nodes waiting for a block need not wait out their backoff.
            for waiting in self.nodes.list().iter().filter(|n| !has_cidr(n)) {
                self.queue.add(waiting.metadata.name.clone().unwrap_or_default());
            }
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

/// Runs the allocator until `shutdown`.
pub async fn run(ctx: Context, shutdown: CancellationToken) -> Result<()> {
    let set = CidrSet::new(ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size).map_err(|e| {
        Error::Config(format!(
            "--cluster-cidr {} / --node-cidr-mask-size {}: {e}",
            ctx.config.cluster_cidr, ctx.config.node_cidr_mask_size
        ))
    })?;
    let (nodes, mut changes) =
        reflector::reflector::<Node>(ctx.client.clone(), ListParams::default(), shutdown.child_token());
    tokio::select! {
        _ = shutdown.cancelled() => return Ok(()),
        _ = nodes.wait_synced() => {}
    }
    let ctl = Arc::new(Controller {
        client: ctx.client.clone(),
        nodes: nodes.clone(),
        set: Mutex::new(set),
        recorder: Recorder::new(ctx.client.clone(), COMPONENT, None),
        queue: Queue::new(),
    });
    // Every block a Node already holds is taken before any is handed out.
    for node in nodes.list() {
        ctl.occupy(&node);
    }
    // One guard at a time: std's Mutex is not reentrant.
    let (allocated, capacity) = {
        let set = ctl.set();
        (set.allocated(), set.capacity())
    };
    info!(allocated, capacity, "Starting range CIDR allocator.");
    for _ in 0..ctx.config.concurrent_syncs.max(1) {
        let ctl = ctl.clone();
        tokio::spawn(async move {
            while let Some(key) = ctl.queue.next().await {
                match ctl.sync(&key).await {
                    Ok(()) => ctl.queue.forget(&key),
                    Err(error) => {
                        debug!(node = %key, %error, "Requeuing.");
                        ctl.queue.retry(&key);
                    }
                }
                ctl.queue.done(&key);
            }
        });
    }
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            change = changes.recv() => match change {
                Some(Change::Applied(node)) => {
                    if has_cidr(&node) {
                        ctl.occupy(&node);
                    } else {
                        ctl.queue.add(node.metadata.name.clone().unwrap_or_default());
                    }
                }
                Some(Change::Deleted(node)) => ctl.release(&node),
                None => break,
            },
        }
    }
    ctl.queue.shut_down();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_are_distinct_and_in_the_cluster_cidr() {
        let mut set = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(set.capacity(), 256);
        let got: Vec<Ipv4Net> = (0..256).map(|_| set.allocate_next().unwrap()).collect();
        assert_eq!(got[0], net("10.244.0.0/24"));
        assert_eq!(got[1], net("10.244.1.0/24"));
        assert_eq!(got[255], net("10.244.255.0/24"));
        let distinct: std::collections::HashSet<_> = got.iter().collect();
        assert_eq!(distinct.len(), 256);
        assert!(got.iter().all(|c| net("10.244.0.0/16").contains(c) && c.prefix_len() == 24));
    }

    #[test]
    fn exhaustion_is_upstreams_error_and_a_release_makes_room() {
        let mut set = CidrSet::new(net("10.244.0.0/23"), 24).unwrap();
        let a = set.allocate_next().unwrap();
        let b = set.allocate_next().unwrap();
        assert_ne!(a, b);
        let err = set.allocate_next().unwrap_err();
        assert_eq!(
            err.to_string(),
            "CIDR allocation failed; there are no remaining CIDRs left to allocate in the accepted range"
        );
        set.release(a).unwrap();
        assert_eq!(set.allocate_next().unwrap(), a, "the released block is reused");
        assert_eq!(set.allocate_next(), Err(CidrSetError::Exhausted));
    }

    #[test]
    fn released_blocks_come_back_round_robin() {
        let mut set = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        let a = set.allocate_next().unwrap();
        let b = set.allocate_next().unwrap();
        set.release(a).unwrap();
        let c = set.allocate_next().unwrap();
        assert_ne!(c, a, "the next block, not the one just freed");
        assert_ne!(c, b);
        assert_eq!(set.allocated(), 2);
    }

    #[test]
    fn occupied_blocks_are_never_handed_out() {
        let mut set = CidrSet::new(net("10.244.0.0/22"), 24).unwrap();
        set.occupy(net("10.244.0.0/24")).unwrap();
        set.occupy(net("10.244.2.0/24")).unwrap();
        set.occupy(net("10.244.2.0/24")).unwrap();
        assert_eq!(set.allocated(), 2);
        let mut got = vec![set.allocate_next().unwrap(), set.allocate_next().unwrap()];
        got.sort();
        assert_eq!(got, [net("10.244.1.0/24"), net("10.244.3.0/24")]);
        assert!(set.allocate_next().is_err());
        assert!(set.is_taken(net("10.244.2.0/24")));
    }

    #[test]
    fn out_of_range_and_oversized_masks_are_refused() {
        let mut set = CidrSet::new(net("10.244.0.0/16"), 24).unwrap();
        assert_eq!(
            set.occupy(net("10.0.0.0/24")).unwrap_err().to_string(),
            "cidr 10.0.0.0/24 is out the range of cluster cidr 10.244.0.0/16"
        );
        assert_eq!(CidrSet::new(net("10.0.0.0/8"), 26).unwrap_err(), CidrSetError::SubnetTooBig);
        assert_eq!(CidrSet::new(net("10.0.0.0/16"), 8).unwrap_err(), CidrSetError::SubnetTooBig);
        assert_eq!(CidrSet::new(net("10.0.0.0/8"), 24).unwrap().capacity(), 65536);
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
