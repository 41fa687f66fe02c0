//! Policy parsing: accepted shapes and IAM's MalformedPolicyDocument texts.

use super::*;

fn err(text: &str, kind: PolicyKind) -> String {
    match PolicyDocument::parse(text, kind) {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => {
            assert_eq!(e.code(), "MalformedPolicyDocument");
            assert_eq!(e.status(), 400);
            e.message().to_owned()
        }
    }
}

const ALLOW_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#;

#[test]
fn accepts_object_or_array_statements_and_keeps_text() {
    let doc = PolicyDocument::parse(ALLOW_ALL, PolicyKind::Managed).unwrap();
    assert_eq!(doc.text(), ALLOW_ALL);
    assert_eq!(doc.statements().len(), 1);
    let arr = r#"{"Version":"2008-10-17","Statement":[{"Sid":"A","Effect":"Deny","NotAction":["s3:*"],"NotResource":"arn:aws:s3:::b/*"}]}"#;
    let doc = PolicyDocument::parse(arr, PolicyKind::Inline).unwrap();
    let s = &doc.statements()[0];
    assert_eq!(s.effect, Effect::Deny);
    assert!(s.action.not);
    assert!(s.resource.as_ref().unwrap().not);
    assert_eq!(s.sid.as_deref(), Some("A"));
}

#[test]
fn url_encoding() {
    let doc = PolicyDocument::parse(ALLOW_ALL, PolicyKind::Inline).unwrap();
    assert!(doc.url_encoded().starts_with("%7B%22Version%22%3A%222012-10-17%22"));
}

#[test]
fn malformed_messages() {
    use PolicyKind::*;
    assert_eq!(err("policy.json", Managed), "Syntax errors in policy.");
    assert_eq!(err("policy.json", Trust), "This policy contains invalid Json");
    assert_eq!(err(r#"{"Version":"2012-10-17","Statement":[]}"#, Inline), "Syntax errors in policy.");
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#, Inline),
        "Syntax errors in policy."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Bogus":1,"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#,
            Inline
        ),
        "Syntax errors in policy."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringFoo":{"a":"b"}}}}"#,
            Inline
        ),
        "Syntax errors in policy."
    );
    assert_eq!(
        err(r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}"#, Managed),
        "Policy document must be version 2012-10-17 or greater."
    );
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#, Inline),
        "The policy failed legacy parsing"
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":[{"Sid":"x","Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"x","Effect":"Allow","Action":"*","Resource":"*"}]}"#,
            Inline
        ),
        "Statement IDs (SID) in a single policy must be unique."
    );
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Resource":"*"}}"#, Inline),
        "Policy statement must contain actions."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"bucket"}}"#,
            Inline
        ),
        "Resource bucket must be in ARN format or \"*\"."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
            Inline
        ),
        "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:a:b","Resource":"*"}}"#,
            Inline
        ),
        "Actions/Condition can contain only one colon."
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
            Managed
        ),
        "Policy document should not specify a principal."
    );
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*"}}"#, Inline),
        "Policy statement must contain resources."
    );
}

#[test]
fn trust_policy_rules() {
    use PolicyKind::Trust;
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole","Resource":"*"}}"#,
            Trust
        ),
        "Has prohibited field Resource"
    );
    assert_eq!(
        err(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#, Trust),
        "Missing required field Principal"
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}}"#,
            Trust
        ),
        "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity"
    );
    assert_eq!(
        err(
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:sts::123456789012:assumed-role/R/*"},"Action":"sts:AssumeRole"}}"#,
            Trust
        ),
        r#"Invalid principal in policy: "AWS":"arn:aws:sts::123456789012:assumed-role/R/*""#
    );
    let irsa = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE:sub":"system:serviceaccount:kube-system:aws-node"}}}]}"#;
    let doc = PolicyDocument::parse(irsa, Trust).unwrap();
    assert_eq!(doc.statements()[0].conditions.len(), 1);
    let old = r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:root"]},"Action":"sts:AssumeRole"}}"#;
    assert_eq!(PolicyDocument::parse(old, Trust).unwrap().aws_principals().count(), 2);
}

#[test]
fn condition_values_and_operators() {
    let text = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":10},"ForAnyValue:StringLikeIfExists":{"aws:TagKeys":["a*","b"]}}}}"#;
    let doc = PolicyDocument::parse(text, PolicyKind::Inline).unwrap();
    let conds = &doc.statements()[0].conditions;
    assert_eq!(conds.len(), 3);
    assert!(conds.iter().any(|c| c.values == vec!["true".to_owned()]));
    assert!(conds.iter().any(|c| c.values == vec!["10".to_owned()]));
    let set = conds.iter().find(|c| c.operator.set.is_some()).unwrap();
    assert_eq!(
        set.operator,
        Operator { set: Some(SetQualifier::ForAnyValue), base: BaseOperator::StringLike, if_exists: true }
    );
    assert_eq!(Operator::parse("NullIfExists"), None);
}

#[test]
fn serde_keeps_text() {
    let doc = PolicyDocument::parse(ALLOW_ALL, PolicyKind::Inline).unwrap();
    let json = serde_json::to_string(&doc).unwrap();
    let back: PolicyDocument = serde_json::from_str(&json).unwrap();
    assert_eq!(back, doc);
}
