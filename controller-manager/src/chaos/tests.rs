//! Unit tests of the chaos controller's rules: what each kind targets ([`targets`]) and one
//! experiment step ([`experiment`]): records, phases, conditions and Chaos Mesh's events.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{Node, Pod, PodSpec, PodStatus},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};
use netlab_chaos::{
    ComponentChaos, ExhaustionChaos, NetworkChaos, PAUSE_ANNOTATION, PodChaos, RegistryChaos,
    UpstreamDnsChaos,
    status::{ChaosStatus, phase},
    window::Window,
};
use netlab_client::{recorder::EventType, reflector::Cache};

use super::{
    experiment::{self, Cause, Desired, Event, Inputs, Target},
    targets::{self, Kind, SelectError, World},
};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

/// A pod `ns/name` labelled `app`, on `node-1`, with `ip` if not empty.
fn pod(ns: &str, name: &str, app: &str, ip: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            labels: Some(labels(&[("app", app)])),
            ..Default::default()
        },
        spec: Some(PodSpec { node_name: Some("node-1".into()), ..Default::default() }),
        status: Some(PodStatus {
            phase: Some("Running".into()),
            pod_ip: (!ip.is_empty()).then(|| ip.to_string()),
            ..Default::default()
        }),
    }
}

fn node(name: &str, zone: &str) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(labels(&[("topology.kubernetes.io/zone", zone)])),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn world(pods: Vec<Pod>) -> World {
    World {
        pods: Cache::from_objects(pods),
        nodes: Cache::from_objects([node("node-1", "a"), node("node-2", "b")]),
    }
}

fn fault<K: serde::de::DeserializeOwned>(json: serde_json::Value) -> K {
    let mut json = json;
    json["metadata"] = serde_json::json!({"name": "f", "namespace": "default", "uid": "uid-f",
        "creationTimestamp": "2026-12-07T10:00:00Z"});
    serde_json::from_value(json).expect("a fault")
}

fn network(mode: &str) -> NetworkChaos {
    fault(serde_json::json!({"spec": {"action": "partition", "mode": mode,
        "selector": {"labelSelectors": {"app": "client"}},
        "target": {"mode": "all", "selector": {"labelSelectors": {"app": "orders"}}}}}))
}

fn ids(targets: &[Target]) -> Vec<(&str, &str, &str)> {
    targets.iter().map(|t| (t.id.as_str(), t.selector_key.as_str(), t.pod_ip.as_str())).collect()
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("a timestamp")
}

const RUN: Desired = Desired { phase: phase::RUN, cause: Cause::Started };

fn run<'a>(targets: &'a [Target], now: &str) -> Inputs<'a> {
    Inputs { targets: Some(targets), desired: RUN, paused: false, applied_by_caller: false, now: at(now) }
}

fn reasons(events: &[Event]) -> Vec<String> {
    events.iter().map(|e| format!("{} {}", e.reason, e.message)).collect()
}

fn conditions(status: &ChaosStatus) -> Vec<String> {
    status.conditions.iter().map(|c| format!("{}={}", c.type_, c.status)).collect()
}

// --- targets ---

#[test]
fn pod_faults_record_every_matching_pod_under_its_selector_key() {
    let w = world(vec![
        pod("default", "client-1", "client", "10.244.1.2"),
        pod("default", "client-2", "client", ""),
        pod("default", "orders-1", "orders", "10.244.1.4"),
        pod("shop", "client-9", "client", "10.244.1.9"),
    ]);
    let s = network("all").select(&w, &[]);
    assert_eq!(s.failure, None);
    assert_eq!(
        ids(&s.targets),
        [
            ("default/client-1", ".", "10.244.1.2"),
            ("default/client-2", ".", ""),
            ("default/orders-1", ".Target", "10.244.1.4"),
        ]
    );
    assert_eq!(s.targets[0].node_name, "node-1");
}

#[test]
fn a_mode_that_picks_some_keeps_its_pick_as_pods_come() {
    let mut pods: Vec<Pod> = (0..5).map(|i| pod("default", &format!("client-{i}"), "client", "")).collect();
    let f = network("one");
    let first = f.select(&world(pods.clone()), &[]);
    let chosen: Vec<_> = first.targets.iter().filter(|t| t.selector_key == ".").collect();
    assert_eq!(chosen.len(), 1);
    let recorded = vec![(chosen[0].id.clone(), ".".to_string())];
    for i in 5..30 {
        pods.push(pod("default", &format!("client-{i}"), "client", ""));
        let again = f.select(&world(pods.clone()), &recorded);
        let picked: Vec<_> = again.targets.iter().filter(|t| t.selector_key == ".").collect();
        assert_eq!(picked.len(), 1);
        assert_eq!(picked[0].id, chosen[0].id, "after client-{i} came");
    }
}

#[test]
fn nothing_matching_is_chaos_meshs_no_pod_is_selected() {
    let s = network("all").select(&world(vec![pod("default", "orders-1", "orders", "")]), &[]);
    assert_eq!(s.failure, Some(SelectError::NoPod));
    assert_eq!(
        Event::failed("select targets", &SelectError::NoPod.to_string()),
        Event {
            source: "records",
            type_: EventType::Warning,
            reason: "Failed",
            message: "Failed to select targets: no pod is selected".into()
        }
    );
    // The target's match is still recorded.
    assert_eq!(ids(&s.targets), [("default/orders-1", ".Target", "")]);

    let bad: PodChaos = fault(serde_json::json!({"spec": {"action": "pod-failure", "mode": "fixed",
        "value": "x", "selector": {}}}));
    assert!(matches!(bad.select(&world(vec![]), &[]).failure, Some(SelectError::Value(_))));
}

#[test]
fn the_lab_kinds_record_what_they_reach() {
    let w = world(vec![]);
    let ids = |s: targets::Selection| s.targets.into_iter().map(|t| t.id).collect::<Vec<_>>();
    let component: ComponentChaos =
        fault(serde_json::json!({"spec": {"action": "stop", "component": "kube-proxy"}}));
    assert_eq!(ids(component.select(&w, &[])), ["node-1/kube-proxy", "node-2/kube-proxy"]);
    let one_node: ComponentChaos =
        fault(serde_json::json!({"spec": {"action": "pause", "component": "kubelet", "nodes": ["node-2"]}}));
    assert_eq!(ids(one_node.select(&w, &[])), ["node-2/kubelet"]);
    let apiserver: ComponentChaos =
        fault(serde_json::json!({"spec": {"action": "stop", "component": "apiserver"}}));
    assert_eq!(ids(apiserver.select(&w, &[])), ["apiserver"]);
    let registry: RegistryChaos = fault(serde_json::json!({"spec": {"action": "unreachable"}}));
    assert_eq!(ids(registry.select(&w, &[])), ["cloud/registry"]);
    let upstream: UpstreamDnsChaos = fault(serde_json::json!({"spec": {"action": "servfail"}}));
    assert_eq!(ids(upstream.select(&w, &[])), ["cloud/resolver"]);
    for (action, want) in [
        ("pod-cidr", vec!["node-1/pod-cidr", "node-2/pod-cidr"]),
        ("conntrack", vec!["node-1/conntrack", "node-2/conntrack"]),
        ("service-cidr", vec!["apiserver/service-cidr"]),
    ] {
        let e: ExhaustionChaos = fault(serde_json::json!({"spec": {"action": action}}));
        assert_eq!(ids(e.select(&w, &[])), want);
    }
    let nowhere: ExhaustionChaos =
        fault(serde_json::json!({"spec": {"action": "conntrack", "nodes": ["node-9"]}}));
    assert_eq!(nowhere.select(&w, &[]).failure, Some(SelectError::NoTarget));
    assert!(!registry.pod_scoped() && network("all").pod_scoped());
}

#[test]
fn a_pod_change_concerns_the_faults_that_match_or_recorded_it() {
    let w = world(vec![]);
    let mut f = network("all");
    let client = pod("default", "client-1", "client", "");
    let other = pod("default", "web-1", "web", "");
    assert!(targets::concerns(&f, &w, &[&client]));
    assert!(!targets::concerns(&f, &w, &[&other]));
    f.status = Some(ChaosStatus::default());
    f.status.as_mut().unwrap().experiment.container_records =
        vec![netlab_chaos::status::Record { id: "default/web-1".into(), ..Default::default() }];
    assert!(targets::concerns(&f, &w, &[&other]), "relabelled away from the selector");
}

// --- experiment ---

#[test]
fn desired_phase_follows_chaos_meshs_order() {
    let start = at("2026-12-07T10:00:00Z");
    let mut meta = ObjectMeta { creation_timestamp: Some(Time(start)), ..Default::default() };
    let w = Window::of(&meta, Some("2s"));
    assert_eq!(experiment::desired(&w, false, at("2026-12-07T10:00:01Z")), RUN);
    let up = experiment::desired(&w, false, at("2026-12-07T10:00:02Z"));
    assert_eq!(up, Desired { phase: phase::STOP, cause: Cause::TimeUp });
    // One-shot actions are never stopped by time or pause.
    assert_eq!(experiment::desired(&w, true, at("2026-12-07T10:00:02Z")), RUN);
    meta.annotations = Some(labels(&[(PAUSE_ANNOTATION, "true")]));
    let paused = Window::of(&meta, Some("2s"));
    let d = experiment::desired(&paused, false, at("2026-12-07T10:00:01Z"));
    assert_eq!(d, Desired { phase: phase::STOP, cause: Cause::Paused });
    // Time up wins over paused.
    assert_eq!(experiment::desired(&paused, false, at("2026-12-07T10:00:05Z")).cause, Cause::TimeUp);
}

fn target(id: &str, ip: &str) -> Target {
    Target { id: id.into(), selector_key: ".".into(), pod_ip: ip.into(), node_name: "node-1".into() }
}

#[test]
fn a_first_step_starts_and_applies_on_every_target() {
    let targets = [target("default/a", "10.244.1.2"), target("default/b", "")];
    let out = experiment::step(&ChaosStatus::default(), &run(&targets, "2026-12-07T10:00:00.5Z"));
    assert_eq!(
        reasons(&out.events),
        [
            "Started Experiment has started",
            "Updated Successfully update desiredPhase of resource",
            "Applied Successfully apply chaos for default/a",
            "Applied Successfully apply chaos for default/b",
            "Updated Successfully update records of resource",
        ]
    );
    let e = &out.status.experiment;
    assert_eq!(e.desired_phase, "Run");
    let r = &e.container_records[0];
    assert_eq!((r.phase.as_str(), r.injected_count, r.recovered_count), ("Injected", 1, 0));
    assert_eq!((r.pod_ip.as_str(), r.node_name.as_str()), ("10.244.1.2", "node-1"));
    assert_eq!(r.injected_at, "2026-12-07T10:00:00Z");
    assert_eq!(
        conditions(&out.status),
        ["Selected=True", "AllInjected=True", "AllRecovered=False", "Paused=False"]
    );

    // Nothing changed: nothing to write, nothing to say.
    let again = experiment::step(&out.status, &run(&targets, "2026-12-07T10:00:09Z"));
    assert_eq!(again.status, out.status);
    assert!(again.events.is_empty());
}

#[test]
fn records_follow_pods_as_they_come_go_and_get_ips() {
    let first = [target("default/a", "10.244.1.2"), target("default/b", "")];
    let s1 = experiment::step(&ChaosStatus::default(), &run(&first, "2026-12-07T10:00:00Z")).status;
    let later = [target("default/b", "10.244.1.3"), target("default/c", "")];
    let out = experiment::step(&s1, &run(&later, "2026-12-07T10:00:05Z"));
    assert_eq!(
        reasons(&out.events),
        ["Applied Successfully apply chaos for default/c", "Updated Successfully update records of resource"]
    );
    let recs = &out.status.experiment.container_records;
    let view: Vec<_> = recs.iter().map(|r| (r.id.as_str(), r.pod_ip.as_str(), r.injected_count)).collect();
    assert_eq!(view, [("default/b", "10.244.1.3", 1), ("default/c", "", 1)]);
    assert_eq!(recs[1].injected_at, "2026-12-07T10:00:05Z");
}

#[test]
fn time_up_recovers_every_record_once() {
    let targets = [target("default/a", "10.244.1.2")];
    let mut running =
        experiment::step(&ChaosStatus::default(), &run(&targets, "2026-12-07T10:00:00Z")).status;
    running.counters.insert("node/node-1".into(), [("packetsDropped".to_string(), 7)].into());
    let up = Inputs {
        targets: None,
        desired: Desired { phase: phase::STOP, cause: Cause::TimeUp },
        ..run(&targets, "2026-12-07T10:00:02Z")
    };
    let out = experiment::step(&running, &up);
    assert_eq!(
        reasons(&out.events),
        [
            "TimeUp Time up according to the duration",
            "Updated Successfully update desiredPhase of resource",
            "Recovered Successfully recover chaos for default/a",
            "Updated Successfully update records of resource",
        ]
    );
    let r = &out.status.experiment.container_records[0];
    assert_eq!((r.phase.as_str(), r.injected_count, r.recovered_count), ("Not Injected", 1, 1));
    assert_eq!(out.status.experiment.desired_phase, "Stop");
    assert_eq!(
        conditions(&out.status),
        ["Selected=True", "AllInjected=False", "AllRecovered=True", "Paused=False"]
    );
    assert_eq!(out.status.counters, running.counters, "the enforcers' counters are left alone");
    assert!(experiment::step(&out.status, &up).events.is_empty());
}

#[test]
fn pause_stops_and_resuming_starts_again() {
    let targets = [target("default/a", "10.244.1.2")];
    let running = experiment::step(&ChaosStatus::default(), &run(&targets, "2026-12-07T10:00:00Z")).status;
    let pause = Inputs {
        desired: Desired { phase: phase::STOP, cause: Cause::Paused },
        paused: true,
        ..run(&targets, "2026-12-07T10:00:01Z")
    };
    let paused = experiment::step(&running, &pause);
    assert_eq!(reasons(&paused.events)[0], "Paused Experiment has been paused");
    assert!(conditions(&paused.status).contains(&"Paused=True".to_string()));
    let resumed = experiment::step(&paused.status, &run(&targets, "2026-12-07T10:00:03Z"));
    assert_eq!(reasons(&resumed.events)[0], "Started Experiment has started");
    let r = &resumed.status.experiment.container_records[0];
    assert_eq!((r.injected_count, r.recovered_count, r.injected_at.as_str()), (2, 1, "2026-12-07T10:00:03Z"));
}

#[test]
fn pod_kill_records_wait_for_the_kill() {
    let targets = [target("default/a", "10.244.1.2")];
    let inputs = Inputs { applied_by_caller: true, ..run(&targets, "2026-12-07T10:00:00Z") };
    let selected = experiment::step(&ChaosStatus::default(), &inputs);
    assert!(!reasons(&selected.events).iter().any(|e| e.starts_with("Applied")));
    let mut status = selected.status;
    assert_eq!(status.experiment.container_records[0].phase, "Not Injected");
    assert_eq!(experiment::pending(&status.experiment).len(), 1);
    let applied = experiment::applied(&mut status, "default/a", ".", at("2026-12-07T10:00:01Z"));
    assert_eq!(applied.map(|e| e.message).as_deref(), Some("Successfully apply chaos for default/a"));
    assert!(experiment::pending(&status.experiment).is_empty());
    assert!(conditions(&status).contains(&"AllInjected=True".to_string()));
    assert_eq!(experiment::applied(&mut status, "default/a", ".", at("2026-12-07T10:00:02Z")), None);
}

#[test]
fn node_selectors_match_the_pods_nodes_labels() {
    let f: NetworkChaos = fault(serde_json::json!({"spec": {"action": "loss", "mode": "all",
        "selector": {"nodeSelectors": {"topology.kubernetes.io/zone": "a"}}}}));
    let mut elsewhere = pod("default", "b-1", "b", "");
    elsewhere.spec.as_mut().unwrap().node_name = Some("node-2".into());
    let s = f.select(&world(vec![pod("default", "a-1", "a", ""), elsewhere.clone()]), &[]);
    assert_eq!(ids(&s.targets), [("default/a-1", ".", "")]);
    assert!(!targets::concerns(&f, &world(vec![]), &[&elsewhere]));
}
