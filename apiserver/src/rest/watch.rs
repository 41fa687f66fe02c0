//! Watch (`GET <collection>?watch=true`): the registry's [`Registry::watch`], framed as
//! kube-apiserver frames it for JSON clients: `200`, `Transfer-Encoding: chunked`, and one
//! `{"type":"ADDED","object":{...}}` line per event, until `timeoutSeconds` runs out or the client
//! goes away.
//!
//! - `resourceVersion` unset or `"0"`: the current objects first, as synthetic `ADDED` events,
//!   then every change (upstream's watch cache answers both so); a number: every change after it.
//!   One older than the registry's history is answered as upstream's watch cache answers it:
//!   `200` and a single `ERROR` event carrying a `410 Expired` Status, so reflectors relist.
//! - Selectors filter per watcher, in the registry: an object that moves out of the selection
//!   is `DELETED` for this watcher, one that moves in is `ADDED`.
//! - `allowWatchBookmarks=true`: a `BOOKMARK` (an empty object of the Kind with only
//!   `metadata.resourceVersion`) every minute, and one 2 s before the watch times out, as
//!   upstream's `cacheWatcher.nextBookmarkTime` schedules them. Its resourceVersion is the newest
//!   one this watcher is known to have been sent everything up to: the last event's, or the
//!   revision it started at. (The registry's watcher also passes over events its selectors
//!   drop; it does not report that progress, so a quiet filtered watch bookmarks where it is.)
//! - A Table `Accept` (`kubectl get -w`) wraps each event's object in a one-row Table, with the
//!   column definitions on the first event only, as upstream's `handlers/get.go` does.
//!   `ERROR` Status objects are never converted.
//! - Without `timeoutSeconds` (or with 0), the watch lasts a random 30–60 minutes, as
//!   upstream's `minRequestTimeout` makes it.
//!
//! The whole watch is one span (the request's): upstream audits a watch as one request, and a
//! span per event would drown a trace in a busy namespace. It records `watch.events` at the end.

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    body::{Body, Bytes},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt as _;
use netlab_proto::apiserver::v1::{EventType, Resource};
use serde_json::{Value, json};
use tokio::{sync::mpsc, time::Instant};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::{negotiate, path::ObjectTarget, query::IncludeObject, request::Request, status::Status, table};
use crate::{
    error::Error,
    object::Stored,
    registry::{Registry, WatchSpec, watch::Item},
    selector::{FieldSelector, LabelSelector},
};

/// How often a watch that allows bookmarks gets one (upstream's `bookmarkFrequency`).
pub const BOOKMARK_EVERY: Duration = Duration::from_secs(60);
/// How long before its deadline a watch gets its last bookmark.
pub const BOOKMARK_BEFORE_TIMEOUT: Duration = Duration::from_secs(2);
/// The shortest default watch; the longest is twice this (upstream's `minRequestTimeout`).
pub const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where a watch starts: None for the current state first (`""`, `"0"`), else after the
/// resourceVersion.
pub fn start(resource_version: Option<&str>) -> Result<Option<u64>, Status> {
    match resource_version {
        None | Some("" | "0") => Ok(None),
        Some(rv) => rv
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Status::bad_request(format!("invalid resource version: {rv:?}"))),
    }
}

/// Serves a watch on the collection (or, with a name in the path, on one object, as the
/// deprecated `?watch` on an object does: a collection watch with `metadata.name=<name>`).
pub fn serve(registry: &Registry, target: &ObjectTarget, req: Request<'_>) -> Result<Response, Status> {
    let r = target.resource;
    let mut field_selector = req.query.field_selector.clone();
    if let Some(name) = &target.name {
        let by_name = format!("metadata.name={name}");
        field_selector =
            if field_selector.is_empty() { by_name } else { format!("{by_name},{field_selector}") };
    }
    let labels = LabelSelector::parse(&req.query.label_selector).map_err(|e| Status::bad_request(e.0))?;
    let fields = FieldSelector::parse(r, &field_selector).map_err(|e| Status::bad_request(e.0))?;
    let from = start(req.query.resource_version.as_deref())?;
    let table = negotiate::wants(req.headers, "Table", "meta.k8s.io", &["v1", "v1beta1"]);
    let namespace = if r.namespaced() { target.namespace.clone().unwrap_or_default() } else { String::new() };
    // The revision the first events are at least as new as: a bookmark may always say this.
    let progress = match from {
        Some(rv) => rv,
        None if req.query.allow_watch_bookmarks => {
            registry.list(r, &namespace, &LabelSelector::default(), &FieldSelector::default()).1
        }
        None => 0,
    };
    let spec = WatchSpec { resource: r, namespace, labels, fields, from };
    let timeout = match req.query.timeout_seconds {
        Some(s) if s > 0 => Duration::from_secs(s),
        _ => default_timeout(),
    };
    let mut encoder = Encoder { resource: r, table, include: req.query.include_object, first: true };
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    match registry.watch(spec, CancellationToken::new()) {
        Ok(events) => {
            let watch =
                Watch { events, encoder, tx, timeout, bookmarks: req.query.allow_watch_bookmarks, progress };
            tokio::spawn(watch.run().instrument(tracing::Span::current()));
        }
        Err(e @ Error::Expired { .. }) => {
            // Upstream's watch cache starts the stream and sends the 410 inside it.
            let line = encoder.error(&e);
            tokio::spawn(async move { tx.send(line).await });
        }
        Err(e) => return Err(e.into()),
    }
    let content_type = match table {
        Some(v) => HeaderValue::from_str(&table::content_type(v))
            .unwrap_or(HeaderValue::from_static("application/json")),
        None => HeaderValue::from_static("application/json"),
    };
    let body = Body::from_stream(ReceiverStream::new(rx).map(Ok::<_, Infallible>));
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

/// A random 30–60 minutes.
fn default_timeout() -> Duration {
    let spread = u64::from(uuid::Uuid::new_v4().as_bytes()[0]) * MIN_REQUEST_TIMEOUT.as_secs() / 255;
    MIN_REQUEST_TIMEOUT + Duration::from_secs(spread)
}

/// When the next bookmark is due: in a minute, or 2 s before the deadline if that is sooner;
/// none once that is past.
pub fn next_bookmark(now: Instant, deadline: Instant) -> Option<Instant> {
    let heartbeat = now + BOOKMARK_EVERY;
    let pretimeout = deadline.checked_sub(BOOKMARK_BEFORE_TIMEOUT)?;
    let at = heartbeat.min(pretimeout);
    (at > now).then_some(at)
}

/// Turns events into the lines of the stream.
pub struct Encoder {
    /// The watched resource.
    pub resource: Resource,
    /// The Table version asked for, if any.
    pub table: Option<&'static str>,
    /// What a Table row carries.
    pub include: IncludeObject,
    /// Whether no event has been sent yet (the first Table carries the column definitions).
    pub first: bool,
}

// === impl Encoder ===

impl Encoder {
    /// One event's line.
    pub fn event(&mut self, kind: &str, object: &Arc<Stored>) -> Bytes {
        let mut line = Vec::with_capacity(object.json.len() + 40);
        line.extend_from_slice(br#"{"type":""#);
        line.extend_from_slice(kind.as_bytes());
        line.extend_from_slice(br#"","object":"#);
        match self.table {
            None => line.extend_from_slice(&object.json),
            Some(v) => {
                let mut t = table::table(
                    self.resource,
                    std::slice::from_ref(object),
                    object.rv,
                    self.include,
                    v,
                    jiff::Timestamp::now(),
                );
                if !self.first {
                    t["columnDefinitions"] = Value::Null;
                }
                // Serializing a serde_json::Value cannot fail.
                line.extend(serde_json::to_vec(&t).unwrap_or_default());
            }
        }
        self.first = false;
        line.extend_from_slice(b"}\n");
        line.into()
    }

    /// A BOOKMARK at `rv`.
    pub fn bookmark(&mut self, rv: u64) -> Bytes {
        let r = self.resource;
        let object = json!({"kind": r.kind(), "apiVersion": r.api_version(),
                            "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}});
        self.event("BOOKMARK", &Arc::new(Stored::new(r, object)))
    }

    /// An ERROR event with the error's Status.
    pub fn error(&mut self, e: &Error) -> Bytes {
        let event = json!({"type": "ERROR", "object": Status::from(e).body()});
        let mut line = serde_json::to_vec(&event).unwrap_or_default();
        line.push(b'\n');
        line.into()
    }
}

fn event_type(kind: EventType) -> &'static str {
    match kind {
        EventType::Added => "ADDED",
        EventType::Modified => "MODIFIED",
        EventType::Deleted => "DELETED",
        _ => "ERROR",
    }
}

/// One running watch: the registry's events in, lines out.
struct Watch {
    events: mpsc::Receiver<crate::error::Result<Vec<Item>>>,
    encoder: Encoder,
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
    bookmarks: bool,
    progress: u64,
}

// === impl Watch ===

impl Watch {
    async fn run(mut self) {
        let start = Instant::now();
        let deadline = start + self.timeout;
        let mut bookmark = if self.bookmarks { next_bookmark(start, deadline) } else { None };
        let mut sent: u64 = 0;
        loop {
            let line = tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = self.tx.closed() => break,
                _ = tokio::time::sleep_until(bookmark.unwrap_or(deadline)), if bookmark.is_some() => {
                    bookmark = next_bookmark(Instant::now(), deadline);
                    self.encoder.bookmark(self.progress)
                }
                batch = self.events.recv() => match batch {
                    None => break,
                    Some(Ok(items)) => {
                        let mut chunk = Vec::new();
                        for item in &items {
                            chunk.extend_from_slice(&self.encoder.event(event_type(item.kind), &item.object));
                            self.progress = self.progress.max(item.object.rv);
                            sent += 1;
                        }
                        Bytes::from(chunk)
                    }
                    Some(Err(e)) => {
                        let _ = self.tx.send(self.encoder.error(&e)).await;
                        break;
                    }
                },
            };
            if self.tx.send(line).await.is_err() {
                break;
            }
        }
        tracing::Span::current().record("watch.events", sent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_points() {
        assert_eq!(start(None).unwrap(), None);
        assert_eq!(start(Some("")).unwrap(), None);
        assert_eq!(start(Some("0")).unwrap(), None);
        assert_eq!(start(Some("42")).unwrap(), Some(42));
        assert_eq!(start(Some("x")).unwrap_err().code, 400);
    }

    #[test]
    fn bookmarks_every_minute_and_before_the_deadline() {
        let now = Instant::now();
        assert_eq!(next_bookmark(now, now + Duration::from_secs(600)), Some(now + BOOKMARK_EVERY));
        assert_eq!(next_bookmark(now, now + Duration::from_secs(30)), Some(now + Duration::from_secs(28)));
        assert_eq!(next_bookmark(now, now + Duration::from_secs(2)), None);
    }

    #[test]
    fn lines() {
        let pod = Arc::new(Stored::new(
            Resource::Pods,
            json!({"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"name": "w1", "namespace": "default", "resourceVersion": "18",
                                "creationTimestamp": "2024-05-01T10:00:00Z"},
                   "spec": {"containers": [{"name": "c", "image": "nginx"}]}}),
        ));
        let mut plain =
            Encoder { resource: Resource::Pods, table: None, include: IncludeObject::Metadata, first: true };
        let line = plain.event("ADDED", &pod);
        assert!(line.ends_with(b"}\n"));
        let v: Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(
            (v["type"].as_str(), v["object"]["metadata"]["name"].as_str()),
            (Some("ADDED"), Some("w1"))
        );
        let b: Value = serde_json::from_slice(&plain.bookmark(20)).unwrap();
        assert_eq!(
            b,
            json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                   "metadata": {"resourceVersion": "20", "creationTimestamp": null}}})
        );
        let e: Value =
            serde_json::from_slice(&plain.error(&Error::Expired { requested: 3, oldest: 9 })).unwrap();
        assert_eq!(e["type"], "ERROR");
        assert_eq!(
            (e["object"]["code"].as_i64(), e["object"]["reason"].as_str(), e["object"]["message"].as_str()),
            (Some(410), Some("Expired"), Some("too old resource version: 3 (9)"))
        );

        let mut tables = Encoder {
            resource: Resource::Pods,
            table: Some("v1"),
            include: IncludeObject::Metadata,
            first: true,
        };
        let first: Value = serde_json::from_slice(&tables.event("ADDED", &pod)).unwrap();
        assert_eq!(first["object"]["kind"], "Table");
        assert_eq!(first["object"]["columnDefinitions"][0]["name"], "Name");
        assert_eq!(first["object"]["rows"][0]["cells"][0], "w1");
        assert_eq!(first["object"]["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(first["object"]["metadata"]["resourceVersion"], "18");
        let second: Value = serde_json::from_slice(&tables.event("MODIFIED", &pod)).unwrap();
        assert_eq!(second["object"]["columnDefinitions"], Value::Null);
        assert_eq!(second["object"]["rows"][0]["cells"][0], "w1");
    }
}
