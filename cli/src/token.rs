//! `netlab create token`: a ServiceAccount token from the apiserver's issuer, with kubectl's
//! flags, checks and messages (kubectl's `create_token.go`), so a token for IRSA
//! (`--audience sts.amazonaws.com`) is one command away, as in a real cluster.

use serde_json::{Value, json};

use crate::{
    client::{Api, Cluster as _},
    config::CreateTokenArgs,
    report::Problem,
};

/// The kinds a token may be bound to, with their API versions (kubectl's `boundObjectKinds`).
const BOUND_KINDS: [(&str, &str); 2] = [("Pod", "v1"), ("Secret", "v1")];

/// Checks the flags and builds the TokenRequest kubectl would send.
pub fn request(args: &CreateTokenArgs) -> Result<Value, Problem> {
    let duration = netlab_config::parse_duration(&args.duration).map_err(|e| {
        Problem::client(format!("invalid argument {:?} for \"--duration\" flag: {e}", args.duration))
    })?;
    if duration.subsec_nanos() != 0 {
        return Err(Problem::client("--duration cannot be expressed in units less than seconds"));
    }
    if args.audiences.iter().any(String::is_empty) {
        return Err(Problem::client("--audience must not be an empty string"));
    }
    let mut spec = json!({ "audiences": args.audiences });
    if duration.as_secs() > 0 {
        spec["expirationSeconds"] = duration.as_secs().into();
    }
    match args.bound_object_kind.as_deref() {
        None | Some("") => {
            if args.bound_object_name.as_deref().is_some_and(|n| !n.is_empty()) {
                return Err(Problem::client(
                    "--bound-object-name can only be set if --bound-object-kind is provided",
                ));
            }
            if args.bound_object_uid.as_deref().is_some_and(|u| !u.is_empty()) {
                return Err(Problem::client(
                    "--bound-object-uid can only be set if --bound-object-kind is provided",
                ));
            }
        }
        Some(kind) => {
            let Some((_, version)) = BOUND_KINDS.iter().find(|(k, _)| *k == kind) else {
                let kinds: Vec<&str> = BOUND_KINDS.iter().map(|(k, _)| *k).collect();
                return Err(Problem::client(format!(
                    "supported --bound-object-kind values are {}",
                    kinds.join(", ")
                )));
            };
            let name = args.bound_object_name.as_deref().unwrap_or_default();
            if name.is_empty() {
                return Err(Problem::client(
                    "--bound-object-name is required if --bound-object-kind is provided",
                ));
            }
            spec["boundObjectRef"] = json!({
                "kind": kind,
                "apiVersion": version,
                "name": name,
                "uid": args.bound_object_uid.as_deref().unwrap_or_default(),
            });
        }
    }
    Ok(json!({ "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec }))
}

/// Requests the token and prints it (one line), or kubectl's `failed to create token: ...`.
pub async fn create_token(
    api: &mut Api,
    args: &CreateTokenArgs,
    namespace: &str,
    out: &mut impl std::io::Write,
    err: &mut impl std::io::Write,
) -> Result<(), Problem> {
    let request = request(args)?;
    let answered = api.create_token(namespace, &args.service_account, &request).await;
    for warning in api.take_warnings() {
        let _ = writeln!(err, "Warning: {warning}");
    }
    let answered = answered.map_err(failed)?;
    let token = answered.pointer("/status/token").and_then(Value::as_str).unwrap_or_default();
    if token.is_empty() {
        return Err(Problem::client("failed to create token: no token in server response"));
    }
    let _ = writeln!(out, "{token}");
    Ok(())
}

/// kubectl wraps the server's error: `error: failed to create token: <Status.message>`, the
/// message as the apiserver writes it (`TokenRequest.authentication.k8s.io "" is invalid: ...`).
fn failed(problem: Problem) -> Problem {
    match problem {
        Problem::Server(e) => {
            let message = if e.reason == "Invalid" {
                let causes: Vec<&str> = e.causes.iter().map(|c| c.message.as_str()).collect();
                let head = format!("{} {:?} is invalid", e.kind, e.name);
                match causes.as_slice() {
                    [] => head,
                    [one] => format!("{head}: {one}"),
                    many => format!("{head}: [{}]", many.join(", ")),
                }
            } else {
                e.message.clone()
            };
            Problem::client(format!("failed to create token: {message}"))
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(duration: &str) -> CreateTokenArgs {
        CreateTokenArgs {
            service_account: "default".into(),
            audiences: vec!["sts.amazonaws.com".into()],
            duration: duration.into(),
            bound_object_kind: None,
            bound_object_name: None,
            bound_object_uid: None,
        }
    }

    fn refused(a: &CreateTokenArgs) -> String {
        match request(a).unwrap_err() {
            Problem::Client(m) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn builds_kubectls_request() {
        let r = request(&args("1h")).unwrap();
        assert_eq!(r["spec"], json!({ "audiences": ["sts.amazonaws.com"], "expirationSeconds": 3600 }));
        // 0 leaves the lifetime to the server.
        assert!(request(&args("0s")).unwrap()["spec"].get("expirationSeconds").is_none());
        let mut bound = args("0s");
        bound.bound_object_kind = Some("Pod".into());
        bound.bound_object_name = Some("web".into());
        assert_eq!(
            request(&bound).unwrap()["spec"]["boundObjectRef"],
            json!({ "kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "" })
        );
    }

    #[test]
    fn refuses_flags_as_kubectl_does() {
        assert_eq!(refused(&args("1500ms")), "--duration cannot be expressed in units less than seconds");
        assert_eq!(
            refused(&args("soon")),
            "invalid argument \"soon\" for \"--duration\" flag: time: invalid duration \"soon\""
        );
        let mut empty = args("0s");
        empty.audiences.push(String::new());
        assert_eq!(refused(&empty), "--audience must not be an empty string");
        let mut kind = args("0s");
        kind.bound_object_kind = Some("Deployment".into());
        assert_eq!(refused(&kind), "supported --bound-object-kind values are Pod, Secret");
        kind.bound_object_kind = Some("Pod".into());
        assert_eq!(refused(&kind), "--bound-object-name is required if --bound-object-kind is provided");
        let mut name = args("0s");
        name.bound_object_name = Some("web".into());
        assert_eq!(refused(&name), "--bound-object-name can only be set if --bound-object-kind is provided");
    }

    #[test]
    fn server_errors_read_as_kubectls() {
        let invalid = crate::report::ApiError {
            reason: "Invalid".into(),
            message: "ignored".into(),
            code: 422,
            kind: "TokenRequest.authentication.k8s.io".into(),
            name: String::new(),
            causes: vec![crate::report::Cause {
                reason: "FieldValueInvalid".into(),
                message: "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
                    .into(),
                field: "spec.expirationSeconds".into(),
            }],
        };
        let Problem::Client(m) = failed(Problem::from(invalid)) else { panic!() };
        assert_eq!(
            m,
            "failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
        );
        let missing = crate::report::ApiError::new("NotFound", "serviceaccounts \"nope\" not found");
        let Problem::Client(m) = failed(Problem::from(missing)) else { panic!() };
        assert_eq!(m, "failed to create token: serviceaccounts \"nope\" not found");
    }
}
