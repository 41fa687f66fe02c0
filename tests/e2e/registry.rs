//! The `cloud` process's first part, as clients outside the lab see it: the OCI registry through
//! a plain HTTP/1.1 client and Debian's skopeo, and the upstream resolver through Debian's dig.

use std::{
    io::{Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    process::{Command, Stdio},
    time::Duration,
};

use netlab_e2e::parts::Cloud;

/// `netlab-cloud` on free ports, its resolver pointing the registries' and AWS' names at `advertise`.
fn start_cloud(advertise: &str) -> Cloud {
    Cloud::start(&["--advertise-address", advertise])
}

/// One HTTP/1.1 exchange: status, headers (lowercase names), body.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
}

fn http(addr: SocketAddr, method: &str, path: &str) -> Reply {
    let mut s = TcpStream::connect(addr).expect("connect to the registry");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/vnd.oci.image.manifest.v1+json\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of headers");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: raw[split + 4..].to_vec() }
}

/// `sha256:<hex>` by coreutils' sha256sum, independent of the code under test.
fn sha256(bytes: &[u8]) -> String {
    let mut child =
        Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("sha256sum");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    format!("sha256:{}", String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap())
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo must be installed (Debian package skopeo; .ci/run installs it)")
}

#[test]
fn registry_serves_real_oci_images() {
    let cloud = start_cloud("127.0.0.1");
    let r = cloud.registry;

    let base = http(r, "GET", "/v2/");
    assert_eq!(base.status, 200);
    assert_eq!(base.header("docker-distribution-api-version"), Some("registry/2.0"));

    // HEAD and GET of a manifest agree; the digest is the content's sha256.
    let head = http(r, "HEAD", "/v2/library/nginx/manifests/latest");
    let get = http(r, "GET", "/v2/library/nginx/manifests/latest");
    assert_eq!((head.status, get.status), (200, 200));
    assert!(head.body.is_empty());
    assert_eq!(head.header("content-type"), Some("application/vnd.oci.image.manifest.v1+json"));
    assert_eq!(head.header("content-length"), Some(get.body.len().to_string().as_str()));
    let digest = sha256(&get.body);
    assert_eq!(head.header("docker-content-digest"), Some(digest.as_str()));
    assert_eq!(get.header("docker-content-digest"), Some(digest.as_str()));
    let by_digest = http(r, "GET", &format!("/v2/library/nginx/manifests/{digest}"));
    assert_eq!(by_digest.body, get.body);

    // Config and layer blobs match their descriptors.
    let manifest = get.json();
    let config_digest = manifest["config"]["digest"].as_str().unwrap();
    let config = http(r, "GET", &format!("/v2/library/nginx/blobs/{config_digest}"));
    assert_eq!(config.status, 200);
    assert_eq!(sha256(&config.body), config_digest);
    assert_eq!(config.body.len() as u64, manifest["config"]["size"].as_u64().unwrap());
    let config = config.json();
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["config"]["Labels"]["io.netlab.app"], "echo");
    assert_eq!(config["config"]["ExposedPorts"], serde_json::json!({"80/tcp": {}}));
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(manifest["layers"][0]["mediaType"], "application/vnd.oci.image.layer.v1.tar");
    let layer = http(r, "GET", &format!("/v2/library/nginx/blobs/{layer_digest}"));
    assert_eq!(sha256(&layer.body), layer_digest);
    assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
    // GNU tar reads it (and checks every header checksum).
    let mut tar =
        Command::new("tar").args(["-tvf", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    tar.stdin.take().unwrap().write_all(&layer.body).unwrap();
    let listing = tar.wait_with_output().unwrap();
    assert!(listing.status.success(), "tar: {listing:?}");
    assert!(String::from_utf8_lossy(&listing.stdout).contains("etc/netlab/app.json"), "{listing:?}");

    // Errors, with the spec's codes and bodies.
    let bad_tag = http(r, "GET", "/v2/library/nginx/manifests/9.99");
    assert_eq!(bad_tag.status, 404);
    assert_eq!(bad_tag.json()["errors"][0]["code"], "MANIFEST_UNKNOWN");
    assert_eq!(bad_tag.json()["errors"][0]["message"], "manifest unknown");
    let bad_name = http(r, "GET", "/v2/library/ngnix/manifests/latest");
    assert_eq!(bad_name.status, 404);
    assert_eq!(bad_name.json()["errors"][0]["code"], "NAME_UNKNOWN");
    let bad_blob = http(r, "GET", &format!("/v2/library/nginx/blobs/sha256:{}", "0".repeat(64)));
    assert_eq!(bad_blob.status, 404);
    assert_eq!(bad_blob.json()["errors"][0]["code"], "BLOB_UNKNOWN");
    let head_404 = http(r, "HEAD", "/v2/library/nginx/manifests/9.99");
    assert_eq!(head_404.status, 404);
    assert!(head_404.body.is_empty());
    assert_eq!(http(r, "PUT", "/v2/library/nginx/manifests/x").status, 405);

    // Listings, multi-segment names included.
    let tags = http(r, "GET", "/v2/registry.k8s.io/nginx-slim/tags/list").json();
    assert_eq!(tags, serde_json::json!({"name": "registry.k8s.io/nginx-slim", "tags": ["0.27", "0.8"]}));
    let catalog = http(r, "GET", "/v2/_catalog").json();
    assert_eq!(catalog["repositories"].as_array().unwrap().len(), 10);
    let page = http(r, "GET", "/v2/library/nginx/tags/list?n=2");
    assert_eq!(page.json()["tags"], serde_json::json!(["1.25", "1.26"]));
    assert_eq!(page.header("link"), Some("</v2/library/nginx/tags/list?last=1.26&n=2>; rel=\"next\""));

    // Debian's skopeo, as the issue asks.
    let image = format!("docker://{r}/library/nginx:latest");
    let inspect = skopeo(&["inspect", "--tls-verify=false", &image]);
    assert!(inspect.status.success(), "skopeo inspect: {}", String::from_utf8_lossy(&inspect.stderr));
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Digest"], digest.as_str());
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Labels"]["io.netlab.app"], "echo");
    assert_eq!(inspect["Layers"][0], layer_digest);
    assert!(inspect["RepoTags"].as_array().unwrap().iter().any(|t| t == "stable"));
    let raw = skopeo(&["inspect", "--raw", "--tls-verify=false", &image]);
    assert!(raw.status.success());
    assert_eq!(sha256(&raw.stdout), digest);
    let missing = skopeo(&["inspect", "--tls-verify=false", &format!("docker://{r}/library/nginx:9.99")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("manifest unknown"), "{missing:?}");
    // A full pull: skopeo verifies every blob against its digest and size.
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}:x", dir.path().display());
    let copy = skopeo(&["copy", "--src-tls-verify=false", &format!("docker://{r}/library/redis:7"), &dest]);
    assert!(copy.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&copy.stderr));
}

/// dig's output for a query against the cloud's resolver.
fn dig(cloud: &Cloud, args: &[&str]) -> String {
    let port = cloud.dns.port().to_string();
    let mut all = vec!["@127.0.0.1", "-p", &port, "+time=2", "+tries=3"];
    all.extend_from_slice(args);
    let out =
        Command::new("dig").args(&all).output().expect("dig must be installed (Debian package dnsutils)");
    assert!(out.status.success(), "dig {all:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The header flags line of dig's output, e.g. "qr aa rd ra".
fn flags(out: &str) -> String {
    let line = out.lines().find(|l| l.starts_with(";; flags:")).unwrap_or_else(|| panic!("no flags: {out}"));
    line.trim_start_matches(";; flags:").split(';').next().unwrap().trim().to_string()
}

fn status(out: &str) -> String {
    let line = out.lines().find(|l| l.contains("status:")).unwrap_or_else(|| panic!("no status: {out}"));
    line.split("status: ").nth(1).unwrap().split(',').next().unwrap().to_string()
}

/// The records of one section (`ANSWER`, `AUTHORITY`) as whitespace-joined lines.
fn section(out: &str, name: &str) -> Vec<String> {
    let marker = format!(";; {name} SECTION:");
    out.lines()
        .skip_while(|l| *l != marker)
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn upstream_resolver_answers_dig() {
    let cloud = start_cloud("10.1.2.3");

    let a = dig(&cloud, &["example.com", "A"]);
    assert_eq!(status(&a), "NOERROR");
    assert_eq!(flags(&a), "qr aa rd ra");
    assert_eq!(section(&a, "ANSWER"), vec!["example.com. 300 IN A 93.184.215.14"]);

    assert_eq!(
        dig(&cloud, &["+short", "example.com", "AAAA"]).trim(),
        "2606:2800:21f:cb07:6820:80da:af6b:8b2c"
    );
    assert_eq!(dig(&cloud, &["+short", "example.com", "MX"]).trim(), "0 .");
    assert_eq!(dig(&cloud, &["+short", "example.com", "TXT"]).trim(), "\"v=spf1 -all\"");
    let mut ns: Vec<String> =
        dig(&cloud, &["+short", "example.com", "NS"]).lines().map(String::from).collect();
    ns.sort();
    assert_eq!(ns, vec!["a.iana-servers.net.", "b.iana-servers.net."]);
    assert!(dig(&cloud, &["+short", "example.com", "SOA"]).starts_with("ns.icann.org. noc.dns.icann.org. "));
    assert_eq!(dig(&cloud, &["+short", "api.example.com"]).trim(), "93.184.215.34");

    // CNAME followed, the query's case kept, over TCP too.
    let www = dig(&cloud, &["+tcp", "WWW.Example.com", "A"]);
    assert_eq!(
        section(&www, "ANSWER"),
        vec!["WWW.Example.com. 300 IN CNAME example.com.", "example.com. 300 IN A 93.184.215.14"]
    );
    assert!(www.contains("(TCP)"), "{www}");

    // NXDOMAIN and NODATA, each with the zone's SOA.
    let nx = dig(&cloud, &["nope.example.com", "A"]);
    assert_eq!(status(&nx), "NXDOMAIN");
    assert_eq!(flags(&nx), "qr aa rd ra");
    assert!(section(&nx, "ANSWER").is_empty());
    assert_eq!(
        section(&nx, "AUTHORITY"),
        vec!["example.com. 3600 IN SOA ns.icann.org. noc.dns.icann.org. 2024081466 7200 3600 1209600 3600"]
    );
    let nodata = dig(&cloud, &["api.example.com", "AAAA"]);
    assert_eq!(status(&nodata), "NOERROR");
    assert!(section(&nodata, "ANSWER").is_empty());
    assert_eq!(section(&nodata, "AUTHORITY").len(), 1);
    assert!(section(&nodata, "AUTHORITY")[0].starts_with("example.com. 3600 IN SOA"));

    // A name nobody in this world serves: NXDOMAIN from the root, relayed (RA, no AA).
    let outside = dig(&cloud, &["orders.shop.svc.cluster.local", "A"]);
    assert_eq!(status(&outside), "NXDOMAIN");
    assert_eq!(flags(&outside), "qr rd ra");
    assert!(
        section(&outside, "AUTHORITY")[0]
            .starts_with(". 86400 IN SOA a.root-servers.net. nstld.verisign-grs.com.")
    );

    // AWS endpoints and registry hosts point at the advertised address.
    for name in [
        "ec2.us-east-1.amazonaws.com",
        "sts.us-east-1.amazonaws.com",
        "api.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com",
        "registry-1.docker.io",
        "registry.k8s.io",
    ] {
        assert_eq!(dig(&cloud, &["+short", name]).trim(), "10.1.2.3", "{name}");
    }
    let aws_soa = dig(&cloud, &["amazonaws.com", "SOA"]);
    assert_eq!(flags(&aws_soa), "qr aa rd ra");
    assert!(
        section(&aws_soa, "ANSWER")[0]
            .starts_with("amazonaws.com. 900 IN SOA dns-external-master.amazon.com. root.amazon.com.")
    );
    // An empty non-terminal inside the zone is NODATA, not NXDOMAIN.
    assert_eq!(status(&dig(&cloud, &["dkr.ecr.us-east-1.amazonaws.com", "A"])), "NOERROR");
}
