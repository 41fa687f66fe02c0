//! pkg/apis/networking/validation: NetworkPolicy.

use serde_json::{Value, json};

use super::{
    core::port::PORT_PROTOCOLS,
    field::FieldError,
    format::{is_valid_cidr, is_valid_port_name, is_valid_port_num, parse_cidr_sloppy},
    json::{arr, get, int, s, spec_of},
    meta::{NameKind, validate_label_selector, validate_object_meta},
};

pub(crate) fn validate_network_policy(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    let spec = spec_of(obj);
    validate_label_selector(Some(spec.get("podSelector").unwrap_or(&json!({}))), "spec.podSelector", errs);
    for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
        for (i, rule) in arr(spec, dir).iter().enumerate() {
            let rp = format!("spec.{dir}[{i}]");
            for (j, port) in arr(rule, "ports").iter().enumerate() {
                validate_network_policy_port(port, &format!("{rp}.ports[{j}]"), errs);
            }
            for (j, peer) in arr(rule, peers).iter().enumerate() {
                validate_network_policy_peer(peer, &format!("{rp}.{peers}[{j}]"), errs);
            }
        }
    }
    let types = arr(spec, "policyTypes");
    if types.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.policyTypes",
            json!(types),
            "may not specify more than two policyTypes",
        ));
        return;
    }
    for (i, t) in types.iter().enumerate() {
        let t = t.as_str().unwrap_or("");
        if t != "Ingress" && t != "Egress" {
            errs.push(FieldError::not_supported(format!("spec.policyTypes[{i}]"), t, &["Ingress", "Egress"]));
        }
    }
}

fn validate_network_policy_port(port: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(pr) = get(port, "protocol").and_then(Value::as_str)
        && !PORT_PROTOCOLS.contains(&pr)
    {
        errs.push(FieldError::not_supported(format!("{path}.protocol"), pr, &["TCP", "UDP", "SCTP"]));
    }
    let end_port = int(port, "endPort");
    match get(port, "port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            for m in is_valid_port_num(n) {
                errs.push(FieldError::invalid(format!("{path}.port"), n, m));
            }
            if let Some(end) = end_port {
                if end < n {
                    errs.push(FieldError::invalid(
                        format!("{path}.endPort"),
                        end,
                        "must be greater than or equal to `port`",
                    ));
                }
                for m in is_valid_port_num(end) {
                    errs.push(FieldError::invalid(format!("{path}.endPort"), end, m));
                }
            }
        }
        Some(v) => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(
                    format!("{path}.endPort"),
                    end,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            let name = v.as_str().unwrap_or("");
            for m in is_valid_port_name(name) {
                errs.push(FieldError::invalid(format!("{path}.port"), name, m));
            }
        }
        None => {
            if let Some(end) = end_port {
                errs.push(FieldError::invalid(
                    format!("{path}.endPort"),
                    end,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn validate_network_policy_peer(peer: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut count = 0;
    for sel in ["podSelector", "namespaceSelector"] {
        if let Some(v) = get(peer, sel) {
            count += 1;
            validate_label_selector(Some(v), &format!("{path}.{sel}"), errs);
        }
    }
    let ip_block = get(peer, "ipBlock");
    if let Some(ipb) = ip_block {
        count += 1;
        validate_ip_block(ipb, &format!("{path}.ipBlock"), errs);
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if count > 1 && ip_block.is_some() {
        errs.push(FieldError::forbidden(path, "may not specify both ipBlock and another peer"));
    }
}

fn validate_ip_block(ipb: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let cidr = s(ipb, "cidr");
    if cidr.is_empty() {
        errs.push(FieldError::required(format!("{path}.cidr"), ""));
        return;
    }
    errs.extend(is_valid_cidr(&format!("{path}.cidr"), cidr));
    let Some(net) = parse_cidr_sloppy(cidr) else {
        return;
    };
    for (i, except) in arr(ipb, "except").iter().enumerate() {
        let except = except.as_str().unwrap_or("");
        let p = format!("{path}.except[{i}]");
        errs.extend(is_valid_cidr(&p, except));
        let Some(ex) = parse_cidr_sloppy(except) else {
            continue;
        };
        if !net.contains(&ex.network()) || net.prefix_len() >= ex.prefix_len() {
            errs.push(FieldError::invalid(p, except, "must be a strict subset of `cidr`"));
        }
    }
}
