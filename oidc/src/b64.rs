//! The one base64 alphabet JOSE uses: base64url without padding (RFC 7515 §2, "Base64url
//! Encoding"). Every token segment, the key id and the JWK's `n` and `e` are in it; keeping the
//! choice in one place means signer and verifier cannot drift apart (padding or the standard
//! alphabet would make tokens other verifiers reject).

use data_encoding::BASE64URL_NOPAD;

/// Encodes `bytes` as base64url without padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    BASE64URL_NOPAD.encode(bytes)
}

/// Decodes base64url without padding; padding, the standard alphabet's `+` and `/`, whitespace
/// and non-canonical trailing bits are all refused, as Go's `base64.RawURLEncoding` refuses them.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, data_encoding::DecodeError> {
    BASE64URL_NOPAD.decode(text.as_bytes())
}
