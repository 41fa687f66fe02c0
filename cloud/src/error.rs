//! Why the cloud could not start or keep serving.

use std::net::SocketAddr;

/// A cloud error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A listening socket could not be bound.
    #[error("binding the {what} listener on {addr}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The apiserver client could not be built from `--apiserver`.
    #[error("the apiserver client")]
    Client(#[source] netlab_client::Error),
    /// The registry's HTTP server failed.
    #[error("serving the registry")]
    Registry(#[source] std::io::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
