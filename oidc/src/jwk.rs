//! JSON Web Keys (RFC 7517) as kube-apiserver serves them at `/openid/v1/jwks`, and the way back
//! from a JWK to an RSA public key for the verifier.
//!
//! Upstream's key set is go-jose's `JSONWebKeySet` of public keys, each with `use: "sig"`, `alg`
//! from the key type (`RS256` for RSA) and `kid` from `keyIDFromPublicKey`; go-jose writes the
//! members in the order `use`, `kty`, `kid`, `alg`, `n`, `e`, leaving empty ones out. [`Jwk`]
//! keeps that order, so the served document matches upstream's byte for byte.
//!
//! Reading is lenient the way a relying party must be: a fetched set may hold keys of other
//! types (EC keys have no `n`/`e`) or extra members (`x5c`, …), and that must not make the whole
//! set unreadable. Every member defaults to empty, and a key is only judged when the verifier
//! tries to use it.

use rsa::traits::PublicKeyParts;
use rsa::{BoxedUint, PublicKey};
use serde::{Deserialize, Serialize};

use crate::b64;

/// One public key of the issuer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    /// `use`: `sig`, the key verifies signatures.
    #[serde(rename = "use", default, skip_serializing_if = "String::is_empty")]
    pub use_: String,
    /// `kty`: the key type, `RSA`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kty: String,
    /// `kid`: the key id, as in the token header's `kid`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kid: String,
    /// `alg`: the algorithm the key is used with, `RS256`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub alg: String,
    /// `n`: the modulus, big-endian without leading zeros, base64url without padding.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub n: String,
    /// `e`: the public exponent, encoded like `n` (`AQAB` for 65537).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub e: String,
}

/// A JSON Web Key Set: the document at `/openid/v1/jwks`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    /// The keys, in the order the issuer lists them.
    pub keys: Vec<Jwk>,
}

/// Why a JWK cannot be used as an RSA verification key.
#[derive(Debug, thiserror::Error)]
pub enum JwkError {
    /// `kty` is not `RSA`.
    #[error("key type (kty) is {kty:?}, not \"RSA\"")]
    NotRsa {
        /// The `kty` the key has.
        kty: String,
    },
    /// `n` or `e` is missing or empty.
    #[error("RSA key has no {member:?}")]
    Missing {
        /// `n` or `e`.
        member: &'static str,
    },
    /// `n` or `e` is not base64url without padding.
    #[error("RSA key member {member:?} is not base64url without padding: {source}")]
    Base64 {
        /// `n` or `e`.
        member: &'static str,
        /// The decoder's complaint.
        source: data_encoding::DecodeError,
    },
    /// The key's `use` is not `sig`.
    #[error("key use is {use_:?}, not \"sig\"")]
    NotForSignatures {
        /// The key's `use`.
        use_: String,
    },
    /// The key's `alg` is not RS256.
    #[error("key is for algorithm {alg:?}, not RS256")]
    OtherAlgorithm {
        /// The key's `alg`.
        alg: String,
    },
    /// `n` and `e` decode but do not make an acceptable RSA public key (modulus outside
    /// 1024–8192 bits, even modulus, exponent out of range, …).
    #[error("RSA key is not usable: {source}")]
    Invalid {
        /// The `rsa` crate's reason.
        source: rsa::Error,
    },
}

impl Jwk {
    /// The JWK kube-apiserver publishes for an RSA public key with id `kid`.
    pub(crate) fn rs256(kid: &str, key: &PublicKey) -> Self {
        Jwk {
            use_: "sig".to_string(),
            kty: "RSA".to_string(),
            kid: kid.to_string(),
            alg: crate::jws::RS256.to_string(),
            n: b64::encode(&key.n_bytes()),
            e: b64::encode(&key.e_bytes()),
        }
    }

    /// The RSA public key this JWK describes.
    pub fn to_rsa_public_key(&self) -> Result<PublicKey, JwkError> {
        if self.kty != "RSA" {
            return Err(JwkError::NotRsa { kty: self.kty.clone() });
        }
        let n = decode_member("n", &self.n)?;
        let e = decode_member("e", &self.e)?;
        PublicKey::new(n, e).map_err(|source| JwkError::Invalid { source })
    }
}

fn decode_member(member: &'static str, text: &str) -> Result<BoxedUint, JwkError> {
    if text.is_empty() {
        return Err(JwkError::Missing { member });
    }
    let bytes = b64::decode(text).map_err(|source| JwkError::Base64 { member, source })?;
    Ok(BoxedUint::from_be_slice_vartime(&bytes))
}

impl Jwks {
    /// The keys whose `kid` is `kid`.
    pub fn by_kid<'a>(&'a self, kid: &'a str) -> impl Iterator<Item = &'a Jwk> + 'a {
        self.keys.iter().filter(move |k| k.kid == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_serialise_in_go_jose_order() {
        let jwk = Jwk {
            use_: "sig".into(),
            kty: "RSA".into(),
            kid: "k1".into(),
            alg: "RS256".into(),
            n: "nn".into(),
            e: "AQAB".into(),
        };
        let json = serde_json::to_string(&Jwks { keys: vec![jwk] }).unwrap();
        assert_eq!(
            json,
            r#"{"keys":[{"use":"sig","kty":"RSA","kid":"k1","alg":"RS256","n":"nn","e":"AQAB"}]}"#
        );
    }

    #[test]
    fn a_set_with_foreign_keys_still_reads() {
        let json = r#"{"keys":[
            {"kty":"EC","crv":"P-256","x":"abc","y":"def","kid":"ec1","use":"sig","alg":"ES256"},
            {"kty":"RSA","kid":"r1","n":"AQAB","e":"AQAB","x5c":["MII..."]}
        ]}"#;
        let set: Jwks = serde_json::from_str(json).unwrap();
        assert_eq!(set.keys.len(), 2);
        assert!(matches!(set.keys[0].to_rsa_public_key(), Err(JwkError::NotRsa { ref kty }) if kty == "EC"));
        // n = 1 is no modulus.
        assert!(matches!(set.keys[1].to_rsa_public_key(), Err(JwkError::Invalid { .. })));
        assert_eq!(set.by_kid("r1").count(), 1);
        assert_eq!(set.by_kid("nope").count(), 0);
    }

    #[test]
    fn missing_and_malformed_members_are_named() {
        let mut jwk = Jwk {
            use_: String::new(),
            kty: "RSA".into(),
            kid: String::new(),
            alg: String::new(),
            n: String::new(),
            e: "AQAB".into(),
        };
        let err = jwk.to_rsa_public_key().unwrap_err();
        assert!(matches!(err, JwkError::Missing { member: "n" }), "{err}");
        jwk.n = "a+b/".into();
        let err = jwk.to_rsa_public_key().unwrap_err();
        assert!(matches!(err, JwkError::Base64 { member: "n", .. }), "{err}");
        assert!(err.to_string().contains("\"n\""), "{err}");
    }
}
