//! Go's `strconv.Atoi`, `strconv.ParseFloat(s, 32)` and `strconv.ParseUint(s, 10, 64)` with
//! their error texts: Chaos Mesh's webhook parses `value`, the netem percentages and the
//! bandwidth rate with them and quotes their errors verbatim (`parse value field
//! error:strconv.Atoi: parsing "abc": invalid syntax`).

use std::fmt;

use super::super::field::go_quote;

/// Go's `*strconv.NumError`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NumError {
    /// The function: `Atoi`, `ParseFloat`, `ParseUint`.
    func: &'static str,
    /// The text that did not parse.
    num: String,
    /// Syntax or range.
    range: bool,
}

impl fmt::Display for NumError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = if self.range { "value out of range" } else { "invalid syntax" };
        write!(f, "strconv.{}: parsing {}: {why}", self.func, go_quote(&self.num))
    }
}

impl std::error::Error for NumError {}

fn err(func: &'static str, num: &str, range: bool) -> NumError {
    NumError { func, num: num.to_string(), range }
}

/// `strconv.Atoi`: an optional sign, then decimal digits; 64-bit.
pub(crate) fn atoi(s: &str) -> Result<i64, NumError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("Atoi", s, false));
    }
    // Only digits and a sign are left, so the only failure is overflow.
    s.parse::<i64>().map_err(|_| err("Atoi", s, true))
}

/// `strconv.ParseUint(s, 10, 64)`: decimal digits only, no sign.
pub(crate) fn parse_uint(s: &str) -> Result<u64, NumError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err("ParseUint", s, false));
    }
    s.parse::<u64>().map_err(|_| err("ParseUint", s, true))
}

/// `strconv.ParseFloat(s, 32)`: decimal (with exponent), `inf`, `infinity` and `nan`, any case,
/// with an optional sign; beyond float32's range is a range error. (Go also takes hexadecimal
/// mantissas, `0x1p-2`; nobody writes a percentage so, and they are refused here as bad syntax.)
pub(crate) fn parse_float32(s: &str) -> Result<f64, NumError> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s).to_ascii_lowercase();
    let special = matches!(unsigned.as_str(), "inf" | "infinity" | "nan");
    let decimal = {
        let (mantissa, exponent) = match unsigned.split_once('e') {
            Some((m, e)) => (m, Some(e)),
            None => (unsigned.as_str(), None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
        let exponent_ok = exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        });
        !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction) && exponent_ok
    };
    if !special && !decimal {
        return Err(err("ParseFloat", s, false));
    }
    let v: f64 = s.parse().map_err(|_| err("ParseFloat", s, false))?;
    if !special && (v.is_infinite() || v.abs() > f64::from(f32::MAX)) {
        return Err(err("ParseFloat", s, true));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_texts() {
        assert_eq!(atoi("12"), Ok(12));
        assert_eq!(atoi("+3"), Ok(3));
        assert_eq!(atoi("-3"), Ok(-3));
        assert_eq!(atoi("abc").unwrap_err().to_string(), "strconv.Atoi: parsing \"abc\": invalid syntax");
        assert_eq!(atoi("").unwrap_err().to_string(), "strconv.Atoi: parsing \"\": invalid syntax");
        assert_eq!(atoi("1.5").unwrap_err().to_string(), "strconv.Atoi: parsing \"1.5\": invalid syntax");
        assert_eq!(
            atoi("99999999999999999999").unwrap_err().to_string(),
            "strconv.Atoi: parsing \"99999999999999999999\": value out of range"
        );
        assert_eq!(parse_uint("100"), Ok(100));
        assert_eq!(
            parse_uint("+1").unwrap_err().to_string(),
            "strconv.ParseUint: parsing \"+1\": invalid syntax"
        );
        assert_eq!(parse_float32("25"), Ok(25.0));
        assert_eq!(parse_float32(".5"), Ok(0.5));
        assert_eq!(parse_float32("1e1"), Ok(10.0));
        assert!(parse_float32("NaN").unwrap().is_nan());
        assert_eq!(
            parse_float32("25%").unwrap_err().to_string(),
            "strconv.ParseFloat: parsing \"25%\": invalid syntax"
        );
        assert_eq!(
            parse_float32("1e39").unwrap_err().to_string(),
            "strconv.ParseFloat: parsing \"1e39\": value out of range"
        );
        assert!(parse_float32(".").is_err() && parse_float32("e5").is_err() && parse_float32("1e").is_err());
    }
}
