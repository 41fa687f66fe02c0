//! Policy evaluation as the IAM User Guide's "Policy evaluation logic" describes it for
//! requests within one account: an explicit `Deny` in any applicable statement wins; otherwise
//! an `Allow` from any applicable statement allows; otherwise the request is implicitly
//! denied. A [`Decision`] names the statement that decided, so the cloud can put it on the
//! request's trace span, and renders AWS's access-denied message.
//!
//! Not modelled: permissions boundaries, session policies, SCPs, resource-based policies other
//! than role trust policies, and policy variables (`${aws:username}`) in resources.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::policy::{Effect, PolicyDocument, Principal, PrincipalType, Statement, pattern};

/// The request's condition keys (`aws:SourceIp`, `aws:PrincipalArn`,
/// `oidc.eks.<region>.amazonaws.com/id/<id>:sub`, ...). Keys compare ignoring case, as IAM's
/// do; a key may carry several values (multivalued keys such as `aws:TagKeys`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    values: BTreeMap<String, Vec<String>>,
}

/// What is asked: an action on a resource, in a context.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `service:Action`, e.g. `ecr:GetAuthorizationToken`.
    pub action: &'a str,
    /// The resource ARN, or `*` for actions without resource-level permissions.
    pub resource: &'a str,
    /// The condition keys.
    pub context: &'a Context,
}

/// Who asks, as a trust policy's `Principal` sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller<'a> {
    /// An IAM user or role session of `account`; `arns` are every ARN a principal element
    /// may name for it (a session matches its session ARN and its role's ARN).
    Aws {
        /// The account the principal lives in.
        account: &'a str,
        /// The ARNs that identify it.
        arns: Vec<&'a str>,
    },
    /// An AWS service such as `ec2.amazonaws.com`.
    Service(&'a str),
    /// A federated identity provider ARN (an OIDC provider for IRSA).
    Federated(&'a str),
}

/// How a trust statement's principal matched the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PrincipalMatch {
    /// Through the account (`"AWS": "123456789012"` or `:root`): the trust policy delegates to
    /// the caller's identity policies, which must allow the action too.
    Account,
    /// Through `*`, a service, a provider or the caller's own ARN: no identity policy needed.
    Specific,
}

/// Where a policy came from, for decisions and messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicySource {
    /// A managed policy (AWS or customer), by ARN.
    Managed {
        /// The policy ARN.
        arn: String,
    },
    /// An inline policy of a user or role.
    Inline {
        /// The user's or role's ARN.
        owner: String,
        /// The policy name.
        name: String,
    },
    /// A role's trust policy.
    Trust {
        /// The role's ARN.
        role: String,
    },
}

/// The statement that decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRef {
    /// The policy.
    pub policy: PolicySource,
    /// The statement's index in the document.
    pub index: usize,
    /// Its `Sid`, if any.
    pub sid: Option<String>,
}

/// The outcome of an evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Some statement allows and none denies.
    Allow,
    /// A statement denies.
    ExplicitDeny,
    /// No statement applies.
    ImplicitDeny,
}

/// The result of evaluating policies for a request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allowed or why not.
    pub outcome: Outcome,
    /// The deciding statement: the first denying one, else the allowing one; `None` for an
    /// implicit deny.
    pub statement: Option<StatementRef>,
    /// For trust policies, how the allowing statement's principal matched.
    pub principal_match: Option<PrincipalMatch>,
}

// === impl Context ===

impl Context {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a single-valued key, replacing any value.
    pub fn insert(&mut self, key: impl AsRef<str>, value: impl Into<String>) -> &mut Self {
        self.values.insert(key.as_ref().to_lowercase(), vec![value.into()]);
        self
    }

    /// Sets a multivalued key.
    pub fn insert_all(
        &mut self,
        key: impl AsRef<str>,
        values: impl IntoIterator<Item = String>,
    ) -> &mut Self {
        self.values.insert(key.as_ref().to_lowercase(), values.into_iter().collect());
        self
    }

    /// Builder form of [`Context::insert`].
    pub fn with(mut self, key: impl AsRef<str>, value: impl Into<String>) -> Self {
        self.insert(key, value);
        self
    }

    /// The values of a key, if present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(&key.to_lowercase()).map(Vec::as_slice)
    }

    /// Every key and its values (keys lower-cased).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.values.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

// === impl Decision ===

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// AWS's access-denied message for an identity-policy denial, or `None` when allowed:
    ///
    /// - `User: <arn> is not authorized to perform: <action> on resource: <resource> because no
    ///   identity-based policy allows the <action> action`
    /// - `User: <arn> is not authorized to perform: <action> on resource: <resource> with an
    ///   explicit deny in an identity-based policy`
    ///
    /// (IAM User Guide, "Troubleshoot access denied error messages"; the same words appear in
    /// real ECR and STS errors.) Newer AWS messages may append `: <policy arn>` to the explicit
    /// deny; this renders the documented form.
    pub fn denial_message(&self, principal_arn: &str, action: &str, resource: &str) -> Option<String> {
        let head =
            format!("User: {principal_arn} is not authorized to perform: {action} on resource: {resource}");
        match self.outcome {
            Outcome::Allow => None,
            Outcome::ImplicitDeny => {
                Some(format!("{head} because no identity-based policy allows the {action} action"))
            }
            Outcome::ExplicitDeny => {
                Some(format!("{head} with an explicit deny in an identity-based policy"))
            }
        }
    }

    fn implicit() -> Self {
        Self { outcome: Outcome::ImplicitDeny, statement: None, principal_match: None }
    }
}

// === impl StatementRef ===

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            PolicySource::Managed { arn } => write!(f, "{arn}")?,
            PolicySource::Inline { owner, name } => write!(f, "{owner} inline policy {name}")?,
            PolicySource::Trust { role } => write!(f, "{role} trust policy")?,
        }
        match &self.sid {
            Some(sid) => write!(f, " statement {} ({sid})", self.index),
            None => write!(f, " statement {}", self.index),
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allow => "allow",
            Self::ExplicitDeny => "explicit deny",
            Self::ImplicitDeny => "implicit deny",
        })
    }
}

/// Evaluates identity policies (attached managed and inline) for a request.
pub fn evaluate<'p>(
    policies: impl IntoIterator<Item = (PolicySource, &'p PolicyDocument)>,
    request: &Request<'_>,
) -> Decision {
    evaluate_with(policies, request, None)
}

/// Evaluates a role's trust policy for a caller asking for `request.action`
/// (`sts:AssumeRole`, `sts:AssumeRoleWithWebIdentity`); the resource is the role.
pub fn evaluate_trust(
    role_arn: &str,
    trust: &PolicyDocument,
    caller: &Caller<'_>,
    request: &Request<'_>,
) -> Decision {
    let source = PolicySource::Trust { role: role_arn.to_owned() };
    evaluate_with([(source, trust)], request, Some(caller))
}

fn evaluate_with<'p>(
    policies: impl IntoIterator<Item = (PolicySource, &'p PolicyDocument)>,
    request: &Request<'_>,
    caller: Option<&Caller<'_>>,
) -> Decision {
    let mut allow: Option<(StatementRef, Option<PrincipalMatch>)> = None;
    for (source, doc) in policies {
        for (index, statement) in doc.statements().iter().enumerate() {
            let Some(matched) = applies(statement, request, caller) else {
                continue;
            };
            let sref = StatementRef { policy: source.clone(), index, sid: statement.sid.clone() };
            match statement.effect {
                Effect::Deny => {
                    return Decision {
                        outcome: Outcome::ExplicitDeny,
                        statement: Some(sref),
                        principal_match: matched,
                    };
                }
                Effect::Allow => {
                    // Keep the first allow, but prefer one that names the caller specifically.
                    if allow.as_ref().is_none_or(|(_, m)| matched > *m) {
                        allow = Some((sref, matched));
                    }
                }
            }
        }
    }
    match allow {
        Some((sref, matched)) => {
            Decision { outcome: Outcome::Allow, statement: Some(sref), principal_match: matched }
        }
        None => Decision::implicit(),
    }
}

/// Whether a statement applies; `Some(principal match)` if it does (`Some(None)` for
/// statements without a principal).
fn applies(
    s: &Statement,
    request: &Request<'_>,
    caller: Option<&Caller<'_>>,
) -> Option<Option<PrincipalMatch>> {
    let action_hit = s.action.values.iter().any(|p| pattern::matches_ignore_case(p, request.action));
    if action_hit == s.action.not {
        return None;
    }
    if let Some(resource) = &s.resource {
        let hit = resource.values.iter().any(|p| pattern::matches(p, request.resource));
        if hit == resource.not {
            return None;
        }
    }
    let matched = match caller {
        None => None,
        Some(caller) => {
            let m = match (&s.principal, &s.not_principal) {
                (Some(p), _) => principal_matches(p, caller)?,
                (None, Some(np)) => match principal_matches(np, caller) {
                    Some(_) => return None,
                    None => PrincipalMatch::Specific,
                },
                (None, None) => return None,
            };
            Some(m)
        }
    };
    if !s.conditions.iter().all(|c| c.holds(request.context)) {
        return None;
    }
    Some(matched)
}

fn principal_matches(p: &Principal, caller: &Caller<'_>) -> Option<PrincipalMatch> {
    let entries = match p {
        Principal::Any => return Some(PrincipalMatch::Specific),
        Principal::Typed(entries) => entries,
    };
    let mut best = None;
    for (t, values) in entries {
        for v in values {
            let m = match (t, caller) {
                (PrincipalType::Aws, Caller::Aws { account, arns }) => {
                    if v == "*" || arns.contains(&v.as_str()) {
                        Some(PrincipalMatch::Specific)
                    } else if v == account || is_account_root(v, account) {
                        Some(PrincipalMatch::Account)
                    } else {
                        None
                    }
                }
                (PrincipalType::Service, Caller::Service(s)) => (v == s).then_some(PrincipalMatch::Specific),
                (PrincipalType::Federated, Caller::Federated(f)) => {
                    (v == f).then_some(PrincipalMatch::Specific)
                }
                _ => None,
            };
            best = best.max(m);
        }
    }
    best
}

/// `arn:<partition>:iam::<account>:root`: the account as a principal.
fn is_account_root(v: &str, account: &str) -> bool {
    v.strip_prefix("arn:").and_then(|r| r.split_once(':')).is_some_and(|(_, rest)| {
        rest.strip_prefix("iam::").and_then(|r| r.strip_suffix(":root")) == Some(account)
    })
}

#[cfg(test)]
mod tests;
