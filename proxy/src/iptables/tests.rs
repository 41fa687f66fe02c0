//! The iptables proxier's output against upstream's own expectations.

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::{core::v1::Service, discovery::v1::EndpointSlice};

use super::*;
use crate::model::{Tracker, fixtures::*};

/// The facts file's excerpt of upstream `TestOverallIPTablesRulesWithMultipleServices`, as given.
const UPSTREAM_SVC4: &str = r#"*nat
:KUBE-SERVICES - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
COMMIT
*filter
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
COMMIT
"#;

/// The upstream test's settings: pod CIDR 10.0.0.0/8, and a fake iptables without
/// `--random-fully`.
fn upstream_opts() -> Options {
    Options { cluster_cidr: Some("10.0.0.0/8".parse().unwrap()), masquerade_all: false, random_fully: false }
}

fn snapshot(services: &[Service], slices: &[EndpointSlice]) -> Snapshot<ServicePortInfo> {
    let mut t = Tracker::new("node1");
    for s in services {
        t.service_applied(Arc::new(s.clone()));
    }
    for s in slices {
        t.slice_applied(Arc::new(s.clone()));
    }
    let mut snap = Snapshot::<ServicePortInfo>::default();
    t.update(&mut snap, true);
    snap
}

fn upstream_world() -> Snapshot<ServicePortInfo> {
    snapshot(
        &[
            service("ns4", "svc4", "172.30.0.44", &[("p80", 80, "TCP")]),
            service("ns6", "svc6", "172.30.0.46", &[("p80", 80, "TCP")]),
        ],
        &[slice(
            "ns4",
            "svc4",
            "svc4-abc",
            ("p80", 80, "TCP"),
            &[ready("10.180.0.5", "node2"), ready("10.180.0.4", "node2")],
        )],
    )
}

/// (table, chain).
type Chain = (String, String);

/// Rules grouped by (table, chain), in order, plus every declared chain.
fn by_chain(text: &str) -> (BTreeMap<Chain, Vec<String>>, Vec<Chain>) {
    let (mut table, mut rules, mut decls) = (String::new(), BTreeMap::new(), Vec::new());
    for line in text.lines() {
        if let Some(t) = line.strip_prefix('*') {
            table = t.to_string();
        } else if let Some(d) = line.strip_prefix(':') {
            decls.push((table.clone(), d.split(' ').next().unwrap().to_string()));
        } else if let Some(rest) = line.strip_prefix("-A ") {
            let chain = rest.split(' ').next().unwrap().to_string();
            rules.entry((table.clone(), chain)).or_insert_with(Vec::new).push(line.to_string());
        }
    }
    (rules, decls)
}

#[test]
fn chain_names_are_upstreams_hashes() {
    let web = service_chains("default/web:http", Protocol::Tcp);
    assert_eq!(&*web.svc, "KUBE-SVC-CDGGSHYLG3RE2FKL");
    assert_eq!(&*web.svl, "KUBE-SVL-CDGGSHYLG3RE2FKL");
    assert_eq!(&*web.ext, "KUBE-EXT-CDGGSHYLG3RE2FKL");
    assert_eq!(&*web.fw, "KUBE-FW-CDGGSHYLG3RE2FKL");
    assert_eq!(&*endpoint_chain("default/web:http", "tcp", "10.244.1.5:8080"), "KUBE-SEP-AFGSLHOD2HFNCBX4");
    assert_eq!(&*endpoint_chain("default/web:http", "tcp", "10.244.2.7:8080"), "KUBE-SEP-2RIJ5GIYXEFH6G4D");
    assert_eq!(&*service_chains("default/web", Protocol::Tcp).svc, "KUBE-SVC-LOLE4ISW44XBNF3G");
    assert_eq!(&*service_chains("ns4/svc4:p80", Protocol::Tcp).svc, "KUBE-SVC-4SW47YFZTEDKD3PK");
    assert_eq!(&*endpoint_chain("ns4/svc4:p80", "tcp", "10.180.0.4:80"), "KUBE-SEP-UKSFD7AGPMPPLUHC");
    assert_eq!(&*endpoint_chain("ns4/svc4:p80", "tcp", "10.180.0.5:80"), "KUBE-SEP-C6EBXVWJJZMIWKLZ");
    assert!(is_service_chain("KUBE-SEP-C6EBXVWJJZMIWKLZ") && !is_service_chain("KUBE-SERVICES"));
}

/// Upstream's restore text for `upstream_world`, in the order `syncProxyRules` writes it (its
/// test sorts chains before comparing). The `KUBE-FORWARD` lines are the facts excerpt's
/// omission, restored as upstream writes them: after every Service's filter lines. Upstream's
/// v1.31 test shows the INVALID rule with `-m nfacct --nfacct-name
/// ct_state_invalid_dropped_pkts` because its fake proxier has that nfacct counter; the line
/// here is v1.29's, which v1.30+ also write without the counter (see the module doc).
#[test]
fn a_full_sync_is_upstreams_restore_input_byte_for_byte() {
    let out = Iptables::new(upstream_opts()).render(&upstream_world(), None);
    let expected = r#"*filter
:KUBE-SERVICES - [0:0]
:KUBE-EXTERNAL-SERVICES - [0:0]
:KUBE-FORWARD - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-PROXY-FIREWALL - [0:0]
-A KUBE-SERVICES -m comment --comment "ns6/svc6:p80 has no endpoints" -m tcp -p tcp -d 172.30.0.46 --dport 80 -j REJECT
-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-4SW47YFZTEDKD3PK - [0:0]
:KUBE-SEP-UKSFD7AGPMPPLUHC - [0:0]
:KUBE-SEP-C6EBXVWJJZMIWKLZ - [0:0]
-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000
-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE
-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000
-A KUBE-SERVICES -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 cluster IP" -m tcp -p tcp -d 172.30.0.44 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.4:80" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC
-A KUBE-SVC-4SW47YFZTEDKD3PK -m comment --comment "ns4/svc4:p80 -> 10.180.0.5:80" -j KUBE-SEP-C6EBXVWJJZMIWKLZ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -s 10.180.0.4 -j KUBE-MARK-MASQ
-A KUBE-SEP-UKSFD7AGPMPPLUHC -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.4:80
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -s 10.180.0.5 -j KUBE-MARK-MASQ
-A KUBE-SEP-C6EBXVWJJZMIWKLZ -m comment --comment ns4/svc4:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.5:80
-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS
COMMIT
"#;
    assert_eq!(out.text, expected);
    assert!(out.full);
    assert_eq!((out.rules, out.deleted), (17, 0));
}

#[test]
fn every_chain_of_the_upstream_excerpt_holds_exactly_its_rules() {
    let out = Iptables::new(upstream_opts()).render(&upstream_world(), None);
    let (want_rules, want_decls) = by_chain(UPSTREAM_SVC4);
    let (got_rules, got_decls) = by_chain(&out.text);
    for (key, want) in &want_rules {
        assert_eq!(got_rules.get(key), Some(want), "chain {key:?}");
    }
    for d in &want_decls {
        assert!(got_decls.contains(d), "{d:?} declared");
    }
}

#[test]
fn three_endpoints_get_a_third_a_half_and_the_rest() {
    let snap = snapshot(
        &[service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])],
        &[slice(
            "default",
            "web",
            "web-1",
            ("http", 8080, "TCP"),
            &[ready("10.244.2.7", "n2"), ready("10.244.1.5", "n1"), ready("10.244.1.6", "n1")],
        )],
    );
    let out = Iptables::new(upstream_opts()).render(&snap, None);
    let (rules, _) = by_chain(&out.text);
    let svc = &rules[&("nat".to_string(), "KUBE-SVC-CDGGSHYLG3RE2FKL".to_string())];
    let sep6 = endpoint_chain("default/web:http", "tcp", "10.244.1.6:8080");
    assert_eq!(
        svc[1..],
        [
            "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.1.5:8080\" -m statistic --mode random --probability 0.3333333333 -j KUBE-SEP-AFGSLHOD2HFNCBX4".to_string(),
            format!("-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.1.6:8080\" -m statistic --mode random --probability 0.5000000000 -j {sep6}"),
            "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.2.7:8080\" -j KUBE-SEP-2RIJ5GIYXEFH6G4D".to_string(),
        ]
    );
}

#[test]
fn many_endpoints_take_probabilities_one_over_n_minus_i() {
    let eps: Vec<String> = (1..=7).map(|i| format!("10.244.0.{i}")).collect();
    let eps: Vec<Ep<'_>> = eps.iter().map(|ip| ready(ip, "n2")).collect();
    let snap = snapshot(
        &[service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])],
        &[slice("default", "web", "web-1", ("http", 8080, "TCP"), &eps)],
    );
    let out = Iptables::new(upstream_opts()).render(&snap, None);
    let probs: Vec<&str> = out
        .text
        .lines()
        .filter_map(|l| l.split("--probability ").nth(1))
        .map(|p| p.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        probs,
        ["0.1428571429", "0.1666666667", "0.2000000000", "0.2500000000", "0.3333333333", "0.5000000000"]
    );
}

#[test]
fn no_endpoints_reject_in_filter_and_write_no_nat_chains() {
    let snap =
        snapshot(&[service("default", "web", "10.96.0.20", &[("http", 80, "TCP"), ("dns", 53, "UDP")])], &[]);
    let out = Iptables::new(upstream_opts()).render(&snap, None);
    assert!(out.text.contains(
        "\n-A KUBE-SERVICES -m comment --comment \"default/web:http has no endpoints\" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j REJECT\n"
    ));
    assert!(out.text.contains(
        "\n-A KUBE-SERVICES -m comment --comment \"default/web:dns has no endpoints\" -m udp -p udp -d 10.96.0.20 --dport 53 -j REJECT\n"
    ));
    assert!(!out.text.contains("KUBE-SVC-"), "{}", out.text);
    assert!(!out.text.contains("KUBE-SEP-"), "{}", out.text);
}

#[test]
fn not_ready_endpoints_count_as_none() {
    let snap = snapshot(
        &[service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])],
        &[slice(
            "default",
            "web",
            "web-1",
            ("http", 8080, "TCP"),
            &[("10.244.1.5", "n1", false, false, false)],
        )],
    );
    let out = Iptables::new(upstream_opts()).render(&snap, None);
    assert!(out.text.contains("\"default/web:http has no endpoints\""));
}

#[test]
fn internal_local_without_local_endpoints_drops() {
    let mut svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
    svc.spec.as_mut().unwrap().internal_traffic_policy = Some("Local".into());
    let slices = [slice("default", "web", "web-1", ("http", 8080, "TCP"), &[ready("10.244.2.7", "n2")])];
    let out = Iptables::new(upstream_opts()).render(&snapshot(std::slice::from_ref(&svc), &slices), None);
    assert!(out.text.contains(
        "\n-A KUBE-SERVICES -m comment --comment \"default/web:http has no local endpoints\" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j DROP\n"
    ), "{}", out.text);
    assert!(
        !out.text.contains("KUBE-SVC-") && !out.text.contains("KUBE-SVL-") && !out.text.contains("KUBE-SEP-")
    );

    // With one endpoint on this node (node1), only it is used, through the SVL chain.
    let slices = [slice(
        "default",
        "web",
        "web-1",
        ("http", 8080, "TCP"),
        &[ready("10.244.2.7", "n2"), ready("10.244.1.5", "node1")],
    )];
    let out = Iptables::new(upstream_opts()).render(&snapshot(&[svc], &slices), None);
    let (rules, _) = by_chain(&out.text);
    let svl = "KUBE-SVL-CDGGSHYLG3RE2FKL".to_string();
    assert_eq!(
        rules[&("nat".into(), svl.clone())],
        [
            "-A KUBE-SVL-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http cluster IP\" -m tcp -p tcp -d 10.96.0.20 --dport 80 ! -s 10.0.0.0/8 -j KUBE-MARK-MASQ",
            "-A KUBE-SVL-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.1.5:8080\" -j KUBE-SEP-AFGSLHOD2HFNCBX4",
        ]
    );
    assert!(rules[&("nat".into(), "KUBE-SERVICES".into())][0].ends_with(&format!("-j {svl}")));
    assert!(!out.text.contains("KUBE-SEP-2RIJ5GIYXEFH6G4D"), "the remote endpoint gets no chain");
}

#[test]
fn client_ip_affinity_checks_then_sets_recent_lists() {
    let svc = with_affinity(service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]), None);
    let slices = [slice(
        "default",
        "web",
        "web-1",
        ("http", 8080, "TCP"),
        &[ready("10.244.1.5", "n1"), ready("10.244.2.7", "n2")],
    )];
    let out = Iptables::new(upstream_opts()).render(&snapshot(&[svc], &slices), None);
    let (rules, _) = by_chain(&out.text);
    assert_eq!(
        rules[&("nat".into(), "KUBE-SVC-CDGGSHYLG3RE2FKL".into())][1..],
        [
            "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.1.5:8080\" -m recent --name KUBE-SEP-AFGSLHOD2HFNCBX4 --rcheck --seconds 10800 --reap -j KUBE-SEP-AFGSLHOD2HFNCBX4",
            "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.2.7:8080\" -m recent --name KUBE-SEP-2RIJ5GIYXEFH6G4D --rcheck --seconds 10800 --reap -j KUBE-SEP-2RIJ5GIYXEFH6G4D",
            "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.1.5:8080\" -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-AFGSLHOD2HFNCBX4",
            "-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.2.7:8080\" -j KUBE-SEP-2RIJ5GIYXEFH6G4D",
        ]
    );
    assert_eq!(
        rules[&("nat".into(), "KUBE-SEP-AFGSLHOD2HFNCBX4".into())],
        [
            "-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -s 10.244.1.5 -j KUBE-MARK-MASQ",
            "-A KUBE-SEP-AFGSLHOD2HFNCBX4 -m comment --comment default/web:http -m recent --name KUBE-SEP-AFGSLHOD2HFNCBX4 --set -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080",
        ]
    );
}

#[test]
fn masquerade_all_marks_every_cluster_ip_connection() {
    let snap = snapshot(
        &[service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])],
        &[slice("default", "web", "web-1", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")])],
    );
    let opts = Options { masquerade_all: true, random_fully: true, ..upstream_opts() };
    let out = Iptables::new(opts).render(&snap, None);
    assert!(out.text.contains("\n-A KUBE-SVC-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http cluster IP\" -m tcp -p tcp -d 10.96.0.20 --dport 80 -j KUBE-MARK-MASQ\n"));
    assert!(out.text.contains("\n-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n"));
}

fn node_port_service(local: bool) -> Service {
    let mut svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
    let spec = svc.spec.as_mut().unwrap();
    spec.type_ = Some("NodePort".into());
    spec.ports.as_mut().unwrap()[0].node_port = Some(30080);
    if local {
        spec.external_traffic_policy = Some("Local".into());
    }
    svc
}

#[test]
fn node_ports_go_through_the_ext_chain() {
    let slices = [slice(
        "default",
        "web",
        "web-1",
        ("http", 8080, "TCP"),
        &[ready("10.244.1.5", "node1"), ready("10.244.2.7", "n2")],
    )];
    let out = Iptables::new(upstream_opts()).render(&snapshot(&[node_port_service(false)], &slices), None);
    let (rules, decls) = by_chain(&out.text);
    assert_eq!(
        rules[&("nat".into(), "KUBE-NODEPORTS".into())],
        [
            "-A KUBE-NODEPORTS -m comment --comment default/web:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-CDGGSHYLG3RE2FKL"
        ]
    );
    assert_eq!(
        rules[&("nat".into(), "KUBE-EXT-CDGGSHYLG3RE2FKL".into())],
        [
            "-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment \"masquerade traffic for default/web:http external destinations\" -j KUBE-MARK-MASQ",
            "-A KUBE-EXT-CDGGSHYLG3RE2FKL -j KUBE-SVC-CDGGSHYLG3RE2FKL",
        ]
    );
    assert!(decls.contains(&("nat".into(), "KUBE-EXT-CDGGSHYLG3RE2FKL".into())));

    // Local: pod traffic short-circuits to the Cluster chain, host traffic is masqueraded and
    // sent there too (upstream's two `--src-type LOCAL` rules), the rest goes to the local
    // endpoints only.
    let out = Iptables::new(upstream_opts()).render(&snapshot(&[node_port_service(true)], &slices), None);
    let (rules, _) = by_chain(&out.text);
    assert_eq!(
        rules[&("nat".into(), "KUBE-EXT-CDGGSHYLG3RE2FKL".into())],
        [
            "-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment \"pod traffic for default/web:http external destinations\" -s 10.0.0.0/8 -j KUBE-SVC-CDGGSHYLG3RE2FKL",
            "-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment \"masquerade LOCAL traffic for default/web:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
            "-A KUBE-EXT-CDGGSHYLG3RE2FKL -m comment --comment \"route LOCAL traffic for default/web:http external destinations\" -m addrtype --src-type LOCAL -j KUBE-SVC-CDGGSHYLG3RE2FKL",
            "-A KUBE-EXT-CDGGSHYLG3RE2FKL -j KUBE-SVL-CDGGSHYLG3RE2FKL",
        ]
    );
    assert_eq!(
        rules[&("nat".into(), "KUBE-SVL-CDGGSHYLG3RE2FKL".into())],
        [
            "-A KUBE-SVL-CDGGSHYLG3RE2FKL -m comment --comment \"default/web:http -> 10.244.1.5:8080\" -j KUBE-SEP-AFGSLHOD2HFNCBX4"
        ]
    );
    assert_eq!(
        rules[&("nat".into(), "KUBE-SVC-CDGGSHYLG3RE2FKL".into())].len(),
        3,
        "masquerade + two endpoints"
    );
}

#[test]
fn node_ports_without_endpoints_reject_local_destinations() {
    let out = Iptables::new(upstream_opts()).render(&snapshot(&[node_port_service(false)], &[]), None);
    assert!(out.text.contains(
        "\n-A KUBE-EXTERNAL-SERVICES -m comment --comment \"default/web:http has no endpoints\" -m addrtype --dst-type LOCAL -m tcp -p tcp --dport 30080 -j REJECT\n"
    ), "{}", out.text);
    assert!(!out.text.contains("-A KUBE-NODEPORTS"));
}

#[test]
fn large_clusters_drop_per_endpoint_comments() {
    let ips: Vec<String> = (0..1001).map(|i| format!("10.244.{}.{}", i / 250, i % 250 + 1)).collect();
    let eps: Vec<Ep<'_>> = ips.iter().map(|ip| ready(ip, "n2")).collect();
    let snap = snapshot(
        &[service("default", "web", "10.96.0.20", &[("http", 80, "TCP")])],
        &[slice("default", "web", "web-1", ("http", 8080, "TCP"), &eps)],
    );
    let out = Iptables::new(upstream_opts()).render(&snap, None);
    let sep = endpoint_chain("default/web:http", "tcp", "10.244.0.1:8080");
    assert!(out.text.contains(&format!("\n-A {sep} -s 10.244.0.1 -j KUBE-MARK-MASQ\n")));
    assert!(
        out.text.contains(&format!("\n-A {sep} -m tcp -p tcp -j DNAT --to-destination 10.244.0.1:8080\n"))
    );
    // The first endpoint by `ip:port` string order is 10.244.0.100 ('0' sorts before ':').
    let first = endpoint_chain("default/web:http", "tcp", "10.244.0.100:8080");
    assert!(out.text.contains(&format!(
        "\n-A KUBE-SVC-CDGGSHYLG3RE2FKL -m statistic --mode random --probability 0.0009990010 -j {first}\n"
    )));
    assert!(!out.text.contains(" -> 10.244."), "no per-endpoint comments");
    assert!(out.text.contains("\"default/web:http cluster IP\""), "Service comments stay");
}

#[test]
fn a_partial_sync_writes_only_changed_chains_and_deletes_unused_ones() {
    let web = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
    let db = service("default", "db", "10.96.0.21", &[("", 5432, "TCP")]);
    let web_eps = slice("default", "web", "web-1", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")]);
    let db_eps = slice("default", "db", "db-1", ("", 5432, "TCP"), &[ready("10.244.2.9", "n2")]);
    let mut ipt = Iptables::new(upstream_opts());
    let before = snapshot(&[web.clone(), db.clone()], &[web_eps.clone(), db_eps.clone()]);
    let first = ipt.render(&before, Some(&BTreeSet::new()));
    assert!(first.full, "the first sync is full whatever it is asked");
    ipt.commit(first);

    // web gains an endpoint: web's chains are rewritten; db's are not, but its jump stays.
    let web_eps2 = slice(
        "default",
        "web",
        "web-1",
        ("http", 8080, "TCP"),
        &[ready("10.244.1.5", "n1"), ready("10.244.2.7", "n2")],
    );
    let after = snapshot(&[web.clone(), db.clone()], &[web_eps2.clone(), db_eps.clone()]);
    let changed = before.changed(&after);
    assert_eq!(changed, BTreeSet::from([ServicePortName::new("default", "web", "http", Protocol::Tcp)]));
    let out = ipt.render(&after, Some(&changed));
    assert!(!out.full);
    let db_svc = service_chains("default/db", Protocol::Tcp).svc;
    let db_sep = endpoint_chain("default/db", "tcp", "10.244.2.9:5432");
    assert!(out.text.contains(&format!("-A KUBE-SERVICES -m comment --comment \"default/db cluster IP\" -m tcp -p tcp -d 10.96.0.21 --dport 5432 -j {db_svc}\n")));
    assert!(
        !out.text.contains(&format!(":{db_svc}")) && !out.text.contains(&format!("-A {db_svc}")),
        "{}",
        out.text
    );
    assert!(!out.text.contains(&*db_sep));
    assert!(out.text.contains(":KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]\n"));
    assert!(out.text.contains(":KUBE-SEP-2RIJ5GIYXEFH6G4D - [0:0]\n"));
    assert!(out.text.contains("--probability 0.5000000000 -j KUBE-SEP-AFGSLHOD2HFNCBX4\n"));
    assert_eq!(out.deleted, 0);
    ipt.commit(out);

    // db goes: its jump goes, its chains are flushed and deleted; web's are not written.
    let gone = snapshot(&[web], &[web_eps2]);
    let changed = after.changed(&gone);
    let out = ipt.render(&gone, Some(&changed));
    let tail: Vec<&str> = out.text.lines().skip_while(|l| *l != "*nat").collect();
    let mut deletes = vec![format!("-X {db_sep}"), format!("-X {db_svc}")];
    deletes.sort();
    assert_eq!(tail.iter().filter(|l| l.starts_with("-X")).copied().collect::<Vec<_>>(), deletes);
    assert!(tail.contains(&format!(":{db_svc} - [0:0]").as_str()), "declared (flushed) before -X");
    assert!(!out.text.contains("KUBE-SVC-CDGGSHYLG3RE2FKL - [0:0]"), "web's chains are not rewritten");
    assert!(out.text.contains("-j KUBE-SVC-CDGGSHYLG3RE2FKL\n"), "web's jump is");
    assert!(!out.text.contains("default/db cluster IP"));
    assert_eq!(out.deleted, 2);
}

#[test]
fn seeded_chains_left_by_a_previous_run_are_deleted() {
    let save = "*filter\n:KUBE-SERVICES - [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-OLDOLDOLDOLDOLDO - [0:0]\n:KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]\nCOMMIT\n";
    let chains = service_chains_in_save(save);
    assert_eq!(
        chains,
        HashSet::from(["KUBE-SVC-OLDOLDOLDOLDOLDO".to_string(), "KUBE-SEP-OLDOLDOLDOLDOLDO".to_string()])
    );
    let mut ipt = Iptables::new(upstream_opts());
    assert!(!ipt.knows_chains());
    ipt.seed_chains(chains);
    let out = ipt.render(&Snapshot::<ServicePortInfo>::default(), None);
    assert!(out.text.contains("\n:KUBE-SEP-OLDOLDOLDOLDOLDO - [0:0]\n"));
    assert!(out.text.contains("\n-X KUBE-SEP-OLDOLDOLDOLDOLDO\n-X KUBE-SVC-OLDOLDOLDOLDOLDO\n"));
}

#[test]
fn ensure_rules_are_upstreams_jumps() {
    let rules = ensure_rules();
    assert_eq!(rules.len(), 12);
    assert!(rules.contains(
        &"nat OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".to_string()
    ));
    assert!(rules.contains(
        &"nat PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".to_string()
    ));
    assert!(
        rules.contains(
            &"nat POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING"
                .to_string()
        )
    );
    assert!(rules.contains(&"filter FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES".to_string()));
    assert!(rules.contains(&"filter INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES".to_string()));
    assert!(
        rules.contains(
            &"filter INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS"
                .to_string()
        )
    );
    assert!(rules.contains(
        &"filter FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD".to_string()
    ));
}

/// Every kind of rule this module writes, full and partial, is taken by netlab's kernel model
/// (netlab-kernel's `iptables-restore`), jumps and all.
#[test]
fn the_kernel_model_takes_every_rule_kind() {
    let mut affinity =
        with_affinity(service("default", "sticky", "10.96.0.30", &[("http", 80, "TCP")]), Some(600));
    affinity.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.10".into()]);
    let mut local_itp = service("default", "local", "10.96.0.31", &[("dns", 53, "UDP")]);
    local_itp.spec.as_mut().unwrap().internal_traffic_policy = Some("Local".into());
    let mut lb = node_port_service(true);
    lb.spec.as_mut().unwrap().type_ = Some("LoadBalancer".into());
    lb.status = Some(k8s_openapi::api::core::v1::ServiceStatus {
        load_balancer: Some(k8s_openapi::api::core::v1::LoadBalancerStatus {
            ingress: Some(vec![k8s_openapi::api::core::v1::LoadBalancerIngress {
                ip: Some("192.0.2.20".into()),
                ..Default::default()
            }]),
        }),
        ..Default::default()
    });
    let mut empty_np = node_port_service(false);
    empty_np.metadata.name = Some("empty".into());
    empty_np.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30081);
    let services =
        [affinity, local_itp, lb, empty_np, service("default", "sctp", "10.96.0.32", &[("s", 3868, "SCTP")])];
    let slices = [
        slice(
            "default",
            "sticky",
            "a",
            ("http", 8080, "TCP"),
            &[ready("10.244.1.5", "node1"), ready("10.244.2.7", "n2")],
        ),
        slice("default", "local", "b", ("dns", 53, "UDP"), &[ready("10.244.2.8", "n2")]),
        slice(
            "default",
            "web",
            "c",
            ("http", 8080, "TCP"),
            &[ready("10.244.1.9", "node1"), ("10.244.2.9", "n2", false, true, true)],
        ),
        slice("default", "sctp", "d", ("s", 3868, "SCTP"), &[ready("10.244.1.10", "node1")]),
    ];
    let mut kernel = netlab_kernel::iptables::Tables::new();
    for e in ensure_rules() {
        kernel.ensure(&e).unwrap_or_else(|e2| panic!("{e}: {e2:?}"));
    }
    let mut ipt = Iptables::new(Options { random_fully: true, ..upstream_opts() });
    let before = snapshot(&services, &slices);
    let full = ipt.render(&before, None);
    kernel.restore(&full.text, true).unwrap_or_else(|e| panic!("{e:?}\n{}", full.text));
    ipt.commit(full);

    // A partial sync that removes a Service and changes another.
    let after = snapshot(&services[1..], &slices[1..3]);
    let partial = ipt.render(&after, Some(&before.changed(&after)));
    assert!(!partial.full && partial.deleted > 0);
    kernel.restore(&partial.text, true).unwrap_or_else(|e| panic!("{e:?}\n{}", partial.text));
    assert!(kernel.save().contains("-j DROP"), "the Local Service without local endpoints drops");
    let save = kernel.save();
    let forward: Vec<&str> = save.lines().filter(|l| l.starts_with("-A KUBE-FORWARD ")).collect();
    assert_eq!(forward, KUBE_FORWARD_RULES, "the partial sync rewrote KUBE-FORWARD whole");
}

/// `KUBE-FORWARD`'s rules as upstream writes them, last in the filter table.
const KUBE_FORWARD_RULES: [&str; 3] = [
    "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT",
    "-A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
];

/// The filter table is rewritten on every sync, partial ones too (`:KUBE-FORWARD` flushes the
/// chain), so every sync ends it with `KUBE-FORWARD`'s rules, whatever changed; a sync with no
/// changed Service writes them as well.
#[test]
fn every_sync_ends_the_filter_table_with_kube_forward() {
    let web = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
    let empty = service("default", "empty", "10.96.0.21", &[("http", 80, "TCP")]);
    let eps = |ip| slice("default", "web", "w", ("http", 8080, "TCP"), &[ready(ip, "n1")]);
    let mut ipt = Iptables::new(upstream_opts());
    let mut prev = Snapshot::<ServicePortInfo>::default();
    for (i, (services, slices)) in [
        (vec![web.clone(), empty.clone()], vec![eps("10.244.1.5")]),
        (vec![web.clone(), empty.clone()], vec![eps("10.244.1.6")]),
        (vec![web.clone(), empty.clone()], vec![eps("10.244.1.6")]),
        (vec![web.clone()], vec![eps("10.244.1.6")]),
    ]
    .into_iter()
    .enumerate()
    {
        let snap = snapshot(&services, &slices);
        let out = ipt.render(&snap, Some(&prev.changed(&snap)));
        assert_eq!(out.full, i == 0, "step {i}");
        let filter: Vec<&str> =
            out.text.lines().skip_while(|l| *l != "*filter").take_while(|l| *l != "COMMIT").collect();
        assert!(filter.contains(&":KUBE-FORWARD - [0:0]"), "step {i}");
        assert_eq!(filter[filter.len() - 3..], KUBE_FORWARD_RULES, "step {i}:\n{}", out.text);
        assert_eq!(out.text.matches("-A KUBE-FORWARD ").count(), 3, "step {i}");
        // The REJECT of the Service without endpoints stays before them while it exists.
        assert_eq!(out.text.contains("\"default/empty:http has no endpoints\""), i < 3, "step {i}");
        ipt.commit(out);
        prev = snap;
    }
}

/// Every chain a partial sync writes holds exactly what a full sync of the same state writes
/// into it, however the ports changed; unchanged ports' top-level lines come from memory.
#[test]
fn a_partial_sync_writes_what_a_full_sync_would_in_each_chain_it_writes() {
    let mut np = node_port_service(false);
    np.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.10".into()]);
    let mut local = node_port_service(true);
    local.metadata.name = Some("local".into());
    local.spec.as_mut().unwrap().cluster_ip = Some("10.96.0.25".into());
    local.spec.as_mut().unwrap().ports.as_mut().unwrap()[0].node_port = Some(30090);
    let sticky = with_affinity(service("default", "sticky", "10.96.0.30", &[("http", 80, "TCP")]), Some(600));
    let db = service("default", "db", "10.96.0.21", &[("", 5432, "TCP"), ("dns", 53, "UDP")]);
    let eps = |svc: &str, port: (&'static str, i32, &'static str), ips: &[&'static str]| {
        let eps: Vec<Ep<'static>> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| ready(ip, if i % 2 == 0 { "node1" } else { "n2" }))
            .collect();
        slice("default", svc, &format!("{svc}-{}", port.0), port, &eps)
    };
    let steps: Vec<(Vec<Service>, Vec<EndpointSlice>)> = vec![
        (
            vec![np.clone(), local.clone(), sticky.clone(), db.clone()],
            vec![
                eps("web", ("http", 8080, "TCP"), &["10.244.1.1", "10.244.2.2"]),
                eps("local", ("http", 8080, "TCP"), &["10.244.1.3"]),
                eps("sticky", ("http", 8080, "TCP"), &["10.244.1.4", "10.244.2.4", "10.244.3.4"]),
                eps("db", ("", 5432, "TCP"), &["10.244.1.5"]),
            ],
        ),
        // web loses an endpoint, local loses its only (local) one, db's UDP port gains one.
        (
            vec![np.clone(), local.clone(), sticky.clone(), db.clone()],
            vec![
                eps("web", ("http", 8080, "TCP"), &["10.244.1.1"]),
                eps("local", ("http", 8080, "TCP"), &[]),
                eps("sticky", ("http", 8080, "TCP"), &["10.244.1.4", "10.244.2.4", "10.244.3.4"]),
                eps("db", ("", 5432, "TCP"), &["10.244.1.5"]),
                eps("db", ("dns", 53, "UDP"), &["10.244.1.6"]),
            ],
        ),
        // sticky goes, web's NodePort Service gets a second externalIP.
        (
            {
                let mut np = np.clone();
                np.spec.as_mut().unwrap().external_ips = Some(vec!["192.0.2.10".into(), "192.0.2.11".into()]);
                vec![np, local.clone(), db.clone()]
            },
            vec![
                eps("web", ("http", 8080, "TCP"), &["10.244.1.1"]),
                eps("db", ("", 5432, "TCP"), &["10.244.1.5"]),
                eps("db", ("dns", 53, "UDP"), &["10.244.1.6"]),
            ],
        ),
    ];
    let mut ipt = Iptables::new(upstream_opts());
    let mut kernel = netlab_kernel::iptables::Tables::new();
    let mut prev = Snapshot::<ServicePortInfo>::default();
    for (i, (services, slices)) in steps.iter().enumerate() {
        let snap = snapshot(services, slices);
        let out = ipt.render(&snap, Some(&prev.changed(&snap)));
        assert_eq!(out.full, i == 0);
        kernel.restore(&out.text, true).unwrap_or_else(|e| panic!("step {i}: {e:?}\n{}", out.text));
        let fresh = Iptables::new(upstream_opts()).render(&snap, None);
        let (written, _) = by_chain(&out.text);
        let (want, _) = by_chain(&fresh.text);
        for (chain, rules) in &written {
            assert_eq!(Some(rules), want.get(chain), "step {i}: {chain:?}");
        }
        for top in ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES", "KUBE-FORWARD"] {
            for table in ["nat", "filter"] {
                let chain = (table.to_string(), top.to_string());
                assert_eq!(written.get(&chain), want.get(&chain), "step {i}: {chain:?} is written whole");
            }
        }
        assert_eq!(out.rules, out.text.lines().filter(|l| l.starts_with("-A ")).count());
        ipt.commit(out);
        prev = snap;
    }
    // The kernel holds what one full sync of the last state leaves on a fresh kernel.
    let mut fresh_kernel = netlab_kernel::iptables::Tables::new();
    fresh_kernel.restore(&Iptables::new(upstream_opts()).render(&prev, None).text, true).unwrap();
    assert_eq!(kernel.save(), fresh_kernel.save());
}

/// A port that differs from the one last written has its chains rewritten even when the caller
/// did not list it.
#[test]
fn an_unlisted_port_that_changed_is_rewritten_anyway() {
    let web = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
    let mut ipt = Iptables::new(upstream_opts());
    let before = snapshot(
        std::slice::from_ref(&web),
        &[slice("default", "web", "w", ("http", 8080, "TCP"), &[ready("10.244.1.5", "n1")])],
    );
    let first = ipt.render(&before, None);
    ipt.commit(first);
    let after = snapshot(
        &[web],
        &[slice("default", "web", "w", ("http", 8080, "TCP"), &[ready("10.244.1.6", "n1")])],
    );
    let out = ipt.render(&after, Some(&BTreeSet::new()));
    assert!(out.text.contains("--to-destination 10.244.1.6:8080"));
    assert_eq!(out.deleted, 1, "the old endpoint's chain");
    // Unchanged, unlisted: not rewritten.
    ipt.commit(out);
    let again = ipt.render(&after, Some(&BTreeSet::new()));
    assert!(!again.text.contains("--to-destination"));
    assert_eq!(again.deleted, 0);
}

/// The chain names are hashed once, when the port is built from the generic one, and are
/// upstream's (the model knows nothing of them).
#[test]
fn port_info_names_the_port_and_endpoint_chains() {
    let svc = service("default", "web", "10.96.0.20", &[("http", 80, "TCP")]);
    let slices = [slice(
        "default",
        "web",
        "web-a",
        ("http", 8080, "TCP"),
        &[ready("10.244.2.7", "n2"), ready("10.244.1.5", "n1")],
    )];
    let ports = crate::model::service_ports(&svc, slices.iter(), "n1");
    let info = ServicePortInfo::new(ports[0].clone());
    assert_eq!(&*info.chains.svc, "KUBE-SVC-CDGGSHYLG3RE2FKL");
    assert_eq!(info.endpoints[0].addr, "10.244.1.5:8080");
    assert_eq!(&**info.endpoint_chain(&info.endpoints[0]), "KUBE-SEP-AFGSLHOD2HFNCBX4");
    assert_ne!(info.endpoint_chain(&info.endpoints[1]), info.endpoint_chain(&info.endpoints[0]));
    assert_eq!(info, ServicePortInfo::new(ports[0].clone()), "equal ports, equal infos");
}
