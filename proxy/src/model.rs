//! Services and EndpointSlices reduced to the per-port view kube-proxy keeps (upstream's
//! `ServicePortMap` and `EndpointsMap`), the endpoint selection rules of KEP-1669 and KEP-2086,
//! and the change tracking that lets a sync rewrite only the Services that changed.
//!
//! Why a view of its own: the rules are a function of a handful of fields per Service port, and
//! of the endpoints merged from every slice of the Service. Building that view once per changed
//! Service (not once per sync) and keeping it is what lets a sync of 10,000 Services stay cheap,
//! and comparing two views says exactly which Services a partial sync must rewrite.
//!
//! The view knows no proxy mode. A mode that needs more per port (iptables mode: the port's
//! hash-named chains) keeps it in a type of its own built from the generic [`ServicePort`] when
//! the port changes ([`PortInfo`], upstream's `newServiceInfo` callback and the proxier's
//! `servicePortInfo` embedding `BaseServicePortInfo`), so the snapshot holds each mode's own
//! ports and no mode pays for another's.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet},
    fmt,
    net::Ipv4Addr,
    sync::Arc,
};

use k8s_openapi::api::{
    core::v1::{Node, Service},
    discovery::v1::EndpointSlice,
};
use netlab_kernel::Protocol;

/// The label that ties an EndpointSlice to its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// `sessionAffinityConfig.clientIP.timeoutSeconds` when unset (upstream
/// `DefaultClientIPServiceAffinitySeconds`, three hours).
pub const DEFAULT_CLIENT_IP_TIMEOUT: u32 = 10800;

/// A Service, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceKey {
    /// The namespace.
    pub namespace: String,
    /// The name.
    pub name: String,
}

// === impl ServiceKey ===

impl ServiceKey {
    /// The key of `namespace/name`.
    pub fn new(namespace: &str, name: &str) -> Self {
        Self { namespace: namespace.into(), name: name.into() }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// One port of one Service: what every chain name and rule comment is derived from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServicePortName {
    /// The Service.
    pub service: ServiceKey,
    /// The port's name; empty for the single unnamed port a Service may have.
    pub port: String,
    /// The port's protocol. Not part of the printed name (as upstream), but part of identity.
    pub protocol: Protocol,
}

// === impl ServicePortName ===

impl ServicePortName {
    /// `namespace/name` port `port` over `protocol`.
    pub fn new(namespace: &str, name: &str, port: &str, protocol: Protocol) -> Self {
        Self { service: ServiceKey::new(namespace, name), port: port.into(), protocol }
    }
}

/// `ns/name:port`, or `ns/name` for an unnamed port (upstream `ServicePortName.String()`).
impl fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.service)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// `internalTrafficPolicy` / `externalTrafficPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TrafficPolicy {
    /// Any ready endpoint in the cluster.
    #[default]
    Cluster,
    /// Only endpoints on this node.
    Local,
}

/// One endpoint of one Service port, merged from the Service's slices.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The endpoint's address (the slice endpoint's first address).
    pub ip: Ipv4Addr,
    /// The slice port's number.
    pub port: u16,
    /// `conditions.ready` (nil reads as ready).
    pub ready: bool,
    /// `conditions.serving` (nil reads as `ready`).
    pub serving: bool,
    /// `conditions.terminating` (nil reads as not terminating).
    pub terminating: bool,
    /// The node the endpoint runs on, if the slice says.
    pub node_name: Option<String>,
    /// Whether `node_name` is this proxy's node.
    pub local: bool,
    /// `ip:port`: the DNAT target, the rule comments' right-hand side and the sort key.
    pub addr: String,
}

// === impl Endpoint ===

impl Endpoint {
    /// The address alone, as rules print it (`-s 10.244.1.5`).
    pub fn ip_str(&self) -> &str {
        // `addr` is always `ip:port` with an IPv4 ip, so the last ':' separates them.
        self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(ip, _)| ip)
    }
}

/// One Service port with everything the rules need, precomputed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServicePort {
    /// Which port of which Service.
    pub name: ServicePortName,
    /// `name` printed, kept for the thousands of comments that quote it.
    pub name_string: String,
    /// The ClusterIP.
    pub cluster_ip: Ipv4Addr,
    /// The Service port.
    pub port: u16,
    /// The NodePort, for NodePort and LoadBalancer Services.
    pub node_port: Option<u16>,
    /// `spec.externalIPs` (IPv4).
    pub external_ips: Vec<Ipv4Addr>,
    /// `status.loadBalancer.ingress[].ip` (IPv4).
    pub load_balancer_ips: Vec<Ipv4Addr>,
    /// `Some(timeout seconds)` for `sessionAffinity: ClientIP`.
    pub affinity_timeout: Option<u32>,
    /// `internalTrafficPolicy`.
    pub internal_policy: TrafficPolicy,
    /// `externalTrafficPolicy`; Local only counts for externally reachable ports (upstream).
    pub external_policy: TrafficPolicy,
    /// Every endpoint of this port, deduplicated across slices and sorted by `ip:port`.
    pub endpoints: Vec<Endpoint>,
}

/// What a proxy mode keeps per Service port: the generic [`ServicePort`] and whatever the mode
/// derives from it once per change (upstream's `ServicePort` interface, made by the proxier's
/// `newServiceInfo` callback). The generic port is one itself, for modes that need nothing more.
pub trait PortInfo: fmt::Debug + PartialEq + Send + Sync + 'static {
    /// The mode's port for `base` (upstream `newServiceInfo`), built when the port changes.
    fn new(base: ServicePort) -> Self;
    /// The generic port.
    fn base(&self) -> &ServicePort;
}

impl PortInfo for ServicePort {
    fn new(base: ServicePort) -> Self {
        base
    }

    fn base(&self) -> &ServicePort {
        self
    }
}

/// Which endpoints a Service port's traffic may go to (upstream `CategorizeEndpoints`).
#[derive(Debug, Default)]
pub struct Selected<'a> {
    /// Endpoints for Cluster policy: ready ones, else serving-and-terminating ones.
    pub cluster: Vec<&'a Endpoint>,
    /// Endpoints for Local policy: this node's ready ones, else its serving-and-terminating ones.
    pub local: Vec<&'a Endpoint>,
    /// The union of the two lists in use, sorted: the endpoints that get a `KUBE-SEP-` chain.
    pub reachable: Vec<&'a Endpoint>,
    /// Whether any usable endpoint exists anywhere in the cluster.
    pub has_any: bool,
}

// === impl ServicePort ===

impl ServicePort {
    /// Reachable from outside through a NodePort, an externalIP or a load balancer IP.
    pub fn externally_accessible(&self) -> bool {
        self.node_port.is_some() || !self.external_ips.is_empty() || !self.load_balancer_ips.is_empty()
    }

    /// Some traffic uses Cluster policy (upstream `UsesClusterEndpoints`): internal traffic under
    /// Cluster policy, or any external traffic at all, since even with a Local external policy
    /// the short-circuit rules for pod and host traffic go to the Cluster chain.
    pub fn uses_cluster_endpoints(&self) -> bool {
        self.internal_policy == TrafficPolicy::Cluster || self.externally_accessible()
    }

    /// Some traffic uses Local policy (upstream `UsesLocalEndpoints`).
    pub fn uses_local_endpoints(&self) -> bool {
        self.internal_policy == TrafficPolicy::Local
            || (self.externally_accessible() && self.external_policy == TrafficPolicy::Local)
    }

    /// The endpoints each policy may use: ready ones; if none, the terminating ones still
    /// serving; never the not-serving ones. Local policy looks only at this node's endpoints.
    pub fn select(&self) -> Selected<'_> {
        let mut s = Selected::default();
        if self.uses_cluster_endpoints() {
            s.cluster = self.endpoints.iter().filter(|e| e.ready).collect();
            if s.cluster.is_empty() {
                s.cluster = self.endpoints.iter().filter(|e| e.serving && e.terminating).collect();
            }
            s.has_any = !s.cluster.is_empty();
        }
        if !self.uses_local_endpoints() {
            s.reachable = s.cluster.clone();
            return s;
        }
        let (mut local_ready, mut local_terminating) = (false, false);
        for e in &self.endpoints {
            if e.ready {
                s.has_any = true;
                local_ready |= e.local;
            } else if e.serving && e.terminating {
                s.has_any = true;
                local_terminating |= e.local;
            }
        }
        if local_ready {
            s.local = self.endpoints.iter().filter(|e| e.local && e.ready).collect();
        } else if local_terminating {
            s.local = self.endpoints.iter().filter(|e| e.local && e.serving && e.terminating).collect();
        }
        if !self.uses_cluster_endpoints() {
            s.reachable = s.local.clone();
            return s;
        }
        // Both lists are sub-sequences of `endpoints`, so element addresses give their order:
        // merge them, keeping one copy of endpoints in both.
        let (mut c, mut l) = (s.cluster.iter().peekable(), s.local.iter().peekable());
        let mut reachable = Vec::with_capacity(s.cluster.len() + s.local.len());
        loop {
            let next = match (c.peek(), l.peek()) {
                (None, None) => break,
                (Some(_), None) => c.next(),
                (None, Some(_)) => l.next(),
                (Some(a), Some(b)) => {
                    let (pa, pb) = (std::ptr::from_ref::<Endpoint>(a), std::ptr::from_ref::<Endpoint>(b));
                    if pa == pb {
                        l.next();
                        c.next()
                    } else if pa < pb {
                        c.next()
                    } else {
                        l.next()
                    }
                }
            };
            reachable.extend(next.copied());
        }
        s.reachable = reachable;
        s
    }
}

/// Builds the ports kube-proxy programs for `svc` from the slices labelled with its name.
/// Headless and ExternalName Services, and ports whose ClusterIP is not IPv4, have none.
pub fn service_ports<'a>(
    svc: &Service,
    slices: impl IntoIterator<Item = &'a EndpointSlice> + Clone,
    node_name: &str,
) -> Vec<ServicePort> {
    let Some(spec) = svc.spec.as_ref() else {
        return Vec::new();
    };
    if spec.type_.as_deref() == Some("ExternalName") {
        return Vec::new();
    }
    let Some(cluster_ip) = spec.cluster_ip.as_deref().and_then(|ip| ip.parse::<Ipv4Addr>().ok()) else {
        // "None" (headless), unset, or IPv6: nothing to proxy for this family.
        return Vec::new();
    };
    let namespace = svc.metadata.namespace.as_deref().unwrap_or("default");
    let name = svc.metadata.name.as_deref().unwrap_or_default();
    let affinity_timeout = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(DEFAULT_CLIENT_IP_TIMEOUT)
    });
    let policy = |p: Option<&str>| {
        if p == Some("Local") { TrafficPolicy::Local } else { TrafficPolicy::Cluster }
    };
    let ipv4s = |v: Option<&Vec<String>>| -> Vec<Ipv4Addr> {
        v.into_iter().flatten().filter_map(|ip| ip.parse().ok()).collect()
    };
    let external_ips = ipv4s(spec.external_ips.as_ref());
    let load_balancer_ips: Vec<Ipv4Addr> = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect();

    let mut out = Vec::new();
    for p in spec.ports.iter().flatten() {
        let Some(protocol) = Protocol::parse(p.protocol.as_deref().unwrap_or("TCP")) else {
            continue;
        };
        let Ok(port) = u16::try_from(p.port) else {
            continue;
        };
        let spn = ServicePortName::new(namespace, name, p.name.as_deref().unwrap_or_default(), protocol);
        let name_string = spn.to_string();
        let node_port = p.node_port.and_then(|n| u16::try_from(n).ok()).filter(|n| *n != 0);
        let accessible = node_port.is_some() || !external_ips.is_empty() || !load_balancer_ips.is_empty();
        let external_policy =
            if accessible { policy(spec.external_traffic_policy.as_deref()) } else { TrafficPolicy::Cluster };
        let endpoints = endpoints_for(&spn, slices.clone(), node_name);
        out.push(ServicePort {
            name: spn,
            name_string,
            cluster_ip,
            port,
            node_port,
            external_ips: external_ips.clone(),
            load_balancer_ips: load_balancer_ips.clone(),
            affinity_timeout,
            internal_policy: policy(spec.internal_traffic_policy.as_deref()),
            external_policy,
            endpoints,
        });
    }
    out
}

/// The endpoints of `spn` across `slices`: slice ports matched by name and protocol, IPv4
/// slices only, deduplicated by `ip:port` (a ready copy wins, then a local one), sorted as
/// upstream sorts them (by the `ip:port` string).
fn endpoints_for<'a>(
    spn: &ServicePortName,
    slices: impl IntoIterator<Item = &'a EndpointSlice>,
    node_name: &str,
) -> Vec<Endpoint> {
    let mut by_addr: BTreeMap<String, Endpoint> = BTreeMap::new();
    for slice in slices {
        if slice.address_type != "IPv4" {
            continue;
        }
        for sp in slice.ports.iter().flatten() {
            let matches = sp.name.as_deref().unwrap_or_default() == spn.port
                && Protocol::parse(sp.protocol.as_deref().unwrap_or("TCP")) == Some(spn.protocol);
            let Some(port) = sp.port.and_then(|p| u16::try_from(p).ok()).filter(|p| *p != 0) else {
                continue;
            };
            if !matches {
                continue;
            }
            for ep in &slice.endpoints {
                let Some(ip) = ep.addresses.first().and_then(|a| a.parse::<Ipv4Addr>().ok()) else {
                    continue;
                };
                let c = ep.conditions.clone().unwrap_or_default();
                let ready = c.ready.unwrap_or(true);
                let addr = format!("{ip}:{port}");
                let local = ep.node_name.as_deref() == Some(node_name);
                if let Some(old) = by_addr.get(&addr)
                    && (old.ready && !ready || old.ready == ready && (old.local || !local))
                {
                    continue;
                }
                by_addr.insert(
                    addr.clone(),
                    Endpoint {
                        ip,
                        port,
                        ready,
                        serving: c.serving.unwrap_or(ready),
                        terminating: c.terminating.unwrap_or(false),
                        node_name: ep.node_name.clone(),
                        local,
                        addr,
                    },
                );
            }
        }
    }
    by_addr.into_values().collect()
}

/// Every Service port kube-proxy programs, by name: what one sync renders.
///
/// It also remembers which ports were replaced since [`Snapshot::mark`] and what they were then,
/// so that the sync task learns what changed since the kernel took the last sync
/// ([`Snapshot::changes`]) from the few Services that changed, without keeping (and deep-copying
/// after every sync) a second snapshot to compare with.
///
/// Each proxy mode keeps its own ports in it (`P`, see [`PortInfo`]).
#[derive(Debug, Clone)]
pub struct Snapshot<P = ServicePort> {
    ports: BTreeMap<ServicePortName, Arc<P>>,
    /// Endpoints across every port, kept up to date.
    endpoints: usize,
    /// Ports replaced since the mark, with their value at the mark (None: absent then).
    since_mark: BTreeMap<ServicePortName, Option<Arc<P>>>,
}

impl<P> Default for Snapshot<P> {
    fn default() -> Self {
        Self { ports: BTreeMap::new(), endpoints: 0, since_mark: BTreeMap::new() }
    }
}

/// Two snapshots are equal when they hold the same ports (the mark is bookkeeping).
impl<P: PartialEq> PartialEq for Snapshot<P> {
    fn eq(&self, other: &Self) -> bool {
        self.ports == other.ports
    }
}

impl<P: Eq> Eq for Snapshot<P> {}

// === impl Snapshot ===

impl<P: PortInfo> Snapshot<P> {
    /// The ports, in name order (so rule output is stable from sync to sync).
    pub fn iter(&self) -> impl Iterator<Item = &Arc<P>> {
        self.ports.values()
    }

    /// The ports with their names, in name order.
    pub fn entries(&self) -> impl Iterator<Item = (&ServicePortName, &Arc<P>)> {
        self.ports.iter()
    }

    /// One port.
    pub fn get(&self, name: &ServicePortName) -> Option<&Arc<P>> {
        self.ports.get(name)
    }

    /// How many ports.
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// No ports.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Endpoints across every port (upstream's measure for "large cluster mode").
    pub fn total_endpoints(&self) -> usize {
        self.endpoints
    }

    /// Replaces every port of `service` with `ports`. A port equal to the one it replaces keeps
    /// the old allocation, so [`Snapshot::changed`] and [`Snapshot::changes`] see it unchanged
    /// at pointer speed.
    pub fn replace_service(&mut self, service: &ServiceKey, ports: Vec<P>) {
        let start =
            ServicePortName { service: service.clone(), port: String::new(), protocol: Protocol::Tcp };
        let mut old: HashMap<ServicePortName, Arc<P>> = HashMap::new();
        let keys: Vec<ServicePortName> = self
            .ports
            .range(start..)
            .take_while(|(k, _)| &k.service == service)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            if let Some(v) = self.ports.remove(&k) {
                self.endpoints -= v.base().endpoints.len();
                if !self.since_mark.contains_key(&k) {
                    self.since_mark.insert(k.clone(), Some(v.clone()));
                }
                old.insert(k, v);
            }
        }
        for p in ports {
            let arc = match old.remove(&p.base().name) {
                Some(prev) if *prev == p => prev,
                _ => Arc::new(p),
            };
            let name = &arc.base().name;
            self.endpoints += arc.base().endpoints.len();
            if !self.since_mark.contains_key(name) {
                self.since_mark.insert(name.clone(), None);
            }
            self.ports.insert(name.clone(), arc);
        }
    }

    /// The ports added, removed or changed since the last [`Snapshot::mark`] (since the start,
    /// if never marked): what `programmed.changed(self)` says when `programmed` is a copy taken
    /// at the mark, at the cost of the ports replaced since.
    pub fn changes(&self) -> BTreeSet<ServicePortName> {
        self.changes_since_mark().map(|(name, _, _)| name.clone()).collect()
    }

    /// The ports [`Snapshot::changes`] names, each as it was at the mark and as it is now (None:
    /// absent): what the kernel moves from and to when it takes this sync, for what only a
    /// before-and-after can tell (which UDP endpoints went, which Services just got endpoints).
    pub fn changes_since_mark(
        &self,
    ) -> impl Iterator<Item = (&ServicePortName, Option<&ServicePort>, Option<&ServicePort>)> {
        self.since_mark.iter().filter_map(|(name, then)| {
            let now = self.ports.get(name);
            let changed = match (then, now) {
                (None, None) => false,
                (Some(a), Some(b)) => !Arc::ptr_eq(a, b) && a != b,
                _ => true,
            };
            changed.then(|| (name, then.as_deref().map(P::base), now.map(|p| p.base())))
        })
    }

    /// Forgets the changes so far: [`Snapshot::changes`] counts from here.
    pub fn mark(&mut self) {
        self.since_mark.clear();
    }

    /// The ports that differ between `self` (older) and `newer`: added, removed or changed.
    pub fn changed(&self, newer: &Snapshot<P>) -> BTreeSet<ServicePortName> {
        let mut out = BTreeSet::new();
        let (mut a, mut b) = (self.ports.iter().peekable(), newer.ports.iter().peekable());
        loop {
            match (a.peek(), b.peek()) {
                (None, None) => break,
                (Some((ka, _)), None) => {
                    out.insert((*ka).clone());
                    a.next();
                }
                (None, Some((kb, _))) => {
                    out.insert((*kb).clone());
                    b.next();
                }
                (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                    std::cmp::Ordering::Less => {
                        out.insert((*ka).clone());
                        a.next();
                    }
                    std::cmp::Ordering::Greater => {
                        out.insert((*kb).clone());
                        b.next();
                    }
                    std::cmp::Ordering::Equal => {
                        if !Arc::ptr_eq(va, vb) && va != vb {
                            out.insert((*ka).clone());
                        }
                        a.next();
                        b.next();
                    }
                },
            }
        }
        out
    }
}

/// What the watch handlers feed: the Services and slices seen so far, and which Services changed
/// since the last sync took them (upstream's `ServiceChangeTracker` + `EndpointsChangeTracker`).
/// Handlers only store objects and mark keys here; the sync task does the work.
#[derive(Debug, Default)]
pub struct Tracker {
    node_name: String,
    node_ips: Vec<Ipv4Addr>,
    services: HashMap<ServiceKey, Arc<Service>>,
    slices: HashMap<ServiceKey, BTreeMap<String, Arc<EndpointSlice>>>,
    slice_owner: HashMap<String, ServiceKey>,
    dirty: HashSet<ServiceKey>,
    node_changed: bool,
}

// === impl Tracker ===

impl Tracker {
    /// A tracker for the proxy on `node_name`.
    pub fn new(node_name: &str) -> Self {
        Self { node_name: node_name.into(), ..Default::default() }
    }

    /// The node this proxy runs on.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// The node's InternalIPs (for NodePort virtual servers in ipvs mode).
    pub fn node_ips(&self) -> &[Ipv4Addr] {
        &self.node_ips
    }

    /// A Service was added or modified.
    pub fn service_applied(&mut self, svc: Arc<Service>) {
        let key = service_key(&svc.metadata);
        self.dirty.insert(key.clone());
        self.services.insert(key, svc);
    }

    /// A Service was deleted.
    pub fn service_deleted(&mut self, svc: &Service) {
        let key = service_key(&svc.metadata);
        self.services.remove(&key);
        self.dirty.insert(key);
    }

    /// An EndpointSlice was added or modified.
    pub fn slice_applied(&mut self, slice: Arc<EndpointSlice>) {
        let slice_key = service_key(&slice.metadata).to_string();
        // A slice whose label changed moves between Services: both change.
        self.slice_deleted_key(&slice_key);
        let Some(owner) = slice_service(&slice) else {
            return;
        };
        self.slices.entry(owner.clone()).or_default().insert(slice_key.clone(), slice);
        self.slice_owner.insert(slice_key, owner.clone());
        self.dirty.insert(owner);
    }

    /// An EndpointSlice was deleted.
    pub fn slice_deleted(&mut self, slice: &EndpointSlice) {
        self.slice_deleted_key(&service_key(&slice.metadata).to_string());
    }

    fn slice_deleted_key(&mut self, slice_key: &str) {
        if let Some(owner) = self.slice_owner.remove(slice_key) {
            if let Some(m) = self.slices.get_mut(&owner) {
                m.remove(slice_key);
                if m.is_empty() {
                    self.slices.remove(&owner);
                }
            }
            self.dirty.insert(owner);
        }
    }

    /// This proxy's Node changed (or went). Returns whether its addresses changed.
    pub fn node(&mut self, node: Option<&Node>) -> bool {
        let ips = node.map(node_internal_ips).unwrap_or_default();
        if ips == self.node_ips {
            return false;
        }
        self.node_ips = ips;
        self.node_changed = true;
        true
    }

    /// Whether anything changed since the last [`Tracker::update`].
    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty() || self.node_changed
    }

    /// Rebuilds the changed Services' ports into `snapshot` (every Service's, if `all` or if the
    /// node changed), each as the mode's port ([`PortInfo::new`]), and clears the marks. Returns
    /// whether the node changed since the last update (which calls for a full sync).
    pub fn update<P: PortInfo>(&mut self, snapshot: &mut Snapshot<P>, all: bool) -> bool {
        let all = all || self.node_changed;
        let keys: Vec<ServiceKey> = if all {
            let mut keys: HashSet<ServiceKey> = self.services.keys().cloned().collect();
            keys.extend(snapshot.iter().map(|p| p.base().name.service.clone()));
            keys.extend(self.dirty.drain());
            keys.into_iter().collect()
        } else {
            self.dirty.drain().collect()
        };
        for key in keys {
            let ports = match self.services.get(&key) {
                Some(svc) => service_ports(
                    svc,
                    self.slices.get(&key).into_iter().flat_map(|m| m.values().map(|s| &**s)),
                    &self.node_name,
                )
                .into_iter()
                .map(P::new)
                .collect(),
                None => Vec::new(),
            };
            snapshot.replace_service(&key, ports);
        }
        std::mem::take(&mut self.node_changed)
    }
}

fn service_key(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ServiceKey {
    ServiceKey::new(meta.namespace.as_deref().unwrap_or("default"), meta.name.as_deref().unwrap_or_default())
}

/// The Service a slice belongs to, by its `kubernetes.io/service-name` label.
fn slice_service(slice: &EndpointSlice) -> Option<ServiceKey> {
    let name = slice.metadata.labels.as_ref()?.get(SERVICE_NAME_LABEL)?;
    Some(ServiceKey::new(slice.metadata.namespace.as_deref().unwrap_or("default"), name))
}

/// A Node's IPv4 InternalIPs, in the order the kubelet reported them.
pub fn node_internal_ips(node: &Node) -> Vec<Ipv4Addr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

#[cfg(any(test, feature = "test-util"))]
pub mod fixtures {
    //! Services and slices as the apiserver and the EndpointSlice controller write them, for tests.

    use std::collections::BTreeMap;

    use k8s_openapi::{
        api::{
            core::v1::{ClientIPConfig, Service, ServicePort as KPort, ServiceSpec, SessionAffinityConfig},
            discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
        },
        apimachinery::pkg::apis::meta::v1::ObjectMeta,
    };

    /// A ClusterIP Service `ns/name` at `ip` with `ports` as (name, port, protocol).
    pub fn service(ns: &str, name: &str, ip: &str, ports: &[(&str, i32, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                ..Default::default()
            },
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                cluster_ip: Some(ip.into()),
                cluster_ips: Some(vec![ip.into()]),
                ports: Some(
                    ports
                        .iter()
                        .map(|(n, p, proto)| KPort {
                            name: (!n.is_empty()).then(|| n.to_string()),
                            port: *p,
                            protocol: Some(proto.to_string()),
                            ..Default::default()
                        })
                        .collect(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// `svc` with ClientIP affinity (`timeout` None: the API default left unset).
    pub fn with_affinity(mut svc: Service, timeout: Option<i32>) -> Service {
        let spec = svc.spec.get_or_insert_with(Default::default);
        spec.session_affinity = Some("ClientIP".into());
        spec.session_affinity_config = timeout
            .map(|t| SessionAffinityConfig { client_ip: Some(ClientIPConfig { timeout_seconds: Some(t) }) });
        svc
    }

    /// An endpoint: (ip, node, ready, serving, terminating).
    pub type Ep<'a> = (&'a str, &'a str, bool, bool, bool);

    /// A ready endpoint on `node`.
    pub fn ready<'a>(ip: &'a str, node: &'a str) -> Ep<'a> {
        (ip, node, true, true, false)
    }

    /// A slice `slice` of Service `ns/svc` with one port (name, port, protocol) and `eps`.
    pub fn slice(ns: &str, svc: &str, slice: &str, port: (&str, i32, &str), eps: &[Ep<'_>]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(slice.into()),
                labels: Some(BTreeMap::from([(super::SERVICE_NAME_LABEL.to_string(), svc.to_string())])),
                ..Default::default()
            },
            address_type: "IPv4".into(),
            endpoints: eps
                .iter()
                .map(|(ip, node, ready, serving, terminating)| Endpoint {
                    addresses: vec![ip.to_string()],
                    conditions: Some(EndpointConditions {
                        ready: Some(*ready),
                        serving: Some(*serving),
                        terminating: Some(*terminating),
                    }),
                    node_name: Some(node.to_string()),
                    ..Default::default()
                })
                .collect(),
            ports: Some(vec![EndpointPort {
                name: Some(port.0.into()),
                port: Some(port.1),
                protocol: Some(port.2.into()),
                app_protocol: None,
            }]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{fixtures::*, *};

    fn ports_of(svc: &Service, slices: &[EndpointSlice], node: &str) -> Vec<ServicePort> {
        service_ports(svc, slices.iter(), node)
    }

    #[test]
    fn service_port_names_print_as_upstream() {
        assert_eq!(
            ServicePortName::new("default", "web", "http", Protocol::Tcp).to_string(),
            "default/web:http"
        );
        assert_eq!(ServicePortName::new("default", "web", "", Protocol::Tcp).to_string(), "default/web");
    }

    #[test]
    fn headless_and_external_name_services_have_no_ports() {
        let mut headless = service("default", "db", "None", &[("", 5432, "TCP")]);
        assert!(ports_of(&headless, &[], "n1").is_empty());
        headless.spec.as_mut().unwrap().cluster_ip = None;
        headless.spec.as_mut().unwrap().type_ = Some("ExternalName".into());
        headless.spec.as_mut().unwrap().external_name = Some("example.com".into());
        assert!(ports_of(&headless, &[], "n1").is_empty());
    }

    #[test]
    fn ports_carry_what_the_rules_need() {
        let mut svc = with_affinity(
            service("default", "web", "10.96.0.20", &[("http", 80, "TCP"), ("dns", 53, "UDP")]),
            None,
        );
        let spec = svc.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
        spec.external_traffic_policy = Some("Local".into());
        spec.internal_traffic_policy = Some("Local".into());
        let ports = ports_of(&svc, &[], "n1");
        assert_eq!(ports.len(), 2);
        let http = ports.iter().find(|p| p.name.port == "http").unwrap();
        assert_eq!(http.name_string, "default/web:http");
        assert_eq!(http.cluster_ip, Ipv4Addr::new(10, 96, 0, 20));
        assert_eq!((http.port, http.node_port, http.affinity_timeout), (80, Some(30080), Some(10800)));
        assert_eq!(
            (http.internal_policy, http.external_policy),
            (TrafficPolicy::Local, TrafficPolicy::Local)
        );
        let dns = ports.iter().find(|p| p.name.port == "dns").unwrap();
        assert_eq!((dns.name.protocol, dns.node_port), (Protocol::Udp, None));
        assert_eq!(dns.external_policy, TrafficPolicy::Cluster, "Local counts only for reachable ports");
        let svc = with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]), Some(60));
        assert_eq!(ports_of(&svc, &[], "n1")[0].affinity_timeout, Some(60));
    }

    #[test]
    fn endpoints_match_port_name_and_protocol_and_merge_across_slices() {
        let svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
        let slices = [
            slice(
                "default",
                "web",
                "web-a",
                ("http", 8080, "TCP"),
                &[ready("10.244.2.7", "n2"), ready("10.244.1.5", "n1")],
            ),
            // The same endpoint seen in a second slice (it moved): once only.
            slice("default", "web", "web-b", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")]),
            // Another port name, and another protocol: not this port's.
            slice("default", "web", "web-c", ("metrics", 9090, "TCP"), &[ready("10.244.3.1", "n3")]),
            slice("default", "web", "web-d", ("http", 8080, "UDP"), &[ready("10.244.3.2", "n3")]),
        ];
        let ports = ports_of(&svc, &slices, "n1");
        let eps: Vec<(&str, bool)> = ports[0].endpoints.iter().map(|e| (e.addr.as_str(), e.local)).collect();
        assert_eq!(eps, [("10.244.1.5:8080", true), ("10.244.2.7:8080", false)]);
        assert_eq!(ports[0].endpoints[0].ip_str(), "10.244.1.5");
    }

    #[test]
    fn a_ready_copy_of_a_duplicated_endpoint_wins() {
        let svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
        let slices = [
            slice(
                "default",
                "web",
                "web-a",
                ("http", 8080, "TCP"),
                &[("10.244.1.5", "n1", false, false, false)],
            ),
            slice("default", "web", "web-b", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")]),
        ];
        let ports = ports_of(&svc, &slices, "n1");
        assert_eq!(ports[0].endpoints.len(), 1);
        assert!(ports[0].endpoints[0].ready);
    }

    fn selected<'a>(p: &'a ServicePort) -> (Vec<&'a str>, Vec<&'a str>, Vec<&'a str>, bool) {
        let s = p.select();
        let addrs = |v: &[&'a Endpoint]| {
            v.iter().map(|e: &&'a Endpoint| -> &'a str { (*e).ip_str() }).collect::<Vec<_>>()
        };
        (addrs(&s.cluster), addrs(&s.local), addrs(&s.reachable), s.has_any)
    }

    #[test]
    fn endpoint_selection_follows_kep_1669_and_2086() {
        struct Case {
            what: &'static str,
            internal_local: bool,
            eps: Vec<Ep<'static>>,
            want: (Vec<&'static str>, Vec<&'static str>, Vec<&'static str>, bool),
        }
        let term = |ip, node, serving| (ip, node, false, serving, true);
        let not_ready = |ip, node| (ip, node, false, false, false);
        let cases = [
            Case {
                what: "ready endpoints only",
                internal_local: false,
                eps: vec![ready("10.0.0.1", "n1"), not_ready("10.0.0.2", "n2"), term("10.0.0.3", "n2", true)],
                want: (vec!["10.0.0.1"], vec![], vec!["10.0.0.1"], true),
            },
            Case {
                what: "no ready endpoint: the terminating ones still serving",
                internal_local: false,
                eps: vec![
                    term("10.0.0.1", "n1", true),
                    term("10.0.0.2", "n2", false),
                    not_ready("10.0.0.3", "n2"),
                ],
                want: (vec!["10.0.0.1"], vec![], vec!["10.0.0.1"], true),
            },
            Case {
                what: "never not-serving ones",
                internal_local: false,
                eps: vec![term("10.0.0.2", "n2", false), not_ready("10.0.0.3", "n2")],
                want: (vec![], vec![], vec![], false),
            },
            Case {
                what: "Local: this node's ready endpoints",
                internal_local: true,
                eps: vec![ready("10.0.0.1", "n1"), ready("10.0.0.2", "n2"), term("10.0.0.3", "n1", true)],
                want: (vec![], vec!["10.0.0.1"], vec!["10.0.0.1"], true),
            },
            Case {
                what: "Local: none here, some elsewhere",
                internal_local: true,
                eps: vec![ready("10.0.0.2", "n2")],
                want: (vec![], vec![], vec![], true),
            },
            Case {
                what: "Local: only terminating-but-serving here",
                internal_local: true,
                eps: vec![term("10.0.0.1", "n1", true), ready("10.0.0.2", "n2")],
                want: (vec![], vec!["10.0.0.1"], vec!["10.0.0.1"], true),
            },
        ];
        for case in cases {
            let mut svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
            if case.internal_local {
                svc.spec.as_mut().unwrap().internal_traffic_policy = Some("Local".into());
            }
            let slices = [slice("default", "web", "web-a", ("http", 8080, "TCP"), &case.eps)];
            let ports = ports_of(&svc, &slices, "n1");
            assert_eq!(selected(&ports[0]), case.want, "{}", case.what);
        }
    }

    #[test]
    fn local_external_policy_and_cluster_internal_policy_reach_both_lists() {
        let mut svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
        let spec = svc.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
        spec.external_traffic_policy = Some("Local".into());
        let slices = [slice(
            "default",
            "web",
            "web-a",
            ("http", 8080, "TCP"),
            &[ready("10.0.0.2", "n2"), ready("10.0.0.1", "n1")],
        )];
        let ports = ports_of(&svc, &slices, "n1");
        assert_eq!(
            selected(&ports[0]),
            (vec!["10.0.0.1", "10.0.0.2"], vec!["10.0.0.1"], vec!["10.0.0.1", "10.0.0.2"], true)
        );
    }

    #[test]
    fn reachable_merges_both_lists_in_order() {
        let mut svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
        let spec = svc.spec.as_mut().unwrap();
        spec.type_ = Some("NodePort".into());
        spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
        spec.external_traffic_policy = Some("Local".into());
        let eps = [ready("10.0.0.2", "n2"), ("10.0.0.1", "n1", false, true, true), ready("10.0.0.3", "n3")];
        let slices = [slice("default", "web", "web-a", ("http", 8080, "TCP"), &eps)];
        let ports = ports_of(&svc, &slices, "n1");
        assert_eq!(
            selected(&ports[0]),
            (vec!["10.0.0.2", "10.0.0.3"], vec!["10.0.0.1"], vec!["10.0.0.1", "10.0.0.2", "10.0.0.3"], true)
        );
    }

    #[test]
    fn the_tracker_says_which_ports_changed() {
        let mut t = Tracker::new("n1");
        let mut snap = Snapshot::<ServicePort>::default();
        t.service_applied(Arc::new(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])));
        t.service_applied(Arc::new(service("default", "db", "10.96.0.21", &[("", 5432, "TCP")])));
        t.update(&mut snap, false);
        let first = snap.clone();
        assert_eq!(Snapshot::<ServicePort>::default().changed(&first).len(), 2);

        // A slice for web: only web changed.
        t.slice_applied(Arc::new(slice(
            "default",
            "web",
            "web-a",
            ("http", 8080, "TCP"),
            &[ready("10.0.0.1", "n1")],
        )));
        assert!(t.is_dirty());
        t.update(&mut snap, false);
        assert!(!t.is_dirty());
        let web = ServicePortName::new("default", "web", "http", Protocol::Tcp);
        assert_eq!(first.changed(&snap), BTreeSet::from([web.clone()]));

        // The same Service again (a status-only update): nothing changed.
        let second = snap.clone();
        t.service_applied(Arc::new(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])));
        t.update(&mut snap, false);
        assert!(second.changed(&snap).is_empty());

        // Deleting db, and a full rebuild, name db only.
        t.service_deleted(&service("default", "db", "10.96.0.21", &[("", 5432, "TCP")]));
        t.update(&mut snap, true);
        assert_eq!(
            second.changed(&snap),
            BTreeSet::from([ServicePortName::new("default", "db", "", Protocol::Tcp)])
        );

        // A deleted slice takes its endpoints with it.
        let third = snap.clone();
        t.slice_deleted(&slice("default", "web", "web-a", ("http", 8080, "TCP"), &[]));
        t.update(&mut snap, false);
        assert_eq!(third.changed(&snap), BTreeSet::from([web.clone()]));
        assert!(snap.get(&web).unwrap().endpoints.is_empty());
    }

    #[test]
    fn changes_since_the_mark_are_what_a_copy_taken_then_would_say() {
        let mut t = Tracker::new("n1");
        let mut snap = Snapshot::<ServicePort>::default();
        t.service_applied(Arc::new(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])));
        t.service_applied(Arc::new(service("default", "db", "10.96.0.21", &[("", 5432, "TCP")])));
        t.update(&mut snap, false);
        assert_eq!(
            snap.changes(),
            Snapshot::<ServicePort>::default().changed(&snap),
            "unmarked: since the start"
        );
        snap.mark();
        let marked = snap.clone();
        assert!(snap.changes().is_empty());

        // web changes and changes back, db goes, cache comes: db and cache.
        let eps = slice("default", "web", "web-a", ("http", 8080, "TCP"), &[ready("10.0.0.1", "n1")]);
        t.slice_applied(Arc::new(eps.clone()));
        t.update(&mut snap, false);
        t.slice_deleted(&eps);
        t.service_deleted(&service("default", "db", "10.96.0.21", &[("", 5432, "TCP")]));
        t.service_applied(Arc::new(service("default", "cache", "10.96.0.22", &[("", 6379, "TCP")])));
        t.update(&mut snap, false);
        let want = BTreeSet::from([
            ServicePortName::new("default", "cache", "", Protocol::Tcp),
            ServicePortName::new("default", "db", "", Protocol::Tcp),
        ]);
        assert_eq!(snap.changes(), want);
        assert_eq!(marked.changed(&snap), want);
        // A full rebuild replaces every Service but changes nothing more.
        t.update(&mut snap, true);
        assert_eq!(snap.changes(), want);
        assert_eq!(snap.total_endpoints(), 0);
        snap.mark();
        assert!(snap.changes().is_empty());
        t.slice_applied(Arc::new(eps));
        t.update(&mut snap, false);
        assert_eq!(snap.total_endpoints(), 1);
        assert_eq!(
            snap.changes(),
            BTreeSet::from([ServicePortName::new("default", "web", "http", Protocol::Tcp)])
        );
    }

    #[test]
    fn a_node_address_change_is_reported_once() {
        let mut t = Tracker::new("n1");
        let node = Node {
            status: Some(k8s_openapi::api::core::v1::NodeStatus {
                addresses: Some(vec![
                    k8s_openapi::api::core::v1::NodeAddress {
                        type_: "InternalIP".into(),
                        address: "172.18.0.2".into(),
                    },
                    k8s_openapi::api::core::v1::NodeAddress {
                        type_: "Hostname".into(),
                        address: "n1".into(),
                    },
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(t.node(Some(&node)));
        assert!(!t.node(Some(&node)));
        assert_eq!(t.node_ips(), [Ipv4Addr::new(172, 18, 0, 2)]);
        assert!(t.update(&mut Snapshot::<ServicePort>::default(), false));
        assert!(!t.update(&mut Snapshot::<ServicePort>::default(), false));
    }
}
