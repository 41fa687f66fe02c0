//! The parameters of Jaeger's trace search (`GET /api/traces?service=...`), read as Jaeger's query
//! service reads them (`cmd/query/app/query_parser.go`), with its error texts; and the test a span
//! must pass for its trace to be found.
//!
//! As in Jaeger, one span must pass every criterion at once: the service, the operation, a start
//! between `start` and `end` (µs; by default the last 48 hours), a duration between `minDuration`
//! and `maxDuration` (Go durations), and every tag (`tags={"k":"v"}` JSON maps and `tag=k:v`
//! pairs), matched against what the UI shows for it ([`crate::jaeger::view_tags`]: its tags, its
//! process, its logs). `lookback` is the UI's own and, as in Jaeger, not read here; `limit`
//! (default 100) counts traces, newest first.

use std::{collections::BTreeMap, time::Duration};

use crate::{
    id::{IdError, TraceId, parse_trace_id},
    jaeger::view_tags,
    span::Span,
};

/// Traces a search returns when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;
/// How far back a search looks when `start` is not given (Jaeger's
/// `defaultTraceQueryLookbackDuration`).
pub const DEFAULT_LOOKBACK: Duration = Duration::from_secs(48 * 3600);

/// What a search asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `traceID=...` given: those traces, whatever the other parameters say.
    Ids(Vec<TraceId>),
    /// A search.
    Find(Query),
}

/// A search for traces.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Query {
    /// The service of the matching span.
    pub service: String,
    /// Its name, if asked.
    pub operation: Option<String>,
    /// Tags it must show, key → value as text.
    pub tags: BTreeMap<String, String>,
    /// Earliest start, ns since the epoch.
    pub start_min: u64,
    /// Latest start, ns since the epoch.
    pub start_max: u64,
    /// Shortest duration, if asked.
    pub duration_min: Option<Duration>,
    /// Longest duration, if asked.
    pub duration_max: Option<Duration>,
    /// How many traces at most.
    pub limit: usize,
}

/// Why a search's parameters are wrong; the texts are Jaeger's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Neither `service` nor `traceID`.
    #[error("parameter 'service' is required")]
    ServiceRequired,
    /// `start`, `end`, `minDuration` or `maxDuration` did not parse.
    #[error("unable to parse param '{param}': {message}")]
    Param {
        /// The parameter.
        param: &'static str,
        /// Go's message.
        message: String,
    },
    /// `limit` did not parse (Jaeger passes strconv's error on bare).
    #[error("{0}")]
    Limit(String),
    /// `limit` is not positive: the memory store refuses a search depth outside 1..=max.
    #[error("search depth must be greater than 0 and less than max traces")]
    SearchDepth,
    /// A `tag` without a colon.
    #[error("malformed 'tag' parameter, expecting key:value, received: {0}")]
    Tag(String),
    /// A `tags` that is not a JSON object of strings.
    #[error("malformed 'tags' parameter, cannot unmarshal JSON: {0}")]
    Tags(String),
    /// `maxDuration` below `minDuration`.
    #[error("'maxDuration' should be greater than 'minDuration'")]
    MaxBelowMin,
    /// A `traceID` that is not one.
    #[error("cannot parse traceID param: {0}")]
    TraceId(#[source] IdError),
}

/// Reads a search's query string (`service=...&operation=...`); `now` (ns since the epoch) is
/// where the default time window ends.
pub fn parse(query: &str, now: u64) -> Result<Request, QueryError> {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    // Go's r.FormValue: the first value, where an empty one counts as absent.
    let first =
        |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
    let all = |key: &'static str| pairs.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str());

    let lookback = u64::try_from(DEFAULT_LOOKBACK.as_nanos()).unwrap_or(u64::MAX);
    let start_min = match first("start") {
        None => now.saturating_sub(lookback),
        Some(v) => micros(v, "start")?,
    };
    let start_max = match first("end") {
        None => now,
        Some(v) => micros(v, "end")?,
    };
    let mut tags = BTreeMap::new();
    for tag in all("tag") {
        let (key, value) = tag.split_once(':').ok_or_else(|| QueryError::Tag(tag.to_string()))?;
        tags.insert(key.to_string(), value.to_string());
    }
    for json in all("tags") {
        let map: BTreeMap<String, String> =
            serde_json::from_str(json).map_err(|e| QueryError::Tags(e.to_string()))?;
        tags.extend(map);
    }
    let limit = match first("limit") {
        None => DEFAULT_LIMIT as i64,
        Some(v) => go_parse_int(v, i32::MIN.into(), i32::MAX.into()).map_err(QueryError::Limit)?,
    };
    let duration_min = first("minDuration").map(|v| duration(v, "minDuration")).transpose()?;
    let duration_max = first("maxDuration").map(|v| duration(v, "maxDuration")).transpose()?;
    let ids =
        all("traceID").map(parse_trace_id).collect::<Result<Vec<_>, _>>().map_err(QueryError::TraceId)?;

    let service = first("service").unwrap_or_default().to_string();
    if ids.is_empty() && service.is_empty() {
        return Err(QueryError::ServiceRequired);
    }
    // Zero means "not given", for either bound.
    let nonzero = |d: Option<Duration>| d.filter(|d| !d.is_zero());
    let (duration_min, duration_max) = (nonzero(duration_min), nonzero(duration_max));
    if let (Some(min), Some(max)) = (duration_min, duration_max)
        && max < min
    {
        return Err(QueryError::MaxBelowMin);
    }
    if !ids.is_empty() {
        return Ok(Request::Ids(ids));
    }
    let limit = usize::try_from(limit).ok().filter(|l| *l > 0).ok_or(QueryError::SearchDepth)?;
    Ok(Request::Find(Query {
        service,
        operation: first("operation").map(str::to_string),
        tags,
        start_min,
        start_max,
        duration_min,
        duration_max,
        limit,
    }))
}

/// µs since the epoch (Go's `strconv.ParseInt`, 64 bits) as ns; times before the epoch are 0.
fn micros(text: &str, param: &'static str) -> Result<u64, QueryError> {
    let us = go_parse_int(text, i64::MIN.into(), i64::MAX.into())
        .map_err(|message| QueryError::Param { param, message })?;
    Ok(u64::try_from(us).unwrap_or(0).saturating_mul(1_000))
}

fn duration(text: &str, param: &'static str) -> Result<Duration, QueryError> {
    netlab_config::parse_duration(text).map_err(|e| QueryError::Param { param, message: e.to_string() })
}

/// Go's `strconv.ParseInt(text, 10, bits)`, the range given by `min..=max`, with its messages.
fn go_parse_int(text: &str, min: i128, max: i128) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseInt: parsing {text:?}: invalid syntax"));
    }
    match text.parse::<i128>() {
        Ok(n) if (min..=max).contains(&n) => i64::try_from(n).map_err(|_| out_of_range(text)),
        _ => Err(out_of_range(text)),
    }
}

fn out_of_range(text: &str) -> String {
    format!("strconv.ParseInt: parsing {text:?}: value out of range")
}

// === impl Query ===

impl Query {
    /// Whether `span` passes every criterion (then its trace is found).
    pub fn matches(&self, span: &Span) -> bool {
        if span.service() != self.service {
            return false;
        }
        if self.operation.as_deref().is_some_and(|op| op != span.name()) {
            return false;
        }
        let start = span.start_ns();
        if start < self.start_min || start > self.start_max {
            return false;
        }
        let duration = Duration::from_nanos(span.duration_ns());
        if self.duration_min.is_some_and(|min| duration < min)
            || self.duration_max.is_some_and(|max| duration > max)
        {
            return false;
        }
        if self.tags.is_empty() {
            return true;
        }
        // Built only now: the view costs more than every check above.
        let shown = view_tags(span);
        self.tags.iter().all(|(key, value)| shown.iter().any(|kv| kv.key == *key && kv.text() == *value))
    }
}

#[cfg(test)]
mod tests;
