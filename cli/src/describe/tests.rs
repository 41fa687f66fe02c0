//! Describe pages compared with kubectl's layout for the same objects.

use jiff::tz::TimeZone;
use serde_json::{Value, json};

use super::*;
use crate::{client::fake::FakeCluster, report::render};

fn clock() -> Clock {
    Clock { now: "2024-05-01T10:05:12Z".parse().unwrap(), tz: TimeZone::UTC }
}

fn meta(name: &str) -> Value {
    json!({"name": name, "namespace": "default", "uid": format!("uid-{name}"),
           "creationTimestamp": "2024-05-01T10:00:00Z"})
}

fn service() -> Value {
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "orders", "namespace": "default", "labels": {"app": "orders"},
                     "annotations": {LAST_APPLIED: "{}\n"}, "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"type": "ClusterIP", "selector": {"app": "orders"}, "ipFamilyPolicy": "SingleStack",
                 "ipFamilies": ["IPv4"], "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                 "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                 "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"}})
}

fn slice(ready: &[(&str, bool)]) -> Value {
    let endpoints: Vec<Value> =
        ready.iter().map(|(ip, r)| json!({"addresses": [ip], "conditions": {"ready": r}})).collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "orders-x1", "namespace": "default", "labels": {"kubernetes.io/service-name": "orders"}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}], "endpoints": endpoints})
}

#[test]
fn service_page() {
    let slices = [slice(&[("10.244.1.5", true), ("10.244.2.7", true), ("10.244.3.9", false)])];
    let got = core_v1::service(&service(), &slices, Some(&[]), &clock());
    let want = "\
Name:                     orders
Namespace:                default
Labels:                   app=orders
Annotations:              <none>
Selector:                 app=orders
Type:                     ClusterIP
IP Family Policy:         SingleStack
IP Families:              IPv4
IP:                       10.96.0.10
IPs:                      10.96.0.10
Port:                     http  80/TCP
TargetPort:               8080/TCP
Endpoints:                10.244.1.5:8080,10.244.2.7:8080
Session Affinity:         None
Internal Traffic Policy:  Cluster
Events:                   <none>
";
    assert_eq!(got, want);
}

#[test]
fn service_endpoints_cap_at_three_and_say_none_without_slices() {
    let many = [slice(&[
        ("10.0.0.1", true),
        ("10.0.0.2", true),
        ("10.0.0.3", true),
        ("10.0.0.4", true),
        ("10.0.0.5", true),
    ])];
    let got = core_v1::service(&service(), &many, None, &clock());
    assert!(
        got.contains("Endpoints:                10.0.0.1:8080,10.0.0.2:8080,10.0.0.3:8080 + 2 more...\n"),
        "{got}"
    );
    assert!(!got.contains("Events:"), "no event list, no section: {got}");
    let got = core_v1::service(&service(), &[], Some(&[]), &clock());
    assert!(got.contains("Endpoints:                <none>\n"), "{got}");
    let mut node_port = service();
    node_port["spec"]["type"] = json!("NodePort");
    node_port["spec"]["ports"][0]["nodePort"] = json!(30080);
    node_port["spec"]["externalTrafficPolicy"] = json!("Cluster");
    let got = core_v1::service(&node_port, &[], Some(&[]), &clock());
    assert!(got.contains("NodePort:                 http  30080/TCP\n"), "{got}");
    assert!(got.contains("External Traffic Policy:  Cluster\n"), "{got}");
}

fn event(reason: &str, type_: &str, from: &str, first: &str, last: &str, count: i32, msg: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Event", "metadata": meta(&format!("web-1.{reason}")),
           "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default"},
           "reason": reason, "type": type_, "message": msg, "count": count,
           "firstTimestamp": first, "lastTimestamp": last, "source": {"component": from}})
}

fn running_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "default", "uid": "uid-web-1", "creationTimestamp": "2024-05-01T10:00:00Z",
                     "labels": {"app": "web", "pod-template-hash": "abc"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-abc", "uid": "uid-rs", "controller": true}]},
        "spec": {"nodeName": "node-1", "serviceAccountName": "default", "priority": 0,
                 "containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
                                 "env": [{"name": "MODE", "value": "prod"}, {"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
                                 "readinessProbe": {"httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP"}},
                                 "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": true}]}],
                 "volumes": [{"name": "config", "configMap": {"name": "web-config"}}]},
        "status": {"phase": "Running", "hostIP": "172.18.0.2", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}],
                   "startTime": "2024-05-01T10:00:01Z",
                   "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"},
                                  {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "nginx:1.25",
                                          "imageID": "docker.io/library/nginx@sha256:1", "containerID": "containerd://123",
                                          "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}}}]}})
}

#[test]
fn pod_page() {
    let events = [
        event(
            "Scheduled",
            "Normal",
            "default-scheduler",
            "2024-05-01T10:00:00Z",
            "2024-05-01T10:00:00Z",
            1,
            "Successfully assigned default/web-1 to node-1",
        ),
        event(
            "Pulled",
            "Normal",
            "kubelet",
            "2024-05-01T10:00:02Z",
            "2024-05-01T10:03:12Z",
            3,
            "Container image \"nginx:1.25\" already present on machine",
        ),
    ];
    let got = pod::pod(&running_pod(), Some(&events), &clock());
    let want = "\
Name:             web-1
Namespace:        default
Priority:         0
Service Account:  default
Node:             node-1/172.18.0.2
Start Time:       Wed, 01 May 2024 10:00:01 +0000
Labels:           app=web
                  pod-template-hash=abc
Annotations:      <none>
Status:           Running
IP:               10.244.1.5
IPs:
  IP:           10.244.1.5
Controlled By:  ReplicaSet/web-abc
Containers:
  web:
    Container ID:   containerd://123
    Image:          nginx:1.25
    Image ID:       docker.io/library/nginx@sha256:1
    Port:           80/TCP
    Host Port:      0/TCP
    State:          Running
      Started:      Wed, 01 May 2024 10:00:05 +0000
    Ready:          True
    Restart Count:  0
    Readiness:      http-get http://:80/healthz delay=0s timeout=1s period=10s #success=1 #failure=3
    Environment:
      MODE:    prod
      POD_IP:  10.244.1.5 (v1:status.podIP)
    Mounts:
      /etc/web from config (ro)
Conditions:
  Type              Status
  Initialized       True 
  Ready             True 
  ContainersReady   True 
  PodScheduled      True 
Volumes:
  config:
    Type:        ConfigMap (a volume populated by a ConfigMap)
    Name:        web-config
    Optional:    false
QoS Class:       BestEffort
Node-Selectors:  <none>
Tolerations:     <none>
Events:
  Type    Reason     Age                 From               Message
  ----    ------     ----                ----               -------
  Normal  Scheduled  5m12s               default-scheduler  Successfully assigned default/web-1 to node-1
  Normal  Pulled     2m (x3 over 5m10s)  kubelet            Container image \"nginx:1.25\" already present on machine
";
    assert_eq!(got, want);
}

#[test]
fn pod_page_states() {
    let mut p = running_pod();
    p["status"]["containerStatuses"][0]["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
    p["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error",
        "startedAt": "2024-05-01T10:04:00Z", "finishedAt": "2024-05-01T10:04:10Z"}});
    p["status"]["containerStatuses"][0]["restartCount"] = json!(4);
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T10:05:00Z");
    p["metadata"]["deletionGracePeriodSeconds"] = json!(30);
    let got = pod::pod(&p, None, &clock());
    assert!(got.contains("Status:                    Terminating (lasts 12s)\n"), "{got}");
    assert!(got.contains("Termination Grace Period:  30s\n"), "{got}");
    assert!(got.contains("    State:          Waiting\n      Reason:       CrashLoopBackOff\n    Last State:     Terminated\n      Reason:       Error\n      Exit Code:    1\n"), "{got}");
    assert!(got.contains("    Restart Count:  4\n"), "{got}");
}

#[test]
fn deployment_page() {
    let template = json!({"metadata": {"labels": {"app": "orders"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 8080, "protocol": "TCP"}]}]}});
    let d = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "orders", "namespace": "default", "uid": "uid-d", "creationTimestamp": "2024-05-01T10:00:00Z",
                     "annotations": {"deployment.kubernetes.io/revision": "2"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "orders"}}, "template": template,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}},
        "status": {"replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3,
                   "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
                                  {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}});
    let mut new_template = template.clone();
    new_template["metadata"]["labels"]["pod-template-hash"] = json!("5d4f");
    let rs = |name: &str, t: &Value, replicas: i32, rev: &str| {
        typed::<ReplicaSet>(&json!({"metadata": {"name": name, "namespace": "default",
            "annotations": {"deployment.kubernetes.io/revision": rev}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "orders"}}, "template": t},
            "status": {"replicas": replicas}}))
    };
    let mut old_template = template.clone();
    old_template["spec"]["containers"][0]["image"] = json!("nginx:1.24");
    let owned = [rs("orders-old1", &old_template, 0, "1"), rs("orders-5d4f", &new_template, 3, "2")];
    let got = apps::deployment(&d, &owned, Some(&[]), &clock());
    let want = "\
Name:                   orders
Namespace:              default
CreationTimestamp:      Wed, 01 May 2024 10:00:00 +0000
Labels:                 <none>
Annotations:            deployment.kubernetes.io/revision: 2
Selector:               app=orders
Replicas:               3 desired | 3 updated | 3 total | 3 available | 0 unavailable
StrategyType:           RollingUpdate
MinReadySeconds:        0
RollingUpdateStrategy:  25% max unavailable, 25% max surge
Pod Template:
  Labels:  app=orders
  Containers:
   web:
    Image:         nginx:1.25
    Port:          8080/TCP
    Host Port:     0/TCP
    Environment:   <none>
    Mounts:        <none>
  Volumes:         <none>
  Node-Selectors:  <none>
  Tolerations:     <none>
Conditions:
  Type           Status  Reason
  ----           ------  ------
  Available      True    MinimumReplicasAvailable
  Progressing    True    NewReplicaSetAvailable
OldReplicaSets:  orders-old1 (0/0 replicas created)
NewReplicaSet:   orders-5d4f (3/3 replicas created)
Events:          <none>
";
    assert_eq!(got, want);
}

#[test]
fn daemon_set_page() {
    let d = json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "aws-node", "namespace": "kube-system", "uid": "uid-ds", "creationTimestamp": "2024-05-01T10:00:00Z",
                     "labels": {"k8s-app": "aws-node"}, "annotations": {"deprecated.daemonset.template.generation": "1"}},
        "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
                 "template": {"metadata": {"labels": {"k8s-app": "aws-node"}},
                              "spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                       "containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0",
                                                       "env": [{"name": "WARM_IP_TARGET", "value": "2"}]}]}}},
        "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 2, "numberMisscheduled": 0, "numberReady": 2,
                   "updatedNumberScheduled": 2, "numberAvailable": 1}});
    let got = apps::daemon_set(&d, (2, 0, 0, 0), Some(&[]), &clock());
    let want = "\
Name:           aws-node
Selector:       k8s-app=aws-node
Node-Selector:  kubernetes.io/os=linux
Labels:         k8s-app=aws-node
Annotations:    deprecated.daemonset.template.generation: 1
Desired Number of Nodes Scheduled: 2
Current Number of Nodes Scheduled: 2
Number of Nodes Scheduled with Up-to-date Pods: 2
Number of Nodes Scheduled with Available Pods: 1
Number of Nodes Misscheduled: 0
Pods Status:  2 Running / 0 Waiting / 0 Succeeded / 0 Failed
Pod Template:
  Labels:  k8s-app=aws-node
  Containers:
   aws-node:
    Image:      amazon-k8s-cni:v1.19.0
    Port:       <none>
    Host Port:  <none>
    Environment:
      WARM_IP_TARGET:  2
    Mounts:            <none>
  Volumes:             <none>
  Node-Selectors:      kubernetes.io/os=linux
  Tolerations:         <none>
Events:                <none>
";
    assert_eq!(got, want);
}

#[test]
fn node_page_lists_pods_and_allocations() {
    let node = json!({"apiVersion": "v1", "kind": "Node",
        "metadata": {"name": "node-1", "creationTimestamp": "2024-05-01T10:00:00Z", "labels": {"kubernetes.io/hostname": "node-1"}},
        "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"],
                 "taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}]},
        "status": {"capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                   "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status",
                                   "lastHeartbeatTime": "2024-05-01T10:05:00Z", "lastTransitionTime": "2024-05-01T10:00:10Z"}],
                   "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": "node-1"}],
                   "nodeInfo": {"kubeletVersion": "v1.33.0", "osImage": "netlab", "kernelVersion": "6.8.0",
                                "containerRuntimeVersion": "netlab://0.1.0", "architecture": "amd64", "operatingSystem": "linux",
                                "bootID": "b", "kubeProxyVersion": "", "machineID": "m", "systemUUID": "s"}}});
    let mut p = running_pod();
    p["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}});
    let got = core_v1::node(&node, &[p], Some(&[]), &clock());
    assert!(got.starts_with("Name:               node-1\nRoles:              <none>\n"), "{got}");
    assert!(
        got.contains(
            "Taints:             node.kubernetes.io/not-ready:NoSchedule\nUnschedulable:      false\n"
        ),
        "{got}"
    );
    assert!(got.contains("  Ready   True    Wed, 01 May 2024 10:05:00 +0000   Wed, 01 May 2024 10:00:10 +0000   KubeletReady   kubelet is posting ready status\n"), "{got}");
    assert!(got.contains("Addresses:\n  InternalIP:  172.18.0.2\n  Hostname:    node-1\n"), "{got}");
    assert!(
        got.contains(
            "PodCIDRs:                     10.244.1.0/24\nNon-terminated Pods:          (1 in total)\n"
        ),
        "{got}"
    );
    // The pods table shares its first column with PodCIDR and friends, as in kubectl.
    assert!(got.contains("  Namespace                   Name     CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age\n"), "{got}");
    assert!(got.contains("  default                     web-1    500m (25%)    0 (0%)      256Mi (6%)       512Mi (12%)    5m12s\n"), "{got}");
    assert!(
        got.contains(
            "  cpu                500m (25%)  0 (0%)\n  memory             256Mi (6%)  512Mi (12%)\n"
        ),
        "{got}"
    );
}

#[test]
fn other_pages() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("web-config"), "data": {"b": "2", "a": "one\ntwo"}});
    assert_eq!(
        core_v1::config_map(&cm, Some(&[]), &clock()),
        "Name:         web-config\nNamespace:    default\nLabels:       <none>\nAnnotations:  <none>\n\nData\n====\na:\n----\none\ntwo\n\nb:\n----\n2\n\n\nBinaryData\n====\n\nEvents:  <none>\n"
    );
    let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}, "status": {"phase": "Active"}});
    assert_eq!(
        core_v1::namespace(&ns, &clock()),
        "Name:         demo\nLabels:       <none>\nAnnotations:  <none>\nStatus:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n"
    );
    let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta("default")});
    assert_eq!(
        core_v1::service_account(&sa, Some(&[]), &clock()),
        "Name:                default\nNamespace:           default\nLabels:              <none>\nAnnotations:         <none>\nImage pull secrets:  <none>\nMountable secrets:   <none>\nTokens:              <none>\nEvents:              <none>\n"
    );
    let np = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("allow-web"),
        "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "policyTypes": ["Ingress"],
                 "ingress": [{"from": [{"podSelector": {"matchLabels": {"role": "frontend"}}}],
                              "ports": [{"port": 80, "protocol": "TCP"}]}]}});
    assert_eq!(
        network::network_policy(&np, &clock()),
        "\
Name:         allow-web
Namespace:    default
Created on:   2024-05-01 10:00:00 +0000 UTC
Labels:       <none>
Annotations:  <none>
Spec:
  PodSelector:     app=web
  Allowing ingress traffic:
    To Port: 80/TCP
    From:
      PodSelector: role=frontend
  Not affecting egress traffic
  Policy Types: Ingress
"
    );
    let eps = slice(&[("10.244.1.5", true)]);
    let got = network::endpoint_slice(&eps, None, &clock());
    assert!(got.contains("AddressType:  IPv4\nPorts:\n  Name  Port  Protocol\n  ----  ----  --------\n  http  8080  TCP\nEndpoints:\n  - Addresses:  10.244.1.5\n    Conditions:\n      Ready:   true\n    Hostname:  <unset>\n"), "{got}");
}

#[test]
fn generic_page_for_events() {
    let e = event("Pulled", "Normal", "kubelet", "2024-05-01T10:00:02Z", "2024-05-01T10:03:12Z", 3, "pulled");
    let got = core_v1::generic(&e, Some(&[]), &clock());
    assert!(got.starts_with("Name:             web-1.Pulled\nNamespace:        default\nLabels:           <none>\nAnnotations:      <none>\nAPI Version:      v1\nCount:            3\n"), "{got}");
    assert!(got.contains("Involved Object:\n  Kind:          Pod\n  Name:          web-1\n  Namespace:     default\nKind:            Event\n"), "{got}");
    assert!(got.contains("Metadata:\n  Creation Timestamp:  2024-05-01T10:00:00Z\n"), "{got}");
}

fn args(a: &[&str]) -> DescribeArgs {
    DescribeArgs { args: a.iter().map(|s| s.to_string()).collect(), selector: None, all_namespaces: false }
}

#[tokio::test]
async fn describe_fetches_related_objects_and_matches_prefixes() {
    let mut api = FakeCluster::default();
    api.seed(Resource::Services, service());
    api.seed(Resource::EndpointSlices, slice(&[("10.244.1.5", true)]));
    let mut other = service();
    other["metadata"]["name"] = json!("orders-admin");
    api.seed(Resource::Services, other);
    let mut ev = event(
        "Synced",
        "Normal",
        "endpointslice-controller",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z",
        1,
        "ok",
    );
    ev["involvedObject"] = json!({"kind": "Service", "name": "orders", "namespace": "default"});
    api.seed(Resource::Events, ev);
    // Same name, other kind: not this Service's event.
    let mut foreign = event(
        "Scaled",
        "Normal",
        "deployment-controller",
        "2024-05-01T10:00:00Z",
        "2024-05-01T10:00:00Z",
        1,
        "no",
    );
    foreign["metadata"]["name"] = json!("orders.deploy");
    foreign["involvedObject"] = json!({"kind": "Deployment", "name": "orders", "namespace": "default"});
    api.seed(Resource::Events, foreign);

    let ns = Namespace { name: "default".into(), explicit: false };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let problems = describe(&mut api, &args(&["svc", "orders"]), &ns, &mut out, &mut err, &clock()).await;
    let out = String::from_utf8(out).unwrap();
    assert!(problems.is_empty());
    assert!(out.contains("Endpoints:                10.244.1.5:8080\n"), "{out}");
    assert!(out.contains("  Normal  Synced  5m12s  endpointslice-controller  ok\n"), "{out}");
    assert!(!out.contains("Scaled"), "{out}");
    assert!(!out.contains("orders-admin"), "exact name wins: {out}");

    // A prefix describes every match, separated by a blank line.
    let mut out = Vec::new();
    let problems = describe(&mut api, &args(&["service/orders-"]), &ns, &mut out, &mut err, &clock()).await;
    assert!(problems.is_empty());
    assert!(String::from_utf8(out).unwrap().starts_with("Name:                     orders-admin\n"));

    let mut out = Vec::new();
    let problems = describe(&mut api, &args(&["svc", "nope"]), &ns, &mut out, &mut err, &clock()).await;
    assert_eq!(render(&problems), "Error from server (NotFound): services \"nope\" not found");

    let problems = describe(&mut api, &args(&["pods"]), &ns, &mut out, &mut err, &clock()).await;
    assert!(problems.is_empty());
    assert_eq!(String::from_utf8(err).unwrap(), "No resources found in default namespace.\n");
}

#[tokio::test]
async fn faults_get_kubectls_custom_resource_page() {
    let mut api = FakeCluster::default();
    api.seed(
        Resource::NetworkChaos,
        json!({"apiVersion": "chaos.netlab.io/v1alpha1", "kind": "NetworkChaos", "metadata": meta("lossy"),
               "spec": {"action": "loss", "mode": "all", "duration": "1h", "loss": {"loss": "10"},
                        "selector": {"namespaces": ["default"], "labelSelectors": {"app": "client"}}},
               "status": {"experiment": {"desiredPhase": "Run", "containerRecords": [
                              {"id": "default/client-1", "selectorKey": ".", "phase": "Injected",
                               "injectedCount": 1, "recoveredCount": 0}]},
                          "counters": {"node/node-1": {"packetsDropped": 7}}}}),
    );
    let mut ev = event(
        "Applied",
        "Normal",
        "chaos-controller",
        "2024-05-01T10:00:01Z",
        "2024-05-01T10:00:01Z",
        1,
        "Successfully apply chaos for default/client-1",
    );
    ev["involvedObject"] = json!({"kind": "NetworkChaos", "name": "lossy", "namespace": "default"});
    api.seed(Resource::Events, ev);

    let ns = Namespace { name: "default".into(), explicit: false };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let problems =
        describe(&mut api, &args(&["networkchaos", "lossy"]), &ns, &mut out, &mut err, &clock()).await;
    assert!(problems.is_empty());
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\
Name:         lossy
Namespace:    default
Labels:       <none>
Annotations:  <none>
API Version:  chaos.netlab.io/v1alpha1
Kind:         NetworkChaos
Metadata:
  Creation Timestamp:  2024-05-01T10:00:00Z
  Resource Version:    1
  UID:                 uid-lossy
Spec:
  Action:    loss
  Duration:  1h
  Loss:
    Loss:  10
  Mode:    all
  Selector:
    Label Selectors:
      App:  client
    Namespaces:
      default
Status:
  Counters:
    node/node-1:
      Packets Dropped:  7
  Experiment:
    Container Records:
      Id:               default/client-1
      Injected Count:   1
      Phase:            Injected
      Recovered Count:  0
      Selector Key:     .
    Desired Phase:      Run
Events:
  Type    Reason   Age    From              Message
  ----    ------   ----   ----              -------
  Normal  Applied  5m11s  chaos-controller  Successfully apply chaos for default/client-1
"
    );
}
