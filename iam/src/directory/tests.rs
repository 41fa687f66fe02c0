//! IAM operations: AWS's error codes, statuses and texts, bootstrap, node roles, and the serde round trip.

use super::*;
use crate::sts::{AssumeRoleRequest, KeyLookup};

fn t0() -> Timestamp {
    "2026-03-01T00:00:00Z".parse().unwrap()
}

const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}"#;
const INLINE: &str =
    r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}}"#;

fn role<'a>(name: &'a str) -> CreateRole<'a> {
    CreateRole { name, assume_role_policy_document: TRUST, ..CreateRole::default() }
}

fn check(e: Error, code: &str, status: u16, message: &str) {
    assert_eq!((e.code(), e.status(), e.message()), (code, status, message));
}

#[test]
fn bootstrap_admin() {
    let d = Directory::bootstrap(Account::default(), t0());
    let key = d.admin_access_key().unwrap();
    assert!(key.access_key_id.starts_with("AKIA"));
    assert_eq!(key.access_key_id.len(), 20);
    assert_eq!(key.secret_access_key.len(), 40);
    // Deterministic from the seed: the lab can print it.
    let again = Directory::bootstrap(Account::default(), t0());
    assert_eq!(again.admin_access_key(), d.admin_access_key());
    let other = Directory::bootstrap(Account::new("123456789012", "other-seed"), t0());
    assert_ne!(other.admin_access_key().unwrap().access_key_id, key.access_key_id);
    let KeyLookup::Valid(c) = d.lookup_access_key(&key.access_key_id, t0()) else { panic!() };
    assert_eq!(c.identity.arn(), "arn:aws:iam::123456789012:user/admin");
    let ctx = d.request_context(&c.identity, t0());
    let decision = d.authorize(&c.identity, "iam:CreateRole", "arn:aws:iam::123456789012:role/x", &ctx);
    assert!(decision.is_allowed());
    assert_eq!(
        decision.statement.unwrap().policy,
        PolicySource::Managed { arn: "arn:aws:iam::aws:policy/AdministratorAccess".into() }
    );
}

#[test]
fn role_lifecycle_and_messages() {
    let mut d = Directory::new(Account::default());
    let r = d.create_role(role("node"), t0()).unwrap();
    assert!(r.id.starts_with("AROA"));
    assert_eq!(r.arn, "arn:aws:iam::123456789012:role/node");
    assert_eq!(r.max_session_duration, 3600);
    assert_eq!(r.assume_role_policy.text(), TRUST);
    check(
        d.create_role(role("NODE"), t0()).unwrap_err(),
        "EntityAlreadyExists",
        409,
        "Role with name NODE already exists.",
    );
    check(d.get_role("nope").unwrap_err(), "NoSuchEntity", 404, "The role with name nope cannot be found.");
    check(
        d.create_role(role("bad name"), t0()).unwrap_err(),
        "ValidationError",
        400,
        r"1 validation error detected: Value 'bad name' at 'roleName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]+",
    );
    check(
        d.create_role(CreateRole { max_session_duration: Some(60), ..role("short") }, t0()).unwrap_err(),
        "ValidationError",
        400,
        "1 validation error detected: Value '60' at 'maxSessionDuration' failed to satisfy constraint: Member must have value greater than or equal to 3600",
    );
    check(
        d.create_role(CreateRole { path: Some("nopath"), ..role("p") }, t0()).unwrap_err(),
        "ValidationError",
        400,
        "The specified value for path is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters.",
    );
    let with_path = d.create_role(CreateRole { path: Some("/eks/"), ..role("pathed") }, t0()).unwrap();
    assert_eq!(with_path.arn, "arn:aws:iam::123456789012:role/eks/pathed");
    assert_eq!(d.list_roles(Some("/eks/")).len(), 1);
    assert_eq!(d.list_roles(None).len(), 2);

    // Trust policies that name missing users or roles of the account are refused.
    let names_ghost = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/ghost"},"Action":"sts:AssumeRole"}}"#;
    check(
        d.create_role(CreateRole { assume_role_policy_document: names_ghost, ..role("x") }, t0())
            .unwrap_err(),
        "MalformedPolicyDocument",
        400,
        r#"Invalid principal in policy: "AWS":"arn:aws:iam::123456789012:role/ghost""#,
    );
    let names_node = names_ghost.replace("ghost", "node");
    assert!(
        d.create_role(CreateRole { assume_role_policy_document: &names_node, ..role("x") }, t0()).is_ok()
    );

    // Managed policies.
    let cni = "arn:aws:iam::aws:policy/AmazonEKS_CNI_Policy";
    d.attach_role_policy("node", cni).unwrap();
    d.attach_role_policy("node", cni).unwrap();
    let attached = d.list_attached_role_policies("node").unwrap();
    assert_eq!(
        attached,
        vec![AttachedPolicy { policy_name: "AmazonEKS_CNI_Policy".into(), policy_arn: cni.into() }]
    );
    check(
        d.attach_role_policy("node", "arn:aws:iam::aws:policy/AmazonEK_CNI_Policy").unwrap_err(),
        "NoSuchEntity",
        404,
        "Policy arn:aws:iam::aws:policy/AmazonEK_CNI_Policy does not exist or is not attachable.",
    );
    check(
        d.attach_role_policy("ghost", cni).unwrap_err(),
        "NoSuchEntity",
        404,
        "The role with name ghost cannot be found.",
    );
    assert_eq!(d.attachment_count(cni), 1);

    // Inline policies.
    d.put_role_policy("node", "s3", INLINE).unwrap();
    assert_eq!(d.list_role_policies("node").unwrap(), vec!["s3"]);
    assert_eq!(d.get_role_policy("node", "s3").unwrap().text(), INLINE);
    check(
        d.get_role_policy("node", "nope").unwrap_err(),
        "NoSuchEntity",
        404,
        "The role policy with name nope cannot be found.",
    );
    check(
        d.put_role_policy("node", "bad", r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#)
            .unwrap_err(),
        "MalformedPolicyDocument",
        400,
        "Policy document should not specify a principal.",
    );

    // Deleting needs everything detached, in AWS's order.
    d.create_instance_profile("node", None, t0()).unwrap();
    d.add_role_to_instance_profile("node", "node").unwrap();
    check(
        d.delete_role("node").unwrap_err(),
        "DeleteConflict",
        409,
        "Cannot delete entity, must remove roles from instance profile first.",
    );
    d.instance_profiles.get_mut("node").unwrap().roles.clear();
    check(
        d.delete_role("node").unwrap_err(),
        "DeleteConflict",
        409,
        "Cannot delete entity, must detach all policies first.",
    );
    d.detach_role_policy("node", cni).unwrap();
    check(
        d.detach_role_policy("node", cni).unwrap_err(),
        "NoSuchEntity",
        404,
        &format!("Policy {cni} was not found."),
    );
    check(
        d.delete_role("node").unwrap_err(),
        "DeleteConflict",
        409,
        "Cannot delete entity, must delete policies first.",
    );
    d.delete_role_policy("node", "s3").unwrap();
    d.delete_role("node").unwrap();
    assert!(d.get_role("node").is_err());
}

#[test]
fn policies_profiles_users_providers() {
    let mut d = Directory::new(Account::default());
    let p = d.create_policy("ecr-pull", None, INLINE, Some("pull"), t0()).unwrap();
    assert_eq!(p.arn, "arn:aws:iam::123456789012:policy/ecr-pull");
    assert!(p.id.starts_with("ANPA"));
    check(
        d.create_policy("ecr-pull", None, INLINE, None, t0()).unwrap_err(),
        "EntityAlreadyExists",
        409,
        "A policy called ecr-pull already exists. Duplicate names are not allowed.",
    );
    check(
        d.create_policy(
            "old",
            None,
            r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#,
            None,
            t0(),
        )
        .unwrap_err(),
        "MalformedPolicyDocument",
        400,
        "Policy document must be version 2012-10-17 or greater.",
    );
    let aws = d.get_policy("arn:aws:iam::aws:policy/AmazonEKSWorkerNodePolicy").unwrap();
    assert!(aws.aws_managed);
    assert_eq!(aws.default_version_id, "v3");
    assert!(aws.document.text().contains("eks-auth:AssumeRoleForPodIdentity"));
    check(
        d.get_policy("arn:aws:iam::123456789012:policy/nope").unwrap_err(),
        "NoSuchEntity",
        404,
        "Policy arn:aws:iam::123456789012:policy/nope was not found.",
    );
    assert_eq!(d.list_policies().len(), managed::CATALOGUE.len() + 1);

    check(
        d.get_instance_profile("nope").unwrap_err(),
        "NoSuchEntity",
        404,
        "Instance Profile nope cannot be found.",
    );
    let profile = d.create_node_role("eks-node", t0()).unwrap();
    assert_eq!(profile.arn, "arn:aws:iam::123456789012:instance-profile/eks-node");
    assert!(profile.id.starts_with("AIPA"));
    assert_eq!(profile.roles, vec!["eks-node".to_owned()]);
    check(
        d.create_instance_profile("eks-node", None, t0()).unwrap_err(),
        "EntityAlreadyExists",
        409,
        "Instance Profile eks-node already exists.",
    );
    d.create_role(role("second"), t0()).unwrap();
    check(
        d.add_role_to_instance_profile("eks-node", "second").unwrap_err(),
        "LimitExceeded",
        409,
        "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1",
    );
    assert_eq!(d.list_attached_role_policies("eks-node").unwrap().len(), 3);

    let u = d.create_user("alice", None, t0()).unwrap();
    assert!(u.id.starts_with("AIDA"));
    check(
        d.create_user("Alice", None, t0()).unwrap_err(),
        "EntityAlreadyExists",
        409,
        "User with name Alice already exists.",
    );
    check(d.get_user("bob").unwrap_err(), "NoSuchEntity", 404, "The user with name bob cannot be found.");
    let k1 = d.create_access_key("alice", t0()).unwrap();
    d.create_access_key("alice", t0()).unwrap();
    check(
        d.create_access_key("alice", t0()).unwrap_err(),
        "LimitExceeded",
        409,
        "Cannot exceed quota for AccessKeysPerUser: 2",
    );
    d.update_access_key("alice", &k1.access_key_id, KeyStatus::Inactive).unwrap();
    let lookup = d.lookup_access_key(&k1.access_key_id, t0());
    assert!(matches!(lookup, KeyLookup::Inactive(_)));
    assert_eq!(lookup.error().unwrap().code(), "InvalidClientTokenId");
    d.delete_access_key("alice", &k1.access_key_id).unwrap();
    assert_eq!(d.list_access_keys("alice").unwrap().len(), 1);

    let url = "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";
    let thumb = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"];
    let input = CreateOidcProvider { url, client_ids: &["sts.amazonaws.com"], thumbprints: &thumb };
    let p = d.create_open_id_connect_provider(input, t0()).unwrap();
    assert_eq!(
        p.arn,
        "arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    );
    assert_eq!(p.url, "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE");
    let arn = p.arn.clone();
    assert_eq!(
        d.get_open_id_connect_provider(&arn).unwrap().client_ids,
        vec!["sts.amazonaws.com".to_owned()]
    );
    check(
        d.create_open_id_connect_provider(input, t0()).unwrap_err(),
        "EntityAlreadyExists",
        409,
        &format!("Provider with url {url} already exists."),
    );
    check(
        d.get_open_id_connect_provider("arn:aws:iam::123456789012:oidc-provider/x").unwrap_err(),
        "NoSuchEntity",
        404,
        "OpenIDConnect Provider not found for arn arn:aws:iam::123456789012:oidc-provider/x",
    );
}

#[test]
fn serde_round_trip() {
    let mut d = Directory::bootstrap(Account::default(), t0());
    d.create_node_role("eks-node", t0()).unwrap();
    d.create_policy("custom", Some("/lab/"), INLINE, None, t0()).unwrap();
    d.put_role_policy("eks-node", "extra", INLINE).unwrap();
    d.create_open_id_connect_provider(
        CreateOidcProvider {
            url: "https://oidc.example/id/1",
            client_ids: &["sts.amazonaws.com"],
            thumbprints: &[],
        },
        t0(),
    )
    .unwrap();
    d.instance_profile_credentials("eks-node", "i-0abc", 3600, t0()).unwrap();
    let json = d.to_json().unwrap();
    let back = Directory::from_json(&json).unwrap();
    assert_eq!(back, d);
    // The generator's state survives: the reloaded directory issues fresh identifiers.
    let mut a = d.clone();
    let mut b = back;
    let ra = a.create_role(role("after"), t0()).unwrap().id.clone();
    let rb = b.create_role(role("after"), t0()).unwrap().id.clone();
    assert_eq!(ra, rb);
    assert_ne!(ra, d.get_role("eks-node").unwrap().id);
    // The original trust policy text survives byte for byte.
    assert_eq!(b.get_role("eks-node").unwrap().assume_role_policy.text(), EC2_TRUST_POLICY);
    let req = AssumeRoleRequest {
        role_arn: "arn:aws:iam::123456789012:role/eks-node",
        role_session_name: "i-1",
        duration_seconds: None,
    };
    assert!(b.assume_role_as_service("ec2.amazonaws.com", req, t0()).is_ok());
}
