//! The built-in apps a container runs, chosen by its image's `io.netlab.app` label: an HTTP echo
//! server, a redis-protocol key-value server, agnhost's netexec (HTTP and UDP), and the toolbox (no listener; the client side of
//! `exec`). Each app listens on the node's [`SocketTable`] at the pod's IP, so it is reachable
//! exactly where a real container's socket would be.

use std::net::{IpAddr, SocketAddr};

use tokio_util::sync::CancellationToken;

use crate::{
    image::AppKind,
    sockets::{Protocol, SocketError, SocketTable},
};

pub mod echo;
pub mod http;
pub mod kv;
pub mod netexec;
pub mod toolbox;

/// The port `kv` listens on unless the image or container says otherwise.
pub const KV_PORT: u16 = 6379;
/// The port `echo` listens on when neither the container nor the image names one.
pub const ECHO_PORT: u16 = 80;

/// Who an app is: what the echo server reports, and where apps listen.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The pod's name.
    pub pod: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's IP (the node IP for hostNetwork pods).
    pub ip: IpAddr,
    /// The node's name.
    pub node: String,
    /// The container's name.
    pub container: String,
}

/// Starts `kind` for `who` on `port` (or the app's default): binds first, so a started app is
/// already listening, then serves until `stop` fires.
pub fn start(
    kind: AppKind,
    who: Identity,
    port: Option<u16>,
    sockets: &SocketTable,
    stop: CancellationToken,
) -> Result<(), SocketError> {
    match kind {
        AppKind::Echo => {
            let listener =
                sockets.listen(SocketAddr::new(who.ip, port.unwrap_or(ECHO_PORT)), Protocol::Tcp)?;
            tokio::spawn(echo::serve(listener, who, stop));
        }
        AppKind::Kv => {
            let listener = sockets.listen(SocketAddr::new(who.ip, port.unwrap_or(KV_PORT)), Protocol::Tcp)?;
            tokio::spawn(kv::serve(listener, stop));
        }
        AppKind::Netexec => {
            let http =
                sockets.listen(SocketAddr::new(who.ip, port.unwrap_or(netexec::HTTP_PORT)), Protocol::Tcp)?;
            let udp = sockets.listen(SocketAddr::new(who.ip, netexec::UDP_PORT), Protocol::Udp)?;
            tokio::spawn(netexec::serve_http(http, who.clone(), stop.clone()));
            tokio::spawn(netexec::serve_udp(udp, who, stop));
        }
        AppKind::Toolbox => {}
    }
    Ok(())
}

/// Runs `command` in a container of `kind` (exec probes): the toolbox's shell builtins `true`
/// and `false` (also as `sh -c true`, `exit 0`); anything else succeeds. Returns the exit code.
pub fn exec(_kind: AppKind, command: &[String]) -> i32 {
    let words: Vec<&str> = command
        .iter()
        .flat_map(|c| c.split_whitespace())
        .filter(|w| !matches!(*w, "sh" | "/bin/sh" | "bash" | "/bin/bash" | "-c"))
        .collect();
    match words.as_slice() {
        ["false"] | ["/bin/false"] => 1,
        ["exit", code] => code.parse().unwrap_or(2),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_true_false() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(exec(AppKind::Toolbox, &s(&["true"])), 0);
        assert_eq!(exec(AppKind::Toolbox, &s(&["/bin/false"])), 1);
        assert_eq!(exec(AppKind::Toolbox, &s(&["sh", "-c", "exit 3"])), 3);
    }
}
