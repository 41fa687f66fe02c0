//! Which ComponentChaos holds this process now: the pure decision, from the fault objects, who
//! this process is, and the clock. A fault applies when its `component` is this process's and,
//! for per-node components, its `nodes` is empty or names this node; it is in force over its
//! [`Window`]. A kill wins over a stop, a stop over a pause (a dead process cannot also hang);
//! among faults of one action the oldest holds, so every process of a kind agrees.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use jiff::Timestamp;
use netlab_chaos::{
    Chaos as _, ComponentChaos, FaultRef,
    lab::{Component, ComponentAction},
    report::FaultKey,
    status::counter,
    window::Window,
};

/// Which process this is, as faults name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Me {
    /// The component.
    pub component: Component,
    /// The node, for per-node components.
    pub node: Option<String>,
}

// === impl Me ===

impl Me {
    /// A control-plane component.
    pub fn component(component: Component) -> Self {
        Self { component, node: None }
    }

    /// A node's component.
    pub fn on_node(component: Component, node: impl Into<String>) -> Self {
        Self { component, node: Some(node.into()) }
    }

    /// Its entry in `status.counters` (`scheduler`, `kube-proxy/node-1`).
    pub fn reporter(&self) -> String {
        match &self.node {
            Some(node) => format!("{}/{node}", self.component),
            None => self.component.to_string(),
        }
    }

    /// Whether `fault` is aimed at this process.
    pub fn targeted_by(&self, fault: &ComponentChaos) -> bool {
        fault.spec.component == self.component
            && (!self.component.per_node()
                || fault.spec.nodes.is_empty()
                || self.node.as_ref().is_some_and(|n| fault.spec.nodes.contains(n)))
    }

    /// Whether this process already exited for `fault` (the kill is recorded in the fault's
    /// status before the exit, so a restarted process does not kill itself again).
    pub fn killed_by(&self, fault: &ComponentChaos) -> bool {
        fault
            .status()
            .and_then(|s| s.counters.get(&self.reporter()))
            .and_then(|c| c.get(counter::PROCESSES_KILLED))
            .is_some_and(|n| *n > 0)
    }
}

/// What this process must do now.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Exit for this fault (once).
    pub kill: Option<Arc<ComponentChaos>>,
    /// Stop or pause for this fault; None: run.
    pub hold: Option<(ComponentAction, Arc<ComponentChaos>)>,
    /// When to decide again though nothing changed (a window opens or closes).
    pub next_change: Option<Duration>,
}

/// The fault's reference for span marks.
pub fn fault_ref(fault: &ComponentChaos) -> FaultRef {
    let m = &fault.metadata;
    FaultRef::new(
        m.namespace.as_deref().unwrap_or_default(),
        m.name.as_deref().unwrap_or_default(),
        "ComponentChaos",
        fault.spec.action.as_str(),
    )
}

/// The fault's key for counters.
pub fn fault_key(fault: &ComponentChaos) -> FaultKey {
    FaultKey::of(fault)
}

/// Decides for `me` at `now` over `faults`, ignoring those whose uid is in `lifted`.
pub fn decide<'a>(
    faults: impl IntoIterator<Item = &'a Arc<ComponentChaos>>,
    me: &Me,
    now: Timestamp,
    lifted: &BTreeSet<String>,
) -> Decision {
    let mut in_force: Vec<&Arc<ComponentChaos>> = Vec::new();
    let mut next_change: Option<Duration> = None;
    for fault in faults {
        if !me.targeted_by(fault) || fault.metadata.uid.as_ref().is_some_and(|u| lifted.contains(u)) {
            continue;
        }
        let window = Window::of(&fault.metadata, fault.spec.duration.as_deref());
        let change = if now < window.start {
            Some(window.start.duration_since(now).unsigned_abs())
        } else {
            window.until_change(now)
        };
        if let Some(change) = change.filter(|c| !c.is_zero()) {
            next_change = Some(next_change.map_or(change, |n| n.min(change)));
        }
        if window.active_at(now) {
            in_force.push(fault);
        }
    }
    in_force.sort_by_key(|f| (f.metadata.creation_timestamp.clone().map(|t| t.0), f.metadata.name.clone()));
    let kill = in_force
        .iter()
        .find(|f| f.spec.action == ComponentAction::Kill && !me.killed_by(f))
        .map(|f| (*f).clone());
    let hold = [ComponentAction::Stop, ComponentAction::Pause]
        .into_iter()
        .find_map(|a| in_force.iter().find(|f| f.spec.action == a).map(|f| (a, (*f).clone())));
    Decision { kill, hold, next_change }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use netlab_chaos::{ComponentChaosSpec, status::ChaosStatus};

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn fault(
        name: &str,
        action: ComponentAction,
        component: Component,
        nodes: &[&str],
        duration: Option<&str>,
    ) -> Arc<ComponentChaos> {
        let mut f = ComponentChaos {
            metadata: Default::default(),
            spec: ComponentChaosSpec {
                action,
                component,
                nodes: nodes.iter().map(|n| n.to_string()).collect(),
                duration: duration.map(String::from),
            },
            status: None,
        };
        f.metadata.name = Some(name.into());
        f.metadata.namespace = Some("default".into());
        f.metadata.uid = Some(format!("uid-{name}"));
        f.metadata.creation_timestamp = Some(Time(at("2026-01-01T10:00:00Z")));
        Arc::new(f)
    }

    #[test]
    fn per_node_faults_pick_their_nodes() {
        let proxy1 = Me::on_node(Component::KubeProxy, "node-1");
        let proxy2 = Me::on_node(Component::KubeProxy, "node-2");
        let f = fault("a", ComponentAction::Stop, Component::KubeProxy, &["node-1"], None);
        assert!(proxy1.targeted_by(&f));
        assert!(!proxy2.targeted_by(&f));
        let all = fault("b", ComponentAction::Stop, Component::KubeProxy, &[], None);
        assert!(proxy2.targeted_by(&all));
        assert!(!Me::on_node(Component::Kubelet, "node-1").targeted_by(&all));
        assert!(!Me::component(Component::Scheduler).targeted_by(&all));
        assert_eq!(proxy1.reporter(), "kube-proxy/node-1");
    }

    #[test]
    fn in_force_over_its_window_with_a_timer_at_the_end() {
        let me = Me::component(Component::Dns);
        let f = fault("p", ComponentAction::Pause, Component::Dns, &[], Some("60s"));
        let none = BTreeSet::new();
        let d = decide([&f], &me, at("2026-01-01T10:00:20Z"), &none);
        assert_eq!(d.hold.as_ref().map(|(a, _)| *a), Some(ComponentAction::Pause));
        assert_eq!(d.next_change, Some(Duration::from_secs(40)));
        let d = decide([&f], &me, at("2026-01-01T10:01:00Z"), &none);
        assert_eq!(d.hold, None);
        assert_eq!(d.next_change, None);
        let lifted = BTreeSet::from(["uid-p".to_string()]);
        assert_eq!(decide([&f], &me, at("2026-01-01T10:00:20Z"), &lifted).hold, None);
    }

    #[test]
    fn kill_once_then_stop_beats_pause() {
        let me = Me::component(Component::Scheduler);
        let now = at("2026-01-01T10:00:01Z");
        let kill = fault("k", ComponentAction::Kill, Component::Scheduler, &[], None);
        let pause = fault("p", ComponentAction::Pause, Component::Scheduler, &[], None);
        let stop = fault("s", ComponentAction::Stop, Component::Scheduler, &[], None);
        let d = decide([&kill, &pause, &stop], &me, now, &BTreeSet::new());
        assert_eq!(d.kill.as_ref().and_then(|k| k.metadata.name.as_deref()), Some("k"));
        assert_eq!(d.hold.as_ref().map(|(a, _)| *a), Some(ComponentAction::Stop));

        let mut killed = (*kill).clone();
        let mut status = ChaosStatus::default();
        status.counters.insert("scheduler".into(), [(counter::PROCESSES_KILLED.to_string(), 1)].into());
        killed.status = Some(status);
        let d = decide([&Arc::new(killed), &pause], &me, now, &BTreeSet::new());
        assert_eq!(d.kill, None, "recorded: not again after the restart");
        assert_eq!(d.hold.as_ref().map(|(a, _)| *a), Some(ComponentAction::Pause));
    }
}
