//! netlab-kernel: the part of a Linux node's kernel that Kubernetes networking lives in, as data
//! and pure functions. Pod IPs and ClusterIPs exist on no real interface (see ARCHITECTURE.md,
//! "The virtual network"), so the node-agent asks this crate what a real kernel would decide for
//! a new connection: which NAT rule matches, which endpoint the DNAT picks, whether conntrack
//! already pins the flow, whether a NetworkPolicy lets it through, and where it is routed. No
//! sockets here: every decision is testable in a unit test and benchmarkable in isolation.
//!
//! # Layout
//! - [`iptables`]: the filter and nat tables, iptables-restore/-save, the walk for a new connection.
//! - [`ipvs`]: IPVS virtual servers and schedulers (kube-proxy's ipvs mode).
//! - [`conntrack`]: tracked flows, their NAT and timeouts.
//! - [`netem`]: the qdiscs a network fault installs (netem delay/loss/duplicate/corrupt, tbf).
//! - [`ratelimit`]: `net_ratelimit`, which the kernel's packet-path messages go through.
//! - [`routes`]: where a destination is: this node, another node, or outside.
//! - [`netns`]: all of the above for one node, and the tools that write and print it: the one
//!   place a restore is applied (the node-agent's kernel API, kube-proxy's fake, the benches).
//! - [`netpol`]: NetworkPolicy verdicts (the CNI's job in a real cluster).
//! - [`api`]: the node kernel API's enums (`netlab.node.v1`) to and from the model's.
//! - [`fxhash`]: the hasher of the maps every new connection reads.

pub mod api;
pub mod conntrack;
pub mod fxhash;
pub mod iptables;
pub mod ipvs;
pub mod netem;
pub mod netns;
pub mod netpol;
pub mod ratelimit;
pub mod routes;

use std::fmt;

/// A transport protocol, as Services, container ports and policies name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

// === impl Protocol ===

impl Protocol {
    /// The Kubernetes spelling (`TCP`, `UDP`, `SCTP`); None for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "TCP" => Some(Self::Tcp),
            "UDP" => Some(Self::Udp),
            "SCTP" => Some(Self::Sctp),
            _ => None,
        }
    }

    /// The lower-case name iptables uses (`-p tcp`).
    pub fn lower(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
            Self::Sctp => "SCTP",
        })
    }
}
