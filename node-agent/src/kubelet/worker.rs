//! One pod's worker: drives the pod from bound to running to gone, reacting to pod updates, probe
//! results and its own retry timers, and writes the pod's status whenever it changes. Order as
//! the kubelet's `SyncPod`: sandbox (CNI ADD, resolv.conf) first, then per container: image
//! (pull policy, backoff), create, start, probes.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Container, Pod},
    apimachinery::pkg::apis::meta::v1::Time,
};
use netlab_chaos::status::counter;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{
    CNI_RESULT_ANNOTATION, Kubelet, Update,
    container::{ContainerState, Terminated},
    dns, events,
    faults::PodFault,
    probe::{self, ProbeKind, ProbeUpdate},
    sandbox::Sandbox,
    status::{self, Observed, now},
    volumes,
};
use crate::{
    apps::Identity,
    cni::CniRequest,
    image::{AppKind, Image, Reference},
    runtime::Runtime,
};

/// How long `ErrImagePull` shows before the pod's next sync turns it into `ImagePullBackOff`
/// (scaled by `--time-scale`).
const ERR_IMAGE_PULL_GRACE: Duration = Duration::from_secs(1);

/// How soon a volume that could not be set up is tried again.
const MOUNT_RETRY: Duration = Duration::from_secs(2);

/// The image Chaos Mesh's pod-failure swaps in (`POD_FAILURE_PAUSE_IMAGE`'s default).
pub const PAUSE_IMAGE: &str = "gcr.io/google-containers/pause:latest";

/// The one-shot faults (container-kill) already done to this pod, in its directory, so a
/// restarted node-agent does not kill again.
const APPLIED_FILE: &str = "chaos-applied.json";

/// What the kubelet does about a container that ended.
enum Restart {
    /// Start it again now.
    Now,
    /// Not before then (CrashLoopBackOff).
    At(Instant),
    /// Never (restartPolicy).
    Never,
}

/// One pod's worker: its state as the kubelet tracks it, owned by the task that drives the pod.
pub struct Worker {
    pub(super) k: Arc<Kubelet>,
    pub(super) pod: Arc<Pod>,
    pub(super) uid: String,
    dir: PathBuf,
    pub(super) sandbox: Option<Sandbox>,
    /// Whether the pod's projected token volumes are written.
    volumes_mounted: bool,
    /// When the projected service-account tokens are next refreshed.
    tokens_refresh: Option<Instant>,
    pub(super) containers: BTreeMap<String, ContainerState>,
    pub(super) start_time: Option<Time>,
    /// condition type → (status, lastTransitionTime).
    pub(super) conditions: HashMap<&'static str, (bool, Time)>,
    last_status: Option<serde_json::Value>,
    prev_pull_error: HashMap<String, String>,
    /// UIDs of the one-shot faults done to this pod.
    applied: std::collections::BTreeSet<String>,
    probe_tx: mpsc::UnboundedSender<ProbeUpdate>,
    probe_rx: mpsc::UnboundedReceiver<ProbeUpdate>,
}

/// When to sync again without an outside change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Only on a change.
    Idle,
    /// At this moment.
    At(Instant),
    /// When the CNI plugin appears.
    Cni,
}

// === impl Worker ===

impl Worker {
    /// A worker for `pod`.
    pub fn new(k: Arc<Kubelet>, pod: Arc<Pod>) -> Self {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let dir = k.pods_dir.join(&uid);
        let (probe_tx, probe_rx) = mpsc::unbounded_channel();
        Self {
            k,
            pod,
            uid,
            dir,
            sandbox: None,
            volumes_mounted: false,
            tokens_refresh: None,
            containers: BTreeMap::new(),
            start_time: None,
            conditions: HashMap::new(),
            last_status: None,
            prev_pull_error: HashMap::new(),
            applied: Default::default(),
            probe_tx,
            probe_rx,
        }
    }

    /// Runs until the pod is gone or `shutdown`.
    pub async fn run(mut self, mut updates: watch::Receiver<Update>, shutdown: CancellationToken) {
        self.restore();
        let mut cni = self.k.cni.clone();
        let mut faults = self.k.faults.subscribe();
        loop {
            let update = updates.borrow_and_update().clone();
            self.pod = update.pod;
            if update.removed || self.pod.metadata.deletion_timestamp.is_some() {
                self.teardown().await;
                if !update.removed {
                    let (ns, name) = self.key();
                    match self.k.client.delete_with::<Pod>(&ns, &name, Some(0)).await {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(error) => warn!(%ns, %name, %error, "Could not remove the pod."),
                    }
                }
                return;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.stop_probes();
                    return;
                }
                _ = self.k.gate.ready() => {}
            }
            let next = self.sync().await;
            self.push_status().await;
            let sleep = async {
                match next {
                    Next::At(t) => tokio::time::sleep_until(t.into()).await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.stop_probes();
                    return;
                }
                r = updates.changed() => if r.is_err() { return },
                Some(p) = self.probe_rx.recv() => self.on_probe(p),
                _ = sleep => {}
                _ = cni.changed(), if next == Next::Cni => {}
                r = faults.changed() => if r.is_err() { return },
            }
            // Take every queued probe result before syncing once.
            while let Ok(p) = self.probe_rx.try_recv() {
                self.on_probe(p);
            }
        }
    }

    fn key(&self) -> (String, String) {
        (
            self.pod.metadata.namespace.clone().unwrap_or_default(),
            self.pod.metadata.name.clone().unwrap_or_default(),
        )
    }

    fn spec_containers(&self) -> Vec<Container> {
        self.pod.spec.as_ref().map(|s| s.containers.clone()).unwrap_or_default()
    }

    fn host_network(&self) -> bool {
        self.pod.spec.as_ref().and_then(|s| s.host_network).unwrap_or(false)
    }

    /// After a node-agent restart: take back the sandbox and the containers the apiserver says
    /// are running, without a new ADD, pull or start event.
    fn restore(&mut self) {
        self.applied = std::fs::read(self.dir.join(APPLIED_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let Some(sandbox) = Sandbox::load(&self.dir) else {
            return;
        };
        self.sandbox = Some(sandbox);
        self.start_time = self.pod.status.as_ref().and_then(|s| s.start_time.clone());
        for c in self.pod.status.as_ref().and_then(|s| s.conditions.clone()).unwrap_or_default() {
            if let (Some(t), Some(time)) = (condition_name(&c.type_), c.last_transition_time) {
                self.conditions.insert(t, (c.status == "True", time));
            }
        }
        let statuses =
            self.pod.status.as_ref().and_then(|s| s.container_statuses.clone()).unwrap_or_default();
        for c in self.spec_containers() {
            let Some(cs) = statuses.iter().find(|s| s.name == c.name) else {
                continue;
            };
            let Some(running) = cs.state.as_ref().and_then(|s| s.running.as_ref()) else {
                continue;
            };
            let Some(id) = cs.container_id.as_deref().and_then(|i| i.strip_prefix("containerd://")) else {
                continue;
            };
            let Some(image) = Reference::parse(&c.image.clone().unwrap_or_default())
                .ok()
                .and_then(|r| self.k.images.get(&r))
            else {
                continue;
            };
            let mut state = ContainerState {
                restart_count: cs.restart_count,
                started_at: running.started_at.clone(),
                ..Default::default()
            };
            if self.start_app(&c, id, &image, &mut state).is_ok() {
                self.containers.insert(c.name.clone(), state);
                debug!(pod = ?self.key(), container = %c.name, "Restored a running container.");
            }
        }
    }

    /// One pass of SyncPod.
    async fn sync(&mut self) -> Next {
        if self.start_time.is_none() {
            self.start_time = Some(now());
        }
        // Volumes are set up before the sandbox, as the kubelet's WaitForAttachAndMount.
        if !self.volumes_mounted {
            match volumes::mount(&self.k.client, &self.pod, &self.dir).await {
                Ok(due) => self.tokens_refresh = due.map(|d| Instant::now() + self.k.cfg.scaled(d)),
                Err(e) => {
                    self.k.events.warning(&self.pod, events::FAILED_MOUNT, e.to_string());
                    for c in self.spec_containers() {
                        let s = self.containers.entry(c.name.clone()).or_default();
                        s.waiting = Some(("ContainerCreating".into(), String::new()));
                    }
                    return Next::At(Instant::now() + MOUNT_RETRY);
                }
            }
            self.volumes_mounted = true;
        } else if self.tokens_refresh.is_some_and(|t| t <= Instant::now()) {
            // The token manager's refresh: a new token over the old file; on failure the old
            // one stays and the refresh is tried again shortly.
            match volumes::mount(&self.k.client, &self.pod, &self.dir).await {
                Ok(due) => {
                    debug!(pod = ?self.key(), "Refreshed the pod's service account tokens.");
                    self.tokens_refresh = due.map(|d| Instant::now() + self.k.cfg.scaled(d));
                }
                Err(error) => {
                    warn!(pod = ?self.key(), %error, "Refreshing a service account token failed; keeping the old one.");
                    self.tokens_refresh = Some(Instant::now() + MOUNT_RETRY);
                }
            }
        }
        if self.sandbox.is_none() {
            match self.create_sandbox().await {
                Ok(()) => {}
                Err(next) => {
                    for c in self.spec_containers() {
                        let s = self.containers.entry(c.name.clone()).or_default();
                        s.waiting = Some(("ContainerCreating".into(), String::new()));
                    }
                    return next;
                }
            }
        }
        self.apply_faults();
        let mut next = self.tokens_refresh.map_or(Next::Idle, Next::At);
        for c in self.spec_containers() {
            let mut state = self.containers.remove(&c.name).unwrap_or_default();
            if state.id.is_none() && state.exited {
                match self.restart(&c, &mut state) {
                    Restart::Now => {
                        state.exited = false;
                        state.restarting = true;
                    }
                    Restart::At(t) => {
                        next = earliest(next, Next::At(t));
                        self.containers.insert(c.name.clone(), state);
                        continue;
                    }
                    Restart::Never => {
                        self.containers.insert(c.name.clone(), state);
                        continue;
                    }
                }
            }
            if state.id.is_none() {
                match self.ensure_image(&c, &mut state).await {
                    Ok(image) => {
                        let id = Runtime::new_id(&format!("{}/{}", self.uid, c.name));
                        self.k.events.normal(
                            &self.pod,
                            events::CREATED,
                            format!("Created container: {}", c.name),
                        );
                        match self.start_app(&c, &id, &image, &mut state) {
                            Ok(()) => {
                                state.started_at = Some(now());
                                if std::mem::take(&mut state.restarting) {
                                    state.restart_count += 1;
                                }
                                self.k.events.normal(
                                    &self.pod,
                                    events::STARTED,
                                    format!("Started container {}", c.name),
                                );
                            }
                            Err(e) => {
                                let msg = format!("failed to start container \"{id}\": {e}");
                                self.k.events.warning(&self.pod, events::FAILED, format!("Error: {msg}"));
                                state.waiting = Some(("RunContainerError".into(), msg));
                                next = earliest(
                                    next,
                                    Next::At(Instant::now() + self.k.cfg.scaled(Duration::from_secs(10))),
                                );
                            }
                        }
                    }
                    Err(n) => next = earliest(next, n),
                }
            }
            self.containers.insert(c.name.clone(), state);
        }
        next
    }

    /// Starts the container's app and its probes; fills `state`.
    fn start_app(
        &self,
        c: &Container,
        id: &str,
        image: &Image,
        state: &mut ContainerState,
    ) -> Result<(), crate::sockets::SocketError> {
        let Some(sandbox) = &self.sandbox else {
            return Ok(());
        };
        let (ns, name) = self.key();
        let who = Identity {
            pod: name,
            namespace: ns,
            ip: sandbox.ip,
            node: self.k.node_name.clone(),
            container: c.name.clone(),
        };
        let container_port = c
            .ports
            .iter()
            .flatten()
            .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "TCP")
            .map(|p| p.container_port);
        let port = match image.app {
            AppKind::Echo => container_port.and_then(|p| u16::try_from(p).ok()).or(image.port),
            _ => image.port,
        };
        self.k.runtime.start(id, image.app, who, port)?;
        let readiness = c.readiness_probe.clone();
        state.id = Some(id.to_string());
        state.waiting = None;
        state.image = Some(image.clone());
        state.ready = readiness.is_none();
        let stop = CancellationToken::new();
        let target = probe::Target {
            pod_ip: sandbox.ip,
            node_ip: self.k.node_ip,
            container_id: id.to_string(),
            container: c.clone(),
        };
        for (kind, p) in [(ProbeKind::Readiness, readiness), (ProbeKind::Liveness, c.liveness_probe.clone())]
        {
            if let Some(p) = p {
                tokio::spawn(probe::run(
                    kind,
                    p,
                    target.clone(),
                    self.k.runtime.clone(),
                    self.k.cfg.time_scale,
                    self.probe_tx.clone(),
                    stop.clone(),
                ));
            }
        }
        if let Some(old) = state.probes.replace(stop) {
            old.cancel();
        }
        Ok(())
    }

    fn on_probe(&mut self, p: ProbeUpdate) {
        let Some(state) = self.containers.get_mut(&p.container) else {
            return;
        };
        if state.id.as_deref() != Some(p.container_id.as_str()) {
            return;
        }
        if let Some(msg) = &p.failure {
            self.k.events.warning(
                &self.pod,
                events::UNHEALTHY,
                format!("{} probe failed: {msg}", p.kind.name()),
            );
        }
        match (p.kind, p.result) {
            (ProbeKind::Readiness, Some(r)) => state.ready = r,
            (ProbeKind::Liveness, Some(false)) => {
                self.k.events.normal(
                    &self.pod,
                    events::KILLING,
                    format!("Container {} failed liveness probe, will be restarted", p.container),
                );
                if let Some(id) = state.id.take() {
                    self.k.runtime.stop(&id);
                }
                if let Some(t) = state.probes.take() {
                    t.cancel();
                }
                state.ready = false;
                state.restart_count += 1;
                state.waiting = Some(("ContainerCreating".into(), String::new()));
            }
            _ => {}
        }
    }

    /// Creates the sandbox: hostNetwork pods take the node IP, others go through CNI ADD.
    async fn create_sandbox(&mut self) -> Result<(), Next> {
        let id = Runtime::new_id(&format!("sandbox/{}", self.uid));
        let sandbox = if self.host_network() {
            Sandbox { id, ip: self.k.node_ip, host_network: true, cni_result: None, cni_request: None }
        } else {
            let Some(cni) = self.k.cni.borrow().clone() else {
                return Err(Next::Cni);
            };
            let now_i = Instant::now();
            if let Some(until) = self
                .k
                .sandbox_backoff
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .in_backoff_until(&self.uid, now_i)
            {
                return Err(Next::At(until));
            }
            let (ns, name) = self.key();
            let req = CniRequest {
                netns: format!(
                    "/var/run/netns/cni-{}-{}-{}-{}-{}",
                    &id[0..8],
                    &id[8..12],
                    &id[12..16],
                    &id[16..20],
                    &id[20..32]
                ),
                container_id: id.clone(),
                ifname: "eth0".into(),
                args: vec![
                    ("K8S_POD_INFRA_CONTAINER_ID".into(), id.clone()),
                    ("K8S_POD_UID".into(), self.uid.clone()),
                    ("IgnoreUnknown".into(), "1".into()),
                    ("K8S_POD_NAMESPACE".into(), ns),
                    ("K8S_POD_NAME".into(), name),
                ],
            };
            // The decision span: which plugin, which range, which IP; in the pod's write trace.
            let span = tracing::info_span!(
                "cni ADD",
                k8s.pod.name = %self.pod.metadata.name.as_deref().unwrap_or(""),
                k8s.namespace.name = %self.pod.metadata.namespace.as_deref().unwrap_or(""),
                k8s.node.name = %self.k.node_name,
                netlab.cni.plugin = %cni.plugin_type(),
                netlab.cni.ip = tracing::field::Empty,
                netlab.cni.gateway = tracing::field::Empty,
                netlab.cni.routes = tracing::field::Empty,
                otel.status_code = tracing::field::Empty,
                otel.status_message = tracing::field::Empty,
            );
            netlab_telemetry::propagation::follow(&span, self.pod.metadata.annotations.as_ref());
            let added = tracing::Instrument::instrument(cni.add(&req), span.clone()).await;
            match &added {
                Ok(result) => {
                    if let Some(ip) = result.ips.first() {
                        span.record("netlab.cni.ip", ip.address.as_str());
                        if let Some(gw) = &ip.gateway {
                            span.record("netlab.cni.gateway", tracing::field::display(gw));
                        }
                    }
                    let routes: Vec<String> = result.routes.iter().map(|r| r.dst.to_string()).collect();
                    span.record("netlab.cni.routes", routes.join(",").as_str());
                }
                Err(e) => {
                    span.record("otel.status_code", "ERROR");
                    span.record("otel.status_message", e.msg.as_str());
                }
            }
            match added {
                Ok(result) => {
                    let ip = result
                        .ips
                        .first()
                        .and_then(|i| i.address.split('/').next())
                        .and_then(|a| a.parse::<IpAddr>().ok())
                        .unwrap_or(self.k.node_ip);
                    self.k.sandbox_backoff.lock().unwrap_or_else(|e| e.into_inner()).reset(&self.uid);
                    Sandbox { id, ip, host_network: false, cni_result: Some(result), cni_request: Some(req) }
                }
                Err(e) => {
                    let _ = cni.del(&req).await;
                    self.k.events.warning(
                        &self.pod,
                        events::FAILED_CREATE_POD_SANDBOX,
                        format!(
                            "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network for sandbox \"{id}\": plugin type=\"{}\" name=\"{}\" failed (add): {}",
                            cni.plugin_type(),
                            cni.network_name(),
                            e.msg
                        ),
                    );
                    let wait = self
                        .k
                        .sandbox_backoff
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .next(&self.uid, now_i);
                    return Err(Next::At(now_i + wait));
                }
            }
        };
        if let Err(error) = sandbox.save(&self.dir) {
            warn!(%error, "Could not persist the sandbox record.");
        }
        self.write_resolv_conf();
        if let Some(result) = &sandbox.cni_result {
            self.annotate(serde_json::to_string(result).unwrap_or_default());
        }
        self.sandbox = Some(sandbox);
        Ok(())
    }

    fn write_resolv_conf(&self) {
        let formed = dns::pod_dns(&self.pod, &self.k.cluster_dns, &self.k.host_dns);
        for w in &formed.warnings {
            self.k.events.warning(&self.pod, w.reason, w.message.clone());
        }
        let etc = self.dir.join("etc");
        let written = std::fs::create_dir_all(&etc)
            .and_then(|()| std::fs::write(etc.join("resolv.conf"), formed.config.render()))
            .and_then(|()| std::fs::write(etc.join("hostname"), format!("{}\n", self.key().1)));
        if let Err(error) = written {
            warn!(%error, "Could not write the pod's resolv.conf.");
        }
    }

    /// Puts the CNI result on the pod (in the background: it is not on the path to Ready).
    fn annotate(&self, json: String) {
        let (client, (ns, name)) = (self.k.client.clone(), self.key());
        tokio::spawn(async move {
            for _ in 0..5 {
                let Ok(mut pod) = client.get::<Pod>(&ns, &name).await else {
                    return;
                };
                pod.metadata
                    .annotations
                    .get_or_insert_with(Default::default)
                    .insert(CNI_RESULT_ANNOTATION.into(), json.clone());
                match client.update(&pod).await {
                    Err(e) if e.is_conflict() => continue,
                    Err(error) => {
                        debug!(%error, "Could not annotate the pod with its CNI result.");
                        return;
                    }
                    Ok(_) => return,
                }
            }
        });
    }

    /// EnsureImageExists: the image by pull policy, with the kubelet's events and backoff.
    async fn ensure_image(&mut self, c: &Container, state: &mut ContainerState) -> Result<Image, Next> {
        let raw = c.image.clone().unwrap_or_default();
        let reference = match Reference::parse(&raw) {
            Ok(r) => r,
            Err(e) => {
                let msg = format!("Failed to apply default image tag {raw:?}: {e}");
                self.k.events.warning(&self.pod, events::INSPECT_FAILED, msg.clone());
                self.k.events.warning(&self.pod, events::FAILED, "Error: InvalidImageName");
                state.waiting = Some(("InvalidImageName".into(), msg));
                return Err(Next::Idle);
            }
        };
        let policy = c.image_pull_policy.clone().unwrap_or_else(|| {
            if reference.tag.as_deref() == Some("latest") { "Always".into() } else { "IfNotPresent".into() }
        });
        let present = self.k.images.get(&reference);
        let pull = match (policy.as_str(), &present) {
            ("Never", None) => {
                let msg = format!("Container image {raw:?} is not present with pull policy of Never");
                self.k.events.warning(&self.pod, events::ERR_IMAGE_NEVER_PULL, msg.clone());
                self.k.events.warning(&self.pod, events::FAILED, "Error: ErrImageNeverPull");
                state.waiting = Some(("ErrImageNeverPull".into(), msg));
                return Err(Next::Idle);
            }
            ("Always", _) | (_, None) => true,
            _ => false,
        };
        if !pull && let Some(image) = present {
            self.k.events.normal(
                &self.pod,
                events::PULLED,
                format!("Container image {raw:?} already present on machine"),
            );
            return Ok(image);
        }
        let key = format!("{}_{raw}", self.uid);
        let started = Instant::now();
        let until =
            self.k.image_backoff.lock().unwrap_or_else(|e| e.into_inner()).in_backoff_until(&key, started);
        if let Some(until) = until {
            self.k.events.normal(&self.pod, events::BACK_OFF, format!("Back-off pulling image {raw:?}"));
            self.k.events.warning(&self.pod, events::FAILED, "Error: ImagePullBackOff");
            let prev = self.prev_pull_error.get(&key).cloned().unwrap_or_default();
            state.waiting = Some((
                "ImagePullBackOff".into(),
                format!("Back-off pulling image {raw:?}: ErrImagePull: {prev}"),
            ));
            return Err(Next::At(until));
        }
        self.k.events.normal(&self.pod, events::PULLING, format!("Pulling image {raw:?}"));
        let span = tracing::info_span!(
            "kubelet pull image",
            k8s.pod.name = %self.pod.metadata.name.as_deref().unwrap_or(""),
            k8s.namespace.name = %self.pod.metadata.namespace.as_deref().unwrap_or(""),
            k8s.node.name = %self.k.node_name,
            container.image.name = %raw,
            otel.status_code = tracing::field::Empty,
            otel.status_message = tracing::field::Empty,
        );
        netlab_telemetry::propagation::follow(&span, self.pod.metadata.annotations.as_ref());
        // The kubelet's keyring lookup: the repository without tag, against the providers.
        let pull = async {
            let auth = self.k.credentials.lookup(&reference.name()).await;
            self.k.images.pull_with(&reference, auth.as_ref()).await
        };
        let pulled = tracing::Instrument::instrument(pull, span.clone()).await;
        if let Err(e) = &pulled {
            span.record("otel.status_code", "ERROR");
            span.record("otel.status_message", e.to_string().as_str());
        }
        match pulled {
            Ok(pulled) => {
                self.k.image_backoff.lock().unwrap_or_else(|e| e.into_inner()).reset(&key);
                self.prev_pull_error.remove(&key);
                self.k.events.normal(
                    &self.pod,
                    events::PULLED,
                    format!(
                        "Successfully pulled image {raw:?} in {} ({} including waiting). Image size: {} bytes.",
                        go_duration(pulled.duration),
                        go_duration(started.elapsed()),
                        pulled.image.size
                    ),
                );
                Ok(pulled.image)
            }
            Err(e) => {
                let msg = e.to_string();
                self.k.events.warning(
                    &self.pod,
                    events::FAILED,
                    format!("Failed to pull image {raw:?}: {msg}"),
                );
                self.k.image_backoff.lock().unwrap_or_else(|e| e.into_inner()).next(&key, Instant::now());
                self.k.events.warning(&self.pod, events::FAILED, "Error: ErrImagePull");
                self.prev_pull_error.insert(key, msg.clone());
                state.waiting = Some(("ErrImagePull".into(), msg));
                Err(Next::At(Instant::now() + self.k.cfg.scaled(ERR_IMAGE_PULL_GRACE)))
            }
        }
    }

    /// What to do about a container that ended (`computePodActions` + `doBackOff`): per
    /// restartPolicy, and when it ended too soon after its last start, CrashLoopBackOff with the
    /// kubelet's texts until the backoff (10 s doubling to 5 min, scaled) has passed since it
    /// ended.
    fn restart(&self, c: &Container, state: &mut ContainerState) -> Restart {
        let Some(last) = state.last_terminated.clone() else {
            return Restart::Now;
        };
        let policy = self.pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()).unwrap_or("Always");
        if policy == "Never" || (policy == "OnFailure" && last.exit_code == 0) {
            state.waiting = None;
            return Restart::Never;
        }
        if last.redefined {
            return Restart::Now;
        }
        let (ns, name) = self.key();
        let pod = format!("{name}_{ns}({})", self.uid);
        let key = format!("{name}_{ns}_{}_{}_{}", self.uid, c.name, c.image.as_deref().unwrap_or(""));
        let now_i = Instant::now();
        let mut backoff = self.k.crash_backoff.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = backoff.in_backoff_since(&key, last.finished, now_i) {
            // The message shows the kubelet's own durations, not the lab's scaled ones.
            let shown = go_duration_secs(backoff.get(&key).div_f64(self.k.cfg.time_scale));
            self.k.events.warning(
                &self.pod,
                events::BACK_OFF,
                format!("Back-off restarting failed container {} in pod {pod}", c.name),
            );
            state.waiting = Some((
                "CrashLoopBackOff".into(),
                format!("back-off {shown} restarting failed container={} pod={pod}", c.name),
            ));
            return Restart::At(until);
        }
        backoff.next(&key, last.finished);
        Restart::Now
    }

    /// Puts this pod's faults into effect: container-kill once per fault, pod-failure while it is
    /// in force (and undone when it is not).
    fn apply_faults(&mut self) {
        let (ns, name) = self.key();
        let pod = format!("{ns}/{name}");
        let faults = self.k.faults.clone();
        for kill in faults.container_kills(&pod) {
            if self.applied.contains(&kill.uid) {
                continue;
            }
            let spec = self.spec_containers();
            let named: Vec<&String> =
                kill.containers.iter().filter(|n| spec.iter().any(|c| &c.name == *n)).collect();
            let running: Vec<String> = named
                .iter()
                .filter(|n| self.containers.get(n.as_str()).is_some_and(|s| s.id.is_some()))
                .map(|n| n.to_string())
                .collect();
            // As chaos-daemon's kill of a container that does not run yet fails and is retried,
            // wait until a named container runs; a pod without any of the names is left alone.
            if running.is_empty() && !named.is_empty() {
                continue;
            }
            for container in &running {
                self.kill_container(container, &kill);
            }
            if !running.is_empty() {
                faults.reporter().add(&kill.key, counter::PODS_AFFECTED, 1);
            }
            self.applied.insert(kill.uid.clone());
            self.save_applied();
        }
        match faults.pod_failure(&pod, jiff::Timestamp::now()) {
            Some(failure) => {
                let targets: Vec<Container> = self
                    .spec_containers()
                    .into_iter()
                    .filter(|c| {
                        self.containers.get(&c.name).is_some_and(|s| s.id.is_some() && s.paused_by.is_none())
                    })
                    .collect();
                for c in &targets {
                    self.swap_to_pause(c, &failure);
                }
                let swapped = targets.len();
                if swapped > 0 {
                    faults.reporter().add(&failure.key, counter::PODS_AFFECTED, 1);
                }
            }
            None => {
                for c in self.spec_containers() {
                    if self.containers.get(&c.name).is_some_and(|s| s.paused_by.is_some()) {
                        self.swap_back(&c);
                    }
                }
            }
        }
    }

    /// container-kill: the container gets SIGKILL from outside the kubelet (chaos-daemon through
    /// containerd), so it ends with 137 and the kubelet restarts it on its next sync.
    fn kill_container(&mut self, name: &str, kill: &PodFault) {
        let (ns, pod) = self.key();
        let Some(state) = self.containers.get_mut(name) else {
            return;
        };
        let Some(id) = state.id.take() else {
            return;
        };
        let span = tracing::info_span!(
            "container kill",
            k8s.pod.name = %pod,
            k8s.namespace.name = %ns,
            k8s.node.name = %self.k.node_name,
            k8s.container.name = %name,
            container.id = %id,
        );
        netlab_telemetry::propagation::follow(&span, self.pod.metadata.annotations.as_ref());
        kill.fault.mark(&span, &format!("killed container {name}: exit code 137 (SIGKILL)"));
        self.k.runtime.stop(&id);
        if let Some(t) = state.probes.take() {
            t.cancel();
        }
        state.ready = false;
        state.waiting = None;
        state.exited = true;
        state.last_terminated = Some(Terminated::now(id, state.started_at.take(), 137, false));
        span.in_scope(|| info!(fault = %kill.fault.name, "Container killed by a fault."));
    }

    /// pod-failure: Chaos Mesh swaps the container's image for the pause image; the kubelet
    /// stops the container (its definition changed) and starts pause, which listens on nothing:
    /// connections to the pod are refused and readiness probes fail.
    fn swap_to_pause(&mut self, c: &Container, failure: &PodFault) {
        let (ns, pod) = self.key();
        let Some(mut state) = self.containers.remove(&c.name) else {
            return;
        };
        let span = tracing::info_span!(
            "pod failure",
            k8s.pod.name = %pod,
            k8s.namespace.name = %ns,
            k8s.node.name = %self.k.node_name,
            k8s.container.name = %c.name,
        );
        netlab_telemetry::propagation::follow(&span, self.pod.metadata.annotations.as_ref());
        failure.fault.mark(&span, &format!("container {} runs {PAUSE_IMAGE}", c.name));
        self.stop_for_redefinition(&c.name, &mut state);
        let pause = Image {
            reference: PAUSE_IMAGE.into(),
            manifest_digest: String::new(),
            config_digest: String::new(),
            size: 0,
            app: AppKind::Toolbox,
            port: None,
        };
        // The lab's pause image is built in (the registry serves no pause image), so there is no
        // pull: straight to create and start.
        let id = Runtime::new_id(&format!("{}/{}", self.uid, c.name));
        self.k.events.normal(&self.pod, events::CREATED, format!("Created container: {}", c.name));
        if self.start_app(c, &id, &pause, &mut state).is_ok() {
            self.k.events.normal(&self.pod, events::STARTED, format!("Started container {}", c.name));
            state.started_at = Some(now());
            state.restart_count += 1;
            state.exited = false;
        }
        state.paused_by = Some(failure.uid.clone());
        self.containers.insert(c.name.clone(), state);
    }

    /// The pod-failure is over: Chaos Mesh puts the original image back; the kubelet stops pause
    /// and starts the container again (this sync), a restart like any other.
    fn swap_back(&mut self, c: &Container) {
        let Some(mut state) = self.containers.remove(&c.name) else {
            return;
        };
        self.stop_for_redefinition(&c.name, &mut state);
        state.paused_by = None;
        self.containers.insert(c.name.clone(), state);
    }

    /// The kubelet stops a container whose spec changed: `Killing` and a clean exit (pause and
    /// the lab's apps exit 0 on SIGTERM).
    fn stop_for_redefinition(&self, name: &str, state: &mut ContainerState) {
        self.k.events.normal(
            &self.pod,
            events::KILLING,
            format!("Container {name} definition changed, will be restarted"),
        );
        if let Some(t) = state.probes.take() {
            t.cancel();
        }
        if let Some(id) = state.id.take() {
            self.k.runtime.stop(&id);
            state.last_terminated = Some(Terminated::now(id, state.started_at.take(), 0, true));
        }
        state.ready = false;
        state.waiting = None;
        state.exited = true;
    }

    fn save_applied(&self) {
        let json = serde_json::to_vec(&self.applied).unwrap_or_default();
        if let Err(error) = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(self.dir.join(APPLIED_FILE), json))
        {
            warn!(%error, "Could not record the faults done to the pod.");
        }
    }

    fn stop_probes(&mut self) {
        for s in self.containers.values_mut() {
            if let Some(t) = s.probes.take() {
                t.cancel();
            }
        }
    }

    /// Stops the containers, releases the network (CNI DEL) and removes the pod's directory.
    async fn teardown(&mut self) {
        self.stop_probes();
        let names: Vec<String> = self.containers.keys().cloned().collect();
        for name in names {
            if let Some(id) = self.containers.get_mut(&name).and_then(|s| s.id.take()) {
                self.k.runtime.stop(&id);
                self.k.events.normal(&self.pod, events::KILLING, format!("Stopping container {name}"));
            }
        }
        let sandbox = self.sandbox.take().or_else(|| Sandbox::load(&self.dir));
        if let Some(req) = sandbox.and_then(|s| s.cni_request) {
            let cni = self.k.cni.borrow().clone();
            if let Some(cni) = cni
                && let Err(error) = cni.del(&req).await
            {
                warn!(%error, "CNI DEL failed.");
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// Writes the status if it changed since the last write.
    async fn push_status(&mut self) {
        let status = status::build(Observed {
            pod: &self.pod,
            node_ip: self.k.node_ip,
            sandbox: self.sandbox.as_ref(),
            containers: &self.containers,
            start_time: self.start_time.clone(),
            conditions: &mut self.conditions,
        });
        let json = serde_json::to_value(&status).unwrap_or_default();
        if self.last_status.as_ref() == Some(&json) {
            return;
        }
        let mut pod = (*self.pod).clone();
        pod.metadata.resource_version = None;
        pod.status = Some(status);
        match self.k.client.update_status(&pod).await {
            Ok(_) => self.last_status = Some(json),
            Err(e) if e.is_not_found() => {}
            Err(error) => warn!(pod = ?self.key(), %error, "Status update failed."),
        }
    }
}

fn earliest(a: Next, b: Next) -> Next {
    match (a, b) {
        (Next::At(x), Next::At(y)) => Next::At(x.min(y)),
        (Next::At(x), _) | (_, Next::At(x)) => Next::At(x),
        (Next::Cni, _) | (_, Next::Cni) => Next::Cni,
        _ => Next::Idle,
    }
}

/// The condition types the kubelet owns, as 'static names.
pub(super) fn condition_name(t: &str) -> Option<&'static str> {
    ["PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"].into_iter().find(|n| *n == t)
}

/// A whole-second duration as Go prints it: `10s`, `1m20s`, `5m0s`.
pub fn go_duration_secs(d: Duration) -> String {
    let secs = d.as_secs_f64().round() as u64;
    match (secs / 3600, secs % 3600 / 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, m, s) => format!("{h}h{m}m{s}s"),
    }
}

/// A duration as Go prints it after `Truncate(time.Millisecond)`: `12ms`, `1.5s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        let (m, rest) = (ms / 60_000, ms % 60_000);
        let s = format!("{}.{:03}", rest / 1000, rest % 1000);
        format!("{m}m{}s", s.trim_end_matches('0').trim_end_matches('.'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_micros(300)), "0s");
        assert_eq!(go_duration(Duration::from_millis(12)), "12ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(2000)), "2s");
        assert_eq!(go_duration(Duration::from_millis(61_250)), "1m1.25s");
        assert_eq!(go_duration_secs(Duration::from_secs(10)), "10s");
        assert_eq!(go_duration_secs(Duration::from_secs(80)), "1m20s");
        assert_eq!(go_duration_secs(Duration::from_millis(299_999)), "5m0s");
    }
}
