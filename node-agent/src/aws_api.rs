//! The AWS API as a pod reaches it: its SDK resolves `sts.us-east-1.amazonaws.com` (the lab's
//! upstream DNS answers the cloud's address for the AWS endpoint names) and connects to port
//! 443; the node's default route would carry that to AWS. In the lab the node sends it to the
//! cloud's AWS endpoint (the node-agent's `--aws-api`, `host:port`, which serves every service
//! on one plain-HTTP port).
//!
//! What differs from EKS: no TLS. The lab's pod tools speak none, so the `aws` tool sends its
//! HTTP/1.1 request in the clear to port 443, and this route hands the bytes to the endpoint as
//! they are. The connection is matched before the pod's NAT and policy (natively the cloud's
//! address is 127.0.0.1, which inside a pod would be the pod's own loopback), so an egress
//! NetworkPolicy does not stop it.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use crate::podnet::Stream;

/// The port AWS's HTTPS endpoints listen on.
pub const HTTPS_PORT: u16 = 443;

/// Whether a connection to `dst` is one to the AWS API at `api`: port 443 of an address `api`'s
/// host resolves to.
pub async fn is_aws_api(api: &str, dst: SocketAddr) -> bool {
    if dst.port() != HTTPS_PORT {
        return false;
    }
    match tokio::net::lookup_host(api).await {
        Ok(mut addrs) => addrs.any(|a| a.ip() == dst.ip()),
        Err(_) => false,
    }
}

/// Connects to the AWS endpoint at `api`, from `node_ip` where it can be bound (the source the
/// cloud logs).
pub async fn connect(api: &str, node_ip: IpAddr) -> io::Result<Box<dyn Stream>> {
    let addr = tokio::net::lookup_host(api)
        .await?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{api}: no address")))?;
    let socket =
        if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if addr.is_ipv4() == node_ip.is_ipv4() {
        let _ = socket.bind(SocketAddr::new(node_ip, 0));
    }
    let stream = socket.connect(addr).await?;
    let _ = stream.set_nodelay(true);
    Ok(Box::new(stream))
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn port_443_of_the_endpoints_address_reaches_the_endpoint() {
        let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api = endpoint.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = endpoint.accept().await.unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.unwrap();
            s.write_all(&buf).await.unwrap();
        });
        assert!(is_aws_api(&api, "127.0.0.1:443".parse().unwrap()).await);
        assert!(!is_aws_api(&api, "127.0.0.1:80".parse().unwrap()).await, "only 443");
        assert!(!is_aws_api(&api, "10.0.0.1:443".parse().unwrap()).await, "only the endpoint's address");
        let mut s = connect(&api, "127.0.0.1".parse().unwrap()).await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
    }
}
