//! A virtual TCP connection across two nodes: two node kernels in one process, each serving the
//! kernel API on its own loopback address, an echo app in a pod on node B, and a client on node
//! A that connects to the pod's IP (routed over the wire, `netlab.node.v1.Kernel/Dial`), sends
//! one HTTP request and reads the answer. Reports connect and connect+request/response latency.
//!
//! Run: `cargo bench -p netlab-node-agent --bench wire` (goal: p50 < 500 µs on loopback).

use std::{
    collections::BTreeMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{DaemonEndpoint, Node, NodeAddress, NodeDaemonEndpoints, NodeSpec, NodeStatus},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::reflector::Change;
use netlab_node_agent::{
    apps::{self, Identity},
    cluster::ClusterView,
    dataplane::{Dataplane, Source},
    exec::ExecContext,
    image::AppKind,
    server,
    sockets::SocketTable,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

fn node(name: &str, ip: &str, cidr: &str, port: u16) -> Node {
    Node {
        metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(NodeSpec { pod_cidr: Some(cidr.into()), ..Default::default() }),
        status: Some(NodeStatus {
            addresses: Some(vec![NodeAddress { type_: "InternalIP".into(), address: ip.into() }]),
            daemon_endpoints: Some(NodeDaemonEndpoints {
                kubelet_endpoint: Some(DaemonEndpoint { port: i32::from(port) }),
            }),
            ..Default::default()
        }),
    }
}

async fn kernel(
    name: &str,
    ip: &str,
    cidr: &str,
    sockets: SocketTable,
    shutdown: &CancellationToken,
) -> (Arc<Dataplane>, Arc<ClusterView>, u16) {
    let view = Arc::new(ClusterView::default());
    let ip: IpAddr = ip.parse().unwrap();
    let dp = Arc::new(Dataplane::new(
        name.into(),
        ip,
        vec!["10.96.0.0/12".parse().unwrap()],
        sockets,
        view.clone(),
    ));
    let exec = ExecContext {
        dp: dp.clone(),
        pods_dir: std::env::temp_dir(),
        kubernetes_service: "10.96.0.1".parse().unwrap(),
        ipamd: Default::default(),
    };
    let addr = server::serve(exec, SocketAddr::new(ip, 0), shutdown.child_token()).await.unwrap();
    let _ = cidr;
    (dp, view, addr.port())
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p) as usize]
}

#[tokio::main]
async fn main() {
    let shutdown = CancellationToken::new();
    let (sock_a, sock_b) = (SocketTable::new(), SocketTable::new());
    let (a, view_a, port_a) = kernel("node-a", "127.0.1.11", "10.244.1.0/24", sock_a, &shutdown).await;
    let (b, view_b, port_b) =
        kernel("node-b", "127.0.1.12", "10.244.2.0/24", sock_b.clone(), &shutdown).await;
    let nodes = [
        node("node-a", "127.0.1.11", "10.244.1.0/24", port_a),
        node("node-b", "127.0.1.12", "10.244.2.0/24", port_b),
    ];
    for view in [&view_a, &view_b] {
        for n in &nodes {
            view.node_changed(&Change::Applied(Arc::new(n.clone())));
        }
    }
    for (dp, view, own) in [(&a, &view_a, "10.244.1.0/24"), (&b, &view_b, "10.244.2.0/24")] {
        let routes = view.node_routes();
        dp.with_state(|st| {
            st.routes.set_own(own.parse().unwrap(), "cni0");
            st.routes.set_nodes(routes);
        });
    }
    let who = Identity {
        pod: "orders-0".into(),
        namespace: "demo".into(),
        ip: "10.244.2.5".parse().unwrap(),
        node: "node-b".into(),
        container: "nginx".into(),
    };
    apps::start(AppKind::Echo, who, Some(80), &sock_b, shutdown.child_token()).unwrap();
    let src = Source { pod: None, ip: "10.244.1.7".parse().unwrap() };
    let dst: SocketAddr = "10.244.2.5:80".parse().unwrap();
    let request = b"GET / HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n";
    let (mut connects, mut rtts) = (Vec::new(), Vec::new());
    let n = 3000;
    for i in 0..n + 200 {
        let start = Instant::now();
        let mut c = a.connect(&src, dst, Duration::from_secs(5)).await.expect("connect");
        let connected = start.elapsed();
        c.stream.write_all(request).await.unwrap();
        let mut buf = Vec::with_capacity(512);
        c.stream.read_to_end(&mut buf).await.unwrap();
        let done = start.elapsed();
        assert!(buf.starts_with(b"HTTP/1.1 200 OK"), "{}", String::from_utf8_lossy(&buf));
        if i >= 200 {
            connects.push(connected);
            rtts.push(done);
        }
    }
    println!("cross-node virtual TCP over the wire ({n} connections, after 200 warm-up):");
    println!(
        "  connect                      p50 {:>9?}  p99 {:>9?}",
        pct(&mut connects, 0.5),
        pct(&mut connects, 0.99)
    );
    println!(
        "  connect + request/response   p50 {:>9?}  p99 {:>9?}",
        pct(&mut rtts, 0.5),
        pct(&mut rtts, 0.99)
    );
    let _ = BTreeMap::<u8, u8>::new();
    let _ = b;
    shutdown.cancel();
}
