//! The binary's command line: kube-proxy's flag names, and bad values refused with the flag
//! named. (Being an integration test also makes `cargo test --workspace` build the binary that
//! tests/e2e runs.)

use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netlab-proxy"))
        .args(args)
        .env("NETLAB_PROXY_SERVER", "http://127.0.0.1:1")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn flags_are_kube_proxys() {
    let (code, help, _) = run(&["--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--server",
        "--hostname-override",
        "--kernel",
        "--proxy-mode",
        "--ipvs-scheduler",
        "--cluster-cidr",
        "--masquerade-all",
        "--iptables-min-sync-period",
        "--iptables-sync-period",
        "--healthz-bind-address",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
}

#[test]
fn bad_values_name_the_flag() {
    for (args, want) in [
        (&["--proxy-mode", "nftables"][..], "nftables mode is not supported by netlab-proxy"),
        (&["--proxy-mode", "kernelspace"][..], "kernelspace mode is for Windows nodes"),
        (
            &["--ipvs-scheduler", "fifo"][..],
            "[possible values: rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, mh]",
        ),
        (&["--iptables-min-sync-period", "fifty"][..], "invalid duration \"fifty\""),
        (&["--cluster-cidr", "10.244.0.0/33"][..], "--cluster-cidr"),
    ] {
        let (code, _, err) = run(args);
        assert_ne!(code, 0, "{args:?}");
        assert!(err.contains(args[0]), "{args:?} names the flag: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
