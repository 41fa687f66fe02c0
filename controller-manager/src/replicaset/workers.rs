//! The worker loop every workload controller runs: take a key off the [`Queue`], reconcile it,
//! forget its failures on success (requeueing it later if the reconcile asked to), retry it with
//! backoff on failure. Several workers share one queue, which never hands a key to two at once.

use std::{future::Future, sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{Result, queue::Queue};

/// A controller's reconcile of one key.
pub trait Reconcile: Send + Sync + 'static {
    /// The controller's name, for logs.
    const NAME: &'static str;

    /// Brings the object `key` names to its desired state. `Ok(Some(d))` asks for another look
    /// after `d` (a pod becoming available after `minReadySeconds`, a progress deadline).
    fn reconcile(&self, key: &str) -> impl Future<Output = Result<Option<Duration>>> + Send;
}

/// Starts `n` workers on `queue` once `synced` completes (the controller's caches have their
/// first lists: nothing is decided from a partial view), unless `shutdown` fires first.
pub fn spawn_when_synced<R: Reconcile>(
    synced: impl std::future::Future<Output = ()> + Send + 'static,
    r: Arc<R>,
    queue: Queue,
    n: usize,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = synced => spawn(r, queue, n, shutdown),
        }
    });
}

/// Starts `n` workers on `queue`; they stop when the queue shuts down or `shutdown` fires.
pub fn spawn<R: Reconcile>(r: Arc<R>, queue: Queue, n: usize, shutdown: CancellationToken) {
    for _ in 0..n.max(1) {
        let (r, queue, shutdown) = (r.clone(), queue.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                let key = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    key = queue.next() => match key { Some(k) => k, None => return },
                };
                match r.reconcile(&key).await {
                    Ok(after) => {
                        queue.forget(&key);
                        if let Some(d) = after {
                            queue.add_after(key.clone(), d);
                        }
                    }
                    Err(crate::Error::Api(e)) if e.is_conflict() || e.is_not_found() => {
                        // A stale cache: the watch brings the new state; look again soon.
                        tracing::debug!(controller = R::NAME, %key, error = %e, "Stale object; retrying.");
                        queue.retry(&key);
                    }
                    Err(error) => {
                        tracing::warn!(controller = R::NAME, %key, %error, "Sync failed; retrying.");
                        queue.retry(&key);
                    }
                }
                queue.done(&key);
            }
        });
    }
}
