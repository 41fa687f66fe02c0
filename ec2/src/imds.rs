//! What the instance metadata service shows an instance, read from the EC2 model.
//!
//! ipamd trusts IMDS and EC2 to agree: after attaching an ENI or assigning addresses it polls
//! `network/interfaces/macs/<mac>/local-ipv4s` until the change shows, and counts disagreement as
//! `IMDSMetaDataOutOfSync` (facts §1.11). Deriving the view from the same state the Query actions
//! change makes them agree by construction. The HTTP side (tokens, hop limit, 401/404 pages) is
//! the IMDS server's; this module only answers "what is at this path".

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::model::{Ec2, IamInstanceProfile, MetadataOptions};

/// One interface as IMDS shows it under `network/interfaces/macs/<mac>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceMetadata {
    /// `mac`.
    pub mac: String,
    /// `interface-id`.
    pub interface_id: String,
    /// `device-number`.
    pub device_number: u32,
    /// `network-card`.
    pub network_card: u32,
    /// `local-ipv4s`: primary first, then secondaries.
    pub local_ipv4s: Vec<Ipv4Addr>,
    /// `ipv4-prefix`: delegated /28s (404 when there are none).
    pub ipv4_prefixes: Vec<Ipv4Net>,
    /// `local-hostname`.
    pub local_hostname: String,
    /// `subnet-id`.
    pub subnet_id: String,
    /// `subnet-ipv4-cidr-block`.
    pub subnet_ipv4_cidr_block: Ipv4Net,
    /// `vpc-id`.
    pub vpc_id: String,
    /// `vpc-ipv4-cidr-block(s)`.
    pub vpc_ipv4_cidr_blocks: Vec<Ipv4Net>,
    /// `security-group-ids`.
    pub security_group_ids: Vec<String>,
    /// `security-groups` (names).
    pub security_groups: Vec<String>,
    /// `owner-id`.
    pub owner_id: String,
}

/// Everything IMDS answers for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceMetadata {
    /// `instance-id`.
    pub instance_id: String,
    /// `instance-type`.
    pub instance_type: String,
    /// `ami-id`.
    pub ami_id: String,
    /// `placement/availability-zone`.
    pub availability_zone: String,
    /// `placement/availability-zone-id`.
    pub availability_zone_id: String,
    /// `placement/region`.
    pub region: String,
    /// `local-ipv4`: the primary ENI's primary address.
    pub local_ipv4: Ipv4Addr,
    /// `local-hostname` and `hostname`.
    pub local_hostname: String,
    /// `mac`: the primary ENI's MAC.
    pub mac: String,
    /// The owner account (identity document `accountId`).
    pub account_id: String,
    /// The launch time (identity document `pendingTime`).
    pub launch_time: String,
    /// The architecture (identity document).
    pub architecture: String,
    /// Interfaces by device number.
    pub interfaces: Vec<InterfaceMetadata>,
    /// The instance's IMDS options (token requirement, hop limit) for the IMDS server to enforce.
    pub metadata_options: MetadataOptions,
    /// The instance profile, for `iam/info` and `iam/security-credentials/`.
    pub iam_instance_profile: Option<IamInstanceProfile>,
}

// === impl Ec2 ===

impl Ec2 {
    /// The IMDS view of an instance, or `None` if there is no such instance.
    pub fn instance_metadata(&self, instance_id: &str) -> Option<InstanceMetadata> {
        let instance = self.instance(instance_id)?;
        let interfaces = self
            .instance_enis(instance_id)
            .into_iter()
            .filter_map(|eni| {
                let attachment = eni.attachment.as_ref()?;
                let subnet = self.subnet(&eni.subnet_id)?;
                Some(InterfaceMetadata {
                    mac: eni.mac.clone(),
                    interface_id: eni.id.clone(),
                    device_number: attachment.device_index,
                    network_card: attachment.network_card_index,
                    local_ipv4s: eni.private_ips().collect(),
                    ipv4_prefixes: eni.prefixes.clone(),
                    local_hostname: self.private_dns_name(eni.private_ip),
                    subnet_id: eni.subnet_id.clone(),
                    subnet_ipv4_cidr_block: subnet.cidr,
                    vpc_id: eni.vpc_id.clone(),
                    vpc_ipv4_cidr_blocks: vec![self.vpc.cidr],
                    security_group_ids: eni.security_groups.clone(),
                    security_groups: eni
                        .security_groups
                        .iter()
                        .filter_map(|id| self.security_groups.get(id).map(|g| g.name.clone()))
                        .collect(),
                    owner_id: self.account_id.clone(),
                })
            })
            .collect::<Vec<_>>();
        let primary = self.eni(&instance.primary_eni)?;
        Some(InstanceMetadata {
            instance_id: instance.id.clone(),
            instance_type: instance.instance_type.clone(),
            ami_id: instance.image_id.clone(),
            availability_zone: instance.availability_zone.clone(),
            availability_zone_id: self
                .subnet(&instance.subnet_id)
                .map(|s| s.availability_zone_id.clone())
                .unwrap_or_default(),
            region: self.region.clone(),
            local_ipv4: instance.private_ip,
            local_hostname: self.private_dns_name(instance.private_ip),
            mac: primary.mac.clone(),
            account_id: self.account_id.clone(),
            launch_time: instance.launch_time.clone(),
            architecture: instance.type_info().map_or("x86_64", |t| t.architecture).to_string(),
            interfaces,
            metadata_options: instance.metadata_options.clone(),
            iam_instance_profile: instance.iam_instance_profile.clone(),
        })
    }
}

// === impl InstanceMetadata ===

impl InstanceMetadata {
    /// The body IMDS answers for `path` under `/latest/meta-data/`, or `None` for a 404.
    ///
    /// A path ending in `/` (or empty) is a directory and lists its entries one per line,
    /// sub-directories with a trailing `/`, as IMDS does. `iam/` is left to the caller, which
    /// holds the credentials.
    pub fn get(&self, path: &str) -> Option<String> {
        let path = path.trim_start_matches('/');
        let lines = |v: &[String]| v.join("\n");
        Some(match path {
            "" => {
                let mut keys = vec![
                    "ami-id",
                    "hostname",
                    "instance-id",
                    "instance-type",
                    "local-hostname",
                    "local-ipv4",
                    "mac",
                    "network/",
                    "placement/",
                    "security-groups",
                ];
                if self.iam_instance_profile.is_some() {
                    keys.insert(2, "iam/");
                }
                keys.join("\n")
            }
            "ami-id" => self.ami_id.clone(),
            "hostname" | "local-hostname" => self.local_hostname.clone(),
            "instance-id" => self.instance_id.clone(),
            "instance-type" => self.instance_type.clone(),
            "local-ipv4" => self.local_ipv4.to_string(),
            "mac" => self.mac.clone(),
            "security-groups" => lines(&self.interfaces.first()?.security_groups),
            "placement" | "placement/" => "availability-zone\navailability-zone-id\nregion".into(),
            "placement/availability-zone" => self.availability_zone.clone(),
            "placement/availability-zone-id" => self.availability_zone_id.clone(),
            "placement/region" => self.region.clone(),
            "network" | "network/" => "interfaces/".into(),
            "network/interfaces" | "network/interfaces/" => "macs/".into(),
            "network/interfaces/macs" | "network/interfaces/macs/" => {
                let macs: Vec<String> = self.interfaces.iter().map(|i| format!("{}/", i.mac)).collect();
                lines(&macs)
            }
            other => {
                let rest = other.strip_prefix("network/interfaces/macs/")?;
                let (mac, key) = rest.split_once('/').unwrap_or((rest, ""));
                let iface = self.interfaces.iter().find(|i| i.mac == mac)?;
                iface.get(key)?
            }
        })
    }

    /// `/latest/dynamic/instance-identity/document`, as JSON.
    pub fn identity_document(&self) -> String {
        serde_json::json!({
            "accountId": self.account_id,
            "architecture": self.architecture,
            "availabilityZone": self.availability_zone,
            "billingProducts": null,
            "devpayProductCodes": null,
            "marketplaceProductCodes": null,
            "imageId": self.ami_id,
            "instanceId": self.instance_id,
            "instanceType": self.instance_type,
            "kernelId": null,
            "pendingTime": self.launch_time.replace(".000Z", "Z"),
            "privateIp": self.local_ipv4.to_string(),
            "ramdiskId": null,
            "region": self.region,
            "version": "2017-09-30",
        })
        .to_string()
    }
}

// === impl InterfaceMetadata ===

impl InterfaceMetadata {
    /// The body for `key` under this interface's MAC directory (empty key = the listing).
    pub fn get(&self, key: &str) -> Option<String> {
        let join = |v: Vec<String>| v.join("\n");
        Some(match key {
            "" => {
                let mut keys = vec![
                    "device-number",
                    "interface-id",
                    "local-hostname",
                    "local-ipv4s",
                    "mac",
                    "network-card",
                    "owner-id",
                    "security-group-ids",
                    "security-groups",
                    "subnet-id",
                    "subnet-ipv4-cidr-block",
                    "vpc-id",
                    "vpc-ipv4-cidr-block",
                    "vpc-ipv4-cidr-blocks",
                ];
                if !self.ipv4_prefixes.is_empty() {
                    keys.insert(2, "ipv4-prefix");
                }
                keys.join("\n")
            }
            "device-number" => self.device_number.to_string(),
            "interface-id" => self.interface_id.clone(),
            "network-card" => self.network_card.to_string(),
            "local-hostname" => self.local_hostname.clone(),
            "local-ipv4s" => join(self.local_ipv4s.iter().map(ToString::to_string).collect()),
            // A 404 when there are none: ipamd reads that as "no prefixes" (facts §1.11).
            "ipv4-prefix" if !self.ipv4_prefixes.is_empty() => {
                join(self.ipv4_prefixes.iter().map(ToString::to_string).collect())
            }
            "mac" => self.mac.clone(),
            "owner-id" => self.owner_id.clone(),
            "security-group-ids" => join(self.security_group_ids.clone()),
            "security-groups" => join(self.security_groups.clone()),
            "subnet-id" => self.subnet_id.clone(),
            "subnet-ipv4-cidr-block" => self.subnet_ipv4_cidr_block.to_string(),
            "vpc-id" => self.vpc_id.clone(),
            "vpc-ipv4-cidr-block" => self.vpc_ipv4_cidr_blocks.first()?.to_string(),
            "vpc-ipv4-cidr-blocks" => {
                join(self.vpc_ipv4_cidr_blocks.iter().map(ToString::to_string).collect())
            }
            _ => return None,
        })
    }
}
