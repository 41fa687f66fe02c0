//! client-go's `flowcontrol.Backoff`, as the kubelet uses it for image pulls and sandbox
//! creation: per key, the first failure waits `initial`, each further one doubles the wait up to
//! `max`; an entry idle for more than twice `max` starts over.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// The kubelet's image pull backoff start (`imageBackOffPeriod`).
pub const IMAGE_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The kubelet's image pull backoff cap (`MaxImageBackOff`).
pub const IMAGE_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// Per-key exponential backoff.
#[derive(Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    entries: HashMap<String, Entry>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    backoff: Duration,
    last_update: Instant,
}

// === impl Backoff ===

impl Backoff {
    /// Starts at `initial`, caps at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self { initial, max, entries: HashMap::new() }
    }

    /// Records a failure at `now`; returns the wait before the next attempt.
    pub fn next(&mut self, key: &str, now: Instant) -> Duration {
        let backoff = match self.entries.get(key) {
            Some(e) if now.saturating_duration_since(e.last_update) <= self.max * 2 => {
                (e.backoff * 2).min(self.max)
            }
            _ => self.initial,
        };
        self.entries.insert(key.to_string(), Entry { backoff, last_update: now });
        backoff
    }

    /// Whether `key` must still wait at `now`; if so, until when.
    pub fn in_backoff_until(&self, key: &str, now: Instant) -> Option<Instant> {
        let e = self.entries.get(key)?;
        let until = e.last_update + e.backoff;
        (now < until).then_some(until)
    }

    /// Forgets `key` (after a success).
    pub fn reset(&mut self, key: &str) {
        self.entries.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_cap() {
        let mut b = Backoff::new(IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX);
        let mut now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..8 {
            let d = b.next("uid_nginx:typo", now);
            seen.push(d.as_secs());
            assert_eq!(b.in_backoff_until("uid_nginx:typo", now), Some(now + d));
            now += d;
            assert_eq!(b.in_backoff_until("uid_nginx:typo", now), None);
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
    }

    #[test]
    fn idle_entry_starts_over_and_reset() {
        let mut b = Backoff::new(IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_MAX);
        let now = Instant::now();
        b.next("k", now);
        b.next("k", now);
        assert_eq!(b.next("k", now + Duration::from_secs(601)), IMAGE_BACKOFF_INITIAL);
        b.reset("k");
        assert_eq!(b.in_backoff_until("k", now), None);
        assert_eq!(b.next("k", now), IMAGE_BACKOFF_INITIAL);
    }
}
