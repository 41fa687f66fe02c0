//! Expectations, as upstream's `ControllerExpectations`, keyed by pod name rather than counted:
//! a controller remembers the pods it created or deleted until its cache shows them, and does not
//! create or delete again for that owner meanwhile. Without this a sync that runs before the
//! watch delivers the new pods would see too few pods and create them twice.
//!
//! Names instead of counters make the check a question to the cache ("is pod x there yet?"), so
//! relists, coalesced watch events and out-of-order notifications cannot unbalance a counter.
//! Like upstream, an expectation lapses after [`TTL`], so a lost event cannot wedge an owner.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// How long an unmet expectation holds (upstream's `ExpectationsTimeout`).
pub const TTL: Duration = Duration::from_secs(5 * 60);

#[derive(Default)]
struct Pending {
    /// Pod keys created but not yet in the cache.
    adds: HashMap<String, Instant>,
    /// Pod keys deleted but still in the cache (and not yet Terminating).
    dels: HashMap<String, Instant>,
}

/// Expectations for every owner, by owner key.
#[derive(Default)]
pub struct Expectations {
    owners: Mutex<HashMap<String, Pending>>,
}

// === impl Expectations ===

impl Expectations {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Pending>> {
        // Critical sections only touch maps; a panic cannot leave them inconsistent.
        self.owners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `owner` created pod `pod` (a `namespace/name` key).
    pub fn created(&self, owner: &str, pod: String) {
        self.lock().entry(owner.to_string()).or_default().adds.insert(pod, Instant::now());
    }

    /// `owner` deleted pod `pod`.
    pub fn deleted(&self, owner: &str, pod: String) {
        self.lock().entry(owner.to_string()).or_default().dels.insert(pod, Instant::now());
    }

    /// Whether every creation and deletion of `owner` is visible: `seen(pod)` says whether the
    /// cache holds the pod as a live object (present and not Terminating). Met expectations are
    /// dropped.
    pub fn satisfied(&self, owner: &str, seen: impl Fn(&str) -> Option<bool>) -> bool {
        let mut owners = self.lock();
        let Some(p) = owners.get_mut(owner) else { return true };
        // A created pod is met once the cache has it, live or not.
        p.adds.retain(|pod, at| seen(pod).is_none() && at.elapsed() < TTL);
        // A deleted pod is met once the cache lost it or shows it Terminating.
        p.dels.retain(|pod, at| seen(pod) == Some(true) && at.elapsed() < TTL);
        let done = p.adds.is_empty() && p.dels.is_empty();
        if done {
            owners.remove(owner);
        }
        done
    }

    /// Forgets `owner` (it was deleted).
    pub fn forget(&self, owner: &str) {
        self.lock().remove(owner);
    }
}
