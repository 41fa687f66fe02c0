//! The cloud's AWS endpoint as AWS's own clients see it: the real aws CLI (from PyPI) and boto3,
//! pointed at it with `netlab aws env`, signing with SigV4 as they do against AWS.

use std::{
    path::Path,
    process::{Command, Output},
};

use netlab_e2e::{bin, parts::Cloud};

/// The cloud with its AWS account kept in `data_dir` and two nodes as instances.
fn start(data_dir: &Path) -> Cloud {
    Cloud::start(&[
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--ec2-instances",
        "node-1=t3.medium,node-2=m5.large",
    ])
}

/// The environment `eval "$(netlab aws env)"` sets, read from what the CLI prints.
fn aws_env(cloud: &Cloud) -> Vec<(String, String)> {
    let out = Command::new(bin("netlab"))
        .args(["aws", "env", "--endpoint", &format!("http://{}", cloud.aws)])
        .output()
        .expect("netlab aws env");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect()
}

/// The aws CLI, or None (the test says so) where it is not installed.
fn have_aws() -> bool {
    let ok = Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: the aws CLI is not installed (.ci/run installs it from PyPI)");
    }
    ok
}

struct Aws {
    env: Vec<(String, String)>,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Aws {
    fn run(&self, args: &[&str], extra_env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new("aws");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", std::env::var_os("HOME").unwrap_or_default())
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .envs(extra_env.iter().copied())
            .args(args)
            .args(["--output", "json"]);
        let Output { status, stdout, stderr } = cmd.output().expect("aws");
        Run {
            code: status.code(),
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
        }
    }

    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let r = self.run(args, &[]);
        assert_eq!(r.code, Some(0), "aws {args:?}:\n{}{}", r.stdout, r.stderr);
        if r.stdout.trim().is_empty() {
            return serde_json::Value::Null;
        }
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("aws {args:?}: {e}: {}", r.stdout))
    }

    fn fails(&self, args: &[&str], extra_env: &[(&str, &str)], message: &str) {
        let r = self.run(args, extra_env);
        assert_ne!(r.code, Some(0), "aws {args:?} succeeded:\n{}", r.stdout);
        assert!(r.stderr.contains(message), "aws {args:?}: {message:?} not in:\n{}", r.stderr);
    }
}

#[test]
fn ec2_answers_the_aws_cli_with_the_nodes_enis_and_their_limits() {
    if !have_aws() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cloud = start(dir.path());
    let aws = Aws { env: aws_env(&cloud) };

    // The nodes, as instances of EKS's usual types, one per zone.
    let reservations = aws.ok(&["ec2", "describe-instances"]);
    let instances: Vec<&serde_json::Value> = reservations["Reservations"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["Instances"].as_array().unwrap())
        .collect();
    let by_name = |name: &str| {
        *instances
            .iter()
            .find(|i| i["Tags"].as_array().unwrap().iter().any(|t| t["Key"] == "Name" && t["Value"] == name))
            .unwrap_or_else(|| panic!("{name} in {reservations}"))
    };
    let node1 = by_name("node-1");
    assert_eq!(node1["InstanceType"], "t3.medium");
    assert_eq!(node1["Placement"]["AvailabilityZone"], "us-east-1a");
    assert_eq!(by_name("node-2")["InstanceType"], "m5.large");
    assert!(
        node1["IamInstanceProfile"]["Arn"]
            .as_str()
            .unwrap()
            .ends_with(":instance-profile/netlab-NodeInstanceRole"),
        "{node1}"
    );
    let instance_id = node1["InstanceId"].as_str().unwrap().to_string();

    // Its primary ENI, and the per-ENI limit of t3.medium (6 addresses: the primary and 5).
    let enis = aws.ok(&[
        "ec2",
        "describe-network-interfaces",
        "--filters",
        &format!("Name=attachment.instance-id,Values={instance_id}"),
    ]);
    let eni = enis["NetworkInterfaces"][0]["NetworkInterfaceId"].as_str().unwrap().to_string();
    assert_eq!(enis["NetworkInterfaces"][0]["PrivateIpAddress"], node1["PrivateIpAddress"]);
    let types = aws.ok(&["ec2", "describe-instance-types", "--instance-types", "t3.medium"]);
    assert_eq!(types["InstanceTypes"][0]["NetworkInfo"]["Ipv4AddressesPerInterface"], 6, "{types}");
    assert_eq!(types["InstanceTypes"][0]["NetworkInfo"]["MaximumNetworkInterfaces"], 3, "{types}");
    let free_before = aws.ok(&["ec2", "describe-subnets"])["Subnets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["AvailabilityZone"] == "us-east-1a")
        .unwrap()["AvailableIpAddressCount"]
        .as_u64()
        .unwrap();
    aws.ok(&[
        "ec2",
        "assign-private-ip-addresses",
        "--network-interface-id",
        &eni,
        "--secondary-private-ip-address-count",
        "5",
    ]);
    aws.fails(
        &["ec2", "assign-private-ip-addresses", "--network-interface-id", &eni, "--secondary-private-ip-address-count", "1"],
        &[],
        "An error occurred (PrivateIpAddressLimitExceeded) when calling the AssignPrivateIpAddresses operation: Number of private addresses will exceed limit.",
    );
    let subnets = aws.ok(&["ec2", "describe-subnets"]);
    let free_after = subnets["Subnets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["AvailabilityZone"] == "us-east-1a")
        .unwrap()["AvailableIpAddressCount"]
        .as_u64()
        .unwrap();
    assert_eq!(free_before - free_after, 5, "the subnet counts what the ENI took");
    aws.fails(
        &["ec2", "describe-network-interfaces", "--network-interface-ids", "eni-0123456789abcdef0"],
        &[],
        "(InvalidNetworkInterfaceID.NotFound)",
    );

    // Signatures: a wrong secret, a key nobody issued, no signature at all.
    aws.fails(
        &["ec2", "describe-vpcs"],
        &[("AWS_SECRET_ACCESS_KEY", "wrong")],
        "An error occurred (AuthFailure) when calling the DescribeVpcs operation: AWS was not able to validate the provided access credentials",
    );
    aws.fails(&["ec2", "describe-vpcs"], &[("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")], "(AuthFailure)");
    aws.fails(&["ec2", "describe-vpcs", "--no-sign-request"], &[], "(MissingAuthenticationToken)");

    // The account outlives the process: the addresses are still assigned after a restart.
    drop(cloud);
    let cloud = start(dir.path());
    let aws = Aws { env: aws_env(&cloud) };
    let enis = aws.ok(&["ec2", "describe-network-interfaces", "--network-interface-ids", &eni]);
    assert_eq!(enis["NetworkInterfaces"][0]["PrivateIpAddresses"].as_array().unwrap().len(), 6, "{enis}");
    let again = aws.ok(&["ec2", "describe-instances", "--instance-ids", &instance_id]);
    assert_eq!(
        again["Reservations"][0]["Instances"][0]["InstanceId"],
        instance_id.as_str(),
        "the same instance"
    );
}
