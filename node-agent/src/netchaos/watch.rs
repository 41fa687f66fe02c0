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

        let mut held = Vec::new();
        for f in exhaustion.list() {
            let window = Window::of(&f.metadata, f.spec.duration.as_deref());
            if f.spec.action != ExhaustionAction::Conntrack || !window.active_at(now) {
                continue;
            }
            if let Some(left) = window.until_change(now) {
                next = Some(next.map_or(left, |n: Duration| n.min(left)));
            }
            if f.spec.nodes.is_empty() || f.spec.nodes.contains(&node) {
                let meta = &f.metadata;
                let (ns, name) =
                    (meta.namespace.as_deref().unwrap_or_default(), meta.name.as_deref().unwrap_or_default());
                held.push(Held {
                    fault: FaultRef::new(ns, name, "ExhaustionChaos", f.spec.action.as_str()),
                    key: FaultKey::of(&*f),
                });
            }
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
