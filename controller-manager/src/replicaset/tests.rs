//! Unit tests for the ReplicaSet controller's pure parts: naming, expectations and status.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::json;

use super::expectations::Expectations;
use crate::pod::{
    self,
    tests::{pod, template},
};

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
