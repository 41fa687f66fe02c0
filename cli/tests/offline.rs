//! Black-box tests of the `netlab` binary that need no apiserver: what a user sees when the server
//! is unreachable or the input is wrong. (Tests against a real apiserver live in tests/e2e.)
//! Having integration tests here also makes `cargo test --workspace` build the `netlab` binary
//! that tests/e2e drives.

use std::process::Command;

fn netlab(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netlab"))
        .args(args)
        .env_remove("NETLAB_SERVER")
        .output()
        .expect("run netlab");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn an_unreachable_server_reads_like_kubectl() {
    // Port 1 on loopback: nothing listens there.
    let (code, _, stderr) = netlab(&["--server", "127.0.0.1:1", "get", "pods"]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        "The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?"
    );
}

#[test]
fn a_malformed_manifest_fails_before_contacting_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("svc.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports: [\n")
        .unwrap();
    let (code, stdout, stderr) = netlab(&["--server", "127.0.0.1:1", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    assert!(stderr.starts_with("error: error parsing ") && stderr.contains("line"), "{stderr}");
}
