//! List-watch into a local cache, as client-go's reflector and informer do: list, replace the
//! cache, watch from the list's resourceVersion, apply events; when the apiserver says the
//! resourceVersion is too old (Expired), list again; when the connection breaks, watch again from
//! the last resourceVersion seen. Every change is also sent on a channel so controllers can queue
//! the keys they must reconcile. After a relist every listed object is sent again, so a controller
//! that missed events still converges.
//!
//! [`key_reflector`] is the same list-watch for a consumer that keeps its own index of what it
//! needs (the cluster DNS): it remembers only each object's key, which a relist needs to tell
//! what was deleted while the watch was down. Keeping 10,000 decoded Services and EndpointSlices
//! only for that costs the DNS two thirds of its heap.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::{Arc, RwLock},
    time::Duration,
};

use netlab_proto::apiserver::v1::EventType;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::{Client, ListParams, Object, key_of, object};

/// How long to wait before retrying after the apiserver could not be reached.
const RETRY: Duration = Duration::from_secs(1);

/// A change the reflector saw.
#[derive(Debug, Clone)]
pub enum Change<K> {
    /// Added or modified (or re-listed).
    Applied(Arc<K>),
    /// Deleted; the object's last state.
    Deleted(Arc<K>),
}

// === impl Change ===

impl<K: Object> Change<K> {
    /// The object's cache key.
    pub fn key(&self) -> String {
        match self {
            Change::Applied(o) | Change::Deleted(o) => key_of(o.as_ref()),
        }
    }

    /// The object as it is now (for a deletion: as it was last seen).
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// Whether a reflector's first list has completed.
#[derive(Clone)]
pub struct Synced(watch::Receiver<bool>);

// === impl Synced ===

impl Synced {
    /// Whether the first list has completed.
    pub fn is_synced(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits for the first list.
    pub async fn wait_synced(&self) {
        let mut rx = self.0.clone();
        let _ = rx.wait_for(|s| *s).await;
    }
}

/// The local copy of every object the reflector watches.
pub struct Cache<K> {
    map: Arc<RwLock<BTreeMap<String, Arc<K>>>>,
    synced: Synced,
}

impl<K> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Self { map: self.map.clone(), synced: self.synced.clone() }
    }
}

// === impl Cache ===

#[cfg(any(test, feature = "test-util"))]
impl<K: Object> Cache<K> {
    /// A synced cache holding `objects`, for tests of code that reads caches.
    pub fn from_objects(objects: impl IntoIterator<Item = K>) -> Self {
        let map = objects.into_iter().map(|o| (key_of(&o), Arc::new(o))).collect();
        Self { map: Arc::new(RwLock::new(map)), synced: Synced(watch::channel(true).1) }
    }
}

impl<K: Object> Cache<K> {
    /// One object by `namespace/name` (or `name`).
    pub fn get(&self, key: &str) -> Option<Arc<K>> {
        self.read().get(key).cloned()
    }

    /// Every object.
    pub fn list(&self) -> Vec<Arc<K>> {
        self.read().values().cloned().collect()
    }

    /// Every object in `namespace`.
    pub fn list_namespace(&self, namespace: &str) -> Vec<Arc<K>> {
        let prefix = format!("{namespace}/");
        self.read()
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether the first list has completed.
    pub fn is_synced(&self) -> bool {
        self.synced.is_synced()
    }

    /// Waits for the first list.
    pub async fn wait_synced(&self) {
        self.synced.wait_synced().await;
    }

    /// The first-list flag on its own.
    pub fn synced(&self) -> Synced {
        self.synced.clone()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<K>>> {
        // Writers replace whole entries; a poisoned lock still holds a consistent map.
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts a reflector for `K` filtered by `params`; it runs until `shutdown`.
pub fn reflector<K: Object>(
    client: Client,
    params: ListParams,
    shutdown: CancellationToken,
) -> (Cache<K>, mpsc::UnboundedReceiver<Change<K>>) {
    let (cache, rx, task) = reflector_task(client, params);
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = task => {}
        }
    });
    (cache, rx)
}

/// A reflector as [`reflector`] makes it, with its task handed back instead of spawned, for a
/// process that runs every task on its own tracker (and stops them its own way). The task runs
/// until dropped.
pub fn reflector_task<K: Object>(
    client: Client,
    params: ListParams,
) -> (Cache<K>, mpsc::UnboundedReceiver<Change<K>>, impl Future<Output = ()> + Send + 'static) {
    let map = Arc::new(RwLock::new(BTreeMap::new()));
    let (synced_tx, synced) = watch::channel(false);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = run::<K, _>(client, params, map.clone(), synced_tx, tx);
    (Cache { map, synced: Synced(synced) }, rx, task)
}

/// Starts a reflector for `K` that remembers only keys: the changes are the same as
/// [`reflector`]'s, except that a deletion found by a relist (missed while the watch was down)
/// carries an object with only its name and namespace.
pub fn key_reflector<K: Object + Default>(
    client: Client,
    params: ListParams,
    shutdown: CancellationToken,
) -> (Synced, mpsc::UnboundedReceiver<Change<K>>) {
    spawn::<K, _>(client, params, Keys::default(), shutdown)
}

fn spawn<K: Object, M: Memory<K>>(
    client: Client,
    params: ListParams,
    memory: M,
    shutdown: CancellationToken,
) -> (Synced, mpsc::UnboundedReceiver<Change<K>>) {
    let (synced_tx, synced) = watch::channel(false);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = run::<K, M>(client, params, memory, synced_tx, tx) => {}
        }
    });
    (Synced(synced), rx)
}

/// What a reflector remembers between lists.
trait Memory<K>: Send + 'static {
    /// Replaces everything with a fresh list; returns what is gone.
    fn replace(&mut self, fresh: &BTreeMap<String, Arc<K>>) -> Vec<Arc<K>>;
    fn insert(&mut self, key: String, object: &Arc<K>);
    fn remove(&mut self, key: &str);
}

impl<K: Object> Memory<K> for Arc<RwLock<BTreeMap<String, Arc<K>>>> {
    fn replace(&mut self, fresh: &BTreeMap<String, Arc<K>>) -> Vec<Arc<K>> {
        let mut m = self.write().unwrap_or_else(|e| e.into_inner());
        let gone = m.iter().filter(|(k, _)| !fresh.contains_key(*k)).map(|(_, v)| v.clone()).collect();
        *m = fresh.clone();
        gone
    }

    fn insert(&mut self, key: String, object: &Arc<K>) {
        self.write().unwrap_or_else(|e| e.into_inner()).insert(key, object.clone());
    }

    fn remove(&mut self, key: &str) {
        self.write().unwrap_or_else(|e| e.into_inner()).remove(key);
    }
}

/// Keys only (see [`key_reflector`]).
#[derive(Default)]
struct Keys(BTreeSet<String>);

impl<K: Object + Default> Memory<K> for Keys {
    fn replace(&mut self, fresh: &BTreeMap<String, Arc<K>>) -> Vec<Arc<K>> {
        let gone =
            self.0.iter().filter(|k| !fresh.contains_key(*k)).map(|k| Arc::new(tombstone::<K>(k))).collect();
        self.0 = fresh.keys().cloned().collect();
        gone
    }

    fn insert(&mut self, key: String, _: &Arc<K>) {
        self.0.insert(key);
    }

    fn remove(&mut self, key: &str) {
        self.0.remove(key);
    }
}

/// The object a relist reports deleted when only its key was kept: name and namespace from `key`
/// (`namespace/name` or `name`), nothing else, as client-go's `DeletedFinalStateUnknown` stands
/// for an object whose last state the informer did not see. Consumers of [`key_reflector`]
/// identify what to forget by name, which is all a deletion needs.
fn tombstone<K: Object + Default>(key: &str) -> K {
    let mut o = K::default();
    let meta = o.metadata_mut();
    match key.split_once('/') {
        Some((ns, name)) => {
            meta.namespace = Some(ns.to_string());
            meta.name = Some(name.to_string());
        }
        None => meta.name = Some(key.to_string()),
    }
    o
}

async fn run<K: Object, M: Memory<K>>(
    client: Client,
    params: ListParams,
    mut memory: M,
    synced: watch::Sender<bool>,
    tx: mpsc::UnboundedSender<Change<K>>,
) {
    let kind = K::KIND;
    let mut from: Option<u64> = None;
    loop {
        let rv = match from {
            Some(rv) => rv,
            None => match client.list::<K>(&params).await {
                Ok((items, rv)) => {
                    let fresh: BTreeMap<String, Arc<K>> =
                        items.into_iter().map(|o| (key_of(&o), Arc::new(o))).collect();
                    for o in memory.replace(&fresh) {
                        let _ = tx.send(Change::Deleted(o));
                    }
                    for o in fresh.into_values() {
                        let _ = tx.send(Change::Applied(o));
                    }
                    synced.send_replace(true);
                    tracing::debug!(kind, rv, "Listed.");
                    rv
                }
                Err(error) => {
                    tracing::warn!(kind, %error, "List failed; retrying.");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let mut stream = match client.watch::<K>(&params, Some(rv)).await {
            Ok(s) => s,
            Err(e) if e.is_expired() => {
                from = None;
                continue;
            }
            Err(error) => {
                tracing::warn!(kind, %error, "Watch failed; retrying.");
                tokio::time::sleep(RETRY).await;
                from = Some(rv);
                continue;
            }
        };
        let mut last = rv;
        from = loop {
            match stream.message().await {
                Ok(Some(batch)) => {
                    for ev in batch.events {
                        let Some(obj) = ev.object else { continue };
                        last = last.max(obj.resource_version);
                        let Ok(o) = object::decode::<K>(&obj.json) else {
                            tracing::warn!(kind, name = %obj.name, "Undecodable watch event.");
                            continue;
                        };
                        let o = Arc::new(o);
                        let key = key_of(o.as_ref());
                        if ev.r#type == EventType::Deleted as i32 {
                            memory.remove(&key);
                            let _ = tx.send(Change::Deleted(o));
                        } else if ev.r#type != EventType::Bookmark as i32 {
                            memory.insert(key, &o);
                            let _ = tx.send(Change::Applied(o));
                        }
                    }
                }
                Ok(None) => break Some(last),
                Err(status) => {
                    let e = crate::Error::from(status);
                    if e.is_expired() {
                        tracing::info!(kind, %e, "Watch expired; relisting.");
                        break None;
                    }
                    tracing::warn!(kind, error = %e, "Watch broke; resuming.");
                    tokio::time::sleep(RETRY).await;
                    break Some(last);
                }
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Namespace, Service};

    use super::*;

    fn service(ns: &str, name: &str) -> Arc<Service> {
        let mut s = Service::default();
        s.metadata.namespace = Some(ns.into());
        s.metadata.name = Some(name.into());
        s.metadata.labels = Some([("app".to_string(), name.to_string())].into());
        Arc::new(s)
    }

    fn listed(items: &[Arc<Service>]) -> BTreeMap<String, Arc<Service>> {
        items.iter().map(|s| (key_of(s.as_ref()), s.clone())).collect()
    }

    #[test]
    fn keys_report_what_a_relist_lost_by_name_and_namespace() {
        let mut keys = Keys::default();
        let first = Memory::<Service>::replace(
            &mut keys,
            &listed(&[service("shop", "cart"), service("shop", "orders")]),
        );
        assert!(first.is_empty());
        // A watch event between the lists, then a relist that no longer has `cart` or `late`.
        Memory::<Service>::insert(&mut keys, "other/late".into(), &service("other", "late"));
        let gone = Memory::<Service>::replace(&mut keys, &listed(&[service("shop", "orders")]));
        let gone: Vec<(Option<String>, Option<String>)> =
            gone.iter().map(|s| (s.metadata.namespace.clone(), s.metadata.name.clone())).collect();
        assert_eq!(
            gone,
            [(Some("other".into()), Some("late".into())), (Some("shop".into()), Some("cart".into())),]
        );
        assert_eq!(keys.0.iter().collect::<Vec<_>>(), ["shop/orders"]);
        Memory::<Service>::remove(&mut keys, "shop/orders");
        assert!(Memory::<Service>::replace(&mut keys, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn objects_report_what_a_relist_lost_whole() {
        let mut map: Arc<RwLock<BTreeMap<String, Arc<Service>>>> = Arc::default();
        map.replace(&listed(&[service("shop", "cart")]));
        let gone = map.replace(&BTreeMap::new());
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].metadata.labels, service("shop", "cart").metadata.labels);
    }

    #[test]
    fn tombstones_of_cluster_scoped_objects_have_no_namespace() {
        let ns = tombstone::<Namespace>("shop");
        assert_eq!((ns.metadata.namespace, ns.metadata.name.as_deref()), (None, Some("shop")));
    }
}
