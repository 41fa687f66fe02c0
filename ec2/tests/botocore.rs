//! Proves `aws ec2 ...` can read the model's XML: botocore's own ec2 parser parses one response
//! per action against the real operation models (tests/botocore_parse.py). Skips cleanly when
//! python3 or botocore is missing.

use std::path::PathBuf;
use std::process::Command;

use netlab_ec2::{Ec2, Ec2Config, Ec2Error, Params, Tags};

fn call(ec2: &mut Ec2, action: &str, pairs: &[(&str, &str)]) -> String {
    ec2.handle(action, &Params::from_pairs(pairs.iter().copied()), "req-1")
        .unwrap_or_else(|e| panic!("{action}: {e}"))
}

/// The text of the first `<name>` element (ids are plain text, no escaping involved).
fn first(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = xml.find(&open).map(|i| i + open.len()).unwrap_or_else(|| panic!("no <{name}>"));
    let end = xml[start..].find('<').map(|i| start + i).unwrap_or(start);
    xml[start..end].to_string()
}

fn botocore_available() -> bool {
    Command::new("python3").args(["-c", "import botocore"]).status().is_ok_and(|s| s.success())
}

#[test]
fn botocore_parses_every_response() {
    if !botocore_available() {
        eprintln!("skipped: python3 with botocore not found");
        return;
    }
    let dir = std::env::temp_dir().join(format!("netlab-ec2-botocore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, body: String| std::fs::write(dir.join(format!("{name}.xml")), body).unwrap();

    let mut ec2 = Ec2::new(&Ec2Config::default()).unwrap();
    let mut tags = Tags::new();
    tags.insert("Name".into(), "node-1".into());
    let i = ec2.launch_instance("t3.medium", "us-east-1a", tags).unwrap().id.clone();
    let primary = ec2.instance(&i).unwrap().primary_eni.clone();
    let subnet = ec2.instance(&i).unwrap().subnet_id.clone();

    let created = call(
        &mut ec2,
        "CreateNetworkInterface",
        &[
            ("SubnetId", &subnet),
            ("Description", "aws-K8S-i"),
            ("SecondaryPrivateIpAddressCount", "2"),
            ("TagSpecification.1.ResourceType", "network-interface"),
            ("TagSpecification.1.Tag.1.Key", "k"),
            ("TagSpecification.1.Tag.1.Value", "v"),
        ],
    );
    let eni = first(&created, "networkInterfaceId");
    write("CreateNetworkInterface", created);
    let attached = call(
        &mut ec2,
        "AttachNetworkInterface",
        &[("NetworkInterfaceId", &eni), ("InstanceId", &i), ("DeviceIndex", "1")],
    );
    let attachment = first(&attached, "attachmentId");
    write("AttachNetworkInterface", attached);
    write(
        "AssignPrivateIpAddresses",
        call(
            &mut ec2,
            "AssignPrivateIpAddresses",
            &[("NetworkInterfaceId", &primary), ("SecondaryPrivateIpAddressCount", "2")],
        ),
    );
    write(
        "ModifyNetworkInterfaceAttribute",
        call(
            &mut ec2,
            "ModifyNetworkInterfaceAttribute",
            &[("NetworkInterfaceId", &eni), ("SourceDestCheck.Value", "false")],
        ),
    );
    write("DescribeInstances", call(&mut ec2, "DescribeInstances", &[]));
    write("DescribeNetworkInterfaces", call(&mut ec2, "DescribeNetworkInterfaces", &[]));
    write(
        "DescribeInstanceTypes",
        call(&mut ec2, "DescribeInstanceTypes", &[("InstanceType.1", "t3.medium")]),
    );
    write("DescribeSubnets", call(&mut ec2, "DescribeSubnets", &[]));
    write("DescribeVpcs", call(&mut ec2, "DescribeVpcs", &[]));
    write(
        "DetachNetworkInterface",
        call(&mut ec2, "DetachNetworkInterface", &[("AttachmentId", &attachment)]),
    );
    write(
        "DeleteNetworkInterface",
        call(&mut ec2, "DeleteNetworkInterface", &[("NetworkInterfaceId", &eni)]),
    );
    write("CreateTags", call(&mut ec2, "CreateTags", &[("ResourceId.1", &i), ("Tag.1.Key", "a")]));
    write("DeleteTags", call(&mut ec2, "DeleteTags", &[("ResourceId.1", &i), ("Tag.1.Key", "a")]));
    write("error", netlab_ec2::xml::error(&Ec2Error::private_ip_limit(), "req-err"));

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/botocore_parse.py");
    let out = Command::new("python3").arg(&script).arg(&dir).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(
        out.status.success(),
        "botocore rejected the XML:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
