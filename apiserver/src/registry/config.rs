//! How the registry is set up: the ranges it allocates from, the watch history and buffer, and
//! what validation allows beyond upstream.

use ipnet::Ipv4Net;

use crate::validation::ValidationOptions;

/// How the registry is set up.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `--service-cluster-ip-range`.
    pub service_cidr: Ipv4Net,
    /// `--service-node-port-range`, inclusive.
    pub node_ports: (u16, u16),
    /// How many events the watch history keeps; older resourceVersions are "too old".
    pub history: usize,
    /// How many events a watcher may fall behind the writer before it is expired.
    pub watch_buffer: usize,
    /// What validation allows beyond upstream (`--allow-loopback-endpoints`).
    pub validation: ValidationOptions,
}
