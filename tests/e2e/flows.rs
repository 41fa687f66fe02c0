//! Issue 7's flows as single traces, across the real processes, recorded by the in-process OTLP
//! collector: `netlab apply` of a Deployment and Service reaches kube-apiserver,
//! kube-controller-manager, kube-scheduler, the kubelet (CNI ADD with the pod IP) and kube-proxy
//! in one trace; `netlab exec client -- curl http://orders.demo/` is one tree from the client
//! node's kubelet through coredns, the kernel's DNAT and the wire to the serving pod on the other
//! node; a curl that a NetworkPolicy drops carries the `netpol verdict` naming the policy.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::TcpStream,
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use netlab_e2e::{
    Apiserver, Component, bin, free_port, netlab,
    otlp::{Collector, RecordedSpan},
    parts::{self, Cloud, Node},
};

const WAIT: Duration = Duration::from_secs(90);
/// The cluster DNS's address for this test (natively it needs port 53 on its own address; the
/// native launcher uses 127.0.1.253, so this test stays off it).
const DNS: &str = "127.0.3.253:53";

const APP: &str = r#"
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
  replicas: 2
  selector:
    matchLabels:
      app: orders
  template:
    metadata:
      labels:
        app: orders
    spec:
      nodeSelector:
        kubernetes.io/hostname: node-2
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

struct Lab {
    _procs: Vec<Component>,
    metrics: String,
    api: Apiserver,
    collector: Collector,
    dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Self {
        let collector = Collector::start();
        let otlp = collector.otlp_endpoint();
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(
            &dir.path().join("api"),
            &["--otlp-endpoint", &otlp, "--allow-loopback-endpoints"],
        );
        let url = api.url();
        let cloud = Cloud::start(&[]);
        let (registry, upstream) = (cloud.registry_url(), cloud.dns.to_string());
        let with_otlp: &[&str] = &["--otlp-endpoint", &otlp];
        let mut procs = vec![cloud.process];
        procs.push(parts::controller_manager(&url, with_otlp));
        procs.push(parts::scheduler(&url, with_otlp));
        let metrics = format!("127.0.0.1:{}", free_port());
        procs.push(Component::start(
            "netlab-dns",
            &[
                "--server",
                &url,
                "--listen",
                DNS,
                "--advertise-address",
                DNS.trim_end_matches(":53"),
                "--upstream",
                &upstream,
                "--health-listen",
                "127.0.0.1:0",
                "--ready-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                &metrics,
                "--otlp-endpoint",
                &otlp,
            ],
        ));
        let port = free_port();
        for (name, ip) in [("node-1", "127.0.1.1"), ("node-2", "127.0.1.2")] {
            let node = Node { name, ip, port };
            procs.push(node.agent(&url, dir.path(), &registry, with_otlp));
            // iptables: the proxy's default mode.
            procs.push(node.proxy(&url, "iptables", with_otlp));
        }
        Self { _procs: procs, api, collector, dir, metrics }
    }

    /// A queries the dns process has answered so far (`coredns_dns_requests_total{type="A"}`).
    fn a_queries(&self) -> u64 {
        use std::io::{Read as _, Write as _};
        let mut conn = TcpStream::connect(&self.metrics).expect("dns metrics");
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").expect("write");
        let mut body = String::new();
        conn.read_to_string(&mut body).expect("read");
        body.lines()
            .filter(|l| l.starts_with("coredns_dns_requests_total{") && l.contains("type=\"A\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Runs the real CLI with its own data dir, so `last-trace` is this test's.
    fn netlab(&self, args: &[&str], stdin: Option<&str>) -> (Option<i32>, String, String) {
        let run = if stdin.is_some() {
            netlab(&self.api.url(), args, stdin)
        } else {
            let out = Command::new(bin("netlab"))
                .args(args)
                .env("NETLAB_SERVER", self.api.url())
                .env("NETLAB_DATA_DIR", self.dir.path())
                .env_remove("NETLAB_NAMESPACE")
                .output()
                .expect("run netlab");
            return (
                out.status.code(),
                String::from_utf8_lossy(&out.stdout).into(),
                String::from_utf8_lossy(&out.stderr).into(),
            );
        };
        (run.code, run.stdout, run.stderr)
    }

    fn last_trace(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("last-trace")).expect("last-trace").trim().to_string()
    }

    fn curl(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all = vec!["exec", "-n", "demo", "client", "--", "curl"];
        all.extend_from_slice(args);
        self.netlab(&all, None)
    }

    /// Waits until the trace has a span matching `pred`.
    fn span(&self, trace: &str, what: &str, pred: impl Fn(&RecordedSpan) -> bool) -> RecordedSpan {
        self.collector.wait_for(|s| s.trace_id == trace && pred(s), WAIT).unwrap_or_else(|| {
            panic!("no {what} in trace {trace}; it has:\n{}", summary(&self.collector.trace(trace)))
        })
    }
}

fn summary(spans: &[RecordedSpan]) -> String {
    spans.iter().map(RecordedSpan::summary).collect::<Vec<_>>().join("\n")
}

/// The trace id inside a W3C traceparent.
fn trace_of(traceparent: &str) -> String {
    traceparent.split('-').nth(1).expect("traceparent").to_string()
}

/// Every span's parent is in the trace, except roots whose parent is the CLI's own (never
/// exported) span: the spans form one tree under the command.
fn assert_one_tree(spans: &[RecordedSpan], cli_span: &str) {
    let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    for s in spans {
        match s.parent_span_id.as_deref() {
            Some(p) if ids.contains(p) || p == cli_span => {}
            other => {
                panic!("span {} has parent {other:?} outside the trace:\n{}", s.summary(), summary(spans))
            }
        }
    }
}

fn wait_ready(lab: &Lab) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (code, out, _) = lab.curl(&["-s", "-m", "2", "http://orders.demo/"]);
        if code == Some(0) && out.starts_with("pod=orders-") {
            return;
        }
        assert!(Instant::now() < deadline, "curl http://orders.demo/ never answered");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn apply_exec_and_policy_flows_are_single_traces() {
    if std::net::UdpSocket::bind(DNS).is_err() {
        panic!("this test needs to bind {DNS} (port 53: run as root, as .ci/run does)");
    }
    let lab = Lab::start();
    let (code, _, err) = lab.netlab(&["apply", "-f", "-"], Some(APP));
    assert_eq!(code, Some(0), "{err}");

    // 1. apply: the Deployment's write trace reaches every component.
    let (_, json, _) = lab.netlab(&["get", "deploy", "orders", "-n", "demo", "-o", "json"], None);
    let deploy: serde_json::Value = serde_json::from_str(&json).expect("deployment json");
    let tp = deploy["metadata"]["annotations"]["netlab.io/traceparent"]
        .as_str()
        .expect("trace annotation")
        .to_string();
    let apply = trace_of(&tp);
    lab.span(&apply, "kube-apiserver allocate ClusterIP", |s| {
        s.service == "kube-apiserver" && s.name == "allocate ClusterIP"
    });
    lab.span(&apply, "kube-controller-manager create replicaset", |s| {
        s.service == "kube-controller-manager" && s.name == "create replicaset"
    });
    lab.span(&apply, "kube-controller-manager create pods", |s| {
        s.service == "kube-controller-manager" && s.name == "create pods"
    });
    let bind = lab
        .span(&apply, "kube-scheduler bind", |s| s.service == "kube-scheduler" && s.name == "scheduler bind");
    assert!(bind.attr("k8s.pod.name").starts_with("orders-"), "{}", bind.summary());
    let cni = lab.span(&apply, "kubelet cni ADD", |s| {
        s.service == "kubelet" && s.name == "cni ADD" && s.attr("k8s.pod.name").starts_with("orders-")
    });
    assert!(cni.attr("netlab.cni.ip").starts_with("10.244."), "{}", cni.summary());
    assert_eq!(cni.attr("k8s.node.name"), "node-2");
    lab.span(&apply, "kube-proxy proxy sync", |s| s.service == "kube-proxy" && s.name == "proxy sync");

    // 2. exec curl by name: one tree from the client's node to the serving pod on node-2.
    wait_ready(&lab);
    let (code, out, err) = lab.curl(&["-sS", "-m", "5", "http://orders.demo/"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("node=node-2"), "{out}");
    let exec = lab.last_trace();
    let search = lab.span(&exec, "kubelet resolver search", |s| s.name == "resolver search");
    assert_eq!(
        search.attr("netlab.resolver.candidates"),
        "orders.demo.demo.svc.cluster.local. orders.demo.svc.cluster.local.",
        "ndots:5 walks the search list: {}",
        search.summary()
    );
    let dns = lab.span(&exec, "coredns dns query", |s| s.service == "coredns" && s.name == "dns query");
    assert!(dns.attr("dns.question.name").starts_with("orders.demo."), "{}", dns.summary());
    let dnat = lab.span(&exec, "kernel dnat to orders", |s| {
        s.service == "kubelet"
            && s.name == "kernel dnat"
            && s.attr("netlab.kernel.endpoint").starts_with("10.244.")
    });
    assert!(dnat.attr("netlab.kernel.chain").starts_with("KUBE-SEP-"), "{}", dnat.summary());
    // The lookup's own DNAT: 10.96.0.10:53 to the dns process.
    lab.span(&exec, "kernel dnat to kube-dns", |s| {
        s.name == "kernel dnat" && s.attr("netlab.kernel.endpoint") == DNS
    });
    let accept = lab.span(&exec, "the serving pod's accept on node-2", |s| {
        s.name == "pod accept" && s.attr("k8s.node.name") == "node-2"
    });
    assert!(accept.attr("k8s.pod.name").starts_with("orders-"), "{}", accept.summary());
    lab.span(&exec, "kubelet exec on node-1", |s| s.name == "exec" && s.attr("k8s.node.name") == "node-1");
    // Let the batch exporters flush the rest, then check the parent links.
    std::thread::sleep(Duration::from_secs(6));
    let spans = lab.collector.trace(&exec);
    let services: BTreeSet<&str> = spans.iter().map(|s| s.service.as_str()).collect();
    assert!(services.contains("kubelet") && services.contains("coredns"), "{services:?}");
    let cli_span = spans
        .iter()
        .filter_map(|s| s.parent_span_id.clone())
        .find(|p| !spans.iter().any(|s| &s.span_id == p))
        .expect("a root under the CLI's span");
    assert_one_tree(&spans, &cli_span);
    let nodes: BTreeMap<&str, usize> = spans.iter().fold(BTreeMap::new(), |mut m, s| {
        if !s.attr("k8s.node.name").is_empty() {
            *m.entry(s.attr("k8s.node.name")).or_default() += 1;
        }
        m
    });
    assert!(
        nodes.contains_key("node-1") && nodes.contains_key("node-2"),
        "the trace crosses both nodes: {nodes:?}"
    );
    // `netlab trace` prints that tree from Jaeger's query API (here the collector's).
    let tree = Command::new(bin("netlab"))
        .args(["trace", &exec])
        .env("NETLAB_JAEGER_URL", lab.collector.jaeger_url())
        .output()
        .expect("netlab trace");
    let tree = String::from_utf8_lossy(&tree.stdout).into_owned();
    println!("{tree}");
    for needle in [
        "kubelet  exec",
        "kubelet  resolver search",
        "coredns  dns query",
        "kubelet  kernel dnat",
        "kubelet  pod accept",
    ] {
        assert!(tree.contains(needle), "{needle} in\n{tree}");
    }

    // 3. A NetworkPolicy drops the connection: curl times out; the trace names the policy.
    let (code, _, err) = lab.netlab(&["apply", "-f", "-"], Some(DENY));
    assert_eq!(code, Some(0), "{err}");
    let deadline = Instant::now() + WAIT;
    let denied = loop {
        let (code, _, err) = lab.curl(&["-sS", "-m", "1", "http://orders.demo/"]);
        if code == Some(28) {
            break lab.last_trace();
        }
        assert!(Instant::now() < deadline, "curl never timed out under default-deny: {err}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let verdict = lab.span(&denied, "netpol verdict", |s| {
        s.name == "netpol verdict" && s.attr("netlab.netpol.direction") == "ingress"
    });
    assert!(verdict.attr("netlab.netpol.verdict").contains("demo/default-deny"), "{}", verdict.summary());
    assert_eq!(verdict.attr("k8s.node.name"), "node-2");

    // 4. The pod resolver's search path, counted at the server (issue 6): from a pod in `shop`
    // (ndots:5), `cart` is found at the first candidate, `cart.other` at the second,
    // `api.example.com` after three NXDOMAINs, and a trailing dot asks exactly once.
    let (code, _, err) = lab.netlab(&["apply", "-f", "-"], Some(SHOP));
    assert_eq!(code, Some(0), "{err}");
    let deadline = Instant::now() + WAIT;
    while lab.netlab(&["exec", "-n", "shop", "resolver", "--", "true"], None).0 != Some(0) {
        assert!(Instant::now() < deadline, "the resolver pod never ran");
        std::thread::sleep(Duration::from_millis(300));
    }
    for (name, queries) in [("cart", 1), ("cart.other", 2), ("api.example.com", 4), ("api.example.com.", 1)] {
        let before = lab.a_queries();
        let (code, out, err) = lab.netlab(&["exec", "-n", "shop", "resolver", "--", "nslookup", name], None);
        assert_eq!(code, Some(0), "nslookup {name}: {out}{err}");
        assert!(out.contains("Address: "), "nslookup {name}: {out}");
        assert_eq!(lab.a_queries() - before, queries, "A queries for nslookup {name}:\n{out}");
    }
    let _ = Path::new("");
}

const SHOP: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: Namespace
metadata:
  name: other
---
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: shop
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Service
metadata:
  name: cart
  namespace: other
spec:
  ports:
  - port: 80
---
apiVersion: v1
kind: Pod
metadata:
  name: resolver
  namespace: shop
spec:
  nodeName: node-1
  containers:
  - name: toolbox
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#;
