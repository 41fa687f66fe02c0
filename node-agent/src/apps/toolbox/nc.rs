//! `nc` as netshoot's OpenBSD netcat (Debian's `netcat-openbsd`, built against musl) behaves:
//! `nc -zv HOST PORT...` probes ports, naming the resolved address when HOST is a name; without
//! `-z` it connects and copies what the peer sends to stdout (exec gives it no stdin; a pipeline
//! stage can). `-u` sends its stdin as one datagram, from `-p PORT` if given, and prints the
//! answer, waiting `-w` seconds for it: `echo hostname | nc -u -w 2 -p 12345 SVC 8081`, as
//! upstream's conntrack e2e tests send. Client mode only: `-l` is refused.

use std::{net::SocketAddr, time::Duration};

use tokio::{io::AsyncReadExt as _, time::timeout};

use super::{KERNEL_CONNECT_TIMEOUT, Output, Pod, resolve};
use crate::podnet::{Error, ErrorKind, Stream};

/// OpenBSD netcat's usage text.
const USAGE: &str = "usage: nc [-46CDdFhklNnrStUuvZz] [-I length] [-i interval] [-M ttl]\n\
\t  [-m minttl] [-O length] [-P proxy_username] [-p source_port]\n\
\t  [-q seconds] [-s sourceaddr] [-T keyword] [-V rtable] [-W recvlimit]\n\
\t  [-w timeout] [-X proxy_protocol] [-x proxy_address[:port]]\n\
\t  [destination] [port]\n";

/// The service names netshoot's `/etc/services` gives the ports labs use.
fn service(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        22 => "ssh",
        23 => "telnet",
        25 => "smtp",
        53 => "domain",
        80 => "http",
        443 => "https",
        3306 => "mysql",
        5432 => "postgresql",
        6379 => "redis",
        8080 => "http-alt",
        _ => "*",
    }
}

/// Runs `nc ARGS`; returns the exit code.
pub(super) async fn run(args: &[String], stdin: &[u8], pod: &dyn Pod, out: &Output) -> i32 {
    let mut zero = false;
    let mut udp = false;
    let mut source_port: Option<u16> = None;
    let mut verbose = false;
    let mut wait: Option<Duration> = None;
    let mut positional: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg.len() < 2 || !arg.starts_with('-') || !positional.is_empty() {
            positional.push(arg);
            continue;
        }
        for (at, c) in arg[1..].char_indices() {
            match c {
                'z' => zero = true,
                'v' => verbose = true,
                '4' | '6' | 'C' | 'D' | 'd' | 'F' | 'k' | 'N' | 'n' | 'r' | 'S' | 't' | 'Z' => {}
                'h' => {
                    out.err(USAGE);
                    return 1;
                }
                'u' => udp = true,
                'l' | 'U' => {
                    out.err(format!("nc: netlab: -{c} is not supported (client mode only)\n"));
                    return 1;
                }
                'w' | 'p' | 's' | 'i' | 'q' | 'T' | 'x' | 'X' | 'I' | 'O' | 'M' | 'm' | 'P' | 'V' | 'W' => {
                    let rest = &arg[1 + at + 1..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        v.clone()
                    } else {
                        out.err(format!("nc: option requires an argument -- '{c}'\n"));
                        out.err(USAGE);
                        return 1;
                    };
                    if c == 'p' {
                        match value.parse::<u16>() {
                            Ok(port) if port != 0 => source_port = Some(port),
                            _ => {
                                out.err(format!("nc: port number invalid: {value}\n"));
                                return 1;
                            }
                        }
                    }
                    if c == 'w' {
                        match value.parse::<u32>() {
                            Ok(secs) => wait = Some(Duration::from_secs(secs.into())),
                            Err(_) => {
                                out.err(format!("nc: timeout invalid: {value}\n"));
                                return 1;
                            }
                        }
                    }
                    break;
                }
                other => {
                    out.err(format!("nc: invalid option -- '{other}'\n"));
                    out.err(USAGE);
                    return 1;
                }
            }
        }
    }
    let Some((host, port_args)) = positional.split_first() else {
        out.err(USAGE);
        return 1;
    };
    if port_args.is_empty() {
        out.err("nc: missing port number\n");
        return 1;
    }
    let mut ports = Vec::new();
    for p in port_args {
        match parse_ports(p) {
            Some(range) => ports.extend(range),
            None => {
                out.err(format!("nc: port number invalid: {p}\n"));
                return 1;
            }
        }
    }
    let ips = match resolve(pod, host).await {
        Ok(ips) => ips,
        Err(e) => {
            out.err(format!("nc: getaddrinfo for host \"{host}\" port {}: {}\n", ports[0], e.gai_strerror()));
            return 1;
        }
    };

    if udp {
        return datagram(&ips, ports[0], host, source_port, wait, zero, verbose, stdin, pod, out).await;
    }
    let limit = wait.map_or(KERNEL_CONNECT_TIMEOUT, |w| w.min(KERNEL_CONNECT_TIMEOUT));
    let kernel_gives_up = wait.is_none_or(|w| w >= KERNEL_CONNECT_TIMEOUT);
    let mut code = 1;
    for port in ports {
        for ip in &ips {
            let dst = SocketAddr::new(*ip, port);
            let shown = if host.parse::<std::net::IpAddr>().is_ok() {
                host.to_string()
            } else {
                format!("{host} ({ip})")
            };
            let result = match timeout(limit, pod.network().connect(dst, limit)).await {
                Ok(r) => r,
                Err(_) => Err(ErrorKind::TimedOut.into()),
            };
            let (verdict, reason) = match result {
                Ok(mut conn) => {
                    if verbose {
                        out.err(format!(
                            "Connection to {shown} {port} port [tcp/{}] succeeded!\n",
                            service(port)
                        ));
                    }
                    code = 0;
                    if !zero {
                        relay(&mut *conn.stream, wait, out).await;
                        return 0;
                    }
                    break;
                }
                Err(Error { kind: ErrorKind::Refused, .. }) => ("failed", "Connection refused"),
                Err(Error { kind: ErrorKind::Unreachable, .. }) => ("failed", "No route to host"),
                Err(Error { kind: ErrorKind::TimedOut, .. }) if kernel_gives_up => {
                    ("failed", "Connection timed out")
                }
                Err(Error { kind: ErrorKind::TimedOut, .. }) => ("timed out", "Operation now in progress"),
            };
            if verbose {
                out.err(format!("nc: connect to {shown} port {port} (tcp) {verdict}: {reason}\n"));
            }
        }
    }
    code
}

/// `nc -u`: stdin as one datagram to the first address, and the answer on stdout. UDP has no
/// handshake, so `-zv` reports success whatever is there, as netcat does; an answer that never
/// comes ends the wait silently with status 0, and ICMP port-unreachable ends it with 1.
#[allow(clippy::too_many_arguments)]
async fn datagram(
    ips: &[std::net::IpAddr],
    port: u16,
    host: &str,
    source_port: Option<u16>,
    wait: Option<Duration>,
    zero: bool,
    verbose: bool,
    stdin: &[u8],
    pod: &dyn Pod,
    out: &Output,
) -> i32 {
    let Some(ip) = ips.first() else { return 1 };
    if verbose || zero {
        let shown = if host.parse::<std::net::IpAddr>().is_ok() {
            host.to_string()
        } else {
            format!("{host} ({ip})")
        };
        if verbose {
            out.err(format!("Connection to {shown} {port} port [udp/{}] succeeded!\n", service(port)));
        }
        if zero {
            return 0;
        }
    }
    if stdin.is_empty() {
        return 0;
    }
    // Without -w netcat waits for an answer until killed; the exec's own limit ends it here.
    let wait = wait.unwrap_or(KERNEL_CONNECT_TIMEOUT);
    let dst = SocketAddr::new(*ip, port);
    match pod.network().exchange_from(source_port, dst, stdin.to_vec(), wait).await {
        Ok(reply) => {
            out.out(reply);
            0
        }
        Err(Error { kind: ErrorKind::Refused, .. }) => 1,
        Err(_) => 0,
    }
}

/// Copies what the peer sends to stdout until it closes (or, with `-w`, goes idle).
async fn relay(stream: &mut dyn Stream, idle: Option<Duration>, out: &Output) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let read = match idle {
            Some(idle) => match timeout(idle, stream.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => return,
            },
            None => stream.read(&mut buf).await,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(n) => out.out(buf[..n].to_vec()),
        }
    }
}

/// A port or an inclusive range `LO-HI`.
fn parse_ports(s: &str) -> Option<std::ops::RangeInclusive<u16>> {
    let number = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0);
    match s.split_once('-') {
        Some((lo, hi)) => {
            let (lo, hi) = (number(lo)?, number(hi)?);
            Some(lo.min(hi)..=lo.max(hi))
        }
        None => number(s).map(|p| p..=p),
    }
}
