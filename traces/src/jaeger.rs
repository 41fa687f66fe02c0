//! OTLP spans as Jaeger's query API shows them: the JSON model its UI reads (`uimodel`: traces,
//! spans, processes, typed key-values), made from OTLP the way Jaeger's own translator makes it
//! (OpenTelemetry collector-contrib's `pkg/translator/jaeger`, `traces_to_jaegerproto.go`):
//!
//! - ids: Jaeger's text ([`crate::id`]); the parent becomes a `CHILD_OF` reference (first), links
//!   `FOLLOWS_FROM` (or `CHILD_OF` when their `opentracing.ref_type` says `child_of`; a link to the
//!   parent only retypes the parent's reference);
//! - tags, in this order: `otel.scope.name`/`otel.scope.version` from the scope, the attributes
//!   (typed; maps and arrays as JSON text), `span.kind`, `otel.status_code` (`OK`/`ERROR`),
//!   `error=true` and `otel.status_description` from the status, `w3c.tracestate`;
//! - events become logs: an `event` field with the name (unless an attribute is called `event`),
//!   then the attributes; times in µs;
//! - the resource becomes the process: `service.name` as `serviceName`, the rest as its tags
//!   (no attributes at all: `OTLPResourceNoServiceName`); one `pN` per distinct process, numbered
//!   in order of appearance.
//!
//! The same view answers searches: a `tags` query matches what these tags, the process and the
//! logs show ([`view_tags`]), so a search finds what the UI displays.

use std::{borrow::Cow, collections::BTreeMap};

use opentelemetry_proto::tonic::{
    common::v1::{AnyValue, KeyValue as OtlpKeyValue, any_value},
    trace::v1::{self as otlp, span::Link, status::StatusCode},
};
use serde::Serialize;
use serde_json::{Value, json};

use crate::{
    id::{hex, jaeger_trace_id},
    span::{SERVICE_NAME, Span},
};

/// The process name Jaeger's translator gives a resource with no attributes at all.
const NO_SERVICE_NAME: &str = "OTLPResourceNoServiceName";

/// The largest integer a JavaScript number holds exactly; Jaeger writes bigger ones as text so that
/// the UI does not round them.
const JS_MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// One trace: `{"traceID", "spans", "processes", "warnings"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    /// Jaeger's text of the trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Its spans, in the order they were received.
    pub spans: Vec<JaegerSpan>,
    /// The processes the spans' `processID`s name.
    pub processes: BTreeMap<String, Process>,
    /// Always null here (Jaeger's adjusters would add warnings).
    pub warnings: Option<Vec<String>>,
}

/// One span in Jaeger's JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JaegerSpan {
    /// Jaeger's text of the trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// 16 hex digits.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The span name.
    pub operation_name: String,
    /// The parent and the links.
    pub references: Vec<Reference>,
    /// Start, µs since the epoch.
    pub start_time: u64,
    /// µs.
    pub duration: u64,
    /// Attributes plus what Jaeger derives from scope, kind and status.
    pub tags: Vec<KeyValue>,
    /// The events.
    pub logs: Vec<Log>,
    /// The key of its process in [`Trace::processes`].
    #[serde(rename = "processID")]
    pub process_id: String,
    /// Always null here.
    pub warnings: Option<Vec<String>>,
}

/// A reference to another span.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reference {
    /// `CHILD_OF` or `FOLLOWS_FROM`.
    #[serde(rename = "refType")]
    pub ref_type: &'static str,
    /// Jaeger's text of the referenced trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// The referenced span.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// An event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Log {
    /// µs since the epoch.
    pub timestamp: u64,
    /// `event` (the name) and the attributes.
    pub fields: Vec<KeyValue>,
}

/// The process that sent spans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Process {
    /// `service.name`.
    #[serde(rename = "serviceName")]
    pub service_name: String,
    /// The resource's other attributes.
    pub tags: Vec<KeyValue>,
}

/// A typed key-value: `{"key", "type", "value"}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    /// The attribute key.
    pub key: String,
    /// `string`, `bool`, `int64`, `float64` or `binary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The value as JSON of that type (binary as base64, big integers as text).
    pub value: Value,
}

// === impl KeyValue ===

impl KeyValue {
    fn string(key: &str, value: &str) -> Self {
        Self { key: key.into(), kind: "string", value: json!(value) }
    }

    /// An OTLP attribute as Jaeger types it.
    pub fn from_otlp(kv: &OtlpKeyValue) -> Self {
        let (kind, value) = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::BoolValue(b)) => ("bool", json!(b)),
            Some(any_value::Value::IntValue(i))
                if (-JS_MAX_SAFE_INTEGER..=JS_MAX_SAFE_INTEGER).contains(i) =>
            {
                ("int64", json!(i))
            }
            Some(any_value::Value::IntValue(i)) => ("int64", json!(i.to_string())),
            Some(any_value::Value::DoubleValue(d)) => ("float64", json!(d)),
            Some(any_value::Value::BytesValue(b)) => ("binary", json!(data_encoding::BASE64.encode(b))),
            other => ("string", json!(other.map_or(String::new(), value_text))),
        };
        Self { key: kv.key.clone(), kind, value }
    }

    /// The value as a search compares it: strings bare, everything else as its JSON text.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.value {
            Value::String(s) => Cow::Borrowed(s),
            other => Cow::Owned(other.to_string()),
        }
    }
}

/// The Jaeger view of the spans of one trace (all with the same trace id, at least one).
pub fn trace(spans: &[&Span]) -> Trace {
    let mut processes: Vec<Process> = Vec::new();
    let mut jaeger_spans = Vec::with_capacity(spans.len());
    for span in spans {
        let process = process(span);
        let index = match processes.iter().position(|p| *p == process) {
            Some(i) => i,
            None => {
                processes.push(process);
                processes.len() - 1
            }
        };
        jaeger_spans.push(jaeger_span(span, format!("p{}", index + 1)));
    }
    Trace {
        trace_id: spans.first().map(|s| jaeger_trace_id(&s.trace_id)).unwrap_or_default(),
        spans: jaeger_spans,
        processes: processes.into_iter().enumerate().map(|(i, p)| (format!("p{}", i + 1), p)).collect(),
        warnings: None,
    }
}

/// The process of a span: its resource.
pub fn process(span: &Span) -> Process {
    let resource = &span.resource;
    if resource.attributes.is_empty() {
        return Process { service_name: NO_SERVICE_NAME.into(), tags: Vec::new() };
    }
    Process {
        service_name: resource.service.clone(),
        tags: resource
            .attributes
            .iter()
            .filter(|kv| kv.key != SERVICE_NAME)
            .map(KeyValue::from_otlp)
            .collect(),
    }
}

/// One span as Jaeger shows it, its process already numbered.
pub fn jaeger_span(span: &Span, process_id: String) -> JaegerSpan {
    let raw = span.otlp();
    let start = raw.start_time_unix_nano / 1_000;
    let end = raw.end_time_unix_nano / 1_000;
    JaegerSpan {
        trace_id: jaeger_trace_id(&span.trace_id),
        span_id: hex(&raw.span_id),
        operation_name: span.name().to_string(),
        references: references(span, &raw),
        start_time: start,
        duration: end.saturating_sub(start),
        tags: span_tags(span, &raw),
        logs: logs(&raw),
        process_id,
        warnings: None,
    }
}

/// The parent first (as backends look for it there), then the links.
fn references(span: &Span, raw: &otlp::Span) -> Vec<Reference> {
    let trace_id = jaeger_trace_id(&span.trace_id);
    let has_parent = raw.parent_span_id.iter().any(|b| *b != 0);
    let mut refs = Vec::with_capacity(raw.links.len() + usize::from(has_parent));
    if has_parent {
        refs.push(Reference {
            ref_type: "CHILD_OF",
            trace_id: trace_id.clone(),
            span_id: hex(&raw.parent_span_id),
        });
    }
    for link in &raw.links {
        let ref_type = link_ref_type(link);
        if has_parent && link.trace_id == span.trace_id && link.span_id == raw.parent_span_id {
            // A link to the parent retypes the parent's reference instead of repeating it.
            refs[0].ref_type = ref_type;
            continue;
        }
        let link_trace = crate::id::from_otlp(&link.trace_id)
            .map_or_else(|| hex(&link.trace_id), |id| jaeger_trace_id(&id));
        refs.push(Reference { ref_type, trace_id: link_trace, span_id: hex(&link.span_id) });
    }
    refs
}

/// `opentracing.ref_type = child_of` makes a link a `CHILD_OF`; any other link follows from.
fn link_ref_type(link: &Link) -> &'static str {
    let child_of = link.attributes.iter().any(|kv| {
        kv.key == "opentracing.ref_type"
            && matches!(kv.value.as_ref().and_then(|v| v.value.as_ref()),
                Some(any_value::Value::StringValue(s)) if s == "child_of")
    });
    if child_of { "CHILD_OF" } else { "FOLLOWS_FROM" }
}

/// The span's tags: scope, attributes, kind, status, trace state.
fn span_tags(span: &Span, raw: &otlp::Span) -> Vec<KeyValue> {
    let mut tags = Vec::with_capacity(raw.attributes.len() + 4);
    if let Some(scope) = &span.scope {
        if !scope.name.is_empty() {
            tags.push(KeyValue::string("otel.scope.name", &scope.name));
        }
        if !scope.version.is_empty() {
            tags.push(KeyValue::string("otel.scope.version", &scope.version));
        }
    }
    tags.extend(raw.attributes.iter().map(KeyValue::from_otlp));
    if !span.kind().is_empty() {
        tags.push(KeyValue::string("span.kind", span.kind()));
    }
    let status = raw.status.as_ref();
    match status.map(|s| StatusCode::try_from(s.code)) {
        Some(Ok(StatusCode::Error)) => {
            tags.push(KeyValue::string("otel.status_code", "ERROR"));
            tags.push(KeyValue { key: "error".into(), kind: "bool", value: json!(true) });
        }
        Some(Ok(StatusCode::Ok)) => tags.push(KeyValue::string("otel.status_code", "OK")),
        _ => {}
    }
    if let Some(message) = status.map(|s| s.message.as_str()).filter(|m| !m.is_empty()) {
        tags.push(KeyValue::string("otel.status_description", message));
    }
    if !raw.trace_state.is_empty() {
        tags.push(KeyValue::string("w3c.tracestate", &raw.trace_state));
    }
    tags
}

fn logs(raw: &otlp::Span) -> Vec<Log> {
    raw.events
        .iter()
        .map(|e| {
            let mut fields = Vec::with_capacity(e.attributes.len() + 1);
            if !e.name.is_empty() && !e.attributes.iter().any(|kv| kv.key == "event") {
                fields.push(KeyValue::string("event", &e.name));
            }
            fields.extend(e.attributes.iter().map(KeyValue::from_otlp));
            Log { timestamp: e.time_unix_nano / 1_000, fields }
        })
        .collect()
}

/// Every key-value the UI shows for a span: its tags, its process's tags and `service.name`, and
/// its logs' fields. What a search's `tags` match against.
pub fn view_tags(span: &Span) -> Vec<KeyValue> {
    let raw = span.otlp();
    let mut all = span_tags(span, &raw);
    all.extend(span.resource.attributes.iter().map(KeyValue::from_otlp));
    all.extend(logs(&raw).into_iter().flat_map(|l| l.fields));
    all
}

/// An OTLP value as text: strings bare, everything else as JSON (`12`, `true`, `["a","b"]`).
pub fn value_text(v: &any_value::Value) -> String {
    match v {
        any_value::Value::StringValue(s) => s.clone(),
        other => as_json(other).to_string(),
    }
}

/// An optional OTLP value as text ([`value_text`]; empty when unset).
pub fn text(v: Option<&AnyValue>) -> String {
    v.and_then(|v| v.value.as_ref()).map_or(String::new(), value_text)
}

fn as_json(v: &any_value::Value) -> Value {
    let inner = |v: &AnyValue| v.value.as_ref().map_or(Value::Null, as_json);
    match v {
        any_value::Value::StringValue(s) => json!(s),
        any_value::Value::BoolValue(b) => json!(b),
        any_value::Value::IntValue(i) => json!(i),
        any_value::Value::DoubleValue(d) => json!(d),
        any_value::Value::BytesValue(b) => json!(data_encoding::BASE64.encode(b)),
        any_value::Value::ArrayValue(a) => Value::Array(a.values.iter().map(inner).collect()),
        any_value::Value::KvlistValue(m) => Value::Object(
            m.values
                .iter()
                .map(|kv| (kv.key.clone(), kv.value.as_ref().map_or(Value::Null, inner)))
                .collect(),
        ),
        any_value::Value::StringValueStrindex(i) => json!(i),
    }
}

#[cfg(test)]
mod tests;
