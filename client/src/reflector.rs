//! List-watch into a local cache, as client-go's reflector and informer do: list, replace the
//! cache, watch from the list's resourceVersion, apply events; when the apiserver says the
//! resourceVersion is too old (Expired), list again; when the connection breaks, watch again from
//! the last resourceVersion seen. Every change is also sent on a channel so controllers can queue
//! the keys they must reconcile. After a relist every listed object is sent again, so a controller
//! that missed events still converges.

use std::{
    collections::BTreeMap,
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

    /// The object.
    pub fn object(&self) -> &Arc<K> {
        match self {
            Change::Applied(o) | Change::Deleted(o) => o,
        }
    }
}

/// The local copy of every object the reflector watches.
pub struct Cache<K> {
    map: Arc<RwLock<BTreeMap<String, Arc<K>>>>,
    synced: watch::Receiver<bool>,
}

impl<K> Clone for Cache<K> {
    fn clone(&self) -> Self {
        Self { map: self.map.clone(), synced: self.synced.clone() }
    }
}

// === impl Cache ===

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
        *self.synced.borrow()
    }

    /// Waits for the first list.
    pub async fn wait_synced(&self) {
        let mut rx = self.synced.clone();
        let _ = rx.wait_for(|s| *s).await;
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
    let map = Arc::new(RwLock::new(BTreeMap::new()));
    let (synced_tx, synced) = watch::channel(false);
    let (tx, rx) = mpsc::unbounded_channel();
    let cache = Cache { map: map.clone(), synced };
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = run::<K>(client, params, map, synced_tx, tx) => {}
        }
    });
    (cache, rx)
}

async fn run<K: Object>(
    client: Client,
    params: ListParams,
    map: Arc<RwLock<BTreeMap<String, Arc<K>>>>,
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
                    let gone: Vec<Arc<K>> = {
                        let mut m = map.write().unwrap_or_else(|e| e.into_inner());
                        let gone = m.iter().filter(|(k, _)| !fresh.contains_key(*k)).map(|(_, v)| v.clone()).collect();
                        *m = fresh.clone();
                        gone
                    };
                    for o in gone {
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
                        let mut m = map.write().unwrap_or_else(|e| e.into_inner());
                        if ev.r#type == EventType::Deleted as i32 {
                            m.remove(&key);
                            drop(m);
                            let _ = tx.send(Change::Deleted(o));
                        } else if ev.r#type != EventType::Bookmark as i32 {
                            m.insert(key, o.clone());
                            drop(m);
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
