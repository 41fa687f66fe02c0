//! Which k8s-openapi types the apiserver serves, and their JSON on the wire.

use bytes::Bytes;
use k8s_openapi::{
    Metadata,
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        core::v1::{ConfigMap, Event, Namespace, Node, Pod, Service, ServiceAccount},
        discovery::v1::EndpointSlice,
        networking::v1::NetworkPolicy,
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_proto::apiserver::v1::Resource;
use serde::{Serialize, de::DeserializeOwned};

use crate::{Error, Result};

/// A Kubernetes type the apiserver stores.
pub trait Object:
    k8s_openapi::Resource
    + Metadata<Ty = ObjectMeta>
    + Serialize
    + DeserializeOwned
    + Clone
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// Its apiserver resource.
    const RESOURCE: Resource;
}

macro_rules! objects {
    ($($ty:ty => $res:ident),* $(,)?) => {
        $(impl Object for $ty { const RESOURCE: Resource = Resource::$res; })*
    };
}

objects! {
    Namespace => Namespaces,
    Node => Nodes,
    Pod => Pods,
    Service => Services,
    EndpointSlice => EndpointSlices,
    NetworkPolicy => NetworkPolicies,
    Deployment => Deployments,
    ReplicaSet => ReplicaSets,
    StatefulSet => StatefulSets,
    DaemonSet => DaemonSets,
    ServiceAccount => ServiceAccounts,
    ConfigMap => ConfigMaps,
    Event => Events,
}

/// `namespace/name` (or `name` for cluster-scoped objects): the key caches and queues use.
pub fn key_of<K: Object>(obj: &K) -> String {
    let meta = obj.metadata();
    match meta.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => format!("{ns}/{}", meta.name.as_deref().unwrap_or("")),
        _ => meta.name.clone().unwrap_or_default(),
    }
}

pub(crate) fn namespace_of<K: Object>(obj: &K) -> String {
    obj.metadata().namespace.clone().unwrap_or_default()
}

pub(crate) fn encode<K: Object>(obj: &K) -> Result<Bytes> {
    serde_json::to_vec(obj)
        .map(Bytes::from)
        .map_err(|e| Error::Decode { kind: K::KIND, source: std::sync::Arc::new(e) })
}

pub(crate) fn decode<K: Object>(json: &[u8]) -> Result<K> {
    serde_json::from_slice(json).map_err(|e| Error::Decode { kind: K::KIND, source: std::sync::Arc::new(e) })
}
