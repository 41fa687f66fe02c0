//! The pod network seam: what a pod's sockets can do, as one trait. A pod has no real socket;
//! its TCP connections and UDP datagrams go through the node's kernel model (NAT, NetworkPolicy,
//! routes, the wire). Everything that opens a socket from inside a pod — the stub resolver and
//! every toolbox command — does it through [`PodNetwork`], and gets [`Error`] back with the
//! errno a real socket would give, so that each tool prints its own real message for it.
//!
//! This is hickory's `RuntimeProvider` shape: the application gets the trait; the node's
//! dataplane is the real implementation (`dataplane::PodSockets`), and tests give in-memory
//! fakes (scripted peers, a tiny DNS server).

use std::{net::SocketAddr, time::Duration};

/// A byte stream to a peer (a virtual TCP connection through the node's kernel).
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Stream for T {}

/// A connection the kernel established.
pub struct Connected {
    /// The byte stream to the peer.
    pub stream: Box<dyn Stream>,
    /// The socket's local address (pod IP and ephemeral port), for `%{local_port}` and such.
    pub local: SocketAddr,
    /// What the kernel did on the way (DNAT, policy, routing), one line each, for `curl -v`.
    pub hops: Vec<String>,
}

/// What a failed socket call reports: the errno, and what the kernel did before it failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct Error {
    /// The errno.
    pub kind: ErrorKind,
    /// What the kernel did up to the failure, one line each (for `curl -v`).
    pub hops: Vec<String>,
}

/// The errnos a pod's connect or datagram exchange can end with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// `ECONNREFUSED`: a RST (nothing listens) or an ICMP port-unreachable (a REJECT rule).
    #[error("connection refused")]
    Refused,
    /// No answer before the caller's timeout (a DROP, a NetworkPolicy, a black hole): the SYN or
    /// the datagram was lost.
    #[error("timed out")]
    TimedOut,
    /// `EHOSTUNREACH`: no route, or an ICMP host-unreachable.
    #[error("host unreachable")]
    Unreachable,
}

/// A pod's network namespace as its programs use it.
#[async_trait::async_trait]
pub trait PodNetwork: Send + Sync {
    /// Opens a TCP connection from the pod to `dst`; fails with [`ErrorKind::TimedOut`] when no
    /// answer came within `timeout`.
    async fn connect(&self, dst: SocketAddr, timeout: Duration) -> Result<Connected, Error>;

    /// Sends one UDP datagram from the pod to `dst` and returns the one datagram that answers it
    /// (a DNS query and its reply); [`ErrorKind::TimedOut`] when nothing came back within
    /// `timeout`, [`ErrorKind::Refused`] on ICMP port-unreachable.
    async fn exchange(&self, dst: SocketAddr, datagram: Vec<u8>, timeout: Duration)
    -> Result<Vec<u8>, Error>;

    /// [`Self::exchange`] from a chosen source port (`nc -u -p PORT`): datagrams from one
    /// port are one conntrack flow. None: an ephemeral port, as `exchange`.
    async fn exchange_from(
        &self,
        source_port: Option<u16>,
        dst: SocketAddr,
        datagram: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let _ = source_port;
        self.exchange(dst, datagram, timeout).await
    }

    /// The W3C traceparent of the caller's current span: netlab's packets carry it across the
    /// wire, and DNS queries carry it in an EDNS option so that the DNS server joins the trace.
    fn traceparent(&self) -> Option<String> {
        None
    }

    /// The address the pod's packets leave with (its pod IP): DNS queries carry it in an EDNS
    /// option, because in the lab the node-agent's socket, not the pod, sends them.
    fn source_ip(&self) -> Option<std::net::IpAddr> {
        None
    }
}

// === impl Connected ===

impl std::fmt::Debug for Connected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connected")
            .field("local", &self.local)
            .field("hops", &self.hops)
            .finish_non_exhaustive()
    }
}

// === impl Error ===

impl Error {
    /// A failure with `kind` after `hops`.
    pub fn new(kind: ErrorKind, hops: Vec<String>) -> Self {
        Self { kind, hops }
    }
}

impl From<ErrorKind> for Error {
    fn from(kind: ErrorKind) -> Self {
        Self::new(kind, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_what_the_socket_says() {
        let e = Error::new(ErrorKind::Refused, vec!["iptables nat KUBE-SERVICES: REJECT".into()]);
        assert_eq!(e.to_string(), "connection refused");
        assert_eq!(Error::from(ErrorKind::TimedOut).to_string(), "timed out");
        assert_eq!(ErrorKind::Unreachable.to_string(), "host unreachable");
        assert!(Error::from(ErrorKind::TimedOut).hops.is_empty());
    }
}
