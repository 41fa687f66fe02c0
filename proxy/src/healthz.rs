//! kube-proxy's `/healthz` (port 10256): 200 once rules have been programmed and no change has
//! waited longer than the health timeout for a sync, else 503; the body is upstream's JSON with
//! `lastUpdated` and `currentTime`. Load balancers and `kube-proxy` liveness probes read it, so it
//! must say "not programmed yet" rather than "the process is up", which is why this is not
//! netlab-health's always-200 `/healthz`.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{
    Router,
    http::{StatusCode, header},
    routing::get,
};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Whether the proxy is keeping up, shared between the sync task and the health server.
#[derive(Clone, Debug)]
pub struct ProxyHealth {
    inner: Arc<Mutex<State>>,
    timeout: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// The last successful sync.
    updated: Option<(Instant, jiff::Timestamp)>,
    /// The oldest change not yet programmed.
    queued: Option<Instant>,
}

// === impl ProxyHealth ===

impl ProxyHealth {
    /// Unhealthy until the first sync; then unhealthy whenever a change waits longer than
    /// `timeout` (kube-proxy uses twice the sync period).
    pub fn new(timeout: Duration) -> Self {
        Self { inner: Arc::default(), timeout }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every write leaves the state whole; a poisoned lock still holds a consistent value.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A change is waiting to be programmed.
    pub fn queued(&self) {
        let mut s = self.state();
        if s.queued.is_none() {
            s.queued = Some(Instant::now());
        }
    }

    /// A sync programmed every change seen so far.
    pub fn updated(&self) {
        let mut s = self.state();
        s.updated = Some((Instant::now(), jiff::Timestamp::now()));
        s.queued = None;
    }

    /// Whether `/healthz` answers 200.
    pub fn is_healthy(&self) -> bool {
        let s = self.state();
        s.updated.is_some() && s.queued.is_none_or(|q| q.elapsed() < self.timeout)
    }

    /// Upstream's body: `{"lastUpdated": "...","currentTime": "..."}`.
    fn body(&self) -> String {
        let updated = self.state().updated.map(|(_, t)| t.to_string()).unwrap_or_default();
        format!("{{\"lastUpdated\": \"{updated}\",\"currentTime\": \"{}\"}}", jiff::Timestamp::now())
    }

    /// `/healthz` with kube-proxy's codes and body.
    pub fn routes(&self) -> Router {
        let health = self.clone();
        Router::new().route(
            "/healthz",
            get(move || {
                let health = health.clone();
                async move {
                    let code =
                        if health.is_healthy() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
                    (code, [(header::CONTENT_TYPE, "application/json")], health.body())
                }
            }),
        )
    }

    /// Serves [`ProxyHealth::routes`] on `addr` until `shutdown`; returns the bound address.
    pub async fn serve(&self, addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
        netlab_health::serve(addr, self.routes(), shutdown).await
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn get(addr: SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn healthz_is_503_until_the_first_sync() {
        let health = ProxyHealth::new(Duration::from_secs(60));
        let addr = health.serve("127.0.0.1:0".parse().unwrap(), CancellationToken::new()).await.unwrap();
        let before = get(addr).await;
        assert!(before.starts_with("HTTP/1.1 503"), "{before}");
        assert!(before.contains("{\"lastUpdated\": \"\",\"currentTime\": \""), "{before}");
        health.updated();
        let after = get(addr).await;
        assert!(after.starts_with("HTTP/1.1 200"), "{after}");
        assert!(after.contains("application/json"), "{after}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_waiting_past_the_timeout_is_unhealthy() {
        let health = ProxyHealth::new(Duration::from_secs(60));
        health.updated();
        health.queued();
        tokio::time::sleep(Duration::from_secs(59)).await;
        assert!(health.is_healthy());
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!health.is_healthy());
        health.updated();
        assert!(health.is_healthy());
    }
}
