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
        Self { base: base.trim_end_matches('/').to_string(), http }
    }

    /// Pulls `reference` into `blobs` (a `sha256/` directory of blobs named by hex digest).
    pub async fn pull(&self, reference: &Reference, blobs: &Path) -> Result<Image, PullError> {
        let repo = reference.registry_repository();
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

    async fn manifest(
        &self,
        repo: &str,
        tag_or_digest: &str,
        reference: &Reference,
    ) -> Result<(String, Manifest), PullError> {
        let r = reference.to_string();
        let url = format!("{}/v2/{repo}/manifests/{tag_or_digest}", self.base);
        let fail = |code, m: String| PullError {
            code,
            reference: r.clone(),
            message: format!("failed to resolve reference \"{r}\": {m}"),
        };
        let req = Request::get(&url)
            .header(header::ACCEPT, [OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST, "*/*"].join(", "))
            .body(Empty::new())
            .map_err(|e| fail("Unknown", e.to_string()))?;
        let resp = self.send(req).await.map_err(|e| {
            fail("Unknown", format!("failed to do request: Head \"{url}\": {}", source_chain(&e)))
        })?;
        let status = resp.status();
        let header_digest =
            resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string);
        let content_type =
            resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        match status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Err(fail("NotFound", format!("{r}: not found"))),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                return Err(fail(
                    "Unknown",
                    "pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials".into(),
                ));
            }
            other => {
                return Err(fail(
                    "Unknown",
                    format!("unexpected status from HEAD request to {url}: {other}"),
                ));
            }
        }
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| fail("Unknown", format!("failed to read manifest: {e}")))?
            .to_bytes();
        let digest = format!("sha256:{}", hex(&Sha256::digest(&body)));
        if let Some(h) = header_digest
            && h != digest
        {
            return Err(fail(
                "Unknown",
                format!("manifest digest mismatch: registry says {h}, content is {digest}"),
            ));
        }
        if tag_or_digest.starts_with("sha256:") && tag_or_digest != digest {
            return Err(fail(
                "Unknown",
                format!("manifest digest mismatch: asked {tag_or_digest}, content is {digest}"),
            ));
        }
        let mut manifest: Manifest = serde_json::from_slice(&body)
            .map_err(|e| fail("Unknown", format!("failed to decode manifest: {e}")))?;
        if manifest.media_type.is_empty() {
            manifest.media_type = content_type;
        }
        Ok((digest, manifest))
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
                fail(format!("failed to copy: failed to do request: Get \"{url}\": {}", source_chain(&e)))
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
                return Err(fail(format!(
                    "failed to copy: httpReadSeeker: failed open: unexpected status code {url}: {status}"
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

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
