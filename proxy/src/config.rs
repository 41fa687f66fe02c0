//! The proxy's flags, named as kube-proxy names them.

use std::{net::SocketAddr, time::Duration};

use ipnet::Ipv4Net;

use crate::ipvs;

/// Default apiserver address.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:6443";
/// The node-agent's kernel API (the kubelet's port, where the node-agent serves it).
pub const DEFAULT_KERNEL: &str = "http://127.0.0.1:10250";
/// kubeadm/kind's pod network: traffic to a ClusterIP from outside it is masqueraded.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.244.0.0/16";
/// kube-proxy's healthz port.
pub const DEFAULT_HEALTHZ_BIND_ADDRESS: &str = "0.0.0.0:10256";
/// `iptables.minSyncPeriod`.
pub const DEFAULT_MIN_SYNC_PERIOD: &str = "1s";
/// `iptables.syncPeriod`.
pub const DEFAULT_SYNC_PERIOD: &str = "30s";

/// `--proxy-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// iptables-restore rules (the default, as upstream's).
    Iptables,
    /// IPVS virtual servers.
    Ipvs,
}

/// netlab-proxy: the lab's kube-proxy for one node.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-proxy", version, about)]
pub struct Config {
    /// The apiserver.
    #[arg(long, env = "NETLAB_PROXY_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// This node's name (default: the machine's hostname), as the node-agent registers it.
    #[arg(long, env = "NETLAB_PROXY_HOSTNAME_OVERRIDE")]
    pub hostname_override: Option<String>,

    /// The node-agent's kernel API, which takes the rules.
    #[arg(long, env = "NETLAB_PROXY_KERNEL", default_value = DEFAULT_KERNEL)]
    pub kernel: String,

    /// Which proxy mode to use: iptables or ipvs.
    #[arg(long, env = "NETLAB_PROXY_PROXY_MODE", default_value = "iptables", value_parser = parse_proxy_mode)]
    pub proxy_mode: ProxyMode,

    /// The ipvs scheduler type when proxy mode is ipvs.
    #[arg(
        long,
        env = "NETLAB_PROXY_IPVS_SCHEDULER",
        default_value = ipvs::DEFAULT_SCHEDULER,
        value_parser = clap::builder::PossibleValuesParser::new(ipvs::SCHEDULERS),
    )]
    pub ipvs_scheduler: String,

    /// The CIDR range of pods in the cluster; traffic to a ClusterIP from outside it is
    /// masqueraded.
    #[arg(long, env = "NETLAB_PROXY_CLUSTER_CIDR", default_value = DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: Ipv4Net,

    /// SNAT all traffic sent via Service cluster IPs.
    #[arg(long, env = "NETLAB_PROXY_MASQUERADE_ALL")]
    pub masquerade_all: bool,

    /// The minimum period between rule syncs, after a burst of two (e.g. 1s, 500ms).
    #[arg(long, env = "NETLAB_PROXY_IPTABLES_MIN_SYNC_PERIOD", default_value = DEFAULT_MIN_SYNC_PERIOD, value_parser = netlab_config::parse_duration)]
    pub iptables_min_sync_period: Duration,

    /// The longest time between full rule syncs (e.g. 30s, 1m).
    #[arg(long, env = "NETLAB_PROXY_IPTABLES_SYNC_PERIOD", default_value = DEFAULT_SYNC_PERIOD, value_parser = netlab_config::parse_duration)]
    pub iptables_sync_period: Duration,

    /// Where /healthz is served (kube-proxy's port is 10256). A taken port only warns.
    #[arg(long, env = "NETLAB_PROXY_HEALTHZ_BIND_ADDRESS", default_value = DEFAULT_HEALTHZ_BIND_ADDRESS)]
    pub healthz_bind_address: SocketAddr,

    #[command(flatten)]
    #[allow(missing_docs)]
    pub telemetry: netlab_telemetry::Args,
}

/// A `--proxy-mode` netlab-proxy does not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyModeError {
    /// Upstream's nftables mode.
    #[error(
        "nftables mode is not supported by netlab-proxy (the node's kernel takes iptables and ipvs rules); use iptables or ipvs"
    )]
    Nftables,
    /// Upstream's Windows mode.
    #[error("kernelspace mode is for Windows nodes; use iptables or ipvs")]
    Kernelspace,
    /// No mode of kube-proxy's.
    #[error("unknown proxy mode {0:?}: use iptables or ipvs")]
    Unknown(String),
}

/// `--proxy-mode`: iptables or ipvs; the modes netlab's kernel has no model for are refused by
/// name.
pub fn parse_proxy_mode(s: &str) -> Result<ProxyMode, ProxyModeError> {
    match s {
        "iptables" => Ok(ProxyMode::Iptables),
        "ipvs" => Ok(ProxyMode::Ipvs),
        "nftables" => Err(ProxyModeError::Nftables),
        "kernelspace" => Err(ProxyModeError::Kernelspace),
        other => Err(ProxyModeError::Unknown(other.to_string())),
    }
}

// === impl Config ===

impl Config {
    /// The node name: `--hostname-override`, else the hostname, lowercased as kube-proxy does.
    pub fn node_name(&self) -> String {
        netlab_config::host::node_name(self.hostname_override.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn defaults_are_kube_proxys() {
        let cfg = Config::try_parse_from(["netlab-proxy"]).unwrap();
        assert_eq!(cfg.proxy_mode, ProxyMode::Iptables);
        assert_eq!(cfg.ipvs_scheduler, "rr");
        assert_eq!(cfg.cluster_cidr.to_string(), "10.244.0.0/16");
        assert_eq!(cfg.iptables_min_sync_period, Duration::from_secs(1));
        assert_eq!(cfg.iptables_sync_period, Duration::from_secs(30));
        assert_eq!(cfg.healthz_bind_address.port(), 10256);
        assert_eq!(cfg.kernel, "http://127.0.0.1:10250");
        assert!(!cfg.masquerade_all);
        let cfg = Config::try_parse_from([
            "netlab-proxy",
            "--hostname-override",
            "Node-1",
            "--iptables-min-sync-period",
            "500ms",
        ])
        .unwrap();
        assert_eq!(cfg.node_name(), "node-1");
        assert_eq!(cfg.iptables_min_sync_period, Duration::from_millis(500));
    }

    #[test]
    fn unsupported_values_are_refused_by_name() {
        let err = |args: &[&str]| {
            Config::try_parse_from([&["netlab-proxy"], args].concat()).unwrap_err().to_string()
        };
        let e = err(&["--proxy-mode", "nftables"]);
        assert!(
            e.contains("--proxy-mode") && e.contains("nftables mode is not supported by netlab-proxy"),
            "{e}"
        );
        let e = err(&["--proxy-mode", "kernelspace"]);
        assert!(e.contains("kernelspace mode is for Windows nodes"), "{e}");
        let e = err(&["--ipvs-scheduler", "fifo"]);
        assert!(
            e.contains("--ipvs-scheduler")
                && e.contains("[possible values: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh]"),
            "{e}"
        );
        let e = err(&["--iptables-sync-period", "fifty"]);
        assert!(e.contains("--iptables-sync-period") && e.contains("invalid duration \"fifty\""), "{e}");
    }
}
