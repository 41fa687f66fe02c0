//! The EKS flavour (`netlab up --eks`): nodes as EC2 instances running the AWS VPC CNI. Pods
//! get secondary addresses of their node's ENIs from ipamd's warm pool and reach each other
//! through the VPC with no overlay; a node takes as many pods as its instance type's max pods,
//! and a node out of ENI addresses leaves pods ContainerCreating with the plugin's real error.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{Aws, have_aws};
use netlab_e2e::native::NativeCluster;

const WAIT: Duration = Duration::from_secs(120);

const PODS: &str = r#"apiVersion: v1
kind: Pod
metadata: {name: client, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: node-1}
  containers: [{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}]
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: default, labels: {app: web}}
spec:
  nodeSelector: {kubernetes.io/hostname: node-2}
  containers: [{name: web, image: "nginx:1.27", ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 80}]
"#;

/// 18 more pods for node-1 (a t3.medium: max pods 17, 3 ENIs × 5 addresses for pods).
const FILL: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata: {name: fill, namespace: default}
spec:
  replicas: 18
  selector: {matchLabels: {app: fill}}
  template:
    metadata: {labels: {app: fill}}
    spec:
      nodeSelector: {kubernetes.io/hostname: node-1}
      containers: [{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}]
"#;

fn pods(c: &NativeCluster) -> Vec<Value> {
    let out = c.ok(&["get", "pods", "-o", "json"]);
    serde_json::from_str::<Value>(&out).unwrap()["items"].as_array().cloned().unwrap_or_default()
}

fn pod<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter().find(|p| p["metadata"]["name"] == name).unwrap_or_else(|| panic!("no pod {name}"))
}

fn wait_until<T>(what: &str, c: &NativeCluster, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(t) = f() {
            return t;
        }
        assert!(started.elapsed() < WAIT, "{what}: timed out{}", c.logs(15));
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Whether `ip` is an address of the cloud's VPC, 192.168.0.0/16.
fn in_vpc(ip: &str) -> bool {
    ip.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.octets()[..2] == [192, 168])
}

#[test]
fn eks_pods_get_their_nodes_eni_addresses_reach_each_other_and_stop_at_max_pods() {
    if !have_aws() {
        return;
    }
    let c = NativeCluster::up_with(&["--eks"], &[]);
    let aws = Aws::of(&c);

    // Max pods from the instance types, as the EKS AMI sets them; no podCIDRs.
    let nodes: Value = serde_json::from_str(&c.ok(&["get", "nodes", "-o", "json"])).unwrap();
    for (name, max) in [("node-1", "17"), ("node-2", "29")] {
        let node = nodes["items"].as_array().unwrap().iter().find(|n| n["metadata"]["name"] == name).unwrap();
        assert_eq!(node["status"]["allocatable"]["pods"], max, "{name}");
        assert!(node["spec"]["podCIDR"].is_null(), "{name} has a podCIDR: {node}");
    }

    // Pods on both nodes get VPC addresses and reach each other and a Service.
    c.apply(PODS);
    let all = wait_until("client and web Running", &c, || {
        let all = pods(&c);
        let running = ["client", "web"]
            .iter()
            .all(|n| all.iter().any(|p| p["metadata"]["name"] == *n && p["status"]["phase"] == "Running"));
        running.then_some(all)
    });
    let client_ip = pod(&all, "client")["status"]["podIP"].as_str().unwrap().to_string();
    let web_ip = pod(&all, "web")["status"]["podIP"].as_str().unwrap().to_string();
    assert!(in_vpc(&client_ip) && in_vpc(&web_ip), "{client_ip} {web_ip}");
    let curl = |url: &str| {
        c.run(
            &["exec", "client", "--", "curl", "-sS", "-m", "5", "-o", "/dev/null", "-w", "%{http_code}", url],
            None,
        )
    };
    let direct = curl(&format!("http://{web_ip}/"));
    assert_eq!((direct.code, direct.stdout.as_str()), (Some(0), "200"), "{}{}", direct.stderr, c.logs(20));
    // The cluster DNS may not have the new Service yet: wait for its name, as a user would.
    wait_until("web's Service answers by name", &c, || {
        let r = curl("http://web.default.svc.cluster.local/");
        (r.code == Some(0) && r.stdout == "200").then_some(())
    });
    let route = c.ok(&["exec", "client", "--", "ip", "route"]);
    assert!(route.starts_with("default via 169.254.1.1 dev eth0"), "{route}");

    // Leaving the VPC, the pod's address is SNATed to its node's primary VPC address by
    // ipamd's AWS-SNAT-CHAIN-0 (node-1's iptables-save shows it); the trace's route says so.
    let save = c.ok(&["node", "iptables-save", "node-1"]);
    let primary = save
        .lines()
        .find_map(|l| l.split("-j SNAT --to-source ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no AWS SNAT rule on node-1:\n{save}"))
        .to_string();
    assert!(in_vpc(&primary), "{primary}");
    assert!(
        save.contains("-A POSTROUTING -m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0"),
        "{save}"
    );
    let _ = c.run(
        &["exec", "client", "--", "curl", "-sS", "-m", "5", "-o", "/dev/null", "http://example.com/"],
        None,
    );
    wait_until("the route span with the SNAT address", &c, || {
        let trace = c.run(&["trace", "last"], None).stdout;
        trace
            .lines()
            .any(|l| {
                l.contains("netlab.route=default") && l.contains(&format!("netlab.route.snat={primary}"))
            })
            .then_some(())
    });

    // The address is a secondary private IP of an ENI attached to web's node (EC2 says so),
    // and ipamd's introspection names the pod that holds it.
    let instances = aws.ok(&["ec2", "describe-instances", "--filters", "Name=tag:Name,Values=node-2"]);
    let node2 = instances["Reservations"][0]["Instances"][0]["InstanceId"].as_str().unwrap().to_string();
    let enis = aws.ok(&[
        "ec2",
        "describe-network-interfaces",
        "--filters",
        &format!("Name=attachment.instance-id,Values={node2}"),
    ]);
    let holder = enis["NetworkInterfaces"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["PrivateIpAddresses"].as_array().cloned().unwrap_or_default())
        .find(|a| a["PrivateIpAddress"] == web_ip.as_str())
        .unwrap_or_else(|| panic!("{web_ip} is on none of node-2's ENIs: {enis}"));
    assert_eq!(holder["Primary"], false, "{holder}");
    let table = c.ok(&["node", "enis", "node-2"]);
    assert!(table.lines().any(|l| l.contains(&web_ip) && l.ends_with("default/web")), "{table}");

    // The warm pool refills to its target once the client took an address: WARM_ENI_TARGET=1
    // keeps a whole ENI's addresses free, so node-1 (one pod) attaches a second ENI.
    let node1 =
        aws.ok(&["ec2", "describe-instances", "--filters", "Name=tag:Name,Values=node-1"])["Reservations"][0]
            ["Instances"][0]["InstanceId"]
            .as_str()
            .unwrap()
            .to_string();
    let node1_enis = || {
        aws.ok(&[
            "ec2",
            "describe-network-interfaces",
            "--filters",
            &format!("Name=attachment.instance-id,Values={node1}"),
        ])["NetworkInterfaces"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let enis = wait_until("node-1's warm ENI", &c, || {
        let enis = node1_enis();
        (enis.len() == 2).then_some(enis)
    });
    let secondaries: usize = enis
        .iter()
        .map(|e| {
            e["PrivateIpAddresses"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|a| a["Primary"] == false).count())
        })
        .sum();
    assert_eq!(secondaries, 10, "two ENIs × 5 secondary addresses: {enis:?}");
    let table = c.ok(&["node", "enis", "node-1"]);
    assert!(table.ends_with("Total IPs: 10, assigned: 1\n"), "{table}");
    let tagged = enis.iter().find(|e| e["Attachment"]["DeviceIndex"] == 1).expect("device 1");
    assert_eq!(tagged["Description"], format!("aws-K8S-{node1}").as_str(), "{tagged}");

    // node-1 (t3.medium) takes 17 pods; only 15 can have addresses (3 ENIs × (6 − 1)).
    c.apply(FILL);
    let all = wait_until("node-1 full", &c, || {
        let all = pods(&c);
        let on_node1 = |p: &&Value| p["spec"]["nodeName"] == "node-1";
        let with_ip = all.iter().filter(on_node1).filter(|p| p["status"]["podIP"].is_string()).count();
        let pending = all.iter().filter(|p| p["spec"]["nodeName"].is_null()).count();
        (with_ip == 15 && pending >= 1).then_some(all)
    });
    let pending: Vec<&Value> = all.iter().filter(|p| p["spec"]["nodeName"].is_null()).collect();
    let condition = pending[0]["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
        .cloned()
        .unwrap_or_default();
    assert!(condition["message"].as_str().unwrap_or("").contains("Too many pods"), "{condition}");
    let stuck: Vec<&Value> =
        all.iter().filter(|p| p["spec"]["nodeName"] == "node-1" && p["status"]["podIP"].is_null()).collect();
    assert!(!stuck.is_empty(), "a pod scheduled to node-1 without an address");
    let events: Value = serde_json::from_str(&c.ok(&["get", "events", "-o", "json"])).unwrap();
    let sandbox = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["reason"] == "FailedCreatePodSandBox")
        .filter_map(|e| e["message"].as_str())
        .find(|m| m.contains("aws-cni"))
        .unwrap_or_else(|| panic!("no FailedCreatePodSandBox event: {events}"));
    assert!(
        sandbox.starts_with("Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"")
            && sandbox.ends_with(
                "\": plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container"
            ),
        "{sandbox}"
    );
    // EC2 agrees: node-1's instance has all three ENIs it may have.
    assert_eq!(node1_enis().len(), 3);
}

/// A subnet that runs out: node-1's zone has a /28 (11 usable addresses: the node's own and the
/// 5 secondaries ipamd puts on its ENI take 6), so the second ENI cannot be made
/// (`InsufficientFreeAddressesInSubnet`, ipamd's log line and its cooldown) and the pods past the
/// first five stay ContainerCreating with the plugin's real event.
#[test]
fn an_exhausted_subnet_leaves_pods_container_creating() {
    if !have_aws() {
        return;
    }
    let c = NativeCluster::up_with(
        &["--eks"],
        &[("NETLAB_CLOUD_EC2_SUBNETS", "us-east-1a=192.168.0.0/28,us-east-1b=192.168.32.0/19")],
    );
    let aws = Aws::of(&c);
    c.apply(&FILL.replace("replicas: 18", "replicas: 8"));
    let all = wait_until("five fill pods with addresses, the rest stuck", &c, || {
        let all = pods(&c);
        let fill = all.iter().filter(|p| p["metadata"]["labels"]["app"] == "fill");
        let with_ip = fill.clone().filter(|p| p["status"]["podIP"].is_string()).count();
        let scheduled = fill.filter(|p| p["spec"]["nodeName"] == "node-1").count();
        (with_ip == 5 && scheduled == 8).then_some(all)
    });
    let stuck =
        all.iter().filter(|p| p["metadata"]["labels"]["app"] == "fill" && p["status"]["podIP"].is_null());
    assert_eq!(stuck.count(), 3);
    let events: Value = serde_json::from_str(&c.ok(&["get", "events", "-o", "json"])).unwrap();
    assert!(
        events["items"].as_array().unwrap().iter().any(|e| e["reason"] == "FailedCreatePodSandBox"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.ends_with("add cmd: failed to assign an IP address to container"))),
        "{events}"
    );
    // ipamd's next pool step (every 5 s) tries a second ENI and the subnet refuses it.
    let log = c.dir().join("nodes/node-1/aws-routed-eni/ipamd.log");
    let line = wait_until("ipamd's subnet-exhausted line", &c, || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().find(|l| l.contains("InsufficientFreeAddressesInSubnet")).map(str::to_string)
    });
    assert!(line.contains("The specified subnet does not have enough free addresses"), "{line}");
    let subnets =
        aws.ok(&["ec2", "describe-subnets", "--filters", "Name=availability-zone,Values=us-east-1a"]);
    assert_eq!(subnets["Subnets"][0]["CidrBlock"], "192.168.0.0/28");
    assert_eq!(subnets["Subnets"][0]["AvailableIpAddressCount"], 5, "{subnets}");
}
