//! `redis-cli` as redis 7 behaves when stdout is not a tty (as under `kubectl exec` without
//! `-t`): it sends one command as a RESP array and prints the reply in "raw" mode
//! (`cliFormatReplyRaw` plus a newline):
//!
//! | reply         | raw (default)              | `--no-raw` (tty style)   |
//! |---------------|----------------------------|--------------------------|
//! | `+OK`         | `OK`                       | `OK`                     |
//! | `$5 hello`    | `hello`                    | `"hello"`                |
//! | `$-1` (nil)   | an empty line              | `(nil)`                  |
//! | `:1`          | `1`                        | `(integer) 1`            |
//! | `-ERR x`      | `ERR x` and an empty line  | `(error) ERR x`          |
//! | `*2 a b`      | `a`, `b` on separate lines | `1) "a"` / `2) "b"`      |
//!
//! An error reply still exits 0 (unless `-e`). Options: `-h`, `-p`, `-t` (connect timeout,
//! redis 7.2), `--raw`, `--no-raw`, `-e`.

use std::{net::SocketAddr, time::Duration};

use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader},
    time::timeout,
};

use super::{KERNEL_CONNECT_TIMEOUT, Output, Pod, resolve, seconds};
use crate::podnet::{Error, ErrorKind, Stream};

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Status(Vec<u8>),
    Error(Vec<u8>),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

/// Runs `redis-cli ARGS`; returns the exit code.
pub(super) async fn run(args: &[String], pod: &dyn Pod, out: &Output) -> i32 {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 6379;
    let mut connect_timeout: Option<Duration> = None;
    let mut raw = true;
    let mut errcode = false;
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        let value = args.get(i + 1);
        match (arg, value) {
            ("-h", Some(v)) => host = v.clone(),
            // atoi: garbage is port 0.
            ("-p", Some(v)) => port = v.parse().unwrap_or(0),
            ("-t", Some(v)) => match seconds(v) {
                Some(t) => connect_timeout = (!t.is_zero()).then_some(t),
                None => {
                    out.err("Invalid connection timeout for '-t'.\n");
                    return 1;
                }
            },
            ("--raw", _) => raw = true,
            ("--no-raw", _) => raw = false,
            ("-e", _) => errcode = true,
            _ if arg.starts_with('-') => {
                out.err(format!("Unrecognized option or bad number of args for: '{arg}'\n"));
                return 1;
            }
            _ => break,
        }
        i += match arg {
            "-h" | "-p" | "-t" => 2,
            _ => 1,
        };
    }
    let command = &args[i..];

    let fail = |reason: &str| {
        out.err(format!("Could not connect to Redis at {host}:{port}: {reason}\n"));
    };
    // Without a command redis-cli would read commands from stdin, and exec gives it none.
    let code_without_command = |code: i32| if command.is_empty() { 0 } else { code };
    let ips = match resolve(pod, &host).await {
        Ok(ips) => ips,
        Err(e) => {
            fail(e.gai_strerror());
            return code_without_command(1);
        }
    };
    let limit = connect_timeout.map_or(KERNEL_CONNECT_TIMEOUT, |t| t.min(KERNEL_CONNECT_TIMEOUT));
    let mut stream = None;
    let mut reason = "Connection refused";
    for ip in ips {
        let dst = SocketAddr::new(ip, port);
        let result = match timeout(limit, pod.network().connect(dst, limit)).await {
            Ok(r) => r,
            Err(_) => Err(ErrorKind::TimedOut.into()),
        };
        match result {
            Ok(conn) => {
                stream = Some(conn.stream);
                break;
            }
            Err(Error { kind: ErrorKind::Refused, .. }) => reason = "Connection refused",
            Err(Error { kind: ErrorKind::Unreachable, .. }) => reason = "No route to host",
            Err(Error { kind: ErrorKind::TimedOut, .. }) => reason = "Connection timed out",
        }
    }
    let Some(stream) = stream else {
        fail(reason);
        return code_without_command(1);
    };
    if command.is_empty() {
        return 0;
    }

    let mut stream = BufReader::new(stream);
    let mut request = format!("*{}\r\n", command.len()).into_bytes();
    for arg in command {
        request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        request.extend_from_slice(arg.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    if let Err(e) = send(stream.get_mut(), &request).await {
        out.err(format!("Error: {}\n", io_text(&e)));
        return 1;
    }
    let reply = match read_reply(&mut stream).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            out.err("Error: Server closed the connection\n");
            return 1;
        }
        Err(ReadError::Io(e)) => {
            out.err(format!("Error: {}\n", io_text(&e)));
            return 1;
        }
        Err(ReadError::Protocol(what)) => {
            out.err(format!("Error: Protocol error, got {what} as reply type byte\n"));
            return 1;
        }
    };
    if let (true, Reply::Error(e)) = (errcode, &reply) {
        let mut text = e.clone();
        text.push(b'\n');
        out.err(text);
        return 1;
    }
    out.out(if raw {
        let mut text = format_raw(&reply);
        text.push(b'\n');
        text
    } else {
        format_tty(&reply, "")
    });
    0
}

async fn send(stream: &mut Box<dyn Stream>, request: &[u8]) -> std::io::Result<()> {
    stream.write_all(request).await?;
    stream.flush().await
}

/// The `strerror` text redis-cli prints after `Error: `.
fn io_text(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => "Broken pipe",
        std::io::ErrorKind::UnexpectedEof => "Server closed the connection",
        _ => "Connection reset by peer",
    }
}

/// Why a reply could not be read.
#[derive(Debug)]
enum ReadError {
    Io(std::io::Error),
    /// hiredis's "Protocol error, got X as reply type byte", X quoted as hiredis quotes it.
    Protocol(String),
}

impl From<std::io::Error> for ReadError {
    fn from(e: std::io::Error) -> Self {
        ReadError::Io(e)
    }
}

/// Reads one reply; `Ok(None)` if the server closed the connection first.
async fn read_reply<R: tokio::io::AsyncBufRead + Unpin + Send>(
    r: &mut R,
) -> Result<Option<Reply>, ReadError> {
    let mut stack: Vec<(usize, Vec<Reply>)> = Vec::new();
    loop {
        let mut line = Vec::new();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let Some(kind) = text.chars().next() else {
            return Err(ReadError::Protocol("\"\"".into()));
        };
        let rest = &text[kind.len_utf8()..];
        let bad = || ReadError::Protocol(format!("\"{kind}\""));
        let mut reply = match kind {
            '+' => Reply::Status(rest.as_bytes().to_vec()),
            '-' => Reply::Error(rest.as_bytes().to_vec()),
            ':' => Reply::Integer(rest.parse().map_err(|_| bad())?),
            '_' => Reply::Nil,
            '$' => {
                let len: i64 = rest.parse().map_err(|_| bad())?;
                if len < 0 {
                    Reply::Nil
                } else {
                    let mut data = vec![0u8; len as usize + 2];
                    match r.read_exact(&mut data).await {
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                            return Ok(None);
                        }
                        Err(e) => return Err(e.into()),
                    }
                    data.truncate(len as usize);
                    Reply::Bulk(data)
                }
            }
            '*' => {
                let n: i64 = rest.parse().map_err(|_| bad())?;
                if n < 0 {
                    Reply::Nil
                } else if n == 0 {
                    Reply::Array(Vec::new())
                } else {
                    stack.push((n as usize, Vec::new()));
                    continue;
                }
            }
            _ => return Err(bad()),
        };
        // Fold completed elements into their arrays.
        loop {
            let Some((want, items)) = stack.last_mut() else {
                return Ok(Some(reply));
            };
            items.push(reply);
            if items.len() < *want {
                break;
            }
            let (_, items) = stack.pop().unwrap_or_default();
            reply = Reply::Array(items);
        }
    }
}

/// `cliFormatReplyRaw` (the caller appends the newline).
fn format_raw(reply: &Reply) -> Vec<u8> {
    match reply {
        Reply::Nil => Vec::new(),
        Reply::Error(e) => {
            let mut v = e.clone();
            v.push(b'\n');
            v
        }
        Reply::Status(s) | Reply::Bulk(s) => s.clone(),
        Reply::Integer(n) => n.to_string().into_bytes(),
        Reply::Array(items) => {
            let mut v = Vec::new();
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    v.push(b'\n');
                }
                v.extend(format_raw(item));
            }
            v
        }
    }
}

/// `cliFormatReplyTTY`.
fn format_tty(reply: &Reply, prefix: &str) -> Vec<u8> {
    match reply {
        Reply::Error(e) => format!("(error) {}\n", String::from_utf8_lossy(e)).into_bytes(),
        Reply::Status(s) => {
            let mut v = s.clone();
            v.push(b'\n');
            v
        }
        Reply::Integer(n) => format!("(integer) {n}\n").into_bytes(),
        Reply::Bulk(b) => format!("{}\n", repr(b)).into_bytes(),
        Reply::Nil => b"(nil)\n".to_vec(),
        Reply::Array(items) if items.is_empty() => b"(empty array)\n".to_vec(),
        Reply::Array(items) => {
            let width = items.len().to_string().len();
            let nested = format!("{prefix}{}", " ".repeat(width + 2));
            let mut v = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let lead = if i == 0 { "" } else { prefix };
                v.extend(format!("{lead}{:>width$}) ", i + 1).into_bytes());
                v.extend(format_tty(item, &nested));
            }
            v
        }
    }
}

/// `sdscatrepr`: a quoted, escaped string.
fn repr(bytes: &[u8]) -> String {
    let mut s = String::from("\"");
    for &b in bytes {
        match b {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            0x07 => s.push_str("\\a"),
            0x08 => s.push_str("\\b"),
            b if b.is_ascii_graphic() || b == b' ' => s.push(b as char),
            b => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('"');
    s
}
