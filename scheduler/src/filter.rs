//! The Filter plugins kube-scheduler runs by default, reduced to what netlab's pods and nodes carry,
//! each failing with the upstream plugin's own reason string, because those strings are what a
//! learner reads in `describe pod`. Plugins run in upstream's order (NodeUnschedulable,
//! TaintToleration, NodeAffinity, NodeResourcesFit) and the first failure decides a node, as in
//! `RunFilterPlugins`. [`fit_error`] aggregates the per-node reasons into `FitError.Error()`'s
//! message, including the DefaultPreemption PostFilter's suffix.
//!
//! netlab has no node lifecycle controller to taint a node that is not Ready, so [`NodeInfo`]
//! adds the taint that controller would add (`node.kubernetes.io/not-ready:NoSchedule`, or
//! `unreachable` when Ready is Unknown): the pod then fails TaintToleration with upstream's message,
//! and a pod that tolerates the taint still schedules there, as upstream.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Pod, Taint, Toleration};

/// The taint a node that is not Ready carries (TaintNodesByCondition).
pub const TAINT_NOT_READY: &str = "node.kubernetes.io/not-ready";
/// The taint a node whose Ready condition is Unknown carries.
pub const TAINT_UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint a pod tolerates to land on a cordoned (`spec.unschedulable`) node.
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";
/// The message when the cluster has no nodes at all (`ErrNoNodesAvailable`).
pub const NO_NODES_AVAILABLE: &str = "no nodes available to schedule pods";

/// Why one node cannot take a pod: one variant per Filter plugin, with its upstream reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// NodeUnschedulable: the node is cordoned.
    NodeUnschedulable,
    /// TaintToleration: the first NoSchedule/NoExecute taint the pod does not tolerate.
    UntoleratedTaint {
        /// The taint's key.
        key: String,
        /// The taint's value ("" when unset).
        value: String,
    },
    /// NodeAffinity: `nodeSelector` or required node affinity does not match the node's labels.
    NodeAffinity,
    /// NodeResourcesFit: the node already holds `status.allocatable.pods` pods.
    TooManyPods,
}

/// What the scheduler needs of a Node, derived once per Node change so each decision is cheap.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    /// The node's name.
    pub name: String,
    /// Its labels, for nodeSelector and node affinity.
    pub labels: BTreeMap<String, String>,
    /// `spec.unschedulable` (cordoned).
    pub unschedulable: bool,
    /// Its NoSchedule and NoExecute taints, plus the not-ready/unreachable taint derived from its
    /// Ready condition.
    pub taints: Vec<Taint>,
    /// `status.allocatable.pods` (0 when absent, as upstream: such a node takes no pods).
    pub allocatable_pods: u32,
}

// === impl Reason ===

impl Reason {
    /// The plugin's reason string, as `FitError` counts it.
    pub fn message(&self) -> String {
        match self {
            Reason::NodeUnschedulable => "node(s) were unschedulable".into(),
            Reason::UntoleratedTaint { key, value } => {
                format!("node(s) had untolerated taint {{{key}: {value}}}")
            }
            Reason::NodeAffinity => "node(s) didn't match Pod's node affinity/selector".into(),
            Reason::TooManyPods => "Too many pods".into(),
        }
    }

    /// Whether removing pods could make the node fit (status Unschedulable rather than
    /// UnschedulableAndUnresolvable): only then does DefaultPreemption look for victims there.
    pub fn preemption_might_help(&self) -> bool {
        matches!(self, Reason::TooManyPods)
    }
}

// === impl NodeInfo ===

impl NodeInfo {
    /// Derives what the filters read from a Node.
    pub fn from_node(node: &Node) -> Self {
        let spec = node.spec.as_ref();
        let status = node.status.as_ref();
        let mut taints: Vec<Taint> = spec
            .and_then(|s| s.taints.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
            .collect();
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
            .map(|c| c.status.as_str());
        let condition_taint = match ready {
            Some("True") => None,
            Some("Unknown") => Some(TAINT_UNREACHABLE),
            _ => Some(TAINT_NOT_READY),
        };
        if let Some(key) = condition_taint
            && !taints.iter().any(|t| t.key == key && t.effect == "NoSchedule")
        {
            taints.push(Taint { key: key.into(), effect: "NoSchedule".into(), ..Default::default() });
        }
        let allocatable_pods = status
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get("pods"))
            .map(|q| parse_count(&q.0))
            .unwrap_or(0);
        Self {
            name: node.metadata.name.clone().unwrap_or_default(),
            labels: node.metadata.labels.clone().unwrap_or_default(),
            unschedulable: spec.and_then(|s| s.unschedulable).unwrap_or(false),
            taints,
            allocatable_pods,
        }
    }
}

/// A pod count quantity ("110", "1k"); anything unparsable counts as 0.
fn parse_count(q: &str) -> u32 {
    let q = q.trim();
    let (digits, scale) = match q.strip_suffix('k') {
        Some(d) => (d, 1000),
        None => (q, 1),
    };
    digits.parse::<u32>().map(|n| n.saturating_mul(scale)).unwrap_or(0)
}

/// Runs the filters for `pod` on `node`, which already holds `pods_on_node` pods (bound and
/// assumed, not terminated).
pub fn filter(pod: &Pod, node: &NodeInfo, pods_on_node: u32) -> Result<(), Reason> {
    let spec = pod.spec.as_ref();
    let tolerations = spec.and_then(|s| s.tolerations.as_deref()).unwrap_or(&[]);
    // NodeUnschedulable
    if node.unschedulable {
        let cordon =
            Taint { key: TAINT_UNSCHEDULABLE.into(), effect: "NoSchedule".into(), ..Default::default() };
        if !tolerations.iter().any(|t| tolerates(t, &cordon)) {
            return Err(Reason::NodeUnschedulable);
        }
    }
    // TaintToleration (NodeInfo keeps only NoSchedule and NoExecute taints)
    if let Some(taint) = node.taints.iter().find(|taint| !tolerations.iter().any(|t| tolerates(t, taint))) {
        return Err(Reason::UntoleratedTaint {
            key: taint.key.clone(),
            value: taint.value.clone().unwrap_or_default(),
        });
    }
    // NodeAffinity
    if !matches_node_affinity(pod, node) {
        return Err(Reason::NodeAffinity);
    }
    // NodeResourcesFit (pod count)
    if pods_on_node.saturating_add(1) > node.allocatable_pods {
        return Err(Reason::TooManyPods);
    }
    Ok(())
}

/// `Toleration.ToleratesTaint`.
pub fn tolerates(toleration: &Toleration, taint: &Taint) -> bool {
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

/// `nodeSelector` (every label equal) and required node affinity (any term matches).
fn matches_node_affinity(pod: &Pod, node: &NodeInfo) -> bool {
    let Some(spec) = pod.spec.as_ref() else { return true };
    if let Some(selector) = &spec.node_selector
        && !selector.iter().all(|(k, v)| node.labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|n| n.required_during_scheduling_ignored_during_execution.as_ref());
    match required {
        None => true,
        Some(selector) => selector.node_selector_terms.iter().any(|term| term_matches(term, node)),
    }
}

/// A term matches when all its requirements do; an empty term matches no node.
fn term_matches(term: &NodeSelectorTerm, node: &NodeInfo) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or(&[]);
    let fields = term.match_fields.as_deref().unwrap_or(&[]);
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    exprs.iter().all(|r| requirement_matches(r, node.labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| r.key == "metadata.name" && requirement_matches(r, Some(&node.name)))
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

/// `FitError.Error()` for a pod that fits on none of `num_nodes` nodes, `failures` holding each
/// node's reason: `0/N nodes are available: <count reason, ...>.` plus DefaultPreemption's
/// `preemption: ...` (netlab never preempts: every pod has the same priority in the lab, so nodes
/// that are merely full have no victims, as upstream reports for equal priorities).
pub fn fit_error(num_nodes: usize, failures: &[Reason], pod: &Pod) -> String {
    if num_nodes == 0 {
        return NO_NODES_AVAILABLE.into();
    }
    let filters = histogram(failures.iter().map(Reason::message));
    let never = pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never");
    let preemption = if never {
        "not eligible due to preemptionPolicy=Never.".to_string()
    } else {
        let per_node = failures.iter().map(|r| {
            if r.preemption_might_help() {
                "No preemption victims found for incoming pod".to_string()
            } else {
                "Preemption is not helpful for scheduling".to_string()
            }
        });
        format!("0/{num_nodes} nodes are available: {}.", histogram(per_node))
    };
    format!("0/{num_nodes} nodes are available: {filters}. preemption: {preemption}")
}

/// `sortReasonsHistogram`: "<count> <reason>" strings, sorted as strings, joined by ", ".
fn histogram(reasons: impl Iterator<Item = String>) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for r in reasons {
        *counts.entry(r).or_default() += 1;
    }
    let mut parts: Vec<String> = counts.into_iter().map(|(r, n)| format!("{n} {r}")).collect();
    parts.sort();
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use k8s_openapi::{
        api::core::v1::{Affinity, NodeAffinity, NodeCondition, NodeSelector, NodeSpec, NodeStatus, PodSpec},
        apimachinery::pkg::{api::resource::Quantity, apis::meta::v1::ObjectMeta},
    };

    use super::*;

    fn node(name: &str, ready: Option<&str>, pods: &str) -> Node {
        Node {
            metadata: ObjectMeta { name: Some(name.into()), ..Default::default() },
            spec: Some(NodeSpec::default()),
            status: Some(NodeStatus {
                allocatable: Some([("pods".to_string(), Quantity(pods.into()))].into()),
                conditions: ready.map(|s| {
                    vec![NodeCondition { type_: "Ready".into(), status: s.into(), ..Default::default() }]
                }),
                ..Default::default()
            }),
        }
    }

    fn ready(name: &str) -> NodeInfo {
        NodeInfo::from_node(&node(name, Some("True"), "110"))
    }

    fn pod() -> Pod {
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                namespace: Some("demo".into()),
                ..Default::default()
            },
            spec: Some(PodSpec::default()),
            ..Default::default()
        }
    }

    fn toleration(key: &str, op: &str, value: Option<&str>, effect: Option<&str>) -> Toleration {
        Toleration {
            key: Some(key.into()),
            operator: Some(op.into()),
            value: value.map(Into::into),
            effect: effect.map(Into::into),
            ..Default::default()
        }
    }

    #[test]
    fn a_ready_node_with_room_fits() {
        assert_eq!(filter(&pod(), &ready("n1"), 0), Ok(()));
        assert_eq!(filter(&pod(), &ready("n1"), 109), Ok(()));
    }

    #[test]
    fn a_full_node_has_too_many_pods() {
        let n = NodeInfo::from_node(&node("n1", Some("True"), "2"));
        assert_eq!(filter(&pod(), &n, 1), Ok(()));
        assert_eq!(filter(&pod(), &n, 2), Err(Reason::TooManyPods));
        assert_eq!(Reason::TooManyPods.message(), "Too many pods");
        // No allocatable at all: upstream treats it as room for 0 pods.
        let mut bare = node("n2", Some("True"), "0");
        bare.status.as_mut().unwrap().allocatable = None;
        assert_eq!(filter(&pod(), &NodeInfo::from_node(&bare), 0), Err(Reason::TooManyPods));
    }

    #[test]
    fn a_cordoned_node_is_unschedulable_unless_tolerated() {
        let mut n = ready("n1");
        n.unschedulable = true;
        assert_eq!(filter(&pod(), &n, 0), Err(Reason::NodeUnschedulable));
        assert_eq!(Reason::NodeUnschedulable.message(), "node(s) were unschedulable");
        let mut p = pod();
        p.spec.as_mut().unwrap().tolerations =
            Some(vec![toleration(TAINT_UNSCHEDULABLE, "Exists", None, Some("NoSchedule"))]);
        assert_eq!(filter(&p, &n, 0), Ok(()));
    }

    #[test]
    fn a_node_that_is_not_ready_gets_the_not_ready_taint() {
        for status in [Some("False"), None] {
            let n = NodeInfo::from_node(&node("n1", status, "110"));
            let err = filter(&pod(), &n, 0).unwrap_err();
            assert_eq!(err.message(), "node(s) had untolerated taint {node.kubernetes.io/not-ready: }");
        }
        let unknown = NodeInfo::from_node(&node("n1", Some("Unknown"), "110"));
        assert_eq!(
            filter(&pod(), &unknown, 0).unwrap_err().message(),
            "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"
        );
        // The default NoExecute tolerations every pod gets do not tolerate NoSchedule.
        let mut p = pod();
        p.spec.as_mut().unwrap().tolerations =
            Some(vec![toleration(TAINT_NOT_READY, "Exists", None, Some("NoExecute"))]);
        assert!(filter(&p, &NodeInfo::from_node(&node("n1", Some("False"), "110")), 0).is_err());
        p.spec.as_mut().unwrap().tolerations = Some(vec![toleration(TAINT_NOT_READY, "Exists", None, None)]);
        assert_eq!(filter(&p, &NodeInfo::from_node(&node("n1", Some("False"), "110")), 0), Ok(()));
    }

    #[test]
    fn node_taints_need_tolerations() {
        let mut n = node("n1", Some("True"), "110");
        n.spec.as_mut().unwrap().taints = Some(vec![
            Taint { key: "soft".into(), effect: "PreferNoSchedule".into(), ..Default::default() },
            Taint {
                key: "dedicated".into(),
                value: Some("gpu".into()),
                effect: "NoSchedule".into(),
                ..Default::default()
            },
        ]);
        let n = NodeInfo::from_node(&n);
        assert_eq!(
            filter(&pod(), &n, 0).unwrap_err().message(),
            "node(s) had untolerated taint {dedicated: gpu}"
        );
        let mut p = pod();
        p.spec.as_mut().unwrap().tolerations =
            Some(vec![toleration("dedicated", "Equal", Some("cpu"), None)]);
        assert!(filter(&p, &n, 0).is_err(), "a different value does not tolerate");
        p.spec.as_mut().unwrap().tolerations =
            Some(vec![toleration("dedicated", "Equal", Some("gpu"), None)]);
        assert_eq!(filter(&p, &n, 0), Ok(()));
        // An empty key with Exists tolerates everything.
        p.spec.as_mut().unwrap().tolerations = Some(vec![toleration("", "Exists", None, None)]);
        assert_eq!(filter(&p, &n, 0), Ok(()));
    }

    #[test]
    fn node_selector_and_required_affinity() {
        let mut n = ready("n1");
        n.labels.insert("disk".into(), "ssd".into());
        n.labels.insert("cores".into(), "8".into());
        let mut p = pod();
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "hdd".to_string())].into());
        assert_eq!(filter(&p, &n, 0), Err(Reason::NodeAffinity));
        assert_eq!(Reason::NodeAffinity.message(), "node(s) didn't match Pod's node affinity/selector");
        p.spec.as_mut().unwrap().node_selector = Some([("disk".to_string(), "ssd".to_string())].into());
        assert_eq!(filter(&p, &n, 0), Ok(()));

        let req = |key: &str, op: &str, values: &[&str]| NodeSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| v.to_string()).collect()),
        };
        let with_terms = |terms: Vec<NodeSelectorTerm>| {
            let mut p = pod();
            p.spec.as_mut().unwrap().affinity = Some(Affinity {
                node_affinity: Some(NodeAffinity {
                    required_during_scheduling_ignored_during_execution: Some(NodeSelector {
                        node_selector_terms: terms,
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            });
            p
        };
        let term = |exprs: Vec<NodeSelectorRequirement>| NodeSelectorTerm {
            match_expressions: Some(exprs),
            match_fields: None,
        };
        assert_eq!(filter(&with_terms(vec![term(vec![req("disk", "In", &["ssd", "nvme"])])]), &n, 0), Ok(()));
        assert!(filter(&with_terms(vec![term(vec![req("disk", "NotIn", &["ssd"])])]), &n, 0).is_err());
        assert_eq!(filter(&with_terms(vec![term(vec![req("cores", "Gt", &["4"])])]), &n, 0), Ok(()));
        assert!(filter(&with_terms(vec![term(vec![req("cores", "Lt", &["4"])])]), &n, 0).is_err());
        assert!(filter(&with_terms(vec![term(vec![req("gpu", "Exists", &[])])]), &n, 0).is_err());
        // Terms are ORed; an empty term matches nothing.
        assert_eq!(
            filter(
                &with_terms(vec![
                    term(vec![req("gpu", "Exists", &[])]),
                    term(vec![req("gpu", "DoesNotExist", &[])])
                ]),
                &n,
                0
            ),
            Ok(())
        );
        assert!(filter(&with_terms(vec![NodeSelectorTerm::default()]), &n, 0).is_err());
        let by_name = NodeSelectorTerm {
            match_expressions: None,
            match_fields: Some(vec![req("metadata.name", "In", &["n1"])]),
        };
        assert_eq!(filter(&with_terms(vec![by_name]), &n, 0), Ok(()));
    }

    #[test]
    fn plugins_run_in_upstream_order() {
        // Cordoned, tainted, mismatched and full: NodeUnschedulable reports first.
        let mut n = NodeInfo::from_node(&node("n1", Some("False"), "1"));
        n.unschedulable = true;
        let mut p = pod();
        p.spec.as_mut().unwrap().node_selector = Some([("x".to_string(), "y".to_string())].into());
        assert_eq!(filter(&p, &n, 5), Err(Reason::NodeUnschedulable));
        n.unschedulable = false;
        assert!(matches!(filter(&p, &n, 5), Err(Reason::UntoleratedTaint { .. })));
        n.taints.clear();
        assert_eq!(filter(&p, &n, 5), Err(Reason::NodeAffinity));
        p.spec.as_mut().unwrap().node_selector = None;
        assert_eq!(filter(&p, &n, 5), Err(Reason::TooManyPods));
    }

    #[test]
    fn the_fit_error_has_upstreams_form() {
        let full = [Reason::TooManyPods, Reason::TooManyPods];
        assert_eq!(
            fit_error(2, &full, &pod()),
            "0/2 nodes are available: 2 Too many pods. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod."
        );
        let mixed = [
            Reason::TooManyPods,
            Reason::NodeAffinity,
            Reason::UntoleratedTaint { key: TAINT_NOT_READY.into(), value: String::new() },
            Reason::TooManyPods,
        ];
        assert_eq!(
            fit_error(4, &mixed, &pod()),
            "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, \
             1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, 2 Too many pods. \
             preemption: 0/4 nodes are available: 2 No preemption victims found for incoming pod, \
             2 Preemption is not helpful for scheduling."
        );
        // sort.Strings order: "10 ..." sorts before "2 ...".
        let many: Vec<Reason> = std::iter::repeat_n(Reason::TooManyPods, 10)
            .chain(std::iter::repeat_n(Reason::NodeUnschedulable, 2))
            .collect();
        assert!(
            fit_error(12, &many, &pod())
                .starts_with("0/12 nodes are available: 10 Too many pods, 2 node(s) were unschedulable.")
        );
        let mut never = pod();
        never.spec.as_mut().unwrap().preemption_policy = Some("Never".into());
        assert_eq!(
            fit_error(1, &[Reason::TooManyPods], &never),
            "0/1 nodes are available: 1 Too many pods. preemption: not eligible due to preemptionPolicy=Never."
        );
        assert_eq!(fit_error(0, &[], &pod()), "no nodes available to schedule pods");
    }

    #[test]
    fn allocatable_pod_counts_parse() {
        assert_eq!(parse_count("110"), 110);
        assert_eq!(parse_count("1k"), 1000);
        assert_eq!(parse_count("lots"), 0);
    }
}
