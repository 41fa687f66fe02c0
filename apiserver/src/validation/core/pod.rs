//! Pod validation (pkg/apis/core/validation: ValidatePodSpec and friends, ValidatePodUpdate,
//! ValidatePodTemplateSpec, which apps/v1 reuses for its templates).

use std::collections::{BTreeMap, BTreeSet, HashSet};

use serde_json::{Value, json};

use super::port::{PORT_PROTOCOLS, validate_port_num_or_name};
use crate::validation::{
    field::{FieldError, render_value},
    format::{
        IS_NEGATIVE, inclusive_range_error, is_alnum_lower, is_dns1123_label, is_dns1123_subdomain,
        is_qualified_name, is_valid_ip, is_valid_label_value, is_valid_port_name, is_valid_port_num,
        max_len_error, regex_error,
    },
    json::{arr, boolean, get, int, meta_of, normalized, s, sem_eq, spec_of, string_map},
    meta::{
        NameKind, validate_annotations, validate_labels, validate_object_meta, validate_object_meta_update,
    },
};

/// The keys of a volume's source, in upstream's checking order, with the path name each error uses.
const VOLUME_SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

pub(crate) fn validate_pod(obj: &Value, create: bool, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, true, NameKind::Subdomain, errs);
    let spec = spec_of(obj);
    validate_pod_spec(spec, "spec", true, errs);
    for (kind, key) in [("containers", "containers"), ("initContainers", "initContainers")] {
        for (i, c) in arr(spec, key).iter().enumerate() {
            let image = s(c, "image");
            if image.len() != image.trim().len() {
                errs.push(FieldError::invalid(
                    format!("spec.{kind}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    if create {
        if !arr(spec, "ephemeralContainers").is_empty() {
            errs.push(FieldError::forbidden("spec.ephemeralContainers", "cannot be set on create"));
        }
        if !s(spec, "nodeName").is_empty() && !arr(spec, "schedulingGates").is_empty() {
            errs.push(FieldError::forbidden(
                "spec.nodeName",
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
    }
}

/// `ValidatePodSpec`. `is_pod` is upstream's `ResourceIsPod`: false for templates.
fn validate_pod_spec(spec: &Value, path: &str, is_pod: bool, errs: &mut Vec<FieldError>) {
    let grace = int(spec, "terminationGracePeriodSeconds");
    if grace.is_none() {
        errs.push(FieldError::required(format!("{path}.terminationGracePeriodSeconds"), ""));
    }
    let volumes = validate_volumes(arr(spec, "volumes"), &format!("{path}.volumes"), errs);
    let restart_policy = s(spec, "restartPolicy");
    validate_containers(arr(spec, "containers"), &volumes, grace, &format!("{path}.containers"), errs);
    validate_init_containers(spec, &volumes, grace, &format!("{path}.initContainers"), errs);

    if boolean(spec, "hostNetwork") {
        for (i, c) in arr(spec, "containers").iter().enumerate() {
            for (j, p) in arr(c, "ports").iter().enumerate() {
                let (hp, cp) = (int(p, "hostPort").unwrap_or(0), int(p, "containerPort").unwrap_or(0));
                if (is_pod || hp != 0) && hp != cp {
                    errs.push(FieldError::invalid(
                        format!("{path}.containers[{i}].ports[{j}].hostPort"),
                        hp,
                        "must match `containerPort` when `hostNetwork` is true",
                    ));
                }
            }
        }
    }

    match restart_policy {
        "Always" | "OnFailure" | "Never" => {}
        "" => errs.push(FieldError::required(format!("{path}.restartPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            format!("{path}.restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        )),
    }
    let dns_policy = s(spec, "dnsPolicy");
    match dns_policy {
        "ClusterFirstWithHostNet" | "ClusterFirst" | "Default" | "None" => {}
        "" => errs.push(FieldError::required(format!("{path}.dnsPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            format!("{path}.dnsPolicy"),
            other,
            &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        )),
    }
    validate_labels(&string_map(spec, "nodeSelector"), &format!("{path}.nodeSelector"), errs);
    validate_dns_config(get(spec, "dnsConfig"), dns_policy, &format!("{path}.dnsConfig"), errs);
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let ct = s(g, "conditionType");
        for m in is_qualified_name(ct) {
            errs.push(FieldError::invalid(format!("{path}.readinessGates[{i}].conditionType"), ct, m));
        }
    }
    let mut gates = HashSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let name = s(g, "name");
        for m in is_qualified_name(name) {
            errs.push(FieldError::invalid(format!("{path}.schedulingGates[{i}]"), name, m));
        }
        if !gates.insert(name) {
            errs.push(FieldError::duplicate(format!("{path}.schedulingGates[{i}]"), name));
        }
    }
    for (field, kind) in [("serviceAccountName", NameKind::Subdomain), ("nodeName", NameKind::Subdomain)] {
        let v = s(spec, field);
        if !v.is_empty() {
            for m in kind.check(v, false) {
                errs.push(FieldError::invalid(format!("{path}.{field}"), v, m));
            }
        }
    }
    if let Some(ads) = int(spec, "activeDeadlineSeconds")
        && !(1..=i64::from(i32::MAX)).contains(&ads)
    {
        errs.push(FieldError::invalid(
            format!("{path}.activeDeadlineSeconds"),
            ads,
            inclusive_range_error(1, i64::from(i32::MAX)),
        ));
    }
    for field in ["hostname", "subdomain"] {
        let v = s(spec, field);
        if !v.is_empty() {
            for m in is_dns1123_label(v) {
                errs.push(FieldError::invalid(format!("{path}.{field}"), v, m));
            }
        }
    }
    validate_tolerations(arr(spec, "tolerations"), &format!("{path}.tolerations"), errs);
    for (i, alias) in arr(spec, "hostAliases").iter().enumerate() {
        errs.extend(is_valid_ip(&format!("{path}.hostAliases[{i}].ip"), s(alias, "ip")));
        for (j, h) in arr(alias, "hostnames").iter().enumerate() {
            let h = h.as_str().unwrap_or("");
            for m in is_dns1123_subdomain(h) {
                errs.push(FieldError::invalid(format!("{path}.hostAliases[{i}].hostnames[{j}]"), h, m));
            }
        }
    }
    let pcn = s(spec, "priorityClassName");
    if !pcn.is_empty() {
        for m in is_dns1123_subdomain(pcn) {
            errs.push(FieldError::invalid(format!("{path}.priorityClassName"), pcn, m));
        }
    }
}

/// `ValidateVolumes`; returns the names of the volumes that are valid, for volumeMount lookups.
fn validate_volumes(volumes: &[Value], path: &str, errs: &mut Vec<FieldError>) -> HashSet<String> {
    let mut names = HashSet::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut el = Vec::new();
        let mut count = 0;
        for (key, err_name) in VOLUME_SOURCES {
            if get(vol, key).is_some() {
                if count > 0 {
                    el.push(FieldError::forbidden(
                        format!("{p}.{err_name}"),
                        "may not specify more than 1 volume type",
                    ));
                } else {
                    count += 1;
                }
            }
        }
        if count == 0 {
            el.push(FieldError::required(p.clone(), "must specify a volume type"));
        }
        let name = s(vol, "name");
        if name.is_empty() {
            el.push(FieldError::required(format!("{p}.name"), ""));
        } else {
            for m in is_dns1123_label(name) {
                el.push(FieldError::invalid(format!("{p}.name"), name, m));
            }
        }
        if names.contains(name) {
            el.push(FieldError::duplicate(format!("{p}.name"), name));
        }
        if el.is_empty() {
            names.insert(name.to_string());
        } else {
            errs.extend(el);
        }
    }
    names
}

fn validate_containers(
    containers: &[Value],
    volumes: &HashSet<String>,
    grace: Option<i64>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("{path}[{i}]");
        validate_container_common(c, volumes, &p, errs);
        let name = s(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(format!("{p}.name"), name));
        }
        if let Some(lc) = get(c, "lifecycle") {
            validate_lifecycle(lc, grace, &format!("{p}.lifecycle"), errs);
        }
        for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
            if let Some(pr) = get(c, probe) {
                validate_probe(pr, probe, &format!("{p}.{probe}"), errs);
            }
        }
        if get(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                format!("{p}.restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    accumulate_host_ports(containers, path, &mut HashSet::new(), errs);
}

fn validate_init_containers(
    spec: &Value,
    volumes: &HashSet<String>,
    grace: Option<i64>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut names: HashSet<&str> = arr(spec, "containers").iter().map(|c| s(c, "name")).collect();
    for (i, c) in arr(spec, "initContainers").iter().enumerate() {
        let p = format!("{path}[{i}]");
        validate_container_common(c, volumes, &p, errs);
        let mut restartable = false;
        if let Some(rp) = get(c, "restartPolicy") {
            let rp = rp.as_str().unwrap_or("");
            if rp == "Always" {
                restartable = true;
            } else {
                errs.push(FieldError::not_supported(format!("{p}.restartPolicy"), rp, &["Always"]));
            }
        }
        let name = s(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(format!("{p}.name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        accumulate_host_ports(std::slice::from_ref(c), path, &mut HashSet::new(), errs);
        if restartable {
            if let Some(lc) = get(c, "lifecycle") {
                validate_lifecycle(lc, grace, &format!("{p}.lifecycle"), errs);
            }
            for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
                if let Some(pr) = get(c, probe) {
                    validate_probe(pr, probe, &format!("{p}.{probe}"), errs);
                }
            }
        } else {
            for f in ["lifecycle", "livenessProbe", "readinessProbe", "startupProbe"] {
                if get(c, f).is_some() {
                    errs.push(FieldError::forbidden(
                        format!("{p}.{f}"),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
}

/// `validateContainerCommon`: what regular and init containers share.
fn validate_container_common(c: &Value, volumes: &HashSet<String>, path: &str, errs: &mut Vec<FieldError>) {
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(format!("{path}.name"), ""));
    } else {
        for m in is_dns1123_label(name) {
            errs.push(FieldError::invalid(format!("{path}.name"), name, m));
        }
    }
    if s(c, "image").is_empty() {
        errs.push(FieldError::required(format!("{path}.image"), ""));
    }
    match s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(format!("{path}.terminationMessagePolicy"), "")),
        other => errs.push(FieldError::not_supported(
            format!("{path}.terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_container_ports(arr(c, "ports"), &format!("{path}.ports"), errs);
    for (i, e) in arr(c, "env").iter().enumerate() {
        let n = s(e, "name");
        if n.is_empty() {
            errs.push(FieldError::required(format!("{path}.env[{i}].name"), ""));
        } else if n.chars().any(|ch| !ch.is_ascii() || ch.is_ascii_control() || ch == '=') {
            errs.push(FieldError::invalid(
                format!("{path}.env[{i}].name"),
                n,
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
    }
    let mut mount_paths = HashSet::new();
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let p = format!("{path}.volumeMounts[{i}]");
        let mname = s(m, "name");
        if mname.is_empty() {
            errs.push(FieldError::required(format!("{p}.name"), ""));
        }
        if !volumes.contains(mname) {
            errs.push(FieldError::not_found(format!("{p}.name"), mname));
        }
        let mp = s(m, "mountPath");
        if mp.is_empty() {
            errs.push(FieldError::required(format!("{p}.mountPath"), ""));
        }
        if !mount_paths.insert(mp) {
            errs.push(FieldError::invalid(format!("{p}.mountPath"), mp, "must be unique"));
        }
    }
    match s(c, "imagePullPolicy") {
        "Always" | "IfNotPresent" | "Never" => {}
        "" => errs.push(FieldError::required(format!("{path}.imagePullPolicy"), "")),
        other => errs.push(FieldError::not_supported(
            format!("{path}.imagePullPolicy"),
            other,
            &["Always", "IfNotPresent", "Never"],
        )),
    }
}

fn validate_container_ports(ports: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let name = s(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                for m in msgs {
                    errs.push(FieldError::invalid(format!("{p}.name"), name, m));
                }
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(format!("{p}.name"), name));
            }
        }
        let cp = int(port, "containerPort").unwrap_or(0);
        if cp == 0 {
            errs.push(FieldError::required(format!("{p}.containerPort"), ""));
        } else {
            for m in is_valid_port_num(cp) {
                errs.push(FieldError::invalid(format!("{p}.containerPort"), cp, m));
            }
        }
        let hp = int(port, "hostPort").unwrap_or(0);
        if hp != 0 {
            for m in is_valid_port_num(hp) {
                errs.push(FieldError::invalid(format!("{p}.hostPort"), hp, m));
            }
        }
        match s(port, "protocol") {
            "" => errs.push(FieldError::required(format!("{p}.protocol"), "")),
            pr if PORT_PROTOCOLS.contains(&pr) => {}
            pr => errs.push(FieldError::not_supported(format!("{p}.protocol"), pr, &PORT_PROTOCOLS)),
        }
    }
}

/// `AccumulateUniqueHostPorts`: one host port per protocol and host IP.
fn accumulate_host_ports(
    containers: &[Value],
    path: &str,
    seen: &mut HashSet<String>,
    errs: &mut Vec<FieldError>,
) {
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", s(port, "protocol"), s(port, "hostIP"));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(format!("{path}[{ci}].ports[{pi}].hostPort"), key));
            }
        }
    }
}

/// `validateHandler` for probes (`sleep` only for lifecycle hooks).
fn validate_handler(
    h: &Value,
    allow_sleep: bool,
    grace: Option<i64>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut count = 0;
    let kinds: &[&str] = if allow_sleep {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    } else {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    };
    for kind in kinds {
        let Some(v) = get(h, kind) else { continue };
        let p = format!("{path}.{kind}");
        if count > 0 {
            errs.push(FieldError::forbidden(p, "may not specify more than 1 handler type"));
            continue;
        }
        count += 1;
        match *kind {
            "exec" => {
                if arr(v, "command").is_empty() {
                    errs.push(FieldError::required(format!("{p}.command"), ""));
                }
            }
            "httpGet" => {
                if s(v, "path").is_empty() {
                    errs.push(FieldError::required(format!("{p}.path"), ""));
                }
                validate_port_num_or_name(v.get("port").unwrap_or(&json!(0)), &format!("{p}.port"), errs);
                let scheme = s(v, "scheme");
                if scheme != "HTTP" && scheme != "HTTPS" {
                    errs.push(FieldError::not_supported(format!("{p}.scheme"), scheme, &["HTTP", "HTTPS"]));
                }
                for header in arr(v, "httpHeaders") {
                    let n = s(header, "name");
                    if n.is_empty() || !n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
                        errs.push(FieldError::invalid(
                            format!("{p}.httpHeaders"),
                            n,
                            regex_error(
                                "a valid HTTP header must consist of alphanumeric characters or '-'",
                                "[-A-Za-z0-9]+",
                                &["X-Header-Name"],
                            ),
                        ));
                    }
                }
            }
            "tcpSocket" => {
                validate_port_num_or_name(v.get("port").unwrap_or(&json!(0)), &format!("{p}.port"), errs)
            }
            "grpc" => {
                validate_port_num_or_name(&json!(int(v, "port").unwrap_or(0)), &format!("{p}.port"), errs)
            }
            _ => {
                let secs = int(v, "seconds").unwrap_or(0);
                if let Some(g) = grace
                    && (secs < 0 || secs > g)
                {
                    errs.push(FieldError::invalid(
                        p,
                        secs,
                        format!("must be non-negative and less than terminationGracePeriodSeconds ({g})"),
                    ));
                }
            }
        }
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

fn validate_lifecycle(lc: &Value, grace: Option<i64>, path: &str, errs: &mut Vec<FieldError>) {
    for hook in ["postStart", "preStop"] {
        if let Some(h) = get(lc, hook) {
            validate_handler(h, true, grace, &format!("{path}.{hook}"), errs);
        }
    }
}

fn validate_probe(probe: &Value, kind: &str, path: &str, errs: &mut Vec<FieldError>) {
    validate_handler(probe, false, None, path, errs);
    for f in
        ["initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"]
    {
        let v = int(probe, f).unwrap_or(0);
        if v < 0 {
            errs.push(FieldError::invalid(format!("{path}.{f}"), v, IS_NEGATIVE));
        }
    }
    if let Some(t) = int(probe, "terminationGracePeriodSeconds")
        && t <= 0
    {
        errs.push(FieldError::invalid(
            format!("{path}.terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    match kind {
        "readinessProbe" => {
            if let Some(t) = get(probe, "terminationGracePeriodSeconds") {
                errs.push(FieldError::invalid(
                    format!("{path}.terminationGracePeriodSeconds"),
                    t.clone(),
                    "must not be set for readinessProbes",
                ));
            }
        }
        _ => {
            let st = int(probe, "successThreshold").unwrap_or(0);
            if st != 1 {
                errs.push(FieldError::invalid(format!("{path}.successThreshold"), st, "must be 1"));
            }
        }
    }
}

fn validate_dns_config(config: Option<&Value>, dns_policy: &str, path: &str, errs: &mut Vec<FieldError>) {
    if dns_policy == "None" {
        let Some(config) = config else {
            errs.push(FieldError::required(path, "must provide `dnsConfig` when `dnsPolicy` is None"));
            return;
        };
        if arr(config, "nameservers").is_empty() {
            errs.push(FieldError::required(
                format!("{path}.nameservers"),
                "must provide at least one DNS nameserver when `dnsPolicy` is None",
            ));
            return;
        }
    }
    let Some(config) = config else { return };
    let nameservers = arr(config, "nameservers");
    if nameservers.len() > 3 {
        errs.push(FieldError::invalid(
            format!("{path}.nameservers"),
            json!(nameservers),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in nameservers.iter().enumerate() {
        errs.extend(is_valid_ip(&format!("{path}.nameservers[{i}]"), ns.as_str().unwrap_or("")));
    }
    let searches: Vec<&str> = arr(config, "searches").iter().map(|v| v.as_str().unwrap_or("")).collect();
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            format!("{path}.searches"),
            json!(searches),
            "must not have more than 32 search paths",
        ));
    }
    if searches.join(" ").len() > 2048 {
        errs.push(FieldError::invalid(
            format!("{path}.searches"),
            json!(searches),
            "must not have more than 2048 characters (including spaces) in the search list",
        ));
    }
    for (i, search) in searches.iter().enumerate() {
        // RelaxedDNSSearchValidation is on by default in v1.33: "." and underscores are allowed.
        if *search == "." {
            continue;
        }
        let search = search.strip_suffix('.').unwrap_or(search);
        let ok = search.len() <= 253
            && search.split('.').all(|l| {
                let l = l.strip_prefix('_').unwrap_or(l);
                let b = l.as_bytes();
                !b.is_empty()
                    && is_alnum_lower(b[0])
                    && is_alnum_lower(b[b.len() - 1])
                    && b.iter().all(|&c| is_alnum_lower(c) || c == b'-' || c == b'_')
            });
        if search.len() > 253 {
            errs.push(FieldError::invalid(format!("{path}.searches[{i}]"), search, max_len_error(253)));
        }
        if !ok {
            errs.push(FieldError::invalid(
                format!("{path}.searches[{i}]"),
                search,
                regex_error(
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '_', '-' or '.', and must start and end with an alphanumeric character",
                    "_?[a-z0-9]([-_a-z0-9]*[a-z0-9])?(\\._?[a-z0-9]([-_a-z0-9]*[a-z0-9])?)*",
                    &["example.com"],
                ),
            ));
        }
    }
    for (i, o) in arr(config, "options").iter().enumerate() {
        if s(o, "name").is_empty() {
            errs.push(FieldError::required(format!("{path}.options[{i}]"), "must not be empty"));
        }
    }
}

fn validate_tolerations(tolerations: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let key = s(t, "key");
        if !key.is_empty() {
            for m in is_qualified_name(key) {
                errs.push(FieldError::invalid(format!("{p}.key"), key, m));
            }
        }
        let op = s(t, "operator");
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(
                format!("{p}.operator"),
                op,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        let effect = s(t, "effect");
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                format!("{p}.effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = s(t, "value");
        match op {
            "Equal" | "" => {
                let msgs = is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(format!("{p}.operator"), value, msgs.join(";")));
                }
            }
            "Exists" => {
                if !value.is_empty() {
                    errs.push(FieldError::invalid(
                        format!("{p}.operator"),
                        value,
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => {
                errs.push(FieldError::not_supported(format!("{p}.operator"), other, &["Equal", "Exists"]))
            }
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute") {
            errs.push(FieldError::not_supported(
                format!("{p}.effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
}

const UPDATABLE_POD_SPEC_FIELDS: &str = "`spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// `ValidatePodUpdate`.
pub(crate) fn validate_pod_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta_update(old, new, errs);
    validate_pod(new, false, errs);
    let (os, ns) = (spec_of(old), spec_of(new));

    for key in ["containers", "initContainers"] {
        let (oc, nc) = (arr(os, key), arr(ns, key));
        if oc.len() != nc.len() {
            errs.push(FieldError::forbidden(
                format!("spec.{key}"),
                "pod updates may not add or remove containers",
            ));
            return;
        }
        for (i, c) in nc.iter().enumerate() {
            let image = s(c, "image");
            if image.is_empty() {
                errs.push(FieldError::required(format!("spec.{key}[{i}].image"), ""));
            }
            if image.trim().len() != image.len() {
                errs.push(FieldError::invalid(
                    format!("spec.{key}[{i}].image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }

    match (int(os, "activeDeadlineSeconds"), int(ns, "activeDeadlineSeconds")) {
        (_, Some(n)) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return;
        }
        (Some(o), Some(n)) if o < n => {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                n,
                "must be less than or equal to previous value",
            ));
            return;
        }
        (Some(_), None) => errs.push(FieldError::invalid(
            "spec.activeDeadlineSeconds",
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }

    // Tolerations: only additions, and changes to tolerationSeconds.
    let new_tolerations = arr(ns, "tolerations");
    for o in arr(os, "tolerations") {
        let found = new_tolerations.iter().any(|n| {
            let mut o = o.clone();
            if let Some(m) = o.as_object_mut() {
                match n.get("tolerationSeconds") {
                    Some(ts) => m.insert("tolerationSeconds".into(), ts.clone()),
                    None => m.remove("tolerationSeconds"),
                };
            }
            sem_eq(Some(&o), Some(n))
        });
        if !found {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }

    // Scheduling gates: only deletions.
    let old_gates: HashSet<&str> = arr(os, "schedulingGates").iter().map(|g| s(g, "name")).collect();
    let mut added: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in arr(ns, "schedulingGates").iter().enumerate() {
        if !old_gates.contains(s(g, "name")) {
            added.insert(s(g, "name"), i);
        }
    }
    for (gate, i) in added {
        errs.push(FieldError::forbidden(
            format!("spec.schedulingGates[{i}].name"),
            format!("only deletion is allowed, but found new scheduling gate '{gate}'"),
        ));
    }

    // Everything else must stay: compare the new spec, with the mutable fields taken from the old.
    let mut munged = ns.clone();
    if let Some(m) = munged.as_object_mut() {
        for key in ["containers", "initContainers"] {
            if let Some(list) = m.get_mut(key).and_then(Value::as_array_mut) {
                for (c, oc) in list.iter_mut().zip(arr(os, key)) {
                    if let Some(c) = c.as_object_mut() {
                        c.insert("image".into(), oc.get("image").cloned().unwrap_or(Value::Null));
                    }
                }
            }
        }
        for key in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
            match os.get(key) {
                Some(v) => m.insert(key.into(), v.clone()),
                None => m.remove(key),
            };
        }
        if int(os, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
            && int(ns, "terminationGracePeriodSeconds") == Some(1)
        {
            m.insert("terminationGracePeriodSeconds".into(), os["terminationGracePeriodSeconds"].clone());
        }
        // netlab binds pods by update (there is no pods/binding), so nodeName may go from "" to set.
        if s(os, "nodeName").is_empty() {
            match os.get("nodeName") {
                Some(v) => m.insert("nodeName".into(), v.clone()),
                None => m.remove("nodeName"),
            };
        }
    }
    let (before, after) = (normalized(os), normalized(&munged));
    if before != after {
        let mut diff = Vec::new();
        diff_values("", Some(&before), Some(&after), &mut diff);
        let mut detail = format!(
            "pod updates may not change fields other than {UPDATABLE_POD_SPEC_FIELDS}\n  core.PodSpec{{\n"
        );
        for line in diff {
            detail.push_str(&line);
            detail.push('\n');
        }
        detail.push_str("  }\n");
        errs.push(FieldError::forbidden("spec", detail));
    }
}

/// A line-per-leaf diff of two JSON values (`-` old, `+` new), in the spirit of `cmp.Diff`.
fn diff_values(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                diff_values(&p, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                diff_values(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (a, b) if a != b => {
            if let Some(a) = a {
                out.push(format!("- \t{path}: {}", render_value(a)));
            }
            if let Some(b) = b {
                out.push(format!("+ \t{path}: {}", render_value(b)));
            }
        }
        _ => {}
    }
}

/// `ValidatePodTemplateSpec`: a template's metadata and spec. Upstream checks the labels at
/// `<path>.labels`, not `<path>.metadata.labels`.
pub(crate) fn validate_pod_template_spec(template: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let meta = meta_of(template);
    validate_labels(&string_map(meta, "labels"), &format!("{path}.labels"), errs);
    validate_annotations(&string_map(meta, "annotations"), &format!("{path}.annotations"), errs);
    let spec = spec_of(template);
    validate_pod_spec(spec, &format!("{path}.spec"), false, errs);
    if !arr(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            format!("{path}.spec.ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}
