//! The lab's own kinds, for what Chaos Mesh cannot reach: a component process
//! ([`ComponentChaos`]), the image registry ([`RegistryChaos`]), the upstream resolver
//! ([`UpstreamDnsChaos`]) and exhausted address ranges and tables ([`ExhaustionChaos`]). They
//! follow Chaos Mesh's conventions (`action`, `duration`, the status shape).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::status::ChaosStatus;

macro_rules! actions {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vdoc])* #[serde(rename = $text)] $variant,)*
        }

        impl $name {
            /// Every value, as spelled in manifests.
            pub const NAMES: &'static [&'static str] = &[$($text),*];

            /// The manifest spelling.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)*
                }
            }

            /// The value for a manifest spelling.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

actions! {
    /// What happens to a component process.
    ComponentAction {
        /// As a stopped process: connections to it are refused, its loops do nothing.
        Stop = "stop",
        /// As a hung (SIGSTOPped) process: connections are accepted and never answered.
        Pause = "pause",
        /// As a killed process: it exits at once (once per fault); its supervisor restarts it.
        Kill = "kill",
    }
}

actions! {
    /// The processes a ComponentChaos can reach.
    Component {
        /// kube-apiserver.
        Apiserver = "apiserver",
        /// kube-controller-manager.
        ControllerManager = "controller-manager",
        /// kube-scheduler.
        Scheduler = "scheduler",
        /// The cluster DNS (CoreDNS).
        Dns = "dns",
        /// The cloud: AWS APIs, the registry, the upstream resolver.
        Cloud = "cloud",
        /// A node's kube-proxy.
        KubeProxy = "kube-proxy",
        /// A node's kubelet.
        Kubelet = "kubelet",
    }
}

impl Component {
    /// Whether there is one per node (`nodes` picks which).
    pub fn per_node(self) -> bool {
        matches!(self, Component::KubeProxy | Component::Kubelet)
    }
}

/// The ComponentChaos spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentChaosSpec {
    /// What happens to it.
    pub action: ComponentAction,
    /// Which process.
    pub component: Component,
    /// For per-node components: which nodes' (empty: every node's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// How long the fault stays in force (Go duration). Unset: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

actions! {
    /// What the registry does to a matching pull.
    RegistryAction {
        /// Answer with `statusCode` (401, 403, 404 manifest unknown, 429 toomanyrequests, 5xx).
        Error = "error",
        /// Answer late, by `delay`.
        Delay = "delay",
        /// Do not answer: connections are refused.
        Unreachable = "unreachable",
    }
}

/// The status codes a RegistryChaos `error` may answer.
pub const REGISTRY_STATUS_CODES: [u16; 7] = [401, 403, 404, 429, 500, 502, 503];

/// The RegistryChaos spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryChaosSpec {
    /// What the registry does.
    pub action: RegistryAction,
    /// Repositories affected, patterns as in DNSChaos (`library/nginx*`). Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub repositories: Vec<String>,
    /// For `error`: the HTTP status answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    /// For `delay`: how late (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// How long the fault stays in force (Go duration). Unset: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

actions! {
    /// What the upstream resolver (outside the cluster) does.
    UpstreamAction {
        /// Nothing answers: queries time out.
        Unreachable = "unreachable",
        /// Answers late, by `delay`.
        Delay = "delay",
        /// Answers SERVFAIL.
        Servfail = "servfail",
    }
}

/// The UpstreamDNSChaos spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamDnsChaosSpec {
    /// What the upstream resolver does.
    pub action: UpstreamAction,
    /// Names affected (DNSChaos patterns). Empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patterns: Vec<String>,
    /// For `delay`: how late (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    /// How long the fault stays in force (Go duration). Unset: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

actions! {
    /// What is used up.
    ExhaustionAction {
        /// The node's pod CIDR: host-local IPAM has no address left.
        PodCidr = "pod-cidr",
        /// The Service CIDR: the apiserver's allocator has no ClusterIP left.
        ServiceCidr = "service-cidr",
        /// The node's conntrack table: new connections are dropped.
        Conntrack = "conntrack",
    }
}

/// The ExhaustionChaos spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExhaustionChaosSpec {
    /// What is used up.
    pub action: ExhaustionAction,
    /// For `pod-cidr` and `conntrack`: which nodes (empty: every node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// How long the fault stays in force (Go duration). Unset: until deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

macro_rules! kinds {
    ($($(#[$doc:meta])* $name:ident($spec:ty)),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// Standard object metadata.
            pub metadata: ObjectMeta,
            /// What the fault does.
            pub spec: $spec,
            /// What it did.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub status: Option<ChaosStatus>,
        }
    )*};
}

kinds! {
    /// A ComponentChaos object.
    ComponentChaos(ComponentChaosSpec),
    /// A RegistryChaos object.
    RegistryChaos(RegistryChaosSpec),
    /// An UpstreamDNSChaos object.
    UpstreamDnsChaos(UpstreamDnsChaosSpec),
    /// An ExhaustionChaos object.
    ExhaustionChaos(ExhaustionChaosSpec),
}
