//! Reading `netlab fault`'s flag values: percentages, Go durations, tc rates, label selectors,
//! HTTP statuses.
//!
//! Only the syntax of a flag is checked here, so that a typo is named with the flag the user
//! typed (`--loss 130%: must be a percentage between 0 and 100`) before anything is sent. What
//! the object as a whole must satisfy (a `from` direction needs a target, a mode needs its value)
//! is the apiserver's to check, worded as Chaos Mesh's webhook words it: the CLI does not repeat it.

use std::collections::BTreeMap;

use netlab_config::DurationError;

/// A flag value that cannot be used, or flags that do not go together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// The value does not have the flag's syntax.
    #[error("{flag} {value}: {reason}")]
    Invalid {
        /// The flag, as typed (`--loss`).
        flag: &'static str,
        /// The value, as typed.
        value: String,
        /// What is allowed.
        reason: String,
    },
    /// The value is not a Go duration.
    #[error("{flag} {value}: must be a duration such as 200ms, 2s or 1m30s ({source})")]
    Duration {
        /// The flag.
        flag: &'static str,
        /// The value, as typed.
        value: String,
        /// Why it does not parse.
        #[source]
        source: DurationError,
    },
    /// Flags that do not go together, or a needed one missing.
    #[error("{0}")]
    Usage(String),
}

// === impl FlagError ===

impl FlagError {
    fn invalid(flag: &'static str, value: &str, reason: impl Into<String>) -> Self {
        FlagError::Invalid { flag, value: value.to_string(), reason: reason.into() }
    }
}

/// A percentage, `30%` or `30`, as Chaos Mesh's spec spells it (`"30"`).
pub fn percent(flag: &'static str, value: &str) -> Result<String, FlagError> {
    let number = value.trim().strip_suffix('%').unwrap_or(value.trim()).trim();
    match number.parse::<f64>() {
        Ok(p) if p.is_finite() && (0.0..=100.0).contains(&p) && !number.starts_with('+') => {
            Ok(number.to_string())
        }
        _ => Err(FlagError::invalid(flag, value, "must be a percentage between 0 and 100")),
    }
}

/// A Go duration (`60s`, `1m30s`), not negative. Kept as typed: the spec field is text.
pub fn duration(flag: &'static str, value: &str) -> Result<String, FlagError> {
    if value.starts_with('-') {
        return Err(FlagError::invalid(flag, value, "must not be negative"));
    }
    netlab_config::parse_duration(value).map(|_| value.to_string()).map_err(|source| FlagError::Duration {
        flag,
        value: value.to_string(),
        source,
    })
}

/// A netem latency or jitter: one number and one unit, the pattern Chaos Mesh's CRD gives
/// `delay.latency` and `delay.jitter` (`^[0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h)$`).
pub fn latency(flag: &'static str, value: &str) -> Result<String, FlagError> {
    let unit_at = value.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(value.len());
    let (number, unit) = value.split_at(unit_at);
    let number_ok = match number.split_once('.') {
        Some((whole, fraction)) => !whole.is_empty() && !fraction.is_empty() && !fraction.contains('.'),
        None => !number.is_empty(),
    };
    if number_ok && ["ns", "us", "ms", "s", "m", "h"].contains(&unit) {
        Ok(value.to_string())
    } else {
        Err(FlagError::invalid(
            flag,
            value,
            "must be a number and one unit (ns, us, ms, s, m or h), e.g. 200ms",
        ))
    }
}

/// A tc rate as Chaos Mesh's webhook takes it: a whole number and a unit, `bit` units in bits
/// per second and `bps` units in bytes per second (tc's meaning).
pub fn rate(flag: &'static str, value: &str) -> Result<String, FlagError> {
    const UNITS: [&str; 10] = ["kbit", "mbit", "gbit", "tbit", "tbps", "gbps", "mbps", "kbps", "bps", "bit"];
    let text = value.trim().to_ascii_lowercase();
    let ok = UNITS.iter().any(|unit| {
        text.strip_suffix(unit).is_some_and(|n| {
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && n.parse::<u64>().is_ok()
        })
    });
    if ok {
        Ok(text)
    } else {
        Err(FlagError::invalid(
            flag,
            value,
            "must be a whole number and a unit: bit, kbit, mbit, gbit, tbit (bits per second) or \
             bps, kbps, mbps, gbps, tbps (bytes per second), e.g. 1mbps",
        ))
    }
}

/// Pods by label: `app=client,tier=web` (`==` works too, as in kubectl's selectors).
pub fn labels(flag: &'static str, value: &str) -> Result<BTreeMap<String, String>, FlagError> {
    let bad = || FlagError::invalid(flag, value, "must be labels as key=value[,key=value], e.g. app=client");
    let mut labels = BTreeMap::new();
    for pair in value.split(',') {
        let (key, val) = pair.split_once("==").or_else(|| pair.split_once('=')).ok_or_else(bad)?;
        let (key, val) = (key.trim(), val.trim());
        if !label_key(key) || !label_value(val) {
            return Err(bad());
        }
        labels.insert(key.to_string(), val.to_string());
    }
    Ok(labels)
}

/// A label key: an optional DNS-subdomain prefix and `/`, then a name.
fn label_key(key: &str) -> bool {
    let name = match key.rsplit_once('/') {
        Some((prefix, name)) => {
            let prefix_ok = !prefix.is_empty()
                && prefix.len() <= 253
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
            if !prefix_ok {
                return false;
            }
            name
        }
        None => key,
    };
    !name.is_empty() && label_value(name)
}

/// A label value (also the name part of a key): up to 63 alphanumerics, `-`, `_`, `.`, starting
/// and ending alphanumeric; empty is allowed.
fn label_value(v: &str) -> bool {
    let bytes = v.as_bytes();
    v.len() <= 63
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(b))
        && bytes.first().is_none_or(u8::is_ascii_alphanumeric)
        && bytes.last().is_none_or(u8::is_ascii_alphanumeric)
}

/// An HTTP status RegistryChaos can answer.
pub fn status_code(flag: &'static str, value: &str) -> Result<u16, FlagError> {
    let allowed = netlab_chaos::lab::REGISTRY_STATUS_CODES;
    match value.trim().parse::<u16>() {
        Ok(code) if allowed.contains(&code) => Ok(code),
        _ => Err(FlagError::invalid(
            flag,
            value,
            format!("must be one of {}", allowed.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_take_the_sign_or_not() {
        assert_eq!(percent("--loss", "30%").unwrap(), "30");
        assert_eq!(percent("--loss", "30").unwrap(), "30");
        assert_eq!(percent("--loss", "0.5%").unwrap(), "0.5");
        assert_eq!(percent("--loss", "100").unwrap(), "100");
        assert_eq!(
            percent("--loss", "130%").unwrap_err().to_string(),
            "--loss 130%: must be a percentage between 0 and 100"
        );
        for bad in ["-1", "abc", "", "%", "NaN", "inf", "+5"] {
            assert!(percent("--loss", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_are_go_durations() {
        assert_eq!(duration("--duration", "1m30s").unwrap(), "1m30s");
        assert_eq!(duration("--duration", "60s").unwrap(), "60s");
        let e = duration("--duration", "60").unwrap_err();
        assert!(
            e.to_string().starts_with("--duration 60: must be a duration such as 200ms, 2s or 1m30s ("),
            "{e}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(
            duration("--duration", "-5s").unwrap_err().to_string(),
            "--duration -5s: must not be negative"
        );
    }

    #[test]
    fn latencies_follow_chaos_meshs_pattern() {
        for good in ["200ms", "1.5s", "0ms", "2h"] {
            assert_eq!(latency("--delay", good).unwrap(), good);
        }
        for bad in ["200", "1m30s", ".5s", "1.s", "5sec", "ms", "-1ms", "1.2.3s"] {
            assert!(latency("--delay", bad).is_err(), "{bad}");
        }
        assert_eq!(
            latency("--jitter", "5sec").unwrap_err().to_string(),
            "--jitter 5sec: must be a number and one unit (ns, us, ms, s, m or h), e.g. 200ms"
        );
    }

    #[test]
    fn rates_take_tcs_units() {
        assert_eq!(rate("--rate", "1mbps").unwrap(), "1mbps");
        assert_eq!(rate("--rate", "8MBit").unwrap(), "8mbit");
        assert_eq!(rate("--rate", "100bps").unwrap(), "100bps");
        for bad in ["1", "mbps", "1.5mbps", "1 mbps", "1mb", "-1kbit"] {
            assert!(rate("--rate", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_selectors() {
        assert_eq!(
            labels("--from", "app=client").unwrap(),
            BTreeMap::from([("app".into(), "client".into())])
        );
        assert_eq!(
            labels("--from", "app==client, tier=web").unwrap(),
            BTreeMap::from([("app".into(), "client".into()), ("tier".into(), "web".into())])
        );
        assert_eq!(
            labels("--pods", "app.kubernetes.io/name=orders").unwrap()["app.kubernetes.io/name"],
            "orders"
        );
        for bad in ["client", "=x", "a b=c", "app=-x", "app=client,", "Foo/bar=x"] {
            assert!(labels("--from", bad).is_err(), "{bad}");
        }
        assert_eq!(
            labels("--from", "client").unwrap_err().to_string(),
            "--from client: must be labels as key=value[,key=value], e.g. app=client"
        );
    }

    #[test]
    fn registry_statuses() {
        assert_eq!(status_code("--status", "429").unwrap(), 429);
        assert_eq!(
            status_code("--status", "418").unwrap_err().to_string(),
            "--status 418: must be one of 401, 403, 404, 429, 500, 502, 503"
        );
    }
}
