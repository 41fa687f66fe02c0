//! What a walk is about: the first packet of a connection, where it entered the node, and the
//! state the walk reads besides the rules (`recent` lists, randomness, the node's addresses).

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
}
