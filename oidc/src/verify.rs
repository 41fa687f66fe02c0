//! Verifying a token against a published key set, as AWS STS does for
//! `AssumeRoleWithWebIdentity` with a Kubernetes service-account token (and as go-jose does in
//! kube-apiserver's own authenticator).
//!
//! The checks, in order, each failing with its own [`VerifyError`] variant so the caller can
//! map it to its own error code and wording:
//!
//! 1. the token is compact JWS: three base64url (no padding) segments, a JSON-object header
//!    with a string `alg`, and a JSON-object payload whose registered claims have their
//!    registered types ([`decode_unverified`] checks this much too);
//! 2. the header's `alg` is RS256 and nothing else: `none`, HS256 (the "RSA key used as an HMAC
//!    secret" confusion) and every other algorithm are refused before any key is touched, as is
//!    a `crit` header naming extensions this verifier does not implement (RFC 7515 §4.1.11);
//! 3. the key: with a `kid`, the JWKS keys with that `kid`; without one, every RSA key in the
//!    set, tried in turn (go-jose's behaviour, and upstream's `GetPublicKeys("")`);
//! 4. the RSASSA-PKCS1-v1_5/SHA-256 signature over `header.payload` with the JWK's `n` and `e`.
//!
//! Time is not checked here: the caller owns the clock (STS's is the cloud's, tests pin it), so
//! [`Verified::check_time`] does `exp`/`nbf` with an explicit `now` and leeway. Issuer and
//! audience are also the caller's to compare; the verified values are handed back typed.
//! [`decode_unverified`] parses without any signature check, for the one thing a relying party
//! needs before it has keys: the unverified `iss`, to find the provider (and word errors).

use rsa::sha2::Sha256;
use serde_json::{Map, Value};

use crate::b64;
use crate::jwk::{Jwk, JwkError, Jwks};
use crate::jws::{Header, RS256};

/// The three parts of a compact JWS, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// The JOSE header, first.
    Header,
    /// The claims, second.
    Payload,
    /// The signature, third.
    Signature,
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Segment::Header => "header",
            Segment::Payload => "payload",
            Segment::Signature => "signature",
        })
    }
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not three dot-separated segments (a JWE has five; an opaque token one).
    #[error("not a JWT: expected 3 dot-separated parts (header.payload.signature), found {parts}")]
    NotCompact {
        /// How many parts there were.
        parts: usize,
    },
    /// A segment is not base64url without padding.
    #[error("JWT {segment} is not base64url without padding: {source}")]
    Base64 {
        /// Which segment.
        segment: Segment,
        /// The decoder's complaint.
        source: data_encoding::DecodeError,
    },
    /// The header or payload is not JSON.
    #[error("JWT {segment} is not valid JSON: {source}")]
    Json {
        /// Which segment.
        segment: Segment,
        /// serde_json's complaint.
        source: serde_json::Error,
    },
    /// The header or payload is JSON, but not an object.
    #[error("JWT {segment} is not a JSON object")]
    NotObject {
        /// Which segment.
        segment: Segment,
    },
    /// A registered header parameter or claim has the wrong type (or `alg` is missing).
    #[error("JWT {segment} member {member:?} must be {expected}, found {found}")]
    Member {
        /// Which segment.
        segment: Segment,
        /// The member's name.
        member: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it was (JSON, shortened).
        found: String,
    },
    /// `alg` is not RS256.
    #[error("unsupported signing algorithm {alg:?}: only RS256 is accepted")]
    UnsupportedAlgorithm {
        /// The header's `alg`.
        alg: String,
    },
    /// The header marks extensions critical (`crit`) that this verifier does not implement.
    #[error("JWT header marks extensions critical that are not supported: {names:?}")]
    UnsupportedCritical {
        /// The names in `crit`.
        names: Vec<String>,
    },
    /// The header's `kid` names no key in the set.
    #[error("no key with kid {kid:?} in the key set (its kids: {known:?})")]
    UnknownKeyId {
        /// The header's `kid`.
        kid: String,
        /// The kids the set has.
        known: Vec<String>,
    },
    /// The token has no `kid` and the set has no RSA key to try.
    #[error("the JWT has no kid and the key set has no RSA key to try")]
    NoRsaKey,
    /// The key(s) the token points at cannot verify RS256 (wrong type, bad `n`/`e`, …).
    #[error("key {kid:?} cannot verify an RS256 signature: {source}")]
    BadKey {
        /// The key's `kid`.
        kid: String,
        /// What is wrong with it.
        source: JwkError,
    },
    /// The signature does not verify with any candidate key.
    #[error("invalid signature: the JWT does not verify with key(s) {tried:?}")]
    BadSignature {
        /// The kids of the keys tried.
        tried: Vec<String>,
    },
    /// `exp` has passed.
    #[error("token is expired: exp {exp} is not after now ({now}) minus {leeway}s leeway")]
    Expired {
        /// The token's `exp`.
        exp: i64,
        /// The caller's clock.
        now: i64,
        /// The allowed clock skew, seconds.
        leeway: i64,
    },
    /// `nbf` is still ahead.
    #[error("token is not valid yet: nbf {nbf} is after now ({now}) plus {leeway}s leeway")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: i64,
        /// The caller's clock.
        now: i64,
        /// The allowed clock skew, seconds.
        leeway: i64,
    },
}

impl VerifyError {
    /// Whether the token itself is malformed (not parseable as a JWT at all), as opposed to
    /// well-formed but refused (algorithm, key, signature, time).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            VerifyError::NotCompact { .. }
                | VerifyError::Base64 { .. }
                | VerifyError::Json { .. }
                | VerifyError::NotObject { .. }
                | VerifyError::Member { .. }
        )
    }
}

/// The registered claims (RFC 7519 §4.1), typed. Times are seconds since the epoch (fractions
/// truncated, as go-jose's `NumericDate` does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StandardClaims {
    /// `iss`.
    pub iss: Option<String>,
    /// `sub`.
    pub sub: Option<String>,
    /// `aud`: a single string is read as a one-element list; absent or null is empty.
    pub aud: Vec<String>,
    /// `exp`.
    pub exp: Option<i64>,
    /// `nbf`.
    pub nbf: Option<i64>,
    /// `iat`.
    pub iat: Option<i64>,
    /// `jti`.
    pub jti: Option<String>,
}

impl StandardClaims {
    /// Checks `exp` and `nbf` (those present) against `now`, allowing `leeway` seconds of clock
    /// skew either way. Valid while `now < exp + leeway` (RFC 7519 §4.1.4: the current time
    /// must be before `exp`) and once `now + leeway >= nbf` (§4.1.5: on or after `nbf`).
    pub fn check_time(&self, now: i64, leeway: i64) -> Result<(), VerifyError> {
        if let Some(exp) = self.exp
            && now >= exp.saturating_add(leeway)
        {
            return Err(VerifyError::Expired { exp, now, leeway });
        }
        if let Some(nbf) = self.nbf
            && now.saturating_add(leeway) < nbf
        {
            return Err(VerifyError::NotYetValid { nbf, now, leeway });
        }
        Ok(())
    }
}

/// A token parsed without checking its signature. Nothing in it can be trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Unverified {
    /// The JOSE header.
    pub header: Header,
    /// The whole claims set.
    pub claims: Value,
    /// The registered claims, typed.
    pub standard: StandardClaims,
}

/// A token whose signature verified with a key of the set.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The JOSE header.
    pub header: Header,
    /// The whole claims set.
    pub claims: Value,
    /// The registered claims, typed.
    pub standard: StandardClaims,
    /// The `kid` of the key that verified the signature.
    pub kid: String,
}

impl Verified {
    /// [`StandardClaims::check_time`] on this token's claims.
    pub fn check_time(&self, now: i64, leeway: i64) -> Result<(), VerifyError> {
        self.standard.check_time(now, leeway)
    }
}

/// Parses `token` without verifying its signature (any `alg`, even `none`).
pub fn decode_unverified(token: &str) -> Result<Unverified, VerifyError> {
    let parts = Parts::parse(token)?;
    Ok(Unverified { header: parts.header, claims: parts.claims, standard: parts.standard })
}

/// Verifies `token`'s RS256 signature with the matching key of `keys` and returns its contents.
/// Does not check times, issuer or audience (see the module docs).
pub fn verify(token: &str, keys: &Jwks) -> Result<Verified, VerifyError> {
    let parts = Parts::parse(token)?;
    if parts.header.alg != RS256 {
        return Err(VerifyError::UnsupportedAlgorithm { alg: parts.header.alg });
    }
    if let Some(names) = parts.crit {
        return Err(VerifyError::UnsupportedCritical { names });
    }

    let candidates: Vec<&Jwk> = match &parts.header.kid {
        Some(kid) => {
            let found: Vec<&Jwk> = keys.keys.iter().filter(|k| k.kid == *kid).collect();
            if found.is_empty() {
                let known = keys.keys.iter().map(|k| k.kid.clone()).collect();
                return Err(VerifyError::UnknownKeyId { kid: kid.clone(), known });
            }
            found
        }
        None => {
            let rsa: Vec<_> = keys.keys.iter().filter(|k| k.kty == "RSA").collect();
            if rsa.is_empty() {
                return Err(VerifyError::NoRsaKey);
            }
            rsa
        }
    };

    let mut tried = Vec::new();
    let mut first_bad_key = None;
    for jwk in candidates {
        let usable = if !jwk.use_.is_empty() && jwk.use_ != "sig" {
            Err(JwkError::NotForSignatures { use_: jwk.use_.clone() })
        } else if !jwk.alg.is_empty() && jwk.alg != RS256 {
            Err(JwkError::OtherAlgorithm { alg: jwk.alg.clone() })
        } else {
            jwk.to_rsa_public_key()
        };
        let public = match usable {
            Ok(public) => public,
            Err(source) => {
                first_bad_key.get_or_insert(VerifyError::BadKey { kid: jwk.kid.clone(), source });
                continue;
            }
        };
        tried.push(jwk.kid.clone());
        if public.pkcs1v15_verify::<Sha256>(parts.signing_input.as_bytes(), &parts.signature).is_ok() {
            return Ok(Verified {
                header: parts.header,
                claims: parts.claims,
                standard: parts.standard,
                kid: jwk.kid.clone(),
            });
        }
    }
    match first_bad_key {
        Some(bad) if tried.is_empty() => Err(bad),
        _ => Err(VerifyError::BadSignature { tried }),
    }
}

/// A token split and its header and payload parsed.
struct Parts<'t> {
    header: Header,
    crit: Option<Vec<String>>,
    claims: Value,
    standard: StandardClaims,
    /// `header.payload`, what the signature covers.
    signing_input: &'t str,
    signature: Vec<u8>,
}

impl<'t> Parts<'t> {
    fn parse(token: &'t str) -> Result<Self, VerifyError> {
        let segments: Vec<&str> = token.split('.').collect();
        let [header_b64, payload_b64, signature] = segments[..] else {
            return Err(VerifyError::NotCompact { parts: segments.len() });
        };
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];

        let header_json = json_object(Segment::Header, header_b64)?;
        let header = Header {
            alg: match header_json.get("alg") {
                Some(Value::String(alg)) => alg.clone(),
                other => return Err(member_error(Segment::Header, "alg", "a string", other)),
            },
            kid: optional_string(&header_json, Segment::Header, "kid")?,
            typ: optional_string(&header_json, Segment::Header, "typ")?,
        };
        let crit = match header_json.get("crit") {
            None => None,
            Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_string) => {
                Some(items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
            }
            other => {
                return Err(member_error(Segment::Header, "crit", "a non-empty array of strings", other));
            }
        };

        let claims = json_object(Segment::Payload, payload_b64)?;
        let p = Segment::Payload;
        let standard = StandardClaims {
            iss: optional_string(&claims, p, "iss")?,
            sub: optional_string(&claims, p, "sub")?,
            aud: match claims.get("aud") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(one)) => vec![one.clone()],
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                    items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()
                }
                other => return Err(member_error(p, "aud", "a string or an array of strings", other)),
            },
            exp: numeric_date(&claims, "exp")?,
            nbf: numeric_date(&claims, "nbf")?,
            iat: numeric_date(&claims, "iat")?,
            jti: optional_string(&claims, p, "jti")?,
        };
        let signature = b64::decode(signature)
            .map_err(|source| VerifyError::Base64 { segment: Segment::Signature, source })?;
        Ok(Parts { header, crit, claims: Value::Object(claims), standard, signing_input, signature })
    }
}

fn json_object(segment: Segment, text: &str) -> Result<Map<String, Value>, VerifyError> {
    let bytes = b64::decode(text).map_err(|source| VerifyError::Base64 { segment, source })?;
    match serde_json::from_slice(&bytes).map_err(|source| VerifyError::Json { segment, source })? {
        Value::Object(map) => Ok(map),
        _ => Err(VerifyError::NotObject { segment }),
    }
}

fn optional_string(
    map: &Map<String, Value>,
    segment: Segment,
    member: &'static str,
) -> Result<Option<String>, VerifyError> {
    match map.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        other => Err(member_error(segment, member, "a string", other)),
    }
}

/// Largest magnitude accepted for a NumericDate, as go-jose v4 (2^62 seconds): far past any real
/// time, and safely away from overflow when leeway is added.
const MAX_NUMERIC_DATE: f64 = (1u64 << 62) as f64;

fn numeric_date(map: &Map<String, Value>, member: &'static str) -> Result<Option<i64>, VerifyError> {
    const EXPECTED: &str = "a NumericDate (seconds since the epoch)";
    match map.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(i) = n.as_i64().filter(|i| (*i as f64).abs() < MAX_NUMERIC_DATE) {
                return Ok(Some(i));
            }
            match n.as_f64() {
                Some(f) if f.is_finite() && f.abs() < MAX_NUMERIC_DATE => Ok(Some(f.trunc() as i64)),
                _ => Err(member_error(Segment::Payload, member, EXPECTED, map.get(member))),
            }
        }
        other => Err(member_error(Segment::Payload, member, EXPECTED, other)),
    }
}

fn member_error(
    segment: Segment,
    member: &'static str,
    expected: &'static str,
    found: Option<&Value>,
) -> VerifyError {
    let found = match found {
        None => "nothing (missing)".to_string(),
        Some(v) => {
            let text = v.to_string();
            if text.chars().count() > 60 {
                format!("{}…", text.chars().take(60).collect::<String>())
            } else {
                text
            }
        }
    };
    VerifyError::Member { segment, member, expected, found }
}
