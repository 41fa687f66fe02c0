//! klog's text header, which the upstream plugin's stderr lines carry and which the kubelet
//! copies into its own log when the plugin fails: `E1207 20:10:15.123456   12345 main.go:361] ...`.

use jiff::Timestamp;

/// A klog severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// `I`.
    Info,
    /// `W`.
    Warning,
    /// `E`.
    Error,
}

/// One klog line (with its newline) at `at`, from process `pid`, for `file:line`.
pub fn line(severity: Severity, at: Timestamp, pid: u32, location: &str, message: &str) -> String {
    let letter = match severity {
        Severity::Info => 'I',
        Severity::Warning => 'W',
        Severity::Error => 'E',
    };
    let t = at.to_zoned(jiff::tz::TimeZone::UTC);
    format!(
        "{letter}{:02}{:02} {:02}:{:02}:{:02}.{:06} {pid:>7} {location}] {message}\n",
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.subsec_nanosecond() / 1000,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_is_klogs() {
        let at: Timestamp = "2026-12-07T20:10:15.123456789Z".parse().unwrap();
        assert_eq!(
            line(Severity::Error, at, 4242, "main.go:361", "Error running credential provider plugin: x"),
            "E1207 20:10:15.123456    4242 main.go:361] Error running credential provider plugin: x\n"
        );
    }
}
