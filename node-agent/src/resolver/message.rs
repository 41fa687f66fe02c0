//! DNS messages: the query every stub here sends (the resolver and the toolbox's DNS commands) (RD, EDNS(0) with a 1232-byte UDP
//! payload, optionally a client COOKIE and the traceparent option) and the checks a stub makes
//! on a reply before believing it (id, QR, question), sent over the pod's network: one UDP
//! datagram, or RFC 1035's length-prefixed message on a TCP connection.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query, ResponseCode},
    rr::{Name, RecordType, rdata::opt::EdnsOption},
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{EDNS_TRACEPARENT, EDNS_UDP_PAYLOAD};
use crate::podnet::{ErrorKind, PodNetwork};
use netlab_proto::trace::EDNS_SOURCE_IP;

/// EDNS option code of DNS COOKIE (RFC 7873).
pub(crate) const COOKIE_OPTION: u16 = 10;

/// One query to build.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuerySpec<'a> {
    /// The absolute query name.
    pub name: &'a Name,
    /// The query type.
    pub rtype: RecordType,
    /// The message id.
    pub id: u16,
    /// RD.
    pub recurse: bool,
    /// Whether to add the OPT record.
    pub edns: bool,
    /// An 8-byte client cookie (dig sends one).
    pub cookie: Option<[u8; 8]>,
    /// The W3C traceparent, as option [`EDNS_TRACEPARENT`].
    pub traceparent: Option<&'a str>,
}

/// A reply that answers the query.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    /// The decoded message.
    pub message: Message,
    /// Its size on the wire (dig's `MSG SIZE  rcvd`).
    pub size: usize,
}

/// Why a query got no usable reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendError {
    /// The socket's error.
    Socket(ErrorKind),
    /// A reply came but does not answer this query (id, QR or question differ, or it does not
    /// decode).
    Mismatch,
}

/// The query's wire form; `source` is the sending pod's IP (see [`EDNS_SOURCE_IP`]).
pub(crate) fn build(q: &QuerySpec<'_>, source: Option<std::net::IpAddr>) -> Vec<u8> {
    let mut m = Message::new(q.id, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = q.recurse;
    m.add_query(Query::query(q.name.clone(), q.rtype));
    if q.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_UDP_PAYLOAD);
        edns.set_version(0);
        if let Some(cookie) = q.cookie {
            edns.options_mut().insert(EdnsOption::Unknown(COOKIE_OPTION, cookie.to_vec()));
        }
        if let Some(tp) = q.traceparent {
            edns.options_mut().insert(EdnsOption::Unknown(EDNS_TRACEPARENT, tp.as_bytes().to_vec()));
        }
        // The IP header's source address, which the lab's datagrams (sent from the node-agent's
        // own socket) cannot carry: the cluster DNS scopes DNSChaos by it, as Chaos Mesh's
        // plugin scopes by the packet's source (a real pod→CoreDNS path has no SNAT).
        if let Some(ip) = source {
            let bytes = match ip {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            edns.options_mut().insert(EdnsOption::Unknown(EDNS_SOURCE_IP, bytes));
        }
        m.set_edns(edns);
    }
    // Encoding a message built from a valid Name, one question and an OPT record cannot fail;
    // an empty message would only come back as a mismatch.
    m.to_vec().unwrap_or_default()
}

/// Sends `q` to `server` and checks the reply.
pub(crate) async fn send(
    q: &QuerySpec<'_>,
    server: SocketAddr,
    tcp: bool,
    timeout: Duration,
    net: &dyn PodNetwork,
) -> Result<Reply, SendError> {
    let raw = if tcp {
        exchange_tcp(net, server, build(q, net.source_ip()), timeout).await
    } else {
        net.exchange(server, build(q, net.source_ip()), timeout).await.map_err(|e| e.kind)
    }
    .map_err(SendError::Socket)?;
    let message = Message::from_vec(&raw).map_err(|_| SendError::Mismatch)?;
    let question_matches = message
        .queries
        .first()
        .is_some_and(|mq| mq.query_type() == q.rtype && mq.name().eq_ignore_root(q.name));
    if message.metadata.id != q.id
        || message.metadata.message_type != MessageType::Response
        || !question_matches
    {
        return Err(SendError::Mismatch);
    }
    Ok(Reply { message, size: raw.len() })
}

/// One message over a new TCP connection (RFC 1035 §4.2.2: a two-byte length, then the
/// message), each of connect and exchange within `timeout`; a connection that breaks or stays
/// silent counts as timed out.
async fn exchange_tcp(
    net: &dyn PodNetwork,
    server: SocketAddr,
    message: Vec<u8>,
    timeout: Duration,
) -> Result<Vec<u8>, ErrorKind> {
    let mut c = net.connect(server, timeout).await.map_err(|e| e.kind)?;
    let io = async {
        let len = u16::try_from(message.len()).map_err(|_| std::io::Error::other("message too long"))?;
        c.stream.write_all(&len.to_be_bytes()).await?;
        c.stream.write_all(&message).await?;
        let mut len = [0u8; 2];
        c.stream.read_exact(&mut len).await?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        c.stream.read_exact(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    match tokio::time::timeout(timeout, io).await {
        Ok(Ok(buf)) => Ok(buf),
        _ => Err(ErrorKind::TimedOut),
    }
}

/// An rcode's name as dig and nslookup print it.
pub(crate) fn rcode_name(rcode: ResponseCode) -> &'static str {
    match u16::from(rcode) {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        _ => "RESERVED",
    }
}

/// The EDNS options of a message as (code, bytes), in wire order.
pub(crate) fn edns_options(edns: &Edns) -> Vec<(u16, Vec<u8>)> {
    edns.options()
        .as_ref()
        .iter()
        .map(|(code, option)| (u16::from(*code), Vec::<u8>::try_from(option).unwrap_or_default()))
        .collect()
}
