//! Credentials the way the AWS SDK's default chain finds them for a process on an EC2 host:
//! static keys in the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`) first, else the instance role from IMDS. The kubelet runs the plugin
//! with its own environment, which on a node holds no keys, so in practice the chain ends at
//! IMDS with the node role: that is why pulls use the node role and never a pod's IRSA role.
//!
//! IMDS is reached at `AWS_EC2_METADATA_SERVICE_ENDPOINT` (default `http://169.254.169.254`),
//! IMDSv2 first: `PUT /latest/api/token` (TTL 21600 s); a token request refused with 403, 404 or
//! 405, or not answered, falls back to IMDSv1 as the Go SDK does. Then the role's name from
//! `/latest/meta-data/iam/security-credentials/` and its keys from `.../<role>`. Failures read
//! as the Go SDK v2 (which the upstream plugin is built on) words them, e.g. `no EC2 IMDS role
//! found, operation error ec2imds: GetMetadata, http response error StatusCode: 404, request to
//! EC2 IMDS failed`.
//!
//! Shared config files, SSO, web identity and container credentials are not read: a node's
//! kubelet has none of them.

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use jiff::Timestamp;
use serde::Deserialize;

use crate::http::{HttpClient, SendError};

/// The default IMDS endpoint.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The TTL the Go SDK asks tokens for.
pub const TOKEN_TTL_SECONDS: u32 = 21_600;
/// How often the SDK's standard retryer tries a request that got no answer.
pub const MAX_ATTEMPTS: u32 = 3;

/// Signing credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id.
    pub access_key_id: String,
    /// The secret.
    pub secret_access_key: String,
    /// The session token of temporary credentials.
    pub session_token: Option<String>,
    /// When they expire, if they do.
    pub expiration: Option<Timestamp>,
    /// Where they came from: `EnvConfigCredentials` or `EC2RoleProvider` (the SDK's names).
    pub source: &'static str,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("source", &self.source)
            .field("expiration", &self.expiration)
            .finish_non_exhaustive()
    }
}

/// What the process environment says, read once (so tests can give their own).
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: std::collections::BTreeMap<String, String>,
}

/// Why an IMDS GetMetadata call failed, as `operation error ec2imds: GetMetadata, <cause>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImdsError {
    /// IMDS answered with an error status.
    #[error(
        "operation error ec2imds: GetMetadata, http response error StatusCode: {0}, request to EC2 IMDS failed"
    )]
    Status(u16),
    /// No answer after the retryer's attempts.
    #[error(
        "operation error ec2imds: GetMetadata, exceeded maximum number of attempts, {MAX_ATTEMPTS}, request send failed, {0}"
    )]
    Send(SendError),
    /// No answer within the client's timeout.
    #[error("operation error ec2imds: GetMetadata, request canceled, context deadline exceeded")]
    Timeout,
}

/// Why the chain found no credentials.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The role's name could not be read.
    #[error("failed to refresh cached credentials, no EC2 IMDS role found, {0}")]
    NoRole(#[source] ImdsError),
    /// The role's credentials could not be read.
    #[error("failed to refresh cached credentials, failed to get {role} EC2 IMDS role credentials, {source}")]
    RoleCredentials {
        /// The role.
        role: String,
        /// Why.
        #[source]
        source: ImdsError,
    },
    /// IMDS answered the credentials with a `Code` other than `Success`.
    #[error(
        "failed to refresh cached credentials, failed to get {role} EC2 IMDS role credentials, api error {code}: {message}"
    )]
    NotSuccess {
        /// The role.
        role: String,
        /// `Code`.
        code: String,
        /// `Message`.
        message: String,
    },
    /// The credentials document is not JSON of the documented shape.
    #[error(
        "failed to refresh cached credentials, failed to decode {role} EC2 IMDS role credentials, {reason}"
    )]
    Decode {
        /// The role.
        role: String,
        /// The JSON error.
        reason: String,
    },
    /// `AWS_EC2_METADATA_DISABLED=true` and no keys in the environment.
    #[error(
        "failed to refresh cached credentials, access disabled to EC2 IMDS via client option, or \"AWS_EC2_METADATA_DISABLED\" environment variable"
    )]
    ImdsDisabled,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RoleCredentials {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    expiration: Option<String>,
}

// === impl Env ===

impl Env {
    /// The process's environment.
    pub fn from_process() -> Self {
        Self { vars: std::env::vars().collect() }
    }

    /// An environment of `pairs`.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self { vars: pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    /// A variable, if set and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str).filter(|v| !v.is_empty())
    }
}

/// Runs the chain: environment keys, else IMDS.
pub async fn resolve(env: &Env, http: &HttpClient) -> Result<Credentials, CredentialsError> {
    let id = env.get("AWS_ACCESS_KEY_ID").or_else(|| env.get("AWS_ACCESS_KEY"));
    let secret = env.get("AWS_SECRET_ACCESS_KEY").or_else(|| env.get("AWS_SECRET_KEY"));
    if let (Some(id), Some(secret)) = (id, secret) {
        return Ok(Credentials {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
            session_token: env.get("AWS_SESSION_TOKEN").map(str::to_string),
            expiration: None,
            source: "EnvConfigCredentials",
        });
    }
    if env.get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Err(CredentialsError::ImdsDisabled);
    }
    let endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or(DEFAULT_IMDS_ENDPOINT);
    let imds = Imds { endpoint: endpoint.trim_end_matches('/').to_string(), http };
    let span =
        tracing::info_span!("ec2rolecreds", otel.kind = "internal", aws.iam.role = tracing::field::Empty);
    tracing::Instrument::instrument(imds.role_credentials(&span), span.clone()).await
}

/// An IMDS client on one endpoint.
struct Imds<'a> {
    endpoint: String,
    http: &'a HttpClient,
}

impl Imds<'_> {
    async fn role_credentials(&self, span: &tracing::Span) -> Result<Credentials, CredentialsError> {
        let token = self.token().await;
        let list = self
            .get("/iam/security-credentials/", token.as_deref())
            .await
            .map_err(CredentialsError::NoRole)?;
        let role = String::from_utf8_lossy(&list).lines().next().unwrap_or("").trim().to_string();
        span.record("aws.iam.role", role.as_str());
        let doc = self
            .get(&format!("/iam/security-credentials/{role}"), token.as_deref())
            .await
            .map_err(|source| CredentialsError::RoleCredentials { role: role.clone(), source })?;
        let creds: RoleCredentials = serde_json::from_slice(&doc)
            .map_err(|e| CredentialsError::Decode { role: role.clone(), reason: e.to_string() })?;
        if !creds.code.eq_ignore_ascii_case("Success") {
            return Err(CredentialsError::NotSuccess { role, code: creds.code, message: creds.message });
        }
        Ok(Credentials {
            access_key_id: creds.access_key_id,
            secret_access_key: creds.secret_access_key,
            session_token: Some(creds.token).filter(|t| !t.is_empty()),
            expiration: creds.expiration.and_then(|e| e.parse::<Timestamp>().ok()),
            source: "EC2RoleProvider",
        })
    }

    /// An IMDSv2 session token, or None to go on with IMDSv1 (what the Go SDK does when the PUT
    /// is refused with 403/404/405 or not answered).
    async fn token(&self) -> Option<String> {
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("{}/latest/api/token", self.endpoint))
            .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS.to_string())
            .body(Bytes::new())
            .ok()?;
        match self.http.send("ec2imds.GetToken", req).await {
            Ok(r) if r.status() == StatusCode::OK => {
                Some(String::from_utf8_lossy(r.body()).trim().to_string())
            }
            // Refused or unanswered: IMDSv1 (the request's span records which).
            Ok(_) | Err(_) => None,
        }
    }

    /// `GET /latest/meta-data<path>`, retried as the standard retryer does when nothing answers.
    async fn get(&self, path: &str, token: Option<&str>) -> Result<Bytes, ImdsError> {
        let url = format!("{}/latest/meta-data{path}", self.endpoint);
        let mut last = None;
        for _ in 0..MAX_ATTEMPTS {
            let mut builder = Request::get(&url);
            if let Some(t) = token {
                builder = builder.header("x-aws-ec2-metadata-token", t);
            }
            let Ok(req) = builder.body(Bytes::new()) else {
                return Err(ImdsError::Status(0));
            };
            match self.http.send("ec2imds.GetMetadata", req).await {
                Ok(r) if r.status().is_success() => return Ok(r.into_body()),
                Ok(r) => return Err(ImdsError::Status(r.status().as_u16())),
                Err(e) if e.cause == "context deadline exceeded" => return Err(ImdsError::Timeout),
                Err(e) => last = Some(e),
            }
        }
        Err(ImdsError::Send(last.unwrap_or_else(|| SendError {
            method: "Get".into(),
            url,
            cause: "no attempt made".into(),
        })))
    }
}
