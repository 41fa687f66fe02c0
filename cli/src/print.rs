//! `get`'s tables: kubectl's columns per kind, its AGE wording and its cell formats (`80:30080/TCP`,
//! `CrashLoopBackOff`, `1/1`), ported from kubectl's `printers.go`.
//!
//! Every function here is pure: objects in as Kubernetes JSON plus "now", text out. That keeps the
//! column logic testable without a server, and keeps time out of the tests' way.

use std::fmt::Write as _;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::{
        apps::v1::{Deployment, ReplicaSet, StatefulSet},
        core::v1::{
            ConfigMap, Container, Event, Namespace, Node, Pod, PodTemplateSpec, Service, ServiceAccount,
        },
        discovery::v1::EndpointSlice,
        networking::v1::NetworkPolicy,
    },
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time},
};
use netlab_proto::apiserver::v1::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{
    resource,
    selector::{format_label_selector, format_labels},
    tabwriter,
};

/// How `get` prints tables.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `-o wide`: the extra columns.
    pub wide: bool,
    /// `-A`: a leading NAMESPACE column (namespaced resources only).
    pub all_namespaces: bool,
    /// `--show-labels`: a trailing LABELS column.
    pub show_labels: bool,
    /// `--no-headers`.
    pub no_headers: bool,
    /// Names as `kind/name`, as kubectl prints them when several resource types are listed.
    pub kind_prefix: bool,
}

/// Decodes an object as its k8s-openapi type; the server's JSON always fits, but a partial object
/// prints as defaults rather than failing the whole table.
pub fn typed<T: DeserializeOwned + Default>(v: &Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_default()
}

/// Go's `duration.HumanDuration`, which every AGE column uses.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        return format!("{hours}h{m}m");
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        return format!("{}d{h}h", hours / 24);
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        return format!("{}y{dy}d", hours / 24 / 365);
    }
    format!("{}y", hours / 24 / 365)
}

/// kubectl's `translateTimestampSince`: the age of a timestamp, or `<unknown>` when unset.
pub fn since(t: Option<&Time>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t.0)),
        None => "<unknown>".to_string(),
    }
}

/// `translateMicroTimestampSince`.
pub fn since_micro(t: Option<&MicroTime>, now: Timestamp) -> String {
    match t {
        Some(t) => human_duration(now.duration_since(t.0)),
        None => "<unknown>".to_string(),
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".to_string() } else { s }
}

/// Renders one resource's table (header plus one row per object), aligned like kubectl's.
pub fn table(r: Resource, items: &[Value], opts: &Options, now: Timestamp) -> String {
    let with_ns = opts.all_namespaces && r.namespaced();
    let mut text = String::new();
    if !opts.no_headers {
        let mut headers: Vec<&str> = Vec::new();
        if with_ns {
            headers.push("NAMESPACE");
        }
        headers.extend(columns(r, opts.wide));
        if opts.show_labels {
            headers.push("LABELS");
        }
        text.push_str(&headers.join("\t"));
        text.push('\n');
    }
    for item in items {
        let meta: ObjectMeta = item.get("metadata").map(typed).unwrap_or_default();
        let mut cells = Vec::new();
        if with_ns {
            cells.push(meta.namespace.clone().unwrap_or_default());
        }
        let mut row = row(r, item, opts.wide, now);
        // kubectl qualifies the NAME column, wherever it is (events have none unless wide).
        if opts.kind_prefix
            && let Some(i) = columns(r, opts.wide).iter().position(|c| *c == "NAME")
            && let Some(cell) = row.get_mut(i)
        {
            *cell = resource::slash_name(r, cell);
        }
        cells.extend(row);
        if opts.show_labels {
            cells.push(format_labels(meta.labels.as_ref()));
        }
        // A tab inside a cell would shift every later column.
        let cells: Vec<String> = cells.into_iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    tabwriter::align(&text, tabwriter::TABLE)
}

/// The column headers of a resource's table.
pub fn columns(r: Resource, wide: bool) -> Vec<&'static str> {
    let (normal, extra): (&[&str], &[&str]) = match r {
        Resource::Pods => (
            &["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
            &["IP", "NODE", "NOMINATED NODE", "READINESS GATES"],
        ),
        Resource::Services => {
            (&["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"], &["SELECTOR"])
        }
        Resource::Deployments => {
            (&["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"], &["CONTAINERS", "IMAGES", "SELECTOR"])
        }
        Resource::ReplicaSets => {
            (&["NAME", "DESIRED", "CURRENT", "READY", "AGE"], &["CONTAINERS", "IMAGES", "SELECTOR"])
        }
        Resource::StatefulSets => (&["NAME", "READY", "AGE"], &["CONTAINERS", "IMAGES"]),
        Resource::EndpointSlices => (&["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"], &[]),
        Resource::NetworkPolicies => (&["NAME", "POD-SELECTOR", "AGE"], &[]),
        Resource::Namespaces => (&["NAME", "STATUS", "AGE"], &[]),
        Resource::Nodes => (
            &["NAME", "STATUS", "ROLES", "AGE", "VERSION"],
            &["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"],
        ),
        Resource::ConfigMaps => (&["NAME", "DATA", "AGE"], &[]),
        Resource::ServiceAccounts => (&["NAME", "SECRETS", "AGE"], &[]),
        Resource::Events => (
            &["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
            &[
                "LAST SEEN",
                "TYPE",
                "REASON",
                "OBJECT",
                "SUBOBJECT",
                "SOURCE",
                "MESSAGE",
                "FIRST SEEN",
                "COUNT",
                "NAME",
            ],
        ),
        Resource::Unspecified => (&["NAME"], &[]),
        // Custom resources print their CRD's additionalPrinterColumns plus AGE: Chaos Mesh's
        // NetworkChaos and DNSChaos declare `action` and `duration`, PodChaos declares none.
        Resource::PodChaos => (&["NAME", "AGE"], &[]),
        // The lab's kinds follow Chaos Mesh's; a component fault says which component.
        Resource::ComponentChaos => (&["NAME", "ACTION", "COMPONENT", "DURATION", "AGE"], &[]),
        Resource::NetworkChaos
        | Resource::DnsChaos
        | Resource::RegistryChaos
        | Resource::UpstreamDnsChaos
        | Resource::ExhaustionChaos => (&["NAME", "ACTION", "DURATION", "AGE"], &[]),
    };
    if r == Resource::Events && wide {
        return extra.to_vec();
    }
    let mut cols = normal.to_vec();
    if wide {
        cols.extend_from_slice(extra);
    }
    cols
}

/// One object's cells, in [`columns`] order.
pub fn row(r: Resource, v: &Value, wide: bool, now: Timestamp) -> Vec<String> {
    match r {
        Resource::Pods => pod_row(&typed(v), wide, now),
        Resource::Services => service_row(&typed(v), wide, now),
        Resource::Deployments => deployment_row(&typed(v), wide, now),
        Resource::ReplicaSets => replica_set_row(&typed(v), wide, now),
        Resource::StatefulSets => stateful_set_row(&typed(v), wide, now),
        Resource::EndpointSlices => endpoint_slice_row(&typed(v), now),
        Resource::NetworkPolicies => {
            let np: NetworkPolicy = typed(v);
            let sel = np.spec.as_ref().and_then(|s| s.pod_selector.as_ref());
            vec![name(&np.metadata), format_label_selector(sel), age(&np.metadata, now)]
        }
        Resource::Namespaces => {
            let ns: Namespace = typed(v);
            let phase = ns.status.and_then(|s| s.phase).unwrap_or_default();
            vec![name(&ns.metadata), phase, age(&ns.metadata, now)]
        }
        Resource::Nodes => node_row(&typed(v), wide, now),
        Resource::ConfigMaps => {
            let cm: ConfigMap = typed(v);
            let n = cm.data.map_or(0, |d| d.len()) + cm.binary_data.map_or(0, |d| d.len());
            vec![name(&cm.metadata), n.to_string(), age(&cm.metadata, now)]
        }
        Resource::ServiceAccounts => {
            let sa: ServiceAccount = typed(v);
            let n = sa.secrets.map_or(0, |s| s.len());
            vec![name(&sa.metadata), n.to_string(), age(&sa.metadata, now)]
        }
        Resource::Events => event_row(&typed(v), wide, now),
        Resource::Unspecified => vec![String::new()],
        Resource::NetworkChaos
        | Resource::DnsChaos
        | Resource::PodChaos
        | Resource::ComponentChaos
        | Resource::RegistryChaos
        | Resource::UpstreamDnsChaos
        | Resource::ExhaustionChaos => chaos_row(r, v, now),
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
fn pod_row(pod: &Pod, wide: bool, now: Timestamp) -> Vec<String> {
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
    if wide {
        let ip = status
            .pod_ips
            .as_ref()
            .and_then(|ips| ips.first())
            .map(|ip| ip.ip.clone())
            .or(status.pod_ip.clone());
        let gates = spec.readiness_gates.clone().unwrap_or_default();
        let gates_cell = if gates.is_empty() {
            "<none>".to_string()
        } else {
            let true_conditions = gates
                .iter()
                .filter(|g| {
                    conditions
                        .iter()
                        .find(|c| c.type_ == g.condition_type)
                        .is_some_and(|c| c.status == "True")
                })
                .count();
            format!("{true_conditions}/{}", gates.len())
        };
        cells.push(or_none(ip.unwrap_or_default()));
        cells.push(or_none(spec.node_name.clone().unwrap_or_default()));
        cells.push(or_none(status.nominated_node_name.clone().unwrap_or_default()));
        cells.push(gates_cell);
    }
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
    let mut cells = vec![name(&svc.metadata), svc_type, cluster_ip, external, ports, age(&svc.metadata, now)];
    if wide {
        cells.push(format_labels(spec.selector.as_ref()));
    }
    cells
}

fn template_cells(template: Option<&PodTemplateSpec>) -> (String, String) {
    let containers: Vec<Container> =
        template.and_then(|t| t.spec.as_ref()).map(|s| s.containers.clone()).unwrap_or_default();
    let names = containers.iter().map(|c| c.name.clone()).collect::<Vec<_>>().join(",");
    let images = containers.iter().map(|c| c.image.clone().unwrap_or_default()).collect::<Vec<_>>().join(",");
    (names, images)
}

fn deployment_row(d: &Deployment, wide: bool, now: Timestamp) -> Vec<String> {
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
    if wide {
        let (names, images) = template_cells(Some(&spec.template));
        cells.extend([names, images, format_label_selector(Some(&spec.selector))]);
    }
    cells
}

fn replica_set_row(rs: &ReplicaSet, wide: bool, now: Timestamp) -> Vec<String> {
    let spec = rs.spec.clone().unwrap_or_default();
    let status = rs.status.clone().unwrap_or_default();
    let mut cells = vec![
        name(&rs.metadata),
        spec.replicas.unwrap_or(1).to_string(),
        status.replicas.to_string(),
        status.ready_replicas.unwrap_or(0).to_string(),
        age(&rs.metadata, now),
    ];
    if wide {
        let (names, images) = template_cells(spec.template.as_ref());
        cells.extend([names, images, format_label_selector(Some(&spec.selector))]);
    }
    cells
}

fn stateful_set_row(s: &StatefulSet, wide: bool, now: Timestamp) -> Vec<String> {
    let spec = s.spec.clone().unwrap_or_default();
    let status = s.status.clone().unwrap_or_default();
    let mut cells = vec![
        name(&s.metadata),
        format!("{}/{}", status.ready_replicas.unwrap_or(0), spec.replicas.unwrap_or(1)),
        age(&s.metadata, now),
    ];
    if wide {
        let (names, images) = template_cells(Some(&spec.template));
        cells.extend([names, images]);
    }
    cells
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

fn node_row(node: &Node, wide: bool, now: Timestamp) -> Vec<String> {
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
    if wide {
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
    }
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

fn event_row(e: &Event, wide: bool, now: Timestamp) -> Vec<String> {
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
    if !wide {
        return vec![last, type_, reason, target, message];
    }
    let source = e.source.clone().unwrap_or_default();
    let component =
        source.component.filter(|c| !c.is_empty()).or(e.reporting_component.clone()).unwrap_or_default();
    let host = source.host.filter(|h| !h.is_empty()).or(e.reporting_instance.clone()).unwrap_or_default();
    let source_cell = if host.is_empty() { component } else { format!("{component}, {host}") };
    vec![
        last,
        type_,
        reason,
        target,
        io.field_path.clone().unwrap_or_default(),
        source_cell,
        message,
        first,
        count.to_string(),
        name(&e.metadata),
    ]
}

/// `-o name`: one `kind.group/name` line per object.
pub fn names(r: Resource, items: &[Value]) -> String {
    let mut out = String::new();
    for item in items {
        let n = item.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
        let _ = writeln!(out, "{}", resource::slash_name(r, n));
    }
    out
}

#[cfg(test)]
mod tests;
