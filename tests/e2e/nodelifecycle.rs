//! A Node whose kubelet stops posting status turns NotReady (Unknown) and is tainted, as the
//! node lifecycle controller does.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, Node};
use netlab_client::{Client, ListParams};
use netlab_e2e::{Apiserver, eventually, parts};

#[tokio::test]
async fn a_silent_node_turns_unknown_and_is_tainted_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let api = Apiserver::start(dir.path(), &[]);
    let client = Client::new(&api.url()).unwrap();
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
    let node: Node = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "node-1"},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "kubelet is posting ready status", "lastHeartbeatTime": now, "lastTransitionTime": now}]},
    }))
    .unwrap();
    client.create(&node).await.unwrap();
    let _cm = parts::controller_manager(
        &api.url(),
        &[
            "--controllers",
            "nodelifecycle",
            "--node-monitor-period",
            "100ms",
            "--node-monitor-grace-period",
            "1s",
        ],
    );
    let node = eventually("Ready=Unknown and the unreachable taint", Duration::from_secs(15), || {
        let client = client.clone();
        async move {
            let n = client.get::<Node>("", "node-1").await.ok()?;
            let ready = n.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?.clone();
            let tainted = n
                .spec
                .as_ref()?
                .taints
                .as_ref()?
                .iter()
                .any(|t| t.key == "node.kubernetes.io/unreachable" && t.effect == "NoSchedule");
            (ready.status == "Unknown" && tainted).then_some((n, ready))
        }
    })
    .await;
    assert_eq!(node.1.reason.as_deref(), Some("NodeStatusUnknown"));
    assert_eq!(node.1.message.as_deref(), Some("Kubelet stopped posting node status."));
    let params =
        ListParams { fields: "involvedObject.name=node-1,reason=NodeNotReady".into(), ..Default::default() };
    let (events, _) = client.list::<Event>(&params).await.unwrap();
    assert_eq!(events[0].message.as_deref(), Some("Node node-1 status is now: NodeNotReady"));
}
