//! Chaos Mesh's DNSChaos patterns (its trie selector), also used for registry repositories: `*`
//! matches any run of characters (dots included) and may only end a pattern; `?` matches one
//! character; anything else matches itself, case insensitively. A pattern without wildcards
//! matches the name exactly (the queried name's trailing dot is ignored). `google.com`,
//! `chaos-mesh.*`, `github.?om`, `*`. Chaos Mesh finds a misplaced `*` only when it applies the
//! fault (`pattern *.example.com not valid`); netlab refuses it when the object is written.

/// Whether `name` matches any of `patterns` (an empty list matches everything).
pub fn any(patterns: &[String], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| matches(p, name))
}

/// Whether `name` matches `pattern`.
pub fn matches(pattern: &str, name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern).to_ascii_lowercase();
    netlab_glob::matches(&pattern, &name)
}

/// Why a pattern is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// Empty.
    #[error("pattern must not be empty")]
    Empty,
    /// A character no DNS name or repository has.
    #[error("pattern may contain only letters, digits, '-', '_', '.', '/', ':', '*' and '?'")]
    Character,
    /// `*` somewhere but at the end (Chaos Mesh's trie takes it only there).
    #[error("pattern {0} not valid: '*' may only be the last character")]
    Star(String),
}

/// Checks a pattern's syntax.
pub fn validate(pattern: &str) -> Result<(), PatternError> {
    if pattern.is_empty() {
        return Err(PatternError::Empty);
    }
    if !pattern.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./*?:".contains(&b)) {
        return Err(PatternError::Character);
    }
    if pattern.find('*').is_some_and(|i| i + 1 != pattern.len()) {
        return Err(PatternError::Star(pattern.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_mesh_examples() {
        assert!(matches("google.com", "google.com."));
        assert!(!matches("google.com", "mail.google.com"));
        assert!(matches("chaos-mesh.*", "chaos-mesh.org"));
        assert!(matches("github.?om", "github.com"));
        assert!(matches("*", "api.example.com."));
        assert!(matches("orders.*", "orders.default.svc.cluster.local"));
        assert!(matches("ORDERS.*", "orders.default"));
        assert!(matches("library/nginx*", "library/nginx"));
        assert!(!matches("library/nginx*", "library/busybox"));
        assert!(any(&[], "anything"));
    }

    #[test]
    fn syntax() {
        assert_eq!(validate(""), Err(PatternError::Empty));
        assert_eq!(validate("a b"), Err(PatternError::Character));
        assert!(validate("orders.*").is_ok());
        assert_eq!(
            validate("*.example.com").unwrap_err().to_string(),
            "pattern *.example.com not valid: '*' may only be the last character"
        );
    }
}
