//! agnhost's `netexec` (`registry.k8s.io/e2e-test-images/agnhost`), the server upstream's own
//! network e2e tests run, conntrack's among them: HTTP on 8080 (`/`, `/hostname`, `/clientip`,
//! `/echo?msg=`, `/healthz`) and UDP on 8081, where a datagram `hostname`, `echo TEXT` or
//! `clientip` is answered with the pod's name, TEXT or the sender's `ip:port` (no newline, as
//! agnhost writes them) and anything else gets no answer. UDP makes it the server for flows that
//! conntrack pins to one endpoint.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use super::Identity;
use crate::sockets::Listener;

/// agnhost netexec's `--http-port` default.
pub const HTTP_PORT: u16 = 8080;
/// agnhost netexec's `--udp-port` default.
pub const UDP_PORT: u16 = 8081;

/// Serves HTTP on `listener` until `stop`.
pub async fn serve_http(listener: Listener, who: Identity, stop: CancellationToken) {
    super::http::serve(listener, stop, move |peer, req| http_answer(&who, peer, req)).await
}

/// Serves UDP on `udp` until `stop`: one exchange per datagram.
pub async fn serve_udp(mut listener: Listener, who: Identity, stop: CancellationToken) {
    loop {
        let mut conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => match c { Some(c) => c, None => return },
        };
        let pod = who.pod.clone();
        tokio::spawn(async move {
            let mut datagram = Vec::new();
            if conn.stream.read_to_end(&mut datagram).await.is_err() {
                return;
            }
            if let Some(reply) = udp_answer(&pod, conn.peer, &datagram) {
                let _ = conn.stream.write_all(reply.as_bytes()).await;
            }
            let _ = conn.stream.shutdown().await;
        });
    }
}

/// The answer to one datagram, as netexec's UDP server gives it.
fn udp_answer(pod: &str, peer: SocketAddr, datagram: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(datagram).trim().to_lowercase();
    if text == "hostname" {
        Some(pod.to_string())
    } else if let Some(rest) = text.strip_prefix("echo ") {
        Some(rest.to_string())
    } else if text == "clientip" {
        Some(peer.to_string())
    } else {
        None
    }
}

/// The answer to one HTTP request.
fn http_answer<B>(who: &Identity, peer: SocketAddr, req: &Request<B>) -> Response<Full<Bytes>> {
    let query = req.uri().query().unwrap_or("");
    let (status, body) = match req.uri().path() {
        "/" => (StatusCode::OK, format!("NOW: {}", jiff::Timestamp::now())),
        "/hostname" => (StatusCode::OK, who.pod.clone()),
        "/clientip" => (StatusCode::OK, peer.to_string()),
        "/healthz" | "/readyz" => (StatusCode::OK, String::new()),
        "/echo" => {
            let msg = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("msg="))
                .map(percent_decode)
                .unwrap_or_default();
            (StatusCode::OK, msg)
        }
        _ => (StatusCode::NOT_FOUND, "404 page not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

/// `%XX` and `+` decoded, as Go's `url.Query()` gives netexec its `msg`.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok()).ok_or(()) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::{Protocol, SocketTable};

    #[test]
    fn udp_commands() {
        let peer: SocketAddr = "10.244.1.9:12345".parse().unwrap();
        assert_eq!(udp_answer("collector-1", peer, b"hostname\n").as_deref(), Some("collector-1"));
        assert_eq!(udp_answer("c", peer, b"echo hi there\n").as_deref(), Some("hi there"));
        assert_eq!(udp_answer("c", peer, b"clientip").as_deref(), Some("10.244.1.9:12345"));
        assert_eq!(udp_answer("c", peer, b"what"), None);
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("100%"), "100%");
    }

    #[tokio::test]
    async fn a_datagram_gets_its_answer_through_the_socket_table() {
        let t = SocketTable::new();
        let who = Identity {
            pod: "collector-1".into(),
            namespace: "default".into(),
            ip: "10.244.1.2".parse().unwrap(),
            node: "node-1".into(),
            container: "agnhost".into(),
        };
        let l = t.listen("10.244.1.2:8081".parse().unwrap(), Protocol::Udp).unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve_udp(l, who, stop.clone()));
        let mut s = t
            .open("10.244.1.9:12345".parse().unwrap(), "10.244.1.2:8081".parse().unwrap(), Protocol::Udp)
            .unwrap();
        s.write_all(b"clientip\n").await.unwrap();
        s.shutdown().await.unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "10.244.1.9:12345");
        // TCP on the UDP port is refused: the listener is UDP's.
        assert!(t.connect("10.244.1.9:40000".parse().unwrap(), "10.244.1.2:8081".parse().unwrap()).is_err());
        stop.cancel();
    }
}
