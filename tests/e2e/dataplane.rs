//! The node's kernel dataplane across real processes (issue 5's acceptance test): apiserver,
//! controller-manager, scheduler, cloud, two node-agents and a kube-proxy per node. A `client`
//! pod on node-1 curls the `orders` ClusterIP through `netlab exec`; every endpoint answers, on
//! both nodes; with no endpoints curl is refused at once (exit 7); a default-deny ingress policy
//! makes it time out (exit 28) while the EndpointSlice still lists the endpoints, and an allow
//! rule restores it; with proxy-1 stopped the old Service keeps working and a new one does not
//! answer from node-1 until proxy-1 is back. The same test runs in iptables and ipvs mode.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};

use netlab_e2e::{
    Apiserver, Component, Run, block_on, eventually, free_port, netlab,
    parts::{self, Node},
};

const WAIT: Duration = Duration::from_secs(60);
const NODES: [(&str, &str); 2] = [("node-1", "127.0.1.1"), ("node-2", "127.0.1.2")];

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Service
metadata:
  name: orders
  namespace: demo
spec:
  selector:
    app: orders
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: orders
  namespace: demo
spec:
  replicas: 3
  selector:
    matchLabels:
      app: orders
  template:
    metadata:
      labels:
        app: orders
    spec:
      containers:
      - name: orders
        image: nginx:1.27
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  labels:
    app: client
spec:
  nodeName: node-1
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
---
apiVersion: v1
kind: Pod
metadata:
  name: client-2
  namespace: demo
  labels:
    app: client
spec:
  nodeName: node-2
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#;

const DENY: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
  namespace: demo
spec:
  podSelector:
    matchLabels:
      app: orders
  policyTypes: [Ingress]
"#;

const ALLOW: &str = r#"
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-client
  namespace: demo
spec:
  podSelector:
    matchLabels:
      app: orders
  ingress:
  - from:
    - podSelector:
        matchLabels:
          app: client
    ports:
    - port: 8080
"#;

const LATE: &str = r#"
apiVersion: v1
kind: Service
metadata:
  name: late
  namespace: demo
spec:
  selector:
    app: orders
  ports:
  - name: http
    port: 80
    targetPort: 8080
"#;

struct Lab {
    // Drop order: proxies and agents first, the apiserver last.
    proxies: BTreeMap<String, Component>,
    _agents: Vec<Component>,
    _scheduler: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(mode: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &[]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        let cm = parts::controller_manager(&url, &[]);
        let scheduler = parts::scheduler(&url, &[]);
        // Every node's kernel API on one port, on the node's own address.
        let port = free_port();
        let mut agents = Vec::new();
        let mut proxies = BTreeMap::new();
        for (name, ip) in NODES {
            let node = Node { name, ip, port };
            agents.push(node.agent(&url, dir.path(), &registry, &[]));
            proxies.insert(name.to_string(), node.proxy(&url, mode, &[]));
        }
        Self { proxies, _agents: agents, _scheduler: scheduler, _cm: cm, _cloud: cloud, api, _dir: dir }
    }

    fn netlab(&self, args: &[&str]) -> Run {
        netlab(&self.api.url(), args, None)
    }

    fn apply(&self, yaml: &str) {
        netlab(&self.api.url(), &["apply", "-f", "-"], Some(yaml)).ok();
    }

    fn curl_from(&self, pod: &str, args: &[&str]) -> Run {
        let mut all = vec!["exec", "-n", "demo", pod, "--", "curl"];
        all.extend_from_slice(args);
        self.netlab(&all)
    }

    fn cluster_ip(&self, svc: &str) -> String {
        let run = self.netlab(&["get", "svc", svc, "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"]).ok();
        run.stdout.trim().to_string()
    }
}

/// `pod=... ip=... node=...` from the echo server's answer.
fn served_by(body: &str) -> Option<(String, String)> {
    let first = body.lines().next()?;
    let field = |k: &str| first.split_whitespace().find_map(|w| w.strip_prefix(k)).map(String::from);
    Some((field("pod=")?, field("node=")?))
}

fn scenario(mode: &str) {
    let lab = Lab::start(mode);
    lab.apply(MANIFESTS);
    let cip = lab.cluster_ip("orders");
    let url = format!("http://{cip}/");
    block_on(eventually("curl from client to the orders ClusterIP", WAIT, || async {
        (lab.curl_from("client", &["-s", "-m", "2", &url]).code == Some(0)).then_some(())
    }));
    // Every endpoint is ready (the curl above may have raced the last ones).
    block_on(eventually("3 ready orders endpoints", WAIT, || async {
        let run = lab.netlab(&["get", "pods", "-n", "demo", "-l", "app=orders", "-o", "json"]);
        let ready = run.json()["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|p| {
                        p["status"]["conditions"].as_array().is_some_and(|cs| {
                            cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True")
                        })
                    })
                    .count()
            })
            .unwrap_or(0);
        (ready == 3).then_some(())
    }));
    std::thread::sleep(Duration::from_millis(500));

    // 300 requests: every endpoint answers, on both nodes.
    let mut pods: BTreeMap<String, usize> = BTreeMap::new();
    let mut nodes = BTreeSet::new();
    for _ in 0..300 {
        let run = lab.curl_from("client", &["-sS", "-m", "5", &url]);
        assert_eq!(run.code, Some(0), "curl failed: {}", run.stderr);
        let (pod, node) =
            served_by(&run.stdout).unwrap_or_else(|| panic!("not an echo answer: {}", run.stdout));
        *pods.entry(pod).or_default() += 1;
        nodes.insert(node);
    }
    assert_eq!(pods.len(), 3, "every endpoint answers: {pods:?}");
    assert!(pods.values().all(|n| *n >= 50), "roughly uniform: {pods:?}");
    assert_eq!(nodes.into_iter().collect::<Vec<_>>(), ["node-1", "node-2"], "endpoints on both nodes answer");

    // The node's tables as the real tools print them.
    if mode == "iptables" {
        let save = lab.netlab(&["node", "iptables-save", "node-1"]).ok().stdout;
        for needle in [
            "--probability 0.3333333333 -j KUBE-SEP-",
            "--probability 0.5000000000 -j KUBE-SEP-",
            "-A KUBE-SERVICES -m comment --comment \"demo/orders:http cluster IP\"",
        ] {
            assert!(save.contains(needle), "{needle} in\n{save}");
        }
    } else {
        let ipvs = lab.netlab(&["node", "ipvsadm", "node-1"]).ok().stdout;
        assert!(ipvs.contains(&format!("TCP  {cip}:80 rr")), "{ipvs}");
        assert_eq!(count_reals(&ipvs, &cip), 3, "{ipvs}");
    }
    let ct = lab.netlab(&["node", "conntrack", "node-1"]).ok();
    assert!(ct.stdout.contains(&format!("dst={cip} sport=")), "{}", ct.stdout);
    assert!(ct.stderr.contains("flow entries have been shown."), "{}", ct.stderr);
    let routes = lab.netlab(&["node", "routes", "node-1"]).ok().stdout;
    assert!(routes.contains("dev cni0 proto kernel scope link src 10.244."), "{routes}");
    assert!(routes.contains(" via 127.0.1.2 dev eth0"), "{routes}");

    // No endpoints: refused at once.
    lab.netlab(&["scale", "deployment", "orders", "-n", "demo", "--replicas=0"]).ok();
    let refused = block_on(eventually("curl refused with 0 endpoints", WAIT, || async {
        let run = lab.curl_from("client", &["-sS", "-m", "5", &url]);
        (run.code == Some(7)).then_some(run)
    }));
    assert!(
        refused.stderr.contains(&format!("curl: (7) Failed to connect to {cip} port 80 after")),
        "{}",
        refused.stderr
    );
    lab.netlab(&["scale", "deployment", "orders", "-n", "demo", "--replicas=3"]).ok();
    block_on(eventually("orders back", WAIT, || async {
        (lab.curl_from("client", &["-s", "-m", "2", &url]).code == Some(0)).then_some(())
    }));

    // Default-deny ingress: the name still resolves to endpoints, but packets are dropped.
    lab.apply(DENY);
    let timed_out = block_on(eventually("curl times out under default-deny", WAIT, || async {
        let run = lab.curl_from("client", &["-sS", "-m", "1", &url]);
        (run.code == Some(28)).then_some(run)
    }));
    assert!(timed_out.stderr.contains("curl: (28) Connection timed out after"), "{}", timed_out.stderr);
    let slices = lab
        .netlab(&[
            "get",
            "endpointslices",
            "-n",
            "demo",
            "-l",
            "kubernetes.io/service-name=orders",
            "-o",
            "json",
        ])
        .ok()
        .json();
    let endpoints: usize = slices["items"]
        .as_array()
        .map(|s| s.iter().map(|s| s["endpoints"].as_array().map_or(0, Vec::len)).sum())
        .unwrap_or(0);
    assert_eq!(endpoints, 3, "the EndpointSlice still lists the endpoints");
    lab.apply(ALLOW);
    block_on(eventually("allow-client restores curl", WAIT, || async {
        (lab.curl_from("client", &["-s", "-m", "2", &url]).code == Some(0)).then_some(())
    }));

    // proxy-1 stops: node-1 keeps its last rules; a Service created now is not programmed there.
    let mut proxies = lab.proxies;
    let lab = Lab { proxies: BTreeMap::new(), ..lab };
    proxies.get_mut("node-1").expect("proxy-1").kill9();
    lab.apply(LATE);
    let late = format!("http://{}/", lab.cluster_ip("late"));
    block_on(eventually("late answers from node-2", WAIT, || async {
        (lab.curl_from("client-2", &["-s", "-m", "2", &late]).code == Some(0)).then_some(())
    }));
    let run = lab.curl_from("client", &["-sS", "-m", "1", &late]);
    assert_eq!(run.code, Some(28), "late is not programmed on node-1: {}", run.stderr);
    for _ in 0..5 {
        let run = lab.curl_from("client", &["-sS", "-m", "2", &url]);
        assert_eq!(run.code, Some(0), "orders still answers without proxy-1: {}", run.stderr);
    }
    proxies.get_mut("node-1").expect("proxy-1").restart();
    block_on(eventually("late answers from node-1 once proxy-1 is back", WAIT, || async {
        (lab.curl_from("client", &["-s", "-m", "2", &late]).code == Some(0)).then_some(())
    }));
}

/// Real servers listed under the virtual server `cip:80`.
fn count_reals(ipvs: &str, cip: &str) -> usize {
    let mut lines = ipvs.lines().skip_while(|l| !l.starts_with(&format!("TCP  {cip}:80 ")));
    lines.next();
    lines.take_while(|l| l.starts_with("  -> ")).count()
}

#[test]
fn clusterip_netpol_and_proxy_outage_iptables() {
    scenario("iptables");
}

#[test]
fn clusterip_netpol_and_proxy_outage_ipvs() {
    scenario("ipvs");
}
