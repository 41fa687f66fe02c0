//! The committed state and its change feed: every object in memory by resource, the revision, and
//! the bounded event history a watch resumes from. The writer changes it; readers and watchers
//! read it; the registry handle ties them together.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, RwLock, RwLockReadGuard},
};

use netlab_proto::apiserver::v1::{EventType, Resource};
use tokio::sync::broadcast;

use crate::object::Stored;

/// A change to one object, as watchers see it.
#[derive(Debug)]
pub struct Event {
    /// ADDED, MODIFIED or DELETED.
    pub kind: EventType,
    /// The object after the change (for DELETED: its last state, at the deletion's revision).
    pub object: Arc<Stored>,
    /// The object before the change, so selector watchers see objects leave their selection.
    pub prev: Option<Arc<Stored>>,
}

type Objects = BTreeMap<(String, String), Arc<Stored>>;

/// The committed state: what readers see.
pub struct State {
    /// The last committed resourceVersion.
    pub revision: u64,
    /// A watch may resume from any resourceVersion >= this.
    pub oldest: u64,
    objects: Vec<Objects>,
    history: VecDeque<Arc<Event>>,
    history_cap: usize,
}

// === impl State ===

impl State {
    pub(super) fn new(revision: u64, history_cap: usize) -> Self {
        Self {
            revision,
            oldest: revision,
            objects: vec![Objects::new(); netlab_proto::ALL_RESOURCES.len() + 1],
            history: VecDeque::new(),
            history_cap,
        }
    }

    /// One object.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<&Arc<Stored>> {
        self.objects[resource as usize].get(&(namespace.to_string(), name.to_string()))
    }

    /// Every object of `resource`, in one namespace or (for "") all.
    pub fn iter<'a>(
        &'a self,
        resource: Resource,
        namespace: &'a str,
    ) -> Box<dyn Iterator<Item = &'a Arc<Stored>> + 'a> {
        let map = &self.objects[resource as usize];
        if namespace.is_empty() || !resource.namespaced() {
            Box::new(map.values())
        } else {
            Box::new(
                map.range((namespace.to_string(), String::new())..)
                    .take_while(move |((ns, _), _)| ns == namespace)
                    .map(|(_, v)| v),
            )
        }
    }

    pub(super) fn put(&mut self, obj: Arc<Stored>) {
        self.objects[obj.resource as usize].insert((obj.namespace.clone(), obj.name.clone()), obj);
    }

    pub(super) fn remove(&mut self, resource: Resource, namespace: &str, name: &str) {
        self.objects[resource as usize].remove(&(namespace.to_string(), name.to_string()));
    }

    pub(super) fn record(&mut self, event: Arc<Event>) {
        self.history.push_back(event);
        while self.history.len() > self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.oldest = old.object.rv;
            }
        }
    }

    /// Events after `rv`, oldest first.
    pub(super) fn since(&self, rv: u64) -> impl Iterator<Item = &Arc<Event>> {
        let start = self.history.partition_point(|e| e.object.rv <= rv);
        self.history.range(start..)
    }
}

/// Shared between the registry handles, the writer and the watchers.
pub(crate) struct Shared {
    pub(crate) state: RwLock<State>,
    pub(crate) events: broadcast::Sender<Arc<Event>>,
}

// === impl Shared ===

impl Shared {
    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        // A writer that panicked mid-update leaves the lock poisoned; the state it guards is only
        // ever replaced whole-object at a time, so reading on is safe.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }
}
