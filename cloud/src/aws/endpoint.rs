//! The HTTP edge of the AWS endpoint: one port for every service, as LocalStack serves them.
//! A request is routed by the service in its SigV4 credential scope (or, unsigned, by what its
//! protocol shows: ECR's `X-Amz-Target`, the Query API's `Version`), verified, read as an
//! operation, run by the service's module and answered in the service's protocol. Errors go on
//! the wire here, in one place, through [`netlab_aws::protocol::render_error`].

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{ConnectInfo, Request, State},
    response::Response,
};
use bytes::Bytes;
use jiff::Timestamp;
use netlab_aws::{
    AuthError, AwsError, Protocol, Service,
    protocol::{self, parse_request, render_error},
    sigv4,
};
use netlab_iam::KeyLookup;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use super::{
    Call, Caller, ec2, ecr, iam,
    state::Shared,
    sts,
    web_identity::{IssuerKeys, KeysVerifier},
};

/// The largest request body taken (the Query API's own limit is far below it).
pub const MAX_BODY: usize = 1 << 20;

/// What the endpoint answers from: the account, and the cluster issuer's keys STS verifies web
/// identity tokens with.
#[derive(Clone)]
pub struct Endpoint {
    /// The account.
    pub aws: Arc<Shared>,
    /// The issuer's keys.
    pub keys: Arc<IssuerKeys>,
}

/// The endpoint's router: every path and method goes to one handler.
pub fn router(aws: Arc<Shared>, keys: Arc<IssuerKeys>) -> Router {
    Router::new().fallback(handle).with_state(Endpoint { aws, keys })
}

async fn handle(State(Endpoint { aws, keys }): State<Endpoint>, req: Request) -> Response {
    let request_id = protocol::request_id();
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(std::net::Ipv4Addr::LOCALHOST.into(), |ConnectInfo(a)| a.ip());
    let (parts, body) = req.into_parts();
    let parent = netlab_telemetry::propagation::extract(&parts.headers);
    let body = axum::body::to_bytes(body, MAX_BODY).await;
    let req = http::Request::from_parts(parts, body.as_ref().cloned().unwrap_or_default());
    // A web identity token's keys are fetched (async) before the call runs (sync).
    let web_identity = web_identity_kid(&req);
    if let Some(kid) = &web_identity {
        keys.refresh(kid.as_deref()).await;
    }
    let verifier = if web_identity.is_some() { keys.verifier() } else { KeysVerifier::default() };
    // The span is named for the operation (`sts.GetCallerIdentity`), read before it opens.
    let span = tracing::info_span!(
        "aws.call",
        otel.name = %operation_name(&req),
        otel.kind = "server",
        rpc.system = "aws-api",
        rpc.service = Empty,
        rpc.method = Empty,
        aws.request_id = %request_id,
        aws.principal = Empty,
        aws.iam.decision = Empty,
        aws.iam.statement = Empty,
        aws.error.code = Empty,
        http.response.status_code = Empty,
    );
    let _ = span.set_parent(parent);
    let response = span.in_scope(|| {
        if body.is_err() {
            let e = AwsError::sender(
                "RequestEntityTooLarge",
                format!("Request body larger than {MAX_BODY} bytes"),
            )
            .with_status(http::StatusCode::PAYLOAD_TOO_LARGE);
            return error(guess(req.headers()), &e, &request_id);
        }
        let (protocol, result) = serve(&aws, &verifier, &req, source_ip, &request_id);
        match result {
            Ok(r) => r.map(Body::from),
            Err(e) => error(protocol, &e, &request_id),
        }
    });
    span.record("http.response.status_code", response.status().as_u16());
    span.in_scope(|| tracing::debug!(status = response.status().as_u16(), "Answered."));
    response
}

/// `service.Action` for a span's name, or `aws.call` when the request does not say.
fn operation_name(req: &http::Request<Bytes>) -> String {
    let service = match sigv4::scope(req) {
        Some(scope) => Service::from_signing_name(&scope.service),
        None => unsigned_service(req),
    };
    let Some(service) = service else { return "aws.call".into() };
    match parse_request(&service.protocol(), req) {
        Ok(op) => format!("{}.{}", service.signing_name(), op.action),
        Err(_) => format!("{}.call", service.signing_name()),
    }
}

/// Verifies, reads and runs one call; the protocol its answer is written in, and the answer.
fn serve(
    aws: &Shared,
    verifier: &KeysVerifier,
    req: &http::Request<Bytes>,
    source_ip: std::net::IpAddr,
    request_id: &str,
) -> (Protocol, Result<http::Response<Bytes>, AwsError>) {
    let span = tracing::Span::current();
    let scope = sigv4::scope(req);
    let service = match &scope {
        Some(s) => match Service::from_signing_name(&s.service) {
            Some(service) => service,
            None => {
                let e = AwsError::sender(
                    "UnrecognizedClientException",
                    format!(
                        "The service '{}' is not served by netlab's AWS endpoint (ec2, iam, sts, ecr are)",
                        s.service
                    ),
                );
                return (guess(req.headers()), Err(e));
            }
        },
        None => match unsigned_service(req) {
            Some(service) => service,
            None => {
                let protocol = guess(req.headers());
                return (protocol, Err(AuthError::MissingAuthenticationToken.to_aws_error(&protocol)));
            }
        },
    };
    let protocol = service.protocol();
    span.record("rpc.service", service.signing_name());
    let now = Timestamp::now();
    let store = |id: &str| {
        aws.read(|account| match account.iam.lookup_access_key(id, now) {
            KeyLookup::Valid(c) | KeyLookup::Expired(c) => Some(sigv4::Credential {
                secret_access_key: c.secret_access_key,
                session_token: c.session_token,
                expires_at: c.expiration,
            }),
            _ => None,
        })
    };
    // AssumeRoleWithWebIdentity is the one unsigned call (its web identity token is the proof),
    // as the SDKs send it from a pod with no AWS credentials.
    let unsigned_web_identity = scope.is_none()
        && service == Service::Sts
        && parse_request(&protocol, req).is_ok_and(|op| op.action == "AssumeRoleWithWebIdentity");
    let (identity, access_key_id) = if unsigned_web_identity {
        let anonymous = netlab_iam::Identity::User {
            name: "anonymous".into(),
            id: String::new(),
            arn: "anonymous".into(),
        };
        (anonymous, String::new())
    } else {
        let verified = match sigv4::verify(req, &store, now) {
            Ok(v) => v,
            Err(e) => return (protocol, Err(e.to_aws_error(&protocol))),
        };
        let identity =
            aws.read(|account| match account.iam.lookup_access_key(&verified.access_key_id, now) {
                KeyLookup::Valid(c) => Some(c.identity),
                _ => None,
            });
        let Some(identity) = identity else {
            return (protocol, Err(AuthError::InvalidClientTokenId.to_aws_error(&protocol)));
        };
        (identity, verified.access_key_id)
    };
    span.record("aws.principal", identity.arn());
    let operation = match parse_request(&protocol, req) {
        Ok(op) => op,
        Err(e) => return (protocol, Err(e.to_aws_error(&protocol))),
    };
    span.record("rpc.method", operation.action.as_str());
    let caller = Caller { identity, access_key_id, source_ip };
    let call = Call {
        action: &operation.action,
        input: &operation.input,
        caller: &caller,
        request_id,
        protocol,
        now,
    };
    let run = |account: &mut super::Account| match service {
        Service::Sts => sts::handle_with(account, &call, verifier),
        Service::Iam => iam::handle(account, &call),
        Service::Ec2 => ec2::handle(account, &call),
        Service::Ecr => ecr::handle(account, &call),
    };
    let result = if reads_only(&operation.action) {
        aws.run(run)
    } else {
        match aws.write(run) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "Keeping the account failed.");
                Err(AwsError::internal("We encountered an internal error. Please try again."))
            }
        }
    };
    (protocol, result)
}

/// For an `AssumeRoleWithWebIdentity` call: `Some` with its token's `kid` (when it has one).
fn web_identity_kid(req: &http::Request<Bytes>) -> Option<Option<String>> {
    let service = match sigv4::scope(req) {
        Some(scope) => Service::from_signing_name(&scope.service),
        None => unsigned_service(req),
    };
    if service != Some(Service::Sts) {
        return None;
    }
    let op = parse_request(&Service::Sts.protocol(), req).ok()?;
    if op.action != "AssumeRoleWithWebIdentity" {
        return None;
    }
    let token = match &op.input {
        netlab_aws::Input::Query(params) => params.get("WebIdentityToken"),
        netlab_aws::Input::Json(_) => None,
    };
    Some(token.and_then(|t| netlab_oidc::decode_unverified(t).ok()).and_then(|u| u.header.kid))
}

/// Operations that change nothing (their answers need not wait for the account to be
/// written). GetAuthorizationToken is one: its tokens are sealed, not remembered.
fn reads_only(action: &str) -> bool {
    ["Describe", "List", "BatchGet", "Get"].iter().any(|p| action.starts_with(p))
}

/// The service of an unsigned request, from what its protocol shows.
fn unsigned_service(req: &http::Request<Bytes>) -> Option<Service> {
    if req.headers().contains_key("x-amz-target") {
        return Some(Service::Ecr);
    }
    let version =
        query_version(req.uri().query().unwrap_or_default().as_bytes()).or_else(|| query_version(req.body()));
    match version.as_deref() {
        Some("2016-11-15") => Some(Service::Ec2),
        Some("2010-05-08") => Some(Service::Iam),
        Some("2011-06-15") => Some(Service::Sts),
        _ => None,
    }
}

/// The protocol to write an error in before the service is known.
fn guess(headers: &http::HeaderMap) -> Protocol {
    if headers.contains_key("x-amz-target") { Service::Ecr.protocol() } else { Service::Sts.protocol() }
}

/// The `Version` in a query string or form body.
fn query_version(query: &[u8]) -> Option<String> {
    form_urlencoded::parse(query).find(|(k, _)| k == "Version").map(|(_, v)| v.into_owned())
}

/// An error on the wire, recorded on the span.
fn error(protocol: Protocol, e: &AwsError, request_id: &str) -> Response {
    tracing::Span::current().record("aws.error.code", e.code.as_ref());
    tracing::debug!(code = %e.code, message = %e.message, "Refused.");
    render_error(&protocol, e, request_id).map(Body::from)
}
