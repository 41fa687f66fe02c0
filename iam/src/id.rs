//! Identifiers and secrets in AWS's formats (`AIDA…`, `AROA…`, `AKIA…`, `ASIA…`, 40-character
//! secrets), drawn from a seeded generator so a directory is reproducible: the same seed gives
//! the same admin key, which the lab can print, and the same IDs in tests.
//!
//! Each draw is SHA-256 over the seed, a purpose label and a counter that the directory
//! persists, so reloading state never reissues an identifier.

use data_encoding::{BASE32_NOPAD, BASE64};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The seeded generator; persisted with the directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdGen {
    seed: String,
    counter: u64,
}

// === impl IdGen ===

impl IdGen {
    /// A generator for `seed`, starting at zero.
    pub fn new(seed: impl Into<String>) -> Self {
        Self { seed: seed.into(), counter: 0 }
    }

    /// 32 fresh bytes for `purpose`.
    fn draw(&mut self, purpose: &str) -> [u8; 32] {
        self.counter += 1;
        digest(&self.seed, purpose, self.counter)
    }

    /// A unique ID: `prefix` + 17 characters of A–Z and 2–7 (`AIDA`, `AROA`, `ANPA`, `AIPA`).
    pub fn unique_id(&mut self, prefix: &str) -> String {
        format!("{prefix}{}", &base32(&self.draw(prefix))[..17])
    }

    /// An access key pair: `prefix` (`AKIA` or `ASIA`) + 16 characters, and a 40-character
    /// secret.
    pub fn key_pair(&mut self, prefix: &str) -> (String, String) {
        let bytes = self.draw(prefix);
        key_pair_from(prefix, &bytes)
    }

    /// A session token: opaque base64 of the length real tokens have (several hundred
    /// characters), starting as AWS's do.
    pub fn session_token(&mut self) -> String {
        let mut raw = Vec::with_capacity(32 * 9);
        for _ in 0..9 {
            raw.extend_from_slice(&self.draw("token"));
        }
        format!("IQoJb3JpZ2luX2Vj{}", BASE64.encode(&raw))
    }

    /// A key pair derived from the seed alone, the same every time: the lab's admin key.
    pub fn fixed_key_pair(&self, purpose: &str) -> (String, String) {
        key_pair_from("AKIA", &digest(&self.seed, purpose, 0))
    }
}

fn digest(seed: &str, purpose: &str, counter: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(seed.as_bytes());
    h.update([0]);
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(counter.to_be_bytes());
    h.finalize().into()
}

fn base32(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes)
}

fn key_pair_from(prefix: &str, bytes: &[u8; 32]) -> (String, String) {
    // 10 bytes are exactly 16 base32 characters; 30 bytes exactly 40 base64 characters.
    let id = format!("{prefix}{}", base32(&bytes[..10]));
    let mut secret_bytes = [0u8; 30];
    let more = Sha256::digest(bytes);
    secret_bytes[..22].copy_from_slice(&bytes[10..]);
    secret_bytes[22..].copy_from_slice(&more[..8]);
    (id, BASE64.encode(&secret_bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let mut g = IdGen::new("t");
        let id = g.unique_id("AROA");
        assert_eq!(id.len(), 21);
        assert!(id[4..].bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        let (akid, secret) = g.key_pair("AKIA");
        assert_eq!(akid.len(), 20);
        assert!(akid.starts_with("AKIA"));
        assert!(akid[4..].bytes().all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        assert_eq!(secret.len(), 40);
        assert_ne!(g.key_pair("AKIA").0, akid);
        assert_eq!(IdGen::new("t").fixed_key_pair("admin"), IdGen::new("t").fixed_key_pair("admin"));
        assert!(g.session_token().len() > 300);
    }
}
