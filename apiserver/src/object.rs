//! Stored objects and the metadata work every write shares: decoding Kubernetes JSON through the
//! k8s-openapi type of its resource (so wrong types are rejected and unknown fields dropped, as
//! the real apiserver does), and reading and stamping `metadata`.

use std::collections::BTreeMap;

use bytes::Bytes;
use k8s_openapi::api::{
    apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
    core::v1::{ConfigMap, Event, Namespace, Node, Pod, Service, ServiceAccount},
    discovery::v1::EndpointSlice,
    networking::v1::NetworkPolicy,
};
use netlab_proto::apiserver::v1::{self as pb, Resource};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// One object as the registry holds it: parsed for the server's own use, and encoded once for
/// every reader and watcher.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Its resource.
    pub resource: Resource,
    /// Empty for cluster-scoped objects.
    pub namespace: String,
    /// metadata.name.
    pub name: String,
    /// metadata.resourceVersion.
    pub rv: u64,
    /// metadata.labels, for label selectors.
    pub labels: BTreeMap<String, String>,
    /// The object.
    pub value: Value,
    /// The object's JSON, as served.
    pub json: Bytes,
}

// === impl Stored ===

impl Stored {
    /// Wraps a complete object (metadata already stamped).
    pub fn new(resource: Resource, value: Value) -> Self {
        // Serializing a serde_json::Value cannot fail: its map keys are strings.
        let json = Bytes::from(serde_json::to_vec(&value).unwrap_or_default());
        Self::with_json(resource, value, json)
    }

    /// Parses a stored value back (at startup).
    pub fn from_json(resource: Resource, json: Bytes) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_slice(&json)?;
        Ok(Self::with_json(resource, value, json))
    }

    fn with_json(resource: Resource, value: Value, json: Bytes) -> Self {
        Self {
            resource,
            namespace: namespace(&value).to_string(),
            name: name(&value).to_string(),
            rv: resource_version(&value).unwrap_or(0),
            labels: labels(&value),
            value,
            json,
        }
    }

    /// The wire form.
    pub fn to_proto(&self) -> pb::Object {
        pb::Object {
            resource: self.resource as i32,
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            resource_version: self.rv,
            json: self.json.clone(),
        }
    }
}

/// Decodes a request body into normalized Kubernetes JSON for `resource`: apiVersion and kind are
/// checked (and filled in when absent), and the object goes through its k8s-openapi type.
pub fn decode(resource: Resource, body: &[u8]) -> Result<Value> {
    let kind = resource.kind();
    let version = resource.api_version();
    let cannot = |e: &dyn std::fmt::Display| cannot_handle(resource, e);
    let mut value: Value = serde_json::from_slice(body).map_err(|e| cannot(&e))?;
    let Some(obj) = value.as_object_mut() else {
        return Err(cannot(&"the body is not a JSON object"));
    };
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            obj.insert("kind".into(), kind.into());
        }
        Some(k) if k == kind => {}
        Some(k) => {
            return Err(Error::BadRequest(format!(
                "the API version in the data ({}) does not match the expected API version ({version}): kind {k} is not {kind}",
                obj.get("apiVersion").and_then(Value::as_str).unwrap_or(""),
            )));
        }
    }
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            obj.insert("apiVersion".into(), version.into());
        }
        Some(v) if v == version => {}
        Some(v) => {
            return Err(Error::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({version})"
            )));
        }
    }
    let typed = match resource {
        Resource::Namespaces => through::<Namespace>(value),
        Resource::Nodes => through::<Node>(value),
        Resource::Pods => through::<Pod>(value),
        Resource::Services => through::<Service>(value),
        Resource::EndpointSlices => through::<EndpointSlice>(value),
        Resource::NetworkPolicies => through::<NetworkPolicy>(value),
        Resource::Deployments => through::<Deployment>(value),
        Resource::ReplicaSets => through::<ReplicaSet>(value),
        Resource::StatefulSets => through::<StatefulSet>(value),
        Resource::DaemonSets => through::<DaemonSet>(value),
        Resource::ServiceAccounts => through::<ServiceAccount>(value),
        Resource::ConfigMaps => through::<ConfigMap>(value),
        Resource::Events => through::<Event>(value),
        Resource::Unspecified => return Err(Error::BadRequest("resource is required".into())),
        // The fault kinds are typed after validation ([`typed_chaos`]): their typed decoding
        // would turn an unknown `action` into a decode error instead of the CRD's message.
        _ => Ok(value),
    };
    typed.map_err(|e| cannot(&e))
}

/// A fault object, validated, through its netlab-chaos type: what is stored is exactly what
/// every enforcer decodes, and fields netlab does not model (`device`, `remoteCluster`) are
/// dropped, as the real apiserver prunes fields its schema does not know.
pub fn typed_chaos(resource: Resource, value: Value) -> Result<Value> {
    use netlab_chaos::{
        ComponentChaos, DnsChaos, ExhaustionChaos, NetworkChaos, PodChaos, RegistryChaos, UpstreamDnsChaos,
    };
    let typed = match resource {
        Resource::NetworkChaos => through::<NetworkChaos>(value),
        Resource::DnsChaos => through::<DnsChaos>(value),
        Resource::PodChaos => through::<PodChaos>(value),
        Resource::ComponentChaos => through::<ComponentChaos>(value),
        Resource::RegistryChaos => through::<RegistryChaos>(value),
        Resource::UpstreamDnsChaos => through::<UpstreamDnsChaos>(value),
        Resource::ExhaustionChaos => through::<ExhaustionChaos>(value),
        _ => return Ok(value),
    };
    let mut typed = typed.map_err(|e| cannot_handle(resource, &e))?;
    // The netlab-chaos structs do not carry the type fields.
    if let Some(map) = typed.as_object_mut() {
        map.insert("apiVersion".into(), resource.api_version().into());
        map.insert("kind".into(), resource.kind().into());
    }
    Ok(typed)
}

/// A fault's `status` through its netlab-chaos type, for a status update.
pub fn typed_chaos_status(resource: Resource, status: Value) -> Result<Value> {
    through::<netlab_chaos::ChaosStatus>(status).map_err(|e| cannot_handle(resource, &e))
}

fn through<T: serde::de::DeserializeOwned + serde::Serialize>(v: Value) -> serde_json::Result<Value> {
    serde_json::to_value(serde_json::from_value::<T>(v)?)
}

/// The 400 for a body that does not have the resource's shape.
fn cannot_handle(resource: Resource, e: &dyn std::fmt::Display) -> Error {
    let kind = resource.kind();
    let version = resource.api_version();
    Error::BadRequest(format!(
        "{kind} in version \"{}\" cannot be handled as a {kind}: {e}",
        version.rsplit('/').next().unwrap_or(version)
    ))
}

/// metadata.name, or "".
pub fn name(v: &Value) -> &str {
    v.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("")
}

/// metadata.namespace, or "".
pub fn namespace(v: &Value) -> &str {
    v.pointer("/metadata/namespace").and_then(Value::as_str).unwrap_or("")
}

/// metadata.generateName, or "".
pub fn generate_name(v: &Value) -> &str {
    v.pointer("/metadata/generateName").and_then(Value::as_str).unwrap_or("")
}

/// metadata.resourceVersion as a number; None when empty or absent.
pub fn resource_version(v: &Value) -> Option<u64> {
    v.pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
}

/// metadata.labels.
pub fn labels(v: &Value) -> BTreeMap<String, String> {
    v.pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string()))).collect())
        .unwrap_or_default()
}

/// metadata.finalizers is non-empty.
pub fn has_finalizers(v: &Value) -> bool {
    v.pointer("/metadata/finalizers").and_then(Value::as_array).is_some_and(|f| !f.is_empty())
}

/// The metadata map, created when absent.
pub fn meta_mut(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    // Just made sure v is an object.
    let obj = v.as_object_mut().expect("object");
    let meta = obj.entry("metadata").or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    meta.as_object_mut().expect("metadata object")
}

/// Sets (or removes, for `None`) a metadata field.
pub fn set_meta(v: &mut Value, field: &str, value: Option<Value>) {
    let meta = meta_mut(v);
    match value {
        Some(x) => {
            meta.insert(field.to_string(), x);
        }
        None => {
            meta.remove(field);
        }
    }
}

/// metadata.uid, or "" when the object has none.
pub fn uid(v: &Value) -> &str {
    v.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or_default()
}

/// The current time as Kubernetes writes timestamps (RFC 3339, seconds, `Z`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Five characters from Kubernetes' name alphabet (`bcdfghjklmnpqrstvwxz2456789`), as
/// `generateName` appends.
pub fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let id = uuid::Uuid::new_v4();
    id.as_bytes()[..5].iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_fills_kind_and_rejects_wrong_types() {
        let v =
            decode(Resource::Services, br#"{"metadata":{"name":"orders"},"spec":{"ports":[{"port":80}]}}"#)
                .unwrap();
        assert_eq!(v["kind"], "Service");
        assert_eq!(v["apiVersion"], "v1");
        let err =
            decode(Resource::Services, br#"{"metadata":{"name":"x"},"spec":{"ports":[{"port":"eighty"}]}}"#)
                .unwrap_err();
        assert_eq!(err.reason(), "BadRequest");
        assert!(
            err.to_string().starts_with("Service in version \"v1\" cannot be handled as a Service: "),
            "{err}"
        );
        let err = decode(Resource::Services, br#"{"kind":"Pod","metadata":{"name":"x"}}"#).unwrap_err();
        assert_eq!(err.reason(), "BadRequest");
    }

    #[test]
    fn decode_drops_unknown_fields() {
        let v =
            decode(Resource::ConfigMaps, br#"{"metadata":{"name":"x"},"bogus":1,"data":{"a":"b"}}"#).unwrap();
        assert!(v.get("bogus").is_none());
        assert_eq!(v["data"]["a"], "b");
    }

    #[test]
    fn suffixes_use_the_kubernetes_alphabet() {
        let s = random_suffix();
        assert_eq!(s.len(), 5);
        assert!(s.chars().all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c)));
    }
}
