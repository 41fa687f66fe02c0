//! The decoded parameters of a Query request (IAM, STS, EC2), and the flattened shapes those
//! protocols encode in them: lists (`PolicyArns.member.1`, EC2's `PrivateIpAddress.1`),
//! structures in lists (`PrivateIpAddresses.1.Primary`), EC2 filters (`Filter.1.Name`,
//! `Filter.1.Value.1`) and tags (`Tag.1.Key`, `Tags.member.1.Key`,
//! `TagSpecification.1.Tag.1.Key`).

use std::collections::BTreeMap;

use crate::error::ProtocolError;

/// A Query request's parameters, by name. A repeated name keeps its last value.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    pairs: BTreeMap<String, String>,
}

/// One EC2 filter: `Filter.N.Name` and its `Filter.N.Value.M`s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The filter's name (`vpc-id`, `tag:Name`, `attachment.instance-id`).
    pub name: String,
    /// The values, any of which matches.
    pub values: Vec<String>,
}

/// One tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The tag key.
    pub key: String,
    /// The tag value; an absent value is the empty string, as EC2 stores it.
    pub value: String,
}

/// One EC2 `TagSpecification.N`: tags to put on the resources a call creates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TagSpecification {
    /// `TagSpecification.N.ResourceType` (`network-interface`, `instance`).
    pub resource_type: Option<String>,
    /// `TagSpecification.N.Tag.M.Key/Value`.
    pub tags: Vec<Tag>,
}

// === impl Params ===

impl Params {
    /// Parameters from decoded name/value pairs.
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        Self { pairs: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect() }
    }

    /// The `Action` parameter.
    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// A scalar parameter, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs.get(name).map(String::as_str)
    }

    /// A scalar parameter that must be present.
    pub fn required(&self, name: &str) -> Result<&str, ProtocolError> {
        self.get(name).ok_or_else(|| ProtocolError::MissingParameter { name: name.to_owned() })
    }

    /// All pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// A list of scalars, in index order: awsQuery's `Name.member.N` or EC2's `Name.N`.
    pub fn list(&self, name: &str) -> Vec<&str> {
        let mut items: BTreeMap<u32, &str> = BTreeMap::new();
        for (key, value) in &self.pairs {
            if let Some(rest) = list_rest(key, name)
                && let Ok(index) = rest.parse::<u32>()
            {
                items.insert(index, value);
            }
        }
        items.into_values().collect()
    }

    /// A list of structures, in index order: `Name.N.Field` or `Name.member.N.Field`, each as
    /// its own `Params` keyed by `Field` (which may itself be flattened further).
    pub fn structs(&self, name: &str) -> Vec<Params> {
        let mut items: BTreeMap<u32, Params> = BTreeMap::new();
        for (key, value) in &self.pairs {
            let Some(rest) = list_rest(key, name) else { continue };
            let Some((index, field)) = rest.split_once('.') else { continue };
            let Ok(index) = index.parse::<u32>() else { continue };
            items.entry(index).or_default().pairs.insert(field.to_owned(), value.clone());
        }
        items.into_values().collect()
    }

    /// EC2's `Filter.N.Name` / `Filter.N.Value.M`. A filter without a name is skipped.
    pub fn filters(&self) -> Vec<Filter> {
        self.structs("Filter")
            .into_iter()
            .filter_map(|f| {
                let name = f.get("Name")?.to_owned();
                let values = f.list("Value").into_iter().map(str::to_owned).collect();
                Some(Filter { name, values })
            })
            .collect()
    }

    /// Tags under `name`: EC2's `Tag.N.Key/Value` (name `Tag`) or IAM's
    /// `Tags.member.N.Key/Value` (name `Tags`). A tag without a key is skipped.
    pub fn tags(&self, name: &str) -> Vec<Tag> {
        self.structs(name).iter().filter_map(tag_of).collect()
    }

    /// EC2's `TagSpecification.N.ResourceType` and `TagSpecification.N.Tag.M.Key/Value`.
    pub fn tag_specifications(&self) -> Vec<TagSpecification> {
        self.structs("TagSpecification")
            .into_iter()
            .map(|spec| TagSpecification {
                resource_type: spec.get("ResourceType").map(str::to_owned),
                tags: spec.tags("Tag"),
            })
            .collect()
    }
}

fn tag_of(p: &Params) -> Option<Tag> {
    Some(Tag { key: p.get("Key")?.to_owned(), value: p.get("Value").unwrap_or_default().to_owned() })
}

/// `Name.member.3` or `Name.3` (and longer) → `3...`.
fn list_rest<'k>(key: &'k str, name: &str) -> Option<&'k str> {
    let rest = key.strip_prefix(name)?.strip_prefix('.')?;
    Some(rest.strip_prefix("member.").unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn scalars() {
        let p = params(&[("Action", "GetRole"), ("RoleName", "node")]);
        assert_eq!(p.action(), Some("GetRole"));
        assert_eq!(p.required("RoleName"), Ok("node"));
        assert_eq!(p.required("Path"), Err(ProtocolError::MissingParameter { name: "Path".into() }));
        assert!(!p.is_empty());
        assert_eq!(p.iter().count(), 2);
    }

    #[test]
    fn member_and_ec2_lists_in_index_order() {
        let p = params(&[
            ("PolicyArns.member.2", "b"),
            ("PolicyArns.member.10", "c"),
            ("PolicyArns.member.1", "a"),
            ("PrivateIpAddress.2", "10.0.0.5"),
            ("PrivateIpAddress.1", "10.0.0.4"),
            ("NetworkInterfaceId.1", "eni-1"),
            ("PrivateIpAddressCount", "2"),
        ]);
        assert_eq!(p.list("PolicyArns"), ["a", "b", "c"]);
        assert_eq!(p.list("PrivateIpAddress"), ["10.0.0.4", "10.0.0.5"]);
        assert_eq!(p.list("NetworkInterfaceId"), ["eni-1"]);
        assert!(p.list("Missing").is_empty());
    }

    #[test]
    fn filters() {
        let p = params(&[
            ("Filter.1.Name", "vpc-id"),
            ("Filter.1.Value.1", "vpc-1"),
            ("Filter.1.Value.2", "vpc-2"),
            ("Filter.2.Name", "tag:Name"),
            ("Filter.2.Value.1", "node"),
            ("Filter.3.Value.1", "nameless"),
        ]);
        assert_eq!(
            p.filters(),
            [
                Filter { name: "vpc-id".into(), values: vec!["vpc-1".into(), "vpc-2".into()] },
                Filter { name: "tag:Name".into(), values: vec!["node".into()] },
            ]
        );
    }

    #[test]
    fn tags_and_tag_specifications() {
        let p = params(&[
            ("Tag.1.Key", "Name"),
            ("Tag.1.Value", "n1"),
            ("Tag.2.Key", "empty"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "net"),
            ("TagSpecification.1.ResourceType", "network-interface"),
            ("TagSpecification.1.Tag.1.Key", "node.k8s.amazonaws.com/instance_id"),
            ("TagSpecification.1.Tag.1.Value", "i-1"),
        ]);
        assert_eq!(
            p.tags("Tag"),
            [
                Tag { key: "Name".into(), value: "n1".into() },
                Tag { key: "empty".into(), value: String::new() },
            ]
        );
        assert_eq!(p.tags("Tags"), [Tag { key: "team".into(), value: "net".into() }]);
        assert_eq!(
            p.tag_specifications(),
            [TagSpecification {
                resource_type: Some("network-interface".into()),
                tags: vec![Tag { key: "node.k8s.amazonaws.com/instance_id".into(), value: "i-1".into() }],
            }]
        );
    }

    #[test]
    fn structs_of_ec2_lists() {
        let p = params(&[
            ("PrivateIpAddresses.1.PrivateIpAddress", "10.0.0.4"),
            ("PrivateIpAddresses.1.Primary", "true"),
            ("PrivateIpAddresses.2.PrivateIpAddress", "10.0.0.5"),
            ("PrivateIpAddresses.x.Bad", "ignored"),
        ]);
        let s = p.structs("PrivateIpAddresses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].get("Primary"), Some("true"));
        assert_eq!(s[1].get("PrivateIpAddress"), Some("10.0.0.5"));
    }
}
