//! Verifying AWS Signature Version 4 on an incoming request, in both of its forms: the
//! `Authorization` header, and the presigned query string (`X-Amz-Signature=...`, as in the
//! `k8s-aws-v1.` tokens that `aws eks get-token` makes from a presigned STS GetCallerIdentity).
//!
//! The signature a request must carry is computed by the AWS SDK's own signer, `aws-sigv4`,
//! fed with exactly what the client said it signed: the headers in `SignedHeaders`, the
//! session token only if it was signed, and the time from `X-Amz-Date`. Everything around that
//! (parsing the header, the credential scope, the clock, the key lookup, temporary credentials)
//! is checked here first, so each failure gets AWS's own error (see [`AuthError`]).
//!
//! What aws-sigv4 decides and a client may do differently (such a request fails as
//! `SignatureDoesNotMatch`): in header form it always signs `x-amz-date`; in query form it never
//! signs `x-amz-user-agent` or `x-amz-checksum-mode`; it re-encodes the query string from its
//! decoded pairs (botocore keeps the raw pairs; the two agree on any properly encoded URL).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    self, SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Request;
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};

use crate::error::{AuthError, MAX_SKEW};

/// The only algorithm SigV4 verification accepts.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The longest a presigned URL may live: "The maximum is 604800 (seven days)" (S3's SigV4
/// query-auth reference, which the other services follow).
pub const MAX_PRESIGN_EXPIRES: u64 = 604_800;

/// What a credential lookup knows about an access key id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The secret the client signs with.
    pub secret_access_key: String,
    /// For temporary credentials (`ASIA...`): the session token they were issued with, which
    /// every request must carry.
    pub session_token: Option<String>,
    /// For temporary credentials: when they stop working.
    pub expires_at: Option<Timestamp>,
}

/// Where the verifier finds secrets: IAM's access keys and STS's sessions, owned by others.
pub trait CredentialStore {
    /// The key's secret and session, or `None` if the id is unknown.
    fn lookup(&self, access_key_id: &str) -> Option<Credential>;
}

impl<F> CredentialStore for F
where
    F: Fn(&str) -> Option<Credential>,
{
    fn lookup(&self, access_key_id: &str) -> Option<Credential> {
        self(access_key_id)
    }
}

/// The credential scope a request claims: `AKID/20261207/us-east-1/sts/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialScope {
    /// The access key id.
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    /// The region the client signed for.
    pub region: String,
    /// The service the client signed for: what the one-port endpoint routes on.
    pub service: String,
}

/// A request whose signature checked out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    /// Who signed: handlers map it to a principal.
    pub access_key_id: String,
    /// The scope's service (`sts`, `ec2`, `iam`, `ecr`).
    pub service: String,
    /// The scope's region.
    pub region: String,
    /// `X-Amz-Date`.
    pub signed_at: Timestamp,
    /// The session token the request carried, for temporary credentials.
    pub session_token: Option<String>,
}

/// The signature parts of a request, from either form.
struct Signed {
    scope: CredentialScope,
    signed_headers: Vec<String>,
    signature: String,
    date: String,
    signed_at: Timestamp,
    /// `X-Amz-Expires` for a presigned URL; `None` in header form (so it tells the forms apart).
    expires: Option<u64>,
    session_token: Option<String>,
    /// Whether the session token is part of what was signed.
    token_signed: bool,
}

/// The credential scope of a request that may not be verified yet: for routing by service, and
/// for rendering an error in the right protocol before (or without) verification.
pub fn scope<B>(req: &Request<B>) -> Option<CredentialScope> {
    let credential = match authorization(req) {
        Some(auth) => auth_params(auth).into_iter().find(|(k, _)| *k == "Credential")?.1.to_owned(),
        None => query_pairs(req).into_iter().find(|(k, _)| k == "X-Amz-Credential")?.1,
    };
    parse_scope(&credential).ok()
}

/// Verify the request's SigV4 signature against `store`, at time `now`.
///
/// The body must be the whole body the client sent. `now` is a parameter so tests are
/// deterministic; the server passes `Timestamp::now()`.
pub fn verify<B: AsRef<[u8]>>(
    req: &Request<B>,
    store: &impl CredentialStore,
    now: Timestamp,
) -> Result<Verified, AuthError> {
    let signed = match authorization(req) {
        Some(auth) => parse_header_form(req, auth)?,
        None => parse_query_form(req)?,
    };

    check_clock(&signed, now)?;

    let credential = store.lookup(&signed.scope.access_key_id).ok_or(AuthError::InvalidClientTokenId)?;
    // A temporary key must come with its own token and a permanent key with none; a wrong token
    // is an invalid token, as AWS words it ("The security token included in the request is
    // invalid."). Only a right token past its expiry is `ExpiredToken`.
    if credential.session_token != signed.session_token {
        return Err(AuthError::InvalidClientTokenId);
    }
    if credential.expires_at.is_some_and(|at| at <= now) {
        return Err(AuthError::ExpiredToken);
    }

    let expected = expected_signature(req, &signed, &credential.secret_access_key)?;
    if !constant_time_eq(expected.as_bytes(), signed.signature.as_bytes()) {
        return Err(AuthError::SignatureDoesNotMatch { detail: None });
    }

    Ok(Verified {
        access_key_id: signed.scope.access_key_id,
        service: signed.scope.service,
        region: signed.scope.region,
        signed_at: signed.signed_at,
        session_token: signed.session_token,
    })
}

/// The `Authorization` header, if the request has one.
fn authorization<B>(req: &Request<B>) -> Option<&str> {
    // A header that is not visible ASCII cannot be a SigV4 one; treat it as malformed text.
    req.headers().get(http::header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

/// `Credential=..., SignedHeaders=..., Signature=...` after the algorithm.
fn auth_params(auth: &str) -> Vec<(&str, &str)> {
    let rest = auth.split_once(' ').map_or("", |(_, rest)| rest);
    rest.split(',').filter_map(|part| part.trim().split_once('=')).collect()
}

/// The decoded query pairs, in order.
fn query_pairs<B>(req: &Request<B>) -> Vec<(String, String)> {
    form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn incomplete(detail: impl Into<String>) -> AuthError {
    AuthError::IncompleteSignature { detail: detail.into() }
}

/// The header form. Texts from dacut/scratchstack-aws-signature `src/constants.rs`, which
/// records AWS's own.
fn parse_header_form<B>(req: &Request<B>, auth: &str) -> Result<Signed, AuthError> {
    let algorithm = auth.split(' ').next().unwrap_or_default();
    if algorithm != ALGORITHM {
        return Err(incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'")));
    }
    let params = auth_params(auth);
    let get = |name: &str| params.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
    let mut missing = String::new();
    for name in ["Credential", "SignedHeaders", "Signature"] {
        if get(name).is_none() {
            missing.push_str(&format!("Authorization header requires '{name}' parameter. "));
        }
    }
    let date = req.headers().get("x-amz-date").and_then(|v| v.to_str().ok());
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date), true) =
        (get("Credential"), get("SignedHeaders"), get("Signature"), date, missing.is_empty())
    else {
        return Err(incomplete(format!("{missing}Authorization={auth}")));
    };
    let session_token =
        req.headers().get("x-amz-security-token").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let signed_headers: Vec<String> =
        signed_headers.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    let token_signed = signed_headers.iter().any(|h| h == "x-amz-security-token");
    finish(credential, signed_headers, signature, date, None, session_token, token_signed)
}

/// The presigned form.
fn parse_query_form<B>(req: &Request<B>) -> Result<Signed, AuthError> {
    let pairs = query_pairs(req);
    let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    if get("X-Amz-Algorithm").is_none()
        && get("X-Amz-Signature").is_none()
        && get("X-Amz-Credential").is_none()
    {
        return Err(AuthError::MissingAuthenticationToken);
    }
    if let Some(algorithm) = get("X-Amz-Algorithm").filter(|a| *a != ALGORITHM) {
        return Err(incomplete(format!("Unsupported AWS 'algorithm': '{algorithm}'")));
    }
    let mut missing = String::new();
    for name in
        ["X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-SignedHeaders", "X-Amz-Date"]
    {
        if get(name).is_none() {
            missing.push_str(&format!("AWS query-string parameters must include '{name}'. "));
        }
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date), true) = (
        get("X-Amz-Credential"),
        get("X-Amz-SignedHeaders"),
        get("X-Amz-Signature"),
        get("X-Amz-Date"),
        missing.is_empty(),
    ) else {
        return Err(incomplete(format!("{missing}Re-examine the query-string parameters.")));
    };
    // aws-sigv4 always signs X-Amz-Expires in this form, so a URL without it cannot verify;
    // every AWS client sets it. Composed text, in the shape of the ones above.
    let Some(raw) = get("X-Amz-Expires") else {
        return Err(incomplete(
            "AWS query-string parameters must include 'X-Amz-Expires'. Re-examine the query-string parameters.",
        ));
    };
    let expires = match raw.parse::<u64>() {
        Ok(secs) if (1..=MAX_PRESIGN_EXPIRES).contains(&secs) => Some(secs),
        // Composed: AWS's exact text for this case was not found.
        _ => {
            return Err(incomplete(format!(
                "X-Amz-Expires must be an integer from 1 to {MAX_PRESIGN_EXPIRES} (seconds), got '{raw}'. Re-examine the query-string parameters."
            )));
        }
    };
    let signed_headers: Vec<String> =
        signed_headers.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
    let session_token = get("X-Amz-Security-Token").map(str::to_owned);
    // Every query parameter is signed in the presigned form, the token too.
    let token_signed = session_token.is_some();
    finish(credential, signed_headers, signature, date, expires, session_token, token_signed)
}

/// The checks both forms share: the scope, the date, `host` being signed.
fn finish(
    credential: &str,
    signed_headers: Vec<String>,
    signature: &str,
    date: &str,
    expires: Option<u64>,
    session_token: Option<String>,
    token_signed: bool,
) -> Result<Signed, AuthError> {
    let scope = parse_scope(credential)?;
    let signed_at = parse_amz_date(date).ok_or_else(|| {
        incomplete(format!(
            "Date must be in ISO-8601 'basic format'. Got '{date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    if !signed_headers.iter().any(|h| h == "host" || h == ":authority") {
        return Err(incomplete("'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."));
    }
    // Recalled from AWS responses (not found in the corpus): the scope's date must be the day
    // of X-Amz-Date.
    if scope.date != date[..8] {
        return Err(AuthError::SignatureDoesNotMatch {
            detail: Some(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{date}'.",
                scope.date,
                &date[..8]
            )),
        });
    }
    Ok(Signed {
        scope,
        signed_headers,
        signature: signature.to_owned(),
        date: date.to_owned(),
        signed_at,
        expires,
        session_token,
        token_signed,
    })
}

/// `AKID/YYYYMMDD/region/service/aws4_request`.
fn parse_scope(credential: &str) -> Result<CredentialScope, AuthError> {
    let parts: Vec<&str> = credential.split('/').collect();
    let [akid, date, region, service, terminator] = parts[..] else {
        return Err(incomplete(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        )));
    };
    if terminator != "aws4_request" {
        return Err(incomplete(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    Ok(CredentialScope {
        access_key_id: akid.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
    })
}

/// `20261207T100000Z` → a timestamp; `None` unless exactly that shape.
fn parse_amz_date(date: &str) -> Option<Timestamp> {
    let b = date.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' || !digits(0..8) || !digits(9..15) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| date[r].parse::<i16>().ok();
    let dt = jiff::civil::DateTime::new(
        n(0..4)?,
        i8::try_from(n(4..6)?).ok()?,
        i8::try_from(n(6..8)?).ok()?,
        i8::try_from(n(9..11)?).ok()?,
        i8::try_from(n(11..13)?).ok()?,
        i8::try_from(n(13..15)?).ok()?,
        0,
    )
    .ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

/// Header form: `X-Amz-Date` within 15 minutes of now either way. Presigned: not more than 15
/// minutes in the future, and not past `X-Amz-Expires`.
fn check_clock(signed: &Signed, now: Timestamp) -> Result<(), AuthError> {
    let age = now.duration_since(signed.signed_at);
    let expired = |window: SignedDuration, future: bool| AuthError::RequestExpired {
        signed_at: signed.signed_at,
        now,
        window,
        future,
    };
    if age < -MAX_SKEW {
        return Err(expired(MAX_SKEW, true));
    }
    let window = match signed.expires {
        Some(secs) => SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX)),
        None => MAX_SKEW,
    };
    if age > window {
        return Err(expired(window, false));
    }
    Ok(())
}

/// The signature the request must carry, computed by aws-sigv4 from what the client signed.
fn expected_signature<B: AsRef<[u8]>>(
    req: &Request<B>,
    signed: &Signed,
    secret: &str,
) -> Result<String, AuthError> {
    let mismatch = || AuthError::SignatureDoesNotMatch { detail: None };

    // Only the signed headers, all their values; `host` from the URI for HTTP/2.
    let mut headers: Vec<(&str, &str)> = Vec::new();
    for name in &signed.signed_headers {
        if name == ":authority" {
            continue;
        }
        let mut found = false;
        for value in req.headers().get_all(name.as_str()) {
            headers.push((name.as_str(), value.to_str().map_err(|_| mismatch())?));
            found = true;
        }
        if !found
            && name == "host"
            && let Some(authority) = req.uri().authority()
        {
            headers.push(("host", authority.as_str()));
        }
    }

    // The path and query the client signed: in the presigned form, minus the parameters the
    // signer adds itself (raw pairs kept, so their encoding is the client's).
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    let query = match signed.expires {
        None => query.to_owned(),
        Some(_) => query
            .split('&')
            .filter(|pair| {
                let key = pair.split('=').next().unwrap_or_default();
                let key = percent_encoding::percent_decode_str(key).decode_utf8_lossy();
                !PRESIGN_PARAMS.contains(&key.as_ref())
            })
            .collect::<Vec<_>>()
            .join("&"),
    };
    let uri = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };

    // botocore hashes the `X-Amz-Content-SHA256` header's value rather than the body when the
    // client sends one; accept it only when it is the body's hash or UNSIGNED-PAYLOAD.
    let body = req.body().as_ref();
    let body_hash = hex::encode(Sha256::digest(body));
    let declared = req.headers().get("x-amz-content-sha256").and_then(|v| v.to_str().ok());
    let signable_body = match declared {
        Some("UNSIGNED-PAYLOAD") => SignableBody::UnsignedPayload,
        Some(h) if h.eq_ignore_ascii_case(&body_hash) => SignableBody::Precomputed(body_hash),
        _ => SignableBody::Bytes(body),
    };

    let token = signed.session_token.clone().filter(|_| signed.token_signed);
    let identity: Identity =
        Credentials::new(&signed.scope.access_key_id, secret, token, None, "netlab").into();
    let mut settings = SigningSettings::default();
    // We hand over only the signed headers, so nothing must be dropped from them.
    settings.excluded_headers = None;
    settings.session_token_mode =
        if signed.token_signed { SessionTokenMode::Include } else { SessionTokenMode::Exclude };
    if let Some(secs) = signed.expires {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(secs));
    }
    let time = SystemTime::from(signed.signed_at);
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&signed.scope.region)
        .name(&signed.scope.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| mismatch())?
        .into();
    let signable = SignableRequest::new(req.method().as_str(), uri, headers.into_iter(), signable_body)
        .map_err(|_| mismatch())?;
    let output = http_request::sign(signable, &params).map_err(|_| mismatch())?;
    // The date aws-sigv4 formats from `time` must be the one the client sent.
    debug_assert_eq!(crate::error::amz_date(signed.signed_at).to_string(), signed.date);
    Ok(output.signature().to_owned())
}

/// The query parameters of the presigned form that the signer itself adds.
const PRESIGN_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
];

/// Compare without an early exit, so timing does not leak how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
