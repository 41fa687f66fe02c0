//! Defaults a component takes from the host it runs on. The node name is the hostname, lowercased,
//! as kubelet's and kube-proxy's `GetHostname` give it; the node's address is the local address
//! the kernel's route table picks, as kubelet's node-IP detection and kube-apiserver's
//! `--advertise-address` fallback (`ChooseHostInterface`: the default route's interface) pick it.
//! Connecting a UDP socket sends nothing: it only asks the kernel for a route.

use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Where the hostname is read (what `hostname` prints).
const HOSTNAME_FILE: &str = "/proc/sys/kernel/hostname";

/// An address in TEST-NET-1 (RFC 5737): never routed anywhere, so the route to it is the default.
const FAR_AWAY: SocketAddr = SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)), 9);

/// The route to an address could not be found.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The name did not resolve.
    #[error("resolving {host}")]
    Resolve {
        /// `host:port` as given.
        host: String,
        /// The resolver's error.
        #[source]
        source: std::io::Error,
    },
    /// The name resolved to no address.
    #[error("{host} has no address")]
    NoAddress {
        /// `host:port` as given.
        host: String,
    },
    /// The kernel has no route (or no socket could be made).
    #[error("finding the route to {addr}")]
    Route {
        /// The destination.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// The node name: `name_override` when given and not blank, else the hostname; lowercased either
/// way; `localhost` when the hostname cannot be read.
pub fn node_name(name_override: Option<&str>) -> String {
    name_override
        .map(|h| h.trim().to_lowercase())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string(HOSTNAME_FILE)
                .ok()
                .map(|h| h.trim().to_lowercase())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".into())
}

/// The local address the route to `dst` leaves by.
pub fn source_address(dst: SocketAddr) -> Result<IpAddr, RouteError> {
    let route = |source| RouteError::Route { addr: dst, source };
    let bind: SocketAddr = if dst.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(bind).map_err(route)?;
    socket.connect(dst).map_err(route)?;
    Ok(socket.local_addr().map_err(route)?.ip())
}

/// The local address the route to `host:port` leaves by (the name resolved first).
pub async fn source_address_to(host: &str) -> Result<IpAddr, RouteError> {
    let dst = tokio::net::lookup_host(host)
        .await
        .map_err(|source| RouteError::Resolve { host: host.to_string(), source })?
        .next()
        .ok_or_else(|| RouteError::NoAddress { host: host.to_string() })?;
    source_address(dst)
}

/// The default route's local address; `None` on a host without a default route.
pub fn default_route_address() -> Option<IpAddr> {
    source_address(FAR_AWAY).ok().filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_name_prefers_the_override_lowercased() {
        assert_eq!(node_name(Some(" Node-1 ")), "node-1");
        let host = node_name(None);
        assert!(!host.is_empty());
        assert_eq!(node_name(Some("  ")), host);
        assert_eq!(host, host.to_lowercase());
    }

    #[tokio::test]
    async fn loopback_routes_leave_by_loopback() {
        assert_eq!(source_address("127.0.0.1:9".parse().unwrap()).unwrap(), IpAddr::from([127, 0, 0, 1]));
        assert!(source_address_to("localhost:9").await.unwrap().is_loopback());
        assert!(matches!(source_address_to("no-such-host.invalid:9").await, Err(RouteError::Resolve { .. })));
    }
}
