//! The node-agent's flags, named after the kubelet's where the kubelet has one.

use std::{net::IpAddr, path::PathBuf, time::Duration};

/// Default apiserver address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";
/// Where every image is pulled from: the `cloud` registry.
pub const DEFAULT_REGISTRY: &str = "http://cloud:5000";
/// The kube-dns Service's ClusterIP (the 10th address of the default Service CIDR).
pub const DEFAULT_CLUSTER_DNS: &str = "10.96.0.10";
/// The kubelet's `--cluster-domain` as kubeadm sets it.
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";
/// The kubelet's `maxPods` default.
pub const DEFAULT_MAX_PODS: u32 = 110;
/// The kubelet's healthz port.
pub const DEFAULT_HEALTHZ_BIND_ADDRESS: &str = "0.0.0.0:10248";
/// Where node state lives when no `--data-dir` is given.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/netlab/node";
/// The kubelet's API port; here the node's kernel API (kube-proxy, the wire, exec).
pub const DEFAULT_PORT: u16 = 10250;
/// The Service CIDR (kube-apiserver's default).
pub const DEFAULT_SERVICE_CIDR: &str = "10.96.0.0/12";
/// The pod CIDR (kubeadm's flannel-style default).
pub const DEFAULT_CLUSTER_CIDR: &str = "10.244.0.0/16";
/// The CNI plugin chain a node uses unless told otherwise.
pub const DEFAULT_CNI: &str = "bridge";

/// netlab-node-agent: one Kubernetes node (kubelet, container runtime, CNI).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-node-agent", version, about)]
pub struct Config {
    /// The apiserver.
    #[arg(long, env = "NETLAB_NODE_AGENT_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// This node's name (default: the machine's hostname).
    #[arg(long, env = "NETLAB_NODE_AGENT_NODE_NAME")]
    pub node_name: Option<String>,

    /// This node's IP (default: the address of the interface that reaches the apiserver), as the
    /// kubelet's `--node-ip`.
    #[arg(long, env = "NETLAB_NODE_AGENT_NODE_IP")]
    pub node_ip: Option<IpAddr>,

    /// Per-node state: CNI state files, pod directories, the image store.
    #[arg(long, env = "NETLAB_NODE_AGENT_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,

    /// Base URL of the registry every image is pulled from.
    #[arg(long, env = "NETLAB_NODE_AGENT_REGISTRY", default_value = DEFAULT_REGISTRY)]
    pub registry: String,

    /// The cloud's IMDS (`host:port`): where the node sends what is addressed to the instance
    /// metadata service, 169.254.169.254:80. Unset: that address leads nowhere.
    #[arg(long, env = "NETLAB_NODE_AGENT_IMDS")]
    pub imds: Option<String>,

    /// The cloud's AWS API endpoint (`host:port`, plain HTTP): where the node sends pods'
    /// connections to port 443 of that host's address, which the AWS endpoint names
    /// (`sts.us-east-1.amazonaws.com`, ...) resolve to. Unset: they lead nowhere.
    #[arg(long, env = "NETLAB_NODE_AGENT_AWS_API")]
    pub aws_api: Option<String>,

    /// The kubelet's `--image-credential-provider-config`: a CredentialProviderConfig
    /// (kubelet.config.k8s.io/v1, YAML or JSON) naming the exec plugins that give image
    /// credentials, e.g. `ecr-credential-provider` for `*.dkr.ecr.*.amazonaws.com`.
    #[arg(long, env = "NETLAB_NODE_AGENT_IMAGE_CREDENTIAL_PROVIDER_CONFIG")]
    pub image_credential_provider_config: Option<PathBuf>,

    /// The kubelet's `--image-credential-provider-bin-dir`: where the config's plugins are.
    #[arg(long, env = "NETLAB_NODE_AGENT_IMAGE_CREDENTIAL_PROVIDER_BIN_DIR")]
    pub image_credential_provider_bin_dir: Option<PathBuf>,

    /// The nameserver ClusterFirst pods get (the kubelet's `--cluster-dns`); empty for none.
    #[arg(long, env = "NETLAB_NODE_AGENT_CLUSTER_DNS", default_value = DEFAULT_CLUSTER_DNS)]
    pub cluster_dns: String,

    /// The cluster's DNS domain (the kubelet's `--cluster-domain`).
    #[arg(long, env = "NETLAB_NODE_AGENT_CLUSTER_DOMAIN", default_value = DEFAULT_CLUSTER_DOMAIN)]
    pub cluster_domain: String,

    /// The node's resolv.conf, for dnsPolicy Default (the kubelet's `--resolv-conf`).
    #[arg(long, env = "NETLAB_NODE_AGENT_RESOLV_CONF", default_value = "/etc/resolv.conf")]
    pub resolv_conf: PathBuf,

    /// Most pods on this node (capacity and allocatable `pods`).
    #[arg(long, env = "NETLAB_NODE_AGENT_MAX_PODS", default_value_t = DEFAULT_MAX_PODS)]
    pub max_pods: u32,

    /// Where /healthz is served (the kubelet's 10248). A taken port only warns.
    #[arg(long, env = "NETLAB_NODE_AGENT_HEALTHZ_BIND_ADDRESS", default_value = DEFAULT_HEALTHZ_BIND_ADDRESS)]
    pub healthz_bind_address: std::net::SocketAddr,

    /// The address the kernel API listens on (the kubelet's `--address`).
    #[arg(long, env = "NETLAB_NODE_AGENT_ADDRESS", default_value = "0.0.0.0")]
    pub address: IpAddr,

    /// The kernel API's port on every node (the kubelet's `--port`); other nodes dial it.
    #[arg(long, env = "NETLAB_NODE_AGENT_PORT", default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// The Service CIDR: ClusterIPs exist on no wire, so one no rule DNATs is lost.
    #[arg(long, env = "NETLAB_NODE_AGENT_SERVICE_CLUSTER_IP_RANGE", default_value = DEFAULT_SERVICE_CIDR)]
    pub service_cluster_ip_range: ipnet::IpNet,

    /// The cluster's pod CIDR (kube-proxy's `--cluster-cidr`): pod IPs outside any node's
    /// podCIDR are lost too.
    #[arg(long, env = "NETLAB_NODE_AGENT_CLUSTER_CIDR", default_value = DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: ipnet::IpNet,

    /// Multiplies every kubelet wait (backoff, heartbeat, probe periods): 0.01 makes a 10 s
    /// backoff 100 ms, so tests see real sequences quickly.
    #[arg(long, env = "NETLAB_NODE_AGENT_TIME_SCALE", default_value_t = 1.0)]
    pub time_scale: f64,

    /// The CNI plugin chain, by name: `bridge` (bridge + host-local on the node's podCIDR) or
    /// `aws-vpc-cni` (the AWS VPC CNI: ipamd keeps a warm pool of the node's ENI addresses
    /// through EC2, pods get VPC addresses; needs --imds and --aws-api, and reads ipamd's
    /// settings from the environment: WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET,
    /// MAX_ENI, ENABLE_PREFIX_DELEGATION, WARM_PREFIX_TARGET, ...).
    #[arg(long, env = "NETLAB_NODE_AGENT_CNI", default_value = DEFAULT_CNI)]
    pub cni: String,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}

// === impl Config ===

impl Config {
    /// `d` scaled by `--time-scale` (never negative).
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.time_scale.max(0.0))
    }

    /// The node name: `--node-name`, else the hostname, lowercased as the kubelet does.
    pub fn node_name(&self) -> String {
        netlab_config::host::node_name(self.node_name.as_deref())
    }
}
