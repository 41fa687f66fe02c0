//! What every pod-scoped kind shares, with Chaos Mesh's field names: the selector (`selector`),
//! how many of the selected pods are affected (`mode`, `value`), and `duration`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
use serde::{Deserialize, Serialize};

/// Chaos Mesh's `PodSelectorSpec`: every set field must match (they are ANDed); an empty
/// selector matches every pod in the fault's own namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSelectorSpec {
    /// Namespaces the pods must be in. Empty: the fault's own namespace (Chaos Mesh's default
    /// when cluster-scoped selection is off).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Labels the pods must carry (`app: orders`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub label_selectors: BTreeMap<String, String>,
    /// Set-based label requirements (`In`, `NotIn`, `Exists`, `DoesNotExist`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression_selectors: Vec<LabelSelectorRequirement>,
    /// Annotations the pods must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotation_selectors: BTreeMap<String, String>,
    /// Pod fields: `metadata.name`, `spec.nodeName`, `status.podIP`, `status.phase`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub field_selectors: BTreeMap<String, String>,
    /// Pods by name, per namespace (`{default: [client-0]}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pods: BTreeMap<String, Vec<String>>,
    /// The nodes the pods must run on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Labels the pods' nodes must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selectors: BTreeMap<String, String>,
    /// The pod phases (`Running`, `Pending`, ...) the pods must be in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pod_phase_selectors: Vec<String>,
}

/// Chaos Mesh's `SelectorMode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    /// One pod, picked at random among the selected.
    #[default]
    #[serde(rename = "one")]
    One,
    /// Every selected pod.
    #[serde(rename = "all")]
    All,
    /// `value` pods.
    #[serde(rename = "fixed")]
    Fixed,
    /// `value` percent of the selected pods.
    #[serde(rename = "fixed-percent")]
    FixedPercent,
    /// At most `value` percent of the selected pods, at random.
    #[serde(rename = "random-max-percent")]
    RandomMaxPercent,
}

impl Mode {
    /// Every mode, as spelled in manifests.
    pub const NAMES: [&'static str; 5] = ["one", "all", "fixed", "fixed-percent", "random-max-percent"];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::One => "one",
            Mode::All => "all",
            Mode::Fixed => "fixed",
            Mode::FixedPercent => "fixed-percent",
            Mode::RandomMaxPercent => "random-max-percent",
        }
    }
}

/// Chaos Mesh's `PodSelector`: a selector and how many of the pods it selects are affected.
/// Embedded inline in every pod-scoped spec, and as `target` in NetworkChaos.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSelector {
    /// Which pods.
    #[serde(default)]
    pub selector: PodSelectorSpec,
    /// How many of them.
    #[serde(default)]
    pub mode: Mode,
    /// The number (`fixed`) or percentage (`fixed-percent`, `random-max-percent`) for `mode`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}
