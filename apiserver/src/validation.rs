//! Field validation for the twelve resources, worded exactly as kube-apiserver words it.
//!
//! Students compare what netlab prints with what a real cluster prints, and search the web for the
//! messages they see, so every check here follows upstream (Kubernetes v1.33) in wording, field
//! path and order: `k8s.io/apimachinery` `pkg/util/validation` (name formats), `.../field` (error
//! rendering), `pkg/api/validation` (object metadata), `pkg/apis/meta/v1/validation` (labels and
//! selectors) and `kubernetes/pkg/apis/{core,apps,discovery,networking}/validation`. Upstream
//! quirks are kept on purpose (a pod template's labels are checked at `spec.template.labels`, a
//! Node's taints at `metadata.taints`, a Service's source ranges at `spec.LoadBalancerSourceRanges`),
//! because that is what a real cluster answers.
//!
//! Checks work on the object's JSON rather than on k8s-openapi structs: Go decodes a missing list
//! as nil and a present one as empty, and several messages (`spec.selector: Required value` versus
//! `empty selector is invalid for deployment`) depend on that difference, which k8s-openapi's
//! lenient decoding erases. Objects are expected to have gone through
//! [`crate::defaults::set_defaults`] first, as upstream validates only defaulted objects.
//!
//! Bad values are rendered as Kubernetes v1.34+ renders them (JSON for lists and maps); v1.33
//! printed Go syntax there (`[]string{"10.96.0.10"}`), everything else is identical.
//!
//! # Layout
//! - [`ErrorType`], [`FieldError`]: `field.Error` and its rendering.
//! - [`invalid_message`], [`status_message`]: the 422 message as kubectl and as the apiserver word it.
//! - [`validate`], [`validate_update`]: per-resource checks for create and update.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::net::IpAddr;

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Map, Value, json};

#[cfg(test)]
mod tests;

/// Why a field is invalid; one-to-one with `metav1.CauseType` (`field.ErrorType` upstream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A value that must be provided is missing (empty string, null, empty list).
    Required,
    /// A value is malformed: failed format, out of range.
    Invalid,
    /// A value is not one of an enumerated set; the supported values are listed.
    NotSupported,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A well-formed value that the current conditions do not allow.
    Forbidden,
    /// A value is too long; the value itself is not echoed.
    TooLong,
    /// A list has too many items.
    TooMany,
    /// A referenced value does not exist.
    NotFound,
}

// === impl ErrorType ===

impl ErrorType {
    /// The `StatusCause.reason` (`metav1.CauseType`) for this error, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::NotFound => "FieldValueNotFound",
        }
    }

    /// The words a message starts with, e.g. `Required value`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::Required => "Required value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::NotFound => "Not found",
        }
    }

    /// Whether the bad value is part of the message (`Required value` and friends never echo it).
    fn shows_value(self) -> bool {
        !matches!(self, ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong)
    }
}

impl fmt::Display for ErrorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field-level validation error, as `field.Error`: it becomes one `StatusCause` of a 422
/// Invalid status, and one line of kubectl's `The Service "x" is invalid:` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// What kind of problem this is; decides the message's first words and the cause's reason.
    pub error_type: ErrorType,
    /// The JSON path of the field, e.g. `spec.ports[0].port`.
    pub field: String,
    /// The offending value, echoed in the message. `None` leaves it out (as upstream's
    /// `omitValue`); `Some(Value::Null)` prints `null`, as a nil Go value does.
    pub value: Option<Value>,
    /// The explanation after the value, e.g. `must be between 1 and 65535, inclusive`. For
    /// [`ErrorType::NotSupported`] it is the rendered `supported values: ...` list.
    pub detail: String,
    /// For [`ErrorType::NotSupported`]: the accepted values, in upstream's order.
    pub supported: Vec<String>,
}

// === impl FieldError ===

impl FieldError {
    fn new(
        error_type: ErrorType,
        field: impl Into<String>,
        value: Option<Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError { error_type, field: field.into(), value, detail: detail.into(), supported: Vec::new() }
    }

    /// `field.Required`: the value is missing.
    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, None, detail)
    }

    /// `field.Invalid`: the value is malformed.
    pub fn invalid(field: impl Into<String>, value: impl Into<Value>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, Some(value.into()), detail)
    }

    /// `field.NotSupported`: the value is not one of `supported` (kept in the given order).
    pub fn not_supported(field: impl Into<String>, value: impl Into<Value>, supported: &[&str]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        FieldError {
            supported: supported.iter().map(|s| s.to_string()).collect(),
            ..Self::new(ErrorType::NotSupported, field, Some(value.into()), detail)
        }
    }

    /// `field.Duplicate`: the value repeats one seen before.
    pub fn duplicate(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::Duplicate, field, Some(value.into()), "")
    }

    /// `field.Forbidden`: the value is not allowed here.
    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, None, detail)
    }

    /// `field.TooLong`: the value is longer than `max_bytes`.
    pub fn too_long(field: impl Into<String>, max_bytes: usize) -> Self {
        let unit = if max_bytes == 1 { "byte" } else { "bytes" };
        Self::new(ErrorType::TooLong, field, None, format!("may not be more than {max_bytes} {unit}"))
    }

    /// `field.TooMany`: the list has `actual` items, more than `max`.
    pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> Self {
        Self::new(ErrorType::TooMany, field, Some(json!(actual)), format!("must have at most {max} items"))
    }

    /// `field.NotFound`: the referenced value does not exist.
    pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> Self {
        Self::new(ErrorType::NotFound, field, Some(value.into()), "")
    }

    /// The `StatusCause.reason`, e.g. `FieldValueInvalid`.
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field path (`ErrorBody()` upstream); this is `StatusCause.message`.
    pub fn body(&self) -> String {
        let mut s = self.error_type.as_str().to_string();
        if self.error_type.shows_value()
            && let Some(v) = &self.value
        {
            s.push_str(": ");
            s.push_str(&render_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

impl std::error::Error for FieldError {}

/// Renders a bad value: strings quoted as Go's `%q`, numbers and booleans bare, lists and maps as
/// JSON with Go's HTML-safe escaping.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(_) | Value::Object(_) => {
            let mut out = String::new();
            for c in v.to_string().chars() {
                match c {
                    '<' => out.push_str("\\u003c"),
                    '>' => out.push_str("\\u003e"),
                    '&' => out.push_str("\\u0026"),
                    '\u{2028}' => out.push_str("\\u2028"),
                    '\u{2029}' => out.push_str("\\u2029"),
                    c => out.push(c),
                }
            }
            out
        }
    }
}

/// Go's `strconv.Quote`: double quotes, backslash escapes, printable Unicode kept as is.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x80 && (c.is_ascii_control()) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The errors' messages, each once, in order (upstream dedupes identical messages both in
/// `ToAggregate` and in kubectl).
fn unique_messages(errors: &[FieldError]) -> Vec<String> {
    let mut seen = HashSet::new();
    errors.iter().map(ToString::to_string).filter(|m| seen.insert(m.clone())).collect()
}

/// The 422 message as kubectl prints it: `The Service "Orders" is invalid: <err>` for one error,
/// and for several `The Service "Orders" is invalid: ` followed by one `\n* <err>` line each
/// (kubectl's `MultilineError`, without its final newline).
pub fn invalid_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let head = format!("The {kind} {} is invalid", go_quote(name));
    let msgs = unique_messages(errors);
    match msgs.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => {
            let mut s = format!("{head}: ");
            for m in many {
                s.push_str("\n* ");
                s.push_str(m);
            }
            s
        }
    }
}

/// The 422 status message as the apiserver itself writes it (`errors.NewInvalid`), which is what
/// `Status.message` carries: `Deployment.apps "web" is invalid: [err1, err2]`.
pub fn status_message(resource: Resource, name: &str, errors: &[FieldError]) -> String {
    let kind = match resource.group() {
        "" => resource.kind().to_string(),
        group => format!("{}.{group}", resource.kind()),
    };
    let head = format!("{kind} {} is invalid", go_quote(name));
    let msgs = unique_messages(errors);
    match msgs.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => format!("{head}: [{}]", many.join(", ")),
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points
// ---------------------------------------------------------------------------------------------

/// Validates an object being created, as the resource's create strategy does. Call it after
/// [`crate::defaults::set_defaults`]. An empty result means the object is valid.
pub fn validate(resource: Resource, obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !decodes(resource, obj) {
        // Only metadata can be checked on an object whose body does not have the resource's shape.
        if let Some(kind) = name_kind(resource) {
            validate_object_meta(obj, resource.namespaced(), kind, &mut errs);
        }
        return errs;
    }
    match resource {
        Resource::Unspecified => {}
        Resource::Namespaces => validate_namespace(obj, &mut errs),
        Resource::Nodes => validate_node(obj, &mut errs),
        Resource::Pods => validate_pod(obj, true, &mut errs),
        Resource::Services => validate_service(obj, &mut errs),
        Resource::EndpointSlices => validate_endpoint_slice(obj, &mut errs),
        Resource::NetworkPolicies => validate_network_policy(obj, &mut errs),
        Resource::Deployments => validate_deployment(obj, &mut errs),
        Resource::ReplicaSets => validate_replica_set(obj, &mut errs),
        Resource::StatefulSets => validate_stateful_set(obj, &mut errs),
        Resource::ServiceAccounts => validate_object_meta(obj, true, NameKind::Subdomain, &mut errs),
        Resource::ConfigMaps => validate_config_map(obj, &mut errs),
        Resource::Events => validate_event(obj, &mut errs),
    }
    errs
}

/// Validates an update from `old` to `new`, as the resource's update strategy does: `new` must be
/// valid, and fields that are immutable (or may only change in certain ways) must not change.
/// Call it after [`crate::defaults::set_defaults`] on `new`.
///
/// One deliberate difference: a Pod's `spec.nodeName` may go from empty to set. netlab has no
/// `pods/binding` subresource, so the scheduler binds with an update.
pub fn validate_update(resource: Resource, old: &Value, new: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if !decodes(resource, new) || !decodes(resource, old) {
        return validate(resource, new);
    }
    match resource {
        Resource::Unspecified => {}
        Resource::Namespaces => {
            validate_namespace(new, &mut errs);
            validate_object_meta_update(old, new, &mut errs);
        }
        Resource::Nodes => {
            validate_node(new, &mut errs);
            validate_node_update(old, new, &mut errs);
        }
        Resource::Pods => validate_pod_update(old, new, &mut errs),
        Resource::Services => validate_service_update(old, new, &mut errs),
        Resource::EndpointSlices => {
            validate_endpoint_slice(new, &mut errs);
            if s(new, "addressType") != s(old, "addressType") {
                errs.push(FieldError::invalid("addressType", s(new, "addressType"), FIELD_IMMUTABLE));
            }
        }
        Resource::NetworkPolicies => {
            validate_object_meta_update(old, new, &mut errs);
            validate_network_policy(new, &mut errs);
        }
        Resource::Deployments => {
            validate_object_meta_update(old, new, &mut errs);
            validate_deployment(new, &mut errs);
            validate_selector_immutable(old, new, &mut errs);
        }
        Resource::ReplicaSets => {
            validate_object_meta_update(old, new, &mut errs);
            validate_replica_set(new, &mut errs);
            validate_selector_immutable(old, new, &mut errs);
        }
        Resource::StatefulSets => validate_stateful_set_update(old, new, &mut errs),
        Resource::ServiceAccounts => {
            validate_object_meta_update(old, new, &mut errs);
            validate_object_meta(new, true, NameKind::Subdomain, &mut errs);
        }
        Resource::ConfigMaps => validate_config_map_update(old, new, &mut errs),
        Resource::Events => validate_event(new, &mut errs),
    }
    errs
}

/// Whether the object decodes into its k8s-openapi type, i.e. has the resource's shape.
fn decodes(resource: Resource, obj: &Value) -> bool {
    use k8s_openapi::api::{
        apps::v1 as apps, core::v1 as core, discovery::v1 as discovery, networking::v1 as net,
    };
    fn ok<T: serde::de::DeserializeOwned>(obj: &Value) -> bool {
        serde_json::from_value::<T>(obj.clone()).is_ok()
    }
    match resource {
        Resource::Unspecified => true,
        Resource::Namespaces => ok::<core::Namespace>(obj),
        Resource::Nodes => ok::<core::Node>(obj),
        Resource::Pods => ok::<core::Pod>(obj),
        Resource::Services => ok::<core::Service>(obj),
        Resource::EndpointSlices => ok::<discovery::EndpointSlice>(obj),
        Resource::NetworkPolicies => ok::<net::NetworkPolicy>(obj),
        Resource::Deployments => ok::<apps::Deployment>(obj),
        Resource::ReplicaSets => ok::<apps::ReplicaSet>(obj),
        Resource::StatefulSets => ok::<apps::StatefulSet>(obj),
        Resource::ServiceAccounts => ok::<core::ServiceAccount>(obj),
        Resource::ConfigMaps => ok::<core::ConfigMap>(obj),
        Resource::Events => ok::<core::Event>(obj),
    }
}

/// The name format each resource's names must have (`ValidateXName` upstream).
fn name_kind(resource: Resource) -> Option<NameKind> {
    match resource {
        Resource::Namespaces | Resource::StatefulSets => Some(NameKind::Label),
        Resource::Services => Some(NameKind::Dns1035),
        Resource::Events | Resource::Unspecified => None,
        _ => Some(NameKind::Subdomain),
    }
}

// ---------------------------------------------------------------------------------------------
// Formats (k8s.io/apimachinery/pkg/util/validation)
// ---------------------------------------------------------------------------------------------

const FIELD_IMMUTABLE: &str = "field is immutable";
const IS_NEGATIVE: &str = "must be greater than or equal to 0";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const DNS1035_LABEL_FMT: &str = "[a-z]([-a-z0-9]*[a-z0-9])?";
const DNS1035_LABEL_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character";
const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const CONFIG_MAP_KEY_FMT: &str = "[-._a-zA-Z0-9]+";
const CONFIG_MAP_KEY_MSG: &str =
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.'";
const PERCENT_FMT: &str = "[0-9]+%";
const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%'";
const VALID_IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
const VALID_CIDR_MSG: &str = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;
const MAX_CONFIG_MAP_SIZE: usize = 1024 * 1024;

/// `RegexError`: a format message with its examples and regex.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let mut s = format!("{msg} (e.g. ");
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{e}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

fn inclusive_range_error(lo: i64, hi: i64) -> String {
    format!("must be between {lo} and {hi}, inclusive")
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn matches_dns1123_label(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && is_alnum_lower(b[0])
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum_lower(c) || c == b'-')
}

fn matches_dns1123_subdomain(v: &str) -> bool {
    v.split('.').all(matches_dns1123_label)
}

fn is_dns1123_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !matches_dns1123_label(v) {
        if matches_dns1123_subdomain(v) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, &["my-name", "123-abc"]));
        }
    }
    errs
}

fn is_dns1123_subdomain(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !matches_dns1123_subdomain(v) {
        errs.push(regex_error(DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errs
}

fn is_dns1035_label(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    let b = v.as_bytes();
    let ok = !b.is_empty()
        && b[0].is_ascii_lowercase()
        && is_alnum_lower(b[b.len() - 1])
        && b.iter().all(|&c| is_alnum_lower(c) || c == b'-');
    if !ok {
        errs.push(regex_error(DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, &["my-name", "abc-123"]));
    }
    errs
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn matches_qualified_name_part(v: &str) -> bool {
    let b = v.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// `IsQualifiedName`: a label key, annotation key or finalizer name.
fn is_qualified_name(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = v.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                for m in is_dns1123_subdomain(prefix) {
                    errs.push(format!("prefix part {m}"));
                }
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !matches_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

fn is_valid_label_value(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !v.is_empty() && !matches_qualified_name_part(v) {
        errs.push(regex_error(LABEL_VALUE_MSG, LABEL_VALUE_FMT, &["MyValue", "my_value", "12345"]));
    }
    errs
}

fn is_valid_port_num(port: i64) -> Vec<String> {
    if (1..=65535).contains(&port) { Vec::new() } else { vec![inclusive_range_error(1, 65535)] }
}

/// `IsValidPortName`: an IANA_SVC_NAME (at most 15 of `[-a-z0-9]`, at least one letter).
fn is_valid_port_name(port: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if port.len() > 15 {
        errs.push(max_len_error(15));
    }
    if port.is_empty() || !port.bytes().all(|c| is_alnum_lower(c) || c == b'-') {
        errs.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string());
    }
    if !port.bytes().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_string());
    }
    if port.contains("--") {
        errs.push("must not contain consecutive hyphens".to_string());
    }
    if port.starts_with('-') || port.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_string());
    }
    errs
}

fn is_config_map_key(v: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if v.len() > 253 {
        errs.push(max_len_error(253));
    }
    if v.is_empty() || !v.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_')) {
        errs.push(regex_error(CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT, &["key.name", "KEY_NAME", "key-name"]));
    }
    if v == "." {
        errs.push("must not be '.'".to_string());
    } else if v == ".." {
        errs.push("must not be '..'".to_string());
    } else if v.starts_with("..") {
        errs.push("must not start with '..'".to_string());
    }
    errs
}

fn is_valid_percent(v: &str) -> Vec<String> {
    let ok = v.len() > 1 && v.ends_with('%') && v[..v.len() - 1].bytes().all(|c| c.is_ascii_digit());
    if ok { Vec::new() } else { vec![regex_error(PERCENT_MSG, PERCENT_FMT, &["1%", "93%"])] }
}

/// `netutils.ParseIPSloppy`: like `net.ParseIP`, plus IPv4 octets with leading zeros. IPv4-mapped
/// IPv6 addresses come back as IPv4, as Go's `To4()` sees them.
fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    let ip = match s.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => {
            let parts: Vec<&str> = s.split('.').collect();
            if parts.len() != 4 {
                return None;
            }
            let mut octets = [0u8; 4];
            for (o, p) in octets.iter_mut().zip(&parts) {
                if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                *o = p.parse().ok()?;
            }
            IpAddr::from(octets)
        }
    };
    Some(match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    })
}

/// `netutils.ParseCIDRSloppy`: `ip/prefix`, returning the network (host bits cleared).
fn parse_cidr_sloppy(s: &str) -> Option<ipnet::IpNet> {
    let (ip, bits) = s.split_once('/')?;
    if bits.is_empty() || bits.len() > 3 || !bits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let bits: u8 = bits.parse().ok()?;
    match ip.parse::<IpAddr>() {
        // A prefix on an IPv4-mapped address counts IPv6 bits, as Go's mask does.
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_some() => {
            let net = ipnet::Ipv4Net::new(v6.to_ipv4_mapped()?, bits.checked_sub(96)?).ok()?;
            Some(ipnet::IpNet::V4(net.trunc()))
        }
        _ => ipnet::IpNet::new(parse_ip_sloppy(ip)?, bits).ok().map(|n| n.trunc()),
    }
}

fn is_valid_ip(path: &str, v: &str) -> Vec<FieldError> {
    if parse_ip_sloppy(v).is_some() { Vec::new() } else { vec![FieldError::invalid(path, v, VALID_IP_MSG)] }
}

fn is_valid_cidr(path: &str, v: &str) -> Vec<FieldError> {
    if parse_cidr_sloppy(v).is_some() {
        Vec::new()
    } else {
        vec![FieldError::invalid(path, v, VALID_CIDR_MSG)]
    }
}

/// Set once at startup from `--allow-loopback-endpoints` (native mode only; see the flag).
pub static ALLOW_LOOPBACK_ENDPOINTS: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// `ValidateNonSpecialIP`: endpoints and external IPs may not be unspecified, loopback or link-local.
fn validate_non_special_ip(path: &str, v: &str, errs: &mut Vec<FieldError>) {
    let Some(ip) = parse_ip_sloppy(v) else {
        errs.push(FieldError::invalid(path, v, "must be a valid IP address"));
        return;
    };
    let (unspecified, loopback, link_local, ll_multicast) = match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            (a.is_unspecified(), a.is_loopback(), a.is_link_local(), o[0] == 224 && o[1] == 0 && o[2] == 0)
        }
        IpAddr::V6(a) => {
            let seg = a.segments();
            (
                a.is_unspecified(),
                a.is_loopback(),
                seg[0] & 0xffc0 == 0xfe80,
                seg[0] >> 8 == 0xff && (seg[0] & 0x0f) == 0x02,
            )
        }
    };
    if unspecified {
        errs.push(FieldError::invalid(path, v, format!("may not be unspecified ({v})")));
    }
    if loopback && !ALLOW_LOOPBACK_ENDPOINTS.load(std::sync::atomic::Ordering::Relaxed) {
        errs.push(FieldError::invalid(path, v, "may not be in the loopback range (127.0.0.0/8, ::1/128)"));
    }
    if link_local {
        errs.push(FieldError::invalid(
            path,
            v,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    if ll_multicast {
        errs.push(FieldError::invalid(
            path,
            v,
            "may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)",
        ));
    }
}

fn is_ipv6(ip: &str) -> bool {
    matches!(parse_ip_sloppy(ip), Some(IpAddr::V6(_)))
}

/// The name formats of `ValidateNameFunc`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameKind {
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
    fn check(self, name: &str, prefix: bool) -> Vec<String> {
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
// JSON helpers
// ---------------------------------------------------------------------------------------------

/// The string at `key`, or "" (Go's zero value).
fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// The list at `key`, or empty.
fn arr<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The value at `key` unless absent or null (a Go nil pointer).
fn get<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

fn boolean(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The `map[string]string` at `key`, sorted by key.
fn string_map(v: &Value, key: &str) -> BTreeMap<String, String> {
    v.get(key)
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string())).collect())
        .unwrap_or_default()
}

/// A `map[string]string` as the bad value: `null` when nil, as Go renders a nil map.
fn map_value(v: &Value, key: &str) -> Value {
    match v.get(key) {
        Some(m @ Value::Object(_)) => m.clone(),
        _ => Value::Null,
    }
}

const NULL: Value = Value::Null;

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&NULL)
}

fn meta_of(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&NULL)
}

/// An intstr: a number or a string.
enum IntOrString<'a> {
    Int(i64),
    Str(&'a str),
}

fn int_or_string(v: &Value) -> IntOrString<'_> {
    match v {
        Value::Number(n) => IntOrString::Int(n.as_i64().unwrap_or(0)),
        Value::String(s) => IntOrString::Str(s),
        _ => IntOrString::Int(0),
    }
}

/// Removes what Go's semantic equality cannot see: nulls, zero scalars, empty lists and maps
/// (nil and empty compare equal there, as do unset and zero value fields).
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let n = normalized(v);
                if !is_zero(&n) {
                    out.insert(k.clone(), n);
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        other => other.clone(),
    }
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
    }
}

fn sem_eq(a: Option<&Value>, b: Option<&Value>) -> bool {
    normalized(a.unwrap_or(&NULL)) == normalized(b.unwrap_or(&NULL))
}

// ---------------------------------------------------------------------------------------------
// Object metadata (k8s.io/apimachinery/pkg/api/validation)
// ---------------------------------------------------------------------------------------------

/// `ValidateObjectMeta` (core's, with the finalizer checks).
fn validate_object_meta(obj: &Value, namespaced: bool, name_kind: NameKind, errs: &mut Vec<FieldError>) {
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
fn validate_kube_finalizer_name(f: &str, path: &str, errs: &mut Vec<FieldError>) {
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
fn validate_labels(labels: &BTreeMap<String, String>, path: &str, errs: &mut Vec<FieldError>) {
    for (k, v) in labels {
        for m in is_qualified_name(k) {
            errs.push(FieldError::invalid(path, k.as_str(), m));
        }
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v.as_str(), m));
        }
    }
}

fn validate_annotations(annotations: &BTreeMap<String, String>, path: &str, errs: &mut Vec<FieldError>) {
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
fn validate_object_meta_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
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
fn validate_label_selector(sel: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
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
enum Selector {
    /// A nil selector: matches nothing.
    Nothing,
    /// A set of requirements; none means everything (an empty selector).
    Requirements(Vec<Requirement>),
}

struct Requirement {
    key: String,
    op: String,
    values: BTreeSet<String>,
}

// === impl Selector ===

impl Selector {
    /// `metav1.LabelSelectorAsSelector`: `None` when the selector cannot be compiled.
    fn compile(sel: Option<&Value>) -> Option<Selector> {
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

    fn is_empty(&self) -> bool {
        matches!(self, Selector::Requirements(r) if r.is_empty())
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Namespace, ServiceAccount, ConfigMap, Event, Node
// ---------------------------------------------------------------------------------------------

fn validate_namespace(obj: &Value, errs: &mut Vec<FieldError>) {
    validate_object_meta(obj, false, NameKind::Label, errs);
    for f in arr(spec_of(obj), "finalizers").iter().filter_map(Value::as_str) {
        validate_kube_finalizer_name(f, "spec.finalizers", errs);
    }
}

fn validate_config_map(obj: &Value, errs: &mut Vec<FieldError>) {
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

fn validate_config_map_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
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
fn validate_event(obj: &Value, errs: &mut Vec<FieldError>) {
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

fn validate_node(obj: &Value, errs: &mut Vec<FieldError>) {
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

fn validate_node_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
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

// ---------------------------------------------------------------------------------------------
// Service (pkg/apis/core/validation: ValidateService)
// ---------------------------------------------------------------------------------------------

const PORT_PROTOCOLS: [&str; 3] = ["SCTP", "TCP", "UDP"];

fn is_headless(spec: &Value) -> bool {
    let ips = arr(spec, "clusterIPs");
    ips.len() == 1 && ips[0].as_str() == Some("None")
}

/// `apiservice.ExternallyAccessible`.
fn externally_accessible(spec: &Value) -> bool {
    let t = s(spec, "type");
    t == "LoadBalancer" || t == "NodePort" || (t == "ClusterIP" && !arr(spec, "externalIPs").is_empty())
}

fn validate_service(obj: &Value, errs: &mut Vec<FieldError>) {
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
            validate_non_special_ip(&path, ip, errs);
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

/// `ValidatePortNumOrName`: a port number, or an IANA_SVC_NAME.
fn validate_port_num_or_name(port: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match int_or_string(port) {
        IntOrString::Int(n) => {
            for m in is_valid_port_num(n) {
                errs.push(FieldError::invalid(path, n, m));
            }
        }
        IntOrString::Str(name) => {
            for m in is_valid_port_name(name) {
                errs.push(FieldError::invalid(path, name, m));
            }
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

fn validate_service_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
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

    validate_service(&new, errs);
}

// ---------------------------------------------------------------------------------------------
// Pod and PodSpec (pkg/apis/core/validation: ValidatePodSpec and friends)
// ---------------------------------------------------------------------------------------------

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

fn validate_pod(obj: &Value, create: bool, errs: &mut Vec<FieldError>) {
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
fn validate_pod_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
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
fn validate_pod_template_spec(template: &Value, path: &str, errs: &mut Vec<FieldError>) {
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

// ---------------------------------------------------------------------------------------------
// Deployment, ReplicaSet, StatefulSet (pkg/apis/apps/validation)
// ---------------------------------------------------------------------------------------------

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

fn validate_deployment(obj: &Value, errs: &mut Vec<FieldError>) {
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

fn validate_replica_set(obj: &Value, errs: &mut Vec<FieldError>) {
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
fn validate_selector_immutable(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
    let (o, n) = (spec_of(old).get("selector"), spec_of(new).get("selector"));
    if !sem_eq(o, n) {
        errs.push(FieldError::invalid("spec.selector", n.cloned().unwrap_or(Value::Null), FIELD_IMMUTABLE));
    }
}

fn validate_stateful_set(obj: &Value, errs: &mut Vec<FieldError>) {
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

fn validate_stateful_set_update(old: &Value, new: &Value, errs: &mut Vec<FieldError>) {
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

// ---------------------------------------------------------------------------------------------
// EndpointSlice (pkg/apis/discovery/validation), NetworkPolicy (pkg/apis/networking/validation)
// ---------------------------------------------------------------------------------------------

fn validate_endpoint_slice(obj: &Value, errs: &mut Vec<FieldError>) {
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
                            validate_non_special_ip(&path, a, errs);
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

fn validate_network_policy(obj: &Value, errs: &mut Vec<FieldError>) {
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
