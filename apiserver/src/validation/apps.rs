//! pkg/apis/apps/validation: Deployment, ReplicaSet, StatefulSet, DaemonSet. Their pod templates are checked
//! by core's `validate_pod_template_spec` ([`super::core::pod`]).

use serde_json::{Value, json};

use super::{
    core::pod::validate_pod_template_spec,
    field::FieldError,
    format::{FIELD_IMMUTABLE, IS_NEGATIVE, is_valid_percent},
    json::{
        IntOrString, NULL, arr, get, int, int_or_string, map_value, meta_of, s, sem_eq, spec_of, string_map,
    },
    meta::{
        NameKind, Selector, validate_annotations, validate_label_selector, validate_labels,
        validate_object_meta, validate_object_meta_update,
    },
};

fn nonnegative(spec: &Value, field: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(v) = int(spec, field)
        && v < 0
    {
        errs.push(FieldError::invalid(path, v, IS_NEGATIVE));
    }
}

/// The selector checks shared by the three workloads; returns the compiled selector, or `None`
/// when it does not compile (upstream then skips the template).
fn validate_workload_selector(
    spec: &Value,
    empty_msg: &str,
    bad_msg: &str,
    errs: &mut Vec<FieldError>,
) -> Option<Selector> {
    let sel = get(spec, "selector");
    match sel {
        None => errs.push(FieldError::required("spec.selector", "")),
        Some(sel) => {
            validate_label_selector(Some(sel), "spec.selector", errs);
            if string_map(sel, "matchLabels").is_empty() && arr(sel, "matchExpressions").is_empty() {
                errs.push(FieldError::invalid("spec.selector", sel.clone(), empty_msg));
            }
        }
    }
    let compiled = Selector::compile(sel);
    if compiled.is_none() {
        errs.push(FieldError::invalid("spec.selector", sel.cloned().unwrap_or(Value::Null), bad_msg));
    }
    compiled
}

/// The template must carry the labels the selector looks for.
fn validate_template_matches(selector: &Selector, template: &Value, errs: &mut Vec<FieldError>) {
    let labels = string_map(meta_of(template), "labels");
    if !selector.is_empty() && !selector.matches(&labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            map_value(meta_of(template), "labels"),
            "`selector` does not match template `labels`",
        ));
    }
}

/// `ValidatePodTemplateSpecForReplicaSet` (Deployments and ReplicaSets).
fn validate_template_for_replica_set(
    selector: &Selector,
    template: &Value,
    kind: &str,
    errs: &mut Vec<FieldError>,
) {
    validate_template_matches(selector, template, errs);
    validate_pod_template_spec(template, "spec.template", errs);
    let tspec = spec_of(template);
    if s(tspec, "restartPolicy") != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            s(tspec, "restartPolicy"),
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            format!("activeDeadlineSeconds in {kind} is not Supported"),
        ));
    }
}

pub(crate) fn validate_deployment(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    let spec = spec_of(obj);
    nonnegative(spec, "replicas", "spec.replicas", errs);
    let selector = validate_workload_selector(
        spec,
        "empty selector is invalid for deployment",
        "invalid label selector",
        errs,
    );
    if let Some(selector) = selector {
        validate_template_for_replica_set(
            &selector,
            spec.get("template").unwrap_or(&NULL),
            "ReplicaSet",
            errs,
        );
    }
    validate_deployment_strategy(spec.get("strategy").unwrap_or(&NULL), errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs);
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        nonnegative(spec, "progressDeadlineSeconds", "spec.progressDeadlineSeconds", errs);
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
}

fn validate_deployment_strategy(strategy: &Value, errs: &mut Vec<FieldError>) {
    match s(strategy, "type") {
        "Recreate" => {
            if get(strategy, "rollingUpdate").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.strategy.rollingUpdate",
                    "may not be specified when strategy `type` is 'Recreate'",
                ));
            }
        }
        "RollingUpdate" => match get(strategy, "rollingUpdate") {
            None => errs.push(FieldError::required(
                "spec.strategy.rollingUpdate",
                "this should be defaulted and never be nil",
            )),
            Some(ru) => {
                let path = "spec.strategy.rollingUpdate";
                let max_unavailable = ru.get("maxUnavailable").unwrap_or(&NULL);
                let max_surge = ru.get("maxSurge").unwrap_or(&NULL);
                validate_positive_int_or_percent(max_unavailable, &format!("{path}.maxUnavailable"), errs);
                validate_positive_int_or_percent(max_surge, &format!("{path}.maxSurge"), errs);
                if int_or_percent_value(max_unavailable) == 0 && int_or_percent_value(max_surge) == 0 {
                    errs.push(FieldError::invalid(
                        format!("{path}.maxUnavailable"),
                        int_or_string_value(max_unavailable),
                        "may not be 0 when `maxSurge` is 0",
                    ));
                }
                not_more_than_100_percent(max_unavailable, &format!("{path}.maxUnavailable"), errs);
            }
        },
        other => {
            // The value is the internal apps.DeploymentStrategy, with its Go field names.
            let value = json!({"Type": other, "RollingUpdate": strategy.get("rollingUpdate").cloned().unwrap_or(Value::Null)});
            errs.push(FieldError::not_supported("spec.strategy", value, &["Recreate", "RollingUpdate"]));
        }
    }
}

/// An intstr as the bad value: a number, or a quoted string.
fn int_or_string_value(v: &Value) -> Value {
    match v {
        Value::Null => json!(0),
        other => other.clone(),
    }
}

fn percent_value(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) if is_valid_percent(s).is_empty() => s[..s.len() - 1].parse().ok(),
        _ => None,
    }
}

/// `getIntOrPercentValue`.
fn int_or_percent_value(v: &Value) -> i64 {
    if let Some(p) = percent_value(v) {
        return p;
    }
    match int_or_string(v) {
        IntOrString::Int(n) => n,
        IntOrString::Str(s) => s.parse().unwrap_or(0),
    }
}

fn validate_positive_int_or_percent(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match int_or_string(v) {
        IntOrString::Str(s) => {
            for m in is_valid_percent(s) {
                errs.push(FieldError::invalid(path, s, m));
            }
        }
        IntOrString::Int(n) => {
            if n < 0 {
                errs.push(FieldError::invalid(path, n, IS_NEGATIVE));
            }
        }
    }
}

fn not_more_than_100_percent(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if percent_value(v).is_some_and(|p| p > 100) {
        errs.push(FieldError::invalid(path, v.clone(), "must not be greater than 100%"));
    }
}

pub(crate) fn validate_replica_set(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    let spec = spec_of(obj);
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    // Sic: ReplicaSets reuse the Deployment wording.
    let selector = validate_workload_selector(
        spec,
        "empty selector is invalid for deployment",
        "invalid label selector",
        errs,
    );
    if let Some(selector) = selector {
        validate_template_for_replica_set(
            &selector,
            spec.get("template").unwrap_or(&NULL),
            "ReplicaSet",
            errs,
        );
    }
}

/// Deployments and ReplicaSets in apps/v1 may not change their selector.
pub(crate) fn validate_selector_immutable(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    let (o, n) = (spec_of(old).get("selector"), spec_of(new).get("selector"));
    if !sem_eq(o, n) {
        errs.push(FieldError::invalid("spec.selector", n.cloned().unwrap_or(Value::Null), FIELD_IMMUTABLE));
    }
}

pub(crate) fn validate_stateful_set(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Label, errs);
    validate_stateful_set_spec(spec_of(obj), errs);
}

fn validate_stateful_set_spec(spec: &Value, errs: &mut Vec<FieldError>) {
    match s(spec, "podManagementPolicy") {
        "" => errs.push(FieldError::required("spec.podManagementPolicy", "")),
        "OrderedReady" | "Parallel" => {}
        other => errs.push(FieldError::invalid(
            "spec.podManagementPolicy",
            other,
            "must be 'OrderedReady' or 'Parallel'",
        )),
    }
    let strategy = spec.get("updateStrategy").unwrap_or(&NULL);
    match s(strategy, "type") {
        "" => errs.push(FieldError::required("spec.updateStrategy", "")),
        "OnDelete" => {
            if let Some(ru) = get(strategy, "rollingUpdate") {
                errs.push(FieldError::invalid(
                    "spec.updateStrategy.rollingUpdate",
                    ru.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                ));
            }
        }
        "RollingUpdate" => {
            if let Some(ru) = get(strategy, "rollingUpdate") {
                let path = "spec.updateStrategy.rollingUpdate";
                nonnegative(ru, "partition", &format!("{path}.partition"), errs);
                if let Some(mu) = get(ru, "maxUnavailable") {
                    let p = format!("{path}.maxUnavailable");
                    validate_positive_int_or_percent(mu, &p, errs);
                    if int_or_percent_value(mu) == 0 {
                        errs.push(FieldError::invalid(p.clone(), mu.clone(), "cannot be 0"));
                    }
                    not_more_than_100_percent(mu, &p, errs);
                }
            }
        }
        other => {
            let value = json!({"Type": other, "RollingUpdate": strategy.get("rollingUpdate").cloned().unwrap_or(Value::Null)});
            errs.push(FieldError::invalid(
                "spec.updateStrategy",
                value,
                "must be 'RollingUpdate' or 'OnDelete'",
            ));
        }
    }
    if let Some(policy) = get(spec, "persistentVolumeClaimRetentionPolicy") {
        for f in ["whenDeleted", "whenScaled"] {
            let v = s(policy, f);
            if v != "Retain" && v != "Delete" {
                errs.push(FieldError::not_supported(
                    format!("spec.persistentVolumeClaimRetentionPolicy.{f}"),
                    v,
                    &["Retain", "Delete"],
                ));
            }
        }
    }
    nonnegative(spec, "replicas", "spec.replicas", errs);
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    if let Some(ordinals) = get(spec, "ordinals") {
        nonnegative(ordinals, "start", "spec.ordinals.start", errs);
    }
    // Sic: an uncompilable StatefulSet selector gets an empty explanation upstream.
    let selector = validate_workload_selector(spec, "empty selector is invalid for statefulset", "", errs);
    let template = spec.get("template").unwrap_or(&NULL);
    if let Some(selector) = selector {
        // Upstream checks only the template's metadata here, not its pod spec: a StatefulSet with
        // a bad pod spec is accepted and its pods are rejected when the controller creates them.
        validate_template_matches(&selector, template, errs);
        let meta = meta_of(template);
        validate_labels(&string_map(meta, "labels"), "spec.template.labels", errs);
        validate_annotations(&string_map(meta, "annotations"), "spec.template.annotations", errs);
    }
    let tspec = spec_of(template);
    if s(tspec, "restartPolicy") != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            s(tspec, "restartPolicy"),
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in StatefulSet is not Supported",
        ));
    }
}

pub(crate) fn validate_stateful_set_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    // The name is not revalidated on update: older releases accepted subdomain names.
    validate_object_meta_update(old, new, errs);
    validate_stateful_set_spec(spec_of(new), errs);
    let mutable = [
        "replicas",
        "template",
        "updateStrategy",
        "minReadySeconds",
        "ordinals",
        "revisionHistoryLimit",
        "persistentVolumeClaimRetentionPolicy",
    ];
    let strip = |spec: &Value| {
        let mut spec = spec.clone();
        if let Some(m) = spec.as_object_mut() {
            for f in mutable {
                m.remove(f);
            }
        }
        spec
    };
    if !sem_eq(Some(&strip(spec_of(old))), Some(&strip(spec_of(new)))) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
}

pub(crate) fn validate_daemon_set(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    validate_daemon_set_spec(spec_of(obj), errs);
}

/// `ValidateDaemonSetSpec`. Unlike the other workloads' checks, a missing selector is not
/// reported as required: it compiles to a selector that matches nothing, so the template's
/// labels are reported as not matching it.
fn validate_daemon_set_spec(spec: &Value, errs: &mut Vec<FieldError>) {
    let sel = get(spec, "selector");
    validate_label_selector(sel, "spec.selector", errs);
    let template = spec.get("template").unwrap_or(&NULL);
    if let Some(selector) = Selector::compile(sel)
        && !selector.matches(&string_map(meta_of(template), "labels"))
    {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            map_value(meta_of(template), "labels"),
            "`selector` does not match template `labels`",
        ));
    }
    if let Some(sel) = sel
        && string_map(sel, "matchLabels").is_empty()
        && arr(sel, "matchExpressions").is_empty()
    {
        errs.push(FieldError::invalid(
            "spec.selector",
            sel.clone(),
            "empty selector is invalid for daemonset",
        ));
    }
    validate_pod_template_spec(template, "spec.template", errs);
    let tspec = spec_of(template);
    if s(tspec, "restartPolicy") != "Always" {
        errs.push(FieldError::not_supported(
            "spec.template.spec.restartPolicy",
            s(tspec, "restartPolicy"),
            &["Always"],
        ));
    }
    if get(tspec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            "spec.template.spec.activeDeadlineSeconds",
            "activeDeadlineSeconds in DaemonSet is not Supported",
        ));
    }
    nonnegative(spec, "minReadySeconds", "spec.minReadySeconds", errs);
    validate_daemon_set_update_strategy(spec.get("updateStrategy").unwrap_or(&NULL), errs);
    nonnegative(spec, "revisionHistoryLimit", "spec.revisionHistoryLimit", errs);
}

/// `ValidateDaemonSetUpdateStrategy` and `ValidateRollingUpdateDaemonSet`.
fn validate_daemon_set_update_strategy(strategy: &Value, errs: &mut Vec<FieldError>) {
    let path = "spec.updateStrategy";
    match s(strategy, "type") {
        "OnDelete" => {}
        "RollingUpdate" => {
            let Some(ru) = get(strategy, "rollingUpdate") else {
                errs.push(FieldError::required(format!("{path}.rollingUpdate"), ""));
                return;
            };
            let path = format!("{path}.rollingUpdate");
            let max_unavailable = ru.get("maxUnavailable").unwrap_or(&NULL);
            let max_surge = ru.get("maxSurge").unwrap_or(&NULL);
            validate_positive_int_or_percent(max_unavailable, &format!("{path}.maxUnavailable"), errs);
            validate_positive_int_or_percent(max_surge, &format!("{path}.maxSurge"), errs);
            not_more_than_100_percent(max_unavailable, &format!("{path}.maxUnavailable"), errs);
            not_more_than_100_percent(max_surge, &format!("{path}.maxSurge"), errs);
            let has_unavailable = int_or_percent_value(max_unavailable) != 0;
            let has_surge = int_or_percent_value(max_surge) != 0;
            if has_unavailable && has_surge {
                errs.push(FieldError::invalid(
                    format!("{path}.maxSurge"),
                    int_or_string_value(max_surge),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                errs.push(FieldError::required(
                    format!("{path}.maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
        }
        other => {
            // The value is the internal apps.DaemonSetUpdateStrategy, with its Go field names.
            let value = json!({"Type": other, "RollingUpdate": strategy.get("rollingUpdate").cloned().unwrap_or(Value::Null)});
            errs.push(FieldError::not_supported(path, value, &["RollingUpdate", "OnDelete"]));
        }
    }
}

/// The daemonset strategy's `ValidateUpdate`: the new object as on create, its metadata against
/// the old, and in apps/v1 an immutable selector. (Upstream validates the spec twice here; the
/// repeated messages are deduplicated in the answer, so once is the same.)
pub(crate) fn validate_daemon_set_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    validate_daemon_set(new, errs);
    validate_object_meta_update(old, new, errs);
    validate_selector_immutable(old, new, errs);
}
