//! The OTLP/gRPC receiver: the `TraceService` every netlab binary's exporter (and any OTLP SDK)
//! sends to, on the port an OpenTelemetry collector or Jaeger listens on (4317). Each export is
//! flattened into [`Span`]s, sharing the export's resource and scope, and stored; spans the store
//! refuses, or that carry no valid ids, are reported back as OTLP's partial success, as the
//! specification asks of a receiver that drops part of a request.

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    id,
    span::{Resource, Span},
    store::Store,
};

/// The `TraceService` over a [`Store`].
#[derive(Clone)]
pub struct Receiver {
    store: Store,
    /// Whether "full" and "dropped" were said yet: once each, at info and warn, then debug,
    /// since a full store evicts on every export from then on.
    said: Arc<Said>,
}

#[derive(Default)]
struct Said {
    full: AtomicBool,
    dropped: AtomicBool,
}

// === impl Receiver ===

impl Receiver {
    /// A receiver that stores into `store`.
    pub fn new(store: Store) -> Self {
        Self { store, said: Arc::default() }
    }

    /// The tonic service to mount.
    pub fn into_service(self) -> TraceServiceServer<Self> {
        TraceServiceServer::new(self)
    }

    /// Turns one export into stored spans; returns the partial success to answer with, if any.
    pub fn receive(&self, request: ExportTraceServiceRequest) -> Option<ExportTracePartialSuccess> {
        let mut invalid = 0usize;
        let mut spans = Vec::new();
        for rs in request.resource_spans {
            let resource = Arc::new(Resource::new(rs.resource.map(|r| r.attributes).unwrap_or_default()));
            for ss in rs.scope_spans {
                let scope = ss.scope.map(Arc::new);
                for otlp in ss.spans {
                    // OTLP requires 16-byte trace ids and 8-byte span ids; a span without them
                    // could never be looked up or drawn.
                    let Some(trace_id) = id::from_otlp(&otlp.trace_id).filter(|_| otlp.span_id.len() == 8)
                    else {
                        invalid += 1;
                        continue;
                    };
                    spans.push(Span::new(trace_id, otlp, resource.clone(), scope.clone()));
                }
            }
        }
        let inserted = self.store.insert(spans);
        if inserted.evicted_traces > 0 {
            if self.said.full.swap(true, Ordering::Relaxed) {
                tracing::debug!(evicted = inserted.evicted_traces, "Dropped the oldest traces.");
            } else {
                let max_spans = self.store.stats().max_spans;
                tracing::info!(max_spans, "Store full: dropping the oldest traces to make room from now on.");
            }
        }
        let rejected = inserted.rejected + invalid;
        if rejected == 0 {
            return None;
        }
        let error_message = match (invalid, inserted.rejected) {
            (0, _) => "trace alone exceeds the store's --max-spans; later spans of it dropped".to_string(),
            (_, 0) => "spans without a 16-byte trace id and an 8-byte span id dropped".to_string(),
            _ => "spans without valid ids, and spans of a trace that alone exceeds --max-spans, dropped"
                .to_string(),
        };
        if self.said.dropped.swap(true, Ordering::Relaxed) {
            tracing::debug!(rejected, %error_message, "Dropped spans.");
        } else {
            tracing::warn!(rejected, %error_message, "Dropped spans (said once; see the exporters' partial success).");
        }
        Some(ExportTracePartialSuccess {
            rejected_spans: i64::try_from(rejected).unwrap_or(i64::MAX),
            error_message,
        })
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let partial_success = self.receive(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success }))
    }
}

/// Serves the receiver on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    shutdown: CancellationToken,
) -> Result<()> {
    tonic::transport::Server::builder()
        .add_service(Receiver::new(store).into_service())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.cancelled_owned(),
        )
        .await
        .map_err(|source| Error::Serve { what: "OTLP", source: Box::new(source) })
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

    use super::*;
    use crate::fixture::{otlp_span, request, trace};

    fn export(spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn stores_every_valid_span_and_reports_the_rest() {
        let store = Store::new(3);
        let receiver = Receiver::new(store.clone());
        assert_eq!(receiver.receive(request()), None, "four spans, two traces: the older trace makes room");
        assert_eq!(store.stats().spans, 3);

        let mut short_id = otlp_span(trace(9), 1, None, "bad", 0, 1);
        short_id.trace_id.truncate(8);
        let mut no_span_id = otlp_span(trace(9), 2, None, "bad", 0, 1);
        no_span_id.span_id.clear();
        let answer = receiver.receive(export(vec![short_id, no_span_id])).unwrap();
        assert_eq!(answer.rejected_spans, 2);
        assert!(answer.error_message.contains("16-byte trace id"), "{}", answer.error_message);

        let answer =
            receiver.receive(export((1..=5).map(|i| otlp_span(trace(7), i, None, "op", 0, 1)).collect()));
        assert_eq!(answer.unwrap().rejected_spans, 2, "one trace of five spans in a store of three");
        assert_eq!(store.trace(&trace(7)).unwrap().len(), 3);
    }
}
