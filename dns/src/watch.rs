//! Keeps the zone in step with the apiserver: one reflector per kind (Services, EndpointSlices,
//! Namespaces; Pods only when a block asks for `pods verified`, as CoreDNS starts its pod
//! informer only then), each change applied to the [`crate::zone::Store`] on its own — no
//! rebuild — with the SOA serial set to the time of the change. The first lists flip the
//! server from SERVFAIL to NXDOMAIN, and with a running Corefile turn `/ready` to 200.
//!
//! The Corefile comes from the `kube-system/coredns` ConfigMap; until one is read every query is
//! REFUSED (no zone is served). Each change is parsed and, if good, swapped in (a fresh cache and forwarder, as a CoreDNS reload); if bad, the running
//! config stays, the log says why and a Warning Event lands on the ConfigMap.
//!
//! DNSChaos objects are followed too ([`faults`]): every change, and the end of a fault's
//! `duration`, rebuilds the [`crate::chaos::Faults`] index. A restarted server lists them again,
//! so the faults in force are back before its first query.

use std::{
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use k8s_openapi::api::{
    core::v1::{ConfigMap, Namespace, Pod, Service},
    discovery::v1::EndpointSlice,
};
use netlab_chaos::DnsChaos;
use netlab_client::{
    Client, ListParams, Object,
    recorder::{EventType, Recorder},
    reflector::{Change, Synced, key_reflector, reflector},
};
use sha2::{Digest as _, Sha512};
use tokio::sync::{mpsc::UnboundedReceiver, oneshot};
use tokio_util::sync::CancellationToken;

use crate::{
    Shared,
    blocks::Blocks,
    chaos::Faults,
    config::{COREFILE_CONFIGMAP, COREFILE_NAMESPACE},
    corefile::Corefile,
    zone::Store,
};

/// The Event reason for a Corefile that could not be loaded.
pub const REASON_RELOAD_FAILED: &str = "CorefileReloadFailed";

type Apply<K> = fn(&mut Store, &Change<K>);

/// Watches everything until `shutdown`.
pub async fn run(client: Client, shared: Arc<Shared>, shutdown: CancellationToken) {
    let all = ListParams::default();
    // The zone is the index: the reflectors keep only keys (a relist's deletions need them).
    let (svc_synced, svc_rx) = key_reflector::<Service>(client.clone(), all.clone(), shutdown.child_token());
    let (slice_synced, slice_rx) =
        key_reflector::<EndpointSlice>(client.clone(), all.clone(), shutdown.child_token());
    let (ns_synced, ns_rx) = key_reflector::<Namespace>(client.clone(), all.clone(), shutdown.child_token());
    let cm_params = ListParams { namespace: COREFILE_NAMESPACE.into(), ..Default::default() };
    let (cm_synced, cm_rx) = key_reflector::<ConfigMap>(client.clone(), cm_params, shutdown.child_token());

    let (svc_tx, svc_first) = oneshot::channel();
    let (slice_tx, slice_first) = oneshot::channel();
    let (ns_tx, ns_first) = oneshot::channel();
    let (corefile_tx, corefile_first) = oneshot::channel();
    let tasks = [
        tokio::spawn(follow(
            svc_synced,
            svc_rx,
            shared.clone(),
            apply_service as Apply<Service>,
            Some(svc_tx),
        )),
        tokio::spawn(follow(
            slice_synced,
            slice_rx,
            shared.clone(),
            apply_slice as Apply<EndpointSlice>,
            Some(slice_tx),
        )),
        tokio::spawn(follow(
            ns_synced,
            ns_rx,
            shared.clone(),
            apply_namespace as Apply<Namespace>,
            Some(ns_tx),
        )),
        tokio::spawn(corefile(
            client.clone(),
            cm_synced,
            cm_rx,
            shared.clone(),
            corefile_tx,
            shutdown.child_token(),
        )),
    ];

    // Synced once the three first lists are applied and a Corefile runs.
    let synced = async {
        let _ = tokio::join!(svc_first, slice_first, ns_first, corefile_first);
        shared.update(|s| s.set_synced(true));
        shared.synced.send_replace(true);
        tracing::info!(services = shared.store().service_count(), "Synced with the apiserver.");
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = synced => shutdown.cancelled().await,
    }
    for task in tasks {
        task.abort();
    }
}

/// Follows the DNSChaos objects until `shutdown`, keeping [`Shared::set_faults`] current: on
/// every change, and when a fault's duration ends (a timer on the earliest end), so that a fault
/// stops exactly on time.
pub async fn faults(client: Client, shared: Arc<Shared>, shutdown: CancellationToken) {
    let (cache, mut rx) = reflector::<DnsChaos>(client, ListParams::default(), shutdown.child_token());
    cache.wait_synced().await;
    loop {
        // Every change already queued is in the cache: one rebuild for all of them.
        while rx.try_recv().is_ok() {}
        let list = cache.list();
        let (faults, next) = Faults::build(list.iter().map(|f| f.as_ref()), jiff::Timestamp::now());
        let (was_empty, is_empty) = (shared.faults().is_empty(), faults.is_empty());
        shared.set_faults(faults);
        if !(was_empty && is_empty) {
            tracing::debug!(faults = list.len(), "DNSChaos rules rebuilt.");
        }
        // A timer a little past the end, so the window is surely closed when it fires.
        let wake = next.map(|d| d + std::time::Duration::from_millis(1));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            change = rx.recv() => if change.is_none() { return },
            () = async {
                match wake {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

fn now() -> u32 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as u32).unwrap_or(0)
}

/// Applies the first list as one batch once the reflector has synced, then every change.
async fn follow<K: Object>(
    synced: Synced,
    mut rx: UnboundedReceiver<Change<K>>,
    shared: Arc<Shared>,
    apply: Apply<K>,
    first: Option<oneshot::Sender<()>>,
) {
    synced.wait_synced().await;
    // Every listed object was sent before the cache said synced: drain them under one lock.
    let mut batch = Vec::new();
    while let Ok(c) = rx.try_recv() {
        batch.push(c);
    }
    shared.update(|s| {
        for c in &batch {
            apply(s, c);
        }
        s.touch(now());
    });
    // The zone has what it needs; the decoded list (10,000 Services are tens of MB) goes now,
    // not when this task ends.
    drop(batch);
    if let Some(first) = first {
        let _ = first.send(());
    }
    while let Some(c) = rx.recv().await {
        let mut batch = vec![c];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        shared.update(|s| {
            for c in &batch {
                apply(s, c);
            }
            s.touch(now());
        });
    }
}

fn apply_service(s: &mut Store, c: &Change<Service>) {
    match c {
        Change::Applied(o) => s.apply_service(o),
        Change::Deleted(o) => s.delete_service(o),
    }
}

fn apply_slice(s: &mut Store, c: &Change<EndpointSlice>) {
    match c {
        Change::Applied(o) => s.apply_slice(o),
        Change::Deleted(o) => s.delete_slice(o),
    }
}

fn apply_namespace(s: &mut Store, c: &Change<Namespace>) {
    match c {
        Change::Applied(o) => s.apply_namespace(o),
        Change::Deleted(o) => s.delete_namespace(o),
    }
}

fn apply_pod(s: &mut Store, c: &Change<Pod>) {
    match c {
        Change::Applied(o) => s.apply_pod(o),
        Change::Deleted(o) => s.delete_pod(o),
    }
}

/// Follows the `kube-system/coredns` ConfigMap and reloads on every change of its Corefile.
///
/// Until the first Corefile loads, nothing is served; `first` fires when it does. A missing
/// ConfigMap is said once, with the text kubelet gives for the pod CoreDNS could not start.
async fn corefile(
    client: Client,
    listed: Synced,
    mut rx: UnboundedReceiver<Change<ConfigMap>>,
    shared: Arc<Shared>,
    first: oneshot::Sender<()>,
    shutdown: CancellationToken,
) {
    let recorder = Recorder::new(client.clone(), "coredns", None);
    let mut running: Option<String> = None;
    let mut pods_started = false;
    let mut first = Some(first);
    let mut listed = Some(listed);
    let mut seen = false;
    loop {
        let change = tokio::select! {
            // Biased: the list's objects are in the channel before the list says synced, so the
            // check below only runs once they have all been read.
            biased;
            change = rx.recv() => change,
            // Once: after the first list, a ConfigMap that was not in it does not exist.
            () = async {
                match &listed {
                    Some(listed) => listed.wait_synced().await,
                    None => std::future::pending().await,
                }
            } => {
                listed = None;
                // A reflector that stopped (shutdown) also says synced; that is no news.
                if !seen && !shutdown.is_cancelled() {
                    tracing::warn!(
                        "[WARNING] configmap \"{COREFILE_CONFIGMAP}\" not found in namespace {COREFILE_NAMESPACE}: no Corefile to serve; waiting for it."
                    );
                }
                continue;
            }
        };
        let Some(change) = change else { break };
        let Change::Applied(cm) = change else { continue };
        if cm.metadata.name.as_deref() != Some(COREFILE_CONFIGMAP) {
            continue;
        }
        seen = true;
        let Some(text) = cm.data.as_ref().and_then(|d| d.get("Corefile")) else {
            tracing::error!(
                "[ERROR] ConfigMap {COREFILE_NAMESPACE}/{COREFILE_CONFIGMAP} has no Corefile key; keeping the running configuration."
            );
            continue;
        };
        let sha = hex(&Sha512::digest(text.as_bytes()));
        if running.as_deref() == Some(sha.as_str()) {
            continue;
        }
        match Corefile::parse(text) {
            Ok(parsed) => {
                if running.is_some() {
                    tracing::info!("[INFO] Reloading");
                }
                let blocks = Blocks::compile(parsed, &shared.settings, &shared.metrics);
                if blocks.wants_pods() && !pods_started {
                    pods_started = true;
                    let (pod_synced, pod_rx) =
                        key_reflector::<Pod>(client.clone(), ListParams::default(), shutdown.child_token());
                    tokio::spawn(follow(pod_synced, pod_rx, shared.clone(), apply_pod as Apply<Pod>, None));
                }
                shared.set_blocks(blocks);
                if let Some(first) = first.take() {
                    let _ = first.send(());
                }
                tracing::info!("[INFO] plugin/reload: Running configuration SHA512 = {sha}");
                if running.is_some() {
                    tracing::info!("[INFO] Reloading complete");
                }
                running = Some(sha);
            }
            Err(error) => {
                shared.metrics.reload_failed();
                let message = format!("plugin/reload: Corefile changed but reload failed: {error}");
                tracing::error!("[ERROR] {message}");
                recorder.record(cm.as_ref(), EventType::Warning, REASON_RELOAD_FAILED, &message).await;
                // Do not retry the same bad text on every resync.
                running = Some(sha);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
