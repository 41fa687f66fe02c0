//! Tests of the Query actions: XML shapes, limits and every error path.

use quick_xml::Reader;
use quick_xml::events::Event;

use super::*;
use crate::model::{Ec2Config, SubnetSpec, Tags};

/// The text of every element called `name`, in document order.
fn texts(xml: &str, name: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut out = Vec::new();
    let mut inside = false;
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) if e.name().as_ref() == name => {
                inside = true;
                out.push(String::new());
            }
            Event::Text(t) if inside => out.last_mut().unwrap().push_str(&t),
            Event::GeneralRef(r) if inside => {
                let c = match &*r.into_inner() {
                    "lt" => '<',
                    "gt" => '>',
                    "amp" => '&',
                    "apos" => '\'',
                    "quot" => '"',
                    other => panic!("unexpected entity {other}"),
                };
                out.last_mut().unwrap().push(c);
            }
            Event::End(e) if e.name().as_ref() == name => inside = false,
            Event::Eof => break,
            _ => {}
        }
    }
    out
}

fn one(xml: &str, name: &str) -> String {
    texts(xml, name).into_iter().next().unwrap_or_else(|| panic!("no <{name}> in {xml}"))
}

fn p(pairs: &[(&str, &str)]) -> Params {
    Params::from_pairs(pairs.iter().copied())
}

fn lab() -> Ec2 {
    Ec2::new(&Ec2Config::default()).unwrap()
}

/// A lab with one tiny /28 subnet in us-east-1a (11 usable addresses).
fn tiny() -> Ec2 {
    Ec2::new(&Ec2Config {
        subnets: vec![SubnetSpec {
            availability_zone: "us-east-1a".into(),
            cidr: "192.168.0.0/28".parse().unwrap(),
            tags: Tags::new(),
        }],
        ..Ec2Config::default()
    })
    .unwrap()
}

fn node(ec2: &mut Ec2, ty: &str) -> String {
    ec2.launch_instance(ty, "us-east-1a", Tags::new()).unwrap().id.clone()
}

fn call(ec2: &mut Ec2, action: &str, pairs: &[(&str, &str)]) -> Result<String> {
    ec2.handle(action, &p(pairs), "req-1")
}

/// The us-east-1a subnet, where `node` launches.
fn subnet_a(ec2: &Ec2) -> &Subnet {
    ec2.subnets.values().find(|s| s.availability_zone == "us-east-1a").unwrap()
}

fn create_eni(ec2: &mut Ec2, extra: &[(&str, &str)]) -> Result<String> {
    let subnet = subnet_a(ec2).id.clone();
    let mut pairs = vec![("SubnetId", subnet.as_str())];
    pairs.extend_from_slice(extra);
    let xml = call(ec2, "CreateNetworkInterface", &pairs)?;
    Ok(one(&xml, "networkInterfaceId"))
}

#[test]
fn ids_and_launch() {
    let mut ec2 = lab();
    let id = node(&mut ec2, "t3.medium");
    assert!(id.starts_with("i-") && id.len() == 2 + 17, "{id}");
    let i = ec2.instance(&id).unwrap().clone();
    assert_eq!(i.private_ip.to_string(), "192.168.0.4");
    let eni = ec2.eni(&i.primary_eni).unwrap();
    assert_eq!(eni.id.len(), 4 + 17);
    assert!(eni.mac.starts_with("02:"));
    assert_eq!(eni.attachment.as_ref().unwrap().device_index, 0);
    assert!(eni.attachment.as_ref().unwrap().id.starts_with("eni-attach-"));
    assert_eq!(ec2.instance_by_ip(i.private_ip).unwrap().id, id);
    // Deterministic: the same config gives the same ids.
    let mut again = lab();
    assert_eq!(node(&mut again, "t3.medium"), id);
    // Unknown type, unknown AZ.
    assert!(ec2.launch_instance("x9.huge", "us-east-1a", Tags::new()).is_err());
    assert!(ec2.launch_instance("t3.small", "us-west-2a", Tags::new()).is_err());
}

#[test]
fn iam_names() {
    assert_eq!(Action::AssignPrivateIpAddresses.iam_action(), "ec2:AssignPrivateIpAddresses");
    assert_eq!(Action::from_name("CreateTags"), Some(Action::CreateTags));
    assert!(Action::DescribeVpcs.is_read_only());
    assert!(!Action::CreateTags.is_read_only());
    let err = call(&mut lab(), "RunInstances", &[]).unwrap_err();
    assert_eq!(err.code, "InvalidAction");
}

#[test]
fn describe_network_interfaces_shape_and_filters() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium");
    let xml = call(
        &mut ec2,
        "DescribeNetworkInterfaces",
        &[("Filter.1.Name", "attachment.instance-id"), ("Filter.1.Value.1", &i)],
    )
    .unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    assert!(xml.contains(
        "<DescribeNetworkInterfacesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId><networkInterfaceSet><item>"
    ));
    assert_eq!(one(&xml, "status"), "in-use");
    assert_eq!(one(&xml, "instanceId"), i);
    assert_eq!(one(&xml, "deviceIndex"), "0");
    assert_eq!(one(&xml, "primary"), "true");
    assert_eq!(one(&xml, "availabilityZone"), "us-east-1a");
    // Filters that match nothing, tag filters, wildcards, unknown filters.
    let none = call(
        &mut ec2,
        "DescribeNetworkInterfaces",
        &[("Filter.1.Name", "status"), ("Filter.1.Value.1", "available")],
    )
    .unwrap();
    assert!(texts(&none, "networkInterfaceId").is_empty());
    let eni = create_eni(
        &mut ec2,
        &[
            ("Description", "aws-K8S-<i>&"),
            ("TagSpecification.1.ResourceType", "network-interface"),
            ("TagSpecification.1.Tag.1.Key", "node.k8s.amazonaws.com/instance_id"),
            ("TagSpecification.1.Tag.1.Value", &i),
        ],
    )
    .unwrap();
    let tagged = call(
        &mut ec2,
        "DescribeNetworkInterfaces",
        &[
            ("Filter.1.Name", "tag-key"),
            ("Filter.1.Value.1", "node.k8s.amazonaws.com/*"),
            ("Filter.2.Name", "status"),
            ("Filter.2.Value.1", "available"),
        ],
    )
    .unwrap();
    assert_eq!(texts(&tagged, "networkInterfaceId"), [eni.as_str()]);
    // The description was escaped on the way out and reads back intact.
    assert_eq!(one(&tagged, "description"), "aws-K8S-<i>&");
    assert!(tagged.contains("aws-K8S-&lt;i&gt;&amp;"));
    let err =
        call(&mut ec2, "DescribeNetworkInterfaces", &[("Filter.1.Name", "bogus"), ("Filter.1.Value.1", "x")])
            .unwrap_err();
    assert_eq!(err.message, "The filter 'bogus' is invalid");
    // By id; unknown and malformed ids.
    let by_id = call(&mut ec2, "DescribeNetworkInterfaces", &[("NetworkInterfaceId.1", &eni)]).unwrap();
    assert_eq!(texts(&by_id, "networkInterfaceId"), [eni]);
    let err =
        call(&mut ec2, "DescribeNetworkInterfaces", &[("NetworkInterfaceId.1", "eni-0123456789abcdef0")])
            .unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterfaceID.NotFound");
    assert_eq!(err.message, "The networkInterface ID 'eni-0123456789abcdef0' does not exist");
    let err = call(&mut ec2, "DescribeNetworkInterfaces", &[("NetworkInterfaceId.1", "foo")]).unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterfaceId.Malformed");
    assert_eq!(err.message, "Invalid id: \"foo\" (expecting \"eni-...\")");
}

#[test]
fn describe_instances_shape_and_filters() {
    let mut ec2 = lab();
    let mut tags = Tags::new();
    tags.insert("Name".into(), "lab-ng-1".into());
    let a = ec2.launch_instance("m5.large", "us-east-1a", tags).unwrap().id.clone();
    let b = node(&mut ec2, "t3.small");
    let xml = call(&mut ec2, "DescribeInstances", &[]).unwrap();
    assert_eq!(texts(&xml, "reservationId").len(), 2);
    let xml = call(
        &mut ec2,
        "DescribeInstances",
        &[("Filter.1.Name", "tag:Name"), ("Filter.1.Value.1", "lab-ng-1")],
    )
    .unwrap();
    assert_eq!(texts(&xml, "instanceId"), [a.as_str()]);
    assert_eq!(one(&xml, "instanceType"), "m5.large");
    assert_eq!(one(&xml, "name"), "running");
    assert_eq!(one(&xml, "code"), "16");
    assert_eq!(one(&xml, "privateDnsName"), "ip-192-168-0-4.ec2.internal");
    assert_eq!(one(&xml, "httpPutResponseHopLimit"), "1");
    let ip = ec2.instance(&b).unwrap().private_ip.to_string();
    let xml = call(
        &mut ec2,
        "DescribeInstances",
        &[
            ("Filter.1.Name", "private-ip-address"),
            ("Filter.1.Value.1", &ip),
            ("Filter.2.Name", "instance-state-name"),
            ("Filter.2.Value.1", "running"),
        ],
    )
    .unwrap();
    assert_eq!(texts(&xml, "instanceId"), [b.as_str()]);
    let xml = call(&mut ec2, "DescribeInstances", &[("InstanceId.1", &b)]).unwrap();
    assert_eq!(texts(&xml, "instanceId"), [b]);
    let err = call(&mut ec2, "DescribeInstances", &[("InstanceId.1", "i-0aaaaaaaaaaaaaaaa")]).unwrap_err();
    assert_eq!(err.code, "InvalidInstanceID.NotFound");
    assert_eq!(err.message, "The instance ID 'i-0aaaaaaaaaaaaaaaa' does not exist");
    let err = call(&mut ec2, "DescribeInstances", &[("InstanceId.1", "ma1")]).unwrap_err();
    assert_eq!(err.code, "InvalidInstanceID.Malformed");
    assert_eq!(err.message, "Invalid id: \"ma1\"");
}

#[test]
fn describe_instance_types() {
    let mut ec2 = lab();
    let xml = call(
        &mut ec2,
        "DescribeInstanceTypes",
        &[("InstanceType.1", "t3.medium"), ("InstanceType.2", "m5.large")],
    )
    .unwrap();
    assert_eq!(texts(&xml, "instanceType"), ["t3.medium", "m5.large"]);
    assert_eq!(texts(&xml, "maximumNetworkInterfaces"), ["3", "3", "3", "3"]);
    assert_eq!(texts(&xml, "ipv4AddressesPerInterface"), ["6", "10"]);
    assert_eq!(texts(&xml, "hypervisor"), ["nitro", "nitro"]);
    let err = call(&mut ec2, "DescribeInstanceTypes", &[("InstanceType.1", "i8ge.xlarge")]).unwrap_err();
    assert_eq!(err.code, "InvalidInstanceType");
    assert_eq!(err.message, "The following supplied instance types do not exist: [i8ge.xlarge]");
}

#[test]
fn describe_subnets_counts_and_vpcs() {
    let mut ec2 = tiny();
    let subnet = subnet_a(&ec2).id.clone();
    let xml = call(&mut ec2, "DescribeSubnets", &[]).unwrap();
    assert_eq!(one(&xml, "availableIpAddressCount"), "11");
    assert_eq!(one(&xml, "cidrBlock"), "192.168.0.0/28");
    node(&mut ec2, "t3.small");
    let vpc = ec2.vpc.id.clone();
    let xml = call(&mut ec2, "DescribeSubnets", &[("Filter.1.Name", "vpc-id"), ("Filter.1.Value.1", &vpc)])
        .unwrap();
    assert_eq!(one(&xml, "availableIpAddressCount"), "10");
    assert_eq!(one(&xml, "subnetId"), subnet);
    let err = call(&mut ec2, "DescribeSubnets", &[("SubnetId.1", "subnet-nope")]).unwrap_err();
    assert_eq!(err.message, "The subnet ID 'subnet-nope' does not exist");
    let xml = call(&mut ec2, "DescribeVpcs", &[]).unwrap();
    assert_eq!(texts(&xml, "cidrBlock"), ["192.168.0.0/16", "192.168.0.0/16"]);
    assert_eq!(one(&xml, "state"), "available");
    let err = call(&mut ec2, "DescribeVpcs", &[("VpcId.1", "vpc-nope")]).unwrap_err();
    assert_eq!(err.code, "InvalidVpcID.NotFound");
}

#[test]
fn create_attach_assign_detach_delete() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium");
    let eni = create_eni(&mut ec2, &[("SecondaryPrivateIpAddressCount", "2")]).unwrap();
    let e = ec2.eni(&eni).unwrap();
    assert_eq!(e.status(), "available");
    assert_eq!(e.secondary_ips.len(), 2);
    let xml = call(
        &mut ec2,
        "AttachNetworkInterface",
        &[("NetworkInterfaceId", &eni), ("InstanceId", &i), ("DeviceIndex", "1")],
    )
    .unwrap();
    let attachment = one(&xml, "attachmentId");
    assert!(attachment.starts_with("eni-attach-"));
    assert_eq!(one(&xml, "networkCardIndex"), "0");
    let xml = call(
        &mut ec2,
        "ModifyNetworkInterfaceAttribute",
        &[
            ("NetworkInterfaceId", &eni),
            ("Attachment.AttachmentId", &attachment),
            ("Attachment.DeleteOnTermination", "true"),
        ],
    )
    .unwrap();
    assert_eq!(one(&xml, "return"), "true");
    assert!(ec2.eni(&eni).unwrap().attachment.as_ref().unwrap().delete_on_termination);
    // t3.medium: 6 slots per ENI; primary + 2 used, 3 more fit, a 4th does not.
    let xml = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &eni), ("SecondaryPrivateIpAddressCount", "3")],
    )
    .unwrap();
    assert_eq!(texts(&xml, "privateIpAddress").len(), 3);
    assert_eq!(one(&xml, "networkInterfaceId"), eni);
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &eni), ("SecondaryPrivateIpAddressCount", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "PrivateIpAddressLimitExceeded");
    assert_eq!(err.message, "Number of private addresses will exceed limit.");
    // IMDS sees the new addresses at once.
    let md = ec2.instance_metadata(&i).unwrap();
    let mac = ec2.eni(&eni).unwrap().mac.clone();
    let ips = md.get(&format!("network/interfaces/macs/{mac}/local-ipv4s")).unwrap();
    assert_eq!(ips.lines().count(), 6);
    assert_eq!(md.get(&format!("network/interfaces/macs/{mac}/device-number")).unwrap(), "1");
    // Unassign one, then it is free again.
    let ip = ec2.eni(&eni).unwrap().secondary_ips[0].to_string();
    call(
        &mut ec2,
        "UnassignPrivateIpAddresses",
        &[("NetworkInterfaceId", &eni), ("PrivateIpAddress.1", &ip)],
    )
    .unwrap();
    let err = call(
        &mut ec2,
        "UnassignPrivateIpAddresses",
        &[("NetworkInterfaceId", &eni), ("PrivateIpAddress.1", &ip)],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
    let primary = ec2.eni(&eni).unwrap().private_ip.to_string();
    let err = call(
        &mut ec2,
        "UnassignPrivateIpAddresses",
        &[("NetworkInterfaceId", &eni), ("PrivateIpAddress.1", &primary)],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
    // Delete while attached fails; detach; delete; gone.
    let err = call(&mut ec2, "DeleteNetworkInterface", &[("NetworkInterfaceId", &eni)]).unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
    assert_eq!(err.message, format!("Network interface '{eni}' is currently in use."));
    call(&mut ec2, "DetachNetworkInterface", &[("AttachmentId", &attachment)]).unwrap();
    let err = call(&mut ec2, "DetachNetworkInterface", &[("AttachmentId", &attachment)]).unwrap_err();
    assert_eq!(err.code, "InvalidAttachmentID.NotFound");
    let before = subnet_a(&ec2).available();
    call(&mut ec2, "DeleteNetworkInterface", &[("NetworkInterfaceId", &eni)]).unwrap();
    assert_eq!(subnet_a(&ec2).available(), before + 5);
    let err = call(&mut ec2, "DeleteNetworkInterface", &[("NetworkInterfaceId", &eni)]).unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterfaceID.NotFound");
}

#[test]
fn attach_limits_and_errors() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium"); // 3 ENIs
    let primary_attachment =
        ec2.eni(&ec2.instance(&i).unwrap().primary_eni.clone()).unwrap().attachment.clone().unwrap().id;
    let attach = |ec2: &mut Ec2, eni: &str, index: &str| {
        call(
            ec2,
            "AttachNetworkInterface",
            &[("NetworkInterfaceId", eni), ("InstanceId", &i), ("DeviceIndex", index)],
        )
    };
    let e1 = create_eni(&mut ec2, &[]).unwrap();
    let e2 = create_eni(&mut ec2, &[]).unwrap();
    let e3 = create_eni(&mut ec2, &[]).unwrap();
    let err = attach(&mut ec2, &e1, "0").unwrap_err();
    assert_eq!(err.message, format!("Instance '{i}' already has an interface attached at device index '0'."));
    attach(&mut ec2, &e1, "1").unwrap();
    let err = attach(&mut ec2, &e1, "2").unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterface.InUse");
    assert_eq!(err.message, format!("Interface: [{e1}] in use."));
    attach(&mut ec2, &e2, "2").unwrap();
    let err = attach(&mut ec2, &e3, "3").unwrap_err();
    assert_eq!(err.code, "AttachmentLimitExceeded");
    assert_eq!(err.message, "Interface count 4 exceeds the limit for t3.medium");
    // An ENI with more addresses than the type allows per ENI cannot be attached.
    let small = node(&mut ec2, "t3.small"); // 4 per ENI
    let big = create_eni(&mut ec2, &[("SecondaryPrivateIpAddressCount", "4")]).unwrap();
    let err = call(
        &mut ec2,
        "AttachNetworkInterface",
        &[("NetworkInterfaceId", &big), ("InstanceId", &small), ("DeviceIndex", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "PrivateIpAddressLimitExceeded");
    // Unknown instance, missing params, primary detach.
    let err = call(
        &mut ec2,
        "AttachNetworkInterface",
        &[("NetworkInterfaceId", &e3), ("InstanceId", "i-0123"), ("DeviceIndex", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidInstanceID.NotFound");
    let err = call(&mut ec2, "AttachNetworkInterface", &[("NetworkInterfaceId", &e3), ("InstanceId", &i)])
        .unwrap_err();
    assert_eq!(err.code, "MissingParameter");
    assert_eq!(err.message, "The request must contain the parameter DeviceIndex");
    let err = call(&mut ec2, "DetachNetworkInterface", &[("AttachmentId", &primary_attachment)]).unwrap_err();
    assert_eq!(err.code, "OperationNotPermitted");
    let err = call(&mut ec2, "DetachNetworkInterface", &[]).unwrap_err();
    assert_eq!(err.code, "MissingParameter");
}

#[test]
fn subnet_exhaustion() {
    let mut ec2 = tiny(); // 11 usable
    let i = node(&mut ec2, "m5.large"); // takes 1; 10 per ENI
    let primary = ec2.instance(&i).unwrap().primary_eni.clone();
    call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &primary), ("SecondaryPrivateIpAddressCount", "9")],
    )
    .unwrap();
    // One address left in the subnet: an ENI with one secondary needs two.
    let err = create_eni(&mut ec2, &[("SecondaryPrivateIpAddressCount", "1")]).unwrap_err();
    assert_eq!(err.code, "InsufficientFreeAddressesInSubnet");
    assert_eq!(
        err.message,
        "The specified subnet does not have enough free addresses to satisfy the request."
    );
    // The failed call gave back what it took.
    assert_eq!(subnet_a(&ec2).available(), 1);
    let last = create_eni(&mut ec2, &[]).unwrap();
    assert_eq!(subnet_a(&ec2).available(), 0);
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &last), ("SecondaryPrivateIpAddressCount", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "InsufficientFreeAddressesInSubnet");
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &last), ("Ipv4PrefixCount", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "InsufficientCidrBlocks");
    // DescribeSubnets reports it.
    let xml = call(&mut ec2, "DescribeSubnets", &[]).unwrap();
    assert_eq!(one(&xml, "availableIpAddressCount"), "0");
}

#[test]
fn prefix_delegation() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium");
    let primary = ec2.instance(&i).unwrap().primary_eni.clone();
    let xml = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &primary), ("Ipv4PrefixCount", "2")],
    )
    .unwrap();
    assert_eq!(texts(&xml, "ipv4Prefix"), ["192.168.0.16/28", "192.168.0.32/28"]);
    assert!(texts(&xml, "privateIpAddress").is_empty());
    let subnet = subnet_a(&ec2);
    assert_eq!(subnet.available(), subnet.capacity() - 1 - 32);
    let md = ec2.instance_metadata(&i).unwrap();
    let mac = &md.mac;
    assert_eq!(
        md.get(&format!("network/interfaces/macs/{mac}/ipv4-prefix")).unwrap(),
        "192.168.0.16/28\n192.168.0.32/28"
    );
    // 1 + 2 prefixes + 3 = 6 slots: the limit; one more prefix exceeds it.
    call(&mut ec2, "AssignPrivateIpAddresses", &[("NetworkInterfaceId", &primary), ("Ipv4PrefixCount", "3")])
        .unwrap();
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &primary), ("Ipv4PrefixCount", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "PrivateIpAddressLimitExceeded");
    // Mixed and empty requests.
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[
            ("NetworkInterfaceId", &primary),
            ("PrivateIpAddress.1", "192.168.1.1"),
            ("SecondaryPrivateIpAddressCount", "1"),
        ],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidParameterCombination");
    let err = call(&mut ec2, "AssignPrivateIpAddresses", &[("NetworkInterfaceId", &primary)]).unwrap_err();
    assert_eq!(err.code, "MissingParameter");
    // Unassign a prefix.
    call(
        &mut ec2,
        "UnassignPrivateIpAddresses",
        &[("NetworkInterfaceId", &primary), ("Ipv4Prefix.1", "192.168.0.16/28")],
    )
    .unwrap();
    assert_eq!(ec2.eni(&primary).unwrap().prefixes.len(), 4);
}

#[test]
fn assign_specific_addresses() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.large");
    let primary = ec2.instance(&i).unwrap().primary_eni.clone();
    let xml = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &primary), ("PrivateIpAddress.1", "192.168.1.10")],
    )
    .unwrap();
    assert_eq!(texts(&xml, "privateIpAddress"), ["192.168.1.10"]);
    let other = create_eni(&mut ec2, &[]).unwrap();
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &other), ("PrivateIpAddress.1", "192.168.1.10")],
    )
    .unwrap_err();
    assert_eq!(err.message, "The specified address is already in use.");
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", &other), ("PrivateIpAddress.1", "10.0.0.9")],
    )
    .unwrap_err();
    assert_eq!(err.message, "invalid value for parameter address: 10.0.0.9");
    let err = call(
        &mut ec2,
        "AssignPrivateIpAddresses",
        &[("NetworkInterfaceId", "eni-0000000000000000a"), ("SecondaryPrivateIpAddressCount", "1")],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterfaceID.NotFound");
    assert_eq!(ec2.instance_holding("192.168.1.10".parse().unwrap()).unwrap().id, i);
}

#[test]
fn create_network_interface_errors() {
    let mut ec2 = lab();
    let err = call(&mut ec2, "CreateNetworkInterface", &[]).unwrap_err();
    assert_eq!(err.message, "The request must contain the parameter SubnetId");
    let err = call(&mut ec2, "CreateNetworkInterface", &[("SubnetId", "subnet-x")]).unwrap_err();
    assert_eq!(err.code, "InvalidSubnetID.NotFound");
    let err = create_eni(&mut ec2, &[("SecondaryPrivateIpAddressCount", "50")]).unwrap_err();
    assert_eq!(err.code, "PrivateIpAddressLimitExceeded");
    let err = create_eni(&mut ec2, &[("SecurityGroupId.1", "sg-nope")]).unwrap_err();
    assert_eq!(err.code, "InvalidGroup.NotFound");
    let err = create_eni(&mut ec2, &[("SecondaryPrivateIpAddressCount", "lots")]).unwrap_err();
    assert_eq!(err.code, "InvalidParameterValue");
    let xml = {
        let subnet = subnet_a(&ec2).id.clone();
        call(&mut ec2, "CreateNetworkInterface", &[("SubnetId", &subnet), ("Description", "d")]).unwrap()
    };
    assert!(xml.contains("<CreateNetworkInterfaceResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>req-1</requestId><networkInterface>"));
    assert_eq!(one(&xml, "status"), "available");
    assert_eq!(one(&xml, "groupName"), "default");
}

#[test]
fn modify_and_tags() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium");
    let eni = ec2.instance(&i).unwrap().primary_eni.clone();
    call(
        &mut ec2,
        "ModifyNetworkInterfaceAttribute",
        &[("NetworkInterfaceId", &eni), ("SourceDestCheck.Value", "false")],
    )
    .unwrap();
    assert!(!ec2.eni(&eni).unwrap().source_dest_check);
    let err = call(
        &mut ec2,
        "ModifyNetworkInterfaceAttribute",
        &[
            ("NetworkInterfaceId", &eni),
            ("Attachment.AttachmentId", "eni-attach-0"),
            ("Attachment.DeleteOnTermination", "true"),
        ],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidAttachmentID.NotFound");
    let err = call(&mut ec2, "ModifyNetworkInterfaceAttribute", &[("NetworkInterfaceId", &eni)]).unwrap_err();
    assert_eq!(err.code, "MissingParameter");

    let xml = call(
        &mut ec2,
        "CreateTags",
        &[
            ("ResourceId.1", &eni),
            ("ResourceId.2", &i),
            ("Tag.1.Key", "team"),
            ("Tag.1.Value", "net"),
            ("Tag.2.Key", "env"),
            ("Tag.2.Value", "lab"),
        ],
    )
    .unwrap();
    assert_eq!(one(&xml, "return"), "true");
    assert_eq!(ec2.eni(&eni).unwrap().tags.len(), 2);
    assert_eq!(ec2.instance(&i).unwrap().tags.get("team").unwrap(), "net");
    // A bad id anywhere changes nothing.
    let err = call(
        &mut ec2,
        "CreateTags",
        &[("ResourceId.1", &eni), ("ResourceId.2", "eni-0000000000000000b"), ("Tag.1.Key", "x")],
    )
    .unwrap_err();
    assert_eq!(err.code, "InvalidNetworkInterfaceID.NotFound");
    assert!(!ec2.eni(&eni).unwrap().tags.contains_key("x"));
    let err = call(&mut ec2, "CreateTags", &[("ResourceId.1", "ami-1"), ("Tag.1.Key", "x")]).unwrap_err();
    assert_eq!(err.code, "InvalidID");
    // DeleteTags: value must match when given; no Tag.N deletes all.
    call(&mut ec2, "DeleteTags", &[("ResourceId.1", &eni), ("Tag.1.Key", "team"), ("Tag.1.Value", "other")])
        .unwrap();
    assert!(ec2.eni(&eni).unwrap().tags.contains_key("team"));
    call(&mut ec2, "DeleteTags", &[("ResourceId.1", &eni), ("Tag.1.Key", "team")]).unwrap();
    assert!(!ec2.eni(&eni).unwrap().tags.contains_key("team"));
    call(&mut ec2, "DeleteTags", &[("ResourceId.1", &i)]).unwrap();
    assert!(ec2.instance(&i).unwrap().tags.is_empty());
}

#[test]
fn imds_view() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium");
    let md = ec2.instance_metadata(&i).unwrap();
    assert_eq!(md.get("instance-id").unwrap(), i);
    assert_eq!(md.get("instance-type").unwrap(), "t3.medium");
    assert_eq!(md.get("local-ipv4").unwrap(), "192.168.0.4");
    assert_eq!(md.get("placement/availability-zone").unwrap(), "us-east-1a");
    assert_eq!(md.get("placement/availability-zone-id").unwrap(), "use1-az1");
    assert_eq!(md.get("placement/region").unwrap(), "us-east-1");
    let mac = md.get("mac").unwrap();
    assert_eq!(md.get("network/interfaces/macs/").unwrap(), format!("{mac}/"));
    let base = format!("network/interfaces/macs/{mac}");
    assert_eq!(md.get(&format!("{base}/device-number")).unwrap(), "0");
    assert_eq!(md.get(&format!("{base}/subnet-ipv4-cidr-block")).unwrap(), "192.168.0.0/19");
    assert_eq!(md.get(&format!("{base}/vpc-ipv4-cidr-blocks")).unwrap(), "192.168.0.0/16");
    assert_eq!(md.get(&format!("{base}/vpc-id")).unwrap(), ec2.vpc.id);
    assert!(md.get(&format!("{base}/ipv4-prefix")).is_none());
    assert!(md.get(&format!("{base}/")).unwrap().contains("local-ipv4s"));
    assert!(md.get("nope").is_none());
    let doc: serde_json::Value = serde_json::from_str(&md.identity_document()).unwrap();
    assert_eq!(doc["region"], "us-east-1");
    assert_eq!(doc["instanceId"], i.as_str());
    // A second ENI shows up after attach.
    let eni = create_eni(&mut ec2, &[]).unwrap();
    call(
        &mut ec2,
        "AttachNetworkInterface",
        &[("NetworkInterfaceId", &eni), ("InstanceId", &i), ("DeviceIndex", "1")],
    )
    .unwrap();
    let md = ec2.instance_metadata(&i).unwrap();
    assert_eq!(md.get("network/interfaces/macs/").unwrap().lines().count(), 2);
    assert!(ec2.instance_metadata("i-0").is_none());
}

#[test]
fn terminate_releases_addresses() {
    let mut ec2 = tiny();
    let i = node(&mut ec2, "t3.medium");
    let eni = create_eni(&mut ec2, &[("SecondaryPrivateIpAddressCount", "2")]).unwrap();
    call(
        &mut ec2,
        "AttachNetworkInterface",
        &[("NetworkInterfaceId", &eni), ("InstanceId", &i), ("DeviceIndex", "1")],
    )
    .unwrap();
    assert_eq!(subnet_a(&ec2).available(), 11 - 4);
    ec2.terminate_instance(&i).unwrap();
    // The primary ENI went with the instance; the secondary one stays, detached.
    assert_eq!(subnet_a(&ec2).available(), 11 - 3);
    assert_eq!(ec2.eni(&eni).unwrap().status(), "available");
}

#[test]
fn serde_round_trip() {
    let mut ec2 = lab();
    let i = node(&mut ec2, "t3.medium");
    let primary = ec2.instance(&i).unwrap().primary_eni.clone();
    call(&mut ec2, "AssignPrivateIpAddresses", &[("NetworkInterfaceId", &primary), ("Ipv4PrefixCount", "1")])
        .unwrap();
    let json = serde_json::to_string(&ec2).unwrap();
    let mut back: Ec2 = serde_json::from_str(&json).unwrap();
    assert_eq!(back, ec2);
    // The id generator state survived: the next ids match.
    assert_eq!(node(&mut back, "t3.small"), node(&mut ec2, "t3.small"));
    assert_eq!(back, ec2);
}

#[test]
fn error_xml() {
    let err = Ec2Error::eni_not_found("eni-1");
    let xml = crate::xml::error(&err, "req-9");
    assert_eq!(
        xml,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Errors><Error><Code>InvalidNetworkInterfaceID.NotFound</Code><Message>The networkInterface ID &apos;eni-1&apos; does not exist</Message></Error></Errors><RequestID>req-9</RequestID></Response>"
    );
}
