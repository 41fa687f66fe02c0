//! The trace store's flags: where to listen and how much to keep. It has no `--otlp-endpoint`:
//! the store logs but never exports its own spans, since exporting to itself would make each
//! export the cause of the next.

use std::net::SocketAddr;

/// OTLP/gRPC's port, as OpenTelemetry collectors and Jaeger listen on it; on loopback by default.
pub const DEFAULT_OTLP_BIND: &str = "127.0.0.1:4317";
/// Jaeger's query and UI port; on loopback by default.
pub const DEFAULT_HTTP_BIND: &str = "127.0.0.1:16686";

/// netlab-traces: an OTLP receiver that answers Jaeger's query API from memory.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "netlab-traces", version, about)]
pub struct Config {
    /// Where OTLP/gRPC exports are received.
    #[arg(long, env = "NETLAB_TRACES_OTLP_BIND", default_value = DEFAULT_OTLP_BIND)]
    pub otlp_bind: SocketAddr,

    /// Where Jaeger's HTTP query API (/api/...) and /healthz, /readyz are served.
    #[arg(long, env = "NETLAB_TRACES_HTTP_BIND", default_value = DEFAULT_HTTP_BIND)]
    pub http_bind: SocketAddr,

    /// The most spans kept; the oldest whole traces are dropped to make room.
    #[arg(long, env = "NETLAB_TRACES_MAX_SPANS", default_value_t = crate::store::DEFAULT_MAX_SPANS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_spans: usize,

    /// Log format: `text` or `json`.
    #[arg(long = "log-format", env = "NETLAB_LOG_FORMAT", default_value = "text")]
    pub log_format: netlab_telemetry::LogFormat,
}

// === impl Config ===

impl Config {
    /// The telemetry settings: this config's log format, and never an exporter.
    pub fn telemetry(&self) -> netlab_telemetry::Args {
        netlab_telemetry::Args { otlp_endpoint: None, log_format: self.log_format }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn defaults_and_bounds() {
        let cfg = Config::try_parse_from(["netlab-traces"]).unwrap();
        assert_eq!(cfg.otlp_bind.to_string(), DEFAULT_OTLP_BIND);
        assert_eq!(cfg.http_bind.to_string(), DEFAULT_HTTP_BIND);
        assert_eq!(cfg.max_spans, crate::store::DEFAULT_MAX_SPANS);
        assert!(cfg.telemetry().otlp_endpoint.is_none());
        assert!(Config::try_parse_from(["netlab-traces", "--max-spans", "0"]).is_err());
        assert!(Config::try_parse_from(["netlab-traces", "--otlp-endpoint", "http://x:4317"]).is_err());
        let cfg = Config::try_parse_from(["netlab-traces", "--max-spans", "10"]).unwrap();
        assert_eq!(cfg.max_spans, 10);
    }
}
