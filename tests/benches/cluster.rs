//! The control-plane benchmark: the real release binaries (apiserver, controller-manager,
//! scheduler) at the scale KWOK is usually run at, 1,000 Nodes and 30,000 pods.
//!
//! Run: `cargo build --release --bins && cargo bench -p netlab-e2e --bench cluster`
//! (`-- direct` creates the pods through the API instead of through Deployments, so only the
//! scheduler is measured; `-- backlog` creates them all before the scheduler starts, so its rate
//! is not capped by how fast pods arrive; `--nodes N --deployments D --replicas R` change the
//! size).
//!
//! Default mode: register the Nodes as kubelets do, then create a Service and a Deployment of
//! `R` replicas per app, and measure until every pod exists (controller-manager) and is bound
//! (scheduler); then mark every pod Running and Ready with a pod IP, as kubelets would, and measure
//! until every Service's EndpointSlices list exactly its ready pods. Progress is printed every few
//! seconds.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec},
        core::v1::{
            Container, ContainerPort, Namespace, Node, NodeAddress, NodeCondition, NodeStatus, Pod,
            PodCondition, PodSpec, PodStatus, PodTemplateSpec, Service, ServicePort, ServiceSpec,
        },
        discovery::v1::EndpointSlice,
    },
    apimachinery::pkg::{
        api::resource::Quantity,
        apis::meta::v1::{LabelSelector, ObjectMeta, Time},
        util::intstr::IntOrString,
    },
};
use netlab_client::{Client, ListParams, Object};
use netlab_e2e::{Apiserver, parts};
use netlab_proto::apiserver::v1::EventType;
use tokio::{
    sync::{Semaphore, mpsc},
    task::JoinSet,
};

const NS: &str = "bench";
/// Requests in flight while setting up (nodes, workloads, pod status), as many kubelets and
/// clients would.
const CONCURRENCY: usize = 64;
/// How often progress is printed.
const PROGRESS: Duration = Duration::from_secs(5);
/// Give up on a phase after this long without progress.
const STALL: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
struct Args {
    direct: bool,
    /// Direct, with every pod created before the scheduler starts: the scheduler's own rate.
    backlog: bool,
    nodes: usize,
    apps: usize,
    replicas: usize,
}

fn args() -> Args {
    let mut a = Args { direct: false, backlog: false, nodes: 1000, apps: 1000, replicas: 30 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> usize {
            it.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "direct" | "--direct" => a.direct = true,
            "backlog" | "--backlog" => (a.direct, a.backlog) = (true, true),
            "--nodes" => a.nodes = num("--nodes"),
            "--deployments" => a.apps = num("--deployments"),
            "--replicas" => a.replicas = num("--replicas"),
            _ => {} // cargo passes --bench
        }
    }
    a
}

fn main() {
    let a = args();
    let dir: PathBuf = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().and_then(|d| d.parent()).map(PathBuf::from))
        .expect("target dir");
    for bin in ["netlab-apiserver", "netlab-controller-manager", "netlab-scheduler"] {
        if !dir.join(bin).exists() {
            eprintln!("{} is missing: run `cargo build --release --bins` first", dir.join(bin).display());
            std::process::exit(1);
        }
    }
    let data = tempfile::tempdir().expect("tempdir");
    let api = Apiserver::start(data.path(), &[]);
    let url = api.url();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    rt.block_on(run(a, url));
    drop(api);
}

async fn run(a: Args, url: String) {
    let total = a.apps * a.replicas;
    let mode = match (a.direct, a.backlog) {
        (_, true) => "backlog (pods created through the API, then the scheduler started)",
        (true, _) => "direct (pods created through the API)",
        _ => "deployments (controller-manager creates the pods)",
    };
    println!("control plane: {} nodes, {} x {} = {total} pods, mode {mode}", a.nodes, a.apps, a.replicas);
    let client = Client::new(&url).expect("client");
    client.create(&Namespace { metadata: meta(NS, None), ..Default::default() }).await.expect("namespace");

    let t = Instant::now();
    parallel((0..a.nodes).map(node).collect(), &client).await;
    println!("registered {} nodes in {:.1?}", a.nodes, t.elapsed());

    let _cm = (!a.direct).then(|| parts::controller_manager(&url, &[]));
    let mut _scheduler = (!a.backlog).then(|| parts::scheduler(&url, &[]));

    // One watch over the pods, as `kubectl get pods -w` would: counts created and bound.
    let mut changes = watch::<Pod>(client.clone());
    let mut pods: HashMap<String, Arc<Pod>> = HashMap::new();

    let mut t0 = Instant::now();
    let mut creating = {
        let client = client.clone();
        let a = a.clone();
        tokio::spawn(async move {
            if !a.direct {
                parallel((0..a.apps).map(service).collect(), &client).await;
                parallel((0..a.apps).map(|i| deployment(i, a.replicas)).collect(), &client).await;
            } else {
                let pods = (0..a.apps).flat_map(|i| (0..a.replicas).map(move |r| direct_pod(i, r))).collect();
                parallel(pods, &client).await;
            }
        })
    };

    if a.backlog {
        let _ = (&mut creating).await;
        println!("created {total} pods in {:.1?}; starting the scheduler", t0.elapsed());
        _scheduler = Some(parts::scheduler(&url, &[]));
        t0 = Instant::now();
    }

    // Phase 1: every pod created and bound.
    let mut created_at = None;
    let (mut last_print, mut last_bound, mut last_change) = (Instant::now(), 0usize, Instant::now());
    let bound_at = loop {
        let bound = pods.values().filter(|p| node_of(p).is_some()).count();
        if pods.len() >= total && created_at.is_none() {
            created_at = Some(t0.elapsed());
        }
        if bound >= total {
            break t0.elapsed();
        }
        if last_print.elapsed() >= PROGRESS {
            let rate = (bound - last_bound) as f64 / last_print.elapsed().as_secs_f64();
            println!(
                "  {:>6.1}s  pods {:>6}/{total}  bound {:>6}/{total}  ({rate:.0} bound/s)",
                t0.elapsed().as_secs_f64(),
                pods.len(),
                bound
            );
            (last_print, last_bound) = (Instant::now(), bound);
        }
        if last_change.elapsed() > STALL {
            println!("STALLED: no pod created or bound for {STALL:?}; pods {} bound {bound}", pods.len());
            return;
        }
        match tokio::time::timeout(Duration::from_millis(200), changes.recv()).await {
            Ok(Some(c)) => {
                apply(&mut pods, c);
                while let Ok(c) = changes.try_recv() {
                    apply(&mut pods, c);
                }
                last_change = Instant::now();
            }
            Ok(None) => break t0.elapsed(),
            Err(_) => {}
        }
    };
    if !a.backlog {
        let _ = creating.await;
    }
    let created_at = created_at.unwrap_or(bound_at);
    let per_node = {
        let mut m: HashMap<String, usize> = HashMap::new();
        for p in pods.values() {
            *m.entry(node_of(p).unwrap_or_default()).or_default() += 1;
        }
        (m.values().min().copied().unwrap_or(0), m.values().max().copied().unwrap_or(0), m.len())
    };
    let short = match (a.direct, a.backlog) {
        (_, true) => "backlog",
        (true, _) => "direct",
        _ => "deployments",
    };
    println!("RESULT mode={short} pods={total} nodes={}", a.nodes);
    if !a.backlog {
        println!("RESULT all pods created after {:.1}s", created_at.as_secs_f64());
    }
    println!(
        "RESULT all pods bound after {:.1}s: {:.0} pods/s bound (pods per node: min {}, max {}, over {} nodes)",
        bound_at.as_secs_f64(),
        total as f64 / bound_at.as_secs_f64(),
        per_node.0,
        per_node.1,
        per_node.2
    );
    if a.direct {
        return;
    }

    // Phase 2: pods Ready (as kubelets report it), then every Service's slices list its pods.
    let mut slice_changes = watch::<EndpointSlice>(client.clone());
    let t1 = Instant::now();
    let marking = {
        let client = client.clone();
        let list: Vec<Arc<Pod>> = pods.values().cloned().collect();
        tokio::spawn(async move { mark_ready(&client, list).await })
    };
    let mut slices: HashMap<String, Arc<EndpointSlice>> = HashMap::new();
    let (mut last_print, mut last_change) = (Instant::now(), Instant::now());
    let ready_services = loop {
        let ready = ready_per_service(&slices);
        let current = (0..a.apps).filter(|i| ready.get(&app(*i)).copied() == Some(a.replicas)).count();
        if current >= a.apps {
            break Some(t1.elapsed());
        }
        if last_print.elapsed() >= PROGRESS {
            let endpoints: usize = ready.values().sum();
            println!(
                "  {:>6.1}s  slices {:>5}  ready endpoints {:>6}/{total}  services current {:>5}/{}",
                t1.elapsed().as_secs_f64(),
                slices.len(),
                endpoints,
                current,
                a.apps
            );
            last_print = Instant::now();
        }
        if last_change.elapsed() > STALL || (slices.is_empty() && t1.elapsed() > Duration::from_secs(60)) {
            println!(
                "EndpointSlices not current: {} slices, {current}/{} services current (is the endpointslice controller functional?)",
                slices.len(),
                a.apps
            );
            break None;
        }
        match tokio::time::timeout(Duration::from_millis(200), slice_changes.recv()).await {
            Ok(Some(c)) => {
                apply(&mut slices, c);
                while let Ok(c) = slice_changes.try_recv() {
                    apply(&mut slices, c);
                }
                last_change = Instant::now();
            }
            Ok(None) => break None,
            Err(_) => {}
        }
    };
    let marked = marking.await.unwrap_or_default();
    println!("RESULT marked {total} pods Ready in {:.1}s", marked.as_secs_f64());
    match ready_services {
        Some(d) => println!(
            "RESULT every EndpointSlice current {:.1}s after pods started turning Ready ({:.1}s after the workloads were created)",
            d.as_secs_f64(),
            (bound_at + d).as_secs_f64()
        ),
        None => println!("RESULT EndpointSlices: not measured (not current)"),
    }
}

/// An object seen by [`watch`]: its latest version, or gone.
enum Change<K> {
    Applied(Arc<K>),
    Deleted(Arc<K>),
}

/// List then watch `K` in the bench namespace, relisting when the watch ends, as a bare-bones
/// informer (the bench, like `kubectl get -w`, is one more watcher on the apiserver).
fn watch<K: Object>(client: Client) -> mpsc::UnboundedReceiver<Change<K>> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let params = ListParams { namespace: NS.into(), ..Default::default() };
        loop {
            let Ok((items, rv)) = client.list::<K>(&params).await else {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            };
            for o in items {
                if tx.send(Change::Applied(Arc::new(o))).is_err() {
                    return;
                }
            }
            let Ok(mut stream) = client.watch::<K>(&params, Some(rv)).await else { continue };
            while let Ok(Some(batch)) = stream.message().await {
                for ev in batch.events {
                    let Some(obj) = ev.object else { continue };
                    let Ok(o) = serde_json::from_slice::<K>(&obj.json) else { continue };
                    let change = if ev.r#type == EventType::Deleted as i32 {
                        Change::Deleted(Arc::new(o))
                    } else if ev.r#type == EventType::Bookmark as i32 {
                        continue;
                    } else {
                        Change::Applied(Arc::new(o))
                    };
                    if tx.send(change).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

fn apply<K: Object>(map: &mut HashMap<String, Arc<K>>, change: Change<K>) {
    match change {
        Change::Applied(o) => {
            map.insert(netlab_client::key_of(o.as_ref()), o);
        }
        Change::Deleted(o) => {
            map.remove(&netlab_client::key_of(o.as_ref()));
        }
    }
}

/// Ready endpoints per `kubernetes.io/service-name`.
fn ready_per_service(slices: &HashMap<String, Arc<EndpointSlice>>) -> HashMap<String, usize> {
    let mut out: HashMap<String, HashSet<String>> = HashMap::new();
    for s in slices.values() {
        let Some(svc) = s.metadata.labels.as_ref().and_then(|l| l.get("kubernetes.io/service-name")) else {
            continue;
        };
        let set = out.entry(svc.clone()).or_default();
        for e in &s.endpoints {
            if e.conditions.as_ref().and_then(|c| c.ready) == Some(true) {
                set.insert(e.target_ref.as_ref().and_then(|r| r.name.clone()).unwrap_or_default());
            }
        }
    }
    out.into_iter().map(|(k, v)| (k, v.len())).collect()
}

/// Creates every object, `CONCURRENCY` at a time.
async fn parallel<K: Object>(objects: Vec<K>, client: &Client) {
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut set = JoinSet::new();
    for obj in objects {
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        set.spawn(async move {
            if let Err(e) = client.create(&obj).await
                && !e.is_already_exists()
            {
                eprintln!("create {}: {e}", netlab_client::key_of(&obj));
            }
            drop(permit);
        });
    }
    while set.join_next().await.is_some() {}
}

/// Sets each pod Running and Ready with a pod IP, as its kubelet would; returns how long it took.
async fn mark_ready(client: &Client, pods: Vec<Arc<Pod>>) -> Duration {
    let t = Instant::now();
    let limit = Arc::new(Semaphore::new(CONCURRENCY));
    let mut set = JoinSet::new();
    for (i, pod) in pods.into_iter().enumerate() {
        let permit = limit.clone().acquire_owned().await.expect("semaphore");
        let client = client.clone();
        set.spawn(async move {
            let ip = format!("10.{}.{}.{}", 128 + i / 65536, (i / 256) % 256, i % 256);
            let mut current = (*pod).clone();
            for _ in 0..5 {
                current.status = Some(ready_status(&current, &ip));
                match client.update_status(&current).await {
                    Ok(_) => break,
                    Err(e) if e.is_conflict() => {
                        let (ns, name) = (
                            current.metadata.namespace.clone().unwrap_or_default(),
                            current.metadata.name.clone().unwrap_or_default(),
                        );
                        match client.get::<Pod>(&ns, &name).await {
                            Ok(p) => current = p,
                            Err(_) => break,
                        }
                    }
                    Err(e) => {
                        eprintln!("status of {}: {e}", netlab_client::key_of(&current));
                        break;
                    }
                }
            }
            drop(permit);
        });
    }
    while set.join_next().await.is_some() {}
    t.elapsed()
}

fn ready_status(pod: &Pod, ip: &str) -> PodStatus {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    let cond = |t: &str| PodCondition {
        type_: t.into(),
        status: "True".into(),
        last_transition_time: Some(now.clone()),
        ..Default::default()
    };
    let mut status = pod.status.clone().unwrap_or_default();
    status.phase = Some("Running".into());
    status.pod_ip = Some(ip.into());
    status.pod_ips = Some(vec![k8s_openapi::api::core::v1::PodIP { ip: ip.into() }]);
    status.start_time = Some(now.clone());
    let mut conditions: Vec<PodCondition> = status
        .conditions
        .take()
        .unwrap_or_default()
        .into_iter()
        .filter(|c| c.type_ == "PodScheduled")
        .collect();
    conditions.extend(["Initialized", "Ready", "ContainersReady"].map(cond));
    status.conditions = Some(conditions);
    status
}

fn node_of(pod: &Pod) -> Option<String> {
    pod.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty())
}

fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: namespace.map(Into::into), ..Default::default() }
}

fn app(i: usize) -> String {
    format!("app-{i:04}")
}

fn labels(i: usize) -> std::collections::BTreeMap<String, String> {
    [("app".to_string(), app(i))].into()
}

/// Node `i`, registered as a kubelet registers it: Ready, addresses, 110 pods allocatable.
fn node(i: usize) -> Node {
    let name = format!("node-{i:04}");
    let resources: std::collections::BTreeMap<String, Quantity> =
        [("cpu", "4"), ("memory", "16Gi"), ("pods", "110")]
            .into_iter()
            .map(|(k, v)| (k.into(), Quantity(v.into())))
            .collect();
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    Node {
        metadata: ObjectMeta {
            labels: Some([("kubernetes.io/hostname".to_string(), name.clone())].into()),
            ..meta(&name, None)
        },
        spec: None,
        status: Some(NodeStatus {
            addresses: Some(vec![
                NodeAddress {
                    type_: "InternalIP".into(),
                    address: format!("10.0.{}.{}", i / 250, 1 + i % 250),
                },
                NodeAddress { type_: "Hostname".into(), address: name.clone() },
            ]),
            allocatable: Some(resources.clone()),
            capacity: Some(resources),
            conditions: Some(vec![NodeCondition {
                type_: "Ready".into(),
                status: "True".into(),
                reason: Some("KubeletReady".into()),
                message: Some("kubelet is posting ready status".into()),
                last_heartbeat_time: Some(now.clone()),
                last_transition_time: Some(now),
            }]),
            ..Default::default()
        }),
    }
}

fn pod_spec() -> PodSpec {
    PodSpec {
        containers: vec![Container {
            name: "app".into(),
            image: Some("nginx:1.27".into()),
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn service(i: usize) -> Service {
    Service {
        metadata: meta(&app(i), Some(NS)),
        spec: Some(ServiceSpec {
            selector: Some(labels(i)),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn deployment(i: usize, replicas: usize) -> Deployment {
    Deployment {
        metadata: meta(&app(i), Some(NS)),
        spec: Some(DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: LabelSelector { match_labels: Some(labels(i)), ..Default::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels(i)), ..Default::default() }),
                spec: Some(pod_spec()),
            },
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn direct_pod(i: usize, r: usize) -> Pod {
    Pod {
        metadata: ObjectMeta { labels: Some(labels(i)), ..meta(&format!("{}-{r:02}", app(i)), Some(NS)) },
        spec: Some(pod_spec()),
        ..Default::default()
    }
}
