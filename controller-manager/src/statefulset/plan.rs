//! What a StatefulSet does next, decided over a snapshot of its pods so the ordering rules can
//! be tested without a cluster. It follows upstream's `updateStatefulSet`:
//!
//! - OrderedReady (`monotonic`): ordinal i is created only when 0..i-1 are Running, Ready and
//!   available; a missing, terminating or unhealthy pod stops everything after it. Scale-down
//!   removes the highest ordinal, one at a time, only once every kept pod is healthy, and waits
//!   for it to be gone before the next.
//! - Parallel: every missing pod is created and every surplus pod deleted at once.
//! - A Failed (or Succeeded) pod is deleted, and created again once it is gone.
//! - RollingUpdate: once the above is settled, the highest ordinal at or above `partition` whose
//!   revision is not the update revision is deleted (and so recreated at the new revision), one at
//!   a time, waiting for each to be healthy again. Pods are always created at the update
//!   revision: without ControllerRevisions netlab cannot rebuild an older template, so a
//!   partitioned rollout recreates a deleted low ordinal at the new revision (upstream would use
//!   the current one).

/// One pod of the set, as the plan needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Its ordinal (`web-3` → 3).
    pub ordinal: i32,
    /// Its name.
    pub name: String,
    /// Being deleted.
    pub terminating: bool,
    /// Phase Failed or Succeeded: it will not run again.
    pub finished: bool,
    /// Running, Ready, and Ready for minReadySeconds.
    pub healthy: bool,
    /// Its `controller-revision-hash` label.
    pub revision: String,
    /// Its `statefulset.kubernetes.io/pod-name` and `apps.kubernetes.io/pod-index` labels are right.
    pub identity_ok: bool,
}

/// Something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pod with this ordinal.
    Create(i32),
    /// Delete this pod.
    Delete(String),
    /// Put back this pod's identity labels.
    FixIdentity(String),
}

/// The set's spec, as the plan needs it.
#[derive(Debug, Clone)]
pub struct Spec<'a> {
    /// `spec.replicas`.
    pub replicas: i32,
    /// podManagementPolicy OrderedReady.
    pub ordered: bool,
    /// updateStrategy RollingUpdate (else OnDelete).
    pub rolling: bool,
    /// `updateStrategy.rollingUpdate.partition`.
    pub partition: i32,
    /// The revision pods should have.
    pub update_revision: &'a str,
}

/// The actions for `members` (any order; pods with the set's name pattern only).
pub fn plan(spec: &Spec<'_>, members: &[Member]) -> Vec<Action> {
    let mut actions = Vec::new();
    let monotonic = spec.ordered;
    let at = |i: i32| members.iter().find(|m| m.ordinal == i);
    for i in 0..spec.replicas.max(0) {
        match at(i) {
            None => {
                actions.push(Action::Create(i));
                if monotonic {
                    return actions;
                }
            }
            Some(m) if m.finished && !m.terminating => {
                actions.push(Action::Delete(m.name.clone()));
                if monotonic {
                    return actions;
                }
            }
            Some(m) if m.terminating || !m.healthy => {
                if monotonic {
                    return actions;
                }
            }
            Some(m) => {
                if !m.identity_ok {
                    actions.push(Action::FixIdentity(m.name.clone()));
                }
            }
        }
    }
    let mut condemned: Vec<&Member> = members.iter().filter(|m| m.ordinal >= spec.replicas).collect();
    condemned.sort_by_key(|m| std::cmp::Reverse(m.ordinal));
    for m in condemned {
        if m.terminating {
            if monotonic {
                return actions;
            }
            continue;
        }
        // In ordered mode every kept pod is healthy here (else we returned above), so the
        // highest condemned pod is healthy or the first unhealthy one: upstream deletes it.
        actions.push(Action::Delete(m.name.clone()));
        if monotonic {
            return actions;
        }
    }
    if !spec.rolling || !actions.is_empty() {
        return actions;
    }
    for target in (spec.partition.max(0)..spec.replicas).rev() {
        let Some(m) = at(target) else { return actions };
        if m.revision != spec.update_revision && !m.terminating {
            actions.push(Action::Delete(m.name.clone()));
            return actions;
        }
        if !m.healthy || m.terminating {
            return actions;
        }
    }
    actions
}

/// The ordinal in a member's name, if it is `<set>-<n>`.
pub fn ordinal_of(set: &str, pod: &str) -> Option<i32> {
    let n = pod.strip_prefix(set)?.strip_prefix('-')?;
    if n.is_empty() || (n.len() > 1 && n.starts_with('0')) || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}
