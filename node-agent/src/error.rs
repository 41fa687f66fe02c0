//! The node-agent's errors.

/// Startup or a node-level operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or could not be reached.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// A flag makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The image credential provider flags or config are unusable (the kubelet does not start).
    #[error(transparent)]
    CredentialProviders(#[from] crate::credentials::ConfigError),
    /// Node state on disk could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// The node's address could not be found from the route to the apiserver.
    #[error("detecting the node IP")]
    NodeIp(#[source] netlab_config::host::RouteError),
}

/// `Result` with the node-agent's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl Error ===

impl Error {
    /// An I/O error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io { what: what.into(), source }
    }
}
