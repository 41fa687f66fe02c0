//! ipamd's EC2 client (pkg/awsutils/awsutils.go over the Go SDK v2): the EC2 Query protocol
//! (`POST /`, form `Action=<Op>&Version=2016-11-15&...`), SigV4-signed for service `ec2` with the
//! node role's credentials from IMDS, answers read from EC2's XML into [`crate::api`] types.
//!
//! Why these choices:
//! - Credentials come the way the SDK's default chain finds them on a node (the credential
//!   provider's [`credentials::resolve`] with only the IMDS endpoint in its environment), cached
//!   and fetched again five minutes before they expire, as IMDS rotates them.
//! - Errors keep EC2's code, message, status and `RequestID`, so [`ApiError`] prints what the
//!   SDK prints and ipamd can tell `InsufficientFreeAddressesInSubnet` or
//!   `UnauthorizedOperation` apart.
//! - Throttling, 5xx answers and sends that got no answer are retried a few times with a short
//!   backoff (the SDK's standard retryer, shortened: ipamd retries on its own schedule too);
//!   client errors never are, since asking again gets the same answer.
//! - Each attempt is one client span named `ec2.<Action>` carrying `traceparent`, so the
//!   cloud's span of the call joins ipamd's trace.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::Duration,
};

use bytes::Bytes;
use http::Request;
use ipnet::Ipv4Net;
use jiff::{SignedDuration, Timestamp};
use netlab_credential_provider::{
    credentials::{self, Credentials, Env},
    http::HttpClient,
    sigv4,
};
use quick_xml::events::Event;

use crate::api::{ApiError, Ec2Api, Eni};

/// The EC2 API version every call names.
pub const API_VERSION: &str = "2016-11-15";
/// How many times a call is tried (the SDK's standard retryer's count).
pub const MAX_ATTEMPTS: u32 = 3;
/// The first retry's delay; each next one doubles it.
pub const BACKOFF: Duration = Duration::from_millis(100);
/// Credentials are fetched again this long before they expire.
pub const CREDENTIALS_MARGIN: SignedDuration = SignedDuration::from_mins(5);

/// Error codes the SDK's retryer treats as throttling (aws-sdk-go-v2 `aws/retry`).
const THROTTLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Where and as whom the client calls EC2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ec2ClientConfig {
    /// The EC2 endpoint, `http://host:port` (the lab cloud's AWS endpoint).
    pub endpoint: String,
    /// The region signatures are scoped to.
    pub region: String,
    /// IMDS, where the node role's credentials come from (`http://host:port`).
    pub imds_endpoint: String,
    /// The address to connect from (the node's IP: the lab's IMDS tells instances apart by it).
    pub local_addr: Option<IpAddr>,
}

/// The real [`Ec2Api`] over HTTP.
#[derive(Debug)]
pub struct Ec2Client {
    endpoint: String,
    region: String,
    http: HttpClient,
    env: Env,
    credentials: tokio::sync::Mutex<Option<Credentials>>,
}

// === impl Ec2Client ===

impl Ec2Client {
    /// A client per `config`; nothing is called until the first operation.
    pub fn new(config: Ec2ClientConfig) -> Self {
        let env = Env::from_pairs([("AWS_EC2_METADATA_SERVICE_ENDPOINT", config.imds_endpoint.as_str())]);
        Self {
            endpoint: config.endpoint.trim_end_matches('/').to_string(),
            region: config.region,
            http: HttpClient::bound(netlab_credential_provider::http::TIMEOUT, config.local_addr),
            env,
            credentials: tokio::sync::Mutex::new(None),
        }
    }

    /// A client that signs with `credentials` instead of the node role's (tests, and a
    /// caller with keys of its own).
    pub fn with_credentials(config: Ec2ClientConfig, credentials: Credentials) -> Self {
        let client = Self::new(config);
        Self { credentials: tokio::sync::Mutex::new(Some(credentials)), ..client }
    }

    /// The cached credentials, fetched from IMDS when there are none or they are about to
    /// expire.
    async fn credentials(&self, operation: &str) -> Result<Credentials, ApiError> {
        let mut cached = self.credentials.lock().await;
        let fresh = cached
            .as_ref()
            .filter(|c| c.expiration.is_none_or(|exp| exp - CREDENTIALS_MARGIN > Timestamp::now()));
        if let Some(c) = fresh {
            return Ok(c.clone());
        }
        let creds = credentials::resolve(&self.env, &self.http).await.map_err(|e| ApiError {
            operation: operation.to_string(),
            status: 0,
            request_id: String::new(),
            code: String::new(),
            message: format!("get identity: get credentials: {e}"),
        })?;
        *cached = Some(creds.clone());
        Ok(creds)
    }

    /// Runs `action` with `params` and returns the answer's root element, retrying throttling,
    /// 5xx and unanswered sends.
    async fn call(&self, action: &str, params: &[(String, String)]) -> Result<Element, ApiError> {
        let mut form = format!("Action={action}&Version={API_VERSION}");
        for (k, v) in params {
            form.push('&');
            form.push_str(&encode(k));
            form.push('=');
            form.push_str(&encode(v));
        }
        let body = Bytes::from(form);
        let fail = |status: u16, request_id: String, code: &str, message: String| ApiError {
            operation: action.to_string(),
            status,
            request_id,
            code: code.to_string(),
            message,
        };
        let span_name = format!("ec2.{action}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let creds = self.credentials(action).await?;
            let mut req = Request::post(format!("{}/", self.endpoint))
                .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
                .body(body.clone())
                .map_err(|e| fail(0, String::new(), "", format!("failed to build request: {e}")))?;
            sigv4::sign(&mut req, "ec2", &self.region, &creds, Timestamp::now())
                .map_err(|e| fail(0, String::new(), "", format!("failed to sign request: {e}")))?;
            let error = match self.http.send(&span_name, req).await {
                Err(e) => fail(
                    0,
                    String::new(),
                    "",
                    format!(
                        "exceeded maximum number of attempts, {MAX_ATTEMPTS}, https response error StatusCode: 0, RequestID: , request send failed, {e}"
                    ),
                ),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let header_id = resp
                        .headers()
                        .get("x-amzn-requestid")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let text = String::from_utf8_lossy(resp.body());
                    let root = parse(&text);
                    if resp.status().is_success() {
                        return root.map_err(|reason| {
                            fail(
                                0,
                                String::new(),
                                "",
                                format!(
                                    "https response error StatusCode: {status}, RequestID: {header_id}, deserialization failed, failed to decode response body, {reason}"
                                ),
                            )
                        });
                    }
                    let root = root.unwrap_or_default();
                    let err = root.child("Errors").and_then(|e| e.child("Error"));
                    let code = err.and_then(|e| e.text_of("Code")).unwrap_or("UnknownError");
                    let message = err.and_then(|e| e.text_of("Message")).unwrap_or("").to_string();
                    let request_id = root.text_of("RequestID").map(str::to_string).unwrap_or(header_id);
                    if code == "AuthFailure" {
                        // Keys IMDS rotated away: the next call fetches them again.
                        *self.credentials.lock().await = None;
                    }
                    fail(status, request_id, code, message)
                }
            };
            let retryable = error.status == 0 && error.code.is_empty()
                || error.status >= 500
                || THROTTLE_CODES.contains(&error.code.as_str());
            if !retryable || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
        }
    }

    /// An answer that could not be read into the operation's output.
    fn decode_error(action: &str, root: &Element, reason: &str) -> ApiError {
        ApiError {
            operation: action.to_string(),
            status: 0,
            request_id: String::new(),
            code: String::new(),
            message: format!(
                "https response error StatusCode: 200, RequestID: {}, deserialization failed, failed to decode response body, {reason}",
                root.text_of("requestId").unwrap_or("")
            ),
        }
    }
}

fn pair(k: impl Into<String>, v: impl Into<String>) -> (String, String) {
    (k.into(), v.into())
}

#[async_trait::async_trait]
impl Ec2Api for Ec2Client {
    async fn describe_instance_enis(&self, instance_id: &str) -> Result<Vec<Eni>, ApiError> {
        const ACTION: &str = "DescribeNetworkInterfaces";
        let mut enis = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let mut params =
                vec![pair("Filter.1.Name", "attachment.instance-id"), pair("Filter.1.Value.1", instance_id)];
            if let Some(t) = &next {
                params.push(pair("NextToken", t.as_str()));
            }
            let root = self.call(ACTION, &params).await?;
            for item in root.items("networkInterfaceSet") {
                enis.push(eni(item).map_err(|r| Self::decode_error(ACTION, &root, &r))?);
            }
            next = root.text_of("nextToken").filter(|t| !t.is_empty()).map(str::to_string);
            if next.is_none() {
                return Ok(enis);
            }
        }
    }

    async fn create_network_interface(
        &self,
        subnet_id: &str,
        groups: &[String],
        description: &str,
        tags: &[(String, String)],
        secondary_ips: u32,
        prefixes: u32,
    ) -> Result<Eni, ApiError> {
        const ACTION: &str = "CreateNetworkInterface";
        let mut params = vec![pair("SubnetId", subnet_id), pair("Description", description)];
        for (i, g) in groups.iter().enumerate() {
            params.push(pair(format!("SecurityGroupId.{}", i + 1), g.as_str()));
        }
        if !tags.is_empty() {
            params.push(pair("TagSpecification.1.ResourceType", "network-interface"));
            for (i, (k, v)) in tags.iter().enumerate() {
                params.push(pair(format!("TagSpecification.1.Tag.{}.Key", i + 1), k.as_str()));
                params.push(pair(format!("TagSpecification.1.Tag.{}.Value", i + 1), v.as_str()));
            }
        }
        if secondary_ips > 0 {
            params.push(pair("SecondaryPrivateIpAddressCount", secondary_ips.to_string()));
        }
        if prefixes > 0 {
            params.push(pair("Ipv4PrefixCount", prefixes.to_string()));
        }
        let root = self.call(ACTION, &params).await?;
        let item = root
            .child("networkInterface")
            .ok_or_else(|| Self::decode_error(ACTION, &root, "no networkInterface"))?;
        eni(item).map_err(|r| Self::decode_error(ACTION, &root, &r))
    }

    async fn attach_network_interface(
        &self,
        eni_id: &str,
        instance_id: &str,
        device_index: u32,
    ) -> Result<String, ApiError> {
        const ACTION: &str = "AttachNetworkInterface";
        let params = [
            pair("DeviceIndex", device_index.to_string()),
            pair("InstanceId", instance_id),
            pair("NetworkCardIndex", "0"),
            pair("NetworkInterfaceId", eni_id),
        ];
        let root = self.call(ACTION, &params).await?;
        root.text_of("attachmentId")
            .map(str::to_string)
            .ok_or_else(|| Self::decode_error(ACTION, &root, "no attachmentId"))
    }

    async fn set_delete_on_termination(&self, eni_id: &str, attachment_id: &str) -> Result<(), ApiError> {
        let params = [
            pair("Attachment.AttachmentId", attachment_id),
            pair("Attachment.DeleteOnTermination", "true"),
            pair("NetworkInterfaceId", eni_id),
        ];
        self.call("ModifyNetworkInterfaceAttribute", &params).await.map(drop)
    }

    async fn detach_network_interface(&self, attachment_id: &str) -> Result<(), ApiError> {
        self.call("DetachNetworkInterface", &[pair("AttachmentId", attachment_id)]).await.map(drop)
    }

    async fn delete_network_interface(&self, eni_id: &str) -> Result<(), ApiError> {
        self.call("DeleteNetworkInterface", &[pair("NetworkInterfaceId", eni_id)]).await.map(drop)
    }

    async fn assign_private_ips(&self, eni_id: &str, count: u32) -> Result<Vec<Ipv4Addr>, ApiError> {
        const ACTION: &str = "AssignPrivateIpAddresses";
        let params =
            [pair("NetworkInterfaceId", eni_id), pair("SecondaryPrivateIpAddressCount", count.to_string())];
        let root = self.call(ACTION, &params).await?;
        root.items("assignedPrivateIpAddressesSet")
            .map(|i| parse_field(i, "privateIpAddress"))
            .collect::<Result<_, _>>()
            .map_err(|r| Self::decode_error(ACTION, &root, &r))
    }

    async fn assign_prefixes(&self, eni_id: &str, count: u32) -> Result<Vec<Ipv4Net>, ApiError> {
        const ACTION: &str = "AssignPrivateIpAddresses";
        let params = [pair("Ipv4PrefixCount", count.to_string()), pair("NetworkInterfaceId", eni_id)];
        let root = self.call(ACTION, &params).await?;
        root.items("assignedIpv4PrefixSet")
            .map(|i| parse_field(i, "ipv4Prefix"))
            .collect::<Result<_, _>>()
            .map_err(|r| Self::decode_error(ACTION, &root, &r))
    }

    async fn unassign_private_ips(&self, eni_id: &str, ips: &[Ipv4Addr]) -> Result<(), ApiError> {
        let mut params = vec![pair("NetworkInterfaceId", eni_id)];
        for (i, ip) in ips.iter().enumerate() {
            params.push(pair(format!("PrivateIpAddress.{}", i + 1), ip.to_string()));
        }
        self.call("UnassignPrivateIpAddresses", &params).await.map(drop)
    }

    async fn unassign_prefixes(&self, eni_id: &str, prefixes: &[Ipv4Net]) -> Result<(), ApiError> {
        let mut params = vec![pair("NetworkInterfaceId", eni_id)];
        for (i, p) in prefixes.iter().enumerate() {
            params.push(pair(format!("Ipv4Prefix.{}", i + 1), p.to_string()));
        }
        self.call("UnassignPrivateIpAddresses", &params).await.map(drop)
    }
}

/// One ENI item (DescribeNetworkInterfaces' `networkInterfaceSet/item`, CreateNetworkInterface's
/// `networkInterface`).
fn eni(e: &Element) -> Result<Eni, String> {
    let id = e.text_of("networkInterfaceId").ok_or("no networkInterfaceId")?.to_string();
    let attachment = e.child("attachment");
    let device_index = match attachment.and_then(|a| a.text_of("deviceIndex")) {
        Some(d) => Some(d.parse().map_err(|_| format!("deviceIndex {d:?} is not a number"))?),
        None => None,
    };
    let secondary_ips = e
        .items("privateIpAddressesSet")
        .filter(|i| i.text_of("primary") != Some("true"))
        .map(|i| parse_field(i, "privateIpAddress"))
        .collect::<Result<_, _>>()?;
    let prefixes =
        e.items("ipv4PrefixSet").map(|i| parse_field(i, "ipv4Prefix")).collect::<Result<_, _>>()?;
    let tags = e
        .items("tagSet")
        .map(|i| (i.text_of("key").unwrap_or("").to_string(), i.text_of("value").unwrap_or("").to_string()))
        .collect();
    Ok(Eni {
        mac: e.text_of("macAddress").unwrap_or("").to_string(),
        subnet_id: e.text_of("subnetId").unwrap_or("").to_string(),
        description: e.text_of("description").unwrap_or("").to_string(),
        device_index,
        attachment_id: attachment.and_then(|a| a.text_of("attachmentId")).map(str::to_string),
        instance_id: attachment.and_then(|a| a.text_of("instanceId")).map(str::to_string),
        primary_ip: parse_field(e, "privateIpAddress")?,
        secondary_ips,
        prefixes,
        tags,
        id,
    })
}

/// The child `name` of `e`, parsed.
fn parse_field<T: std::str::FromStr>(e: &Element, name: &str) -> Result<T, String> {
    let text = e.text_of(name).ok_or_else(|| format!("no {name}"))?;
    text.parse().map_err(|_| format!("{name} {text:?} is not valid"))
}

/// The Query protocol's form encoding: everything but RFC 3986's unreserved characters
/// percent-encoded (what SigV4 expects of a form body, too).
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One XML element with its text and children: EC2's answers are small, so a tree is simpler
/// than streaming them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Element {
    name: String,
    text: String,
    children: Vec<Element>,
}

// === impl Element ===

impl Element {
    fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }

    /// The `<item>`s of the list element `name`.
    fn items<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Element> + 'a {
        self.child(name).into_iter().flat_map(|l| l.children.iter().filter(|c| c.name == "item"))
    }
}

/// The document's root element.
fn parse(xml: &str) -> Result<Element, String> {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<Element> = vec![Element::default()];
    loop {
        let event = reader.read_event().map_err(|e| e.to_string())?;
        match event {
            Event::Start(s) => {
                stack.push(Element { name: s.local_name().as_ref().to_string(), ..Element::default() })
            }
            Event::Empty(s) => {
                let e = Element { name: s.local_name().as_ref().to_string(), ..Element::default() };
                stack.last_mut().ok_or("unbalanced")?.children.push(e);
            }
            Event::End(_) => {
                let done = stack.pop().ok_or("unbalanced")?;
                let parent = stack.last_mut().ok_or("unbalanced end tag")?;
                parent.children.push(Element { text: done.text.trim().to_string(), ..done });
            }
            Event::Text(t) => stack.last_mut().ok_or("unbalanced")?.text.push_str(&t.xml10_content()),
            Event::CData(t) => stack.last_mut().ok_or("unbalanced")?.text.push_str(&t),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                    Some(c) => c,
                    None => match &*r {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => return Err(format!("unknown entity &{other};")),
                    },
                };
                stack.last_mut().ok_or("unbalanced")?.text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut top = stack.pop().ok_or("empty document")?;
    if !stack.is_empty() {
        return Err("unexpected end of document".into());
    }
    match top.children.len() {
        1 => Ok(top.children.remove(0)),
        0 => Err("empty document".into()),
        _ => Err("more than one root element".into()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A request the fake server got: method, path, headers (lower-case names) and body.
    #[derive(Debug, Clone)]
    pub(crate) struct Seen {
        pub method: String,
        pub path: String,
        pub headers: Vec<(String, String)>,
        pub body: String,
    }

    impl Seen {
        pub(crate) fn header(&self, name: &str) -> Option<&str> {
            self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }
    }

    /// An HTTP/1.1 server on 127.0.0.1 answering the n-th request (from 0) with `answer(n,
    /// request)`: status, extra headers, body. Returns its URL and what it was asked.
    pub(crate) async fn fake_server(
        answer: impl Fn(usize, &Seen) -> (u16, Vec<(&'static str, String)>, String) + Send + Sync + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<Seen>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Seen>::new()));
        let log = seen.clone();
        let answer = std::sync::Arc::new(answer);
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else { return };
                let (log, answer) = (log.clone(), answer.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    loop {
                        let mut chunk = [0u8; 4096];
                        // One request per connection at a time; keep-alive connections loop.
                        let head_end = loop {
                            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                                break i + 4;
                            }
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        };
                        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                        let mut lines = head.lines();
                        let mut first = lines.next().unwrap_or("").split(' ');
                        let (method, path) =
                            (first.next().unwrap_or("").to_string(), first.next().unwrap_or("").to_string());
                        let headers: Vec<(String, String)> = lines
                            .filter_map(|l| l.split_once(':'))
                            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                            .collect();
                        let len: usize = headers
                            .iter()
                            .find(|(k, _)| k == "content-length")
                            .and_then(|(_, v)| v.parse().ok())
                            .unwrap_or(0);
                        while buf.len() < head_end + len {
                            match conn.read(&mut chunk).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                        }
                        let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
                        buf.drain(..head_end + len);
                        let req = Seen { method, path, headers, body };
                        let n = {
                            let mut log = log.lock().unwrap();
                            log.push(req.clone());
                            log.len() - 1
                        };
                        let (status, extra, body) = answer(n, &req);
                        let mut out = format!("HTTP/1.1 {status} X\r\nContent-Length: {}\r\n", body.len());
                        for (k, v) in extra {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str("\r\n");
                        out.push_str(&body);
                        if conn.write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, seen)
    }

    fn client(endpoint: &str) -> Ec2Client {
        let config = Ec2ClientConfig {
            endpoint: endpoint.to_string(),
            region: "us-east-1".into(),
            imds_endpoint: "http://127.0.0.1:9".into(),
            local_addr: None,
        };
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: None,
            expiration: None,
            source: "test",
        };
        Ec2Client::with_credentials(config, creds)
    }

    fn ec2_error(code: &str, message: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code><Message>{message}</Message></Error></Errors><RequestID>req-{code}</RequestID></Response>"
        )
    }

    const ASSIGNED: &str = "<AssignPrivateIpAddressesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r</requestId><networkInterfaceId>eni-1</networkInterfaceId><assignedPrivateIpAddressesSet><item><privateIpAddress>10.0.0.7</privateIpAddress></item></assignedPrivateIpAddressesSet><return>true</return></AssignPrivateIpAddressesResponse>";

    #[tokio::test]
    async fn throttling_and_5xx_are_retried_client_errors_are_not() {
        // Throttled, then a 503, then the answer: three attempts, one result.
        let (url, seen) = fake_server(|n, _| match n {
            0 => (503, vec![], ec2_error("RequestLimitExceeded", "Request limit exceeded.")),
            1 => (500, vec![], ec2_error("InternalError", "An internal error has occurred")),
            _ => (200, vec![], ASSIGNED.to_string()),
        })
        .await;
        let ips = client(&url).assign_private_ips("eni-1", 1).await.unwrap();
        assert_eq!(ips, [Ipv4Addr::new(10, 0, 0, 7)]);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 3);
        let req = &seen[0];
        assert_eq!((req.method.as_str(), req.path.as_str()), ("POST", "/"));
        assert_eq!(
            req.body,
            "Action=AssignPrivateIpAddresses&Version=2016-11-15&NetworkInterfaceId=eni-1&SecondaryPrivateIpAddressCount=1"
        );
        let auth = req.header("authorization").unwrap();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
        assert!(auth.contains("/us-east-1/ec2/aws4_request"), "{auth}");

        // A client error: one attempt, EC2's code and text.
        let (url, seen) = fake_server(|_, _| {
            (
                400,
                vec![],
                ec2_error("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit."),
            )
        })
        .await;
        let e = client(&url).assign_private_ips("eni-1", 9).await.unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), 1);
        assert_eq!(
            e.to_string(),
            "operation error EC2: AssignPrivateIpAddresses, https response error StatusCode: 400, RequestID: req-PrivateIpAddressLimitExceeded, api error PrivateIpAddressLimitExceeded: Number of private addresses will exceed limit."
        );

        // Throttled every time: the last answer, after MAX_ATTEMPTS.
        let (url, seen) =
            fake_server(|_, _| (400, vec![], ec2_error("RequestLimitExceeded", "Request limit exceeded.")))
                .await;
        let e = client(&url).delete_network_interface("eni-1").await.unwrap_err();
        assert_eq!(seen.lock().unwrap().len(), MAX_ATTEMPTS as usize);
        assert_eq!((e.code.as_str(), e.status), ("RequestLimitExceeded", 400));

        // A 200 that is not EC2's XML.
        let (url, _) =
            fake_server(|_, _| (200, vec![("x-amzn-requestid", "rid".into())], "<oops".into())).await;
        let e = client(&url).detach_network_interface("eni-attach-1").await.unwrap_err();
        assert!(
            e.to_string().starts_with("operation error EC2: DetachNetworkInterface, https response error StatusCode: 200, RequestID: rid, deserialization failed, failed to decode response body, "),
            "{e}"
        );
    }

    #[test]
    fn the_api_references_samples_are_read() {
        let root = parse(
            r#"<AssignPrivateIpAddressesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">
  <requestId>3fb591ba-558c-48f8-ae6b-c2f9d6d06425</requestId>
  <networkInterfaceId>eni-01d32da61c165ac3e</networkInterfaceId>
  <assignedPrivateIpAddressesSet><item><privateIpAddress>10.2.2.7</privateIpAddress></item>
    <item><privateIpAddress>10.2.2.5</privateIpAddress></item></assignedPrivateIpAddressesSet>
  <return>true</return>
</AssignPrivateIpAddressesResponse>"#,
        )
        .unwrap();
        let ips: Vec<Ipv4Addr> = root
            .items("assignedPrivateIpAddressesSet")
            .map(|i| parse_field(i, "privateIpAddress").unwrap())
            .collect();
        assert_eq!(ips, [Ipv4Addr::new(10, 2, 2, 7), Ipv4Addr::new(10, 2, 2, 5)]);

        let err = parse(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>InvalidInstanceID.Malformed</Code><Message>Invalid id: &quot;1343124&quot; &amp; more</Message></Error></Errors><RequestID>12345</RequestID></Response>",
        )
        .unwrap();
        let e = err.child("Errors").and_then(|e| e.child("Error")).unwrap();
        assert_eq!(e.text_of("Code"), Some("InvalidInstanceID.Malformed"));
        assert_eq!(e.text_of("Message"), Some("Invalid id: \"1343124\" & more"));
        assert_eq!(err.text_of("RequestID"), Some("12345"));
        assert!(parse("<a><b></a>").is_err());
    }

    #[test]
    fn an_eni_item_becomes_an_eni() {
        let root = parse(
            r#"<DescribeNetworkInterfacesResponse><requestId>r</requestId><networkInterfaceSet><item>
<networkInterfaceId>eni-0a1b</networkInterfaceId><subnetId>subnet-1</subnetId><description>aws-K8S-i-1</description>
<macAddress>02:aa:bb:cc:dd:ee</macAddress><privateIpAddress>10.0.0.5</privateIpAddress>
<attachment><attachmentId>eni-attach-1</attachmentId><instanceId>i-1</instanceId><deviceIndex>1</deviceIndex></attachment>
<tagSet><item><key>node.k8s.amazonaws.com/instance_id</key><value>i-1</value></item></tagSet>
<privateIpAddressesSet><item><privateIpAddress>10.0.0.5</privateIpAddress><primary>true</primary></item>
<item><privateIpAddress>10.0.0.6</privateIpAddress><primary>false</primary></item></privateIpAddressesSet>
<ipv4PrefixSet><item><ipv4Prefix>10.0.1.0/28</ipv4Prefix></item></ipv4PrefixSet>
</item></networkInterfaceSet></DescribeNetworkInterfacesResponse>"#,
        )
        .unwrap();
        let e = eni(root.items("networkInterfaceSet").next().unwrap()).unwrap();
        assert_eq!(e.id, "eni-0a1b");
        assert_eq!(e.device_index, Some(1));
        assert_eq!(e.attachment_id.as_deref(), Some("eni-attach-1"));
        assert_eq!(e.primary_ip, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(e.secondary_ips, [Ipv4Addr::new(10, 0, 0, 6)]);
        assert_eq!(e.prefixes, ["10.0.1.0/28".parse::<Ipv4Net>().unwrap()]);
        assert_eq!(e.tags, [("node.k8s.amazonaws.com/instance_id".to_string(), "i-1".to_string())]);
    }

    #[test]
    fn form_values_are_percent_encoded() {
        assert_eq!(encode("aws-K8S-i-1 a/b=c&d"), "aws-K8S-i-1%20a%2Fb%3Dc%26d");
        assert_eq!(encode("node.k8s.amazonaws.com/createdAt"), "node.k8s.amazonaws.com%2FcreatedAt");
    }
}
