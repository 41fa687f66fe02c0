//! Tracing and OpenTelemetry for every netlab binary: one `init` that installs fmt logging plus an
//! optional OTLP exporter whose `service.name` is the component's Kubernetes name, and the W3C
//! trace-context propagation that stitches one flow across processes into one trace.
//!
//! # Layout
//! - [`Args`]: the flags every binary flattens into its config.
//! - [`init`] / [`Guard`]: install the subscriber; flush spans on drop of the guard.
//! - [`process`]: the life of a component binary: telemetry, the shutdown signal, the exit code.
//! - [`propagation`]: inject/extract `traceparent` in gRPC metadata.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::{KeyValue, global, trace::TracerProvider as _};
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{EnvFilter, Layer as _, layer::SubscriberExt, util::SubscriberInitExt};

pub mod process;
pub mod propagation;

pub use process::{run, shutdown_on_signal};

/// How long an export may take before it is abandoned: a missing Jaeger must not stall shutdown.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(3);

/// Telemetry flags shared by every binary (`#[command(flatten)]`).
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// OTLP/gRPC endpoint to export traces to, e.g. http://jaeger:4317. Unset: no export, logs only.
    #[arg(long = "otlp-endpoint", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,

    /// Log format: `text` or `json`.
    #[arg(long = "log-format", env = "NETLAB_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The OTLP exporter rejected its configuration (for example an https endpoint without TLS).
    #[error("building the OTLP exporter for {endpoint}")]
    Exporter {
        /// The endpoint given.
        endpoint: String,
        /// Why it failed.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// A global subscriber was already installed.
    #[error("installing the tracing subscriber")]
    Subscriber(#[source] tracing_subscriber::util::TryInitError),
}

/// Keeps the tracer provider alive; flushes pending spans when dropped.
#[must_use = "dropping the guard flushes and stops trace export"]
pub struct Guard {
    provider: Option<SdkTracerProvider>,
}

/// Installs logging (stderr, `RUST_LOG`, default `info,<crate>=debug`) and, when an OTLP endpoint
/// is configured, trace export with `service.name = service_name` (e.g. `kube-apiserver`).
///
/// Must be called inside a Tokio runtime: the exporter's channel connects lazily on it.
pub fn init(service_name: &'static str, crate_name: &str, args: &Args) -> Result<Guard, Error> {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let default_filter = format!("info,{crate_name}=debug");
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&default_filter));
    // Per-layer filters: a global filter would drop info spans before the OTLP layer sees them.
    let fmt = match args.log_format {
        LogFormat::Text => {
            tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_filter(filter()).boxed()
        }
        LogFormat::Json => {
            tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr).with_filter(filter()).boxed()
        }
    };

    let provider = match &args.otlp_endpoint {
        Some(endpoint) if !endpoint.is_empty() => {
            let exporter = SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(EXPORT_TIMEOUT)
                .build()
                .map_err(|source| Error::Exporter { endpoint: endpoint.clone(), source })?;
            let exporter =
                Quiet { inner: exporter, endpoint: endpoint.clone(), failing: AtomicBool::new(false) };
            let resource = Resource::builder()
                .with_service_name(service_name)
                .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
                .build();
            Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
        }
        _ => None,
    };
    let otel = provider.as_ref().map(|p| {
        global::set_tracer_provider(p.clone());
        // Spans say what was decided (their own attributes); the layer's defaults would add
        // source location, thread, target and busy/idle time to every span, seven attributes
        // built per span on the lab's hot paths (an exec curl opens about eight) that Jaeger's
        // readers do not need.
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer(service_name))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    tracing_subscriber::registry().with(fmt).with(otel).try_init().map_err(Error::Subscriber)?;
    Ok(Guard { provider })
}

/// The OTLP exporter, minus the noise: with no collector running, the SDK would log an error for
/// every batch (every 5 s, in every process). This says it once, as a warning, keeps trying
/// quietly, and says when export works again.
#[derive(Debug)]
struct Quiet<E> {
    inner: E,
    endpoint: String,
    failing: AtomicBool,
}

impl<E: opentelemetry_sdk::trace::SpanExporter> opentelemetry_sdk::trace::SpanExporter for Quiet<E> {
    async fn export(
        &self,
        batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        match self.inner.export(batch).await {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(endpoint = %self.endpoint, "Exporting traces again.");
                }
            }
            Err(error) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(endpoint = %self.endpoint, %error, "Cannot export traces; dropping them and retrying quietly.");
                } else {
                    tracing::debug!(endpoint = %self.endpoint, %error, "Trace export failed.");
                }
            }
        }
        // Reported above, once; the SDK would report it again on every batch.
        Ok(())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

// === impl Guard ===

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // shutdown() blocks on the exporter; never do that on a runtime worker thread.
            let flush = move || {
                let _ = provider.force_flush();
                let _ = provider.shutdown();
            };
            match tokio::runtime::Handle::try_current() {
                Ok(_) => {
                    let _ = std::thread::spawn(flush).join();
                }
                Err(_) => flush(),
            }
        }
    }
}
