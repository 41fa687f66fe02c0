//! One step of a fault's experiment, as Chaos Mesh's desiredphase, records and condition
//! controllers take it together: where the fault should be (`Run` or `Stop`, and why), which
//! targets it has (records following the selection), each record's phase, the four conditions,
//! and the events that say what changed. Pure: the caller brings the targets and the clock, and
//! writes the status and records the events only once the write went through.

use jiff::Timestamp;
use netlab_chaos::{
    status::{ChaosStatus, Condition, Experiment, Record, condition, event, phase},
    window::Window,
};
use netlab_client::recorder::EventType;

/// One thing a fault is on: a pod (`default/client-7d9c`), a node's process
/// (`node-1/kube-proxy`), a component (`dns`).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Target {
    /// The record id.
    pub id: String,
    /// Which selector picked it: `.` or `.Target`.
    pub selector_key: String,
    /// For pods: its IP, once it has one.
    pub pod_ip: String,
    /// For pods and per-node targets: the node.
    pub node_name: String,
}

/// Why the desired phase is what it is; each names the event recorded when the phase turns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// In force: `Started`.
    Started,
    /// The duration is over: `TimeUp`.
    TimeUp,
    /// The pause annotation holds it: `Paused`.
    Paused,
    /// The object is being deleted: `Deleted`.
    Deleted,
}

/// Where the fault should be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Desired {
    /// `Run` or `Stop`.
    pub phase: &'static str,
    /// Why.
    pub cause: Cause,
}

/// Chaos Mesh's `CalcDesiredPhase`, checked in its order: deleted, one-shot (always `Run`:
/// pod-kill and container-kill are done once and never undone, so neither duration nor pause
/// stops them), time up, paused, else `Run`.
pub fn desired(window: &Window, oneshot: bool, now: Timestamp) -> Desired {
    let (phase, cause) = if window.deleting {
        (phase::STOP, Cause::Deleted)
    } else if oneshot {
        (phase::RUN, Cause::Started)
    } else if window.expired_at(now) {
        (phase::STOP, Cause::TimeUp)
    } else if window.paused {
        (phase::STOP, Cause::Paused)
    } else {
        (phase::RUN, Cause::Started)
    };
    Desired { phase, cause }
}

/// `source.component` of the events about the desired phase: Chaos Mesh's desiredphase
/// controller records them under its name, which `describe` shows in its From column.
pub const DESIRED_PHASE: &str = "desiredphase";
/// `source.component` of the events about records (Chaos Mesh's records controller).
pub const RECORDS: &str = "records";

/// An Event to record on the fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Which of Chaos Mesh's controllers records it: [`DESIRED_PHASE`] or [`RECORDS`].
    pub source: &'static str,
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Chaos Mesh's reason (`Applied`, `TimeUp`).
    pub reason: &'static str,
    /// Chaos Mesh's message.
    pub message: String,
}

impl Event {
    fn normal(source: &'static str, (reason, message): (&'static str, String)) -> Self {
        Self { source, type_: EventType::Normal, reason, message }
    }

    /// `Updated` from the records controller: it wrote the records.
    pub fn records_updated() -> Self {
        Self::normal(RECORDS, event::updated("records"))
    }

    /// `Failed` (Warning) from the records controller: `activity` (`select targets`,
    /// `apply chaos`) failed with `err`.
    pub fn failed(activity: &str, err: &str) -> Self {
        let (reason, message) = event::failed(activity, err);
        Self { source: RECORDS, type_: EventType::Warning, reason, message }
    }
}

/// What a step starts from besides the current status.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// What the fault targets now; None keeps the records as they are (a one-shot fault that
    /// already selected, an experiment whose time is up).
    pub targets: Option<&'a [Target]>,
    /// Where it should be.
    pub desired: Desired,
    /// Whether the pause annotation is set (the `Paused` condition).
    pub paused: bool,
    /// Whether the caller applies the fault itself (pod-kill): new records stay `Not Injected`
    /// until it has, and calls [`applied`].
    pub applied_by_caller: bool,
    /// The clock.
    pub now: Timestamp,
}

/// The status after a step (conditions and experiment; counters as they were) and its events.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// The new status.
    pub status: ChaosStatus,
    /// The events, in the order Chaos Mesh's controllers record them.
    pub events: Vec<Event>,
}

/// Takes one step from `old` (see the module doc).
pub fn step(old: &ChaosStatus, inputs: &Inputs<'_>) -> Outcome {
    let mut events = Vec::new();
    let mut experiment = old.experiment.clone();
    if experiment.desired_phase != inputs.desired.phase {
        experiment.desired_phase = inputs.desired.phase.to_string();
        let cause = match inputs.desired.cause {
            Cause::Started => event::started(),
            Cause::TimeUp => event::time_up(),
            Cause::Paused => event::paused(),
            Cause::Deleted => event::deleted(),
        };
        events.push(Event::normal(DESIRED_PHASE, cause));
        events.push(Event::normal(DESIRED_PHASE, event::updated("desiredPhase")));
    }

    let mut records = match inputs.targets {
        Some(targets) => follow(&old.experiment.container_records, targets),
        None => old.experiment.container_records.clone(),
    };
    let stamp = rfc3339(inputs.now);
    for record in &mut records {
        if inputs.desired.phase == phase::RUN {
            if record.phase != phase::INJECTED && !inputs.applied_by_caller {
                inject(record, &stamp);
                events.push(Event::normal(RECORDS, event::applied(&record.id)));
            }
        } else if record.phase == phase::INJECTED {
            record.phase = phase::NOT_INJECTED.to_string();
            record.recovered_count += 1;
            events.push(Event::normal(RECORDS, event::recovered(&record.id)));
        }
    }
    if records != old.experiment.container_records {
        events.push(Event::records_updated());
    }
    experiment.container_records = records;

    let status = ChaosStatus {
        conditions: conditions(&experiment.container_records, inputs.paused),
        experiment,
        counters: old.counters.clone(),
    };
    Outcome { status, events }
}

/// Marks the record (`id`, `selector_key`) injected, after the caller applied the fault to it
/// (pod-kill: the pod is deleted). Returns the `Applied` event, or None if there is no such
/// record or it already was.
pub fn applied(status: &mut ChaosStatus, id: &str, selector_key: &str, now: Timestamp) -> Option<Event> {
    let record = status
        .experiment
        .container_records
        .iter_mut()
        .find(|r| r.id == id && r.selector_key == selector_key && r.phase != phase::INJECTED)?;
    inject(record, &rfc3339(now));
    status.conditions = conditions(&status.experiment.container_records, paused(&status.conditions));
    Some(Event::normal(RECORDS, event::applied(id)))
}

/// The records awaiting the caller's apply (see [`Inputs::applied_by_caller`]).
pub fn pending(experiment: &Experiment) -> Vec<&Record> {
    if experiment.desired_phase != phase::RUN {
        return Vec::new();
    }
    experiment.container_records.iter().filter(|r| r.phase != phase::INJECTED).collect()
}

/// Chaos Mesh's four conditions, always all present: `Selected` (there are records),
/// `AllInjected`, `AllRecovered` (there are records and every one is in that phase), `Paused`.
/// Upstream builds them from a map, so their order varies; here it is fixed.
pub fn conditions(records: &[Record], paused: bool) -> Vec<Condition> {
    let all = |p: &str| !records.is_empty() && records.iter().all(|r| r.phase == p);
    [
        (condition::SELECTED, !records.is_empty()),
        (condition::ALL_INJECTED, all(phase::INJECTED)),
        (condition::ALL_RECOVERED, all(phase::NOT_INJECTED)),
        (condition::PAUSED, paused),
    ]
    .into_iter()
    .map(|(type_, yes)| Condition {
        type_: type_.to_string(),
        status: if yes { "True" } else { "False" }.to_string(),
        reason: String::new(),
    })
    .collect()
}

/// The records for `targets`: a target already recorded keeps its record (phase, counts), with
/// its pod IP and node brought up to date; a new one gets a record `Not Injected`; a record
/// whose target is gone goes.
fn follow(old: &[Record], targets: &[Target]) -> Vec<Record> {
    let mut targets: Vec<&Target> = targets.iter().collect();
    targets.sort();
    targets.dedup_by(|a, b| a.id == b.id && a.selector_key == b.selector_key);
    targets
        .into_iter()
        .map(|t| {
            let mut record = old
                .iter()
                .find(|r| r.id == t.id && r.selector_key == t.selector_key)
                .cloned()
                .unwrap_or_else(|| Record {
                    id: t.id.clone(),
                    selector_key: t.selector_key.clone(),
                    phase: phase::NOT_INJECTED.to_string(),
                    ..Default::default()
                });
            if !t.pod_ip.is_empty() {
                record.pod_ip.clone_from(&t.pod_ip);
            }
            if !t.node_name.is_empty() {
                record.node_name.clone_from(&t.node_name);
            }
            record
        })
        .collect()
}

fn inject(record: &mut Record, stamp: &str) {
    record.phase = phase::INJECTED.to_string();
    record.injected_count += 1;
    record.injected_at = stamp.to_string();
}

fn paused(conditions: &[Condition]) -> bool {
    conditions.iter().any(|c| c.type_ == condition::PAUSED && c.status == "True")
}

/// A timestamp as Kubernetes writes them (`2026-12-07T10:00:00Z`, whole seconds).
fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
