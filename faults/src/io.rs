//! A connection of a gated process: while the process runs it is the socket; while paused it
//! neither reads nor writes (the peer's bytes wait in the kernel, as for a SIGSTOPped process,
//! and flow again on resume); once the process stops it is closed for good (reads end, writes
//! fail, and the server drops it, which closes the socket), as a dead process's connections are.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    sync::watch,
};
use tokio_util::sync::ReusableBoxFuture;

use crate::gate::{Mode, State};

/// What the gate says about one connection.
enum Verdict {
    Go,
    Wait,
    Dead,
}

/// A gated connection.
pub struct GatedIo<T> {
    inner: T,
    state: watch::Receiver<State>,
    /// The stop count when the connection was accepted.
    born: u64,
    /// Resolves when the gate changes, to wake a connection waiting out a pause.
    changed: ReusableBoxFuture<'static, ()>,
    dead: bool,
}

// === impl GatedIo ===

impl<T> GatedIo<T> {
    /// `inner`, following `state`.
    pub fn new(inner: T, state: watch::Receiver<State>) -> Self {
        let born = state.borrow().stops;
        let changed = ReusableBoxFuture::new(changed(state.clone()));
        Self { inner, state, born, changed, dead: false }
    }

    /// The connection itself.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn verdict(&mut self, cx: &mut Context<'_>) -> Verdict {
        loop {
            if self.dead {
                return Verdict::Dead;
            }
            let (mode, stops) = {
                let s = self.state.borrow();
                (s.mode, s.stops)
            };
            if stops != self.born || mode == Mode::Stopped {
                self.dead = true;
                return Verdict::Dead;
            }
            // Whatever the mode, a change of the gate must wake this connection: a stop closes a
            // connection that waits for the peer as much as one that waits out a pause.
            if self.changed.poll(cx).is_ready() {
                self.changed.set(changed(self.state.clone()));
                continue;
            }
            return if mode == Mode::Running { Verdict::Go } else { Verdict::Wait };
        }
    }
}

async fn changed(mut state: watch::Receiver<State>) {
    drop(state.borrow_and_update());
    if state.changed().await.is_err() {
        // The gate is gone (the process is ending): nothing will change any more.
        std::future::pending::<()>().await;
    }
}

fn closed() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the process is stopped")
}

impl<T: AsyncRead + Unpin> AsyncRead for GatedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.verdict(cx) {
            // End of stream: the server closes its side.
            Verdict::Dead => Poll::Ready(Ok(())),
            Verdict::Wait => Poll::Pending,
            Verdict::Go => Pin::new(&mut self.inner).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for GatedIo<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.verdict(cx) {
            Verdict::Dead => Poll::Ready(Err(closed())),
            Verdict::Wait => Poll::Pending,
            Verdict::Go => Pin::new(&mut self.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.verdict(cx) {
            Verdict::Dead => Poll::Ready(Err(closed())),
            Verdict::Wait => Poll::Pending,
            Verdict::Go => Pin::new(&mut self.inner).poll_flush(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing is always allowed: it is what a stop does anyway.
        ready!(Pin::new(&mut self.inner).poll_shutdown(cx))?;
        Poll::Ready(Ok(()))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.verdict(cx) {
            Verdict::Dead => Poll::Ready(Err(closed())),
            Verdict::Wait => Poll::Pending,
            Verdict::Go => Pin::new(&mut self.inner).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::gate::Gate;

    #[tokio::test]
    async fn paused_holds_then_resumes_stopped_closes_for_good() {
        let gate = Gate::new();
        let (client, server) = tokio::io::duplex(64);
        let mut io = GatedIo::new(server, gate.subscribe());
        let mut client = client;

        gate.set(Mode::Paused, None);
        client.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), io.read(&mut buf)).await.is_err(),
            "paused: nothing is read"
        );
        gate.set(Mode::Running, None);
        io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping", "resumed: the bytes that waited are read");

        gate.set(Mode::Stopped, None);
        assert_eq!(io.read(&mut buf).await.unwrap(), 0, "stopped: end of stream");
        gate.set(Mode::Running, None);
        assert_eq!(io.read(&mut buf).await.unwrap(), 0, "a stopped connection stays closed");
        assert!(io.write_all(b"x").await.is_err());
    }

    #[tokio::test]
    async fn a_stop_between_polls_still_closes() {
        let gate = Gate::new();
        let (_client, server) = tokio::io::duplex(64);
        let mut io = GatedIo::new(server, gate.subscribe());
        gate.set(Mode::Stopped, None);
        gate.set(Mode::Running, None);
        assert!(io.write_all(b"x").await.is_err());
    }
}
