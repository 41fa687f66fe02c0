//! `kubectl exec` for netlab: runs a toolbox command inside a pod on this node, with the pod's
//! identity. Its connections leave from the pod's IP through this node's kernel (so kube-proxy's
//! rules, NetworkPolicy and routes apply), its resolv.conf is the one the kubelet wrote, and its
//! DNS queries are real DNS messages sent through the kernel like any other datagram.

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use netlab_proto::node::v1::{ExecOutput, ExecRequest, exec_output::Kind};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::Status;
use tracing::{Instrument as _, info_span};

use crate::{
    apps::toolbox::{self, Chunk, ConnectError, Connected, Output, ResolveError},
    dataplane::{Dataplane, Failure, Source},
    resolver,
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
}

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
    dp: Arc<Dataplane>,
    source: Source,
    hostname: String,
    resolv_conf: String,
    env: Vec<(String, String)>,
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
        Self { dp, source, hostname: name, resolv_conf, env, ip_addr, ip_route }
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
    let prefix = cidr.map_or(24, |c| c.prefix_len());
    let net = ipnet::IpNet::new(ip, prefix).map(|n| n.trunc()).ok();
    let brd = net.map(|n| n.broadcast().to_string()).unwrap_or_default();
    let dev = if host_network { "eth0" } else { "eth0@if7" };
    let addr = format!(
        "{lo}2: {dev}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default\n    link/ether {mac} brd ff:ff:ff:ff:ff:ff link-netnsid 0\n    inet {ip}/{prefix} brd {brd} scope global eth0\n       valid_lft forever preferred_lft forever\n"
    );
    let route = match (host_network, net) {
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

#[async_trait::async_trait]
impl toolbox::Pod for PodEnv {
    async fn connect(&self, dst: SocketAddr, timeout: Duration) -> Result<Connected, ConnectError> {
        match self.dp.connect(&self.source, dst, timeout).await {
            Ok(c) => Ok(Connected { stream: Box::new(c.stream), local: c.local, hops: c.hops }),
            Err(f) => Err(match f.failure {
                Failure::Refused => ConnectError::Refused { hops: f.hops },
                Failure::TimedOut => ConnectError::TimedOut { hops: f.hops },
            }),
        }
    }

    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        // The decision span: every search candidate and its answer, with the DNS queries (and
        // the kernel's DNAT of each) as children.
        let span = info_span!(
            "resolver search",
            netlab.resolver.name = %name,
            netlab.resolver.candidates = tracing::field::Empty,
            netlab.resolver.queries = tracing::field::Empty,
            netlab.resolver.answer = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        let types = [hickory_proto::rr::RecordType::A, hickory_proto::rr::RecordType::AAAA];
        let lookup = async {
            let r = resolver::Resolver::from_resolv_conf(&self.resolv_conf)
                .with_traceparent(netlab_telemetry::propagation::current_traceparent());
            r.lookup(name, &types, self).await
        }
        .instrument(span.clone())
        .await;
        let attempts = match &lookup {
            Ok(l) => &l.attempts,
            Err(f) => &f.attempts,
        };
        let tried: Vec<String> = attempts.iter().map(ToString::to_string).collect();
        let mut names: Vec<&str> = attempts.iter().map(|a| a.name.as_str()).collect();
        names.dedup();
        span.record("netlab.resolver.candidates", names.join(" ").as_str());
        span.record("netlab.resolver.queries", tried.join("; ").as_str());
        match lookup {
            Ok(l) if !l.addrs.is_empty() => {
                let ips: Vec<String> = l.addrs.iter().map(ToString::to_string).collect();
                span.record("netlab.resolver.answer", ips.join(",").as_str());
                Ok(l.addrs)
            }
            Ok(_) => Err(ResolveError::NotFound),
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", e.to_string().as_str());
                Err(e.into_toolbox())
            }
        }
    }

    fn hostname(&self) -> &str {
        &self.hostname
    }

    fn ip(&self) -> IpAddr {
        self.source.ip
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

    /// The DNS tools live with the resolver: their queries are real DNS messages through the
    /// node's kernel.
    async fn run_other(&self, argv: &[String], out: &Output) -> Option<i32> {
        let name = argv.first()?.rsplit('/').next()?.to_string();
        let args = &argv[1..];
        let result = match name.as_str() {
            "dig" => resolver::dig(args, &self.resolv_conf, self).await,
            "nslookup" => resolver::nslookup(args, &self.resolv_conf, self).await,
            "host" => resolver::host(args, &self.resolv_conf, self).await,
            "getent" => resolver::getent(args, &self.resolv_conf, self).await,
            _ => return None,
        };
        if !result.stdout.is_empty() {
            out.out(result.stdout);
        }
        if !result.stderr.is_empty() {
            out.err(result.stderr);
        }
        Some(result.code)
    }
}

#[async_trait::async_trait]
impl resolver::Transport for PodEnv {
    fn traceparent(&self) -> Option<String> {
        netlab_telemetry::propagation::current_traceparent()
    }

    async fn exchange(
        &self,
        server: SocketAddr,
        message: Vec<u8>,
        tcp: bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, resolver::TransportError> {
        if !tcp {
            return self.dp.exchange_udp(&self.source, server, message, timeout).await.map_err(|f| {
                match f.failure {
                    Failure::Refused => resolver::TransportError::Refused,
                    Failure::TimedOut => resolver::TransportError::TimedOut,
                }
            });
        }
        let mut c = self.dp.connect(&self.source, server, timeout).await.map_err(|f| match f.failure {
            Failure::Refused => resolver::TransportError::Refused,
            Failure::TimedOut => resolver::TransportError::TimedOut,
        })?;
        let io = async {
            let len = u16::try_from(message.len()).map_err(|_| std::io::Error::other("message too long"))?;
            c.stream.write_all(&len.to_be_bytes()).await?;
            c.stream.write_all(&message).await?;
            let mut len = [0u8; 2];
            c.stream.read_exact(&mut len).await?;
            let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
            c.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        match tokio::time::timeout(timeout, io).await {
            Ok(Ok(buf)) => Ok(buf),
            _ => Err(resolver::TransportError::TimedOut),
        }
    }
}
