//! RegistryChaos in the registry: per repository pattern, answer with a real registry's error
//! (401 with its challenge, 403 DENIED, 404 MANIFEST_UNKNOWN, 429 Docker Hub's rate limit, 5xx),
//! answer late, or reset the connection (see [`super::reset`] for why a reset and not a refusal).
//!
//! Decided per request, before the handler, inside the request's span, which every decision
//! marks. Only requests that name a repository (manifests, blobs, tags) are affected; `/v2/` and
//! the catalogue answer as usual, as they do on a registry that limits or denies one repository.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{Method, header},
    middleware::Next,
    response::Response,
};
use jiff::Timestamp;
use netlab_chaos::{
    FaultRef, RegistryChaos,
    lab::RegistryAction,
    object::Chaos,
    pattern,
    report::{FaultKey, Reporter},
    status::counter,
    window::Window,
};
use netlab_client::{Client, ListParams, reflector};
use tokio_util::sync::CancellationToken;

use super::{
    ApiError,
    http::{self, Route},
    reset::Peer,
};

/// How often the counters go into the faults' status.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What a fault does to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Answer with this error.
    Error(ApiError),
    /// Answer later by this much.
    Delay(Duration),
    /// Reset the connection.
    Unreachable,
}

/// One fault's decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// For the span mark.
    pub fault: FaultRef,
    /// For the counters.
    pub key: FaultKey,
    /// What it does.
    pub effect: Effect,
}

/// The RegistryChaos objects, watched from the apiserver.
pub struct RegistryFaults {
    cache: reflector::Cache<RegistryChaos>,
    reporter: Arc<Reporter>,
}

impl std::fmt::Debug for RegistryFaults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryFaults").finish_non_exhaustive()
    }
}

// === impl RegistryFaults ===

impl RegistryFaults {
    /// Watches RegistryChaos through `client` and reports counters as `cloud`, until `shutdown`.
    pub fn start(client: Client, shutdown: CancellationToken) -> Arc<Self> {
        let (cache, mut changes) = reflector::reflector::<RegistryChaos>(
            client.clone(),
            ListParams::default(),
            shutdown.child_token(),
        );
        // The cache is what counts; the change stream only has to be drained.
        tokio::spawn(async move { while changes.recv().await.is_some() {} });
        let reporter = Reporter::new("cloud");
        let flush = tokio::spawn(reporter.clone().run(client, REPORT_EVERY));
        tokio::spawn(async move {
            shutdown.cancelled().await;
            flush.abort();
        });
        Arc::new(Self { cache, reporter })
    }

    /// What the faults in force do to a request for repository `name`.
    pub fn decide(&self, name: &str, reference: Option<&str>, head: bool) -> Vec<Verdict> {
        decide(&self.cache.list(), Timestamp::now(), name, reference, head)
    }
}

/// The verdicts of `faults` on a request for repository `name` (and `reference`, for a
/// manifest) at `now`, in fault-name order: every delay, then at most one refusal (the first).
/// A 429 spares HEADs, as Docker Hub's limit does (it counts GETs of manifests; a HEAD is how a
/// client checks its remaining pulls), so containerd resolves the tag and fails on the GET, the
/// way the famous `toomanyrequests` event reads.
pub fn decide(
    faults: &[Arc<RegistryChaos>],
    now: Timestamp,
    name: &str,
    reference: Option<&str>,
    head: bool,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    let mut refused = false;
    for f in faults {
        if !Window::of(&f.metadata, f.duration()).active_at(now) || !pattern::any(&f.spec.repositories, name)
        {
            continue;
        }
        let effect = match f.spec.action {
            RegistryAction::Delay => {
                let delay = f
                    .spec
                    .delay
                    .as_deref()
                    .and_then(|d| netlab_config::parse_duration(d).ok())
                    .unwrap_or_default();
                Effect::Delay(delay)
            }
            RegistryAction::Unreachable => Effect::Unreachable,
            RegistryAction::Error => match f.spec.status_code.unwrap_or(500) {
                401 => Effect::Error(ApiError::Unauthorized { name: name.into() }),
                403 => Effect::Error(ApiError::Denied),
                404 => Effect::Error(ApiError::ManifestUnknown {
                    name: name.into(),
                    reference: reference.unwrap_or("latest").into(),
                }),
                429 if head => continue,
                429 => Effect::Error(ApiError::TooManyRequests),
                502 => Effect::Error(ApiError::BadGateway),
                503 => Effect::Error(ApiError::Unavailable),
                _ => Effect::Error(ApiError::Unknown),
            },
        };
        if !matches!(effect, Effect::Delay(_)) {
            if refused {
                continue;
            }
            refused = true;
        }
        let ns = f.metadata.namespace.as_deref().unwrap_or_default();
        let fname = f.metadata.name.as_deref().unwrap_or_default();
        out.push(Verdict {
            fault: FaultRef::new(ns, fname, "RegistryChaos", f.spec.action.as_str()),
            key: FaultKey::of(f.as_ref()),
            effect,
        });
    }
    out
}

/// Middleware: applies the verdicts on the request's repository, marking the request's span.
pub async fn enforce(State(faults): State<Arc<RegistryFaults>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let (name, reference) = match http::route(&path) {
        Route::Manifest { name, reference } => (name, Some(reference)),
        Route::Blob { name, .. } | Route::Tags { name } => (name, None),
        _ => return next.run(req).await,
    };
    let head = req.method() == Method::HEAD;
    let verdicts = faults.decide(name, reference, head);
    for v in &verdicts {
        match &v.effect {
            Effect::Delay(d) => {
                v.fault.mark_current(&format!("delayed {}ms", d.as_millis()));
                faults.reporter.add(&v.key, counter::PULLS_DELAYED, 1);
                tokio::time::sleep(*d).await;
            }
            Effect::Error(e) => {
                v.fault.mark_current(&format!("answered {} {}", e.status(), e.code()));
                faults.reporter.add(&v.key, counter::PULLS_REFUSED, 1);
                let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
                return http::error(e, head, host);
            }
            Effect::Unreachable => {
                v.fault.mark_current("connection reset");
                faults.reporter.add(&v.key, counter::PULLS_REFUSED, 1);
                match req.extensions().get::<ConnectInfo<Peer>>() {
                    Some(ConnectInfo(peer)) => peer.reset(),
                    // Served without the resetting listener (in-process tests): the nearest
                    // answer is the one a frontend gives for a backend it cannot reach.
                    None => return http::error(&ApiError::BadGateway, head, ""),
                }
                return Response::default();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::RegistryChaosSpec;

    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn fault(name: &str, action: RegistryAction, repos: &[&str], code: Option<u16>) -> Arc<RegistryChaos> {
        Arc::new(RegistryChaos {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(at("2026-01-01T10:00:00Z"))),
                ..Default::default()
            },
            spec: RegistryChaosSpec {
                action,
                repositories: repos.iter().map(|r| r.to_string()).collect(),
                status_code: code,
                delay: Some("200ms".into()),
                duration: Some("60s".into()),
            },
            status: None,
        })
    }

    const NOW: &str = "2026-01-01T10:00:05Z";

    fn effects(faults: &[Arc<RegistryChaos>], name: &str, head: bool) -> Vec<Effect> {
        decide(faults, at(NOW), name, Some("1.27"), head).into_iter().map(|v| v.effect).collect()
    }

    #[test]
    fn per_repository_pattern_and_window() {
        let f = [fault("deny", RegistryAction::Error, &["library/nginx*"], Some(403))];
        assert_eq!(effects(&f, "library/nginx", false), [Effect::Error(ApiError::Denied)]);
        assert!(effects(&f, "library/busybox", false).is_empty());
        assert!(decide(&f, at("2026-01-01T10:01:00Z"), "library/nginx", None, false).is_empty());
        let v = &decide(&f, at(NOW), "library/nginx", None, true)[0];
        assert_eq!(
            (v.fault.name.as_str(), v.fault.kind, v.fault.action),
            ("default/deny", "RegistryChaos", "error")
        );
    }

    #[test]
    fn status_codes_map_to_the_registry_errors() {
        let one =
            |code| effects(&[fault("f", RegistryAction::Error, &[], Some(code))], "library/nginx", false);
        assert_eq!(one(401), [Effect::Error(ApiError::Unauthorized { name: "library/nginx".into() })]);
        assert_eq!(
            one(404),
            [Effect::Error(ApiError::ManifestUnknown {
                name: "library/nginx".into(),
                reference: "1.27".into()
            })]
        );
        assert_eq!(one(429), [Effect::Error(ApiError::TooManyRequests)]);
        assert_eq!(one(500), [Effect::Error(ApiError::Unknown)]);
        assert_eq!(one(502), [Effect::Error(ApiError::BadGateway)]);
        assert_eq!(one(503), [Effect::Error(ApiError::Unavailable)]);
        // Docker Hub answers HEADs while it rate-limits GETs.
        assert!(
            effects(&[fault("f", RegistryAction::Error, &[], Some(429))], "library/nginx", true).is_empty()
        );
    }

    #[test]
    fn delays_add_up_before_one_refusal() {
        let f = [
            fault("a-slow", RegistryAction::Delay, &[], None),
            fault("b-down", RegistryAction::Unreachable, &[], None),
            fault("c-deny", RegistryAction::Error, &[], Some(403)),
        ];
        assert_eq!(
            effects(&f, "library/nginx", false),
            [Effect::Delay(Duration::from_millis(200)), Effect::Unreachable]
        );
    }
}
