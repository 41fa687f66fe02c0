//! The UDP side of the server, with a packet cache in front of the plugin chain.
//!
//! # Why a packet cache
//! A Service lookup from a pod is the same question over and over, and the kubernetes plugin's
//! answer to it only changes when the zone does (its TTL is fixed, not counted down). Decoding the
//! query, walking the plugin chain and encoding the reply costs several times what the kernel
//! spends moving the two datagrams, so the server keeps each repeatable reply's bytes, keyed by
//! the query's bytes after the ID (flags, question with its case, EDNS payload size, DO bit and
//! options), and answers a repeat by copying them and writing the query's ID in. This is the
//! packet cache of dnsdist and the PowerDNS Recursor; CoreDNS has none, but the bytes on the wire
//! are the ones the plugin chain would have written, so a client cannot tell.
//!
//! What may be repeated is decided by the handler ([`Repeatable`]): NOERROR and
//! NXDOMAIN answers of the kubernetes plugin until the zone or the Corefile changes (every change
//! bumps [`crate::Shared::generation`], which orphans every entry at once), and `cache` hits until
//! their TTL ticks down by a second. Never: upstream answers, ExternalName chases, replies that
//! `loadbalance` would shuffle, servers with `log` on, and queries carrying a trace context (a pod
//! resolver's lookups are always traced through the chain; a repeated plain `dig` is not).
//! Metrics are counted on a hit exactly as on the full path.
//!
//! # Threads
//! One thread per CPU the process may run on receives datagrams on a blocking socket and answers
//! hits itself; misses go to the tokio runtime, which runs the chain and sends the reply.

use std::{
    collections::HashMap,
    io,
    net::{SocketAddr, UdpSocket},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

use crate::{
    Shared,
    error::{Error, Result},
    handler::{DnsHandler, Repeatable},
};

/// Replies kept at most; the cache starts over when full (a zone change empties it anyway).
const CAPACITY: usize = 65_536;
/// How often a receiving thread looks up from a quiet socket to see whether to stop.
const POLL: Duration = Duration::from_millis(100);
/// Larger than any UDP DNS message.
const MAX_DATAGRAM: usize = 65_535;

struct Entry {
    wire: Box<[u8]>,
    meta: Repeatable,
}

/// Replies by query bytes (without the ID).
#[derive(Default)]
pub struct PacketCache {
    map: Mutex<HashMap<Box<[u8]>, Entry>>,
}

// === impl PacketCache ===

impl PacketCache {
    /// Copies the reply to `query` into `out` with the query's ID, if one is kept and still good
    /// for `generation` at `now`.
    pub fn answer(
        &self,
        query: &[u8],
        generation: u64,
        now: Instant,
        out: &mut Vec<u8>,
    ) -> Option<Repeatable> {
        if query.len() < 12 {
            return None;
        }
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(&query[2..])?;
        if entry.meta.generation != generation || entry.meta.until.is_some_and(|t| t <= now) {
            return None;
        }
        out.clear();
        out.extend_from_slice(&entry.wire);
        out[..2].copy_from_slice(&query[..2]);
        Some(entry.meta)
    }

    /// Keeps `reply` as the answer to `query`.
    pub fn insert(&self, query: &[u8], reply: &[u8], meta: Repeatable) {
        if query.len() < 12 || reply.len() < 12 {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(query[2..].into(), Entry { wire: reply.into(), meta });
    }

    /// Replies kept.
    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Serves UDP on `socket` (bound to `addr`) until `shutdown`.
pub fn serve(
    shared: Arc<Shared>,
    socket: UdpSocket,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<()> {
    let bind_err = |source| Error::Bind { what: "dns/udp", addr, source };
    socket.set_read_timeout(Some(POLL)).map_err(bind_err)?;
    let socket = Arc::new(socket);
    let handler = Arc::new(DnsHandler::new(shared.clone()));
    let cache = Arc::new(PacketCache::default());
    let runtime = tokio::runtime::Handle::current();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    for i in 0..threads {
        let receiver = Receiver {
            shared: shared.clone(),
            socket: socket.clone(),
            handler: handler.clone(),
            cache: cache.clone(),
            runtime: runtime.clone(),
            shutdown: shutdown.clone(),
        };
        std::thread::Builder::new()
            .name(format!("dns-udp-{i}"))
            .spawn(move || receiver.run())
            .map_err(|source| Error::Bind { what: "dns/udp thread", addr, source })?;
    }
    Ok(())
}

struct Receiver {
    shared: Arc<Shared>,
    socket: Arc<UdpSocket>,
    handler: Arc<DnsHandler>,
    cache: Arc<PacketCache>,
    runtime: tokio::runtime::Handle,
    shutdown: CancellationToken,
}

impl Receiver {
    fn run(self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut out = Vec::with_capacity(512);
        while !self.shutdown.is_cancelled() {
            let (n, src) = match self.socket.recv_from(&mut buf) {
                Ok(got) => got,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%error, "error receiving message on udp_socket");
                    continue;
                }
            };
            // As hickory: nothing can be sent back to port 0 or an unspecified address.
            if src.port() == 0 || src.ip().is_unspecified() {
                continue;
            }
            let started = Instant::now();
            let query = &buf[..n];
            if let Some(meta) = self.cache.answer(query, self.shared.generation(), started, &mut out) {
                self.send(&out, src);
                let metrics = &self.shared.metrics;
                metrics.packet_cache_hit();
                metrics.request(meta.block, false, src.is_ipv6(), meta.qtype);
                if meta.plugin == crate::metrics::Plugin::Cache {
                    metrics.cache_hit(meta.block, meta.success);
                }
                metrics.response(meta.block, meta.qtype, meta.rcode, meta.plugin, started.elapsed());
                continue;
            }
            let query = query.to_vec();
            let (handler, cache, socket) = (self.handler.clone(), self.cache.clone(), self.socket.clone());
            self.runtime.spawn(async move {
                let Some((reply, meta)) = handler.answer_udp(query.clone(), src).await else {
                    return;
                };
                send(&socket, &reply, src);
                if let Some(meta) = meta {
                    cache.insert(&query, &reply, meta);
                }
            });
        }
    }

    fn send(&self, reply: &[u8], to: SocketAddr) {
        send(&self.socket, reply, to);
    }
}

fn send(socket: &UdpSocket, reply: &[u8], to: SocketAddr) {
    if let Err(error) = socket.send_to(reply, to) {
        tracing::debug!(%error, %to, "error sending a UDP reply");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Plugin;

    fn meta(generation: u64, until: Option<Instant>) -> Repeatable {
        Repeatable {
            generation,
            until,
            block: 0,
            qtype: 1,
            rcode: 0,
            plugin: Plugin::Kubernetes,
            success: true,
        }
    }

    fn query(id: u16, name: &[u8]) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(name);
        q
    }

    #[test]
    fn a_repeat_gets_the_reply_with_its_own_id() {
        let cache = PacketCache::default();
        let now = Instant::now();
        let reply = [&[0xAB, 0xCD][..], &[0x85, 0, 0, 1, 0, 1, 0, 0, 0, 0], b"answer"].concat();
        cache.insert(&query(0xABCD, b"\x03web"), &reply, meta(7, None));
        let mut out = vec![];
        assert!(cache.answer(&query(0x1234, b"\x03web"), 7, now, &mut out).is_some());
        assert_eq!(out[..2], [0x12, 0x34]);
        assert_eq!(out[2..], reply[2..]);
        // Another name, or the same name in another case, is another query.
        assert!(cache.answer(&query(0x1234, b"\x03WEB"), 7, now, &mut out).is_none());
        assert!(cache.answer(&query(0x1234, b"\x03api"), 7, now, &mut out).is_none());
        assert!(cache.answer(&[0; 5], 7, now, &mut out).is_none());
    }

    #[test]
    fn a_change_or_the_deadline_ends_a_reply() {
        let cache = PacketCache::default();
        let now = Instant::now();
        let reply = [0u8; 12];
        cache.insert(&query(1, b"\x01a"), &reply, meta(7, None));
        cache.insert(&query(1, b"\x01b"), &reply, meta(7, Some(now + Duration::from_millis(300))));
        let mut out = vec![];
        assert!(cache.answer(&query(2, b"\x01a"), 8, now, &mut out).is_none(), "zone changed");
        assert!(cache.answer(&query(2, b"\x01b"), 7, now, &mut out).is_some());
        assert!(
            cache.answer(&query(2, b"\x01b"), 7, now + Duration::from_millis(300), &mut out).is_none(),
            "TTL ticked"
        );
    }

    #[test]
    fn full_cache_starts_over() {
        let cache = PacketCache::default();
        for i in 0..CAPACITY as u32 + 1 {
            cache.insert(&query(1, &i.to_be_bytes()), &[0u8; 12], meta(0, None));
        }
        assert_eq!(cache.len(), 1);
    }
}
