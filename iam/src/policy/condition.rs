//! `Condition` blocks: operators, their `...IfExists` and `ForAnyValue:`/`ForAllValues:`
//! forms, and how one condition is evaluated against a request's context keys.
//!
//! Semantics follow the IAM User Guide ("IAM JSON policy elements: Condition operators" and
//! "Single-valued vs. multivalued context keys"): several keys in a block AND, several values
//! for one key OR; a missing key makes a condition false, except that a negated operator
//! (`StringNotEquals`, `ArnNotLike`, ...) is then true, `...IfExists` is then true,
//! `ForAllValues:` is then true, and `Null` tests exactly for absence.

use std::net::IpAddr;

use ipnet::IpNet;
use jiff::Timestamp;

use super::pattern;
use crate::eval::Context;

/// One `"Operator": {"key": values}` entry of a `Condition` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The operator as written, parsed.
    pub operator: Operator,
    /// The context key (`aws:SourceIp`, `oidc.eks...:sub`), compared ignoring case.
    pub key: String,
    /// The policy's values (a single string, number or bool becomes one value).
    pub values: Vec<String>,
}

/// A condition operator with its set qualifier and `IfExists` suffix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Operator {
    /// `ForAnyValue:` or `ForAllValues:`, if present.
    pub set: Option<SetQualifier>,
    /// The base operator.
    pub base: BaseOperator,
    /// The `...IfExists` suffix: a missing key makes the condition true.
    pub if_exists: bool,
}

/// `ForAnyValue:` / `ForAllValues:`, for multivalued context keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetQualifier {
    /// At least one request value must satisfy the operator.
    ForAnyValue,
    /// Every request value must satisfy it (vacuously true with none).
    ForAllValues,
}

/// The base condition operators IAM accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // The variants are AWS's operator names.
pub enum BaseOperator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

// === impl Operator ===

impl Operator {
    /// Parses `ForAnyValue:StringLikeIfExists` and the like; `None` for an unknown operator.
    pub fn parse(s: &str) -> Option<Self> {
        let (set, rest) = if let Some(r) = s.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), r)
        } else if let Some(r) = s.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), r)
        } else {
            (None, s)
        };
        if let Some(base) = BaseOperator::parse(rest) {
            return Some(Self { set, base, if_exists: false });
        }
        let base = BaseOperator::parse(rest.strip_suffix("IfExists")?)?;
        // `NullIfExists` means nothing and IAM rejects it.
        (base != BaseOperator::Null).then_some(Self { set, base, if_exists: true })
    }
}

// === impl BaseOperator ===

impl BaseOperator {
    fn parse(s: &str) -> Option<Self> {
        use BaseOperator::*;
        Some(match s {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "BinaryEquals" => BinaryEquals,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnLike" => ArnLike,
            "ArnNotEquals" => ArnNotEquals,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators hold when no policy value matches, and when the key is missing.
    pub fn is_negated(self) -> bool {
        use BaseOperator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// The positive comparison of one request value with one policy value (for a negated
    /// operator, the comparison it negates).
    fn compare(self, request: &str, policy: &str) -> bool {
        use BaseOperator::*;
        match self {
            StringEquals | StringNotEquals | BinaryEquals => request == policy,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                request.to_lowercase() == policy.to_lowercase()
            }
            StringLike | StringNotLike => pattern::matches(policy, request),
            NumericEquals | NumericNotEquals => numeric(request, policy, |r, p| r == p),
            NumericLessThan => numeric(request, policy, |r, p| r < p),
            NumericLessThanEquals => numeric(request, policy, |r, p| r <= p),
            NumericGreaterThan => numeric(request, policy, |r, p| r > p),
            NumericGreaterThanEquals => numeric(request, policy, |r, p| r >= p),
            DateEquals | DateNotEquals => date(request, policy, |r, p| r == p),
            DateLessThan => date(request, policy, |r, p| r < p),
            DateLessThanEquals => date(request, policy, |r, p| r <= p),
            DateGreaterThan => date(request, policy, |r, p| r > p),
            DateGreaterThanEquals => date(request, policy, |r, p| r >= p),
            Bool => request.eq_ignore_ascii_case(policy),
            IpAddress | NotIpAddress => ip_in(request, policy),
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => pattern::arn_matches(policy, request),
            // Handled before any comparison.
            Null => false,
        }
    }
}

fn numeric(request: &str, policy: &str, f: impl Fn(f64, f64) -> bool) -> bool {
    match (request.trim().parse::<f64>(), policy.trim().parse::<f64>()) {
        (Ok(r), Ok(p)) => f(r, p),
        _ => false,
    }
}

fn date(request: &str, policy: &str, f: impl Fn(Timestamp, Timestamp) -> bool) -> bool {
    match (parse_date(request), parse_date(policy)) {
        (Some(r), Some(p)) => f(r, p),
        _ => false,
    }
}

/// IAM dates: ISO 8601 (`2026-01-01T00:00:00Z`, or a bare date meaning midnight UTC) or epoch
/// seconds.
pub(crate) fn parse_date(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Timestamp::from_second(secs).ok();
    }
    if let Ok(ts) = s.parse::<Timestamp>() {
        return Some(ts);
    }
    let date: jiff::civil::Date = s.parse().ok()?;
    date.to_zoned(jiff::tz::TimeZone::UTC).ok().map(|z| z.timestamp())
}

fn ip_in(request: &str, policy: &str) -> bool {
    let Ok(ip) = request.trim().parse::<IpAddr>() else {
        return false;
    };
    if let Ok(net) = policy.trim().parse::<IpNet>() {
        return net.contains(&ip);
    }
    policy.trim().parse::<IpAddr>() == Ok(ip)
}

// === impl Condition ===

impl Condition {
    /// Whether the condition holds for the request context.
    pub fn holds(&self, context: &Context) -> bool {
        let op = self.operator;
        let present = context.get(&self.key).filter(|v| !v.is_empty());
        if op.base == BaseOperator::Null {
            // `"Null": {"key": "true"}` holds when the key is absent.
            return self.values.iter().any(|v| {
                if v.eq_ignore_ascii_case("true") {
                    present.is_none()
                } else if v.eq_ignore_ascii_case("false") {
                    present.is_some()
                } else {
                    false
                }
            });
        }
        let Some(request) = present else {
            if op.if_exists {
                return true;
            }
            return match op.set {
                Some(SetQualifier::ForAllValues) => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => op.base.is_negated(),
            };
        };
        let satisfied = |value: &String| {
            let any = self.values.iter().any(|p| op.base.compare(value, p));
            any != op.base.is_negated()
        };
        match op.set {
            Some(SetQualifier::ForAnyValue) => request.iter().any(satisfied),
            Some(SetQualifier::ForAllValues) => request.iter().all(satisfied),
            // A single-valued key: for a negated operator no request value may match.
            None if op.base.is_negated() => request.iter().all(satisfied),
            None => request.iter().any(satisfied),
        }
    }
}
