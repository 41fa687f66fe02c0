//! The faults this node's kubelet and container runtime enforce: PodChaos `container-kill` and
//! `pod-failure` on the pods of this node (what chaos-daemon and the image swap do in Chaos
//! Mesh), and ExhaustionChaos `pod-cidr` in host-local IPAM.
//!
//! The kubelet never evaluates selectors: the chaos controller names the pods in
//! `status.experiment.containerRecords` (`id` = `ns/name`, `nodeName`), and this module only
//! reads them. Whether a fault is in force is decided here, from the object and this node's clock
//! ([`Window`]); a timer wakes the pod workers when a fault's window ends, so a pod-failure ends
//! on time even when the controller is down.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use netlab_chaos::{
    ExhaustionChaos, FaultRef, PodChaos,
    lab::ExhaustionAction,
    object::Chaos,
    pod::PodAction,
    report::{FaultKey, Reporter},
    status::counter,
    window::Window,
};
use netlab_client::{Client, ListParams, reflector};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::cni::host_local::Exhaustion;

/// How often the counters go into the faults' status.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// A fault that applies to one pod, with what the worker needs to act and to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFault {
    /// The fault object's UID: a one-shot is done once per (fault, pod).
    pub uid: String,
    /// For the span marks.
    pub fault: FaultRef,
    /// For the counters.
    pub key: FaultKey,
    /// For `container-kill`: the containers named.
    pub containers: Vec<String>,
}

/// The faults of this node, as the pod workers and the CNI plugin ask for them.
pub struct Faults {
    node: String,
    pods: Option<reflector::Cache<PodChaos>>,
    exhaustion: Option<reflector::Cache<ExhaustionChaos>>,
    changed: watch::Sender<u64>,
    reporter: Arc<Reporter>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Faults").field("node", &self.node).finish_non_exhaustive()
    }
}

// === impl Faults ===

impl Faults {
    /// Watches the fault kinds for `node`, reports counters as `node/<node>`; until `shutdown`.
    pub fn start(client: Client, node: &str, shutdown: CancellationToken) -> Arc<Self> {
        let (pods, mut pod_changes) =
            reflector::reflector::<PodChaos>(client.clone(), ListParams::default(), shutdown.child_token());
        let (exhaustion, mut exhaustion_changes) = reflector::reflector::<ExhaustionChaos>(
            client.clone(),
            ListParams::default(),
            shutdown.child_token(),
        );
        let reporter = Reporter::new(format!("node/{node}"));
        let faults = Arc::new(Self {
            node: node.to_string(),
            pods: Some(pods),
            exhaustion: Some(exhaustion),
            changed: watch::channel(0).0,
            reporter: reporter.clone(),
        });
        let reporting = tokio::spawn(reporter.run(client, REPORT_EVERY));
        let me = faults.clone();
        tokio::spawn(async move {
            loop {
                // Wake the workers again when the next window ends by itself.
                let next_end = me.next_change(Timestamp::now());
                let timer = async {
                    match next_end {
                        Some(d) => tokio::time::sleep(d + Duration::from_millis(1)).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    c = pod_changes.recv() => if c.is_none() { break },
                    c = exhaustion_changes.recv() => if c.is_none() { break },
                    _ = timer => {}
                }
                me.changed.send_modify(|n| *n += 1);
            }
            reporting.abort();
        });
        faults
    }

    /// No faults at all (tests of the kubelet without an apiserver watch).
    pub fn none(node: &str) -> Arc<Self> {
        Arc::new(Self {
            node: node.to_string(),
            pods: None,
            exhaustion: None,
            changed: watch::channel(0).0,
            reporter: Reporter::new(format!("node/{node}")),
        })
    }

    /// Changes whenever a fault changes or a window ends.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// The counters.
    pub fn reporter(&self) -> &Reporter {
        &self.reporter
    }

    fn pod_chaos(&self) -> Vec<Arc<PodChaos>> {
        self.pods.as_ref().map(|c| c.list()).unwrap_or_default()
    }

    /// The `container-kill` faults naming pod `ns/name`.
    pub fn container_kills(&self, pod: &str) -> Vec<PodFault> {
        container_kills(&self.pod_chaos(), &self.node, pod)
    }

    /// The `pod-failure` in force on pod `ns/name` at `now`, if any.
    pub fn pod_failure(&self, pod: &str, now: Timestamp) -> Option<PodFault> {
        pod_failure(&self.pod_chaos(), &self.node, pod, now)
    }

    /// The `pod-cidr` exhaustion in force on this node at `now`, if any.
    pub fn pod_cidr_exhausted(&self, now: Timestamp) -> Option<(FaultRef, FaultKey)> {
        let all = self.exhaustion.as_ref().map(|c| c.list()).unwrap_or_default();
        pod_cidr_exhausted(&all, &self.node, now)
    }

    fn next_change(&self, now: Timestamp) -> Option<Duration> {
        let pods = self.pod_chaos().into_iter().map(|f| Window::of(&f.metadata, f.duration()));
        let exhaustion = self
            .exhaustion
            .as_ref()
            .map(|c| c.list())
            .unwrap_or_default()
            .into_iter()
            .map(|f| Window::of(&f.metadata, f.duration()));
        pods.chain(exhaustion).filter(|w| w.active_at(now)).filter_map(|w| w.until_change(now)).min()
    }
}

impl Exhaustion for Faults {
    /// Asked by host-local before each allocation, inside the `cni ADD` span.
    fn exhausted(&self) -> bool {
        let Some((fault, key)) = self.pod_cidr_exhausted(Timestamp::now()) else {
            return false;
        };
        fault.mark_current("refused: no IP addresses available in range set");
        self.reporter.add(&key, counter::ALLOCATIONS_REFUSED, 1);
        true
    }
}

/// Whether `f`'s records name pod `pod` on `node` (a record without a node is the pod's own).
fn names_pod(f: &PodChaos, node: &str, pod: &str) -> bool {
    f.status.as_ref().is_some_and(|s| {
        s.experiment
            .container_records
            .iter()
            .any(|r| r.id == pod && (r.node_name.is_empty() || r.node_name == node))
    })
}

fn pod_fault(f: &PodChaos) -> PodFault {
    let ns = f.metadata.namespace.as_deref().unwrap_or_default();
    let name = f.metadata.name.as_deref().unwrap_or_default();
    PodFault {
        uid: f.metadata.uid.clone().unwrap_or_else(|| format!("{ns}/{name}")),
        fault: FaultRef::new(ns, name, "PodChaos", f.spec.action.as_str()),
        key: FaultKey::of(f),
        containers: f.spec.container_names.clone(),
    }
}

/// The `container-kill` faults naming `pod`. A one-shot, as in Chaos Mesh: its duration and the
/// pause annotation do not matter, only that it exists and is not being deleted.
pub fn container_kills(faults: &[Arc<PodChaos>], node: &str, pod: &str) -> Vec<PodFault> {
    faults
        .iter()
        .filter(|f| f.spec.action == PodAction::ContainerKill)
        .filter(|f| f.metadata.deletion_timestamp.is_none())
        .filter(|f| names_pod(f, node, pod))
        .map(|f| pod_fault(f))
        .collect()
}

/// The first (by name) `pod-failure` in force on `pod` at `now`.
pub fn pod_failure(faults: &[Arc<PodChaos>], node: &str, pod: &str, now: Timestamp) -> Option<PodFault> {
    faults
        .iter()
        .filter(|f| f.spec.action == PodAction::PodFailure)
        .filter(|f| Window::of(&f.metadata, f.duration()).active_at(now))
        .find(|f| names_pod(f, node, pod))
        .map(|f| pod_fault(f))
}

/// The first `pod-cidr` ExhaustionChaos in force on `node` at `now` (`nodes` empty: every node).
pub fn pod_cidr_exhausted(
    faults: &[Arc<ExhaustionChaos>],
    node: &str,
    now: Timestamp,
) -> Option<(FaultRef, FaultKey)> {
    faults
        .iter()
        .filter(|f| f.spec.action == ExhaustionAction::PodCidr)
        .filter(|f| f.spec.nodes.is_empty() || f.spec.nodes.iter().any(|n| n == node))
        .find(|f| Window::of(&f.metadata, f.duration()).active_at(now))
        .map(|f| {
            let ns = f.metadata.namespace.as_deref().unwrap_or_default();
            let name = f.metadata.name.as_deref().unwrap_or_default();
            (FaultRef::new(ns, name, "ExhaustionChaos", f.spec.action.as_str()), FaultKey::of(f.as_ref()))
        })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::{
        ExhaustionChaosSpec, PodChaosSpec,
        status::{ChaosStatus, Experiment, Record},
    };

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn meta(name: &str) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            uid: Some(format!("uid-{name}")),
            creation_timestamp: Some(Time(at("2026-01-01T10:00:00Z"))),
            ..Default::default()
        }
    }

    fn pod_chaos(
        name: &str,
        action: PodAction,
        duration: Option<&str>,
        records: &[(&str, &str)],
    ) -> Arc<PodChaos> {
        Arc::new(PodChaos {
            metadata: meta(name),
            spec: PodChaosSpec {
                action,
                container_names: vec!["app".into()],
                duration: duration.map(String::from),
                ..Default::default()
            },
            status: Some(ChaosStatus {
                experiment: Experiment {
                    container_records: records
                        .iter()
                        .map(|(id, node)| Record {
                            id: id.to_string(),
                            node_name: node.to_string(),
                            phase: "Injected".into(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                },
                ..Default::default()
            }),
        })
    }

    #[test]
    fn container_kill_follows_the_records_only() {
        let all = vec![
            pod_chaos("kill", PodAction::ContainerKill, Some("1s"), &[("default/web", "node-1")]),
            pod_chaos("elsewhere", PodAction::ContainerKill, None, &[("default/web", "node-2")]),
            pod_chaos("failure", PodAction::PodFailure, None, &[("default/web", "node-1")]),
        ];
        let kills = container_kills(&all, "node-1", "default/web");
        assert_eq!(kills.len(), 1);
        assert_eq!(kills[0].uid, "uid-kill");
        assert_eq!(kills[0].containers, ["app"]);
        assert_eq!(kills[0].fault.name, "default/kill");
        assert_eq!(kills[0].fault.action, "container-kill");
        // A one-shot ignores its duration (the kill is done once, whenever the pod is named).
        assert!(container_kills(&all, "node-1", "default/other").is_empty());
        assert!(container_kills(&all, "node-2", "default/web").iter().any(|k| k.uid == "uid-elsewhere"));
    }

    #[test]
    fn pod_failure_holds_for_its_duration() {
        let all = vec![pod_chaos("failure", PodAction::PodFailure, Some("30s"), &[("default/web", "")])];
        let f = pod_failure(&all, "node-1", "default/web", at("2026-01-01T10:00:10Z")).unwrap();
        assert_eq!(f.fault.action, "pod-failure");
        assert!(pod_failure(&all, "node-1", "default/web", at("2026-01-01T10:00:30Z")).is_none());
        assert!(pod_failure(&all, "node-1", "default/db", at("2026-01-01T10:00:10Z")).is_none());
    }

    #[test]
    fn pod_cidr_on_the_named_nodes() {
        let fault = |nodes: &[&str]| {
            Arc::new(ExhaustionChaos {
                metadata: meta("full"),
                spec: ExhaustionChaosSpec {
                    action: ExhaustionAction::PodCidr,
                    nodes: nodes.iter().map(|n| n.to_string()).collect(),
                    duration: Some("60s".into()),
                },
                status: None,
            })
        };
        let now = at("2026-01-01T10:00:01Z");
        let (f, key) = pod_cidr_exhausted(&[fault(&["node-1"])], "node-1", now).unwrap();
        assert_eq!((f.kind, f.action, key.name.as_str()), ("ExhaustionChaos", "pod-cidr", "full"));
        assert!(pod_cidr_exhausted(&[fault(&["node-2"])], "node-1", now).is_none());
        assert!(pod_cidr_exhausted(&[fault(&[])], "node-9", now).is_some());
        assert!(pod_cidr_exhausted(&[fault(&[])], "node-1", at("2026-01-01T10:01:00Z")).is_none());
    }
}
