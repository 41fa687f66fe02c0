//! STS as data: who a caller is ([`Identity`], GetCallerIdentity), temporary credentials for
//! role sessions (AssumeRole, AssumeRoleWithWebIdentity, and EC2's assumption of an instance
//! profile's role), and the access-key lookup the SigV4 verifier uses.
//!
//! Texts are AWS's (botocore's `sts/2011-06-15` constraints; CLI/SDK reports for the rest):
//! `1 validation error detected: Value '…' at 'roleSessionName' failed to satisfy constraint:
//! Member must satisfy regular expression pattern: [\w+=,.@-]*`, `… at 'durationSeconds' …
//! Member must have value greater than or equal to 900`, "The requested DurationSeconds exceeds
//! the MaxSessionDuration set for this role.", "Not authorized to perform
//! sts:AssumeRoleWithWebIdentity", "No OpenIDConnect provider found in your account for <iss>",
//! "Incorrect token audience", "Token expired: current date/time <now> must be before the
//! expiration date/time <exp>".
//!
//! AssumeRole within the account (what is implemented, per the IAM User Guide's evaluation
//! logic, where role trust policies are the exception that must always allow): the trust
//! policy must allow the caller and no identity policy may deny `sts:AssumeRole` on the role.
//! If the trust policy names the caller itself (its user ARN, its role's ARN, its session ARN,
//! or `*`), that is enough; if it only names the account (`123456789012` or `…:root`), the
//! caller's identity policies must also allow `sts:AssumeRole` on the role's ARN.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::directory::{Directory, is_name_char};
use crate::error::{EXPIRED_TOKEN_MESSAGE, Error, INVALID_CLIENT_TOKEN_MESSAGE, Result, Violation};
use crate::eval::{self, Caller, Context, Decision, Outcome, PrincipalMatch, Request};
use crate::model::{KeyStatus, OidcProvider, Role};

/// DurationSeconds when a request does not give one.
pub const DEFAULT_DURATION_SECONDS: u32 = 3600;
/// The shortest session STS issues.
pub const MIN_DURATION_SECONDS: u32 = 900;
/// The model's upper bound on DurationSeconds.
pub const MAX_DURATION_SECONDS: u32 = 43200;
/// Sessions assumed by a role session (role chaining) last at most an hour.
pub const ROLE_CHAINING_MAX_SECONDS: u32 = 3600;
/// How long expired sessions are kept (so callers get `ExpiredToken`, not
/// `InvalidClientTokenId`) before [`Directory::prune_sessions`] drops them.
pub const EXPIRED_SESSION_RETENTION: SignedDuration = SignedDuration::from_hours(1);
/// The service principal EC2 assumes instance profile roles as.
pub const EC2_SERVICE: &str = "ec2.amazonaws.com";

/// Who signed a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Identity {
    /// An IAM user, by its long-term access key.
    User {
        /// `UserName`.
        name: String,
        /// `UserId` (`AIDA...`).
        id: String,
        /// The user's ARN.
        arn: String,
    },
    /// A role session, by temporary credentials.
    AssumedRole {
        /// The role's name.
        role_name: String,
        /// The role's ID (`AROA...`).
        role_id: String,
        /// The role's ARN.
        role_arn: String,
        /// `RoleSessionName`.
        session_name: String,
        /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
        arn: String,
    },
}

/// GetCallerIdentity's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerIdentity {
    /// `UserId`: `AIDA...` for users, `AROA...:<session>` for role sessions.
    pub user_id: String,
    /// `Account`.
    pub account: String,
    /// `Arn`.
    pub arn: String,
}

/// Temporary credentials (`Credentials` in STS responses).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporaryCredentials {
    /// `ASIA` + 16 characters.
    pub access_key_id: String,
    /// The 40-character secret.
    pub secret_access_key: String,
    /// `SessionToken`.
    pub session_token: String,
    /// `Expiration`.
    pub expiration: Timestamp,
}

/// `AssumedRoleUser` in STS responses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssumedRoleUser {
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// `AROA...:<session>`.
    pub assumed_role_id: String,
}

/// A successful AssumeRole (or EC2's assumption of an instance profile role).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssumedRole {
    /// The credentials.
    pub credentials: TemporaryCredentials,
    /// The session's identity.
    pub assumed_role_user: AssumedRoleUser,
    /// The trust policy statement that allowed it.
    pub decision: Decision,
}

/// A successful AssumeRoleWithWebIdentity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebIdentityResult {
    /// The credentials and session identity.
    pub assumed: AssumedRole,
    /// `SubjectFromWebIdentityToken` (the token's `sub`).
    pub subject_from_web_identity_token: String,
    /// `Audience` (the token's `aud` that matched a client ID).
    pub audience: String,
    /// `Provider` (the token's `iss`).
    pub provider: String,
}

/// AssumeRole's parameters.
#[derive(Clone, Copy, Debug, Default)]
pub struct AssumeRoleRequest<'a> {
    /// `RoleArn`.
    pub role_arn: &'a str,
    /// `RoleSessionName`.
    pub role_session_name: &'a str,
    /// `DurationSeconds` (default 3600).
    pub duration_seconds: Option<u32>,
}

/// The claims of a web identity token whose signature the caller has already verified
/// against the issuer's keys.
#[derive(Clone, Debug, Default)]
pub struct WebIdentityClaims<'a> {
    /// `iss`, e.g. `https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE`.
    pub issuer: &'a str,
    /// `sub`, e.g. `system:serviceaccount:kube-system:aws-node`.
    pub subject: &'a str,
    /// `aud` (one or more).
    pub audiences: Vec<&'a str>,
    /// `exp`.
    pub expires_at: Timestamp,
}

/// An issued session, kept so its credentials can sign requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session's identity.
    pub identity: Identity,
    /// The credentials.
    pub credentials: TemporaryCredentials,
    /// When STS issued it.
    pub issued: Timestamp,
    /// How it came about.
    pub source: SessionSource,
}

/// How a session was obtained.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SessionSource {
    /// AssumeRole by an IAM principal.
    AssumeRole {
        /// The caller's ARN.
        caller: String,
    },
    /// A service (EC2 for instance profiles).
    Service {
        /// The service principal.
        service: String,
    },
    /// AssumeRoleWithWebIdentity.
    WebIdentity {
        /// The OIDC provider's ARN.
        provider: String,
        /// The token's subject.
        subject: String,
    },
}

/// What an access key ID resolves to, for the SigV4 verifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyLookup {
    /// A usable key.
    Valid(Credential),
    /// Temporary credentials past their expiration: answer `ExpiredToken`.
    Expired(Credential),
    /// A deactivated user key: answer `InvalidClientTokenId`.
    Inactive(Credential),
    /// No such key (or an expired session already pruned): answer `InvalidClientTokenId`.
    Unknown,
}

/// A key's owner and secret material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Who the key signs as.
    pub identity: Identity,
    /// The secret to verify the signature with.
    pub secret_access_key: String,
    /// The session token the request must carry (`X-Amz-Security-Token`), for temporary
    /// credentials.
    pub session_token: Option<String>,
    /// When temporary credentials expire.
    pub expiration: Option<Timestamp>,
}

// === impl Identity ===

impl Identity {
    /// The caller's ARN (`Arn` in GetCallerIdentity, `User: <arn>` in denial messages).
    pub fn arn(&self) -> &str {
        match self {
            Self::User { arn, .. } | Self::AssumedRole { arn, .. } => arn,
        }
    }

    /// `UserId`: the user's ID, or `<role id>:<session name>`.
    pub fn user_id(&self) -> String {
        match self {
            Self::User { id, .. } => id.clone(),
            Self::AssumedRole { role_id, session_name, .. } => format!("{role_id}:{session_name}"),
        }
    }

    /// `aws:PrincipalArn`: the user's ARN, or for a session the role's ARN.
    pub fn principal_arn(&self) -> String {
        match self {
            Self::User { arn, .. } => arn.clone(),
            Self::AssumedRole { role_arn, .. } => role_arn.clone(),
        }
    }
}

// === impl KeyLookup ===

impl KeyLookup {
    /// The error to answer with, if the key may not sign.
    pub fn error(&self) -> Option<Error> {
        match self {
            Self::Valid(_) => None,
            Self::Expired(_) => Some(Error::ExpiredToken(EXPIRED_TOKEN_MESSAGE.to_owned())),
            Self::Inactive(_) | Self::Unknown => {
                Some(Error::InvalidClientTokenId(INVALID_CLIENT_TOKEN_MESSAGE.to_owned()))
            }
        }
    }
}

// === impl Directory (STS) ===

impl Directory {
    /// GetCallerIdentity.
    pub fn get_caller_identity(&self, identity: &Identity) -> CallerIdentity {
        CallerIdentity {
            user_id: identity.user_id(),
            account: self.account.id.clone(),
            arn: identity.arn().to_owned(),
        }
    }

    /// Resolves an access key ID: a user's long-term key or an issued session's temporary one.
    pub fn lookup_access_key(&self, access_key_id: &str, now: Timestamp) -> KeyLookup {
        if let Some(key) = self.access_keys.get(access_key_id) {
            let Some(user) = self.users.get(&key.user_name) else {
                return KeyLookup::Unknown;
            };
            let credential = Credential {
                identity: Identity::User {
                    name: user.name.clone(),
                    id: user.id.clone(),
                    arn: user.arn.clone(),
                },
                secret_access_key: key.secret_access_key.clone(),
                session_token: None,
                expiration: None,
            };
            return match key.status {
                KeyStatus::Active => KeyLookup::Valid(credential),
                KeyStatus::Inactive => KeyLookup::Inactive(credential),
            };
        }
        let Some(session) = self.sessions.get(access_key_id) else {
            return KeyLookup::Unknown;
        };
        let credential = Credential {
            identity: session.identity.clone(),
            secret_access_key: session.credentials.secret_access_key.clone(),
            session_token: Some(session.credentials.session_token.clone()),
            expiration: Some(session.credentials.expiration),
        };
        if now >= session.credentials.expiration {
            KeyLookup::Expired(credential)
        } else {
            KeyLookup::Valid(credential)
        }
    }

    /// Drops sessions that expired more than [`EXPIRED_SESSION_RETENTION`] ago; returns how
    /// many.
    pub fn prune_sessions(&mut self, now: Timestamp) -> usize {
        let before = self.sessions.len();
        self.sessions.retain(|_, s| now < s.credentials.expiration + EXPIRED_SESSION_RETENTION);
        before - self.sessions.len()
    }

    /// The sessions currently on record.
    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    /// AssumeRole by an IAM user or role session of this account. `context` carries the
    /// request's condition keys (see [`Directory::request_context`]).
    pub fn assume_role(
        &mut self,
        caller: &Identity,
        request: AssumeRoleRequest<'_>,
        context: &Context,
        now: Timestamp,
    ) -> Result<AssumedRole> {
        let duration = check_request(&request)?;
        let denied = || {
            Error::AccessDenied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {}",
                caller.arn(),
                request.role_arn
            ))
        };
        let role = self.role_by_arn(request.role_arn).ok_or_else(denied)?;
        let arns = match caller {
            Identity::User { arn, .. } => vec![arn.as_str()],
            Identity::AssumedRole { arn, role_arn, .. } => vec![arn.as_str(), role_arn.as_str()],
        };
        let trust_caller = Caller::Aws { account: &self.account.id, arns };
        let sts_request = Request { action: "sts:AssumeRole", resource: &role.arn, context };
        let trust = eval::evaluate_trust(&role.arn, &role.assume_role_policy, &trust_caller, &sts_request);
        let identity = self.authorize(caller, "sts:AssumeRole", &role.arn, context);
        if identity.outcome == Outcome::ExplicitDeny {
            let message = identity.denial_message(caller.arn(), "sts:AssumeRole", &role.arn);
            return Err(Error::AccessDenied(message.unwrap_or_default()));
        }
        match trust.principal_match {
            _ if trust.outcome != Outcome::Allow => return Err(denied()),
            Some(PrincipalMatch::Account) if !identity.is_allowed() => {
                let message = identity.denial_message(caller.arn(), "sts:AssumeRole", &role.arn);
                return Err(Error::AccessDenied(message.unwrap_or_default()));
            }
            _ => {}
        }
        let chained = matches!(caller, Identity::AssumedRole { .. });
        if chained && duration > ROLE_CHAINING_MAX_SECONDS {
            return Err(Error::Validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.".into(),
            ));
        }
        check_role_max(role, duration)?;
        let role = role.clone();
        let source = SessionSource::AssumeRole { caller: caller.arn().to_owned() };
        Ok(self.issue(&role, request.role_session_name, duration, source, trust, now))
    }

    /// A service (EC2 for an instance profile) assumes a role: only the trust policy decides.
    pub fn assume_role_as_service(
        &mut self,
        service: &str,
        request: AssumeRoleRequest<'_>,
        now: Timestamp,
    ) -> Result<AssumedRole> {
        let duration = check_request(&request)?;
        let denied = || {
            Error::AccessDenied(format!(
                "{service} is not authorized to perform: sts:AssumeRole on resource: {}",
                request.role_arn
            ))
        };
        let role = self.role_by_arn(request.role_arn).ok_or_else(denied)?;
        let context = Context::new();
        let sts_request = Request { action: "sts:AssumeRole", resource: &role.arn, context: &context };
        let trust = eval::evaluate_trust(
            &role.arn,
            &role.assume_role_policy,
            &Caller::Service(service),
            &sts_request,
        );
        if !trust.is_allowed() {
            return Err(denied());
        }
        check_role_max(role, duration)?;
        let role = role.clone();
        let source = SessionSource::Service { service: service.to_owned() };
        Ok(self.issue(&role, request.role_session_name, duration, source, trust, now))
    }

    /// The credentials IMDS serves an instance: EC2 assumes the instance profile's role with
    /// the instance ID as session name.
    pub fn instance_profile_credentials(
        &mut self,
        profile_name: &str,
        instance_id: &str,
        duration_seconds: u32,
        now: Timestamp,
    ) -> Result<AssumedRole> {
        let role_arn =
            self.instance_profile_roles(profile_name)?.first().map(|r| r.arn.clone()).ok_or_else(|| {
                Error::NoSuchEntity(format!("Instance Profile {profile_name} has no role."))
            })?;
        let request = AssumeRoleRequest {
            role_arn: &role_arn,
            role_session_name: instance_id,
            duration_seconds: Some(duration_seconds),
        };
        self.assume_role_as_service(EC2_SERVICE, request, now)
    }

    /// The OpenID Connect provider registered for `issuer` (a token's `iss`), as STS looks it
    /// up before it fetches the issuer's keys.
    pub fn oidc_provider_for(&self, issuer: &str) -> Option<&OidcProvider> {
        let arn = self.account.arn("iam", &format!("oidc-provider/{}", issuer_host_path(issuer)));
        self.oidc_providers.get(&arn)
    }

    /// AssumeRoleWithWebIdentity, for a token whose signature has been verified (IRSA): the
    /// issuer must be a registered OIDC provider, the token unexpired, an audience one of the
    /// provider's client IDs, and the role's trust policy must allow the provider with the
    /// token's `<issuer>:sub` and `<issuer>:aud`.
    pub fn assume_role_with_web_identity(
        &mut self,
        request: AssumeRoleRequest<'_>,
        claims: &WebIdentityClaims<'_>,
        now: Timestamp,
    ) -> Result<WebIdentityResult> {
        let duration = check_request(&request)?;
        let host_path = issuer_host_path(claims.issuer);
        let provider_arn = self.account.arn("iam", &format!("oidc-provider/{host_path}"));
        let Some(provider) = self.oidc_providers.get(&provider_arn) else {
            return Err(Error::InvalidIdentityToken(format!(
                "No OpenIDConnect provider found in your account for {}",
                claims.issuer
            )));
        };
        if now >= claims.expires_at {
            return Err(Error::ExpiredTokenException(format!(
                "Token expired: current date/time {} must be before the expiration date/time {}",
                now.as_second(),
                claims.expires_at.as_second()
            )));
        }
        let Some(audience) = claims.audiences.iter().find(|a| provider.client_ids.iter().any(|c| c == *a))
        else {
            return Err(Error::InvalidIdentityToken("Incorrect token audience".into()));
        };
        let denied = || Error::AccessDenied("Not authorized to perform sts:AssumeRoleWithWebIdentity".into());
        let role = self.role_by_arn(request.role_arn).ok_or_else(denied)?;
        let context = Context::new()
            .with(format!("{host_path}:sub"), claims.subject)
            .with(format!("{host_path}:aud"), *audience)
            .with(format!("{host_path}:oaud"), *audience)
            .with("aws:FederatedProvider", provider_arn.clone());
        let sts_request =
            Request { action: "sts:AssumeRoleWithWebIdentity", resource: &role.arn, context: &context };
        let trust = eval::evaluate_trust(
            &role.arn,
            &role.assume_role_policy,
            &Caller::Federated(&provider_arn),
            &sts_request,
        );
        if !trust.is_allowed() {
            return Err(denied());
        }
        check_role_max(role, duration)?;
        let role = role.clone();
        let source =
            SessionSource::WebIdentity { provider: provider_arn, subject: claims.subject.to_owned() };
        let assumed = self.issue(&role, request.role_session_name, duration, source, trust, now);
        Ok(WebIdentityResult {
            assumed,
            subject_from_web_identity_token: claims.subject.to_owned(),
            audience: (*audience).to_owned(),
            provider: claims.issuer.to_owned(),
        })
    }

    fn issue(
        &mut self,
        role: &Role,
        session_name: &str,
        duration: u32,
        source: SessionSource,
        decision: Decision,
        now: Timestamp,
    ) -> AssumedRole {
        let (access_key_id, secret_access_key) = self.ids.key_pair("ASIA");
        let credentials = TemporaryCredentials {
            access_key_id: access_key_id.clone(),
            secret_access_key,
            session_token: self.ids.session_token(),
            expiration: now + SignedDuration::from_secs(i64::from(duration)),
        };
        let arn = self.account.arn("sts", &format!("assumed-role/{}/{session_name}", role.name));
        let identity = Identity::AssumedRole {
            role_name: role.name.clone(),
            role_id: role.id.clone(),
            role_arn: role.arn.clone(),
            session_name: session_name.to_owned(),
            arn: arn.clone(),
        };
        let assumed_role_user = AssumedRoleUser { arn, assumed_role_id: identity.user_id() };
        self.sessions.insert(
            access_key_id,
            Session { identity, credentials: credentials.clone(), issued: now, source },
        );
        AssumedRole { credentials, assumed_role_user, decision }
    }
}

/// The model constraints of RoleSessionName and DurationSeconds, reported together as AWS
/// does; returns the duration.
/// An issuer URL as IAM keys its provider: without `https://` and a final slash
/// (`oidc.eks.us-east-1.amazonaws.com/id/ABC`).
fn issuer_host_path(issuer: &str) -> &str {
    issuer.strip_prefix("https://").unwrap_or(issuer).trim_end_matches('/')
}

fn check_request(request: &AssumeRoleRequest<'_>) -> Result<u32> {
    let mut violations = Vec::new();
    let name = request.role_session_name;
    let len = name.chars().count();
    if len > 64 {
        violations.push(Violation::new(
            name,
            "roleSessionName",
            "Member must have length less than or equal to 64",
        ));
    }
    if len < 2 {
        violations.push(Violation::new(
            name,
            "roleSessionName",
            "Member must have length greater than or equal to 2",
        ));
    }
    if !name.chars().all(is_name_char) {
        violations.push(Violation::new(
            name,
            "roleSessionName",
            r"Member must satisfy regular expression pattern: [\w+=,.@-]*",
        ));
    }
    let duration = request.duration_seconds.unwrap_or(DEFAULT_DURATION_SECONDS);
    if duration < MIN_DURATION_SECONDS {
        violations.push(Violation::new(
            duration,
            "durationSeconds",
            "Member must have value greater than or equal to 900",
        ));
    }
    if duration > MAX_DURATION_SECONDS {
        violations.push(Violation::new(
            duration,
            "durationSeconds",
            "Member must have value less than or equal to 43200",
        ));
    }
    if request.role_arn.len() < 20 {
        violations.push(Violation::new(
            request.role_arn,
            "roleArn",
            "Member must have length greater than or equal to 20",
        ));
    }
    if !violations.is_empty() {
        return Err(Error::constraints(violations));
    }
    Ok(duration)
}

fn check_role_max(role: &Role, duration: u32) -> Result<()> {
    if duration > role.max_session_duration {
        return Err(Error::Validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
