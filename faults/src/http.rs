//! The HTTP side on each process's health port: a guard that makes the health endpoints
//! (`/healthz`, `/readyz`, `/livez`, CoreDNS's `/health` and `/ready`) answer 503 naming the fault
//! while the process is stopped or paused, and `/fault`: `GET` tells what holds the process,
//! `DELETE` lifts it here and now.
//!
//! Why the health port still answers for a "dead" process: it is the lab's window on the process,
//! and the only way left to lift an apiserver stop (the API that would delete the fault is the
//! one refusing connections). Health checks then fail, as they would for a dead process; compose
//! and `netlab up` restart only processes that exit, so a stopped process stays stopped until
//! its fault ends, and only a kill is followed by a restart.

use axum::{
    Router,
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;

use crate::{Faults, gate::Mode};

/// The paths health checks probe.
const HEALTH_PATHS: [&str; 5] = ["/healthz", "/readyz", "/livez", "/health", "/ready"];

/// What `/fault` answers.
#[derive(Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct FaultState {
    /// The process (`scheduler`, `kube-proxy/node-1`).
    pub component: String,
    /// `running`, `stopped` or `paused`.
    pub state: String,
    /// `namespace/name` of the fault holding it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// Whether the process has listed the faults and decided on them.
    pub synced: bool,
}

// === impl Faults ===

impl Faults {
    /// `router` with its health endpoints guarded and `/fault` added.
    pub fn guard(&self, router: Router) -> Router {
        router.merge(self.routes()).layer(middleware::from_fn_with_state(self.clone(), guard))
    }

    /// `/fault` on its own.
    pub fn routes(&self) -> Router {
        let (show, lift) = (self.clone(), self.clone());
        Router::new().route(
            "/fault",
            get(move || async move { json(&show.fault_state()) }).delete(move || async move {
                match lift.lift() {
                    Some(_) => (StatusCode::OK, json(&lift.fault_state())).into_response(),
                    None => (StatusCode::NOT_FOUND, "no fault holds this process\n").into_response(),
                }
            }),
        )
    }

    /// What holds the process now.
    pub fn fault_state(&self) -> FaultState {
        let state = self.gate().state();
        FaultState {
            component: self.me().reporter(),
            state: state.mode.as_str().to_string(),
            fault: state.fault.map(|f| f.name),
            synced: self.is_synced(),
        }
    }
}

fn json(state: &FaultState) -> Response {
    // A struct of strings and a bool always serializes.
    let body = serde_json::to_string(state).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The middleware [`Faults::guard`] puts on a router: health paths answer 503 while held.
pub async fn guard(State(faults): State<Faults>, req: Request, next: Next) -> Response {
    if HEALTH_PATHS.contains(&req.uri().path()) {
        let state = faults.gate().state();
        if state.mode != Mode::Running {
            let fault = state.fault.map(|f| f.name).unwrap_or_default();
            let text =
                format!("{} is {} by ComponentChaos {fault}\n", faults.me().reporter(), state.mode.as_str());
            return (StatusCode::SERVICE_UNAVAILABLE, text).into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use netlab_chaos::{
        ComponentChaos, ComponentChaosSpec,
        lab::{Component, ComponentAction},
    };
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::decide::Me;

    async fn call(addr: std::net::SocketAddr, method: &str, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn health_fails_while_held_and_delete_lifts() {
        let faults = Faults::new(Me::component(Component::Apiserver));
        let router = faults.guard(Router::new().route("/healthz", get(|| async { "ok" })));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });

        assert!(call(addr, "GET", "/healthz").await.starts_with("HTTP/1.1 200"));
        let mut fault = ComponentChaos {
            metadata: Default::default(),
            spec: ComponentChaosSpec {
                action: ComponentAction::Stop,
                component: Component::Apiserver,
                nodes: vec![],
                duration: None,
            },
            status: None,
        };
        fault.metadata.name = Some("stop-api".into());
        fault.metadata.namespace = Some("default".into());
        fault.metadata.uid = Some("u1".into());
        faults.hold(Some((Mode::Stopped, Arc::new(fault))));
        let health = call(addr, "GET", "/healthz").await;
        assert!(health.starts_with("HTTP/1.1 503"), "{health}");
        assert!(health.contains("apiserver is stopped by ComponentChaos default/stop-api"), "{health}");
        assert!(
            call(addr, "GET", "/fault").await.contains(r#""state":"stopped","fault":"default/stop-api""#)
        );

        assert!(call(addr, "DELETE", "/fault").await.starts_with("HTTP/1.1 200"));
        assert!(faults.lifted().contains("u1"));
        faults.hold(None);
        assert!(call(addr, "GET", "/healthz").await.starts_with("HTTP/1.1 200"));
        assert!(call(addr, "DELETE", "/fault").await.starts_with("HTTP/1.1 404"));
    }
}
