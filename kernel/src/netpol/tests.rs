//! The policy × peer × port → verdict table, plus upsert/remove and validation errors.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::{Value, json};

use super::*;

// ---------------------------------------------------------------------------------------------
// The world: namespaces and pods every case draws from
// ---------------------------------------------------------------------------------------------

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn namespaces() -> BTreeMap<String, BTreeMap<String, String>> {
    [
        ("demo", vec![("team", "shop")]),
        ("monitoring", vec![("team", "ops")]),
        ("other", vec![("team", "other")]),
        ("kube-system", vec![]),
    ]
    .into_iter()
    .map(|(ns, mut l)| {
        l.push(("kubernetes.io/metadata.name", ns));
        (ns.to_string(), labels(&l))
    })
    .collect()
}

fn port(name: &str, port: u16, protocol: Protocol) -> NamedPort {
    NamedPort { name: name.into(), port, protocol }
}

fn pod(key: &str, l: &[(&str, &str)], ip: &str, ports: Vec<NamedPort>) -> PodMeta {
    let (namespace, name) = key.split_once('/').unwrap();
    PodMeta {
        namespace: namespace.into(),
        name: name.into(),
        labels: labels(l),
        ip: ip.parse().unwrap(),
        ports,
    }
}

fn pods() -> BTreeMap<&'static str, PodMeta> {
    use Protocol::{Tcp, Udp};
    [
        (
            "demo/web",
            pod(
                "demo/web",
                &[("app", "web")],
                "10.244.1.10",
                vec![port("http", 8080, Tcp), port("dns", 53, Udp), port("metrics", 9090, Tcp)],
            ),
        ),
        // Has its own `http` port, on 3000: egress named ports must not resolve here.
        (
            "demo/client",
            pod("demo/client", &[("app", "client")], "10.244.1.11", vec![port("http", 3000, Tcp)]),
        ),
        (
            "demo/db",
            pod("demo/db", &[("app", "db"), ("tier", "backend")], "10.244.1.12", vec![port("pg", 5432, Tcp)]),
        ),
        ("monitoring/prom", pod("monitoring/prom", &[("app", "prom")], "10.244.2.5", vec![])),
        ("monitoring/client", pod("monitoring/client", &[("app", "client")], "10.244.2.6", vec![])),
        ("other/client", pod("other/client", &[("app", "client")], "10.244.3.7", vec![])),
        (
            "kube-system/coredns",
            pod("kube-system/coredns", &[("k8s-app", "kube-dns")], "10.244.0.3", vec![port("dns", 53, Udp)]),
        ),
    ]
    .into_iter()
    .collect()
}

/// The node the subject pods run on, and an address outside the cluster.
const NODE: &str = "172.18.0.2";
const OUTSIDE: &str = "203.0.113.7";

// ---------------------------------------------------------------------------------------------
// Policies, as manifests
// ---------------------------------------------------------------------------------------------

fn np(name: &str, spec: Value) -> Value {
    np_in("demo", name, spec)
}

fn np_in(namespace: &str, name: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"namespace": namespace, "name": name},
        "spec": spec,
    })
}

fn default_deny_ingress() -> Value {
    np("default-deny", json!({"podSelector": {}, "policyTypes": ["Ingress"]}))
}

fn default_deny_egress() -> Value {
    np("default-deny-egress", json!({"podSelector": {}, "policyTypes": ["Egress"]}))
}

/// Ingress to app=web from the given peers on the given ports.
fn to_web(name: &str, from: Value, ports: Value) -> Value {
    np(
        name,
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": from, "ports": ports}],
        }),
    )
}

/// Ingress to app=web from anywhere on the given ports.
fn web_ports(ports: Value) -> Value {
    np(
        "web-ports",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "ingress": [{"ports": ports}],
        }),
    )
}

/// Egress of app=client to anywhere on the given ports.
fn client_egress_ports(ports: Value) -> Value {
    np(
        "client-egress",
        json!({
            "podSelector": {"matchLabels": {"app": "client"}},
            "policyTypes": ["Egress"],
            "egress": [{"ports": ports}],
        }),
    )
}

fn allow_client() -> Value {
    to_web("allow-client", json!([{"podSelector": {"matchLabels": {"app": "client"}}}]), Value::Null)
}

fn allow_ops() -> Value {
    to_web("allow-ops", json!([{"namespaceSelector": {"matchLabels": {"team": "ops"}}}]), Value::Null)
}

/// Ingress to app=web from pods whose labels satisfy one match expression.
fn from_expr(key: &str, operator: &str, values: &[&str]) -> Value {
    let mut expr = json!({"key": key, "operator": operator});
    if !values.is_empty() {
        expr["values"] = json!(values);
    }
    to_web("from-expr", json!([{"podSelector": {"matchExpressions": [expr]}}]), Value::Null)
}

fn install(manifests: &[Value]) -> Policies {
    let mut policies = Policies::new();
    for m in manifests {
        let policy: NetworkPolicy = serde_json::from_value(m.clone()).unwrap();
        policies.upsert(&policy).unwrap();
    }
    policies
}

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

struct Case {
    name: &'static str,
    policies: Vec<Value>,
    direction: Direction,
    /// `ns/name` of a pod in [`pods`].
    subject: &'static str,
    /// `ns/name` of a pod in [`pods`] (its IP is the peer IP), or a non-pod IP.
    peer: &'static str,
    port: u16,
    protocol: Protocol,
    from_own_node: bool,
    /// The verdict's Display, which spells out variant, policy, rule index and direction.
    want: &'static str,
}

fn ingress(
    name: &'static str,
    policies: Vec<Value>,
    subject: &'static str,
    peer: &'static str,
    port: u16,
    protocol: Protocol,
    want: &'static str,
) -> Case {
    Case {
        name,
        policies,
        direction: Direction::Ingress,
        subject,
        peer,
        port,
        protocol,
        from_own_node: false,
        want,
    }
}

fn egress(
    name: &'static str,
    policies: Vec<Value>,
    subject: &'static str,
    peer: &'static str,
    port: u16,
    protocol: Protocol,
    want: &'static str,
) -> Case {
    Case { direction: Direction::Egress, ..ingress(name, policies, subject, peer, port, protocol, want) }
}

const NOT_ISOLATED_IN: &str = "not isolated: no policy selects the pod for ingress";
const NOT_ISOLATED_OUT: &str = "not isolated: no policy selects the pod for egress";

fn cases() -> Vec<Case> {
    use Protocol::{Sctp, Tcp, Udp};
    let deny_in = "denied: no ingress rule allowed it (selected by demo/default-deny)";
    let deny_out = "denied: no egress rule allowed it (selected by demo/default-deny-egress)";
    let and_peer = || {
        to_web(
            "and",
            json!([{"namespaceSelector": {"matchLabels": {"team": "ops"}},
                    "podSelector": {"matchLabels": {"app": "client"}}}]),
            Value::Null,
        )
    };
    let or_peers = || {
        to_web(
            "or",
            json!([{"namespaceSelector": {"matchLabels": {"team": "ops"}}},
                   {"podSelector": {"matchLabels": {"app": "client"}}}]),
            Value::Null,
        )
    };
    let block = || {
        to_web(
            "block",
            json!([{"ipBlock": {"cidr": "203.0.113.0/24", "except": ["203.0.113.128/25"]}}]),
            Value::Null,
        )
    };
    vec![
        // Default allow.
        ingress("no policies", vec![], "demo/web", "demo/client", 8080, Tcp, NOT_ISOLATED_IN),
        egress("no policies, egress", vec![], "demo/web", OUTSIDE, 443, Tcp, NOT_ISOLATED_OUT),
        ingress(
            "policy selects other pods only",
            vec![allow_client()],
            "demo/db",
            "demo/web",
            5432,
            Tcp,
            NOT_ISOLATED_IN,
        ),
        ingress(
            "policy in another namespace does not apply",
            vec![np_in("monitoring", "deny-all", json!({"podSelector": {}}))],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            NOT_ISOLATED_IN,
        ),
        // Default deny, and what each leaves open.
        ingress(
            "default-deny ingress",
            vec![default_deny_ingress()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            deny_in,
        ),
        ingress(
            "default-deny ingress, outside peer",
            vec![default_deny_ingress()],
            "demo/web",
            OUTSIDE,
            8080,
            Tcp,
            deny_in,
        ),
        egress(
            "default-deny ingress leaves egress open",
            vec![default_deny_ingress()],
            "demo/web",
            OUTSIDE,
            443,
            Tcp,
            NOT_ISOLATED_OUT,
        ),
        egress(
            "default-deny egress",
            vec![default_deny_egress()],
            "demo/web",
            "demo/db",
            5432,
            Tcp,
            deny_out,
        ),
        egress(
            "default-deny egress, outside",
            vec![default_deny_egress()],
            "demo/web",
            OUTSIDE,
            443,
            Tcp,
            deny_out,
        ),
        ingress(
            "policyTypes Egress only leaves ingress open",
            vec![default_deny_egress()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            NOT_ISOLATED_IN,
        ),
        ingress(
            "policyTypes omitted: Ingress, with no rules = deny all",
            vec![np("default-deny", json!({"podSelector": {}}))],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            deny_in,
        ),
        egress(
            "policyTypes omitted, no egress rules: egress stays open",
            vec![np("default-deny", json!({"podSelector": {}}))],
            "demo/web",
            OUTSIDE,
            443,
            Tcp,
            NOT_ISOLATED_OUT,
        ),
        egress(
            "policyTypes omitted with egress rules: egress isolated too",
            vec![np(
                "internal",
                json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
            )],
            "demo/web",
            OUTSIDE,
            443,
            Tcp,
            "denied: no egress rule allowed it (selected by demo/internal)",
        ),
        egress(
            "policyTypes omitted with egress rules: allowed by rule",
            vec![np(
                "internal",
                json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
            )],
            "demo/web",
            "demo/db",
            5432,
            Tcp,
            "allowed by demo/internal (egress rule 0)",
        ),
        ingress(
            "policyTypes omitted with egress rules: ingress isolated as always",
            vec![np(
                "internal",
                json!({"podSelector": {}, "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}]}),
            )],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/internal)",
        ),
        ingress(
            "ingress: [] denies all",
            vec![np("empty", json!({"podSelector": {}, "policyTypes": ["Ingress"], "ingress": []}))],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/empty)",
        ),
        ingress(
            "ingress: [{}] allows all, even from outside",
            vec![np("allow-all", json!({"podSelector": {}, "ingress": [{}]}))],
            "demo/web",
            OUTSIDE,
            1,
            Udp,
            "allowed by demo/allow-all (ingress rule 0)",
        ),
        ingress(
            "from: [] matches all sources",
            vec![to_web("all-sources", json!([]), json!([{"port": 8080}]))],
            "demo/web",
            OUTSIDE,
            8080,
            Tcp,
            "allowed by demo/all-sources (ingress rule 0)",
        ),
        ingress(
            "rules for a type not in policyTypes are ignored",
            vec![np("egress-only", json!({"podSelector": {}, "policyTypes": ["Egress"], "ingress": [{}]}))],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            NOT_ISOLATED_IN,
        ),
        // From the pod's own node.
        Case {
            from_own_node: true,
            ..ingress(
                "own node bypasses ingress isolation",
                vec![default_deny_ingress()],
                "demo/web",
                NODE,
                8080,
                Tcp,
                "allowed: ingress from the pod's own node",
            )
        },
        ingress(
            "another node's IP is denied",
            vec![default_deny_ingress()],
            "demo/web",
            NODE,
            8080,
            Tcp,
            deny_in,
        ),
        Case {
            from_own_node: true,
            ..ingress("own node, not isolated", vec![], "demo/web", NODE, 8080, Tcp, NOT_ISOLATED_IN)
        },
        Case {
            from_own_node: true,
            ..egress(
                "own node means nothing for egress",
                vec![default_deny_egress()],
                "demo/web",
                NODE,
                10250,
                Tcp,
                deny_out,
            )
        },
        // podSelector peers: the policy's own namespace only.
        ingress(
            "podSelector peer",
            vec![allow_client()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "allowed by demo/allow-client (ingress rule 0)",
        ),
        ingress(
            "podSelector peer, labels differ",
            vec![allow_client()],
            "demo/web",
            "demo/db",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/allow-client)",
        ),
        ingress(
            "podSelector peer, same labels in another namespace",
            vec![allow_client()],
            "demo/web",
            "monitoring/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/allow-client)",
        ),
        ingress(
            "podSelector {} never matches a non-pod",
            vec![to_web("any-pod", json!([{"podSelector": {}}]), Value::Null)],
            "demo/web",
            NODE,
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/any-pod)",
        ),
        // namespaceSelector peers.
        ingress(
            "namespaceSelector peer",
            vec![allow_ops()],
            "demo/web",
            "monitoring/prom",
            8080,
            Tcp,
            "allowed by demo/allow-ops (ingress rule 0)",
        ),
        ingress(
            "namespaceSelector peer, own namespace not matching",
            vec![allow_ops()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/allow-ops)",
        ),
        ingress(
            "namespaceSelector {} = every namespace",
            vec![to_web("any-ns", json!([{"namespaceSelector": {}}]), Value::Null)],
            "demo/web",
            "other/client",
            8080,
            Tcp,
            "allowed by demo/any-ns (ingress rule 0)",
        ),
        ingress(
            "namespaceSelector {} never matches a non-pod",
            vec![to_web("any-ns", json!([{"namespaceSelector": {}}]), Value::Null)],
            "demo/web",
            OUTSIDE,
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/any-ns)",
        ),
        ingress(
            "namespaceSelector on the automatic name label",
            vec![to_web(
                "by-name",
                json!([{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}]),
                Value::Null,
            )],
            "demo/web",
            "other/client",
            8080,
            Tcp,
            "allowed by demo/by-name (ingress rule 0)",
        ),
        // The YAML pitfall: one element with both selectors (AND) vs two elements (OR).
        ingress(
            "AND: both match",
            vec![and_peer()],
            "demo/web",
            "monitoring/client",
            8080,
            Tcp,
            "allowed by demo/and (ingress rule 0)",
        ),
        ingress(
            "AND: namespace matches, pod does not",
            vec![and_peer()],
            "demo/web",
            "monitoring/prom",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/and)",
        ),
        ingress(
            "AND: pod matches, namespace does not",
            vec![and_peer()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/and)",
        ),
        ingress(
            "OR: namespace alone suffices",
            vec![or_peers()],
            "demo/web",
            "monitoring/prom",
            8080,
            Tcp,
            "allowed by demo/or (ingress rule 0)",
        ),
        ingress(
            "OR: pod alone suffices",
            vec![or_peers()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "allowed by demo/or (ingress rule 0)",
        ),
        ingress(
            "OR: the pod element is still own-namespace only",
            vec![or_peers()],
            "demo/web",
            "other/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/or)",
        ),
        // ipBlock.
        ingress(
            "ipBlock: inside cidr",
            vec![block()],
            "demo/web",
            OUTSIDE,
            8080,
            Tcp,
            "allowed by demo/block (ingress rule 0)",
        ),
        ingress(
            "ipBlock: inside except",
            vec![block()],
            "demo/web",
            "203.0.113.200",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/block)",
        ),
        ingress(
            "ipBlock: outside cidr",
            vec![block()],
            "demo/web",
            "198.51.100.1",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/block)",
        ),
        ingress(
            "ipBlock matches a pod by its IP",
            vec![to_web("pods-cidr", json!([{"ipBlock": {"cidr": "10.244.2.0/24"}}]), Value::Null)],
            "demo/web",
            "monitoring/prom",
            8080,
            Tcp,
            "allowed by demo/pods-cidr (ingress rule 0)",
        ),
        ingress(
            "ipBlock of one family never matches the other",
            vec![to_web("v6", json!([{"ipBlock": {"cidr": "::/0"}}]), Value::Null)],
            "demo/web",
            OUTSIDE,
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/v6)",
        ),
        egress(
            "egress ipBlock: internet but not the cluster",
            vec![np(
                "internet",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}),
            )],
            "demo/web",
            OUTSIDE,
            443,
            Tcp,
            "allowed by demo/internet (egress rule 0)",
        ),
        egress(
            "egress ipBlock: except excludes pods",
            vec![np(
                "internet",
                json!({"podSelector": {}, "policyTypes": ["Egress"],
                       "egress": [{"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8"]}}]}]}),
            )],
            "demo/web",
            "demo/db",
            5432,
            Tcp,
            "denied: no egress rule allowed it (selected by demo/internet)",
        ),
        // Numeric ports, ranges, protocols.
        ingress(
            "port number",
            vec![web_ports(json!([{"port": 8080}]))],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "port number, other port",
            vec![web_ports(json!([{"port": 8080}]))],
            "demo/web",
            "demo/client",
            9090,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "protocol defaults to TCP: UDP on the same port denied",
            vec![web_ports(json!([{"port": 8080}]))],
            "demo/web",
            "demo/client",
            8080,
            Udp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "UDP rule, UDP traffic",
            vec![web_ports(json!([{"protocol": "UDP", "port": 53}]))],
            "demo/web",
            "demo/client",
            53,
            Udp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "UDP rule, TCP traffic",
            vec![web_ports(json!([{"protocol": "UDP", "port": 53}]))],
            "demo/web",
            "demo/client",
            53,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "protocol without port: every port of it",
            vec![web_ports(json!([{"protocol": "SCTP"}]))],
            "demo/web",
            "demo/client",
            38412,
            Sctp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "protocol without port: other protocols denied",
            vec![web_ports(json!([{"protocol": "SCTP"}]))],
            "demo/web",
            "demo/client",
            38412,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "ports are ORed",
            vec![web_ports(json!([{"port": 8080}, {"port": 9090}]))],
            "demo/web",
            "demo/client",
            9090,
            Tcp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "endPort: lower bound",
            vec![web_ports(json!([{"port": 32000, "endPort": 32768}]))],
            "demo/web",
            "demo/client",
            32000,
            Tcp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "endPort: upper bound inclusive",
            vec![web_ports(json!([{"port": 32000, "endPort": 32768}]))],
            "demo/web",
            "demo/client",
            32768,
            Tcp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "endPort: below",
            vec![web_ports(json!([{"port": 32000, "endPort": 32768}]))],
            "demo/web",
            "demo/client",
            31999,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "endPort: above",
            vec![web_ports(json!([{"port": 32000, "endPort": 32768}]))],
            "demo/web",
            "demo/client",
            32769,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "peer and port must both match",
            vec![to_web(
                "both",
                json!([{"podSelector": {"matchLabels": {"app": "client"}}}]),
                json!([{"port": 8080}]),
            )],
            "demo/web",
            "demo/client",
            9090,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/both)",
        ),
        // Named ports: resolved on the destination pod.
        ingress(
            "named port, ingress",
            vec![web_ports(json!([{"port": "http"}]))],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "named port, ingress, another port of the pod",
            vec![web_ports(json!([{"port": "http"}]))],
            "demo/web",
            "demo/client",
            9090,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        ingress(
            "named port, ingress, pod without that name",
            vec![np("all-http", json!({"podSelector": {}, "ingress": [{"ports": [{"port": "http"}]}]}))],
            "demo/db",
            "demo/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/all-http)",
        ),
        ingress(
            "named port with its protocol",
            vec![web_ports(json!([{"protocol": "UDP", "port": "dns"}]))],
            "demo/web",
            "demo/client",
            53,
            Udp,
            "allowed by demo/web-ports (ingress rule 0)",
        ),
        ingress(
            "named port: TCP rule does not resolve a UDP container port",
            vec![web_ports(json!([{"port": "dns"}]))],
            "demo/web",
            "demo/client",
            53,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/web-ports)",
        ),
        egress(
            "named port, egress: resolved on the destination pod",
            vec![client_egress_ports(json!([{"port": "http"}]))],
            "demo/client",
            "demo/web",
            8080,
            Tcp,
            "allowed by demo/client-egress (egress rule 0)",
        ),
        egress(
            "named port, egress: not on the source pod",
            vec![client_egress_ports(json!([{"port": "http"}]))],
            "demo/client",
            "demo/web",
            3000,
            Tcp,
            "denied: no egress rule allowed it (selected by demo/client-egress)",
        ),
        egress(
            "named port, egress: destination without that name",
            vec![client_egress_ports(json!([{"port": "http"}]))],
            "demo/client",
            "demo/db",
            8080,
            Tcp,
            "denied: no egress rule allowed it (selected by demo/client-egress)",
        ),
        egress(
            "named port, egress: never a non-pod destination",
            vec![client_egress_ports(json!([{"port": "http"}]))],
            "demo/client",
            OUTSIDE,
            8080,
            Tcp,
            "denied: no egress rule allowed it (selected by demo/client-egress)",
        ),
        // Union of policies; rule indexes; sorted `selected_by`.
        ingress(
            "union: first policy allows",
            vec![allow_ops(), allow_client()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "allowed by demo/allow-client (ingress rule 0)",
        ),
        ingress(
            "union: second policy allows",
            vec![allow_ops(), allow_client()],
            "demo/web",
            "monitoring/prom",
            8080,
            Tcp,
            "allowed by demo/allow-ops (ingress rule 0)",
        ),
        ingress(
            "union: neither allows, both named, sorted",
            vec![allow_ops(), allow_client(), default_deny_egress()],
            "demo/web",
            "other/client",
            8080,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/allow-client, demo/allow-ops)",
        ),
        ingress(
            "union with default deny: the allow still wins",
            vec![default_deny_ingress(), allow_client()],
            "demo/web",
            "demo/client",
            8080,
            Tcp,
            "allowed by demo/allow-client (ingress rule 0)",
        ),
        egress(
            "rule index: second egress rule (DNS to kube-system)",
            vec![np(
                "egress",
                json!({"podSelector": {}, "policyTypes": ["Egress"], "egress": [
                    {"to": [{"podSelector": {"matchLabels": {"app": "db"}}}], "ports": [{"port": 5432}]},
                    {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                             "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                     "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                ]}),
            )],
            "demo/web",
            "kube-system/coredns",
            53,
            Udp,
            "allowed by demo/egress (egress rule 1)",
        ),
        // matchExpressions on peers: In, NotIn, Exists, DoesNotExist.
        ingress(
            "In: value listed",
            vec![from_expr("app", "In", &["client", "prom"])],
            "demo/web",
            "demo/client",
            80,
            Tcp,
            "allowed by demo/from-expr (ingress rule 0)",
        ),
        ingress(
            "In: value not listed",
            vec![from_expr("app", "In", &["client", "prom"])],
            "demo/web",
            "demo/db",
            80,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/from-expr)",
        ),
        ingress(
            "NotIn: key absent matches",
            vec![from_expr("tier", "NotIn", &["backend"])],
            "demo/web",
            "demo/client",
            80,
            Tcp,
            "allowed by demo/from-expr (ingress rule 0)",
        ),
        ingress(
            "NotIn: value listed",
            vec![from_expr("tier", "NotIn", &["backend"])],
            "demo/web",
            "demo/db",
            80,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/from-expr)",
        ),
        ingress(
            "Exists: present",
            vec![from_expr("tier", "Exists", &[])],
            "demo/web",
            "demo/db",
            80,
            Tcp,
            "allowed by demo/from-expr (ingress rule 0)",
        ),
        ingress(
            "Exists: absent",
            vec![from_expr("tier", "Exists", &[])],
            "demo/web",
            "demo/client",
            80,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/from-expr)",
        ),
        ingress(
            "DoesNotExist: absent",
            vec![from_expr("tier", "DoesNotExist", &[])],
            "demo/web",
            "demo/client",
            80,
            Tcp,
            "allowed by demo/from-expr (ingress rule 0)",
        ),
        ingress(
            "DoesNotExist: present",
            vec![from_expr("tier", "DoesNotExist", &[])],
            "demo/web",
            "demo/db",
            80,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/from-expr)",
        ),
        ingress(
            "matchLabels AND matchExpressions in spec.podSelector",
            vec![np(
                "backend",
                json!({"podSelector": {"matchLabels": {"app": "db"},
                                       "matchExpressions": [{"key": "tier", "operator": "In", "values": ["backend"]}]}}),
            )],
            "demo/db",
            "demo/web",
            5432,
            Tcp,
            "denied: no ingress rule allowed it (selected by demo/backend)",
        ),
        ingress(
            "spec.podSelector with an unmet expression selects nothing",
            vec![np(
                "frontend",
                json!({"podSelector": {"matchLabels": {"app": "db"},
                                       "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["backend"]}]}}),
            )],
            "demo/db",
            "demo/web",
            5432,
            Tcp,
            NOT_ISOLATED_IN,
        ),
    ]
}

fn run(policies: &Policies, c: &Case) -> Verdict {
    let pods = pods();
    let subject = &pods[c.subject];
    let (peer_ip, peer_pod): (IpAddr, _) = match pods.get(c.peer) {
        Some(p) => (p.ip, Some(p)),
        None => (c.peer.parse().unwrap(), None),
    };
    policies.verdict(
        c.direction,
        subject,
        peer_ip,
        peer_pod,
        c.port,
        c.protocol,
        c.from_own_node,
        &namespaces(),
    )
}

#[test]
fn verdict_table() {
    let mut failures = Vec::new();
    let cases = cases();
    for c in &cases {
        let got = run(&install(&c.policies), c);
        // allowed() must agree with the message.
        let want_allowed = !c.want.starts_with("denied");
        if got.to_string() != c.want || got.allowed() != want_allowed {
            failures.push(format!(
                "{}:\n    want {}\n    got  {} (allowed: {})",
                c.name,
                c.want,
                got,
                got.allowed()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn verdict_values() {
    let policies = install(&[allow_client(), allow_ops()]);
    let cases = cases();
    let case = |name| cases.iter().find(|c| c.name == name).unwrap();
    let allowed = run(&policies, case("podSelector peer"));
    assert_eq!(
        allowed,
        Verdict::Allowed { direction: Direction::Ingress, policy: "demo/allow-client".into(), rule: 0 }
    );
    let denied = run(&policies, case("union: neither allows, both named, sorted"));
    assert_eq!(
        denied,
        Verdict::Denied {
            direction: Direction::Ingress,
            selected_by: vec!["demo/allow-client".into(), "demo/allow-ops".into()],
        }
    );
    assert!(!denied.allowed());
    assert!(Verdict::FromNode.allowed());
    assert!(Verdict::NotIsolated { direction: Direction::Egress }.allowed());
}

// ---------------------------------------------------------------------------------------------
// Upsert, replace, remove
// ---------------------------------------------------------------------------------------------

fn parse(v: Value) -> NetworkPolicy {
    serde_json::from_value(v).unwrap()
}

#[test]
fn upsert_replaces_and_remove_removes() {
    let pods = pods();
    let (web, client) = (&pods["demo/web"], &pods["demo/client"]);
    let ns = namespaces();
    let check = |p: &Policies| {
        p.verdict(Direction::Ingress, web, client.ip, Some(client), 8080, Protocol::Tcp, false, &ns)
            .to_string()
    };
    let mut policies = Policies::new();
    assert!(policies.is_empty());

    policies.upsert(&parse(np("web", json!({"podSelector": {}})))).unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(check(&policies), "denied: no ingress rule allowed it (selected by demo/web)");

    // Same namespace and name: replaced, not added.
    policies.upsert(&parse(np("web", json!({"podSelector": {}, "ingress": [{}]})))).unwrap();
    assert_eq!(policies.len(), 1);
    assert_eq!(check(&policies), "allowed by demo/web (ingress rule 0)");

    // Same name in another namespace: a different policy.
    policies.upsert(&parse(np_in("other", "web", json!({"podSelector": {}})))).unwrap();
    assert_eq!(policies.len(), 2);
    assert_eq!(check(&policies), "allowed by demo/web (ingress rule 0)");

    assert!(policies.remove("demo", "web"));
    assert_eq!(policies.len(), 1);
    assert_eq!(check(&policies), NOT_ISOLATED_IN);
    assert!(!policies.remove("demo", "web"));
    assert!(!policies.remove("nowhere", "web"));
    assert!(policies.remove("other", "web"));
    assert!(policies.is_empty());
}

#[test]
fn a_refused_update_keeps_the_previous_version() {
    let mut policies = Policies::new();
    policies.upsert(&parse(np("web", json!({"podSelector": {}})))).unwrap();
    let bad = np(
        "web",
        json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["web"]}]}}),
    );
    assert!(policies.upsert(&parse(bad)).is_err());
    assert_eq!(policies.len(), 1);
    let pods = pods();
    let (web, client) = (&pods["demo/web"], &pods["demo/client"]);
    let v = policies.verdict(
        Direction::Ingress,
        web,
        client.ip,
        Some(client),
        80,
        Protocol::Tcp,
        false,
        &namespaces(),
    );
    assert_eq!(v.to_string(), "denied: no ingress rule allowed it (selected by demo/web)");
}

#[test]
fn a_namespace_not_known_has_no_labels() {
    let policies = install(&[
        to_web("any-ns", json!([{"namespaceSelector": {}}]), Value::Null),
        to_web(
            "no-team",
            json!([{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}}]),
            Value::Null,
        ),
    ]);
    let pods = pods();
    let web = &pods["demo/web"];
    let stray = pod("new-ns/x", &[], "10.244.9.9", vec![]);
    let empty: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let v =
        policies.verdict(Direction::Ingress, web, stray.ip, Some(&stray), 80, Protocol::Tcp, false, &empty);
    assert_eq!(v.to_string(), "allowed by demo/any-ns (ingress rule 0)");
    let policies = install(&[to_web(
        "no-team",
        json!([{"namespaceSelector": {"matchExpressions": [{"key": "team", "operator": "DoesNotExist"}]}}]),
        Value::Null,
    )]);
    let v =
        policies.verdict(Direction::Ingress, web, stray.ip, Some(&stray), 80, Protocol::Tcp, false, &empty);
    assert_eq!(v.to_string(), "allowed by demo/no-team (ingress rule 0)");
}

// ---------------------------------------------------------------------------------------------
// Refused policies
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_policies_are_refused_with_the_apiservers_message() {
    let sel_expr = |expr: Value| json!({"podSelector": {"matchExpressions": [expr]}});
    let peer =
        |peer: Value| json!({"podSelector": {}, "ingress": [{}, {"from": [{"podSelector": {}}, peer]}]});
    let ports = |port: Value| json!({"podSelector": {}, "egress": [{"ports": [port]}]});
    let cases: Vec<(Value, &str)> = vec![
        (
            np("p", sel_expr(json!({"key": "app", "operator": "Equals", "values": ["web"]}))),
            r#"spec.podSelector.matchExpressions[0].operator: Invalid value: "Equals": not a valid selector operator"#,
        ),
        (
            np("p", sel_expr(json!({"key": "app", "operator": "In"}))),
            "spec.podSelector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            np("p", sel_expr(json!({"key": "app", "operator": "Exists", "values": ["web"]}))),
            "spec.podSelector.matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        ),
        (
            np(
                "p",
                peer(
                    json!({"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]}}),
                ),
            ),
            r#"spec.ingress[1].from[1].namespaceSelector.matchExpressions[0].operator: Invalid value: "in": not a valid selector operator"#,
        ),
        (
            np("p", peer(json!({"ipBlock": {"cidr": "10.0.0.0/33"}}))),
            r#"spec.ingress[1].from[1].ipBlock.cidr: Invalid value: "10.0.0.0/33": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
        ),
        (
            np("p", peer(json!({"ipBlock": {"cidr": "10.0.0.0"}}))),
            r#"spec.ingress[1].from[1].ipBlock.cidr: Invalid value: "10.0.0.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"#,
        ),
        (
            np("p", peer(json!({"ipBlock": {"cidr": ""}}))),
            "spec.ingress[1].from[1].ipBlock.cidr: Required value",
        ),
        (
            np(
                "p",
                peer(json!({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "192.168.0.0/16"]}})),
            ),
            r#"spec.ingress[1].from[1].ipBlock.except[1]: Invalid value: "192.168.0.0/16": must be a strict subset of `cidr`"#,
        ),
        (
            np("p", peer(json!({"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}))),
            r#"spec.ingress[1].from[1].ipBlock.except[0]: Invalid value: "10.0.0.0/8": must be a strict subset of `cidr`"#,
        ),
        (
            np("p", peer(json!({"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}))),
            "spec.ingress[1].from[1]: Forbidden: may not specify both ipBlock and another peer",
        ),
        (np("p", peer(json!({}))), "spec.ingress[1].from[1]: Required value: must specify a peer"),
        (
            np("p", ports(json!({"protocol": "ICMP"}))),
            r#"spec.egress[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "TCP", "UDP", "SCTP""#,
        ),
        (
            np("p", ports(json!({"port": 0}))),
            "spec.egress[0].ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive",
        ),
        (
            np("p", ports(json!({"port": 8080, "endPort": 70000}))),
            "spec.egress[0].ports[0].endPort: Invalid value: 70000: must be between 1 and 65535, inclusive",
        ),
        (
            np("p", ports(json!({"port": 8080, "endPort": 80}))),
            "spec.egress[0].ports[0].endPort: Invalid value: 8080: must be greater than or equal to `port`",
        ),
        (
            np("p", ports(json!({"port": "http", "endPort": 8090}))),
            "spec.egress[0].ports[0].endPort: Invalid value: 8090: may not be specified when `port` is non-numeric",
        ),
        (
            np("p", ports(json!({"endPort": 8090}))),
            "spec.egress[0].ports[0].endPort: Invalid value: 8090: may not be specified when `port` is not specified",
        ),
        (
            np("p", json!({"podSelector": {}, "policyTypes": ["Egress", "Both"]})),
            r#"spec.policyTypes[1]: Unsupported value: "Both": supported values: "Ingress", "Egress""#,
        ),
        (
            json!({"metadata": {"name": "p"}, "spec": {"podSelector": {}}}),
            "metadata.namespace: Required value",
        ),
        (
            json!({"metadata": {"namespace": "demo"}, "spec": {"podSelector": {}}}),
            "metadata.name: Required value: name or generateName is required",
        ),
    ];
    for (manifest, want) in cases {
        let mut policies = Policies::new();
        let err = policies.upsert(&parse(manifest)).unwrap_err();
        assert_eq!(err.to_string(), want);
        assert!(policies.is_empty(), "{want}: a refused policy must not be installed");
    }
}

#[test]
fn the_error_is_typed() {
    let bad = np(
        "p",
        json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Equals", "values": ["web"]}]}}),
    );
    let err = Policies::new().upsert(&parse(bad)).unwrap_err();
    assert_eq!(
        err,
        PolicyError::Invalid {
            field: "spec.podSelector.matchExpressions[0].operator".into(),
            value: json!("Equals"),
            detail: "not a valid selector operator",
        }
    );
}

#[test]
fn cidrs_parse_as_the_apiserver_parses_them() {
    let cases = [
        ("10.0.0.0/8", Some("10.0.0.0/8")),
        // Host bits are dropped, as Go's ParseCIDR does.
        ("10.1.2.3/8", Some("10.0.0.0/8")),
        // Leading zeros are decimal (ParseCIDRSloppy).
        ("010.001.0.0/16", Some("10.1.0.0/16")),
        ("::ffff:10.0.0.0/104", Some("10.0.0.0/8")),
        ("2001:db8::1/64", Some("2001:db8::/64")),
        ("10.0.0.0/33", None),
        ("10.0.0.0/", None),
        ("10.0.0.0/+8", None),
        ("10.0.0/8", None),
        ("1000.0.0.0/8", None),
        ("::ffff:10.0.0.0/95", None),
    ];
    for (input, want) in cases {
        assert_eq!(parse_cidr_sloppy(input).map(|n| n.to_string()).as_deref(), want, "{input}");
    }
}
