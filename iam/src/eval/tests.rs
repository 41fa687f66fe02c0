//! Evaluation: deny wins, wildcards, Not*, every condition operator, the IRSA trust shape, AWS's denial texts.

use super::*;
use crate::policy::{PolicyDocument, PolicyKind};

fn doc(text: &str) -> PolicyDocument {
    PolicyDocument::parse(text, PolicyKind::Inline).unwrap()
}

fn managed(arn: &str) -> PolicySource {
    PolicySource::Managed { arn: arn.to_owned() }
}

fn decide(docs: &[(&str, &PolicyDocument)], action: &str, resource: &str, ctx: &Context) -> Decision {
    evaluate(docs.iter().map(|(a, d)| (managed(a), *d)), &Request { action, resource, context: ctx })
}

/// One statement allowing `*` on `*` under a single condition.
fn cond(op: &str, key: &str, values: &str) -> PolicyDocument {
    doc(&format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{op}":{{"{key}":{values}}}}}}}}}"#
    ))
}

fn holds(op: &str, key: &str, values: &str, ctx: &Context) -> bool {
    decide(&[("p", &cond(op, key, values))], "s3:GetObject", "*", ctx).is_allowed()
}

#[test]
fn deny_wins_and_names_the_statement() {
    let allow = doc(
        r#"{"Version":"2012-10-17","Statement":{"Sid":"All","Effect":"Allow","Action":"*","Resource":"*"}}"#,
    );
    let deny = doc(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Sid":"NoEcr","Effect":"Deny","Action":"ecr:*","Resource":"*"}]}"#,
    );
    let ctx = Context::new();
    let d = decide(&[("arn:a", &allow), ("arn:d", &deny)], "ECR:GetAuthorizationToken", "*", &ctx);
    assert_eq!(d.outcome, Outcome::ExplicitDeny);
    let s = d.statement.clone().unwrap();
    assert_eq!((s.policy, s.index, s.sid.as_deref()), (managed("arn:d"), 1, Some("NoEcr")));
    assert_eq!(d.statement.as_ref().unwrap().to_string(), "arn:d statement 1 (NoEcr)");
    let d = decide(&[("arn:a", &allow), ("arn:d", &deny)], "s3:GetObject", "arn:aws:s3:::b/k", &ctx);
    assert_eq!(d.outcome, Outcome::Allow);
    assert_eq!(d.statement.unwrap().sid.as_deref(), Some("All"));
    assert_eq!(decide(&[], "s3:GetObject", "*", &ctx).outcome, Outcome::ImplicitDeny);
}

#[test]
fn wildcards_not_action_not_resource() {
    let ctx = Context::new();
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["ec2:Describe*","ecr:Get?uthorizationToken"],"Resource":"*"}}"#,
    );
    assert!(decide(&[("p", &d)], "ec2:DescribeNetworkInterfaces", "*", &ctx).is_allowed());
    assert!(decide(&[("p", &d)], "ecr:GetAuthorizationToken", "*", &ctx).is_allowed());
    assert!(!decide(&[("p", &d)], "ec2:CreateTags", "*", &ctx).is_allowed());
    let tag = doc(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"ec2:CreateTags","Resource":"arn:aws:ec2:*:*:network-interface/*"}}"#,
    );
    assert!(
        decide(
            &[("p", &tag)],
            "ec2:CreateTags",
            "arn:aws:ec2:us-east-1:123456789012:network-interface/eni-1",
            &ctx
        )
        .is_allowed()
    );
    assert!(
        !decide(&[("p", &tag)], "ec2:CreateTags", "arn:aws:ec2:us-east-1:123456789012:instance/i-1", &ctx)
            .is_allowed()
    );
    let not = doc(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:s3:::secret/*"}}"#,
    );
    assert!(decide(&[("p", &not)], "s3:GetObject", "arn:aws:s3:::public/k", &ctx).is_allowed());
    assert!(!decide(&[("p", &not)], "IAM:CreateUser", "*", &ctx).is_allowed());
    assert!(!decide(&[("p", &not)], "s3:GetObject", "arn:aws:s3:::secret/k", &ctx).is_allowed());
}

#[test]
fn string_operators() {
    let ctx = Context::new().with("aws:username", "Alice").with("k", "dev-1");
    assert!(holds("StringEquals", "aws:username", r#""Alice""#, &ctx));
    assert!(holds("StringEquals", "AWS:UserName", r#"["Bob","Alice"]"#, &ctx), "keys ignore case, values OR");
    assert!(!holds("StringEquals", "aws:username", r#""alice""#, &ctx));
    assert!(holds("StringEqualsIgnoreCase", "aws:username", r#""alice""#, &ctx));
    assert!(!holds("StringNotEqualsIgnoreCase", "aws:username", r#""ALICE""#, &ctx));
    assert!(holds("StringNotEquals", "aws:username", r#"["Bob","Carol"]"#, &ctx));
    assert!(!holds("StringNotEquals", "aws:username", r#"["Bob","Alice"]"#, &ctx));
    assert!(holds("StringLike", "k", r#""dev-?""#, &ctx));
    assert!(!holds("StringLike", "k", r#""prod-*""#, &ctx));
    assert!(holds("StringNotLike", "k", r#""prod-*""#, &ctx));
    // A missing key: false, except for negated operators and IfExists.
    assert!(!holds("StringEquals", "missing", r#""x""#, &ctx));
    assert!(holds("StringNotEquals", "missing", r#""x""#, &ctx));
    assert!(holds("StringEqualsIfExists", "missing", r#""x""#, &ctx));
    assert!(!holds("StringEqualsIfExists", "k", r#""x""#, &ctx));
}

#[test]
fn numeric_date_bool_ip_binary_null() {
    let ctx = Context::new()
        .with("n", "5")
        .with("aws:CurrentTime", "2026-06-01T12:00:00Z")
        .with("aws:SecureTransport", "true")
        .with("aws:SourceIp", "10.0.3.7")
        .with("b", "QUJD");
    assert!(holds("NumericEquals", "n", "5", &ctx));
    assert!(holds("NumericNotEquals", "n", r#""6""#, &ctx));
    assert!(holds("NumericLessThan", "n", r#""10""#, &ctx));
    assert!(!holds("NumericLessThan", "n", r#""5""#, &ctx));
    assert!(holds("NumericLessThanEquals", "n", r#""5""#, &ctx));
    assert!(holds("NumericGreaterThan", "n", r#""4.5""#, &ctx));
    assert!(holds("NumericGreaterThanEquals", "n", r#""5""#, &ctx));
    assert!(!holds("NumericEquals", "n", r#""five""#, &ctx));
    assert!(holds("DateLessThan", "aws:CurrentTime", r#""2027-01-01T00:00:00Z""#, &ctx));
    assert!(holds("DateGreaterThan", "aws:CurrentTime", r#""2026-01-01""#, &ctx));
    assert!(holds("DateGreaterThanEquals", "aws:CurrentTime", r#""1780315200""#, &ctx));
    assert!(holds("DateEquals", "aws:CurrentTime", r#""2026-06-01T12:00:00Z""#, &ctx));
    assert!(holds("DateNotEquals", "aws:CurrentTime", r#""2026-06-01T12:00:01Z""#, &ctx));
    assert!(holds("DateLessThanEquals", "aws:CurrentTime", r#""2026-06-01T12:00:00Z""#, &ctx));
    assert!(holds("Bool", "aws:SecureTransport", "true", &ctx));
    assert!(!holds("Bool", "aws:SecureTransport", r#""false""#, &ctx));
    assert!(holds("IpAddress", "aws:SourceIp", r#"["192.168.0.0/16","10.0.0.0/16"]"#, &ctx));
    assert!(holds("IpAddress", "aws:SourceIp", r#""10.0.3.7""#, &ctx));
    assert!(!holds("IpAddress", "aws:SourceIp", r#""10.1.0.0/16""#, &ctx));
    assert!(holds("NotIpAddress", "aws:SourceIp", r#""10.1.0.0/16""#, &ctx));
    assert!(holds("BinaryEquals", "b", r#""QUJD""#, &ctx));
    assert!(holds("Null", "missing", r#""true""#, &ctx));
    assert!(!holds("Null", "n", r#""true""#, &ctx));
    assert!(holds("Null", "n", "false", &ctx));
}

#[test]
fn arn_operators() {
    let ctx = Context::new().with("aws:PrincipalArn", "arn:aws:iam::123456789012:role/node-a");
    assert!(holds("ArnEquals", "aws:PrincipalArn", r#""arn:aws:iam::123456789012:role/node-a""#, &ctx));
    assert!(holds("ArnLike", "aws:PrincipalArn", r#""arn:aws:iam::*:role/node-*""#, &ctx));
    assert!(!holds("ArnLike", "aws:PrincipalArn", r#""arn:aws:iam::*:user/*""#, &ctx));
    assert!(holds("ArnNotLike", "aws:PrincipalArn", r#""arn:aws:iam::*:user/*""#, &ctx));
    assert!(!holds("ArnNotEquals", "aws:PrincipalArn", r#""arn:aws:iam::123456789012:role/node-a""#, &ctx));
}

#[test]
fn set_operators() {
    let mut ctx = Context::new();
    ctx.insert_all("aws:TagKeys", ["env".to_owned(), "team".to_owned()]);
    assert!(holds("ForAnyValue:StringEquals", "aws:TagKeys", r#"["team"]"#, &ctx));
    assert!(!holds("ForAnyValue:StringEquals", "aws:TagKeys", r#"["owner"]"#, &ctx));
    assert!(holds("ForAllValues:StringEquals", "aws:TagKeys", r#"["env","team","owner"]"#, &ctx));
    assert!(!holds("ForAllValues:StringEquals", "aws:TagKeys", r#"["env"]"#, &ctx));
    assert!(holds("ForAllValues:StringLike", "aws:TagKeys", r#"["e*","t*"]"#, &ctx));
    assert!(holds("ForAnyValue:StringNotEquals", "aws:TagKeys", r#"["env"]"#, &ctx));
    assert!(!holds("ForAllValues:StringNotEquals", "aws:TagKeys", r#"["env"]"#, &ctx));
    // Missing key: ForAllValues is vacuously true, ForAnyValue false.
    assert!(holds("ForAllValues:StringEquals", "missing", r#"["x"]"#, &ctx));
    assert!(!holds("ForAnyValue:StringEquals", "missing", r#"["x"]"#, &ctx));
}

#[test]
fn several_keys_and() {
    let d = doc(
        r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"a":"1","b":"2"},"Bool":{"c":"true"}}}}"#,
    );
    let all = Context::new().with("a", "1").with("b", "2").with("c", "true");
    assert!(decide(&[("p", &d)], "s3:x", "*", &all).is_allowed());
    let one_off = Context::new().with("a", "1").with("b", "3").with("c", "true");
    assert!(!decide(&[("p", &d)], "s3:x", "*", &one_off).is_allowed());
}

#[test]
fn denial_messages() {
    let arn = "arn:aws:sts::123456789012:assumed-role/ROLE/i-0abc";
    let implicit = decide(&[], "ecr:GetAuthorizationToken", "*", &Context::new());
    assert_eq!(
        implicit.denial_message(arn, "ecr:GetAuthorizationToken", "*").unwrap(),
        "User: arn:aws:sts::123456789012:assumed-role/ROLE/i-0abc is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action"
    );
    let deny =
        doc(r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"ecr:*","Resource":"*"}}"#);
    let explicit = decide(
        &[("p", &deny)],
        "ecr:BatchGetImage",
        "arn:aws:ecr:us-east-1:123456789012:repository/app",
        &Context::new(),
    );
    assert_eq!(
        explicit
            .denial_message(arn, "ecr:BatchGetImage", "arn:aws:ecr:us-east-1:123456789012:repository/app")
            .unwrap(),
        "User: arn:aws:sts::123456789012:assumed-role/ROLE/i-0abc is not authorized to perform: ecr:BatchGetImage on resource: arn:aws:ecr:us-east-1:123456789012:repository/app with an explicit deny in an identity-based policy"
    );
}

const ISSUER: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

fn irsa_trust() -> PolicyDocument {
    let text = format!(
        r#"{{
  "Version": "2012-10-17",
  "Statement": [
    {{
      "Effect": "Allow",
      "Principal": {{ "Federated": "arn:aws:iam::123456789012:oidc-provider/{ISSUER}" }},
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {{
        "StringEquals": {{
          "{ISSUER}:aud": "sts.amazonaws.com",
          "{ISSUER}:sub": "system:serviceaccount:kube-system:aws-node"
        }}
      }}
    }}
  ]
}}"#
    );
    PolicyDocument::parse(&text, PolicyKind::Trust).unwrap()
}

#[test]
fn irsa_trust_policy() {
    let trust = irsa_trust();
    let provider = format!("arn:aws:iam::123456789012:oidc-provider/{ISSUER}");
    let caller = Caller::Federated(&provider);
    let role = "arn:aws:iam::123456789012:role/AmazonEKSVPCCNIRole";
    let ok = Context::new()
        .with(format!("{ISSUER}:aud"), "sts.amazonaws.com")
        .with(format!("{ISSUER}:sub"), "system:serviceaccount:kube-system:aws-node");
    let request = Request { action: "sts:AssumeRoleWithWebIdentity", resource: role, context: &ok };
    let d = evaluate_trust(role, &trust, &caller, &request);
    assert!(d.is_allowed());
    assert_eq!(d.statement.unwrap().policy, PolicySource::Trust { role: role.to_owned() });
    let wrong = Context::new()
        .with(format!("{ISSUER}:aud"), "sts.amazonaws.com")
        .with(format!("{ISSUER}:sub"), "system:serviceaccount:default:app");
    let request = Request { action: "sts:AssumeRoleWithWebIdentity", resource: role, context: &wrong };
    assert_eq!(evaluate_trust(role, &trust, &caller, &request).outcome, Outcome::ImplicitDeny);
    // Another provider does not match the principal.
    let other = Caller::Federated("arn:aws:iam::123456789012:oidc-provider/other");
    let request = Request { action: "sts:AssumeRoleWithWebIdentity", resource: role, context: &ok };
    assert!(!evaluate_trust(role, &trust, &other, &request).is_allowed());
}

#[test]
fn trust_principal_levels() {
    let trust = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"123456789012"},"Action":"sts:AssumeRole"},{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/bob"},"Action":"sts:AssumeRole"}]}"#,
        PolicyKind::Trust,
    )
    .unwrap();
    let ctx = Context::new();
    let role = "arn:aws:iam::123456789012:role/r";
    let request = Request { action: "sts:AssumeRole", resource: role, context: &ctx };
    let bob = Caller::Aws { account: "123456789012", arns: vec!["arn:aws:iam::123456789012:user/bob"] };
    let d = evaluate_trust(role, &trust, &bob, &request);
    assert_eq!((d.outcome, d.principal_match), (Outcome::Allow, Some(PrincipalMatch::Specific)));
    assert_eq!(d.statement.unwrap().index, 1);
    let alice = Caller::Aws { account: "123456789012", arns: vec!["arn:aws:iam::123456789012:user/alice"] };
    assert_eq!(evaluate_trust(role, &trust, &alice, &request).principal_match, Some(PrincipalMatch::Account));
    let stranger = Caller::Aws { account: "999999999999", arns: vec!["arn:aws:iam::999999999999:user/eve"] };
    assert!(!evaluate_trust(role, &trust, &stranger, &request).is_allowed());
    let ec2 = Caller::Service("ec2.amazonaws.com");
    assert!(!evaluate_trust(role, &trust, &ec2, &request).is_allowed());
}
