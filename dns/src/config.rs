//! The dns process's flags. The DNS behaviour itself comes from the Corefile in the
//! `kube-system/coredns` ConfigMap; these flags say where to find the apiserver, where to listen
//! (so several servers fit on one machine in tests) and what `/etc/resolv.conf` means in the lab.

use std::net::{IpAddr, SocketAddr};

/// Default apiserver address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";
/// Where DNS is served (UDP and TCP); the Corefile's `.:53` port is replaced by this one.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:53";
/// CoreDNS's `health` default.
pub const DEFAULT_HEALTH_LISTEN: &str = "0.0.0.0:8080";
/// CoreDNS's `ready` default.
pub const DEFAULT_READY_LISTEN: &str = "0.0.0.0:8181";
/// kubeadm's `prometheus :9153`.
pub const DEFAULT_METRICS_LISTEN: &str = "0.0.0.0:9153";
/// The ConfigMap holding the Corefile.
pub const COREFILE_NAMESPACE: &str = "kube-system";
/// The ConfigMap holding the Corefile.
pub const COREFILE_CONFIGMAP: &str = "coredns";

/// netlab-dns: the lab's CoreDNS.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-dns", version, about)]
pub struct Config {
    /// The apiserver.
    #[arg(long, env = "NETLAB_DNS_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// DNS address (UDP and TCP), overriding the port the Corefile's server blocks name.
    #[arg(long, env = "NETLAB_DNS_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Where `/health` is served (the Corefile's `health` address is not used).
    #[arg(long, env = "NETLAB_DNS_HEALTH_LISTEN", default_value = DEFAULT_HEALTH_LISTEN)]
    pub health_listen: SocketAddr,

    /// Where `/ready` is served.
    #[arg(long, env = "NETLAB_DNS_READY_LISTEN", default_value = DEFAULT_READY_LISTEN)]
    pub ready_listen: SocketAddr,

    /// Where `/metrics` is served.
    #[arg(long, env = "NETLAB_DNS_METRICS_LISTEN", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: SocketAddr,

    /// The upstream(s) that `forward . /etc/resolv.conf` means (comma-separated `IP[:PORT]`); unset:
    /// the nameservers of this process's own /etc/resolv.conf, as CoreDNS with `dnsPolicy: Default`.
    #[arg(long, env = "NETLAB_DNS_UPSTREAM", value_delimiter = ',')]
    pub upstream: Vec<SocketAddr>,

    /// The address this server is reached at: the kube-dns pod's podIP and the NS glue. Default:
    /// the first non-loopback IPv4 of this host's interfaces (as kubelet picks a node IP).
    #[arg(long, env = "NETLAB_DNS_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<IpAddr>,

    /// Register as the `kube-system/coredns-xxxxx` pod behind the kube-dns Service.
    #[arg(long, env = "NETLAB_DNS_REGISTER", default_value_t = true, action = clap::ArgAction::Set)]
    pub register: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}
