//! The JOSE header of a compact JWS (RFC 7515 §4), the part signer and verifier share.
//!
//! kube-apiserver's tokens carry exactly `{"alg":"RS256","kid":"<kid>"}`: go-jose writes the
//! header's members in sorted order, adds no `typ`, and the key id is always set. Signing writes
//! that byte for byte (the field order of [`Header`] is the wire order); verification reads any
//! header and keeps what a relying party looks at.

use serde::{Deserialize, Serialize};

/// The only algorithm the issuer signs with and the verifier accepts: RSASSA-PKCS1-v1_5 with
/// SHA-256 (RFC 7518 §3.3), what kube-apiserver uses for RSA keys and what every OIDC relying
/// party (AWS STS included) must support.
pub const RS256: &str = "RS256";

/// A JOSE header as this crate reads and writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// `alg`: the signing algorithm.
    pub alg: String,
    /// `kid`: the id of the key that signed, matched against the JWKS's `kid`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `typ`: the media type, when the signer set one (kube-apiserver does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

impl Header {
    /// The header kube-apiserver writes: `alg` RS256 and the signing key's id, nothing else.
    pub fn rs256(kid: &str) -> Self {
        Header { alg: RS256.to_string(), kid: Some(kid.to_string()), typ: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rs256_header_serialises_exactly_as_upstream() {
        let json = serde_json::to_string(&Header::rs256("abc")).unwrap();
        assert_eq!(json, r#"{"alg":"RS256","kid":"abc"}"#);
    }
}
