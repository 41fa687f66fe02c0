//! The node's kernel at run time: where a pod's connection goes. The decisions themselves are
//! netlab-kernel's pure functions (the iptables walk, IPVS scheduling, conntrack, NetworkPolicy,
//! routes); this module holds their state for one node and moves the bytes: into a local pod's
//! socket, over the wire to another node-agent (`netlab.node.v1.Kernel/Dial`), or out of the
//! cluster over a real TCP socket.
//!
//! The failure modes are the kernel's: a REJECT rule or a closed port refuses at once; a DROP
//! rule, a NetworkPolicy, an unprogrammed ClusterIP or an unreachable node leave the client
//! waiting until its own timeout, because a dropped SYN is never answered.
//!
//! Network faults ([`crate::netchaos`]) act where a pod's qdiscs and iptables rules would: after
//! the NAT decision (so that they see the endpoint) and before the route, on the handshake both
//! ways, and on the data of a connection they touch; a conntrack table held full refuses new
//! flows as `nf_conntrack_max` does.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use ipnet::IpNet;
use netlab_kernel::{
    Protocol,
    conntrack::{self},
    iptables::{Disposition, Origin, Packet, Target, WalkEnv},
    netns::Netns,
    netpol::{Direction, PodMeta, Verdict},
    routes::Route,
};
use netlab_proto::node::v1::{self as pb, kernel_client::KernelClient, segment::Kind};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tracing::{Instrument as _, debug, info_span};

use crate::{
    cluster::ClusterView,
    netchaos::{Faults, decide, shaper},
    podnet::{Connected, Error, ErrorKind, PodNetwork, Stream},
    sockets::SocketTable,
};

type Inject = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
/// A client of another node's kernel API.
type Peer = KernelClient<tonic::service::interceptor::InterceptedService<Channel, Inject>>;

/// Segments buffered per direction on the wire.
const WIRE_BUFFER: usize = 64;
/// Bytes per data segment.
const SEGMENT: usize = 16 * 1024;
/// How long a NodePort connection arriving from the network may take to reach an endpoint on
/// another node (the client's own timeout usually ends it first).
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

/// The node's kernel.
pub struct Dataplane {
    node_ip: IpAddr,
    node_name: String,
    /// Ranges that exist on no wire (Service and pod CIDRs): unrouted, a packet there is lost.
    virtual_nets: Vec<IpNet>,
    /// The node's network namespace (rules, IPVS, conntrack, routes); netlab-kernel applies its
    /// restores, the kernel API only converts them from gRPC.
    state: Mutex<Netns>,
    sockets: SocketTable,
    view: Arc<ClusterView>,
    peers: Mutex<HashMap<SocketAddr, Peer>>,
    start: Instant,
    /// The network faults this node enforces.
    faults: Arc<Faults>,
    /// The cloud's IMDS (`host:port`), behind 169.254.169.254:80.
    imds: Option<String>,
    /// The cloud's AWS API (`host:port`), behind port 443 of that host's address.
    aws_api: Option<String>,
}

/// Who opens a connection.
#[derive(Debug, Clone)]
pub struct Source {
    /// The pod, or None for the node itself (host-network pods).
    pub pod: Option<Arc<PodMeta>>,
    /// Its address (the pod IP, or the node IP).
    pub ip: IpAddr,
}

/// A pod's sockets on this node: [`PodNetwork`] over the node's kernel, every connection and
/// datagram leaving from `source`.
#[derive(Clone)]
pub struct PodSockets {
    /// The node's kernel.
    pub dp: Arc<Dataplane>,
    /// The pod (or the node, for hostNetwork pods).
    pub source: Source,
}

/// The NAT decision for a new flow.
struct Decision {
    dst: SocketAddr,
    snat: Option<SocketAddr>,
    disposition: Disposition,
    hops: Vec<String>,
    ipvs_vip: Option<SocketAddr>,
    /// The flow needed a conntrack entry and the table was full.
    table_full: bool,
}

// === impl Dataplane ===

impl Dataplane {
    /// The kernel of node `node_name` at `node_ip`; other nodes are dialled on the port their Node
    /// object publishes.
    pub fn new(
        node_name: String,
        node_ip: IpAddr,
        virtual_nets: Vec<IpNet>,
        sockets: SocketTable,
        view: Arc<ClusterView>,
    ) -> Self {
        let seed = Instant::now().elapsed().as_nanos() as u64
            ^ std::process::id() as u64
            ^ (std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0));
        Self {
            node_ip,
            virtual_nets,
            state: Mutex::new(Netns::new(node_ip, seed)),
            sockets,
            view,
            peers: Mutex::default(),
            start: Instant::now(),
            faults: Faults::new(&node_name),
            node_name,
            imds: None,
            aws_api: None,
        }
    }

    /// Sends what is addressed to 169.254.169.254:80 to the cloud's IMDS at `imds` (`host:port`).
    pub fn with_imds(mut self, imds: Option<String>) -> Self {
        self.imds = imds;
        self
    }

    /// Sends pods' connections to port 443 of the AWS API's address to the cloud's AWS endpoint
    /// at `api` (`host:port`), see [`crate::aws_api`].
    pub fn with_aws_api(mut self, api: Option<String>) -> Self {
        self.aws_api = api;
        self
    }

    /// The node's IP.
    pub fn node_ip(&self) -> IpAddr {
        self.node_ip
    }

    /// The node's name.
    pub fn node_name(&self) -> &str {
        &self.node_name
    }

    /// Whether `ip` is the namespace's own loopback. Natively the nodes' addresses are loopback
    /// addresses too (127.0.1.x: the lab's one departure, see the README), and those are
    /// machines on the network, not `localhost`.
    fn in_namespace(&self, ip: IpAddr) -> bool {
        ip.is_loopback() && !self.with_state(|st| st.routes.is_neighbour(ip))
    }

    /// The network faults the node enforces.
    pub fn faults(&self) -> &Arc<Faults> {
        &self.faults
    }

    /// The cluster view.
    pub fn view(&self) -> &Arc<ClusterView> {
        &self.view
    }

    /// The node's socket table.
    pub fn sockets(&self) -> &SocketTable {
        &self.sockets
    }

    /// Time on the kernel's clock (conntrack timeouts).
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// Runs `f` with the kernel state locked. Keep `f` short: every new connection waits.
    pub fn with_state<T>(&self, f: impl FnOnce(&mut Netns) -> T) -> T {
        // Every mutation is a whole restore or one flow; a poisoned state is still usable.
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut st)
    }

    /// Opens a TCP connection from `src` to `dst`, as the node's kernel would route it.
    pub async fn connect(
        self: &Arc<Self>,
        src: &Source,
        dst: SocketAddr,
        timeout: Duration,
    ) -> Result<Connected, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let local = SocketAddr::new(src.ip, self.sockets.ephemeral_port());
        if let Some(api) = self.aws_api.as_deref()
            && crate::aws_api::is_aws_api(api, dst).await
        {
            let hops = vec![format!("route: {dst} is the AWS API (the cloud's endpoint at {api}, no TLS)")];
            return match tokio::time::timeout_at(deadline, crate::aws_api::connect(api, self.node_ip)).await {
                Ok(Ok(stream)) => Ok(Connected { stream, local, hops }),
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    Err(Error::new(ErrorKind::Refused, hops))
                }
                Ok(Err(_)) | Err(_) => Err(Error::new(ErrorKind::TimedOut, hops)),
            };
        }
        if self.in_namespace(dst.ip()) {
            // Inside the pod's network namespace: another container of the same pod (apps
            // listen on the pod IP, which loopback reaches in the same namespace). No NAT, no
            // policy, no route: the packet never leaves the namespace.
            let to = SocketAddr::new(src.ip, dst.port());
            return match self.sockets.connect(SocketAddr::new(dst.ip(), local.port()), to) {
                Ok(s) => Ok(Connected {
                    stream: Box::new(s),
                    local,
                    hops: vec!["loopback: inside the pod".into()],
                }),
                Err(_) => Err(ErrorKind::Refused.into()),
            };
        }
        let origin = if src.pod.is_some() { Origin::Forwarded } else { Origin::Local };
        let protocol = Protocol::Tcp;
        let key = conntrack::Key { protocol, src: local, dst };
        let d = self.decide(key, origin);
        let mut hops = d.hops;
        let drop_until_deadline = |mut hops: Vec<String>, why: String| async move {
            hops.push(why);
            tokio::time::sleep_until(deadline).await;
            Err(Error::new(ErrorKind::TimedOut, hops))
        };
        match d.disposition {
            Disposition::Reject => {
                self.forget(&key, d.ipvs_vip, d.dst);
                return Err(Error::new(ErrorKind::Refused, hops));
            }
            Disposition::Drop => {
                self.forget(&key, d.ipvs_vip, d.dst);
                return drop_until_deadline(hops, "packet dropped".into()).await;
            }
            Disposition::Accept => {}
        }
        let from = d.snat.unwrap_or(local);
        let peer_pod = self.view.pod(d.dst.ip());
        // Egress policy of the source pod, against the destination after DNAT (as Calico and
        // Cilium see it: policies on ClusterIPs match nothing).
        if let Some(pod) = &src.pod {
            let verdict = self.egress(pod, d.dst, peer_pod.as_deref(), protocol);
            if !verdict.allowed() {
                self.forget(&key, d.ipvs_vip, d.dst);
                return drop_until_deadline(
                    hops,
                    format!("netpol egress {}/{}: {verdict}", pod.namespace, pod.name),
                )
                .await;
            }
            if !matches!(verdict, netlab_kernel::netpol::Verdict::NotIsolated { .. }) {
                hops.push(format!("netpol egress {}/{}: {verdict}", pod.namespace, pod.name));
            }
        }
        let route = self.route(d.dst.ip());
        let route_span = match route {
            Route::Local => {
                info_span!("route", netlab.route = "local", k8s.node.name = %self.node_name, netlab.route.snat = tracing::field::Empty)
            }
            Route::Node(via) => {
                let name = self.view.node_name(via).unwrap_or_else(|| via.to_string());
                info_span!("route", netlab.route = "node", netlab.route.via = %via, k8s.node.name = %name, netlab.route.snat = tracing::field::Empty)
            }
            Route::Default => {
                info_span!("route", netlab.route = "default", k8s.node.name = %self.node_name, netlab.route.snat = tracing::field::Empty)
            }
        };
        // The source the far end sees after POSTROUTING's MASQUERADE or SNAT (the VPC CNI's
        // AWS-SNAT-CHAIN-0 rewrites a pod's address to the node's primary VPC address).
        if let Some(snat) = d.snat {
            route_span.record("netlab.route.snat", tracing::field::display(snat.ip()));
        }
        // Network faults: the handshake (SYN out, SYN-ACK back) through the rules the flow meets.
        let seen_as = [dst.ip(), d.dst.ip()];
        let flow = self.faults.flow(src.ip, &seen_as);
        if let Some(flow) = &flow {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let hs = decide::handshake(&flow.out, &flow.back, left, self.faults.now());
            self.faults.record(&hs.decisions, Some(&route_span));
            let by = faults_named(&hs.decisions);
            match hs.established {
                None => {
                    self.forget(&key, d.ipvs_vip, d.dst);
                    return drop_until_deadline(hops, format!("netem: SYN to {} lost ({by})", d.dst))
                        .instrument(route_span)
                        .await;
                }
                Some(wait) if !wait.is_zero() => {
                    hops.push(format!("netem: handshake with {} held {wait:?} ({by})", d.dst));
                    tokio::time::sleep(wait).instrument(route_span.clone()).await;
                }
                Some(_) => {}
            }
        }
        let result = match route {
            Route::Local => {
                route_span.in_scope(|| debug!(dst = %d.dst, "Local delivery."));
                match self.deliver(from, d.dst, peer_pod.as_deref(), Protocol::Tcp) {
                    Delivery::Stream(s) => {
                        hops.push(format!("route: {} is on this node ({})", d.dst.ip(), self.node_name));
                        Ok(s)
                    }
                    Delivery::Refused => Err(ErrorKind::Refused),
                    Delivery::Dropped(why) => {
                        self.forget(&key, d.ipvs_vip, d.dst);
                        return drop_until_deadline(hops, why).await;
                    }
                }
            }
            Route::Node(via) => {
                let name = self.view.node_name(via).unwrap_or_else(|| via.to_string());
                hops.push(format!("route: {} via node {name} ({via})", d.dst.ip()));
                route_span.in_scope(|| debug!(dst = %d.dst, "Over the wire."));
                match self.dial(via, protocol, from, d.dst, dst, deadline).await {
                    Ok(s) => Ok(s),
                    Err(ErrorKind::TimedOut) => {
                        self.forget(&key, d.ipvs_vip, d.dst);
                        hops.push("no answer".into());
                        return Err(Error::new(ErrorKind::TimedOut, hops));
                    }
                    Err(f) => Err(f),
                }
            }
            Route::Default if self.virtual_nets.iter().any(|n| n.contains(&d.dst.ip())) => {
                self.forget(&key, d.ipvs_vip, d.dst);
                return drop_until_deadline(
                    hops,
                    format!("route: no rule or route for {} (a virtual IP nothing programmed): sent to the default gateway and lost", d.dst),
                )
                .await;
            }
            Route::Default if d.dst == crate::metadata::ADDRESS && self.imds.is_some() => {
                let imds = self.imds.as_deref().unwrap_or_default();
                let pod_hops = if src.ip == self.node_ip { 1 } else { crate::metadata::POD_HOPS };
                hops.push(format!("route: {} is the instance metadata service (IMDS at {imds})", d.dst));
                match tokio::time::timeout_at(
                    deadline,
                    crate::metadata::connect(imds, self.node_ip, pod_hops),
                )
                .await
                {
                    Ok(Ok(s)) => Ok(s),
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        Err(ErrorKind::Refused)
                    }
                    Ok(Err(_)) | Err(_) => {
                        self.forget(&key, d.ipvs_vip, d.dst);
                        hops.push("no answer".into());
                        return Err(Error::new(ErrorKind::TimedOut, hops));
                    }
                }
            }
            Route::Default => {
                hops.push(format!(
                    "route: {} leaves the cluster via {} (SNAT to {})",
                    d.dst, self.node_name, self.node_ip
                ));
                match tokio::time::timeout_at(deadline, tokio::net::TcpStream::connect(d.dst)).await {
                    Ok(Ok(s)) => {
                        let _ = s.set_nodelay(true);
                        Ok(Box::new(s) as Box<dyn Stream>)
                    }
                    Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        Err(ErrorKind::Refused)
                    }
                    Ok(Err(_)) | Err(_) => {
                        self.forget(&key, d.ipvs_vip, d.dst);
                        return Err(Error::new(ErrorKind::TimedOut, hops));
                    }
                }
            }
        };
        match result {
            Ok(stream) => {
                let now = self.now();
                self.with_state(|st| st.conntrack.replied(&key, now));
                let stream = match flow {
                    None => stream,
                    Some(_) => {
                        let span = tracing::Span::current();
                        let way = |src: Vec<IpAddr>, dst: Vec<IpAddr>| shaper::Way {
                            faults: self.faults.clone(),
                            src,
                            dst,
                            span: span.clone(),
                        };
                        let (out, back) =
                            (way(vec![src.ip], seen_as.to_vec()), way(seen_as.to_vec(), vec![src.ip]));
                        Box::new(shaper::shape(stream, out, back)) as Box<dyn Stream>
                    }
                };
                Ok(Connected {
                    stream: Box::new(Tracked {
                        inner: stream,
                        dp: self.clone(),
                        key,
                        vip: d.ipvs_vip,
                        real: d.dst,
                    }),
                    local,
                    hops,
                })
            }
            Err(kind) => {
                self.forget(&key, d.ipvs_vip, d.dst);
                if kind == ErrorKind::Refused {
                    hops.push(format!(
                        "{}: connection refused (nothing listens on port {})",
                        d.dst.ip(),
                        d.dst.port()
                    ));
                }
                Err(Error::new(kind, hops))
            }
        }
    }

    /// Sends one UDP datagram from `src` to `dst` and waits for one reply (a DNS query, an
    /// `nc -u` line): the same NAT, policy and routing as a TCP connect. A reply refreshes the
    /// flow's conntrack entry, so later datagrams from the same socket (`source_port`, or an
    /// ephemeral port when None) stay on the same endpoint, as on Linux — even after that
    /// endpoint is gone, until kube-proxy deletes the entry or it times out.
    pub async fn exchange_udp(
        &self,
        src: &Source,
        source_port: Option<u16>,
        dst: SocketAddr,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let local = SocketAddr::new(src.ip, source_port.unwrap_or_else(|| self.sockets.ephemeral_port()));
        let origin = if src.pod.is_some() { Origin::Forwarded } else { Origin::Local };
        let key = conntrack::Key { protocol: Protocol::Udp, src: local, dst };
        let d = self.decide(key, origin);
        let lost = |hops: Vec<String>| async move {
            tokio::time::sleep_until(deadline).await;
            Err(Error::new(ErrorKind::TimedOut, hops))
        };
        match d.disposition {
            Disposition::Reject => {
                self.forget(&key, d.ipvs_vip, d.dst);
                return Err(Error::new(ErrorKind::Refused, d.hops));
            }
            Disposition::Drop => return lost(d.hops).await,
            Disposition::Accept => {}
        }
        if let Some(pod) = &src.pod {
            let peer = self.view.pod(d.dst.ip());
            if !self.egress(pod, d.dst, peer.as_deref(), Protocol::Udp).allowed() {
                return lost(d.hops).await;
            }
        }
        let route = self.with_state(|st| st.routes.lookup(d.dst.ip()));
        if route == Route::Default && self.virtual_nets.iter().any(|n| n.contains(&d.dst.ip())) {
            // An unprogrammed virtual IP: sent to the default gateway and lost.
            return lost(d.hops).await;
        }
        // Network faults: the datagram on its way out.
        let flow = self.faults.flow(src.ip, &[dst.ip(), d.dst.ip()]);
        let span = tracing::Span::current();
        let mut copies = 1;
        if let Some(flow) = &flow {
            let q = decide::packet(&flow.out, payload.len(), self.faults.now());
            self.faults.record(&q.decisions, Some(&span));
            // UDP has no retransmission: a lost datagram, or a corrupted one (its checksum fails
            // at the receiver, which discards it), never arrives; the resolver retries.
            if !q.arrives {
                self.forget(&key, d.ipvs_vip, d.dst);
                let mut hops = d.hops;
                hops.push(format!("netem: datagram to {} lost ({})", d.dst, faults_named(&q.decisions)));
                return lost(hops).await;
            }
            if tokio::time::timeout_at(deadline, tokio::time::sleep(q.delay)).await.is_err() {
                return Err(Error::new(ErrorKind::TimedOut, d.hops));
            }
            copies = q.copies;
        }
        let reply = match route {
            Route::Local | Route::Node(_) => {
                let from = d.snat.unwrap_or(local);
                self.datagram_to_pod(route, from, d.dst, dst, &payload, copies, deadline).await
            }
            Route::Default => datagram_out(d.dst, &payload, copies, deadline).await,
        };
        match reply {
            Ok(reply) => {
                let now = self.now();
                self.with_state(|st| st.conntrack.replied(&key, now));
                // The answer on its way back.
                if let Some(flow) = &flow {
                    let a = decide::packet(&flow.back, reply.len(), self.faults.now());
                    self.faults.record(&a.decisions, Some(&span));
                    if !a.arrives {
                        return lost(d.hops).await;
                    }
                    if tokio::time::timeout_at(deadline, tokio::time::sleep(a.delay)).await.is_err() {
                        return Err(Error::new(ErrorKind::TimedOut, d.hops));
                    }
                }
                Ok(reply)
            }
            // ICMP port-unreachable ends the flow.
            Err(ErrorKind::Refused) => {
                self.forget(&key, d.ipvs_vip, d.dst);
                Err(Error::new(ErrorKind::Refused, d.hops))
            }
            // No answer leaves the entry [UNREPLIED]: each datagram from the same port renews
            // it, which is how a client keeps sending to an endpoint that is gone.
            Err(kind) => {
                let mut hops = d.hops;
                hops.push(format!("no answer from {}", d.dst));
                tokio::time::sleep_until(deadline).await;
                Err(Error::new(kind, hops))
            }
        }
    }

    /// A datagram to a pod, here or over the wire: one exchange on the pod's UDP socket.
    #[allow(clippy::too_many_arguments)]
    async fn datagram_to_pod(
        &self,
        route: Route,
        from: SocketAddr,
        dst: SocketAddr,
        original: SocketAddr,
        payload: &[u8],
        copies: u8,
        deadline: tokio::time::Instant,
    ) -> Result<Vec<u8>, ErrorKind> {
        let mut first = None;
        for _ in 0..copies.max(1) {
            let stream = match route {
                Route::Node(via) => self.dial(via, Protocol::Udp, from, dst, original, deadline).await?,
                _ => {
                    let pod = self.view.pod(dst.ip());
                    match self.deliver(from, dst, pod.as_deref(), Protocol::Udp) {
                        Delivery::Stream(s) => s,
                        Delivery::Refused => return Err(ErrorKind::Refused),
                        Delivery::Dropped(_) => return Err(ErrorKind::TimedOut),
                    }
                }
            };
            if first.is_none() {
                first = Some(stream);
            } else {
                // A duplicate: the server gets it too; its answer is one the client ignores.
                let mut dup = stream;
                let payload = payload.to_vec();
                tokio::spawn(async move {
                    let _ = dup.write_all(&payload).await;
                    let _ = dup.shutdown().await;
                    let _ = dup.read_to_end(&mut Vec::new()).await;
                });
            }
        }
        let Some(mut stream) = first else { return Err(ErrorKind::TimedOut) };
        let io = async {
            stream.write_all(payload).await?;
            stream.shutdown().await?;
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await?;
            Ok::<_, std::io::Error>(reply)
        };
        match tokio::time::timeout_at(deadline, io).await {
            // A server that reads the datagram and sends nothing back: no reply ever comes.
            Ok(Ok(reply)) if !reply.is_empty() => Ok(reply),
            _ => Err(ErrorKind::TimedOut),
        }
    }

    /// The source pod's egress policy for a flow to `dst` (after DNAT, as Calico and Cilium
    /// see it: policies on ClusterIPs match nothing), recorded as a `netpol verdict` span.
    fn egress(&self, pod: &PodMeta, dst: SocketAddr, peer: Option<&PodMeta>, protocol: Protocol) -> Verdict {
        let verdict = {
            let view = self.view.read();
            view.policies.verdict(Direction::Egress, pod, dst.ip(), peer, dst.port(), protocol, false, &*view)
        };
        info_span!("netpol verdict", netlab.netpol.direction = "egress", k8s.pod.name = %pod.name, k8s.namespace.name = %pod.namespace, netlab.netpol.verdict = %verdict)
            .in_scope(|| debug!(%verdict, %protocol, "Egress policy."));
        verdict
    }

    /// NAT for a new flow: conntrack first, then IPVS, then the iptables walk.
    fn decide(&self, key: conntrack::Key, origin: Origin) -> Decision {
        let d = self.nat(key, origin);
        if d.table_full {
            self.faults.table_full(&tracing::Span::current());
        }
        d
    }

    fn nat(&self, key: conntrack::Key, origin: Origin) -> Decision {
        let now = self.now();
        let node_ip = self.node_ip;
        self.with_state(|st| {
            if let Some(e) = st.conntrack.lookup(&key, now) {
                return Decision {
                    dst: e.nat.dst,
                    snat: e.nat.src,
                    disposition: Disposition::Accept,
                    hops: vec![format!("conntrack: existing flow to {}", e.nat.dst)],
                    ipvs_vip: None,
                    table_full: false,
                };
            }
            let mut hops = Vec::new();
            let mut d = Decision {
                dst: key.dst,
                snat: None,
                disposition: Disposition::Accept,
                hops: Vec::new(),
                ipvs_vip: None,
                table_full: false,
            };
            if let Some(s) = st.ipvs.schedule(key.protocol, key.src, key.dst, now) {
                let _span = info_span!("kernel dnat", netlab.kernel.mode = "ipvs", netlab.kernel.scheduler = %s.scheduler, netlab.kernel.endpoint = ?s.real).entered();
                match s.real {
                    Some(real) => {
                        hops.push(format!(
                            "ipvs: {} {} {}{} -> {real} (Masq)",
                            key.protocol,
                            key.dst,
                            s.scheduler,
                            if s.persistent { " persistent" } else { "" }
                        ));
                        d.dst = real;
                        d.ipvs_vip = Some(key.dst);
                    }
                    None => {
                        hops.push(format!("ipvs: {} {} {} has no real servers: connection refused", key.protocol, key.dst, s.scheduler));
                        d.disposition = Disposition::Reject;
                    }
                }
            } else {
                let Netns { tables, recent, rng, routes, .. } = st;
                // addrtype LOCAL: this node's addresses and its loopback, not another node's
                // (natively a loopback address too).
                let local = |ip: IpAddr| ip == node_ip || (ip.is_loopback() && !routes.is_neighbour(ip));
                let mut env = Env { recent, rng, now: now.as_secs(), local: &local, routes };
                let packet = Packet { protocol: key.protocol, src: key.src, dst: key.dst };
                let v = tables.evaluate(packet, origin, &mut env);
                for s in v.steps() {
                    hops.push(describe(&s));
                }
                if v.dnat {
                    let sep = v.steps().rev().find(|s| matches!(s.target, Target::Dnat(_)));
                    let prob = v.steps().rev().find_map(|s| s.probability);
                    let _span = info_span!(
                        "kernel dnat",
                        netlab.kernel.mode = "iptables",
                        netlab.kernel.chain = sep.map(|s| s.chain).unwrap_or(""),
                        netlab.kernel.endpoint = %v.dst,
                        netlab.kernel.probability = prob.unwrap_or(1.0),
                    )
                    .entered();
                }
                d.dst = v.dst;
                d.disposition = v.disposition;
                if v.masquerade {
                    d.snat = Some(SocketAddr::new(node_ip, key.src.port()));
                    hops.push(format!("masquerade: source {} -> {node_ip}", key.src.ip()));
                } else if let Some(to) = v.snat {
                    // `-j SNAT --to-source` (the VPC CNI's AWS-SNAT-CHAIN-0); the source port
                    // is kept, as for MASQUERADE.
                    d.snat = Some(SocketAddr::new(to, key.src.port()));
                    hops.push(format!("snat: source {} -> {to}", key.src.ip()));
                }
            }
            d.hops = hops;
            if d.disposition == Disposition::Accept {
                let nat = conntrack::Nat { dst: d.dst, src: d.snat };
                if let Err(full) = st.conntrack.insert(key, nat, now) {
                    d.hops.push(full.to_string());
                    d.disposition = Disposition::Drop;
                    d.table_full = true;
                }
            }
            d
        })
    }

    /// A flow that failed leaves no conntrack entry and no IPVS connection.
    fn forget(&self, key: &conntrack::Key, vip: Option<SocketAddr>, real: SocketAddr) {
        self.with_state(|st| {
            st.conntrack.remove(key);
            if let Some(vip) = vip {
                st.ipvs.release(key.protocol, vip, real);
            }
        });
    }

    fn closed(&self, key: &conntrack::Key, vip: Option<SocketAddr>, real: SocketAddr) {
        let now = self.now();
        self.with_state(|st| {
            st.conntrack.closed(key, now);
            if let Some(vip) = vip {
                st.ipvs.release(key.protocol, vip, real);
            }
        });
    }

    /// Hands a connection arriving at this node to the destination pod: ingress policy, then
    /// the pod's socket.
    fn deliver(
        &self,
        from: SocketAddr,
        dst: SocketAddr,
        pod: Option<&PodMeta>,
        protocol: Protocol,
    ) -> Delivery {
        let _accept = pod.map(|pod| {
            info_span!("pod accept", k8s.pod.name = %pod.name, k8s.namespace.name = %pod.namespace, k8s.node.name = %self.node_name, client.address = %from, server.address = %dst)
                .entered()
        });
        if let Some(pod) = pod {
            let from_node = from.ip() == self.node_ip;
            let verdict = {
                let view = self.view.read();
                let peer = view.by_ip.get(&from.ip()).cloned();
                view.policies.verdict(
                    Direction::Ingress,
                    pod,
                    from.ip(),
                    peer.as_deref(),
                    dst.port(),
                    protocol,
                    from_node,
                    &*view,
                )
            };
            let span = info_span!("netpol verdict", netlab.netpol.direction = "ingress", k8s.pod.name = %pod.name, k8s.namespace.name = %pod.namespace, netlab.netpol.verdict = %verdict, k8s.node.name = %self.node_name);
            span.in_scope(|| debug!(%from, %dst, %verdict, "Ingress policy."));
            if !verdict.allowed() {
                return Delivery::Dropped(format!(
                    "netpol ingress {}/{}: {verdict}",
                    pod.namespace, pod.name
                ));
            }
        }
        let socket_protocol = match protocol {
            Protocol::Tcp => crate::sockets::Protocol::Tcp,
            Protocol::Udp => crate::sockets::Protocol::Udp,
            Protocol::Sctp => crate::sockets::Protocol::Sctp,
        };
        match self.sockets.open(from, dst, socket_protocol) {
            Ok(s) => Delivery::Stream(Box::new(s)),
            // A datagram to an address no pod holds finds no neighbour on the bridge (ARP goes
            // unanswered) and is lost; one to a pod with nothing on the port meets ICMP
            // port-unreachable.
            Err(_) if protocol == Protocol::Udp && pod.is_none() => Delivery::Dropped(format!(
                "no pod has {} on node {}: the datagram is lost",
                dst.ip(),
                self.node_name
            )),
            Err(_) => Delivery::Refused,
        }
    }

    /// Where a packet to `ip` goes: the routing table, plus the nodes' own addresses, which
    /// are on the network the nodes share (the wire), as a machine's neighbours are on its LAN.
    fn route(&self, ip: IpAddr) -> Route {
        let (route, in_vpc) = self.with_state(|st| match st.routes.lookup(ip) {
            Route::Default if ip != self.node_ip && st.routes.is_neighbour(ip) => (Route::Node(ip), false),
            route => (route, route == Route::Default && st.routes.in_vpc(ip)),
        });
        if !in_vpc {
            return route;
        }
        // Out of eth0 to the VPC, which hands it to the instance holding the address.
        self.view.vpc_owner(ip).filter(|n| *n != self.node_ip).map_or(Route::Default, Route::Node)
    }

    /// A connection from another node (`Dial`): to a pod of this node, the same checks as a
    /// local delivery; to this node's own address (a NodePort), first the NAT a packet arriving
    /// on the node's interface meets (PREROUTING), then delivery to the endpoint, here or over
    /// the wire to its node.
    pub async fn accept_from_wire(&self, open: &pb::Open) -> Result<Delivery, BadOpen> {
        let addr = |field: &'static str, value: &str| {
            value.parse::<SocketAddr>().map_err(|source| BadOpen { field, value: value.to_string(), source })
        };
        let from = addr("source", &open.source)?;
        let dst = addr("destination", &open.destination)?;
        let protocol = netlab_kernel::api::protocol(open.protocol).unwrap_or(Protocol::Tcp);
        let route = self.with_state(|st| st.routes.lookup(dst.ip()));
        if route == Route::Local {
            let pod = self.view.pod(dst.ip());
            return Ok(self.deliver(from, dst, pod.as_deref(), protocol));
        }
        if dst.ip() != self.node_ip {
            return Ok(Delivery::Dropped(format!("{} is not on node {}", dst.ip(), self.node_name)));
        }
        Ok(self.arrive_at_node(from, dst).await)
    }

    /// A connection from the network to this node's address: PREROUTING (KUBE-NODEPORTS, with
    /// externalTrafficPolicy's KUBE-EXT/KUBE-SVL), then the endpoint it was translated to.
    async fn arrive_at_node(&self, from: SocketAddr, dst: SocketAddr) -> Delivery {
        let key = conntrack::Key { protocol: Protocol::Tcp, src: from, dst };
        let d = self.decide(key, Origin::Forwarded);
        match d.disposition {
            Disposition::Reject => {
                self.forget(&key, d.ipvs_vip, d.dst);
                return Delivery::Refused;
            }
            Disposition::Drop => {
                self.forget(&key, d.ipvs_vip, d.dst);
                return Delivery::Dropped(d.hops.join("; "));
            }
            Disposition::Accept => {}
        }
        if d.dst == dst {
            // No rule took it: nothing of the model listens on the node's own address.
            self.forget(&key, d.ipvs_vip, d.dst);
            return Delivery::Refused;
        }
        let source = d.snat.unwrap_or(from);
        let deadline = tokio::time::Instant::now() + ARRIVAL_TIMEOUT;
        match self.route(d.dst.ip()) {
            Route::Local => {
                let pod = self.view.pod(d.dst.ip());
                self.deliver(source, d.dst, pod.as_deref(), Protocol::Tcp)
            }
            Route::Node(via) => match self.dial(via, Protocol::Tcp, source, d.dst, dst, deadline).await {
                Ok(stream) => Delivery::Stream(stream),
                Err(ErrorKind::Refused) => Delivery::Refused,
                Err(_) => {
                    self.forget(&key, d.ipvs_vip, d.dst);
                    Delivery::Dropped(format!("no answer from {} via node {via}", d.dst))
                }
            },
            Route::Default => {
                self.forget(&key, d.ipvs_vip, d.dst);
                Delivery::Dropped(format!("route: no route for {} on node {}", d.dst, self.node_name))
            }
        }
    }

    fn peer(&self, ip: IpAddr) -> Peer {
        let port = self.view.node_port(ip);
        let mut peers = self.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers
            .entry(SocketAddr::new(ip, port))
            .or_insert_with(|| {
                let url = format!("http://{}", SocketAddr::new(ip, port));
                // The URL is built from an IP and a port, so it always parses.
                let ep = tonic::transport::Endpoint::from_shared(url)
                    .expect("an ip:port URL")
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(3));
                // Each connection carries the caller's trace context to the other node.
                KernelClient::with_interceptor(
                    ep.connect_lazy(),
                    netlab_telemetry::propagation::inject as Inject,
                )
            })
            .clone()
    }

    /// Sends a connection over the wire to the node at `via`.
    async fn dial(
        &self,
        via: IpAddr,
        protocol: Protocol,
        from: SocketAddr,
        dst: SocketAddr,
        original: SocketAddr,
        deadline: tokio::time::Instant,
    ) -> Result<Box<dyn Stream>, ErrorKind> {
        let mut client = self.peer(via);
        let (tx, rx) = tokio::sync::mpsc::channel(WIRE_BUFFER);
        let open = pb::Open {
            protocol: pb::Protocol::from(protocol) as i32,
            source: from.to_string(),
            destination: dst.to_string(),
            original_destination: original.to_string(),
        };
        let _ = tx.send(pb::Segment { kind: Some(Kind::Open(open)) }).await;
        let call = async {
            let mut inbound = client.dial(ReceiverStream::new(rx)).await.ok()?.into_inner();
            let first = inbound.message().await.ok()??;
            Some((first, inbound))
        };
        match tokio::time::timeout_at(deadline, call).await {
            Ok(Some((pb::Segment { kind: Some(Kind::Accept(_)) }, inbound))) => {
                let (client_end, our_end) = tokio::io::duplex(crate::sockets::STREAM_BUFFER);
                tokio::spawn(pump(our_end, inbound, tx));
                Ok(Box::new(client_end))
            }
            Ok(Some((pb::Segment { kind: Some(Kind::Close(c)) }, _))) if c.refused => Err(ErrorKind::Refused),
            // No answer, a broken stream or a node that is down: the SYN is lost.
            _ => Err(ErrorKind::TimedOut),
        }
    }
}

// === impl PodSockets ===

#[async_trait::async_trait]
impl PodNetwork for PodSockets {
    async fn connect(&self, dst: SocketAddr, timeout: Duration) -> Result<Connected, Error> {
        self.dp.connect(&self.source, dst, timeout).await
    }

    async fn exchange(
        &self,
        dst: SocketAddr,
        datagram: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        self.dp.exchange_udp(&self.source, None, dst, datagram, timeout).await
    }

    async fn exchange_from(
        &self,
        source_port: Option<u16>,
        dst: SocketAddr,
        datagram: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        self.dp.exchange_udp(&self.source, source_port, dst, datagram, timeout).await
    }

    fn traceparent(&self) -> Option<String> {
        netlab_telemetry::propagation::current_traceparent()
    }

    fn source_ip(&self) -> Option<IpAddr> {
        Some(self.source.ip)
    }
}

/// Where a connection arriving at its destination node ended up.
pub enum Delivery {
    /// The pod's socket took it (here, or on the node a NodePort sent it to).
    Stream(Box<dyn Stream>),
    /// Nothing listens: RST.
    Refused,
    /// A policy dropped it (why, for the log and traces).
    Dropped(String),
}

/// A connection from the wire named an address that does not parse (a peer speaking another
/// version of `netlab.node.v1`).
#[derive(Debug, thiserror::Error)]
#[error("bad {field} {value:?}")]
pub struct BadOpen {
    /// `source` or `destination`.
    field: &'static str,
    /// What it said.
    value: String,
    /// Why it does not parse.
    #[source]
    source: std::net::AddrParseError,
}

/// Moves bytes between a local stream and the wire until both sides are done.
pub async fn pump<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    mut inbound: tonic::Streaming<pb::Segment>,
    tx: tokio::sync::mpsc::Sender<pb::Segment>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let outbound = async {
        let mut buf = vec![0u8; SEGMENT];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let seg =
                        pb::Segment { kind: Some(Kind::Data(bytes::Bytes::copy_from_slice(&buf[..n]))) };
                    if tx.send(seg).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(pb::Segment { kind: Some(Kind::Close(pb::Close { refused: false })) }).await;
        drop(tx);
    };
    let incoming = async {
        while let Ok(Some(seg)) = inbound.message().await {
            match seg.kind {
                Some(Kind::Data(d)) if wr.write_all(&d).await.is_err() => break,
                Some(Kind::Close(_)) | None => break,
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
    };
    tokio::join!(outbound, incoming);
}

/// A datagram leaving the cluster (to the cloud's resolver, say) on a real socket.
async fn datagram_out(
    dst: SocketAddr,
    payload: &[u8],
    copies: u8,
    deadline: tokio::time::Instant,
) -> Result<Vec<u8>, ErrorKind> {
    let bind: SocketAddr = if dst.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let io = async {
        let sock = tokio::net::UdpSocket::bind(bind).await?;
        sock.connect(dst).await?;
        for _ in 0..copies.max(1) {
            sock.send(payload).await?;
        }
        let mut buf = vec![0u8; 65535];
        let n = sock.recv(&mut buf).await?;
        buf.truncate(n);
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout_at(deadline, io).await {
        Ok(Ok(reply)) => Ok(reply),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(ErrorKind::Refused),
        _ => Err(ErrorKind::TimedOut),
    }
}

/// The faults behind `decisions`, for a `curl -v` hop: `NetworkChaos default/p partition`.
fn faults_named(decisions: &[decide::Decision]) -> String {
    let mut names: Vec<String> = Vec::new();
    for d in decisions {
        let name = format!("{} {} {}", d.rule.fault.kind, d.rule.fault.name, d.rule.fault.action);
        if !names.contains(&name) {
            names.push(name);
        }
    }
    names.join(", ")
}

fn describe(s: &netlab_kernel::iptables::Step<'_>) -> String {
    let comment = s.comment.map(|c| format!(" \"{c}\"")).unwrap_or_default();
    let prob = s.probability.map(|p| format!(" probability {p:.10}")).unwrap_or_default();
    let what = match s.target {
        Target::Jump(c) => format!("-> {c}"),
        Target::Dnat(to) => format!("DNAT to {to}"),
        Target::Reject => "REJECT (connection refused)".into(),
        Target::Drop => "DROP".into(),
        other => format!("{other:?}"),
    };
    format!("{} {}{comment}{prob}: {what}", s.table.as_str(), s.chain)
}

/// The walk's view of the kernel's mutable bits.
struct Env<'a> {
    recent: &'a mut HashMap<(String, IpAddr), u64>,
    rng: &'a mut u64,
    now: u64,
    /// Whether an address is this node's (`-m addrtype --src-type LOCAL`).
    local: &'a dyn Fn(IpAddr) -> bool,
    /// The routing table, for the output interface (`-o`).
    routes: &'a netlab_kernel::routes::Routes,
}

impl WalkEnv for Env<'_> {
    fn random(&mut self) -> f64 {
        // splitmix64: fast, and good enough for `statistic --mode random`.
        *self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    fn now(&self) -> u64 {
        self.now
    }

    fn is_local(&self, ip: IpAddr) -> bool {
        (self.local)(ip)
    }

    fn recent_check(&mut self, list: &str, src: IpAddr, seconds: Option<u64>) -> bool {
        // A borrowed key avoids allocating on the hot path only if we own a String; lists are
        // short-lived and few, so the allocation is acceptable here.
        self.recent
            .get(&(list.to_string(), src))
            .is_some_and(|t| seconds.is_none_or(|s| self.now.saturating_sub(*t) <= s))
    }

    fn recent_set(&mut self, list: &str, src: IpAddr) {
        self.recent.insert((list.to_string(), src), self.now);
    }

    fn out_interface(&self, dst: IpAddr) -> &str {
        if (self.local)(dst) { "lo" } else { self.routes.device(dst) }
    }
}

/// A connection's client end that moves its conntrack entry to TIME_WAIT when dropped.
struct Tracked {
    inner: Box<dyn Stream>,
    dp: Arc<Dataplane>,
    key: conntrack::Key,
    vip: Option<SocketAddr>,
    real: SocketAddr,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dp.closed(&self.key, self.vip, self.real);
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use netlab_kernel::netns::{Format, Restore};
    use netlab_vpc_cni::{knobs::RandomizeSnat, snat::snat_rules};

    use super::*;

    const PRIMARY: &str = "10.0.0.4";

    /// A node of the VPC CNI: the primary ENI's address, a VPC of 10.0.0.0/16, two local pods
    /// behind their host veths, and `rules` restored as ipamd restores its SNAT rules.
    fn node(rules: &str) -> Dataplane {
        let dp = Dataplane::new(
            "node-1".into(),
            PRIMARY.parse().unwrap(),
            Vec::new(),
            SocketTable::new(),
            Arc::new(ClusterView::default()),
        );
        dp.with_state(|st| {
            st.routes.set_vpc(["10.0.0.0/16".parse().unwrap()]);
            st.routes.add_host("10.0.5.9".parse().unwrap(), "eni0d7763386da");
            st.routes.add_host("10.0.5.10".parse().unwrap(), "eni1a2b3c4d5e6");
            st.restore(Restore { format: Format::Iptables, text: rules, noflush: true, ensure: &[] })
                .unwrap();
        });
        dp
    }

    fn key(src: &str, dst: &str) -> conntrack::Key {
        conntrack::Key { protocol: Protocol::Tcp, src: src.parse().unwrap(), dst: dst.parse().unwrap() }
    }

    #[test]
    fn vpc_cni_snat_rewrites_the_source_to_the_primary_address() {
        let rules = snat_rules(
            &["10.0.0.0/16".parse().unwrap()],
            &[],
            PRIMARY.parse().unwrap(),
            RandomizeSnat::Prng,
            false,
        )
        .unwrap();
        let dp = node(&rules);
        let d = dp.decide(key("10.0.5.9:40000", "8.8.8.8:443"), Origin::Forwarded);
        assert_eq!(d.snat, Some("10.0.0.4:40000".parse().unwrap()));
        assert_eq!(
            d.hops,
            ["nat POSTROUTING \"AWS SNAT CHAIN\": -> AWS-SNAT-CHAIN-0", "snat: source 10.0.5.9 -> 10.0.0.4"]
        );
        // The flow's conntrack entry keeps the translation.
        let again = dp.decide(key("10.0.5.9:40000", "8.8.8.8:443"), Origin::Forwarded);
        assert_eq!(again.snat, d.snat);
        // Inside the VPC (another node's pod, a local pod) and to the node itself: no SNAT.
        for dst in ["10.0.77.7:80", "10.0.5.10:80", "10.0.0.4:10250"] {
            let d = dp.decide(key("10.0.5.9:40001", dst), Origin::Forwarded);
            assert_eq!((d.snat, d.hops.len()), (None, 0), "{dst}: {:?}", d.hops);
        }
    }

    /// `-o` sees the pod's host veth for a local pod and `eth0` for the rest.
    #[test]
    fn out_interface_is_the_routes_device() {
        let dp = node("*nat\n-A POSTROUTING -o eni+ -j SNAT --to-source 10.0.0.99\nCOMMIT\n");
        let d = dp.decide(key("10.0.5.9:40000", "10.0.5.10:80"), Origin::Forwarded);
        assert_eq!(d.hops, ["snat: source 10.0.5.9 -> 10.0.0.99"]);
        assert_eq!(dp.decide(key("10.0.5.9:40000", "8.8.8.8:443"), Origin::Forwarded).snat, None);
    }
}
