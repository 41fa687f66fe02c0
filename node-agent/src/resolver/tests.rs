//! Tests for the stub resolver against [`FakeDns`]. The expected query sequences were taken
//! from glibc 2.36 run against an equivalent server.

use std::{
    net::IpAddr,
    sync::{Arc, atomic::AtomicU16},
    time::Duration,
};

use hickory_proto::rr::RecordType;

use super::{
    fake::{DNS, FakeDns, Mode, RESOLV_CONF, TRACEPARENT, addr},
    *,
};

fn resolver(conf: &str) -> Resolver {
    Resolver::from_resolv_conf(conf).with_ids(Ids::Sequence(Arc::new(AtomicU16::new(100))))
}

/// Each candidate name asked, with both types, as glibc's getaddrinfo sends them.
fn both(names: &[&str]) -> Vec<String> {
    names.iter().flat_map(|n| [format!("{n} A"), format!("{n} AAAA")]).collect()
}

// --- resolv.conf ---

#[test]
fn resolv_conf_defaults_and_caps() {
    let c = ResolvConf::parse("nameserver 10.96.0.10\n");
    assert_eq!(c.nameservers, [addr(DNS)]);
    assert_eq!((c.ndots, c.timeout_secs, c.attempts), (1, 5, 2));
    assert!(!c.single_request && !c.use_vc && !c.timeout_set && !c.attempts_set);

    let c = ResolvConf::parse(
        "nameserver 1.1.1.1\nnameserver 2.2.2.2\nnameserver 3.3.3.3\nnameserver 4.4.4.4\noptions ndots:20 timeout:99 attempts:9 single-request use-vc\n",
    );
    assert_eq!(c.nameservers.len(), 3, "glibc reads at most MAXNS=3");
    assert_eq!((c.ndots, c.timeout_secs, c.attempts), (15, 30, 5));
    assert!(c.single_request && c.use_vc && c.timeout_set && c.attempts_set);

    let c = ResolvConf::parse("search a.example\n");
    assert_eq!(c.nameservers, [addr("127.0.0.1:53")], "no nameserver: localhost");
    assert_eq!(c.search, ["a.example"]);
}

#[test]
fn server_timeouts_follow_glibc_send_dg() {
    // timeout:2 with three servers: 2 s, (2<<1)/3 = 1 s, (2<<2)/3 = 2 s (seen with glibc 2.36).
    let c = ResolvConf::parse(
        "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\noptions timeout:2\n",
    );
    let secs: Vec<u64> = (0..3).map(|i| c.server_timeout(i).as_secs()).collect();
    assert_eq!(secs, [2, 1, 2]);
    let c = ResolvConf::parse("nameserver 10.0.0.1\nnameserver 10.0.0.2\n");
    assert_eq!(c.server_timeout(0), Duration::from_secs(5));
    assert_eq!(c.server_timeout(1), Duration::from_secs(5));
}

#[test]
fn candidates_of_the_worked_example() {
    let c = ResolvConf::parse(RESOLV_CONF);
    let table: &[(&str, &[&str])] = &[
        (
            "cart",
            &[
                "cart.shop.svc.cluster.local.",
                "cart.svc.cluster.local.",
                "cart.cluster.local.",
                "cart.us-east-1.compute.internal.",
                "cart.",
            ],
        ),
        (
            "a.b.c.d.e.f",
            &[
                "a.b.c.d.e.f.",
                "a.b.c.d.e.f.shop.svc.cluster.local.",
                "a.b.c.d.e.f.svc.cluster.local.",
                "a.b.c.d.e.f.cluster.local.",
                "a.b.c.d.e.f.us-east-1.compute.internal.",
            ],
        ),
        ("api.stripe.com.", &["api.stripe.com."]),
    ];
    for (asked, want) in table {
        assert_eq!(c.candidates(asked), *want, "{asked}");
    }
}

// --- the glibc walk ---

#[tokio::test]
async fn cart_answers_at_the_first_suffix() {
    let dns = FakeDns::new();
    let ips = resolver(RESOLV_CONF).lookup_ip("cart", &dns).await.unwrap();
    assert_eq!(ips, [IpAddr::from([10, 96, 0, 20])]);
    assert_eq!(dns.queries(), both(&["cart.shop.svc.cluster.local."]));
}

#[tokio::test]
async fn cart_other_answers_at_the_second_suffix() {
    let dns = FakeDns::new();
    let l =
        resolver(RESOLV_CONF).lookup("cart.other", &[RecordType::A, RecordType::AAAA], &dns).await.unwrap();
    assert_eq!(l.addrs, [IpAddr::from([10, 96, 0, 21])]);
    assert_eq!(l.name, "cart.other.svc.cluster.local.");
    assert_eq!(dns.queries(), both(&["cart.other.shop.svc.cluster.local.", "cart.other.svc.cluster.local."]));
    let outcomes: Vec<String> = l.attempts.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        outcomes,
        [
            "cart.other.shop.svc.cluster.local. A @10.96.0.10#53/udp: NXDOMAIN",
            "cart.other.shop.svc.cluster.local. AAAA @10.96.0.10#53/udp: NXDOMAIN",
            "cart.other.svc.cluster.local. A @10.96.0.10#53/udp: NOERROR, 1 answer",
            "cart.other.svc.cluster.local. AAAA @10.96.0.10#53/udp: NOERROR",
        ]
    );
}

#[tokio::test]
async fn external_name_costs_four_nxdomains_then_the_absolute_name() {
    let dns = FakeDns::new();
    let l = resolver(RESOLV_CONF)
        .lookup("api.stripe.com", &[RecordType::A, RecordType::AAAA], &dns)
        .await
        .unwrap();
    assert_eq!(l.addrs, [IpAddr::from([54, 187, 174, 169])]);
    assert_eq!(
        dns.queries(),
        both(&[
            "api.stripe.com.shop.svc.cluster.local.",
            "api.stripe.com.svc.cluster.local.",
            "api.stripe.com.cluster.local.",
            "api.stripe.com.us-east-1.compute.internal.",
            "api.stripe.com.",
        ])
    );
    assert_eq!(l.attempts.len(), 10, "5 names, ~10 packets");
}

#[tokio::test]
async fn ndots_names_go_as_is_first_then_walk_the_search_list() {
    let dns = FakeDns::new();
    let err = resolver(RESOLV_CONF)
        .lookup("a.b.c.d.e.f", &[RecordType::A, RecordType::AAAA], &dns)
        .await
        .unwrap_err();
    assert_eq!(err.error, HErrno::HostNotFound);
    assert_eq!(
        dns.queries(),
        both(&[
            "a.b.c.d.e.f.",
            "a.b.c.d.e.f.shop.svc.cluster.local.",
            "a.b.c.d.e.f.svc.cluster.local.",
            "a.b.c.d.e.f.cluster.local.",
            "a.b.c.d.e.f.us-east-1.compute.internal.",
        ])
    );
}

#[tokio::test]
async fn trailing_dot_is_exactly_one_name() {
    let dns = FakeDns::new();
    let ips = resolver(RESOLV_CONF).lookup_ip("api.stripe.com.", &dns).await.unwrap();
    assert_eq!(ips, [IpAddr::from([54, 187, 174, 169])]);
    assert_eq!(dns.queries(), both(&["api.stripe.com."]));

    let dns = FakeDns::new();
    let err = resolver(RESOLV_CONF).lookup_ip("nope.", &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::HostNotFound);
    assert_eq!(dns.queries(), both(&["nope."]));
}

#[tokio::test]
async fn nodata_is_remembered_and_reported_when_nothing_answers() {
    let dns = FakeDns::new();
    let err = resolver(RESOLV_CONF).lookup_ip("nodata", &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::NoData);
    assert_eq!(
        dns.queries(),
        both(&[
            "nodata.shop.svc.cluster.local.",
            "nodata.svc.cluster.local.",
            "nodata.cluster.local.",
            "nodata.us-east-1.compute.internal.",
            "nodata.",
        ])
    );
    assert_eq!(err.attempts[0].outcome, Outcome::Rcode(ResponseCode::NoError));
}

#[tokio::test]
async fn servfail_is_retried_at_each_round_then_the_walk_goes_on() {
    let dns = FakeDns::new();
    let err = resolver(RESOLV_CONF).lookup_ip("sf", &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::TryAgain, "got_servfail → TRY_AGAIN");
    let mut want = both(&["sf.shop.svc.cluster.local.", "sf.shop.svc.cluster.local."]);
    want.extend(both(&[
        "sf.svc.cluster.local.",
        "sf.cluster.local.",
        "sf.us-east-1.compute.internal.",
        "sf.",
    ]));
    assert_eq!(dns.queries(), want);
}

#[tokio::test]
async fn refused_rcode_ends_the_search_list_but_the_name_is_tried_as_is() {
    let dns = FakeDns::new();
    let err = resolver(RESOLV_CONF).lookup_ip("ref", &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::HostNotFound, "h_errno of the as-is query");
    let mut want = both(&["ref.shop.svc.cluster.local.", "ref.shop.svc.cluster.local."]);
    want.extend(both(&["ref."]));
    assert_eq!(dns.queries(), want);
}

#[tokio::test]
async fn port_unreachable_is_try_again_at_once() {
    let dns = FakeDns::new().mode(DNS, Mode::Refuse);
    let err = resolver(RESOLV_CONF).lookup_ip("cart", &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::TryAgain);
    // Both rounds of the first candidate, and nothing after.
    assert_eq!(dns.queries(), both(&["cart.shop.svc.cluster.local.", "cart.shop.svc.cluster.local."]));
    assert!(err.attempts.iter().all(|a| a.outcome == Outcome::Socket(ErrorKind::Refused)));
}

#[tokio::test]
async fn timeouts_rotate_over_nameservers_for_attempts_rounds() {
    let conf =
        "nameserver 10.0.0.1\nnameserver 10.0.0.2\nnameserver 10.0.0.3\noptions timeout:2 attempts:2\n";
    let dns = FakeDns::new()
        .mode("10.0.0.1:53", Mode::Silent)
        .mode("10.0.0.2:53", Mode::Silent)
        .mode("10.0.0.3:53", Mode::Silent);
    let err = resolver(conf).lookup("x.y", &[RecordType::A], &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::TryAgain);
    let sends: Vec<(String, u64)> =
        dns.seen().iter().map(|s| (s.server.ip().to_string(), s.timeout.as_secs())).collect();
    let want: Vec<(String, u64)> = [
        ("10.0.0.1", 2),
        ("10.0.0.2", 1),
        ("10.0.0.3", 2),
        ("10.0.0.1", 2),
        ("10.0.0.2", 1),
        ("10.0.0.3", 2),
    ]
    .iter()
    .map(|(s, t)| (s.to_string(), *t))
    .collect();
    assert_eq!(sends, want);
}

#[tokio::test]
async fn a_silent_first_server_falls_over_to_the_second() {
    let conf = "nameserver 10.0.0.1\nnameserver 10.96.0.10\nsearch shop.svc.cluster.local\noptions ndots:5\n";
    let dns = FakeDns::new().mode("10.0.0.1:53", Mode::Silent);
    let l = resolver(conf).lookup("cart", &[RecordType::A, RecordType::AAAA], &dns).await.unwrap();
    assert_eq!(l.addrs, [IpAddr::from([10, 96, 0, 20])]);
    let servers: Vec<String> = l.attempts.iter().map(|a| a.to_string()).collect();
    assert_eq!(
        servers,
        [
            "cart.shop.svc.cluster.local. A @10.0.0.1#53/udp: timed out",
            "cart.shop.svc.cluster.local. AAAA @10.0.0.1#53/udp: timed out",
            "cart.shop.svc.cluster.local. A @10.96.0.10#53/udp: NOERROR, 1 answer",
            "cart.shop.svc.cluster.local. AAAA @10.96.0.10#53/udp: NOERROR",
        ]
    );
}

#[tokio::test]
async fn timeouts_end_the_search_list_then_the_name_is_tried_as_is() {
    // glibc: TRY_AGAIN without SERVFAIL is "done" with the search list.
    let conf =
        "nameserver 10.0.0.1\nsearch shop.svc.cluster.local svc.cluster.local\noptions ndots:5 attempts:1\n";
    let dns = FakeDns::new().mode("10.0.0.1:53", Mode::Silent);
    let err = resolver(conf).lookup_ip("cart", &dns).await.unwrap_err();
    assert_eq!(err.error, HErrno::TryAgain);
    assert_eq!(dns.queries(), both(&["cart.shop.svc.cluster.local.", "cart."]));
}

#[tokio::test]
async fn truncated_udp_answer_is_asked_again_over_tcp() {
    let dns = FakeDns::new();
    let l = resolver(RESOLV_CONF).lookup("big", &[RecordType::A], &dns).await.unwrap();
    assert_eq!(l.addrs, [IpAddr::from([10, 96, 0, 30])]);
    let sent: Vec<(String, bool)> = dns.seen().iter().map(|s| (s.name.clone(), s.tcp)).collect();
    assert_eq!(
        sent,
        [
            ("big.shop.svc.cluster.local.".to_string(), false),
            ("big.shop.svc.cluster.local.".to_string(), true)
        ]
    );
    assert_eq!(l.attempts.len(), 2);
    assert!(l.attempts[1].tcp);
}

#[tokio::test]
async fn use_vc_sends_everything_over_tcp_once_per_server() {
    let conf = "nameserver 10.0.0.1\noptions use-vc attempts:3\n";
    let dns = FakeDns::new().mode("10.0.0.1:53", Mode::Silent);
    let _ = resolver(conf).lookup("x.y", &[RecordType::A], &dns).await;
    let sent: Vec<bool> = dns.seen().iter().map(|s| s.tcp).collect();
    assert_eq!(sent, [true]);
}

#[tokio::test]
async fn cname_chains_are_followed() {
    let dns = FakeDns::new();
    let l = resolver(RESOLV_CONF).lookup("ext", &[RecordType::A, RecordType::AAAA], &dns).await.unwrap();
    assert_eq!(l.addrs, [IpAddr::from([93, 184, 215, 14])]);
    assert_eq!(l.canonical, "example.com");
    assert_eq!(l.aliases, ["ext.shop.svc.cluster.local"]);
    assert_eq!(l.name, "ext.shop.svc.cluster.local.");
}

#[tokio::test]
async fn a_records_come_before_aaaa() {
    let dns = FakeDns::new();
    let ips = resolver(RESOLV_CONF).lookup_ip("dual", &dns).await.unwrap();
    assert_eq!(ips, [IpAddr::from([10, 96, 0, 22]), "fd00:10:96::22".parse::<IpAddr>().unwrap()]);
}

#[tokio::test]
async fn every_query_has_rd_random_id_and_edns_with_the_traceparent() {
    let dns = FakeDns::new();
    resolver(RESOLV_CONF)
        .with_traceparent(Some(TRACEPARENT.to_string()))
        .lookup_ip("cart", &dns)
        .await
        .unwrap();
    let seen = dns.seen();
    assert_eq!(seen.len(), 2);
    for s in &seen {
        assert!(s.rd);
        assert_eq!(s.edns, Some((1232, vec![(EDNS_TRACEPARENT, TRACEPARENT.as_bytes().to_vec())])));
    }
    assert_eq!(EDNS_TRACEPARENT, 65001);
    assert_ne!(seen[0].id, seen[1].id);

    // Without an explicit one, the transport's.
    let mut dns = FakeDns::new();
    dns.traceparent = Some(TRACEPARENT.to_string());
    Resolver::from_resolv_conf(RESOLV_CONF).lookup_ip("cart", &dns).await.unwrap();
    let seen = dns.seen();
    assert_eq!(
        seen[0].edns.as_ref().map(|(_, o)| o.clone()),
        Some(vec![(65001, TRACEPARENT.as_bytes().to_vec())])
    );
    // And none at all: a bare OPT record.
    let dns = FakeDns::new();
    resolver(RESOLV_CONF).lookup_ip("cart", &dns).await.unwrap();
    assert_eq!(dns.seen()[0].edns, Some((1232, vec![])));
}

#[tokio::test]
async fn queries_carry_the_pods_ip_for_the_cluster_dns() {
    let mut dns = FakeDns::new();
    dns.source_ip = Some(IpAddr::from([10, 244, 1, 5]));
    resolver(RESOLV_CONF).lookup_ip("cart", &dns).await.unwrap();
    for s in dns.seen() {
        assert_eq!(s.edns, Some((1232, vec![(netlab_proto::trace::EDNS_SOURCE_IP, vec![10, 244, 1, 5])])));
    }
    assert_eq!(netlab_proto::trace::EDNS_SOURCE_IP, 65002);
}

#[tokio::test]
async fn reply_with_a_wrong_id_is_ignored_until_the_timeout() {
    let conf = "nameserver 10.96.0.10\noptions timeout:1 attempts:1\n";
    let dns = FakeDns::new().mode(DNS, Mode::WrongId);
    let started = std::time::Instant::now();
    let err =
        resolver(conf).lookup("cart.shop.svc.cluster.local.", &[RecordType::A], &dns).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(err.error, HErrno::TryAgain);
    assert_eq!(err.attempts[0].outcome, Outcome::Mismatch);
}

#[tokio::test]
async fn ip_literals_need_no_query() {
    let dns = FakeDns::new();
    let ips = resolver(RESOLV_CONF).lookup_ip("10.96.0.20", &dns).await.unwrap();
    assert_eq!(ips, [IpAddr::from([10, 96, 0, 20])]);
    assert!(dns.queries().is_empty());
}

#[test]
fn failures_map_to_getaddrinfo_errors() {
    let f = |error| ResolveFailure { name: "cart".into(), error, attempts: vec![] };
    assert_eq!(ResolveError::from(f(HErrno::HostNotFound)), ResolveError::NotFound);
    assert_eq!(ResolveError::from(f(HErrno::NoData)), ResolveError::NotFound);
    let failed = ResolveError::from(f(HErrno::TryAgain));
    assert_eq!(failed, ResolveError::Failed(f(HErrno::TryAgain)));
    assert_eq!(failed.to_string(), "cart: Host name lookup failure");
    assert_eq!(failed.gai_strerror(), "Try again");
    assert_eq!(ResolveError::NotFound.gai_strerror(), "Name does not resolve");
    assert_eq!(HErrno::TryAgain.gai_message(), "Temporary failure in name resolution");
}
