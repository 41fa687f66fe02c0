//! The apiserver client every netlab component uses: typed CRUD over k8s-openapi types, and
//! list-watch ([`reflector`]) that keeps a local cache in sync, relisting when the apiserver says
//! the watch is too old, as client-go's reflector does.
//!
//! # Layout
//! - [`Client`]: connect, get, list, create, update, update_status, delete, raw watch.
//! - [`Object`]: which k8s-openapi types map to which apiserver resource.
//! - [`Error`]: a Kubernetes status (reason, message, code) or a transport failure.
//! - [`reflector`]: the cache plus a stream of changes, for controllers.

use std::{sync::Arc, time::Duration};

use netlab_proto::apiserver::v1::{
    self as pb, CreateRequest, DeleteRequest, GetRequest, ListRequest, Resource, UpdateRequest, WatchRequest,
    api_server_client::ApiServerClient,
};
use prost::Message as _;
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

mod object;
pub mod recorder;
pub mod reflector;

pub use object::{Object, key_of};

type Interceptor = fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status>;
type Inner = ApiServerClient<InterceptedService<Channel, Interceptor>>;

/// A request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The apiserver answered with a Kubernetes status.
    #[error("{message}")]
    Api {
        /// StatusReason: NotFound, AlreadyExists, Conflict, Invalid, Expired, ...
        reason: String,
        /// The apiserver's message.
        message: String,
        /// The HTTP code the real apiserver would use.
        code: i32,
    },
    /// The apiserver could not be reached or the call broke off; the status's source is the
    /// connection's own error.
    #[error("apiserver unavailable: {}", .0.message())]
    Transport(#[source] tonic::Status),
    /// The apiserver address is not a URL the client can use.
    #[error("invalid apiserver address {url:?}")]
    Address {
        /// The address given.
        url: String,
        /// Why it is unusable.
        #[source]
        source: Arc<tonic::transport::Error>,
    },
    /// An object could not be encoded or decoded.
    #[error("decoding {kind}: {source}")]
    Decode {
        /// The kind.
        kind: &'static str,
        /// Why.
        #[source]
        source: Arc<serde_json::Error>,
    },
}

// === impl Error ===

impl Error {
    /// The Kubernetes reason, if the apiserver gave one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Error::Api { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// NotFound.
    pub fn is_not_found(&self) -> bool {
        self.reason() == Some("NotFound")
    }

    /// AlreadyExists.
    pub fn is_already_exists(&self) -> bool {
        self.reason() == Some("AlreadyExists")
    }

    /// Conflict (stale resourceVersion): re-read and retry.
    pub fn is_conflict(&self) -> bool {
        self.reason() == Some("Conflict")
    }

    /// Expired ("too old resource version"): relist.
    pub fn is_expired(&self) -> bool {
        self.reason() == Some("Expired")
    }
}

impl From<tonic::Status> for Error {
    fn from(s: tonic::Status) -> Self {
        match pb::Status::decode(s.details()) {
            Ok(st) if !st.reason.is_empty() => {
                Error::Api { reason: st.reason, message: st.message, code: st.code }
            }
            _ => match s.code() {
                tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled => {
                    Error::Transport(s)
                }
                _ => Error::Api {
                    reason: format!("{:?}", s.code()),
                    message: s.message().to_string(),
                    code: 500,
                },
            },
        }
    }
}

/// `Result` with the client's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A typed apiserver client. Cheap to clone; clones share one HTTP/2 connection.
#[derive(Clone)]
pub struct Client {
    inner: Inner,
}

/// Filters for list and watch.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    /// One namespace, or "" for all.
    pub namespace: String,
    /// Label selector, e.g. `app=orders`.
    pub labels: String,
    /// Field selector, e.g. `spec.nodeName=node-1`.
    pub fields: String,
}

// === impl Client ===

impl Client {
    /// A client for `server` (`http://host:port` or `host:port`). Connects lazily and reconnects
    /// on its own, so a component may start before the apiserver.
    pub fn new(server: &str) -> Result<Self> {
        let url = if server.contains("://") { server.to_string() } else { format!("http://{server}") };
        let endpoint = Endpoint::from_shared(url.clone())
            .map_err(|e| Error::Address { url: url.clone(), source: Arc::new(e) })?
            .connect_timeout(Duration::from_secs(3))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        let channel = endpoint.connect_lazy();
        let inner =
            ApiServerClient::with_interceptor(channel, netlab_telemetry::propagation::inject as Interceptor)
                .max_decoding_message_size(usize::MAX);
        Ok(Self { inner })
    }

    /// Waits until the apiserver answers (a list of namespaces), retrying every `every`.
    pub async fn wait_ready(&self, every: Duration) {
        loop {
            match self.list::<k8s_openapi::api::core::v1::Namespace>(&ListParams::default()).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::info!(%error, "Waiting for the apiserver.");
                    tokio::time::sleep(every).await;
                }
            }
        }
    }

    /// One object.
    pub async fn get<K: Object>(&self, namespace: &str, name: &str) -> Result<K> {
        let req = GetRequest { resource: K::RESOURCE as i32, namespace: namespace.into(), name: name.into() };
        let obj = self.inner.clone().get(req).await?.into_inner();
        object::decode(&obj.json)
    }

    /// Objects matching `params`, and the resourceVersion to watch from.
    pub async fn list<K: Object>(&self, params: &ListParams) -> Result<(Vec<K>, u64)> {
        let req = ListRequest {
            resource: K::RESOURCE as i32,
            namespace: params.namespace.clone(),
            label_selector: params.labels.clone(),
            field_selector: params.fields.clone(),
        };
        let list = self.inner.clone().list(req).await?.into_inner();
        let items = list.items.iter().map(|o| object::decode(&o.json)).collect::<Result<_>>()?;
        Ok((items, list.resource_version))
    }

    /// Creates `obj`; returns it as stored.
    pub async fn create<K: Object>(&self, obj: &K) -> Result<K> {
        let req = CreateRequest {
            resource: K::RESOURCE as i32,
            json: object::encode(obj)?,
            namespace: object::namespace_of(obj),
        };
        object::decode(&self.inner.clone().create(req).await?.into_inner().json)
    }

    /// Replaces `obj` (spec and metadata); its resourceVersion, if set, must be current.
    pub async fn update<K: Object>(&self, obj: &K) -> Result<K> {
        let req = UpdateRequest {
            resource: K::RESOURCE as i32,
            json: object::encode(obj)?,
            namespace: object::namespace_of(obj),
        };
        object::decode(&self.inner.clone().update(req).await?.into_inner().json)
    }

    /// Replaces `obj`'s status.
    pub async fn update_status<K: Object>(&self, obj: &K) -> Result<K> {
        let req = UpdateRequest {
            resource: K::RESOURCE as i32,
            json: object::encode(obj)?,
            namespace: object::namespace_of(obj),
        };
        object::decode(&self.inner.clone().update_status(req).await?.into_inner().json)
    }

    /// Deletes an object; returns it as deleted (or, with finalizers or for a pod on a node, as
    /// marked for deletion).
    pub async fn delete<K: Object>(&self, namespace: &str, name: &str) -> Result<K> {
        self.delete_with(namespace, name, None).await
    }

    /// Deletes with a grace period: pods on a node stay Terminating for it; 0 removes at once.
    pub async fn delete_with<K: Object>(
        &self,
        namespace: &str,
        name: &str,
        grace_period: Option<i64>,
    ) -> Result<K> {
        let req = DeleteRequest {
            resource: K::RESOURCE as i32,
            namespace: namespace.into(),
            name: name.into(),
            resource_version: None,
            grace_period_seconds: grace_period,
        };
        object::decode(&self.inner.clone().delete(req).await?.into_inner().json)
    }

    /// Deletes only if the object is still at `resource_version` (Conflict otherwise), as a
    /// delete with a resourceVersion precondition does: the garbage collector uses it so that it
    /// never deletes an object that changed (or was recreated) after it decided to.
    pub async fn delete_at<K: Object>(
        &self,
        namespace: &str,
        name: &str,
        resource_version: u64,
    ) -> Result<K> {
        let req = DeleteRequest {
            resource: K::RESOURCE as i32,
            namespace: namespace.into(),
            name: name.into(),
            resource_version: Some(resource_version),
            grace_period_seconds: None,
        };
        object::decode(&self.inner.clone().delete(req).await?.into_inner().json)
    }

    /// Binds a pod to a node (pods/binding); Conflict if it is already bound.
    pub async fn bind(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
    ) -> Result<k8s_openapi::api::core::v1::Pod> {
        let req = pb::BindRequest { namespace: namespace.into(), name: name.into(), node: node.into() };
        object::decode(&self.inner.clone().bind(req).await?.into_inner().json)
    }

    /// serviceaccounts/token: a token for ServiceAccount `name` as `request` (an
    /// authentication.k8s.io/v1 TokenRequest) asks, answered with its status filled.
    pub async fn create_token(
        &self,
        namespace: &str,
        name: &str,
        request: &k8s_openapi::api::authentication::v1::TokenRequest,
    ) -> Result<k8s_openapi::api::authentication::v1::TokenRequest> {
        let codec = |source| Error::Decode { kind: "TokenRequest", source: Arc::new(source) };
        let json = serde_json::to_vec(request).map_err(codec)?;
        let req =
            pb::CreateTokenRequest { namespace: namespace.into(), name: name.into(), json: json.into() };
        serde_json::from_slice(&self.inner.clone().create_token(req).await?.into_inner().json).map_err(codec)
    }

    /// A raw watch stream of event batches for `K`, from `resource_version` (None: current state
    /// first).
    pub async fn watch<K: Object>(
        &self,
        params: &ListParams,
        resource_version: Option<u64>,
    ) -> Result<tonic::Streaming<pb::WatchResponse>> {
        let req = WatchRequest {
            resource: K::RESOURCE as i32,
            namespace: params.namespace.clone(),
            label_selector: params.labels.clone(),
            field_selector: params.fields.clone(),
            resource_version,
        };
        Ok(self.inner.clone().watch(req).await?.into_inner())
    }

    /// The resource enum for `K`.
    pub fn resource<K: Object>() -> Resource {
        K::RESOURCE
    }
}
