//! Defaulting: the fields kube-apiserver fills in before it validates and stores an object.
//!
//! `kubectl get -o yaml` on a real cluster shows far more than the manifest said (`dnsPolicy:
//! ClusterFirst`, `sessionAffinity: None`, `ipFamilies: [IPv4]`, ...), and students read those
//! fields to learn what the defaults are. This module reproduces them from upstream v1.33:
//! `pkg/apis/{core,apps,discovery,networking}/v1/defaults.go` plus the generated declarative
//! defaults (`protocol: TCP`), and the few create-time steps that a real cluster always runs on
//! top: the Service REST's ClusterIP normalisation and IP-family defaulting (for this single-stack
//! IPv4 cluster), the Pod strategy's initial status, and the ServiceAccount, Priority and
//! DefaultTolerationSeconds admission plugins. Nothing the user set is overwritten, except where
//! upstream overwrites it too (a Namespace's `kubernetes.io/metadata.name` label, a Service's
//! `sessionAffinityConfig` when affinity is `None`).
//!
//! The fault kinds get what Chaos Mesh's mutating webhook gives them ([`chaos`]).
//!
//! Defaulting is idempotent, so it is safe on every create and update.

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Map, Value, json};

mod chaos;

/// The cluster's only (and so primary) Service IP family: netlab's Service CIDR is IPv4.
const DEFAULT_IP_FAMILY: &str = "IPv4";

/// `v1.DefaultTerminationGracePeriodSeconds`.
const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;

/// `v1.DefaultClientIPServiceAffinitySeconds`: three hours.
const DEFAULT_CLIENT_IP_AFFINITY_SECONDS: i64 = 10800;

/// `DefaultTolerationSeconds` admission: how long pods stay on a not-ready or unreachable node.
const DEFAULT_TOLERATION_SECONDS: i64 = 300;

/// Fills in `obj`'s defaults, as kube-apiserver does before validation. `obj` is the resource's
/// Kubernetes JSON; anything that is not a JSON object is left alone.
pub fn set_defaults(resource: Resource, obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match resource {
        Resource::Namespaces => namespace(obj),
        Resource::Nodes => node(obj),
        Resource::Pods => pod(obj),
        Resource::Services => service(obj),
        Resource::EndpointSlices => endpoint_slice(obj),
        Resource::NetworkPolicies => network_policy(obj),
        Resource::Deployments => deployment(obj),
        Resource::ReplicaSets => replica_set(obj),
        Resource::StatefulSets => stateful_set(obj),
        Resource::DaemonSets => daemon_set(obj),
        Resource::NetworkChaos => chaos::network_chaos(obj),
        Resource::DnsChaos | Resource::PodChaos => chaos::pod_scoped_chaos(obj),
        Resource::ServiceAccounts | Resource::ConfigMaps | Resource::Events | Resource::Unspecified => {}
        // The lab's fault kinds have no defaults.
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// JSON helpers
// ---------------------------------------------------------------------------------------------

/// The object at `key`, created (replacing a null) if missing. Go's non-pointer structs are
/// always there, so defaulting into them creates them.
fn child<'a>(m: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let slot = m.entry(key).or_insert_with(|| json!({}));
    if !slot.is_object() {
        *slot = json!({});
    }
    match slot {
        Value::Object(o) => o,
        // The slot was made an object just above.
        _ => unreachable!("slot is an object"),
    }
}

/// The objects of the list at `key`, mutable (nothing if there is no list).
fn items<'a>(m: &'a mut Map<String, Value>, key: &str) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key).and_then(Value::as_array_mut).into_iter().flatten().filter_map(Value::as_object_mut)
}

/// Whether `key` is unset as a Go string is: missing, null or "".
fn str_unset(m: &Map<String, Value>, key: &str) -> bool {
    match m.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// Whether `key` is unset as a Go pointer is: missing or null.
fn unset(m: &Map<String, Value>, key: &str) -> bool {
    matches!(m.get(key), None | Some(Value::Null))
}

fn default_str(m: &mut Map<String, Value>, key: &str, value: &str) {
    if str_unset(m, key) {
        m.insert(key.to_string(), json!(value));
    }
}

fn default_value(m: &mut Map<String, Value>, key: &str, value: Value) {
    if unset(m, key) {
        m.insert(key.to_string(), value);
    }
}

fn get_str<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list_len(m: &Map<String, Value>, key: &str) -> usize {
    m.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

fn map_len(m: &Map<String, Value>, key: &str) -> usize {
    m.get(key).and_then(Value::as_object).map_or(0, Map::len)
}

// ---------------------------------------------------------------------------------------------
// Core
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_Namespace` and `SetDefaults_NamespaceStatus`.
fn namespace(obj: &mut Map<String, Value>) {
    let meta = child(obj, "metadata");
    let name = get_str(meta, "name").to_string();
    // Upstream sets this label unconditionally: it always equals the name, so selectors can
    // pick namespaces by name.
    if !name.is_empty() {
        child(meta, "labels").insert("kubernetes.io/metadata.name".into(), json!(name));
    }
    default_str(child(obj, "status"), "phase", "Active");
}

/// `SetDefaults_NodeStatus`: allocatable defaults to capacity.
fn node(obj: &mut Map<String, Value>) {
    let Some(status) = obj.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if unset(status, "allocatable")
        && let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned()
    {
        status.insert("allocatable".into(), capacity);
    }
}

/// `SetDefaults_Service`, plus the Service REST's create-time steps (ClusterIP normalisation,
/// IP family defaulting).
fn service(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    default_str(spec, "sessionAffinity", "None");
    match get_str(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let has_timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"))
                .is_some_and(|t| !t.is_null());
            if !has_timeout {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_AFFINITY_SECONDS}}),
                );
            }
        }
        _ => {}
    }
    default_str(spec, "type", "ClusterIP");
    for port in items(spec, "ports") {
        default_str(port, "protocol", "TCP");
        let target_unset = match port.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            let number = port.get("port").cloned().unwrap_or(json!(0));
            port.insert("targetPort".into(), number);
        }
    }
    let svc_type = get_str(spec, "type").to_string();
    let externally_accessible = svc_type == "LoadBalancer"
        || svc_type == "NodePort"
        || (svc_type == "ClusterIP" && list_len(spec, "externalIPs") > 0);
    if externally_accessible {
        default_str(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(svc_type.as_str(), "NodePort" | "LoadBalancer" | "ClusterIP") {
        default_value(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if svc_type == "LoadBalancer" {
        default_value(spec, "allocateLoadBalancerNodePorts", json!(true));
    }

    // NormalizeClusterIPs (create): a client that set only clusterIP gets clusterIPs too.
    let cluster_ip = get_str(spec, "clusterIP").to_string();
    if !cluster_ip.is_empty() && list_len(spec, "clusterIPs") == 0 {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    }
    if svc_type != "ExternalName" {
        ip_families(spec);
    }

    let status = child(obj, "status");
    let lb = child(status, "loadBalancer");
    if svc_type == "LoadBalancer" {
        for ingress in items(lb, "ingress") {
            if !str_unset(ingress, "ip") {
                default_value(ingress, "ipMode", json!("VIP"));
            }
        }
    }
}

/// The Service REST's `initIPFamilyFields` for a single-stack cluster: a policy, and families
/// inferred from the ClusterIPs or the cluster's default. Headless Services without a selector
/// default to `RequireDualStack` with both families, as on a real single-stack cluster.
fn ip_families(spec: &mut Map<String, Value>) {
    let headless = get_str(spec, "clusterIP") == "None";
    let selectorless = map_len(spec, "selector") == 0;
    let policy = if headless && selectorless { "RequireDualStack" } else { "SingleStack" };
    default_value(spec, "ipFamilyPolicy", json!(policy));

    let ips: Vec<String> = spec
        .get("clusterIPs")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    let mut families: Vec<Value> =
        spec.get("ipFamilies").and_then(Value::as_array).cloned().unwrap_or_default();
    for (i, ip) in ips.iter().enumerate() {
        if ip == "None" {
            break;
        }
        if i >= families.len() {
            match ip.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => families.push(json!("IPv6")),
                Ok(_) => families.push(json!("IPv4")),
                // A malformed IP is validation's business.
                Err(_) => break,
            }
        }
    }
    if families.is_empty() {
        families.push(json!(DEFAULT_IP_FAMILY));
    }
    let single = get_str(spec, "ipFamilyPolicy") == "SingleStack";
    if headless && selectorless && families.len() < 2 && !single {
        let other = if families[0] == json!("IPv6") { "IPv4" } else { "IPv6" };
        families.push(json!(other));
    }
    spec.insert("ipFamilies".into(), Value::Array(families));
}

/// `SetDefaults_Pod` and `SetDefaults_PodSpec`, the Pod strategy's initial status, and the
/// admission plugins every real cluster runs on pods.
fn pod(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    pod_spec(spec);

    // SetDefaults_Pod: only for Pods, not for pod templates.
    for key in ["containers", "initContainers"] {
        for c in items(spec, key) {
            let resources = child(c, "resources");
            if let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() {
                let requests = child(resources, "requests");
                for (k, v) in limits {
                    requests.entry(k).or_insert(v);
                }
            }
        }
    }
    default_value(spec, "enableServiceLinks", json!(true));
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for c in items(spec, key) {
                for p in items(c, "ports") {
                    if p.get("hostPort").and_then(Value::as_i64).unwrap_or(0) == 0
                        && let Some(cp) = p.get("containerPort").cloned()
                    {
                        p.insert("hostPort".into(), cp);
                    }
                }
            }
        }
    }

    admission(spec);

    let qos = qos_class(spec);
    let status = child(obj, "status");
    default_str(status, "phase", "Pending");
    default_str(status, "qosClass", qos);
}

/// The ServiceAccount, Priority and DefaultTolerationSeconds admission plugins.
fn admission(spec: &mut Map<String, Value>) {
    // ServiceAccount: the namespace's "default" account; serviceAccount is its deprecated alias.
    let sa = match (get_str(spec, "serviceAccountName"), get_str(spec, "serviceAccount")) {
        ("", "") => "default".to_string(),
        ("", alias) => alias.to_string(),
        (name, _) => name.to_string(),
    };
    default_str(spec, "serviceAccountName", &sa);
    default_str(spec, "serviceAccount", &sa);

    // Priority: the two built-in classes, else no class (priority 0).
    let priority = match get_str(spec, "priorityClassName") {
        "system-node-critical" => Some(2_000_001_000),
        "system-cluster-critical" => Some(2_000_000_000),
        "" => Some(0),
        _ => None,
    };
    if let Some(p) = priority {
        default_value(spec, "priority", json!(p));
        default_value(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    }

    // DefaultTolerationSeconds: ride out a not-ready or unreachable node for five minutes.
    for taint in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
        let tolerated = spec.get("tolerations").and_then(Value::as_array).into_iter().flatten().any(|t| {
            let key = t.get("key").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (key == taint || (key.is_empty() && op == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !tolerated {
            let list = spec.entry("tolerations").or_insert_with(|| json!([]));
            if !list.is_array() {
                *list = json!([]);
            }
            if let Some(list) = list.as_array_mut() {
                list.push(json!({
                    "key": taint,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": DEFAULT_TOLERATION_SECONDS,
                }));
            }
        }
    }
}

/// `SetDefaults_PodSpec` and the defaults of everything a PodSpec holds. Shared by Pods and the
/// templates of Deployments, ReplicaSets, StatefulSets and DaemonSets.
fn pod_spec(spec: &mut Map<String, Value>) {
    default_str(spec, "dnsPolicy", "ClusterFirst");
    default_str(spec, "restartPolicy", "Always");
    default_value(spec, "securityContext", json!({}));
    default_value(spec, "terminationGracePeriodSeconds", json!(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS));
    default_str(spec, "schedulerName", "default-scheduler");
    for key in ["containers", "initContainers"] {
        for c in items(spec, key) {
            container(c);
        }
    }
    for v in items(spec, "volumes") {
        volume(v);
    }
}

/// `SetDefaults_Container` and its ports, probes, hooks and env.
fn container(c: &mut Map<String, Value>) {
    if str_unset(c, "imagePullPolicy") {
        let policy = image_pull_policy(get_str(c, "image"));
        c.insert("imagePullPolicy".into(), json!(policy));
    }
    default_str(c, "terminationMessagePath", "/dev/termination-log");
    default_str(c, "terminationMessagePolicy", "File");
    // ResourceRequirements is not a pointer in Go, so it always prints.
    child(c, "resources");
    for p in items(c, "ports") {
        default_str(p, "protocol", "TCP");
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            for (k, v) in [
                ("timeoutSeconds", 1),
                ("periodSeconds", 10),
                ("successThreshold", 1),
                ("failureThreshold", 3),
            ] {
                if p.get(k).and_then(Value::as_i64).unwrap_or(0) == 0 {
                    p.insert(k.into(), json!(v));
                }
            }
            handler(p);
        }
    }
    if let Some(lc) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = lc.get_mut(hook).and_then(Value::as_object_mut) {
                handler(h);
            }
        }
    }
    for e in items(c, "env") {
        if let Some(field_ref) =
            e.get_mut("valueFrom").and_then(|v| v.get_mut("fieldRef")).and_then(Value::as_object_mut)
        {
            default_str(field_ref, "apiVersion", "v1");
        }
    }
}

/// `SetDefaults_HTTPGetAction` inside a probe or hook.
fn handler(h: &mut Map<String, Value>) {
    if let Some(http) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        default_str(http, "path", "/");
        default_str(http, "scheme", "HTTP");
    }
}

/// `SetDefaults_Volume` and the volume sources' file modes.
fn volume(v: &mut Map<String, Value>) {
    let has_source = v.iter().any(|(k, val)| k != "name" && !val.is_null());
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for source in ["configMap", "secret", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            default_value(s, "defaultMode", json!(420));
        }
    }
    if let Some(projected) = v.get_mut("projected").and_then(Value::as_object_mut) {
        for src in items(projected, "sources") {
            if let Some(token) = src.get_mut("serviceAccountToken").and_then(Value::as_object_mut) {
                default_value(token, "expirationSeconds", json!(3600));
            }
        }
    }
    if let Some(host_path) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        default_value(host_path, "type", json!(""));
    }
}

/// `imagePullPolicy` from the image reference: `Always` for `:latest` or no tag (which means
/// latest), `IfNotPresent` for any other tag or a digest, as `parsers.ParseImageName` decides.
fn image_pull_policy(image: &str) -> &'static str {
    let (name, has_digest) = match image.split_once('@') {
        Some((name, _)) => (name, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo, tag) = match last.split_once(':') {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (last, None),
    };
    // An unparsable reference (empty, upper-case repository) has no tag upstream either.
    let parsable = !repo.is_empty() && !repo.chars().any(|c| c.is_ascii_uppercase());
    match tag {
        _ if !parsable => "IfNotPresent",
        Some("latest") => "Always",
        None if !has_digest => "Always",
        _ => "IfNotPresent",
    }
}

/// The pod's QoS class (`qos.ComputePodQOS`): BestEffort without CPU or memory requests and
/// limits, Guaranteed when every container limits both and requests equal limits, else Burstable.
fn qos_class(spec: &Map<String, Value>) -> &'static str {
    let mut requests: std::collections::BTreeMap<&str, i128> = Default::default();
    let mut limits: std::collections::BTreeMap<&str, i128> = Default::default();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"]
        .into_iter()
        .flat_map(|k| spec.get(k).and_then(Value::as_array).into_iter().flatten());
    for c in containers {
        let resources = c.get("resources");
        let mut limited = (false, false);
        for (kind, sums) in [("requests", &mut requests), ("limits", &mut limits)] {
            let Some(list) = resources.and_then(|r| r.get(kind)).and_then(Value::as_object) else {
                continue;
            };
            for name in ["cpu", "memory"] {
                let q = list.get(name).and_then(quantity_of).unwrap_or(0);
                if q > 0 {
                    *sums.entry(name).or_default() += q;
                    if kind == "limits" {
                        if name == "cpu" { limited.0 = true } else { limited.1 = true }
                    }
                }
            }
        }
        if limited != (true, true) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed && requests.iter().all(|(k, v)| limits.get(k) == Some(v)) && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

fn quantity_of(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n.as_f64().map(|f| (f * 1e9) as i128),
        _ => None,
    }
}

/// A resource quantity (`100m`, `1.5Gi`, `2e3`) in billionths, enough to compare and add them.
fn parse_quantity(s: &str) -> Option<i128> {
    let s = s.trim();
    let end = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (number, suffix) = s.split_at(end);
    let (negative, number) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    // Value = mantissa * 10^(exp10 - frac_len) * 2^exp2, in units of 1e-9.
    let (exp10, exp2): (i32, u32) = match suffix {
        "Ki" => (0, 10),
        "Mi" => (0, 20),
        "Gi" => (0, 30),
        "Ti" => (0, 40),
        "Pi" => (0, 50),
        "Ei" => (0, 60),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "" => (0, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        e if e.starts_with(['e', 'E']) => (e[1..].parse().ok()?, 0),
        _ => return None,
    };
    let scale = exp10 + 9 - i32::try_from(frac_part.len()).ok()?;
    let mut value = mantissa.checked_mul(1i128.checked_shl(exp2)?)?;
    if scale >= 0 {
        value = value.checked_mul(10i128.checked_pow(u32::try_from(scale).ok()?)?)?;
    } else {
        let div = 10i128.checked_pow(u32::try_from(-scale).ok()?)?;
        // Round up, as upstream rounds quantities up to its precision.
        value = (value + div - 1) / div;
    }
    Some(if negative { -value } else { value })
}

// ---------------------------------------------------------------------------------------------
// discovery.k8s.io, networking.k8s.io
// ---------------------------------------------------------------------------------------------

/// `SetDefaults_EndpointPort`: an empty name and TCP.
fn endpoint_slice(obj: &mut Map<String, Value>) {
    for p in items(obj, "ports") {
        default_value(p, "name", json!(""));
        default_value(p, "protocol", json!("TCP"));
    }
}

/// `SetDefaults_NetworkPolicy`: a policy without `policyTypes` is an Ingress policy, and an
/// Egress one too if it has egress rules. Ports default to TCP.
fn network_policy(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    if list_len(spec, "policyTypes") == 0 {
        let mut types = vec![json!("Ingress")];
        if list_len(spec, "egress") > 0 {
            types.push(json!("Egress"));
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
    for dir in ["ingress", "egress"] {
        for rule in items(spec, dir) {
            for p in items(rule, "ports") {
                default_value(p, "protocol", json!("TCP"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// apps
// ---------------------------------------------------------------------------------------------

/// Defaults of a workload's pod template: the PodSpec's (not the Pod's).
fn template(spec: &mut Map<String, Value>) {
    let template = child(spec, "template");
    pod_spec(child(template, "spec"));
}

/// `SetDefaults_Deployment`.
fn deployment(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    default_value(spec, "replicas", json!(1));
    let strategy = child(spec, "strategy");
    default_str(strategy, "type", "RollingUpdate");
    if get_str(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        default_value(ru, "maxUnavailable", json!("25%"));
        default_value(ru, "maxSurge", json!("25%"));
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    default_value(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
}

/// `SetDefaults_ReplicaSet`.
fn replica_set(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    default_value(spec, "replicas", json!(1));
    template(spec);
}

/// `SetDefaults_StatefulSet`, and the PersistentVolumeClaim defaults of its claim templates.
fn stateful_set(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    default_str(spec, "podManagementPolicy", "OrderedReady");
    let strategy = child(spec, "updateStrategy");
    if str_unset(strategy, "type") {
        strategy.insert("type".into(), json!("RollingUpdate"));
        default_value(strategy, "rollingUpdate", json!({}));
    }
    if get_str(strategy, "type") == "RollingUpdate"
        && let Some(ru) = strategy.get_mut("rollingUpdate").and_then(Value::as_object_mut)
    {
        default_value(ru, "partition", json!(0));
    }
    let retention = child(spec, "persistentVolumeClaimRetentionPolicy");
    default_str(retention, "whenDeleted", "Retain");
    default_str(retention, "whenScaled", "Retain");
    default_value(spec, "replicas", json!(1));
    default_value(spec, "revisionHistoryLimit", json!(10));
    template(spec);
    for claim in items(spec, "volumeClaimTemplates") {
        default_str(claim, "apiVersion", "v1");
        default_str(claim, "kind", "PersistentVolumeClaim");
        default_value(child(claim, "spec"), "volumeMode", json!("Filesystem"));
        default_str(child(claim, "status"), "phase", "Pending");
    }
}

/// `SetDefaults_DaemonSet`.
fn daemon_set(obj: &mut Map<String, Value>) {
    let spec = child(obj, "spec");
    let strategy = child(spec, "updateStrategy");
    default_str(strategy, "type", "RollingUpdate");
    if get_str(strategy, "type") == "RollingUpdate" {
        let ru = child(strategy, "rollingUpdate");
        default_value(ru, "maxUnavailable", json!(1));
        default_value(ru, "maxSurge", json!(0));
    }
    default_value(spec, "revisionHistoryLimit", json!(10));
    template(spec);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaulted(resource: Resource, mut obj: Value) -> Value {
        set_defaults(resource, &mut obj);
        obj
    }

    #[test]
    fn service_defaults() {
        let svc = defaulted(
            Resource::Services,
            json!({"metadata": {"name": "orders"}, "spec": {"selector": {"app": "orders"}, "ports": [{"port": 80}]}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["ports"][0]["targetPort"], 80);
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert!(spec.get("externalTrafficPolicy").is_none());
        assert_eq!(svc["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn service_keeps_user_values() {
        let svc = defaulted(
            Resource::Services,
            json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": "http", "protocol": "UDP"}],
                            "externalTrafficPolicy": "Local", "clusterIP": "10.96.0.20"}}),
        );
        let spec = &svc["spec"];
        assert_eq!(spec["type"], "NodePort");
        assert_eq!(spec["ports"][0]["targetPort"], "http");
        assert_eq!(spec["ports"][0]["protocol"], "UDP");
        assert_eq!(spec["externalTrafficPolicy"], "Local");
        assert_eq!(spec["clusterIPs"], json!(["10.96.0.20"]));
    }

    #[test]
    fn node_port_and_load_balancer_get_external_traffic_policy() {
        for t in ["NodePort", "LoadBalancer"] {
            let svc = defaulted(Resource::Services, json!({"spec": {"type": t, "ports": [{"port": 80}]}}));
            assert_eq!(svc["spec"]["externalTrafficPolicy"], "Cluster", "{t}");
        }
        let lb = defaulted(Resource::Services, json!({"spec": {"type": "LoadBalancer"}}));
        assert_eq!(lb["spec"]["allocateLoadBalancerNodePorts"], true);
    }

    #[test]
    fn headless_service_families() {
        let with_selector = defaulted(
            Resource::Services,
            json!({"spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
        );
        assert_eq!(with_selector["spec"]["clusterIPs"], json!(["None"]));
        assert_eq!(with_selector["spec"]["ipFamilyPolicy"], "SingleStack");
        assert_eq!(with_selector["spec"]["ipFamilies"], json!(["IPv4"]));
        let selectorless = defaulted(Resource::Services, json!({"spec": {"clusterIP": "None"}}));
        assert_eq!(selectorless["spec"]["ipFamilyPolicy"], "RequireDualStack");
        assert_eq!(selectorless["spec"]["ipFamilies"], json!(["IPv4", "IPv6"]));
    }

    #[test]
    fn external_name_gets_no_ip_fields() {
        let svc = defaulted(
            Resource::Services,
            json!({"spec": {"type": "ExternalName", "externalName": "db.example.com"}}),
        );
        assert!(svc["spec"].get("ipFamilies").is_none());
        assert!(svc["spec"].get("ipFamilyPolicy").is_none());
        assert!(svc["spec"].get("internalTrafficPolicy").is_none());
    }

    #[test]
    fn client_ip_affinity_gets_timeout_and_none_drops_config() {
        let svc = defaulted(Resource::Services, json!({"spec": {"sessionAffinity": "ClientIP"}}));
        assert_eq!(svc["spec"]["sessionAffinityConfig"]["clientIP"]["timeoutSeconds"], 10800);
        let svc = defaulted(
            Resource::Services,
            json!({"spec": {"sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 5}}}}),
        );
        assert!(svc["spec"].get("sessionAffinityConfig").is_none());
    }

    #[test]
    fn image_pull_policy_follows_the_tag() {
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("registry.local:5000/team/nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:1.27"), "IfNotPresent");
        assert_eq!(image_pull_policy("registry.local:5000/nginx:1.27"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx@sha256:0123abcd"), "IfNotPresent");
        assert_eq!(image_pull_policy("nginx:latest@sha256:0123abcd"), "Always");
        assert_eq!(image_pull_policy("Nginx"), "IfNotPresent");
    }

    #[test]
    fn pod_defaults() {
        let pod = defaulted(
            Resource::Pods,
            json!({"metadata": {"name": "web"}, "spec": {"containers": [
                {"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                 "readinessProbe": {"httpGet": {"port": 80}}},
                {"name": "side", "image": "busybox:1.36", "imagePullPolicy": "Never"}
            ]}}),
        );
        let spec = &pod["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["securityContext"], json!({}));
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["priority"], 0);
        assert_eq!(spec["tolerations"].as_array().map(Vec::len), Some(2));
        let web = &spec["containers"][0];
        assert_eq!(web["imagePullPolicy"], "Always");
        assert_eq!(web["terminationMessagePath"], "/dev/termination-log");
        assert_eq!(web["terminationMessagePolicy"], "File");
        assert_eq!(web["ports"][0]["protocol"], "TCP");
        assert_eq!(web["resources"], json!({}));
        let probe = &web["readinessProbe"];
        assert_eq!((probe["timeoutSeconds"].clone(), probe["periodSeconds"].clone()), (json!(1), json!(10)));
        assert_eq!(probe["httpGet"]["path"], "/");
        assert_eq!(probe["httpGet"]["scheme"], "HTTP");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "Never");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(pod["status"]["qosClass"], "BestEffort");
    }

    #[test]
    fn pod_qos_classes() {
        let qos = |resources: Value| {
            let pod = defaulted(
                Resource::Pods,
                json!({"spec": {"containers": [{"name": "c", "image": "x:1", "resources": resources}]}}),
            );
            pod["status"]["qosClass"].clone()
        };
        assert_eq!(qos(json!({"limits": {"cpu": "500m", "memory": "128Mi"}})), "Guaranteed");
        assert_eq!(
            qos(
                json!({"requests": {"cpu": "0.5", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "134217728"}})
            ),
            "Guaranteed"
        );
        assert_eq!(qos(json!({"requests": {"cpu": "100m"}})), "Burstable");
        assert_eq!(
            qos(
                json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "64Mi"}})
            ),
            "Burstable"
        );
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("100m"), Some(100_000_000));
        assert_eq!(parse_quantity("1"), Some(1_000_000_000));
        assert_eq!(parse_quantity("0.1"), Some(100_000_000));
        assert_eq!(parse_quantity("1Ki"), Some(1024 * 1_000_000_000));
        assert_eq!(parse_quantity("1e3"), Some(1_000 * 1_000_000_000));
        assert_eq!(parse_quantity("bogus"), None);
    }

    #[test]
    fn deployment_defaults() {
        let d = defaulted(
            Resource::Deployments,
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}}),
        );
        let spec = &d["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(
            spec["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["progressDeadlineSeconds"], 600);
        let tspec = &spec["template"]["spec"];
        assert_eq!(tspec["restartPolicy"], "Always");
        assert_eq!(tspec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        // Pod-only defaults stay off templates.
        assert!(tspec.get("enableServiceLinks").is_none());
        assert!(tspec.get("serviceAccountName").is_none());
        let recreate = defaulted(
            Resource::Deployments,
            json!({"spec": {"strategy": {"type": "Recreate"}, "replicas": 0}}),
        );
        assert!(recreate["spec"]["strategy"].get("rollingUpdate").is_none());
        assert_eq!(recreate["spec"]["replicas"], 0);
    }

    #[test]
    fn replica_set_and_stateful_set_defaults() {
        let rs = defaulted(Resource::ReplicaSets, json!({"spec": {}}));
        assert_eq!(rs["spec"]["replicas"], 1);
        assert_eq!(rs["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
        let sts = defaulted(
            Resource::StatefulSets,
            json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"]}}]}}),
        );
        let spec = &sts["spec"];
        assert_eq!(spec["replicas"], 1);
        assert_eq!(spec["podManagementPolicy"], "OrderedReady");
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(
            spec["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert_eq!(spec["volumeClaimTemplates"][0]["spec"]["volumeMode"], "Filesystem");
        assert_eq!(spec["volumeClaimTemplates"][0]["status"]["phase"], "Pending");
    }

    #[test]
    fn daemon_set_defaults() {
        let ds = defaulted(
            Resource::DaemonSets,
            json!({"spec": {"template": {"spec": {"containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"}]}}}}),
        );
        let spec = &ds["spec"];
        assert_eq!(
            spec["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}})
        );
        assert_eq!(spec["revisionHistoryLimit"], 10);
        assert_eq!(spec["template"]["spec"]["restartPolicy"], "Always");
        assert_eq!(spec["template"]["spec"]["containers"][0]["imagePullPolicy"], "IfNotPresent");
        let on_delete = defaulted(
            Resource::DaemonSets,
            json!({"spec": {"updateStrategy": {"type": "OnDelete"}, "revisionHistoryLimit": 0}}),
        );
        assert_eq!(on_delete["spec"]["updateStrategy"], json!({"type": "OnDelete"}));
        assert_eq!(on_delete["spec"]["revisionHistoryLimit"], 0);
        let partial = defaulted(
            Resource::DaemonSets,
            json!({"spec": {"updateStrategy": {"rollingUpdate": {"maxUnavailable": "10%"}}}}),
        );
        assert_eq!(
            partial["spec"]["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "10%", "maxSurge": 0}})
        );
    }

    #[test]
    fn namespace_defaults() {
        let ns =
            defaulted(Resource::Namespaces, json!({"metadata": {"name": "shop", "labels": {"team": "a"}}}));
        assert_eq!(ns["metadata"]["labels"], json!({"team": "a", "kubernetes.io/metadata.name": "shop"}));
        assert_eq!(ns["status"]["phase"], "Active");
    }

    #[test]
    fn network_policy_types() {
        let ingress_only =
            defaulted(Resource::NetworkPolicies, json!({"spec": {"ingress": [{"ports": [{"port": 80}]}]}}));
        assert_eq!(ingress_only["spec"]["policyTypes"], json!(["Ingress"]));
        assert_eq!(ingress_only["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        let both = defaulted(Resource::NetworkPolicies, json!({"spec": {"egress": [{}]}}));
        assert_eq!(both["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        let explicit = defaulted(Resource::NetworkPolicies, json!({"spec": {"policyTypes": ["Egress"]}}));
        assert_eq!(explicit["spec"]["policyTypes"], json!(["Egress"]));
    }

    #[test]
    fn endpoint_slice_ports() {
        let slice =
            defaulted(Resource::EndpointSlices, json!({"addressType": "IPv4", "ports": [{"port": 80}]}));
        assert_eq!(slice["ports"][0], json!({"name": "", "port": 80, "protocol": "TCP"}));
    }

    #[test]
    fn defaulting_is_idempotent() {
        for (resource, obj) in [
            (Resource::Pods, json!({"spec": {"containers": [{"name": "c", "image": "x"}]}})),
            (Resource::Services, json!({"spec": {"clusterIP": "None"}})),
            (Resource::StatefulSets, json!({"spec": {}})),
            (Resource::DaemonSets, json!({"spec": {}})),
        ] {
            let once = defaulted(resource, obj);
            assert_eq!(defaulted(resource, once.clone()), once);
        }
    }
}
