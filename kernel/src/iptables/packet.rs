//! What a walk is about: the first packet of a connection, where it entered the node, and the
//! state the walk reads besides the rules (`recent` lists, randomness, the node's addresses and
//! interfaces).

use std::net::{IpAddr, SocketAddr};

use crate::Protocol;

/// The first packet of a connection, as the walk sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// Transport protocol.
    pub protocol: Protocol,
    /// Source address and port.
    pub src: SocketAddr,
    /// Destination address and port.
    pub dst: SocketAddr,
}

/// Where the packet entered the node: from a pod (PREROUTING, then FORWARD) or from the node
/// itself (OUTPUT), which decides the built-in chains the walk starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// From a pod's interface, or from the wire.
    Forwarded,
    /// Originated by the node (host-network pods, probes).
    Local,
}

/// State the walk reads and writes besides the rules: the `recent` lists and randomness.
pub trait WalkEnv {
    /// A uniform random number in [0, 1) (the `statistic` match).
    fn random(&mut self) -> f64;
    /// Seconds since some fixed start (the `recent` match).
    fn now(&self) -> u64;
    /// Whether `ip` is one of this node's own addresses (`addrtype --dst-type LOCAL`).
    fn is_local(&self, ip: IpAddr) -> bool;
    /// `recent --rcheck`: was `src` recorded in `list` within `seconds`?
    fn recent_check(&mut self, list: &str, src: IpAddr, seconds: Option<u64>) -> bool;
    /// `recent --set`: record `src` in `list` now.
    fn recent_set(&mut self, list: &str, src: IpAddr);
    /// The interface a packet to `dst` (after DNAT) leaves by, for `-o`: the pod's host veth
    /// for a pod on this node, `eth0` for everything routed off the node. Only rules with `-o`
    /// ask (kube-proxy writes none), so the walk of its rules never calls this. By default,
    /// `lo` for the node's own addresses and `eth0` for the rest.
    fn out_interface(&self, dst: IpAddr) -> &str {
        if self.is_local(dst) { "lo" } else { "eth0" }
    }
}
