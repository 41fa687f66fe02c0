//! What a Service's EndpointSlices should say, from the Service, its pods and their Nodes, with
//! no I/O: upstream's `podToEndpoint`, `getEndpointPorts`, `ShouldPodBeInEndpoints`,
//! `ShouldSetHostname`, `setEndpointSliceLabels` and `newEndpointSlice`
//! (`pkg/controller/endpointslice/reconciler.go`, `staging/src/k8s.io/endpointslice/utils.go`).
//! Kept apart from the controller so that every rule has a unit test.

use std::{collections::BTreeMap, net::Ipv4Addr, sync::Arc};

use k8s_openapi::{
    api::{
        core::v1::{Node, ObjectReference, Pod, Service, ServicePort},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::{
        apis::meta::v1::{ObjectMeta, OwnerReference},
        util::intstr::IntOrString,
    },
};

/// The label naming a slice's Service.
pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
/// The label naming the controller that manages a slice.
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's value of [`LABEL_MANAGED_BY`].
pub const CONTROLLER_NAME: &str = "endpointslice-controller.k8s.io";
/// Set (to "") on the slices of headless Services.
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// The Node label an endpoint's zone comes from.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// The only address type this lab serves.
pub const ADDRESS_TYPE_IPV4: &str = "IPv4";

/// The ports of one group of endpoints: one slice holds endpoints with identical ports.
pub type PortKey = Vec<(String, String, i32, Option<String>)>;

/// The endpoints a Service should have, grouped by their resolved ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Port set → (the slice's `ports`, its endpoints in pod-name order).
    pub groups: BTreeMap<PortKey, (Vec<EndpointPort>, Vec<Endpoint>)>,
    /// Pods left out because the Node they run on is not known (yet): the Service is synced again
    /// later, as upstream requeues it.
    pub missing_nodes: Vec<String>,
}

// === impl Desired ===

impl Desired {
    /// Every endpoint, in group order.
    pub fn endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.groups.values().flat_map(|(_, e)| e.iter())
    }
}

/// Whether the Service gets slices from this controller: it has a selector and is not
/// ExternalName. Without a selector the user writes the slices.
pub fn is_managed(service: &Service) -> bool {
    let spec = service.spec.as_ref();
    let external = spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName");
    let selector = spec.and_then(|s| s.selector.as_ref()).is_some_and(|s| !s.is_empty());
    selector && !external
}

/// Whether `labels` satisfy the Service's selector. A Service without a selector selects nothing.
pub fn selects(service: &Service, labels: Option<&BTreeMap<String, String>>) -> bool {
    let Some(selector) = service.spec.as_ref().and_then(|s| s.selector.as_ref()).filter(|s| !s.is_empty())
    else {
        return false;
    };
    let Some(labels) = labels else { return false };
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// Headless: no cluster IP (`None`, or not allocated).
pub fn is_headless(service: &Service) -> bool {
    let ip = service.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
    ip.is_empty() || ip == "None"
}

/// The pod's Ready condition.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// upstream `ShouldPodBeInEndpoints(pod, includeTerminating=true)`: it has an IP and has not
/// finished (Failed or Succeeded). Terminating pods stay, flagged.
pub fn should_be_in_endpoints(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else { return false };
    let has_ip = status.pod_ip.as_deref().is_some_and(|ip| !ip.is_empty())
        || status.pod_ips.as_ref().is_some_and(|ips| ips.iter().any(|ip| !ip.ip.is_empty()));
    let finished = matches!(status.phase.as_deref(), Some("Failed" | "Succeeded"));
    has_ip && !finished
}

/// The pod's IPv4 addresses (`status.podIPs`, else `status.podIP`).
fn ipv4_addresses(pod: &Pod) -> Vec<String> {
    let Some(status) = pod.status.as_ref() else { return Vec::new() };
    let mut ips: Vec<&str> =
        status.pod_ips.as_ref().map(|v| v.iter().map(|ip| ip.ip.as_str()).collect()).unwrap_or_default();
    if ips.is_empty()
        && let Some(ip) = status.pod_ip.as_deref()
    {
        ips.push(ip);
    }
    ips.into_iter().filter(|ip| ip.parse::<Ipv4Addr>().is_ok()).map(str::to_string).collect()
}

/// upstream `ShouldSetHostname`: the pod names this Service as its subdomain.
pub fn should_set_hostname(pod: &Pod, service: &Service) -> bool {
    let spec = pod.spec.as_ref();
    let hostname = spec.and_then(|s| s.hostname.as_deref()).unwrap_or("");
    let subdomain = spec.and_then(|s| s.subdomain.as_deref()).unwrap_or("");
    !hostname.is_empty()
        && Some(subdomain) == service.metadata.name.as_deref()
        && pod.metadata.namespace == service.metadata.namespace
}

/// upstream `podutil.FindPort`: a numeric targetPort as is, a named one from the pod's container
/// ports (name and protocol must match); None if the pod has no such port.
pub fn find_port(pod: &Pod, port: &ServicePort) -> Option<i32> {
    match &port.target_port {
        Some(IntOrString::Int(n)) if *n != 0 => Some(*n),
        Some(IntOrString::String(name)) => {
            let protocol = port.protocol.as_deref().unwrap_or("TCP");
            let spec = pod.spec.as_ref()?;
            // Sidecars (restartable init containers) serve ports too.
            let sidecars = spec
                .init_containers
                .iter()
                .flatten()
                .filter(|c| c.restart_policy.as_deref() == Some("Always"));
            spec.containers
                .iter()
                .chain(sidecars)
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| {
                    p.name.as_deref() == Some(name.as_str())
                        && p.protocol.as_deref().unwrap_or("TCP") == protocol
                })
                .map(|p| p.container_port)
        }
        // Unset (the apiserver defaults it to `port`).
        _ => Some(port.port),
    }
}

/// upstream `getEndpointPorts`: one per Service port the pod resolves.
pub fn endpoint_ports(service: &Service, pod: &Pod) -> Vec<EndpointPort> {
    let ports = service.spec.as_ref().and_then(|s| s.ports.as_ref());
    ports
        .into_iter()
        .flatten()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: Some(sp.name.clone().unwrap_or_default()),
                protocol: Some(sp.protocol.clone().unwrap_or_else(|| "TCP".into())),
                port: Some(port),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The grouping key of a port list: ports sorted, so order does not split groups.
pub fn port_key(ports: &[EndpointPort]) -> PortKey {
    let mut key: PortKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.protocol.clone().unwrap_or_else(|| "TCP".into()),
                p.port.unwrap_or(0),
                p.app_protocol.clone(),
            )
        })
        .collect();
    key.sort();
    key
}

/// upstream `podToEndpoint`.
pub fn pod_to_endpoint(pod: &Pod, node: Option<&Node>, service: &Service) -> Endpoint {
    let serving = is_ready(pod);
    let terminating = pod.metadata.deletion_timestamp.is_some();
    let publish = service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    // For compatibility, a terminating pod is never ready unless the Service asks for unready
    // addresses.
    let ready = publish || (serving && !terminating);
    let node_name = pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(LABEL_ZONE))
        .filter(|z| !z.is_empty())
        .cloned();
    let hostname = should_set_hostname(pod, service)
        .then(|| pod.spec.as_ref().and_then(|s| s.hostname.clone()))
        .flatten();
    Endpoint {
        addresses: ipv4_addresses(pod),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..Default::default()
        }),
        node_name,
        zone,
        hostname,
        ..Default::default()
    }
}

/// The endpoints `service` should have: pods in its namespace matching its selector, with an IP,
/// not finished, on a known Node (unless the Service publishes unready addresses).
pub fn desired<'a>(
    service: &Service,
    pods: impl IntoIterator<Item = &'a Arc<Pod>>,
    node: impl Fn(&str) -> Option<Arc<Node>>,
) -> Desired {
    let mut out = Desired::default();
    let publish = service.spec.as_ref().and_then(|s| s.publish_not_ready_addresses).unwrap_or(false);
    for pod in pods {
        if pod.metadata.namespace != service.metadata.namespace
            || !selects(service, pod.metadata.labels.as_ref())
            || !should_be_in_endpoints(pod)
        {
            continue;
        }
        let node_name = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("");
        let node = node(node_name);
        // Lab deviation: a host-network pod on no node is one of netlab's own system processes
        // that runs outside the nodes (the dns process registers `kube-system/coredns-*` this
        // way, so that kube-dns's slice points at it). Upstream never sees such a pod with an IP.
        let outside_nodes =
            node_name.is_empty() && pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false);
        if node.is_none() && !publish && !outside_nodes {
            out.missing_nodes.push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        }
        let endpoint = pod_to_endpoint(pod, node.as_deref(), service);
        if endpoint.addresses.is_empty() {
            continue;
        }
        let ports = endpoint_ports(service, pod);
        out.groups.entry(port_key(&ports)).or_insert_with(|| (ports, Vec::new())).1.push(endpoint);
    }
    out
}

/// upstream `setEndpointSliceLabels`: the Service's labels, minus the two reserved ones, plus the
/// service-name and managed-by labels and, for headless Services, the headless label.
pub fn slice_labels(service: &Service) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = service
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != LABEL_SERVICE_NAME && k.as_str() != LABEL_MANAGED_BY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if is_headless(service) {
        labels.insert(LABEL_HEADLESS.into(), String::new());
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    labels.insert(LABEL_SERVICE_NAME.into(), service.metadata.name.clone().unwrap_or_default());
    labels.insert(LABEL_MANAGED_BY.into(), CONTROLLER_NAME.into());
    labels
}

/// The controller reference every managed slice carries (upstream `metav1.NewControllerRef`).
pub fn owner_reference(service: &Service) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Service".into(),
        name: service.metadata.name.clone().unwrap_or_default(),
        uid: service.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `slice`'s controller is this very Service (by uid: a Service recreated under the same
/// name does not own its predecessor's slices).
pub fn owned_by(slice: &EndpointSlice, service: &Service) -> bool {
    let uid = service.metadata.uid.as_deref().unwrap_or("");
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|r| r.controller == Some(true) && r.kind == "Service" && r.uid == uid)
}

/// upstream `newEndpointSlice`: an empty slice for `ports`, named by the apiserver from
/// `<service>-`.
pub fn new_slice(service: &Service, ports: Vec<EndpointPort>) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", service.metadata.name.as_deref().unwrap_or(""))),
            namespace: service.metadata.namespace.clone(),
            labels: Some(slice_labels(service)),
            owner_references: Some(vec![owner_reference(service)]),
            // The Service's write trace, so kube-proxy's sync joins it (netlab's trace annotation).
            annotations: service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(netlab_telemetry::propagation::TRACEPARENT_ANNOTATION))
                .map(|tp| {
                    [(netlab_telemetry::propagation::TRACEPARENT_ANNOTATION.to_string(), tp.clone())].into()
                }),
            ..Default::default()
        },
        address_type: ADDRESS_TYPE_IPV4.into(),
        endpoints: Vec::new(),
        ports: Some(ports),
    }
}

/// The identity of an endpoint across syncs (upstream `hashEndpoint`): its addresses, hostname
/// and pod. Anything else that differs is an update of the same endpoint.
pub fn endpoint_key(e: &Endpoint) -> (Vec<String>, Option<String>, Option<String>, Option<String>) {
    let target = e.target_ref.as_ref();
    let mut addresses = e.addresses.clone();
    addresses.sort();
    (
        addresses,
        e.hostname.clone(),
        target.and_then(|t| t.namespace.clone()),
        target.and_then(|t| t.name.clone()),
    )
}
