//! EC2's `Filter.N` semantics: a resource matches when every filter matches, a filter matches
//! when any of its values matches any of the resource's values for that name, and values may use
//! `*` and `?` wildcards (EC2 API reference, "Filtering in the EC2 API").

use crate::error::{Ec2Error, Result};
use crate::model::Tags;

/// One `Filter.N`: a name and its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// e.g. `tag:node.k8s.amazonaws.com/instance_id`, `status`.
    pub name: String,
    /// Values, any of which may match.
    pub values: Vec<String>,
}

/// The values of a resource for one filter name: `None` when the name is not a filter of that
/// resource type (an `InvalidParameterValue`).
pub type Fields<'a, T> = dyn Fn(&T, &str) -> Option<Vec<String>> + 'a;

/// Whether `item` passes every filter; an unknown filter name is an error.
pub fn matches<T>(filters: &[Filter], item: &T, fields: &Fields<'_, T>) -> Result<bool> {
    for f in filters {
        let have = fields(item, &f.name).ok_or_else(|| Ec2Error::invalid_filter(&f.name))?;
        if !f.values.iter().any(|want| have.iter().any(|v| glob(want, v))) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The values of the tag filters every taggable resource has: `tag:KEY`, `tag-key`, `tag-value`.
/// `None` when `name` is none of them.
pub fn tag_fields(tags: &Tags, name: &str) -> Option<Vec<String>> {
    if let Some(key) = name.strip_prefix("tag:") {
        return Some(tags.get(key).cloned().into_iter().collect());
    }
    match name {
        "tag-key" => Some(tags.keys().cloned().collect()),
        "tag-value" => Some(tags.values().cloned().collect()),
        _ => None,
    }
}

/// `*` matches any run of characters, `?` any one character; everything else is literal.
pub fn glob(pattern: &str, value: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    let (mut pi, mut vi) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, vi));
            pi += 1;
        } else if let Some((sp, sv)) = star {
            pi = sp + 1;
            vi = sv + 1;
            star = Some((sp, sv + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(glob("abc", "abc"));
        assert!(!glob("abc", "abd"));
        assert!(glob("a*", "abc"));
        assert!(glob("*c", "abc"));
        assert!(glob("a?c", "abc"));
        assert!(glob("*", ""));
        assert!(glob("i-*", "i-0123"));
        assert!(!glob("i-*x", "i-0123"));
    }

    #[test]
    fn unknown_filter_is_invalid_parameter_value() {
        let f = [Filter { name: "public-ip".into(), values: vec!["1".into()] }];
        let err = matches(&f, &(), &|_: &(), _: &str| None).unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
        assert_eq!(err.message, "The filter 'public-ip' is invalid");
    }
}
