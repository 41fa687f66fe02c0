//! The kubelet's exec-plugin protocol, `credentialprovider.kubelet.k8s.io/v1` (KEP-2133, GA in
//! 1.26): the kubelet writes a `CredentialProviderRequest` naming the image to the plugin's
//! stdin and reads a `CredentialProviderResponse` from its stdout. Both sides of the lab use
//! these types: the `ecr-credential-provider` binary and the node-agent's kubelet.
//!
//! The JSON is what k8s.io/kubelet's types marshal to (TypeMeta's `kind` and `apiVersion`
//! first, then the fields in declaration order, `omitempty` where the Go type has it), and the
//! durations are Go's (`metav1.Duration` marshals `time.Duration.String()`, `6h0m0s`).

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

/// The API version of both messages.
pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
/// The request's kind.
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
/// The response's kind.
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";

/// What the kubelet asks: credentials for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderRequest {
    /// `kind`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// `apiVersion`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    /// The image, as the kubelet looks it up: the repository without tag or digest
    /// (`123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx`).
    #[serde(default)]
    pub image: String,
}

/// How the kubelet keys what it caches from a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CacheKeyType {
    /// Per image.
    Image,
    /// Per registry host: every image of the registry shares the credentials.
    Registry,
    /// For every image the provider matches.
    Global,
}

/// One registry's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthConfig {
    /// `username` (`AWS` for ECR).
    pub username: String,
    /// `password`.
    pub password: String,
}

/// What the plugin answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderResponse {
    /// `kind`.
    #[serde(default)]
    pub kind: String,
    /// `apiVersion`.
    #[serde(default)]
    pub api_version: String,
    /// How the kubelet keys its cache of these credentials.
    pub cache_key_type: CacheKeyType,
    /// How long to cache them (Go duration text): absent means the provider's
    /// `defaultCacheDuration`, `0s` means not at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_duration: Option<String>,
    /// Credentials by image match key (a registry host, here).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub auth: BTreeMap<String, AuthConfig>,
}

/// Why a request is not one the plugin takes, with the texts the Go plugin's decoding gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not JSON, or no `apiVersion`/`kind` to read.
    #[error("couldn't get version/kind; json parse error: {0}")]
    Interpret(String),
    /// Another API version.
    #[error("group version {0} is not supported")]
    Version(String),
    /// Another kind.
    #[error("kind was {0:?}, expected CredentialProviderRequest")]
    Kind(String),
}

/// A Go duration string that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("time: invalid duration {0:?}")]
pub struct InvalidDuration(pub String);

// === impl CredentialProviderRequest ===

impl CredentialProviderRequest {
    /// A v1 request for `image`.
    pub fn new(image: &str) -> Self {
        Self { kind: REQUEST_KIND.into(), api_version: API_VERSION.into(), image: image.into() }
    }

    /// Reads stdin's bytes as the plugin does: the group version first, then the kind.
    pub fn decode(data: &[u8]) -> Result<Self, RequestError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            #[serde(default)]
            api_version: String,
            #[serde(default)]
            kind: String,
        }
        let meta: Meta = serde_json::from_slice(data).map_err(|e| RequestError::Interpret(e.to_string()))?;
        if meta.api_version != API_VERSION {
            return Err(RequestError::Version(meta.api_version));
        }
        if meta.kind != REQUEST_KIND {
            return Err(RequestError::Kind(meta.kind));
        }
        serde_json::from_slice(data).map_err(|e| RequestError::Interpret(e.to_string()))
    }
}

// === impl CredentialProviderResponse ===

impl CredentialProviderResponse {
    /// A v1 response.
    pub fn new(
        cache_key_type: CacheKeyType,
        cache_duration: Option<Duration>,
        auth: BTreeMap<String, AuthConfig>,
    ) -> Self {
        Self {
            kind: RESPONSE_KIND.into(),
            api_version: API_VERSION.into(),
            cache_key_type,
            cache_duration: cache_duration.map(go_duration),
            auth,
        }
    }

    /// The JSON the plugin writes (one line, then a newline, as the Go encoder ends it).
    pub fn encode(&self) -> Vec<u8> {
        // Plain data: serialising cannot fail.
        let mut out = serde_json::to_vec(self).expect("a response serialises");
        out.push(b'\n');
        out
    }

    /// The cache duration, parsed (None: absent).
    pub fn cache_duration(&self) -> Result<Option<Duration>, InvalidDuration> {
        self.cache_duration.as_deref().map(parse_go_duration).transpose()
    }
}

/// `d` as Go's `time.Duration.String()` writes it: `6h0m0s`, `1m30s`, `45s`, `1.5s`, `0s`.
pub fn go_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".into();
    }
    if nanos < 1_000_000_000 {
        let (unit, div) = if nanos < 1_000 {
            ("ns", 1)
        } else if nanos < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{}{unit}", fraction(nanos, div));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = (nanos / 60_000_000_000) % 60;
    let seconds = fraction(nanos % 60_000_000_000, 1_000_000_000);
    match (hours, minutes) {
        (0, 0) => format!("{seconds}s"),
        (0, m) => format!("{m}m{seconds}s"),
        (h, m) => format!("{h}h{m}m{seconds}s"),
    }
}

/// `n / div` with the fraction's trailing zeros dropped (`1500/1000` → `1.5`).
fn fraction(n: u128, div: u128) -> String {
    let (whole, rest) = (n / div, n % div);
    if rest == 0 {
        return whole.to_string();
    }
    let width = div.to_string().len() - 1;
    let frac = format!("{rest:0width$}");
    format!("{whole}.{}", frac.trim_end_matches('0'))
}

/// Parses a Go duration (`12h`, `1h30m`, `1.5s`, `300ms`, `0`), as `time.ParseDuration` does,
/// negative durations excepted (a cache duration cannot be negative).
pub fn parse_go_duration(s: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(s.to_string());
    let text = s.strip_prefix('+').unwrap_or(s);
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    if text.is_empty() {
        return Err(invalid());
    }
    let mut rest = text;
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(invalid)?;
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." {
            return Err(invalid());
        }
        let value: f64 = number.parse().map_err(|_| invalid())?;
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(invalid()),
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|_| invalid())
}

#[cfg(test)]
mod tests;
