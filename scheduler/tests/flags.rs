//! The binary's command line, and a bad value refused with the flag named. (Being an integration
//! test also makes `cargo test --workspace` build the binary that tests/e2e runs.)

use std::process::Command;

#[test]
fn flags_and_a_bad_value() {
    let bin = env!("CARGO_BIN_EXE_netlab-scheduler");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--server", "--scheduler-name", "--healthz-bind-address"] {
        assert!(help.contains(flag), "{flag} in --help");
    }
    let bad = Command::new(bin)
        .args(["--max-in-flight", "0"])
        .env("NETLAB_SCHEDULER_SERVER", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--max-in-flight must be at least 1"));
}
