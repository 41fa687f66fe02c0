//! Randomness from the operating system, for the two things the issuer needs it for: RSA key
//! generation and the token's `jti`.
//!
//! The generator is `getrandom`'s `SysRng`, reached through the `rsa` stack (`sha2` → `digest` →
//! `crypto-common`, whose `getrandom` feature `rsa`'s default features switch on) rather than as
//! a dependency of its own, so this crate adds nothing to the lock file.

use sha2::digest::common::getrandom;

pub(crate) use getrandom::SysRng;

/// The operating system could not supply random bytes.
#[derive(Debug, thiserror::Error)]
#[error("reading random bytes from the operating system: {0}")]
pub struct RandomError(#[source] getrandom::Error);

/// A fresh random UUID (version 4, RFC 9562 §5.4) in its lowercase hyphenated form, the shape
/// kube-apiserver gives a token's `jti` (`uuid.New().String()`).
pub fn uuid_v4() -> Result<String, RandomError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(RandomError)?;
    Ok(format_uuid_v4(b))
}

/// Sets the version (4) and variant (RFC 4122, `10xx`) bits and formats as 8-4-4-4-12 hex.
fn format_uuid_v4(mut b: [u8; 16]) -> String {
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_sets_version_and_variant_bits() {
        assert_eq!(format_uuid_v4([0xff; 16]), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(format_uuid_v4([0; 16]), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn uuids_are_v4_shaped_and_differ() {
        let a = uuid_v4().unwrap();
        let b = uuid_v4().unwrap();
        assert_ne!(a, b);
        for u in [&a, &b] {
            let parts: Vec<&str> = u.split('-').collect();
            assert_eq!(parts.iter().map(|p| p.len()).collect::<Vec<_>>(), [8, 4, 4, 4, 12], "{u}");
            assert!(u.chars().all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert!(parts[2].starts_with('4'), "{u}");
            assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'), "{u}");
        }
    }
}
