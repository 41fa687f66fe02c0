//! The apiserver's flags, named as kube-apiserver names them where it has them.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use ipnet::Ipv4Net;

/// Default listen address: kube-apiserver's secure port.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:6443";
/// Default data directory for the embedded store.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/netlab/apiserver";
/// kubeadm's default Service CIDR.
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// kube-apiserver's default NodePort range.
pub const DEFAULT_NODE_PORT_RANGE: &str = "30000-32767";
/// Events kept for watches that resume from a resourceVersion.
pub const DEFAULT_WATCH_HISTORY: usize = 100_000;
/// Events a watcher may lag before it must relist.
pub const DEFAULT_WATCH_BUFFER: usize = 16_384;

/// netlab-apiserver: the lab's kube-apiserver.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-apiserver", version, about)]
pub struct Config {
    /// Address to serve the gRPC API on.
    #[arg(long, env = "NETLAB_APISERVER_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// The address published as the `kubernetes` Service's endpoint (kube-apiserver's flag).
    /// Default: the `--listen` address, or when that is 0.0.0.0, the default route's interface.
    #[arg(long, env = "NETLAB_APISERVER_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<IpAddr>,

    /// Directory of the embedded store.
    #[arg(long, env = "NETLAB_APISERVER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// CIDR from which Service ClusterIPs are allocated (IPv4).
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_CLUSTER_IP_RANGE", default_value = DEFAULT_SERVICE_CIDR)]
    pub service_cluster_ip_range: Ipv4Net,

    /// Port range for NodePort Services, `first-last`.
    #[arg(long, env = "NETLAB_APISERVER_SERVICE_NODE_PORT_RANGE", default_value = DEFAULT_NODE_PORT_RANGE, value_parser = parse_port_range)]
    pub service_node_port_range: (u16, u16),

    /// Number of events kept so that watches can resume; older resourceVersions are "too old".
    #[arg(long, env = "NETLAB_APISERVER_WATCH_HISTORY", default_value_t = DEFAULT_WATCH_HISTORY)]
    pub watch_history: usize,

    /// Number of events a watcher may fall behind before it is told to relist.
    #[arg(long, env = "NETLAB_APISERVER_WATCH_BUFFER", default_value_t = DEFAULT_WATCH_BUFFER)]
    pub watch_buffer: usize,

    /// Do not create the system objects (namespaces, `kubernetes` and `kube-dns` Services,
    /// the coredns ConfigMap) at start.
    #[arg(long, env = "NETLAB_APISERVER_NO_BOOTSTRAP")]
    pub no_bootstrap: bool,

    /// Lab exception for `netlab up` (native mode), where every node and the dns process live on
    /// 127.0.0.0/8: EndpointSlice addresses may be loopback. A real apiserver refuses them
    /// ("may not be in the loopback range"), and so does netlab without this flag.
    #[arg(long, env = "NETLAB_APISERVER_ALLOW_LOOPBACK_ENDPOINTS")]
    pub allow_loopback_endpoints: bool,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}

fn parse_port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("invalid port range {s:?}: expected first-last, e.g. 30000-32767"))?;
    let first: u16 = a.trim().parse().map_err(|e| format!("invalid port range {s:?}: {e}"))?;
    let last: u16 = b.trim().parse().map_err(|e| format!("invalid port range {s:?}: {e}"))?;
    if first == 0 || last < first {
        return Err(format!("invalid port range {s:?}: first must be 1..=last"));
    }
    Ok((first, last))
}
