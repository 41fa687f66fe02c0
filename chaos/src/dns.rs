//! `DNSChaos`: wrong answers from the cluster DNS for the selected pods' queries, as Chaos Mesh's
//! DNSChaos (chaos-coredns) gives them: scoped by the querying pod's IP, for names matching
//! `patterns`. Enforced by `dns`.

use serde::{Deserialize, Serialize};

use crate::{spec::PodSelector, status::ChaosStatus};

/// The DNSChaos spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DnsChaosSpec {
    /// What the DNS answers.
    pub action: DnsAction,
    /// The pods whose queries are affected.
    #[serde(flatten)]
    pub pods: PodSelector,
    /// Names affected, Chaos Mesh-style patterns (`orders.*`, `*.example.com`, `ord?rs`).
    /// Empty: every name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// For `error`: the rcode answered, `SERVFAIL` (Chaos Mesh's, the default), `NXDOMAIN` or
    /// `REFUSED`. A netlab extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rcode: Option<String>,
    /// For `delay`: how long the answer waits, a Go duration. A netlab extension.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// How long the fault stays in force (Go duration). Unset: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

/// What a DNSChaos does to a matching query.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DnsAction {
    /// Answer with an error rcode (Chaos Mesh's `error`).
    #[default]
    Error,
    /// Answer with a random IP (Chaos Mesh's `random`).
    Random,
    /// Do not answer at all: the client times out (netlab).
    Timeout,
    /// Answer correctly, late (netlab).
    Delay,
}

impl DnsAction {
    /// Every action, as spelled in manifests.
    pub const NAMES: [&'static str; 4] = ["error", "random", "timeout", "delay"];

    /// The manifest spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DnsAction::Error => "error",
            DnsAction::Random => "random",
            DnsAction::Timeout => "timeout",
            DnsAction::Delay => "delay",
        }
    }
}

/// The rcodes `error` may answer.
pub const RCODES: [&str; 3] = ["SERVFAIL", "NXDOMAIN", "REFUSED"];

/// A DNSChaos object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DnsChaos {
    /// Standard object metadata.
    pub metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    /// What the fault does and to whom.
    pub spec: DnsChaosSpec,
    /// What it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ChaosStatus>,
}
