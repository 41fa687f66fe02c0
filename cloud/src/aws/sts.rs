//! STS (awsQuery, `2011-06-15`): who the caller is, and temporary credentials for role
//! sessions. The trust and identity-policy decisions live in netlab-iam's
//! [`Directory`](netlab_iam::Directory); this module reads the Query input, checks the model's
//! constraints, and writes the answers as botocore's STS model shapes them.
//!
//! - `GetCallerIdentity` needs no permission, as in AWS ("No permissions are required to perform
//!   this operation", STS API reference).
//! - `AssumeRole` passes `ExternalId` to the trust policy as `sts:ExternalId`; session policies
//!   (`Policy`, `PolicyArns`), session tags and MFA are not modelled and are ignored (with a
//!   warning on the span), so `PackedPolicySize`, which AWS only returns for them, is never
//!   written.
//! - `AssumeRoleWithWebIdentity` is unsigned in AWS: the token is the credential. Turning the
//!   token into verified claims is a [`WebIdentityVerifier`]'s job, so the issuer's key handling
//!   (the apiserver's OIDC discovery) stays out of this module; [`NoIssuer`] refuses every token
//!   until a verifier is wired in.
//!
//! Texts: "No OpenIDConnect provider found in your account for https://…" (InvalidIdentityToken,
//! 400; verbatim in kubernetes-sigs/aws-load-balancer-controller#2315 and
//! terraform-aws-modules/terraform-aws-eks#965) and "The ID Token provided is not a valid JWT.
//! (You may see this error if you sent an Access Token)" (AWS's answer to a token that is not
//! a JWT, quoted in a public Go project's comment).

use bytes::Bytes;
use jiff::Timestamp;
use netlab_aws::protocol::{self, STS_XMLNS};
use netlab_aws::{AwsError, Params, ProtocolError, ValidationFailure, XmlWriter};
use netlab_iam::{AssumeRoleRequest, AssumedRole, WebIdentityClaims};

use super::{Account, Call, iam_error};

/// AWS's text for a web identity token that is not a JWT.
pub const NOT_A_JWT: &str =
    "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)";

/// Turns a web identity token into claims whose signature has been checked against the
/// issuer's keys; the directory then checks issuer, audience, expiry and the role's trust.
pub trait WebIdentityVerifier {
    /// The verified claims of `token`, or AWS's `InvalidIdentityToken` error (status 400).
    fn verify(&self, token: &str, now: Timestamp) -> Result<VerifiedToken, AwsError>;
}

/// A verified token's claims, owned (they are decoded from the token, not borrowed from it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedToken {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `aud`, one or more.
    pub audiences: Vec<String>,
    /// `exp`.
    pub expires_at: Timestamp,
}

/// The verifier used until the apiserver's issuer is wired in: refuses every token as AWS
/// refuses one from an issuer the account has no OpenID Connect provider for, naming the
/// token's (unverified) `iss` as AWS does.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoIssuer;

// === impl VerifiedToken ===

impl VerifiedToken {
    /// The claims as the directory takes them.
    pub fn claims(&self) -> WebIdentityClaims<'_> {
        WebIdentityClaims {
            issuer: &self.issuer,
            subject: &self.subject,
            audiences: self.audiences.iter().map(String::as_str).collect(),
            expires_at: self.expires_at,
        }
    }
}

// === impl NoIssuer ===

impl WebIdentityVerifier for NoIssuer {
    fn verify(&self, token: &str, _now: Timestamp) -> Result<VerifiedToken, AwsError> {
        let issuer = unverified_issuer(token).ok_or_else(|| invalid_token(NOT_A_JWT))?;
        Err(invalid_token(format!("No OpenIDConnect provider found in your account for {issuer}")))
    }
}

/// `InvalidIdentityToken` (400), the STS model's error for a token it will not accept.
pub fn invalid_token(message: impl Into<String>) -> AwsError {
    AwsError::sender("InvalidIdentityToken", message)
}

/// The `iss` claim of a JWT, read without checking its signature (only to word an error).
fn unverified_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&base64url_decode(payload)?).ok()?;
    json.get("iss")?.as_str().map(str::to_owned)
}

/// Unpadded base64url (RFC 7515 §2), as JWT segments are written.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Masked to one byte, so the cast keeps every bit that matters.
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    Some(out)
}

/// Answers an STS call; `AssumeRoleWithWebIdentity` refuses every token (see [`NoIssuer`]).
pub fn handle(account: &mut Account, call: &Call<'_>) -> Result<http::Response<Bytes>, AwsError> {
    handle_with(account, call, &NoIssuer)
}

/// Answers an STS call, verifying web identity tokens with `verifier`.
pub fn handle_with(
    account: &mut Account,
    call: &Call<'_>,
    verifier: &dyn WebIdentityVerifier,
) -> Result<http::Response<Bytes>, AwsError> {
    let params = call.params()?;
    match call.action {
        "GetCallerIdentity" => {
            let who = account.iam.get_caller_identity(&call.caller.identity);
            Ok(respond(call, |w| {
                w.elem("Arn", &who.arn).elem("UserId", &who.user_id).elem("Account", &who.account);
            }))
        }
        "AssumeRole" => assume_role(account, call, params),
        "AssumeRoleWithWebIdentity" => assume_role_with_web_identity(account, call, params, verifier),
        other => Err(ProtocolError::InvalidAction { action: other.to_owned() }.to_aws_error(&call.protocol)),
    }
}

fn assume_role(
    account: &mut Account,
    call: &Call<'_>,
    params: &Params,
) -> Result<http::Response<Bytes>, AwsError> {
    let mut input = SessionInput::read(params);
    let external_id = params.get("ExternalId");
    if let Some(id) = external_id {
        let len = id.chars().count();
        if len < 2 {
            input.fail(id, "externalId", "Member must have length greater than or equal to 2");
        } else if len > 1224 {
            input.fail(id, "externalId", "Member must have length less than or equal to 1224");
        }
        if !id.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)) {
            input.fail(id, "externalId", r"Member must satisfy regular expression pattern: [\w+=,.@:\/-]*");
        }
    }
    let request = input.finish(call)?;
    warn_ignored(
        params,
        &["Policy", "PolicyArns", "Tags", "TransitiveTagKeys", "SerialNumber", "SourceIdentity"],
    );

    let mut context = account.iam.request_context(&call.caller.identity, call.now);
    context.insert("aws:SourceIp", call.caller.source_ip.to_string());
    if let Some(id) = external_id {
        context.insert("sts:ExternalId", id);
    }
    let assumed =
        account.iam.assume_role(&call.caller.identity, request, &context, call.now).map_err(iam_error)?;
    record_statement(&assumed);
    Ok(respond(call, |w| write_session(w, &assumed)))
}

fn assume_role_with_web_identity(
    account: &mut Account,
    call: &Call<'_>,
    params: &Params,
    verifier: &dyn WebIdentityVerifier,
) -> Result<http::Response<Bytes>, AwsError> {
    let mut input = SessionInput::read(params);
    let token = params.get("WebIdentityToken");
    match token {
        None => input.missing("WebIdentityToken"),
        Some(t) if t.chars().count() < 4 => {
            input.fail(t, "webIdentityToken", "Member must have length greater than or equal to 4")
        }
        Some(t) if t.chars().count() > 20000 => {
            input.fail(t, "webIdentityToken", "Member must have length less than or equal to 20000")
        }
        Some(_) => {}
    }
    let request = input.finish(call)?;
    warn_ignored(params, &["Policy", "PolicyArns", "ProviderId"]);
    let token = token.unwrap_or_default();
    // STS looks the issuer's provider up before it fetches the issuer's keys.
    let issuer = unverified_issuer(token).ok_or_else(|| invalid_token(NOT_A_JWT))?;
    if account.iam.oidc_provider_for(&issuer).is_none() {
        return Err(invalid_token(format!("No OpenIDConnect provider found in your account for {issuer}")));
    }
    let verified = verifier.verify(token, call.now)?;
    let result = account
        .iam
        .assume_role_with_web_identity(request, &verified.claims(), call.now)
        .map_err(iam_error)?;
    record_statement(&result.assumed);
    Ok(respond(call, |w| {
        write_session(w, &result.assumed);
        w.elem("SubjectFromWebIdentityToken", &result.subject_from_web_identity_token)
            .elem("Audience", &result.audience)
            .elem("Provider", &result.provider);
    }))
}

/// The inputs both AssumeRole forms share, with the model's constraints
/// (`roleSessionNameType` 2..64 `[\w+=,.@-]*`, `roleDurationSecondsType` 900..43200,
/// `arnType` 20..2048) collected as AWS reports them: all in one `ValidationError`.
struct SessionInput<'p> {
    role_arn: Option<&'p str>,
    session_name: Option<&'p str>,
    duration: Option<u32>,
    failures: Vec<ValidationFailure>,
}

// === impl SessionInput ===

impl<'p> SessionInput<'p> {
    fn read(params: &'p Params) -> Self {
        let mut input = Self { role_arn: None, session_name: None, duration: None, failures: Vec::new() };
        match params.get("RoleArn") {
            None => input.missing("RoleArn"),
            Some(arn) => {
                let len = arn.chars().count();
                if len < 20 {
                    input.fail(arn, "roleArn", "Member must have length greater than or equal to 20");
                } else if len > 2048 {
                    input.fail(arn, "roleArn", "Member must have length less than or equal to 2048");
                }
                input.role_arn = Some(arn);
            }
        }
        match params.get("RoleSessionName") {
            None => input.missing("RoleSessionName"),
            Some(name) => {
                let len = name.chars().count();
                if len > 64 {
                    input.fail(name, "roleSessionName", "Member must have length less than or equal to 64");
                } else if len < 2 {
                    input.fail(name, "roleSessionName", "Member must have length greater than or equal to 2");
                }
                if !name.chars().all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)) {
                    input.fail(
                        name,
                        "roleSessionName",
                        r"Member must satisfy regular expression pattern: [\w+=,.@-]*",
                    );
                }
                input.session_name = Some(name);
            }
        }
        if let Some(raw) = params.get("DurationSeconds") {
            match raw.parse::<i64>() {
                Ok(d) if d < 900 => {
                    input.fail(raw, "durationSeconds", "Member must have value greater than or equal to 900")
                }
                Ok(d) if d > 43200 => {
                    input.fail(raw, "durationSeconds", "Member must have value less than or equal to 43200")
                }
                // In range, so it fits.
                Ok(d) => input.duration = u32::try_from(d).ok(),
                // botocore never sends this (it checks the type first); composed text.
                Err(_) => input.fail(raw, "durationSeconds", "Member must be an integer"),
            }
        }
        input
    }

    fn missing(&mut self, name: &str) {
        self.failures.push(ValidationFailure {
            value: None,
            member: netlab_aws::error::lower_camel(name),
            constraint: "Member must not be null".to_owned(),
        });
    }

    fn fail(&mut self, value: &str, member: &str, constraint: &str) {
        self.failures.push(ValidationFailure {
            value: Some(value.to_owned()),
            member: member.to_owned(),
            constraint: constraint.to_owned(),
        });
    }

    fn finish(self, call: &Call<'_>) -> Result<AssumeRoleRequest<'p>, AwsError> {
        if !self.failures.is_empty() {
            return Err(ProtocolError::Validation(self.failures).to_aws_error(&call.protocol));
        }
        Ok(AssumeRoleRequest {
            role_arn: self.role_arn.unwrap_or_default(),
            role_session_name: self.session_name.unwrap_or_default(),
            duration_seconds: self.duration,
        })
    }
}

/// Notes on the span the parameters that were sent but are not modelled.
fn warn_ignored(params: &Params, names: &[&str]) {
    let sent: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| params.iter().any(|(k, _)| k == *n || k.starts_with(&format!("{n}."))))
        .collect();
    if !sent.is_empty() {
        tracing::warn!(parameters = ?sent, "STS parameters not modelled by the lab were ignored.");
    }
}

/// Records the trust statement that allowed the session on the span, as [`super::authorize`]
/// does for identity policies.
fn record_statement(assumed: &AssumedRole) {
    let span = tracing::Span::current();
    span.record("aws.iam.decision", format!("{:?}", assumed.decision.outcome).as_str());
    if let Some(statement) = &assumed.decision.statement {
        span.record("aws.iam.statement", statement.to_string().as_str());
    }
}

/// `Credentials` and `AssumedRoleUser`, as the STS model names them.
fn write_session(w: &mut XmlWriter, assumed: &AssumedRole) {
    let c = &assumed.credentials;
    w.node("Credentials", |w| {
        w.elem("AccessKeyId", &c.access_key_id)
            .elem("SecretAccessKey", &c.secret_access_key)
            .elem("SessionToken", &c.session_token)
            .elem("Expiration", iso8601(c.expiration));
    })
    .node("AssumedRoleUser", |w| {
        w.elem("AssumedRoleId", &assumed.assumed_role_user.assumed_role_id)
            .elem("Arn", &assumed.assumed_role_user.arn);
    });
}

/// `2026-12-07T18:00:00Z`: whole seconds, as STS and IAM write dates.
pub fn iso8601(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn respond(call: &Call<'_>, result: impl FnOnce(&mut XmlWriter)) -> http::Response<Bytes> {
    protocol::query_response(call.action, STS_XMLNS, call.request_id, result)
}

#[cfg(test)]
mod tests;
