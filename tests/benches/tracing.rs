//! Tracing overhead on the lab's hottest user path: `netlab exec client -- curl` of a ClusterIP
//! whose endpoint is on the other node (exec → toolbox → kernel DNAT → wire → serving pod), with
//! every process exporting spans over OTLP to a collector, versus no export at all. Exec is
//! called over gRPC as `netlab exec` calls it, with a sampled `traceparent`, so each request is
//! a full trace when tracing is on.
//!
//! Both labs run at once (nodes on 127.0.1.x and 127.0.2.x) and the samples alternate.
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

/// One lab (exporting to `otlp` if given) with its nodes on `ips`, up with the app applied.
struct Lab {
    // Dropped (killed) before the tempdir goes.
    _procs: Vec<netlab_e2e::Component>,
    _api: Apiserver,
    /// node-1's kernel API.
    kernel: String,
    /// `http://<orders ClusterIP>/`.
    target: String,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(otlp: Option<&str>, ips: [&str; 2]) -> Self {
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
        for (name, ip) in [("node-1", ips[0]), ("node-2", ips[1])] {
            let node = Node { name, ip, port };
            // Real time, and the proxy's defaults (iptables mode, a sync at most every second).
            procs.push(node.agent_scaled(&url, dir.path(), &registry, "1", with));
            procs.push(parts::proxy(&url, name, &node.kernel(), "iptables", "1s", with));
        }
        netlab(&url, &["apply", "-f", "-"], Some(APP)).ok();
        let cip =
            netlab(&url, &["get", "svc", "orders", "-n", "demo", "-o", "jsonpath={.spec.clusterIP}"], None)
                .ok()
                .stdout;
        Self {
            _procs: procs,
            _api: api,
            kernel: format!("http://{}:{port}", ips[0]),
            target: format!("http://{}/", cip.trim()),
            _dir: dir,
        }
    }
}

/// One `exec client -- curl` with a sampled traceparent; its exit code.
async fn exec(k: &mut KernelClient<tonic::transport::Channel>, target: &str) -> Option<i32> {
    let trace = format!("00-{:032x}-{:016x}-01", rand_u128(), rand_u128() as u64);
    let mut req = tonic::Request::new(ExecRequest {
        namespace: "demo".into(),
        pod: "client".into(),
        container: String::new(),
        command: ["curl", "-sS", "-m", "5", target].iter().map(|s| s.to_string()).collect(),
    });
    req.metadata_mut().insert("traceparent", trace.parse().expect("ascii"));
    let mut stream = k.exec(req).await.ok()?.into_inner();
    while let Ok(Some(m)) = stream.message().await {
        if let Some(Kind::ExitCode(c)) = m.kind {
            return Some(c);
        }
    }
    None
}

fn p50_p99(mut times: Vec<Duration>) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() * 99 / 100])
}
fn rand_u128() -> u128 {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Instant::now().elapsed().as_nanos());
    (u128::from(h.finish()) << 64)
        | u128::from(std::collections::hash_map::RandomState::new().build_hasher().finish())
}

fn main() {
    // Both labs run side by side and the samples alternate (off, on, on, off, ...), so whatever
    // the machine does meanwhile (other work, CPU idle states, the exporters' batches) falls on
    // both alike; measuring one lab after the other gave +10 % to +74 % on the same code.
    let collector = Collector::start();
    let off = Lab::start(None, ["127.0.1.1", "127.0.1.2"]);
    let on = Lab::start(Some(&collector.otlp_endpoint()), ["127.0.2.1", "127.0.2.2"]);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let (off_t, on_t) = rt.block_on(async {
        let mut k_off = KernelClient::connect(off.kernel.clone()).await.expect("off lab's node-1 kernel API");
        let mut k_on = KernelClient::connect(on.kernel.clone()).await.expect("on lab's node-1 kernel API");
        for (k, target) in [(&mut k_off, &off.target), (&mut k_on, &on.target)] {
            let deadline = Instant::now() + Duration::from_secs(60);
            while exec(k, target).await != Some(0) {
                assert!(Instant::now() < deadline, "curl never succeeded");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            for _ in 0..50 {
                exec(k, target).await;
            }
        }
        let (mut off_t, mut on_t) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
        for i in 0..RUNS {
            for which in if i % 2 == 0 { [false, true] } else { [true, false] } {
                let (k, target, times) = if which {
                    (&mut k_on, &on.target, &mut on_t)
                } else {
                    (&mut k_off, &off.target, &mut off_t)
                };
                let t = Instant::now();
                assert_eq!(exec(k, target).await, Some(0));
                times.push(t.elapsed());
            }
        }
        (p50_p99(off_t), p50_p99(on_t))
    });
    println!("tracing off: exec curl p50 {:?}  p99 {:?}", off_t.0, off_t.1);
    println!(
        "tracing on:  exec curl p50 {:?}  p99 {:?}  ({} spans received)",
        on_t.0,
        on_t.1,
        collector.spans().len()
    );
    let diff = (on_t.0.as_secs_f64() / off_t.0.as_secs_f64() - 1.0) * 100.0;
    println!("p50 difference: {diff:+.1}% (goal < 10%)");
}
