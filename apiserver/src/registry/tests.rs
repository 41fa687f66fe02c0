//! Registry tests: the write path, watch resume and expiry, restarts and repair, on a real redb
//! store in a temporary directory.

use std::{sync::Arc, time::Duration};

use netlab_proto::apiserver::v1::{EventType, Resource};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{bootstrap, store::RedbStore};

fn config(cidr: &str, history: usize) -> RegistryConfig {
    RegistryConfig {
        service_cidr: cidr.parse().unwrap(),
        node_ports: (30000, 32767),
        history,
        watch_buffer: 1024,
        validation: Default::default(),
    }
}

async fn open(dir: &std::path::Path, cfg: RegistryConfig) -> Registry {
    open_with_writer(dir, cfg).await.0
}

async fn open_with_writer(
    dir: &std::path::Path,
    cfg: RegistryConfig,
) -> (Registry, tokio::task::JoinHandle<()>) {
    let store = Arc::new(RedbStore::open(dir).unwrap());
    let (registry, writer) = Registry::open(store, cfg, CancellationToken::new()).await.unwrap();
    bootstrap::run(&registry, 6443).await.unwrap();
    (registry, writer)
}

/// Drops the registry and waits for its writer to end, which closes the store file.
async fn close(registry: Registry, writer: tokio::task::JoinHandle<()>) {
    drop(registry);
    writer.await.unwrap();
}

fn body(v: Value) -> Vec<u8> {
    serde_json::to_vec(&v).unwrap()
}

fn svc(name: &str) -> Vec<u8> {
    body(
        json!({"metadata": {"name": name, "labels": {"app": name}}, "spec": {"selector": {"app": name}, "ports": [{"port": 80}]}}),
    )
}

fn ip_of(obj: &Stored) -> String {
    obj.value["spec"]["clusterIP"].as_str().unwrap().to_string()
}

async fn next(rx: &mut tokio::sync::mpsc::Receiver<Result<Vec<watch::Item>>>) -> Vec<(EventType, String)> {
    let batch =
        tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.expect("an event").expect("open");
    batch.unwrap().into_iter().map(|i| (i.kind, i.object.name.clone())).collect()
}

#[tokio::test]
async fn bootstrap_gives_kubernetes_the_first_ip_and_kube_dns_the_tenth() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    assert_eq!(ip_of(&r.get(Resource::Services, "default", "kubernetes").unwrap()), "10.96.0.1");
    let dns = r.get(Resource::Services, "kube-system", "kube-dns").unwrap();
    assert_eq!(ip_of(&dns), "10.96.0.10");
    assert_eq!(dns.value["spec"]["ports"].as_array().unwrap().len(), 3);
    for ns in ["default", "kube-system", "kube-public"] {
        r.get(Resource::Namespaces, "", ns).unwrap();
    }
    let corefile = r.get(Resource::ConfigMaps, "kube-system", "coredns").unwrap();
    assert!(corefile.value["data"]["Corefile"].as_str().unwrap().contains("kubernetes cluster.local"));
}

#[tokio::test]
async fn services_get_distinct_ips_from_the_dynamic_band_and_errors_are_kubernetes_words() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.0.0.0/26", 100)).await; // static band .1-.16
    let a = r.create(Resource::Services, "default", &svc("a")).await.unwrap();
    let b = r.create(Resource::Services, "default", &svc("b")).await.unwrap();
    assert_ne!(ip_of(&a), ip_of(&b));
    for s in [&a, &b] {
        let last: u8 = ip_of(s).rsplit('.').next().unwrap().parse().unwrap();
        assert!((17..=62).contains(&last), "{}", ip_of(s));
    }
    let err = r.create(Resource::Services, "default", &svc("a")).await.unwrap_err();
    assert_eq!(err.to_string(), "services \"a\" already exists");

    let taken =
        body(json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "10.0.0.10", "ports": [{"port": 53}]}}));
    let err = r.create(Resource::Services, "default", &taken).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "The Service \"c\" is invalid: spec.clusterIPs: Invalid value: [\"10.0.0.10\"]: failed to allocate IP 10.0.0.10: provided IP is already allocated"
    );
    let outside =
        body(json!({"metadata": {"name": "c"}, "spec": {"clusterIP": "1.1.1.1", "ports": [{"port": 53}]}}));
    let err = r.create(Resource::Services, "default", &outside).await.unwrap_err();
    assert!(err.to_string().ends_with("failed to allocate IP 1.1.1.1: provided IP 1.1.1.1 is not in the valid range. The range of valid IPs is 10.0.0.0/26"), "{err}");

    let err = r.create(Resource::Services, "nope", &svc("x")).await.unwrap_err();
    assert_eq!(err.to_string(), "namespaces \"nope\" not found");
}

#[tokio::test]
async fn range_full_then_release_on_delete() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.0.0.0/28", 100)).await; // 14 usable; .1 and .10 bootstrapped
    for i in 0..12 {
        r.create(Resource::Services, "default", &svc(&format!("s{i}"))).await.unwrap();
    }
    let err = r.create(Resource::Services, "default", &svc("full")).await.unwrap_err();
    assert_eq!(err.to_string(), "Internal error occurred: failed to allocate a serviceIP: range is full");
    assert!(r.get(Resource::Services, "default", "full").is_err(), "nothing stored");
    let gone = r.delete(Resource::Services, "default", "s3", None, None).await.unwrap();
    let again = r.create(Resource::Services, "default", &svc("full")).await.unwrap();
    assert_eq!(ip_of(&again), ip_of(&gone));
}

#[tokio::test]
async fn headless_and_external_name_get_no_ip_and_node_ports_are_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let headless = body(
        json!({"metadata": {"name": "db"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 6379}]}}),
    );
    let db = r.create(Resource::Services, "default", &headless).await.unwrap();
    assert_eq!(ip_of(&db), "None");
    let ext = body(
        json!({"metadata": {"name": "ext"}, "spec": {"type": "ExternalName", "externalName": "example.com"}}),
    );
    let ext = r.create(Resource::Services, "default", &ext).await.unwrap();
    assert!(ext.value["spec"].get("clusterIP").is_none());
    let np = body(
        json!({"metadata": {"name": "web"}, "spec": {"type": "NodePort", "ports": [{"name": "a", "port": 80, "nodePort": 30080}, {"name": "b", "port": 81}]}}),
    );
    let web = r.create(Resource::Services, "default", &np).await.unwrap();
    assert_eq!(web.value["spec"]["ports"][0]["nodePort"], 30080);
    let second = web.value["spec"]["ports"][1]["nodePort"].as_u64().unwrap();
    assert!((30086..=32767).contains(&second), "{second}");
    let clash = body(
        json!({"metadata": {"name": "web2"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}),
    );
    let err = r.create(Resource::Services, "default", &clash).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "The Service \"web2\" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated"
    );
}

#[tokio::test]
async fn update_keeps_allocations_rejects_stale_versions_and_skips_no_ops() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let a = r.create(Resource::Services, "default", &svc("a")).await.unwrap();
    // Re-sending the manifest (no clusterIP, no resourceVersion) changes nothing.
    let same = r.update(Resource::Services, "default", &svc("a"), false).await.unwrap();
    assert_eq!(same.rv, a.rv);
    assert_eq!(ip_of(&same), ip_of(&a));
    let mut changed: Value = serde_json::from_slice(&svc("a")).unwrap();
    changed["metadata"]["labels"]["tier"] = "web".into();
    changed["metadata"]["resourceVersion"] = a.rv.to_string().into();
    let b = r.update(Resource::Services, "default", &body(changed.clone()), false).await.unwrap();
    assert!(b.rv > a.rv);
    assert_eq!(ip_of(&b), ip_of(&a));
    let err = r.update(Resource::Services, "default", &body(changed), false).await.unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(
        err.to_string(),
        "Operation cannot be fulfilled on services \"a\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn status_is_written_only_through_the_status_subresource() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let pod = body(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}, "status": {"phase": "Running"}}),
    );
    let p = r.create(Resource::Pods, "default", &pod).await.unwrap();
    assert_eq!(p.value["status"]["phase"], "Pending", "create resets status");
    let mut with_status = p.value.clone();
    with_status["status"]["podIP"] = "10.244.1.5".into();
    with_status["spec"]["containers"][0]["image"] = "nginx:1.28".into();
    let s = r.update(Resource::Pods, "default", &body(with_status), true).await.unwrap();
    assert_eq!(s.value["status"]["podIP"], "10.244.1.5");
    assert_eq!(s.value["spec"]["containers"][0]["image"], "nginx:1.27", "status update keeps spec");
}

#[tokio::test]
async fn daemon_set_template_generation_follows_the_template() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let ds = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "annotations": {"deprecated.daemonset.template.generation": "7"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
                 "template": {"metadata": {"labels": {"k8s-app": "aws-node"}},
                              "spec": {"containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"}]}}},
        "status": {"numberReady": 3}});
    let created = r.create(Resource::DaemonSets, "kube-system", &body(ds)).await.unwrap();
    let generation =
        |v: &Value| v["metadata"]["annotations"]["deprecated.daemonset.template.generation"].clone();
    assert_eq!(generation(&created.value), "1", "the client's value is ignored");
    assert_eq!(
        created.value["status"],
        json!({"currentNumberScheduled": 0, "desiredNumberScheduled": 0, "numberMisscheduled": 0, "numberReady": 0})
    );
    let mut limit = created.value.clone();
    limit["spec"]["revisionHistoryLimit"] = json!(3);
    let limited = r.update(Resource::DaemonSets, "kube-system", &body(limit), false).await.unwrap();
    assert_eq!(
        (generation(&limited.value), limited.value["metadata"]["generation"].clone()),
        (json!("1"), json!(2))
    );
    let mut env = limited.value.clone();
    env["spec"]["template"]["spec"]["containers"][0]["env"] =
        json!([{"name": "WARM_IP_TARGET", "value": "2"}]);
    env["metadata"]["annotations"]["deprecated.daemonset.template.generation"] = json!("9");
    let updated = r.update(Resource::DaemonSets, "kube-system", &body(env), false).await.unwrap();
    assert_eq!(
        (generation(&updated.value), updated.value["metadata"]["generation"].clone()),
        (json!("2"), json!(3))
    );
    let mut status = updated.value.clone();
    status["status"]["desiredNumberScheduled"] = json!(2);
    let counted = r.update(Resource::DaemonSets, "kube-system", &body(status), true).await.unwrap();
    assert_eq!(counted.value["status"]["desiredNumberScheduled"], 2);
    assert_eq!(generation(&counted.value), "2");
}

#[tokio::test]
async fn watch_resumes_from_a_resource_version_and_expires_when_too_old() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 5)).await;
    let (_, rv) = r.list(Resource::Services, "", &Default::default(), &Default::default());
    r.create(Resource::Services, "default", &svc("a")).await.unwrap();
    r.create(Resource::Services, "default", &svc("b")).await.unwrap();
    let spec = |from| WatchSpec {
        resource: Resource::Services,
        namespace: String::new(),
        labels: Default::default(),
        fields: Default::default(),
        from,
    };
    let mut rx = r.watch(spec(Some(rv)), CancellationToken::new()).unwrap();
    assert_eq!(next(&mut rx).await, vec![(EventType::Added, "a".into()), (EventType::Added, "b".into())]);
    r.delete(Resource::Services, "default", "a", None, None).await.unwrap();
    assert_eq!(next(&mut rx).await, vec![(EventType::Deleted, "a".into())]);

    // Unset: the current state first.
    let mut all = r.watch(spec(None), CancellationToken::new()).unwrap();
    let mut names: Vec<String> = next(&mut all).await.into_iter().map(|(_, n)| n).collect();
    names.sort();
    assert_eq!(names, ["b", "kube-dns", "kubernetes"]);

    for i in 0..6 {
        r.create(Resource::ConfigMaps, "default", &body(json!({"metadata": {"name": format!("c{i}")}})))
            .await
            .unwrap();
    }
    let err = r.watch(spec(Some(rv)), CancellationToken::new()).unwrap_err();
    assert_eq!(err.reason(), "Expired");
    assert!(err.to_string().starts_with(&format!("too old resource version: {rv} (")), "{err}");
}

#[tokio::test]
async fn label_watch_sees_objects_leave_and_enter_its_selection() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let spec = WatchSpec {
        resource: Resource::ConfigMaps,
        namespace: "default".into(),
        labels: crate::selector::LabelSelector::parse("app=orders").unwrap(),
        fields: Default::default(),
        from: None,
    };
    let mut rx = r.watch(spec, CancellationToken::new()).unwrap();
    let cm = |app: &str| body(json!({"metadata": {"name": "cm", "labels": {"app": app}}}));
    r.create(Resource::ConfigMaps, "default", &cm("orders")).await.unwrap();
    assert_eq!(next(&mut rx).await, vec![(EventType::Added, "cm".into())]);
    r.update(Resource::ConfigMaps, "default", &cm("other"), false).await.unwrap();
    assert_eq!(next(&mut rx).await, vec![(EventType::Deleted, "cm".into())]);
    r.update(Resource::ConfigMaps, "default", &cm("orders"), false).await.unwrap();
    assert_eq!(next(&mut rx).await, vec![(EventType::Added, "cm".into())]);
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents_and_finalizers_delay_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    r.create(Resource::Namespaces, "", &body(json!({"metadata": {"name": "demo"}}))).await.unwrap();
    let s = r.create(Resource::Services, "demo", &svc("orders")).await.unwrap();
    r.delete(Resource::Namespaces, "", "demo", None, None).await.unwrap();
    assert!(r.get(Resource::Services, "demo", "orders").is_err());
    r.create(Resource::Namespaces, "", &body(json!({"metadata": {"name": "demo"}}))).await.unwrap();
    let fixed = body(
        json!({"metadata": {"name": "orders"}, "spec": {"clusterIP": ip_of(&s), "ports": [{"port": 80}]}}),
    );
    r.create(Resource::Services, "demo", &fixed).await.expect("the namespace's IPs were released");

    let cm = json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}});
    r.create(Resource::ConfigMaps, "default", &body(cm.clone())).await.unwrap();
    let marked = r.delete(Resource::ConfigMaps, "default", "held", None, None).await.unwrap();
    assert!(marked.value["metadata"]["deletionTimestamp"].is_string());
    let mut released = marked.value.clone();
    released["metadata"]["finalizers"] = json!([]);
    r.update(Resource::ConfigMaps, "default", &body(released), false).await.unwrap();
    assert!(r.get(Resource::ConfigMaps, "default", "held").is_err());
}

#[tokio::test]
async fn a_restart_keeps_objects_and_never_reuses_an_ip() {
    let dir = tempfile::tempdir().unwrap();
    let (r, writer) = open_with_writer(dir.path(), config("10.0.0.0/28", 100)).await; // 14 usable, .1 and .10 taken
    let a = r.create(Resource::Services, "default", &svc("a")).await.unwrap();
    let (ip, rv) = (ip_of(&a), a.rv);
    close(r, writer).await;
    let r = open(dir.path(), config("10.0.0.0/28", 100)).await;
    let a = r.get(Resource::Services, "default", "a").unwrap();
    assert_eq!((ip_of(&a), a.rv), (ip.clone(), rv));
    for i in 0..11 {
        let s = r.create(Resource::Services, "default", &svc(&format!("s{i}"))).await.unwrap();
        assert_ne!(ip_of(&s), ip);
        assert!(s.rv > rv);
    }
}

#[tokio::test]
async fn a_changed_service_cidr_is_reported_by_the_repair() {
    let dir = tempfile::tempdir().unwrap();
    let (r, writer) = open_with_writer(dir.path(), config("10.96.0.0/12", 100)).await;
    r.create(Resource::Services, "default", &svc("a")).await.unwrap();
    close(r, writer).await;
    let r = open(dir.path(), config("192.168.0.0/16", 100)).await;
    let fields =
        crate::selector::FieldSelector::parse(Resource::Events, "reason=ClusterIPOutOfRange").unwrap();
    let (events, _) = r.list(Resource::Events, "", &Default::default(), &fields);
    let names: Vec<&str> =
        events.iter().map(|e| e.value["involvedObject"]["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"a") && names.contains(&"kubernetes"), "{names:?}");
    assert!(
        events[0].value["message"]
            .as_str()
            .unwrap()
            .contains("is not within the configured Service CIDR 192.168.0.0/16")
    );
}

#[tokio::test]
async fn binding_assigns_a_node_once() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let pod = body(
        json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}),
    );
    r.create(Resource::Pods, "default", &pod).await.unwrap();
    let bound = r.bind("default", "p", "node-1").await.unwrap();
    assert_eq!(bound.value["spec"]["nodeName"], "node-1");
    let cond = &bound.value["status"]["conditions"][0];
    assert_eq!((cond["type"].as_str(), cond["status"].as_str()), (Some("PodScheduled"), Some("True")));
    let err = r.bind("default", "p", "node-2").await.unwrap_err();
    assert_eq!(err.reason(), "Conflict");
    assert_eq!(
        err.to_string(),
        "Operation cannot be fulfilled on pods/binding \"p\": pod p is already assigned to node \"node-1\""
    );
}

#[tokio::test]
async fn a_pod_on_a_node_terminates_gracefully_and_an_unbound_one_goes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), config("10.96.0.0/12", 100)).await;
    let pod = |n: &str| {
        body(json!({"metadata": {"name": n}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}))
    };
    r.create(Resource::Pods, "default", &pod("bound")).await.unwrap();
    r.create(Resource::Pods, "default", &pod("loose")).await.unwrap();
    r.bind("default", "bound", "node-1").await.unwrap();
    let marked = r.delete(Resource::Pods, "default", "bound", None, None).await.unwrap();
    assert!(marked.value["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(marked.value["metadata"]["deletionGracePeriodSeconds"], 30);
    assert!(r.get(Resource::Pods, "default", "bound").is_ok(), "Terminating, not gone");
    r.delete(Resource::Pods, "default", "bound", None, Some(0)).await.unwrap();
    assert!(r.get(Resource::Pods, "default", "bound").is_err(), "the kubelet's grace-0 delete removes it");
    r.delete(Resource::Pods, "default", "loose", None, None).await.unwrap();
    assert!(r.get(Resource::Pods, "default", "loose").is_err());
}

/// A store whose commits fail while `failing` is set.
struct FlakyStore {
    inner: RedbStore,
    failing: std::sync::atomic::AtomicBool,
}

impl crate::store::Store for FlakyStore {
    fn load(&self) -> Result<crate::store::Snapshot, crate::store::StoreError> {
        self.inner.load()
    }

    fn commit(&self, batch: &crate::store::Batch) -> Result<(), crate::store::StoreError> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(crate::store::StoreError::Io { op: "commit", source: "disk full".into() });
        }
        self.inner.commit(batch)
    }
}

#[tokio::test]
async fn a_failed_commit_fails_its_writes_with_the_cause_and_gives_their_allocations_back() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FlakyStore { inner: RedbStore::open(dir.path()).unwrap(), failing: false.into() });
    let (r, _writer) =
        Registry::open(store.clone(), config("10.0.0.0/26", 100), CancellationToken::new()).await.unwrap();
    bootstrap::run(&r, 6443).await.unwrap();
    let pinned = |name: &str| {
        body(json!({"metadata": {"name": name}, "spec": {"clusterIP": "10.0.0.20", "ports": [{"port": 80}]}}))
    };

    store.failing.store(true, Ordering::SeqCst);
    let err = r.create(Resource::Services, "default", &pinned("a")).await.unwrap_err();
    assert_eq!(err.reason(), "InternalError");
    assert_eq!(err.to_string(), "Internal error occurred: storage commit failed: store commit failed");
    let cause = std::error::Error::source(&err).expect("the store's error is the source");
    assert_eq!(std::error::Error::source(cause).map(ToString::to_string).as_deref(), Some("disk full"));
    assert!(r.get(Resource::Services, "default", "a").is_err(), "nothing was stored");

    store.failing.store(false, Ordering::SeqCst);
    let b = r.create(Resource::Services, "default", &pinned("b")).await.unwrap();
    assert_eq!(ip_of(&b), "10.0.0.20", "the failed write's ClusterIP went back");
}

// --- faults ---

fn fault(kind: &str, name: &str, spec: Value) -> Vec<u8> {
    body(
        json!({"apiVersion": "chaos.netlab.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}),
    )
}

#[tokio::test]
async fn faults_are_stored_typed_and_their_spec_is_immutable() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), config("10.96.0.0/16", 100)).await;
    let spec =
        json!({"action": "partition", "mode": "all", "selector": {}, "device": "eth0", "remoteCluster": ""});
    let created = reg
        .create(Resource::NetworkChaos, "default", &fault("NetworkChaos", "cut", spec.clone()))
        .await
        .unwrap();
    let stored = &created.value;
    assert_eq!(stored["kind"], "NetworkChaos");
    assert_eq!(stored["apiVersion"], "chaos.netlab.io/v1alpha1");
    assert_eq!(stored["spec"]["direction"], "to");
    assert!(stored["spec"].get("device").is_none(), "fields netlab does not model are pruned: {stored}");
    assert!(netlab_chaos::Fault::from_json(Resource::NetworkChaos, &created.json).is_ok());
    // What the schema lets through but the type cannot hold is refused as undecodable.
    let huge = json!({"action": "bandwidth", "mode": "all", "bandwidth": {"rate": "1mbps", "limit": 5_000_000_000u64, "buffer": 1}});
    let err = reg
        .create(Resource::NetworkChaos, "default", &fault("NetworkChaos", "huge", huge))
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "BadRequest");
    assert!(
        err.to_string()
            .starts_with("NetworkChaos in version \"v1alpha1\" cannot be handled as a NetworkChaos: "),
        "{err}"
    );

    // Re-sending the same manifest (with its unmodelled fields) changes nothing.
    let same = reg
        .update(Resource::NetworkChaos, "default", &fault("NetworkChaos", "cut", spec), false)
        .await
        .unwrap();
    assert_eq!(same.rv, created.rv);
    let other = json!({"action": "partition", "mode": "one", "selector": {}});
    let err = reg
        .update(Resource::NetworkChaos, "default", &fault("NetworkChaos", "cut", other), false)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "The NetworkChaos \"cut\" is invalid: spec: Forbidden: Cannot update chaos spec"
    );
    let err = reg
        .update(
            Resource::NetworkChaos,
            "default",
            &fault("NetworkChaos", "cut", json!({"action": "cut"})),
            false,
        )
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "Invalid", "the schema is checked before the spec is typed: {err}");

    // A status update keeps the spec and must have the status' shape.
    let status =
        body(json!({"metadata": {"name": "cut"}, "status": {"experiment": {"desiredPhase": "Run"}}}));
    let updated = reg.update(Resource::NetworkChaos, "default", &status, true).await.unwrap();
    assert_eq!(updated.value["status"]["experiment"]["desiredPhase"], "Run");
    assert_eq!(updated.value["spec"], created.value["spec"]);
    let bad = body(json!({"metadata": {"name": "cut"}, "status": {"experiment": {"containerRecords": "x"}}}));
    let err = reg.update(Resource::NetworkChaos, "default", &bad, true).await.unwrap_err();
    assert_eq!(err.reason(), "BadRequest", "{err}");
}

#[tokio::test]
async fn a_service_cidr_fault_refuses_cluster_ips_and_counts_each_refusal() {
    let dir = tempfile::tempdir().unwrap();
    let reg = open(dir.path(), config("10.96.0.0/16", 100)).await;
    let full = fault("ExhaustionChaos", "full", json!({"action": "service-cidr"}));
    reg.create(Resource::ExhaustionChaos, "default", &full).await.unwrap();
    for name in ["a", "b"] {
        let err = reg.create(Resource::Services, "default", &svc(name)).await.unwrap_err();
        assert_eq!(err.to_string(), "Internal error occurred: failed to allocate a serviceIP: range is full");
    }
    let counted = reg.get(Resource::ExhaustionChaos, "default", "full").unwrap();
    assert_eq!(counted.value["status"]["counters"]["apiserver"]["allocationsRefused"], 2);

    // Paused (Chaos Mesh's annotation), the range is free again.
    let mut paused = counted.value.clone();
    paused["metadata"]["annotations"] = json!({"experiment.chaos-mesh.org/pause": "true"});
    reg.update(Resource::ExhaustionChaos, "default", &body(paused), false).await.unwrap();
    reg.create(Resource::Services, "default", &svc("a")).await.unwrap();

    reg.delete(Resource::ExhaustionChaos, "default", "full", None, None).await.unwrap();
    reg.create(Resource::Services, "default", &svc("b")).await.unwrap();
}
