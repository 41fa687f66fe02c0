//! netlab's CoreDNS: the cluster DNS server. It watches Services, EndpointSlices and Namespaces
//! (and pods, for `pods verified`), answers the cluster zone exactly as CoreDNS's kubernetes
//! plugin does under the Corefile in the `kube-system/coredns` ConfigMap, forwards everything
//! else upstream, reloads when the ConfigMap changes, exports CoreDNS's metrics, and registers
//! itself as the `kube-system/coredns-xxxxx` pod behind the kube-dns Service.
//!
//! # Layout
//! - [`config`]: flags. [`error`]: errors.
//! - [`corefile`]: the Corefile parser. [`blocks`]: the Corefile compiled into the running config.
//! - [`zone`]: the cluster zone: the index and the kubernetes plugin's lookup rules (no sockets).
//! - [`watch`]: reflectors → [`zone::Store`]; the ConfigMap → reloads.
//! - [`cache`]: the `cache` plugin. [`forward`]: the `forward` plugin.
//! - [`chaos`]: DNSChaos, Chaos Mesh's `k8s_dns_chaos` plugin: wrong answers for selected pods.
//! - [`handler`]: the hickory edge: the plugin chain per query, no sockets.
//! - [`server`]: the UDP and TCP sockets; [`server::udp`] puts a packet cache of whole replies in
//!   front of the handler.
//! - [`metrics`]: CoreDNS's Prometheus metrics. [`status`]: `/health`, `/ready`, `/metrics`.
//! - [`register`]: the kube-dns pod.

use std::{
    net::IpAddr,
    sync::{
        Arc, RwLock, RwLockReadGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio_util::sync::CancellationToken;

pub mod blocks;
pub mod cache;
pub mod chaos;
pub mod config;
pub mod corefile;
pub mod error;
pub mod forward;
pub mod handler;
pub mod metrics;
pub mod register;
pub mod server;
pub mod status;
pub mod watch;
pub mod zone;

pub use config::Config;
pub use error::{Error, Result};

/// The name of dns's entry in the faults' `status.counters`.
pub const REPORTER: &str = "dns";

/// How often the fault counters are written.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What the DNS handler, the watchers and the HTTP endpoints share.
pub struct Shared {
    store: RwLock<zone::Store>,
    blocks: RwLock<Arc<blocks::Blocks>>,
    /// CoreDNS's metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// What compiling a Corefile needs.
    pub settings: blocks::Settings,
    /// Flips to true once the first lists are applied and a Corefile is running.
    pub synced: tokio::sync::watch::Sender<bool>,
    /// The DNSChaos rules in force, by querying pod IP.
    faults: RwLock<Arc<chaos::Faults>>,
    /// What the DNSChaos rules did, for the faults' `status.counters["dns"]`.
    pub reporter: Arc<netlab_chaos::report::Reporter>,
    /// Bumped after every change to the zone or the config: the packet cache's replies are only
    /// good for the generation they were built in.
    generation: AtomicU64,
}

// === impl Shared ===

impl Shared {
    /// Shared state with no Corefile yet: no zone is served (every query is REFUSED) until
    /// [`watch`] reads the Corefile from the `kube-system/coredns` ConfigMap. CoreDNS has no
    /// Corefile of its own either: it cannot start without the ConfigMap mounted.
    pub fn new(settings: blocks::Settings) -> Arc<Self> {
        let metrics = Arc::new(metrics::Metrics::new());
        let blocks = blocks::Blocks::compile(corefile::Corefile { servers: Vec::new() }, &settings, &metrics);
        Arc::new(Self {
            store: RwLock::new(zone::Store::new()),
            blocks: RwLock::new(Arc::new(blocks)),
            metrics,
            settings,
            synced: tokio::sync::watch::channel(false).0,
            faults: RwLock::default(),
            reporter: netlab_chaos::report::Reporter::new(REPORTER),
            generation: AtomicU64::new(0),
        })
    }

    /// The zone, for reading.
    pub fn store(&self) -> RwLockReadGuard<'_, zone::Store> {
        // Writers apply whole objects; a poisoned lock still holds a consistent index.
        self.store.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the zone with the write lock held.
    pub fn update<T>(&self, f: impl FnOnce(&mut zone::Store) -> T) -> T {
        let out = f(&mut self.store.write().unwrap_or_else(|e| e.into_inner()));
        // After the write: a reply built from the old zone carries an older generation.
        self.generation.fetch_add(1, Ordering::Release);
        out
    }

    /// The zone and config generation (see [`server::udp`]).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The running config.
    pub fn blocks(&self) -> Arc<blocks::Blocks> {
        self.blocks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in a new config.
    pub fn set_blocks(&self, blocks: blocks::Blocks) {
        *self.blocks.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(blocks);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The DNSChaos rules in force.
    pub fn faults(&self) -> Arc<chaos::Faults> {
        self.faults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in new DNSChaos rules. The packet cache's replies are orphaned: one kept for a pod
    /// before its fault began must not be repeated to it now.
    pub fn set_faults(&self, faults: chaos::Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(faults);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// Whether the first lists are applied and a Corefile is running.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }
}

/// Runs the DNS server until `shutdown`.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<()> {
    let advertise = cfg.advertise_address.unwrap_or_else(register::node_ip);
    let settings = blocks::Settings {
        resolv_override: cfg.upstream.clone(),
        local_ips: vec![advertise],
        port: cfg.listen.port(),
    };
    let shared = Shared::new(settings);
    let faults = netlab_faults::Faults::new(netlab_faults::Me::component(netlab_faults::Component::Dns));
    let dns_token = CancellationToken::new();
    let addr =
        server::serve_gated(shared.clone(), cfg.listen, faults.gate().clone(), dns_token.clone()).await?;
    tracing::info!(%addr, "Serving DNS.");
    let http_token = CancellationToken::new();
    status::serve_guarded(shared.clone(), &cfg, Some(&faults), http_token.clone()).await?;

    let client = netlab_client::Client::new(&cfg.server)?;
    faults.spawn_watch(client.clone(), shutdown.child_token());
    let tracker = tokio_util::task::TaskTracker::new();
    let watch_token = shutdown.child_token();
    tracker.spawn(watch::run(client.clone(), shared.clone(), watch_token.clone()));
    tracker.spawn(watch::faults(client.clone(), shared.clone(), watch_token.clone()));
    let reporter = shared.reporter.clone().run(client.clone(), REPORT_EVERY);
    let reporter_token = watch_token.clone();
    tracker.spawn(async move {
        tokio::select! {
            _ = reporter_token.cancelled() => {}
            _ = reporter => {}
        }
    });
    let register_token = CancellationToken::new();
    let registered = cfg.register.then(|| {
        let ip: IpAddr = advertise;
        tokio::spawn(register::run(client.clone(), shared.clone(), ip, register_token.clone()))
    });
    tracker.close();

    shutdown.cancelled().await;
    // Leave the kube-dns endpoints first, then keep answering through the lameduck period (as
    // CoreDNS's `health { lameduck }` does), then stop.
    register_token.cancel();
    if let Some(task) = registered {
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
    if let Some(lameduck) = shared.blocks().lameduck() {
        tracing::info!(?lameduck, "Going into lameduck mode.");
        tokio::time::sleep(lameduck).await;
    }
    dns_token.cancel();
    http_token.cancel();
    watch_token.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(2), tracker.wait()).await;
    Ok(())
}
