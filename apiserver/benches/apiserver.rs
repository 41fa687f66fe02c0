//! Apiserver benchmarks; results and how to rerun them are in BENCHMARKS.md.
//!
//! `cargo bench -p netlab-apiserver --bench apiserver -- [alloc] [create] [watch] [fanout]`
//! (all when none is named):
//! - alloc: ClusterIP allocation in a /12 at 1%, 50% and 99% use.
//! - create: 10,000 Services created through the gRPC API by 64 concurrent clients, durable.
//! - watch: 1,000 gRPC watchers while Services are written at 1,000/s; delivery latency from the
//!   write request to each watcher receiving the event. `WATCH_CONNECTIONS=N` spreads the
//!   watchers over N HTTP/2 connections (default 1).
//! - fanout: the same load on the registry in-process (no gRPC), to separate fan-out from transport.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use netlab_apiserver::{
    alloc::ip::IpAllocator,
    registry::{Registry, RegistryConfig, WatchSpec},
    server,
    store::RedbStore,
};
use netlab_proto::apiserver::v1::{
    CreateRequest, Resource, WatchRequest, api_server_client::ApiServerClient,
    api_server_server::ApiServerServer,
};
use tokio_util::sync::CancellationToken;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    if want("alloc") {
        alloc();
    }
    if want("store") {
        store();
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    if want("create") {
        rt.block_on(create());
    }
    if want("watch") {
        rt.block_on(watch(true));
    }
    if want("fanout") {
        rt.block_on(watch(false));
    }
}

fn alloc() {
    const OPS: u32 = 200_000;
    for pct in [1u64, 50, 99] {
        let mut a = IpAllocator::new("10.96.0.0/12".parse().expect("cidr"));
        let target = a.size() * pct / 100;
        while a.used() < target {
            a.allocate_next().expect("fill");
        }
        // Allocate then release, so use stays at `pct` for every measured allocation.
        let mut alloc_time = Duration::ZERO;
        for _ in 0..OPS {
            let t = Instant::now();
            let ip = a.allocate_next().expect("allocate");
            alloc_time += t.elapsed();
            a.release(ip.into());
        }
        println!(
            "alloc: /12 at {pct:>2}% used ({} of {}): {:.0} ns per allocate_next (mean of {OPS})",
            a.used(),
            a.size(),
            alloc_time.as_nanos() as f64 / f64::from(OPS)
        );
    }
}

fn store() {
    use netlab_apiserver::store::{Batch, Op, Store as _};
    for batch_size in [1usize, 64] {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = RedbStore::open(dir.path()).expect("store");
        let value = service("x");
        let mut lat = Vec::new();
        let mut rev = 0;
        for b in 0..(10_000 / batch_size) {
            let ops = (0..batch_size)
                .map(|i| {
                    Op::Put(
                        format!("/registry/services/specs/default/svc-{}", b * batch_size + i),
                        value.clone(),
                    )
                })
                .collect();
            rev += batch_size as u64;
            let t = Instant::now();
            store.commit(&Batch { revision: rev, ops }).expect("commit");
            lat.push(t.elapsed());
        }
        lat.sort();
        println!(
            "store: redb commit of {batch_size} puts: p50 {:.2} ms, p99 {:.2} ms",
            percentile(&lat, 0.5).as_secs_f64() * 1e3,
            percentile(&lat, 0.99).as_secs_f64() * 1e3
        );
    }
}

async fn start() -> (SocketAddr, Registry, tempfile::TempDir, CancellationToken) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Arc::new(RedbStore::open(dir.path()).expect("store"));
    let shutdown = CancellationToken::new();
    let cfg = RegistryConfig {
        service_cidr: "10.96.0.0/12".parse().expect("cidr"),
        node_ports: (30000, 32767),
        history: 100_000,
        watch_buffer: 16_384,
        validation: Default::default(),
    };
    let (registry, _writer) = Registry::open(store, cfg, shutdown.clone()).await.expect("registry");
    netlab_apiserver::bootstrap::run(&registry, 6443).await.expect("bootstrap");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let svc = ApiServerServer::new(server::Service::new(
        registry.clone(),
        test_issuer(dir.path()),
        shutdown.clone(),
    ));
    let token = shutdown.clone();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                token.cancelled_owned(),
            )
            .await
    });
    (addr, registry, dir, shutdown)
}

fn service(name: &str) -> bytes::Bytes {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]},
    }))
    .expect("json")
    .into()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn create() {
    const N: usize = 10_000;
    const CLIENTS: usize = 64;
    let (addr, _registry, _dir, shutdown) = start().await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CLIENTS {
        let mut client = ApiServerClient::new(channel.clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= N {
                    return lat;
                }
                let req = CreateRequest {
                    resource: Resource::Services as i32,
                    json: service(&format!("svc-{i}")),
                    namespace: "default".into(),
                };
                let t = Instant::now();
                client.create(req).await.expect("create");
                lat.push(t.elapsed());
            }
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    lat.sort();
    println!(
        "create: {N} Services via gRPC, {CLIENTS} concurrent clients, durable (fsync per batch): {:.0}/s, p50 {:.2} ms, p99 {:.2} ms",
        N as f64 / elapsed.as_secs_f64(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
    );
    shutdown.cancel();
}

async fn watch(grpc: bool) {
    const WATCHERS: usize = 1_000;
    const RATE: u64 = 1_000;
    const SECONDS: u64 = 10;
    let n = (RATE * SECONDS) as usize;
    let (addr, registry, _dir, shutdown) = start().await;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let epoch = Instant::now();
    // Watchers share `WATCH_CONNECTIONS` HTTP/2 connections (default 1); real watchers (kubelets,
    // proxies) each have their own.
    let connections: usize =
        std::env::var("WATCH_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(1).clamp(1, WATCHERS);
    let mut channels = Vec::with_capacity(connections);
    for _ in 0..connections {
        channels.push(
            tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .expect("endpoint")
                .tcp_nodelay(true)
                .connect()
                .await
                .expect("connect"),
        );
    }
    let channel = channels[0].clone();

    let mut watchers = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(WATCHERS);
    for w in 0..WATCHERS {
        let sent = sent.clone();
        let ready = ready_tx.clone();
        let channel = channels[w % connections].clone();
        let registry = registry.clone();
        watchers.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n);
            let mut seen = 0;
            let record = |name: &str, lat: &mut Vec<Duration>, seen: &mut usize| {
                if let Some(i) = name.strip_prefix("w-").and_then(|s| s.parse::<usize>().ok()) {
                    let at = sent[i].load(Ordering::Acquire);
                    lat.push(Duration::from_nanos(epoch.elapsed().as_nanos() as u64 - at));
                    *seen += 1;
                }
            };
            if grpc {
                let mut client = ApiServerClient::new(channel);
                let req = WatchRequest {
                    resource: Resource::Services as i32,
                    namespace: "default".into(),
                    resource_version: Some(0),
                    ..Default::default()
                };
                let mut stream = client.watch(req).await.expect("watch").into_inner();
                let _ = ready.send(()).await;
                while seen < n {
                    let Some(batch) = stream.message().await.expect("stream") else { break };
                    for ev in batch.events {
                        record(&ev.object.map(|o| o.name).unwrap_or_default(), &mut lat, &mut seen);
                    }
                }
            } else {
                let spec = WatchSpec {
                    resource: Resource::Services,
                    namespace: "default".into(),
                    labels: Default::default(),
                    fields: Default::default(),
                    from: Some(0),
                };
                let mut rx = registry.watch(spec, CancellationToken::new()).expect("watch");
                let _ = ready.send(()).await;
                while seen < n {
                    let Some(batch) = rx.recv().await else { break };
                    for item in batch.expect("watch error") {
                        record(&item.object.name, &mut lat, &mut seen);
                    }
                }
            }
            lat
        }));
    }
    for _ in 0..WATCHERS {
        ready_rx.recv().await;
    }
    // Writers: one Service create every millisecond, paced against the clock and not waiting for
    // the previous write, as independent clients would.
    let start = Instant::now();
    let mut writes = Vec::with_capacity(n);
    for i in 0..n {
        let due = start + Duration::from_micros(i as u64 * 1_000_000 / RATE);
        tokio::time::sleep_until(due.into()).await;
        sent[i].store(epoch.elapsed().as_nanos() as u64, Ordering::Release);
        let req = CreateRequest {
            resource: Resource::Services as i32,
            json: service(&format!("w-{i}")),
            namespace: "default".into(),
        };
        let mut client = ApiServerClient::new(channel.clone());
        writes.push(tokio::spawn(async move { client.create(req).await.expect("create") }));
    }
    for w in writes {
        w.await.expect("write");
    }
    let wrote = start.elapsed();
    let mut lat = Vec::new();
    for w in watchers {
        lat.extend(w.await.expect("watcher"));
    }
    lat.sort();
    println!(
        "{}: {WATCHERS} watchers on {connections} connection(s), {n} Services written in {:.1} s ({:.0}/s): {} deliveries, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        if grpc { "watch (gRPC)" } else { "fanout (in-process)" },
        wrote.as_secs_f64(),
        n as f64 / wrote.as_secs_f64(),
        lat.len(),
        percentile(&lat, 0.50).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3,
        lat.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    shutdown.cancel();
}

/// A token issuer with its key in `dir` (the gRPC service needs one; these calls use none).
fn test_issuer(dir: &std::path::Path) -> Arc<netlab_apiserver::token::TokenIssuer> {
    let cfg = netlab_apiserver::token::IssuerConfig::defaults_in(dir, "127.0.0.1:6443");
    Arc::new(netlab_apiserver::token::TokenIssuer::new(&cfg).expect("issuer"))
}
