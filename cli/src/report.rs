//! How failures are worded and printed, as kubectl's `cmdutil.CheckErr` does.
//!
//! Users grep and paste kubectl's error lines, so the wording is part of the interface:
//! `Error from server (NotFound): services "x" not found` for apiserver statuses, the apiserver's
//! own `The Service "x" is invalid: ...` for validation failures, and `error: ...` for client-side
//! problems, which lose that prefix when several are printed together (kubectl's aggregate errors).

use std::fmt;

/// One field-level cause of an `Invalid` status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// `FieldValueInvalid`, `FieldValueRequired`, ...
    pub reason: String,
    /// What is wrong with the field.
    pub message: String,
    /// The field path, e.g. `spec.ports[0].port`.
    pub field: String,
}

/// An error status from the apiserver: Kubernetes' `metav1.Status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Kubernetes' StatusReason: `NotFound`, `AlreadyExists`, `Conflict`, `Invalid`, ...
    pub reason: String,
    /// The full message, worded as the real apiserver words it.
    pub message: String,
    /// The HTTP code the real apiserver would answer with.
    pub code: i32,
    /// The kind of the object the error is about, if any.
    pub kind: String,
    /// The name of the object the error is about, if any.
    pub name: String,
    /// Field-level causes for `Invalid`.
    pub causes: Vec<Cause>,
}

// === impl ApiError ===

impl ApiError {
    /// An error with just a reason and a message, as tests and fallbacks build them.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
            code: 0,
            kind: String::new(),
            name: String::new(),
            causes: Vec::new(),
        }
    }

    /// Prefixes the message with the operation and the manifest it came from, as kubectl's
    /// `AddSourceToErr` does: `error when creating "svc.yaml": ...`. `Invalid` keeps its message,
    /// because kubectl prints it from the status details, which carry no source.
    pub fn with_source(mut self, verb: &str, source: &str) -> Self {
        if self.reason != "Invalid" {
            self.message = format!("error when {verb} \"{source}\": {}", self.message);
        }
        self
    }
}

/// One failure, in the three shapes kubectl prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An apiserver status: `Error from server (Reason): message`, or an `Invalid` message as is.
    Server(Box<ApiError>),
    /// A client-side error: `error: message` when it is the only one.
    Client(String),
    /// A line printed exactly as given, like the connection-refused message.
    Raw(String),
}

// === impl Problem ===

impl From<ApiError> for Problem {
    fn from(e: ApiError) -> Self {
        Problem::Server(Box::new(e))
    }
}

impl Problem {
    /// A client-side error.
    pub fn client(message: impl Into<String>) -> Self {
        Problem::Client(message.into())
    }

    /// The apiserver reason, if this came from the apiserver.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Problem::Server(e) => Some(&e.reason),
            _ => None,
        }
    }

    /// Whether this is the apiserver's `NotFound`.
    pub fn is_not_found(&self) -> bool {
        self.reason() == Some("NotFound")
    }

    /// The text printed when this problem is among several (no `error: ` prefix).
    fn among(&self) -> String {
        match self {
            Problem::Server(e) if e.reason == "Invalid" => e.message.clone(),
            Problem::Server(e) if e.reason.is_empty() => {
                format!("Error from server: {}", e.message)
            }
            Problem::Server(e) => format!("Error from server ({}): {}", e.reason, e.message),
            Problem::Client(m) | Problem::Raw(m) => m.clone(),
        }
    }
}

impl fmt::Display for Problem {
    /// The text printed when this is the only problem.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Client(m) if !m.starts_with("error: ") => write!(f, "error: {m}"),
            other => f.write_str(&other.among()),
        }
    }
}

/// The text kubectl prints for a command's problems: the single problem with its prefix, or one
/// line per problem without it.
pub fn render(problems: &[Problem]) -> String {
    match problems {
        [] => String::new(),
        [one] => one.to_string(),
        many => many.iter().map(Problem::among).collect::<Vec<_>>().join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_worded_like_kubectl() {
        let nf = Problem::from(ApiError::new("NotFound", "services \"x\" not found"));
        assert_eq!(render(&[nf]), "Error from server (NotFound): services \"x\" not found");

        let invalid = Problem::from(ApiError::new(
            "Invalid",
            "The Service \"Orders\" is invalid: metadata.name: Invalid value: \"Orders\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ));
        assert!(render(&[invalid]).starts_with("The Service \"Orders\" is invalid: metadata.name"));

        let exists = ApiError::new("AlreadyExists", "services \"orders\" already exists")
            .with_source("creating", "svc.yaml");
        assert_eq!(
            render(&[Problem::from(exists)]),
            "Error from server (AlreadyExists): error when creating \"svc.yaml\": services \"orders\" already exists"
        );

        let internal = ApiError::new(
            "InternalError",
            "Internal error occurred: failed to allocate a serviceIP: range is full",
        );
        assert_eq!(
            render(&[Problem::from(internal)]),
            "Error from server (InternalError): Internal error occurred: failed to allocate a serviceIP: range is full"
        );
    }

    #[test]
    fn client_errors_lose_their_prefix_when_aggregated() {
        let one = Problem::client("the path \"x.yaml\" does not exist");
        assert_eq!(render(std::slice::from_ref(&one)), "error: the path \"x.yaml\" does not exist");
        let two = Problem::client("the path \"y.yaml\" does not exist");
        assert_eq!(
            render(&[one, two]),
            "the path \"x.yaml\" does not exist\nthe path \"y.yaml\" does not exist"
        );
        let raw = Problem::Raw("The connection to the server 127.0.0.1:6443 was refused - did you specify the right host or port?".into());
        assert!(render(&[raw]).starts_with("The connection"));
    }
}
