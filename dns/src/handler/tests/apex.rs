//! The zone-level replies on the wire: header flags and sections as CoreDNS writes them. The
//! kubernetes plugin's ServeDNS sets AA on its reply (`SetReply` copies RD and nothing else) and
//! BackendError does the same for negative replies and the not-yet-synced SERVFAIL, with the SOA
//! in Authority; neither ever sets RA. Zone transfers are refused by the server with a bare reply.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        core::v1::{Namespace, Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};

use super::*;
use crate::{blocks::Settings, corefile::Corefile};

/// The kube-dns pod's IP: what this server serves on.
const POD_IP: &str = "10.244.0.20";

/// kubeadm's kubernetes block (without forward: nothing here may leave the zone).
const COREFILE: &str = ".:53 {
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
}
";

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(ns.into()), ..Default::default() }
}

/// A synced server whose zone has kube-dns (10.96.0.10) with this server's pod behind it.
fn shared() -> Arc<Shared> {
    let settings = Settings { resolv_override: vec![], local_ips: vec![POD_IP.parse().unwrap()], port: 53 };
    let shared = Shared::new(settings);
    let corefile = Corefile::parse(COREFILE).unwrap();
    shared.set_blocks(Blocks::compile(corefile, &shared.settings, &shared.metrics));
    shared.update(|s| {
        s.apply_namespace(&Namespace { metadata: meta("", "kube-system"), ..Default::default() });
        s.apply_service(&Service {
            metadata: meta("kube-system", "kube-dns"),
            spec: Some(ServiceSpec {
                cluster_ip: Some("10.96.0.10".into()),
                cluster_ips: Some(vec!["10.96.0.10".into()]),
                ports: Some(vec![ServicePort {
                    name: Some("dns".into()),
                    protocol: Some("UDP".into()),
                    port: 53,
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
        let mut m = meta("kube-system", "kube-dns-x7k2p");
        m.labels = Some(BTreeMap::from([("kubernetes.io/service-name".into(), "kube-dns".into())]));
        s.apply_slice(&EndpointSlice {
            metadata: m,
            address_type: "IPv4".into(),
            endpoints: vec![Endpoint {
                addresses: vec![POD_IP.into()],
                conditions: Some(EndpointConditions { ready: Some(true), ..Default::default() }),
                ..Default::default()
            }],
            ports: None,
        });
        s.touch(1_700_000_000);
        s.set_synced(true);
    });
    shared
}

/// `dig NAME TYPE`: RD set, EDNS with dig's payload size.
async fn dig(shared: &Arc<Shared>, name: &str, qtype: RecordType) -> Message {
    let mut msg = Message::query();
    msg.metadata.id = 4242;
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    msg.set_edns(edns);
    let h = DnsHandler::new(shared.clone());
    let (bytes, _) = h.answer_udp(msg.to_vec().unwrap(), "127.0.0.1:40000".parse().unwrap()).await.unwrap();
    Message::from_vec(&bytes).unwrap()
}

/// Records as dig prints them: `name ttl IN TYPE rdata`.
fn lines(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| format!("{} {} IN {} {}", r.name, r.ttl, r.record_type(), r.data)).collect()
}

/// dig's `flags:` field.
fn flags(m: &Message) -> String {
    let h = &m.metadata;
    let mut f = vec!["qr"];
    for (on, name) in [
        (h.authoritative, "aa"),
        (h.truncation, "tc"),
        (h.recursion_desired, "rd"),
        (h.recursion_available, "ra"),
    ] {
        if on {
            f.push(name);
        }
    }
    f.join(" ")
}

const SOA: &str =
    "cluster.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30";

#[tokio::test]
async fn apex_ns_with_its_glue() {
    let r = dig(&shared(), "cluster.local.", RecordType::NS).await;
    assert_eq!(r.metadata.response_code, ResponseCode::NoError);
    assert_eq!(flags(&r), "qr aa rd");
    assert_eq!(lines(&r.answers), ["cluster.local. 30 IN NS kube-dns.kube-system.svc.cluster.local."]);
    assert!(r.authorities.is_empty());
    assert_eq!(lines(&r.additionals), ["kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10"]);
}

#[tokio::test]
async fn ns_target_a() {
    let r = dig(&shared(), "ns.dns.cluster.local.", RecordType::A).await;
    assert_eq!((r.metadata.response_code, flags(&r).as_str()), (ResponseCode::NoError, "qr aa rd"));
    assert_eq!(lines(&r.answers), ["ns.dns.cluster.local. 30 IN A 10.96.0.10"]);
    assert!(r.authorities.is_empty() && r.additionals.is_empty());
}

#[tokio::test]
async fn apex_soa_alone_in_the_answer() {
    let r = dig(&shared(), "cluster.local.", RecordType::SOA).await;
    assert_eq!((r.metadata.response_code, flags(&r).as_str()), (ResponseCode::NoError, "qr aa rd"));
    assert_eq!(lines(&r.answers), [SOA]);
    assert!(r.authorities.is_empty() && r.additionals.is_empty());
}

#[tokio::test]
async fn apex_a_and_any_are_nodata_with_the_soa() {
    let shared = shared();
    for qtype in [RecordType::A, RecordType::AAAA, RecordType::ANY, RecordType::MX] {
        let r = dig(&shared, "cluster.local.", qtype).await;
        assert_eq!(r.metadata.response_code, ResponseCode::NoError, "{qtype}");
        assert_eq!(flags(&r), "qr aa rd", "{qtype}");
        assert!(r.answers.is_empty() && r.additionals.is_empty(), "{qtype}");
        assert_eq!(lines(&r.authorities), [SOA], "{qtype}");
    }
}

#[tokio::test]
async fn reverse_apex_ns_and_soa() {
    let shared = shared();
    let r = dig(&shared, "in-addr.arpa.", RecordType::NS).await;
    assert_eq!(flags(&r), "qr aa rd");
    assert_eq!(lines(&r.answers), ["in-addr.arpa. 30 IN NS kube-dns.kube-system.svc.in-addr.arpa."]);
    assert_eq!(lines(&r.additionals), ["kube-dns.kube-system.svc.in-addr.arpa. 30 IN A 10.96.0.10"]);
    let r = dig(&shared, "ip6.arpa.", RecordType::SOA).await;
    assert_eq!(
        lines(&r.answers),
        ["ip6.arpa. 30 IN SOA ns.dns.ip6.arpa. hostmaster.ip6.arpa. 1700000000 7200 1800 86400 30"]
    );
}

#[tokio::test]
async fn ordinary_answers_are_aa_without_ra_authority_or_additional() {
    let shared = shared();
    let r = dig(&shared, "kube-dns.kube-system.svc.cluster.local.", RecordType::A).await;
    assert_eq!((r.metadata.response_code, flags(&r).as_str()), (ResponseCode::NoError, "qr aa rd"));
    assert_eq!(lines(&r.answers), ["kube-dns.kube-system.svc.cluster.local. 30 IN A 10.96.0.10"]);
    assert!(r.authorities.is_empty() && r.additionals.is_empty());
    let r = dig(&shared, "nope.kube-system.svc.cluster.local.", RecordType::A).await;
    assert_eq!((r.metadata.response_code, flags(&r).as_str()), (ResponseCode::NXDomain, "qr aa rd"));
    assert_eq!(lines(&r.authorities), [SOA]);
}

#[tokio::test]
async fn not_synced_servfail_carries_the_soa() {
    let shared = shared();
    shared.update(|s| s.set_synced(false));
    let r = dig(&shared, "nope.kube-system.svc.cluster.local.", RecordType::A).await;
    assert_eq!((r.metadata.response_code, flags(&r).as_str()), (ResponseCode::ServFail, "qr aa rd"));
    assert!(r.answers.is_empty());
    assert_eq!(lines(&r.authorities), [SOA]);
}

#[tokio::test]
async fn zone_transfers_are_a_bare_refusal() {
    let r = dig(&shared(), "cluster.local.", RecordType::AXFR).await;
    assert_eq!((r.metadata.response_code, flags(&r).as_str()), (ResponseCode::Refused, "qr rd"));
    assert!(r.answers.is_empty() && r.authorities.is_empty() && r.additionals.is_empty());
}
