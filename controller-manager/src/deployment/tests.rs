//! Unit tests for the Deployment controller's arithmetic and status.

use k8s_openapi::{
    api::apps::v1::{Deployment, ReplicaSet},
    apimachinery::pkg::util::intstr::IntOrString,
};
use serde_json::json;

use super::{calculate_status, equal_ignore_hash, is_complete, is_progressing, rollout::*};

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

#[test]
fn surge_rounds_up_and_unavailable_rounds_down() {
    assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 10), (3, 2));
    assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 3), (1, 0));
    assert_eq!(resolve_fenceposts(Some(&pct("25%")), Some(&pct("25%")), 4), (1, 1));
    assert_eq!(resolve_fenceposts(Some(&IntOrString::Int(2)), Some(&IntOrString::Int(0)), 4), (2, 0));
    assert_eq!(
        resolve_fenceposts(Some(&IntOrString::Int(0)), Some(&pct("10%")), 5),
        (0, 1),
        "both 0: one may be unavailable"
    );
    assert_eq!(scaled_value(Some(&pct("100%")), 7, false), 7);
    assert_eq!(scaled_value(Some(&pct("bad")), 7, true), 0);
}

fn deployment(replicas: i32, strategy: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "orders", "generation": 2},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "orders"}},
                 "template": {"metadata": {"labels": {"app": "orders"}}}, "strategy": strategy}
    }))
    .unwrap()
}

#[test]
fn max_surge_and_unavailable_follow_the_strategy() {
    let d = deployment(
        10,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
    );
    assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
    let recreate = deployment(10, json!({"type": "Recreate"}));
    assert_eq!((max_surge(&recreate), max_unavailable(&recreate)), (0, 0));
    let zero = deployment(
        0,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
    );
    assert_eq!(max_unavailable(&zero), 0);
    let capped = deployment(
        2,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 5}}),
    );
    assert_eq!(max_unavailable(&capped), 2, "never more than replicas");
}

#[test]
fn the_new_replica_set_grows_within_surge() {
    // 4 replicas, surge 1: a new ReplicaSet next to 4 old pods gets 1.
    assert_eq!(new_rs_new_replicas(4, 1, 4, 0), 1);
    // Old scaled to 3: total 4 of 5 allowed, the new one grows to 2.
    assert_eq!(new_rs_new_replicas(4, 1, 4, 1), 2);
    // At the ceiling nothing changes.
    assert_eq!(new_rs_new_replicas(4, 1, 5, 2), 2);
    // Never past replicas.
    assert_eq!(new_rs_new_replicas(4, 10, 4, 3), 4);
}

#[test]
fn old_replica_sets_shrink_within_unavailable() {
    // 4 replicas, unavailable 1, 5 pods of which the new ReplicaSet's 1 is not available yet.
    assert_eq!(max_scaled_down(5, 4, 1, 1), 1);
    // New ReplicaSet of 2 unavailable: nothing more may go.
    assert_eq!(max_scaled_down(5, 4, 1, 2), 0);
    assert_eq!(scale_down_budget(4, 4, 1), 1);
    assert_eq!(scale_down_budget(3, 4, 1), 0);
}

#[test]
fn scaling_mid_rollout_is_proportional() {
    // Old 6 and new 4 of a 10-replica Deployment (annotated max 13), scaled to 20 (max 25): 15 more.
    assert_eq!(proportion(6, 20, 5, 13, 15, 0), 6);
    assert_eq!(proportion(4, 20, 5, 13, 15, 6), 4);
    assert_eq!(proportion(0, 20, 5, 13, 15, 0), 0, "empty ReplicaSets stay empty");
    assert_eq!(proportion(6, 0, 0, 13, -10, 0), -6, "to zero");
}

fn rs(replicas: i32, status: serde_json::Value) -> ReplicaSet {
    serde_json::from_value(
        json!({"metadata": {"name": "rs"}, "spec": {"replicas": replicas, "selector": {}}, "status": status}),
    )
    .unwrap()
}

#[test]
fn status_and_conditions() {
    let d = deployment(
        4,
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
    );
    let old = rs(3, json!({"replicas": 3, "readyReplicas": 3, "availableReplicas": 3}));
    let new = rs(2, json!({"replicas": 2, "readyReplicas": 0, "availableReplicas": 0}));
    let st = calculate_status(&[&old, &new], Some(&new), &d);
    assert_eq!(
        (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas, st.unavailable_replicas),
        (Some(5), Some(2), Some(3), Some(3), Some(2))
    );
    let available = st.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("True", Some("MinimumReplicasAvailable"))
    );
    assert_eq!(available.message.as_deref(), Some("Deployment has minimum availability."));
    assert!(!is_complete(&d, &st));
    assert!(is_progressing(&d, &st), "more updated replicas than the stored status");

    let fewer = rs(4, json!({"replicas": 4, "availableReplicas": 2}));
    let st = calculate_status(&[&fewer], Some(&fewer), &d);
    let available = st.conditions.as_ref().unwrap().iter().find(|c| c.type_ == "Available").unwrap();
    assert_eq!(
        (available.status.as_str(), available.reason.as_deref()),
        ("False", Some("MinimumReplicasUnavailable"))
    );

    let done = rs(4, json!({"replicas": 4, "readyReplicas": 4, "availableReplicas": 4}));
    assert!(is_complete(&d, &calculate_status(&[&done], Some(&done), &d)));
}

#[test]
fn templates_compare_without_the_hash_label() {
    let t = |labels: serde_json::Value| {
        serde_json::from_value(json!({"metadata": {"labels": labels}, "spec": {"containers": []}})).unwrap()
    };
    assert!(equal_ignore_hash(&t(json!({"app": "a", "pod-template-hash": "x"})), &t(json!({"app": "a"}))));
    assert!(!equal_ignore_hash(&t(json!({"app": "a"})), &t(json!({"app": "b"}))));
}
