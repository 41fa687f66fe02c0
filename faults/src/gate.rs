//! The gate: what state this process is in as its faults see it. Every work loop awaits
//! [`Gate::ready`] before each unit of work, and the listeners ([`crate::listener`],
//! [`crate::socket`]) follow it, so one value decides how the whole process behaves, as one
//! signal decides it for a real process.

use std::sync::Arc;

use netlab_chaos::FaultRef;
use tokio::sync::watch;

/// How the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Normally.
    Running,
    /// As a dead process: listeners closed, loops idle.
    Stopped,
    /// As a SIGSTOPped process: connections held unanswered, loops frozen.
    Paused,
}

impl Mode {
    /// `running`, `stopped`, `paused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Running => "running",
            Mode::Stopped => "stopped",
            Mode::Paused => "paused",
        }
    }
}

/// The gate's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// How the process runs.
    pub mode: Mode,
    /// The fault that holds it, when not running.
    pub fault: Option<FaultRef>,
    /// How many times the gate entered [`Mode::Stopped`]: a connection accepted before a stop
    /// stays dead after it, as a dead process's connections do not come back with a new one.
    pub stops: u64,
}

/// The process's gate; clones share it.
#[derive(Debug, Clone)]
pub struct Gate {
    tx: Arc<watch::Sender<State>>,
}

impl Default for Gate {
    fn default() -> Self {
        Self::new()
    }
}

// === impl Gate ===

impl Gate {
    /// A gate that is running (what a process without faults, or a test, gets).
    pub fn new() -> Self {
        let (tx, _) = watch::channel(State { mode: Mode::Running, fault: None, stops: 0 });
        Self { tx: Arc::new(tx) }
    }

    /// Sets the mode and the fault holding it; a change to [`Mode::Stopped`] counts a stop.
    /// Returns whether anything changed.
    pub fn set(&self, mode: Mode, fault: Option<FaultRef>) -> bool {
        self.tx.send_if_modified(|s| {
            if s.mode == mode && s.fault == fault {
                return false;
            }
            if mode == Mode::Stopped && s.mode != Mode::Stopped {
                s.stops += 1;
            }
            s.mode = mode;
            s.fault = fault;
            true
        })
    }

    /// The state now.
    pub fn state(&self) -> State {
        self.tx.borrow().clone()
    }

    /// The mode now.
    pub fn mode(&self) -> Mode {
        self.tx.borrow().mode
    }

    /// Follows the state.
    pub fn subscribe(&self) -> watch::Receiver<State> {
        self.tx.subscribe()
    }

    /// Waits until the process runs (at once if it does). Loops call this before each unit of
    /// work: a stopped or paused process does nothing until its fault ends.
    pub async fn ready(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so the channel cannot close while this waits.
        let _ = rx.wait_for(|s| s.mode == Mode::Running).await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn fault() -> FaultRef {
        FaultRef::new("default", "stop", "ComponentChaos", "stop")
    }

    #[tokio::test]
    async fn ready_waits_for_running() {
        let gate = Gate::new();
        tokio::time::timeout(Duration::from_secs(1), gate.ready()).await.expect("running at first");
        assert!(gate.set(Mode::Paused, Some(fault())));
        assert!(!gate.set(Mode::Paused, Some(fault())), "no change");
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.ready().await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "paused: the loop waits");
        gate.set(Mode::Running, None);
        tokio::time::timeout(Duration::from_secs(1), waiting).await.expect("resumes").expect("task");
    }

    #[test]
    fn each_stop_is_counted_once() {
        let gate = Gate::new();
        gate.set(Mode::Stopped, Some(fault()));
        gate.set(Mode::Stopped, None);
        assert_eq!(gate.state().stops, 1);
        gate.set(Mode::Paused, None);
        gate.set(Mode::Stopped, Some(fault()));
        assert_eq!(gate.state().stops, 2);
        assert_eq!(gate.mode(), Mode::Stopped);
    }
}
