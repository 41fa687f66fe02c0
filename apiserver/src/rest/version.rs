//! `/version` and the health endpoints.
//!
//! The version is what picks kubectl on these machines: the `kubectl` on PATH is the Cloud SDK's
//! dispatcher, which asks `/version` first and runs the kubectl of the server's minor version
//! (1.27–1.33). netlab answers 1.32, the version whose requests and outputs the REST edge
//! follows. The `+netlab` build metadata says which server this is, as distributions do
//! (`v1.32.0+k3s1`).

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

/// The Kubernetes version the REST edge speaks.
pub const GIT_VERSION: &str = "v1.32.0+netlab";

/// `GET /version`: `version.Info`.
pub async fn version() -> Response {
    let info = json!({
        "major": "1",
        "minor": "32",
        "gitVersion": GIT_VERSION,
        "gitCommit": env!("CARGO_PKG_VERSION"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "n/a",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, go_arch()),
    });
    super::request::json_response(axum::http::StatusCode::OK, &info)
}

/// Go's `GOARCH` name of this machine's architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `/healthz`, `/livez`, `/readyz`: the process answers, so it is healthy (`ok`, as upstream
/// prints when every check passes).
pub async fn ok() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"))], "ok").into_response()
}
