//! The AWS VPC CNI's node daemon, ipamd (aws/amazon-vpc-cni-k8s `pkg/ipamd`), as the lab's
//! node-agent runs it in the EKS flavour.
//!
//! Why a crate of its own: ipamd's decisions (how many ENIs and addresses to keep warm, which
//! address a pod gets, when a freed one may be reused) are the answers to the EKS IP-exhaustion
//! questions, so they are kept apart from the node-agent's plumbing and tested on their own
//! against the upstream docs' worked examples; and its clients of IMDS and the EC2 Query API
//! are the real protocol against the lab's `cloud`.
//!
//! # Layout
//! - [`api`]: the seam to EC2 and IMDS ([`api::Ec2Api`], [`api::InstanceInfo`], [`api::ApiError`]).
//! - [`imds`], [`ec2`]: the real clients over HTTP (IMDSv2, SigV4-signed EC2 Query calls with
//!   the node role's credentials from IMDS).
//! - [`daemonset`]: the `aws-node` DaemonSet that carries ipamd's settings.
//! - [`knobs`]: aws-node's environment (WARM_ENI_TARGET, WARM_IP_TARGET, ...), checked.
//! - [`pool`]: the warm-pool arithmetic (when to add addresses, prefixes or an ENI; when to
//!   give them back), pure.
//! - [`datastore`]: ENIs, addresses, who holds which, cooldown, and the `ipam.json` checkpoint.
//! - [`ipamd`]: the daemon: start-up sync, the pool loop, AddNetwork/DelNetwork, introspection.
//! - [`log`]: `ipamd.log` lines as ipamd's zap logger writes them.
//! - [`snat`]: the nat rules that SNAT traffic leaving the VPC to the primary address.

pub mod api;
pub mod daemonset;
pub mod datastore;
pub mod ec2;
pub mod imds;
pub mod ipamd;
pub mod knobs;
pub mod log;
pub mod pool;
pub mod snat;

pub use api::{ApiError, Ec2Api, Eni, InstanceInfo};
pub use ipamd::{
    AddNetworkReply, AddNetworkRequest, DelNetworkReply, DelNetworkRequest, Ipamd, IpamdConfig, IpamdError,
};
pub use knobs::{KnobError, Knobs};
