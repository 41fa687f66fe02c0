//! The toolbox: the commands `netlab exec POD -- CMD` runs inside a pod (`curl`, `aws`, `nc`,
//! `redis-cli`, `cat`, `ip`, `hostname`, `env`, `echo`, `sleep`, `sh -c`, ...). A pod has no real
//! process or socket, so these are re-implementations that talk through the node's kernel model,
//! and they print exactly what the real tools print (curl 7.88.1, OpenBSD netcat as in
//! netshoot, redis-cli 7 with a non-tty stdout, busybox) so that lab output reads like a real
//! cluster's.
//!
//! The environment (the pod's network, name resolution, its files and addresses) reaches the
//! tools through the [`Pod`] trait, so they can be tested against in-memory peers. Output
//! streams through [`Output`] while the command runs, as `kubectl exec` streams it.
//!
//! Layout: [`run`] dispatches to the builtins here, to `curl`, `aws`, `nc`, `redis-cli` in submodules,
//! to the DNS commands in `dns`, and to a tiny `sh -c` (words, quotes, `$VAR`, `;`, `&&`,
//! `||`).

use std::{future::Future, net::IpAddr, pin::Pin, time::Duration};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{
    podnet::PodNetwork,
    resolver::{self, ResolveError},
};

mod aws;
mod curl;
mod dns;
mod nc;
mod redis;
mod shell;

#[cfg(test)]
mod tests;

/// How long the kernel keeps retrying an unanswered SYN before `connect` fails with
/// `ETIMEDOUT` (Linux `tcp_syn_retries` = 6): the connect timeout of a tool that sets none.
pub const KERNEL_CONNECT_TIMEOUT: Duration = Duration::from_secs(130);

/// The pod a command runs in: its network and the few files the tools read.
#[async_trait::async_trait]
pub trait Pod: Send + Sync {
    /// The pod's network namespace: every connection and datagram of every tool goes through it.
    fn network(&self) -> &dyn PodNetwork;
    /// Resolves a host name as the pod's libc does (`getaddrinfo` over the pod's resolv.conf
    /// and network).
    async fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, ResolveError> {
        resolver::getaddrinfo(self.resolv_conf(), name, self.network()).await
    }
    /// The pod's host name (the pod name).
    fn hostname(&self) -> &str;
    /// The pod's IP.
    fn ip(&self) -> IpAddr;
    /// The content of `/etc/resolv.conf`.
    fn resolv_conf(&self) -> &str;
    /// The container's environment, in order.
    fn env(&self) -> &[(String, String)];
    /// What `ip addr` prints.
    fn ip_addr(&self) -> String;
    /// What `ip route` prints.
    fn ip_route(&self) -> String;
    /// A file the container sees through a volume mount (a projected token), if there is one
    /// at `path`.
    fn file(&self, _path: &str) -> Option<String> {
        None
    }
}

/// A piece of a command's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Bytes written to stdout.
    Stdout(Bytes),
    /// Bytes written to stderr.
    Stderr(Bytes),
}

/// Where a command writes; backed by an unbounded channel so output streams while the command
/// runs. Writes after the receiver is gone are dropped (the client went away).
#[derive(Debug, Clone)]
pub struct Output {
    tx: mpsc::UnboundedSender<Chunk>,
}

// === impl Output ===

impl Output {
    /// A new output and the receiving end of its chunks.
    pub fn new() -> (Output, mpsc::UnboundedReceiver<Chunk>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Output { tx }, rx)
    }

    /// Writes to stdout.
    pub fn out(&self, s: impl Into<Bytes>) {
        let s = s.into();
        if !s.is_empty() {
            let _ = self.tx.send(Chunk::Stdout(s));
        }
    }

    /// Writes to stderr.
    pub fn err(&self, s: impl Into<Bytes>) {
        let s = s.into();
        if !s.is_empty() {
            let _ = self.tx.send(Chunk::Stderr(s));
        }
    }
}

/// Why a command could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The executable does not exist in the image (the runtime's message for it).
    #[error("exec: \"{0}\": executable file not found in $PATH")]
    NotFound(String),
}

/// Runs `argv` in `pod`, streaming its output to `out`; returns the exit code.
pub async fn run(argv: &[String], pod: &dyn Pod, out: &Output) -> Result<i32, ExecError> {
    dispatch(argv, pod, out).await
}

/// The boxed form of [`run`], so that `sh -c` and `env CMD` can recurse; no stdin (exec gives
/// none).
fn dispatch<'a>(
    argv: &'a [String],
    pod: &'a dyn Pod,
    out: &'a Output,
) -> Pin<Box<dyn Future<Output = Result<i32, ExecError>> + Send + 'a>> {
    dispatch_in(argv, Bytes::new(), pod, out)
}

/// [`dispatch`] with `stdin` (a pipeline stage's input).
fn dispatch_in<'a>(
    argv: &'a [String],
    stdin: Bytes,
    pod: &'a dyn Pod,
    out: &'a Output,
) -> Pin<Box<dyn Future<Output = Result<i32, ExecError>> + Send + 'a>> {
    Box::pin(async move {
        let Some((name, args)) = argv.split_first() else {
            return Err(ExecError::NotFound(String::new()));
        };
        let Some(tool) = executable(name) else {
            return Err(ExecError::NotFound(name.clone()));
        };
        Ok(match tool {
            Tool::Curl => curl::run(args, pod, out).await,
            Tool::Aws => aws::run(args, pod, out).await,
            Tool::Nc => nc::run(args, &stdin, pod, out).await,
            Tool::RedisCli => redis::run(args, pod, out).await,
            Tool::Dns(command) => dns::run(command, args, pod, out).await,
            Tool::Shell(shell) => shell::run(shell, args, pod, out).await,
            Tool::Cat if args.is_empty() || args.iter().all(|a| a == "-") => {
                out.out(stdin.clone());
                0
            }
            Tool::Cat => cat(args, pod, out),
            Tool::Ip => ip(args, pod, out),
            Tool::Hostname => hostname(args, pod, out),
            Tool::Env if !args.is_empty() => return dispatch_in(args, stdin, pod, out).await,
            Tool::Env | Tool::Printenv => printenv(args, pod, out),
            Tool::Echo => echo(args, out),
            Tool::True => 0,
            Tool::False => 1,
            Tool::Sleep => sleep(args, out).await,
        })
    })
}

/// The executables the toolbox image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    Curl,
    /// The AWS CLI (v1), `sts get-caller-identity` with the SDK's credential chain.
    Aws,
    Nc,
    RedisCli,
    /// `dig`, `nslookup`, `host`, `getent`.
    Dns(dns::Command),
    /// `sh`, `ash` or `bash` (the name shows in its messages).
    Shell(&'static str),
    Cat,
    Ip,
    Hostname,
    Env,
    Printenv,
    Echo,
    True,
    False,
    Sleep,
}

/// The tool an `argv[0]` names: a bare name, or one of the image's bin directories plus a name.
fn executable(name: &str) -> Option<Tool> {
    const DIRS: [&str; 5] = ["/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/", "/usr/local/bin/"];
    let base = match name.strip_prefix('/') {
        Some(_) => DIRS.iter().find_map(|d| name.strip_prefix(d))?,
        None => name,
    };
    Some(match base {
        "curl" => Tool::Curl,
        "aws" => Tool::Aws,
        "nc" | "netcat" => Tool::Nc,
        "redis-cli" => Tool::RedisCli,
        "dig" => Tool::Dns(dns::Command::Dig),
        "nslookup" => Tool::Dns(dns::Command::Nslookup),
        "host" => Tool::Dns(dns::Command::Host),
        "getent" => Tool::Dns(dns::Command::Getent),
        "sh" => Tool::Shell("sh"),
        "ash" => Tool::Shell("ash"),
        "bash" => Tool::Shell("bash"),
        "cat" => Tool::Cat,
        "ip" => Tool::Ip,
        "hostname" => Tool::Hostname,
        "env" => Tool::Env,
        "printenv" => Tool::Printenv,
        "echo" => Tool::Echo,
        "true" => Tool::True,
        "false" => Tool::False,
        "sleep" => Tool::Sleep,
        _ => return None,
    })
}

/// `/etc/hosts` as the kubelet writes it for a pod (`managedHostsFileContent`).
pub fn etc_hosts(hostname: &str, ip: IpAddr) -> String {
    format!(
        "# Kubernetes-managed hosts file.\n\
         127.0.0.1\tlocalhost\n\
         ::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\n\
         fe00::0\tip6-mcastprefix\n\
         fe00::1\tip6-allnodes\n\
         fe00::2\tip6-allrouters\n\
         {ip}\t{hostname}\n"
    )
}

/// busybox `cat`: the files the pod has; every other path does not exist.
fn cat(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    let mut code = 0;
    for path in args {
        let content = match path.as_str() {
            "/etc/resolv.conf" => pod.resolv_conf().to_string(),
            "/etc/hostname" => format!("{}\n", pod.hostname()),
            "/etc/hosts" => etc_hosts(pod.hostname(), pod.ip()),
            "-" => String::new(),
            other if pod.file(other).is_some() => pod.file(other).unwrap_or_default(),
            _ => {
                out.err(format!("cat: {path}: No such file or directory\n"));
                code = 1;
                continue;
            }
        };
        out.out(content);
    }
    code
}

/// iproute2 `ip addr` / `ip route` (and their abbreviations), with the text the caller built.
fn ip(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    let args: Vec<&str> = args.iter().map(String::as_str).filter(|a| !matches!(*a, "-4" | "-6")).collect();
    let Some((object, rest)) = args.split_first() else {
        out.err(IP_USAGE);
        return 255;
    };
    let is = |full: &str| !object.is_empty() && full.starts_with(object);
    let (text, what) = if is("address") {
        (pod.ip_addr(), "address")
    } else if is("route") {
        (pod.ip_route(), "route")
    } else {
        out.err(format!("Object \"{object}\" is unknown, try \"ip help\".\n"));
        return 255;
    };
    match rest.first() {
        None | Some(&"show") | Some(&"list") | Some(&"ls") | Some(&"lst") => {
            out.out(text);
            0
        }
        Some(other) => {
            out.err(format!("Command \"{other}\" is unknown, try \"ip {what} help\".\n"));
            255
        }
    }
}

const IP_USAGE: &str = "Usage: ip [ OPTIONS ] OBJECT { COMMAND | help }\n       \
ip [ -force ] -batch filename\n\
where  OBJECT := { address | addrlabel | amt | fou | help | ila | ioam | l2tp | link |\n                   \
macsec | maddress | monitor | mptcp | mroute | mrule |\n                   \
neighbor | neighbour | netconf | netns | nexthop | ntable |\n                   \
ntbl | route | rule | sr | tap | tcpmetrics |\n                   \
token | tunnel | tuntap | vrf | xfrm }\n";

/// busybox `hostname` (`-i` prints the addresses, each followed by a space).
fn hostname(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    match args.first().map(String::as_str) {
        None | Some("-s") | Some("-f") => out.out(format!("{}\n", pod.hostname())),
        Some("-i") => out.out(format!("{} \n", pod.ip())),
        Some(other) => {
            out.err(format!("hostname: unrecognized option: {}\n", other.trim_start_matches('-')));
            return 1;
        }
    }
    0
}

/// `env` and `printenv [NAME...]`.
fn printenv(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    if args.is_empty() {
        let text: String = pod.env().iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        out.out(text);
        return 0;
    }
    let mut code = 0;
    for name in args {
        match pod.env().iter().find(|(k, _)| k == name) {
            Some((_, v)) => out.out(format!("{v}\n")),
            None => code = 1,
        }
    }
    code
}

/// busybox `echo` (`-n` only).
fn echo(args: &[String], out: &Output) -> i32 {
    let (newline, words) = match args.first().map(String::as_str) {
        Some("-n") => (false, &args[1..]),
        _ => (true, args),
    };
    let mut text = words.join(" ");
    if newline {
        text.push('\n');
    }
    out.out(text);
    0
}

/// busybox `sleep N[smhd]` (fractions allowed; several arguments add up).
async fn sleep(args: &[String], out: &Output) -> i32 {
    if args.is_empty() {
        out.err("sleep: missing operand\n");
        return 1;
    }
    let mut total = Duration::ZERO;
    for arg in args {
        let (number, unit) = match arg.char_indices().last() {
            Some((i, c)) if c.is_ascii_alphabetic() => (&arg[..i], c),
            _ => (arg.as_str(), 's'),
        };
        let factor = match unit {
            's' => 1.0,
            'm' => 60.0,
            'h' => 3600.0,
            'd' => 86400.0,
            _ => f64::NAN,
        };
        match number.parse::<f64>() {
            Ok(n) if n >= 0.0 && (n * factor).is_finite() => total += Duration::from_secs_f64(n * factor),
            _ => {
                out.err(format!("sleep: invalid number '{arg}'\n"));
                return 1;
            }
        }
    }
    tokio::time::sleep(total).await;
    0
}

/// Parses a decimal number of seconds as the tools' `-m`, `-w`, `-t` take it.
fn seconds(s: &str) -> Option<Duration> {
    let n: f64 = s.parse().ok()?;
    (n >= 0.0 && n.is_finite()).then(|| Duration::from_secs_f64(n))
}

/// Resolves `host` for a tool: an IP literal is used as is, a name goes through the pod's libc.
async fn resolve(pod: &dyn Pod, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    match pod.resolve(host).await {
        Ok(ips) if ips.is_empty() => Err(ResolveError::NotFound),
        other => other,
    }
}
