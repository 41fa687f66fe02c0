//! Readiness and liveness probes (`pkg/kubelet/prober`): one task per probe and container that
//! waits `initialDelaySeconds`, then probes every `periodSeconds` with `timeoutSeconds`, and
//! reports a change only after `successThreshold` successes or `failureThreshold` failures in a
//! row. httpGet and tcpSocket connect through the node's socket table, exactly where traffic to
//! the pod arrives; exec runs in the container through the runtime. All waits are scaled by
//! `--time-scale`.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use bytes::Bytes;
use http::Request;
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use k8s_openapi::{
    api::core::v1::{Container, Probe},
    apimachinery::pkg::util::intstr::IntOrString,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{runtime::Runtime, sockets::SocketError};

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeKind {
    /// Gates Ready.
    Readiness,
    /// Restarts the container when it fails.
    Liveness,
}

/// What a probe task tells its pod worker.
#[derive(Debug, Clone)]
pub struct ProbeUpdate {
    /// The container.
    pub container: String,
    /// The container ID the probe ran against (stale updates are ignored).
    pub container_id: String,
    /// Which probe.
    pub kind: ProbeKind,
    /// A new result after the thresholds, if it changed.
    pub result: Option<bool>,
    /// A failure's message, for the `Unhealthy` event.
    pub failure: Option<String>,
}

/// Where and how to probe.
#[derive(Debug, Clone)]
pub struct Target {
    /// The pod's IP.
    pub pod_ip: IpAddr,
    /// The node's IP (the probe's source address).
    pub node_ip: IpAddr,
    /// The container's ID.
    pub container_id: String,
    /// The container spec (named ports).
    pub container: Container,
}

// === impl ProbeKind ===

impl ProbeKind {
    /// `Readiness` / `Liveness`, as in the kubelet's event text.
    pub fn name(self) -> &'static str {
        match self {
            ProbeKind::Readiness => "Readiness",
            ProbeKind::Liveness => "Liveness",
        }
    }
}

/// Runs `probe` until `stop`, sending updates on `tx`.
pub async fn run(
    kind: ProbeKind,
    probe: Probe,
    target: Target,
    runtime: Arc<Runtime>,
    scale: f64,
    tx: mpsc::UnboundedSender<ProbeUpdate>,
    stop: CancellationToken,
) {
    let secs =
        |s: Option<i32>, default: i32| Duration::from_secs(s.unwrap_or(default).max(0) as u64).mul_f64(scale);
    let initial_delay = secs(probe.initial_delay_seconds, 0);
    let period = secs(probe.period_seconds, 10).max(Duration::from_millis(1));
    let timeout = secs(probe.timeout_seconds, 1).max(Duration::from_millis(1));
    let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
    let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
    let mut current = match kind {
        ProbeKind::Readiness => false,
        ProbeKind::Liveness => true,
    };
    let (mut successes, mut failures) = (0, 0);
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(initial_delay) => {}
    }
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let outcome = match tokio::time::timeout(timeout, once(&probe, &target, &runtime, timeout)).await {
            Ok(r) => r,
            Err(_) => Err(timed_out(&probe, &target, timeout)),
        };
        let mut update = ProbeUpdate {
            container: target.container.name.clone(),
            container_id: target.container_id.clone(),
            kind,
            result: None,
            failure: None,
        };
        match outcome {
            Ok(()) => {
                failures = 0;
                successes += 1;
                if !current && successes >= success_threshold {
                    current = true;
                    update.result = Some(true);
                }
            }
            Err(msg) => {
                successes = 0;
                failures += 1;
                update.failure = Some(msg.to_string());
                if current && failures >= failure_threshold {
                    current = false;
                    update.result = Some(false);
                }
            }
        }
        if (update.result.is_some() || update.failure.is_some()) && tx.send(update).is_err() {
            return;
        }
    }
}

/// Why one probe attempt failed; the text is the kubelet's (it goes into the pod's events).
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// The probe's port is not a port number.
    #[error("invalid port number: {0}")]
    InvalidPort(i32),
    /// The probe names a port the container does not declare.
    #[error("couldn't find port: {name} in {container}")]
    NoSuchPort { name: String, container: String },
    /// httpGet could not connect.
    #[error("Get \"{url}\": {source}")]
    Connect {
        url: String,
        #[source]
        source: SocketError,
    },
    /// httpGet's HTTP exchange failed.
    #[error("Get \"{url}\": {source}")]
    Http {
        url: String,
        #[source]
        source: hyper::Error,
    },
    /// The request could not be built (a header the probe names is not valid).
    #[error(transparent)]
    Request(#[from] http::Error),
    /// httpGet answered outside 200-399.
    #[error("HTTP probe failed with statuscode: {0}")]
    Status(u16),
    /// tcpSocket could not connect.
    #[error(transparent)]
    Tcp(SocketError),
    /// httpGet got no answer within timeoutSeconds.
    #[error("Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)")]
    HttpTimeout { url: String },
    /// exec did not finish within timeoutSeconds.
    #[error("command timed out after {0:?}")]
    CommandTimeout(Duration),
    /// exec exited non-zero.
    #[error("command {command:?} exited with {code}")]
    Exit { command: String, code: i32 },
    /// exec found no running container.
    #[error("container not running")]
    NotRunning,
    /// The probe has no httpGet, tcpSocket or exec.
    #[error("probe has no handler")]
    NoHandler,
}

/// One probe attempt.
async fn once(probe: &Probe, t: &Target, runtime: &Runtime, timeout: Duration) -> Result<(), Failure> {
    let sockets = runtime.sockets();
    let from = SocketAddr::new(t.node_ip, sockets.ephemeral_port());
    if let Some(h) = &probe.http_get {
        let host: IpAddr = h.host.as_deref().and_then(|h| h.parse().ok()).unwrap_or(t.pod_ip);
        let port = resolve_port(&h.port, &t.container)?;
        let path = h.path.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "/".into());
        let url = format!("http://{}/{}", SocketAddr::new(host, port), path.trim_start_matches('/'));
        let stream = sockets
            .connect(from, SocketAddr::new(host, port))
            .map_err(|source| Failure::Connect { url: url.clone(), source })?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|source| Failure::Http { url: url.clone(), source })?;
        tokio::spawn(conn);
        let mut req = Request::get(path.as_str())
            .header(http::header::HOST, SocketAddr::new(host, port).to_string())
            .header(http::header::USER_AGENT, "kube-probe/1.33")
            .header(http::header::ACCEPT, "*/*");
        for hdr in h.http_headers.iter().flatten() {
            req = req.header(hdr.name.as_str(), hdr.value.as_str());
        }
        let req = req.body(Empty::<Bytes>::new())?;
        let resp = send.send_request(req).await.map_err(|source| Failure::Http { url, source })?;
        let code = resp.status().as_u16();
        return if (200..400).contains(&code) { Ok(()) } else { Err(Failure::Status(code)) };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let host: IpAddr = tcp.host.as_deref().and_then(|h| h.parse().ok()).unwrap_or(t.pod_ip);
        let port = resolve_port(&tcp.port, &t.container)?;
        return sockets.connect(from, SocketAddr::new(host, port)).map(drop).map_err(Failure::Tcp);
    }
    if let Some(exec) = &probe.exec {
        let command = exec.command.clone().unwrap_or_default();
        return match runtime.exec(&t.container_id, &command) {
            Some(0) => Ok(()),
            Some(code) => Err(Failure::Exit { command: command.join(" "), code }),
            None => Err(Failure::NotRunning),
        };
    }
    let _ = timeout;
    Err(Failure::NoHandler)
}

/// The failure of an attempt that did not finish within `timeout`.
fn timed_out(probe: &Probe, t: &Target, timeout: Duration) -> Failure {
    if let Some(h) = &probe.http_get {
        let port = resolve_port(&h.port, &t.container).unwrap_or(0);
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        Failure::HttpTimeout { url: format!("http://{}{path}", SocketAddr::new(t.pod_ip, port)) }
    } else {
        Failure::CommandTimeout(timeout)
    }
}

/// A probe port: a number, or the name of one of the container's ports.
fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, Failure> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| Failure::InvalidPort(*n)),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| Failure::NoSuchPort { name: name.clone(), container: c.name.clone() }),
    }
}
