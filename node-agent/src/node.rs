//! The Node object: registration (addresses, capacity, nodeInfo, conditions) and the heartbeat
//! (a status update every 10 s × time-scale with a fresh lastHeartbeatTime), as the kubelet's
//! `registerWithAPIServer` and `updateNodeStatus` do. The node reports NotReady with the real
//! "cni plugin not initialized" text until it has a podCIDR and thus a CNI config.

use std::{collections::BTreeMap, net::IpAddr, time::Duration};

use k8s_openapi::{
    api::core::v1::{
        DaemonEndpoint, Node, NodeAddress, NodeCondition, NodeDaemonEndpoints, NodeStatus, NodeSystemInfo,
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{ObjectMeta, Time},
    },
};
use netlab_client::Client;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{Result, config::Config, runtime::RUNTIME_VERSION};

/// The kubelet version this node reports.
pub const KUBELET_VERSION: &str = "v1.33.0";
/// The kubelet's node status update frequency.
pub const NODE_STATUS_UPDATE_FREQUENCY: Duration = Duration::from_secs(10);
/// The NotReady message before the CNI plugin is configured.
pub const NETWORK_NOT_READY: &str = "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized";

/// What the node knows about itself.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// The Node object's name (`--node-name`, else the hostname).
    pub name: String,
    /// The address other nodes and the apiserver reach it at (its InternalIP).
    pub ip: IpAddr,
    /// `--max-pods`.
    pub max_pods: u32,
    /// The port the kernel API (the kubelet's API) actually listens on, published as
    /// `status.daemonEndpoints.kubeletEndpoint.Port` so other nodes and `netlab exec` find it.
    pub port: u16,
}

/// Builds the status: addresses, capacity, conditions (keeping lastTransitionTime from `old`
/// when a condition's status is unchanged), nodeInfo.
pub fn status(info: &NodeInfo, network_ready: bool, old: Option<&NodeStatus>) -> NodeStatus {
    let now = Time(jiff::Timestamp::now());
    let resources: BTreeMap<String, Quantity> = [
        ("cpu", "2".to_string()),
        ("memory", "4025424Ki".to_string()),
        ("ephemeral-storage", "61202244Ki".to_string()),
        ("pods", info.max_pods.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), Quantity(v)))
    .collect();
    let cond = |t: &str, ok: bool, reason: &str, message: &str| {
        let status = if ok { "True" } else { "False" }.to_string();
        let transition = old
            .and_then(|o| o.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == t))
            .filter(|c| c.status == status)
            .and_then(|c| c.last_transition_time.clone())
            .unwrap_or_else(|| now.clone());
        NodeCondition {
            type_: t.into(),
            status,
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_heartbeat_time: Some(now.clone()),
            last_transition_time: Some(transition),
        }
    };
    let ready = if network_ready {
        cond("Ready", true, "KubeletReady", "kubelet is posting ready status")
    } else {
        cond("Ready", false, "KubeletNotReady", NETWORK_NOT_READY)
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    NodeStatus {
        addresses: Some(vec![
            NodeAddress { type_: "InternalIP".into(), address: info.ip.to_string() },
            NodeAddress { type_: "Hostname".into(), address: info.name.clone() },
        ]),
        capacity: Some(resources.clone()),
        allocatable: Some(resources),
        conditions: Some(vec![
            cond(
                "MemoryPressure",
                false,
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            cond("DiskPressure", false, "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", false, "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ready,
        ]),
        daemon_endpoints: Some(NodeDaemonEndpoints {
            kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(info.port) }),
        }),
        node_info: Some(NodeSystemInfo {
            architecture: "amd64".into(),
            boot_id: String::new(),
            container_runtime_version: RUNTIME_VERSION.into(),
            kernel_version: kernel,
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: String::new(),
            operating_system: "linux".into(),
            os_image: "netlab node (Debian GNU/Linux 12 (bookworm))".into(),
            system_uuid: String::new(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Registers the Node (creating it, or taking over an existing one of this name); returns it.
pub async fn register(client: &Client, info: &NodeInfo) -> Result<Node> {
    let labels: BTreeMap<String, String> = [
        ("kubernetes.io/hostname", info.name.as_str()),
        ("kubernetes.io/os", "linux"),
        ("kubernetes.io/arch", "amd64"),
        ("beta.kubernetes.io/os", "linux"),
        ("beta.kubernetes.io/arch", "amd64"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let node = Node {
        metadata: ObjectMeta { name: Some(info.name.clone()), labels: Some(labels), ..Default::default() },
        spec: None,
        status: Some(status(info, false, None)),
    };
    let stored = match client.create(&node).await {
        Ok(n) => {
            info!(node = %info.name, ip = %info.ip, "Successfully registered node.");
            n
        }
        Err(e) if e.is_already_exists() => {
            info!(node = %info.name, "Node already registered; taking it over.");
            client.get::<Node>("", &info.name).await?
        }
        Err(e) => return Err(e.into()),
    };
    let mut updated = stored.clone();
    updated.metadata.resource_version = None;
    let ready = stored.spec.as_ref().and_then(|s| s.pod_cidr.as_ref()).is_some();
    updated.status = Some(status(info, ready, stored.status.as_ref()));
    Ok(client.update_status(&updated).await?)
}

/// Posts the node status every 10 s × time-scale, and at once when the network turns ready.
pub async fn heartbeat(
    client: Client,
    cfg: std::sync::Arc<Config>,
    info: NodeInfo,
    mut network_ready: watch::Receiver<bool>,
    gate: netlab_faults::Gate,
    shutdown: CancellationToken,
) {
    let every = cfg.scaled(NODE_STATUS_UPDATE_FREQUENCY).max(Duration::from_millis(10));
    // The network turns ready once; after that its sender is gone, and the status keeps being
    // posted on the clock alone (a closed channel must not end the heartbeat).
    let mut watching = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            r = network_ready.changed(), if watching => if r.is_err() { watching = false },
        }
        // A stopped or paused kubelet reports nothing: the node goes NotReady after the grace
        // period, as with a real kubelet stopped.
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = gate.ready() => {}
        }
        let ready = *network_ready.borrow();
        let node = match client.get::<Node>("", &info.name).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => match register(&client, &info).await {
                Ok(n) => n,
                Err(error) => {
                    warn!(%error, "Re-registering the node failed.");
                    continue;
                }
            },
            Err(error) => {
                warn!(%error, "Error getting the node for a status update.");
                continue;
            }
        };
        let mut updated = node.clone();
        updated.metadata.resource_version = None;
        updated.status = Some(status(&info, ready, node.status.as_ref()));
        if let Err(error) = client.update_status(&updated).await {
            warn!(%error, "Error updating node status, will retry.");
        }
    }
}
