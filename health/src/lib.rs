//! The `/healthz` and `/readyz` HTTP endpoints every netlab component serves on its upstream
//! port (kube-controller-manager 10257, kube-scheduler 10259, ...), so compose health checks and
//! users probe them as they would the real components; and [`probe`], a dependency-free HTTP GET
//! for images that have no curl.
//!
//! Liveness (`/healthz`) is "the process serves"; readiness (`/readyz`) is what the component
//! says through [`Health::set_ready`] (for controllers: their caches have synced).

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use axum::{Router, http::StatusCode, routing::get};
use tokio_util::sync::CancellationToken;

/// A component's readiness, shared with its health server.
#[derive(Clone, Default)]
pub struct Health {
    ready: Arc<AtomicBool>,
}

// === impl Health ===

impl Health {
    /// Not ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets readiness.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether ready.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Serves `/healthz` and `/readyz` on `addr` until `shutdown`; returns the bound address.
    pub async fn serve(&self, addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let ready = self.clone();
        let app = Router::new().route("/healthz", get(|| async { "ok" })).route(
            "/readyz",
            get(move || {
                let ready = ready.clone();
                async move {
                    if ready.is_ready() {
                        (StatusCode::OK, "ok")
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "not ready: caches have not synced")
                    }
                }
            }),
        );
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
            if let Err(error) = served {
                tracing::warn!(%error, "Health server stopped.");
            }
        });
        Ok(local)
    }
}

/// GETs `http://addr/path` and returns whether the answer was 200, for `netlab probe` in images
/// without curl.
pub fn probe(addr: &str, path: &str, timeout: Duration) -> Result<(), String> {
    let sock: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{addr}{path}: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn healthz_always_readyz_when_set() {
        let health = Health::new();
        let addr = health.serve("127.0.0.1:0".parse().unwrap(), CancellationToken::new()).await.unwrap();
        let a = addr.to_string();
        let t = Duration::from_secs(2);
        let r = tokio::task::spawn_blocking({
            let a = a.clone();
            move || (probe(&a, "/healthz", t), probe(&a, "/readyz", t))
        })
        .await
        .unwrap();
        assert!(r.0.is_ok());
        assert!(r.1.unwrap_err().contains("503"));
        health.set_ready(true);
        let ready = tokio::task::spawn_blocking(move || probe(&a, "/readyz", t)).await.unwrap();
        assert!(ready.is_ok());
    }
}
