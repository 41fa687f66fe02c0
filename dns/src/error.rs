//! The dns process's errors.

use std::net::SocketAddr;

/// What can stop the dns process or a part of it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or failed a request.
    #[error("apiserver: {0}")]
    Client(#[from] netlab_client::Error),
    /// A socket could not be bound.
    #[error("binding {what} on {addr}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A forwarded query failed.
    #[error("{upstream}: {message}")]
    Upstream {
        /// The upstream asked.
        upstream: SocketAddr,
        /// What happened (CoreDNS-like: `read udp ...: i/o timeout`).
        message: String,
    },
    /// `forward` has no upstream to ask.
    #[error("no upstream")]
    NoUpstream,
    /// Every upstream is down and `failfast_all_unhealthy_upstreams` is set (CoreDNS's
    /// `ErrNoHealthy`).
    #[error("no healthy proxies")]
    NoHealthy,
    /// Too many forwarded queries in flight (`max_concurrent`).
    #[error("max concurrent queries reached")]
    MaxConcurrent,
}

/// `Result` with the dns process's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
