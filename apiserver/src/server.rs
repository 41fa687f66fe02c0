//! The gRPC edge: `netlab.apiserver.v1.ApiServer` over the [`Registry`], and the one place where
//! [`Error`]s become gRPC statuses (with Kubernetes' `Status` in the details).

use std::{pin::Pin, sync::Arc};

use futures::Stream;
use netlab_proto::apiserver::v1::{
    self as pb, CreateRequest, DeleteRequest, GetRequest, ListRequest, ListResponse, Resource, UpdateRequest,
    WatchRequest, WatchResponse, api_server_server::ApiServer,
};
use prost::Message as _;
use tokio_stream::{StreamExt as _, wrappers::ReceiverStream};
use tokio_util::sync::CancellationToken;
use tonic::{Code, Request, Response, Status};

use crate::{
    error::Error,
    registry::{Registry, WatchSpec},
    selector::{FieldSelector, LabelSelector},
    token::TokenIssuer,
    warning,
};

/// The ApiServer gRPC service.
pub struct Service {
    registry: Registry,
    issuer: Arc<TokenIssuer>,
    shutdown: CancellationToken,
}

// === impl Service ===

impl Service {
    /// Serves `registry`; open watches end when `shutdown` fires.
    pub fn new(registry: Registry, issuer: Arc<TokenIssuer>, shutdown: CancellationToken) -> Self {
        Self { registry, issuer, shutdown }
    }
}

fn resource(r: i32) -> Result<Resource, Status> {
    match Resource::try_from(r) {
        Ok(Resource::Unspecified) | Err(_) => Err(Error::BadRequest(format!("unknown resource {r}")).into()),
        Ok(r) => Ok(r),
    }
}

fn selectors(r: Resource, labels: &str, fields: &str) -> Result<(LabelSelector, FieldSelector), Status> {
    let l = LabelSelector::parse(labels).map_err(|e| Error::BadRequest(e.to_string()))?;
    let f = FieldSelector::parse(r, fields).map_err(|e| Error::BadRequest(e.to_string()))?;
    Ok((l, f))
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

#[tonic::async_trait]
impl ApiServer for Service {
    #[tracing::instrument(skip_all, fields(resource, namespace = %req.get_ref().namespace))]
    async fn create(&self, req: Request<CreateRequest>) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let r = resource(req.resource)?;
        tracing::Span::current().record("resource", r.plural());
        let obj = self.registry.create(r, &req.namespace, &req.json).await?;
        let mut response = Response::new(obj.to_proto());
        for text in warning::for_create(&self.registry, &obj) {
            // A value that is not a valid header (it cannot be: `warning::header` drops control
            // characters) is left out rather than failing a write that succeeded.
            if let Ok(value) = warning::header(&text).parse() {
                response.metadata_mut().append(warning::METADATA_KEY, value);
            }
        }
        Ok(response)
    }

    async fn get(&self, req: Request<GetRequest>) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let obj = self.registry.get(resource(req.resource)?, &req.namespace, &req.name)?;
        Ok(Response::new(obj.to_proto()))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let req = req.into_inner();
        let r = resource(req.resource)?;
        let (labels, fields) = selectors(r, &req.label_selector, &req.field_selector)?;
        let (items, rv) = self.registry.list(r, &req.namespace, &labels, &fields);
        Ok(Response::new(ListResponse {
            items: items.iter().map(|o| o.to_proto()).collect(),
            resource_version: rv,
        }))
    }

    #[tracing::instrument(skip_all, fields(resource, namespace = %req.get_ref().namespace))]
    async fn update(&self, req: Request<UpdateRequest>) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let r = resource(req.resource)?;
        tracing::Span::current().record("resource", r.plural());
        let obj = self.registry.update(r, &req.namespace, &req.json, false).await?;
        Ok(Response::new(obj.to_proto()))
    }

    #[tracing::instrument(skip_all, fields(resource, namespace = %req.get_ref().namespace))]
    async fn update_status(&self, req: Request<UpdateRequest>) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let r = resource(req.resource)?;
        tracing::Span::current().record("resource", r.plural());
        let obj = self.registry.update(r, &req.namespace, &req.json, true).await?;
        Ok(Response::new(obj.to_proto()))
    }

    #[tracing::instrument(skip_all, fields(resource, namespace = %req.get_ref().namespace, name = %req.get_ref().name))]
    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let r = resource(req.resource)?;
        tracing::Span::current().record("resource", r.plural());
        let obj = self
            .registry
            .delete(r, &req.namespace, &req.name, req.resource_version, req.grace_period_seconds)
            .await?;
        Ok(Response::new(obj.to_proto()))
    }

    #[tracing::instrument(skip_all, fields(namespace = %req.get_ref().namespace, name = %req.get_ref().name, node = %req.get_ref().node))]
    async fn bind(&self, req: Request<pb::BindRequest>) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let obj = self.registry.bind(&req.namespace, &req.name, &req.node).await?;
        Ok(Response::new(obj.to_proto()))
    }

    #[tracing::instrument(skip_all, fields(namespace = %req.get_ref().namespace, serviceaccount = %req.get_ref().name))]
    async fn create_token(
        &self,
        req: Request<pb::CreateTokenRequest>,
    ) -> Result<Response<pb::Object>, Status> {
        let req = req.into_inner();
        let (value, warnings) =
            self.issuer.create_token(&self.registry, &req.namespace, &req.name, &req.json)?;
        let json = serde_json::to_vec(&value).map_err(|e| Status::from(Error::Encode(e)))?;
        let mut response = Response::new(pb::Object {
            resource: Resource::ServiceAccounts as i32,
            namespace: req.namespace,
            name: req.name,
            resource_version: 0,
            json: json.into(),
        });
        for text in warnings {
            if let Ok(value) = warning::header(&text).parse() {
                response.metadata_mut().append(warning::METADATA_KEY, value);
            }
        }
        Ok(response)
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<WatchRequest>) -> Result<Response<WatchStream>, Status> {
        let req = req.into_inner();
        let r = resource(req.resource)?;
        let (labels, fields) = selectors(r, &req.label_selector, &req.field_selector)?;
        let spec = WatchSpec {
            resource: r,
            namespace: if r.namespaced() { req.namespace } else { String::new() },
            labels,
            fields,
            from: req.resource_version,
        };
        let rx = self.registry.watch(spec, self.shutdown.child_token())?;
        let stream = ReceiverStream::new(rx).map(|batch| {
            batch
                .map(|items| WatchResponse {
                    events: items
                        .into_iter()
                        .map(|i| pb::WatchEvent { r#type: i.kind as i32, object: Some(i.object.to_proto()) })
                        .collect(),
                })
                .map_err(Status::from)
        });
        Ok(Response::new(Box::pin(stream)))
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        // One gRPC code per StatusReason, which `Error::reason` decides for every variant.
        let code = match e.reason() {
            "NotFound" => Code::NotFound,
            "AlreadyExists" => Code::AlreadyExists,
            "Conflict" => Code::Aborted,
            "Invalid" | "BadRequest" => Code::InvalidArgument,
            "Expired" => Code::OutOfRange,
            _ => Code::Internal,
        };
        let (kind, name, causes) = match &e {
            Error::NotFound { resource, name }
            | Error::AlreadyExists { resource, name }
            | Error::Conflict { resource, name } => (resource.plural().to_string(), name.clone(), vec![]),
            Error::Invalid { kind, name, errors } => (
                kind.to_string(),
                name.clone(),
                errors
                    .iter()
                    .map(|f| pb::StatusCause {
                        reason: f.reason().to_string(),
                        message: f.to_string(),
                        field: f.field.clone(),
                    })
                    .collect(),
            ),
            _ => (String::new(), String::new(), vec![]),
        };
        if let Error::Store(source) = &e {
            tracing::error!(error = %source, "Store failure.");
        }
        let message = e.to_string();
        let details = pb::Status {
            reason: e.reason().to_string(),
            message: message.clone(),
            code: e.http_code(),
            kind,
            name,
            causes,
        };
        Status::with_details(code, message, details.encode_to_vec().into())
    }
}
