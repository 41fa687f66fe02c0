//! Jaeger's HTTP query API (v1, `/api/...`, what Jaeger's UI and `netlab trace` read), answered
//! from the [`Store`] in Jaeger's JSON: every answer is the envelope
//! `{"data", "total", "limit", "offset", "errors"}`, and an error is that envelope with `data`
//! null and `errors: [{"code", "msg"}]`, sent as Go's `http.Error` sends it (text/plain, a
//! trailing newline), with Jaeger's status codes and texts.
//!
//! - `GET /api/traces/{traceID}`: one trace (404 `trace not found`).
//! - `GET /api/traces?service=&operation=&tags=&tag=&start=&end=&minDuration=&maxDuration=&limit=`
//!   (or `traceID=...`): a search ([`crate::search`]), newest traces first.
//! - `GET /api/services`, `GET /api/services/{service}/operations` (names), and
//!   `GET /api/operations?service=&spanKind=` (`{"name", "spanKind"}` pairs).
//! - `GET /trace/{traceID}`, the link the CLI prints: there is no UI here, so it redirects to the
//!   trace's JSON.
//!
//! `?prettyPrint=true` indents the JSON, as Jaeger's does.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::{
    Router,
    extract::{Path, RawQuery, State},
    http::{StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::{
    error::{Error, Result},
    id::{TraceId, jaeger_trace_id, parse_trace_id},
    jaeger,
    search::{self, Request},
    store::Store,
};

/// The message of a missing trace (Jaeger's `spanstore.ErrTraceNotFound`).
const TRACE_NOT_FOUND: &str = "trace not found";

/// The query API's routes over `store`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/api/traces/{trace_id}", get(get_trace))
        .route("/api/traces", get(find_traces))
        .route("/api/services", get(services))
        .route("/api/services/{service}/operations", get(service_operations))
        .route("/api/operations", get(operations))
        .route("/trace/{trace_id}", get(trace_page))
        .with_state(store)
}

/// Serves `routes` on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    routes: Router,
    shutdown: CancellationToken,
) -> Result<()> {
    axum::serve(listener, routes)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(|source| Error::Serve { what: "query", source: Box::new(source) })
}

/// Jaeger's `structuredResponse`.
#[derive(Serialize)]
struct Envelope<T: Serialize> {
    data: T,
    total: usize,
    limit: usize,
    offset: usize,
    errors: Option<Vec<StructuredError>>,
}

/// Jaeger's `structuredError`: `code` and `traceID` are left out when empty.
#[derive(Serialize)]
struct StructuredError {
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
    msg: String,
    #[serde(rename = "traceID", skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

/// A failed request, answered once, here (Jaeger's `handleError`).
struct ApiError {
    status: StatusCode,
    msg: String,
}

// === impl ApiError ===

impl ApiError {
    fn bad_request(msg: impl ToString) -> Self {
        Self { status: StatusCode::BAD_REQUEST, msg: msg.to_string() }
    }
}

impl From<search::QueryError> for ApiError {
    fn from(e: search::QueryError) -> Self {
        // The memory store fails a search depth outside its range as a storage error.
        let status = match e {
            search::QueryError::SearchDepth => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        Self { status, msg: e.to_string() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let envelope = Envelope {
            data: (),
            total: 0,
            limit: 0,
            offset: 0,
            errors: Some(vec![StructuredError {
                code: Some(self.status.as_u16()),
                msg: self.msg,
                trace_id: None,
            }]),
        };
        // Go's http.Error: plain text, no sniffing, the body and a newline.
        let body = serde_json::to_string(&envelope).unwrap_or_default() + "\n";
        (
            self.status,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response()
    }
}

/// A 200 with `value` as JSON, indented when the query asks for `prettyPrint`.
fn json(value: &impl Serialize, query: Option<&str>) -> Response {
    let pretty = query
        .into_iter()
        .flat_map(|q| form_urlencoded::parse(q.as_bytes()))
        .find(|(k, _)| k == "prettyPrint")
        .is_some_and(|(_, v)| !v.is_empty() && v != "false");
    let body = if pretty {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::with_formatter(
            &mut out,
            serde_json::ser::PrettyFormatter::with_indent(b"    "),
        );
        match value.serialize(&mut ser) {
            Ok(()) => out,
            Err(e) => return internal(e),
        }
    } else {
        match serde_json::to_vec(value) {
            Ok(body) => body,
            Err(e) => return internal(e),
        }
    };
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn internal(e: serde_json::Error) -> Response {
    ApiError { status: StatusCode::INTERNAL_SERVER_ERROR, msg: format!("failed writing HTTP response: {e}") }
        .into_response()
}

fn envelope<T: Serialize>(data: T, total: usize, errors: Option<Vec<StructuredError>>) -> Envelope<T> {
    Envelope { data, total, limit: 0, offset: 0, errors }
}

/// The Jaeger view of one stored trace.
fn view(store: &Store, id: &TraceId) -> Option<jaeger::Trace> {
    let spans = store.trace(id)?;
    let spans: Vec<&crate::span::Span> = spans.iter().map(AsRef::as_ref).collect();
    Some(jaeger::trace(&spans))
}

/// `GET /api/traces/{traceID}`.
async fn get_trace(
    State(store): State<Store>,
    Path(trace_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let id = parse_trace_id(&trace_id).map_err(ApiError::bad_request)?;
    let trace =
        view(&store, &id).ok_or(ApiError { status: StatusCode::NOT_FOUND, msg: TRACE_NOT_FOUND.into() })?;
    Ok(json(&envelope(vec![trace], 0, None), query.as_deref()))
}

/// `GET /api/traces?...`: a search, or the traces `traceID` names.
async fn find_traces(State(store): State<Store>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let (traces, errors) = match search::parse(query.as_deref().unwrap_or_default(), now)? {
        Request::Ids(ids) => {
            let mut traces = Vec::new();
            let mut errors = Vec::new();
            for id in ids {
                match view(&store, &id) {
                    Some(trace) => traces.push(trace),
                    None => errors.push(StructuredError {
                        code: None,
                        msg: TRACE_NOT_FOUND.into(),
                        trace_id: Some(jaeger_trace_id(&id)),
                    }),
                }
            }
            (traces, (!errors.is_empty()).then_some(errors))
        }
        Request::Find(q) => {
            let found = store.find(&q);
            let traces = found
                .iter()
                .map(|spans| jaeger::trace(&spans.iter().map(AsRef::as_ref).collect::<Vec<_>>()))
                .collect();
            (traces, None)
        }
    };
    Ok(json(&envelope(traces, 0, errors), query.as_deref()))
}

/// `GET /api/services`: `data` is null when there are none, as Jaeger's nil list marshals.
async fn services(State(store): State<Store>, RawQuery(query): RawQuery) -> Response {
    let names = store.services();
    let total = names.len();
    json(&envelope((!names.is_empty()).then_some(names), total, None), query.as_deref())
}

/// `GET /api/services/{service}/operations`: the operation names (any kind), null when none.
async fn service_operations(
    State(store): State<Store>,
    Path(service): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut names: Vec<String> = store.operations(&service, None).into_iter().map(|(name, _)| name).collect();
    names.dedup();
    let total = names.len();
    json(&envelope((!names.is_empty()).then_some(names), total, None), query.as_deref())
}

/// An operation as `/api/operations` lists it.
#[derive(Serialize)]
struct Operation {
    name: String,
    #[serde(rename = "spanKind")]
    span_kind: &'static str,
}

/// `GET /api/operations?service=S&spanKind=K`.
async fn operations(State(store): State<Store>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let pairs: Vec<(String, String)> =
        form_urlencoded::parse(query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect();
    let first = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or_default();
    let service = first("service");
    if service.is_empty() {
        return Err(search::QueryError::ServiceRequired.into());
    }
    let kind = Some(first("spanKind")).filter(|k| !k.is_empty());
    let ops: Vec<Operation> = store
        .operations(service, kind)
        .into_iter()
        .map(|(name, span_kind)| Operation { name, span_kind })
        .collect();
    let total = ops.len();
    Ok(json(&envelope(ops, total, None), query.as_deref()))
}

/// `GET /trace/{traceID}`: to the trace's JSON, there being no UI to show it in.
async fn trace_page(Path(trace_id): Path<String>) -> Redirect {
    let id: String = trace_id.chars().filter(char::is_ascii_hexdigit).collect();
    Redirect::to(&format!("/api/traces/{id}"))
}

#[cfg(test)]
mod tests;
