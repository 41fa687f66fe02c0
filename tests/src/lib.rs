//! Harness for end-to-end tests: start the real netlab binaries as child processes (killed on
//! drop), and run the real `netlab` CLI against them.
//!
//! The binaries are found next to the test executable's directory (`target/<profile>/`), where
//! `cargo test --workspace` builds them (the apiserver's and the CLI's own integration tests make
//! cargo build their binaries).

use std::{
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::core::v1::Event;
use netlab_client::{Client, ListParams};
use netlab_proto::apiserver::v1::{ListRequest, Resource, api_server_client::ApiServerClient};

pub mod native;
pub mod otlp;
pub mod parts;

/// The path of a workspace binary built beside the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests with `cargo test --workspace` (or `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1 (free when asked; tests bind it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// A running `netlab-apiserver`, killed (SIGKILL) when dropped.
pub struct Apiserver {
    /// Its gRPC address.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    extra: Vec<String>,
    child: Option<Child>,
}

// === impl Apiserver ===

impl Apiserver {
    /// Starts an apiserver on a free port with its store in `data_dir`, and waits until it serves.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Self {
        let mut server = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        // Another test may take the free port between asking and binding: try a few.
        for _ in 0..5 {
            server.addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            match server.spawn() {
                Ok(()) => return server,
                Err(why) => eprintln!("retrying on another port: {why}"),
            }
        }
        panic!("netlab-apiserver did not start on five ports");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new(bin("netlab-apiserver"))
            .arg("--listen")
            .arg(self.addr.to_string())
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra)
            .env("RUST_LOG", "warn")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn netlab-apiserver");
        self.child = Some(child);
        self.wait_ready()
    }

    /// `kill -9`: no chance to flush or clean up.
    pub fn kill9(&mut self) {
        kill9(self.child.take());
    }

    /// Starts it again on the same address and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        if let Err(why) = self.spawn() {
            panic!("restart on {}: {why}", self.addr);
        }
    }

    /// `http://127.0.0.1:PORT`, for `--server`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = self.url();
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(format!("netlab-apiserver exited during startup: {status}"));
            }
            // On its own thread, so that tests running inside a Tokio runtime can call this too.
            let ready = std::thread::scope(|s| {
                s.spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                    rt.block_on(async {
                        let mut client = ApiServerClient::connect(url.clone()).await.ok()?;
                        let req = ListRequest { resource: Resource::Namespaces as i32, ..Default::default() };
                        let list = client.list(req).await.ok()?.into_inner();
                        // Bootstrapped: default, kube-system, kube-public, kube-node-lease.
                        (list.items.len() >= 4).then_some(())
                    })
                })
                .join()
                .ok()
                .flatten()
            });
            if ready.is_some() {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "netlab-apiserver at {url} not ready after 20s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Apiserver {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// SIGKILL and reap `child`, if any.
fn kill9(child: Option<Child>) {
    if let Some(mut child) = child {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Held around `netlab up` in tests that start native clusters side by side: `up` probes for a
/// free cluster-DNS address (127.0.k.253:53) and its dns binds it a moment later, so two `up`s
/// at the same instant could pick the same one. A person starts one cluster at a time.
pub fn native_up_lock() -> std::sync::MutexGuard<'static, ()> {
    static UP: std::sync::Mutex<()> = std::sync::Mutex::new(());
    UP.lock().unwrap_or_else(|e| e.into_inner())
}

/// One plain HTTP/1.1 answer.
#[derive(Debug)]
pub struct HttpReply {
    /// The status code (0: no connection).
    pub status: u16,
    /// The status line and headers, as sent.
    pub head: String,
    /// The body (the server closes the connection after it).
    pub body: String,
}

// === impl HttpReply ===

impl HttpReply {
    /// A header's value (names compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// `GET path` over one HTTP/1.1 connection to `addr` (`host:port`), read to its close.
pub fn http_get(addr: &str, path: &str) -> HttpReply {
    use std::io::{Read as _, Write as _};
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return HttpReply { status: 0, head: String::new(), body: String::new() };
    };
    let _ = write!(conn, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    let _ = conn.read_to_string(&mut response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    HttpReply { status, head: head.to_string(), body: body.to_string() }
}

/// What one `netlab` run printed.
#[derive(Debug)]
pub struct Run {
    /// Exit code (None if killed by a signal).
    pub code: Option<i32>,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

// === impl Run ===

impl Run {
    /// Panics with both streams unless the command succeeded.
    pub fn ok(self) -> Self {
        assert_eq!(self.code, Some(0), "netlab failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs the real `netlab` CLI against `server` with `args`, feeding `stdin` if given.
pub fn netlab(server: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(bin("netlab"));
    cmd.args(args).env("NETLAB_SERVER", server).env_remove("NETLAB_NAMESPACE");
    run(cmd, stdin)
}

/// Runs `cmd` to its end, feeding `stdin` if given (else none), and collects what it printed.
pub fn run(mut cmd: Command, stdin: Option<&str>) -> Run {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    if let Some(input) = stdin {
        use std::io::Write as _;
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let Output { status, stdout, stderr } = child.wait_with_output().expect("output");
    Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Any other netlab binary (controller-manager, scheduler, ...) as a child process, killed
/// (SIGKILL) when dropped. Readiness is the caller's to check, through the API it acts on.
pub struct Component {
    bin: String,
    args: Vec<String>,
    child: Option<Child>,
}

// === impl Component ===

impl Component {
    /// Starts `bin` (a workspace binary name, e.g. `netlab-scheduler`) with `args`.
    pub fn start(bin: &str, args: &[&str]) -> Self {
        let mut c = Self { bin: bin.into(), args: args.iter().map(|s| s.to_string()).collect(), child: None };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let child = Command::new(self::bin(&self.bin))
            .args(&self.args)
            .env("RUST_LOG", std::env::var("NETLAB_E2E_LOG").unwrap_or_else(|_| "warn".into()))
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.bin));
        self.child = Some(child);
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        kill9(self.child.take());
    }

    /// How it exited, if it has (without waiting).
    pub fn try_wait(&mut self) -> Option<std::process::ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// Kill and start again with the same arguments.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for Component {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `f` to completion on a multi-threaded Tokio runtime of its own, for a `#[test]`.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime").block_on(f)
}

/// A Tokio runtime of two worker threads, for a `#[test]` that runs several futures on it.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

/// The Events in `namespace` about the object named `name` with `reason` (none if the list
/// fails), as `kubectl get events --field-selector` finds them.
pub async fn events_for(client: &Client, namespace: &str, name: &str, reason: &str) -> Vec<Event> {
    let params = ListParams {
        namespace: namespace.into(),
        fields: format!("involvedObject.name={name},reason={reason}"),
        ..Default::default()
    };
    client.list::<Event>(&params).await.map(|(items, _)| items).unwrap_or_default()
}

/// Polls `check` every 50 ms until it returns Some, or panics with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
