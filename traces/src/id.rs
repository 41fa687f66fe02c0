//! Trace and span ids as Jaeger reads and writes them. OTLP carries ids as bytes; Jaeger's query
//! API takes a trace id as 1 to 32 hex digits (shorter ones stand for leading zeros, any case) and
//! prints it as 32 lowercase digits, or 16 when the high half is zero, as its model's
//! `TraceID.String` does. Span ids are always 16 digits.

/// A trace id: OTLP's 16 bytes, big-endian (the high half first).
pub type TraceId = [u8; 16];

/// Why a trace id given as text is not one; the texts are Jaeger's (`model.TraceIDFromString`, Go's
/// `strconv.ParseUint`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// More than 32 digits.
    #[error("TraceID cannot be longer than 32 hex characters: {0}")]
    TooLong(String),
    /// A part that is not hexadecimal (or is empty).
    #[error("strconv.ParseUint: parsing \"{0}\": invalid syntax")]
    Syntax(String),
}

/// Parses a trace id as Jaeger's query API does: up to 32 hex digits, the last 16 the low half
/// and the rest the high half, each parsed on its own (so the error names the part that failed).
pub fn parse_trace_id(text: &str) -> Result<TraceId, IdError> {
    if text.len() > 32 {
        return Err(IdError::TooLong(text.to_string()));
    }
    // Not ASCII: the split would fall inside a character, and no part could parse anyway.
    let Some((high, low)) = text.split_at_checked(text.len().saturating_sub(16)) else {
        return Err(IdError::Syntax(text.to_string()));
    };
    let half = |part: &str| -> Result<u64, IdError> {
        // ParseUint wants at least one digit and takes no sign or prefix with an explicit base.
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(IdError::Syntax(part.to_string()));
        }
        u64::from_str_radix(part, 16).map_err(|_| IdError::Syntax(part.to_string()))
    };
    let high = if high.is_empty() { 0 } else { half(high)? };
    let low = half(low)?;
    let mut id = [0; 16];
    id[..8].copy_from_slice(&high.to_be_bytes());
    id[8..].copy_from_slice(&low.to_be_bytes());
    Ok(id)
}

/// A trace id as Jaeger prints it: 32 lowercase hex digits, or 16 when the high half is zero.
pub fn jaeger_trace_id(id: &TraceId) -> String {
    if id[..8].iter().all(|b| *b == 0) { hex(&id[8..]) } else { hex(id) }
}

/// Bytes as lowercase hex, as W3C and Jaeger print ids: a span id becomes 16 digits, a full
/// trace id 32.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// A trace id from OTLP's bytes, if it has the 16 that OTLP requires.
pub fn from_otlp(bytes: &[u8]) -> Option<TraceId> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_padded_and_any_case_is_taken() {
        let full = parse_trace_id("4BF92F3577B34DA6a3ce929d0e0e4736").unwrap();
        assert_eq!(hex(&full), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(jaeger_trace_id(&full), "4bf92f3577b34da6a3ce929d0e0e4736");
        let short = parse_trace_id("ABCD").unwrap();
        assert_eq!(hex(&short), "0000000000000000000000000000abcd");
        assert_eq!(jaeger_trace_id(&short), "000000000000abcd", "Jaeger prints 16 digits when high is 0");
        // 17 digits: one for the high half.
        assert_eq!(hex(&parse_trace_id("10000000000000002").unwrap()), "00000000000000010000000000000002");
    }

    #[test]
    fn bad_ids_get_jaegers_messages() {
        assert_eq!(
            parse_trace_id("xyz").unwrap_err().to_string(),
            "strconv.ParseUint: parsing \"xyz\": invalid syntax"
        );
        assert_eq!(parse_trace_id("").unwrap_err(), IdError::Syntax(String::new()));
        // The failing part is named, as Jaeger parses the halves apart.
        assert_eq!(parse_trace_id("zz0000000000000001").unwrap_err(), IdError::Syntax("zz".into()));
        assert_eq!(parse_trace_id("+1").unwrap_err(), IdError::Syntax("+1".into()));
        assert!(parse_trace_id("ééééééééé0").is_err(), "no panic inside a character");
        let long = "0".repeat(33);
        assert_eq!(
            parse_trace_id(&long).unwrap_err().to_string(),
            format!("TraceID cannot be longer than 32 hex characters: {long}")
        );
        assert_eq!(from_otlp(&[1; 8]), None);
        assert_eq!(from_otlp(&[1; 16]), Some([1; 16]));
    }
}
