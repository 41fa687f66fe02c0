//! The HTTP/1.1 server loop the HTTP apps share (echo, netexec): accept on the pod's socket,
//! serve each connection with hyper until `stop`, and answer each request with the app's own
//! function of the client's address and the request.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use tokio_util::sync::CancellationToken;

use crate::sockets::Listener;

/// Accepts and serves connections on `listener` until `stop`, answering with `answer`.
pub async fn serve<F>(mut listener: Listener, stop: CancellationToken, answer: F)
where
    F: Fn(SocketAddr, &Request<Incoming>) -> Response<Full<Bytes>> + Clone + Send + Sync + 'static,
{
    loop {
        let conn = tokio::select! {
            _ = stop.cancelled() => return,
            c = listener.accept() => match c { Some(c) => c, None => return },
        };
        let answer = answer.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let peer = conn.peer;
            let service = service_fn(move |req: Request<Incoming>| {
                let response = answer(peer, &req);
                async move { Ok::<_, Infallible>(response) }
            });
            let serving = http1::Builder::new().serve_connection(TokioIo::new(conn.stream), service);
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = serving => {}
            }
        });
    }
}
