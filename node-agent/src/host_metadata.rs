//! The instance metadata service as the node's own processes reach it. On an EC2 instance a
//! host process (the kubelet's `ecr-credential-provider`, ipamd) connects to
//! 169.254.169.254:80 and the hypervisor answers for that instance. Natively a node is a
//! loopback address of its own (127.0.1.x) and cannot take 169.254.169.254:80, so the
//! node-agent listens on the node's address instead and forwards each connection to the
//! cloud's IMDS from the node's address ([`crate::metadata::connect`], one hop: the process is
//! on the node), which is how IMDS knows the instance. Processes the kubelet starts are told
//! the address in `AWS_EC2_METADATA_SERVICE_ENDPOINT`, the SDKs' variable for where IMDS is.
//!
//! Pods do not come here: their 169.254.169.254 goes through the node's kernel model
//! ([`crate::dataplane`]), which applies the hop limit to them.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use tokio_util::sync::CancellationToken;

/// Listens on `node_ip` (an ephemeral port) and forwards each connection to the cloud's IMDS
/// at `imds` (`host:port`) from `node_ip`, until `shutdown`. Returns the address listened on.
pub async fn serve(imds: String, node_ip: IpAddr, shutdown: CancellationToken) -> io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(node_ip, 0)).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let (mut client, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "Host IMDS address: accept failed.");
                        continue;
                    }
                },
            };
            let imds = imds.clone();
            tokio::spawn(async move {
                match crate::metadata::connect(&imds, node_ip, 1).await {
                    Ok(mut upstream) => {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(e) => tracing::debug!(error = %e, %imds, "Host IMDS address: IMDS unreachable."),
                }
            });
        }
    });
    Ok(addr)
}

/// The `AWS_EC2_METADATA_SERVICE_ENDPOINT` value for a listener at `addr`.
pub fn endpoint(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    #[tokio::test]
    async fn connections_reach_imds_from_the_node_address() {
        // A stand-in IMDS that answers with the caller's address.
        let imds = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let imds_addr = imds.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, peer) = imds.accept().await.unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).await.unwrap();
            s.write_all(format!("{} {}", peer.ip(), String::from_utf8_lossy(&buf[..n])).as_bytes())
                .await
                .unwrap();
        });
        let node_ip: IpAddr = "127.0.1.77".parse().unwrap();
        let shutdown = CancellationToken::new();
        let Ok(addr) = serve(imds_addr.to_string(), node_ip, shutdown.clone()).await else {
            eprintln!("SKIP: cannot bind {node_ip} here");
            return;
        };
        assert_eq!(addr.ip(), node_ip);
        assert_eq!(endpoint(addr), format!("http://{addr}"));
        let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
        c.write_all(b"ping").await.unwrap();
        let mut got = String::new();
        c.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "127.0.1.77 ping");
        shutdown.cancel();
    }
}
