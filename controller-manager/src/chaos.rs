//! The chaos controller: for every fault object (`chaos.netlab.io/v1alpha1`, every kind), what
//! it is on and where it stands, in Chaos Mesh's status shape and with Chaos Mesh's events, so
//! that the enforcers (node kernels, `dns`, `cloud`, kubelets) only read records and never
//! evaluate a selector themselves.
//!
//! Chaos Mesh splits this over several controllers (desiredphase, records, condition); here one
//! reconcile per fault does all of it ([`experiment::step`]): the desired phase from the fault's
//! [`Window`] (requeued for the moment its duration is up, so `TimeUp` comes on time), the
//! records from what it targets now ([`targets`]), the four conditions, and the events. Unlike
//! Chaos Mesh, which selects once, the records follow the pods: a pod created later that
//! matches is added (its IP filled in when it gets one) and a deleted pod's record goes, so a
//! fault also affects pods that did not exist when it was created. The one-shot actions
//! (pod-kill, container-kill) still select once, as upstream: a killed pod's replacement is not
//! killed again.
//!
//! pod-kill is applied here, as Chaos Mesh's controller applies it: an API delete of each
//! selected pod with the fault's `gracePeriod`, counted in `status.counters["controller-manager"]`
//! and marked on the delete's span.
//!
//! Status is written with `update_status`, re-read on a conflict (the enforcers write their
//! counters concurrently), and only `conditions` and `experiment` are touched. The events are
//! recorded once the write went through, in order, under the names of the Chaos Mesh
//! controllers that record them upstream (`desiredphase`, `records`: `describe`'s From column).
//! Chaos Mesh's finalizer is left out: deleting a fault removes it at once, and every enforcer
//! stops with it, so there is no `Deleted` phase to show.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Node, Pod};
use netlab_chaos::{
    ComponentChaos, DnsChaos, ExhaustionChaos, FaultRef, NetworkChaos, PodChaos, RegistryChaos,
    UpstreamDnsChaos,
    report::{FaultKey, Reporter},
    status::{ChaosStatus, counter, phase},
    window::Window,
};
use netlab_client::{
    Client, ListParams,
    recorder::Recorder,
    reflector::{Cache, Change},
};
use tracing::{Instrument, debug, info};

use crate::{
    Context, Result,
    controller::{self, Reconcile},
    tasks::Tasks,
};

pub mod experiment;
pub mod targets;
#[cfg(test)]
mod tests;

use experiment::{Event, Inputs};
use targets::{Kind, SelectError, World};

/// Its entry in `status.counters` (pod-kill's `podsAffected`).
pub const COMPONENT: &str = "controller-manager";

/// How often pod-kill counts are written into the faults' status.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// Status writes retried on a conflict before the reconcile fails (and is retried later).
const CONFLICT_RETRIES: usize = 5;

/// The fault caches, one per kind.
#[derive(Clone)]
struct Faults {
    network: Cache<NetworkChaos>,
    dns: Cache<DnsChaos>,
    pod: Cache<PodChaos>,
    component: Cache<ComponentChaos>,
    registry: Cache<RegistryChaos>,
    upstream: Cache<UpstreamDnsChaos>,
    exhaustion: Cache<ExhaustionChaos>,
}

/// A fault's queue key: `<Kind>/<namespace>/<name>`, as the runner queues one string per object.
fn key<K: Kind>(fault: &K) -> String {
    format!("{}/{}", K::KIND, netlab_client::key_of(fault))
}

// === impl Faults ===

impl Faults {
    /// Every fault's key.
    fn keys(&self) -> Vec<String> {
        let mut out = Vec::new();
        out.extend(self.network.list().iter().map(|f| key(f.as_ref())));
        out.extend(self.dns.list().iter().map(|f| key(f.as_ref())));
        out.extend(self.pod.list().iter().map(|f| key(f.as_ref())));
        out.extend(self.component.list().iter().map(|f| key(f.as_ref())));
        out.extend(self.registry.list().iter().map(|f| key(f.as_ref())));
        out.extend(self.upstream.list().iter().map(|f| key(f.as_ref())));
        out.extend(self.exhaustion.list().iter().map(|f| key(f.as_ref())));
        out
    }

    /// The keys of the pod-scoped faults a change of `pods` (versions of one pod) concerns.
    fn concerning(&self, world: &World, pods: &[&Pod]) -> Vec<String> {
        fn of<K: Kind>(cache: &Cache<K>, world: &World, pods: &[&Pod]) -> Vec<String> {
            cache
                .list()
                .iter()
                .filter(|f| targets::concerns(f.as_ref(), world, pods))
                .map(|f| key(f.as_ref()))
                .collect()
        }
        let mut out = of(&self.network, world, pods);
        out.extend(of(&self.dns, world, pods));
        out.extend(of(&self.pod, world, pods));
        out
    }
}

struct Controller {
    client: Client,
    faults: Faults,
    world: World,
    /// Events under Chaos Mesh's controller names: (desiredphase, records).
    recorders: Arc<(Recorder, Recorder)>,
    tasks: Tasks,
    reporter: Arc<Reporter>,
    /// Node name → labels, to tell a change that may alter a selection from a heartbeat.
    node_labels: Mutex<HashMap<String, BTreeMap<String, String>>>,
    /// (fault key, message) of the selection failures already recorded, so that a fault that
    /// matches nothing says so once, not at every reconcile; cleared when it matches again or
    /// is deleted.
    reported: Mutex<HashSet<(String, String)>>,
}

// === impl Controller ===

impl Controller {
    /// The faults a pod change concerns.
    fn on_pod(&self, change: &Change<Pod>) -> Vec<String> {
        let changed = change.object();
        let latest = self.world.pods.get(&targets::pod_id(changed));
        let mut versions: Vec<&Pod> = vec![changed.as_ref()];
        versions.extend(latest.as_deref());
        self.faults.concerning(&self.world, &versions)
    }

    /// Every fault, when a node came, went or changed its labels (what per-node faults and
    /// `nodeSelectors` depend on); nothing for a heartbeat.
    fn on_node(&self, change: &Change<Node>) -> Vec<String> {
        let node = change.object();
        let name = node.metadata.name.clone().unwrap_or_default();
        let mut known = self.node_labels.lock().unwrap_or_else(|e| e.into_inner());
        let changed = match change {
            Change::Applied(n) => {
                let labels = n.metadata.labels.clone().unwrap_or_default();
                known.insert(name, labels.clone()).is_none_or(|old| old != labels)
            }
            Change::Deleted(_) => known.remove(&name).is_some(),
        };
        drop(known);
        if changed { self.faults.keys() } else { Vec::new() }
    }

    /// Records `events` on `fault` in the background, one after the other so that they are
    /// listed in the order they happened, each under its Chaos Mesh controller's name.
    fn record<K: Kind>(&self, fault: &K, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let (recorders, fault) = (self.recorders.clone(), fault.clone());
        self.tasks.spawn(async move {
            for e in events {
                let recorder =
                    if e.source == experiment::DESIRED_PHASE { &recorders.0 } else { &recorders.1 };
                recorder.record(&fault, e.type_, e.reason, &e.message).await;
            }
        });
    }

    /// Records a selection failure of the fault `key` once (until it selects again).
    fn selection_failed<K: Kind>(&self, key: &str, fault: Option<&K>, failure: Option<&SelectError>) {
        let mut reported = self.reported.lock().unwrap_or_else(|e| e.into_inner());
        match failure {
            None => reported.retain(|(k, _)| k != key),
            Some(error) => {
                let Some(fault) = fault else { return };
                let event = Event::failed("select targets", &error.to_string());
                if reported.insert((key.to_string(), event.message.clone())) {
                    drop(reported);
                    self.record(fault, vec![event]);
                }
            }
        }
    }

    #[tracing::instrument(skip_all, fields(fault = %key))]
    async fn sync<K: Kind>(&self, cache: &Cache<K>, key: &str) -> Result<Option<Duration>> {
        let queue_key = format!("{}/{key}", K::KIND);
        let Some(cached) = cache.get(key) else {
            self.selection_failed::<K>(&queue_key, None, None);
            return Ok(None);
        };
        let now = Timestamp::now();
        let mut failure = None;
        let written = self
            .update(cached.as_ref().clone(), |fault, status| {
                // From the object at hand: a re-read after a conflict may bring a new pause.
                let window = Window::of(fault.metadata(), fault.duration());
                let desired = experiment::desired(&window, fault.oneshot(), now);
                let records = &status.experiment.container_records;
                // Selected once for one-shot actions; frozen once the experiment is over.
                let frozen = !records.is_empty()
                    && (fault.oneshot()
                        || matches!(desired.cause, experiment::Cause::TimeUp | experiment::Cause::Deleted));
                let selection = (!frozen).then(|| {
                    let recorded: Vec<(String, String)> =
                        records.iter().map(|r| (r.id.clone(), r.selector_key.clone())).collect();
                    fault.select(&self.world, &recorded)
                });
                failure = selection.as_ref().and_then(|s| s.failure.clone());
                let inputs = Inputs {
                    targets: selection.as_ref().map(|s| s.targets.as_slice()),
                    desired,
                    paused: window.paused,
                    applied_by_caller: fault.applied_by_controller(),
                    now,
                };
                experiment::step(status, &inputs)
            })
            .await?;
        let Some((fault, events)) = written else { return Ok(None) };
        self.record(&fault, events);
        let window = Window::of(fault.metadata(), fault.duration());
        if fault.status().is_some_and(|s| s.experiment.desired_phase == phase::RUN) {
            self.selection_failed(&queue_key, Some(&fault), failure.as_ref());
        }
        let pending = fault.status().is_some_and(|s| !experiment::pending(&s.experiment).is_empty());
        if fault.applied_by_controller() && pending {
            self.kill(fault).await?;
        }
        Ok(window.until_change(now))
    }

    /// Writes the status `plan` makes from the fault's current one, re-reading the fault and
    /// planning again on a conflict. Returns the fault as written (None if it is gone) and the
    /// events of the step that was written.
    async fn update<K: Kind>(
        &self,
        mut fault: K,
        mut plan: impl FnMut(&K, &ChaosStatus) -> experiment::Outcome,
    ) -> Result<Option<(K, Vec<Event>)>> {
        let (ns, name) = names(&fault);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = fault.status().cloned().unwrap_or_default();
            let outcome = plan(&fault, &current);
            if same(&outcome.status, &current) {
                return Ok(Some((fault, Vec::new())));
            }
            let mut next = fault.clone();
            let status = next.status_mut();
            status.conditions = outcome.status.conditions;
            status.experiment = outcome.status.experiment;
            match self.client.update_status(&next).await {
                Ok(written) => return Ok(Some((written, outcome.events))),
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) if e.is_conflict() && attempt <= CONFLICT_RETRIES => {
                    match self.client.get::<K>(&ns, &name).await {
                        Ok(fresh) => fault = fresh,
                        Err(e) if e.is_not_found() => return Ok(None),
                        Err(e) => return Err(e.into()),
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// pod-kill: deletes each selected pod not yet killed with the fault's grace period, then
    /// marks its record injected. A pod already gone counts as killed.
    async fn kill<K: Kind>(&self, fault: K) -> Result<()> {
        let (ns, name) = names(&fault);
        // Fresh, not from the cache: a kill already done must not be done (and counted) again.
        let fault: K = match self.client.get(&ns, &name).await {
            Ok(fault) => fault,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let Some(status) = fault.status() else { return Ok(()) };
        let pending: Vec<(String, String)> = experiment::pending(&status.experiment)
            .into_iter()
            .map(|r| (r.id.clone(), r.selector_key.clone()))
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        let grace = fault.grace_period();
        let mark = FaultRef::new(&ns, &name, K::KIND, fault.action());
        let mut killed = Vec::new();
        for (id, selector_key) in pending {
            let Some((pod_ns, pod_name)) = id.split_once('/') else { continue };
            let span = tracing::info_span!("pod-kill", pod = %id, grace_period = grace);
            mark.mark(&span, &format!("deleted pod {id} (gracePeriod {grace}s)"));
            let deleted =
                self.client.delete_with::<Pod>(pod_ns, pod_name, Some(grace)).instrument(span).await;
            match deleted {
                Ok(_) => {
                    info!(pod = %id, "Killed pod.");
                    self.reporter.add(&FaultKey::of(&fault), counter::PODS_AFFECTED, 1);
                }
                Err(e) if e.is_not_found() => debug!(pod = %id, "Pod to kill already gone."),
                Err(e) => {
                    self.record(&fault, vec![Event::failed("apply chaos", &e.to_string())]);
                    return Err(e.into());
                }
            }
            killed.push((id, selector_key));
        }
        let now = Timestamp::now();
        let written = self
            .update(fault, |_, status| {
                let mut next = status.clone();
                let mut events: Vec<Event> = killed
                    .iter()
                    .filter_map(|(id, key)| experiment::applied(&mut next, id, key, now))
                    .collect();
                if !events.is_empty() {
                    events.push(Event::records_updated());
                }
                experiment::Outcome { status: next, events }
            })
            .await?;
        if let Some((fault, events)) = written {
            self.record(&fault, events);
        }
        Ok(())
    }
}

/// Whether `a` and `b` agree on what the controller writes (conditions and experiment).
fn same(a: &ChaosStatus, b: &ChaosStatus) -> bool {
    a.conditions == b.conditions && a.experiment == b.experiment
}

fn names<K: Kind>(fault: &K) -> (String, String) {
    let meta = fault.metadata();
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

impl Reconcile for Controller {
    const NAME: &'static str = "chaos";
    type Error = crate::Error;

    async fn reconcile(&self, key: &str) -> Result<Option<Duration>> {
        let Some((kind, object)) = key.split_once('/') else { return Ok(None) };
        let f = &self.faults;
        match kind {
            <NetworkChaos as k8s_openapi::Resource>::KIND => self.sync(&f.network, object).await,
            <DnsChaos as k8s_openapi::Resource>::KIND => self.sync(&f.dns, object).await,
            <PodChaos as k8s_openapi::Resource>::KIND => self.sync(&f.pod, object).await,
            <ComponentChaos as k8s_openapi::Resource>::KIND => self.sync(&f.component, object).await,
            <RegistryChaos as k8s_openapi::Resource>::KIND => self.sync(&f.registry, object).await,
            <UpstreamDnsChaos as k8s_openapi::Resource>::KIND => self.sync(&f.upstream, object).await,
            <ExhaustionChaos as k8s_openapi::Resource>::KIND => self.sync(&f.exhaustion, object).await,
            _ => Ok(None),
        }
    }
}

/// Starts the controller on `ctx.tasks`: a reflector per fault kind, pods and nodes, and the
/// reporter that writes pod-kill's counts.
pub fn start(ctx: &Context) -> Result<()> {
    let all = ListParams::default;
    let (network, network_changes) = ctx.reflector::<NetworkChaos>(all());
    let (dns, dns_changes) = ctx.reflector::<DnsChaos>(all());
    let (pod, pod_chaos_changes) = ctx.reflector::<PodChaos>(all());
    let (component, component_changes) = ctx.reflector::<ComponentChaos>(all());
    let (registry, registry_changes) = ctx.reflector::<RegistryChaos>(all());
    let (upstream, upstream_changes) = ctx.reflector::<UpstreamDnsChaos>(all());
    let (exhaustion, exhaustion_changes) = ctx.reflector::<ExhaustionChaos>(all());
    let (pods, pod_changes) = ctx.reflector::<Pod>(all());
    let (nodes, node_changes) = ctx.reflector::<Node>(all());
    let reporter = Reporter::new(COMPONENT);
    ctx.tasks.spawn(reporter.clone().run(ctx.client.clone(), REPORT_EVERY));
    let faults = Faults { network, dns, pod, component, registry, upstream, exhaustion };
    let ctl = Arc::new(Controller {
        client: ctx.client.clone(),
        faults: faults.clone(),
        world: World { pods: pods.clone(), nodes: nodes.clone() },
        recorders: Arc::new((
            Recorder::new(ctx.client.clone(), experiment::DESIRED_PHASE, None),
            Recorder::new(ctx.client.clone(), experiment::RECORDS, None),
        )),
        tasks: ctx.tasks.clone(),
        reporter,
        node_labels: Mutex::default(),
        reported: Mutex::default(),
    });
    let (on_pod, on_node) = (ctl.clone(), ctl.clone());
    controller::Controller::new(ctl)
        .watches(&faults.network, network_changes, fault_key)
        .watches(&faults.dns, dns_changes, fault_key)
        .watches(&faults.pod, pod_chaos_changes, fault_key)
        .watches(&faults.component, component_changes, fault_key)
        .watches(&faults.registry, registry_changes, fault_key)
        .watches(&faults.upstream, upstream_changes, fault_key)
        .watches(&faults.exhaustion, exhaustion_changes, fault_key)
        .watches(&pods, pod_changes, move |change| on_pod.on_pod(change))
        .watches(&nodes, node_changes, move |change| on_node.on_node(change))
        .on_synced(|| {
            info!("Caches synced; starting chaos workers.");
            Vec::new()
        })
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

/// A fault kind's change: its own key.
fn fault_key<K: Kind>(change: &Change<K>) -> Vec<String> {
    vec![key(change.object().as_ref())]
}
