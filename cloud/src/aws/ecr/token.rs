//! ECR's authorization tokens on the wire: GetAuthorizationToken hands out
//! `base64("AWS:" + password)`, which clients send back as `Authorization: Basic <token>` (or
//! split into username `AWS` and the password, as docker and containerd store them). The
//! password looks like ECR's: base64 of a JSON envelope with an opaque `payload` and `datakey`,
//! `version`, `type` and the `expiration` in epoch seconds, so an engineer who decodes one sees
//! the familiar shape.

use jiff::Timestamp;
use sha2::{Digest as _, Sha256};

/// The username every ECR token carries.
pub const USERNAME: &str = "AWS";

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
    data_encoding::BASE64.encode(bytes)
}

/// Decodes standard base64 (padding optional); `None` for anything else.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    data_encoding::BASE64_NOPAD.decode(text.as_bytes()).ok()
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
