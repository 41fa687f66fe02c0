//! The cloud's flags.

use std::net::{Ipv4Addr, SocketAddr};

/// Where the OCI registry listens (the port Docker's `registry:2` uses).
pub const DEFAULT_REGISTRY_LISTEN: &str = "0.0.0.0:5000";
/// Where the upstream DNS resolver listens, UDP and TCP.
pub const DEFAULT_DNS_LISTEN: &str = "0.0.0.0:53";
/// Where /healthz and /readyz are served: clear of the dns process's 8080/8181 and the
/// Kubernetes components' 1025x ports when everything runs on one machine.
pub const DEFAULT_HEALTHZ_BIND_ADDRESS: &str = "0.0.0.0:10260";
/// The address the outside world's AWS and registry names resolve to.
pub const DEFAULT_ADVERTISE_ADDRESS: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// netlab-cloud: the world outside the cluster.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-cloud", version, about)]
pub struct Config {
    /// Address of the OCI distribution API (image registry).
    #[arg(long, env = "NETLAB_CLOUD_REGISTRY_LISTEN", default_value = DEFAULT_REGISTRY_LISTEN)]
    pub registry_listen: SocketAddr,

    /// Address of the upstream DNS resolver (UDP and TCP).
    #[arg(long, env = "NETLAB_CLOUD_DNS_LISTEN", default_value = DEFAULT_DNS_LISTEN)]
    pub dns_listen: SocketAddr,

    /// This process's address as others reach it: the AWS endpoint names
    /// (`ec2.us-east-1.amazonaws.com`, `<account>.dkr.ecr.us-east-1.amazonaws.com`, ...) and the
    /// public registries' hosts resolve to it.
    #[arg(long, env = "NETLAB_CLOUD_ADVERTISE_ADDRESS", default_value_t = DEFAULT_ADVERTISE_ADDRESS)]
    pub advertise_address: Ipv4Addr,

    /// Where /healthz and /readyz are served.
    #[arg(long, env = "NETLAB_CLOUD_HEALTHZ_BIND_ADDRESS", default_value = DEFAULT_HEALTHZ_BIND_ADDRESS)]
    pub healthz_bind_address: SocketAddr,

    /// The apiserver, where the faults aimed at the cloud are read (`http://host:port`). Unset:
    /// the cloud runs without the cluster and no fault reaches it.
    #[arg(long, env = "NETLAB_CLOUD_SERVER")]
    pub server: Option<String>,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}
