//! The pod status the kubelet writes (`generateAPIPodStatus`): phase, IPs, conditions with stable
//! lastTransitionTimes, and one containerStatus per container with containerd's image and
//! container IDs and the kubelet's waiting reasons.

use k8s_openapi::api::core::v1::{
    ContainerState as ApiState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, HostIP, PodCondition, PodIP, PodStatus,
};

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
};

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Time};

use super::{
    container::{ContainerState, Terminated},
    sandbox::Sandbox,
};

/// What the kubelet knows of one pod, which its status is built from.
pub struct Observed<'a> {
    /// The pod as last seen (its spec, and the status conditions others own).
    pub pod: &'a Pod,
    /// The node's IP: the pod's hostIP.
    pub node_ip: IpAddr,
    /// The sandbox, once CNI ADD gave it an IP.
    pub sandbox: Option<&'a Sandbox>,
    /// Each container's state, by name.
    pub containers: &'a BTreeMap<String, ContainerState>,
    /// When the kubelet first acted on the pod.
    pub start_time: Option<Time>,
    /// The kubelet's conditions: type → (status, lastTransitionTime), kept across builds so a
    /// transition time moves only when the status does.
    pub conditions: &'a mut HashMap<&'static str, (bool, Time)>,
}

/// Now, as a Kubernetes Time.
pub(super) fn now() -> Time {
    Time(jiff::Timestamp::now())
}

/// The status for the pod as it stands.
pub fn build(w: Observed<'_>) -> PodStatus {
    let old = w.pod.status.clone().unwrap_or_default();
    let containers = w.pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default();
    let mut statuses = Vec::new();
    let mut unready = Vec::new();
    let mut all_running = !containers.is_empty();
    // getPhase: a container that ran before and waits to restart (CrashLoopBackOff) keeps the
    // pod Running; one that ended for good (restartPolicy) counts as stopped.
    let (mut started_once, mut stopped, mut failed) = (!containers.is_empty(), 0, 0);
    for c in &containers {
        let state = w.containers.get(&c.name).cloned().unwrap_or_default();
        let running = state.id.is_some();
        all_running &= running;
        started_once &= running || state.last_terminated.is_some();
        let ended = !running && state.exited && state.waiting.is_none();
        if ended {
            stopped += 1;
            failed += usize::from(state.last_terminated.as_ref().is_some_and(|t| t.exit_code != 0));
        }
        let ready = running && state.ready;
        if !ready {
            unready.push(c.name.clone());
        }
        let (reason, message) =
            state.waiting.clone().unwrap_or_else(|| ("ContainerCreating".into(), String::new()));
        statuses.push(ContainerStatus {
            name: c.name.clone(),
            image: match (&state.image, running) {
                (Some(i), true) => i.reference.clone(),
                _ => c.image.clone().unwrap_or_default(),
            },
            image_id: match (&state.image, running) {
                (Some(i), true) if !i.manifest_digest.is_empty() => i.image_id(),
                _ => String::new(),
            },
            container_id: state.id.as_ref().filter(|_| running).map(|id| format!("containerd://{id}")),
            ready,
            started: Some(running),
            restart_count: state.restart_count,
            last_state: state.last_terminated.as_ref().filter(|_| !ended).map(terminated),
            state: Some(if running {
                ApiState {
                    running: Some(ContainerStateRunning { started_at: state.started_at.clone() }),
                    ..Default::default()
                }
            } else if let (true, Some(t)) = (ended, &state.last_terminated) {
                terminated(t)
            } else {
                ApiState {
                    waiting: Some(ContainerStateWaiting {
                        reason: Some(reason),
                        message: Some(message).filter(|m| !m.is_empty()),
                    }),
                    ..Default::default()
                }
            }),
            ..Default::default()
        });
    }
    let sandbox_ready = w.sandbox.is_some();
    let containers_ready = unready.is_empty() && all_running;
    let not_ready_message = format!("containers with unready status: [{}]", unready.join(" "));
    let mut conditions = Vec::new();
    let mut condition = |conds: &mut HashMap<&'static str, (bool, Time)>,
                         t: &'static str,
                         ok: bool,
                         reason: Option<&str>,
                         message: Option<String>| {
        let entry = conds.entry(t).or_insert_with(|| (ok, now()));
        if entry.0 != ok {
            *entry = (ok, now());
        }
        conditions.push(PodCondition {
            type_: t.into(),
            status: if ok { "True" } else { "False" }.into(),
            last_transition_time: Some(entry.1.clone()),
            reason: reason.filter(|_| !ok).map(String::from),
            message: message.filter(|_| !ok),
            ..Default::default()
        });
    };
    condition(w.conditions, "PodReadyToStartContainers", sandbox_ready, None, None);
    condition(w.conditions, "Initialized", true, None, None);
    condition(
        w.conditions,
        "Ready",
        containers_ready,
        Some("ContainersNotReady"),
        Some(not_ready_message.clone()),
    );
    condition(
        w.conditions,
        "ContainersReady",
        containers_ready,
        Some("ContainersNotReady"),
        Some(not_ready_message),
    );
    if let Some(scheduled) = old.conditions.iter().flatten().find(|c| c.type_ == "PodScheduled") {
        conditions.push(scheduled.clone());
    }
    let node_ip = w.node_ip.to_string();
    let pod_ip = w.sandbox.map(|s| s.ip.to_string());
    PodStatus {
        phase: Some(
            if stopped == containers.len() && stopped > 0 {
                if failed > 0 { "Failed" } else { "Succeeded" }
            } else if all_running || started_once {
                "Running"
            } else {
                "Pending"
            }
            .into(),
        ),
        conditions: Some(conditions),
        host_ip: Some(node_ip.clone()),
        host_ips: Some(vec![HostIP { ip: node_ip }]),
        pod_ip: pod_ip.clone(),
        pod_ips: pod_ip.map(|ip| vec![PodIP { ip }]),
        start_time: w.start_time.clone(),
        container_statuses: Some(statuses),
        qos_class: old.qos_class.clone(),
        ..Default::default()
    }
}

/// A `ContainerState` with `terminated` set.
fn terminated(t: &Terminated) -> ApiState {
    ApiState {
        terminated: Some(ContainerStateTerminated {
            exit_code: t.exit_code,
            reason: Some(t.reason.to_string()),
            started_at: t.started_at.clone(),
            finished_at: Some(t.finished_at.clone()),
            container_id: Some(format!("containerd://{}", t.container_id)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{Container, PodSpec};

    use super::*;

    fn pod() -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers: vec![Container { name: "app".into(), ..Default::default() }],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn build_with(state: ContainerState) -> PodStatus {
        let pod = pod();
        let containers = BTreeMap::from([("app".to_string(), state)]);
        let mut conditions = HashMap::new();
        build(Observed {
            pod: &pod,
            node_ip: "127.0.0.1".parse().unwrap(),
            sandbox: None,
            containers: &containers,
            start_time: None,
            conditions: &mut conditions,
        })
    }

    fn killed() -> Terminated {
        Terminated::now("abc".into(), None, 137, false)
    }

    #[test]
    fn crash_loop_keeps_the_pod_running_with_the_last_termination() {
        let status = build_with(ContainerState {
            exited: true,
            restart_count: 1,
            waiting: Some(("CrashLoopBackOff".into(), "back-off 10s restarting failed container=app".into())),
            last_terminated: Some(killed()),
            ..Default::default()
        });
        assert_eq!(status.phase.as_deref(), Some("Running"));
        let c = &status.container_statuses.unwrap()[0];
        assert_eq!(
            c.state.as_ref().unwrap().waiting.as_ref().unwrap().reason.as_deref(),
            Some("CrashLoopBackOff")
        );
        let last = c.last_state.as_ref().unwrap().terminated.as_ref().unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (137, Some("Error")));
        assert_eq!(last.container_id.as_deref(), Some("containerd://abc"));
        assert!(!c.ready);
    }

    #[test]
    fn a_container_that_stays_down_fails_the_pod() {
        // restartPolicy Never: the kubelet leaves it terminated.
        let status = build_with(ContainerState {
            exited: true,
            last_terminated: Some(killed()),
            ..Default::default()
        });
        assert_eq!(status.phase.as_deref(), Some("Failed"));
        let c = &status.container_statuses.unwrap()[0];
        assert_eq!(c.state.as_ref().unwrap().terminated.as_ref().unwrap().exit_code, 137);
        assert!(c.last_state.is_none());
    }
}
