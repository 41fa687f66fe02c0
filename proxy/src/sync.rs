//! When rules are written, and to where: upstream's `BoundedFrequencyRunner` around
//! `syncProxyRules`.
//!
//! Watch handlers only record objects in the [`Tracker`] and wake the one sync task
//! ([`Handle`]). The task ([`Runner`]) syncs at most `burst` times in a row and then once per
//! `min_sync_period`, so a burst of changes costs one or two restores, not one each; it writes
//! every chain at least once per `sync_period`; after a failed restore it retries, with a full
//! sync, after `retry` (the kernel applied nothing, and the partial view is no longer to be
//! trusted). Nothing is written before the first Service and EndpointSlice lists are in, so a
//! restarted proxy never programs a half-empty view. After each sync the kernel took, the UDP
//! flows it left stale are deleted from conntrack ([`crate::conntrack`]); a delete that fails
//! is retried at the next sync and never fails the sync.
//!
//! The kernel sits behind [`Dataplane`]: [`Kernel`] speaks gRPC to the node-agent, and
//! `fake::FakeDataplane` (feature `test-util`) keeps the tables in memory for tests.

use std::{
    collections::BTreeSet,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::api::{
    core::v1::{Node, Service},
    discovery::v1::EndpointSlice,
};
use netlab_client::reflector::Change;
use netlab_kernel::{Protocol, conntrack::Filter};
use netlab_proto::node::v1::{
    self as pb, ConntrackDeleteRequest, Format, RestoreRequest, SaveRequest, Table,
    conntrack_client::ConntrackClient, kernel_client::KernelClient,
};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};
use tracing::{Instrument as _, Span, field::Empty};

use crate::{
    Error, Result,
    conntrack::{self, Stale},
    healthz::ProxyHealth,
    iptables::{self, Iptables},
    ipvs::Ipvs,
    model::{Snapshot, Tracker},
};

/// The node's kernel, as kube-proxy sees it: `iptables-restore`, `ipvsadm-restore`,
/// `iptables-save` and `conntrack -D`.
#[async_trait::async_trait]
pub trait Dataplane: Send + Sync + 'static {
    /// Applies `req` atomically; returns how many rules the tables hold afterwards.
    async fn restore(&self, req: RestoreRequest) -> Result<u64>;
    /// Prints `table` as the real tool would.
    async fn save(&self, table: Table) -> Result<String>;
    /// `conntrack -D` with `filter`; returns how many flows went. A kernel without a conntrack
    /// table (a double that only records rules) keeps this default, as a node without the
    /// conntrack tool would: the proxy then leaves stale flows to time out.
    async fn delete_conntrack(&self, filter: Filter) -> Result<u64> {
        let _ = filter;
        Err(Error::kernel("Conntrack.Delete", tonic::Status::unimplemented("no conntrack table")))
    }
}

/// Longest wait for one kernel call (a 10,000-Service restore is some 15 MB of text).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(60);

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;

/// The node-agent's `netlab.node.v1.Kernel` and `netlab.node.v1.Conntrack` over gRPC, on one
/// connection.
#[derive(Clone)]
pub struct Kernel {
    client: KernelClient<InterceptedService<Channel, Interceptor>>,
    conntrack: ConntrackClient<InterceptedService<Channel, Interceptor>>,
}

// === impl Kernel ===

impl Kernel {
    /// A client for the kernel at `addr` (`http://host:port` or `host:port`). Connects lazily and
    /// reconnects on its own, so the proxy may start before the node-agent.
    pub fn new(addr: &str) -> Result<Self> {
        let url = if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") };
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::Config(format!("invalid --kernel address {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(3))
            // A kernel that hangs must not stall syncing forever: time out, retry in full.
            .timeout(RESTORE_TIMEOUT)
            .tcp_nodelay(true);
        let channel = endpoint.connect_lazy();
        let inject = netlab_telemetry::propagation::inject as Interceptor;
        let client = KernelClient::with_interceptor(channel.clone(), inject)
            .max_decoding_message_size(netlab_proto::node::v1::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(netlab_proto::node::v1::MAX_MESSAGE_BYTES);
        let conntrack = ConntrackClient::with_interceptor(channel, inject);
        Ok(Self { client, conntrack })
    }
}

#[async_trait::async_trait]
impl Dataplane for Kernel {
    async fn restore(&self, req: RestoreRequest) -> Result<u64> {
        let resp = self.client.clone().restore(req).await.map_err(|s| Error::kernel("Restore", s))?;
        Ok(resp.into_inner().rules)
    }

    async fn save(&self, table: Table) -> Result<String> {
        let req = SaveRequest { table: table as i32 };
        let resp = self.client.clone().save(req).await.map_err(|s| Error::kernel("Save", s))?;
        Ok(resp.into_inner().text)
    }

    async fn delete_conntrack(&self, filter: Filter) -> Result<u64> {
        let protocol = match filter.protocol {
            Protocol::Tcp => pb::Protocol::Tcp,
            Protocol::Udp => pb::Protocol::Udp,
            Protocol::Sctp => pb::Protocol::Sctp,
        };
        let req = ConntrackDeleteRequest {
            protocol: protocol as i32,
            orig_dst: filter.orig_dst.map(|ip| ip.to_string()),
            orig_dst_port: filter.orig_dst_port.map(u32::from),
            dst_nat: filter.dst_nat.map(|ip| ip.to_string()),
        };
        let resp =
            self.conntrack.clone().delete(req).await.map_err(|s| Error::kernel("Conntrack.Delete", s))?;
        Ok(resp.into_inner().deleted)
    }
}

/// Which rules the proxy writes.
#[derive(Debug)]
pub enum Mode {
    /// `--proxy-mode iptables`.
    Iptables(Iptables),
    /// `--proxy-mode ipvs`.
    Ipvs(Ipvs),
}

// === impl Mode ===

impl Mode {
    /// The `--proxy-mode` name.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Iptables(_) => "iptables",
            Mode::Ipvs(_) => "ipvs",
        }
    }
}

/// The runner's timing.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// At most one sync per this, after a burst (`--iptables-min-sync-period`).
    pub min_sync_period: Duration,
    /// A full sync at least this often (`--iptables-sync-period`).
    pub sync_period: Duration,
    /// Syncs allowed back to back before `min_sync_period` applies (upstream: 2).
    pub burst: u32,
    /// Wait after a failed sync.
    pub retry: Duration,
}

// === impl Settings ===

impl Settings {
    /// Upstream's burst of 2, and a retry after `min_sync_period` but at least a second.
    pub fn new(min_sync_period: Duration, sync_period: Duration) -> Self {
        Self { min_sync_period, sync_period, burst: 2, retry: min_sync_period.max(Duration::from_secs(1)) }
    }
}

/// What watch handlers call: record the object, wake the sync task. Cheap to clone.
#[derive(Clone)]
pub struct Handle {
    shared: Arc<Shared>,
}

struct Shared {
    /// The trace context of the latest Service or EndpointSlice change (`netlab.io/traceparent`):
    /// the next sync's span joins that write's trace.
    last_trace: Mutex<Option<String>>,
    tracker: Mutex<Tracker>,
    notify: Notify,
    services_synced: AtomicBool,
    slices_synced: AtomicBool,
    health: ProxyHealth,
}

// === impl Handle ===

impl Handle {
    /// A handle for the proxy on `node_name`, reporting queued changes to `health`.
    pub fn new(node_name: &str, health: ProxyHealth) -> Self {
        Self {
            shared: Arc::new(Shared {
                tracker: Mutex::new(Tracker::new(node_name)),
                last_trace: Mutex::new(None),
                notify: Notify::new(),
                services_synced: AtomicBool::new(false),
                slices_synced: AtomicBool::new(false),
                health,
            }),
        }
    }

    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        // Tracker methods leave it whole when they return; a poisoned lock still holds it.
        self.shared.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        if self.is_initialized() {
            self.shared.health.queued();
        }
        self.shared.notify.notify_one();
    }

    /// A Service change from the watch.
    pub fn service(&self, change: Change<Service>) {
        self.remember_trace(change.object().metadata.annotations.as_ref());
        match change {
            Change::Applied(svc) => self.tracker().service_applied(svc),
            Change::Deleted(svc) => self.tracker().service_deleted(&svc),
        }
        self.changed();
    }

    /// An EndpointSlice change from the watch.
    pub fn endpoint_slice(&self, change: Change<EndpointSlice>) {
        self.remember_trace(change.object().metadata.annotations.as_ref());
        match change {
            Change::Applied(slice) => self.tracker().slice_applied(slice),
            Change::Deleted(slice) => self.tracker().slice_deleted(&slice),
        }
        self.changed();
    }

    /// This proxy's Node changed (None: deleted).
    pub fn node(&self, node: Option<&Node>) {
        if self.tracker().node(node) {
            self.changed();
        }
    }

    /// Keeps a changed object's trace context for the next sync.
    fn remember_trace(&self, annotations: Option<&std::collections::BTreeMap<String, String>>) {
        if let Some(tp) = netlab_telemetry::propagation::traceparent_of(annotations) {
            *self.shared.last_trace.lock().unwrap_or_else(|e| e.into_inner()) = Some(tp.to_string());
        }
    }

    /// Takes the trace context recorded since the last sync.
    fn take_trace(&self) -> Option<String> {
        self.shared.last_trace.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The first Service list has been fed in (upstream `OnServiceSynced`).
    pub fn services_synced(&self) {
        self.shared.services_synced.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }

    /// The first EndpointSlice list has been fed in (upstream `OnEndpointSlicesSynced`).
    pub fn endpoint_slices_synced(&self) {
        self.shared.slices_synced.store(true, Ordering::Release);
        self.shared.notify.notify_one();
    }

    /// Both first lists are in: rules may be written.
    pub fn is_initialized(&self) -> bool {
        self.shared.services_synced.load(Ordering::Acquire)
            && self.shared.slices_synced.load(Ordering::Acquire)
    }
}

/// A token bucket: `burst` tokens, one more every `every` (upstream's flowcontrol limiter).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    every: Duration,
    last: Instant,
}

// === impl Bucket ===

impl Bucket {
    fn new(burst: u32, every: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Self { tokens: burst, burst, every, last: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        if self.every.is_zero() {
            self.tokens = self.burst;
        } else {
            let add = now.saturating_duration_since(self.last).as_secs_f64() / self.every.as_secs_f64();
            self.tokens = (self.tokens + add).min(self.burst);
        }
        self.last = now;
    }

    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there.
    fn ready_at(&self, now: Instant) -> Instant {
        if self.tokens >= 1.0 || self.every.is_zero() {
            return now;
        }
        now + self.every.mul_f64(1.0 - self.tokens)
    }
}

/// The one task that writes rules.
pub struct Runner {
    handle: Handle,
    dataplane: Arc<dyn Dataplane>,
    mode: Mode,
    settings: Settings,
    bucket: Bucket,
    /// The view the handlers' changes are folded into. Its mark is the last successful sync:
    /// [`Snapshot::changes`] are the ports the kernel does not hold as they are now.
    snapshot: Snapshot,
    need_full: bool,
    last_full: Option<Instant>,
    retry_at: Option<Instant>,
    /// Failures in a row (logged at the first only).
    failures: u32,
    synced_once: bool,
    /// conntrack deletes that failed, for the next sync.
    conntrack_pending: BTreeSet<Filter>,
    /// conntrack delete failures in a row (logged at the first only).
    conntrack_failures: u32,
}

/// What one sync did.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    full: bool,
    rules: usize,
}

// === impl Runner ===

impl Runner {
    /// A runner writing `mode`'s rules for `handle`'s view to `dataplane`.
    pub fn new(handle: Handle, dataplane: Arc<dyn Dataplane>, mode: Mode, settings: Settings) -> Self {
        Self {
            handle,
            dataplane,
            mode,
            bucket: Bucket::new(settings.burst, settings.min_sync_period),
            settings,
            snapshot: Snapshot::default(),
            need_full: true,
            last_full: None,
            retry_at: None,
            failures: 0,
            synced_once: false,
            conntrack_pending: BTreeSet::new(),
            conntrack_failures: 0,
        }
    }

    /// Syncs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let wake = self.next_wake(Instant::now());
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.handle.shared.notify.notified() => {}
                _ = sleep_until(wake) => {}
            }
            let now = Instant::now();
            let Some(full) = self.due(now) else { continue };
            if !self.bucket.take(now) {
                continue;
            }
            self.sync(full).await;
        }
    }

    /// Whether a sync is wanted now, and whether it must be full.
    fn due(&self, now: Instant) -> Option<bool> {
        if !self.handle.is_initialized() {
            return None;
        }
        if let Some(at) = self.retry_at {
            return (now >= at).then_some(true);
        }
        let periodic = self.last_full.is_none_or(|t| now >= t + self.settings.sync_period);
        let full = self.need_full || periodic;
        (full || self.handle.tracker().is_dirty()).then_some(full)
    }

    /// When to look again without being woken: at the retry, at the next token if work is
    /// waiting, at the next periodic full sync.
    fn next_wake(&self, now: Instant) -> Option<Instant> {
        if !self.handle.is_initialized() {
            return None;
        }
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        let periodic = self.last_full.map_or(now, |t| t + self.settings.sync_period);
        if self.need_full || self.handle.tracker().is_dirty() {
            return Some(self.bucket.ready_at(now).min(periodic));
        }
        Some(periodic)
    }

    /// One sync: fold in the changes, write what changed (everything if `full`).
    async fn sync(&mut self, mut full: bool) {
        let node_ips = {
            let mut tracker = self.handle.tracker();
            full |= tracker.update(&mut self.snapshot, false);
            tracker.node_ips().to_vec()
        };
        let changed = self.snapshot.changes();
        if !full && changed.is_empty() {
            // Changes that change no rule (a status update, a label): nothing to write.
            self.handle.shared.health.updated();
            return;
        }
        let span = tracing::info_span!(
            "proxy sync",
            netlab.proxy.mode = self.mode.name(),
            netlab.proxy.full = Empty,
            netlab.proxy.services_changed = changed.len(),
            netlab.proxy.endpoints = self.snapshot.total_endpoints(),
            netlab.proxy.rules_written = Empty,
            netlab.proxy.conntrack.stale_services = Empty,
            netlab.proxy.conntrack.stale_endpoints = Empty,
            netlab.proxy.conntrack.deleted = Empty,
            netlab.proxy.conntrack.pending = Empty,
            otel.status_code = Empty,
            otel.status_message = Empty,
        );
        if let Some(tp) = self.handle.take_trace() {
            netlab_telemetry::propagation::set_parent_from_traceparent(&span, &tp);
        }
        let result = self.program(full, &changed, &node_ips).instrument(span.clone()).await;
        let now = Instant::now();
        match result {
            Ok(stats) => {
                span.record("netlab.proxy.full", stats.full);
                span.record("netlab.proxy.rules_written", stats.rules);
                // What the kernel moved from, before the mark forgets it.
                let stale = conntrack::stale(self.snapshot.changes_since_mark());
                self.snapshot.mark();
                self.need_full = false;
                self.retry_at = None;
                if stats.full {
                    self.last_full = Some(now);
                }
                self.handle.shared.health.updated();
                // After the rules, as upstream: a flow deleted now is tracked again on the new
                // rules, never on the old ones.
                self.clean_conntrack(stale, &span).instrument(span.clone()).await;
                let _entered = span.enter();
                let (ports, rules, full, changed) =
                    (self.snapshot.len(), stats.rules, stats.full, changed.len());
                if !self.synced_once || self.failures > 0 {
                    tracing::info!(
                        ports,
                        rules,
                        full,
                        changed,
                        failures = self.failures,
                        "Programmed the kernel."
                    );
                } else {
                    tracing::debug!(ports, rules, full, changed, "Synced proxy rules.");
                }
                self.synced_once = true;
                self.failures = 0;
            }
            Err(error) => {
                span.record("netlab.proxy.full", full);
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", error.to_string().as_str());
                // The kernel applied none of it; and the changes are folded into `snapshot`
                // already, so only a full sync is sure to bring the kernel back in line.
                self.need_full = true;
                self.retry_at = Some(now + self.settings.retry);
                let _entered = span.enter();
                if self.failures == 0 {
                    tracing::warn!(%error, retry = ?self.settings.retry, "Sync failed; retrying until the kernel takes the rules.");
                } else {
                    tracing::debug!(%error, failures = self.failures + 1, "Sync failed again.");
                }
                self.failures += 1;
            }
        }
    }

    /// Deletes the flows `stale` names and those earlier deletes left, as upstream's
    /// `CleanStaleEntries` does after `syncProxyRules`, and records the counts on `span`. The
    /// first delete that fails stops the rest (the kernel is likely unreachable), and it and the
    /// rest wait for the next sync; a kernel without conntrack gets none.
    async fn clean_conntrack(&mut self, stale: Stale, span: &Span) {
        span.record("netlab.proxy.conntrack.stale_services", stale.services.len());
        span.record("netlab.proxy.conntrack.stale_endpoints", stale.endpoint_count());
        let mut filters = std::mem::take(&mut self.conntrack_pending);
        filters.extend(stale.filters);
        if filters.is_empty() {
            return;
        }
        let total = filters.len();
        let mut deleted = 0u64;
        let mut rest = filters.into_iter();
        let mut failed = None;
        for filter in rest.by_ref() {
            match self.dataplane.delete_conntrack(filter).await {
                Ok(n) => {
                    tracing::debug!(%filter, deleted = n, "Deleted stale conntrack entries.");
                    deleted += n;
                }
                Err(error) => {
                    failed = Some((filter, error));
                    break;
                }
            }
        }
        span.record("netlab.proxy.conntrack.deleted", deleted);
        let Some((filter, error)) = failed else {
            span.record("netlab.proxy.conntrack.pending", 0);
            tracing::debug!(filters = total, deleted, "Cleared stale UDP conntrack entries.");
            self.conntrack_failures = 0;
            return;
        };
        if error.is_unimplemented() {
            span.record("netlab.proxy.conntrack.pending", 0);
            if self.conntrack_failures == 0 {
                tracing::warn!(%error, "The kernel has no conntrack table; stale UDP flows stay until they time out.");
            }
            self.conntrack_failures += 1;
            return;
        }
        self.conntrack_pending = std::iter::once(filter).chain(rest).collect();
        let pending = self.conntrack_pending.len();
        span.record("netlab.proxy.conntrack.pending", pending);
        if self.conntrack_failures == 0 {
            tracing::warn!(%error, %filter, pending, "Failed to delete stale conntrack entries; retrying at the next sync.");
        } else {
            tracing::debug!(%error, %filter, pending, failures = self.conntrack_failures + 1, "Deleting stale conntrack entries failed again.");
        }
        self.conntrack_failures += 1;
    }

    /// Renders and restores; remembers what the kernel now holds only if it took it.
    async fn program(
        &mut self,
        full: bool,
        changed: &std::collections::BTreeSet<crate::model::ServicePortName>,
        node_ips: &[std::net::Ipv4Addr],
    ) -> Result<Stats> {
        match &mut self.mode {
            Mode::Iptables(ipt) => {
                if !ipt.knows_chains() {
                    // A previous run's chains, to delete those no longer needed (upstream reads
                    // iptables-save on every sync; after this one, the proxier keeps count).
                    match self.dataplane.save(Table::IptablesSave).await {
                        Ok(text) => ipt.seed_chains(iptables::service_chains_in_save(&text)),
                        Err(error) => {
                            tracing::debug!(%error, "No iptables-save; stale chains stay.")
                        }
                    }
                }
                let mut r = ipt.render(&self.snapshot, (!full).then_some(changed));
                let req = RestoreRequest {
                    format: Format::Iptables as i32,
                    text: std::mem::take(&mut r.text),
                    noflush: true,
                    // The jumps from the built-in chains are checked on full syncs only, as
                    // upstream does (a partial sync trusts they are still there).
                    ensure: if r.full { iptables::ensure_rules() } else { Vec::new() },
                };
                self.dataplane.restore(req).await?;
                let stats = Stats { full: r.full, rules: r.rules };
                ipt.commit(r);
                Ok(stats)
            }
            Mode::Ipvs(ipvs) => {
                let r = ipvs.render(&self.snapshot, (!full).then_some(changed), node_ips);
                let stats = Stats { full: r.full, rules: r.virtual_servers + r.real_servers };
                let req = RestoreRequest {
                    format: Format::Ipvs as i32,
                    text: r.text,
                    noflush: false,
                    ensure: Vec::new(),
                };
                self.dataplane.restore(req).await?;
                ipvs.commit();
                Ok(stats)
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(any(test, feature = "test-util"))]
pub mod fake;

#[cfg(test)]
mod tests;
