//! What network faults cost on the lab's hottest user path, `netlab exec client -- curl` of a
//! ClusterIP whose endpoints are on the other node: a lab without faults versus a lab with 100
//! unrelated NetworkChaos faults in force (each a partition between pods that do not exist, so
//! the node's kernel checks them for every flow and none matches); then, in the second lab, a
//! 100 ms delay from the client to the endpoints, measured as curl's own `%{time_connect}`
//! (one SYN through the delay) against the same without the fault.
//!
//! Both labs run at once (nodes on 127.0.6.x and 127.0.7.x) and the samples alternate, as in the
//! tracing bench. The faults' records are written as the chaos controller writes them.
//!
//! Run: `cargo build --release --bins && cargo bench -p netlab-e2e --bench faults` (or, on the
//! debug binaries `cargo build --bins` made, `cargo bench --profile dev -p netlab-e2e --bench
//! faults`).

use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netlab_chaos::{
    NetworkChaos, NetworkChaosSpec,
    network::{DelaySpec, Direction, NetworkAction},
    object::Chaos,
    spec::PodSelector,
    status::{Record, phase},
};
use netlab_client::Client;
use netlab_e2e::{
    Apiserver, free_port, netlab,
    parts::{self, Cloud, Node},
};
use netlab_proto::node::v1::{ExecRequest, exec_output::Kind, kernel_client::KernelClient};

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
spec:
  nodeName: node-1
  containers:
  - name: client
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#;

const RUNS: usize = 300;
const DELAY_RUNS: usize = 60;
const UNRELATED: usize = 100;

struct Lab {
    _procs: Vec<netlab_e2e::Component>,
    api: Apiserver,
    kernel: String,
    target: String,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(ips: [&str; 2]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &[]);
        let url = api.url();
        let cloud = Cloud::start(&[]);
        let registry = cloud.registry_url();
        let mut procs = vec![cloud.process];
        // The records are written here, as the chaos controller would write them: it stays off.
        procs.push(parts::controller_manager(&url, &["--controllers", "*,-chaos"]));
        procs.push(parts::scheduler(&url, &[]));
        let port = free_port();
        for (name, ip) in [("node-1", ips[0]), ("node-2", ips[1])] {
            let node = Node { name, ip, port };
            procs.push(node.agent_scaled(&url, dir.path(), &registry, "1", &[]));
            procs.push(parts::proxy(&url, name, &node.kernel(), "iptables", "1s", &[]));
        }
        netlab(&url, &["apply", "-f", "-"], Some(APP)).ok();
        let cip =
            netlab(&url, &["get", "svc", "orders", "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"], None)
                .ok()
                .stdout;
        Self {
            _procs: procs,
            api,
            kernel: format!("http://{}:{port}", ips[0]),
            target: format!("http://{}/", cip.trim()),
            _dir: dir,
        }
    }
}

fn record(key: &str, ip: String) -> Record {
    Record {
        id: format!("demo/{ip}"),
        selector_key: key.into(),
        phase: phase::INJECTED.into(),
        pod_ip: ip,
        ..Default::default()
    }
}

/// Creates a NetworkChaos `name` with `spec` and writes its records.
async fn fault(client: &Client, name: &str, spec: NetworkChaosSpec, records: Vec<Record>) {
    let f = NetworkChaos {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("demo".into()),
            ..Default::default()
        },
        spec,
        status: None,
    };
    let mut f: NetworkChaos = client.create(&f).await.expect("create the fault");
    // The node-agents' reporters write the status too (counters): re-read on a conflict.
    loop {
        f.status_mut().experiment.container_records = records.clone();
        match client.update_status(&f).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => f = client.get("demo", name).await.expect("re-read the fault"),
            Err(e) => panic!("write the records: {e:?}"),
        }
    }
}

async fn pod_ips(client: &Client, label: &str) -> Vec<String> {
    let params =
        netlab_client::ListParams { namespace: "demo".into(), labels: label.into(), ..Default::default() };
    let (pods, _) = client.list::<k8s_openapi::api::core::v1::Pod>(&params).await.expect("pods");
    pods.iter().filter_map(|p| p.status.as_ref()?.pod_ip.clone()).collect()
}

/// One `exec client -- curl`; its exit code and what it printed.
async fn exec(k: &mut KernelClient<tonic::transport::Channel>, cmd: &[&str]) -> (Option<i32>, String) {
    let req = ExecRequest {
        namespace: "demo".into(),
        pod: "client".into(),
        container: String::new(),
        command: cmd.iter().map(|s| s.to_string()).collect(),
    };
    let Ok(resp) = k.exec(req).await else { return (None, String::new()) };
    let mut stream = resp.into_inner();
    let mut out = String::new();
    while let Ok(Some(m)) = stream.message().await {
        match m.kind {
            Some(Kind::Stdout(b)) => out.push_str(&String::from_utf8_lossy(&b)),
            Some(Kind::ExitCode(c)) => return (Some(c), out),
            _ => {}
        }
    }
    (None, out)
}

fn p50(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let plain = Lab::start(["127.0.6.1", "127.0.6.2"]);
    let faulty = Lab::start(["127.0.7.1", "127.0.7.2"]);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let mut k_plain = KernelClient::connect(plain.kernel.clone()).await.expect("node-1 kernel API");
        let mut k_faulty = KernelClient::connect(faulty.kernel.clone()).await.expect("node-1 kernel API");
        for (k, target) in [(&mut k_plain, &plain.target), (&mut k_faulty, &faulty.target)] {
            let deadline = Instant::now() + Duration::from_secs(60);
            while exec(k, &["curl", "-sS", "-m", "5", target]).await.0 != Some(0) {
                assert!(Instant::now() < deadline, "curl never succeeded");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        let client = Client::new(&faulty.api.url()).expect("client");
        for n in 0..UNRELATED {
            let spec = NetworkChaosSpec {
                action: NetworkAction::Partition,
                direction: Some(Direction::Both),
                target: Some(PodSelector::default()),
                ..Default::default()
            };
            let (a, b) = (
                format!("10.250.{}.{}", n / 250, n % 250 + 1),
                format!("10.251.{}.{}", n / 250, n % 250 + 1),
            );
            fault(&client, &format!("unrelated-{n}"), spec, vec![record(".", a), record(".Target", b)]).await;
        }
        // Let both nodes see them, then warm up.
        tokio::time::sleep(Duration::from_secs(2)).await;
        for (k, target) in [(&mut k_plain, &plain.target), (&mut k_faulty, &faulty.target)] {
            for _ in 0..50 {
                exec(k, &["curl", "-sS", "-m", "5", target]).await;
            }
        }
        let (mut plain_t, mut faulty_t) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
        for i in 0..RUNS {
            for which in if i % 2 == 0 { [false, true] } else { [true, false] } {
                let (k, target, times) = if which {
                    (&mut k_faulty, &faulty.target, &mut faulty_t)
                } else {
                    (&mut k_plain, &plain.target, &mut plain_t)
                };
                let t = Instant::now();
                assert_eq!(exec(k, &["curl", "-sS", "-m", "5", target]).await.0, Some(0));
                times.push(t.elapsed());
            }
        }
        let (a, b) = (p50(plain_t), p50(faulty_t));
        println!("no faults:            exec curl p50 {a:?}");
        println!("{UNRELATED} unrelated faults: exec curl p50 {b:?}");
        println!("p50 difference: {:+.1}% (goal < 5%)", (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0);

        // A 100 ms delay from the client to the endpoints: curl's time_connect.
        let measure =
            |out: &str| out.trim().parse::<f64>().map(Duration::from_secs_f64).expect("time_connect");
        let cmd = |target: &str| -> Vec<String> {
            ["curl", "-sS", "-o", "/dev/null", "-w", "%{time_connect}", "-m", "5", target]
                .iter()
                .map(|s| s.to_string())
                .collect()
        };
        let mut base = Vec::new();
        for _ in 0..DELAY_RUNS {
            let c = cmd(&faulty.target);
            let (code, out) = exec(&mut k_faulty, &c.iter().map(String::as_str).collect::<Vec<_>>()).await;
            assert_eq!(code, Some(0));
            base.push(measure(&out));
        }
        let client_ip = pod_ips(&client, "").await;
        let orders = pod_ips(&client, "app=orders").await;
        let client_ip = client_ip.into_iter().find(|ip| !orders.contains(ip)).expect("the client's IP");
        let spec = NetworkChaosSpec {
            action: NetworkAction::Delay,
            direction: Some(Direction::To),
            target: Some(PodSelector::default()),
            delay: Some(DelaySpec { latency: "100ms".into(), ..Default::default() }),
            ..Default::default()
        };
        let mut records = vec![record(".", client_ip)];
        records.extend(orders.into_iter().map(|ip| record(".Target", ip)));
        fault(&client, "delay", spec, records).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut delayed = Vec::new();
        for _ in 0..DELAY_RUNS {
            let c = cmd(&faulty.target);
            let (code, out) = exec(&mut k_faulty, &c.iter().map(String::as_str).collect::<Vec<_>>()).await;
            assert_eq!(code, Some(0));
            delayed.push(measure(&out));
        }
        let (b0, d0) = (p50(base), p50(delayed));
        println!(
            "100ms delay: curl time_connect p50 {d0:?} vs {b0:?} without: +{:.1} ms (goal 100 ± 5 ms)",
            (d0.as_secs_f64() - b0.as_secs_f64()) * 1000.0
        );
    });
}
