//! The trace store `up` runs when no `--otlp-endpoint` is given: `netlab-traces` (OTLP in,
//! Jaeger's query API out, in bounded memory), started first and waited for, so that every other
//! process exports to it from its first span, and recorded in the cluster file, through which
//! `netlab trace` finds it. Its ports are Jaeger's (4317 for OTLP, 16686 for the query API) on
//! 127.0.0.1 when they are free, as the apiserver takes 6443 when it is free, else free ones, so a
//! second cluster, or a Jaeger already running, leaves it room.

use std::{process::Child, time::Duration};

use super::{free_port, port_free};
use crate::report::Problem;

/// Its name among the lab's processes (`netlab down` prints `traces stopped`).
pub const NAME: &str = "traces";
/// Its binary.
const BINARY: &str = "netlab-traces";
/// OTLP/gRPC's port.
const OTLP_PORT: u16 = 4317;
/// Jaeger's query port.
const QUERY_PORT: u16 = 16686;
/// How long one readiness probe may take (a refused connection answers at once).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Where the store listens.
#[derive(Debug, Clone)]
pub struct TraceStore {
    /// OTLP/gRPC, `127.0.0.1:4317`.
    pub otlp: String,
    /// The query API (and /readyz), `127.0.0.1:16686`.
    pub query: String,
}

// === impl TraceStore ===

impl TraceStore {
    /// Jaeger's ports when free, else free ones.
    pub fn pick() -> Result<Self, Problem> {
        let addr = |preferred: u16| -> Result<String, Problem> {
            let wanted = format!("127.0.0.1:{preferred}");
            if port_free(&wanted) { Ok(wanted) } else { Ok(format!("127.0.0.1:{}", free_port()?)) }
        };
        Ok(Self { otlp: addr(OTLP_PORT)?, query: addr(QUERY_PORT)? })
    }

    /// What the other processes get as `--otlp-endpoint`.
    pub fn otlp_endpoint(&self) -> String {
        format!("http://{}", self.otlp)
    }

    /// What `netlab trace` reads: Jaeger's query API.
    pub fn jaeger_url(&self) -> String {
        format!("http://{}", self.query)
    }

    /// The process to start: name, binary, arguments.
    pub fn process(&self) -> (String, String, Vec<String>) {
        (
            NAME.into(),
            BINARY.into(),
            vec!["--otlp-bind".into(), self.otlp.clone(), "--http-bind".into(), self.query.clone()],
        )
    }

    /// Waits until the store answers `/readyz` (both its listeners are bound), or says why not:
    /// it exited, or `timeout` passed.
    pub async fn wait_ready(&self, child: &mut Child, timeout: Duration) -> Result<(), String> {
        let started = std::time::Instant::now();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("{NAME} exited during startup: {status}"));
            }
            let query = self.query.clone();
            let probe =
                tokio::task::spawn_blocking(move || netlab_health::probe(&query, "/readyz", PROBE_TIMEOUT))
                    .await;
            if matches!(probe, Ok(Ok(()))) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!("the trace store at {} was not ready after {timeout:?}", self.query));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_taken_port_moves_the_store_elsewhere() {
        let store = TraceStore::pick().unwrap();
        // Held, as a running store or Jaeger would hold them.
        let _otlp = std::net::TcpListener::bind(&store.otlp).unwrap();
        let _query = std::net::TcpListener::bind(&store.query).unwrap();
        let other = TraceStore::pick().unwrap();
        assert_ne!(other.otlp, store.otlp);
        assert_ne!(other.query, store.query);
        assert!(other.otlp.starts_with("127.0.0.1:") && other.query.starts_with("127.0.0.1:"));
        assert_eq!(other.jaeger_url(), format!("http://{}", other.query));
        let (name, bin, args) = other.process();
        assert_eq!((name.as_str(), bin.as_str()), ("traces", "netlab-traces"));
        assert_eq!(args, ["--otlp-bind", &other.otlp, "--http-bind", &other.query]);
    }
}
