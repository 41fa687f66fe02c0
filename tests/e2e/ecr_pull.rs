//! An ECR image pulled as on EKS: the kubelet asks `ecr-credential-provider` (the real binary,
//! exec'd per its CredentialProviderConfig), which takes the node role's credentials from IMDS
//! as the node and calls ecr:GetAuthorizationToken; the pull carries the token as Basic auth.
//! Detaching AmazonEC2ContainerRegistryReadOnly from the node role breaks new pulls with the
//! texts EKS shows, two ways: a node that has no token yet gets the plugin's AccessDenied in the
//! kubelet's log and the anonymous `no basic auth credentials` in the pod's events; a node
//! still holding a cached token (6 h: half its life) gets ECR's 403 for ecr:BatchGetImage.
//! Re-attaching the policy mends both.

use std::time::{Duration, Instant};

use netlab_e2e::native::NativeCluster;

const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
const POLICY: &str = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly";
const ROLE: &str = "netlab-NodeInstanceRole";
const WAIT: Duration = Duration::from_secs(60);

fn image() -> String {
    format!("{ECR_HOST}/nginx:1.27")
}

/// A pod of the ECR image on `node`, pulled even if present.
fn pod(name: &str, node: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  nodeName: {node}\n  containers: [{{name: web, image: \"{}\", imagePullPolicy: Always}}]\n",
        image()
    )
}

fn wait_until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(started.elapsed() < WAIT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `(reason, message)` of each event of `pod`, oldest first.
fn events(c: &NativeCluster, pod: &str) -> Vec<(String, String)> {
    let out =
        c.ok(&["get", "events", "--field-selector", &format!("involvedObject.name={pod}"), "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    json["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (e["reason"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

/// The container's waiting reason followed by the pod's phase (`ImagePullBackOffPending`), or
/// the phase alone (`Running`).
fn state(c: &NativeCluster, pod: &str) -> String {
    let out = c.run(
        &[
            "get",
            "pod",
            pod,
            "-o",
            "jsonpath={.status.containerStatuses[0].state.waiting.reason}{.status.phase}",
        ],
        None,
    );
    out.stdout.trim().to_string()
}

fn aws(c: &NativeCluster, args: &[&str]) -> (Option<i32>, String) {
    let env = c.ok(&["aws", "env"]);
    let mut cmd = std::process::Command::new("aws");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::var_os("HOME").unwrap_or_default());
    for (k, v) in env.lines().filter_map(|l| l.strip_prefix("export ")).filter_map(|l| l.split_once('=')) {
        cmd.env(k, v.trim_matches('"'));
    }
    let out = cmd.args(args).output().expect("aws");
    (
        out.status.code(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn have_aws_and_plugin() -> bool {
    if !std::process::Command::new("aws").arg("--version").output().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIP: the aws CLI is not installed (.ci/run installs it from PyPI)");
        return false;
    }
    netlab_e2e::bin("ecr-credential-provider");
    true
}

/// Spans of the trace store `up` started, for `service`.
fn traces(c: &NativeCluster, service: &str) -> Vec<serde_json::Value> {
    use std::io::{Read as _, Write as _};
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.dir().join("cluster.json")).unwrap()).unwrap();
    let addr =
        record["jaeger_url"].as_str().expect("a trace store").trim_start_matches("http://").to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("the trace store");
    write!(
        s,
        "GET /api/traces?service={service}&limit=50 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let body =
        raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| raw[i + 4..].to_vec()).unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    json["data"].as_array().cloned().unwrap_or_default()
}

/// The names of `span`'s ancestors in `spans` (one trace), nearest first.
fn ancestors<'a>(spans: &'a [serde_json::Value], span: &'a serde_json::Value) -> Vec<&'a str> {
    let parent_of = |s: &serde_json::Value| {
        let id = s["references"].as_array()?.iter().find(|r| r["refType"] == "CHILD_OF")?["spanID"].clone();
        spans.iter().find(|p| p["spanID"] == id)
    };
    let mut names = Vec::new();
    let mut cur = parent_of(span);
    while let Some(p) = cur {
        names.push(p["operationName"].as_str().unwrap_or(""));
        cur = parent_of(p);
    }
    names
}

#[test]
fn ecr_images_pull_with_the_node_role_and_fail_without_its_ecr_permission() {
    if !have_aws_and_plugin() {
        return;
    }
    let c = NativeCluster::up();

    // 1. With AmazonEC2ContainerRegistryReadOnly on the node role (the default): it runs.
    c.apply(&pod("ecr-ok", "node-1"));
    wait_until("ecr-ok Running", || (state(&c, "ecr-ok") == "Running").then_some(()));
    let ev = events(&c, "ecr-ok");
    assert!(
        ev.iter().any(|(r, m)| r == "Pulled"
            && m.starts_with(&format!("Successfully pulled image \"{}\" in ", image()))),
        "{ev:?}"
    );

    // The pull's trace: kubelet pull → credential provider → the plugin → IMDS → ECR (with the
    // IAM decision) → registry.
    let trace = wait_until("the pull's trace with the plugin's spans", || {
        traces(&c, "ecr-credential-provider").into_iter().find(|t| {
            let names: Vec<&str> = t["spans"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["operationName"].as_str())
                .collect();
            ["kubelet pull image", "ecr-credential-provider", "ecr.GetAuthorizationToken", "registry request"]
                .iter()
                .all(|n| names.contains(n))
                // The cloud's spans too: IMDS's, ECR's (beside the plugin's client span of the
                // same name) and the registry's.
                && names.iter().any(|n| n.contains(&format!("/latest/meta-data/iam/security-credentials/{ROLE}")))
                && names.iter().filter(|n| **n == "ecr.GetAuthorizationToken").count() == 2
                && names.contains(&"HEAD /v2/{name}/manifests/{reference}")
        })
    });
    let spans = trace["spans"].as_array().unwrap();
    let names: Vec<&str> = spans.iter().filter_map(|s| s["operationName"].as_str()).collect();
    eprintln!("the pull's trace: {names:?}");
    // ECR's own span (the one with the IAM decision) and IMDS's sit under the plugin, which
    // sits under the kubelet's pull.
    let ecr = spans
        .iter()
        .find(|s| {
            s["operationName"] == "ecr.GetAuthorizationToken"
                && s["tags"].as_array().into_iter().flatten().any(|t| t["key"] == "aws.iam.decision")
        })
        .expect("ECR's span");
    let decision = ecr["tags"].as_array().unwrap().iter().find(|t| t["key"] == "aws.iam.decision").unwrap();
    assert_eq!(decision["value"], "Allow", "{ecr}");
    let imds = spans
        .iter()
        .find(|s| s["operationName"] == format!("GET /latest/meta-data/iam/security-credentials/{ROLE}"))
        .expect("IMDS's span");
    let chain = ["ecr-credential-provider", "kubelet credential provider", "kubelet pull image"];
    for span in [ecr, imds] {
        let up = ancestors(spans, span);
        assert!(chain.iter().all(|n| up.contains(n)), "{}: ancestors {up:?}", span["operationName"]);
    }
    let head = spans.iter().find(|s| s["operationName"] == "HEAD /v2/{name}/manifests/{reference}").unwrap();
    assert!(ancestors(spans, head).starts_with(&["registry request", "kubelet pull image"]), "{head}");

    // 2. Without the policy.
    let (code, out) = aws(&c, &["iam", "detach-role-policy", "--role-name", ROLE, "--policy-arn", POLICY]);
    assert_eq!(code, Some(0), "{out}");

    // node-2 has no token cached: the plugin runs and is refused; the kubelet logs why and pulls
    // anonymously, so the pod's event is ECR's 401 as containerd words it.
    c.apply(&pod("ecr-denied", "node-2"));
    let failed = wait_until("ecr-denied Failed to pull", || {
        events(&c, "ecr-denied")
            .into_iter()
            .find(|(r, m)| r == "Failed" && m.starts_with("Failed to pull image"))
    });
    let reference = format!("{ECR_HOST}/nginx:1.27");
    assert_eq!(
        failed.1,
        format!(
            "Failed to pull image \"{}\": rpc error: code = Unknown desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials",
            image()
        )
    );
    let log = wait_until("the kubelet's log line", || {
        c.log("node-2")
            .lines()
            .find(|l| l.contains("Failed getting credential from external registry credential provider"))
            .map(str::to_string)
    });
    eprintln!("node-2 kubelet: {log}");
    for part in [
        &format!(
            "error execing credential provider plugin ecr-credential-provider for image {ECR_HOST}/nginx: exit status 1: "
        ),
        "main.go:361] Error running credential provider plugin: operation error ECR: GetAuthorizationToken, https response error StatusCode: 400, RequestID: ",
        &format!("api error AccessDeniedException: User: arn:aws:sts::123456789012:assumed-role/{ROLE}/"),
        " is not authorized to perform: ecr:GetAuthorizationToken on resource: * because no identity-based policy allows the ecr:GetAuthorizationToken action",
    ] {
        assert!(log.contains(part), "{part:?} not in:\n{log}");
    }
    // That pull's trace shows the refusal where it happened: IAM's decision on ECR's span, under
    // the plugin under the kubelet's pull.
    wait_until("the refused pull's trace", || {
        traces(&c, "ecr-credential-provider").into_iter().find(|t| {
            let spans = t["spans"].as_array().cloned().unwrap_or_default();
            spans.iter().any(|s| {
                s["operationName"] == "ecr.GetAuthorizationToken"
                    && s["tags"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|t| t["key"] == "aws.iam.decision" && t["value"] == "ImplicitDeny")
                    && ancestors(&spans, s).contains(&"ecr-credential-provider")
                    && ancestors(&spans, s).contains(&"kubelet pull image")
            })
        })
    });
    wait_until("ecr-denied ImagePullBackOff", || {
        state(&c, "ecr-denied").starts_with("ImagePullBackOff").then_some(())
    });
    let ev = events(&c, "ecr-denied");
    for want in ["Error: ErrImagePull", "Error: ImagePullBackOff"] {
        assert!(ev.iter().any(|(r, m)| r == "Failed" && m == want), "{want}: {ev:?}");
    }
    assert!(
        ev.iter().any(|(r, m)| r == "BackOff" && m == &format!("Back-off pulling image \"{}\"", image())),
        "{ev:?}"
    );

    // node-1 still holds the token from step 1 (cached for half its 12 h): it gets past the
    // token, and ECR refuses the manifest for ecr:BatchGetImage.
    c.apply(&pod("ecr-cached", "node-1"));
    let failed = wait_until("ecr-cached Failed to pull", || {
        events(&c, "ecr-cached")
            .into_iter()
            .find(|(r, m)| r == "Failed" && m.starts_with("Failed to pull image"))
    });
    assert_eq!(
        failed.1,
        format!(
            "Failed to pull image \"{}\": rpc error: code = Unknown desc = failed to pull and unpack image \"{reference}\": failed to resolve reference \"{reference}\": unexpected status from HEAD request to https://{ECR_HOST}/v2/nginx/manifests/1.27: 403 Forbidden",
            image()
        )
    );

    // 3. Re-attached: a new pod on node-2 runs (failures are not cached), and so does one on
    // node-1 with its cached token.
    let (code, out) = aws(&c, &["iam", "attach-role-policy", "--role-name", ROLE, "--policy-arn", POLICY]);
    assert_eq!(code, Some(0), "{out}");
    c.apply(&pod("ecr-again", "node-2"));
    c.apply(&pod("ecr-again-1", "node-1"));
    wait_until("ecr-again Running", || (state(&c, "ecr-again") == "Running").then_some(()));
    wait_until("ecr-again-1 Running", || (state(&c, "ecr-again-1") == "Running").then_some(()));
}
