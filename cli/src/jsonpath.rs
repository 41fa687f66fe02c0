//! `-o jsonpath=...`: the subset of Kubernetes' JSONPath templates that lab scripts use.
//!
//! Supported: literal text, `{.a.b}`, `{$.a}`, `{['a.b']}`, `{.list[0]}`, `{.list[-1]}`,
//! `{.list[*].x}`, `{.list[1:3]}`, `{.map.*}`, `{..name}`, `{.list[?(@.type=="Ready")].status}`,
//! `{range .items[*]}...{end}` and string literals like `{"\n"}`. Missing keys print nothing, as
//! kubectl's default `--allow-missing-template-keys=true` does.

use serde_json::Value;

use crate::json;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Text(String),
    Path(Vec<Step>),
    Range(Vec<Step>, Vec<Node>),
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    Root,
    Current,
    Field(String),
    Fields(Vec<String>),
    Recursive(String),
    Wildcard,
    Index(Vec<i64>),
    Slice(Option<i64>, Option<i64>),
    Filter(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
struct Filter {
    left: Vec<Step>,
    op: Option<(String, Operand)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Literal(Value),
    Path(Vec<Step>),
}

/// A template kubectl would refuse; the text is kubectl's.
#[derive(Debug, thiserror::Error)]
#[error("error parsing jsonpath {template}, {reason}")]
pub struct ParseError {
    /// The template as given.
    template: String,
    /// What is wrong with it.
    reason: Syntax,
}

/// What is wrong with a template, in kubectl's words.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Syntax(String);

/// Runs a template against `data`.
pub fn execute(template: &str, data: &Value) -> Result<String, ParseError> {
    let nodes =
        parse_template(template).map_err(|reason| ParseError { template: template.to_string(), reason })?;
    let mut out = String::new();
    run(&nodes, data, data, &mut out);
    Ok(out)
}

fn run(nodes: &[Node], root: &Value, current: &Value, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(t),
            Node::Path(steps) => {
                let results = eval(steps, root, current);
                let texts: Vec<String> = results.iter().map(|v| text(v)).collect();
                out.push_str(&texts.join(" "));
            }
            Node::Range(steps, body) => {
                for item in eval(steps, root, current) {
                    // `range` over one list iterates its elements.
                    match item {
                        Value::Array(items) if is_single_path(steps) => {
                            for i in items {
                                run(body, root, i, out);
                            }
                        }
                        other => run(body, root, other, out),
                    }
                }
            }
        }
    }
}

fn is_single_path(steps: &[Step]) -> bool {
    !steps
        .iter()
        .any(|s| matches!(s, Step::Wildcard | Step::Slice(..) | Step::Filter(_) | Step::Recursive(_)))
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_string(),
        Value::Object(_) | Value::Array(_) => json::compact(v),
        other => other.to_string(),
    }
}

fn eval<'a>(steps: &[Step], root: &'a Value, current: &'a Value) -> Vec<&'a Value> {
    let mut values: Vec<&Value> = vec![current];
    for step in steps {
        let mut next = Vec::new();
        for v in values {
            apply(step, root, v, &mut next);
        }
        values = next;
    }
    values
}

fn apply<'a>(step: &Step, root: &'a Value, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Root => out.push(root),
        Step::Current => out.push(v),
        Step::Field(name) => {
            if let Some(x) = v.get(name) {
                out.push(x);
            }
        }
        Step::Fields(names) => {
            for n in names {
                if let Some(x) = v.get(n) {
                    out.push(x);
                }
            }
        }
        Step::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Step::Index(indexes) => {
            if let Value::Array(a) = v {
                for &i in indexes {
                    let idx = if i < 0 { a.len() as i64 + i } else { i };
                    if let Some(x) = usize::try_from(idx).ok().and_then(|i| a.get(i)) {
                        out.push(x);
                    }
                }
            }
        }
        Step::Slice(start, end) => {
            if let Value::Array(a) = v {
                let len = a.len() as i64;
                let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
                let s = clamp(start.unwrap_or(0));
                let e = clamp(end.unwrap_or(len));
                if s < e {
                    out.extend(a[s as usize..e as usize].iter());
                }
            }
        }
        Step::Recursive(name) => recurse(name, v, out),
        Step::Filter(f) => {
            let items: Vec<&Value> = match v {
                Value::Array(a) => a.iter().collect(),
                other => vec![other],
            };
            for item in items {
                if matches(f, root, item) {
                    out.push(item);
                }
            }
        }
    }
}

fn recurse<'a>(name: &str, v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push(x);
            }
            for child in m.values() {
                recurse(name, child, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                recurse(name, child, out);
            }
        }
        _ => {}
    }
}

fn matches(f: &Filter, root: &Value, item: &Value) -> bool {
    let left = eval(&f.left, root, item);
    let Some((op, right)) = &f.op else {
        return !left.is_empty();
    };
    let rights: Vec<Value> = match right {
        Operand::Literal(v) => vec![v.clone()],
        Operand::Path(p) => eval(p, root, item).into_iter().cloned().collect(),
    };
    left.iter().any(|l| {
        rights.iter().any(|r| match (l, r) {
            (Value::Number(a), Value::Number(b)) => {
                let (a, b) = (a.as_f64().unwrap_or(f64::NAN), b.as_f64().unwrap_or(f64::NAN));
                match op.as_str() {
                    "==" => a == b,
                    "!=" => a != b,
                    "<" => a < b,
                    "<=" => a <= b,
                    ">" => a > b,
                    ">=" => a >= b,
                    _ => false,
                }
            }
            (l, r) => match op.as_str() {
                "==" => text(l) == text(r),
                "!=" => text(l) != text(r),
                "<" => text(l) < text(r),
                "<=" => text(l) <= text(r),
                ">" => text(l) > text(r),
                ">=" => text(l) >= text(r),
                _ => false,
            },
        })
    })
}

fn parse_template(t: &str) -> Result<Vec<Node>, Syntax> {
    // (nodes of the open block, range path of the open block)
    let mut stack: Vec<(Vec<Node>, Option<Vec<Step>>)> = vec![(Vec::new(), None)];
    let chars: Vec<char> = t.chars().collect();
    let mut i = 0;
    let mut literal = String::new();
    while i < chars.len() {
        if chars[i] != '{' {
            literal.push(chars[i]);
            i += 1;
            continue;
        }
        if !literal.is_empty() {
            top(&mut stack).push(Node::Text(std::mem::take(&mut literal)));
        }
        // Find the matching close brace outside quotes.
        let start = i + 1;
        let mut j = start;
        let mut quote: Option<char> = None;
        while j < chars.len() {
            match (quote, chars[j]) {
                (None, '"' | '\'') => quote = Some(chars[j]),
                (Some(q), c) if c == q && chars[j - 1] != '\\' => quote = None,
                (None, '}') => break,
                _ => {}
            }
            j += 1;
        }
        if j >= chars.len() {
            return Err(Syntax("unclosed action".into()));
        }
        let inner: String = chars[start..j].iter().collect();
        let inner = inner.trim();
        i = j + 1;
        if let Some(rest) = inner.strip_prefix("range ") {
            stack.push((Vec::new(), Some(parse_path(rest.trim())?)));
        } else if inner == "end" {
            if stack.len() < 2 {
                return Err(Syntax("not in range, nothing to end".into()));
            }
            let (body, path) = stack.pop().unwrap_or_default();
            top(&mut stack).push(Node::Range(path.unwrap_or_default(), body));
        } else if inner.starts_with('"') || inner.starts_with('\'') {
            top(&mut stack).push(Node::Text(unquote(inner)?));
        } else {
            top(&mut stack).push(Node::Path(parse_path(inner)?));
        }
    }
    if !literal.is_empty() {
        top(&mut stack).push(Node::Text(literal));
    }
    if stack.len() != 1 {
        return Err(Syntax("unclosed range".into()));
    }
    Ok(stack.pop().map(|(n, _)| n).unwrap_or_default())
}

fn top(stack: &mut Vec<(Vec<Node>, Option<Vec<Step>>)>) -> &mut Vec<Node> {
    if stack.is_empty() {
        stack.push((Vec::new(), None));
    }
    let last = stack.len() - 1;
    &mut stack[last].0
}

fn unquote(s: &str) -> Result<String, Syntax> {
    let q = s.chars().next().unwrap_or('"');
    let body = s
        .strip_prefix(q)
        .and_then(|b| b.strip_suffix(q))
        .ok_or_else(|| Syntax(format!("unterminated string {s}")))?;
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn parse_path(s: &str) -> Result<Vec<Step>, Syntax> {
    let chars: Vec<char> = s.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    // client-go's `advance`: a backslash escapes the next character (`kubernetes\.io/x`), and
    // `parseField` then drops every backslash from the name.
    let name_end = |mut j: usize| {
        while j < chars.len() && chars[j] != '.' && chars[j] != '[' {
            j += if chars[j] == '\\' { 2 } else { 1 };
        }
        j.min(chars.len())
    };
    let field =
        |from: usize, to: usize| -> String { chars[from..to].iter().filter(|c| **c != '\\').collect() };
    while i < chars.len() {
        match chars[i] {
            '$' => {
                steps.push(Step::Root);
                i += 1;
            }
            '@' => {
                steps.push(Step::Current);
                i += 1;
            }
            '.' if chars.get(i + 1) == Some(&'.') => {
                let end = name_end(i + 2);
                steps.push(Step::Recursive(field(i + 2, end)));
                i = end;
            }
            '.' => {
                let end = name_end(i + 1);
                let name = field(i + 1, end);
                match name.as_str() {
                    "" => {}
                    "*" => steps.push(Step::Wildcard),
                    _ => steps.push(Step::Field(name)),
                }
                i = end;
            }
            '[' => {
                let mut depth = 0;
                let mut j = i;
                let mut quote: Option<char> = None;
                while j < chars.len() {
                    match (quote, chars[j]) {
                        (None, '"' | '\'') => quote = Some(chars[j]),
                        (Some(q), c) if c == q => quote = None,
                        (None, '[') => depth += 1,
                        (None, ']') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err(Syntax("unclosed array expect ]".into()));
                }
                let inner: String = chars[i + 1..j].iter().collect();
                steps.push(parse_bracket(inner.trim())?);
                i = j + 1;
            }
            ' ' => i += 1,
            _ => {
                let end = name_end(i);
                steps.push(Step::Field(chars[i..end].iter().collect()));
                i = end;
            }
        }
    }
    Ok(steps)
}

fn parse_bracket(inner: &str) -> Result<Step, Syntax> {
    if inner == "*" {
        return Ok(Step::Wildcard);
    }
    if let Some(f) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
        return parse_filter(f.trim());
    }
    if inner.starts_with('\'') || inner.starts_with('"') {
        let names = inner.split(',').map(|n| unquote(n.trim())).collect::<Result<Vec<_>, _>>()?;
        return Ok(match names.len() {
            1 => Step::Field(names.into_iter().next().unwrap_or_default()),
            _ => Step::Fields(names),
        });
    }
    let int = |s: &str| -> Result<Option<i64>, Syntax> {
        let s = s.trim();
        if s.is_empty() {
            Ok(None)
        } else {
            s.parse().map(Some).map_err(|_| Syntax(format!("invalid array index {s}")))
        }
    };
    if inner.contains(':') {
        let parts: Vec<&str> = inner.split(':').collect();
        return Ok(Step::Slice(int(parts[0])?, int(parts.get(1).copied().unwrap_or(""))?));
    }
    let indexes = inner
        .split(',')
        .map(|p| int(p).and_then(|o| o.ok_or_else(|| Syntax("empty index".into()))))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Step::Index(indexes))
}

fn parse_filter(f: &str) -> Result<Step, Syntax> {
    for op in ["==", "!=", "<=", ">=", "<", ">"] {
        if let Some((l, r)) = f.split_once(op) {
            let r = r.trim();
            let right = if r.starts_with('"') || r.starts_with('\'') {
                Operand::Literal(Value::String(unquote(r)?))
            } else if let Ok(n) = serde_json::from_str::<Value>(r) {
                Operand::Literal(n)
            } else {
                Operand::Path(parse_path(r)?)
            };
            return Ok(Step::Filter(Box::new(Filter {
                left: parse_path(l.trim())?,
                op: Some((op.to_string(), right)),
            })));
        }
    }
    Ok(Step::Filter(Box::new(Filter { left: parse_path(f)?, op: None })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Value {
        json!({"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"app": "x"}}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}, {"port": 443}]},
             "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
            {"metadata": {"name": "b"}, "spec": {"clusterIP": "10.96.0.2", "ports": [{"port": 53}]},
             "status": {"conditions": [{"type": "Ready", "status": "False"}]}}
        ]})
    }

    #[test]
    fn fields_indexes_and_wildcards() {
        let d = data();
        assert_eq!(execute("{.items[0].spec.clusterIP}", &d).unwrap(), "10.96.0.1");
        assert_eq!(execute("{.items[*].metadata.name}", &d).unwrap(), "a b");
        assert_eq!(execute("{.items[-1].metadata.name}", &d).unwrap(), "b");
        assert_eq!(execute("{.items[0].spec.ports[*].port}", &d).unwrap(), "80 443");
        assert_eq!(execute("{.items[0].metadata.labels}", &d).unwrap(), r#"{"app":"x"}"#);
        assert_eq!(execute("{.items[0].metadata['labels']['app']}", &d).unwrap(), "x");
        assert_eq!(execute("{..port}", &d).unwrap(), "80 443 53");
        assert_eq!(execute("{.items[0:1].metadata.name}", &d).unwrap(), "a");
        assert_eq!(execute("{.missing.field}", &d).unwrap(), "");
        assert_eq!(execute("name={.items[1].metadata.name}!", &d).unwrap(), "name=b!");
    }

    #[test]
    fn escaped_dots_are_part_of_the_name() {
        let d = json!({"metadata": {"annotations": {"deprecated.daemonset.template.generation": "2"}}});
        let template = r"{.metadata.annotations.deprecated\.daemonset\.template\.generation}";
        assert_eq!(execute(template, &d).unwrap(), "2");
        assert_eq!(execute(r"{..deprecated\.daemonset\.template\.generation}", &d).unwrap(), "2");
    }

    #[test]
    fn filters_and_ranges() {
        let d = data();
        assert_eq!(
            execute(r#"{.items[?(@.status.conditions[0].status=="True")].metadata.name}"#, &d).unwrap(),
            "a"
        );
        assert_eq!(execute("{.items[0].spec.ports[?(@.port>100)].port}", &d).unwrap(), "443");
        assert_eq!(
            execute(r#"{range .items[*]}{.metadata.name}{"\t"}{.spec.clusterIP}{"\n"}{end}"#, &d).unwrap(),
            "a\t10.96.0.1\nb\t10.96.0.2\n"
        );
        assert!(execute("{.items[0}", &d).is_err());
        assert!(execute("{range .items[*]}{.x}", &d).is_err());
    }
}
