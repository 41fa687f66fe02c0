//! IAM's handler against a bootstrapped account: every operation's answer read back by
//! botocore's own awsQuery parser (one python process for all of them), the error paths, and
//! that attaching a policy changes what the role's sessions may do. The harness ([`Lab`]) is
//! shared with STS's tests.

use std::process::{Command, Stdio};

use bytes::Bytes;
use jiff::Timestamp;
use netlab_aws::{AwsError, Input, Params, Protocol, Service};
use netlab_ec2::Ec2Config;
use netlab_iam::{AssumeRoleRequest, Identity, KeyLookup};
use serde_json::{Value, json};

use super::*;
use crate::aws::Caller;

pub(in crate::aws) const NOW: &str = "2026-12-07T17:00:00Z";
pub(in crate::aws) const ACCOUNT: &str = "123456789012";

/// A trust policy for EC2 (the node role's).
pub(in crate::aws) const EC2_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;

/// A bootstrapped account and a clock.
pub(in crate::aws) struct Lab {
    pub(in crate::aws) account: Account,
    pub(in crate::aws) now: Timestamp,
}

/// One answer, for botocore: service, operation, status, body.
#[derive(Debug)]
pub(in crate::aws) struct Answer {
    pub(in crate::aws) service: &'static str,
    pub(in crate::aws) op: String,
    pub(in crate::aws) status: u16,
    pub(in crate::aws) body: String,
}

// === impl Lab ===

impl Lab {
    pub(in crate::aws) fn new() -> Self {
        let now: Timestamp = NOW.parse().unwrap();
        let account = Account::bootstrap(&Ec2Config::default(), now).unwrap();
        Self { account, now }
    }

    pub(in crate::aws) fn caller(identity: Identity) -> Caller {
        Caller { identity, access_key_id: "AKIATEST".into(), source_ip: "10.0.0.9".parse().unwrap() }
    }

    /// The lab's admin (AdministratorAccess).
    pub(in crate::aws) fn admin(&self) -> Caller {
        let key = self.account.iam.admin_access_key().unwrap().access_key_id.clone();
        Self::caller(self.identity_of(&key))
    }

    /// The identity an access key signs as.
    pub(in crate::aws) fn identity_of(&self, access_key_id: &str) -> Identity {
        match self.account.iam.lookup_access_key(access_key_id, self.now) {
            KeyLookup::Valid(c) => c.identity,
            other => panic!("{access_key_id}: {other:?}"),
        }
    }

    /// A new user with no policies.
    pub(in crate::aws) fn user(&mut self, name: &str) -> Caller {
        let u = self.account.iam.create_user(name, None, self.now).unwrap();
        Self::caller(Identity::User { name: u.name.clone(), id: u.id.clone(), arn: u.arn.clone() })
    }

    /// A session of a new role that EC2 may assume (as a node's instance profile), with no
    /// policies.
    pub(in crate::aws) fn service_session(&mut self, role: &str) -> Caller {
        let create = netlab_iam::CreateRole {
            name: role,
            assume_role_policy_document: EC2_TRUST,
            ..netlab_iam::CreateRole::default()
        };
        let arn = self.account.iam.create_role(create, self.now).unwrap().arn.clone();
        let request = AssumeRoleRequest {
            role_arn: &arn,
            role_session_name: "i-0123456789abcdef0",
            duration_seconds: None,
        };
        let assumed =
            self.account.iam.assume_role_as_service("ec2.amazonaws.com", request, self.now).unwrap();
        Self::caller(self.identity_of(&assumed.credentials.access_key_id))
    }

    pub(in crate::aws) fn call(
        &mut self,
        service: Service,
        caller: &Caller,
        action: &str,
        pairs: &[(&str, &str)],
    ) -> Result<http::Response<Bytes>, AwsError> {
        let input = Input::Query(Params::from_pairs(pairs.iter().copied()));
        let call = Call {
            action,
            input: &input,
            caller,
            request_id: "req-1",
            protocol: service.protocol(),
            now: self.now,
        };
        match service {
            Service::Iam => handle(&mut self.account, &call),
            Service::Sts => crate::aws::sts::handle(&mut self.account, &call),
            _ => unreachable!(),
        }
    }

    /// An IAM call that must succeed, as its answer.
    fn iam(&mut self, caller: &Caller, action: &str, pairs: &[(&str, &str)]) -> Answer {
        let resp = self.call(Service::Iam, caller, action, pairs).unwrap_or_else(|e| panic!("{action}: {e}"));
        answer("iam", action, resp)
    }

    /// An IAM call that must fail.
    fn iam_err(&mut self, caller: &Caller, action: &str, pairs: &[(&str, &str)]) -> AwsError {
        match self.call(Service::Iam, caller, action, pairs) {
            Ok(r) => panic!("{action} succeeded: {}", String::from_utf8_lossy(r.body())),
            Err(e) => e,
        }
    }
}

pub(in crate::aws) fn answer(service: &'static str, op: &str, resp: http::Response<Bytes>) -> Answer {
    Answer {
        service,
        op: op.to_owned(),
        status: resp.status().as_u16(),
        body: String::from_utf8(resp.body().to_vec()).unwrap(),
    }
}

/// An error as the endpoint puts it on the wire.
pub(in crate::aws) fn error_answer(service: Service, op: &str, e: &AwsError) -> Answer {
    let resp = netlab_aws::protocol::render_error(&service.protocol(), e, "req-err");
    let name = if service == Service::Iam { "iam" } else { "sts" };
    answer(name, op, resp)
}

/// botocore's parse of each answer, or `None` (test skipped) without python3 and botocore.
pub(in crate::aws) fn botocore_parse(answers: &[Answer]) -> Option<Vec<Value>> {
    let available =
        Command::new("python3").args(["-c", "import botocore"]).status().is_ok_and(|s| s.success());
    if !available {
        eprintln!("skipped: python3 with botocore not found");
        return None;
    }
    let cases: Vec<Value> = answers
        .iter()
        .map(|a| json!({"service": a.service, "op": a.op, "status": a.status, "body": a.body}))
        .collect();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/iam_botocore_parse.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    serde_json::to_writer(child.stdin.take().unwrap(), &cases).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore: {}", String::from_utf8_lossy(&out.stderr));
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn first<'a>(xml: &'a str, name: &str) -> &'a str {
    let open = format!("<{name}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap_or_else(|| panic!("no <{name}> in {xml}"));
    let end = xml[start..].find('<').map_or(start, |i| start + i);
    &xml[start..end]
}

const PERMISSIONS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#;
const THUMBPRINT: &str = "9e99a48a9960b14926bb7f3b02e22da2b0ab7280";
const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

#[test]
fn botocore_reads_every_operation() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let mut answers = Vec::new();
    let readonly = "arn:aws:iam::aws:policy/ReadOnlyAccess";

    answers.push(lab.iam(
        &admin,
        "CreateRole",
        &[
            ("RoleName", "app"),
            ("Path", "/team/"),
            ("AssumeRolePolicyDocument", EC2_TRUST),
            ("Description", "the app's role"),
        ],
    ));
    answers.push(lab.iam(&admin, "GetRole", &[("RoleName", "app")]));
    answers.push(lab.iam(
        &admin,
        "UpdateAssumeRolePolicy",
        &[("RoleName", "app"), ("PolicyDocument", EC2_TRUST)],
    ));
    answers.push(lab.iam(&admin, "AttachRolePolicy", &[("RoleName", "app"), ("PolicyArn", readonly)]));
    answers.push(lab.iam(&admin, "ListAttachedRolePolicies", &[("RoleName", "app")]));
    answers.push(lab.iam(
        &admin,
        "PutRolePolicy",
        &[("RoleName", "app"), ("PolicyName", "s3"), ("PolicyDocument", PERMISSIONS)],
    ));
    answers.push(lab.iam(&admin, "GetRolePolicy", &[("RoleName", "app"), ("PolicyName", "s3")]));
    answers.push(lab.iam(&admin, "ListRolePolicies", &[("RoleName", "app")]));
    answers.push(lab.iam(&admin, "ListRoles", &[]));
    let created = lab.iam(
        &admin,
        "CreatePolicy",
        &[("PolicyName", "reader"), ("PolicyDocument", PERMISSIONS), ("Description", "reads")],
    );
    let policy_arn = first(&created.body, "Arn").to_owned();
    answers.push(created);
    answers.push(lab.iam(&admin, "GetPolicy", &[("PolicyArn", &policy_arn)]));
    answers.push(lab.iam(&admin, "ListPolicies", &[("Scope", "Local")]));
    answers.push(lab.iam(&admin, "CreateUser", &[("UserName", "bob")]));
    answers.push(lab.iam(&admin, "GetUser", &[]));
    answers.push(lab.iam(&admin, "CreateAccessKey", &[("UserName", "bob")]));
    answers.push(lab.iam(&admin, "ListAccessKeys", &[("UserName", "bob")]));
    answers.push(lab.iam(&admin, "AttachUserPolicy", &[("UserName", "bob"), ("PolicyArn", &policy_arn)]));
    answers.push(lab.iam(&admin, "DetachUserPolicy", &[("UserName", "bob"), ("PolicyArn", &policy_arn)]));
    answers.push(lab.iam(&admin, "CreateInstanceProfile", &[("InstanceProfileName", "app")]));
    answers.push(lab.iam(
        &admin,
        "AddRoleToInstanceProfile",
        &[("InstanceProfileName", "app"), ("RoleName", "app")],
    ));
    answers.push(lab.iam(&admin, "GetInstanceProfile", &[("InstanceProfileName", "app")]));
    let oidc = lab.iam(
        &admin,
        "CreateOpenIDConnectProvider",
        &[
            ("Url", ISSUER),
            ("ClientIDList.member.1", "sts.amazonaws.com"),
            ("ThumbprintList.member.1", THUMBPRINT),
        ],
    );
    let oidc_arn = first(&oidc.body, "OpenIDConnectProviderArn").to_owned();
    answers.push(oidc);
    answers.push(lab.iam(&admin, "GetOpenIDConnectProvider", &[("OpenIDConnectProviderArn", &oidc_arn)]));
    answers.push(lab.iam(&admin, "ListOpenIDConnectProviders", &[]));
    answers.push(lab.iam(&admin, "DeleteOpenIDConnectProvider", &[("OpenIDConnectProviderArn", &oidc_arn)]));
    let gone = lab.iam_err(&admin, "DeleteOpenIDConnectProvider", &[("OpenIDConnectProviderArn", &oidc_arn)]);
    assert_eq!(
        (gone.code.as_ref(), gone.message.as_str(), gone.status.as_u16()),
        ("NoSuchEntity", format!("OpenIDConnect Provider not found for arn {oidc_arn}").as_str(), 404)
    );
    answers.push(lab.iam(&admin, "DeleteRolePolicy", &[("RoleName", "app"), ("PolicyName", "s3")]));
    answers.push(lab.iam(&admin, "DetachRolePolicy", &[("RoleName", "app"), ("PolicyArn", readonly)]));
    answers.push(lab.iam(
        &admin,
        "CreateRole",
        &[("RoleName", "gone"), ("AssumeRolePolicyDocument", EC2_TRUST)],
    ));
    answers.push(lab.iam(&admin, "DeleteRole", &[("RoleName", "gone")]));
    let missing = lab.iam_err(&admin, "GetRole", &[("RoleName", "gone")]);
    answers.push(error_answer(Service::Iam, "GetRole", &missing));

    let Some(parsed) = botocore_parse(&answers) else { return };
    let by_op = |op: &str| -> &Value {
        let i = answers.iter().position(|a| a.op == op).unwrap();
        &parsed[i]
    };
    let date = "2026-12-07T17:00:00+00:00";
    let role_arn = format!("arn:aws:iam::{ACCOUNT}:role/team/app");

    let role = &by_op("CreateRole")["Role"];
    assert_eq!(role["Arn"], role_arn.as_str());
    assert_eq!(role["Path"], "/team/");
    assert_eq!(role["CreateDate"], date);
    assert!(role["RoleId"].as_str().unwrap().starts_with("AROA"));
    assert_eq!(role["Description"], "the app's role");
    // The CLI decodes the URL-encoded document and prints it as JSON.
    let trust: Value =
        serde_json::from_str(&decode(role["AssumeRolePolicyDocument"].as_str().unwrap())).unwrap();
    assert_eq!(trust["Statement"][0]["Principal"]["Service"], "ec2.amazonaws.com");

    let role = &by_op("GetRole")["Role"];
    assert_eq!(role["MaxSessionDuration"], 3600);
    assert_eq!(role["RoleLastUsed"], json!({}));
    assert_eq!(by_op("GetRole")["ResponseMetadata"]["RequestId"], "req-1");

    let attached = &by_op("ListAttachedRolePolicies");
    assert_eq!(
        attached["AttachedPolicies"],
        json!([{"PolicyName": "ReadOnlyAccess", "PolicyArn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}])
    );
    assert_eq!(attached["IsTruncated"], false);

    let inline = by_op("GetRolePolicy");
    assert_eq!((inline["RoleName"].as_str(), inline["PolicyName"].as_str()), (Some("app"), Some("s3")));
    assert_eq!(decode(inline["PolicyDocument"].as_str().unwrap()), PERMISSIONS);
    assert_eq!(by_op("ListRolePolicies")["PolicyNames"], json!(["s3"]));

    let roles = by_op("ListRoles")["Roles"].as_array().unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0]["RoleName"], "app");
    assert_eq!(by_op("ListRoles")["IsTruncated"], false);

    let policy = &by_op("CreatePolicy")["Policy"];
    assert_eq!(policy["Arn"], format!("arn:aws:iam::{ACCOUNT}:policy/reader").as_str());
    assert_eq!(policy["DefaultVersionId"], "v1");
    assert_eq!(policy["IsAttachable"], true);
    assert_eq!(policy["AttachmentCount"], 0);
    let policy = &by_op("GetPolicy")["Policy"];
    assert_eq!(policy["Description"], "reads");
    assert_eq!(policy["UpdateDate"], date);
    let listed = by_op("ListPolicies")["Policies"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "Scope=Local lists only the customer managed policy");
    assert_eq!(listed[0]["PolicyName"], "reader");
    assert!(listed[0].get("Description").is_none());

    let user = &by_op("CreateUser")["User"];
    assert_eq!(user["Arn"], format!("arn:aws:iam::{ACCOUNT}:user/bob").as_str());
    assert!(user["UserId"].as_str().unwrap().starts_with("AIDA"));
    assert_eq!(by_op("GetUser")["User"]["UserName"], "admin", "GetUser without UserName is the caller");

    let key = &by_op("CreateAccessKey")["AccessKey"];
    assert_eq!(key["Status"], "Active");
    assert_eq!(key["SecretAccessKey"].as_str().unwrap().len(), 40);
    let keys = by_op("ListAccessKeys")["AccessKeyMetadata"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["AccessKeyId"], key["AccessKeyId"]);
    assert!(keys[0].get("SecretAccessKey").is_none());

    let profile = &by_op("CreateInstanceProfile")["InstanceProfile"];
    assert!(profile["InstanceProfileId"].as_str().unwrap().starts_with("AIPA"));
    assert_eq!(profile["Roles"], json!([]));
    let profile = &by_op("GetInstanceProfile")["InstanceProfile"];
    assert_eq!(profile["Roles"][0]["Arn"], role_arn.as_str());

    assert_eq!(
        by_op("CreateOpenIDConnectProvider")["OpenIDConnectProviderArn"],
        format!("arn:aws:iam::{ACCOUNT}:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE")
            .as_str()
    );
    let provider = by_op("GetOpenIDConnectProvider");
    assert_eq!(provider["Url"], "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE");
    assert_eq!(provider["ClientIDList"], json!(["sts.amazonaws.com"]));
    assert_eq!(provider["ThumbprintList"], json!([THUMBPRINT]));
    assert_eq!(provider["CreateDate"], date);
    assert_eq!(by_op("ListOpenIDConnectProviders")["OpenIDConnectProviderList"], json!([{"Arn": oidc_arn}]));

    for op in [
        "DeleteRole",
        "AttachRolePolicy",
        "DetachUserPolicy",
        "AddRoleToInstanceProfile",
        "DeleteOpenIDConnectProvider",
    ] {
        assert_eq!(by_op(op)["ResponseMetadata"]["RequestId"], "req-1", "{op}");
    }

    let err = parsed.last().unwrap();
    assert_eq!(err["Error"]["Code"], "NoSuchEntity");
    assert_eq!(err["Error"]["Message"], "The role with name gone cannot be found.");
    assert_eq!(err["ResponseMetadata"]["HTTPStatusCode"], 404);
}

/// Percent-decoding, as the aws CLI undoes IAM's encoding of policy documents.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

#[test]
fn validation_errors_name_every_failure() {
    let mut lab = Lab::new();
    let admin = lab.admin();

    let e = lab.iam_err(&admin, "CreateRole", &[("AssumeRolePolicyDocument", EC2_TRUST)]);
    assert_eq!(e.code, "ValidationError");
    assert_eq!(e.status, http::StatusCode::BAD_REQUEST);
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'roleName' failed to satisfy constraint: Member must not be null"
    );

    let long = "x".repeat(65);
    let e = lab.iam_err(&admin, "GetRole", &[("RoleName", &long)]);
    assert_eq!(
        e.message,
        format!(
            "1 validation error detected: Value '{long}' at 'roleName' failed to satisfy constraint: Member must have length less than or equal to 64"
        )
    );

    let e = lab.iam_err(&admin, "AttachRolePolicy", &[("RoleName", "my role"), ("PolicyArn", "arn:short")]);
    assert_eq!(
        e.message,
        r"2 validation errors detected: Value 'my role' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+; Value 'arn:short' at 'policyArn' failed to satisfy constraint: Member must have length greater than or equal to 20"
    );

    let e = lab.iam_err(&admin, "ListPolicies", &[("Scope", "Mine")]);
    assert!(e.message.ends_with("Member must satisfy enum value set: [All, AWS, Local]"), "{}", e.message);

    // Validation comes before authorisation: a caller without permissions sees it too.
    let bob = lab.user("bob");
    assert_eq!(lab.iam_err(&bob, "GetRole", &[]).code, "ValidationError");

    let e = lab.iam_err(&admin, "FrobnicateRole", &[]);
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        ("InvalidAction", "The action FrobnicateRole is not valid for this web service.")
    );
}

#[test]
fn operation_errors_are_iams() {
    let mut lab = Lab::new();
    let admin = lab.admin();

    let e = lab.iam_err(&admin, "GetRole", &[("RoleName", "nope")]);
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("NoSuchEntity", 404));
    assert_eq!(e.message, "The role with name nope cannot be found.");

    lab.iam(&admin, "CreateRole", &[("RoleName", "app"), ("AssumeRolePolicyDocument", EC2_TRUST)]);
    let e =
        lab.iam_err(&admin, "CreateRole", &[("RoleName", "APP"), ("AssumeRolePolicyDocument", EC2_TRUST)]);
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("EntityAlreadyExists", 409));
    assert_eq!(e.message, "Role with name APP already exists.");

    let e =
        lab.iam_err(&admin, "CreateRole", &[("RoleName", "bad"), ("AssumeRolePolicyDocument", "{not json")]);
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        ("MalformedPolicyDocument", "This policy contains invalid Json")
    );
    let e = lab.iam_err(
        &admin,
        "PutRolePolicy",
        &[("RoleName", "app"), ("PolicyName", "p"), ("PolicyDocument", "{not json")],
    );
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        ("MalformedPolicyDocument", "Syntax errors in policy.")
    );

    let e = lab.iam_err(
        &admin,
        "AttachRolePolicy",
        &[("RoleName", "app"), ("PolicyArn", "arn:aws:iam::aws:policy/NoSuchPolicy")],
    );
    assert_eq!(e.code, "NoSuchEntity");
    assert_eq!(e.message, "Policy arn:aws:iam::aws:policy/NoSuchPolicy does not exist or is not attachable.");

    let e = lab.iam_err(&admin, "GetRolePolicy", &[("RoleName", "app"), ("PolicyName", "none")]);
    assert_eq!(e.message, "The role policy with name none cannot be found.");

    lab.iam(
        &admin,
        "AttachRolePolicy",
        &[("RoleName", "app"), ("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess")],
    );
    let e = lab.iam_err(&admin, "DeleteRole", &[("RoleName", "app")]);
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("DeleteConflict", 409));
}

#[test]
fn callers_without_permission_are_denied_on_the_resource_aws_names() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    lab.iam(
        &admin,
        "CreateRole",
        &[("RoleName", "app"), ("Path", "/team/"), ("AssumeRolePolicyDocument", EC2_TRUST)],
    );
    let bob = lab.user("bob");
    let denied = |e: AwsError, action: &str, resource: &str| {
        assert_eq!((e.code.as_ref(), e.status.as_u16()), ("AccessDenied", 403));
        assert_eq!(
            e.message,
            format!(
                "User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: {action} on resource: {resource} because no identity-based policy allows the {action} action"
            )
        );
    };

    // An existing role: its ARN with its path. A missing one: denied, not NoSuchEntity.
    denied(
        lab.iam_err(&bob, "GetRole", &[("RoleName", "app")]),
        "iam:GetRole",
        &format!("arn:aws:iam::{ACCOUNT}:role/team/app"),
    );
    denied(
        lab.iam_err(&bob, "GetRole", &[("RoleName", "nope")]),
        "iam:GetRole",
        &format!("arn:aws:iam::{ACCOUNT}:role/nope"),
    );
    denied(
        lab.iam_err(
            &bob,
            "CreateRole",
            &[("RoleName", "x"), ("Path", "/p/"), ("AssumeRolePolicyDocument", EC2_TRUST)],
        ),
        "iam:CreateRole",
        &format!("arn:aws:iam::{ACCOUNT}:role/p/x"),
    );
    denied(lab.iam_err(&bob, "ListRoles", &[]), "iam:ListRoles", &format!("arn:aws:iam::{ACCOUNT}:role/"));
    denied(lab.iam_err(&bob, "ListPolicies", &[]), "iam:ListPolicies", "policy path /");
    denied(
        lab.iam_err(&bob, "ListOpenIDConnectProviders", &[]),
        "iam:ListOpenIDConnectProviders",
        &format!("arn:aws:iam::{ACCOUNT}:oidc-provider/*"),
    );
    denied(
        lab.iam_err(&bob, "CreatePolicy", &[("PolicyName", "mine"), ("PolicyDocument", PERMISSIONS)]),
        "iam:CreatePolicy",
        &format!("arn:aws:iam::{ACCOUNT}:policy/mine"),
    );
    denied(lab.iam_err(&bob, "GetUser", &[]), "iam:GetUser", &format!("arn:aws:iam::{ACCOUNT}:user/bob"));

    // A role session: the session ARN is who is denied.
    let session = lab.service_session("node");
    let e = lab.iam_err(&session, "ListRoles", &[]);
    assert!(
        e.message.starts_with(&format!(
            "User: arn:aws:sts::{ACCOUNT}:assumed-role/node/i-0123456789abcdef0 is not authorized to perform: iam:ListRoles"
        )),
        "{}",
        e.message
    );
    // A role session must name the user.
    let e = lab.iam_err(&session, "GetUser", &[]);
    assert_eq!((e.code.as_ref(), e.message.as_str()), ("ValidationError", NON_USER_CREDENTIALS));

    // AddRoleToInstanceProfile also needs iam:PassRole on the role.
    lab.iam(&admin, "CreateInstanceProfile", &[("InstanceProfileName", "prof")]);
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iam:AddRoleToInstanceProfile","Resource":"*"}]}"#;
    lab.account.iam.put_user_policy("bob", "profiles", policy).unwrap();
    denied(
        lab.iam_err(
            &bob,
            "AddRoleToInstanceProfile",
            &[("InstanceProfileName", "prof"), ("RoleName", "app")],
        ),
        "iam:PassRole",
        &format!("arn:aws:iam::{ACCOUNT}:role/team/app"),
    );
}

#[test]
fn attaching_a_policy_changes_what_the_role_session_may_do() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let session = lab.service_session("node");
    let readonly = "arn:aws:iam::aws:policy/ReadOnlyAccess";
    let may_list_roles = |lab: &mut Lab| {
        let input = Input::Query(Params::default());
        let call = Call {
            action: "ListRoles",
            input: &input,
            caller: &session,
            request_id: "r",
            protocol: Protocol::AwsQuery { xmlns: IAM_XMLNS },
            now: lab.now,
        };
        authorize(&lab.account, &call, "iam:ListRoles", "*").is_ok()
    };

    assert!(!may_list_roles(&mut lab));
    lab.iam(&admin, "AttachRolePolicy", &[("RoleName", "node"), ("PolicyArn", readonly)]);
    assert!(may_list_roles(&mut lab));
    assert!(lab.call(Service::Iam, &session, "ListRoles", &[]).is_ok());
    lab.iam(&admin, "DetachRolePolicy", &[("RoleName", "node"), ("PolicyArn", readonly)]);
    assert!(!may_list_roles(&mut lab));
    assert_eq!(lab.iam_err(&session, "ListRoles", &[]).code, "AccessDenied");

    let e = lab.iam_err(&admin, "DetachRolePolicy", &[("RoleName", "node"), ("PolicyArn", readonly)]);
    assert_eq!(e.code, "NoSuchEntity");
}
