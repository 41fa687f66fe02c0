//! When a sync may run: upstream's `BoundedFrequencyRunner` (`pkg/util/async`), the timing
//! half of kube-proxy's sync loop, apart from what a sync does.
//!
//! A run happens when one is requested, but at most `burst` times in a row and then once per
//! `min_interval` (a token bucket, upstream's flowcontrol limiter), so a burst of changes costs
//! one or two runs, not one each; at least once per `max_interval` whether requested or not;
//! and, after a failed run, again after `retry`, and not before.

use std::time::Duration;

use tokio::{sync::Notify, time::Instant};
use tokio_util::sync::CancellationToken;

/// The runner's timing.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// At most one run per this, after a burst (`--iptables-min-sync-period`).
    pub min_interval: Duration,
    /// A run at least this often (`--iptables-sync-period`).
    pub max_interval: Duration,
    /// Runs allowed back to back before `min_interval` applies (upstream: 2).
    pub burst: u32,
    /// Wait after a failed run.
    pub retry: Duration,
}

// === impl Settings ===

impl Settings {
    /// Upstream's burst of 2, and a retry after `min_interval` but at least a second.
    pub fn new(min_interval: Duration, max_interval: Duration) -> Self {
        Self { min_interval, max_interval, burst: 2, retry: min_interval.max(Duration::from_secs(1)) }
    }
}

/// Why a run is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Work was requested.
    Requested,
    /// `max_interval` has passed since the last periodic run (or there was none yet).
    MaxInterval,
    /// The retry after a failed run.
    Retry,
}

/// A token bucket: `burst` tokens, one more every `every` (upstream's flowcontrol limiter).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    burst: f64,
    every: Duration,
    last: Instant,
}

// === impl Bucket ===

impl Bucket {
    fn new(burst: u32, every: Duration) -> Self {
        let burst = f64::from(burst.max(1));
        Self { tokens: burst, burst, every, last: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        if self.every.is_zero() {
            self.tokens = self.burst;
        } else {
            let add = now.saturating_duration_since(self.last).as_secs_f64() / self.every.as_secs_f64();
            self.tokens = (self.tokens + add).min(self.burst);
        }
        self.last = now;
    }

    fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be there.
    fn ready_at(&self, now: Instant) -> Instant {
        if self.tokens >= 1.0 || self.every.is_zero() {
            return now;
        }
        now + self.every.mul_f64(1.0 - self.tokens)
    }
}

/// The runner: it decides when; the caller runs, and reports how it went.
#[derive(Debug)]
pub struct BoundedFrequencyRunner {
    settings: Settings,
    bucket: Bucket,
    /// The last run that counts for `max_interval`.
    last_periodic: Option<Instant>,
    /// When to retry a failed run.
    retry_at: Option<Instant>,
}

// === impl BoundedFrequencyRunner ===

impl BoundedFrequencyRunner {
    /// A runner that has not run yet (so its first run is due at once).
    pub fn new(settings: Settings) -> Self {
        Self {
            bucket: Bucket::new(settings.burst, settings.min_interval),
            settings,
            last_periodic: None,
            retry_at: None,
        }
    }

    /// The timing.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// When a failed run will be retried (None: the last run did not fail).
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Waits until a run is due and the rate limit lets it happen; None once `shutdown` fires.
    /// `wake` is notified when work may have been requested; `requested` says whether it was
    /// (None: nothing may run yet at all, not even a periodic run or a retry).
    pub async fn wait(
        &mut self,
        wake: &Notify,
        requested: impl Fn() -> Option<bool>,
        shutdown: &CancellationToken,
    ) -> Option<Due> {
        loop {
            let at = requested().and_then(|r| self.next_wake(Instant::now(), r));
            tokio::select! {
                // Shutdown first: a run that is due as well is not started.
                biased;
                _ = shutdown.cancelled() => return None,
                _ = wake.notified() => {}
                _ = sleep_until(at) => {}
            }
            let now = Instant::now();
            let Some(due) = requested().and_then(|r| self.due(now, r)) else { continue };
            if self.bucket.take(now) {
                return Some(due);
            }
        }
    }

    /// The run went through; `periodic` if it counts for `max_interval` (it did everything a
    /// periodic run does).
    pub fn succeeded(&mut self, now: Instant, periodic: bool) {
        self.retry_at = None;
        if periodic {
            self.last_periodic = Some(now);
        }
    }

    /// The run failed: the next one is the retry, `retry` from `now`.
    pub fn failed(&mut self, now: Instant) {
        self.retry_at = Some(now + self.settings.retry);
    }

    /// Whether a run is due at `now`. While a retry is pending, only the retry is.
    pub fn due(&self, now: Instant, requested: bool) -> Option<Due> {
        if let Some(at) = self.retry_at {
            return (now >= at).then_some(Due::Retry);
        }
        if self.last_periodic.is_none_or(|t| now >= t + self.settings.max_interval) {
            return Some(Due::MaxInterval);
        }
        requested.then_some(Due::Requested)
    }

    /// When to look again without being woken: at the retry, at the next token if work is
    /// waiting, at the next periodic run.
    fn next_wake(&self, now: Instant, requested: bool) -> Option<Instant> {
        if let Some(at) = self.retry_at {
            return Some(at);
        }
        let periodic = self.last_periodic.map_or(now, |t| t + self.settings.max_interval);
        if requested {
            return Some(self.bucket.ready_at(now).min(periodic));
        }
        Some(periodic)
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;

    fn runner() -> BoundedFrequencyRunner {
        BoundedFrequencyRunner::new(Settings::new(Duration::from_secs(1), Duration::from_secs(30)))
    }

    /// Runs `r` until `shutdown`, noting when each run happened and why.
    async fn count_runs(
        mut r: BoundedFrequencyRunner,
        wake: Arc<Notify>,
        pending: Arc<AtomicBool>,
        shutdown: CancellationToken,
        runs: Arc<std::sync::Mutex<Vec<(Instant, Due)>>>,
    ) {
        while let Some(due) = r.wait(&wake, || Some(pending.load(Ordering::Acquire)), &shutdown).await {
            pending.store(false, Ordering::Release);
            let now = Instant::now();
            runs.lock().unwrap().push((now, due));
            r.succeeded(now, due != Due::Requested);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn bursts_are_bounded_and_the_max_interval_runs_anyway() {
        let (wake, pending, stop) =
            (Arc::new(Notify::new()), Arc::new(AtomicBool::new(false)), CancellationToken::new());
        let runs = Arc::new(std::sync::Mutex::new(Vec::new()));
        let start = Instant::now();
        tokio::spawn(count_runs(runner(), wake.clone(), pending.clone(), stop.clone(), runs.clone()));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(runs.lock().unwrap().len(), 1, "the first run is due at once");
        assert_eq!(runs.lock().unwrap()[0].1, Due::MaxInterval);

        // 50 requests in 100 ms: the burst's one token left, then one per second.
        for _ in 0..50 {
            pending.store(true, Ordering::Release);
            wake.notify_one();
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        let requested = runs.lock().unwrap().iter().filter(|(_, d)| *d == Due::Requested).count();
        assert!((1..=2).contains(&requested), "{requested} runs for 50 requests");

        // Nothing requested: the next run comes with the max interval.
        tokio::time::sleep(Duration::from_secs(30)).await;
        let last = *runs.lock().unwrap().last().unwrap();
        assert_eq!(last.1, Due::MaxInterval);
        assert_eq!(last.0 - start, Duration::from_secs(30));
        stop.cancel();
    }

    #[test]
    fn a_failed_run_is_retried_after_retry_and_nothing_runs_before() {
        let mut r = runner();
        let t0 = Instant::now();
        assert_eq!(r.due(t0, false), Some(Due::MaxInterval), "never ran");
        r.succeeded(t0, true);
        assert_eq!(r.due(t0, false), None);
        assert_eq!(r.due(t0, true), Some(Due::Requested));
        r.failed(t0);
        assert_eq!(r.retry_at(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(r.due(t0 + Duration::from_millis(500), true), None, "requested work waits for the retry");
        assert_eq!(r.due(t0 + Duration::from_secs(1), false), Some(Due::Retry));
        r.succeeded(t0 + Duration::from_secs(1), true);
        assert_eq!(r.retry_at(), None);
        assert_eq!(r.due(t0 + Duration::from_secs(31), false), Some(Due::MaxInterval));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_runs_while_not_ready() {
        let mut r = runner();
        let (wake, stop) = (Notify::new(), CancellationToken::new());
        let waited =
            tokio::time::timeout(Duration::from_secs(3600), r.wait(&wake, || None::<bool>, &stop)).await;
        assert!(waited.is_err(), "no run, not even the periodic one");
        stop.cancel();
        assert_eq!(r.wait(&wake, || Some(true), &stop).await, None, "shutdown ends the wait");
    }
}
