//! Connections that a request can have reset: how RegistryChaos `unreachable` acts per repository.
//!
//! A registry that is really unreachable is so for every repository at once (its name does not
//! resolve, or nothing listens: connection refused). A fault on some repositories only can act
//! once the request names the repository, that is after the connection is accepted; so the lab
//! answers such a request by resetting the connection (RST, as a firewall's `tcp-reset` or a
//! crashed frontend does) instead of writing a response. The client sees `connection reset by
//! peer` on that request, while pulls from other repositories over the same registry go on.
//!
//! [`ResetListener`] wraps the registry's listener (itself gated by the component faults, so a
//! stopped cloud refuses connections); each connection's [`Peer`] (its `ConnectInfo`) carries a
//! switch that makes the next write fail and the close send RST.

use std::{
    io,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
};

use axum::{extract::connect_info::Connected, serve::IncomingStream};
use netlab_faults::{GatedIo, GatedListener};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The registry's listener, handing out resettable connections.
pub struct ResetListener(pub GatedListener);

/// One accepted connection: the stream and its reset switch.
pub struct ResetIo {
    stream: GatedIo<TcpStream>,
    reset: Arc<AtomicBool>,
}

/// The connection a request came on, as its handlers see it (`ConnectInfo<Peer>`).
#[derive(Debug, Clone)]
pub struct Peer {
    /// The client's address.
    pub addr: SocketAddr,
    reset: Arc<AtomicBool>,
}

// === impl Peer ===

impl Peer {
    /// Resets the connection instead of answering: the response is never written and the close
    /// sends RST.
    pub fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }
}

// === impl ResetListener ===

impl axum::serve::Listener for ResetListener {
    type Io = ResetIo;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The gated listener retries failed accepts itself, as axum's own listener does.
        let (stream, addr) = self.0.accept().await;
        let reset = Arc::new(AtomicBool::new(false));
        (ResetIo { stream, reset: reset.clone() }, Peer { addr, reset })
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer { addr: self.0.local_addr(), reset: Arc::default() })
    }
}

impl Connected<IncomingStream<'_, ResetListener>> for Peer {
    fn connect_info(stream: IncomingStream<'_, ResetListener>) -> Self {
        stream.remote_addr().clone()
    }
}

// === impl ResetIo ===

impl ResetIo {
    fn reset_now(&self) -> io::Error {
        // Zero linger: closing the socket sends RST and drops what is unsent.
        let _ = self.stream.get_ref().set_zero_linger();
        io::Error::from(io::ErrorKind::ConnectionReset)
    }
}

impl AsyncRead for ResetIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for ResetIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.reset.load(Ordering::SeqCst) {
            return Poll::Ready(Err(me.reset_now()));
        }
        Pin::new(&mut me.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let me = self.get_mut();
        if me.reset.load(Ordering::SeqCst) {
            return Poll::Ready(Err(me.reset_now()));
        }
        Pin::new(&mut me.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if me.reset.load(Ordering::SeqCst) {
            return Poll::Ready(Err(me.reset_now()));
        }
        Pin::new(&mut me.stream).poll_shutdown(cx)
    }
}
