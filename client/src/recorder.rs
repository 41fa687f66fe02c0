//! Recording Kubernetes Events, as client-go's event recorder does: an Event object per
//! (object, reason, message), named `<object>.<unique hex>`, whose `count` and `lastTimestamp`
//! grow when the same thing happens again (the `x3 over 2m` that `describe` shows).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use jiff::Timestamp;
use k8s_openapi::{
    api::core::v1::{Event, EventSource, ObjectReference},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time},
};

use crate::{Client, Object};

/// `Normal` or `Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Things going as planned.
    Normal,
    /// Something the user should look at.
    Warning,
}

/// (involved uid, reason, message): what makes two Events the same Event.
type Occurrence = (String, String, String);
/// (event name, count, first timestamp).
type Recorded = (String, i32, Time);

/// Records Events for one component (`default-scheduler`, `kubelet`, `endpointslice-controller`).
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    host: Option<String>,
    /// (uid, reason, message) → (event name, count): repeats update one Event.
    seen: Arc<Mutex<HashMap<Occurrence, Recorded>>>,
}

// === impl Recorder ===

impl Recorder {
    /// A recorder whose Events say `source.component = component` (and `source.host`).
    pub fn new(client: Client, component: &str, host: Option<String>) -> Self {
        Self { client, component: component.into(), host, seen: Default::default() }
    }

    /// Records an Event about `obj`. Never fails the caller: a failed write is logged.
    pub async fn record<K: Object>(&self, obj: &K, kind: EventType, reason: &str, message: &str) {
        let meta = obj.metadata();
        let reference = ObjectReference {
            api_version: Some(K::API_VERSION.into()),
            kind: Some(K::KIND.into()),
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            ..Default::default()
        };
        self.record_ref(reference, kind, reason, message).await
    }

    /// Records an Event about the object `reference` names.
    pub async fn record_ref(&self, reference: ObjectReference, kind: EventType, reason: &str, message: &str) {
        let now = Time(Timestamp::now());
        let ns = reference.namespace.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| "default".into());
        let key = (
            reference
                .uid
                .clone()
                .unwrap_or_else(|| format!("{ns}/{}", reference.name.clone().unwrap_or_default())),
            reason.to_string(),
            message.to_string(),
        );
        let previous = self.seen.lock().unwrap_or_else(|e| e.into_inner()).get(&key).cloned();
        let (name, count, first) = match previous {
            Some((name, count, first)) => (name, count + 1, first),
            None => {
                let unique = format!("{:x}", now.0.as_nanosecond());
                (format!("{}.{unique}", reference.name.clone().unwrap_or_default()), 1, now.clone())
            }
        };
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            involved_object: reference,
            reason: Some(reason.into()),
            message: Some(message.into()),
            type_: Some(match kind {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            source: Some(EventSource { component: Some(self.component.clone()), host: self.host.clone() }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            first_timestamp: Some(first.clone()),
            last_timestamp: Some(now),
            count: Some(count),
            ..Default::default()
        };
        let result = if count == 1 {
            self.client.create(&event).await
        } else {
            match self.client.update(&event).await {
                Err(e) if e.is_not_found() => self.client.create(&event).await,
                other => other,
            }
        };
        match result {
            Ok(_) => {
                self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(key, (name, count, first));
            }
            Err(error) => tracing::warn!(%error, reason, "Could not record an event."),
        }
    }
}
