//! ipamd's real clients (IMDS, EC2) against the real `netlab-cloud`, with an apiserver whose Node
//! objects tell the cloud's IMDS which instance asks (a node's InternalIP is the peer address):
//! the instance's own ids and subnet from IMDS, the ENI and address calls up to the instance
//! type's limits with EC2's error texts, IMDS agreeing with EC2 after each change, and
//! `UnauthorizedOperation` once the node role loses the CNI policy.
//!
//! The binaries come from the workspace's target directory: build them first
//! (`cargo build -p netlab-cloud -p netlab-apiserver`, or run `cargo test --workspace`).

use std::{
    io::{Read as _, Write as _},
    net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream},
    time::Duration,
};

use bytes::Bytes;
use netlab_credential_provider::{credentials::Credentials, http::HttpClient, sigv4};
use netlab_e2e::{Apiserver, block_on, eventually, parts::Cloud};
use netlab_vpc_cni::{
    Ec2Api, InstanceInfo,
    ec2::{Ec2Client, Ec2ClientConfig},
    imds::{self, Imds},
};

/// node-1's address: the source address of its IMDS and EC2 calls.
const NODE1_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 61, 11);
/// node-2's.
const NODE2_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 61, 12);

/// An apiserver with node-1 and node-2 at their addresses, and the cloud with the two as
/// instances (t3.medium: 3 ENIs of 6 addresses; m5.large), following the apiserver's nodes.
struct Lab {
    cloud: Cloud,
    _api: Apiserver,
    cloud_dir: tempfile::TempDir,
    _api_dir: tempfile::TempDir,
}

// === impl Lab ===

impl Lab {
    fn start() -> Self {
        let api_dir = tempfile::tempdir().unwrap();
        let cloud_dir = tempfile::tempdir().unwrap();
        let api = Apiserver::start(api_dir.path(), &[]);
        for (name, ip) in [("node-1", NODE1_IP), ("node-2", NODE2_IP)] {
            create_node(api.addr, name, ip);
        }
        let cloud = Cloud::start(&[
            "--data-dir",
            cloud_dir.path().to_str().unwrap(),
            "--ec2-instances",
            "node-1=t3.medium,node-2=m5.large",
            "--apiserver",
            &api.url(),
        ]);
        Self { cloud, _api: api, cloud_dir, _api_dir: api_dir }
    }

    fn imds(&self) -> String {
        format!("http://{}", self.cloud.imds)
    }

    fn aws(&self) -> String {
        format!("http://{}", self.cloud.aws)
    }

    /// ipamd's EC2 client on `node`'s address, with its node role's credentials from IMDS.
    fn ec2(&self, node: Ipv4Addr) -> Ec2Client {
        Ec2Client::new(Ec2ClientConfig {
            endpoint: self.aws(),
            region: "us-east-1".into(),
            imds_endpoint: self.imds(),
            local_addr: Some(IpAddr::V4(node)),
        })
    }

    /// IMDS's view from `node`, once the cloud has seen the Node object (404 until then).
    async fn instance_info(&self, node: Ipv4Addr) -> InstanceInfo {
        let endpoint = self.imds();
        eventually("IMDS to know the node", Duration::from_secs(10), || {
            let endpoint = endpoint.clone();
            async move { imds::instance_info(&endpoint, Some(IpAddr::V4(node))).await.ok() }
        })
        .await
    }

    /// The lab admin's key, from the account the cloud keeps in its data directory.
    fn admin(&self) -> Credentials {
        let text = std::fs::read_to_string(self.cloud_dir.path().join("aws.json")).unwrap();
        let account: serde_json::Value = serde_json::from_str(&text).unwrap();
        let key = find_admin_key(&account).expect("the admin's access key in aws.json");
        Credentials {
            access_key_id: key["access_key_id"].as_str().unwrap().to_string(),
            secret_access_key: key["secret_access_key"].as_str().unwrap().to_string(),
            session_token: None,
            expiration: None,
            source: "test",
        }
    }

    /// One IAM Query call signed with the admin's key: the status and body.
    async fn iam(&self, params: &[(&str, &str)]) -> (u16, String) {
        let mut form = String::from("Version=2010-05-08");
        for (k, v) in params {
            form.push_str(&format!("&{k}={}", v.replace(':', "%3A").replace('/', "%2F")));
        }
        let mut req = http::Request::post(format!("{}/", self.aws()))
            .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
            .body(Bytes::from(form))
            .unwrap();
        sigv4::sign(&mut req, "iam", "us-east-1", &self.admin(), jiff::Timestamp::now()).unwrap();
        let resp = HttpClient::default().send("iam.call", req).await.unwrap();
        (resp.status().as_u16(), String::from_utf8_lossy(resp.body()).into_owned())
    }
}

/// The access key object of user `admin`, wherever the account keeps it.
fn find_admin_key(v: &serde_json::Value) -> Option<&serde_json::Value> {
    match v {
        serde_json::Value::Object(map) => {
            if map.get("user_name").and_then(|u| u.as_str()) == Some("admin")
                && map.contains_key("access_key_id")
            {
                return Some(v);
            }
            map.values().find_map(find_admin_key)
        }
        serde_json::Value::Array(items) => items.iter().find_map(find_admin_key),
        _ => None,
    }
}

/// Creates the Node `name` with `ip` as its InternalIP through the apiserver's REST edge, as the
/// kubelet registers itself (status included).
fn create_node(api: SocketAddr, name: &str, ip: Ipv4Addr) {
    let node = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {"addresses": [{"type": "InternalIP", "address": ip.to_string()}, {"type": "Hostname", "address": name}]},
    })
    .to_string();
    let (status, body) = rest(api, "POST", "/api/v1/nodes", &node);
    assert_eq!(status, 201, "create node {name}: {body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    if created["status"]["addresses"].as_array().is_none_or(|a| a.is_empty()) {
        // The create kept no status: write it through the status subresource.
        let mut with_status: serde_json::Value = serde_json::from_str(&node).unwrap();
        with_status["metadata"] = created["metadata"].clone();
        let (status, body) =
            rest(api, "PUT", &format!("/api/v1/nodes/{name}/status"), &with_status.to_string());
        assert_eq!(status, 200, "node {name} status: {body}");
    }
}

/// One JSON request to the apiserver's REST edge: the status and body.
fn rest(api: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(api).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn imds_tells_each_node_its_own_instance_and_ec2_agrees() {
    let lab = Lab::start();
    block_on(async {
        let info = lab.instance_info(NODE1_IP).await;
        assert!(info.instance_id.starts_with("i-"), "{info:?}");
        assert_eq!(info.instance_type, "t3.medium");
        assert_eq!(info.availability_zone, "us-east-1a");
        assert!(info.primary_eni.starts_with("eni-"), "{info:?}");
        assert!(info.subnet_id.starts_with("subnet-"), "{info:?}");
        assert!(info.subnet_cidr.contains(&info.primary_ip), "{info:?}");
        assert!(info.vpc_cidrs.iter().any(|v| v.contains(&info.subnet_cidr)), "{info:?}");
        assert!(!info.security_groups.is_empty() && info.security_groups[0].starts_with("sg-"), "{info:?}");

        // The other node is another instance.
        let other = lab.instance_info(NODE2_IP).await;
        assert_ne!(other.instance_id, info.instance_id);
        assert_eq!(other.instance_type, "m5.large");

        // EC2, called with node-1's role credentials from IMDS, says the same of the primary ENI.
        let ec2 = lab.ec2(NODE1_IP);
        let enis = ec2.describe_instance_enis(&info.instance_id).await.unwrap();
        assert_eq!(enis.len(), 1, "{enis:?}");
        let primary = &enis[0];
        assert_eq!(primary.id, info.primary_eni);
        assert_eq!(primary.mac, info.primary_mac);
        assert_eq!(primary.primary_ip, info.primary_ip);
        assert_eq!(primary.subnet_id, info.subnet_id);
        assert_eq!(primary.device_index, Some(0));
        assert_eq!(primary.instance_id.as_deref(), Some(info.instance_id.as_str()));
        assert!(primary.secondary_ips.is_empty());
        let ips =
            imds::interface_ips(&lab.imds(), Some(IpAddr::V4(NODE1_IP)), &info.primary_mac).await.unwrap();
        assert_eq!(ips, [info.primary_ip]);

        // A MAC the instance does not have: a 404, which is "no addresses".
        let none = imds::interface_ips(&lab.imds(), Some(IpAddr::V4(NODE1_IP)), "02:00:00:00:00:00").await;
        assert_eq!(none, Ok(vec![]));

        // An address that is no node's: IMDS knows no instance there, as the SDK words it.
        let e = imds::instance_info(&lab.imds(), Some(IpAddr::V4(Ipv4Addr::new(127, 0, 61, 99))))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "operation error ec2imds: GetMetadata, http response error StatusCode: 404, request to EC2 IMDS failed"
        );
        // ... and no role credentials either: the EC2 call fails before it is sent.
        let stranger = lab.ec2(Ipv4Addr::new(127, 0, 61, 99));
        let e = stranger.describe_instance_enis(&info.instance_id).await.unwrap_err();
        assert_eq!(e.status, 0);
        assert!(
            e.to_string().starts_with(
                "operation error EC2: DescribeNetworkInterfaces, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, http response error StatusCode: 404"
            ),
            "{e}"
        );

        // Nothing listening: the SDK's send failure, after its attempts.
        let closed = Ec2Client::new(Ec2ClientConfig {
            endpoint: format!("http://127.0.0.1:{}", netlab_e2e::free_port()),
            region: "us-east-1".into(),
            imds_endpoint: lab.imds(),
            local_addr: Some(IpAddr::V4(NODE1_IP)),
        });
        let e = closed.describe_instance_enis(&info.instance_id).await.unwrap_err();
        assert!(
            e.to_string().starts_with("operation error EC2: DescribeNetworkInterfaces, exceeded maximum number of attempts, 3, https response error StatusCode: 0, RequestID: , request send failed, Post \"http://127.0.0.1:")
                && e.to_string().ends_with("connect: connection refused"),
            "{e}"
        );
    });
}

#[test]
fn enis_and_addresses_up_to_the_instance_types_limits() {
    let lab = Lab::start();
    block_on(async {
        let info = lab.instance_info(NODE1_IP).await;
        let ec2 = lab.ec2(NODE1_IP);
        let node = Some(IpAddr::V4(NODE1_IP));
        let imds = Imds::new(&lab.imds(), node).unwrap();

        // An ENI as ipamd makes one: in the primary's subnet and groups, tagged, described.
        let description = format!("aws-K8S-{}", info.instance_id);
        let tags = vec![
            ("node.k8s.amazonaws.com/instance_id".to_string(), info.instance_id.clone()),
            ("node.k8s.amazonaws.com/createdAt".to_string(), "2026-12-07T23:00:00Z".to_string()),
        ];
        let eni = ec2
            .create_network_interface(&info.subnet_id, &info.security_groups, &description, &tags, 0, 0)
            .await
            .unwrap();
        assert!(eni.id.starts_with("eni-"), "{eni:?}");
        assert_eq!(eni.subnet_id, info.subnet_id);
        assert_eq!(eni.description, description);
        assert_eq!(eni.device_index, None);
        assert!(info.subnet_cidr.contains(&eni.primary_ip));
        for t in &tags {
            assert!(eni.tags.contains(t), "{t:?} in {:?}", eni.tags);
        }
        let attachment = ec2.attach_network_interface(&eni.id, &info.instance_id, 1).await.unwrap();
        assert!(attachment.starts_with("eni-attach-"), "{attachment}");
        ec2.set_delete_on_termination(&eni.id, &attachment).await.unwrap();
        let enis = ec2.describe_instance_enis(&info.instance_id).await.unwrap();
        let attached = enis.iter().find(|e| e.id == eni.id).expect("the new ENI is the instance's");
        assert_eq!(
            (attached.device_index, attached.attachment_id.as_deref()),
            (Some(1), Some(attachment.as_str()))
        );

        // IMDS shows the new interface with its primary address.
        assert!(imds.macs().await.unwrap().contains(&eni.mac));
        assert_eq!(imds.interface_ips(&eni.mac).await.unwrap(), [eni.primary_ip]);
        assert_eq!(imds.device_number(&eni.mac).await.unwrap(), 1);

        // t3.medium: 6 addresses per ENI, the primary and 5 secondaries.
        let ips = ec2.assign_private_ips(&eni.id, 5).await.unwrap();
        assert_eq!(ips.len(), 5);
        let e = ec2.assign_private_ips(&eni.id, 1).await.unwrap_err();
        assert_eq!(e.code, "PrivateIpAddressLimitExceeded");
        assert_eq!(e.message, "Number of private addresses will exceed limit.");
        assert_eq!(e.status, 400);
        assert!(!e.request_id.is_empty());
        assert_eq!(
            e.to_string(),
            format!(
                "operation error EC2: AssignPrivateIpAddresses, https response error StatusCode: 400, RequestID: {}, api error PrivateIpAddressLimitExceeded: Number of private addresses will exceed limit.",
                e.request_id
            )
        );
        // IMDS agrees with EC2.
        let mut expected = vec![eni.primary_ip];
        expected.extend(&ips);
        assert_eq!(imds::interface_ips(&lab.imds(), node, &eni.mac).await.unwrap(), expected);
        let described = ec2.describe_instance_enis(&info.instance_id).await.unwrap();
        let described = described.iter().find(|e| e.id == eni.id).unwrap();
        assert_eq!(described.secondary_ips, ips);

        // Unassigning two: EC2 and IMDS both drop them.
        ec2.unassign_private_ips(&eni.id, &ips[..2]).await.unwrap();
        assert_eq!(imds.interface_ips(&eni.mac).await.unwrap(), [&[eni.primary_ip], &ips[2..]].concat());
        let e = ec2.unassign_private_ips(&eni.id, &ips[..1]).await.unwrap_err();
        assert_eq!(e.status, 400, "{e}");

        // A third ENI fills the instance; a fourth is beyond t3.medium's 3.
        let third = ec2
            .create_network_interface(&info.subnet_id, &info.security_groups, &description, &tags, 2, 0)
            .await
            .unwrap();
        assert_eq!(third.secondary_ips.len(), 2, "created with its secondaries: {third:?}");
        ec2.attach_network_interface(&third.id, &info.instance_id, 2).await.unwrap();
        let fourth = ec2
            .create_network_interface(&info.subnet_id, &info.security_groups, &description, &tags, 0, 0)
            .await
            .unwrap();
        let e = ec2.attach_network_interface(&fourth.id, &info.instance_id, 3).await.unwrap_err();
        assert_eq!(e.code, "AttachmentLimitExceeded", "{e}");
        assert_eq!(e.message, "Interface count 4 exceeds the limit for t3.medium");
        // ipamd deletes an ENI it could not attach.
        ec2.delete_network_interface(&fourth.id).await.unwrap();
        let e = ec2.delete_network_interface(&fourth.id).await.unwrap_err();
        assert_eq!(e.code, "InvalidNetworkInterfaceID.NotFound", "{e}");
        assert_eq!(e.message, format!("The networkInterface ID '{}' does not exist", fourth.id));

        // Prefix delegation (t3 is Nitro): /28s on the third ENI, shown by IMDS, given back.
        // 1 primary + 2 secondaries + 1 prefix fit in 6 slots.
        let prefixes = ec2.assign_prefixes(&third.id, 1).await.unwrap();
        assert_eq!(prefixes.len(), 1);
        assert_eq!(prefixes[0].prefix_len(), 28);
        assert!(info.subnet_cidr.contains(&prefixes[0]));
        assert_eq!(imds.interface_prefixes(&third.mac).await.unwrap(), prefixes);
        let described = ec2.describe_instance_enis(&info.instance_id).await.unwrap();
        assert_eq!(described.iter().find(|e| e.id == third.id).unwrap().prefixes, prefixes);
        ec2.unassign_prefixes(&third.id, &prefixes).await.unwrap();
        assert_eq!(imds.interface_prefixes(&third.mac).await.unwrap(), []);

        // An ENI made with prefixes from the start.
        let pd = ec2
            .create_network_interface(&info.subnet_id, &info.security_groups, &description, &tags, 0, 2)
            .await
            .unwrap();
        assert_eq!(pd.prefixes.len(), 2, "{pd:?}");
        assert!(pd.secondary_ips.is_empty());
        ec2.delete_network_interface(&pd.id).await.unwrap();

        // Detach and delete, as ipamd frees a surplus ENI.
        ec2.detach_network_interface(&attachment).await.unwrap();
        ec2.delete_network_interface(&eni.id).await.unwrap();
        let mut left: Vec<String> =
            ec2.describe_instance_enis(&info.instance_id).await.unwrap().into_iter().map(|e| e.id).collect();
        left.sort();
        let mut expected = vec![info.primary_eni.clone(), third.id.clone()];
        expected.sort();
        assert_eq!(left, expected);
        assert!(!imds.macs().await.unwrap().contains(&eni.mac));
    });
}

#[test]
fn without_the_cni_policy_ec2_calls_are_unauthorized() {
    let lab = Lab::start();
    block_on(async {
        let info = lab.instance_info(NODE1_IP).await;
        let ec2 = lab.ec2(NODE1_IP);
        ec2.describe_instance_enis(&info.instance_id).await.unwrap();

        let (status, body) = lab
            .iam(&[
                ("Action", "DetachRolePolicy"),
                ("RoleName", "netlab-NodeInstanceRole"),
                ("PolicyArn", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"),
            ])
            .await;
        assert_eq!(status, 200, "{body}");

        let e = ec2.assign_private_ips(&info.primary_eni, 1).await.unwrap_err();
        assert!(e.is_unauthorized(), "{e}");
        assert_eq!(e.status, 403);
        assert!(
            e.message.starts_with("You are not authorized to perform this operation. User: arn:aws:sts::"),
            "{e}"
        );
        assert!(
            e.message.contains(":assumed-role/netlab-NodeInstanceRole/")
                && e.message.contains("is not authorized to perform: ec2:AssignPrivateIpAddresses"),
            "{e}"
        );
        assert!(
            e.to_string().starts_with("operation error EC2: AssignPrivateIpAddresses, https response error StatusCode: 403, RequestID: "),
            "{e}"
        );
        let e = ec2.describe_instance_enis(&info.instance_id).await.unwrap_err();
        assert!(e.is_unauthorized(), "{e}");

        // Attached again, the same client (same cached credentials) is allowed again.
        let (status, body) = lab
            .iam(&[
                ("Action", "AttachRolePolicy"),
                ("RoleName", "netlab-NodeInstanceRole"),
                ("PolicyArn", "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy"),
            ])
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(ec2.assign_private_ips(&info.primary_eni, 1).await.unwrap().len(), 1);
    });
}
