//! The EKS labs: the image-pull ones (`ecr-node-role`, `irsa-not-for-pulls`, `imagepullbackoff`) in a
//! native cluster, through the real CLI: started (the cloud's IAM really changed, the pulls
//! really failing), checked failing with what a person would see, fixed by the reference
//! solution and by a second correct fix made with the aws CLI, and reset — the account's roles
//! back as they were before the lab, whatever the fix added.

use std::time::{Duration, Instant};

use netlab_e2e::native::NativeCluster;

const NODE_ROLE: &str = "netlab-NodeInstanceRole";
const ECR_READ: &str = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";
/// How long a fix may take: the kubelet retries a failed pull after its back-off (10 s
/// doubling), so a fix seconds after the failure is seen within a few of them.
const FIXED: Duration = Duration::from_secs(150);

/// The aws CLI (its absence skips these tests, as the other AWS tests do).
fn have_aws() -> bool {
    let ok = std::process::Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("SKIP: the aws CLI is not installed (.ci/run installs it from PyPI)");
    }
    ok
}

/// `aws ARGS` as the lab admin, with the environment `netlab aws env` prints.
fn aws(c: &NativeCluster, args: &[&str]) -> String {
    let env = c.ok(&["aws", "env"]);
    let mut cmd = std::process::Command::new("aws");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default());
    for (k, v) in env.lines().filter_map(|l| l.strip_prefix("export ")).filter_map(|l| l.split_once('=')) {
        cmd.env(k, v.trim_matches('"'));
    }
    let out = cmd.args(args).args(["--output", "json"]).output().expect("aws");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "aws {args:?}: {text}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The role's attached policy ARNs and inline policy names, sorted.
fn role(c: &NativeCluster, name: &str) -> (Vec<String>, Vec<String>) {
    let attached: serde_json::Value =
        serde_json::from_str(&aws(c, &["iam", "list-attached-role-policies", "--role-name", name])).unwrap();
    let mut arns: Vec<String> = attached["AttachedPolicies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PolicyArn"].as_str().unwrap().to_string())
        .collect();
    arns.sort();
    let inline: serde_json::Value =
        serde_json::from_str(&aws(c, &["iam", "list-role-policies", "--role-name", name])).unwrap();
    let mut names: Vec<String> =
        inline["PolicyNames"].as_array().unwrap().iter().map(|p| p.as_str().unwrap().to_string()).collect();
    names.sort();
    (arns, names)
}

fn start(c: &NativeCluster, id: &str) -> String {
    let out = c.run(&["lab", "start", id], None);
    if out.code != Some(0) {
        let pods = c.run(&["get", "pods", "-A", "-o", "wide"], None).stdout;
        let events = c.run(&["get", "events", "-A"], None).stdout;
        panic!("{id}: lab start:\n{}{}\n== pods\n{pods}\n== events\n{events}", out.stdout, out.stderr);
    }
    assert!(out.stdout.contains("`netlab lab check` checks your fix"), "{}", out.stdout);
    out.stdout
}

/// `lab check` fails, a ✘ line saying `observed`.
fn check_fails(c: &NativeCluster, id: &str, observed: &str) {
    let out = c.run(&["lab", "check"], None);
    assert_eq!(out.code, Some(1), "{id}: check passes before any fix:\n{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.lines().any(|l| l.starts_with('✘') && l.contains(observed)),
        "{id}: no ✘ line mentions {observed:?}:\n{}",
        out.stdout
    );
}

fn check_passes(c: &NativeCluster, id: &str) -> String {
    let started = Instant::now();
    loop {
        let out = c.run(&["lab", "check"], None);
        if out.code == Some(0) {
            assert!(out.stdout.contains(&format!("lab {id} passed")), "{}", out.stdout);
            return out.stdout;
        }
        assert!(started.elapsed() < FIXED, "{id}: check never passed:\n{}{}", out.stdout, out.stderr);
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn solve(c: &NativeCluster, id: &str) {
    let out = c.run(&["lab", "solution", "--apply"], None);
    assert_eq!(out.code, Some(0), "{id}: solution --apply:\n{}{}", out.stdout, out.stderr);
    check_passes(c, id);
}

fn reset(c: &NativeCluster, id: &str) -> String {
    let out = c.ok(&["lab", "reset"]);
    assert!(out.contains(&format!("Lab {id} reset")), "{out}");
    assert_ne!(c.run(&["get", "ns", "shop"], None).code, Some(0), "{id}: namespace shop is left after reset");
    out
}

/// Attaches an inline policy of just the pull's three actions to the node role: a correct fix
/// that is not the reference one.
fn inline_pull_policy(c: &NativeCluster) {
    let doc = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": "*"
        }]
    })
    .to_string();
    aws(
        c,
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            NODE_ROLE,
            "--policy-name",
            "ecr-pull",
            "--policy-document",
            &doc,
        ],
    );
}

#[test]
fn ecr_pull_labs_break_the_node_role_check_fix_and_restore_it() {
    if !have_aws() {
        return;
    }
    let c = NativeCluster::up();
    let before = role(&c, NODE_ROLE);
    assert!(before.0.contains(&ECR_READ.to_string()), "{before:?}");

    // ecr-node-role: the setup detached ECR read from the node role; the pods' pulls fail.
    let task = start(&c, "ecr-node-role");
    assert!(task.contains("123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx:1.27"), "{task}");
    assert!(!role(&c, NODE_ROLE).0.contains(&ECR_READ.to_string()), "setup detached the policy");
    check_fails(&c, "ecr-node-role", "the web pods run: observed Pending");
    check_fails(&c, "ecr-node-role", "the kubelet pulled the image from ECR: observed");
    let events = c.ok(&["get", "events", "-n", "shop"]);
    assert!(events.contains("no basic auth credentials") || events.contains("403 Forbidden"), "{events}");
    // A second correct fix: an inline policy with just the pull's actions.
    inline_pull_policy(&c);
    check_passes(&c, "ecr-node-role");
    // Reset takes the inline policy away and puts the managed one back.
    let out = reset(&c, "ecr-node-role");
    assert!(out.contains("inline policy ecr-pull deleted"), "{out}");
    assert_eq!(role(&c, NODE_ROLE), before, "reset restores the node role");

    // The reference solution; the nodes now hold tokens, so the failures are ECR's 403.
    start(&c, "ecr-node-role");
    check_fails(&c, "ecr-node-role", "the web pods run: observed Pending");
    solve(&c, "ecr-node-role");
    reset(&c, "ecr-node-role");
    assert_eq!(role(&c, NODE_ROLE), before, "reset restores the node role");

    // irsa-not-for-pulls: the IRSA role may read ECR, the node role may not; the pull fails.
    start(&c, "irsa-not-for-pulls");
    let irsa = role(&c, "shop-reports");
    assert_eq!(irsa.0, [ECR_READ], "the teammate's policy");
    check_fails(&c, "irsa-not-for-pulls", "the reports pod runs: observed Pending");
    check_fails(&c, "irsa-not-for-pulls", "the pull's role is named: observed not answered yet");
    c.ok(&["lab", "answer", "shop-reports"]);
    check_fails(&c, "irsa-not-for-pulls", "observed answered \"shop-reports\"");
    c.ok(&["lab", "answer", "netlab-NodeInstanceRole"]);
    // Another correct fix: the inline pull policy on the node role.
    inline_pull_policy(&c);
    let passed = check_passes(&c, "irsa-not-for-pulls");
    assert!(passed.contains("✔ the app calls AWS as shop-reports"), "{passed}");
    let out = reset(&c, "irsa-not-for-pulls");
    assert!(out.contains("iam role/shop-reports deleted"), "{out}");
    assert_eq!(role(&c, NODE_ROLE), before, "reset restores the node role");
    // The provider the lab registered for the cluster's issuer goes with it.
    assert!(out.contains("oidc-provider/kubernetes.default.svc.cluster.local deleted"), "{out}");
    let providers = aws(&c, &["iam", "list-open-id-connect-providers"]);
    assert!(!providers.contains("oidc-provider/kubernetes.default.svc.cluster.local"), "{providers}");

    start(&c, "irsa-not-for-pulls");
    solve(&c, "irsa-not-for-pulls");
    reset(&c, "irsa-not-for-pulls");
    assert_eq!(role(&c, NODE_ROLE), before, "reset restores the node role");
}

/// A Deployment of `image` in `shop`, as the imagepullbackoff lab writes them.
fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\n  namespace: shop\nspec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: {name}\n  template:\n    metadata:\n      labels:\n        app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\n        imagePullPolicy: Always\n"
    )
}

/// The `Failed to pull image` event messages in `shop`, by the pod's Deployment.
fn pull_failures(c: &NativeCluster) -> Vec<(String, String)> {
    let out = c.ok(&["get", "events", "-n", "shop", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let m = e["message"].as_str()?;
            let pod = e["involvedObject"]["name"].as_str()?;
            m.starts_with("Failed to pull image")
                .then(|| (pod.split('-').next().unwrap_or(pod).to_string(), m.to_string()))
        })
        .collect()
}

#[test]
fn imagepullbackoff_lab_tells_five_causes_apart_and_fixes_three() {
    if !have_aws() {
        return;
    }
    let c = NativeCluster::up();
    let before = role(&c, NODE_ROLE);

    start(&c, "imagepullbackoff");
    // Each pod's event names its cause, in containerd's words.
    let failures = pull_failures(&c);
    let of = |app: &str| {
        failures.iter().filter(|(a, _)| a == app).map(|(_, m)| m.as_str()).collect::<Vec<_>>().join("\n")
    };
    assert!(of("cart").contains("docker.io/library/httpd:2.44: not found"), "{failures:?}");
    assert!(
        of("catalog").contains("no basic auth credentials") || of("catalog").contains("403 Forbidden"),
        "{failures:?}"
    );
    assert!(of("checkout").contains("authorization failed: no basic auth credentials"), "{failures:?}");
    assert!(of("search").contains("toomanyrequests"), "{failures:?}");
    assert!(of("payments").contains("connection reset by peer"), "{failures:?}");
    check_fails(&c, "imagepullbackoff", "cart runs: observed Pending");
    check_fails(&c, "imagepullbackoff", "cart's cause is named: observed not answered yet");

    // Answers, one wrong; fixes other than the reference: an inline pull policy, httpd:latest,
    // nginx:1.28 from the ECR mirror.
    for (n, a) in [("1", "tag"), ("2", "iam"), ("3", "network"), ("4", "rate-limit"), ("5", "network")] {
        c.ok(&["lab", "answer", "--question", n, a]);
    }
    inline_pull_policy(&c);
    c.apply(&deployment("cart", "httpd:latest"));
    c.apply(&deployment("search", "123456789012.dkr.ecr.us-east-1.amazonaws.com/nginx:1.28"));
    let started = Instant::now();
    loop {
        let out = c.run(&["lab", "check"], None);
        assert_ne!(out.code, Some(0), "a wrong answer passes:\n{}", out.stdout);
        if out.stdout.contains("✔ search runs")
            && out.stdout.contains("✔ catalog runs")
            && out.stdout.contains("✔ cart runs")
        {
            assert!(
                out.stdout.contains("✘ checkout's cause is named: observed answered \"network\""),
                "{}",
                out.stdout
            );
            break;
        }
        assert!(started.elapsed() < FIXED, "the fixes never took:\n{}", out.stdout);
        std::thread::sleep(Duration::from_secs(2));
    }
    c.ok(&["lab", "answer", "--question", "3", "pull-secret"]);
    check_passes(&c, "imagepullbackoff");
    let out = reset(&c, "imagepullbackoff");
    assert!(out.contains("inline policy ecr-pull deleted"), "{out}");
    assert_eq!(role(&c, NODE_ROLE), before, "reset restores the node role");
    let faults = c.run(&["fault", "list"], None);
    assert!(faults.stderr.contains("No resources found"), "reset deleted the faults: {}", faults.stdout);

    // Deleting Docker Hub's limit is not a fix the lab accepts; the reference solution is.
    start(&c, "imagepullbackoff");
    c.ok(&["delete", "registrychaos", "dockerhub-rate-limit", "-n", "shop"]);
    check_fails(&c, "imagepullbackoff", "Docker Hub still limits nginx: observed");
    reset(&c, "imagepullbackoff");
    start(&c, "imagepullbackoff");
    solve(&c, "imagepullbackoff");
    reset(&c, "imagepullbackoff");
    assert_eq!(role(&c, NODE_ROLE), before, "reset restores the node role");
}

/// The `aws-node` container's env, as JSON text.
fn aws_node_env(c: &NativeCluster) -> String {
    c.ok(&[
        "get",
        "ds",
        "aws-node",
        "-n",
        "kube-system",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env}",
    ])
}

/// The Running batch pods' addresses, by pod name.
fn running_batch_ips(c: &NativeCluster) -> Vec<(String, String)> {
    let out = c.ok(&["get", "pods", "-n", "shop", "-l", "app=batch", "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut ips: Vec<(String, String)> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["status"]["podIP"].as_str().unwrap_or("").into(),
            )
        })
        .collect();
    ips.sort();
    ips
}

/// Stock kubectl against the cluster, or None (the test says so) where it is not installed.
fn kubectl(c: &NativeCluster, args: &[&str]) -> Option<String> {
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(args).env("KUBECONFIG", c.dir().join("kubeconfig"));
    let out = cmd.output().ok()?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubectl {args:?}: {text}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn eks_ip_exhaustion_lab_caps_enis_is_fixed_two_ways_and_reset_restores_aws_node() {
    let c = NativeCluster::up_with(&["--eks"], &[]);
    let env_before = aws_node_env(&c);
    assert!(!env_before.contains("MAX_ENI"), "{env_before}");

    // Broken: node-1 (t3.medium) may run 17 pods, but one ENI addresses 5 of the 15.
    start(&c, "eks-ip-exhaustion");
    assert!(aws_node_env(&c).contains(r#"{"name":"MAX_ENI","value":"1"}"#));
    check_fails(&c, "eks-ip-exhaustion", "every batch pod runs on node-1: observed");
    let events = c.ok(&["get", "events", "-n", "shop"]);
    assert!(
        events.contains("plugin type=\"aws-cni\" name=\"aws-cni\" failed (add): add cmd: failed to assign an IP address to container"),
        "{events}"
    );
    assert_eq!(running_batch_ips(&c).len(), 5, "one ENI, five pod addresses");
    let shown = c.ok(&["lab", "solution"]);
    assert!(
        shown.starts_with("kubectl set env daemonset/aws-node -n kube-system -c aws-node MAX_ENI-\n"),
        "{shown}"
    );
    assert!(shown.contains("--question 1 \"17\"") && shown.contains("--question 2 \"5\""), "{shown}");
    solve(&c, "eks-ip-exhaustion");
    reset(&c, "eks-ip-exhaustion");
    assert_eq!(aws_node_env(&c), env_before, "reset restores aws-node's env");

    // ipamd keeps ENIs beyond MAX_ENI (as upstream does): until it has freed the two the fix
    // attached (their addresses cool down 30 s, an ENI lives at least 60 s), a new run would
    // find 15 addresses and never break. A person waits the same minute.
    let started = Instant::now();
    while !c.ok(&["node", "enis", "node-1"]).ends_with("Total IPs: 5, assigned: 0\n") {
        assert!(
            started.elapsed() < FIXED,
            "node-1 keeps its extra ENIs: {}",
            c.ok(&["node", "enis", "node-1"])
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // A second run, fixed as a person would with kubectl.
    start(&c, "eks-ip-exhaustion");
    check_fails(&c, "eks-ip-exhaustion", "every batch pod runs on node-1: observed");
    c.ok(&["lab", "answer", "--question", "1", "17"]);
    c.ok(&["lab", "answer", "--question", "2", "5"]);
    let running = running_batch_ips(&c);
    if kubectl(&c, &["version", "--client"]).is_none() {
        eprintln!("SKIP: kubectl is not installed; the second fix needs it");
        reset(&c, "eks-ip-exhaustion");
        return;
    }
    // Prefix delegation alone: ipamd restarts in PD mode; the running pods keep their
    // addresses, but the one ENI's slots are all theirs and MAX_ENI=1 allows no other.
    kubectl(&c, &["set", "env", "ds/aws-node", "-n", "kube-system", "ENABLE_PREFIX_DELEGATION=true"]);
    std::thread::sleep(Duration::from_secs(15));
    assert_eq!(running_batch_ips(&c), running, "pods keep their addresses over ipamd's restart");
    check_fails(&c, "eks-ip-exhaustion", "every batch pod runs on node-1: observed");
    // A second ENI, filled with a /28 prefix, is a correct fix.
    kubectl(&c, &["set", "env", "ds/aws-node", "-n", "kube-system", "MAX_ENI=2"]);
    check_passes(&c, "eks-ip-exhaustion");
    let enis = c.ok(&["node", "enis", "node-1"]);
    assert!(enis.lines().any(|l| l.contains("/28") && l.contains("shop/batch-")), "{enis}");
    for (pod, ip) in &running {
        assert!(
            enis.lines().any(|l| l.contains(&format!("{ip}/32")) && l.ends_with(&format!("shop/{pod}"))),
            "{enis}"
        );
    }
    // Reset undoes the user's changes to aws-node too.
    let out = reset(&c, "eks-ip-exhaustion");
    assert!(out.contains("daemonset.apps/aws-node env restored"), "{out}");
    assert_eq!(aws_node_env(&c), env_before, "reset restores aws-node's env");
}

#[test]
fn eks_lab_refuses_a_cluster_without_the_vpc_cni_and_changes_nothing() {
    let c = NativeCluster::up();
    let out = c.run(&["lab", "start", "eks-ip-exhaustion"], None);
    assert_eq!(out.code, Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("lab \"eks-ip-exhaustion\" needs EKS worker nodes with the AWS VPC CNI")
            && out.stderr.contains("start the cluster with `netlab up --eks`"),
        "{}",
        out.stderr
    );
    assert_ne!(c.run(&["get", "ns", "shop"], None).code, Some(0), "namespace shop was created");
    let progress = c.run(&["get", "configmap", "netlab-labs", "-n", "kube-system"], None);
    assert_ne!(progress.code, Some(0), "progress was written: {}", progress.stdout);
}
