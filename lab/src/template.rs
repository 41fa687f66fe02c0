//! `{{name}}` in a lab's texts and manifests, filled in with the run's values.
//!
//! Deliberately tiny: a lab's files are YAML that a person reads, so the placeholders are plain
//! names, no expressions. A name the run has no value for is an error naming it, never an empty
//! string that would make a probe quietly test something else.

use std::collections::BTreeMap;

/// `text` with every `{{ name }}` replaced by `vars[name]`; the unknown names otherwise.
pub fn render(text: &str, vars: &BTreeMap<String, String>) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut unknown = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let name = after[..close].trim();
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => {
                if !unknown.iter().any(|u| u == name) {
                    unknown.push(name.to_string());
                }
            }
        }
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    if unknown.is_empty() { Ok(out) } else { Err(unknown) }
}

/// The names `text` uses.
pub fn names(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        let name = after[..close].trim().to_string();
        if !found.contains(&name) {
            found.push(name);
        }
        rest = &after[close + 2..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fills_in_every_placeholder_with_or_without_spaces() {
        let v = vars(&[("pod", "web-x7k2p"), ("node", "node-2")]);
        assert_eq!(render("{{pod}} on {{ node }}: {{pod}}", &v).unwrap(), "web-x7k2p on node-2: web-x7k2p");
        assert_eq!(render("no placeholders", &v).unwrap(), "no placeholders");
        assert_eq!(render("unclosed {{pod", &v).unwrap(), "unclosed {{pod");
    }

    #[test]
    fn names_every_unknown_placeholder_once() {
        let err = render("{{a}} {{b}} {{a}} {{pod}}", &vars(&[("pod", "x")])).unwrap_err();
        assert_eq!(err, vec!["a", "b"]);
        assert_eq!(names("{{a}} {{ b }} {{a}}"), vec!["a", "b"]);
    }
}
