//! The EC2 Query actions the VPC CNI and `aws ec2` call, over the [`Ec2`] model.
//!
//! Each action takes decoded form parameters and returns the XML body EC2 would send, or an
//! [`Ec2Error`] with AWS's code and text. The protocol layer decodes the request, checks SigV4,
//! authorises [`Action::iam_action`] and renders errors with [`crate::xml::error`].
//! Element names follow botocore's ec2 service model so the CLI prints real output.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::error::{Ec2Error, Result};
use crate::filter::{self, Filter, matches, tag_fields};
use crate::instance_type::{self, INSTANCE_TYPES, InstanceTypeInfo};
use crate::model::{Ec2, Instance, NetworkInterface};
use crate::params::Params;
use crate::subnet::Subnet;
use crate::xml::{Xml, response};

#[cfg(test)]
mod tests;

/// The actions this model answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// DescribeInstances.
    DescribeInstances,
    /// DescribeInstanceTypes.
    DescribeInstanceTypes,
    /// DescribeSubnets.
    DescribeSubnets,
    /// DescribeVpcs.
    DescribeVpcs,
    /// DescribeNetworkInterfaces.
    DescribeNetworkInterfaces,
    /// CreateNetworkInterface.
    CreateNetworkInterface,
    /// AttachNetworkInterface.
    AttachNetworkInterface,
    /// DetachNetworkInterface.
    DetachNetworkInterface,
    /// DeleteNetworkInterface.
    DeleteNetworkInterface,
    /// AssignPrivateIpAddresses.
    AssignPrivateIpAddresses,
    /// UnassignPrivateIpAddresses.
    UnassignPrivateIpAddresses,
    /// ModifyNetworkInterfaceAttribute.
    ModifyNetworkInterfaceAttribute,
    /// CreateTags.
    CreateTags,
    /// DeleteTags.
    DeleteTags,
    /// ModifyInstanceMetadataOptions (IMDS: tokens required or optional, the PUT hop limit).
    ModifyInstanceMetadataOptions,
}

// === impl Action ===

impl Action {
    /// Every action.
    pub const ALL: [Action; 15] = [
        Action::DescribeInstances,
        Action::DescribeInstanceTypes,
        Action::DescribeSubnets,
        Action::DescribeVpcs,
        Action::DescribeNetworkInterfaces,
        Action::CreateNetworkInterface,
        Action::AttachNetworkInterface,
        Action::DetachNetworkInterface,
        Action::DeleteNetworkInterface,
        Action::AssignPrivateIpAddresses,
        Action::UnassignPrivateIpAddresses,
        Action::ModifyNetworkInterfaceAttribute,
        Action::CreateTags,
        Action::DeleteTags,
        Action::ModifyInstanceMetadataOptions,
    ];

    /// The `Action=` name.
    pub fn name(self) -> &'static str {
        match self {
            Action::DescribeInstances => "DescribeInstances",
            Action::DescribeInstanceTypes => "DescribeInstanceTypes",
            Action::DescribeSubnets => "DescribeSubnets",
            Action::DescribeVpcs => "DescribeVpcs",
            Action::DescribeNetworkInterfaces => "DescribeNetworkInterfaces",
            Action::CreateNetworkInterface => "CreateNetworkInterface",
            Action::AttachNetworkInterface => "AttachNetworkInterface",
            Action::DetachNetworkInterface => "DetachNetworkInterface",
            Action::DeleteNetworkInterface => "DeleteNetworkInterface",
            Action::AssignPrivateIpAddresses => "AssignPrivateIpAddresses",
            Action::UnassignPrivateIpAddresses => "UnassignPrivateIpAddresses",
            Action::ModifyNetworkInterfaceAttribute => "ModifyNetworkInterfaceAttribute",
            Action::CreateTags => "CreateTags",
            Action::DeleteTags => "DeleteTags",
            Action::ModifyInstanceMetadataOptions => "ModifyInstanceMetadataOptions",
        }
    }

    /// The action for an `Action=` name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The IAM action to authorise first, e.g. `ec2:AssignPrivateIpAddresses`.
    pub fn iam_action(self) -> String {
        format!("ec2:{}", self.name())
    }

    /// Whether the action only reads (the caller may hold a shared lock for it).
    pub fn is_read_only(self) -> bool {
        self.name().starts_with("Describe")
    }
}

// === impl Ec2 ===

impl Ec2 {
    /// Runs the Query action `action` (the `Action=` value) and returns the XML body.
    /// An unknown action is `InvalidAction`.
    pub fn handle(&mut self, action: &str, params: &Params, request_id: &str) -> Result<String> {
        let action = Action::from_name(action).ok_or_else(|| Ec2Error::invalid_action(action))?;
        self.call(action, params, request_id)
    }

    /// Runs `action`.
    pub fn call(&mut self, action: Action, params: &Params, request_id: &str) -> Result<String> {
        match action {
            Action::DescribeInstances => self.describe_instances(params, request_id),
            Action::DescribeInstanceTypes => describe_instance_types(params, request_id),
            Action::DescribeSubnets => self.describe_subnets(params, request_id),
            Action::DescribeVpcs => self.describe_vpcs(params, request_id),
            Action::DescribeNetworkInterfaces => self.describe_enis(params, request_id),
            Action::CreateNetworkInterface => self.create_network_interface(params, request_id),
            Action::AttachNetworkInterface => self.attach_network_interface(params, request_id),
            Action::DetachNetworkInterface => {
                self.detach(params.require("AttachmentId")?)?;
                Ok(ok_response(action, request_id))
            }
            Action::DeleteNetworkInterface => {
                let id = eni_id(params.require("NetworkInterfaceId")?)?;
                self.delete_eni(id)?;
                Ok(ok_response(action, request_id))
            }
            Action::AssignPrivateIpAddresses => self.assign_private_ips(params, request_id),
            Action::UnassignPrivateIpAddresses => self.unassign_private_ips(params, request_id),
            Action::ModifyNetworkInterfaceAttribute => self.modify_eni(params, request_id),
            Action::CreateTags => self.create_tags(params, request_id),
            Action::DeleteTags => self.delete_tags(params, request_id),
            Action::ModifyInstanceMetadataOptions => self.modify_metadata_options(params, request_id),
        }
    }

    /// ModifyInstanceMetadataOptions: `HttpTokens` optional|required, `HttpPutResponseHopLimit`
    /// 1–64, `HttpEndpoint` enabled|disabled; the answer is the options now in force.
    fn modify_metadata_options(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let id = params.require("InstanceId")?.to_string();
        let tokens = params.get("HttpTokens");
        if let Some(t) = tokens.filter(|t| !matches!(*t, "optional" | "required")) {
            return Err(Ec2Error::new(
                "InvalidParameterValue",
                format!(
                    "Value ({t}) for parameter httpTokens is invalid. Valid values are: optional, required."
                ),
            ));
        }
        let endpoint = params.get("HttpEndpoint");
        if let Some(e) = endpoint.filter(|e| !matches!(*e, "enabled" | "disabled")) {
            return Err(Ec2Error::new(
                "InvalidParameterValue",
                format!(
                    "Value ({e}) for parameter httpEndpoint is invalid. Valid values are: enabled, disabled."
                ),
            ));
        }
        let hop_limit = match params.get("HttpPutResponseHopLimit") {
            None => None,
            Some(v) => match v.parse::<u8>() {
                Ok(n) if (1..=64).contains(&n) => Some(n),
                _ => {
                    return Err(Ec2Error::new(
                        "InvalidParameterValue",
                        format!(
                            "Value ({v}) for parameter httpPutResponseHopLimit is invalid. Valid values are between 1 and 64."
                        ),
                    ));
                }
            },
        };
        let instance =
            self.instances.get_mut(&id).ok_or_else(|| Ec2Error::instance_not_found(&[id.as_str()]))?;
        let m = &mut instance.metadata_options;
        if let Some(t) = tokens {
            m.http_tokens = t.to_string();
        }
        if let Some(e) = endpoint {
            m.http_endpoint = e.to_string();
        }
        if let Some(n) = hop_limit {
            m.http_put_response_hop_limit = n;
        }
        let m = m.clone();
        Ok(response(Action::ModifyInstanceMetadataOptions.name(), request_id, |x| {
            x.text("instanceId", &id);
            x.element("instanceMetadataOptions", |x| {
                x.text("state", "pending");
                x.text("httpTokens", &m.http_tokens);
                x.text("httpPutResponseHopLimit", m.http_put_response_hop_limit.to_string());
                x.text("httpEndpoint", &m.http_endpoint);
                x.text("httpProtocolIpv6", "disabled");
                x.text("instanceMetadataTags", "disabled");
            });
        }))
    }

    fn describe_instances(&self, params: &Params, request_id: &str) -> Result<String> {
        let ids = params.list("InstanceId");
        for id in &ids {
            instance_id(id)?;
        }
        let missing: Vec<&str> = ids.iter().copied().filter(|id| !self.instances.contains_key(*id)).collect();
        if !missing.is_empty() {
            return Err(Ec2Error::instance_not_found(&missing));
        }
        let filters = params.filters()?;
        let fields = |i: &Instance, name: &str| self.instance_fields(i, name);
        let selected = filter::select(self.instances.values(), |x| x.id.as_str(), &ids, &filters, &fields)?;
        Ok(response("DescribeInstances", request_id, |x| {
            // One reservation per instance: each node is its own RunInstances call.
            x.items("reservationSet", selected, |x, i| {
                x.text("reservationId", &i.reservation_id);
                x.text("ownerId", &self.account_id);
                x.items("groupSet", Vec::<()>::new(), |_, _| {});
                x.items("instancesSet", [i], |x, i| self.write_instance(x, i));
            });
        }))
    }

    fn instance_fields(&self, i: &Instance, name: &str) -> Option<Vec<String>> {
        let one = |s: &str| Some(vec![s.to_string()]);
        let enis = self.instance_enis(&i.id);
        match name {
            "instance-id" => one(&i.id),
            "instance-type" => one(&i.instance_type),
            "instance-state-name" => one("running"),
            "instance-state-code" => one("16"),
            "availability-zone" => one(&i.availability_zone),
            "subnet-id" => one(&i.subnet_id),
            "vpc-id" => one(&i.vpc_id),
            "image-id" => one(&i.image_id),
            "private-ip-address" => one(&i.private_ip.to_string()),
            "private-dns-name" => one(&self.private_dns_name(i.private_ip)),
            "reservation-id" => one(&i.reservation_id),
            "owner-id" => one(&self.account_id),
            "network-interface.network-interface-id" => Some(enis.iter().map(|e| e.id.clone()).collect()),
            "network-interface.addresses.private-ip-address" => {
                Some(enis.iter().flat_map(|e| e.private_ips()).map(|a| a.to_string()).collect())
            }
            other => tag_fields(&i.tags, other),
        }
    }

    fn write_instance(&self, x: &mut Xml, i: &Instance) {
        let info = i.type_info();
        let primary = self.eni(&i.primary_eni);
        x.text("instanceId", &i.id);
        x.text("imageId", &i.image_id);
        x.element("instanceState", |x| {
            x.text("code", "16");
            x.text("name", "running");
        });
        x.text("privateDnsName", self.private_dns_name(i.private_ip));
        x.text("dnsName", "");
        x.text("reason", "");
        x.text("amiLaunchIndex", "0");
        x.items("productCodes", Vec::<()>::new(), |_, _| {});
        x.text("instanceType", &i.instance_type);
        x.text("launchTime", &i.launch_time);
        x.element("placement", |x| {
            x.text("availabilityZone", &i.availability_zone);
            x.text("groupName", "");
            x.text("tenancy", "default");
        });
        x.element("monitoring", |x| x.text("state", "disabled"));
        x.text("subnetId", &i.subnet_id);
        x.text("vpcId", &i.vpc_id);
        x.text("privateIpAddress", i.private_ip.to_string());
        x.text("sourceDestCheck", bool_str(primary.is_none_or(|e| e.source_dest_check)));
        let groups = primary.map(|e| e.security_groups.clone()).unwrap_or_default();
        self.write_groups(x, &groups);
        x.text("architecture", info.map_or("x86_64", |t| t.architecture));
        x.text("rootDeviceType", "ebs");
        x.text("rootDeviceName", "/dev/xvda");
        x.items("blockDeviceMapping", Vec::<()>::new(), |_, _| {});
        x.text("virtualizationType", "hvm");
        x.tags(&i.tags, false);
        x.text("hypervisor", "xen");
        x.items("networkInterfaceSet", self.instance_enis(&i.id), |x, e| {
            self.write_instance_eni(x, e);
        });
        if let Some(p) = &i.iam_instance_profile {
            x.element("iamInstanceProfile", |x| {
                x.text("arn", &p.arn);
                x.text("id", &p.id);
            });
        }
        x.text("ebsOptimized", "false");
        x.text("enaSupport", bool_str(info.is_some_and(|t| t.hypervisor == "nitro")));
        x.element("metadataOptions", |x| {
            let m = &i.metadata_options;
            x.text("state", "applied");
            x.text("httpTokens", &m.http_tokens);
            x.text("httpPutResponseHopLimit", m.http_put_response_hop_limit.to_string());
            x.text("httpEndpoint", &m.http_endpoint);
            x.text("httpProtocolIpv6", "disabled");
            x.text("instanceMetadataTags", "disabled");
        });
        x.element("privateDnsNameOptions", |x| {
            x.text("hostnameType", "ip-name");
            x.text("enableResourceNameDnsARecord", "false");
            x.text("enableResourceNameDnsAAAARecord", "false");
        });
    }

    /// The `networkInterfaceSet` item of DescribeInstances (InstanceNetworkInterface).
    fn write_instance_eni(&self, x: &mut Xml, e: &NetworkInterface) {
        x.text("networkInterfaceId", &e.id);
        x.text("subnetId", &e.subnet_id);
        x.text("vpcId", &e.vpc_id);
        x.text("description", &e.description);
        x.text("ownerId", &self.account_id);
        x.text("status", e.status());
        x.text("macAddress", &e.mac);
        x.text("privateIpAddress", e.private_ip.to_string());
        x.text("privateDnsName", self.private_dns_name(e.private_ip));
        x.text("sourceDestCheck", bool_str(e.source_dest_check));
        self.write_groups(x, &e.security_groups);
        if let Some(a) = &e.attachment {
            x.element("attachment", |x| {
                x.text("attachmentId", &a.id);
                x.text("deviceIndex", a.device_index.to_string());
                x.text("status", "attached");
                x.text("attachTime", &a.attach_time);
                x.text("deleteOnTermination", bool_str(a.delete_on_termination));
                x.text("networkCardIndex", a.network_card_index.to_string());
            });
        }
        self.write_private_ips(x, e);
        x.items("ipv4PrefixSet", &e.prefixes, |x, p| x.text("ipv4Prefix", p.to_string()));
        x.text("interfaceType", "interface");
    }

    fn write_groups(&self, x: &mut Xml, ids: &[String]) {
        x.items("groupSet", ids, |x, id| {
            x.text("groupId", id);
            let name = self.security_groups.get(id).map_or("", |g| g.name.as_str());
            x.text("groupName", name);
        });
    }

    fn write_private_ips(&self, x: &mut Xml, e: &NetworkInterface) {
        x.items("privateIpAddressesSet", e.private_ips(), |x, ip| {
            x.text("privateIpAddress", ip.to_string());
            x.text("privateDnsName", self.private_dns_name(ip));
            x.text("primary", bool_str(ip == e.private_ip));
        });
    }

    /// A full NetworkInterface (DescribeNetworkInterfaces item, CreateNetworkInterface body).
    fn write_eni(&self, x: &mut Xml, e: &NetworkInterface) {
        x.text("networkInterfaceId", &e.id);
        x.text("subnetId", &e.subnet_id);
        x.text("vpcId", &e.vpc_id);
        x.text("availabilityZone", &e.availability_zone);
        if let Some(s) = self.subnet(&e.subnet_id) {
            x.text("availabilityZoneId", &s.availability_zone_id);
        }
        x.text("description", &e.description);
        x.text("ownerId", &self.account_id);
        x.text("requesterManaged", "false");
        x.text("status", e.status());
        x.text("macAddress", &e.mac);
        x.text("privateIpAddress", e.private_ip.to_string());
        x.text("privateDnsName", self.private_dns_name(e.private_ip));
        x.text("sourceDestCheck", bool_str(e.source_dest_check));
        self.write_groups(x, &e.security_groups);
        if let Some(a) = &e.attachment {
            x.element("attachment", |x| {
                x.text("attachmentId", &a.id);
                x.text("instanceId", &a.instance_id);
                x.text("instanceOwnerId", &self.account_id);
                x.text("deviceIndex", a.device_index.to_string());
                x.text("networkCardIndex", a.network_card_index.to_string());
                x.text("status", "attached");
                x.text("attachTime", &a.attach_time);
                x.text("deleteOnTermination", bool_str(a.delete_on_termination));
            });
        }
        x.tags(&e.tags, true);
        self.write_private_ips(x, e);
        x.items("ipv4PrefixSet", &e.prefixes, |x, p| x.text("ipv4Prefix", p.to_string()));
        x.items("ipv6AddressesSet", Vec::<()>::new(), |_, _| {});
        x.text("interfaceType", "interface");
    }

    fn describe_enis(&self, params: &Params, request_id: &str) -> Result<String> {
        let ids = params.list("NetworkInterfaceId");
        for id in &ids {
            eni_id(id)?;
            if !self.enis.contains_key(*id) {
                return Err(Ec2Error::eni_not_found(id));
            }
        }
        let filters = params.filters()?;
        let fields = |e: &NetworkInterface, name: &str| self.eni_fields(e, name);
        let selected = filter::select(self.enis.values(), |x| x.id.as_str(), &ids, &filters, &fields)?;
        Ok(response("DescribeNetworkInterfaces", request_id, |x| {
            x.items("networkInterfaceSet", selected, |x, e| self.write_eni(x, e));
        }))
    }

    fn eni_fields(&self, e: &NetworkInterface, name: &str) -> Option<Vec<String>> {
        let one = |s: &str| Some(vec![s.to_string()]);
        let attachment = e.attachment.as_ref();
        let from_attachment =
            |f: &dyn Fn(&crate::model::Attachment) -> String| Some(attachment.map(f).into_iter().collect());
        match name {
            "network-interface-id" => one(&e.id),
            "subnet-id" => one(&e.subnet_id),
            "vpc-id" => one(&e.vpc_id),
            "availability-zone" => one(&e.availability_zone),
            "status" => one(e.status()),
            "description" => one(&e.description),
            "mac-address" => one(&e.mac),
            "owner-id" => one(&self.account_id),
            "requester-managed" => one("false"),
            "source-dest-check" => one(bool_str(e.source_dest_check)),
            "interface-type" => one("interface"),
            "private-ip-address" | "addresses.private-ip-address" => {
                Some(e.private_ips().map(|a| a.to_string()).collect())
            }
            "ipv4-prefix" => Some(e.prefixes.iter().map(ToString::to_string).collect()),
            "group-id" => Some(e.security_groups.clone()),
            "attachment.instance-id" => from_attachment(&|a| a.instance_id.clone()),
            "attachment.attachment-id" => from_attachment(&|a| a.id.clone()),
            "attachment.device-index" => from_attachment(&|a| a.device_index.to_string()),
            "attachment.status" => from_attachment(&|_| "attached".into()),
            "attachment.delete-on-termination" => {
                from_attachment(&|a| bool_str(a.delete_on_termination).into())
            }
            "attachment.instance-owner-id" => from_attachment(&|_| self.account_id.clone()),
            other => tag_fields(&e.tags, other),
        }
    }

    fn describe_subnets(&self, params: &Params, request_id: &str) -> Result<String> {
        let ids = params.list("SubnetId");
        if let Some(missing) = ids.iter().find(|id| !self.subnets.contains_key(**id)) {
            return Err(Ec2Error::subnet_not_found(missing));
        }
        let filters = params.filters()?;
        let fields = |s: &Subnet, name: &str| self.subnet_fields(s, name);
        let selected = filter::select(self.subnets.values(), |x| x.id.as_str(), &ids, &filters, &fields)?;
        Ok(response("DescribeSubnets", request_id, |x| {
            x.items("subnetSet", selected, |x, s| {
                x.text("subnetId", &s.id);
                x.text(
                    "subnetArn",
                    format!("arn:aws:ec2:{}:{}:subnet/{}", self.region, self.account_id, s.id),
                );
                x.text("state", "available");
                x.text("ownerId", &self.account_id);
                x.text("vpcId", &s.vpc_id);
                x.text("cidrBlock", s.cidr.to_string());
                x.items("ipv6CidrBlockAssociationSet", Vec::<()>::new(), |_, _| {});
                x.text("availableIpAddressCount", s.available().to_string());
                x.text("availabilityZone", &s.availability_zone);
                x.text("availabilityZoneId", &s.availability_zone_id);
                x.text("defaultForAz", "false");
                x.text("mapPublicIpOnLaunch", "false");
                x.text("assignIpv6AddressOnCreation", "false");
                x.tags(&s.tags, false);
                x.text("ipv6Native", "false");
                x.element("privateDnsNameOptionsOnLaunch", |x| {
                    x.text("hostnameType", "ip-name");
                    x.text("enableResourceNameDnsARecord", "false");
                    x.text("enableResourceNameDnsAAAARecord", "false");
                });
            });
        }))
    }

    fn subnet_fields(&self, s: &Subnet, name: &str) -> Option<Vec<String>> {
        let one = |v: &str| Some(vec![v.to_string()]);
        match name {
            "subnet-id" => one(&s.id),
            "vpc-id" => one(&s.vpc_id),
            "availability-zone" => one(&s.availability_zone),
            "availability-zone-id" => one(&s.availability_zone_id),
            "cidr-block" | "cidr" | "cidrBlock" => one(&s.cidr.to_string()),
            "state" => one("available"),
            "owner-id" => one(&self.account_id),
            "default-for-az" => one("false"),
            "available-ip-address-count" => one(&s.available().to_string()),
            other => tag_fields(&s.tags, other),
        }
    }

    fn describe_vpcs(&self, params: &Params, request_id: &str) -> Result<String> {
        let ids = params.list("VpcId");
        if let Some(missing) = ids.iter().find(|id| **id != self.vpc.id) {
            return Err(Ec2Error::vpc_not_found(missing));
        }
        let filters = params.filters()?;
        let vpc = &self.vpc;
        let fields = |_: &(), name: &str| -> Option<Vec<String>> {
            let one = |v: &str| Some(vec![v.to_string()]);
            match name {
                "vpc-id" => one(&vpc.id),
                "cidr" | "cidr-block-association.cidr-block" => one(&vpc.cidr.to_string()),
                "state" => one("available"),
                "is-default" => one("false"),
                "owner-id" => one(&self.account_id),
                "dhcp-options-id" => one(&vpc.dhcp_options_id),
                other => tag_fields(&vpc.tags, other),
            }
        };
        let selected = matches(&filters, &(), &fields)?;
        Ok(response("DescribeVpcs", request_id, |x| {
            x.items("vpcSet", selected.then_some(vpc), |x, v| {
                x.text("vpcId", &v.id);
                x.text("ownerId", &self.account_id);
                x.text("state", "available");
                x.text("cidrBlock", v.cidr.to_string());
                x.items("cidrBlockAssociationSet", [v], |x, v| {
                    x.text("associationId", &v.cidr_association_id);
                    x.text("cidrBlock", v.cidr.to_string());
                    x.element("cidrBlockState", |x| x.text("state", "associated"));
                });
                x.text("dhcpOptionsId", &v.dhcp_options_id);
                x.tags(&v.tags, false);
                x.text("instanceTenancy", "default");
                x.text("isDefault", "false");
            });
        }))
    }

    fn create_network_interface(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let subnet_id = params.require("SubnetId")?;
        if !self.subnets.contains_key(subnet_id) {
            return Err(Ec2Error::subnet_not_found(subnet_id));
        }
        let description = params.get("Description").unwrap_or("").to_string();
        let mut groups: Vec<String> = params.list("SecurityGroupId").into_iter().map(String::from).collect();
        if let Some(g) = groups.iter().find(|g| !self.security_groups.contains_key(*g)) {
            // moto InvalidSecurityGroupNotFoundError / AWS: "The security group 'sg-x' does not exist"
            return Err(Ec2Error::new(
                "InvalidGroup.NotFound",
                format!("The security group '{g}' does not exist"),
            ));
        }
        if groups.is_empty() {
            groups.extend(self.default_security_group().map(String::from));
        }
        let primary = match params.get("PrivateIpAddress") {
            Some(v) => Some(v.parse().map_err(|_| Ec2Error::invalid_address(v))?),
            None => None,
        };
        let secondary = params.uint("SecondaryPrivateIpAddressCount")?.unwrap_or(0) as usize;
        let prefixes = params.uint("Ipv4PrefixCount")?.unwrap_or(0) as usize;
        let tags = params.tag_specifications("network-interface")?;
        let id = self.create_eni(subnet_id, description, groups, primary, secondary, prefixes, tags)?;
        let eni = self.eni(&id).ok_or_else(|| Ec2Error::eni_not_found(&id))?;
        Ok(response("CreateNetworkInterface", request_id, |x| {
            x.element("networkInterface", |x| self.write_eni(x, eni));
        }))
    }

    fn attach_network_interface(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let eni = eni_id(params.require("NetworkInterfaceId")?)?;
        let instance = instance_id(params.require("InstanceId")?)?;
        let index = params.uint("DeviceIndex")?.ok_or_else(|| Ec2Error::missing_parameter("DeviceIndex"))?;
        if let Some(card) = params.uint("NetworkCardIndex")?
            && card != 0
        {
            return Err(Ec2Error::invalid_value(&card.to_string(), "NetworkCardIndex"));
        }
        let attachment_id = self.attach(eni, instance, index)?;
        Ok(response("AttachNetworkInterface", request_id, |x| {
            x.text("attachmentId", &attachment_id);
            x.text("networkCardIndex", "0");
        }))
    }

    fn assign_private_ips(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let id = eni_id(params.require("NetworkInterfaceId")?)?;
        let exact = params.ipv4_list("PrivateIpAddress")?;
        let count = params.uint("SecondaryPrivateIpAddressCount")?;
        let exact_prefixes = params.list("Ipv4Prefix");
        let prefix_count = params.uint("Ipv4PrefixCount")?;
        if !exact.is_empty() && count.is_some() {
            // (composed)
            return Err(Ec2Error::invalid_combination(
                "The parameters 'privateIpAddress' and 'secondaryPrivateIpAddressCount' cannot be used together.",
            ));
        }
        let wants_ips = !exact.is_empty() || count.is_some();
        let wants_prefixes = !exact_prefixes.is_empty() || prefix_count.is_some();
        if wants_ips && wants_prefixes {
            // (composed)
            return Err(Ec2Error::invalid_combination(
                "Secondary private IP addresses and IPv4 prefixes cannot be assigned in the same request.",
            ));
        }
        if !exact_prefixes.is_empty() {
            // Asking for a specific prefix is not modelled: prefixes come out lowest-first.
            return Err(Ec2Error::invalid_combination(
                "The lab does not support Ipv4Prefix.N; use Ipv4PrefixCount.",
            ));
        }
        if !wants_ips && !wants_prefixes {
            return Err(Ec2Error::missing_parameter("SecondaryPrivateIpAddressCount"));
        }
        if !self.enis.contains_key(id) {
            return Err(Ec2Error::eni_not_found(id));
        }
        let grant =
            self.assign(id, &exact, count.unwrap_or(0) as usize, prefix_count.unwrap_or(0) as usize)?;
        Ok(response("AssignPrivateIpAddresses", request_id, |x| {
            x.text("networkInterfaceId", id);
            if wants_ips {
                x.items("assignedPrivateIpAddressesSet", &grant.ips, |x, ip| {
                    x.text("privateIpAddress", ip.to_string());
                });
            }
            if wants_prefixes {
                x.items("assignedIpv4PrefixSet", &grant.prefixes, |x, p| {
                    x.text("ipv4Prefix", p.to_string());
                });
            }
            x.text("return", "true");
        }))
    }

    fn unassign_private_ips(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let id = eni_id(params.require("NetworkInterfaceId")?)?;
        let ips: Vec<Ipv4Addr> = params.ipv4_list("PrivateIpAddress")?;
        let prefixes: Vec<Ipv4Net> = params
            .list("Ipv4Prefix")
            .into_iter()
            .map(|v| v.parse().map_err(|_| Ec2Error::invalid_value(v, "Ipv4Prefix")))
            .collect::<Result<_>>()?;
        if ips.is_empty() && prefixes.is_empty() {
            return Err(Ec2Error::missing_parameter("PrivateIpAddress"));
        }
        self.unassign(id, &ips, &prefixes)?;
        Ok(ok_response(Action::UnassignPrivateIpAddresses, request_id))
    }

    fn modify_eni(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let id = eni_id(params.require("NetworkInterfaceId")?)?.to_string();
        let source_dest_check = params.bool("SourceDestCheck.Value")?;
        let description = params.get("Description.Value").map(String::from);
        let groups: Vec<String> = params.list("SecurityGroupId").into_iter().map(String::from).collect();
        let attachment_id = params.get("Attachment.AttachmentId");
        let delete_on_termination = params.bool("Attachment.DeleteOnTermination")?;
        let eni = self.enis.get(&id).ok_or_else(|| Ec2Error::eni_not_found(&id))?;
        if source_dest_check.is_none()
            && description.is_none()
            && groups.is_empty()
            && attachment_id.is_none()
        {
            // (composed)
            return Err(Ec2Error::missing_parameter("attribute"));
        }
        if let Some(aid) = attachment_id
            && eni.attachment.as_ref().is_none_or(|a| a.id != aid)
        {
            return Err(Ec2Error::attachment_not_found(aid));
        }
        if let Some(g) = groups.iter().find(|g| !self.security_groups.contains_key(*g)) {
            return Err(Ec2Error::new(
                "InvalidGroup.NotFound",
                format!("The security group '{g}' does not exist"),
            ));
        }
        let eni = self.enis.get_mut(&id).ok_or_else(|| Ec2Error::eni_not_found(&id))?;
        if let Some(v) = source_dest_check {
            eni.source_dest_check = v;
        }
        if let Some(d) = description {
            eni.description = d;
        }
        if !groups.is_empty() {
            eni.security_groups = groups;
        }
        if let (Some(a), Some(v)) = (eni.attachment.as_mut(), delete_on_termination) {
            a.delete_on_termination = v;
        }
        Ok(ok_response(Action::ModifyNetworkInterfaceAttribute, request_id))
    }

    fn create_tags(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let resources = params.list("ResourceId");
        if resources.is_empty() {
            return Err(Ec2Error::missing_parameter("ResourceId"));
        }
        let tags = params.tag_list("Tag")?;
        if tags.is_empty() {
            return Err(Ec2Error::missing_parameter("Tag"));
        }
        // Check every resource first so a bad id changes nothing.
        for r in &resources {
            self.tags_mut(r)?;
        }
        for r in resources {
            let t = self.tags_mut(r)?;
            for (k, v) in &tags {
                t.insert(k.clone(), v.clone().unwrap_or_default());
            }
        }
        Ok(ok_response(Action::CreateTags, request_id))
    }

    fn delete_tags(&mut self, params: &Params, request_id: &str) -> Result<String> {
        let resources = params.list("ResourceId");
        if resources.is_empty() {
            return Err(Ec2Error::missing_parameter("ResourceId"));
        }
        let tags = params.tag_list("Tag")?;
        for r in &resources {
            self.tags_mut(r)?;
        }
        for r in resources {
            let t = self.tags_mut(r)?;
            if tags.is_empty() {
                // No Tag.N: every tag of the resource goes (EC2 API reference, DeleteTags).
                t.clear();
            }
            for (k, v) in &tags {
                if v.as_ref().is_none_or(|v| t.get(k) == Some(v)) {
                    t.remove(k);
                }
            }
        }
        Ok(ok_response(Action::DeleteTags, request_id))
    }
}

fn describe_instance_types(params: &Params, request_id: &str) -> Result<String> {
    let names = params.list("InstanceType");
    let missing: Vec<&str> = names.iter().copied().filter(|n| instance_type::lookup(n).is_none()).collect();
    if !missing.is_empty() {
        return Err(Ec2Error::instance_types_not_found(&missing));
    }
    let filters: Vec<Filter> = params.filters()?;
    let fields = |t: &InstanceTypeInfo, name: &str| -> Option<Vec<String>> {
        let one = |v: String| Some(vec![v]);
        match name {
            "instance-type" => one(t.name.into()),
            "hypervisor" => one(t.hypervisor.into()),
            "bare-metal" => one(bool_str(t.bare_metal).into()),
            "processor-info.supported-architecture" => one(t.architecture.into()),
            "vcpu-info.default-vcpus" => one(t.vcpus.to_string()),
            "network-info.maximum-network-interfaces" => one(t.max_enis.to_string()),
            "network-info.ipv4-addresses-per-interface" => one(t.ipv4_per_eni.to_string()),
            _ => None,
        }
    };
    let selected = filter::select(INSTANCE_TYPES, |t| t.name, &names, &filters, &fields)?;
    Ok(response("DescribeInstanceTypes", request_id, |x| {
        x.items("instanceTypeSet", selected, write_instance_type);
    }))
}

fn write_instance_type(x: &mut Xml, t: &InstanceTypeInfo) {
    let nitro = t.hypervisor == "nitro";
    x.text("instanceType", t.name);
    x.text("currentGeneration", "true");
    x.text("freeTierEligible", bool_str(matches!(t.name, "t2.micro" | "t3.micro")));
    x.text_items("supportedUsageClasses", ["on-demand", "spot"]);
    x.text_items("supportedRootDeviceTypes", ["ebs"]);
    x.text_items("supportedVirtualizationTypes", ["hvm"]);
    x.text("bareMetal", bool_str(t.bare_metal));
    x.text("hypervisor", t.hypervisor);
    x.element("processorInfo", |x| {
        x.text_items("supportedArchitectures", [t.architecture]);
    });
    x.element("vCpuInfo", |x| x.text("defaultVCpus", t.vcpus.to_string()));
    x.element("memoryInfo", |x| x.text("sizeInMiB", t.memory_mib.to_string()));
    x.text("instanceStorageSupported", "false");
    x.element("networkInfo", |x| {
        x.text("networkPerformance", t.network_performance);
        x.text("maximumNetworkInterfaces", t.max_enis.to_string());
        x.text("maximumNetworkCards", "1");
        x.text("defaultNetworkCardIndex", "0");
        x.items("networkCards", [t], |x, t| {
            x.text("networkCardIndex", "0");
            x.text("networkPerformance", t.network_performance);
            x.text("maximumNetworkInterfaces", t.max_enis.to_string());
        });
        x.text("ipv4AddressesPerInterface", t.ipv4_per_eni.to_string());
        x.text("ipv6AddressesPerInterface", t.ipv4_per_eni.to_string());
        x.text("ipv6Supported", "true");
        x.text("enaSupport", if nitro { "required" } else { "unsupported" });
        x.text("efaSupported", "false");
        x.text("encryptionInTransitSupported", "false");
    });
    x.text("burstablePerformanceSupported", bool_str(t.name.starts_with('t')));
}

/// `<{Action}Response><requestId/><return>true</return></{Action}Response>`.
fn ok_response(action: Action, request_id: &str) -> String {
    response(action.name(), request_id, |x| x.text("return", "true"))
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// Checks the shape of an ENI id.
fn eni_id(id: &str) -> Result<&str> {
    if id.starts_with("eni-") && !id.starts_with("eni-attach-") {
        Ok(id)
    } else {
        Err(Ec2Error::eni_malformed(id))
    }
}

/// Checks the shape of an instance id.
fn instance_id(id: &str) -> Result<&str> {
    let hex = id.strip_prefix("i-").unwrap_or("");
    if !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(Ec2Error::instance_malformed(id))
    }
}
