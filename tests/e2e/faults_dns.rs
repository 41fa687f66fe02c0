//! DNS faults across the real processes: DNSChaos in the cluster DNS, scoped by the querying
//! pod's IP (`netlab exec client -- dig/nslookup/getent` sees SERVFAIL, NXDOMAIN, REFUSED, a
//! random address or no answer, while another pod and a query from the host resolve normally),
//! restored when the fault is deleted or its duration ends, and back after a restart of `dns`;
//! and UpstreamDNSChaos in the cloud's resolver, with CoreDNS's `forward` in front of it, where
//! external names fail as CoreDNS makes them fail while cluster names keep working.
//!
//! The chaos controller (which selects pods and writes `containerRecords`) is not started: the
//! tests write the records themselves ([`inject`]), as the controller would.

use std::{
    net::UdpSocket,
    path::Path,
    time::{Duration, Instant},
};

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use netlab_chaos::{
    DnsChaos, UpstreamDnsChaos, UpstreamDnsChaosSpec,
    dns::DnsAction,
    lab::UpstreamAction,
    object::Chaos,
    status::{Record, counter, phase},
};
use netlab_client::Client;
use netlab_e2e::{
    Apiserver, Component, free_port, netlab,
    parts::{self, Cloud, Node},
    runtime,
};

const WAIT: Duration = Duration::from_secs(90);

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
apiVersion: v1
kind: Pod
metadata:
  name: client
  namespace: demo
  labels:
    app: client
spec:
  nodeName: node-1
  dnsConfig:
    options:
    - name: timeout
      value: "1"
    - name: attempts
      value: "1"
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
---
apiVersion: v1
kind: Pod
metadata:
  name: other
  namespace: demo
  labels:
    app: other
spec:
  nodeName: node-1
  containers:
  - name: other
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#;

/// A one-node cluster with its own cluster DNS on `dns_ip:53`.
struct Lab {
    procs: Vec<Component>,
    /// Index of the dns process in `procs`.
    dns: usize,
    api: Apiserver,
    dns_addr: String,
    /// Runs the API client's connection (a Client needs a runtime to be built on).
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(dns_ip: &str, node_ip: &str) -> Self {
        let dns_addr = format!("{dns_ip}:53");
        if UdpSocket::bind(&dns_addr).is_err() {
            panic!("this test needs to bind {dns_addr} (port 53: run as root, as .ci/run does)");
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &["--allow-loopback-endpoints"]);
        let url = api.url();
        let cloud = Cloud::start(&["--apiserver", &url]);
        let (registry, upstream) = (cloud.registry_url(), cloud.dns.to_string());
        let mut procs = vec![cloud.process];
        procs.push(parts::controller_manager(&url, &[]));
        procs.push(Component::start(
            "netlab-dns",
            &[
                "--server",
                &url,
                "--listen",
                &dns_addr,
                "--advertise-address",
                dns_ip,
                "--upstream",
                &upstream,
                "--health-listen",
                "127.0.0.1:0",
                "--ready-listen",
                "127.0.0.1:0",
                "--metrics-listen",
                &format!("127.0.0.1:{}", free_port()),
            ],
        ));
        let dns = procs.len() - 1;
        let node = Node { name: "node-1", ip: node_ip, port: free_port() };
        procs.push(node.agent(&url, Path::new(dir.path()), &registry, &[]));
        procs.push(node.proxy(&url, "iptables", &[]));
        let lab = Self { procs, dns, api, dns_addr, rt: runtime(), _dir: dir };
        lab.netlab(&["apply", "-f", "-"], Some(APP));
        lab.wait_resolving();
        lab
    }

    fn client(&self) -> Client {
        let _rt = self.rt.enter();
        Client::new(&self.api.url()).expect("client")
    }

    fn netlab(&self, args: &[&str], stdin: Option<&str>) -> (Option<i32>, String) {
        let run = netlab(&self.api.url(), args, stdin);
        (run.code, format!("{}{}", run.stdout, run.stderr))
    }

    /// `netlab exec -n demo POD -- CMD...`: exit code and output.
    fn exec(&self, pod: &str, cmd: &[&str]) -> (Option<i32>, String) {
        let mut args = vec!["exec", "-n", "demo", pod, "--"];
        args.extend_from_slice(cmd);
        self.netlab(&args, None)
    }

    /// `dig` from `pod`: its exit code and output.
    fn dig(&self, pod: &str, args: &[&str]) -> (Option<i32>, String) {
        let mut cmd = vec!["dig", "+time=1", "+tries=1"];
        cmd.extend_from_slice(args);
        self.exec(pod, &cmd)
    }

    /// Polls `dig` from `pod` until its output contains `want`.
    fn dig_until(&self, pod: &str, args: &[&str], want: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let (_, out) = self.dig(pod, args);
            // Records as dig prints them, tabs and all, compared with single spaces.
            if out.contains(want) || collapse(&out).contains(want) {
                return out;
            }
            assert!(Instant::now() < deadline, "dig {args:?} from {pod} never showed {want:?}; last:\n{out}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until both pods resolve the Service.
    fn wait_resolving(&self) {
        for pod in ["client", "other"] {
            self.dig_until(pod, &["orders.demo.svc.cluster.local"], "status: NOERROR");
        }
    }

    fn pod_ip(&self, name: &str) -> String {
        let client = self.client();
        runtime().block_on(async {
            let pod: Pod = client.get("demo", name).await.expect("pod");
            pod.status.and_then(|s| s.pod_ip).expect("pod IP")
        })
    }

    /// The host's own query (not a pod's): the real `dig` (Debian's dnsutils) straight at the
    /// dns process; its status line.
    fn host_dig(&self, name: &str) -> String {
        let (ip, port) = self.dns_addr.rsplit_once(':').expect("ip:port");
        let out = std::process::Command::new("dig")
            .args([&format!("@{ip}"), "-p", port, "+time=3", "+tries=1", name])
            .output()
            .expect("dig (apt-get install dnsutils)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn restart_dns(&mut self) {
        self.procs[self.dns].kill9();
        self.procs[self.dns].restart();
    }
}

/// `text` with every run of whitespace made one space.
fn collapse(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Creates a DNSChaos on `pod_ips` and writes its records as the chaos controller would (one
/// helper, so the tests can switch to the real controller).
fn inject(client: &Client, mut chaos: DnsChaos, pods: &[(&str, &str)]) -> DnsChaos {
    runtime().block_on(async {
        let created: DnsChaos = client.create(&chaos).await.expect("create DNSChaos");
        let (namespace, name) = (
            created.metadata.namespace.clone().unwrap_or_default(),
            created.metadata.name.clone().unwrap_or_default(),
        );
        chaos = created;
        let now = jiff::Timestamp::now().to_string();
        let records: Vec<Record> = pods
            .iter()
            .map(|(name, ip)| Record {
                id: format!("demo/{name}"),
                selector_key: ".".into(),
                phase: phase::INJECTED.into(),
                injected_count: 1,
                recovered_count: 0,
                pod_ip: ip.to_string(),
                node_name: "node-1".into(),
                injected_at: now.clone(),
            })
            .collect();
        // As the controller does: on a conflict (an enforcer's counters landed first), re-read.
        loop {
            chaos.status_mut().experiment.desired_phase = phase::RUN.into();
            chaos.status_mut().experiment.container_records = records.clone();
            match client.update_status(&chaos).await {
                Err(e) if e.is_conflict() => {
                    chaos = client.get(&namespace, &name).await.expect("re-read DNSChaos");
                }
                other => return other.expect("write containerRecords"),
            }
        }
    })
}

fn dns_chaos(name: &str, action: DnsAction, edit: impl FnOnce(&mut DnsChaos)) -> DnsChaos {
    let mut c = DnsChaos {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("demo".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    c.spec.action = action;
    c.spec.pods.selector.label_selectors.insert("app".into(), "client".into());
    c.spec.patterns = vec!["orders.*".into()];
    edit(&mut c);
    c
}

fn delete<K: Chaos>(client: &Client, name: &str) {
    runtime().block_on(async { client.delete::<K>("demo", name).await.expect("delete fault") });
}

fn counter_of<K: Chaos>(client: &Client, name: &str, reporter: &str, counter: &str) -> u64 {
    runtime().block_on(async {
        let f: K = client.get("demo", name).await.expect("fault");
        f.status().and_then(|s| s.counters.get(reporter)?.get(counter).copied()).unwrap_or(0)
    })
}

fn eventually(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !ok() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

const ORDERS: &str = "orders.demo.svc.cluster.local";

#[test]
fn dns_chaos_answers_the_selected_pod_wrongly() {
    let mut lab = Lab::start("127.0.4.253", "127.0.4.1");
    let client = lab.client();
    let client_ip = lab.pod_ip("client");

    // error: SERVFAIL for the selected pod only.
    inject(&client, dns_chaos("servfail", DnsAction::Error, |_| {}), &[("client", &client_ip)]);
    let out = lab.dig_until("client", &[ORDERS], "status: SERVFAIL");
    assert!(!out.contains("ANSWER SECTION"), "{out}");
    let (_, out) = lab.dig("other", &[ORDERS]);
    assert!(out.contains("status: NOERROR"), "another pod is not affected:\n{out}");
    let out = lab.host_dig(ORDERS);
    assert!(out.contains("status: NOERROR"), "a query from the host is not a selected pod's:\n{out}");
    let (_, out) = lab.dig("client", &["kubernetes.default.svc.cluster.local"]);
    assert!(out.contains("status: NOERROR"), "a name outside the patterns:\n{out}");
    // ndots:5 makes nslookup try the search list first; the first candidate (also `orders.*`)
    // already fails, and nslookup stops at a SERVFAIL as BIND's does.
    let (code, out) = lab.exec("client", &["nslookup", ORDERS]);
    assert!(
        out.contains(&format!("** server can't find {ORDERS}.demo.svc.cluster.local: SERVFAIL")),
        "{code:?}\n{out}"
    );
    assert_eq!(code, Some(1), "{out}");
    let (code, out) = lab.exec("client", &["getent", "hosts", ORDERS]);
    assert_eq!(code, Some(2), "getent: {out}");
    eventually("queriesAnswered counted", || {
        counter_of::<DnsChaos>(&client, "servfail", "dns", counter::QUERIES_ANSWERED) > 0
    });
    delete::<DnsChaos>(&client, "servfail");
    lab.dig_until("client", &[ORDERS], "status: NOERROR");

    // error with the lab's rcode: NXDOMAIN and REFUSED.
    for (name, rcode) in [("nxdomain", "NXDOMAIN"), ("refused", "REFUSED")] {
        inject(
            &client,
            dns_chaos(name, DnsAction::Error, |c| c.spec.rcode = Some(rcode.into())),
            &[("client", &client_ip)],
        );
        lab.dig_until("client", &[ORDERS], &format!("status: {rcode}"));
        delete::<DnsChaos>(&client, name);
        lab.dig_until("client", &[ORDERS], "status: NOERROR");
    }

    // random: A is a made-up address with TTL 10, AAAA the fixed one.
    inject(&client, dns_chaos("random", DnsAction::Random, |_| {}), &[("client", &client_ip)]);
    let out = lab.dig_until("client", &["+noall", "+answer", ORDERS], &format!("{ORDERS}. 10 IN A "));
    assert!(out.lines().count() == 1, "{out}");
    let out = lab.dig_until("client", &["+noall", "+answer", ORDERS, "AAAA"], "2001:db8::123:12:1");
    assert!(collapse(&out).contains(&format!("{ORDERS}. 10 IN AAAA 2001:db8::123:12:1")), "{out}");
    let (_, out) = lab.dig("other", &["+short", ORDERS]);
    let cluster_ip = runtime().block_on(async {
        let svc: k8s_openapi::api::core::v1::Service = client.get("demo", "orders").await.expect("service");
        svc.spec.and_then(|s| s.cluster_ip).expect("ClusterIP")
    });
    assert_eq!(out.trim(), cluster_ip.trim(), "another pod gets the ClusterIP");
    delete::<DnsChaos>(&client, "random");
    lab.dig_until("client", &["+short", ORDERS], cluster_ip.trim());

    // timeout: no answer; dig and getent give up as they do when no server answers.
    inject(&client, dns_chaos("timeout", DnsAction::Timeout, |_| {}), &[("client", &client_ip)]);
    let out = lab.dig_until("client", &[ORDERS], "no servers could be reached");
    assert!(out.contains("timed out"), "{out}");
    let (code, _) = lab.dig("client", &[ORDERS]);
    assert_eq!(code, Some(9), "dig's exit code when no server answers");
    let (code, out) = lab.exec("client", &["getent", "hosts", ORDERS]);
    assert_eq!(code, Some(2), "getent: {out}");
    let (_, out) = lab.dig("other", &[ORDERS]);
    assert!(out.contains("status: NOERROR"), "{out}");
    eventually("queriesDropped counted", || {
        counter_of::<DnsChaos>(&client, "timeout", "dns", counter::QUERIES_DROPPED) > 0
    });
    delete::<DnsChaos>(&client, "timeout");
    lab.dig_until("client", &[ORDERS], "status: NOERROR");

    // delay: the right answer, late, counted.
    inject(
        &client,
        dns_chaos("slow", DnsAction::Delay, |c| c.spec.delay = Some("300ms".into())),
        &[("client", &client_ip)],
    );
    eventually("queriesDelayed counted", || {
        let (_, out) = lab.dig("client", &[ORDERS]);
        assert!(out.contains("status: NOERROR"), "{out}");
        counter_of::<DnsChaos>(&client, "slow", "dns", counter::QUERIES_DELAYED) > 0
    });
    delete::<DnsChaos>(&client, "slow");

    // duration: in force, then over by itself.
    inject(
        &client,
        dns_chaos("brief", DnsAction::Error, |c| c.spec.duration = Some("4s".into())),
        &[("client", &client_ip)],
    );
    lab.dig_until("client", &[ORDERS], "status: SERVFAIL");
    lab.dig_until("client", &[ORDERS], "status: NOERROR");
    delete::<DnsChaos>(&client, "brief");

    // A restarted dns applies the faults in force again.
    inject(&client, dns_chaos("lasting", DnsAction::Error, |_| {}), &[("client", &client_ip)]);
    lab.dig_until("client", &[ORDERS], "status: SERVFAIL");
    lab.restart_dns();
    lab.dig_until("client", &[ORDERS], "status: SERVFAIL");
    let (_, out) = lab.dig("other", &[ORDERS]);
    assert!(out.contains("status: NOERROR"), "{out}");
    delete::<DnsChaos>(&client, "lasting");
    lab.dig_until("client", &[ORDERS], "status: NOERROR");
}

fn upstream_chaos(
    name: &str,
    action: UpstreamAction,
    patterns: &[&str],
    delay: Option<&str>,
) -> UpstreamDnsChaos {
    UpstreamDnsChaos {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("demo".into()),
            ..Default::default()
        },
        spec: UpstreamDnsChaosSpec {
            action,
            patterns: patterns.iter().map(|p| p.to_string()).collect(),
            delay: delay.map(str::to_string),
            duration: None,
        },
        status: None,
    }
}

fn create<K: Chaos>(client: &Client, fault: &K) {
    runtime().block_on(async { client.create(fault).await.expect("create fault") });
}

#[test]
fn upstream_faults_fail_external_names_the_coredns_way() {
    let lab = Lab::start("127.0.5.253", "127.0.5.1");
    let client = lab.client();
    // Each step asks a name not asked before: CoreDNS's `cache` keeps answers (and SERVFAILs
    // for 5 s), as a real cluster's would.

    // servfail: relayed as it is.
    create(&client, &upstream_chaos("sf", UpstreamAction::Servfail, &["api.example.com"], None));
    lab.dig_until("client", &["api.example.com"], "status: SERVFAIL");
    let (_, out) = lab.dig("client", &["example.com"]);
    assert!(out.contains("status: NOERROR"), "a name outside the patterns:\n{out}");
    eventually("cloud counted the SERVFAIL", || {
        counter_of::<UpstreamDnsChaos>(&client, "sf", "cloud", counter::QUERIES_ANSWERED) > 0
    });
    delete::<UpstreamDnsChaos>(&client, "sf");

    // delay: answered, late.
    create(&client, &upstream_chaos("slow", UpstreamAction::Delay, &["iam.amazonaws.com"], Some("300ms")));
    lab.dig_until("client", &["+time=5", "iam.amazonaws.com"], "status: NOERROR");
    eventually("cloud counted the delay", || {
        counter_of::<UpstreamDnsChaos>(&client, "slow", "cloud", counter::QUERIES_DELAYED) > 0
    });
    delete::<UpstreamDnsChaos>(&client, "slow");

    // unreachable, every name (the health probes too): forward tries until its 5 s deadline and
    // answers SERVFAIL; cluster names are the kubernetes plugin's and keep working.
    create(&client, &upstream_chaos("down", UpstreamAction::Unreachable, &[], None));
    lab.dig_until("client", &["+time=10", "sts.amazonaws.com"], "status: SERVFAIL");
    let (_, out) = lab.dig("client", &[ORDERS]);
    assert!(out.contains("status: NOERROR"), "cluster names keep working:\n{out}");
    eventually("cloud counted the drops", || {
        counter_of::<UpstreamDnsChaos>(&client, "down", "cloud", counter::QUERIES_DROPPED) > 0
    });
    delete::<UpstreamDnsChaos>(&client, "down");
    lab.dig_until("client", &["+time=10", "ec2.us-east-1.amazonaws.com"], "status: NOERROR");
}
