//! Garbage collection through ownerReferences, as kube-controller-manager's garbage collector
//! (`pkg/controller/garbagecollector`) does for background propagation: an object whose owners
//! are all gone is deleted; one that lost only some of its owners has those references removed.
//! Deleting a Deployment thus removes its ReplicaSets, whose deletion removes their Pods; deleting
//! a Service removes its EndpointSlices. The apiserver itself never cascades.
//!
//! Owners (Deployments, ReplicaSets, StatefulSets, DaemonSets, Services) and dependents
//! (ReplicaSets, Pods, EndpointSlices) are list-watched. An owner's deletion queues the dependents that name its uid;
//! a dependent whose owner is not in the cache is queued too. Nothing is deleted before every
//! cache holds its first list, and an owner missing from the cache is looked up live on the
//! apiserver before anything is deleted (upstream's `isDangling`), so a dependent created just
//! before the watch delivers its owner is never collected. Deletes carry the resourceVersion the
//! decision was made on, so an object changed or recreated meanwhile is re-examined instead.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        core::v1::{Node, Pod, Service},
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::apis::meta::v1::OwnerReference,
};
use netlab_client::{
    Client, ListParams, Object, key_of,
    reflector::{Cache, Change},
};
use tracing::{debug, info, warn};

use crate::{
    Context, Result,
    controller::{self, Reconcile, ReconcileError},
};

/// Why one object's collection must be retried.
#[derive(Debug, thiserror::Error)]
enum SyncError {
    /// A lookup or write failed (a Conflict means the object changed under us).
    #[error(transparent)]
    Api(#[from] netlab_client::Error),
}

/// An owner's state, as far as the collector can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// It exists with the referenced uid.
    Present,
    /// Gone, or replaced by an object with another uid.
    Absent,
}

/// Every watched object.
#[derive(Clone)]
struct Caches {
    pods: Cache<Pod>,
    replica_sets: Cache<ReplicaSet>,
    slices: Cache<EndpointSlice>,
    deployments: Cache<Deployment>,
    stateful_sets: Cache<StatefulSet>,
    daemon_sets: Cache<DaemonSet>,
    services: Cache<Service>,
}

// === impl Caches ===

impl Caches {
    /// The cached uid of the owner `r` names, Some(None) if the cache does not hold it, None if
    /// its kind is not watched.
    fn owner_uid(&self, namespace: &str, r: &OwnerReference) -> Option<Option<String>> {
        let key = format!("{namespace}/{}", r.name);
        fn uid<K: Object>(c: &Cache<K>, key: &str) -> Option<String> {
            c.get(key).and_then(|o| o.metadata().uid.clone())
        }
        Some(match r.kind.as_str() {
            "Deployment" => uid(&self.deployments, &key),
            "ReplicaSet" => uid(&self.replica_sets, &key),
            "StatefulSet" => uid(&self.stateful_sets, &key),
            "DaemonSet" => uid(&self.daemon_sets, &key),
            "Service" => uid(&self.services, &key),
            "Pod" => uid(&self.pods, &key),
            _ => return None,
        })
    }

    /// Whether some owner of an object in `namespace` is missing from the caches.
    fn misses_owner(&self, namespace: &str, refs: &[OwnerReference]) -> bool {
        refs.iter().any(
            |r| matches!(self.owner_uid(namespace, r), Some(uid) if uid.as_deref() != Some(r.uid.as_str())),
        )
    }
}

/// The uid of the object `r` names, looked up on the apiserver; None if it does not exist.
async fn live_uid(
    client: &Client,
    namespace: &str,
    r: &OwnerReference,
) -> Result<Option<Option<String>>, SyncError> {
    async fn get<K: Object>(
        client: &Client,
        namespace: &str,
        name: &str,
    ) -> Result<Option<String>, SyncError> {
        match client.get::<K>(namespace, name).await {
            Ok(o) => Ok(Some(o.metadata().uid.clone().unwrap_or_default())),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
    let name = r.name.as_str();
    Ok(Some(match r.kind.as_str() {
        "Deployment" => get::<Deployment>(client, namespace, name).await?,
        "ReplicaSet" => get::<ReplicaSet>(client, namespace, name).await?,
        "StatefulSet" => get::<StatefulSet>(client, namespace, name).await?,
        "DaemonSet" => get::<DaemonSet>(client, namespace, name).await?,
        "Service" => get::<Service>(client, namespace, name).await?,
        "Pod" => get::<Pod>(client, namespace, name).await?,
        "EndpointSlice" => get::<EndpointSlice>(client, namespace, name).await?,
        "Node" => get::<Node>(client, "", name).await?,
        _ => return Ok(None),
    }))
}

/// Dependents by the uid of each owner they name, so an owner's deletion finds them.
#[derive(Debug, Default)]
struct Graph {
    dependents: HashMap<String, HashSet<String>>,
    owners: HashMap<String, Vec<String>>,
}

// === impl Graph ===

impl Graph {
    fn set(&mut self, key: &str, owner_uids: Vec<String>) {
        self.remove(key);
        if owner_uids.is_empty() {
            return;
        }
        for uid in &owner_uids {
            self.dependents.entry(uid.clone()).or_default().insert(key.to_string());
        }
        self.owners.insert(key.to_string(), owner_uids);
    }

    fn remove(&mut self, key: &str) {
        for uid in self.owners.remove(key).unwrap_or_default() {
            if let Some(set) = self.dependents.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.dependents.remove(&uid);
                }
            }
        }
    }

    fn dependents_of(&self, uid: &str) -> Vec<String> {
        self.dependents.get(uid).map(|s| s.iter().cloned().collect()).unwrap_or_default()
    }
}

/// The queue key of a dependent: `Kind/namespace/name`.
fn dependent_key<K: Object>(obj: &K) -> String {
    format!("{}/{}", K::KIND, key_of(obj))
}

struct Collector {
    client: Client,
    caches: Caches,
    graph: Mutex<Graph>,
}

// === impl Collector ===

impl Collector {
    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        // Only short, panic-free sections hold the lock.
        self.graph.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A dependent kind changed: index it; its key if an owner looks missing. (The runner hands
    /// over changes only after the first lists, so the caches are complete enough to tell.)
    fn on_dependent<K: Object>(&self, change: &Change<K>) -> Option<String> {
        let obj = change.object();
        let key = dependent_key(obj.as_ref());
        match change {
            Change::Applied(_) => {
                let meta = obj.metadata();
                let refs = meta.owner_references.as_deref().unwrap_or_default();
                self.graph().set(&key, refs.iter().map(|r| r.uid.clone()).collect());
                let namespace = meta.namespace.as_deref().unwrap_or("");
                let missing = meta.deletion_timestamp.is_none() && self.caches.misses_owner(namespace, refs);
                missing.then_some(key)
            }
            Change::Deleted(_) => {
                self.graph().remove(&key);
                None
            }
        }
    }

    /// An owner kind changed: when one is deleted, its dependents, to be examined.
    fn on_owner<K: Object>(&self, change: &Change<K>) -> Vec<String> {
        match change {
            Change::Deleted(obj) => {
                let uid = obj.metadata().uid.clone().unwrap_or_default();
                self.graph().dependents_of(&uid)
            }
            Change::Applied(_) => Vec::new(),
        }
    }

    /// Every dependent whose owner is not in the caches (after the first lists).
    fn scan(&self) -> Vec<String> {
        fn each<K: Object>(c: &Collector, cache: &Cache<K>, out: &mut Vec<String>) {
            for obj in cache.list() {
                let meta = obj.metadata();
                let refs = meta.owner_references.as_deref().unwrap_or_default();
                if meta.deletion_timestamp.is_none()
                    && c.caches.misses_owner(meta.namespace.as_deref().unwrap_or(""), refs)
                {
                    out.push(dependent_key(obj.as_ref()));
                }
            }
        }
        let mut out = Vec::new();
        each(self, &self.caches.replica_sets, &mut out);
        each(self, &self.caches.pods, &mut out);
        each(self, &self.caches.slices, &mut out);
        out
    }

    #[tracing::instrument(skip_all, fields(object = %key))]
    async fn sync(&self, key: &str) -> Result<(), SyncError> {
        let mut parts = key.splitn(2, '/');
        let (kind, rest) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        match kind {
            "Pod" => self.attempt(&self.caches.pods, rest).await,
            "ReplicaSet" => self.attempt(&self.caches.replica_sets, rest).await,
            "EndpointSlice" => self.attempt(&self.caches.slices, rest).await,
            _ => Ok(()),
        }
    }

    /// upstream `attemptToDeleteItem` for background propagation.
    async fn attempt<K: Object>(&self, cache: &Cache<K>, key: &str) -> Result<(), SyncError> {
        let Some(obj) = cache.get(key) else { return Ok(()) };
        let meta = obj.metadata();
        if meta.deletion_timestamp.is_some() {
            return Ok(());
        }
        let namespace = meta.namespace.clone().unwrap_or_default();
        let name = meta.name.clone().unwrap_or_default();
        let refs = meta.owner_references.clone().unwrap_or_default();
        if refs.is_empty() {
            return Ok(());
        }
        let mut states = Vec::with_capacity(refs.len());
        for r in &refs {
            let cached = self.caches.owner_uid(&namespace, r);
            let state = match cached {
                None => Owner::Present, // a kind we cannot see: never assume it is gone
                Some(Some(uid)) if uid == r.uid => Owner::Present,
                Some(_) => match live_uid(&self.client, &namespace, r).await? {
                    None => Owner::Present,
                    Some(Some(uid)) if uid == r.uid => Owner::Present,
                    Some(_) => Owner::Absent,
                },
            };
            states.push(state);
        }
        if states.iter().all(|s| *s == Owner::Present) {
            return Ok(());
        }
        let rv: u64 = meta.resource_version.as_deref().and_then(|rv| rv.parse().ok()).unwrap_or(0);
        if states.iter().all(|s| *s == Owner::Absent) {
            let owners: Vec<String> = refs.iter().map(|r| format!("{}/{}", r.kind, r.name)).collect();
            info!(kind = K::KIND, %namespace, %name, ?owners, "Deleting object whose owners are gone.");
            return match self.client.delete_at::<K>(&namespace, &name, rv).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_not_found() => Ok(()),
                Err(e) => Err(e.into()),
            };
        }
        // Some owners remain: drop only the dangling references.
        let mut updated = (*obj).clone();
        let kept: Vec<OwnerReference> =
            refs.into_iter().zip(states).filter(|(_, s)| *s == Owner::Present).map(|(r, _)| r).collect();
        updated.metadata_mut().owner_references = Some(kept);
        debug!(kind = K::KIND, %namespace, %name, "Removing dangling ownerReferences.");
        match self.client.update(&updated).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

impl ReconcileError for SyncError {}

impl Reconcile for Collector {
    const NAME: &'static str = "garbagecollector";
    type Error = SyncError;

    async fn reconcile(&self, key: &str) -> Result<Option<std::time::Duration>, SyncError> {
        self.sync(key).await.map(|()| None)
    }

    fn error_policy(&self, key: &str, error: &SyncError) {
        if !matches!(error, SyncError::Api(e) if e.is_conflict()) {
            warn!(object = %key, %error, "Garbage collection failed; retrying.");
        }
    }
}

/// Starts the collector on `ctx.tasks`.
pub fn start(ctx: &Context) -> Result<()> {
    let (pods, pod_changes) = ctx.reflector::<Pod>(ListParams::default());
    let (replica_sets, rs_changes) = ctx.reflector::<ReplicaSet>(ListParams::default());
    let (slices, slice_changes) = ctx.reflector::<EndpointSlice>(ListParams::default());
    let (deployments, deployment_changes) = ctx.reflector::<Deployment>(ListParams::default());
    let (stateful_sets, sts_changes) = ctx.reflector::<StatefulSet>(ListParams::default());
    let (daemon_sets, ds_changes) = ctx.reflector::<DaemonSet>(ListParams::default());
    let (services, service_changes) = ctx.reflector::<Service>(ListParams::default());
    let caches = Caches {
        pods: pods.clone(),
        replica_sets: replica_sets.clone(),
        slices: slices.clone(),
        deployments: deployments.clone(),
        stateful_sets: stateful_sets.clone(),
        daemon_sets: daemon_sets.clone(),
        services: services.clone(),
    };
    let gc = Arc::new(Collector { client: ctx.client.clone(), caches, graph: Mutex::default() });
    fn dependent<K: Object>(gc: &Arc<Collector>) -> impl FnMut(&Change<K>) -> Vec<String> + Send + 'static {
        let gc = gc.clone();
        move |c| gc.on_dependent(c).into_iter().collect()
    }
    fn owner<K: Object>(gc: &Arc<Collector>) -> impl FnMut(&Change<K>) -> Vec<String> + Send + 'static {
        let gc = gc.clone();
        move |c| gc.on_owner(c)
    }
    let (both, prime) = (gc.clone(), gc.clone());
    controller::Controller::new(gc.clone())
        .watches(&pods, pod_changes, dependent(&gc))
        .watches(&replica_sets, rs_changes, move |c| {
            let mut keys: Vec<String> = both.on_dependent(c).into_iter().collect();
            keys.extend(both.on_owner(c));
            keys
        })
        .watches(&slices, slice_changes, dependent(&gc))
        .watches(&deployments, deployment_changes, owner(&gc))
        .watches(&stateful_sets, sts_changes, owner(&gc))
        .watches(&daemon_sets, ds_changes, owner(&gc))
        .watches(&services, service_changes, owner(&gc))
        .on_synced(move || {
            let missing = prime.scan();
            info!("Caches synced; garbage collector started.");
            missing
        })
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_graph_finds_dependents_by_owner_uid_and_forgets_replaced_references() {
        let mut g = Graph::default();
        g.set("Pod/default/a", vec!["rs-1".into()]);
        g.set("Pod/default/b", vec!["rs-1".into(), "rs-2".into()]);
        let mut of_rs1 = g.dependents_of("rs-1");
        of_rs1.sort();
        assert_eq!(of_rs1, ["Pod/default/a", "Pod/default/b"]);
        g.set("Pod/default/b", vec!["rs-2".into()]);
        assert_eq!(g.dependents_of("rs-1"), ["Pod/default/a"], "b no longer names rs-1");
        g.remove("Pod/default/a");
        assert!(g.dependents_of("rs-1").is_empty());
        assert!(!g.dependents.contains_key("rs-1"), "empty entries are dropped");
        g.set("Pod/default/b", vec![]);
        assert!(g.owners.is_empty() && g.dependents.is_empty());
    }
}
