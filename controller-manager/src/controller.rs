//! The one runner every queue-driven controller of this crate runs on, shaped as kube-runtime's
//! `Controller::new(main).owns(child).watches(..).run(reconcile, error_policy)`:
//!
//! - once every watched cache holds its first list (nothing is decided from a partial view),
//!   an optional priming step runs (an index built from the caches, keys found by a scan);
//! - then each watched kind's changes, held in their channels meanwhile, are mapped to the keys
//!   of the primary objects they concern (the primary kind's own key; an owned object's owner)
//!   and queued on one [`Queue`], and `N` workers start;
//! - a worker takes a key, [`Reconcile::reconcile`]s it, forgets its failures on success (and
//!   queues it again after the delay the reconcile asked for), and on failure hands the error to
//!   [`Reconcile::error_policy`] and queues the key again after its rate-limited backoff.
//!
//! Every task is spawned on the controller-manager's [`Tasks`], so shutdown stops them all.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use netlab_client::{
    Object, key_of,
    reflector::{Cache, Change},
};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::{Context, pod, queue::Queue, tasks::Tasks};

/// A controller's reconcile of one key, and what to do when it fails.
pub trait Reconcile: Send + Sync + 'static {
    /// The controller's name, for logs.
    const NAME: &'static str;

    /// Why a reconcile failed.
    type Error: ReconcileError;

    /// Brings the object `key` names to its desired state. `Ok(Some(d))` asks for another look
    /// after `d` (a pod becoming available after `minReadySeconds`, a progress deadline).
    fn reconcile(&self, key: &str) -> impl Future<Output = Result<Option<Duration>, Self::Error>> + Send;

    /// Says why `key` failed (the key is then retried after its backoff whatever this says):
    /// quietly if the cache was only behind, else with a warning.
    fn error_policy(&self, key: &str, error: &Self::Error) {
        if error.is_stale() {
            tracing::debug!(controller = Self::NAME, %key, %error, "Stale object; retrying.");
        } else {
            tracing::warn!(controller = Self::NAME, %key, %error, "Sync failed; retrying.");
        }
    }
}

/// What the default [`Reconcile::error_policy`] asks of an error.
pub trait ReconcileError: std::fmt::Display + Send + 'static {
    /// Whether the error only means the cache was behind (a write with its resourceVersion got
    /// Conflict, the object was gone): the watch is about to bring the news, so it is no warning.
    fn is_stale(&self) -> bool {
        false
    }
}

impl ReconcileError for crate::Error {
    fn is_stale(&self) -> bool {
        matches!(self, crate::Error::Api(e) if e.is_conflict() || e.is_not_found())
    }
}

type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A controller being assembled; [`Controller::run`] starts it.
pub struct Controller<R> {
    reconciler: Arc<R>,
    queue: Queue,
    /// Resolve once each watched cache has its first list.
    synced: Vec<Task>,
    /// Move each watched kind's changes onto the queue.
    triggers: Vec<Task>,
    /// Runs once every cache has synced, before the workers start; returns keys to queue.
    prime: Option<Box<dyn FnOnce() -> Vec<String> + Send>>,
}

// === impl Controller ===

impl<R: Reconcile> Controller<R> {
    /// A controller reconciling with `reconciler`, on its own queue.
    pub fn new(reconciler: Arc<R>) -> Self {
        Self { reconciler, queue: Queue::new(), synced: Vec::new(), triggers: Vec::new(), prime: None }
    }

    /// A controller of the `P`s, which create and control `C`s (a ReplicaSet's pods): `new`,
    /// `primary` and `owns` over a reflector for every `P` and every `C` on `ctx`. `build` makes
    /// the reconciler from the two caches; `adopters` names the `P`s that would adopt an orphan.
    pub fn owning<P: Object, C: Object>(
        ctx: &Context,
        build: impl FnOnce(Cache<P>, Cache<C>) -> R,
        adopters: fn(&R, &C) -> Vec<Arc<P>>,
    ) -> Self {
        let (primaries, primary_changes) = ctx.reflector::<P>(Default::default());
        let (owned, owned_changes) = ctx.reflector::<C>(Default::default());
        let reconciler = Arc::new(build(primaries.clone(), owned.clone()));
        let owner = reconciler.clone();
        Self::new(reconciler)
            .primary(&primaries, primary_changes)
            .owns(&owned, owned_changes, move |child| adopters(&owner, child))
    }

    /// The primary kind: every change queues the object's own key.
    pub fn primary<K: Object>(self, cache: &Cache<K>, changes: UnboundedReceiver<Change<K>>) -> Self {
        self.watches(cache, changes, |change| vec![change.key()])
    }

    /// A kind the primary kind `P` creates and controls (kube-runtime's `owns`): a change queues
    /// the object's controller if that is a `P`; an orphan's change queues the `P`s `adopters`
    /// names (those that would adopt it); a deleted orphan, or an object another kind controls,
    /// queues nothing.
    pub fn owns<P: Object, C: Object>(
        self,
        cache: &Cache<C>,
        changes: UnboundedReceiver<Change<C>>,
        adopters: impl Fn(&C) -> Vec<Arc<P>> + Send + 'static,
    ) -> Self {
        self.watches(cache, changes, move |change| owners(change, &adopters))
    }

    /// Another kind (an owned kind, or any the reconcile reads): `map` names the primary keys a
    /// change concerns. It runs on one task per kind, in the order the changes came, so it may
    /// also keep indexes the reconcile reads.
    pub fn watches<K: Object>(
        self,
        cache: &Cache<K>,
        changes: UnboundedReceiver<Change<K>>,
        map: impl FnMut(&Change<K>) -> Vec<String> + Send + 'static,
    ) -> Self {
        let cache = cache.clone();
        self.trigger(async move { cache.wait_synced().await }, changes, map)
    }

    /// `map`ped changes onto the queue, with `synced` resolving at the first list.
    fn trigger<K: Send + Sync + 'static>(
        mut self,
        synced: impl Future<Output = ()> + Send + 'static,
        mut changes: UnboundedReceiver<Change<K>>,
        mut map: impl FnMut(&Change<K>) -> Vec<String> + Send + 'static,
    ) -> Self {
        let queue = self.queue.clone();
        self.synced.push(Box::pin(synced));
        self.triggers.push(Box::pin(async move {
            while let Some(change) = changes.recv().await {
                for key in map(&change) {
                    queue.add(key);
                }
            }
        }));
        self
    }

    /// Runs `prime` once every cache has its first list, before any change is mapped or any
    /// worker starts (to build an index from the caches, or queue what the lists found); the
    /// keys it returns are queued.
    pub fn on_synced(mut self, prime: impl FnOnce() -> Vec<String> + Send + 'static) -> Self {
        self.prime = Some(Box::new(prime));
        self
    }

    /// Once the caches have synced and the priming step has run, starts the triggers and
    /// `workers` workers, all on `tasks`.
    pub fn run(self, tasks: &Tasks, workers: usize) {
        let Self { reconciler, queue, synced, triggers, prime } = self;
        let spawner = tasks.clone();
        tasks.spawn(async move {
            for synced in synced {
                synced.await;
            }
            if let Some(prime) = prime {
                for key in prime() {
                    queue.add(key);
                }
            }
            for trigger in triggers {
                spawner.spawn(trigger);
            }
            for _ in 0..workers.max(1) {
                spawner.spawn(work(reconciler.clone(), queue.clone(), spawner.gate().clone()));
            }
        });
    }
}

/// The keys of the `P`s an owned object's change concerns (see [`Controller::owns`]).
fn owners<P: Object, C: Object>(change: &Change<C>, adopters: impl Fn(&C) -> Vec<Arc<P>>) -> Vec<String> {
    let object = change.object();
    let meta = object.metadata();
    match pod::controller_of(meta) {
        Some(owner) if owner.kind == P::KIND => {
            vec![format!("{}/{}", meta.namespace.as_deref().unwrap_or_default(), owner.name)]
        }
        Some(_) => Vec::new(),
        None if matches!(change, Change::Deleted(_)) => Vec::new(),
        None => adopters(object).iter().map(|p| key_of(p.as_ref())).collect(),
    }
}

/// One worker: reconciles keys off `queue` until it shuts down.
async fn work<R: Reconcile>(reconciler: Arc<R>, queue: Queue, gate: netlab_faults::Gate) {
    while let Some(key) = queue.next().await {
        // A stopped or paused controller-manager reconciles nothing; the key waits its turn.
        gate.ready().await;
        match reconciler.reconcile(&key).await {
            Ok(after) => {
                queue.forget(&key);
                if let Some(delay) = after {
                    queue.add_after(key.as_str(), delay);
                }
            }
            Err(error) => {
                reconciler.error_policy(&key, &error);
                queue.retry(&key);
            }
        }
        queue.done(&key);
    }
}

#[cfg(test)]
mod tests;
