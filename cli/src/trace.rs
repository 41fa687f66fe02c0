//! `netlab trace ID|last`: one flow, read back from Jaeger and printed as a tree in the terminal.
//!
//! The lab exists so that a learner can watch a flow happen. Jaeger's UI shows it, but the lab is
//! driven from a terminal, so this asks Jaeger's HTTP query API for the trace (`GET
//! /api/traces/{id}`, the JSON Jaeger's own UI reads, still served by Jaeger 2.x) and prints its
//! spans as a tree: service, operation, duration, and the attributes that say what was decided
//! (`netlab.*`, `k8s.*`, `dns.*`, `rpc.*`, and the error text), errors in red.
//!
//! Commands that start a flow print its id and link on stderr ([`print_trace_link`]) and
//! [`remember`] it, so `netlab trace last` needs no copy and paste. Parsing and rendering are pure
//! and tested against a fixture in Jaeger's documented format; only [`fetch`] uses the network.

use std::{
    collections::{HashMap, HashSet},
    fmt::Write as _,
    io::{IsTerminal as _, Write},
    path::{Path, PathBuf},
    time::Duration,
};

use http_body_util::{BodyExt as _, Empty};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::{config::TraceArgs, report::Problem};

/// The file in the data dir that holds the id of the last trace a command printed.
pub const LAST_TRACE_FILE: &str = "last-trace";

/// How long Jaeger gets to answer: a query on a local store takes milliseconds.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Tag prefixes that carry decisions: netlab's own, the Kubernetes resource attributes, DNS and
/// RPC semantic conventions, the fault that acted on a span, and AWS's principal and IAM decision. The rest (code locations, thread ids, busy_ns) is noise here.
const DECISION_PREFIXES: &[&str] = &["netlab.", "k8s.", "dns.", "rpc.", "fault.", "aws."];

/// Tags shown whatever their prefix: how a span failed.
const ERROR_KEYS: &[&str] = &["error", "otel.status_description"];

/// ANSI red and reset, for error spans on a colour terminal.
const RED: &str = "\x1b[31m";
const RESET: &str = "\x1b[0m";

/// Runs `netlab trace`: fetches the trace (`last`: the one recorded in `data_dir`) from
/// `jaeger_url` and writes it to `out` as a tree, or unchanged with `-o json`.
pub async fn trace(
    args: &TraceArgs,
    jaeger_url: &str,
    data_dir: &Path,
    out: &mut impl Write,
) -> Result<(), Problem> {
    let raw = match args.output.as_deref() {
        None => false,
        Some("json") => true,
        Some(other) => {
            return Err(Problem::client(format!(
                "unable to match a printer suitable for the output format \"{other}\", allowed formats are: json"
            )));
        }
    };
    let id = if args.id == "last" { last(data_dir)? } else { args.id.clone() };
    let id = trace_id(&id)?;
    let url = jaeger_url.trim_end_matches('/');
    let body = fetch(url, &id).await?;
    if raw {
        let _ = out.write_all(&body);
        return Ok(());
    }
    let trace = parse(&body)
        .map_err(|why| {
            Problem::client(format!("Jaeger at {url} answered with something that is not a trace: {why}"))
        })?
        .ok_or_else(|| not_found(&id, url))?;
    // https://no-color.org: any non-empty NO_COLOR turns colour off; so does a pipe.
    let color = args.no_color.as_deref().is_none_or(str::is_empty) && std::io::stdout().is_terminal();
    let _ = out.write_all(render(&trace, color).as_bytes());
    Ok(())
}

/// Prints where to find a command's trace, on stderr after the command's own output:
/// `trace: <id>  <jaeger-url>/trace/<id>`.
pub fn print_trace_link(err: &mut impl Write, jaeger_url: &str, trace_id: &str) {
    let url = jaeger_url.trim_end_matches('/');
    let _ = writeln!(err, "trace: {trace_id}  {url}/trace/{trace_id}");
}

/// Records `trace_id` as the one `netlab trace last` shows.
pub fn remember(data_dir: &Path, trace_id: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(data_dir)?;
    std::fs::write(last_trace_path(data_dir), format!("{trace_id}\n"))
}

/// What a command that started a flow does at its end: print the link on `err` and remember the
/// id. Failing to remember only costs `netlab trace last`, so it is not an error of the command.
pub fn announce(err: &mut impl Write, jaeger_url: &str, data_dir: &Path, trace_id: &str) {
    print_trace_link(err, jaeger_url, trace_id);
    let _ = remember(data_dir, trace_id);
}

/// The trace id [`remember`]ed last.
pub fn last(data_dir: &Path) -> Result<String, Problem> {
    let text = std::fs::read_to_string(last_trace_path(data_dir)).unwrap_or_default();
    match text.trim() {
        "" => Err(Problem::client("no trace recorded yet: run netlab apply/exec first")),
        id => Ok(id.to_string()),
    }
}

fn last_trace_path(data_dir: &Path) -> PathBuf {
    data_dir.join(LAST_TRACE_FILE)
}

/// A trace id as Jaeger takes it: 1 to 32 hex digits, lowercased. Checked here so that a typo is
/// named as such instead of becoming a strange URL.
fn trace_id(id: &str) -> Result<String, Problem> {
    let id = id.trim();
    if id.is_empty() || id.len() > 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Problem::client(format!(
            "invalid trace id \"{id}\": expected up to 32 hexadecimal digits, or last"
        )));
    }
    Ok(id.to_ascii_lowercase())
}

fn not_found(id: &str, url: &str) -> Problem {
    Problem::client(format!("trace {id} not found in Jaeger at {url}"))
}

// === fetch ===

/// `GET {jaeger_url}/api/traces/{id}`: Jaeger's answer, unchanged, if it has the trace.
pub async fn fetch(jaeger_url: &str, id: &str) -> Result<Vec<u8>, Problem> {
    fetch_if_any(jaeger_url, id).await?.ok_or_else(|| not_found(id, jaeger_url.trim_end_matches('/')))
}

/// [`fetch`], with a trace Jaeger does not have (yet: spans are exported in batches) as `None`
/// rather than an error.
pub async fn fetch_if_any(jaeger_url: &str, id: &str) -> Result<Option<Vec<u8>>, Problem> {
    let url = jaeger_url.trim_end_matches('/');
    let unreachable = |why: String| Problem::client(format!("cannot reach Jaeger at {url}: {why}"));
    let uri: hyper::Uri =
        format!("{url}/api/traces/{id}").parse().map_err(|e| unreachable(format!("{e}")))?;
    if uri.scheme_str() != Some("http") {
        return Err(unreachable("only http:// URLs are supported".into()));
    }
    let request = hyper::Request::get(uri)
        .header(hyper::header::ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| unreachable(e.to_string()))?;
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let exchange = async {
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(|e| error_chain(&e))?;
        Ok::<_, String>((status, body.to_bytes()))
    };
    let (status, body) = tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer within {}s", FETCH_TIMEOUT.as_secs())))?
        .map_err(unreachable)?;
    Ok(check_status(status, &body, url)?.then(|| body.to_vec()))
}

/// Maps Jaeger's HTTP status: 200 is the trace, 404 a trace that Jaeger does not have (false),
/// anything else Jaeger's own error message.
fn check_status(status: u16, body: &[u8], url: &str) -> Result<bool, Problem> {
    match status {
        200 => Ok(true),
        404 => Ok(false),
        _ => {
            #[derive(Deserialize)]
            struct ErrorBody {
                #[serde(default, deserialize_with = "null_default")]
                errors: Vec<ErrorItem>,
            }
            #[derive(Deserialize)]
            struct ErrorItem {
                #[serde(default)]
                msg: String,
            }
            let message = serde_json::from_slice::<ErrorBody>(body)
                .ok()
                .and_then(|b| b.errors.into_iter().map(|e| e.msg).find(|m| !m.is_empty()))
                .unwrap_or_else(|| {
                    String::from_utf8_lossy(body).lines().next().unwrap_or_default().trim().to_string()
                });
            let status =
                hyper::StatusCode::from_u16(status).map_or_else(|_| status.to_string(), |s| s.to_string());
            Err(Problem::client(format!("Jaeger at {url} answered {status}: {message}")))
        }
    }
}

/// An error and its causes, `a: b: c`, without hyper's outer "client error (Connect)" wrapper.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut next = if e.source().is_some() { e.source() } else { Some(e) };
    while let Some(err) = next {
        parts.push(err.to_string());
        next = err.source();
    }
    parts.join(": ")
}

// === the model: Jaeger's UI JSON (jaeger model/json) ===

/// Jaeger's query-API envelope: `{"data": [trace], "total", "limit", "offset", "errors"}`.
#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default, deserialize_with = "null_default")]
    data: Vec<Trace>,
}

/// One trace as Jaeger's query API returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct Trace {
    /// Hex trace id.
    #[serde(rename = "traceID")]
    pub trace_id: String,
    /// Its spans, in no particular order.
    #[serde(default, deserialize_with = "null_default")]
    pub spans: Vec<Span>,
    /// The processes (one per service instance) that the spans' `processID`s name.
    #[serde(default, deserialize_with = "null_default")]
    pub processes: HashMap<String, Process>,
    /// What Jaeger found wrong with the trace as a whole (clock skew it adjusted, say).
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// One span.
#[derive(Debug, Clone, Deserialize)]
pub struct Span {
    /// Hex span id.
    #[serde(rename = "spanID")]
    pub span_id: String,
    /// The span name.
    #[serde(rename = "operationName", default)]
    pub operation_name: String,
    /// Its parent (`CHILD_OF`) and links (`FOLLOWS_FROM`).
    #[serde(default, deserialize_with = "null_default")]
    pub references: Vec<Reference>,
    /// Start, in microseconds since the epoch.
    #[serde(rename = "startTime", default)]
    pub start_time: u64,
    /// Duration in microseconds.
    #[serde(default)]
    pub duration: u64,
    /// The span's attributes, plus `span.kind`, `otel.status_code`, `error` and
    /// `otel.status_description` that Jaeger derives from OTLP's kind and status.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<Tag>,
    /// Key of its process in [`Trace::processes`].
    #[serde(rename = "processID", default)]
    pub process_id: String,
    /// Its events (OTLP span events; Jaeger calls them logs): a fault's decision, an error.
    #[serde(default, deserialize_with = "null_default")]
    pub logs: Vec<Log>,
    /// What Jaeger found wrong with the span (an invalid parent, a clock skew it adjusted).
    #[serde(default, deserialize_with = "null_default")]
    pub warnings: Vec<String>,
}

/// A span event: OTLP's event name is the field `event`, its attributes the other fields.
#[derive(Debug, Clone, Deserialize)]
pub struct Log {
    /// When, in microseconds since the epoch.
    #[serde(default)]
    pub timestamp: u64,
    /// The fields.
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<Tag>,
}

/// A reference from one span to another.
#[derive(Debug, Clone, Deserialize)]
pub struct Reference {
    /// `CHILD_OF` (the parent) or `FOLLOWS_FROM` (a link).
    #[serde(rename = "refType")]
    pub ref_type: String,
    /// The referenced span's trace: a link may point into another trace.
    #[serde(rename = "traceID", default)]
    pub trace_id: String,
    /// The referenced span.
    #[serde(rename = "spanID")]
    pub span_id: String,
}

/// A typed key-value pair.
#[derive(Debug, Clone, Deserialize)]
pub struct Tag {
    /// The attribute key.
    pub key: String,
    /// `string`, `bool`, `int64`, `float64` or `binary`.
    #[serde(rename = "type", default)]
    pub kind: String,
    /// The value, as JSON of that type.
    #[serde(default)]
    pub value: Value,
}

/// The process that emitted spans: the OTLP resource.
#[derive(Debug, Clone, Deserialize)]
pub struct Process {
    /// `service.name`, e.g. `kube-apiserver`.
    #[serde(rename = "serviceName", default)]
    pub service_name: String,
    /// The other resource attributes, e.g. `k8s.node.name`.
    #[serde(default, deserialize_with = "null_default")]
    pub tags: Vec<Tag>,
}

/// Jaeger writes `null` for some empty lists (`"warnings": null`, sometimes `references`).
fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Parses Jaeger's answer; `None` if it holds no trace with spans.
pub fn parse(body: &[u8]) -> Result<Option<Trace>, String> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    Ok(envelope.data.into_iter().find(|t| !t.spans.is_empty()))
}

// === render ===

/// The tree, one line per span, children under their parent in start order; a span whose parent
/// is not in the trace (its process has not exported yet, or never does, like the CLI) is shown
/// at the root. `color` paints error spans red.
pub fn render(trace: &Trace, color: bool) -> String {
    let tree = Tree::new(trace);
    let mut lines = String::new();
    let mut services: Vec<&str> = Vec::new();
    let mut visited = vec![false; trace.spans.len()];
    let mut order = tree.roots.clone();
    // A malformed trace may hold a cycle that no root reaches: start from each leftover too.
    order.extend(tree.by_start.iter().copied());
    for root in order {
        if !visited[root] {
            tree.walk(root, "", "", color, &mut visited, &mut services, &mut lines);
        }
    }
    let spans = match trace.spans.len() {
        1 => "1 span".to_string(),
        n => format!("{n} spans"),
    };
    let start = trace.spans.iter().map(|s| s.start_time).min().unwrap_or_default();
    let end = trace.spans.iter().map(|s| s.start_time + s.duration).max().unwrap_or_default();
    let warnings: String = trace.warnings.iter().map(|w| format!("warning: {w}\n")).collect();
    format!(
        "Trace {}  {spans}  {}  {}\n{warnings}{lines}",
        trace.trace_id,
        services.join(", "),
        duration(end.saturating_sub(start))
    )
}

/// The parent links of a trace's spans, resolved.
struct Tree<'a> {
    trace: &'a Trace,
    /// Each span's children, in start order.
    children: Vec<Vec<usize>>,
    /// Spans without a parent in the trace, in start order.
    roots: Vec<usize>,
    /// Every span, in start order.
    by_start: Vec<usize>,
}

// === impl Tree ===

impl<'a> Tree<'a> {
    fn new(trace: &'a Trace) -> Self {
        let spans = &trace.spans;
        let mut index = HashMap::new();
        for (i, s) in spans.iter().enumerate() {
            index.entry(s.span_id.as_str()).or_insert(i);
        }
        let mut by_start: Vec<usize> = (0..spans.len()).collect();
        by_start.sort_by_key(|&i| (spans[i].start_time, i));
        let mut children = vec![Vec::new(); spans.len()];
        let mut roots = Vec::new();
        for &i in &by_start {
            // The parent is the CHILD_OF reference; failing that, a link within the trace,
            // as Jaeger's UI nests them.
            let within = |kind: &str| {
                spans[i]
                    .references
                    .iter()
                    .filter(|r| r.ref_type == kind && same_trace(&r.trace_id, &trace.trace_id))
                    .find_map(|r| index.get(r.span_id.as_str()).copied().filter(|&p| p != i))
            };
            match within("CHILD_OF").or_else(|| within("FOLLOWS_FROM")) {
                Some(p) => children[p].push(i),
                None => roots.push(i),
            }
        }
        Self { trace, children, roots, by_start }
    }

    #[allow(clippy::too_many_arguments)] // a recursive walk's state
    fn walk<'s>(
        &'s self,
        i: usize,
        lead: &str,
        rest: &str,
        color: bool,
        visited: &mut [bool],
        services: &mut Vec<&'s str>,
        lines: &mut String,
    ) {
        visited[i] = true;
        let service = self.service(i);
        if !services.contains(&service) {
            services.push(service);
        }
        let text = self.line(i);
        let _ = if color && is_error(&self.trace.spans[i]) {
            writeln!(lines, "{lead}{RED}{text}{RESET}")
        } else {
            writeln!(lines, "{lead}{text}")
        };
        let kids: Vec<usize> = self.children[i].iter().copied().filter(|&k| !visited[k]).collect();
        // The span's events and warnings, under its line, beside the stem to its children.
        let under = format!("{rest}{}", if kids.is_empty() { "   " } else { "│  " });
        let span = &self.trace.spans[i];
        for log in &span.logs {
            let _ = writeln!(lines, "{under}· {}", event(log));
        }
        for warning in &span.warnings {
            let _ = writeln!(lines, "{under}· warning: {warning}");
        }
        for (n, &kid) in kids.iter().enumerate() {
            let last = n + 1 == kids.len();
            let (branch, stem) = if last { ("└─ ", "   ") } else { ("├─ ", "│  ") };
            if !visited[kid] {
                self.walk(
                    kid,
                    &format!("{rest}{branch}"),
                    &format!("{rest}{stem}"),
                    color,
                    visited,
                    services,
                    lines,
                );
            }
        }
    }

    fn service(&self, i: usize) -> &'a str {
        self.process(i).map_or("?", |p| p.service_name.as_str())
    }

    fn process(&self, i: usize) -> Option<&'a Process> {
        self.trace.processes.get(&self.trace.spans[i].process_id)
    }

    /// `service  operation  duration  key=value ...`: the span's decision tags, then its
    /// process's Kubernetes attributes (which node, which pod) that the span does not repeat.
    fn line(&self, i: usize) -> String {
        let span = &self.trace.spans[i];
        let mut text = format!("{}  {}  {}", self.service(i), span.operation_name, duration(span.duration));
        let mut seen = HashSet::new();
        let span_tags = span.tags.iter().filter(|t| is_decision(&t.key));
        let process_tags =
            self.process(i).into_iter().flat_map(|p| &p.tags).filter(|t| t.key.starts_with("k8s."));
        for tag in span_tags.chain(process_tags) {
            if seen.insert(tag.key.as_str()) {
                let _ = write!(
                    text,
                    "{}{}={}",
                    if seen.len() == 1 { "  " } else { " " },
                    tag.key,
                    value(&tag.value)
                );
            }
        }
        text
    }
}

/// Whether a reference's trace id is this trace's (Jaeger pads ids to 16 or 32 hex digits; a
/// reference without one is within the trace).
fn same_trace(reference: &str, trace: &str) -> bool {
    let bare = |id: &str| id.trim_start_matches('0').to_ascii_lowercase();
    reference.is_empty() || bare(reference) == bare(trace)
}

fn is_decision(key: &str) -> bool {
    DECISION_PREFIXES.iter().any(|p| key.starts_with(p)) || ERROR_KEYS.contains(&key)
}

/// An event as `name  key=value ...` (the name is Jaeger's `event` field).
fn event(log: &Log) -> String {
    let name = log.fields.iter().find(|f| f.key == "event").map(|f| value(&f.value));
    let mut text = name.unwrap_or_else(|| "event".into());
    // tracing's own bookkeeping (`level`, `target`, `code.*`) says nothing about the flow.
    let noise = |k: &str| {
        matches!(k, "event" | "level" | "target") || k.starts_with("code.") || k.starts_with("thread.")
    };
    for (n, f) in log.fields.iter().filter(|f| !noise(&f.key)).enumerate() {
        let _ = write!(text, "{}{}={}", if n == 0 { "  " } else { " " }, f.key, value(&f.value));
    }
    text
}

/// Jaeger marks a failed span with `error=true` (from OTLP's status ERROR, which it also keeps as
/// `otel.status_code=ERROR`).
fn is_error(span: &Span) -> bool {
    span.tags.iter().any(|t| match (t.key.as_str(), &t.value) {
        ("error", Value::Bool(b)) => *b,
        ("error", Value::String(s)) => s == "true",
        ("otel.status_code", Value::String(s)) => s == "ERROR",
        _ => false,
    })
}

/// A tag value as text: strings bare unless they need quotes to stay one token.
fn value(v: &Value) -> String {
    match v {
        Value::String(s)
            if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c == '"' || c.is_control()) =>
        {
            format!("{s:?}")
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Microseconds as Jaeger's UI shows them: `850µs`, `2.15ms`, `1.2s` (two decimals, truncated).
pub fn duration(us: u64) -> String {
    let (whole, frac, unit) = match us {
        0..1_000 => return format!("{us}µs"),
        1_000..1_000_000 => (us / 1_000, us % 1_000 / 10, "ms"),
        _ => (us / 1_000_000, us % 1_000_000 / 10_000, "s"),
    };
    match frac {
        0 => format!("{whole}{unit}"),
        f if f % 10 == 0 => format!("{whole}.{}{unit}", f / 10),
        f => format!("{whole}.{f:02}{unit}"),
    }
}

#[cfg(test)]
mod tests;
