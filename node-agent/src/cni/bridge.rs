//! The `bridge` plugin with `host-local` IPAM, the chain most self-built clusters use (kubernetes
//! "the hard way", flannel's cbr0): the node's podCIDR on a `cni0` bridge whose address is the
//! gateway, a veth pair per pod (`vethXXXXXXXX` on the host, `eth0` in the sandbox), and a default
//! route via the gateway. No Linux interface is created here: the result describes the virtual
//! wiring that the node's kernel model routes by.

use std::net::Ipv4Addr;

use ipnet::{IpNet, Ipv4Net};
use sha2::{Digest as _, Sha256};

use super::{
    CNI_VERSION, CniError, CniPlugin, CniRequest, CniResult, DEFAULT_NETWORK, Dns, Interface, IpConfig,
    NetworkContext, Route,
    host_local::{HostLocal, Range},
};

/// The bridge's name on the node.
pub const BRIDGE: &str = "cni0";
/// The MTU of the bridge and the pods' interfaces.
pub const MTU: u32 = 1500;

/// bridge + host-local on one podCIDR.
#[derive(Debug)]
pub struct Bridge {
    ipam: HostLocal,
    subnet: Ipv4Net,
}

// === impl Bridge ===

impl Bridge {
    /// The chain for `ctx.pod_cidr`, with its IPAM state under `<cni dir>/networks/cbr0` and its
    /// config written to `<cni dir>/net.d/10-bridge.conflist`.
    pub fn new(ctx: &NetworkContext) -> Result<Self, CniError> {
        let IpNet::V4(subnet) = ctx.pod_cidr else {
            return Err(CniError {
                code: 7,
                msg: "only IPv4 podCIDRs are supported".into(),
                details: String::new(),
            });
        };
        let range = Range::for_subnet(subnet)?;
        let ipam = HostLocal::open(&ctx.dir.join("networks").join(DEFAULT_NETWORK), range)?
            .with_exhaustion(ctx.exhaustion.clone());
        let bridge = Self { ipam, subnet };
        let net_d = ctx.dir.join("net.d");
        std::fs::create_dir_all(&net_d).map_err(|e| CniError::io("creating net.d", e))?;
        let text = serde_json::to_string_pretty(&bridge.network_config()).unwrap_or_default();
        std::fs::write(net_d.join("10-bridge.conflist"), text)
            .map_err(|e| CniError::io("writing the conflist", e))?;
        Ok(bridge)
    }

    /// The IPAM store, for inspection.
    pub fn ipam(&self) -> &HostLocal {
        &self.ipam
    }

    fn gateway(&self) -> Ipv4Addr {
        self.ipam.range().gateway
    }
}

#[async_trait::async_trait]
impl CniPlugin for Bridge {
    fn plugin_type(&self) -> &str {
        "bridge"
    }

    fn network_config(&self) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": CNI_VERSION,
            "name": DEFAULT_NETWORK,
            "plugins": [{
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": true,
                "isDefaultGateway": true,
                "ipMasq": true,
                "mtu": MTU,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": self.subnet.to_string(), "gateway": self.gateway().to_string()}]],
                },
            }],
        })
    }

    async fn add(&self, req: &CniRequest) -> Result<CniResult, CniError> {
        let ip = self.ipam.allocate(&req.container_id, &req.ifname)?;
        let gateway = self.gateway().to_string();
        let digest = Sha256::digest(req.container_id.as_bytes());
        Ok(CniResult {
            cni_version: CNI_VERSION.into(),
            interfaces: vec![
                Interface {
                    name: BRIDGE.into(),
                    mac: mac(&Sha256::digest(self.subnet.to_string())),
                    mtu: Some(MTU),
                    sandbox: None,
                },
                Interface {
                    name: format!("veth{:02x}{:02x}{:02x}{:02x}", digest[0], digest[1], digest[2], digest[3]),
                    mac: mac(&digest[4..]),
                    mtu: Some(MTU),
                    sandbox: None,
                },
                Interface {
                    name: req.ifname.clone(),
                    mac: mac(&digest[10..]),
                    mtu: Some(MTU),
                    sandbox: Some(req.netns.clone()),
                },
            ],
            ips: vec![IpConfig {
                address: format!("{ip}/{}", self.subnet.prefix_len()),
                gateway: Some(gateway.clone()),
                interface: Some(2),
            }],
            routes: vec![Route { dst: "0.0.0.0/0".into(), gw: Some(gateway) }],
            dns: Dns::default(),
        })
    }

    async fn del(&self, req: &CniRequest) -> Result<(), CniError> {
        self.ipam.release(&req.container_id, &req.ifname).map(|_| ())
    }

    async fn gc(&self, valid: &[String]) -> Result<Vec<String>, CniError> {
        let mut released = Vec::new();
        for a in self.ipam.allocations()? {
            if !valid.contains(&a.container_id) {
                self.ipam.release(&a.container_id, &a.ifname)?;
                released.push(a.container_id);
            }
        }
        Ok(released)
    }
}

/// A locally administered unicast MAC from hash bytes (the real plugin picks random ones).
fn mac(bytes: &[u8]) -> String {
    let b = [(bytes[0] & 0xfe) | 0x02, bytes[1], bytes[2], bytes[3], bytes[4], bytes[5]];
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: &str) -> CniRequest {
        CniRequest {
            container_id: id.into(),
            netns: format!("/var/run/netns/cni-{id}"),
            ifname: "eth0".into(),
            args: vec![("K8S_POD_NAME".into(), "web".into())],
        }
    }

    #[tokio::test]
    async fn add_del_gc() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = NetworkContext {
            dir: dir.path().to_path_buf(),
            pod_cidr: "10.244.1.0/24".parse().unwrap(),
            node_ip: "127.0.1.1".parse().unwrap(),
            exhaustion: None,
        };
        let b = Bridge::new(&ctx).unwrap();
        let r = b.add(&req("a")).await.unwrap();
        assert_eq!(r.ips[0].address, "10.244.1.2/24");
        assert_eq!(r.ips[0].gateway.as_deref(), Some("10.244.1.1"));
        assert_eq!(r.interfaces[2].sandbox.as_deref(), Some("/var/run/netns/cni-a"));
        assert!(r.interfaces[1].name.starts_with("veth") && r.interfaces[1].name.len() == 12);
        assert!(dir.path().join("networks/cbr0/10.244.1.2").exists());
        assert!(dir.path().join("net.d/10-bridge.conflist").exists());
        b.add(&req("b")).await.unwrap();
        b.del(&req("a")).await.unwrap();
        b.del(&req("a")).await.unwrap();
        assert!(!dir.path().join("networks/cbr0/10.244.1.2").exists());
        b.add(&req("c")).await.unwrap();
        assert_eq!(b.gc(&["c".into()]).await.unwrap(), ["b"]);
        assert_eq!(b.ipam().allocations().unwrap().len(), 1);
    }
}
