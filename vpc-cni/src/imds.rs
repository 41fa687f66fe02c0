//! ipamd's IMDS client (pkg/awsutils/imds.go over the Go SDK v2's `feature/ec2/imds`): IMDSv2
//! first (`PUT /latest/api/token` with a TTL, then GETs carrying the token), IMDSv1 when the PUT
//! is refused with 403/404/405 or not answered, as the SDK falls back; a 401 on a GET fetches a
//! new token once. Failures read as the SDK words them (`operation error ec2imds: GetMetadata,
//! http response error StatusCode: 404, request to EC2 IMDS failed`), since ipamd logs those.
//!
//! Why a local address: the lab's IMDS knows which instance asks by the peer address (the real
//! one asks the hypervisor), so the node-agent connects from its node IP.

use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use ipnet::Ipv4Net;
use netlab_credential_provider::{
    credentials::{ImdsError as GetMetadataError, MAX_ATTEMPTS},
    http::{HttpClient, SendError},
};

use crate::api::InstanceInfo;

/// The TTL ipamd's SDK asks tokens for (the SDK's default, 6 h).
pub const TOKEN_TTL_SECONDS: u32 = 21_600;
/// How long one IMDS request may take. Longer than the lab IMDS's own wait for its first list
/// of nodes (5 s, right after the cloud starts), so that wait ends in an answer, not a timeout.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// A token is renewed this long before its TTL runs out.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// Why ipamd could not read a key from IMDS.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImdsError {
    /// The GET (or its retries) failed: the SDK's `operation error ec2imds: GetMetadata, ...`.
    #[error("{source}")]
    GetMetadata {
        /// The metadata key, e.g. `network/interfaces/macs/<mac>/local-ipv4s`.
        key: String,
        /// The SDK's error.
        #[source]
        source: GetMetadataError,
    },
    /// The token PUT was answered with a status the SDK does not fall back on (400 and the
    /// like are terminal).
    #[error(
        "operation error ec2imds: GetMetadata, failed to get API token, operation error ec2imds: getToken, http response error StatusCode: {status}, request to EC2 IMDS failed"
    )]
    Token {
        /// The PUT's status.
        status: u16,
    },
    /// A value is not what the key holds (Go's `net.ParseError`, `invalid IP address: x`).
    #[error("invalid {kind}: {text}")]
    Parse {
        /// The key.
        key: String,
        /// `IP address` or `CIDR address`, Go's words.
        kind: &'static str,
        /// The text read.
        text: String,
    },
    /// The key answered with nothing (ipamd's `imdsRequestError`).
    #[error("failed to retrieve {key} from instance metadata empty response")]
    Empty {
        /// The key.
        key: String,
    },
    /// The endpoint is not a URL this client can call.
    #[error(
        "operation error ec2imds: GetMetadata, failed to resolve service endpoint, {0:?} is not an http URL"
    )]
    Endpoint(String),
}

// === impl ImdsError ===

impl ImdsError {
    /// Whether IMDS answered 404 (ipamd's `IsNotFound`): for `local-ipv4s` and `ipv4-prefix`,
    /// "none".
    pub fn is_not_found(&self) -> bool {
        matches!(self, ImdsError::GetMetadata { source: GetMetadataError::Status(404), .. })
    }
}

/// An IMDS client of one endpoint, seen from one address; keeps its session token.
#[derive(Debug)]
pub struct Imds {
    endpoint: String,
    http: HttpClient,
    token: tokio::sync::Mutex<Token>,
}

/// The session token state: none yet, one until an instant, or IMDSv1 (the PUT was refused).
#[derive(Debug, Clone)]
enum Token {
    Unknown,
    V2(String, Instant),
    V1,
}

// === impl Imds ===

impl Imds {
    /// A client of IMDS at `endpoint` (`http://host:port`), connecting from `local_addr`.
    pub fn new(endpoint: &str, local_addr: Option<IpAddr>) -> Result<Self, ImdsError> {
        if !endpoint.starts_with("http://") {
            return Err(ImdsError::Endpoint(endpoint.to_string()));
        }
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            http: HttpClient::bound(TIMEOUT, local_addr),
            token: tokio::sync::Mutex::new(Token::Unknown),
        })
    }

    /// What ipamd reads at start about its instance and primary ENI (facts §1.11).
    pub async fn instance_info(&self) -> Result<InstanceInfo, ImdsError> {
        let instance_id = self.get_string("instance-id").await?;
        let instance_type = self.get_string("instance-type").await?;
        let availability_zone = self.get_string("placement/availability-zone").await?;
        let primary_mac = self.get_string("mac").await?;
        let dir = format!("network/interfaces/macs/{primary_mac}");
        let primary_eni = self.get_string(&format!("{dir}/interface-id")).await?;
        let ips = self.get_ips(&format!("{dir}/local-ipv4s")).await?;
        let primary_ip =
            *ips.first().ok_or_else(|| ImdsError::Empty { key: format!("{dir}/local-ipv4s") })?;
        let subnet_id = self.get_string(&format!("{dir}/subnet-id")).await?;
        let subnet_cidr = self.get_cidr(&format!("{dir}/subnet-ipv4-cidr-block")).await?;
        let vpc_cidrs = self.get_cidrs(&format!("{dir}/vpc-ipv4-cidr-blocks")).await?;
        let security_groups = self.get_list(&format!("{dir}/security-group-ids")).await?;
        Ok(InstanceInfo {
            instance_id,
            instance_type,
            availability_zone,
            primary_mac,
            primary_eni,
            primary_ip,
            subnet_id,
            subnet_cidr,
            vpc_cidrs,
            security_groups,
        })
    }

    /// The MACs of the attached interfaces (`network/interfaces/macs`, trailing `/` stripped).
    pub async fn macs(&self) -> Result<Vec<String>, ImdsError> {
        let list = self.get_list("network/interfaces/macs").await?;
        Ok(list.into_iter().map(|m| m.trim_end_matches('/').to_string()).collect())
    }

    /// `local-ipv4s` of `mac`, primary first; a 404 is none.
    pub async fn interface_ips(&self, mac: &str) -> Result<Vec<Ipv4Addr>, ImdsError> {
        match self.get_ips(&format!("network/interfaces/macs/{mac}/local-ipv4s")).await {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            r => r,
        }
    }

    /// `ipv4-prefix` of `mac`; a 404 is none.
    pub async fn interface_prefixes(&self, mac: &str) -> Result<Vec<Ipv4Net>, ImdsError> {
        match self.get_cidrs(&format!("network/interfaces/macs/{mac}/ipv4-prefix")).await {
            Err(e) if e.is_not_found() => Ok(Vec::new()),
            r => r,
        }
    }

    /// `device-number` of `mac`.
    pub async fn device_number(&self, mac: &str) -> Result<u32, ImdsError> {
        let key = format!("network/interfaces/macs/{mac}/device-number");
        let text = self.get_string(&key).await?;
        text.parse().map_err(|_| ImdsError::Parse { key, kind: "integer", text })
    }

    /// The trimmed body at `key`.
    pub async fn get_string(&self, key: &str) -> Result<String, ImdsError> {
        let body = self.get(key).await?;
        let text = String::from_utf8_lossy(&body).trim().to_string();
        if text.is_empty() {
            return Err(ImdsError::Empty { key: key.to_string() });
        }
        Ok(text)
    }

    /// The whitespace-separated fields at `key`.
    pub async fn get_list(&self, key: &str) -> Result<Vec<String>, ImdsError> {
        let body = self.get(key).await?;
        Ok(String::from_utf8_lossy(&body).split_whitespace().map(str::to_string).collect())
    }

    async fn get_ips(&self, key: &str) -> Result<Vec<Ipv4Addr>, ImdsError> {
        self.get_list(key).await?.into_iter().map(|t| parse_ip(key, t)).collect()
    }

    async fn get_cidr(&self, key: &str) -> Result<Ipv4Net, ImdsError> {
        parse_cidr(key, self.get_string(key).await?)
    }

    async fn get_cidrs(&self, key: &str) -> Result<Vec<Ipv4Net>, ImdsError> {
        self.get_list(key).await?.into_iter().map(|t| parse_cidr(key, t)).collect()
    }

    /// `GET /latest/meta-data/<key>`: with the session token (a 401 fetches a new one, once),
    /// retried as the SDK's retryer retries sends that got no answer and 5xx answers.
    pub async fn get(&self, key: &str) -> Result<Bytes, ImdsError> {
        let url = format!("{}/latest/meta-data/{key}", self.endpoint);
        let fail = |source| ImdsError::GetMetadata { key: key.to_string(), source };
        let mut renewed = false;
        let mut last = None;
        let mut attempt = 0;
        while attempt < MAX_ATTEMPTS {
            attempt += 1;
            let token = self.token(false).await?;
            let mut builder = Request::get(&url);
            if let Some(t) = &token {
                builder = builder.header("x-aws-ec2-metadata-token", t.as_str());
            }
            let req = builder.body(Bytes::new()).map_err(|_| ImdsError::Endpoint(url.clone()))?;
            match self.http.send("ec2imds.GetMetadata", req).await {
                Ok(r) if r.status().is_success() => return Ok(r.into_body()),
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED && !renewed => {
                    // The token expired or was never ours: the SDK gets a new one and retries.
                    renewed = true;
                    attempt -= 1;
                    self.token(true).await?;
                }
                Ok(r) if r.status().is_server_error() => {
                    last = Some(GetMetadataError::Status(r.status().as_u16()));
                }
                Ok(r) => return Err(fail(GetMetadataError::Status(r.status().as_u16()))),
                Err(e) if e.cause == "context deadline exceeded" => {
                    return Err(fail(GetMetadataError::Timeout));
                }
                Err(e) => last = Some(GetMetadataError::Send(e)),
            }
        }
        Err(fail(last.unwrap_or_else(|| {
            GetMetadataError::Send(SendError { method: "Get".into(), url, cause: "no attempt made".into() })
        })))
    }

    /// The session token to send (None: IMDSv1), fetched when there is none, it is about to
    /// expire, or `renew`.
    async fn token(&self, renew: bool) -> Result<Option<String>, ImdsError> {
        let mut state = self.token.lock().await;
        match &*state {
            Token::V2(t, until) if !renew && Instant::now() + TOKEN_MARGIN < *until => {
                return Ok(Some(t.clone()));
            }
            Token::V1 if !renew => return Ok(None),
            _ => {}
        }
        let req = Request::builder()
            .method(Method::PUT)
            .uri(format!("{}/latest/api/token", self.endpoint))
            .header("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL_SECONDS.to_string())
            .body(Bytes::new())
            .map_err(|_| ImdsError::Endpoint(self.endpoint.clone()))?;
        let asked = Instant::now();
        *state = match self.http.send("ec2imds.GetToken", req).await {
            Ok(r) if r.status() == StatusCode::OK => {
                let token = String::from_utf8_lossy(r.body()).trim().to_string();
                let ttl = r
                    .headers()
                    .get("x-aws-ec2-metadata-token-ttl-seconds")
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .unwrap_or(TOKEN_TTL_SECONDS.into());
                Token::V2(token, asked + Duration::from_secs(ttl))
            }
            // Refused as IMDSv1-only instances and old proxies refuse it, or not answered: the
            // SDK goes on without a token.
            Ok(r) if matches!(r.status().as_u16(), 403..=405) => Token::V1,
            Err(_) => Token::V1,
            Ok(r) => return Err(ImdsError::Token { status: r.status().as_u16() }),
        };
        Ok(match &*state {
            Token::V2(t, _) => Some(t.clone()),
            _ => None,
        })
    }
}

/// [`Imds::instance_info`] on a client of its own.
pub async fn instance_info(endpoint: &str, local_addr: Option<IpAddr>) -> Result<InstanceInfo, ImdsError> {
    Imds::new(endpoint, local_addr)?.instance_info().await
}

/// [`Imds::interface_ips`] on a client of its own: what ipamd polls after attaching an ENI or
/// assigning addresses, until IMDS agrees with EC2.
pub async fn interface_ips(
    endpoint: &str,
    local_addr: Option<IpAddr>,
    mac: &str,
) -> Result<Vec<Ipv4Addr>, ImdsError> {
    Imds::new(endpoint, local_addr)?.interface_ips(mac).await
}

fn parse_ip(key: &str, text: String) -> Result<Ipv4Addr, ImdsError> {
    text.parse().map_err(|_| ImdsError::Parse { key: key.to_string(), kind: "IP address", text })
}

fn parse_cidr(key: &str, text: String) -> Result<Ipv4Net, ImdsError> {
    text.parse().map_err(|_| ImdsError::Parse { key: key.to_string(), kind: "CIDR address", text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_read_as_the_sdk_and_ipamd_word_them() {
        let e = ImdsError::GetMetadata { key: "mac".into(), source: GetMetadataError::Status(404) };
        assert_eq!(
            e.to_string(),
            "operation error ec2imds: GetMetadata, http response error StatusCode: 404, request to EC2 IMDS failed"
        );
        assert!(e.is_not_found());
        let e = ImdsError::Token { status: 400 };
        assert_eq!(
            e.to_string(),
            "operation error ec2imds: GetMetadata, failed to get API token, operation error ec2imds: getToken, http response error StatusCode: 400, request to EC2 IMDS failed"
        );
        assert!(!e.is_not_found());
        let e = ImdsError::Parse { key: "k".into(), kind: "IP address", text: "x".into() };
        assert_eq!(e.to_string(), "invalid IP address: x");
        assert!(Imds::new("https://169.254.169.254", None).is_err());
    }

    #[tokio::test]
    async fn tokens_are_asked_for_renewed_on_401_and_skipped_when_refused() {
        use crate::ec2::tests::fake_server;

        // IMDSv2: one PUT with the TTL, GETs with its token; a 401 buys a new token, once.
        let (url, seen) = fake_server(|n, req| match (req.method.as_str(), n) {
            ("PUT", 0) => (200, vec![], "token-1".into()),
            ("PUT", _) => (200, vec![], "token-2".into()),
            (_, 2) => (401, vec![], String::new()),
            _ if req.path.ends_with("/local-ipv4s") => (200, vec![], "10.0.0.5\n10.0.0.6".into()),
            _ => (200, vec![], "i-0abc".into()),
        })
        .await;
        let imds = Imds::new(&url, None).unwrap();
        assert_eq!(imds.get_string("instance-id").await.unwrap(), "i-0abc");
        let ips = imds.interface_ips("02:aa").await.unwrap();
        assert_eq!(ips, [Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 6)]);
        let seen = seen.lock().unwrap().clone();
        let calls: Vec<(&str, &str, Option<&str>)> = seen
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str(), r.header("x-aws-ec2-metadata-token")))
            .collect();
        assert_eq!(
            calls,
            [
                ("PUT", "/latest/api/token", None),
                ("GET", "/latest/meta-data/instance-id", Some("token-1")),
                ("GET", "/latest/meta-data/network/interfaces/macs/02:aa/local-ipv4s", Some("token-1")),
                ("PUT", "/latest/api/token", None),
                ("GET", "/latest/meta-data/network/interfaces/macs/02:aa/local-ipv4s", Some("token-2")),
            ]
        );
        assert_eq!(seen[0].header("x-aws-ec2-metadata-token-ttl-seconds"), Some("21600"));

        // The PUT refused (an IMDSv1-only proxy): GETs go without a token; 404 is no addresses.
        let (url, seen) = fake_server(|_, req| match req.method.as_str() {
            "PUT" => (403, vec![], String::new()),
            _ => (404, vec![], String::new()),
        })
        .await;
        let imds = Imds::new(&url, None).unwrap();
        assert!(imds.interface_ips("02:aa").await.unwrap().is_empty());
        assert!(imds.interface_prefixes("02:aa").await.unwrap().is_empty());
        let e = imds.get_string("mac").await.unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.iter().filter(|r| r.method == "PUT").count(), 1, "asked once, then IMDSv1");
        assert!(seen.iter().all(|r| r.header("x-aws-ec2-metadata-token").is_none()));

        // A 400 on the PUT is the end of it.
        let (url, _) = fake_server(|_, _| (400, vec![], String::new())).await;
        let e = instance_info(&url, None).await.unwrap_err();
        assert_eq!(e, ImdsError::Token { status: 400 });
    }
}
