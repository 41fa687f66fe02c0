//! ComponentChaos across the real processes: each component, stopped, paused or killed by a
//! fault object, behaves to everything around it as a dead, hung or killed process would, and
//! what a real cluster keeps working keeps working.
//!
//! - kube-proxy stopped on node-1: a Service created afterwards gets rules on node-2 and none on
//!   node-1, while traffic to an older Service from node-1 keeps flowing (the rules are in the
//!   kernel, not in kube-proxy); deleted, the fault lets node-1 catch up.
//! - kubelet stopped on node-1: its running pod keeps answering, a new pod bound there stays
//!   Pending with no status; on delete it starts.
//! - apiserver stopped for a duration: connecting is refused, existing Service traffic (through
//!   the node's kernel, as a process already in the pod) and DNS answers from CoreDNS's cache
//!   keep working; when the duration is up it serves again.
//! - dns paused: queries get no answer; deleted, they are answered.
//! - scheduler killed: it exits 137, once: started again, it schedules and stays up.
//!
//! Each process tells on its health port (`GET /fault`) when it has listed the faults and what
//! holds it: the tests wait on that rather than on time.

use std::{
    net::{SocketAddr, TcpStream, UdpSocket},
    time::Duration,
};

use k8s_openapi::api::core::v1::Pod;
use netlab_chaos::{
    ComponentChaos, ComponentChaosSpec,
    lab::{Component as Target, ComponentAction},
    status::counter,
};
use netlab_client::Client;
use netlab_e2e::{Apiserver, Component, Run, block_on, eventually, free_port, netlab, parts};
use netlab_proto::node::v1::{ExecRequest, exec_output::Kind, kernel_client::KernelClient};

const WAIT: Duration = Duration::from_secs(60);
const NODES: [(&str, &str); 2] = [("node-1", "127.0.1.1"), ("node-2", "127.0.1.2")];

const APPS: &str = r#"
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
  name: orders
  namespace: demo
  labels:
    app: orders
spec:
  nodeName: node-1
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
spec:
  nodeName: node-1
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
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

/// A process with its health port known (for `GET /fault`).
struct Proc {
    process: Component,
    health: u16,
}

fn start(bin: &str, health_flag: &str, args: &[&str]) -> Proc {
    let health = free_port();
    let addr = format!("127.0.0.1:{health}");
    let mut all = args.to_vec();
    all.extend([health_flag, addr.as_str()]);
    Proc { process: Component::start(bin, &all), health }
}

/// `GET 127.0.0.1:port/path` → (status, body); None while nothing answers.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read as _, Write as _};
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let status = out.split_whitespace().nth(1)?.parse().ok()?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((status, body))
}

/// Waits until the process on `health` has listed the faults and is in `state`.
async fn fault_state(what: &str, health: u16, state: &str) -> String {
    let want = format!(r#""state":"{state}""#);
    eventually(what, WAIT, || async {
        let (_, body) = http(health, "GET", "/fault")?;
        (body.contains(&want) && body.contains(r#""synced":true"#)).then_some(body)
    })
    .await
}

fn chaos(
    name: &str,
    action: ComponentAction,
    target: Target,
    nodes: &[&str],
    duration: Option<&str>,
) -> ComponentChaos {
    let mut f = ComponentChaos {
        metadata: Default::default(),
        spec: ComponentChaosSpec {
            action,
            component: target,
            nodes: nodes.iter().map(|n| n.to_string()).collect(),
            duration: duration.map(String::from),
        },
        status: None,
    };
    f.metadata.name = Some(name.into());
    f.metadata.namespace = Some("default".into());
    f
}

/// Runs `command` in `pod` through the node's kernel API directly (as a process already in the
/// pod: `netlab exec` asks the apiserver where the pod is, as kubectl does).
async fn exec_on_node(kernel: &str, pod: &str, command: &[&str]) -> (i32, String, String) {
    let mut k = KernelClient::connect(kernel.to_string()).await.expect("kernel API");
    let req = ExecRequest {
        namespace: "demo".into(),
        pod: pod.into(),
        container: String::new(),
        command: command.iter().map(|s| s.to_string()).collect(),
    };
    let mut stream = k.exec(req).await.expect("exec").into_inner();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Ok(Some(m)) = stream.message().await {
        match m.kind {
            Some(Kind::Stdout(b)) => out.extend(b),
            Some(Kind::Stderr(b)) => err.extend(b),
            Some(Kind::ExitCode(code)) => {
                return (code, String::from_utf8_lossy(&out).into(), String::from_utf8_lossy(&err).into());
            }
            None => {}
        }
    }
    panic!("exec stream ended without an exit code")
}

/// The pod's phase and whether it has a status at all.
async fn phase(client: &Client, name: &str) -> Option<String> {
    let pod: Pod = client.get("demo", name).await.ok()?;
    pod.status.and_then(|s| s.phase)
}

struct Lab {
    // Drop order: node processes first, the apiserver last.
    proxies: Vec<Proc>,
    agents: Vec<Proc>,
    _scheduler: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    /// The apiserver's health port (`/fault`).
    api_health: u16,
    kernel_port: u16,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(nodes: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api_health = free_port();
        let health_addr = format!("127.0.0.1:{api_health}");
        let api = Apiserver::start(&dir.path().join("api"), &["--healthz-bind-address", &health_addr]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        let cm = parts::controller_manager(&url, &[]);
        let scheduler = parts::scheduler(&url, &[]);
        let kernel_port = free_port();
        let port = kernel_port.to_string();
        let (mut agents, mut proxies) = (Vec::new(), Vec::new());
        for (name, ip) in nodes {
            let data = dir.path().join(name);
            let kernel = format!("http://{ip}:{kernel_port}");
            agents.push(start(
                "netlab-node-agent",
                "--healthz-bind-address",
                &[
                    "--server",
                    &url,
                    "--node-name",
                    name,
                    "--node-ip",
                    ip,
                    "--address",
                    ip,
                    "--port",
                    &port,
                    "--data-dir",
                    data.to_str().expect("utf-8"),
                    "--registry",
                    &registry,
                    "--time-scale",
                    parts::TIME_SCALE,
                    "--resolv-conf",
                    "/dev/null",
                ],
            ));
            proxies.push(start(
                "netlab-proxy",
                "--healthz-bind-address",
                &[
                    "--server",
                    &url,
                    "--hostname-override",
                    name,
                    "--kernel",
                    &kernel,
                    "--iptables-min-sync-period",
                    parts::MIN_SYNC_PERIOD,
                ],
            ));
        }
        Self {
            proxies,
            agents,
            _scheduler: scheduler,
            _cm: cm,
            _cloud: cloud,
            api,
            api_health,
            kernel_port,
            _dir: dir,
        }
    }

    fn netlab(&self, args: &[&str]) -> Run {
        netlab(&self.api.url(), args, None)
    }

    fn apply(&self, yaml: &str) {
        netlab(&self.api.url(), &["apply", "-f", "-"], Some(yaml)).ok();
    }

    fn client(&self) -> Client {
        Client::new(&self.api.url()).expect("client")
    }

    fn kernel(&self, node: usize) -> String {
        format!("http://{}:{}", NODES[node].1, self.kernel_port)
    }

    fn rules(&self, node: &str) -> String {
        let run = self.netlab(&["node", "iptables-save", node]);
        if run.code == Some(0) { run.stdout } else { String::new() }
    }

    fn cluster_ip(&self, svc: &str) -> String {
        self.netlab(&["get", "svc", svc, "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"]).ok().stdout
    }

    /// curl from the client pod (node-1) to `url`, through `netlab exec`.
    fn curl(&self, url: &str) -> Run {
        self.netlab(&[
            "exec",
            "-n",
            "demo",
            "client",
            "--",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "5",
            url,
        ])
    }

    async fn wait_serving(&self, url: &str) {
        eventually("curl to the orders Service", WAIT, || async {
            let run = self.curl(url);
            (run.code == Some(0) && run.stdout == "200").then_some(())
        })
        .await;
    }
}

#[test]
fn stopped_kube_proxy_and_kubelet_keep_what_runs_and_start_nothing_new() {
    let lab = Lab::start(&NODES);
    lab.apply(APPS);
    block_on(async {
        let client = lab.client();
        let orders = format!("http://{}/", lab.cluster_ip("orders"));
        lab.wait_serving(&orders).await;

        // kube-proxy on node-1 stops: its health says so, and a Service created now is
        // programmed on node-2 only.
        fault_state("the proxies listing the faults", lab.proxies[0].health, "running").await;
        client
            .create(&chaos("stop-proxy", ComponentAction::Stop, Target::KubeProxy, &["node-1"], None))
            .await
            .expect("create");
        let state = fault_state("kube-proxy on node-1 stopped", lab.proxies[0].health, "stopped").await;
        assert!(state.contains(r#""component":"kube-proxy/node-1""#), "{state}");
        let (code, body) = http(lab.proxies[0].health, "GET", "/healthz").expect("health answers");
        assert_eq!(code, 503);
        assert!(body.contains("kube-proxy/node-1 is stopped by ComponentChaos default/stop-proxy"), "{body}");
        fault_state("kube-proxy on node-2 untouched", lab.proxies[1].health, "running").await;

        lab.apply(LATE);
        let late = lab.cluster_ip("late");
        assert!(!late.is_empty(), "no ClusterIP for the late Service");
        eventually("the late Service programmed on node-2", WAIT, || async {
            lab.rules("node-2").contains(&format!("-d {late} --dport 80")).then_some(())
        })
        .await;
        assert!(
            !lab.rules("node-1").contains(&format!("-d {late} --dport 80")),
            "node-1's stopped kube-proxy wrote rules"
        );
        // The rules written before the stop keep carrying traffic from node-1.
        let run = lab.curl(&orders);
        assert_eq!((run.code, run.stdout.as_str()), (Some(0), "200"), "{run:?}");

        // Deleted: node-1 catches up.
        let _ = client.delete::<ComponentChaos>("default", "stop-proxy").await;
        eventually("the late Service programmed on node-1", WAIT, || async {
            lab.rules("node-1").contains(&format!("-d {late} --dport 80")).then_some(())
        })
        .await;

        // The kubelet on node-1 stops: the running pod keeps answering, a new pod stays Pending
        // with nothing started.
        client
            .create(&chaos("stop-kubelet", ComponentAction::Stop, Target::Kubelet, &["node-1"], None))
            .await
            .expect("create");
        fault_state("the kubelet on node-1 stopped", lab.agents[0].health, "stopped").await;
        let run = lab.curl(&orders);
        assert_eq!((run.code, run.stdout.as_str()), (Some(0), "200"), "{run:?}");
        lab.apply(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: later\n  namespace: demo\nspec:\n  nodeName: node-1\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        );
        // The same pod on node-2 starts: a barrier showing time enough has passed for node-1.
        lab.apply(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: later-2\n  namespace: demo\nspec:\n  nodeName: node-2\n  containers:\n  - name: app\n    image: nginx:1.27\n",
        );
        eventually("the pod on node-2 running", WAIT, || async {
            (phase(&client, "later-2").await.as_deref() == Some("Running")).then_some(())
        })
        .await;
        let on_node_1 = phase(&client, "later").await;
        assert!(on_node_1.is_none() || on_node_1.as_deref() == Some("Pending"), "{on_node_1:?}");

        let _ = client.delete::<ComponentChaos>("default", "stop-kubelet").await;
        eventually("the pod on node-1 running once the kubelet runs", WAIT, || async {
            (phase(&client, "later").await.as_deref() == Some("Running")).then_some(())
        })
        .await;

        // The apiserver stopped for a while: refused, while a process in the client pod still
        // reaches the orders Service through the rules in node-1's kernel.
        client
            .create(&chaos("stop-api", ComponentAction::Stop, Target::Apiserver, &[], Some("8s")))
            .await
            .expect("create");
        fault_state("the apiserver stopped", lab.api_health, "stopped").await;
        let refused = TcpStream::connect(lab.api.addr).expect_err("connecting to a stopped apiserver");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
        let (code, out, err) = exec_on_node(
            &lab.kernel(0),
            "client",
            &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5", &orders],
        )
        .await;
        assert_eq!((code, out.as_str()), (0, "200"), "{err}");
        eventually("the apiserver serving after the duration", WAIT, || async {
            (lab.netlab(&["get", "ns", "default", "-o", "name"]).code == Some(0)).then_some(())
        })
        .await;
    });
}

/// An A query for `name` (recursion desired), as dig sends it.
fn a_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Asks `server` once: Ok((rcode, answers)) or the socket's error (refused, timed out).
fn ask(server: SocketAddr, name: &str) -> std::io::Result<(u8, u16)> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(Duration::from_secs(1)))?;
    s.connect(server)?;
    s.send(&a_query(0x4242, name))?;
    let mut buf = [0u8; 1500];
    let n = s.recv(&mut buf)?;
    if n < 12 {
        return Err(std::io::Error::other("short reply"));
    }
    Ok((buf[3] & 0x0f, u16::from_be_bytes([buf[6], buf[7]])))
}

fn timed_out(r: &std::io::Result<(u8, u16)>) -> bool {
    matches!(r, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

#[test]
fn stopped_apiserver_refuses_and_paused_dns_hangs_while_the_rest_carries_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api_health = free_port();
    let health_addr = format!("127.0.0.1:{api_health}");
    let api = Apiserver::start(&dir.path().join("api"), &["--healthz-bind-address", &health_addr]);
    let url = api.url();
    let dns_port = free_port();
    let dns_addr: SocketAddr = format!("127.0.0.1:{dns_port}").parse().expect("addr");
    let dns = start(
        "netlab-dns",
        "--ready-listen",
        &[
            "--server",
            &url,
            "--listen",
            &dns_addr.to_string(),
            "--health-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--metrics-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--advertise-address",
            "127.0.0.1",
        ],
    );
    let name = "kubernetes.default.svc.cluster.local";
    block_on(async {
        let client = Client::new(&url).expect("client");
        eventually("the cluster DNS answering", WAIT, || async {
            matches!(ask(dns_addr, name), Ok((0, n)) if n > 0).then_some(())
        })
        .await;

        // dns paused: no answer at all, its readiness fails; deleted, it answers.
        fault_state("dns listing the faults", dns.health, "running").await;
        client
            .create(&chaos("pause-dns", ComponentAction::Pause, Target::Dns, &[], None))
            .await
            .expect("create");
        fault_state("dns paused", dns.health, "paused").await;
        eventually("queries unanswered", WAIT, || async { timed_out(&ask(dns_addr, name)).then_some(()) })
            .await;
        let (code, _) = http(dns.health, "GET", "/ready").expect("ready answers");
        assert_eq!(code, 503);
        client.delete::<ComponentChaos>("default", "pause-dns").await.expect("delete");
        eventually("dns answering again", WAIT, || async {
            matches!(ask(dns_addr, name), Ok((0, n)) if n > 0).then_some(())
        })
        .await;

        // The apiserver stopped for a while: refused; DNS still answers from what it has.
        eventually("the apiserver listing its faults", WAIT, || async {
            let (_, body) = http(api_health, "GET", "/fault")?;
            body.contains(r#""synced":true"#).then_some(())
        })
        .await;
        client
            .create(&chaos("stop-api", ComponentAction::Stop, Target::Apiserver, &[], Some("6s")))
            .await
            .expect("create");
        fault_state("the apiserver stopped", api_health, "stopped").await;
        let refused = TcpStream::connect(api.addr).expect_err("connecting to a stopped apiserver");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
        let run = netlab(&url, &["get", "pods"], None);
        assert_ne!(run.code, Some(0), "{run:?}");
        assert!(
            matches!(ask(dns_addr, name), Ok((0, n)) if n > 0),
            "DNS answers while the apiserver is down"
        );
        let (code, body) = http(api_health, "GET", "/readyz").expect("readyz answers");
        assert_eq!(code, 503, "{body}");

        // The duration ends it.
        eventually("the apiserver serving again", WAIT, || async {
            (netlab(&url, &["get", "ns", "default", "-o", "name"], None).code == Some(0)).then_some(())
        })
        .await;
    });
    drop(dns);
}

#[test]
fn a_stopped_apiserver_is_lifted_through_its_health_port() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api_health = free_port();
    let health_addr = format!("127.0.0.1:{api_health}");
    let api = Apiserver::start(&dir.path().join("api"), &["--healthz-bind-address", &health_addr]);
    block_on(async {
        let client = Client::new(&api.url()).expect("client");
        fault_state("the apiserver listing its faults", api_health, "running").await;
        client
            .create(&chaos("stop-api", ComponentAction::Stop, Target::Apiserver, &[], None))
            .await
            .expect("create");
        fault_state("the apiserver stopped", api_health, "stopped").await;
        let (code, body) = http(api_health, "DELETE", "/fault").expect("DELETE /fault");
        assert_eq!(code, 200, "{body}");
        // Serving again: the fault object can now be deleted through the API.
        eventually("the API back", WAIT, || async {
            client.delete::<ComponentChaos>("default", "stop-api").await.ok()
        })
        .await;
    });
}

#[test]
fn a_killed_scheduler_exits_137_once_and_schedules_after_its_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Apiserver::start(&dir.path().join("api"), &[]);
    let url = api.url();
    let mut scheduler = start("netlab-scheduler", "--healthz-bind-address", &["--server", &url]);
    block_on(async {
        let client = Client::new(&url).expect("client");
        fault_state("the scheduler listing its faults", scheduler.health, "running").await;
        client
            .create(&chaos("kill-scheduler", ComponentAction::Kill, Target::Scheduler, &[], None))
            .await
            .expect("create");
        let status = eventually("the scheduler exiting", WAIT, || {
            let exited = scheduler.process.try_wait();
            async move { exited }
        })
        .await;
        assert_eq!(status.code(), Some(137), "{status}");
        let fault: ComponentChaos = client.get("default", "kill-scheduler").await.expect("get");
        let killed = fault
            .status
            .as_ref()
            .and_then(|s| s.counters.get("scheduler"))
            .and_then(|c| c.get(counter::PROCESSES_KILLED));
        assert_eq!(killed, Some(&1), "{:?}", fault.status);

        // Started again (as its supervisor would), it has seen the fault and stays up.
        scheduler.process.restart();
        fault_state("the restarted scheduler listing its faults", scheduler.health, "running").await;
        assert!(scheduler.process.try_wait().is_none(), "killed again after the restart");
        let fault: ComponentChaos = client.get("default", "kill-scheduler").await.expect("get");
        let killed = fault
            .status
            .as_ref()
            .and_then(|s| s.counters.get("scheduler"))
            .and_then(|c| c.get(counter::PROCESSES_KILLED));
        assert_eq!(killed, Some(&1), "one kill per fault");
    });
}
