//! The processes most scenarios start around an [`Apiserver`](crate::Apiserver), with the flags
//! every scenario gives them: each listens on ports of its own (so scenarios run in parallel),
//! reports health on an ephemeral port, and reads no host files. A scenario adds only what it is
//! about (a proxy mode, an OTLP endpoint) through `extra`.

use std::{
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use crate::{Component, free_port};

/// The node-agents' usual `--time-scale`: a 10 s backoff lasts 100 ms.
pub const TIME_SCALE: &str = "0.01";

/// `netlab-cloud` (the image registry and the upstream resolver) on free ports, once its
/// registry accepts connections; and the registry's URL for `--registry`.
pub fn cloud() -> (Component, String) {
    let registry = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let cloud = Component::start(
        "netlab-cloud",
        &[
            "--registry-listen",
            &registry.to_string(),
            "--dns-listen",
            &format!("127.0.0.1:{}", free_port()),
            "--healthz-bind-address",
            &format!("127.0.0.1:{}", free_port()),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(registry).is_err() {
        assert!(Instant::now() < deadline, "netlab-cloud did not listen on {registry}");
        std::thread::sleep(Duration::from_millis(50));
    }
    (cloud, format!("http://{registry}"))
}

/// `netlab-controller-manager` against `api`.
pub fn controller_manager(api: &str, extra: &[&str]) -> Component {
    let mut args = vec!["--server", api, "--healthz-bind-address", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Component::start("netlab-controller-manager", &args)
}

/// `netlab-scheduler` against `api`.
pub fn scheduler(api: &str) -> Component {
    Component::start("netlab-scheduler", &["--server", api, "--healthz-bind-address", "127.0.0.1:0"])
}

/// One node as the scenarios run it.
pub struct Node<'a> {
    /// The Node's name.
    pub name: &'a str,
    /// Its address (a 127.0.x.y of its own).
    pub ip: &'a str,
    /// The kubelet port, where the node's kernel API is served too.
    pub port: u16,
}

// === impl Node ===

impl Node<'_> {
    /// The kernel API's URL, for the proxy's `--kernel`.
    pub fn kernel(&self) -> String {
        format!("http://{}:{}", self.ip, self.port)
    }

    /// `netlab-node-agent` for this node, its data under `data_dir`, pulling from `registry`,
    /// at [`TIME_SCALE`], with `extra` flags after the usual ones.
    pub fn agent(&self, api: &str, data_dir: &Path, registry: &str, extra: &[&str]) -> Component {
        let port = self.port.to_string();
        let data = data_dir.join(self.name);
        let mut args = vec![
            "--server",
            api,
            "--node-name",
            self.name,
            "--node-ip",
            self.ip,
            "--address",
            self.ip,
            "--port",
            &port,
            "--data-dir",
            data.to_str().expect("utf-8 path"),
            "--registry",
            registry,
            "--time-scale",
            TIME_SCALE,
            "--healthz-bind-address",
            "127.0.0.1:0",
            "--resolv-conf",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        Component::start("netlab-node-agent", &args)
    }

    /// `netlab-proxy` for this node in `mode`, syncing at most every 100 ms.
    pub fn proxy(&self, api: &str, mode: &str, extra: &[&str]) -> Component {
        let kernel = self.kernel();
        let mut args = vec![
            "--server",
            api,
            "--hostname-override",
            self.name,
            "--kernel",
            &kernel,
            "--proxy-mode",
            mode,
            "--iptables-min-sync-period",
            "100ms",
            "--healthz-bind-address",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        Component::start("netlab-proxy", &args)
    }
}
