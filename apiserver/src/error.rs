//! The apiserver's errors. Each variant is one Kubernetes `StatusReason`, carrying what its
//! message needs; `server.rs` turns them into gRPC statuses in exactly one place. The last
//! variants only end [`crate::run`] (the listener, the gRPC server) and never reach a client.

use std::{net::SocketAddr, sync::Arc};

use netlab_proto::apiserver::v1::Resource;

use crate::{alloc::AllocError, store::StoreError, validation::FieldError};

/// A request failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object (or its namespace) does not exist.
    #[error("{} \"{name}\" not found", resource.group_resource())]
    NotFound {
        /// What was looked for.
        resource: Resource,
        /// Its name.
        name: String,
    },
    /// Create of a name that is taken.
    #[error("{} \"{name}\" already exists", resource.group_resource())]
    AlreadyExists {
        /// What was created.
        resource: Resource,
        /// Its name.
        name: String,
    },
    /// An update or delete whose resourceVersion precondition is stale.
    #[error(
        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
        resource.group_resource()
    )]
    Conflict {
        /// What was written.
        resource: Resource,
        /// Its name.
        name: String,
    },
    /// A Conflict with upstream's own detail (`errors.NewConflict` with a reason): a binding for
    /// a pod that is already bound, a token bound to a pod that was recreated.
    #[error("Operation cannot be fulfilled on {on} \"{name}\": {detail}")]
    Unfulfilled {
        /// The group-resource upstream names: `pods/binding`, `Pod`.
        on: String,
        /// The object's name.
        name: String,
        /// `pod x is already assigned to node "n"`.
        detail: String,
    },
    /// The object fails validation; nothing was stored.
    #[error("{}", crate::validation::invalid_message(kind, name, errors))]
    Invalid {
        /// The object's kind, `Service`.
        kind: &'static str,
        /// The object's name.
        name: String,
        /// Every field that failed.
        errors: Vec<FieldError>,
    },
    /// The request could not be decoded or makes no sense.
    #[error("{0}")]
    BadRequest(String),
    /// A watch asked for history that has been compacted away: relist.
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        /// The resourceVersion asked for.
        requested: u64,
        /// The oldest resourceVersion a watch can still start from.
        oldest: u64,
    },
    /// The server failed.
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// A range to allocate from is full: kube-apiserver's words, with the allocator's.
    #[error("Internal error occurred: failed to allocate a {what}: {source}")]
    Allocation {
        /// `serviceIP` or `nodePort`.
        what: &'static str,
        /// Why the allocator refused.
        #[source]
        source: AllocError,
    },
    /// The store failed.
    #[error("Internal error occurred: {0}")]
    Store(#[from] StoreError),
    /// An object the apiserver built could not be encoded.
    #[error("Internal error occurred: encoding an object: {0}")]
    Encode(#[source] serde_json::Error),
    /// The store commit of the batch this write was in failed (every write of it gets this).
    #[error("Internal error occurred: storage commit failed: {0}")]
    Commit(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// A blocking store task did not finish (it panicked, or the runtime is shutting down).
    #[error("Internal error occurred: {what}: {source}")]
    Task {
        /// What the task was doing.
        what: &'static str,
        /// Why it did not finish.
        #[source]
        source: tokio::task::JoinError,
    },
    /// The store could not be opened (at start): a truncated or corrupted file is refused rather
    /// than served as an empty cluster.
    #[error("cannot start on the store in {dir}: refusing to serve an empty cluster in its place")]
    OpenStore {
        /// `--data-dir`.
        dir: std::path::PathBuf,
        /// What is wrong with the file (it names it).
        #[source]
        source: StoreError,
    },
    /// The API's address could not be bound (at start).
    #[error("listening on {addr}")]
    Listen {
        /// `--listen`.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The reflection service could not be built from the descriptor sets (at start).
    #[error("building the gRPC reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The gRPC server failed while serving.
    #[error("serving the gRPC API")]
    Serve(#[from] tonic::transport::Error),
}

/// `Result` with the apiserver's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

// === impl Error ===

impl Error {
    /// Kubernetes' StatusReason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "NotFound",
            Error::AlreadyExists { .. } => "AlreadyExists",
            Error::Conflict { .. } | Error::Unfulfilled { .. } => "Conflict",
            Error::Invalid { .. } => "Invalid",
            Error::BadRequest(_) => "BadRequest",
            Error::Expired { .. } => "Expired",
            Error::Internal(_)
            | Error::Allocation { .. }
            | Error::Store(_)
            | Error::Commit(_)
            | Error::Encode(_)
            | Error::Task { .. }
            | Error::OpenStore { .. }
            | Error::Listen { .. }
            | Error::Reflection(_)
            | Error::Serve(_) => "InternalError",
        }
    }

    /// The HTTP status the real apiserver answers with: one per StatusReason.
    pub fn http_code(&self) -> i32 {
        match self.reason() {
            "NotFound" => 404,
            "AlreadyExists" | "Conflict" => 409,
            "Invalid" => 422,
            "BadRequest" => 400,
            "Expired" => 410,
            _ => 500,
        }
    }

    /// NotFound for a missing namespace: `namespaces "x" not found`.
    pub fn namespace_not_found(ns: &str) -> Self {
        Error::NotFound { resource: Resource::Namespaces, name: ns.to_string() }
    }
}
