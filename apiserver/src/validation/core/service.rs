//! Service validation (pkg/apis/core/validation: ValidateService, ValidateServiceUpdate).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::{
    ip::validate_non_special_ip,
    port::{PORT_PROTOCOLS, validate_port_num_or_name},
};
use crate::validation::{
    field::FieldError,
    format::{
        FIELD_IMMUTABLE, is_dns1123_label, is_dns1123_subdomain, is_ipv6, is_qualified_name, is_valid_cidr,
        is_valid_ip, is_valid_port_num,
    },
    json::{arr, get, int, meta_of, s, spec_of, string_map},
    meta::{NameKind, validate_labels, validate_object_meta, validate_object_meta_update},
    options::ValidationOptions,
};

fn is_headless(spec: &Value) -> bool {
    let ips = arr(spec, "clusterIPs");
    ips.len() == 1 && ips[0].as_str() == Some("None")
}

/// `apiservice.ExternallyAccessible`.
pub(crate) fn externally_accessible(spec: &Value) -> bool {
    let t = s(spec, "type");
    t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

pub(crate) fn validate_service(obj: &Value, opts: &ValidationOptions, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Dns1035, errs);
    let annotations = string_map(meta_of(obj), "annotations");
    let hints = annotations.get("service.kubernetes.io/topology-aware-hints");
    let mode = annotations.get("service.kubernetes.io/topology-mode");
    if let (Some(h), Some(m)) = (hints, mode)
        && h != m
    {
        errs.push(FieldError::invalid(
            "metadata.annotations[service.kubernetes.io/topology-mode]",
            m.as_str(),
            "must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified",
        ));
    }

    let spec = spec_of(obj);
    let svc_type = s(spec, "type");
    let ports = arr(spec, "ports");
    let headless = is_headless(spec);
    if ports.is_empty() && !headless && svc_type != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    let cluster_ips = arr(spec, "clusterIPs");
    match svc_type {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            cluster_ips[0].clone(),
            format!("may not be set to 'None' for {svc_type} services"),
        )),
        "ExternalName" => {
            if !cluster_ips.is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            if !arr(spec, "ipFamilies").is_empty() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilies",
                    "may not be set for ExternalName services",
                ));
            }
            if get(spec, "ipFamilyPolicy").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.ipFamilyPolicy",
                    "may not be set for ExternalName services",
                ));
            }
            // The value (a CNAME) may have a trailing dot to mark it fully qualified.
            let cname = s(spec, "externalName").strip_suffix('.').unwrap_or(s(spec, "externalName"));
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                for m in is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid("spec.externalName", cname, m));
                }
            }
        }
        _ => {}
    }

    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        validate_service_port(port, ports.len() > 1, &mut names, &format!("spec.ports[{i}]"), errs);
    }

    if get(spec, "selector").is_some() {
        validate_labels(&string_map(spec, "selector"), "spec.selector", errs);
    }

    match s(spec, "sessionAffinity") {
        "" => errs.push(FieldError::required("spec.sessionAffinity", "")),
        "ClientIP" => validate_client_ip_affinity(get(spec, "sessionAffinityConfig"), errs),
        "None" => {
            if get(spec, "sessionAffinityConfig").is_some() {
                errs.push(FieldError::forbidden(
                    "spec.sessionAffinityConfig",
                    "must not be set when session affinity is None",
                ));
            }
        }
        other => errs.push(FieldError::not_supported("spec.sessionAffinity", other, &["ClientIP", "None"])),
    }

    validate_cluster_ips_related_fields(spec, errs);

    for (i, ip) in arr(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        let path = format!("spec.externalIPs[{i}]");
        let ip_errs = is_valid_ip(&path, ip);
        if ip_errs.is_empty() {
            validate_non_special_ip(&path, ip, opts, errs);
        } else {
            errs.extend(ip_errs);
        }
    }

    match svc_type {
        "" => errs.push(FieldError::required("spec.type", "")),
        "ClusterIP" | "ExternalName" | "LoadBalancer" | "NodePort" => {}
        other => errs.push(FieldError::not_supported(
            "spec.type",
            other,
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        )),
    }

    if svc_type == "ClusterIP" {
        for (i, port) in ports.iter().enumerate() {
            if int(port, "nodePort").unwrap_or(0) != 0 {
                errs.push(FieldError::forbidden(
                    format!("spec.ports[{i}].nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
        }
    }

    let mut node_ports = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let np = int(port, "nodePort").unwrap_or(0);
        if np != 0 && !node_ports.insert((s(port, "protocol").to_string(), np)) {
            errs.push(FieldError::duplicate(format!("spec.ports[{i}].nodePort"), np));
        }
    }

    let mut port_keys = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let (protocol, number) = (s(port, "protocol"), int(port, "port").unwrap_or(0));
        if !port_keys.insert((protocol.to_string(), number)) {
            // The value is the internal core.ServicePort key, with its Go field names.
            let key = json!({"Name": "", "Protocol": protocol, "AppProtocol": null, "Port": number, "TargetPort": 0, "NodePort": 0});
            errs.push(FieldError::duplicate(format!("spec.ports[{i}]"), key));
        }
    }

    let ranges = arr(spec, "loadBalancerSourceRanges");
    if !ranges.is_empty() {
        // Sic: upstream's path is capitalised.
        let path = "spec.LoadBalancerSourceRanges";
        if svc_type != "LoadBalancer" {
            errs.push(FieldError::forbidden(path, "may only be used when `type` is 'LoadBalancer'"));
        }
        for (i, r) in ranges.iter().enumerate() {
            errs.extend(is_valid_cidr(&format!("{path}[{i}]"), r.as_str().unwrap_or("").trim()));
        }
    } else if let Some(val) = annotations.get("service.beta.kubernetes.io/load-balancer-source-ranges") {
        let path = "metadata.annotations[service.beta.kubernetes.io/load-balancer-source-ranges]";
        if svc_type != "LoadBalancer" {
            errs.push(FieldError::forbidden(path, "may only be used when `type` is 'LoadBalancer'"));
        }
        let val = val.trim();
        if !val.is_empty() {
            for r in val.split(',') {
                errs.extend(is_valid_cidr(path, r.trim()));
            }
        }
    }

    if get(spec, "allocateLoadBalancerNodePorts").is_some() && svc_type != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if svc_type == "LoadBalancer" && get(spec, "allocateLoadBalancerNodePorts").is_none() {
        // Sic: upstream's path has no "spec.".
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }

    if svc_type == "LoadBalancer" {
        if let Some(class) = get(spec, "loadBalancerClass").and_then(Value::as_str) {
            for m in is_qualified_name(class) {
                errs.push(FieldError::invalid("spec.loadBalancerClass", class, m));
            }
        }
    } else if get(spec, "loadBalancerClass").is_some() {
        errs.push(FieldError::forbidden(
            "spec.loadBalancerClass",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }

    let etp = s(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else if etp.is_empty() {
        errs.push(FieldError::required("spec.externalTrafficPolicy", ""));
    } else if etp != "Cluster" && etp != "Local" {
        errs.push(FieldError::not_supported("spec.externalTrafficPolicy", etp, &["Cluster", "Local"]));
    }
    let hcnp = int(spec, "healthCheckNodePort").unwrap_or(0);
    let needs_health_check = svc_type == "LoadBalancer" && etp == "Local";
    if !needs_health_check && hcnp != 0 {
        errs.push(FieldError::invalid(
            "spec.healthCheckNodePort",
            hcnp,
            "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'",
        ));
    } else if needs_health_check && hcnp != 0 {
        // A missing one is allocated after validation in netlab, so only its range is checked.
        for m in is_valid_port_num(hcnp) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", hcnp, m));
        }
    }

    match get(spec, "internalTrafficPolicy").and_then(Value::as_str) {
        None => {
            if matches!(svc_type, "NodePort" | "LoadBalancer" | "ClusterIP") {
                errs.push(FieldError::required("spec.internalTrafficPolicy", ""));
            }
        }
        Some("Cluster" | "Local") => {}
        Some(other) => {
            errs.push(FieldError::not_supported("spec.internalTrafficPolicy", other, &["Cluster", "Local"]))
        }
    }

    if let Some(td) = get(spec, "trafficDistribution").and_then(Value::as_str)
        && td != "PreferClose"
    {
        errs.push(FieldError::not_supported("spec.trafficDistribution", td, &["PreferClose"]));
    }
}

fn validate_client_ip_affinity(config: Option<&Value>, errs: &mut Vec<FieldError>) {
    let path = "spec.sessionAffinityConfig";
    let detail = "when session affinity type is ClientIP";
    let Some(config) = config else {
        errs.push(FieldError::required(path, detail));
        return;
    };
    let Some(client_ip) = get(config, "clientIP") else {
        errs.push(FieldError::required(format!("{path}.clientIP"), detail));
        return;
    };
    let Some(timeout) = int(client_ip, "timeoutSeconds") else {
        errs.push(FieldError::required(format!("{path}.clientIP.timeoutSeconds"), detail));
        return;
    };
    if timeout <= 0 || timeout > 86400 {
        errs.push(FieldError::invalid(
            format!("{path}.clientIP.timeoutSeconds"),
            timeout,
            "must be greater than 0 and less than 86400",
        ));
    }
}

fn validate_service_port(
    port: &Value,
    require_name: bool,
    names: &mut HashSet<String>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let name = s(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else if !name.is_empty() {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, m));
        }
        if !names.insert(name.to_string()) {
            errs.push(FieldError::duplicate(format!("{path}.name"), name));
        }
    }
    let number = int(port, "port").unwrap_or(0);
    for m in is_valid_port_num(number) {
        errs.push(FieldError::invalid(format!("{path}.port"), number, m));
    }
    match s(port, "protocol") {
        "" => errs.push(FieldError::required(format!("{path}.protocol"), "")),
        p if PORT_PROTOCOLS.contains(&p) => {}
        p => errs.push(FieldError::not_supported(format!("{path}.protocol"), p, &PORT_PROTOCOLS)),
    }
    validate_port_num_or_name(
        port.get("targetPort").unwrap_or(&json!(0)),
        &format!("{path}.targetPort"),
        errs,
    );
    if let Some(ap) = get(port, "appProtocol").and_then(Value::as_str) {
        for m in is_qualified_name(ap) {
            errs.push(FieldError::invalid(format!("{path}.appProtocol"), ap, m));
        }
    }
}

/// `ValidateServiceClusterIPsRelatedFields`.
fn validate_cluster_ips_related_fields(spec: &Value, errs: &mut Vec<FieldError>) {
    if s(spec, "type") == "ExternalName" {
        return;
    }
    let cluster_ip = s(spec, "clusterIP");
    let ips_value = spec.get("clusterIPs").cloned().unwrap_or(Value::Null);
    let ips: Vec<&str> = arr(spec, "clusterIPs").iter().map(|v| v.as_str().unwrap_or("")).collect();
    if !cluster_ip.is_empty() {
        if ips.is_empty() {
            errs.push(FieldError::required("spec.clusterIPs", ""));
        } else if ips[0] != cluster_ip {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                ips_value.clone(),
                "first value must match `clusterIP`",
            ));
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            ips_value.clone(),
            "must be empty when `clusterIP` is not specified",
        ));
    }

    let mut seen = HashSet::new();
    for (i, f) in arr(spec, "ipFamilies").iter().enumerate() {
        let f = f.as_str().unwrap_or("");
        if f != "IPv4" && f != "IPv6" {
            errs.push(FieldError::not_supported(format!("spec.ipFamilies[{i}]"), f, &["IPv4", "IPv6"]));
        }
        if !seen.insert(f) {
            errs.push(FieldError::duplicate(format!("spec.ipFamilies[{i}]"), f));
        }
    }
    if let Some(policy) = get(spec, "ipFamilyPolicy").and_then(Value::as_str)
        && !matches!(policy, "SingleStack" | "PreferDualStack" | "RequireDualStack")
    {
        errs.push(FieldError::not_supported(
            "spec.ipFamilyPolicy",
            policy,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
        ));
    }

    let mut has_invalid = false;
    for (i, ip) in ips.iter().enumerate() {
        if i == 0 && *ip == "None" {
            if ips.len() > 1 {
                has_invalid = true;
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    ips_value.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let e = is_valid_ip(&format!("spec.clusterIPs[{i}]"), ip);
        has_invalid |= !e.is_empty();
        errs.extend(e);
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid("spec.clusterIPs", ips_value.clone(), "may only hold up to 2 values"));
    }
    if has_invalid {
        return;
    }
    if ips.len() > 1 {
        let dual = ips.len() == 2 && is_ipv6(ips[0]) != is_ipv6(ips[1]);
        if !dual {
            errs.push(FieldError::invalid(
                "spec.clusterIPs",
                ips_value.clone(),
                "may specify no more than one IP for each IP family",
            ));
        }
    }
    let families = arr(spec, "ipFamilies");
    if !is_headless(spec) && !ips.is_empty() && !families.is_empty() {
        for (i, ip) in ips.iter().enumerate().take(families.len()) {
            match families[i].as_str() {
                Some("IPv4") if is_ipv6(ip) => errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    *ip,
                    format!("expected an IPv4 value as indicated by `ipFamilies[{i}]`"),
                )),
                Some("IPv6") if !is_ipv6(ip) => errs.push(FieldError::invalid(
                    format!("spec.clusterIPs[{i}]"),
                    *ip,
                    format!("expected an IPv6 value as indicated by `ipFamilies[{i}]`"),
                )),
                _ => {}
            }
        }
    }
}

/// The service REST's `NormalizeClusterIPs` for an update: keeps `clusterIP` and `clusterIPs` in
/// step when a client only manages one of them.
fn normalize_cluster_ips_for_update(old: &Value, new: &mut Value) {
    let old_spec = spec_of(old);
    let old_ip = s(old_spec, "clusterIP").to_string();
    let old_ips = arr(old_spec, "clusterIPs").to_vec();
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    let new_ip = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("").to_string();
    let new_ips = spec.get("clusterIPs").and_then(Value::as_array).cloned().unwrap_or_default();
    // ClusterIPs were dropped by an old client patching something else.
    if !old_ips.is_empty() && new_ips.is_empty() && old_ip == new_ip {
        spec.insert("clusterIPs".into(), Value::Array(old_ips.clone()));
    }
    let new_ips = spec.get("clusterIPs").and_then(Value::as_array).cloned().unwrap_or_default();
    if old_ip != new_ip {
        let same_ips = old_ips == new_ips;
        if !old_ip.is_empty() && new_ip.is_empty() && same_ips {
            spec.remove("clusterIPs");
        }
        if !new_ip.is_empty() && same_ips {
            spec.insert("clusterIPs".into(), json!([new_ip]));
        }
    }
}

pub(crate) fn validate_service_update(
    old: &Value,
    new: &Value,
    opts: &ValidationOptions,
    errs: &mut Vec<FieldError>,
) {
    let mut new = new.clone();
    normalize_cluster_ips_for_update(old, &mut new);
    validate_object_meta_update(old, &new, errs);
    let (os, ns) = (spec_of(old), spec_of(&new));
    let external_name = s(os, "type") == "ExternalName" || s(ns, "type") == "ExternalName";

    let both_headless = is_headless(os) && is_headless(ns);
    if !external_name && !both_headless {
        let (old_ips, new_ips) = (arr(os, "clusterIPs"), arr(ns, "clusterIPs"));
        let new_ips_value = ns.get("clusterIPs").cloned().unwrap_or(Value::Null);
        let changed =
            || FieldError::invalid("spec.clusterIPs[0]", new_ips_value.clone(), "may not change once set");
        if old_ips.len() == new_ips.len() {
            for (i, (o, n)) in old_ips.iter().zip(new_ips).enumerate() {
                if o != n {
                    errs.push(FieldError::invalid(
                        format!("spec.clusterIPs[{i}]"),
                        new_ips_value.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if old_ips.len() > new_ips.len() {
            if new_ips.is_empty() {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    new_ips_value.clone(),
                    "primary clusterIP can not be unset",
                ));
            }
            if !old_ips.is_empty() && !new_ips.is_empty() && new_ips[0] != old_ips[0] {
                errs.push(changed());
            }
            if new_ips.len() == 1 && s(ns, "ipFamilyPolicy") != "SingleStack" {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    ns.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                    "must be set to 'SingleStack' when releasing the secondary clusterIP",
                ));
            }
        } else if !old_ips.is_empty() && new_ips[0] != old_ips[0] {
            errs.push(changed());
        }
    }

    if !external_name && is_headless(os) == is_headless(ns) && !is_headless(ns) {
        let (old_f, new_f) = (arr(os, "ipFamilies"), arr(ns, "ipFamilies"));
        let new_f_value = ns.get("ipFamilies").cloned().unwrap_or(Value::Null);
        // Sic: upstream reports some of these with the clusterIPs as the value.
        let ips_value = ns.get("clusterIPs").cloned().unwrap_or(Value::Null);
        if old_f.len() == new_f.len() {
            for (o, n) in old_f.iter().zip(new_f) {
                if o != n {
                    errs.push(FieldError::invalid(
                        "spec.ipFamilies[0]",
                        new_f_value.clone(),
                        "may not change once set",
                    ));
                }
            }
        } else if old_f.len() > new_f.len() {
            if arr(ns, "clusterIPs").is_empty() {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    new_f_value.clone(),
                    "primary ipFamily can not be unset",
                ));
            }
            if !new_f.is_empty() && new_f[0] != old_f[0] {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    ips_value.clone(),
                    "may not change once set",
                ));
            }
            if new_f.len() == 1 && s(ns, "ipFamilyPolicy") != "SingleStack" {
                errs.push(FieldError::invalid(
                    "spec.ipFamilyPolicy",
                    ns.get("ipFamilyPolicy").cloned().unwrap_or(Value::Null),
                    "must be set to 'SingleStack' when releasing the secondary ipFamily",
                ));
            }
        } else if !old_f.is_empty() && !new_f.is_empty() && new_f[0] != old_f[0] {
            errs.push(FieldError::invalid("spec.ipFamilies[0]", ips_value, "may not change once set"));
        }
    }

    if s(os, "type") == "LoadBalancer"
        && s(ns, "type") == "LoadBalancer"
        && get(os, "loadBalancerClass") != get(ns, "loadBalancerClass")
    {
        errs.push(FieldError::invalid(
            "spec.loadBalancerClass",
            ns.get("loadBalancerClass").cloned().unwrap_or(Value::Null),
            "may not change once set",
        ));
    }

    let needs_hc =
        |spec: &Value| s(spec, "type") == "LoadBalancer" && s(spec, "externalTrafficPolicy") == "Local";
    if needs_hc(os) && needs_hc(ns) && int(os, "healthCheckNodePort") != int(ns, "healthCheckNodePort") {
        errs.push(FieldError::forbidden("spec.healthCheckNodePort", FIELD_IMMUTABLE));
    }

    validate_service(&new, opts, errs);
}
