//! The kubernetes plugin's answers, record by record, against a hand-built cluster: one test per
//! rule of facts §1/§2 (and CoreDNS's own test tables where they decide a quirk).

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{Namespace, ObjectReference, Pod, PodIP, PodStatus, Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

use super::*;

mod apex;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() }
}

fn port(name: &str, proto: &str, number: i32) -> ServicePort {
    ServicePort { name: Some(name.into()), protocol: Some(proto.into()), port: number, ..Default::default() }
}

fn service(ns: &str, name: &str, ip: &str, ports: Vec<ServicePort>) -> Service {
    let ips: Vec<String> = ip.split(',').map(String::from).collect();
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            cluster_ip: Some(ips[0].clone()),
            cluster_ips: Some(ips),
            ports: Some(ports),
            type_: Some("ClusterIP".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn external(ns: &str, name: &str, target: &str) -> Service {
    Service {
        metadata: meta(ns, name),
        spec: Some(ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some(target.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// (addresses, hostname, ready)
type Ep<'a> = (&'a [&'a str], Option<&'a str>, Option<bool>);

fn slice(ns: &str, name: &str, svc: &str, eps: &[Ep<'_>], ports: &[(&str, &str, i32)]) -> EndpointSlice {
    let mut m = meta(ns, name);
    m.labels = Some(BTreeMap::from([("kubernetes.io/service-name".to_string(), svc.to_string())]));
    EndpointSlice {
        metadata: m,
        address_type: if eps.first().is_some_and(|e| e.0[0].contains(':')) { "IPv6" } else { "IPv4" }.into(),
        endpoints: eps
            .iter()
            .map(|(addrs, host, ready)| Endpoint {
                addresses: addrs.iter().map(|a| a.to_string()).collect(),
                hostname: host.map(String::from),
                conditions: Some(EndpointConditions { ready: *ready, ..Default::default() }),
                target_ref: Some(ObjectReference {
                    kind: Some("Pod".into()),
                    name: Some(format!("pod-{}", addrs[0].replace(['.', ':'], "-"))),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect(),
        ports: Some(
            ports
                .iter()
                .map(|(n, p, num)| EndpointPort {
                    name: Some(n.to_string()),
                    protocol: Some(p.to_string()),
                    port: Some(*num),
                    ..Default::default()
                })
                .collect(),
        ),
    }
}

fn headless(ns: &str, name: &str, ports: Vec<ServicePort>) -> Service {
    let mut s = service(ns, name, "None", ports);
    if let Some(spec) = s.spec.as_mut() {
        spec.cluster_ips = Some(vec!["None".into()]);
    }
    s
}

fn kubeadm() -> ZoneConfig {
    ZoneConfig {
        zones: vec!["cluster.local.".into(), "in-addr.arpa.".into(), "ip6.arpa.".into()],
        pods: PodMode::Insecure,
        ttl: 30,
        fallthrough: Some(vec!["in-addr.arpa.".into(), "ip6.arpa.".into()]),
        ..Default::default()
    }
}

/// The cluster most tests ask about.
fn cluster() -> Store {
    let mut s = Store::new();
    for ns in ["default", "kube-system", "shop"] {
        s.apply_namespace(&Namespace { metadata: meta("", ns), ..Default::default() });
    }
    s.apply_service(&service("default", "kubernetes", "10.96.0.1", vec![port("https", "TCP", 443)]));
    s.apply_service(&service(
        "kube-system",
        "kube-dns",
        "10.96.0.10",
        vec![port("dns", "UDP", 53), port("dns-tcp", "TCP", 53), port("metrics", "TCP", 9153)],
    ));
    s.apply_service(&service(
        "shop",
        "cart",
        "10.96.0.20",
        vec![port("http", "TCP", 80), port("", "TCP", 8080)],
    ));
    s.apply_slice(&slice(
        "shop",
        "cart-abcde",
        "cart",
        &[(&["10.244.1.5"], None, Some(true))],
        &[("http", "TCP", 8080)],
    ));
    s.apply_service(&service("shop", "dual", "10.96.0.30,fd00::30", vec![port("http", "TCP", 80)]));
    // Headless: two slices, a hostname, a not-ready endpoint, a duplicate address across slices.
    s.apply_service(&headless("shop", "db", vec![port("pg", "TCP", 5432)]));
    s.apply_slice(&slice(
        "shop",
        "db-1",
        "db",
        &[(&["10.244.1.10"], Some("db-0"), Some(true)), (&["10.244.1.11"], None, Some(false))],
        &[("pg", "TCP", 5432)],
    ));
    s.apply_slice(&slice(
        "shop",
        "db-2",
        "db",
        &[(&["10.244.2.10"], None, None), (&["10.244.1.10"], Some("db-0"), Some(true))],
        &[("pg", "TCP", 5432)],
    ));
    s.apply_service(&headless("shop", "empty", vec![port("pg", "TCP", 5432)]));
    s.apply_slice(&slice(
        "shop",
        "empty-1",
        "empty",
        &[(&["10.244.3.3"], None, Some(false))],
        &[("pg", "TCP", 5432)],
    ));
    s.apply_service(&external("shop", "ext", "www.example.com"));
    s.apply_service(&external("shop", "alias", "cart.shop.svc.cluster.local"));
    s.touch(1_700_000_000);
    s.set_synced(true);
    s
}

fn answer(o: Outcome) -> Answer {
    match o {
        Outcome::Answer(a) => *a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn ask(s: &Store, name: &str, t: QType) -> Answer {
    answer(s.lookup(&kubeadm(), name, t))
}

fn a(ip: &str) -> RData {
    RData::A(ip.parse().unwrap())
}

fn datas(a: &Answer) -> Vec<RData> {
    a.answers.iter().map(|r| r.data.clone()).collect()
}

fn assert_nx(a: &Answer) {
    assert_eq!(a.rcode, Rcode::NxDomain, "{a:?}");
    assert!(a.answers.is_empty());
    assert!(a.is_negative());
}

fn assert_nodata(a: &Answer) {
    assert_eq!(a.rcode, Rcode::NoError, "{a:?}");
    assert!(a.answers.is_empty(), "{a:?}");
    assert!(a.is_negative());
}

#[test]
fn cluster_ip_a_record() {
    let r = ask(&cluster(), "kubernetes.default.svc.cluster.local.", QType::A);
    assert_eq!(r.rcode, Rcode::NoError);
    assert_eq!(r.answers, vec![Record { owner: Owner::Query, ttl: 30, data: a("10.96.0.1") }]);
    assert!(!r.is_negative());
}

#[test]
fn name_without_trailing_dot_is_absolute() {
    let r = ask(&cluster(), "kubernetes.default.svc.cluster.local", QType::A);
    assert_eq!(datas(&r), vec![a("10.96.0.1")]);
}

#[test]
fn aaaa_for_ipv4_service_is_nodata_and_dual_stack_answers_both() {
    let s = cluster();
    assert_nodata(&ask(&s, "cart.shop.svc.cluster.local.", QType::Aaaa));
    assert_eq!(datas(&ask(&s, "dual.shop.svc.cluster.local.", QType::A)), vec![a("10.96.0.30")]);
    assert_eq!(
        datas(&ask(&s, "dual.shop.svc.cluster.local.", QType::Aaaa)),
        vec![RData::Aaaa("fd00::30".parse().unwrap())]
    );
}

#[test]
fn clusterip_service_without_endpoints_still_answers_unless_ignore_empty_service() {
    let s = cluster();
    assert_eq!(datas(&ask(&s, "kubernetes.default.svc.cluster.local.", QType::A)), vec![a("10.96.0.1")]);
    let cfg = ZoneConfig { ignore_empty_service: true, ..kubeadm() };
    assert_nx(&answer(s.lookup(&cfg, "kubernetes.default.svc.cluster.local.", QType::A)));
    assert_eq!(answer(s.lookup(&cfg, "cart.shop.svc.cluster.local.", QType::A)).answers.len(), 1);
}

#[test]
fn query_case_is_preserved_in_owner_and_soa() {
    let s = cluster();
    let r = ask(&s, "KuBeRnEtEs.DeFaUlT.sVc.ClUsTeR.lOcAl.", QType::A);
    assert_eq!(r.answers[0].owner, Owner::Query);
    assert_eq!(datas(&r), vec![a("10.96.0.1")]);
    let nx = ask(&s, "Nope.Default.Svc.Cluster.Local.", QType::A);
    assert_nx(&nx);
    assert_eq!(nx.soa.owner, Owner::Name("Cluster.Local.".into()));
}

#[test]
fn soa_is_built_as_coredns_builds_it() {
    let r = ask(&cluster(), "nope.default.svc.cluster.local.", QType::A);
    assert_eq!(r.soa.ttl, 30);
    assert_eq!(
        r.soa.data,
        RData::Soa {
            mname: "ns.dns.cluster.local.".into(),
            rname: "hostmaster.cluster.local.".into(),
            serial: 1_700_000_000,
            refresh: 7200,
            retry: 1800,
            expire: 86400,
            minimum: 30,
        }
    );
    // min(ttl, 300) for the SOA's own TTL; the minimum field is the plugin ttl.
    let cfg = ZoneConfig { ttl: 3600, ..kubeadm() };
    let r = answer(cluster().lookup(&cfg, "nope.default.svc.cluster.local.", QType::A));
    assert_eq!(r.soa.ttl, 300);
    assert!(matches!(r.soa.data, RData::Soa { minimum: 3600, .. }));
}

#[test]
fn apex_svc_pod_and_namespace_names_are_nodata() {
    let s = cluster();
    for name in [
        "cluster.local.",
        "svc.cluster.local.",
        "pod.cluster.local.",
        "shop.svc.cluster.local.",
        "shop.pod.cluster.local.",
    ] {
        assert_nodata(&ask(&s, name, QType::A));
    }
}

#[test]
fn missing_namespace_or_service_is_nxdomain() {
    let s = cluster();
    assert_nx(&ask(&s, "cart.nowhere.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "nowhere.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "missing.shop.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "a-b-c-d.nowhere.pod.cluster.local.", QType::A));
    // Not svc or pod as the second-level label.
    assert_nx(&ask(&s, "cart.shop.foo.cluster.local.", QType::A));
}

#[test]
fn namespaces_option_hides_other_namespaces() {
    let cfg = ZoneConfig { namespaces: vec!["default".into()], ..kubeadm() };
    let s = cluster();
    assert_nx(&answer(s.lookup(&cfg, "cart.shop.svc.cluster.local.", QType::A)));
    assert_eq!(answer(s.lookup(&cfg, "kubernetes.default.svc.cluster.local.", QType::A)).answers.len(), 1);
}

#[test]
fn too_long_and_unknown_endpoint_names_are_nxdomain() {
    let s = cluster();
    assert_nx(&ask(&s, "a.b.cart.shop.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "x.y.z.cart.shop.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "nosuch.db.shop.svc.cluster.local.", QType::A));
}

#[test]
fn no_wildcards() {
    let s = cluster();
    assert_nx(&ask(&s, "*.shop.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "cart.*.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "any.shop.svc.cluster.local.", QType::A));
}

#[test]
fn headless_one_record_per_ready_endpoint_merged_and_deduplicated() {
    let r = ask(&cluster(), "db.shop.svc.cluster.local.", QType::A);
    let mut got = datas(&r);
    got.sort_by_key(|d| format!("{d:?}"));
    // 10.244.1.11 is not ready; 10.244.1.10 is in both slices; nil ready counts as ready.
    assert_eq!(got, vec![a("10.244.1.10"), a("10.244.2.10")]);
}

#[test]
fn headless_without_ready_endpoints_is_nxdomain() {
    let s = cluster();
    assert_nx(&ask(&s, "empty.shop.svc.cluster.local.", QType::A));
    // ... for every type, since the name has no entries.
    assert_nx(&ask(&s, "empty.shop.svc.cluster.local.", QType::Srv));
    assert_nx(&ask(&s, "empty.shop.svc.cluster.local.", QType::Aaaa));
}

#[test]
fn headless_after_last_ready_endpoint_goes_is_nxdomain() {
    let mut s = cluster();
    s.apply_service(&headless("shop", "solo", vec![]));
    let sl = slice("shop", "solo-1", "solo", &[(&["10.244.5.5"], None, Some(true))], &[]);
    s.apply_slice(&sl);
    assert_eq!(datas(&ask(&s, "solo.shop.svc.cluster.local.", QType::A)), vec![a("10.244.5.5")]);
    s.apply_slice(&slice("shop", "solo-1", "solo", &[(&["10.244.5.5"], None, Some(false))], &[]));
    assert_nx(&ask(&s, "solo.shop.svc.cluster.local.", QType::A));
    s.apply_slice(&sl);
    s.delete_slice(&sl);
    assert_nx(&ask(&s, "solo.shop.svc.cluster.local.", QType::A));
}

#[test]
fn endpoint_hostname_and_dashed_ip_names() {
    let s = cluster();
    let r = ask(&s, "db-0.db.shop.svc.cluster.local.", QType::A);
    assert_eq!(datas(&r), vec![a("10.244.1.10")]);
    let r = ask(&s, "10-244-2-10.db.shop.svc.cluster.local.", QType::A);
    assert_eq!(datas(&r), vec![a("10.244.2.10")]);
    // An endpoint with a hostname is not reachable by its dashed IP.
    assert_nx(&ask(&s, "10-244-1-10.db.shop.svc.cluster.local.", QType::A));
    // Not-ready endpoints have no name.
    assert_nx(&ask(&s, "10-244-1-11.db.shop.svc.cluster.local.", QType::A));
    // Endpoint names under a ClusterIP Service answer from its endpoints.
    assert_eq!(datas(&ask(&s, "10-244-1-5.cart.shop.svc.cluster.local.", QType::A)), vec![a("10.244.1.5")]);
}

#[test]
fn endpoint_pod_names_option() {
    let cfg = ZoneConfig { endpoint_pod_names: true, ..kubeadm() };
    let s = cluster();
    let r = answer(s.lookup(&cfg, "pod-10-244-2-10.db.shop.svc.cluster.local.", QType::A));
    assert_eq!(datas(&r), vec![a("10.244.2.10")]);
    // The hostname still wins.
    assert_eq!(answer(s.lookup(&cfg, "db-0.db.shop.svc.cluster.local.", QType::A)).answers.len(), 1);
}

#[test]
fn dashed_ipv6() {
    assert_eq!(dashed("5678:abcd::1".parse().unwrap()), "5678-abcd--1");
    assert_eq!(dashed("fd00::".parse().unwrap()), "fd00--0");
    assert_eq!(dashed("10.244.1.5".parse().unwrap()), "10-244-1-5");
}

#[test]
fn srv_named_port_on_cluster_ip_service() {
    let r = ask(&cluster(), "_dns._udp.kube-dns.kube-system.svc.cluster.local.", QType::Srv);
    assert_eq!(
        datas(&r),
        vec![RData::Srv {
            priority: 0,
            weight: 100,
            port: 53,
            target: "kube-dns.kube-system.svc.cluster.local.".into()
        }]
    );
    assert_eq!(
        r.additionals,
        vec![Record {
            owner: Owner::Name("kube-dns.kube-system.svc.cluster.local.".into()),
            ttl: 30,
            data: a("10.96.0.10")
        }]
    );
}

#[test]
fn srv_is_case_insensitive_and_protocol_must_match() {
    let s = cluster();
    assert_eq!(ask(&s, "_DNS._UDP.kube-dns.kube-system.svc.cluster.local.", QType::Srv).answers.len(), 1);
    assert_nx(&ask(&s, "_dns._tcp.kube-dns.kube-system.svc.cluster.local.", QType::Srv));
    assert_nx(&ask(&s, "_nope._tcp.kube-dns.kube-system.svc.cluster.local.", QType::Srv));
}

#[test]
fn srv_bare_service_name_lists_every_port_with_split_weight() {
    let r = ask(&cluster(), "kube-dns.kube-system.svc.cluster.local.", QType::Srv);
    let ports: Vec<(u16, u16)> = r
        .answers
        .iter()
        .map(|rec| match &rec.data {
            RData::Srv { weight, port, .. } => (*weight, *port),
            other => panic!("{other:?}"),
        })
        .collect();
    // Three entries → weight 33; the two port-53 entries share a target and port: one record.
    assert_eq!(ports, vec![(33, 53), (33, 9153)]);
    // One A in Additional: same target, same address.
    assert_eq!(r.additionals.len(), 1);
    // Unnamed ports are listed by the bare name too.
    let cart = ask(&cluster(), "cart.shop.svc.cluster.local.", QType::Srv);
    assert_eq!(cart.answers.len(), 2);
    assert!(matches!(cart.answers[0].data, RData::Srv { weight: 50, .. }));
}

#[test]
fn srv_headless_targets_endpoint_names() {
    let r = ask(&cluster(), "_pg._tcp.db.shop.svc.cluster.local.", QType::Srv);
    let mut targets: Vec<String> = r
        .answers
        .iter()
        .map(|rec| match &rec.data {
            RData::Srv { target, port: 5432, priority: 0, weight: 33 } => target.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    targets.sort();
    // Three entries (one duplicate across slices) → weight floor(100/3); duplicates dropped.
    assert_eq!(targets, vec!["10-244-2-10.db.shop.svc.cluster.local.", "db-0.db.shop.svc.cluster.local."]);
    let mut extra: Vec<(Owner, RData)> =
        r.additionals.iter().map(|x| (x.owner.clone(), x.data.clone())).collect();
    extra.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        extra,
        vec![
            (Owner::Name("10-244-2-10.db.shop.svc.cluster.local.".into()), a("10.244.2.10")),
            (Owner::Name("db-0.db.shop.svc.cluster.local.".into()), a("10.244.1.10")),
        ]
    );
}

#[test]
fn srv_portless_headless_has_no_records_but_a_does() {
    let mut s = cluster();
    s.apply_service(&headless("shop", "bare", vec![]));
    s.apply_slice(&slice("shop", "bare-1", "bare", &[(&["10.244.9.9"], None, Some(true))], &[]));
    assert_nodata(&ask(&s, "bare.shop.svc.cluster.local.", QType::Srv));
    assert_eq!(ask(&s, "bare.shop.svc.cluster.local.", QType::A).answers.len(), 1);
}

#[test]
fn srv_for_external_name_is_nodata() {
    assert_nodata(&ask(&cluster(), "ext.shop.svc.cluster.local.", QType::Srv));
}

#[test]
fn ptr_cluster_ip_first_then_endpoints() {
    let s = cluster();
    let r = ask(&s, "10.0.96.10.in-addr.arpa.", QType::Ptr);
    assert_eq!(datas(&r), vec![RData::Ptr("kube-dns.kube-system.svc.cluster.local.".into())]);
    let r = ask(&s, "10.1.244.10.in-addr.arpa.", QType::Ptr);
    assert_eq!(datas(&r), vec![RData::Ptr("db-0.db.shop.svc.cluster.local.".into())]);
    let r = ask(&s, "5.1.244.10.in-addr.arpa.", QType::Ptr);
    assert_eq!(datas(&r), vec![RData::Ptr("10-244-1-5.cart.shop.svc.cluster.local.".into())]);
}

#[test]
fn ptr_one_per_selecting_service() {
    let mut s = cluster();
    s.apply_service(&service("shop", "cart2", "10.96.0.21", vec![port("http", "TCP", 80)]));
    s.apply_slice(&slice(
        "shop",
        "cart2-x",
        "cart2",
        &[(&["10.244.1.5"], None, Some(true))],
        &[("http", "TCP", 8080)],
    ));
    let mut got = datas(&ask(&s, "5.1.244.10.in-addr.arpa.", QType::Ptr));
    got.sort_by_key(|d| format!("{d:?}"));
    assert_eq!(
        got,
        vec![
            RData::Ptr("10-244-1-5.cart.shop.svc.cluster.local.".into()),
            RData::Ptr("10-244-1-5.cart2.shop.svc.cluster.local.".into()),
        ]
    );
}

#[test]
fn ptr_ipv6() {
    let s = cluster();
    let name = "0.3.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.";
    assert_eq!(address_from_reverse(name), Some("fd00::30".parse().unwrap()));
    assert_eq!(datas(&ask(&s, name, QType::Ptr)), vec![RData::Ptr("dual.shop.svc.cluster.local.".into())]);
}

#[test]
fn reverse_misses_fall_through_but_cluster_misses_do_not() {
    let s = cluster();
    assert_eq!(s.lookup(&kubeadm(), "9.9.9.9.in-addr.arpa.", QType::Ptr), Outcome::Fallthrough);
    assert_eq!(s.lookup(&kubeadm(), "10.in-addr.arpa.", QType::Ptr), Outcome::Fallthrough);
    // Not-ready endpoint IPs have no PTR.
    assert_eq!(s.lookup(&kubeadm(), "11.1.244.10.in-addr.arpa.", QType::Ptr), Outcome::Fallthrough);
    // Without fallthrough the reverse zone answers NXDOMAIN with its own apex in the SOA.
    let cfg = ZoneConfig { fallthrough: None, ..kubeadm() };
    let r = answer(s.lookup(&cfg, "9.9.9.9.IN-ADDR.arpa.", QType::Ptr));
    assert_nx(&r);
    assert_eq!(r.soa.owner, Owner::Name("IN-ADDR.arpa.".into()));
    // `fallthrough` with no zones covers cluster.local too.
    let all = ZoneConfig { fallthrough: Some(vec![]), ..kubeadm() };
    assert_eq!(s.lookup(&all, "nope.shop.svc.cluster.local.", QType::A), Outcome::Fallthrough);
}

#[test]
fn names_outside_every_zone_are_not_ours() {
    let s = cluster();
    assert_eq!(s.lookup(&kubeadm(), "example.com.", QType::A), Outcome::NotOurs);
    assert_eq!(s.lookup(&kubeadm(), "local.", QType::A), Outcome::NotOurs);
    assert_eq!(s.lookup(&kubeadm(), "xcluster.local.", QType::A), Outcome::NotOurs);
}

#[test]
fn external_name_is_cname_then_chase() {
    let r = ask(&cluster(), "ext.shop.svc.cluster.local.", QType::A);
    assert_eq!(r.rcode, Rcode::NoError);
    assert!(r.answers.is_empty());
    let chase = r.chase.clone().expect("chase");
    assert_eq!(chase.target, "www.example.com.");
    assert_eq!(
        chase.cname,
        Record { owner: Owner::Query, ttl: 30, data: RData::Cname("www.example.com.".into()) }
    );
    assert!(!r.is_negative());
    // A CNAME query gets the CNAME alone.
    let c = ask(&cluster(), "ext.shop.svc.cluster.local.", QType::Cname);
    assert_eq!(datas(&c), vec![RData::Cname("www.example.com.".into())]);
    assert!(c.chase.is_none());
    // A CNAME query for a ClusterIP Service is NODATA.
    assert_nodata(&ask(&cluster(), "cart.shop.svc.cluster.local.", QType::Cname));
}

#[test]
fn external_name_into_the_cluster_is_resolved_in_zone() {
    let r = ask(&cluster(), "alias.shop.svc.cluster.local.", QType::A);
    assert_eq!(
        r.answers,
        vec![
            Record {
                owner: Owner::Query,
                ttl: 30,
                data: RData::Cname("cart.shop.svc.cluster.local.".into())
            },
            Record {
                owner: Owner::Name("cart.shop.svc.cluster.local.".into()),
                ttl: 30,
                data: a("10.96.0.20")
            },
        ]
    );
    assert!(r.chase.is_none());
}

#[test]
fn names_under_external_name_are_nxdomain() {
    let s = cluster();
    assert_nx(&ask(&s, "x.ext.shop.svc.cluster.local.", QType::A));
}

#[test]
fn pods_insecure_disabled_and_verified() {
    let s = cluster();
    assert_eq!(datas(&ask(&s, "10-244-1-99.shop.pod.cluster.local.", QType::A)), vec![a("10.244.1.99")]);
    assert_eq!(
        datas(&ask(&s, "fd00--99.shop.pod.cluster.local.", QType::Aaaa)),
        vec![RData::Aaaa("fd00::99".parse().unwrap())]
    );
    assert_nodata(&ask(&s, "fd00--99.shop.pod.cluster.local.", QType::A));
    assert_nx(&ask(&s, "not-an-ip.shop.pod.cluster.local.", QType::A));
    let off = ZoneConfig { pods: PodMode::Disabled, ..kubeadm() };
    assert_nx(&answer(s.lookup(&off, "10-244-1-99.shop.pod.cluster.local.", QType::A)));
    assert_nx(&answer(s.lookup(&off, "shop.pod.cluster.local.", QType::A)));
    assert_nodata(&answer(s.lookup(&off, "pod.cluster.local.", QType::A)));

    let verified = ZoneConfig { pods: PodMode::Verified, ..kubeadm() };
    let mut s = cluster();
    let pod = Pod {
        metadata: meta("shop", "web-1"),
        status: Some(PodStatus {
            pod_ip: Some("10.244.1.99".into()),
            pod_ips: Some(vec![PodIP { ip: "10.244.1.99".into() }]),
            ..Default::default()
        }),
        ..Default::default()
    };
    s.apply_pod(&pod);
    assert_eq!(answer(s.lookup(&verified, "10-244-1-99.shop.pod.cluster.local.", QType::A)).answers.len(), 1);
    assert_nx(&answer(s.lookup(&verified, "10-244-1-99.default.pod.cluster.local.", QType::A)));
    s.delete_pod(&pod);
    assert_nx(&answer(s.lookup(&verified, "10-244-1-99.shop.pod.cluster.local.", QType::A)));
}

#[test]
fn dns_version_txt_and_other_txt() {
    let s = cluster();
    let r = ask(&s, "dns-version.cluster.local.", QType::Txt);
    assert_eq!(r.answers, vec![Record { owner: Owner::Query, ttl: 28800, data: RData::Txt("1.1.0".into()) }]);
    // Existing name, other TXT: NODATA; missing name or the apex: NXDOMAIN.
    assert_nodata(&ask(&s, "cart.shop.svc.cluster.local.", QType::Txt));
    assert_nx(&ask(&s, "nope.shop.svc.cluster.local.", QType::Txt));
    assert_nx(&ask(&s, "cluster.local.", QType::Txt));
    // dns-version has no A record.
    assert_nx(&ask(&s, "dns-version.cluster.local.", QType::A));
}

#[test]
fn other_types_use_a_fake_a_lookup() {
    let s = cluster();
    assert_nodata(&ask(&s, "cart.shop.svc.cluster.local.", QType::Other));
    assert_nx(&ask(&s, "nope.shop.svc.cluster.local.", QType::Other));
    assert_nodata(&ask(&s, "cart.shop.svc.cluster.local.", QType::Mx));
    assert_nodata(&ask(&s, "cart.shop.svc.cluster.local.", QType::Ptr));
}

#[test]
fn zone_transfers_are_refused() {
    assert_eq!(ask(&cluster(), "cluster.local.", QType::Axfr).rcode, Rcode::Refused);
    assert_eq!(ask(&cluster(), "cluster.local.", QType::Ixfr).rcode, Rcode::Refused);
}

#[test]
fn servfail_instead_of_nxdomain_until_synced() {
    let mut s = cluster();
    s.set_synced(false);
    assert_eq!(ask(&s, "nope.shop.svc.cluster.local.", QType::A).rcode, Rcode::ServFail);
    // What exists still answers.
    assert_eq!(ask(&s, "cart.shop.svc.cluster.local.", QType::A).answers.len(), 1);
}

#[test]
fn port_labels_select_a_records_too() {
    let s = cluster();
    assert_eq!(datas(&ask(&s, "_http._tcp.cart.shop.svc.cluster.local.", QType::A)), vec![a("10.96.0.20")]);
    assert_nx(&ask(&s, "_nope._tcp.cart.shop.svc.cluster.local.", QType::A));
}

#[test]
fn updates_and_deletes_are_incremental() {
    let mut s = cluster();
    s.apply_service(&service("shop", "cart", "10.96.0.99", vec![port("http", "TCP", 80)]));
    assert_eq!(datas(&ask(&s, "cart.shop.svc.cluster.local.", QType::A)), vec![a("10.96.0.99")]);
    // The old ClusterIP's PTR is gone; the new one points at cart.
    assert_eq!(s.lookup(&kubeadm(), "20.0.96.10.in-addr.arpa.", QType::Ptr), Outcome::Fallthrough);
    assert_eq!(ask(&s, "99.0.96.10.in-addr.arpa.", QType::Ptr).answers.len(), 1);
    s.delete_service(&service("shop", "cart", "10.96.0.99", vec![]));
    assert_nx(&ask(&s, "cart.shop.svc.cluster.local.", QType::A));
    assert_eq!(s.lookup(&kubeadm(), "99.0.96.10.in-addr.arpa.", QType::Ptr), Outcome::Fallthrough);
    s.delete_namespace(&Namespace { metadata: meta("", "shop"), ..Default::default() });
    assert_nx(&ask(&s, "db.shop.svc.cluster.local.", QType::A));
    assert_nx(&ask(&s, "shop.svc.cluster.local.", QType::A));
}

#[test]
fn parse_request_shapes() {
    let zone = "cluster.local.";
    let r = parse_request("_http._tcp.web.ns.svc.cluster.local.", zone).unwrap();
    assert_eq!(
        (r.port, r.protocol, r.service, r.namespace, r.pod_or_svc),
        ("http", "tcp", "web", "ns", "svc")
    );
    let r = parse_request("ep.web.ns.svc.cluster.local.", zone).unwrap();
    assert_eq!((r.endpoint, r.service), ("ep", "web"));
    assert!(parse_request("a.b.c.web.ns.svc.cluster.local.", zone).is_err());
    assert_eq!(parse_request("svc.cluster.local.", zone).unwrap(), Request::default());
}
