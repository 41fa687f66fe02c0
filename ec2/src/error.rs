//! EC2's errors as the API returns them: a code and a message, worded as AWS words them.
//!
//! Users of the lab know these strings from real clusters (ipamd's logs, `aws ec2 ...`), so each
//! constructor says where its text was seen. "(composed)" marks a text built from AWS's pattern
//! for a case where no captured instance was found; "(moto)" marks getmoto/moto's wording
//! (moto/ec2/exceptions.py, 0af643a5d) where no capture from AWS itself was found.

use std::net::Ipv4Addr;

/// The result of an EC2 action or model operation.
pub type Result<T, E = Ec2Error> = std::result::Result<T, E>;

/// An EC2 client error: the `<Code>` and `<Message>` of the `<Response><Errors><Error>` body.
///
/// Every EC2 error the model produces is a client error (HTTP 400); the protocol layer renders it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Ec2Error {
    /// AWS's error code, e.g. `InvalidNetworkInterfaceID.NotFound`.
    pub code: &'static str,
    /// AWS's message text.
    pub message: String,
}

// === impl Ec2Error ===

impl Ec2Error {
    /// An error with the given code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// The HTTP status the protocol layer should answer with (every model error is a client error).
    pub fn http_status(&self) -> u16 {
        400
    }

    /// `MissingParameter`. Text as in aws/aws-sdk-java-v2#5437 ("The request must contain the
    /// parameter groupId") and moto's `MissingParameterError`.
    pub fn missing_parameter(name: &str) -> Self {
        Self::new("MissingParameter", format!("The request must contain the parameter {name}"))
    }

    /// `InvalidParameterValue` for a value that does not parse. (moto `InvalidParameterValueError`)
    pub fn invalid_value(value: &str, parameter: &str) -> Self {
        Self::new("InvalidParameterValue", format!("Value ({value}) for parameter {parameter} is invalid."))
    }

    /// `InvalidParameterCombination` with a free text. (composed)
    pub fn invalid_combination(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterCombination", message)
    }

    /// An unknown filter name. AWS answers `InvalidParameterValue` (not moto's `InvalidFilter`):
    /// "The filter 'public-ip' is invalid" (boto/boto3#1299, aws/aws-cli#7225).
    pub fn invalid_filter(name: &str) -> Self {
        Self::new("InvalidParameterValue", format!("The filter '{name}' is invalid"))
    }

    /// `InvalidNetworkInterfaceID.NotFound`: "The networkInterface ID 'eni-x' does not exist"
    /// (moto; the code is the one ipamd matches in pkg/awsutils/awsutils.go).
    pub fn eni_not_found(id: &str) -> Self {
        Self::new(
            "InvalidNetworkInterfaceID.NotFound",
            format!("The networkInterface ID '{id}' does not exist"),
        )
    }

    /// `InvalidNetworkInterfaceId.Malformed` (note AWS's `Id` casing): `Invalid id: "to-set"
    /// (expecting "eni-...")` (F5Networks/f5-cloud-failover-extension#150).
    pub fn eni_malformed(id: &str) -> Self {
        Self::new(
            "InvalidNetworkInterfaceId.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"eni-...\")"),
        )
    }

    /// `InvalidInstanceID.NotFound`: "The instance ID 'i-x' does not exist", or "The instance IDs
    /// 'a, b' do not exist" for several (moto; matches captures such as hashicorp/terraform#17426).
    pub fn instance_not_found(ids: &[&str]) -> Self {
        let message = match ids {
            [one] => format!("The instance ID '{one}' does not exist"),
            many => format!("The instance IDs '{}' do not exist", many.join(", ")),
        };
        Self::new("InvalidInstanceID.NotFound", message)
    }

    /// `InvalidInstanceID.Malformed`: `Invalid id: "ma1"` (ClusterLabs/cluster-glue#29,
    /// aws-quickstart/quickstart-confluent-kafka#50).
    pub fn instance_malformed(id: &str) -> Self {
        Self::new("InvalidInstanceID.Malformed", format!("Invalid id: \"{id}\""))
    }

    /// `InvalidSubnetID.NotFound`: "The subnet ID 'example' does not exist"
    /// (openshift/openshift-ansible#1053, boto/boto3#2398).
    pub fn subnet_not_found(id: &str) -> Self {
        Self::new("InvalidSubnetID.NotFound", format!("The subnet ID '{id}' does not exist"))
    }

    /// `InvalidVpcID.NotFound`: "VpcID vpc-x does not exist." (moto)
    pub fn vpc_not_found(id: &str) -> Self {
        Self::new("InvalidVpcID.NotFound", format!("VpcID {id} does not exist."))
    }

    /// `InvalidAttachmentID.NotFound`. (moto: "The network interface attachment ID '...' does not
    /// exist"; the code is AWS's, seen in hashicorp/terraform-provider-aws#146.)
    pub fn attachment_not_found(id: &str) -> Self {
        Self::new(
            "InvalidAttachmentID.NotFound",
            format!("The network interface attachment ID '{id}' does not exist"),
        )
    }

    /// `InvalidInstanceType`: "The following supplied instance types do not exist: [i8ge.xlarge]"
    /// (scylladb/scylla-cluster-tests#12419).
    pub fn instance_types_not_found(types: &[&str]) -> Self {
        Self::new(
            "InvalidInstanceType",
            format!("The following supplied instance types do not exist: [{}]", types.join(", ")),
        )
    }

    /// `InsufficientFreeAddressesInSubnet`: "The specified subnet does not have enough free
    /// addresses to satisfy the request." (aws/amazon-vpc-cni-k8s PR #1773, #1739).
    pub fn insufficient_addresses() -> Self {
        Self::new(
            "InsufficientFreeAddressesInSubnet",
            "The specified subnet does not have enough free addresses to satisfy the request.",
        )
    }

    /// `InsufficientCidrBlocks`: no free aligned /28 is left for a prefix. ipamd treats the code
    /// as "subnet exhausted" (pkg/ipamd/ipamd.go); the text is (composed).
    pub fn insufficient_cidr_blocks() -> Self {
        Self::new(
            "InsufficientCidrBlocks",
            "The specified subnet does not have enough free cidr blocks to satisfy the request.",
        )
    }

    /// `PrivateIpAddressLimitExceeded`: "Number of private addresses will exceed limit."
    /// (aws/amazon-vpc-cni-k8s#989, cilium/cilium#36428).
    pub fn private_ip_limit() -> Self {
        Self::new("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.")
    }

    /// `AttachmentLimitExceeded`: "Interface count 4 exceeds the limit for t3.medium"
    /// (cilium/cilium#15877, aws/amazon-vpc-cni-k8s#36).
    pub fn attachment_limit(count: usize, instance_type: &str) -> Self {
        Self::new(
            "AttachmentLimitExceeded",
            format!("Interface count {count} exceeds the limit for {instance_type}"),
        )
    }

    /// A device index already taken: `InvalidParameterValue: Instance 'i-x' already has an
    /// interface attached at device index '1'.` (lstoll/k8s-vpcnet#71,
    /// hashicorp/terraform-provider-aws#906, cilium/cilium#42512).
    pub fn device_index_in_use(instance_id: &str, index: u32) -> Self {
        Self::new(
            "InvalidParameterValue",
            format!("Instance '{instance_id}' already has an interface attached at device index '{index}'."),
        )
    }

    /// Attaching an ENI that is already attached: `InvalidNetworkInterface.InUse: Interface:
    /// [eni-x] in use.` (pulumi/pulumi-aws#2394, hashicorp/terraform-provider-aws#27513).
    pub fn eni_attached(id: &str) -> Self {
        Self::new("InvalidNetworkInterface.InUse", format!("Interface: [{id}] in use."))
    }

    /// Deleting an attached ENI: `InvalidParameterValue: Network interface 'eni-x' is currently
    /// in use.` (gruntwork-io/cloud-nuke#431, #1132).
    pub fn eni_in_use(id: &str) -> Self {
        Self::new("InvalidParameterValue", format!("Network interface '{id}' is currently in use."))
    }

    /// Detaching the primary ENI: `OperationNotPermitted: The network interface at device index 0
    /// and networkCard index 0 cannot be detached.` (redhat-performance/cloud-governance#952).
    pub fn primary_detach() -> Self {
        Self::new(
            "OperationNotPermitted",
            "The network interface at device index 0 and networkCard index 0 cannot be detached.",
        )
    }

    /// An address asked for that another ENI holds. "The specified address is already in use."
    /// is what ansible/ansible-modules-extras#2084 shows; the code is (composed).
    pub fn address_in_use() -> Self {
        Self::new("InvalidIPAddress.InUse", "The specified address is already in use.")
    }

    /// An address outside the subnet or reserved by AWS: `InvalidParameterValue: invalid value
    /// for parameter address: X` (hashicorp/terraform-provider-aws#23114).
    pub fn invalid_address(address: &str) -> Self {
        Self::new("InvalidParameterValue", format!("invalid value for parameter address: {address}"))
    }

    /// Unassigning an address or prefix the ENI does not hold. (composed)
    pub fn not_assigned(eni_id: &str, addresses: &[Ipv4Addr]) -> Self {
        let list: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        Self::new(
            "InvalidParameterValue",
            format!(
                "Some of the specified addresses are not assigned to interface {eni_id}: [{}]",
                list.join(", ")
            ),
        )
    }

    /// Unassigning the primary address. (composed)
    pub fn primary_unassign(address: Ipv4Addr) -> Self {
        Self::new(
            "InvalidParameterValue",
            format!("The primary private IP address {address} cannot be unassigned."),
        )
    }

    /// A resource id CreateTags/DeleteTags does not know: "The ID 'x' is not valid" (moto
    /// `InvalidID`; AWS text seen in gruntwork-io/terratest#204).
    pub fn invalid_id(id: &str) -> Self {
        Self::new("InvalidID", format!("The ID '{id}' is not valid"))
    }

    /// An action the model does not implement. (composed, AWS's `InvalidAction` code)
    pub fn invalid_action(action: &str) -> Self {
        Self::new("InvalidAction", format!("The action {action} is not valid for this web service."))
    }
}
