//! The scheduler's errors.

/// Startup failed (once running, the scheduler logs and retries instead of failing).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or could not be reached.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// A flag makes no sense.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// `Result` with the scheduler's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
