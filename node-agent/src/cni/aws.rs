//! The AWS VPC CNI's plugin, `aws-cni` (cmd/routed-eni-cni-plugin): ADD asks ipamd for an
//! address of the node's ENIs, puts `<ip>/32` on the pod's `eth0` and adds the host route
//! `<ip> dev eni<hash> scope link`; DEL gives the address back. There is no bridge and no
//! overlay: the address is the VPC's own, so other instances reach the pod through the VPC.
//!
//! The real plugin is a binary that calls ipamd over gRPC (a Unix socket since v1.23); here
//! both live in the node-agent and the call is a function call with the same request and reply
//! (`AddNetworkRequest`, `AddNetworkReply{Success:false}` for "no address"), and the plugin
//! fails with the real plugin's texts.

use std::{net::IpAddr, sync::Arc};

use netlab_vpc_cni::ipamd::{AddNetworkRequest, DelNetworkRequest, Ipamd};
use sha1::{Digest as _, Sha1};

use super::{CniError, CniPlugin, CniRequest, CniResult, Interface, IpConfig};

/// The plugin's type and its network's name in `10-aws.conflist`.
pub const NAME: &str = "aws-cni";
/// The CNI version of `10-aws.conflist`.
const CONFLIST_VERSION: &str = "0.4.0";

/// Where the plugin puts and removes host routes: the node's routing table.
pub trait HostRoutes: Send + Sync {
    /// `ip route add <ip> dev <device> scope link`.
    fn add(&self, ip: IpAddr, device: &str);
    /// `ip route del <ip>`.
    fn remove(&self, ip: IpAddr);
}

/// The `aws-cni` plugin over a running ipamd.
pub struct AwsCni {
    ipamd: Arc<Ipamd>,
    routes: Arc<dyn HostRoutes>,
    veth_prefix: String,
}

// === impl AwsCni ===

impl AwsCni {
    /// The plugin, asking `ipamd` for addresses and programming `routes`; host veths are named
    /// `<veth_prefix><hash>` (AWS_VPC_K8S_CNI_VETHPREFIX, `eni` by default).
    pub fn new(ipamd: Arc<Ipamd>, routes: Arc<dyn HostRoutes>, veth_prefix: &str) -> Self {
        Self { ipamd, routes, veth_prefix: veth_prefix.to_string() }
    }
}

/// A `CNI_ARGS` value.
fn arg<'a>(req: &'a CniRequest, name: &str) -> &'a str {
    req.args.iter().find(|(k, _)| k == name).map_or("", |(_, v)| v.as_str())
}

/// The host-side veth's name (pkg/networkutils/names.go `GeneratePodHostVethName`): the prefix
/// and the first 11 hex digits of SHA-1 of `<namespace>.<name>`.
pub fn host_veth_name(prefix: &str, namespace: &str, name: &str) -> String {
    let digest = Sha1::digest(format!("{namespace}.{name}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{}", &hex[..11])
}

#[async_trait::async_trait]
impl CniPlugin for AwsCni {
    fn plugin_type(&self) -> &str {
        NAME
    }

    fn network_name(&self) -> &str {
        NAME
    }

    fn network_config(&self) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": CONFLIST_VERSION,
            "name": NAME,
            "disableCheck": true,
            "plugins": [
                {
                    "name": NAME,
                    "type": NAME,
                    "vethPrefix": self.veth_prefix,
                    "mtu": "9001",
                    "podSGEnforcingMode": "strict",
                    "pluginLogFile": "/var/log/aws-routed-eni/plugin.log",
                    "pluginLogLevel": "DEBUG"
                },
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
            ]
        })
    }

    async fn add(&self, req: &CniRequest) -> Result<CniResult, CniError> {
        let (namespace, name) = (arg(req, "K8S_POD_NAMESPACE"), arg(req, "K8S_POD_NAME"));
        let reply = self
            .ipamd
            .add_network(&AddNetworkRequest {
                pod_name: name.to_string(),
                pod_namespace: namespace.to_string(),
                container_id: req.container_id.clone(),
                ifname: req.ifname.clone(),
                netns: req.netns.clone(),
                network_name: NAME.to_string(),
            })
            .await;
        let Some(ip) = reply.ipv4.filter(|_| reply.success) else {
            // cmd/routed-eni-cni-plugin/cni.go: ipamd answered Success=false.
            return Err(CniError {
                code: 100,
                msg: "add cmd: failed to assign an IP address to container".into(),
                details: String::new(),
            });
        };
        let veth = host_veth_name(&self.veth_prefix, namespace, name);
        self.routes.add(IpAddr::V4(ip), &veth);
        Ok(CniResult {
            cni_version: super::CNI_VERSION.into(),
            interfaces: vec![
                Interface { name: veth, mac: String::new(), mtu: None, sandbox: None },
                Interface {
                    name: req.ifname.clone(),
                    mac: String::new(),
                    mtu: None,
                    sandbox: Some(req.netns.clone()),
                },
            ],
            ips: vec![IpConfig { address: format!("{ip}/32"), gateway: None, interface: Some(1) }],
            routes: Vec::new(),
            dns: Default::default(),
        })
    }

    async fn del(&self, req: &CniRequest) -> Result<(), CniError> {
        let reply = self
            .ipamd
            .del_network(&DelNetworkRequest {
                pod_name: arg(req, "K8S_POD_NAME").to_string(),
                pod_namespace: arg(req, "K8S_POD_NAMESPACE").to_string(),
                container_id: req.container_id.clone(),
                ifname: req.ifname.clone(),
                network_name: NAME.to_string(),
                reason: "PodDeleted".into(),
            })
            .await;
        if let Some(ip) = reply.ipv4 {
            self.routes.remove(IpAddr::V4(ip));
        }
        Ok(())
    }

    async fn gc(&self, valid: &[String]) -> Result<Vec<String>, CniError> {
        Ok(self.ipamd.gc(valid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_upstreams() {
        // `printf default.web-0 | sha1sum` = 0d7763386da219ddff1faed1cc6576fb9d57d419.
        assert_eq!(host_veth_name("eni", "default", "web-0"), "eni0d7763386da");
        assert_eq!(host_veth_name("vlan", "default", "web-0").len(), 15);
    }
}
