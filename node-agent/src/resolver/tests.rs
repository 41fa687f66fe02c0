//! Tests for the resolver and the DNS commands, against [`FakeDns`]: a tiny authoritative
//! server (answers built with hickory, CoreDNS-like: AA, no RA, SOA on negative answers) that
//! records every query it receives. The expected outputs were taken from the real BIND 9.18
//! tools and glibc 2.36 run against an equivalent server; `interop` re-checks dig's against
//! the real binary when it is installed.

use std::{
    collections::{HashMap, HashSet},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex, atomic::AtomicU16},
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, PTR, SOA, TXT},
    },
};

use super::*;

/// The worked example's pod: namespace `shop`, the AWS host search domain, ndots:5.
const RESOLV_CONF: &str =
    "search shop.svc.cluster.local svc.cluster.local cluster.local us-east-1.compute.internal
nameserver 10.96.0.10
options ndots:5
";

const DNS: &str = "10.96.0.10:53";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// What a server does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    /// Drops it: the client times out.
    Silent,
    /// ICMP port-unreachable.
    Refuse,
    /// Answers with a wrong id.
    WrongId,
}

/// The UDP payload size and the options (code, value) of an OPT record.
type Opt = (u16, Vec<(u16, Vec<u8>)>);

/// One query the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    server: SocketAddr,
    name: String,
    rtype: RecordType,
    tcp: bool,
    timeout: Duration,
    id: u16,
    rd: bool,
    edns: Option<Opt>,
}

/// A tiny authoritative server behind the [`Transport`] trait.
struct FakeDns {
    zone: HashMap<String, Vec<Record>>,
    servfail: HashSet<String>,
    refused: HashSet<String>,
    /// Names whose UDP answers are truncated.
    truncated: HashSet<String>,
    modes: HashMap<SocketAddr, Mode>,
    ra: bool,
    echo_options: bool,
    traceparent: Option<String>,
    seen: Mutex<Vec<Seen>>,
}

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn soa() -> Record {
    Record::from_rdata(
        name("cluster.local."),
        30,
        RData::SOA(SOA::new(
            name("ns.dns.cluster.local."),
            name("hostmaster.cluster.local."),
            1_700_000_000,
            7200,
            1800,
            86400,
            30,
        )),
    )
}

// === impl FakeDns ===

impl FakeDns {
    fn new() -> Self {
        let mut f = FakeDns {
            zone: HashMap::new(),
            servfail: ["sf.shop.svc.cluster.local".to_string()].into(),
            refused: ["ref.shop.svc.cluster.local".to_string()].into(),
            truncated: ["big.shop.svc.cluster.local".to_string()].into(),
            modes: HashMap::new(),
            ra: false,
            echo_options: false,
            traceparent: None,
            seen: Mutex::new(Vec::new()),
        };
        let a = |ip: [u8; 4]| RData::A(A(Ipv4Addr::from(ip)));
        f.add("cart.shop.svc.cluster.local.", 30, a([10, 96, 0, 20]));
        f.add("cart.other.svc.cluster.local.", 30, a([10, 96, 0, 21]));
        f.add("dual.shop.svc.cluster.local.", 30, a([10, 96, 0, 22]));
        f.add(
            "dual.shop.svc.cluster.local.",
            30,
            RData::AAAA(AAAA("fd00:10:96::22".parse::<Ipv6Addr>().unwrap())),
        );
        f.add("multi.shop.svc.cluster.local.", 30, a([10, 244, 1, 5]));
        f.add("multi.shop.svc.cluster.local.", 30, a([10, 244, 2, 7]));
        f.add("ext.shop.svc.cluster.local.", 30, RData::CNAME(CNAME(name("example.com."))));
        f.add("example.com.", 300, a([93, 184, 215, 14]));
        f.add("api.stripe.com.", 60, a([54, 187, 174, 169]));
        f.add("nodata.shop.svc.cluster.local.", 30, RData::TXT(TXT::new(vec!["hello".to_string()])));
        f.add("big.shop.svc.cluster.local.", 30, a([10, 96, 0, 30]));
        f.add("20.0.96.10.in-addr.arpa.", 30, RData::PTR(PTR(name("cart.shop.svc.cluster.local."))));
        f
    }

    fn add(&mut self, owner: &str, ttl: u32, data: RData) {
        self.zone
            .entry(owner.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(Record::from_rdata(name(owner), ttl, data));
    }

    fn mode(mut self, server: &str, mode: Mode) -> Self {
        self.modes.insert(addr(server), mode);
        self
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `name TYPE` of every query, in order.
    fn queries(&self) -> Vec<String> {
        self.seen().iter().map(|s| format!("{} {}", s.name, s.rtype)).collect()
    }

    /// The reply to `query`, as CoreDNS's kubernetes plugin would build it.
    fn answer(&self, query: &[u8], tcp: bool) -> Vec<u8> {
        let q = Message::from_vec(query).unwrap();
        let question = q.queries[0].clone();
        let mut r = Message::new(q.metadata.id, MessageType::Response, OpCode::Query);
        r.metadata.recursion_desired = q.metadata.recursion_desired;
        r.metadata.recursion_available = self.ra;
        r.metadata.authoritative = true;
        r.add_query(question.clone());
        if let Some(edns) = &q.edns {
            let mut e = Edns::new();
            e.set_max_payload(1232);
            if self.echo_options {
                for (code, option) in edns.options().as_ref() {
                    let _ = code;
                    e.options_mut().insert(option.clone());
                }
            }
            r.set_edns(e);
        }
        let key = |n: &Name| n.to_ascii().trim_end_matches('.').to_ascii_lowercase();
        let qkey = key(question.name());
        if self.servfail.contains(&qkey) {
            r.metadata.response_code = ResponseCode::ServFail;
        } else if self.refused.contains(&qkey) {
            r.metadata.response_code = ResponseCode::Refused;
        } else if self.truncated.contains(&qkey) && !tcp {
            r.metadata.truncation = true;
        } else {
            let mut owner = question.name().clone();
            loop {
                let Some(records) = self.zone.get(&key(&owner)) else {
                    if r.answers.is_empty() {
                        r.metadata.response_code = ResponseCode::NXDomain;
                    }
                    break;
                };
                let cname = records.iter().find_map(|rec| match &rec.data {
                    RData::CNAME(c) if question.query_type() != RecordType::CNAME => Some(c.0.clone()),
                    _ => None,
                });
                if let Some(target) = cname {
                    // The answer echoes the query's case, as CoreDNS does.
                    let mut rec = records[0].clone();
                    rec.name = owner.clone();
                    r.add_answer(rec);
                    owner = target;
                    continue;
                }
                for rec in records {
                    if rec.record_type() == question.query_type() {
                        let mut rec = rec.clone();
                        rec.name = owner.clone();
                        r.add_answer(rec);
                    }
                }
                break;
            }
            if r.answers.is_empty() {
                r.add_authority(soa());
            }
        }
        r.to_vec().unwrap()
    }
}

#[async_trait::async_trait]
impl Transport for FakeDns {
    async fn exchange(
        &self,
        server: SocketAddr,
        message: Vec<u8>,
        tcp: bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        let q = Message::from_vec(&message).unwrap();
        self.seen.lock().unwrap().push(Seen {
            server,
            name: q.queries[0].name().to_string(),
            rtype: q.queries[0].query_type(),
            tcp,
            timeout,
            id: q.metadata.id,
            rd: q.metadata.recursion_desired,
            edns: q.edns.as_ref().map(|e| (e.max_payload(), wire::edns_options(e))),
        });
        match self.modes.get(&server).copied().unwrap_or(Mode::Answer) {
            Mode::Answer => Ok(self.answer(&message, tcp)),
            // The wait itself is the transport's; the fake only records what it was asked.
            Mode::Silent => Err(TransportError::TimedOut),
            Mode::Refuse => Err(TransportError::Refused),
            Mode::WrongId => {
                let mut r = Message::from_vec(&self.answer(&message, tcp)).unwrap();
                r.metadata.id = r.metadata.id.wrapping_add(1);
                Ok(r.to_vec().unwrap())
            }
        }
    }

    fn traceparent(&self) -> Option<String> {
        self.traceparent.clone()
    }
}

fn resolver(conf: &str) -> Resolver {
    Resolver::from_resolv_conf(conf).with_ids(Ids::Sequence(Arc::new(AtomicU16::new(100))))
}

fn env() -> Env {
    Env {
        ids: Ids::Sequence(Arc::new(AtomicU16::new(100))),
        now: Some("2026-11-26T08:31:14Z".parse().unwrap()),
    }
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
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
    assert!(err.attempts.iter().all(|a| a.outcome == Outcome::Transport(TransportError::Refused)));
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
        assert_eq!(s.edns, Some((1232, vec![(TRACEPARENT_OPTION, TRACEPARENT.as_bytes().to_vec())])));
    }
    assert_eq!(TRACEPARENT_OPTION, 65001);
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
fn failures_map_to_the_toolbox() {
    use crate::apps::toolbox::ResolveError;
    let f = |error| ResolveFailure { name: "cart".into(), error, attempts: vec![] };
    assert_eq!(f(HErrno::HostNotFound).into_toolbox(), ResolveError::NotFound);
    assert_eq!(f(HErrno::NoData).into_toolbox(), ResolveError::NotFound);
    assert_eq!(
        f(HErrno::TryAgain).into_toolbox(),
        ResolveError::Failed("cart: Host name lookup failure".into())
    );
    assert_eq!(HErrno::TryAgain.gai_message(), "Temporary failure in name resolution");
}

// --- nslookup ---

#[tokio::test]
async fn nslookup_short_name() {
    let dns = FakeDns::new();
    let out = nslookup::run(&args("cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

Name:\tcart.shop.svc.cluster.local
Address: 10.96.0.20
;; Got recursion not available from 10.96.0.10

"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    assert_eq!(dns.queries(), ["cart.shop.svc.cluster.local. A", "cart.shop.svc.cluster.local. AAAA"]);
}

#[tokio::test]
async fn nslookup_nxdomain_walks_the_search_list() {
    let dns = FakeDns::new();
    let out = nslookup::run(&args("nope"), RESOLV_CONF, &dns, &env()).await;
    let comment = ";; Got recursion not available from 10.96.0.10\n";
    assert_eq!(
        out.stdout,
        format!(
            "{}Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find nope: NXDOMAIN\n\n",
            comment.repeat(5)
        )
    );
    assert_eq!(out.code, 1);
    // BIND's search: A only, continued on NXDOMAIN.
    assert_eq!(
        dns.queries(),
        [
            "nope.shop.svc.cluster.local. A",
            "nope.svc.cluster.local. A",
            "nope.cluster.local. A",
            "nope.us-east-1.compute.internal. A",
            "nope. A"
        ]
    );
}

#[tokio::test]
async fn nslookup_cname_dual_stack_and_nodata() {
    let dns = FakeDns::new();
    let out = nslookup::run(&args("ext"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

ext.shop.svc.cluster.local\tcanonical name = example.com.
Name:\texample.com
Address: 93.184.215.14
;; Got recursion not available from 10.96.0.10

"
    );
    assert_eq!(dns.queries(), ["ext.shop.svc.cluster.local. A", "example.com. AAAA"]);

    let out = nslookup::run(&args("dual"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

Name:\tdual.shop.svc.cluster.local
Address: 10.96.0.22
;; Got recursion not available from 10.96.0.10
Name:\tdual.shop.svc.cluster.local
Address: fd00:10:96::22

"
    );

    let out = nslookup::run(&args("nodata"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

;; Got recursion not available from 10.96.0.10
*** Can't find nodata.shop.svc.cluster.local: No answer

"
    );
    assert_eq!(out.code, 0);
}

#[tokio::test]
async fn nslookup_servfail_stops_the_search() {
    let out = nslookup::run(&args("sf"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(
        out.stdout,
        ";; Got SERVFAIL reply from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

** server can't find sf.shop.svc.cluster.local: SERVFAIL

"
    );
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn nslookup_timeout() {
    let dns = FakeDns::new().mode(DNS, Mode::Silent);
    let out = nslookup::run(&args("cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out
;; no servers could be reached

"
    );
    assert_eq!(out.code, 1);
    assert!(dns.seen().iter().all(|s| s.timeout == Duration::from_secs(5)));
}

#[tokio::test]
async fn nslookup_with_server_type_and_reverse() {
    let dns = FakeDns::new();
    let out = nslookup::run(
        &args("-type=AAAA cart.shop.svc.cluster.local 10.96.0.10"),
        "nameserver 1.1.1.1\n",
        &dns,
        &env(),
    )
    .await;
    // A server named on the command line is not checked for RA.
    assert_eq!(
        out.stdout,
        "Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

*** Can't find cart.shop.svc.cluster.local: No answer

"
    );
    assert_eq!(dns.seen()[0].server, addr(DNS));

    let out = nslookup::run(&args("10.96.0.20"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
20.0.96.10.in-addr.arpa\tname = cart.shop.svc.cluster.local.

"
    );
    assert_eq!(out.code, 0);
}

#[tokio::test]
async fn nslookup_bad_option_and_no_name() {
    let out = nslookup::run(&args("-bogus cart"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert!(out.stdout.starts_with("*** Invalid option: bogus\n;; Got recursion"));
    assert_eq!(out.code, 0);
    let out = nslookup::run(&[], RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!((out.stdout.as_str(), out.code), ("\n", 1));
}

// --- host ---

#[tokio::test]
async fn host_found_follows_up_with_aaaa_and_mx() {
    let dns = FakeDns::new();
    let out = host::run(&args("cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(out.stdout, "cart.shop.svc.cluster.local has address 10.96.0.20\n");
    assert_eq!(out.code, 0);
    assert_eq!(
        dns.queries(),
        [
            "cart.shop.svc.cluster.local. A",
            "cart.shop.svc.cluster.local. AAAA",
            "cart.shop.svc.cluster.local. MX"
        ]
    );

    let dns = FakeDns::new();
    let out = host::run(&args("ext"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        "ext.shop.svc.cluster.local is an alias for example.com.\nexample.com has address 93.184.215.14\n"
    );
    assert_eq!(dns.queries(), ["ext.shop.svc.cluster.local. A", "example.com. AAAA", "example.com. MX"]);

    let out = host::run(&args("dual"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(
        out.stdout,
        "dual.shop.svc.cluster.local has address 10.96.0.22\ndual.shop.svc.cluster.local has IPv6 address fd00:10:96::22\n"
    );
}

#[tokio::test]
async fn host_not_found() {
    let dns = FakeDns::new();
    let out = host::run(&args("nope"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(out.stdout, "Host nope not found: 3(NXDOMAIN)\n");
    assert_eq!(out.code, 1);
    assert_eq!(dns.queries().len(), 5);

    let out = host::run(&args("sf"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(out.stdout, "Host sf.shop.svc.cluster.local not found: 2(SERVFAIL)\n");
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn host_with_type_and_server() {
    let out = host::run(
        &args("-t AAAA cart.shop.svc.cluster.local 10.96.0.10"),
        RESOLV_CONF,
        &FakeDns::new(),
        &env(),
    )
    .await;
    assert_eq!(
        out.stdout,
        "Using domain server:\nName: 10.96.0.10\nAddress: 10.96.0.10#53\nAliases: \n\ncart.shop.svc.cluster.local has no AAAA record\n"
    );
    let out = host::run(&args("10.96.0.20"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(out.stdout, "20.0.96.10.in-addr.arpa domain name pointer cart.shop.svc.cluster.local.\n");
}

#[tokio::test]
async fn host_timeout_and_usage() {
    let dns = FakeDns::new().mode(DNS, Mode::Silent);
    let out = host::run(&args("cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.96.0.10#53: timed out\n;; communications error to 10.96.0.10#53: timed out\n;; no servers could be reached\n"
    );
    assert_eq!(out.code, 1);

    let out = host::run(&args("-z cart"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert!(out.stderr.starts_with("host: illegal option -- z\nUsage: host [-aCdilrTvVw]"));
    assert_eq!((out.stdout.as_str(), out.code), ("", 1));
    let out = host::run(&[], RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert!(out.stderr.starts_with("Usage: host"));
    assert_eq!(out.code, 1);
}

// --- getent ---

#[tokio::test]
async fn getent_hosts_asks_aaaa_through_the_whole_walk_first() {
    let dns = FakeDns::new();
    let out = getent::run(&args("hosts cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(out.stdout, "10.96.0.20      cart.shop.svc.cluster.local\n");
    assert_eq!(out.code, 0);
    assert_eq!(
        dns.queries(),
        [
            "cart.shop.svc.cluster.local. AAAA",
            "cart.svc.cluster.local. AAAA",
            "cart.cluster.local. AAAA",
            "cart.us-east-1.compute.internal. AAAA",
            "cart. AAAA",
            "cart.shop.svc.cluster.local. A",
        ]
    );
}

#[tokio::test]
async fn getent_hosts_lines() {
    let run = |key: &'static str| async move {
        getent::run(&args(&format!("hosts {key}")), RESOLV_CONF, &FakeDns::new(), &env()).await
    };
    assert_eq!(run("dual").await.stdout, "fd00:10:96::22  dual.shop.svc.cluster.local\n");
    assert_eq!(
        run("multi").await.stdout,
        "10.244.1.5      multi.shop.svc.cluster.local\n10.244.2.7      multi.shop.svc.cluster.local\n"
    );
    assert_eq!(run("ext").await.stdout, "93.184.215.14   example.com ext.shop.svc.cluster.local\n");
    assert_eq!(run("10.96.0.20").await.stdout, "10.96.0.20      cart.shop.svc.cluster.local\n");
    let nope = run("nope").await;
    assert_eq!((nope.stdout.as_str(), nope.stderr.as_str(), nope.code), ("", "", 2));
}

#[tokio::test]
async fn getent_usage_errors() {
    let dns = FakeDns::new();
    let out = getent::run(&args("passwdx root"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out,
        CommandOutput {
            stdout: "Try `getent --help' or `getent --usage' for more information.\n".into(),
            stderr: "Unknown database: passwdx\n".into(),
            code: 1
        }
    );
    let out = getent::run(&[], RESOLV_CONF, &dns, &env()).await;
    assert_eq!((out.stderr.as_str(), out.code), ("getent: wrong number of arguments\n", 1));
    let out = getent::run(&args("-x hosts a"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "getent: invalid option -- 'x'\nTry `getent --help' or `getent --usage' for more information.\n",
            64
        )
    );
}

// --- dig ---

/// dig's full output for one UDP reply from 10.96.0.10, id 100.
fn dig_block(cmd: &str, header: &str, body: &str, size: usize) -> String {
    format!(
        "\n; <<>> DiG 9.18.39 <<>> {cmd}\n;; global options: +cmd\n;; Got answer:\n{header}\n;; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232\n{body};; Query time: 0 msec\n;; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)\n;; WHEN: Thu Nov 26 08:31:14 UTC 2026\n;; MSG SIZE  rcvd: {size}\n\n"
    )
}

const MDNS: &str = ";; WARNING: .local is reserved for Multicast DNS\n;; You are currently testing what happens when an mDNS query is leaked to DNS\n";

#[tokio::test]
async fn dig_full_output() {
    let dns = FakeDns::new();
    let out = dig::run(&args("cart.shop.svc.cluster.local"), RESOLV_CONF, &dns, &env()).await;
    let want = dig_block(
        "cart.shop.svc.cluster.local",
        &format!(
            "{MDNS};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 100\n;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n"
        ),
        ";; QUESTION SECTION:\n;cart.shop.svc.cluster.local.\tIN\tA\n\n;; ANSWER SECTION:\ncart.shop.svc.cluster.local. 30\tIN\tA\t10.96.0.20\n\n",
        72,
    );
    assert_eq!(out.stdout, want);
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    // No search list without +search; a client cookie in the OPT record.
    let seen = dns.seen();
    assert_eq!(dns.queries(), ["cart.shop.svc.cluster.local. A"]);
    let options = &seen[0].edns.as_ref().unwrap().1;
    assert_eq!(options.len(), 1);
    assert_eq!((options[0].0, options[0].1.len()), (10, 8));
}

#[tokio::test]
async fn dig_nxdomain_without_search() {
    let dns = FakeDns::new();
    let out = dig::run(&args("cart"), RESOLV_CONF, &dns, &env()).await;
    let want = dig_block(
        "cart",
        ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 100\n;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n",
        ";; QUESTION SECTION:\n;cart.\t\t\t\tIN\tA\n\n;; AUTHORITY SECTION:\ncluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30\n\n",
        100,
    );
    assert_eq!(out.stdout, want);
    assert_eq!(out.code, 0, "dig exits 0 on NXDOMAIN");
    assert_eq!(dns.queries(), ["cart. A"]);
}

#[tokio::test]
async fn dig_short_answer_only_and_search() {
    let dns = FakeDns::new();
    let out = dig::run(&args("+short +search cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(out.stdout, "10.96.0.20\n");
    assert_eq!(dns.queries(), ["cart.shop.svc.cluster.local. A"]);

    let out =
        dig::run(&args("+short ext.shop.svc.cluster.local"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(out.stdout, "example.com.\n93.184.215.14\n");

    let out =
        dig::run(&args("+noall +answer multi.shop.svc.cluster.local"), RESOLV_CONF, &FakeDns::new(), &env())
            .await;
    assert_eq!(
        out.stdout,
        "multi.shop.svc.cluster.local. 30 IN\tA\t10.244.1.5\nmulti.shop.svc.cluster.local. 30 IN\tA\t10.244.2.7\n"
    );

    let out = dig::run(&args("+short nope.x"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!((out.stdout.as_str(), out.code), ("", 0));
}

#[tokio::test]
async fn dig_showsearch_prints_every_candidate() {
    let dns = FakeDns::new();
    let out = dig::run(&args("+showsearch cart.other"), RESOLV_CONF, &dns, &env()).await;
    let first = dig_block(
        "+showsearch cart.other",
        &format!(
            "{MDNS};; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 100\n;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n"
        ),
        ";; QUESTION SECTION:\n;cart.other.shop.svc.cluster.local. IN\tA\n\n;; AUTHORITY SECTION:\ncluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30\n\n",
        116,
    );
    let second = dig_block(
        "+showsearch cart.other",
        &format!(
            "{MDNS};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 101\n;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n"
        ),
        ";; QUESTION SECTION:\n;cart.other.svc.cluster.local.\tIN\tA\n\n;; ANSWER SECTION:\ncart.other.svc.cluster.local. 30 IN\tA\t10.96.0.21\n\n",
        73,
    );
    assert_eq!(out.stdout, format!("{first}{second}"));
}

#[tokio::test]
async fn dig_tcp_truncation_and_reverse() {
    let out = dig::run(
        &args("+tcp +noall +answer +stats cart.shop.svc.cluster.local"),
        RESOLV_CONF,
        &FakeDns::new(),
        &env(),
    )
    .await;
    assert!(out.stdout.contains(";; SERVER: 10.96.0.10#53(10.96.0.10) (TCP)\n"), "{}", out.stdout);

    let dns = FakeDns::new();
    let out = dig::run(&args("+noall +answer big.shop.svc.cluster.local"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; Truncated, retrying in TCP mode.\nbig.shop.svc.cluster.local. 30\tIN\tA\t10.96.0.30\n"
    );
    let tcp: Vec<bool> = dns.seen().iter().map(|s| s.tcp).collect();
    assert_eq!(tcp, [false, true]);

    let out = dig::run(&args("+short -x 10.96.0.20"), RESOLV_CONF, &FakeDns::new(), &env()).await;
    assert_eq!(out.stdout, "cart.shop.svc.cluster.local.\n");
}

#[tokio::test]
async fn dig_timeout_and_refused() {
    let dns = FakeDns::new().mode(DNS, Mode::Silent);
    let out = dig::run(&args("cart.shop.svc.cluster.local"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out

; <<>> DiG 9.18.39 <<>> cart.shop.svc.cluster.local
;; global options: +cmd
;; no servers could be reached
"
    );
    assert_eq!(out.code, 9);

    let dns = FakeDns::new().mode(DNS, Mode::Refuse);
    let out = dig::run(&args("@10.96.0.10 +tcp cart"), RESOLV_CONF, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; Connection to 10.96.0.10#53(10.96.0.10) for cart failed: connection refused.\n;; no servers could be reached\n".repeat(3)
    );
    assert_eq!(out.code, 9);
}

#[tokio::test]
async fn dig_tries_first_server_then_one_send_each_other() {
    let conf = "nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions timeout:1 attempts:2\n";
    let dns = FakeDns::new().mode("10.0.0.1:53", Mode::Silent).mode("10.0.0.2:53", Mode::Silent);
    let out = dig::run(&args("cart.x"), conf, &dns, &env()).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.0.0.1#53: timed out
;; communications error to 10.0.0.1#53: timed out
;; communications error to 10.0.0.2#53: timed out

; <<>> DiG 9.18.39 <<>> cart.x
;; global options: +cmd
;; no servers could be reached
"
    );
    assert!(dns.seen().iter().all(|s| s.timeout == Duration::from_secs(1)));
}

#[tokio::test]
async fn dig_server_port_options_and_traceparent() {
    let mut dns = FakeDns::new();
    dns.echo_options = true;
    dns.traceparent = Some("00-ab".to_string());
    let out = dig::run(
        &args("@10.96.0.10 -p 5353 +nocookie cart.shop.svc.cluster.local"),
        RESOLV_CONF,
        &dns,
        &env(),
    )
    .await;
    assert!(out.stdout.starts_with(
        "\n; <<>> DiG 9.18.39 <<>> @10.96.0.10 -p 5353 +nocookie cart.shop.svc.cluster.local\n; (1 server found)\n;; global options: +cmd\n"
    ));
    assert!(
        out.stdout
            .contains("; EDNS: version: 0, flags:; udp: 1232\n; OPT=65001: 30 30 2d 61 62 (\"00-ab\")\n;; QUESTION SECTION:\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(";; SERVER: 10.96.0.10#5353(10.96.0.10) (UDP)\n"));
    assert_eq!(dns.seen()[0].server, addr("10.96.0.10:5353"));
}

#[tokio::test]
async fn dig_echoed_cookie() {
    let mut dns = FakeDns::new();
    dns.echo_options = true;
    let out =
        dig::run(&args("+noall +comments cart.shop.svc.cluster.local"), RESOLV_CONF, &dns, &env()).await;
    let seen = dns.seen();
    let cookie = &seen[0].edns.as_ref().unwrap().1[0].1;
    let hex: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
    assert!(out.stdout.contains(&format!("; COOKIE: {hex} (echoed)\n")), "{}", out.stdout);
}

#[tokio::test]
async fn dig_usage_errors() {
    for bad in ["+bogus", "-z"] {
        let out = dig::run(&args(&format!("{bad} cart")), RESOLV_CONF, &FakeDns::new(), &env()).await;
        assert_eq!(out.code, 1);
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr.starts_with(&format!(
                "Invalid option: {bad}\nUsage:  dig [@global-server] [domain] [q-type] [q-class] {{q-opt}}\n"
            )),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn presentation_columns() {
    let mut out = String::new();
    let mut col = 0;
    text::indent(&mut out, &mut col, 24);
    assert_eq!((out.as_str(), col), ("\t\t\t", 24));
    let r = Record::from_rdata(name("example.com."), 300, RData::A(A(Ipv4Addr::new(93, 184, 215, 14))));
    assert_eq!(text::record_line(&r, text::DIG_COLUMNS), "example.com.\t\t300\tIN\tA\t93.184.215.14");
    assert_eq!(
        text::question_line(&name("example.com."), RecordType::A, text::DIG_COLUMNS),
        "example.com.\t\t\tIN\tA"
    );
    assert_eq!(
        text::reverse_name("fd00::1".parse().unwrap()),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."
    );
}

/// Checks our dig against the real one (BIND 9.18, `apt-get install bind9-dnsutils`): both ask
/// the same fake, served on real sockets; ids, times, dates and the version are normalised.
#[tokio::test]
#[ignore = "needs the real dig (bind9-dnsutils)"]
async fn interop_with_real_dig() {
    let dns = Arc::new(FakeDns::new());
    let port = serve(dns.clone()).await;
    let conf = "nameserver 127.0.0.1\n";
    let cases = [
        "cart.shop.svc.cluster.local",
        "nope.shop.svc.cluster.local",
        "ext.shop.svc.cluster.local",
        "dual.shop.svc.cluster.local AAAA",
        "nodata.shop.svc.cluster.local TXT",
        "sf.shop.svc.cluster.local",
        "cart.other.svc.cluster.local",
        "+noall +answer multi.shop.svc.cluster.local",
        "+short ext.shop.svc.cluster.local",
        "-x 10.96.0.20",
        "+tcp cart.shop.svc.cluster.local",
        "example.com",
        "cart",
    ];
    for case in cases {
        let line = format!("@127.0.0.1 -p {port} +nocookie {case}");
        let real =
            tokio::process::Command::new("dig").args(line.split_whitespace()).output().await.expect("dig");
        let ours = dig::run(&args(&line), conf, &UdpTransport, &Env::default()).await;
        assert_eq!(normalise(&ours.stdout), normalise(&String::from_utf8_lossy(&real.stdout)), "dig {line}");
        assert_eq!(Some(ours.code), real.status.code(), "dig {line}");
    }
}

/// nslookup and host against the real binaries, with an explicit server (their search list
/// comes from the machine's /etc/resolv.conf, so only absolute-enough names are compared).
#[tokio::test]
#[ignore = "needs the real nslookup and host (bind9-dnsutils)"]
async fn interop_with_real_nslookup_and_host() {
    let dns = Arc::new(FakeDns::new());
    let port = serve(dns.clone()).await;
    let conf = "nameserver 127.0.0.1\n";
    let names = [
        "cart.shop.svc.cluster.local",
        "nope.shop.svc.cluster.local",
        "ext.shop.svc.cluster.local",
        "dual.shop.svc.cluster.local",
        "multi.shop.svc.cluster.local",
        "nodata.shop.svc.cluster.local",
        "sf.shop.svc.cluster.local",
        "10.96.0.20",
    ];
    for name in names {
        for (tool, line) in [
            ("nslookup", format!("-port={port} {name} 127.0.0.1")),
            ("nslookup", format!("-port={port} -type=AAAA {name} 127.0.0.1")),
            ("host", format!("-p {port} {name} 127.0.0.1")),
            ("host", format!("-p {port} -t AAAA {name} 127.0.0.1")),
        ] {
            let real =
                tokio::process::Command::new(tool).args(line.split_whitespace()).output().await.expect(tool);
            let ours = match tool {
                "nslookup" => nslookup::run(&args(&line), conf, &UdpTransport, &Env::default()).await,
                _ => host::run(&args(&line), conf, &UdpTransport, &Env::default()).await,
            };
            assert_eq!(ours.stdout, String::from_utf8_lossy(&real.stdout), "{tool} {line}");
            assert_eq!(Some(ours.code), real.status.code(), "{tool} {line}");
        }
    }
}

/// Blanks out what differs between two runs of dig.
fn normalise(s: &str) -> String {
    s.lines()
        .map(|l| {
            if let Some(at) = l.find(", id: ") {
                format!("{}, id: N", &l[..at])
            } else if l.starts_with(";; WHEN:") {
                ";; WHEN: -".into()
            } else if l.starts_with(";; Query time:") {
                ";; Query time: -".into()
            } else if let Some(rest) = l.strip_prefix("; <<>> DiG ") {
                format!("; <<>> DiG V <<>>{}", rest.split_once(" <<>>").map_or("", |(_, r)| r))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Serves `dns` on 127.0.0.1, UDP and TCP on the same port.
async fn serve(dns: Arc<FakeDns>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (udp, tcp) = loop {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await {
            break (udp, tcp);
        }
    };
    let port = udp.local_addr().unwrap().port();
    let d = dns.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let reply = d.answer(&buf[..n], false);
            let _ = udp.send_to(&reply, from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let d = dns.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                while s.read_exact(&mut len).await.is_ok() {
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let r = d.answer(&q, true);
                    let _ = s.write_all(&(r.len() as u16).to_be_bytes()).await;
                    let _ = s.write_all(&r).await;
                }
            });
        }
    });
    port
}

/// Real sockets, for [`interop_with_real_dig`].
struct UdpTransport;

#[async_trait::async_trait]
impl Transport for UdpTransport {
    async fn exchange(
        &self,
        server: SocketAddr,
        message: Vec<u8>,
        tcp: bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, TransportError> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let io = async {
            if tcp {
                let mut s = tokio::net::TcpStream::connect(server).await?;
                s.write_all(&(message.len() as u16).to_be_bytes()).await?;
                s.write_all(&message).await?;
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await?;
                let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
                s.read_exact(&mut buf).await?;
                Ok::<_, std::io::Error>(buf)
            } else {
                let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                s.connect(server).await?;
                s.send(&message).await?;
                let mut buf = vec![0u8; 4096];
                let n = s.recv(&mut buf).await?;
                buf.truncate(n);
                Ok(buf)
            }
        };
        match tokio::time::timeout(timeout, io).await {
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(TransportError::Refused),
            _ => Err(TransportError::TimedOut),
        }
    }
}
