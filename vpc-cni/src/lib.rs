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

pub mod api;
pub mod ec2;
pub mod imds;

pub use api::{ApiError, Ec2Api, Eni, InstanceInfo};
