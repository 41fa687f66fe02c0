//! Observing one objective in the live cluster: what was seen, what was wanted, and whether
//! they agree.
//!
//! Objectives look at behaviour, never at the shape of a fix: a command's exit code and output
//! through the real dataplane and resolver, a field of live objects, the spans of a command's
//! trace (how many DNS queries reached the server, which policy dropped a packet). So any fix
//! that makes the system behave passes, and one that only hides the symptom does not.

use std::{
    collections::BTreeMap,
    time::{Duration, Instant},
};

use crate::{
    live::{ExecOutput, Live, Span},
    spec::{Ask, Exec, Expect, ObjectProbe, Objective, SpanMatch},
};

/// How long the spans of a command's trace may take to reach the store: the SDK's batch
/// processor exports every OTEL_BSP_SCHEDULE_DELAY ms (5 s by default), plus a margin for the
/// store. The processes and the CLI are started from the same environment, so the CLI's value
/// is theirs.
fn trace_settle() -> Duration {
    let delay = std::env::var("OTEL_BSP_SCHEDULE_DELAY").ok().and_then(|v| v.trim().parse::<u64>().ok());
    Duration::from_millis(delay.unwrap_or(5000)) + Duration::from_secs(2)
}

/// What one objective observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The objective's name.
    pub name: String,
    /// Whether the observation met the expectation.
    pub passed: bool,
    /// What was seen.
    pub observed: String,
    /// What was wanted.
    pub expected: String,
}

/// Observes `o` now.
pub async fn observe(
    live: &mut impl Live,
    o: &Objective,
    questions: &[Ask],
    answers: &BTreeMap<usize, String>,
) -> Outcome {
    let expected = describe(&o.expect);
    let (passed, observed, expected) = if let Some(x) = &o.exec {
        match run(live, x).await {
            Ok(out) => {
                let text = format!("{}\n{}", out.stdout, out.stderr);
                let lines = out.stdout.lines().filter(|l| !l.trim().is_empty()).count();
                let ok = holds(&o.expect, Some(out.code), &text, out.stdout.trim(), lines);
                (ok, format!("exit {}: {}", out.code, first_line(&out)), expected)
            }
            Err(e) => (false, e, expected),
        }
    } else if let Some(p) = &o.object {
        match read(live, p).await {
            Ok((count, value)) => {
                let shown = value.clone().unwrap_or_else(|| format!("{count} object(s)"));
                let v = value.unwrap_or_default();
                (holds(&o.expect, None, &v, v.trim(), count), quote(&shown), expected)
            }
            Err(e) => (false, e, expected),
        }
    } else if let Some(t) = &o.trace {
        match spans(live, &t.exec, &t.spans, &o.expect).await {
            Ok((count, shown)) => {
                let ok = holds(&o.expect, None, &shown, shown.trim(), count);
                (
                    ok,
                    format!(
                        "{count} `{}` span(s){}",
                        t.spans.name,
                        if shown.is_empty() { String::new() } else { format!(": {shown}") }
                    ),
                    expected,
                )
            }
            Err(e) => (false, e, expected),
        }
    } else if let Some(n) = o.answer {
        answer(live, n, questions, answers).await
    } else {
        (false, "nothing to observe".into(), expected)
    };
    Outcome { name: o.name.clone(), passed, observed, expected }
}

/// Runs an exec probe in its own trace; returns the output and the trace id.
pub async fn run_traced(live: &mut impl Live, x: &Exec) -> Result<(ExecOutput, String), String> {
    let pod = pod(live, x).await?;
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let traceparent = format!("00-{trace_id}-{span_id}-01");
    let out = live.exec(&x.namespace, &pod, &x.command, &traceparent).await?;
    Ok((out, trace_id))
}

async fn run(live: &mut impl Live, x: &Exec) -> Result<ExecOutput, String> {
    run_traced(live, x).await.map(|(out, _)| out)
}

/// The pod an exec probe runs in: by name, or the first Running one its selector matches.
async fn pod(live: &mut impl Live, x: &Exec) -> Result<String, String> {
    if let Some(name) = &x.pod {
        return Ok(name.clone());
    }
    let selector = x.selector.as_deref().unwrap_or_default();
    let pods = live.list("pods", &x.namespace, selector).await?;
    let mut running: Vec<&str> = pods
        .iter()
        .filter(|p| p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null())
        .filter_map(|p| p["metadata"]["name"].as_str())
        .collect();
    running.sort_unstable();
    running
        .first()
        .map(|s| s.to_string())
        .ok_or_else(|| format!("no Running pod matches {selector:?} in namespace {:?}", x.namespace))
}

/// The objects a probe reads: their number and, with a JSONPath, their values joined by spaces.
async fn read(live: &mut impl Live, p: &ObjectProbe) -> Result<(usize, Option<String>), String> {
    let objects = match (&p.name, &p.selector) {
        (Some(name), _) => live.get(&p.resource, &p.namespace, name).await?.into_iter().collect(),
        (None, selector) => {
            live.list(&p.resource, &p.namespace, selector.as_deref().unwrap_or_default()).await?
        }
    };
    let Some(template) = &p.jsonpath else {
        return Ok((objects.len(), None));
    };
    let mut values = Vec::new();
    for object in &objects {
        let v = live.jsonpath(object, template)?;
        if !v.is_empty() {
            values.push(v);
        }
    }
    Ok((objects.len(), Some(values.join(" "))))
}

/// Runs the command and counts the matching spans of its trace once they have arrived.
async fn spans(
    live: &mut impl Live,
    x: &Exec,
    m: &SpanMatch,
    expect: &Expect,
) -> Result<(usize, String), String> {
    let (_, trace_id) = run_traced(live, x).await?;
    let deadline = Instant::now() + trace_settle();
    loop {
        let all = live.trace(&trace_id).await?;
        let found: Vec<&Span> = all.iter().filter(|s| matches(s, m)).collect();
        let count = found.len();
        let shown = summary(&found, m);
        // Without an upper bound, enough spans settle it; with one, only the full trace can.
        let early = expect.max.is_none() && holds(expect, None, &shown, shown.trim(), count);
        if early || Instant::now() >= deadline {
            return Ok((count, shown));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn matches(s: &Span, m: &SpanMatch) -> bool {
    s.name == m.name
        && m.service.as_ref().is_none_or(|svc| &s.service == svc)
        && m.attributes.iter().all(|(k, v)| s.attributes.get(k) == Some(v))
        && m.contains.iter().all(|(k, v)| s.attributes.get(k).is_some_and(|have| have.contains(v.as_str())))
}

/// The matching spans' distinguishing attributes, for the observation line.
fn summary(found: &[&Span], m: &SpanMatch) -> String {
    let keys = ["dns.question.name", "netlab.netpol.verdict", "netlab.resolver.candidates", "fault.name"];
    let mut parts: Vec<String> = Vec::new();
    for s in found {
        let mut bits: Vec<&str> = Vec::new();
        for k in keys.iter().copied().chain(m.attributes.keys().chain(m.contains.keys()).map(String::as_str))
        {
            if let Some(v) = s.attributes.get(k)
                && !bits.contains(&v.as_str())
            {
                bits.push(v);
            }
        }
        if !bits.is_empty() {
            parts.push(bits.join(" "));
        }
    }
    parts.dedup();
    parts.join(", ")
}

async fn answer(
    live: &mut impl Live,
    n: usize,
    questions: &[Ask],
    answers: &BTreeMap<usize, String>,
) -> (bool, String, String) {
    let expected = format!("the answer to question {n}, read from the cluster");
    let Some(q) = questions.get(n.wrapping_sub(1)) else {
        return (false, format!("the lab has no question {n}"), expected);
    };
    let Some(given) = answers.get(&n) else {
        return (false, format!("not answered yet (netlab lab answer --question {n} TEXT)"), expected);
    };
    let accepted: Vec<String> = match &q.from {
        Some(_) => match expected_answer(live, q).await {
            Ok(v) => vec![v],
            Err(e) => return (false, format!("answered {given:?}, but {e}"), expected),
        },
        None => q.accept.clone(),
    };
    let norm = |s: &str| s.trim().to_ascii_lowercase();
    let right = accepted.iter().any(|a| norm(a) == norm(given));
    (right, format!("answered {given:?}"), expected)
}

/// The right answer to `q` now: read from the cluster, or the first accepted answer.
pub async fn expected_answer(live: &mut impl Live, q: &Ask) -> Result<String, String> {
    let Some(p) = &q.from else {
        return q.accept.first().cloned().ok_or_else(|| "the question accepts no answer".to_string());
    };
    match read(live, p).await? {
        (_, Some(v)) if !v.is_empty() => Ok(v),
        _ => Err("the cluster no longer shows the answer".into()),
    }
}

/// Whether an observation meets every given expectation: `code` for exec, `text` for
/// contains, `value` for equals, `count` for min/max.
fn holds(e: &Expect, code: Option<i32>, text: &str, value: &str, count: usize) -> bool {
    e.exit.is_none_or(|x| code == Some(x))
        && e.exit_not.is_none_or(|x| code != Some(x))
        && e.contains.as_ref().is_none_or(|c| text.contains(c.as_str()))
        && e.not_contains.as_ref().is_none_or(|c| !text.contains(c.as_str()))
        && e.equals.as_ref().is_none_or(|v| value == v.trim())
        && e.present.is_none_or(|p| p != value.is_empty())
        && e.min.is_none_or(|m| count >= m)
        && e.max.is_none_or(|m| count <= m)
}

/// An expectation in words: "exit 0, output contains \"orders\"".
pub fn describe(e: &Expect) -> String {
    let mut parts = Vec::new();
    if let Some(x) = e.exit {
        parts.push(format!("exit {x}"));
    }
    if let Some(x) = e.exit_not {
        parts.push(format!("an exit code other than {x}"));
    }
    if let Some(c) = &e.contains {
        parts.push(format!("containing {c:?}"));
    }
    if let Some(c) = &e.not_contains {
        parts.push(format!("not containing {c:?}"));
    }
    if let Some(v) = &e.equals {
        parts.push(format!("{v:?}"));
    }
    match e.present {
        Some(true) => parts.push("present".into()),
        Some(false) => parts.push("absent".into()),
        None => {}
    }
    match (e.min, e.max) {
        (Some(a), Some(b)) if a == b => parts.push(format!("exactly {a}")),
        (Some(a), Some(b)) => parts.push(format!("between {a} and {b}")),
        (Some(a), None) => parts.push(format!("at least {a}")),
        (None, Some(b)) => parts.push(format!("at most {b}")),
        (None, None) => {}
    }
    parts.join(", ")
}

fn first_line(out: &ExecOutput) -> String {
    let line = out
        .stdout
        .lines()
        .chain(out.stderr.lines())
        .find(|l| !l.trim().is_empty())
        .unwrap_or("(no output)")
        .trim();
    let mut shown: String = line.chars().take(120).collect();
    if shown.len() < line.len() {
        shown.push('…');
    }
    shown
}

fn quote(v: &str) -> String {
    if v.is_empty() {
        return "(empty)".into();
    }
    let mut shown: String = v.chars().take(160).collect();
    if shown.len() < v.len() {
        shown.push('…');
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(yaml: &str) -> Expect {
        yaml_serde::from_str(yaml).unwrap()
    }

    #[test]
    fn every_given_expectation_must_hold() {
        let e = expect("{exit: 0, contains: orders}");
        assert!(holds(&e, Some(0), "hello from orders-1", "", 1));
        assert!(!holds(&e, Some(7), "hello from orders-1", "", 1));
        assert!(!holds(&e, Some(0), "hello", "", 1));
        let e = expect("{exitNot: 0, notContains: orders}");
        assert!(holds(&e, Some(28), "timed out", "", 0));
        assert!(!holds(&e, Some(28), "from orders", "", 0));
        let e = expect("{min: 1, max: 1}");
        assert!(holds(&e, None, "", "", 1));
        assert!(!holds(&e, None, "", "", 5));
        assert!(!holds(&e, None, "", "", 0));
        let e = expect("{equals: ' 10.244.1.0/24 '}");
        assert!(holds(&e, None, "", "10.244.1.0/24", 1));
    }

    #[test]
    fn expectations_read_as_words() {
        assert_eq!(describe(&expect("{exit: 0, contains: orders}")), "exit 0, containing \"orders\"");
        assert_eq!(describe(&expect("{min: 1, max: 1}")), "exactly 1");
        assert_eq!(describe(&expect("{max: 2}")), "at most 2");
    }

    #[test]
    fn spans_match_by_name_service_and_attribute_text() {
        let span = Span {
            name: "netpol verdict".into(),
            service: "node-agent".into(),
            attributes: [("netlab.netpol.verdict".to_string(), "denied by default-deny".to_string())].into(),
        };
        let m: SpanMatch =
            yaml_serde::from_str("{name: netpol verdict, contains: {netlab.netpol.verdict: default-deny}}")
                .unwrap();
        assert!(matches(&span, &m));
        let m: SpanMatch =
            yaml_serde::from_str("{name: netpol verdict, attributes: {netlab.netpol.verdict: default-deny}}")
                .unwrap();
        assert!(!matches(&span, &m), "attributes are exact");
        let m: SpanMatch = yaml_serde::from_str("{name: netpol verdict, service: kube-proxy}").unwrap();
        assert!(!matches(&span, &m));
    }
}
