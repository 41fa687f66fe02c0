//! `aws` as the AWS CLI v1 (1.45, botocore 1.43) behaves in a pod: `aws sts get-caller-identity`
//! with botocore's default credential chain, so that a pod acts as whatever its SDK would act
//! as. The chain, in botocore's order, as far as a pod can have it (no config files, no SSO, no
//! container credentials):
//!
//! 1. `env`: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`).
//! 2. `assume-role-with-web-identity`: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN` (what the
//!    EKS pod identity webhook injects for IRSA): the token file is read and traded at STS by
//!    an *unsigned* `AssumeRoleWithWebIdentity` for the role's session, named
//!    `AWS_ROLE_SESSION_NAME` or `botocore-session-<epoch seconds>`.
//! 3. `iam-role`: IMDS as botocore's `InstanceMetadataFetcher` reads it, with its 1 s timeout and
//!    one attempt: `PUT /latest/api/token`; a 200 gives a token, anything else (403/404/405, a
//!    timeout, a connection error) goes on without one (IMDSv1). Then the role's name and its
//!    keys, each a GET that must answer 200 with a body. Any failure ends the chain, quietly.
//!
//! That is what makes the hop limit matter: with `HttpPutResponseHopLimit` 1, a pod's token
//! answer dies one hop short (see `metadata.rs`), the PUT times out after 1 s, the token-less
//! GET meets IMDS's 401 (tokens are required), and the CLI says `Unable to locate credentials.
//! You can configure credentials by running "aws configure".`
//!
//! Output and errors are the CLI v1's: JSON with 4-space indents in the operation's member order
//! (`--output text` prints the values tab-separated, sorted by key; no `table`); a service error is a blank
//! line and `An error occurred (Code) when calling the Op operation: Message`; every failure
//! exits 255 (v1's `clidriver.main`; the 252/253/254 codes of the return-codes page are v2's).
//!
//! # What differs from EKS
//! - The endpoint is found as botocore finds it (`--endpoint-url`, `AWS_ENDPOINT_URL_STS`,
//!   `AWS_ENDPOINT_URL`, else `https://sts.<region>.amazonaws.com`, or `https://sts.amazonaws.com`
//!   with no region), and its name resolves through the pod's DNS to the cloud's address (the
//!   upstream resolver's `amazonaws.com` zone). But the lab's pods speak no TLS: to an `https`
//!   endpoint the tool sends the same HTTP/1.1 request in the clear to port 443, where the node
//!   routes it to the cloud's AWS endpoint (the node-agent's `--aws-api`), as its default route
//!   would carry it to AWS.
//! - No retries: botocore's legacy retry mode tries a throttled, 5xx or unanswered call up to 5
//!   times; here each call is made once.
//! - No credential cache: the CLI keeps web identity sessions in `~/.aws/cli/cache` (keyed by
//!   the role ARN) and reuses them until they expire; here every run assumes the role anew.
//! - Requests go through curl's transfer code (`curl::fetch`), so their headers are in curl's
//!   order, with the CLI's `User-Agent`.
//! - Only `sts get-caller-identity`; other commands say so.

use std::time::Duration;

use bytes::Bytes;
use jiff::Timestamp;
use netlab_credential_provider::credentials::Credentials;

use super::{
    Output, Pod,
    curl::{self, Failed},
};

/// The usage lines every argument error prints first (the v1 CLI's, its v2 note included).
const USAGE: &str = "usage: Note: AWS CLI version 2, the latest major version of the AWS CLI, is now stable and recommended for general use. For more information, see the AWS CLI version 2 installation instructions at: https://docs.aws.amazon.com/cli/latest/userguide/install-cliv2.html\n\n\
usage: aws [options] <command> <subcommand> [<subcommand> ...] [parameters]\n\
To see help text, you can run:\n\n  aws help\n  aws <command> help\n  aws <command> <subcommand> help\n";
/// What the CLI sends as `User-Agent` to IMDS and to services (1.45.11 on Linux, without the
/// feature ids and kernel version that vary per call and host).
const USER_AGENT: &str = "aws-cli/1.45.11 md/Botocore#1.43.11 ua/2.1 os/linux md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy botocore/1.43.11";
/// The default IMDS address.
const IMDS: &str = "http://169.254.169.254";
/// botocore's `DEFAULT_METADATA_SERVICE_TIMEOUT` (connect and read).
const IMDS_TIMEOUT: Duration = Duration::from_secs(1);
/// botocore's default connect and read timeouts for service calls.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(60);
/// STS's API version.
const STS_VERSION: &str = "2011-06-15";
/// The regions whose `legacy` STS endpoint is the global one.
const LEGACY_GLOBAL: &[&str] = &[
    "ap-northeast-1",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "aws-global",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
];

/// Runs `aws ARGS`; returns the exit code.
pub(super) async fn run(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    let cmd = match Command::parse(args) {
        Ok(c) => c,
        Err((text, code)) => {
            out.err(format!("{USAGE}{text}"));
            return code;
        }
    };
    if (cmd.service.as_str(), cmd.operation.as_str()) != ("sts", "get-caller-identity") {
        out.err(format!(
            "netlab: the lab's aws tool runs `aws sts get-caller-identity` only, not `aws {} {}`\n",
            cmd.service, cmd.operation
        ));
        return 255;
    }
    let env = Env(pod.env());
    let sts = Sts::new(&cmd, &env);
    match get_caller_identity(pod, &env, &sts, Timestamp::now()).await {
        Ok(identity) => {
            out.out(render(&cmd.output, &identity));
            0
        }
        Err(e) => {
            out.err(e.to_string());
            255
        }
    }
}

/// The command line: global options anywhere, then the service and the operation.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Command {
    service: String,
    operation: String,
    region: Option<String>,
    endpoint_url: Option<String>,
    output: String,
}

impl Command {
    /// Parses `args`; `Err` is the text after the usage lines and the exit code.
    fn parse(args: &[String]) -> Result<Command, (String, i32)> {
        let (mut positional, mut unknown) = (Vec::new(), Vec::new());
        let (mut region, mut endpoint_url, mut output) = (None, None, "json".to_string());
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
                _ => (arg.as_str(), None),
            };
            let mut value = |name: &str| match inline.clone().or_else(|| it.next().cloned()) {
                Some(v) => Ok(v),
                None => Err((format!("aws: error: argument {name}: expected one argument\n"), 2)),
            };
            match name {
                "--region" => region = Some(value("--region")?),
                "--endpoint-url" => endpoint_url = Some(value("--endpoint-url")?),
                "--output" => {
                    output = value("--output")?;
                    if !matches!(output.as_str(), "json" | "text" | "table") {
                        return Err((
                            "aws: error: argument --output: Invalid choice, valid choices are:\n\njson                                     | text                                    \ntable                                   \n".into(),
                            2,
                        ));
                    }
                    if output == "table" {
                        return Err((
                            "netlab: the lab's aws tool prints json and text, not table\n".into(),
                            255,
                        ));
                    }
                }
                "--profile" | "--query" | "--cli-read-timeout" | "--cli-connect-timeout" | "--color" => {
                    value(name)?;
                }
                "--no-cli-pager" | "--no-paginate" | "--no-verify-ssl" | "--debug" | "--no-sign-request" => {}
                n if n.starts_with('-') => unknown.push(arg.clone()),
                _ => positional.push(arg.clone()),
            }
        }
        let mut positional = positional.into_iter();
        let Some(service) = positional.next() else {
            return Err(("aws: error: the following arguments are required: command\n".into(), 2));
        };
        let Some(operation) = positional.next() else {
            return Err(("aws: error: the following arguments are required: operation\n".into(), 2));
        };
        unknown.extend(positional);
        if !unknown.is_empty() {
            return Err((format!("\nUnknown options: {}\n", unknown.join(", ")), 255));
        }
        Ok(Command { service, operation, region, endpoint_url, output })
    }
}

/// The pod's environment as botocore reads it: unset and empty are the same.
struct Env<'a>(&'a [(String, String)]);

impl Env<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }
}

/// Where STS is and how calls to it are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Sts {
    /// The endpoint URL as botocore prints it in errors (`https://sts.amazonaws.com/`).
    url: String,
    /// The signing region.
    region: String,
}

impl Sts {
    fn new(cmd: &Command, env: &Env) -> Sts {
        let region = cmd.region.clone().or_else(|| env.get("AWS_DEFAULT_REGION").map(str::to_string));
        let configured = cmd
            .endpoint_url
            .clone()
            .or_else(|| env.get("AWS_ENDPOINT_URL_STS").map(str::to_string))
            .or_else(|| env.get("AWS_ENDPOINT_URL").map(str::to_string));
        let legacy = env.get("AWS_STS_REGIONAL_ENDPOINTS").is_some_and(|v| v.eq_ignore_ascii_case("legacy"));
        let url = match (configured, region.as_deref()) {
            (Some(url), _) => format!("{}/", url.trim_end_matches('/')),
            (None, None) => "https://sts.amazonaws.com/".to_string(),
            (None, Some(r)) if legacy && LEGACY_GLOBAL.contains(&r) => {
                "https://sts.amazonaws.com/".to_string()
            }
            (None, Some(r)) => format!("https://sts.{r}.amazonaws.com/"),
        };
        Sts { url, region: region.unwrap_or_else(|| "us-east-1".into()) }
    }
}

/// What `GetCallerIdentity` answers, in its output shape's member order.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    user_id: String,
    account: String,
    arn: String,
}

/// Why the command failed, as the CLI prints it to stderr.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum AwsError {
    /// The chain found nothing (`NoCredentialsError`).
    #[error("Unable to locate credentials. You can configure credentials by running \"aws configure\".\n")]
    NoCredentials,
    /// `AWS_ACCESS_KEY_ID` without its secret, or the other way round.
    #[error("\nPartial credentials found in env, missing: {0}\n")]
    Partial(&'static str),
    /// The web identity token file cannot be read (Python's `FileNotFoundError`).
    #[error("\n[Errno 2] No such file or directory: '{0}'\n")]
    NoTokenFile(String),
    /// A service answered with an error (`ClientError`).
    #[error("\nAn error occurred ({code}) when calling the {operation} operation: {message}\n")]
    Service {
        /// The error code.
        code: String,
        /// The operation.
        operation: &'static str,
        /// The message.
        message: String,
    },
    /// Nothing answered at the endpoint (`EndpointConnectionError`).
    #[error("\nCould not connect to the endpoint URL: \"{0}\"\n")]
    Connect(String),
    /// The answer could not be read.
    #[error("\nUnable to parse response ({0}), invalid XML received.\n")]
    Parse(String),
}

/// Runs the chain and the call.
async fn get_caller_identity(
    pod: &dyn Pod,
    env: &Env<'_>,
    sts: &Sts,
    now: Timestamp,
) -> Result<Identity, AwsError> {
    let creds = credentials(pod, env, sts, now).await?;
    let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
    let xml = call(pod, sts, "GetCallerIdentity", body, Some(&creds), now).await?;
    let field = |name| tag(&xml, name).unwrap_or_default();
    Ok(Identity { user_id: field("UserId"), account: field("Account"), arn: field("Arn") })
}

/// botocore's default chain, as far as a pod has it.
async fn credentials(
    pod: &dyn Pod,
    env: &Env<'_>,
    sts: &Sts,
    now: Timestamp,
) -> Result<Credentials, AwsError> {
    match (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            return Ok(Credentials {
                access_key_id: id.into(),
                secret_access_key: secret.into(),
                session_token: env.get("AWS_SESSION_TOKEN").map(str::to_string),
                expiration: None,
                source: "env",
            });
        }
        (Some(_), None) => return Err(AwsError::Partial("AWS_SECRET_ACCESS_KEY")),
        (None, Some(_)) => return Err(AwsError::Partial("AWS_ACCESS_KEY_ID")),
        (None, None) => {}
    }
    if let (Some(path), Some(role)) = (env.get("AWS_WEB_IDENTITY_TOKEN_FILE"), env.get("AWS_ROLE_ARN")) {
        return web_identity(pod, env, sts, path, role, now).await;
    }
    let disabled = env.get("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !disabled {
        let endpoint = env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or(IMDS).trim_end_matches('/');
        if let Some(creds) = imds(pod, endpoint).await {
            return Ok(creds);
        }
    }
    Err(AwsError::NoCredentials)
}

/// `AssumeRoleWithWebIdentity`, unsigned, with the token file's content.
async fn web_identity(
    pod: &dyn Pod,
    env: &Env<'_>,
    sts: &Sts,
    path: &str,
    role: &str,
    now: Timestamp,
) -> Result<Credentials, AwsError> {
    let token = pod.file(path).ok_or_else(|| AwsError::NoTokenFile(path.to_string()))?;
    let session = env
        .get("AWS_ROLE_SESSION_NAME")
        .map_or_else(|| format!("botocore-session-{}", now.as_second()), str::to_string);
    let body = form(&[
        ("Action", "AssumeRoleWithWebIdentity"),
        ("Version", STS_VERSION),
        ("RoleArn", role),
        ("RoleSessionName", &session),
        ("WebIdentityToken", token.trim()),
    ]);
    let xml = call(pod, sts, "AssumeRoleWithWebIdentity", body.into_bytes(), None, now).await?;
    let field = |name| tag(&xml, name).unwrap_or_default();
    Ok(Credentials {
        access_key_id: field("AccessKeyId"),
        secret_access_key: field("SecretAccessKey"),
        session_token: Some(field("SessionToken")),
        expiration: field("Expiration").parse().ok(),
        source: "assume-role-with-web-identity",
    })
}

/// The instance role's credentials from IMDS, or None wherever botocore gives up.
async fn imds(pod: &dyn Pod, endpoint: &str) -> Option<Credentials> {
    let get = |path: String, token: Option<String>| async move {
        let headers: Vec<String> =
            token.into_iter().map(|t| format!("x-aws-ec2-metadata-token: {t}")).collect();
        let url = format!("{endpoint}/latest/meta-data/iam/security-credentials/{path}");
        match imds_fetch(pod, "GET", &url, &headers).await {
            Ok(r) if r.status == 200 && !r.body.is_empty() => {
                Some(String::from_utf8_lossy(&r.body).into_owned())
            }
            _ => None,
        }
    };
    let token_headers = ["x-aws-ec2-metadata-token-ttl-seconds: 21600".to_string()];
    let token = match imds_fetch(pod, "PUT", &format!("{endpoint}/latest/api/token"), &token_headers).await {
        Ok(r) if r.status == 200 => Some(String::from_utf8_lossy(&r.body).into_owned()),
        // 400 is BadIMDSRequestError: the fetcher gives up.
        Ok(r) if r.status == 400 => return None,
        // 403/404/405, a timeout, no connection: IMDSv1.
        _ => None,
    };
    let role = get(String::new(), token.clone()).await?;
    let role = role.lines().next()?.trim().to_string();
    let doc = get(role, token).await?;
    let doc: serde_json::Value = serde_json::from_str(&doc).ok()?;
    let field = |k: &str| doc[k].as_str().map(str::to_string);
    Some(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: field("SecretAccessKey")?,
        session_token: Some(field("Token")?),
        expiration: field("Expiration")?.parse().ok(),
        source: "iam-role",
    })
}

/// One IMDS request with botocore's 1 s timeout. botocore gives the connect and each read 1 s;
/// here the whole exchange gets 1 s, the same where the connect is immediate, as the node's
/// route to IMDS is.
async fn imds_fetch(
    pod: &dyn Pod,
    method: &str,
    url: &str,
    headers: &[String],
) -> Result<curl::Response, Failed> {
    let mut headers = headers.to_vec();
    headers.insert(0, format!("User-Agent: {USER_AGENT}"));
    curl::fetch(pod, method, url, &headers, None, Some(IMDS_TIMEOUT), Some(IMDS_TIMEOUT)).await
}

/// One STS query-protocol call: `POST /` with the form `body`, signed with `creds` when given;
/// the answer's XML, or the error it carries.
async fn call(
    pod: &dyn Pod,
    sts: &Sts,
    operation: &'static str,
    body: Vec<u8>,
    creds: Option<&Credentials>,
    now: Timestamp,
) -> Result<String, AwsError> {
    let connect_failed = || AwsError::Connect(sts.url.clone());
    let (url, host) = transport(&sts.url).ok_or_else(connect_failed)?;
    let mut req = http::Request::post(url.as_str())
        .header(http::header::HOST, host.as_str())
        .header(http::header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")
        .body(Bytes::from(body))
        .map_err(|_| connect_failed())?;
    if let Some(creds) = creds {
        netlab_credential_provider::sigv4::sign(&mut req, "sts", &sts.region, creds, now)
            .map_err(|e| AwsError::Parse(e.to_string()))?;
    }
    let mut headers: Vec<String> = req
        .headers()
        .iter()
        .filter_map(|(k, v)| Some(format!("{}: {}", k.as_str(), v.to_str().ok()?)))
        .collect();
    headers.push(format!("User-Agent: {USER_AGENT}"));
    let body = req.body().to_vec();
    let resp = curl::fetch(pod, "POST", &url, &headers, Some(body), Some(SERVICE_TIMEOUT), None)
        .await
        .map_err(|_| connect_failed())?;
    let xml = String::from_utf8_lossy(&resp.body).into_owned();
    if resp.status >= 300 || resp.status < 200 {
        return Err(AwsError::Service {
            code: tag(&xml, "Code").unwrap_or_else(|| resp.status.to_string()),
            operation,
            message: tag(&xml, "Message").unwrap_or_default(),
        });
    }
    if !xml.contains(&format!("<{operation}Result")) {
        return Err(AwsError::Parse(format!("status code: {}", resp.status)));
    }
    Ok(xml)
}

/// The plain-HTTP URL a request to `endpoint` is sent to (an `https` endpoint's on its port,
/// 443 by default: the lab's pods speak no TLS), and the `Host` it carries and is signed with.
fn transport(endpoint: &str) -> Option<(String, String)> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split('/').next().filter(|a| !a.is_empty())?;
    let path = &rest[authority.len()..];
    let path = if path.is_empty() { "/" } else { path };
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some((format!("http://{authority}{path}"), authority.to_string())),
        "https" => {
            let has_port =
                authority.rsplit_once(':').is_some_and(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                    && !authority.ends_with(']');
            let host = authority.strip_suffix(":443").unwrap_or(authority);
            let url = if has_port {
                format!("http://{authority}{path}")
            } else {
                format!("http://{authority}:443{path}")
            };
            Some((url, host.to_string()))
        }
        _ => None,
    }
}

/// The CLI's rendering of the identity.
fn render(output: &str, id: &Identity) -> String {
    let fields = [("UserId", &id.user_id), ("Account", &id.account), ("Arn", &id.arn)];
    match output {
        "text" => {
            let mut sorted = fields;
            sorted.sort_by_key(|(k, _)| *k);
            let values: Vec<&str> = sorted.iter().map(|(_, v)| v.as_str()).collect();
            format!("{}\n", values.join("\t"))
        }
        _ => {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("    \"{k}\": {}", serde_json::Value::String(v.to_string())))
                .collect();
            format!("{{\n{}\n}}\n", body.join(",\n"))
        }
    }
}

/// A form body, each value percent-encoded as botocore's query serializer does.
fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

/// The text of the first `<name>` element of `xml`, unescaped.
fn tag(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod unit {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn endpoints_are_botocores() {
        let cmd = Command::parse(&args("sts get-caller-identity")).unwrap();
        let pairs =
            |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        let sts = |p: &[(&str, &str)]| Sts::new(&cmd, &Env(&pairs(p)));
        assert_eq!(sts(&[]), Sts { url: "https://sts.amazonaws.com/".into(), region: "us-east-1".into() });
        assert_eq!(sts(&[("AWS_DEFAULT_REGION", "eu-west-1")]).url, "https://sts.eu-west-1.amazonaws.com/");
        assert_eq!(
            sts(&[("AWS_DEFAULT_REGION", "eu-west-1"), ("AWS_STS_REGIONAL_ENDPOINTS", "legacy")]).url,
            "https://sts.amazonaws.com/"
        );
        // v1 reads AWS_DEFAULT_REGION, not AWS_REGION.
        assert_eq!(sts(&[("AWS_REGION", "eu-west-1")]).url, "https://sts.amazonaws.com/");
        assert_eq!(
            sts(&[("AWS_ENDPOINT_URL", "http://a:1"), ("AWS_ENDPOINT_URL_STS", "http://b:2/")]).url,
            "http://b:2/"
        );
        assert_eq!(
            transport("https://sts.us-east-1.amazonaws.com/"),
            Some(("http://sts.us-east-1.amazonaws.com:443/".into(), "sts.us-east-1.amazonaws.com".into()))
        );
        assert_eq!(
            transport("http://10.0.0.7:4566/"),
            Some(("http://10.0.0.7:4566/".into(), "10.0.0.7:4566".into()))
        );
    }

    #[test]
    fn command_lines_fail_as_the_clis() {
        assert_eq!(Command::parse(&[]).unwrap_err().1, 2);
        assert_eq!(
            Command::parse(&args("sts")).unwrap_err().0,
            "aws: error: the following arguments are required: operation\n"
        );
        assert_eq!(
            Command::parse(&args("sts get-caller-identity --bogus")).unwrap_err(),
            ("\nUnknown options: --bogus\n".to_string(), 255)
        );
        let c = Command::parse(&args("--region eu-west-1 sts get-caller-identity --output=text")).unwrap();
        assert_eq!((c.region.as_deref(), c.output.as_str()), (Some("eu-west-1"), "text"));
    }

    #[test]
    fn output_is_the_clis() {
        let id = Identity {
            user_id: "AROA:botocore-session-1".into(),
            account: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/r/botocore-session-1".into(),
        };
        assert_eq!(
            render("json", &id),
            "{\n    \"UserId\": \"AROA:botocore-session-1\",\n    \"Account\": \"123456789012\",\n    \"Arn\": \"arn:aws:sts::123456789012:assumed-role/r/botocore-session-1\"\n}\n"
        );
        assert_eq!(
            render("text", &id),
            "123456789012\tarn:aws:sts::123456789012:assumed-role/r/botocore-session-1\tAROA:botocore-session-1\n"
        );
        assert_eq!(form(&[("A", "a b/+=")]), "A=a%20b%2F%2B%3D");
        assert_eq!(tag("<a><Code>X&amp;Y</Code></a>", "Code").as_deref(), Some("X&Y"));
    }
}
