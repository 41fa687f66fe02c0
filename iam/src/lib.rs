//! IAM and STS as data: the account's identities (users, access keys, roles, managed and
//! inline policies, instance profiles, OIDC providers, issued role sessions) and AWS's policy
//! evaluation. No HTTP here: the cloud parses requests, verifies SigV4 signatures with
//! [`Directory::lookup_access_key`], calls these functions and renders their typed results and
//! [`Error`]s (code, message, status) in the request's protocol.
//!
//! # Layout
//!
//! - [`directory`]: the [`Directory`] (one serde-persistable value) and the IAM operations.
//! - [`sts`]: caller identities, temporary credentials, AssumeRole / AssumeRoleWithWebIdentity,
//!   and the access-key lookup.
//! - [`policy`]: policy documents parsed strictly, with IAM's `MalformedPolicyDocument` texts.
//! - [`eval`]: evaluation (explicit deny, allow, implicit deny), the deciding statement, and
//!   AWS's access-denied message.
//! - [`managed`]: the catalogue of AWS managed policies with their real documents.
//! - [`model`]: the entities. [`id`]: AWS-format identifiers from a seeded generator.
//! - [`error`]: [`Error`] with `code()`, `message()` and `status()`.
//!
//! Time is always passed in (`now: jiff::Timestamp`), so expiry is testable and deterministic.

pub mod directory;
pub mod error;
pub mod eval;
pub mod id;
pub mod managed;
pub mod model;
pub mod policy;
pub mod sts;

pub use directory::{ADMIN_USER, CreateOidcProvider, CreateRole, Directory, NODE_ROLE_POLICIES};
pub use error::{Error, Result};
pub use eval::{Context, Decision, Outcome, PolicySource, StatementRef};
pub use model::{AccessKey, Account, InstanceProfile, KeyStatus, ManagedPolicy, OidcProvider, Role, User};
pub use policy::{PolicyDocument, PolicyKind};
pub use sts::{
    AssumeRoleRequest, AssumedRole, CallerIdentity, Credential, Identity, KeyLookup, TemporaryCredentials,
    WebIdentityClaims, WebIdentityResult,
};
