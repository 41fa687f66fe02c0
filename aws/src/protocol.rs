//! The three protocols behind the one AWS endpoint: which service a request is for, which
//! operation it calls and with what input, and how answers and errors go back on the wire.
//!
//! - awsQuery (IAM, STS) and ec2 (EC2): `Action=...&Version=...` form pairs, in a POST body or
//!   a GET query string, decoded into [`Params`]; XML answers written with [`XmlWriter`].
//! - awsJson1_1 (ECR): `X-Amz-Target: AmazonEC2ContainerRegistry_V20150921.Op` and a JSON body.
//!
//! Error shapes are checked against botocore's `botocore/parsers.py` (`QueryParser`,
//! `EC2QueryParser`, `BaseJSONParser._do_error_parse`), so that the aws CLI prints
//! `An error occurred (Code) when calling the Op operation: Message`.

pub mod params;
pub mod xml;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};

pub use self::params::{Filter, Params, Tag, TagSpecification};
pub use self::xml::XmlWriter;
use crate::error::{AwsError, ProtocolError};

/// STS's XML namespace (botocore `data/sts/2011-06-15/service-2.json` `xmlNamespace`).
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
/// IAM's XML namespace (botocore `data/iam/2010-05-08/service-2.json` `xmlNamespace`).
pub const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// EC2's XML namespace as EC2 writes it on responses (the model's has no final slash).
pub const EC2_XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";
/// ECR's `X-Amz-Target` prefix (botocore `data/ecr/2015-09-21/service-2.json` `targetPrefix`).
pub const ECR_TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921";
/// The awsJson1_1 content type.
pub const JSON_1_1: &str = "application/x-amz-json-1.1";

/// The services the lab's AWS endpoint serves, by SigV4 signing name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Service {
    /// `ec2`, the ec2 protocol.
    Ec2,
    /// `iam`, awsQuery.
    Iam,
    /// `sts`, awsQuery.
    Sts,
    /// `ecr`, awsJson1_1.
    Ecr,
}

/// A wire protocol, with what it needs to write responses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// EC2's Query dialect: `<Response><Errors>`, `<requestId>`, `...Set`/`item` lists.
    Ec2,
    /// awsQuery: `<ErrorResponse>`, `<OpResult>` and `ResponseMetadata`.
    AwsQuery {
        /// The service's XML namespace.
        xmlns: &'static str,
    },
    /// awsJson1_1.
    AwsJson11 {
        /// The service's `X-Amz-Target` prefix.
        target_prefix: &'static str,
    },
}

/// An operation read off a request, before its input is validated by the service.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// The action (`AssumeRoleWithWebIdentity`, `AssignPrivateIpAddresses`,
    /// `GetAuthorizationToken`).
    pub action: String,
    /// Its input.
    pub input: Input,
}

/// An operation's input, in the protocol's own shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Query and EC2: the form pairs (without `Action`, `Version` and the presigning ones).
    Query(Params),
    /// awsJson: the body, always an object.
    Json(serde_json::Value),
}

// === impl Service ===

impl Service {
    /// The service for a credential scope's service name.
    pub fn from_signing_name(name: &str) -> Option<Self> {
        match name {
            "ec2" => Some(Self::Ec2),
            "iam" => Some(Self::Iam),
            "sts" => Some(Self::Sts),
            "ecr" => Some(Self::Ecr),
            _ => None,
        }
    }

    /// The name clients sign with.
    pub fn signing_name(self) -> &'static str {
        match self {
            Self::Ec2 => "ec2",
            Self::Iam => "iam",
            Self::Sts => "sts",
            Self::Ecr => "ecr",
        }
    }

    /// The protocol the service speaks.
    pub fn protocol(self) -> Protocol {
        match self {
            Self::Ec2 => Protocol::Ec2,
            Self::Iam => Protocol::AwsQuery { xmlns: IAM_XMLNS },
            Self::Sts => Protocol::AwsQuery { xmlns: STS_XMLNS },
            Self::Ecr => Protocol::AwsJson11 { target_prefix: ECR_TARGET_PREFIX },
        }
    }
}

/// A fresh request id, UUID-shaped as AWS's are.
pub fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Read the operation and its input off a request in `protocol`.
pub fn parse_request<B: AsRef<[u8]>>(
    protocol: &Protocol,
    req: &Request<B>,
) -> Result<Operation, ProtocolError> {
    match protocol {
        Protocol::Ec2 | Protocol::AwsQuery { .. } => {
            let mut params = query_params(req)?;
            let action = params.action().ok_or(ProtocolError::MissingAction)?.to_owned();
            params = Params::from_pairs(
                params
                    .iter()
                    .filter(|(k, _)| !matches!(*k, "Action" | "Version") && !k.starts_with("X-Amz-"))
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
            Ok(Operation { action, input: Input::Query(params) })
        }
        Protocol::AwsJson11 { target_prefix } => {
            let target = req.headers().get("x-amz-target").and_then(|v| v.to_str().ok());
            let action = target
                .and_then(|t| t.strip_prefix(target_prefix))
                .and_then(|t| t.strip_prefix('.'))
                .filter(|a| !a.is_empty())
                .ok_or_else(|| ProtocolError::UnknownOperation { target: target.map(str::to_owned) })?;
            let body = req.body().as_ref();
            // botocore always sends at least `{}`; an empty body is taken as that.
            let input = if body.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_slice(body)
                    .map_err(|e| ProtocolError::Serialization { detail: e.to_string() })?
            };
            if !input.is_object() {
                // AWS's own text when a structure is expected and something else comes.
                return Err(ProtocolError::Serialization {
                    detail: "Start of structure or map found where not expected.".to_owned(),
                });
            }
            Ok(Operation { action: action.to_owned(), input: Input::Json(input) })
        }
    }
}

/// The pairs of the query string, then (for a form body) of the body: together, as a GET and a
/// POST of the same call are equivalent.
fn query_params<B: AsRef<[u8]>>(req: &Request<B>) -> Result<Params, ProtocolError> {
    let mut pairs = decode_form(req.uri().query().unwrap_or_default().as_bytes())?;
    let body = req.body().as_ref();
    if !body.is_empty() {
        pairs.extend(decode_form(body)?);
    }
    Ok(Params::from_pairs(pairs))
}

/// Strict `application/x-www-form-urlencoded` decoding: a bad `%` escape or bytes that are not
/// UTF-8 are `MalformedQueryString`. Texts after dacut/scratchstack-aws-signature's record of
/// AWS's (`MSG_ILLEGAL_HEX_CHAR`, `MSG_INCOMPLETE_TRAILING_ESCAPE`).
fn decode_form(raw: &[u8]) -> Result<Vec<(String, String)>, ProtocolError> {
    let malformed = |detail: String| ProtocolError::MalformedQueryString { detail };
    for (i, b) in raw.iter().enumerate() {
        if *b == b'%' {
            match raw.get(i + 1..i + 3) {
                Some(hex) if hex.iter().all(u8::is_ascii_hexdigit) => {}
                Some(hex) => {
                    return Err(malformed(format!(
                        "Illegal hex character in escape % pattern: %{}",
                        String::from_utf8_lossy(hex)
                    )));
                }
                None => return Err(malformed("Incomplete trailing escape % sequence".to_owned())),
            }
        }
    }
    let mut pairs = Vec::new();
    for piece in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match piece.iter().position(|b| *b == b'=') {
            Some(at) => (&piece[..at], &piece[at + 1..]),
            None => (piece, &b""[..]),
        };
        let decode = |s: &[u8]| {
            let plus_as_space: Vec<u8> = s.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
            let bytes: Vec<u8> = percent_encoding::percent_decode(&plus_as_space).collect();
            String::from_utf8(bytes).map_err(|_| malformed("The query string is not valid UTF-8".to_owned()))
        };
        pairs.push((decode(k)?, decode(v)?));
    }
    Ok(pairs)
}

/// The error response for `error` in `protocol`: status, content type and body as AWS sends
/// them, with the request id where botocore looks for it.
pub fn render_error(protocol: &Protocol, error: &AwsError, request_id: &str) -> Response<Bytes> {
    match protocol {
        // EC2QueryParser: `<Response><Errors><Error>` and `RequestID` (capital D).
        Protocol::Ec2 => {
            let mut w = XmlWriter::new();
            w.declaration().node("Response", |w| {
                w.node("Errors", |w| {
                    w.node("Error", |w| {
                        w.elem("Code", &error.code).elem("Message", &error.message);
                    });
                })
                .elem("RequestID", request_id);
            });
            xml_response(error.status, "text/xml;charset=UTF-8", w, request_id)
        }
        // QueryParser: `<ErrorResponse><Error>` and `RequestId`; as captured from STS in
        // amzn/selling-partner-api-docs#3081.
        Protocol::AwsQuery { xmlns } => {
            let mut w = XmlWriter::new();
            w.node_with_attrs("ErrorResponse", &[("xmlns", xmlns)], |w| {
                w.node("Error", |w| {
                    w.elem("Type", if error.sender_fault { "Sender" } else { "Receiver" })
                        .elem("Code", &error.code)
                        .elem("Message", &error.message);
                })
                .elem("RequestId", request_id);
            });
            xml_response(error.status, "text/xml", w, request_id)
        }
        // BaseJSONParser: the code from `__type`, the text from `message`, the request id from
        // `x-amzn-RequestId`; `x-amzn-ErrorType` is what restJson clients read.
        Protocol::AwsJson11 { .. } => {
            let mut body = serde_json::Map::new();
            body.insert("__type".into(), error.code.as_ref().into());
            if !error.message.is_empty() {
                body.insert("message".into(), error.message.as_str().into());
            }
            let mut resp = json_response(&serde_json::Value::Object(body), request_id);
            *resp.status_mut() = error.status;
            if let Ok(v) = HeaderValue::from_str(&error.code) {
                resp.headers_mut().insert("x-amzn-ErrorType", v);
            }
            resp
        }
    }
}

/// An awsQuery success: `<OpResponse xmlns=NS><OpResult>...</OpResult><ResponseMetadata>
/// <RequestId>..</RequestId></ResponseMetadata></OpResponse>`.
pub fn query_response(
    action: &str,
    xmlns: &str,
    request_id: &str,
    result: impl FnOnce(&mut XmlWriter),
) -> Response<Bytes> {
    let mut w = XmlWriter::new();
    w.node_with_attrs(&format!("{action}Response"), &[("xmlns", xmlns)], |w| {
        w.node(&format!("{action}Result"), result);
        response_metadata(w, request_id);
    });
    xml_response(StatusCode::OK, "text/xml", w, request_id)
}

/// An awsQuery success for an operation without output (IAM's `DeleteRole`): no `OpResult`.
pub fn query_empty_response(action: &str, xmlns: &str, request_id: &str) -> Response<Bytes> {
    let mut w = XmlWriter::new();
    w.node_with_attrs(&format!("{action}Response"), &[("xmlns", xmlns)], |w| {
        response_metadata(w, request_id);
    });
    xml_response(StatusCode::OK, "text/xml", w, request_id)
}

fn response_metadata(w: &mut XmlWriter, request_id: &str) {
    w.node("ResponseMetadata", |w| {
        w.elem("RequestId", request_id);
    });
}

/// An EC2 success: `<OpResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>..
/// </requestId>...</OpResponse>` (EC2QueryParser reads `requestId`).
pub fn ec2_response(action: &str, request_id: &str, body: impl FnOnce(&mut XmlWriter)) -> Response<Bytes> {
    let mut w = XmlWriter::new();
    w.declaration().node_with_attrs(&format!("{action}Response"), &[("xmlns", EC2_XMLNS)], |w| {
        w.elem("requestId", request_id);
        body(w);
    });
    xml_response(StatusCode::OK, "text/xml;charset=UTF-8", w, request_id)
}

/// An awsJson success: the body, `application/x-amz-json-1.1`, `x-amzn-RequestId`.
pub fn json_response(body: &serde_json::Value, request_id: &str) -> Response<Bytes> {
    respond(StatusCode::OK, JSON_1_1, Bytes::from(body.to_string()), request_id)
}

fn xml_response(
    status: StatusCode,
    content_type: &'static str,
    w: XmlWriter,
    request_id: &str,
) -> Response<Bytes> {
    respond(status, content_type, Bytes::from(w.into_bytes()), request_id)
}

fn respond(status: StatusCode, content_type: &'static str, body: Bytes, request_id: &str) -> Response<Bytes> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-RequestId", v);
    }
    resp
}

#[cfg(test)]
mod tests;
