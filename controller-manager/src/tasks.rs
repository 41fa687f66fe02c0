//! Every task the controller-manager starts, in one place: spawned on one [`TaskTracker`] and
//! stopped by one shutdown token, so that [`crate::run`] can cancel them all and wait until none
//! is left (tokio's graceful-shutdown pattern). No controller calls `tokio::spawn` itself.

use std::future::Future;

use tokio_util::{sync::CancellationToken, task::TaskTracker};

/// The tracker and the token; clones share them.
#[derive(Clone)]
pub struct Tasks {
    tracker: TaskTracker,
    shutdown: CancellationToken,
    /// The process's fault gate: every unit of work waits on it (a stopped or paused
    /// controller-manager reconciles nothing).
    gate: netlab_faults::Gate,
}

// === impl Tasks ===

impl Tasks {
    /// Tasks that stop when `shutdown` fires.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self { tracker: TaskTracker::new(), shutdown, gate: netlab_faults::Gate::new() }
    }

    /// The same tasks, their work gated by `gate`.
    pub fn gated(self, gate: netlab_faults::Gate) -> Self {
        Self { gate, ..self }
    }

    /// The gate every unit of work waits on.
    pub fn gate(&self) -> &netlab_faults::Gate {
        &self.gate
    }

    /// Runs `task` until it ends or shutdown fires, whichever is first. A task cut short is
    /// dropped where it awaits: every controller's work is idempotent and is redone from the
    /// caches after a restart.
    pub fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let shutdown = self.shutdown.clone();
        self.tracker.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = task => {}
            }
        });
    }

    /// A token cancelled with the others, for what runs outside this tracker (the health
    /// server).
    pub fn child_token(&self) -> CancellationToken {
        self.shutdown.child_token()
    }

    /// How many tasks are still running.
    pub fn len(&self) -> usize {
        self.tracker.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.tracker.is_empty()
    }

    /// Waits until every task has ended (after shutdown, promptly). Tasks spawned while a task
    /// is still running are waited for too.
    pub async fn wait(&self) {
        self.tracker.close();
        self.tracker.wait().await;
    }
}
