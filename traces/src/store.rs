//! The spans, in bounded memory. At most `max_spans` spans are kept; to make room the store drops
//! whole traces, the oldest first (by when their first span arrived, the order Jaeger's memory
//! store keeps), so what remains is always complete traces and never their tails alone. A single
//! trace that would by itself exceed the cap keeps its first `max_spans` spans and the rest are
//! refused (reported to the exporter as OTLP's partial success).
//!
//! Besides the trace id, spans are indexed by service and by service + operation, which is what a
//! search asks for first (Jaeger requires the service), and what `/api/services` and
//! `/api/operations` list; the indexes shrink with evictions, so they stay bounded too.
//! The store is shared: clones are handles to one store behind one lock, which every call holds
//! only for its own work.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use crate::{id::TraceId, search::Query, span::Span};

/// How many spans the store keeps unless told otherwise. A netlab span (a handful of attributes)
/// takes about half a kilobyte here, so the default stays near 100 MB; a busy lab session makes a
/// few thousand spans a minute.
pub const DEFAULT_MAX_SPANS: usize = 200_000;

/// A handle to the store.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Mutex<Inner>>,
}

/// What [`Store::insert`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Spans stored.
    pub accepted: usize,
    /// Spans refused: their trace alone fills the store.
    pub rejected: usize,
    /// Traces dropped to make room.
    pub evicted_traces: usize,
}

/// The counts a health or debug line reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Spans held.
    pub spans: usize,
    /// Traces held.
    pub traces: usize,
    /// The cap on spans.
    pub max_spans: usize,
    /// Traces dropped to make room since start.
    pub evicted_traces: u64,
    /// Spans refused since start.
    pub rejected_spans: u64,
}

struct Inner {
    max_spans: usize,
    /// Spans held (the sum over `traces`).
    len: usize,
    /// The next span's [`Span::seq`].
    next_span: u64,
    /// The next new trace's place in `order`.
    next_trace: u64,
    traces: HashMap<TraceId, Entry>,
    /// Trace ids by when their first span arrived: the eviction order, and newest first the
    /// search order.
    order: BTreeMap<u64, TraceId>,
    /// service → its traces and operations.
    services: HashMap<String, ServiceIndex>,
    evicted_traces: u64,
    rejected_spans: u64,
}

struct Entry {
    /// Its key in `order`.
    first_seen: u64,
    spans: Vec<Arc<Span>>,
}

#[derive(Default)]
struct ServiceIndex {
    traces: HashSet<TraceId>,
    operations: HashMap<String, OperationIndex>,
}

#[derive(Default)]
struct OperationIndex {
    traces: HashSet<TraceId>,
    /// Span kind → how many spans of that kind the store holds; the operation is gone when
    /// every count is.
    kinds: HashMap<&'static str, usize>,
}

// === impl Store ===

impl Store {
    /// An empty store that keeps at most `max_spans` spans (at least one).
    pub fn new(max_spans: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner {
                max_spans: max_spans.max(1),
                len: 0,
                next_span: 0,
                next_trace: 0,
                traces: HashMap::new(),
                order: BTreeMap::new(),
                services: HashMap::new(),
                evicted_traces: 0,
                rejected_spans: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing in here panics while holding the lock (no unwraps, no indexing); were it to,
        // the maps would still be whole values, so keep serving rather than fail every call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stores `spans` in order, numbering them ([`Span::seq`]) and making room as needed.
    pub fn insert(&self, spans: impl IntoIterator<Item = Span>) -> Inserted {
        let mut inner = self.lock();
        let mut done = Inserted::default();
        for mut span in spans {
            let evicted = inner.make_room(&span.trace_id);
            done.evicted_traces += evicted;
            if inner.len >= inner.max_spans {
                done.rejected += 1;
                inner.rejected_spans += 1;
                continue;
            }
            span.seq = inner.next_span;
            inner.next_span += 1;
            inner.add(Arc::new(span));
            done.accepted += 1;
        }
        done
    }

    /// The spans of one trace, in arrival order; `None` if the store has none.
    pub fn trace(&self, id: &TraceId) -> Option<Vec<Arc<Span>>> {
        self.lock().traces.get(id).map(|e| e.spans.clone())
    }

    /// The traces that `query` finds, newest first (by their first span's arrival), at most
    /// `query.limit`.
    pub fn find(&self, query: &Query) -> Vec<Vec<Arc<Span>>> {
        let inner = self.lock();
        let Some(service) = inner.services.get(&query.service) else { return Vec::new() };
        let candidates = match &query.operation {
            Some(op) => match service.operations.get(op) {
                Some(index) => &index.traces,
                None => return Vec::new(),
            },
            None => &service.traces,
        };
        let mut newest_first: Vec<(u64, &Entry)> = candidates
            .iter()
            .filter_map(|id| inner.traces.get(id))
            .map(|entry| (entry.first_seen, entry))
            .collect();
        newest_first.sort_unstable_by_key(|(first_seen, _)| std::cmp::Reverse(*first_seen));
        newest_first
            .into_iter()
            .filter(|(_, entry)| entry.spans.iter().any(|s| query.matches(s)))
            .take(query.limit)
            .map(|(_, entry)| entry.spans.clone())
            .collect()
    }

    /// The services that sent spans the store still holds, sorted (the unnamed one left out, as
    /// Jaeger leaves it out).
    pub fn services(&self) -> Vec<String> {
        let inner = self.lock();
        let mut names: Vec<String> = inner.services.keys().filter(|s| !s.is_empty()).cloned().collect();
        names.sort();
        names
    }

    /// The `(operation, span kind)` pairs of `service`, sorted, only those of `kind` if given.
    pub fn operations(&self, service: &str, kind: Option<&str>) -> Vec<(String, &'static str)> {
        let inner = self.lock();
        let mut ops: Vec<(String, &'static str)> = inner
            .services
            .get(service)
            .into_iter()
            .flat_map(|s| s.operations.iter())
            .flat_map(|(name, index)| index.kinds.keys().map(move |k| (name.clone(), *k)))
            .filter(|(_, k)| kind.is_none_or(|want| want == *k))
            .collect();
        ops.sort();
        ops
    }

    /// Every span held, in arrival order.
    pub fn spans(&self) -> Vec<Arc<Span>> {
        let inner = self.lock();
        let mut all: Vec<Arc<Span>> = inner.traces.values().flat_map(|e| e.spans.iter().cloned()).collect();
        all.sort_unstable_by_key(|s| s.seq);
        all
    }

    /// The counts.
    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            spans: inner.len,
            traces: inner.traces.len(),
            max_spans: inner.max_spans,
            evicted_traces: inner.evicted_traces,
            rejected_spans: inner.rejected_spans,
        }
    }
}

// === impl Inner ===

impl Inner {
    /// Drops the oldest traces other than `incoming`'s until one more span fits (or only that
    /// trace is left). Returns how many it dropped.
    fn make_room(&mut self, incoming: &TraceId) -> usize {
        let mut evicted = 0;
        while self.len >= self.max_spans {
            let Some(oldest) = self.order.values().find(|id| *id != incoming).copied() else { break };
            self.evict(&oldest);
            evicted += 1;
        }
        evicted
    }

    fn add(&mut self, span: Arc<Span>) {
        let id = span.trace_id;
        let service = self.services.entry(span.service().to_string()).or_default();
        service.traces.insert(id);
        let operation = service.operations.entry(span.name().to_string()).or_default();
        operation.traces.insert(id);
        *operation.kinds.entry(span.kind()).or_default() += 1;
        if let Some(entry) = self.traces.get_mut(&id) {
            entry.spans.push(span);
        } else {
            let first_seen = self.next_trace;
            self.next_trace += 1;
            self.order.insert(first_seen, id);
            self.traces.insert(id, Entry { first_seen, spans: vec![span] });
        }
        self.len += 1;
    }

    fn evict(&mut self, id: &TraceId) {
        let Some(entry) = self.traces.remove(id) else { return };
        self.order.remove(&entry.first_seen);
        self.len = self.len.saturating_sub(entry.spans.len());
        self.evicted_traces += 1;
        for span in &entry.spans {
            let Some(service) = self.services.get_mut(span.service()) else { continue };
            service.traces.remove(id);
            if let Some(operation) = service.operations.get_mut(span.name()) {
                operation.traces.remove(id);
                if let Some(count) = operation.kinds.get_mut(span.kind()) {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        operation.kinds.remove(span.kind());
                    }
                }
                if operation.kinds.is_empty() {
                    service.operations.remove(span.name());
                }
            }
            if service.operations.is_empty() {
                self.services.remove(span.service());
            }
        }
    }
}

#[cfg(test)]
mod tests;
