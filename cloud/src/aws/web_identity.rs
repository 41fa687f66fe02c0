//! The cluster's OIDC issuer as AWS sees it: the keys STS checks a web identity token's RS256
//! signature with, fetched from the issuer as AWS fetches them.
//!
//! In EKS, AWS hosts each cluster's issuer (`https://oidc.eks.<region>.amazonaws.com/id/<id>`)
//! and serves the cluster apiserver's discovery document and JWKS there; STS reads that JWKS
//! when a pod calls `AssumeRoleWithWebIdentity`. The lab's cloud plays the same part: it reads
//! `/.well-known/openid-configuration` and the JWKS from the apiserver it follows
//! (`--apiserver`), so the issuer it trusts is whatever the apiserver's
//! `--service-account-issuer` says, and a key the apiserver rotates in is picked up the next time
//! a token names it.
//!
//! Fetching is async and the STS handler is not, so the endpoint calls [`IssuerKeys::refresh`]
//! before it runs `AssumeRoleWithWebIdentity`, and the handler verifies against the snapshot
//! ([`KeysVerifier`]) that refresh left. A fetch that fails keeps the last keys (AWS caches them
//! too), and is retried at most every [`RETRY`].
//!
//! Texts: a token whose key cannot be found, or whose issuer cannot be reached, gets
//! "Couldn't retrieve verification key from your identity provider,  please reference
//! AssumeRoleWithWebIdentity documentation for requirements" (InvalidIdentityToken; the double
//! space is AWS's, quoted verbatim in public issues); a signature that does not verify gets the
//! STS model's documented text for InvalidIdentityToken.

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use jiff::Timestamp;
use netlab_aws::AwsError;
use netlab_oidc::{Discovery, Jwks, VerifyError};

use super::sts::{NOT_A_JWT, VerifiedToken, WebIdentityVerifier, invalid_token};

/// Keys older than this are fetched again before a verification.
pub const MAX_AGE: Duration = Duration::from_secs(300);

/// The shortest time between two fetches (a token naming an unknown key must not turn every
/// call into a fetch).
pub const RETRY: Duration = Duration::from_secs(5);

/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// AWS's text for a token whose verification key it cannot get.
pub const NO_KEY: &str = "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements";

/// The STS model's text for a token that fails verification.
pub const NOT_VALIDATED: &str = "The web identity token that was passed could not be validated by AWS. Get a new identity token from the identity provider and then retry the request.";

/// Why a fetch of the issuer's documents failed (logged; the last keys stay).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL could not be built.
    #[error("{url}: {source}")]
    Url {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: http::uri::InvalidUri,
    },
    /// The request failed.
    #[error("GET {url}: {source}")]
    Request {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper_util::client::legacy::Error,
    },
    /// The body could not be read.
    #[error("GET {url}: reading the body: {source}")]
    Body {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: hyper::Error,
    },
    /// No answer in time.
    #[error("GET {url}: no answer in {FETCH_TIMEOUT:?}")]
    Timeout {
        /// The URL.
        url: String,
    },
    /// Not a 200.
    #[error("GET {url}: {status}")]
    Status {
        /// The URL.
        url: String,
        /// What came back.
        status: http::StatusCode,
    },
    /// Not the document expected.
    #[error("GET {url}: {source}")]
    Decode {
        /// The URL.
        url: String,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

/// What a fetch brought back.
#[derive(Debug, Clone)]
struct Fetched {
    issuer: String,
    keys: Arc<Jwks>,
}

#[derive(Debug, Default)]
struct Cache {
    fetched: Option<Fetched>,
    at: Option<Instant>,
    tried: Option<Instant>,
}

/// The issuer's keys, fetched from the apiserver and cached.
#[derive(Debug)]
pub struct IssuerKeys {
    base: Option<String>,
    client: Client<HttpConnector, Empty<Bytes>>,
    cache: Mutex<Cache>,
}

/// A snapshot of the keys, to verify with.
#[derive(Debug, Clone, Default)]
pub struct KeysVerifier {
    fetched: Option<Fetched>,
}

// === impl IssuerKeys ===

impl IssuerKeys {
    /// Keys from the apiserver at `base` (`http://host:port`); `None`: no issuer is known and
    /// every token is refused as one whose keys cannot be found.
    pub fn new(base: Option<String>) -> Self {
        let base = base.map(|b| b.trim_end_matches('/').to_string());
        Self { base, client: Client::builder(TokioExecutor::new()).build_http(), cache: Mutex::default() }
    }

    /// Fetches the documents when the keys are missing, older than [`MAX_AGE`], or do not hold
    /// `kid`; at most once per [`RETRY`].
    pub async fn refresh(&self, kid: Option<&str>) {
        let Some(base) = &self.base else { return };
        let now = Instant::now();
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            let fresh = cache.at.is_some_and(|at| now.duration_since(at) < MAX_AGE);
            let has_kid = match (&cache.fetched, kid) {
                (Some(f), Some(kid)) => f.keys.keys.iter().any(|k| k.kid == kid),
                (Some(_), None) => true,
                (None, _) => false,
            };
            if fresh && has_kid {
                return;
            }
            if cache.tried.is_some_and(|t| now.duration_since(t) < RETRY) {
                return;
            }
            cache.tried = Some(now);
        }
        match self.fetch(base).await {
            Ok(fetched) => {
                tracing::debug!(issuer = %fetched.issuer, keys = fetched.keys.keys.len(), "Fetched the issuer's keys.");
                let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                cache.fetched = Some(fetched);
                cache.at = Some(now);
            }
            Err(e) => tracing::warn!(error = %e, "Could not fetch the service-account issuer's keys."),
        }
    }

    /// The keys as they are now.
    pub fn verifier(&self) -> KeysVerifier {
        KeysVerifier { fetched: self.cache.lock().unwrap_or_else(|e| e.into_inner()).fetched.clone() }
    }

    async fn fetch(&self, base: &str) -> Result<Fetched, FetchError> {
        let discovery: Discovery = self.get(&format!("{base}/.well-known/openid-configuration")).await?;
        // The JWKS is read where the apiserver serves it: the document's `jwks_uri` names the
        // issuer's public host, which (as in EKS, where AWS hosts it) this process stands in for.
        let keys: Jwks = self.get(&format!("{base}/openid/v1/jwks")).await?;
        Ok(Fetched { issuer: discovery.issuer, keys: Arc::new(keys) })
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, FetchError> {
        let uri: http::Uri = url.parse().map_err(|source| FetchError::Url { url: url.into(), source })?;
        let request = async {
            let response = self
                .client
                .get(uri)
                .await
                .map_err(|source| FetchError::Request { url: url.into(), source })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|source| FetchError::Body { url: url.into(), source })?
                .to_bytes();
            if status != http::StatusCode::OK {
                return Err(FetchError::Status { url: url.into(), status });
            }
            serde_json::from_slice(&body).map_err(|source| FetchError::Decode { url: url.into(), source })
        };
        tokio::time::timeout(FETCH_TIMEOUT, request)
            .await
            .map_err(|_| FetchError::Timeout { url: url.into() })?
    }
}

// === impl KeysVerifier ===

impl KeysVerifier {
    /// A verifier over fixed keys of `issuer` (tests, and a snapshot).
    pub fn new(issuer: impl Into<String>, keys: Jwks) -> Self {
        Self { fetched: Some(Fetched { issuer: issuer.into(), keys: Arc::new(keys) }) }
    }
}

impl WebIdentityVerifier for KeysVerifier {
    fn verify(&self, token: &str, _now: Timestamp) -> Result<VerifiedToken, AwsError> {
        let unverified = netlab_oidc::decode_unverified(token).map_err(|_| invalid_token(NOT_A_JWT))?;
        let issuer = unverified.standard.iss.clone().unwrap_or_default();
        let Some(fetched) = self.fetched.as_ref().filter(|f| f.issuer == issuer) else {
            // An issuer the lab does not host: AWS would fetch its keys from the internet.
            return Err(invalid_token(NO_KEY));
        };
        let verified = netlab_oidc::verify(token, &fetched.keys).map_err(|e| match e {
            VerifyError::UnknownKeyId { .. } | VerifyError::NoRsaKey => invalid_token(NO_KEY),
            e if e.is_malformed() => invalid_token(NOT_A_JWT),
            _ => invalid_token(NOT_VALIDATED),
        })?;
        let claims = verified.standard;
        let expires_at = claims
            .exp
            .and_then(|s| Timestamp::from_second(s).ok())
            .ok_or_else(|| invalid_token(NOT_VALIDATED))?;
        Ok(VerifiedToken {
            issuer,
            subject: claims.sub.unwrap_or_default(),
            audiences: claims.aud,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use netlab_oidc::{ObjectRef, ServiceAccountClaims, SigningKey};

    use super::*;

    const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/ABC";

    fn token(key: &SigningKey, issuer: &str) -> String {
        let now = Timestamp::now().as_second();
        let claims = ServiceAccountClaims::new(
            issuer,
            vec!["sts.amazonaws.com".into()],
            "default",
            ObjectRef::new("reader", "uid-1"),
            None,
            now,
            3600,
        )
        .unwrap();
        key.sign(&claims).unwrap()
    }

    fn refused(verifier: &KeysVerifier, token: &str) -> String {
        let e = verifier.verify(token, Timestamp::now()).unwrap_err();
        assert_eq!(e.code.as_ref(), "InvalidIdentityToken");
        e.message
    }

    #[test]
    fn verifies_the_issuers_tokens_and_refuses_the_rest_with_awss_texts() {
        let key = SigningKey::generate().unwrap();
        let verifier = KeysVerifier::new(ISSUER, Jwks::from_keys(&[&key]));
        let good = token(&key, ISSUER);
        let v = verifier.verify(&good, Timestamp::now()).unwrap();
        assert_eq!(v.issuer, ISSUER);
        assert_eq!(v.subject, "system:serviceaccount:default:reader");
        assert_eq!(v.audiences, ["sts.amazonaws.com"]);

        // Another issuer: its keys are not the lab's to find.
        assert_eq!(refused(&verifier, &token(&key, "https://example.com")), NO_KEY);
        // Signed by a key the issuer does not publish (its kid is unknown).
        let other = SigningKey::generate().unwrap();
        assert_eq!(refused(&verifier, &token(&other, ISSUER)), NO_KEY);
        // Another token's payload under this one's signature (the payloads differ: each `jti`
        // is random).
        let mut parts: Vec<&str> = good.split('.').collect();
        let second = token(&key, ISSUER);
        parts[1] = second.split('.').nth(1).unwrap();
        assert_eq!(refused(&verifier, &parts.join(".")), NOT_VALIDATED);
        // One signature character changed (away from the last, whose low bits must stay zero).
        let at = good.len() - 10;
        let flipped = if &good[at..=at] == "A" { "B" } else { "A" };
        let sig = format!("{}{flipped}{}", &good[..at], &good[at + 1..]);
        assert_eq!(refused(&verifier, &sig), NOT_VALIDATED);
        assert_eq!(refused(&verifier, "opaque"), NOT_A_JWT);
        // No keys fetched yet (no apiserver): nothing verifies.
        assert_eq!(refused(&KeysVerifier::default(), &good), NO_KEY);
    }
}
