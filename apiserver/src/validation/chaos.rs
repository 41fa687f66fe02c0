//! The chaos.netlab.io kinds, checked as a cluster with Chaos Mesh's CRDs and admission webhooks
//! checks them (chaos-mesh `config/crd/bases/*`, `api/v1alpha1/*_webhook.go`), and the lab's own
//! kinds in the same manner.
//!
//! A real apiserver runs, in order: Chaos Mesh's mutating webhook (its defaults, which netlab
//! applies in [`crate::defaults`]), the CRD's OpenAPI schema ([`schema`]: types, enums, required
//! fields, patterns, minimums) and, only for an object that passed the schema, the validating
//! webhook (the `Validate` methods: `value` per `mode`, durations, percentages, `direction`
//! against `target`, `containerNames`, the immutable spec). [`validate`] and
//! [`validate_update`] keep that order, so an object gets the errors a real cluster would give
//! it, and only those.
//!
//! Two consequences of the mutating webhook that look odd but are real: it re-encodes the object
//! from Go structs, so a missing `action` or `mode` arrives at the schema as `""` and is refused
//! as `spec.mode: Unsupported value: ""` rather than `Required value` (chaos-mesh/chaos-mesh
//! issue 2816 shows exactly that), and a missing `selector` is never missing (it gets the
//! object's namespace).
//!
//! Where netlab answers differently, on purpose:
//! - Paths are JSON paths (`spec.duration`, `spec.value`, `spec.loss.loss`). Chaos Mesh's
//!   webhook builds its paths from Go struct fields (`Spec.Duration`, `Spec.PodSelector.value`,
//!   `Spec.TcParameter.Loss.Loss`), which name nothing a manifest has; the detail texts after
//!   the path are Chaos Mesh's own, word for word.
//! - A real apiserver reports a webhook's refusal as 403 Forbidden (`admission webhook "<the
//!   webhook's name>" denied the request: <errors>`); netlab has no webhooks and reports it as
//!   the 422 Invalid with one cause per field that the schema's errors get, so both read alike.
//! - Things Chaos Mesh accepts and then fails to inject (an `Failed to apply chaos` event) are
//!   refused up front, because netlab's enforcers could do nothing with them: a `delay` action
//!   without `delay`, a percentage outside 0-100, a DNS pattern its trie would refuse. Each is
//!   marked where it is checked.
//! - DNSChaos's actions add `timeout` and `delay` (and `rcode`, `delay` fields) to Chaos Mesh's
//!   `error` and `random`.
//!
//! The lab's own kinds (ComponentChaos, RegistryChaos, UpstreamDNSChaos, ExhaustionChaos) have
//! no mutating webhook in front of them, so their missing fields are `Required value`.

use netlab_chaos::{
    dns::{DnsAction, RCODES},
    lab::{
        Component, ComponentAction, ExhaustionAction, REGISTRY_STATUS_CODES, RegistryAction, UpstreamAction,
    },
    network::{Direction, NetworkAction},
    pod::PodAction,
    spec::Mode,
};
use netlab_proto::apiserver::v1::Resource;
use serde_json::Value;

use self::{
    schema::{child, integer, object, one_of, required, string, string_list_map, string_map, strings},
    strconv::{atoi, parse_float32, parse_uint},
};
use super::{
    field::FieldError,
    json::{NULL, get, s, sem_eq, spec_of},
    meta::{NameKind, validate_object_meta, validate_object_meta_update},
};

mod schema;
mod strconv;

#[cfg(test)]
mod tests;

/// `DelaySpec`'s CRD pattern for `latency` and `jitter`.
const LATENCY_PATTERN: &str = r"^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$";

/// Chaos Mesh's `ErrCanNotUpdateChaos`.
const CANNOT_UPDATE: &str = "Cannot update chaos spec";

/// Validates a fault being created. Call it after [`crate::defaults::set_defaults`].
pub(crate) fn validate(resource: Resource, obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    schema(resource, obj, errs);
    if errs.is_empty() {
        webhook(resource, spec_of(obj), errs);
    }
}

/// Validates an update: metadata and schema as on create, then, as Chaos Mesh's
/// `ValidateUpdate`, the spec may not change at all (pause with the annotation, or delete and
/// create again).
pub(crate) fn validate_update(resource: Resource, old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(new, true, NameKind::Subdomain, errs);
    validate_object_meta_update(old, new, errs);
    schema(resource, new, errs);
    if !errs.is_empty() {
        return;
    }
    if !sem_eq(old.get("spec"), new.get("spec")) {
        // A bare error from the webhook upstream (no field); `spec` is the field it is about.
        errs.push(FieldError::forbidden("spec", CANNOT_UPDATE));
        return;
    }
    webhook(resource, spec_of(new), errs);
}

/// The schema checks that come before any webhook; exposed so that an update is checked before
/// it is typed ([`crate::registry::admission`]).
pub(crate) fn schema(resource: Resource, obj: &Value, errs: &mut Vec<FieldError>) {
    if !required(obj, "spec", "", errs) {
        return;
    }
    let Some(spec) = object(obj, "spec", "", errs) else {
        return;
    };
    match resource {
        Resource::NetworkChaos => network_schema(spec, errs),
        Resource::DnsChaos => dns_schema(spec, errs),
        Resource::PodChaos => pod_schema(spec, errs),
        Resource::ComponentChaos => component_schema(spec, errs),
        Resource::RegistryChaos => registry_schema(spec, errs),
        Resource::UpstreamDnsChaos => upstream_schema(spec, errs),
        Resource::ExhaustionChaos => exhaustion_schema(spec, errs),
        _ => {}
    }
}

/// The validating webhook's checks (and, for the lab's kinds, their semantic checks).
fn webhook(resource: Resource, spec: &Value, errs: &mut Vec<FieldError>) {
    match resource {
        Resource::NetworkChaos => network_webhook(spec, errs),
        Resource::DnsChaos => dns_webhook(spec, errs),
        Resource::PodChaos => pod_webhook(spec, errs),
        Resource::ComponentChaos => component_webhook(spec, errs),
        Resource::RegistryChaos => registry_webhook(spec, errs),
        Resource::UpstreamDnsChaos => upstream_webhook(spec, errs),
        Resource::ExhaustionChaos => exhaustion_webhook(spec, errs),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// What the pod-scoped kinds share: PodSelector, Duration
// ---------------------------------------------------------------------------------------------

/// `PodSelector` (inline in the spec, and NetworkChaos' `target`): `selector`, `mode`, `value`.
fn pod_selector_schema(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if required(sel, "mode", path, errs) {
        one_of(sel, "mode", path, &Mode::NAMES, errs);
    }
    string(sel, "value", path, errs);
    if required(sel, "selector", path, errs)
        && let Some(spec) = object(sel, "selector", path, errs)
    {
        selector_spec_schema(spec, &child(path, "selector"), errs);
    }
}

/// `PodSelectorSpec`'s field types.
fn selector_spec_schema(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for key in ["namespaces", "nodes", "podPhaseSelectors"] {
        strings(sel, key, path, errs);
    }
    for key in ["labelSelectors", "annotationSelectors", "fieldSelectors", "nodeSelectors"] {
        string_map(sel, key, path, errs);
    }
    string_list_map(sel, "pods", path, errs);
    let Some(items) = schema::array(sel, "expressionSelectors", path, errs) else {
        return;
    };
    let exprs = child(path, "expressionSelectors");
    for (i, req) in items.iter().enumerate() {
        let p = format!("{exprs}[{i}]");
        if !req.is_object() {
            errs.push(schema::wrong_type(&p, req, "object"));
            continue;
        }
        for key in ["key", "operator"] {
            if required(req, key, &p, errs) {
                string(req, key, &p, errs);
            }
        }
        strings(req, "values", &p, errs);
    }
}

/// `PodSelector.Validate`: `value` must suit `mode` (not checked for `one` and `all`).
fn pod_selector_webhook(sel: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mode = s(sel, "mode");
    let value = s(sel, "value");
    let path = child(path, "value");
    let parsed = match mode {
        "fixed" | "fixed-percent" | "random-max-percent" => atoi(value),
        _ => return,
    };
    match parsed {
        Err(e) => errs.push(FieldError::invalid(path, value, format!("parse value field error:{e}"))),
        Ok(n) if mode == "fixed" && n <= 0 => {
            errs.push(FieldError::invalid(path, value, "value must be greater than 0 with mode:fixed"));
        }
        Ok(n) if mode != "fixed" && !(1..=100).contains(&n) => errs.push(FieldError::invalid(
            path,
            value,
            format!("value of {n} is invalid, Must be (0,100] with mode:{mode}"),
        )),
        Ok(_) => {}
    }
}

/// The `Duration` webhook check, on any Go duration field; empty is not checked.
fn duration(parent: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    let text = s(parent, key);
    if text.is_empty() {
        return;
    }
    // netlab's parser is Go's `time.ParseDuration`, with its messages, except that it refuses a
    // negative duration, which Go parses (a fault that is over before it starts).
    if let Err(e) = netlab_config::parse_duration(text) {
        errs.push(FieldError::invalid(child(path, key), text, format!("parse duration field error: {e}")));
    }
}

/// A duration the action needs (`delay` of a `delay` action): required, then checked.
fn required_duration(parent: &Value, key: &str, path: &str, action: &str, errs: &mut Vec<FieldError>) {
    if s(parent, key).is_empty() {
        errs.push(FieldError::required(child(path, key), format!("required for the {action} action")));
    } else {
        duration(parent, key, path, errs);
    }
}

// ---------------------------------------------------------------------------------------------
// NetworkChaos
// ---------------------------------------------------------------------------------------------

fn network_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", &NetworkAction::NAMES, errs);
    }
    pod_selector_schema(spec, "spec", errs);
    one_of(spec, "direction", "spec", &Direction::NAMES, errs);
    if let Some(target) = object(spec, "target", "spec", errs) {
        pod_selector_schema(target, "spec.target", errs);
    }
    strings(spec, "externalTargets", "spec", errs);
    for key in ["duration", "device", "targetDevice", "remoteCluster"] {
        string(spec, key, "spec", errs);
    }
    if let Some(delay) = object(spec, "delay", "spec", errs) {
        let path = "spec.delay";
        if required(delay, "latency", path, errs) {
            schema::pattern(delay, "latency", path, (LATENCY_PATTERN, is_latency), errs);
        }
        schema::pattern(delay, "jitter", path, (LATENCY_PATTERN, is_latency), errs);
        string(delay, "correlation", path, errs);
    }
    for key in ["loss", "duplicate", "corrupt"] {
        if let Some(netem) = object(spec, key, "spec", errs) {
            let path = child("spec", key);
            if required(netem, key, &path, errs) {
                string(netem, key, &path, errs);
            }
            string(netem, "correlation", &path, errs);
        }
    }
    if let Some(bw) = object(spec, "bandwidth", "spec", errs) {
        let path = "spec.bandwidth";
        if required(bw, "rate", path, errs) {
            string(bw, "rate", path, errs);
        }
        for key in ["limit", "buffer"] {
            if required(bw, key, path, errs) {
                schema::minimum(bw, key, path, 1, errs);
            }
        }
        for key in ["peakrate", "minburst"] {
            schema::minimum(bw, key, path, 0, errs);
        }
    }
}

/// `^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$`.
fn is_latency(text: &str) -> bool {
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let split = text.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number_ok = match number.split_once('.') {
        Some((whole, fraction)) => digits(whole) && digits(fraction),
        None => digits(number),
    };
    number_ok && ["ns", "us", "ms", "s", "m", "h"].contains(&unit)
}

fn network_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    let action = s(spec, "action");
    // NetworkChaosSpec.Validate (skipped for partition upstream).
    let direction = s(spec, "direction");
    if action != "partition" && matches!(direction, "from" | "both") {
        if get(spec, "externalTargets").is_some() {
            errs.push(FieldError::invalid(
                "spec.direction",
                direction,
                "external targets cannot be used with `from` and `both` direction in netem action yet",
            ));
        }
        if get(spec, "target").is_none() {
            errs.push(FieldError::invalid(
                "spec.direction",
                direction,
                "`from` and `both` direction cannot be used when targets is empty in netem action",
            ));
        }
    }
    pod_selector_webhook(spec, "spec", errs);
    duration(spec, "duration", "spec", errs);
    if let Some(target) = get(spec, "target") {
        pod_selector_webhook(target, "spec.target", errs);
    }
    // netlab: the action's parameters must be there. Chaos Mesh accepts a `delay` action without
    // `delay` and fails when it injects it; netlab's kernels would have nothing to apply.
    match action {
        "netem" if ["delay", "loss", "duplicate", "corrupt"].iter().all(|k| get(spec, k).is_none()) => {
            errs.push(FieldError::required(
                "spec",
                "the netem action needs at least one of delay, loss, duplicate or corrupt",
            ));
        }
        "delay" | "loss" | "duplicate" | "corrupt" | "bandwidth" if get(spec, action).is_none() => {
            errs.push(FieldError::required(
                child("spec", action),
                format!("required for the {action} action"),
            ));
        }
        _ => {}
    }
    if let Some(delay) = get(spec, "delay") {
        duration(delay, "latency", "spec.delay", errs);
        duration(delay, "jitter", "spec.delay", errs);
        percent(delay, "correlation", "spec.delay", false, errs);
    }
    for key in ["loss", "duplicate", "corrupt"] {
        if let Some(netem) = get(spec, key) {
            let path = child("spec", key);
            percent(netem, key, &path, true, errs);
            percent(netem, "correlation", &path, false, errs);
        }
    }
    if let Some(bw) = get(spec, "bandwidth") {
        rate(bw, "rate", "spec.bandwidth", errs);
    }
}

/// The `FloatStr` webhook check (loss, duplicate, corrupt, correlation): Go's `ParseFloat`, and
/// its message, which names `correlation` whichever field it is. netlab also refuses values
/// outside 0-100 with Chaos Mesh's `Percent` message, and an empty required percentage: Chaos
/// Mesh checks neither, and netem has no meaning for them.
fn percent(parent: &Value, key: &str, path: &str, needed: bool, errs: &mut Vec<FieldError>) {
    let text = s(parent, key);
    let path = child(path, key);
    if text.is_empty() {
        if needed {
            errs.push(FieldError::required(path, ""));
        }
        return;
    }
    match parse_float32(text) {
        Err(e) => errs.push(FieldError::invalid(path, text, format!("parse correlation field error:{e}"))),
        Ok(p) if !(0.0..=100.0).contains(&p) => {
            errs.push(FieldError::invalid(path, text, "percent field should be in 0-100"));
        }
        Ok(_) => {}
    }
}

/// The `Rate` webhook check: a number and one of tc's units. Chaos Mesh lets an empty rate
/// through (the walker skips zero values); netlab refuses it, as no limit can be built from it.
fn rate(parent: &Value, key: &str, path: &str, errs: &mut Vec<FieldError>) {
    const UNITS: [&str; 10] = ["kbit", "mbit", "gbit", "tbit", "tbps", "gbps", "mbps", "kbps", "bps", "bit"];
    let text = s(parent, key);
    let path = child(path, key);
    if text.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let normal = text.trim().to_ascii_lowercase();
    let problem = match UNITS.iter().find_map(|u| normal.strip_suffix(u)) {
        None => Some("invalid unit".to_string()),
        Some(number) => parse_uint(number.trim()).err().map(|e| e.to_string()),
    };
    if let Some(problem) = problem {
        errs.push(FieldError::invalid(path, text, format!("parse rate field error:{problem}")));
    }
}

// ---------------------------------------------------------------------------------------------
// DNSChaos
// ---------------------------------------------------------------------------------------------

fn dns_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", &DnsAction::NAMES, errs);
    }
    pod_selector_schema(spec, "spec", errs);
    strings(spec, "patterns", "spec", errs);
    strings(spec, "containerNames", "spec", errs);
    for key in ["duration", "rcode", "delay", "remoteCluster"] {
        string(spec, key, "spec", errs);
    }
}

fn dns_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    pod_selector_webhook(spec, "spec", errs);
    duration(spec, "duration", "spec", errs);
    // netlab: Chaos Mesh's webhook does not look at `patterns`; its DNS server's trie refuses a
    // bad one when the chaos is applied (`Failed to apply chaos: ... pattern <p> not valid`).
    patterns(spec, "patterns", errs);
    if let Some(rcode) = get(spec, "rcode").and_then(Value::as_str)
        && !RCODES.contains(&rcode)
    {
        errs.push(FieldError::not_supported("spec.rcode", rcode, &RCODES));
    }
    if s(spec, "action") == "delay" {
        required_duration(spec, "delay", "spec", "delay", errs);
    } else {
        duration(spec, "delay", "spec", errs);
    }
}

/// Chaos Mesh-style name patterns (DNSChaos, UpstreamDNSChaos, RegistryChaos' repositories):
/// each valid for the trie, none twice (the trie's `pattern %s already exists`).
fn patterns(spec: &Value, key: &str, errs: &mut Vec<FieldError>) {
    let mut seen = std::collections::HashSet::new();
    for (i, p) in spec.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
        let Some(p) = p.as_str() else { continue };
        let path = format!("spec.{key}[{i}]");
        if let Err(e) = netlab_chaos::pattern::validate(p) {
            errs.push(FieldError::invalid(path, p, e.to_string()));
        } else if !seen.insert(p) {
            errs.push(FieldError::duplicate(path, p));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// PodChaos
// ---------------------------------------------------------------------------------------------

fn pod_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    pod_selector_schema(spec, "spec", errs);
    strings(spec, "containerNames", "spec", errs);
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", &PodAction::NAMES, errs);
    }
    for key in ["duration", "remoteCluster"] {
        string(spec, key, "spec", errs);
    }
    schema::minimum(spec, "gracePeriod", "spec", 0, errs);
}

fn pod_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    // PodChaosSpec.Validate.
    if s(spec, "action") == "container-kill"
        && spec.get("containerNames").and_then(Value::as_array).is_none_or(Vec::is_empty)
    {
        // The bad value is the (nil or empty) list, rendered as JSON.
        let names = get(spec, "containerNames").cloned().unwrap_or(NULL);
        errs.push(FieldError::invalid(
            "spec.containerNames",
            names,
            "the name of container is required on container-kill action: invalid value",
        ));
    }
    pod_selector_webhook(spec, "spec", errs);
    duration(spec, "duration", "spec", errs);
}

// ---------------------------------------------------------------------------------------------
// The lab's kinds
// ---------------------------------------------------------------------------------------------

fn component_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", ComponentAction::NAMES, errs);
    }
    if required(spec, "component", "spec", errs) {
        one_of(spec, "component", "spec", Component::NAMES, errs);
    }
    strings(spec, "nodes", "spec", errs);
    string(spec, "duration", "spec", errs);
}

fn component_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    duration(spec, "duration", "spec", errs);
    let component = s(spec, "component");
    let per_node = Component::parse(component).is_some_and(Component::per_node);
    if !per_node && spec.get("nodes").and_then(Value::as_array).is_some_and(|n| !n.is_empty()) {
        errs.push(FieldError::forbidden(
            "spec.nodes",
            format!("may only be set for a component that runs on every node (kube-proxy, kubelet), not {component}"),
        ));
    }
}

fn registry_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", RegistryAction::NAMES, errs);
    }
    strings(spec, "repositories", "spec", errs);
    integer(spec, "statusCode", "spec", errs);
    for key in ["delay", "duration"] {
        string(spec, key, "spec", errs);
    }
}

fn registry_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    duration(spec, "duration", "spec", errs);
    patterns(spec, "repositories", errs);
    match s(spec, "action") {
        "error" => match spec.get("statusCode").and_then(Value::as_i64) {
            None => errs.push(FieldError::required("spec.statusCode", "required for the error action")),
            Some(code) if !REGISTRY_STATUS_CODES.iter().any(|c| i64::from(*c) == code) => {
                let supported: Vec<String> = REGISTRY_STATUS_CODES.iter().map(u16::to_string).collect();
                let supported: Vec<&str> = supported.iter().map(String::as_str).collect();
                errs.push(FieldError::not_supported("spec.statusCode", code, &supported));
            }
            Some(_) => {}
        },
        "delay" => required_duration(spec, "delay", "spec", "delay", errs),
        _ => duration(spec, "delay", "spec", errs),
    }
}

fn upstream_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", UpstreamAction::NAMES, errs);
    }
    strings(spec, "patterns", "spec", errs);
    for key in ["delay", "duration"] {
        string(spec, key, "spec", errs);
    }
}

fn upstream_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    duration(spec, "duration", "spec", errs);
    patterns(spec, "patterns", errs);
    if s(spec, "action") == "delay" {
        required_duration(spec, "delay", "spec", "delay", errs);
    } else {
        duration(spec, "delay", "spec", errs);
    }
}

fn exhaustion_schema(spec: &Value, errs: &mut Vec<FieldError>) {
    if required(spec, "action", "spec", errs) {
        one_of(spec, "action", "spec", ExhaustionAction::NAMES, errs);
    }
    strings(spec, "nodes", "spec", errs);
    string(spec, "duration", "spec", errs);
}

fn exhaustion_webhook(spec: &Value, errs: &mut Vec<FieldError>) {
    duration(spec, "duration", "spec", errs);
    if s(spec, "action") == ExhaustionAction::ServiceCidr.as_str()
        && spec.get("nodes").and_then(Value::as_array).is_some_and(|n| !n.is_empty())
    {
        errs.push(FieldError::forbidden(
            "spec.nodes",
            "may not be set for service-cidr: the Service CIDR is the cluster's, not a node's",
        ));
    }
}
