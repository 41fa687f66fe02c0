//! The processes most scenarios start around an [`Apiserver`](crate::Apiserver), with the flags
//! every scenario gives them: each listens on ports of its own (so scenarios run in parallel),
//! reports health on an ephemeral port, and reads no host files. A scenario adds only what it is
//! about (a proxy mode, an OTLP endpoint) through `extra`; the flags a binary takes only once
//! (the agents' time scale, the proxy's sync period) have functions that take them instead.

use std::{
    net::{SocketAddr, TcpStream},
    path::Path,
    time::{Duration, Instant},
};

use crate::{Component, free_port};

/// The node-agents' usual `--time-scale`: a 10 s backoff lasts 100 ms.
pub const TIME_SCALE: &str = "0.01";

/// The proxies' usual `--iptables-min-sync-period`.
pub const MIN_SYNC_PERIOD: &str = "100ms";

/// A running `netlab-cloud`: the image registry, the upstream resolver and the AWS endpoint, on
/// free ports.
pub struct Cloud {
    /// The process, killed when dropped.
    pub process: Component,
    /// Where the registry listens.
    pub registry: SocketAddr,
    /// Where the resolver listens (UDP and TCP), for a cluster DNS's `--upstream`.
    pub dns: SocketAddr,
    /// Where the AWS endpoint listens.
    pub aws: SocketAddr,
    /// Where IMDS listens.
    pub imds: SocketAddr,
}

// === impl Cloud ===

impl Cloud {
    /// Starts it with `extra` flags after the usual ones, and waits (10 s at most) until its
    /// registry accepts connections. A free port can be taken by another test between being
    /// picked and bound (the resolver binds UDP too); a cloud that exits before it listens is
    /// started again on new ports, three times at most.
    pub fn start(extra: &[&str]) -> Self {
        for _ in 0..3 {
            if let Some(cloud) = Self::try_start(extra) {
                return cloud;
            }
        }
        panic!("netlab-cloud exited before it listened, three times (see its log above)");
    }

    fn try_start(extra: &[&str]) -> Option<Self> {
        let registry = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let dns = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (registry_listen, dns_listen) = (registry.to_string(), dns.to_string());
        let healthz = format!("127.0.0.1:{}", free_port());
        let aws = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let aws_listen = aws.to_string();
        let imds = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let imds_listen = imds.to_string();
        let mut args = vec![
            "--registry-listen",
            &registry_listen,
            "--dns-listen",
            &dns_listen,
            "--healthz-bind-address",
            &healthz,
            "--aws-listen",
            &aws_listen,
            "--imds-listen",
            &imds_listen,
        ];
        args.extend_from_slice(extra);
        let mut process = Component::start("netlab-cloud", &args);
        // Generous: on 2 busy cores a debug cloud can take seconds to make its account.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(registry).is_err() {
            if process.try_wait().is_some() {
                return None;
            }
            assert!(Instant::now() < deadline, "netlab-cloud did not listen on {registry}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(Self { process, registry, dns, aws, imds })
    }

    /// The registry's URL, for the node-agents' `--registry`.
    pub fn registry_url(&self) -> String {
        format!("http://{}", self.registry)
    }
}

/// `netlab-cloud` (the image registry and the upstream resolver) on free ports, once its
/// registry accepts connections; and the registry's URL for `--registry`.
pub fn cloud() -> (Component, String) {
    let cloud = Cloud::start(&[]);
    let url = cloud.registry_url();
    (cloud.process, url)
}

/// `netlab-controller-manager` against `api`.
pub fn controller_manager(api: &str, extra: &[&str]) -> Component {
    let mut args = vec!["--server", api, "--healthz-bind-address", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Component::start("netlab-controller-manager", &args)
}

/// `netlab-scheduler` against `api`.
pub fn scheduler(api: &str, extra: &[&str]) -> Component {
    let mut args = vec!["--server", api, "--healthz-bind-address", "127.0.0.1:0"];
    args.extend_from_slice(extra);
    Component::start("netlab-scheduler", &args)
}

/// `netlab-proxy` for the node `node`, programming the kernel API at `kernel` (a real node's,
/// or a test's own) in `mode`, syncing at most every `min_sync_period`, with `extra` flags after
/// the usual ones.
pub fn proxy(
    api: &str,
    node: &str,
    kernel: &str,
    mode: &str,
    min_sync_period: &str,
    extra: &[&str],
) -> Component {
    let mut args = vec![
        "--server",
        api,
        "--hostname-override",
        node,
        "--kernel",
        kernel,
        "--proxy-mode",
        mode,
        "--iptables-min-sync-period",
        min_sync_period,
        "--healthz-bind-address",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Component::start("netlab-proxy", &args)
}

/// One node as the scenarios run it.
pub struct Node<'a> {
    /// The Node's name.
    pub name: &'a str,
    /// Its address (a 127.0.x.y of its own).
    pub ip: &'a str,
    /// The kubelet port, where the node's kernel API is served too (0: any free one, for a
    /// scenario that does not call the kernel API itself).
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
        self.agent_scaled(api, data_dir, registry, TIME_SCALE, extra)
    }

    /// [`Node::agent`] at `--time-scale time_scale` ("1": real time).
    pub fn agent_scaled(
        &self,
        api: &str,
        data_dir: &Path,
        registry: &str,
        time_scale: &str,
        extra: &[&str],
    ) -> Component {
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
            time_scale,
            "--healthz-bind-address",
            "127.0.0.1:0",
            "--resolv-conf",
            "/dev/null",
        ];
        args.extend_from_slice(extra);
        Component::start("netlab-node-agent", &args)
    }

    /// `netlab-proxy` for this node in `mode`, syncing at most every [`MIN_SYNC_PERIOD`].
    pub fn proxy(&self, api: &str, mode: &str, extra: &[&str]) -> Component {
        proxy(api, self.name, &self.kernel(), mode, MIN_SYNC_PERIOD, extra)
    }
}
