//! The built `ecr-credential-provider` against a real `netlab-cloud`: the kubelet's request in,
//! a token out that the cloud's ECR registry host takes as Basic auth; and the failures, each
//! with exit status 1 and the upstream plugin's log line on stderr.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    process::{Command, Stdio},
};

use netlab_credential_provider::{CacheKeyType, CredentialProviderResponse};
use netlab_e2e::{bin, parts::Cloud};

const HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the plugin with only `env` (as the kubelet would, minus its own environment) on the
/// kubelet's request for `image`.
fn plugin(image: &str, env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecr-credential-provider"))
        .env_clear()
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ecr-credential-provider");
    let request = format!(
        r#"{{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1","image":"{image}"}}"#
    );
    child.stdin.take().unwrap().write_all(request.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The lab admin's key, as `netlab aws env` prints it.
fn admin_key(cloud: &Cloud) -> (String, String) {
    let out = Command::new(bin("netlab"))
        .args(["aws", "env", "--endpoint", &format!("http://{}", cloud.aws)])
        .output()
        .expect("netlab aws env");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let get = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_else(|| panic!("{name} not in:\n{text}"))
    };
    (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
}

/// One request to the registry as the ECR host: the status line and body.
fn registry(cloud: &Cloud, method: &str, path: &str, auth: Option<&str>) -> (String, String) {
    let mut s = TcpStream::connect(cloud.registry).unwrap();
    let auth = auth.map(|a| format!("Authorization: Basic {a}\r\n")).unwrap_or_default();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {HOST}\r\n{auth}Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    (head.lines().next().unwrap_or("").to_string(), body.to_string())
}

#[test]
fn a_token_from_the_plugin_opens_the_ecr_registry_host() {
    let cloud = Cloud::start(&[]);
    let (id, secret) = admin_key(&cloud);
    let endpoint = format!("http://{}", cloud.aws);
    let run = plugin(
        &format!("{HOST}/nginx"),
        &[("AWS_ACCESS_KEY_ID", &id), ("AWS_SECRET_ACCESS_KEY", &secret), ("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert_eq!(run.code, Some(0), "stderr:\n{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("main.go:167] Getting creds for private image {HOST}/nginx")),
        "{}",
        run.stderr
    );
    let response: CredentialProviderResponse = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(response.api_version, "credentialprovider.kubelet.k8s.io/v1");
    assert_eq!(response.kind, "CredentialProviderResponse");
    assert_eq!(response.cache_key_type, CacheKeyType::Registry);
    // A 12-hour token: cached for half of it (a second or two of the life already spent).
    let cache = response.cache_duration().unwrap().expect("a cache duration").as_secs();
    assert!((6 * 3600 - 5..=6 * 3600).contains(&cache), "{cache}");
    let auth = &response.auth[HOST];
    assert_eq!(auth.username, "AWS");

    // The registry host refuses anonymous pulls and lets the token in.
    let (status, _) = registry(&cloud, "GET", "/v2/nginx/tags/list", None);
    assert!(status.contains("401"), "{status}");
    let basic = data_encoding::BASE64.encode(format!("AWS:{}", auth.password).as_bytes());
    let (status, body) = registry(&cloud, "GET", "/v2/nginx/tags/list", Some(&basic));
    assert!(status.contains("200"), "{status}: {body}");
    let tags: serde_json::Value = serde_json::from_str(&body).unwrap();
    let tag = tags["tags"][0].as_str().expect("a tag").to_string();
    let (status, _) = registry(&cloud, "HEAD", &format!("/v2/nginx/manifests/{tag}"), Some(&basic));
    assert!(status.contains("200"), "{status}");
}

#[test]
fn failures_exit_1_with_the_upstream_log_line() {
    let cloud = Cloud::start(&[]);
    let (id, _) = admin_key(&cloud);
    let endpoint = format!("http://{}", cloud.aws);

    // A wrong secret: ECR's answer, as the Go SDK prints it.
    let run = plugin(
        &format!("{HOST}/nginx"),
        &[("AWS_ACCESS_KEY_ID", &id), ("AWS_SECRET_ACCESS_KEY", "wrong"), ("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert_eq!(run.code, Some(1));
    assert_eq!(run.stdout, "");
    let line = run.stderr.lines().last().unwrap_or_default();
    assert!(line.starts_with('E') && line.contains("main.go:361] Error running credential provider plugin: operation error ECR: GetAuthorizationToken, https response error StatusCode: 4"), "{}", run.stderr);
    assert!(line.contains("api error "), "{line}");
    eprintln!("wrong secret: {line}");

    // No keys, IMDS at the cloud but asked from an address that is no instance's.
    let imds = format!("http://{}", cloud.imds);
    let run = plugin(
        &format!("{HOST}/nginx"),
        &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds), ("AWS_ENDPOINT_URL", &endpoint)],
    );
    assert_eq!(run.code, Some(1));
    let line = run.stderr.lines().last().unwrap_or_default();
    assert!(
        line.contains("Error running credential provider plugin: operation error ECR: GetAuthorizationToken, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, http response error StatusCode: "),
        "{}",
        run.stderr
    );
    eprintln!("unknown instance: {line}");

    // A request of another version.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ecr-credential-provider"))
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"kind":"CredentialProviderRequest","apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","image":"x"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).ends_with(
        "] Error running credential provider plugin: group version credentialprovider.kubelet.k8s.io/v1beta1 is not supported\n"
    ));
}
