//! Gated sockets for servers that own their socket loop (the cluster DNS's UDP receivers,
//! hickory's TCP and UDP servers): the server runs in epochs, one per stretch of running.
//! Stopping ends the epoch and closes the socket, so a datagram gets ICMP port unreachable (dig:
//! "connection refused") and a connect gets refused; pausing ends the epoch but keeps the socket
//! bound, so datagrams and connections wait in the kernel unanswered, as for a SIGSTOPped
//! process, and the next epoch (on resume) serves them from the same socket.

use std::{fmt::Display, io, net::SocketAddr, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::gate::{Gate, Mode};

/// How long to wait before binding again when the address is still taken (the last epoch's
/// threads let go of the socket within their poll interval).
const RETRY: Duration = Duration::from_millis(50);

/// A std socket an epoch can be given, bound again after a stop, and kept during a pause.
pub trait Socket: Sized + Send + 'static {
    /// Binds `addr` anew.
    fn bind_again(addr: SocketAddr) -> io::Result<Self>;
    /// A second handle on the same socket (kept while the server has the first).
    fn duplicate(&self) -> io::Result<Self>;
    /// Where it is bound.
    fn bound(&self) -> io::Result<SocketAddr>;
}

impl Socket for std::net::UdpSocket {
    fn bind_again(addr: SocketAddr) -> io::Result<Self> {
        std::net::UdpSocket::bind(addr)
    }
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn bound(&self) -> io::Result<SocketAddr> {
        self.local_addr()
    }
}

impl Socket for std::net::TcpListener {
    fn bind_again(addr: SocketAddr) -> io::Result<Self> {
        // SO_REUSEADDR, as tokio's and every server's bind sets it: the stopped listener's
        // connections in TIME_WAIT must not keep the address from being bound again.
        let socket = socket_for(addr)?;
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(1024)?.into_std()
    }
    fn duplicate(&self) -> io::Result<Self> {
        self.try_clone()
    }
    fn bound(&self) -> io::Result<SocketAddr> {
        self.local_addr()
    }
}

fn socket_for(addr: SocketAddr) -> io::Result<tokio::net::TcpSocket> {
    if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
}

/// Serves `socket` with `start` in one epoch per stretch of running, until `shutdown`. `start`
/// gets the socket and the epoch's token, spawns its server and returns; the server must let go
/// of the socket soon after the token is cancelled.
pub async fn serve<S, E>(
    socket: S,
    gate: Gate,
    shutdown: CancellationToken,
    mut start: impl FnMut(S, CancellationToken) -> Result<(), E> + Send + 'static,
) -> io::Result<()>
where
    S: Socket,
    E: Display,
{
    let addr = socket.bound()?;
    let mut state = gate.subscribe();
    // The socket while no epoch has it: bound during a pause, None during a stop.
    let mut held = Some(socket);
    loop {
        let mode = state.borrow_and_update().mode;
        match mode {
            Mode::Stopped => {
                if held.take().is_some() {
                    tracing::debug!(%addr, "Socket closed: the process is stopped.");
                }
            }
            Mode::Paused => {
                if held.is_none() {
                    held = bind(addr, &shutdown).await;
                }
            }
            Mode::Running => {
                let Some(socket) = (match held.take() {
                    Some(s) => Some(s),
                    None => bind(addr, &shutdown).await,
                }) else {
                    return Ok(());
                };
                let keep = socket.duplicate()?;
                let epoch = shutdown.child_token();
                if let Err(error) = start(socket, epoch.clone()) {
                    tracing::warn!(%addr, %error, "Server did not start.");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = state.wait_for(|s| s.mode != Mode::Running) => {}
                }
                epoch.cancel();
                held = Some(keep);
                continue;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            changed = state.changed() => if changed.is_err() { return Ok(()) },
        }
    }
}

/// Binds `addr` again, retrying while it is taken; None on shutdown.
async fn bind<S: Socket>(addr: SocketAddr, shutdown: &CancellationToken) -> Option<S> {
    loop {
        match S::bind_again(addr) {
            Ok(s) => {
                tracing::debug!(%addr, "Bound again.");
                return Some(s);
            }
            Err(error) => tracing::debug!(%addr, %error, "Cannot bind again yet; retrying."),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(RETRY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::UdpSocket;

    use super::*;

    /// A UDP echo on the socket until the epoch ends (as the DNS receivers: a read timeout to
    /// look up at the token).
    fn echo(socket: UdpSocket, epoch: CancellationToken) -> io::Result<()> {
        socket.set_read_timeout(Some(Duration::from_millis(20)))?;
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while !epoch.is_cancelled() {
                if let Ok((n, from)) = socket.recv_from(&mut buf) {
                    let _ = socket.send_to(&buf[..n], from);
                }
            }
        });
        Ok(())
    }

    fn ask(server: SocketAddr) -> io::Result<Vec<u8>> {
        let c = UdpSocket::bind("127.0.0.1:0")?;
        c.set_read_timeout(Some(Duration::from_millis(300)))?;
        c.connect(server)?;
        c.send(b"q")?;
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf)?;
        Ok(buf[..n].to_vec())
    }

    async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
        for _ in 0..100 {
            if tokio::task::block_in_place(&mut f) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn udp_stop_is_port_unreachable_pause_is_silence() {
        let gate = Gate::new();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        tokio::spawn(serve(socket, gate.clone(), shutdown.clone(), echo));
        eventually("an answer", || ask(addr).is_ok_and(|a| a == b"q")).await;

        gate.set(Mode::Stopped, None);
        eventually(
            "ICMP port unreachable",
            || matches!(ask(addr), Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
        )
        .await;

        gate.set(Mode::Paused, None);
        eventually("silence", || matches!(ask(addr), Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut)).await;

        gate.set(Mode::Running, None);
        eventually("answers again", || ask(addr).is_ok_and(|a| a == b"q")).await;
        shutdown.cancel();
    }
}
