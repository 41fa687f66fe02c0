//! Wildcard matching with `*` (any run, empty included) and `?` (exactly one), everything else
//! literal: the one algorithm behind IAM's Action and Resource patterns, EC2's filter values and
//! Chaos Mesh's DNS and repository patterns, so that all three agree on what a pattern matches.
//!
//! The classic two-pointer match with one backtrack point (the last `*`): linear in practice,
//! no recursion, no allocation beyond the caller's slices.

/// Whether `text` matches `pattern`, element by element: `star` matches any run, `one` any
/// single element.
pub fn matches_by<T: PartialEq>(pattern: &[T], text: &[T], star: &T, one: &T) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while ti < text.len() {
        if pi < pattern.len() && pattern[pi] != *star && (pattern[pi] == *one || pattern[pi] == text[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < pattern.len() && pattern[pi] == *star {
            backtrack = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = backtrack {
            pi = sp + 1;
            ti = st + 1;
            backtrack = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[pi..].iter().all(|c| c == star)
}

/// Whether `text` matches `pattern`, by characters.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern.is_ascii() && text.is_ascii() {
        return matches_by(pattern.as_bytes(), text.as_bytes(), &b'*', &b'?');
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    matches_by(&p, &t, &'*', &'?')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        for (p, t, want) in [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "anything", true),
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyy", false),
            ("ec2:Describe*", "ec2:DescribeInstances", true),
            ("ec2:Describe*", "ec2:CreateTags", false),
            ("**", "x", true),
            ("é?", "éa", true),
            ("*ü", "grüü", true),
        ] {
            assert_eq!(matches(p, t), want, "{p:?} ~ {t:?}");
        }
    }
}
