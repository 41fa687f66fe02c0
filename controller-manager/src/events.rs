//! Events the controllers record about the objects they act on, without holding up a sync:
//! each write runs on its own task, tracked with every other task so shutdown stops it too.

use netlab_client::{
    Client, Object,
    recorder::{EventType, Recorder},
};

use crate::tasks::Tasks;

/// One controller's recorder; clones share it (and its deduplication).
#[derive(Clone)]
pub struct Events {
    recorder: Recorder,
    tasks: Tasks,
}

// === impl Events ===

impl Events {
    /// Events with `source.component` = `component`.
    pub fn new(client: Client, component: &str, tasks: Tasks) -> Self {
        Self { recorder: Recorder::new(client, component, None), tasks }
    }

    /// Records an Event about `object` in the background.
    pub fn record<K: Object>(&self, object: &K, kind: EventType, reason: &'static str, message: String) {
        let (recorder, object) = (self.recorder.clone(), object.clone());
        self.tasks.spawn(async move { recorder.record(&object, kind, reason, &message).await });
    }
}
