//! A fake DNS server for the tests of the resolver and of the toolbox's DNS commands: a tiny
//! authoritative server (answers built with hickory, CoreDNS-like: AA, no RA, SOA on negative
//! answers) behind [`PodNetwork`] that records every query it receives, over UDP and TCP.

use std::{
    collections::{HashMap, HashSet},
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, ResponseCode},
    rr::{
        Name, RData, Record, RecordType,
        rdata::{A, AAAA, CNAME, PTR, SOA, TXT},
    },
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::message;
use crate::podnet::{Connected, Error, ErrorKind, PodNetwork};

/// The worked example's pod: namespace `shop`, the AWS host search domain, ndots:5.
pub(crate) const RESOLV_CONF: &str =
    "search shop.svc.cluster.local svc.cluster.local cluster.local us-east-1.compute.internal
nameserver 10.96.0.10
options ndots:5
";

pub(crate) const DNS: &str = "10.96.0.10:53";
pub(crate) const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// What a server does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Answer,
    /// Drops it: the client times out.
    Silent,
    /// ICMP port-unreachable.
    Refuse,
    /// Answers with a wrong id.
    WrongId,
}

/// The UDP payload size and the options (code, value) of an OPT record.
pub(crate) type Opt = (u16, Vec<(u16, Vec<u8>)>);

/// One query the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    pub server: SocketAddr,
    pub name: String,
    pub rtype: RecordType,
    pub tcp: bool,
    pub timeout: Duration,
    pub id: u16,
    pub rd: bool,
    pub edns: Option<Opt>,
}

/// A tiny authoritative server behind the [`PodNetwork`] trait. Clones share what was seen.
#[derive(Clone)]
pub(crate) struct FakeDns {
    pub zone: HashMap<String, Vec<Record>>,
    pub servfail: HashSet<String>,
    pub refused: HashSet<String>,
    /// Names whose UDP answers are truncated.
    pub truncated: HashSet<String>,
    pub modes: HashMap<SocketAddr, Mode>,
    pub ra: bool,
    pub echo_options: bool,
    pub traceparent: Option<String>,
    /// The pod IP the transport stamps on queries.
    pub source_ip: Option<std::net::IpAddr>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

pub(crate) fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

pub(crate) fn soa() -> Record {
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
    pub(crate) fn new() -> Self {
        let mut f = FakeDns {
            zone: HashMap::new(),
            servfail: ["sf.shop.svc.cluster.local".to_string()].into(),
            refused: ["ref.shop.svc.cluster.local".to_string()].into(),
            truncated: ["big.shop.svc.cluster.local".to_string()].into(),
            modes: HashMap::new(),
            ra: false,
            echo_options: false,
            traceparent: None,
            source_ip: None,
            seen: Arc::default(),
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

    pub(crate) fn add(&mut self, owner: &str, ttl: u32, data: RData) {
        self.zone
            .entry(owner.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(Record::from_rdata(name(owner), ttl, data));
    }

    pub(crate) fn mode(mut self, server: &str, mode: Mode) -> Self {
        self.modes.insert(addr(server), mode);
        self
    }

    pub(crate) fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// `name TYPE` of every query, in order.
    pub(crate) fn queries(&self) -> Vec<String> {
        self.seen().iter().map(|s| format!("{} {}", s.name, s.rtype)).collect()
    }

    /// The reply to `query`, as CoreDNS's kubernetes plugin would build it.
    pub(crate) fn answer(&self, query: &[u8], tcp: bool) -> Vec<u8> {
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

impl FakeDns {
    /// Records `message` and answers it as the server's mode says.
    fn handle(
        &self,
        server: SocketAddr,
        message: &[u8],
        tcp: bool,
        timeout: Duration,
    ) -> Result<Vec<u8>, ErrorKind> {
        let q = Message::from_vec(message).unwrap();
        self.seen.lock().unwrap().push(Seen {
            server,
            name: q.queries[0].name().to_string(),
            rtype: q.queries[0].query_type(),
            tcp,
            timeout,
            id: q.metadata.id,
            rd: q.metadata.recursion_desired,
            edns: q.edns.as_ref().map(|e| (e.max_payload(), message::edns_options(e))),
        });
        match self.modes.get(&server).copied().unwrap_or(Mode::Answer) {
            Mode::Answer => Ok(self.answer(message, tcp)),
            // The wait itself is the network's; the fake only records what it was asked.
            Mode::Silent => Err(ErrorKind::TimedOut),
            Mode::Refuse => Err(ErrorKind::Refused),
            Mode::WrongId => {
                let mut r = Message::from_vec(&self.answer(message, tcp)).unwrap();
                r.metadata.id = r.metadata.id.wrapping_add(1);
                Ok(r.to_vec().unwrap())
            }
        }
    }
}

#[async_trait::async_trait]
impl PodNetwork for FakeDns {
    /// A TCP connection to the server: refused in `Refuse` mode; otherwise it reads one
    /// length-prefixed query and writes the answer, or closes without one (`Silent`).
    async fn connect(&self, dst: SocketAddr, timeout: Duration) -> Result<Connected, Error> {
        if self.modes.get(&dst) == Some(&Mode::Refuse) {
            return Err(ErrorKind::Refused.into());
        }
        let (client, mut server) = tokio::io::duplex(64 * 1024);
        let dns = self.clone();
        tokio::spawn(async move {
            let mut len = [0u8; 2];
            server.read_exact(&mut len).await.unwrap();
            let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
            server.read_exact(&mut query).await.unwrap();
            if let Ok(reply) = dns.handle(dst, &query, true, timeout) {
                server.write_all(&(reply.len() as u16).to_be_bytes()).await.unwrap();
                server.write_all(&reply).await.unwrap();
            }
        });
        Ok(Connected { stream: Box::new(client), local: addr("10.244.1.5:40000"), hops: Vec::new() })
    }

    async fn exchange(
        &self,
        dst: SocketAddr,
        datagram: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        self.handle(dst, &datagram, false, timeout).map_err(Error::from)
    }

    fn traceparent(&self) -> Option<String> {
        self.traceparent.clone()
    }

    fn source_ip(&self) -> Option<std::net::IpAddr> {
        self.source_ip
    }
}
