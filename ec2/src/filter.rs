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
        if !f.values.iter().any(|want| have.iter().any(|v| netlab_glob::matches(want, v))) {
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

/// What a `Describe*` call answers: the `items` named in `ids` (every one when `ids` is empty)
/// that match every filter, in the items' order.
pub fn select<'a, T: 'a>(
    items: impl IntoIterator<Item = &'a T>,
    id: impl Fn(&T) -> &str,
    ids: &[&str],
    filters: &[Filter],
    fields: &Fields<'_, T>,
) -> Result<Vec<&'a T>> {
    let mut selected = Vec::new();
    for item in items {
        if (ids.is_empty() || ids.contains(&id(item))) && matches(filters, item, fields)? {
            selected.push(item);
        }
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_wildcards() {
        let f = [Filter { name: "instance-id".into(), values: vec!["i-*".into()] }];
        let id = |v: &&str, _: &str| Some(vec![v.to_string()]);
        assert!(matches(&f, &"i-0123", &id).unwrap());
        assert!(!matches(&f, &"eni-0123", &id).unwrap());
    }

    #[test]
    fn unknown_filter_is_invalid_parameter_value() {
        let f = [Filter { name: "public-ip".into(), values: vec!["1".into()] }];
        let err = matches(&f, &(), &|_: &(), _: &str| None).unwrap_err();
        assert_eq!(err.code, "InvalidParameterValue");
        assert_eq!(err.message, "The filter 'public-ip' is invalid");
    }
}
