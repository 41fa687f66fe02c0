//! What the workload controllers read off a Pod: whether it counts (active), is Ready, is
//! available (Ready for `minReadySeconds`), who controls it; and which pods a ReplicaSet deletes
//! first when it scales down (upstream's `ActivePodsWithRanks` ordering).

use std::{cmp::Ordering, collections::HashMap, time::Duration};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::{
    api::core::v1::Pod,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use netlab_client::Object;

/// The controller `ownerReference` (`controller: true`), if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// Whether `meta`'s controller is the object with this `uid`.
pub fn is_controlled_by(meta: &ObjectMeta, uid: &str) -> bool {
    controller_of(meta).is_some_and(|r| r.uid == uid)
}

/// `metav1.NewControllerRef`: the ownerReference a controller puts on what it creates, so the
/// garbage collector deletes it with its owner and `blockOwnerDeletion` holds foreground deletes.
pub fn controller_ref<K: Object>(owner: &K) -> OwnerReference {
    let meta = owner.metadata();
    OwnerReference {
        api_version: K::API_VERSION.into(),
        kind: K::KIND.into(),
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether the object is being deleted (Terminating).
pub fn is_terminating(meta: &ObjectMeta) -> bool {
    meta.deletion_timestamp.is_some()
}

fn phase(pod: &Pod) -> &str {
    pod.status.as_ref().and_then(|s| s.phase.as_deref()).unwrap_or("")
}

/// `controller.IsPodActive`: not Succeeded, not Failed, not being deleted. Only active pods count
/// as replicas.
pub fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && !is_terminating(&pod.metadata)
}

/// Whether the pod has Failed (a StatefulSet replaces it).
pub fn is_failed(pod: &Pod) -> bool {
    phase(pod) == "Failed"
}

/// Whether the pod is Running.
pub fn is_running(pod: &Pod) -> bool {
    phase(pod) == "Running"
}

/// When the pod's Ready condition turned True, if it is True.
pub fn ready_since(pod: &Pod) -> Option<Option<Timestamp>> {
    let cond = pod.status.as_ref()?.conditions.as_ref()?.iter().find(|c| c.type_ == "Ready")?;
    (cond.status == "True").then(|| cond.last_transition_time.as_ref().map(|t| t.0))
}

/// `podutil.IsPodReady`: condition Ready is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// `podutil.IsPodAvailable`: Ready for at least `min_ready_seconds`.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: Timestamp) -> bool {
    available_at(pod, min_ready_seconds).is_some_and(|at| at <= now)
}

/// When the pod becomes (or became) available, if it is Ready: the controllers requeue for that
/// moment so `availableReplicas` grows without another event.
pub fn available_at(pod: &Pod, min_ready_seconds: i32) -> Option<Timestamp> {
    let since = ready_since(pod)?;
    if min_ready_seconds <= 0 {
        return Some(Timestamp::MIN);
    }
    // A Ready condition without a transition time counts as ready since forever, as upstream.
    let since = since.unwrap_or(Timestamp::MIN);
    Some(since.checked_add(SignedDuration::from_secs(i64::from(min_ready_seconds))).unwrap_or(Timestamp::MAX))
}

/// How many of `pods` are available at `now`, and when the next of the others that is Ready
/// becomes available.
pub fn availability<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    min_ready_seconds: i32,
    now: Timestamp,
) -> (i32, Option<Timestamp>) {
    let (mut available, mut next) = (0, None::<Timestamp>);
    for p in pods {
        match available_at(p, min_ready_seconds) {
            Some(at) if at <= now => available += 1,
            Some(at) => next = Some(next.map_or(at, |n| n.min(at))),
            None => {}
        }
    }
    (available, next)
}

/// The requeue for the moment `at` a pod becomes available (with 100 ms to spare, so the pod is
/// available by then).
pub fn requeue_at(at: Timestamp, now: Timestamp) -> Duration {
    let wait = at.duration_since(now);
    Duration::from_millis(wait.as_millis().clamp(0, i64::MAX as i128) as u64 + 100)
}

fn created(pod: &Pod) -> Timestamp {
    pod.metadata.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::MIN)
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map(|cs| cs.iter().map(|c| c.restart_count).max().unwrap_or(0))
        .unwrap_or(0)
}

fn phase_rank(pod: &Pod) -> u8 {
    // PodPending < PodUnknown < PodRunning, as upstream's podPhaseToOrdinal.
    match phase(pod) {
        "Pending" | "" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// The deletion order a ReplicaSet uses when scaling down (`ActivePodsWithRanks.Less`): earlier
/// means deleted first. Unscheduled before scheduled; Pending before Unknown before Running; not
/// Ready before Ready; pods on nodes with more of this ReplicaSet's pods first; Ready for less
/// time first; more restarts first; newer first.
pub fn deletion_order(a: &Pod, b: &Pod, colocated: &HashMap<String, usize>) -> Ordering {
    let node = |p: &Pod| p.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty());
    let (na, nb) = (node(a), node(b));
    // 1. Unassigned < assigned.
    let by_assigned = na.is_some().cmp(&nb.is_some());
    // 2. Pending < Unknown < Running.
    let by_phase = phase_rank(a).cmp(&phase_rank(b));
    // 3. Not ready < ready.
    let by_ready = is_ready(a).cmp(&is_ready(b));
    // 4. More colocated pods of the same owner first.
    let rank = |n: &Option<String>| n.as_ref().and_then(|n| colocated.get(n)).copied().unwrap_or(0);
    let by_rank = rank(&nb).cmp(&rank(&na));
    // 5. Ready for less time first (later transition first).
    let by_ready_time = match (ready_since(a).flatten(), ready_since(b).flatten()) {
        (Some(ta), Some(tb)) if is_ready(a) && is_ready(b) => tb.cmp(&ta),
        _ => Ordering::Equal,
    };
    // 6. More restarts first.
    let by_restarts = restarts(b).cmp(&restarts(a));
    // 7. Newer first.
    let by_age = created(b).cmp(&created(a));
    by_assigned
        .then(by_phase)
        .then(by_ready)
        .then(by_rank)
        .then(by_ready_time)
        .then(by_restarts)
        .then(by_age)
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The `n` pods to delete out of `pods` (all active, all of one owner), as `getPodsToDelete`
/// picks them.
pub fn pods_to_delete<'a>(pods: &[&'a Pod], n: usize) -> Vec<&'a Pod> {
    let mut colocated: HashMap<String, usize> = HashMap::new();
    for p in pods {
        if let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()).filter(|n| !n.is_empty()) {
            *colocated.entry(node).or_default() += 1;
        }
    }
    let mut sorted: Vec<&Pod> = pods.to_vec();
    sorted.sort_by(|a, b| deletion_order(a, b, &colocated));
    sorted.truncate(n);
    sorted
}

#[cfg(test)]
pub(crate) mod tests;
