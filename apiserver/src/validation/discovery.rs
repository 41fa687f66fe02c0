//! pkg/apis/discovery/validation: EndpointSlice.

use std::{collections::HashSet, net::IpAddr};

use serde_json::Value;

use super::{
    core::ip::validate_non_special_ip,
    core::port::PORT_PROTOCOLS,
    field::FieldError,
    format::{is_dns1123_label, is_dns1123_subdomain, is_qualified_name, parse_ip_sloppy},
    json::{arr, get, s, string_map},
    meta::{NameKind, validate_labels, validate_object_meta},
    options::ValidationOptions,
};

pub(crate) fn validate_endpoint_slice(obj: &Value, opts: &ValidationOptions, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    let address_type = s(obj, "addressType");
    match address_type {
        "" => errs.push(FieldError::required("addressType", "")),
        "IPv4" | "IPv6" | "FQDN" => {}
        other => errs.push(FieldError::not_supported("addressType", other, &["FQDN", "IPv4", "IPv6"])),
    }

    let endpoints = arr(obj, "endpoints");
    if endpoints.len() > 1000 {
        errs.push(FieldError::too_many("endpoints", endpoints.len(), 1000));
    } else {
        for (i, ep) in endpoints.iter().enumerate() {
            let p = format!("endpoints[{i}]");
            let addresses = arr(ep, "addresses");
            let ap = format!("{p}.addresses");
            if addresses.is_empty() {
                errs.push(FieldError::required(ap.clone(), "must contain at least 1 address"));
            } else if addresses.len() > 100 {
                errs.push(FieldError::too_many(ap.clone(), addresses.len(), 100));
            }
            for (j, a) in addresses.iter().enumerate() {
                let a = a.as_str().unwrap_or("");
                let path = format!("{ap}[{j}]");
                match address_type {
                    "IPv4" | "IPv6" => {
                        let family_ok = match parse_ip_sloppy(a) {
                            Some(IpAddr::V4(_)) => address_type == "IPv4",
                            Some(IpAddr::V6(_)) => address_type == "IPv6",
                            None => false,
                        };
                        if family_ok {
                            validate_non_special_ip(&path, a, opts, errs);
                        } else {
                            errs.push(FieldError::invalid(
                                path,
                                a,
                                format!("must be a valid {address_type} address"),
                            ));
                        }
                    }
                    "FQDN" => validate_fqdn(a, &path, errs),
                    _ => {}
                }
            }
            if let Some(node) = get(ep, "nodeName").and_then(Value::as_str) {
                for m in is_dns1123_subdomain(node) {
                    errs.push(FieldError::invalid(format!("{p}.nodeName"), node, m));
                }
            }
            let topology = string_map(ep, "deprecatedTopology");
            if topology.len() > 16 {
                errs.push(FieldError::too_many(format!("{p}.deprecatedTopology"), topology.len(), 16));
            }
            validate_labels(&topology, &format!("{p}.deprecatedTopology"), errs);
            if let Some(h) = get(ep, "hostname").and_then(Value::as_str) {
                for m in is_dns1123_label(h) {
                    errs.push(FieldError::invalid(format!("{p}.hostname"), h, m));
                }
            }
        }
    }

    let ports = arr(obj, "ports");
    if ports.len() > 100 {
        errs.push(FieldError::too_many("ports", ports.len(), 100));
        return;
    }
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("ports[{i}]");
        let name = s(port, "name");
        if !name.is_empty() {
            for m in is_dns1123_label(name) {
                errs.push(FieldError::invalid(format!("{p}.name"), name, m));
            }
        }
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{p}.name"), name));
        }
        match get(port, "protocol").and_then(Value::as_str) {
            None => errs.push(FieldError::required(format!("{p}.protocol"), "")),
            Some(pr) if PORT_PROTOCOLS.contains(&pr) => {}
            Some(pr) => errs.push(FieldError::not_supported(format!("{p}.protocol"), pr, &PORT_PROTOCOLS)),
        }
        if let Some(ap) = get(port, "appProtocol").and_then(Value::as_str) {
            for m in is_qualified_name(ap) {
                errs.push(FieldError::invalid(format!("{p}.appProtocol"), ap, m));
            }
        }
    }
}

/// `IsFullyQualifiedDomainName`.
fn validate_fqdn(name: &str, path: &str, errs: &mut Vec<FieldError>) {
    if name.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let msgs = is_dns1123_subdomain(name);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(path, name, msgs.join(",")));
        return;
    }
    if name.split('.').count() < 2 {
        errs.push(FieldError::invalid(
            path,
            name,
            "should be a domain with at least two segments separated by dots",
        ));
        return;
    }
    for label in name.split('.') {
        let msgs = is_dns1123_label(label);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(path, label, msgs.join(",")));
            return;
        }
    }
}
