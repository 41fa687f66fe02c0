//! What a fault reports, in Chaos Mesh's status shape, and the events it records.
//!
//! Chaos Mesh keeps one record per target (`status.experiment.containerRecords`) with its phase
//! and how often it was injected and recovered, conditions summing them up, and the desired phase
//! (`Run` until the duration is up or the experiment is paused, then `Stop`). netlab adds
//! `status.counters`: what each enforcing process did (packets dropped, queries answered with an
//! error, pulls refused), one map per reporter so that reporters never overwrite each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `status` of every fault kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChaosStatus {
    /// `Selected`, `AllInjected`, `AllRecovered`, `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Where the fault is and what it was injected on.
    #[serde(default)]
    pub experiment: Experiment,
    /// Per reporter (`node/node-1`, `dns`, `cloud`), per counter (`packetsDropped`): how many.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters: BTreeMap<String, BTreeMap<String, u64>>,
}

impl ChaosStatus {
    /// Every reporter's counters summed, per counter.
    pub fn totals(&self) -> BTreeMap<&str, u64> {
        let mut sum = BTreeMap::new();
        for counters in self.counters.values() {
            for (name, n) in counters {
                *sum.entry(name.as_str()).or_insert(0) += n;
            }
        }
        sum
    }
}

/// One condition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Selected`, `AllInjected`, `AllRecovered` or `Paused`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// Why, when there is something to say.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Condition types, as Chaos Mesh names them.
pub mod condition {
    /// The selector picked its targets.
    pub const SELECTED: &str = "Selected";
    /// Every target has the fault.
    pub const ALL_INJECTED: &str = "AllInjected";
    /// Every target is back to normal.
    pub const ALL_RECOVERED: &str = "AllRecovered";
    /// The pause annotation holds the experiment.
    pub const PAUSED: &str = "Paused";
}

/// `status.experiment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Experiment {
    /// `Run` while the fault is in force, `Stop` after its duration or while paused.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub desired_phase: String,
    /// One per target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_records: Vec<Record>,
}

/// Desired phases.
pub mod phase {
    /// In force.
    pub const RUN: &str = "Run";
    /// Over (time up or paused).
    pub const STOP: &str = "Stop";
    /// A record's phase once the fault is on its target.
    pub const INJECTED: &str = "Injected";
    /// A record's phase before injection and after recovery.
    pub const NOT_INJECTED: &str = "Not Injected";
}

/// One target: a pod (`default/client-7d9c`), a node's process (`node-1/kube-proxy`), a
/// component (`dns`), the registry (`cloud/registry`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    /// The target.
    pub id: String,
    /// Which selector picked it: `.` for the main one, `.Target` for NetworkChaos' target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub selector_key: String,
    /// `Injected` or `Not Injected`.
    pub phase: String,
    /// Times the fault was put on the target.
    #[serde(default)]
    pub injected_count: u32,
    /// Times it was taken off.
    #[serde(default)]
    pub recovered_count: u32,
    /// For pods: its IP when selected (what the network and DNS enforcers key on).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub pod_ip: String,
    /// For pods: the node it runs on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_name: String,
    /// When it was last injected (RFC 3339).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub injected_at: String,
}

/// The events a fault records on itself, worded as Chaos Mesh words them (reason, message).
pub mod event {
    /// `Applied`: the fault is on a target.
    pub fn applied(id: &str) -> (&'static str, String) {
        ("Applied", format!("Successfully apply chaos for {id}"))
    }

    /// `Recovered`: the fault is off a target.
    pub fn recovered(id: &str) -> (&'static str, String) {
        ("Recovered", format!("Successfully recover chaos for {id}"))
    }

    /// `Failed` (Warning): `activity` (`select targets`, `apply chaos`, `recover chaos`) failed.
    pub fn failed(activity: &str, err: &str) -> (&'static str, String) {
        ("Failed", format!("Failed to {activity}: {err}"))
    }

    /// `Deleted`: the object is being deleted.
    pub fn deleted() -> (&'static str, String) {
        ("Deleted", "Experiment has been deleted".to_string())
    }

    /// `TimeUp`: the duration is over.
    pub fn time_up() -> (&'static str, String) {
        ("TimeUp", "Time up according to the duration".to_string())
    }

    /// `Paused`: the pause annotation was set.
    pub fn paused() -> (&'static str, String) {
        ("Paused", "Experiment has been paused".to_string())
    }

    /// `Started`: the experiment (re)started.
    pub fn started() -> (&'static str, String) {
        ("Started", "Experiment has started".to_string())
    }

    /// `Updated`: the controller wrote `field` (`desiredPhase`, `records`) of the object.
    pub fn updated(field: &str) -> (&'static str, String) {
        ("Updated", format!("Successfully update {field} of resource"))
    }
}

/// Counter names in `status.counters`, shared by every enforcer.
pub mod counter {
    /// Packets (connections, datagrams) a NetworkChaos dropped.
    pub const PACKETS_DROPPED: &str = "packetsDropped";
    /// Packets a NetworkChaos delayed.
    pub const PACKETS_DELAYED: &str = "packetsDelayed";
    /// Packets a NetworkChaos duplicated.
    pub const PACKETS_DUPLICATED: &str = "packetsDuplicated";
    /// Packets a NetworkChaos corrupted.
    pub const PACKETS_CORRUPTED: &str = "packetsCorrupted";
    /// DNS queries answered with an error rcode or a random IP.
    pub const QUERIES_ANSWERED: &str = "queriesAnswered";
    /// DNS queries left unanswered.
    pub const QUERIES_DROPPED: &str = "queriesDropped";
    /// DNS queries answered late.
    pub const QUERIES_DELAYED: &str = "queriesDelayed";
    /// Registry requests refused or failed.
    pub const PULLS_REFUSED: &str = "pullsRefused";
    /// Registry requests answered late.
    pub const PULLS_DELAYED: &str = "pullsDelayed";
    /// Pods deleted, containers killed, pods failed.
    pub const PODS_AFFECTED: &str = "podsAffected";
    /// Requests and connections a stopped or paused component refused or held.
    pub const REQUESTS_REFUSED: &str = "requestsRefused";
    /// Times a process exited for a ComponentChaos `kill` (recorded before the exit, so the
    /// restarted process knows it already did).
    pub const PROCESSES_KILLED: &str = "processesKilled";
    /// Allocations (pod IPs, ClusterIPs, conntrack entries) refused as exhausted.
    pub const ALLOCATIONS_REFUSED: &str = "allocationsRefused";
}
