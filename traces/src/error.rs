//! The trace store's errors: only starting and serving can fail; a bad export or query is
//! answered on its protocol, not raised.

use std::net::SocketAddr;

/// What stops the trace store.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listener could not be bound.
    #[error("binding the {what} listener on {addr}")]
    Bind {
        /// `OTLP` or `query`.
        what: &'static str,
        /// Where.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A server stopped with an error.
    #[error("serving {what}")]
    Serve {
        /// `OTLP` or `query`.
        what: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// `Result` with the trace store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
