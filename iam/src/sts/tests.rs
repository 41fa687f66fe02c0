//! STS: credentials, duration and session-name bounds, expiry with an injected clock, AssumeRole's trust rules, web identity.

use super::*;
use crate::CreateRole;
use crate::directory::CreateOidcProvider;
use crate::model::Account;

fn t0() -> Timestamp {
    "2026-03-01T00:00:00Z".parse().unwrap()
}

fn dir() -> Directory {
    let mut d = Directory::bootstrap(Account::default(), t0());
    d.create_node_role("eks-node", t0()).unwrap();
    let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"}}"#;
    d.create_role(CreateRole { name: "ops", assume_role_policy_document: trust, ..Default::default() }, t0())
        .unwrap();
    d
}

fn admin(d: &Directory) -> Identity {
    let key = d.admin_access_key().unwrap().access_key_id.clone();
    match d.lookup_access_key(&key, t0()) {
        KeyLookup::Valid(c) => c.identity,
        other => panic!("{other:?}"),
    }
}

const NODE_ROLE: &str = "arn:aws:iam::123456789012:role/eks-node";
const OPS_ROLE: &str = "arn:aws:iam::123456789012:role/ops";

#[test]
fn instance_profile_credentials_and_caller_identity() {
    let mut d = dir();
    let a = d.instance_profile_credentials("eks-node", "i-0abc", 3600, t0()).unwrap();
    assert!(a.credentials.access_key_id.starts_with("ASIA"));
    assert_eq!(a.credentials.access_key_id.len(), 20);
    assert_eq!(a.credentials.secret_access_key.len(), 40);
    assert_eq!(a.credentials.expiration, "2026-03-01T01:00:00Z".parse::<Timestamp>().unwrap());
    assert_eq!(a.assumed_role_user.arn, "arn:aws:sts::123456789012:assumed-role/eks-node/i-0abc");
    let role_id = d.get_role("eks-node").unwrap().id.clone();
    assert_eq!(a.assumed_role_user.assumed_role_id, format!("{role_id}:i-0abc"));

    let KeyLookup::Valid(c) = d.lookup_access_key(&a.credentials.access_key_id, t0()) else { panic!() };
    assert_eq!(c.session_token.as_deref(), Some(a.credentials.session_token.as_str()));
    let who = d.get_caller_identity(&c.identity);
    assert_eq!(
        who,
        CallerIdentity {
            user_id: format!("{role_id}:i-0abc"),
            account: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/eks-node/i-0abc".into()
        }
    );
    // The session's permissions are the role's.
    let ctx = d.request_context(&c.identity, t0());
    assert!(d.authorize(&c.identity, "ecr:GetAuthorizationToken", "*", &ctx).is_allowed());
    let denied = d.authorize(&c.identity, "iam:CreateUser", "*", &ctx);
    assert_eq!(
        denied.denial_message(c.identity.arn(), "iam:CreateUser", "*").unwrap(),
        "User: arn:aws:sts::123456789012:assumed-role/eks-node/i-0abc is not authorized to perform: iam:CreateUser on resource: * because no identity-based policy allows the iam:CreateUser action"
    );

    let user = admin(&d);
    let who = d.get_caller_identity(&user);
    assert_eq!(who.arn, "arn:aws:iam::123456789012:user/admin");
    assert!(who.user_id.starts_with("AIDA"));
}

#[test]
fn expiry_and_pruning() {
    let mut d = dir();
    let a = d.instance_profile_credentials("eks-node", "i-0abc", 900, t0()).unwrap();
    let id = a.credentials.access_key_id.clone();
    let at = |s: i64| t0() + SignedDuration::from_secs(s);
    assert!(matches!(d.lookup_access_key(&id, at(899)), KeyLookup::Valid(_)));
    let expired = d.lookup_access_key(&id, at(900));
    assert!(matches!(expired, KeyLookup::Expired(_)));
    let e = expired.error().unwrap();
    assert_eq!(
        (e.code(), e.message(), e.status()),
        ("ExpiredToken", "The security token included in the request is expired", 403)
    );
    assert_eq!(d.prune_sessions(at(900 + 3599)), 0);
    assert_eq!(d.prune_sessions(at(900 + 3600)), 1);
    let gone = d.lookup_access_key(&id, at(5000));
    assert_eq!(gone, KeyLookup::Unknown);
    assert_eq!(gone.error().unwrap().message(), "The security token included in the request is invalid.");
}

#[test]
fn duration_bounds() {
    let mut d = dir();
    let user = admin(&d);
    let ctx = Context::new();
    let req = |d: &mut Directory, secs: u32| {
        d.assume_role(
            &user,
            AssumeRoleRequest { role_arn: OPS_ROLE, role_session_name: "s1", duration_seconds: Some(secs) },
            &ctx,
            t0(),
        )
    };
    let e = req(&mut d, 899).unwrap_err();
    assert_eq!(e.code(), "ValidationError");
    assert_eq!(
        e.message(),
        "1 validation error detected: Value '899' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"
    );
    assert_eq!(
        req(&mut d, 43201).unwrap_err().message(),
        "1 validation error detected: Value '43201' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"
    );
    assert_eq!(
        req(&mut d, 3601).unwrap_err().message(),
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );
    let ok = req(&mut d, 900).unwrap();
    assert_eq!(ok.credentials.expiration, t0() + SignedDuration::from_secs(900));
    assert!(req(&mut d, 3600).is_ok());
}

#[test]
fn session_name_validation() {
    let mut d = dir();
    let user = admin(&d);
    let ctx = Context::new();
    let mut req = |name: &str| {
        d.assume_role(
            &user,
            AssumeRoleRequest { role_arn: OPS_ROLE, role_session_name: name, duration_seconds: None },
            &ctx,
            t0(),
        )
    };
    assert_eq!(
        req("bedrock role").unwrap_err().message(),
        r"1 validation error detected: Value 'bedrock role' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*"
    );
    assert_eq!(
        req("a").unwrap_err().message(),
        "1 validation error detected: Value 'a' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2"
    );
    let long = "x".repeat(65);
    assert_eq!(
        req(&long).unwrap_err().message(),
        format!(
            "1 validation error detected: Value '{long}' at 'roleSessionName' failed to satisfy constraint: Member must have length less than or equal to 64"
        )
    );
    assert!(req("user@example.com,x=1.2-3_4+5").is_ok());
}

#[test]
fn assume_role_rules() {
    let mut d = dir();
    d.create_user("bob", None, t0()).unwrap();
    let bob_key = d.create_access_key("bob", t0()).unwrap();
    let KeyLookup::Valid(bob) = d.lookup_access_key(&bob_key.access_key_id, t0()) else { panic!() };
    let bob = bob.identity;
    let ctx = Context::new();
    let account_trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}}"#;
    d.create_role(
        CreateRole { name: "via-account", assume_role_policy_document: account_trust, ..Default::default() },
        t0(),
    )
    .unwrap();
    let req = AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/via-account",
        role_session_name: "bob",
        duration_seconds: None,
    };
    // The trust policy names only the account: bob's identity policy must allow it too.
    let e = d.assume_role(&bob, req, &ctx, t0()).unwrap_err();
    assert_eq!(e.code(), "AccessDenied");
    assert_eq!(e.status(), 403);
    assert_eq!(
        e.message(),
        "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/via-account because no identity-based policy allows the sts:AssumeRole action"
    );
    d.put_user_policy("bob", "assume", r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"arn:aws:iam::123456789012:role/*"}}"#).unwrap();
    let a = d.assume_role(&bob, req, &ctx, t0()).unwrap();
    assert_eq!(a.assumed_role_user.arn, "arn:aws:sts::123456789012:assumed-role/via-account/bob");

    // A trust policy that names bob himself needs no identity policy, but an explicit deny wins.
    let bob_trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:AssumeRole"}}"#;
    d.create_role(
        CreateRole { name: "names-bob", assume_role_policy_document: bob_trust, ..Default::default() },
        t0(),
    )
    .unwrap();
    let req = AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/names-bob",
        role_session_name: "bob",
        duration_seconds: None,
    };
    d.users.get_mut("bob").unwrap().inline_policies.clear();
    assert!(d.assume_role(&bob, req, &ctx, t0()).is_ok());
    d.put_user_policy(
        "bob",
        "deny",
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"sts:*","Resource":"*"}}"#,
    )
    .unwrap();
    assert!(
        d.assume_role(&bob, req, &ctx, t0())
            .unwrap_err()
            .message()
            .ends_with("with an explicit deny in an identity-based policy")
    );

    // The node role trusts only EC2.
    let e = d
        .assume_role(
            &admin(&d),
            AssumeRoleRequest { role_arn: NODE_ROLE, role_session_name: "x1", duration_seconds: None },
            &ctx,
            t0(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "AccessDenied");
    assert_eq!(
        e.message(),
        "User: arn:aws:iam::123456789012:user/admin is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::123456789012:role/eks-node"
    );
    // Unknown role: the same denial.
    let missing = AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/nope",
        role_session_name: "x1",
        duration_seconds: None,
    };
    assert_eq!(d.assume_role(&bob, missing, &ctx, t0()).unwrap_err().code(), "AccessDenied");
}

#[test]
fn role_chaining_limit() {
    let mut d = dir();
    let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/eks-node"},"Action":"sts:AssumeRole"}}"#;
    d.create_role(
        CreateRole {
            name: "chained",
            assume_role_policy_document: trust,
            max_session_duration: Some(7200),
            ..Default::default()
        },
        t0(),
    )
    .unwrap();
    let node = d.instance_profile_credentials("eks-node", "i-1", 3600, t0()).unwrap();
    let KeyLookup::Valid(c) = d.lookup_access_key(&node.credentials.access_key_id, t0()) else { panic!() };
    let req = |secs| AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/chained",
        role_session_name: "c1",
        duration_seconds: Some(secs),
    };
    let e = d.assume_role(&c.identity, req(7200), &Context::new(), t0()).unwrap_err();
    assert_eq!(
        e.message(),
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
    );
    assert!(d.assume_role(&c.identity, req(3600), &Context::new(), t0()).is_ok());
}

const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
const HOST: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

fn irsa_dir() -> Directory {
    let mut d = dir();
    d.create_open_id_connect_provider(
        CreateOidcProvider {
            url: ISSUER,
            client_ids: &["sts.amazonaws.com"],
            thumbprints: &["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"],
        },
        t0(),
    )
    .unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"Federated":"arn:aws:iam::123456789012:oidc-provider/{HOST}"}},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{{"StringEquals":{{"{HOST}:aud":"sts.amazonaws.com","{HOST}:sub":"system:serviceaccount:kube-system:aws-node"}}}}}}]}}"#
    );
    d.create_role(
        CreateRole { name: "cni", assume_role_policy_document: &trust, ..Default::default() },
        t0(),
    )
    .unwrap();
    d
}

#[test]
fn web_identity() {
    let mut d = irsa_dir();
    let req = AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/cni",
        role_session_name: "botocore-session-1",
        duration_seconds: None,
    };
    let exp = t0() + SignedDuration::from_hours(24);
    let claims = |sub, aud, iss| WebIdentityClaims {
        issuer: iss,
        subject: sub,
        audiences: vec![aud],
        expires_at: exp,
    };

    let ok = d
        .assume_role_with_web_identity(
            req,
            &claims("system:serviceaccount:kube-system:aws-node", "sts.amazonaws.com", ISSUER),
            t0(),
        )
        .unwrap();
    assert_eq!(ok.subject_from_web_identity_token, "system:serviceaccount:kube-system:aws-node");
    assert_eq!(ok.audience, "sts.amazonaws.com");
    assert_eq!(ok.provider, ISSUER);
    assert_eq!(
        ok.assumed.assumed_role_user.arn,
        "arn:aws:sts::123456789012:assumed-role/cni/botocore-session-1"
    );

    let e = d
        .assume_role_with_web_identity(
            req,
            &claims("system:serviceaccount:default:app", "sts.amazonaws.com", ISSUER),
            t0(),
        )
        .unwrap_err();
    assert_eq!(
        (e.code(), e.message(), e.status()),
        ("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
    );

    let e = d
        .assume_role_with_web_identity(
            req,
            &claims("system:serviceaccount:kube-system:aws-node", "other", ISSUER),
            t0(),
        )
        .unwrap_err();
    assert_eq!((e.code(), e.message()), ("InvalidIdentityToken", "Incorrect token audience"));

    let unknown = "https://oidc.eks.us-east-1.amazonaws.com/id/UNKNOWN";
    let e =
        d.assume_role_with_web_identity(req, &claims("s", "sts.amazonaws.com", unknown), t0()).unwrap_err();
    assert_eq!(e.message(), format!("No OpenIDConnect provider found in your account for {unknown}"));

    let late = exp + SignedDuration::from_secs(1);
    let e =
        d.assume_role_with_web_identity(req, &claims("s", "sts.amazonaws.com", ISSUER), late).unwrap_err();
    assert_eq!(e.code(), "ExpiredTokenException");
    assert_eq!(
        e.message(),
        format!(
            "Token expired: current date/time {} must be before the expiration date/time {}",
            late.as_second(),
            exp.as_second()
        )
    );
}
