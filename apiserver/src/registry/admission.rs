//! Admission: what a write goes through before the writer decides it (upstream's create and
//! update strategies: `PrepareForCreate`, `PrepareForUpdate`, defaulting, validation).
//!
//! Decoding, defaulting and create validation need no committed state, so they run on the
//! caller's task and the single writer only sees objects that can be stored. Update validation
//! compares with the old object, so the writer calls [`validate_update`] once it has it.

use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use crate::{
    defaults,
    error::{Error, Result},
    object,
    validation::{self, FieldError, ValidationOptions},
};

/// Prepares a create before it is queued: decode, namespace, status reset, defaults,
/// validation.
pub fn prepare_create(
    resource: Resource,
    namespace: &str,
    body: &[u8],
    opts: &ValidationOptions,
) -> Result<Value> {
    let mut obj = prepare(resource, namespace, body)?;
    // Status is the system's to write; a create starts without one (upstream PrepareForCreate),
    // except for Nodes, which the kubelet registers with their status.
    if !matches!(resource, Resource::Nodes | Resource::Events)
        && let Some(map) = obj.as_object_mut()
    {
        map.remove("status");
    }
    if resource == Resource::DaemonSets {
        prepare_daemon_set(&mut obj, None);
    }
    defaults::set_defaults(resource, &mut obj);
    let errors = validation::validate(resource, &obj, opts);
    if !errors.is_empty() {
        return Err(invalid(resource, &obj, errors));
    }
    if resource.is_chaos() {
        obj = object::typed_chaos(resource, obj)?;
    }
    Ok(obj)
}

/// Prepares an update before it is queued: decode, namespace, defaults. Validation against the
/// old object happens in the writer ([`validate_update`]).
///
/// A fault is typed here already (after its schema check, so that a bad `action` gets the
/// schema's message rather than a decoding error): its spec is compared with the stored, typed
/// one, and a status update must leave a status every enforcer can read.
pub fn prepare_update(resource: Resource, namespace: &str, body: &[u8], status_only: bool) -> Result<Value> {
    let mut obj = prepare(resource, namespace, body)?;
    if resource.is_chaos() && status_only {
        // Only the status is taken from the body; its spec may be absent.
        if let Some(map) = obj.as_object_mut()
            && let Some(status) = map.remove("status").filter(|s| !s.is_null())
        {
            map.insert("status".into(), object::typed_chaos_status(resource, status)?);
        }
        return Ok(obj);
    }
    defaults::set_defaults(resource, &mut obj);
    if resource.is_chaos() {
        let mut errors = Vec::new();
        validation::chaos::schema(resource, &obj, &mut errors);
        if !errors.is_empty() {
            return Err(invalid(resource, &obj, errors));
        }
        obj = object::typed_chaos(resource, obj)?;
    }
    Ok(obj)
}

/// Validates an update from `old` to `new`; the 422 when it fails.
pub fn validate_update(resource: Resource, old: &Value, new: &Value, opts: &ValidationOptions) -> Result<()> {
    let errors = validation::validate_update(resource, old, new, opts);
    if errors.is_empty() { Ok(()) } else { Err(invalid(resource, new, errors)) }
}

/// The annotation that carries a DaemonSet's internal `spec.templateGeneration` in apps/v1.
pub const DAEMON_SET_TEMPLATE_GENERATION: &str = "deprecated.daemonset.template.generation";

/// The daemonset strategy's part of `PrepareForCreate` and `PrepareForUpdate` that shows in
/// apps/v1: a created DaemonSet gets template generation 1 and the zero status the typed
/// `DaemonSetStatus{}` has (its counts are not optional); an update keeps the old template
/// generation, one more when the template changed. What the client sent is ignored.
pub fn prepare_daemon_set(obj: &mut Value, old: Option<&Value>) {
    let generation = match old {
        None => {
            if let Some(map) = obj.as_object_mut() {
                let zero = serde_json::json!({
                    "currentNumberScheduled": 0,
                    "desiredNumberScheduled": 0,
                    "numberMisscheduled": 0,
                    "numberReady": 0,
                });
                map.insert("status".into(), zero);
            }
            1
        }
        Some(old) => {
            let old_generation = old
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(DAEMON_SET_TEMPLATE_GENERATION))
                .and_then(Value::as_str)
                .and_then(|g| g.parse::<i64>().ok())
                .unwrap_or(0);
            let template = |v: &Value| v.pointer("/spec/template").cloned();
            if template(obj) == template(old) { old_generation } else { old_generation + 1 }
        }
    };
    let meta = object::meta_mut(obj);
    let annotations = meta.entry("annotations").or_insert_with(|| Value::Object(Default::default()));
    if !annotations.is_object() {
        *annotations = Value::Object(Default::default());
    }
    if let Some(a) = annotations.as_object_mut() {
        a.insert(DAEMON_SET_TEMPLATE_GENERATION.into(), generation.to_string().into());
    }
}

/// Decodes the body and settles its namespace against the request's.
fn prepare(resource: Resource, namespace: &str, body: &[u8]) -> Result<Value> {
    let mut obj = object::decode(resource, body)?;
    if resource.namespaced() {
        let in_body = object::namespace(&obj).to_string();
        let ns = match (in_body.as_str(), namespace) {
            ("", "") => "default".to_string(),
            ("", req) => req.to_string(),
            (body, "") => body.to_string(),
            (body, req) if body == req => body.to_string(),
            _ => {
                return Err(Error::BadRequest(
                    "the namespace of the provided object does not match the namespace sent on the request"
                        .into(),
                ));
            }
        };
        object::set_meta(&mut obj, "namespace", Some(ns.into()));
    } else {
        object::set_meta(&mut obj, "namespace", None);
    }
    Ok(obj)
}

/// The 422, named by `metadata.name` or, for a create without one, by `generateName`.
fn invalid(resource: Resource, obj: &Value, errors: Vec<FieldError>) -> Error {
    let name = match object::name(obj) {
        "" => object::generate_name(obj),
        n => n,
    };
    Error::Invalid { kind: resource.kind(), name: name.to_string(), errors }
}
