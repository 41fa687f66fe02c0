//! A gated TCP listener, for tonic's `serve_with_incoming` and `axum::serve`: while the process
//! runs it accepts; while it is stopped the listening socket is closed, so connecting gets
//! "connection refused" exactly as for a dead process, and it is bound again on the same address
//! when the process runs again; while it is paused connections are accepted (as the kernel's
//! backlog accepts them for a SIGSTOPped process) and held unanswered ([`GatedIo`]).

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use futures::Stream;
use netlab_chaos::FaultRef;
use tokio::{
    net::{TcpListener, TcpStream},
    sync::watch,
};

use crate::{
    gate::{Gate, Mode, State},
    io::GatedIo,
};

/// How long to wait before binding again when the address is still taken (the old socket of a
/// stop a moment ago), or after an accept error.
const RETRY: Duration = Duration::from_millis(50);

/// Called for each connection accepted while paused (to count it and mark the trace).
pub type OnHeld = Arc<dyn Fn(&FaultRef, SocketAddr) + Send + Sync>;

/// A listener that follows the gate.
pub struct GatedListener {
    addr: SocketAddr,
    listener: Option<TcpListener>,
    state: watch::Receiver<State>,
    nodelay: bool,
    on_held: Option<OnHeld>,
}

// === impl GatedListener ===

impl GatedListener {
    /// Gates `listener` (already bound) with `gate`.
    pub fn new(listener: TcpListener, gate: &Gate) -> io::Result<Self> {
        let addr = listener.local_addr()?;
        Ok(Self { addr, listener: Some(listener), state: gate.subscribe(), nodelay: false, on_held: None })
    }

    /// Sets TCP_NODELAY on accepted connections (tonic's `TcpIncoming::with_nodelay`).
    pub fn nodelay(mut self) -> Self {
        self.nodelay = true;
        self
    }

    /// Calls `f` for each connection accepted while paused.
    pub fn on_held(mut self, f: OnHeld) -> Self {
        self.on_held = Some(f);
        self
    }

    /// The address it listens on (and binds again after a stop).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The next connection, waiting out a stop with the socket closed.
    pub async fn accept(&mut self) -> (GatedIo<TcpStream>, SocketAddr) {
        loop {
            let state = self.state.borrow_and_update().clone();
            if state.mode == Mode::Stopped {
                if self.listener.take().is_some() {
                    tracing::debug!(addr = %self.addr, "Listener closed: the process is stopped.");
                }
                // The gate outlives every listener of its process.
                if self.state.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                continue;
            }
            let listener = match &self.listener {
                Some(l) => l,
                None => match TcpListener::bind(self.addr).await {
                    Ok(l) => {
                        tracing::debug!(addr = %self.addr, "Listening again.");
                        self.listener.insert(l)
                    }
                    Err(error) => {
                        tracing::debug!(addr = %self.addr, %error, "Cannot listen again yet; retrying.");
                        tokio::time::sleep(RETRY).await;
                        continue;
                    }
                },
            };
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        if self.nodelay {
                            let _ = stream.set_nodelay(true);
                        }
                        let io = GatedIo::new(stream, self.state.clone());
                        let now = self.state.borrow().clone();
                        if now.mode == Mode::Paused
                            && let (Some(fault), Some(f)) = (&now.fault, &self.on_held)
                        {
                            f(fault, peer);
                        }
                        return (io, peer);
                    }
                    Err(error) => {
                        tracing::debug!(addr = %self.addr, %error, "Accept failed; retrying.");
                        tokio::time::sleep(RETRY).await;
                    }
                },
                changed = self.state.changed() => if changed.is_err() {
                    std::future::pending::<()>().await;
                },
            }
        }
    }

    /// The connections as a stream, for tonic's `serve_with_incoming(_shutdown)`.
    pub fn into_incoming(self) -> impl Stream<Item = io::Result<GatedIo<TcpStream>>> + Send + 'static {
        futures::stream::unfold(self, |mut l| async move {
            let (io, _) = l.accept().await;
            Some((Ok(io), l))
        })
    }
}

impl axum::serve::Listener for GatedListener {
    type Io = GatedIo<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        GatedListener::accept(self).await
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

impl tonic::transport::server::Connected for GatedIo<TcpStream> {
    type ConnectInfo = <TcpStream as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.get_ref().connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn echo(mut l: GatedListener) {
        loop {
            let (mut io, _) = l.accept().await;
            tokio::spawn(async move {
                let mut buf = [0u8; 16];
                while let Ok(n) = io.read(&mut buf).await {
                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    }

    async fn eventually(what: &str, mut f: impl AsyncFnMut() -> bool) {
        for _ in 0..200 {
            if f().await {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn stop_refuses_and_closes_then_the_same_address_serves_again() {
        let gate = Gate::new();
        let l = GatedListener::new(TcpListener::bind("127.0.0.1:0").await.unwrap(), &gate).unwrap();
        let addr = l.local_addr();
        tokio::spawn(echo(l));
        let mut old = TcpStream::connect(addr).await.unwrap();
        old.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        old.read_exact(&mut buf).await.unwrap();

        gate.set(Mode::Stopped, None);
        eventually("connection refused", async || {
            matches!(TcpStream::connect(addr).await, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused)
        })
        .await;
        // The established connection was closed by the server.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(2), old.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "{closed:?}");

        gate.set(Mode::Running, None);
        eventually("serving again", async || {
            let Ok(mut s) = TcpStream::connect(addr).await else { return false };
            s.write_all(b"yo").await.is_ok() && s.read_exact(&mut buf).await.is_ok() && &buf == b"yo"
        })
        .await;
    }

    #[tokio::test]
    async fn pause_accepts_and_holds_and_counts() {
        let gate = Gate::new();
        let held = Arc::new(AtomicUsize::new(0));
        let counter = held.clone();
        let l = GatedListener::new(TcpListener::bind("127.0.0.1:0").await.unwrap(), &gate).unwrap().on_held(
            Arc::new(move |_, _| {
                counter.fetch_add(1, Ordering::Relaxed);
            }),
        );
        let addr = l.local_addr();
        tokio::spawn(echo(l));
        gate.set(Mode::Paused, Some(FaultRef::new("default", "p", "ComponentChaos", "pause")));
        let mut s = TcpStream::connect(addr).await.expect("the backlog accepts");
        s.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        let answer = tokio::time::timeout(Duration::from_millis(200), s.read_exact(&mut buf)).await;
        assert!(answer.is_err(), "no answer while paused");
        eventually("the held connection counted", async || held.load(Ordering::Relaxed) == 1).await;
        gate.set(Mode::Running, None);
        tokio::time::timeout(Duration::from_secs(2), s.read_exact(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf, b"hi", "answered once resumed, as after SIGCONT");
    }
}
