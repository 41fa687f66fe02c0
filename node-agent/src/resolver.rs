//! The pod's DNS stub resolver: what libc does between `getaddrinfo("orders")` and the DNS
//! messages on the pod's network.
//!
//! A pod never talks to CoreDNS "directly": its libc reads `/etc/resolv.conf`, expands the name
//! through the search list, and sends real DNS messages to the nameserver over UDP (TCP on
//! truncation). In netlab those datagrams must cross the node's kernel model — the kube-dns
//! ClusterIP is DNATed by kube-proxy's rules, NetworkPolicy may drop them, a dead DNS pod answers
//! with ICMP port-unreachable — so every message goes through the pod's [`PodNetwork`].
//! Everything above the sockets is here, modelled on glibc so that the query sequences (and so
//! the packet counts, the `ndots:5` cost, the 5 s timeouts) match: [`Resolver`] is glibc's
//! `res_nsearch` + `res_nsend` (the resolver behind `getaddrinfo`, `gethostbyname2`, curl, ping,
//! ...): ndots, the search list, NXDOMAIN/NODATA/SERVFAIL continuation, A and AAAA sent in
//! parallel, timeout × attempts rotation over nameservers; [`getaddrinfo`] is what the toolbox's
//! commands call. `message` builds the queries and checks the replies. The DNS commands (`dig`,
//! `nslookup`, `host`, `getent`) are toolbox commands (`apps::toolbox::dns`).
//!
//! Every message carries an EDNS(0) OPT record; when a W3C traceparent is known it rides in an
//! experimental EDNS option ([`EDNS_TRACEPARENT`]) so that the DNS server can join the trace.

#[cfg(test)]
use std::sync::{
    Arc,
    atomic::{AtomicU16, Ordering},
};
use std::{
    fmt,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{Name, RData, Record, RecordType},
};
use tokio::time::Instant;
use tracing::{Instrument as _, debug, info_span};

use crate::{
    kubelet::dns::DnsConfig,
    podnet::{ErrorKind, PodNetwork},
};

pub(crate) mod message;

/// The DNS port: `nameserver` lines carry no port.
pub const DNS_PORT: u16 = 53;
pub use netlab_telemetry::propagation::EDNS_TRACEPARENT;
/// The EDNS(0) UDP payload size advertised in queries: the DNS Flag Day 2020 value, which BIND
/// 9.18's dig also sends.
pub const EDNS_UDP_PAYLOAD: u16 = 1232;
/// glibc's `RES_MAXNDOTS`.
pub const MAX_NDOTS: usize = 15;
/// glibc's default `timeout:` (`RES_TIMEOUT`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// glibc's largest `timeout:` (`RES_MAXRETRANS`).
pub const MAX_TIMEOUT_SECS: u64 = 30;
/// glibc's default `attempts:` (`RES_DFLRETRY`).
pub const DEFAULT_ATTEMPTS: u32 = 2;
/// glibc's largest `attempts:` (`RES_MAXRETRY`).
pub const MAX_ATTEMPTS: u32 = 5;
/// glibc reads at most this many `nameserver` lines (`MAXNS`).
pub const MAX_NAMESERVERS: usize = 3;

/// A pod's `/etc/resolv.conf` as glibc reads it (`res_init`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Up to [`MAX_NAMESERVERS`] servers, port 53; `127.0.0.1` when the file names none (glibc's
    /// and BIND's default).
    pub nameservers: Vec<SocketAddr>,
    /// The search list, without trailing dots.
    pub search: Vec<String>,
    /// `options ndots:N` (default 1, capped at [`MAX_NDOTS`]).
    pub ndots: usize,
    /// `options timeout:N`, in seconds (default 5, capped at 30). The base of glibc's per-server
    /// wait; see [`ResolvConf::server_timeout`].
    pub timeout_secs: u64,
    /// `options attempts:N` (default 2, capped at 5): rounds over all nameservers.
    pub attempts: u32,
    /// Whether `options timeout:` was present (BIND's tools only then override their own default).
    pub timeout_set: bool,
    /// Whether `options attempts:` was present.
    pub attempts_set: bool,
    /// `options single-request` / `single-request-reopen`: A then AAAA, not in parallel.
    pub single_request: bool,
    /// `options use-vc`: every query over TCP.
    pub use_vc: bool,
}

/// glibc's `h_errno`: why a lookup failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HErrno {
    /// `HOST_NOT_FOUND`: NXDOMAIN everywhere.
    HostNotFound,
    /// `TRY_AGAIN`: SERVFAIL, timeouts, or no server reachable (`ECONNREFUSED`).
    TryAgain,
    /// `NO_RECOVERY`: REFUSED, FORMERR, NOTIMP or an unusable name.
    NoRecovery,
    /// `NO_DATA`: the name exists but has no record of the asked types.
    NoData,
}

/// How one message exchange ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A reply with this rcode.
    Rcode(ResponseCode),
    /// No usable reply: the socket's error.
    Socket(ErrorKind),
    /// A reply that does not answer the query (wrong id or question, or undecodable); the
    /// resolver ignores it and waits out the timeout, as glibc does.
    Mismatch,
}

/// One message the resolver sent and what came of it: the material of `-v`, `+showsearch` and
/// traces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The query name, absolute (`cart.shop.svc.cluster.local.`).
    pub name: String,
    /// The query type.
    pub rtype: RecordType,
    /// The server it went to.
    pub server: SocketAddr,
    /// Whether it went over TCP.
    pub tcp: bool,
    /// The rcode, or the socket's error.
    pub outcome: Outcome,
    /// The answer section of the reply.
    pub answers: Vec<Record>,
}

/// A successful lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The candidate name that answered, absolute (`cart.shop.svc.cluster.local.`).
    pub name: String,
    /// The end of the CNAME chain, without the trailing dot (glibc's `h_name`).
    pub canonical: String,
    /// The CNAME owners on the way, without trailing dots (glibc's `h_aliases`).
    pub aliases: Vec<String>,
    /// The addresses: A records first, then AAAA (what `getaddrinfo`'s RFC 6724 sort gives in
    /// an IPv4-only pod).
    pub addrs: Vec<IpAddr>,
    /// The answer records of the asked types at the end of the chain.
    pub records: Vec<Record>,
    /// Every message sent, in order.
    pub attempts: Vec<Attempt>,
}

/// A failed lookup, with every message that was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {error}")]
pub struct ResolveFailure {
    /// The name as asked.
    pub name: String,
    /// glibc's `h_errno`.
    pub error: HErrno,
    /// Every message sent, in order.
    pub attempts: Vec<Attempt>,
}

/// Why a name did not resolve, in `getaddrinfo` terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// `EAI_NONAME`: every search domain answered NXDOMAIN (or no records).
    #[error("Name does not resolve")]
    NotFound,
    /// `EAI_AGAIN`: the nameservers failed or did not answer; the failure is for logs and
    /// traces, the tools print libc's message ("Try again").
    #[error(transparent)]
    Failed(ResolveFailure),
}

/// Where query ids come from: random in pods, a counter in tests (so outputs are exact).
#[derive(Debug, Clone, Default)]
pub(crate) enum Ids {
    /// Random 16-bit ids.
    #[default]
    Random,
    /// `n`, `n+1`, ...
    #[cfg(test)]
    Sequence(Arc<AtomicU16>),
}

/// A stub resolver with glibc's semantics over a pod's [`PodNetwork`].
#[derive(Debug, Clone)]
pub struct Resolver {
    conf: ResolvConf,
    traceparent: Option<String>,
    ids: Ids,
}

/// What one query unit (one name, one or two types, all servers and rounds) ended with.
#[derive(Debug)]
struct Unit {
    /// The usable replies (a final rcode), by type in the asked order.
    replies: Vec<(RecordType, Message)>,
    /// Whether some server answered or timed out (glibc's `gotsomewhere`); false means every
    /// server refused.
    got_somewhere: bool,
    /// The rcode of the last unusable reply (SERVFAIL, NOTIMP, REFUSED) of the first type.
    last_rcode: Option<ResponseCode>,
}

/// What one candidate name ended with (glibc's `__res_context_query`).
#[derive(Debug)]
enum Candidate {
    Found(Lookup),
    Failed {
        error: HErrno,
        /// The answer buffer's rcode was SERVFAIL (res_nsearch's `got_servfail`).
        servfail: bool,
        /// `ECONNREFUSED`: no server was reachable at all.
        refused: bool,
    },
}

// === impl ResolvConf ===

impl ResolvConf {
    /// Parses resolv.conf text with glibc's rules and defaults (the lines as the kubelet that
    /// wrote the file reads them: [`DnsConfig::parse`]).
    pub fn parse(text: &str) -> Self {
        let parsed = DnsConfig::parse(text);
        let mut nameservers: Vec<SocketAddr> = parsed
            .servers
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, DNS_PORT))
            .take(MAX_NAMESERVERS)
            .collect();
        if nameservers.is_empty() {
            nameservers.push(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), DNS_PORT));
        }
        let mut conf = ResolvConf {
            nameservers,
            search: parsed.searches.clone(),
            ndots: 1,
            timeout_secs: DEFAULT_TIMEOUT.as_secs(),
            attempts: DEFAULT_ATTEMPTS,
            timeout_set: false,
            attempts_set: false,
            single_request: false,
            use_vc: false,
        };
        for option in &parsed.options {
            let (key, value) = match option.split_once(':') {
                Some((k, v)) => (k, Some(v)),
                None => (option.as_str(), None),
            };
            let number = value.and_then(|v| v.parse::<u64>().ok());
            match (key, number) {
                ("ndots", Some(n)) => conf.ndots = (n as usize).min(MAX_NDOTS),
                ("timeout", Some(n)) => {
                    conf.timeout_secs = n.min(MAX_TIMEOUT_SECS);
                    conf.timeout_set = true;
                }
                ("attempts", Some(n)) => {
                    conf.attempts = (n as u32).min(MAX_ATTEMPTS);
                    conf.attempts_set = true;
                }
                ("single-request" | "single-request-reopen", _) => conf.single_request = true,
                ("use-vc", _) => conf.use_vc = true,
                _ => {}
            }
        }
        conf
    }

    /// How long glibc waits for nameserver number `index` (0-based) in each round:
    /// `(timeout << index) / nscount` for all but the first, at least 1 s (`send_dg`).
    pub fn server_timeout(&self, index: usize) -> Duration {
        let mut secs = self.timeout_secs << index.min(16);
        if index > 0 {
            secs /= self.nameservers.len().max(1) as u64;
        }
        Duration::from_secs(secs.max(1))
    }

    /// The names glibc would try for `name`, in order, if every one failed with NXDOMAIN.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        let trailing_dot = name.ends_with('.');
        if trailing_dot {
            return vec![name.to_string()];
        }
        let as_is = format!("{name}.");
        let mut out = Vec::new();
        let dots = name.matches('.').count();
        if dots >= self.ndots {
            out.push(as_is.clone());
        }
        out.extend(self.search.iter().map(|d| format!("{name}.{d}.")));
        if dots < self.ndots {
            out.push(as_is);
        }
        out
    }
}

// === impl HErrno ===

impl HErrno {
    /// `hstrerror()`'s text.
    pub fn message(self) -> &'static str {
        match self {
            HErrno::HostNotFound => "Unknown host",
            HErrno::TryAgain => "Host name lookup failure",
            HErrno::NoRecovery => "Unknown server error",
            HErrno::NoData => "No address associated with name",
        }
    }

    /// `gai_strerror()` of the `getaddrinfo` error this maps to (curl, ping, nc print these).
    pub fn gai_message(self) -> &'static str {
        match self {
            HErrno::HostNotFound => "Name or service not known",
            HErrno::TryAgain => "Temporary failure in name resolution",
            HErrno::NoRecovery => "Non-recoverable failure in name resolution",
            HErrno::NoData => "No address associated with hostname",
        }
    }
}

impl fmt::Display for HErrno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

// === impl ResolveError ===

impl ResolveError {
    /// The message musl's `gai_strerror` gives (netshoot is Alpine).
    pub fn gai_strerror(&self) -> &'static str {
        match self {
            Self::NotFound => "Name does not resolve",
            Self::Failed(_) => "Try again",
        }
    }
}

impl From<ResolveFailure> for ResolveError {
    /// NXDOMAIN and NODATA are "not found"; the rest are resolver failures (`EAI_AGAIN`-like)
    /// whose text is glibc's `h_errno` message.
    fn from(f: ResolveFailure) -> Self {
        match f.error {
            HErrno::HostNotFound | HErrno::NoData => Self::NotFound,
            HErrno::TryAgain | HErrno::NoRecovery => Self::Failed(f),
        }
    }
}

// === impl Outcome ===

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Rcode(rcode) => f.write_str(message::rcode_name(*rcode)),
            Outcome::Socket(kind) => write!(f, "{kind}"),
            Outcome::Mismatch => f.write_str("mismatched reply"),
        }
    }
}

// === impl Attempt ===

impl fmt::Display for Attempt {
    /// `cart.svc.cluster.local. A @10.96.0.10#53/udp: NXDOMAIN` (`, 1 answer` when some).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} @{}#{}/{}: {}",
            self.name,
            self.rtype,
            self.server.ip(),
            self.server.port(),
            if self.tcp { "tcp" } else { "udp" },
            self.outcome
        )?;
        match self.answers.len() {
            0 => Ok(()),
            1 => f.write_str(", 1 answer"),
            n => write!(f, ", {n} answers"),
        }
    }
}

// === impl Ids ===

impl Ids {
    /// The next query id.
    pub(crate) fn next(&self) -> u16 {
        match self {
            Ids::Random => random_u64() as u16,
            #[cfg(test)]
            Ids::Sequence(n) => n.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// A random number without a `rand` dependency: std's per-instance random SipHash keys.
pub(crate) fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

// === impl Resolver ===

impl Resolver {
    /// A resolver configured by a pod's resolv.conf text.
    pub fn from_resolv_conf(text: &str) -> Self {
        Self::new(ResolvConf::parse(text))
    }

    /// A resolver with a parsed configuration.
    pub fn new(conf: ResolvConf) -> Self {
        Self { conf, traceparent: None, ids: Ids::Random }
    }

    /// Puts `traceparent` into every query (EDNS option [`EDNS_TRACEPARENT`]); `None` falls
    /// back to [`PodNetwork::traceparent`].
    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// Query ids from `ids` (tests).
    pub(crate) fn with_ids(mut self, ids: Ids) -> Self {
        self.ids = ids;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ResolvConf {
        &self.conf
    }

    /// `getaddrinfo(name, AF_UNSPEC)`: A and AAAA for each candidate, the addresses of the first
    /// candidate that has any. An IP literal resolves to itself without a query.
    pub async fn lookup_ip(&self, name: &str, net: &dyn PodNetwork) -> Result<Vec<IpAddr>, ResolveFailure> {
        self.lookup(name, &[RecordType::A, RecordType::AAAA], net).await.map(|l| l.addrs)
    }

    /// Resolves `name` for the record types `types` (sent together for each candidate, as
    /// `getaddrinfo(AF_UNSPEC)` sends A and AAAA) following glibc's `res_nsearch` exactly:
    ///
    /// - fewer than ndots dots: each search suffix in order, then the name as is;
    /// - at least ndots dots: the name as is first, then the search list;
    /// - a trailing dot: that one name only;
    /// - the walk goes on after NXDOMAIN, NODATA (remembered: NO_DATA if nothing answers) and
    ///   SERVFAIL; any other failure (REFUSED, timeouts) ends the search list, but the name as
    ///   is is still tried if it was not yet; when no server is reachable at all
    ///   (`ECONNREFUSED`) it fails with TRY_AGAIN at once.
    ///
    /// Each candidate is sent to each nameserver in turn for `attempts` rounds, waiting
    /// [`ResolvConf::server_timeout`]; SERVFAIL, NOTIMP and REFUSED replies also move on to the
    /// next server. A truncated UDP reply is retried over TCP at the same server.
    pub async fn lookup(
        &self,
        name: &str,
        types: &[RecordType],
        net: &dyn PodNetwork,
    ) -> Result<Lookup, ResolveFailure> {
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(Lookup {
                name: name.to_string(),
                canonical: name.to_string(),
                aliases: Vec::new(),
                addrs: vec![ip],
                records: Vec::new(),
                attempts: Vec::new(),
            });
        }
        let fail = |error, attempts| ResolveFailure { name: name.to_string(), error, attempts };
        if name.is_empty() || name == "." {
            return Err(fail(HErrno::HostNotFound, Vec::new()));
        }
        let traceparent = self.traceparent.clone().or_else(|| net.traceparent());
        let mut walk = Walk {
            resolver: self,
            name,
            types,
            traceparent: traceparent.as_deref(),
            net,
            attempts: Vec::new(),
        };
        let dots = name.matches('.').count();
        let trailing_dot = name.ends_with('.');
        let mut saved: Option<HErrno> = None;
        let mut tried_as_is = false;
        let mut last = HErrno::HostNotFound;

        if dots >= self.conf.ndots || trailing_dot {
            match walk.try_name(None).await {
                Candidate::Found(l) => return Ok(walk.found(l)),
                Candidate::Failed { error, .. } if trailing_dot => {
                    return Err(fail(error, walk.attempts));
                }
                Candidate::Failed { error, .. } => {
                    saved = Some(error);
                    tried_as_is = true;
                }
            }
        }
        let mut got_nodata = false;
        let mut got_servfail = false;
        for domain in &self.conf.search {
            match walk.try_name(Some(domain)).await {
                Candidate::Found(l) => return Ok(walk.found(l)),
                Candidate::Failed { refused: true, .. } => {
                    return Err(fail(HErrno::TryAgain, walk.attempts));
                }
                Candidate::Failed { error, servfail, .. } => {
                    last = error;
                    match error {
                        HErrno::NoData => got_nodata = true,
                        HErrno::HostNotFound => {}
                        HErrno::TryAgain if servfail => got_servfail = true,
                        // "anything else implies that we're done" — with the search list; the
                        // name as is is still tried below.
                        _ => break,
                    }
                }
            }
        }
        if !tried_as_is {
            match walk.try_name(None).await {
                Candidate::Found(l) => return Ok(walk.found(l)),
                Candidate::Failed { error, .. } => last = error,
            }
        }
        let error = match saved {
            Some(e) => e,
            None if got_nodata => HErrno::NoData,
            None if got_servfail => HErrno::TryAgain,
            None => last,
        };
        Err(fail(error, walk.attempts))
    }

    /// glibc's `__res_context_send` for one name: every type of `types` in parallel (or in turn
    /// with `single-request`), over each server, for `attempts` rounds.
    async fn send_unit(
        &self,
        qname: &Name,
        types: &[RecordType],
        traceparent: Option<&str>,
        net: &dyn PodNetwork,
        attempts: &mut Vec<Attempt>,
    ) -> Unit {
        let mut unit = Unit { replies: Vec::new(), got_somewhere: false, last_rcode: None };
        let rounds = if self.conf.use_vc { 1 } else { self.conf.attempts };
        for _ in 0..rounds {
            for (index, server) in self.conf.nameservers.iter().enumerate() {
                let timeout = self.conf.server_timeout(index);
                let results = if self.conf.single_request || types.len() < 2 {
                    let deadline = Instant::now() + timeout;
                    let mut results = Vec::new();
                    for (i, &rtype) in types.iter().enumerate() {
                        // The first query gets the whole wait; the next ones what is left of it.
                        let left =
                            if i == 0 { timeout } else { deadline.saturating_duration_since(Instant::now()) };
                        let r = self.exchange(*server, qname, rtype, traceparent, left, net).await;
                        let stop = !matches!(r.last().map(|(_, e)| e), Some(Exchanged::Reply(_)));
                        results.push((rtype, r));
                        // A timed-out first query never lets the second one go out.
                        if stop {
                            break;
                        }
                    }
                    results
                } else {
                    let sends = types.iter().map(|&rtype| async move {
                        (rtype, self.exchange(*server, qname, rtype, traceparent, timeout, net).await)
                    });
                    futures::future::join_all(sends).await
                };
                let mut finals = Vec::new();
                for (i, (rtype, exchanges)) in results.into_iter().enumerate() {
                    for (attempt, exchanged) in exchanges {
                        attempts.push(attempt);
                        match exchanged {
                            Exchanged::Reply(msg) => {
                                unit.got_somewhere = true;
                                let rcode = msg.metadata.response_code;
                                if matches!(
                                    rcode,
                                    ResponseCode::ServFail | ResponseCode::NotImp | ResponseCode::Refused
                                ) {
                                    if i == 0 || unit.last_rcode.is_none() {
                                        unit.last_rcode = Some(rcode);
                                    }
                                } else {
                                    finals.push((rtype, msg));
                                }
                            }
                            Exchanged::TimedOut => unit.got_somewhere = true,
                            Exchanged::Refused | Exchanged::Truncated => {}
                        }
                    }
                }
                if !finals.is_empty() {
                    unit.replies = finals;
                    return unit;
                }
            }
        }
        unit
    }

    /// One query to one server; a truncated UDP reply is asked again over TCP. Returns each
    /// message sent with what came of it.
    async fn exchange(
        &self,
        server: SocketAddr,
        qname: &Name,
        rtype: RecordType,
        traceparent: Option<&str>,
        timeout: Duration,
        net: &dyn PodNetwork,
    ) -> Vec<(Attempt, Exchanged)> {
        let mut out = Vec::new();
        let mut tcp = self.conf.use_vc;
        loop {
            let query = message::QuerySpec {
                name: qname,
                rtype,
                id: self.ids.next(),
                recurse: true,
                edns: true,
                cookie: None,
                traceparent,
            };
            let started = Instant::now();
            let result = message::send(&query, server, tcp, timeout, net).await;
            let mut attempt = Attempt {
                name: qname.to_string(),
                rtype,
                server,
                tcp,
                outcome: Outcome::Mismatch,
                answers: Vec::new(),
            };
            let exchanged = match result {
                Ok(reply) => {
                    attempt.outcome = Outcome::Rcode(reply.message.metadata.response_code);
                    attempt.answers = reply.message.answers.clone();
                    if reply.message.metadata.truncation && !tcp {
                        debug!(%qname, %rtype, %server, "Truncated; retrying over TCP.");
                        out.push((attempt, Exchanged::Truncated));
                        tcp = true;
                        continue;
                    }
                    Exchanged::Reply(reply.message)
                }
                Err(message::SendError::Socket(kind)) => {
                    attempt.outcome = Outcome::Socket(kind);
                    match kind {
                        ErrorKind::TimedOut => Exchanged::TimedOut,
                        // Like ECONNREFUSED, an unreachable server is skipped without waiting.
                        ErrorKind::Refused | ErrorKind::Unreachable => Exchanged::Refused,
                    }
                }
                Err(message::SendError::Mismatch) => {
                    // glibc ignores a stray reply and keeps waiting for the real one.
                    tokio::time::sleep_until(started + timeout).await;
                    Exchanged::TimedOut
                }
            };
            debug!(%qname, %rtype, %server, tcp, outcome = %attempt.outcome, "DNS exchange.");
            out.push((attempt, exchanged));
            return out;
        }
    }
}

/// One lookup in progress: what every candidate shares, and the messages sent so far.
struct Walk<'a> {
    resolver: &'a Resolver,
    name: &'a str,
    types: &'a [RecordType],
    traceparent: Option<&'a str>,
    net: &'a dyn PodNetwork,
    attempts: Vec<Attempt>,
}

// === impl Walk ===

impl Walk<'_> {
    /// One candidate: the name (+ `.domain`), all types, then glibc's verdict on the replies.
    async fn try_name(&mut self, domain: Option<&str>) -> Candidate {
        let name = self.name;
        let text = match domain {
            Some(d) => format!("{name}.{d}."),
            None if name.ends_with('.') => name.to_string(),
            None => format!("{name}."),
        };
        let Ok(qname) = Name::from_ascii(&text) else {
            return Candidate::Failed { error: HErrno::NoRecovery, servfail: false, refused: false };
        };
        let unit =
            self.resolver.send_unit(&qname, self.types, self.traceparent, self.net, &mut self.attempts).await;
        evaluate(&qname, unit)
    }

    /// The successful lookup, with every message sent.
    fn found(self, mut lookup: Lookup) -> Lookup {
        lookup.attempts = self.attempts;
        lookup
    }
}

/// What one message brought back, for the resolver's logic.
#[derive(Debug)]
enum Exchanged {
    Reply(Message),
    TimedOut,
    Refused,
    /// A truncated UDP reply: recorded, then superseded by the TCP retry.
    Truncated,
}

/// glibc's verdict on one candidate's replies (`__res_context_query`): success when either reply
/// has answers; otherwise the rcode of the first reply, or of the second when the first is a
/// NOERROR, decides.
fn evaluate(qname: &Name, unit: Unit) -> Candidate {
    if unit.replies.is_empty() {
        return Candidate::Failed {
            error: HErrno::TryAgain,
            servfail: unit.last_rcode == Some(ResponseCode::ServFail),
            refused: !unit.got_somewhere,
        };
    }
    let has_answers =
        |m: &Message| m.metadata.response_code == ResponseCode::NoError && !m.answers.is_empty();
    if unit.replies.iter().any(|(_, m)| has_answers(m)) {
        return Candidate::Found(extract(qname, &unit.replies));
    }
    let first = &unit.replies[0].1;
    let second = unit.replies.get(1).map_or(first, |(_, m)| m);
    let rcode = if first.metadata.response_code == ResponseCode::NoError {
        second.metadata.response_code
    } else {
        first.metadata.response_code
    };
    let error = match rcode {
        ResponseCode::NXDomain => HErrno::HostNotFound,
        ResponseCode::ServFail => HErrno::TryAgain,
        ResponseCode::NoError => HErrno::NoData,
        _ => HErrno::NoRecovery,
    };
    Candidate::Failed { error, servfail: false, refused: false }
}

/// The addresses, canonical name and aliases of a successful candidate: each reply's CNAME chain
/// from the query name, then the records of the asked type at its end.
fn extract(qname: &Name, replies: &[(RecordType, Message)]) -> Lookup {
    let mut lookup = Lookup {
        name: qname.to_string(),
        canonical: bare(qname),
        aliases: Vec::new(),
        addrs: Vec::new(),
        records: Vec::new(),
        attempts: Vec::new(),
    };
    let mut v6 = Vec::new();
    let mut named = false;
    for (rtype, msg) in replies {
        if msg.metadata.response_code != ResponseCode::NoError {
            continue;
        }
        let (chain, records) = follow(qname, *rtype, &msg.answers);
        if !named
            && (!records.is_empty() || chain.len() > 1)
            && let Some((end, owners)) = chain.split_last()
        {
            named = true;
            lookup.canonical = bare(end);
            lookup.aliases = owners.iter().map(bare).collect();
        }
        for r in records {
            match &r.data {
                RData::A(a) => lookup.addrs.push(IpAddr::V4(a.0)),
                RData::AAAA(a) => v6.push(IpAddr::V6(a.0)),
                _ => {}
            }
            lookup.records.push(r);
        }
    }
    lookup.addrs.extend(v6);
    lookup
}

/// `getaddrinfo(name, AF_UNSPEC)` in a pod with resolv.conf `resolv_conf`, as the toolbox's
/// commands call it: the addresses, traced as a `resolver search` span with every search
/// candidate and its answer (the DNS queries, and the kernel's DNAT of each, are its children).
pub async fn getaddrinfo(
    resolv_conf: &str,
    name: &str,
    net: &dyn PodNetwork,
) -> Result<Vec<IpAddr>, ResolveError> {
    let span = info_span!(
        "resolver search",
        netlab.resolver.name = %name,
        netlab.resolver.candidates = tracing::field::Empty,
        netlab.resolver.queries = tracing::field::Empty,
        netlab.resolver.answer = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_message = tracing::field::Empty,
    );
    // The queries carry the traceparent of this span (`lookup` asks `net` inside it).
    let lookup = Resolver::from_resolv_conf(resolv_conf)
        .lookup(name, &[RecordType::A, RecordType::AAAA], net)
        .instrument(span.clone())
        .await;
    let attempts = match &lookup {
        Ok(l) => &l.attempts,
        Err(f) => &f.attempts,
    };
    let tried: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    let mut names: Vec<&str> = attempts.iter().map(|a| a.name.as_str()).collect();
    names.dedup();
    span.record("netlab.resolver.candidates", names.join(" ").as_str());
    span.record("netlab.resolver.queries", tried.join("; ").as_str());
    match lookup {
        Ok(l) if !l.addrs.is_empty() => {
            let ips: Vec<String> = l.addrs.iter().map(ToString::to_string).collect();
            span.record("netlab.resolver.answer", ips.join(",").as_str());
            Ok(l.addrs)
        }
        Ok(_) => Err(ResolveError::NotFound),
        Err(e) => {
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", e.to_string().as_str());
            Err(e.into())
        }
    }
}

/// Follows the CNAME chain from `qname` through `answers`; returns the chain (`qname` first) and
/// the `rtype` records owned by its end.
pub(crate) fn follow(qname: &Name, rtype: RecordType, answers: &[Record]) -> (Vec<Name>, Vec<Record>) {
    let mut chain = vec![qname.clone()];
    // A chain longer than the answer section is a loop.
    for _ in 0..answers.len() {
        let Some(current) = chain.last() else { break };
        let next = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(c) if rtype != RecordType::CNAME && r.name.eq_ignore_root(current) => {
                Some(c.0.clone())
            }
            _ => None,
        });
        match next {
            Some(n) => chain.push(n),
            None => break,
        }
    }
    let end = chain.last().cloned().unwrap_or_else(|| qname.clone());
    let records =
        answers.iter().filter(|r| r.record_type() == rtype && r.name.eq_ignore_root(&end)).cloned().collect();
    (chain, records)
}

/// A name without its trailing dot, as glibc and BIND's `dns_name_format` print it.
pub(crate) fn bare(name: &Name) -> String {
    let s = name.to_string();
    match s.strip_suffix('.') {
        Some(b) if !b.is_empty() => b.to_string(),
        _ => s,
    }
}

#[cfg(test)]
pub(crate) mod fake;
#[cfg(test)]
mod tests;
