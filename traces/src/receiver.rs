//! The OTLP/gRPC receiver: the `TraceService` every netlab binary's exporter (and any OTLP SDK)
//! sends to, on the port an OpenTelemetry collector or Jaeger listens on (4317). Each export is
//! flattened into [`Span`]s, sharing the export's resource and scope, and stored; spans the store
//! refuses, or that carry no valid ids, are reported back as OTLP's partial success, as the
//! specification asks of a receiver that drops part of a request.

use std::sync::Arc;

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
}

// === impl Receiver ===

impl Receiver {
    /// A receiver that stores into `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
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
            tracing::debug!(evicted = inserted.evicted_traces, "Store full: dropped the oldest traces.");
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
        tracing::debug!(rejected, %error_message, "Dropped spans.");
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
