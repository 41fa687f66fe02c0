//! The EndpointSlice controller: for every Service with a selector, EndpointSlices listing the
//! pods it selects, as kube-controller-manager's (`pkg/controller/endpointslice`) writes them, so
//! that the proxy and DNS read exactly what they would read in Kubernetes.
//!
//! Services, Pods, EndpointSlices and Nodes are list-watched; a change queues the keys of the
//! Services it may affect (a pod change queues every Service in its namespace whose selector
//! matches the pod's old or new labels), and each Service is synced on its own:
//! [`derive`](mod@derive) computes the endpoints it should have, [`plan`] the fewest writes that get its
//! existing slices there. Services without a selector are left alone: users write their slices.
//!
//! A slice this controller has just written may not be in the watch cache yet; syncing from that
//! stale cache would create a second slice for the same endpoints. So, as upstream's
//! `EndpointSliceTracker` does, every write is remembered with the resourceVersion it produced,
//! and a Service whose cached slices are older than that is retried after a backoff instead.
//! Deleting a Service leaves its slices to the garbage collector, through their ownerReference.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, RwLock},
};

use k8s_openapi::api::{
    core::v1::{Node, Pod, Service},
    discovery::v1::EndpointSlice,
};
use netlab_client::{
    Client, ListParams, key_of,
    reflector::{Cache, Change},
};
use tracing::{debug, info};

use crate::{
    Context, Result,
    controller::{self, Reconcile, ReconcileError},
};

pub mod derive;
pub mod plan;
#[cfg(test)]
mod tests;

use derive::{CONTROLLER_NAME, LABEL_MANAGED_BY, LABEL_SERVICE_NAME, LABEL_ZONE};

/// Why one Service's sync must be retried.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// A write failed.
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
    /// The slice cache has not caught up with this controller's own writes.
    #[error("EndpointSlice informer cache is out of date")]
    StaleCache,
    /// Some selected pods run on Nodes not (yet) known; they were left out for now.
    #[error("skipping Pods {pods:?} for Service {service}: Node not found")]
    NodeNotFound {
        /// `namespace/name` of the Service.
        service: String,
        /// The pods left out.
        pods: Vec<String>,
    },
}

/// What this controller last wrote to one slice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tracked {
    /// Created or updated; the apiserver answered with this resourceVersion.
    Written(u64),
    /// Deleted by us; its deletion event is still to come.
    Deleting,
}

/// upstream `EndpointSliceTracker`: per Service, per slice uid, what we last did to it.
#[derive(Debug, Default)]
struct Tracker {
    by_service: HashMap<String, HashMap<String, Tracked>>,
}

fn resource_version(slice: &EndpointSlice) -> u64 {
    slice.metadata.resource_version.as_deref().and_then(|rv| rv.parse().ok()).unwrap_or(0)
}

fn uid(slice: &EndpointSlice) -> String {
    slice.metadata.uid.clone().unwrap_or_default()
}

// === impl Tracker ===

impl Tracker {
    /// Whether `cached` (the Service's slices in the cache) misses or predates a write of ours.
    fn stale(&self, service: &str, cached: &[Arc<EndpointSlice>]) -> bool {
        let Some(tracked) = self.by_service.get(service) else { return false };
        let seen: HashMap<String, u64> = cached.iter().map(|s| (uid(s), resource_version(s))).collect();
        tracked.iter().any(|(uid, t)| match (t, seen.get(uid)) {
            (Tracked::Written(rv), Some(cached)) => cached < rv,
            (Tracked::Written(_), None) => true,
            (Tracked::Deleting, seen) => seen.is_some(),
        })
    }

    fn written(&mut self, service: &str, slice: &EndpointSlice) {
        self.by_service
            .entry(service.to_string())
            .or_default()
            .insert(uid(slice), Tracked::Written(resource_version(slice)));
    }

    fn deleting(&mut self, service: &str, slice: &EndpointSlice) {
        self.by_service.entry(service.to_string()).or_default().insert(uid(slice), Tracked::Deleting);
    }

    fn untrack(&mut self, service: &str, slice: &EndpointSlice) {
        if let Some(t) = self.by_service.get_mut(service) {
            t.remove(&uid(slice));
        }
    }

    /// upstream `ShouldSync`: a slice change we did not make ourselves.
    fn should_sync(&self, service: &str, slice: &EndpointSlice) -> bool {
        match self.by_service.get(service).and_then(|t| t.get(&uid(slice))) {
            Some(Tracked::Written(rv)) => resource_version(slice) > *rv,
            Some(Tracked::Deleting) => false,
            None => true,
        }
    }

    /// A slice is gone; whether we expected it (our own delete).
    fn deleted(&mut self, service: &str, slice: &EndpointSlice) -> bool {
        let Some(t) = self.by_service.get_mut(service) else { return false };
        t.remove(&uid(slice)) == Some(Tracked::Deleting)
    }

    fn forget(&mut self, service: &str) {
        self.by_service.remove(service);
    }
}

/// What the index remembers of a pod: enough to find the Services it matched before a change.
#[derive(Debug, Clone, Default)]
struct PodEntry {
    namespace: String,
    labels: BTreeMap<String, String>,
    node: String,
}

/// Pods by label and by node, so a sync looks at the pods a selector can match rather than at
/// every pod in the namespace, and a pod change knows the labels it had before.
#[derive(Debug, Default)]
struct Index {
    pods: HashMap<String, PodEntry>,
    by_label: HashMap<(String, String, String), HashSet<String>>,
    by_node: HashMap<String, HashSet<String>>,
    zones: HashMap<String, Option<String>>,
}

// === impl Index ===

impl Index {
    /// Records `pod`; returns what was recorded before.
    fn upsert(&mut self, pod: &Pod) -> Option<PodEntry> {
        let key = key_of(pod);
        let old = self.remove(&key);
        let entry = PodEntry {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            node: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        };
        for (k, v) in &entry.labels {
            self.by_label
                .entry((entry.namespace.clone(), k.clone(), v.clone()))
                .or_default()
                .insert(key.clone());
        }
        if !entry.node.is_empty() {
            self.by_node.entry(entry.node.clone()).or_default().insert(key.clone());
        }
        self.pods.insert(key, entry);
        old
    }

    fn remove(&mut self, key: &str) -> Option<PodEntry> {
        let old = self.pods.remove(key)?;
        for (k, v) in &old.labels {
            let label = (old.namespace.clone(), k.clone(), v.clone());
            if let Some(set) = self.by_label.get_mut(&label) {
                set.remove(key);
                if set.is_empty() {
                    self.by_label.remove(&label);
                }
            }
        }
        if let Some(set) = self.by_node.get_mut(&old.node) {
            set.remove(key);
            if set.is_empty() {
                self.by_node.remove(&old.node);
            }
        }
        Some(old)
    }

    /// Keys of the pods in `namespace` carrying the selector's rarest label: a superset of those
    /// it selects.
    fn candidates(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<String> {
        let sets =
            selector.iter().map(|(k, v)| self.by_label.get(&(namespace.to_string(), k.clone(), v.clone())));
        let mut smallest: Option<&HashSet<String>> = None;
        for set in sets {
            let Some(set) = set else { return Vec::new() };
            if smallest.is_none_or(|s| set.len() < s.len()) {
                smallest = Some(set);
            }
        }
        let mut keys: Vec<String> = smallest.map(|s| s.iter().cloned().collect()).unwrap_or_default();
        keys.sort();
        keys
    }
}

struct Controller {
    client: Client,
    services: Cache<Service>,
    pods: Cache<Pod>,
    slices: Cache<EndpointSlice>,
    nodes: Cache<Node>,
    index: RwLock<Index>,
    tracker: Mutex<Tracker>,
    max_per_slice: usize,
}

/// The `namespace/name` of the Service a managed slice belongs to.
fn service_of(slice: &EndpointSlice) -> Option<String> {
    let labels = slice.metadata.labels.as_ref()?;
    if labels.get(LABEL_MANAGED_BY).map(String::as_str) != Some(CONTROLLER_NAME) {
        return None;
    }
    let name = labels.get(LABEL_SERVICE_NAME)?;
    Some(format!("{}/{name}", slice.metadata.namespace.as_deref().unwrap_or("")))
}

// === impl Controller ===

impl Controller {
    fn index(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        // Only short, panic-free sections hold the lock.
        self.index.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_mut(&self) -> std::sync::RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(|e| e.into_inner())
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The Services in `namespace` selecting any of `label_sets`.
    fn selecting(&self, namespace: &str, label_sets: &[Option<&BTreeMap<String, String>>]) -> Vec<String> {
        self.services
            .list_namespace(namespace)
            .iter()
            .filter(|svc| label_sets.iter().any(|l| derive::selects(svc, *l)))
            .map(|svc| key_of(svc.as_ref()))
            .collect()
    }

    /// Indexes a pod change; the Services it may affect.
    ///
    /// The index follows the cache, not the change: changes queued during the first list are
    /// handed over after the index was primed from the cache, and indexing their older versions
    /// would move it backwards until the replay caught up.
    fn on_pod(&self, change: &Change<Pod>) -> Vec<String> {
        let key = key_of(change.object().as_ref());
        let latest = self.pods.get(&key);
        let old = match &latest {
            Some(pod) => self.index_mut().upsert(pod),
            None => self.index_mut().remove(&key),
        };
        let namespace = change.object().metadata.namespace.clone().unwrap_or_default();
        let latest_labels = latest.as_ref().and_then(|p| p.metadata.labels.as_ref());
        let change_labels = match change {
            Change::Applied(pod) => pod.metadata.labels.as_ref(),
            Change::Deleted(_) => None,
        };
        let old_labels = old.as_ref().map(|o| &o.labels);
        self.selecting(&namespace, &[latest_labels, change_labels, old_labels])
    }

    /// The Service a slice change concerns, unless the change is our own write.
    fn on_slice(&self, change: &Change<EndpointSlice>) -> Vec<String> {
        let slice = change.object();
        let Some(service) = service_of(slice) else { return Vec::new() };
        let sync = match change {
            Change::Applied(_) => self.tracker().should_sync(&service, slice),
            Change::Deleted(_) => !self.tracker().deleted(&service, slice),
        };
        if sync { vec![service] } else { Vec::new() }
    }

    /// Records a Node's zone; when it changed, the Services selecting the Node's pods.
    fn on_node(&self, change: &Change<Node>) -> Vec<String> {
        let node = change.object();
        let name = node.metadata.name.clone().unwrap_or_default();
        let zone = match change {
            Change::Applied(n) => Some(n.metadata.labels.as_ref().and_then(|l| l.get(LABEL_ZONE)).cloned()),
            Change::Deleted(_) => None,
        };
        let pods: Vec<(String, BTreeMap<String, String>)> = {
            let mut index = self.index_mut();
            let before = match &zone {
                Some(z) => index.zones.insert(name.clone(), z.clone()),
                None => index.zones.remove(&name),
            };
            if before.is_some() && before == zone {
                return Vec::new();
            }
            let keys = index.by_node.get(&name).cloned().unwrap_or_default();
            keys.iter()
                .filter_map(|k| index.pods.get(k))
                .map(|e| (e.namespace.clone(), e.labels.clone()))
                .collect()
        };
        pods.iter().flat_map(|(namespace, labels)| self.selecting(namespace, &[Some(labels)])).collect()
    }

    #[tracing::instrument(skip_all, fields(service = %key))]
    async fn sync(&self, key: &str) -> Result<(), SyncError> {
        let Some(service) = self.services.get(key) else {
            self.tracker().forget(key);
            return Ok(());
        };
        if !derive::is_managed(&service) {
            return Ok(());
        }
        let namespace = service.metadata.namespace.clone().unwrap_or_default();
        let name = service.metadata.name.clone().unwrap_or_default();
        let existing: Vec<Arc<EndpointSlice>> = self
            .slices
            .list_namespace(&namespace)
            .into_iter()
            .filter(|s| service_of(s).as_deref() == Some(key) && s.metadata.deletion_timestamp.is_none())
            .collect();
        if self.tracker().stale(key, &existing) {
            return Err(SyncError::StaleCache);
        }
        let selector = service.spec.as_ref().and_then(|s| s.selector.clone()).unwrap_or_default();
        let candidates = self.index().candidates(&namespace, &selector);
        let pods: Vec<Arc<Pod>> = candidates.iter().filter_map(|k| self.pods.get(k)).collect();
        let desired = derive::desired(&service, &pods, |node| self.nodes.get(node));
        let mut plan = plan::plan(&service, &existing, &desired, self.max_per_slice);
        if service.metadata.deletion_timestamp.is_some() {
            plan.create.clear();
        }
        if !plan.is_empty() {
            debug!(
                create = plan.create.len(),
                update = plan.update.len(),
                delete = plan.delete.len(),
                endpoints = desired.endpoints().count(),
                "Reconciling EndpointSlices."
            );
        }
        for slice in &plan.create {
            let created = self.client.create(slice).await?;
            self.tracker().written(key, &created);
            info!(slice = created.metadata.name.as_deref().unwrap_or(""), "Created EndpointSlice.");
        }
        for slice in &plan.update {
            let updated = self.client.update(slice).await?;
            self.tracker().written(key, &updated);
        }
        for slice in &plan.delete {
            let slice_name = slice.metadata.name.as_deref().unwrap_or("");
            self.tracker().deleting(key, slice);
            match self.client.delete::<EndpointSlice>(&namespace, slice_name).await {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    self.tracker().untrack(key, slice);
                    return Err(e.into());
                }
            }
        }
        if !desired.missing_nodes.is_empty() {
            return Err(SyncError::NodeNotFound {
                service: format!("{namespace}/{name}"),
                pods: desired.missing_nodes,
            });
        }
        Ok(())
    }
}

impl ReconcileError for SyncError {}

impl Reconcile for Controller {
    const NAME: &'static str = "endpointslice";
    type Error = SyncError;

    async fn reconcile(&self, key: &str) -> Result<Option<std::time::Duration>, SyncError> {
        self.sync(key).await.map(|()| None)
    }

    fn error_policy(&self, key: &str, error: &SyncError) {
        debug!(service = %key, %error, "Requeuing.");
    }
}

/// Starts the controller on `ctx.tasks`. Workers start once every cache holds its first list: a
/// sync from a partial cache would delete slices whose pods are merely not listed yet.
pub fn start(ctx: &Context) -> Result<()> {
    let all = ListParams::default();
    let client = ctx.client.clone();
    let (services, service_changes) = ctx.reflector::<Service>(all.clone());
    let (pods, pod_changes) = ctx.reflector::<Pod>(all.clone());
    let managed =
        ListParams { labels: format!("{LABEL_MANAGED_BY}={CONTROLLER_NAME}"), ..Default::default() };
    let (slices, slice_changes) = ctx.reflector::<EndpointSlice>(managed);
    let (nodes, node_changes) = ctx.reflector::<Node>(all);
    let ctl = Arc::new(Controller {
        client,
        services: services.clone(),
        pods: pods.clone(),
        slices: slices.clone(),
        nodes: nodes.clone(),
        index: RwLock::default(),
        tracker: Mutex::default(),
        max_per_slice: ctx.config.max_endpoints_per_slice.clamp(1, 1000),
    });
    let (on_pod, on_slice, on_node, prime) = (ctl.clone(), ctl.clone(), ctl.clone(), ctl.clone());
    controller::Controller::new(ctl)
        .primary(&services, service_changes)
        .watches(&pods, pod_changes, move |change| on_pod.on_pod(change))
        .watches(&slices, slice_changes, move |change| on_slice.on_slice(change))
        .watches(&nodes, node_changes, move |change| on_node.on_node(change))
        .on_synced(move || {
            // The index must hold every listed pod before the first sync, or a restart would
            // strip endpoints from slices only to put them back a moment later.
            let mut index = prime.index_mut();
            for pod in prime.pods.list() {
                index.upsert(&pod);
            }
            info!("Caches synced; starting EndpointSlice workers.");
            Vec::new()
        })
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}
