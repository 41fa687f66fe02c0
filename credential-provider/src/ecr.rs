//! ECR's `GetAuthorizationToken` as the Go SDK calls it: awsJson1_1 (`POST /`,
//! `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken`, body `{}`),
//! signed with SigV4 for service `ecr` by the AWS SDK's own signer (`aws-sigv4`), sent to
//! `AWS_ENDPOINT_URL_ECR`, else `AWS_ENDPOINT_URL`, else `https://api.ecr.<region>.amazonaws.com`
//! (the SDK's service-specific endpoint variables).
//!
//! Errors read as the SDK's `*smithy.OperationError` prints them, since that is what the plugin
//! logs and the kubelet's journal shows: `operation error ECR: GetAuthorizationToken, https
//! response error StatusCode: 400, RequestID: <id>, api error AccessDeniedException: User: ...`.

use bytes::Bytes;
use http::{Request, StatusCode};
use jiff::Timestamp;
use serde::Deserialize;

use crate::{
    credentials::{Credentials, CredentialsError, Env, MAX_ATTEMPTS},
    http::{HttpClient, SendError},
};

/// The awsJson target of the call.
pub const TARGET: &str = "AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken";
/// awsJson 1.1's content type.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// One entry of `authorizationData`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationData {
    /// `base64("AWS:" + password)`.
    #[serde(default)]
    pub authorization_token: Option<String>,
    /// Epoch seconds (awsJson's timestamp format).
    #[serde(default)]
    pub expires_at: Option<f64>,
    /// `https://<account>.dkr.ecr.<region>.amazonaws.com`.
    #[serde(default)]
    pub proxy_endpoint: Option<String>,
}

/// The call's output.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetAuthorizationTokenOutput {
    /// `authorizationData`.
    #[serde(default)]
    pub authorization_data: Vec<AuthorizationData>,
}

/// Why the call failed, as `operation error ECR: GetAuthorizationToken, <cause>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EcrError {
    /// The credential chain found nothing.
    #[error("operation error ECR: GetAuthorizationToken, get identity: get credentials: {0}")]
    Credentials(#[source] CredentialsError),
    /// No region from the host or the environment.
    #[error(
        "operation error ECR: GetAuthorizationToken, failed to resolve service endpoint, an AWS region is required, but was not found"
    )]
    NoRegion,
    /// The endpoint is not a URL this client can call.
    #[error(
        "operation error ECR: GetAuthorizationToken, failed to resolve service endpoint, endpoint {0:?} is not an http URL this client can call"
    )]
    Endpoint(String),
    /// The request could not be signed.
    #[error("operation error ECR: GetAuthorizationToken, failed to sign request: {0}")]
    Sign(String),
    /// ECR answered with an error.
    #[error(
        "operation error ECR: GetAuthorizationToken, {retries}https response error StatusCode: {status}, RequestID: {request_id}, api error {code}: {message}"
    )]
    Api {
        /// `exceeded maximum number of attempts, 3, ` when retried out, else empty.
        retries: String,
        /// The HTTP status.
        status: u16,
        /// `x-amzn-RequestId`.
        request_id: String,
        /// The error code (`__type` without its namespace).
        code: String,
        /// `message`.
        message: String,
    },
    /// Nothing answered.
    #[error(
        "operation error ECR: GetAuthorizationToken, exceeded maximum number of attempts, {MAX_ATTEMPTS}, https response error StatusCode: 0, RequestID: , request send failed, {0}"
    )]
    Send(SendError),
    /// The answer is not the documented JSON.
    #[error(
        "operation error ECR: GetAuthorizationToken, https response error StatusCode: 200, RequestID: {request_id}, deserialization failed, failed to decode response body, {reason}"
    )]
    Decode {
        /// `x-amzn-RequestId`.
        request_id: String,
        /// The JSON error.
        reason: String,
    },
}

/// Where the ECR API is for `region`: the SDK's endpoint variables, else AWS's host.
pub fn endpoint(env: &Env, region: &str) -> String {
    env.get("AWS_ENDPOINT_URL_ECR")
        .or_else(|| env.get("AWS_ENDPOINT_URL"))
        .map(|e| e.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("https://api.ecr.{region}.amazonaws.com"))
}

/// Calls GetAuthorizationToken at `endpoint` in `region` with `creds`, at `now` (the signature's
/// time).
pub async fn get_authorization_token(
    http: &HttpClient,
    endpoint: &str,
    region: &str,
    creds: &Credentials,
    now: Timestamp,
) -> Result<GetAuthorizationTokenOutput, EcrError> {
    if !endpoint.starts_with("http://") {
        return Err(EcrError::Endpoint(endpoint.to_string()));
    }
    let url = format!("{endpoint}/");
    let mut last = None;
    for attempt in 1..=MAX_ATTEMPTS {
        let req = signed_request(&url, region, creds, now)?;
        match http.send("ecr.GetAuthorizationToken", req).await {
            Err(e) => last = Some(EcrError::Send(e)),
            Ok(resp) => {
                let request_id = resp
                    .headers()
                    .get("x-amzn-requestid")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let status = resp.status();
                if status == StatusCode::OK {
                    return serde_json::from_slice(resp.body())
                        .map_err(|e| EcrError::Decode { request_id, reason: e.to_string() });
                }
                let (code, message) = api_error(resp.headers(), resp.body());
                let retryable = status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS;
                let retries = if retryable && attempt == MAX_ATTEMPTS {
                    format!("exceeded maximum number of attempts, {MAX_ATTEMPTS}, ")
                } else {
                    String::new()
                };
                let error = EcrError::Api { retries, status: status.as_u16(), request_id, code, message };
                if !retryable {
                    return Err(error);
                }
                last = Some(error);
            }
        }
    }
    Err(last.unwrap_or(EcrError::NoRegion))
}

/// The signed awsJson request.
fn signed_request(
    url: &str,
    region: &str,
    creds: &Credentials,
    now: Timestamp,
) -> Result<Request<Bytes>, EcrError> {
    let mut req = Request::post(url)
        .header("content-type", CONTENT_TYPE)
        .header("x-amz-target", TARGET)
        .header("accept-encoding", "identity")
        .body(Bytes::from_static(b"{}"))
        .map_err(|e| EcrError::Sign(e.to_string()))?;
    crate::sigv4::sign(&mut req, "ecr", region, creds, now).map_err(|e| EcrError::Sign(e.0))?;
    Ok(req)
}

/// An awsJson error's code and message: `__type` (or `X-Amzn-Errortype`) without the
/// `namespace#` prefix or `:` suffix, and `message` (or `Message`).
pub fn api_error(headers: &http::HeaderMap, body: &[u8]) -> (String, String) {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let raw = json["__type"]
        .as_str()
        .or_else(|| json["code"].as_str())
        .or_else(|| headers.get("x-amzn-errortype").and_then(|v| v.to_str().ok()))
        .unwrap_or("UnknownError");
    let code = raw.rsplit('#').next().unwrap_or(raw);
    let code = code.split(':').next().unwrap_or(code).to_string();
    let message = json["message"].as_str().or_else(|| json["Message"].as_str()).unwrap_or("").to_string();
    (code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_are_read_as_smithy_reads_them() {
        let h = http::HeaderMap::new();
        let (code, msg) =
            api_error(&h, br#"{"__type":"AccessDeniedException","message":"User: x is not authorized"}"#);
        assert_eq!((code.as_str(), msg.as_str()), ("AccessDeniedException", "User: x is not authorized"));
        let (code, _) = api_error(&h, br#"{"__type":"com.amazonaws.ecr#ServerException:http://internal"}"#);
        assert_eq!(code, "ServerException");
        let mut h = http::HeaderMap::new();
        h.insert("x-amzn-errortype", "UnrecognizedClientException".parse().unwrap());
        assert_eq!(api_error(&h, b"").0, "UnrecognizedClientException");
    }

    #[test]
    fn the_error_text_is_the_go_sdks() {
        let e = EcrError::Api {
            retries: String::new(),
            status: 400,
            request_id: "r-1".into(),
            code: "AccessDeniedException".into(),
            message: "User: arn:aws:sts::123456789012:assumed-role/netlab-NodeInstanceRole/i-0 is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action".into(),
        };
        assert_eq!(
            e.to_string(),
            "operation error ECR: GetAuthorizationToken, https response error StatusCode: 400, RequestID: r-1, api error AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/netlab-NodeInstanceRole/i-0 is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action"
        );
        let e = EcrError::Credentials(CredentialsError::NoRole(crate::credentials::ImdsError::Status(404)));
        assert_eq!(
            e.to_string(),
            "operation error ECR: GetAuthorizationToken, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, http response error StatusCode: 404, request to EC2 IMDS failed"
        );
    }

    #[test]
    fn endpoints_follow_the_sdks_variables() {
        assert_eq!(endpoint(&Env::default(), "eu-west-1"), "https://api.ecr.eu-west-1.amazonaws.com");
        let env = Env::from_pairs([("AWS_ENDPOINT_URL", "http://127.0.0.1:4566/")]);
        assert_eq!(endpoint(&env, "us-east-1"), "http://127.0.0.1:4566");
        let env =
            Env::from_pairs([("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_ECR", "http://b:2")]);
        assert_eq!(endpoint(&env, "us-east-1"), "http://b:2");
    }
}
