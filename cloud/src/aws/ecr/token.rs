//! ECR's authorization tokens on the wire: GetAuthorizationToken hands out
//! `base64("AWS:" + password)`, which clients send back as `Authorization: Basic <token>` (or
//! split into username `AWS` and the password, as docker and containerd store them). The
//! password looks like ECR's: base64 of a JSON envelope with an opaque `payload` and `datakey`,
//! `version`, `type` and the `expiration` in epoch seconds, so an engineer who decodes one sees
//! the familiar shape.

use hmac::{KeyInit as _, Mac as _};
use sha2::{Digest as _, Sha256};

use super::IssuedToken;

/// The username every ECR token carries.
pub const USERNAME: &str = "AWS";

type HmacSha256 = hmac::Hmac<Sha256>;

/// A new sealing key: 32 random bytes (two v4 UUIDs through SHA-256), base64.
pub fn new_key() -> String {
    let seed = format!("{}{}", netlab_aws::protocol::request_id(), netlab_aws::protocol::request_id());
    encode(&Sha256::digest(seed.as_bytes()))
}

/// The password for `issued`: ECR's envelope (`payload`, `datakey`, `version`, `type`,
/// `expiration`), whose payload carries `issued` and whose datakey is the payload's HMAC-SHA256
/// under `key`.
pub fn seal(key: &str, issued: &IssuedToken) -> String {
    // Serialising plain data cannot fail.
    let payload = encode(&serde_json::to_vec(issued).expect("a token serialises"));
    let envelope = serde_json::json!({
        "payload": payload,
        "datakey": encode(&mac(key, &payload)),
        "version": "2",
        "type": "DATA_KEY",
        "expiration": issued.expires_at.as_second(),
    });
    encode(envelope.to_string().as_bytes())
}

/// What a password sealed under `key` says; `None` if it is not one (forged, mangled, or
/// sealed under another account's key).
pub fn open(key: &str, password: &str) -> Option<IssuedToken> {
    let envelope: serde_json::Value = serde_json::from_slice(&decode(password)?).ok()?;
    let payload = envelope["payload"].as_str()?;
    let datakey = decode(envelope["datakey"].as_str()?)?;
    let mut verifier = HmacSha256::new_from_slice(&decode(key)?).ok()?;
    verifier.update(payload.as_bytes());
    verifier.verify_slice(&datakey).ok()?;
    serde_json::from_slice(&decode(payload)?).ok()
}

fn mac(key: &str, payload: &str) -> Vec<u8> {
    // A key of any length is accepted by HMAC.
    let mut m =
        HmacSha256::new_from_slice(&decode(key).unwrap_or_default()).expect("HMAC takes any key length");
    m.update(payload.as_bytes());
    m.finalize().into_bytes().to_vec()
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
    use jiff::Timestamp;

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
        let key = new_key();
        let issued = IssuedToken {
            identity: netlab_iam::Identity::User {
                name: "admin".into(),
                id: "AIDAEXAMPLE".into(),
                arn: "arn:aws:iam::123456789012:user/admin".into(),
            },
            region: "us-east-1".into(),
            expires_at: Timestamp::from_second(1_700_043_200).unwrap(),
        };
        let password = seal(&key, &issued);
        let envelope: serde_json::Value = serde_json::from_slice(&decode(&password).unwrap()).unwrap();
        assert_eq!(envelope["type"], "DATA_KEY");
        assert_eq!(envelope["expiration"], 1_700_043_200);
        assert_eq!(open(&key, &password), Some(issued.clone()));
        // Another account's key, or a payload changed by hand, opens nothing.
        assert_eq!(open(&new_key(), &password), None);
        let mut forged = envelope.clone();
        let mut claims = issued.clone();
        claims.expires_at = Timestamp::from_second(1_900_000_000).unwrap();
        forged["payload"] = encode(&serde_json::to_vec(&claims).unwrap()).into();
        assert_eq!(open(&key, &encode(forged.to_string().as_bytes())), None);
        assert_eq!(open(&key, "not base64 at all!"), None);

        let token = authorization_token(&password);
        assert_eq!(basic_password(&format!("Basic {token}")), Some(password.clone()));
        assert_eq!(basic_password(&format!("basic  {token}")), Some(password));
        assert_eq!(basic_password(&format!("Basic {}", encode(b"root:x"))), None);
        assert_eq!(basic_password(&format!("Bearer {token}")), None);
    }
}
