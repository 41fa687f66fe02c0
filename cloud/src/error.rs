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
    /// The apiserver URL (`--apiserver`) is not usable.
    #[error("connecting to the apiserver")]
    Apiserver(#[source] netlab_client::Error),
    /// The AWS account could not be loaded, set up or kept.
    #[error("the AWS account")]
    Aws(#[source] crate::aws::state::StateError),
    /// The AWS endpoint's HTTP server failed.
    #[error("serving the AWS endpoint")]
    AwsServe(#[source] std::io::Error),
    /// The registry's HTTP server failed.
    #[error("serving the registry")]
    Registry(#[source] std::io::Error),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
