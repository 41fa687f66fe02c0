//! The transport, as hickory splits it from request handling: one UDP and one TCP socket on the
//! same port, each handing queries to [`DnsHandler`]. UDP is ours ([`udp`]: receiver threads with
//! a packet cache in front of the handler); TCP is hickory's `Server` loop, with CoreDNS's idle
//! timeout.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_server::Server;
use tokio::net::TcpListener;

use crate::{
    Shared,
    error::{Error, Result},
    handler::DnsHandler,
};

pub mod udp;

/// How long a TCP connection may sit idle.
const TCP_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves DNS on `addr` (UDP and TCP on the same port) until `shutdown`; returns the address
/// bound (useful with port 0). UDP is [`udp`]'s receiver threads; TCP is hickory's server loop.
pub async fn serve(
    shared: Arc<Shared>,
    addr: SocketAddr,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<SocketAddr> {
    serve_gated(shared, addr, netlab_faults::Gate::new(), shutdown).await
}

/// [`serve`], following the process's fault gate: stopped, both sockets are closed (a query
/// gets ICMP port unreachable, dig says "connection refused"); paused, they stay bound and
/// nothing is read (queries time out), as for a SIGSTOPped CoreDNS.
pub async fn serve_gated(
    shared: Arc<Shared>,
    addr: SocketAddr,
    gate: netlab_faults::Gate,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<SocketAddr> {
    let udp =
        std::net::UdpSocket::bind(addr).map_err(|source| Error::Bind { what: "dns/udp", addr, source })?;
    let local = udp.local_addr().map_err(|source| Error::Bind { what: "dns/udp", addr, source })?;
    let tcp = TcpListener::bind(local).await.map_err(|source| Error::Bind {
        what: "dns/tcp",
        addr: local,
        source,
    })?;
    let tcp = tcp.into_std().map_err(|source| Error::Bind { what: "dns/tcp", addr: local, source })?;
    // Each socket is served in epochs of running (see netlab_faults::socket): an epoch's
    // receivers stop with its token.
    let udp_shared = shared.clone();
    let udp_epochs =
        netlab_faults::socket::serve(udp, gate.clone(), shutdown.clone(), move |socket, epoch| {
            udp::serve(udp_shared.clone(), socket, local, epoch)
        });
    let tcp_epochs = netlab_faults::socket::serve(tcp, gate, shutdown, move |listener, epoch| {
        tcp_epoch(shared.clone(), listener, local, epoch)
    });
    tokio::spawn(async move {
        if let Err(error) = tokio::try_join!(udp_epochs, tcp_epochs) {
            tracing::warn!(%error, "DNS server stopped with an error.");
        }
    });
    Ok(local)
}

/// hickory's TCP server on `listener` until `epoch` ends.
fn tcp_epoch(
    shared: Arc<Shared>,
    listener: std::net::TcpListener,
    local: SocketAddr,
    epoch: tokio_util::sync::CancellationToken,
) -> Result<()> {
    let bind = |source| Error::Bind { what: "dns/tcp", addr: local, source };
    listener.set_nonblocking(true).map_err(bind)?;
    let tcp = TcpListener::from_std(listener).map_err(bind)?;
    let mut server = Server::new(DnsHandler::new(shared));
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    tokio::spawn(async move {
        epoch.cancelled().await;
        if let Err(error) = server.shutdown_gracefully().await {
            tracing::warn!(%error, "DNS server stopped with an error.");
        }
    });
    Ok(())
}
