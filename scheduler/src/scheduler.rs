//! The scheduling loop. One task owns the [`Cache`] and the [`Queue`] and makes every decision, so
//! decisions need no locks and each sees the previous one's assumption; the slow part, writing to
//! the apiserver (bindings, unschedulable status, Events), runs in spawned tasks, at most
//! `--max-in-flight` at once, which report back over a channel.
//!
//! Each turn of the loop first applies every watch event and binding result already received,
//! then decides pods while there is room for more writes in flight. A decision filters and scores
//! every node from the cache's counters, so its cost is O(nodes) and no pod list is ever scanned.

use std::{collections::HashMap, sync::Arc, time::Duration};

use k8s_openapi::{
    api::core::v1::{Node, Pod, PodCondition},
    apimachinery::pkg::apis::meta::v1::Time,
};
use netlab_client::{
    Client, key_of,
    recorder::{EventType, Recorder},
    reflector::Change,
};
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc},
    time::Instant,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tracing::Instrument as _;

use crate::{
    cache::Cache,
    filter::{self, NodeInfo, Reason},
    queue::Queue,
    score::{Load, Picker},
};

/// Decisions per turn before the loop reads events again, so watch events keep flowing into the
/// cache during a long burst.
const DECISIONS_PER_TURN: usize = 256;
/// How often progress is logged while pods are being scheduled.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// What a spawned binding reports back.
#[derive(Debug)]
enum Outcome {
    /// The apiserver bound the pod.
    Bound { key: String, uid: String },
    /// The apiserver refused or could not be reached.
    Rejected { key: String, pod: Arc<Pod>, error: netlab_client::Error },
}

/// The scheduler's state; see the module doc.
pub struct Scheduler {
    name: String,
    client: Client,
    recorder: Recorder,
    cache: Cache,
    queue: Queue,
    /// Pods waiting for a node, by key: the newest version the watch showed.
    pending: HashMap<String, Arc<Pod>>,
    picker: Picker,
    /// Bindings and status writes in flight.
    writes: Arc<Semaphore>,
    /// Events being recorded (kept off the binding path, bounded the same way).
    events: Arc<Semaphore>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    tasks: TaskTracker,
    /// Pods bound since start, and at the last progress log.
    bound: (u64, u64),
}

// === impl Scheduler ===

impl Scheduler {
    /// Runs the loop on the reflectors' change streams (whose caches have synced) until
    /// `shutdown`.
    pub async fn run(
        name: String,
        client: Client,
        max_in_flight: usize,
        mut nodes: mpsc::UnboundedReceiver<Change<Node>>,
        mut pods: mpsc::UnboundedReceiver<Change<Pod>>,
        gate: netlab_faults::Gate,
        shutdown: CancellationToken,
    ) {
        let (outcomes, mut results) = mpsc::unbounded_channel();
        let mut s = Scheduler {
            recorder: Recorder::new(client.clone(), &name, None),
            name,
            client,
            cache: Cache::default(),
            queue: Queue::default(),
            pending: HashMap::new(),
            picker: Picker::new(),
            writes: Arc::new(Semaphore::new(max_in_flight)),
            events: Arc::new(Semaphore::new(max_in_flight)),
            outcomes,
            tasks: TaskTracker::new(),
            bound: (0, 0),
        };
        let mut progress = tokio::time::interval(PROGRESS_EVERY);
        loop {
            // A stopped or paused scheduler binds nothing; what arrives meanwhile waits.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = gate.ready() => {}
            }
            // Everything already received goes into the cache before any decision.
            while let Ok(c) = nodes.try_recv() {
                s.on_node(c);
            }
            while let Ok(c) = pods.try_recv() {
                s.on_pod(c);
            }
            while let Ok(o) = results.try_recv() {
                s.on_outcome(o);
            }
            s.queue.flush(Instant::now().into_std());
            s.schedule_some();
            let wake = s
                .queue
                .next_wake()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            let waiting = s.queue.has_active();
            let writes = s.writes.clone();
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(c) = nodes.recv() => s.on_node(c),
                Some(c) = pods.recv() => s.on_pod(c),
                Some(o) = results.recv() => s.on_outcome(o),
                _ = tokio::time::sleep_until(wake) => {}
                Ok(permit) = writes.acquire_owned(), if waiting => s.schedule_next(permit),
                _ = progress.tick() => s.log_progress(),
            }
        }
        s.tasks.close();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.tasks.wait()).await;
    }

    fn on_node(&mut self, change: Change<Node>) {
        match change {
            Change::Applied(node) => {
                if self.cache.set_node(NodeInfo::from_node(&node)) {
                    self.retry_unschedulable("node added or changed");
                }
            }
            Change::Deleted(node) => self.cache.remove_node(node.metadata.name.as_deref().unwrap_or("")),
        }
    }

    fn on_pod(&mut self, change: Change<Pod>) {
        let key = change.key();
        let pod = change.object().clone();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if let Change::Deleted(_) = change {
            self.forget_pending(&key);
            if self.cache.remove(&key) {
                self.retry_unschedulable("pod deleted");
            }
            return;
        }
        let spec = pod.spec.as_ref();
        if let Some(node) = spec.and_then(|s| s.node_name.as_deref()).filter(|n| !n.is_empty()) {
            self.forget_pending(&key);
            let freed = if is_terminated(&pod) {
                self.cache.remove(&key)
            } else {
                self.cache.observe_bound(&key, &uid, node)
            };
            if freed {
                self.retry_unschedulable("pod left a node");
            }
            return;
        }
        if let Some(p) = self.cache.placement(&key) {
            if p.uid == uid {
                // Our binding is in flight or the watch has not caught up with it.
                return;
            }
            // Another pod by this name: the old one is gone.
            if self.cache.remove(&key) {
                self.retry_unschedulable("pod deleted");
            }
        }
        if !self.is_ours(&pod) {
            self.forget_pending(&key);
            return;
        }
        match self.pending.get(&key) {
            Some(old) if old.metadata.uid == pod.metadata.uid => {
                let changed = old.spec != pod.spec;
                self.pending.insert(key.clone(), pod);
                if changed {
                    self.queue.activate(&key, Instant::now().into_std());
                }
            }
            _ => {
                self.queue.remove(&key);
                self.pending.insert(key.clone(), pod);
                self.queue.add(&key);
            }
        }
    }

    fn on_outcome(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Bound { key, uid } => {
                self.cache.confirm(&key, &uid);
                self.bound.0 += 1;
            }
            Outcome::Rejected { key, pod, error } => {
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                let freed = self.cache.forget(&key, &uid);
                if error.is_conflict() || error.is_not_found() {
                    // Another binder won, or the pod is gone or going: the watch shows which.
                    tracing::debug!(pod = %key, %error, "Binding rejected; dropping the pod.");
                } else if freed {
                    tracing::warn!(pod = %key, %error, "Binding failed; retrying after backoff.");
                    self.pending.insert(key.clone(), pod);
                    self.queue.backoff(&key, Instant::now().into_std());
                }
                if freed {
                    self.retry_unschedulable("binding rejected");
                }
            }
        }
    }

    fn retry_unschedulable(&mut self, why: &'static str) {
        let moved = self.queue.move_all_unschedulable(Instant::now().into_std());
        if moved > 0 {
            tracing::debug!(moved, why, "Retrying unschedulable pods.");
        }
    }

    fn forget_pending(&mut self, key: &str) {
        if self.pending.remove(key).is_some() {
            self.queue.remove(key);
        }
    }

    /// Pending and ours: `spec.schedulerName` names us, and it is not being deleted or finished.
    fn is_ours(&self, pod: &Pod) -> bool {
        let name = pod
            .spec
            .as_ref()
            .and_then(|s| s.scheduler_name.as_deref())
            .unwrap_or(crate::config::DEFAULT_SCHEDULER_NAME);
        name == self.name && pod.metadata.deletion_timestamp.is_none() && !is_terminated(pod)
    }

    /// Decides pods while there are any and writes may start.
    fn schedule_some(&mut self) {
        for _ in 0..DECISIONS_PER_TURN {
            if !self.queue.has_active() {
                return;
            }
            let Ok(permit) = self.writes.clone().try_acquire_owned() else { return };
            self.schedule_next(permit);
        }
    }

    fn schedule_next(&mut self, permit: OwnedSemaphorePermit) {
        let Some(key) = self.queue.pop() else { return };
        let Some(pod) = self.pending.get(&key).cloned() else {
            self.queue.remove(&key);
            return;
        };
        self.schedule_one(key, pod, permit);
    }

    /// One scheduling cycle: filter, score, assume, and start the binding (or record why not).
    #[tracing::instrument(name = "schedule", skip_all, fields(pod = %key, node))]
    fn schedule_one(&mut self, key: String, pod: Arc<Pod>, permit: OwnedSemaphorePermit) {
        let Scheduler { cache, picker, .. } = self;
        let feasible = cache.nodes().filter(|(info, pods)| filter::filter(&pod, info, *pods).is_ok());
        let picked = picker.pick(
            feasible
                .map(|(info, pods)| (info.name.as_str(), Load { pods, allocatable: info.allocatable_pods })),
        );
        match picked {
            Some((node, load)) => {
                let node = node.to_string();
                tracing::Span::current().record("node", node.as_str());
                tracing::debug!(score = load.score(), "Assumed.");
                let uid = pod.metadata.uid.clone().unwrap_or_default();
                self.cache.assume(&key, &uid, &node);
                self.pending.remove(&key);
                self.queue.remove(&key);
                self.spawn_bind(key, pod, node, load.score(), permit);
            }
            None => {
                let failures: Vec<Reason> = self
                    .cache
                    .nodes()
                    .filter_map(|(info, pods)| filter::filter(&pod, info, pods).err())
                    .collect();
                let message = filter::fit_error(self.cache.num_nodes(), &failures, &pod);
                tracing::debug!(%message, "Unschedulable.");
                self.queue.unschedulable(&key, Instant::now().into_std());
                self.spawn_unschedulable(pod, message, permit);
            }
        }
    }

    fn spawn_bind(
        &self,
        key: String,
        pod: Arc<Pod>,
        node: String,
        score: impl std::fmt::Display,
        permit: OwnedSemaphorePermit,
    ) {
        let (client, recorder, events, outcomes) =
            (self.client.clone(), self.recorder.clone(), self.events.clone(), self.outcomes.clone());
        // The decision span: joins the trace of the write that created the pod.
        let span = tracing::info_span!(
            "scheduler bind",
            pod = %key,
            k8s.pod.name = %pod.metadata.name.as_deref().unwrap_or(""),
            k8s.namespace.name = %pod.metadata.namespace.as_deref().unwrap_or(""),
            k8s.node.name = %node,
            netlab.scheduler.nodes = self.cache.num_nodes(),
            netlab.scheduler.score = %score,
        );
        netlab_telemetry::propagation::follow(&span, pod.metadata.annotations.as_ref());
        self.tasks.spawn(
            async move {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let result = client.bind(&ns, &name, &node).await;
                drop(permit);
                let _event_slot = events.acquire_owned().await;
                match result {
                    Ok(_) => {
                        let uid = pod.metadata.uid.clone().unwrap_or_default();
                        let _ = outcomes.send(Outcome::Bound { key, uid });
                        let message = format!("Successfully assigned {ns}/{name} to {node}");
                        recorder.record(pod.as_ref(), EventType::Normal, "Scheduled", &message).await;
                    }
                    Err(error) => {
                        if !error.is_conflict() && !error.is_not_found() {
                            let message = format!("running Bind plugin \"DefaultBinder\": {error}");
                            recorder
                                .record(pod.as_ref(), EventType::Warning, "FailedScheduling", &message)
                                .await;
                        }
                        let _ = outcomes.send(Outcome::Rejected { key, pod, error });
                    }
                }
            }
            .instrument(span),
        );
    }

    fn spawn_unschedulable(&self, pod: Arc<Pod>, message: String, permit: OwnedSemaphorePermit) {
        let (client, recorder) = (self.client.clone(), self.recorder.clone());
        let span = tracing::info_span!(
            "scheduler bind",
            pod = %key_of(pod.as_ref()),
            k8s.pod.name = %pod.metadata.name.as_deref().unwrap_or(""),
            k8s.namespace.name = %pod.metadata.namespace.as_deref().unwrap_or(""),
            otel.status_code = "ERROR",
            otel.status_message = %message,
        );
        netlab_telemetry::propagation::follow(&span, pod.metadata.annotations.as_ref());
        self.tasks.spawn(
            async move {
                mark_unschedulable(&client, &pod, &message).await;
                drop(permit);
                recorder.record(pod.as_ref(), EventType::Warning, "FailedScheduling", &message).await;
            }
            .instrument(span),
        );
    }

    fn log_progress(&mut self) {
        let (active, backoff, unschedulable) = self.queue.lens();
        let (bound, before) = self.bound;
        if bound != before || active + backoff > 0 {
            tracing::info!(
                bound_total = bound,
                bound_per_s = (bound - before) as f64 / PROGRESS_EVERY.as_secs_f64(),
                active,
                backoff,
                unschedulable,
                nodes = self.cache.num_nodes(),
                "Progress."
            );
        }
        self.bound.1 = bound;
    }
}

/// Succeeded or Failed: holds no slot and needs no node.
fn is_terminated(pod: &Pod) -> bool {
    matches!(pod.status.as_ref().and_then(|s| s.phase.as_deref()), Some("Succeeded" | "Failed"))
}

/// `PodScheduled=False, reason Unschedulable` with `message`, written only if it differs from what
/// the pod shows (upstream `updatePod` skips an unchanged condition), so retries cost no write.
async fn mark_unschedulable(client: &Client, pod: &Pod, message: &str) {
    let Some(mut updated) = with_unschedulable_condition(pod, message) else { return };
    let mut result = client.update_status(&updated).await;
    if result.as_ref().is_err_and(|e| e.is_conflict()) {
        // The pod changed since the decision: apply the condition to its current version once.
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        let name = pod.metadata.name.as_deref().unwrap_or("");
        result = match client.get::<Pod>(ns, name).await {
            Ok(fresh)
                if fresh.spec.as_ref().and_then(|s| s.node_name.as_deref()).unwrap_or("").is_empty() =>
            {
                match with_unschedulable_condition(&fresh, message) {
                    Some(u) => {
                        updated = u;
                        client.update_status(&updated).await
                    }
                    None => return,
                }
            }
            Ok(_) => return,
            Err(e) => Err(e),
        };
    }
    match result {
        Ok(_) => {}
        Err(e) if e.is_not_found() => {}
        Err(error) => tracing::warn!(%error, "Could not set the PodScheduled condition."),
    }
}

/// The pod with its PodScheduled condition set to False/Unschedulable/`message`, or None if it
/// already says exactly that.
fn with_unschedulable_condition(pod: &Pod, message: &str) -> Option<Pod> {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_deref()).unwrap_or(&[]);
    let old = conditions.iter().find(|c| c.type_ == "PodScheduled");
    if let Some(c) = old
        && c.status == "False"
        && c.reason.as_deref() == Some("Unschedulable")
        && c.message.as_deref() == Some(message)
    {
        return None;
    }
    let transition = match old {
        Some(c) if c.status == "False" => c.last_transition_time.clone(),
        _ => Some(Time(jiff::Timestamp::now())),
    };
    let condition = PodCondition {
        type_: "PodScheduled".into(),
        status: "False".into(),
        reason: Some("Unschedulable".into()),
        message: Some(message.into()),
        last_transition_time: transition,
        ..Default::default()
    };
    let mut updated = pod.clone();
    let status = updated.status.get_or_insert_with(Default::default);
    let list = status.conditions.get_or_insert_with(Vec::new);
    list.retain(|c| c.type_ != "PodScheduled");
    list.push(condition);
    Some(updated)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodStatus;

    use super::*;

    #[test]
    fn the_condition_is_written_once_per_message() {
        let pod = Pod {
            status: Some(PodStatus { phase: Some("Pending".into()), ..Default::default() }),
            ..Default::default()
        };
        let first = with_unschedulable_condition(&pod, "0/1 nodes are available: 1 Too many pods.").unwrap();
        let c = &first.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_deref()),
            ("PodScheduled", "False", Some("Unschedulable"))
        );
        assert!(with_unschedulable_condition(&first, "0/1 nodes are available: 1 Too many pods.").is_none());
        let second =
            with_unschedulable_condition(&first, "0/2 nodes are available: 2 Too many pods.").unwrap();
        let c2 = &second.status.as_ref().unwrap().conditions.as_ref().unwrap()[0];
        assert_eq!(c2.last_transition_time, c.last_transition_time, "status stayed False");
        assert_eq!(second.status.as_ref().unwrap().conditions.as_ref().unwrap().len(), 1);
    }

    #[test]
    fn finished_pods_hold_no_slot() {
        let mut pod = Pod::default();
        assert!(!is_terminated(&pod));
        pod.status = Some(PodStatus { phase: Some("Succeeded".into()), ..Default::default() });
        assert!(is_terminated(&pod));
    }
}
