//! The binary's command line: kube-controller-manager's flag names, and bad values refused with
//! the flag named. (Being an integration test also makes `cargo test --workspace` build the
//! binary that tests/e2e runs.)

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netlab-controller-manager")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn flags_are_kube_controller_managers() {
    let (code, help, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--cluster-cidr",
        "--node-cidr-mask-size",
        "--max-endpoints-per-slice",
        "--node-monitor-grace-period",
        "--controllers",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
}

#[test]
fn a_bad_value_names_the_flag() {
    let (code, _, err) = run(&["--cluster-cidr", "10.244.0.0/33"]);
    assert_ne!(code, 0);
    assert!(err.contains("--cluster-cidr"), "{err}");
    let (code, _, err) = run(&["--node-monitor-grace-period", "fifty"]);
    assert_ne!(code, 0);
    assert!(err.contains("invalid duration \"fifty\""), "{err}");
}
