//! Conversions between the wire enum [`Resource`] and Kubernetes' names for it (kind, plural,
//! apiVersion, scope), which every client needs to build and print Kubernetes-shaped objects.

use crate::apiserver::v1::Resource;

/// The kind in a manifest names no resource the apiserver serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKind(pub String);

impl std::fmt::Display for UnknownKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no matches for kind \"{}\"", self.0)
    }
}

impl std::error::Error for UnknownKind {}

/// Every resource, in a stable order (the order `netlab get all` style listings use).
pub const ALL: [Resource; 20] = [
    Resource::Namespaces,
    Resource::Nodes,
    Resource::Pods,
    Resource::Services,
    Resource::EndpointSlices,
    Resource::NetworkPolicies,
    Resource::Deployments,
    Resource::ReplicaSets,
    Resource::StatefulSets,
    Resource::DaemonSets,
    Resource::ServiceAccounts,
    Resource::ConfigMaps,
    Resource::Events,
    Resource::NetworkChaos,
    Resource::DnsChaos,
    Resource::PodChaos,
    Resource::ComponentChaos,
    Resource::RegistryChaos,
    Resource::UpstreamDnsChaos,
    Resource::ExhaustionChaos,
];

/// The fault kinds (`chaos.netlab.io/v1alpha1`), in [`ALL`]'s order.
pub const CHAOS: [Resource; 7] = [
    Resource::NetworkChaos,
    Resource::DnsChaos,
    Resource::PodChaos,
    Resource::ComponentChaos,
    Resource::RegistryChaos,
    Resource::UpstreamDnsChaos,
    Resource::ExhaustionChaos,
];

// === impl Resource ===

impl Resource {
    /// The Kubernetes kind, e.g. `Service`.
    pub fn kind(self) -> &'static str {
        match self {
            Resource::Unspecified => "",
            Resource::Namespaces => "Namespace",
            Resource::Nodes => "Node",
            Resource::Pods => "Pod",
            Resource::Services => "Service",
            Resource::EndpointSlices => "EndpointSlice",
            Resource::NetworkPolicies => "NetworkPolicy",
            Resource::Deployments => "Deployment",
            Resource::ReplicaSets => "ReplicaSet",
            Resource::StatefulSets => "StatefulSet",
            Resource::DaemonSets => "DaemonSet",
            Resource::ServiceAccounts => "ServiceAccount",
            Resource::ConfigMaps => "ConfigMap",
            Resource::Events => "Event",
            Resource::NetworkChaos => "NetworkChaos",
            Resource::DnsChaos => "DNSChaos",
            Resource::PodChaos => "PodChaos",
            Resource::ComponentChaos => "ComponentChaos",
            Resource::RegistryChaos => "RegistryChaos",
            Resource::UpstreamDnsChaos => "UpstreamDNSChaos",
            Resource::ExhaustionChaos => "ExhaustionChaos",
        }
    }

    /// The lower-case plural resource name, e.g. `services`, as in `services "orders" not found`.
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Unspecified => "",
            Resource::Namespaces => "namespaces",
            Resource::Nodes => "nodes",
            Resource::Pods => "pods",
            Resource::Services => "services",
            Resource::EndpointSlices => "endpointslices",
            Resource::NetworkPolicies => "networkpolicies",
            Resource::Deployments => "deployments",
            Resource::ReplicaSets => "replicasets",
            Resource::StatefulSets => "statefulsets",
            Resource::DaemonSets => "daemonsets",
            Resource::ServiceAccounts => "serviceaccounts",
            Resource::ConfigMaps => "configmaps",
            Resource::Events => "events",
            // Chaos Mesh's CRDs use the kind's lower case as plural too (`networkchaos`).
            Resource::NetworkChaos => "networkchaos",
            Resource::DnsChaos => "dnschaos",
            Resource::PodChaos => "podchaos",
            Resource::ComponentChaos => "componentchaos",
            Resource::RegistryChaos => "registrychaos",
            Resource::UpstreamDnsChaos => "upstreamdnschaos",
            Resource::ExhaustionChaos => "exhaustionchaos",
        }
    }

    /// The API group, empty for the core group. kubectl prints `deployment.apps/orders`.
    pub fn group(self) -> &'static str {
        match self {
            Resource::EndpointSlices => "discovery.k8s.io",
            Resource::NetworkPolicies => "networking.k8s.io",
            Resource::Deployments | Resource::ReplicaSets | Resource::StatefulSets | Resource::DaemonSets => {
                "apps"
            }
            r if r.is_chaos() => "chaos.netlab.io",
            _ => "",
        }
    }

    /// The group-qualified plural, as Go's `GroupResource.String()` writes it and the
    /// apiserver's messages name it: `deployments.apps`, `services`.
    pub fn group_resource(self) -> String {
        match self.group() {
            "" => self.plural().to_string(),
            group => format!("{}.{group}", self.plural()),
        }
    }

    /// The apiVersion objects of this resource carry, e.g. `apps/v1`.
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            "discovery.k8s.io" => "discovery.k8s.io/v1",
            "networking.k8s.io" => "networking.k8s.io/v1",
            "chaos.netlab.io" => "chaos.netlab.io/v1alpha1",
            _ => "apps/v1",
        }
    }

    /// Whether this is one of the fault kinds (`chaos.netlab.io`).
    pub fn is_chaos(self) -> bool {
        CHAOS.contains(&self)
    }

    /// Whether objects live in a namespace (everything but Namespace and Node).
    pub fn namespaced(self) -> bool {
        !matches!(self, Resource::Namespaces | Resource::Nodes | Resource::Unspecified)
    }

    /// The resource for a manifest's `kind`.
    pub fn from_kind(kind: &str) -> Result<Self, UnknownKind> {
        ALL.into_iter().find(|r| r.kind() == kind).ok_or_else(|| UnknownKind(kind.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for r in ALL {
            assert_eq!(Resource::from_kind(r.kind()), Ok(r));
        }
        assert_eq!(
            Resource::from_kind("Ingress").unwrap_err().to_string(),
            "no matches for kind \"Ingress\""
        );
    }

    #[test]
    fn scope_and_versions() {
        assert!(!Resource::Nodes.namespaced());
        assert!(Resource::Pods.namespaced());
        assert_eq!(Resource::Deployments.api_version(), "apps/v1");
        assert_eq!(Resource::DaemonSets.api_version(), "apps/v1");
        assert_eq!(Resource::DaemonSets.group_resource(), "daemonsets.apps");
        assert_eq!(Resource::EndpointSlices.api_version(), "discovery.k8s.io/v1");
        assert_eq!(Resource::Services.api_version(), "v1");
        assert_eq!(Resource::DnsChaos.api_version(), "chaos.netlab.io/v1alpha1");
        assert!(Resource::PodChaos.namespaced() && Resource::PodChaos.is_chaos());
    }
}
