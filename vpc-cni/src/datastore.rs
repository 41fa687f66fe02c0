//! ipamd's datastore (pkg/ipamd/datastore/data_store.go): the node's ENIs, the addresses or /28
//! prefixes on each, which pod holds which address, and the `ipam.json` checkpoint.
//!
//! Why its own module: which address a pod gets and when a freed one may be reused are the
//! questions users ask about IP churn, and they are answered here without any EC2 call. Unlike
//! upstream (Go maps, random order) every walk is in a fixed order, lowest device number first,
//! then lowest address, so the lab hands out the same addresses on every run.
//!
//! Times are `tokio::time::Instant`s so tests run under paused time.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use crate::log::Logger;

/// `CheckpointFormatVersion`.
pub const CHECKPOINT_VERSION: &str = "vpc-cni-ipam/1";
/// The checkpoint's file name inside the state directory.
pub const CHECKPOINT_FILE: &str = "ipam.json";
/// Addresses per /28 prefix (`GetPrefixDelegationDefaults`).
pub const IPS_PER_PREFIX: u32 = 16;
/// `RT_TABLE_MAIN`: the route table of the primary ENI (`CalculateRouteTableId`).
pub const RT_TABLE_MAIN: i32 = 254;

/// `ErrNoAvailableIPInDataStore`.
pub const ERR_NO_AVAILABLE_IP: &str = "AssignPodIPAddress: no available IP/Prefix addresses";
/// `ErrUnknownPod`.
pub const ERR_UNKNOWN_POD: &str = "datastore: unknown pod";

/// The CNI's primary key of an allocation: (network name, container id, ifname).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IpamKey {
    /// `networkName` (the CNI config's name, `aws-cni`).
    #[serde(rename = "networkName")]
    pub network_name: String,
    /// `containerID` (the sandbox id).
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// `ifName`.
    #[serde(rename = "ifName")]
    pub if_name: String,
}

impl std::fmt::Display for IpamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.network_name, self.container_id, self.if_name)
    }
}

/// Who the allocation is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpamMetadata {
    /// `k8sPodNamespace`.
    #[serde(rename = "k8sPodNamespace", default, skip_serializing_if = "String::is_empty")]
    pub pod_namespace: String,
    /// `k8sPodName`.
    #[serde(rename = "k8sPodName", default, skip_serializing_if = "String::is_empty")]
    pub pod_name: String,
    /// `interfacesCount` (always 1 here; kept for the file's shape).
    #[serde(rename = "interfacesCount", default, skip_serializing_if = "is_zero")]
    pub interfaces_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One row of the checkpoint (`CheckpointEntry`, IPAMKey inlined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointEntry {
    /// The key.
    #[serde(flatten)]
    pub key: IpamKey,
    /// The address.
    pub ipv4: Ipv4Addr,
    /// Unix nanoseconds of the assignment.
    #[serde(rename = "allocationTimestamp", default)]
    pub allocation_timestamp: i64,
    /// The pod.
    #[serde(default)]
    pub metadata: IpamMetadata,
}

/// The checkpoint file (`CheckpointData`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// `vpc-cni-ipam/1`.
    pub version: String,
    /// The allocations.
    pub allocations: Vec<CheckpointEntry>,
}

/// Why the checkpoint could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// File I/O.
    #[error("checkpoint {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Not JSON of the right shape.
    #[error("failed ipam state recovery from backing store: {0}")]
    Parse(#[source] serde_json::Error),
    /// Another version.
    #[error("failed ipam state recovery due to unexpected checkpointVersion: {0}/{CHECKPOINT_VERSION}")]
    Version(String),
}

/// A pod's address on an ENI.
#[derive(Debug, Clone, Default)]
pub struct Address {
    /// Who holds it, if anyone.
    pub key: Option<IpamKey>,
    /// The pod.
    pub metadata: IpamMetadata,
    /// Wall-clock time of assignment.
    pub assigned_at: Option<jiff::Timestamp>,
    /// When it was last released (for the cooldown).
    pub unassigned_at: Option<Instant>,
}

/// A secondary address (/32) or a delegated /28 on an ENI.
#[derive(Debug, Clone)]
pub struct Cidr {
    /// The block.
    pub cidr: Ipv4Net,
    /// A /28 prefix rather than a secondary address.
    pub is_prefix: bool,
    /// Addresses ever handed out of it (assigned or cooling down).
    pub addresses: BTreeMap<Ipv4Addr, Address>,
}

/// One ENI in the datastore.
#[derive(Debug, Clone)]
pub struct EniState {
    /// `eni-…`.
    pub id: String,
    /// Device index (0 = primary).
    pub device_number: u32,
    /// The attachment (to detach it when freeing).
    pub attachment_id: Option<String>,
    /// The ENI's own address (never a pod's).
    pub primary_ip: Ipv4Addr,
    /// Its subnet.
    pub subnet_id: String,
    /// When ipamd learned of it (`minENILifeTime`).
    pub created: Instant,
    /// Secondary addresses and prefixes, by block.
    pub cidrs: BTreeMap<Ipv4Net, Cidr>,
}

// === impl Cidr ===

impl Cidr {
    fn size(&self) -> u32 {
        if self.is_prefix { 1 << (32 - u32::from(self.cidr.prefix_len())) } else { 1 }
    }

    fn assigned(&self) -> u32 {
        self.addresses.values().filter(|a| a.key.is_some()).count() as u32
    }

    fn cooling(&self, cooldown: Duration, now: Instant) -> u32 {
        self.addresses.values().filter(|a| a.key.is_none() && in_cooldown(a, cooldown, now)).count() as u32
    }
}

fn in_cooldown(a: &Address, cooldown: Duration, now: Instant) -> bool {
    a.unassigned_at.is_some_and(|t| now.saturating_duration_since(t) <= cooldown)
}

// === impl EniState ===

impl EniState {
    /// The route table of the ENI's pods (`CalculateRouteTableId`, network card 0).
    pub fn route_table_id(&self) -> i32 {
        if self.device_number == 0 { RT_TABLE_MAIN } else { self.device_number as i32 + 1 }
    }

    fn is_primary(&self) -> bool {
        self.device_number == 0
    }

    fn assigned(&self) -> u32 {
        self.cidrs.values().map(Cidr::assigned).sum()
    }
}

/// `DataStoreStats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Addresses usable by pods (in the current mode's blocks).
    pub total_ips: u32,
    /// /28 prefixes held.
    pub total_prefixes: u32,
    /// Addresses held by pods.
    pub assigned_ips: u32,
    /// Free addresses still cooling down.
    pub cooldown_ips: u32,
    /// Prefixes with no pod on them.
    pub free_prefixes: u32,
}

// === impl Stats ===

impl Stats {
    /// `AvailableAddresses`: total − assigned (cooling addresses count as available, as upstream).
    pub fn available(&self) -> u32 {
        self.total_ips.saturating_sub(self.assigned_ips)
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Total IPs/Prefixes = {}/{}, AssignedIPs/CooldownIPs: {}/{}",
            self.total_ips, self.total_prefixes, self.assigned_ips, self.cooldown_ips
        )
    }
}

/// A pod's allocation, as `/v1/pods` and the checkpoint see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// The key.
    pub key: IpamKey,
    /// The pod.
    pub metadata: IpamMetadata,
    /// The address.
    pub ip: Ipv4Addr,
    /// The ENI's device number.
    pub device_number: u32,
    /// The ENI.
    pub eni_id: String,
}

/// An address given to a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    /// The address.
    pub ip: Ipv4Addr,
    /// Its ENI's device number.
    pub device_number: u32,
    /// Its route table.
    pub route_table_id: i32,
}

/// The datastore.
#[derive(Debug)]
pub struct DataStore {
    pd: bool,
    cooldown: Duration,
    min_eni_lifetime: Duration,
    checkpoint: PathBuf,
    log: Arc<Logger>,
    enis: BTreeMap<u32, EniState>,
}

// === impl DataStore ===

impl DataStore {
    /// An empty datastore whose checkpoint is `checkpoint`. `cooldown` is `IP_COOLDOWN_PERIOD`
    /// and `min_eni_lifetime` upstream's `minENILifeTime` (1 min), both already scaled.
    pub fn new(
        pd: bool,
        cooldown: Duration,
        min_eni_lifetime: Duration,
        checkpoint: PathBuf,
        log: Arc<Logger>,
    ) -> Self {
        Self { pd, cooldown, min_eni_lifetime, checkpoint, log, enis: BTreeMap::new() }
    }

    /// The checkpoint's path.
    pub fn checkpoint_path(&self) -> &Path {
        &self.checkpoint
    }

    /// Whether prefix delegation is on.
    pub fn prefix_delegation(&self) -> bool {
        self.pd
    }

    /// The ENIs, by device number.
    pub fn enis(&self) -> impl Iterator<Item = &EniState> {
        self.enis.values()
    }

    /// How many ENIs.
    pub fn eni_count(&self) -> u32 {
        self.enis.len() as u32
    }

    /// `AddENI`.
    pub fn add_eni(
        &mut self,
        id: &str,
        device_number: u32,
        attachment_id: Option<String>,
        primary_ip: Ipv4Addr,
        subnet_id: &str,
        now: Instant,
    ) {
        if self.enis.values().any(|e| e.id == id) {
            return;
        }
        self.log.debug("datastore/data_store.go:472", format!("DataStore add an ENI {id}"));
        self.enis.insert(
            device_number,
            EniState {
                id: id.into(),
                device_number,
                attachment_id,
                primary_ip,
                subnet_id: subnet_id.into(),
                created: now,
                cidrs: BTreeMap::new(),
            },
        );
    }

    fn eni_mut(&mut self, id: &str) -> Option<&mut EniState> {
        self.enis.values_mut().find(|e| e.id == id)
    }

    /// `AddIPv4CidrToStore`: a secondary address (`/32`) or a prefix.
    pub fn add_cidr(&mut self, eni_id: &str, cidr: Ipv4Net, is_prefix: bool) {
        let log = self.log.clone();
        log.info("datastore/data_store.go:535", format!("Adding {cidr} to DS for {eni_id}"));
        let Some(eni) = self.eni_mut(eni_id) else {
            log.info("datastore/data_store.go:538", "unknown ENI");
            return;
        };
        if eni.cidrs.contains_key(&cidr) {
            log.info("datastore/data_store.go:544", "IP already in DS");
            return;
        }
        eni.cidrs.insert(cidr, Cidr { cidr, is_prefix, addresses: BTreeMap::new() });
        log.info(
            "datastore/data_store.go:564",
            format!("Added ENI({eni_id})'s IP/Prefix {cidr} to datastore"),
        );
    }

    /// `DelIPv4CidrFromStore` without force: refuses a block with a pod on it.
    pub fn del_cidr(&mut self, eni_id: &str, cidr: Ipv4Net) -> bool {
        let log = self.log.clone();
        let Some(eni) = self.eni_mut(eni_id) else { return false };
        match eni.cidrs.get(&cidr) {
            Some(c) if c.assigned() == 0 => {
                eni.cidrs.remove(&cidr);
                log.info(
                    "datastore/data_store.go:613",
                    format!("Deleted ENI({eni_id})'s IP/Prefix {cidr} from datastore"),
                );
                true
            }
            Some(_) => {
                log.warn(
                    "ipamd/ipamd.go:917",
                    format!(
                        "Failed to delete Cidr {cidr} on ENI {eni_id} from datastore for network card 0: datastore: IP is used and can not be deleted"
                    ),
                );
                false
            }
            None => false,
        }
    }

    fn counts(&self, c: &Cidr) -> bool {
        c.is_prefix == self.pd
    }

    /// `GetIPStats("4")`.
    pub fn stats(&self, now: Instant) -> Stats {
        let mut s = Stats::default();
        for eni in self.enis.values() {
            for c in eni.cidrs.values() {
                if c.is_prefix {
                    s.total_prefixes += 1;
                    if c.assigned() == 0 {
                        s.free_prefixes += 1;
                    }
                }
                if self.counts(c) {
                    s.total_ips += c.size();
                    s.assigned_ips += c.assigned();
                    s.cooldown_ips += c.cooling(self.cooldown, now);
                }
            }
        }
        s
    }

    /// The allocation of `key`, if any.
    pub fn find(&self, key: &IpamKey) -> Option<Assigned> {
        self.enis.values().find_map(|eni| {
            eni.cidrs.values().find_map(|c| {
                c.addresses.iter().find(|(_, a)| a.key.as_ref() == Some(key)).map(|(ip, _)| Assigned {
                    ip: *ip,
                    device_number: eni.device_number,
                    route_table_id: eni.route_table_id(),
                })
            })
        })
    }

    /// `AssignPodIPv4Address`: the key's existing address (a repeated ADD), else the first free
    /// address out of cooldown, lowest device then lowest address. Writes the checkpoint.
    pub fn assign(
        &mut self,
        key: &IpamKey,
        metadata: &IpamMetadata,
        now: Instant,
    ) -> Result<Assigned, String> {
        let log = self.log.clone();
        let stats = self.stats(now);
        log.debug(
            "datastore/data_store.go:786",
            format!(
                "AssignPodIPv4Address: IP address pool stats: total {}, assigned {}",
                stats.total_ips, stats.assigned_ips
            ),
        );
        if let Some(a) = self.find(key) {
            log.info(
                "datastore/data_store.go:789",
                format!("AssignPodIPv4Address: duplicate pod assign for sandbox {key}"),
            );
            return Ok(a);
        }
        let (pd, cooldown) = (self.pd, self.cooldown);
        let mut found = None;
        'enis: for eni in self.enis.values() {
            for c in eni.cidrs.values() {
                if c.is_prefix != pd {
                    continue;
                }
                if let Some(ip) = free_address(c, cooldown, now) {
                    found = Some((eni.device_number, c.cidr, ip));
                    break 'enis;
                }
            }
            log.debug(
                "datastore/data_store.go:854",
                format!("AssignPodIPv4Address: ENI {} does not have available addresses", eni.id),
            );
        }
        let Some((device, cidr, ip)) = found else {
            log.error("datastore/data_store.go:858", "DataStore has no available IP/Prefix addresses");
            return Err(ERR_NO_AVAILABLE_IP.into());
        };
        let Some(eni) = self.enis.get_mut(&device) else { return Err(ERR_NO_AVAILABLE_IP.into()) };
        let route_table_id = eni.route_table_id();
        let Some(c) = eni.cidrs.get_mut(&cidr) else { return Err(ERR_NO_AVAILABLE_IP.into()) };
        let addr = c.addresses.entry(ip).or_default();
        addr.key = Some(key.clone());
        addr.metadata = metadata.clone();
        addr.assigned_at = Some(jiff::Timestamp::now());
        log.info(
            "datastore/data_store.go:864",
            format!(
                "assignPodIPAddressUnsafe: Assign IP {ip} to sandbox {key} with metadata {{K8SPodNamespace:{} K8SPodName:{} InterfacesCount:1}}",
                metadata.pod_namespace, metadata.pod_name
            ),
        );
        if let Err(e) = self.write_checkpoint() {
            log.warn("datastore/data_store.go:841", format!("Failed to update backing store: {e}"));
            // Unwind, as upstream does.
            if let Some(c) = self.enis.get_mut(&device).and_then(|e| e.cidrs.get_mut(&cidr)) {
                c.addresses.remove(&ip);
            }
            return Err(e.to_string());
        }
        Ok(Assigned { ip, device_number: device, route_table_id })
    }

    /// `UnassignPodIPAddress`: frees the key's address, which then cools down. `None` for an
    /// unknown key (upstream's `ErrUnknownPod`).
    pub fn unassign(&mut self, key: &IpamKey, now: Instant) -> Option<Assigned> {
        let log = self.log.clone();
        let stats = self.stats(now);
        log.debug(
            "datastore/data_store.go:1242",
            format!(
                "UnassignPodIPAddress: IP address pool stats: total {}, assigned {}, sandbox {key}",
                stats.total_ips, stats.assigned_ips
            ),
        );
        let mut hit = None;
        for eni in self.enis.values_mut() {
            let rt = eni.route_table_id();
            for c in eni.cidrs.values_mut() {
                if let Some((ip, a)) = c.addresses.iter_mut().find(|(_, a)| a.key.as_ref() == Some(key)) {
                    log.info(
                        "datastore/data_store.go:885",
                        format!("unassignPodIPAddressUnsafe: Unassign IP {ip} from sandbox {key}"),
                    );
                    a.key = None;
                    a.metadata = IpamMetadata::default();
                    a.unassigned_at = Some(now);
                    hit = Some(Assigned { ip: *ip, device_number: eni.device_number, route_table_id: rt });
                    break;
                }
            }
            if hit.is_some() {
                break;
            }
        }
        let Some(a) = hit else {
            log.warn(
                "datastore/data_store.go:1255",
                format!("UnassignPodIPAddress: Failed to find sandbox {key}"),
            );
            return None;
        };
        if let Err(e) = self.write_checkpoint() {
            log.warn("datastore/data_store.go:602", format!("Unable to update backing store: {e}"));
        }
        log.debug(
            "datastore/data_store.go:1272",
            format!("IP {} entering cooldown period of {:?}", a.ip, self.cooldown),
        );
        log.info(
            "datastore/data_store.go:1282",
            format!(
                "UnassignPodIPAddress: sandbox {key}'s ipAddr {}, DeviceNumber {}",
                a.ip, a.device_number
            ),
        );
        Some(a)
    }

    /// Every allocation, in device then address order.
    pub fn allocations(&self) -> Vec<Allocation> {
        let mut out = Vec::new();
        for eni in self.enis.values() {
            for c in eni.cidrs.values() {
                for (ip, a) in &c.addresses {
                    if let Some(key) = &a.key {
                        out.push(Allocation {
                            key: key.clone(),
                            metadata: a.metadata.clone(),
                            ip: *ip,
                            device_number: eni.device_number,
                            eni_id: eni.id.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// The blocks of an ENI with no pod on them, in address order (`FindFreeableCidrs`).
    pub fn freeable_cidrs(&self, eni_id: &str) -> Vec<(Ipv4Net, bool)> {
        self.enis
            .values()
            .find(|e| e.id == eni_id)
            .map(|e| e.cidrs.values().filter(|c| c.assigned() == 0).map(|c| (c.cidr, c.is_prefix)).collect())
            .unwrap_or_default()
    }

    /// ENIs that can take more blocks, lowest device first (`GetAllocatableENIs`).
    pub fn allocatable_enis(&self, max_per_eni: u32) -> Vec<(String, u32)> {
        self.enis
            .values()
            .filter(|e| (e.cidrs.len() as u32) < max_per_eni)
            .map(|e| (e.id.clone(), e.cidrs.len() as u32))
            .collect()
    }

    /// Whether some non-primary ENI has no pods (`CheckFreeableENIexists`).
    pub fn freeable_eni_exists(&self) -> bool {
        self.enis.values().any(|e| !e.is_primary() && e.assigned() == 0)
    }

    /// `RemoveUnusedENIFromStore`: takes out the highest-numbered ENI that is not primary, not
    /// too young, has no address cooling down or held, and is not needed for the warm or
    /// minimum targets; returns it.
    pub fn remove_unused_eni(
        &mut self,
        warm_ip_target: u32,
        minimum_ip_target: u32,
        warm_prefix_target: u32,
        now: Instant,
    ) -> Option<EniState> {
        let log = self.log.clone();
        let mut chosen = None;
        for eni in self.enis.values().rev() {
            let why = if eni.is_primary() {
                Some("it is primary".to_string())
            } else if now.saturating_duration_since(eni.created) < self.min_eni_lifetime {
                Some("it is too young".to_string())
            } else if eni.cidrs.values().any(|c| c.cooling(self.cooldown, now) > 0) {
                Some("has IPs in cooling".to_string())
            } else if eni.assigned() > 0 {
                Some("it has pods assigned".to_string())
            } else if warm_ip_target != 0
                && self.other_free_ips(&eni.id) < self.round_to_prefixes(warm_ip_target)
            {
                Some(format!("it is required for WARM_IP_TARGET: {warm_ip_target}"))
            } else if minimum_ip_target != 0
                && self.other_total_ips(&eni.id) < self.round_to_prefixes(minimum_ip_target)
            {
                Some(format!("it is required for MINIMUM_IP_TARGET: {minimum_ip_target}"))
            } else if self.pd
                && warm_prefix_target != 0
                && self.other_free_prefixes(&eni.id) < warm_prefix_target
            {
                Some(format!("it is required for WARM_PREFIX_TARGET: {warm_prefix_target}"))
            } else {
                None
            };
            match why {
                Some(why) => log.debug(
                    "datastore/data_store.go:1045",
                    format!("ENI {} cannot be deleted because {why}", eni.id),
                ),
                None => {
                    log.debug(
                        "datastore/data_store.go:1089",
                        format!("getDeletableENI: found a deletable ENI {}", eni.id),
                    );
                    chosen = Some(eni.device_number);
                    break;
                }
            }
        }
        let eni = self.enis.remove(&chosen?)?;
        let stats = self.stats(now);
        log.info(
            "datastore/data_store.go:1161",
            format!(
                "RemoveUnusedENIFromStore {}: IP/Prefix address pool stats: free {} addresses, total: {}, assigned: {}, total prefixes: {}",
                eni.id,
                eni.cidrs.len(),
                stats.total_ips,
                stats.assigned_ips,
                stats.total_prefixes
            ),
        );
        Some(eni)
    }

    fn round_to_prefixes(&self, ips: u32) -> u32 {
        if self.pd { ips.div_ceil(IPS_PER_PREFIX) * IPS_PER_PREFIX } else { ips }
    }

    fn others<'a>(&'a self, eni_id: &'a str) -> impl Iterator<Item = &'a Cidr> + 'a {
        self.enis
            .values()
            .filter(move |e| e.id != eni_id)
            .flat_map(|e| e.cidrs.values())
            .filter(|c| self.counts(c))
    }

    fn other_free_ips(&self, eni_id: &str) -> u32 {
        self.others(eni_id).map(|c| c.size() - c.assigned()).sum()
    }

    fn other_total_ips(&self, eni_id: &str) -> u32 {
        self.others(eni_id).map(Cidr::size).sum()
    }

    fn other_free_prefixes(&self, eni_id: &str) -> u32 {
        self.enis
            .values()
            .filter(|e| e.id != eni_id)
            .flat_map(|e| e.cidrs.values())
            .filter(|c| c.assigned() == 0)
            .count() as u32
    }

    /// The checkpoint of the current allocations.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            version: CHECKPOINT_VERSION.into(),
            allocations: self
                .enis
                .values()
                .flat_map(|e| e.cidrs.values())
                .flat_map(|c| c.addresses.iter())
                .filter_map(|(ip, a)| {
                    a.key.as_ref().map(|key| CheckpointEntry {
                        key: key.clone(),
                        ipv4: *ip,
                        allocation_timestamp: a
                            .assigned_at
                            .map_or(0, |t| i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)),
                        metadata: a.metadata.clone(),
                    })
                })
                .collect(),
        }
    }

    /// Writes `ipam.json` atomically (temp file + rename), as upstream's `JSONFile.Checkpoint`.
    pub fn write_checkpoint(&self) -> Result<(), CheckpointError> {
        let path = &self.checkpoint;
        let io = |source| CheckpointError::Io { path: path.clone(), source };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let body = serde_json::to_vec(&self.checkpoint()).map_err(CheckpointError::Parse)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, body).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// `ReadBackingStore`: puts the checkpoint's allocations back on the addresses the ENIs
    /// hold now; allocations of addresses no longer on the instance are dropped with upstream's
    /// log line. A missing file is a fresh node. Rewrites the checkpoint.
    pub fn restore(&mut self) -> Result<(), CheckpointError> {
        let log = self.log.clone();
        log.info("datastore/data_store.go:352", "Begin ipam state recovery from backing store");
        let body = match std::fs::read(&self.checkpoint) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                log.debug(
                    "datastore/data_store.go:358",
                    "backing store doesn't exists, assuming bootstrap on a new node",
                );
                return Ok(());
            }
            Err(source) => return Err(CheckpointError::Io { path: self.checkpoint.clone(), source }),
        };
        let data: Checkpoint = serde_json::from_slice(&body).map_err(CheckpointError::Parse)?;
        if data.version != CHECKPOINT_VERSION {
            return Err(CheckpointError::Version(data.version));
        }
        for entry in data.allocations {
            let mut found = false;
            'enis: for eni in self.enis.values_mut() {
                for c in eni.cidrs.values_mut() {
                    if c.cidr.contains(&entry.ipv4) {
                        found = true;
                        let addr = c.addresses.entry(entry.ipv4).or_default();
                        if addr.key.is_some() {
                            break 'enis;
                        }
                        addr.key = Some(entry.key.clone());
                        addr.metadata = entry.metadata.clone();
                        addr.assigned_at =
                            jiff::Timestamp::from_nanosecond(i128::from(entry.allocation_timestamp)).ok();
                        log.debug(
                            "datastore/data_store.go:400",
                            format!("Recovered {} => {}/{}", entry.key, eni.id, entry.ipv4),
                        );
                        break 'enis;
                    }
                }
            }
            if !found {
                log.info(
                    "datastore/data_store.go:411",
                    format!(
                        "datastore: Sandbox {} uses unknown IP Address {} - presuming stale/dead",
                        entry.key, entry.ipv4
                    ),
                );
            }
        }
        if let Err(e) = self.write_checkpoint() {
            log.warn(
                "datastore/data_store.go:418",
                format!("Unable to update backing store after restoration: {e}"),
            );
        }
        log.debug("datastore/data_store.go:421", "Completed ipam state recovery");
        Ok(())
    }

    /// Introspection `/v1/enis` for network card 0 (`ENIInfos`), with the container id and
    /// ifname scrubbed as upstream's handler does.
    pub fn eni_infos(&self, now: Instant) -> serde_json::Value {
        let stats = self.stats(now);
        let mut enis = serde_json::Map::new();
        for eni in self.enis.values() {
            let mut cidrs = serde_json::Map::new();
            for c in eni.cidrs.values() {
                let mut addrs = serde_json::Map::new();
                for (ip, a) in &c.addresses {
                    let key = a.key.clone().unwrap_or_default();
                    addrs.insert(
                        ip.to_string(),
                        serde_json::json!({
                            "Address": ip.to_string(),
                            "IPAMKey": {"networkName": key.network_name, "containerID": "", "ifName": ""},
                            "IPAMMetadata": a.metadata,
                            "AssignedTime": a.assigned_at.map_or_else(go_zero_time, |t| t.to_string()),
                            "UnassignedTime": a.unassigned_at.map_or_else(go_zero_time, |t| {
                                (jiff::Timestamp::now() - jiff::SignedDuration::try_from(now.saturating_duration_since(t)).unwrap_or_default()).to_string()
                            }),
                        }),
                    );
                }
                cidrs.insert(
                    c.cidr.to_string(),
                    serde_json::json!({
                        "Cidr": {"IP": c.cidr.network().to_string(), "Mask": mask_base64(c.cidr.prefix_len())},
                        "IPAddresses": addrs,
                        "IsPrefix": c.is_prefix,
                        "AddressFamily": "4",
                    }),
                );
            }
            enis.insert(
                eni.id.clone(),
                serde_json::json!({
                    "ID": eni.id,
                    "IsPrimary": eni.is_primary(),
                    "IsTrunk": false,
                    "IsEFA": false,
                    "DeviceNumber": eni.device_number,
                    "AvailableIPv4Cidrs": cidrs,
                    "IPv6Cidrs": {},
                    "IsExcludedForPodIPs": false,
                    "RouteTableID": eni.route_table_id(),
                    "SubnetID": eni.subnet_id,
                }),
            );
        }
        serde_json::json!({"TotalIPs": stats.total_ips, "AssignedIPs": stats.assigned_ips, "ENIs": enis})
    }
}

/// The first address of a block that is free and out of cooldown (`getUnusedIP`): a released
/// address once its cooldown is over, else the lowest never-used one.
fn free_address(c: &Cidr, cooldown: Duration, now: Instant) -> Option<Ipv4Addr> {
    let mut candidates =
        c.addresses.iter().filter(|(_, a)| a.key.is_none() && !in_cooldown(a, cooldown, now));
    if let Some((ip, _)) = candidates.next() {
        return Some(*ip);
    }
    c.cidr.hosts_inclusive().find(|ip| !c.addresses.contains_key(ip))
}

trait HostsInclusive {
    fn hosts_inclusive(&self) -> Box<dyn Iterator<Item = Ipv4Addr>>;
}

impl HostsInclusive for Ipv4Net {
    /// Every address of the block, network and broadcast included (a /28 prefix's 16 addresses
    /// are all usable; a /32 is its one address).
    fn hosts_inclusive(&self) -> Box<dyn Iterator<Item = Ipv4Addr>> {
        let start = u32::from(self.network());
        let end = u32::from(self.broadcast());
        Box::new((start..=end).map(Ipv4Addr::from))
    }
}

/// Go's zero `time.Time` in JSON.
fn go_zero_time() -> String {
    "0001-01-01T00:00:00Z".into()
}

/// `net.IPMask` marshals as base64 of its bytes.
fn mask_base64(prefix_len: u8) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix_len)).unwrap_or(0).to_be_bytes();
    // 4 bytes → one full group of 3 and a final byte with "==" padding.
    let n = (u32::from(mask[0]) << 16) | (u32::from(mask[1]) << 8) | u32::from(mask[2]);
    let mut out = String::with_capacity(8);
    for shift in [18, 12, 6, 0] {
        out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
    }
    out.push(ALPHABET[(mask[3] >> 2) as usize] as char);
    out.push(ALPHABET[((mask[3] & 3) << 4) as usize] as char);
    out.push_str("==");
    out
}

#[cfg(test)]
mod tests;
