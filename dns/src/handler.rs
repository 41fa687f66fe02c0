//! The hickory edge: the only module that knows hickory's types. It receives a query, runs it
//! through the plugin chain in CoreDNS's compiled order — cache, kubernetes, forward — for the
//! server block the name belongs to, and writes the reply: rcodes and flags as CoreDNS sets them
//! (AA on every kubernetes answer and never RA, the SOA in Authority for negative ones and for
//! SERVFAIL before the first sync), EDNS echoed, UDP replies truncated with TC by hickory's
//! encoder when they do not fit. It also says which replies the UDP packet cache
//! ([`crate::server::udp`]) may repeat. Sockets are [`crate::server`]'s.
//! Wire-level errors become response codes here and nowhere else.

use std::{
    iter,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use hickory_proto::serialize::binary::{BinDecodable as _, BinDecoder, BinEncodable as _, BinEncoder};
use hickory_server::{
    net::{runtime::Time, xfer::Protocol},
    proto::{
        op::{Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, Query, ResponseCode},
        rr::{
            DNSClass, Name, RData, Record, RecordType,
            rdata::{A, AAAA, CNAME, NS, PTR, SOA, SRV, TXT},
        },
    },
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::{MessageResponse, MessageResponseBuilder},
};

use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use netlab_chaos::status::counter;
use netlab_telemetry::propagation::EDNS_SOURCE_IP;

use crate::{
    Shared,
    blocks::{Block, Blocks},
    cache,
    chaos::{self, Action, ErrorCode, Rule},
    error::Error,
    forward::Forwarder,
    metrics::{BlockId, Plugin},
    zone::{self, Outcome, Owner, QType},
};

/// ExternalName chases and internal lookups nest at most this deep.
const MAX_DEPTH: usize = 8;
/// Payload size advertised on queries the server itself sends upstream.
const UPSTREAM_PAYLOAD: u16 = 1232;

/// The request handler.
pub struct DnsHandler {
    shared: Arc<Shared>,
}

/// A reply before it is written: what the plugins decided.
#[derive(Debug, Clone)]
struct Reply {
    rcode: ResponseCode,
    aa: bool,
    ra: bool,
    tc: bool,
    answers: Vec<Record>,
    authorities: Vec<Record>,
    additionals: Vec<Record>,
    plugin: Plugin,
    /// How long the same query would get the same bytes back.
    fresh: Fresh,
}

/// How long a reply stays the one the plugin chain would give (for the packet cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fresh {
    /// Not to be repeated: errors, upstream answers, ExternalName chases.
    No,
    /// Until the zone or the config changes: the kubernetes plugin's answers (fixed TTL).
    UntilChange,
    /// Until then, or a change: a `cache` hit, whose TTLs tick down each second.
    Until(Instant),
}

impl Reply {
    fn error(rcode: ResponseCode, plugin: Plugin) -> Self {
        Self {
            rcode,
            aa: false,
            ra: false,
            tc: false,
            answers: vec![],
            authorities: vec![],
            additionals: vec![],
            plugin,
            fresh: Fresh::No,
        }
    }
}

/// What the packet cache needs to repeat a reply: its metric labels and how long it is good.
#[derive(Debug, Clone, Copy)]
pub struct Repeatable {
    /// The zone and config generation the reply was built in.
    pub generation: u64,
    /// Good until then too, if set.
    pub until: Option<Instant>,
    /// The server block (metric labels).
    pub block: BlockId,
    /// The query type.
    pub qtype: u16,
    /// The response code.
    pub rcode: u16,
    /// The plugin that wrote it.
    pub plugin: Plugin,
    /// NOERROR with records (the `cache` hit label), as opposed to a denial.
    pub success: bool,
}

/// One query being resolved (the client's, or an ExternalName target).
struct Ask<'a> {
    name: &'a Name,
    lower: &'a str,
    qtype: RecordType,
    /// The client's query bytes, relayed as they are by `forward`.
    raw: Option<&'a [u8]>,
    tcp: bool,
    dnssec_ok: bool,
    depth: usize,
}

#[async_trait::async_trait]
impl RequestHandler for DnsHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        response_handle: R,
    ) -> ResponseInfo {
        self.respond(request, response_handle).await.0
    }
}

/// A UDP reply captured as bytes, encoded exactly as hickory's own `ResponseHandle` does (the
/// client's EDNS payload size, or 512 bytes without EDNS; truncated with TC past it).
#[derive(Clone, Default)]
struct Capture(Arc<std::sync::Mutex<Option<Vec<u8>>>>);

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> std::result::Result<ResponseInfo, hickory_server::net::NetError> {
        let id = response.metadata().id;
        let max = response.edns().map_or(512, |e| e.max_payload().max(512));
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max);
        let info = match response.destructive_emit(&mut encoder) {
            Ok(info) => info,
            Err(error) => {
                // As hickory: a reply that cannot be encoded becomes a bare SERVFAIL.
                tracing::error!(%error, "error encoding message");
                bytes.clear();
                let mut metadata = Metadata::new(id, MessageType::Response, OpCode::Query);
                metadata.response_code = ResponseCode::ServFail;
                let header = Header { metadata, counts: HeaderCounts::default() };
                header.emit(&mut BinEncoder::new(&mut bytes))?;
                ResponseInfo::from(header)
            }
        };
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}

// === impl DnsHandler ===

impl DnsHandler {
    /// A handler over `shared`.
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Answers one UDP datagram as hickory's server loop would, returning the reply's bytes
    /// (none for what hickory drops: shorter than a header, or a response) and, when the same
    /// query bytes may get the same reply again, what the packet cache needs to repeat it.
    pub async fn answer_udp(&self, raw: Vec<u8>, src: SocketAddr) -> Option<(Vec<u8>, Option<Repeatable>)> {
        let header = Header::read(&mut BinDecoder::new(&raw)).ok()?;
        if header.metadata.message_type == MessageType::Response {
            return None;
        }
        let request = match Request::from_bytes(raw, src, Protocol::Udp) {
            Ok(request) => request,
            Err(_) => {
                // hickory's answer to a query it cannot parse: FORMERR, no question.
                let mut metadata = Metadata::response_from_request(&header.metadata);
                metadata.response_code = ResponseCode::FormErr;
                let mut bytes = Vec::with_capacity(12);
                Header { metadata, counts: HeaderCounts::default() }
                    .emit(&mut BinEncoder::new(&mut bytes))
                    .ok()?;
                return Some((bytes, None));
            }
        };
        let capture = Capture::default();
        let (_, repeatable) = self.respond(&request, capture.clone()).await;
        let bytes = capture.0.lock().unwrap_or_else(|e| e.into_inner()).take()?;
        Some((bytes, repeatable))
    }

    /// The plugin chain for one request, the reply written to `response_handle`.
    async fn respond<R: ResponseHandler>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> (ResponseInfo, Option<Repeatable>) {
        let started = Instant::now();
        let generation = self.shared.generation();
        let builder = MessageResponseBuilder::from_message_request(request);
        if request.metadata.op_code != OpCode::Query || request.metadata.message_type != MessageType::Query {
            let resp = builder.error_msg(&request.metadata, ResponseCode::NotImp);
            return (
                response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| failed(request, ResponseCode::NotImp)),
                None,
            );
        }
        let Ok(info) = request.request_info() else {
            let resp = builder.error_msg(&request.metadata, ResponseCode::FormErr);
            return (
                response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| failed(request, ResponseCode::FormErr)),
                None,
            );
        };
        let name = info.query.original().name();
        let qtype = info.query.query_type();
        let lower = info.query.name().to_string();
        let tcp = request.protocol() == Protocol::Tcp;
        let dnssec_ok = request.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
        let blocks = self.shared.blocks();
        let Some((block, bid)) = blocks.select(&lower) else {
            // No server block for this name: CoreDNS refuses.
            let resp = builder.error_msg(&request.metadata, ResponseCode::Refused);
            return (
                response_handle
                    .send_response(resp)
                    .await
                    .unwrap_or_else(|_| failed(request, ResponseCode::Refused)),
                None,
            );
        };
        let metrics = &self.shared.metrics;
        metrics.request(bid, tcp, request.src().is_ipv6(), u16::from(qtype));

        let ask = Ask { name, lower: &lower, qtype, raw: Some(request.as_slice()), tcp, dnssec_ok, depth: 0 };
        // One span per query; a pod's resolver puts its trace context in an EDNS option, so the
        // answer lands in the lookup's trace (plain `dig` starts a trace of its own).
        let span = tracing::info_span!(
            "dns query",
            otel.kind = "server",
            dns.question.name = %name,
            dns.question.type = %qtype,
            client.address = %request.src().ip(),
            dns.response_code = tracing::field::Empty,
            netlab.dns.plugin = tracing::field::Empty,
            netlab.dns.answers = tracing::field::Empty,
        );
        let traced = if let Some(hickory_proto::rr::rdata::opt::EdnsOption::Unknown(_, tp)) =
            request.edns.as_ref().and_then(|e| {
                e.options().get(hickory_proto::rr::rdata::opt::EdnsCode::Unknown(
                    netlab_telemetry::propagation::EDNS_TRACEPARENT,
                ))
            })
            && let Ok(tp) = std::str::from_utf8(tp)
        {
            netlab_telemetry::propagation::set_parent_from_traceparent(&span, tp);
            true
        } else {
            false
        };
        // DNSChaos before everything else, as the chaos plugin runs before cache, kubernetes and
        // forward; a reply a fault decided is never repeated by the packet cache.
        let source = source_ip(request);
        let faults = self.shared.faults();
        let fault = faults.decide(source, &lower);
        let mut reply = match fault {
            None => tracing::Instrument::instrument(self.resolve(&blocks, &ask), span.clone()).await,
            Some(rule) => match self.chaos(rule, &blocks, &ask, &span).await {
                Some(reply) => reply,
                // `timeout`: nothing is sent; the client waits and retries.
                None => return (failed(request, ResponseCode::NoError), None),
            },
        };
        span.record("dns.response_code", tracing::field::display(reply.rcode));
        // As the Corefile names it: `kubernetes`, `forward`, `cache`, `k8s_dns_chaos`.
        span.record("netlab.dns.plugin", reply.plugin.label());
        span.record("netlab.dns.answers", reply.answers.len());
        // A reply may be repeated for the same query bytes when nothing about it is random,
        // logged, traced or upstream's.
        let repeatable = (!tcp
            && !traced
            && fault.is_none()
            && !block.log
            && matches!(reply.rcode, ResponseCode::NoError | ResponseCode::NXDomain)
            && !(block.loadbalance && (shuffles(&reply.answers) || shuffles(&reply.additionals))))
        .then_some(reply.fresh)
        .and_then(|fresh| {
            let until = match fresh {
                Fresh::No => return None,
                Fresh::UntilChange => None,
                Fresh::Until(t) => Some(t),
            };
            Some(Repeatable {
                generation,
                until,
                block: bid,
                qtype: u16::from(qtype),
                rcode: u16::from(reply.rcode),
                plugin: reply.plugin,
                success: reply.rcode == ResponseCode::NoError && !reply.answers.is_empty(),
            })
        });
        if block.loadbalance {
            round_robin(&mut reply.answers);
            round_robin(&mut reply.additionals);
        }

        let response_edns = request.edns.as_ref().map(|req| {
            let mut e = Edns::new();
            e.set_max_payload(req.max_payload().max(512)).set_version(0).set_dnssec_ok(req.flags().dnssec_ok);
            e
        });
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = reply.aa;
        metadata.recursion_available = reply.ra;
        metadata.truncation = reply.tc;
        metadata.response_code = reply.rcode;
        let log_size = block.log.then(|| wire_size(&metadata, request, &reply));
        let mut builder = builder;
        if let Some(e) = &response_edns {
            builder.edns(e);
        }
        let resp = builder.build(
            metadata,
            reply.answers.iter(),
            reply.authorities.iter(),
            iter::empty(),
            reply.additionals.iter(),
        );
        let info_out = response_handle.send_response(resp).await;
        let took = started.elapsed();
        metrics.response(bid, u16::from(qtype), u16::from(reply.rcode), reply.plugin, took);
        if let Some(size) = log_size {
            log_query(request, name, qtype, &metadata, size, took);
        }
        (info_out.unwrap_or_else(|_| failed(request, ResponseCode::ServFail)), repeatable)
    }

    /// What DNSChaos `rule` makes of the query: a reply, or None for no reply at all. Marks the
    /// query's span and counts the decision.
    async fn chaos(
        &self,
        rule: &Rule,
        blocks: &Blocks,
        ask: &Ask<'_>,
        span: &tracing::Span,
    ) -> Option<Reply> {
        let reporter = &self.shared.reporter;
        match rule.action {
            Action::Timeout => {
                rule.fault.mark(span, "dropped");
                reporter.add(&rule.key, counter::QUERIES_DROPPED, 1);
                None
            }
            Action::Delay(delay) => {
                rule.fault.mark(span, &format!("delayed {delay:?}"));
                reporter.add(&rule.key, counter::QUERIES_DELAYED, 1);
                tokio::time::sleep(delay).await;
                Some(tracing::Instrument::instrument(self.resolve(blocks, ask), span.clone()).await)
            }
            Action::Error(code) => {
                rule.fault.mark(span, &format!("answered {}", code.as_str()));
                reporter.add(&rule.key, counter::QUERIES_ANSWERED, 1);
                let rcode = match code {
                    ErrorCode::ServFail => ResponseCode::ServFail,
                    ErrorCode::NxDomain => ResponseCode::NXDomain,
                    ErrorCode::Refused => ResponseCode::Refused,
                };
                Some(Reply::error(rcode, Plugin::Chaos))
            }
            Action::Random => {
                reporter.add(&rule.key, counter::QUERIES_ANSWERED, 1);
                let data = match ask.qtype {
                    RecordType::A => RData::A(A(chaos::random_ipv4())),
                    RecordType::AAAA => RData::AAAA(AAAA(chaos::RANDOM_AAAA)),
                    // chaos-coredns answers only A and AAAA.
                    _ => {
                        rule.fault.mark(span, "answered SERVFAIL");
                        return Some(Reply::error(ResponseCode::ServFail, Plugin::Chaos));
                    }
                };
                let answer = Record::from_rdata(ask.name.clone(), chaos::RANDOM_TTL, data);
                rule.fault.mark(span, &format!("answered random IP {}", answer.data));
                Some(Reply {
                    aa: true,
                    answers: vec![answer],
                    ..Reply::error(ResponseCode::NoError, Plugin::Chaos)
                })
            }
        }
    }

    /// cache → kubernetes → forward, for the block `ask.lower` belongs to.
    fn resolve<'a>(&'a self, blocks: &'a Blocks, ask: &'a Ask<'a>) -> BoxFuture<'a, Reply> {
        Box::pin(async move {
            let Some((block, bid)) = blocks.select(ask.lower) else {
                return Reply::error(ResponseCode::Refused, Plugin::None);
            };
            let cache = block.cache.as_ref().filter(|c| c.covers(ask.lower));
            let key = cache::Key {
                name: ask.lower.to_string(),
                qtype: u16::from(ask.qtype),
                dnssec_ok: ask.dnssec_ok,
            };
            let now = Instant::now();
            if let Some(cache) = cache {
                if let Some(hit) = cache.get(&key, now).and_then(|hit| from_cache(&hit)) {
                    self.shared.metrics.cache_hit(bid, hit.1);
                    return hit.0;
                }
                self.shared.metrics.cache_miss(bid);
            }
            let reply = self.chain(blocks, block, bid, ask).await;
            if let Some(cache) = cache
                && let Some((kind, ttl)) = classify(&reply)
                && cache.duration_for(ask.lower, kind, ttl).is_some()
                && let Some(wire) = to_cache(&reply)
            {
                cache.insert(key, kind, ttl, wire, now);
            }
            reply
        })
    }

    async fn chain(&self, blocks: &Blocks, block: &Block, bid: BlockId, ask: &Ask<'_>) -> Reply {
        if let Some(cfg) = &block.kubernetes {
            let qname = ask.name.to_string();
            let outcome = self.shared.store().lookup(cfg, &qname, zone_qtype(ask.qtype));
            if let Outcome::Answer(answer) = outcome {
                return self.zone_reply(blocks, ask, *answer).await;
            }
        }
        if let Some(fwd) = block.forward.as_ref().filter(|f| f.matches(ask.lower)) {
            return self.forward(fwd, block, ask).await;
        }
        let _ = bid;
        if block.errors {
            tracing::error!("[ERROR] plugin/errors: 2 {} {}: no next plugin found", ask.name, ask.qtype);
        }
        Reply::error(ResponseCode::ServFail, Plugin::None)
    }

    /// The kubernetes plugin's answer as a reply; ExternalName targets are resolved through the
    /// whole server (CoreDNS's `upstream.Lookup`).
    async fn zone_reply(&self, blocks: &Blocks, ask: &Ask<'_>, answer: zone::Answer) -> Reply {
        let code = match answer.rcode {
            // BackendError: authoritative, with the SOA, like NXDOMAIN.
            zone::Rcode::ServFail => ResponseCode::ServFail,
            // Returned, not written: the server writes a bare reply with that rcode.
            zone::Rcode::Refused => return Reply::error(ResponseCode::Refused, Plugin::Kubernetes),
            zone::Rcode::NxDomain => ResponseCode::NXDomain,
            zone::Rcode::NoError => ResponseCode::NoError,
        };
        let mut answers: Vec<Record> = answer.answers.iter().filter_map(|r| to_record(r, ask.name)).collect();
        let additionals: Vec<Record> =
            answer.additionals.iter().filter_map(|r| to_record(r, ask.name)).collect();
        let mut tc = false;
        if let Some(chase) = &answer.chase
            && let (Some(cname), Ok(target)) =
                (to_record(&chase.cname, ask.name), Name::from_ascii(&chase.target))
        {
            answers.push(cname);
            if ask.depth < MAX_DEPTH {
                let inner = Ask {
                    name: &target,
                    lower: &chase.target,
                    qtype: ask.qtype,
                    raw: None,
                    tcp: false,
                    dnssec_ok: ask.dnssec_ok,
                    depth: ask.depth + 1,
                };
                let upstream = self.resolve(blocks, &inner).await;
                tc = upstream.tc;
                answers.extend(upstream.answers);
            }
        }
        let negative = code != ResponseCode::NoError || answers.is_empty();
        Reply {
            rcode: code,
            aa: true,
            // Neither ServeDNS's reply (SetReply) nor BackendError's (SetRcode) sets RA: the
            // kubernetes plugin is no recursive resolver (coredns/coredns#2408). dig warns
            // "recursion requested but not available", as it does against CoreDNS.
            ra: false,
            tc,
            authorities: if negative {
                to_record(&answer.soa, ask.name).into_iter().collect()
            } else {
                vec![]
            },
            answers,
            additionals,
            plugin: Plugin::Kubernetes,
            // An ExternalName's target came from upstream.
            fresh: if answer.chase.is_some() { Fresh::No } else { Fresh::UntilChange },
        }
    }

    async fn forward(&self, fwd: &Forwarder, block: &Block, ask: &Ask<'_>) -> Reply {
        let Ok(_permit) = fwd.permit() else {
            self.shared.metrics.forward_reject();
            return Reply::error(ResponseCode::Refused, Plugin::Forward);
        };
        let built;
        let query = match ask.raw {
            Some(raw) => raw,
            None => {
                built = build_query(ask.name, ask.qtype, ask.dnssec_ok);
                &built
            }
        };
        let result = fwd.exchange(query, ask.tcp, &self.shared.metrics).await;
        let parsed = result.and_then(|(wire, upstream)| {
            Message::from_vec(&wire)
                .map_err(|e| Error::Upstream { upstream, message: format!("bad reply: {e}") })
        });
        match parsed {
            Ok(msg) => Reply {
                rcode: msg.metadata.response_code,
                aa: msg.metadata.authoritative,
                ra: msg.metadata.recursion_available,
                tc: msg.metadata.truncation,
                answers: msg.answers,
                authorities: msg.authorities,
                additionals: msg.additionals,
                plugin: Plugin::Forward,
                fresh: Fresh::No,
            },
            Err(error) => {
                if block.errors {
                    // CoreDNS's errors plugin: `[ERROR] plugin/errors: 2 NAME. TYPE: <error>`.
                    tracing::error!("[ERROR] plugin/errors: 2 {} {}: {error}", ask.name, ask.qtype);
                }
                Reply::error(ResponseCode::ServFail, Plugin::Forward)
            }
        }
    }
}

/// The querying client's IP: what a node put in the source-IP option (the pod the query came
/// from, see [`EDNS_SOURCE_IP`]), else the packet's source.
fn source_ip(request: &Request) -> IpAddr {
    let option = request.edns.as_ref().and_then(|e| e.options().get(EdnsCode::Unknown(EDNS_SOURCE_IP)));
    match option {
        Some(EdnsOption::Unknown(_, bytes)) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes.as_slice()).map(IpAddr::from).unwrap_or(request.src().ip()),
            16 => <[u8; 16]>::try_from(bytes.as_slice()).map(IpAddr::from).unwrap_or(request.src().ip()),
            _ => request.src().ip(),
        },
        _ => request.src().ip(),
    }
}

fn failed(request: &Request, code: ResponseCode) -> ResponseInfo {
    let mut metadata = Metadata::response_from_request(&request.metadata);
    metadata.response_code = code;
    ResponseInfo::from(Header { metadata, counts: HeaderCounts::default() })
}

fn zone_qtype(t: RecordType) -> QType {
    match t {
        RecordType::A => QType::A,
        RecordType::AAAA => QType::Aaaa,
        RecordType::TXT => QType::Txt,
        RecordType::CNAME => QType::Cname,
        RecordType::PTR => QType::Ptr,
        RecordType::MX => QType::Mx,
        RecordType::SRV => QType::Srv,
        RecordType::SOA => QType::Soa,
        RecordType::NS => QType::Ns,
        RecordType::AXFR => QType::Axfr,
        RecordType::IXFR => QType::Ixfr,
        _ => QType::Other,
    }
}

fn to_record(r: &zone::Record, qname: &Name) -> Option<Record> {
    let name = |s: &str| Name::from_ascii(s).ok();
    let owner = match &r.owner {
        Owner::Query => qname.clone(),
        Owner::Name(s) => name(s)?,
    };
    let data = match &r.data {
        zone::RData::A(ip) => RData::A(A(*ip)),
        zone::RData::Aaaa(ip) => RData::AAAA(AAAA(*ip)),
        zone::RData::Cname(t) => RData::CNAME(CNAME(name(t)?)),
        zone::RData::Ptr(t) => RData::PTR(PTR(name(t)?)),
        zone::RData::Ns(t) => RData::NS(NS(name(t)?)),
        zone::RData::Txt(t) => RData::TXT(TXT::new(vec![t.clone()])),
        zone::RData::Srv { priority, weight, port, target } => {
            RData::SRV(SRV::new(*priority, *weight, *port, name(target)?))
        }
        zone::RData::Soa { mname, rname, serial, refresh, retry, expire, minimum } => {
            RData::SOA(SOA::new(name(mname)?, name(rname)?, *serial, *refresh, *retry, *expire, *minimum))
        }
    };
    Some(Record::from_rdata(owner, r.ttl, data))
}

/// A query the server sends itself (ExternalName targets): RD set, EDNS with a safe payload.
fn build_query(name: &Name, qtype: RecordType, dnssec_ok: bool) -> Vec<u8> {
    let mut msg = Message::query();
    msg.metadata.id = rand::random();
    msg.metadata.recursion_desired = true;
    let mut q = Query::query(name.clone(), qtype);
    q.set_query_class(DNSClass::IN);
    msg.add_query(q);
    let mut edns = Edns::new();
    edns.set_max_payload(UPSTREAM_PAYLOAD).set_dnssec_ok(dnssec_ok);
    msg.set_edns(edns);
    msg.to_vec().unwrap_or_default()
}

/// What the cache would keep a reply as, and the TTL it carries: the smallest record TTL for a
/// positive answer, the SOA's min(TTL, MINIMUM) for a negative one.
fn classify(reply: &Reply) -> Option<(cache::Kind, u32)> {
    match reply.rcode {
        ResponseCode::NoError if !reply.answers.is_empty() => {
            let ttl = reply
                .answers
                .iter()
                .chain(&reply.authorities)
                .chain(&reply.additionals)
                .map(|r| r.ttl)
                .min()?;
            Some((cache::Kind::Success, ttl))
        }
        ResponseCode::NoError | ResponseCode::NXDomain => {
            let soa = reply.authorities.iter().find_map(|r| match &r.data {
                RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
                _ => None,
            });
            Some((cache::Kind::Denial, soa.unwrap_or(0)))
        }
        ResponseCode::ServFail => Some((cache::Kind::ServFail, 0)),
        _ => None,
    }
}

fn to_cache(reply: &Reply) -> Option<Vec<u8>> {
    let mut msg = Message::response(0, OpCode::Query);
    msg.metadata.authoritative = reply.aa;
    msg.metadata.recursion_available = reply.ra;
    msg.metadata.truncation = reply.tc;
    msg.metadata.response_code = reply.rcode;
    msg.answers = reply.answers.clone();
    msg.authorities = reply.authorities.clone();
    msg.additionals = reply.additionals.clone();
    msg.to_vec().ok()
}

/// A cached reply with every TTL set to what is left; and whether it is a positive one.
fn from_cache(hit: &cache::Hit) -> Option<(Reply, bool)> {
    let msg = Message::from_vec(&hit.wire).ok()?;
    let set = |mut v: Vec<Record>| {
        for r in &mut v {
            r.ttl = hit.ttl_left;
        }
        v
    };
    let reply = Reply {
        rcode: msg.metadata.response_code,
        aa: msg.metadata.authoritative,
        ra: msg.metadata.recursion_available,
        tc: msg.metadata.truncation,
        answers: set(msg.answers),
        authorities: set(msg.authorities),
        additionals: set(msg.additionals),
        plugin: Plugin::Cache,
        fresh: Fresh::Until(hit.same_until),
    };
    Some((reply, hit.kind == cache::Kind::Success))
}

/// Whether loadbalance's round_robin would reorder `records` (two addresses or two MX).
fn shuffles(records: &[Record]) -> bool {
    let count = |types: &[RecordType]| records.iter().filter(|r| types.contains(&r.record_type())).count();
    count(&[RecordType::A, RecordType::AAAA]) > 1 || count(&[RecordType::MX]) > 1
}

/// loadbalance's round_robin: CNAMEs first, then other records, then the shuffled addresses,
/// then the shuffled MX records.
fn round_robin(records: &mut Vec<Record>) {
    use rand::seq::SliceRandom as _;
    if records.len() < 2 {
        return;
    }
    let (mut cname, mut address, mut mx, mut rest) = (vec![], vec![], vec![], vec![]);
    for r in records.drain(..) {
        match r.record_type() {
            RecordType::CNAME => cname.push(r),
            RecordType::A | RecordType::AAAA => address.push(r),
            RecordType::MX => mx.push(r),
            _ => rest.push(r),
        }
    }
    let mut rng = rand::rng();
    address.shuffle(&mut rng);
    mx.shuffle(&mut rng);
    records.extend(cname);
    records.extend(rest);
    records.extend(address);
    records.extend(mx);
}

/// The encoded size of the reply, for the `log` line (only computed when `log` is on).
fn wire_size(metadata: &Metadata, request: &Request, reply: &Reply) -> usize {
    let mut msg = Message::new(metadata.id, MessageType::Response, OpCode::Query);
    msg.metadata = *metadata;
    msg.add_queries(request.queries.queries().iter().map(|q| q.original().clone()));
    msg.answers = reply.answers.clone();
    msg.authorities = reply.authorities.clone();
    msg.additionals = reply.additionals.clone();
    msg.to_vec().map(|v| v.len()).unwrap_or(0)
}

/// The `log` plugin's line: `[INFO] 10.0.0.1:53530 - 4242 "A IN name. udp 66 false 512"
/// NOERROR qr,aa,rd,ra 106 0.000220s`.
fn log_query(
    request: &Request,
    name: &Name,
    qtype: RecordType,
    metadata: &Metadata,
    size: usize,
    took: Duration,
) {
    let proto = if request.protocol() == Protocol::Tcp { "tcp" } else { "udp" };
    let (dnssec_ok, bufsize) = match &request.edns {
        Some(e) => (e.flags().dnssec_ok, e.max_payload()),
        None => (false, 512),
    };
    let mut flags = vec!["qr"];
    if metadata.authoritative {
        flags.push("aa");
    }
    if metadata.truncation {
        flags.push("tc");
    }
    if metadata.recursion_desired {
        flags.push("rd");
    }
    if metadata.recursion_available {
        flags.push("ra");
    }
    let src = request.src();
    let ip = match src.ip() {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    tracing::info!(
        "[INFO] {ip}:{} - {} \"{qtype} IN {name} {proto} {} {dnssec_ok} {bufsize}\" {} {} {size} {:.9}s",
        src.port(),
        request.metadata.id,
        request.as_slice().len(),
        metadata.response_code,
        flags.join(","),
        took.as_secs_f64(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    mod apex;

    fn a(name: &str, ip: &str) -> Record {
        Record::from_rdata(Name::from_ascii(name).unwrap(), 30, RData::A(A(ip.parse().unwrap())))
    }

    #[test]
    fn round_robin_keeps_cnames_first() {
        let cname = Record::from_rdata(
            Name::from_ascii("x.").unwrap(),
            30,
            RData::CNAME(CNAME(Name::from_ascii("y.").unwrap())),
        );
        let mut records =
            vec![a("y.", "192.0.2.1"), cname.clone(), a("y.", "192.0.2.2"), a("y.", "192.0.2.3")];
        let mut orders = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut r = records.clone();
            round_robin(&mut r);
            assert_eq!(r[0], cname);
            orders.insert(format!("{:?}", &r[1..]));
        }
        assert!(orders.len() > 1, "never shuffled");
        records.truncate(1);
        round_robin(&mut records);
        assert_eq!(records.len(), 1);
    }

    #[test]
    fn negative_ttl_is_the_soa_minimum_or_its_ttl() {
        let soa = Record::from_rdata(
            Name::from_ascii("example.").unwrap(),
            60,
            RData::SOA(SOA::new(Name::root(), Name::root(), 1, 1, 1, 1, 10)),
        );
        let mut reply = Reply::error(ResponseCode::NXDomain, Plugin::Forward);
        reply.authorities.push(soa);
        assert_eq!(classify(&reply), Some((cache::Kind::Denial, 10)));
        let ok = Reply {
            answers: vec![a("x.", "192.0.2.1")],
            ..Reply::error(ResponseCode::NoError, Plugin::Forward)
        };
        assert_eq!(classify(&ok), Some((cache::Kind::Success, 30)));
        assert_eq!(classify(&Reply::error(ResponseCode::Refused, Plugin::Forward)), None);
    }

    #[test]
    fn cache_round_trip_rewrites_ttls() {
        let reply = Reply {
            answers: vec![a("x.", "192.0.2.1")],
            ..Reply::error(ResponseCode::NoError, Plugin::Forward)
        };
        let wire = to_cache(&reply).unwrap();
        let hit = cache::Hit {
            wire: wire.into(),
            ttl_left: 7,
            kind: cache::Kind::Success,
            same_until: Instant::now(),
        };
        let (back, success) = from_cache(&hit).unwrap();
        assert!(success);
        assert_eq!(back.answers[0].ttl, 7);
        assert_eq!(back.plugin, Plugin::Cache);
    }

    mod faults {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
        use netlab_chaos::{
            DnsChaos,
            dns::DnsAction,
            report::FaultKey,
            status::{ChaosStatus, Record as ChaosRecord},
        };

        use super::*;
        use crate::{blocks::Settings, chaos::Faults, corefile::Corefile};

        const POD: &str = "10.244.1.5";
        const OTHER: &str = "10.244.1.6";
        const NAME: &str = "orders.default.svc.cluster.local.";

        fn shared() -> Arc<Shared> {
            let settings =
                Settings { resolv_override: vec![], local_ips: vec!["127.0.0.1".parse().unwrap()], port: 53 };
            let shared = Shared::new(settings);
            let corefile = Corefile::parse(".:53 {\n kubernetes cluster.local\n}\n").unwrap();
            shared.set_blocks(Blocks::compile(corefile, &shared.settings, &shared.metrics));
            shared.update(|s| s.set_synced(true));
            shared
        }

        fn fault(action: DnsAction, patterns: &[&str], edit: impl FnOnce(&mut DnsChaos)) -> DnsChaos {
            let mut c = DnsChaos {
                metadata: ObjectMeta {
                    name: Some("dns-fault".into()),
                    namespace: Some("default".into()),
                    creation_timestamp: Some(Time(jiff::Timestamp::now())),
                    ..Default::default()
                },
                ..Default::default()
            };
            c.spec.action = action;
            c.spec.patterns = patterns.iter().map(|p| p.to_string()).collect();
            let mut status = ChaosStatus::default();
            status.experiment.container_records = vec![ChaosRecord {
                id: "default/client".into(),
                selector_key: ".".into(),
                phase: "Injected".into(),
                pod_ip: POD.into(),
                ..Default::default()
            }];
            c.status = Some(status);
            edit(&mut c);
            c
        }

        fn install(shared: &Shared, c: &DnsChaos) -> FaultKey {
            shared.set_faults(Faults::build([c], jiff::Timestamp::now()).0);
            FaultKey::of(c)
        }

        /// A pod's query as a node sends it: EDNS with the pod's IP in the source-IP option.
        fn query(name: &str, qtype: RecordType, pod: Option<&str>) -> Vec<u8> {
            let mut msg = Message::query();
            msg.metadata.id = 4242;
            msg.metadata.recursion_desired = true;
            msg.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
            let mut edns = Edns::new();
            edns.set_max_payload(1232);
            if let Some(ip) = pod {
                let ip: std::net::Ipv4Addr = ip.parse().unwrap();
                edns.options_mut().insert(EdnsOption::Unknown(EDNS_SOURCE_IP, ip.octets().to_vec()));
            }
            msg.set_edns(edns);
            msg.to_vec().unwrap()
        }

        /// The node-agent's socket: every lab query reaches dns from the node's address.
        fn node() -> SocketAddr {
            "127.0.0.1:40000".parse().unwrap()
        }

        async fn ask(
            shared: &Arc<Shared>,
            name: &str,
            qtype: RecordType,
            pod: Option<&str>,
        ) -> Option<Message> {
            let h = DnsHandler::new(shared.clone());
            let (bytes, _) = h.answer_udp(query(name, qtype, pod), node()).await?;
            Some(Message::from_vec(&bytes).unwrap())
        }

        #[tokio::test]
        async fn error_answers_the_selected_pod_only() {
            let shared = shared();
            let key = install(&shared, &fault(DnsAction::Error, &["orders.*"], |_| {}));
            let r = ask(&shared, NAME, RecordType::A, Some(POD)).await.unwrap();
            assert_eq!(r.metadata.response_code, ResponseCode::ServFail);
            assert!(!r.metadata.authoritative && !r.metadata.recursion_available && r.answers.is_empty());
            // Another pod, the host (no option) and another name resolve as usual.
            for (name, pod) in
                [(NAME, Some(OTHER)), (NAME, None), ("payments.default.svc.cluster.local.", Some(POD))]
            {
                let r = ask(&shared, name, RecordType::A, pod).await.unwrap();
                assert_eq!(r.metadata.response_code, ResponseCode::NXDomain, "{name} from {pod:?}");
            }
            assert_eq!(shared.reporter.pending()[&key][counter::QUERIES_ANSWERED], 1);
        }

        #[tokio::test]
        async fn error_rcodes() {
            let shared = shared();
            for (rcode, want) in [("NXDOMAIN", ResponseCode::NXDomain), ("REFUSED", ResponseCode::Refused)] {
                install(&shared, &fault(DnsAction::Error, &[], |c| c.spec.rcode = Some(rcode.into())));
                let r = ask(&shared, "example.com.", RecordType::A, Some(POD)).await.unwrap();
                assert_eq!(r.metadata.response_code, want);
            }
        }

        #[tokio::test]
        async fn random_answers_as_chaos_coredns() {
            let shared = shared();
            let key = install(&shared, &fault(DnsAction::Random, &[], |_| {}));
            let a = ask(&shared, NAME, RecordType::A, Some(POD)).await.unwrap();
            assert_eq!(a.metadata.response_code, ResponseCode::NoError);
            assert!(a.metadata.authoritative);
            assert_eq!(a.answers.len(), 1);
            assert_eq!(a.answers[0].ttl, 10);
            assert_eq!(a.answers[0].name.to_string(), NAME);
            assert!(matches!(a.answers[0].data, RData::A(_)));
            let aaaa = ask(&shared, NAME, RecordType::AAAA, Some(POD)).await.unwrap();
            assert_eq!(aaaa.answers[0].data, RData::AAAA(AAAA(chaos::RANDOM_AAAA)));
            let mx = ask(&shared, NAME, RecordType::MX, Some(POD)).await.unwrap();
            assert_eq!(mx.metadata.response_code, ResponseCode::ServFail);
            assert_eq!(shared.reporter.pending()[&key][counter::QUERIES_ANSWERED], 3);
        }

        #[tokio::test]
        async fn timeout_sends_nothing() {
            let shared = shared();
            let key = install(&shared, &fault(DnsAction::Timeout, &[], |_| {}));
            assert!(ask(&shared, NAME, RecordType::A, Some(POD)).await.is_none());
            assert_eq!(shared.reporter.pending()[&key][counter::QUERIES_DROPPED], 1);
            assert!(ask(&shared, NAME, RecordType::A, Some(OTHER)).await.is_some());
        }

        #[tokio::test]
        async fn delay_answers_normally_later_and_is_never_repeated() {
            let shared = shared();
            let key =
                install(&shared, &fault(DnsAction::Delay, &[], |c| c.spec.delay = Some("200ms".into())));
            let h = DnsHandler::new(shared.clone());
            let started = Instant::now();
            let (bytes, repeat) = h.answer_udp(query(NAME, RecordType::A, Some(POD)), node()).await.unwrap();
            assert!(started.elapsed() >= Duration::from_millis(200));
            assert_eq!(Message::from_vec(&bytes).unwrap().metadata.response_code, ResponseCode::NXDomain);
            assert!(repeat.is_none(), "a delayed reply must not be repeated by the packet cache");
            assert_eq!(shared.reporter.pending()[&key][counter::QUERIES_DELAYED], 1);
            // The same query from an unaffected pod may be repeated.
            let (_, repeat) = h.answer_udp(query(NAME, RecordType::A, Some(OTHER)), node()).await.unwrap();
            assert!(repeat.is_some());
        }

        #[tokio::test]
        async fn the_packet_source_counts_without_the_option() {
            let shared = shared();
            install(&shared, &fault(DnsAction::Error, &[], |_| {}));
            let h = DnsHandler::new(shared.clone());
            let from_pod = SocketAddr::new(POD.parse().unwrap(), 33000);
            let (bytes, _) = h.answer_udp(query(NAME, RecordType::A, None), from_pod).await.unwrap();
            assert_eq!(Message::from_vec(&bytes).unwrap().metadata.response_code, ResponseCode::ServFail);
        }

        #[tokio::test]
        async fn a_new_fault_orphans_the_packet_cache() {
            let shared = shared();
            let before = shared.generation();
            install(&shared, &fault(DnsAction::Error, &[], |_| {}));
            assert!(shared.generation() > before);
        }
    }
}
