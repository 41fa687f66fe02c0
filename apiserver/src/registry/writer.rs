//! The write path. One task owns the allocators and the revision counter and decides every write
//! in arrival order; requests that arrive while a commit is in flight form the next batch, which
//! is committed with one store transaction (group commit).

use std::{collections::HashMap, sync::Arc};

use netlab_proto::apiserver::v1::{EventType, Resource};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{Event, Shared, WriteOp, repair::Allocators};
use crate::{
    alloc::AllocError,
    defaults,
    error::{Error, Result},
    object::{self, Stored},
    store::{self, Batch, Op, Store},
    validation::{self, ErrorType, FieldError},
};

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
        let mut batch = Pending::new(&shared, &mut alloc, revision);
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
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    Err(e) => e.to_string(),
                    Ok(Ok(())) => unreachable!("handled above"),
                };
                tracing::error!(%error, writes = replies.len(), "Store commit failed; failing the batch.");
                // Allocations made for the failed batch are undone by rebuilding from what is
                // committed.
                alloc = super::repair::rebuild(&shared.read(), &alloc.config).0;
                for (reply, _, _) in replies {
                    let _ = reply.send(Err(Error::Internal(format!("storage commit failed: {error}"))));
                }
            }
        }
    }
    tracing::debug!("Writer stopped.");
}

/// Prepares a create before it is queued (runs on the caller's task): decode, namespace, status
/// reset, defaults, validation.
pub fn prepare_create(resource: Resource, namespace: &str, body: &[u8]) -> Result<Value> {
    let mut obj = prepare(resource, namespace, body)?;
    // Status is the system's to write; a create starts without one (upstream PrepareForCreate),
    // except for Nodes, which the kubelet registers with their status.
    if !matches!(resource, Resource::Nodes | Resource::Events)
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    defaults::set_defaults(resource, &mut obj);
    let errors = validation::validate(resource, &obj);
    if !errors.is_empty() {
        return Err(invalid(resource, &obj, errors));
    }
    Ok(obj)
}

/// Prepares an update before it is queued: decode, namespace, defaults. Validation against the
/// old object happens in the writer.
pub fn prepare_update(resource: Resource, namespace: &str, body: &[u8]) -> Result<Value> {
    let mut obj = prepare(resource, namespace, body)?;
    defaults::set_defaults(resource, &mut obj);
    Ok(obj)
}

fn prepare(resource: Resource, namespace: &str, body: &[u8]) -> Result<Value> {
    let mut obj = object::decode(resource, body)?;
    if resource.namespaced() {
        let in_body = object::namespace(&obj).to_string();
        let ns = match (in_body.as_str(), namespace) {
            ("", "") => "default".to_string(),
            ("", req) => req.to_string(),
            (body, "") => body.to_string(),
            (body, req) if body == req => body.to_string(),
            _ => {
                return Err(Error::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                        .into(),
                ));
            }
        };
        object::set_meta(&mut obj, "namespace", Some(ns.into()));
    } else {
        object::set_meta(&mut obj, "namespace", None);
    }
    Ok(obj)
}

fn invalid(resource: Resource, obj: &Value, errors: Vec<FieldError>) -> Error {
    let name = match object::name(obj) {
        "" => object::generate_name(obj),
        n => n,
    };
    Error::Invalid { kind: resource.kind(), name: name.to_string(), errors }
}

fn field_error(field: &str, value: Value, detail: String) -> FieldError {
    FieldError {
        error_type: ErrorType::Invalid,
        field: field.to_string(),
        value: Some(value),
        detail,
        supported: Vec::new(),
    }
}

type Key = (Resource, String, String);

/// A batch being decided: what it changes, on top of the committed state.
struct Pending<'a> {
    shared: &'a Shared,
    alloc: &'a mut Allocators,
    revision: u64,
    overlay: HashMap<Key, Option<Arc<Stored>>>,
    ops: Vec<Op>,
    events: Vec<Arc<Event>>,
}

// === impl Pending ===

impl<'a> Pending<'a> {
    fn new(shared: &'a Shared, alloc: &'a mut Allocators, revision: u64) -> Self {
        Self { shared, alloc, revision, overlay: HashMap::new(), ops: Vec::new(), events: Vec::new() }
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
                preserve_service_allocations(&mut obj, &old.value);
            }
            let generation = old.value.pointer("/metadata/generation").and_then(Value::as_i64);
            let generation = match (generation, obj.get("spec") != old.value.get("spec")) {
                (Some(g), true) => Some(g + 1),
                (g, _) => g,
            };
            object::set_meta(&mut obj, "generation", generation.map(Into::into));
            let errors = validation::validate_update(resource, &old.value, &obj);
            if !errors.is_empty() {
                return Err(invalid(resource, &obj, errors));
            }
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

    fn bind(&mut self, ns: &str, name: &str, node: &str) -> Result<Arc<Stored>> {
        let Some(old) = self.lookup(Resource::Pods, ns, name) else {
            return Err(Error::NotFound { resource: Resource::Pods, name: name.to_string() });
        };
        if old.value.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(Error::BindingConflict {
                pod: name.to_string(),
                detail: format!("pod {name} is being deleted, cannot be assigned to a host"),
            });
        }
        if let Some(bound) =
            old.value.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty())
        {
            return Err(Error::BindingConflict {
                pod: name.to_string(),
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
            self.release_service(&old.value);
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

    /// Allocates the ClusterIP and NodePorts a Service needs (on update: those it newly needs),
    /// writing them into `svc`. On error nothing stays allocated.
    fn allocate_service(&mut self, svc: &mut Value, old: Option<&Value>) -> Result<()> {
        let name = object::name(svc).to_string();
        let invalid = |errors| Error::Invalid { kind: "Service", name: name.clone(), errors };
        let ty = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
        let old_ip = old.and_then(cluster_ip).filter(|ip| ip != "None");

        // The decision, as its own span: which range, which band, which address.
        let span = tracing::info_span!(
            "allocate ClusterIP",
            netlab.service_cidr = %self.alloc.ips.cidr(),
            netlab.service = %format!("{}/{name}", object::namespace(svc)),
            netlab.cluster_ip = tracing::field::Empty,
            netlab.band = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        let _entered = span.enter();
        let static_band = self.alloc.ips.static_range();
        let band_of = |ip: &str| match (ip.parse::<std::net::Ipv4Addr>(), static_band) {
            (Ok(ip), Some((lo, hi))) if ip >= lo && ip <= hi => "static",
            _ => "dynamic",
        };
        let result = self.allocate_service_inner(svc, old, &ty, old_ip, &invalid);
        match &result {
            Ok(()) => {
                let ip = cluster_ip(svc).unwrap_or_else(|| "none".into());
                span.record("netlab.band", band_of(&ip));
                span.record("netlab.cluster_ip", ip.as_str());
                tracing::debug!(cluster_ip = %ip, "Allocated.");
            }
            Err(e) => {
                span.record("otel.status_code", "ERROR");
                span.record("otel.status_message", e.to_string().as_str());
            }
        }
        result
    }

    fn allocate_service_inner(
        &mut self,
        svc: &mut Value,
        old: Option<&Value>,
        ty: &str,
        old_ip: Option<String>,
        invalid: &dyn Fn(Vec<FieldError>) -> Error,
    ) -> Result<()> {
        let mut new_ip_taken = None;
        if ty == "ExternalName" {
            if let Some(ip) = &old_ip
                && let Ok(ip) = ip.parse()
            {
                self.alloc.ips.release(ip);
            }
            if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
        } else {
            match cluster_ip(svc).as_deref() {
                Some("None") => {}
                Some(ip) if Some(ip) == old_ip.as_deref() => {}
                Some(ip) => {
                    let parsed = ip.parse().map_err(|_| {
                        invalid(vec![field_error(
                            "spec.clusterIPs",
                            json!([ip]),
                            "must be a valid IP address".into(),
                        )])
                    })?;
                    self.alloc.ips.allocate(parsed).map_err(|e| {
                        invalid(vec![field_error(
                            "spec.clusterIPs",
                            json!([ip]),
                            format!("failed to allocate IP {ip}: {e}"),
                        )])
                    })?;
                    new_ip_taken = Some(parsed);
                    set_cluster_ip(svc, ip);
                }
                None => {
                    let ip = self
                        .alloc
                        .ips
                        .allocate_next()
                        .map_err(|e| Error::Internal(format!("failed to allocate a serviceIP: {e}")))?;
                    new_ip_taken = Some(ip.into());
                    set_cluster_ip(svc, &ip.to_string());
                }
            }
        }

        // NodePorts: every port of a NodePort or LoadBalancer Service has one.
        let needs_node_ports = matches!(ty, "NodePort" | "LoadBalancer");
        let old_ports: Vec<u16> = old.map(node_ports).unwrap_or_default();
        let mut taken = Vec::new();
        let mut result = Ok(());
        if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for (i, port) in ports.iter_mut().enumerate() {
                if !needs_node_ports {
                    // Only NodePort and LoadBalancer Services hold NodePorts.
                    if let Some(map) = port.as_object_mut() {
                        map.remove("nodePort");
                    }
                    continue;
                }
                let given = port.get("nodePort").and_then(Value::as_u64).filter(|p| *p > 0);
                let outcome = match given {
                    Some(p) if old_ports.contains(&(p as u16)) => Ok(p as u16),
                    Some(p) => {
                        let p16 = u16::try_from(p).unwrap_or(0);
                        self.alloc.ports.allocate(p16).map(|_| p16).map_err(|e| {
                            invalid(vec![field_error(
                                &format!("spec.ports[{i}].nodePort"),
                                json!(p),
                                e.to_string(),
                            )])
                        })
                    }
                    None => self.alloc.ports.allocate_next().map_err(|e| match e {
                        AllocError::Full => Error::Internal(format!("failed to allocate a nodePort: {e}")),
                        other => Error::Internal(other.to_string()),
                    }),
                };
                match outcome {
                    Ok(p) => {
                        if !old_ports.contains(&p) {
                            taken.push(p);
                        }
                        port["nodePort"] = json!(p);
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        if let Err(e) = result {
            for p in taken {
                self.alloc.ports.release(p);
            }
            if let Some(ip) = new_ip_taken {
                self.alloc.ips.release(ip);
            }
            return Err(e);
        }
        // Ports the update dropped go back to the pool.
        let kept = node_ports(svc);
        for p in old_ports.into_iter().filter(|p| !kept.contains(p)) {
            self.alloc.ports.release(p);
        }
        Ok(())
    }

    fn release_service(&mut self, svc: &Value) {
        if let Some(ip) = cluster_ip(svc).and_then(|ip| ip.parse().ok()) {
            self.alloc.ips.release(ip);
        }
        for p in node_ports(svc) {
            self.alloc.ports.release(p);
        }
    }
}

/// spec.clusterIPs[0], else spec.clusterIP; None when unset or empty.
pub(crate) fn cluster_ip(svc: &Value) -> Option<String> {
    svc.pointer("/spec/clusterIPs/0")
        .or_else(|| svc.pointer("/spec/clusterIP"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn set_cluster_ip(svc: &mut Value, ip: &str) {
    if let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("clusterIP".into(), ip.into());
        spec.insert("clusterIPs".into(), json!([ip]));
    }
}

/// The NodePorts a Service holds.
pub(crate) fn node_ports(svc: &Value) -> Vec<u16> {
    svc.pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ports| {
            ports
                .iter()
                .filter_map(|p| p.get("nodePort")?.as_u64())
                .filter_map(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// An update that omits the ClusterIP or a port's NodePort keeps the allocated one, as the real
/// apiserver does, so that re-applying a manifest does not try to change them.
fn preserve_service_allocations(new: &mut Value, old: &Value) {
    let new_ty = new.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP").to_string();
    if new_ty != "ExternalName"
        && cluster_ip(new).is_none()
        && let Some(ip) = cluster_ip(old)
    {
        set_cluster_ip(new, &ip);
    }
    if !matches!(new_ty.as_str(), "NodePort" | "LoadBalancer") {
        return;
    }
    let old_ports = old.pointer("/spec/ports").and_then(Value::as_array).cloned().unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for port in ports {
            if port.get("nodePort").and_then(Value::as_u64).unwrap_or(0) != 0 {
                continue;
            }
            let same = old_ports
                .iter()
                .find(|o| o.get("port") == port.get("port") && o.get("protocol") == port.get("protocol"));
            if let Some(np) = same.and_then(|o| o.get("nodePort")).filter(|n| n.as_u64().unwrap_or(0) > 0) {
                port["nodePort"] = np.clone();
            }
        }
    }
}
