//! Column definitions and cells compared with upstream's printers (the rendered tables are
//! checked against kubectl's output in the CLI's tests and in the kubectl e2e).

use jiff::{SignedDuration, Timestamp};
use netlab_proto::apiserver::v1::Resource;
use serde_json::json;

use super::*;

/// Every object is created at 10:00:00; "now" is 10:05:12, so AGE is `5m12s`.
fn now() -> Timestamp {
    "2024-05-01T10:05:12Z".parse().unwrap()
}

#[test]
fn human_durations_match_kubectl() {
    let cases = [
        (-5, "<invalid>"),
        (-1, "0s"),
        (0, "0s"),
        (45, "45s"),
        (119, "119s"),
        (120, "2m"),
        (312, "5m12s"),
        (540, "9m"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 30 * 60, "3h30m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (50 * 3600, "2d2h"),
        (8 * 24 * 3600, "8d"),
        (400 * 24 * 3600, "400d"),
        (2 * 365 * 24 * 3600, "2y"),
        ((3 * 365 + 10) * 24 * 3600, "3y10d"),
        (9 * 365 * 24 * 3600, "9y"),
    ];
    for (secs, want) in cases {
        assert_eq!(human_duration(SignedDuration::from_secs(secs)), want, "{secs}s");
    }
    assert_eq!(since(None, now()), "<unknown>");
}

#[test]
fn every_row_has_one_cell_per_column() {
    let obj = json!({"metadata": {"name": "x", "namespace": "default", "creationTimestamp": "2024-05-01T10:00:00Z"}});
    for r in netlab_proto::ALL_RESOURCES {
        let cells = row(r, &obj, Generate::default(), now());
        assert_eq!(cells.len(), columns(r).len(), "{r:?}");
        let name_col = columns(r).iter().position(|c| c.format == "name").expect("a name column");
        assert_eq!(cells[name_col], "x", "{r:?}");
    }
}

#[test]
fn pod_columns_are_upstreams() {
    let names: Vec<_> = columns(Resource::Pods).iter().map(|c| (c.name, c.priority)).collect();
    assert_eq!(
        names,
        [
            ("Name", 0),
            ("Ready", 0),
            ("Status", 0),
            ("Restarts", 0),
            ("Age", 0),
            ("IP", 1),
            ("Node", 1),
            ("Nominated Node", 1),
            ("Readiness Gates", 1)
        ]
    );
    let visible: Vec<_> = visible_columns(Resource::Events, false).map(|(_, c)| c.name).collect();
    assert_eq!(visible, ["Last Seen", "Type", "Reason", "Object", "Message"]);
}

#[test]
fn pod_cells() {
    let pod = json!({
        "metadata": {"name": "web-1", "creationTimestamp": "2024-05-01T10:00:00Z"},
        "spec": {"containers": [{"name": "web", "image": "nginx"}], "nodeName": "node-1"},
        "status": {"phase": "Pending", "podIP": "10.244.1.5",
                   "containerStatuses": [{"name": "web", "image": "nginx", "imageID": "", "ready": false,
                                          "restartCount": 0,
                                          "state": {"waiting": {"reason": "ContainerCreating"}}}]}
    });
    let cells = row(Resource::Pods, &pod, Generate::default(), now());
    let want =
        ["web-1", "0/1", "ContainerCreating", "0", "5m12s", "10.244.1.5", "node-1", "<none>", "<none>"];
    assert_eq!(cells.iter().map(ToString::to_string).collect::<Vec<_>>(), want);
}

#[test]
fn integer_cells_serialize_as_numbers() {
    let rs = json!({"metadata": {"name": "web-5d8f", "creationTimestamp": "2024-05-01T10:00:00Z"},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                             "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}},
                    "status": {"replicas": 3, "readyReplicas": 2}});
    let cells = row(Resource::ReplicaSets, &rs, Generate::default(), now());
    assert_eq!(
        serde_json::to_value(&cells).unwrap(),
        json!(["web-5d8f", 3, 3, 2, "5m12s", "web", "nginx:1.27", "app=web"])
    );
    assert_eq!(columns(Resource::ReplicaSets)[1].type_, "integer");
}

#[test]
fn daemon_set_columns_and_cells() {
    let names: Vec<_> = columns(Resource::DaemonSets).iter().map(|c| (c.name, c.type_, c.priority)).collect();
    assert_eq!(
        names,
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Node Selector", "string", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
            ("Selector", "string", 1)
        ]
    );
    let ds = json!({"metadata": {"name": "aws-node", "creationTimestamp": "2024-05-01T10:00:00Z"},
                    "spec": {"selector": {"matchLabels": {"k8s-app": "aws-node"}},
                             "template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"},
                                                   "containers": [{"name": "aws-node", "image": "amazon-k8s-cni:v1.19.0"},
                                                                  {"name": "aws-eks-nodeagent", "image": "aws-network-policy-agent:v1.1.5"}]}}},
                    "status": {"currentNumberScheduled": 2, "desiredNumberScheduled": 3, "numberMisscheduled": 0,
                               "numberReady": 1, "updatedNumberScheduled": 2}});
    let cells = row(Resource::DaemonSets, &ds, Generate::default(), now());
    assert_eq!(
        serde_json::to_value(&cells).unwrap(),
        json!([
            "aws-node",
            3,
            2,
            1,
            2,
            0,
            "kubernetes.io/os=linux",
            "5m12s",
            "aws-node,aws-eks-nodeagent",
            "amazon-k8s-cni:v1.19.0,aws-network-policy-agent:v1.1.5",
            "k8s-app=aws-node"
        ])
    );
    let bare = json!({"metadata": {"name": "kube-proxy", "creationTimestamp": "2024-05-01T10:00:00Z"}});
    assert_eq!(row(Resource::DaemonSets, &bare, Generate::default(), now())[6], "<none>");
}

#[test]
fn load_balancer_ingress_is_clipped_unless_wide() {
    let svc = json!({"metadata": {"name": "lb", "creationTimestamp": "2024-05-01T10:00:00Z"},
                     "spec": {"type": "LoadBalancer", "clusterIP": "10.96.0.20",
                              "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]},
                     "status": {"loadBalancer": {"ingress": [{"hostname": "a1b2c3d4e5f6.elb.amazonaws.com"}]}}});
    let narrow = row(Resource::Services, &svc, Generate { wide: false }, now());
    let wide = row(Resource::Services, &svc, Generate { wide: true }, now());
    assert_eq!(narrow[3], "a1b2c3d4e5f6....");
    assert_eq!(wide[3], "a1b2c3d4e5f6.elb.amazonaws.com");
    assert_eq!(wide[4], "80:30080/TCP");
}
