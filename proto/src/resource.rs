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
pub const ALL: [Resource; 12] = [
    Resource::Namespaces,
    Resource::Nodes,
    Resource::Pods,
    Resource::Services,
    Resource::EndpointSlices,
    Resource::NetworkPolicies,
    Resource::Deployments,
    Resource::ReplicaSets,
    Resource::StatefulSets,
    Resource::ServiceAccounts,
    Resource::ConfigMaps,
    Resource::Events,
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
            Resource::ServiceAccounts => "ServiceAccount",
            Resource::ConfigMaps => "ConfigMap",
            Resource::Events => "Event",
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
            Resource::ServiceAccounts => "serviceaccounts",
            Resource::ConfigMaps => "configmaps",
            Resource::Events => "events",
        }
    }

    /// The API group, empty for the core group. kubectl prints `deployment.apps/orders`.
    pub fn group(self) -> &'static str {
        match self {
            Resource::EndpointSlices => "discovery.k8s.io",
            Resource::NetworkPolicies => "networking.k8s.io",
            Resource::Deployments | Resource::ReplicaSets | Resource::StatefulSets => "apps",
            _ => "",
        }
    }

    /// The apiVersion objects of this resource carry, e.g. `apps/v1`.
    pub fn api_version(self) -> &'static str {
        match self.group() {
            "" => "v1",
            "discovery.k8s.io" => "discovery.k8s.io/v1",
            "networking.k8s.io" => "networking.k8s.io/v1",
            _ => "apps/v1",
        }
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
        assert_eq!(Resource::EndpointSlices.api_version(), "discovery.k8s.io/v1");
        assert_eq!(Resource::Services.api_version(), "v1");
    }
}
