//! YAML exactly as kubectl writes it: sigs.k8s.io/yaml, i.e. the go-yaml v2 encoder.
//!
//! `netlab get -o yaml` output gets diffed against kubectl's and pasted back into manifests, so
//! the details matter: keys in go-yaml's "natural" order, sequences not indented under their key,
//! `"80"` and `"2024-01-01T00:00:00Z"` double-quoted because they would otherwise read back as a
//! number or a timestamp, `'*'` single-quoted, multi-line strings as `|` blocks, and long strings
//! folded at column 80. This is a port of the parts of go-yaml's emitter that JSON values reach.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// go-yaml's preferred line width; longer scalars fold at spaces.
const BEST_WIDTH: usize = 80;

/// go-yaml's indentation step.
const INDENT: usize = 2;

/// Encodes a JSON value as kubectl's YAML (a document without `---`).
pub fn to_string(v: &Value) -> String {
    let mut e = Emitter::default();
    match v {
        Value::Object(m) if !m.is_empty() => e.mapping(m, 0, false),
        Value::Array(a) if !a.is_empty() => e.sequence(a, 0, false),
        other => {
            e.value_scalar(other, 0);
            e.end_line();
        }
    }
    e.out
}

#[derive(Default)]
struct Emitter {
    out: String,
    /// Characters since the last line break.
    column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

// === impl Emitter ===

impl Emitter {
    fn put(&mut self, c: char) {
        self.out.push(c);
        if c == '\n' {
            self.column = 0;
        } else {
            self.column += 1;
        }
    }

    fn put_str(&mut self, s: &str) {
        for c in s.chars() {
            self.put(c);
        }
    }

    /// Starts a line at `indent` unless the cursor is already at a fresh line start.
    fn line_at(&mut self, indent: usize) {
        if self.column != 0 {
            self.put('\n');
        }
        for _ in 0..indent {
            self.put(' ');
        }
    }

    /// Breaks a folded scalar onto a continuation line.
    fn indent_break(&mut self, indent: usize) {
        self.put('\n');
        for _ in 0..indent {
            self.put(' ');
        }
    }

    fn end_line(&mut self) {
        if self.column != 0 {
            self.put('\n');
        }
    }

    /// A block mapping whose keys start at `indent`; with `inline_first` the first key continues
    /// the current line (after a sequence's `- `).
    fn mapping(&mut self, m: &Map<String, Value>, indent: usize, inline_first: bool) {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort_by(|a, b| natural_cmp(a, b));
        for (i, key) in keys.into_iter().enumerate() {
            if i > 0 || !inline_first {
                self.line_at(indent);
            }
            self.key(key);
            self.put(':');
            match &m[key] {
                Value::Object(child) if !child.is_empty() => {
                    self.put('\n');
                    self.mapping(child, indent + INDENT, false);
                }
                // go-yaml does not indent a sequence under its mapping key.
                Value::Array(items) if !items.is_empty() => {
                    self.put('\n');
                    self.sequence(items, indent, false);
                }
                other => self.value_scalar(other, indent + INDENT),
            }
            self.end_line();
        }
    }

    /// A block sequence whose `- ` starts at `indent`.
    fn sequence(&mut self, items: &[Value], indent: usize, inline_first: bool) {
        for (i, item) in items.iter().enumerate() {
            if i > 0 || !inline_first {
                self.line_at(indent);
            }
            self.put('-');
            match item {
                Value::Object(m) if !m.is_empty() => {
                    self.put(' ');
                    self.mapping(m, indent + INDENT, true);
                }
                Value::Array(a) if !a.is_empty() => {
                    self.put(' ');
                    self.sequence(a, indent + INDENT, true);
                }
                other => self.value_scalar(other, indent + INDENT),
            }
            self.end_line();
        }
    }

    fn key(&mut self, key: &str) {
        let style = select_style(key, true);
        self.string(key, style, 0, false);
    }

    /// A scalar after `key:` or `-`; continuation lines go to `indent`.
    fn value_scalar(&mut self, v: &Value, indent: usize) {
        match v {
            Value::Null => self.put_str(" null"),
            Value::Bool(b) => self.put_str(if *b { " true" } else { " false" }),
            Value::Number(n) => {
                self.put(' ');
                self.put_str(&n.to_string());
            }
            Value::String(s) => {
                let style = select_style(s, false);
                if style != Style::Literal {
                    self.put(' ');
                }
                self.string(s, style, indent, true);
            }
            Value::Object(_) => self.put_str(" {}"),
            Value::Array(_) => self.put_str(" []"),
        }
    }

    fn string(&mut self, s: &str, style: Style, indent: usize, allow_breaks: bool) {
        match style {
            Style::Plain => self.plain(s, indent, allow_breaks),
            Style::Single => self.single(s, indent, allow_breaks),
            Style::Double => self.double(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    fn plain(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks && !spaces && self.column > BEST_WIDTH && !next_is_space {
                    self.indent_break(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
    }

    fn single(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.put('\'');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                let next_is_space = chars.get(i + 1) == Some(&' ');
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i + 1 < chars.len()
                    && !next_is_space
                {
                    self.indent_break(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                spaces = false;
            }
        }
        self.put('\'');
    }

    fn double(&mut self, s: &str, indent: usize, allow_breaks: bool) {
        let chars: Vec<char> = s.chars().collect();
        self.put('"');
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                let esc = match c {
                    '\0' => Some('0'),
                    '\u{7}' => Some('a'),
                    '\u{8}' => Some('b'),
                    '\t' => Some('t'),
                    '\n' => Some('n'),
                    '\u{b}' => Some('v'),
                    '\u{c}' => Some('f'),
                    '\r' => Some('r'),
                    '\u{1b}' => Some('e'),
                    '"' => Some('"'),
                    '\\' => Some('\\'),
                    '\u{85}' => Some('N'),
                    '\u{a0}' => Some('_'),
                    '\u{2028}' => Some('L'),
                    '\u{2029}' => Some('P'),
                    _ => None,
                };
                match esc {
                    Some(e) => self.put(e),
                    None => {
                        let v = c as u32;
                        let hex = if v <= 0xFF {
                            format!("x{v:02X}")
                        } else if v <= 0xFFFF {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        self.put_str(&hex);
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks && !spaces && self.column > BEST_WIDTH && i > 0 && i + 1 < chars.len() {
                    self.indent_break(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.put('"');
    }

    fn literal(&mut self, s: &str, indent: usize) {
        self.put_str(" |");
        let chars: Vec<char> = s.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.put_str(&INDENT.to_string());
        }
        // Chomping: `-` strips a missing final newline, `+` keeps extra ones.
        match chars.as_slice() {
            [] => self.put('-'),
            [.., last] if !is_break(*last) => self.put('-'),
            [_] => self.put('+'),
            [.., before, _] if is_break(*before) => self.put('+'),
            _ => {}
        }
        self.put('\n');
        let mut at_line_start = true;
        for &c in &chars {
            if is_break(c) {
                self.put('\n');
                at_line_start = true;
            } else {
                if at_line_start {
                    for _ in 0..indent {
                        self.put(' ');
                    }
                    at_line_start = false;
                }
                self.put(c);
            }
        }
    }
}

/// The analysis go-yaml's emitter makes of a scalar before choosing its style.
#[derive(Debug)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// libyaml's `is_printable`: note that tabs and characters outside the BMP are not.
fn is_printable(c: char) -> bool {
    let v = c as u32;
    v == 0x0A
        || (0x20..=0x7E).contains(&v)
        || (0xA0..=0xD7FF).contains(&v)
        || ((0xE000..=0xFFFD).contains(&v) && v != 0xFEFF)
}

fn analyze(s: &str) -> Analysis {
    let chars: Vec<char> = s.chars().collect();
    if chars.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let mut line_breaks = false;
    let mut special = false;
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = i == last || is_blank(chars[i + 1]);
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@'
                | '`' => block_indicators = true,
                '?' | ':' if followed_by_whitespace => block_indicators = true,
                '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special = true;
        }
        if c == ' ' {
            if i == 0 {
                leading_space = true;
            }
            if i == last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            if i == 0 {
                leading_break = true;
            }
            if i == last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c) || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml's `stringv` plus the emitter's `select_scalar_style`.
fn select_style(s: &str, simple_key: bool) -> Style {
    let can_use_plain = !resolves_to_non_string(s) && !is_base60_float(s);
    let mut style = if s.contains('\n') {
        Style::Literal
    } else if can_use_plain {
        Style::Plain
    } else {
        Style::Double
    };
    let a = analyze(s);
    if simple_key && a.multiline {
        style = Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (s.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

/// Whether go-yaml would read the plain scalar back as something other than a string (null,
/// bool, int, float, timestamp), in which case it must be quoted.
fn resolves_to_non_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "on", "On", "ON", "true", "True",
        "TRUE", "n", "N", "no", "No", "NO", "off", "Off", "OFF", "false", "False", "FALSE", ".nan", ".NaN",
        ".NAN", ".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", "<<",
    ];
    if SPECIAL.contains(&s) {
        return true;
    }
    let first = s.as_bytes()[0];
    match first {
        b'.' => s.parse::<f64>().is_ok(),
        b'+' | b'-' | b'0'..=b'9' => {
            if first.is_ascii_digit() && is_timestamp(s) {
                return true;
            }
            let plain = s.replace('_', "");
            go_parses_as_int(&plain) || is_yaml_float(&plain) || is_binary(&plain)
        }
        _ => false,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)` / `ParseUint` acceptance.
fn go_parses_as_int(s: &str) -> bool {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'+') => (false, &s[1..]),
        Some(b'-') => (true, &s[1..]),
        _ => (false, s),
    };
    let (radix, digits) = if let Some(d) = body.strip_prefix("0x").or(body.strip_prefix("0X")) {
        (16, d)
    } else if let Some(d) = body.strip_prefix("0o").or(body.strip_prefix("0O")) {
        (8, d)
    } else if let Some(d) = body.strip_prefix("0b").or(body.strip_prefix("0B")) {
        (2, d)
    } else if body.len() > 1 && body.starts_with('0') {
        (8, &body[1..])
    } else {
        (10, body)
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return false;
    }
    match u64::from_str_radix(digits, radix) {
        Ok(v) if negative => v <= 1 << 63,
        Ok(_) => true,
        Err(_) => false,
    }
}

fn is_binary(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    body.strip_prefix("0b").is_some_and(|d| !d.is_empty() && d.chars().all(|c| c == '0' || c == '1'))
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`: sexagesimal floats, which go-yaml
/// quotes for older parsers' sake.
fn is_base60_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    if i >= b.len() || !b[i].is_ascii_digit() {
        return false;
    }
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
        i += 1;
    }
    let mut groups = 0;
    while i < b.len() && b[i] == b':' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() && i - start < 2 {
            i += 1;
        }
        let group = &s[start..i];
        let ok = match group.len() {
            1 => true,
            2 => group.as_bytes()[0] <= b'5',
            _ => false,
        };
        if !ok {
            return false;
        }
        groups += 1;
    }
    if groups == 0 {
        return false;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
            i += 1;
        }
    }
    i == b.len()
}

/// go-yaml's timestamp formats: `2006-1-2`, `2006-1-2T15:4:5.999999999Z07:00` (also with `t`),
/// and `2006-1-2 15:4:5.999999999`.
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    let num = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() && *i - start < max {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        s[start..*i].parse().ok()
    };
    let expect = |i: &mut usize, c: u8| -> bool {
        if *i < b.len() && b[*i] == c {
            *i += 1;
            true
        } else {
            false
        }
    };
    let mut i = 0;
    if num(&mut i, 4, 4).is_none() || !expect(&mut i, b'-') {
        return false;
    }
    let Some(month) = num(&mut i, 1, 2) else {
        return false;
    };
    if !expect(&mut i, b'-') {
        return false;
    }
    let Some(day) = num(&mut i, 1, 2) else {
        return false;
    };
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return false;
    }
    if i == b.len() {
        return true;
    }
    let zoned = match b[i] {
        b'T' | b't' => true,
        b' ' => false,
        _ => return false,
    };
    i += 1;
    let (Some(h), true, Some(m), true, Some(sec)) =
        (num(&mut i, 1, 2), expect(&mut i, b':'), num(&mut i, 1, 2), expect(&mut i, b':'), num(&mut i, 1, 2))
    else {
        return false;
    };
    if h > 23 || m > 59 || sec > 59 {
        return false;
    }
    if expect(&mut i, b'.') && num(&mut i, 1, 9).is_none() {
        return false;
    }
    if !zoned {
        return i == b.len();
    }
    if expect(&mut i, b'Z') {
        return i == b.len();
    }
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
        let ok = num(&mut i, 2, 2).is_some() && expect(&mut i, b':') && num(&mut i, 2, 2).is_some();
        return ok && i == b.len();
    }
    false
}

/// go-yaml v2's `keyList.Less`: letters sort after other characters, and runs of digits compare
/// as numbers (`a2` < `a10`).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    if natural_less(a, b) {
        Ordering::Less
    } else if natural_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn natural_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_service_looks_like_kubectl_get_o_yaml() {
        let v = json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": "{\"apiVersion\":\"v1\",\"kind\":\"Service\"}\n"
                },
                "creationTimestamp": "2024-05-01T10:00:00Z",
                "labels": {"app": "orders"},
                "name": "orders",
                "namespace": "default",
                "resourceVersion": "42",
                "uid": "3f1c2d9e-0000-4000-8000-000000000001"
            },
            "spec": {
                "clusterIP": "10.96.0.10",
                "clusterIPs": ["10.96.0.10"],
                "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}],
                "selector": {"app": "orders"},
                "sessionAffinity": "None",
                "type": "ClusterIP"
            },
            "status": {"loadBalancer": {}}
        });
        let want = r#"apiVersion: v1
kind: Service
metadata:
  annotations:
    kubectl.kubernetes.io/last-applied-configuration: |
      {"apiVersion":"v1","kind":"Service"}
  creationTimestamp: "2024-05-01T10:00:00Z"
  labels:
    app: orders
  name: orders
  namespace: default
  resourceVersion: "42"
  uid: 3f1c2d9e-0000-4000-8000-000000000001
spec:
  clusterIP: 10.96.0.10
  clusterIPs:
  - 10.96.0.10
  ports:
  - name: http
    port: 80
    protocol: TCP
    targetPort: 8080
  selector:
    app: orders
  sessionAffinity: None
  type: ClusterIP
status:
  loadBalancer: {}
"#;
        assert_eq!(to_string(&v), want);
    }

    #[test]
    fn quoting_follows_go_yaml() {
        let v = json!({
            "a": "", "b": "80", "c": "true", "d": "yes", "e": "*", "f": "a: b", "g": " lead",
            "h": "1.5", "i": "0x1F", "j": "2024-01-01", "k": "it's", "l": "tab\there", "m": "1:20",
            "n": "-", "o": "- x", "p": "hello world", "q": "null", "r": "~", "s": "1e3", "t": "08",
            "u": "a#b", "v": "a #b", "w": "@x", "x": "multi\nline\n", "y": "no newline\nend",
            "z": "keep\n\n"
        });
        let want = r#"a: ""
b: "80"
c: "true"
d: "yes"
e: '*'
f: 'a: b'
g: ' lead'
h: "1.5"
i: "0x1F"
j: "2024-01-01"
k: it's
l: "tab\there"
m: "1:20"
"n": '-'
o: '- x'
p: hello world
q: "null"
r: "~"
s: "1e3"
t: "08"
u: a#b
v: 'a #b'
w: '@x'
x: |
  multi
  line
"y": |-
  no newline
  end
z: |+
  keep

"#;
        assert_eq!(to_string(&v), want);
    }

    #[test]
    fn nesting_and_empty_collections() {
        let v = json!({
            "list": [{"a": 1, "b": [1, 2]}, [3, 4], {}, [], null, true],
            "empty": {}, "none": []
        });
        let want = "empty: {}\nlist:\n- a: 1\n  b:\n  - 1\n  - 2\n- - 3\n  - 4\n- {}\n- []\n- null\n- true\nnone: []\n";
        assert_eq!(to_string(&v), want);
    }

    #[test]
    fn key_order_is_go_yaml_natural_order() {
        let v = json!({"a10": 1, "a2": 2, "a-b": 3, "ab": 4, "B": 5, "a": 6});
        assert_eq!(to_string(&v), "B: 5\na: 6\na-b: 3\na2: 2\na10: 1\nab: 4\n");
    }

    #[test]
    fn long_strings_fold_at_column_80() {
        let msg = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.";
        let v = json!({"status": {"conditions": [{"message": msg, "type": "PodScheduled"}]}});
        let got = to_string(&v);
        let want = "status:\n  conditions:\n  - message: '0/3 nodes are available: 3 node(s) didn''t match Pod''s node affinity/selector.\n      preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.'\n    type: PodScheduled\n";
        assert_eq!(got, want);
        let plain = "word ".repeat(30).trim_end().to_string();
        let got = to_string(&json!({"m": plain}));
        assert!(got.lines().count() > 1, "{got}");
        assert!(got.lines().nth(1).unwrap().starts_with("  word"), "{got}");
    }

    #[test]
    fn scalar_helpers() {
        assert!(is_timestamp("2024-01-01T00:00:00Z"));
        assert!(is_timestamp("2024-1-2 3:04:05.5"));
        assert!(is_timestamp("2024-05-01T10:00:00+02:00"));
        assert!(!is_timestamp("2024-13-01"));
        assert!(!is_timestamp("20240101"));
        assert!(go_parses_as_int("0755") && go_parses_as_int("-12") && go_parses_as_int("0b101"));
        assert!(!go_parses_as_int("089") && !go_parses_as_int("12a"));
        assert!(is_yaml_float(".5") && is_yaml_float("1.") && is_yaml_float("-1e-3"));
        assert!(!is_yaml_float("e3") && !is_yaml_float("1.2.3"));
        assert!(is_base60_float("1:20") && is_base60_float("190:20:30.15"));
        assert!(!is_base60_float("1:60") && !is_base60_float("10.0.0.1"));
        assert!(!resolves_to_non_string("10.96.0.10"));
        assert!(!resolves_to_non_string("-x"));
    }
}
