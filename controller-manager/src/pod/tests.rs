//! Unit tests for the pod predicates and the deletion order, and the fixtures the workload
//! controllers' tests share.

use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use serde_json::json;

use crate::pod;

/// A pod template running `image`, labelled `app: orders`.
pub(crate) fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(json!({
        "metadata": {"labels": {"app": "orders"}},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }))
    .unwrap()
}

/// A pod `created` at that time, Ready since `ready` if given.
pub(crate) fn pod(name: &str, node: Option<&str>, phase: &str, ready: Option<&str>, created: &str) -> Pod {
    let mut conditions = vec![];
    if let Some(t) = ready {
        conditions.push(json!({"type": "Ready", "status": "True", "lastTransitionTime": t}));
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": {"containers": [{"name": "app"}], "nodeName": node},
        "status": {"phase": phase, "conditions": conditions}
    }))
    .unwrap()
}

#[test]
fn scale_down_deletes_unscheduled_then_not_ready_then_newest() {
    let t0 = "2025-01-01T00:00:00Z";
    let t1 = "2025-01-01T00:01:00Z";
    let unscheduled = pod("unscheduled", None, "Pending", None, t0);
    let pending = pod("pending", Some("n1"), "Pending", None, t0);
    let not_ready = pod("not-ready", Some("n1"), "Running", None, t0);
    let old_ready = pod("old-ready", Some("n2"), "Running", Some(t0), t0);
    let new_ready = pod("new-ready", Some("n3"), "Running", Some(t0), t1);
    let pods = [&old_ready, &new_ready, &not_ready, &pending, &unscheduled];
    let order: Vec<_> =
        pod::pods_to_delete(&pods, 5).iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    assert_eq!(order, ["unscheduled", "pending", "not-ready", "new-ready", "old-ready"]);
    assert_eq!(pod::pods_to_delete(&pods, 2).len(), 2);
}

#[test]
fn scale_down_prefers_pods_doubled_up_on_a_node_and_recently_ready() {
    let t0 = "2025-01-01T00:00:00Z";
    let t1 = "2025-01-01T00:05:00Z";
    let alone = pod("alone", Some("n1"), "Running", Some(t0), t0);
    let crowded_a = pod("crowded-a", Some("n2"), "Running", Some(t0), t0);
    let crowded_b = pod("crowded-b", Some("n2"), "Running", Some(t1), t0);
    let pods = [&alone, &crowded_a, &crowded_b];
    let order: Vec<_> =
        pod::pods_to_delete(&pods, 3).iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    assert_eq!(order, ["crowded-b", "crowded-a", "alone"]);
}

#[test]
fn terminating_and_finished_pods_are_not_replicas() {
    let t0 = "2025-01-01T00:00:00Z";
    let mut terminating = pod("t", Some("n1"), "Running", Some(t0), t0);
    terminating.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t0.parse().unwrap()));
    assert!(!pod::is_active(&terminating));
    assert!(!pod::is_active(&pod("f", Some("n1"), "Failed", None, t0)));
    assert!(!pod::is_active(&pod("s", Some("n1"), "Succeeded", None, t0)));
    assert!(pod::is_active(&pod("p", None, "Pending", None, t0)));
}

#[test]
fn availability_waits_for_min_ready_seconds() {
    let p = pod("p", Some("n1"), "Running", Some("2025-01-01T00:00:00Z"), "2025-01-01T00:00:00Z");
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    assert!(pod::is_available(&p, 0, at("2025-01-01T00:00:00Z")));
    assert!(!pod::is_available(&p, 10, at("2025-01-01T00:00:05Z")));
    assert!(pod::is_available(&p, 10, at("2025-01-01T00:00:10Z")));
    assert!(!pod::is_available(
        &pod("q", Some("n1"), "Running", None, "2025-01-01T00:00:00Z"),
        0,
        at("2025-01-01T00:00:10Z")
    ));
}

#[test]
fn availability_counts_the_available_and_says_when_the_next_one_is() {
    let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
    let early = pod("early", Some("n1"), "Running", Some("2025-01-01T00:00:00Z"), "2025-01-01T00:00:00Z");
    let late = pod("late", Some("n1"), "Running", Some("2025-01-01T00:00:08Z"), "2025-01-01T00:00:00Z");
    let not_ready = pod("q", Some("n1"), "Running", None, "2025-01-01T00:00:00Z");
    let now = at("2025-01-01T00:00:12Z");
    let (available, next) = pod::availability([&early, &late, &not_ready], 10, now);
    assert_eq!((available, next), (1, Some(at("2025-01-01T00:00:18Z"))));
    assert_eq!(pod::requeue_at(at("2025-01-01T00:00:18Z"), now), std::time::Duration::from_millis(6100));
    assert_eq!(pod::requeue_at(at("2025-01-01T00:00:00Z"), now), std::time::Duration::from_millis(100));
}
