//! The echo app (`nginx`, `httpd`, `hashicorp/http-echo`, `netlab/echo`, ...): an HTTP/1.1
//! server that answers every request with who served it (pod, IP, node) and what it saw, so a
//! client can tell which endpoint a Service picked. `/status/<code>` answers with that code,
//! which lets a readiness probe fail on purpose.

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use tokio_util::sync::CancellationToken;

use super::Identity;
use crate::sockets::Listener;

/// Accepts and serves connections until `stop`.
pub async fn serve(listener: Listener, who: Identity, stop: CancellationToken) {
    super::http::serve(listener, stop, move |peer, req| answer(&who, peer, req)).await
}

/// The response to one request.
fn answer<B>(who: &Identity, peer: std::net::SocketAddr, req: &Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let status = path
        .strip_prefix("/status/")
        .and_then(|c| c.parse::<u16>().ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::OK);
    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let body = format!(
        "pod={} ip={} node={}\nnamespace={} container={}\nmethod={} path={} host={}\nclient={}\n",
        who.pod,
        who.ip,
        who.node,
        who.namespace,
        who.container,
        req.method(),
        req.uri(),
        host,
        peer,
    );
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain; charset=utf-8"));
    resp
}

#[cfg(test)]
mod tests {
    use http_body_util::{BodyExt as _, Empty};
    use hyper_util::rt::TokioIo;

    use super::*;
    use crate::sockets::{Protocol, SocketTable};

    #[tokio::test]
    async fn answers_with_pod_ip_node() {
        let t = SocketTable::new();
        let who = Identity {
            pod: "orders-abc".into(),
            namespace: "default".into(),
            ip: "10.244.1.2".parse().unwrap(),
            node: "node-1".into(),
            container: "nginx".into(),
        };
        let l = t.listen("10.244.1.2:80".parse().unwrap(), Protocol::Tcp).unwrap();
        let stop = CancellationToken::new();
        tokio::spawn(serve(l, who, stop.clone()));
        for (path, code) in [("/", 200), ("/status/503", 503)] {
            let stream =
                t.connect("10.244.1.9:40000".parse().unwrap(), "10.244.1.2:80".parse().unwrap()).unwrap();
            let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
            tokio::spawn(conn);
            let req = Request::get(path).header("host", "orders").body(Empty::<Bytes>::new()).unwrap();
            let resp = send.send_request(req).await.unwrap();
            assert_eq!(resp.status().as_u16(), code);
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8_lossy(&body);
            assert!(text.starts_with("pod=orders-abc ip=10.244.1.2 node=node-1\n"), "{text}");
            assert!(text.contains("client=10.244.1.9:40000"), "{text}");
        }
        stop.cancel();
    }
}
