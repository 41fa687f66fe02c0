//! client-go's `flowcontrol.Backoff`, as the kubelet uses it for image pulls, sandbox creation
//! and container restarts (CrashLoopBackOff): per key, the first failure waits `initial`, each
//! further one doubles the wait up to `max`; an entry idle for more than twice `max` starts over.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

/// The kubelet's image pull backoff start (`imageBackOffPeriod`).
pub const IMAGE_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The kubelet's image pull backoff cap (`MaxImageBackOff`).
pub const IMAGE_BACKOFF_MAX: Duration = Duration::from_secs(300);

/// The kubelet's container restart backoff start (`backOffPeriod`).
pub const CONTAINER_BACKOFF_INITIAL: Duration = Duration::from_secs(10);
/// The kubelet's container restart backoff cap (`MaxContainerBackOff`).
pub const CONTAINER_BACKOFF_MAX: Duration = Duration::from_secs(300);

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

    /// `IsInBackOffSince`: whether less than the current backoff has passed between
    /// `event` (a container's finish) and `now`; if so, until when. An entry idle for more than
    /// twice `max` at `event` does not count.
    pub fn in_backoff_since(&self, key: &str, event: Instant, now: Instant) -> Option<Instant> {
        let e = self.entries.get(key)?;
        if event.saturating_duration_since(e.last_update) > self.max * 2 {
            return None;
        }
        let until = event + e.backoff;
        (now < until).then_some(until)
    }

    /// `Get`: the current wait for `key` (zero if none).
    pub fn get(&self, key: &str) -> Duration {
        self.entries.get(key).map_or(Duration::ZERO, |e| e.backoff)
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
    fn crash_loop_waits_from_the_finish() {
        let mut b = Backoff::new(CONTAINER_BACKOFF_INITIAL, CONTAINER_BACKOFF_MAX);
        let t0 = Instant::now();
        // First death: no entry, restart at once; the entry now holds 10 s.
        assert_eq!(b.in_backoff_since("c", t0, t0), None);
        assert_eq!(b.next("c", t0), Duration::from_secs(10));
        // Second death 3 s later: back-off until 10 s after that finish.
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(b.in_backoff_since("c", t1, t1), Some(t1 + Duration::from_secs(10)));
        assert_eq!(b.get("c"), Duration::from_secs(10));
        let later = t1 + Duration::from_secs(10);
        assert_eq!(b.in_backoff_since("c", t1, later), None);
        assert_eq!(b.next("c", t1), Duration::from_secs(20));
        // A death long after the last one (more than 2 × max) is a fresh start.
        let much_later = t1 + Duration::from_secs(601);
        assert_eq!(b.in_backoff_since("c", much_later, much_later), None);
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
