//! The DaemonSet controller: one pod of each DaemonSet on every node that should run it, as
//! upstream's `pkg/controller/daemon` does. EKS runs the VPC CNI (`aws-node`) and kube-proxy this
//! way, so a node that joins gets them, and `kubectl set env ds/aws-node` rolls new pods out.
//!
//! A node should run the pod when the pod's `nodeSelector` and required node affinity take it
//! and the pod tolerates the node's NoSchedule and NoExecute taints; a pod already there may keep
//! running on a node whose NoSchedule taints it does not tolerate. The tolerations checked are
//! the template's plus the ones upstream gives every daemon pod (not-ready and unreachable
//! NoExecute, the pressure and unschedulable NoSchedule taints), so a NotReady node keeps its
//! daemons. Pods are created with `generateName: <ds>-` and upstream's node affinity
//! (`matchFields: metadata.name In [node]`), which the scheduler honours to bind them; they carry
//! the `controller-revision-hash` and `pod-template-generation` labels and a controller
//! ownerReference.
//!
//! A RollingUpdate (`maxSurge: 0`) deletes old pods, at most `maxUnavailable` nodes at a time
//! counting nodes whose pod is missing or not yet available; the next sync creates the new pod
//! on the node. Old pods that are not available are replaced at once.
//!
//! The decisions are pure functions ([`node_should_run`], [`manage`], [`rolling_update`],
//! [`calculate_status`]); the [`Controller`] reads the caches, acts, records Events and writes
//! status. Like the ReplicaSet controller it waits on [`Expectations`] between a create or delete
//! and the watch showing it, since generated names cannot collide to stop a duplicate.
//!
//! Not modelled: ControllerRevision objects (the revision is the hash label only) and so
//! `revisionHistoryLimit` and rollback; `maxSurge` above 0 (treated as `maxUnavailable: 1` when
//! both would allow nothing); the backoff upstream puts on deleting failed pods.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use jiff::Timestamp;
use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, DaemonSetStatus},
        core::v1::{
            Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
            PodSpec, Taint, Toleration,
        },
    },
    apimachinery::pkg::{apis::meta::v1::ObjectMeta, util::intstr::IntOrString},
};
use netlab_client::{Client, ListParams, key_of, recorder::EventType, reflector::Cache};
use tracing::instrument;

use crate::{
    Context, Error, Result, claim,
    controller::{self, Reconcile},
    hash, pod,
    replicaset::expectations::Expectations,
    selector,
};

#[cfg(test)]
mod tests;

/// The Events' `source.component`.
pub const COMPONENT: &str = "daemonset-controller";
/// The label holding the hash of the template the pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// The label holding the DaemonSet's template generation the pod was made from.
pub const TEMPLATE_GENERATION_LABEL: &str = "pod-template-generation";
/// The annotation holding a DaemonSet's template generation (the apiserver keeps it).
pub const TEMPLATE_GENERATION_ANNOTATION: &str = "deprecated.daemonset.template.generation";

/// `v1.TaintNodeNotReady` and the other taints every daemon pod tolerates.
const DAEMON_TOLERATIONS: [(&str, &str); 6] = [
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
];

/// What of a node decides which daemons it runs: its labels and taints.
type Placement = (Option<BTreeMap<String, String>>, Option<Vec<Taint>>);

/// The controller's state, shared by its workers.
pub struct Controller {
    client: Client,
    events: crate::events::Events,
    sets: Cache<DaemonSet>,
    pods: Cache<Pod>,
    nodes: Cache<Node>,
    expectations: Expectations,
}

/// Starts the controller on `ctx.tasks`: DaemonSets, the pods they own, and Nodes (a node that
/// joins, leaves, or changes its labels or taints queues every DaemonSet).
pub fn start(ctx: &Context) -> Result<()> {
    let (sets, set_changes) = ctx.reflector::<DaemonSet>(ListParams::default());
    let (pods, pod_changes) = ctx.reflector::<Pod>(ListParams::default());
    let (nodes, node_changes) = ctx.reflector::<Node>(ListParams::default());
    let reconciler = Arc::new(Controller {
        client: ctx.client.clone(),
        events: ctx.events(COMPONENT),
        sets: sets.clone(),
        pods: pods.clone(),
        nodes: nodes.clone(),
        expectations: Expectations::default(),
    });
    let adopters = reconciler.clone();
    let all_sets = sets.clone();
    // What of a node decides where daemons run; heartbeats change nothing of it.
    let mut seen: HashMap<String, Placement> = HashMap::new();
    controller::Controller::new(reconciler)
        .primary(&sets, set_changes)
        .owns(&pods, pod_changes, move |p: &Pod| adopters.adopters(p))
        .watches(&nodes, node_changes, move |change| {
            let node = change.object();
            let name = node.metadata.name.clone().unwrap_or_default();
            let now = (node.metadata.labels.clone(), node.spec.as_ref().and_then(|s| s.taints.clone()));
            let changed = match change {
                netlab_client::reflector::Change::Deleted(_) => seen.remove(&name).is_some(),
                netlab_client::reflector::Change::Applied(_) => {
                    seen.insert(name, now.clone()).as_ref() != Some(&now)
                }
            };
            if changed { all_sets.list().iter().map(|ds| key_of(ds.as_ref())).collect() } else { Vec::new() }
        })
        .run(&ctx.tasks, ctx.config.concurrent_syncs);
    Ok(())
}

// === the decisions ===

/// `AddOrUpdateDaemonPodTolerations`: the tolerations every daemon pod gets, added to `spec`'s
/// unless an equal one is there (network-unavailable too for host-network pods).
pub fn add_daemon_tolerations(spec: &mut PodSpec) {
    let mut wanted: Vec<(&str, &str)> = DAEMON_TOLERATIONS.to_vec();
    if spec.host_network == Some(true) {
        wanted.push(("node.kubernetes.io/network-unavailable", "NoSchedule"));
    }
    let list = spec.tolerations.get_or_insert_default();
    for (key, effect) in wanted {
        let t = Toleration {
            key: Some(key.into()),
            operator: Some("Exists".into()),
            effect: Some(effect.into()),
            ..Default::default()
        };
        // `AddOrUpdateTolerationInPodSpec`: one with the same key, operator, value and effect is
        // replaced; otherwise it is added.
        let same = |o: &Toleration| {
            o.key == t.key
                && o.operator.as_deref().unwrap_or("Equal") == "Exists"
                && o.value.as_deref().unwrap_or("").is_empty()
                && o.effect == t.effect
        };
        match list.iter_mut().find(|o| same(o)) {
            Some(o) => *o = t,
            None => list.push(t),
        }
    }
}

/// `Toleration.ToleratesTaint` (the scheduler's `filter::tolerates`).
fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
    let effect = toleration.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = toleration.key.as_deref().unwrap_or("");
    if !key.is_empty() && key != taint.key {
        return false;
    }
    match toleration.operator.as_deref().unwrap_or("") {
        "" | "Equal" => toleration.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or(""),
        "Exists" => true,
        _ => false,
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, have: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or(&[]);
    let number = |s: &str| s.parse::<i64>().ok();
    match r.operator.as_str() {
        "In" => have.is_some_and(|h| values.iter().any(|v| v == h)),
        "NotIn" => !have.is_some_and(|h| values.iter().any(|v| v == h)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        "Gt" | "Lt" => {
            let (Some(h), [v]) = (have.and_then(number), values) else { return false };
            let Some(v) = number(v) else { return false };
            if r.operator == "Gt" { h > v } else { h < v }
        }
        _ => false,
    }
}

/// The pod's `nodeSelector` and required node affinity take `node` (the scheduler's
/// NodeAffinity filter: every selector label equal, any term matching; an empty term matches
/// nothing).
fn fits_node_affinity(spec: &PodSpec, node: &Node) -> bool {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    let name = node.metadata.name.as_deref().unwrap_or_default();
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref());
    let Some(required) = required else { return true };
    required.node_selector_terms.iter().any(|term| {
        let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
        let fields = term.match_fields.as_deref().unwrap_or(&[]);
        (!exprs.is_empty() || !fields.is_empty())
            && exprs.iter().all(|r| requirement_matches(r, labels.get(&r.key).map(String::as_str)))
            && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(name)))
    })
}

/// `NodeShouldRunDaemonPod`: whether a daemon pod of `ds` should be created on `node`, and
/// whether one already there should keep running. A node the pod's selector or affinity does
/// not take runs none; one with a NoSchedule taint the pod does not tolerate keeps what it has;
/// one with such a NoExecute taint runs none.
pub fn node_should_run(ds: &DaemonSet, node: &Node) -> (bool, bool) {
    let mut spec = ds.spec.as_ref().and_then(|s| s.template.spec.clone()).unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    let name = node.metadata.name.as_deref().unwrap_or_default();
    let fits_name = spec.node_name.as_deref().is_none_or(|n| n.is_empty() || n == name);
    if !fits_name || !fits_node_affinity(&spec, node) {
        return (false, false);
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or(&[]);
    let untolerated = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or(&[])
        .iter()
        .filter(|t| matches!(t.effect.as_str(), "NoSchedule" | "NoExecute"))
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)));
    match untolerated {
        None => (true, true),
        Some(taint) => (false, taint.effect != "NoExecute"),
    }
}

/// The template generation the apiserver keeps on `ds`, if it parses.
pub fn template_generation(ds: &DaemonSet) -> Option<i64> {
    ds.metadata.annotations.as_ref()?.get(TEMPLATE_GENERATION_ANNOTATION)?.parse().ok()
}

/// The `controller-revision-hash` of `ds`'s current template (`ControllerRevision` hash).
pub fn current_hash(ds: &DaemonSet) -> String {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    hash::revision_hash(&template, ds.status.as_ref().and_then(|s| s.collision_count))
}

/// `CreatePodTemplate` and `ReplaceDaemonSetPodNodeNameNodeAffinity`: the pod for `node`, with
/// the revision labels, the daemon tolerations, a required affinity to the node by name,
/// `generateName: <ds>-` and a controller reference.
pub fn new_pod(ds: &DaemonSet, node: &str, hash: &str, generation: Option<i64>) -> Pod {
    let template = ds.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let meta = template.metadata.unwrap_or_default();
    let mut labels = meta.labels.unwrap_or_default();
    if let Some(g) = generation {
        labels.insert(TEMPLATE_GENERATION_LABEL.into(), g.to_string());
    }
    if !hash.is_empty() {
        labels.insert(REVISION_LABEL.into(), hash.into());
    }
    let mut spec = template.spec.unwrap_or_default();
    add_daemon_tolerations(&mut spec);
    let by_name = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: "metadata.name".into(),
                operator: "In".into(),
                values: Some(vec![node.into()]),
            }]),
            match_expressions: None,
        }],
    };
    let affinity = spec.affinity.get_or_insert_with(Affinity::default);
    let node_affinity = affinity.node_affinity.get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(by_name);
    let name = ds.metadata.name.clone().unwrap_or_default();
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: ds.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: meta.annotations,
            finalizers: meta.finalizers,
            owner_references: Some(vec![pod::controller_ref(ds)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// `GetTargetNodeName`: the pod's node, or the one its `matchFields` affinity names.
pub fn target_node(p: &Pod) -> Option<String> {
    let spec = p.spec.as_ref()?;
    if let Some(n) = spec.node_name.as_ref().filter(|n| !n.is_empty()) {
        return Some(n.clone());
    }
    let terms = &spec
        .affinity
        .as_ref()?
        .node_affinity
        .as_ref()?
        .required_during_scheduling_ignored_during_execution
        .as_ref()?
        .node_selector_terms;
    terms.iter().flat_map(|t| t.match_fields.iter().flatten()).find_map(|r| {
        (r.key == "metadata.name" && r.operator == "In")
            .then(|| r.values.as_deref().and_then(|v| v.first()).cloned())
            .flatten()
    })
}

fn phase(p: &Pod) -> &str {
    p.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// `getNodesToDaemonPods`: the pods by their node, oldest first (scheduled before unscheduled,
/// then by creation and name: `podByCreationTimestampAndPhase`), leaving out pods both deleted
/// and finished.
pub fn pods_by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Vec<Arc<Pod>>> {
    let mut by_node: BTreeMap<String, Vec<Arc<Pod>>> = BTreeMap::new();
    for p in pods {
        if pod::is_terminating(&p.metadata) && matches!(phase(p), "Succeeded" | "Failed") {
            continue;
        }
        if let Some(node) = target_node(p) {
            by_node.entry(node).or_default().push(p.clone());
        }
    }
    for list in by_node.values_mut() {
        list.sort_by_key(|p| {
            let unscheduled = p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty();
            let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::MIN);
            (unscheduled, created, p.metadata.name.clone().unwrap_or_default())
        });
    }
    by_node
}

/// What one sync of [`manage`] does.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Nodes that need a daemon pod.
    pub create: Vec<String>,
    /// Pods to delete.
    pub delete: Vec<String>,
    /// Failed pods among `delete`, with their node (`FailedDaemonPod` Events).
    pub failed: Vec<(String, String)>,
}

impl Plan {
    /// Whether the sync has nothing to create or delete.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// `manage` and `podsShouldBeOnNode`: nodes that should run the pod and have none get one;
/// failed or finished pods are deleted; a node running several keeps the oldest; a node that
/// should not run it loses its pods; unscheduled pods aimed at a node that is gone are deleted.
pub fn manage(ds: &DaemonSet, nodes: &[Arc<Node>], pods: &[Arc<Pod>]) -> Plan {
    let by_node = pods_by_node(pods);
    let mut plan = Plan::default();
    let name = |p: &Pod| p.metadata.name.clone().unwrap_or_default();
    let mut nodes: Vec<&Arc<Node>> = nodes.iter().collect();
    nodes.sort_by_key(|n| n.metadata.name.clone());
    for node in &nodes {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        let (should_run, should_continue) = node_should_run(ds, node);
        let on_node = by_node.get(&node_name).map(Vec::as_slice).unwrap_or(&[]);
        if should_run && on_node.is_empty() {
            plan.create.push(node_name);
        } else if should_continue {
            let mut running = Vec::new();
            for p in on_node.iter().filter(|p| !pod::is_terminating(&p.metadata)) {
                match phase(p) {
                    "Failed" => {
                        plan.failed.push((name(p), node_name.clone()));
                        plan.delete.push(name(p));
                    }
                    "Succeeded" => plan.delete.push(name(p)),
                    _ => running.push(p),
                }
            }
            plan.delete.extend(running.iter().skip(1).map(|p| name(p)));
        } else {
            plan.delete.extend(on_node.iter().filter(|p| !pod::is_terminating(&p.metadata)).map(|p| name(p)));
        }
    }
    for (node, on_node) in &by_node {
        if !nodes.iter().any(|n| n.metadata.name.as_deref() == Some(node.as_str())) {
            let unscheduled = |p: &&Arc<Pod>| {
                p.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty()
                    && !pod::is_terminating(&p.metadata)
            };
            plan.delete.extend(on_node.iter().filter(unscheduled).map(|p| name(p)));
        }
    }
    plan
}

/// `IsPodUpdated`: the pod has the current hash, or the current template generation.
pub fn is_updated(p: &Pod, hash: &str, generation: Option<i64>) -> bool {
    let labels = p.metadata.labels.as_ref();
    let label = |k: &str| labels.and_then(|l| l.get(k)).map(String::as_str);
    let by_generation =
        generation.is_some_and(|g| label(TEMPLATE_GENERATION_LABEL) == Some(g.to_string().as_str()));
    let by_hash = !hash.is_empty() && label(REVISION_LABEL) == Some(hash);
    by_hash || by_generation
}

/// `GetScaledValueFromIntOrPercent`, rounding up.
fn scaled(v: Option<&IntOrString>, total: i32) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => match s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) {
            Some(p) => ((p * i64::from(total) + 99) / 100) as i32,
            None => s.parse().unwrap_or(0),
        },
    }
}

/// How many nodes may be without an available daemon pod during a rolling update, out of
/// `desired`: `maxUnavailable`, or 1 when neither it nor `maxSurge` allows anything.
pub fn max_unavailable(ds: &DaemonSet, desired: i32) -> i32 {
    let strategy = ds.spec.as_ref().and_then(|s| s.update_strategy.clone()).unwrap_or_default();
    let ru = strategy.rolling_update.unwrap_or_default();
    let unavailable = scaled(ru.max_unavailable.as_ref(), desired);
    let surge = scaled(ru.max_surge.as_ref(), desired);
    if desired > 0 && unavailable == 0 && surge == 0 { 1 } else { unavailable }
}

/// `rollingUpdate` with `maxSurge: 0`: the old pods to delete now. Old pods that are not
/// available go at once; available ones only while fewer than `maxUnavailable` nodes are
/// without an available up-to-date pod. Nodes are taken in name order.
pub fn rolling_update(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    hash: &str,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<String> {
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    // `updatedDesiredNodeCounts`: a node that should run the pod and has none counts too.
    let mut by_node = pods_by_node(pods);
    let mut desired = 0;
    for n in nodes.iter().filter(|n| node_should_run(ds, n).0) {
        desired += 1;
        by_node.entry(n.metadata.name.clone().unwrap_or_default()).or_default();
    }
    let max_unavailable = max_unavailable(ds, desired);
    let (mut unavailable, mut replace_now, mut candidates) = (0, Vec::new(), Vec::new());
    for on_node in by_node.values() {
        // `findUpdatedPodsOnNode`: more than one new or old pod leaves the node to `manage`.
        let live: Vec<&Arc<Pod>> = on_node.iter().filter(|p| !pod::is_terminating(&p.metadata)).collect();
        let (new, old): (Vec<&Arc<Pod>>, Vec<&Arc<Pod>>) =
            live.iter().partition(|p| is_updated(p, hash, generation));
        if new.len() > 1 || old.len() > 1 {
            unavailable += 1;
            continue;
        }
        match (new.first(), old.first()) {
            (None, None) | (Some(_), Some(_)) => unavailable += 1,
            (Some(new), None) => {
                if !pod::is_available(new, min_ready, now) {
                    unavailable += 1;
                }
            }
            (None, Some(old)) => {
                let name = old.metadata.name.clone().unwrap_or_default();
                if !pod::is_available(old, min_ready, now) {
                    replace_now.push(name);
                } else if unavailable < max_unavailable {
                    candidates.push(name);
                }
            }
        }
    }
    let room = (max_unavailable - unavailable).clamp(0, candidates.len() as i32) as usize;
    replace_now.extend(candidates.into_iter().take(room));
    replace_now
}

/// `updateDaemonSetStatus`: the counts over the nodes that should run the pod, and when the next
/// Ready pod becomes available. `observed` says whether this sync acted on the current
/// generation (otherwise `observedGeneration` stays).
pub fn calculate_status(
    ds: &DaemonSet,
    nodes: &[Arc<Node>],
    pods: &[Arc<Pod>],
    hash: &str,
    observed: bool,
    now: Timestamp,
) -> (DaemonSetStatus, Option<Timestamp>) {
    let min_ready = ds.spec.as_ref().and_then(|s| s.min_ready_seconds).unwrap_or(0);
    let generation = template_generation(ds);
    let old = ds.status.clone().unwrap_or_default();
    let by_node = pods_by_node(pods);
    let (mut desired, mut current, mut misscheduled, mut ready, mut available, mut updated) =
        (0, 0, 0, 0, 0, 0);
    let mut next: Option<Timestamp> = None;
    for node in nodes {
        let name = node.metadata.name.clone().unwrap_or_default();
        let on_node = by_node.get(&name).map(Vec::as_slice).unwrap_or(&[]);
        let should_run = node_should_run(ds, node).0;
        if !should_run {
            if !on_node.is_empty() {
                misscheduled += 1;
            }
            continue;
        }
        desired += 1;
        let Some(oldest) = on_node.first() else { continue };
        current += 1;
        if pod::is_ready(oldest) {
            ready += 1;
            match pod::available_at(oldest, min_ready) {
                Some(at) if at <= now => available += 1,
                Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
                None => {}
            }
        }
        if is_updated(oldest, hash, generation) {
            updated += 1;
        }
    }
    // Go's omitempty: zero counts of the optional fields are not written.
    let some = |n: i32| (n != 0).then_some(n);
    let status = DaemonSetStatus {
        desired_number_scheduled: desired,
        current_number_scheduled: current,
        number_misscheduled: misscheduled,
        number_ready: ready,
        updated_number_scheduled: some(updated),
        number_available: some(available),
        number_unavailable: some(desired - available),
        observed_generation: if observed { ds.metadata.generation } else { old.observed_generation },
        collision_count: old.collision_count,
        conditions: old.conditions,
    };
    (status, next)
}

// === impl Controller ===

impl Controller {
    /// The DaemonSets that would adopt an orphan pod: those in its namespace whose selector
    /// takes it.
    fn adopters(&self, p: &Pod) -> Vec<Arc<DaemonSet>> {
        let ns = p.metadata.namespace.as_deref().unwrap_or_default();
        let mut sets = self.sets.list_namespace(ns);
        sets.retain(|ds| {
            selector::matches(ds.spec.as_ref().map(|s| &s.selector), p.metadata.labels.as_ref())
        });
        sets
    }

    /// The pods `ds` controls, after adopting matching orphans and releasing owned pods that no
    /// longer match (`getDaemonPods`).
    async fn claim(&self, ds: &DaemonSet) -> Result<Vec<Arc<Pod>>> {
        let sel = ds.spec.as_ref().map(|s| &s.selector);
        let pods = self.pods.list_namespace(ds.metadata.namespace.as_deref().unwrap_or_default());
        claim::claim(&self.client, ds, pods, |p| selector::matches(sel, p.metadata.labels.as_ref())).await
    }

    /// Creates the pods for `create` and deletes `delete`, recording upstream's Events.
    async fn sync_nodes(
        &self,
        key: &str,
        ds: &DaemonSet,
        create: &[String],
        delete: &[String],
    ) -> Result<()> {
        let ns = ds.metadata.namespace.clone().unwrap_or_default();
        let name = ds.metadata.name.clone().unwrap_or_default();
        let (hash, generation) = (current_hash(ds), template_generation(ds));
        let mut first_error: Option<Error> = None;
        for node in create {
            let mut p = new_pod(ds, node, &hash, generation);
            netlab_telemetry::propagation::inherit(
                ds.metadata.annotations.as_ref(),
                &mut p.metadata.annotations,
            );
            let span = tracing::info_span!("create pod", k8s.daemonset.name = %name, k8s.node.name = %node, k8s.namespace.name = %ns);
            netlab_telemetry::propagation::follow(&span, ds.metadata.annotations.as_ref());
            match tracing::Instrument::instrument(self.client.create(&p), span).await {
                Ok(created) => {
                    let pod_name = created.metadata.name.clone().unwrap_or_default();
                    self.expectations.created(key, format!("{ns}/{pod_name}"));
                    self.events.record(
                        ds,
                        EventType::Normal,
                        "SuccessfulCreate",
                        format!("Created pod: {pod_name}"),
                    );
                }
                Err(e) => {
                    self.events.record(
                        ds,
                        EventType::Warning,
                        "FailedCreate",
                        format!("Error creating: {e}"),
                    );
                    first_error.get_or_insert(e.into());
                }
            }
        }
        for pod_name in delete {
            match self.client.delete::<Pod>(&ns, pod_name).await {
                Ok(_) => {
                    self.expectations.deleted(key, format!("{ns}/{pod_name}"));
                    self.events.record(
                        ds,
                        EventType::Normal,
                        "SuccessfulDelete",
                        format!("Deleted pod: {pod_name}"),
                    );
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    self.events.record(
                        ds,
                        EventType::Warning,
                        "FailedDelete",
                        format!("Error deleting: {e}"),
                    );
                    first_error.get_or_insert(e.into());
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Reconcile for Controller {
    const NAME: &'static str = "daemonset";
    type Error = Error;

    #[instrument(skip_all, fields(daemonset = %key))]
    async fn reconcile(&self, key: &str) -> Result<Option<Duration>> {
        let Some(ds) = self.sets.get(key) else {
            self.expectations.forget(key);
            return Ok(None);
        };
        // A DaemonSet being deleted is left to the garbage collector.
        if pod::is_terminating(&ds.metadata) {
            return Ok(None);
        }
        let pods = self.claim(&ds).await?;
        let nodes = self.nodes.list();
        let hash = current_hash(&ds);
        let now = Timestamp::now();
        let satisfied =
            self.expectations.satisfied(key, |k| self.pods.get(k).map(|p| !pod::is_terminating(&p.metadata)));
        let mut synced = Ok(());
        if satisfied {
            let plan = manage(&ds, &nodes, &pods);
            for (pod_name, node) in &plan.failed {
                let ns = ds.metadata.namespace.as_deref().unwrap_or_default();
                self.events.record(
                    ds.as_ref(),
                    EventType::Warning,
                    "FailedDaemonPod",
                    format!("Found failed daemon pod {ns}/{pod_name} on node {node}, will try to kill it"),
                );
            }
            let rolling =
                ds.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|s| s.type_.as_deref())
                    != Some("OnDelete");
            synced = if !plan.is_empty() {
                self.sync_nodes(key, &ds, &plan.create, &plan.delete).await
            } else if rolling {
                let old = rolling_update(&ds, &nodes, &pods, &hash, template_generation(&ds), now);
                self.sync_nodes(key, &ds, &[], &old).await
            } else {
                Ok(())
            };
        }
        let (status, next) = calculate_status(&ds, &nodes, &pods, &hash, satisfied, now);
        if ds.status.as_ref() != Some(&status) {
            let mut updated = (*ds).clone();
            updated.status = Some(status);
            self.client.update_status(&updated).await?;
        }
        synced?;
        Ok(next.map(|at| pod::requeue_at(at, now)))
    }
}
