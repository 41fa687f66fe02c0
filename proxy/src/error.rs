//! The proxy's errors.

/// What can go wrong. At startup these end the process; once running, a failed sync is logged
/// once per failure streak and retried.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or could not be reached.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// `--kernel` is no address.
    #[error("invalid --kernel address {url:?}")]
    KernelAddress {
        /// The address as a URL.
        url: String,
        /// Why it is none.
        #[source]
        source: tonic::transport::Error,
    },
    /// The node's kernel refused the call or could not be reached.
    #[error("kernel {rpc}: {}", status.message())]
    Kernel {
        /// The RPC (`Restore`, `Save`, `Conntrack.Delete`).
        rpc: &'static str,
        /// The gRPC status (for a refused restore, its message names the bad line).
        #[source]
        status: tonic::Status,
    },
    /// A kernel in this process (the fake) refused the rules.
    #[error(transparent)]
    Refused(#[from] netlab_kernel::netns::RestoreError),
}

// === impl Error ===

impl Error {
    /// A failed call to the kernel's `rpc`.
    pub fn kernel(rpc: &'static str, status: tonic::Status) -> Self {
        Error::Kernel { rpc, status }
    }

    /// The kernel does not serve the call at all (gRPC `UNIMPLEMENTED`): retrying cannot help.
    pub fn is_unimplemented(&self) -> bool {
        matches!(self, Error::Kernel { status, .. } if status.code() == tonic::Code::Unimplemented)
    }
}

/// `Result` with the proxy's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
