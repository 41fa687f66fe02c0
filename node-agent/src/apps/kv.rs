//! The key-value app (`redis`): a small server speaking RESP, redis's protocol, so `redis-cli`
//! style clients work over a virtual connection. Commands: PING, GET, SET, DEL, EXISTS, INCR,
//! KEYS (glob `*` only, plus exact names). Data lives as long as the container.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio_util::sync::CancellationToken;

use crate::sockets::Listener;

type Store = Arc<Mutex<BTreeMap<String, Vec<u8>>>>;

/// Accepts and serves connections until `stop`; all connections share one keyspace.
pub async fn serve(mut listener: Listener, stop: CancellationToken) {
    let store: Store = Arc::default();
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => match c { Some(c) => c, None => return },
        };
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = session(conn.stream, store) => {}
            }
        });
    }
}

async fn session(stream: tokio::io::DuplexStream, store: Store) -> std::io::Result<()> {
    let (r, mut w) = tokio::io::split(stream);
    let mut r = BufReader::new(r);
    loop {
        let Some(args) = read_command(&mut r).await? else {
            return Ok(());
        };
        if args.is_empty() {
            continue;
        }
        let reply = execute(&store, &args);
        w.write_all(&reply).await?;
    }
}

/// Reads one command: a RESP array of bulk strings, or an inline line.
async fn read_command<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<Vec<Vec<u8>>>> {
    let mut line = String::new();
    if r.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let line = line.trim_end_matches(['\r', '\n']);
    let bad = || std::io::Error::new(std::io::ErrorKind::InvalidData, "Protocol error");
    if let Some(n) = line.strip_prefix('*') {
        let n: usize = n.parse().map_err(|_| bad())?;
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let mut header = String::new();
            r.read_line(&mut header).await?;
            let len: usize =
                header.trim_end().strip_prefix('$').and_then(|l| l.parse().ok()).ok_or_else(bad)?;
            let mut buf = vec![0u8; len + 2];
            r.read_exact(&mut buf).await?;
            buf.truncate(len);
            args.push(buf);
        }
        Ok(Some(args))
    } else {
        Ok(Some(line.split_whitespace().map(|s| s.as_bytes().to_vec()).collect()))
    }
}

fn bulk(v: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", v.len()).into_bytes();
    out.extend_from_slice(v);
    out.extend_from_slice(b"\r\n");
    out
}

fn int(n: i64) -> Vec<u8> {
    format!(":{n}\r\n").into_bytes()
}

/// Runs one command and renders the reply.
fn execute(store: &Store, args: &[Vec<u8>]) -> Vec<u8> {
    let name = String::from_utf8_lossy(&args[0]).to_uppercase();
    let key = |i: usize| String::from_utf8_lossy(&args[i]).into_owned();
    let wrong =
        || format!("-ERR wrong number of arguments for '{}' command\r\n", name.to_lowercase()).into_bytes();
    let mut map = store.lock().unwrap_or_else(|e| e.into_inner());
    match name.as_str() {
        "PING" if args.len() == 1 => b"+PONG\r\n".to_vec(),
        "PING" => bulk(&args[1]),
        "GET" if args.len() == 2 => map.get(&key(1)).map(|v| bulk(v)).unwrap_or_else(|| b"$-1\r\n".to_vec()),
        "SET" if args.len() >= 3 => {
            map.insert(key(1), args[2].clone());
            b"+OK\r\n".to_vec()
        }
        "DEL" if args.len() >= 2 => {
            int((1..args.len()).filter(|i| map.remove(&key(*i)).is_some()).count() as i64)
        }
        "EXISTS" if args.len() >= 2 => {
            int((1..args.len()).filter(|i| map.contains_key(&key(*i))).count() as i64)
        }
        "INCR" if args.len() == 2 => {
            let current = map.get(&key(1)).map(|v| String::from_utf8_lossy(v).parse::<i64>());
            match current {
                Some(Err(_)) => b"-ERR value is not an integer or out of range\r\n".to_vec(),
                Some(Ok(n)) => {
                    map.insert(key(1), (n + 1).to_string().into_bytes());
                    int(n + 1)
                }
                None => {
                    map.insert(key(1), b"1".to_vec());
                    int(1)
                }
            }
        }
        "KEYS" if args.len() == 2 => {
            let pattern = key(1);
            let keys: Vec<&String> = map
                .keys()
                .filter(|k| match pattern.strip_suffix('*') {
                    Some(prefix) => k.starts_with(prefix),
                    None => **k == pattern,
                })
                .collect();
            let mut out = format!("*{}\r\n", keys.len()).into_bytes();
            for k in keys {
                out.extend(bulk(k.as_bytes()));
            }
            out
        }
        "GET" | "SET" | "DEL" | "EXISTS" | "INCR" | "KEYS" => wrong(),
        _ => {
            let shown: Vec<String> =
                args[1..].iter().map(|a| format!("'{}'", String::from_utf8_lossy(a))).collect();
            format!(
                "-ERR unknown command '{}', with args beginning with: {}\r\n",
                String::from_utf8_lossy(&args[0]),
                shown.join(" ")
            )
            .into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::{Protocol, SocketTable};

    #[tokio::test]
    async fn redis_commands() {
        let t = SocketTable::new();
        let l = t.listen("10.244.1.5:6379".parse().unwrap(), Protocol::Tcp).unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(l, stop.clone()));
        let mut c =
            t.connect("10.244.1.6:40000".parse().unwrap(), "10.244.1.5:6379".parse().unwrap()).unwrap();
        let script: &[(&[u8], &[u8])] = &[
            (b"*1\r\n$4\r\nPING\r\n", b"+PONG\r\n"),
            (b"*3\r\n$3\r\nSET\r\n$1\r\na\r\n$5\r\nhello\r\n", b"+OK\r\n"),
            (b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n", b"$5\r\nhello\r\n"),
            (b"*2\r\n$3\r\nGET\r\n$1\r\nz\r\n", b"$-1\r\n"),
            (b"INCR n\r\n", b":1\r\n"),
            (b"INCR n\r\n", b":2\r\n"),
            (b"EXISTS a n z\r\n", b":2\r\n"),
            (b"KEYS *\r\n", b"*2\r\n$1\r\na\r\n$1\r\nn\r\n"),
            (b"DEL a\r\n", b":1\r\n"),
            (b"INCR\r\n", b"-ERR wrong number of arguments for 'incr' command\r\n"),
        ];
        for (req, want) in script {
            c.write_all(req).await.unwrap();
            let mut buf = vec![0u8; want.len()];
            c.read_exact(&mut buf).await.unwrap();
            assert_eq!(String::from_utf8_lossy(&buf), String::from_utf8_lossy(want));
        }
        stop.cancel();
    }
}
