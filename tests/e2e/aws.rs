//! The cloud's AWS endpoint as AWS's own clients see it: the real aws CLI (from PyPI) and boto3,
//! pointed at it with `netlab aws env`, signing with SigV4 as they do against AWS.

use std::{
    path::Path,
    process::{Command, Output},
};

use netlab_e2e::{Apiserver, bin, http_get, native::NativeCluster, netlab, parts::Cloud};

mod eks;

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
    /// The aws CLI as `eval "$(netlab aws env)"` sets it up for the native cluster `c`.
    fn of(c: &NativeCluster) -> Self {
        let env = c
            .ok(&["aws", "env"])
            .lines()
            .filter_map(|l| l.strip_prefix("export "))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        Aws { env }
    }

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

/// A native cluster (`netlab up --detach`) with a hostNetwork pod and a pod on node-1, stopped on
/// drop.
struct Native {
    cluster: NativeCluster,
}

impl std::ops::Deref for Native {
    type Target = NativeCluster;

    fn deref(&self) -> &NativeCluster {
        &self.cluster
    }
}

impl Native {
    fn up() -> Self {
        let native = Native { cluster: NativeCluster::up() };
        native.apply("apiVersion: v1\nkind: Pod\nmetadata: {name: hostnet, namespace: default}\nspec:\n  nodeName: node-1\n  hostNetwork: true\n  containers: [{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: podnet, namespace: default}\nspec:\n  nodeName: node-1\n  containers: [{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}]\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while native.ok(&["get", "pods", "-o", "jsonpath={.items[*].status.phase}"]).trim()
            != "Running Running"
        {
            assert!(std::time::Instant::now() < deadline, "pods never ran");
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        native
    }

    /// `netlab exec POD -- curl ...`: exit code and stdout.
    fn curl(&self, pod: &str, args: &[&str]) -> (Option<i32>, String) {
        let mut argv = vec!["exec", pod, "--", "curl", "-sS", "-m", "3"];
        argv.extend_from_slice(args);
        let out = self.run(&argv, None);
        (out.code, out.stdout)
    }

    fn token(&self, pod: &str) -> (Option<i32>, String) {
        self.curl(
            pod,
            &[
                "-X",
                "PUT",
                "-H",
                "X-aws-ec2-metadata-token-ttl-seconds: 60",
                "http://169.254.169.254/latest/api/token",
            ],
        )
    }

    /// The cloud's spans named `operation` in the trace store `up` started, once at least `min`
    /// have arrived (10 s at most).
    fn spans(&self, operation: &str, min: usize) -> Vec<serde_json::Value> {
        use std::io::{Read as _, Write as _};
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(self.dir().join("cluster.json")).unwrap()).unwrap();
        let url = record["jaeger_url"].as_str().expect("a trace store").to_string();
        let addr = url.trim_start_matches("http://").to_string();
        let query: String = operation.replace(' ', "%20").replace('/', "%2F");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut s = std::net::TcpStream::connect(&addr).expect("the trace store");
            write!(s, "GET /api/traces?service=cloud&operation={query}&limit=20 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
            let mut raw = Vec::new();
            s.read_to_end(&mut raw).unwrap();
            let body = raw
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| raw[i + 4..].to_vec())
                .unwrap_or_default();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let spans: Vec<serde_json::Value> = json["data"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|t| t["spans"].as_array().cloned().unwrap_or_default())
                .filter(|sp| sp["operationName"] == operation)
                .collect();
            if spans.len() >= min || std::time::Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }

    fn aws(&self) -> Aws {
        Aws::of(self)
    }
}

#[test]
fn imds_serves_the_node_and_its_hop_limit_keeps_pods_from_tokens() {
    if !have_aws() {
        return;
    }
    let c = Native::up();

    // From the node (a hostNetwork pod): IMDSv2's token, then the instance's metadata.
    let (code, token) = c.token("hostnet");
    let log = || c.log("cloud");
    assert_eq!(code, Some(0), "{token}");
    assert_eq!(token.len(), 44, "32 bytes in base64: {token}\n{}", log());
    let header = format!("X-aws-ec2-metadata-token: {token}");
    let meta = |path: &str| {
        c.curl("hostnet", &["-H", &header, &format!("http://169.254.169.254/latest/meta-data/{path}")])
    };
    let (_, instance_id) = meta("instance-id");
    assert!(instance_id.starts_with("i-") && instance_id.len() == 19, "{instance_id}");
    assert_eq!(meta("instance-type").1, "t3.medium");
    assert_eq!(meta("placement/availability-zone").1, "us-east-1a");
    let (_, mac) = meta("mac");
    let (_, eni) = meta(&format!("network/interfaces/macs/{mac}/interface-id"));
    assert!(eni.starts_with("eni-"), "{eni}");
    assert_eq!(meta("iam/security-credentials/").1, "netlab-NodeInstanceRole");
    let (_, creds) = meta("iam/security-credentials/netlab-NodeInstanceRole");
    let creds: serde_json::Value = serde_json::from_str(&creds).unwrap_or_else(|e| panic!("{e}: {creds}"));
    assert_eq!(creds["Code"], "Success");
    assert!(creds["AccessKeyId"].as_str().unwrap().starts_with("ASIA"), "{creds}");
    let (_, document) = c.curl(
        "hostnet",
        &["-H", &header, "http://169.254.169.254/latest/dynamic/instance-identity/document"],
    );
    let document: serde_json::Value = serde_json::from_str(&document).unwrap();
    assert_eq!(
        (document["instanceId"].as_str(), document["region"].as_str()),
        (Some(instance_id.as_str()), Some("us-east-1"))
    );

    // Tokens are required (IMDSv1 off), and only the instance's own count.
    let (_, page) =
        c.curl("hostnet", &["-w", "%{http_code}", "http://169.254.169.254/latest/meta-data/instance-id"]);
    assert!(page.contains("<title>401 - Unauthorized</title>") && page.ends_with("401"), "{page}");
    let (_, bad) = c.curl(
        "hostnet",
        &[
            "-w",
            "%{http_code}",
            "-H",
            "X-aws-ec2-metadata-token: AAAA",
            "http://169.254.169.254/latest/meta-data/instance-id",
        ],
    );
    assert!(bad.ends_with("401"), "{bad}");

    // A pod is one routed hop further: with hop limit 1 its token never comes back.
    let (code, out) = c.token("podnet");
    assert_eq!(code, Some(28), "curl times out: {out}");

    // The node's role credentials work against the cloud: EC2 reads are in the worker policy.
    let aws = c.aws();
    let node_creds = [
        ("AWS_ACCESS_KEY_ID", creds["AccessKeyId"].as_str().unwrap()),
        ("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"].as_str().unwrap()),
        ("AWS_SESSION_TOKEN", creds["Token"].as_str().unwrap()),
    ];
    let r = aws.run(&["ec2", "describe-instances", "--instance-ids", &instance_id], &node_creds);
    assert_eq!(r.code, Some(0), "the node role may describe instances: {}", r.stderr);
    // ... but not change what instances' metadata options are.
    let r = aws.run(
        &[
            "ec2",
            "modify-instance-metadata-options",
            "--instance-id",
            &instance_id,
            "--http-put-response-hop-limit",
            "2",
        ],
        &node_creds,
    );
    assert!(
        r.stderr.contains("(UnauthorizedOperation)")
            && r.stderr.contains("assumed-role/netlab-NodeInstanceRole/"),
        "{}",
        r.stderr
    );

    // The admin raises the hop limit to 2: the pod gets its token.
    aws.ok(&[
        "ec2",
        "modify-instance-metadata-options",
        "--instance-id",
        &instance_id,
        "--http-put-response-hop-limit",
        "2",
    ]);
    let (code, token) = c.token("podnet");
    assert_eq!(code, Some(0), "{token}");

    // Each call is a span of the cloud naming who called and which statement decided.
    let decisions = c.spans("ec2.ModifyInstanceMetadataOptions", 2);
    let tag = |span: &serde_json::Value, key: &str| {
        span["tags"].as_array().unwrap().iter().find(|t| t["key"] == key).map(|t| t["value"].to_string())
    };
    let allowed = decisions
        .iter()
        .find(|s| tag(s, "aws.principal").is_some_and(|p| p.contains("user/admin")))
        .unwrap_or_else(|| panic!("the admin's call: {decisions:?}"));
    assert_eq!(tag(allowed, "aws.iam.decision").as_deref(), Some("\"Allow\""));
    assert!(tag(allowed, "aws.iam.statement").unwrap().contains("AdministratorAccess"), "{allowed}");
    let denied = decisions
        .iter()
        .find(|s| tag(s, "aws.principal").is_some_and(|p| p.contains("netlab-NodeInstanceRole")))
        .unwrap_or_else(|| panic!("the node role's call: {decisions:?}"));
    assert_eq!(tag(denied, "aws.iam.decision").as_deref(), Some("\"ImplicitDeny\""));
    assert_eq!(tag(denied, "aws.error.code").as_deref(), Some("\"UnauthorizedOperation\""));
    assert!(!c.spans("PUT /latest/api/token", 1).is_empty(), "IMDS's spans");
}

/// The account's ECR registry host, as AWS names it.
const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

#[test]
fn sts_iam_and_ecr_answer_the_aws_cli_and_skopeo_pulls_with_the_token() {
    if !have_aws() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cloud = start(dir.path());
    let aws = Aws { env: aws_env(&cloud) };

    let me = aws.ok(&["sts", "get-caller-identity"]);
    assert_eq!(me["Arn"], "arn:aws:iam::123456789012:user/admin", "{me}");
    assert_eq!(me["Account"], "123456789012");

    // A role the admin may assume, with no permissions yet.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/admin"},"Action":"sts:AssumeRole"}]}"#;
    let role =
        aws.ok(&["iam", "create-role", "--role-name", "puller", "--assume-role-policy-document", trust]);
    assert_eq!(role["Role"]["Arn"], "arn:aws:iam::123456789012:role/puller");
    let got = aws.ok(&["iam", "get-role", "--role-name", "puller"]);
    assert_eq!(got["Role"]["AssumeRolePolicyDocument"]["Statement"][0]["Action"], "sts:AssumeRole", "{got}");
    aws.fails(
        &["iam", "create-role", "--role-name", "puller", "--assume-role-policy-document", trust],
        &[],
        "An error occurred (EntityAlreadyExists) when calling the CreateRole operation: Role with name puller already exists.",
    );
    aws.fails(
        &["iam", "create-role", "--role-name", "broken", "--assume-role-policy-document", "{not json"],
        &[],
        "(MalformedPolicyDocument)",
    );
    aws.fails(
        &["iam", "get-role", "--role-name", "nobody"],
        &[],
        "(NoSuchEntity) when calling the GetRole operation: The role with name nobody cannot be found.",
    );

    let session = aws.ok(&[
        "sts",
        "assume-role",
        "--role-arn",
        "arn:aws:iam::123456789012:role/puller",
        "--role-session-name",
        "e2e",
    ]);
    let creds = &session["Credentials"];
    let as_role = [
        ("AWS_ACCESS_KEY_ID", creds["AccessKeyId"].as_str().unwrap()),
        ("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"].as_str().unwrap()),
        ("AWS_SESSION_TOKEN", creds["SessionToken"].as_str().unwrap()),
    ];
    let r = aws.run(&["sts", "get-caller-identity"], &as_role);
    assert!(
        r.stdout.contains("arn:aws:sts::123456789012:assumed-role/puller/e2e"),
        "{}{}",
        r.stdout,
        r.stderr
    );

    // Attaching and detaching a managed policy changes what the role may do.
    let denied = "An error occurred (AccessDeniedException) when calling the GetAuthorizationToken operation: User: arn:aws:sts::123456789012:assumed-role/puller/e2e is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action";
    aws.fails(&["ecr", "get-authorization-token"], &as_role, denied);
    let readonly = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";
    aws.ok(&["iam", "attach-role-policy", "--role-name", "puller", "--policy-arn", readonly]);
    let attached = aws.ok(&["iam", "list-attached-role-policies", "--role-name", "puller"]);
    assert_eq!(
        attached["AttachedPolicies"][0]["PolicyName"], "AmazonEC2ContainerRegistryReadOnly",
        "{attached}"
    );
    let r = aws.run(&["ecr", "get-authorization-token"], &as_role);
    assert_eq!(r.code, Some(0), "allowed once attached: {}", r.stderr);
    let r = aws.run(&["ecr", "describe-repositories", "--repository-names", "netlab/echo"], &as_role);
    assert!(
        r.stdout.contains("123456789012.dkr.ecr.us-east-1.amazonaws.com/netlab/echo"),
        "{}{}",
        r.stdout,
        r.stderr
    );
    aws.ok(&["iam", "detach-role-policy", "--role-name", "puller", "--policy-arn", readonly]);
    aws.fails(&["ecr", "get-authorization-token"], &as_role, denied);

    aws.fails(
        &["ecr", "describe-repositories", "--repository-names", "nope"],
        &[],
        "(RepositoryNotFoundException) when calling the DescribeRepositories operation: The repository with name 'nope' does not exist in the registry with id '123456789012'",
    );
    let images = aws.ok(&["ecr", "describe-images", "--repository-name", "nginx"]);
    let digest = images["imageDetails"][0]["imageDigest"].as_str().unwrap().to_string();
    assert!(digest.starts_with("sha256:"), "{images}");

    // skopeo against the ECR host: refused without the token, in with it. The host name must
    // resolve here (.ci/run maps it to 127.0.0.1 in /etc/hosts, as the README says).
    let resolves =
        std::net::ToSocketAddrs::to_socket_addrs(&(ECR_HOST, 80)).is_ok_and(|mut a| a.next().is_some());
    if !resolves {
        eprintln!("SKIP skopeo: {ECR_HOST} does not resolve on this machine (add it to /etc/hosts)");
        return;
    }
    let registry = format!("{ECR_HOST}:{}", cloud.registry.port());
    let auth = dir.path().join("auth.json");
    let skopeo = |args: &[&str], stdin: Option<&str>| {
        use std::io::Write as _;
        let mut child = Command::new("skopeo")
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("skopeo");
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    };
    let image = format!("docker://{registry}/nginx:latest");
    let anonymous = skopeo(&["inspect", "--tls-verify=false", "--no-creds", &image], None);
    assert!(!anonymous.status.success());
    let said = String::from_utf8_lossy(&anonymous.stderr);
    assert!(said.contains("authentication required") || said.contains("401"), "{said}");
    let password = aws.run(&["ecr", "get-login-password"], &[]);
    assert_eq!(password.code, Some(0), "{}", password.stderr);
    let login = skopeo(
        &[
            "login",
            "--tls-verify=false",
            "--authfile",
            auth.to_str().unwrap(),
            "-u",
            "AWS",
            "--password-stdin",
            &registry,
        ],
        Some(password.stdout.trim()),
    );
    assert!(login.status.success(), "skopeo login: {}", String::from_utf8_lossy(&login.stderr));
    let inspect =
        skopeo(&["inspect", "--tls-verify=false", "--authfile", auth.to_str().unwrap(), &image], None);
    assert!(inspect.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&inspect.stderr));
    let inspected: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspected["Digest"], digest.as_str(), "{inspected}");
}

#[test]
fn boto3_works_and_bad_input_gets_awss_error_codes() {
    let boto3 =
        Command::new("python3").args(["-c", "import boto3"]).output().is_ok_and(|o| o.status.success());
    if !boto3 {
        eprintln!("SKIP: boto3 is not installed (.ci/run installs it from PyPI)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cloud = start(dir.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("e2e/aws/raw.py");
    let out = Command::new("python3").arg(script).envs(aws_env(&cloud)).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let want = serde_json::json!({
        "boto3 sts arn": [200, "arn:aws:iam::123456789012:user/admin"],
        "boto3 ec2 instances": [200, 2],
        "iam unknown action": [400, "InvalidAction"],
        "iam CreateRole without RoleName": [400, "ValidationError"],
        "ec2 Assign without NetworkInterfaceId": [400, "MissingParameter"],
        "ec2 no Action": [400, "MissingAction"],
        "sts malformed form": [404, "MalformedQueryString"],
        "ecr malformed json": [400, "SerializationException"],
        "ecr unknown operation": [400, "UnknownOperationException"],
        "sts signed an hour ago": [403, "SignatureDoesNotMatch"],
    });
    assert_eq!(got, want);
    // Nothing above took the process down.
    assert!(std::net::TcpStream::connect(cloud.aws).is_ok());
}

/// An EKS-shaped issuer, as `aws eks describe-cluster` reports `identity.oidc.issuer`.
const ISSUER: &str = "https://oidc.eks.us-east-1.amazonaws.com/id/8E0D2C3A5B7F4E1D9C6B2A4F0E1D3C5B";

/// The claims of a JWT, decoded without checking it (the test reads what the apiserver signed).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).unwrap_or_else(|| panic!("not a JWT: {token}"));
    let bytes = data_encoding::BASE64URL_NOPAD.decode(payload.as_bytes()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn irsa_tokens_from_the_apiserver_buy_role_sessions_from_sts() {
    if !have_aws() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // EKS's apiserver names the keys where AWS serves them, beside the issuer.
    let jwks_uri = format!("{ISSUER}/keys");
    let mut api = Apiserver::start(
        &dir.path().join("api"),
        &["--service-account-issuer", ISSUER, "--service-account-jwks-uri", &jwks_uri],
    );
    let server = api.url();
    let cloud_dir = dir.path().join("cloud");
    let cloud = Cloud::start(&["--data-dir", cloud_dir.to_str().unwrap(), "--apiserver", &server]);
    let aws = Aws { env: aws_env(&cloud) };

    // The issuer's documents, on the API port beside gRPC, as kube-apiserver serves them.
    let addr = api.addr.to_string();
    let discovery = http_get(&addr, "/.well-known/openid-configuration");
    assert_eq!(discovery.status, 200, "{discovery:?}");
    let doc: serde_json::Value = serde_json::from_str(&discovery.body).unwrap();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["jwks_uri"], jwks_uri);
    assert_eq!(doc["id_token_signing_alg_values_supported"], serde_json::json!(["RS256"]));
    let jwks = http_get(&addr, "/openid/v1/jwks");
    assert_eq!(jwks.header("content-type"), Some("application/jwk-set+json"), "{jwks:?}");
    let keys: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
    let key = &keys["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
        (Some("RSA"), Some("RS256"), Some("sig"))
    );

    // A ServiceAccount and its token for STS, as the pod identity webhook's projected volume
    // would carry it.
    let sa = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: s3-reader\n  namespace: default\n";
    netlab(&server, &["apply", "-f", "-"], Some(sa)).ok();
    let token_for = |account: &str, audience: &str| {
        let run = netlab(&server, &["create", "token", account, "--audience", audience], None).ok();
        run.stdout.trim().to_string()
    };
    let token = token_for("s3-reader", "sts.amazonaws.com");
    let c = claims(&token);
    assert_eq!(c["iss"], ISSUER);
    assert_eq!(c["sub"], "system:serviceaccount:default:s3-reader");
    assert_eq!(c["aud"], serde_json::json!(["sts.amazonaws.com"]));
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600, "{c}");
    assert_eq!(c["kubernetes.io"]["serviceaccount"]["name"], "s3-reader");
    assert_eq!(c["kubernetes.io"]["namespace"], "default");

    // kubectl's refusals, from the server and from the flags.
    let short = netlab(&server, &["create", "token", "s3-reader", "--duration", "1m"], None);
    assert_eq!(short.code, Some(1));
    assert_eq!(
        short.stderr.trim(),
        "error: failed to create token: TokenRequest.authentication.k8s.io \"\" is invalid: spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 10 minutes"
    );
    let missing = netlab(&server, &["create", "token", "nope"], None);
    assert_eq!(missing.stderr.trim(), "error: failed to create token: serviceaccounts \"nope\" not found");

    let role_arn = "arn:aws:iam::123456789012:role/s3-reader";
    let assume = |token: &str| {
        aws.run(
            &[
                "sts",
                "assume-role-with-web-identity",
                "--role-arn",
                role_arn,
                "--role-session-name",
                "irsa-test",
                "--web-identity-token",
                token,
            ],
            &[],
        )
    };
    // Before the account trusts the issuer: AWS's text.
    let r = assume(&token);
    assert!(
        r.stderr.contains(&format!(
            "(InvalidIdentityToken) when calling the AssumeRoleWithWebIdentity operation: No OpenIDConnect provider found in your account for {ISSUER}"
        )),
        "{}",
        r.stderr
    );

    // `eksctl utils associate-iam-oidc-provider` and an IRSA role, as eksctl creates them.
    let host_path = ISSUER.trim_start_matches("https://");
    let provider = aws.ok(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        ISSUER,
        "--client-id-list",
        "sts.amazonaws.com",
        "--thumbprint-list",
        "9e99a48a9960b14926bb7f3b02e22da2b0ab7280",
    ]);
    let provider_arn = provider["OpenIDConnectProviderArn"].as_str().unwrap().to_string();
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider_arn },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": {
                format!("{host_path}:sub"): "system:serviceaccount:default:s3-reader",
                format!("{host_path}:aud"): "sts.amazonaws.com",
            } },
        }],
    })
    .to_string();
    aws.ok(&["iam", "create-role", "--role-name", "s3-reader", "--assume-role-policy-document", &trust]);

    // The pod's token buys a role session; its credentials are the role's.
    let r = assume(&token);
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let session: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        session["AssumedRoleUser"]["Arn"],
        "arn:aws:sts::123456789012:assumed-role/s3-reader/irsa-test"
    );
    assert_eq!(session["SubjectFromWebIdentityToken"], "system:serviceaccount:default:s3-reader");
    assert_eq!(session["Audience"], "sts.amazonaws.com");
    let creds = &session["Credentials"];
    let as_role = Aws {
        env: aws
            .env
            .iter()
            .filter(|(k, _)| !k.starts_with("AWS_ACCESS") && !k.starts_with("AWS_SECRET"))
            .cloned()
            .chain([
                ("AWS_ACCESS_KEY_ID".into(), creds["AccessKeyId"].as_str().unwrap().into()),
                ("AWS_SECRET_ACCESS_KEY".into(), creds["SecretAccessKey"].as_str().unwrap().into()),
                ("AWS_SESSION_TOKEN".into(), creds["SessionToken"].as_str().unwrap().into()),
            ])
            .collect(),
    };
    let me = as_role.ok(&["sts", "get-caller-identity"]);
    assert_eq!(me["Arn"], "arn:aws:sts::123456789012:assumed-role/s3-reader/irsa-test");

    // What STS refuses: a forged signature, another ServiceAccount, another audience.
    // One signature character changed (not the last: its low bits must stay zero).
    let at = token.len() - 10;
    let flipped = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &token[..at], &token[at + 1..]);
    let r = assume(&forged);
    assert!(
        r.stderr.contains("(InvalidIdentityToken)") && r.stderr.contains("could not be validated by AWS"),
        "{}",
        r.stderr
    );
    let other = "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: other\n  namespace: default\n";
    netlab(&server, &["apply", "-f", "-"], Some(other)).ok();
    let r = assume(&token_for("other", "sts.amazonaws.com"));
    assert!(
        r.stderr.contains("(AccessDenied)")
            && r.stderr.contains("Not authorized to perform sts:AssumeRoleWithWebIdentity"),
        "{}",
        r.stderr
    );
    let r = assume(&token_for("s3-reader", "vault"));
    assert!(
        r.stderr.contains("(InvalidIdentityToken)") && r.stderr.contains("Incorrect token audience"),
        "{}",
        r.stderr
    );
    let r = assume("not-a-jwt");
    assert!(r.stderr.contains("The ID Token provided is not a valid JWT"), "{}", r.stderr);

    // The signing key lives in the apiserver's data dir: after a restart, tokens it signed
    // before still verify.
    api.restart();
    let r = assume(&token);
    assert_eq!(r.code, Some(0), "after the apiserver's restart: {}", r.stderr);
}

#[test]
fn irsa_pods_get_the_roles_env_and_a_projected_token_sts_accepts() {
    if !have_aws() {
        return;
    }
    let c = Native::up();
    let kubeconfig = c.ok(&["kubeconfig"]);
    let server = kubeconfig
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: http://"))
        .expect("the kubeconfig's server")
        .to_string();
    let doc: serde_json::Value =
        serde_json::from_str(&http_get(&server, "/.well-known/openid-configuration").body).unwrap();
    let issuer = doc["issuer"].as_str().expect("an issuer").to_string();
    assert_eq!(issuer, "https://kubernetes.default.svc.cluster.local", "kubeadm's issuer");

    // A ServiceAccount annotated as eksctl annotates one, a pod of it and a pod of the default one.
    let role_arn = "arn:aws:iam::123456789012:role/irsa-reader";
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: irsa}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reader\n  namespace: irsa\n  annotations: {{eks.amazonaws.com/role-arn: \"{role_arn}\"}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: app, namespace: irsa}}\nspec:\n  serviceAccountName: reader\n  containers: [{{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}}]\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: plain, namespace: irsa}}\nspec:\n  containers: [{{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}}]\n"
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while c.ok(&["get", "pods", "-n", "irsa", "-o", "jsonpath={.items[*].status.phase}"]).trim()
        != "Running Running"
    {
        assert!(std::time::Instant::now() < deadline, "the pods never ran:\n{}", c.logs(40));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    // The webhook's env and volume, as `kubectl get pod -o yaml` shows them on EKS.
    let env = c.ok(&["exec", "-n", "irsa", "app", "--", "env"]);
    for line in [
        "AWS_STS_REGIONAL_ENDPOINTS=regional",
        "AWS_DEFAULT_REGION=us-east-1",
        "AWS_REGION=us-east-1",
        &format!("AWS_ROLE_ARN={role_arn}"),
        "AWS_WEB_IDENTITY_TOKEN_FILE=/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    ] {
        assert!(env.lines().any(|l| l == line), "{line} not in:\n{env}");
    }
    assert!(!c.ok(&["exec", "-n", "irsa", "plain", "--", "env"]).contains("AWS_ROLE_ARN"));
    let pod: serde_json::Value =
        serde_json::from_str(&c.ok(&["get", "pod", "-n", "irsa", "app", "-o", "json"])).unwrap();
    let volume =
        pod["spec"]["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "aws-iam-token").cloned();
    assert_eq!(
        volume.expect("the aws-iam-token volume")["projected"]["sources"][0]["serviceAccountToken"],
        serde_json::json!({"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"})
    );

    // The kubelet wrote the projected token: for STS, of the pod's account, bound to the pod.
    let token = c.ok(&[
        "exec",
        "-n",
        "irsa",
        "app",
        "--",
        "cat",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    ]);
    let token = token.trim();
    let t = claims(token);
    assert_eq!(t["iss"], issuer.as_str());
    assert_eq!(t["aud"], serde_json::json!(["sts.amazonaws.com"]));
    assert_eq!(t["sub"], "system:serviceaccount:irsa:reader");
    assert_eq!(t["kubernetes.io"]["pod"]["name"], "app");
    assert_eq!(t["kubernetes.io"]["pod"]["uid"], pod["metadata"]["uid"]);
    assert_eq!(t["kubernetes.io"]["node"]["name"], pod["spec"]["nodeName"]);
    assert_eq!(t["exp"].as_i64().unwrap() - t["iat"].as_i64().unwrap(), 86_400);

    // What the SDK in the pod does with it: the account trusts the issuer, the role trusts the
    // account's ServiceAccount, and STS trades the pod's token for the role's session.
    let aws = c.aws();
    let host_path = issuer.trim_start_matches("https://");
    let provider = aws.ok(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        &issuer,
        "--client-id-list",
        "sts.amazonaws.com",
    ]);
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider["OpenIDConnectProviderArn"] },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": { format!("{host_path}:sub"): "system:serviceaccount:irsa:reader" } },
        }],
    })
    .to_string();
    aws.ok(&["iam", "create-role", "--role-name", "irsa-reader", "--assume-role-policy-document", &trust]);
    let session = aws.ok(&[
        "sts",
        "assume-role-with-web-identity",
        "--role-arn",
        role_arn,
        "--role-session-name",
        "app",
        "--web-identity-token",
        token,
    ]);
    assert_eq!(session["AssumedRoleUser"]["Arn"], "arn:aws:sts::123456789012:assumed-role/irsa-reader/app");
}

/// The `aws` tool in pods: the SDK's chain gives an IRSA pod its role's session (web identity
/// first) and a plain pod the node role from IMDS, once the hop limit lets its token back.
#[test]
fn pods_aws_cli_is_the_irsa_role_or_the_node_role_as_the_hop_limit_allows() {
    if !have_aws() {
        return;
    }
    let c = Native::up();
    let issuer = "https://kubernetes.default.svc.cluster.local";
    let role_arn = "arn:aws:iam::123456789012:role/irsa-reader";
    let aws = c.aws();
    let provider = aws.ok(&[
        "iam",
        "create-open-id-connect-provider",
        "--url",
        issuer,
        "--client-id-list",
        "sts.amazonaws.com",
    ]);
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": { "Federated": provider["OpenIDConnectProviderArn"] },
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": { "StringEquals": {
                "kubernetes.default.svc.cluster.local:sub": "system:serviceaccount:irsa:reader",
            } },
        }],
    })
    .to_string();
    aws.ok(&["iam", "create-role", "--role-name", "irsa-reader", "--assume-role-policy-document", &trust]);
    c.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: irsa}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: reader\n  namespace: irsa\n  annotations: {{eks.amazonaws.com/role-arn: \"{role_arn}\"}}\n---\napiVersion: v1\nkind: Pod\nmetadata: {{name: app, namespace: irsa}}\nspec:\n  serviceAccountName: reader\n  nodeName: node-1\n  containers: [{{name: t, image: nicolaka/netshoot:v0.13, command: [sleep, infinity]}}]\n"
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while c.ok(&["get", "pods", "-n", "irsa", "-o", "jsonpath={.items[*].status.phase}"]).trim() != "Running"
    {
        assert!(std::time::Instant::now() < deadline, "the pod never ran:\n{}", c.logs(40));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let exec_aws = |ns: &str, pod: &str| {
        c.run(&["exec", "-n", ns, pod, "--", "aws", "sts", "get-caller-identity"], None)
    };

    // The IRSA pod is its role's session, named as botocore names it.
    let r = exec_aws("irsa", "app");
    assert_eq!(r.code, Some(0), "{}{}\n{}", r.stdout, r.stderr, c.log("cloud"));
    let id: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {}", r.stdout));
    let arn = id["Arn"].as_str().unwrap();
    assert!(arn.starts_with("arn:aws:sts::123456789012:assumed-role/irsa-reader/botocore-session-"), "{arn}");
    assert_eq!(id["Account"], "123456789012");
    // The real CLI, given the same token and role, prints the same shape.
    let token = c.ok(&[
        "exec",
        "-n",
        "irsa",
        "app",
        "--",
        "cat",
        "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token.trim()).unwrap();
    // Its own HOME: the CLI caches web identity sessions in ~/.aws/cli/cache by role ARN.
    let real = aws.run(
        &["sts", "get-caller-identity"],
        &[
            ("HOME", dir.path().to_str().unwrap()),
            ("AWS_ACCESS_KEY_ID", ""),
            ("AWS_SECRET_ACCESS_KEY", ""),
            ("AWS_ROLE_ARN", role_arn),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", token_file.to_str().unwrap()),
        ],
    );
    assert_eq!(real.code, Some(0), "{}", real.stderr);
    let digits = |s: &str| s.chars().map(|c| if c.is_ascii_digit() { '0' } else { c }).collect::<String>();
    let shape = |s: &str| {
        let v: serde_json::Value = serde_json::from_str(s).unwrap();
        digits(&s.replace(v["UserId"].as_str().unwrap().split(':').next().unwrap(), "AROA"))
    };
    assert_eq!(shape(&r.stdout), shape(&real.stdout), "ours:\n{}real:\n{}", r.stdout, real.stdout);

    // A pod without IRSA falls back to IMDS: with hop limit 1 its token never comes back, and
    // IMDSv1 is off, so the chain ends empty after botocore's 1 s timeout.
    let r = exec_aws("default", "podnet");
    assert_eq!(
        (r.code, r.stdout.as_str(), r.stderr.as_str()),
        (
            Some(255),
            "",
            "Unable to locate credentials. You can configure credentials by running \"aws configure\".\n"
        )
    );

    // The admin raises the hop limit to 2: the pod is the node role.
    let (_, imds_token) = c.token("hostnet");
    let (_, instance_id) = c.curl(
        "hostnet",
        &[
            "-H",
            &format!("X-aws-ec2-metadata-token: {imds_token}"),
            "http://169.254.169.254/latest/meta-data/instance-id",
        ],
    );
    aws.ok(&[
        "ec2",
        "modify-instance-metadata-options",
        "--instance-id",
        &instance_id,
        "--http-put-response-hop-limit",
        "2",
    ]);
    let r = exec_aws("default", "podnet");
    assert_eq!(r.code, Some(0), "{}{}", r.stdout, r.stderr);
    let id: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(
        id["Arn"],
        format!("arn:aws:sts::123456789012:assumed-role/netlab-NodeInstanceRole/{instance_id}").as_str(),
        "{}",
        r.stdout
    );
    // The IRSA pod is still its role: web identity comes before IMDS in the chain.
    let r = exec_aws("irsa", "app");
    assert!(r.stdout.contains("assumed-role/irsa-reader/"), "{}{}", r.stdout, r.stderr);
}
