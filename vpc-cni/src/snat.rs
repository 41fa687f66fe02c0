//! The nat rules ipamd installs so that pod traffic leaving the VPC is SNATed to the primary
//! ENI's primary address (aws/amazon-vpc-cni-k8s pkg/networkutils/network.go
//! `buildIptablesSNATRules`; facts eks.md §1.10), as `iptables-restore --noflush` input.
//!
//! Why: a VPC delivers a pod's own (secondary) address only inside the VPC; the internet
//! gateway translates only an instance's primary addresses. So with
//! `AWS_VPC_K8S_CNI_EXTERNALSNAT=false` (the default) every node rewrites the source of traffic
//! to destinations outside the VPC CIDRs (and outside `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS`) to
//! its primary address; with `true` a NAT gateway does it and ipamd installs nothing.
//!
//! The rules are upstream's texts in the order upstream's calls leave them on a fresh node: each
//! CIDR's RETURN is inserted at the top of `AWS-SNAT-CHAIN-0` (`ipt.Insert(..., 1, ...)`), so
//! they end up in reverse (exclusions first), then the SNAT rule, appended. The POSTROUTING jump
//! is appended as well (upstream `ipt.Append`), so kube-proxy's own jump, which it inserts at
//! the top, stays in front of it whichever of the two comes first.
//!
//! Not here: the connmark rules (`AWS-CONNMARK-CHAIN-0`, nat PREROUTING `-i eni+ ... -j
//! CONNMARK`, and the mangle table's `--restore-mark`) with their `ip rule fwmark 0x80/0x80
//! lookup main`: they steer the replies of secondary-ENI pods' connections out of the primary
//! ENI, and the lab has one interface and no policy routing for them to change.
//!
//! Text only, so the node-agent's kernel model (or a test) applies it; one application per
//! node, as ipamd's `Exists`-then-`Append` adds the POSTROUTING jump once.

use std::{fmt::Write as _, net::Ipv4Addr};

use ipnet::Ipv4Net;

use crate::{InstanceInfo, knobs::Knobs, knobs::RandomizeSnat};

/// The chain ipamd puts its SNAT rules in.
pub const SNAT_CHAIN: &str = "AWS-SNAT-CHAIN-0";

/// The POSTROUTING jump's rule spec, as `-A POSTROUTING ` + this in [`snat_rules`]'s text.
pub const JUMP_SPEC: &str = "-m comment --comment \"AWS SNAT CHAIN\" -j AWS-SNAT-CHAIN-0";

/// `rules` ([`snat_rules`]'s text) without the POSTROUTING jump, for a node that has it already:
/// ipamd checks with `Exists` before it appends, so setting up again (an aws-node restart)
/// does not add a second jump, while the declared chain is rewritten whole.
pub fn without_jump(rules: &str) -> String {
    rules.replace(&format!("-A POSTROUTING {JUMP_SPEC}\n"), "")
}

/// `defaultRouteCIDR`: an exclusion of everything, written without `-d` (the kernel drops a
/// `-d 0.0.0.0/0`).
const DEFAULT_ROUTE: Ipv4Net = Ipv4Net::new_assert(Ipv4Addr::UNSPECIFIED, 0);

/// The restore input for a node whose primary ENI's primary address is `primary_ip`, in a VPC
/// of `vpc_cidrs`; None when `external_snat` (`AWS_VPC_K8S_CNI_EXTERNALSNAT=true`: no rules).
///
/// ```text
/// *nat
/// :AWS-SNAT-CHAIN-0 - [0:0]
/// -A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
/// -A AWS-SNAT-CHAIN-0 -d 172.16.0.0/12 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
/// -A AWS-SNAT-CHAIN-0 -d 192.168.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
/// -A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 192.168.0.4 --random-fully
/// COMMIT
/// ```
pub fn snat_rules(
    vpc_cidrs: &[Ipv4Net],
    exclude_snat_cidrs: &[Ipv4Net],
    primary_ip: Ipv4Addr,
    randomize: RandomizeSnat,
    external_snat: bool,
) -> Option<String> {
    if external_snat {
        return None;
    }
    // In upstream's call order; a rule already there is not inserted again.
    let mut returns: Vec<String> = Vec::new();
    let cidrs = vpc_cidrs.iter().map(|c| (c, false)).chain(exclude_snat_cidrs.iter().map(|c| (c, true)));
    for (cidr, exclusion) in cidrs {
        let comment = if exclusion { "AWS SNAT CHAIN EXCLUSION" } else { "AWS SNAT CHAIN" };
        let rule = if exclusion && *cidr == DEFAULT_ROUTE {
            format!("-m comment --comment \"{comment}\" -j RETURN")
        } else {
            format!("-d {cidr} -m comment --comment \"{comment}\" -j RETURN")
        };
        if !returns.contains(&rule) {
            returns.push(rule);
        }
    }
    let random = match randomize {
        RandomizeSnat::Prng => " --random-fully",
        RandomizeSnat::HashRandom => " --random",
        RandomizeSnat::None => "",
    };
    let mut out = format!("*nat\n:{SNAT_CHAIN} - [0:0]\n");
    let _ = writeln!(out, "-A POSTROUTING {JUMP_SPEC}");
    for rule in returns.iter().rev() {
        let _ = writeln!(out, "-A {SNAT_CHAIN} {rule}");
    }
    let _ = writeln!(
        out,
        "-A {SNAT_CHAIN} ! -o vlan+ -m comment --comment \"AWS, SNAT\" -m addrtype ! --dst-type LOCAL -j SNAT --to-source {primary_ip}{random}"
    );
    out.push_str("COMMIT\n");
    Some(out)
}

/// [`snat_rules`] for `instance` (its VPC CIDRs and primary address) with aws-node's `knobs`.
pub fn for_instance(instance: &InstanceInfo, knobs: &Knobs) -> Option<String> {
    snat_rules(
        &instance.vpc_cidrs,
        &knobs.exclude_snat_cidrs,
        instance.primary_ip,
        knobs.randomize_snat,
        knobs.external_snat,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(s: &[&str]) -> Vec<Ipv4Net> {
        s.iter().map(|n| n.parse().unwrap()).collect()
    }

    const PRIMARY: Ipv4Addr = Ipv4Addr::new(10, 10, 10, 20);

    /// Upstream's `TestSetupHostNetworkWithExcludeSNATCIDRs` expectation, as iptables-save
    /// writes it.
    #[test]
    fn rules_are_upstreams_in_upstreams_order() {
        let text = snat_rules(
            &nets(&["10.10.0.0/16", "10.11.0.0/16"]),
            &nets(&["10.12.0.0/16", "10.13.0.0/16"]),
            PRIMARY,
            RandomizeSnat::None,
            false,
        )
        .unwrap();
        assert_eq!(
            text,
            r#"*nat
:AWS-SNAT-CHAIN-0 - [0:0]
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-SNAT-CHAIN-0 -d 10.13.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 10.12.0.0/16 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 10.11.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 10.10.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.10.10.20
COMMIT
"#
        );
    }

    #[test]
    fn a_second_setup_leaves_out_the_jump() {
        let text = snat_rules(&nets(&["10.10.0.0/16"]), &[], PRIMARY, RandomizeSnat::Prng, false).unwrap();
        assert!(text.contains(&format!("\n-A POSTROUTING {JUMP_SPEC}\n")));
        let again = without_jump(&text);
        assert!(!again.contains("-A POSTROUTING"), "{again}");
        assert_eq!(again.lines().count(), text.lines().count() - 1);
    }

    #[test]
    fn randomize_snat_picks_the_flag() {
        let last = |r| {
            let text = snat_rules(&nets(&["10.10.0.0/16"]), &[], PRIMARY, r, false).unwrap();
            text.lines().rev().nth(1).unwrap().to_string()
        };
        assert!(last(RandomizeSnat::Prng).ends_with("--to-source 10.10.10.20 --random-fully"));
        assert!(last(RandomizeSnat::HashRandom).ends_with("--to-source 10.10.10.20 --random"));
        assert!(last(RandomizeSnat::None).ends_with("--to-source 10.10.10.20"));
    }

    #[test]
    fn external_snat_installs_nothing() {
        assert_eq!(snat_rules(&nets(&["10.10.0.0/16"]), &[], PRIMARY, RandomizeSnat::Prng, true), None);
        let knobs = Knobs { external_snat: true, ..Knobs::default() };
        let instance = InstanceInfo {
            instance_id: "i-0123456789abcdef0".into(),
            instance_type: "t3.medium".into(),
            availability_zone: "us-east-1a".into(),
            primary_mac: "02:00:00:00:00:01".into(),
            primary_eni: "eni-0123456789abcdef0".into(),
            primary_ip: PRIMARY,
            subnet_id: "subnet-0123456789abcdef0".into(),
            subnet_cidr: "10.10.10.0/24".parse().unwrap(),
            vpc_cidrs: nets(&["10.10.0.0/16"]),
            security_groups: vec![],
        };
        assert_eq!(for_instance(&instance, &knobs), None);
        let text = for_instance(&instance, &Knobs::default()).unwrap();
        assert!(
            text.contains("-d 10.10.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN\n"),
            "{text}"
        );
        assert!(text.contains("--to-source 10.10.10.20 --random-fully\n"), "{text}");
    }

    /// An exclusion of 0.0.0.0/0 is written without `-d` (upstream: "Kernel will strip -d");
    /// a CIDR given twice is one rule.
    #[test]
    fn default_route_exclusion_and_duplicates() {
        let text = snat_rules(
            &nets(&["10.10.0.0/16", "10.10.0.0/16"]),
            &nets(&["0.0.0.0/0"]),
            PRIMARY,
            RandomizeSnat::Prng,
            false,
        )
        .unwrap();
        let chain: Vec<&str> = text.lines().filter(|l| l.starts_with("-A AWS-SNAT-CHAIN-0 ")).collect();
        assert_eq!(
            chain[..2],
            [
                "-A AWS-SNAT-CHAIN-0 -m comment --comment \"AWS SNAT CHAIN EXCLUSION\" -j RETURN",
                "-A AWS-SNAT-CHAIN-0 -d 10.10.0.0/16 -m comment --comment \"AWS SNAT CHAIN\" -j RETURN",
            ]
        );
        assert_eq!(chain.len(), 3);
    }
}
