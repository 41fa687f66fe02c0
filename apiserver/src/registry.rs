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
//! - [`exhaustion`]: ExhaustionChaos `service-cidr`, which holds the Service CIDR full.
//! - [`repair`]: rebuilding the allocators from the stored Services at start.
//! - [`state`]: the committed objects, the revision and the event history; [`config`]: its setup.
//! - [`watch`]: per-watcher tasks: history replay, filtering, batching.

use std::sync::{Arc, RwLock};

use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    object::{self, Stored},
    pod_identity::PodIdentityWebhook,
    selector::{FieldSelector, LabelSelector},
    store::Store,
};

pub mod admission;
pub mod allocation;
pub mod config;
pub mod exhaustion;
pub mod repair;
pub mod state;
pub mod watch;
pub mod writer;

pub use config::RegistryConfig;
pub(crate) use state::Shared;
pub use state::{Event, State};
pub use watch::WatchSpec;
pub use writer::WriteOp;

/// A handle to the registry; cheap to clone.
#[derive(Clone)]
pub struct Registry {
    shared: Arc<Shared>,
    writes: mpsc::Sender<writer::Request>,
    cfg: Arc<RegistryConfig>,
    /// EKS's pod identity webhook, when the cluster runs it.
    pod_identity: Option<Arc<PodIdentityWebhook>>,
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
        let registry = Self { shared, writes: tx, cfg: Arc::new(cfg), pod_identity: None };
        registry.report_repairs(findings).await;
        Ok((registry, handle))
    }

    /// Logs each repair finding and records it as a Warning Event on its Service.
    async fn report_repairs(&self, findings: Vec<repair::Finding>) {
        for finding in findings {
            finding.log();
            let event = WriteOp::Create { resource: Resource::Events, object: finding.event() };
            if let Err(error) = self.write(event).await {
                tracing::warn!(%error, "Could not record the repair event.");
            }
        }
    }

    /// Runs EKS's pod identity webhook on every pod created through this handle (and its
    /// clones made after).
    pub fn with_pod_identity(mut self, webhook: PodIdentityWebhook) -> Self {
        self.pod_identity = Some(Arc::new(webhook));
        self
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
        let mutated = match (&self.pod_identity, resource) {
            (Some(webhook), Resource::Pods) => self.pod_identity_webhook(webhook, namespace, body),
            _ => None,
        };
        let body = mutated.as_deref().unwrap_or(body);
        let object = admission::prepare_create(resource, namespace, body, &self.cfg.validation)?;
        self.write(WriteOp::Create { resource, object }).await
    }

    /// The pod body as the pod identity webhook leaves it, if it changes it. Like the webhook
    /// (failurePolicy Ignore), a body it cannot read or an account that does not exist leaves
    /// the pod alone; admission then judges the body as sent.
    fn pod_identity_webhook(
        &self,
        webhook: &PodIdentityWebhook,
        namespace: &str,
        body: &[u8],
    ) -> Option<Vec<u8>> {
        let mut pod: Value = serde_json::from_slice(body).ok()?;
        let ns = object::namespace(&pod).to_string();
        let ns = if ns.is_empty() { namespace } else { ns.as_str() };
        let spec = pod.get("spec")?;
        let account = ["serviceAccountName", "serviceAccount"]
            .iter()
            .find_map(|k| spec.get(*k).and_then(Value::as_str).filter(|n| !n.is_empty()))
            .unwrap_or("default")
            .to_string();
        let account =
            self.get(Resource::ServiceAccounts, if ns.is_empty() { "default" } else { ns }, &account).ok()?;
        webhook.mutate(&mut pod, &account.value).then(|| serde_json::to_vec(&pod).ok())?
    }

    /// Updates an object (or, with `status_only`, its status) from its request body.
    pub async fn update(
        &self,
        resource: Resource,
        namespace: &str,
        body: &[u8],
        status_only: bool,
    ) -> Result<Arc<Stored>> {
        let object = admission::prepare_update(resource, namespace, body, status_only)?;
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
