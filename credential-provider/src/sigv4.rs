//! SigV4 signing of one whole-body HTTP request with the AWS SDK's own signer (`aws-sigv4`),
//! shared by every caller that signs AWS calls: the plugin's ECR call and the pod toolbox's
//! `aws` tool (whose transport is the pod's network, not this crate's client).

use std::time::SystemTime;

use aws_sigv4::{
    http_request::{SignableBody, SignableRequest, SigningSettings, sign as sign_request},
    sign::v4,
};
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::Request;
use jiff::Timestamp;

use crate::credentials::Credentials;

/// Why a request could not be signed (the signer's or the builder's message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SignError(pub String);

/// Signs `req` for `service` in `region` with `creds` at `now`: sets `Host` (from the URI's
/// authority unless the request has one), `X-Amz-Date`, `X-Amz-Security-Token` (temporary
/// credentials) and `Authorization`, over the whole body.
pub fn sign(
    req: &mut Request<Bytes>,
    service: &str,
    region: &str,
    creds: &Credentials,
    now: Timestamp,
) -> Result<(), SignError> {
    let fail = |e: &dyn std::fmt::Display| SignError(e.to_string());
    if !req.headers().contains_key(http::header::HOST) {
        let host = req.uri().authority().map(|a| a.to_string()).unwrap_or_default();
        req.headers_mut()
            .insert(http::header::HOST, http::HeaderValue::from_str(&host).map_err(|e| fail(&e))?);
    }
    let identity: Identity = aws_credential_types::Credentials::new(
        &creds.access_key_id,
        &creds.secret_access_key,
        creds.session_token.clone(),
        creds.expiration.map(SystemTime::from),
        creds.source,
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::from(now))
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    let method = req.method().as_str().to_string();
    let uri = req.uri().to_string();
    let body = req.body().clone();
    let signable = SignableRequest::new(
        &method,
        &uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&body),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _) = sign_request(signable, &params).map_err(|e| fail(&e))?.into_parts();
    instructions.apply_to_request_http1x(req);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_carries_the_scope_and_the_session_token() {
        let creds = Credentials {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some("tok".into()),
            expiration: None,
            source: "test",
        };
        let mut req = Request::post("http://sts.us-east-1.amazonaws.com:443/")
            .header(http::header::HOST, "sts.us-east-1.amazonaws.com")
            .body(Bytes::from_static(b"Action=GetCallerIdentity&Version=2011-06-15"))
            .unwrap();
        sign(&mut req, "sts", "us-east-1", &creds, "2026-01-02T03:04:05Z".parse().unwrap()).unwrap();
        let h = |n: &str| req.headers().get(n).map(|v| v.to_str().unwrap().to_string());
        let auth = h("authorization").unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=ASIAEXAMPLE/20260102/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature="),
            "{auth}"
        );
        assert_eq!(h("x-amz-date").as_deref(), Some("20260102T030405Z"));
        assert_eq!(h("x-amz-security-token").as_deref(), Some("tok"));
        assert_eq!(h("host").as_deref(), Some("sts.us-east-1.amazonaws.com"), "the given Host is kept");
    }
}
