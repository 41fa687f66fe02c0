//! A work queue with client-go's semantics: a key is queued at most once however often it is
//! added; a key being worked on is never handed to a second worker, and if it is added meanwhile
//! it is queued again when the first worker is done; failed keys come back after a per-key
//! exponential backoff. So one slow or failing object never stalls the others.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::Notify;

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
    shut: bool,
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
        let key = key.into();
        let mut s = self.lock();
        if s.shut || !s.dirty.insert(key.clone()) {
            return;
        }
        if !s.processing.contains(&key) {
            s.queue.push_back(key);
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues `key` after `delay`.
    pub fn add_after(&self, key: impl Into<String>, delay: Duration) {
        let key = key.into();
        let q = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            q.add(key);
        });
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
        self.add_after(key.to_string(), delay);
    }

    /// Clears `key`'s failure count after a success.
    pub fn forget(&self, key: &str) {
        self.lock().failures.remove(key);
    }

    /// The next key to work on; None once the queue is shut down.
    pub async fn next(&self) -> Option<String> {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.lock();
                if let Some(key) = s.queue.pop_front() {
                    s.dirty.remove(&key);
                    s.processing.insert(key.clone());
                    return Some(key);
                }
                if s.shut {
                    return None;
                }
            }
            notified.await;
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
        self.lock().shut = true;
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
    async fn failures_back_off() {
        let q = Queue::new();
        q.retry("x");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(q.next().await.unwrap(), "x");
        q.shut_down();
        assert_eq!(q.next().await, None);
    }
}
