//! ipamd's environment knobs (aws-node's `env:`), parsed once at start.
//!
//! Why a module of its own: the knobs interact (`WARM_IP_TARGET` overrides `WARM_ENI_TARGET` and
//! `WARM_PREFIX_TARGET`, `MINIMUM_IP_TARGET` alone means "no warm target", `MAX_ENI` only ever
//! lowers the instance limit), and the pool arithmetic in [`crate::pool`] should see the
//! resolved values only. Names and defaults are upstream's (pkg/ipamd/ipamd.go,
//! pkg/networkutils/network.go, cmd/aws-vpc-cni/main.go; facts §1.4).
//!
//! One deliberate difference: upstream silently falls back to the default when an integer knob
//! does not parse (`getWarmENITarget` and friends); the lab refuses it with a [`KnobError`] that
//! names the variable, so a typo in a lab's compose file is seen at once instead of as a
//! mysteriously sized pool. The veth-prefix rules and their texts are upstream's
//! (cmd/aws-vpc-cni/main.go `validateEnvVars`).

use std::time::Duration;

use ipnet::Ipv4Net;

/// `WARM_ENI_TARGET`.
pub const ENV_WARM_ENI_TARGET: &str = "WARM_ENI_TARGET";
/// `WARM_IP_TARGET`.
pub const ENV_WARM_IP_TARGET: &str = "WARM_IP_TARGET";
/// `MINIMUM_IP_TARGET`.
pub const ENV_MINIMUM_IP_TARGET: &str = "MINIMUM_IP_TARGET";
/// `MAX_ENI`.
pub const ENV_MAX_ENI: &str = "MAX_ENI";
/// `ENABLE_PREFIX_DELEGATION`.
pub const ENV_ENABLE_PREFIX_DELEGATION: &str = "ENABLE_PREFIX_DELEGATION";
/// `WARM_PREFIX_TARGET`.
pub const ENV_WARM_PREFIX_TARGET: &str = "WARM_PREFIX_TARGET";
/// `IP_COOLDOWN_PERIOD` (seconds).
pub const ENV_IP_COOLDOWN_PERIOD: &str = "IP_COOLDOWN_PERIOD";
/// `AWS_VPC_K8S_CNI_EXTERNALSNAT`.
pub const ENV_EXTERNAL_SNAT: &str = "AWS_VPC_K8S_CNI_EXTERNALSNAT";
/// `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`.
pub const ENV_EXCLUDE_SNAT_CIDRS: &str = "AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS";
/// `AWS_VPC_K8S_CNI_RANDOMIZESNAT`.
pub const ENV_RANDOMIZE_SNAT: &str = "AWS_VPC_K8S_CNI_RANDOMIZESNAT";
/// `AWS_VPC_K8S_CNI_VETHPREFIX`.
pub const ENV_VETH_PREFIX: &str = "AWS_VPC_K8S_CNI_VETHPREFIX";

/// `defaultWarmENITarget`.
pub const DEFAULT_WARM_ENI_TARGET: u32 = 1;
/// `defaultIPCooldownPeriod` (pkg/ipamd/datastore): 30 s.
pub const DEFAULT_IP_COOLDOWN: Duration = Duration::from_secs(30);
/// The default host-side veth prefix.
pub const DEFAULT_VETH_PREFIX: &str = "eni";

/// `AWS_VPC_K8S_CNI_RANDOMIZESNAT`: how the SNAT rule picks source ports
/// (pkg/networkutils/network.go `typeOfSNAT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RandomizeSnat {
    /// `prng` (the default): `--random-fully`.
    #[default]
    Prng,
    /// `hashrandom`: `--random`.
    HashRandom,
    /// `none`: no flag.
    None,
}

/// A knob whose value ipamd cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {name}={value:?}: {allowed}")]
pub struct KnobError {
    /// The environment variable.
    pub name: &'static str,
    /// Its value as given.
    pub value: String,
    /// What is allowed (or, for the veth prefix, upstream's own complaint).
    pub allowed: String,
}

/// The resolved knobs. `Default` is what aws-node does with none of them set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Knobs {
    /// `WARM_ENI_TARGET`: whole free ENIs' worth of addresses to keep (ignored when
    /// `WARM_IP_TARGET` or `MINIMUM_IP_TARGET` is set, see [`Knobs::warm_ip_mode`]).
    pub warm_eni_target: u32,
    /// `WARM_IP_TARGET`: free addresses to keep; 0 = unset.
    pub warm_ip_target: u32,
    /// `MINIMUM_IP_TARGET`: floor on total addresses; 0 = unset.
    pub minimum_ip_target: u32,
    /// `MAX_ENI`: cap on ENIs (`None` = the instance type's limit; values < 1 are ignored as
    /// upstream ignores them).
    pub max_eni: Option<u32>,
    /// `ENABLE_PREFIX_DELEGATION`: /28 prefixes instead of secondary addresses.
    pub enable_prefix_delegation: bool,
    /// `WARM_PREFIX_TARGET`: free /28s to keep in PD mode (code default 0).
    pub warm_prefix_target: u32,
    /// `IP_COOLDOWN_PERIOD`: a released address is not handed out again before this.
    pub ip_cooldown_period: Duration,
    /// `AWS_VPC_K8S_CNI_EXTERNALSNAT`: passed to the plugin as `UseExternalSNAT`.
    pub external_snat: bool,
    /// `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`: extra destinations not SNATed.
    pub exclude_snat_cidrs: Vec<Ipv4Net>,
    /// `AWS_VPC_K8S_CNI_VETHPREFIX`: host veth name prefix (≤ 4 chars, not eth/vlan/lo).
    pub veth_prefix: String,
    /// `AWS_VPC_K8S_CNI_RANDOMIZESNAT`: the SNAT rule's port randomisation.
    pub randomize_snat: RandomizeSnat,
}

// === impl Knobs ===

impl Default for Knobs {
    fn default() -> Self {
        Self {
            warm_eni_target: DEFAULT_WARM_ENI_TARGET,
            warm_ip_target: 0,
            minimum_ip_target: 0,
            max_eni: None,
            enable_prefix_delegation: false,
            warm_prefix_target: 0,
            ip_cooldown_period: DEFAULT_IP_COOLDOWN,
            external_snat: false,
            exclude_snat_cidrs: Vec::new(),
            veth_prefix: DEFAULT_VETH_PREFIX.into(),
            randomize_snat: RandomizeSnat::default(),
        }
    }
}

impl Knobs {
    /// Reads the knobs through `get` (e.g. `|k| std::env::var(k).ok()`, or a pod spec's env).
    /// An unset or empty variable takes the default.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Knobs, KnobError> {
        let get = |name: &str| get(name).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let mut k = Knobs::default();
        if let Some(v) = get(ENV_WARM_ENI_TARGET) {
            k.warm_eni_target = parse_uint(ENV_WARM_ENI_TARGET, &v)?;
        }
        if let Some(v) = get(ENV_WARM_IP_TARGET) {
            k.warm_ip_target = parse_uint(ENV_WARM_IP_TARGET, &v)?;
        }
        if let Some(v) = get(ENV_MINIMUM_IP_TARGET) {
            k.minimum_ip_target = parse_uint(ENV_MINIMUM_IP_TARGET, &v)?;
        }
        if let Some(v) = get(ENV_MAX_ENI) {
            let n: i64 = v.parse().map_err(|_| KnobError {
                name: ENV_MAX_ENI,
                value: v.clone(),
                allowed: "an integer (values below 1 mean the instance type's limit)".into(),
            })?;
            // getMaxENI: "If the value of the environment variable is 0 or less, it will be ignored".
            k.max_eni = u32::try_from(n).ok().filter(|n| *n >= 1);
        }
        if let Some(v) = get(ENV_ENABLE_PREFIX_DELEGATION) {
            k.enable_prefix_delegation = parse_bool(ENV_ENABLE_PREFIX_DELEGATION, &v)?;
        }
        if let Some(v) = get(ENV_WARM_PREFIX_TARGET) {
            k.warm_prefix_target = parse_uint(ENV_WARM_PREFIX_TARGET, &v)?;
        }
        if let Some(v) = get(ENV_IP_COOLDOWN_PERIOD) {
            k.ip_cooldown_period = Duration::from_secs(u64::from(parse_uint(ENV_IP_COOLDOWN_PERIOD, &v)?));
        }
        if let Some(v) = get(ENV_EXTERNAL_SNAT) {
            k.external_snat = parse_bool(ENV_EXTERNAL_SNAT, &v)?;
        }
        if let Some(v) = get(ENV_EXCLUDE_SNAT_CIDRS) {
            k.exclude_snat_cidrs = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<Ipv4Net>().map_err(|_| KnobError {
                        name: ENV_EXCLUDE_SNAT_CIDRS,
                        value: v.clone(),
                        allowed: format!("a comma-separated list of IPv4 CIDRs ({s:?} is not one)"),
                    })
                })
                .collect::<Result<_, _>>()?;
        }
        if let Some(v) = get(ENV_RANDOMIZE_SNAT) {
            // Upstream logs "Failed to parse ..." and takes prng; refused here like the others.
            k.randomize_snat = match v.as_str() {
                "prng" => RandomizeSnat::Prng,
                "hashrandom" => RandomizeSnat::HashRandom,
                "none" => RandomizeSnat::None,
                _ => {
                    return Err(KnobError {
                        name: ENV_RANDOMIZE_SNAT,
                        value: v,
                        allowed: "prng, hashrandom or none".into(),
                    });
                }
            };
        }
        if let Some(v) = get(ENV_VETH_PREFIX) {
            if v.chars().count() > 4 {
                return Err(KnobError {
                    name: ENV_VETH_PREFIX,
                    value: v,
                    allowed: "AWS_VPC_K8S_CNI_VETHPREFIX cannot be longer than 4 characters".into(),
                });
            }
            if matches!(v.as_str(), "eth" | "vlan" | "lo") {
                return Err(KnobError {
                    name: ENV_VETH_PREFIX,
                    value: v,
                    allowed:
                        "AWS_VPC_K8S_CNI_VETHPREFIX cannot be set to reserved values 'eth', 'vlan', or 'lo'"
                            .into(),
                });
            }
            k.veth_prefix = v;
        }
        Ok(k)
    }

    /// Whether the pool follows `WARM_IP_TARGET`/`MINIMUM_IP_TARGET` (upstream
    /// `warmIPTargetsDefined`... in effect: either one set makes `WARM_ENI_TARGET` and
    /// `WARM_PREFIX_TARGET` ignored).
    pub fn warm_ip_mode(&self) -> bool {
        self.warm_ip_target > 0 || self.minimum_ip_target > 0
    }

    /// The ENI cap on an instance whose type allows `instance_max` ENIs.
    pub fn max_enis(&self, instance_max: u32) -> u32 {
        self.max_eni.map_or(instance_max, |m| m.min(instance_max))
    }
}

fn parse_uint(name: &'static str, v: &str) -> Result<u32, KnobError> {
    v.parse::<u32>().map_err(|_| KnobError {
        name,
        value: v.into(),
        allowed: "a non-negative integer".into(),
    })
}

/// Go's `strconv.ParseBool` spellings, as upstream's `parseBoolEnvVar` accepts.
fn parse_bool(name: &'static str, v: &str) -> Result<bool, KnobError> {
    match v {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(KnobError { name, value: v.into(), allowed: "true or false".into() }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn knobs(pairs: &[(&str, &str)]) -> Result<Knobs, KnobError> {
        let env: HashMap<String, String> =
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Knobs::from_env(|k| env.get(k).cloned())
    }

    #[test]
    fn defaults_are_upstreams() {
        let k = knobs(&[]).unwrap();
        assert_eq!(k, Knobs::default());
        assert_eq!(k.warm_eni_target, 1);
        assert_eq!(k.ip_cooldown_period, Duration::from_secs(30));
        assert_eq!(k.veth_prefix, "eni");
        assert!(!k.warm_ip_mode());
    }

    #[test]
    fn values_parse() {
        let k = knobs(&[
            ("WARM_IP_TARGET", "2"),
            ("MINIMUM_IP_TARGET", "5"),
            ("MAX_ENI", "2"),
            ("ENABLE_PREFIX_DELEGATION", "true"),
            ("WARM_PREFIX_TARGET", "1"),
            ("IP_COOLDOWN_PERIOD", "10"),
            ("AWS_VPC_K8S_CNI_EXTERNALSNAT", "true"),
            ("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "10.0.0.0/8, 172.16.0.0/12"),
            ("AWS_VPC_K8S_CNI_VETHPREFIX", "cali"),
            ("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "hashrandom"),
        ])
        .unwrap();
        assert_eq!(k.randomize_snat, RandomizeSnat::HashRandom);
        assert_eq!((k.warm_ip_target, k.minimum_ip_target, k.max_eni), (2, 5, Some(2)));
        assert!(k.enable_prefix_delegation && k.external_snat && k.warm_ip_mode());
        assert_eq!(k.ip_cooldown_period, Duration::from_secs(10));
        assert_eq!(k.exclude_snat_cidrs.len(), 2);
        assert_eq!(k.veth_prefix, "cali");
        assert_eq!(k.max_enis(3), 2);
        assert_eq!(k.max_enis(1), 1);
    }

    #[test]
    fn max_eni_below_one_means_the_instance_limit() {
        assert_eq!(knobs(&[("MAX_ENI", "-1")]).unwrap().max_eni, None);
        assert_eq!(knobs(&[("MAX_ENI", "0")]).unwrap().max_enis(4), 4);
    }

    #[test]
    fn bad_values_name_the_variable_the_value_and_what_is_allowed() {
        let e = knobs(&[("WARM_IP_TARGET", "two")]).unwrap_err();
        assert_eq!(e.name, "WARM_IP_TARGET");
        assert_eq!(e.to_string(), "invalid WARM_IP_TARGET=\"two\": a non-negative integer");
        let e = knobs(&[("WARM_ENI_TARGET", "-1")]).unwrap_err();
        assert_eq!(e.name, "WARM_ENI_TARGET");
        let e = knobs(&[("ENABLE_PREFIX_DELEGATION", "yes")]).unwrap_err();
        assert_eq!(e.to_string(), "invalid ENABLE_PREFIX_DELEGATION=\"yes\": true or false");
        let e = knobs(&[("AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS", "10.0.0.0/8,nope")]).unwrap_err();
        assert!(e.allowed.contains("\"nope\""), "{e}");
        let e = knobs(&[("AWS_VPC_K8S_CNI_VETHPREFIX", "veths")]).unwrap_err();
        assert!(e.to_string().ends_with("cannot be longer than 4 characters"), "{e}");
        let e = knobs(&[("AWS_VPC_K8S_CNI_VETHPREFIX", "eth")]).unwrap_err();
        assert!(e.allowed.contains("reserved values"), "{e}");
        let e = knobs(&[("MAX_ENI", "x")]).unwrap_err();
        assert_eq!(e.name, "MAX_ENI");
        let e = knobs(&[("AWS_VPC_K8S_CNI_RANDOMIZESNAT", "random")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid AWS_VPC_K8S_CNI_RANDOMIZESNAT=\"random\": prng, hashrandom or none"
        );
    }
}
