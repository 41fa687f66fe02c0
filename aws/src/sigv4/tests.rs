//! Tests for SigV4 verification: AWS's published example, requests signed by aws-sigv4 and by
//! botocore (the aws CLI's signer), and every failure branch, all at fixed times.

use std::process::Command;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Request;
use jiff::{SignedDuration, Timestamp};

use super::*;

const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const TEMP_AKID: &str = "ASIAIOSFODNN7EXAMPLE";
const TEMP_SECRET: &str = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEXAMPLE+/token==";
const STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// Signed at 2026-12-07T10:00:00Z in every test.
fn signed_at() -> Timestamp {
    ts("2026-12-07T10:00:00Z")
}

fn store(now_expiry: Option<Timestamp>) -> impl CredentialStore {
    move |akid: &str| match akid {
        AKID => Some(Credential { secret_access_key: SECRET.into(), session_token: None, expires_at: None }),
        TEMP_AKID => Some(Credential {
            secret_access_key: TEMP_SECRET.into(),
            session_token: Some(TOKEN.into()),
            expires_at: now_expiry,
        }),
        "AKIDEXAMPLE" => Some(Credential {
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires_at: None,
        }),
        _ => None,
    }
}

fn sts_post() -> Request<Vec<u8>> {
    Request::post("https://sts.us-east-1.amazonaws.com/")
        .header("host", "sts.us-east-1.amazonaws.com")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(STS_BODY.as_bytes().to_vec())
        .unwrap()
}

/// Sign `req` in place with the AWS SDK's signer.
fn sdk_sign(
    req: &mut Request<Vec<u8>>,
    akid: &str,
    secret: &str,
    token: Option<&str>,
    service: &str,
    at: Timestamp,
    presign: Option<u64>,
) {
    let identity: Identity = Credentials::new(akid, secret, token.map(str::to_owned), None, "test").into();
    let mut settings = SigningSettings::default();
    if let Some(secs) = presign {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(secs));
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::from(at))
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let headers: Vec<(String, String)> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
    let uri = req.uri().to_string();
    let signable = SignableRequest::new(
        req.method().as_str(),
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(req.body()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(req);
}

fn signed_sts() -> Request<Vec<u8>> {
    let mut req = sts_post();
    sdk_sign(&mut req, AKID, SECRET, None, "sts", signed_at(), None);
    req
}

fn verify_at(req: &Request<Vec<u8>>, now: Timestamp) -> Result<Verified, AuthError> {
    verify(req, &store(None), now)
}

fn now() -> Timestamp {
    signed_at() + SignedDuration::from_mins(1)
}

// --- AWS's example ------------------------------------------------------------------------

/// The example from AWS's "Signature Version 4 signing process" guide (IAM ListUsers,
/// 20150830T123600Z, AKIDEXAMPLE), with its published signature.
#[test]
fn aws_documentation_example_verifies() {
    let req = Request::get("https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08")
        .header("host", "iam.amazonaws.com")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .header("x-amz-date", "20150830T123600Z")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7",
        )
        .body(Vec::new())
        .unwrap();
    let v = verify_at(&req, ts("2015-08-30T12:40:00Z")).unwrap();
    assert_eq!(v.access_key_id, "AKIDEXAMPLE");
    assert_eq!(v.service, "iam");
    assert_eq!(v.region, "us-east-1");
    assert_eq!(v.signed_at, ts("2015-08-30T12:36:00Z"));
}

// --- aws-sigv4 interop --------------------------------------------------------------------

#[test]
fn sdk_signed_header_form_verifies_and_tampering_fails() {
    let req = signed_sts();
    let v = verify_at(&req, now()).unwrap();
    assert_eq!(
        v,
        Verified {
            access_key_id: AKID.into(),
            service: "sts".into(),
            region: "us-east-1".into(),
            signed_at: signed_at(),
            session_token: None,
        }
    );

    let mismatch = Err(AuthError::SignatureDoesNotMatch { detail: None });
    let mut body = signed_sts();
    *body.body_mut() = b"Action=GetCallerIdentity&Version=2011-06-16".to_vec();
    assert_eq!(verify_at(&body, now()), mismatch);

    let mut header = signed_sts();
    header.headers_mut().insert("content-type", "application/json".parse().unwrap());
    assert_eq!(verify_at(&header, now()), mismatch);

    let wrong_secret = |akid: &str| {
        (akid == AKID).then(|| Credential {
            secret_access_key: "not-the-secret".into(),
            session_token: None,
            expires_at: None,
        })
    };
    assert_eq!(verify(&signed_sts(), &wrong_secret, now()), mismatch);

    // An unsigned header may change freely.
    let mut unsigned = signed_sts();
    unsigned.headers_mut().insert("user-agent", "anything".parse().unwrap());
    assert!(verify_at(&unsigned, now()).is_ok());
}

#[test]
fn sdk_signed_with_session_token() {
    let mut req = sts_post();
    sdk_sign(&mut req, TEMP_AKID, TEMP_SECRET, Some(TOKEN), "sts", signed_at(), None);
    let expiry = signed_at() + SignedDuration::from_hours(1);
    let v = verify(&req, &store(Some(expiry)), now()).unwrap();
    assert_eq!(v.session_token.as_deref(), Some(TOKEN));

    // Past the credentials' expiry.
    assert_eq!(verify(&req, &store(Some(signed_at())), now()), Err(AuthError::ExpiredToken));

    // Token missing, or another one.
    let mut missing = req.clone();
    missing.headers_mut().remove("x-amz-security-token");
    assert_eq!(verify(&missing, &store(None), now()), Err(AuthError::InvalidClientTokenId));
    let mut other = req.clone();
    other.headers_mut().insert("x-amz-security-token", "other".parse().unwrap());
    assert_eq!(verify(&other, &store(None), now()), Err(AuthError::InvalidClientTokenId));

    // A permanent key sent with a token.
    let mut permanent = sts_post();
    sdk_sign(&mut permanent, AKID, SECRET, Some(TOKEN), "sts", signed_at(), None);
    assert_eq!(verify_at(&permanent, now()), Err(AuthError::InvalidClientTokenId));
}

/// Presigned as `aws eks get-token` does: GET GetCallerIdentity with `x-k8s-aws-id` signed.
#[test]
fn sdk_presigned_verifies_until_expiry() {
    let mut req =
        Request::get("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15")
            .header("host", "sts.us-east-1.amazonaws.com")
            .header("x-k8s-aws-id", "netlab")
            .body(Vec::new())
            .unwrap();
    sdk_sign(&mut req, TEMP_AKID, TEMP_SECRET, Some(TOKEN), "sts", signed_at(), Some(60));
    assert!(req.uri().query().unwrap().contains("X-Amz-Signature="));
    assert!(req.headers().get("authorization").is_none());

    let st = store(None);
    let v = verify(&req, &st, signed_at() + SignedDuration::from_secs(59)).unwrap();
    assert_eq!(v.session_token.as_deref(), Some(TOKEN));
    assert_eq!(v.service, "sts");

    let late = signed_at() + SignedDuration::from_secs(61);
    assert_eq!(
        verify(&req, &st, late),
        Err(AuthError::RequestExpired {
            signed_at: signed_at(),
            now: late,
            window: SignedDuration::from_secs(60),
            future: false,
        })
    );

    let mut tampered = req.clone();
    tampered.headers_mut().insert("x-k8s-aws-id", "other".parse().unwrap());
    assert_eq!(verify(&tampered, &st, now()), Err(AuthError::SignatureDoesNotMatch { detail: None }));
    let mut query = req.clone();
    *query.uri_mut() = req.uri().to_string().replace("GetCallerIdentity", "GetSessionToken").parse().unwrap();
    assert_eq!(verify(&query, &st, now()), Err(AuthError::SignatureDoesNotMatch { detail: None }));
}

// --- failure branches ---------------------------------------------------------------------

#[test]
fn no_signature_is_missing_token() {
    assert_eq!(verify_at(&sts_post(), now()), Err(AuthError::MissingAuthenticationToken));
    assert_eq!(scope(&sts_post()), None);
}

fn with_auth(auth: &str) -> Request<Vec<u8>> {
    let mut req = sts_post();
    req.headers_mut().insert("authorization", auth.parse().unwrap());
    req.headers_mut().insert("x-amz-date", "20261207T100000Z".parse().unwrap());
    req
}

fn incomplete_detail(r: Result<Verified, AuthError>) -> String {
    match r {
        Err(AuthError::IncompleteSignature { detail }) => detail,
        other => panic!("expected IncompleteSignature, got {other:?}"),
    }
}

#[test]
fn malformed_header_is_incomplete_signature() {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261207/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date";
    assert_eq!(
        incomplete_detail(verify_at(&with_auth(auth), now())),
        format!("Authorization header requires 'Signature' parameter. Authorization={auth}")
    );

    let d = incomplete_detail(verify_at(&with_auth("AWS4-HMAC-SHA512 Credential=x"), now()));
    assert_eq!(d, "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512'");

    let bad_scope =
        "AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/sts, SignedHeaders=host, Signature=00";
    assert!(
        incomplete_detail(verify_at(&with_auth(bad_scope), now()))
            .starts_with("Credential must have exactly 5 slash-delimited elements")
    );

    let host_unsigned = "AWS4-HMAC-SHA256 Credential=AKID/20261207/us-east-1/sts/aws4_request, SignedHeaders=x-amz-date, Signature=00";
    assert_eq!(
        incomplete_detail(verify_at(&with_auth(host_unsigned), now())),
        "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
    );

    let mut no_date = signed_sts();
    no_date.headers_mut().remove("x-amz-date");
    assert!(
        incomplete_detail(verify_at(&no_date, now()))
            .contains("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
    );

    let mut bad_date = signed_sts();
    bad_date.headers_mut().insert("x-amz-date", "2026-12-07T10:00:00Z".parse().unwrap());
    assert!(
        incomplete_detail(verify_at(&bad_date, now()))
            .starts_with("Date must be in ISO-8601 'basic format'. Got '2026-12-07T10:00:00Z'.")
    );
}

#[test]
fn scope_date_must_match_x_amz_date() {
    let auth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=00";
    assert_eq!(
        verify_at(&with_auth(auth), now()),
        Err(AuthError::SignatureDoesNotMatch {
            detail: Some(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261206' != '20261207', from '20261207T100000Z'.".into()
            )
        })
    );
}

#[test]
fn unknown_key_is_invalid_client_token_id() {
    let mut req = sts_post();
    sdk_sign(&mut req, "AKIAUNKNOWN", SECRET, None, "sts", signed_at(), None);
    assert_eq!(verify_at(&req, now()), Err(AuthError::InvalidClientTokenId));
}

#[test]
fn clock_skew_both_ways() {
    let req = signed_sts();
    let boundary = signed_at() + MAX_SKEW;
    assert!(verify_at(&req, boundary).is_ok());
    let late = ts("2026-12-07T10:30:00Z");
    assert_eq!(
        verify_at(&req, late),
        Err(AuthError::RequestExpired { signed_at: signed_at(), now: late, window: MAX_SKEW, future: false })
    );
    let early = ts("2026-12-07T09:44:59Z");
    assert_eq!(
        verify_at(&req, early),
        Err(AuthError::RequestExpired { signed_at: signed_at(), now: early, window: MAX_SKEW, future: true })
    );
    let sts = crate::protocol::Service::Sts.protocol();
    assert_eq!(
        verify_at(&req, late).unwrap_err().to_aws_error(&sts).message,
        "Signature expired: 20261207T100000Z is now earlier than 20261207T101500Z (20261207T103000Z - 15 min.)"
    );
}

#[test]
fn malformed_presigned_query() {
    let req = Request::get("https://sts.amazonaws.com/?Action=GetCallerIdentity&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261207%2Fus-east-1%2Fsts%2Faws4_request")
        .body(Vec::new())
        .unwrap();
    assert_eq!(
        incomplete_detail(verify_at(&req, now())),
        "AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string parameters."
    );
    let scope = scope(&req).unwrap();
    assert_eq!((scope.access_key_id.as_str(), scope.service.as_str()), ("AKID", "sts"));

    let bad_expiry = Request::get("https://sts.amazonaws.com/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKID%2F20261207%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=20261207T100000Z&X-Amz-SignedHeaders=host&X-Amz-Signature=00&X-Amz-Expires=604801")
        .body(Vec::new())
        .unwrap();
    assert!(incomplete_detail(verify_at(&bad_expiry, now())).starts_with("X-Amz-Expires must be"));
}

#[test]
fn scope_reads_unverified_header() {
    let s = scope(&signed_sts()).unwrap();
    assert_eq!(
        s,
        CredentialScope {
            access_key_id: AKID.into(),
            date: "20261207".into(),
            region: "us-east-1".into(),
            service: "sts".into(),
        }
    );
}

// --- botocore interop ---------------------------------------------------------------------

/// Signs with botocore at 2026-12-07T10:00:00Z and prints the request as JSON. argv: mode
/// (`header` or `presign`), akid, secret, token ('' for none), method, url, body.
const BOTOCORE: &str = r#"
import datetime, json, sys
import botocore.auth, botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
botocore.auth.get_current_datetime = lambda remove_tzinfo=True: datetime.datetime(2026, 12, 7, 10, 0, 0)
mode, akid, secret, token, method, url, body = sys.argv[1:8]
token = token or None
if mode == "header":
    req = AWSRequest(method=method, url=url, data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(akid, secret, token), "sts", "us-east-1").add_auth(req)
    p = req.prepare()
    print(json.dumps({"method": p.method, "url": p.url, "headers": dict(p.headers), "body": body}))
else:
    client = botocore.session.get_session().create_client(
        "sts", region_name="us-east-1", aws_access_key_id=akid,
        aws_secret_access_key=secret, aws_session_token=token)
    # As awscli's `eks get-token` does (awscli/customizations/eks/get_token.py).
    client.meta.events.register(
        "before-sign.sts.GetCallerIdentity",
        lambda request, **kwargs: request.headers.add_header("x-k8s-aws-id", "netlab"))
    url = client.generate_presigned_url(
        "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET")
    print(json.dumps({"method": "GET", "url": url, "headers": {"x-k8s-aws-id": "netlab"}, "body": ""}))
"#;

/// The request botocore produced, or `None` (with a message) when python3/botocore is missing.
fn botocore(mode: &str, token: &str, body: &str) -> Option<Request<Vec<u8>>> {
    let (akid, secret) = if token.is_empty() { (AKID, SECRET) } else { (TEMP_AKID, TEMP_SECRET) };
    let out = match Command::new("python3")
        .args(["-c", BOTOCORE, mode, akid, secret, token, "POST"])
        .args(["https://sts.us-east-1.amazonaws.com/", body])
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!(
                "SKIPPED: botocore signing failed (is botocore installed?): {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Err(e) => {
            eprintln!("SKIPPED: python3 not runnable: {e}");
            return None;
        }
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let url: http::Uri = v["url"].as_str().unwrap().parse().unwrap();
    let mut builder = Request::builder().method(v["method"].as_str().unwrap()).uri(url.clone());
    // botocore signs `host` from the URL; the HTTP client adds the header on the wire.
    builder = builder.header("host", url.authority().unwrap().as_str());
    for (k, val) in v["headers"].as_object().unwrap() {
        builder = builder.header(k.as_str(), val.as_str().unwrap());
    }
    Some(builder.body(v["body"].as_str().unwrap().as_bytes().to_vec()).unwrap())
}

#[test]
fn botocore_header_form_verifies_and_tampering_fails() {
    let Some(req) = botocore("header", "", STS_BODY) else { return };
    assert!(req.headers()["authorization"].to_str().unwrap().starts_with("AWS4-HMAC-SHA256 "));
    let v = verify_at(&req, now()).unwrap();
    assert_eq!((v.access_key_id.as_str(), v.service.as_str()), (AKID, "sts"));
    assert_eq!(v.signed_at, signed_at());

    let mismatch = Err(AuthError::SignatureDoesNotMatch { detail: None });
    let mut body = req.clone();
    body.body_mut().push(b'x');
    assert_eq!(verify_at(&body, now()), mismatch);
    let mut header = req.clone();
    header.headers_mut().insert("content-type", "text/plain".parse().unwrap());
    assert_eq!(verify_at(&header, now()), mismatch);
    let other_secret =
        |_: &str| Some(Credential { secret_access_key: "x".into(), session_token: None, expires_at: None });
    assert_eq!(verify(&req, &other_secret, now()), mismatch);
}

#[test]
fn botocore_header_form_with_session_token() {
    let Some(req) = botocore("header", TOKEN, STS_BODY) else { return };
    let v = verify(&req, &store(None), now()).unwrap();
    assert_eq!(v.session_token.as_deref(), Some(TOKEN));
}

/// What `aws eks get-token` builds on: botocore's `generate_presigned_url` for STS
/// GetCallerIdentity, with temporary credentials.
#[test]
fn botocore_presigned_get_caller_identity_verifies() {
    let Some(req) = botocore("presign", TOKEN, "") else { return };
    let query = req.uri().query().unwrap();
    assert!(query.contains("Action=GetCallerIdentity"), "{query}");
    assert!(query.contains("X-Amz-Security-Token="), "{query}");
    let v = verify(&req, &store(None), now()).unwrap();
    assert_eq!(v.service, "sts");
    assert_eq!(v.session_token.as_deref(), Some(TOKEN));

    let mut tampered = req.clone();
    *tampered.uri_mut() =
        req.uri().to_string().replace("Version=2011-06-15", "Version=2011-06-16").parse().unwrap();
    assert_eq!(
        verify(&tampered, &store(None), now()),
        Err(AuthError::SignatureDoesNotMatch { detail: None })
    );
    let mut other_cluster = req.clone();
    other_cluster.headers_mut().insert("x-k8s-aws-id", "other".parse().unwrap());
    assert_eq!(
        verify(&other_cluster, &store(None), now()),
        Err(AuthError::SignatureDoesNotMatch { detail: None })
    );
    let late = signed_at() + SignedDuration::from_secs(61);
    assert!(matches!(verify(&req, &store(None), late), Err(AuthError::RequestExpired { future: false, .. })));
}
