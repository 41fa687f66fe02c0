//! Tests for reading requests and writing responses in the three protocols; the rendered
//! responses are also fed to botocore's own parsers, as the aws CLI would read them.

use std::process::Command;

use http::Request;
use serde_json::json;

use super::*;
use crate::error::AuthError;

const RID: &str = "c6104cbe-af31-11e0-8154-cbc7ccf896c7";

fn sts() -> Protocol {
    Service::Sts.protocol()
}

fn ecr() -> Protocol {
    Service::Ecr.protocol()
}

fn post(body: &str) -> Request<Vec<u8>> {
    Request::post("/")
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn json_req(target: Option<&str>, body: &str) -> Request<Vec<u8>> {
    let mut b = Request::post("/").header("content-type", JSON_1_1);
    if let Some(t) = target {
        b = b.header("x-amz-target", t);
    }
    b.body(body.as_bytes().to_vec()).unwrap()
}

fn query_input(op: Operation) -> Params {
    match op.input {
        Input::Query(p) => p,
        Input::Json(_) => panic!("expected Query input"),
    }
}

// --- services -----------------------------------------------------------------------------

#[test]
fn services_and_protocols() {
    for s in [Service::Ec2, Service::Iam, Service::Sts, Service::Ecr] {
        assert_eq!(Service::from_signing_name(s.signing_name()), Some(s));
    }
    assert_eq!(Service::from_signing_name("s3"), None);
    assert_eq!(Service::Iam.protocol(), Protocol::AwsQuery { xmlns: IAM_XMLNS });
    assert_eq!(Service::Ec2.protocol(), Protocol::Ec2);
    assert_ne!(request_id(), request_id());
    assert_eq!(request_id().len(), 36);
}

// --- reading requests ---------------------------------------------------------------------

#[test]
fn query_post_body() {
    let op = parse_request(
        &sts(),
        &post("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&RoleSessionName=a+b"),
    )
    .unwrap();
    assert_eq!(op.action, "AssumeRoleWithWebIdentity");
    let p = query_input(op);
    assert_eq!(p.get("RoleArn"), Some("arn:aws:iam::1:role/x"));
    assert_eq!(p.get("RoleSessionName"), Some("a b"));
    assert_eq!(p.get("Action"), None);
    assert_eq!(p.get("Version"), None);
}

#[test]
fn query_get_string_without_presign_params() {
    let req = Request::get("/?Action=DescribeNetworkInterfaces&Version=2016-11-15&NetworkInterfaceId.1=eni-1&X-Amz-Date=20261207T100000Z")
        .body(Vec::new())
        .unwrap();
    let op = parse_request(&Protocol::Ec2, &req).unwrap();
    assert_eq!(op.action, "DescribeNetworkInterfaces");
    let p = query_input(op);
    assert_eq!(p.list("NetworkInterfaceId"), ["eni-1"]);
    assert_eq!(p.get("X-Amz-Date"), None);
}

#[test]
fn query_errors() {
    assert_eq!(parse_request(&sts(), &post("Version=2011-06-15")), Err(ProtocolError::MissingAction));
    assert_eq!(
        parse_request(&sts(), &post("Action=GetCallerIdentity&X=%zz")),
        Err(ProtocolError::MalformedQueryString {
            detail: "Illegal hex character in escape % pattern: %zz".into()
        })
    );
    assert_eq!(
        parse_request(&sts(), &post("Action=GetCallerIdentity&X=%4")),
        Err(ProtocolError::MalformedQueryString { detail: "Incomplete trailing escape % sequence".into() })
    );
    assert_eq!(
        parse_request(&sts(), &post("Action=GetCallerIdentity&X=%ff")),
        Err(ProtocolError::MalformedQueryString { detail: "The query string is not valid UTF-8".into() })
    );
}

#[test]
fn json_requests() {
    let op = parse_request(
        &ecr(),
        &json_req(Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken"), "{}"),
    )
    .unwrap();
    assert_eq!(op, Operation { action: "GetAuthorizationToken".into(), input: Input::Json(json!({})) });

    let empty = parse_request(
        &ecr(),
        &json_req(Some("AmazonEC2ContainerRegistry_V20150921.DescribeRepositories"), ""),
    )
    .unwrap();
    assert_eq!(empty.input, Input::Json(json!({})));

    for target in
        [None, Some("Other_V1.GetAuthorizationToken"), Some("AmazonEC2ContainerRegistry_V20150921.")]
    {
        assert!(matches!(
            parse_request(&ecr(), &json_req(target, "{}")),
            Err(ProtocolError::UnknownOperation { .. })
        ));
    }
    let target = Some("AmazonEC2ContainerRegistry_V20150921.GetAuthorizationToken");
    assert!(matches!(
        parse_request(&ecr(), &json_req(target, "{not json")),
        Err(ProtocolError::Serialization { .. })
    ));
    assert_eq!(
        parse_request(&ecr(), &json_req(target, "[1]")),
        Err(ProtocolError::Serialization {
            detail: "Start of structure or map found where not expected.".into()
        })
    );
}

// --- writing errors -----------------------------------------------------------------------

fn body(resp: &Response<Bytes>) -> &str {
    std::str::from_utf8(resp.body()).unwrap()
}

#[test]
fn ec2_error_shape() {
    let err = AuthError::InvalidClientTokenId.to_aws_error(&Protocol::Ec2);
    let resp = render_error(&Protocol::Ec2, &err, RID);
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(resp.headers()["content-type"], "text/xml;charset=UTF-8");
    assert_eq!(
        body(&resp),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>AuthFailure</Code><Message>AWS was not able to validate the provided access credentials</Message></Error></Errors><RequestID>{RID}</RequestID></Response>"
        )
    );
}

#[test]
fn query_error_shape() {
    let iam = Service::Iam.protocol();
    let err =
        AwsError::new("NoSuchEntity", "The role with name x cannot be found.", StatusCode::NOT_FOUND, true);
    let resp = render_error(&iam, &err, RID);
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["content-type"], "text/xml");
    assert_eq!(resp.headers()["x-amzn-requestid"], RID);
    assert_eq!(
        body(&resp),
        format!(
            "<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The role with name x cannot be found.</Message></Error><RequestId>{RID}</RequestId></ErrorResponse>"
        )
    );
    let internal = render_error(&sts(), &AwsError::internal("boom <&>"), RID);
    assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        body(&internal).contains(
            "<Type>Receiver</Type><Code>InternalFailure</Code><Message>boom &lt;&amp;&gt;</Message>"
        )
    );
}

#[test]
fn json_error_shape() {
    let err = AuthError::InvalidClientTokenId.to_aws_error(&ecr());
    let resp = render_error(&ecr(), &err, RID);
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(resp.headers()["content-type"], JSON_1_1);
    assert_eq!(resp.headers()["x-amzn-errortype"], "UnrecognizedClientException");
    assert_eq!(resp.headers()["x-amzn-requestid"], RID);
    let v: serde_json::Value = serde_json::from_slice(resp.body()).unwrap();
    assert_eq!(
        v,
        json!({"__type": "UnrecognizedClientException", "message": "The security token included in the request is invalid."})
    );
    let unknown = ProtocolError::UnknownOperation { target: None }.to_aws_error(&ecr());
    assert_eq!(body(&render_error(&ecr(), &unknown, RID)), r#"{"__type":"UnknownOperationException"}"#);
}

// --- writing successes --------------------------------------------------------------------

fn caller_identity() -> Response<Bytes> {
    query_response("GetCallerIdentity", STS_XMLNS, RID, |w| {
        w.elem("Arn", "arn:aws:iam::123456789012:user/dev")
            .elem("UserId", "AIDAEXAMPLE")
            .elem("Account", "123456789012");
    })
}

#[test]
fn query_success_envelope() {
    assert_eq!(
        body(&caller_identity()),
        format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/dev</Arn><UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>{RID}</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        )
    );
    let empty = query_empty_response("DeleteRole", IAM_XMLNS, RID);
    assert_eq!(
        body(&empty),
        format!(
            "<DeleteRoleResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><ResponseMetadata><RequestId>{RID}</RequestId></ResponseMetadata></DeleteRoleResponse>"
        )
    );
}

fn assign_ips() -> Response<Bytes> {
    ec2_response("AssignPrivateIpAddresses", RID, |w| {
        w.elem("networkInterfaceId", "eni-1")
            .items("assignedPrivateIpAddressesSet", ["10.0.0.4", "10.0.0.5"], |w, ip| {
                w.elem("privateIpAddress", ip);
            })
            .items("assignedIpv4PrefixSet", Vec::<&str>::new(), |_, _| {});
    })
}

#[test]
fn ec2_success_envelope() {
    let resp = assign_ips();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        body(&resp),
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<AssignPrivateIpAddressesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>{RID}</requestId><networkInterfaceId>eni-1</networkInterfaceId><assignedPrivateIpAddressesSet><item><privateIpAddress>10.0.0.4</privateIpAddress></item><item><privateIpAddress>10.0.0.5</privateIpAddress></item></assignedPrivateIpAddressesSet><assignedIpv4PrefixSet/></AssignPrivateIpAddressesResponse>"
        )
    );
}

#[test]
fn json_success() {
    let resp = json_response(&json!({"authorizationData": []}), RID);
    assert_eq!(resp.headers()["content-type"], JSON_1_1);
    assert_eq!(body(&resp), r#"{"authorizationData":[]}"#);
}

// --- botocore reads what we write ---------------------------------------------------------

/// Parses a response with botocore's parser for (service, operation) and prints the result as
/// JSON. argv: service, operation, status, headers JSON, body.
const BOTOCORE_PARSE: &str = r#"
import json, sys
import botocore.session
from botocore.parsers import create_parser
service, op, status, headers, body = sys.argv[1:6]
model = botocore.session.get_session().get_service_model(service)
op_model = model.operation_model(op)
parser = create_parser(model.metadata["protocol"])
parsed = parser.parse(
    {"status_code": int(status), "headers": json.loads(headers), "body": body.encode()},
    op_model.output_shape)
print(json.dumps(parsed, default=str))
"#;

/// botocore's reading of `resp`, or `None` (with a message) when python3/botocore is missing.
fn botocore_parse(service: &str, op: &str, resp: &Response<Bytes>) -> Option<serde_json::Value> {
    // botocore lower-cases header names for its parsers (HeadersDict is case-insensitive).
    let headers: serde_json::Map<String, serde_json::Value> =
        resp.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().into())).collect();
    let out = match Command::new("python3")
        .args(["-c", BOTOCORE_PARSE, service, op, resp.status().as_str()])
        .arg(serde_json::Value::Object(headers).to_string())
        .arg(body(resp))
        .output()
    {
        Ok(out) if out.status.success() => out,
        Ok(out) => {
            eprintln!("SKIPPED: botocore unavailable: {}", String::from_utf8_lossy(&out.stderr));
            return None;
        }
        Err(e) => {
            eprintln!("SKIPPED: python3 not runnable: {e}");
            return None;
        }
    };
    Some(serde_json::from_slice(&out.stdout).unwrap())
}

#[test]
fn botocore_reads_errors_in_all_three_protocols() {
    let cases = [
        ("ec2", "DescribeNetworkInterfaces", Protocol::Ec2),
        ("sts", "GetCallerIdentity", sts()),
        ("iam", "GetRole", Service::Iam.protocol()),
        ("ecr", "GetAuthorizationToken", ecr()),
    ];
    for (service, op, protocol) in cases {
        let err = AuthError::InvalidClientTokenId.to_aws_error(&protocol);
        let Some(parsed) = botocore_parse(service, op, &render_error(&protocol, &err, RID)) else {
            return;
        };
        assert_eq!(parsed["Error"]["Code"], err.code.as_ref(), "{service}: {parsed}");
        assert_eq!(parsed["Error"]["Message"], err.message.as_str(), "{service}: {parsed}");
        assert_eq!(parsed["ResponseMetadata"]["RequestId"], RID, "{service}: {parsed}");
    }
}

#[test]
fn botocore_reads_success_envelopes() {
    let Some(sts) = botocore_parse("sts", "GetCallerIdentity", &caller_identity()) else { return };
    assert_eq!(sts["Account"], "123456789012");
    assert_eq!(sts["Arn"], "arn:aws:iam::123456789012:user/dev");
    assert_eq!(sts["ResponseMetadata"]["RequestId"], RID);

    let Some(ec2) = botocore_parse("ec2", "AssignPrivateIpAddresses", &assign_ips()) else { return };
    assert_eq!(ec2["NetworkInterfaceId"], "eni-1");
    assert_eq!(
        ec2["AssignedPrivateIpAddresses"],
        json!([{"PrivateIpAddress": "10.0.0.4"}, {"PrivateIpAddress": "10.0.0.5"}])
    );
    assert_eq!(ec2["ResponseMetadata"]["RequestId"], RID);

    let ecr = json_response(
        &json!({"authorizationData": [{"authorizationToken": "QVdTOng=", "proxyEndpoint": "https://1.dkr.ecr.us-east-1.amazonaws.com"}]}),
        RID,
    );
    let Some(ecr) = botocore_parse("ecr", "GetAuthorizationToken", &ecr) else { return };
    assert_eq!(ecr["authorizationData"][0]["authorizationToken"], "QVdTOng=");
    assert_eq!(ecr["ResponseMetadata"]["RequestId"], RID);
}
