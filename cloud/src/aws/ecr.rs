//! ECR (awsJson1_1, `AmazonEC2ContainerRegistry_V20150921`): authorization tokens, repositories
//! and their images, as the aws CLI, the kubelet's ecr-credential-provider and docker see them.
//!
//! The account's repositories mirror part of the built-in image catalogue (`nginx` holds the
//! images of `library/nginx`, ...), so DescribeImages and BatchGetImage answer with the digests
//! the registry host serves. Tokens issued by GetAuthorizationToken are remembered with the
//! identity that asked, so the registry host's Basic auth ([`crate::registry::ecr_auth`]) can
//! evaluate that identity's policies for `ecr:BatchGetImage` / `ecr:GetDownloadUrlForLayer`, as
//! ECR does.
//!
//! Texts are AWS's: `RepositoryNotFoundException` "The repository with name 'x' does not exist
//! in the registry with id '123456789012'" (seen in CLI reports), the other exceptions' texts
//! as moto's `moto/ecr/exceptions.py` copies them, BatchGetImage's `ImageNotFound` / "Requested
//! image not found", the repository-name constraint as captured from CreateRepository.
//! Shapes follow botocore's `ecr/2015-09-21` model; timestamps are epoch seconds (awsJson).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use netlab_aws::protocol::{ECR_TARGET_PREFIX, json_response};
use netlab_aws::{AwsError, ProtocolError};
use netlab_iam::Identity;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Account, Call, authorize};
use crate::registry::{self, Registry};

pub mod token;

/// How long a token is valid: "The authorization token is valid for 12 hours."
pub const TOKEN_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

/// The account's repositories at bootstrap: ECR name → the catalogue repository whose images
/// it holds.
pub const CATALOGUE_MIRRORS: &[(&str, &str)] = &[
    ("netlab/echo", "netlab/echo"),
    ("nginx", "library/nginx"),
    ("busybox", "library/busybox"),
    ("agnhost", "registry.k8s.io/e2e-test-images/agnhost"),
];

/// The constraint text ECR answers a bad repository name with.
const NAME_CONSTRAINT: &str = "Invalid parameter at 'repositoryName' failed to satisfy constraint: 'must satisfy regular expression '[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*)*''";

/// The catalogue's images, built once (deterministic: the same digests the registry serves).
static CATALOGUE: LazyLock<Registry> = LazyLock::new(Registry::from_catalog);

/// ECR's repositories, and the key its tokens are sealed with.
///
/// Tokens are not remembered: like ECR's own (a KMS-encrypted payload and data key), each one
/// carries who asked, the region and the expiry, sealed with the account's key, so issuing one
/// writes nothing and any number of them cost no memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EcrState {
    /// Repositories by name.
    #[serde(default)]
    repositories: BTreeMap<String, Repository>,
    /// The key tokens are sealed with (base64 of 32 random bytes).
    #[serde(default = "token::new_key")]
    key: String,
}

impl Default for EcrState {
    fn default() -> Self {
        Self { repositories: BTreeMap::new(), key: token::new_key() }
    }
}

/// One repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Repository {
    /// `repositoryName`.
    pub name: String,
    /// `createdAt`.
    pub created_at: Timestamp,
    /// `imageTagMutability`: `MUTABLE` or `IMMUTABLE`.
    pub image_tag_mutability: String,
    /// `imageScanningConfiguration.scanOnPush`.
    pub scan_on_push: bool,
    /// `encryptionConfiguration.encryptionType`: `AES256` or `KMS`.
    pub encryption_type: String,
    /// `encryptionConfiguration.kmsKey`.
    pub kms_key: Option<String>,
    /// The repository policy (SetRepositoryPolicy), as sent.
    pub policy: Option<String>,
    /// The catalogue repository whose images this one holds; `None` for an empty repository.
    pub source: Option<String>,
}

/// What a password GetAuthorizationToken issued says, sealed inside it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// Who asked: the pulls the token authenticates are authorised as this identity.
    pub identity: Identity,
    /// The region it was issued in (tokens are regional).
    pub region: String,
    /// `expiresAt`.
    pub expires_at: Timestamp,
}

/// Why a registry-host credential is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Never issued here (or for another region), or malformed.
    #[error("unknown authorization token")]
    Unknown,
    /// Issued, but past `expiresAt`.
    #[error("the authorization token has expired")]
    Expired,
}

/// One image of a repository, as DescribeImages and BatchGetImage see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDetail {
    /// `imageDigest` (the manifest's).
    pub digest: String,
    /// `imageTags`.
    pub tags: Vec<String>,
    /// `imageSizeInBytes`: the sum of the layers' sizes.
    pub size: u64,
    /// The manifest's media type.
    pub media_type: &'static str,
    /// The config's media type (`artifactMediaType`).
    pub artifact_media_type: String,
    /// The manifest.
    pub manifest: Bytes,
    /// `imagePushedAt`.
    pub pushed_at: Timestamp,
}

// === impl EcrState ===

impl EcrState {
    /// The bootstrap state: one repository per [`CATALOGUE_MIRRORS`] entry, created at `now`.
    pub fn with_catalogue(now: Timestamp) -> Self {
        let mut state = Self::default();
        for (name, source) in CATALOGUE_MIRRORS {
            let mut repo = Repository::new(name, now);
            repo.source = Some((*source).to_owned());
            state.repositories.insert((*name).to_owned(), repo);
        }
        state
    }

    /// The repository called `name`.
    pub fn repository(&self, name: &str) -> Option<&Repository> {
        self.repositories.get(name)
    }

    /// Every repository, by name.
    pub fn repositories(&self) -> impl Iterator<Item = &Repository> {
        self.repositories.values()
    }

    /// Issues a token for `identity` in `region`; returns the password and its expiry.
    pub fn issue_token(&self, identity: &Identity, region: &str, now: Timestamp) -> (String, Timestamp) {
        let expires_at = now + TOKEN_LIFETIME;
        let issued = IssuedToken { identity: identity.clone(), region: region.to_owned(), expires_at };
        (token::seal(&self.key, &issued), expires_at)
    }

    /// Who a registry-host password (the part after `AWS:`) authenticates, in `region`.
    pub fn authenticate(&self, password: &str, region: &str, now: Timestamp) -> Result<Identity, TokenError> {
        let issued = token::open(&self.key, password).ok_or(TokenError::Unknown)?;
        if issued.region != region {
            return Err(TokenError::Unknown);
        }
        if now >= issued.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(issued.identity)
    }
}

// === impl Repository ===

impl Repository {
    /// An empty repository with ECR's defaults.
    pub fn new(name: &str, now: Timestamp) -> Self {
        Self {
            name: name.to_owned(),
            created_at: now,
            image_tag_mutability: "MUTABLE".to_owned(),
            scan_on_push: false,
            encryption_type: "AES256".to_owned(),
            kms_key: None,
            policy: None,
            source: None,
        }
    }

    /// Its images, by digest order; tags sharing a manifest are one image.
    pub fn images(&self) -> Vec<ImageDetail> {
        let Some(source) = &self.source else { return Vec::new() };
        let Ok(tags) = CATALOGUE.tags(source, None, None) else { return Vec::new() };
        let pushed_at = registry::image::CREATED.parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let mut by_digest: BTreeMap<String, ImageDetail> = BTreeMap::new();
        for tag in tags.items {
            let Ok(manifest) = CATALOGUE.manifest(source, &tag) else { continue };
            let detail = by_digest.entry(manifest.digest.clone()).or_insert_with(|| {
                let parsed: Value = serde_json::from_slice(&manifest.bytes).unwrap_or_default();
                let size = parsed["layers"]
                    .as_array()
                    .map(|ls| ls.iter().filter_map(|l| l["size"].as_u64()).sum())
                    .unwrap_or_default();
                ImageDetail {
                    digest: manifest.digest.clone(),
                    tags: Vec::new(),
                    size,
                    media_type: manifest.media_type,
                    artifact_media_type: parsed["config"]["mediaType"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    manifest: manifest.bytes.clone(),
                    pushed_at,
                }
            });
            detail.tags.push(tag);
        }
        by_digest.into_values().collect()
    }
}

/// The registry's identity in ARNs, URIs and messages: account and region.
struct Scope<'a> {
    id: &'a str,
    region: &'a str,
}

// === impl Scope ===

impl Scope<'_> {
    fn arn(&self, name: &str) -> String {
        format!("arn:aws:ecr:{}:{}:repository/{name}", self.region, self.id)
    }

    fn host(&self) -> String {
        format!("{}.dkr.ecr.{}.amazonaws.com", self.id, self.region)
    }

    fn repository_json(&self, r: &Repository) -> Value {
        let mut encryption = json!({ "encryptionType": r.encryption_type });
        if let Some(key) = &r.kms_key {
            encryption["kmsKey"] = json!(key);
        }
        json!({
            "repositoryArn": self.arn(&r.name),
            "registryId": self.id,
            "repositoryName": r.name,
            "repositoryUri": format!("{}/{}", self.host(), r.name),
            "createdAt": epoch(r.created_at),
            "imageTagMutability": r.image_tag_mutability,
            "imageScanningConfiguration": { "scanOnPush": r.scan_on_push },
            "encryptionConfiguration": encryption,
        })
    }

    fn not_found(&self, name: &str) -> AwsError {
        AwsError::sender(
            "RepositoryNotFoundException",
            format!("The repository with name '{name}' does not exist in the registry with id '{}'", self.id),
        )
    }
}

/// The registry-host ARN of repository `name` (what pulls are authorised against).
pub fn repository_arn(region: &str, registry_id: &str, name: &str) -> String {
    Scope { id: registry_id, region }.arn(name)
}

/// ECR's answer to one call: the operation's output, or its error in awsJson.
pub fn handle(account: &mut Account, call: &Call<'_>) -> Result<http::Response<Bytes>, AwsError> {
    let input = call.json()?;
    let body = match call.action {
        "GetAuthorizationToken" => get_authorization_token(account, call, input)?,
        "CreateRepository" => create_repository(account, call, input)?,
        "DescribeRepositories" => describe_repositories(account, call, input)?,
        "DeleteRepository" => delete_repository(account, call, input)?,
        "DescribeImages" => describe_images(account, call, input)?,
        "BatchGetImage" => batch_get_image(account, call, input)?,
        "GetRepositoryPolicy" => get_repository_policy(account, call, input)?,
        "SetRepositoryPolicy" => set_repository_policy(account, call, input)?,
        other => {
            let target = Some(format!("{ECR_TARGET_PREFIX}.{other}"));
            return Err(ProtocolError::UnknownOperation { target }.to_aws_error(&call.protocol));
        }
    };
    Ok(json_response(&body, call.request_id))
}

fn get_authorization_token(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    authorize(account, call, "ecr:GetAuthorizationToken", "*")?;
    let own = account.iam.account.id.clone();
    let region = account.ec2.region.clone();
    let (password, expires_at) = account.ecr.issue_token(&call.caller.identity, &region, call.now);
    let token = token::authorization_token(&password);
    // `registryIds` (deprecated) asks for one entry per registry; the token is the same.
    let ids: Vec<String> = match input["registryIds"].as_array() {
        Some(ids) if !ids.is_empty() => ids.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => vec![own],
    };
    let data: Vec<Value> = ids
        .iter()
        .map(|id| {
            let host = Scope { id, region: &region }.host();
            json!({
                "authorizationToken": token,
                "expiresAt": epoch(expires_at),
                "proxyEndpoint": format!("https://{host}"),
            })
        })
        .collect();
    Ok(json!({ "authorizationData": data }))
}

fn create_repository(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let name = required(call, input, "repositoryName")?;
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    authorize(account, call, "ecr:CreateRepository", &reg.arn(name))?;
    if name.len() < 2 || name.len() > 256 {
        let constraint = if name.len() < 2 {
            "Member must have length greater than or equal to 2"
        } else {
            "Member must have length less than or equal to 256"
        };
        return Err(AwsError::validation(&call.protocol, Some(name), "repositoryName", constraint));
    }
    if !registry::valid_name(name) {
        return Err(AwsError::sender("InvalidParameterException", NAME_CONSTRAINT));
    }
    if account.ecr.repositories.contains_key(name) {
        return Err(AwsError::sender(
            "RepositoryAlreadyExistsException",
            format!("The repository with name '{name}' already exists in the registry with id '{}'", reg.id),
        ));
    }
    let mut repo = Repository::new(name, call.now);
    match input["imageTagMutability"].as_str() {
        None => {}
        Some(m @ ("MUTABLE" | "IMMUTABLE")) => repo.image_tag_mutability = m.to_owned(),
        Some(other) => {
            return Err(AwsError::validation(
                &call.protocol,
                Some(other),
                "imageTagMutability",
                "Member must satisfy enum value set: [IMMUTABLE, MUTABLE]",
            ));
        }
    }
    repo.scan_on_push = input["imageScanningConfiguration"]["scanOnPush"].as_bool().unwrap_or(false);
    if let Some(kind) = input["encryptionConfiguration"]["encryptionType"].as_str() {
        repo.encryption_type = kind.to_owned();
        repo.kms_key = input["encryptionConfiguration"]["kmsKey"].as_str().map(str::to_owned);
    }
    let out = json!({ "repository": reg.repository_json(&repo) });
    account.ecr.repositories.insert(name.to_owned(), repo);
    Ok(out)
}

fn describe_repositories(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    let registry_id = input["registryId"].as_str().unwrap_or(reg.id);
    let names: Vec<&str> = input["repositoryNames"]
        .as_array()
        .map(|ns| ns.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        authorize(account, call, "ecr:DescribeRepositories", &reg.arn("*"))?;
        let repos: Vec<Value> = if registry_id == reg.id {
            account.ecr.repositories.values().map(|r| reg.repository_json(r)).collect()
        } else {
            Vec::new()
        };
        return Ok(json!({ "repositories": repos }));
    }
    let mut repos = Vec::with_capacity(names.len());
    for name in names {
        authorize(account, call, "ecr:DescribeRepositories", &reg.arn(name))?;
        let repo = lookup(account, &reg, registry_id, name)?;
        repos.push(reg.repository_json(repo));
    }
    Ok(json!({ "repositories": repos }))
}

fn delete_repository(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let name = required(call, input, "repositoryName")?;
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    authorize(account, call, "ecr:DeleteRepository", &reg.arn(name))?;
    let registry_id = input["registryId"].as_str().unwrap_or(reg.id);
    let repo = lookup(account, &reg, registry_id, name)?;
    let force = input["force"].as_bool().unwrap_or(false);
    if !force && !repo.images().is_empty() {
        return Err(AwsError::sender(
            "RepositoryNotEmptyException",
            format!(
                "The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted because it still contains images"
            ),
        ));
    }
    let out = json!({ "repository": reg.repository_json(repo) });
    account.ecr.repositories.remove(name);
    Ok(out)
}

fn describe_images(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let name = required(call, input, "repositoryName")?;
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    authorize(account, call, "ecr:DescribeImages", &reg.arn(name))?;
    let registry_id = input["registryId"].as_str().unwrap_or(reg.id);
    let images = lookup(account, &reg, registry_id, name)?.images();
    let detail = |i: &ImageDetail| {
        let mut d = json!({
            "registryId": registry_id,
            "repositoryName": name,
            "imageDigest": i.digest,
            "imageSizeInBytes": i.size,
            "imagePushedAt": epoch(i.pushed_at),
            "imageManifestMediaType": i.media_type,
            "artifactMediaType": i.artifact_media_type,
        });
        if !i.tags.is_empty() {
            d["imageTags"] = json!(i.tags);
        }
        d
    };
    let Some(ids) = input["imageIds"].as_array().filter(|ids| !ids.is_empty()) else {
        // Every image here is tagged: `filter.tagStatus` UNTAGGED selects none.
        let untagged_only = input["filter"]["tagStatus"].as_str() == Some("UNTAGGED");
        let details: Vec<Value> =
            if untagged_only { Vec::new() } else { images.iter().map(detail).collect() };
        return Ok(json!({ "imageDetails": details }));
    };
    let mut details = Vec::with_capacity(ids.len());
    for id in ids {
        let (tag, digest) = (id["imageTag"].as_str(), id["imageDigest"].as_str());
        let Some(image) = find_image(&images, tag, digest) else {
            return Err(AwsError::sender(
                "ImageNotFoundException",
                format!(
                    "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{name}' in the registry with id '{registry_id}'",
                    digest.unwrap_or("null"),
                    tag.unwrap_or("null"),
                ),
            ));
        };
        details.push(detail(image));
    }
    Ok(json!({ "imageDetails": details }))
}

fn batch_get_image(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let name = required(call, input, "repositoryName")?;
    let Some(ids) = input["imageIds"].as_array() else {
        return Err(ProtocolError::MissingParameter { name: "imageIds".into() }.to_aws_error(&call.protocol));
    };
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    authorize(account, call, "ecr:BatchGetImage", &reg.arn(name))?;
    let registry_id = input["registryId"].as_str().unwrap_or(reg.id);
    let images = lookup(account, &reg, registry_id, name)?.images();
    let (mut found, mut failures) = (Vec::new(), Vec::new());
    for id in ids {
        let (tag, digest) = (id["imageTag"].as_str(), id["imageDigest"].as_str());
        match find_image(&images, tag, digest) {
            Some(image) => {
                let mut image_id = json!({ "imageDigest": image.digest });
                if let Some(tag) = tag {
                    image_id["imageTag"] = json!(tag);
                }
                found.push(json!({
                    "registryId": registry_id,
                    "repositoryName": name,
                    "imageId": image_id,
                    "imageManifest": String::from_utf8_lossy(&image.manifest),
                    "imageManifestMediaType": image.media_type,
                }));
            }
            None => failures.push(json!({
                "imageId": id,
                "failureCode": "ImageNotFound",
                "failureReason": "Requested image not found",
            })),
        }
    }
    Ok(json!({ "images": found, "failures": failures }))
}

fn get_repository_policy(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let name = required(call, input, "repositoryName")?;
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    authorize(account, call, "ecr:GetRepositoryPolicy", &reg.arn(name))?;
    let registry_id = input["registryId"].as_str().unwrap_or(reg.id);
    let repo = lookup(account, &reg, registry_id, name)?;
    let Some(policy) = &repo.policy else {
        return Err(AwsError::sender(
            "RepositoryPolicyNotFoundException",
            format!(
                "Repository policy does not exist for the repository with name '{name}' in the registry with id '{registry_id}'"
            ),
        ));
    };
    Ok(json!({ "registryId": registry_id, "repositoryName": name, "policyText": policy }))
}

fn set_repository_policy(account: &mut Account, call: &Call<'_>, input: &Value) -> Result<Value, AwsError> {
    let name = required(call, input, "repositoryName")?;
    let text = required(call, input, "policyText")?;
    let reg = Scope { id: &account.iam.account.id, region: &account.ec2.region };
    authorize(account, call, "ecr:SetRepositoryPolicy", &reg.arn(name))?;
    let registry_id = input["registryId"].as_str().unwrap_or(reg.id).to_owned();
    lookup(account, &reg, &registry_id, name)?;
    let valid = netlab_iam::PolicyDocument::parse_stored(text).is_ok_and(|d| !d.statements().is_empty());
    if !valid {
        return Err(AwsError::sender(
            "InvalidParameterException",
            "Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'",
        ));
    }
    if let Some(repo) = account.ecr.repositories.get_mut(name) {
        repo.policy = Some(text.to_owned());
    }
    Ok(json!({ "registryId": registry_id, "repositoryName": name, "policyText": text }))
}

/// The repository `name` of registry `registry_id` (only the account's own registry has any).
fn lookup<'a>(
    account: &'a Account,
    reg: &Scope<'_>,
    registry_id: &str,
    name: &str,
) -> Result<&'a Repository, AwsError> {
    let repo = if registry_id == reg.id { account.ecr.repositories.get(name) } else { None };
    repo.ok_or_else(|| Scope { id: registry_id, region: reg.region }.not_found(name))
}

/// The image an `ImageIdentifier` names: by digest, by tag, or both (which must agree).
fn find_image<'a>(
    images: &'a [ImageDetail],
    tag: Option<&str>,
    digest: Option<&str>,
) -> Option<&'a ImageDetail> {
    if tag.is_none() && digest.is_none() {
        return None;
    }
    images
        .iter()
        .find(|i| digest.is_none_or(|d| i.digest == d) && tag.is_none_or(|t| i.tags.iter().any(|it| it == t)))
}

/// A required string member, or the validation error awsJson services answer a null with.
fn required<'a>(call: &Call<'_>, input: &'a Value, member: &str) -> Result<&'a str, AwsError> {
    input[member].as_str().ok_or_else(|| {
        ProtocolError::MissingParameter { name: member.to_owned() }.to_aws_error(&call.protocol)
    })
}

/// awsJson's timestamp: epoch seconds as a JSON number.
fn epoch(t: Timestamp) -> Value {
    let millis = t.as_millisecond();
    if millis % 1000 == 0 { json!(millis / 1000) } else { json!(millis as f64 / 1000.0) }
}

#[cfg(test)]
pub(crate) mod tests;
