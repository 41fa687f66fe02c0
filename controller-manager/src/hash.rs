//! Pod-template hashing, as upstream's `controller.ComputeHash` (ReplicaSet names and the
//! `pod-template-hash` label) and `history.HashControllerRevision` (StatefulSet's
//! `controller-revision-hash`) do: an FNV-32 hash of the template, the collision count mixed in,
//! and the decimal hash spelled with `rand.SafeEncodeString`'s alphabet, which has no vowels (no
//! words) and no confusable characters. That is why ReplicaSets are named like
//! `orders-7d9f8c6b5d`.
//!
//! Upstream feeds the hash with Go's `spew` printing of the template struct, which Rust cannot
//! reproduce; netlab hashes the template's canonical JSON instead (k8s-openapi serializes fields
//! in a fixed order and maps sorted). Names therefore look like upstream's and are just as stable,
//! but are not the same string a real cluster would pick for the same template.

use k8s_openapi::api::core::v1::PodTemplateSpec;

/// `rand.SafeEncodeString`'s alphabet: consonants and digits that cannot be confused.
pub const ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV_OFFSET: u32 = 0x811c_9dc5;
const FNV_PRIME: u32 = 0x0100_0193;

/// FNV-1a, 32 bits (Go's `fnv.New32a`).
pub fn fnv32a(data: &[u8], mut h: u32) -> u32 {
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// FNV-1, 32 bits (Go's `fnv.New32`).
pub fn fnv32(data: &[u8], mut h: u32) -> u32 {
    for b in data {
        h = h.wrapping_mul(FNV_PRIME);
        h ^= u32::from(*b);
    }
    h
}

/// `rand.SafeEncodeString`: each byte of `s` becomes `ALPHABET[byte % 27]`.
pub fn safe_encode(s: &str) -> String {
    s.bytes().map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()])).collect()
}

fn canonical(template: &PodTemplateSpec) -> Vec<u8> {
    // Serializing a k8s-openapi struct cannot fail: it holds only strings, numbers, maps with
    // string keys and nested structs.
    serde_json::to_vec(template).unwrap_or_default()
}

/// `controller.ComputeHash`: the `pod-template-hash` of a Deployment's template (up to 10
/// characters: the decimal digits of a u32).
pub fn pod_template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h = fnv32a(&canonical(template), FNV_OFFSET);
    if let Some(n) = collision_count {
        // Go writes the count little-endian into an 8-byte buffer: four bytes, then four zeros.
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&(n as u32).to_le_bytes());
        h = fnv32a(&bytes, h);
    }
    safe_encode(&h.to_string())
}

/// `history.HashControllerRevision`: the hash part of a StatefulSet's
/// `controller-revision-hash` (`<set>-<hash>`); FNV-1 (not 1a) with the collision count as
/// decimal text, as upstream.
pub fn revision_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut h = fnv32(&canonical(template), FNV_OFFSET);
    if let Some(n) = collision_count {
        h = fnv32(n.to_string().as_bytes(), h);
    }
    safe_encode(&h.to_string())
}

#[cfg(test)]
mod tests {
    use super as hash;
    use crate::pod::tests::template;

    #[test]
    fn safe_encode_uses_upstreams_alphabet() {
        // Digits are bytes 48..=57; 48 % 27 = 21 → '4' ... 57 % 27 = 3 → 'f'.
        assert_eq!(hash::safe_encode("0123456789"), "456789bcdf");
        assert_eq!(hash::fnv32a(b"", 0x811c_9dc5), 0x811c_9dc5);
        // Published FNV test vectors.
        assert_eq!(hash::fnv32a(b"a", 0x811c_9dc5), 0xe40c_292c);
        assert_eq!(hash::fnv32(b"a", 0x811c_9dc5), 0x050c_5d7e);
    }

    #[test]
    fn pod_template_hash_is_stable_short_and_changes_with_the_template() {
        let a = hash::pod_template_hash(&template("nginx:1.25"), None);
        assert_eq!(a, hash::pod_template_hash(&template("nginx:1.25"), None), "stable");
        assert!((9..=10).contains(&a.len()), "the decimal digits of a u32: {a}");
        assert!(a.bytes().all(|b| hash::ALPHABET.contains(&b)), "{a}");
        assert_ne!(a, hash::pod_template_hash(&template("nginx:1.26"), None), "changes with the template");
        assert_ne!(
            a,
            hash::pod_template_hash(&template("nginx:1.25"), Some(1)),
            "changes with collisionCount"
        );
        let r = hash::revision_hash(&template("nginx:1.25"), None);
        assert!(r.bytes().all(|b| hash::ALPHABET.contains(&b)) && !r.is_empty());
        assert_ne!(r, hash::revision_hash(&template("nginx:1.26"), None));
    }
}
