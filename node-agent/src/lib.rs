//! netlab's node-agent: one Kubernetes node in one process. It plays the kubelet (registers the
//! Node, heartbeats, runs the pods bound to it), the container runtime (images pulled over the
//! OCI distribution API, apps run as tasks), and the CNI plugins (bridge + host-local on the
//! node's podCIDR). Pod IPs are virtual: apps listen on the node's [`sockets::SocketTable`],
//! which the node's kernel model ([`dataplane`]) delivers routed connections into.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`node`]: Node registration and heartbeat.
//! - [`kubelet`]: the pod watch and one worker per pod (sandbox, images, containers, probes,
//!   status, events, backoff) and each pod's resolv.conf from its dnsPolicy (`kubelet::dns`).
//!   The faults it enforces (PodChaos container-kill and pod-failure, ExhaustionChaos pod-cidr
//!   through host-local) are read in `kubelet::faults`.
//! - [`cni`]: the CNI plugin interface and the bridge + host-local chain.
//! - [`image`]: reference normalisation, the registry client and the image store.
//! - [`credentials`]: the kubelet's image credential providers (exec plugins, their cache);
//!   [`host_metadata`]: IMDS at the node's own address for the processes the kubelet runs.
//! - [`runtime`]: containers as tasks. [`apps`]: echo, kv, and the toolbox (`curl`, `nc`,
//!   `redis-cli`, `dig`, `nslookup`, `host`, `getent`, `sh`, ...).
//! - [`sockets`]: the node's virtual listening sockets.
//! - [`cluster`]: pods, namespaces, policies and nodes as the node's kernel needs them.
//! - [`podnet`]: the pod network seam: connect, exchange and the socket's errors, one trait
//!   that the resolver and every toolbox command use.
//! - [`dataplane`]: the node's kernel at run time (NAT, policy, routes, the wire), and the
//!   real [`podnet::PodNetwork`] of a pod on this node.
//! - [`server`]: the kernel API (`netlab.node.v1.Kernel`). [`exec`]: commands in a pod.
//! - [`resolver`]: the pod's stub resolver (glibc's search list, ndots, retries).
//! - [`netchaos`]: network faults (NetworkChaos, ExhaustionChaos `conntrack`) as the node's
//!   kernel enforces them.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use k8s_openapi::api::core::v1::Node;
use netlab_client::{Client, ListParams, reflector};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub mod apps;
pub mod aws_api;
pub mod aws_node;
pub mod cluster;
pub mod cni;
pub mod config;
pub mod credentials;
pub mod dataplane;
pub mod error;
pub mod exec;
pub mod host_metadata;
pub mod image;
pub mod kubelet;
pub mod metadata;
pub mod netchaos;
pub mod node;
pub mod podnet;
pub mod resolver;
pub mod runtime;
pub mod server;
pub mod sockets;
pub mod vpc_cni;

pub use config::Config;
pub use error::{Error, Result};

use crate::{cni::CniPlugin, runtime::Runtime, sockets::SocketTable};

/// Runs the node until `shutdown` fires.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    serve(cfg, SocketTable::new(), shutdown).await
}

/// Runs the node with a given socket table (so that the node's other layers share it).
pub async fn serve(cfg: Config, sockets: SocketTable, shutdown: CancellationToken) -> Result<()> {
    if !(cfg.time_scale > 0.0 && cfg.time_scale.is_finite()) {
        return Err(Error::Config(format!("--time-scale must be a positive number, got {}", cfg.time_scale)));
    }
    let health = netlab_health::Health::new();
    // The kubelet's own ComponentChaos gate (stop, pause, kill).
    let component = netlab_faults::Faults::new(netlab_faults::Me::on_node(
        netlab_faults::Component::Kubelet,
        cfg.node_name(),
    ));
    netlab_health::serve_or_warn(
        cfg.healthz_bind_address,
        component.guard(health.routes()),
        shutdown.child_token(),
    )
    .await;
    // aws-node refuses bad settings before it starts; so does the node.
    let vpc_cni = cfg.cni == vpc_cni::CNI_NAME;
    let knobs = if vpc_cni {
        if cfg.imds.is_none() || cfg.aws_api.is_none() {
            return Err(Error::Config(format!(
                "--cni {}: ipamd needs --imds (the instance's ENIs) and --aws-api (EC2)",
                vpc_cni::CNI_NAME
            )));
        }
        Some(
            netlab_vpc_cni::knobs::Knobs::from_env(|k| std::env::var(k).ok())
                .map_err(|e| Error::Config(e.to_string()))?,
        )
    } else {
        None
    };
    let client = Client::new(&cfg.server)?;
    component.spawn_watch(client.clone(), shutdown.child_token());
    client.wait_ready(Duration::from_millis(200)).await;
    let node_ip = match cfg.node_ip {
        Some(ip) => ip,
        None => detect_node_ip(&cfg.server).await?,
    };
    let name = cfg.node_name();
    info!(node = %name, %node_ip, "Node IP.");
    let cfg = Arc::new(cfg);
    let view = Arc::new(cluster::ClusterView::default());
    let dp = Arc::new(
        dataplane::Dataplane::new(
            name.clone(),
            node_ip,
            vec![cfg.service_cluster_ip_range, cfg.cluster_cidr],
            sockets.clone(),
            view.clone(),
        )
        .with_imds(cfg.imds.clone())
        .with_aws_api(cfg.aws_api.clone()),
    );
    let exec = exec::ExecContext {
        dp: dp.clone(),
        pods_dir: cfg.data_dir.join("pods"),
        kubernetes_service: first_host(cfg.service_cluster_ip_range),
        ipamd: Default::default(),
    };
    let ipamd_slot = exec.ipamd.clone();
    let kernel_addr =
        server::serve(exec, SocketAddr::new(cfg.address, cfg.port), shutdown.child_token()).await?;
    let info =
        node::NodeInfo { name: name.clone(), ip: node_ip, max_pods: cfg.max_pods, port: kernel_addr.port() };
    node::register(&client, &info).await?;
    health.set_ready(true);
    let runtime = Arc::new(Runtime::new(sockets));
    let (cni_tx, cni_rx) = watch::channel::<Option<Arc<dyn CniPlugin>>>(None);
    let (ready_tx, ready_rx) = watch::channel(false);
    let faults = kubelet::faults::Faults::start(client.clone(), &name, shutdown.child_token());
    let credentials = credentials_providers(&cfg, node_ip, &shutdown).await?;
    let kubelet = Arc::new(
        kubelet::Kubelet::new(
            cfg.clone(),
            client.clone(),
            name.clone(),
            node_ip,
            runtime,
            cni_rx,
            faults.clone(),
        )?
        .with_credentials(credentials)
        .gated(component.gate().clone()),
    );

    // The EKS AMI caches the VPC CNI's image: aws-node's pod starts without a pull.
    if vpc_cni && let Ok(reference) = image::Reference::parse(aws_node::IMAGE) {
        kubelet.images.preload(&reference, image::AppKind::Toolbox);
    }
    let tracker = tokio_util::task::TaskTracker::new();
    tracker.spawn(kubelet::run(kubelet, shutdown.child_token()));
    let routes_dp = dp.clone();
    let me = name.clone();
    tracker.spawn(cluster::run(
        client.clone(),
        view,
        move |nodes, addresses| {
            let own = nodes.iter().find(|(_, ip)| *ip == node_ip).map(|(c, _)| *c);
            // The VPC CNI leaves a podCIDR unused: pods get VPC addresses, each its own route.
            let own = own.or_else(|| routes_dp.view().node_cidr(&me)).filter(|_| !vpc_cni);
            routes_dp.with_state(|st| {
                if let Some(own) = own {
                    st.routes.set_own(own, "cni0");
                }
                st.routes.set_nodes(nodes);
                st.routes.set_neighbours(addresses);
            });
        },
        shutdown.child_token(),
    ));
    // Network faults: kept current from the fault objects; their counters flushed every second.
    let hold_dp = dp.clone();
    tracker.spawn(netchaos::watch::run(
        client.clone(),
        name.clone(),
        dp.faults().clone(),
        move |full| hold_dp.with_state(|st| st.conntrack.set_full(full)),
        shutdown.child_token(),
    ));
    let reporter = dp.faults().reporter().clone().run(client.clone(), Duration::from_secs(1));
    let stop_reporting = shutdown.child_token();
    tracker.spawn(async move {
        tokio::select! {
            _ = stop_reporting.cancelled() => {}
            _ = reporter => {}
        }
    });
    tracker.spawn(node::heartbeat(
        client.clone(),
        cfg.clone(),
        info,
        ready_rx,
        component.gate().clone(),
        shutdown.child_token(),
    ));
    match (knobs, &cfg.imds, &cfg.aws_api) {
        (Some(knobs), Some(imds), Some(ec2)) => {
            let setup = vpc_cni::Setup {
                imds: imds.clone(),
                ec2: ec2.clone(),
                node_ip,
                max_pods: cfg.max_pods,
                time_scale: cfg.time_scale,
                knobs,
            };
            let (dir, dp, stop) = (cfg.data_dir.clone(), dp.clone(), shutdown.child_token());
            let aws_node = aws_node::follow(client.clone(), shutdown.child_token());
            tracker.spawn(async move {
                vpc_cni::run(setup, &dir, dp, ipamd_slot, aws_node, cni_tx, ready_tx, stop).await;
            });
        }
        _ => {
            tracker.spawn(watch_pod_cidr(
                client,
                cfg,
                name,
                node_ip,
                cni_tx,
                ready_tx,
                faults,
                shutdown.child_token(),
            ));
        }
    }
    tracker.close();
    shutdown.cancelled().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    Ok(())
}

/// The image credential providers of `--image-credential-provider-config`, checked as the
/// kubelet checks them at startup. Their plugins get the node's host-side IMDS address (when
/// the node has IMDS) and the OTLP endpoint in their environment.
async fn credentials_providers(
    cfg: &Config,
    node_ip: IpAddr,
    shutdown: &CancellationToken,
) -> Result<credentials::Providers> {
    let providers = credentials::Providers::load(
        cfg.image_credential_provider_config.as_deref(),
        cfg.image_credential_provider_bin_dir.as_deref(),
    )?;
    if providers.is_empty() {
        return Ok(providers);
    }
    let mut env = Vec::new();
    if let Some(imds) = &cfg.imds {
        let addr = host_metadata::serve(imds.clone(), node_ip, shutdown.child_token())
            .await
            .map_err(|e| Error::io(format!("listening for IMDS on {node_ip}"), e))?;
        info!(%addr, "IMDS for the node's processes.");
        env.push(("AWS_EC2_METADATA_SERVICE_ENDPOINT".to_string(), host_metadata::endpoint(addr)));
    }
    if let Some(otlp) = cfg.telemetry.otlp_endpoint.as_ref().filter(|e| !e.is_empty()) {
        env.push(("OTEL_EXPORTER_OTLP_ENDPOINT".to_string(), otlp.clone()));
    }
    Ok(providers.with_env(env))
}

/// The first usable address of `net` (the `kubernetes` Service's ClusterIP).
fn first_host(net: ipnet::IpNet) -> IpAddr {
    match net.network() {
        IpAddr::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(u32::from(v4) + 1)),
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6) + 1)),
    }
}

/// Waits for the Node's `spec.podCIDR` (node IPAM assigns it) and then builds the CNI plugin.
#[allow(clippy::too_many_arguments)] // One call site; each argument is a different piece of the node.
async fn watch_pod_cidr(
    client: Client,
    cfg: Arc<Config>,
    name: String,
    node_ip: IpAddr,
    cni: watch::Sender<Option<Arc<dyn CniPlugin>>>,
    ready: watch::Sender<bool>,
    faults: Arc<kubelet::faults::Faults>,
    shutdown: CancellationToken,
) {
    let params = ListParams { fields: format!("metadata.name={name}"), ..Default::default() };
    let (cache, mut changes) = reflector::reflector::<Node>(client, params, shutdown.child_token());
    loop {
        let cidr = cache.get(&name).and_then(|n| n.spec.as_ref().and_then(|s| s.pod_cidr.clone()));
        if let Some(cidr) = cidr {
            match cidr.parse() {
                Ok(pod_cidr) => {
                    let ctx = cni::NetworkContext {
                        dir: cfg.data_dir.join("cni"),
                        pod_cidr,
                        node_ip,
                        exhaustion: Some(faults.clone()),
                    };
                    match cni::plugin(&cfg.cni, &ctx) {
                        Ok(plugin) => {
                            info!(%cidr, plugin = %cfg.cni, "Pod CIDR assigned; CNI ready.");
                            cni.send_replace(Some(plugin));
                            ready.send_replace(true);
                            return;
                        }
                        Err(error) => warn!(%error, "Cannot set up CNI."),
                    }
                }
                Err(error) => warn!(%cidr, %error, "Unparsable podCIDR."),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            c = changes.recv() => if c.is_none() { return },
        }
    }
}

/// The address of the interface that reaches the apiserver (the route's source address).
pub async fn detect_node_ip(server: &str) -> Result<IpAddr> {
    let hostport = server.split("://").nth(1).unwrap_or(server).split('/').next().unwrap_or("");
    let hostport = if hostport.contains(':') { hostport.to_string() } else { format!("{hostport}:80") };
    netlab_config::host::source_address_to(&hostport).await.map_err(Error::NodeIp)
}
