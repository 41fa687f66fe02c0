//! The AWS VPC CNI's SNAT for traffic leaving the VPC (facts eks.md §1.10; aws/amazon-vpc-cni-k8s
//! pkg/networkutils/network.go `buildIptablesSNATRules`): `-o` with `!` and `+`, `addrtype !
//! --dst-type LOCAL`, `-j SNAT`, and how the chain lives next to kube-proxy's rules.

use super::*;
use crate::iptables::compiled::iface_matches;

/// What ipamd leaves in the nat table of a node whose primary ENI has 10.0.0.4, in a VPC of
/// 10.0.0.0/8 and 100.64.0.0/16 with `AWS_VPC_K8S_CNI_EXCLUDE_SNAT_CIDRS=172.16.0.0/12`
/// (CIDR rules inserted at the top one by one, so in reverse; the SNAT rule appended).
const AWS: &str = r#"*nat
:AWS-SNAT-CHAIN-0 - [0:0]
-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0
-A AWS-SNAT-CHAIN-0 -d 172.16.0.0/12 -m comment --comment "AWS SNAT CHAIN EXCLUSION" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 100.64.0.0/16 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 -d 10.0.0.0/8 -m comment --comment "AWS SNAT CHAIN" -j RETURN
-A AWS-SNAT-CHAIN-0 ! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.4 --random-fully
COMMIT
"#;

const PRIMARY: &str = "10.0.0.4";

fn aws() -> Tables {
    let mut t = Tables::new();
    t.restore(AWS, true).unwrap();
    t
}

/// The node's own addresses: its primary ENI's address and a local bridge's.
fn node_env() -> Env {
    let mut env = Env::new(&[0.1, 0.1]);
    env.local = vec![PRIMARY.parse().unwrap(), "203.0.113.7".parse().unwrap()];
    env
}

fn snat_of(t: &Tables, src: &str, dst: &str, origin: Origin, env: &mut Env) -> Option<IpAddr> {
    t.evaluate(pkt(src, dst), origin, env).snat
}

#[test]
fn aws_snat_rules_round_trip() {
    let t = aws();
    let saved = t.save();
    for line in AWS.lines().filter(|l| l.starts_with("-A ")) {
        assert!(saved.contains(&format!("{line}\n")), "missing {line}\n{saved}");
    }
    let mut again = Tables::new();
    again.restore(&saved, false).unwrap();
    assert_eq!(again.save(), saved);

    let r = parse_rule(
        r#"! -o vlan+ -m comment --comment "AWS, SNAT" -m addrtype ! --dst-type LOCAL -j SNAT --to-source 10.0.0.4 --random-fully"#,
    )
    .unwrap();
    assert_eq!(r.matches.out_interface, Some((true, "vlan+".into())));
    assert_eq!(r.matches.dst_local, Some(false));
    assert_eq!(r.matches.comment.as_deref(), Some("AWS, SNAT"));
    assert_eq!(
        r.target,
        Target::Snat(Snat {
            to: PRIMARY.parse().unwrap(),
            ports: None,
            random: false,
            random_fully: true,
            persistent: false
        })
    );
    // The other options, in any order, and an IPv6 address with a port range.
    let r = parse_rule("-o eth0 -j SNAT --random --to-source [fd00::4]:1024-2047 --persistent").unwrap();
    assert_eq!(r.matches.out_interface, Some((false, "eth0".into())));
    assert_eq!(
        r.target,
        Target::Snat(Snat {
            to: "fd00::4".parse().unwrap(),
            ports: Some((1024, 2047)),
            random: true,
            random_fully: false,
            persistent: true
        })
    );
    let r = parse_rule("--out-interface eth0 -j SNAT --to-source 10.0.0.4:5000").unwrap();
    assert!(matches!(r.target, Target::Snat(Snat { ports: Some((5000, 5000)), .. })));
    assert!(matches!(parse_rule("-j SNAT --to-source fd00::4").unwrap().target, Target::Snat(_)));
    // The positive addrtype match is unchanged.
    assert_eq!(parse_rule("-m addrtype --dst-type LOCAL -j RETURN").unwrap().matches.dst_local, Some(true));
}

#[test]
fn bad_snat_rules_are_refused_in_iptables_words() {
    let err = |spec: &str| parse_rule(spec).unwrap_err().to_string();
    assert_eq!(err("-j SNAT"), "You must specify --to-source");
    assert_eq!(err("-j SNAT --random-fully"), "You must specify --to-source");
    assert_eq!(err("-j SNAT --to-source"), "option \"--to-source\" requires an argument");
    assert_eq!(err("-j SNAT --to-source node-ip"), "Bad IP address \"node-ip\"");
    assert_eq!(err("-j SNAT --to-source 10.0.0.4:0"), "invalid port/service `0' specified");
    assert_eq!(err("-j SNAT --to-source 10.0.0.4:2000-1000"), "invalid port/service `2000-1000' specified");
    assert_eq!(
        err("! -o averyveryverylongname -j RETURN"),
        "interface name `averyveryverylongname' must be shorter than IFNAMSIZ (15)"
    );
    assert_eq!(err("-o"), "option \"-o\" requires an argument");
    // A whole restore names the line.
    let e = Tables::new().restore("*nat\n-A POSTROUTING -j SNAT\nCOMMIT\n", true).unwrap_err();
    assert_eq!(e.to_string(), "iptables-restore: line 2 failed: You must specify --to-source");
}

#[test]
fn interface_names_match_exactly_or_by_prefix() {
    assert!(iface_matches("vlan+", "vlan.eth.1"));
    assert!(iface_matches("vlan+", "vlan"));
    assert!(!iface_matches("vlan+", "eth0"));
    assert!(!iface_matches("vlan+", "eni0d7763386da"));
    assert!(iface_matches("eth0", "eth0"));
    assert!(!iface_matches("eth0", "eth01"));
    assert!(iface_matches("+", "lo"));
}

#[test]
fn pod_traffic_leaving_the_vpc_is_snated_to_the_primary_ip() {
    let t = aws();
    let mut env = node_env();
    let v = t.evaluate(pkt("10.0.5.9:40000", "8.8.8.8:443"), Origin::Forwarded, &mut env);
    assert_eq!(v.snat, Some(PRIMARY.parse().unwrap()));
    assert!(!v.masquerade && !v.dnat && v.disposition == Disposition::Accept);
    // The jump is the step shown; the SNAT itself is the dataplane's hop.
    let steps: Vec<_> = v.steps().map(|s| (s.chain, s.comment)).collect();
    assert_eq!(steps, [("POSTROUTING", Some("AWS SNAT CHAIN"))]);
    // A pod on a secondary ENI, and the node itself, the same.
    assert_eq!(snat_of(&t, "100.64.3.3:1000", "1.1.1.1:53", Origin::Forwarded, &mut env), v.snat);
    assert_eq!(snat_of(&t, "10.0.0.4:1000", "1.1.1.1:53", Origin::Local, &mut env), v.snat);
}

#[test]
fn vpc_excluded_and_local_destinations_keep_their_source() {
    let t = aws();
    let mut env = node_env();
    for dst in ["10.1.2.3:80", "10.0.0.4:10250", "100.64.0.9:80", "172.20.0.1:80", "203.0.113.7:80"] {
        let v = t.evaluate(pkt("10.0.5.9:40000", dst), Origin::Forwarded, &mut env);
        assert_eq!(v.snat, None, "{dst}");
        assert_eq!(v.steps().count(), 0, "{dst}: the RETURNed jump leaves no step");
    }
}

#[test]
fn out_vlan_interfaces_are_not_snated() {
    let t = aws();
    let mut env = node_env();
    // A branch ENI's (security groups for pods) traffic leaves by its vlan device.
    env.ifaces = vec![("8.8.8.8".parse().unwrap(), "vlan.eth.1"), ("8.8.4.4".parse().unwrap(), "eth1")];
    assert_eq!(snat_of(&t, "10.0.5.9:40000", "8.8.8.8:443", Origin::Forwarded, &mut env), None);
    assert_eq!(
        snat_of(&t, "10.0.5.9:40000", "8.8.4.4:443", Origin::Forwarded, &mut env),
        Some(PRIMARY.parse().unwrap())
    );
    // A positive `-o` and a port range.
    let mut t = Tables::new();
    t.restore(
        "*nat\n-A POSTROUTING -o eth1 -j SNAT --to-source 10.0.0.9:2000-2999 --persistent\nCOMMIT\n",
        true,
    )
    .unwrap();
    assert_eq!(
        snat_of(&t, "10.0.5.9:40000", "8.8.4.4:443", Origin::Forwarded, &mut env),
        Some("10.0.0.9".parse().unwrap())
    );
    assert_eq!(snat_of(&t, "10.0.5.9:40000", "8.8.8.8:443", Origin::Forwarded, &mut env), None);
}

/// An index key decides a jump without reading the rule only when the key is all the rule
/// matches: a `-o` on an indexed rule is still checked.
#[test]
fn indexed_rules_with_an_interface_are_read() {
    let mut text = String::from("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-SVC-X - [0:0]\n");
    for i in 0..20u32 {
        let o = if i == 7 { "! -o eth0 " } else { "" };
        text.push_str(&format!(
            "-A KUBE-SERVICES -m tcp -p tcp -d 10.96.0.{i} --dport 80 {o}-j KUBE-SVC-X\n"
        ));
    }
    text.push_str("-A KUBE-SVC-X -m tcp -p tcp -j DNAT --to-destination 10.244.0.1:80\nCOMMIT\n");
    let mut t = Tables::new();
    t.restore(&text, true).unwrap();
    t.ensure(ENSURE[0]).unwrap();
    assert!(t.chain(TableName::Nat, "KUBE-SERVICES").unwrap().index.is_some());
    for i in [6u32, 7, 8] {
        let p = pkt("10.244.1.1:1000", &format!("10.96.0.{i}:80"));
        let v = t.evaluate(p, Origin::Forwarded, &mut Env::new(&[]));
        let mut l = t.clone();
        l.nat.get_mut("KUBE-SERVICES").unwrap().index = None;
        assert_eq!(v, l.evaluate(p, Origin::Forwarded, &mut Env::new(&[])), "10.96.0.{i}");
        assert_eq!(v.dnat, i != 7, "10.96.0.{i}");
    }
}

/// kube-proxy's restores (`--noflush`, its chains only) and its `EnsureRule` jumps leave the
/// AWS chain and its POSTROUTING jump alone, in either order; kube-proxy's jump goes first
/// (`iptables -I`), so its MASQUERADE of marked Service traffic wins and everything else falls
/// through to AWS-SNAT-CHAIN-0.
#[test]
fn kube_proxy_restores_keep_the_aws_snat_chain() {
    let mut aws_first = aws();
    aws_first.restore(UPSTREAM, true).unwrap();
    for e in ENSURE {
        aws_first.ensure(e).unwrap();
    }
    let mut proxy_first = tables();
    proxy_first.restore(AWS, true).unwrap();
    for t in [&mut aws_first, &mut proxy_first] {
        // A later full sync and a partial one.
        t.restore(UPSTREAM, true).unwrap();
        t.restore("*nat\n:KUBE-SERVICES - [0:0]\n:KUBE-POSTROUTING - [0:0]\n-A KUBE-SERVICES -m comment --comment \"ns4/svc4:p80 cluster IP\" -m tcp -p tcp -d 172.30.0.44 --dport 80 -j KUBE-SVC-4SW47YFZTEDKD3PK\n-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n-A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE\nCOMMIT\n", true).unwrap();
        for e in ENSURE {
            assert!(!t.ensure(e).unwrap());
        }
        let saved = t.save();
        for line in AWS.lines().filter(|l| l.starts_with("-A ")) {
            assert!(saved.contains(&format!("{line}\n")), "missing {line}\n{saved}");
        }
        let post: Vec<&str> = saved.lines().filter(|l| l.starts_with("-A POSTROUTING ")).collect();
        assert_eq!(
            post,
            [
                r#"-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING"#,
                r#"-A POSTROUTING -m comment --comment "AWS SNAT CHAIN" -j AWS-SNAT-CHAIN-0"#,
            ],
            "{saved}"
        );
        assert_eq!(t.chain(TableName::Nat, "AWS-SNAT-CHAIN-0").unwrap().rules.len(), 4);

        let mut env = node_env();
        // Pod to the internet: SNAT to the primary address.
        assert_eq!(
            snat_of(t, "10.0.5.9:40000", "8.8.8.8:443", Origin::Forwarded, &mut env),
            Some(PRIMARY.parse().unwrap())
        );
        // Off-cluster client to a ClusterIP: kube-proxy's MASQUERADE, not the AWS SNAT.
        let v = t.evaluate(pkt("192.168.0.9:40000", "172.30.0.44:80"), Origin::Forwarded, &mut env);
        assert!(v.dnat && v.masquerade && v.snat.is_none(), "{v:?}");
        // Pod to a ClusterIP whose endpoint is in the VPC: neither.
        let v = t.evaluate(pkt("10.0.5.9:40000", "172.30.0.44:80"), Origin::Forwarded, &mut env);
        assert!(v.dnat && !v.masquerade && v.snat.is_none(), "{v:?}");
    }
}
