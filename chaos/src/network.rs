//! `NetworkChaos`: Chaos Mesh's network faults (netem delay, loss, duplicate, corrupt; bandwidth;
//! partition), between the selected pods and a `target` or `externalTargets`, per `direction`.
//!
//! Enforced by the node kernels (and the wire between nodes): the sending node decides for each
//! connection and datagram, so both directions of a flow are judged by the same rules.

use serde::{Deserialize, Serialize};

use crate::{spec::PodSelector, status::ChaosStatus};

/// The NetworkChaos spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkChaosSpec {
    /// What the fault does.
    pub action: NetworkAction,
    /// The pods whose traffic is affected.
    #[serde(flatten)]
    pub pods: PodSelector,
    /// Which way: `to` (from the selected pods to the target, the default), `from` (from the
    /// target to the selected pods) or `both`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// The other side. Unset (and no `externalTargets`): all traffic of the selected pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<PodSelector>,
    /// The other side as IPs, CIDRs or host names outside the selected pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_targets: Vec<String>,
    /// netem delay (action `delay` or `netem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelaySpec>,
    /// netem loss (action `loss` or `netem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossSpec>,
    /// netem duplicate (action `duplicate` or `netem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<DuplicateSpec>,
    /// netem corrupt (action `corrupt` or `netem`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<CorruptSpec>,
    /// tbf bandwidth limit (action `bandwidth`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthSpec>,
    /// How long the fault stays in force (Go duration, `30s`, `5m`). Unset: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// Chaos Mesh's `NetworkChaosAction`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkAction {
    /// Any mix of delay, loss, duplicate and corrupt.
    Netem,
    /// Delay (with jitter and correlation).
    #[default]
    Delay,
    /// Drop a percentage of packets.
    Loss,
    /// Duplicate a percentage of packets.
    Duplicate,
    /// Corrupt a percentage of packets.
    Corrupt,
    /// Drop everything.
    Partition,
    /// Limit the rate.
    Bandwidth,
}

impl NetworkAction {
    /// Every action, as spelled in manifests.
    pub const NAMES: [&'static str; 7] =
        ["netem", "delay", "loss", "duplicate", "corrupt", "partition", "bandwidth"];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkAction::Netem => "netem",
            NetworkAction::Delay => "delay",
            NetworkAction::Loss => "loss",
            NetworkAction::Duplicate => "duplicate",
            NetworkAction::Corrupt => "corrupt",
            NetworkAction::Partition => "partition",
            NetworkAction::Bandwidth => "bandwidth",
        }
    }
}

/// Chaos Mesh's `Direction`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Selected pods → target.
    #[default]
    To,
    /// Target → selected pods.
    From,
    /// Both ways.
    Both,
}

impl Direction {
    /// Every direction, as spelled in manifests.
    pub const NAMES: [&'static str; 3] = ["to", "from", "both"];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::To => "to",
            Direction::From => "from",
            Direction::Both => "both",
        }
    }
}

/// netem delay. Percentages are strings of a decimal number, as in Chaos Mesh (`"25"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelaySpec {
    /// The added latency, a Go duration (`200ms`).
    pub latency: String,
    /// How much each delay depends on the previous one, percent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub correlation: String,
    /// Uniform spread around `latency`, a Go duration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jitter: String,
}

/// netem loss.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LossSpec {
    /// Percent of packets dropped.
    pub loss: String,
    /// Correlation with the previous packet's fate, percent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub correlation: String,
}

/// netem duplicate.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DuplicateSpec {
    /// Percent of packets sent twice.
    pub duplicate: String,
    /// Correlation, percent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub correlation: String,
}

/// netem corrupt.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CorruptSpec {
    /// Percent of packets with a flipped bit.
    pub corrupt: String,
    /// Correlation, percent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub correlation: String,
}

/// tbf bandwidth limit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BandwidthSpec {
    /// The rate, as tc spells it (`1mbps`, `100kbit`).
    pub rate: String,
    /// Bytes that may wait in the queue.
    pub limit: u32,
    /// The bucket size in bytes.
    pub buffer: u32,
}

/// A NetworkChaos object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkChaos {
    /// Standard object metadata.
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// What the fault does and to whom.
    pub spec: NetworkChaosSpec,
    /// What it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChaosStatus>,
}
