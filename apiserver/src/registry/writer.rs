//! The write path. One task owns the allocators and the revision counter and decides every write
//! in arrival order; requests that arrive while a commit is in flight form the next batch, which
//! is committed with one store transaction (group commit).
//!
//! Requests arrive admitted ([`super::admission`]); a Service's ClusterIP and NodePorts are
//! taken in a [`allocation::Txn`] that is committed once the write is decided and reverted
//! when it fails.

use std::{collections::HashMap, sync::Arc};

use netlab_proto::apiserver::v1::{EventType, Resource};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{
    admission,
    allocation::{self, Allocators},
    config::RegistryConfig,
    exhaustion, repair,
    state::{Event, Shared},
};
use crate::{
    error::{Error, Result},
    object::{self, Stored},
    store::{self, Batch, Op, Store},
    validation::ValidationOptions,
};

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

/// At most this many requests share one commit.
const MAX_BATCH: usize = 512;

/// One queued write.
pub(crate) struct Request {
    pub(crate) op: WriteOp,
    pub(crate) reply: oneshot::Sender<Result<Arc<Stored>>>,
    /// The caller's span, so the write's decisions land in the caller's trace.
    pub(crate) span: tracing::Span,
}

/// The writer loop; ends when `shutdown` fires or every registry handle is gone.
pub(crate) async fn run(
    shared: Arc<Shared>,
    store: Arc<dyn Store>,
    cfg: RegistryConfig,
    mut alloc: Allocators,
    mut rx: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
) {
    let mut queue = Vec::with_capacity(MAX_BATCH);
    loop {
        let n = tokio::select! {
            _ = shutdown.cancelled() => break,
            n = rx.recv_many(&mut queue, MAX_BATCH) => n,
        };
        if n == 0 {
            break;
        }
        let revision = shared.read().revision;
        let mut batch = Pending::new(&shared, &mut alloc, &cfg.validation, revision);
        let mut replies = Vec::with_capacity(n);
        for req in queue.drain(..) {
            let result = req.span.in_scope(|| batch.apply(req.op));
            replies.push((req.reply, req.span, result));
        }
        let Pending { overlay, ops, events, revision: last, .. } = batch;
        if ops.is_empty() {
            for (reply, _, result) in replies {
                let _ = reply.send(result);
            }
            continue;
        }
        let commit = Batch { revision: last, ops };
        let store = store.clone();
        let committed = tokio::task::spawn_blocking(move || store.commit(&commit))
            .instrument(tracing::debug_span!("store.commit", writes = replies.len()))
            .await;
        match committed {
            Ok(Ok(())) => {
                let mut state = shared.state.write().unwrap_or_else(|e| e.into_inner());
                for ((resource, ns, name), obj) in overlay {
                    match obj {
                        Some(obj) => state.put(obj),
                        None => state.remove(resource, &ns, &name),
                    }
                }
                state.revision = last;
                for event in events {
                    state.record(event.clone());
                    // Sent under the lock, so a watch that registers under the read lock sees
                    // each event exactly once: in its snapshot or on the channel. No receivers is
                    // fine.
                    let _ = shared.events.send(event);
                }
                drop(state);
                for (reply, _, result) in replies {
                    let _ = reply.send(result);
                }
            }
            failed => {
                // Every write of the batch fails with the same error: shared, so each keeps it as
                // its source.
                let error: Arc<dyn std::error::Error + Send + Sync> = match failed {
                    Ok(Err(e)) => Arc::new(e),
                    Err(e) => Arc::new(e),
                    Ok(Ok(())) => unreachable!("handled above"),
                };
                tracing::error!(%error, writes = replies.len(), "Store commit failed; failing the batch.");
                // Allocations made for the failed batch are undone by rebuilding from what is
                // committed.
                alloc = repair::rebuild(&shared.read(), &cfg).0;
                for (reply, _, _) in replies {
                    let _ = reply.send(Err(Error::Commit(error.clone())));
                }
            }
        }
    }
    tracing::debug!("Writer stopped.");
}

type Key = (Resource, String, String);

/// A batch being decided: what it changes, on top of the committed state.
struct Pending<'a> {
    shared: &'a Shared,
    alloc: &'a mut Allocators,
    opts: &'a ValidationOptions,
    revision: u64,
    overlay: HashMap<Key, Option<Arc<Stored>>>,
    ops: Vec<Op>,
    events: Vec<Arc<Event>>,
}

// === impl Pending ===

impl<'a> Pending<'a> {
    fn new(
        shared: &'a Shared,
        alloc: &'a mut Allocators,
        opts: &'a ValidationOptions,
        revision: u64,
    ) -> Self {
        Self { shared, alloc, opts, revision, overlay: HashMap::new(), ops: Vec::new(), events: Vec::new() }
    }

    fn apply(&mut self, op: WriteOp) -> Result<Arc<Stored>> {
        match op {
            WriteOp::Create { resource, object } => self.create(resource, object),
            WriteOp::Update { resource, object, status_only } => self.update(resource, object, status_only),
            WriteOp::Bind { namespace, name, node } => self.bind(&namespace, &name, &node),
            WriteOp::Delete { resource, namespace, name, precondition, grace_period } => {
                self.delete(resource, &namespace, &name, precondition, grace_period)
            }
        }
    }

    /// The object as the batch sees it: its own writes first, then the committed state.
    fn lookup(&self, resource: Resource, ns: &str, name: &str) -> Option<Arc<Stored>> {
        let ns = if resource.namespaced() { ns } else { "" };
        match self.overlay.get(&(resource, ns.to_string(), name.to_string())) {
            Some(hit) => hit.clone(),
            None => self.shared.read().get(resource, ns, name).cloned(),
        }
    }

    fn create(&mut self, resource: Resource, mut obj: Value) -> Result<Arc<Stored>> {
        let ns = object::namespace(&obj).to_string();
        if resource.namespaced() && self.lookup(Resource::Namespaces, "", &ns).is_none() {
            return Err(Error::namespace_not_found(&ns));
        }
        if object::name(&obj).is_empty() {
            let prefix = object::generate_name(&obj).to_string();
            let name = loop {
                let candidate = format!("{prefix}{}", object::random_suffix());
                if self.lookup(resource, &ns, &candidate).is_none() {
                    break candidate;
                }
            };
            object::set_meta(&mut obj, "name", Some(name.into()));
        }
        let name = object::name(&obj).to_string();
        if self.lookup(resource, &ns, &name).is_some() {
            return Err(Error::AlreadyExists { resource, name });
        }
        // Nothing below fails: the allocation is decided with the write.
        if resource == Resource::Services {
            self.allocate_service(&mut obj, None)?;
        }
        let meta = object::meta_mut(&mut obj);
        meta.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        meta.insert("creationTimestamp".into(), object::now_rfc3339().into());
        meta.remove("deletionTimestamp");
        meta.remove("deletionGracePeriodSeconds");
        if obj.get("spec").is_some() {
            object::set_meta(&mut obj, "generation", Some(1.into()));
        }
        Ok(self.put(resource, obj, EventType::Added, None))
    }

    fn update(&mut self, resource: Resource, mut obj: Value, status_only: bool) -> Result<Arc<Stored>> {
        let ns = object::namespace(&obj).to_string();
        let name = object::name(&obj).to_string();
        let Some(old) = self.lookup(resource, &ns, &name) else {
            return Err(Error::NotFound { resource, name });
        };
        if object::resource_version(&obj).is_some_and(|rv| rv != old.rv) {
            return Err(Error::Conflict { resource, name });
        }
        if status_only {
            let mut merged = old.value.clone();
            if let (Some(map), status) = (merged.as_object_mut(), obj.get("status").cloned()) {
                match status {
                    Some(s) => map.insert("status".into(), s),
                    None => map.remove("status"),
                };
            }
            obj = merged;
        } else {
            // The main resource never writes status (upstream PrepareForUpdate), except for
            // Nodes' and Events', which have no status subresource semantics here.
            if !matches!(resource, Resource::Events)
                && let Some(map) = obj.as_object_mut()
            {
                match old.value.get("status") {
                    Some(s) => map.insert("status".into(), s.clone()),
                    None => map.remove("status"),
                };
            }
            for field in ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds"] {
                object::set_meta(&mut obj, field, old.value.pointer(&format!("/metadata/{field}")).cloned());
            }
            if resource == Resource::Services {
                allocation::keep_allocated(&mut obj, &old.value);
            }
            let generation = old.value.pointer("/metadata/generation").and_then(Value::as_i64);
            let generation = match (generation, obj.get("spec") != old.value.get("spec")) {
                (Some(g), true) => Some(g + 1),
                (g, _) => g,
            };
            object::set_meta(&mut obj, "generation", generation.map(Into::into));
            if resource == Resource::DaemonSets {
                admission::prepare_daemon_set(&mut obj, Some(&old.value));
            }
            admission::validate_update(resource, &old.value, &obj, self.opts)?;
            if resource == Resource::Services {
                self.allocate_service(&mut obj, Some(&old.value))?;
            }
        }
        // A write that changes nothing is not a write: no new resourceVersion, no event.
        object::set_meta(&mut obj, "resourceVersion", Some(old.rv.to_string().into()));
        if obj == old.value {
            return Ok(old);
        }
        // Removing the last finalizer of an object being deleted completes the deletion.
        if obj.pointer("/metadata/deletionTimestamp").is_some() && !object::has_finalizers(&obj) {
            return Ok(self.remove(old));
        }
        Ok(self.put(resource, obj, EventType::Modified, Some(old)))
    }

    /// Allocates what a Service write needs, unless a `service-cidr` fault holds the range full;
    /// a refusal is counted on the fault, in this batch.
    fn allocate_service(&mut self, svc: &mut Value, old: Option<&Value>) -> Result<()> {
        let faults = self.all_of(Resource::ExhaustionChaos);
        let mut exhaustion = exhaustion::in_force(faults.iter().map(|f| &**f), jiff::Timestamp::now());
        let error = match self.alloc.allocate_service(svc, old, exhaustion.as_mut()) {
            Ok(txn) => {
                txn.commit();
                return Ok(());
            }
            Err(e) => e,
        };
        if let Some(ex) = exhaustion.filter(|ex| ex.refused)
            && let Some(fault) = self.lookup(Resource::ExhaustionChaos, &ex.namespace, &ex.name)
        {
            let counted = exhaustion::count_refusal(&fault.value);
            self.put(Resource::ExhaustionChaos, counted, EventType::Modified, Some(fault));
        }
        Err(error)
    }

    fn bind(&mut self, ns: &str, name: &str, node: &str) -> Result<Arc<Stored>> {
        let Some(old) = self.lookup(Resource::Pods, ns, name) else {
            return Err(Error::NotFound { resource: Resource::Pods, name: name.to_string() });
        };
        if old.value.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(Error::Unfulfilled {
                on: "pods/binding".into(),
                name: name.to_string(),
                detail: format!("pod {name} is being deleted, cannot be assigned to a host"),
            });
        }
        if let Some(bound) =
            old.value.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
        {
            return Err(Error::Unfulfilled {
                on: "pods/binding".into(),
                name: name.to_string(),
                detail: format!("pod {name} is already assigned to node \"{bound}\""),
            });
        }
        let mut pod = old.value.clone();
        pod["spec"]["nodeName"] = node.into();
        // upstream assignPod: the PodScheduled condition becomes True with the binding.
        let now = object::now_rfc3339();
        let status = pod
            .as_object_mut()
            .map(|m| m.entry("status").or_insert_with(|| json!({})))
            .and_then(Value::as_object_mut);
        if let Some(status) = status {
            let conditions = status.entry("conditions").or_insert_with(|| json!([]));
            if let Some(list) = conditions.as_array_mut() {
                list.retain(|c| c.get("type").and_then(Value::as_str) != Some("PodScheduled"));
                list.push(json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}));
            }
        }
        Ok(self.put(Resource::Pods, pod, EventType::Modified, Some(old)))
    }

    fn delete(
        &mut self,
        resource: Resource,
        ns: &str,
        name: &str,
        precondition: Option<u64>,
        grace_period: Option<i64>,
    ) -> Result<Arc<Stored>> {
        let Some(old) = self.lookup(resource, ns, name) else {
            return Err(Error::NotFound { resource, name: name.to_string() });
        };
        if precondition.is_some_and(|rv| rv != old.rv) {
            return Err(Error::Conflict { resource, name: name.to_string() });
        }
        // Graceful deletion (upstream BeforeDelete for pods): a pod on a node is marked with
        // deletionTimestamp = now + grace and stays, Terminating, until its kubelet has stopped it
        // and deletes it with grace 0. A pod on no node has nobody to stop it and goes at once.
        if resource == Resource::Pods {
            let bound =
                old.value.pointer("/spec/nodeName").and_then(Value::as_str).is_some_and(|n| !n.is_empty());
            let grace = grace_period
                .or_else(|| old.value.pointer("/spec/terminationGracePeriodSeconds").and_then(Value::as_i64))
                .unwrap_or(30)
                .max(0);
            let terminating = old.value.pointer("/metadata/deletionTimestamp").is_some();
            if bound && grace > 0 {
                let current =
                    old.value.pointer("/metadata/deletionGracePeriodSeconds").and_then(Value::as_i64);
                if terminating && current.is_some_and(|c| c <= grace) {
                    return Ok(old);
                }
                let mut obj = old.value.clone();
                let at = jiff::Timestamp::now()
                    .checked_add(jiff::SignedDuration::from_secs(grace))
                    .unwrap_or_else(|_| jiff::Timestamp::now());
                object::set_meta(
                    &mut obj,
                    "deletionTimestamp",
                    Some(at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into()),
                );
                object::set_meta(&mut obj, "deletionGracePeriodSeconds", Some(grace.into()));
                return Ok(self.put(resource, obj, EventType::Modified, Some(old)));
            }
        }
        if object::has_finalizers(&old.value) {
            if old.value.pointer("/metadata/deletionTimestamp").is_some() {
                return Ok(old);
            }
            let mut obj = old.value.clone();
            object::set_meta(&mut obj, "deletionTimestamp", Some(object::now_rfc3339().into()));
            object::set_meta(&mut obj, "deletionGracePeriodSeconds", Some(0.into()));
            return Ok(self.put(resource, obj, EventType::Modified, Some(old)));
        }
        if resource == Resource::Namespaces {
            // Deleting a namespace deletes everything in it. (The real apiserver marks it
            // Terminating and the namespace controller empties it; here it is one step.)
            for r in netlab_proto::ALL_RESOURCES.into_iter().filter(|r| r.namespaced()) {
                for obj in self.namespace_contents(r, name) {
                    self.remove(obj);
                }
            }
        }
        Ok(self.remove(old))
    }

    /// Every object of `resource`, as the batch sees them.
    fn all_of(&self, resource: Resource) -> Vec<Arc<Stored>> {
        let mut found: Vec<Arc<Stored>> = self
            .shared
            .read()
            .iter(resource, "")
            .filter(|o| !self.overlay.contains_key(&(resource, o.namespace.clone(), o.name.clone())))
            .cloned()
            .collect();
        found.extend(
            self.overlay.iter().filter(|((r, _, _), _)| *r == resource).filter_map(|(_, o)| o.clone()),
        );
        found
    }

    fn namespace_contents(&self, resource: Resource, ns: &str) -> Vec<Arc<Stored>> {
        let mut found: Vec<Arc<Stored>> = self
            .shared
            .read()
            .iter(resource, ns)
            .filter(|o| !self.overlay.contains_key(&(resource, ns.to_string(), o.name.clone())))
            .cloned()
            .collect();
        found.extend(
            self.overlay
                .iter()
                .filter(|((r, n, _), _)| *r == resource && n == ns)
                .filter_map(|(_, o)| o.clone()),
        );
        found
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    /// Stamps a new resourceVersion on `obj` and records it in the batch.
    fn put(
        &mut self,
        resource: Resource,
        mut obj: Value,
        kind: EventType,
        prev: Option<Arc<Stored>>,
    ) -> Arc<Stored> {
        let rv = self.next_revision();
        object::set_meta(&mut obj, "resourceVersion", Some(rv.to_string().into()));
        let stored = Arc::new(Stored::new(resource, obj));
        let key = store::key(resource, &stored.namespace, &stored.name);
        self.ops.push(Op::Put(key, stored.json.clone()));
        self.overlay.insert((resource, stored.namespace.clone(), stored.name.clone()), Some(stored.clone()));
        self.events.push(Arc::new(Event { kind, object: stored.clone(), prev }));
        stored
    }

    /// Removes `old`, releasing what it held; the DELETED event carries the deletion's revision.
    fn remove(&mut self, old: Arc<Stored>) -> Arc<Stored> {
        if old.resource == Resource::Services {
            self.alloc.release_service(&old.value);
        }
        let rv = self.next_revision();
        let mut last = old.value.clone();
        object::set_meta(&mut last, "resourceVersion", Some(rv.to_string().into()));
        let gone = Arc::new(Stored::new(old.resource, last));
        self.ops.push(Op::Delete(store::key(old.resource, &old.namespace, &old.name)));
        self.overlay.insert((old.resource, old.namespace.clone(), old.name.clone()), None);
        self.events.push(Arc::new(Event { kind: EventType::Deleted, object: gone.clone(), prev: Some(old) }));
        gone
    }
}
