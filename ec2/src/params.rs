//! The decoded form parameters of an EC2 Query request, and how lists and structures are spelled.
//!
//! The ec2 protocol flattens everything into `Name.N.Member` keys: `NetworkInterfaceId.1`,
//! `Filter.1.Name` + `Filter.1.Value.1`, `TagSpecification.1.Tag.1.Key`. The key names here are
//! the ones botocore's serializer produces from the service model (checked by serializing sample
//! calls with botocore 1.43.11), so `aws ec2 ...` and the Go SDK reach the same parameters.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use crate::error::{Ec2Error, Result};
use crate::filter::Filter;
use crate::model::Tags;

/// Decoded request parameters (`Action` and `Version` may be present; they are ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(BTreeMap<String, String>);

// === impl Params ===

impl Params {
    /// Parameters from decoded pairs; a later duplicate key wins.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self(pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A required parameter; `MissingParameter` if absent or empty.
    pub fn require(&self, name: &str) -> Result<&str> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| Ec2Error::missing_parameter(name))
    }

    /// An optional non-negative integer.
    pub fn uint(&self, name: &str) -> Result<Option<u32>> {
        self.get(name).map(|v| v.parse().map_err(|_| Ec2Error::invalid_value(v, name))).transpose()
    }

    /// An optional boolean (`true`/`false`, as botocore sends them).
    pub fn bool(&self, name: &str) -> Result<Option<bool>> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(Ec2Error::invalid_value(v, name)),
            })
            .transpose()
    }

    /// The members `<name>.N` in index order, whatever the numbering.
    pub fn list(&self, name: &str) -> Vec<&str> {
        let mut members: Vec<(u32, &str)> = self
            .0
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(name)?.strip_prefix('.')?.parse().ok()?;
                Some((n, v.as_str()))
            })
            .collect();
        members.sort_by_key(|(n, _)| *n);
        members.into_iter().map(|(_, v)| v).collect()
    }

    /// The distinct indices N of `<name>.N.<...>` keys with the rest of the key.
    fn indexed(&self, name: &str) -> Vec<(u32, &str)> {
        let mut out: Vec<(u32, &str)> = self
            .0
            .keys()
            .filter_map(|k| {
                let rest = k.strip_prefix(name)?.strip_prefix('.')?;
                let (n, tail) = rest.split_once('.').unwrap_or((rest, ""));
                Some((n.parse().ok()?, tail))
            })
            .collect();
        out.sort();
        out
    }

    /// The indices N of structures `<name>.N.<member>`.
    fn structures(&self, name: &str) -> Vec<u32> {
        let mut ns: Vec<u32> =
            self.indexed(name).into_iter().filter(|(_, tail)| !tail.is_empty()).map(|(n, _)| n).collect();
        ns.dedup();
        ns
    }

    /// A list of IPv4 addresses `<name>.N`; a bad one is `InvalidParameterValue`.
    pub fn ipv4_list(&self, name: &str) -> Result<Vec<Ipv4Addr>> {
        self.list(name).into_iter().map(|v| v.parse().map_err(|_| Ec2Error::invalid_address(v))).collect()
    }

    /// `Filter.N.Name` / `Filter.N.Value.M`.
    pub fn filters(&self) -> Result<Vec<Filter>> {
        self.structures("Filter")
            .into_iter()
            .map(|n| {
                let prefix = format!("Filter.{n}");
                let name = self.require(&format!("{prefix}.Name"))?.to_string();
                let values = self.list(&format!("{prefix}.Value")).into_iter().map(String::from).collect();
                Ok(Filter { name, values })
            })
            .collect()
    }

    /// `<name>.N.Key` / `<name>.N.Value` pairs; the value is `None` when absent (DeleteTags
    /// deletes a key whatever its value then).
    pub fn tag_list(&self, name: &str) -> Result<Vec<(String, Option<String>)>> {
        self.structures(name)
            .into_iter()
            .map(|n| {
                let key = self.require(&format!("{name}.{n}.Key"))?.to_string();
                let value = self.get(&format!("{name}.{n}.Value")).map(String::from);
                Ok((key, value))
            })
            .collect()
    }

    /// The tags of `TagSpecification.N` entries whose `ResourceType` is `resource_type`.
    pub fn tag_specifications(&self, resource_type: &str) -> Result<Tags> {
        let mut tags = Tags::new();
        for n in self.structures("TagSpecification") {
            let prefix = format!("TagSpecification.{n}");
            let rt = self.get(&format!("{prefix}.ResourceType")).unwrap_or("");
            if rt != resource_type {
                // moto: "'x' is not a valid taggable resource type for this operation."
                return Err(Ec2Error::new(
                    "InvalidParameterValue",
                    format!("'{rt}' is not a valid taggable resource type for this operation."),
                ));
            }
            for (k, v) in self.tag_list(&format!("{prefix}.Tag"))? {
                tags.insert(k, v.unwrap_or_default());
            }
        }
        Ok(tags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_structures_and_filters() {
        let p = Params::from_pairs([
            ("NetworkInterfaceId.2", "eni-b"),
            ("NetworkInterfaceId.1", "eni-a"),
            ("NetworkInterfaceId.10", "eni-c"),
            ("Filter.1.Name", "tag:foo"),
            ("Filter.1.Value.1", "a"),
            ("Filter.1.Value.2", "b"),
            ("Filter.2.Name", "status"),
            ("Filter.2.Value.1", "available"),
            ("TagSpecification.1.ResourceType", "network-interface"),
            ("TagSpecification.1.Tag.1.Key", "k"),
            ("TagSpecification.1.Tag.1.Value", "v"),
        ]);
        assert_eq!(p.list("NetworkInterfaceId"), ["eni-a", "eni-b", "eni-c"]);
        let f = p.filters().unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].name, "tag:foo");
        assert_eq!(f[0].values, ["a", "b"]);
        assert_eq!(f[1].values, ["available"]);
        let tags = p.tag_specifications("network-interface").unwrap();
        assert_eq!(tags.get("k").map(String::as_str), Some("v"));
        assert_eq!(p.tag_specifications("instance").unwrap_err().code, "InvalidParameterValue");
    }

    #[test]
    fn scalars() {
        let p = Params::from_pairs([("Count", "3"), ("Bad", "x"), ("Flag", "true")]);
        assert_eq!(p.uint("Count").unwrap(), Some(3));
        assert_eq!(p.uint("Nope").unwrap(), None);
        assert_eq!(p.uint("Bad").unwrap_err().code, "InvalidParameterValue");
        assert_eq!(p.bool("Flag").unwrap(), Some(true));
        assert_eq!(p.require("Nope").unwrap_err().code, "MissingParameter");
    }
}
