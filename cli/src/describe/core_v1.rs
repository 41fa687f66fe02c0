//! Pages for core/v1 kinds: Service, Node, Namespace, ConfigMap, ServiceAccount, and kubectl's
//! generic page for everything else (Events).

use std::collections::BTreeMap;

use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Node, Pod, Service, ServiceAccount, ServicePort},
    discovery::v1::EndpointSlice,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{Clock, Page, age};
use crate::{
    print::{node_roles, typed},
    selector::format_labels,
};

/// `formatEndpointSlices`: the ready `ip:port` endpoints of one Service port, up to three.
pub fn endpoints(slices: &[EndpointSlice], port_name: Option<&str>) -> String {
    if slices.is_empty() {
        return "<none>".to_string();
    }
    const MAX: usize = 3;
    let mut list: Vec<String> = Vec::new();
    let mut more = false;
    let mut count = 0;
    for slice in slices {
        let ready = |e: &k8s_openapi::api::discovery::v1::Endpoint| {
            e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)
        };
        let ports = slice.ports.clone().unwrap_or_default();
        if ports.is_empty() {
            for e in &slice.endpoints {
                if list.len() == MAX {
                    more = true;
                }
                if !ready(e) {
                    continue;
                }
                if !more {
                    list.push(e.addresses.first().cloned().unwrap_or_default());
                }
                count += 1;
            }
        } else {
            for p in &ports {
                let name = p.name.as_deref().unwrap_or("");
                if port_name.is_some_and(|want| want != name) {
                    continue;
                }
                for e in &slice.endpoints {
                    if list.len() == MAX {
                        more = true;
                    }
                    if !ready(e) {
                        continue;
                    }
                    if !more {
                        let addr = e.addresses.first().cloned().unwrap_or_default();
                        let port = p.port.unwrap_or(0);
                        list.push(if addr.contains(':') {
                            format!("[{addr}]:{port}")
                        } else {
                            format!("{addr}:{port}")
                        });
                    }
                    count += 1;
                }
            }
        }
    }
    let ret = list.join(",");
    if more { format!("{ret} + {} more...", count - MAX) } else { ret }
}

fn target_port(p: &ServicePort) -> String {
    match &p.target_port {
        Some(IntOrString::Int(i)) => i.to_string(),
        Some(IntOrString::String(s)) => s.clone(),
        // The apiserver defaults targetPort to port.
        None => p.port.to_string(),
    }
}

/// kubectl's Service page.
pub fn service(obj: &Value, slices: &[Value], events: Option<&[Value]>, clock: &Clock) -> String {
    let svc: Service = typed(obj);
    let slices: Vec<EndpointSlice> = slices.iter().map(typed).collect();
    let spec = svc.spec.clone().unwrap_or_default();
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", svc.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", svc.metadata.namespace.clone().unwrap_or_default()));
    w.labels("Labels", svc.metadata.labels.as_ref());
    w.annotations("Annotations", svc.metadata.annotations.as_ref());
    w.w(0, &format!("Selector:\t{}\n", format_labels(spec.selector.as_ref())));
    w.w(0, &format!("Type:\t{}\n", spec.type_.clone().unwrap_or_default()));
    if let Some(p) = &spec.ip_family_policy {
        w.w(0, &format!("IP Family Policy:\t{p}\n"));
    }
    match spec.ip_families.as_ref().filter(|f| !f.is_empty()) {
        Some(f) => w.w(0, &format!("IP Families:\t{}\n", f.join(","))),
        None => w.w(0, "IP Families:\t<none>\n"),
    }
    w.w(0, &format!("IP:\t{}\n", spec.cluster_ip.clone().unwrap_or_default()));
    match spec.cluster_ips.as_ref().filter(|ips| !ips.is_empty()) {
        Some(ips) => w.w(0, &format!("IPs:\t{}\n", ips.join(","))),
        None => w.w(0, "IPs:\t<none>\n"),
    }
    if let Some(ips) = spec.external_ips.as_ref().filter(|ips| !ips.is_empty()) {
        w.w(0, &format!("External IPs:\t{}\n", ips.join(",")));
    }
    if let Some(ip) = spec.load_balancer_ip.as_ref().filter(|ip| !ip.is_empty()) {
        w.w(0, &format!("Desired LoadBalancer IP:\t{ip}\n"));
    }
    if let Some(name) = spec.external_name.as_ref().filter(|n| !n.is_empty()) {
        w.w(0, &format!("External Name:\t{name}\n"));
    }
    let ingress = svc
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.clone())
        .unwrap_or_default();
    if !ingress.is_empty() {
        let list: Vec<String> = ingress
            .iter()
            .map(|i| match i.ip.as_ref().filter(|ip| !ip.is_empty()) {
                Some(ip) => match &i.ip_mode {
                    Some(mode) => format!("{ip} ({mode})"),
                    None => ip.clone(),
                },
                None => i.hostname.clone().unwrap_or_default(),
            })
            .collect();
        w.w(0, &format!("LoadBalancer Ingress:\t{}\n", list.join(", ")));
    }
    for p in spec.ports.iter().flatten() {
        let proto = p.protocol.clone().unwrap_or_else(|| "TCP".to_string());
        let name = p.name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "<unset>".to_string());
        w.w(0, &format!("Port:\t{name}\t{}/{proto}\n", p.port));
        w.w(0, &format!("TargetPort:\t{}/{proto}\n", target_port(p)));
        if let Some(np) = p.node_port.filter(|np| *np != 0) {
            w.w(0, &format!("NodePort:\t{name}\t{np}/{proto}\n"));
        }
        let own = p.name.clone().unwrap_or_default();
        w.w(0, &format!("Endpoints:\t{}\n", endpoints(&slices, Some(&own))));
    }
    w.w(0, &format!("Session Affinity:\t{}\n", spec.session_affinity.clone().unwrap_or_default()));
    if let Some(p) = spec.external_traffic_policy.as_ref().filter(|p| !p.is_empty()) {
        w.w(0, &format!("External Traffic Policy:\t{p}\n"));
    }
    if let Some(p) = &spec.internal_traffic_policy {
        w.w(0, &format!("Internal Traffic Policy:\t{p}\n"));
    }
    if let Some(port) = spec.health_check_node_port.filter(|p| *p != 0) {
        w.w(0, &format!("HealthCheck NodePort:\t{port}\n"));
    }
    if let Some(r) = spec.load_balancer_source_ranges.as_ref().filter(|r| !r.is_empty()) {
        w.w(0, &format!("LoadBalancer Source Ranges:\t{}\n", r.join(",")));
    }
    if let Some(d) = spec.traffic_distribution.as_ref().filter(|d| !d.is_empty()) {
        w.w(0, &format!("Traffic Distribution:\t{d}\n"));
    }
    w.events(events, clock);
    w.finish()
}

/// A resource quantity (`250m`, `1`, `128Mi`, `1.5G`, `1e3`) in base units.
pub fn quantity(s: &str) -> f64 {
    let s = s.trim();
    let split = s.find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E').unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().unwrap_or(0.0);
    let mult = match suffix {
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024.0 * 1024.0,
        "Gi" => 1024.0 * 1024.0 * 1024.0,
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        _ => 1.0,
    };
    n * mult
}

/// A CPU amount as Kubernetes prints it: `0`, `250m`, `2`.
fn cpu_string(cores: f64) -> String {
    let millis = (cores * 1000.0).round() as i64;
    if millis == 0 {
        "0".to_string()
    } else if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// A byte amount as Kubernetes prints it: `0`, `128Mi`, `1G`, `1500`.
fn bytes_string(bytes: f64) -> String {
    let b = bytes.round() as i64;
    if b == 0 {
        return "0".to_string();
    }
    for (unit, size) in [
        ("Ei", 1i64 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", 1 << 20),
        ("Ki", 1 << 10),
    ] {
        if b % size == 0 {
            return format!("{}{unit}", b / size);
        }
    }
    for (unit, size) in [
        ("E", 1_000_000_000_000_000_000i64),
        ("P", 1_000_000_000_000_000),
        ("T", 1_000_000_000_000),
        ("G", 1_000_000_000),
        ("M", 1_000_000),
        ("k", 1_000),
    ] {
        if b % size == 0 {
            return format!("{}{unit}", b / size);
        }
    }
    b.to_string()
}

/// A pod's total (requests, limits) for one resource: containers summed, each init container
/// taken as a floor, as kubectl's `PodRequestsAndLimits` roughly does.
fn pod_resources(pod: &Pod, resource: &str) -> (f64, f64) {
    let spec = pod.spec.clone().unwrap_or_default();
    let get = |c: &k8s_openapi::api::core::v1::Container, limits: bool| {
        c.resources
            .as_ref()
            .and_then(|r| if limits { r.limits.as_ref() } else { r.requests.as_ref() })
            .and_then(|m| m.get(resource))
            .map_or(0.0, |q| quantity(&q.0))
    };
    let mut req: f64 = spec.containers.iter().map(|c| get(c, false)).sum();
    let mut lim: f64 = spec.containers.iter().map(|c| get(c, true)).sum();
    for c in spec.init_containers.iter().flatten() {
        req = req.max(get(c, false));
        lim = lim.max(get(c, true));
    }
    (req, lim)
}

fn percent(part: f64, whole: f64) -> i64 {
    if whole == 0.0 { 0 } else { (part / whole * 100.0) as i64 }
}

/// kubectl's Node page.
pub fn node(obj: &Value, pods: &[Value], events: Option<&[Value]>, clock: &Clock) -> String {
    let node: Node = typed(obj);
    let spec = node.spec.clone().unwrap_or_default();
    let status = node.status.clone().unwrap_or_default();
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", node.metadata.name.clone().unwrap_or_default()));
    let roles = node_roles(&node);
    w.w(0, &format!("Roles:\t{}\n", if roles.is_empty() { "<none>".to_string() } else { roles.join(",") }));
    w.labels("Labels", node.metadata.labels.as_ref());
    w.annotations("Annotations", node.metadata.annotations.as_ref());
    w.w(0, &format!("CreationTimestamp:\t{}\n", clock.rfc1123z(node.metadata.creation_timestamp.as_ref())));
    let mut taints = spec.taints.clone().unwrap_or_default();
    taints.sort_by(|a, b| format!("{},{}", a.effect, a.key).cmp(&format!("{},{}", b.effect, b.key)));
    w.w(0, "Taints:\t");
    if taints.is_empty() {
        w.w(0, "<none>\n");
    }
    for (i, t) in taints.iter().enumerate() {
        if i != 0 {
            w.w(0, "\t");
        }
        match t.value.as_ref().filter(|v| !v.is_empty()) {
            Some(v) => w.w(0, &format!("{}={v}:{}\n", t.key, t.effect)),
            None => w.w(0, &format!("{}:{}\n", t.key, t.effect)),
        }
    }
    w.w(0, &format!("Unschedulable:\t{}\n", spec.unschedulable.unwrap_or(false)));
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\tLastHeartbeatTime\tLastTransitionTime\tReason\tMessage\n");
        w.w(1, "----\t------\t-----------------\t------------------\t------\t-------\n");
        for c in &conditions {
            w.w(
                1,
                &format!(
                    "{} \t{} \t{} \t{} \t{} \t{}\n",
                    c.type_,
                    c.status,
                    clock.rfc1123z(c.last_heartbeat_time.as_ref()),
                    clock.rfc1123z(c.last_transition_time.as_ref()),
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default()
                ),
            );
        }
    }
    w.w(0, "Addresses:\n");
    for a in status.addresses.iter().flatten() {
        w.w(1, &format!("{}:\t{}\n", a.type_, a.address));
    }
    let resource_list =
        |w: &mut Page,
         title: &str,
         list: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            if let Some(list) = list.filter(|l| !l.is_empty()) {
                w.w(0, &format!("{title}:\n"));
                for (k, v) in list {
                    w.w(0, &format!("  {k}:\t{}\n", v.0));
                }
            }
        };
    resource_list(&mut w, "Capacity", status.capacity.as_ref());
    resource_list(&mut w, "Allocatable", status.allocatable.as_ref());
    let info = status.node_info.clone().unwrap_or_default();
    w.w(0, "System Info:\n");
    w.w(0, &format!("  Machine ID:\t{}\n", info.machine_id));
    w.w(0, &format!("  System UUID:\t{}\n", info.system_uuid));
    w.w(0, &format!("  Boot ID:\t{}\n", info.boot_id));
    w.w(0, &format!("  Kernel Version:\t{}\n", info.kernel_version));
    w.w(0, &format!("  OS Image:\t{}\n", info.os_image));
    w.w(0, &format!("  Operating System:\t{}\n", info.operating_system));
    w.w(0, &format!("  Architecture:\t{}\n", info.architecture));
    w.w(0, &format!("  Container Runtime Version:\t{}\n", info.container_runtime_version));
    w.w(0, &format!("  Kubelet Version:\t{}\n", info.kubelet_version));
    w.w(0, &format!("  Kube-Proxy Version:\t{}\n", info.kube_proxy_version));
    if let Some(cidr) = spec.pod_cidr.as_ref().filter(|c| !c.is_empty()) {
        w.w(0, &format!("PodCIDR:\t{cidr}\n"));
    }
    if let Some(cidrs) = spec.pod_cidrs.as_ref().filter(|c| !c.is_empty()) {
        w.w(0, &format!("PodCIDRs:\t{}\n", cidrs.join(",")));
    }
    if let Some(id) = spec.provider_id.as_ref().filter(|i| !i.is_empty()) {
        w.w(0, &format!("ProviderID:\t{id}\n"));
    }

    // Non-terminated pods and their share of the node.
    let allocatable =
        status.allocatable.clone().filter(|a| !a.is_empty()).or(status.capacity.clone()).unwrap_or_default();
    let alloc = |r: &str| allocatable.get(r).map_or(0.0, |q| quantity(&q.0));
    let pods: Vec<Pod> = pods.iter().map(typed).collect();
    w.w(0, &format!("Non-terminated Pods:\t({} in total)\n", pods.len()));
    w.w(1, "Namespace\tName\t\tCPU Requests\tCPU Limits\tMemory Requests\tMemory Limits\tAge\n");
    w.w(1, "---------\t----\t\t------------\t----------\t---------------\t-------------\t---\n");
    let (mut totals_cpu, mut totals_mem, mut totals_eph) = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.0));
    for p in &pods {
        let cpu = pod_resources(p, "cpu");
        let mem = pod_resources(p, "memory");
        let eph = pod_resources(p, "ephemeral-storage");
        totals_cpu = (totals_cpu.0 + cpu.0, totals_cpu.1 + cpu.1);
        totals_mem = (totals_mem.0 + mem.0, totals_mem.1 + mem.1);
        totals_eph = (totals_eph.0 + eph.0, totals_eph.1 + eph.1);
        w.w(
            1,
            &format!(
                "{}\t{}\t\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{} ({}%)\t{}\n",
                p.metadata.namespace.clone().unwrap_or_default(),
                p.metadata.name.clone().unwrap_or_default(),
                cpu_string(cpu.0),
                percent(cpu.0, alloc("cpu")),
                cpu_string(cpu.1),
                percent(cpu.1, alloc("cpu")),
                bytes_string(mem.0),
                percent(mem.0, alloc("memory")),
                bytes_string(mem.1),
                percent(mem.1, alloc("memory")),
                age(p.metadata.creation_timestamp.as_ref(), clock)
            ),
        );
    }
    w.w(0, "Allocated resources:\n  (Total limits may be over 100 percent, i.e., overcommitted.)\n");
    w.w(1, "Resource\tRequests\tLimits\n");
    w.w(1, "--------\t--------\t------\n");
    w.w(
        1,
        &format!(
            "cpu\t{} ({}%)\t{} ({}%)\n",
            cpu_string(totals_cpu.0),
            percent(totals_cpu.0, alloc("cpu")),
            cpu_string(totals_cpu.1),
            percent(totals_cpu.1, alloc("cpu"))
        ),
    );
    w.w(
        1,
        &format!(
            "memory\t{} ({}%)\t{} ({}%)\n",
            bytes_string(totals_mem.0),
            percent(totals_mem.0, alloc("memory")),
            bytes_string(totals_mem.1),
            percent(totals_mem.1, alloc("memory"))
        ),
    );
    w.w(
        1,
        &format!(
            "ephemeral-storage\t{} ({}%)\t{} ({}%)\n",
            bytes_string(totals_eph.0),
            percent(totals_eph.0, alloc("ephemeral-storage")),
            bytes_string(totals_eph.1),
            percent(totals_eph.1, alloc("ephemeral-storage"))
        ),
    );
    w.events(events, clock);
    w.finish()
}

/// kubectl's Namespace page (netlab has no quotas or limit ranges, so both read as none).
pub fn namespace(obj: &Value, clock: &Clock) -> String {
    let ns: Namespace = typed(obj);
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", ns.metadata.name.clone().unwrap_or_default()));
    w.labels("Labels", ns.metadata.labels.as_ref());
    w.annotations("Annotations", ns.metadata.annotations.as_ref());
    let status = ns.status.clone().unwrap_or_default();
    w.w(0, &format!("Status:\t{}\n", status.phase.clone().unwrap_or_default()));
    let conditions = status.conditions.clone().unwrap_or_default();
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n");
        w.w(1, "Type\tStatus\tLastTransitionTime\tReason\tMessage\n");
        w.w(1, "----\t------\t------------------\t------\t-------\n");
        for c in conditions {
            w.w(
                1,
                &format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    c.type_,
                    c.status,
                    clock.rfc1123z(c.last_transition_time.as_ref()),
                    c.reason.unwrap_or_default(),
                    c.message.unwrap_or_default()
                ),
            );
        }
    }
    w.w(0, "\nNo resource quota.\n");
    w.w(0, "\nNo LimitRange resource.\n");
    w.finish()
}

/// kubectl's ConfigMap page (keys sorted; kubectl prints them in Go map order).
pub fn config_map(obj: &Value, events: Option<&[Value]>, clock: &Clock) -> String {
    let cm: ConfigMap = typed(obj);
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", cm.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", cm.metadata.namespace.clone().unwrap_or_default()));
    w.labels("Labels", cm.metadata.labels.as_ref());
    w.annotations("Annotations", cm.metadata.annotations.as_ref());
    w.w(0, "\nData\n====\n");
    for (k, v) in cm.data.iter().flatten() {
        w.w(0, &format!("{k}:\n----\n"));
        w.w(0, &format!("{v}\n"));
        w.w(0, "\n");
    }
    w.w(0, "\nBinaryData\n====\n");
    for (k, v) in cm.binary_data.iter().flatten() {
        w.w(0, &format!("{k}: {} bytes\n", v.0.len()));
    }
    w.w(0, "\n");
    w.events(events, clock);
    w.finish()
}

/// kubectl's ServiceAccount page.
pub fn service_account(obj: &Value, events: Option<&[Value]>, clock: &Clock) -> String {
    let sa: ServiceAccount = typed(obj);
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", sa.metadata.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", sa.metadata.namespace.clone().unwrap_or_default()));
    w.labels("Labels", sa.metadata.labels.as_ref());
    w.annotations("Annotations", sa.metadata.annotations.as_ref());
    let pull: Vec<String> = sa.image_pull_secrets.iter().flatten().map(|s| s.name.clone()).collect();
    let mount: Vec<String> =
        sa.secrets.iter().flatten().map(|s| s.name.clone().unwrap_or_default()).collect();
    let sections =
        [("Image pull secrets:", pull), ("Mountable secrets: ", mount), ("Tokens:            ", Vec::new())];
    for (header, names) in sections {
        if names.is_empty() {
            w.w(0, &format!("{header}\t<none>\n"));
            continue;
        }
        for (i, name) in names.iter().enumerate() {
            let prefix = if i == 0 { header } else { "                   " };
            w.w(0, &format!("{prefix}\t{name}\n"));
        }
    }
    w.events(events, clock);
    w.finish()
}

/// `smartLabelFor`: `involvedObject` → `Involved Object`, `apiVersion` → `API Version`.
fn smart_label(field: &str) -> String {
    if field.chars().any(|c| !c.is_alphabetic() && c != '-') {
        return field.to_string();
    }
    let mut parts: Vec<String> = Vec::new();
    for c in field.chars() {
        match parts.last_mut() {
            Some(last) if !(c.is_uppercase() && last.chars().last().is_some_and(char::is_lowercase)) => {
                last.push(c)
            }
            _ => parts.push(c.to_string()),
        }
    }
    parts
        .into_iter()
        .map(|p| {
            let upper = p.to_uppercase();
            if ["API", "URL", "UID", "OSB", "GUID"].contains(&upper.as_str()) {
                upper
            } else {
                let mut chars = p.chars();
                chars.next().map(|f| f.to_uppercase().chain(chars).collect()).unwrap_or_default()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn unstructured(w: &mut Page, level: usize, content: &serde_json::Map<String, Value>, prefix: &str) {
    const SKIP: [&str; 5] = [
        ".metadata.managedFields",
        ".metadata.name",
        ".metadata.namespace",
        ".metadata.labels",
        ".metadata.annotations",
    ];
    let mut fields: Vec<&String> = content.keys().collect();
    fields.sort();
    for field in fields {
        let path = format!("{prefix}.{field}");
        if SKIP.contains(&path.as_str()) {
            continue;
        }
        match &content[field] {
            Value::Object(m) => {
                w.w(level, &format!("{}:\n", smart_label(field)));
                unstructured(w, level + 1, m, &path);
            }
            Value::Array(items) => {
                w.w(level, &format!("{}:\n", smart_label(field)));
                for item in items {
                    match item {
                        Value::Object(m) => unstructured(w, level + 1, m, &path),
                        Value::String(s) => w.w(level + 1, &format!("{s}\n")),
                        other => w.w(level + 1, &format!("{other}\n")),
                    }
                }
            }
            Value::String(s) => w.w(level, &format!("{}:\t{s}\n", smart_label(field))),
            Value::Null => w.w(level, &format!("{}:\t<nil>\n", smart_label(field))),
            other => w.w(level, &format!("{}:\t{other}\n", smart_label(field))),
        }
    }
}

/// kubectl's generic page, used for kinds without a dedicated describer (Events).
pub fn generic(obj: &Value, events: Option<&[Value]>, clock: &Clock) -> String {
    let mut w = Page::default();
    let meta = obj.get("metadata");
    let field = |f: &str| meta.and_then(|m| m.get(f)).and_then(Value::as_str).unwrap_or("").to_string();
    w.w(0, &format!("Name:\t{}\n", field("name")));
    w.w(0, &format!("Namespace:\t{}\n", field("namespace")));
    let map = |f: &str| -> Option<BTreeMap<String, String>> {
        meta.and_then(|m| m.get(f)).and_then(|v| serde_json::from_value(v.clone()).ok())
    };
    w.labels("Labels", map("labels").as_ref());
    w.annotations("Annotations", map("annotations").as_ref());
    if let Some(content) = obj.as_object() {
        unstructured(&mut w, 0, content, "");
    }
    w.events(events, clock);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(quantity("250m"), 0.25);
        assert_eq!(quantity("2"), 2.0);
        assert_eq!(quantity("128Mi"), 134_217_728.0);
        assert_eq!(quantity("1G"), 1e9);
        assert_eq!(cpu_string(0.25), "250m");
        assert_eq!(cpu_string(2.0), "2");
        assert_eq!(bytes_string(134_217_728.0), "128Mi");
        assert_eq!(bytes_string(0.0), "0");
    }

    #[test]
    fn smart_labels() {
        assert_eq!(smart_label("involvedObject"), "Involved Object");
        assert_eq!(smart_label("apiVersion"), "API Version");
        assert_eq!(smart_label("uid"), "UID");
        assert_eq!(smart_label("count"), "Count");
    }
}
