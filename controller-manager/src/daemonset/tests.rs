//! Unit tests for the DaemonSet controller's decisions: which nodes run the pod, the pods it
//! creates, what a sync creates and deletes, the rolling update and the status.

use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::{
    apps::v1::DaemonSet,
    core::v1::{Node, Pod},
};
use serde_json::{Value, json};

use super::*;

fn daemon_set(extra_spec: Value) -> DaemonSet {
    let mut ds = json!({
        "metadata": {"name": "aws-node", "namespace": "kube-system", "uid": "ds-uid", "generation": 2,
                     "annotations": {"deprecated.daemonset.template.generation": "2"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
                 "template": {"metadata": {"labels": {"k8s-app": "aws-node"}},
                              "spec": {"containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"}]}}}
    });
    if let (Some(spec), Value::Object(extra)) = (ds["spec"].as_object_mut(), extra_spec) {
        spec.extend(extra);
    }
    serde_json::from_value(ds).unwrap()
}

fn with_template_spec(ds: &mut DaemonSet, spec: Value) {
    let mut t = serde_json::to_value(&ds.spec.as_ref().unwrap().template.spec).unwrap();
    t.as_object_mut().unwrap().extend(spec.as_object().unwrap().clone());
    ds.spec.as_mut().unwrap().template.spec = Some(serde_json::from_value(t).unwrap());
}

fn node(name: &str, labels: Value, taints: Value) -> Arc<Node> {
    Arc::new(
        serde_json::from_value(
            json!({"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}),
        )
        .unwrap(),
    )
}

fn nodes(names: &[&str]) -> Vec<Arc<Node>> {
    names.iter().map(|n| node(n, json!({"kubernetes.io/os": "linux"}), json!([]))).collect()
}

/// A daemon pod on `node_name`, Running and Ready since `ready` if given, made from the template
/// with `hash` and `generation`.
fn daemon_pod(
    name: &str,
    node_name: &str,
    hash: &str,
    generation: &str,
    ready: bool,
    created: &str,
) -> Arc<Pod> {
    let conditions = if ready {
        json!([{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-01T00:00:00Z"}])
    } else {
        json!([{"type": "Ready", "status": "False"}])
    };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "kube-system", "creationTimestamp": created,
                         "labels": {"k8s-app": "aws-node", "controller-revision-hash": hash, "pod-template-generation": generation},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "aws-node", "uid": "ds-uid", "controller": true}]},
            "spec": {"nodeName": node_name, "containers": [{"name": "aws-node"}]},
            "status": {"phase": "Running", "conditions": conditions}
        }))
        .unwrap(),
    )
}

fn now() -> Timestamp {
    "2025-01-01T01:00:00Z".parse().unwrap()
}

#[test]
fn node_selector_and_taints_decide_where_daemons_run() {
    let mut ds = daemon_set(json!({}));
    with_template_spec(&mut ds, json!({"nodeSelector": {"kubernetes.io/os": "linux"}}));
    let linux = node("n1", json!({"kubernetes.io/os": "linux"}), json!([]));
    let windows = node("n2", json!({"kubernetes.io/os": "windows"}), json!([]));
    assert_eq!(node_should_run(&ds, &linux), (true, true));
    assert_eq!(node_should_run(&ds, &windows), (false, false));
    // The taints every daemon pod tolerates: a NotReady or cordoned node keeps its daemons.
    let not_ready = node(
        "n3",
        json!({"kubernetes.io/os": "linux"}),
        json!([{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
               {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
    );
    assert_eq!(node_should_run(&ds, &not_ready), (true, true));
    // A NoSchedule taint the pod does not tolerate: no new pod, the one there stays.
    let dedicated = node(
        "n4",
        json!({"kubernetes.io/os": "linux"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    );
    assert_eq!(node_should_run(&ds, &dedicated), (false, true));
    let evicting = node(
        "n5",
        json!({"kubernetes.io/os": "linux"}),
        json!([{"key": "dedicated", "value": "gpu", "effect": "NoExecute"}]),
    );
    assert_eq!(node_should_run(&ds, &evicting), (false, false));
    let prefer = node(
        "n6",
        json!({"kubernetes.io/os": "linux"}),
        json!([{"key": "dedicated", "effect": "PreferNoSchedule"}]),
    );
    assert_eq!(node_should_run(&ds, &prefer), (true, true));
    with_template_spec(&mut ds, json!({"tolerations": [{"key": "dedicated", "operator": "Exists"}]}));
    assert_eq!(node_should_run(&ds, &evicting), (true, true));
    // Required node affinity, as the scheduler reads it.
    with_template_spec(
        &mut ds,
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "eks.amazonaws.com/compute-type", "operator": "NotIn", "values": ["fargate"]}]}]}}}}),
    );
    assert_eq!(node_should_run(&ds, &linux), (true, true));
    let fargate = node(
        "f1",
        json!({"kubernetes.io/os": "linux", "eks.amazonaws.com/compute-type": "fargate"}),
        json!([]),
    );
    assert_eq!(node_should_run(&ds, &fargate), (false, false));
}

#[test]
fn pods_are_pinned_to_their_node_and_carry_the_revision() {
    let mut ds = daemon_set(json!({}));
    with_template_spec(
        &mut ds,
        json!({"tolerations": [{"operator": "Exists", "effect": "NoSchedule"}], "hostNetwork": true}),
    );
    let p = new_pod(&ds, "node-2", "6f8b9c7d5", Some(2));
    assert_eq!(p.metadata.generate_name.as_deref(), Some("aws-node-"));
    assert_eq!(p.metadata.namespace.as_deref(), Some("kube-system"));
    let labels = p.metadata.labels.clone().unwrap();
    assert_eq!(labels["k8s-app"], "aws-node");
    assert_eq!(labels["controller-revision-hash"], "6f8b9c7d5");
    assert_eq!(labels["pod-template-generation"], "2");
    let r = &p.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (r.kind.as_str(), r.name.as_str(), r.uid.as_str(), r.controller),
        ("DaemonSet", "aws-node", "ds-uid", Some(true))
    );
    let spec = serde_json::to_value(p.spec.as_ref().unwrap()).unwrap();
    assert_eq!(
        spec["affinity"],
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-2"]}]}]}}})
    );
    assert_eq!(spec.get("nodeName"), None, "the scheduler binds it");
    let tolerations: Vec<(String, String)> = p
        .spec
        .as_ref()
        .unwrap()
        .tolerations
        .iter()
        .flatten()
        .map(|t| (t.key.clone().unwrap_or_default(), t.effect.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        tolerations,
        [
            ("", "NoSchedule"),
            ("node.kubernetes.io/not-ready", "NoExecute"),
            ("node.kubernetes.io/unreachable", "NoExecute"),
            ("node.kubernetes.io/disk-pressure", "NoSchedule"),
            ("node.kubernetes.io/memory-pressure", "NoSchedule"),
            ("node.kubernetes.io/pid-pressure", "NoSchedule"),
            ("node.kubernetes.io/unschedulable", "NoSchedule"),
            ("node.kubernetes.io/network-unavailable", "NoSchedule"),
        ]
        .map(|(k, e)| (k.to_string(), e.to_string()))
    );
    assert_eq!(target_node(&p).as_deref(), Some("node-2"));
    // Adding them twice changes nothing.
    let mut again = p.spec.clone().unwrap();
    add_daemon_tolerations(&mut again);
    assert_eq!(again.tolerations, p.spec.unwrap().tolerations);
}

#[test]
fn manage_creates_on_missing_nodes_and_cleans_up() {
    let mut ds = daemon_set(json!({}));
    with_template_spec(&mut ds, json!({"nodeSelector": {"kubernetes.io/os": "linux"}}));
    let mut all = nodes(&["node-1", "node-2", "node-3"]);
    all.push(node("win-1", json!({"kubernetes.io/os": "windows"}), json!([])));
    let h = current_hash(&ds);
    let mut failed = (*daemon_pod("aws-node-f", "node-3", &h, "2", false, "2025-01-01T00:00:00Z")).clone();
    failed.status.as_mut().unwrap().phase = Some("Failed".into());
    let pods = vec![
        daemon_pod("aws-node-a", "node-1", &h, "2", true, "2025-01-01T00:00:00Z"),
        daemon_pod("aws-node-b", "node-1", &h, "2", true, "2025-01-01T00:00:05Z"),
        Arc::new(failed),
        daemon_pod("aws-node-w", "win-1", &h, "2", true, "2025-01-01T00:00:00Z"),
    ];
    let plan = manage(&ds, &all, &pods);
    assert_eq!(plan.create, ["node-2"]);
    assert_eq!(
        plan.delete,
        ["aws-node-b", "aws-node-f", "aws-node-w"],
        "the newer twin, the failed pod, the misscheduled one"
    );
    assert_eq!(plan.failed, [("aws-node-f".to_string(), "node-3".to_string())]);
    // Once every node has its one pod, nothing to do.
    let settled = vec![
        daemon_pod("aws-node-a", "node-1", &h, "2", true, "2025-01-01T00:00:00Z"),
        daemon_pod("aws-node-c", "node-2", &h, "2", true, "2025-01-01T00:00:00Z"),
        daemon_pod("aws-node-d", "node-3", &h, "2", true, "2025-01-01T00:00:00Z"),
    ];
    assert!(manage(&ds, &all, &settled).is_empty());
    // A pod still terminating on its node holds the node: no replacement yet.
    let mut leaving = (*settled[2]).clone();
    leaving.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let plan = manage(&ds, &all, &[settled[0].clone(), settled[1].clone(), Arc::new(leaving)]);
    assert!(plan.is_empty(), "{plan:?}");
}

#[test]
fn rolling_update_replaces_one_node_at_a_time() {
    let ds = daemon_set(json!({}));
    let all = nodes(&["node-1", "node-2", "node-3"]);
    let new = current_hash(&ds);
    let old = |name: &str, node: &str| daemon_pod(name, node, "oldhash", "1", true, "2025-01-01T00:00:00Z");
    // Everything old and available: one goes, the first node by name.
    let pods = vec![old("a", "node-1"), old("b", "node-2"), old("c", "node-3")];
    assert_eq!(rolling_update(&ds, &all, &pods, &new, Some(2), now()), ["a"]);
    // node-1 has no pod (the old one was deleted, the new one not yet made): wait.
    let pods = vec![old("b", "node-2"), old("c", "node-3")];
    assert!(rolling_update(&ds, &all, &pods, &new, Some(2), now()).is_empty());
    // node-1's new pod is not Ready yet: wait.
    let pods = vec![
        daemon_pod("n", "node-1", &new, "2", false, "2025-01-01T00:59:00Z"),
        old("b", "node-2"),
        old("c", "node-3"),
    ];
    assert!(rolling_update(&ds, &all, &pods, &new, Some(2), now()).is_empty());
    // node-1's new pod is available: the next node.
    let pods = vec![
        daemon_pod("n", "node-1", &new, "2", true, "2025-01-01T00:59:00Z"),
        old("b", "node-2"),
        old("c", "node-3"),
    ];
    assert_eq!(rolling_update(&ds, &all, &pods, &new, Some(2), now()), ["b"]);
    // An old pod that is not available is replaced at once, beside the one the budget allows.
    let broken = daemon_pod("c", "node-3", "oldhash", "1", false, "2025-01-01T00:00:00Z");
    let pods = vec![old("a", "node-1"), old("b", "node-2"), broken];
    assert_eq!(rolling_update(&ds, &all, &pods, &new, Some(2), now()), ["c", "a"]);
    // maxUnavailable 2 of 3 (as a percentage, rounded up).
    let wide = daemon_set(
        json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "50%", "maxSurge": 0}}}),
    );
    let pods = vec![old("a", "node-1"), old("b", "node-2"), old("c", "node-3")];
    assert_eq!(rolling_update(&wide, &all, &pods, &new, Some(2), now()), ["a", "b"]);
    // A pod with the current template generation counts as updated even under another hash.
    let pods = vec![daemon_pod("a", "node-1", "otherhash", "2", true, "2025-01-01T00:00:00Z")];
    assert!(rolling_update(&ds, &all[..1], &pods, &new, Some(2), now()).is_empty());
}

#[test]
fn status_counts_nodes() {
    let mut ds = daemon_set(json!({"minReadySeconds": 7200}));
    with_template_spec(&mut ds, json!({"nodeSelector": {"kubernetes.io/os": "linux"}}));
    let mut all = nodes(&["node-1", "node-2", "node-3", "node-4"]);
    all.push(node("win-1", json!({"kubernetes.io/os": "windows"}), json!([])));
    let h = current_hash(&ds);
    let pods = vec![
        daemon_pod("a", "node-1", &h, "2", true, "2025-01-01T00:00:00Z"),
        daemon_pod("b", "node-2", "oldhash", "1", true, "2025-01-01T00:00:00Z"),
        daemon_pod("c", "node-3", &h, "2", false, "2025-01-01T00:00:00Z"),
        daemon_pod("w", "win-1", &h, "2", true, "2025-01-01T00:00:00Z"),
    ];
    let (status, next) = calculate_status(&ds, &all, &pods, &h, true, now());
    let v = serde_json::to_value(&status).unwrap();
    assert_eq!(
        v,
        json!({"desiredNumberScheduled": 4, "currentNumberScheduled": 3, "numberMisscheduled": 1, "numberReady": 2,
               "updatedNumberScheduled": 2, "numberUnavailable": 4, "observedGeneration": 2})
    );
    // Ready since 00:00 with minReadySeconds of two hours: available at 02:00.
    assert_eq!(next, Some("2025-01-01T02:00:00Z".parse().unwrap()));
    let (later, _) = calculate_status(&ds, &all, &pods, &h, false, "2025-01-01T03:00:00Z".parse().unwrap());
    assert_eq!(
        (later.number_available, later.number_unavailable, later.observed_generation),
        (Some(2), Some(2), None)
    );
}
