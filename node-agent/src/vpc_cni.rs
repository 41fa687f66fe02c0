//! The node as an EKS worker's `aws-node` DaemonSet makes it: ipamd started with the node
//! role's credentials (IMDS, from the node's own address), its warm pool kept through the
//! cloud's EC2 API, and the `aws-cni` plugin handed to the kubelet once ipamd is up (which is
//! when a real aws-node writes `10-aws.conflist` and the node turns Ready).
//!
//! The routing table learns the subnet (the node's link), the VPC's CIDRs (delivered by the
//! VPC, see [`netlab_kernel::routes::Routes::in_vpc`]) and each local pod's host route.

use std::{collections::BTreeMap, net::IpAddr, path::Path, sync::Arc, time::Duration};

use netlab_vpc_cni::{
    InstanceInfo,
    ec2::{Ec2Client, Ec2ClientConfig},
    ipamd::{Ipamd, IpamdConfig},
    knobs::Knobs,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{
    cni::{
        CniPlugin,
        aws::{AwsCni, HostRoutes},
    },
    dataplane::Dataplane,
    exec::IpamdSlot,
};

/// The `--cni` name of the AWS VPC CNI.
pub const CNI_NAME: &str = "aws-vpc-cni";

/// What ipamd needs from the node-agent's flags.
pub struct Setup {
    /// The cloud's IMDS (`host:port`), reached from the node's address.
    pub imds: String,
    /// The cloud's AWS endpoint (`host:port`), where EC2 is.
    pub ec2: String,
    /// The node's address (IMDS knows the instance by it).
    pub node_ip: IpAddr,
    /// The kubelet's `--max-pods`, which ipamd reads from the kubelet's config.
    pub max_pods: u32,
    /// `--time-scale`.
    pub time_scale: f64,
    /// ipamd's knobs, from the node-agent's environment (aws-node's env).
    pub knobs: Knobs,
}

/// The node's routing table as the plugin's host routes.
struct NodeRoutes(Arc<Dataplane>);

impl HostRoutes for NodeRoutes {
    fn add(&self, ip: IpAddr, device: &str) {
        self.0.with_state(|st| st.routes.add_host(ip, device));
    }

    fn remove(&self, ip: IpAddr) {
        self.0.with_state(|st| {
            st.routes.remove_host(ip);
        });
    }
}

/// Starts ipamd (retrying, as aws-node's container restarts, until IMDS and EC2 answer), then
/// sends the plugin and network readiness; starts it again with new settings whenever the
/// `aws-node` DaemonSet's env changes (`aws_node`; None: the node-agent's own environment,
/// `setup.knobs`). ipamd's files go under `dir` (`aws-node/ipam.json`,
/// `aws-routed-eni/ipamd.log`), so a restarted ipamd finds its pods' addresses again.
#[allow(clippy::too_many_arguments)] // One call site; each is a different piece of the node.
pub async fn run(
    setup: Setup,
    dir: &Path,
    dp: Arc<Dataplane>,
    slot: IpamdSlot,
    mut aws_node: watch::Receiver<Option<BTreeMap<String, String>>>,
    cni: watch::Sender<Option<Arc<dyn CniPlugin>>>,
    ready: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let retry = Duration::from_secs(5).mul_f64(setup.time_scale).max(Duration::from_millis(50));
    let imds = format!("http://{}", setup.imds);
    let instance = loop {
        match netlab_vpc_cni::imds::instance_info(&imds, Some(setup.node_ip)).await {
            Ok(i) => break i,
            Err(error) => warn!(%error, "ipamd: cannot read the instance from IMDS; retrying."),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
    };
    info!(instance = %instance.instance_id, r#type = %instance.instance_type, ip = %instance.primary_ip, "ipamd: the node is an EC2 instance.");
    program_link(&dp, &instance);
    let ec2: Arc<dyn netlab_vpc_cni::Ec2Api> = Arc::new(Ec2Client::new(Ec2ClientConfig {
        endpoint: format!("http://{}", setup.ec2),
        region: region_of(&instance.availability_zone),
        imds_endpoint: imds.clone(),
        local_addr: Some(setup.node_ip),
    }));
    let mut knobs = knobs_of(aws_node.borrow_and_update().as_ref(), &setup.knobs).unwrap_or_else(|error| {
        warn!(%error, "aws-node's env is invalid; ipamd uses the node's environment.");
        setup.knobs.clone()
    });
    loop {
        // ipamd's SetupHostNetwork: AWS-SNAT-CHAIN-0 for traffic leaving the VPC (none with
        // AWS_VPC_K8S_CNI_EXTERNALSNAT=true).
        if let Some(rules) = netlab_vpc_cni::snat::for_instance(&instance, &knobs)
            && let Err(error) = dp.with_state(|st| {
                let jump = format!("nat POSTROUTING {}", netlab_vpc_cni::snat::JUMP_SPEC);
                let again = st.tables.has_rule(&jump).then(|| netlab_vpc_cni::snat::without_jump(&rules));
                st.restore(netlab_kernel::netns::Restore {
                    format: netlab_kernel::netns::Format::Iptables,
                    text: again.as_deref().unwrap_or(&rules),
                    noflush: true,
                    ensure: &[],
                })
            })
        {
            warn!(%error, "ipamd init: failed to set up host network");
        }
        let config = IpamdConfig {
            knobs: knobs.clone(),
            max_pods: setup.max_pods,
            state_dir: dir.join("aws-node"),
            log_file: dir.join("aws-routed-eni").join("ipamd.log"),
            time_scale: setup.time_scale,
            cluster_name: None,
        };
        let running = shutdown.child_token();
        let ipamd = loop {
            match Ipamd::start(config.clone(), instance.clone(), ec2.clone(), running.clone()).await {
                Ok(i) => break i,
                Err(error) => warn!(%error, "ipamd failed to start; retrying."),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        };
        *slot.write().unwrap_or_else(|e| e.into_inner()) = Some(ipamd.clone());
        let routes = Arc::new(NodeRoutes(dp.clone()));
        let plugin: Arc<dyn CniPlugin> = Arc::new(AwsCni::new(ipamd, routes, &knobs.veth_prefix));
        info!(plugin = CNI_NAME, "ipamd started; CNI ready.");
        cni.send_replace(Some(plugin));
        ready.send_replace(true);
        // Until aws-node's settings change, as a DaemonSet rollout replaces its pod.
        knobs = loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = aws_node.changed() => if changed.is_err() {
                    shutdown.cancelled().await;
                    return;
                },
            }
            match knobs_of(aws_node.borrow_and_update().as_ref(), &setup.knobs) {
                Ok(new) if new != knobs => break new,
                Ok(_) => {}
                // A real aws-node would crash-loop on it; this one keeps its settings and says so.
                Err(error) => warn!(%error, "aws-node's new env is invalid; ipamd keeps its settings."),
            }
        };
        info!("aws-node's settings changed: restarting ipamd.");
        running.cancel();
    }
}

/// ipamd's settings: from the `aws-node` DaemonSet's env when there is one, else the
/// node-agent's own environment's (`fallback`).
fn knobs_of(
    aws_node: Option<&BTreeMap<String, String>>,
    fallback: &Knobs,
) -> Result<Knobs, netlab_vpc_cni::KnobError> {
    match aws_node {
        Some(env) => Knobs::from_env(|k| env.get(k).cloned()),
        None => Ok(fallback.clone()),
    }
}

/// The node's link (the primary ENI's subnet, its gateway the subnet's first host as in every
/// VPC subnet) and the VPC's CIDRs, into the routing table.
fn program_link(dp: &Dataplane, instance: &InstanceInfo) {
    let subnet = instance.subnet_cidr;
    let gateway = std::net::Ipv4Addr::from(u32::from(subnet.network()) + 1);
    dp.with_state(|st| {
        st.routes.set_link(Some(ipnet::IpNet::V4(subnet)), Some(IpAddr::V4(gateway)));
        st.routes.set_vpc(instance.vpc_cidrs.iter().map(|c| ipnet::IpNet::V4(*c)));
    });
}

/// The region of an availability zone (`us-east-1a` → `us-east-1`).
fn region_of(zone: &str) -> String {
    zone.trim_end_matches(|c: char| c.is_ascii_lowercase()).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn region_of_a_zone() {
        assert_eq!(super::region_of("us-east-1a"), "us-east-1");
        assert_eq!(super::region_of("eu-west-2c"), "eu-west-2");
    }
}
