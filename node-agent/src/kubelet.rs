//! The kubelet: watches the pods bound to this node and runs each through its lifecycle in its
//! own worker (one slow pod never stalls another): sandbox + CNI ADD, resolv.conf, image pull
//! with backoff, start the app, probes, status; on deletion stop, CNI DEL, and remove the pod.
//! Containers that end (a PodChaos container-kill) are restarted per restartPolicy with the
//! crash-loop backoff; a pod-failure swaps them for pause while it is in force ([`faults`]).
//!
//! On start it first reconciles what is on disk with what the apiserver says: pod directories
//! and IPs of pods that no longer exist are released (CNI GC), and pods that still exist keep
//! their sandbox and IP without a new pull or ADD.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use k8s_openapi::api::core::v1::Pod;
use netlab_client::{
    Client, ListParams,
    reflector::{self, Cache, Change},
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::{cni::CniPlugin, config::Config, image::ImageService, runtime::Runtime};

pub mod backoff;
pub mod container;
pub mod dns;
pub mod events;
pub mod faults;
pub mod probe;
pub mod sandbox;
pub mod status;
pub mod volumes;
pub mod worker;

use backoff::{
    Backoff, CONTAINER_BACKOFF_INITIAL, CONTAINER_BACKOFF_MAX, IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX,
};
use dns::{ClusterDns, DnsConfig};
use events::Events;

/// The annotation carrying a pod's CNI result (JSON), for `netlab describe pod`.
pub const CNI_RESULT_ANNOTATION: &str = "netlab.io/cni-result";

/// What every pod worker shares.
pub struct Kubelet {
    /// The flags.
    pub cfg: Arc<Config>,
    /// The apiserver.
    pub client: Client,
    /// This node's name.
    pub node_name: String,
    /// This node's IP.
    pub node_ip: IpAddr,
    /// Event sink (source component `kubelet`).
    pub events: Events,
    /// The image store.
    pub images: ImageService,
    /// The image credential providers (none unless configured).
    pub credentials: Arc<crate::credentials::Providers>,
    /// The container runtime.
    pub runtime: Arc<Runtime>,
    /// The CNI plugin chain, once the node has a podCIDR.
    pub cni: watch::Receiver<Option<Arc<dyn CniPlugin>>>,
    /// `<data-dir>/pods`.
    pub pods_dir: PathBuf,
    /// The node's resolv.conf, for dnsPolicy Default.
    pub host_dns: DnsConfig,
    /// `--cluster-dns` and `--cluster-domain`.
    pub cluster_dns: ClusterDns,
    /// Image pull backoff per `<podUID>_<image>`.
    pub image_backoff: Mutex<Backoff>,
    /// Sandbox creation backoff per pod UID.
    pub sandbox_backoff: Mutex<Backoff>,
    /// Crash-loop backoff per container (`<pod>_<ns>_<uid>_<container>_<image>`).
    pub crash_backoff: Mutex<Backoff>,
    /// The faults this node enforces on its pods.
    pub faults: Arc<faults::Faults>,
    /// The kubelet's fault gate: a stopped or paused kubelet syncs no pod and reports no status;
    /// what runs keeps running (the runtime and the node's kernel are not the kubelet).
    pub gate: netlab_faults::Gate,
}

/// What a worker gets: the pod's latest state, or word that it is gone from the apiserver.
#[derive(Debug, Clone)]
pub struct Update {
    /// The pod.
    pub pod: Arc<Pod>,
    /// Removed from the apiserver (force-deleted, or deleted while we were away).
    pub removed: bool,
}

// === impl Kubelet ===

impl Kubelet {
    /// The shared state. `cni` turns Some once the node has a podCIDR.
    pub fn new(
        cfg: Arc<Config>,
        client: Client,
        node_name: String,
        node_ip: IpAddr,
        runtime: Arc<Runtime>,
        cni: watch::Receiver<Option<Arc<dyn CniPlugin>>>,
        faults: Arc<faults::Faults>,
    ) -> crate::Result<Self> {
        let images = ImageService::open(&cfg.data_dir.join("images"), &cfg.registry)
            .map_err(|e| crate::Error::io("opening the image store", e))?;
        let pods_dir = cfg.data_dir.join("pods");
        std::fs::create_dir_all(&pods_dir).map_err(|e| crate::Error::io("creating the pods directory", e))?;
        let host_dns =
            std::fs::read_to_string(&cfg.resolv_conf).map(|t| DnsConfig::parse(&t)).unwrap_or_default();
        let cluster_dns = ClusterDns {
            servers: cfg
                .cluster_dns
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            domain: cfg.cluster_domain.clone(),
        };
        let recorder =
            netlab_client::recorder::Recorder::new(client.clone(), "kubelet", Some(node_name.clone()));
        let scaled = |d| cfg.scaled(d);
        Ok(Self {
            image_backoff: Mutex::new(Backoff::new(scaled(IMAGE_BACKOFF_INITIAL), scaled(IMAGE_BACKOFF_MAX))),
            sandbox_backoff: Mutex::new(Backoff::new(
                scaled(IMAGE_BACKOFF_INITIAL),
                scaled(IMAGE_BACKOFF_MAX),
            )),
            crash_backoff: Mutex::new(Backoff::new(
                scaled(CONTAINER_BACKOFF_INITIAL),
                scaled(CONTAINER_BACKOFF_MAX),
            )),
            faults,
            events: Events::start(recorder),
            cfg,
            client,
            node_name,
            node_ip,
            images,
            credentials: Arc::new(crate::credentials::Providers::none()),
            runtime,
            cni,
            pods_dir,
            host_dns,
            cluster_dns,
            gate: netlab_faults::Gate::new(),
        })
    }

    /// The same kubelet, asking `credentials` before each pull.
    pub fn with_credentials(self, credentials: crate::credentials::Providers) -> Self {
        Self { credentials: Arc::new(credentials), ..self }
    }

    /// The same kubelet, its work gated by `gate`.
    pub fn gated(self, gate: netlab_faults::Gate) -> Self {
        Self { gate, ..self }
    }
}

/// Runs the kubelet until `shutdown`.
pub async fn run(k: Arc<Kubelet>, shutdown: CancellationToken) {
    let params = ListParams { fields: format!("spec.nodeName={}", k.node_name), ..Default::default() };
    let (cache, mut changes) = reflector::reflector::<Pod>(k.client.clone(), params, shutdown.child_token());
    cache.wait_synced().await;
    // Reconcile disk against the apiserver before any worker runs, so that GC never races a new
    // sandbox. Needs the CNI plugin (the podCIDR) for DEL.
    let mut cni = k.cni.clone();
    let plugin = tokio::select! {
        _ = shutdown.cancelled() => return,
        p = cni.wait_for(Option::is_some) => p.ok().and_then(|p| p.clone()),
    };
    if let Some(plugin) = plugin {
        collect_garbage(&k, &cache, plugin.as_ref()).await;
    }
    let mut workers: HashMap<String, watch::Sender<Update>> = HashMap::new();
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    loop {
        let change = tokio::select! {
            _ = shutdown.cancelled() => return,
            Some(uid) = done_rx.recv() => {
                workers.remove(&uid);
                continue;
            }
            c = changes.recv() => match c { Some(c) => c, None => return },
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = k.gate.ready() => {}
        }
        let (pod, removed) = match change {
            Change::Applied(p) => (p, false),
            Change::Deleted(p) => (p, true),
        };
        let Some(uid) = pod.metadata.uid.clone() else {
            continue;
        };
        if let Some(tx) = workers.get(&uid) {
            let _ = tx.send(Update { pod, removed });
            continue;
        }
        if removed {
            continue;
        }
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        if matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none() {
            continue;
        }
        let (tx, rx) = watch::channel(Update { pod: pod.clone(), removed });
        workers.insert(uid.clone(), tx);
        let (k, token, done) = (k.clone(), shutdown.child_token(), done_tx.clone());
        tokio::spawn(async move {
            worker::Worker::new(k, pod).run(rx, token).await;
            let _ = done.send(uid);
        });
    }
}

/// Releases the pod directories and IPs of pods that are gone (deleted while node-agent was
/// down), keeping those of pods that still exist.
async fn collect_garbage(k: &Kubelet, cache: &Cache<Pod>, cni: &dyn CniPlugin) {
    let dirs: Vec<(String, PathBuf)> = match std::fs::read_dir(&k.pods_dir) {
        Ok(entries) => {
            entries.flatten().filter_map(|e| Some((e.file_name().to_str()?.to_string(), e.path()))).collect()
        }
        Err(error) => {
            warn!(%error, "Cannot read the pods directory.");
            return;
        }
    };
    let live: std::collections::HashSet<String> =
        cache.list().iter().filter_map(|p| p.metadata.uid.clone()).collect();
    let mut valid = Vec::new();
    for (uid, dir) in dirs {
        let sandbox = sandbox::Sandbox::load(&dir);
        if live.contains(&uid) {
            if let Some(s) = sandbox {
                valid.push(s.id);
            }
            continue;
        }
        if let Some(req) = sandbox.and_then(|s| s.cni_request)
            && let Err(error) = cni.del(&req).await
        {
            warn!(%uid, %error, "CNI DEL of a gone pod failed.");
        }
        let _ = std::fs::remove_dir_all(&dir);
        info!(%uid, "Removed the sandbox of a pod that no longer exists.");
    }
    match cni.gc(&valid).await {
        Ok(released) if !released.is_empty() => info!(?released, "CNI GC released addresses."),
        Ok(_) => {}
        Err(error) => warn!(%error, "CNI GC failed."),
    }
}
