//! Go's `time.ParseDuration`, because a Kubernetes user writes durations in Go's syntax
//! everywhere (pflag's duration flags, Corefile options) and expects Go's error when one is wrong:
//! a sequence of decimal numbers each with a unit (`300ms`, `1.5h`, `2h45m`), units `ns`, `us`
//! (`µs`, `μs`), `ms`, `s`, `m`, `h`; `0` needs no unit. A negative duration is refused, since
//! nothing here can wait a negative time.

use std::time::Duration;

/// Why a duration did not parse; the texts are Go's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a duration at all.
    #[error("time: invalid duration \"{0}\"")]
    Invalid(String),
    /// A number without a unit (other than `0`).
    #[error("time: missing unit in duration \"{0}\"")]
    MissingUnit(String),
    /// A unit Go does not know.
    #[error("time: unknown unit \"{unit}\" in duration \"{text}\"")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        text: String,
    },
    /// A negative duration, which Go parses but nothing here can use.
    #[error("time: negative duration \"{0}\" is not allowed here")]
    Negative(String),
    /// Longer than Go's int64 nanoseconds hold.
    #[error("time: invalid duration \"{0}\"")]
    Overflow(String),
}

/// Parses `text` as Go's `time.ParseDuration` does.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let invalid = || DurationError::Invalid(text.to_string());
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        // A number: digits, then optionally `.` and more digits (at least one digit in all).
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (whole, after) = rest.split_at(int_len);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(f) => f.split_at(f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())),
            None => ("", after),
        };
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        // The unit: everything up to the next number.
        let unit_len = after.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        rest = next;
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(text.to_string()));
        }
        let nanos_per_unit: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(DurationError::UnknownUnit { unit: unit.to_string(), text: text.to_string() }),
        };
        let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| invalid())? };
        let mut nanos =
            whole.checked_mul(nanos_per_unit).ok_or_else(|| DurationError::Overflow(text.into()))?;
        // The fraction's digits, scaled to the unit; digits past nanosecond precision are dropped
        // as Go drops them.
        let mut scale = nanos_per_unit;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * scale;
        }
        total = total.checked_add(nanos).ok_or_else(|| DurationError::Overflow(text.into()))?;
        if total > i64::MAX as u128 {
            return Err(DurationError::Overflow(text.to_string()));
        }
    }
    if negative && total > 0 {
        return Err(DurationError::Negative(text.to_string()));
    }
    // At most i64::MAX nanoseconds: fits in a u64.
    Ok(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_syntax() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("5s"), Duration::from_secs(5));
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1m"), Duration::from_secs(60));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("2h45m30.5s"), Duration::from_millis((2 * 3600 + 45 * 60 + 30) * 1000 + 500));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        assert_eq!(ok("1µs"), Duration::from_micros(1));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("3ns"), Duration::from_nanos(3));
        assert_eq!(ok("+1s"), Duration::from_secs(1));
        assert_eq!(ok("-0s"), Duration::ZERO);
        assert_eq!(ok("5.s"), Duration::from_secs(5));
    }

    #[test]
    fn go_errors() {
        let err = |s: &str| parse_duration(s).unwrap_err().to_string();
        assert_eq!(err("fifty"), "time: invalid duration \"fifty\"");
        assert_eq!(err(""), "time: invalid duration \"\"");
        assert_eq!(err("5"), "time: missing unit in duration \"5\"");
        assert_eq!(err("1d"), "time: unknown unit \"d\" in duration \"1d\"");
        assert_eq!(err("1.2.3s"), "time: missing unit in duration \"1.2.3s\"");
        assert_eq!(err(".s"), "time: invalid duration \".s\"");
        assert_eq!(err("s"), "time: invalid duration \"s\"");
        assert_eq!(err("-5s"), "time: negative duration \"-5s\" is not allowed here");
        assert_eq!(err("9999999999h"), "time: invalid duration \"9999999999h\"");
    }
}
