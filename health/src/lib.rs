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

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// `/healthz` (always 200: the process serves) and `/readyz` (200 once [`Health::set_ready`]).
    pub fn routes(&self) -> Router {
        let ready = self.clone();
        Router::new().route("/healthz", get(|| async { "ok" })).route(
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
        )
    }

    /// Serves [`Health::routes`] on `addr` until `shutdown`; returns the bound address.
    pub async fn serve(&self, addr: SocketAddr, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
        serve(addr, self.routes(), shutdown).await
    }
}

/// Serves `routes` on `addr` until `shutdown` (on a task of its own); returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    routes: Router,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        let served = axum::serve(listener, routes).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        if let Err(error) = served {
            tracing::warn!(%error, "Health server stopped.");
        }
    });
    Ok(local)
}

/// [`serve`], or a warning when `addr` cannot be bound: a taken health port must not stop the
/// component, since tests and `netlab up` run several of one kind on one machine.
pub async fn serve_or_warn(
    addr: SocketAddr,
    routes: Router,
    shutdown: CancellationToken,
) -> Option<SocketAddr> {
    match serve(addr, routes, shutdown).await {
        Ok(addr) => {
            tracing::info!(%addr, "Serving health checks.");
            Some(addr)
        }
        Err(error) => {
            tracing::warn!(%addr, %error, "Not serving health checks.");
            None
        }
    }
}

/// Why [`probe`] failed; the text is what `netlab probe` prints.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The address did not resolve.
    #[error("{addr}: {source}")]
    Resolve {
        /// The address given.
        addr: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The address resolved to nothing.
    #[error("{addr}: no address")]
    NoAddress {
        /// The address given.
        addr: String,
    },
    /// Connecting, writing or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// The address given.
        addr: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The server answered with another status than 200.
    #[error("{addr}{path}: {status}")]
    Status {
        /// The address given.
        addr: String,
        /// The path asked for.
        path: String,
        /// The status line.
        status: String,
    },
}

/// GETs `http://addr/path` and returns whether the answer was 200, for `netlab probe` in images
/// without curl.
pub fn probe(addr: &str, path: &str, timeout: Duration) -> Result<(), ProbeError> {
    let io = |source| ProbeError::Io { addr: addr.to_string(), source };
    let sock: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .map_err(|source| ProbeError::Resolve { addr: addr.to_string(), source })?
        .next()
        .ok_or_else(|| ProbeError::NoAddress { addr: addr.to_string() })?;
    let mut stream = TcpStream::connect_timeout(&sock, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").map_err(io)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(io)?;
    let status = answer.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(ProbeError::Status { addr: addr.to_string(), path: path.to_string(), status: status.to_string() })
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
        assert!(r.1.unwrap_err().to_string().contains("503"));
        health.set_ready(true);
        let ready = tokio::task::spawn_blocking(move || probe(&a, "/readyz", t)).await.unwrap();
        assert!(ready.is_ok());
    }
}
