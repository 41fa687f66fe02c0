//! Keeps the node's faults current: list-watches NetworkChaos and ExhaustionChaos, and rebuilds
//! what is in force whenever one changes (a new fault, new records as pods come and go, a pause,
//! a delete) and when a fault's duration runs out, on a timer armed for exactly then. Faults are
//! objects, so a restarted node-agent finds them in its first list and enforces them again.

use std::{sync::Arc, time::Duration};

use jiff::Timestamp;
use netlab_chaos::{
    ExhaustionChaos, FaultRef, NetworkChaos, lab::ExhaustionAction, report::FaultKey, window::Window,
};
use netlab_client::{Client, ListParams, reflector};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{
    faults::{Faults, Held},
    index::Index,
};

/// Longest sleep between rebuilds when no duration runs out (a safety net; changes wake it).
const IDLE: Duration = Duration::from_secs(60);

/// The ExhaustionChaos `conntrack` faults in force at `now` that name node `node` (or no node:
/// every node), and when the next of them ends by itself.
pub fn conntrack_held<'a>(
    faults: impl IntoIterator<Item = &'a ExhaustionChaos>,
    node: &str,
    now: Timestamp,
) -> (Vec<Held>, Option<Duration>) {
    let (mut held, mut next) = (Vec::new(), None);
    for f in faults {
        let window = Window::of(&f.metadata, f.spec.duration.as_deref());
        if f.spec.action != ExhaustionAction::Conntrack || !window.active_at(now) {
            continue;
        }
        if !f.spec.nodes.is_empty() && !f.spec.nodes.iter().any(|n| n == node) {
            continue;
        }
        if let Some(left) = window.until_change(now) {
            next = Some(next.map_or(left, |n: Duration| n.min(left)));
        }
        let meta = &f.metadata;
        let (ns, name) =
            (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
        held.push(Held {
            fault: FaultRef::new(ns, name, "ExhaustionChaos", f.spec.action.as_str()),
            key: FaultKey::of(f),
        });
    }
    (held, next)
}

/// Runs until `shutdown`: keeps `faults` current for node `node`; `hold_conntrack(full)` holds
/// the node's conntrack table full or lets it go.
pub async fn run(
    client: Client,
    node: String,
    faults: Arc<Faults>,
    hold_conntrack: impl Fn(bool) + Send + 'static,
    shutdown: CancellationToken,
) {
    let (network, mut net_changes) =
        reflector::reflector::<NetworkChaos>(client.clone(), ListParams::default(), shutdown.child_token());
    let (exhaustion, mut ex_changes) =
        reflector::reflector::<ExhaustionChaos>(client, ListParams::default(), shutdown.child_token());
    let seed = std::process::id() as u64 ^ Timestamp::now().as_nanosecond() as u64;
    let mut was_full = false;
    loop {
        let now = Timestamp::now();
        let listed = network.list();
        let index = Index::build(listed.iter().map(|f| &**f), now, seed);
        for (name, error) in &index.skipped {
            warn!(fault = %name, %error, "NetworkChaos not enforced.");
        }
        let mut next = index.next_change;
        let active = index.active;
        faults.set_network(index);

        let (held, until) = conntrack_held(exhaustion.list().iter().map(|f| &**f), &node, now);
        if let Some(left) = until {
            next = Some(next.map_or(left, |n: Duration| n.min(left)));
        }
        let full = faults.set_conntrack(held);
        hold_conntrack(full);
        if full != was_full {
            if full {
                info!("Conntrack table held full (ExhaustionChaos conntrack).");
            } else {
                info!("Conntrack table no longer held full.");
            }
            was_full = full;
        }
        tracing::debug!(active, "Network faults in force.");

        // Wake a little after the window ends, so that `active_at` sees it over.
        let sleep = next.map_or(IDLE, |n| n.min(IDLE) + Duration::from_millis(1));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            c = net_changes.recv() => if c.is_none() { return },
            c = ex_changes.recv() => if c.is_none() { return },
            _ = tokio::time::sleep(sleep) => {}
        }
        // A burst of changes (a controller writing many records) makes one rebuild.
        while net_changes.try_recv().is_ok() || ex_changes.try_recv().is_ok() {}
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::ExhaustionChaosSpec;

    use super::*;

    fn fault(
        name: &str,
        action: ExhaustionAction,
        nodes: &[&str],
        duration: Option<&str>,
    ) -> ExhaustionChaos {
        ExhaustionChaos {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time("2026-12-07T10:00:00Z".parse().unwrap())),
                ..Default::default()
            },
            spec: ExhaustionChaosSpec {
                action,
                nodes: nodes.iter().map(|n| n.to_string()).collect(),
                duration: duration.map(String::from),
            },
            status: None,
        }
    }

    #[test]
    fn conntrack_faults_hold_the_nodes_they_name_while_in_force() {
        let now: Timestamp = "2026-12-07T10:00:10Z".parse().unwrap();
        let faults = [
            fault("mine", ExhaustionAction::Conntrack, &["node-1"], Some("30s")),
            fault("every", ExhaustionAction::Conntrack, &[], None),
            fault("other", ExhaustionAction::Conntrack, &["node-2"], Some("5s")),
            fault("ips", ExhaustionAction::PodCidr, &["node-1"], None),
        ];
        let (held, next) = conntrack_held(&faults, "node-1", now);
        let names: Vec<&str> = held.iter().map(|h| h.fault.name.as_str()).collect();
        assert_eq!(names, ["default/mine", "default/every"]);
        assert_eq!(held[0].fault.action, "conntrack");
        assert_eq!(next, Some(Duration::from_secs(20)), "mine ends in 20 s");
        let later: Timestamp = "2026-12-07T10:00:40Z".parse().unwrap();
        assert_eq!(conntrack_held(&faults, "node-1", later).0.len(), 1, "mine is over");
        assert_eq!(conntrack_held(&faults, "node-3", now).0.len(), 1);
    }
}
