//! Object metadata (k8s.io/apimachinery/pkg/api/validation: names, namespace, labels,
//! annotations, finalizers, owner references) and label selectors
//! (k8s.io/apimachinery/pkg/apis/meta/v1/validation, pkg/labels): what every resource shares.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::{
    field::FieldError,
    format::{
        FIELD_IMMUTABLE, IS_NEGATIVE, TOTAL_ANNOTATION_SIZE_LIMIT, is_dns1035_label, is_dns1123_label,
        is_dns1123_subdomain, is_qualified_name, is_valid_label_value,
    },
    json::{arr, boolean, int, meta_of, s, string_map},
};

/// The name formats of `ValidateNameFunc`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameKind {
    /// `NameIsDNSSubdomain`: most resources.
    Subdomain,
    /// `NameIsDNSLabel`: Namespace, StatefulSet.
    Label,
    /// `NameIsDNS1035Label`: Service.
    Dns1035,
}

// === impl NameKind ===

impl NameKind {
    /// The problems with `name`; `prefix` is for `generateName`, where a trailing dash is allowed.
    pub(crate) fn check(self, name: &str, prefix: bool) -> Vec<String> {
        let masked;
        let name = if prefix && name.len() > 1 && name.ends_with('-') {
            // maskTrailingDash: upstream drops two bytes and appends "a".
            masked = format!("{}a", &name[..name.len() - 2]);
            masked.as_str()
        } else {
            name
        };
        match self {
            NameKind::Subdomain => is_dns1123_subdomain(name),
            NameKind::Label => is_dns1123_label(name),
            NameKind::Dns1035 => is_dns1035_label(name),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Object metadata (k8s.io/apimachinery/pkg/api/validation)
// ---------------------------------------------------------------------------------------------

/// `ValidateObjectMeta` (core's, with the finalizer checks).
pub(crate) fn validate_object_meta(
    obj: &Value,
    namespaced: bool,
    name_kind: NameKind,
    errs: &mut Vec<FieldError>,
) {
    validate_object_meta_with(obj, namespaced, Some(name_kind), errs);
}

fn validate_object_meta_with(
    obj: &Value,
    namespaced: bool,
    name_kind: Option<NameKind>,
    errs: &mut Vec<FieldError>,
) {
    let meta = meta_of(obj);
    let name = s(meta, "name");
    let generate_name = s(meta, "generateName");
    if let Some(kind) = name_kind
        && !generate_name.is_empty()
    {
        for m in kind.check(generate_name, true) {
            errs.push(FieldError::invalid("metadata.generateName", generate_name, m));
        }
    }
    if name.is_empty() {
        // The name is generated from generateName after validation in netlab, before it upstream.
        if generate_name.is_empty() {
            errs.push(FieldError::required("metadata.name", "name or generateName is required"));
        }
    } else if let Some(kind) = name_kind {
        for m in kind.check(name, false) {
            errs.push(FieldError::invalid("metadata.name", name, m));
        }
    }
    if namespaced {
        let ns = s(meta, "namespace");
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            for m in NameKind::Label.check(ns, false) {
                errs.push(FieldError::invalid("metadata.namespace", ns, m));
            }
        }
    }
    if let Some(g) = int(meta, "generation")
        && g < 0
    {
        errs.push(FieldError::invalid("metadata.generation", g, IS_NEGATIVE));
    }
    validate_labels(&string_map(meta, "labels"), "metadata.labels", errs);
    validate_annotations(&string_map(meta, "annotations"), "metadata.annotations", errs);
    validate_owner_references(arr(meta, "ownerReferences"), "metadata.ownerReferences", errs);
    let finalizers: Vec<&str> = arr(meta, "finalizers").iter().filter_map(Value::as_str).collect();
    for f in &finalizers {
        for m in is_qualified_name(f) {
            errs.push(FieldError::invalid("metadata.finalizers", *f, m));
        }
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            "metadata.finalizers",
            json!(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    for (i, f) in finalizers.iter().enumerate() {
        validate_kube_finalizer_name(f, &format!("metadata.finalizers[{i}]"), errs);
    }
}

/// `validateKubeFinalizerName`: a qualified name, and unprefixed names must be standard ones.
pub(crate) fn validate_kube_finalizer_name(f: &str, path: &str, errs: &mut Vec<FieldError>) {
    for m in is_qualified_name(f) {
        errs.push(FieldError::invalid(path, f, m));
    }
    if !f.contains('/') && !matches!(f, "kubernetes" | "orphan" | "foregroundDeletion") {
        errs.push(FieldError::invalid(
            path,
            f,
            "name is neither a standard finalizer name nor is it fully qualified",
        ));
    }
}

/// `ValidateLabels`: keys are qualified names, values label values; errors are on the map's path.
pub(crate) fn validate_labels(labels: &BTreeMap<String, String>, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in labels {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), m));
        }
    }
}

pub(crate) fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut total = 0;
    for (k, v) in annotations {
        // Keys are qualified names, except that case does not matter.
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        total += k.len() + v.len();
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
}

fn validate_owner_references(refs: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut first_controller: Option<String> = None;
    for r in refs {
        let api_version = s(r, "apiVersion");
        let kind = s(r, "kind");
        // schema.FromAPIVersionAndKind: "group/version" or "version"; anything else has neither.
        let (group, version) = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => ("", *v),
            [g, v] => (*g, *v),
            _ => ("", ""),
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                format!("{path}.apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        if kind.is_empty() {
            errs.push(FieldError::invalid(format!("{path}.kind"), kind, "must not be empty"));
        }
        if s(r, "name").is_empty() {
            errs.push(FieldError::invalid(format!("{path}.name"), "", "must not be empty"));
        }
        if s(r, "uid").is_empty() {
            errs.push(FieldError::invalid(format!("{path}.uid"), "", "must not be empty"));
        }
        if group.is_empty() && version == "v1" && kind == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if boolean(r, "controller") {
            let this = format!("{kind}/{}", s(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    json!(refs),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"
                    ),
                )),
                None => first_controller = Some(this),
            }
        }
    }
}

/// `ValidateObjectMetaUpdate`'s immutability checks. The store fills in the rest (a missing uid
/// or creationTimestamp is taken from the old object, as upstream's `BeforeUpdate` does).
pub(crate) fn validate_object_meta_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    let (om, nm) = (meta_of(old), meta_of(new));
    for f in ["name", "namespace"] {
        if s(nm, f) != s(om, f) {
            errs.push(FieldError::invalid(format!("metadata.{f}"), s(nm, f), FIELD_IMMUTABLE));
        }
    }
    if !s(nm, "uid").is_empty() && s(nm, "uid") != s(om, "uid") {
        errs.push(FieldError::invalid("metadata.uid", s(nm, "uid"), FIELD_IMMUTABLE));
    }
}

// ---------------------------------------------------------------------------------------------
// Label selectors (k8s.io/apimachinery/pkg/apis/meta/v1/validation, pkg/labels)
// ---------------------------------------------------------------------------------------------

/// `ValidateLabelSelector`.
pub(crate) fn validate_label_selector(sel: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(sel) = sel else { return };
    validate_labels(&string_map(sel, "matchLabels"), &format!("{path}.matchLabels"), errs);
    for (i, expr) in arr(sel, "matchExpressions").iter().enumerate() {
        let p = format!("{path}.matchExpressions[{i}]");
        let values = arr(expr, "values");
        match s(expr, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        format!("{p}.values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        format!("{p}.values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => {
                errs.push(FieldError::invalid(format!("{p}.operator"), op, "not a valid selector operator"))
            }
        }
        let key = s(expr, "key");
        for m in is_qualified_name(key) {
            errs.push(FieldError::invalid(format!("{p}.key"), key, m));
        }
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            for m in is_valid_label_value(v) {
                errs.push(FieldError::invalid(format!("{p}.values[{j}]"), v, m));
            }
        }
    }
}

/// A compiled label selector (`labels.Selector`).
pub(crate) enum Selector {
    /// A nil selector: matches nothing.
    Nothing,
    /// A set of requirements; none means everything (an empty selector).
    Requirements(Vec<Requirement>),
}

/// One `key op values` term of a [`Selector`].
pub(crate) struct Requirement {
    key: String,
    op: String,
    values: BTreeSet<String>,
}

// === impl Selector ===

impl Selector {
    /// `metav1.LabelSelectorAsSelector`: `None` when the selector cannot be compiled.
    pub(crate) fn compile(sel: Option<&Value>) -> Option<Selector> {
        let Some(sel) = sel else {
            return Some(Selector::Nothing);
        };
        let mut reqs = Vec::new();
        for (k, v) in string_map(sel, "matchLabels") {
            if !is_qualified_name(&k).is_empty() || !is_valid_label_value(&v).is_empty() {
                return None;
            }
            reqs.push(Requirement { key: k, op: "In".into(), values: BTreeSet::from([v]) });
        }
        for expr in arr(sel, "matchExpressions") {
            let op = s(expr, "operator");
            let values: BTreeSet<String> =
                arr(expr, "values").iter().map(|v| v.as_str().unwrap_or("").to_string()).collect();
            let count_ok = match op {
                "In" | "NotIn" => !values.is_empty(),
                "Exists" | "DoesNotExist" => values.is_empty(),
                _ => false,
            };
            if !count_ok
                || !is_qualified_name(s(expr, "key")).is_empty()
                || values.iter().any(|v| !is_valid_label_value(v).is_empty())
            {
                return None;
            }
            reqs.push(Requirement { key: s(expr, "key").to_string(), op: op.to_string(), values });
        }
        Some(Selector::Requirements(reqs))
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self, Selector::Requirements(r) if r.is_empty())
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Nothing => false,
            Selector::Requirements(reqs) => reqs.iter().all(|r| {
                let v = labels.get(&r.key);
                match r.op.as_str() {
                    "In" => v.is_some_and(|v| r.values.contains(v)),
                    "NotIn" => v.is_none_or(|v| !r.values.contains(v)),
                    "Exists" => v.is_some(),
                    _ => v.is_none(),
                }
            }),
        }
    }
}
