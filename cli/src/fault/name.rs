//! Generated fault names: `<kind-short>-<what>-<5 random chars>`, e.g. `net-client-orders-x7k2p`,
//! so that `netlab fault list` says at a glance what each fault is, and two faults on the same
//! pods do not collide.

/// Kubernetes' `generateName` alphabet: no vowels (no words by accident), no look-alike `0`, `1`, `3`.
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
/// Suffix length, as `generateName` uses.
const SUFFIX_LEN: usize = 5;
/// Object names shown in tables and events stay readable and within a DNS label.
const MAX_LEN: usize = 63;

/// The name of a fault of kind `short` (`net`, `dns`, ...) about `what` (`client`, `orders`,
/// `node-1`), ending in `suffix` (from [`suffix`]).
pub fn with_suffix(short: &str, what: &[&str], suffix: &str) -> String {
    let mut stem = sanitize(short);
    for part in what {
        let part = sanitize(part);
        if !part.is_empty() {
            stem.push('-');
            stem.push_str(&part);
        }
    }
    let room = MAX_LEN - SUFFIX_LEN - 1;
    if stem.len() > room {
        stem.truncate(room);
        while stem.ends_with('-') {
            stem.pop();
        }
    }
    format!("{stem}-{suffix}")
}

/// Lower case, anything but letters and digits turned into single dashes, none at the ends: a
/// label value such as `Orders_v2.1` becomes `orders-v2-1`.
fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// A fresh random suffix.
pub fn suffix() -> String {
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(SUFFIX_LEN)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_say_what_the_fault_is() {
        assert_eq!(with_suffix("net", &["client", "orders"], "x7k2p"), "net-client-orders-x7k2p");
        assert_eq!(with_suffix("pod", &["kill", "Orders_v2.1"], "bcdfg"), "pod-kill-orders-v2-1-bcdfg");
        assert_eq!(with_suffix("upstream", &["unreachable", ""], "bcdfg"), "upstream-unreachable-bcdfg");
        let long = with_suffix("net", &[&"a".repeat(80)], "bcdfg");
        assert_eq!(long.len(), MAX_LEN);
        assert!(long.ends_with("a-bcdfg"));
    }

    #[test]
    fn suffixes_are_random_from_the_alphabet() {
        let a = suffix();
        assert_eq!(a.len(), SUFFIX_LEN);
        assert!(a.bytes().all(|b| ALPHABET.contains(&b)));
        assert_ne!(a, suffix());
    }
}
