//! One object's cells per resource, in [`crate::columns`] order: upstream's `print<Kind>`
//! functions, with their cell formats (`80:30080/TCP`, `CrashLoopBackOff`, `1/1`,
//! `10.244.1.7,10.244.2.9 + 1 more...`).

use std::fmt;

use jiff::Timestamp;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        core::v1::{
            ConfigMap, Container, Event, Namespace, Node, Pod, PodTemplateSpec, Service, ServiceAccount,
        },
        discovery::v1::EndpointSlice,
        networking::v1::NetworkPolicy,
    },
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use netlab_proto::apiserver::v1::Resource;
use serde::Serialize;
use serde_json::Value;

use crate::{
    Generate,
    duration::{human_duration, since, since_micro},
    labels::{format_label_selector, format_labels},
    typed,
};

/// One cell of a table row: JSON text or a number, as upstream's cells are Go strings or int64s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Cell {
    /// A string cell.
    Text(String),
    /// An integer cell (columns of type `integer`, and counts).
    Int(i64),
}

impl fmt::Display for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cell::Text(s) => f.write_str(s),
            Cell::Int(n) => write!(f, "{n}"),
        }
    }
}

impl From<String> for Cell {
    fn from(s: String) -> Self {
        Cell::Text(s)
    }
}

impl From<&str> for Cell {
    fn from(s: &str) -> Self {
        Cell::Text(s.to_string())
    }
}

impl PartialEq<&str> for Cell {
    fn eq(&self, other: &&str) -> bool {
        matches!(self, Cell::Text(s) if s == other)
    }
}

fn text(cells: Vec<String>) -> Vec<Cell> {
    cells.into_iter().map(Cell::Text).collect()
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// One object's cells, one per column of [`crate::columns`] (priority-1 columns included).
pub fn row(r: Resource, v: &Value, opts: Generate, now: Timestamp) -> Vec<Cell> {
    match r {
        Resource::Pods => text(pod_row(&typed(v), now)),
        Resource::Services => text(service_row(&typed(v), opts.wide, now)),
        Resource::Deployments => text(deployment_row(&typed(v), now)),
        Resource::ReplicaSets => replica_set_row(&typed(v), now),
        Resource::StatefulSets => text(stateful_set_row(&typed(v), now)),
        Resource::DaemonSets => daemon_set_row(&typed(v), now),
        Resource::EndpointSlices => text(endpoint_slice_row(&typed(v), now)),
        Resource::NetworkPolicies => {
            let np: NetworkPolicy = typed(v);
            let sel = np.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
            text(vec![name(&np.metadata), format_label_selector(sel), age(&np.metadata, now)])
        }
        Resource::Namespaces => {
            let ns: Namespace = typed(v);
            let phase = ns.status.and_then(|s| s.phase).unwrap_or_default();
            text(vec![name(&ns.metadata), phase, age(&ns.metadata, now)])
        }
        Resource::Nodes => text(node_row(&typed(v), now)),
        Resource::ConfigMaps => {
            let cm: ConfigMap = typed(v);
            let n = cm.data.map_or(0, |d| d.len()) + cm.binary_data.map_or(0, |d| d.len());
            vec![name(&cm.metadata).into(), Cell::Int(n as i64), age(&cm.metadata, now).into()]
        }
        Resource::ServiceAccounts => {
            let sa: ServiceAccount = typed(v);
            let n = sa.secrets.map_or(0, |s| s.len());
            vec![name(&sa.metadata).into(), Cell::Int(n as i64), age(&sa.metadata, now).into()]
        }
        Resource::Events => event_row(&typed(v), now),
        Resource::Unspecified => {
            vec![v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").into()]
        }
        Resource::NetworkChaos
        | Resource::DnsChaos
        | Resource::PodChaos
        | Resource::ComponentChaos
        | Resource::RegistryChaos
        | Resource::UpstreamDnsChaos
        | Resource::ExhaustionChaos => text(chaos_row(r, v, now)),
    }
}

/// A fault's row: its printer columns read as kubectl reads a CRD's JSONPath columns, where a
/// missing field is an empty cell.
fn chaos_row(r: Resource, v: &Value, now: Timestamp) -> Vec<String> {
    let meta: ObjectMeta = v.get("metadata").map(typed).unwrap_or_default();
    let field = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
    match r {
        Resource::PodChaos => vec![name(&meta), age(&meta, now)],
        Resource::ComponentChaos => vec![
            name(&meta),
            field("/spec/action"),
            field("/spec/component"),
            field("/spec/duration"),
            age(&meta, now),
        ],
        _ => vec![name(&meta), field("/spec/action"), field("/spec/duration"), age(&meta, now)],
    }
}

fn name(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

fn age(meta: &ObjectMeta, now: Timestamp) -> String {
    since(meta.creation_timestamp.as_ref(), now)
}

/// kubectl's `printPod`, including its STATUS rules: init-container progress, container waiting
/// and terminated reasons (last container first), `Completed` with running siblings, and
/// `Terminating` while a deletion is pending.
fn pod_row(pod: &Pod, now: Timestamp) -> Vec<String> {
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let mut restarts = 0;
    let mut restartable_init_restarts = 0;
    let mut total = spec.containers.len();
    let mut ready = 0;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;

    let phase = status.phase.clone().unwrap_or_default();
    let mut reason = phase.clone();
    if let Some(r) = status.reason.clone().filter(|r| !r.is_empty()) {
        reason = r;
    }
    let conditions = status.conditions.clone().unwrap_or_default();
    if conditions.iter().any(|c| c.type_ == "PodScheduled" && c.reason.as_deref() == Some("SchedulingGated"))
    {
        reason = "SchedulingGated".to_string();
    }

    let init_containers = spec.init_containers.clone().unwrap_or_default();
    let restartable = |name: &str| {
        init_containers.iter().any(|c| c.name == name && c.restart_policy.as_deref() == Some("Always"))
    };
    total += init_containers.iter().filter(|c| c.restart_policy.as_deref() == Some("Always")).count();

    let later = |a: Option<Timestamp>, b: Option<&Time>| match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b.0)),
        (None, Some(b)) => Some(b.0),
        (a, None) => a,
    };

    let mut initializing = false;
    for (i, c) in status.init_container_statuses.iter().flatten().enumerate() {
        restarts += c.restart_count;
        let last_term = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
        last_restart = later(last_restart, last_term.and_then(|t| t.finished_at.as_ref()));
        if restartable(&c.name) {
            restartable_init_restarts += c.restart_count;
            last_restartable_init_restart =
                later(last_restartable_init_restart, last_term.and_then(|t| t.finished_at.as_ref()));
        }
        let state = c.state.clone().unwrap_or_default();
        let terminated = state.terminated.as_ref();
        if terminated.is_some_and(|t| t.exit_code == 0) {
            continue;
        }
        if restartable(&c.name) && c.started == Some(true) {
            if c.ready {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                Some(r) => format!("Init:{r}"),
                None if t.signal.unwrap_or(0) != 0 => {
                    format!("Init:Signal:{}", t.signal.unwrap_or(0))
                }
                None => format!("Init:ExitCode:{}", t.exit_code),
            };
        } else if let Some(r) = state
            .waiting
            .as_ref()
            .and_then(|w| w.reason.as_deref())
            .filter(|r| !r.is_empty() && *r != "PodInitializing")
        {
            reason = format!("Init:{r}");
        } else {
            reason = format!("Init:{i}/{}", init_containers.len());
        }
        initializing = true;
        break;
    }

    let initialized = conditions.iter().any(|c| c.type_ == "Initialized" && c.status == "True");
    if !initializing || initialized {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for c in status.container_statuses.iter().flatten().rev() {
            restarts += c.restart_count;
            let last_term = c.last_state.as_ref().and_then(|s| s.terminated.as_ref());
            last_restart = later(last_restart, last_term.and_then(|t| t.finished_at.as_ref()));
            let state = c.state.clone().unwrap_or_default();
            let waiting_reason =
                state.waiting.as_ref().and_then(|w| w.reason.clone()).filter(|r| !r.is_empty());
            if let Some(r) = waiting_reason {
                reason = r;
            } else if let Some(t) = &state.terminated {
                reason = match t.reason.as_deref().filter(|r| !r.is_empty()) {
                    Some(r) => r.to_string(),
                    None if t.signal.unwrap_or(0) != 0 => {
                        format!("Signal:{}", t.signal.unwrap_or(0))
                    }
                    None => format!("ExitCode:{}", t.exit_code),
                };
            } else if c.ready && state.running.is_some() {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            let pod_ready = conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True");
            reason = if pod_ready { "Running" } else { "NotReady" }.to_string();
        }
    }

    let deleting = pod.metadata.deletion_timestamp.is_some();
    if deleting && status.reason.as_deref() == Some("NodeLost") {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }

    let mut restarts_cell = restarts.to_string();
    if restarts != 0
        && let Some(t) = last_restart
    {
        restarts_cell = format!("{restarts} ({} ago)", human_duration(now.duration_since(t)));
    }

    let mut cells =
        vec![name(&pod.metadata), format!("{ready}/{total}"), reason, restarts_cell, age(&pod.metadata, now)];
    let ip =
        status.pod_ips.as_ref().and_then(|ips| ips.first()).map(|ip| ip.ip.clone()).or(status.pod_ip.clone());
    let gates = spec.readiness_gates.clone().unwrap_or_default();
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_conditions = gates
            .iter()
            .filter(|g| {
                conditions.iter().find(|c| c.type_ == g.condition_type).is_some_and(|c| c.status == "True")
            })
            .count();
        format!("{true_conditions}/{}", gates.len())
    };
    cells.push(or_none(ip.unwrap_or_default()));
    cells.push(or_none(spec.node_name.clone().unwrap_or_default()));
    cells.push(or_none(status.nominated_node_name.clone().unwrap_or_default()));
    cells.push(gates_cell);
    cells
}

/// `makePortString`: `80/TCP`, `80:30080/TCP`, comma-joined.
pub fn service_ports(svc: &Service) -> String {
    svc.spec
        .iter()
        .flat_map(|s| s.ports.iter().flatten())
        .map(|p| {
            let proto = p.protocol.as_deref().unwrap_or("TCP");
            match p.node_port.filter(|n| *n > 0) {
                Some(np) => format!("{}:{np}/{proto}", p.port),
                None => format!("{}/{proto}", p.port),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `loadBalancerStatusStringer`: ingress IPs or hostnames, clipped to 16 bytes unless wide.
fn load_balancer_ips(svc: &Service, wide: bool) -> String {
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    let mut parts = Vec::new();
    for i in ingress {
        if let Some(ip) = i.ip.filter(|ip| !ip.is_empty()) {
            parts.push(ip);
        } else if let Some(h) = i.hostname.filter(|h| !h.is_empty()) {
            parts.push(h);
        }
    }
    let r = parts.join(",");
    if !wide && r.len() > 16 { format!("{}...", &r[..13]) } else { r }
}

fn service_row(svc: &Service, wide: bool, now: Timestamp) -> Vec<String> {
    let spec = svc.spec.clone().unwrap_or_default();
    let svc_type = spec.type_.clone().unwrap_or_default();
    let cluster_ip = spec
        .cluster_ips
        .as_ref()
        .and_then(|ips| ips.first().cloned())
        .or(spec.cluster_ip.clone())
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| "<none>".to_string());
    let external_ips = spec.external_ips.clone().unwrap_or_default();
    let external = match svc_type.as_str() {
        "ClusterIP" | "NodePort" => or_none(external_ips.join(",")),
        "LoadBalancer" => {
            let lb = load_balancer_ips(svc, wide);
            let mut all: Vec<String> = lb.split(',').filter(|s| !s.is_empty()).map(String::from).collect();
            all.extend(external_ips);
            if all.is_empty() { "<pending>".to_string() } else { all.join(",") }
        }
        "ExternalName" => spec.external_name.clone().unwrap_or_default(),
        _ => "<unknown>".to_string(),
    };
    let ports = or_none(service_ports(svc));
    vec![
        name(&svc.metadata),
        svc_type,
        cluster_ip,
        external,
        ports,
        age(&svc.metadata, now),
        format_labels(spec.selector.as_ref()),
    ]
}

fn template_cells(template: Option<&PodTemplateSpec>) -> (String, String) {
    let containers: Vec<Container> =
        template.and_then(|t| t.spec.as_ref()).map(|s| s.containers.clone()).unwrap_or_default();
    let names = containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(",");
    let images = containers.iter().map(|c| c.image.clone().unwrap_or_default()).collect::<Vec<_>>().join(",");
    (names, images)
}

fn deployment_row(d: &Deployment, now: Timestamp) -> Vec<String> {
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let mut cells = vec![
        name(&d.metadata),
        format!("{}/{desired}", status.ready_replicas.unwrap_or(0)),
        status.updated_replicas.unwrap_or(0).to_string(),
        status.available_replicas.unwrap_or(0).to_string(),
        age(&d.metadata, now),
    ];
    let (names, images) = template_cells(Some(&spec.template));
    cells.extend([names, images, format_label_selector(Some(&spec.selector))]);
    cells
}

fn replica_set_row(rs: &ReplicaSet, now: Timestamp) -> Vec<Cell> {
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    let (names, images) = template_cells(spec.template.as_ref());
    vec![
        name(&rs.metadata).into(),
        Cell::Int(spec.replicas.unwrap_or(1).into()),
        Cell::Int(status.replicas.into()),
        Cell::Int(status.ready_replicas.unwrap_or(0).into()),
        age(&rs.metadata, now).into(),
        names.into(),
        images.into(),
        format_label_selector(Some(&spec.selector)).into(),
    ]
}

fn stateful_set_row(s: &StatefulSet, now: Timestamp) -> Vec<String> {
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    let mut cells = vec![
        name(&s.metadata),
        format!("{}/{}", status.ready_replicas.unwrap_or(0), spec.replicas.unwrap_or(1)),
        age(&s.metadata, now),
    ];
    let (names, images) = template_cells(Some(&spec.template));
    cells.extend([names, images]);
    cells
}

/// `printDaemonSet`: the status counts as integers, the template's nodeSelector as labels.
fn daemon_set_row(d: &DaemonSet, now: Timestamp) -> Vec<Cell> {
    let spec = d.spec.clone().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let node_selector = spec.template.spec.as_ref().and_then(|s| s.node_selector.as_ref());
    let (names, images) = template_cells(Some(&spec.template));
    vec![
        name(&d.metadata).into(),
        Cell::Int(status.desired_number_scheduled.into()),
        Cell::Int(status.current_number_scheduled.into()),
        Cell::Int(status.number_ready.into()),
        Cell::Int(status.updated_number_scheduled.unwrap_or(0).into()),
        Cell::Int(status.number_available.unwrap_or(0).into()),
        format_labels(node_selector).into(),
        age(&d.metadata, now).into(),
        names.into(),
        images.into(),
        format_label_selector(Some(&spec.selector)).into(),
    ]
}

/// `listWithMoreString`: up to three entries, then `+ N more...`; `<unset>` when empty.
fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() { "<unset>".to_string() } else { ret }
}

fn endpoint_slice_row(s: &EndpointSlice, now: Timestamp) -> Vec<String> {
    const MAX: usize = 3;
    let mut ports = Vec::new();
    let mut more = false;
    let mut count = 0;
    for p in s.ports.iter().flatten() {
        if ports.len() < MAX {
            ports.push(match (p.port, &p.name) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.clone(),
                (None, None) => "*".to_string(),
            });
        } else {
            more = true;
        }
        count += 1;
    }
    let ports_cell = list_with_more(&ports, more, count, MAX);

    let mut addrs = Vec::new();
    let mut more = false;
    let mut count = 0;
    for e in &s.endpoints {
        for a in &e.addresses {
            if addrs.len() < MAX {
                addrs.push(a.clone());
            } else {
                more = true;
            }
            count += 1;
        }
    }
    vec![
        name(&s.metadata),
        s.address_type.clone(),
        ports_cell,
        list_with_more(&addrs, more, count, MAX),
        age(&s.metadata, now),
    ]
}

/// kubectl's node roles: `node-role.kubernetes.io/<role>` labels and `kubernetes.io/role`.
pub fn node_roles(node: &Node) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for (k, v) in node.metadata.labels.iter().flatten() {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.push(role.to_string());
            }
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.push(v.clone());
        }
    }
    roles.sort();
    roles.dedup();
    roles
}

fn node_row(node: &Node, now: Timestamp) -> Vec<String> {
    let status = node.status.clone().unwrap_or_default();
    let mut states = Vec::new();
    if let Some(c) = status.conditions.iter().flatten().find(|c| c.type_ == "Ready") {
        states.push(if c.status == "True" { "Ready".to_string() } else { "NotReady".to_string() });
    }
    if states.is_empty() {
        states.push("Unknown".to_string());
    }
    if node.spec.as_ref().and_then(|s| s.unschedulable) == Some(true) {
        states.push("SchedulingDisabled".to_string());
    }
    let info = status.node_info.clone().unwrap_or_default();
    let mut cells = vec![
        name(&node.metadata),
        states.join(","),
        or_none(node_roles(node).join(",")),
        age(&node.metadata, now),
        info.kubelet_version.clone(),
    ];
    let address = |t: &str| {
        status
            .addresses
            .iter()
            .flatten()
            .find(|a| a.type_ == t)
            .map(|a| a.address.clone())
            .unwrap_or_else(|| "<none>".to_string())
    };
    let unknown = |s: &str| {
        if s.is_empty() { "<unknown>".to_string() } else { s.to_string() }
    };
    cells.extend([
        address("InternalIP"),
        address("ExternalIP"),
        unknown(&info.os_image),
        unknown(&info.kernel_version),
        unknown(&info.container_runtime_version),
    ]);
    cells
}

/// The timestamps an event table shows: (LAST SEEN, FIRST SEEN, COUNT), per kubectl's `printEvent`.
pub fn event_times(e: &Event, now: Timestamp) -> (String, String, i32) {
    let first = match &e.first_timestamp {
        Some(t) => since(Some(t), now),
        None => since_micro(e.event_time.as_ref(), now),
    };
    let mut last = match &e.last_timestamp {
        Some(t) => since(Some(t), now),
        None => first.clone(),
    };
    let mut count = e.count.unwrap_or(0);
    if let Some(series) = &e.series {
        last = since_micro(series.last_observed_time.as_ref(), now);
        count = series.count.unwrap_or(0);
    } else if count == 0 {
        count = 1;
    }
    (last, first, count)
}

fn event_row(e: &Event, now: Timestamp) -> Vec<Cell> {
    let (last, first, count) = event_times(e, now);
    let io = &e.involved_object;
    let kind = io.kind.clone().unwrap_or_default().to_lowercase();
    let target = match io.name.as_deref().filter(|n| !n.is_empty()) {
        Some(n) => format!("{kind}/{n}"),
        None => kind,
    };
    let message = e.message.clone().unwrap_or_default().trim().to_string();
    let type_ = e.type_.clone().unwrap_or_default();
    let reason = e.reason.clone().unwrap_or_default();
    let source = e.source.clone().unwrap_or_default();
    let component =
        source.component.filter(|c| !c.is_empty()).or(e.reporting_component.clone()).unwrap_or_default();
    let host = source.host.filter(|h| !h.is_empty()).or(e.reporting_instance.clone()).unwrap_or_default();
    let source_cell = if host.is_empty() { component } else { format!("{component}, {host}") };
    vec![
        last.into(),
        type_.into(),
        reason.into(),
        target.into(),
        io.field_path.clone().unwrap_or_default().into(),
        source_cell.into(),
        message.into(),
        first.into(),
        Cell::Int(count.into()),
        name(&e.metadata).into(),
    ]
}
