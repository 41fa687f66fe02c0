//! The Pod page, and the container, volume and pod-template sections that Deployments,
//! ReplicaSets and StatefulSets reuse.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Container, ContainerState, ContainerStatus, Pod, PodSpec, PodTemplateSpec, Probe, Toleration, Volume,
    },
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::Value;

use super::{Clock, Page, controller, lasts};
use crate::print::typed;

fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => i.to_string(),
        IntOrString::String(s) => s.clone(),
    }
}

/// kubectl's `DescribeProbe`, with the apiserver's defaults for unset thresholds.
pub fn probe(p: &Probe) -> String {
    let attrs = format!(
        "delay={}s timeout={}s period={}s #success={} #failure={}",
        p.initial_delay_seconds.unwrap_or(0),
        p.timeout_seconds.unwrap_or(1),
        p.period_seconds.unwrap_or(10),
        p.success_threshold.unwrap_or(1),
        p.failure_threshold.unwrap_or(3)
    );
    if let Some(e) = &p.exec {
        return format!("exec [{}] {attrs}", e.command.clone().unwrap_or_default().join(" "));
    }
    if let Some(h) = &p.http_get {
        let scheme = h.scheme.clone().unwrap_or_else(|| "HTTP".to_string()).to_lowercase();
        let host = h.host.clone().unwrap_or_default();
        let port = int_or_string(&h.port);
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        return format!("http-get {scheme}://{host}:{port}{} {attrs}", h.path.clone().unwrap_or_default());
    }
    if let Some(t) = &p.tcp_socket {
        return format!(
            "tcp-socket {}:{} {attrs}",
            t.host.clone().unwrap_or_default(),
            int_or_string(&t.port)
        );
    }
    if let Some(g) = &p.grpc {
        return format!("grpc <pod>:{} {} {attrs}", g.port, g.service.clone().unwrap_or_default());
    }
    format!("unknown {attrs}")
}

fn state(w: &mut Page, title: &str, state: &ContainerState, clock: &Clock) {
    if let Some(r) = &state.running {
        w.w(2, &format!("{title}:\tRunning\n"));
        w.w(3, &format!("Started:\t{}\n", clock.rfc1123z(r.started_at.as_ref())));
    } else if let Some(wt) = &state.waiting {
        w.w(2, &format!("{title}:\tWaiting\n"));
        if let Some(reason) = wt.reason.as_ref().filter(|r| !r.is_empty()) {
            w.w(3, &format!("Reason:\t{reason}\n"));
        }
    } else if let Some(t) = &state.terminated {
        w.w(2, &format!("{title}:\tTerminated\n"));
        if let Some(reason) = t.reason.as_ref().filter(|r| !r.is_empty()) {
            w.w(3, &format!("Reason:\t{reason}\n"));
        }
        if let Some(message) = t.message.as_ref().filter(|m| !m.is_empty()) {
            w.w(3, &format!("Message:\t{message}\n"));
        }
        w.w(3, &format!("Exit Code:\t{}\n", t.exit_code));
        if let Some(signal) = t.signal.filter(|s| *s > 0) {
            w.w(3, &format!("Signal:\t{signal}\n"));
        }
        w.w(3, &format!("Started:\t{}\n", clock.rfc1123z(t.started_at.as_ref())));
        w.w(3, &format!("Finished:\t{}\n", clock.rfc1123z(t.finished_at.as_ref())));
    } else {
        w.w(2, &format!("{title}:\tWaiting\n"));
    }
}

/// kubectl's `describeContainers`: one block per container, with its status when known.
pub fn containers(
    w: &mut Page,
    label: &str,
    containers: &[Container],
    statuses: &[ContainerStatus],
    pod: Option<&Value>,
    space: &str,
    clock: &Clock,
) {
    let none = if containers.is_empty() { " <none>" } else { "" };
    w.w(0, &format!("{space}{label}:{none}\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for c in containers {
        let status = statuses.iter().find(|s| s.name == c.name);
        w.w(1, &format!("{name_indent}{}:\n", c.name));
        if let Some(s) = status {
            w.w(2, &format!("Container ID:\t{}\n", s.container_id.clone().unwrap_or_default()));
        }
        w.w(2, &format!("Image:\t{}\n", c.image.clone().unwrap_or_default()));
        if let Some(s) = status {
            w.w(2, &format!("Image ID:\t{}\n", s.image_id));
        }
        let ports = c.ports.clone().unwrap_or_default();
        let port_list = |host: bool| {
            ports
                .iter()
                .map(|p| {
                    let n = if host { p.host_port.unwrap_or(0) } else { p.container_port };
                    format!("{n}/{}", p.protocol.clone().unwrap_or_else(|| "TCP".to_string()))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (container_ports, host_ports) = (port_list(false), port_list(true));
        if container_ports.contains(',') {
            w.w(2, &format!("Ports:\t{container_ports}\n"));
        } else {
            w.w(
                2,
                &format!("Port:\t{}\n", if container_ports.is_empty() { "<none>" } else { &container_ports }),
            );
        }
        if host_ports.contains(',') {
            w.w(2, &format!("Host Ports:\t{host_ports}\n"));
        } else {
            w.w(2, &format!("Host Port:\t{}\n", if host_ports.is_empty() { "<none>" } else { &host_ports }));
        }
        for (title, list) in [("Command", &c.command), ("Args", &c.args)] {
            if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
                w.w(2, &format!("{title}:\n"));
                for item in list {
                    for line in item.split('\n') {
                        w.w(3, &format!("{line}\n"));
                    }
                }
            }
        }
        if let Some(s) = status {
            state(w, "State", &s.state.clone().unwrap_or_default(), clock);
            if let Some(last) = s.last_state.as_ref().filter(|l| l.terminated.is_some()) {
                state(w, "Last State", last, clock);
            }
            w.w(2, &format!("Ready:\t{}\n", if s.ready { "True" } else { "False" }));
            w.w(2, &format!("Restart Count:\t{}\n", s.restart_count));
        }
        if let Some(r) = &c.resources {
            for (title, list) in [("Limits", &r.limits), ("Requests", &r.requests)] {
                if let Some(list) = list.as_ref().filter(|l| !l.is_empty()) {
                    w.w(2, &format!("{title}:\n"));
                    for (k, q) in list {
                        w.w(3, &format!("{k}:\t{}\n", q.0));
                    }
                }
            }
        }
        for (title, p) in [
            ("Liveness", &c.liveness_probe),
            ("Readiness", &c.readiness_probe),
            ("Startup", &c.startup_probe),
        ] {
            if let Some(p) = p {
                w.w(2, &format!("{title}:\t{}\n", probe(p)));
            }
        }
        if let Some(from) = c.env_from.as_ref().filter(|f| !f.is_empty()) {
            w.w(2, "Environment Variables from:\n");
            for e in from {
                let (kind, name, optional) = if let Some(cm) = &e.config_map_ref {
                    ("ConfigMap", cm.name.clone(), cm.optional.unwrap_or(false))
                } else if let Some(s) = &e.secret_ref {
                    ("Secret", s.name.clone(), s.optional.unwrap_or(false))
                } else {
                    ("", String::new(), false)
                };
                match e.prefix.as_ref().filter(|p| !p.is_empty()) {
                    Some(prefix) => {
                        w.w(3, &format!("{name}\t{kind} with prefix '{prefix}'\tOptional: {optional}\n"))
                    }
                    None => w.w(3, &format!("{name}\t{kind}\tOptional: {optional}\n")),
                }
            }
        }
        let env = c.env.clone().unwrap_or_default();
        w.w(2, &format!("Environment:{}\n", if env.is_empty() { "\t<none>" } else { "" }));
        for e in &env {
            let Some(from) = &e.value_from else {
                for (i, line) in e.value.clone().unwrap_or_default().split('\n').enumerate() {
                    if i == 0 {
                        w.w(3, &format!("{}:\t{line}\n", e.name));
                    } else {
                        w.w(3, &format!("\t{line}\n"));
                    }
                }
                continue;
            };
            if let Some(f) = &from.field_ref {
                // Resolved against the pod, as kubectl's EnvValueRetriever does; templates have none.
                let value = pod
                    .and_then(|p| p.pointer(&format!("/{}", f.field_path.replace('.', "/"))))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                w.w(
                    3,
                    &format!(
                        "{}:\t{value} ({}:{})\n",
                        e.name,
                        f.api_version.clone().unwrap_or_else(|| "v1".into()),
                        f.field_path
                    ),
                );
            } else if let Some(r) = &from.resource_field_ref {
                w.w(3, &format!("{}:\t ({})\n", e.name, r.resource));
            } else if let Some(s) = &from.secret_key_ref {
                w.w(
                    3,
                    &format!(
                        "{}:\t<set to the key '{}' in secret '{}'>\tOptional: {}\n",
                        e.name,
                        s.key,
                        s.name,
                        s.optional.unwrap_or(false)
                    ),
                );
            } else if let Some(c) = &from.config_map_key_ref {
                w.w(
                    3,
                    &format!(
                        "{}:\t<set to the key '{}' of config map '{}'>\tOptional: {}\n",
                        e.name,
                        c.key,
                        c.name,
                        c.optional.unwrap_or(false)
                    ),
                );
            }
        }
        let mut mounts = c.volume_mounts.clone().unwrap_or_default();
        w.w(2, &format!("Mounts:{}\n", if mounts.is_empty() { "\t<none>" } else { "" }));
        mounts.sort_by(|a, b| a.mount_path.cmp(&b.mount_path));
        for m in mounts {
            let mut flags = vec![if m.read_only == Some(true) { "ro".to_string() } else { "rw".to_string() }];
            if let Some(sub) = m.sub_path.filter(|s| !s.is_empty()) {
                flags.push(format!("path={sub:?}"));
            }
            w.w(3, &format!("{} from {} ({})\n", m.mount_path, m.name, flags.join(",")));
        }
    }
}

/// kubectl's `describeVolumes` for the volume types a lab uses.
pub fn volumes(w: &mut Page, volumes: &[Volume], space: &str) {
    if volumes.is_empty() {
        w.w(0, &format!("{space}Volumes:\t<none>\n"));
        return;
    }
    w.w(0, &format!("{space}Volumes:\n"));
    let name_indent = if space.is_empty() { "" } else { " " };
    for v in volumes {
        w.w(1, &format!("{name_indent}{}:\n", v.name));
        if let Some(h) = &v.host_path {
            w.w(
                2,
                &format!(
                    "Type:\tHostPath (bare host directory volume)\n    Path:\t{}\n    HostPathType:\t{}\n",
                    h.path,
                    h.type_.clone().unwrap_or_else(|| "<none>".into())
                ),
            );
        } else if let Some(e) = &v.empty_dir {
            let limit = e.size_limit.as_ref().map_or_else(|| "<unset>".to_string(), |q| q.0.clone());
            w.w(
                2,
                &format!(
                    "Type:\tEmptyDir (a temporary directory that shares a pod's lifetime)\n    Medium:\t{}\n    SizeLimit:\t{limit}\n",
                    e.medium.clone().unwrap_or_default()
                ),
            );
        } else if let Some(s) = &v.secret {
            w.w(
                2,
                &format!(
                    "Type:\tSecret (a volume populated by a Secret)\n    SecretName:\t{}\n    Optional:\t{}\n",
                    s.secret_name.clone().unwrap_or_default(),
                    s.optional.unwrap_or(false)
                ),
            );
        } else if let Some(c) = &v.config_map {
            w.w(
                2,
                &format!(
                    "Type:\tConfigMap (a volume populated by a ConfigMap)\n    Name:\t{}\n    Optional:\t{}\n",
                    c.name,
                    c.optional.unwrap_or(false)
                ),
            );
        } else if let Some(p) = &v.projected {
            w.w(2, "Type:\tProjected (a volume that contains injected data from multiple sources)\n");
            for s in p.sources.iter().flatten() {
                if let Some(sec) = &s.secret {
                    w.w(
                        2,
                        &format!(
                            "SecretName:\t{}\n    Optional:\t{}\n",
                            sec.name,
                            sec.optional.unwrap_or(false)
                        ),
                    );
                } else if s.downward_api.is_some() {
                    w.w(2, "DownwardAPI:\ttrue\n");
                } else if let Some(cm) = &s.config_map {
                    w.w(
                        2,
                        &format!(
                            "ConfigMapName:\t{}\n    Optional:\t{}\n",
                            cm.name,
                            cm.optional.unwrap_or(false)
                        ),
                    );
                } else if let Some(t) = &s.service_account_token {
                    w.w(2, &format!("TokenExpirationSeconds:\t{}\n", t.expiration_seconds.unwrap_or(3607)));
                }
            }
        } else if let Some(c) = &v.persistent_volume_claim {
            w.w(
                2,
                &format!(
                    "Type:\tPersistentVolumeClaim (a reference to a PersistentVolumeClaim in the same namespace)\n    ClaimName:\t{}\n    ReadOnly:\t{}\n",
                    c.claim_name,
                    c.read_only.unwrap_or(false)
                ),
            );
        } else if let Some(d) = &v.downward_api {
            w.w(2, "Type:\tDownwardAPI (a volume populated by information about the pod)\n    Items:\n");
            for item in d.items.iter().flatten() {
                if let Some(f) = &item.field_ref {
                    w.w(0, &format!("      {} -> {}\n", f.field_path, item.path));
                } else if let Some(r) = &item.resource_field_ref {
                    w.w(0, &format!("      {} -> {}\n", r.resource, item.path));
                }
            }
        } else if let Some(n) = &v.nfs {
            w.w(
                2,
                &format!(
                    "Type:\tNFS (an NFS mount that lasts the lifetime of a pod)\n    Server:\t{}\n    Path:\t{}\n    ReadOnly:\t{}\n",
                    n.server,
                    n.path,
                    n.read_only.unwrap_or(false)
                ),
            );
        } else {
            w.w(1, "<unknown>\n");
        }
    }
}

/// `printTolerationsMultilineWithIndent`.
pub fn tolerations(w: &mut Page, initial: &str, title: &str, tolerations: &[Toleration]) {
    w.w(0, &format!("{initial}{title}:\t"));
    if tolerations.is_empty() {
        w.w(0, "<none>\n");
        return;
    }
    let mut sorted = tolerations.to_vec();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for (i, t) in sorted.iter().enumerate() {
        if i != 0 {
            w.w(0, &format!("{initial}\t"));
        }
        let key = t.key.clone().unwrap_or_default();
        let value = t.value.clone().unwrap_or_default();
        let effect = t.effect.clone().unwrap_or_default();
        let mut line = key.clone();
        if !value.is_empty() {
            line.push_str(&format!("={value}"));
        }
        if !effect.is_empty() {
            line.push_str(&format!(":{effect}"));
        }
        if t.operator.as_deref() == Some("Exists") && value.is_empty() {
            line.push_str(if key.is_empty() && effect.is_empty() { "op=Exists" } else { " op=Exists" });
        }
        if let Some(s) = t.toleration_seconds {
            line.push_str(&format!(" for {s}s"));
        }
        w.w(0, &format!("{line}\n"));
    }
}

/// kubectl's `DescribePodTemplate`.
pub fn template(w: &mut Page, template: Option<&PodTemplateSpec>, clock: &Clock) {
    w.w(0, "Pod Template:\n");
    let Some(t) = template else {
        w.w(1, "<unset>");
        return;
    };
    let meta = t.metadata.clone().unwrap_or_default();
    let spec: PodSpec = t.spec.clone().unwrap_or_default();
    w.labels("  Labels", meta.labels.as_ref());
    if meta.annotations.as_ref().is_some_and(|a| !a.is_empty()) {
        w.annotations("  Annotations", meta.annotations.as_ref());
    }
    if let Some(sa) = spec.service_account_name.as_ref().filter(|s| !s.is_empty()) {
        w.w(1, &format!("Service Account:\t{sa}\n"));
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        containers(w, "Init Containers", init, &[], None, "  ", clock);
    }
    containers(w, "Containers", &spec.containers, &[], None, "  ", clock);
    volumes(w, spec.volumes.as_deref().unwrap_or_default(), "  ");
    if let Some(pc) = spec.priority_class_name.as_ref().filter(|p| !p.is_empty()) {
        w.w(1, &format!("Priority Class Name:\t{pc}\n"));
    }
    w.labels("  Node-Selectors", spec.node_selector.as_ref());
    tolerations(w, "  ", "Tolerations", spec.tolerations.as_deref().unwrap_or_default());
}

/// `qos.GetPodQOS`: the status field when set, else computed from requests and limits.
pub fn qos_class(pod: &Pod) -> String {
    if let Some(q) = pod.status.as_ref().and_then(|s| s.qos_class.clone()).filter(|q| !q.is_empty()) {
        return q;
    }
    let spec = pod.spec.clone().unwrap_or_default();
    let all: Vec<&Container> = spec.containers.iter().chain(spec.init_containers.iter().flatten()).collect();
    let nonzero = |m: Option<
        &BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>,
    >|
     -> BTreeMap<String, f64> {
        m.into_iter()
            .flatten()
            .filter(|(k, _)| k.as_str() == "cpu" || k.as_str() == "memory")
            .map(|(k, q)| (k.clone(), super::core_v1::quantity(&q.0)))
            .filter(|(_, v)| *v != 0.0)
            .collect()
    };
    let mut any = false;
    let mut guaranteed = true;
    for c in all {
        let requests = nonzero(c.resources.as_ref().and_then(|r| r.requests.as_ref()));
        let limits = nonzero(c.resources.as_ref().and_then(|r| r.limits.as_ref()));
        any |= !requests.is_empty() || !limits.is_empty();
        let both = limits.contains_key("cpu") && limits.contains_key("memory");
        // Requests default to limits.
        let equal = requests.iter().all(|(k, v)| limits.get(k) == Some(v));
        guaranteed &= both && equal;
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
    .to_string()
}

/// kubectl's Pod page.
pub fn pod(obj: &Value, events: Option<&[Value]>, clock: &Clock) -> String {
    let pod: Pod = typed(obj);
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let meta = &pod.metadata;
    let mut w = Page::default();
    w.w(0, &format!("Name:\t{}\n", meta.name.clone().unwrap_or_default()));
    w.w(0, &format!("Namespace:\t{}\n", meta.namespace.clone().unwrap_or_default()));
    if let Some(p) = spec.priority {
        w.w(0, &format!("Priority:\t{p}\n"));
    }
    if let Some(pc) = spec.priority_class_name.as_ref().filter(|p| !p.is_empty()) {
        w.w(0, &format!("Priority Class Name:\t{pc}\n"));
    }
    if let Some(rc) = spec.runtime_class_name.as_ref().filter(|r| !r.is_empty()) {
        w.w(0, &format!("Runtime Class Name:\t{rc}\n"));
    }
    if let Some(sa) = spec.service_account_name.as_ref().filter(|s| !s.is_empty()) {
        w.w(0, &format!("Service Account:\t{sa}\n"));
    }
    match spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        None => w.w(0, "Node:\t<none>\n"),
        Some(n) => w.w(0, &format!("Node:\t{n}/{}\n", status.host_ip.clone().unwrap_or_default())),
    }
    if let Some(t) = &status.start_time {
        w.w(0, &format!("Start Time:\t{}\n", clock.rfc1123z(Some(t))));
    }
    w.labels("Labels", meta.labels.as_ref());
    w.annotations("Annotations", meta.annotations.as_ref());
    let phase = status.phase.clone().unwrap_or_default();
    match &meta.deletion_timestamp {
        Some(t) if phase != "Failed" && phase != "Succeeded" => {
            w.w(0, &format!("Status:\tTerminating (lasts {})\n", lasts(t, clock)));
            w.w(
                0,
                &format!("Termination Grace Period:\t{}s\n", meta.deletion_grace_period_seconds.unwrap_or(0)),
            );
        }
        _ => w.w(0, &format!("Status:\t{phase}\n")),
    }
    if let Some(r) = status.reason.as_ref().filter(|r| !r.is_empty()) {
        w.w(0, &format!("Reason:\t{r}\n"));
    }
    if let Some(m) = status.message.as_ref().filter(|m| !m.is_empty()) {
        w.w(0, &format!("Message:\t{m}\n"));
    }
    w.w(0, &format!("IP:\t{}\n", status.pod_ip.clone().unwrap_or_default()));
    let ips = status.pod_ips.clone().unwrap_or_default();
    if ips.is_empty() {
        w.w(0, "IPs:\t<none>\n");
    } else {
        w.w(0, "IPs:\n");
        for ip in ips {
            w.w(1, &format!("IP:\t{}\n", ip.ip));
        }
    }
    if let Some(c) = controller(meta) {
        w.w(0, &format!("Controlled By:\t{c}\n"));
    }
    if let Some(n) = status.nominated_node_name.as_ref().filter(|n| !n.is_empty()) {
        w.w(0, &format!("NominatedNodeName:\t{n}\n"));
    }
    if let Some(init) = spec.init_containers.as_ref().filter(|i| !i.is_empty()) {
        containers(
            &mut w,
            "Init Containers",
            init,
            status.init_container_statuses.as_deref().unwrap_or_default(),
            Some(obj),
            "",
            clock,
        );
    }
    containers(
        &mut w,
        "Containers",
        &spec.containers,
        status.container_statuses.as_deref().unwrap_or_default(),
        Some(obj),
        "",
        clock,
    );
    let conditions = status.conditions.clone().unwrap_or_default();
    if let Some(gates) = spec.readiness_gates.as_ref().filter(|g| !g.is_empty()) {
        w.w(0, "Readiness Gates:\n  Type\tStatus\n");
        for g in gates {
            let st = conditions
                .iter()
                .find(|c| c.type_ == g.condition_type)
                .map_or_else(|| "<none>".to_string(), |c| c.status.clone());
            w.w(1, &format!("{} \t{st} \n", g.condition_type));
        }
    }
    if !conditions.is_empty() {
        w.w(0, "Conditions:\n  Type\tStatus\n");
        for c in &conditions {
            w.w(1, &format!("{} \t{} \n", c.type_, c.status));
        }
    }
    volumes(&mut w, spec.volumes.as_deref().unwrap_or_default(), "");
    w.w(0, &format!("QoS Class:\t{}\n", qos_class(&pod)));
    w.labels("Node-Selectors", spec.node_selector.as_ref());
    tolerations(&mut w, "", "Tolerations", spec.tolerations.as_deref().unwrap_or_default());
    w.events(events, clock);
    w.finish()
}
