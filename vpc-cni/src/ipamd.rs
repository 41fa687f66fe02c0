//! ipamd itself (pkg/ipamd/ipamd.go, rpc_handler.go): the initial sync with EC2, the warm-pool
//! loop that grows and shrinks the node's ENIs and addresses, and the CNI plugin's
//! AddNetwork/DelNetwork.
//!
//! Why it runs in-process: the lab's node-agent is the node, so it calls [`Ipamd::add_network`]
//! where the real plugin would make a gRPC call to 127.0.0.1:50051; the replies carry the same
//! fields (facts §1.3). "No address" is `success: false`, never an error, as upstream.
//!
//! Every interval is upstream's, multiplied by [`IpamdConfig::time_scale`]; times are
//! `tokio::time` so tests can run under paused time.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ipnet::Ipv4Net;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::api::{ApiError, Ec2Api, Eni, InstanceInfo};
use crate::datastore::{CHECKPOINT_FILE, CheckpointError, DataStore, IpamKey, IpamMetadata};
use crate::knobs::Knobs;
use crate::log::Logger;
use crate::pool::Policy;

/// `ipPoolMonitorInterval`.
pub const POOL_MONITOR_INTERVAL: Duration = Duration::from_secs(5);
/// `decreaseIPPoolInterval`.
pub const DECREASE_INTERVAL: Duration = Duration::from_secs(30);
/// `insufficientCidrErrorCooldown`.
pub const INSUFFICIENT_CIDR_COOLDOWN: Duration = Duration::from_secs(120);
/// `minENILifeTime` (datastore): a new ENI is not freed before this.
pub const MIN_ENI_LIFETIME: Duration = Duration::from_secs(60);
/// The pause between detaching and deleting an ENI (`freeENI`'s `sleepDelayAfterDetach`).
pub const DETACH_DELAY: Duration = Duration::from_secs(2);
/// `eniDescriptionPrefix`.
pub const ENI_DESCRIPTION_PREFIX: &str = "aws-K8S-";
/// `eniNodeTagKey`.
pub const ENI_NODE_TAG: &str = "node.k8s.amazonaws.com/instance_id";
/// `eniCreatedAtTagKey`.
pub const ENI_CREATED_AT_TAG: &str = "node.k8s.amazonaws.com/createdAt";
/// `eniClusterTagKey`.
pub const ENI_CLUSTER_TAG: &str = "cluster.k8s.amazonaws.com/name";
/// `eniOwnerTagKey` (value `amazon-vpc-cni`).
pub const ENI_OWNER_TAG: &str = "eks:eni:owner";
/// `eniNoManageTagKey`: ENIs ipamd leaves alone.
pub const ENI_NO_MANAGE_TAG: &str = "node.k8s.amazonaws.com/no_manage";
/// ipamd's text when EC2 says the subnet is out of addresses or /28s.
pub const SUBNET_EXHAUSTED_MSG: &str = "Unable to attach IPs/Prefixes for the ENI, subnet doesn't seem to have enough IPs/Prefixes. Consider using new subnet or carve a reserved range using create-subnet-cidr-reservation";

/// How the node-agent runs ipamd.
#[derive(Debug, Clone)]
pub struct IpamdConfig {
    /// The environment knobs.
    pub knobs: Knobs,
    /// kubelet's `--max-pods`: ipamd never holds more addresses than this.
    pub max_pods: u32,
    /// Where `ipam.json` lives.
    pub state_dir: PathBuf,
    /// `ipamd.log`.
    pub log_file: PathBuf,
    /// Multiplies every interval.
    pub time_scale: f64,
    /// `CLUSTER_NAME`.
    pub cluster_name: Option<String>,
}

/// The plugin's AddNetwork request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddNetworkRequest {
    /// `K8S_POD_NAME`.
    pub pod_name: String,
    /// `K8S_POD_NAMESPACE`.
    pub pod_namespace: String,
    /// `ContainerID`.
    pub container_id: String,
    /// `IfName`.
    pub ifname: String,
    /// `Netns`.
    pub netns: String,
    /// `NetworkName`.
    pub network_name: String,
}

/// ipamd's AddNetwork reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddNetworkReply {
    /// `Success`.
    pub success: bool,
    /// The pod address.
    pub ipv4: Option<Ipv4Addr>,
    /// `DeviceNumber`.
    pub device_number: i32,
    /// `RouteTableId`.
    pub route_table_id: i32,
    /// `UseExternalSNAT`.
    pub use_external_snat: bool,
    /// `VPCv4CIDRs`.
    pub vpc_cidrs: Vec<Ipv4Net>,
}

/// The plugin's DelNetwork request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelNetworkRequest {
    /// `K8S_POD_NAME`.
    pub pod_name: String,
    /// `K8S_POD_NAMESPACE`.
    pub pod_namespace: String,
    /// `ContainerID`.
    pub container_id: String,
    /// `IfName`.
    pub ifname: String,
    /// `NetworkName`.
    pub network_name: String,
    /// `Reason`.
    pub reason: String,
}

/// ipamd's DelNetwork reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DelNetworkReply {
    /// `Success`.
    pub success: bool,
    /// The released address.
    pub ipv4: Option<Ipv4Addr>,
    /// `DeviceNumber`.
    pub device_number: i32,
}

/// Why ipamd could not start.
#[derive(Debug, thiserror::Error)]
pub enum IpamdError {
    /// The instance type is not in the limits table.
    #[error("unknown instance type {0}: no ENI/IP limits for it")]
    UnknownInstanceType(String),
    /// The initial DescribeNetworkInterfaces failed.
    #[error("ipamd init: failed to retrieve attached ENIs info")]
    Describe(#[source] ApiError),
    /// `ipam.json` could not be read.
    #[error("ipamd init: failed to restore the IPAM state")]
    Checkpoint(#[source] CheckpointError),
}

/// Pool-loop state (upstream's `lastDecreaseIPPool`, `lastInsufficientCidrError`).
#[derive(Debug, Default)]
struct PoolState {
    last_decrease: Option<Instant>,
    last_insufficient_cidr: Option<Instant>,
}

/// ipamd for one node.
pub struct Ipamd {
    cfg: IpamdConfig,
    instance: InstanceInfo,
    ec2: Arc<dyn Ec2Api>,
    policy: Policy,
    log: Arc<Logger>,
    ds: Mutex<DataStore>,
    pool: tokio::sync::Mutex<PoolState>,
}

impl std::fmt::Debug for Ipamd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ipamd")
            .field("instance", &self.instance.instance_id)
            .field("policy", &self.policy)
            .finish()
    }
}

// === impl IpamdConfig ===

impl IpamdConfig {
    /// `d` scaled by [`IpamdConfig::time_scale`].
    pub fn scaled(&self, d: Duration) -> Duration {
        if self.time_scale.is_finite() && self.time_scale >= 0.0 { d.mul_f64(self.time_scale) } else { d }
    }
}

/// Runs one EC2 call inside a span named after its action.
macro_rules! ec2_call {
    ($action:literal, $fut:expr) => {
        $fut.instrument(tracing::info_span!(
            "ec2",
            otel.name = concat!("EC2.", $action),
            rpc.system = "aws-api",
            rpc.service = "EC2",
            rpc.method = $action
        ))
        .await
    };
}

// === impl Ipamd ===

impl Ipamd {
    /// Initial sync (`nodeInit`): the instance's ENIs and their addresses from EC2 into the
    /// datastore, `ipam.json` restored against them, one pre-scaling step; then the pool loop
    /// runs until `shutdown` (with an already cancelled token it does not run at all and
    /// [`Ipamd::reconcile_now`] drives the pool).
    pub async fn start(
        cfg: IpamdConfig,
        instance: InstanceInfo,
        ec2: Arc<dyn Ec2Api>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Ipamd>, IpamdError> {
        let log = Arc::new(Logger::new(cfg.log_file.clone()));
        let info = netlab_ec2::instance_type::lookup(&instance.instance_type)
            .ok_or_else(|| IpamdError::UnknownInstanceType(instance.instance_type.clone()))?;
        let nitro = info.hypervisor == "nitro";
        let policy = Policy::new(&cfg.knobs, info.max_enis, info.ipv4_per_eni, nitro, cfg.max_pods);
        if cfg.knobs.enable_prefix_delegation && !nitro {
            log.warn(
                "ipamd/ipamd.go:2777",
                format!(
                    "Prefix delegation is not supported on non-nitro instance {} hence falling back to default (secondary IP) mode",
                    instance.instance_type
                ),
            );
        }
        log.debug("ipamd/ipamd.go:461", "Start node init");
        let ds = DataStore::new(
            policy.prefix_delegation,
            cfg.scaled(cfg.knobs.ip_cooldown_period),
            cfg.scaled(MIN_ENI_LIFETIME),
            cfg.state_dir.join(CHECKPOINT_FILE),
            log.clone(),
        );
        let ipamd = Arc::new(Ipamd {
            cfg,
            instance,
            ec2,
            policy,
            log,
            ds: Mutex::new(ds),
            pool: tokio::sync::Mutex::new(PoolState::default()),
        });
        ipamd.node_init().await?;
        if !shutdown.is_cancelled() {
            let me = ipamd.clone();
            tokio::spawn(async move { me.pool_manager(shutdown).await });
        }
        Ok(ipamd)
    }

    fn ds(&self) -> MutexGuard<'_, DataStore> {
        // A panic while holding the lock cannot leave the datastore half-updated in a way that
        // matters more than losing the node's IPAM, so a poisoned lock is taken over.
        self.ds.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[tracing::instrument(skip_all, fields(instance_id = %self.instance.instance_id))]
    async fn node_init(&self) -> Result<(), IpamdError> {
        let enis = ec2_call!(
            "DescribeNetworkInterfaces",
            self.ec2.describe_instance_enis(&self.instance.instance_id)
        )
        .map_err(|e| {
            self.api_error("DescribeNetworkInterfaces", &e);
            IpamdError::Describe(e)
        })?;
        let now = Instant::now();
        {
            let mut ds = self.ds();
            for eni in &enis {
                if eni.tags.iter().any(|(k, v)| k == ENI_NO_MANAGE_TAG && v == "true") {
                    self.log.info(
                        "ipamd/ipamd.go:277",
                        format!("Marking ENI {} as unmanaged (tagged {ENI_NO_MANAGE_TAG})", eni.id),
                    );
                    continue;
                }
                self.log
                    .debug("ipamd/ipamd.go:526", format!("Discovered ENI {}, trying to set it up", eni.id));
                self.setup_eni(&mut ds, eni, now);
                self.log.info("ipamd/ipamd.go:541", format!("ENI {} set up.", eni.id));
            }
            ds.restore().map_err(IpamdError::Checkpoint)?;
        }
        // Blocks of the mode not in use are given back (PD toggled since the last run).
        self.unassign_other_mode().await;
        // handlePreScaling.
        let stats = self.ds().stats(Instant::now());
        if self.policy.is_too_low(&stats) {
            let mut st = self.pool.lock().await;
            self.increase_pool(&mut st).await;
        }
        self.log.debug("ipamd/ipamd.go:669", "node init completed successfully");
        Ok(())
    }

    fn setup_eni(&self, ds: &mut DataStore, eni: &Eni, now: Instant) {
        let device = eni.device_index.unwrap_or(0);
        ds.add_eni(&eni.id, device, eni.attachment_id.clone(), eni.primary_ip, &eni.subnet_id, now);
        self.log.info(
            "ipamd/ipamd.go:1335",
            format!(
                "Found ENIs having {} secondary IPs and {} Prefixes",
                eni.secondary_ips.len(),
                eni.prefixes.len()
            ),
        );
        for ip in &eni.secondary_ips {
            ds.add_cidr(&eni.id, Ipv4Net::from(*ip), false);
        }
        for p in &eni.prefixes {
            ds.add_cidr(&eni.id, *p, true);
        }
    }

    async fn unassign_other_mode(&self) {
        let pd = self.policy.prefix_delegation;
        let work: Vec<(String, Vec<Ipv4Net>)> = {
            let mut ds = self.ds();
            let ids: Vec<String> = ds.enis().map(|e| e.id.clone()).collect();
            ids.into_iter()
                .map(|id| {
                    let other: Vec<Ipv4Net> = ds
                        .freeable_cidrs(&id)
                        .into_iter()
                        .filter(|(_, p)| *p != pd)
                        .map(|(c, _)| c)
                        .collect();
                    let deleted = other.into_iter().filter(|c| ds.del_cidr(&id, *c)).collect();
                    (id, deleted)
                })
                .collect()
        };
        for (eni, cidrs) in work {
            self.dealloc(&eni, &cidrs).await;
        }
    }

    /// `StartNodeIPPoolManager`: every 5 s (scaled) one pool step, until `shutdown`.
    async fn pool_manager(self: Arc<Self>, shutdown: CancellationToken) {
        self.log.info(
            "ipamd/ipamd.go:783",
            format!(
                "IP pool manager - max pods: {}, warm IP target: {}, warm prefix target: {}, warm ENI target: {}, minimum IP target: {}",
                self.policy.max_pods,
                self.policy.warm_ip_target,
                self.policy.warm_prefix_target,
                self.policy.warm_eni_target,
                self.policy.minimum_ip_target
            ),
        );
        let interval = self.cfg.scaled(POOL_MONITOR_INTERVAL).max(Duration::from_millis(1));
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => self.reconcile_now().await,
            }
        }
    }

    /// One pool step (`updateIPPoolIfRequired`): grow if too low, else shrink if too high and
    /// the decrease interval has passed; then try to free one unused ENI.
    #[tracing::instrument(skip_all, fields(instance_id = %self.instance.instance_id))]
    pub async fn reconcile_now(&self) {
        let mut st = self.pool.lock().await;
        let stats = self.ds().stats(Instant::now());
        self.log.debug(
            "ipamd/ipamd.go:804",
            format!(
                "IP stats for Network Card 0 - total IPs: {}, assigned IPs: {}, cooldown IPs: {}",
                stats.total_ips, stats.assigned_ips, stats.cooldown_ips
            ),
        );
        if self.policy.is_too_low(&stats) {
            if self.policy.target_state(&stats).is_none() {
                let (target, per) = if self.policy.prefix_delegation {
                    (self.policy.warm_prefix_target, crate::datastore::IPS_PER_PREFIX)
                } else {
                    (self.policy.warm_eni_target, self.policy.max_ips_per_eni)
                };
                self.log.debug(
                    "ipamd/ipamd.go:2648",
                    format!(
                        "IP pool is too low for Network Card 0: available ({}) < ENI target ({target}) * addrsPerENI ({per})",
                        stats.available()
                    ),
                );
                self.log_pool_stats(&stats);
            }
            self.increase_pool(&mut st).await;
        } else if self.policy.excess(&stats) > 0 {
            let since = st.last_decrease.map(|t| t.elapsed());
            let interval = self.cfg.scaled(DECREASE_INTERVAL);
            match since {
                Some(since) if since <= interval => self.log.debug(
                    "ipamd/ipamd.go:829",
                    format!(
                        "Skipping decrease Datastore pool because time since last {since:?} <= {interval:?}"
                    ),
                ),
                _ => {
                    self.decrease_pool().await;
                    st.last_decrease = Some(Instant::now());
                }
            }
        }
        let stats = self.ds().stats(Instant::now());
        let freeable = self.ds().freeable_eni_exists();
        if self.policy.should_remove_extra_enis(&stats, freeable) {
            self.try_free_eni().await;
        }
    }

    fn log_pool_stats(&self, stats: &crate::datastore::Stats) {
        let prefix = if self.policy.prefix_delegation {
            "Prefix pool stats for network card"
        } else {
            "IP pool stats for network card"
        };
        self.log.debug(
            "ipamd/ipamd.go:1464",
            format!("{prefix} 0: {stats}, c.maxIPsPerENI = {}", self.policy.max_ips_per_eni),
        );
    }

    fn api_error(&self, api: &str, e: &ApiError) {
        if e.is_unauthorized() {
            self.log.error(
                "awsutils/awsutils.go:451",
                format!(
                    "Unauthorized operation: failed to call ec2:{api} due to missing permissions. Please refer https://github.com/aws/amazon-vpc-cni-k8s/blob/master/docs/iam-policy.md to attach relevant policy to IAM role"
                ),
            );
        }
    }

    /// `increaseDatastorePool`.
    async fn increase_pool(&self, st: &mut PoolState) {
        self.log.debug("ipamd/ipamd.go:969", "Starting to increase pool size for network card 0");
        let cooldown = self.cfg.scaled(INSUFFICIENT_CIDR_COOLDOWN);
        if st.last_insufficient_cidr.is_some_and(|t| t.elapsed() <= cooldown) {
            self.log.debug(
                "ipamd/ipamd.go:979",
                format!(
                    "Recently we had InsufficientCidr error hence will wait for {cooldown:?} before retrying"
                ),
            );
            return;
        }
        match self.try_assign_cidrs().await {
            Err(e) if e.is_subnet_exhausted() => {
                self.log.error("ipamd/ipamd.go:986", SUBNET_EXHAUSTED_MSG);
                st.last_insufficient_cidr = Some(Instant::now());
            }
            Err(e) => self.log.error("ipamd/ipamd.go:990", e.to_string()),
            Ok(true) => self.log_pool_stats(&self.ds().stats(Instant::now())),
            Ok(false) => {
                if self.ds().eni_count() < self.policy.max_enis {
                    match self.try_allocate_eni(st).await {
                        Ok(()) => self.log_pool_stats(&self.ds().stats(Instant::now())),
                        Err(e) => self
                            .log
                            .debug("ipamd/ipamd.go:1002", format!("Error trying to allocate ENI: {e}")),
                    }
                } else {
                    self.log.debug(
                        "ipamd/ipamd.go:1005",
                        "Skipping ENI allocation as the max ENI limit is already reached",
                    );
                }
            }
        }
    }

    /// `tryAssignIPs` / `tryAssignPrefixes`: more blocks on the first ENI with room.
    async fn try_assign_cidrs(&self) -> Result<bool, ApiError> {
        let pd = self.policy.prefix_delegation;
        let (stats, enis) = {
            let ds = self.ds();
            let max = if pd { self.policy.max_prefixes_per_eni } else { self.policy.max_ips_per_eni };
            (ds.stats(Instant::now()), ds.allocatable_enis(max))
        };
        for (eni, current) in enis {
            let want = if pd {
                self.policy
                    .max_prefixes_per_eni
                    .saturating_sub(current)
                    .min(self.policy.prefixes_needed(&stats))
            } else {
                match self.policy.ips_to_assign(&stats, current) {
                    Some(n) => n,
                    None => return Ok(false),
                }
            };
            let want = want.min(self.policy.eni_ipv4_limit);
            if want == 0 {
                continue;
            }
            let added = match self.alloc_ip_addresses(&eni, want).await {
                Ok(added) => added,
                Err(e) if e.code == "PrivateIpAddressLimitExceeded" => Vec::new(),
                Err(e) => {
                    self.log.warn(
                        "ipamd/ipamd.go:1133",
                        format!("failed to allocate all available IP addresses on ENI {eni}, err: {e}"),
                    );
                    match self.alloc_ip_addresses(&eni, 1).await {
                        Ok(added) => added,
                        Err(e) if e.code == "PrivateIpAddressLimitExceeded" => Vec::new(),
                        Err(e) => return Err(e),
                    }
                }
            };
            let mut ds = self.ds();
            for c in added {
                ds.add_cidr(&eni, c, pd);
            }
            return Ok(true);
        }
        Ok(false)
    }

    /// `AllocIPAddresses`: `count` secondary addresses (as /32s) or prefixes.
    async fn alloc_ip_addresses(&self, eni: &str, count: u32) -> Result<Vec<Ipv4Net>, ApiError> {
        self.log.info(
            "awsutils/awsutils.go:2058",
            format!("Trying to allocate {count} IP addresses on ENI {eni}"),
        );
        let result = if self.policy.prefix_delegation {
            ec2_call!("AssignPrivateIpAddresses", self.ec2.assign_prefixes(eni, count))
        } else {
            ec2_call!("AssignPrivateIpAddresses", self.ec2.assign_private_ips(eni, count))
                .map(|ips| ips.into_iter().map(Ipv4Net::from).collect())
        };
        match &result {
            Ok(added) if self.policy.prefix_delegation => self
                .log
                .info("awsutils/awsutils.go:2087", format!("Allocated {} private IP prefixes", added.len())),
            Ok(added) => self
                .log
                .info("awsutils/awsutils.go:2089", format!("Allocated {} private IP addresses", added.len())),
            Err(e) => {
                self.api_error("AssignPrivateIpAddresses", e);
                self.log.error(
                    "awsutils/awsutils.go:2080",
                    format!("Failed to allocate a private IP/Prefix addresses on ENI {eni}: {e}"),
                );
            }
        }
        result
    }

    /// `tryAllocateENI` + `AllocENI`: create an ENI like the primary, attach it at the first free
    /// device index, mark it delete-on-termination, and add it to the datastore.
    async fn try_allocate_eni(&self, st: &mut PoolState) -> Result<(), ApiError> {
        let stats = self.ds().stats(Instant::now());
        let resources = self.policy.eni_resources_to_allocate(&stats).min(self.policy.eni_ipv4_limit);
        if resources == 0 {
            self.log.debug(
                "ipamd/ipamd.go:1100",
                "Did not allocate ENI since IPs/Prefixes needed were not greater than 0. IPs/Prefixes needed: 0",
            );
            return Ok(());
        }
        let eni = match self.alloc_eni(resources).await {
            Ok(eni) => eni,
            Err(e) => {
                self.log.error(
                    "ipamd/ipamd.go:1072",
                    format!("Failed to increase pool size due to not able to allocate ENI {e}"),
                );
                self.log.warn(
                    "ipamd/ipamd.go:1074",
                    format!("Failed to allocate {resources} IP addresses on an ENI: {e}"),
                );
                if e.is_subnet_exhausted() {
                    self.log.error("ipamd/ipamd.go:1077", SUBNET_EXHAUSTED_MSG);
                    st.last_insufficient_cidr = Some(Instant::now());
                }
                return Err(e);
            }
        };
        let mut ds = self.ds();
        self.setup_eni(&mut ds, &eni, Instant::now());
        Ok(())
    }

    async fn alloc_eni(&self, resources: u32) -> Result<Eni, ApiError> {
        let id = &self.instance.instance_id;
        let mut tags = vec![
            (
                ENI_CREATED_AT_TAG.to_string(),
                jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            ),
            (ENI_NODE_TAG.to_string(), id.clone()),
        ];
        if let Some(cluster) = self.cfg.cluster_name.as_deref().filter(|c| !c.is_empty()) {
            tags.push((ENI_CLUSTER_TAG.to_string(), cluster.to_string()));
            tags.push((ENI_OWNER_TAG.to_string(), "amazon-vpc-cni".to_string()));
        }
        tags.sort();
        let mut groups = self.instance.security_groups.clone();
        groups.sort();
        let (ips, prefixes) = if self.policy.prefix_delegation { (0, resources) } else { (resources, 0) };
        let description = format!("{ENI_DESCRIPTION_PREFIX}{id}");
        let mut eni = ec2_call!(
            "CreateNetworkInterface",
            self.ec2.create_network_interface(
                &self.instance.subnet_id,
                &groups,
                &description,
                &tags,
                ips,
                prefixes
            )
        )
        .inspect_err(|e| {
            self.api_error("CreateNetworkInterface", e);
            self.log.error("awsutils/awsutils.go:1160", format!("Failed to CreateNetworkInterface {e}"));
        })?;
        self.log.info("awsutils/awsutils.go:1166", format!("Created a new ENI: {}", eni.id));
        let attached = match self.free_device_number().await {
            Ok(device) => {
                ec2_call!("AttachNetworkInterface", self.ec2.attach_network_interface(&eni.id, id, device))
                    .map(|a| (device, a))
            }
            Err(e) => Err(e),
        };
        let (device, attachment) = match attached {
            Ok(a) => a,
            Err(e) => {
                self.api_error("AttachNetworkInterface", &e);
                self.log.error("awsutils/awsutils.go:1043", format!("Failed to attach ENI {}: {e}", eni.id));
                if let Err(de) =
                    ec2_call!("DeleteNetworkInterface", self.ec2.delete_network_interface(&eni.id))
                {
                    self.log.error(
                        "awsutils/awsutils.go:989",
                        format!("Failed to delete newly created untagged ENI! {de}"),
                    );
                }
                return Err(e);
            }
        };
        if let Err(e) = ec2_call!(
            "ModifyNetworkInterfaceAttribute",
            self.ec2.set_delete_on_termination(&eni.id, &attachment)
        ) {
            self.api_error("ModifyNetworkInterfaceAttribute", &e);
            self.free_eni(&eni.id, Some(&attachment)).await;
            return Err(e);
        }
        self.log.info(
            "awsutils/awsutils.go:1019",
            format!("Successfully created and attached a new ENI {} to instance on network card 0", eni.id),
        );
        eni.device_index = Some(device);
        eni.attachment_id = Some(attachment);
        eni.instance_id = Some(id.clone());
        Ok(eni)
    }

    /// `awsGetFreeDeviceNumber`: the lowest device index no attached ENI uses, from EC2's view.
    async fn free_device_number(&self) -> Result<u32, ApiError> {
        let enis = ec2_call!(
            "DescribeNetworkInterfaces",
            self.ec2.describe_instance_enis(&self.instance.instance_id)
        )?;
        let used: Vec<u32> = enis.iter().filter_map(|e| e.device_index).collect();
        let free = (0..).find(|d| !used.contains(d)).unwrap_or(0);
        self.log.debug(
            "awsutils/awsutils.go:971",
            format!("Found a free device number for network card 0 : {free}"),
        );
        Ok(free)
    }

    /// `decreaseDatastorePool` → `tryUnassignCidrsFromAll`.
    async fn decrease_pool(&self) {
        self.log.debug("ipamd/ipamd.go:843", "Starting to decrease pool size for network card 0");
        let work: Vec<(String, Vec<Ipv4Net>)> = {
            let mut ds = self.ds();
            let mut over = self.policy.excess(&ds.stats(Instant::now()));
            let ids: Vec<String> = ds.enis().map(|e| e.id.clone()).collect();
            let mut work = Vec::new();
            for id in ids {
                if over == 0 {
                    break;
                }
                let cidrs: Vec<Ipv4Net> = ds
                    .freeable_cidrs(&id)
                    .into_iter()
                    .filter(|(_, p)| *p == self.policy.prefix_delegation)
                    .map(|(c, _)| c)
                    .rev()
                    .take(over as usize)
                    .collect();
                let deleted: Vec<Ipv4Net> = cidrs.into_iter().filter(|c| ds.del_cidr(&id, *c)).collect();
                over = over.saturating_sub(deleted.len() as u32);
                if !deleted.is_empty() {
                    work.push((id, deleted));
                }
            }
            work
        };
        for (eni, cidrs) in work {
            self.dealloc(&eni, &cidrs).await;
        }
        self.log.debug("ipamd/ipamd.go:846", "Successfully decreased IP pool");
        self.log_pool_stats(&self.ds().stats(Instant::now()));
    }

    /// `DeallocCidrs`: UnassignPrivateIpAddresses of freed addresses and prefixes.
    async fn dealloc(&self, eni: &str, cidrs: &[Ipv4Net]) {
        let prefixes: Vec<Ipv4Net> = cidrs.iter().copied().filter(|c| c.prefix_len() < 32).collect();
        let ips: Vec<Ipv4Addr> = cidrs.iter().filter(|c| c.prefix_len() == 32).map(|c| c.addr()).collect();
        if !prefixes.is_empty() {
            let list = prefixes.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
            self.log.info(
                "awsutils/awsutils.go:2225",
                format!("Trying to unassign the following Prefixes [{list}] from ENI {eni}"),
            );
            if let Err(e) =
                ec2_call!("UnassignPrivateIpAddresses", self.ec2.unassign_prefixes(eni, &prefixes))
            {
                self.api_error("UnassignPrivateIpAddresses", &e);
                self.log.warn(
                    "ipamd/ipamd.go:2706",
                    format!("Failed to free Prefixes [{list}] from ENI {eni}: {e}"),
                );
            }
        }
        if !ips.is_empty() {
            let list = ips.iter().map(ToString::to_string).collect::<Vec<_>>().join(" ");
            self.log.info(
                "awsutils/awsutils.go:2198",
                format!("Trying to unassign the following IPs [{list}] from ENI {eni}"),
            );
            if let Err(e) = ec2_call!("UnassignPrivateIpAddresses", self.ec2.unassign_private_ips(eni, &ips))
            {
                self.api_error("UnassignPrivateIpAddresses", &e);
                self.log
                    .warn("ipamd/ipamd.go:2710", format!("Failed to free IPs [{list}] from ENI {eni}: {e}"));
            }
        }
    }

    /// `tryFreeENI`: one ENI out of the datastore, then detached and deleted.
    async fn try_free_eni(&self) {
        let removed = {
            let p = &self.policy;
            self.ds().remove_unused_eni(
                p.warm_ip_target,
                p.minimum_ip_target,
                p.warm_prefix_target,
                Instant::now(),
            )
        };
        let Some(eni) = removed else { return };
        self.log.debug("ipamd/ipamd.go:871", format!("Start freeing ENI {} from network card 0", eni.id));
        self.free_eni(&eni.id, eni.attachment_id.as_deref()).await;
    }

    /// `freeENI`: detach, wait, delete.
    async fn free_eni(&self, eni: &str, attachment: Option<&str>) {
        self.log.info("awsutils/awsutils.go:1433", format!("Trying to free ENI: {eni}"));
        let Some(attachment) = attachment else {
            self.log.error(
                "awsutils/awsutils.go:1443",
                format!("Failed to retrieve ENI {eni} attachment id: not attached"),
            );
            return;
        };
        if let Err(e) = ec2_call!("DetachNetworkInterface", self.ec2.detach_network_interface(attachment)) {
            self.api_error("DetachNetworkInterface", &e);
            self.log.error("awsutils/awsutils.go:1460", format!("Failed to detach ENI {eni} {e}"));
            return;
        }
        self.log.info("awsutils/awsutils.go:1463", format!("Successfully detached ENI: {eni}"));
        tokio::time::sleep(self.cfg.scaled(DETACH_DELAY)).await;
        match ec2_call!("DeleteNetworkInterface", self.ec2.delete_network_interface(eni)) {
            Ok(()) => self.log.info("awsutils/awsutils.go:1479", format!("Successfully freed ENI: {eni}")),
            Err(e) => {
                self.api_error("DeleteNetworkInterface", &e);
                self.log.error(
                    "ipamd/ipamd.go:878",
                    format!("Failed to free ENI {eni}, err: FreeENI: failed to free ENI: {eni}: {e}"),
                );
            }
        }
    }

    /// The plugin's AddNetwork (rpc_handler.go). A repeated ADD for the same container and
    /// ifname gets the same address. "No address" is `success: false`.
    #[tracing::instrument(skip_all, fields(pod = %req.pod_name, namespace = %req.pod_namespace, container_id = %req.container_id))]
    pub async fn add_network(&self, req: &AddNetworkRequest) -> AddNetworkReply {
        self.log.info(
            "rpc/rpc_handler.go:77",
            format!(
                "Received AddNetwork for NS {}, Sandbox {}, ifname {}",
                req.netns, req.container_id, req.ifname
            ),
        );
        let key = IpamKey {
            network_name: req.network_name.clone(),
            container_id: req.container_id.clone(),
            if_name: req.ifname.clone(),
        };
        let metadata = IpamMetadata {
            pod_namespace: req.pod_namespace.clone(),
            pod_name: req.pod_name.clone(),
            interfaces_count: 1,
        };
        let result = self.ds().assign(&key, &metadata, Instant::now());
        match result {
            Ok(a) => {
                self.log.info(
                    "rpc/rpc_handler.go:244",
                    format!(
                        "Assigned IP from network card: 0 -> IPv4: {}, IPv6: , device number: {}, ",
                        a.ip, a.device_number
                    ),
                );
                self.log.info("rpc/rpc_handler.go:259", "Address assigned from datastores:  1");
                let mut vpc_cidrs = self.instance.vpc_cidrs.clone();
                let use_external_snat = self.cfg.knobs.external_snat;
                if !use_external_snat {
                    vpc_cidrs.extend(self.cfg.knobs.exclude_snat_cidrs.iter().copied());
                }
                let reply = AddNetworkReply {
                    success: true,
                    ipv4: Some(a.ip),
                    device_number: a.device_number as i32,
                    route_table_id: a.route_table_id,
                    use_external_snat,
                    vpc_cidrs,
                };
                self.log.info(
                    "rpc/rpc_handler.go:313",
                    format!(
                        "Send AddNetworkReply: Success: true IPAddr: [IPv4Addr:\"{}\" DeviceNumber:{} RouteTableId:{}], err: <nil>",
                        a.ip, a.device_number, a.route_table_id
                    ),
                );
                reply
            }
            Err(e) => {
                self.log
                    .warn("rpc/rpc_handler.go:233", format!("Failed to assign IPs from network card 0: {e}"));
                self.log.error(
                    "rpc/rpc_handler.go:257",
                    format!("Returning failure response for AddNetwork: {e}"),
                );
                self.log.info(
                    "rpc/rpc_handler.go:313",
                    format!("Send AddNetworkReply: Success: false IPAddr: [], err: {e}"),
                );
                AddNetworkReply::default()
            }
        }
    }

    /// The plugin's DelNetwork. Idempotent: an unknown sandbox is logged as upstream does and
    /// answered with success (the real plugin treats upstream's `datastore: unknown pod` so).
    #[tracing::instrument(skip_all, fields(pod = %req.pod_name, namespace = %req.pod_namespace, container_id = %req.container_id))]
    pub async fn del_network(&self, req: &DelNetworkRequest) -> DelNetworkReply {
        self.log
            .info("rpc/rpc_handler.go:325", format!("Received DelNetwork for Sandbox {}", req.container_id));
        let key = IpamKey {
            network_name: req.network_name.clone(),
            container_id: req.container_id.clone(),
            if_name: req.ifname.clone(),
        };
        let released = self.ds().unassign(&key, Instant::now());
        match released {
            Some(a) => {
                self.log.info(
                    "rpc/rpc_handler.go:457",
                    format!(
                        "Send DelNetworkReply: IPAddress: [IPv4Addr:\"{}\" DeviceNumber:{} RouteTableId:{}], err: <nil>",
                        a.ip, a.device_number, a.route_table_id
                    ),
                );
                DelNetworkReply { success: true, ipv4: Some(a.ip), device_number: a.device_number as i32 }
            }
            None => {
                self.log.info(
                    "rpc/rpc_handler.go:457",
                    format!(
                        "Send DelNetworkReply: IPAddress: [], err: {}",
                        crate::datastore::ERR_UNKNOWN_POD
                    ),
                );
                DelNetworkReply { success: true, ipv4: None, device_number: 0 }
            }
        }
    }

    /// Releases the allocations of containers not in `valid_container_ids` (sandboxes that are
    /// gone without a DEL); returns their container ids. Released addresses cool down as usual.
    pub fn gc(&self, valid_container_ids: &[String]) -> Vec<String> {
        let mut ds = self.ds();
        let stale: Vec<IpamKey> = ds
            .allocations()
            .into_iter()
            .filter(|a| !valid_container_ids.contains(&a.key.container_id))
            .map(|a| a.key)
            .collect();
        let now = Instant::now();
        let mut released = Vec::new();
        for key in stale {
            if ds.unassign(&key, now).is_some() {
                self.log.warn(
                    "datastore/data_store.go:1636",
                    format!(
                        "stale IP allocation for ID({}): released, the sandbox is gone",
                        key.container_id
                    ),
                );
                released.push(key.container_id);
            }
        }
        released
    }

    /// Introspection `/v1/enis`: upstream's `map[networkCard]ENIInfos`, i.e.
    /// `{"0": {"TotalIPs", "AssignedIPs", "ENIs": {…}}}`.
    pub fn enis(&self) -> serde_json::Value {
        serde_json::json!({"0": self.ds().eni_infos(Instant::now())})
    }

    /// `/v1/pods`: the allocations (`PodIPInfo`: IPAMKey, IP, DeviceNumber) plus the pod.
    pub fn pods(&self) -> serde_json::Value {
        let list: Vec<serde_json::Value> = self
            .ds()
            .allocations()
            .into_iter()
            .map(|a| {
                serde_json::json!({
                    "IPAMKey": a.key,
                    "IP": a.ip.to_string(),
                    "DeviceNumber": a.device_number,
                    "ENI": a.eni_id,
                    "Metadata": a.metadata,
                })
            })
            .collect();
        serde_json::Value::Array(list)
    }

    /// The instance ipamd runs on.
    pub fn instance(&self) -> &InstanceInfo {
        &self.instance
    }

    /// The resolved pool policy (targets and limits).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Datastore numbers: total, assigned, cooling addresses, prefixes.
    pub fn stats(&self) -> crate::datastore::Stats {
        self.ds().stats(Instant::now())
    }

    /// ENIs in the datastore, lowest device first: (id, device number, pod-usable blocks).
    pub fn eni_summary(&self) -> Vec<(String, u32, Vec<Ipv4Net>)> {
        self.ds().enis().map(|e| (e.id.clone(), e.device_number, e.cidrs.keys().copied().collect())).collect()
    }

    /// The ipamd.log path.
    pub fn log_file(&self) -> &std::path::Path {
        self.log.path()
    }
}

#[cfg(test)]
mod tests;
