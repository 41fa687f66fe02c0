//! The instance metadata address, 169.254.169.254:80, as an EC2 instance's network has it: the
//! node sends what its processes and pods address there to the cloud's IMDS, from the node's
//! own address (which tells IMDS which instance asks, as the hypervisor tells the real one).
//!
//! The hop limit is where it bites. IMDS sends its answer to `PUT /latest/api/token` with an IP
//! TTL of the instance's `HttpPutResponseHopLimit` (the cloud names it in the
//! `x-netlab-imds-hop-limit` response header). The answer reaches the node with that TTL; a
//! process on the node (or a hostNetwork pod) takes it there, but a pod behind the node's bridge
//! is one more routed hop away: forwarding decrements the TTL, and at 0 the packet is dropped.
//! So with hop limit 1 a pod's token request is never answered (its client times out), which
//! is why pods on EKS nodes cannot get node credentials through IMDSv2.

use std::{
    io,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    pin::Pin,
    task::{Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::podnet::Stream;

/// The link-local address of the instance metadata service.
pub const ADDRESS: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), 80);
/// The response header the cloud's IMDS names the PUT answer's IP TTL in.
pub const HOP_LIMIT_HEADER: &str = "x-netlab-imds-hop-limit";
/// How far a pod behind the node's bridge is from the node's interface, in routed hops.
pub const POD_HOPS: u8 = 2;

/// Connects to the cloud's IMDS at `imds` (`host:port`) from `node_ip`, for a client `hops`
/// routed hops behind the node's interface (1: the node itself or a hostNetwork pod).
pub async fn connect(imds: &str, node_ip: IpAddr, hops: u8) -> io::Result<Box<dyn Stream>> {
    let addr = tokio::net::lookup_host(imds)
        .await?
        .find(|a| a.is_ipv4() == node_ip.is_ipv4())
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{imds}: no address")))?;
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // From the node's address, so that IMDS knows the instance. Natively the node's address is a
    // loopback one of its own; where it cannot be bound the connection goes out unbound.
    let _ = socket.bind(SocketAddr::new(node_ip, 0));
    let stream = socket.connect(addr).await?;
    let _ = stream.set_nodelay(true);
    Ok(if hops > 1 { Box::new(TtlLimited::new(stream, hops)) } else { Box::new(stream) })
}

/// A connection whose answers die on the way when they left IMDS with a TTL below `hops`.
pub struct TtlLimited<S> {
    inner: S,
    hops: u8,
    /// The head of the current answer, until it is complete.
    head: Vec<u8>,
    /// Bytes of a passed answer waiting to be read.
    ready: Vec<u8>,
    /// An answer was dropped: nothing more arrives.
    dropped: bool,
}

// === impl TtlLimited ===

impl<S> TtlLimited<S> {
    fn new(inner: S, hops: u8) -> Self {
        Self { inner, hops, head: Vec::new(), ready: Vec::new(), dropped: false }
    }

    /// Looks at a complete response head: true if the answer survives the hops.
    fn survives(head: &[u8], hops: u8) -> bool {
        let text = String::from_utf8_lossy(head);
        let ttl = text.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case(HOP_LIMIT_HEADER)
                .then(|| value.trim().parse::<u8>().ok())
                .flatten()
        });
        ttl.is_none_or(|ttl| ttl >= hops)
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TtlLimited<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.dropped {
                // The answer never comes; the client's timeout ends the wait.
                return Poll::Pending;
            }
            if !this.ready.is_empty() {
                let n = this.ready.len().min(buf.remaining());
                buf.put_slice(&this.ready[..n]);
                this.ready.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                    // EOF: whatever head was pending goes through as is.
                    let rest = std::mem::take(&mut this.head);
                    if rest.is_empty() {
                        return Poll::Ready(Ok(()));
                    }
                    this.ready = rest;
                }
                Poll::Ready(Ok(())) => {
                    this.head.extend_from_slice(rb.filled());
                    if let Some(end) = this.head.windows(4).position(|w| w == b"\r\n\r\n") {
                        if Self::survives(&this.head[..end], this.hops) {
                            // One answer looked at; the rest of the connection passes (an HTTP
                            // client sends one token request per connection in practice).
                            this.ready = std::mem::take(&mut this.head);
                            this.hops = 0;
                        } else {
                            tracing::debug!(
                                hops = this.hops,
                                "IMDS answer dropped: its TTL ran out on the way to the pod."
                            );
                            this.dropped = true;
                        }
                    } else if this.hops == 0 {
                        this.ready = std::mem::take(&mut this.head);
                    }
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TtlLimited<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn through(answer: &'static [u8], hops: u8) -> Option<Vec<u8>> {
        let (client, mut server) = tokio::io::duplex(4096);
        tokio::spawn(async move {
            server.write_all(answer).await.unwrap();
            server.shutdown().await.unwrap();
        });
        let mut limited = TtlLimited::new(client, hops);
        let mut got = Vec::new();
        tokio::time::timeout(std::time::Duration::from_millis(200), limited.read_to_end(&mut got))
            .await
            .ok()?
            .ok()?;
        Some(got)
    }

    #[tokio::test]
    async fn a_token_answer_with_ttl_1_dies_before_a_pod_and_ttl_2_reaches_it() {
        const TTL1: &[u8] =
            b"HTTP/1.1 200 OK\r\nx-netlab-imds-hop-limit: 1\r\ncontent-length: 5\r\n\r\ntoken";
        const TTL2: &[u8] =
            b"HTTP/1.1 200 OK\r\nX-Netlab-Imds-Hop-Limit: 2\r\ncontent-length: 5\r\n\r\ntoken";
        const PLAIN: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(through(TTL1, POD_HOPS).await, None, "dropped: the client times out");
        assert_eq!(through(TTL2, POD_HOPS).await.as_deref(), Some(TTL2));
        assert_eq!(through(PLAIN, POD_HOPS).await.as_deref(), Some(PLAIN), "GETs carry no hop limit");
    }
}
