//! IMDS, the instance metadata service of the nodes as EC2 instances: IMDSv2's session tokens
//! (`PUT /latest/api/token`, 1–21600 s, refused with `X-Forwarded-For`), IMDSv1 where the
//! instance allows it, the metadata paths ipamd and the SDKs read, the identity document, and
//! the node role's rotating credentials under `iam/security-credentials/`.
//!
//! The real service knows which instance asks from the hypervisor; here the asker is the node
//! whose address the request comes from (its `InternalIP`, watched from the apiserver) or the
//! instance whose private IP it is. The PUT answer carries the instance's hop limit
//! (`HttpPutResponseHopLimit`, the IP TTL of the real answer) in [`HOP_LIMIT_HEADER`], so the node
//! that forwards a pod's request can drop it when the pod is further away than the limit, as the
//! real packet dies on the way (facts: why pods cannot get an IMDSv2 token with hop limit 1).
//! Errors are IMDS's own HTML pages (`401 - Unauthorized`, `404 - Not Found`, ...).

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    response::Response,
};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Node;
use netlab_client::reflector::Cache;
use tracing::{Instrument as _, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::state::Shared;

/// The header a token request names its lifetime in (seconds).
pub const TTL_HEADER: &str = "x-aws-ec2-metadata-token-ttl-seconds";
/// The header a metadata request carries its token in.
pub const TOKEN_HEADER: &str = "x-aws-ec2-metadata-token";
/// The IP TTL the PUT answer leaves with, for the forwarding node to enforce.
pub const HOP_LIMIT_HEADER: &str = "x-netlab-imds-hop-limit";
/// The longest a token lives: six hours.
pub const MAX_TTL: u32 = 21_600;
/// How long the role credentials IMDS hands out live: the role's default maximum session (AWS's
/// instance credentials live some hours; the lab keeps within the role's limit). New ones come
/// five minutes before the old expire, as AWS rotates them.
pub const CREDENTIALS_LIFETIME: u32 = 3600;

/// IMDS for every instance of the account.
pub struct Imds {
    aws: Arc<Shared>,
    nodes: Option<Cache<Node>>,
    /// Issued tokens: token → (instance id, expiry).
    tokens: Mutex<HashMap<String, (String, Timestamp)>>,
    /// The credentials each instance was last given: instance id → (document, expiry).
    credentials: Mutex<HashMap<String, (String, Timestamp)>>,
}

// === impl Imds ===

impl std::fmt::Debug for Imds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imds").field("nodes", &self.nodes.is_some()).finish_non_exhaustive()
    }
}

impl Imds {
    /// IMDS over `aws`, finding nodes by address in `nodes` (None: by private IP only).
    pub fn new(aws: Arc<Shared>, nodes: Option<Cache<Node>>) -> Self {
        Self { aws, nodes, tokens: Mutex::default(), credentials: Mutex::default() }
    }

    /// The instance asking from `ip`: the node with that InternalIP, by its `Name` tag, or the
    /// instance with that private IP.
    fn instance_at(&self, ip: IpAddr) -> Option<String> {
        let node_name = self.nodes.as_ref().and_then(|cache| {
            cache.list().into_iter().find_map(|node| {
                let addresses = node.status.as_ref()?.addresses.as_ref()?;
                addresses
                    .iter()
                    .any(|a| a.type_ == "InternalIP" && a.address.parse::<IpAddr>().ok() == Some(ip))
                    .then(|| node.metadata.name.clone())
                    .flatten()
            })
        });
        self.aws.read(|account| {
            let by_name = node_name.as_ref().and_then(|name| {
                account
                    .ec2
                    .instances
                    .values()
                    .find(|i| i.tags.get("Name") == Some(name))
                    .map(|i| i.id.clone())
            });
            by_name.or_else(|| match ip {
                IpAddr::V4(v4) => account.ec2.instance_by_ip(v4).map(|i| i.id.clone()),
                IpAddr::V6(_) => None,
            })
        })
    }
}

/// IMDS's router.
pub fn router(imds: Arc<Imds>) -> Router {
    Router::new().fallback(handle).with_state(imds)
}

async fn handle(State(imds): State<Arc<Imds>>, req: Request) -> Response {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip());
    let span = tracing::info_span!(
        "imds.request",
        otel.name = %format!("{} {}", req.method(), req.uri().path()),
        otel.kind = "server",
        netlab.subsystem = "imds",
        http.request.method = %req.method(),
        url.path = %req.uri().path(),
        client.address = ?peer,
        aws.ec2.instance_id = Empty,
        netlab.imds.version = Empty,
        http.response.status_code = Empty,
    );
    let _ = span.set_parent(netlab_telemetry::propagation::extract(req.headers()));
    let (parts, _) = req.into_parts();
    // Until the node objects are first listed (the cloud just started), an asker is not known
    // yet rather than unknown: wait for the list, a few seconds at most.
    if let Some(cache) = &imds.nodes
        && !cache.is_synced()
    {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), cache.wait_synced()).await;
    }
    let response = async { serve(&imds, peer, &parts) }.instrument(span.clone()).await;
    span.record("http.response.status_code", response.status().as_u16());
    response
}

fn serve(imds: &Imds, peer: Option<IpAddr>, req: &http::request::Parts) -> Response {
    let span = tracing::Span::current();
    let Some(instance_id) = peer.and_then(|ip| imds.instance_at(ip)) else {
        tracing::debug!(?peer, "No instance at this address.");
        return page(StatusCode::NOT_FOUND);
    };
    span.record("aws.ec2.instance_id", instance_id.as_str());
    let Some((meta, options, profile)) = imds.aws.read(|a| {
        let inst = a.ec2.instance(&instance_id)?;
        Some((
            a.ec2.instance_metadata(&instance_id)?,
            inst.metadata_options.clone(),
            inst.iam_instance_profile.clone(),
        ))
    }) else {
        return page(StatusCode::NOT_FOUND);
    };
    if options.http_endpoint == "disabled" {
        // A disabled endpoint does not answer HTTP at all; the nearest an HTTP server gets.
        return page(StatusCode::FORBIDDEN);
    }
    let now = Timestamp::now();
    let path = req.uri.path();
    if path == "/latest/api/token" {
        if req.method != Method::PUT {
            return page(StatusCode::METHOD_NOT_ALLOWED);
        }
        if req.headers.contains_key("x-forwarded-for") {
            return page(StatusCode::FORBIDDEN);
        }
        let ttl = req
            .headers
            .get(TTL_HEADER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|t| (1..=MAX_TTL).contains(t));
        let Some(ttl) = ttl else { return page(StatusCode::BAD_REQUEST) };
        let token = new_token();
        let expires = now + SignedDuration::from_secs(ttl.into());
        let mut tokens = imds.tokens.lock().unwrap_or_else(|e| e.into_inner());
        tokens.retain(|_, (_, exp)| *exp > now);
        tokens.insert(token.clone(), (instance_id, expires));
        span.record("netlab.imds.version", "v2");
        let mut r = text(StatusCode::OK, token);
        r.headers_mut().insert(TTL_HEADER, HeaderValue::from(ttl));
        r.headers_mut()
            .insert(HOP_LIMIT_HEADER, HeaderValue::from(u16::from(options.http_put_response_hop_limit)));
        return r;
    }
    if req.method != Method::GET && req.method != Method::HEAD {
        return page(StatusCode::METHOD_NOT_ALLOWED);
    }
    match req.headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        Some(token) => {
            let tokens = imds.tokens.lock().unwrap_or_else(|e| e.into_inner());
            // A token works only on the instance that issued it, and only until it expires.
            match tokens.get(token) {
                Some((id, exp)) if *id == instance_id && *exp > now => {}
                _ => return page(StatusCode::UNAUTHORIZED),
            }
            span.record("netlab.imds.version", "v2");
        }
        None if options.http_tokens == "required" => return page(StatusCode::UNAUTHORIZED),
        None => {
            span.record("netlab.imds.version", "v1");
        }
    }
    let body = if let Some(rest) = path.strip_prefix("/latest/meta-data/") {
        match rest.strip_prefix("iam/") {
            Some(iam) => match &profile {
                Some(profile) => iam_path(imds, &instance_id, profile, iam, now),
                None => None,
            },
            None if rest == "iam" => profile.as_ref().map(|_| "info\nsecurity-credentials/".to_string()),
            None => meta.get(rest),
        }
    } else {
        match path {
            "/" => Some("latest".into()),
            "/latest" | "/latest/" => Some("dynamic\nmeta-data".into()),
            "/latest/meta-data" => meta.get(""),
            "/latest/dynamic" | "/latest/dynamic/" => Some("instance-identity/".into()),
            "/latest/dynamic/instance-identity" | "/latest/dynamic/instance-identity/" => {
                Some("document".into())
            }
            "/latest/dynamic/instance-identity/document" => Some(meta.identity_document()),
            _ => None,
        }
    };
    match body {
        Some(b) if req.method == Method::HEAD => {
            let mut r = text(StatusCode::OK, String::new());
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(b.len()));
            r
        }
        Some(b) => text(StatusCode::OK, b),
        None => page(StatusCode::NOT_FOUND),
    }
}

/// `iam/...` for an instance with `profile`.
fn iam_path(
    imds: &Imds,
    instance_id: &str,
    profile: &netlab_ec2::IamInstanceProfile,
    path: &str,
    now: Timestamp,
) -> Option<String> {
    let profile_name = profile.arn.rsplit('/').next().unwrap_or_default().to_string();
    let role =
        imds.aws.read(|a| Some(a.iam.instance_profile_roles(&profile_name).ok()?.first()?.name.clone()))?;
    let updated = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    match path {
        "" => Some("info\nsecurity-credentials/".into()),
        "info" => Some(ordered_json(&[
            ("Code", "Success"),
            ("LastUpdated", &updated),
            ("InstanceProfileArn", &profile.arn),
            ("InstanceProfileId", &profile.id),
        ])),
        "security-credentials" | "security-credentials/" => Some(role),
        p if p.strip_prefix("security-credentials/") == Some(role.as_str()) => {
            let mut cache = imds.credentials.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((json, expires)) = cache.get(instance_id)
                && *expires - SignedDuration::from_mins(5) > now
            {
                return Some(json.clone());
            }
            let issued = imds
                .aws
                .write(|a| {
                    a.iam.instance_profile_credentials(&profile_name, instance_id, CREDENTIALS_LIFETIME, now)
                })
                .ok()?
                .ok()?;
            let creds = issued.credentials;
            let expiration = creds.expiration.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let json = ordered_json(&[
                ("Code", "Success"),
                ("LastUpdated", &updated),
                ("Type", "AWS-HMAC"),
                ("AccessKeyId", &creds.access_key_id),
                ("SecretAccessKey", &creds.secret_access_key),
                ("Token", &creds.session_token),
                ("Expiration", &expiration),
            ]);
            cache.insert(instance_id.to_string(), (json.clone(), creds.expiration));
            Some(json)
        }
        _ => None,
    }
}

/// A JSON object with its keys in AWS's order, two-space indented as IMDS writes it.
fn ordered_json(fields: &[(&str, &str)]) -> String {
    let lines: Vec<String> =
        fields.iter().map(|(k, v)| format!("  \"{k}\" : {}", serde_json::Value::from(*v))).collect();
    format!("{{\n{}\n}}", lines.join(",\n"))
}

/// A session token: 32 random bytes, base64, as IMDS's are.
fn new_token() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    data_encoding::BASE64.encode(&bytes)
}

fn text(status: StatusCode, body: String) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// IMDS's error page, as the real service writes it.
fn page(status: StatusCode) -> Response {
    let title = format!("{} - {}", status.as_u16(), status.canonical_reason().unwrap_or(""));
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n\t\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd\">\n<html xmlns=\"http://www.w3.org/1999/xhtml\" xml:lang=\"en\" lang=\"en\">\n <head>\n  <title>{title}</title>\n </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
    );
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    r
}
