//! ECR's authorization tokens on the wire: GetAuthorizationToken hands out
//! `base64("AWS:" + password)`, which clients send back as `Authorization: Basic <token>` (or
//! split into username `AWS` and the password, as docker and containerd store them). The
//! password looks like ECR's: base64 of a JSON envelope with an opaque `payload` and `datakey`,
//! `version`, `type` and the `expiration` in epoch seconds, so an engineer who decodes one sees
//! the familiar shape. No base64 crate is in the tree, so the codec (standard alphabet, padded)
//! lives here.

use jiff::Timestamp;
use sha2::{Digest as _, Sha256};

/// The username every ECR token carries.
pub const USERNAME: &str = "AWS";

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// A fresh password expiring at `expires_at`: unguessable (two v4 UUIDs through SHA-256).
pub fn new_password(expires_at: Timestamp) -> String {
    let seed = format!("{}{}", netlab_aws::protocol::request_id(), netlab_aws::protocol::request_id());
    let part = |label: &str, rounds: usize| {
        let mut bytes = Vec::with_capacity(32 * rounds);
        for i in 0..rounds {
            bytes.extend_from_slice(&Sha256::digest(format!("{seed}/{label}/{i}")));
        }
        encode(&bytes)
    };
    let envelope = serde_json::json!({
        "payload": part("payload", 8),
        "datakey": part("datakey", 4),
        "version": "2",
        "type": "DATA_KEY",
        "expiration": expires_at.as_second(),
    });
    encode(envelope.to_string().as_bytes())
}

/// The token GetAuthorizationToken returns for `password`.
pub fn authorization_token(password: &str) -> String {
    encode(format!("{USERNAME}:{password}").as_bytes())
}

/// The password in an `Authorization: Basic ...` header value, if it is one with user `AWS`.
pub fn basic_password(header: &str) -> Option<String> {
    let (scheme, credentials) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(decode(credentials.trim())?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    (user == USERNAME).then(|| password.to_owned())
}

/// Standard base64 with padding.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (padding optional); `None` for anything else.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|a| *a == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    // A single leftover character cannot encode a byte.
    (bits < 6).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded).unwrap(), plain.as_bytes());
        }
        assert_eq!(decode("Zm9vYg").unwrap(), b"foob");
        assert!(decode("Zm9v!").is_none());
        assert!(decode("Z").is_none());
    }

    #[test]
    fn token_round_trip_through_basic_auth() {
        let expires = Timestamp::from_second(1_700_043_200).unwrap();
        let password = new_password(expires);
        let envelope: serde_json::Value = serde_json::from_slice(&decode(&password).unwrap()).unwrap();
        assert_eq!(envelope["type"], "DATA_KEY");
        assert_eq!(envelope["expiration"], 1_700_043_200);
        assert_ne!(password, new_password(expires));
        let token = authorization_token(&password);
        assert_eq!(basic_password(&format!("Basic {token}")), Some(password.clone()));
        assert_eq!(basic_password(&format!("basic  {token}")), Some(password));
        assert_eq!(basic_password(&format!("Basic {}", encode(b"root:x"))), None);
        assert_eq!(basic_password(&format!("Bearer {token}")), None);
    }
}
