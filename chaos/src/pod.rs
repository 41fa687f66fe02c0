//! `PodChaos`: Chaos Mesh's pod faults. `pod-kill` deletes the pods (their controller makes new
//! ones), `container-kill` kills containers (the kubelet restarts them, into CrashLoopBackOff when
//! repeated), `pod-failure` makes the pods' apps stop answering (and readiness fail) for the
//! duration. Enforced by the kubelets.

use serde::{Deserialize, Serialize};

use crate::{spec::PodSelector, status::ChaosStatus};

/// The PodChaos spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodChaosSpec {
    /// What happens to the pods.
    pub action: PodAction,
    /// The pods.
    #[serde(flatten)]
    pub pods: PodSelector,
    /// For `container-kill`: which containers (required there, as in Chaos Mesh).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_names: Vec<String>,
    /// For `pod-kill`: the deletion's grace period in seconds (0: at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_period: Option<i64>,
    /// How long the fault stays in force (Go duration). Unset: until deleted. For `pod-kill`
    /// and `container-kill` the kill is done once per pod it selects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// Chaos Mesh's `PodChaosAction`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PodAction {
    /// Delete the pods.
    #[default]
    PodKill,
    /// The pods stop answering, and fail readiness, for the duration.
    PodFailure,
    /// Kill containers; the kubelet restarts them.
    ContainerKill,
}

impl PodAction {
    /// Every action, as spelled in manifests.
    pub const NAMES: [&'static str; 3] = ["pod-kill", "pod-failure", "container-kill"];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PodAction::PodKill => "pod-kill",
            PodAction::PodFailure => "pod-failure",
            PodAction::ContainerKill => "container-kill",
        }
    }
}

/// A PodChaos object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PodChaos {
    /// Standard object metadata.
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// What the fault does and to whom.
    pub spec: PodChaosSpec,
    /// What it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChaosStatus>,
}
