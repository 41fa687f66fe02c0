//! How a fault's decision shows in the trace: the span it affected gets `fault.name`,
//! `fault.kind` and `fault.action` attributes, and a `fault` span event at the moment of the
//! decision saying what was done (`dropped`, `delayed 200ms`, `answered SERVFAIL`). So
//! `netlab trace last` after a failing curl names the fault that broke it.

use opentelemetry::KeyValue;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The fault that made a decision, as enforcers keep it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FaultRef {
    /// `namespace/name` of the fault object.
    pub name: String,
    /// Its kind, e.g. `NetworkChaos`.
    pub kind: &'static str,
    /// Its action, e.g. `partition`.
    pub action: &'static str,
}

impl FaultRef {
    /// The reference to a fault object.
    pub fn new(namespace: &str, name: &str, kind: &'static str, action: &'static str) -> Self {
        Self { name: format!("{namespace}/{name}"), kind, action }
    }

    /// Marks `span` with this fault and records the decision (`what`) as a span event.
    pub fn mark(&self, span: &tracing::Span, what: &str) {
        span.set_attribute("fault.name", self.name.clone());
        span.set_attribute("fault.kind", self.kind);
        span.set_attribute("fault.action", self.action);
        span.add_event(
            "fault",
            vec![
                KeyValue::new("fault.name", self.name.clone()),
                KeyValue::new("fault.kind", self.kind),
                KeyValue::new("fault.action", self.action),
                KeyValue::new("fault.effect", what.to_string()),
            ],
        );
    }

    /// Marks the current span.
    pub fn mark_current(&self, what: &str) {
        self.mark(&tracing::Span::current(), what);
    }
}
