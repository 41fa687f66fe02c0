//! Node validation (pkg/apis/core/validation: ValidateNode, ValidateNodeUpdate, taints).

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::validation::{
    field::FieldError,
    format::{is_qualified_name, is_valid_cidr, is_valid_label_value, parse_cidr_sloppy},
    json::{arr, s, spec_of},
    meta::{NameKind, validate_object_meta, validate_object_meta_update},
};

pub(crate) fn validate_node(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, false, NameKind::Subdomain, errs);
    let spec = spec_of(obj);
    // Upstream validates taints under metadata's path: "metadata.taints[0].key".
    validate_taints(arr(spec, "taints"), "metadata.taints", errs);
    let cidrs: Vec<&str> = arr(spec, "podCIDRs").iter().filter_map(Value::as_str).collect();
    for (i, c) in cidrs.iter().enumerate() {
        errs.extend(is_valid_cidr(&format!("spec.podCIDRs[{i}]"), c));
    }
    if cidrs.len() > 1 {
        let v6 = cidrs.iter().filter(|c| matches!(parse_cidr_sloppy(c), Some(ipnet::IpNet::V6(_)))).count();
        let dual = cidrs.len() == 2 && v6 == 1;
        if !dual {
            errs.push(FieldError::invalid(
                "spec.podCIDRs",
                json!(cidrs),
                "may specify no more than one CIDR for each IP family",
            ));
        }
        let mut seen = HashSet::new();
        for (i, c) in cidrs.iter().enumerate() {
            if !seen.insert(*c) {
                errs.push(FieldError::duplicate(format!("spec.podCIDRs[{i}]"), *c));
            }
        }
    }
}

fn validate_taints(taints: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut unique: HashSet<(String, String)> = HashSet::new();
    for (i, t) in taints.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = s(t, "key");
        for m in is_qualified_name(key) {
            errs.push(FieldError::invalid(format!("{p}.key"), key, m));
        }
        let value = s(t, "value");
        let msgs = is_valid_label_value(value);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(format!("{p}.value"), value, msgs.join(";")));
        }
        let effect = s(t, "effect");
        match effect {
            "" => errs.push(FieldError::required(format!("{p}.effect"), "")),
            "NoSchedule" | "PreferNoSchedule" | "NoExecute" => {}
            other => errs.push(FieldError::not_supported(
                format!("{p}.effect"),
                other,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            )),
        }
        if !unique.insert((effect.to_string(), key.to_string())) {
            // The value is the internal core.Taint, rendered with its Go field names.
            let taint = json!({"Key": key, "Value": value, "Effect": effect, "TimeAdded": t.get("timeAdded").cloned().unwrap_or(Value::Null)});
            let mut e = FieldError::duplicate(p, taint);
            e.detail = "taints must be unique by key and effect pair".to_string();
            errs.push(e);
        }
    }
}

pub(crate) fn validate_node_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta_update(old, new, errs);
    let mut seen = HashSet::new();
    let addresses = new.get("status").map(|st| arr(st, "addresses")).unwrap_or(&[]);
    for (i, a) in addresses.iter().enumerate() {
        if !seen.insert((s(a, "type").to_string(), s(a, "address").to_string())) {
            errs.push(FieldError::duplicate(
                format!("status.addresses[{i}]"),
                json!({"Type": s(a, "type"), "Address": s(a, "address")}),
            ));
        }
    }
    let (os, ns) = (spec_of(old), spec_of(new));
    let old_cidrs = arr(os, "podCIDRs");
    let new_cidrs = arr(ns, "podCIDRs");
    if !old_cidrs.is_empty() {
        let msg = "node updates may not change podCIDR except from \"\" to valid";
        if old_cidrs.len() != new_cidrs.len() {
            errs.push(FieldError::forbidden("spec.podCIDRs", msg));
        } else {
            for (o, n) in old_cidrs.iter().zip(new_cidrs) {
                if o != n {
                    errs.push(FieldError::forbidden("spec.podCIDRs", msg));
                }
            }
        }
    }
    if !s(os, "providerID").is_empty() && s(os, "providerID") != s(ns, "providerID") {
        errs.push(FieldError::forbidden(
            "spec.providerID",
            "node updates may not change providerID except from \"\" to valid",
        ));
    }
    if s(os, "externalID") != s(ns, "externalID") {
        errs.push(FieldError::forbidden("spec.externalID", "may not be updated"));
    }
}
