//! The proxy's errors.

/// What can go wrong. At startup these end the process; once running, a failed sync is logged
/// once per failure streak and retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or could not be reached.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// A flag makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The node's kernel refused the rules or could not be reached.
    #[error("kernel {rpc}: {message}")]
    Kernel {
        /// The RPC (`Restore`, `Save`, `Conntrack.Delete`).
        rpc: &'static str,
        /// The kernel's message (for a refused restore, it names the bad line).
        message: String,
        /// The gRPC status.
        #[source]
        status: Option<tonic::Status>,
    },
}

// === impl Error ===

impl Error {
    /// A failed call to the kernel's `rpc`.
    pub fn kernel(rpc: &'static str, status: tonic::Status) -> Self {
        Error::Kernel { rpc, message: status.message().to_string(), status: Some(status) }
    }

    /// The kernel does not serve the call at all (gRPC `UNIMPLEMENTED`): retrying cannot help.
    pub fn is_unimplemented(&self) -> bool {
        matches!(self, Error::Kernel { status: Some(s), .. } if s.code() == tonic::Code::Unimplemented)
    }
}

/// `Result` with the proxy's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
