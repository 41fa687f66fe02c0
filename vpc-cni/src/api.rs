//! The seam between ipamd and the cloud: what ipamd reads from IMDS about its instance, and the
//! EC2 calls it makes (pkg/awsutils/awsutils.go). [`crate::ec2::Ec2Client`] is the real one over
//! HTTP; tests use fakes.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

/// What ipamd learns from IMDS at start (pkg/awsutils/imds.go; facts §1.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceInfo {
    /// `instance-id`.
    pub instance_id: String,
    /// `instance-type`, e.g. `t3.medium`.
    pub instance_type: String,
    /// `placement/availability-zone`.
    pub availability_zone: String,
    /// `mac`: the primary ENI's MAC.
    pub primary_mac: String,
    /// The primary ENI's `interface-id`.
    pub primary_eni: String,
    /// The primary ENI's first `local-ipv4s` entry: the node's address in the VPC.
    pub primary_ip: Ipv4Addr,
    /// The primary ENI's `subnet-id`.
    pub subnet_id: String,
    /// The primary ENI's `subnet-ipv4-cidr-block`.
    pub subnet_cidr: Ipv4Net,
    /// The primary ENI's `vpc-ipv4-cidr-blocks`.
    pub vpc_cidrs: Vec<Ipv4Net>,
    /// The primary ENI's `security-group-ids`.
    pub security_groups: Vec<String>,
}

/// One ENI as DescribeNetworkInterfaces / CreateNetworkInterface describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Eni {
    /// `networkInterfaceId`, e.g. `eni-0a1b2c3d4e5f60718`.
    pub id: String,
    /// `macAddress`.
    pub mac: String,
    /// `subnetId`.
    pub subnet_id: String,
    /// `description` (`aws-K8S-<instance-id>` for ENIs ipamd made).
    pub description: String,
    /// `attachment.deviceIndex`, when attached.
    pub device_index: Option<u32>,
    /// `attachment.attachmentId`, when attached.
    pub attachment_id: Option<String>,
    /// `attachment.instanceId`, when attached.
    pub instance_id: Option<String>,
    /// `privateIpAddress`: the ENI's primary address (never given to a pod).
    pub primary_ip: Ipv4Addr,
    /// The `privateIpAddressesSet` items with `primary=false`.
    pub secondary_ips: Vec<Ipv4Addr>,
    /// `ipv4PrefixSet` items (prefix delegation).
    pub prefixes: Vec<Ipv4Net>,
    /// `tagSet`, as (key, value).
    pub tags: Vec<(String, String)>,
}

/// An EC2 call that failed: AWS's error code and message, or a transport failure (code empty).
/// Displayed as the Go SDK v2 renders it, which is what ipamd logs (facts §2.3):
/// `operation error EC2: AssignPrivateIpAddresses, https response error StatusCode: 400,
/// RequestID: <id>, api error PrivateIpAddressLimitExceeded: Number of private addresses will
/// exceed limit.`
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ApiError {
    /// The operation, e.g. `AssignPrivateIpAddresses`.
    pub operation: String,
    /// HTTP status (0 when the request never got an answer).
    pub status: u16,
    /// `RequestID` of the answer.
    pub request_id: String,
    /// AWS's error code, e.g. `InsufficientFreeAddressesInSubnet`; empty for transport errors.
    pub code: String,
    /// AWS's message, or the transport error's text.
    pub message: String,
}

impl ApiError {
    fn render(&self) -> String {
        if self.code.is_empty() {
            format!("operation error EC2: {}, {}", self.operation, self.message)
        } else {
            format!(
                "operation error EC2: {}, https response error StatusCode: {}, RequestID: {}, api error {}: {}",
                self.operation, self.status, self.request_id, self.code, self.message
            )
        }
    }

    /// Whether EC2 said the subnet is out of addresses or /28s (ipamd's two codes, §1.8).
    pub fn is_subnet_exhausted(&self) -> bool {
        matches!(self.code.as_str(), "InsufficientFreeAddressesInSubnet" | "InsufficientCidrBlocks")
    }

    /// Whether IAM refused the call (`UnauthorizedOperation`).
    pub fn is_unauthorized(&self) -> bool {
        self.code == "UnauthorizedOperation"
    }
}

/// The EC2 calls ipamd makes, each one Query API action. Addresses are IPv4 only (the lab's VPC
/// has no IPv6).
#[async_trait::async_trait]
pub trait Ec2Api: Send + Sync {
    /// DescribeNetworkInterfaces with `Filter attachment.instance-id = instance_id`: the ENIs
    /// attached to the instance, primary included.
    async fn describe_instance_enis(&self, instance_id: &str) -> Result<Vec<Eni>, ApiError>;

    /// CreateNetworkInterface in `subnet_id` with `groups`, `description` and `tags` (a
    /// TagSpecification for `network-interface`), and either `secondary_ips` secondary
    /// addresses or `prefixes` /28 prefixes (at most one of them non-zero).
    async fn create_network_interface(
        &self,
        subnet_id: &str,
        groups: &[String],
        description: &str,
        tags: &[(String, String)],
        secondary_ips: u32,
        prefixes: u32,
    ) -> Result<Eni, ApiError>;

    /// AttachNetworkInterface at `device_index` (network card 0); returns the attachment id.
    async fn attach_network_interface(
        &self,
        eni_id: &str,
        instance_id: &str,
        device_index: u32,
    ) -> Result<String, ApiError>;

    /// ModifyNetworkInterfaceAttribute `Attachment.AttachmentId`,
    /// `Attachment.DeleteOnTermination=true`.
    async fn set_delete_on_termination(&self, eni_id: &str, attachment_id: &str) -> Result<(), ApiError>;

    /// DetachNetworkInterface of `attachment_id`.
    async fn detach_network_interface(&self, attachment_id: &str) -> Result<(), ApiError>;

    /// DeleteNetworkInterface.
    async fn delete_network_interface(&self, eni_id: &str) -> Result<(), ApiError>;

    /// AssignPrivateIpAddresses with `SecondaryPrivateIpAddressCount=count`; the addresses given.
    async fn assign_private_ips(&self, eni_id: &str, count: u32) -> Result<Vec<Ipv4Addr>, ApiError>;

    /// AssignPrivateIpAddresses with `Ipv4PrefixCount=count`; the prefixes given.
    async fn assign_prefixes(&self, eni_id: &str, count: u32) -> Result<Vec<Ipv4Net>, ApiError>;

    /// UnassignPrivateIpAddresses of `ips`.
    async fn unassign_private_ips(&self, eni_id: &str, ips: &[Ipv4Addr]) -> Result<(), ApiError>;

    /// UnassignPrivateIpAddresses of `prefixes` (`Ipv4Prefix.N`).
    async fn unassign_prefixes(&self, eni_id: &str, prefixes: &[Ipv4Net]) -> Result<(), ApiError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_render_as_the_go_sdk_v2() {
        let e = ApiError {
            operation: "AssignPrivateIpAddresses".into(),
            status: 400,
            request_id: "5d6c1b0e-0000-4000-8000-000000000000".into(),
            code: "PrivateIpAddressLimitExceeded".into(),
            message: "Number of private addresses will exceed limit.".into(),
        };
        assert_eq!(
            e.to_string(),
            "operation error EC2: AssignPrivateIpAddresses, https response error StatusCode: 400, RequestID: \
             5d6c1b0e-0000-4000-8000-000000000000, api error PrivateIpAddressLimitExceeded: Number of private \
             addresses will exceed limit."
        );
        assert!(!e.is_subnet_exhausted());
    }
}
