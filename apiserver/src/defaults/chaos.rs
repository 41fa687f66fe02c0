//! Chaos Mesh's mutating webhook for its kinds (`gw.Default` over the `default:` struct tags and
//! the `Default` methods in `api/v1alpha1/*_webhook.go`), plus the CRD's `default: to` on
//! `direction`.
//!
//! The webhook decodes the object into Go structs, fills in defaults and encodes it back, and the
//! apiserver applies the difference as a patch. So besides the defaults themselves, every field
//! without `omitempty` comes back as its zero value: a manifest without `mode` reaches the
//! schema with `mode: ""`, a `delay` without `latency` with `latency: ""`, a `bandwidth` without
//! `limit` with `limit: 0`. Those zero values are filled in here too, because they decide which
//! error a real cluster answers (`Unsupported value: ""`, not `Required value`).
//!
//! The lab's own kinds have no webhook and get no defaults.

use serde_json::{Map, Value, json};

use super::{child, default_str, default_value};

/// NetworkChaos: the selectors, `direction: to`, and the netem parameters' defaults
/// (`DefaultJitter = "0ms"`, `DefaultCorrelation = "0"`).
pub(super) fn network_chaos(obj: &mut Map<String, Value>) {
    let ns = namespace(obj);
    let Some(spec) = spec(obj) else { return };
    default_value(spec, "action", json!(""));
    pod_selector(spec, &ns);
    // The CRD's `default: to`, and `Direction.Default`.
    default_str(spec, "direction", "to");
    if let Some(target) = spec.get_mut("target").and_then(Value::as_object_mut) {
        pod_selector(target, &ns);
    }
    if let Some(delay) = spec.get_mut("delay").and_then(Value::as_object_mut) {
        default_value(delay, "latency", json!(""));
        default_str(delay, "jitter", "0ms");
        default_str(delay, "correlation", "0");
    }
    for key in ["loss", "duplicate", "corrupt"] {
        if let Some(netem) = spec.get_mut(key).and_then(Value::as_object_mut) {
            default_value(netem, key, json!(""));
            default_str(netem, "correlation", "0");
        }
    }
    if let Some(bw) = spec.get_mut("bandwidth").and_then(Value::as_object_mut) {
        default_value(bw, "rate", json!(""));
        default_value(bw, "limit", json!(0));
        default_value(bw, "buffer", json!(0));
    }
}

/// DNSChaos and PodChaos: the selector.
pub(super) fn pod_scoped_chaos(obj: &mut Map<String, Value>) {
    let ns = namespace(obj);
    let Some(spec) = spec(obj) else { return };
    default_value(spec, "action", json!(""));
    pod_selector(spec, &ns);
}

/// `spec`, created when absent (a Go struct is always there); None when it has the wrong type,
/// which the schema reports.
fn spec(obj: &mut Map<String, Value>) -> Option<&mut Map<String, Value>> {
    match obj.get("spec") {
        None | Some(Value::Null | Value::Object(_)) => Some(child(obj, "spec")),
        Some(_) => None,
    }
}

fn namespace(obj: &Map<String, Value>) -> String {
    obj.get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("default")
        .to_string()
}

/// `PodSelector.Default`: no `selector.namespaces` means the chaos object's own namespace; and
/// `mode` and `selector` are never missing after the Go round trip.
fn pod_selector(sel: &mut Map<String, Value>, ns: &str) {
    default_value(sel, "mode", json!(""));
    // A selector of the wrong type is left for the schema to report.
    if !sel.get("selector").is_none_or(|s| s.is_object() || s.is_null()) {
        return;
    }
    let selector = child(sel, "selector");
    let fill = match selector.get("namespaces") {
        None | Some(Value::Null) => true,
        Some(Value::Array(list)) => list.is_empty(),
        // A wrong type is left for the schema to report.
        Some(_) => false,
    };
    if fill {
        selector.insert("namespaces".into(), json!([ns]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn network_chaos_as_the_webhook_defaults_it() {
        let mut nc = obj(json!({"metadata": {"name": "d", "namespace": "shop"}, "spec": {
            "action": "delay", "mode": "all", "selector": {"labelSelectors": {"app": "client"}},
            "delay": {"latency": "200ms"},
            "loss": {"loss": "10"},
            "target": {"mode": "all", "selector": {"namespaces": ["other"]}}}}));
        network_chaos(&mut nc);
        let spec = &nc["spec"];
        assert_eq!(spec["direction"], "to");
        assert_eq!(spec["selector"]["namespaces"], json!(["shop"]));
        assert_eq!(spec["target"]["selector"]["namespaces"], json!(["other"]), "set namespaces stay");
        assert_eq!(spec["delay"], json!({"latency": "200ms", "jitter": "0ms", "correlation": "0"}));
        assert_eq!(spec["loss"], json!({"loss": "10", "correlation": "0"}));
        let again = nc.clone();
        network_chaos(&mut nc);
        assert_eq!(nc, again, "idempotent");
    }

    #[test]
    fn missing_fields_come_back_as_go_zero_values() {
        let mut nc = obj(json!({"metadata": {"name": "d", "namespace": "default"}}));
        network_chaos(&mut nc);
        assert_eq!(
            Value::Object(nc)["spec"],
            json!({"action": "", "mode": "", "direction": "to", "selector": {"namespaces": ["default"]}})
        );
        let mut pc = obj(json!({"metadata": {"name": "k", "namespace": "default"}, "spec": {
            "action": "pod-kill", "target": {}, "selector": "bad"}}));
        pod_scoped_chaos(&mut pc);
        assert_eq!(pc["spec"]["selector"], "bad", "a wrong type is the schema's to report");
        assert_eq!(pc["spec"]["mode"], "");
    }
}
