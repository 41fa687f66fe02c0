//! Watches. Each watcher is its own task: it registers on the broadcast channel under the state's
//! read lock (so it misses nothing and sees nothing twice), replays the initial state or the
//! history since its resourceVersion, then forwards live events through its filter. Events are
//! forwarded in batches (everything ready when the stream is written), so a busy watcher costs one
//! message per wake-up, not one per event. A watcher that falls more than the channel's capacity
//! behind ends with [`Error::Expired`] and the client relists, as with the real watch cache.

use std::sync::Arc;

use netlab_proto::apiserver::v1::{EventType, Resource};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::state::{Event, Shared};
use crate::{
    error::{Error, Result},
    object::Stored,
    selector::{FieldSelector, LabelSelector},
};

/// How many batches may wait for the client before the watcher stops reading the channel.
const STREAM_BUFFER: usize = 16;

/// What a watch selects.
#[derive(Debug, Clone)]
pub struct WatchSpec {
    /// The resource watched.
    pub resource: Resource,
    /// One namespace, or "" for all.
    pub namespace: String,
    /// Label selector.
    pub labels: LabelSelector,
    /// Field selector.
    pub fields: FieldSelector,
    /// None: replay the current state as ADDED first. Some(rv): every change after rv.
    pub from: Option<u64>,
}

/// One event as one watcher sees it.
#[derive(Debug, Clone)]
pub struct Item {
    /// ADDED, MODIFIED, DELETED (as seen through the watcher's selectors).
    pub kind: EventType,
    /// The object.
    pub object: Arc<Stored>,
}

// === impl WatchSpec ===

impl WatchSpec {
    fn selects(&self, obj: &Stored) -> bool {
        obj.resource == self.resource
            && (self.namespace.is_empty() || obj.namespace == self.namespace)
            && self.labels.matches(&obj.labels)
            && self.fields.matches(&obj.value)
    }

    /// How this watcher sees an event: an object that moves into its selection is ADDED, one that
    /// moves out is DELETED.
    fn view(&self, event: &Event) -> Option<Item> {
        if event.object.resource != self.resource {
            return None;
        }
        let now = self.selects(&event.object);
        let before = event.prev.as_deref().is_some_and(|p| self.selects(p));
        let kind = match (event.kind, before, now) {
            (EventType::Added, _, true) => EventType::Added,
            (EventType::Modified, true, true) => EventType::Modified,
            (EventType::Modified, false, true) => EventType::Added,
            (EventType::Modified, true, false) => EventType::Deleted,
            (EventType::Deleted, b, n) if b || n => EventType::Deleted,
            _ => return None,
        };
        Some(Item { kind, object: event.object.clone() })
    }
}

/// Starts a watcher task; see the module doc.
pub(crate) fn start(
    shared: &Arc<Shared>,
    spec: WatchSpec,
    shutdown: CancellationToken,
) -> Result<mpsc::Receiver<Result<Vec<Item>>>> {
    let (initial, mut live, mut last) = {
        let state = shared.read();
        let live = shared.events.subscribe();
        let initial: Vec<Item> = match spec.from {
            None => state
                .iter(spec.resource, &spec.namespace)
                .filter(|o| spec.selects(o))
                .map(|o| Item { kind: EventType::Added, object: o.clone() })
                .collect(),
            Some(rv) if rv < state.oldest => {
                return Err(Error::Expired { requested: rv, oldest: state.oldest + 1 });
            }
            Some(rv) => state.since(rv).filter_map(|e| spec.view(e)).collect(),
        };
        (initial, live, state.revision)
    };
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    tokio::spawn(async move {
        if !initial.is_empty() && tx.send(Ok(initial)).await.is_err() {
            return;
        }
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
                ev = live.recv() => ev,
            };
            let mut batch = Vec::new();
            let mut next = Some(first);
            while let Some(ev) = next.take() {
                match ev {
                    Ok(event) => {
                        if event.object.rv > last {
                            last = event.object.rv;
                            batch.extend(spec.view(&event));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let _ = tx.send(Err(Error::Expired { requested: last, oldest: last + 1 })).await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                }
                if batch.len() < 4096 {
                    next = match live.try_recv() {
                        Ok(e) => Some(Ok(e)),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            Some(Err(broadcast::error::RecvError::Lagged(n)))
                        }
                        Err(_) => None,
                    };
                }
            }
            if !batch.is_empty() && tx.send(Ok(batch)).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
