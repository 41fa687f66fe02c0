//! JSON exactly as kubectl writes it: Go's `encoding/json`, which sorts map keys, escapes `<`, `>`
//! and `&`, and (for `-o json`) indents by four spaces.
//!
//! The compact form is also what `kubectl apply` stores in the last-applied-configuration
//! annotation, so netlab and kubectl see each other's annotations as unchanged.

use serde_json::Value;

/// `json.MarshalIndent(obj, "", "    ")`, plus the newline kubectl's printer adds.
pub fn pretty(v: &Value) -> String {
    let mut out = String::new();
    write(v, Some(0), &mut out);
    out.push('\n');
    out
}

/// `json.Marshal(obj)`.
pub fn compact(v: &Value) -> String {
    let mut out = String::new();
    write(v, None, &mut out);
    out
}

fn newline(indent: Option<usize>, out: &mut String) {
    if let Some(level) = indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str("    ");
        }
    }
}

fn write(v: &Value, indent: Option<usize>, out: &mut String) {
    let deeper = indent.map(|l| l + 1);
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(deeper, out);
                write(item, deeper, out);
            }
            newline(indent, out);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(deeper, out);
                string(key, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write(&map[key], deeper, out);
            }
            newline(indent, out);
            out.push('}');
        }
    }
}

/// Go's string encoding with HTML escaping.
fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pretty_is_go_indent_with_sorted_keys() {
        let v = json!({"kind": "List", "apiVersion": "v1", "items": [], "metadata": {"resourceVersion": ""}});
        assert_eq!(
            pretty(&v),
            "{\n    \"apiVersion\": \"v1\",\n    \"items\": [],\n    \"kind\": \"List\",\n    \"metadata\": {\n        \"resourceVersion\": \"\"\n    }\n}\n"
        );
    }

    #[test]
    fn compact_escapes_html_like_go() {
        let v = json!({"b": [1, 2.5, true, null], "a": "x<y>&z\n"});
        assert_eq!(compact(&v), r#"{"a":"x\u003cy\u003e\u0026z\n","b":[1,2.5,true,null]}"#);
    }
}
