//! RegistryChaos across real processes: the cloud's registry (given `--apiserver`) answers the
//! faulted repositories as a real registry does, seen by a plain HTTP client and by skopeo; and a
//! node-agent reports each answer with containerd's and the kubelet's texts and backoff.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    process::Command,
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::core::v1::{Container, Namespace, Pod, PodSpec},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use netlab_chaos::{RegistryChaos, RegistryChaosSpec, lab::RegistryAction};
use netlab_client::Client;
use netlab_e2e::{
    Apiserver, block_on, events_for, eventually, free_port,
    parts::{self, Cloud, Node},
};

const NS: &str = "default";
const WAIT: Duration = Duration::from_secs(60);
const RATE_LIMIT: &str = "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit";

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(NS.into()), ..Default::default() }
}

fn fault(
    name: &str,
    action: RegistryAction,
    repo: &str,
    code: Option<u16>,
    delay: Option<&str>,
) -> RegistryChaos {
    RegistryChaos {
        metadata: meta(name),
        spec: RegistryChaosSpec {
            action,
            repositories: vec![repo.into()],
            status_code: code,
            delay: delay.map(String::from),
            duration: None,
        },
        status: None,
    }
}

/// The faults of both scenarios: one per repository.
fn faults() -> Vec<RegistryChaos> {
    vec![
        fault("limit", RegistryAction::Error, "library/nginx*", Some(429), None),
        fault("deny", RegistryAction::Error, "library/httpd", Some(403), None),
        fault("auth", RegistryAction::Error, "library/redis", Some(401), None),
        fault("gone", RegistryAction::Error, "hashicorp/http-echo", Some(404), None),
        fault("down", RegistryAction::Error, "curlimages/curl", Some(503), None),
        fault("reset", RegistryAction::Unreachable, "library/busybox", None, None),
        fault("slow", RegistryAction::Delay, "netlab/echo", None, Some("400ms")),
    ]
}

async fn install(client: &Client) {
    let _ = client.create(&Namespace { metadata: meta(NS), ..Default::default() }).await;
    for f in faults() {
        client.create(&f).await.expect("create the fault");
    }
}

/// One HTTP/1.1 exchange; the status line and body, or the read error.
fn http(addr: SocketAddr, method: &str, path: &str) -> Result<(u16, String, String), std::io::Error> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((status, head.to_ascii_lowercase(), body.to_string()))
}

fn skopeo(registry: SocketAddr, image: &str) -> std::process::Output {
    Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{registry}/{image}")])
        .output()
        .expect("skopeo must be installed (Debian package skopeo)")
}

#[test]
fn the_registry_answers_faulted_repositories_as_real_registries_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Apiserver::start(&dir.path().join("api"), &[]);
    let url = api.url();
    let cloud = Cloud::start(&["--apiserver", &url]);
    let r = cloud.registry;
    block_on(async {
        let client = Client::new(&url).expect("client");
        install(&client).await;
        // The cloud's watch has them once the rate limit shows.
        eventually("the 429", WAIT, || async {
            (http(r, "GET", "/v2/library/nginx/manifests/1.27").ok()?.0 == 429).then_some(())
        })
        .await;

        let (status, head, body) = http(r, "GET", "/v2/library/nginx/manifests/1.27").unwrap();
        assert_eq!(status, 429);
        assert!(head.contains("ratelimit-remaining: 0;w=21600"), "{head}");
        assert_eq!(
            body.trim(),
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit"}]}"#
        );
        // Docker Hub answers HEADs while it rate-limits GETs.
        assert_eq!(http(r, "HEAD", "/v2/library/nginx/manifests/1.27").unwrap().0, 200);

        let (status, head, body) = http(r, "GET", "/v2/library/redis/manifests/7").unwrap();
        assert_eq!(status, 401);
        assert!(
            head.contains(&format!("www-authenticate: basic realm=\"http://{r}/\",service=\"cloud\"")),
            "{head}"
        );
        assert!(body.contains(r#""code":"UNAUTHORIZED","message":"authentication required""#), "{body}");
        let (status, _, body) = http(r, "GET", "/v2/library/httpd/manifests/2.4").unwrap();
        assert_eq!(status, 403);
        assert!(
            body.contains(r#""code":"DENIED","message":"requested access to the resource is denied""#),
            "{body}"
        );
        let (status, _, body) = http(r, "GET", "/v2/hashicorp/http-echo/manifests/1.0").unwrap();
        assert_eq!(status, 404);
        assert!(
            body.contains(r#""code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"1.0"}"#)
        );
        assert_eq!(http(r, "GET", "/v2/curlimages/curl/manifests/latest").unwrap().0, 503);
        // Unreachable: the request's connection is reset, no answer.
        let reset = http(r, "GET", "/v2/library/busybox/manifests/1.36").unwrap_err();
        assert_eq!(reset.kind(), ErrorKind::ConnectionReset, "{reset}");
        // Slow: answered, late. Other repositories and the base endpoint answer as usual.
        let started = Instant::now();
        assert_eq!(http(r, "GET", "/v2/netlab/echo/manifests/v1").unwrap().0, 200);
        assert!(started.elapsed() >= Duration::from_millis(400));
        assert_eq!(http(r, "GET", "/v2/nicolaka/netshoot/manifests/v0.13").unwrap().0, 200);
        assert_eq!(http(r, "GET", "/v2/").unwrap().0, 200);

        // skopeo, a real client of the distribution API, reads the same answers.
        let out = skopeo(r, "library/nginx:1.27");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(RATE_LIMIT), "{err}");
        // containers/image words a 403 by its code only.
        let out = skopeo(r, "library/httpd:2.4");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("reading manifest 2.4 in 127.0.0.1:"), "{err}");
        assert!(err.contains("/library/httpd: denied"), "{err}");
        let out = skopeo(r, "library/redis:7");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("authentication required"), "{err}");
        let out = skopeo(r, "hashicorp/http-echo:1.0");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("manifest unknown"), "{err}");
        let out = skopeo(r, "library/busybox:1.36");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("connection reset by peer"), "{err}");
        assert!(skopeo(r, "nicolaka/netshoot:v0.13").status.success());

        // The counters, under the reporter `cloud`.
        eventually("pullsRefused of limit", WAIT, || async {
            let f: RegistryChaos = client.get(NS, "limit").await.ok()?;
            f.status?.counters.get("cloud")?.get("pullsRefused").copied().filter(|n| *n >= 2)
        })
        .await;
        eventually("pullsDelayed of slow", WAIT, || async {
            let f: RegistryChaos = client.get(NS, "slow").await.ok()?;
            f.status?.counters.get("cloud")?.get("pullsDelayed").copied().filter(|n| *n >= 1)
        })
        .await;

        // Deleted, the repository answers again.
        client.delete::<RegistryChaos>(NS, "limit").await.expect("delete");
        eventually("nginx again", WAIT, || async {
            (http(r, "GET", "/v2/library/nginx/manifests/1.27").ok()?.0 == 200).then_some(())
        })
        .await;
        assert!(skopeo(r, "library/nginx:1.27").status.success());
    });
}

fn pod(name: &str, image: &str) -> Pod {
    Pod {
        metadata: meta(name),
        spec: Some(PodSpec {
            node_name: Some("node-1".into()),
            containers: vec![Container {
                name: "app".into(),
                image: Some(image.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    }
}

fn waiting(p: &Pod) -> Option<(String, String)> {
    let w = p.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.clone()?;
    Some((w.reason.unwrap_or_default(), w.message.unwrap_or_default()))
}

#[test]
fn the_kubelet_reports_each_registry_fault_like_containerd() {
    let dir = tempfile::tempdir().expect("tempdir");
    let api = Apiserver::start(&dir.path().join("api"), &[]);
    let url = api.url();
    let cloud = Cloud::start(&["--apiserver", &url]);
    let registry = cloud.registry_url();
    let _cm = parts::controller_manager(&url, &[]);
    let node = Node { name: "node-1", ip: "127.0.5.10", port: free_port() };
    let _agent = node.agent_scaled(&url, dir.path(), &registry, "0.05", &[]);
    block_on(async {
        let client = Client::new(&url).expect("client");
        install(&client).await;
        eventually("the cloud sees the faults", WAIT, || async {
            (http(cloud.registry, "GET", "/v2/library/nginx/manifests/1.27").ok()?.0 == 429).then_some(())
        })
        .await;
        let r = &registry;
        // image, then the message containerd gives the kubelet.
        let cases = [
            ("limited", "nginx:1.27", None),
            (
                "denied",
                "httpd:2.4",
                Some(format!("rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/library/httpd:2.4\": failed to resolve reference \"docker.io/library/httpd:2.4\": unexpected status from HEAD request to {r}/v2/library/httpd/manifests/2.4: 403 Forbidden")),
            ),
            (
                "unauthorized",
                "redis:7",
                Some("rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/library/redis:7\": failed to resolve reference \"docker.io/library/redis:7\": pull access denied, repository does not exist or may require authorization: authorization failed: no basic auth credentials".to_string()),
            ),
            (
                "gone",
                "hashicorp/http-echo:1.0",
                Some("rpc error: code = NotFound desc = failed to pull and unpack image \"docker.io/hashicorp/http-echo:1.0\": failed to resolve reference \"docker.io/hashicorp/http-echo:1.0\": docker.io/hashicorp/http-echo:1.0: not found".to_string()),
            ),
            (
                "down",
                "curlimages/curl:latest",
                Some(format!("rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/curlimages/curl:latest\": failed to resolve reference \"docker.io/curlimages/curl:latest\": unexpected status from HEAD request to {r}/v2/curlimages/curl/manifests/latest: 503 Service Unavailable")),
            ),
        ];
        for (name, image, _) in &cases {
            client.create(&pod(name, image)).await.expect("create pod");
        }
        client.create(&pod("reset", "busybox:1.36")).await.expect("create pod");
        for (name, image, want) in &cases {
            let failed = eventually(&format!("{name}: Failed to pull"), WAIT, || async {
                let events = events_for(&client, NS, name, "Failed").await;
                events.into_iter().filter_map(|e| e.message).find(|m| m.starts_with("Failed to pull image"))
            })
            .await;
            let prefix = format!("Failed to pull image {image:?}: ");
            let err = failed.strip_prefix(&prefix).unwrap_or_else(|| panic!("{failed}"));
            match want {
                Some(w) => assert_eq!(err, w),
                None => {
                    let head = format!(
                        "rpc error: code = Unknown desc = failed to pull and unpack image \"docker.io/library/nginx:1.27\": failed to copy: httpReadSeeker: failed open: unexpected status code {r}/v2/library/nginx/manifests/sha256:"
                    );
                    assert!(err.starts_with(&head), "{err}");
                    assert!(
                        err.ends_with(&format!(": 429 Too Many Requests - Server message: {RATE_LIMIT}")),
                        "{err}"
                    );
                }
            }
            // ErrImagePull, then ImagePullBackOff carrying the same error.
            let (reason, message) = eventually(&format!("{name}: ImagePullBackOff"), WAIT, || async {
                let p: Pod = client.get(NS, name).await.ok()?;
                waiting(&p).filter(|(r, _)| r == "ImagePullBackOff")
            })
            .await;
            assert_eq!(reason, "ImagePullBackOff");
            assert_eq!(message, format!("Back-off pulling image {image:?}: ErrImagePull: {err}"));
            let want = format!("Back-off pulling image {image:?}");
            eventually(&format!("{name}: BackOff event"), WAIT, || async {
                let backoff = events_for(&client, NS, name, "BackOff").await;
                backoff.iter().any(|e| e.message.as_deref() == Some(want.as_str())).then_some(())
            })
            .await;
        }
        let reset = eventually("reset: Failed to pull", WAIT, || async {
            let events = events_for(&client, NS, "reset", "Failed").await;
            events.into_iter().filter_map(|e| e.message).find(|m| m.starts_with("Failed to pull image"))
        })
        .await;
        let host = r.trim_start_matches("http://");
        assert!(
            reset.ends_with(&format!("failed to do request: Head \"{r}/v2/library/busybox/manifests/1.36\": read tcp {host}: read: connection reset by peer")),
            "{reset}"
        );

        // The rate limit lifted, the pod's next pull (after its backoff) succeeds.
        client.delete::<RegistryChaos>(NS, "limit").await.expect("delete");
        eventually("limited: Running", WAIT, || async {
            let p: Pod = client.get(NS, "limited").await.ok()?;
            (p.status?.phase.as_deref() == Some("Running")).then_some(())
        })
        .await;
    });
}
