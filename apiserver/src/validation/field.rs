//! `field.Error` (k8s.io/apimachinery/pkg/util/validation/field) and how it is rendered: one
//! line per error in kubectl's `The Service "x" is invalid:` message, one `StatusCause` each in
//! the 422 status. Every validator returns these.

use std::{collections::HashSet, fmt};

use netlab_proto::apiserver::v1::Resource;
use serde_json::{Value, json};

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
pub(crate) fn render_value(v: &Value) -> String {
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
pub(crate) fn go_quote(s: &str) -> String {
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
    group_kind_message(&kind, name, errors)
}

/// [`status_message`] for a group-qualified kind that is not a stored resource
/// (`TokenRequest.authentication.k8s.io`).
pub fn group_kind_message(kind: &str, name: &str, errors: &[FieldError]) -> String {
    let head = format!("{kind} {} is invalid", go_quote(name));
    let msgs = unique_messages(errors);
    match msgs.as_slice() {
        [] => head,
        [one] => format!("{head}: {one}"),
        many => format!("{head}: [{}]", many.join(", ")),
    }
}
