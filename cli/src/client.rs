//! The connection to the apiserver, and the translation of its gRPC statuses into kubectl's
//! error wording.
//!
//! Commands talk to the `Cluster` trait rather than to tonic, so apply/delete/scale logic can be
//! unit-tested against an in-memory fake, and so this file is the only one that knows objects
//! travel as JSON bytes inside protobuf messages.

use std::time::Duration;

use netlab_proto::apiserver::v1::{
    CreateRequest, DeleteRequest, GetRequest, ListRequest, Resource, Status, UpdateRequest,
    api_server_client::ApiServerClient,
};
use prost::Message as _;
use serde_json::Value;
use tonic::{Code, transport::Channel};

use crate::report::{ApiError, Cause, Problem};

#[cfg(test)]
pub(crate) mod fake;

/// How long to wait for the TCP connection before calling the server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Lists of a busy lab exceed tonic's 4 MiB default.
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The apiserver operations the commands need, over Kubernetes JSON.
pub(crate) trait Cluster {
    /// Reads one object.
    async fn get(&mut self, r: Resource, ns: &str, name: &str) -> Result<Value, Problem>;
    /// Lists objects; an empty namespace means all namespaces.
    async fn list(
        &mut self,
        r: Resource,
        ns: &str,
        labels: &str,
        fields: &str,
    ) -> Result<Vec<Value>, Problem>;
    /// Creates an object; fails with `AlreadyExists` if present.
    async fn create(&mut self, r: Resource, ns: &str, obj: &Value) -> Result<Value, Problem>;
    /// Replaces an object; a non-empty `metadata.resourceVersion` is a precondition.
    async fn update(&mut self, r: Resource, ns: &str, obj: &Value) -> Result<Value, Problem>;
    /// Deletes an object and returns it.
    async fn delete(
        &mut self,
        r: Resource,
        ns: &str,
        name: &str,
        grace: Option<i64>,
    ) -> Result<Value, Problem>;
    /// The server's warnings since the last call (kubectl prints them as `Warning: <text>`).
    fn take_warnings(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// An apiserver client that connects on first use, so argument errors are reported without a
/// server, as kubectl reports them before contacting one.
pub struct Api {
    /// `http://host:port` or bare `host:port`.
    server: String,
    /// The connection, once made.
    conn: Option<Connection>,
    /// Warnings the server answered with, not yet printed.
    warnings: Vec<String>,
}

/// The W3C `traceparent` of this `netlab` run: one trace per command, so everything a command
/// sets off (the apiserver's work, and through the `netlab.io/traceparent` annotation the
/// controllers', scheduler's, kubelets' and proxies' work) lands in one trace.
pub fn traceparent() -> &'static str {
    static TP: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TP.get_or_init(|| {
        let trace = uuid::Uuid::new_v4().simple().to_string();
        let span = &uuid::Uuid::new_v4().simple().to_string()[..16];
        format!("00-{trace}-{span}-01")
    })
}

/// The trace id part of [`traceparent`].
pub fn trace_id() -> &'static str {
    &traceparent()[3..35]
}

pub use netlab_proto::trace::TRACEPARENT_ANNOTATION;

type Traced = tonic::service::interceptor::InterceptedService<
    Channel,
    fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>,
>;

tokio::task_local! {
    /// A trace of its own for the requests of one probe (see [`in_trace`]).
    static PROBE_TRACE: String;
}

/// Runs `f` with its requests in the trace `traceparent` instead of the run's: a lab check runs
/// several probes, and each must be found on its own in the trace store.
pub async fn in_trace<F: std::future::Future>(traceparent: String, f: F) -> F::Output {
    PROBE_TRACE.scope(traceparent, f).await
}

/// Adds this run's `traceparent` (or the probe's, inside [`in_trace`]) to a request's metadata.
#[allow(clippy::result_large_err)] // tonic's interceptor signature
pub fn with_traceparent(mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    let value = PROBE_TRACE.try_with(|tp| tp.parse()).unwrap_or_else(|_| traceparent().parse());
    if let Ok(v) = value {
        req.metadata_mut().insert("traceparent", v);
    }
    Ok(req)
}

/// A connected apiserver client.
struct Connection {
    /// The generated gRPC client.
    inner: ApiServerClient<Traced>,
    /// `host:port`, for the connection-refused message.
    authority: String,
}

// === impl Api ===

impl Api {
    /// A client for `server`; nothing is dialled yet.
    pub fn new(server: &str) -> Self {
        Self { server: server.to_string(), conn: None, warnings: Vec::new() }
    }

    async fn conn(&mut self) -> Result<&mut Connection, Problem> {
        if self.conn.is_none() {
            self.conn = Some(Connection::connect(&self.server).await?);
        }
        // Just set above.
        self.conn.as_mut().ok_or_else(|| Problem::client("not connected"))
    }
}

// === impl Connection ===

impl Connection {
    /// Connects to `server` (`http://host:port` or bare `host:port`).
    async fn connect(server: &str) -> Result<Self, Problem> {
        let url = if server.contains("://") { server.to_string() } else { format!("http://{server}") };
        let endpoint = tonic::transport::Endpoint::from_shared(url)
            .map_err(|e| Problem::client(format!("invalid server address \"{server}\": {e}")))?
            .connect_timeout(CONNECT_TIMEOUT);
        let authority = endpoint.uri().authority().map_or_else(|| server.to_string(), |a| a.to_string());
        let channel = endpoint.connect().await.map_err(|e| connect_problem(&authority, &e))?;
        let inner = ApiServerClient::with_interceptor(channel, with_traceparent as fn(_) -> _)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { inner, authority })
    }

    fn problem(&self, status: tonic::Status) -> Problem {
        problem_from_status(&status, &self.authority)
    }
}

impl Api {
    /// `serviceaccounts/NAME/token`: the TokenRequest answered, and the server's warnings.
    pub async fn create_token(&mut self, ns: &str, name: &str, request: &Value) -> Result<Value, Problem> {
        let c = self.conn().await?;
        let req = netlab_proto::apiserver::v1::CreateTokenRequest {
            namespace: ns.to_string(),
            name: name.to_string(),
            json: encode(request),
        };
        let resp = c.inner.create_token(req).await.map_err(|status| c.problem(status))?;
        self.warnings.extend(warnings(resp.metadata()));
        decode(&resp.into_inner().json)
    }
}

impl Cluster for Api {
    async fn get(&mut self, r: Resource, ns: &str, name: &str) -> Result<Value, Problem> {
        let c = self.conn().await?;
        let req = GetRequest { resource: r.into(), namespace: ns.to_string(), name: name.to_string() };
        match c.inner.get(req).await {
            Ok(resp) => decode(&resp.into_inner().json),
            Err(status) => Err(c.problem(status)),
        }
    }

    async fn list(
        &mut self,
        r: Resource,
        ns: &str,
        labels: &str,
        fields: &str,
    ) -> Result<Vec<Value>, Problem> {
        let c = self.conn().await?;
        let req = ListRequest {
            resource: r.into(),
            namespace: ns.to_string(),
            label_selector: labels.to_string(),
            field_selector: fields.to_string(),
        };
        match c.inner.list(req).await {
            Ok(resp) => resp.into_inner().items.iter().map(|o| decode(&o.json)).collect(),
            Err(status) => Err(c.problem(status)),
        }
    }

    async fn create(&mut self, r: Resource, ns: &str, obj: &Value) -> Result<Value, Problem> {
        let c = self.conn().await?;
        let req = CreateRequest { resource: r.into(), json: encode(obj), namespace: ns.to_string() };
        let resp = c.inner.create(req).await.map_err(|status| c.problem(status))?;
        self.warnings.extend(warnings(resp.metadata()));
        decode(&resp.into_inner().json)
    }

    async fn update(&mut self, r: Resource, ns: &str, obj: &Value) -> Result<Value, Problem> {
        let c = self.conn().await?;
        let req = UpdateRequest { resource: r.into(), json: encode(obj), namespace: ns.to_string() };
        let resp = c.inner.update(req).await.map_err(|status| c.problem(status))?;
        self.warnings.extend(warnings(resp.metadata()));
        decode(&resp.into_inner().json)
    }

    async fn delete(
        &mut self,
        r: Resource,
        ns: &str,
        name: &str,
        grace: Option<i64>,
    ) -> Result<Value, Problem> {
        let c = self.conn().await?;
        let req = DeleteRequest {
            resource: r.into(),
            namespace: ns.to_string(),
            name: name.to_string(),
            resource_version: None,
            grace_period_seconds: grace,
        };
        match c.inner.delete(req).await {
            Ok(resp) => decode(&resp.into_inner().json),
            Err(status) => Err(c.problem(status)),
        }
    }

    fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }
}

/// The texts of the `warning` entries of a response: the apiserver's `Warning` headers,
/// `299 - "<text>"` with `"` and `\` escaped.
fn warnings(meta: &tonic::metadata::MetadataMap) -> Vec<String> {
    meta.get_all("warning").iter().filter_map(|v| warning_text(v.to_str().ok()?)).collect()
}

fn warning_text(header: &str) -> Option<String> {
    let mut parts = header.splitn(3, ' ');
    let (_code, _agent, quoted) = (parts.next()?, parts.next()?, parts.next()?);
    let inner = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let mut text = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        text.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(text)
}

/// `prost::bytes` is the `bytes` crate re-exported, so the CLI needs no direct dependency.
fn encode(obj: &Value) -> prost::bytes::Bytes {
    // Serializing a `Value` cannot fail: its map keys are strings.
    serde_json::to_vec(obj).unwrap_or_default().into()
}

fn decode(json: &[u8]) -> Result<Value, Problem> {
    serde_json::from_slice(json).map_err(|e| {
        Problem::Raw(format!("Server returned an unexpected response: invalid JSON object: {e}"))
    })
}

/// The message kubectl prints when nothing listens on the server's port.
pub fn refused_message(authority: &str) -> String {
    format!("The connection to the server {authority} was refused - did you specify the right host or port?")
}

fn connect_problem(authority: &str, err: &(dyn std::error::Error + 'static)) -> Problem {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            return Problem::Raw(refused_message(authority));
        }
        innermost = e.to_string();
        source = e.source();
    }
    Problem::Raw(format!("Unable to connect to the server: {innermost}"))
}

/// Translates a gRPC status into kubectl's wording: the apiserver's `Status` from the details
/// when present, else a best guess from the gRPC code.
pub fn problem_from_status(status: &tonic::Status, authority: &str) -> Problem {
    if !status.details().is_empty()
        && let Ok(s) = Status::decode(status.details())
        && (!s.reason.is_empty() || !s.message.is_empty())
    {
        return Problem::from(ApiError {
            reason: s.reason,
            message: s.message,
            code: s.code,
            kind: s.kind,
            name: s.name,
            causes: s
                .causes
                .into_iter()
                .map(|c| Cause { reason: c.reason, message: c.message, field: c.field })
                .collect(),
        });
    }
    let reason = match status.code() {
        Code::Unavailable => {
            let refused = status.message().to_ascii_lowercase().contains("refused")
                || status.message().to_ascii_lowercase().contains("connect");
            return Problem::Raw(if refused {
                refused_message(authority)
            } else {
                format!("Unable to connect to the server: {}", status.message())
            });
        }
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::Aborted => "Conflict",
        Code::InvalidArgument => "BadRequest",
        Code::OutOfRange => "Expired",
        Code::Internal => "InternalError",
        Code::DeadlineExceeded => "Timeout",
        Code::PermissionDenied => "Forbidden",
        Code::Unauthenticated => "Unauthorized",
        Code::Unimplemented => "MethodNotAllowed",
        _ => "",
    };
    Problem::from(ApiError::new(reason, status.message()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlab_proto::apiserver::v1::StatusCause;

    fn status_with(details: Status, code: Code) -> tonic::Status {
        tonic::Status::with_details(code, "ignored", details.encode_to_vec().into())
    }

    #[test]
    fn details_carry_the_kubernetes_status() {
        let st = status_with(
            Status {
                reason: "NotFound".into(),
                message: "services \"x\" not found".into(),
                code: 404,
                kind: "services".into(),
                name: "x".into(),
                causes: vec![],
            },
            Code::NotFound,
        );
        let p = problem_from_status(&st, "127.0.0.1:6443");
        assert!(p.is_not_found());
        assert_eq!(p.to_string(), "Error from server (NotFound): services \"x\" not found");

        let st = status_with(
            Status {
                reason: "Invalid".into(),
                message: "The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\"".into(),
                code: 422,
                kind: "Service".into(),
                name: "Orders".into(),
                causes: vec![StatusCause {
                    reason: "FieldValueInvalid".into(),
                    message: "Invalid value: \"Orders\"".into(),
                    field: "metadata.name".into(),
                }],
            },
            Code::InvalidArgument,
        );
        let p = problem_from_status(&st, "127.0.0.1:6443");
        assert_eq!(
            p.to_string(),
            "The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\""
        );
    }

    #[test]
    fn warnings_are_the_header_texts() {
        let mut meta = tonic::metadata::MetadataMap::new();
        meta.append("warning", "299 - \"spec.selector: no pod is selected\"".parse().unwrap());
        meta.append("warning", "299 - \"a \\\"quoted\\\" word\"".parse().unwrap());
        assert_eq!(warnings(&meta), ["spec.selector: no pod is selected", "a \"quoted\" word"]);
        assert_eq!(warning_text("garbage"), None);
    }

    #[test]
    fn missing_details_fall_back_to_the_grpc_code() {
        let st = tonic::Status::new(Code::Aborted, "the object has been modified");
        assert_eq!(
            problem_from_status(&st, "h:1").to_string(),
            "Error from server (Conflict): the object has been modified"
        );
        let st =
            tonic::Status::new(Code::Unavailable, "tcp connect error: Connection refused (os error 111)");
        assert_eq!(
            problem_from_status(&st, "127.0.0.1:6443").to_string(),
            "The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?"
        );
        let st = tonic::Status::new(Code::Unknown, "boom");
        assert_eq!(problem_from_status(&st, "h:1").to_string(), "Error from server: boom");
    }
}
