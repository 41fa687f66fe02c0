//! The scheduler against the real apiserver, with Nodes registered through the API as a kubelet
//! registers them and pods created directly: spreading, the `Too many pods` message and condition,
//! retry when a pod leaves or a node changes, nodeSelector, NotReady nodes, a restart that
//! neither loses count of bound pods nor binds a pod twice, and (with the real controller-manager)
//! a Deployment's pods spread and overflowing.

use std::{collections::BTreeMap, time::Duration};

use k8s_openapi::{
    api::core::v1::{Container, Namespace, Node, NodeAddress, NodeCondition, NodeStatus, Pod, PodSpec},
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{ObjectMeta, Time},
    },
};
use netlab_client::{Client, ListParams};
use netlab_e2e::{Apiserver, Component, block_on, events_for, eventually, parts};

const NS: &str = "demo";
const WAIT: Duration = Duration::from_secs(20);
const FULL_MESSAGE: &str = "0/2 nodes are available: 2 Too many pods. preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.";

/// An apiserver, a scheduler on it, a client, and the `demo` namespace.
struct Cluster {
    // Fields drop in order: the scheduler goes before the apiserver it watches.
    scheduler: Component,
    api: Apiserver,
    _dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(dir.path(), &[]);
        let scheduler = parts::scheduler(&api.url(), &[]);
        Self { scheduler, api, _dir: dir }
    }

    async fn client(&self) -> Client {
        let client = Client::new(&self.api.url()).expect("client");
        let ns = Namespace { metadata: meta(NS, None), ..Default::default() };
        if let Err(e) = client.create(&ns).await {
            assert!(e.is_already_exists(), "{e}");
        }
        client
    }
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: namespace.map(Into::into), ..Default::default() }
}

/// A Node as a kubelet registers it: hostname label, addresses, capacity and allocatable, and a
/// Ready condition.
fn node(name: &str, ip: &str, pods: u32, ready: bool, labels: &[(&str, &str)]) -> Node {
    let mut l: BTreeMap<String, String> =
        labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    l.insert("kubernetes.io/hostname".into(), name.into());
    l.insert("kubernetes.io/os".into(), "linux".into());
    let resources: BTreeMap<String, Quantity> =
        [("cpu", "2"), ("memory", "4Gi"), ("pods", &pods.to_string())]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let (status, reason, message) = if ready {
        ("True", "KubeletReady", "kubelet is posting ready status")
    } else {
        ("False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false")
    };
    Node {
        metadata: ObjectMeta { labels: Some(l), ..meta(name, None) },
        spec: None,
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress { type_: "InternalIP".into(), address: ip.into() },
                NodeAddress { type_: "Hostname".into(), address: name.into() },
            ]),
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: status.into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(now),
            }]),
            ..Default::default()
        }),
    }
}

fn pod(name: &str, selector: &[(&str, &str)]) -> Pod {
    let node_selector = (!selector.is_empty())
        .then(|| selector.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    Pod {
        metadata: ObjectMeta {
            labels: Some([("app".to_string(), "orders".to_string())].into()),
            ..meta(name, Some(NS))
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                image: Some("nginx:1.27".into()),
                ..Default::default()
            }],
            node_selector,
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn create_pods(client: &Client, names: &[&str], selector: &[(&str, &str)]) {
    for name in names {
        client.create(&pod(name, selector)).await.expect("create pod");
    }
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty())
}

/// Waits until every pod in `names` is bound; returns pod → node.
async fn wait_bound(client: &Client, names: &[&str]) -> BTreeMap<String, String> {
    eventually(&format!("{names:?} bound"), WAIT, || async {
        let mut out = BTreeMap::new();
        for name in names {
            let p: Pod = client.get(NS, name).await.ok()?;
            out.insert(name.to_string(), node_of(&p)?);
        }
        Some(out)
    })
    .await
}

/// Pods per node among `placement`.
fn per_node(placement: &BTreeMap<String, String>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for node in placement.values() {
        *counts.entry(node.clone()).or_default() += 1;
    }
    counts
}

/// Waits for the pod's `PodScheduled=False` condition and returns (reason, message).
async fn wait_unschedulable(client: &Client, name: &str) -> (String, String) {
    eventually(&format!("{name} marked unschedulable"), WAIT, || async {
        let p: Pod = client.get(NS, name).await.ok()?;
        let c =
            p.status?.conditions?.into_iter().find(|c| c.type_ == "PodScheduled" && c.status == "False")?;
        Some((c.reason?, c.message?))
    })
    .await
}

async fn assert_still_pending(client: &Client, name: &str, for_how_long: Duration) {
    tokio::time::sleep(for_how_long).await;
    let p: Pod = client.get(NS, name).await.expect("pod");
    assert_eq!(node_of(&p), None, "{name} should still be Pending");
}

#[test]
fn three_pods_spread_two_and_one_across_two_nodes() {
    let cluster = Cluster::start();
    block_on(async {
        let client = cluster.client().await;
        client.create(&node("node-1", "10.0.0.11", 110, true, &[])).await.unwrap();
        client.create(&node("node-2", "10.0.0.12", 110, true, &[])).await.unwrap();
        let names = ["orders-1", "orders-2", "orders-3"];
        create_pods(&client, &names, &[]).await;
        let placement = wait_bound(&client, &names).await;
        let mut counts: Vec<usize> = per_node(&placement).into_values().collect();
        counts.sort();
        assert_eq!(counts, [1, 2], "{placement:?}");

        for (pod, node) in &placement {
            let p: Pod = client.get(NS, pod).await.unwrap();
            let cond = p.status.and_then(|s| s.conditions).unwrap_or_default();
            assert!(cond.iter().any(|c| c.type_ == "PodScheduled" && c.status == "True"), "{cond:?}");
            let events = eventually("the Scheduled event", WAIT, || async {
                let e = events_for(&client, NS, pod, "Scheduled").await;
                (!e.is_empty()).then_some(e)
            })
            .await;
            assert_eq!(events.len(), 1);
            let e = &events[0];
            assert_eq!(
                e.message.as_deref(),
                Some(format!("Successfully assigned demo/{pod} to {node}").as_str())
            );
            assert_eq!(e.type_.as_deref(), Some("Normal"));
            assert_eq!(e.source.as_ref().and_then(|s| s.component.as_deref()), Some("default-scheduler"));
        }
    });
}

#[test]
fn the_fifth_pod_waits_with_the_real_message_until_a_pod_is_gone() {
    let cluster = Cluster::start();
    block_on(async {
        let client = cluster.client().await;
        client.create(&node("node-1", "10.0.0.11", 2, true, &[])).await.unwrap();
        client.create(&node("node-2", "10.0.0.12", 2, true, &[])).await.unwrap();
        let first = ["orders-1", "orders-2", "orders-3", "orders-4"];
        create_pods(&client, &first, &[]).await;
        let placement = wait_bound(&client, &first).await;
        assert_eq!(per_node(&placement).into_values().collect::<Vec<_>>(), [2, 2]);

        create_pods(&client, &["orders-5"], &[]).await;
        let (reason, message) = wait_unschedulable(&client, "orders-5").await;
        assert_eq!(reason, "Unschedulable");
        assert_eq!(message, FULL_MESSAGE);
        let events = eventually("the FailedScheduling event", WAIT, || async {
            let e = events_for(&client, NS, "orders-5", "FailedScheduling").await;
            (!e.is_empty()).then_some(e)
        })
        .await;
        assert_eq!(events[0].message.as_deref(), Some(FULL_MESSAGE));
        assert_eq!(events[0].type_.as_deref(), Some("Warning"));
        assert_eq!(events[0].source.as_ref().and_then(|s| s.component.as_deref()), Some("default-scheduler"));

        // A Terminating pod still holds its slot, as upstream...
        let victim = "orders-1";
        let freed = placement[victim].clone();
        let deleting: Pod = client.delete(NS, victim).await.unwrap();
        assert!(deleting.metadata.deletion_timestamp.is_some(), "a bound pod terminates gracefully");
        assert_still_pending(&client, "orders-5", Duration::from_millis(1500)).await;
        // ...until its kubelet has stopped it and removes it.
        client.delete_with::<Pod>(NS, victim, Some(0)).await.unwrap();
        let now = wait_bound(&client, &["orders-5"]).await;
        assert_eq!(now["orders-5"], freed, "the pending pod takes the freed slot");
    });
}

#[test]
fn node_selectors_are_honoured_and_not_ready_nodes_get_nothing() {
    let cluster = Cluster::start();
    block_on(async {
        let client = cluster.client().await;
        client.create(&node("node-a", "10.0.0.11", 110, true, &[("disk", "ssd")])).await.unwrap();
        client.create(&node("node-b", "10.0.0.12", 110, true, &[])).await.unwrap();
        client.create(&node("node-c", "10.0.0.13", 110, false, &[("disk", "ssd")])).await.unwrap();

        let ssd = ["db-1", "db-2", "db-3"];
        create_pods(&client, &ssd, &[("disk", "ssd")]).await;
        let any = ["web-1", "web-2", "web-3", "web-4", "web-5", "web-6"];
        create_pods(&client, &any, &[]).await;
        let placement = wait_bound(&client, &ssd).await;
        assert!(placement.values().all(|n| n == "node-a"), "{placement:?}");
        let placement = wait_bound(&client, &any).await;
        assert!(placement.values().all(|n| n != "node-c"), "the NotReady node gets nothing: {placement:?}");

        create_pods(&client, &["cache-1"], &[("disk", "nvme")]).await;
        let (_, message) = wait_unschedulable(&client, "cache-1").await;
        assert_eq!(
            message,
            "0/3 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, \
             2 node(s) didn't match Pod's node affinity/selector. \
             preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        );

        // A node that changes is a reason to retry: label node-b, and the pod lands there.
        let mut b: Node = client.get("", "node-b").await.unwrap();
        b.metadata.labels.get_or_insert_with(Default::default).insert("disk".into(), "nvme".into());
        client.update(&b).await.unwrap();
        assert_eq!(wait_bound(&client, &["cache-1"]).await["cache-1"], "node-b");

        // A pod pinned to the NotReady node waits for it; the node turning Ready is a change
        // that retries it.
        create_pods(&client, &["pinned-1"], &[("kubernetes.io/hostname", "node-c")]).await;
        let (_, message) = wait_unschedulable(&client, "pinned-1").await;
        assert!(
            message.contains("1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }"),
            "{message}"
        );
        let mut c: Node = client.get("", "node-c").await.unwrap();
        for cond in c.status.as_mut().and_then(|s| s.conditions.as_mut()).into_iter().flatten() {
            cond.status = "True".into();
        }
        client.update_status(&c).await.unwrap();
        assert_eq!(wait_bound(&client, &["pinned-1"]).await["pinned-1"], "node-c");
    });
}

#[test]
fn a_restarted_scheduler_counts_bound_pods_and_binds_each_pod_once() {
    let mut cluster = Cluster::start();
    let url = cluster.api.url();
    block_on(async {
        let client = cluster.client().await;
        client.create(&node("node-1", "10.0.0.11", 3, true, &[])).await.unwrap();
        client.create(&node("node-2", "10.0.0.12", 3, true, &[])).await.unwrap();
        let before = ["orders-1", "orders-2", "orders-3"];
        create_pods(&client, &before, &[]).await;
        wait_bound(&client, &before).await;
        // Events are written after the binding, best effort: let them land before the kill.
        for name in &before {
            eventually("Scheduled events", WAIT, || async {
                (!events_for(&client, NS, name, "Scheduled").await.is_empty()).then_some(())
            })
            .await;
        }

        cluster.scheduler.kill9();
        let after = ["orders-4", "orders-5", "orders-6"];
        create_pods(&client, &after, &[]).await;
        assert_still_pending(&client, "orders-4", Duration::from_millis(300)).await;
        cluster.scheduler = parts::scheduler(&url, &[]);

        let all: Vec<&str> = before.iter().chain(after.iter()).copied().collect();
        let placement = wait_bound(&client, &all).await;
        assert_eq!(
            per_node(&placement).into_values().collect::<Vec<_>>(),
            [3, 3],
            "the restarted scheduler counted the pods bound before it: {placement:?}"
        );
        create_pods(&client, &["orders-7"], &[]).await;
        assert_eq!(wait_unschedulable(&client, "orders-7").await.1, FULL_MESSAGE);

        for name in &all {
            let events = eventually("Scheduled events", WAIT, || async {
                let e = events_for(&client, NS, name, "Scheduled").await;
                (!e.is_empty()).then_some(e)
            })
            .await;
            assert_eq!(events.len(), 1, "{name} was scheduled once: {events:?}");
            assert_eq!(events[0].count, Some(1));
            assert!(
                events_for(&client, NS, name, "FailedScheduling").await.is_empty(),
                "no binding of {name} was refused"
            );
        }
    });
}

#[test]
fn a_deployment_spreads_over_two_nodes_and_its_overflow_stays_pending() {
    let cluster = Cluster::start();
    let _cm = parts::controller_manager(&cluster.api.url(), &[]);
    block_on(async {
        use k8s_openapi::{
            api::apps::v1::{Deployment, DeploymentSpec},
            api::core::v1::PodTemplateSpec,
            apimachinery::pkg::apis::meta::v1::LabelSelector,
        };
        let client = cluster.client().await;
        client.create(&node("node-1", "10.0.0.11", 2, true, &[])).await.unwrap();
        client.create(&node("node-2", "10.0.0.12", 2, true, &[])).await.unwrap();
        let template = pod("unused", &[]);
        let deployment = |replicas: i32| Deployment {
            metadata: meta("orders", Some(NS)),
            spec: Some(DeploymentSpec {
                replicas: Some(replicas),
                selector: LabelSelector {
                    match_labels: template.metadata.labels.clone(),
                    ..Default::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: template.metadata.labels.clone(),
                        ..Default::default()
                    }),
                    spec: template.spec.clone(),
                },
                ..Default::default()
            }),
            ..Default::default()
        };
        client.create(&deployment(3)).await.unwrap();
        let list = ListParams { namespace: NS.into(), labels: "app=orders".into(), ..Default::default() };
        let placement = eventually("3 deployment pods bound", WAIT, || async {
            let (pods, _) = client.list::<Pod>(&list).await.ok()?;
            let bound: Vec<String> = pods.iter().filter_map(node_of).collect();
            (pods.len() == 3 && bound.len() == 3).then_some(bound)
        })
        .await;
        let mut counts: Vec<usize> =
            ["node-1", "node-2"].iter().map(|n| placement.iter().filter(|p| p == n).count()).collect();
        counts.sort();
        assert_eq!(counts, [1, 2]);

        // Scale to 5 (re-reading on Conflict: the controller writes the Deployment's status).
        eventually("scaled to 5", WAIT, || async {
            let mut d: Deployment = client.get(NS, "orders").await.ok()?;
            d.spec.as_mut()?.replicas = Some(5);
            client.update(&d).await.ok().map(|_| ())
        })
        .await;
        let pending = eventually("4 bound and 1 pending", WAIT, || async {
            let (pods, _) = client.list::<Pod>(&list).await.ok()?;
            let unbound: Vec<&Pod> = pods.iter().filter(|p| node_of(p).is_none()).collect();
            (pods.len() == 5 && unbound.len() == 1)
                .then(|| unbound[0].metadata.name.clone().unwrap_or_default())
        })
        .await;
        assert!(pending.starts_with("orders-"), "{pending}");
        assert_eq!(
            wait_unschedulable(&client, &pending).await,
            ("Unschedulable".to_string(), FULL_MESSAGE.to_string())
        );
    });
}
