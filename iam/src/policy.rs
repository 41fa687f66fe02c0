//! IAM JSON policy documents, parsed as strictly as IAM parses them, with IAM's
//! `MalformedPolicyDocument` messages, and kept with their original text (IAM hands the text
//! back, URL-encoded, in `GetRole`, `GetRolePolicy` and `GetPolicyVersion`).
//!
//! The checks and their order follow moto's `iam/policy_validation.py`, which was built against
//! IAM's answers, corrected where real CLI output differs: a trust policy that is not JSON gets
//! "This policy contains invalid Json" (aws-cli issues for `create-role` without `file://`) while
//! identity policies get "Syntax errors in policy.", and "Has prohibited field Resource" has no
//! final period (kubernetes-sigs/external-dns#3085).
//!
//! - [`pattern`]: the `*`/`?` wildcards of actions, resources and `...Like` operators.
//! - [`condition`]: condition operators and their evaluation.

pub mod condition;
pub mod pattern;

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

pub use condition::{BaseOperator, Condition, Operator, SetQualifier};

use crate::error::{Error, Result};

/// The only policy language version managed policies accept.
pub const VERSION_2012: &str = "2012-10-17";
/// The older version inline and trust policies still accept.
pub const VERSION_2008: &str = "2008-10-17";

const SYNTAX: &str = "Syntax errors in policy.";
const INVALID_JSON: &str = "This policy contains invalid Json";

/// Which kind of document is being stored: each kind has its own rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// A customer managed policy (`CreatePolicy`): identity policy, version 2012-10-17 only.
    Managed,
    /// An inline policy (`PutRolePolicy`, `PutUserPolicy`): identity policy.
    Inline,
    /// A role trust policy (`AssumeRolePolicyDocument`): needs `Principal`, forbids `Resource`.
    Trust,
}

/// A parsed policy document and the text it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    text: String,
    version: Option<String>,
    statements: Vec<Statement>,
}

/// `Allow` or `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The statement grants.
    Allow,
    /// The statement denies, overriding every allow.
    Deny,
}

/// One statement of a document.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// `Sid`, if given: named in decisions so a trace shows which statement decided.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal` (trust policies).
    pub principal: Option<Principal>,
    /// `NotPrincipal`.
    pub not_principal: Option<Principal>,
    /// `Action` or `NotAction`.
    pub action: Targets,
    /// `Resource` or `NotResource` (absent in trust policies).
    pub resource: Option<Targets>,
    /// The `Condition` block, one entry per operator and key; all must hold.
    pub conditions: Vec<Condition>,
}

/// The values of `Action`/`NotAction` or `Resource`/`NotResource`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Targets {
    /// The patterns, as written.
    pub values: Vec<String>,
    /// `NotAction`/`NotResource`: the statement applies to everything the patterns miss.
    pub not: bool,
}

/// A statement's `Principal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    /// `"Principal": "*"`: everyone, including anonymous callers.
    Any,
    /// `{"AWS": ..., "Service": ..., "Federated": ...}`.
    Typed(Vec<(PrincipalType, Vec<String>)>),
}

/// The keys of a `Principal` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalType {
    /// `AWS`: accounts, users, roles and role sessions.
    Aws,
    /// `Service`: AWS services such as `ec2.amazonaws.com`.
    Service,
    /// `Federated`: identity providers (OIDC, SAML).
    Federated,
    /// `CanonicalUser`: S3's canonical IDs (never matches here).
    CanonicalUser,
}

// === impl PolicyDocument ===

impl PolicyDocument {
    /// Parses and validates a document as IAM does for `kind`, failing with IAM's
    /// `MalformedPolicyDocument` messages. Existence of the principals a trust policy names is
    /// checked by the directory, which knows the account's users and roles.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Self> {
        let value: Value = serde_json::from_str(text)
            .map_err(|_| malformed(if kind == PolicyKind::Trust { INVALID_JSON } else { SYNTAX }))?;
        let doc = Self::from_value(text, &value).ok_or_else(|| malformed(SYNTAX))?;
        doc.validate(&value, kind)?;
        Ok(doc)
    }

    /// Parses a document that was validated when it was stored (reloading persisted state):
    /// only the syntax is checked.
    pub fn parse_stored(text: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(text).map_err(|_| malformed(SYNTAX))?;
        Self::from_value(text, &value).ok_or_else(|| malformed(SYNTAX))
    }

    /// The document exactly as it was submitted.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text URL-encoded, as IAM returns documents in XML (`AssumeRolePolicyDocument`,
    /// `PolicyDocument`): every byte outside RFC 3986's unreserved set is `%XX`.
    pub fn url_encoded(&self) -> String {
        let mut out = String::with_capacity(self.text.len() * 2);
        for b in self.text.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// `Version`, if the document names one.
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The statements, in document order (the index is what decisions report).
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The structural parse ("Syntax errors in policy." when it fails).
    fn from_value(text: &str, value: &Value) -> Option<Self> {
        let top = value.as_object()?;
        if !top.keys().all(|k| matches!(k.as_str(), "Version" | "Id" | "Statement")) {
            return None;
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) if v == VERSION_2012 || v == VERSION_2008 => Some(v.clone()),
            Some(_) => return None,
        };
        if top.get("Id").is_some_and(|id| !id.is_string()) {
            return None;
        }
        let raw: Vec<&Value> = match top.get("Statement")? {
            Value::Array(items) if !items.is_empty() => items.iter().collect(),
            v @ Value::Object(_) => vec![v],
            _ => return None,
        };
        let statements =
            raw.into_iter().map(|s| Statement::from_value(s.as_object()?)).collect::<Option<Vec<_>>>()?;
        Some(Self { text: text.to_owned(), version, statements })
    }

    /// The checks after the syntax, in IAM's order.
    fn validate(&self, value: &Value, kind: PolicyKind) -> Result<()> {
        if kind == PolicyKind::Managed && self.version.as_deref() != Some(VERSION_2012) {
            return Err(malformed("Policy document must be version 2012-10-17 or greater."));
        }
        let raw = raw_statements(value);
        // `Effect` matched ignoring case above; the legacy parser wants it exact.
        if raw.iter().any(|s| !matches!(s.get("Effect").and_then(Value::as_str), Some("Allow" | "Deny"))) {
            return Err(malformed("The policy failed legacy parsing"));
        }
        let mut sids = HashSet::new();
        for s in &self.statements {
            if let Some(sid) = s.sid.as_deref().filter(|s| !s.is_empty())
                && !sids.insert(sid)
            {
                return Err(malformed("Statement IDs (SID) in a single policy must be unique."));
            }
        }
        if self.statements.iter().any(|s| s.action.values.is_empty()) {
            return Err(malformed("Policy statement must contain actions."));
        }
        for s in &self.statements {
            for r in s.resource.iter().flat_map(|r| r.values.iter()) {
                check_resource(r)?;
            }
        }
        for s in &self.statements {
            for a in &s.action.values {
                check_action(a)?;
            }
        }
        match kind {
            PolicyKind::Managed | PolicyKind::Inline => {
                if self.statements.iter().any(|s| s.principal.is_some() || s.not_principal.is_some()) {
                    return Err(malformed("Policy document should not specify a principal."));
                }
                if self.statements.iter().any(|s| s.resource.is_none()) {
                    return Err(malformed("Policy statement must contain resources."));
                }
            }
            PolicyKind::Trust => {
                if self.statements.iter().any(|s| s.resource.is_some()) {
                    return Err(malformed("Has prohibited field Resource"));
                }
                if self.statements.iter().any(|s| s.principal.is_none() && s.not_principal.is_none()) {
                    return Err(malformed("Missing required field Principal"));
                }
                if self.statements.iter().any(|s| {
                    s.action.not
                        || s.action.values.iter().any(|a| !a.to_ascii_lowercase().starts_with("sts:"))
                }) {
                    return Err(malformed(
                        "Trust Policy statement actions can only be sts:AssumeRole, sts:AssumeRoleWithSAML,  and sts:AssumeRoleWithWebIdentity",
                    ));
                }
                for s in &self.statements {
                    for p in s.principal.iter().chain(s.not_principal.iter()) {
                        p.check_syntax()?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Every `AWS` principal value the document names (for the directory's existence check).
    pub fn aws_principals(&self) -> impl Iterator<Item = &str> {
        self.statements
            .iter()
            .flat_map(|s| s.principal.iter().chain(s.not_principal.iter()))
            .flat_map(|p| match p {
                Principal::Any => &[][..],
                Principal::Typed(entries) => &entries[..],
            })
            .filter(|(t, _)| *t == PrincipalType::Aws)
            .flat_map(|(_, values)| values.iter().map(String::as_str))
    }
}

impl fmt::Display for PolicyDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl serde::Serialize for PolicyDocument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for PolicyDocument {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_stored(&text).map_err(serde::de::Error::custom)
    }
}

fn raw_statements(value: &Value) -> Vec<&Map<String, Value>> {
    match value.get("Statement") {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_object).collect(),
        Some(Value::Object(o)) => vec![o],
        _ => Vec::new(),
    }
}

fn malformed(message: &str) -> Error {
    Error::MalformedPolicyDocument(message.to_owned())
}

fn check_action(action: &str) -> Result<()> {
    if action == "*" {
        return Ok(());
    }
    let parts: Vec<&str> = action.split(':').collect();
    match parts.len() {
        1 => Err(malformed("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.")),
        2 => {
            let vendor = parts[0];
            if vendor == "*" || vendor.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                Ok(())
            } else {
                Err(Error::MalformedPolicyDocument(format!("Vendor {vendor} is not valid")))
            }
        }
        _ => Err(malformed("Actions/Condition can contain only one colon.")),
    }
}

fn check_resource(resource: &str) -> Result<()> {
    if resource == "*" {
        return Ok(());
    }
    if !resource.contains(':') {
        return Err(Error::MalformedPolicyDocument(format!(
            "Resource {resource} must be in ARN format or \"*\"."
        )));
    }
    let mut parts = resource.splitn(4, ':');
    let (arn, partition, service) = (parts.next(), parts.next(), parts.next());
    let qualified = arn == Some("arn")
        && partition.is_some_and(|p| !p.is_empty())
        && service.is_some_and(|s| !s.is_empty())
        && parts.next().is_some();
    if qualified {
        Ok(())
    } else {
        Err(malformed("Resource vendor must be fully qualified and cannot contain regexes."))
    }
}

// === impl Statement ===

impl Statement {
    fn from_value(o: &Map<String, Value>) -> Option<Self> {
        const KEYS: [&str; 9] = [
            "Sid",
            "Effect",
            "Principal",
            "NotPrincipal",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
        ];
        if !o.keys().all(|k| KEYS.contains(&k.as_str())) {
            return None;
        }
        let sid = match o.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return None,
        };
        let effect = match o.get("Effect")?.as_str()?.to_ascii_lowercase().as_str() {
            "allow" => Effect::Allow,
            "deny" => Effect::Deny,
            _ => return None,
        };
        let action = match (o.get("Action"), o.get("NotAction")) {
            (Some(_), Some(_)) => return None,
            (Some(v), None) => Targets { values: strings(v)?, not: false },
            (None, Some(v)) => Targets { values: strings(v)?, not: true },
            // Reported after the syntax pass: "Policy statement must contain actions."
            (None, None) => Targets { values: Vec::new(), not: false },
        };
        let resource = match (o.get("Resource"), o.get("NotResource")) {
            (Some(_), Some(_)) => return None,
            (Some(v), None) => Some(Targets { values: strings(v)?, not: false }),
            (None, Some(v)) => Some(Targets { values: strings(v)?, not: true }),
            (None, None) => None,
        };
        let principal = match o.get("Principal") {
            Some(v) => Some(Principal::from_value(v)?),
            None => None,
        };
        let not_principal = match o.get("NotPrincipal") {
            Some(v) => Some(Principal::from_value(v)?),
            None => None,
        };
        let conditions = match o.get("Condition") {
            None => Vec::new(),
            Some(v) => conditions(v.as_object()?)?,
        };
        Some(Self { sid, effect, principal, not_principal, action, resource, conditions })
    }
}

/// A string or an array of strings (`null` entries are skipped, as IAM does).
fn strings(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => {
            items.iter().filter(|i| !i.is_null()).map(|i| i.as_str().map(str::to_owned)).collect()
        }
        _ => None,
    }
}

/// Condition values: strings, numbers and booleans, alone or in an array.
fn condition_values(v: &Value) -> Option<Vec<String>> {
    let one = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().map(one).collect(),
        v => one(v).map(|s| vec![s]),
    }
}

fn conditions(block: &Map<String, Value>) -> Option<Vec<Condition>> {
    let mut out = Vec::new();
    for (op, entries) in block {
        let operator = Operator::parse(op)?;
        for (key, values) in entries.as_object()? {
            out.push(Condition { operator, key: key.clone(), values: condition_values(values)? });
        }
    }
    Some(out)
}

// === impl Principal ===

impl Principal {
    fn from_value(v: &Value) -> Option<Self> {
        match v {
            Value::String(s) if s == "*" => Some(Self::Any),
            Value::Object(o) => {
                let mut entries = Vec::new();
                for (k, v) in o {
                    let t = match k.as_str() {
                        "AWS" => PrincipalType::Aws,
                        "Service" => PrincipalType::Service,
                        "Federated" => PrincipalType::Federated,
                        "CanonicalUser" => PrincipalType::CanonicalUser,
                        _ => return None,
                    };
                    entries.push((t, strings(v)?));
                }
                Some(Self::Typed(entries))
            }
            _ => None,
        }
    }

    /// IAM's shape check of `AWS` principal values: `*`, an account ID, or an IAM/STS ARN.
    fn check_syntax(&self) -> Result<()> {
        let Self::Typed(entries) = self else {
            return Ok(());
        };
        for (t, values) in entries {
            if *t != PrincipalType::Aws {
                continue;
            }
            for v in values {
                if !aws_principal_shape(v) {
                    return Err(invalid_principal(v));
                }
            }
        }
        Ok(())
    }
}

/// `Invalid principal in policy: "AWS":"<value>"`, IAM's answer for an AWS principal it cannot
/// resolve.
pub(crate) fn invalid_principal(value: &str) -> Error {
    Error::MalformedPolicyDocument(format!("Invalid principal in policy: \"AWS\":\"{value}\""))
}

fn aws_principal_shape(v: &str) -> bool {
    let account = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if v == "*" || account(v) {
        return true;
    }
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    match parts[..] {
        ["arn", _, "iam", "", acct, rest] => {
            account(acct)
                && (rest == "root"
                    || ["user/", "role/", "federated-user/"]
                        .iter()
                        .any(|p| rest.strip_prefix(p).is_some_and(|n| !n.is_empty() && !n.contains('*'))))
        }
        ["arn", _, "sts", "", acct, rest] => {
            account(acct) && rest.starts_with("assumed-role/") && !rest.contains('*')
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
