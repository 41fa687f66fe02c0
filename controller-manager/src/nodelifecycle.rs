//! The node lifecycle controller: a Node whose kubelet stops posting status turns NotReady.
//!
//! As upstream (pkg/controller/nodelifecycle): every `--node-monitor-period` it compares each
//! Node's last heartbeat (the Ready condition's `lastHeartbeatTime`) with now; past
//! `--node-monitor-grace-period` (50 s since v1.32) it sets every node condition to `Unknown`
//! with reason `NodeStatusUnknown` and message "Kubelet stopped posting node status.", records
//! `NodeNotReady`, and taints the Node `node.kubernetes.io/unreachable:NoSchedule` so nothing new
//! lands there. A Node whose kubelet reports Ready=False gets `node.kubernetes.io/not-ready`. The
//! taints go when the Node is Ready again. (Upstream also adds NoExecute taints that evict pods
//! after their 300 s toleration; the lab does not evict.)

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{Node, NodeCondition, Taint},
    apimachinery::pkg::apis::meta::v1::Time,
};
use netlab_client::{
    ListParams,
    recorder::{EventType, Recorder},
    reflector::Cache,
};

use crate::{Context, Result};

/// The taint for a Node whose kubelet stopped posting status.
pub const UNREACHABLE: &str = "node.kubernetes.io/unreachable";
/// The taint for a Node whose kubelet reports Ready=False.
pub const NOT_READY: &str = "node.kubernetes.io/not-ready";

/// What the controller should do with one Node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy and untainted, or already handled.
    Nothing,
    /// Heartbeats stopped: mark conditions Unknown (and taint).
    MarkUnknown,
    /// The taints should be exactly these (NoSchedule) lifecycle taints.
    SetTaints(Vec<&'static str>),
}

fn ready_condition(node: &Node) -> Option<&NodeCondition> {
    node.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")
}

fn lifecycle_taints(node: &Node) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_ref())
        .map(|t| {
            t.iter()
                .filter_map(|t| match t.key.as_str() {
                    UNREACHABLE if t.effect == "NoSchedule" => Some(UNREACHABLE),
                    NOT_READY if t.effect == "NoSchedule" => Some(NOT_READY),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

/// Decides for one Node at `now` (pure, for tests).
pub fn judge(node: &Node, now: Timestamp, grace: Duration) -> Verdict {
    let ready = ready_condition(node);
    let last = ready
        .and_then(|c| c.last_heartbeat_time.as_ref().map(|t| t.0))
        .or_else(|| node.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let status = ready.map(|c| c.status.as_str()).unwrap_or("Unknown");
    let silent = last.is_some_and(|t| now.duration_since(t).unsigned_abs() > grace && now > t);
    if silent && status != "Unknown" {
        return Verdict::MarkUnknown;
    }
    let want: Vec<&'static str> = match status {
        "True" => vec![],
        "False" => vec![NOT_READY],
        _ => vec![UNREACHABLE],
    };
    // A Node that never reported (no Ready condition) is still starting: leave it untainted.
    if ready.is_none() {
        return Verdict::Nothing;
    }
    if lifecycle_taints(node) != want { Verdict::SetTaints(want) } else { Verdict::Nothing }
}

/// Starts the controller on `ctx.tasks`. It is no queue-driven controller: it looks at every
/// Node each period, since what it watches for is a heartbeat that does not come.
pub fn start(ctx: &Context) -> Result<()> {
    // The changes are not needed (every Node is judged each period): dropping them lets the
    // reflector discard them.
    let (nodes, _) = ctx.reflector::<Node>(ListParams::default());
    ctx.tasks.spawn(monitor(ctx.clone(), nodes));
    Ok(())
}

/// Judges every Node each `--node-monitor-period`, once the Nodes have listed.
async fn monitor(ctx: Context, nodes: Cache<Node>) {
    nodes.wait_synced().await;
    let recorder = Recorder::new(ctx.client.clone(), "node-controller", None);
    let period = ctx.config.node_monitor_period;
    let grace = ctx.config.node_monitor_grace_period;
    loop {
        tokio::time::sleep(period).await;
        ctx.tasks.gate().ready().await;
        for node in nodes.list() {
            let name = node.metadata.name.clone().unwrap_or_default();
            match judge(&node, Timestamp::now(), grace) {
                Verdict::Nothing => {}
                Verdict::MarkUnknown => {
                    let mut n = (*node).clone();
                    let now = Time(Timestamp::now());
                    if let Some(conditions) = n.status.as_mut().and_then(|s| s.conditions.as_mut()) {
                        for c in conditions.iter_mut() {
                            c.status = "Unknown".into();
                            c.reason = Some("NodeStatusUnknown".into());
                            c.message = Some("Kubelet stopped posting node status.".into());
                            c.last_transition_time = Some(now.clone());
                        }
                    }
                    match ctx.client.update_status(&n).await {
                        Ok(updated) => {
                            tracing::info!(node = %name, "Kubelet stopped posting node status: marking the Node Unknown.");
                            recorder
                                .record(
                                    &updated,
                                    EventType::Normal,
                                    "NodeNotReady",
                                    &format!("Node {name} status is now: NodeNotReady"),
                                )
                                .await;
                        }
                        Err(error) => {
                            tracing::warn!(node = %name, %error, "Could not mark the Node Unknown.")
                        }
                    }
                }
                Verdict::SetTaints(want) => {
                    let mut n = (*node).clone();
                    let spec = n.spec.get_or_insert_with(Default::default);
                    let mut taints: Vec<Taint> = spec
                        .taints
                        .take()
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|t| {
                            !(matches!(t.key.as_str(), UNREACHABLE | NOT_READY) && t.effect == "NoSchedule")
                        })
                        .collect();
                    for key in want {
                        taints.push(Taint {
                            key: key.into(),
                            effect: "NoSchedule".into(),
                            time_added: None,
                            value: None,
                        });
                    }
                    spec.taints = (!taints.is_empty()).then_some(taints);
                    if let Err(error) = ctx.client.update(&n).await {
                        tracing::debug!(node = %name, %error, "Taint update failed; retrying next period.");
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(status: Option<&str>, heartbeat_secs_ago: i64, taints: &[&str]) -> Node {
        let now = Timestamp::now();
        let at = Time(now.checked_sub(jiff::SignedDuration::from_secs(heartbeat_secs_ago)).unwrap());
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "node-1", "creationTimestamp": at},
            "spec": {"taints": taints.iter().map(|k| serde_json::json!({"key": k, "effect": "NoSchedule"})).collect::<Vec<_>>()},
            "status": {"conditions": status.map(|s| vec![serde_json::json!({"type": "Ready", "status": s, "lastHeartbeatTime": at})]).unwrap_or_default()},
        }))
        .unwrap()
    }

    const GRACE: Duration = Duration::from_secs(50);

    #[test]
    fn silence_past_the_grace_period_marks_the_node_unknown() {
        assert_eq!(judge(&node(Some("True"), 10, &[]), Timestamp::now(), GRACE), Verdict::Nothing);
        assert_eq!(judge(&node(Some("True"), 60, &[]), Timestamp::now(), GRACE), Verdict::MarkUnknown);
        assert_eq!(
            judge(&node(Some("False"), 60, &[NOT_READY]), Timestamp::now(), GRACE),
            Verdict::MarkUnknown
        );
    }

    #[test]
    fn taints_follow_the_ready_condition() {
        let now = Timestamp::now();
        assert_eq!(judge(&node(Some("Unknown"), 60, &[]), now, GRACE), Verdict::SetTaints(vec![UNREACHABLE]));
        assert_eq!(judge(&node(Some("Unknown"), 60, &[UNREACHABLE]), now, GRACE), Verdict::Nothing);
        assert_eq!(judge(&node(Some("False"), 1, &[]), now, GRACE), Verdict::SetTaints(vec![NOT_READY]));
        assert_eq!(judge(&node(Some("True"), 1, &[UNREACHABLE]), now, GRACE), Verdict::SetTaints(vec![]));
        assert_eq!(judge(&node(None, 600, &[]), now, GRACE), Verdict::Nothing, "never reported: starting");
    }
}
