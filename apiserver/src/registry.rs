//! The registry: every object in memory, written through to a durable [`Store`], with watch.
//!
//! Reads (get, list, the start of a watch) take a read lock on [`State`]. Writes go through one
//! writer task ([`writer`]) that owns the allocators and the revision counter: it drains every
//! pending request, decides each one against the committed state plus the batch so far, commits
//! the batch to the store once (group commit: one fsync for many writes), and only then publishes
//! the new objects and their events and answers the callers. A caller is never told a write
//! succeeded before it is durable, and no ClusterIP is handed out twice, because one task decides.
//!
//! Events go to a bounded history (for watches that resume from a resourceVersion) and to a
//! broadcast channel. A watcher that falls behind the channel is told its resourceVersion is too
//! old and relists, as with the real apiserver's watch cache: the writer never waits for anyone.
//!
//! # Layout
//! - [`admission`]: decoding, defaulting and validating a write before the writer decides it.
//! - [`writer`]: the write path: create, update, bind, delete, group commit.
//! - [`allocation`]: a Service write's ClusterIP and NodePorts, as a transaction that reverts.
//! - [`repair`]: rebuilding the allocators from the stored Services at start.
//! - [`watch`]: per-watcher tasks: history replay, filtering, batching.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, RwLock, RwLockReadGuard},
};

use ipnet::Ipv4Net;
use netlab_proto::apiserver::v1::{EventType, Resource};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    object::Stored,
    selector::{FieldSelector, LabelSelector},
    store::Store,
    validation::ValidationOptions,
};

pub mod admission;
pub mod allocation;
pub mod repair;
pub mod watch;
pub mod writer;

pub use watch::WatchSpec;

/// How the registry is set up.
#[derive(Debug, Clone)]
pub struct RegistryConfig {
    /// `--service-cluster-ip-range`.
    pub service_cidr: Ipv4Net,
    /// `--service-node-port-range`, inclusive.
    pub node_ports: (u16, u16),
    /// How many events the watch history keeps; older resourceVersions are "too old".
    pub history: usize,
    /// How many events a watcher may fall behind the writer before it is expired.
    pub watch_buffer: usize,
    /// What validation allows beyond upstream (`--allow-loopback-endpoints`).
    pub validation: ValidationOptions,
}

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
    fn new(revision: u64, history_cap: usize) -> Self {
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

    fn put(&mut self, obj: Arc<Stored>) {
        self.objects[obj.resource as usize].insert((obj.namespace.clone(), obj.name.clone()), obj);
    }

    fn remove(&mut self, resource: Resource, namespace: &str, name: &str) {
        self.objects[resource as usize].remove(&(namespace.to_string(), name.to_string()));
    }

    fn record(&mut self, event: Arc<Event>) {
        self.history.push_back(event);
        while self.history.len() > self.history_cap {
            if let Some(old) = self.history.pop_front() {
                self.oldest = old.object.rv;
            }
        }
    }

    /// Events after `rv`, oldest first.
    fn since(&self, rv: u64) -> impl Iterator<Item = &Arc<Event>> {
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

/// A handle to the registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
    writes: mpsc::Sender<writer::Request>,
    cfg: Arc<RegistryConfig>,
}

/// What a write asks for.
#[derive(Debug)]
pub enum WriteOp {
    /// Create an object (already decoded, defaulted, validated).
    Create {
        /// Its resource.
        resource: Resource,
        /// The object.
        object: Value,
    },
    /// Replace an object's spec and metadata (or, with `status_only`, its status).
    Update {
        /// Its resource.
        resource: Resource,
        /// The new object; a non-empty resourceVersion is a precondition.
        object: Value,
        /// The status subresource: only `status` is taken from `object`.
        status_only: bool,
    },
    /// Bind a pod to a node (pods/binding).
    Bind {
        /// The pod's namespace.
        namespace: String,
        /// The pod's name.
        name: String,
        /// The node it is bound to (`spec.nodeName` after the write).
        node: String,
    },
    /// Delete an object.
    Delete {
        /// Its resource.
        resource: Resource,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Delete only at this resourceVersion.
        precondition: Option<u64>,
        /// Pods: graceful deletion period.
        grace_period: Option<i64>,
    },
}

// === impl Registry ===

impl Registry {
    /// Loads the store, repairs the allocators, and starts the writer task (stopped by `shutdown`).
    pub async fn open(
        store: Arc<dyn Store>,
        cfg: RegistryConfig,
        shutdown: CancellationToken,
    ) -> Result<(Self, tokio::task::JoinHandle<()>)> {
        let loaded = {
            let store = store.clone();
            tokio::task::spawn_blocking(move || store.load())
                .await
                .map_err(|source| Error::Task { what: "loading the store", source })??
        };
        let mut state = State::new(loaded.revision, cfg.history);
        for (key, json) in loaded.objects {
            let Some(resource) = resource_of_key(&key) else {
                tracing::warn!(%key, "Skipping a stored key that belongs to no resource.");
                continue;
            };
            match Stored::from_json(resource, json) {
                Ok(obj) => state.put(Arc::new(obj)),
                Err(error) => tracing::error!(%key, %error, "Skipping an unreadable stored object."),
            }
        }
        let (events, _) = broadcast::channel(cfg.watch_buffer.max(16));
        let shared = Arc::new(Shared { state: RwLock::new(state), events });
        let (tx, rx) = mpsc::channel(4096);
        let (allocators, findings) = repair::rebuild(&shared.read(), &cfg);
        let handle = tokio::spawn(writer::run(shared.clone(), store, cfg.clone(), allocators, rx, shutdown));
        let registry = Self { shared, writes: tx, cfg: Arc::new(cfg) };
        repair::report(&registry, findings).await;
        Ok((registry, handle))
    }

    /// The configuration.
    pub fn config(&self) -> &RegistryConfig {
        &self.cfg
    }

    /// One object.
    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Result<Arc<Stored>> {
        let ns = if resource.namespaced() { namespace } else { "" };
        self.shared
            .read()
            .get(resource, ns, name)
            .cloned()
            .ok_or_else(|| Error::NotFound { resource, name: name.to_string() })
    }

    /// Objects matching the selectors, and the revision they were read at.
    pub fn list(
        &self,
        resource: Resource,
        namespace: &str,
        labels: &LabelSelector,
        fields: &FieldSelector,
    ) -> (Vec<Arc<Stored>>, u64) {
        let state = self.shared.read();
        let items = state
            .iter(resource, namespace)
            .filter(|o| labels.matches(&o.labels) && fields.matches(&o.value))
            .cloned()
            .collect();
        (items, state.revision)
    }

    /// Applies one write; returns the object as stored (for delete: as it was deleted).
    pub async fn write(&self, op: WriteOp) -> Result<Arc<Stored>> {
        let (reply, rx) = oneshot::channel();
        let request = writer::Request { op, reply, span: tracing::Span::current() };
        self.writes
            .send(request)
            .await
            .map_err(|_| Error::Internal("the apiserver is shutting down".into()))?;
        rx.await.map_err(|_| Error::Internal("the apiserver is shutting down".into()))?
    }

    /// Creates an object from its request body (Kubernetes JSON).
    pub async fn create(&self, resource: Resource, namespace: &str, body: &[u8]) -> Result<Arc<Stored>> {
        let object = admission::prepare_create(resource, namespace, body, &self.cfg.validation)?;
        self.write(WriteOp::Create { resource, object }).await
    }

    /// Updates an object (or, with `status_only`, its status) from its request body.
    pub async fn update(
        &self,
        resource: Resource,
        namespace: &str,
        body: &[u8],
        status_only: bool,
    ) -> Result<Arc<Stored>> {
        let object = admission::prepare_update(resource, namespace, body)?;
        self.write(WriteOp::Update { resource, object, status_only }).await
    }

    /// Deletes an object.
    pub async fn delete(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        precondition: Option<u64>,
        grace_period: Option<i64>,
    ) -> Result<Arc<Stored>> {
        let namespace = if resource.namespaced() { namespace.to_string() } else { String::new() };
        self.write(WriteOp::Delete {
            resource,
            namespace,
            name: name.to_string(),
            precondition,
            grace_period,
        })
        .await
    }

    /// Binds a pod to a node, as the pods/binding subresource does.
    pub async fn bind(&self, namespace: &str, name: &str, node: &str) -> Result<Arc<Stored>> {
        if node.is_empty() {
            return Err(Error::BadRequest("target.name: Required value".into()));
        }
        self.write(WriteOp::Bind { namespace: namespace.into(), name: name.into(), node: node.into() }).await
    }

    /// Starts a watch. The receiver yields batches of events until the client goes away, the
    /// server shuts down, or the watcher falls too far behind (then an [`Error::Expired`]).
    pub fn watch(
        &self,
        spec: WatchSpec,
        shutdown: CancellationToken,
    ) -> Result<mpsc::Receiver<Result<Vec<watch::Item>>>> {
        watch::start(&self.shared, spec, shutdown)
    }
}

/// The resource whose etcd key prefix `key` starts with.
fn resource_of_key(key: &str) -> Option<Resource> {
    netlab_proto::ALL_RESOURCES.into_iter().find(|r| {
        let probe = crate::store::key(*r, "x", "y");
        let prefix = probe.trim_end_matches(if r.namespaced() { "x/y" } else { "y" });
        key.starts_with(prefix)
    })
}

#[cfg(test)]
mod tests;
