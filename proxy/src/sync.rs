//! The sync task: what happens when rules are written (upstream's `syncProxyRules` around its
//! `BoundedFrequencyRunner`).
//!
//! Watch handlers only record objects in the [`Tracker`] and wake the one sync task
//! ([`Handle`]). The task ([`Runner`]) asks the [`BoundedFrequencyRunner`] when it may sync
//! (bursts, a minimum interval, a full sync every `max_interval`, a retry after a failure), folds
//! the changes into its mode's [`Snapshot`], renders the changed Services' rules in that mode and
//! restores them on the [`Dataplane`]. After a failed restore the retry is a full sync (the
//! kernel applied nothing, and the partial view is no longer to be trusted). Nothing is written
//! before the first Service and EndpointSlice lists are in, so a restarted proxy never programs a
//! half-empty view. After each sync the kernel took, the UDP flows it left stale are deleted from
//! conntrack ([`crate::conntrack`]); a delete that fails is retried at the next sync and never
//! fails the sync.

use std::{
    collections::BTreeSet,
    net::Ipv4Addr,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
};

use k8s_openapi::api::{
    core::v1::{Node, Service},
    discovery::v1::EndpointSlice,
};
use netlab_client::reflector::Change;
use netlab_kernel::conntrack::Filter;
use netlab_proto::node::v1::{Format, RestoreRequest, Table};
use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, Span, field::Empty};

use crate::{
    Result,
    conntrack::{self, Stale},
    dataplane::Dataplane,
    healthz::ProxyHealth,
    iptables::{self, Iptables, ServicePortInfo},
    ipvs::Ipvs,
    model::{ServicePortName, Snapshot, Tracker},
    runner::{BoundedFrequencyRunner, Due, Settings},
};

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

/// A mode's proxier and the snapshot of its own ports.
enum Rules {
    Iptables(Iptables, Snapshot<ServicePortInfo>),
    Ipvs(Ipvs, Snapshot),
}

/// `$body` with `$snapshot` bound to whichever mode's snapshot `$rules` holds.
macro_rules! with_snapshot {
    ($rules:expr, $snapshot:ident => $body:expr) => {
        match $rules {
            Rules::Iptables(_, $snapshot) => $body,
            Rules::Ipvs(_, $snapshot) => $body,
        }
    };
}

/// The one task that writes rules.
pub struct Runner {
    handle: Handle,
    dataplane: Arc<dyn Dataplane>,
    /// The `--proxy-mode` name.
    mode: &'static str,
    /// The mode's proxier, and the view the handlers' changes are folded into, in the mode's
    /// ports. Its mark is the last successful sync: [`Snapshot::changes`] are the ports the
    /// kernel does not hold as they are now.
    rules: Rules,
    /// When to sync.
    timing: BoundedFrequencyRunner,
    need_full: bool,
    /// Failures in a row (logged at the first only).
    failures: u32,
    synced_once: bool,
    /// conntrack deletes that failed, for the next sync.
    conntrack_pending: BTreeSet<Filter>,
    /// conntrack delete failures in a row (logged at the first only).
    conntrack_failures: u32,
    /// The process's fault gate: a stopped or paused kube-proxy syncs nothing (the rules it
    /// wrote stay in the kernel and keep working).
    gate: netlab_faults::Gate,
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
        let name = mode.name();
        let rules = match mode {
            Mode::Iptables(ipt) => Rules::Iptables(ipt, Snapshot::default()),
            Mode::Ipvs(ipvs) => Rules::Ipvs(ipvs, Snapshot::default()),
        };
        Self {
            handle,
            dataplane,
            mode: name,
            rules,
            timing: BoundedFrequencyRunner::new(settings),
            need_full: true,
            failures: 0,
            synced_once: false,
            conntrack_pending: BTreeSet::new(),
            conntrack_failures: 0,
            gate: netlab_faults::Gate::new(),
        }
    }

    /// The same runner, its syncs gated by `gate`.
    pub fn gated(self, gate: netlab_faults::Gate) -> Self {
        Self { gate, ..self }
    }

    /// Syncs until `shutdown`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let handle = self.handle.clone();
        loop {
            // Nothing runs before both lists are in; then a sync is wanted for a full one owed
            // or for changes waiting (only a sync changes `need_full`).
            let need_full = self.need_full;
            let requested = || handle.is_initialized().then(|| need_full || handle.tracker().is_dirty());
            let Some(due) = self.timing.wait(&handle.shared.notify, requested, &shutdown).await else {
                return;
            };
            // A periodic run and a retry are full syncs, and so is any sync while one is owed.
            let full = due != Due::Requested || self.need_full;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.gate.ready() => {}
            }
            self.sync(full).await;
        }
    }

    /// One sync: fold in the changes, write what changed (everything if `full`).
    async fn sync(&mut self, mut full: bool) {
        let node_ips = {
            let mut tracker = self.handle.tracker();
            full |= with_snapshot!(&mut self.rules, snapshot => tracker.update(snapshot, false));
            tracker.node_ips().to_vec()
        };
        let changed = with_snapshot!(&self.rules, snapshot => snapshot.changes());
        if !full && changed.is_empty() {
            // Changes that change no rule (a status update, a label): nothing to write.
            self.handle.shared.health.updated();
            return;
        }
        let span = tracing::info_span!(
            "proxy sync",
            netlab.proxy.mode = self.mode,
            netlab.proxy.full = Empty,
            netlab.proxy.services_changed = changed.len(),
            netlab.proxy.endpoints = with_snapshot!(&self.rules, snapshot => snapshot.total_endpoints()),
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
                let stale = with_snapshot!(&mut self.rules, snapshot => {
                    let stale = conntrack::stale(snapshot.changes_since_mark());
                    snapshot.mark();
                    stale
                });
                self.need_full = false;
                self.timing.succeeded(now, stats.full);
                self.handle.shared.health.updated();
                // After the rules, as upstream: a flow deleted now is tracked again on the new
                // rules, never on the old ones.
                self.clean_conntrack(stale, &span).instrument(span.clone()).await;
                let _entered = span.enter();
                let (ports, rules, full, changed) = (
                    with_snapshot!(&self.rules, snapshot => snapshot.len()),
                    stats.rules,
                    stats.full,
                    changed.len(),
                );
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
                self.timing.failed(now);
                let _entered = span.enter();
                if self.failures == 0 {
                    let retry = self.timing.settings().retry;
                    tracing::warn!(%error, ?retry, "Sync failed; retrying until the kernel takes the rules.");
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
        changed: &BTreeSet<ServicePortName>,
        node_ips: &[Ipv4Addr],
    ) -> Result<Stats> {
        match &mut self.rules {
            Rules::Iptables(ipt, snapshot) => {
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
                let mut r = ipt.render(snapshot, (!full).then_some(changed));
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
            Rules::Ipvs(ipvs, snapshot) => {
                let r = ipvs.render(snapshot, (!full).then_some(changed), node_ips);
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

#[cfg(test)]
mod tests;
