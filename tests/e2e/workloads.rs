//! Deployments, ReplicaSets, StatefulSets and DaemonSets: the real apiserver and the real controller-manager
//! (`--controllers=deployment,replicaset,statefulset,garbagecollector`), with the test playing
//! the scheduler and the kubelet: it binds every pod to a fake node, then reports it Running and
//! Ready with a pod IP through `update_status`, and removes Terminating pods as a kubelet does
//! once their containers stopped.

use std::{
    collections::{BTreeSet, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        core::v1::{Event, Pod, PodCondition},
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use netlab_client::{Client, ListParams};
use netlab_e2e::{Apiserver, Component, eventually, parts, runtime};
use serde_json::json;

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(20);
/// `rand.SafeEncodeString`'s alphabet, which pod-template hashes are spelled in.
const HASH_ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";

/// The test's kubelet: binds pods to `node-a`, makes them Running and Ready unless held, and
/// removes Terminating pods.
#[derive(Clone)]
struct Kubelet {
    /// Pods not to make Ready: a name prefix, or `image:<image>`.
    held: Arc<Mutex<HashSet<String>>>,
}

impl Kubelet {
    fn start(client: Client, stop: Arc<AtomicBool>) -> Self {
        let k = Self { held: Default::default() };
        let held = k.held.clone();
        tokio::spawn(async move {
            let mut ip = 10u32;
            while !stop.load(Ordering::Relaxed) {
                let pods = client.list::<Pod>(&ListParams::default()).await.map(|l| l.0).unwrap_or_default();
                for p in pods {
                    let name = p.metadata.name.clone().unwrap_or_default();
                    let ns = p.metadata.namespace.clone().unwrap_or_default();
                    if p.metadata.deletion_timestamp.is_some() {
                        let _ = client.delete_with::<Pod>(&ns, &name, Some(0)).await;
                        continue;
                    }
                    if p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_none() {
                        let _ = client.bind(&ns, &name, "node-a").await;
                        continue;
                    }
                    let image = p
                        .spec
                        .as_ref()
                        .and_then(|s| s.containers.first())
                        .and_then(|c| c.image.clone())
                        .unwrap_or_default();
                    let is_held = held.lock().unwrap().iter().any(|h| {
                        h.strip_prefix("image:").map_or(name.starts_with(h.as_str()), |i| i == image)
                    });
                    if !is_held && !ready(&p) {
                        ip += 1;
                        let _ = make_ready(&client, p, ip).await;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        k
    }

    fn hold(&self, what: &str) {
        self.held.lock().unwrap().insert(what.into());
    }

    fn release(&self, what: &str) {
        self.held.lock().unwrap().remove(what);
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Reports `p` Running and Ready with pod IP 10.244.0.`ip`, as its kubelet would.
async fn make_ready(client: &Client, mut p: Pod, ip: u32) -> netlab_client::Result<Pod> {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let mut status = p.status.clone().unwrap_or_default();
    status.phase = Some("Running".into());
    status.pod_ip = Some(format!("10.244.{}.{}", ip / 250, ip % 250 + 1));
    let conditions = status.conditions.get_or_insert_default();
    conditions.retain(|c| c.type_ != "Ready" && c.type_ != "ContainersReady");
    for t in ["Ready", "ContainersReady"] {
        conditions.push(PodCondition {
            type_: t.into(),
            status: "True".into(),
            last_transition_time: Some(now.clone()),
            ..Default::default()
        });
    }
    p.status = Some(status);
    client.update_status(&p).await
}

async fn make_ready_by_name(client: &Client, name: &str) {
    let p: Pod = client.get(NS, name).await.expect("pod to make ready");
    make_ready(client, p, 200).await.expect("pod status");
}

fn deployment(name: &str, replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}
            }
        }
    }))
    .expect("a Deployment")
}

/// Pods not being deleted whose name starts with `prefix`.
async fn live_pods(client: &Client, prefix: &str) -> Vec<Pod> {
    let (pods, _) = client
        .list::<Pod>(&ListParams { namespace: NS.into(), ..Default::default() })
        .await
        .expect("list pods");
    pods.into_iter()
        .filter(|p| p.metadata.name.as_deref().unwrap_or_default().starts_with(prefix))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

fn names(pods: &[Pod]) -> BTreeSet<String> {
    pods.iter().filter_map(|p| p.metadata.name.clone()).collect()
}

/// The ReplicaSets whose name starts with `<deployment>-`.
async fn replica_sets(client: &Client, deployment: &str) -> Vec<ReplicaSet> {
    let (sets, _) = client
        .list::<ReplicaSet>(&ListParams { namespace: NS.into(), ..Default::default() })
        .await
        .expect("list rs");
    sets.into_iter()
        .filter(|rs| rs.metadata.name.as_deref().unwrap_or_default().starts_with(&format!("{deployment}-")))
        .collect()
}

fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1)
}

async fn events(client: &Client, reason: &str) -> Vec<Event> {
    let params =
        ListParams { namespace: NS.into(), fields: format!("reason={reason}"), ..Default::default() };
    client.list::<Event>(&params).await.expect("list events").0
}

async fn has_event(client: &Client, reason: &str, message: String, component: &str) -> Option<()> {
    events(client, reason)
        .await
        .iter()
        .any(|e| {
            e.message.as_deref() == Some(message.as_str())
                && e.source.as_ref().and_then(|s| s.component.as_deref()) == Some(component)
        })
        .then_some(())
}

/// Scales as `kubectl scale` does: read, write, and on a Conflict (the controller wrote the
/// status in between) read again (client-go's RetryOnConflict).
async fn set_replicas(client: &Client, name: &str, replicas: i32) {
    for _ in 0..10 {
        let mut d: Deployment = client.get(NS, name).await.expect("get deployment");
        d.spec.as_mut().expect("spec").replicas = Some(replicas);
        match client.update(&d).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("scale deployment: {e:?}"),
        }
    }
    panic!("scale deployment: still conflicting after 10 tries");
}

fn controller_manager(url: &str) -> Component {
    parts::controller_manager(url, &["--controllers", "deployment,replicaset,statefulset,garbagecollector"])
}

#[test]
fn deployment_rolls_replica_sets_and_pods_with_kubernetes_names() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    let mut cm = controller_manager(&url);
    runtime().block_on(async {
        let client = Client::new(&url).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let kubelet = Kubelet::start(client.clone(), stop.clone());

        // A 3-replica Deployment: one ReplicaSet `orders-<hash>`, three pods `<rs>-<5>`.
        client.create(&deployment("orders", 3, "nginx:1.25")).await.unwrap();
        let rs = eventually("one ReplicaSet for orders", WAIT, || async {
            let sets = replica_sets(&client, "orders").await;
            (sets.len() == 1).then(|| sets[0].clone())
        })
        .await;
        let rs_name = rs.metadata.name.clone().unwrap();
        let hash = rs_name.strip_prefix("orders-").unwrap().to_string();
        assert!(
            (1..=10).contains(&hash.len()) && hash.chars().all(|c| HASH_ALPHABET.contains(c)),
            "{rs_name}"
        );
        let labels = rs.metadata.labels.clone().unwrap();
        assert_eq!(labels.get("pod-template-hash"), Some(&hash));
        let spec = rs.spec.clone().unwrap();
        assert_eq!(spec.selector.match_labels.unwrap().get("pod-template-hash"), Some(&hash));
        let template_labels = spec.template.unwrap().metadata.unwrap().labels.unwrap();
        assert_eq!(template_labels.get("pod-template-hash"), Some(&hash));
        let d: Deployment = client.get(NS, "orders").await.unwrap();
        let owner = &rs.metadata.owner_references.clone().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.controller, owner.uid.as_str()),
            ("Deployment", Some(true), d.metadata.uid.as_deref().unwrap())
        );
        let annotations = rs.metadata.annotations.clone().unwrap();
        assert_eq!(annotations.get("deployment.kubernetes.io/revision").map(String::as_str), Some("1"));
        assert_eq!(
            annotations.get("deployment.kubernetes.io/desired-replicas").map(String::as_str),
            Some("3")
        );
        assert_eq!(
            annotations.get("deployment.kubernetes.io/max-replicas").map(String::as_str),
            Some("4"),
            "3 + ceil(25% of 3)"
        );

        let pods = eventually("3 orders pods", WAIT, || async {
            let pods = live_pods(&client, &format!("{rs_name}-")).await;
            (pods.len() == 3).then_some(pods)
        })
        .await;
        for p in &pods {
            let name = p.metadata.name.clone().unwrap();
            let suffix = name.strip_prefix(&format!("{rs_name}-")).unwrap();
            assert_eq!(suffix.len(), 5, "{name}");
            assert_eq!(p.metadata.labels.as_ref().unwrap().get("app").map(String::as_str), Some("orders"));
            let owner = &p.metadata.owner_references.clone().unwrap()[0];
            assert_eq!(
                (owner.kind.as_str(), owner.name.as_str(), owner.controller),
                ("ReplicaSet", rs_name.as_str(), Some(true))
            );
        }
        let first_pod = pods[0].metadata.name.clone().unwrap();
        eventually("ScalingReplicaSet event", WAIT, || {
            has_event(
                &client,
                "ScalingReplicaSet",
                format!("Scaled up replica set {rs_name} from 0 to 3"),
                "deployment-controller",
            )
        })
        .await;
        eventually("SuccessfulCreate event", WAIT, || {
            has_event(
                &client,
                "SuccessfulCreate",
                format!("Created pod: {first_pod}"),
                "replicaset-controller",
            )
        })
        .await;

        // Status: all available, rollout complete.
        eventually("Deployment status complete", WAIT, || async {
            let d: Deployment = client.get(NS, "orders").await.ok()?;
            let st = d.status?;
            let conds = st.conditions.clone()?;
            let cond = |t: &str| conds.iter().find(|c| c.type_ == t).and_then(|c| c.reason.clone());
            (st.replicas == Some(3)
                && st.updated_replicas == Some(3)
                && st.ready_replicas == Some(3)
                && st.available_replicas == Some(3)
                && st.observed_generation == d.metadata.generation
                && cond("Available").as_deref() == Some("MinimumReplicasAvailable")
                && cond("Progressing").as_deref() == Some("NewReplicaSetAvailable"))
            .then_some(())
        })
        .await;
        let d: Deployment = client.get(NS, "orders").await.unwrap();
        let progressing =
            d.status.unwrap().conditions.unwrap().into_iter().find(|c| c.type_ == "Progressing").unwrap();
        assert_eq!(
            progressing.message.unwrap(),
            format!("ReplicaSet \"{rs_name}\" has successfully progressed.")
        );

        // Scale to 5 and back to 2.
        set_replicas(&client, "orders", 5).await;
        eventually("5 orders pods", WAIT, || async {
            (live_pods(&client, "orders-").await.len() == 5).then_some(())
        })
        .await;
        eventually("scale-up event", WAIT, || {
            has_event(
                &client,
                "ScalingReplicaSet",
                format!("Scaled up replica set {rs_name} from 3 to 5"),
                "deployment-controller",
            )
        })
        .await;
        set_replicas(&client, "orders", 2).await;
        eventually("2 orders pods", WAIT, || async {
            (live_pods(&client, "orders-").await.len() == 2).then_some(())
        })
        .await;
        eventually("scale-down event", WAIT, || {
            has_event(
                &client,
                "ScalingReplicaSet",
                format!("Scaled down replica set {rs_name} from 5 to 2"),
                "deployment-controller",
            )
        })
        .await;
        assert_eq!(replica_sets(&client, "orders").await.len(), 1, "scaling makes no new ReplicaSet");

        // A template change with 4 replicas: maxSurge 1, maxUnavailable 1. While the new pods are
        // held not Ready, the rollout stops at old 3 + new 2: 3 pods available, never fewer.
        set_replicas(&client, "orders", 4).await;
        eventually("4 ready orders pods", WAIT, || async {
            let d: Deployment = client.get(NS, "orders").await.ok()?;
            (d.status?.available_replicas == Some(4)).then_some(())
        })
        .await;
        kubelet.hold("image:nginx:1.26");
        let mut d: Deployment = client.get(NS, "orders").await.unwrap();
        d.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0].image =
            Some("nginx:1.26".into());
        client.update(&d).await.unwrap();
        let (old, new) = eventually("rollout held at old 3 + new 2", WAIT, || async {
            let sets = replica_sets(&client, "orders").await;
            let old = sets.iter().find(|rs| rs.metadata.name.as_deref() == Some(rs_name.as_str()))?.clone();
            let new = sets.iter().find(|rs| rs.metadata.name.as_deref() != Some(rs_name.as_str()))?.clone();
            (rs_replicas(&old) == 3 && rs_replicas(&new) == 2).then_some((old, new))
        })
        .await;
        let new_name = new.metadata.name.clone().unwrap();
        assert_ne!(new_name, rs_name);
        assert_eq!(
            new.metadata
                .annotations
                .as_ref()
                .unwrap()
                .get("deployment.kubernetes.io/revision")
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(rs_replicas(&old), 3);
        // It stays there: the old ReplicaSet may not go below 3 while the new pods are not Ready.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let sets = replica_sets(&client, "orders").await;
            let total: i32 = sets.iter().map(rs_replicas).sum();
            assert!(total <= 5, "maxSurge: at most 4 + 1 pods, got {total}");
            let old = sets.iter().find(|rs| rs.metadata.name.as_deref() == Some(rs_name.as_str())).unwrap();
            assert_eq!(
                rs_replicas(old),
                3,
                "maxUnavailable: the old ReplicaSet keeps 3 while the new pods are not Ready"
            );
        }
        let d: Deployment = client.get(NS, "orders").await.unwrap();
        let st = d.status.unwrap();
        assert_eq!((st.available_replicas, st.updated_replicas), (Some(3), Some(2)));
        // Release: the rollout completes.
        kubelet.release("image:nginx:1.26");
        eventually("rollout complete", Duration::from_secs(30), || async {
            let sets = replica_sets(&client, "orders").await;
            let new = sets.iter().find(|rs| rs.metadata.name.as_deref() == Some(new_name.as_str()))?;
            let old = sets.iter().find(|rs| rs.metadata.name.as_deref() == Some(rs_name.as_str()))?;
            let pods = live_pods(&client, "orders-").await;
            (rs_replicas(new) == 4
                && rs_replicas(old) == 0
                && pods.len() == 4
                && pods.iter().all(|p| p.metadata.name.as_deref().unwrap().starts_with(&new_name)))
            .then_some(())
        })
        .await;
        eventually("Progressing: new ReplicaSet available", WAIT, || async {
            let d: Deployment = client.get(NS, "orders").await.ok()?;
            let st = d.status?;
            let c = st.conditions?.into_iter().find(|c| c.type_ == "Progressing")?;
            (c.reason.as_deref() == Some("NewReplicaSetAvailable") && st.updated_replicas == Some(4))
                .then_some(())
        })
        .await;

        // Restarting the controller-manager creates no pod: the same four pods, for a while.
        let before = names(&live_pods(&client, "orders-").await);
        let all_before = names(&client.list::<Pod>(&ListParams::default()).await.unwrap().0);
        cm.restart();
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let now = names(&live_pods(&client, "orders-").await);
            assert_eq!(now, before, "restart changed the pods");
        }
        let all_after = names(&client.list::<Pod>(&ListParams::default()).await.unwrap().0);
        assert!(
            all_after.is_subset(&all_before),
            "new pods after the restart: {:?}",
            all_after.difference(&all_before)
        );
        // The restarted controller-manager works: scale to 6, exactly 6.
        set_replicas(&client, "orders", 6).await;
        eventually("6 orders pods", WAIT, || async {
            (live_pods(&client, "orders-").await.len() == 6).then_some(())
        })
        .await;
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert_eq!(live_pods(&client, "orders-").await.len(), 6, "no extra pod after the restart");
        }

        // Deleting the Deployment: the garbage collector removes its ReplicaSets and pods.
        client.delete::<Deployment>(NS, "orders").await.unwrap();
        eventually("ReplicaSets and pods collected", WAIT, || async {
            (replica_sets(&client, "orders").await.is_empty()
                && live_pods(&client, "orders-").await.is_empty())
            .then_some(())
        })
        .await;
        stop.store(true, Ordering::Relaxed);
    });
    drop(cm);
    drop(api);
}

#[test]
fn statefulset_creates_pods_in_order_with_stable_identity() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    let mut cm = controller_manager(&url);
    runtime().block_on(async {
        let client = Client::new(&url).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let kubelet = Kubelet::start(client.clone(), stop.clone());
        kubelet.hold("web-");
        let set: StatefulSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "replicas": 3,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}
                }
            }
        }))
        .unwrap();
        client.create(&set).await.unwrap();
        let set: StatefulSet = client.get(NS, "web").await.unwrap();

        let web0 = eventually("web-0", WAIT, || async { client.get::<Pod>(NS, "web-0").await.ok() }).await;
        let spec = web0.spec.clone().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("web-0"));
        assert_eq!(spec.subdomain.as_deref(), Some("web"));
        let labels = web0.metadata.labels.clone().unwrap();
        assert_eq!(labels.get("app").map(String::as_str), Some("web"));
        assert_eq!(labels.get("statefulset.kubernetes.io/pod-name").map(String::as_str), Some("web-0"));
        assert_eq!(labels.get("apps.kubernetes.io/pod-index").map(String::as_str), Some("0"));
        let revision = labels.get("controller-revision-hash").cloned().unwrap();
        let hash = revision.strip_prefix("web-").expect("controller-revision-hash is <set>-<hash>");
        assert!(hash.chars().all(|c| HASH_ALPHABET.contains(c)), "{revision}");
        let owner = &web0.metadata.owner_references.clone().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("StatefulSet", set.metadata.uid.as_deref().unwrap(), Some(true))
        );
        eventually("SuccessfulCreate web-0", WAIT, || {
            has_event(
                &client,
                "SuccessfulCreate",
                "create Pod web-0 in StatefulSet web successful".into(),
                "statefulset-controller",
            )
        })
        .await;

        // web-1 waits for web-0 to be Running and Ready.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(client.get::<Pod>(NS, "web-1").await.is_err(), "web-1 created before web-0 is Ready");
        }
        eventually("web-0 bound", WAIT, || async {
            let p: Pod = client.get(NS, "web-0").await.ok()?;
            p.spec?.node_name.map(|_| ())
        })
        .await;
        make_ready_by_name(&client, "web-0").await;
        let web1 = eventually("web-1", WAIT, || async { client.get::<Pod>(NS, "web-1").await.ok() }).await;
        assert_eq!(web1.spec.unwrap().hostname.as_deref(), Some("web-1"));
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(client.get::<Pod>(NS, "web-2").await.is_err(), "web-2 created before web-1 is Ready");
        }
        kubelet.release("web-");
        eventually("web-2 and status", WAIT, || async {
            let s: StatefulSet = client.get(NS, "web").await.ok()?;
            let st = s.status?;
            (st.replicas == 3
                && st.ready_replicas == Some(3)
                && st.available_replicas == Some(3)
                && st.current_replicas == Some(3)
                && st.updated_replicas == Some(3)
                && st.current_revision.as_deref() == Some(revision.as_str())
                && st.observed_generation == s.metadata.generation)
                .then_some(())
        })
        .await;

        // Scale down to 1: web-2 goes first, web-1 only after web-2 is gone.
        kubelet.hold("web-");
        let mut s: StatefulSet = client.get(NS, "web").await.unwrap();
        s.spec.as_mut().unwrap().replicas = Some(1);
        client.update(&s).await.unwrap();
        eventually("web-2 terminating or gone", WAIT, || async {
            match client.get::<Pod>(NS, "web-2").await {
                Ok(p) => p.metadata.deletion_timestamp.map(|_| ()),
                Err(e) => e.is_not_found().then_some(()),
            }
        })
        .await;
        // The kubelet removes Terminating pods regardless of holds; so look at the order in the
        // Events instead of racing it.
        eventually("web-1 deleted", WAIT, || async {
            client.get::<Pod>(NS, "web-1").await.is_err().then_some(())
        })
        .await;
        let deletes = events(&client, "SuccessfulDelete").await;
        // Event names are `<object>.<creation time in hex nanoseconds>`: they sort by time.
        let order: Vec<String> = {
            let mut d: Vec<_> = deletes
                .iter()
                .map(|e| (e.metadata.name.clone(), e.message.clone().unwrap_or_default()))
                .collect();
            d.sort();
            d.into_iter().map(|(_, m)| m).collect()
        };
        assert_eq!(
            order,
            [
                "delete Pod web-2 in StatefulSet web successful",
                "delete Pod web-1 in StatefulSet web successful"
            ],
        );
        assert!(client.get::<Pod>(NS, "web-0").await.is_ok(), "web-0 stays");

        // A Failed pod is replaced.
        let mut p: Pod = client.get(NS, "web-0").await.unwrap();
        let uid = p.metadata.uid.clone();
        p.status.get_or_insert_default().phase = Some("Failed".into());
        client.update_status(&p).await.unwrap();
        eventually("web-0 recreated", WAIT, || async {
            let p: Pod = client.get(NS, "web-0").await.ok()?;
            (p.metadata.uid != uid && p.metadata.deletion_timestamp.is_none()).then_some(())
        })
        .await;

        // Restarting the controller-manager creates nothing new.
        make_ready_by_name(&client, "web-0").await;
        let uid = client.get::<Pod>(NS, "web-0").await.unwrap().metadata.uid;
        cm.restart();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let pods = live_pods(&client, "web-").await;
            assert_eq!(names(&pods), BTreeSet::from(["web-0".to_string()]));
            assert_eq!(pods[0].metadata.uid, uid);
        }
        stop.store(true, Ordering::Relaxed);
    });
    drop(cm);
    drop(api);
}

/// The ServiceAccounts controller: every namespace has `default`, back after a delete, and its
/// tokens can be had (what the kubelet asks for a pod's projected volumes).
#[test]
fn every_namespace_gets_a_default_service_account() {
    let data = tempfile::tempdir().unwrap();
    let api = Apiserver::start(data.path(), &[]);
    let _cm = parts::controller_manager(&api.url(), &["--controllers=serviceaccount"]);
    let rt = runtime();
    rt.block_on(async {
        let client = Client::new(&api.url()).unwrap();
        let ns: k8s_openapi::api::core::v1::Namespace =
            serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap();
        client.create(&ns).await.unwrap();
        let has_default = |ns: &'static str| {
            let client = client.clone();
            move || {
                let client = client.clone();
                async move {
                    client
                        .get::<k8s_openapi::api::core::v1::ServiceAccount>(ns, "default")
                        .await
                        .ok()
                        .map(|_| ())
                }
            }
        };
        for namespace in ["default", "kube-system", "team-a"] {
            eventually(&format!("{namespace}/default"), WAIT, has_default(namespace)).await;
        }
        client.delete::<k8s_openapi::api::core::v1::ServiceAccount>("team-a", "default").await.unwrap();
        eventually("team-a/default again", WAIT, has_default("team-a")).await;
    });
    let token = netlab_e2e::netlab(&api.url(), &["create", "token", "default", "-n", "team-a"], None).ok();
    assert_eq!(token.stdout.matches('.').count(), 2, "a JWT: {}", token.stdout);
}

/// The test's scheduler and kubelet for daemon pods: binds each to the node its `matchFields`
/// affinity names, reports it Running and Ready, and removes Terminating pods.
fn daemon_kubelet(client: Client, stop: Arc<AtomicBool>) {
    tokio::spawn(async move {
        let mut ip = 10u32;
        while !stop.load(Ordering::Relaxed) {
            let pods = client.list::<Pod>(&ListParams::default()).await.map(|l| l.0).unwrap_or_default();
            for p in pods {
                let name = p.metadata.name.clone().unwrap_or_default();
                let ns = p.metadata.namespace.clone().unwrap_or_default();
                if p.metadata.deletion_timestamp.is_some() {
                    let _ = client.delete_with::<Pod>(&ns, &name, Some(0)).await;
                    continue;
                }
                let spec = p.spec.clone().unwrap_or_default();
                if spec.node_name.is_none() {
                    let target = serde_json::to_value(&spec.affinity).ok().and_then(|a| {
                        a.pointer("/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
                            .and_then(|v| v.as_str().map(String::from))
                    });
                    if let Some(node) = target {
                        let _ = client.bind(&ns, &name, &node).await;
                    }
                    continue;
                }
                if !ready(&p) {
                    ip += 1;
                    let _ = make_ready(&client, p, ip).await;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
}

async fn create_node(client: &Client, name: &str, os: &str) {
    let node: k8s_openapi::api::core::v1::Node = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": os, "kubernetes.io/hostname": name}}
    }))
    .unwrap();
    client.create(&node).await.unwrap();
}

/// The daemon pods by node: (node, pod name, pod-template-generation, Ready).
async fn daemon_pods(client: &Client) -> Vec<(String, String, String, bool)> {
    let mut pods: Vec<_> = live_pods(client, "aws-node-")
        .await
        .iter()
        .map(|p| {
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default();
            let generation =
                p.metadata.labels.as_ref().and_then(|l| l.get("pod-template-generation")).cloned();
            (node, p.metadata.name.clone().unwrap_or_default(), generation.unwrap_or_default(), ready(p))
        })
        .collect();
    pods.sort();
    pods
}

#[test]
fn daemonset_runs_one_pod_per_node_and_rolls_one_node_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let url = api.url();
    let cm = parts::controller_manager(&url, &["--controllers", "daemonset,garbagecollector"]);
    runtime().block_on(async {
        let client = Client::new(&url).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        daemon_kubelet(client.clone(), stop.clone());
        create_node(&client, "node-a", "linux").await;
        create_node(&client, "node-b", "linux").await;
        create_node(&client, "win-1", "windows").await;
        let ds: DaemonSet = serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "aws-node", "namespace": NS},
            "spec": {
                "selector": {"matchLabels": {"k8s-app": "aws-node"}},
                "template": {
                    "metadata": {"labels": {"k8s-app": "aws-node"}},
                    "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                             "containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"}]}
                }
            }
        }))
        .unwrap();
        client.create(&ds).await.unwrap();
        let ds: DaemonSet = client.get(NS, "aws-node").await.unwrap();

        // One Ready pod on each Linux node, none on Windows.
        let pods = eventually("a pod per Linux node", WAIT, || async {
            let pods = daemon_pods(&client).await;
            (pods.len() == 2 && pods.iter().all(|p| p.3)).then_some(pods)
        })
        .await;
        assert_eq!(pods.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), ["node-a", "node-b"]);
        let first: Pod = client.get(NS, &pods[0].1).await.unwrap();
        let labels = first.metadata.labels.clone().unwrap();
        assert_eq!(labels.get("pod-template-generation").map(String::as_str), Some("1"));
        let hash = labels.get("controller-revision-hash").cloned().unwrap();
        assert!(hash.chars().all(|c| HASH_ALPHABET.contains(c)), "{hash}");
        let owner = &first.metadata.owner_references.clone().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
            ("DaemonSet", ds.metadata.uid.as_deref().unwrap(), Some(true))
        );
        let affinity = serde_json::to_value(&first.spec.as_ref().unwrap().affinity).unwrap();
        assert_eq!(
            affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
                [0]["matchFields"],
            json!([{"key": "metadata.name", "operator": "In", "values": ["node-a"]}])
        );
        let created = format!("Created pod: {}", pods[0].1);
        eventually("SuccessfulCreate", WAIT, || {
            has_event(&client, "SuccessfulCreate", created.clone(), "daemonset-controller")
        })
        .await;
        eventually("status", WAIT, || async {
            let s = client.get::<DaemonSet>(NS, "aws-node").await.ok()?.status?;
            (s.desired_number_scheduled == 2
                && s.current_number_scheduled == 2
                && s.number_ready == 2
                && s.updated_number_scheduled == Some(2)
                && s.number_available == Some(2)
                && s.number_misscheduled == 0
                && s.observed_generation == Some(1))
            .then_some(())
        })
        .await;

        // A node that joins gets its pod.
        create_node(&client, "node-c", "linux").await;
        eventually("a pod on node-c", WAIT, || async {
            let pods = daemon_pods(&client).await;
            (pods.len() == 3 && pods.iter().all(|p| p.3)).then_some(())
        })
        .await;

        // `kubectl set env`: the template changes, and the pods are replaced one node at a time.
        for _ in 0..10 {
            let mut ds: DaemonSet = client.get(NS, "aws-node").await.unwrap();
            let c = &mut ds.spec.as_mut().unwrap().template.spec.as_mut().unwrap().containers[0];
            c.env = Some(vec![k8s_openapi::api::core::v1::EnvVar {
                name: "WARM_IP_TARGET".into(),
                value: Some("2".into()),
                ..Default::default()
            }]);
            match client.update(&ds).await {
                Ok(_) => break,
                Err(e) if e.is_conflict() => continue,
                Err(e) => panic!("update daemonset: {e:?}"),
            }
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let pods = daemon_pods(&client).await;
            let available = pods.iter().filter(|p| p.3).map(|p| p.0.as_str()).collect::<BTreeSet<_>>();
            assert!(available.len() >= 2, "more than one node without its daemon: {pods:?}");
            if pods.len() == 3 && pods.iter().all(|p| p.2 == "2" && p.3) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "rollout: {pods:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let p: Pod = client.get(NS, &daemon_pods(&client).await[0].1).await.unwrap();
        let env = p.spec.unwrap().containers[0].env.clone().unwrap();
        assert_eq!((env[0].name.as_str(), env[0].value.as_deref()), ("WARM_IP_TARGET", Some("2")));
        eventually("status after the rollout", WAIT, || async {
            let ds = client.get::<DaemonSet>(NS, "aws-node").await.ok()?;
            let s = ds.status?;
            (s.updated_number_scheduled == Some(3)
                && s.number_available == Some(3)
                && s.observed_generation == Some(2))
            .then_some(())
        })
        .await;

        // Deleting the DaemonSet removes its pods (the garbage collector).
        client.delete::<DaemonSet>(NS, "aws-node").await.unwrap();
        eventually("pods collected", WAIT, || async { daemon_pods(&client).await.is_empty().then_some(()) })
            .await;
        stop.store(true, Ordering::Relaxed);
    });
    drop(cm);
    drop(api);
}
