//! The kube-proxy benchmark: time from a Service change to rules active in the node's kernel, at
//! 1,000 and 10,000 Services of 4 endpoints each (issue 5; results in BENCHMARKS.md).
//!
//! Run: `cargo build --release -p netlab-apiserver -p netlab-proxy && cargo bench -p netlab-e2e
//! --bench proxy -- --mode iptables --min-sync-period 1s` (`--services N` runs one size instead of
//! 1,000 then 10,000; `--changes K` measures K changes of each kind, default 100; `--gap MS`
//! pauses MS milliseconds after each change is active, default none; `--tonic-default-limits`
//! serves the kernel with tonic's default 4 MiB message limit, as the node-agent does, instead of
//! none).
//!
//! What runs: the real release `netlab-apiserver` and `netlab-proxy` processes. The node's kernel
//! is this process: a `netlab.node.v1.Kernel` gRPC server that applies every Restore to the real
//! kernel model through the node-agent's own restore (`netlab_kernel::netns::Netns`), so only the proxy path is measured, not pods, the scheduler or the
//! EndpointSlice controller: the bench writes selector-less Services and their EndpointSlices
//! itself. After each Restore the kernel asks the model, for every awaited Service, whether a new
//! TCP connection from a pod to its ClusterIP:port now reaches exactly the expected endpoints:
//! in iptables mode by walking the tables once per endpoint with the `statistic` draws forced so
//! that each rule of the Service chain is taken in turn; in ipvs mode by scheduling once per real
//! server (round robin) and releasing the connections again. The moment that Restore was applied
//! is when the change became active.
//!
//! Per size N: create N Services + slices, start the proxy (its first sync is the full sync at
//! N), wait until every Service is active; then measure K new Services (Service then slice
//! created; latency from the slice create's return, and from the Service create's return) and K
//! endpoint changes (one endpoint IP of an existing Service's slice replaced; latency from the
//! update's return). Each latency is split into the apiserver's watch delivery (as the bench's own
//! watch sees it), the proxy (tracker, render, encoding, the gRPC hop to the kernel) and the
//! kernel model's apply.

use std::{
    collections::{BTreeSet, HashMap},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4},
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        core::v1::{Namespace, Service, ServicePort, ServiceSpec},
        discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice},
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use netlab_client::{Client, ListParams, Object};
use netlab_e2e::{Apiserver, parts};
use netlab_kernel::{
    Protocol, api,
    iptables::{Origin, Packet, WalkEnv},
    netns::{self, Netns, Restore},
};
use netlab_proto::{
    apiserver::v1::EventType,
    node::v1::{
        self as pb,
        kernel_client::KernelClient,
        kernel_server::{Kernel, KernelServer},
    },
};
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
};
use tonic::{Request, Response, Status, codegen::BoxStream};

const NS: &str = "bench";
/// Requests in flight while creating the initial Services and slices.
const CONCURRENCY: usize = 64;
/// How often progress is printed.
const PROGRESS: Duration = Duration::from_secs(2);
/// Longest wait for one change to become active.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Give up on the initial N Services when none became active for this long.
const STALL: Duration = Duration::from_secs(60);
/// The Service port and the endpoints' port.
const PORT: u16 = 80;
const TARGET_PORT: u16 = 8080;
const ENDPOINTS: usize = 4;
/// The client pod every check connects from (inside the cluster CIDR 10.244.0.0/16).
const CLIENT: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, 244, 9, 9), 40000));
/// Replacement endpoint IPs start here (10.244.254.0), above every initial endpoint.
const FRESH_BASE: u32 = 254 * 256;

#[derive(Debug, Clone)]
struct Args {
    sizes: Vec<usize>,
    mode: String,
    min_sync: String,
    changes: usize,
    gap: Duration,
    /// Serve the kernel with tonic's default 4 MiB decode limit, as node-agent/src/server.rs does,
    /// instead of no limit.
    default_limits: bool,
}

fn args() -> Args {
    let mut a = Args {
        sizes: vec![1000, 10_000],
        mode: "iptables".into(),
        min_sync: "1s".into(),
        changes: 100,
        gap: Duration::ZERO,
        default_limits: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().unwrap_or_else(|| panic!("{name} needs a value"));
        match arg.as_str() {
            "--services" => a.sizes = vec![value("--services").parse().expect("--services N")],
            "--mode" => a.mode = value("--mode"),
            "--min-sync-period" => a.min_sync = value("--min-sync-period"),
            "--changes" => a.changes = value("--changes").parse().expect("--changes K"),
            "--gap" => {
                a.gap = Duration::from_millis(
                    value("--gap").trim_end_matches("ms").parse().expect("--gap MILLISECONDS[ms]"),
                )
            }
            "--tonic-default-limits" => a.default_limits = true,
            _ => {} // cargo passes --bench
        }
    }
    assert!(a.mode == "iptables" || a.mode == "ipvs", "--mode iptables|ipvs");
    assert!(a.changes <= 256, "--changes at most 256 (fresh endpoint IPs)");
    for n in &a.sizes {
        assert!(
            (n + a.changes) * ENDPOINTS < FRESH_BASE as usize,
            "--services {n}: too many endpoints for 10.244.0.0/16"
        );
    }
    a
}

fn main() {
    let a = args();
    let dir: PathBuf = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(|d| d.parent()).map(PathBuf::from))
        .expect("target dir");
    for bin in ["netlab-apiserver", "netlab-proxy"] {
        if !dir.join(bin).exists() {
            eprintln!(
                "{} is missing: run `cargo build --release -p netlab-apiserver -p netlab-proxy` first",
                dir.join(bin).display()
            );
            std::process::exit(1);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let mut rows = Vec::new();
    for &n in &a.sizes {
        let data = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(data.path(), &[]);
        rows.extend(rt.block_on(run(&a, n, api.url())));
        drop(api);
    }
    println!(
        "\nmarkdown rows (mode | min sync | Services | what | p50 | p99 | max | where the time goes, p50 | restore text | kernel apply):"
    );
    for r in rows {
        println!("{r}");
    }
}

// === the kernel ===

/// One applied Restore.
#[derive(Debug, Clone, Copy)]
struct Applied {
    /// When the handler got the decoded request.
    received: Instant,
    /// When the model had applied it.
    at: Instant,
    bytes: usize,
    /// Time in the model (ensure + restore).
    apply: Duration,
    /// A full sync (iptables: the ensure rules came along, as only full syncs send them; ipvs:
    /// the text starts with `-C`, clearing the table before the whole of it).
    full: bool,
}

/// What a connection to `vip` must reach for a change to count as active.
struct Await {
    vip: SocketAddr,
    want: BTreeSet<SocketAddr>,
}

struct KernelState {
    /// The node's kernel model, as the node-agent keeps it.
    netns: Netns,
    log: Vec<Applied>,
    awaits: HashMap<u64, Await>,
    next_id: u64,
}

/// The in-bench node kernel.
#[derive(Clone)]
struct BenchKernel {
    state: Arc<Mutex<KernelState>>,
    hits: mpsc::UnboundedSender<(u64, Applied)>,
}

impl BenchKernel {
    fn lock(&self) -> MutexGuard<'_, KernelState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a check; its hit arrives on the hits channel with the Restore that satisfied it.
    fn expect(&self, vip: SocketAddr, want: BTreeSet<SocketAddr>) -> u64 {
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.awaits.insert(id, Await { vip, want });
        id
    }

    fn log(&self) -> Vec<Applied> {
        self.lock().log.clone()
    }
}

/// The walk's environment with the `statistic` draws forced: the first `fails` draws miss, the
/// rest hit, so walk number k takes the k-th endpoint rule of a Service chain.
struct Forced {
    fails: usize,
    calls: usize,
}

impl WalkEnv for Forced {
    fn random(&mut self) -> f64 {
        self.calls += 1;
        if self.calls <= self.fails { 0.999_999 } else { 0.0 }
    }
    fn now(&self) -> u64 {
        0
    }
    fn is_local(&self, _: std::net::IpAddr) -> bool {
        false
    }
    fn recent_check(&mut self, _: &str, _: std::net::IpAddr, _: Option<u64>) -> bool {
        false
    }
    fn recent_set(&mut self, _: &str, _: std::net::IpAddr) {}
}

impl KernelState {
    /// Whether a new connection to `a.vip` reaches exactly `a.want`.
    fn active(&mut self, iptables: bool, a: &Await) -> bool {
        let mut got = BTreeSet::new();
        if iptables {
            for k in 0..a.want.len() {
                let packet = Packet { protocol: Protocol::Tcp, src: CLIENT, dst: a.vip };
                let v =
                    self.netns.tables.evaluate(packet, Origin::Forwarded, &mut Forced { fails: k, calls: 0 });
                if !v.dnat {
                    return false;
                }
                got.insert(v.dst);
            }
        } else {
            let mut taken = Vec::new();
            for _ in 0..a.want.len() {
                match self.netns.ipvs.schedule(Protocol::Tcp, CLIENT, a.vip, Duration::ZERO) {
                    Some(sched) => match sched.real {
                        Some(real) => {
                            got.insert(real);
                            taken.push(real);
                        }
                        None => break,
                    },
                    None => break,
                }
            }
            for real in taken {
                self.netns.ipvs.release(Protocol::Tcp, a.vip, real);
            }
        }
        got == a.want
    }
}

#[tonic::async_trait]
impl Kernel for BenchKernel {
    async fn restore(
        &self,
        req: Request<pb::RestoreRequest>,
    ) -> Result<Response<pb::RestoreResponse>, Status> {
        let received = Instant::now();
        let req = req.into_inner();
        let format = api::format(req.format);
        let mut guard = self.lock();
        let st = &mut *guard;
        let t = Instant::now();
        // The node-agent's restore.
        let Some(kind) = format else {
            return Err(Status::invalid_argument(api::FORMAT_REQUIRED));
        };
        let restore = Restore { format: kind, text: &req.text, noflush: req.noflush, ensure: &req.ensure };
        let rules = st.netns.restore(restore);
        let at = Instant::now();
        let rules = rules.map_err(|e| {
            eprintln!("restore refused: {e}");
            Status::invalid_argument(e.to_string())
        })?;
        let applied = Applied {
            received,
            at,
            bytes: req.text.len(),
            apply: at - t,
            // A full sync: iptables mode sends the ensure lines; ipvs mode clears the table first.
            full: if kind == netns::Format::Ipvs {
                req.text.starts_with("-C\n")
            } else {
                !req.ensure.is_empty()
            },
        };
        st.log.push(applied);
        let iptables = kind == netns::Format::Iptables;
        let ids: Vec<u64> = st.awaits.keys().copied().collect();
        for id in ids {
            let Some(a) = st.awaits.remove(&id) else { continue };
            if st.active(iptables, &a) {
                let _ = self.hits.send((id, applied));
            } else {
                st.awaits.insert(id, a);
            }
        }
        Ok(Response::new(pb::RestoreResponse { rules }))
    }

    async fn save(&self, req: Request<pb::SaveRequest>) -> Result<Response<pb::SaveResponse>, Status> {
        let st = self.lock();
        let table = match api::table(req.into_inner().table) {
            Some(table @ (netns::Table::IptablesSave | netns::Table::Ipvsadm)) => table,
            _ => return Err(Status::unimplemented("the bench kernel saves IPTABLES_SAVE and IPVSADM only")),
        };
        let text = st.netns.save(table, Duration::ZERO);
        Ok(Response::new(pb::SaveResponse { text }))
    }

    type DialStream = BoxStream<pb::Segment>;

    async fn dial(
        &self,
        _: Request<tonic::Streaming<pb::Segment>>,
    ) -> Result<Response<Self::DialStream>, Status> {
        Err(Status::unimplemented("the bench kernel has no wire"))
    }

    type ExecStream = BoxStream<pb::ExecOutput>;

    async fn exec(&self, _: Request<pb::ExecRequest>) -> Result<Response<Self::ExecStream>, Status> {
        Err(Status::unimplemented("the bench kernel has no pods"))
    }
}

/// Serves the kernel on a free loopback port; returns it, its URL and the hits channel.
async fn serve_kernel(
    default_limits: bool,
) -> (BenchKernel, String, mpsc::UnboundedReceiver<(u64, Applied)>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let kernel = BenchKernel {
        state: Arc::new(Mutex::new(KernelState {
            netns: Netns::new(Ipv4Addr::new(172, 18, 0, 2).into(), 1),
            log: Vec::new(),
            awaits: HashMap::new(),
            next_id: 0,
        })),
        hits: tx,
    };
    let incoming = tonic::transport::server::TcpIncoming::bind("127.0.0.1:0".parse().expect("addr"))
        .expect("bind the kernel")
        .with_nodelay(Some(true));
    let addr = incoming.local_addr().expect("kernel address");
    let mut svc = KernelServer::new(kernel.clone());
    if !default_limits {
        svc = svc.max_decoding_message_size(usize::MAX).max_encoding_message_size(usize::MAX);
    }
    tokio::spawn(async move {
        if let Err(e) =
            tonic::transport::Server::builder().add_service(svc).serve_with_incoming(incoming).await
        {
            eprintln!("the bench kernel stopped: {e}");
        }
    });
    (kernel, format!("http://{addr}"), rx)
}

// === the bench's own watch: when the apiserver delivers a slice change ===

/// (slice name, resourceVersion) → when the bench's watch received it.
type Seen = Arc<Mutex<HashMap<(String, String), Instant>>>;

fn watch_slices(client: Client) -> Seen {
    let seen: Seen = Arc::default();
    let out = seen.clone();
    tokio::spawn(async move {
        let params = ListParams { namespace: NS.into(), ..Default::default() };
        loop {
            let Ok((_, rv)) = client.list::<EndpointSlice>(&params).await else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let Ok(mut stream) = client.watch::<EndpointSlice>(&params, Some(rv)).await else { continue };
            while let Ok(Some(batch)) = stream.message().await {
                let now = Instant::now();
                for ev in batch.events {
                    if ev.r#type == EventType::Bookmark as i32 {
                        continue;
                    }
                    let Some(obj) = ev.object else { continue };
                    let Ok(s) = serde_json::from_slice::<EndpointSlice>(&obj.json) else { continue };
                    let key = (
                        s.metadata.name.unwrap_or_default(),
                        s.metadata.resource_version.unwrap_or_default(),
                    );
                    out.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_insert(now);
                }
            }
        }
    });
    seen
}

// === the run ===

/// One measured change.
#[derive(Debug, Clone, Copy)]
struct Sample {
    /// From the write's return (slice create / slice update) to active.
    total: Duration,
    /// From the Service create's return to active (new Services only).
    from_service: Option<Duration>,
    /// Write's return → the bench's watch had the event.
    watch: Option<Duration>,
    /// The bench's watch had it → the Restore arrived at the kernel (the proxy's part).
    proxy: Option<Duration>,
    /// The write's return → the Restore arrived.
    to_restore: Duration,
    applied: Applied,
}

async fn run(a: &Args, n: usize, url: String) -> Vec<String> {
    println!(
        "\n=== {} mode, min sync period {}, {n} Services × {ENDPOINTS} endpoints ===",
        a.mode, a.min_sync
    );
    let client = Client::new(&url).expect("client");
    client.create(&Namespace { metadata: meta(NS), ..Default::default() }).await.expect("namespace");

    // N Services, then their slices.
    let t = Instant::now();
    let services = parallel((0..n).map(service).collect(), &client).await;
    let vips: Vec<SocketAddr> =
        services.iter().map(|s| vip_of(s.as_ref().expect("service created"))).collect();
    let slices = parallel((0..n).map(|i| slice(i, &initial_ips(i))).collect(), &client).await;
    let mut slices: Vec<EndpointSlice> = slices.into_iter().map(|s| s.expect("slice created")).collect();
    println!("created {n} Services and {n} EndpointSlices in {:.1?}", t.elapsed());

    let (kernel, kernel_url, mut hits) = serve_kernel(a.default_limits).await;
    let seen = watch_slices(client.clone());
    let mut pending: HashMap<u64, usize> = HashMap::new();
    for (i, vip) in vips.iter().enumerate() {
        pending.insert(kernel.expect(*vip, want(&initial_ips(i))), i);
    }

    // The proxy's first (full) sync.
    let started = Instant::now();
    let _proxy = parts::proxy(&url, "node-1", &kernel_url, &a.mode, &a.min_sync, &[]);
    let (mut last_print, mut last_hit) = (Instant::now(), Instant::now());
    let total = pending.len();
    while !pending.is_empty() {
        match tokio::time::timeout(Duration::from_millis(200), hits.recv()).await {
            Ok(Some((id, _))) => {
                pending.remove(&id);
                last_hit = Instant::now();
            }
            Ok(None) => panic!("kernel gone"),
            Err(_) => {}
        }
        if last_print.elapsed() >= PROGRESS {
            let log = kernel.log();
            println!(
                "  {:>6.1}s  active {:>6}/{total}  restores {}",
                started.elapsed().as_secs_f64(),
                total - pending.len(),
                log.len()
            );
            last_print = Instant::now();
        }
        if last_hit.elapsed() > STALL {
            let why = format!(
                "{}/{total} Services active, nothing new for {STALL:?} ({} restores applied)",
                total - pending.len(),
                kernel.log().len()
            );
            println!("STALLED: {why}");
            return vec![format!(
                "| {} | {} | {} | first full sync | **not active**: {why} | | | | | |",
                a.mode,
                a.min_sync,
                thousands(n)
            )];
        }
    }
    let all_active = started.elapsed();
    let log = kernel.log();
    let first = log.first().copied().expect("a restore");
    println!(
        "RESULT full sync at {n}: proxy start → first Restore {:.0} ms ({} KB, kernel apply {:.1} ms); all {n} active after {:.0} ms ({} restores)",
        ms(first.received - started),
        first.bytes / 1024,
        ms(first.apply),
        ms(all_active),
        log.len()
    );
    let log_len_before = log.len();
    let mut rows = vec![format!(
        "| {} | {} | {} | first full sync after the proxy starts (lists, render, restore) | {:.0} ms to all active | | | proxy start → Restore arrived {:.0} ms | {:.1} MB | {:.0} ms |",
        a.mode,
        a.min_sync,
        thousands(n),
        ms(all_active),
        ms(first.received - started),
        first.bytes as f64 / 1e6,
        ms(first.apply)
    )];

    // New Services.
    let mut new_samples = Vec::new();
    for j in 0..a.changes {
        let i = n + j;
        let t_svc_call = Instant::now();
        let svc = client.create(&service(i)).await.expect("create Service");
        let t_svc = Instant::now();
        let ips = initial_ips(i);
        let id = kernel.expect(vip_of(&svc), want(&ips));
        let _ = t_svc_call;
        let created = client.create(&slice(i, &ips)).await.expect("create slice");
        let t_slice = Instant::now();
        let Some(applied) = wait_hit(&mut hits, id).await else {
            println!("  new Service {i}: not active after {CHANGE_TIMEOUT:?}");
            continue;
        };
        new_samples.push(sample(&seen, &created, t_slice, Some(t_svc), applied));
        progress("new Services", j, a.changes, &new_samples);
        tokio::time::sleep(a.gap).await;
    }

    // Endpoint changes of existing Services.
    let mut ep_samples = Vec::new();
    for j in 0..a.changes {
        let i = (j * 7919) % n;
        let mut s = slices[i].clone();
        let k = j % ENDPOINTS;
        let fresh = ip(FRESH_BASE + j as u32);
        s.endpoints[k].addresses = vec![fresh.to_string()];
        let ips: Vec<Ipv4Addr> = s.endpoints.iter().map(|e| e.addresses[0].parse().expect("ip")).collect();
        let id = kernel.expect(vips[i], want(&ips));
        let updated = client.update(&s).await.expect("update slice");
        let t = Instant::now();
        slices[i] = updated.clone();
        let Some(applied) = wait_hit(&mut hits, id).await else {
            println!("  endpoint change {j}: not active after {CHANGE_TIMEOUT:?}");
            continue;
        };
        ep_samples.push(sample(&seen, &updated, t, None, applied));
        progress("endpoint changes", j, a.changes, &ep_samples);
        tokio::time::sleep(a.gap).await;
    }

    let log = kernel.log();
    let during = &log[log_len_before..];
    let fulls: Vec<&Applied> = during.iter().filter(|r| r.full).collect();
    let partial: Vec<&Applied> = during.iter().filter(|r| !r.full).collect();
    println!(
        "RESULT restores while measuring: {} ({} full, {} partial)",
        during.len(),
        fulls.len(),
        partial.len()
    );
    if !partial.is_empty() {
        println!(
            "RESULT   partial syncs: text p50 {} KB, apply p50 {:.2} ms p99 {:.2} ms",
            pct(&partial.iter().map(|r| r.bytes).collect::<Vec<_>>(), 50.0) / 1024,
            ms(pct(&partial.iter().map(|r| r.apply).collect::<Vec<_>>(), 50.0)),
            ms(pct(&partial.iter().map(|r| r.apply).collect::<Vec<_>>(), 99.0)),
        );
    }
    if !fulls.is_empty() {
        println!(
            "RESULT   full syncs while measuring (the periodic resync): text p50 {} KB, apply p50 {:.1} ms, max {:.1} ms",
            pct(&fulls.iter().map(|r| r.bytes).collect::<Vec<_>>(), 50.0) / 1024,
            ms(pct(&fulls.iter().map(|r| r.apply).collect::<Vec<_>>(), 50.0)),
            ms(pct(&fulls.iter().map(|r| r.apply).collect::<Vec<_>>(), 100.0)),
        );
    }
    // The gRPC hop alone, at the sizes the proxy sent: a Restore of the same size in a format
    // the kernel refuses right after decoding, through a client set up as the proxy's is.
    let typical: Vec<usize> = if partial.is_empty() {
        during.iter().map(|r| r.bytes).collect()
    } else {
        partial.iter().map(|r| r.bytes).collect()
    };
    let partial_bytes = pct(&typical, 50.0);
    let hop = grpc_hop(&kernel_url, partial_bytes, 30).await;
    let hop_full = grpc_hop(&kernel_url, first.bytes, 5).await;
    println!(
        "RESULT gRPC hop (encode, loopback HTTP/2, decode; no apply): {} KB p50 {:.1} ms; {} KB (the full sync) p50 {:.1} ms",
        partial_bytes / 1024,
        ms(hop),
        first.bytes / 1024,
        ms(hop_full)
    );
    rows.push(format!(
        "| {} | {} | {} | the gRPC hop alone (proxy-side encode, loopback HTTP/2, kernel-side decode) | {:.1} ms for {} KB | | | {:.0} ms for the full sync's {:.1} MB | | |",
        a.mode,
        a.min_sync,
        thousands(n),
        ms(hop),
        partial_bytes / 1024,
        ms(hop_full),
        first.bytes as f64 / 1e6
    ));
    for (what, samples) in [
        ("new Service (from the slice create)", &new_samples),
        ("endpoint change (one IP replaced)", &ep_samples),
    ] {
        let totals: Vec<Duration> = samples.iter().map(|s| s.total).collect();
        let watch: Vec<Duration> = samples.iter().filter_map(|s| s.watch).collect();
        let proxy: Vec<Duration> = samples.iter().filter_map(|s| s.proxy).collect();
        let to_restore: Vec<Duration> = samples.iter().map(|s| s.to_restore).collect();
        let apply: Vec<Duration> = samples.iter().map(|s| s.applied.apply).collect();
        let bytes: Vec<usize> = samples.iter().map(|s| s.applied.bytes).collect();
        let full = samples.iter().filter(|s| s.applied.full).count();
        println!(
            "RESULT {what}: {} samples  p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms | watch p50 {:.1} ms, proxy p50 {:.1} ms (p99 {:.1}), write→Restore arrived p50 {:.1} ms, apply p50 {:.2} ms p99 {:.2} ms | restore text p50 {} KB max {} KB | {full} activated by a full sync",
            samples.len(),
            ms(pct(&totals, 50.0)),
            ms(pct(&totals, 99.0)),
            ms(pct(&totals, 100.0)),
            ms(pct(&watch, 50.0)),
            ms(pct(&proxy, 50.0)),
            ms(pct(&proxy, 99.0)),
            ms(pct(&to_restore, 50.0)),
            ms(pct(&apply, 50.0)),
            ms(pct(&apply, 99.0)),
            pct(&bytes, 50.0) / 1024,
            pct(&bytes, 100.0) / 1024,
        );
        rows.push(format!(
            "| {} | {} | {} | {what}, {} samples | {:.1} ms | {:.1} ms | {:.1} ms | watch {:.1} ms, proxy {:.1} ms, apply {:.2} ms | {} KB | p50 {:.2} ms, p99 {:.2} ms |",
            a.mode,
            a.min_sync,
            thousands(n),
            samples.len(),
            ms(pct(&totals, 50.0)),
            ms(pct(&totals, 99.0)),
            ms(pct(&totals, 100.0)),
            ms(pct(&watch, 50.0)),
            ms(pct(&proxy, 50.0)),
            ms(pct(&apply, 50.0)),
            pct(&bytes, 50.0) / 1024,
            ms(pct(&apply, 50.0)),
            ms(pct(&apply, 99.0)),
        ));
        if what.starts_with("new") {
            let from_svc: Vec<Duration> = samples.iter().filter_map(|s| s.from_service).collect();
            println!(
                "RESULT   new Service measured from the Service create instead: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
                ms(pct(&from_svc, 50.0)),
                ms(pct(&from_svc, 99.0)),
                ms(pct(&from_svc, 100.0))
            );
        }
    }
    rows
}

fn sample(
    seen: &Seen,
    written: &EndpointSlice,
    t: Instant,
    t_svc: Option<Instant>,
    applied: Applied,
) -> Sample {
    let key = (
        written.metadata.name.clone().unwrap_or_default(),
        written.metadata.resource_version.clone().unwrap_or_default(),
    );
    let watched = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&key).copied();
    Sample {
        total: applied.at.saturating_duration_since(t),
        from_service: t_svc.map(|s| applied.at.saturating_duration_since(s)),
        watch: watched.map(|w| w.saturating_duration_since(t)),
        proxy: watched.map(|w| applied.received.saturating_duration_since(w)),
        to_restore: applied.received.saturating_duration_since(t),
        applied,
    }
}

/// Median round trip of `count` Restores of `bytes` that the kernel refuses right after decoding.
async fn grpc_hop(url: &str, bytes: usize, count: usize) -> Duration {
    let endpoint =
        tonic::transport::Endpoint::from_shared(url.to_string()).expect("kernel url").tcp_nodelay(true);
    let mut client = KernelClient::new(endpoint.connect_lazy())
        .max_encoding_message_size(usize::MAX)
        .max_decoding_message_size(usize::MAX);
    let text = "x".repeat(bytes);
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let req = pb::RestoreRequest {
            format: pb::Format::Unspecified as i32,
            text: text.clone(),
            noflush: true,
            ensure: Vec::new(),
        };
        let t = Instant::now();
        let r = client.restore(req).await;
        times.push(t.elapsed());
        assert!(
            matches!(&r, Err(s) if s.code() == tonic::Code::InvalidArgument),
            "expected the kernel's refusal: {r:?}"
        );
    }
    pct(&times, 50.0)
}

async fn wait_hit(hits: &mut mpsc::UnboundedReceiver<(u64, Applied)>, id: u64) -> Option<Applied> {
    let deadline = tokio::time::Instant::now() + CHANGE_TIMEOUT;
    loop {
        match tokio::time::timeout_at(deadline, hits.recv()).await {
            Ok(Some((got, applied))) if got == id => return Some(applied),
            Ok(Some(_)) => continue,
            _ => return None,
        }
    }
}

fn progress(what: &str, j: usize, total: usize, samples: &[Sample]) {
    if (j + 1).is_multiple_of(25) || j + 1 == total {
        let totals: Vec<Duration> = samples.iter().map(|s| s.total).collect();
        println!(
            "  {what}: {:>3}/{total}  p50 so far {:.1} ms, max {:.1} ms",
            j + 1,
            ms(pct(&totals, 50.0)),
            ms(pct(&totals, 100.0))
        );
    }
}

/// Creates every object, `CONCURRENCY` at a time; returns them as stored, in order.
async fn parallel<K: Object>(objects: Vec<K>, client: &Client) -> Vec<Option<K>> {
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut set = JoinSet::new();
    let count = objects.len();
    for (i, obj) in objects.into_iter().enumerate() {
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        set.spawn(async move {
            let r = client.create(&obj).await;
            drop(permit);
            match r {
                Ok(o) => (i, Some(o)),
                Err(e) => {
                    eprintln!("create {}: {e}", netlab_client::key_of(&obj));
                    (i, None)
                }
            }
        });
    }
    let mut out: Vec<Option<K>> = (0..count).map(|_| None).collect();
    while let Some(r) = set.join_next().await {
        if let Ok((i, o)) = r {
            out[i] = o;
        }
    }
    out
}

// === objects ===

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: (name != NS).then(|| NS.into()), ..Default::default() }
}

fn name(i: usize) -> String {
    format!("svc-{i:05}")
}

/// 10.244.x.y, the `i`-th pod address.
fn ip(i: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 0)) + i)
}

fn initial_ips(i: usize) -> Vec<Ipv4Addr> {
    (0..ENDPOINTS).map(|k| ip((i * ENDPOINTS + k) as u32)).collect()
}

fn want(ips: &[Ipv4Addr]) -> BTreeSet<SocketAddr> {
    ips.iter().map(|ip| SocketAddr::V4(SocketAddrV4::new(*ip, TARGET_PORT))).collect()
}

fn vip_of(svc: &Service) -> SocketAddr {
    let ip: Ipv4Addr = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .and_then(|ip| ip.parse().ok())
        .expect("a ClusterIP");
    SocketAddr::V4(SocketAddrV4::new(ip, PORT))
}

/// A selector-less Service: its EndpointSlice is the bench's to write.
fn service(i: usize) -> Service {
    Service {
        metadata: meta(&name(i)),
        spec: Some(ServiceSpec {
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: i32::from(PORT),
                target_port: Some(IntOrString::Int(i32::from(TARGET_PORT))),
                protocol: Some("TCP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn slice(i: usize, ips: &[Ipv4Addr]) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            labels: Some([("kubernetes.io/service-name".to_string(), name(i))].into()),
            ..meta(&format!("{}-abcde", name(i)))
        },
        address_type: "IPv4".into(),
        endpoints: ips
            .iter()
            .enumerate()
            .map(|(k, ip)| Endpoint {
                addresses: vec![ip.to_string()],
                conditions: Some(EndpointConditions {
                    ready: Some(true),
                    serving: Some(true),
                    terminating: Some(false),
                }),
                node_name: Some(format!("node-{}", 1 + k % 2)),
                ..Default::default()
            })
            .collect(),
        ports: Some(vec![EndpointPort {
            name: Some("http".into()),
            port: Some(i32::from(TARGET_PORT)),
            protocol: Some("TCP".into()),
            app_protocol: None,
        }]),
    }
}

// === numbers ===

/// Nearest-rank percentile (p100 = max); zero for no samples.
fn pct<T: Copy + Ord + Default>(values: &[T], p: f64) -> T {
    if values.is_empty() {
        return T::default();
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn thousands(n: usize) -> String {
    if n >= 1000 { format!("{},{:03}", n / 1000, n % 1000) } else { n.to_string() }
}
