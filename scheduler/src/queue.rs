//! The scheduling queue, after kube-scheduler's PriorityQueue: pods to try now (active, first in
//! first out), pods waiting out a backoff, and pods that fit nowhere (unschedulable). An
//! unschedulable pod is not retried until something changes that could make it fit (a node is
//! added or changes, a pod leaves a node); then it goes back to active, or to backoff if its
//! backoff (1 s doubling to 10 s per failed attempt) has not run out, so a busy cluster cannot
//! make it spin. A pod left unschedulable for 5 minutes is retried anyway
//! (`podMaxInUnschedulablePodsDuration`).
//!
//! Time is passed in, so the queue is a pure data structure.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, VecDeque},
    time::{Duration, Instant},
};

/// `podInitialBackoffSeconds`.
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// `podMaxBackoffSeconds`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// `podMaxInUnschedulablePodsDuration`.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(300);
/// How often unschedulable pods are checked against [`MAX_UNSCHEDULABLE`] (upstream: 30 s).
pub const LEFTOVER_FLUSH: Duration = Duration::from_secs(30);

/// Where a pod waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    /// Until this instant.
    Backoff(Instant),
    /// Since this instant.
    Unschedulable(Instant),
    /// Taken off by `pop`, being decided.
    Popped,
}

#[derive(Debug)]
struct Entry {
    place: Place,
    /// Failed attempts so far (the backoff grows with them).
    attempts: u32,
}

/// See the module doc. Keys are `namespace/name`.
#[derive(Debug, Default)]
pub struct Queue {
    entries: HashMap<String, Entry>,
    /// May hold stale keys (moved or removed since); `pop` skips them.
    active: VecDeque<String>,
    /// Min-heap of (ready at, key); may hold stale entries too.
    backoff: BinaryHeap<Reverse<(Instant, String)>>,
    last_leftover_flush: Option<Instant>,
}

// === impl Queue ===

impl Queue {
    /// A new pending pod: try it now. A pod already queued stays where it is.
    pub fn add(&mut self, key: &str) {
        if !self.entries.contains_key(key) {
            self.entries.insert(key.into(), Entry { place: Place::Active, attempts: 0 });
            self.active.push_back(key.into());
        }
    }

    /// The next pod to try, taken off the queue (put it back with [`Queue::unschedulable`] or
    /// [`Queue::backoff`], or leave it off once it is assumed).
    pub fn pop(&mut self) -> Option<String> {
        while let Some(key) = self.active.pop_front() {
            if let Some(e) = self.entries.get_mut(&key)
                && e.place == Place::Active
            {
                // Off the queue; its attempts are kept until `remove`.
                e.place = Place::Popped;
                return Some(key);
            }
        }
        None
    }

    /// Whether a pod waits in active (drops stale keys from the front on the way).
    pub fn has_active(&mut self) -> bool {
        while let Some(key) = self.active.front() {
            if self.entries.get(key).is_some_and(|e| e.place == Place::Active) {
                return true;
            }
            self.active.pop_front();
        }
        false
    }

    /// The pod fit nowhere at `now`.
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let e = self.entries.entry(key.into()).or_insert(Entry { place: Place::Active, attempts: 0 });
        e.attempts += 1;
        e.place = Place::Unschedulable(now);
    }

    /// The attempt failed for another reason (the binding failed): retry after the backoff.
    pub fn backoff(&mut self, key: &str, now: Instant) {
        let e = self.entries.entry(key.into()).or_insert(Entry { place: Place::Active, attempts: 0 });
        e.attempts += 1;
        let until = now + backoff_for(e.attempts);
        e.place = Place::Backoff(until);
        self.backoff.push(Reverse((until, key.into())));
    }

    /// The pod is bound, deleted, or no longer ours.
    pub fn remove(&mut self, key: &str) {
        self.entries.remove(key);
    }

    /// Something changed that may let one pod fit (its own spec changed).
    pub fn activate(&mut self, key: &str, now: Instant) {
        if let Some(e) = self.entries.get(key)
            && matches!(e.place, Place::Unschedulable(_))
        {
            self.requeue(key.to_string(), now);
        }
    }

    /// Something changed that may let unschedulable pods fit: each goes to active, or to backoff
    /// until its backoff runs out. Returns how many moved.
    pub fn move_all_unschedulable(&mut self, now: Instant) -> usize {
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| matches!(e.place, Place::Unschedulable(_)))
            .map(|(k, _)| k.clone())
            .collect();
        let n = keys.len();
        for key in keys {
            self.requeue(key, now);
        }
        n
    }

    /// Moves pods whose backoff ran out to active, and pods unschedulable for longer than
    /// [`MAX_UNSCHEDULABLE`] (checked every [`LEFTOVER_FLUSH`]).
    pub fn flush(&mut self, now: Instant) {
        while let Some(Reverse((until, _))) = self.backoff.peek() {
            if *until > now {
                break;
            }
            let Some(Reverse((until, key))) = self.backoff.pop() else { break };
            if let Some(e) = self.entries.get_mut(&key)
                && e.place == Place::Backoff(until)
            {
                e.place = Place::Active;
                self.active.push_back(key);
            }
        }
        let due = self.last_leftover_flush.is_none_or(|t| now.duration_since(t) >= LEFTOVER_FLUSH);
        if due {
            self.last_leftover_flush = Some(now);
            let stale: Vec<String> = self
                .entries
                .iter()
                .filter(|(_, e)| {
                    matches!(e.place, Place::Unschedulable(t) if now.duration_since(t) >= MAX_UNSCHEDULABLE)
                })
                .map(|(k, _)| k.clone())
                .collect();
            for key in stale {
                self.requeue(key, now);
            }
        }
    }

    /// When [`Queue::flush`] next has work: the earliest backoff, or the next leftover check
    /// while pods are unschedulable.
    pub fn next_wake(&self) -> Option<Instant> {
        let backoff = self.backoff.peek().map(|Reverse((t, _))| *t);
        let leftover = self
            .entries
            .values()
            .any(|e| matches!(e.place, Place::Unschedulable(_)))
            .then(|| self.last_leftover_flush.map(|t| t + LEFTOVER_FLUSH))
            .flatten();
        match (backoff, leftover) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// (active, backoff, unschedulable) counts, for progress logs.
    pub fn lens(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for e in self.entries.values() {
            match e.place {
                Place::Active => counts.0 += 1,
                Place::Backoff(_) => counts.1 += 1,
                Place::Unschedulable(_) => counts.2 += 1,
                Place::Popped => {}
            }
        }
        counts
    }

    fn requeue(&mut self, key: String, now: Instant) {
        let Some(e) = self.entries.get_mut(&key) else { return };
        let Place::Unschedulable(since) = e.place else { return };
        let until = since + backoff_for(e.attempts);
        if until <= now {
            e.place = Place::Active;
            self.active.push_back(key);
        } else {
            e.place = Place::Backoff(until);
            self.backoff.push(Reverse((until, key)));
        }
    }
}

/// The backoff after `attempts` failures: 1 s, 2 s, 4 s, 8 s, then 10 s.
pub fn backoff_for(attempts: u32) -> Duration {
    let exp = attempts.saturating_sub(1).min(16);
    (INITIAL_BACKOFF * 2u32.pow(exp)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_come_out_in_order_once() {
        let mut q = Queue::default();
        q.add("a");
        q.add("b");
        q.add("a");
        assert_eq!(q.pop().as_deref(), Some("a"));
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_change_and_their_backoff() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("a");
        q.pop();
        q.unschedulable("a", t0);
        q.flush(t0 + Duration::from_secs(20));
        assert_eq!(q.pop(), None, "no change: no retry (and no spinning)");
        // A change right away: the 1 s backoff still holds it.
        assert_eq!(q.move_all_unschedulable(t0 + Duration::from_millis(100)), 1);
        assert_eq!(q.pop(), None);
        assert_eq!(q.next_wake(), Some(t0 + Duration::from_secs(1)));
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("a"));
        // Second failure: 2 s of backoff; a change after it moves the pod straight to active.
        let t1 = t0 + Duration::from_secs(2);
        q.unschedulable("a", t1);
        q.move_all_unschedulable(t1 + Duration::from_secs(3));
        assert_eq!(q.pop().as_deref(), Some("a"));
    }

    #[test]
    fn a_popped_pod_is_not_moved_by_events() {
        let mut q = Queue::default();
        q.add("a");
        q.pop();
        assert_eq!(q.move_all_unschedulable(Instant::now()), 0);
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn pods_unschedulable_for_five_minutes_are_retried() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("a");
        q.pop();
        q.flush(t0);
        q.unschedulable("a", t0);
        q.flush(t0 + Duration::from_secs(60));
        assert_eq!(q.pop(), None);
        q.flush(t0 + MAX_UNSCHEDULABLE + LEFTOVER_FLUSH);
        assert_eq!(q.pop().as_deref(), Some("a"));
    }

    #[test]
    fn removed_pods_are_skipped_and_backoff_grows() {
        let mut q = Queue::default();
        let t0 = Instant::now();
        q.add("a");
        q.add("b");
        q.remove("a");
        assert_eq!(q.pop().as_deref(), Some("b"));
        q.backoff("b", t0);
        q.flush(t0 + Duration::from_millis(999));
        assert_eq!(q.pop(), None);
        q.flush(t0 + Duration::from_secs(1));
        assert_eq!(q.pop().as_deref(), Some("b"));
        assert_eq!(backoff_for(1), Duration::from_secs(1));
        assert_eq!(backoff_for(3), Duration::from_secs(4));
        assert_eq!(backoff_for(9), MAX_BACKOFF);
    }
}
