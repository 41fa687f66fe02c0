//! The plugin's one job, as cloud-provider-aws's `ecr-credential-provider` does it: read the
//! registry host from the requested image, take credentials from the default chain, call
//! GetAuthorizationToken in the host's region, split the token into username and password, and
//! answer with `cacheKeyType: Registry` and a cache duration of half the token's remaining life
//! (the upstream plugin halves it "to compensate for the time loss between the token creation
//! and passing it all the way to kubelet"; `0s`, no caching, when ECR gives no expiry).

use std::{collections::BTreeMap, time::Duration};

use jiff::Timestamp;

use crate::{
    credentials::{self, Env},
    ecr::{self, EcrError},
    http::HttpClient,
    protocol::{AuthConfig, CacheKeyType, CredentialProviderRequest, CredentialProviderResponse},
    registry,
};

/// Why no credentials were given, with the upstream plugin's texts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PluginError {
    /// The request named no image.
    #[error("image in plugin request was empty")]
    EmptyImage,
    /// The image's host does not parse.
    #[error("{0}")]
    Host(String),
    /// ECR Public, which the lab's cloud does not serve.
    #[error("ECR Public ({0}) is not served by the lab's cloud")]
    Public(String),
    /// The ECR call failed.
    #[error(transparent)]
    Ecr(#[from] EcrError),
    /// `authorizationData` was empty.
    #[error("authorization data was empty")]
    EmptyAuthorizationData,
    /// The token was missing.
    #[error("authorization token in response was nil")]
    NilToken,
    /// The token is not base64 (Go's `base64.CorruptInputError`).
    #[error("illegal base64 data at input byte {0}")]
    Base64(usize),
    /// The decoded token has no `:`.
    #[error("error parsing username and password from authorization token")]
    NoColon,
}

/// What the plugin logs before it calls ECR (klog Info/Warning), for the caller to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// `Getting creds for private image <image>`.
    Getting(String),
    /// The host names no region.
    NoRegion,
}

/// Answers `request`, calling out with `http` and reading `env`, at `now`; `note` hears what
/// the upstream plugin logs along the way.
pub async fn get_credentials(
    request: &CredentialProviderRequest,
    env: &Env,
    http: &HttpClient,
    now: Timestamp,
    note: &mut dyn FnMut(Note),
) -> Result<CredentialProviderResponse, PluginError> {
    if request.image.is_empty() {
        return Err(PluginError::EmptyImage);
    }
    let host = registry::host_of(&request.image).map_err(PluginError::Host)?;
    if registry::ECR_PUBLIC_HOSTS.contains(&host.as_str()) {
        return Err(PluginError::Public(host));
    }
    note(Note::Getting(request.image.clone()));
    let region = match registry::region_of(&host) {
        Some(r) => Some(r),
        None => {
            note(Note::NoRegion);
            env.get("AWS_REGION").or_else(|| env.get("AWS_DEFAULT_REGION")).map(str::to_string)
        }
    };
    let region = region.ok_or(EcrError::NoRegion)?;
    let creds = credentials::resolve(env, http).await.map_err(EcrError::Credentials)?;
    let output =
        ecr::get_authorization_token(http, &ecr::endpoint(env, &region), &region, &creds, now).await?;
    let data = output.authorization_data.into_iter().next().ok_or(PluginError::EmptyAuthorizationData)?;
    let token = data.authorization_token.ok_or(PluginError::NilToken)?;
    let decoded = decode_base64(&token)?;
    let (username, password) = decoded.split_once(':').ok_or(PluginError::NoColon)?;
    let auth = BTreeMap::from([(
        host,
        AuthConfig { username: username.to_string(), password: password.to_string() },
    )]);
    Ok(CredentialProviderResponse::new(CacheKeyType::Registry, cache_duration(data.expires_at, now), auth))
}

/// Half the time from `now` to `expires_at` (whole seconds), `0s` without an expiry, and none
/// (the kubelet's default) when it has already passed.
pub fn cache_duration(expires_at: Option<f64>, now: Timestamp) -> Option<Duration> {
    let Some(expires_at) = expires_at else {
        return Some(Duration::ZERO);
    };
    // Go: (expiresAt.Unix() - time.Now().Unix()) / 2, integer seconds.
    let left = (expires_at.trunc() as i64 - now.as_second()) / 2;
    (left > 0).then(|| Duration::from_secs(left as u64))
}

/// Standard base64 as Go's `StdEncoding` decodes it, with its error for bad input.
fn decode_base64(token: &str) -> Result<String, PluginError> {
    let bytes =
        data_encoding::BASE64.decode(token.as_bytes()).map_err(|e| PluginError::Base64(e.position))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_duration_is_half_the_remaining_life() {
        let now = Timestamp::from_second(1_700_000_000).unwrap();
        let twelve_hours = 1_700_000_000.0 + 12.0 * 3600.0;
        assert_eq!(cache_duration(Some(twelve_hours), now), Some(Duration::from_secs(6 * 3600)));
        assert_eq!(cache_duration(Some(1_700_000_003.0), now), Some(Duration::from_secs(1)));
        assert_eq!(cache_duration(Some(1_700_000_001.0), now), None, "less than a second to halve");
        assert_eq!(cache_duration(Some(1_600_000_000.0), now), None, "already expired");
        assert_eq!(cache_duration(None, now), Some(Duration::ZERO), "no expiry: do not cache");
    }

    #[test]
    fn tokens_decode_like_go() {
        assert_eq!(decode_base64("QVdTOnNlY3JldA==").unwrap(), "AWS:secret");
        assert_eq!(decode_base64("QVdT!").unwrap_err().to_string(), "illegal base64 data at input byte 4");
    }

    #[tokio::test]
    async fn bad_requests_fail_before_any_call() {
        let http = HttpClient::default();
        let env = Env::default();
        let now = Timestamp::now();
        let mut notes = Vec::new();
        let empty = CredentialProviderRequest::new("");
        let err = get_credentials(&empty, &env, &http, now, &mut |n| notes.push(n)).await.unwrap_err();
        assert_eq!(err.to_string(), "image in plugin request was empty");
        // A non-ECR host with no region anywhere: the SDK's region error, after the warning.
        let other = CredentialProviderRequest::new("registry.example.com/app");
        let err = get_credentials(&other, &env, &http, now, &mut |n| notes.push(n)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "operation error ECR: GetAuthorizationToken, failed to resolve service endpoint, an AWS region is required, but was not found"
        );
        assert_eq!(notes, vec![Note::Getting("registry.example.com/app".into()), Note::NoRegion]);
    }

    #[tokio::test]
    async fn an_unreachable_imds_is_the_sdks_no_role_error() {
        // A port nothing listens on: every attempt is refused.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let endpoint = format!("http://127.0.0.1:{port}");
        let env = Env::from_pairs([("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint.as_str())]);
        let req = CredentialProviderRequest::new("123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx");
        let err = get_credentials(&req, &env, &HttpClient::default(), Timestamp::now(), &mut |_| {})
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "operation error ECR: GetAuthorizationToken, get identity: get credentials: failed to refresh cached credentials, no EC2 IMDS role found, operation error ec2imds: GetMetadata, exceeded maximum number of attempts, 3, request send failed, Get \"{endpoint}/latest/meta-data/iam/security-credentials/\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        );
    }
}
