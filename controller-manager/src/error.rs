//! The controller-manager's errors.

use ipnet::Ipv4Net;

use crate::cidrset::CidrSetError;

/// A reconcile or startup failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The apiserver refused or could not be reached.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// `--cluster-cidr` cannot be cut into blocks of `--node-cidr-mask-size`.
    #[error("--cluster-cidr {cluster_cidr} / --node-cidr-mask-size {node_cidr_mask_size}")]
    NodeCidrs {
        /// `--cluster-cidr`.
        cluster_cidr: Ipv4Net,
        /// `--node-cidr-mask-size`.
        node_cidr_mask_size: u8,
        /// What the allocator said.
        #[source]
        source: CidrSetError,
    },
}

/// `Result` with the controller-manager's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An apiserver answer in which NotFound is no error (the object is gone, which was the point,
/// or nothing is left to do to it): its value, None if the object is gone.
pub fn not_found_ok<T>(r: netlab_client::Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}
