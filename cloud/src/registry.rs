//! The public image registry: the read side of the OCI distribution API over the catalogue's
//! images. The store and its lookups live here, free of HTTP, so they are unit-tested directly;
//! [`http`] is the protocol edge.
//!
//! Repository names are served exactly as the node-agent maps references onto them (see
//! [`catalog`]); a reference to anything else fails as a real registry fails it: `NAME_UNKNOWN`
//! for an unknown repository, `MANIFEST_UNKNOWN` for an unknown tag or digest, `BLOB_UNKNOWN` for
//! a digest the repository does not hold.

use std::collections::{BTreeMap, HashMap};

pub mod catalog;
pub mod ecr_auth;
pub mod faults;
pub mod http;
pub mod image;
pub mod reset;
pub mod tar;

pub use image::{Blob, Image};

/// The registry's content, built once at startup from the catalogue.
///
/// Kept as one value behind an `Arc` so later fault hooks (registry errors, slow pulls) can sit
/// beside the content and be consulted by the HTTP edge.
#[derive(Debug, Default)]
pub struct Registry {
    repos: BTreeMap<String, Repo>,
}

/// One repository's tags and the blobs its images reference.
#[derive(Debug, Default)]
struct Repo {
    /// Tag → manifest digest.
    tags: BTreeMap<String, String>,
    /// Manifest digest → manifest.
    manifests: HashMap<String, Blob>,
    /// Config and layer blobs by digest.
    blobs: HashMap<String, Blob>,
}

/// A distribution-API error: its code, message and HTTP status are the spec's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The repository does not exist.
    #[error("repository name not known to registry")]
    NameUnknown {
        /// The name asked for.
        name: String,
    },
    /// The name breaks the spec's grammar.
    #[error("invalid repository name")]
    NameInvalid {
        /// The name asked for.
        name: String,
    },
    /// No such tag or manifest digest in the repository.
    #[error("manifest unknown")]
    ManifestUnknown {
        /// The repository.
        name: String,
        /// The tag or digest asked for.
        reference: String,
    },
    /// No such blob in the repository.
    #[error("blob unknown to registry")]
    BlobUnknown {
        /// The digest asked for.
        digest: String,
    },
    /// The digest is not `algorithm:hex`.
    #[error("provided digest did not match uploaded content")]
    DigestInvalid {
        /// The digest given.
        digest: String,
    },
    /// `n` in a paginated list is not a non-negative integer.
    #[error("invalid number of results requested")]
    PaginationNumberInvalid {
        /// The value given.
        n: String,
    },
    /// Pushes, deletes and anything else this read-only registry does not do.
    #[error("The operation is unsupported.")]
    Unsupported,
    /// No such endpoint.
    #[error("404 page not found")]
    NotFound,
    /// The client must authenticate (a RegistryChaos `error` 401; the response carries the
    /// `WWW-Authenticate` challenge).
    #[error("authentication required")]
    Unauthorized {
        /// The repository.
        name: String,
    },
    /// The client may not pull (403).
    #[error("requested access to the resource is denied")]
    Denied,
    /// Docker Hub's pull rate limit (429), with its text.
    #[error(
        "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"
    )]
    TooManyRequests,
    /// The registry failed (500).
    #[error("unknown error")]
    Unknown,
    /// A proxy in front of the registry found it down (502); the body is the proxy's HTML.
    #[error("502 Bad Gateway")]
    BadGateway,
    /// The registry is unavailable (503).
    #[error("service unavailable")]
    Unavailable,
}

/// One page of a paginated list (`tags/list`, `_catalog`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The items, in lexical order.
    pub items: Vec<String>,
    /// Whether more items follow the last one (the HTTP edge then sends a `Link` header).
    pub more: bool,
}

// === impl Registry ===

impl Registry {
    /// Builds every image of [`catalog::REPOSITORIES`].
    pub fn from_catalog() -> Self {
        let mut registry = Self::default();
        for repo in catalog::REPOSITORIES {
            for tag in repo.tags {
                registry.insert(repo.name, tag, Image::build(repo, tag));
            }
        }
        registry
    }

    /// Adds `image` under `name:tag`.
    pub fn insert(&mut self, name: &str, tag: &str, image: Image) {
        let repo = self.repos.entry(name.to_string()).or_default();
        repo.tags.insert(tag.to_string(), image.manifest.digest.clone());
        repo.blobs.insert(image.config.digest.clone(), image.config);
        repo.blobs.insert(image.layer.digest.clone(), image.layer);
        repo.manifests.insert(image.manifest.digest.clone(), image.manifest);
    }

    /// The manifest that `reference` (a tag or a digest) names in repository `name`.
    pub fn manifest(&self, name: &str, reference: &str) -> Result<&Blob, ApiError> {
        let repo = self.repo(name)?;
        let unknown = || ApiError::ManifestUnknown { name: name.into(), reference: reference.into() };
        let digest = if reference.contains(':') {
            check_digest(reference)?;
            reference
        } else {
            repo.tags.get(reference).ok_or_else(unknown)?
        };
        repo.manifests.get(digest).ok_or_else(unknown)
    }

    /// The blob `digest` of repository `name`.
    pub fn blob(&self, name: &str, digest: &str) -> Result<&Blob, ApiError> {
        let repo = self.repo(name)?;
        check_digest(digest)?;
        // A manifest is content-addressed too, and registries serve it from the blob store.
        repo.blobs
            .get(digest)
            .or_else(|| repo.manifests.get(digest))
            .ok_or_else(|| ApiError::BlobUnknown { digest: digest.into() })
    }

    /// The tags of `name`, lexically, after `last`, at most `n`.
    pub fn tags(&self, name: &str, n: Option<usize>, last: Option<&str>) -> Result<Page, ApiError> {
        Ok(page(self.repo(name)?.tags.keys(), n, last))
    }

    /// Repository names, lexically, after `last`, at most `n`.
    pub fn catalog(&self, n: Option<usize>, last: Option<&str>) -> Page {
        page(self.repos.keys(), n, last)
    }

    fn repo(&self, name: &str) -> Result<&Repo, ApiError> {
        if !valid_name(name) {
            return Err(ApiError::NameInvalid { name: name.into() });
        }
        self.repos.get(name).ok_or_else(|| ApiError::NameUnknown { name: name.into() })
    }
}

/// The items of a sorted list after `last`, cut at `n`.
fn page<'a>(items: impl Iterator<Item = &'a String>, n: Option<usize>, last: Option<&str>) -> Page {
    let mut after: Vec<String> = items.filter(|i| last.is_none_or(|l| i.as_str() > l)).cloned().collect();
    let more = n.is_some_and(|n| after.len() > n);
    if let Some(n) = n {
        after.truncate(n);
    }
    Page { items: after, more }
}

// === impl ApiError ===

impl ApiError {
    /// The spec's error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NameUnknown { .. } => "NAME_UNKNOWN",
            ApiError::NameInvalid { .. } => "NAME_INVALID",
            ApiError::ManifestUnknown { .. } => "MANIFEST_UNKNOWN",
            ApiError::BlobUnknown { .. } => "BLOB_UNKNOWN",
            ApiError::DigestInvalid { .. } => "DIGEST_INVALID",
            ApiError::PaginationNumberInvalid { .. } => "PAGINATION_NUMBER_INVALID",
            ApiError::Unsupported => "UNSUPPORTED",
            ApiError::NotFound => "NOT_FOUND",
            ApiError::Unauthorized { .. } => "UNAUTHORIZED",
            ApiError::Denied => "DENIED",
            ApiError::TooManyRequests => "TOOMANYREQUESTS",
            ApiError::Unknown | ApiError::BadGateway => "UNKNOWN",
            ApiError::Unavailable => "UNAVAILABLE",
        }
    }

    /// The HTTP status the spec (and distribution/distribution) sends with it.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::NameUnknown { .. }
            | ApiError::ManifestUnknown { .. }
            | ApiError::BlobUnknown { .. }
            | ApiError::NotFound => 404,
            ApiError::NameInvalid { .. }
            | ApiError::DigestInvalid { .. }
            | ApiError::PaginationNumberInvalid { .. } => 400,
            ApiError::Unsupported => 405,
            ApiError::Unauthorized { .. } => 401,
            ApiError::Denied => 403,
            ApiError::TooManyRequests => 429,
            ApiError::Unknown => 500,
            ApiError::BadGateway => 502,
            ApiError::Unavailable => 503,
        }
    }

    /// The response body: `{"errors":[{"code","message","detail"}]}`, with the detail shaped as
    /// distribution/distribution shapes it (`{"Tag":...}` for an unknown tag, the digest string
    /// for an unknown blob). An unknown endpoint gets Go's plain-text 404, as the real one does.
    pub fn body(&self) -> Vec<u8> {
        let detail = match self {
            ApiError::NameUnknown { name } | ApiError::NameInvalid { name } => {
                serde_json::json!({ "name": name })
            }
            ApiError::ManifestUnknown { name, reference } if reference.contains(':') => {
                serde_json::json!({ "Name": name, "Revision": reference })
            }
            ApiError::ManifestUnknown { reference, .. } => serde_json::json!({ "Tag": reference }),
            ApiError::BlobUnknown { digest } | ApiError::DigestInvalid { digest } => {
                serde_json::json!(digest)
            }
            ApiError::PaginationNumberInvalid { n } => serde_json::json!({ "n": n }),
            ApiError::Unauthorized { name } => {
                serde_json::json!([{ "Type": "repository", "Class": "", "Name": name, "Action": "pull" }])
            }
            ApiError::Unsupported
            | ApiError::Denied
            | ApiError::TooManyRequests
            | ApiError::Unknown
            | ApiError::Unavailable => serde_json::Value::Null,
            ApiError::NotFound => return b"404 page not found\n".to_vec(),
            ApiError::BadGateway => {
                return b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n".to_vec();
            }
        };
        // Structs, not `json!`, to keep the spec's key order: code, message, detail.
        #[derive(serde::Serialize)]
        struct Body<'a> {
            errors: [Entry<'a>; 1],
        }
        #[derive(serde::Serialize)]
        struct Entry<'a> {
            code: &'a str,
            message: String,
            // Errors without detail have none on the wire (distribution omits it).
            #[serde(skip_serializing_if = "serde_json::Value::is_null")]
            detail: serde_json::Value,
        }
        let body = Body { errors: [Entry { code: self.code(), message: self.to_string(), detail }] };
        // Serialising a struct of strings and a Value cannot fail.
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// Whether `name` matches the distribution spec's repository-name grammar:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

fn valid_component(c: &str) -> bool {
    let bytes = c.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else { return false };
    if !alnum(*first) || !alnum(*last) {
        return false;
    }
    // Separators: one '.', one or two '_', or any run of '-'; always between alphanumerics.
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if alnum(b) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `tag` matches `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-';
    match tag.as_bytes() {
        [first, rest @ ..] => {
            (first.is_ascii_alphanumeric() || *first == b'_')
                && rest.len() <= 127
                && rest.iter().all(|b| ok(*b))
        }
        [] => false,
    }
}

/// A digest must be `algorithm:encoded`; for sha256 the encoding is 64 lowercase hex digits.
fn check_digest(digest: &str) -> Result<(), ApiError> {
    let invalid = || ApiError::DigestInvalid { digest: digest.into() };
    let (algorithm, encoded) = digest.split_once(':').ok_or_else(invalid)?;
    let alg_ok = !algorithm.is_empty()
        && algorithm.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let enc_ok =
        !encoded.is_empty() && encoded.bytes().all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b));
    let sha_ok = algorithm != "sha256"
        || (encoded.len() == 64 && encoded.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    if alg_ok && enc_ok && sha_ok { Ok(()) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_digests_resolve_to_the_same_manifest() {
        let r = Registry::from_catalog();
        let by_tag = r.manifest("library/nginx", "latest").unwrap();
        let by_digest = r.manifest("library/nginx", &by_tag.digest).unwrap();
        assert_eq!(by_tag, by_digest);
        assert_eq!(by_tag.media_type, image::MANIFEST_MEDIA_TYPE);
        let slim = r.manifest("registry.k8s.io/nginx-slim", "0.8").unwrap();
        assert_ne!(slim.digest, by_tag.digest);
    }

    #[test]
    fn every_catalogue_tag_resolves_and_its_blobs_exist() {
        let r = Registry::from_catalog();
        for repo in catalog::REPOSITORIES {
            for tag in repo.tags {
                let m = r.manifest(repo.name, tag).unwrap();
                let v: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
                let config = r.blob(repo.name, v["config"]["digest"].as_str().unwrap()).unwrap();
                assert_eq!(config.bytes.len() as u64, v["config"]["size"].as_u64().unwrap());
                let layer = r.blob(repo.name, v["layers"][0]["digest"].as_str().unwrap()).unwrap();
                assert_eq!(layer.bytes.len() as u64, v["layers"][0]["size"].as_u64().unwrap());
            }
        }
    }

    #[test]
    fn unknown_name_tag_digest_and_blob() {
        let r = Registry::from_catalog();
        assert_eq!(
            r.manifest("library/ngnix", "latest"),
            Err(ApiError::NameUnknown { name: "library/ngnix".into() })
        );
        // Docker Hub naming is the node-agent's job: the bare name is not served.
        assert!(matches!(r.manifest("nginx", "latest"), Err(ApiError::NameUnknown { .. })));
        assert!(matches!(r.manifest("library/nginx", "1.99"), Err(ApiError::ManifestUnknown { .. })));
        let zeros = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(r.manifest("library/nginx", &zeros), Err(ApiError::ManifestUnknown { .. })));
        assert!(matches!(r.blob("library/nginx", &zeros), Err(ApiError::BlobUnknown { .. })));
        assert!(matches!(r.blob("library/nginx", "sha256:abc"), Err(ApiError::DigestInvalid { .. })));
        assert!(matches!(r.manifest("Library/Nginx", "latest"), Err(ApiError::NameInvalid { .. })));
        // A blob of one repository is not served from another.
        let redis = r.manifest("library/redis", "7").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&redis.bytes).unwrap();
        let layer = v["layers"][0]["digest"].as_str().unwrap();
        assert!(matches!(r.blob("library/nginx", layer), Err(ApiError::BlobUnknown { .. })));
    }

    #[test]
    fn error_bodies_follow_the_spec() {
        let body = |e: ApiError| serde_json::from_slice::<serde_json::Value>(&e.body()).unwrap();
        assert_eq!(
            body(ApiError::ManifestUnknown { name: "library/nginx".into(), reference: "nope".into() }),
            serde_json::json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": {"Tag": "nope"}}]})
        );
        assert_eq!(
            body(ApiError::NameUnknown { name: "x/y".into() }),
            serde_json::json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry", "detail": {"name": "x/y"}}]})
        );
        assert_eq!(
            body(ApiError::BlobUnknown { digest: "sha256:00".into() }),
            serde_json::json!({"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown to registry", "detail": "sha256:00"}]})
        );
        // The spec's key order, byte for byte.
        assert_eq!(
            ApiError::ManifestUnknown { name: "a".into(), reference: "b".into() }.body(),
            b"{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\",\"detail\":{\"Tag\":\"b\"}}]}\n"
        );
        assert_eq!(ApiError::NameUnknown { name: String::new() }.status(), 404);
        assert_eq!(ApiError::DigestInvalid { digest: String::new() }.status(), 400);
        assert_eq!(ApiError::Unsupported.status(), 405);
    }

    #[test]
    fn tag_lists_are_lexical_and_paginate() {
        let r = Registry::from_catalog();
        let all = r.tags("library/redis", None, None).unwrap();
        assert_eq!(
            all,
            Page { items: vec!["7".into(), "7.2".into(), "7.4".into(), "latest".into()], more: false }
        );
        assert_eq!(
            r.tags("library/redis", Some(2), None).unwrap(),
            Page { items: vec!["7".into(), "7.2".into()], more: true }
        );
        assert_eq!(
            r.tags("library/redis", Some(2), Some("7.2")).unwrap(),
            Page { items: vec!["7.4".into(), "latest".into()], more: false }
        );
        let catalog = r.catalog(None, None);
        assert_eq!(catalog.items.len(), catalog::REPOSITORIES.len());
        assert!(catalog.items.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn name_grammar() {
        for ok in ["library/nginx", "registry.k8s.io/nginx-slim", "a", "a__b", "a---b/c.d", "curlimages/curl"]
        {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "Library/nginx", "a//b", "/a", "a/", "a..b", "a___b", "-a", "a.", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_tag("8.10.1") && valid_tag("_x") && valid_tag("v0.13"));
        assert!(!valid_tag("") && !valid_tag(".x") && !valid_tag("a:b") && !valid_tag(&"a".repeat(129)));
    }
}
