//! The kubelet's image credential providers (KEP-2133): `--image-credential-provider-config`
//! names a `CredentialProviderConfig` (kubelet.config.k8s.io/v1) whose providers are binaries
//! in `--image-credential-provider-bin-dir`. Before a pull, every provider whose `matchImages`
//! match the image is asked for credentials: from its cache (keyed by image, registry or
//! globally, as the plugin's `cacheKeyType` said, for its `cacheDuration` or the provider's
//! `defaultCacheDuration`), else by executing the plugin with a `CredentialProviderRequest` on
//! stdin and the provider's `args` and `env`. The answer's `auth` entries whose keys match the
//! image are the pull's credentials.
//!
//! A plugin that fails does not fail the pull: the kubelet logs `Failed getting credential
//! from external registry credential provider: error execing credential provider plugin <name>
//! for image <image>: exit status 1: <the plugin's stderr>` and pulls without credentials, so
//! the pod's event is the registry's anonymous refusal (containerd's `... no basic auth
//! credentials`) while the IAM reason is in the kubelet's log and the plugin's span. That split
//! is what an engineer meets on EKS.
//!
//! Matching is the kubelet's `URLsMatch`: the glob and the image are read as schemeless URLs;
//! ports must be equal, the host must have as many dot-separated labels as the glob, each
//! label matching its glob label by `filepath.Match` (so `*` never spans a dot), and the glob's
//! path must be a prefix of the image's.
//!
//! The plugin runs with the kubelet's environment plus the provider's `env` (the provider's
//! win), and, for the lab, three variables a real node does not need: `TRACEPARENT` (the pull
//! span, so the plugin's spans join the pull's trace), `OTEL_EXPORTER_OTLP_ENDPOINT` (where the
//! kubelet exports), and `AWS_EC2_METADATA_SERVICE_ENDPOINT` naming the node's host-side IMDS
//! address ([`crate::host_metadata`]), the lab's stand-in for the route a real host has to
//! 169.254.169.254. A provider's own `env` may still override it.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use netlab_credential_provider::protocol::{
    self, AuthConfig, CacheKeyType, CredentialProviderRequest, CredentialProviderResponse,
};
use serde::Deserialize;
use tokio::io::AsyncWriteExt as _;

use crate::image::registry::BasicAuth;

/// What one plugin answer gives: credentials by image match key.
pub type DockerConfig = BTreeMap<String, AuthConfig>;

/// A malformed glob (Go's `filepath.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// The config file's kind.
pub const CONFIG_KIND: &str = "CredentialProviderConfig";
/// The config API versions the kubelet reads.
pub const CONFIG_API_VERSIONS: &[&str] =
    &["kubelet.config.k8s.io/v1", "kubelet.config.k8s.io/v1beta1", "kubelet.config.k8s.io/v1alpha1"];
/// The plugin API versions a provider may name.
pub const PLUGIN_API_VERSIONS: &[&str] = &[
    "credentialprovider.kubelet.k8s.io/v1",
    "credentialprovider.kubelet.k8s.io/v1alpha1",
    "credentialprovider.kubelet.k8s.io/v1beta1",
];
/// The kubelet's catch-all timeout for one plugin run.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(60);
/// The cache key of a `Global` answer.
const GLOBAL_CACHE_KEY: &str = "global";

/// `CredentialProviderConfig`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderConfig {
    /// `apiVersion`.
    #[serde(default)]
    pub api_version: String,
    /// `kind`.
    #[serde(default)]
    pub kind: String,
    /// `providers`.
    #[serde(default)]
    pub providers: Vec<CredentialProvider>,
}

/// One provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProvider {
    /// The plugin binary's name in the bin dir.
    #[serde(default)]
    pub name: String,
    /// Image globs this provider answers for.
    #[serde(default)]
    pub match_images: Vec<String>,
    /// How long to cache an answer that names no duration (Go duration text).
    #[serde(default)]
    pub default_cache_duration: Option<String>,
    /// The plugin API version to speak.
    #[serde(default)]
    pub api_version: String,
    /// Arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Extra environment.
    #[serde(default)]
    pub env: Vec<ExecEnvVar>,
}

/// One environment variable of a provider.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ExecEnvVar {
    /// `name`.
    pub name: String,
    /// `value`.
    #[serde(default)]
    pub value: String,
}

/// Why the kubelet refuses to start with the flags it was given (the kubelet's texts).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// One of the two flags without the other.
    #[error(
        "--image-credential-provider-config and --image-credential-provider-bin-dir must be set together"
    )]
    Flags,
    /// The bin dir is not there.
    #[error("plugin binary directory {0} did not exist")]
    NoBinDir(String),
    /// A provider's binary is not there.
    #[error("plugin binary executable {0} did not exist")]
    NoBinary(String),
    /// The file could not be read.
    #[error("unable to read external registry credential provider configuration from {path:?}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a config.
    #[error("error decoding config {path}: {reason}")]
    Decode {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// The config is invalid: field errors, as the kubelet's validation lists them.
    #[error("failed to validate credential provider config: {}", render_field_errors(.0))]
    Invalid(Vec<String>),
}

/// Why one plugin run gave no credentials (the kubelet's texts).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The plugin did not run, or exited non-zero, or ran too long; with its stderr.
    #[error("error execing credential provider plugin {name} for image {image}: {cause}: {stderr}")]
    Exec {
        /// The provider.
        name: String,
        /// The image.
        image: String,
        /// `exit status 1`, `context deadline exceeded`, the spawn error.
        cause: String,
        /// The plugin's stderr.
        stderr: String,
    },
    /// The answer names no version/kind.
    #[error("error reading GVK from response: {0}")]
    Gvk(String),
    /// Another API version than the provider's.
    #[error(
        "apiVersion from credential plugin response did not match expected apiVersion:{expected}, actual apiVersion:{actual}"
    )]
    ApiVersion {
        /// The provider's.
        expected: String,
        /// The answer's.
        actual: String,
    },
    /// The answer does not decode (not shown: it may hold credentials).
    #[error("error decoding credential provider plugin response from stdout")]
    Decode,
    /// The answer's cacheDuration does not parse.
    #[error("credential provider plugin returned an invalid cacheDuration: {0}")]
    CacheDuration(String),
}

/// The providers, with their caches.
#[derive(Debug, Default)]
pub struct Providers {
    providers: Vec<Provider>,
    /// Extra environment for every plugin run (the lab's: host IMDS address, OTLP endpoint).
    env: Vec<(String, String)>,
}

#[derive(Debug)]
struct Provider {
    config: CredentialProvider,
    binary: PathBuf,
    default_cache: Duration,
    /// Cached answers by key (image, registry or `global`), with their expiry. The lock is
    /// held over a plugin run too, so concurrent pulls run the plugin once (the kubelet's
    /// singleflight).
    cache: tokio::sync::Mutex<HashMap<String, (DockerConfig, Instant)>>,
}

// === impl Providers ===

impl Providers {
    /// No providers: every pull is anonymous.
    pub fn none() -> Self {
        Self::default()
    }

    /// The providers of `config_file` with binaries in `bin_dir` (both flags or neither), checked
    /// as the kubelet checks them at startup.
    pub fn load(config_file: Option<&Path>, bin_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let (config_file, bin_dir) = match (config_file, bin_dir) {
            (None, None) => return Ok(Self::none()),
            (Some(c), Some(b)) => (c, b),
            _ => return Err(ConfigError::Flags),
        };
        if !bin_dir.is_dir() {
            return Err(ConfigError::NoBinDir(bin_dir.display().to_string()));
        }
        let text = std::fs::read_to_string(config_file)
            .map_err(|source| ConfigError::Read { path: config_file.to_path_buf(), source })?;
        let config = parse_config(&text, &config_file.display().to_string())?;
        let mut providers = Vec::new();
        for p in config.providers {
            let binary = bin_dir.join(&p.name);
            if !binary.is_file() {
                return Err(ConfigError::NoBinary(binary.display().to_string()));
            }
            let default_cache = p
                .default_cache_duration
                .as_deref()
                .map(protocol::parse_go_duration)
                .transpose()
                .ok()
                .flatten()
                .unwrap_or_default();
            providers.push(Provider { config: p, binary, default_cache, cache: Default::default() });
        }
        Ok(Self { providers, env: Vec::new() })
    }

    /// The same providers, every plugin run getting `env` too (before each provider's own).
    pub fn with_env(mut self, env: Vec<(String, String)>) -> Self {
        self.env = env;
        self
    }

    /// Whether any provider is configured.
    pub fn is_empty(&self) -> bool {
        self.providers.is_empty()
    }

    /// Credentials for `image` (the repository without tag, as the kubelet looks it up), from
    /// the first provider that has some. A plugin failure is logged (the kubelet's text) and
    /// recorded on the pull span, and the pull goes on without.
    pub async fn lookup(&self, image: &str) -> Option<BasicAuth> {
        for provider in &self.providers {
            if !provider.config.match_images.iter().any(|glob| urls_match(glob, image)) {
                continue;
            }
            let span = tracing::info_span!(
                "kubelet credential provider",
                k8s.credential_provider.name = %provider.config.name,
                container.image.name = %image,
                otel.status_code = tracing::field::Empty,
                otel.status_message = tracing::field::Empty,
                netlab.cache = tracing::field::Empty,
            );
            let config =
                tracing::Instrument::instrument(provider.provide(image, &self.env, &span), span.clone())
                    .await;
            match config {
                Ok(config) => {
                    if let Some(auth) = config.iter().find(|(key, _)| urls_match(key, image)).map(|(_, a)| a)
                    {
                        return Some(BasicAuth {
                            username: auth.username.clone(),
                            password: auth.password.clone(),
                        });
                    }
                }
                Err(e) => {
                    let message =
                        format!("Failed getting credential from external registry credential provider: {e}");
                    span.record("otel.status_code", "ERROR");
                    span.record("otel.status_message", message.as_str());
                    span.in_scope(|| tracing::error!("{message}"));
                }
            }
        }
        None
    }
}

// === impl Provider ===

impl Provider {
    async fn provide(
        &self,
        image: &str,
        env: &[(String, String)],
        span: &tracing::Span,
    ) -> Result<DockerConfig, ExecError> {
        let mut cache = self.cache.lock().await;
        let now = Instant::now();
        cache.retain(|_, (_, expires)| *expires > now);
        let registry = parse_registry(image);
        for key in [image, registry, GLOBAL_CACHE_KEY] {
            if let Some((config, _)) = cache.get(key) {
                span.record("netlab.cache", "hit");
                return Ok(config.clone());
            }
        }
        span.record("netlab.cache", "miss");
        let response = self.exec(image, env).await?;
        let key = match response.cache_key_type {
            CacheKeyType::Image => image.to_string(),
            CacheKeyType::Registry => registry.to_string(),
            CacheKeyType::Global => GLOBAL_CACHE_KEY.to_string(),
        };
        let duration = match response.cache_duration().map_err(|e| ExecError::CacheDuration(e.to_string()))? {
            Some(d) => d,
            None => self.default_cache,
        };
        if !duration.is_zero() {
            cache.insert(key, (response.auth.clone(), Instant::now() + duration));
        }
        Ok(response.auth)
    }

    /// Runs the plugin once: the request on stdin, the response from stdout.
    async fn exec(
        &self,
        image: &str,
        env: &[(String, String)],
    ) -> Result<CredentialProviderResponse, ExecError> {
        let name = &self.config.name;
        let fail = |cause: String, stderr: String| ExecError::Exec {
            name: name.clone(),
            image: image.to_string(),
            cause,
            stderr,
        };
        let request = CredentialProviderRequest {
            kind: protocol::REQUEST_KIND.into(),
            api_version: self.config.api_version.clone(),
            image: image.to_string(),
        };
        let stdin = serde_json::to_vec(&request).map_err(|e| fail(e.to_string(), String::new()))?;
        let mut cmd = tokio::process::Command::new(&self.binary);
        cmd.args(&self.config.args)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(self.config.env.iter().map(|v| (v.name.as_str(), v.value.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(tp) = netlab_telemetry::propagation::current_traceparent() {
            cmd.env("TRACEPARENT", tp);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| fail(format!("fork/exec {}: {e}", self.binary.display()), String::new()))?;
        if let Some(mut pipe) = child.stdin.take() {
            // A plugin that does not read its stdin is its own problem; its exit tells.
            let _ = pipe.write_all(&stdin).await;
        }
        let output = match tokio::time::timeout(EXEC_TIMEOUT, child.wait_with_output()).await {
            Ok(Ok(o)) => o,
            Ok(Err(e)) => return Err(fail(e.to_string(), String::new())),
            Err(_) => return Err(fail("context deadline exceeded".into(), String::new())),
        };
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if !output.status.success() {
            let cause = match output.status.code() {
                Some(code) => format!("exit status {code}"),
                None => "signal: killed".to_string(),
            };
            return Err(fail(cause, stderr));
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Meta {
            #[serde(default)]
            api_version: String,
        }
        let meta: Meta = serde_json::from_slice(&output.stdout).map_err(|e| ExecError::Gvk(e.to_string()))?;
        if meta.api_version != self.config.api_version {
            return Err(ExecError::ApiVersion {
                expected: self.config.api_version.clone(),
                actual: meta.api_version,
            });
        }
        let response: CredentialProviderResponse =
            serde_json::from_slice(&output.stdout).map_err(|_| ExecError::Decode)?;
        if response.kind != protocol::RESPONSE_KIND {
            return Err(ExecError::Decode);
        }
        Ok(response)
    }
}

/// Reads and validates a config (YAML or JSON) as the kubelet does.
pub fn parse_config(text: &str, path: &str) -> Result<CredentialProviderConfig, ConfigError> {
    let config: CredentialProviderConfig = yaml_serde::from_str(text)
        .map_err(|e| ConfigError::Decode { path: path.to_string(), reason: e.to_string() })?;
    if config.kind != CONFIG_KIND || !CONFIG_API_VERSIONS.contains(&config.api_version.as_str()) {
        return Err(ConfigError::Decode {
            path: path.to_string(),
            reason: format!("no kind {:?} is registered for version {:?}", config.kind, config.api_version),
        });
    }
    let mut errors = Vec::new();
    if config.providers.is_empty() {
        errors.push("providers: Required value: at least 1 item in plugins is required".to_string());
    }
    for p in &config.providers {
        if p.name.is_empty() {
            errors.push("providers.name: Required value".to_string());
        }
        for (bad, why) in
            [("/", "provider name cannot contain '/'"), (" ", "provider name cannot contain spaces")]
        {
            if p.name.contains(bad) {
                errors.push(format!("providers.name: Invalid value: {:?}: {why}", p.name));
            }
        }
        if p.name == "." || p.name == ".." {
            errors.push(format!(
                "providers.name: Invalid value: {:?}: provider name cannot be '{}'",
                p.name, p.name
            ));
        }
        if p.api_version.is_empty() {
            errors.push("providers.apiVersion: Required value".to_string());
        } else if !PLUGIN_API_VERSIONS.contains(&p.api_version.as_str()) {
            let supported: Vec<String> = PLUGIN_API_VERSIONS.iter().map(|v| format!("{v:?}")).collect();
            errors.push(format!(
                "providers.apiVersion: Unsupported value: {:?}: supported values: {}",
                p.api_version,
                supported.join(", ")
            ));
        }
        if p.match_images.is_empty() {
            errors.push(
                "providers.matchImages: Required value: at least 1 item in matchImages is required".into(),
            );
        }
        for m in &p.match_images {
            if let Err(why) = glob_checked(m) {
                errors.push(format!(
                    "providers.matchImages: Invalid value: {m:?}: match image is invalid: {why}"
                ));
            }
        }
        match p.default_cache_duration.as_deref() {
            None => errors.push("providers.defaultCacheDuration: Required value".to_string()),
            Some(d) => {
                if let Err(e) = protocol::parse_go_duration(d) {
                    errors.push(format!("providers.defaultCacheDuration: Invalid value: {d:?}: {e}"));
                }
            }
        }
    }
    if errors.is_empty() { Ok(config) } else { Err(ConfigError::Invalid(errors)) }
}

fn render_field_errors(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The registry of an image (its first path segment), the `Registry` cache key.
pub fn parse_registry(image: &str) -> &str {
    image.split('/').next().unwrap_or(image)
}

/// A schemeless URL's host (with port, if any) and path, as `url.Parse("https://" + s)` reads it.
fn split_url(s: &str) -> (&str, &str) {
    let end = s.find(['/', '?', '#']).unwrap_or(s.len());
    let (authority, rest) = s.split_at(end);
    let path = rest.split(['?', '#']).next().unwrap_or("");
    (authority.rsplit_once('@').map_or(authority, |(_, h)| h), path)
}

/// `(host, port)` as `net.SplitHostPort` or, without a port, the whole host.
fn split_host_port(authority: &str) -> (&str, &str) {
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') || h.starts_with('[') => {
            (h.trim_start_matches('[').trim_end_matches(']'), p)
        }
        _ => (authority, ""),
    }
}

/// Whether `target` matches the glob URL `glob` (the kubelet's `URLsMatchStr`).
pub fn urls_match(glob: &str, target: &str) -> bool {
    let (glob_authority, glob_path) = split_url(glob);
    let (target_authority, target_path) = split_url(target);
    let (glob_host, glob_port) = split_host_port(glob_authority);
    let (target_host, target_port) = split_host_port(target_authority);
    if glob_port != target_port {
        return false;
    }
    let glob_labels: Vec<&str> = glob_host.split('.').collect();
    let target_labels: Vec<&str> = target_host.split('.').collect();
    if glob_labels.len() != target_labels.len() || !target_path.starts_with(glob_path) {
        return false;
    }
    glob_labels.iter().zip(&target_labels).all(|(g, t)| filepath_match(g, t).unwrap_or(false))
}

/// A glob's syntax error, as `filepath.Match` reports it.
fn glob_checked(glob: &str) -> Result<(), BadPattern> {
    let (authority, _) = split_url(glob);
    let (host, _) = split_host_port(authority);
    for label in host.split('.') {
        filepath_match(label, "")?;
    }
    Ok(())
}

/// Go's `filepath.Match` on one label (which holds no separator): `*`, `?`, `[...]` classes
/// with ranges and `^` negation, `\` escapes. `Err` for a malformed pattern.
pub fn filepath_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Validate the whole pattern first (Go reports bad patterns even on early mismatch).
    let mut i = 0;
    while i < p.len() {
        i = match p[i] {
            '[' => class_end(&p, i)?,
            '\\' if i + 1 >= p.len() => return Err(BadPattern),
            '\\' => i + 2,
            _ => i + 1,
        };
    }
    Ok(match_from(&p, 0, &n, 0))
}

/// The index after the class that opens at `p[start]`.
fn class_end(p: &[char], start: usize) -> Result<usize, BadPattern> {
    let mut i = start + 1;
    if i < p.len() && p[i] == '^' {
        i += 1;
    }
    let mut first = true;
    loop {
        match p.get(i) {
            None => return Err(BadPattern),
            Some(']') if !first => return Ok(i + 1),
            Some('\\') => i += 2,
            Some('-') if first => return Err(BadPattern),
            _ => i += 1,
        }
        first = false;
    }
}

fn class_matches(p: &[char], start: usize, c: char) -> bool {
    let mut i = start + 1;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != ']') {
        first = false;
        let lo = if p[i] == '\\' {
            i += 1;
            p[i]
        } else {
            p[i]
        };
        i += 1;
        let hi = if i + 1 < p.len() && p[i] == '-' && p[i + 1] != ']' {
            let hi = if p[i + 1] == '\\' { p.get(i + 2).copied().unwrap_or(lo) } else { p[i + 1] };
            i += if p[i + 1] == '\\' { 3 } else { 2 };
            hi
        } else {
            lo
        };
        if lo <= c && c <= hi {
            matched = true;
        }
    }
    matched != negated
}

fn match_from(p: &[char], pi: usize, n: &[char], ni: usize) -> bool {
    if pi == p.len() {
        return ni == n.len();
    }
    match p[pi] {
        '*' => (ni..=n.len()).any(|k| match_from(p, pi + 1, n, k)),
        '?' => ni < n.len() && match_from(p, pi + 1, n, ni + 1),
        '[' => {
            let Ok(end) = class_end(p, pi) else { return false };
            ni < n.len() && class_matches(p, pi, n[ni]) && match_from(p, end, n, ni + 1)
        }
        '\\' => ni < n.len() && p.get(pi + 1) == Some(&n[ni]) && match_from(p, pi + 2, n, ni + 1),
        c => ni < n.len() && c == n[ni] && match_from(p, pi + 1, n, ni + 1),
    }
}

#[cfg(test)]
mod tests;
