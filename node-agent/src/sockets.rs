//! The node's table of virtual listening sockets. Pod IPs exist on no Linux interface, so a pod's
//! app does not bind a real socket: it listens here, on `(pod IP, port, protocol)`, and accepts
//! connections as in-memory duplex byte streams. The kubelet's probes connect here, and the node's
//! kernel model delivers routed connections here (after NAT and policy), so every byte a pod
//! receives enters through this one table.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU16, AtomicU64, Ordering},
    },
};

use tokio::{io::DuplexStream, sync::mpsc};

/// Bytes buffered in each direction of a connection.
pub const STREAM_BUFFER: usize = 64 * 1024;
/// Pending connections a listener queues before refusing (`somaxconn`).
pub const BACKLOG: usize = 4096;
/// The Linux ephemeral port range (`ip_local_port_range`).
pub const EPHEMERAL_PORTS: std::ops::RangeInclusive<u16> = 32768..=60999;

/// A transport protocol, as a Service port or container port names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

/// Why a socket operation failed, with the errno text a real socket gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocketError {
    /// bind: the address is taken.
    #[error("listen tcp {0}: bind: address already in use")]
    AddrInUse(SocketAddr),
    /// connect: nothing listens there.
    #[error("dial tcp {0}: connect: connection refused")]
    Refused(SocketAddr),
}

/// An accepted connection.
#[derive(Debug)]
pub struct Connection {
    /// The server's end of the byte stream.
    pub stream: DuplexStream,
    /// Who connected (after any NAT, as the server sees it).
    pub peer: SocketAddr,
    /// The address connected to.
    pub local: SocketAddr,
}

type Key = (IpAddr, u16, Protocol);

/// The node's socket table. Cheap to clone; clones share the table.
#[derive(Debug, Clone, Default)]
pub struct SocketTable {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    listeners: Mutex<HashMap<Key, (u64, mpsc::Sender<Connection>)>>,
    next_port: AtomicU16,
    next_id: AtomicU64,
}

/// A listening socket; dropping it closes it (later connects are refused).
#[derive(Debug)]
pub struct Listener {
    key: Key,
    id: u64,
    rx: mpsc::Receiver<Connection>,
    table: SocketTable,
}

// === impl SocketTable ===

impl SocketTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Listens on `addr` (an IP of this node's pods or the node itself; `0.0.0.0` for any).
    pub fn listen(&self, addr: SocketAddr, protocol: Protocol) -> Result<Listener, SocketError> {
        let key = (addr.ip(), addr.port(), protocol);
        let mut map = self.lock();
        if map.get(&key).is_some_and(|(_, tx)| !tx.is_closed()) {
            return Err(SocketError::AddrInUse(addr));
        }
        let (tx, rx) = mpsc::channel(BACKLOG);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        map.insert(key, (id, tx));
        Ok(Listener { key, id, rx, table: self.clone() })
    }

    /// Connects from `from` to `to` over TCP: hands the listener its end of a new duplex stream
    /// and returns ours, or `Refused` if nothing listens (or its backlog is full).
    pub fn connect(&self, from: SocketAddr, to: SocketAddr) -> Result<DuplexStream, SocketError> {
        self.open(from, to, Protocol::Tcp)
    }

    /// Delivers to `to` over `protocol`. For UDP the stream carries one exchange: the client
    /// writes one datagram and shuts its side, the server reads it to EOF and writes its reply
    /// (or nothing), so a UDP server sees what a `recvfrom`/`sendto` pair sees.
    pub fn open(
        &self,
        from: SocketAddr,
        to: SocketAddr,
        protocol: Protocol,
    ) -> Result<DuplexStream, SocketError> {
        let tx = {
            let map = self.lock();
            map.get(&(to.ip(), to.port(), protocol))
                .or_else(|| {
                    let any = if to.is_ipv4() { IpAddr::from([0, 0, 0, 0]) } else { IpAddr::from([0u16; 8]) };
                    map.get(&(any, to.port(), protocol))
                })
                .map(|(_, tx)| tx.clone())
        };
        let tx = tx.ok_or(SocketError::Refused(to))?;
        let (client, server) = tokio::io::duplex(STREAM_BUFFER);
        tx.try_send(Connection { stream: server, peer: from, local: to })
            .map_err(|_| SocketError::Refused(to))?;
        Ok(client)
    }

    /// An ephemeral source port for a connection this node originates.
    pub fn ephemeral_port(&self) -> u16 {
        let span = EPHEMERAL_PORTS.end() - EPHEMERAL_PORTS.start() + 1;
        let n = self.inner.next_port.fetch_add(1, Ordering::Relaxed) % span;
        EPHEMERAL_PORTS.start() + n
    }

    /// Every open listener, sorted (for `ss -lnt`-like inspection).
    pub fn listeners(&self) -> Vec<(SocketAddr, Protocol)> {
        let mut v: Vec<_> = self
            .lock()
            .iter()
            .filter(|(_, (_, tx))| !tx.is_closed())
            .map(|((ip, port, proto), _)| (SocketAddr::new(*ip, *port), *proto))
            .collect();
        v.sort();
        v
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, (u64, mpsc::Sender<Connection>)>> {
        // Entries are inserted and removed whole; a poisoned map is still consistent.
        self.inner.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// === impl Listener ===

impl Listener {
    /// The next connection; None once the table is gone.
    pub async fn accept(&mut self) -> Option<Connection> {
        self.rx.recv().await
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        SocketAddr::new(self.key.0, self.key.1)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let mut map = self.table.lock();
        // Only remove our own entry: a newer listener may have taken the address.
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn listen_connect_refuse() {
        let t = SocketTable::new();
        let addr: SocketAddr = "10.244.1.2:80".parse().unwrap();
        let from: SocketAddr = "10.244.1.3:40000".parse().unwrap();
        assert_eq!(t.connect(from, addr).unwrap_err(), SocketError::Refused(addr));
        let mut l = t.listen(addr, Protocol::Tcp).unwrap();
        assert_eq!(t.listen(addr, Protocol::Tcp).unwrap_err(), SocketError::AddrInUse(addr));
        let mut c = t.connect(from, addr).unwrap();
        let mut conn = l.accept().await.unwrap();
        assert_eq!(conn.peer, from);
        c.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        conn.stream.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert_eq!(t.listeners(), [(addr, Protocol::Tcp)]);
        drop(l);
        assert_eq!(t.connect(from, addr).unwrap_err(), SocketError::Refused(addr));
        // The address is free again.
        let _l2 = t.listen(addr, Protocol::Tcp).unwrap();
    }
}
