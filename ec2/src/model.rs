//! The EC2 state of one lab cluster: a VPC, its subnets, the nodes' instances and their ENIs.
//!
//! It is plain data (serde) so `cloud` can persist it as JSON and reload it across restarts, and
//! every change goes through methods that keep AWS's invariants: an address belongs to one ENI,
//! subnets count what they hand out, ENIs and addresses stay within the instance type's limits.
//! The Query actions in [`crate::action`] and the internal API for `cloud` (VPC and node
//! creation, look-ups, IMDS) both work on this type.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::error::{Ec2Error, Result};
use crate::instance_type::{self, InstanceTypeInfo};
use crate::subnet::Subnet;

/// Resource tags, key → value, in key order.
pub type Tags = BTreeMap<String, String>;

/// The AMI id nodes report when the lab does not say (an EKS-optimized AL2023 image id shape).
pub const DEFAULT_IMAGE_ID: &str = "ami-0c1f7b7e2d4a9f3b5";

/// How to lay out the VPC. The default is what eksctl makes: 192.168.0.0/16 with a /19 per AZ.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2Config {
    /// Region name, e.g. `us-east-1`.
    pub region: String,
    /// The account that owns everything (`ownerId`).
    pub account_id: String,
    /// The VPC's primary IPv4 CIDR.
    pub vpc_cidr: Ipv4Net,
    /// Subnets to create, in order.
    pub subnets: Vec<SubnetSpec>,
    /// Seed for resource ids and MACs, so a lab gets the same ids on every run.
    pub seed: u64,
}

/// One subnet to create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetSpec {
    /// Availability Zone, e.g. `us-east-1a`.
    pub availability_zone: String,
    /// The subnet's CIDR, inside the VPC's. Make it small (/28) to let a lab run out.
    pub cidr: Ipv4Net,
    /// Tags to put on it.
    pub tags: Tags,
}

// === impl Ec2Config ===

impl Default for Ec2Config {
    fn default() -> Self {
        let subnet = |az: &str, cidr: &str| SubnetSpec {
            availability_zone: az.to_string(),
            // The literals below are valid CIDRs.
            cidr: cidr.parse().unwrap_or_else(|_| Ipv4Net::default()),
            tags: Tags::new(),
        };
        Self {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            vpc_cidr: Ipv4Net::new(Ipv4Addr::new(192, 168, 0, 0), 16).unwrap_or_else(|_| Ipv4Net::default()),
            subnets: vec![
                subnet("us-east-1a", "192.168.0.0/19"),
                subnet("us-east-1b", "192.168.32.0/19"),
                subnet("us-east-1c", "192.168.64.0/19"),
            ],
            seed: 0x6e65_746c_6162, // "netlab"
        }
    }
}

/// The VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vpc {
    /// `vpc-` + 17 hex.
    pub id: String,
    /// Primary IPv4 CIDR.
    pub cidr: Ipv4Net,
    /// The CIDR block association id (`vpc-cidr-assoc-...`).
    pub cidr_association_id: String,
    /// `dopt-...`.
    pub dhcp_options_id: String,
    /// Tags.
    pub tags: Tags,
}

/// A security group (only ids and names: the lab does not filter traffic by them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroup {
    /// `sg-` + 17 hex.
    pub id: String,
    /// Group name (`default` for the VPC's own).
    pub name: String,
    /// Description.
    pub description: String,
}

/// An ENI's attachment to an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// `eni-attach-` + 17 hex.
    pub id: String,
    /// The instance.
    pub instance_id: String,
    /// Device index (0 = the primary ENI, `eth0`).
    pub device_index: u32,
    /// Network card index (always 0: the lab's types have one card).
    pub network_card_index: u32,
    /// When it was attached (ISO 8601, as EC2 prints it).
    pub attach_time: String,
    /// Whether the ENI is deleted with the instance.
    pub delete_on_termination: bool,
}

/// An elastic network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInterface {
    /// `eni-` + 17 hex.
    pub id: String,
    /// Its subnet.
    pub subnet_id: String,
    /// Its VPC.
    pub vpc_id: String,
    /// Its subnet's Availability Zone.
    pub availability_zone: String,
    /// Description (ipamd writes `aws-K8S-<instance-id>`).
    pub description: String,
    /// MAC, `02:xx:xx:xx:xx:xx`; IMDS keys interfaces by it.
    pub mac: String,
    /// Primary private IPv4 address.
    pub private_ip: Ipv4Addr,
    /// Secondary private IPv4 addresses, in the order assigned (these become pod IPs).
    pub secondary_ips: Vec<Ipv4Addr>,
    /// Delegated /28 prefixes, in the order assigned.
    pub prefixes: Vec<Ipv4Net>,
    /// Security group ids.
    pub security_groups: Vec<String>,
    /// Source/destination check.
    pub source_dest_check: bool,
    /// Attachment, if attached.
    pub attachment: Option<Attachment>,
    /// Tags.
    pub tags: Tags,
}

// === impl NetworkInterface ===

impl NetworkInterface {
    /// `in-use` when attached, `available` otherwise.
    pub fn status(&self) -> &'static str {
        if self.attachment.is_some() { "in-use" } else { "available" }
    }

    /// IPv4 slots taken: the primary, each secondary and each prefix take one.
    pub fn ipv4_slots(&self) -> usize {
        1 + self.secondary_ips.len() + self.prefixes.len()
    }

    /// Every private address, primary first (IMDS `local-ipv4s` order).
    pub fn private_ips(&self) -> impl Iterator<Item = Ipv4Addr> + '_ {
        std::iter::once(self.private_ip).chain(self.secondary_ips.iter().copied())
    }

    /// The instance it is attached to.
    pub fn instance_id(&self) -> Option<&str> {
        self.attachment.as_ref().map(|a| a.instance_id.as_str())
    }
}

/// IMDS options of an instance (DescribeInstances `metadataOptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    /// `required` (IMDSv2 only) or `optional`.
    pub http_tokens: String,
    /// The PUT response hop limit: 1 keeps pods from getting a token, 2 lets them.
    pub http_put_response_hop_limit: u8,
    /// `enabled` or `disabled`.
    pub http_endpoint: String,
}

impl Default for MetadataOptions {
    /// EKS AL2023 managed node groups: tokens required, hop limit 1 (facts §3.3).
    fn default() -> Self {
        Self {
            http_tokens: "required".into(),
            http_put_response_hop_limit: 1,
            http_endpoint: "enabled".into(),
        }
    }
}

/// An instance profile on an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamInstanceProfile {
    /// `arn:aws:iam::<account>:instance-profile/<name>`.
    pub arn: String,
    /// `AIPA...` id.
    pub id: String,
}

/// An EC2 instance (one per cluster node). Always `running`: the lab starts and removes nodes
/// by other means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// `i-` + 17 hex.
    pub id: String,
    /// Instance type; its limits come from [`instance_type::lookup`].
    pub instance_type: String,
    /// Availability Zone.
    pub availability_zone: String,
    /// The primary ENI's subnet.
    pub subnet_id: String,
    /// The VPC.
    pub vpc_id: String,
    /// AMI id.
    pub image_id: String,
    /// The primary ENI's id.
    pub primary_eni: String,
    /// The primary ENI's primary address (the node IP).
    pub private_ip: Ipv4Addr,
    /// `r-` + 17 hex.
    pub reservation_id: String,
    /// When it was launched (ISO 8601).
    pub launch_time: String,
    /// Tags (eksctl's `Name`, `kubernetes.io/cluster/<name>`...).
    pub tags: Tags,
    /// IMDS options.
    pub metadata_options: MetadataOptions,
    /// The instance profile, if any.
    pub iam_instance_profile: Option<IamInstanceProfile>,
}

// === impl Instance ===

impl Instance {
    /// The type's limits (the lab only launches known types).
    pub fn type_info(&self) -> Option<&'static InstanceTypeInfo> {
        instance_type::lookup(&self.instance_type)
    }
}

/// What to launch: [`Ec2::launch`] takes it; [`Ec2::launch_instance`] is the short form.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LaunchSpec {
    /// Instance type, e.g. `t3.medium`.
    pub instance_type: String,
    /// Availability Zone; the first subnet there is used unless `subnet_id` is set.
    pub availability_zone: String,
    /// A specific subnet.
    pub subnet_id: Option<String>,
    /// Tags.
    pub tags: Tags,
    /// Security groups for the primary ENI (default: the VPC's `default` group).
    pub security_groups: Vec<String>,
    /// IMDS options.
    pub metadata_options: MetadataOptions,
    /// Instance profile.
    pub iam_instance_profile: Option<IamInstanceProfile>,
    /// AMI id (default [`DEFAULT_IMAGE_ID`]).
    pub image_id: Option<String>,
}

/// Deterministic ids: splitmix64 over a persisted state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IdGen {
    state: u64,
}

// === impl IdGen ===

impl IdGen {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `prefix` + 17 lowercase hex digits, as EC2 ids are.
    fn id(&mut self, prefix: &str) -> String {
        let hi = self.next_u64() & 0xf; // 4 bits + 64 bits = 17 hex digits
        let lo = self.next_u64();
        format!("{prefix}{hi:x}{lo:016x}")
    }

    /// A locally administered unicast MAC starting with `02:`.
    fn mac(&mut self) -> String {
        let b = self.next_u64().to_be_bytes();
        format!("02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4])
    }
}

/// The whole EC2 state of a lab.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ec2 {
    /// Region.
    pub region: String,
    /// Owner account.
    pub account_id: String,
    /// The VPC.
    pub vpc: Vpc,
    /// Subnets by id.
    pub subnets: BTreeMap<String, Subnet>,
    /// Security groups by id.
    pub security_groups: BTreeMap<String, SecurityGroup>,
    /// Instances by id.
    pub instances: BTreeMap<String, Instance>,
    /// ENIs by id.
    pub enis: BTreeMap<String, NetworkInterface>,
    ids: IdGen,
}

// === impl Ec2 ===

impl Ec2 {
    /// Creates the VPC, its `default` security group and the subnets of `config`.
    pub fn new(config: &Ec2Config) -> Result<Self> {
        let mut ids = IdGen { state: config.seed };
        let vpc = Vpc {
            id: ids.id("vpc-"),
            cidr: config.vpc_cidr.trunc(),
            cidr_association_id: ids.id("vpc-cidr-assoc-"),
            dhcp_options_id: ids.id("dopt-"),
            tags: Tags::new(),
        };
        let mut ec2 = Self {
            region: config.region.clone(),
            account_id: config.account_id.clone(),
            vpc,
            subnets: BTreeMap::new(),
            security_groups: BTreeMap::new(),
            instances: BTreeMap::new(),
            enis: BTreeMap::new(),
            ids,
        };
        ec2.create_security_group("default", "default VPC security group");
        for spec in &config.subnets {
            ec2.create_subnet(spec)?;
        }
        Ok(ec2)
    }

    /// Adds a subnet; its CIDR must lie inside the VPC's and overlap no other subnet.
    pub fn create_subnet(&mut self, spec: &SubnetSpec) -> Result<&Subnet> {
        let cidr = spec.cidr.trunc();
        if !self.vpc.cidr.contains(&cidr) || cidr.prefix_len() > 28 || cidr.prefix_len() < 16 {
            // moto InvalidSubnetRange / AWS: "The CIDR 'x' is invalid."
            return Err(Ec2Error::new("InvalidSubnet.Range", format!("The CIDR '{cidr}' is invalid.")));
        }
        if self.subnets.values().any(|s| s.cidr.contains(&cidr) || cidr.contains(&s.cidr)) {
            // moto InvalidSubnetConflictError.
            return Err(Ec2Error::new(
                "InvalidSubnet.Conflict",
                format!("The CIDR '{cidr}' conflicts with another subnet"),
            ));
        }
        let id = self.ids.id("subnet-");
        let mut subnet = Subnet::new(
            id.clone(),
            self.vpc.id.clone(),
            spec.availability_zone.clone(),
            az_id(&self.region, &spec.availability_zone),
            cidr,
        );
        subnet.tags = spec.tags.clone();
        Ok(self.subnets.entry(id).or_insert(subnet))
    }

    /// Adds a security group to the VPC and returns its id.
    pub fn create_security_group(&mut self, name: &str, description: &str) -> String {
        let id = self.ids.id("sg-");
        self.security_groups.insert(
            id.clone(),
            SecurityGroup { id: id.clone(), name: name.into(), description: description.into() },
        );
        id
    }

    /// The VPC's `default` security group id.
    pub fn default_security_group(&self) -> Option<&str> {
        self.security_groups.values().find(|g| g.name == "default").map(|g| g.id.as_str())
    }

    /// Launches a running instance of `instance_type` in the first subnet of `az`, with its
    /// primary ENI at device index 0 holding the lowest free address.
    pub fn launch_instance(&mut self, instance_type: &str, az: &str, tags: Tags) -> Result<&Instance> {
        self.launch(LaunchSpec {
            instance_type: instance_type.into(),
            availability_zone: az.into(),
            tags,
            ..LaunchSpec::default()
        })
    }

    /// Launches an instance as `spec` says.
    pub fn launch(&mut self, spec: LaunchSpec) -> Result<&Instance> {
        if instance_type::lookup(&spec.instance_type).is_none() {
            // RunInstances' own text for an unknown type (moto InvalidInstanceTypeError).
            return Err(Ec2Error::new(
                "InvalidParameterValue",
                format!("Invalid value '{}' for InstanceType.", spec.instance_type),
            ));
        }
        let subnet_id = match &spec.subnet_id {
            Some(id) => {
                if !self.subnets.contains_key(id) {
                    return Err(Ec2Error::subnet_not_found(id));
                }
                id.clone()
            }
            None => self
                .subnets
                .values()
                .find(|s| s.availability_zone == spec.availability_zone)
                .map(|s| s.id.clone())
                .ok_or_else(|| {
                    Ec2Error::new(
                        "InvalidParameterValue",
                        format!("Invalid Availability Zone ({})", spec.availability_zone),
                    )
                })?,
        };
        let groups = if spec.security_groups.is_empty() {
            self.default_security_group().map(|g| vec![g.to_string()]).unwrap_or_default()
        } else {
            spec.security_groups.clone()
        };
        let instance_id = self.ids.id("i-");
        let eni_id = self.create_eni(&subnet_id, String::new(), groups, None, 0, 0, Tags::new())?;
        let now = now();
        let attachment_id = self.ids.id("eni-attach-");
        let eni = self.enis.get_mut(&eni_id).ok_or_else(|| Ec2Error::eni_not_found(&eni_id))?;
        eni.attachment = Some(Attachment {
            id: attachment_id,
            instance_id: instance_id.clone(),
            device_index: 0,
            network_card_index: 0,
            attach_time: now.clone(),
            delete_on_termination: true,
        });
        let (private_ip, availability_zone) = (eni.private_ip, eni.availability_zone.clone());
        let instance = Instance {
            id: instance_id.clone(),
            instance_type: spec.instance_type,
            availability_zone,
            subnet_id,
            vpc_id: self.vpc.id.clone(),
            image_id: spec.image_id.unwrap_or_else(|| DEFAULT_IMAGE_ID.into()),
            primary_eni: eni_id,
            private_ip,
            reservation_id: self.ids.id("r-"),
            launch_time: now,
            tags: spec.tags,
            metadata_options: spec.metadata_options,
            iam_instance_profile: spec.iam_instance_profile,
        };
        Ok(self.instances.entry(instance_id).or_insert(instance))
    }

    /// Removes an instance, deleting the ENIs marked delete-on-termination, detaching the rest
    /// and giving their addresses back.
    pub fn terminate_instance(&mut self, instance_id: &str) -> Result<Instance> {
        let instance =
            self.instances.remove(instance_id).ok_or_else(|| Ec2Error::instance_not_found(&[instance_id]))?;
        let attached: Vec<String> = self
            .enis
            .values()
            .filter(|e| e.instance_id() == Some(instance_id))
            .map(|e| e.id.clone())
            .collect();
        for id in attached {
            let delete = self
                .enis
                .get(&id)
                .and_then(|e| e.attachment.as_ref())
                .is_some_and(|a| a.delete_on_termination);
            if delete {
                self.remove_eni(&id);
            } else if let Some(eni) = self.enis.get_mut(&id) {
                eni.attachment = None;
            }
        }
        Ok(instance)
    }

    /// An instance by id.
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.get(id)
    }

    /// The instance whose primary address is `ip` (how `cloud` maps a node IP to its instance).
    pub fn instance_by_ip(&self, ip: Ipv4Addr) -> Option<&Instance> {
        self.instances.values().find(|i| i.private_ip == ip)
    }

    /// The instance holding `ip` on any of its ENIs, as a primary, secondary or prefix address
    /// (which node a pod IP lives on).
    pub fn instance_holding(&self, ip: Ipv4Addr) -> Option<&Instance> {
        self.enis
            .values()
            .find(|e| e.private_ips().any(|a| a == ip) || e.prefixes.iter().any(|p| p.contains(&ip)))
            .and_then(|e| e.instance_id())
            .and_then(|id| self.instances.get(id))
    }

    /// An ENI by id.
    pub fn eni(&self, id: &str) -> Option<&NetworkInterface> {
        self.enis.get(id)
    }

    /// The ENIs attached to an instance, by device index.
    pub fn instance_enis(&self, instance_id: &str) -> Vec<&NetworkInterface> {
        let mut enis: Vec<_> = self.enis.values().filter(|e| e.instance_id() == Some(instance_id)).collect();
        enis.sort_by_key(|e| e.attachment.as_ref().map(|a| a.device_index));
        enis
    }

    /// A subnet by id.
    pub fn subnet(&self, id: &str) -> Option<&Subnet> {
        self.subnets.get(id)
    }

    /// IPv4 slots an ENI may use: its instance type's limit once attached, else the largest.
    pub fn eni_ipv4_limit(&self, eni: &NetworkInterface) -> usize {
        let limit = eni
            .instance_id()
            .and_then(|id| self.instances.get(id))
            .and_then(Instance::type_info)
            .map_or_else(instance_type::max_ipv4_per_eni, |t| t.ipv4_per_eni);
        limit as usize
    }

    /// Creates an ENI in a subnet with `secondary` extra addresses and `prefixes` /28s, all or
    /// nothing. Limits: the slots must fit the largest ENI (an unattached ENI has no type yet).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_eni(
        &mut self,
        subnet_id: &str,
        description: String,
        security_groups: Vec<String>,
        primary: Option<Ipv4Addr>,
        secondary: usize,
        prefixes: usize,
        tags: Tags,
    ) -> Result<String> {
        if 1 + secondary + prefixes > instance_type::max_ipv4_per_eni() as usize {
            return Err(Ec2Error::private_ip_limit());
        }
        let subnet = self.subnets.get_mut(subnet_id).ok_or_else(|| Ec2Error::subnet_not_found(subnet_id))?;
        let mut granted = Grant::default();
        let result = (|| {
            let private_ip = match primary {
                Some(ip) => {
                    if !subnet.is_assignable(ip) {
                        return Err(Ec2Error::invalid_address(&ip.to_string()));
                    }
                    if !subnet.allocate_exact(ip) {
                        return Err(Ec2Error::address_in_use());
                    }
                    ip
                }
                None => subnet.allocate().ok_or_else(Ec2Error::insufficient_addresses)?,
            };
            granted.ips.push(private_ip);
            granted.take(subnet, secondary, prefixes)?;
            Ok(private_ip)
        })();
        let private_ip = match result {
            Ok(ip) => ip,
            Err(e) => {
                granted.give_back(subnet);
                return Err(e);
            }
        };
        let availability_zone = subnet.availability_zone.clone();
        let id = self.ids.id("eni-");
        let mac = self.ids.mac();
        let eni = NetworkInterface {
            id: id.clone(),
            subnet_id: subnet_id.into(),
            vpc_id: self.vpc.id.clone(),
            availability_zone,
            description,
            mac,
            private_ip,
            secondary_ips: granted.ips[1..].to_vec(),
            prefixes: granted.prefixes,
            security_groups,
            source_dest_check: true,
            attachment: None,
            tags,
        };
        self.enis.insert(id.clone(), eni);
        Ok(id)
    }

    /// Removes an ENI and gives its addresses back to its subnet.
    pub(crate) fn remove_eni(&mut self, id: &str) -> Option<NetworkInterface> {
        let eni = self.enis.remove(id)?;
        if let Some(subnet) = self.subnets.get_mut(&eni.subnet_id) {
            for ip in eni.private_ips() {
                subnet.release(ip);
            }
            for p in &eni.prefixes {
                subnet.release_prefix(*p);
            }
        }
        Some(eni)
    }

    /// Adds addresses to an ENI (AssignPrivateIpAddresses), all or nothing, and returns what
    /// was added. `exact` are asked-for addresses; `count` and `prefixes` are picked lowest-first.
    pub(crate) fn assign(
        &mut self,
        eni_id: &str,
        exact: &[Ipv4Addr],
        count: usize,
        prefixes: usize,
    ) -> Result<Grant> {
        let eni = self.enis.get(eni_id).ok_or_else(|| Ec2Error::eni_not_found(eni_id))?;
        let limit = self.eni_ipv4_limit(eni);
        if eni.ipv4_slots() + exact.len() + count + prefixes > limit {
            return Err(Ec2Error::private_ip_limit());
        }
        let subnet_id = eni.subnet_id.clone();
        let subnet =
            self.subnets.get_mut(&subnet_id).ok_or_else(|| Ec2Error::subnet_not_found(&subnet_id))?;
        let mut granted = Grant::default();
        let result = (|| {
            for ip in exact {
                if !subnet.is_assignable(*ip) {
                    return Err(Ec2Error::invalid_address(&ip.to_string()));
                }
                if !subnet.allocate_exact(*ip) {
                    return Err(Ec2Error::address_in_use());
                }
                granted.ips.push(*ip);
            }
            granted.take(subnet, count, prefixes)
        })();
        if let Err(e) = result {
            granted.give_back(subnet);
            return Err(e);
        }
        let eni = self.enis.get_mut(eni_id).ok_or_else(|| Ec2Error::eni_not_found(eni_id))?;
        eni.secondary_ips.extend(&granted.ips);
        eni.prefixes.extend(&granted.prefixes);
        Ok(granted)
    }

    /// Removes secondary addresses and prefixes from an ENI (UnassignPrivateIpAddresses).
    pub(crate) fn unassign(&mut self, eni_id: &str, ips: &[Ipv4Addr], prefixes: &[Ipv4Net]) -> Result<()> {
        let eni = self.enis.get(eni_id).ok_or_else(|| Ec2Error::eni_not_found(eni_id))?;
        if let Some(ip) = ips.iter().find(|ip| **ip == eni.private_ip) {
            return Err(Ec2Error::primary_unassign(*ip));
        }
        let missing: Vec<Ipv4Addr> = ips
            .iter()
            .filter(|ip| !eni.secondary_ips.contains(ip))
            .copied()
            .chain(prefixes.iter().filter(|p| !eni.prefixes.contains(p)).map(|p| p.network()))
            .collect();
        if !missing.is_empty() {
            return Err(Ec2Error::not_assigned(eni_id, &missing));
        }
        let subnet_id = eni.subnet_id.clone();
        if let Some(eni) = self.enis.get_mut(eni_id) {
            eni.secondary_ips.retain(|ip| !ips.contains(ip));
            eni.prefixes.retain(|p| !prefixes.contains(p));
        }
        if let Some(subnet) = self.subnets.get_mut(&subnet_id) {
            for ip in ips {
                subnet.release(*ip);
            }
            for p in prefixes {
                subnet.release_prefix(*p);
            }
        }
        Ok(())
    }

    /// Attaches an ENI to an instance at `device_index`, enforcing the instance type's ENI and
    /// per-ENI address limits. Returns the attachment id.
    pub(crate) fn attach(&mut self, eni_id: &str, instance_id: &str, device_index: u32) -> Result<String> {
        let eni = self.enis.get(eni_id).ok_or_else(|| Ec2Error::eni_not_found(eni_id))?;
        let instance =
            self.instances.get(instance_id).ok_or_else(|| Ec2Error::instance_not_found(&[instance_id]))?;
        if eni.attachment.is_some() {
            return Err(Ec2Error::eni_attached(eni_id));
        }
        if eni.availability_zone != instance.availability_zone {
            // (composed) AWS refuses cross-AZ attachment with InvalidParameterCombination.
            return Err(Ec2Error::invalid_combination(
                "You may not attach a network interface to an instance if they are not in the same availability zone",
            ));
        }
        let attached = self.instance_enis(instance_id);
        if attached.iter().any(|e| e.attachment.as_ref().map(|a| a.device_index) == Some(device_index)) {
            return Err(Ec2Error::device_index_in_use(instance_id, device_index));
        }
        let info = instance.type_info();
        let max_enis = info.map_or(1, |t| t.max_enis) as usize;
        if attached.len() + 1 > max_enis {
            return Err(Ec2Error::attachment_limit(attached.len() + 1, &instance.instance_type));
        }
        if eni.ipv4_slots() > info.map_or(1, |t| t.ipv4_per_eni) as usize {
            return Err(Ec2Error::private_ip_limit());
        }
        let attachment_id = self.ids.id("eni-attach-");
        let eni = self.enis.get_mut(eni_id).ok_or_else(|| Ec2Error::eni_not_found(eni_id))?;
        eni.attachment = Some(Attachment {
            id: attachment_id.clone(),
            instance_id: instance_id.into(),
            device_index,
            network_card_index: 0,
            attach_time: now(),
            delete_on_termination: false,
        });
        Ok(attachment_id)
    }

    /// The ENI holding an attachment id.
    pub(crate) fn eni_by_attachment(&self, attachment_id: &str) -> Option<&NetworkInterface> {
        self.enis.values().find(|e| e.attachment.as_ref().is_some_and(|a| a.id == attachment_id))
    }

    /// Detaches by attachment id; the primary ENI cannot be detached.
    pub(crate) fn detach(&mut self, attachment_id: &str) -> Result<()> {
        let eni_id = self
            .eni_by_attachment(attachment_id)
            .ok_or_else(|| Ec2Error::attachment_not_found(attachment_id))?
            .id
            .clone();
        let eni = self.enis.get_mut(&eni_id).ok_or_else(|| Ec2Error::eni_not_found(&eni_id))?;
        if eni.attachment.as_ref().is_some_and(|a| a.device_index == 0) {
            return Err(Ec2Error::primary_detach());
        }
        eni.attachment = None;
        Ok(())
    }

    /// Deletes an unattached ENI.
    pub(crate) fn delete_eni(&mut self, eni_id: &str) -> Result<()> {
        let eni = self.enis.get(eni_id).ok_or_else(|| Ec2Error::eni_not_found(eni_id))?;
        if eni.attachment.is_some() {
            return Err(Ec2Error::eni_in_use(eni_id));
        }
        self.remove_eni(eni_id);
        Ok(())
    }

    /// The tags of a resource, by id prefix; the error is the resource's own not-found.
    pub(crate) fn tags_mut(&mut self, id: &str) -> Result<&mut Tags> {
        let found = if id.starts_with("eni-") {
            self.enis.get_mut(id).map(|e| &mut e.tags)
        } else if id.starts_with("i-") {
            self.instances.get_mut(id).map(|i| &mut i.tags)
        } else if id.starts_with("subnet-") {
            self.subnets.get_mut(id).map(|s| &mut s.tags)
        } else if id == self.vpc.id {
            Some(&mut self.vpc.tags)
        } else {
            None
        };
        found.ok_or_else(|| {
            if id.starts_with("eni-") {
                Ec2Error::eni_not_found(id)
            } else if id.starts_with("i-") {
                Ec2Error::instance_not_found(&[id])
            } else if id.starts_with("subnet-") {
                Ec2Error::subnet_not_found(id)
            } else if id.starts_with("vpc-") {
                Ec2Error::vpc_not_found(id)
            } else {
                Ec2Error::invalid_id(id)
            }
        })
    }

    /// The private DNS name EC2 gives an address in this region.
    pub fn private_dns_name(&self, ip: Ipv4Addr) -> String {
        let dashed = ip.to_string().replace('.', "-");
        if self.region == "us-east-1" {
            format!("ip-{dashed}.ec2.internal")
        } else {
            format!("ip-{dashed}.{}.compute.internal", self.region)
        }
    }

    /// A fresh id with `prefix` (for callers that mint ids of their own, e.g. instance profiles).
    pub fn new_id(&mut self, prefix: &str) -> String {
        self.ids.id(prefix)
    }
}

/// Addresses and prefixes taken from a subnet in one operation, so a failure can give them back.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Grant {
    /// Addresses taken.
    pub ips: Vec<Ipv4Addr>,
    /// Prefixes taken.
    pub prefixes: Vec<Ipv4Net>,
}

// === impl Grant ===

impl Grant {
    fn take(&mut self, subnet: &mut Subnet, count: usize, prefixes: usize) -> Result<()> {
        if (subnet.available() as usize) < count {
            return Err(Ec2Error::insufficient_addresses());
        }
        for _ in 0..count {
            let ip = subnet.allocate().ok_or_else(Ec2Error::insufficient_addresses)?;
            self.ips.push(ip);
        }
        for _ in 0..prefixes {
            let p = subnet.allocate_prefix().ok_or_else(Ec2Error::insufficient_cidr_blocks)?;
            self.prefixes.push(p);
        }
        Ok(())
    }

    fn give_back(&self, subnet: &mut Subnet) {
        for ip in &self.ips {
            subnet.release(*ip);
        }
        for p in &self.prefixes {
            subnet.release_prefix(*p);
        }
    }
}

/// The Availability Zone id AWS pairs with a zone name: `use1-az1` for `us-east-1a`. The real
/// mapping differs per account; this one is stable, which is all the lab needs.
fn az_id(region: &str, az: &str) -> String {
    let mut parts = region.split('-');
    let short: String = parts.next().into_iter().chain(parts.next().and_then(|p| p.get(..1))).collect();
    let digit = region.rsplit('-').next().unwrap_or("1");
    let n = az.chars().last().map_or(1, |c| u32::from(c).saturating_sub(u32::from('a')) + 1);
    format!("{short}{digit}-az{n}")
}

/// The current time as EC2 prints it: `2026-08-20T15:22:15.000Z`.
pub(crate) fn now() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S.000Z").to_string()
}
