//! The cluster's service-account token issuer, and the check a cloud does on its tokens.
//!
//! Two sides of one protocol live here so that they cannot disagree:
//!
//! - **kube-apiserver's side** (k8s.io/kubernetes `pkg/serviceaccount`): an RSA signing key kept
//!   as kubeadm keeps `sa.key` ([`SigningKey`]), Kubernetes-shaped token claims
//!   ([`ServiceAccountClaims`]) signed RS256 with the upstream header and key id
//!   ([`SigningKey::sign`]), the key set served at `/openid/v1/jwks` ([`Jwks`]) and the discovery
//!   document at `/.well-known/openid-configuration` ([`Discovery`]).
//! - **the relying party's side**, what AWS STS does on `AssumeRoleWithWebIdentity`: fetch the
//!   JWKS and [`verify`] a token against it, with typed errors ([`VerifyError`]) specific enough
//!   to map onto STS's own, and the time check left to the caller's clock
//!   ([`Verified::check_time`]).
//!
//! Everything byte-visible follows upstream, because users and tools look at these bytes: the
//! token header is exactly `{"alg":"RS256","kid":"…"}`, claims come in go-jose's sorted order
//! with `aud` as an array, JWK members in go-jose's order, and the key id is
//! `keyIDFromPublicKey`'s hash, so a key moved between this lab and a real cluster keeps its
//! `kid`. The crate does no I/O besides the key file and no networking; serving and fetching the
//! documents is the callers' business.
//!
//! Modules, one concept each: `key` (the private key and signing), `jwk` (public keys as JSON),
//! `jws` (the header), `claims`, `discovery`, `verify`, and two private helpers, `b64` (the one
//! base64 alphabet) and `random` (OS randomness for keys and `jti`).

mod b64;
mod claims;
mod discovery;
mod jwk;
mod jws;
mod key;
mod random;
mod verify;

pub use claims::{KubernetesClaims, ObjectRef, ServiceAccountClaims, service_account_username};
pub use discovery::{Discovery, DiscoveryError, JWKS_PATH, OPENID_CONFIG_PATH, default_jwks_uri};
pub use jwk::{Jwk, JwkError, Jwks};
pub use jws::{Header, RS256};
pub use key::{KeyError, SignError, SigningKey};
pub use random::{RandomError, uuid_v4};
pub use verify::{Segment, StandardClaims, Unverified, Verified, VerifyError, decode_unverified, verify};

#[cfg(test)]
mod tests;
