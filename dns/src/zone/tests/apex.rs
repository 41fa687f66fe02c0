//! The zone-level names, record by record as CoreDNS's kubernetes plugin gives them
//! (plugin/kubernetes/{handler,ns,kubernetes}.go, plugin/backend_lookup.go and their tests
//! handler_test.go `nsTestCases`, ns_test.go `TestNsAddrs`): the apex SOA and NS, the NS target
//! `ns.dns.<zone>` and its glue, every other type at the apex, the reverse zones' apexes, and the
//! case quirks of handler.go's apex checks.

use super::*;

/// The SOA CoreDNS builds for `zone` (`backend_lookup.go` `SOA`), owned by `owner`.
fn soa(owner: Owner, zone: &str) -> Record {
    Record {
        owner,
        ttl: 30,
        data: RData::Soa {
            mname: format!("ns.dns.{zone}"),
            rname: format!("hostmaster.{zone}"),
            serial: 1_700_000_000,
            refresh: 7200,
            retry: 1800,
            expire: 86400,
            minimum: 30,
        },
    }
}

fn aaaa(ip: &str) -> RData {
    RData::Aaaa(ip.parse().unwrap())
}

fn rec(name: &str, data: RData) -> Record {
    Record { owner: Owner::Name(name.into()), ttl: 30, data }
}

fn ns_rec(target: &str) -> Record {
    Record { owner: Owner::Query, ttl: 30, data: RData::Ns(target.into()) }
}

/// kubeadm's config, serving on `ip` (the pod IP this server registers).
fn serving_on(ip: &str) -> ZoneConfig {
    ZoneConfig { local_ips: vec![ip.parse().unwrap()], ..kubeadm() }
}

/// The test cluster plus kube-dns's EndpointSlice holding 10.244.0.20, our pod IP.
fn with_dns_endpoint() -> Store {
    let mut s = cluster();
    s.apply_slice(&slice(
        "kube-system",
        "kube-dns-x7k2p",
        "kube-dns",
        &[(&["10.244.0.20"], None, Some(true))],
        &[("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)],
    ));
    s
}

fn nodata_with_soa(r: &Answer, owner: &str) {
    assert_eq!(r.rcode, Rcode::NoError, "{r:?}");
    assert!(r.answers.is_empty() && r.additionals.is_empty() && r.chase.is_none(), "{r:?}");
    assert!(r.is_negative());
    assert_eq!(r.soa, soa(Owner::Name(owner.into()), &owner.to_ascii_lowercase()));
}

#[test]
fn apex_soa_is_the_answer_in_any_case() {
    let s = cluster();
    for q in ["cluster.local.", "Cluster.Local."] {
        let r = ask(&s, q, QType::Soa);
        assert_eq!(r.rcode, Rcode::NoError);
        assert_eq!(r.answers, vec![soa(Owner::Query, "cluster.local.")], "{q}");
        assert!(r.additionals.is_empty());
        assert!(!r.is_negative(), "no SOA in Authority next to the answer");
    }
}

#[test]
fn soa_below_the_apex_is_nodata_for_every_name() {
    // handler.go answers SOA only at the apex and looks nothing up below it: NODATA even for
    // names that do not exist, and no fallthrough in the reverse zones.
    let s = cluster();
    for q in ["cart.shop.svc.cluster.local.", "nope.shop.svc.cluster.local.", "foo.cluster.local."] {
        nodata_with_soa(&ask(&s, q, QType::Soa), "cluster.local.");
    }
    nodata_with_soa(&ask(&s, "10.in-addr.arpa.", QType::Soa), "in-addr.arpa.");
    nodata_with_soa(&ask(&s, "ns.dns.cluster.local.", QType::Soa), "cluster.local.");
}

#[test]
fn apex_ns_without_our_endpoint_is_ns_dns_with_our_addresses() {
    let cfg = ZoneConfig {
        local_ips: vec!["192.0.2.53".parse().unwrap(), "2001:db8::53".parse().unwrap()],
        ..kubeadm()
    };
    let r = answer(cluster().lookup(&cfg, "cluster.local.", QType::Ns));
    assert_eq!(r.rcode, Rcode::NoError);
    assert_eq!(r.answers, vec![ns_rec("ns.dns.cluster.local.")]);
    assert_eq!(
        r.additionals,
        vec![
            rec("ns.dns.cluster.local.", a("192.0.2.53")),
            rec("ns.dns.cluster.local.", aaaa("2001:db8::53"))
        ]
    );
    assert!(!r.is_negative());
}

#[test]
fn apex_ns_names_the_service_fronting_our_pod_and_glues_its_cluster_ip() {
    let r = answer(with_dns_endpoint().lookup(&serving_on("10.244.0.20"), "cluster.local.", QType::Ns));
    assert_eq!(r.rcode, Rcode::NoError);
    assert_eq!(r.answers, vec![ns_rec("kube-dns.kube-system.svc.cluster.local.")]);
    assert_eq!(r.additionals, vec![rec("kube-dns.kube-system.svc.cluster.local.", a("10.96.0.10"))]);
    assert!(!r.is_negative());
    // A not-ready endpoint is no endpoint: back to ns.dns.
    let mut s = cluster();
    s.apply_slice(&slice(
        "kube-system",
        "kube-dns-x7k2p",
        "kube-dns",
        &[(&["10.244.0.20"], None, Some(false))],
        &[("dns", "UDP", 53)],
    ));
    let r = answer(s.lookup(&serving_on("10.244.0.20"), "cluster.local.", QType::Ns));
    assert_eq!(r.answers, vec![ns_rec("ns.dns.cluster.local.")]);
    assert_eq!(r.additionals, vec![rec("ns.dns.cluster.local.", a("10.244.0.20"))]);
}

#[test]
fn apex_ns_as_ns_test_nsaddrs() {
    // ns_test.go TestNsAddrs: three Services select our pod (ClusterIP, headless, IPv6): one NS per
    // name, each with its address, in endpoint order.
    let mut s = Store::new();
    s.apply_namespace(&Namespace { metadata: meta("", "kube-system"), ..Default::default() });
    s.apply_service(&service("kube-system", "dns-service", "10.0.0.111", vec![port("dns", "UDP", 53)]));
    s.apply_service(&headless("kube-system", "hdls-dns-service", vec![port("dns", "UDP", 53)]));
    s.apply_service(&service("kube-system", "dns6-service", "10::111", vec![port("dns", "UDP", 53)]));
    for svc in ["dns-service", "hdls-dns-service", "dns6-service"] {
        s.apply_slice(&slice(
            "kube-system",
            &format!("{svc}-slice1"),
            svc,
            &[(&["10.244.0.20"], None, Some(true))],
            &[("dns", "UDP", 53)],
        ));
    }
    s.touch(1_700_000_000);
    s.set_synced(true);
    let cfg = ZoneConfig { zones: vec!["inter.webs.test.".into()], ..serving_on("10.244.0.20") };
    let r = answer(s.lookup(&cfg, "inter.webs.test.", QType::Ns));
    assert_eq!(
        r.answers,
        vec![
            ns_rec("dns-service.kube-system.svc.inter.webs.test."),
            ns_rec("10-244-0-20.hdls-dns-service.kube-system.svc.inter.webs.test."),
            ns_rec("dns6-service.kube-system.svc.inter.webs.test."),
        ]
    );
    assert_eq!(
        r.additionals,
        vec![
            rec("dns-service.kube-system.svc.inter.webs.test.", a("10.0.0.111")),
            rec("10-244-0-20.hdls-dns-service.kube-system.svc.inter.webs.test.", a("10.244.0.20")),
            rec("dns6-service.kube-system.svc.inter.webs.test.", aaaa("10::111")),
        ]
    );
}

#[test]
fn apex_ns_with_a_dual_stack_service_is_one_ns_and_both_glue_records() {
    let mut s = with_dns_endpoint();
    s.apply_service(&service("kube-system", "kube-dns", "10.96.0.10,fd00::a", vec![port("dns", "UDP", 53)]));
    let r = answer(s.lookup(&serving_on("10.244.0.20"), "cluster.local.", QType::Ns));
    assert_eq!(r.answers, vec![ns_rec("kube-dns.kube-system.svc.cluster.local.")]);
    assert_eq!(
        r.additionals,
        vec![
            rec("kube-dns.kube-system.svc.cluster.local.", a("10.96.0.10")),
            rec("kube-dns.kube-system.svc.cluster.local.", aaaa("fd00::a")),
        ]
    );
}

#[test]
fn apex_ns_when_our_endpoint_has_no_service_is_nodata() {
    // nsAddrs found an endpoint, so it does not fall back to ns.dns, but no Service to name.
    let mut s = with_dns_endpoint();
    s.delete_service(&service("kube-system", "kube-dns", "10.96.0.10", vec![]));
    let cfg = serving_on("10.244.0.20");
    nodata_with_soa(&answer(s.lookup(&cfg, "cluster.local.", QType::Ns)), "cluster.local.");
    nodata_with_soa(&answer(s.lookup(&cfg, "ns.dns.cluster.local.", QType::A)), "cluster.local.");
}

#[test]
fn apex_ns_in_another_case_is_nodata() {
    // handler.go: `state.Name() == zone` compares the lowercased name with the zone as asked.
    let s = with_dns_endpoint();
    let r = answer(s.lookup(&serving_on("10.244.0.20"), "Cluster.Local.", QType::Ns));
    nodata_with_soa(&r, "Cluster.Local.");
}

#[test]
fn ns_below_the_apex_uses_the_fake_a_lookup() {
    // handler_test.go nsTestCases.
    let s = cluster();
    nodata_with_soa(&ask(&s, "svc.cluster.local.", QType::Ns), "cluster.local.");
    nodata_with_soa(&ask(&s, "shop.svc.cluster.local.", QType::Ns), "cluster.local.");
    assert_nx(&ask(&s, "foo.cluster.local.", QType::Ns));
    assert_nx(&ask(&s, "foo.svc.cluster.local.", QType::Ns));
    nodata_with_soa(&ask(&s, "ns.dns.cluster.local.", QType::Ns), "cluster.local.");
}

#[test]
fn ns_target_answers_its_addresses_by_family_only() {
    let s = with_dns_endpoint();
    let cfg = serving_on("10.244.0.20");
    let q = |name: &str, t: QType| answer(s.lookup(&cfg, name, t));
    // The glue again, owned by the name asked.
    let r = q("ns.dns.cluster.local.", QType::A);
    assert_eq!(r.answers, vec![Record { owner: Owner::Query, ttl: 30, data: a("10.96.0.10") }]);
    assert!(r.additionals.is_empty() && !r.is_negative());
    // Only the upper-case labels: still the NS target.
    assert_eq!(datas(&q("NS.DNS.cluster.local.", QType::A)), vec![a("10.96.0.10")]);
    // No address of that family, or another type: NODATA; TXT knows no such name.
    for t in [QType::Aaaa, QType::Srv, QType::Mx, QType::Cname, QType::Other] {
        nodata_with_soa(&q("ns.dns.cluster.local.", t), "cluster.local.");
    }
    assert_nx(&q("ns.dns.cluster.local.", QType::Txt));
    assert_nx(&q("ns.dns.cluster.local.", QType::Ptr));
    // The zone in another case, names around it: not the NS target, and no valid name.
    assert_nx(&q("NS.DNS.Cluster.Local.", QType::A));
    assert_nx(&q("x.ns.dns.cluster.local.", QType::A));
    assert_nx(&q("dns.cluster.local.", QType::A));
    // An IPv6 glue answers AAAA.
    let v6 = ZoneConfig { local_ips: vec!["2001:db8::53".parse().unwrap()], ..kubeadm() };
    let r = answer(cluster().lookup(&v6, "ns.dns.cluster.local.", QType::Aaaa));
    assert_eq!(datas(&r), vec![aaaa("2001:db8::53")]);
    nodata_with_soa(&answer(cluster().lookup(&v6, "ns.dns.cluster.local.", QType::A)), "cluster.local.");
}

#[test]
fn every_other_type_at_the_apex_is_nodata_but_txt() {
    let s = cluster();
    for t in [QType::A, QType::Aaaa, QType::Cname, QType::Ptr, QType::Mx, QType::Srv, QType::Other] {
        nodata_with_soa(&ask(&s, "cluster.local.", t), "cluster.local.");
    }
    // TXT: only dns-version exists; the apex has no records of any type, so NXDOMAIN.
    assert_nx(&ask(&s, "cluster.local.", QType::Txt));
    assert_eq!(ask(&s, "cluster.local.", QType::Axfr).rcode, Rcode::Refused);
}

#[test]
fn reverse_zone_apexes_are_zones_of_their_own() {
    let s = with_dns_endpoint();
    let cfg = serving_on("10.244.0.20");
    for zone in ["in-addr.arpa.", "ip6.arpa."] {
        let q = |t: QType| answer(s.lookup(&cfg, zone, t));
        assert_eq!(q(QType::Soa).answers, vec![soa(Owner::Query, zone)], "{zone}");
        // nsAddrs joins the Service name with the zone asked about.
        let r = q(QType::Ns);
        let target = format!("kube-dns.kube-system.svc.{zone}");
        assert_eq!(r.answers, vec![ns_rec(&target)], "{zone}");
        assert_eq!(r.additionals, vec![rec(&target, a("10.96.0.10"))], "{zone}");
        // Everything else at the apex is NODATA, not a fallthrough.
        for t in [QType::A, QType::Ptr, QType::Other] {
            nodata_with_soa(&q(t), zone);
        }
    }
    // The fallback names ns.dns in the reverse zone too.
    let r = answer(cluster().lookup(&serving_on("192.0.2.53"), "in-addr.arpa.", QType::Ns));
    assert_eq!(r.answers, vec![ns_rec("ns.dns.in-addr.arpa.")]);
    assert_eq!(r.additionals, vec![rec("ns.dns.in-addr.arpa.", a("192.0.2.53"))]);
}

#[test]
fn before_the_first_sync_misses_are_servfail_with_the_soa_and_fallthrough_still_wins() {
    let mut s = cluster();
    s.set_synced(false);
    let r = ask(&s, "nope.shop.svc.cluster.local.", QType::A);
    assert_eq!(r.rcode, Rcode::ServFail);
    assert!(r.answers.is_empty());
    assert_eq!(r.soa, soa(Owner::Name("cluster.local.".into()), "cluster.local."));
    // handler.go asks `fallthrough` first: reverse misses still go on to forward.
    assert_eq!(s.lookup(&kubeadm(), "9.9.9.9.in-addr.arpa.", QType::Ptr), Outcome::Fallthrough);
}
