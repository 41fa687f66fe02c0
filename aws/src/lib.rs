//! AWS's wire, for the lab's one AWS endpoint: verifying SigV4 signatures, reading the Query,
//! EC2 and awsJson protocols' requests, and writing their answers and errors the way AWS does,
//! so the real aws CLI and SDKs work against the lab unchanged.
//!
//! Every request is routed by the service in its credential scope ([`sigv4::scope`]), verified
//! ([`sigv4::verify`]), read as an operation ([`protocol::parse_request`]) and handed to the
//! service's handler (in other crates), which answers with a response envelope from
//! [`protocol`] or an [`AwsError`] that [`protocol::render_error`] puts on the wire.
//!
//! # Layout
//!
//! - [`sigv4`]: Signature Version 4, header and presigned forms, over a [`sigv4::CredentialStore`].
//! - [`protocol`]: services and protocols, [`protocol::Params`] for Query input, the XML builder,
//!   success envelopes and error rendering.
//! - [`error`]: [`AwsError`] (what handlers return), [`AuthError`] and [`ProtocolError`] (the
//!   causes) and the AWS texts each becomes per protocol.

pub mod error;
pub mod protocol;
pub mod sigv4;

pub use error::{AuthError, AwsError, ProtocolError, Result, ValidationFailure};
pub use protocol::{Input, Operation, Params, Protocol, Service, XmlWriter};
pub use sigv4::{Credential, CredentialScope, CredentialStore, Verified};
