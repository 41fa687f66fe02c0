//! The errors IAM and STS answer with, as data: an AWS error code, AWS's message text and the
//! HTTP status, so the HTTP layer can render them in whichever protocol the request used.
//!
//! Codes and statuses are botocore's service models (`iam/2010-05-08`, `sts/2011-06-15`):
//! `NoSuchEntity` 404, `EntityAlreadyExists`/`LimitExceeded`/`DeleteConflict` 409, the rest 400;
//! `AccessDenied`, `InvalidClientTokenId` and `ExpiredToken` are the query protocol's 403s.

/// An IAM or STS error as AWS answers it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// `NoSuchEntity` (404): a named user, role, policy or profile does not exist.
    #[error("NoSuchEntity: {0}")]
    NoSuchEntity(String),
    /// `EntityAlreadyExists` (409): the name is taken (IAM names are unique ignoring case).
    #[error("EntityAlreadyExists: {0}")]
    EntityAlreadyExists(String),
    /// `LimitExceeded` (409): a quota such as access keys per user or policies per role.
    #[error("LimitExceeded: {0}")]
    LimitExceeded(String),
    /// `DeleteConflict` (409): the entity still has attachments.
    #[error("DeleteConflict: {0}")]
    DeleteConflict(String),
    /// `ValidationError` (400): a parameter failed its model constraint. This is the query
    /// protocol's code for what JSON services call `ValidationException`.
    #[error("ValidationError: {0}")]
    Validation(String),
    /// `InvalidInput` (400).
    #[error("InvalidInput: {0}")]
    InvalidInput(String),
    /// `MalformedPolicyDocument` (400): a policy document IAM would not store.
    #[error("MalformedPolicyDocument: {0}")]
    MalformedPolicyDocument(String),
    /// `AccessDenied` (403): the policies do not allow the call.
    #[error("AccessDenied: {0}")]
    AccessDenied(String),
    /// `InvalidIdentityToken` (400): a web identity token STS will not accept.
    #[error("InvalidIdentityToken: {0}")]
    InvalidIdentityToken(String),
    /// `ExpiredTokenException` (400): an expired web identity token.
    #[error("ExpiredTokenException: {0}")]
    ExpiredTokenException(String),
    /// `ExpiredToken` (403): a request signed with expired temporary credentials.
    #[error("ExpiredToken: {0}")]
    ExpiredToken(String),
    /// `InvalidClientTokenId` (403): a request signed with an unknown access key.
    #[error("InvalidClientTokenId: {0}")]
    InvalidClientTokenId(String),
}

/// `Result` with IAM's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// AWS's message for a request signed with an unknown or deleted access key.
pub const INVALID_CLIENT_TOKEN_MESSAGE: &str = "The security token included in the request is invalid.";
/// AWS's message for a request signed with expired temporary credentials.
pub const EXPIRED_TOKEN_MESSAGE: &str = "The security token included in the request is expired";

// === impl Error ===

impl Error {
    /// The AWS error code (`<Code>` in XML, `__type` in JSON protocols).
    pub fn code(&self) -> &'static str {
        match self {
            Self::NoSuchEntity(_) => "NoSuchEntity",
            Self::EntityAlreadyExists(_) => "EntityAlreadyExists",
            Self::LimitExceeded(_) => "LimitExceeded",
            Self::DeleteConflict(_) => "DeleteConflict",
            Self::Validation(_) => "ValidationError",
            Self::InvalidInput(_) => "InvalidInput",
            Self::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            Self::AccessDenied(_) => "AccessDenied",
            Self::InvalidIdentityToken(_) => "InvalidIdentityToken",
            Self::ExpiredTokenException(_) => "ExpiredTokenException",
            Self::ExpiredToken(_) => "ExpiredToken",
            Self::InvalidClientTokenId(_) => "InvalidClientTokenId",
        }
    }

    /// AWS's message text.
    pub fn message(&self) -> &str {
        match self {
            Self::NoSuchEntity(m)
            | Self::EntityAlreadyExists(m)
            | Self::LimitExceeded(m)
            | Self::DeleteConflict(m)
            | Self::Validation(m)
            | Self::InvalidInput(m)
            | Self::MalformedPolicyDocument(m)
            | Self::AccessDenied(m)
            | Self::InvalidIdentityToken(m)
            | Self::ExpiredTokenException(m)
            | Self::ExpiredToken(m)
            | Self::InvalidClientTokenId(m) => m,
        }
    }

    /// The HTTP status AWS answers with.
    pub fn status(&self) -> u16 {
        match self {
            Self::NoSuchEntity(_) => 404,
            Self::EntityAlreadyExists(_) | Self::LimitExceeded(_) | Self::DeleteConflict(_) => 409,
            Self::AccessDenied(_) | Self::ExpiredToken(_) | Self::InvalidClientTokenId(_) => 403,
            Self::Validation(_)
            | Self::InvalidInput(_)
            | Self::MalformedPolicyDocument(_)
            | Self::InvalidIdentityToken(_)
            | Self::ExpiredTokenException(_) => 400,
        }
    }

    /// `<Type>` in the query protocol's error XML: `Sender` for client errors.
    pub fn fault(&self) -> &'static str {
        "Sender"
    }

    /// A `ValidationError` for one failed model constraint, worded as AWS words it:
    /// `1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy
    /// constraint: Member must ...`.
    pub(crate) fn constraint(value: impl std::fmt::Display, field: &str, rule: &str) -> Self {
        Self::constraints(vec![Violation::new(value, field, rule)])
    }

    /// A `ValidationError` for several failed constraints: AWS counts them and joins them with
    /// `; ` (`2 validation errors detected: Value ...; Value ...`).
    pub(crate) fn constraints(violations: Vec<Violation>) -> Self {
        let n = violations.len();
        let plural = if n == 1 { "error" } else { "errors" };
        let joined: Vec<String> = violations.into_iter().map(|v| v.0).collect();
        Self::Validation(format!("{n} validation {plural} detected: {}", joined.join("; ")))
    }
}

/// One failed model constraint, rendered as AWS renders it inside a `ValidationError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Violation(String);

// === impl Violation ===

impl Violation {
    pub(crate) fn new(value: impl std::fmt::Display, field: &str, rule: &str) -> Self {
        Self(format!("Value '{value}' at '{field}' failed to satisfy constraint: {rule}"))
    }
}
