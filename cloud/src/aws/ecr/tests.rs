//! ECR's operations against a bootstrapped account: each answer goes through botocore's own
//! JSON parser and the ECR model (skipped cleanly without python3 and botocore), errors carry
//! AWS's codes and texts, and a token round-trips to the identity that asked.

use std::process::Command;

use jiff::Timestamp;
use netlab_aws::{Input, Service};
use netlab_iam::Identity;
use serde_json::{Value, json};

use super::*;
use crate::aws::Caller;

pub(crate) fn now() -> Timestamp {
    Timestamp::from_second(1_767_225_600).unwrap() // 2026-01-01T00:00:00Z
}

/// The bootstrapped account with the catalogue's repositories, a user `dev` without policies
/// and a user `reader` with AmazonEC2ContainerRegistryReadOnly.
pub(crate) fn account() -> Account {
    let mut account = Account::bootstrap(&netlab_ec2::Ec2Config::default(), now()).unwrap();
    account.ecr = EcrState::with_catalogue(now());
    account.iam.create_user("dev", None, now()).unwrap();
    account.iam.create_user("reader", None, now()).unwrap();
    account
        .iam
        .attach_user_policy("reader", "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly")
        .unwrap();
    account
}

pub(crate) fn user(account: &Account, name: &str) -> Identity {
    let u = account.iam.get_user(name).unwrap();
    Identity::User { name: u.name.clone(), id: u.id.clone(), arn: u.arn.clone() }
}

fn call(account: &mut Account, who: &str, action: &str, input: Value) -> Result<Value, AwsError> {
    let caller = Caller {
        identity: user(account, who),
        access_key_id: "AKIAEXAMPLE".into(),
        source_ip: "10.0.0.1".parse().unwrap(),
    };
    let input = Input::Json(input);
    let call = Call {
        action,
        input: &input,
        caller: &caller,
        request_id: "req-1",
        protocol: Service::Ecr.protocol(),
        now: now(),
    };
    let resp = handle(account, &call)?;
    assert_eq!(resp.headers()["content-type"], "application/x-amz-json-1.1");
    Ok(serde_json::from_slice(resp.body()).unwrap())
}

fn ok(account: &mut Account, action: &str, input: Value) -> Value {
    call(account, "admin", action, input).unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// botocore's parse of `body` as `op`'s output (or error, for a non-200 `status`), as JSON
/// (timestamps as their ISO text); `None` without python3 and botocore.
fn botocore(op: &str, body: &[u8], status: u16) -> Option<Value> {
    const SCRIPT: &str = r#"
import json, sys
import botocore.session
from botocore import parsers
op, status = sys.argv[1], int(sys.argv[2])
model = botocore.session.get_session().get_service_model("ecr")
shape = model.operation_model(op).output_shape
headers = {"x-amzn-requestid": "req-1"}
r = parsers.create_parser("json").parse({"body": sys.stdin.buffer.read(), "headers": headers, "status_code": status}, shape)
print(json.dumps(r, default=lambda v: v.isoformat()))
"#;
    let available =
        Command::new("python3").args(["-c", "import botocore"]).status().is_ok_and(|s| s.success());
    if !available {
        eprintln!("skipped: python3 with botocore not found");
        return None;
    }
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT, op, &status.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "botocore failed on {op}");
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

fn parsed(op: &str, out: &Value) -> Option<Value> {
    botocore(op, out.to_string().as_bytes(), 200)
}

#[test]
fn authorization_token_round_trips_to_the_caller() {
    let mut account = account();
    let out = ok(&mut account, "GetAuthorizationToken", json!({}));
    let data = &out["authorizationData"][0];
    assert_eq!(data["proxyEndpoint"], "https://123456789012.dkr.ecr.us-east-1.amazonaws.com");
    assert_eq!(data["expiresAt"], json!(now().as_second() + 12 * 3600));
    let decoded = token::decode(data["authorizationToken"].as_str().unwrap()).unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let password = decoded.strip_prefix("AWS:").unwrap();
    let admin = user(&account, "admin");
    assert_eq!(account.ecr.authenticate(password, "us-east-1", now()), Ok(admin.clone()));
    assert_eq!(account.ecr.authenticate(password, "eu-west-1", now()), Err(TokenError::Unknown));
    let later = now() + TOKEN_LIFETIME;
    assert_eq!(account.ecr.authenticate(password, "us-east-1", later), Err(TokenError::Expired));
    assert_eq!(account.ecr.authenticate("nope", "us-east-1", now()), Err(TokenError::Unknown));
    // The key survives the account's JSON file, and with it every token issued.
    let kept: EcrState = serde_json::from_str(&serde_json::to_string(&account.ecr).unwrap()).unwrap();
    assert_eq!(kept.authenticate(password, "us-east-1", now()), Ok(admin));

    if let Some(p) = parsed("GetAuthorizationToken", &out) {
        let d = &p["authorizationData"][0];
        assert_eq!(d["expiresAt"], "2026-01-01T12:00:00+00:00");
        assert_eq!(d["proxyEndpoint"], "https://123456789012.dkr.ecr.us-east-1.amazonaws.com");
    }
}

#[test]
fn a_user_without_the_permission_gets_aws_access_denied() {
    let mut account = account();
    let e = call(&mut account, "dev", "GetAuthorizationToken", json!({})).unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert_eq!(
        e.message,
        "User: arn:aws:iam::123456789012:user/dev is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action"
    );
    assert!(call(&mut account, "reader", "GetAuthorizationToken", json!({})).is_ok());
    let e = call(&mut account, "reader", "CreateRepository", json!({"repositoryName": "x1"})).unwrap_err();
    assert!(e.message.ends_with("on resource: arn:aws:ecr:us-east-1:123456789012:repository/x1 because no identity-based policy allows the ecr:CreateRepository action"), "{}", e.message);
}

#[test]
fn repositories_are_created_described_and_deleted() {
    let mut account = account();
    let out = ok(&mut account, "DescribeRepositories", json!({}));
    let names: Vec<&str> = out["repositories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["repositoryName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["agnhost", "busybox", "netlab/echo", "nginx"]);

    let created = ok(
        &mut account,
        "CreateRepository",
        json!({"repositoryName": "team/app", "imageTagMutability": "IMMUTABLE"}),
    );
    let repo = &created["repository"];
    assert_eq!(repo["repositoryArn"], "arn:aws:ecr:us-east-1:123456789012:repository/team/app");
    assert_eq!(repo["repositoryUri"], "123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app");
    if let Some(p) = parsed("CreateRepository", &created) {
        assert_eq!(p["repository"]["createdAt"], "2026-01-01T00:00:00+00:00");
        assert_eq!(p["repository"]["imageTagMutability"], "IMMUTABLE");
        assert_eq!(p["repository"]["encryptionConfiguration"]["encryptionType"], "AES256");
    }
    let e =
        call(&mut account, "admin", "CreateRepository", json!({"repositoryName": "team/app"})).unwrap_err();
    assert_eq!(e.code, "RepositoryAlreadyExistsException");
    assert_eq!(
        e.message,
        "The repository with name 'team/app' already exists in the registry with id '123456789012'"
    );
    let e =
        call(&mut account, "admin", "CreateRepository", json!({"repositoryName": "Bad_Name!"})).unwrap_err();
    assert_eq!((e.code.as_ref(), e.message.as_str()), ("InvalidParameterException", NAME_CONSTRAINT));
    let e = call(&mut account, "admin", "CreateRepository", json!({})).unwrap_err();
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'repositoryName' failed to satisfy constraint: Member must not be null"
    );

    let described = ok(&mut account, "DescribeRepositories", json!({"repositoryNames": ["team/app"]}));
    if let Some(p) = parsed("DescribeRepositories", &described) {
        assert_eq!(p["repositories"][0]["repositoryName"], "team/app");
    }
    let e = call(&mut account, "admin", "DescribeRepositories", json!({"repositoryNames": ["nope"]}))
        .unwrap_err();
    assert_eq!(e.code, "RepositoryNotFoundException");
    assert_eq!(
        e.message,
        "The repository with name 'nope' does not exist in the registry with id '123456789012'"
    );
    if let Some(p) = botocore("DescribeRepositories", &error_body(&e), 400) {
        assert_eq!(p["Error"]["Code"], "RepositoryNotFoundException");
        assert_eq!(p["Error"]["Message"], e.message);
    }

    let e = call(&mut account, "admin", "DeleteRepository", json!({"repositoryName": "nginx"})).unwrap_err();
    assert_eq!(e.code, "RepositoryNotEmptyException");
    assert_eq!(
        e.message,
        "The repository with name 'nginx' in registry with id '123456789012' cannot be deleted because it still contains images"
    );
    let deleted = ok(&mut account, "DeleteRepository", json!({"repositoryName": "team/app"}));
    if let Some(p) = parsed("DeleteRepository", &deleted) {
        assert_eq!(p["repository"]["repositoryName"], "team/app");
    }
    assert!(account.ecr.repository("team/app").is_none());
    ok(&mut account, "DeleteRepository", json!({"repositoryName": "nginx", "force": true}));
    assert!(account.ecr.repository("nginx").is_none());
}

fn error_body(e: &AwsError) -> Vec<u8> {
    netlab_aws::protocol::render_error(&Service::Ecr.protocol(), e, "req-1").into_body().to_vec()
}

#[test]
fn images_carry_the_registry_digests() {
    let mut account = account();
    let public = Registry::from_catalog();
    let latest = public.manifest("library/nginx", "latest").unwrap();

    let out = ok(&mut account, "DescribeImages", json!({"repositoryName": "nginx"}));
    let details = out["imageDetails"].as_array().unwrap();
    assert_eq!(details.len(), crate::registry::catalog::REPOSITORIES[0].tags.len());
    let d = details.iter().find(|d| d["imageTags"] == json!(["latest"])).unwrap();
    assert_eq!(d["imageDigest"], latest.digest.as_str());
    assert!(d["imageSizeInBytes"].as_u64().unwrap() > 0);
    if let Some(p) = parsed("DescribeImages", &out) {
        let d = &p["imageDetails"][0];
        assert_eq!(d["imagePushedAt"], "2024-01-01T00:00:00+00:00");
        assert_eq!(d["imageManifestMediaType"], crate::registry::image::MANIFEST_MEDIA_TYPE);
        assert!(d["imageSizeInBytes"].as_u64().is_some());
    }
    let e = call(
        &mut account,
        "admin",
        "DescribeImages",
        json!({"repositoryName": "nginx", "imageIds": [{"imageTag": "9"}]}),
    )
    .unwrap_err();
    assert_eq!(e.code, "ImageNotFoundException");
    assert_eq!(
        e.message,
        "The image with imageId {imageDigest:'null', imageTag:'9'} does not exist within the repository with name 'nginx' in the registry with id '123456789012'"
    );

    let out = ok(
        &mut account,
        "BatchGetImage",
        json!({"repositoryName": "nginx", "imageIds": [{"imageTag": "latest"}, {"imageDigest": latest.digest}, {"imageTag": "9"}]}),
    );
    assert_eq!(out["images"][0]["imageManifest"], std::str::from_utf8(&latest.bytes).unwrap());
    assert_eq!(out["images"][0]["imageId"], json!({"imageDigest": latest.digest, "imageTag": "latest"}));
    assert_eq!(out["images"][1]["imageId"], json!({"imageDigest": latest.digest}));
    assert_eq!(
        out["failures"],
        json!([{"imageId": {"imageTag": "9"}, "failureCode": "ImageNotFound", "failureReason": "Requested image not found"}])
    );
    if let Some(p) = parsed("BatchGetImage", &out) {
        assert_eq!(p["images"][0]["imageId"]["imageDigest"], latest.digest.as_str());
        assert_eq!(p["failures"][0]["failureCode"], "ImageNotFound");
    }
}

#[test]
fn repository_policies() {
    let mut account = account();
    let e =
        call(&mut account, "admin", "GetRepositoryPolicy", json!({"repositoryName": "busybox"})).unwrap_err();
    assert_eq!(e.code, "RepositoryPolicyNotFoundException");
    assert_eq!(
        e.message,
        "Repository policy does not exist for the repository with name 'busybox' in the registry with id '123456789012'"
    );
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":{"AWS":"*"},"Action":["ecr:BatchGetImage"]}]}"#;
    let out =
        ok(&mut account, "SetRepositoryPolicy", json!({"repositoryName": "busybox", "policyText": policy}));
    if let Some(p) = parsed("SetRepositoryPolicy", &out) {
        assert_eq!(p["policyText"], policy);
    }
    let out = ok(&mut account, "GetRepositoryPolicy", json!({"repositoryName": "busybox"}));
    assert_eq!(out["policyText"], policy);
    if let Some(p) = parsed("GetRepositoryPolicy", &out) {
        assert_eq!(p["registryId"], "123456789012");
    }
    let e = call(
        &mut account,
        "admin",
        "SetRepositoryPolicy",
        json!({"repositoryName": "busybox", "policyText": "{"}),
    )
    .unwrap_err();
    assert_eq!(e.code, "InvalidParameterException");
    assert_eq!(
        e.message,
        "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'"
    );
}

#[test]
fn unknown_operations_are_awsjson_unknown_operation() {
    let mut account = account();
    let e = call(&mut account, "admin", "PutImage", json!({})).unwrap_err();
    assert_eq!(e.code, "UnknownOperationException");
}
