//! The proxy's own cost of one sync at N Services × 4 endpoints, without the apiserver, the
//! gRPC hop or (in iptables mode) the kernel: the real [`Runner`] behind a [`Dataplane`] that
//! only notes when each Restore arrived. Per change (one endpoint IP of one Service's slice
//! replaced): the handler's call → the Restore's arrival, i.e. tracker update, change detection,
//! render and bookkeeping. In ipvs mode the Restore is also applied to netlab-kernel's IPVS
//! model, timed separately (the node-agent's apply).
//!
//! Run: `cargo bench -p netlab-proxy --bench sync -- [--mode iptables|ipvs] [--services N]
//! [--changes K]` (defaults: iptables, 10000, 200).

use std::{
    net::Ipv4Addr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        core::v1::{Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_client::reflector::Change;
use netlab_proto::node::v1::{Format, RestoreRequest, Table};
use netlab_proxy::{
    dataplane::Dataplane,
    healthz::ProxyHealth,
    iptables::{Iptables, Options},
    ipvs::Ipvs,
    runner::Settings,
    sync::{Handle, Mode, Runner},
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const ENDPOINTS: u32 = 4;

/// What arrived: when, how much text, how long the kernel model took.
struct Arrival {
    at: Instant,
    bytes: usize,
    apply: Duration,
}

struct Discard {
    tx: mpsc::UnboundedSender<Arrival>,
    ipvs: Mutex<netlab_kernel::ipvs::Ipvs>,
}

#[async_trait::async_trait]
impl Dataplane for Discard {
    async fn restore(&self, req: RestoreRequest) -> netlab_proxy::Result<u64> {
        let at = Instant::now();
        let mut apply = Duration::ZERO;
        if req.format == Format::Ipvs as i32 {
            let mut ipvs = self.ipvs.lock().unwrap();
            let t = Instant::now();
            ipvs.restore(&req.text).expect("the ipvs model takes the text");
            apply = t.elapsed();
        }
        let _ = self.tx.send(Arrival { at, bytes: req.text.len(), apply });
        Ok(0)
    }

    async fn save(&self, _: Table) -> netlab_proxy::Result<String> {
        Ok(String::new())
    }
}

fn service(i: u32) -> Service {
    Service {
        metadata: ObjectMeta {
            namespace: Some("bench".into()),
            name: Some(format!("svc-{i}")),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            cluster_ip: Some(Ipv4Addr::from(0x0a60_0000 + i).to_string()),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Service `i`'s slice; `generation` shifts the first endpoint's IP.
fn slice(i: u32, generation: u32) -> EndpointSlice {
    let ip = |k: u32| Ipv4Addr::from(0x0af4_0000 + i * 8 + k);
    let first =
        if generation == 0 { ip(0) } else { Ipv4Addr::from(0x0b00_0000 + i * 256 + generation % 256) };
    EndpointSlice {
        metadata: ObjectMeta {
            namespace: Some("bench".into()),
            name: Some(format!("svc-{i}-abcde")),
            labels: Some([("kubernetes.io/service-name".to_string(), format!("svc-{i}"))].into()),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: (0..ENDPOINTS)
            .map(|k| Endpoint {
                addresses: vec![if k == 0 { first } else { ip(k) }.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                node_name: Some(format!("node-{}", k % 3)),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(8080),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
    }
}

/// CPU time this thread has used (the runtime is single-threaded: the proxy's whole work), from
/// `/proc/thread-self/schedstat`; less disturbed by other processes than wall time.
fn cpu() -> Duration {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    Duration::from_nanos(s.split_whitespace().next().and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p / 100.0).round() as usize]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut mode, mut services, mut changes) = ("iptables".to_string(), 10_000u32, 200u32);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--mode" => mode = args.next().expect("--mode iptables|ipvs"),
            "--services" => services = args.next().and_then(|v| v.parse().ok()).expect("--services N"),
            "--changes" => changes = args.next().and_then(|v| v.parse().ok()).expect("--changes K"),
            "--bench" => {}
            o => panic!("unknown argument {o}"),
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let dataplane = Arc::new(Discard { tx, ipvs: Mutex::new(netlab_kernel::ipvs::Ipvs::new()) });
        let proxy_mode = match mode.as_str() {
            "iptables" => Mode::Iptables(Iptables::new(Options {
                cluster_cidr: Some("10.244.0.0/16".parse().unwrap()),
                masquerade_all: false,
                random_fully: true,
            })),
            "ipvs" => Mode::Ipvs(Ipvs::new("rr")),
            m => panic!("--mode iptables|ipvs, not {m}"),
        };
        let handle = Handle::new("node-1", ProxyHealth::new(Duration::from_secs(3600)));
        for i in 0..services {
            handle.service(Change::Applied(Arc::new(service(i))));
            handle.endpoint_slice(Change::Applied(Arc::new(slice(i, 0))));
        }
        handle.services_synced();
        handle.endpoint_slices_synced();
        let settings = Settings::new(Duration::ZERO, Duration::from_secs(3600));
        let shutdown = CancellationToken::new();
        let t = Instant::now();
        let task = tokio::spawn(Runner::new(handle.clone(), dataplane, proxy_mode, settings).run(shutdown.clone()));
        let first = rx.recv().await.expect("the full sync");
        println!(
            "{mode}: full sync of {services} Services: {:.1} ms, {} KB, model apply {:.1} ms",
            first.at.duration_since(t).as_secs_f64() * 1e3,
            first.bytes / 1024,
            first.apply.as_secs_f64() * 1e3
        );
        let (mut proxy, mut apply, mut bytes) = (Vec::new(), Vec::new(), Vec::new());
        let cpu_start = cpu();
        for c in 0..changes {
            let i = (c * 7919) % services;
            let t = Instant::now();
            handle.endpoint_slice(Change::Applied(Arc::new(slice(i, c + 1))));
            let a = rx.recv().await.expect("a partial sync");
            proxy.push(a.at.duration_since(t));
            apply.push(a.apply);
            bytes.push(a.bytes);
        }
        let cpu_per_change = (cpu() - cpu_start) / changes;
        let apply_total: Duration = apply.iter().sum();
        bytes.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{mode}: one endpoint changed, {changes} times: proxy p50 {:.2} ms p90 {:.2} ms max {:.2} ms, CPU {:.2} ms per change | model apply p50 {:.3} ms | text p50 {} KB",
            ms(pct(&mut proxy, 50.0)),
            ms(pct(&mut proxy, 90.0)),
            ms(pct(&mut proxy, 100.0)),
            ms(cpu_per_change.saturating_sub(apply_total / changes)),
            ms(pct(&mut apply, 50.0)),
            bytes[bytes.len() / 2] / 1024
        );
        shutdown.cancel();
        let _ = task.await;
    });
}
