//! The binary's command line, and a bad value refused with the flag named. (Being an integration
//! test also makes `cargo test --workspace` build the binary that tests/e2e and `netlab up` run.)

use std::process::Command;

#[test]
fn flags_and_a_bad_value() {
    let bin = env!("CARGO_BIN_EXE_netlab-traces");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--otlp-bind", "--http-bind", "--max-spans", "--log-format"] {
        assert!(help.contains(flag), "{flag} in --help");
    }
    let bad = Command::new(bin).args(["--max-spans", "0"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--max-spans"));
    let bad = Command::new(bin).args(["--http-bind", "not-an-address"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--http-bind"));
}
