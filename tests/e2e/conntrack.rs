//! kube-proxy's conntrack cleanup across the real processes: apiserver, cloud (the image
//! registry), controller-manager, one node-agent and its kube-proxy. A `client` pod on node-1
//! sends DNS queries over UDP (`dig`, through the node's kernel) to a selector-less UDP Service
//! whose EndpointSlice names two DNS responders run by this test; each query is a flow that
//! `netlab node conntrack node-1` lists, answered, so it would live 120 s. When an endpoint
//! leaves the slice, or turns not ready, its flows disappear within the next sync (the proxy
//! runs `conntrack -D -p udp --orig-dst VIP --dst-nat EP`), while the other endpoint's stay.
//! The proxy's `proxy sync` span counts what it cleaned, and the node's `conntrack delete` span
//! joins its trace. The same test runs in iptables and ipvs mode.

use std::{
    net::UdpSocket,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use netlab_e2e::{
    Apiserver, Component, Run, block_on, eventually, free_port, netlab,
    otlp::Collector,
    parts::{self, Node},
};

const WAIT: Duration = Duration::from_secs(60);
/// Span exporters batch (5 s by default).
const SPANS: Duration = Duration::from_secs(30);
/// Far below conntrack's 120 s for an answered UDP flow (and its 30 s for an unanswered one):
/// a flow gone within this went because the proxy deleted it.
const CLEANUP: Duration = Duration::from_secs(10);
const NODE: &str = "node-1";
const NODE_IP: &str = "127.0.1.1";
/// The two endpoints: responders on loopback addresses, which the node routes out of the
/// cluster to real sockets (the apiserver runs with `--allow-loopback-endpoints`, as natively).
const EP_A: &str = "127.0.0.1";
const EP_B: &str = "127.0.0.2";

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
---
apiVersion: v1
kind: Service
metadata:
  name: resolver
  namespace: demo
spec:
  ports:
  - name: dns
    port: 53
    protocol: UDP
---
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
spec:
  nodeName: node-1
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#;

/// The Service's EndpointSlice with `endpoints` as (address, ready), on `port`.
fn slice(port: u16, endpoints: &[(&str, bool)]) -> String {
    let mut yaml = format!(
        r#"
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: resolver-manual
  namespace: demo
  labels:
    kubernetes.io/service-name: resolver
addressType: IPv4
ports:
- name: dns
  port: {port}
  protocol: UDP
endpoints:
"#
    );
    if endpoints.is_empty() {
        yaml = yaml.replace("endpoints:\n", "endpoints: []\n");
    }
    for (ip, ready) in endpoints {
        yaml.push_str(&format!(
            "- addresses: [\"{ip}\"]\n  conditions:\n    ready: {ready}\n    serving: {ready}\n    terminating: false\n"
        ));
    }
    yaml
}

/// A DNS server that answers every query with an empty NOERROR reply, until dropped.
struct Responder {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Responder {
    fn start(sock: UdpSocket) -> Self {
        sock.set_read_timeout(Some(Duration::from_millis(100))).expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !flag.load(Ordering::Relaxed) {
                let Ok((n, from)) = sock.recv_from(&mut buf) else { continue };
                if n < 12 {
                    continue;
                }
                // The query itself, as a response: QR and RA set, rcode NOERROR.
                buf[2] |= 0x80;
                buf[3] = (buf[3] | 0x80) & 0xf0;
                let _ = sock.send_to(&buf[..n], from);
            }
        });
        Self { stop, thread: Some(thread) }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Binds one UDP port on both endpoint addresses (a slice's port is the same for all).
fn responders() -> (u16, [Responder; 2]) {
    for _ in 0..20 {
        let Ok(a) = UdpSocket::bind((EP_A, 0)) else { continue };
        let Ok(port) = a.local_addr().map(|a| a.port()) else { continue };
        if let Ok(b) = UdpSocket::bind((EP_B, port)) {
            return (port, [Responder::start(a), Responder::start(b)]);
        }
    }
    panic!("no UDP port free on both {EP_A} and {EP_B}");
}

struct Lab {
    // Drop order: the proxy and the agent first, the apiserver last.
    _proxy: Component,
    _agent: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    _dir: tempfile::TempDir,
    collector: Collector,
}

impl Lab {
    fn start(mode: &str) -> Self {
        let collector = Collector::start();
        let otlp = collector.otlp_endpoint();
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &["--allow-loopback-endpoints"]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        // Node IPAM gives node-1 its pod CIDR; the EndpointSlice controller leaves the
        // selector-less Service's hand-written slice alone.
        let cm = parts::controller_manager(&url, &[]);
        let node = Node { name: NODE, ip: NODE_IP, port: free_port() };
        let agent = node.agent(&url, dir.path(), &registry, &["--otlp-endpoint", &otlp]);
        let proxy = node.proxy(&url, mode, &["--otlp-endpoint", &otlp]);
        Self { _proxy: proxy, _agent: agent, _cm: cm, _cloud: cloud, api, _dir: dir, collector }
    }

    fn netlab(&self, args: &[&str]) -> Run {
        netlab(&self.api.url(), args, None)
    }

    fn apply(&self, yaml: &str) {
        netlab(&self.api.url(), &["apply", "-f", "-"], Some(yaml)).ok();
    }

    /// One DNS query from the client pod: one new UDP flow (dig takes a new source port).
    fn dig(&self, cip: &str) -> Run {
        self.netlab(&[
            "exec",
            "-n",
            "demo",
            "client",
            "--",
            "dig",
            &format!("@{cip}"),
            "+tries=1",
            "+time=2",
            "probe.example",
        ])
    }

    fn conntrack(&self) -> String {
        self.netlab(&["node", "conntrack", NODE]).ok().stdout
    }
}

/// The `conntrack -L` lines of UDP flows the client sent to `cip` that were DNATed to `ep`.
fn flows<'a>(ct: &'a str, cip: &str, ep: &str) -> Vec<&'a str> {
    ct.lines()
        .filter(|l| {
            l.starts_with("udp ")
                && l.contains(&format!(" dst={cip} "))
                && l.contains(&format!(" src={ep} dst="))
        })
        .collect()
}

fn scenario(mode: &str) {
    let (port, _responders) = responders();
    let lab = Lab::start(mode);
    lab.apply(MANIFESTS);
    lab.apply(&slice(port, &[(EP_A, true), (EP_B, true)]));
    let cip = lab
        .netlab(&["get", "svc", "resolver", "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"])
        .ok()
        .stdout
        .trim()
        .to_string();
    block_on(eventually("an answer from the resolver Service", WAIT, || async {
        (lab.dig(&cip).code == Some(0)).then_some(())
    }));

    // Flows to both endpoints, each answered (ASSURED: 120 s to live).
    let ct = block_on(eventually("flows to both endpoints", WAIT, || async {
        let run = lab.dig(&cip);
        assert_eq!(run.code, Some(0), "dig: {}{}", run.stdout, run.stderr);
        let ct = lab.conntrack();
        (!flows(&ct, &cip, EP_A).is_empty() && !flows(&ct, &cip, EP_B).is_empty()).then_some(ct)
    }));
    let to_b = flows(&ct, &cip, EP_B);
    assert!(to_b.iter().all(|l| l.contains("[ASSURED]")), "{ct}");
    let to_b = to_b.len();

    // EP_B leaves the slice: its flows go at the next sync, EP_A's stay.
    lab.apply(&slice(port, &[(EP_A, true)]));
    let since = Instant::now();
    let ct = block_on(eventually("EP_B's flows deleted", CLEANUP, || async {
        let ct = lab.conntrack();
        flows(&ct, &cip, EP_B).is_empty().then_some(ct)
    }));
    assert!(!flows(&ct, &cip, EP_A).is_empty(), "the remaining endpoint's flows stay:\n{ct}");
    eprintln!("{mode}: flows to the removed endpoint gone after {:?}", since.elapsed());

    // The sync that did it says so, and the node's delete is in its trace.
    let sync = lab
        .collector
        .wait_for(
            |s| s.name == "proxy sync" && s.attr("netlab.proxy.conntrack.stale_endpoints") == "1",
            SPANS,
        )
        .unwrap_or_else(|| panic!("no proxy sync with a stale endpoint:\n{}", lab.collector.summary()));
    assert_eq!(sync.attr("netlab.proxy.conntrack.stale_services"), "0", "{}", sync.summary());
    assert_eq!(sync.attr("netlab.proxy.conntrack.deleted"), to_b.to_string(), "{}", sync.summary());
    assert_eq!(sync.attr("netlab.proxy.conntrack.pending"), "0", "{}", sync.summary());
    let filter = format!("-p udp --orig-dst {cip} --dst-nat {EP_B}");
    let delete = lab
        .collector
        .wait_for(|s| s.name == "conntrack delete" && s.trace_id == sync.trace_id, SPANS)
        .unwrap_or_else(|| panic!("no conntrack delete in the sync's trace:\n{}", lab.collector.summary()));
    assert_eq!(delete.attr("netlab.conntrack.filter"), filter, "{}", delete.summary());
    assert_eq!(delete.attr("netlab.conntrack.deleted"), to_b.to_string(), "{}", delete.summary());
    assert_eq!(delete.attr("k8s.node.name"), NODE);

    // New flows all go to EP_A.
    for _ in 0..5 {
        assert_eq!(lab.dig(&cip).code, Some(0));
    }
    let ct = lab.conntrack();
    assert!(flows(&ct, &cip, EP_B).is_empty(), "{ct}");

    // EP_A turns not ready (and not serving): its flows go too.
    lab.apply(&slice(port, &[(EP_A, false)]));
    let ct = block_on(eventually("EP_A's flows deleted", CLEANUP, || async {
        let ct = lab.conntrack();
        flows(&ct, &cip, EP_A).is_empty().then_some(ct)
    }));
    assert!(!ct.contains(&format!(" dst={cip} ")), "no flow to the Service is left:\n{ct}");
}

#[test]
fn udp_flows_leave_with_their_endpoint_iptables() {
    scenario("iptables");
}

#[test]
fn udp_flows_leave_with_their_endpoint_ipvs() {
    scenario("ipvs");
}
