//! The EC2 model the VPC CNI talks to: a VPC, subnets, instances, ENIs and their addresses, and
//! the Query actions over them.
//!
//! `cloud` plays EC2 for the real `aws` CLI and for the lab's VPC CNI (ipamd). This crate is the
//! state and the actions, with no HTTP: the protocol layer decodes a request into [`Params`],
//! authorises [`Action::iam_action`], calls [`Ec2::handle`] and sends back the XML body or
//! [`xml::error`]. The same state answers IMDS ([`Ec2::instance_metadata`]), so what ipamd reads
//! there always agrees with what EC2 says.
//!
//! # Layout
//!
//! - [`model`]: the serde state ([`Ec2`]) and the internal API (`launch_instance`, look-ups).
//! - [`subnet`]: address accounting: reserved addresses, lowest-free, aligned /28 prefixes.
//! - [`instance_type`]: AWS's ENI and address limits per type, and the max-pods formula.
//! - [`action`]: the Query actions and their IAM names.
//! - [`params`], [`filter`], [`xml`]: request decoding, `Filter.N` matching, response writing.
//! - [`imds`]: what the metadata service shows an instance.
//! - [`error`]: AWS's error codes and texts.

pub mod action;
pub mod error;
pub mod filter;
pub mod imds;
pub mod instance_type;
pub mod model;
pub mod params;
pub mod subnet;
pub mod xml;

pub use action::Action;
pub use error::{Ec2Error, Result};
pub use imds::{InstanceMetadata, InterfaceMetadata};
pub use instance_type::{InstanceTypeInfo, max_pods, max_pods_prefix_delegation};
pub use model::{
    Attachment, Ec2, Ec2Config, IamInstanceProfile, Instance, LaunchSpec, MetadataOptions, NetworkInterface,
    SubnetSpec, Tags,
};
pub use params::Params;
pub use subnet::Subnet;
