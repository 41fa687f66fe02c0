//! The OCI distribution client: `GET /v2/<repo>/manifests/<ref>` with the Accept list containerd
//! sends, an index resolved to its linux/amd64 manifest, then the config and layer blobs, each
//! checked against its sha256 digest. Failures read as containerd's do, since the kubelet puts
//! them verbatim into the pod's events and waiting message.

use std::path::Path;

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use super::{APP_LABEL, AppKind, Image, Reference};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema 2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// A failed pull, rendered as the CRI error the kubelet sees from containerd.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rpc error: code = {code} desc = failed to pull and unpack image \"{reference}\": {message}")]
pub struct PullError {
    /// The gRPC code name: `NotFound` or `Unknown`.
    pub code: &'static str,
    /// The normalised reference.
    pub reference: String,
    /// containerd's reason, e.g. `failed to resolve reference "...": ...: not found`.
    pub message: String,
}

/// The registry every image comes from.
#[derive(Debug, Clone)]
pub struct Registry {
    base: String,
    http: Client<HttpConnector, Empty<Bytes>>,
    /// The `Host` a pull from an ECR registry host sends (see [`Registry::pull_with`]).
    host: Option<http::HeaderValue>,
    /// `Authorization: Basic ...`, when the kubelet found credentials for the image.
    authorization: Option<http::HeaderValue>,
    /// The registry's URL as containerd would name it in errors (`https://<ECR host>`).
    shown_base: Option<String>,
}

/// Credentials for one pull, as the kubelet hands them to the runtime (a credential provider's
/// or a pull secret's username and password); sent as HTTP Basic.
#[derive(Clone, PartialEq, Eq)]
pub struct BasicAuth {
    /// The username (`AWS` for ECR).
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth").field("username", &self.username).finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Descriptor {
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Manifest {
    #[serde(default)]
    media_type: String,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: ContainerConfig,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerConfig {
    #[serde(rename = "Labels", default)]
    labels: Option<std::collections::BTreeMap<String, String>>,
    #[serde(rename = "ExposedPorts", default)]
    exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

// === impl Registry ===

impl Registry {
    /// A client for the registry at `base` (`http://cloud:5000`).
    pub fn new(base: &str) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            host: None,
            authorization: None,
            shown_base: None,
        }
    }

    /// Pulls `reference` into `blobs` (a `sha256/` directory of blobs named by hex digest),
    /// anonymously.
    pub async fn pull(&self, reference: &Reference, blobs: &Path) -> Result<Image, PullError> {
        self.pull_with(reference, blobs, None).await
    }

    /// Pulls `reference` with `auth`, if any. An image of an ECR registry host
    /// (`<account>.dkr.ecr.<region>.amazonaws.com/<repo>`) is asked of the lab's registry under
    /// that host name (`Host`), with its own repository path, as if the name resolved to the
    /// cloud: the cloud's registry serves the ECR host behind ECR's Basic auth.
    pub async fn pull_with(
        &self,
        reference: &Reference,
        blobs: &Path,
        auth: Option<&BasicAuth>,
    ) -> Result<Image, PullError> {
        let ecr = netlab_credential_provider::registry::ecr_private_host(&reference.domain).is_some();
        let session = Self {
            host: ecr.then(|| http::HeaderValue::from_str(&reference.domain).ok()).flatten(),
            authorization: auth.and_then(|a| {
                let token = data_encoding::BASE64.encode(format!("{}:{}", a.username, a.password).as_bytes());
                http::HeaderValue::from_str(&format!("Basic {token}")).ok()
            }),
            shown_base: ecr.then(|| format!("https://{}", reference.domain)),
            ..self.clone()
        };
        session.pull_session(reference, blobs, ecr).await
    }

    /// The URL as containerd would print it: the registry's own name for an ECR host.
    fn shown(&self, url: &str) -> String {
        match &self.shown_base {
            Some(shown) => url.replacen(&self.base, shown, 1),
            None => url.to_string(),
        }
    }

    async fn pull_session(&self, reference: &Reference, blobs: &Path, ecr: bool) -> Result<Image, PullError> {
        let repo = if ecr { reference.path.clone() } else { reference.registry_repository() };
        let r = reference.to_string();
        let fail = |code, message: String| PullError { code, reference: r.clone(), message };
        let resolve = |m: String| format!("failed to resolve reference \"{r}\": {m}");

        let (digest, mut manifest) = self.manifest(&repo, &reference.manifest_reference(), reference).await?;
        if let Some(pinned) = &reference.digest
            && pinned != &digest
        {
            return Err(fail(
                "Unknown",
                resolve(format!("digest mismatch: expected {pinned}, got {digest}")),
            ));
        }
        // containerd reports the digest the tag resolved to (the index's, for multi-platform
        // images) as the repo digest.
        let manifest_digest = digest;
        if manifest.media_type == OCI_INDEX
            || manifest.media_type == DOCKER_LIST
            || !manifest.manifests.is_empty()
        {
            let chosen = manifest
                .manifests
                .iter()
                .find(|m| m.platform.as_ref().is_some_and(|p| p.os == "linux" && p.architecture == "amd64"))
                .or_else(|| manifest.manifests.first())
                .ok_or_else(|| {
                    fail("NotFound", "no match for platform in manifest: not found".to_string())
                })?;
            // `manifest` verifies the content against the digest asked for.
            let (_, m) = self.manifest(&repo, &chosen.digest, reference).await?;
            manifest = m;
        }
        let config_desc = manifest
            .config
            .as_ref()
            .ok_or_else(|| fail("Unknown", "failed to unpack image: manifest has no config".into()))?;
        let config_bytes = self.blob(&repo, config_desc, blobs, &r).await?;
        let mut size = config_desc.size.max(config_bytes.len() as u64);
        for layer in &manifest.layers {
            let data = self.blob(&repo, layer, blobs, &r).await?;
            size += data.len() as u64;
        }
        let config: ImageConfig = serde_json::from_slice(&config_bytes).unwrap_or_default();
        let app = match config.config.labels.as_ref().and_then(|l| l.get(APP_LABEL)).map(String::as_str) {
            Some("echo") => AppKind::Echo,
            Some("kv") => AppKind::Kv,
            Some("netexec") => AppKind::Netexec,
            _ => AppKind::Toolbox,
        };
        let port = config
            .config
            .exposed_ports
            .iter()
            .flat_map(|m| m.keys())
            .filter_map(|k| {
                let (port, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                (proto == "tcp").then(|| port.parse().ok()).flatten()
            })
            .next();
        Ok(Image {
            reference: r.clone(),
            manifest_digest,
            config_digest: config_desc.digest.clone(),
            size,
            app,
            port,
        })
    }

    /// A manifest as containerd gets it: the resolver's `HEAD` on the tag (or digest) for the
    /// digest, then the fetcher's `GET` by digest. Each step fails with its own text
    /// (`failed to resolve reference ...` vs `failed to copy: httpReadSeeker: failed open: ...`),
    /// which is why a registry that refuses only GETs (Docker Hub's rate limit does not count
    /// HEADs) shows the `429 ... toomanyrequests` message, and one that refuses everything shows
    /// the HEAD's bare status.
    async fn manifest(
        &self,
        repo: &str,
        tag_or_digest: &str,
        reference: &Reference,
    ) -> Result<(String, Manifest), PullError> {
        let r = reference.to_string();
        let accept = [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST, "*/*"].join(", ");
        let url = format!("{}/v2/{repo}/manifests/{tag_or_digest}", self.base);
        let fail = |code, m: String| PullError {
            code,
            reference: r.clone(),
            message: format!("failed to resolve reference \"{r}\": {m}"),
        };
        let req = Request::head(&url)
            .header(header::ACCEPT, &accept)
            .body(Empty::new())
            .map_err(|e| fail("Unknown", e.to_string()))?;
        let resp = self.send(req).await.map_err(|e| {
            fail(
                "Unknown",
                format!(
                    "failed to do request: Head \"{url}\": {}",
                    netlab_credential_provider::http::go_net_error(&e, &url)
                ),
            )
        })?;
        match resp.status() {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(fail("NotFound", format!("{r}: not found"))),
            // The registry's challenge is Basic and the node has no credentials for it.
            StatusCode::UNAUTHORIZED => {
                return Err(fail(
                    "Unknown",
                    "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials".into(),
                ));
            }
            other => {
                return Err(fail(
                    "Unknown",
                    format!("unexpected status from HEAD request to {}: {other}", self.shown(&url)),
                ));
            }
        }
        let digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| tag_or_digest.to_string());

        let url = format!("{}/v2/{repo}/manifests/{digest}", self.base);
        let copy = |m: String| PullError {
            code: "Unknown",
            reference: r.clone(),
            message: format!("failed to copy: httpReadSeeker: failed open: {m}"),
        };
        let req = Request::get(&url)
            .header(header::ACCEPT, &accept)
            .body(Empty::new())
            .map_err(|e| copy(e.to_string()))?;
        let resp = self.send(req).await.map_err(|e| {
            copy(format!(
                "failed to do request: Get \"{url}\": {}",
                netlab_credential_provider::http::go_net_error(&e, &url)
            ))
        })?;
        let status = resp.status();
        let content_type =
            resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| copy(format!("failed to read manifest: {e}")))?
            .to_bytes();
        if status != StatusCode::OK {
            return Err(copy(failed_open(&self.shown(&url), status, &body)));
        }
        let content = format!("sha256:{}", hex(&Sha256::digest(&body)));
        if digest.starts_with("sha256:") && digest != content {
            return Err(fail(
                "Unknown",
                format!("manifest digest mismatch: registry says {digest}, content is {content}"),
            ));
        }
        if tag_or_digest.starts_with("sha256:") && tag_or_digest != content {
            return Err(fail(
                "Unknown",
                format!("manifest digest mismatch: asked {tag_or_digest}, content is {content}"),
            ));
        }
        let mut manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| fail("Unknown", format!("failed to decode manifest: {e}")))?;
        if manifest.media_type.is_empty() {
            manifest.media_type = content_type;
        }
        Ok((content, manifest))
    }

    /// One registry request, as its own span (method, URL, status) carrying the trace context in
    /// a `traceparent` header, so the pull's requests show in the pod's trace.
    async fn send(
        &self,
        mut req: Request<Empty<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        let span = tracing::info_span!(
            "registry request",
            otel.kind = "client",
            http.request.method = %req.method(),
            url.full = %req.uri(),
            http.response.status_code = tracing::field::Empty,
        );
        if let Some(host) = &self.host {
            req.headers_mut().insert(header::HOST, host.clone());
        }
        if let Some(authorization) = &self.authorization {
            req.headers_mut().insert(header::AUTHORIZATION, authorization.clone());
        }
        let traceparent = span.in_scope(netlab_telemetry::propagation::current_traceparent);
        if let Some(v) = traceparent.and_then(|tp| http::HeaderValue::from_str(&tp).ok()) {
            req.headers_mut().insert("traceparent", v);
        }
        let resp = tracing::Instrument::instrument(self.http.request(req), span.clone()).await;
        if let Ok(r) = &resp {
            span.record("http.response.status_code", r.status().as_u16());
        }
        resp
    }

    /// A blob, from the local store if present, else from the registry (verified and stored).
    async fn blob(&self, repo: &str, desc: &Descriptor, blobs: &Path, r: &str) -> Result<Bytes, PullError> {
        let fail = |m: String| PullError { code: "Unknown", reference: r.to_string(), message: m };
        let hex_digest = desc
            .digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| fail(format!("unsupported digest {:?}", desc.digest)))?;
        let path = blobs.join(hex_digest);
        if let Ok(data) = tokio::fs::read(&path).await {
            return Ok(Bytes::from(data));
        }
        let mut url = format!("{}/v2/{repo}/blobs/{}", self.base, desc.digest);
        let mut redirects = 0;
        let data = loop {
            let req = Request::get(&url).body(Empty::new()).map_err(|e| fail(e.to_string()))?;
            let resp = self.send(req).await.map_err(|e| {
                fail(format!(
                    "failed to copy: httpReadSeeker: failed open: failed to do request: Get \"{url}\": {}",
                    netlab_credential_provider::http::go_net_error(&e, &url)
                ))
            })?;
            let status = resp.status();
            if status.is_redirection() && redirects < 3 {
                let Some(loc) = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()) else {
                    return Err(fail(format!("failed to copy: redirect without location from {url}")));
                };
                url = if loc.starts_with('/') { format!("{}{loc}", self.base) } else { loc.to_string() };
                redirects += 1;
                continue;
            }
            if status == StatusCode::NOT_FOUND {
                return Err(fail(format!(
                    "failed to copy: httpReadSeeker: failed open: content at {url} not found: not found"
                )));
            }
            if !status.is_success() {
                let body = resp.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                return Err(fail(format!(
                    "failed to copy: httpReadSeeker: failed open: {}",
                    failed_open(&self.shown(&url), status, &body)
                )));
            }
            break resp
                .into_body()
                .collect()
                .await
                .map_err(|e| fail(format!("failed to copy: {e}")))?
                .to_bytes();
        };
        let got = hex(&Sha256::digest(&data));
        if got != hex_digest {
            return Err(fail(format!(
                "failed to copy: unexpected commit digest sha256:{got}, expected {}: failed precondition",
                desc.digest
            )));
        }
        if desc.size != 0 && desc.size != data.len() as u64 {
            return Err(fail(format!(
                "failed to copy: unexpected size {} for {}, expected {}",
                data.len(),
                desc.digest,
                desc.size
            )));
        }
        let tmp = blobs.join(format!("{hex_digest}.tmp"));
        if tokio::fs::write(&tmp, &data).await.is_ok() {
            let _ = tokio::fs::rename(&tmp, &path).await;
        }
        Ok(data)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// containerd's `httpReadSeeker` text for a non-2xx fetch: `content at <url> not found` for a
/// 404, else the status, with the registry's first error (`code: message`, the code lowercased
/// with `_` as spaces, as containerd's errcode prints it) when the body carries one.
pub fn failed_open(url: &str, status: StatusCode, body: &[u8]) -> String {
    if status == StatusCode::NOT_FOUND {
        return format!("content at {url} not found: not found");
    }
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<ErrorBody>,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(body).ok().and_then(|e| e.errors.into_iter().next()) {
        Some(e) => format!(
            "unexpected status code {url}: {status} - Server message: {}: {}",
            e.code.replace('_', " ").to_ascii_lowercase(),
            e.message
        ),
        None => format!("unexpected status code {url}: {status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_ecr_image_is_asked_under_its_host_with_the_kubelets_credentials() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        // A registry that keeps the first request's head and refuses it as ECR refuses a
        // token whose identity may not ecr:BatchGetImage.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                head.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(head).unwrap().to_ascii_lowercase()
        });
        let registry = Registry::new(&format!("http://{addr}"));
        let reference = Reference::parse("123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx:1.27").unwrap();
        let auth = BasicAuth { username: "AWS".into(), password: "pw".into() };
        let dir = tempfile::tempdir().unwrap();
        let err = registry.pull_with(&reference, dir.path(), Some(&auth)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "rpc error: code = Unknown desc = failed to pull and unpack image \"123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx:1.27\": failed to resolve reference \"123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx:1.27\": unexpected status from HEAD request to https://123456789012.dkr.ecr.us-east-1.amazonaws.com/v2/nginx/manifests/1.27: 403 Forbidden"
        );
        let head = server.await.unwrap();
        assert!(head.starts_with("head /v2/nginx/manifests/1.27 http/1.1\r\n"), "{head}");
        assert!(head.contains("\r\nhost: 123456789012.dkr.ecr.us-east-1.amazonaws.com\r\n"), "{head}");
        // base64("AWS:pw")
        assert!(head.contains("\r\nauthorization: basic qvdtonb3\r\n"), "{head}");
    }

    #[test]
    fn failed_open_reads_like_containerd() {
        let url = "http://127.0.0.1:5000/v2/library/nginx/manifests/sha256:ab";
        let body = br#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#;
        assert_eq!(
            failed_open(url, StatusCode::TOO_MANY_REQUESTS, body),
            format!(
                "unexpected status code {url}: 429 Too Many Requests - Server message: toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"
            )
        );
        let denied = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#;
        assert!(
            failed_open(url, StatusCode::BAD_REQUEST, denied)
                .ends_with("400 Bad Request - Server message: manifest unknown: manifest unknown")
        );
        assert_eq!(
            failed_open(url, StatusCode::BAD_GATEWAY, b"<html>"),
            format!("unexpected status code {url}: 502 Bad Gateway")
        );
        assert_eq!(
            failed_open(url, StatusCode::NOT_FOUND, b""),
            format!("content at {url} not found: not found")
        );
    }
}
