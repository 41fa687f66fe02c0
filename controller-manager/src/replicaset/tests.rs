//! Unit tests for the ReplicaSet controller's pure parts: hashing, naming, deletion order,
//! selectors, expectations and status.

use std::sync::Arc;

use k8s_openapi::{
    api::{
        apps::v1::ReplicaSet,
        core::v1::{Pod, PodTemplateSpec},
    },
    apimachinery::pkg::apis::meta::v1::LabelSelector,
};
use serde_json::json;

use super::expectations::Expectations;
use crate::{hash, pod, selector};

fn template(image: &str) -> PodTemplateSpec {
    serde_json::from_value(json!({
        "metadata": {"labels": {"app": "orders"}},
        "spec": {"containers": [{"name": "app", "image": image}]}
    }))
    .unwrap()
}

fn pod(name: &str, node: Option<&str>, phase: &str, ready: Option<&str>, created: &str) -> Pod {
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
fn safe_encode_uses_upstreams_alphabet() {
    // Digits are bytes 48..=57; 48 % 27 = 21 → '4' ... 57 % 27 = 3 → 'f'.
    assert_eq!(hash::safe_encode("0123456789"), "456789bcdf");
    assert_eq!(hash::fnv32a(b"", 0x811c_9dc5), 0x811c_9dc5);
    // Published FNV test vectors.
    assert_eq!(hash::fnv32a(b"a", 0x811c_9dc5), 0xe40c_292c);
    assert_eq!(hash::fnv32(b"a", 0x811c_9dc5), 0x050c_5d7e);
}

#[test]
fn pod_template_hash_is_stable_short_and_changes_with_the_template() {
    let a = hash::pod_template_hash(&template("nginx:1.25"), None);
    assert_eq!(a, hash::pod_template_hash(&template("nginx:1.25"), None), "stable");
    assert!((9..=10).contains(&a.len()), "the decimal digits of a u32: {a}");
    assert!(a.bytes().all(|b| hash::ALPHABET.contains(&b)), "{a}");
    assert_ne!(a, hash::pod_template_hash(&template("nginx:1.26"), None), "changes with the template");
    assert_ne!(a, hash::pod_template_hash(&template("nginx:1.25"), Some(1)), "changes with collisionCount");
    let r = hash::revision_hash(&template("nginx:1.25"), None);
    assert!(r.bytes().all(|b| hash::ALPHABET.contains(&b)) && !r.is_empty());
    assert_ne!(r, hash::revision_hash(&template("nginx:1.26"), None));
}

#[test]
fn pods_are_named_after_their_replica_set_and_carry_its_template() {
    let t = template("nginx:1.25");
    let mut owner = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta::default();
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "orders-7d9f8c6b5d", "namespace": "default", "uid": "u1"}
    }))
    .unwrap();
    owner.owner_references = Some(vec![pod::controller_ref(&rs)]);
    let p = super::pod_from_template(&t, "default", owner, &super::pod_prefix("orders-7d9f8c6b5d"));
    assert_eq!(p.metadata.generate_name.as_deref(), Some("orders-7d9f8c6b5d-"));
    assert_eq!(p.metadata.name, None, "the apiserver adds the suffix");
    assert_eq!(p.metadata.labels.unwrap()["app"], "orders");
    let r = &p.metadata.owner_references.unwrap()[0];
    assert_eq!((r.kind.as_str(), r.api_version.as_str(), r.uid.as_str()), ("ReplicaSet", "apps/v1", "u1"));
    assert_eq!((r.controller, r.block_owner_deletion), (Some(true), Some(true)));
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
fn status_counts_ready_available_and_fully_labelled() {
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "rs", "generation": 4},
        "spec": {"replicas": 3, "minReadySeconds": 10, "selector": {"matchLabels": {"app": "orders"}},
                 "template": {"metadata": {"labels": {"app": "orders", "tier": "web"}}}}
    }))
    .unwrap();
    let mut a = pod("a", Some("n1"), "Running", Some("2025-01-01T00:00:00Z"), "2025-01-01T00:00:00Z");
    a.metadata.labels = Some([("app".into(), "orders".into()), ("tier".into(), "web".into())].into());
    let b = pod("b", Some("n1"), "Running", Some("2025-01-01T00:00:55Z"), "2025-01-01T00:00:00Z");
    let c = pod("c", None, "Pending", None, "2025-01-01T00:00:00Z");
    let now: jiff::Timestamp = "2025-01-01T00:01:00Z".parse().unwrap();
    let (st, next) = super::calculate_status(&rs, &[Arc::new(a), Arc::new(b), Arc::new(c)], now);
    assert_eq!(st.replicas, 3);
    assert_eq!(st.ready_replicas, Some(2));
    assert_eq!(st.available_replicas, Some(1));
    assert_eq!(st.fully_labeled_replicas, Some(1));
    assert_eq!(st.observed_generation, Some(4));
    assert_eq!(next, Some("2025-01-01T00:01:05Z".parse().unwrap()), "look again when b becomes available");
}

#[test]
fn label_selectors_match_as_upstream() {
    let sel: LabelSelector = serde_json::from_value(json!({
        "matchLabels": {"app": "orders"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]},
                             {"key": "canary", "operator": "DoesNotExist"}]
    }))
    .unwrap();
    let labels = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(selector::matches(Some(&sel), Some(&labels(&[("app", "orders"), ("tier", "web")]))));
    assert!(!selector::matches(Some(&sel), Some(&labels(&[("app", "orders"), ("tier", "db")]))));
    assert!(!selector::matches(
        Some(&sel),
        Some(&labels(&[("app", "orders"), ("tier", "web"), ("canary", "1")]))
    ));
    assert!(selector::matches(Some(&LabelSelector::default()), None), "empty selects everything");
    assert!(!selector::matches(None, Some(&labels(&[("app", "orders")]))), "none selects nothing");
}

#[test]
fn expectations_hold_until_the_cache_shows_the_pods() {
    let e = Expectations::default();
    assert!(e.satisfied("default/rs", |_| None));
    e.created("default/rs", "default/rs-abcde".into());
    assert!(!e.satisfied("default/rs", |_| None), "created but not seen: do not create again");
    assert!(e.satisfied("default/rs", |k| (k == "default/rs-abcde").then_some(true)));
    e.deleted("default/rs", "default/rs-abcde".into());
    assert!(!e.satisfied("default/rs", |_| Some(true)), "deleted but still live in the cache");
    assert!(e.satisfied("default/rs", |_| Some(false)), "Terminating counts as seen");
}
