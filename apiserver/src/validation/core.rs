//! pkg/apis/core/validation: the core/v1 resources. Namespace, ConfigMap and Event are checked
//! here; Node, Service and Pod, each large, have their own module, and the checks that Service,
//! Pod and EndpointSlice share (ports, endpoint IPs) are leaves of their own.
//!
//! # Layout
//! - [`node`]: Node, its taints, its updates. [`service`]: Service and its updates.
//! - [`pod`]: Pod, PodSpec, pod templates (which apps/v1 reuses), Pod updates.
//! - [`port`]: protocols and `ValidatePortNumOrName`. [`ip`]: `ValidateNonSpecialIP`.

use serde_json::Value;

use super::{
    field::FieldError,
    format::{MAX_CONFIG_MAP_SIZE, is_config_map_key, is_dns1123_subdomain, is_qualified_name},
    json::{arr, boolean, get, meta_of, s, sem_eq, spec_of, string_map},
    meta::{NameKind, validate_kube_finalizer_name, validate_object_meta, validate_object_meta_update},
};

pub mod ip;
pub mod node;
pub mod pod;
pub mod port;
pub mod service;

pub(crate) fn validate_namespace(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, false, NameKind::Label, errs);
    for f in arr(spec_of(obj), "finalizers").iter().filter_map(Value::as_str) {
        validate_kube_finalizer_name(f, "spec.finalizers", errs);
    }
}

pub(crate) fn validate_config_map(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    let data = string_map(obj, "data");
    let binary = string_map(obj, "binaryData");
    let mut total = 0;
    for (k, v) in &data {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(format!("data[{k}]"), k.as_str(), m));
        }
        if binary.contains_key(k) {
            errs.push(FieldError::invalid(
                format!("data[{k}]"),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.len();
    }
    for (k, v) in &binary {
        for m in is_config_map_key(k) {
            errs.push(FieldError::invalid(format!("binaryData[{k}]"), k.as_str(), m));
        }
        // binaryData travels base64-encoded; the limit is on the decoded bytes.
        let padding = v.bytes().rev().take_while(|&b| b == b'=').count();
        total += (v.len() / 4 * 3).saturating_sub(padding);
    }
    if total > MAX_CONFIG_MAP_SIZE {
        // Upstream reports this on field.NewPath(""), which prints as "[]".
        errs.push(FieldError::too_long("[]", MAX_CONFIG_MAP_SIZE));
    }
}

pub(crate) fn validate_config_map_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta_update(old, new, errs);
    if boolean(old, "immutable") {
        if !boolean(new, "immutable") {
            errs.push(FieldError::forbidden("immutable", "field is immutable when `immutable` is set"));
        }
        for f in ["data", "binaryData"] {
            if !sem_eq(old.get(f), new.get(f)) {
                errs.push(FieldError::forbidden(f, "field is immutable when `immutable` is set"));
            }
        }
    }
    validate_config_map(new, errs);
}

/// Core/v1 Events get only the legacy checks upstream (`legacyValidateEvent`); their names are not
/// format-checked.
pub(crate) fn validate_event(obj: &Value, errs: &mut Vec<FieldError>) {
    if s(meta_of(obj), "name").is_empty() && s(meta_of(obj), "generateName").is_empty() {
        errs.push(FieldError::required("metadata.name", "name or generateName is required"));
    }
    let ns = s(meta_of(obj), "namespace");
    let involved_ns = obj.get("involvedObject").map(|o| s(o, "namespace")).unwrap_or("");
    let mismatch =
        || FieldError::invalid("involvedObject.namespace", involved_ns, "does not match event.namespace");
    if get(obj, "eventTime").is_none() {
        if involved_ns.is_empty() {
            if !ns.is_empty() && ns != "default" {
                errs.push(mismatch());
            }
        } else if ns != involved_ns {
            errs.push(mismatch());
        }
    } else {
        if involved_ns.is_empty() && ns != "default" && ns != "kube-system" {
            errs.push(mismatch());
        }
        let rc = s(obj, "reportingComponent");
        if rc.is_empty() {
            errs.push(FieldError::required("reportingController", ""));
        }
        for m in is_qualified_name(rc) {
            errs.push(FieldError::invalid("reportingController", rc, m));
        }
        let limits = [
            ("reportingInstance", 128, true),
            ("action", 128, true),
            ("reason", 128, true),
            ("message", 1024, false),
        ];
        for (f, max, required) in limits {
            let v = s(obj, f);
            if required && v.is_empty() {
                errs.push(FieldError::required(f, ""));
            }
            if v.len() > max {
                errs.push(FieldError::invalid(f, "", format!("can have at most {max} characters")));
            }
        }
    }
    for m in is_dns1123_subdomain(ns) {
        errs.push(FieldError::invalid("namespace", ns, m));
    }
}
