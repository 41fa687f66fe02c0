//! `curl` as curl 7.88.1 behaves with a non-tty stdout (as under `kubectl exec` without `-t`):
//! HTTP/1.1 over the pod's kernel, the same exit codes and `curl: (N) ...` messages, the same
//! `-v` trace (plus `* netlab: ...` lines for what the kernel did), the progress meter on stderr
//! unless `-s`, and `-w` variables. Only `http://` is spoken: the pods' apps serve plain HTTP.
//!
//! Options: `-v -s -S -f -i -I -L -k`, `-m/--max-time`, `--connect-timeout`, `-o`, `-w`, `-H`,
//! `-X`, `-d`, `-A`, `--no-progress-meter`. `-o FILE` discards the body (a pod has no
//! filesystem), like `-o /dev/null`.

use std::{
    fmt::Write as _,
    future::Future,
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    time::{Instant, sleep_until, timeout_at},
};

use super::{KERNEL_CONNECT_TIMEOUT, Output, Pod, resolve, seconds};
use crate::podnet::{Connected, Error, ErrorKind, Stream};

/// What curl sends as `User-Agent`.
const USER_AGENT: &str = "curl/7.88.1";
/// curl's own connect timeout when none is given (`DEFAULT_CONNECT_TIMEOUT`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(300);
/// The hint curl prints after an option error.
const TRY_HELP: &str = "curl: try 'curl --help' or 'curl --manual' for more information\n";

/// Runs `curl ARGS`; returns the exit code.
pub(super) async fn run(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    if args.is_empty() {
        out.err(TRY_HELP);
        return 2;
    }
    let opts = match Options::parse(args) {
        Ok(o) => o,
        Err(e) => {
            out.err(format!("curl: {e}\n"));
            out.err(TRY_HELP);
            return 2;
        }
    };
    let Some(url) = opts.url.clone() else {
        out.err("curl: no URL specified!\n");
        out.err(TRY_HELP);
        return 2;
    };
    let mut transfer = Transfer {
        meter: Meter::new(out.clone(), !opts.silent && !opts.no_meter),
        info: Info::default(),
        opts,
        pod,
        out,
    };
    transfer.run(&url).await
}

/// A whole response, for the toolbox's other HTTP clients (the `aws` tool).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Response {
    /// The status code.
    pub status: u16,
    /// The body, decoded (chunked or not).
    pub body: Vec<u8>,
}

/// A request that got no response: curl's exit code and message for it (`7`, `Failed to
/// connect to ...`; `28`, `Operation timed out ...`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("({code}) {message}")]
pub(super) struct Failed {
    /// curl's exit code.
    pub code: i32,
    /// curl's message.
    pub message: String,
}

/// One silent request through curl's transfer (the same resolve, connect, request and response
/// handling as `curl -sS`): `-X method`, each of `headers` as `-H`, `body` as `--data-binary`,
/// `--connect-timeout` and `--max-time`.
pub(super) async fn fetch(
    pod: &dyn Pod,
    method: &str,
    url: &str,
    headers: &[String],
    body: Option<Vec<u8>>,
    connect_timeout: Option<Duration>,
    max_time: Option<Duration>,
) -> Result<Response, Failed> {
    let (out, mut rx) = Output::new();
    let opts = Options {
        verbose: false,
        silent: true,
        show_error: false,
        fail: false,
        include: false,
        head: false,
        no_meter: true,
        max_time,
        connect_timeout,
        sink: Sink::Stdout,
        write_out: None,
        headers: headers.to_vec(),
        user_agent: None,
        method: Some(method.to_string()),
        data: body,
        url: Some(url.to_string()),
    };
    let mut transfer =
        Transfer { meter: Meter::new(out.clone(), false), info: Info::default(), opts, pod, out: &out };
    let code = transfer.run(url).await;
    let status = transfer.info.http_code;
    let message = std::mem::take(&mut transfer.info.error);
    drop(transfer);
    drop(out);
    let mut body = Vec::new();
    while let Ok(chunk) = rx.try_recv() {
        if let super::Chunk::Stdout(b) = chunk {
            body.extend_from_slice(&b);
        }
    }
    match code {
        0 => Ok(Response { status, body }),
        code => Err(Failed { code, message }),
    }
}

/// Where the body goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Stdout,
    Stderr,
    Discard,
}

/// The parsed command line.
#[derive(Debug)]
struct Options {
    verbose: bool,
    silent: bool,
    show_error: bool,
    fail: bool,
    include: bool,
    head: bool,
    no_meter: bool,
    max_time: Option<Duration>,
    connect_timeout: Option<Duration>,
    sink: Sink,
    write_out: Option<String>,
    headers: Vec<String>,
    user_agent: Option<String>,
    method: Option<String>,
    data: Option<Vec<u8>>,
    url: Option<String>,
}

// === impl Options ===

impl Options {
    /// Parses curl's command line; `Err` is the message for stderr (exit 2).
    fn parse(args: &[String]) -> Result<Options, OptionError> {
        let mut o = Options {
            verbose: false,
            silent: false,
            show_error: false,
            fail: false,
            include: false,
            head: false,
            no_meter: false,
            max_time: None,
            connect_timeout: None,
            sink: Sink::Stdout,
            write_out: None,
            headers: Vec::new(),
            user_agent: None,
            method: None,
            data: None,
            url: None,
        };
        let mut i = 0;
        while i < args.len() {
            let arg = &args[i];
            i += 1;
            if let Some(long) = arg.strip_prefix("--") {
                let flag = match long {
                    "verbose" => Some('v'),
                    "silent" => Some('s'),
                    "show-error" => Some('S'),
                    "fail" => Some('f'),
                    "include" => Some('i'),
                    "head" => Some('I'),
                    "location" => Some('L'),
                    "insecure" => Some('k'),
                    "http1.1" | "tcp-nodelay" => Some('-'),
                    "no-progress-meter" => {
                        o.no_meter = true;
                        Some('-')
                    }
                    _ => None,
                };
                if let Some(flag) = flag {
                    o.flag(flag);
                    continue;
                }
                let key = match long {
                    "max-time" => 'm',
                    "connect-timeout" => 'c',
                    "output" => 'o',
                    "write-out" => 'w',
                    "header" => 'H',
                    "request" => 'X',
                    "data" | "data-raw" | "data-binary" | "data-ascii" => 'd',
                    "user-agent" => 'A',
                    "url" => 'u',
                    _ => return Err(OptionError::Unknown(arg.clone())),
                };
                let Some(value) = args.get(i) else {
                    return Err(OptionError::NeedsParameter(arg.clone()));
                };
                i += 1;
                o.value(key, value, arg)?;
            } else if arg.len() > 1 && arg.starts_with('-') {
                let letters = &arg[1..];
                for (at, c) in letters.char_indices() {
                    match c {
                        'v' | 's' | 'S' | 'f' | 'i' | 'I' | 'L' | 'k' => o.flag(c),
                        'm' | 'o' | 'w' | 'H' | 'X' | 'd' | 'A' => {
                            let rest = &letters[at + c.len_utf8()..];
                            let value = if !rest.is_empty() {
                                rest
                            } else {
                                let Some(v) = args.get(i) else {
                                    return Err(OptionError::NeedsParameter(arg.clone()));
                                };
                                i += 1;
                                v.as_str()
                            };
                            o.value(c, value, arg)?;
                            break;
                        }
                        _ => return Err(OptionError::Unknown(arg.clone())),
                    }
                }
            } else if o.url.is_none() {
                o.url = Some(arg.clone());
            }
        }
        Ok(o)
    }

    fn flag(&mut self, c: char) {
        match c {
            'v' => self.verbose = true,
            's' => self.silent = true,
            'S' => self.show_error = true,
            'f' => self.fail = true,
            'i' => self.include = true,
            'I' => self.head = true,
            _ => {}
        }
    }

    fn value(&mut self, key: char, value: &str, arg: &str) -> Result<(), OptionError> {
        let number = |v: &str| -> Result<Option<Duration>, OptionError> {
            if v.starts_with('-') {
                return Err(OptionError::Negative(arg.to_string()));
            }
            match seconds(v) {
                Some(d) if d.is_zero() => Ok(None),
                Some(d) => Ok(Some(d)),
                None => Err(OptionError::NotANumber(arg.to_string())),
            }
        };
        match key {
            'm' => self.max_time = number(value)?,
            'c' => self.connect_timeout = number(value)?,
            'o' => {
                self.sink = match value {
                    "-" | "/dev/stdout" => Sink::Stdout,
                    "/dev/stderr" => Sink::Stderr,
                    _ => Sink::Discard,
                }
            }
            'w' => self.write_out = Some(value.to_string()),
            'H' => self.headers.push(value.to_string()),
            'X' => self.method = Some(value.to_string()),
            'A' => self.user_agent = Some(value.to_string()),
            'd' => {
                let data = self.data.get_or_insert_with(Vec::new);
                if !data.is_empty() {
                    data.push(b'&');
                }
                data.extend_from_slice(value.as_bytes());
            }
            _ => self.url = Some(value.to_string()),
        }
        Ok(())
    }
}

/// A bad command line, in curl's words (each names the option as written).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum OptionError {
    /// curl has no such option.
    #[error("option {0}: is unknown")]
    Unknown(String),
    /// The option's value is missing.
    #[error("option {0}: requires parameter")]
    NeedsParameter(String),
    /// A negative number of seconds.
    #[error("option {0}: expected a positive numerical parameter")]
    Negative(String),
    /// Not a number of seconds.
    #[error("option {0}: expected a proper numerical parameter")]
    NotANumber(String),
}

/// A parsed `http://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Url {
    /// The host as written (brackets removed from an IPv6 literal).
    host: String,
    port: u16,
    /// The request target: path and query, never empty.
    target: String,
    /// The `Host` header's value.
    authority: String,
    /// What `%{url_effective}` prints.
    effective: String,
}

/// A URL curl will not use, in curl's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum UrlError {
    /// `CURLE_UNSUPPORTED_PROTOCOL`: anything but http.
    #[error("Protocol \"{0}\" not supported or disabled in libcurl")]
    Unsupported(String),
    /// `CURLE_URL_MALFORMAT`.
    #[error("URL using bad/illegal format or missing URL")]
    Malformed,
}

impl UrlError {
    /// curl's exit code for it.
    fn code(&self) -> i32 {
        match self {
            UrlError::Unsupported(_) => 1,
            UrlError::Malformed => 3,
        }
    }
}

/// Parses `s` as curl would for an http URL.
fn parse_url(s: &str) -> Result<Url, UrlError> {
    let bad = || UrlError::Malformed;
    let (scheme, rest) = match s.find("://") {
        Some(i) => (&s[..i], &s[i + 3..]),
        None => ("http", s),
    };
    if !scheme.eq_ignore_ascii_case("http") {
        return Err(UrlError::Unsupported(scheme.to_string()));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6.split_once(']').ok_or_else(bad)?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':').ok_or_else(bad)?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    let port = match port {
        None | Some("") => 80,
        Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p.parse().map_err(|_| bad())?,
        Some(_) => return Err(bad()),
    };
    let (tail, fragment) = match tail.find('#') {
        Some(i) => tail.split_at(i),
        None => (tail, ""),
    };
    let target = match tail.chars().next() {
        None => "/".to_string(),
        Some('?') => format!("/{tail}"),
        Some(_) => tail.to_string(),
    };
    let bracketed = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    let host_header = match port {
        80 => bracketed,
        p => format!("{bracketed}:{p}"),
    };
    let scheme_text = match s.find("://") {
        Some(i) => &s[..i + 3],
        None => "http://",
    };
    let effective = format!("{scheme_text}{authority}{target}{fragment}");
    Ok(Url { host: host.to_string(), port, target, authority: host_header, effective })
}

/// Why a transfer failed, and how far it got (which decides the trailer curl prints).
#[derive(Debug)]
struct Failure {
    code: i32,
    msg: String,
    stage: Stage,
}

/// How far a transfer got when it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Before a connection existed (bad URL): `* Closing connection -1`, no meter.
    Setup,
    /// Name resolution: `* Closing connection 0`, the meter is left as it was.
    Resolve,
    /// Connecting or transferring: the meter's last line, then `* Closing connection 0`.
    Transfer,
}

impl Failure {
    fn new(code: i32, msg: impl Into<String>, stage: Stage) -> Failure {
        Failure { code, msg: msg.into(), stage }
    }
}

/// What `-w` can report.
#[derive(Debug, Default)]
struct Info {
    http_code: u16,
    http_version: &'static str,
    remote: Option<SocketAddr>,
    local: Option<SocketAddr>,
    size_header: u64,
    size_request: u64,
    size_upload: u64,
    content_type: Option<String>,
    url_effective: String,
    method: String,
    exit_code: i32,
    error: String,
    num_connects: u32,
    t_namelookup: Duration,
    t_connect: Duration,
    t_starttransfer: Duration,
    t_total: Duration,
}

/// One `curl` run.
struct Transfer<'a> {
    opts: Options,
    pod: &'a dyn Pod,
    out: &'a Output,
    meter: Meter,
    info: Info,
}

/// The head of a response.
#[derive(Debug, Default)]
struct Head {
    code: u16,
    version: &'static str,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
}

// === impl Transfer ===

impl Transfer<'_> {
    async fn run(&mut self, url: &str) -> i32 {
        let result = self.perform(url).await;
        self.info.t_total = self.meter.start.elapsed();
        let code = match result {
            Ok(keep) => {
                self.meter.finish();
                if keep {
                    self.verbose(format!(
                        "* Connection #0 to host {} left intact\n",
                        self.host_for_messages(url)
                    ));
                } else {
                    self.verbose("* Closing connection 0\n");
                }
                0
            }
            Err(f) => {
                self.verbose(format!("* {}\n", f.msg));
                if f.stage == Stage::Transfer {
                    self.meter.finish();
                }
                self.verbose(match f.stage {
                    Stage::Setup => "* Closing connection -1\n",
                    _ => "* Closing connection 0\n",
                });
                if !self.opts.silent || self.opts.show_error {
                    self.out.err(format!("curl: ({}) {}\n", f.code, f.msg));
                }
                self.info.error = f.msg;
                f.code
            }
        };
        self.info.exit_code = code;
        if let Some(format) = self.opts.write_out.clone() {
            self.write_out(&format);
        }
        code
    }

    /// The host name curl's messages use.
    fn host_for_messages(&self, url: &str) -> String {
        parse_url(url).map(|u| u.host).unwrap_or_default()
    }

    fn verbose(&self, line: impl Into<bytes::Bytes>) {
        if self.opts.verbose {
            self.out.err(line);
        }
    }

    /// The transfer proper; `Ok(true)` if the connection could be reused ("left intact").
    async fn perform(&mut self, url: &str) -> Result<bool, Failure> {
        let url = parse_url(url).map_err(|e| Failure::new(e.code(), e.to_string(), Stage::Setup))?;
        self.info.url_effective = url.effective.clone();
        self.meter.begin();
        let start = self.meter.start;
        let max_deadline = self.opts.max_time.map(|d| start + d);

        let resolving = resolve(self.pod, &url.host);
        let resolved = match max_deadline {
            Some(at) => match wait(&mut self.meter, timeout_at(at, resolving)).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(Failure::new(
                        28,
                        format!("Resolving timed out after {} milliseconds", start.elapsed().as_millis()),
                        Stage::Resolve,
                    ));
                }
            },
            None => wait(&mut self.meter, resolving).await,
        };
        let ips = resolved
            .map_err(|_| Failure::new(6, format!("Could not resolve host: {}", url.host), Stage::Resolve))?;
        self.info.t_namelookup = start.elapsed();

        let conn = self.connect(&url, &ips, max_deadline).await?;
        self.info.t_connect = start.elapsed();
        self.info.num_connects = 1;
        self.info.local = Some(conn.local);
        let mut stream = conn.stream;
        self.exchange(&url, &mut *stream, max_deadline).await
    }

    /// Tries each address in turn, as curl does, printing the `-v` trace.
    async fn connect(
        &mut self,
        url: &Url,
        ips: &[IpAddr],
        max_deadline: Option<Instant>,
    ) -> Result<Connected, Failure> {
        let start = self.meter.start;
        let ct_deadline = start + self.opts.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        // The tighter of curl's two limits, and whether it is --max-time's.
        let (curl_deadline, max_binds) = match max_deadline {
            Some(m) if m <= ct_deadline => (m, true),
            _ => (ct_deadline, false),
        };
        for ip in ips {
            let dst = SocketAddr::new(*ip, url.port);
            self.verbose(format!("*   Trying {dst}...\n"));
            let attempt = Instant::now();
            let kernel_deadline = attempt + KERNEL_CONNECT_TIMEOUT;
            let deadline = curl_deadline.min(kernel_deadline);
            let limit = deadline.saturating_duration_since(attempt);
            let result =
                match wait(&mut self.meter, timeout_at(deadline, self.pod.network().connect(dst, limit)))
                    .await
                {
                    Ok(r) => r,
                    Err(_) => Err(ErrorKind::TimedOut.into()),
                };
            let hops = match &result {
                Ok(c) => &c.hops[..],
                Err(e) => &e.hops[..],
            };
            for hop in hops {
                self.verbose(format!("* netlab: {hop}\n"));
            }
            let reason = match result {
                Ok(conn) => {
                    self.verbose(format!("* Connected to {} ({ip}) port {} (#0)\n", url.host, url.port));
                    self.info.remote = Some(dst);
                    return Ok(conn);
                }
                Err(Error { kind: ErrorKind::Refused, .. }) => "Connection refused",
                Err(Error { kind: ErrorKind::Unreachable, .. }) => "No route to host",
                Err(Error { kind: ErrorKind::TimedOut, .. }) if kernel_deadline < curl_deadline => {
                    "Connection timed out"
                }
                Err(Error { kind: ErrorKind::TimedOut, .. }) if max_binds => {
                    return Err(Failure::new(
                        28,
                        format!("Connection timed out after {} milliseconds", start.elapsed().as_millis()),
                        Stage::Transfer,
                    ));
                }
                Err(Error { kind: ErrorKind::TimedOut, .. }) => {
                    let family = if ip.is_ipv4() { "ipv4" } else { "ipv6" };
                    self.verbose(format!(
                        "* {family} connect timeout after {}ms, move on!\n",
                        (curl_deadline - start).as_millis()
                    ));
                    return Err(Failure::new(
                        28,
                        format!(
                            "Failed to connect to {} port {} after {} ms: Timeout was reached",
                            url.host,
                            url.port,
                            start.elapsed().as_millis()
                        ),
                        Stage::Transfer,
                    ));
                }
            };
            self.verbose(format!("* connect to {ip} port {} failed: {reason}\n", url.port));
        }
        Err(Failure::new(
            7,
            format!(
                "Failed to connect to {} port {} after {} ms: Couldn't connect to server",
                url.host,
                url.port,
                start.elapsed().as_millis()
            ),
            Stage::Transfer,
        ))
    }

    /// The request as bytes, as curl orders its headers.
    fn request(&self, url: &Url) -> Vec<u8> {
        let method = match (&self.opts.method, self.opts.head, &self.opts.data) {
            (Some(m), _, _) => m.clone(),
            (None, true, _) => "HEAD".to_string(),
            (None, false, Some(_)) => "POST".to_string(),
            (None, false, None) => "GET".to_string(),
        };
        // A custom header replaces curl's own; `Name:` with nothing after removes it.
        let custom = |name: &str| {
            self.opts
                .headers
                .iter()
                .find(|h| h.split_once(':').is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name)))
        };
        let mut req = format!("{method} {} HTTP/1.1\r\n", url.target);
        match custom("Host") {
            Some(h) if h.split_once(':').is_some_and(|(_, v)| !v.trim().is_empty()) => {
                let _ = write!(req, "{h}\r\n");
            }
            Some(_) => {}
            None => {
                let _ = write!(req, "Host: {}\r\n", url.authority);
            }
        }
        if custom("User-Agent").is_none() {
            let agent = self.opts.user_agent.as_deref().unwrap_or(USER_AGENT);
            if !agent.is_empty() {
                let _ = write!(req, "User-Agent: {agent}\r\n");
            }
        }
        if custom("Accept").is_none() {
            req.push_str("Accept: */*\r\n");
        }
        for h in &self.opts.headers {
            match h.split_once(':') {
                Some((name, value)) => {
                    if name.trim().eq_ignore_ascii_case("Host") || value.trim().is_empty() {
                        continue;
                    }
                    let _ = write!(req, "{h}\r\n");
                }
                None => {
                    if let Some(name) = h.strip_suffix(';') {
                        let _ = write!(req, "{name}:\r\n");
                    }
                }
            }
        }
        if let Some(data) = &self.opts.data {
            if custom("Content-Length").is_none() {
                let _ = write!(req, "Content-Length: {}\r\n", data.len());
            }
            if custom("Content-Type").is_none() {
                req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            }
        }
        req.push_str("\r\n");
        req.into_bytes()
    }

    /// Sends the request and reads the response; `Ok(keep_alive)`.
    async fn exchange(
        &mut self,
        url: &Url,
        stream: &mut dyn Stream,
        deadline: Option<Instant>,
    ) -> Result<bool, Failure> {
        let request = self.request(url);
        self.info.method = String::from_utf8_lossy(&request).split(' ').next().unwrap_or("GET").to_string();
        self.info.size_request = request.len() as u64;
        if self.opts.verbose {
            let text = String::from_utf8_lossy(&request);
            let mut trace = String::new();
            for line in text.split_inclusive("\r\n") {
                let _ = write!(trace, "> {line}");
            }
            self.out.err(trace);
        }
        let data = self.opts.data.clone().unwrap_or_default();
        if !data.is_empty() {
            self.meter.ul_total = Some(data.len() as u64);
        }
        let sent = async {
            stream.write_all(&request).await?;
            stream.write_all(&data).await?;
            stream.flush().await
        };
        match self.bounded(deadline, sent).await? {
            Ok(()) => {}
            Err(e) => {
                return Err(Failure::new(55, format!("Send failure: {}", errno_text(&e)), Stage::Transfer));
            }
        }
        if !data.is_empty() {
            self.verbose(format!("}} [{} bytes data]\n", data.len()));
            self.meter.ul_cur = data.len() as u64;
            self.info.size_upload = data.len() as u64;
            self.meter.update();
        }

        let mut buf: Vec<u8> = Vec::new();
        let head = self.read_head(stream, &mut buf, deadline).await?;
        self.read_body(stream, buf, &head, deadline).await
    }

    /// Awaits `fut` under `--max-time` (and the meter's ticks).
    async fn bounded<F: Future>(&mut self, deadline: Option<Instant>, fut: F) -> Result<F::Output, Failure> {
        match deadline {
            None => Ok(wait(&mut self.meter, fut).await),
            Some(at) => match wait(&mut self.meter, timeout_at(at, fut)).await {
                Ok(v) => Ok(v),
                Err(_) => Err(self.timed_out()),
            },
        }
    }

    /// `--max-time` expired after the connection was made.
    fn timed_out(&self) -> Failure {
        let ms = self.meter.start.elapsed().as_millis();
        let got = self.meter.dl_cur;
        let msg = match self.meter.dl_total {
            Some(total) => format!(
                "Operation timed out after {ms} milliseconds with {got} out of {total} bytes received"
            ),
            None => {
                format!("Operation timed out after {ms} milliseconds with {got} bytes received")
            }
        };
        Failure::new(28, msg, Stage::Transfer)
    }

    /// Reads one chunk from the peer into `buf`; `Ok(0)` at end of stream.
    async fn fill(
        &mut self,
        stream: &mut dyn Stream,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<usize, Failure> {
        let mut chunk = vec![0u8; 16 * 1024];
        match self.bounded(deadline, stream.read(&mut chunk)).await? {
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Err(e) => Err(Failure::new(56, format!("Recv failure: {}", errno_text(&e)), Stage::Transfer)),
        }
    }

    /// Reads the status line and headers (skipping 1xx responses), tracing each line.
    async fn read_head(
        &mut self,
        stream: &mut dyn Stream,
        buf: &mut Vec<u8>,
        deadline: Option<Instant>,
    ) -> Result<Head, Failure> {
        let mut head: Option<Head> = None;
        let mut received_any = false;
        loop {
            while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                let raw: Vec<u8> = buf.drain(..=pos).collect();
                self.info.size_header += raw.len() as u64;
                let line = String::from_utf8_lossy(&raw).into_owned();
                let text = line.trim_end_matches(['\r', '\n']);
                let Some(h) = head.as_mut() else {
                    let parsed = parse_status(text).ok_or_else(|| {
                        Failure::new(1, "Received HTTP/0.9 when not allowed", Stage::Transfer)
                    })?;
                    if parsed.version == "1.0" {
                        self.verbose("* HTTP 1.0, assume close after body\n");
                    }
                    self.header_line(&line);
                    head = Some(parsed);
                    continue;
                };
                if !text.is_empty() {
                    self.header_line(&line);
                    if let Some((name, value)) = text.split_once(':') {
                        let value = value.trim();
                        match name.trim().to_ascii_lowercase().as_str() {
                            "content-length" => {
                                h.content_length = value.parse().ok();
                                self.meter.dl_total = h.content_length;
                            }
                            "transfer-encoding" => h.chunked = value.to_ascii_lowercase().contains("chunked"),
                            "connection" => h.close = value.eq_ignore_ascii_case("close"),
                            "content-type" => self.info.content_type = Some(value.to_string()),
                            _ => {}
                        }
                    }
                    continue;
                }
                // The blank line ending a head.
                if (100..200).contains(&h.code) && h.code != 101 {
                    self.header_line(&line);
                    head = None;
                    self.meter.dl_total = None;
                    continue;
                }
                self.info.http_code = h.code;
                self.info.http_version = h.version;
                if self.opts.fail && h.code >= 400 {
                    return Err(Failure::new(
                        22,
                        format!("The requested URL returned error: {}", h.code),
                        Stage::Transfer,
                    ));
                }
                self.header_line(&line);
                self.info.t_starttransfer = self.meter.start.elapsed();
                return head.ok_or_else(|| Failure::new(8, "Weird server reply", Stage::Transfer));
            }
            if self.fill(stream, buf, deadline).await? == 0 {
                let msg = if received_any || head.is_some() {
                    "Weird server reply"
                } else {
                    "Empty reply from server"
                };
                let code = if msg.starts_with("Empty") { 52 } else { 8 };
                return Err(Failure::new(code, msg, Stage::Transfer));
            }
            received_any = true;
        }
    }

    /// Traces a response header line and copies it to stdout for `-i`/`-I`.
    fn header_line(&self, line: &str) {
        self.verbose(format!("< {line}"));
        if self.opts.include || self.opts.head {
            self.out.out(line.to_string());
        }
    }

    /// Reads the body as its head delimits it, streaming it out; `Ok(keep_alive)`.
    async fn read_body(
        &mut self,
        stream: &mut dyn Stream,
        mut buf: Vec<u8>,
        head: &Head,
        deadline: Option<Instant>,
    ) -> Result<bool, Failure> {
        let no_body = self.opts.head
            || self.info.method == "HEAD"
            || head.code == 204
            || head.code == 304
            || (100..200).contains(&head.code);
        let mut body = if no_body {
            Body::Empty
        } else if head.chunked {
            Body::Chunked(Chunked::default())
        } else if let Some(n) = head.content_length {
            Body::Length(n)
        } else {
            Body::UntilClose
        };
        let keep = !head.close && head.version != "1.0" && !matches!(body, Body::UntilClose);
        if body.done() {
            return Ok(keep);
        }
        if !buf.is_empty() {
            self.verbose(format!("{{ [{} bytes data]\n", buf.len()));
            self.consume(&mut body, &buf)?;
        }
        while !body.done() {
            buf.clear();
            let n = self.fill(stream, &mut buf, deadline).await?;
            if n == 0 {
                return match body {
                    Body::UntilClose => Ok(false),
                    Body::Length(left) => Err(Failure::new(
                        18,
                        format!("transfer closed with {left} bytes remaining to read"),
                        Stage::Transfer,
                    )),
                    _ => Err(Failure::new(
                        18,
                        "transfer closed with outstanding read data remaining",
                        Stage::Transfer,
                    )),
                };
            }
            self.verbose(format!("{{ [{n} bytes data]\n"));
            self.consume(&mut body, &buf)?;
        }
        Ok(keep)
    }

    /// Decodes raw body bytes and writes them where the body goes.
    fn consume(&mut self, body: &mut Body, raw: &[u8]) -> Result<(), Failure> {
        let mut data = Vec::new();
        match body {
            Body::Empty => {}
            Body::UntilClose => data.extend_from_slice(raw),
            Body::Length(left) => {
                let take = (*left).min(raw.len() as u64) as usize;
                data.extend_from_slice(&raw[..take]);
                *left -= take as u64;
            }
            Body::Chunked(c) => c.feed(raw, &mut data).map_err(|()| {
                Failure::new(
                    56,
                    "Illegal or missing hexadecimal sequence in chunked-encoding",
                    Stage::Transfer,
                )
            })?,
        }
        self.meter.dl_cur += data.len() as u64;
        match self.opts.sink {
            Sink::Stdout => self.out.out(data),
            Sink::Stderr => self.out.err(data),
            Sink::Discard => {}
        }
        self.meter.update();
        Ok(())
    }

    /// Prints `-w FORMAT` (curl's `ourWriteOut`).
    fn write_out(&self, format: &str) {
        let mut to_stderr = false;
        let mut text = String::new();
        let flush = |text: &mut String, to_stderr: bool| {
            let t = std::mem::take(text);
            if to_stderr {
                self.out.err(t);
            } else {
                self.out.out(t);
            }
        };
        let mut rest = format;
        while let Some(c) = rest.chars().next() {
            if let Some(after) = rest.strip_prefix("%{")
                && let Some((var, tail)) = after.split_once('}')
            {
                rest = tail;
                match var {
                    "stdout" | "stderr" => {
                        flush(&mut text, to_stderr);
                        to_stderr = var == "stderr";
                    }
                    _ => match self.variable(var) {
                        Some(v) => text.push_str(&v),
                        None => self.out.err(format!("curl: unknown --write-out variable: '{var}'\n")),
                    },
                }
                continue;
            }
            if let Some(tail) = rest.strip_prefix("%%") {
                text.push('%');
                rest = tail;
                continue;
            }
            if let Some(tail) = rest.strip_prefix('\\') {
                match tail.chars().next() {
                    Some('n') => text.push('\n'),
                    Some('r') => text.push('\r'),
                    Some('t') => text.push('\t'),
                    Some(other) => {
                        text.push('\\');
                        text.push(other);
                    }
                    None => {
                        text.push('\\');
                        rest = tail;
                        continue;
                    }
                }
                let skip = tail.chars().next().map_or(0, char::len_utf8);
                rest = &tail[skip..];
                continue;
            }
            text.push(c);
            rest = &rest[c.len_utf8()..];
        }
        flush(&mut text, to_stderr);
    }

    /// One `-w` variable's value, `None` if curl does not know it.
    fn variable(&self, var: &str) -> Option<String> {
        let i = &self.info;
        let secs = |d: Duration| format!("{:.6}", d.as_secs_f64());
        Some(match var {
            "http_code" | "response_code" => format!("{:03}", i.http_code),
            "http_version" => match i.http_version {
                "" => "0".to_string(),
                v => v.to_string(),
            },
            "remote_ip" => i.remote.map(|a| a.ip().to_string()).unwrap_or_default(),
            "remote_port" => i.remote.map(|a| a.port().to_string()).unwrap_or_default(),
            "local_ip" => i.local.map(|a| a.ip().to_string()).unwrap_or_default(),
            "local_port" => i.local.map(|a| a.port().to_string()).unwrap_or_default(),
            "size_download" => self.meter.dl_cur.to_string(),
            "size_upload" => i.size_upload.to_string(),
            "size_header" => i.size_header.to_string(),
            "size_request" => i.size_request.to_string(),
            "content_type" => i.content_type.clone().unwrap_or_default(),
            "url_effective" | "url" => i.url_effective.clone(),
            "method" => i.method.clone(),
            "scheme" => "HTTP".to_string(),
            "exitcode" => i.exit_code.to_string(),
            "errormsg" => i.error.clone(),
            "num_connects" => i.num_connects.to_string(),
            "num_redirects" => "0".to_string(),
            "speed_download" => {
                let us = i.t_total.as_micros() as u64;
                trspeed(self.meter.dl_cur, us).to_string()
            }
            "time_namelookup" => secs(i.t_namelookup),
            "time_connect" => secs(i.t_connect),
            "time_appconnect" | "time_redirect" => secs(Duration::ZERO),
            "time_pretransfer" => secs(i.t_connect),
            "time_starttransfer" => secs(i.t_starttransfer),
            "time_total" => secs(i.t_total),
            _ => return None,
        })
    }
}

/// Parses `HTTP/1.1 200 OK`.
fn parse_status(line: &str) -> Option<Head> {
    let rest = line.strip_prefix("HTTP/")?;
    let (version, rest) = rest.split_once(' ')?;
    let version = match version {
        "1.1" => "1.1",
        "1.0" => "1.0",
        "2" | "2.0" => "2",
        _ => return None,
    };
    let code: u16 = rest.get(..3)?.parse().ok()?;
    Some(Head { code, version, ..Head::default() })
}

/// The errno text of an I/O error on a connected socket.
fn errno_text(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => "Broken pipe",
        std::io::ErrorKind::TimedOut => "Connection timed out",
        _ => "Connection reset by peer",
    }
}

/// How the rest of a body is delimited.
#[derive(Debug)]
enum Body {
    Empty,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl Body {
    fn done(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Length(left) => *left == 0,
            Body::Chunked(c) => matches!(c.state, ChunkState::Done),
            Body::UntilClose => false,
        }
    }
}

/// A `Transfer-Encoding: chunked` decoder fed raw bytes as they arrive.
#[derive(Debug, Default)]
struct Chunked {
    state: ChunkState,
}

#[derive(Debug)]
enum ChunkState {
    /// Reading a size line.
    Size(Vec<u8>),
    /// Inside a chunk's data.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailer(Vec<u8>),
    Done,
}

impl Default for ChunkState {
    fn default() -> Self {
        ChunkState::Size(Vec::new())
    }
}

// === impl Chunked ===

impl Chunked {
    /// Decodes `input`, appending data to `out`; `Err` on a malformed size line.
    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<(), ()> {
        while let Some(&b) = input.first() {
            match &mut self.state {
                ChunkState::Size(line) => {
                    input = &input[1..];
                    if b != b'\n' {
                        line.push(b);
                        continue;
                    }
                    let text = String::from_utf8_lossy(line);
                    let hex = text.trim_end_matches('\r').split(';').next().unwrap_or("");
                    let size = u64::from_str_radix(hex.trim(), 16).map_err(|_| ())?;
                    self.state =
                        if size == 0 { ChunkState::Trailer(Vec::new()) } else { ChunkState::Data(size) };
                }
                ChunkState::Data(left) => {
                    let take = (*left).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    *left -= take as u64;
                    if *left == 0 {
                        self.state = ChunkState::DataEnd;
                    }
                }
                ChunkState::DataEnd => {
                    input = &input[1..];
                    match b {
                        b'\r' => {}
                        b'\n' => self.state = ChunkState::Size(Vec::new()),
                        _ => return Err(()),
                    }
                }
                ChunkState::Trailer(line) => {
                    input = &input[1..];
                    if b != b'\n' {
                        line.push(b);
                    } else if line.iter().all(|c| *c == b'\r') {
                        self.state = ChunkState::Done;
                    } else {
                        line.clear();
                    }
                }
                ChunkState::Done => break,
            }
        }
        Ok(())
    }
}

/// Awaits `fut`, redrawing the progress meter once a second meanwhile.
async fn wait<F: Future>(meter: &mut Meter, fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    loop {
        let Some(at) = meter.next_update() else {
            return fut.await;
        };
        tokio::select! {
            biased;
            v = &mut fut => return v,
            _ = sleep_until(at) => meter.update(),
        }
    }
}

/// curl's progress meter (`lib/progress.c`), drawn on stderr with `\r` while the transfer
/// runs: at the start, once a second, and a last time (with a newline) when it ends.
#[derive(Debug)]
struct Meter {
    out: Output,
    enabled: bool,
    start: Instant,
    /// Whole seconds elapsed when the meter was last drawn; `None` before it is first drawn.
    shown: Option<u64>,
    finished: bool,
    dl_total: Option<u64>,
    dl_cur: u64,
    ul_total: Option<u64>,
    ul_cur: u64,
}

// === impl Meter ===

impl Meter {
    fn new(out: Output, enabled: bool) -> Meter {
        Meter {
            out,
            enabled,
            start: Instant::now(),
            shown: None,
            finished: false,
            dl_total: None,
            dl_cur: 0,
            ul_total: None,
            ul_cur: 0,
        }
    }

    /// Starts the clock and draws the header and the first line.
    fn begin(&mut self) {
        self.start = Instant::now();
        if !self.enabled {
            return;
        }
        self.out.err(
            "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\n\
             \x20                                Dload  Upload   Total   Spent    Left  Speed\n",
        );
        self.draw();
    }

    /// When the next once-a-second redraw is due, if the meter is running.
    fn next_update(&self) -> Option<Instant> {
        match (self.enabled && !self.finished, self.shown) {
            (true, Some(secs)) => Some(self.start + Duration::from_secs(secs + 1)),
            _ => None,
        }
    }

    /// Redraws if a new second has begun since the last drawing.
    fn update(&mut self) {
        if self.enabled && !self.finished && self.shown.is_some_and(|s| s != self.start.elapsed().as_secs()) {
            self.draw();
        }
    }

    /// The final drawing, ending the meter's line.
    fn finish(&mut self) {
        if self.enabled && !self.finished && self.shown.is_some() {
            self.draw();
            self.out.err("\n");
        }
        self.finished = true;
    }

    fn draw(&mut self) {
        let elapsed = self.start.elapsed();
        self.shown = Some(elapsed.as_secs());
        self.out.err(self.line(elapsed));
    }

    /// One line of the meter, `\r` first (`progress_meter`).
    fn line(&self, elapsed: Duration) -> String {
        let us = elapsed.as_micros() as u64;
        let secs = elapsed.as_secs();
        let dl_speed = trspeed(self.dl_cur, us);
        let ul_speed = trspeed(self.ul_cur, us);
        let estimate = |total: Option<u64>, cur: u64, speed: u64| match total {
            Some(total) if speed > 0 => (total / speed, percent(total, cur)),
            _ => (0, 0),
        };
        let (dl_secs, dl_pct) = estimate(self.dl_total, self.dl_cur, dl_speed);
        let (ul_secs, ul_pct) = estimate(self.ul_total, self.ul_cur, ul_speed);
        let expected = self.ul_total.unwrap_or(self.ul_cur) + self.dl_total.unwrap_or(self.dl_cur);
        let total_pct = percent(expected, self.dl_cur + self.ul_cur);
        let total_secs = dl_secs.max(ul_secs);
        let left = if total_secs > 0 { total_secs.saturating_sub(secs) } else { 0 };
        format!(
            "\r{total_pct:3} {}  {dl_pct:3} {}  {ul_pct:3} {}  {}  {} {} {} {} {}",
            max5(expected),
            max5(self.dl_cur),
            max5(self.ul_cur),
            max5(dl_speed),
            max5(ul_speed),
            time2str(total_secs),
            time2str(secs),
            time2str(left),
            max5(trspeed(self.dl_cur + self.ul_cur, us)),
        )
    }
}

/// Bytes per second (`trspeed`).
fn trspeed(size: u64, us: u64) -> u64 {
    if us < 1 { size.saturating_mul(1_000_000) } else { size.saturating_mul(1_000_000) / us }
}

/// `pgrs_est_percent`.
fn percent(total: u64, cur: u64) -> u64 {
    if total > 10_000 { cur / (total / 100) } else { (cur * 100).checked_div(total).unwrap_or(0) }
}

/// A size in at most five characters (`max5data`).
fn max5(bytes: u64) -> String {
    const K: u64 = 1024;
    const M: u64 = 1024 * K;
    const G: u64 = 1024 * M;
    if bytes < 100_000 {
        format!("{bytes:5}")
    } else if bytes < 10_000 * K {
        format!("{:4}k", bytes / K)
    } else if bytes < 100 * M {
        format!("{:2}.{}M", bytes / M, (bytes % M) / (M / 10))
    } else if bytes < 10_000 * M {
        format!("{:4}M", bytes / M)
    } else {
        format!("{:4}G", bytes / G)
    }
}

/// Seconds as `HH:MM:SS`, `--:--:--` when unknown (`time2str`).
fn time2str(secs: u64) -> String {
    if secs == 0 {
        return "--:--:--".to_string();
    }
    let h = secs / 3600;
    if h <= 99 {
        let m = (secs % 3600) / 60;
        let s = secs % 60;
        format!("{h:2}:{m:02}:{s:02}")
    } else {
        let d = secs / 86400;
        let h = (secs % 86400) / 3600;
        if d <= 999 { format!("{d:3}d {h:02}h") } else { format!("{d:7}d") }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter(dl_total: Option<u64>, dl_cur: u64) -> Meter {
        let (out, _rx) = Output::new();
        let mut m = Meter::new(out, true);
        m.dl_total = dl_total;
        m.dl_cur = dl_cur;
        m
    }

    /// Lines as curl 7.88.1 drew them for the same sizes and times (its "Current" column
    /// comes from a speed window; here it is the average).
    #[test]
    fn meter_lines() {
        let cases = [
            (None, 0, 0, "\r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0"),
            (
                Some(6),
                6,
                1526,
                "\r100     6  100     6    0     0   3931      0 --:--:-- --:--:-- --:--:--  3931",
            ),
            // Chunked: the size is unknown, so the total is what arrived.
            (
                None,
                7,
                6410,
                "\r100     7    0     7    0     0   1092      0 --:--:-- --:--:-- --:--:--  1092",
            ),
            // -f on a 404: the size is known, nothing was written.
            (
                Some(4),
                0,
                300,
                "\r  0     4    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0",
            ),
            (
                Some(50 * 1024 * 1024),
                5 * 1024 * 1024,
                10_000_000,
                "\r 10 50.0M   10 5120k    0     0   512k      0  0:01:40  0:00:10  0:01:30  512k",
            ),
        ];
        for (total, cur, us, want) in cases {
            assert_eq!(meter(total, cur).line(Duration::from_micros(us)), want, "{total:?} {cur}");
        }
    }

    #[test]
    fn units_and_times() {
        assert_eq!(max5(99_999), "99999");
        assert_eq!(max5(100_000), "  97k");
        assert_eq!(max5(20 * 1024 * 1024 + 512 * 1024), "20.5M");
        assert_eq!(max5(500 * 1024 * 1024), " 500M");
        assert_eq!(time2str(0), "--:--:--");
        assert_eq!(time2str(61), " 0:01:01");
        assert_eq!(time2str(100 * 3600), "  4d 04h");
    }

    #[test]
    fn urls() {
        let u = parse_url("http://[fd00::1]:8080/a?b#c").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str(), u.authority.as_str()),
            ("fd00::1", 8080, "/a?b", "[fd00::1]:8080")
        );
        let u = parse_url("orders?x=1").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str(), u.effective.as_str()),
            ("orders", 80, "/?x=1", "http://orders/?x=1")
        );
        assert_eq!(parse_url("http://h:80/").unwrap().authority, "h");
        assert_eq!(parse_url("ftp://h/").unwrap_err().code(), 1);
        assert_eq!(parse_url("http://:80/").unwrap_err().code(), 3);
    }

    #[test]
    fn chunked_decoder() {
        let mut c = Chunked::default();
        let mut out = Vec::new();
        for piece in [&b"4;ext=1\r\nab"[..], b"cd\r", b"\n0\r\nTrailer: x\r\n", b"\r\n"] {
            c.feed(piece, &mut out).unwrap();
        }
        assert_eq!(out, b"abcd");
        assert!(matches!(c.state, ChunkState::Done));
        assert!(Chunked::default().feed(b"zz\r\n", &mut out).is_err());
    }
}
