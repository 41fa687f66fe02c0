//! A work queue with client-go's semantics: a key is queued at most once however often it is
//! added; a key being worked on is never handed to a second worker, and if it is added meanwhile
//! it is queued again when the first worker is done; failed keys come back after a per-key
//! exponential backoff. So one slow or failing object never stalls the others.
//!
//! Delayed keys (a backoff, a requeue after a duration) wait inside the queue, as client-go's
//! delaying queue holds them, and workers waiting for a key also wait for the earliest of them:
//! the queue starts no task of its own, so nothing outlives the workers.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

/// First retry delay after a failure.
const BASE_DELAY: Duration = Duration::from_millis(5);
/// Longest retry delay.
const MAX_DELAY: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    queue: VecDeque<String>,
    dirty: HashSet<String>,
    processing: HashSet<String>,
    failures: HashMap<String, u32>,
    /// Keys to add once their time comes, earliest first; an entry whose time is not the key's
    /// in `delayed_at` was superseded by an earlier one.
    delayed: BinaryHeap<Reverse<(Instant, String)>>,
    /// When each delayed key is due: a key is delayed once, to the earliest time asked.
    delayed_at: HashMap<String, Instant>,
    shut: bool,
}

// === impl State ===

impl State {
    /// Queues `key` unless it is already waiting; whether a worker should be woken.
    fn add(&mut self, key: String) -> bool {
        if self.shut || !self.dirty.insert(key.clone()) {
            return false;
        }
        if self.processing.contains(&key) {
            return false;
        }
        self.queue.push_back(key);
        true
    }

    /// Adds the delayed keys whose time has come; the time of the next one.
    fn promote(&mut self, now: Instant) -> Option<Instant> {
        while let Some(Reverse((at, _))) = self.delayed.peek() {
            if *at > now {
                return Some(*at);
            }
            if let Some(Reverse((at, key))) = self.delayed.pop()
                && self.delayed_at.get(&key) == Some(&at)
            {
                self.delayed_at.remove(&key);
                self.add(key);
            }
        }
        None
    }
}

/// The queue; clones share it.
#[derive(Clone, Default)]
pub struct Queue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

// === impl Queue ===

impl Queue {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is only mutated in small, panic-free sections.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `key` unless it is already waiting.
    pub fn add(&self, key: impl Into<String>) {
        let woken = self.lock().add(key.into());
        if woken {
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        {
            let mut s = self.lock();
            let (key, at) = (key.into(), Instant::now() + delay);
            if s.shut || s.delayed_at.get(&key).is_some_and(|due| *due <= at) {
                return;
            }
            s.delayed_at.insert(key.clone(), at);
            s.delayed.push(Reverse((at, key)));
        }
        // Waiting workers may sleep until a later key: they look again.
        self.notify.notify_waiters();
    }

    /// Queues `key` again after its backoff (5 ms, doubling per consecutive failure, up to 60 s).
    pub fn retry(&self, key: &str) {
        let n = {
            let mut s = self.lock();
            let n = s.failures.entry(key.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        let delay = BASE_DELAY.saturating_mul(1u32 << n.min(20)).min(MAX_DELAY);
        self.add_after(key, delay);
    }

    /// Clears `key`'s failure count after a success.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// The next key to work on; None once the queue is shut down.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            let wake_at = {
                let mut s = self.lock();
                let wake_at = s.promote(Instant::now());
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    return Some(key);
                }
                if s.shut {
                    return None;
                }
                wake_at
            };
            match wake_at {
                Some(at) => {
                    tokio::select! {
                        _ = notified => {}
                        _ = tokio::time::sleep_until(at) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` done; if it was added while being worked on, it is queued again.
    pub fn done(&self, key: &str) {
        let mut s = self.lock();
        s.processing.remove(key);
        if s.dirty.contains(key) {
            s.queue.push_back(key.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Stops handing out keys; waiting workers get None.
    pub fn shut_down(&self) {
        let mut s = self.lock();
        s.shut = true;
        s.delayed.clear();
        s.delayed_at.clear();
        drop(s);
        self.notify.notify_waiters();
    }

    /// Number of keys waiting.
    pub fn len(&self) -> usize {
        self.lock().queue.len()
    }

    /// Whether no key is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keys_are_deduplicated_and_never_worked_twice_at_once() {
        let q = Queue::new();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.len(), 2);
        let first = q.next().await.unwrap();
        assert_eq!(first, "a");
        q.add("a"); // added while being processed: held back
        assert_eq!(q.next().await.unwrap(), "b");
        assert!(q.is_empty());
        q.done("a");
        assert_eq!(q.next().await.unwrap(), "a", "requeued once the first worker is done");
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_keys_come_in_time_order_without_a_task_of_their_own() {
        let q = Queue::new();
        q.add_after("late", Duration::from_secs(10));
        q.add_after("soon", Duration::from_secs(1));
        let start = Instant::now();
        assert_eq!(q.next().await.unwrap(), "soon");
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        // A worker already waiting for "late" is woken for a key added meanwhile.
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        q.add("now");
        assert_eq!(waiting.await.unwrap().unwrap(), "now");
        assert_eq!(q.next().await.unwrap(), "late");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
        q.add_after("never", Duration::from_secs(1));
        q.shut_down();
        assert_eq!(q.next().await, None, "delayed keys die with the queue");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_back_off() {
        let q = Queue::new();
        q.retry("x");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.next().await.unwrap(), "x");
        q.shut_down();
        assert_eq!(q.next().await, None);
    }
}
