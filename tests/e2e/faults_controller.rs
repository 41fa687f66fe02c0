//! The chaos controller across the real processes (apiserver, controller-manager, scheduler, a
//! node-agent, the cloud's registry): a fault's records follow the pods it selects (a pod created
//! later is added with its IP, a deleted one goes), a `duration` ends in `TimeUp` and `Stop`, the
//! pause annotation stops and resumes it, a selector matching nothing is a `Failed` warning, the events read as Chaos Mesh's in
//! `netlab get events`, and pod-kill deletes a Deployment's pod once: the
//! replacement comes up and is left alone.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Pod};
use netlab_chaos::{ComponentChaos, NetworkChaos, PAUSE_ANNOTATION, PodChaos, status::Record};
use netlab_client::{Client, ListParams};
use netlab_e2e::{
    Apiserver, Component, Run, events_for, eventually, free_port, netlab,
    parts::{self, Node},
};

const WAIT: Duration = Duration::from_secs(60);
const NS: &str = "default";

struct Lab {
    // Drop order: the agent and the controllers first, the apiserver last.
    _agent: Component,
    _scheduler: Component,
    _cm: Component,
    _cloud: Component,
    api: Apiserver,
    client: Client,
    _dir: tempfile::TempDir,
}

impl Lab {
    fn start(node_ip: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let api = Apiserver::start(&dir.path().join("api"), &[]);
        let url = api.url();
        let (cloud, registry) = parts::cloud();
        let cm = parts::controller_manager(&url, &[]);
        let scheduler = parts::scheduler(&url, &[]);
        let node = Node { name: "node-1", ip: node_ip, port: free_port() };
        let agent = node.agent(&url, dir.path(), &registry, &[]);
        let client = Client::new(&url).expect("client");
        Self { _agent: agent, _scheduler: scheduler, _cm: cm, _cloud: cloud, api, client, _dir: dir }
    }

    fn netlab(&self, args: &[&str], stdin: Option<&str>) -> Run {
        netlab(&self.api.url(), args, stdin)
    }

    fn apply(&self, yaml: &str) {
        self.netlab(&["apply", "-f", "-"], Some(yaml)).ok();
    }

    async fn network(&self, name: &str) -> Option<NetworkChaos> {
        self.client.get::<NetworkChaos>(NS, name).await.ok()
    }
}

fn pod(name: &str, app: &str) -> String {
    format!(
        r#"
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: default
  labels:
    app: {app}
spec:
  nodeName: node-1
  containers:
  - name: main
    image: nicolaka/netshoot:v0.13
    command: ["sleep", "infinity"]
"#
    )
}

/// Sets (or, with None, removes) Chaos Mesh's pause annotation on the NetworkChaos `name`,
/// again on a conflict (the controller writes the status meanwhile).
async fn set_pause(client: &Client, name: &str, value: Option<&str>) {
    for _ in 0..20 {
        let mut f: NetworkChaos = client.get(NS, name).await.expect("the fault");
        let annotations = f.metadata.annotations.get_or_insert_default();
        match value {
            Some(v) => annotations.insert(PAUSE_ANNOTATION.into(), v.into()),
            None => annotations.remove(PAUSE_ANNOTATION),
        };
        match client.update(&f).await {
            Ok(_) => return,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("annotating {name}: {e}"),
        }
    }
    panic!("annotating {name}: conflicts every time");
}

fn records(f: &NetworkChaos) -> Vec<Record> {
    f.status.as_ref().map(|s| s.experiment.container_records.clone()).unwrap_or_default()
}

/// The record of `id` under `key`, once it has a pod IP.
fn with_ip<'a>(records: &'a [Record], id: &str, key: &str) -> Option<&'a Record> {
    records.iter().find(|r| r.id == id && r.selector_key == key && !r.pod_ip.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_follow_the_pods_and_a_duration_ends_in_time_up() {
    let lab = Lab::start("127.0.141.1");
    lab.apply(&pod("client-1", "client"));
    lab.apply(&pod("orders-1", "orders"));
    lab.apply(
        r#"
apiVersion: chaos.netlab.io/v1alpha1
kind: NetworkChaos
metadata:
  name: cut
  namespace: default
spec:
  action: partition
  mode: all
  selector:
    labelSelectors:
      app: client
  direction: to
  target:
    mode: all
    selector:
      labelSelectors:
        app: orders
"#,
    );

    // Every matching pod, under its selector key, with its IP and node.
    let f = eventually("records for client-1 and orders-1 with their IPs", WAIT, || async {
        let f = lab.network("cut").await?;
        let r = records(&f);
        (with_ip(&r, "default/client-1", ".").is_some()
            && with_ip(&r, "default/orders-1", ".Target").is_some())
        .then_some(f)
    })
    .await;
    let status = f.status.clone().expect("status");
    assert_eq!(status.experiment.desired_phase, "Run");
    let r = records(&f);
    assert_eq!(r.len(), 2, "{r:?}");
    let client = with_ip(&r, "default/client-1", ".").expect("client record");
    assert_eq!(
        (client.phase.as_str(), client.injected_count, client.node_name.as_str()),
        ("Injected", 1, "node-1")
    );
    assert!(client.pod_ip.starts_with("10.244."), "{client:?}");
    assert!(!client.injected_at.is_empty());
    let conditions: Vec<(String, String)> =
        status.conditions.iter().map(|c| (c.type_.clone(), c.status.clone())).collect();
    for want in
        [("Selected", "True"), ("AllInjected", "True"), ("AllRecovered", "False"), ("Paused", "False")]
    {
        assert!(conditions.contains(&(want.0.into(), want.1.into())), "{conditions:?}");
    }

    // A pod created later that matches is added, with its IP once it has one.
    lab.apply(&pod("client-2", "client"));
    eventually("client-2's record with its IP", WAIT, || async {
        with_ip(&records(&lab.network("cut").await?), "default/client-2", ".").map(drop)
    })
    .await;
    // A deleted pod's record goes.
    lab.netlab(&["delete", "pod", "client-2", "--grace-period=0", "--force"], None);
    eventually("client-2's record gone", WAIT, || async {
        let r = records(&lab.network("cut").await?);
        (!r.iter().any(|r| r.id == "default/client-2")).then_some(())
    })
    .await;

    // The events, as Chaos Mesh records them, listed by `netlab get events`. (`netlab describe
    // networkchaos` lists the same once the CLI knows the chaos kinds.)
    let listed = eventually("the fault's events", WAIT, || async {
        let run = lab.netlab(&["get", "events", "--field-selector", "involvedObject.name=cut"], None);
        (run.code == Some(0) && run.stdout.contains("Successfully apply chaos for default/client-2"))
            .then_some(run.stdout)
    })
    .await;
    for line in [
        "Experiment has started",
        "Successfully update desiredPhase of resource",
        "Successfully apply chaos for default/client-1",
        "Successfully apply chaos for default/orders-1",
        "Successfully update records of resource",
    ] {
        assert!(listed.contains(line), "{line:?} not in:\n{listed}");
    }
    // From: Chaos Mesh's controller names.
    let source = |e: &Event| e.source.as_ref().and_then(|s| s.component.clone()).unwrap_or_default();
    let started = events_for(&lab.client, NS, "cut", "Started").await;
    assert_eq!(started.iter().map(source).collect::<Vec<_>>(), ["desiredphase"]);
    let applied = events_for(&lab.client, NS, "cut", "Applied").await;
    assert!(applied.iter().all(|e| source(e) == "records"), "{applied:?}");

    // A duration: Stop with TimeUp when it is over, every record recovered once.
    lab.apply(
        r#"
apiVersion: chaos.netlab.io/v1alpha1
kind: NetworkChaos
metadata:
  name: brief
  namespace: default
spec:
  action: delay
  mode: all
  selector:
    labelSelectors:
      app: client
  delay:
    latency: 100ms
  duration: 2s
"#,
    );
    let stopped = eventually("brief stopped by its duration", WAIT, || async {
        let f = lab.network("brief").await?;
        (f.status.as_ref()?.experiment.desired_phase == "Stop").then_some(f)
    })
    .await;
    let r = records(&stopped);
    let client = r.iter().find(|r| r.id == "default/client-1").expect("client-1 recorded");
    assert_eq!(
        (client.phase.as_str(), client.injected_count, client.recovered_count),
        ("Not Injected", 1, 1)
    );
    let events = eventually("brief's Recovered event", WAIT, || async {
        let run = lab.netlab(&["get", "events", "--field-selector", "involvedObject.name=brief"], None);
        (run.code == Some(0) && run.stdout.contains("Recovered")).then_some(run.stdout)
    })
    .await;
    for line in
        ["TimeUp", "Time up according to the duration", "Successfully recover chaos for default/client-1"]
    {
        assert!(events.contains(line), "{line:?} not in:\n{events}");
    }

    // Chaos Mesh's pause annotation stops it (records recovered, Paused), removing it starts it again.
    set_pause(&lab.client, "cut", Some("true")).await;
    let paused = eventually("cut paused", WAIT, || async {
        let f = lab.network("cut").await?;
        let s = f.status.clone()?;
        let on = s.conditions.iter().any(|c| c.type_ == "Paused" && c.status == "True");
        (on && s.experiment.desired_phase == "Stop").then_some(f)
    })
    .await;
    assert!(records(&paused).iter().all(|r| r.phase == "Not Injected" && r.recovered_count == 1));
    set_pause(&lab.client, "cut", None).await;
    let resumed = eventually("cut running again", WAIT, || async {
        let f = lab.network("cut").await?;
        (f.status.as_ref()?.experiment.desired_phase == "Run").then_some(f)
    })
    .await;
    let client = records(&resumed).into_iter().find(|r| r.id == "default/client-1").expect("client-1");
    assert_eq!((client.phase.as_str(), client.injected_count), ("Injected", 2));
    eventually("the Paused event", WAIT, || async {
        events_for(&lab.client, NS, "cut", "Paused").await.pop()
    })
    .await;

    // The lab's kinds record what they reach: a node's kube-proxy.
    lab.apply(
        r#"
apiVersion: chaos.netlab.io/v1alpha1
kind: ComponentChaos
metadata:
  name: proxy-hang
  namespace: default
spec:
  action: pause
  component: kube-proxy
  nodes: [node-1]
"#,
    );
    eventually("the ComponentChaos record", WAIT, || async {
        let f = lab.client.get::<ComponentChaos>(NS, "proxy-hang").await.ok()?;
        let r = f.status?.experiment.container_records;
        (r.len() == 1 && r[0].id == "node-1/kube-proxy" && r[0].phase == "Injected").then_some(())
    })
    .await;

    // A selector matching nothing: a warning, as Chaos Mesh's.
    lab.apply(
        r#"
apiVersion: chaos.netlab.io/v1alpha1
kind: NetworkChaos
metadata:
  name: nobody
  namespace: default
spec:
  action: loss
  mode: all
  selector:
    labelSelectors:
      app: nobody
  loss:
    loss: "50"
"#,
    );
    let failed = eventually("the Failed event", WAIT, || async {
        events_for(&lab.client, NS, "nobody", "Failed").await.pop()
    })
    .await;
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    assert_eq!(failed.message.as_deref(), Some("Failed to select targets: no pod is selected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_kill_deletes_the_pod_once_and_spares_its_replacement() {
    let lab = Lab::start("127.0.142.1");
    lab.apply(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: nginx:1.27
"#,
    );
    let running = |lab: &Lab| {
        let client = lab.client.clone();
        async move {
            let params = ListParams { labels: "app=web".into(), ..Default::default() };
            let (pods, _) = client.list::<Pod>(&params).await.ok()?;
            let live: Vec<Pod> = pods
                .into_iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| p.status.as_ref().and_then(|s| s.pod_ip.as_ref()).is_some())
                .collect();
            (live.len() == 1).then(|| live[0].clone())
        }
    };
    let victim = eventually("web's pod running", WAIT, || running(&lab)).await;
    let victim_name = victim.metadata.name.clone().expect("name");

    lab.apply(
        r#"
apiVersion: chaos.netlab.io/v1alpha1
kind: PodChaos
metadata:
  name: kill-web
  namespace: default
spec:
  action: pod-kill
  mode: all
  gracePeriod: 0
  selector:
    labelSelectors:
      app: web
"#,
    );

    // Deleted through the API, once: the record keeps the killed pod.
    let killed = eventually("the pod killed and counted", WAIT, || async {
        let f = lab.client.get::<PodChaos>(NS, "kill-web").await.ok()?;
        let s = f.status.as_ref()?;
        let affected = s.counters.get("controller-manager")?.get("podsAffected").copied()?;
        (affected == 1).then_some(f)
    })
    .await;
    let status = killed.status.clone().expect("status");
    assert_eq!(status.experiment.desired_phase, "Run");
    let r = &status.experiment.container_records;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0].id, format!("default/{victim_name}"));
    assert_eq!((r[0].phase.as_str(), r[0].injected_count), ("Injected", 1));
    let applied = events_for(&lab.client, NS, "kill-web", "Applied").await;
    assert_eq!(
        applied.first().and_then(|e| e.message.as_deref()),
        Some(format!("Successfully apply chaos for default/{victim_name}").as_str())
    );

    // The ReplicaSet's replacement comes up, under another name.
    let replacement = eventually("the replacement running", WAIT, || async {
        let p = running(&lab).await?;
        (p.metadata.name.as_deref() != Some(victim_name.as_str())).then_some(p)
    })
    .await;
    assert!(lab.client.get::<Pod>(NS, &victim_name).await.is_err(), "the victim is gone");

    // The controller has seen the replacement (a fault selecting it records it) and left it
    // alone: one-shot, as Chaos Mesh's pod-kill.
    lab.apply(
        r#"
apiVersion: chaos.netlab.io/v1alpha1
kind: NetworkChaos
metadata:
  name: watch-web
  namespace: default
spec:
  action: delay
  mode: all
  selector:
    labelSelectors:
      app: web
  delay:
    latency: 10ms
"#,
    );
    let replacement_id = format!("default/{}", replacement.metadata.name.clone().expect("name"));
    eventually("the replacement recorded by another fault", WAIT, || async {
        with_ip(&records(&lab.network("watch-web").await?), &replacement_id, ".").map(drop)
    })
    .await;
    let still = lab.client.get::<Pod>(NS, replacement.metadata.name.as_deref().unwrap_or_default()).await;
    let still = still.expect("the replacement is still there");
    assert_eq!(still.metadata.uid, replacement.metadata.uid);
    assert!(still.metadata.deletion_timestamp.is_none(), "the replacement is not being deleted");
    let f = lab.client.get::<PodChaos>(NS, "kill-web").await.expect("the fault");
    let s = f.status.expect("status");
    assert_eq!(s.experiment.container_records.len(), 1);
    assert_eq!(s.counters["controller-manager"]["podsAffected"], 1);
}
