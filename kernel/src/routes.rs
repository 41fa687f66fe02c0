//! The node's routing table: its own podCIDR on the bridge, every other node's podCIDR via that
//! node (host-gw style, as kubenet or flannel host-gw program it), and the default route out.
//! With 1,000 nodes a lookup is a binary search, not a scan.

use std::{
    collections::{BTreeMap, HashSet},
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
        }
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
        if self.own.is_some_and(|c| c.contains(&dst)) {
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
