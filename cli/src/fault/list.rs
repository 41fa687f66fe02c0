//! `netlab fault list`: every fault of every kind in one table, with what each matched (the
//! controller's records), what it did (the enforcers' counters, summed) and whether it is still
//! in force. Pure: objects and a clock in, text out.

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netlab_chaos::{ChaosStatus, status::Record, window::Window};
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use crate::{
    print::{human_duration, since, typed},
    tabwriter,
};

/// How many record ids a TARGETS cell names before `...`.
const IDS_SHOWN: usize = 2;

/// The table, one row per fault in the order given; NAMESPACE only when several namespaces are
/// listed, as kubectl's `-A`.
pub fn table(faults: &[(Resource, Value)], with_namespace: bool, now: Timestamp) -> String {
    let mut text = String::new();
    if with_namespace {
        text.push_str("NAMESPACE\t");
    }
    text.push_str("NAME\tKIND\tACTION\tTARGETS\tCOUNTERS\tAGE\tREMAINING\tSTATE\n");
    for (r, v) in faults {
        let meta: ObjectMeta = v.get("metadata").map(typed).unwrap_or_default();
        let status: ChaosStatus = v.get("status").map(typed).unwrap_or_default();
        let text_at = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or("").to_string();
        let window = Window::of(&meta, v.pointer("/spec/duration").and_then(Value::as_str));
        let mut cells = Vec::new();
        if with_namespace {
            cells.push(meta.namespace.clone().unwrap_or_default());
        }
        cells.extend([
            meta.name.clone().unwrap_or_default(),
            r.kind().to_string(),
            text_at("/spec/action"),
            targets(&status.experiment.container_records),
            counters(&status),
            since(meta.creation_timestamp.as_ref(), now),
            remaining(&window, now),
            state(&window, now).to_string(),
        ]);
        let cells: Vec<String> = cells.into_iter().map(|c| c.replace(['\t', '\n'], " ")).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    }
    tabwriter::align(&text, tabwriter::TABLE)
}

/// `3: demo/client-1, demo/client-2, ...`: how many targets, and the first ones.
fn targets(records: &[Record]) -> String {
    if records.is_empty() {
        return "<none>".to_string();
    }
    let mut ids: Vec<&str> = records.iter().take(IDS_SHOWN).map(|r| r.id.as_str()).collect();
    if records.len() > IDS_SHOWN {
        ids.push("...");
    }
    format!("{}: {}", records.len(), ids.join(", "))
}

/// `packetsDelayed=3,packetsDropped=12`: every reporter's counters summed.
fn counters(status: &ChaosStatus) -> String {
    let totals = status.totals();
    if totals.is_empty() {
        return "<none>".to_string();
    }
    totals.iter().map(|(name, n)| format!("{name}={n}")).collect::<Vec<_>>().join(",")
}

/// Time left of the duration; `<none>` without one.
fn remaining(window: &Window, now: Timestamp) -> String {
    match window.end {
        Some(end) if end > now => human_duration(end.duration_since(now)),
        Some(_) => "0s".to_string(),
        None => "<none>".to_string(),
    }
}

/// Running, Paused, Finished (duration up) or Deleting. Decided from the object and the clock,
/// as every enforcer decides it, rather than from `status.experiment.desiredPhase`: the
/// controller writes that a moment later, or not at all while it is down, and the enforcers do
/// not wait for it.
fn state(window: &Window, now: Timestamp) -> &'static str {
    if window.deleting {
        "Deleting"
    } else if window.expired_at(now) {
        "Finished"
    } else if window.paused {
        "Paused"
    } else {
        "Running"
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn now() -> Timestamp {
        "2024-05-01T10:05:12Z".parse().unwrap()
    }

    fn fault(kind: &str, name: &str, spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "chaos.netlab.io/v1alpha1", "kind": kind,
            "metadata": {"name": name, "namespace": "demo", "creationTimestamp": "2024-05-01T10:00:00Z"},
            "spec": spec, "status": status,
        })
    }

    fn record(id: &str) -> Value {
        json!({"id": id, "selectorKey": ".", "phase": "Injected", "injectedCount": 1, "recoveredCount": 0})
    }

    #[test]
    fn faults_with_their_targets_counters_and_state() {
        let net = fault(
            "NetworkChaos",
            "net-client-orders-x7k2p",
            json!({"action": "netem", "mode": "all", "selector": {}, "duration": "10m"}),
            json!({
                "experiment": {"desiredPhase": "Run", "containerRecords": [
                    record("demo/client-1"), record("demo/client-2"), record("demo/orders-1")]},
                "counters": {
                    "node/node-1": {"packetsDropped": 7, "packetsDelayed": 40},
                    "node/node-2": {"packetsDropped": 5},
                },
            }),
        );
        let dns = fault(
            "DNSChaos",
            "dns-client-bcdfg",
            json!({"action": "error", "mode": "all", "selector": {}, "duration": "60s"}),
            json!({"experiment": {"desiredPhase": "Stop", "containerRecords": [record("demo/client-1")]},
                   "counters": {"dns": {"queriesAnswered": 3}}}),
        );
        let mut paused = fault(
            "ComponentChaos",
            "stop-dns-zzzzz",
            json!({"action": "stop", "component": "dns"}),
            json!({}),
        );
        paused["metadata"]["annotations"] = json!({"experiment.chaos-mesh.org/pause": "true"});
        let faults = vec![
            (Resource::NetworkChaos, net),
            (Resource::DnsChaos, dns),
            (Resource::ComponentChaos, paused),
        ];
        assert_eq!(
            table(&faults, true, now()),
            "\
NAMESPACE   NAME                      KIND             ACTION   TARGETS                                COUNTERS                              AGE     REMAINING   STATE
demo        net-client-orders-x7k2p   NetworkChaos     netem    3: demo/client-1, demo/client-2, ...   packetsDelayed=40,packetsDropped=12   5m12s   4m48s       Running
demo        dns-client-bcdfg          DNSChaos         error    1: demo/client-1                       queriesAnswered=3                     5m12s   0s          Finished
demo        stop-dns-zzzzz            ComponentChaos   stop     <none>                                 <none>                                5m12s   <none>      Paused
"
        );
    }

    #[test]
    fn without_namespace_column_and_while_deleting() {
        let mut f = fault("PodChaos", "pod-kill-orders-bcdfg", json!({"action": "pod-kill"}), Value::Null);
        f["metadata"]["deletionTimestamp"] = json!("2024-05-01T10:05:00Z");
        assert_eq!(
            table(&[(Resource::PodChaos, f)], false, now()),
            "NAME                    KIND       ACTION     TARGETS   COUNTERS   AGE     REMAINING   STATE\n\
             pod-kill-orders-bcdfg   PodChaos   pod-kill   <none>    <none>     5m12s   <none>      Deleting\n"
        );
    }
}
