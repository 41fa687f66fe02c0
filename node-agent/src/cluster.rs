//! What the node's kernel must know about the rest of the cluster, as a CNI's agent (Calico's
//! Felix, Cilium's agent) knows it: every pod's IP, labels and named ports (NetworkPolicy peers),
//! namespaces' labels (namespaceSelector), every NetworkPolicy, and every node's podCIDR (the
//! routes to other nodes). Kept from list-watches of Pods, Namespaces, NetworkPolicies and Nodes.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::{Arc, RwLock},
};

use k8s_openapi::api::{
    core::v1::{Namespace, Node, Pod},
    networking::v1::NetworkPolicy,
};
use netlab_client::{
    Client, ListParams,
    reflector::{self, Change},
};
use netlab_kernel::{
    Protocol,
    netpol::{NamedPort, Namespaces, PodMeta, Policies},
};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// The cluster as the node's kernel sees it.
#[derive(Default)]
pub struct ClusterView {
    inner: RwLock<View>,
    /// Every pod object (exec needs the whole pod), once the reflector runs.
    pods: std::sync::OnceLock<reflector::Cache<Pod>>,
}

/// The indexed state. Readers take the lock briefly; writers replace entries whole.
#[derive(Default)]
pub struct View {
    /// Pod-network pods by IP (host-network pods share their node's IP and are node traffic).
    pub by_ip: HashMap<IpAddr, Arc<PodMeta>>,
    /// `namespace/name` → the IP it was indexed under, to unindex on change or delete.
    ips: HashMap<String, IpAddr>,
    /// Namespace labels by name.
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
    /// Every NetworkPolicy, compiled.
    pub policies: Policies,
    /// Node name → (podCIDR, InternalIP).
    pub nodes: BTreeMap<String, (Option<ipnet::IpNet>, Option<IpAddr>)>,
    /// Node InternalIP → its kernel API port (`daemonEndpoints.kubeletEndpoint.Port`).
    pub ports: HashMap<IpAddr, u16>,
    /// Pod IP → the node it runs on: where the VPC delivers an address (VPC CNI).
    placed: HashMap<IpAddr, String>,
}

impl Namespaces for View {
    fn labels(&self, namespace: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces.get(namespace)
    }
}

// === impl ClusterView ===

impl ClusterView {
    /// Reads the view.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, View> {
        // Writers replace entries whole; a poisoned lock still holds a consistent view.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, View> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The pod `namespace/name`, if the watch has seen it.
    pub fn pod_object(&self, key: &str) -> Option<Arc<Pod>> {
        self.pods.get()?.get(key)
    }

    /// Node `name`'s podCIDR.
    pub fn node_cidr(&self, name: &str) -> Option<ipnet::IpNet> {
        self.read().nodes.get(name).and_then(|(c, _)| *c)
    }

    /// The pod at `ip`, if a pod-network pod has it.
    pub fn pod(&self, ip: IpAddr) -> Option<Arc<PodMeta>> {
        self.read().by_ip.get(&ip).cloned()
    }

    /// The address of the node whose pod has `ip`: where the VPC delivers a packet to a VPC
    /// address. AWS knows it from the ENI the address is assigned to; the lab learns it from the
    /// pod's status (so a warm, unused address is lost at the sender rather than at its owner).
    pub fn vpc_owner(&self, ip: IpAddr) -> Option<IpAddr> {
        let v = self.read();
        v.nodes.get(v.placed.get(&ip)?)?.1
    }

    /// Applies a Pod change.
    pub fn pod_changed(&self, change: &Change<Pod>) {
        let key = change.key();
        let mut v = self.write();
        if let Some(old) = v.ips.remove(&key)
            && v.by_ip.get(&old).is_some_and(|m| format!("{}/{}", m.namespace, m.name) == key)
        {
            v.by_ip.remove(&old);
            v.placed.remove(&old);
        }
        if let Change::Applied(pod) = change
            && let Some(meta) = pod_meta(pod)
        {
            if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
                v.placed.insert(meta.ip, node);
            }
            v.ips.insert(key, meta.ip);
            v.by_ip.insert(meta.ip, Arc::new(meta));
        }
    }

    /// Applies a Namespace change.
    pub fn namespace_changed(&self, change: &Change<Namespace>) {
        let ns = change.object();
        let name = ns.metadata.name.clone().unwrap_or_default();
        let mut v = self.write();
        match change {
            Change::Applied(_) => {
                v.namespaces.insert(name, ns.metadata.labels.clone().unwrap_or_default());
            }
            Change::Deleted(_) => {
                v.namespaces.remove(&name);
            }
        }
    }

    /// Applies a NetworkPolicy change.
    pub fn policy_changed(&self, change: &Change<NetworkPolicy>) {
        let p = change.object();
        let ns = p.metadata.namespace.clone().unwrap_or_default();
        let name = p.metadata.name.clone().unwrap_or_default();
        let mut v = self.write();
        match change {
            Change::Applied(_) => {
                if let Err(error) = v.policies.upsert(p) {
                    warn!(policy = %format!("{ns}/{name}"), %error, "NetworkPolicy not enforced.");
                }
            }
            Change::Deleted(_) => {
                v.policies.remove(&ns, &name);
            }
        }
    }

    /// Applies a Node change; returns whether the routes changed.
    pub fn node_changed(&self, change: &Change<Node>) -> bool {
        let n = change.object();
        let name = n.metadata.name.clone().unwrap_or_default();
        let mut v = self.write();
        let entry = match change {
            Change::Deleted(_) => None,
            Change::Applied(_) => {
                let cidr = n.spec.as_ref().and_then(|s| s.pod_cidr.as_deref()).and_then(|c| c.parse().ok());
                let ip = n
                    .status
                    .as_ref()
                    .and_then(|s| s.addresses.as_ref())
                    .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
                    .and_then(|a| a.address.parse().ok());
                Some((cidr, ip))
            }
        };
        if let Some((_, Some(ip))) = entry {
            let port = n
                .status
                .as_ref()
                .and_then(|s| s.daemon_endpoints.as_ref())
                .and_then(|d| d.kubelet_endpoint.as_ref())
                .and_then(|e| u16::try_from(e.port).ok())
                .filter(|p| *p != 0);
            if let Some(port) = port {
                v.ports.insert(ip, port);
            }
        }
        match entry {
            Some(e) => v.nodes.insert(name, e) != Some(e),
            None => v.nodes.remove(&name).is_some(),
        }
    }

    /// (podCIDR, node IP) of every node that has both.
    pub fn node_routes(&self) -> Vec<(ipnet::IpNet, IpAddr)> {
        self.read().nodes.values().filter_map(|(c, ip)| Some(((*c)?, (*ip)?))).collect()
    }

    /// Every node's InternalIP.
    pub fn node_addresses(&self) -> Vec<IpAddr> {
        self.read().nodes.values().filter_map(|(_, ip)| *ip).collect()
    }

    /// The kernel API port of the node at `ip` (10250 unless it published another).
    pub fn node_port(&self, ip: IpAddr) -> u16 {
        self.read().ports.get(&ip).copied().unwrap_or(10250)
    }

    /// The name of the node with InternalIP `ip`.
    pub fn node_name(&self, ip: IpAddr) -> Option<String> {
        self.read().nodes.iter().find(|(_, (_, i))| *i == Some(ip)).map(|(n, _)| n.clone())
    }
}

/// The policy-relevant part of a pod: None for host-network pods and pods without an IP yet.
pub fn pod_meta(pod: &Pod) -> Option<PodMeta> {
    let spec = pod.spec.as_ref()?;
    if spec.host_network == Some(true) {
        return None;
    }
    let ip: IpAddr = pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()?;
    let ports = spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter().flatten())
        .filter_map(|p| {
            Some(NamedPort {
                name: p.name.clone()?,
                port: u16::try_from(p.container_port).ok()?,
                protocol: Protocol::parse(p.protocol.as_deref().unwrap_or("TCP"))?,
            })
        })
        .collect();
    Some(PodMeta {
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        name: pod.metadata.name.clone().unwrap_or_default(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        ip,
        ports,
    })
}

/// Keeps `view` in sync until `shutdown`; `on_nodes` runs whenever the nodes change, with their
/// routes (podCIDR, node IP) and every node's address.
pub async fn run(
    client: Client,
    view: Arc<ClusterView>,
    on_nodes: impl Fn(Vec<(ipnet::IpNet, IpAddr)>, Vec<IpAddr>) + Send + 'static,
    shutdown: CancellationToken,
) {
    let all = ListParams::default;
    let (pod_cache, mut pods) = reflector::reflector::<Pod>(client.clone(), all(), shutdown.child_token());
    let _ = view.pods.set(pod_cache);
    let (_ns, mut nss) = reflector::reflector::<Namespace>(client.clone(), all(), shutdown.child_token());
    let (_np, mut nps) = reflector::reflector::<NetworkPolicy>(client.clone(), all(), shutdown.child_token());
    let (_nodes, mut nodes) = reflector::reflector::<Node>(client, all(), shutdown.child_token());
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(c) = pods.recv() => view.pod_changed(&c),
            Some(c) = nss.recv() => view.namespace_changed(&c),
            Some(c) = nps.recv() => {
                debug!(policy = %c.key(), "NetworkPolicy changed.");
                view.policy_changed(&c);
            }
            Some(c) = nodes.recv() => {
                if view.node_changed(&c) {
                    on_nodes(view.node_routes(), view.node_addresses());
                }
            }
            else => return,
        }
    }
}
