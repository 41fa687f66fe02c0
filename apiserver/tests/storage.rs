//! A damaged store refuses to start, naming the file: a truncated, bit-flipped or foreign
//! `registry.redb` must never come up as an empty cluster (whose controllers would then
//! "repair" the world to match it). Black-box, through the binary.

use std::{
    path::Path,
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// Runs the apiserver on `dir` until it exits (or 20 s, when it is killed: it started).
fn run(dir: &Path) -> (Option<i32>, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let health = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_netlab-apiserver"))
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--healthz-bind-address", &format!("127.0.0.1:{health}")])
        .arg("--data-dir")
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let Output { status, stderr, .. } = child.wait_with_output().unwrap();
    (status.code(), String::from_utf8_lossy(&stderr).into_owned())
}

/// A store with a cluster in it (the bootstrap objects), written by a real start.
fn written(dir: &Path) -> Vec<u8> {
    let (code, _) = run(dir);
    assert_eq!(code, None, "the first start serves (and is killed)");
    std::fs::read(dir.join("registry.redb")).unwrap()
}

#[test]
fn a_damaged_store_is_refused_with_the_file_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let good = written(&dir);
    let file = dir.join("registry.redb");
    let refused = |what: &str, bytes: &[u8], expect: &str| {
        std::fs::write(&file, bytes).unwrap();
        let (code, stderr) = run(&dir);
        assert_eq!(code, Some(1), "{what}: the apiserver must exit 1, it said:\n{stderr}");
        assert!(
            stderr.contains(&format!("opening the store at {}", file.display())) && stderr.contains(expect),
            "{what}: {expect:?} and the file's path not in:\n{stderr}"
        );
        assert!(stderr.contains("refusing to serve an empty cluster"), "{what}:\n{stderr}");
        // Nothing of what was there is thrown away (redb's own recovery may grow the file).
        let after = std::fs::read(&file).unwrap();
        assert!(
            after.len() >= bytes.len(),
            "{what}: the file shrank from {} to {} bytes",
            bytes.len(),
            after.len()
        );
    };
    // redb words each damage its own way; what matters is the refusal and the path.
    refused("truncated", &good[..good.len() / 3], "I/O error");
    refused("not a database", b"this is not a redb file\n", "Not a redb database");
    let mut flipped = good.clone();
    for b in flipped.iter_mut().take(512) {
        *b ^= 0xa5;
    }
    refused("header overwritten", &flipped, "redb");

    // The good file still starts.
    std::fs::write(&file, &good).unwrap();
    assert_eq!(run(&dir).0, None);
}
