//! Table output compared with what kubectl prints for the same objects.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::*;

/// Every object is created at 10:00:00; "now" is 10:05:12, so AGE is `5m12s`.
fn now() -> Timestamp {
    "2024-05-01T10:05:12Z".parse().unwrap()
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z"})
}

fn render(r: Resource, items: &[Value], opts: Options) -> String {
    table(r, items, &opts, now())
}

fn pod(name: &str, phase: &str, containers: Value, extra: Value) -> Value {
    let mut p = json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": meta(name),
        "spec": {"containers": [{"name": "web", "image": "nginx"}], "nodeName": "node-1"},
        "status": {"phase": phase, "containerStatuses": containers, "podIP": "10.244.1.5",
                   "podIPs": [{"ip": "10.244.1.5"}]}
    });
    if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            match (p.get_mut(k), v) {
                (Some(Value::Object(into)), Value::Object(from)) => {
                    into.extend(from.clone());
                }
                _ => {
                    p.insert(k.clone(), v.clone());
                }
            }
        }
    }
    p
}

fn sample_pods() -> Vec<Value> {
    let running = json!([{"name": "web", "ready": true, "restartCount": 0, "image": "nginx", "imageID": "",
                          "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}}}]);
    let creating = json!([{"name": "web", "ready": false, "restartCount": 0, "image": "nginx", "imageID": "",
                           "state": {"waiting": {"reason": "ContainerCreating"}}}]);
    let crashing = json!([{"name": "web", "ready": false, "restartCount": 4, "image": "nginx", "imageID": "",
                           "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
                           "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                                        "finishedAt": "2024-05-01T10:04:12Z"}}}]);
    let completed = json!([{"name": "web", "ready": false, "restartCount": 0, "image": "nginx", "imageID": "",
                            "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]);
    vec![
        pod("web-1", "Running", running.clone(), json!({})),
        pod("web-2", "Pending", creating, json!({})),
        pod("web-3", "Running", crashing, json!({})),
        pod("web-4", "Running", running, json!({"metadata": {"deletionTimestamp": "2024-05-01T10:05:00Z"}})),
        pod(
            "web-5",
            "Pending",
            json!([{"name": "web", "ready": false, "restartCount": 0, "image": "nginx", "imageID": "",
                    "state": {"waiting": {"reason": "PodInitializing"}}}]),
            json!({"spec": {"initContainers": [{"name": "init", "image": "busybox"}]},
                   "status": {"initContainerStatuses": [{"name": "init", "ready": false, "restartCount": 0,
                              "image": "busybox", "imageID": "", "state": {"waiting": {"reason": "PodInitializing"}}}]}}),
        ),
        pod("job-1", "Succeeded", completed, json!({})),
    ]
}

#[test]
fn pods() {
    let want = "\
NAME    READY   STATUS              RESTARTS      AGE
web-1   1/1     Running             0             5m12s
web-2   0/1     ContainerCreating   0             5m12s
web-3   0/1     CrashLoopBackOff    4 (60s ago)   5m12s
web-4   1/1     Terminating         0             5m12s
web-5   0/1     Init:0/1            0             5m12s
job-1   0/1     Completed           0             5m12s
";
    assert_eq!(render(Resource::Pods, &sample_pods(), Options::default()), want);
}

#[test]
fn pod_status_reasons() {
    let status = |containers: Value, phase: &str| {
        let p = pod("p", phase, containers, json!({}));
        row(Resource::Pods, &p, false, now())[2].clone()
    };
    let waiting = |reason: &str| json!([{"name": "web", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}}]);
    assert_eq!(status(waiting("ErrImagePull"), "Pending"), "ErrImagePull");
    assert_eq!(status(waiting("ImagePullBackOff"), "Pending"), "ImagePullBackOff");
    // No container status yet: the phase.
    assert_eq!(status(json!([]), "Pending"), "Pending");
    let oom = json!([{"name": "web", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]);
    assert_eq!(status(oom, "Running"), "OOMKilled");
    let code =
        json!([{"name": "web", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 2}}}]);
    assert_eq!(status(code, "Failed"), "ExitCode:2");
    let p = pod("p", "Failed", json!([]), json!({"status": {"reason": "Evicted"}}));
    assert_eq!(row(Resource::Pods, &p, false, now())[2], "Evicted");
}

#[test]
fn pods_wide_and_all_namespaces() {
    let want = "\
NAMESPACE   NAME    READY   STATUS    RESTARTS   AGE     IP           NODE     NOMINATED NODE   READINESS GATES
default     web-1   1/1     Running   0          5m12s   10.244.1.5   node-1   <none>           <none>
";
    let opts = Options { wide: true, all_namespaces: true, ..Default::default() };
    assert_eq!(render(Resource::Pods, &sample_pods()[..1], opts), want);
}

fn services() -> Vec<Value> {
    let svc = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(name), "spec": spec});
    vec![
        svc(
            "orders",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                             "selector": {"app": "orders"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 8080}]}),
        ),
        svc(
            "web",
            json!({"type": "NodePort", "clusterIP": "10.96.0.11", "clusterIPs": ["10.96.0.11"],
                          "selector": {"app": "web", "tier": "front"},
                          "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}),
        ),
        svc(
            "dns",
            json!({"type": "ClusterIP", "clusterIP": "10.96.0.12", "clusterIPs": ["10.96.0.12"],
                          "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
                                    {"name": "metrics", "port": 9153, "protocol": "TCP"}]}),
        ),
        svc("ext", json!({"type": "ExternalName", "externalName": "db.example.com"})),
        svc(
            "lb",
            json!({"type": "LoadBalancer", "clusterIP": "10.96.0.13", "clusterIPs": ["10.96.0.13"],
                         "ports": [{"port": 443, "protocol": "TCP", "nodePort": 31443}]}),
        ),
    ]
}

#[test]
fn services_table() {
    let want = "\
NAME     TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)                  AGE
orders   ClusterIP      10.96.0.10   <none>           80/TCP                   5m12s
web      NodePort       10.96.0.11   <none>           80:30080/TCP             5m12s
dns      ClusterIP      10.96.0.12   <none>           53/UDP,53/TCP,9153/TCP   5m12s
ext      ExternalName   <none>       db.example.com   <none>                   5m12s
lb       LoadBalancer   10.96.0.13   <pending>        443:31443/TCP            5m12s
";
    assert_eq!(render(Resource::Services, &services(), Options::default()), want);
}

#[test]
fn services_wide_and_labels() {
    let mut svc = services()[..2].to_vec();
    svc[0]["metadata"]["labels"] = json!({"app": "orders", "team": "shop"});
    let want = "\
NAME     TYPE        CLUSTER-IP   EXTERNAL-IP   PORT(S)        AGE     SELECTOR             LABELS
orders   ClusterIP   10.96.0.10   <none>        80/TCP         5m12s   app=orders           app=orders,team=shop
web      NodePort    10.96.0.11   <none>        80:30080/TCP   5m12s   app=web,tier=front   <none>
";
    let opts = Options { wide: true, show_labels: true, ..Default::default() };
    assert_eq!(render(Resource::Services, &svc, opts), want);
    let no_headers = Options { no_headers: true, ..Default::default() };
    assert_eq!(
        render(Resource::Services, &svc[..1], no_headers),
        "orders   ClusterIP   10.96.0.10   <none>   80/TCP   5m12s\n"
    );
}

#[test]
fn workloads() {
    let template = json!({"metadata": {"labels": {"app": "orders"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.25"}, {"name": "sidecar", "image": "envoy:1.30"}]}});
    let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("orders"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "orders"}}, "template": template},
        "status": {"replicas": 3, "updatedReplicas": 3, "readyReplicas": 2, "availableReplicas": 2}});
    assert_eq!(
        render(Resource::Deployments, std::slice::from_ref(&deploy), Options::default()),
        "NAME     READY   UP-TO-DATE   AVAILABLE   AGE\norders   2/3     3            2           5m12s\n"
    );
    assert_eq!(
        render(Resource::Deployments, &[deploy], Options { wide: true, ..Default::default() }),
        "\
NAME     READY   UP-TO-DATE   AVAILABLE   AGE     CONTAINERS    IMAGES                  SELECTOR
orders   2/3     3            2           5m12s   web,sidecar   nginx:1.25,envoy:1.30   app=orders
"
    );
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("orders-7d9f8b7c5f"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "orders", "pod-template-hash": "7d9f8b7c5f"}}, "template": template},
        "status": {"replicas": 3, "readyReplicas": 2}});
    assert_eq!(
        render(Resource::ReplicaSets, std::slice::from_ref(&rs), Options::default()),
        "NAME                DESIRED   CURRENT   READY   AGE\norders-7d9f8b7c5f   3         3         2       5m12s\n"
    );
    assert!(
        render(Resource::ReplicaSets, &[rs], Options { wide: true, ..Default::default() })
            .contains("app=orders,pod-template-hash=7d9f8b7c5f")
    );
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("db"),
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}}, "serviceName": "db", "template": template},
        "status": {"replicas": 1, "readyReplicas": 1}});
    assert_eq!(
        render(Resource::StatefulSets, &[sts], Options::default()),
        "NAME   READY   AGE\ndb     1/3     5m12s\n"
    );
}

#[test]
fn endpoint_slices() {
    let slice = |name: &str, ports: Value, endpoints: Value| {
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta(name),
               "addressType": "IPv4", "ports": ports, "endpoints": endpoints})
    };
    let ep = |ip: &str| json!({"addresses": [ip], "conditions": {"ready": true}});
    let items = vec![
        slice(
            "orders-abc12",
            json!([{"port": 8080, "protocol": "TCP"}]),
            json!([ep("10.244.1.5"), ep("10.244.2.7")]),
        ),
        slice(
            "many-xyz",
            json!([{"port": 80}, {"port": 443}, {"name": "admin", "port": 8080}, {"port": 9090}]),
            json!([ep("10.0.0.1"), ep("10.0.0.2"), ep("10.0.0.3"), ep("10.0.0.4"), ep("10.0.0.5")]),
        ),
        slice("empty-q", json!([]), json!([])),
    ];
    let want = "\
NAME           ADDRESSTYPE   PORTS                     ENDPOINTS                                AGE
orders-abc12   IPv4          8080                      10.244.1.5,10.244.2.7                    5m12s
many-xyz       IPv4          80,443,8080 + 1 more...   10.0.0.1,10.0.0.2,10.0.0.3 + 2 more...   5m12s
empty-q        IPv4          <unset>                   <unset>                                  5m12s
";
    assert_eq!(render(Resource::EndpointSlices, &items, Options::default()), want);
}

#[test]
fn cluster_and_config_kinds() {
    let np = |name: &str, sel: Value| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta(name),
               "spec": {"podSelector": sel, "policyTypes": ["Ingress"]}})
    };
    assert_eq!(
        render(
            Resource::NetworkPolicies,
            &[np("deny-all", json!({})), np("allow-web", json!({"matchLabels": {"app": "web"}}))],
            Options::default()
        ),
        "NAME        POD-SELECTOR   AGE\ndeny-all    <none>         5m12s\nallow-web   app=web        5m12s\n"
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default", "creationTimestamp": "2024-05-01T10:00:00Z"},
                    "status": {"phase": "Active"}});
    assert_eq!(
        render(Resource::Namespaces, &[ns], Options { all_namespaces: true, ..Default::default() }),
        "NAME      STATUS   AGE\ndefault   Active   5m12s\n"
    );
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("kube-root-ca.crt"), "data": {"ca.crt": "x"}});
    assert_eq!(
        render(Resource::ConfigMaps, &[cm], Options::default()),
        "NAME               DATA   AGE\nkube-root-ca.crt   1      5m12s\n"
    );
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default")});
    assert_eq!(
        render(Resource::ServiceAccounts, &[sa], Options::default()),
        "NAME      SECRETS   AGE\ndefault   0         5m12s\n"
    );
}

#[test]
fn nodes() {
    let node = |name: &str, ready: &str, extra: Value| {
        let mut n = json!({"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": ready}],
                       "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": name}],
                       "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "netlab", "kernelVersion": "6.8.0",
                                    "containerRuntimeVersion": "netlab://0.1.0", "architecture": "amd64",
                                    "bootID": "", "kubeProxyVersion": "", "machineID": "", "operatingSystem": "linux", "systemUUID": ""}}});
        if let Some(spec) = extra.get("spec") {
            n["spec"] = spec.clone();
        }
        if let Some(labels) = extra.get("labels") {
            n["metadata"]["labels"] = labels.clone();
        }
        n
    };
    let items = vec![
        node("node-1", "True", json!({"labels": {"node-role.kubernetes.io/control-plane": ""}})),
        node("node-2", "False", json!({"spec": {"unschedulable": true}})),
    ];
    assert_eq!(
        render(Resource::Nodes, &items, Options::default()),
        "\
NAME     STATUS                        ROLES           AGE     VERSION
node-1   Ready                         control-plane   5m12s   v1.33.0
node-2   NotReady,SchedulingDisabled   <none>          5m12s   v1.33.0
"
    );
    assert_eq!(
        render(Resource::Nodes, &items[..1], Options { wide: true, ..Default::default() }),
        "\
NAME     STATUS   ROLES           AGE     VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE   KERNEL-VERSION   CONTAINER-RUNTIME
node-1   Ready    control-plane   5m12s   v1.33.0   172.18.0.2    <none>        netlab     6.8.0            netlab://0.1.0
"
    );
}

#[test]
fn events() {
    let ev =
        |name: &str, type_: &str, reason: &str, kind: &str, obj: &str, last: &str, count: i32, msg: &str| {
            json!({"apiVersion": "v1", "kind": "Event", "metadata": meta(name),
               "involvedObject": {"kind": kind, "name": obj, "namespace": "default"},
               "type": type_, "reason": reason, "message": msg, "count": count,
               "firstTimestamp": "2024-05-01T10:00:00Z", "lastTimestamp": last,
               "source": {"component": "kubelet", "host": "node-1"}})
        };
    let items = vec![
        ev(
            "web-1.1",
            "Normal",
            "Scheduled",
            "Pod",
            "web-1",
            "2024-05-01T10:04:12Z",
            1,
            "Successfully assigned default/web-1 to node-1",
        ),
        ev(
            "web-3.2",
            "Warning",
            "BackOff",
            "Pod",
            "web-3",
            "2024-05-01T10:03:12Z",
            7,
            "Back-off restarting failed container web in pod web-3_default(uid)\n",
        ),
    ];
    assert_eq!(
        render(Resource::Events, &items, Options::default()),
        "\
LAST SEEN   TYPE      REASON      OBJECT      MESSAGE
60s         Normal    Scheduled   pod/web-1   Successfully assigned default/web-1 to node-1
2m          Warning   BackOff     pod/web-3   Back-off restarting failed container web in pod web-3_default(uid)
"
    );
    // Listed with other kinds, only a NAME column gets the kind prefix.
    let prefixed = render(Resource::Events, &items[..1], Options { kind_prefix: true, ..Default::default() });
    assert!(
        prefixed.ends_with(
            "60s         Normal   Scheduled   pod/web-1   Successfully assigned default/web-1 to node-1\n"
        ),
        "{prefixed}"
    );
    let wide = render(Resource::Events, &items[1..], Options { wide: true, ..Default::default() });
    assert_eq!(
        wide,
        "\
LAST SEEN   TYPE      REASON    OBJECT      SUBOBJECT   SOURCE            MESSAGE                                                              FIRST SEEN   COUNT   NAME
2m          Warning   BackOff   pod/web-3               kubelet, node-1   Back-off restarting failed container web in pod web-3_default(uid)   5m12s        7       web-3.2
"
    );
}

#[test]
fn name_output() {
    let items = vec![json!({"metadata": {"name": "orders"}}), json!({"metadata": {"name": "web"}})];
    assert_eq!(names(Resource::Deployments, &items), "deployment.apps/orders\ndeployment.apps/web\n");
    assert_eq!(names(Resource::Services, &items[..1]), "service/orders\n");
    assert_eq!(names(Resource::EndpointSlices, &items[..1]), "endpointslice.discovery.k8s.io/orders\n");
}

#[test]
fn faults_print_their_crds_printer_columns() {
    let net = json!({"metadata": meta("net-client-orders-x7k2p"),
                     "spec": {"action": "netem", "mode": "all", "selector": {}, "duration": "60s"}});
    let forever =
        json!({"metadata": meta("loss"), "spec": {"action": "loss", "mode": "all", "selector": {}}});
    assert_eq!(
        render(Resource::NetworkChaos, &[net, forever], Options::default()),
        "NAME                      ACTION   DURATION   AGE\n\
         net-client-orders-x7k2p   netem    60s        5m12s\n\
         loss                      loss                5m12s\n"
    );
    let pod =
        json!({"metadata": meta("kill"), "spec": {"action": "pod-kill", "mode": "one", "selector": {}}});
    assert_eq!(render(Resource::PodChaos, &[pod], Options::default()), "NAME   AGE\nkill   5m12s\n");
    let stop = json!({"metadata": meta("stop-dns"), "spec": {"action": "stop", "component": "dns"}});
    assert_eq!(
        render(Resource::ComponentChaos, &[stop], Options { all_namespaces: true, ..Default::default() }),
        "NAMESPACE   NAME       ACTION   COMPONENT   DURATION   AGE\n\
         default     stop-dns   stop     dns                    5m12s\n"
    );
    let dns = json!({"metadata": meta("d"), "spec": {"action": "error", "duration": "1m"}});
    assert_eq!(
        render(Resource::DnsChaos, &[dns], Options { kind_prefix: true, ..Default::default() }),
        "NAME                         ACTION   DURATION   AGE\ndnschaos.chaos.netlab.io/d   error    1m         5m12s\n"
    );
}
