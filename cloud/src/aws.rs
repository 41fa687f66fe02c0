//! The cloud's AWS: one endpoint (LocalStack-style, one port) for IAM, STS, EC2 and ECR, plus
//! IMDS for the nodes as EC2 instances. Every call is signed (SigV4, checked against the
//! account's IAM directory), authorised by AWS's policy evaluation, and answered in its service's
//! protocol, so the real aws CLI and SDKs work against it unchanged.
//!
//! A call goes: [`endpoint`] (body, request id, span) → [`netlab_aws::sigv4`] (who signed it) →
//! [`netlab_aws::protocol`] (which operation, what input) → the service's handler ([`sts`],
//! [`iam`], [`ec2`], [`ecr`]), which authorises with [`authorize`] against the resource it
//! touches and changes [`state::Account`] → the answer or an [`AwsError`] in the request's
//! protocol. The span carries the service, the operation, the caller's principal ARN and the
//! policy decision (which statement allowed or denied).
//!
//! # Layout
//! - [`state`]: the account (IAM directory, EC2, ECR repositories), persisted as one JSON file.
//! - [`endpoint`]: the HTTP edge and the routing by credential scope.
//! - [`imds`]: the instance metadata service of the nodes as instances.
//! - [`sts`], [`iam`], [`ec2`], [`ecr`]: one module per service's operations.
//! - [`web_identity`]: the cluster issuer's keys, which STS verifies web identity tokens with.

use std::net::IpAddr;

use jiff::Timestamp;
use netlab_aws::{AwsError, Input, Params, Protocol};
use netlab_iam::{Decision, Identity, Outcome};

pub mod ec2;
pub mod ecr;
pub mod endpoint;
pub mod iam;
pub mod imds;
pub mod state;
pub mod sts;
pub mod web_identity;

pub use state::Account;

/// Who is calling, as the signature and the IAM directory established.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The identity behind the access key (a user, or a role session).
    pub identity: Identity,
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// The address the request came from (`aws:SourceIp`).
    pub source_ip: IpAddr,
}

/// One call to a service's operation, as its handler sees it.
#[derive(Debug)]
pub struct Call<'a> {
    /// The operation (`GetCallerIdentity`, `AttachRolePolicy`, ...).
    pub action: &'a str,
    /// Its input.
    pub input: &'a Input,
    /// Who calls.
    pub caller: &'a Caller,
    /// The request id the answer carries.
    pub request_id: &'a str,
    /// The protocol the answer and errors are written in.
    pub protocol: Protocol,
    /// The time of the call (expiry and the signature's clock).
    pub now: Timestamp,
}

// === impl Call ===

impl Call<'_> {
    /// The Query input (IAM, STS, EC2).
    pub fn params(&self) -> Result<&Params, AwsError> {
        match self.input {
            Input::Query(p) => Ok(p),
            Input::Json(_) => Err(AwsError::sender("SerializationException", "Expected a Query request")),
        }
    }

    /// The JSON input (ECR).
    pub fn json(&self) -> Result<&serde_json::Value, AwsError> {
        match self.input {
            Input::Json(v) => Ok(v),
            Input::Query(_) => Err(AwsError::sender("SerializationException", "Expected a JSON request")),
        }
    }
}

/// Authorises `action` on `resource` for the call's caller, records the decision on the current
/// span (`aws.iam.decision`, `aws.iam.statement`), and answers a denial with the service's
/// access-denied error and AWS's message.
pub fn authorize(
    account: &Account,
    call: &Call<'_>,
    action: &str,
    resource: &str,
) -> Result<Decision, AwsError> {
    let mut context = account.iam.request_context(&call.caller.identity, call.now);
    context.insert("aws:SourceIp", call.caller.source_ip.to_string());
    let decision = account.iam.authorize(&call.caller.identity, action, resource, &context);
    let span = tracing::Span::current();
    span.record("aws.iam.decision", format!("{:?}", decision.outcome).as_str());
    if let Some(statement) = &decision.statement {
        span.record("aws.iam.statement", statement.to_string().as_str());
    }
    if decision.outcome == Outcome::Allow {
        return Ok(decision);
    }
    let principal = call.caller.identity.arn();
    let message = decision.denial_message(principal, action, resource).unwrap_or_default();
    Err(access_denied(call.protocol, &message))
}

/// The access-denied error as each protocol's services word it: IAM and STS `AccessDenied`
/// (403), EC2 `UnauthorizedOperation` (403, its message led by "You are not authorized to
/// perform this operation."), ECR `AccessDeniedException` (400).
pub fn access_denied(protocol: Protocol, message: &str) -> AwsError {
    match protocol {
        Protocol::Ec2 => AwsError::sender(
            "UnauthorizedOperation",
            format!("You are not authorized to perform this operation. {message}"),
        )
        .with_status(http::StatusCode::FORBIDDEN),
        Protocol::AwsQuery { .. } => {
            AwsError::sender("AccessDenied", message).with_status(http::StatusCode::FORBIDDEN)
        }
        Protocol::AwsJson11 { .. } => AwsError::sender("AccessDeniedException", message),
    }
}

/// An IAM/STS error from the directory, as the wire carries it.
pub fn iam_error(e: netlab_iam::Error) -> AwsError {
    let status = http::StatusCode::from_u16(e.status()).unwrap_or(http::StatusCode::BAD_REQUEST);
    AwsError::sender(e.code(), e.message()).with_status(status)
}
