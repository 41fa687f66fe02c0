//! Issue 14's network faults across the real processes: apiserver, cloud, controller-manager,
//! scheduler, dns, two node-agents and a kube-proxy per node. A `client` pod on node-1 talks to
//! `web-1` (node-1) and `web-2` (node-2) while NetworkChaos and ExhaustionChaos objects break
//! the flows as a real cluster's would break: a partitioned connect times out (curl exit 28,
//! `nc -w 1` "timed out: Operation now in progress"), a partition by node pair cuts node-1's pods off node-2's both ways
//! and leaves node-local traffic alone, DNS queries lost on the way make dig give up with "no
//! servers could be reached", a delay shows in curl's `%{time_connect}`, duplicated segments cost
//! TCP nothing, corrupted SYNs fail their checksum and time the connect out as lost ones do, a
//! rate limit stretches a large request's `%{time_total}`, a full conntrack table drops new
//! flows and keeps the listed ones; every fault stops on delete and on its duration,
//! and a restarted node-agent enforces the faults again. Counters reach the faults' status, and
//! the route span of a broken connect names its fault.
//!
//! The controller-manager's chaos controller selects the pods (`status.experiment.
//! containerRecords`, one per selected pod with its IP); [`selected`] waits until it has.

use std::time::{Duration, Instant};

use netlab_chaos::{ExhaustionChaos, NetworkChaos, object::Chaos, status::phase};
use netlab_client::{Client, ListParams};
use netlab_e2e::{
    Apiserver, Component, Run, block_on, free_port, netlab,
    otlp::Collector,
    parts::{self, Cloud, Node},
};

const WAIT: Duration = Duration::from_secs(90);
/// The cluster DNS's address for this scenario (its own, off flows.rs' and the launcher's).
const DNS: &str = "127.0.15.253:53";
const NODES: [(&str, &str); 2] = [("node-1", "127.0.15.1"), ("node-2", "127.0.15.2")];

const MANIFESTS: &str = r#"
apiVersion: v1
kind: Namespace
metadata:
  name: demo
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
---
apiVersion: v1
kind: Pod
metadata:
  name: web-1
  namespace: demo
  labels:
    app: web
spec:
  nodeName: node-1
  containers:
  - name: web
    image: nginx:1.27
    ports:
    - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: web-2
  namespace: demo
  labels:
    app: web
spec:
  nodeName: node-2
  containers:
  - name: web
    image: nginx:1.27
    ports:
    - containerPort: 8080
"#;

struct Lab {
    // Drop order: node processes first, the apiserver last.
    agents: Vec<Component>,
    _procs: Vec<Component>,
    api: Apiserver,
    collector: Collector,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start() -> Self {
        let collector = Collector::start();
        let otlp = collector.otlp_endpoint();
        let with_otlp: &[&str] = &["--otlp-endpoint", &otlp];
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &["--allow-loopback-endpoints"]);
        let url = api.url();
        let cloud = Cloud::start(&[]);
        let (registry, upstream) = (cloud.registry_url(), cloud.dns.to_string());
        let mut procs = vec![cloud.process];
        procs.push(parts::controller_manager(&url, &[]));
        procs.push(parts::scheduler(&url, &[]));
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
                "127.0.0.1:0",
            ],
        ));
        let port = free_port();
        let mut agents = Vec::new();
        for (name, ip) in NODES {
            let node = Node { name, ip, port };
            agents.push(node.agent(&url, dir.path(), &registry, with_otlp));
            procs.push(node.proxy(&url, "iptables", &[]));
        }
        Self { agents, _procs: procs, api, collector, _dir: dir }
    }

    fn netlab(&self, args: &[&str]) -> Run {
        netlab(&self.api.url(), args, None)
    }

    fn apply(&self, yaml: &str) {
        netlab(&self.api.url(), &["apply", "-f", "-"], Some(yaml)).ok();
    }

    fn exec(&self, pod: &str, cmd: &[&str]) -> Run {
        let mut all = vec!["exec", "-n", "demo", pod, "--"];
        all.extend_from_slice(cmd);
        self.netlab(&all)
    }

    /// `curl -sS` with a 2 s connect timeout from `pod` to `ip:8080`.
    fn curl(&self, pod: &str, ip: &str) -> Run {
        self.exec(pod, &["curl", "-sS", "--connect-timeout", "2", "-m", "5", &format!("http://{ip}:8080/")])
    }

    fn client(&self) -> Client {
        Client::new(&self.api.url()).expect("client")
    }

    fn pod_ip(&self, pod: &str) -> String {
        let run = self.netlab(&["get", "pod", pod, "-n", "demo", "-o", "jsonpath={.status.podIP}"]).ok();
        run.stdout.trim().to_string()
    }

    /// Deletes fault `name` of kind `K` (through the API: the CLI's fault verbs are another
    /// part of the issue).
    fn delete<K: Chaos>(&self, name: &str) {
        block_on(async { self.client().delete::<K>("demo", name).await.map(drop) })
            .expect("delete the fault");
    }
}

/// Waits until the chaos controller has selected `sources` (selectorKey `.`) and `targets`
/// (`.Target`), given as (pod, IP, node), for fault `name`: exactly those, with their IPs.
fn selected(lab: &Lab, name: &str, sources: &[(&str, &str, &str)], targets: &[(&str, &str, &str)]) {
    let want = |key: &str, pods: &[(&str, &str, &str)]| -> Vec<(String, String, String)> {
        let mut v: Vec<_> = pods
            .iter()
            .map(|(pod, ip, _)| (key.to_string(), format!("demo/{pod}"), ip.to_string()))
            .collect();
        v.sort();
        v
    };
    let mut expected = want(".", sources);
    expected.extend(want(".Target", targets));
    expected.sort();
    until(&format!("the chaos controller selects the pods of {name}"), || {
        let fault: NetworkChaos =
            block_on(async { lab.client().get("demo", name).await }).expect("the fault");
        let mut have: Vec<(String, String, String)> = fault
            .status
            .iter()
            .flat_map(|s| &s.experiment.container_records)
            .filter(|r| r.phase == phase::INJECTED)
            .map(|r| (r.selector_key.clone(), r.id.clone(), r.pod_ip.clone()))
            .collect();
        have.sort();
        (have == expected, format!("records {have:?}, want {expected:?}"))
    });
}

/// `status.counters[node/<node>][counter]` of a fault of kind `K`.
fn counter<K: Chaos>(lab: &Lab, name: &str, node: &str, counter: &str) -> u64 {
    block_on(async {
        let fault: K = lab.client().get("demo", name).await.expect("the fault");
        fault
            .status()
            .and_then(|s| s.counters.get(&format!("node/{node}")))
            .and_then(|c| c.get(counter))
            .copied()
            .unwrap_or(0)
    })
}

/// Polls `check` (a command run and what it printed) until it holds, or fails with the last run.
fn until(what: &str, mut check: impl FnMut() -> (bool, String)) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (ok, last) = check();
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "never {what}; last:\n{last}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn answers(run: &Run) -> (bool, String) {
    (run.code == Some(0) && run.stdout.starts_with("pod="), format!("{run:?}"))
}

fn times_out(run: &Run) -> (bool, String) {
    (run.code == Some(28), format!("{run:?}"))
}

fn network_chaos(name: &str, body: &str) -> String {
    format!(
        "apiVersion: chaos.netlab.io/v1alpha1\nkind: NetworkChaos\nmetadata:\n  name: {name}\n  namespace: demo\nspec:\n  mode: all\n  selector:\n    namespaces: [demo]\n{body}"
    )
}

/// `time_connect` as curl measures it, in seconds.
fn time_connect(lab: &Lab, ip: &str) -> f64 {
    let run = lab
        .exec(
            "client",
            &["curl", "-sS", "-o", "/dev/null", "-w", "%{time_connect}", &format!("http://{ip}:8080/")],
        )
        .ok();
    run.stdout.trim().parse().unwrap_or_else(|_| panic!("time_connect: {run:?}"))
}

/// `time_total` of a request from `client` to `ip` with the `curl` options `extra`, in seconds.
fn time_total(lab: &Lab, ip: &str, extra: &[&str]) -> f64 {
    let url = format!("http://{ip}:8080/");
    let mut cmd = vec!["curl", "-sS", "-m", "30", "-o", "/dev/null", "-w", "%{time_total}"];
    cmd.extend_from_slice(extra);
    cmd.push(&url);
    let run = lab.exec("client", &cmd).ok();
    run.stdout.trim().parse().unwrap_or_else(|_| panic!("time_total: {run:?}"))
}

/// A fault of `action` (its spec block in `spec`) on what `client` sends to `web-2`.
fn client_to_web2(name: &str, action: &str, spec: &str) -> String {
    network_chaos(
        name,
        &format!(
            "    pods: {{demo: [client]}}\n  action: {action}\n{spec}  direction: to\n  target:\n    mode: all\n    selector:\n      pods: {{demo: [web-2]}}\n"
        ),
    )
}

#[test]
fn network_faults_break_flows_as_a_real_cluster_shows_and_restore_them() {
    if std::net::UdpSocket::bind(DNS).is_err() {
        panic!("this test needs to bind {DNS} (port 53: run as root, as .ci/run does)");
    }
    let mut lab = Lab::start();
    lab.apply(MANIFESTS);
    let mut ips = std::collections::BTreeMap::new();
    until("every pod has an IP", || {
        for pod in ["client", "client-2", "web-1", "web-2"] {
            ips.insert(pod, lab.pod_ip(pod));
        }
        (ips.values().all(|ip| ip.starts_with("10.244.")), format!("{ips:?}"))
    });
    let ip = |pod: &str| ips[pod].clone();
    let (client, web1, web2, client2) = (
        ("client", ips["client"].as_str(), "node-1"),
        ("web-1", ips["web-1"].as_str(), "node-1"),
        ("web-2", ips["web-2"].as_str(), "node-2"),
        ("client-2", ips["client-2"].as_str(), "node-2"),
    );
    until("client reaches web-2", || answers(&lab.curl("client", &ip("web-2"))));
    until("client reaches web-1", || answers(&lab.curl("client", &ip("web-1"))));
    until("client-2 reaches web-1", || answers(&lab.curl("client-2", &ip("web-1"))));

    // 1. Partition client → web-2: the connect times out as curl and nc report it.
    lab.apply(&network_chaos(
        "cut",
        "    pods: {demo: [client]}\n  action: partition\n  direction: to\n  target:\n    mode: all\n    selector:\n      pods: {demo: [web-2]}\n",
    ));
    selected(&lab, "cut", &[client], &[web2]);
    until("the partition cuts client off web-2", || times_out(&lab.curl("client", &ip("web-2"))));
    let run = lab.curl("client", &ip("web-2"));
    assert_eq!(run.code, Some(28), "{run:?}");
    assert!(
        run.stderr.starts_with(&format!("curl: (28) Failed to connect to {} port 8080 after ", ip("web-2")))
            && run.stderr.ends_with(" ms: Timeout was reached\n"),
        "{run:?}"
    );
    // With -w, OpenBSD nc gives up itself (without, the kernel's ETIMEDOUT after 127 s says
    // "Connection timed out").
    let nc = lab.exec("client", &["nc", "-zv", "-w", "1", &ip("web-2"), "8080"]);
    assert_eq!(nc.code, Some(1), "{nc:?}");
    assert_eq!(
        nc.stderr,
        format!("nc: connect to {} port 8080 (tcp) timed out: Operation now in progress\n", ip("web-2")),
    );
    let to_web1 = lab.curl("client", &ip("web-1"));
    assert!(answers(&to_web1).0, "web-1 is not a target: {to_web1:?}");
    assert!(answers(&lab.curl("client-2", &ip("web-2"))).0, "client-2 is not selected");
    until("packetsDropped counted", || {
        let n = counter::<NetworkChaos>(&lab, "cut", "node-1", "packetsDropped");
        (n > 0, format!("packetsDropped {n}"))
    });
    // The route span of a broken connect names the fault.
    let marked = lab.collector.wait_for(|s| s.name == "route" && s.attr("fault.name") == "demo/cut", WAIT);
    let marked = marked.unwrap_or_else(|| panic!("no marked route span:\n{}", lab.collector.summary()));
    assert_eq!((marked.attr("fault.kind"), marked.attr("fault.action")), ("NetworkChaos", "partition"));
    // Deleted: restored.
    lab.delete::<NetworkChaos>("cut");
    until("client reaches web-2 again", || answers(&lab.curl("client", &ip("web-2"))));

    // 2. Partition by node pair, both ways: node-1's pods and node-2's cannot talk; each
    // node's own traffic still flows.
    lab.apply(&network_chaos(
        "nodes",
        "    nodes: [node-1]\n  action: partition\n  direction: both\n  target:\n    mode: all\n    selector:\n      nodes: [node-2]\n",
    ));
    selected(&lab, "nodes", &[client, web1], &[web2, client2]);
    until("node-1 is cut off node-2", || times_out(&lab.curl("client", &ip("web-2"))));
    until("node-2 is cut off node-1", || times_out(&lab.curl("client-2", &ip("web-1"))));
    assert!(answers(&lab.curl("client", &ip("web-1"))).0, "node-local traffic flows");
    assert!(answers(&lab.curl("client-2", &ip("web-2"))).0, "node-local traffic flows");

    // 3. A restarted node-agent enforces the faults again (they are objects).
    lab.agents[0].restart();
    until("node-1's agent is back and still cut off node-2", || {
        let run = lab.curl("client", &ip("web-1"));
        if !answers(&run).0 {
            return (false, format!("{run:?}"));
        }
        times_out(&lab.curl("client", &ip("web-2")))
    });
    lab.delete::<NetworkChaos>("nodes");
    until("node-1 reaches node-2 again", || answers(&lab.curl("client", &ip("web-2"))));
    until("node-2 reaches node-1 again", || answers(&lab.curl("client-2", &ip("web-1"))));

    // 4. DNS queries lost on the way: the resolver gives up as dig prints it.
    lab.apply(&network_chaos(
        "dns-loss",
        "    pods: {demo: [client]}\n  action: loss\n  loss:\n    loss: \"100\"\n  direction: to\n  externalTargets: [\"10.96.0.10/32\"]\n",
    ));
    selected(&lab, "dns-loss", &[client], &[]);
    let dig = || lab.exec("client", &["dig", "+time=1", "+tries=1", "web.demo.svc.cluster.local"]);
    until("dig gives up", || {
        let run = dig();
        (run.code == Some(9) && run.stdout.contains(";; no servers could be reached"), format!("{run:?}"))
    });
    let run = dig();
    assert!(run.stdout.contains(";; communications error to 10.96.0.10#53: timed out"), "{run:?}");
    assert!(run.stdout.ends_with(";; no servers could be reached\n"), "{run:?}");
    assert!(answers(&lab.curl("client", &ip("web-2"))).0, "only DNS is lost");
    lab.delete::<NetworkChaos>("dns-loss");
    until("dig answers again", || {
        let run = dig();
        (run.code == Some(0) && run.stdout.contains("status: NXDOMAIN"), format!("{run:?}"))
    });

    // 5. Delay: curl's time_connect grows by about the delay (loosely: timing is the bench's).
    let before = (0..3).map(|_| time_connect(&lab, &ip("web-2"))).fold(f64::MAX, f64::min);
    lab.apply(&network_chaos(
        "slow",
        "    pods: {demo: [client]}\n  action: delay\n  delay:\n    latency: 200ms\n  direction: to\n  target:\n    mode: all\n    selector:\n      pods: {demo: [web-2]}\n",
    ));
    selected(&lab, "slow", &[client], &[web2]);
    until("the delay shows in time_connect", || {
        let t = time_connect(&lab, &ip("web-2"));
        (t >= before + 0.15, format!("time_connect {t} s, {before} s without the delay"))
    });
    until("packetsDelayed counted", || {
        let n = counter::<NetworkChaos>(&lab, "slow", "node-1", "packetsDelayed");
        (n > 0, format!("packetsDelayed {n}"))
    });
    lab.delete::<NetworkChaos>("slow");
    until("the delay is gone", || {
        let t = time_connect(&lab, &ip("web-2"));
        (t < before + 0.1, format!("time_connect {t} s, {before} s without the delay"))
    });

    // 6. A duration ends the fault by itself.
    lab.apply(&network_chaos(
        "brief",
        "    pods: {demo: [client]}\n  action: partition\n  direction: to\n  duration: 4s\n  target:\n    mode: all\n    selector:\n      pods: {demo: [web-2]}\n",
    ));
    selected(&lab, "brief", &[client], &[web2]);
    until("the brief partition is in force", || times_out(&lab.curl("client", &ip("web-2"))));
    until("the brief partition is over", || answers(&lab.curl("client", &ip("web-2"))));

    // 7. Conntrack table full on node-1: new flows are dropped, tracked ones still listed.
    lab.apply(
        "apiVersion: chaos.netlab.io/v1alpha1\nkind: ExhaustionChaos\nmetadata:\n  name: ct\n  namespace: demo\nspec:\n  action: conntrack\n  nodes: [node-1]\n",
    );
    until("new flows from node-1 are dropped", || times_out(&lab.curl("client", &ip("web-2"))));
    assert!(answers(&lab.curl("client-2", &ip("web-2"))).0, "node-2's table is not full");
    let listed = lab.netlab(&["node", "conntrack", "node-1"]);
    assert!(listed.stdout.contains(&format!("dst={}", ip("web-2"))), "{listed:?}");
    until("allocationsRefused counted", || {
        let n = counter::<ExhaustionChaos>(&lab, "ct", "node-1", "allocationsRefused");
        (n > 0, format!("allocationsRefused {n}"))
    });
    lab.delete::<ExhaustionChaos>("ct");
    until("node-1 opens new flows again", || answers(&lab.curl("client", &ip("web-2"))));

    // 8. Every segment to web-2 sent twice: the receiver discards the second copy, so every
    // request still gets its answer; the copies are counted.
    lab.apply(&client_to_web2("twice", "duplicate", "  duplicate:\n    duplicate: \"100\"\n"));
    selected(&lab, "twice", &[client], &[web2]);
    until("packetsDuplicated counted", || {
        let run = lab.curl("client", &ip("web-2"));
        assert!(answers(&run).0, "duplicates cost TCP nothing: {run:?}");
        let n = counter::<NetworkChaos>(&lab, "twice", "node-1", "packetsDuplicated");
        (n > 0, format!("packetsDuplicated {n}"))
    });
    assert!(answers(&lab.curl("client", &ip("web-2"))).0, "duplicates cost TCP nothing");
    lab.delete::<NetworkChaos>("twice");

    // 9. Every segment to web-2 corrupted: each SYN fails its checksum at web-2, which drops it,
    // so the connect times out as a lost one does (curl exit 28), and web-1 is untouched.
    lab.apply(&client_to_web2("garbled", "corrupt", "  corrupt:\n    corrupt: \"100\"\n"));
    selected(&lab, "garbled", &[client], &[web2]);
    until("corrupted SYNs time the connect out", || times_out(&lab.curl("client", &ip("web-2"))));
    let run = lab.curl("client", &ip("web-2"));
    assert!(
        run.code == Some(28)
            && run
                .stderr
                .starts_with(&format!("curl: (28) Failed to connect to {} port 8080 after ", ip("web-2"))),
        "{run:?}"
    );
    assert!(answers(&lab.curl("client", &ip("web-1"))).0, "web-1 is not a target");
    until("packetsCorrupted counted", || {
        let n = counter::<NetworkChaos>(&lab, "garbled", "node-1", "packetsCorrupted");
        (n > 0, format!("packetsCorrupted {n}"))
    });
    lab.delete::<NetworkChaos>("garbled");
    until("client reaches web-2 intact again", || answers(&lab.curl("client", &ip("web-2"))));

    // 10. A 10 kB/s rate limit on a request of about 24 kB (six 4 kB headers: the server needs
    // the whole head before it answers, and each line stays under nginx's 8k header buffers)
    // takes seconds instead of milliseconds (loosely: timing is the bench's).
    let pad = "x".repeat(4000);
    let headers: Vec<String> = (1..=6).map(|n| format!("X-Pad-{n}: {pad}")).collect();
    let big: Vec<&str> = headers.iter().flat_map(|h| ["-H", h.as_str()]).collect();
    let before = (0..3).map(|_| time_total(&lab, &ip("web-2"), &big)).fold(f64::MAX, f64::min);
    lab.apply(&client_to_web2(
        "narrow",
        "bandwidth",
        "  bandwidth:\n    rate: 10kbps\n    limit: 100000\n    buffer: 1000\n",
    ));
    selected(&lab, "narrow", &[client], &[web2]);
    until("the rate limit shows in time_total", || {
        let t = time_total(&lab, &ip("web-2"), &big);
        (t >= before + 1.0, format!("time_total {t} s, {before} s without the limit"))
    });
    until("packetsDelayed counted", || {
        let n = counter::<NetworkChaos>(&lab, "narrow", "node-1", "packetsDelayed");
        (n > 0, format!("packetsDelayed {n}"))
    });
    lab.delete::<NetworkChaos>("narrow");
    until("the rate limit is gone", || {
        let t = time_total(&lab, &ip("web-2"), &big);
        (t < before + 0.5, format!("time_total {t} s, {before} s without the limit"))
    });

    // An expired fault stays an object (Chaos Mesh keeps it, with TimeUp) until deleted.
    lab.delete::<NetworkChaos>("brief");
    let left = block_on(async { lab.client().list::<NetworkChaos>(&ListParams::default()).await });
    assert!(left.expect("list").0.is_empty());
}
