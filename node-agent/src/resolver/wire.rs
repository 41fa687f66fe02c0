//! DNS messages on the wire: the query every tool here sends (RD, EDNS(0) with a 1232-byte UDP
//! payload, optionally a client COOKIE and the traceparent option) and the checks a stub makes
//! on a reply before believing it (id, QR, question).

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Edns, Message, MessageType, OpCode, Query},
    rr::{Name, RecordType, rdata::opt::EdnsOption},
};

use super::{EDNS_UDP_PAYLOAD, TRACEPARENT_OPTION, Transport, TransportError};

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
    /// The W3C traceparent, as option [`TRACEPARENT_OPTION`].
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
    /// The transport's error.
    Transport(TransportError),
    /// A reply came but does not answer this query (id, QR or question differ, or it does not
    /// decode).
    Mismatch,
}

/// The query's wire form.
pub(crate) fn build(q: &QuerySpec<'_>) -> Vec<u8> {
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
            edns.options_mut().insert(EdnsOption::Unknown(TRACEPARENT_OPTION, tp.as_bytes().to_vec()));
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
    transport: &dyn Transport,
) -> Result<Reply, SendError> {
    let raw = transport.exchange(server, build(q), tcp, timeout).await.map_err(SendError::Transport)?;
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

/// The EDNS options of a message as (code, bytes), in wire order.
pub(crate) fn edns_options(edns: &Edns) -> Vec<(u16, Vec<u8>)> {
    edns.options()
        .as_ref()
        .iter()
        .map(|(code, option)| (u16::from(*code), Vec::<u8>::try_from(option).unwrap_or_default()))
        .collect()
}
