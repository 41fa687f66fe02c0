//! The published way to run the lab: compose.yaml with the locally built image. Needs a Docker
//! engine and the image (`scripts/build-image-offline.sh` or `docker compose build`), so these
//! tests are ignored by plain `cargo test`; `.ci/run` runs them when a Docker engine answers.

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

use netlab_e2e::{free_port, netlab};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `docker-compose` (1.29, as Debian ships it) or, failing that, `docker compose` (v2).
fn compose(project: &str, port: u16, args: &[&str]) -> Output {
    let (program, mut full): (&str, Vec<&str>) = if Command::new("docker-compose").arg("version").output().is_ok() {
        ("docker-compose", vec![])
    } else {
        ("docker", vec!["compose"])
    };
    full.extend(["-f", "compose.yaml", "-p", project]);
    full.extend(args);
    Command::new(program)
        .args(&full)
        .current_dir(repo())
        .env("NETLAB_APISERVER_PORT", port.to_string())
        // No Jaeger here (its image cannot be pulled on the project's machines): no export.
        .env("NETLAB_OTLP_ENDPOINT", "")
        .output()
        .expect("run compose")
}

struct Down<'a>(&'a str, u16);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = compose(self.0, self.1, &["down", "-v", "--remove-orphans"]);
    }
}

#[test]
#[ignore = "needs docker"]
fn compose_up_serves_the_api_inside_and_on_the_host() {
    let project = format!("netlab-e2e-{}", std::process::id());
    let port = free_port();
    let _down = Down(&project, port);
    let up = compose(&project, port, &["up", "-d", "apiserver"]);
    assert!(up.status.success(), "compose up: {}", String::from_utf8_lossy(&up.stderr));

    let started = Instant::now();
    let container = format!("{project}_apiserver_1");
    let health = |name: &str| {
        let out = Command::new("docker").args(["inspect", "-f", "{{.State.Health.Status}}", name]).output().ok()?;
        Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    // Compose v2 names containers with dashes.
    let container = if health(&container).is_some_and(|h| !h.is_empty()) { container } else { format!("{project}-apiserver-1") };
    loop {
        if health(&container).as_deref() == Some("healthy") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "apiserver not healthy: {:?}", health(&container));
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("apiserver healthy after {:?}", started.elapsed());

    let inside = compose(&project, port, &["exec", "-T", "apiserver", "netlab", "get", "svc", "-A"]);
    let table = String::from_utf8_lossy(&inside.stdout);
    assert!(inside.status.success(), "{}", String::from_utf8_lossy(&inside.stderr));
    assert!(table.contains("kubernetes") && table.contains("10.96.0.1 ") && table.contains("10.96.0.10"), "{table}");

    let host = netlab(&format!("127.0.0.1:{port}"), &["get", "ns", "-o", "name"], None).ok();
    assert!(host.stdout.contains("namespace/kube-system"), "{}", host.stdout);
}
