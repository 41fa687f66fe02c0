//! The watcher: follows the ComponentChaos objects, decides ([`crate::decide`]) what holds this
//! process, and sets the gate; arms a timer for the moment a fault's window opens or closes, so
//! a fault ends on time even when nothing else changes; and for a `kill`, records the kill in the
//! fault's status and exits. Processes read the faults through a reflector
//! ([`snapshots_from`]); the apiserver, which cannot ask itself over a refused port, feeds the
//! same loop from its own registry.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use jiff::Timestamp;
use netlab_chaos::{Chaos as _, ComponentChaos, status::counter};
use netlab_client::{Client, ListParams, reflector::reflector_task};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::{
    Faults,
    decide::{decide, fault_ref},
    gate::Mode,
};

/// The exit code of a killed process (128 + SIGKILL), what `docker ps` and shells show.
pub const KILLED_EXIT_CODE: i32 = 137;

/// How long to wait before trying again to record a kill that could not be written.
const KILL_RETRY: Duration = Duration::from_secs(1);

/// Slack after a window's end, so the decision made on waking sees it closed.
const TIMER_SLACK: Duration = Duration::from_millis(5);

/// Every ComponentChaos, as last listed; None until the first list.
pub type Snapshot = Option<Arc<Vec<Arc<ComponentChaos>>>>;

/// Where a kill is recorded before the process exits.
pub trait KillLog: Send + Sync + 'static {
    /// Adds one to `status.counters[reporter].processesKilled` of `fault`.
    fn record<'a>(
        &'a self,
        fault: &'a ComponentChaos,
        reporter: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Records kills through the apiserver.
pub struct ClientKillLog(pub Client);

impl KillLog for ClientKillLog {
    fn record<'a>(
        &'a self,
        fault: &'a ComponentChaos,
        reporter: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let (ns, name) = (
                fault.metadata.namespace.as_deref().unwrap_or_default(),
                fault.metadata.name.as_deref().unwrap_or_default(),
            );
            for _ in 0..5 {
                let mut current: ComponentChaos = self.0.get(ns, name).await.map_err(|e| e.to_string())?;
                count_kill(&mut current, reporter);
                match self.0.update_status(&current).await {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_conflict() => continue,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Err("conflict after five attempts".into())
        })
    }
}

/// Adds the kill to `fault`'s counters (for [`KillLog`]s that write the object themselves).
pub fn count_kill(fault: &mut ComponentChaos, reporter: &str) {
    *fault
        .status_mut()
        .counters
        .entry(reporter.to_string())
        .or_default()
        .entry(counter::PROCESSES_KILLED.to_string())
        .or_insert(0) += 1;
}

/// A reflector on every ComponentChaos, as snapshots; the task runs until dropped.
pub fn snapshots_from(
    client: Client,
) -> (watch::Receiver<Snapshot>, impl Future<Output = ()> + Send + 'static) {
    let (cache, mut changes, reflect) = reflector_task::<ComponentChaos>(client, ListParams::default());
    let (tx, rx) = watch::channel(Snapshot::default());
    let task = async move {
        let feed = async {
            cache.wait_synced().await;
            loop {
                while changes.try_recv().is_ok() {}
                tx.send_replace(Some(Arc::new(cache.list())));
                if changes.recv().await.is_none() {
                    return;
                }
            }
        };
        tokio::select! {
            _ = reflect => {}
            _ = feed => {}
        }
    };
    (rx, task)
}

// === impl Faults ===

impl Faults {
    /// Follows `snapshots` until `shutdown`: sets the gate, and for a kill records it through
    /// `kills` and exits.
    pub async fn enforce(
        &self,
        mut snapshots: watch::Receiver<Snapshot>,
        kills: Arc<dyn KillLog>,
        shutdown: CancellationToken,
    ) {
        // The hold waiting out the settle time.
        let mut settling = None;
        loop {
            let faults = snapshots.borrow_and_update().clone();
            let listed = faults.is_some();
            let faults = faults.unwrap_or_default();
            let decision = decide(faults.iter(), self.me(), Timestamp::now(), &self.lifted());
            let mut next = decision.next_change.map(|d| d + TIMER_SLACK);
            if let Some(fault) = &decision.kill {
                match kills.record(fault, &self.me().reporter()).await {
                    Ok(()) => self.exit(fault),
                    Err(error) => {
                        tracing::warn!(fault = %fault_ref(fault).name, %error, "Cannot record the kill; retrying before exiting.");
                        next = Some(next.map_or(KILL_RETRY, |n| n.min(KILL_RETRY)));
                    }
                }
            }
            let hold = decision.hold.map(|(action, fault)| {
                (
                    if action == netlab_chaos::lab::ComponentAction::Stop {
                        Mode::Stopped
                    } else {
                        Mode::Paused
                    },
                    fault,
                )
            });
            let mode = hold.as_ref().map_or(Mode::Running, |(m, _)| *m);
            let settle = self.inner.settle;
            if mode != Mode::Running
                && mode != self.gate().mode()
                && !settle.is_zero()
                && settling != Some(mode)
            {
                // Let the request that brought the fault get its answer first (see
                // `Faults::settle`), then decide again.
                settling = Some(mode);
                next = Some(next.map_or(settle, |n| n.min(settle)));
            } else {
                settling = None;
                self.hold(hold);
            }
            if listed {
                self.set_synced();
            }
            let timer = async {
                match next {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = snapshots.changed() => if changed.is_err() { return },
                _ = timer => {}
                _ = self.relooked() => {}
            }
        }
    }

    /// The process's ComponentChaos faults through the apiserver, until `shutdown`; writes its
    /// counters every second.
    pub async fn watch(&self, client: Client, shutdown: CancellationToken) {
        let (snapshots, reflect) = snapshots_from(client.clone());
        let report = self.reporter().clone().run(client.clone(), Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = reflect => {}
            _ = report => {}
            _ = self.enforce(snapshots, Arc::new(ClientKillLog(client)), shutdown.clone()) => {}
        }
    }

    fn exit(&self, fault: &ComponentChaos) {
        let f = fault_ref(fault);
        let span = tracing::warn_span!("component_fault", component = %self.me().reporter());
        f.mark(&span, "killed");
        tracing::warn!(fault = %f.name, code = KILLED_EXIT_CODE, "Killed by ComponentChaos; exiting.");
        (self.inner.exit)(KILLED_EXIT_CODE);
    }
}
