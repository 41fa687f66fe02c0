//! The fault kinds as API objects: what the apiserver client needs to store, list and watch them
//! ([`netlab_client::Object`]), what every kind answers alike ([`Chaos`]), and [`Fault`], any one
//! of them, for code that handles every kind (the CLI, the chaos controller).

use k8s_openapi::{Metadata, NamespaceResourceScope, apimachinery::pkg::apis::meta::v1::ObjectMeta};
use netlab_proto::apiserver::v1::Resource;
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    ComponentChaos, DnsChaos, ExhaustionChaos, NetworkChaos, PodChaos, RegistryChaos, UpstreamDnsChaos,
    spec::PodSelector, status::ChaosStatus,
};

/// What every fault kind answers alike.
pub trait Chaos: netlab_client::Object {
    /// `status`, created when absent.
    fn status_mut(&mut self) -> &mut ChaosStatus;
    /// `status`, if any.
    fn status(&self) -> Option<&ChaosStatus>;
    /// `spec.duration`.
    fn duration(&self) -> Option<&str>;
    /// `spec.action`, as spelled in manifests.
    fn action(&self) -> &'static str;
    /// The pods it selects, for pod-scoped kinds.
    fn pod_selector(&self) -> Option<&PodSelector>;
}

macro_rules! chaos_kinds {
    ($($ty:ident => $res:ident, $kind:literal, $plural:literal, |$s:ident| $pods:expr;)*) => {$(
        impl k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str = crate::API_VERSION;
            const GROUP: &'static str = crate::GROUP;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = "v1alpha1";
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = NamespaceResourceScope;
        }

        impl Metadata for $ty {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }

        impl netlab_client::Object for $ty {
            const RESOURCE: Resource = Resource::$res;
        }

        impl Chaos for $ty {
            fn status_mut(&mut self) -> &mut ChaosStatus {
                self.status.get_or_insert_with(Default::default)
            }
            fn status(&self) -> Option<&ChaosStatus> {
                self.status.as_ref()
            }
            fn duration(&self) -> Option<&str> {
                self.spec.duration.as_deref()
            }
            fn action(&self) -> &'static str {
                self.spec.action.as_str()
            }
            fn pod_selector(&self) -> Option<&PodSelector> {
                let $s = self;
                $pods
            }
        }
    )*

        /// Any one fault.
        // Unboxed: a Fault is one decoded object handed around whole, never stored in bulk.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq)]
        pub enum Fault {
            $(
                #[doc = concat!("A ", $kind, ".")]
                $ty($ty),
            )*
        }

        impl Fault {
            /// Decodes an object of a fault resource from its JSON.
            pub fn from_json(resource: Resource, json: &[u8]) -> Result<Self, DecodeError> {
                match resource {
                    $(Resource::$res => Ok(Fault::$ty(decode(resource, json)?)),)*
                    other => Err(DecodeError::NotChaos(other.kind())),
                }
            }

            /// Its resource.
            pub fn resource(&self) -> Resource {
                match self {
                    $(Fault::$ty(_) => Resource::$res,)*
                }
            }

            /// Its metadata.
            pub fn metadata(&self) -> &ObjectMeta {
                match self {
                    $(Fault::$ty(f) => &f.metadata,)*
                }
            }

            /// Its status, if any.
            pub fn status(&self) -> Option<&ChaosStatus> {
                match self {
                    $(Fault::$ty(f) => f.status.as_ref(),)*
                }
            }

            /// `spec.action`.
            pub fn action(&self) -> &'static str {
                match self {
                    $(Fault::$ty(f) => f.action(),)*
                }
            }

            /// `spec.duration`.
            pub fn duration(&self) -> Option<&str> {
                match self {
                    $(Fault::$ty(f) => f.duration(),)*
                }
            }

            /// The pods it selects, for pod-scoped kinds.
            pub fn pod_selector(&self) -> Option<&PodSelector> {
                match self {
                    $(Fault::$ty(f) => f.pod_selector(),)*
                }
            }
        }
    };
}

chaos_kinds! {
    NetworkChaos => NetworkChaos, "NetworkChaos", "networkchaos", |s| Some(&s.spec.pods);
    DnsChaos => DnsChaos, "DNSChaos", "dnschaos", |s| Some(&s.spec.pods);
    PodChaos => PodChaos, "PodChaos", "podchaos", |s| Some(&s.spec.pods);
    ComponentChaos => ComponentChaos, "ComponentChaos", "componentchaos", |_s| None;
    RegistryChaos => RegistryChaos, "RegistryChaos", "registrychaos", |_s| None;
    UpstreamDnsChaos => UpstreamDnsChaos, "UpstreamDNSChaos", "upstreamdnschaos", |_s| None;
    ExhaustionChaos => ExhaustionChaos, "ExhaustionChaos", "exhaustionchaos", |_s| None;
}

/// An object could not be read as a fault.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The resource is not a fault kind.
    #[error("{0} is not a chaos.netlab.io kind")]
    NotChaos(&'static str),
    /// The JSON does not have the kind's shape.
    #[error("decoding {kind}: {source}")]
    Json {
        /// The kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

fn decode<T: DeserializeOwned + Serialize>(resource: Resource, json: &[u8]) -> Result<T, DecodeError> {
    serde_json::from_slice(json).map_err(|source| DecodeError::Json { kind: resource.kind(), source })
}

#[cfg(test)]
mod tests {
    use netlab_client::Object;

    use super::*;
    use crate::{network::NetworkAction, pod::PodAction, spec::Mode};

    #[test]
    fn chaos_mesh_manifests_read_as_is() {
        let json = br#"{
            "apiVersion": "chaos.netlab.io/v1alpha1", "kind": "NetworkChaos",
            "metadata": {"name": "delay", "namespace": "default"},
            "spec": {"action": "delay", "mode": "all",
                     "selector": {"namespaces": ["default"], "labelSelectors": {"app": "client"}},
                     "delay": {"latency": "200ms", "jitter": "50ms", "correlation": "25"},
                     "direction": "to",
                     "target": {"mode": "all", "selector": {"labelSelectors": {"app": "orders"}}},
                     "duration": "60s"}
        }"#;
        let Fault::NetworkChaos(f) = Fault::from_json(Resource::NetworkChaos, json).unwrap() else {
            panic!("not a NetworkChaos")
        };
        assert_eq!(f.spec.action, NetworkAction::Delay);
        assert_eq!(f.spec.pods.mode, Mode::All);
        assert_eq!(f.spec.pods.selector.label_selectors["app"], "client");
        assert_eq!(f.spec.delay.as_ref().unwrap().jitter, "50ms");
        assert_eq!(f.spec.target.as_ref().unwrap().selector.label_selectors["app"], "orders");
        assert_eq!(f.duration(), Some("60s"));
        assert_eq!(<NetworkChaos as Object>::RESOURCE, Resource::NetworkChaos);

        let pod = br#"{"metadata": {"name": "kill"}, "spec": {"action": "container-kill", "mode": "one",
            "selector": {}, "containerNames": ["app"]}}"#;
        let Fault::PodChaos(p) = Fault::from_json(Resource::PodChaos, pod).unwrap() else { panic!() };
        assert_eq!(p.spec.action, PodAction::ContainerKill);
        assert_eq!(p.action(), "container-kill");
    }

    #[test]
    fn kinds_agree_with_the_resource_table() {
        assert_eq!(<DnsChaos as k8s_openapi::Resource>::KIND, Resource::DnsChaos.kind());
        assert_eq!(<UpstreamDnsChaos as k8s_openapi::Resource>::KIND, Resource::UpstreamDnsChaos.kind());
        assert_eq!(
            <ExhaustionChaos as k8s_openapi::Resource>::URL_PATH_SEGMENT,
            Resource::ExhaustionChaos.plural()
        );
        assert!(matches!(Fault::from_json(Resource::Pods, b"{}"), Err(DecodeError::NotChaos("Pod"))));
    }
}
