//! The nesting limit go-yaml puts on flow collections (`[`/`{`), checked before the YAML parser
//! sees the text.
//!
//! libyaml-derived scanners (ours included) keep one possible simple key per open flow level
//! and revisit all of them for every token, so a document of N nested `[` costs N² steps:
//! 100,000 brackets (200 KB) kept `netlab apply` busy for minutes before its recursion limit
//! could answer. go-yaml, behind kubectl, refuses a flow level above 10,000 in its scanner
//! (`exceeded max depth of 10000`, the fix for CVE-2022-28948's family); this module finds the
//! same in one pass over the text, with just enough of YAML's lexical rules (quoted scalars,
//! comments, block scalars, plain scalars in block context) that a bracket inside a string is not
//! counted.

/// go-yaml's `max_flow_level`.
pub const MAX_FLOW_LEVEL: usize = 10_000;

/// The 1-based line where the flow nesting first goes past `max`, if it does.
pub fn exceeds(text: &str, max: usize) -> Option<usize> {
    let mut depth = 0usize;
    // While skipping a block scalar: the indentation its lines must be deeper than.
    let mut block: Option<usize> = None;
    // An open quoted scalar (they may span lines).
    let mut quote: Option<u8> = None;
    for (n, line) in text.lines().enumerate() {
        let indent = line.len() - line.trim_start_matches(' ').len();
        if let Some(parent) = block {
            if quote.is_none() && (line.trim().is_empty() || indent > parent) {
                continue;
            }
            block = None;
        }
        let bytes = line.as_bytes();
        // The last byte outside quotes that was not a space, on this line.
        let mut last: Option<u8> = None;
        let mut i = 0;
        while i < bytes.len() {
            let c = bytes[i];
            if let Some(q) = quote {
                match (q, c) {
                    (b'\'', b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 1,
                    (b'"', b'\\') => i += 1,
                    (b'\'', b'\'') | (b'"', b'"') => quote = None,
                    _ => {}
                }
                i += 1;
                continue;
            }
            let after_space = i == 0 || matches!(bytes[i - 1], b' ' | b'\t');
            // A token may start here: inside a flow collection after a space or an indicator;
            // in block context only where a value or key begins (`key: [`, `- [`, `? [`).
            let token_start = if depth > 0 {
                after_space || matches!(bytes[i - 1], b'[' | b'{' | b',' | b':')
            } else {
                after_space && matches!(last, None | Some(b':' | b'-' | b'?'))
            };
            match c {
                b'#' if after_space => break,
                b'\'' | b'"' if token_start => quote = Some(c),
                b'[' | b'{' if token_start => {
                    depth += 1;
                    if depth > max {
                        return Some(n + 1);
                    }
                }
                b']' | b'}' if depth > 0 => depth -= 1,
                b'|' | b'>' if depth == 0 && token_start => {
                    block = Some(indent);
                    break;
                }
                _ => {}
            }
            if c != b' ' && c != b'\t' {
                last = Some(c);
            }
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        format!("apiVersion: v1\nkind: ConfigMap\ndata:\n  x: {}{}\n", "[".repeat(n), "]".repeat(n))
    }

    #[test]
    fn counts_flow_levels_and_names_the_line() {
        assert_eq!(exceeds(&nested(10), 10), None);
        assert_eq!(exceeds(&nested(11), 10), Some(4));
        assert_eq!(exceeds("a: {b: [c, {d: [[e]]}]}\n", 5), None);
        assert_eq!(exceeds("a: {b: [c, {d: [[[e]]]}]}\n", 5), Some(1));
        // Levels carry across lines, and closing brackets count down.
        assert_eq!(exceeds("a: [\n  [\n   [x]],\n  [[y]]]\n", 3), None);
        assert_eq!(exceeds("a: [\n  [\n   [[x]]]]\n", 3), Some(3));
        assert_eq!(exceeds("- [[[x]]]\n- ? [[[y]]]\n", 3), None);
        assert_eq!(exceeds("- [[[[x]]]]\n", 3), Some(1));
    }

    #[test]
    fn brackets_in_strings_comments_and_block_scalars_do_not_count() {
        let deep = "[".repeat(50);
        for doc in [
            format!("a: '{deep}'\n"),
            format!("a: \"{deep}\"\n"),
            format!("a: \"x\\\"{deep}\"\n"),
            format!("a: 'it''s {deep}'\n"),
            format!("a: b # {deep}\n"),
            format!("# {deep}\n"),
            format!("a: plain{deep}\n"),
            format!("a: x {deep}\n"),
            format!("a: |\n  {deep}\n  {deep}\n\n  {deep}\nb: c\n"),
            format!("a: >-\n    {deep}\nb: [x]\n"),
            format!("a: \"multi\n  line {deep}\"\n"),
            format!("a: [\"{deep}\", '{deep}']\n"),
        ] {
            assert_eq!(exceeds(&doc, 10), None, "{doc}");
        }
        // After a block scalar ends, counting resumes.
        assert_eq!(exceeds(&format!("a: |\n  {deep}\nb: {}\n", "[".repeat(11)), 10), Some(3));
    }

    #[test]
    fn go_yamls_limit() {
        // 400,000 levels (800 KB), which the parser would take hours over: refused at the limit.
        assert_eq!(exceeds(&nested(MAX_FLOW_LEVEL), MAX_FLOW_LEVEL), None);
        assert_eq!(exceeds(&nested(400_000), MAX_FLOW_LEVEL), Some(4));
        assert!(exceeds(&"a: [b, c]\n".repeat(100_000), MAX_FLOW_LEVEL).is_none());
    }
}
