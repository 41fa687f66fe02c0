//! The node's routing table: its own podCIDR on the bridge, every other node's podCIDR via that
//! node (host-gw style, as kubenet or flannel host-gw program it), and the default route out.
//! With 1,000 nodes a lookup is a binary search, not a scan.
//!
//! With the AWS VPC CNI there are no podCIDRs: each local pod has a host route of its own
//! (`192.168.7.21 dev eni1a2b3c4d5e6 scope link`, what the aws-cni plugin adds on ADD), and
//! addresses of the VPC that are not local go out of `eth0` to the VPC, which knows which
//! instance holds each address ([`Routes::in_vpc`]; the lab's node-agent plays that fabric).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    fmt::Write as _,
    net::IpAddr,
};

use ipnet::IpNet;

/// Where a packet goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A pod on this node (the bridge).
    Local,
    /// A pod on another node: hand it to that node.
    Node(IpAddr),
    /// Anything else: out through the node's own interface (SNAT to the node IP).
    Default,
}

/// The routing table.
#[derive(Debug, Clone)]
pub struct Routes {
    node_ip: IpAddr,
    own: Option<IpNet>,
    bridge: String,
    /// Other nodes' podCIDRs by their first address.
    nodes: BTreeMap<IpAddr, (IpNet, IpAddr)>,
    gateway: Option<IpAddr>,
    link: Option<IpNet>,
    /// Every node's address, this node's included: machines on the network the nodes share
    /// (natively loopback addresses, which are nonetheless not this namespace's `localhost`).
    neighbours: HashSet<IpAddr>,
    /// Host routes to local pods (VPC CNI): address → host-side device.
    hosts: HashMap<IpAddr, String>,
    /// The VPC's CIDRs (VPC CNI): reached through `eth0`, delivered by the VPC.
    vpc: Vec<IpNet>,
}

// === impl Routes ===

impl Routes {
    /// A node at `node_ip` with no podCIDR yet.
    pub fn new(node_ip: IpAddr) -> Self {
        Self {
            node_ip,
            own: None,
            bridge: "cni0".into(),
            nodes: BTreeMap::new(),
            gateway: None,
            link: None,
            neighbours: HashSet::from([node_ip]),
            hosts: HashMap::new(),
            vpc: Vec::new(),
        }
    }

    /// Adds the host route `ip dev device scope link` to a local pod (the aws-cni plugin's ADD).
    pub fn add_host(&mut self, ip: IpAddr, device: &str) {
        self.hosts.insert(ip, device.to_string());
    }

    /// Removes the host route to `ip` (the plugin's DEL); true if there was one.
    pub fn remove_host(&mut self, ip: IpAddr) -> bool {
        self.hosts.remove(&ip).is_some()
    }

    /// Sets the VPC's CIDRs: the addresses the VPC itself delivers.
    pub fn set_vpc(&mut self, cidrs: impl IntoIterator<Item = IpNet>) {
        self.vpc = cidrs.into_iter().map(|c| c.trunc()).collect();
    }

    /// Whether `ip` is in the VPC (and not a local pod's): the VPC delivers it to the instance
    /// whose ENI holds it.
    pub fn in_vpc(&self, ip: IpAddr) -> bool {
        self.vpc.iter().any(|c| c.contains(&ip))
    }

    /// The node's own podCIDR and its bridge device.
    pub fn set_own(&mut self, cidr: IpNet, bridge: &str) {
        self.own = Some(cidr.trunc());
        self.bridge = bridge.to_string();
    }

    /// The node's LAN and default gateway (for `ip route` only).
    pub fn set_link(&mut self, link: Option<IpNet>, gateway: Option<IpAddr>) {
        self.link = link.map(|l| l.trunc());
        self.gateway = gateway;
    }

    /// Replaces the routes to other nodes: (podCIDR, node IP) pairs; the own CIDR is skipped.
    pub fn set_nodes(&mut self, nodes: impl IntoIterator<Item = (IpNet, IpAddr)>) {
        self.nodes = nodes
            .into_iter()
            .filter(|(cidr, _)| Some(cidr.trunc()) != self.own)
            .map(|(cidr, via)| (cidr.trunc().network(), (cidr.trunc(), via)))
            .collect();
    }

    /// Replaces the nodes' addresses (this node's is always one).
    pub fn set_neighbours(&mut self, addresses: impl IntoIterator<Item = IpAddr>) {
        self.neighbours = addresses.into_iter().chain([self.node_ip]).collect();
    }

    /// Whether `ip` is a node's address (this node's or another's).
    pub fn is_neighbour(&self, ip: IpAddr) -> bool {
        self.neighbours.contains(&ip)
    }

    /// The next hop for `dst`.
    pub fn lookup(&self, dst: IpAddr) -> Route {
        if self.own.is_some_and(|c| c.contains(&dst)) || self.hosts.contains_key(&dst) {
            return Route::Local;
        }
        // The CIDR starting at or before dst with the highest start; podCIDRs never overlap.
        if let Some((_, (cidr, via))) = self.nodes.range(..=dst).next_back()
            && cidr.contains(&dst)
        {
            return Route::Node(*via);
        }
        Route::Default
    }

    /// The device a packet to `dst` leaves by (iptables' `-o`): a local pod's host veth (VPC
    /// CNI), the bridge for the node's podCIDR, `eth0` for everything else.
    pub fn device(&self, dst: IpAddr) -> &str {
        if let Some(dev) = self.hosts.get(&dst) {
            return dev;
        }
        if self.own.is_some_and(|c| c.contains(&dst)) {
            return &self.bridge;
        }
        "eth0"
    }

    /// `ip route`.
    pub fn show(&self) -> String {
        let mut out = String::new();
        let dev = "eth0";
        if let Some(gw) = self.gateway {
            let _ = writeln!(out, "default via {gw} dev {dev}");
        }
        let mut lines: Vec<(IpAddr, String)> = self
            .nodes
            .values()
            .map(|(cidr, via)| (cidr.network(), format!("{cidr} via {via} dev {dev}")))
            .collect();
        if let Some(own) = self.own {
            let gw = gateway_of(own);
            lines
                .push((own.network(), format!("{own} dev {} proto kernel scope link src {gw}", self.bridge)));
        }
        for (ip, dev) in &self.hosts {
            lines.push((*ip, format!("{ip} dev {dev} scope link")));
        }
        if let Some(link) = self.link {
            lines.push((
                link.network(),
                format!("{link} dev {dev} proto kernel scope link src {}", self.node_ip),
            ));
        }
        lines.sort();
        for (_, l) in lines {
            out.push_str(&l);
            out.push('\n');
        }
        out
    }
}

/// The bridge's address: the first host of the podCIDR (host-local's default gateway).
fn gateway_of(cidr: IpNet) -> IpAddr {
    match cidr.network() {
        IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) + 1)),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) + 1)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn neighbours_are_the_nodes_addresses_and_always_this_one() {
        let mut r = Routes::new(ip("127.0.1.1"));
        assert!(r.is_neighbour(ip("127.0.1.1")));
        assert!(!r.is_neighbour(ip("127.0.1.2")));
        r.set_neighbours([ip("127.0.1.2"), ip("127.0.1.3")]);
        assert!(r.is_neighbour(ip("127.0.1.1")) && r.is_neighbour(ip("127.0.1.3")));
        assert!(!r.is_neighbour(ip("127.0.0.1")), "loopback is nobody's address on the wire");
    }

    #[test]
    fn lookup_and_show() {
        let mut r = Routes::new(ip("172.28.1.3"));
        r.set_own("10.244.1.0/24".parse().unwrap(), "cni0");
        r.set_link(Some("172.28.0.0/16".parse().unwrap()), Some(ip("172.28.0.1")));
        r.set_nodes([
            ("10.244.0.0/24".parse().unwrap(), ip("172.28.1.2")),
            ("10.244.1.0/24".parse().unwrap(), ip("172.28.1.3")),
            ("10.244.2.0/24".parse().unwrap(), ip("172.28.1.4")),
        ]);
        assert_eq!(r.lookup(ip("10.244.1.7")), Route::Local);
        assert_eq!(r.lookup(ip("10.244.0.255")), Route::Node(ip("172.28.1.2")));
        assert_eq!(r.lookup(ip("10.244.2.1")), Route::Node(ip("172.28.1.4")));
        assert_eq!(r.lookup(ip("10.244.3.1")), Route::Default);
        assert_eq!(r.lookup(ip("10.96.0.10")), Route::Default);
        assert_eq!(
            r.show(),
            "default via 172.28.0.1 dev eth0\n\
             10.244.0.0/24 via 172.28.1.2 dev eth0\n\
             10.244.1.0/24 dev cni0 proto kernel scope link src 10.244.1.1\n\
             10.244.2.0/24 via 172.28.1.4 dev eth0\n\
             172.28.0.0/16 dev eth0 proto kernel scope link src 172.28.1.3\n"
        );
    }

    #[test]
    fn vpc_cni_host_routes_and_the_vpc() {
        let mut r = Routes::new(ip("127.0.1.1"));
        r.set_link(Some("192.168.0.0/19".parse().unwrap()), Some(ip("192.168.0.1")));
        r.set_vpc(["192.168.0.0/16".parse().unwrap()]);
        r.add_host(ip("192.168.7.21"), "eni1a2b3c4d5e6");
        assert_eq!(r.lookup(ip("192.168.7.21")), Route::Local);
        assert_eq!(r.lookup(ip("192.168.40.9")), Route::Default);
        assert!(r.in_vpc(ip("192.168.40.9")) && !r.in_vpc(ip("10.0.0.1")));
        assert!(r.show().contains("192.168.7.21 dev eni1a2b3c4d5e6 scope link\n"), "{}", r.show());
        assert!(r.remove_host(ip("192.168.7.21")));
        assert!(!r.remove_host(ip("192.168.7.21")));
        assert_eq!(r.lookup(ip("192.168.7.21")), Route::Default);
    }

    #[test]
    fn a_thousand_nodes() {
        let mut r = Routes::new(ip("172.28.1.1"));
        r.set_own("10.244.0.0/24".parse().unwrap(), "cni0");
        r.set_nodes((1..1000u32).map(|i| {
            let net = IpNet::new(IpAddr::V4(std::net::Ipv4Addr::from(0x0af4_0000 + (i << 8))), 24).unwrap();
            (net, IpAddr::V4(std::net::Ipv4Addr::from(0xac1c_0000 + i)))
        }));
        assert_eq!(r.lookup(ip("10.247.231.9")), Route::Node(ip("172.28.3.231")));
    }
}
