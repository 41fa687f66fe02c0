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
    let udp =
        std::net::UdpSocket::bind(addr).map_err(|source| Error::Bind { what: "dns/udp", addr, source })?;
    let local = udp.local_addr().map_err(|source| Error::Bind { what: "dns/udp", addr, source })?;
    let tcp = TcpListener::bind(local).await.map_err(|source| Error::Bind {
        what: "dns/tcp",
        addr: local,
        source,
    })?;
    udp::serve(shared.clone(), udp, local, shutdown.clone())?;
    let mut server = Server::new(DnsHandler::new(shared));
    server.register_listener(tcp, TCP_TIMEOUT, 64);
    tokio::spawn(async move {
        shutdown.cancelled().await;
        if let Err(error) = server.shutdown_gracefully().await {
            tracing::warn!(%error, "DNS server stopped with an error.");
        }
    });
    Ok(local)
}
