//! A native cluster (`netlab up --detach` in a data dir of its own), driven through the real
//! `netlab` CLI the way a person at a terminal drives it, and stopped (`netlab down`) when
//! dropped. The labs, AWS and native-mode scenarios share it.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use crate::{Run, bin, free_port, native_up_lock, run};

/// A running native cluster.
pub struct NativeCluster {
    dir: tempfile::TempDir,
}

// === impl NativeCluster ===

impl NativeCluster {
    /// `netlab up --detach` without the demo workload, spans exported every 200 ms to the trace
    /// store `up` starts; returns once two nodes are Ready. A failed `up` panics with the tail of
    /// every process's log.
    pub fn up() -> Self {
        Self::up_with(&[], &[])
    }

    /// [`Self::up`] with more `netlab up` flags (`--eks`) and environment (ipamd's
    /// `WARM_IP_TARGET`, ...), which the lab's processes inherit.
    pub fn up_with(flags: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("a data dir");
        let port = free_port().to_string();
        let cluster = Self { dir };
        let out = {
            let _one = native_up_lock();
            let mut args = vec!["up", "--detach", "--apiserver-port", &port];
            args.extend_from_slice(flags);
            cluster.run_env(&args, env, None)
        };
        if out.code != Some(0) {
            panic!("netlab up: {}{}", out.stderr, cluster.logs(5));
        }
        cluster.wait_for_nodes(2);
        cluster
    }

    /// The data dir: `cluster.json`, `logs/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The source tree's labs, which `netlab lab` reads here.
    pub fn labs_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../labs")
    }

    /// `netlab --data-dir DIR ARGS`, with `stdin` if given; the environment a user's shell
    /// might carry for another cluster is cleared.
    pub fn run(&self, args: &[&str], stdin: Option<&str>) -> Run {
        self.run_env(args, &[], stdin)
    }

    /// [`Self::run`] with `env` added.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(bin("netlab"));
        cmd.arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("NETLAB_DEMO", "0")
            .env("NETLAB_LABS_DIR", Self::labs_dir())
            .env("OTEL_BSP_SCHEDULE_DELAY", "200")
            .env_remove("NETLAB_SERVER")
            .env_remove("NETLAB_JAEGER_URL")
            .env_remove("NETLAB_NAMESPACE")
            .env_remove("NETLAB_AWS_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("NETLAB_EKS")
            .envs(env.iter().copied());
        run(cmd, stdin)
    }

    /// [`Self::run`] that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args, None);
        assert_eq!(out.code, Some(0), "netlab {args:?}:\nstdout: {}\nstderr: {}", out.stdout, out.stderr);
        out.stdout
    }

    /// `netlab apply -f -` of `manifest`, which must succeed.
    pub fn apply(&self, manifest: &str) {
        let out = self.run(&["apply", "-f", "-"], Some(manifest));
        assert_eq!(out.code, Some(0), "apply: {}\n{}", out.stdout, out.stderr);
    }

    /// Waits (60 s at most) until `n` nodes are Ready.
    pub fn wait_for_nodes(&self, n: usize) {
        let started = Instant::now();
        loop {
            let out = self.run(
                &[
                    "get",
                    "nodes",
                    "-o",
                    "jsonpath={.items[*].status.conditions[?(@.type==\"Ready\")].status}",
                ],
                None,
            );
            if out.stdout.split_whitespace().filter(|s| *s == "True").count() >= n {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "{n} nodes Ready: {}", out.stdout);
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The last `lines` lines of every process's log, for a failure message.
    pub fn logs(&self, lines: usize) -> String {
        let mut logs = String::new();
        let mut entries: Vec<_> =
            std::fs::read_dir(self.dir.path().join("logs")).into_iter().flatten().flatten().collect();
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(lines).collect();
            logs.push_str(&format!(
                "\n== {}\n{}",
                entry.path().display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ));
        }
        logs
    }

    /// One process's log (`cloud`, `node-1`, ...).
    pub fn log(&self, process: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("logs/{process}.log"))).unwrap_or_default()
    }
}

impl Drop for NativeCluster {
    fn drop(&mut self) {
        let _ = self.run(&["down"], None);
    }
}
