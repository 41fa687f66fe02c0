//! What each fault is on right now. This is the one place in the lab where pod selectors are
//! evaluated (the enforcers read the records it produces): a pod-scoped fault's selector (and a
//! NetworkChaos' `target`) is matched against every pod and narrowed by its mode; the lab's own
//! kinds name what they reach (a component, a node's kube-proxy, the registry, a node's pod
//! CIDR).

use std::{collections::HashMap, sync::Arc};

use k8s_openapi::api::core::v1::{Node, Pod};
use netlab_chaos::{
    Chaos, ComponentChaos, DnsChaos, ExhaustionChaos, NetworkChaos, PodChaos, RegistryChaos,
    UpstreamDnsChaos,
    lab::ExhaustionAction,
    pod::PodAction,
    select::{self, ValueError},
    spec::{Mode, PodSelector},
};
use netlab_client::reflector::Cache;

use super::experiment::Target;

/// `selectorKey` of the main selector.
pub const MAIN: &str = ".";
/// `selectorKey` of NetworkChaos' `target`.
pub const TARGET: &str = ".Target";

/// What the selection runs over.
#[derive(Clone)]
pub struct World {
    /// Every pod.
    pub pods: Cache<Pod>,
    /// Every node.
    pub nodes: Cache<Node>,
}

/// Why a selector picked nothing, worded as Chaos Mesh's selector errors are (they end up in
/// `Failed to select targets: ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    /// No pod matched (upstream `ErrNoPodSelected`).
    #[error("no pod is selected")]
    NoPod,
    /// A lab kind found nothing to act on (upstream's literal for an empty selection).
    #[error("no target has been selected")]
    NoTarget,
    /// `value` does not fit `mode`.
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// What a fault is on, and why part of it is missing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    /// The targets found.
    pub targets: Vec<Target>,
    /// Set when a selector picked nothing (the others' targets are still recorded).
    pub failure: Option<SelectError>,
}

/// What the chaos controller needs of each kind besides [`Chaos`].
pub trait Kind: Chaos {
    /// Done once per target and never undone (Chaos Mesh's `oneshot` kinds: pod-kill,
    /// container-kill): selected once, always `Run`.
    fn oneshot(&self) -> bool {
        false
    }

    /// Applied by the controller itself (pod-kill: an API delete), rather than by an enforcer
    /// reading the records.
    fn applied_by_controller(&self) -> bool {
        false
    }

    /// For pod-kill: the deletion's grace period in seconds (`gracePeriod`, 0 when unset: at
    /// once, as upstream).
    fn grace_period(&self) -> i64 {
        0
    }

    /// Whether it selects pods, so that pod changes may concern it.
    fn pod_scoped(&self) -> bool {
        self.pod_selector().is_some()
    }

    /// The selectors it has, by selector key.
    fn selectors(&self) -> Vec<(&'static str, &PodSelector)> {
        self.pod_selector().map(|s| vec![(MAIN, s)]).unwrap_or_default()
    }

    /// What it is on now. `recorded` are the current records' (id, selector key), so that a
    /// mode that picks some of the matching pods keeps the ones it picked.
    fn select(&self, world: &World, recorded: &[(String, String)]) -> Selection {
        pods(self, world, recorded)
    }
}

impl Kind for NetworkChaos {
    fn selectors(&self) -> Vec<(&'static str, &PodSelector)> {
        let mut out = vec![(MAIN, &self.spec.pods)];
        out.extend(self.spec.target.as_ref().map(|t| (TARGET, t)));
        out
    }
}

impl Kind for DnsChaos {}

impl Kind for PodChaos {
    fn oneshot(&self) -> bool {
        matches!(self.spec.action, PodAction::PodKill | PodAction::ContainerKill)
    }

    fn applied_by_controller(&self) -> bool {
        self.spec.action == PodAction::PodKill
    }

    fn grace_period(&self) -> i64 {
        self.spec.grace_period.unwrap_or(0)
    }
}

impl Kind for ComponentChaos {
    fn select(&self, world: &World, _: &[(String, String)]) -> Selection {
        let component = self.spec.component.as_str();
        if !self.spec.component.per_node() {
            return found(vec![Target { id: component.to_string(), ..Default::default() }]);
        }
        found(per_node(world, &self.spec.nodes, component))
    }
}

impl Kind for RegistryChaos {
    fn select(&self, _: &World, _: &[(String, String)]) -> Selection {
        found(vec![Target { id: "cloud/registry".into(), ..Default::default() }])
    }
}

impl Kind for UpstreamDnsChaos {
    fn select(&self, _: &World, _: &[(String, String)]) -> Selection {
        found(vec![Target { id: "cloud/resolver".into(), ..Default::default() }])
    }
}

impl Kind for ExhaustionChaos {
    fn select(&self, world: &World, _: &[(String, String)]) -> Selection {
        match self.spec.action {
            ExhaustionAction::ServiceCidr => {
                found(vec![Target { id: "apiserver/service-cidr".into(), ..Default::default() }])
            }
            ExhaustionAction::PodCidr | ExhaustionAction::Conntrack => {
                found(per_node(world, &self.spec.nodes, self.spec.action.as_str()))
            }
        }
    }
}

/// Whether a change of `pod` may change what `fault` selects: one of its selectors matches it
/// (`pods` holds the versions to try: the changed one and the cached one), or it has a record
/// of it.
pub fn concerns<K: Kind>(fault: &K, world: &World, pods: &[&Pod]) -> bool {
    if !fault.pod_scoped() {
        return false;
    }
    let fault_ns = fault.metadata().namespace.as_deref().unwrap_or("default");
    let nodes = nodes_for(fault, world);
    let labels = node_labels(&nodes);
    let recorded =
        |id: &str| fault.status().is_some_and(|s| s.experiment.container_records.iter().any(|r| r.id == id));
    pods.iter().any(|pod| {
        recorded(&pod_id(pod))
            || fault
                .selectors()
                .iter()
                .any(|(_, sel)| select::matches(&sel.selector, fault_ns, pod, |n| labels.get(n).copied()))
    })
}

/// `namespace/name` of a pod: its record id.
pub fn pod_id(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Every pod-scoped kind: each selector's matches, narrowed by its mode. Chaos Mesh picks at
/// random once; the lab re-evaluates as pods come and go, so a mode that takes some of the
/// matches first keeps the pods it already has (while they still match) and fills the rest in
/// [`select::pick`]'s stable order.
fn pods<K: Kind>(fault: &K, world: &World, recorded: &[(String, String)]) -> Selection {
    let fault_ns = fault.metadata().namespace.as_deref().unwrap_or("default");
    let uid = fault.metadata().uid.as_deref().unwrap_or_default();
    let all_pods = world.pods.list();
    let nodes = nodes_for(fault, world);
    let labels = node_labels(&nodes);
    let mut selection = Selection::default();
    for (key, sel) in fault.selectors() {
        let matched = all_pods
            .iter()
            .map(Arc::as_ref)
            .filter(|pod| select::matches(&sel.selector, fault_ns, pod, |n| labels.get(n).copied()));
        // Every match, ranked (mode `all` takes them all and cannot fail).
        let every = PodSelector { mode: Mode::All, ..Default::default() };
        let ranked = select::pick(&every, uid, matched).unwrap_or_default();
        let wanted = match select::count(sel, ranked.len(), uid) {
            Ok(n) => n,
            Err(e) => {
                selection.failure.get_or_insert(e.into());
                continue;
            }
        };
        let had = |pod: &Pod| recorded.iter().any(|(id, k)| k == key && *id == pod_id(pod));
        let (kept, fresh): (Vec<&Pod>, Vec<&Pod>) = ranked.into_iter().partition(|p| had(p));
        let chosen: Vec<&Pod> = kept.into_iter().chain(fresh).take(wanted).collect();
        if chosen.is_empty() {
            selection.failure.get_or_insert(SelectError::NoPod);
        }
        selection.targets.extend(chosen.into_iter().map(|pod| Target {
            id: pod_id(pod),
            selector_key: key.to_string(),
            pod_ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()).unwrap_or_default(),
            node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default(),
        }));
    }
    selection.targets.sort();
    selection
}

/// `<node>/<what>` for each of `names` that is a node (every node when `names` is empty).
fn per_node(world: &World, names: &[String], what: &str) -> Vec<Target> {
    world
        .nodes
        .list()
        .iter()
        .filter_map(|n| n.metadata.name.clone())
        .filter(|n| names.is_empty() || names.contains(n))
        .map(|node| Target { id: format!("{node}/{what}"), node_name: node, ..Default::default() })
        .collect()
}

/// The nodes, if a selector of `fault` has `nodeSelectors` (nothing else reads them).
fn nodes_for<K: Kind>(fault: &K, world: &World) -> Vec<Arc<Node>> {
    let wanted = fault.selectors().iter().any(|(_, s)| !s.selector.node_selectors.is_empty());
    if wanted { world.nodes.list() } else { Vec::new() }
}

fn found(targets: Vec<Target>) -> Selection {
    let failure = targets.is_empty().then_some(SelectError::NoTarget);
    Selection { targets, failure }
}

fn node_labels(nodes: &[Arc<Node>]) -> HashMap<&str, &std::collections::BTreeMap<String, String>> {
    nodes.iter().filter_map(|n| Some((n.metadata.name.as_deref()?, n.metadata.labels.as_ref()?))).collect()
}
