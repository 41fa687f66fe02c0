//! STS's handler: answers read back by botocore's parser, AssumeRole's trust and identity
//! checks with `ExternalId`, the model's constraints, and AssumeRoleWithWebIdentity with
//! [`NoIssuer`] and with a verifier that accepts a known token.

use netlab_aws::Service;
use serde_json::json;

use super::*;
use crate::aws::Caller;
use crate::aws::iam::tests::{ACCOUNT, Answer, Lab, answer, botocore_parse, error_answer};

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

fn trust_account() -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

fn sts(lab: &mut Lab, caller: &Caller, action: &str, pairs: &[(&str, &str)]) -> Result<Answer, AwsError> {
    lab.call(Service::Sts, caller, action, pairs).map(|r| answer("sts", action, r))
}

fn create_role(lab: &mut Lab, name: &str, trust: &str) -> String {
    let create = netlab_iam::CreateRole { name, assume_role_policy_document: trust, ..Default::default() };
    lab.account.iam.create_role(create, lab.now).unwrap().arn.clone()
}

/// An unsigned JWT with these claims (what [`NoIssuer`] reads to word its refusal).
fn jwt(claims: &serde_json::Value) -> String {
    fn b64url(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
            }
        }
        out
    }
    format!("{}.{}.c2ln", b64url(br#"{"alg":"RS256"}"#), b64url(claims.to_string().as_bytes()))
}

#[test]
fn base64url_round_trip() {
    let claims = json!({"iss": ISSUER, "sub": "system:serviceaccount:kube-system:aws-node"});
    assert_eq!(unverified_issuer(&jwt(&claims)).as_deref(), Some(ISSUER));
    assert_eq!(unverified_issuer("not-a-jwt"), None);
}

#[test]
fn botocore_reads_caller_identity_and_sessions() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let role_arn = create_role(&mut lab, "app", &trust_account());
    let mut answers = vec![
        sts(&mut lab, &admin, "GetCallerIdentity", &[]).unwrap(),
        sts(
            &mut lab,
            &admin,
            "AssumeRole",
            &[("RoleArn", &role_arn), ("RoleSessionName", "me"), ("DurationSeconds", "900")],
        )
        .unwrap(),
    ];
    let e =
        sts(&mut lab, &admin, "AssumeRole", &[("RoleArn", &role_arn), ("RoleSessionName", "x")]).unwrap_err();
    answers.push(error_answer(Service::Sts, "AssumeRole", &e));

    let Some(parsed) = botocore_parse(&answers) else { return };
    let who = &parsed[0];
    assert_eq!(who["Account"], ACCOUNT);
    assert_eq!(who["Arn"], format!("arn:aws:iam::{ACCOUNT}:user/admin").as_str());
    assert!(who["UserId"].as_str().unwrap().starts_with("AIDA"));

    let assumed = &parsed[1];
    let creds = &assumed["Credentials"];
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"));
    assert_eq!(creds["SecretAccessKey"].as_str().unwrap().len(), 40);
    assert!(creds["SessionToken"].as_str().unwrap().len() > 300);
    assert_eq!(creds["Expiration"], "2026-12-07T17:15:00+00:00");
    let user = &assumed["AssumedRoleUser"];
    assert_eq!(user["Arn"], format!("arn:aws:sts::{ACCOUNT}:assumed-role/app/me").as_str());
    let id = user["AssumedRoleId"].as_str().unwrap();
    assert!(id.starts_with("AROA") && id.ends_with(":me"), "{id}");
    assert!(assumed.get("PackedPolicySize").is_none());
    assert!(answers[1].body.contains("<Expiration>2026-12-07T17:15:00Z</Expiration>"));

    let err = &parsed[2];
    assert_eq!(err["Error"]["Code"], "ValidationError");
    assert_eq!(
        err["Error"]["Message"],
        "1 validation error detected: Value 'x' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"
    );
}

#[test]
fn caller_identity_needs_no_permission_and_names_sessions() {
    let mut lab = Lab::new();
    let bob = lab.user("bob");
    let body = sts(&mut lab, &bob, "GetCallerIdentity", &[]).unwrap().body;
    assert!(body.contains(&format!("<Arn>arn:aws:iam::{ACCOUNT}:user/bob</Arn>")), "{body}");
    assert!(
        body.starts_with("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">")
    );

    let session = lab.service_session("node");
    let body = sts(&mut lab, &session, "GetCallerIdentity", &[]).unwrap().body;
    assert!(
        body.contains(&format!("<Arn>arn:aws:sts::{ACCOUNT}:assumed-role/node/i-0123456789abcdef0</Arn>"))
    );
    assert!(body.contains(":i-0123456789abcdef0</UserId>"));
}

#[test]
fn assume_role_checks_trust_identity_policies_and_external_id() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let bob = lab.user("bob");
    let by_account = create_role(&mut lab, "shared", &trust_account());

    // Trust names only the account: bob's identity policies must allow it, and he has none.
    let e = sts(&mut lab, &bob, "AssumeRole", &[("RoleArn", &by_account), ("RoleSessionName", "bob")])
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("AccessDenied", 403));
    assert_eq!(
        e.message,
        format!(
            "User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized to perform: sts:AssumeRole on resource: {by_account} because no identity-based policy allows the sts:AssumeRole action"
        )
    );

    // Trust names bob himself: enough on its own.
    let trust_bob = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:user/bob"}},"Action":"sts:AssumeRole"}}]}}"#
    );
    let for_bob = create_role(&mut lab, "for-bob", &trust_bob);
    assert!(sts(&mut lab, &bob, "AssumeRole", &[("RoleArn", &for_bob), ("RoleSessionName", "bob")]).is_ok());

    // A role that does not exist is denied, not NoSuchEntity.
    let e = sts(
        &mut lab,
        &admin,
        "AssumeRole",
        &[("RoleArn", &format!("arn:aws:iam::{ACCOUNT}:role/none")), ("RoleSessionName", "s1")],
    )
    .unwrap_err();
    assert_eq!(e.code, "AccessDenied");

    // ExternalId reaches the trust policy's condition as sts:ExternalId.
    let trust_external = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"tenant-42"}}}}}}]}}"#
    );
    let external = create_role(&mut lab, "external", &trust_external);
    let without = sts(&mut lab, &admin, "AssumeRole", &[("RoleArn", &external), ("RoleSessionName", "s1")]);
    assert_eq!(without.unwrap_err().code, "AccessDenied");
    let wrong = &[("RoleArn", external.as_str()), ("RoleSessionName", "s1"), ("ExternalId", "tenant-7")];
    assert_eq!(sts(&mut lab, &admin, "AssumeRole", wrong).unwrap_err().code, "AccessDenied");
    let right = &[("RoleArn", external.as_str()), ("RoleSessionName", "s1"), ("ExternalId", "tenant-42")];
    assert!(sts(&mut lab, &admin, "AssumeRole", right).is_ok());

    // Longer than the role allows.
    let e = sts(
        &mut lab,
        &admin,
        "AssumeRole",
        &[("RoleArn", &by_account), ("RoleSessionName", "s1"), ("DurationSeconds", "7200")],
    )
    .unwrap_err();
    assert_eq!(e.message, "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.");
}

#[test]
fn session_input_failures_come_together() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let e = sts(&mut lab, &admin, "AssumeRole", &[("RoleSessionName", "a b"), ("DurationSeconds", "60")])
        .unwrap_err();
    assert_eq!(e.code, "ValidationError");
    assert_eq!(
        e.message,
        r"3 validation errors detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null; Value 'a b' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*; Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
    );
    let e = sts(&mut lab, &admin, "GetSessionToken", &[]).unwrap_err();
    assert_eq!(e.code, "InvalidAction");
}

#[test]
fn web_identity_without_a_verifier_is_refused_as_aws_refuses_an_unknown_provider() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let role = create_role(&mut lab, "irsa", &trust_account());
    let token =
        jwt(&json!({"iss": ISSUER, "sub": "system:serviceaccount:default:app", "aud": "sts.amazonaws.com"}));
    let pairs =
        [("RoleArn", role.as_str()), ("RoleSessionName", "app"), ("WebIdentityToken", token.as_str())];
    let e = sts(&mut lab, &admin, "AssumeRoleWithWebIdentity", &pairs).unwrap_err();
    assert_eq!((e.code.as_ref(), e.status.as_u16()), ("InvalidIdentityToken", 400));
    assert_eq!(e.message, format!("No OpenIDConnect provider found in your account for {ISSUER}"));

    let pairs =
        [("RoleArn", role.as_str()), ("RoleSessionName", "app"), ("WebIdentityToken", "opaque-access-token")];
    let e = sts(&mut lab, &admin, "AssumeRoleWithWebIdentity", &pairs).unwrap_err();
    assert_eq!((e.code.as_ref(), e.message.as_str()), ("InvalidIdentityToken", NOT_A_JWT));

    // The model's constraints are checked before the token.
    let pairs = [("RoleArn", role.as_str()), ("RoleSessionName", "app")];
    let e = sts(&mut lab, &admin, "AssumeRoleWithWebIdentity", &pairs).unwrap_err();
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'webIdentityToken' failed to satisfy constraint: Member must not be null"
    );
}

/// Accepts one token and says what it claims, as a verifier that checked its signature would.
struct Accepts {
    token: String,
    claims: VerifiedToken,
}

impl WebIdentityVerifier for Accepts {
    fn verify(&self, token: &str, _now: Timestamp) -> Result<VerifiedToken, AwsError> {
        if token == self.token { Ok(self.claims.clone()) } else { Err(invalid_token(NOT_A_JWT)) }
    }
}

#[test]
fn web_identity_with_a_verified_token_issues_a_session() {
    let mut lab = Lab::new();
    let admin = lab.admin();
    let host_path = ISSUER.trim_start_matches("https://");
    let create = netlab_iam::CreateOidcProvider {
        url: ISSUER,
        client_ids: &["sts.amazonaws.com"],
        thumbprints: &["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
    };
    let provider = lab.account.iam.create_open_id_connect_provider(create, lab.now).unwrap().arn.clone();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"{provider}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{host_path}:sub":"system:serviceaccount:kube-system:aws-node","{host_path}:aud":"sts.amazonaws.com"}}}}}}]}}"#
    );
    let role = create_role(&mut lab, "cni", &trust);
    let subject = "system:serviceaccount:kube-system:aws-node";
    let now = lab.now;
    // A JWT (STS reads its issuer to find the provider first); its signature is the fake's to judge.
    let token = jwt(&json!({"iss": ISSUER}));
    let verifier = |sub: &str| Accepts {
        token: token.clone(),
        claims: VerifiedToken {
            issuer: ISSUER.to_owned(),
            subject: sub.to_owned(),
            audiences: vec!["sts.amazonaws.com".to_owned()],
            expires_at: now + jiff::SignedDuration::from_hours(24),
        },
    };
    let run = |lab: &mut Lab, verifier: &Accepts| {
        let input = netlab_aws::Input::Query(netlab_aws::Params::from_pairs([
            ("RoleArn", role.as_str()),
            ("RoleSessionName", "aws-node"),
            ("WebIdentityToken", token.as_str()),
        ]));
        let call = Call {
            action: "AssumeRoleWithWebIdentity",
            input: &input,
            caller: &admin,
            request_id: "req-1",
            protocol: Service::Sts.protocol(),
            now: lab.now,
        };
        handle_with(&mut lab.account, &call, verifier)
    };

    let e = run(&mut lab, &verifier("system:serviceaccount:default:other")).unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.message.as_str()),
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity")
    );

    let resp = run(&mut lab, &verifier(subject)).unwrap();
    let answers = [answer("sts", "AssumeRoleWithWebIdentity", resp)];
    let Some(parsed) = botocore_parse(&answers) else { return };
    let r = &parsed[0];
    assert_eq!(r["SubjectFromWebIdentityToken"], subject);
    assert_eq!(r["Audience"], "sts.amazonaws.com");
    assert_eq!(r["Provider"], ISSUER);
    assert_eq!(
        r["AssumedRoleUser"]["Arn"],
        format!("arn:aws:sts::{ACCOUNT}:assumed-role/cni/aws-node").as_str()
    );
    assert_eq!(r["Credentials"]["Expiration"], "2026-12-07T18:00:00+00:00");
}
