//! The plugin's HTTP/1.1 client (IMDS and the ECR API are both plain HTTP in the lab): one span
//! per request carrying `traceparent`, a 30 s timeout as the upstream plugin's client has, and
//! send failures worded as Go's net/http words them, since the SDK's errors embed those.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt as _, Full};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

/// The upstream plugin's HTTP client timeout.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A request that got no answer, as Go's `*url.Error` prints: `Get "<url>": <cause>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{method} \"{url}\": {cause}")]
pub struct SendError {
    /// `Get`, `Put`, `Post` (Go's capitalisation).
    pub method: String,
    /// The URL.
    pub url: String,
    /// `dial tcp 127.0.0.1:1338: connect: connection refused`, `EOF`, `context deadline exceeded`.
    pub cause: String,
}

/// The HTTP client.
#[derive(Debug, Clone)]
pub struct HttpClient {
    inner: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::new(TIMEOUT)
    }
}

impl HttpClient {
    /// A client whose requests give up after `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self::bound(timeout, None)
    }

    /// A client whose connections leave from `local_addr` (None: the kernel picks), for a
    /// caller that must be seen at its node's address: the lab's IMDS tells instances apart by
    /// the peer address, where the real one asks the hypervisor.
    pub fn bound(timeout: Duration, local_addr: Option<std::net::IpAddr>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        connector.set_local_address(local_addr);
        Self { inner: Client::builder(TokioExecutor::new()).build(connector), timeout }
    }

    /// Sends `req` in its own client span named `name`; the body is read whole.
    pub async fn send(&self, name: &str, mut req: Request<Bytes>) -> Result<Response<Bytes>, SendError> {
        let span = tracing::info_span!(
            "http.client",
            otel.name = %name,
            otel.kind = "client",
            http.request.method = %req.method(),
            url.full = %req.uri(),
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        if let Some(tp) = span.in_scope(netlab_telemetry::propagation::current_traceparent)
            && let Ok(v) = http::HeaderValue::from_str(&tp)
        {
            req.headers_mut().insert("traceparent", v);
        }
        let method = go_method(req.method());
        let url = req.uri().to_string();
        let fail = |cause: String| SendError { method: method.clone(), url: url.clone(), cause };
        let (parts, body) = req.into_parts();
        let req = Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let resp = self.inner.request(req).await.map_err(|e| fail(go_net_error(&e, &url)))?;
            let (parts, body) = resp.into_parts();
            let body = body.collect().await.map_err(|e| fail(e.to_string()))?.to_bytes();
            Ok(Response::from_parts(parts, body))
        };
        let result =
            match tokio::time::timeout(self.timeout, tracing::Instrument::instrument(exchange, span.clone()))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(fail("context deadline exceeded".into())),
            };
        match &result {
            Ok(r) => {
                span.record("http.response.status_code", r.status().as_u16());
            }
            Err(_) => {
                span.record("otel.status_code", "ERROR");
            }
        }
        result
    }
}

/// Go's spelling of a method in `*url.Error` (`Get`, `Put`, `Post`).
fn go_method(m: &http::Method) -> String {
    let s = m.as_str();
    let mut out = s[..1].to_string();
    out.push_str(&s[1..].to_ascii_lowercase());
    out
}

/// A failed exchange as Go's net/http prints it (the plugin's and containerd's texts embed
/// these): refused dials and reset reads as `net.OpError`s, a timed-out dial as `i/o timeout`, a
/// connection closed without an answer as `EOF`. The local address Go would print before `->` is
/// not known here, so the error names only the remote one (the form Go uses when it has no
/// source address). Anything else: the error and its sources.
pub fn go_net_error(e: &hyper_util::client::legacy::Error, url: &str) -> String {
    let remote = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or(url);
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    return format!("dial tcp {remote}: connect: connection refused");
                }
                std::io::ErrorKind::ConnectionReset => {
                    return format!("read tcp {remote}: read: connection reset by peer");
                }
                std::io::ErrorKind::TimedOut => return format!("dial tcp {remote}: i/o timeout"),
                _ => {}
            }
        }
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_incomplete_message()
        {
            return "EOF".into();
        }
        cur = err.source();
    }
    let mut s = e.to_string();
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
