//! The upstream DNS resolver: what the cluster's `forward . <upstream>` reaches for names the
//! cluster does not know. Real DNS on UDP and TCP (hickory-server); it answers as a recursive
//! resolver would (RA set), authoritatively (AA) for the lab's outside world in [`zone`].
//!
//! hickory types stay in this file: [`zone`] holds the data and the lookup rules; [`faults`]
//! the UpstreamDNSChaos rules it answers under (no answer, late, SERVFAIL).

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_server::{
    Server,
    net::runtime::Time,
    proto::{
        op::{Edns, Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode},
        rr::{
            DNSClass, Name, RData, Record, RecordType,
            rdata::{A, AAAA, CNAME, MX, NS, SOA, TXT},
        },
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::MessageResponseBuilder,
};
use tokio::net::{TcpListener, UdpSocket};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use netlab_chaos::status::counter;

use crate::error::{Error, Result};

pub mod faults;
pub mod zone;

pub use zone::World;

/// How long an idle TCP connection is kept.
const TCP_TIMEOUT: Duration = Duration::from_secs(5);
/// Responses buffered per TCP connection.
const TCP_RESPONSE_BUFFER: usize = 64;

/// The request handler over a [`World`].
pub struct Upstream {
    world: Arc<World>,
    faults: Arc<faults::State>,
}

/// Serves `world` on UDP and TCP at `addr` until `shutdown`; returns the bound address (UDP
/// and TCP share the port, so port 0 picks one free for both or fails).
pub async fn serve(
    world: World,
    faults: Arc<faults::State>,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<SocketAddr> {
    let bind = |source| Error::Bind { what: "upstream DNS", addr, source };
    let udp = UdpSocket::bind(addr).await.map_err(bind)?;
    let local = udp.local_addr().map_err(bind)?;
    let tcp = TcpListener::bind(local).await.map_err(|source| Error::Bind {
        what: "upstream DNS (TCP)",
        addr: local,
        source,
    })?;
    let mut server = Server::new(Upstream { world: Arc::new(world), faults });
    server.register_socket(udp);
    server.register_listener(tcp, TCP_TIMEOUT, TCP_RESPONSE_BUFFER);
    tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Err(error) = server.shutdown_gracefully().await {
            tracing::warn!(%error, "Upstream DNS stopped with an error.");
        }
    });
    Ok(local)
}

// === impl Upstream ===

impl Upstream {
    /// A handler over `world`, under `faults`.
    pub fn new(world: World, faults: Arc<faults::State>) -> Self {
        Self { world: Arc::new(world), faults }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Upstream {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response: R,
    ) -> ResponseInfo {
        let span = tracing::info_span!(
            "upstream-dns.query",
            otel.name = "upstream-dns query",
            otel.kind = "server",
            netlab.subsystem = "upstream-dns",
            network.transport = %request.protocol(),
            client.address = %request.src().ip(),
            dns.question.name = tracing::field::Empty,
            dns.question.type = tracing::field::Empty,
            dns.response_code = tracing::field::Empty,
        );

        // UpstreamDNSChaos first: the resolver is down, slow or failing for matching names.
        let qname = request.request_info().ok().map(|i| i.query.name().to_ascii());
        let fault = qname.and_then(|name| self.faults.faults().decide(&name).cloned());
        let mut servfail = false;
        if let Some(rule) = &fault {
            let reporter = &self.faults.reporter;
            match rule.action {
                faults::Action::Unreachable => {
                    rule.fault.mark(&span, "dropped");
                    reporter.add(&rule.key, counter::QUERIES_DROPPED, 1);
                    // Nothing is sent: the asker times out.
                    let mut metadata = Metadata::response_from_request(&request.metadata);
                    metadata.response_code = ResponseCode::NoError;
                    return ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() });
                }
                faults::Action::Delay(delay) => {
                    rule.fault.mark(&span, &format!("delayed {delay:?}"));
                    reporter.add(&rule.key, counter::QUERIES_DELAYED, 1);
                    tokio::time::sleep(delay).await;
                }
                faults::Action::ServFail => {
                    rule.fault.mark(&span, "answered SERVFAIL");
                    reporter.add(&rule.key, counter::QUERIES_ANSWERED, 1);
                    servfail = true;
                }
            }
        }

        // EDNS as hickory's Catalog does it: echo version 0 and the client's payload size.
        let mut resp_edns = Edns::new();
        let mut builder = MessageResponseBuilder::from_message_request(request);
        if let Some(req) = request.edns.as_ref() {
            resp_edns.set_max_payload(req.max_payload().max(512));
            resp_edns.set_version(0);
            builder.edns(&resp_edns);
        }
        let (metadata, answers, authority) = if servfail {
            let mut metadata = Metadata::response_from_request(&request.metadata);
            metadata.recursion_available = true;
            metadata.response_code = ResponseCode::ServFail;
            span.record("dns.response_code", metadata.response_code.to_str());
            (metadata, vec![], vec![])
        } else {
            span.in_scope(|| self.answer(request, &span))
        };
        let message =
            builder.build(metadata, answers.iter(), std::iter::empty(), authority.iter(), std::iter::empty());
        match response.send_response(message).instrument(span.clone()).await {
            Ok(info) => info,
            Err(error) => {
                span.in_scope(|| tracing::warn!(%error, "Sending the DNS response failed."));
                let mut metadata = Metadata::response_from_request(&request.metadata);
                metadata.response_code = ResponseCode::ServFail;
                ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
            }
        }
    }
}

impl Upstream {
    /// The response header and its answer and authority sections for `request`.
    fn answer(&self, request: &Request, span: &tracing::Span) -> (Metadata, Vec<Record>, Vec<Record>) {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.recursion_available = true;
        let fail = |mut m: Metadata, code: ResponseCode| {
            m.response_code = code;
            (m, vec![], vec![])
        };
        if request.metadata.message_type != MessageType::Query || request.metadata.op_code != OpCode::Query {
            return fail(metadata, ResponseCode::NotImp);
        }
        let Ok(info) = request.request_info() else {
            return fail(metadata, ResponseCode::FormErr);
        };
        let query = info.query.original();
        span.record("dns.question.name", query.name().to_ascii());
        span.record("dns.question.type", query.query_type().to_string());
        if query.query_class() != DNSClass::IN {
            return fail(metadata, ResponseCode::Refused);
        }

        let qname_lower = info.query.name().to_ascii();
        let answer = self.world.lookup(&qname_lower, kind(query.query_type()));
        metadata.authoritative = answer.authoritative;
        metadata.response_code = match answer.rcode {
            zone::Rcode::NoError => ResponseCode::NoError,
            zone::Rcode::NxDomain => ResponseCode::NXDomain,
        };
        span.record("dns.response_code", metadata.response_code.to_str());
        tracing::debug!(rcode = %metadata.response_code, answers = answer.answers.len(), "Answered.");
        // The query's own spelling of the name is kept (0x20 case randomisation relies on it).
        let owner = |r: &zone::Record| {
            if r.name == qname_lower { Some(query.name().clone()) } else { Name::from_ascii(&r.name).ok() }
        };
        let answers = answer.answers.iter().filter_map(|r| to_record(owner(r)?, r)).collect();
        let authority = answer.authority.iter().filter_map(|r| to_record(owner(r)?, r)).collect();
        (metadata, answers, authority)
    }
}

/// The zone's view of a query type.
fn kind(t: RecordType) -> zone::Kind {
    match t {
        RecordType::A => zone::Kind::A,
        RecordType::AAAA => zone::Kind::Aaaa,
        RecordType::CNAME => zone::Kind::Cname,
        RecordType::MX => zone::Kind::Mx,
        RecordType::TXT => zone::Kind::Txt,
        RecordType::NS => zone::Kind::Ns,
        RecordType::SOA => zone::Kind::Soa,
        RecordType::ANY => zone::Kind::Any,
        other => zone::Kind::Other(u16::from(other)),
    }
}

/// A zone record as a hickory record owned by `name`. Names in the zone data are checked by the
/// unit tests, so `None` (an unparsable name) does not happen in practice.
fn to_record(name: Name, r: &zone::Record) -> Option<Record> {
    let n = |s: &str| Name::from_ascii(s).ok();
    let data = match &r.data {
        zone::Data::A(ip) => RData::A(A(*ip)),
        zone::Data::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        zone::Data::Cname(target) => RData::CNAME(CNAME(n(target)?)),
        zone::Data::Mx(pref, exchange) => RData::MX(MX::new(*pref, n(exchange)?)),
        zone::Data::Txt(text) => RData::TXT(TXT::new(vec![(*text).to_string()])),
        zone::Data::Ns(host) => RData::NS(NS(n(host)?)),
        zone::Data::Soa(s) => {
            RData::SOA(SOA::new(n(s.mname)?, n(s.rname)?, s.serial, s.refresh, s.retry, s.expire, s.minimum))
        }
    };
    Some(Record::from_rdata(name, r.ttl, data))
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    #[test]
    fn every_zone_record_converts() {
        let world = World::new(Ipv4Addr::new(10, 0, 0, 7));
        for name in ["example.com.", "www.example.com.", "amazonaws.com.", "nope.example.com.", "x.invalid."]
        {
            let answer = world.lookup(name, zone::Kind::Any);
            for r in answer.answers.iter().chain(&answer.authority) {
                let owner = Name::from_ascii(&r.name).unwrap();
                assert!(to_record(owner, r).is_some(), "{r:?}");
            }
        }
    }

    #[test]
    fn query_types_map() {
        assert_eq!(kind(RecordType::AAAA), zone::Kind::Aaaa);
        assert_eq!(kind(RecordType::SRV), zone::Kind::Other(33));
    }
}
