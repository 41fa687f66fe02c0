//! The controller-manager's flags, named as kube-controller-manager names them.

use ipnet::Ipv4Net;

/// Default apiserver address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";
/// kube-controller-manager's usual `--cluster-cidr` (kubeadm/kind pod network).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.244.0.0/16";
/// `--node-cidr-mask-size` for IPv4.
pub const DEFAULT_NODE_CIDR_MASK_SIZE: u8 = 24;
/// `--max-endpoints-per-slice`.
pub const DEFAULT_MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// Workers per controller (`--concurrent-*-syncs` defaults are 5).
pub const DEFAULT_CONCURRENT_SYNCS: usize = 5;

/// netlab-controller-manager: the lab's kube-controller-manager.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-controller-manager", version, about)]
pub struct Config {
    /// The apiserver.
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// CIDR from which each Node gets its spec.podCIDR.
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_CLUSTER_CIDR", default_value = DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: Ipv4Net,

    /// Prefix length of each Node's podCIDR.
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_NODE_CIDR_MASK_SIZE", default_value_t = DEFAULT_NODE_CIDR_MASK_SIZE)]
    pub node_cidr_mask_size: u8,

    /// Most endpoints in one EndpointSlice (1..=1000).
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_MAX_ENDPOINTS_PER_SLICE", default_value_t = DEFAULT_MAX_ENDPOINTS_PER_SLICE)]
    pub max_endpoints_per_slice: usize,

    /// Workers per controller.
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_CONCURRENT_SYNCS", default_value_t = DEFAULT_CONCURRENT_SYNCS)]
    pub concurrent_syncs: usize,

    /// How often the node lifecycle controller checks heartbeats.
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_NODE_MONITOR_PERIOD", default_value = "5s", value_parser = netlab_config::parse_duration)]
    pub node_monitor_period: std::time::Duration,

    /// How long a Node may go without a heartbeat before it is marked Unknown (NotReady).
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_NODE_MONITOR_GRACE_PERIOD", default_value = "50s", value_parser = netlab_config::parse_duration)]
    pub node_monitor_grace_period: std::time::Duration,

    /// Where /healthz and /readyz are served (kube-controller-manager's port is 10257).
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_HEALTHZ_BIND_ADDRESS", default_value = "0.0.0.0:10257")]
    pub healthz_bind_address: std::net::SocketAddr,

    /// Controllers to run: `*` for all, or a comma list of nodeipam, nodelifecycle, endpointslice, deployment,
    /// replicaset, statefulset, daemonset, garbagecollector, chaos, serviceaccount; `-name` disables one
    /// (`*,-statefulset`).
    #[arg(long, env = "NETLAB_CONTROLLER_MANAGER_CONTROLLERS", default_value = "*")]
    pub controllers: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}

/// Every controller this process runs, by its `--controllers` name.
pub const CONTROLLERS: [&str; 10] = [
    "nodeipam",
    "nodelifecycle",
    "endpointslice",
    "deployment",
    "replicaset",
    "statefulset",
    "daemonset",
    "garbagecollector",
    "chaos",
    "serviceaccount",
];

// === impl Config ===

impl Config {
    /// Whether `--controllers` enables `name`.
    pub fn enabled(&self, name: &str) -> bool {
        let items: Vec<&str> = self.controllers.split(',').map(str::trim).collect();
        if items.iter().any(|i| *i == format!("-{name}")) {
            return false;
        }
        items.iter().any(|i| *i == "*" || *i == name)
    }
}
