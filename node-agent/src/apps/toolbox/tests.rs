//! Tests of the toolbox against a fake [`Pod`] whose peers are scripted in-memory servers
//! (exact bytes in, exact bytes out), canned connect failures, or the real echo and kv apps on
//! a [`SocketTable`]. Times are real but short; where a message carries elapsed milliseconds
//! the number is checked against a range and then masked as `N`.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::*;
use crate::{
    apps::{Identity, echo, kv, netexec},
    podnet::{Connected, Error, ErrorKind},
    resolver::{HErrno, ResolveFailure},
    sockets::{Protocol, SocketTable},
};

const POD_IP: &str = "10.244.1.5";
const LOCAL: &str = "10.244.1.5:40000";

/// One step of a scripted server.
#[derive(Debug, Clone)]
enum Step {
    /// Reads a request head (and a Content-Length body) and records it.
    ReadRequest,
    Write(Vec<u8>),
    Sleep(u64),
    /// Keeps the connection open forever.
    Hold,
    /// Reads a request (as `ReadRequest`) and writes the answer of the first pair whose needle
    /// the request contains (every part of it, parts separated by ` && `); an empty answer, or
    /// no match, holds the connection unanswered.
    Route(Vec<(&'static str, Vec<u8>)>),
}

/// What connecting to an address does.
#[derive(Debug, Clone)]
enum Peer {
    Script(Vec<String>, Vec<Step>),
    Refused(Vec<String>),
    TimedOut(Vec<String>),
    Unreachable(Vec<String>),
    /// `connect` never returns (the tool's own timer must fire).
    Hang,
    /// Connects through the socket table to this address (a real app).
    Table(SocketAddr),
}

struct FakePod {
    names: HashMap<String, Result<Vec<IpAddr>, ResolveError>>,
    peers: HashMap<SocketAddr, Peer>,
    table: SocketTable,
    env: Vec<(String, String)>,
    /// Files the pod's volumes mount.
    files: HashMap<String, String>,
    /// The requests scripted servers received.
    requests: Arc<Mutex<Vec<String>>>,
    /// The timeout each `connect` was given.
    timeouts: Mutex<Vec<Duration>>,
}

impl FakePod {
    fn new() -> FakePod {
        FakePod {
            names: HashMap::new(),
            peers: HashMap::new(),
            table: SocketTable::new(),
            env: vec![
                ("PATH".into(), "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()),
                ("HOSTNAME".into(), "client-7d4f9".into()),
                ("ORDERS_SERVICE_HOST".into(), "10.96.0.20".into()),
            ],
            files: HashMap::new(),
            requests: Arc::default(),
            timeouts: Mutex::default(),
        }
    }

    fn with_env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    fn with_file(mut self, path: &str, content: &str) -> Self {
        self.files.insert(path.into(), content.into());
        self
    }

    fn name(mut self, name: &str, ips: &[&str]) -> Self {
        let ips = ips.iter().map(|ip| ip.parse().unwrap()).collect();
        self.names.insert(name.into(), Ok(ips));
        self
    }

    fn name_err(mut self, name: &str, e: ResolveError) -> Self {
        self.names.insert(name.into(), Err(e));
        self
    }

    fn peer(mut self, addr: &str, peer: Peer) -> Self {
        self.peers.insert(addr.parse().unwrap(), peer);
        self
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    fn timeouts(&self) -> Vec<Duration> {
        self.timeouts.lock().unwrap().clone()
    }
}

/// Reads one request (head and a Content-Length body), logs it and returns it; None at EOF.
async fn read_request(s: &mut tokio::io::DuplexStream, log: &Arc<Mutex<Vec<String>>>) -> Option<String> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte).await.unwrap_or(0) == 0 {
            return None;
        }
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    got.extend(body);
    let text = String::from_utf8_lossy(&got).into_owned();
    log.lock().unwrap().push(text.clone());
    Some(text)
}

async fn serve_script(mut s: tokio::io::DuplexStream, steps: Vec<Step>, log: Arc<Mutex<Vec<String>>>) {
    for step in steps {
        match step {
            Step::ReadRequest => {
                if read_request(&mut s, &log).await.is_none() {
                    return;
                }
            }
            Step::Route(routes) => {
                let Some(request) = read_request(&mut s, &log).await else { return };
                match routes
                    .into_iter()
                    .find(|(needle, _)| needle.split(" && ").all(|part| request.contains(part)))
                {
                    Some((_, answer)) if !answer.is_empty() => {
                        if s.write_all(&answer).await.is_err() {
                            return;
                        }
                    }
                    _ => std::future::pending::<()>().await,
                }
            }
            Step::Write(bytes) => {
                if s.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Step::Sleep(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Step::Hold => std::future::pending::<()>().await,
        }
    }
}

#[async_trait::async_trait]
impl PodNetwork for FakePod {
    async fn connect(&self, dst: SocketAddr, timeout: Duration) -> Result<Connected, Error> {
        self.timeouts.lock().unwrap().push(timeout);
        let local: SocketAddr = LOCAL.parse().unwrap();
        match self.peers.get(&dst).cloned() {
            None => Err(ErrorKind::Refused.into()),
            Some(Peer::Refused(hops)) => Err(Error::new(ErrorKind::Refused, hops)),
            Some(Peer::TimedOut(hops)) => Err(Error::new(ErrorKind::TimedOut, hops)),
            Some(Peer::Unreachable(hops)) => Err(Error::new(ErrorKind::Unreachable, hops)),
            Some(Peer::Hang) => std::future::pending().await,
            Some(Peer::Script(hops, steps)) => {
                let (client, server) = tokio::io::duplex(64 * 1024);
                tokio::spawn(serve_script(server, steps, self.requests.clone()));
                Ok(Connected { stream: Box::new(client), local, hops })
            }
            Some(Peer::Table(to)) => match self.table.connect(local, to) {
                Ok(stream) => Ok(Connected { stream: Box::new(stream), local, hops: vec![] }),
                Err(_) => Err(ErrorKind::Refused.into()),
            },
        }
    }

    /// The pod has no DNS server: every datagram meets ICMP port-unreachable.
    async fn exchange(
        &self,
        _dst: SocketAddr,
        _datagram: Vec<u8>,
        _timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        Err(ErrorKind::Refused.into())
    }

    /// Datagrams go to the pod's socket table (a netexec server there), from `source_port`.
    async fn exchange_from(
        &self,
        source_port: Option<u16>,
        dst: SocketAddr,
        datagram: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let mut local: SocketAddr = LOCAL.parse().unwrap();
        local.set_port(source_port.unwrap_or(40001));
        let Ok(mut s) = self.table.open(local, dst, crate::sockets::Protocol::Udp) else {
            return Err(ErrorKind::Refused.into());
        };
        s.write_all(&datagram).await.unwrap();
        s.shutdown().await.unwrap();
        let mut reply = Vec::new();
        match tokio::time::timeout(timeout, s.read_to_end(&mut reply)).await {
            Ok(Ok(_)) if !reply.is_empty() => Ok(reply),
            _ => Err(ErrorKind::TimedOut.into()),
        }
    }
}

#[async_trait::async_trait]
impl Pod for FakePod {
    fn network(&self) -> &dyn PodNetwork {
        self
    }

    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        self.names.get(name).cloned().unwrap_or(Err(ResolveError::NotFound))
    }

    fn hostname(&self) -> &str {
        "client-7d4f9"
    }

    fn ip(&self) -> IpAddr {
        POD_IP.parse().unwrap()
    }

    fn resolv_conf(&self) -> &str {
        "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    }

    fn env(&self) -> &[(String, String)] {
        &self.env
    }

    fn file(&self, path: &str) -> Option<String> {
        self.files.get(path).cloned()
    }

    fn ip_addr(&self) -> String {
        "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n".into()
    }

    fn ip_route(&self) -> String {
        "default via 10.244.1.1 dev eth0\n".into()
    }
}

/// A resolver failure (`EAI_AGAIN`) for `name`.
fn failed(name: &str) -> ResolveError {
    ResolveError::Failed(ResolveFailure { name: name.into(), error: HErrno::TryAgain, attempts: vec![] })
}

/// Runs `cmd` and returns (exit code, stdout, stderr).
async fn exec(pod: &FakePod, cmd: &[&str]) -> (i32, String, String) {
    let argv: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
    let (out, mut rx) = Output::new();
    let code = run(&argv, pod, &out).await.expect("the command exists");
    drop(out);
    let (mut stdout, mut stderr) = (String::new(), String::new());
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Chunk::Stdout(b) => stdout.push_str(&String::from_utf8_lossy(&b)),
            Chunk::Stderr(b) => stderr.push_str(&String::from_utf8_lossy(&b)),
        }
    }
    (code, stdout, stderr)
}

/// Replaces the number after `after ` (curl, "after N ms"/"after N milliseconds") with `N`,
/// checking it lies in `range`.
fn mask_ms(s: &str, range: std::ops::RangeInclusive<u64>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("after ") {
        out.push_str(&rest[..i + 6]);
        rest = &rest[i + 6..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            let n: u64 = digits.parse().unwrap();
            assert!(range.contains(&n), "{n} ms not in {range:?}: {s}");
            out.push('N');
            rest = &rest[digits.len()..];
        }
    }
    out.push_str(rest);
    out
}

fn http(status: &str, headers: &[&str], body: &str) -> Vec<u8> {
    let mut r = format!("HTTP/1.1 {status}\r\n");
    for h in headers {
        r.push_str(h);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.push_str(body);
    r.into_bytes()
}

/// A server that reads the request and answers `response`, then keeps the connection open
/// (a keep-alive server).
fn answers(response: Vec<u8>) -> Peer {
    Peer::Script(vec![], vec![Step::ReadRequest, Step::Write(response), Step::Hold])
}

fn ok_hello() -> Peer {
    answers(http("200 OK", &["Content-Type: text/plain", "Content-Length: 6"], "hello\n"))
}

const GET_ROOT: &str = "GET / HTTP/1.1\r\nHost: 10.96.0.20\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n";
const METER_HEAD: &str = "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n                                 Dload  Upload   Total   Spent    Left  Speed\n";
const METER_ZERO: &str = "\r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0";

// === curl ===

#[tokio::test]
async fn curl_content_length_body_and_request() {
    let pod = FakePod::new().peer("10.96.0.20:80", ok_hello());
    let (code, out, err) = exec(&pod, &["curl", "-s", "http://10.96.0.20/"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "hello\n", ""));
    assert_eq!(pod.requests(), vec![GET_ROOT.to_string()]);
}

#[tokio::test]
async fn curl_chunked_body_across_reads() {
    let steps = vec![
        Step::ReadRequest,
        Step::Write(http("200 OK", &["Transfer-Encoding: chunked"], "3\r\nabc\r\n4\r")),
        Step::Sleep(20),
        Step::Write(b"\ndefg\r\n".to_vec()),
        Step::Sleep(20),
        Step::Write(b"0\r\n\r\n".to_vec()),
        Step::Hold,
    ];
    let pod = FakePod::new().peer("10.96.0.20:80", Peer::Script(vec![], steps));
    let (code, out, err) = exec(&pod, &["curl", "-sSv", "http://10.96.0.20/"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "abcdefg");
    assert_eq!(
        err,
        "*   Trying 10.96.0.20:80...\n\
         * Connected to 10.96.0.20 (10.96.0.20) port 80 (#0)\n\
         > GET / HTTP/1.1\r\n> Host: 10.96.0.20\r\n> User-Agent: curl/7.88.1\r\n> Accept: */*\r\n> \r\n\
         < HTTP/1.1 200 OK\r\n< Transfer-Encoding: chunked\r\n< \r\n\
         { [10 bytes data]\n{ [7 bytes data]\n{ [5 bytes data]\n\
         * Connection #0 to host 10.96.0.20 left intact\n"
    );
}

#[tokio::test]
async fn curl_verbose_with_name_and_hops() {
    let hops = vec![
        "DNAT 10.96.0.20:80 -> 10.244.2.7:80 (KUBE-SVC-ORDERS)".to_string(),
        "route via node-2 (10.0.0.12)".to_string(),
    ];
    let response =
        http("200 OK", &["Content-Type: text/plain; charset=utf-8", "Content-Length: 6"], "hello\n");
    let steps = vec![Step::ReadRequest, Step::Write(response), Step::Hold];
    let pod = FakePod::new().name("orders", &["10.96.0.20"]).peer("10.96.0.20:80", Peer::Script(hops, steps));
    let (code, out, err) = exec(&pod, &["curl", "-sv", "orders"]).await;
    assert_eq!((code, out.as_str()), (0, "hello\n"));
    assert_eq!(
        err,
        "*   Trying 10.96.0.20:80...\n\
         * netlab: DNAT 10.96.0.20:80 -> 10.244.2.7:80 (KUBE-SVC-ORDERS)\n\
         * netlab: route via node-2 (10.0.0.12)\n\
         * Connected to orders (10.96.0.20) port 80 (#0)\n\
         > GET / HTTP/1.1\r\n> Host: orders\r\n> User-Agent: curl/7.88.1\r\n> Accept: */*\r\n> \r\n\
         < HTTP/1.1 200 OK\r\n< Content-Type: text/plain; charset=utf-8\r\n< Content-Length: 6\r\n< \r\n\
         { [6 bytes data]\n\
         * Connection #0 to host orders left intact\n"
    );
    assert_eq!(
        pod.requests()[0],
        "GET / HTTP/1.1\r\nHost: orders\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\r\n"
    );
}

#[tokio::test]
async fn curl_http10_body_until_close() {
    let steps = vec![Step::ReadRequest, Step::Write(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbye\n".to_vec())];
    let pod = FakePod::new().peer("10.96.0.20:8080", Peer::Script(vec![], steps));
    let (code, out, err) = exec(&pod, &["curl", "-sv", "http://10.96.0.20:8080/x?y=1"]).await;
    assert_eq!((code, out.as_str()), (0, "bye\n"));
    assert_eq!(
        err,
        "*   Trying 10.96.0.20:8080...\n\
         * Connected to 10.96.0.20 (10.96.0.20) port 8080 (#0)\n\
         > GET /x?y=1 HTTP/1.1\r\n> Host: 10.96.0.20:8080\r\n> User-Agent: curl/7.88.1\r\n> Accept: */*\r\n> \r\n\
         * HTTP 1.0, assume close after body\n\
         < HTTP/1.0 200 OK\r\n< Server: old\r\n< \r\n\
         { [4 bytes data]\n\
         * Closing connection 0\n"
    );
}

#[tokio::test]
async fn curl_refused() {
    let hops = vec!["REJECT: service default/orders has no endpoints".to_string()];
    let pod = FakePod::new().name("orders", &["10.96.0.20"]).peer("10.96.0.20:80", Peer::Refused(hops));
    let cases: &[(&[&str], &str)] = &[
        (&["curl", "-s", "http://orders/"], ""),
        (
            &["curl", "-sS", "http://orders/"],
            "curl: (7) Failed to connect to orders port 80 after N ms: Couldn't connect to server\n",
        ),
        (
            &["curl", "-s", "-S", "-v", "http://orders/"],
            "*   Trying 10.96.0.20:80...\n\
             * netlab: REJECT: service default/orders has no endpoints\n\
             * connect to 10.96.0.20 port 80 failed: Connection refused\n\
             * Failed to connect to orders port 80 after N ms: Couldn't connect to server\n\
             * Closing connection 0\n\
             curl: (7) Failed to connect to orders port 80 after N ms: Couldn't connect to server\n",
        ),
        (
            &["curl", "http://orders/"],
            "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n                                 Dload  Upload   Total   Spent    Left  Speed\n\
             \r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0\
             \r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0\n\
             curl: (7) Failed to connect to orders port 80 after N ms: Couldn't connect to server\n",
        ),
    ];
    for (cmd, want) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str()), (7, ""), "{cmd:?}");
        assert_eq!(mask_ms(&err, 0..=50), *want, "{cmd:?}");
    }
}

#[tokio::test]
async fn curl_unreachable_then_next_address() {
    let pod = FakePod::new()
        .name("web", &["10.244.9.9", "10.244.2.7"])
        .peer("10.244.9.9:80", Peer::Unreachable(vec!["no route to 10.244.9.9".into()]))
        .peer("10.244.2.7:80", answers(http("204 No Content", &[], "")));
    let (code, out, err) = exec(&pod, &["curl", "-sv", "-w", "%{http_code}\\n", "web"]).await;
    assert_eq!((code, out.as_str()), (0, "204\n"));
    assert!(
        err.starts_with(
            "*   Trying 10.244.9.9:80...\n\
             * netlab: no route to 10.244.9.9\n\
             * connect to 10.244.9.9 port 80 failed: No route to host\n\
             *   Trying 10.244.2.7:80...\n\
             * Connected to web (10.244.2.7) port 80 (#0)\n"
        ),
        "{err}"
    );
    assert!(
        err.ends_with("< HTTP/1.1 204 No Content\r\n< \r\n* Connection #0 to host web left intact\n"),
        "{err}"
    );
}

#[tokio::test]
async fn curl_connect_timeouts() {
    let drop = Peer::Hang;
    let pod = FakePod::new()
        .peer("10.96.0.20:80", drop)
        .peer("10.96.0.21:80", Peer::TimedOut(vec!["DROP (NetworkPolicy default/deny-all)".into()]));
    // --max-time binds: "Connection timed out after N milliseconds".
    let (code, _, err) = exec(&pod, &["curl", "-sS", "-m", "0.3", "http://10.96.0.20/"]).await;
    assert_eq!(code, 28);
    assert_eq!(mask_ms(&err, 300..=400), "curl: (28) Connection timed out after N milliseconds\n");
    // --connect-timeout binds: "Failed to connect ... Timeout was reached".
    let (code, _, err) =
        exec(&pod, &["curl", "-sSv", "--connect-timeout", "0.3", "--max-time", "5", "http://10.96.0.20/"])
            .await;
    assert_eq!(code, 28);
    assert_eq!(
        mask_ms(&err, 300..=400),
        "*   Trying 10.96.0.20:80...\n\
         * ipv4 connect timeout after Nms, move on!\n\
         * Failed to connect to 10.96.0.20 port 80 after N ms: Timeout was reached\n\
         * Closing connection 0\n\
         curl: (28) Failed to connect to 10.96.0.20 port 80 after N ms: Timeout was reached\n"
    );
    // Neither: the kernel gives up (ETIMEDOUT), which curl reports as a failed connect.
    let (code, _, err) = exec(&pod, &["curl", "-sSv", "http://10.96.0.21/"]).await;
    assert_eq!(code, 7);
    assert_eq!(
        mask_ms(&err, 0..=50),
        "*   Trying 10.96.0.21:80...\n\
         * netlab: DROP (NetworkPolicy default/deny-all)\n\
         * connect to 10.96.0.21 port 80 failed: Connection timed out\n\
         * Failed to connect to 10.96.0.21 port 80 after N ms: Couldn't connect to server\n\
         * Closing connection 0\n\
         curl: (7) Failed to connect to 10.96.0.21 port 80 after N ms: Couldn't connect to server\n"
    );
    // The timeout each connect was given: -m, --connect-timeout, the kernel's.
    let t = pod.timeouts();
    assert!(t[0] <= Duration::from_millis(300) && t[0] > Duration::from_millis(250), "{t:?}");
    assert!(t[1] <= Duration::from_millis(300) && t[1] > Duration::from_millis(250), "{t:?}");
    assert_eq!(t[2], KERNEL_CONNECT_TIMEOUT);
}

#[tokio::test]
async fn curl_operation_timeouts() {
    let partial = Peer::Script(
        vec![],
        vec![Step::ReadRequest, Step::Write(http("200 OK", &["Content-Length: 100"], "abc")), Step::Hold],
    );
    let silent = Peer::Script(vec![], vec![Step::ReadRequest, Step::Hold]);
    let pod = FakePod::new().peer("10.96.0.20:80", partial).peer("10.96.0.21:80", silent);
    let (code, out, err) = exec(&pod, &["curl", "-sS", "-m", "0.3", "10.96.0.20"]).await;
    assert_eq!((code, out.as_str()), (28, "abc"));
    assert_eq!(
        mask_ms(&err, 300..=400),
        "curl: (28) Operation timed out after N milliseconds with 3 out of 100 bytes received\n"
    );
    let (code, out, err) = exec(&pod, &["curl", "-sSv", "-m0.3", "10.96.0.21"]).await;
    assert_eq!((code, out.as_str()), (28, ""));
    assert_eq!(
        mask_ms(&err, 300..=400),
        "*   Trying 10.96.0.21:80...\n\
         * Connected to 10.96.0.21 (10.96.0.21) port 80 (#0)\n\
         > GET / HTTP/1.1\r\n> Host: 10.96.0.21\r\n> User-Agent: curl/7.88.1\r\n> Accept: */*\r\n> \r\n\
         * Operation timed out after N milliseconds with 0 bytes received\n\
         * Closing connection 0\n\
         curl: (28) Operation timed out after N milliseconds with 0 bytes received\n"
    );
}

#[tokio::test]
async fn curl_resolve_failure_and_unsupported_scheme() {
    let pod = FakePod::new().name_err("flaky", failed("flaky"));
    let cases: &[(&[&str], i32, &str)] = &[
        (&["curl", "-sS", "http://nope/"], 6, "curl: (6) Could not resolve host: nope\n"),
        (&["curl", "-sS", "flaky:8080"], 6, "curl: (6) Could not resolve host: flaky\n"),
        (&["curl", "-s", "http://nope/"], 6, ""),
        (
            &["curl", "-sSv", "http://nope/"],
            6,
            "* Could not resolve host: nope\n* Closing connection 0\ncurl: (6) Could not resolve host: nope\n",
        ),
        // The meter has started and is left unfinished, as curl leaves it.
        (
            &["curl", "http://nope/"],
            6,
            "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n                                 Dload  Upload   Total   Spent    Left  Speed\n\
             \r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0\
             curl: (6) Could not resolve host: nope\n",
        ),
        (
            &["curl", "https://orders/"],
            1,
            "curl: (1) Protocol \"https\" not supported or disabled in libcurl\n",
        ),
        (
            &["curl", "-sv", "https://orders/"],
            1,
            "* Protocol \"https\" not supported or disabled in libcurl\n* Closing connection -1\n",
        ),
        (
            &["curl", "-sS", "http://orders:99999/"],
            3,
            "curl: (3) URL using bad/illegal format or missing URL\n",
        ),
    ];
    for (cmd, want_code, want_err) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (*want_code, "", *want_err), "{cmd:?}");
    }
}

#[tokio::test]
async fn curl_write_out_fail_include_head() {
    let not_found = || answers(http("404 Not Found", &["Content-Length: 4"], "nope"));
    let pod = FakePod::new().peer("10.96.0.20:80", not_found()).peer("10.96.0.21:80", ok_hello());
    // Any status exits 0 without -f; -w prints the code.
    let (code, out, err) =
        exec(&pod, &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}\\n", "http://10.96.0.20/"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "404\n", ""));
    let (code, out, _) = exec(&pod, &["curl", "-sS", "-w", "%{http_code}", "http://10.96.0.20/"]).await;
    assert_eq!((code, out.as_str()), (0, "nope404"));
    // -f turns >= 400 into exit 22.
    let (code, out, err) = exec(&pod, &["curl", "-sSf", "http://10.96.0.20/"]).await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (22, "", "curl: (22) The requested URL returned error: 404\n")
    );
    let (code, out, err) = exec(&pod, &["curl", "-sf", "-w", "[%{http_code}]", "http://10.96.0.20/"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (22, "[404]", ""));
    let (code, _, err) = exec(&pod, &["curl", "-sSfv", "http://10.96.0.20/"]).await;
    assert_eq!(code, 22);
    assert!(
        err.ends_with(
            "< HTTP/1.1 404 Not Found\r\n< Content-Length: 4\r\n\
             * The requested URL returned error: 404\n\
             * Closing connection 0\n\
             curl: (22) The requested URL returned error: 404\n"
        ),
        "{err}"
    );
    // -i puts the head on stdout; -I sends HEAD and prints only the head.
    let (code, out, _) = exec(&pod, &["curl", "-si", "http://10.96.0.21/"]).await;
    assert_eq!(
        (code, out.as_str()),
        (0, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n")
    );
    let head = Peer::Script(
        vec![],
        vec![Step::ReadRequest, Step::Write(http("200 OK", &["Content-Length: 6"], "")), Step::Hold],
    );
    let pod = FakePod::new().peer("10.96.0.22:80", head);
    let (code, out, _) = exec(&pod, &["curl", "-sI", "http://10.96.0.22/"]).await;
    assert_eq!((code, out.as_str()), (0, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\n"));
    assert!(pod.requests()[0].starts_with("HEAD / HTTP/1.1\r\n"));
}

#[tokio::test]
async fn curl_write_out_variables() {
    let pod = FakePod::new().name("orders", &["10.96.0.20"]).peer("10.96.0.20:80", ok_hello());
    let (code, out, err) = exec(
        &pod,
        &[
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{remote_ip}:%{remote_port} from %{local_ip}:%{local_port}\\t%{size_download} %{content_type} %{url_effective} %{method} %{exitcode} 100%% %{bogus}\\x",
            "orders",
        ],
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(out, "10.96.0.20:80 from 10.244.1.5:40000\t6 text/plain http://orders/ GET 0 100% \\x");
    assert_eq!(err, "curl: unknown --write-out variable: 'bogus'\n");
    let (code, out, _) =
        exec(&pod, &["curl", "-s", "-w", "%{http_code} %{exitcode} %{errormsg}", "http://10.96.0.99/"]).await;
    assert_eq!(code, 7);
    assert_eq!(
        mask_ms(&out, 0..=50),
        "000 7 Failed to connect to 10.96.0.99 port 80 after N ms: Couldn't connect to server"
    );
}

#[tokio::test]
async fn curl_custom_headers_and_post() {
    let pod = FakePod::new().peer("10.96.0.20:80", ok_hello());
    let (code, _, _) = exec(
        &pod,
        &[
            "curl",
            "-s",
            "-H",
            "Host: orders.example",
            "-H",
            "User-Agent:",
            "-H",
            "X-Trace: 1",
            "10.96.0.20/a",
        ],
    )
    .await;
    assert_eq!(code, 0);
    let (code, _, err) = exec(&pod, &["curl", "-sv", "-d", "a=1", "-d", "b=2", "10.96.0.20/form"]).await;
    assert_eq!(code, 0);
    assert!(err.contains("> \r\n} [7 bytes data]\n< HTTP/1.1 200 OK\r\n"), "{err}");
    let (code, _, _) = exec(&pod, &["curl", "-s", "-X", "DELETE", "-A", "probe/1", "10.96.0.20/k"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        pod.requests(),
        vec![
            "GET /a HTTP/1.1\r\nHost: orders.example\r\nAccept: */*\r\nX-Trace: 1\r\n\r\n".to_string(),
            "POST /form HTTP/1.1\r\nHost: 10.96.0.20\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\
             Content-Length: 7\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\na=1&b=2"
                .to_string(),
            "DELETE /k HTTP/1.1\r\nHost: 10.96.0.20\r\nUser-Agent: probe/1\r\nAccept: */*\r\n\r\n"
                .to_string(),
        ]
    );
}

#[tokio::test]
async fn curl_broken_responses() {
    let pod = FakePod::new()
        .peer("10.96.0.20:80", Peer::Script(vec![], vec![Step::ReadRequest]))
        .peer(
            "10.96.0.21:80",
            Peer::Script(
                vec![],
                vec![Step::ReadRequest, Step::Write(http("200 OK", &["Content-Length: 10"], "abcd"))],
            ),
        )
        .peer(
            "10.96.0.22:80",
            Peer::Script(
                vec![],
                vec![
                    Step::ReadRequest,
                    Step::Write(http("200 OK", &["Transfer-Encoding: chunked"], "3\r\nabc\r\n")),
                ],
            ),
        );
    let cases: &[(&str, i32, &str, &str)] = &[
        ("10.96.0.20", 52, "", "curl: (52) Empty reply from server\n"),
        ("10.96.0.21", 18, "abcd", "curl: (18) transfer closed with 6 bytes remaining to read\n"),
        ("10.96.0.22", 18, "abc", "curl: (18) transfer closed with outstanding read data remaining\n"),
    ];
    for (host, want_code, want_out, want_err) in cases {
        let (code, out, err) = exec(&pod, &["curl", "-sS", host]).await;
        assert_eq!((code, out.as_str(), err.as_str()), (*want_code, *want_out, *want_err), "{host}");
    }
}

#[tokio::test]
async fn curl_option_errors() {
    let pod = FakePod::new();
    let try_help = "curl: try 'curl --help' or 'curl --manual' for more information\n";
    let cases: &[(&[&str], String)] = &[
        (&["curl"], try_help.to_string()),
        (&["curl", "-s"], format!("curl: no URL specified!\n{try_help}")),
        (&["curl", "--bogus", "x"], format!("curl: option --bogus: is unknown\n{try_help}")),
        (&["curl", "-s7", "x"], format!("curl: option -s7: is unknown\n{try_help}")),
        (&["curl", "-sSm"], format!("curl: option -sSm: requires parameter\n{try_help}")),
        (
            &["curl", "-m", "abc", "x"],
            format!("curl: option -m: expected a proper numerical parameter\n{try_help}"),
        ),
    ];
    for (cmd, want) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (2, "", want.as_str()), "{cmd:?}");
    }
}

#[tokio::test]
async fn curl_progress_meter() {
    let slow = Peer::Script(
        vec![],
        vec![
            Step::ReadRequest,
            Step::Sleep(1100),
            Step::Write(http("200 OK", &["Content-Length: 6"], "hello\n")),
            Step::Hold,
        ],
    );
    let pod = FakePod::new().peer("10.96.0.20:80", slow);
    let (code, out, err) = exec(&pod, &["curl", "http://10.96.0.20/"]).await;
    assert_eq!((code, out.as_str()), (0, "hello\n"));
    // Header, the first line, a redraw after one second, and the final line with a newline.
    let want_start = format!(
        "{METER_HEAD}{METER_ZERO}\r  0     0    0     0    0     0      0      0 --:--:--  0:00:01 --:--:--     0\r100     6  100     6    0     0      5      0  0:00:01  0:00:01 --:--:--     5\n"
    );
    assert_eq!(err, want_start);
}

#[tokio::test]
async fn curl_against_the_echo_app() {
    let pod = FakePod::new()
        .name("orders", &["10.96.0.20"])
        .peer("10.96.0.20:80", Peer::Table("10.244.2.7:80".parse().unwrap()));
    let who = Identity {
        pod: "orders-abc".into(),
        namespace: "default".into(),
        ip: "10.244.2.7".parse().unwrap(),
        node: "node-2".into(),
        container: "nginx".into(),
    };
    let listener = pod.table.listen("10.244.2.7:80".parse().unwrap(), Protocol::Tcp).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(echo::serve(listener, who, stop.clone()));
    let (code, out, err) = exec(&pod, &["curl", "-sS", "http://orders/hello"]).await;
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(
        out,
        "pod=orders-abc ip=10.244.2.7 node=node-2\nnamespace=default container=nginx\n\
         method=GET path=/hello host=orders\nclient=10.244.1.5:40000\n"
    );
    let (code, out, _) =
        exec(&pod, &["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "orders/status/503"]).await;
    assert_eq!((code, out.as_str()), (0, "503"));
    stop.cancel();
}

// === nc ===

#[tokio::test]
async fn nc_probe_success_names_services() {
    let pod = FakePod::new()
        .name("redis", &["10.96.0.30"])
        .peer("10.96.0.20:80", ok_hello())
        .peer("10.96.0.20:443", ok_hello())
        .peer("10.96.0.20:53", ok_hello())
        .peer("10.96.0.20:8080", ok_hello())
        .peer("10.96.0.20:9000", ok_hello())
        .peer("10.96.0.30:6379", ok_hello());
    let cases: &[(&[&str], &str)] = &[
        (&["nc", "-zv", "10.96.0.20", "80"], "Connection to 10.96.0.20 80 port [tcp/http] succeeded!\n"),
        (&["nc", "-vz", "10.96.0.20", "443"], "Connection to 10.96.0.20 443 port [tcp/https] succeeded!\n"),
        (
            &["nc", "-z", "-v", "10.96.0.20", "53"],
            "Connection to 10.96.0.20 53 port [tcp/domain] succeeded!\n",
        ),
        (
            &["nc", "-zvw1", "10.96.0.20", "8080"],
            "Connection to 10.96.0.20 8080 port [tcp/http-alt] succeeded!\n",
        ),
        (
            &["nc", "-w", "2", "-zv", "10.96.0.20", "9000"],
            "Connection to 10.96.0.20 9000 port [tcp/*] succeeded!\n",
        ),
        (
            &["nc", "-zv", "redis", "6379"],
            "Connection to redis (10.96.0.30) 6379 port [tcp/redis] succeeded!\n",
        ),
        (&["/usr/bin/nc", "-z", "redis", "6379"], ""),
    ];
    for (cmd, want) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (0, "", *want), "{cmd:?}");
    }
}

#[tokio::test]
async fn nc_failures() {
    let pod = FakePod::new()
        .name("orders", &["10.96.0.20"])
        .name_err("flaky", failed("flaky"))
        .peer("10.96.0.20:80", Peer::Refused(vec![]))
        .peer("10.96.0.21:80", Peer::TimedOut(vec![]))
        .peer("10.96.0.22:80", Peer::Unreachable(vec![]))
        .peer("10.96.0.23:80", Peer::Hang);
    let cases: &[(&[&str], &str)] = &[
        (
            &["nc", "-zv", "10.96.0.20", "80"],
            "nc: connect to 10.96.0.20 port 80 (tcp) failed: Connection refused\n",
        ),
        (
            &["nc", "-zv", "orders", "80"],
            "nc: connect to orders (10.96.0.20) port 80 (tcp) failed: Connection refused\n",
        ),
        (&["nc", "-z", "orders", "80"], ""),
        // No -w: the kernel's ETIMEDOUT.
        (
            &["nc", "-zv", "10.96.0.21", "80"],
            "nc: connect to 10.96.0.21 port 80 (tcp) failed: Connection timed out\n",
        ),
        (
            &["nc", "-zv", "10.96.0.22", "80"],
            "nc: connect to 10.96.0.22 port 80 (tcp) failed: No route to host\n",
        ),
        // -w: netcat's own poll gives up while the connect is still in progress.
        (
            &["nc", "-zv", "-w", "1", "10.96.0.23", "80"],
            "nc: connect to 10.96.0.23 port 80 (tcp) timed out: Operation now in progress\n",
        ),
        (&["nc", "-zv", "nope", "80"], "nc: getaddrinfo for host \"nope\" port 80: Name does not resolve\n"),
        (&["nc", "-zv", "flaky", "80"], "nc: getaddrinfo for host \"flaky\" port 80: Try again\n"),
        (&["nc", "-zv", "orders"], "nc: missing port number\n"),
        (&["nc", "-zv", "orders", "http"], "nc: port number invalid: http\n"),
        (&["nc", "-zv", "-w", "x", "orders", "80"], "nc: timeout invalid: x\n"),
    ];
    for (cmd, want) in cases {
        let started = tokio::time::Instant::now();
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", *want), "{cmd:?}");
        if cmd.contains(&"-w") && cmd.contains(&"1") {
            let took = started.elapsed();
            assert!(took >= Duration::from_secs(1) && took < Duration::from_secs(2), "{took:?}");
        }
    }
    let timeouts = pod.timeouts();
    assert_eq!(timeouts[3], KERNEL_CONNECT_TIMEOUT);
    assert_eq!(timeouts[5], Duration::from_secs(1));
    let (code, _, err) = exec(&pod, &["nc"]).await;
    assert_eq!(code, 1);
    assert!(err.starts_with("usage: nc [-46CDdFhklNnrStUuvZz] [-I length]"), "{err}");
}

#[tokio::test]
async fn nc_ports_and_banner() {
    let banner = Peer::Script(vec![], vec![Step::Write(b"SSH-2.0-OpenSSH_9.6\r\n".to_vec())]);
    let pod = FakePod::new()
        .peer("10.96.0.20:21", Peer::Refused(vec![]))
        .peer("10.96.0.20:22", banner)
        .peer("10.96.0.20:23", Peer::Refused(vec![]));
    let (code, _, err) = exec(&pod, &["nc", "-zv", "10.96.0.20", "21-23"]).await;
    assert_eq!(code, 0, "one port open is success");
    assert_eq!(
        err,
        "nc: connect to 10.96.0.20 port 21 (tcp) failed: Connection refused\n\
         Connection to 10.96.0.20 22 port [tcp/ssh] succeeded!\n\
         nc: connect to 10.96.0.20 port 23 (tcp) failed: Connection refused\n"
    );
    let (code, out, err) = exec(&pod, &["nc", "10.96.0.20", "22"]).await;
    assert_eq!((code, out.as_str(), err.as_str()), (0, "SSH-2.0-OpenSSH_9.6\r\n", ""));
}

// === redis-cli ===

/// A pod with the kv app at 10.244.3.4:6379, reachable as `redis` (10.96.0.30) and on
/// 127.0.0.1 (the default).
fn redis_pod() -> (FakePod, CancellationToken) {
    let app: SocketAddr = "10.244.3.4:6379".parse().unwrap();
    let pod = FakePod::new()
        .name("redis", &["10.96.0.30"])
        .peer("10.96.0.30:6379", Peer::Table(app))
        .peer("127.0.0.1:6379", Peer::Table(app));
    let listener = pod.table.listen(app, Protocol::Tcp).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(kv::serve(listener, stop.clone()));
    (pod, stop)
}

#[tokio::test]
async fn redis_cli_raw_output() {
    let (pod, stop) = redis_pod();
    let cases: &[(&[&str], &str)] = &[
        (&["redis-cli", "-h", "redis", "PING"], "PONG\n"),
        (&["redis-cli", "-h", "redis", "SET", "greeting", "hello world"], "OK\n"),
        (&["redis-cli", "-h", "redis", "-p", "6379", "GET", "greeting"], "hello world\n"),
        (&["redis-cli", "GET", "greeting"], "hello world\n"),
        (&["redis-cli", "-h", "redis", "GET", "missing"], "\n"),
        (&["redis-cli", "-h", "redis", "INCR", "n"], "1\n"),
        (&["redis-cli", "-h", "redis", "KEYS", "*"], "greeting\nn\n"),
        (&["redis-cli", "-h", "redis", "KEYS", "zz*"], "\n"),
        (&["redis-cli", "-h", "redis", "get"], "ERR wrong number of arguments for 'get' command\n\n"),
        (&["redis-cli", "-h", "redis", "--no-raw", "GET", "greeting"], "\"hello world\"\n"),
        (&["redis-cli", "-h", "redis", "--no-raw", "GET", "missing"], "(nil)\n"),
        (&["redis-cli", "-h", "redis", "--no-raw", "INCR", "n"], "(integer) 2\n"),
        (&["redis-cli", "-h", "redis", "--no-raw", "KEYS", "*"], "1) \"greeting\"\n2) \"n\"\n"),
        (&["redis-cli", "-h", "redis", "--no-raw", "KEYS", "zz*"], "(empty array)\n"),
        (&["redis-cli", "-h", "redis", "--no-raw", "SET", "a", "b"], "OK\n"),
        (
            &["redis-cli", "-h", "redis", "--no-raw", "INCR"],
            "(error) ERR wrong number of arguments for 'incr' command\n",
        ),
    ];
    for (cmd, want) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (0, *want, ""), "{cmd:?}");
    }
    let (code, out, err) = exec(&pod, &["redis-cli", "-e", "-h", "redis", "INCR"]).await;
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (1, "", "ERR wrong number of arguments for 'incr' command\n")
    );
    stop.cancel();
}

#[tokio::test]
async fn redis_cli_nested_replies() {
    let reply = b"*3\r\n*2\r\n$1\r\na\r\n$-1\r\n:3\r\n+OK\r\n".to_vec();
    let pod = FakePod::new().peer(
        "127.0.0.1:6379",
        Peer::Script(vec![], vec![Step::Sleep(10), Step::Write(reply.clone()), Step::Hold]),
    );
    let (code, out, _) = exec(&pod, &["redis-cli", "X"]).await;
    assert_eq!((code, out.as_str()), (0, "a\n\n3\nOK\n"));
    let (code, out, _) = exec(&pod, &["redis-cli", "--no-raw", "X"]).await;
    assert_eq!((code, out.as_str()), (0, "1) 1) \"a\"\n   2) (nil)\n2) (integer) 3\n3) OK\n"));
}

#[tokio::test]
async fn redis_cli_failures() {
    let pod = FakePod::new()
        .name("redis", &["10.96.0.30"])
        .peer("10.96.0.30:6379", Peer::Refused(vec![]))
        .peer("10.96.0.31:6379", Peer::Hang)
        .peer("10.96.0.32:6379", Peer::TimedOut(vec![]))
        .peer("10.96.0.33:6379", Peer::Unreachable(vec![]))
        .peer("10.96.0.34:6379", Peer::Script(vec![], vec![Step::Sleep(10)]));
    let cases: &[(&[&str], &str)] = &[
        (
            &["redis-cli", "-h", "redis", "PING"],
            "Could not connect to Redis at redis:6379: Connection refused\n",
        ),
        (&["redis-cli", "PING"], "Could not connect to Redis at 127.0.0.1:6379: Connection refused\n"),
        (
            &["redis-cli", "-h", "10.96.0.31", "-t", "0.2", "PING"],
            "Could not connect to Redis at 10.96.0.31:6379: Connection timed out\n",
        ),
        (
            &["redis-cli", "-h", "10.96.0.32", "PING"],
            "Could not connect to Redis at 10.96.0.32:6379: Connection timed out\n",
        ),
        (
            &["redis-cli", "-h", "10.96.0.33", "PING"],
            "Could not connect to Redis at 10.96.0.33:6379: No route to host\n",
        ),
        (
            &["redis-cli", "-h", "nope", "PING"],
            "Could not connect to Redis at nope:6379: Name does not resolve\n",
        ),
        (&["redis-cli", "-h", "10.96.0.34", "PING"], "Error: Server closed the connection\n"),
        (&["redis-cli", "-x", "PING"], "Unrecognized option or bad number of args for: '-x'\n"),
    ];
    for (cmd, want) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (1, "", *want), "{cmd:?}");
    }
    let t = pod.timeouts();
    assert_eq!((t[2], t[3]), (Duration::from_millis(200), KERNEL_CONNECT_TIMEOUT));
    // Without a command redis-cli would read stdin; exec gives none.
    let (code, _, err) = exec(&pod, &["redis-cli", "-h", "redis"]).await;
    assert_eq!((code, err.as_str()), (0, "Could not connect to Redis at redis:6379: Connection refused\n"));
}

// === files, ip, hostname, env, echo, sleep, sh ===

#[tokio::test]
async fn builtins() {
    let pod = FakePod::new();
    let hosts = "# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.5\tclient-7d4f9\n";
    let env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\nHOSTNAME=client-7d4f9\nORDERS_SERVICE_HOST=10.96.0.20\n";
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (
            &["cat", "/etc/resolv.conf"],
            0,
            "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
            "",
        ),
        (&["cat", "/etc/hostname"], 0, "client-7d4f9\n", ""),
        (&["/bin/cat", "/etc/hosts"], 0, hosts, ""),
        (&["cat", "/x", "/etc/hostname"], 1, "client-7d4f9\n", "cat: /x: No such file or directory\n"),
        (&["ip", "addr"], 0, "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n", ""),
        (&["ip", "a"], 0, "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n", ""),
        (&["ip", "-4", "addr", "show"], 0, "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536\n", ""),
        (&["ip", "route"], 0, "default via 10.244.1.1 dev eth0\n", ""),
        (&["ip", "r"], 0, "default via 10.244.1.1 dev eth0\n", ""),
        (&["ip", "link"], 255, "", "Object \"link\" is unknown, try \"ip help\".\n"),
        (&["ip", "route", "add"], 255, "", "Command \"add\" is unknown, try \"ip route help\".\n"),
        (&["hostname"], 0, "client-7d4f9\n", ""),
        (&["hostname", "-i"], 0, "10.244.1.5 \n", ""),
        (&["env"], 0, env, ""),
        (&["printenv"], 0, env, ""),
        (&["printenv", "HOSTNAME"], 0, "client-7d4f9\n", ""),
        (&["printenv", "NOPE"], 1, "", ""),
        (&["env", "hostname"], 0, "client-7d4f9\n", ""),
        (&["echo", "hello", "world"], 0, "hello world\n", ""),
        (&["echo", "-n", "x"], 0, "x", ""),
        (&["echo"], 0, "\n", ""),
        (&["true"], 0, "", ""),
        (&["false"], 1, "", ""),
        (&["/bin/false"], 1, "", ""),
        (&["sleep", "x"], 1, "", "sleep: invalid number 'x'\n"),
    ];
    for (cmd, want_code, want_out, want_err) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (*want_code, *want_out, *want_err), "{cmd:?}");
    }
    let started = tokio::time::Instant::now();
    let (code, _, _) = exec(&pod, &["sleep", "0.2"]).await;
    assert_eq!(code, 0);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn shell() {
    let pod = FakePod::new().peer("10.96.0.20:80", ok_hello());
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (&["sh", "-c", "echo $HOSTNAME ${ORDERS_SERVICE_HOST}"], 0, "client-7d4f9 10.96.0.20\n", ""),
        (&["sh", "-c", "echo 'a  b' \"c  $HOSTNAME\" d\\ e $UNSET"], 0, "a  b c  client-7d4f9 d e\n", ""),
        (&["sh", "-c", "false || echo fallback; echo $?"], 0, "fallback\n0\n", ""),
        (&["sh", "-c", "false && echo never; echo $?"], 0, "1\n", ""),
        (&["sh", "-c", "curl -s http://10.96.0.20/ && echo ok"], 0, "hello\nok\n", ""),
        (&["sh", "-c", "exit 3"], 3, "", ""),
        (&["/bin/sh", "-c", "true; exit"], 0, "", ""),
        (&["sh", "-c", "wget http://x"], 127, "", "sh: wget: not found\n"),
        (&["bash", "-c", "wget http://x"], 127, "", "bash: line 1: wget: command not found\n"),
        (&["sh", "-c", "echo hostname | cat"], 0, "hostname\n", ""),
        (&["sh", "-c", "echo a | cat - | wc -l"], 127, "", "sh: wc: not found\n"),
        (
            &["sh", "-c", "| cat"],
            2,
            "",
            "sh: netlab: unsupported shell syntax: syntax error near unexpected token `|'\n",
        ),
        (&["sh", "-c", "echo x > /tmp/y"], 2, "", "sh: netlab: unsupported shell syntax: >\n"),
        (
            &["sh", "-c", "echo 'open"],
            2,
            "",
            "sh: netlab: unsupported shell syntax: unterminated quoted string\n",
        ),
        (&["sh"], 0, "", ""),
        (&["sh", "-c"], 2, "", "sh: -c requires an argument\n"),
    ];
    for (cmd, want_code, want_out, want_err) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (*want_code, *want_out, *want_err), "{cmd:?}");
    }
}

#[tokio::test]
async fn unknown_executables() {
    let pod = FakePod::new();
    let (out, _rx) = Output::new();
    for (cmd, name) in [("wget", "wget"), ("/opt/bin/curl", "/opt/bin/curl"), ("ping", "ping")] {
        let argv = vec![cmd.to_string(), "x".to_string()];
        assert_eq!(run(&argv, &pod, &out).await, Err(ExecError::NotFound(name.to_string())));
    }
    // The DNS commands are found by run, sh -c and env alike (this pod's DNS server refuses).
    let refused = ";; communications error to 10.96.0.10#53: connection refused\n".repeat(3)
        + ";; no servers could be reached\n";
    for cmd in [
        &["dig", "+short", "orders"][..],
        &["sh", "-c", "dig +short orders"],
        &["env", "dig", "+short", "orders"],
        &["/usr/bin/dig", "+short", "orders"],
    ] {
        assert_eq!(exec(&pod, cmd).await, (9, refused.clone(), String::new()), "{cmd:?}");
    }
    assert_eq!(
        ExecError::NotFound("wget".into()).to_string(),
        "exec: \"wget\": executable file not found in $PATH"
    );
}

#[tokio::test]
async fn nc_udp_sends_stdin_from_its_source_port_and_prints_the_answer() {
    let pod = FakePod::new();
    let who = Identity {
        pod: "collector-1".into(),
        namespace: "default".into(),
        ip: "10.244.1.2".parse().unwrap(),
        node: "node-1".into(),
        container: "agnhost".into(),
    };
    let l = pod.table.listen("10.244.1.2:8081".parse().unwrap(), crate::sockets::Protocol::Udp).unwrap();
    let stop = CancellationToken::new();
    tokio::spawn(netexec::serve_udp(l, who, stop.clone()));
    let cases: &[(&[&str], i32, &str, &str)] = &[
        (&["sh", "-c", "echo hostname | nc -u -w 1 10.244.1.2 8081"], 0, "collector-1", ""),
        (&["sh", "-c", "echo clientip | nc -u -w 1 -p 12345 10.244.1.2 8081"], 0, "10.244.1.5:12345", ""),
        // No answer to an unknown command: nc waits out -w and says nothing.
        (&["sh", "-c", "echo what | nc -u -w 1 10.244.1.2 8081"], 0, "", ""),
        // Nothing on the port: ICMP port-unreachable.
        (&["sh", "-c", "echo hostname | nc -u -w 1 10.244.1.2 9999"], 1, "", ""),
        (&["nc", "-u", "-p", "0", "10.244.1.2", "8081"], 1, "", "nc: port number invalid: 0\n"),
        (
            &["nc", "-zuv", "10.244.1.2", "8081"],
            0,
            "",
            "Connection to 10.244.1.2 8081 port [udp/*] succeeded!\n",
        ),
    ];
    for (cmd, want_code, want_out, want_err) in cases {
        let (code, out, err) = exec(&pod, cmd).await;
        assert_eq!((code, out.as_str(), err.as_str()), (*want_code, *want_out, *want_err), "{cmd:?}");
    }
    stop.cancel();
}

// === aws ===

const TOKEN_FILE: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token";
const ROLE: &str = "arn:aws:iam::123456789012:role/irsa-reader";

fn xml(status: &str, body: &str) -> Vec<u8> {
    http(status, &["Content-Type: text/xml", &format!("Content-Length: {}", body.len())], body)
}

fn caller_identity(user_id: &str, arn: &str) -> Vec<u8> {
    xml(
        "200 OK",
        &format!(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>{arn}</Arn><UserId>{user_id}</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>r-2</RequestId></ResponseMetadata></GetCallerIdentityResponse>"
        ),
    )
}

/// A pod as the pod identity webhook leaves it, its STS at 10.0.0.7:443.
fn irsa_pod(sts: Peer) -> FakePod {
    FakePod::new()
        .with_env("AWS_STS_REGIONAL_ENDPOINTS", "regional")
        .with_env("AWS_DEFAULT_REGION", "us-east-1")
        .with_env("AWS_REGION", "us-east-1")
        .with_env("AWS_ROLE_ARN", ROLE)
        .with_env("AWS_WEB_IDENTITY_TOKEN_FILE", TOKEN_FILE)
        .with_file(TOKEN_FILE, "eyJhbGciOiJSUzI1NiJ9.e30.sig")
        .name("sts.us-east-1.amazonaws.com", &["10.0.0.7"])
        .peer("10.0.0.7:443", sts)
}

#[tokio::test]
async fn aws_irsa_trades_the_token_unsigned_then_signs_with_the_roles_session() {
    let session = xml(
        "200 OK",
        "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>s3cret</SecretAccessKey><SessionToken>sess&amp;tok</SessionToken><Expiration>2026-12-07T22:00:00Z</Expiration></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>",
    );
    let arn = "arn:aws:sts::123456789012:assumed-role/irsa-reader/botocore-session-1";
    let sts = Peer::Script(
        vec![],
        vec![Step::Route(vec![
            ("Action=AssumeRoleWithWebIdentity", session),
            ("Action=GetCallerIdentity", caller_identity("AROAEXAMPLE:botocore-session-1", arn)),
        ])],
    );
    let pod = irsa_pod(sts);
    let (code, stdout, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}");
    assert_eq!(
        stdout,
        format!(
            "{{\n    \"UserId\": \"AROAEXAMPLE:botocore-session-1\",\n    \"Account\": \"123456789012\",\n    \"Arn\": \"{arn}\"\n}}\n"
        )
    );
    let requests = pod.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let (assume, call) = (&requests[0], &requests[1]);
    assert!(assume.starts_with("POST / HTTP/1.1\r\nhost: sts.us-east-1.amazonaws.com\r\n"), "{assume}");
    assert!(!assume.contains("authorization:"), "AssumeRoleWithWebIdentity is unsigned: {assume}");
    let body = assume.split("\r\n\r\n").nth(1).unwrap();
    let role = "arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Firsa-reader";
    assert!(
        body.starts_with(&format!("Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn={role}&RoleSessionName=botocore-session-")),
        "{body}"
    );
    assert!(body.ends_with("&WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.e30.sig"), "{body}");
    assert!(call.contains("authorization: AWS4-HMAC-SHA256 Credential=ASIAROLE/"), "{call}");
    assert!(call.contains("/us-east-1/sts/aws4_request"), "{call}");
    assert!(call.contains("x-amz-security-token: sess&tok\r\n"), "{call}");
    assert!(call.ends_with("\r\n\r\nAction=GetCallerIdentity&Version=2011-06-15"), "{call}");
    assert!(
        call.contains("\r\nUser-Agent: aws-cli/1.45.11 md/Botocore#1.43.11 ") && !call.contains("curl/"),
        "{call}"
    );
}

#[tokio::test]
async fn aws_prints_sts_errors_as_the_cli_and_a_missing_token_file_as_python() {
    let denied = xml(
        "403 Forbidden",
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error><RequestId>r-1</RequestId></ErrorResponse>",
    );
    let pod = irsa_pod(answers(denied));
    let (code, stdout, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    assert_eq!((code, stdout.as_str()), (255, ""));
    assert_eq!(
        stderr,
        "\nAn error occurred (AccessDenied) when calling the AssumeRoleWithWebIdentity operation: Not authorized to perform sts:AssumeRoleWithWebIdentity\n"
    );

    let mut pod = irsa_pod(Peer::Refused(vec![]));
    pod.files.clear();
    let (code, _, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    assert_eq!(
        (code, stderr.as_str()),
        (255, format!("\n[Errno 2] No such file or directory: '{TOKEN_FILE}'\n").as_str())
    );

    let pod = irsa_pod(Peer::Refused(vec![]));
    let (code, _, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    assert_eq!(
        (code, stderr.as_str()),
        (255, "\nCould not connect to the endpoint URL: \"https://sts.us-east-1.amazonaws.com/\"\n")
    );
}

/// IMDS at 169.254.169.254:80 requiring tokens (`tok`), and STS's global endpoint at
/// 10.0.0.7:443; `token` is what the token PUT gets (empty: no answer, as when the hop limit
/// kills it).
fn node_role_pod(token: Vec<u8>) -> FakePod {
    let creds = r#"{"Code":"Success","LastUpdated":"2026-12-07T20:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIANODE","SecretAccessKey":"nodesecret","Token":"nodetoken","Expiration":"2026-12-08T02:00:00Z"}"#;
    let json = |body: &str| http("200 OK", &[&format!("Content-Length: {}", body.len())], body);
    let imds = Peer::Script(
        vec![],
        vec![Step::Route(vec![
            ("PUT /latest/api/token HTTP/1.1 && x-aws-ec2-metadata-token-ttl-seconds: 21600\r\n", token),
            (
                "GET /latest/meta-data/iam/security-credentials/ HTTP/1.1 && x-aws-ec2-metadata-token: tok\r\n",
                json("netlab-NodeInstanceRole"),
            ),
            (
                "GET /latest/meta-data/iam/security-credentials/netlab-NodeInstanceRole HTTP/1.1 && x-aws-ec2-metadata-token: tok\r\n",
                json(creds),
            ),
            ("GET ", http("401 Unauthorized", &["Content-Length: 0"], "")),
        ])],
    );
    let arn = "arn:aws:sts::123456789012:assumed-role/netlab-NodeInstanceRole/i-0abc";
    FakePod::new()
        .peer("169.254.169.254:80", imds)
        .name("sts.amazonaws.com", &["10.0.0.7"])
        .peer("10.0.0.7:443", answers(caller_identity("AROANODE:i-0abc", arn)))
}

#[tokio::test]
async fn aws_without_irsa_is_the_node_role_when_the_token_comes_back() {
    let pod = node_role_pod(http("200 OK", &["Content-Length: 3"], "tok"));
    let (code, stdout, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity", "--output", "text"]).await;
    assert_eq!((code, stderr.as_str()), (0, ""));
    assert_eq!(
        stdout,
        "123456789012\tarn:aws:sts::123456789012:assumed-role/netlab-NodeInstanceRole/i-0abc\tAROANODE:i-0abc\n"
    );
    let call = pod.requests().pop().unwrap();
    assert!(
        call.starts_with("POST / HTTP/1.1\r\nhost: sts.amazonaws.com\r\n"),
        "no region: the global endpoint: {call}"
    );
    assert!(
        call.contains("Credential=ASIANODE/") && call.contains("x-amz-security-token: nodetoken\r\n"),
        "{call}"
    );
}

#[tokio::test]
async fn aws_without_irsa_finds_no_credentials_when_the_hop_limit_eats_the_token() {
    let pod = node_role_pod(Vec::new());
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    let took = started.elapsed();
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (
            255,
            "",
            "Unable to locate credentials. You can configure credentials by running \"aws configure\".\n"
        )
    );
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_millis(1900),
        "botocore's 1 s read timeout: {took:?}"
    );
    // The PUT went unanswered, then IMDSv1 was tried and refused; no call reached STS.
    let requests = pod.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[1].starts_with("GET /latest/meta-data/iam/security-credentials/ HTTP/1.1\r\n"));
    assert!(!requests[1].contains("x-aws-ec2-metadata-token"), "{}", requests[1]);
    // AWS_EC2_METADATA_DISABLED skips IMDS altogether.
    let pod = node_role_pod(Vec::new()).with_env("AWS_EC2_METADATA_DISABLED", "true");
    let (code, _, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    assert_eq!((code, stderr.starts_with("Unable to locate credentials.")), (255, true));
    assert!(pod.requests().is_empty());
}

#[tokio::test]
async fn aws_command_lines_and_env_keys() {
    let pod = FakePod::new();
    let (code, _, stderr) = exec(&pod, &["aws"]).await;
    assert_eq!(code, 2);
    assert!(stderr.ends_with("aws: error: the following arguments are required: command\n"), "{stderr}");
    let (code, _, stderr) = exec(&pod, &["aws", "ecr", "describe-repositories"]).await;
    assert_eq!((code, stderr.starts_with("netlab: ")), (255, true), "{stderr}");
    let pod = FakePod::new().with_env("AWS_ACCESS_KEY_ID", "AKIA");
    let (code, _, stderr) = exec(&pod, &["aws", "sts", "get-caller-identity"]).await;
    assert_eq!(
        (code, stderr.as_str()),
        (255, "\nPartial credentials found in env, missing: AWS_SECRET_ACCESS_KEY\n")
    );
}
