//! BIND's lookup engine (`bin/dig/dighost.c`), which dig, host and nslookup share and which is
//! not glibc's resolver: the first server gets `tries` sends and every other server one, each
//! waiting the whole timeout; the search list is used only for names with fewer than ndots dots
//! and only an NXDOMAIN moves on to the next name; a SERVFAIL (unless it should stop) or, for
//! nslookup, a reply without RA moves on to the next server.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, ResponseCode},
    rr::{Name, RecordType},
};
use tokio::time::Instant;

use super::Ctx;
use crate::{
    podnet::{ErrorKind, PodNetwork},
    resolver::{DNS_PORT, Ids, ResolvConf, message, random_u64},
};

/// One server as the user named it and as it is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Server {
    /// As written (`10.96.0.10`): dig prints it in `SERVER: addr#port(userarg)`.
    pub userarg: String,
    /// Where messages go.
    pub addr: SocketAddr,
}

/// Which tool's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Dig,
    Host,
    Nslookup,
}

/// The lookup settings of one run.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub servers: Vec<Server>,
    /// Sends to the first server (every later server gets one).
    pub tries: u32,
    /// Wait per send.
    pub timeout: Duration,
    pub tcp: bool,
    pub ndots: usize,
    pub search: Vec<String>,
    pub use_search: bool,
    /// nslookup: a reply without RA moves on to the next server.
    pub check_ra: bool,
    /// A SERVFAIL is final (dig's default `+nofail`) rather than a reason to try the next server.
    pub servfail_stops: bool,
    pub recurse: bool,
    pub edns: bool,
    /// dig's client cookie, the same for the whole run.
    pub cookie: Option<[u8; 8]>,
    /// Print nslookup's `;; Got ... from ...` lines.
    pub server_comments: bool,
    /// Print dig's `;; Truncated, retrying in TCP mode.`.
    pub tc_comment: bool,
    pub traceparent: Option<String>,
    pub ids: Ids,
}

/// A reply and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub message: Message,
    /// Size on the wire.
    pub size: usize,
    pub server: Server,
    pub tcp: bool,
    pub elapsed: Duration,
    pub qname: Name,
    pub rtype: RecordType,
    /// The client cookie sent, to tell `(echoed)` from `(good)`.
    pub cookie: Option<[u8; 8]>,
}

// === impl Settings ===

impl Settings {
    /// The defaults of `tool` in a pod with resolv.conf `resolv_conf`: its nameservers, search
    /// list and ndots; `options timeout:`/`attempts:` override dig's and nslookup's own 5 s × 3
    /// tries (host always tries twice). Queries carry the network's traceparent.
    pub fn new(tool: Tool, cx: &Ctx<'_>) -> Self {
        let conf = &ResolvConf::parse(cx.resolv_conf);
        let tries = match tool {
            Tool::Host => 2,
            Tool::Dig | Tool::Nslookup if conf.attempts_set => conf.attempts.max(1),
            Tool::Dig | Tool::Nslookup => 3,
        };
        let timeout = if conf.timeout_set {
            Duration::from_secs(conf.timeout_secs.max(1))
        } else {
            Duration::from_secs(5)
        };
        Settings {
            servers: conf
                .nameservers
                .iter()
                .map(|a| Server { userarg: a.ip().to_string(), addr: *a })
                .collect(),
            tries,
            timeout,
            tcp: conf.use_vc,
            ndots: conf.ndots,
            search: conf.search.clone(),
            use_search: tool != Tool::Dig,
            check_ra: tool == Tool::Nslookup,
            servfail_stops: tool == Tool::Dig,
            recurse: true,
            edns: true,
            cookie: (tool == Tool::Dig).then(|| random_u64().to_be_bytes()),
            server_comments: tool == Tool::Nslookup,
            tc_comment: tool == Tool::Dig,
            traceparent: cx.net.traceparent(),
            ids: cx.env.ids.clone(),
        }
    }

    /// Applies the command line's server and port: `server` (dig's `@server`, the SERVER
    /// argument of host and nslookup) replaces the resolv.conf servers, `port` (`-p`, `-port=`)
    /// applies to every server.
    pub fn use_server(&mut self, server: Option<&str>, port: Option<u16>) -> Result<(), UnknownServer> {
        if let Some(arg) = server {
            let ip: std::net::IpAddr = arg.parse().map_err(|_| UnknownServer(arg.to_string()))?;
            self.servers = vec![Server { userarg: arg.to_string(), addr: SocketAddr::new(ip, DNS_PORT) }];
        }
        if let Some(port) = port {
            for s in &mut self.servers {
                s.addr.set_port(port);
            }
        }
        Ok(())
    }

    /// The names to try for `name`, in order: fewer than ndots dots (and searching) → each
    /// search suffix then the name as is; otherwise the name as is only.
    pub fn origins(&self, name: &str) -> Vec<String> {
        if name.ends_with('.') {
            return vec![name.to_string()];
        }
        let as_is = format!("{name}.");
        if !self.use_search || name.matches('.').count() >= self.ndots {
            return vec![as_is];
        }
        let mut out: Vec<String> = self.search.iter().map(|d| format!("{name}.{d}.")).collect();
        out.push(as_is);
        out
    }
}

/// A server on the command line that is not an address (the tools resolve no server names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("couldn't get address for '{0}': not found")]
pub(crate) struct UnknownServer(pub String);

/// No server could be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unreached {
    /// The last failure was a refused TCP connection, which BIND reports on its own lines
    /// (`;; Connection to ... failed: connection refused.`).
    pub tcp_refused: bool,
}

/// One query, over the servers: the reply that ends it, or [`Unreached`]. Communication errors
/// and comments go to `out` as they happen. `textname` is the name as the user wrote it (the
/// TCP failure line names it).
pub(crate) async fn query(
    s: &Settings,
    qname: &Name,
    rtype: RecordType,
    textname: &str,
    net: &dyn PodNetwork,
    out: &mut String,
) -> Result<Answer, Unreached> {
    let last = s.servers.len().saturating_sub(1);
    let mut unreached = Unreached { tcp_refused: false };
    'servers: for (index, server) in s.servers.iter().enumerate() {
        let tries = if index == 0 { s.tries } else { 1 };
        for _ in 0..tries {
            let mut tcp = s.tcp;
            let answer = loop {
                let q = message::QuerySpec {
                    name: qname,
                    rtype,
                    id: s.ids.next(),
                    recurse: s.recurse,
                    edns: s.edns,
                    cookie: if s.edns { s.cookie } else { None },
                    traceparent: if s.edns { s.traceparent.as_deref() } else { None },
                };
                let started = Instant::now();
                match message::send(&q, server.addr, tcp, s.timeout, net).await {
                    Ok(reply) if reply.message.metadata.truncation && !tcp => {
                        if s.tc_comment {
                            out.push_str(";; Truncated, retrying in TCP mode.\n");
                        }
                        tcp = true;
                    }
                    Ok(reply) => {
                        break Some(Answer {
                            message: reply.message,
                            size: reply.size,
                            server: server.clone(),
                            tcp,
                            elapsed: started.elapsed(),
                            qname: qname.clone(),
                            rtype,
                            cookie: q.cookie,
                        });
                    }
                    Err(message::SendError::Socket(ErrorKind::Refused)) if tcp => {
                        out.push_str(&format!(
                            ";; Connection to {}#{}({}) for {textname} failed: connection refused.\n;; no servers could be reached\n",
                            server.addr.ip(),
                            server.addr.port(),
                            server.userarg
                        ));
                        unreached.tcp_refused = true;
                        break None;
                    }
                    Err(message::SendError::Socket(kind)) => {
                        unreached.tcp_refused = false;
                        out.push_str(&format!(
                            ";; communications error to {}#{}: {kind}\n",
                            server.addr.ip(),
                            server.addr.port()
                        ));
                        break None;
                    }
                    Err(message::SendError::Mismatch) => {
                        unreached.tcp_refused = false;
                        tokio::time::sleep_until(started + s.timeout).await;
                        out.push_str(&format!(
                            ";; communications error to {}#{}: timed out\n",
                            server.addr.ip(),
                            server.addr.port()
                        ));
                        break None;
                    }
                }
            };
            let Some(answer) = answer else { continue };
            let m = &answer.message.metadata;
            let servfail = m.response_code == ResponseCode::ServFail && !s.servfail_stops;
            let no_ra = s.check_ra && s.recurse && !m.recursion_available;
            if servfail || no_ra {
                let what = if m.response_code == ResponseCode::ServFail {
                    "SERVFAIL reply"
                } else {
                    "recursion not available"
                };
                if index < last {
                    if s.server_comments {
                        out.push_str(&format!(
                            ";; Got {what} from {}, trying next server\n",
                            server.addr.ip()
                        ));
                    }
                    continue 'servers;
                }
                if s.server_comments {
                    out.push_str(&format!(";; Got {what} from {}\n", server.addr.ip()));
                }
            }
            return Ok(answer);
        }
    }
    Err(unreached)
}

/// The outcome of a search: every reply in order (the last one ends the search), and whether
/// the last name reached a server at all.
#[derive(Debug, Default)]
pub(crate) struct Searched {
    pub replies: Vec<Answer>,
    /// Set when the last name reached no server.
    pub unreached: Option<Unreached>,
    /// The last name tried, without its trailing dot.
    pub last_name: String,
}

/// A name on the command line that is not a legal DNS name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a legal name")]
pub(crate) struct IllegalName(pub String);

/// Looks `name` up through the search list (see [`Settings::origins`]): on to the next name only
/// after NXDOMAIN.
pub(crate) async fn search(
    s: &Settings,
    name: &str,
    rtype: RecordType,
    net: &dyn PodNetwork,
    out: &mut String,
) -> Result<Searched, IllegalName> {
    let origins = s.origins(name);
    let mut searched = Searched::default();
    for (i, text) in origins.iter().enumerate() {
        let qname = Name::from_ascii(text).map_err(|_| IllegalName(name.to_string()))?;
        searched.last_name = text.trim_end_matches('.').to_string();
        let answer = match query(s, &qname, rtype, name, net, out).await {
            Ok(a) => a,
            Err(u) => {
                searched.unreached = Some(u);
                return Ok(searched);
            }
        };
        let nxdomain = answer.message.metadata.response_code == ResponseCode::NXDomain;
        searched.replies.push(answer);
        if !nxdomain || i + 1 == origins.len() {
            break;
        }
    }
    Ok(searched)
}
