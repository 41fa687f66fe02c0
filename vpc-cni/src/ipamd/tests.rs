//! ipamd against the lab's own EC2 model (netlab_ec2::Ec2 driven through its Query actions), so
//! limits and error codes are EC2's. The pool loop is not spawned (the shutdown token is
//! cancelled before start); tests drive [`Ipamd::reconcile_now`] and move paused time.

use std::sync::Mutex;

use netlab_ec2::model::{Ec2Config, SubnetSpec, Tags};
use netlab_ec2::{Ec2, Params};

use super::*;
use crate::api::Eni;

// === fake EC2 over the model ===

struct ModelEc2 {
    ec2: Mutex<Ec2>,
    deny: Mutex<Vec<&'static str>>,
    calls: Mutex<Vec<String>>,
}

impl ModelEc2 {
    fn call(&self, action: &'static str, pairs: Vec<(String, String)>) -> Result<String, ApiError> {
        self.calls.lock().unwrap().push(action.to_string());
        let err = |code: &str, message: String| ApiError {
            operation: action.into(),
            status: 400,
            request_id: "00000000-0000-4000-8000-000000000000".into(),
            code: code.into(),
            message,
        };
        if self.deny.lock().unwrap().contains(&action) {
            return Err(err(
                "UnauthorizedOperation",
                "You are not authorized to perform this operation.".into(),
            ));
        }
        let params = Params::from_pairs(pairs);
        self.ec2
            .lock()
            .unwrap()
            .handle(action, &params, "00000000-0000-4000-8000-000000000000")
            .map_err(|e| err(e.code, e.message))
    }

    fn eni(&self, id: &str) -> Eni {
        let ec2 = self.ec2.lock().unwrap();
        to_eni(ec2.eni(id).unwrap())
    }
}

fn to_eni(e: &netlab_ec2::model::NetworkInterface) -> Eni {
    Eni {
        id: e.id.clone(),
        mac: e.mac.clone(),
        subnet_id: e.subnet_id.clone(),
        description: e.description.clone(),
        device_index: e.attachment.as_ref().map(|a| a.device_index),
        attachment_id: e.attachment.as_ref().map(|a| a.id.clone()),
        instance_id: e.attachment.as_ref().map(|a| a.instance_id.clone()),
        primary_ip: e.private_ip,
        secondary_ips: e.secondary_ips.clone(),
        prefixes: e.prefixes.clone(),
        tags: e.tags.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    }
}

fn p(k: &str, v: impl ToString) -> (String, String) {
    (k.to_string(), v.to_string())
}

fn xml_value(body: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = body.find(&open).map(|i| i + open.len()).unwrap_or(0);
    let end = body[start..].find('<').map_or(body.len(), |i| start + i);
    body[start..end].to_string()
}

#[async_trait::async_trait]
impl Ec2Api for ModelEc2 {
    async fn describe_instance_enis(&self, instance_id: &str) -> Result<Vec<Eni>, ApiError> {
        self.call(
            "DescribeNetworkInterfaces",
            vec![p("Filter.1.Name", "attachment.instance-id"), p("Filter.1.Value.1", instance_id)],
        )?;
        let ec2 = self.ec2.lock().unwrap();
        Ok(ec2.instance_enis(instance_id).into_iter().map(to_eni).collect())
    }

    async fn create_network_interface(
        &self,
        subnet_id: &str,
        groups: &[String],
        description: &str,
        tags: &[(String, String)],
        secondary_ips: u32,
        prefixes: u32,
    ) -> Result<Eni, ApiError> {
        let mut pairs = vec![p("SubnetId", subnet_id), p("Description", description)];
        for (i, g) in groups.iter().enumerate() {
            pairs.push(p(&format!("SecurityGroupId.{}", i + 1), g));
        }
        pairs.push(p("TagSpecification.1.ResourceType", "network-interface"));
        for (i, (k, v)) in tags.iter().enumerate() {
            pairs.push(p(&format!("TagSpecification.1.Tag.{}.Key", i + 1), k));
            pairs.push(p(&format!("TagSpecification.1.Tag.{}.Value", i + 1), v));
        }
        if secondary_ips > 0 {
            pairs.push(p("SecondaryPrivateIpAddressCount", secondary_ips));
        }
        if prefixes > 0 {
            pairs.push(p("Ipv4PrefixCount", prefixes));
        }
        let body = self.call("CreateNetworkInterface", pairs)?;
        Ok(self.eni(&xml_value(&body, "networkInterfaceId")))
    }

    async fn attach_network_interface(
        &self,
        eni_id: &str,
        instance_id: &str,
        device_index: u32,
    ) -> Result<String, ApiError> {
        let body = self.call(
            "AttachNetworkInterface",
            vec![
                p("NetworkInterfaceId", eni_id),
                p("InstanceId", instance_id),
                p("DeviceIndex", device_index),
            ],
        )?;
        Ok(xml_value(&body, "attachmentId"))
    }

    async fn set_delete_on_termination(&self, eni_id: &str, attachment_id: &str) -> Result<(), ApiError> {
        self.call(
            "ModifyNetworkInterfaceAttribute",
            vec![
                p("NetworkInterfaceId", eni_id),
                p("Attachment.AttachmentId", attachment_id),
                p("Attachment.DeleteOnTermination", "true"),
            ],
        )
        .map(drop)
    }

    async fn detach_network_interface(&self, attachment_id: &str) -> Result<(), ApiError> {
        self.call("DetachNetworkInterface", vec![p("AttachmentId", attachment_id)]).map(drop)
    }

    async fn delete_network_interface(&self, eni_id: &str) -> Result<(), ApiError> {
        self.call("DeleteNetworkInterface", vec![p("NetworkInterfaceId", eni_id)]).map(drop)
    }

    async fn assign_private_ips(&self, eni_id: &str, count: u32) -> Result<Vec<Ipv4Addr>, ApiError> {
        let before = self.eni(eni_id).secondary_ips;
        self.call(
            "AssignPrivateIpAddresses",
            vec![p("NetworkInterfaceId", eni_id), p("SecondaryPrivateIpAddressCount", count)],
        )?;
        Ok(self.eni(eni_id).secondary_ips.into_iter().filter(|ip| !before.contains(ip)).collect())
    }

    async fn assign_prefixes(&self, eni_id: &str, count: u32) -> Result<Vec<Ipv4Net>, ApiError> {
        let before = self.eni(eni_id).prefixes;
        self.call(
            "AssignPrivateIpAddresses",
            vec![p("NetworkInterfaceId", eni_id), p("Ipv4PrefixCount", count)],
        )?;
        Ok(self.eni(eni_id).prefixes.into_iter().filter(|x| !before.contains(x)).collect())
    }

    async fn unassign_private_ips(&self, eni_id: &str, ips: &[Ipv4Addr]) -> Result<(), ApiError> {
        let mut pairs = vec![p("NetworkInterfaceId", eni_id)];
        for (i, ip) in ips.iter().enumerate() {
            pairs.push(p(&format!("PrivateIpAddress.{}", i + 1), ip));
        }
        self.call("UnassignPrivateIpAddresses", pairs).map(drop)
    }

    async fn unassign_prefixes(&self, eni_id: &str, prefixes: &[Ipv4Net]) -> Result<(), ApiError> {
        let mut pairs = vec![p("NetworkInterfaceId", eni_id)];
        for (i, x) in prefixes.iter().enumerate() {
            pairs.push(p(&format!("Ipv4Prefix.{}", i + 1), x));
        }
        self.call("UnassignPrivateIpAddresses", pairs).map(drop)
    }
}

// === harness ===

struct Lab {
    ec2: Arc<ModelEc2>,
    instance: InstanceInfo,
    dir: tempfile::TempDir,
}

impl Lab {
    fn new(instance_type: &str) -> Lab {
        Lab::with_config(instance_type, Ec2Config::default())
    }

    /// A lab whose only subnet in us-east-1a is `cidr` (a /28 has 11 usable addresses).
    fn with_subnet(instance_type: &str, cidr: &str) -> Lab {
        let cfg = Ec2Config {
            subnets: vec![SubnetSpec {
                availability_zone: "us-east-1a".into(),
                cidr: cidr.parse().unwrap(),
                tags: Tags::new(),
            }],
            ..Ec2Config::default()
        };
        Lab::with_config(instance_type, cfg)
    }

    fn with_config(instance_type: &str, cfg: Ec2Config) -> Lab {
        let mut ec2 = Ec2::new(&cfg).unwrap();
        let id = ec2.launch_instance(instance_type, "us-east-1a", Tags::new()).unwrap().id.clone();
        let inst = ec2.instance(&id).unwrap().clone();
        let eni = ec2.eni(&inst.primary_eni).unwrap().clone();
        let subnet = ec2.subnet(&inst.subnet_id).unwrap().clone();
        let instance = InstanceInfo {
            instance_id: id,
            instance_type: instance_type.into(),
            availability_zone: inst.availability_zone.clone(),
            primary_mac: eni.mac.clone(),
            primary_eni: eni.id.clone(),
            primary_ip: eni.private_ip,
            subnet_id: subnet.id.clone(),
            subnet_cidr: subnet.cidr,
            vpc_cidrs: vec![ec2.vpc.cidr],
            security_groups: eni.security_groups.clone(),
        };
        let ec2 = Arc::new(ModelEc2 {
            ec2: Mutex::new(ec2),
            deny: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        });
        Lab { ec2, instance, dir: tempfile::tempdir().unwrap() }
    }

    fn config(&self, knobs: Knobs, max_pods: u32) -> IpamdConfig {
        IpamdConfig {
            knobs,
            max_pods,
            state_dir: self.dir.path().join("run"),
            log_file: self.dir.path().join("log/ipamd.log"),
            time_scale: 0.01,
            cluster_name: Some("lab".into()),
        }
    }

    async fn start(&self, knobs: Knobs, max_pods: u32) -> Arc<Ipamd> {
        let token = CancellationToken::new();
        token.cancel();
        Ipamd::start(self.config(knobs, max_pods), self.instance.clone(), self.ec2.clone(), token)
            .await
            .unwrap()
    }

    /// (ENIs attached, pod-usable addresses) as EC2 sees them.
    fn ec2_view(&self) -> (usize, usize) {
        let ec2 = self.ec2.ec2.lock().unwrap();
        let enis = ec2.instance_enis(&self.instance.instance_id);
        let ips = enis.iter().map(|e| e.secondary_ips.len() + e.prefixes.len() * 16).sum();
        (enis.len(), ips)
    }

    fn log(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("log/ipamd.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn logged(&self, msg: &str) -> bool {
        self.log().iter().any(|l| l["msg"].as_str().is_some_and(|m| m.contains(msg)))
    }
}

/// Pool steps until nothing changes (at most 10).
async fn settle(ipamd: &Ipamd) {
    for _ in 0..10 {
        let before = ipamd.eni_summary();
        ipamd.reconcile_now().await;
        if ipamd.eni_summary() == before {
            return;
        }
    }
}

fn add_req(n: usize) -> AddNetworkRequest {
    AddNetworkRequest {
        pod_name: format!("pod-{n}"),
        pod_namespace: "default".into(),
        container_id: format!("{n:064x}"),
        ifname: "eth0".into(),
        netns: format!("/var/run/netns/cni-{n}"),
        network_name: "aws-cni".into(),
    }
}

fn del_req(n: usize) -> DelNetworkRequest {
    DelNetworkRequest {
        pod_name: format!("pod-{n}"),
        pod_namespace: "default".into(),
        container_id: format!("{n:064x}"),
        ifname: "eth0".into(),
        network_name: "aws-cni".into(),
        reason: "PodDeleted".into(),
    }
}

/// Adds pods 0..n one by one, with a settled pool after each (pods arrive slower than the pool
/// monitor runs).
async fn add_pods(ipamd: &Ipamd, range: std::ops::Range<usize>) -> Vec<AddNetworkReply> {
    let mut replies = Vec::new();
    for n in range {
        let r = ipamd.add_network(&add_req(n)).await;
        settle(ipamd).await;
        replies.push(r);
    }
    replies
}

// === docs/eni-and-ip-target.md worked examples (t3.small: 3 ENIs × 3 usable IPs) ===

#[tokio::test(start_paused = true)]
async fn warm_eni_target_1_on_t3_small() {
    let lab = Lab::new("t3.small");
    let ipamd = lab.start(Knobs::default(), 11).await;
    settle(&ipamd).await;
    assert_eq!(lab.ec2_view(), (1, 3), "0 pods → 1 ENI / 3 IPs");
    let replies = add_pods(&ipamd, 0..5).await;
    assert!(replies.iter().all(|r| r.success));
    assert_eq!(lab.ec2_view(), (3, 9), "5 pods → 3 ENIs / 9 IPs");
    let replies = add_pods(&ipamd, 5..9).await;
    assert!(replies.iter().all(|r| r.success));
    assert_eq!(lab.ec2_view(), (3, 9), "9 pods → 3 ENIs / 9 IPs");
    assert_eq!(ipamd.stats().available(), 0);
    assert_eq!(ipamd.enis()["0"]["TotalIPs"], 9);
    assert_eq!(ipamd.enis()["0"]["AssignedIPs"], 9);
}

#[tokio::test(start_paused = true)]
async fn warm_ip_target_2_minimum_ip_target_5_on_t3_small() {
    let lab = Lab::new("t3.small");
    let knobs = Knobs { warm_ip_target: 2, minimum_ip_target: 5, ..Knobs::default() };
    let ipamd = lab.start(knobs, 11).await;
    settle(&ipamd).await;
    assert_eq!(lab.ec2_view(), (2, 5), "0 pods → 2 ENIs / 5 IPs");
    add_pods(&ipamd, 0..5).await;
    assert_eq!(lab.ec2_view(), (3, 7), "5 pods → 3 ENIs / 7 IPs");
}

#[tokio::test(start_paused = true)]
async fn new_enis_are_made_as_upstream_makes_them() {
    let lab = Lab::new("t3.small");
    let ipamd = lab.start(Knobs { warm_eni_target: 2, ..Knobs::default() }, 11).await;
    settle(&ipamd).await;
    let ec2 = lab.ec2.ec2.lock().unwrap();
    let enis = ec2.instance_enis(&lab.instance.instance_id);
    assert_eq!(enis.len(), 2);
    let eni = enis.iter().find(|e| e.id != lab.instance.primary_eni).unwrap();
    assert_eq!(eni.description, format!("aws-K8S-{}", lab.instance.instance_id));
    assert_eq!(eni.tags.get("node.k8s.amazonaws.com/instance_id"), Some(&lab.instance.instance_id));
    assert!(eni.tags.contains_key("node.k8s.amazonaws.com/createdAt"));
    assert_eq!(eni.tags.get("cluster.k8s.amazonaws.com/name").map(String::as_str), Some("lab"));
    assert_eq!(eni.tags.get("eks:eni:owner").map(String::as_str), Some("amazon-vpc-cni"));
    assert_eq!(eni.security_groups, lab.instance.security_groups);
    assert_eq!(eni.subnet_id, lab.instance.subnet_id);
    let att = eni.attachment.as_ref().unwrap();
    assert_eq!(att.device_index, 1);
    assert!(att.delete_on_termination);
}

#[tokio::test(start_paused = true)]
async fn reply_carries_device_route_table_and_vpc_cidrs() {
    let lab = Lab::new("t3.small");
    let knobs = Knobs { exclude_snat_cidrs: vec!["10.0.0.0/8".parse().unwrap()], ..Knobs::default() };
    let ipamd = lab.start(knobs, 11).await;
    settle(&ipamd).await;
    let replies = add_pods(&ipamd, 0..4).await;
    assert_eq!((replies[0].device_number, replies[0].route_table_id), (0, 254), "primary ENI → main table");
    assert_eq!((replies[3].device_number, replies[3].route_table_id), (1, 2));
    assert!(!replies[0].use_external_snat);
    assert_eq!(replies[0].vpc_cidrs, vec!["192.168.0.0/16".parse().unwrap(), "10.0.0.0/8".parse().unwrap()]);
    // Deterministic order: lowest device, then lowest address.
    let ips: Vec<Ipv4Addr> = replies[..3].iter().map(|r| r.ipv4.unwrap()).collect();
    let mut sorted = ips.clone();
    sorted.sort();
    assert_eq!(ips, sorted);
}

#[tokio::test(start_paused = true)]
async fn external_snat_is_passed_and_exclusions_dropped() {
    let lab = Lab::new("t3.small");
    let knobs = Knobs {
        external_snat: true,
        exclude_snat_cidrs: vec!["10.0.0.0/8".parse().unwrap()],
        ..Knobs::default()
    };
    let ipamd = lab.start(knobs, 11).await;
    let r = ipamd.add_network(&add_req(0)).await;
    assert!(r.success && r.use_external_snat);
    assert_eq!(r.vpc_cidrs, vec!["192.168.0.0/16".parse().unwrap()]);
}

#[tokio::test(start_paused = true)]
async fn prefix_delegation_on_nitro_assigns_28s() {
    let lab = Lab::new("t3.medium");
    let knobs = Knobs { enable_prefix_delegation: true, warm_prefix_target: 1, ..Knobs::default() };
    let ipamd = lab.start(knobs, 110).await;
    settle(&ipamd).await;
    assert_eq!(lab.ec2_view(), (1, 16), "one /28 on the primary ENI");
    let summary = ipamd.eni_summary();
    assert_eq!(summary[0].2.len(), 1);
    assert_eq!(summary[0].2[0].prefix_len(), 28);
    let r = ipamd.add_network(&add_req(0)).await;
    assert!(r.success);
    assert!(summary[0].2[0].contains(&r.ipv4.unwrap()));
    settle(&ipamd).await;
    assert_eq!(lab.ec2_view(), (1, 32), "WARM_PREFIX_TARGET=1 keeps a whole free /28 once one is used");
    assert!(lab.ec2.calls.lock().unwrap().iter().all(|c| c != "CreateNetworkInterface"));
}

#[tokio::test(start_paused = true)]
async fn max_pods_stops_growth() {
    let lab = Lab::new("t3.medium");
    let ipamd = lab.start(Knobs::default(), 5).await;
    settle(&ipamd).await;
    assert_eq!(lab.ec2_view(), (1, 5));
    let replies = add_pods(&ipamd, 0..6).await;
    assert!(replies[..5].iter().all(|r| r.success));
    assert!(!replies[5].success, "TotalIPs >= max pods: no more ENIs");
    assert_eq!(lab.ec2_view(), (1, 5));
}

#[tokio::test(start_paused = true)]
async fn max_eni_caps_enis() {
    let lab = Lab::new("t3.small");
    let ipamd = lab.start(Knobs { max_eni: Some(2), ..Knobs::default() }, 11).await;
    add_pods(&ipamd, 0..7).await;
    assert_eq!(lab.ec2_view(), (2, 6));
    assert!(lab.logged("Skipping ENI allocation as the max ENI limit is already reached"));
}

#[tokio::test(start_paused = true)]
async fn exhausted_subnet_fails_the_add_with_upstream_logs_and_cools_down() {
    // 192.168.0.0/28: 11 usable, the primary ENI takes 1 → 10 left: 5 secondaries on the
    // primary, then a second ENI would need 1 + 5 and CreateNetworkInterface is refused.
    let lab = Lab::with_subnet("t3.medium", "192.168.0.0/28");
    let ipamd = lab.start(Knobs::default(), 17).await;
    let replies = add_pods(&ipamd, 0..6).await;
    assert!(replies[..5].iter().all(|r| r.success));
    assert_eq!(lab.ec2_view(), (1, 5));
    let last = &replies[5];
    assert!(!last.success);
    assert_eq!(last.ipv4, None);
    assert!(lab.logged("AssignPodIPAddress: no available IP/Prefix addresses"));
    assert!(lab.logged("DataStore has no available IP/Prefix addresses"));
    assert!(lab.logged(
        "Returning failure response for AddNetwork: AssignPodIPAddress: no available IP/Prefix addresses"
    ));
    assert!(lab.logged(SUBNET_EXHAUSTED_MSG));
    // Within the 120 s (scaled: 1.2 s) cooldown no EC2 call is made.
    let calls = lab.ec2.calls.lock().unwrap().len();
    ipamd.reconcile_now().await;
    assert_eq!(
        lab.ec2.calls.lock().unwrap().len(),
        calls,
        "cooling down after InsufficientFreeAddressesInSubnet"
    );
    assert!(lab.logged("Recently we had InsufficientCidr error"));
    tokio::time::advance(Duration::from_millis(1300)).await;
    ipamd.reconcile_now().await;
    assert!(lab.ec2.calls.lock().unwrap().len() > calls, "retries after the cooldown");
}

#[tokio::test(start_paused = true)]
async fn a_released_address_cools_down_before_reuse() {
    let lab = Lab::new("t3.medium");
    // Cooldown 30 s × 0.01 = 300 ms.
    let ipamd = lab.start(Knobs::default(), 17).await;
    let first = ipamd.add_network(&add_req(0)).await.ipv4.unwrap();
    assert!(ipamd.del_network(&del_req(0)).await.success);
    let second = ipamd.add_network(&add_req(1)).await.ipv4.unwrap();
    assert_ne!(first, second, "the freed address is cooling down");
    assert!(ipamd.del_network(&del_req(1)).await.success);
    tokio::time::advance(Duration::from_millis(350)).await;
    let third = ipamd.add_network(&add_req(2)).await.ipv4.unwrap();
    assert_eq!(third, first, "after the cooldown the lowest freed address is reused");
}

#[tokio::test(start_paused = true)]
async fn add_and_del_are_idempotent() {
    let lab = Lab::new("t3.medium");
    let ipamd = lab.start(Knobs::default(), 17).await;
    let a = ipamd.add_network(&add_req(0)).await;
    let b = ipamd.add_network(&add_req(0)).await;
    assert_eq!(a, b);
    assert_eq!(ipamd.stats().assigned_ips, 1);
    let d1 = ipamd.del_network(&del_req(0)).await;
    assert_eq!((d1.success, d1.ipv4), (true, a.ipv4));
    let d2 = ipamd.del_network(&del_req(0)).await;
    assert_eq!((d2.success, d2.ipv4), (true, None));
    assert!(lab.logged("UnassignPodIPAddress: Failed to find sandbox aws-cni/"));
    assert_eq!(ipamd.stats().assigned_ips, 0);
}

#[tokio::test(start_paused = true)]
async fn checkpoint_is_written_and_restored_against_ec2() {
    let lab = Lab::new("t3.medium");
    let ipamd = lab.start(Knobs::default(), 17).await;
    let replies = add_pods(&ipamd, 0..3).await;
    let body: serde_json::Value =
        serde_json::from_slice(&std::fs::read(lab.dir.path().join("run/ipam.json")).unwrap()).unwrap();
    assert_eq!(body["version"], "vpc-cni-ipam/1");
    let allocs = body["allocations"].as_array().unwrap();
    assert_eq!(allocs.len(), 3);
    assert_eq!(allocs[0]["containerID"], format!("{:064x}", 0));
    assert_eq!(allocs[0]["ifName"], "eth0");
    assert_eq!(allocs[0]["networkName"], "aws-cni");
    assert_eq!(allocs[0]["ipv4"], replies[0].ipv4.unwrap().to_string());
    assert_eq!(allocs[0]["metadata"]["k8sPodNamespace"], "default");
    assert_eq!(allocs[0]["metadata"]["k8sPodName"], "pod-0");
    drop(ipamd);

    // EC2 takes pod-1's address away while ipamd is down.
    let gone = replies[1].ipv4.unwrap();
    lab.ec2.unassign_private_ips(&lab.instance.primary_eni, &[gone]).await.unwrap();
    let ipamd = lab.start(Knobs::default(), 17).await;
    assert_eq!(ipamd.stats().assigned_ips, 2);
    assert_eq!(
        ipamd.add_network(&add_req(0)).await.ipv4,
        replies[0].ipv4,
        "restored allocation, same address"
    );
    assert!(lab.logged(&format!("uses unknown IP Address {gone} - presuming stale/dead")));
    let pods = ipamd.pods();
    assert_eq!(pods.as_array().unwrap().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn gc_releases_gone_sandboxes() {
    let lab = Lab::new("t3.medium");
    let ipamd = lab.start(Knobs::default(), 17).await;
    add_pods(&ipamd, 0..3).await;
    let released = ipamd.gc(&[format!("{:064x}", 1)]);
    assert_eq!(released, vec![format!("{:064x}", 0), format!("{:064x}", 2)]);
    assert_eq!(ipamd.stats().assigned_ips, 1);
}

#[tokio::test(start_paused = true)]
async fn warm_ip_target_shrinks_after_the_decrease_interval_and_frees_enis() {
    let lab = Lab::new("t3.small");
    let knobs = Knobs { warm_ip_target: 1, ..Knobs::default() };
    let ipamd = lab.start(knobs, 11).await;
    add_pods(&ipamd, 0..6).await;
    assert_eq!(lab.ec2_view(), (3, 7));
    for n in 0..6 {
        ipamd.del_network(&del_req(n)).await;
    }
    // After the cooldown (0.3 s), the ENI lifetime (0.6 s) and decrease intervals (0.3 s):
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(400)).await;
        ipamd.reconcile_now().await;
    }
    // The surplus 6 addresses go first (lowest devices first), leaving the primary empty and
    // device 2 holding the one warm address; device 1 is then free of everything and freed.
    // The primary is never freed.
    let (enis, ips) = lab.ec2_view();
    assert_eq!((enis, ips), (2, 1), "WARM_IP_TARGET=1: surplus addresses unassigned, an unused ENI freed");
    let summary = ipamd.eni_summary();
    assert_eq!(summary.iter().map(|e| e.1).collect::<Vec<_>>(), vec![0, 2]);
    let ec2 = lab.ec2.ec2.lock().unwrap();
    assert_eq!(ec2.enis.len(), 2, "the freed ENI is deleted, not just detached");
}

#[tokio::test(start_paused = true)]
async fn an_eni_with_pods_is_never_freed() {
    let lab = Lab::new("t3.small");
    let ipamd = lab.start(Knobs { warm_ip_target: 1, ..Knobs::default() }, 11).await;
    add_pods(&ipamd, 0..4).await; // pod 3 sits on device 1
    for n in 0..3 {
        ipamd.del_network(&del_req(n)).await;
    }
    for _ in 0..20 {
        tokio::time::advance(Duration::from_millis(400)).await;
        ipamd.reconcile_now().await;
    }
    let summary = ipamd.eni_summary();
    assert!(summary.iter().any(|(_, dev, _)| *dev == 1), "{summary:?}");
    assert_eq!(ipamd.add_network(&add_req(3)).await.device_number, 1);
}

#[tokio::test(start_paused = true)]
async fn unauthorized_is_logged_with_the_iam_hint() {
    let lab = Lab::new("t3.small");
    lab.ec2.deny.lock().unwrap().push("AssignPrivateIpAddresses");
    let ipamd = lab.start(Knobs::default(), 11).await;
    assert!(!ipamd.add_network(&add_req(0)).await.success);
    assert!(lab.logged(
        "Unauthorized operation: failed to call ec2:AssignPrivateIpAddresses due to missing permissions."
    ));
}

#[tokio::test(start_paused = true)]
async fn attach_failure_deletes_the_new_eni() {
    let lab = Lab::new("t3.small");
    lab.ec2.deny.lock().unwrap().push("AttachNetworkInterface");
    let ipamd = lab.start(Knobs::default(), 11).await;
    add_pods(&ipamd, 0..4).await;
    let calls = lab.ec2.calls.lock().unwrap().clone();
    assert!(calls.iter().any(|c| c == "DeleteNetworkInterface"), "{calls:?}");
    assert_eq!(lab.ec2.ec2.lock().unwrap().enis.len(), 1, "no ENI left behind");
}

#[tokio::test(start_paused = true)]
async fn pool_loop_runs_on_its_own_until_shutdown() {
    let lab = Lab::new("t3.small");
    let token = CancellationToken::new();
    let ipamd =
        Ipamd::start(lab.config(Knobs::default(), 11), lab.instance.clone(), lab.ec2.clone(), token.clone())
            .await
            .unwrap();
    for n in 0..5 {
        assert!(ipamd.add_network(&add_req(n)).await.success || n >= 3);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(lab.ec2_view().0, 3, "the loop grew the pool");
    assert!(lab.logged("IP pool manager - max pods: 11, warm IP target: 0, warm prefix target: 0, warm ENI target: 1, minimum IP target: 0"));
    token.cancel();
}

#[tokio::test]
async fn unknown_instance_types_are_refused() {
    let lab = Lab::new("t3.small");
    let mut instance = lab.instance.clone();
    instance.instance_type = "x9.huge".into();
    let token = CancellationToken::new();
    let err =
        Ipamd::start(lab.config(Knobs::default(), 11), instance, lab.ec2.clone(), token).await.unwrap_err();
    assert!(matches!(err, IpamdError::UnknownInstanceType(_)));
}
