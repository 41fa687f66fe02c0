//! Tracing overhead on the lab's hottest user path: `netlab exec client -- curl` of a ClusterIP
//! whose endpoint is on the other node (exec → toolbox → kernel DNAT → wire → serving pod), with
//! every process exporting spans over OTLP to a collector, versus no export at all. Exec is
//! called over gRPC as `netlab exec` calls it, with a sampled `traceparent`, so each request is
//! a full trace when tracing is on.
//!
//! Run: `cargo build --release --bins && cargo bench -p netlab-e2e --bench tracing`.

use std::time::{Duration, Instant};

use netlab_e2e::{
    Apiserver, free_port, netlab,
    otlp::Collector,
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

/// Starts the lab (exporting to `otlp` if given), returns the p50/p99 of exec curl.
fn measure(otlp: Option<&str>) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let with: &[&str] = match otlp {
        Some(e) => &["--otlp-endpoint", e],
        None => &[],
    };
    let api = Apiserver::start(&dir.path().join("api"), with);
    let url = api.url();
    let cloud = Cloud::start(with);
    let registry = cloud.registry_url();
    let mut procs = vec![cloud.process];
    procs.push(parts::controller_manager(&url, with));
    procs.push(parts::scheduler(&url, with));
    let port = free_port();
    for (name, ip) in [("node-1", "127.0.1.1"), ("node-2", "127.0.1.2")] {
        let node = Node { name, ip, port };
        // Real time, and the proxy's defaults (iptables mode, a sync at most every second).
        procs.push(node.agent_scaled(&url, dir.path(), &registry, "1", with));
        procs.push(parts::proxy(&url, name, &node.kernel(), "iptables", "1s", with));
    }
    netlab(&url, &["apply", "-f", "-"], Some(APP)).ok();
    let cip = netlab(&url, &["get", "svc", "orders", "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"], None).ok().stdout;
    let target = format!("http://{}/", cip.trim());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let result = rt.block_on(async move {
        let mut k = KernelClient::connect(format!("http://127.0.1.1:{port}")).await.expect("node-1 kernel API");
        let exec = async |k: &mut KernelClient<tonic::transport::Channel>| -> Option<i32> {
            let trace = format!("00-{:032x}-{:016x}-01", rand_u128(), rand_u128() as u64);
            let mut req = tonic::Request::new(ExecRequest {
                namespace: "demo".into(),
                pod: "client".into(),
                container: String::new(),
                command: ["curl", "-sS", "-m", "5", &target].iter().map(|s| s.to_string()).collect(),
            });
            req.metadata_mut().insert("traceparent", trace.parse().expect("ascii"));
            let mut stream = k.exec(req).await.ok()?.into_inner();
            while let Ok(Some(m)) = stream.message().await {
                if let Some(Kind::ExitCode(c)) = m.kind {
                    return Some(c);
                }
            }
            None
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while exec(&mut k).await != Some(0) {
            assert!(Instant::now() < deadline, "curl never succeeded");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for _ in 0..50 {
            exec(&mut k).await;
        }
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            assert_eq!(exec(&mut k).await, Some(0));
            times.push(t.elapsed());
        }
        times.sort();
        (times[RUNS / 2], times[RUNS * 99 / 100])
    });
    drop(procs);
    result
}

fn rand_u128() -> u128 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (u128::from(h.finish()) << 64) | u128::from(std::collections::hash_map::RandomState::new().build_hasher().finish())
}

fn main() {
    let collector = Collector::start();
    let off = measure(None);
    println!("tracing off: exec curl p50 {:?}  p99 {:?}", off.0, off.1);
    let on = measure(Some(&collector.otlp_endpoint()));
    println!("tracing on:  exec curl p50 {:?}  p99 {:?}  ({} spans received)", on.0, on.1, collector.spans().len());
    let diff = (on.0.as_secs_f64() / off.0.as_secs_f64() - 1.0) * 100.0;
    println!("p50 difference: {diff:+.1}% (goal < 10%)");
}
