//! The Container Network Interface, modelled on the CNI spec (1.1.0): the runtime calls a plugin
//! with a network config and the container's identity (ADD / DEL / GC) and gets back the CNI
//! result JSON (interfaces, ips, routes, dns). Plugins are chosen by name (`--cni`), so a second
//! chain (the AWS VPC CNI) can be added beside the default `bridge` + `host-local` one.
//!
//! Plugins here are in-process trait objects rather than binaries on `CNI_PATH`, but they take and
//! return the spec's JSON shapes and fail with the spec's error codes and the real plugins' texts.

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub mod aws;
pub mod bridge;
pub mod host_local;

/// The CNI spec version every result carries.
pub const CNI_VERSION: &str = "1.0.0";
/// The name of the default network (flannel's; its host-local state lives under this name).
pub const DEFAULT_NETWORK: &str = "cbr0";

/// One ADD or DEL: the `CNI_*` environment of a plugin invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniRequest {
    /// `CNI_CONTAINERID`: the pod sandbox's ID.
    pub container_id: String,
    /// `CNI_NETNS`: the sandbox's network namespace path.
    pub netns: String,
    /// `CNI_IFNAME`: the interface inside the sandbox (`eth0`).
    pub ifname: String,
    /// `CNI_ARGS`: `K8S_POD_NAMESPACE`, `K8S_POD_NAME`, `K8S_POD_UID`, ...
    pub args: Vec<(String, String)>,
}

/// The ADD result (CNI spec "Success").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    /// Always [`CNI_VERSION`].
    pub cni_version: String,
    /// Interfaces the plugin created (host side and sandbox side).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    /// Addresses assigned.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    /// Routes added in the sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<Route>,
    /// DNS the plugin suggests (the kubelet ignores it in favour of dnsPolicy).
    #[serde(default)]
    pub dns: Dns,
}

/// One interface in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Its name (`cni0`, `veth1a2b3c4d`, `eth0`).
    pub name: String,
    /// Its hardware address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Its MTU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The netns path for sandbox interfaces; absent for host interfaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

/// One address in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// The address with its prefix, e.g. `10.244.1.2/24`.
    pub address: String,
    /// The gateway, e.g. `10.244.1.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces` (absent in IPAM plugins' results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

/// One route in a result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// Destination CIDR.
    pub dst: String,
    /// Next hop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// DNS settings in a result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// Nameservers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    /// Local domain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Search domains.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// A plugin failure (CNI spec "Error"): a code and the plugin's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{msg}")]
pub struct CniError {
    /// The spec's code: 4 invalid env, 5 I/O, 7 invalid config, 11 try again later, 100+ plugin.
    pub code: u32,
    /// The message, e.g. `failed to allocate for range 0: no IP addresses available in range set: ...`.
    pub msg: String,
    /// More detail, if any.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub details: String,
}

/// What a plugin chain needs from the node to be built.
#[derive(Debug, Clone)]
pub struct NetworkContext {
    /// `<data-dir>/cni`: net.d for configs, networks/ for IPAM state.
    pub dir: PathBuf,
    /// The node's `spec.podCIDR`.
    pub pod_cidr: IpNet,
    /// The node's IP.
    pub node_ip: IpAddr,
    /// Asked by the IPAM before each allocation (ExhaustionChaos `pod-cidr`).
    pub exhaustion: Option<Arc<dyn host_local::Exhaustion>>,
}

/// A CNI plugin chain: what the container runtime calls to wire a sandbox.
#[async_trait::async_trait]
pub trait CniPlugin: Send + Sync {
    /// The plugin's `type`, as containerd names it in errors (`plugin type="bridge" name="cbr0" failed (add)`).
    fn plugin_type(&self) -> &str;

    /// The network's `name` from its config, as containerd names it in errors
    /// (`plugin type="bridge" name="cbr0" failed (add)`).
    fn network_name(&self) -> &str {
        DEFAULT_NETWORK
    }

    /// The network config (the `.conflist` JSON), for inspection.
    fn network_config(&self) -> serde_json::Value;

    /// ADD: give the sandbox an interface and an address.
    async fn add(&self, req: &CniRequest) -> Result<CniResult, CniError>;

    /// DEL: release what ADD took. Succeeds when there is nothing to release.
    async fn del(&self, req: &CniRequest) -> Result<(), CniError>;

    /// GC (CNI 1.1): release everything held by a container not in `valid` (the runtime's
    /// `cni.dev/valid-attachments`); returns the container IDs released.
    async fn gc(&self, valid: &[String]) -> Result<Vec<String>, CniError>;
}

/// Builds the plugin chain `name` (`--cni`).
pub fn plugin(name: &str, ctx: &NetworkContext) -> Result<Arc<dyn CniPlugin>, CniError> {
    match name {
        "bridge" => Ok(Arc::new(bridge::Bridge::new(ctx)?)),
        other => Err(CniError {
            code: 7,
            msg: format!("unknown CNI plugin chain {other:?} (known: bridge)"),
            details: String::new(),
        }),
    }
}

// === impl CniError ===

impl CniError {
    /// An I/O failure (code 5).
    pub fn io(what: &str, e: std::io::Error) -> Self {
        CniError { code: 5, msg: format!("{what}: {e}"), details: String::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_json_is_the_spec_shape() {
        let r = CniResult {
            cni_version: CNI_VERSION.into(),
            interfaces: vec![
                Interface { name: "cni0".into(), mac: "02:00:00:00:00:01".into(), mtu: None, sandbox: None },
                Interface {
                    name: "eth0".into(),
                    mac: "02:00:00:00:00:02".into(),
                    mtu: Some(1500),
                    sandbox: Some("/var/run/netns/cni-1".into()),
                },
            ],
            ips: vec![IpConfig {
                address: "10.244.1.2/24".into(),
                gateway: Some("10.244.1.1".into()),
                interface: Some(1),
            }],
            routes: vec![Route { dst: "0.0.0.0/0".into(), gw: Some("10.244.1.1".into()) }],
            dns: Dns::default(),
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "cniVersion": "1.0.0",
                "interfaces": [
                    {"name": "cni0", "mac": "02:00:00:00:00:01"},
                    {"name": "eth0", "mac": "02:00:00:00:00:02", "mtu": 1500, "sandbox": "/var/run/netns/cni-1"}
                ],
                "ips": [{"address": "10.244.1.2/24", "gateway": "10.244.1.1", "interface": 1}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}],
                "dns": {}
            })
        );
        let back: CniResult = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        // An IPAM plugin's result (spec example) parses too.
        let ipam: CniResult = serde_json::from_str(
            r#"{"cniVersion":"1.0.0","ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1"}],"routes":[{"dst":"0.0.0.0/0"}],"dns":{"nameservers":["10.1.0.1"]}}"#,
        )
        .unwrap();
        assert_eq!(ipam.ips[0].interface, None);
        assert_eq!(ipam.dns.nameservers, ["10.1.0.1"]);
    }

    #[test]
    fn unknown_chain_is_a_config_error() {
        let ctx = NetworkContext {
            dir: std::env::temp_dir(),
            pod_cidr: "10.244.1.0/24".parse().unwrap(),
            node_ip: "127.0.1.1".parse().unwrap(),
            exhaustion: None,
        };
        let err = plugin("calico", &ctx).err().unwrap();
        assert_eq!(err.code, 7);
    }
}
