//! Unit tests for the StatefulSet ordering decisions and pod identity.

use k8s_openapi::api::apps::v1::StatefulSet;
use serde_json::json;

use super::plan::{Action, Member, Spec, ordinal_of, plan};

fn m(ordinal: i32, healthy: bool) -> Member {
    Member {
        ordinal,
        name: format!("web-{ordinal}"),
        terminating: false,
        finished: false,
        healthy,
        revision: "web-r1".into(),
        identity_ok: true,
    }
}

fn spec(replicas: i32, ordered: bool) -> Spec<'static> {
    Spec { replicas, ordered, rolling: true, partition: 0, update_revision: "web-r1" }
}

#[test]
fn ordered_ready_creates_one_at_a_time_after_the_previous_is_ready() {
    assert_eq!(plan(&spec(3, true), &[]), [Action::Create(0)]);
    assert_eq!(plan(&spec(3, true), &[m(0, false)]), [], "web-0 not Ready: wait");
    assert_eq!(plan(&spec(3, true), &[m(0, true)]), [Action::Create(1)]);
    assert_eq!(plan(&spec(3, true), &[m(0, true), m(1, true)]), [Action::Create(2)]);
    assert_eq!(plan(&spec(3, true), &[m(0, true), m(1, true), m(2, true)]), []);
    // A gap is filled first.
    assert_eq!(plan(&spec(3, true), &[m(1, true), m(2, true)]), [Action::Create(0)]);
}

#[test]
fn parallel_creates_and_deletes_everything_at_once() {
    assert_eq!(plan(&spec(3, false), &[]), [Action::Create(0), Action::Create(1), Action::Create(2)]);
    assert_eq!(
        plan(&spec(1, false), &[m(0, true), m(1, false), m(2, true)]),
        [Action::Delete("web-2".into()), Action::Delete("web-1".into())]
    );
}

#[test]
fn ordered_scale_down_is_reverse_and_one_at_a_time() {
    let all = [m(0, true), m(1, true), m(2, true)];
    assert_eq!(plan(&spec(1, true), &all), [Action::Delete("web-2".into())]);
    let mut terminating = m(2, true);
    terminating.terminating = true;
    assert_eq!(plan(&spec(1, true), &[m(0, true), m(1, true), terminating]), [], "wait for web-2 to go");
    assert_eq!(plan(&spec(1, true), &[m(0, true), m(1, true)]), [Action::Delete("web-1".into())]);
    // A kept pod that is not Ready holds the scale-down.
    assert_eq!(plan(&spec(1, true), &[m(0, false), m(1, true)]), []);
}

#[test]
fn failed_pods_are_deleted_to_be_recreated() {
    let mut failed = m(0, false);
    failed.finished = true;
    assert_eq!(plan(&spec(2, true), &[failed, m(1, true)]), [Action::Delete("web-0".into())]);
}

#[test]
fn rolling_update_replaces_the_highest_outdated_ordinal_first() {
    let old = |i| Member { revision: "web-r0".into(), ..m(i, true) };
    assert_eq!(plan(&spec(3, true), &[old(0), old(1), old(2)]), [Action::Delete("web-2".into())]);
    // web-2 recreated at the new revision but not Ready yet: wait.
    assert_eq!(plan(&spec(3, true), &[old(0), old(1), m(2, false)]), []);
    assert_eq!(plan(&spec(3, true), &[old(0), old(1), m(2, true)]), [Action::Delete("web-1".into())]);
    // A partition keeps the ordinals below it.
    let partitioned = Spec { partition: 2, ..spec(3, true) };
    assert_eq!(plan(&partitioned, &[old(0), old(1), m(2, true)]), []);
    // OnDelete leaves them all.
    let on_delete = Spec { rolling: false, ..spec(3, true) };
    assert_eq!(plan(&on_delete, &[old(0), old(1), old(2)]), []);
}

#[test]
fn identity_labels_are_restored() {
    let mut wrong = m(1, true);
    wrong.identity_ok = false;
    assert_eq!(plan(&spec(2, true), &[m(0, true), wrong]), [Action::FixIdentity("web-1".into())]);
}

#[test]
fn ordinals_come_from_names() {
    assert_eq!(ordinal_of("web", "web-0"), Some(0));
    assert_eq!(ordinal_of("web", "web-12"), Some(12));
    assert_eq!(ordinal_of("web", "web-01"), None);
    assert_eq!(ordinal_of("web", "web-x"), None);
    assert_eq!(ordinal_of("web", "webby-1"), None);
    assert_eq!(ordinal_of("web", "web-"), None);
}

#[test]
fn pods_get_a_stable_identity() {
    let set: StatefulSet = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
        "spec": {"serviceName": "nginx", "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}}
    }))
    .unwrap();
    let revision = super::update_revision(&set);
    assert!(revision.starts_with("web-"));
    let p = super::new_pod(&set, 2, &revision);
    assert_eq!(p.metadata.name.as_deref(), Some("web-2"));
    let spec = p.spec.unwrap();
    assert_eq!((spec.hostname.as_deref(), spec.subdomain.as_deref()), (Some("web-2"), Some("nginx")));
    let labels = p.metadata.labels.unwrap();
    assert_eq!(labels["app"], "web");
    assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-2");
    assert_eq!(labels["apps.kubernetes.io/pod-index"], "2");
    assert_eq!(labels["controller-revision-hash"], revision);
    assert_eq!(p.metadata.owner_references.unwrap()[0].kind, "StatefulSet");
}
