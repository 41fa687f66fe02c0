//! `kubectl exec` for netlab: runs a toolbox command inside a pod on this node, with the pod's
//! identity. Its connections leave from the pod's IP through this node's kernel (so kube-proxy's
//! rules, NetworkPolicy and routes apply), its resolv.conf is the one the kubelet wrote, and its
//! DNS queries are real DNS messages sent through the kernel like any other datagram.

use std::{net::IpAddr, path::PathBuf, sync::Arc};

use k8s_openapi::api::core::v1::Pod;
use netlab_proto::node::v1::{ExecOutput, ExecRequest, exec_output::Kind};
use tonic::Status;
use tracing::{Instrument as _, info_span};

use crate::{
    apps::toolbox::{self, Chunk, Output},
    dataplane::{Dataplane, PodSockets, Source},
    podnet::PodNetwork,
};

/// Where exec finds what the kubelet keeps per pod.
#[derive(Clone)]
pub struct ExecContext {
    /// The node's kernel.
    pub dp: Arc<Dataplane>,
    /// `<data-dir>/pods` (each pod's `etc/resolv.conf`).
    pub pods_dir: PathBuf,
    /// The `kubernetes` Service's ClusterIP (first address of the Service CIDR).
    pub kubernetes_service: IpAddr,
    /// ipamd, once started (VPC CNI nodes): its introspection.
    pub ipamd: IpamdSlot,
}

/// Where a VPC CNI node's ipamd is put once it has started (replaced when it restarts).
pub type IpamdSlot = Arc<std::sync::RwLock<Option<Arc<netlab_vpc_cni::ipamd::Ipamd>>>>;

/// Starts `req` and returns its output stream; the error statuses carry kubelet's wording.
pub fn start(ctx: &ExecContext, req: ExecRequest) -> Result<tokio::sync::mpsc::Receiver<ExecOutput>, Status> {
    let key = format!("{}/{}", req.namespace, req.pod);
    let pod = ctx
        .dp
        .view()
        .pod_object(&key)
        .ok_or_else(|| Status::not_found(format!("pods \"{}\" not found", req.pod)))?;
    let spec =
        pod.spec.as_ref().ok_or_else(|| Status::not_found(format!("pods \"{}\" not found", req.pod)))?;
    if spec.node_name.as_deref() != Some(ctx.dp.node_name()) {
        return Err(Status::failed_precondition(format!(
            "pod {} is not on node {}",
            req.pod,
            ctx.dp.node_name()
        )));
    }
    let container = if req.container.is_empty() {
        spec.containers.first().map(|c| c.name.clone()).unwrap_or_default()
    } else {
        req.container.clone()
    };
    let running = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == container))
        .is_some_and(|c| c.state.as_ref().is_some_and(|s| s.running.is_some()));
    if !running {
        return Err(Status::not_found(format!("container not found (\"{container}\")")));
    }
    if req.command.is_empty() {
        return Err(Status::invalid_argument("you must specify at least one command for the container"));
    }
    let env = PodEnv::new(ctx, &pod, &container);
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let span = info_span!("exec", k8s.pod.name = %req.pod, k8s.namespace.name = %req.namespace, k8s.container.name = %container, netlab.exec.command = %req.command.join(" "), k8s.node.name = %ctx.dp.node_name());
    tokio::spawn(
        async move {
            let (out, mut chunks) = Output::new();
            let forward = {
                let tx = tx.clone();
                async move {
                    while let Some(c) = chunks.recv().await {
                        let kind = match c {
                            Chunk::Stdout(b) => Kind::Stdout(b),
                            Chunk::Stderr(b) => Kind::Stderr(b),
                        };
                        if tx.send(ExecOutput { kind: Some(kind) }).await.is_err() {
                            break;
                        }
                    }
                }
            };
            let run = async move {
                let code = match toolbox::run(&req.command, &env, &out).await {
                    Ok(code) => code,
                    Err(toolbox::ExecError::NotFound(cmd)) => {
                        out.err(format!(
                            "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{cmd}\": executable file not found in $PATH: unknown\n"
                        ));
                        126
                    }
                };
                drop(out);
                code
            };
            let (code, ()) = tokio::join!(run, forward);
            let _ = tx.send(ExecOutput { kind: Some(Kind::ExitCode(code)) }).await;
        }
        .instrument(span),
    );
    Ok(rx)
}

/// The pod as its toolbox sees it.
struct PodEnv {
    net: PodSockets,
    hostname: String,
    resolv_conf: String,
    env: Vec<(String, String)>,
    /// Files of the container's volume mounts: (path inside, file on the node).
    files: Vec<(String, std::path::PathBuf)>,
    ip_addr: String,
    ip_route: String,
}

impl PodEnv {
    fn new(ctx: &ExecContext, pod: &Pod, container: &str) -> Self {
        let dp = ctx.dp.clone();
        let host_network = pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        let ip: IpAddr = pod
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.as_deref())
            .and_then(|i| i.parse().ok())
            .unwrap_or(dp.node_ip());
        let source = Source { pod: if host_network { None } else { dp.view().pod(ip) }, ip };
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let resolv_conf =
            std::fs::read_to_string(ctx.pods_dir.join(&uid).join("etc/resolv.conf")).unwrap_or_default();
        let files = crate::kubelet::volumes::files(pod, container, &ctx.pods_dir.join(&uid));
        let mut env = vec![
            ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("HOSTNAME".into(), name.clone()),
        ];
        if let Some(c) = pod.spec.as_ref().and_then(|s| s.containers.iter().find(|c| c.name == container)) {
            for e in c.env.iter().flatten() {
                if let Some(v) = &e.value {
                    env.push((e.name.clone(), v.clone()));
                }
            }
        }
        // The kubelet injects the `kubernetes` Service into every pod's environment.
        let k = ctx.kubernetes_service;
        env.extend([
            ("KUBERNETES_SERVICE_HOST".into(), k.to_string()),
            ("KUBERNETES_SERVICE_PORT".into(), "443".into()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".into(), "443".into()),
            ("KUBERNETES_PORT".into(), format!("tcp://{k}:443")),
            ("KUBERNETES_PORT_443_TCP".into(), format!("tcp://{k}:443")),
            ("KUBERNETES_PORT_443_TCP_PROTO".into(), "tcp".into()),
            ("KUBERNETES_PORT_443_TCP_PORT".into(), "443".into()),
            ("KUBERNETES_PORT_443_TCP_ADDR".into(), k.to_string()),
            ("HOME".into(), "/root".into()),
        ]);
        let cidr = dp.view().node_cidr(dp.node_name());
        let (ip_addr, ip_route) = interfaces(ip, cidr, host_network, dp.node_ip());
        Self { net: PodSockets { dp, source }, hostname: name, resolv_conf, env, files, ip_addr, ip_route }
    }
}

/// `ip addr` and `ip route` inside the pod's network namespace.
fn interfaces(
    ip: IpAddr,
    cidr: Option<ipnet::IpNet>,
    host_network: bool,
    node_ip: IpAddr,
) -> (String, String) {
    let lo = "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000\n    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n    inet 127.0.0.1/8 scope host lo\n       valid_lft forever preferred_lft forever\n";
    let octets = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => [0, 0, 0, 1],
    };
    let mac = format!("0a:58:{:02x}:{:02x}:{:02x}:{:02x}", octets[0], octets[1], octets[2], octets[3]);
    // The VPC CNI gives a pod an address of the VPC, outside any podCIDR: `<ip>/32`, and a
    // default route via the link-local gateway the plugin pins with a static ARP entry.
    let vpc_cni = !host_network && cidr.is_none_or(|c| !c.contains(&ip));
    let prefix = if vpc_cni { 32 } else { cidr.map_or(24, |c| c.prefix_len()) };
    let net = ipnet::IpNet::new(ip, prefix).map(|n| n.trunc()).ok();
    let brd = match net {
        Some(n) if !vpc_cni => format!(" brd {}", n.broadcast()),
        _ => String::new(),
    };
    let dev = if host_network { "eth0" } else { "eth0@if7" };
    let addr = format!(
        "{lo}2: {dev}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default\n    link/ether {mac} brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet {ip}/{prefix}{brd} scope global eth0\n       valid_lft forever preferred_lft forever\n"
    );
    let route = match (host_network, net) {
        (false, _) if vpc_cni => {
            "default via 169.254.1.1 dev eth0\n169.254.1.1 dev eth0 scope link\n".to_string()
        }
        (false, Some(n)) => {
            let gw = match n.network() {
                IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) + 1)),
                other => other,
            };
            format!("default via {gw} dev eth0\n{n} dev eth0 proto kernel scope link src {ip}\n")
        }
        _ => format!("default dev eth0\n{node_ip} dev eth0 scope link\n"),
    };
    (addr, route)
}

impl toolbox::Pod for PodEnv {
    fn network(&self) -> &dyn PodNetwork {
        &self.net
    }

    fn hostname(&self) -> &str {
        &self.hostname
    }

    fn ip(&self) -> IpAddr {
        self.net.source.ip
    }

    fn resolv_conf(&self) -> &str {
        &self.resolv_conf
    }

    fn env(&self) -> &[(String, String)] {
        &self.env
    }

    fn ip_addr(&self) -> String {
        self.ip_addr.clone()
    }

    fn ip_route(&self) -> String {
        self.ip_route.clone()
    }

    fn file(&self, path: &str) -> Option<String> {
        let (_, on_node) = self.files.iter().find(|(inside, _)| inside == path)?;
        std::fs::read_to_string(on_node).ok()
    }
}
