//! The binary's command line, and a bad value refused with the flag named. (Being an integration
//! test also makes `cargo test --workspace` build the binary that tests/e2e runs.)

use std::process::Command;

#[test]
fn flags_and_a_bad_value() {
    let bin = env!("CARGO_BIN_EXE_netlab-dns");
    let help = Command::new(bin).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in ["--listen", "--upstream", "--advertise-address", "--ready-listen", "--metrics-listen"] {
        assert!(help.contains(flag), "{flag} in --help");
    }
    let bad = Command::new(bin).args(["--listen", "not-an-address"]).output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--listen"));
}
