//! The errors of AWS's wire, and the one value ([`AwsError`]) every handler returns.
//!
//! AWS services answer the same failure with different codes, texts and statuses depending on
//! the protocol they speak: an unknown access key is `InvalidClientTokenId` to STS and IAM,
//! `AuthFailure` to EC2 and `UnrecognizedClientException` to ECR. So the causes here
//! ([`AuthError`], [`ProtocolError`]) stay protocol-free, and turn into an [`AwsError`] only
//! through [`AuthError::to_aws_error`] / [`ProtocolError::to_aws_error`], given the [`Protocol`]
//! the request came in on. That is the one place where the texts live; each text cites where it
//! was checked.

use std::borrow::Cow;
use std::fmt;

use http::StatusCode;
use jiff::{SignedDuration, Timestamp};

use crate::protocol::Protocol;

/// Result alias for this crate.
pub type Result<T, E = AwsError> = std::result::Result<T, E>;

/// How far `X-Amz-Date` may be from the server's clock: "The request reached the service more
/// than 15 minutes after the date stamp on the request [...] or the date stamp on the request is
/// more than 15 minutes in the future" (AWS Common Errors, `RequestExpired`,
/// docs.aws.amazon.com/emr/latest/APIReference/CommonErrors.html).
pub const MAX_SKEW: SignedDuration = SignedDuration::from_mins(15);

/// The STS/IAM `SignatureDoesNotMatch` text (moto `moto/core/exceptions.py`
/// `SignatureDoesNotMatchError`, the same as dacut/scratchstack-aws-signature's
/// `MSG_REQUEST_SIGNATURE_MISMATCH`).
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// STS/IAM `InvalidClientTokenId` and ECR `UnrecognizedClientException` (moto
/// `InvalidClientTokenIdError`; aws CLI output "An error occurred (UnrecognizedClientException)
/// when calling the GetAuthorizationToken operation: The security token included in the request
/// is invalid." quoted in several public READMEs).
const TOKEN_INVALID: &str = "The security token included in the request is invalid.";

/// STS/IAM `ExpiredToken` and ECR `ExpiredTokenException`, no final period ("An error occurred
/// (ExpiredToken) when calling the GetCallerIdentity operation: The security token included in
/// the request is expired", and the same for ECR's GetAuthorizationToken, both quoted verbatim in
/// public troubleshooting notes).
const TOKEN_EXPIRED: &str = "The security token included in the request is expired";

/// EC2's answer to any credential it cannot validate, status 401 (moto `AuthFailureError`; a
/// captured EC2 response in a public nock test: `<Code>AuthFailure</Code><Message>AWS was not
/// able to validate the provided access credentials</Message>`).
const EC2_AUTH_FAILURE: &str = "AWS was not able to validate the provided access credentials";

/// EC2's `RequestExpired`, for skew and for expired temporary credentials ("An error occurred
/// (RequestExpired) when calling the DescribeInstances operation: Request has expired." quoted
/// in public notes about expired MFA sessions).
const EC2_REQUEST_EXPIRED: &str = "Request has expired.";

/// `MissingAuthenticationToken` as STS sends it: a captured 403 from sts.amazonaws.com in
/// amzn/selling-partner-api-docs#3081 (`<Type>Sender</Type><Code>MissingAuthenticationToken</Code>
/// <Message>Request is missing Authentication Token</Message>`).
const MISSING_TOKEN: &str = "Request is missing Authentication Token";

/// EC2's `MissingAuthenticationToken` text, from the EC2 API reference's Common Errors.
const EC2_MISSING_TOKEN: &str =
    "The request must contain either a valid (registered) AWS access key ID or X.509 certificate.";

/// A failure as the client sees it: code, message, HTTP status and fault side.
///
/// Handlers in other crates build these (`AwsError::sender("NoSuchEntity", ...)`), the protocol
/// module renders them in the request's protocol (see [`crate::protocol::render_error`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct AwsError {
    /// The error code the client matches on (`NoSuchEntity`, `InvalidParameterValue`,
    /// `RepositoryNotFoundException`): botocore shows it as `An error occurred (Code)`.
    pub code: Cow<'static, str>,
    /// The human text after the colon in the CLI's output.
    pub message: String,
    /// The HTTP status: clients use it to decide on retries.
    pub status: StatusCode,
    /// `<Type>Sender</Type>` vs `Receiver` in awsQuery errors: whose fault it is.
    pub sender_fault: bool,
}

/// Why a request's signature was not accepted; render with [`AuthError::to_aws_error`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Neither an `Authorization` header nor presigned query parameters.
    #[error("the request carries no signature")]
    MissingAuthenticationToken,
    /// The signature is there but malformed (a part missing, a bad date, host unsigned).
    #[error("incomplete signature: {detail}")]
    IncompleteSignature {
        /// AWS's text for what is wrong.
        detail: String,
    },
    /// The access key id is unknown, or the session token does not belong to it.
    #[error("unknown access key id or wrong session token")]
    InvalidClientTokenId,
    /// The signature differs from the one computed with the key's secret.
    #[error("signature does not match")]
    SignatureDoesNotMatch {
        /// A more specific AWS text (e.g. the credential scope's date), if any.
        detail: Option<String>,
    },
    /// The temporary credentials are past their expiry.
    #[error("the security token is expired")]
    ExpiredToken,
    /// `X-Amz-Date` is too far from now, or a presigned URL is past `X-Amz-Expires`.
    #[error("request expired: signed at {signed_at}, now {now}")]
    RequestExpired {
        /// When the client signed (`X-Amz-Date`).
        signed_at: Timestamp,
        /// The server's time.
        now: Timestamp,
        /// How long the signature was valid for: [`MAX_SKEW`], or `X-Amz-Expires`.
        window: SignedDuration,
        /// The date lies in the future rather than the past.
        future: bool,
    },
}

/// Why a request could not be read as an operation; render with [`ProtocolError::to_aws_error`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A Query request without `Action`.
    #[error("no Action parameter")]
    MissingAction,
    /// A Query action the service does not have.
    #[error("unknown action {action}")]
    InvalidAction {
        /// The action as sent.
        action: String,
    },
    /// A required Query parameter is absent.
    #[error("missing parameter {name}")]
    MissingParameter {
        /// The parameter's wire name (`RoleName`, `NetworkInterfaceId`).
        name: String,
    },
    /// The form body or query string cannot be decoded.
    #[error("malformed query string: {detail}")]
    MalformedQueryString {
        /// What is wrong.
        detail: String,
    },
    /// The awsJson body is not the JSON object expected.
    #[error("bad JSON body: {detail}")]
    Serialization {
        /// What is wrong.
        detail: String,
    },
    /// `X-Amz-Target` is missing or names no operation of the service.
    #[error("unknown operation {target:?}")]
    UnknownOperation {
        /// The header as sent, if any.
        target: Option<String>,
    },
    /// One or more input values break the model's constraints.
    #[error("{}", validation_message(.0))]
    Validation(Vec<ValidationFailure>),
}

/// One broken constraint, in AWS's "Value 'x' at 'roleName' failed to satisfy constraint: ..."
/// form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationFailure {
    /// The value sent; `None` renders as `null` (a missing required member).
    pub value: Option<String>,
    /// The member's path as AWS writes it: lower camel case (`roleName`,
    /// `policyArns.member.1`).
    pub member: String,
    /// The constraint text (`Member must have length less than or equal to 64`).
    pub constraint: String,
}

// === impl AwsError ===

impl AwsError {
    /// An error with every field given.
    pub fn new(
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
        status: StatusCode,
        sender_fault: bool,
    ) -> Self {
        Self { code: code.into(), message: message.into(), status, sender_fault }
    }

    /// A client-side error with status 400, the most common kind.
    pub fn sender(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(code, message, StatusCode::BAD_REQUEST, true)
    }

    /// A server-side failure: `InternalFailure`, status 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new("InternalFailure", message, StatusCode::INTERNAL_SERVER_ERROR, false)
    }

    /// AWS's validation error for one constraint, coded for `protocol` (`ValidationError` for
    /// awsQuery, `ValidationException` for awsJson, `InvalidParameterValue` for EC2).
    pub fn validation(protocol: &Protocol, value: Option<&str>, member: &str, constraint: &str) -> Self {
        ProtocolError::Validation(vec![ValidationFailure {
            value: value.map(str::to_owned),
            member: member.to_owned(),
            constraint: constraint.to_owned(),
        }])
        .to_aws_error(protocol)
    }

    /// Change the status (for modelled errors whose status is not 400).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }
}

// === impl AuthError ===

impl AuthError {
    /// This failure as the service speaking `protocol` reports it.
    pub fn to_aws_error(&self, protocol: &Protocol) -> AwsError {
        use StatusCode as S;
        let forbidden = S::FORBIDDEN;
        match (self, protocol) {
            (Self::MissingAuthenticationToken, Protocol::AwsQuery { .. }) => {
                AwsError::new("MissingAuthenticationToken", MISSING_TOKEN, forbidden, true)
            }
            (Self::MissingAuthenticationToken, Protocol::Ec2) => {
                AwsError::new("MissingAuthenticationToken", EC2_MISSING_TOKEN, forbidden, true)
            }
            // awsJson services use the `...Exception` spelling of the same text.
            (Self::MissingAuthenticationToken, Protocol::AwsJson11 { .. }) => {
                AwsError::new("MissingAuthenticationTokenException", MISSING_TOKEN, forbidden, true)
            }

            (Self::IncompleteSignature { detail }, Protocol::AwsJson11 { .. }) => {
                AwsError::sender("IncompleteSignatureException", detail.clone())
            }
            // "IncompleteSignature [...] HTTP Status Code: 400" (AWS Common Errors).
            (Self::IncompleteSignature { detail }, _) => {
                AwsError::sender("IncompleteSignature", detail.clone())
            }

            (Self::InvalidClientTokenId, Protocol::AwsQuery { .. }) => {
                AwsError::new("InvalidClientTokenId", TOKEN_INVALID, forbidden, true)
            }
            (Self::InvalidClientTokenId | Self::SignatureDoesNotMatch { .. }, Protocol::Ec2) => {
                AwsError::new("AuthFailure", EC2_AUTH_FAILURE, S::UNAUTHORIZED, true)
            }
            (Self::InvalidClientTokenId, Protocol::AwsJson11 { .. }) => {
                AwsError::sender("UnrecognizedClientException", TOKEN_INVALID)
            }

            (Self::SignatureDoesNotMatch { detail }, Protocol::AwsQuery { .. }) => AwsError::new(
                "SignatureDoesNotMatch",
                detail.as_deref().unwrap_or(SIGNATURE_MISMATCH),
                forbidden,
                true,
            ),
            // "An error occurred (InvalidSignatureException) when calling the DescribeServices
            // operation: The request signature we calculated does not match [...]" (public notes).
            (Self::SignatureDoesNotMatch { detail }, Protocol::AwsJson11 { .. }) => {
                AwsError::sender("InvalidSignatureException", detail.as_deref().unwrap_or(SIGNATURE_MISMATCH))
            }

            (Self::ExpiredToken, Protocol::AwsQuery { .. }) => {
                AwsError::new("ExpiredToken", TOKEN_EXPIRED, forbidden, true)
            }
            (Self::ExpiredToken | Self::RequestExpired { .. }, Protocol::Ec2) => {
                AwsError::sender("RequestExpired", EC2_REQUEST_EXPIRED)
            }
            (Self::ExpiredToken, Protocol::AwsJson11 { .. }) => {
                AwsError::new("ExpiredTokenException", TOKEN_EXPIRED, forbidden, true)
            }

            // STS: "SignatureDoesNotMatch: Signature expired: 20200706T195306Z is now earlier
            // than 20200707T071347Z (20200707T072847Z - 15 min.)" (terraform's sts call, quoted in
            // public notes); IAM is the same (ansible iam_user output quoted publicly).
            (Self::RequestExpired { .. }, Protocol::AwsQuery { .. }) => {
                AwsError::new("SignatureDoesNotMatch", self.skew_message(), forbidden, true)
            }
            // ECR: "An error occurred (InvalidSignatureException) when calling the
            // GetAuthorizationToken operation: Signature expired: 20190911T174538Z is now earlier
            // than 20190912T004835Z (20190912T010335Z - 15 min.)" (a public ops note).
            (Self::RequestExpired { .. }, Protocol::AwsJson11 { .. }) => {
                AwsError::sender("InvalidSignatureException", self.skew_message())
            }
        }
    }

    /// "Signature expired: D is now earlier than N-W (N - 15 min.)", or for a date in the future
    /// "Signature not yet current: D is still later than N+W (N + 15 min.)" (the latter's wording
    /// as recorded in dacut/scratchstack-aws-signature `src/error.rs`). A presigned URL's own
    /// window is written in the same shape, in minutes when whole, else seconds (composed).
    fn skew_message(&self) -> String {
        let Self::RequestExpired { signed_at, now, window, future } = self else {
            return String::new();
        };
        let span = if window.as_secs() % 60 == 0 {
            format!("{} min.", window.as_secs() / 60)
        } else {
            format!("{} sec.", window.as_secs())
        };
        let (bound, word, sign) = if *future {
            (now.saturating_add(*window), "Signature not yet current", "is still later than")
        } else {
            (now.saturating_sub(*window), "Signature expired", "is now earlier than")
        };
        let bound = bound.unwrap_or(*now);
        let op = if *future { '+' } else { '-' };
        format!(
            "{word}: {} {sign} {} ({} {op} {span})",
            amz_date(*signed_at),
            amz_date(bound),
            amz_date(*now)
        )
    }
}

/// `20261207T100000Z`, the form of `X-Amz-Date` and of AWS's skew messages.
pub(crate) fn amz_date(t: Timestamp) -> impl fmt::Display {
    t.strftime("%Y%m%dT%H%M%SZ")
}

// === impl ProtocolError ===

impl ProtocolError {
    /// This failure as the service speaking `protocol` reports it.
    pub fn to_aws_error(&self, protocol: &Protocol) -> AwsError {
        match self {
            // "MissingAction: The request is missing an action or a required parameter."
            // (AWS Common Errors).
            Self::MissingAction => {
                AwsError::sender("MissingAction", "The request is missing an action or a required parameter.")
            }
            // "The action Foo is not valid for this web service." with status 400, as the
            // simulators that copy AWS write it (e.g. SimpleDB's and several Go emulators found
            // by exact-text search).
            Self::InvalidAction { action } => AwsError::sender(
                "InvalidAction",
                format!("The action {action} is not valid for this web service."),
            ),
            // EC2: "The request must contain the parameter X" (moto `moto/ec2/exceptions.py`
            // `MissingParameterError`). awsQuery and awsJson services validate against the model
            // instead and report a null member.
            Self::MissingParameter { name } => match protocol {
                Protocol::Ec2 => AwsError::sender(
                    "MissingParameter",
                    format!("The request must contain the parameter {name}"),
                ),
                _ => Self::Validation(vec![ValidationFailure {
                    value: None,
                    member: lower_camel(name),
                    constraint: "Member must not be null".to_owned(),
                }])
                .to_aws_error(protocol),
            },
            // "MalformedQueryString [...] HTTP Status Code: 404" (AWS Common Errors: the status
            // really is 404).
            Self::MalformedQueryString { detail } => {
                AwsError::sender("MalformedQueryString", detail.clone()).with_status(StatusCode::NOT_FOUND)
            }
            Self::Serialization { detail } => AwsError::sender("SerializationException", detail.clone()),
            Self::UnknownOperation { .. } => AwsError::sender("UnknownOperationException", ""),
            Self::Validation(failures) => {
                let code = match protocol {
                    Protocol::AwsQuery { .. } => "ValidationError",
                    Protocol::AwsJson11 { .. } => "ValidationException",
                    Protocol::Ec2 => "InvalidParameterValue",
                };
                AwsError::sender(code, validation_message(failures))
            }
        }
    }
}

/// "1 validation error detected: Value 'x' at 'roleName' failed to satisfy constraint: Member
/// must have length less than or equal to 64"; several failures are joined with "; " after "N
/// validation errors detected: " (the shape of AWS's Coral validation messages).
fn validation_message(failures: &[ValidationFailure]) -> String {
    let n = failures.len();
    let plural = if n == 1 { "error" } else { "errors" };
    let parts: Vec<String> = failures
        .iter()
        .map(|f| {
            let value = match &f.value {
                Some(v) => format!("'{v}'"),
                None => "null".to_owned(),
            };
            format!("Value {value} at '{}' failed to satisfy constraint: {}", f.member, f.constraint)
        })
        .collect();
    format!("{n} validation {plural} detected: {}", parts.join("; "))
}

/// `RoleName` → `roleName`: how AWS names a member in validation messages.
pub fn lower_camel(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const STS: Protocol = Protocol::AwsQuery { xmlns: crate::protocol::STS_XMLNS };
    const ECR: Protocol = Protocol::AwsJson11 { target_prefix: crate::protocol::ECR_TARGET_PREFIX };

    #[test]
    fn skew_texts_per_protocol() {
        let e = AuthError::RequestExpired {
            signed_at: ts("2026-12-07T10:00:00Z"),
            now: ts("2026-12-07T10:30:00Z"),
            window: MAX_SKEW,
            future: false,
        };
        let sts = e.to_aws_error(&STS);
        assert_eq!(sts.code, "SignatureDoesNotMatch");
        assert_eq!(
            sts.message,
            "Signature expired: 20261207T100000Z is now earlier than 20261207T101500Z (20261207T103000Z - 15 min.)"
        );
        assert_eq!(sts.status, StatusCode::FORBIDDEN);
        let ec2 = e.to_aws_error(&Protocol::Ec2);
        assert_eq!((ec2.code.as_ref(), ec2.message.as_str()), ("RequestExpired", "Request has expired."));
        let ecr = e.to_aws_error(&ECR);
        assert_eq!(ecr.code, "InvalidSignatureException");
        assert_eq!(ecr.message, sts.message);

        let future = AuthError::RequestExpired {
            signed_at: ts("2026-12-07T11:00:00Z"),
            now: ts("2026-12-07T10:30:00Z"),
            window: MAX_SKEW,
            future: true,
        };
        assert_eq!(
            future.to_aws_error(&STS).message,
            "Signature not yet current: 20261207T110000Z is still later than 20261207T104500Z (20261207T103000Z + 15 min.)"
        );
    }

    #[test]
    fn unknown_key_per_protocol() {
        let e = AuthError::InvalidClientTokenId;
        let sts = e.to_aws_error(&STS);
        assert_eq!(sts.code, "InvalidClientTokenId");
        assert_eq!(sts.message, "The security token included in the request is invalid.");
        assert_eq!(sts.status, StatusCode::FORBIDDEN);
        let ec2 = e.to_aws_error(&Protocol::Ec2);
        assert_eq!(ec2.code, "AuthFailure");
        assert_eq!(ec2.message, "AWS was not able to validate the provided access credentials");
        assert_eq!(ec2.status, StatusCode::UNAUTHORIZED);
        assert_eq!(e.to_aws_error(&ECR).code, "UnrecognizedClientException");
    }

    #[test]
    fn other_auth_texts() {
        let m = AuthError::MissingAuthenticationToken.to_aws_error(&STS);
        assert_eq!(m.message, "Request is missing Authentication Token");
        assert_eq!(m.status, StatusCode::FORBIDDEN);
        assert_eq!(
            AuthError::MissingAuthenticationToken.to_aws_error(&ECR).code,
            "MissingAuthenticationTokenException"
        );
        let x = AuthError::ExpiredToken.to_aws_error(&STS);
        assert_eq!(
            (x.code.as_ref(), x.message.as_str()),
            ("ExpiredToken", "The security token included in the request is expired")
        );
        assert_eq!(AuthError::ExpiredToken.to_aws_error(&ECR).code, "ExpiredTokenException");
        assert_eq!(AuthError::ExpiredToken.to_aws_error(&Protocol::Ec2).code, "RequestExpired");
        let s = AuthError::SignatureDoesNotMatch { detail: None }.to_aws_error(&STS);
        assert!(s.message.starts_with("The request signature we calculated does not match"));
        assert_eq!(
            AuthError::SignatureDoesNotMatch { detail: None }.to_aws_error(&Protocol::Ec2).code,
            "AuthFailure"
        );
        let i = AuthError::IncompleteSignature { detail: "x".into() };
        assert_eq!(i.to_aws_error(&STS).code, "IncompleteSignature");
        assert_eq!(i.to_aws_error(&ECR).code, "IncompleteSignatureException");
    }

    #[test]
    fn protocol_texts() {
        let e = ProtocolError::InvalidAction { action: "Foo".into() }.to_aws_error(&STS);
        assert_eq!(e.message, "The action Foo is not valid for this web service.");
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let m = ProtocolError::MissingParameter { name: "NetworkInterfaceId".into() };
        let ec2 = m.to_aws_error(&Protocol::Ec2);
        assert_eq!(ec2.code, "MissingParameter");
        assert_eq!(ec2.message, "The request must contain the parameter NetworkInterfaceId");
        let iam = ProtocolError::MissingParameter { name: "RoleName".into() }
            .to_aws_error(&Protocol::AwsQuery { xmlns: crate::protocol::IAM_XMLNS });
        assert_eq!(iam.code, "ValidationError");
        assert_eq!(
            iam.message,
            "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"
        );
        let q = ProtocolError::MalformedQueryString { detail: "x".into() }.to_aws_error(&STS);
        assert_eq!(q.status, StatusCode::NOT_FOUND);
        assert_eq!(
            ProtocolError::Serialization { detail: "x".into() }.to_aws_error(&ECR).code,
            "SerializationException"
        );
        assert_eq!(
            ProtocolError::UnknownOperation { target: None }.to_aws_error(&ECR).code,
            "UnknownOperationException"
        );
        assert_eq!(ProtocolError::MissingAction.to_aws_error(&STS).code, "MissingAction");
    }

    #[test]
    fn validation_constructor() {
        let e = AwsError::validation(
            &ECR,
            Some("x"),
            "repositoryName",
            "Member must have length greater than or equal to 2",
        );
        assert_eq!(e.code, "ValidationException");
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'x' at 'repositoryName' failed to satisfy constraint: Member must have length greater than or equal to 2"
        );
        let two = ProtocolError::Validation(vec![
            ValidationFailure { value: None, member: "a".into(), constraint: "c1".into() },
            ValidationFailure { value: Some("v".into()), member: "b".into(), constraint: "c2".into() },
        ]);
        assert_eq!(
            two.to_string(),
            "2 validation errors detected: Value null at 'a' failed to satisfy constraint: c1; Value 'v' at 'b' failed to satisfy constraint: c2"
        );
        assert_eq!(AwsError::validation(&Protocol::Ec2, None, "x", "y").code, "InvalidParameterValue");
    }
}
