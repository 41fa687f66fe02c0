//! `dig`, as BIND 9.18 prints it (`bin/dig/dig.c` + `lib/dns/message.c`): the `; <<>> DiG`
//! command line, the header, the OPT pseudosection, the sections in master-file layout and the
//! statistics footer; `+short`, `+noall +answer`, `+search`/`+showsearch`, `+tcp`, `-x`.
//! dig never uses the search list unless `+search`, and exits 0 whatever the rcode (9 when no
//! server answered).

use std::fmt::Write as _;

use hickory_proto::rr::{Name, RecordType};

use super::{
    CommandOutput, Ctx,
    dighost::{self, Answer, Settings, Tool},
    text,
};
use crate::resolver::{self, message};

/// The version dig reports (netshoot's bind-tools).
pub(crate) const DIG_VERSION: &str = "9.18.39";

const USAGE: &str = "Usage:  dig [@global-server] [domain] [q-type] [q-class] {q-opt}
            {global-d-opt} host [@local-server] {local-d-opt}
            [ host [@local-server] {local-d-opt} [...]]

Use \"dig -h\" (or \"dig -h | more\") for complete list of options
";

/// What to print of each reply.
#[derive(Debug, Clone, Copy)]
struct Show {
    cmd: bool,
    comments: bool,
    question: bool,
    answer: bool,
    authority: bool,
    additional: bool,
    stats: bool,
    short: bool,
    showsearch: bool,
}

// === impl Show ===

impl Show {
    /// `+[no]all`: every section, the command line, comments and statistics.
    fn all(&mut self, on: bool) {
        self.cmd = on;
        self.comments = on;
        self.question = on;
        self.answer = on;
        self.authority = on;
        self.additional = on;
        self.stats = on;
    }
}

/// One lookup on the command line.
#[derive(Debug, Clone, Default)]
struct LookupArg {
    name: Option<String>,
    rtype: Option<RecordType>,
}

/// `dig [@server] [-p port] [-t type] [-x addr] name [type] [+opts]`.
pub(super) async fn run(args: &[String], cx: &Ctx<'_>) -> CommandOutput {
    let mut s = Settings::new(Tool::Dig, cx);
    let mut d = Show {
        cmd: true,
        comments: true,
        question: true,
        answer: true,
        authority: true,
        additional: true,
        stats: true,
        short: false,
        showsearch: false,
    };
    let mut server: Option<String> = None;
    let mut port: Option<u16> = None;
    let mut lookups: Vec<LookupArg> = Vec::new();
    let mut current = LookupArg::default();
    let usage_error = |what: &str| CommandOutput {
        stdout: String::new(),
        stderr: format!("Invalid option: {what}\n{USAGE}"),
        code: 1,
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_str();
        i += 1;
        if let Some(srv) = arg.strip_prefix('@') {
            server = Some(srv.to_string());
        } else if let Some(opt) = arg.strip_prefix('+') {
            if !plus_option(opt, &mut s, &mut d) {
                return usage_error(arg);
            }
        } else if let Some(flag) = arg.strip_prefix('-').filter(|f| !f.is_empty()) {
            let (letter, rest) = flag.split_at(1);
            let mut value = || -> Option<String> {
                if !rest.is_empty() {
                    Some(rest.to_string())
                } else {
                    let v = args.get(i).cloned();
                    i += 1;
                    v
                }
            };
            match letter {
                "4" | "6" if rest.is_empty() => {}
                "h" if rest.is_empty() => {
                    return CommandOutput { stdout: USAGE.to_string(), stderr: String::new(), code: 0 };
                }
                "v" if rest.is_empty() => {
                    return CommandOutput {
                        stdout: String::new(),
                        stderr: format!("DiG {DIG_VERSION}\n"),
                        code: 0,
                    };
                }
                "p" => match value().and_then(|v| v.parse::<u16>().ok()) {
                    Some(p) => port = Some(p),
                    None => return usage_error(arg),
                },
                "t" => match value().as_deref().and_then(text::parse_type) {
                    Some(t) => current.rtype = Some(t),
                    None => return usage_error(arg),
                },
                "c" => match value() {
                    Some(c) if c.eq_ignore_ascii_case("IN") => {}
                    _ => return usage_error(arg),
                },
                "q" => match value() {
                    Some(n) => push_name(&mut lookups, &mut current, n),
                    None => return usage_error(arg),
                },
                "x" => match value().and_then(|v| v.parse::<std::net::IpAddr>().ok()) {
                    Some(ip) => {
                        push_name(&mut lookups, &mut current, text::reverse_name(ip));
                        current.rtype = Some(RecordType::PTR);
                    }
                    None => return usage_error(arg),
                },
                _ => return usage_error(arg),
            }
        } else if current.rtype.is_none()
            && let Some(t) = text::parse_type(arg)
        {
            current.rtype = Some(t);
        } else if arg.eq_ignore_ascii_case("IN") {
        } else {
            push_name(&mut lookups, &mut current, arg.to_string());
        }
    }
    if current.name.is_some() || lookups.is_empty() {
        lookups.push(current);
    }
    if let Err(e) = s.use_server(server.as_deref(), port) {
        return CommandOutput { stdout: String::new(), stderr: format!("dig: {e}\n"), code: 10 };
    }

    let mut cmdline = format!("\n; <<>> DiG {DIG_VERSION} <<>> {}\n", args.join(" "));
    if server.is_some() {
        cmdline.push_str("; (1 server found)\n");
    }
    cmdline.push_str(";; global options: +cmd\n");
    let when = cx.env.when();
    let mut out = String::new();
    let mut code = 0;
    for (n, lookup) in lookups.iter().enumerate() {
        let first = n == 0;
        let (name, rtype) = match &lookup.name {
            Some(name) => (name.clone(), lookup.rtype.unwrap_or(RecordType::A)),
            None => (".".to_string(), lookup.rtype.unwrap_or(RecordType::NS)),
        };
        let searched = match dighost::search(&s, &name, rtype, cx.net, &mut out).await {
            Ok(searched) => searched,
            Err(bad) => {
                return CommandOutput { stdout: out, stderr: format!("dig: {bad}\n"), code: 10 };
            }
        };
        let count = searched.replies.len();
        for (k, answer) in searched.replies.iter().enumerate() {
            let is_last = k + 1 == count && searched.unreached.is_none();
            if is_last || d.showsearch {
                print_reply(&mut out, answer, &d, (first && d.cmd).then_some(&cmdline), &when);
            }
        }
        if let Some(unreached) = searched.unreached {
            code = 9;
            if !unreached.tcp_refused {
                if first && d.cmd && !d.short {
                    out.push_str(&cmdline);
                }
                out.push_str(";; no servers could be reached\n");
            }
        }
    }
    CommandOutput { stdout: out, stderr: String::new(), code }
}

/// Starts a new lookup for `name` (the one being built becomes complete if it had a name).
fn push_name(lookups: &mut Vec<LookupArg>, current: &mut LookupArg, name: String) {
    if current.name.is_some() {
        lookups.push(std::mem::take(current));
    }
    current.name = Some(name);
}

/// Applies one `+[no]option[=value]`; false when dig does not know it.
fn plus_option(opt: &str, s: &mut Settings, d: &mut Show) -> bool {
    let (negated, body) = match opt.strip_prefix("no") {
        Some(rest) => (true, rest),
        None => (false, opt),
    };
    let (key, value) = match body.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (body, None),
    };
    let on = !negated;
    let number = value.and_then(|v| v.parse::<u32>().ok());
    match (key, value) {
        ("all", None) => d.all(on),
        ("answer", None) => d.answer = on,
        ("authority", None) => d.authority = on,
        ("additional", None) => d.additional = on,
        ("question", None) => d.question = on,
        ("comments", None) => d.comments = on,
        ("stats", None) => d.stats = on,
        ("cmd", None) => d.cmd = on,
        ("short", None) => {
            d.short = on;
            if on {
                d.all(false);
                d.answer = true;
            }
        }
        ("search", None) => s.use_search = on,
        ("showsearch", None) => {
            d.showsearch = on;
            if on {
                s.use_search = true;
            }
        }
        ("tcp" | "vc", None) => s.tcp = on,
        ("recurse", None) => s.recurse = on,
        ("edns", _) => s.edns = on,
        ("cookie", _) => {
            if !on {
                s.cookie = None;
            } else if s.cookie.is_none() {
                s.cookie = Some(resolver::random_u64().to_be_bytes());
            }
        }
        ("fail", None) => s.servfail_stops = !on,
        ("time", Some(_)) if on => match number {
            Some(n) => s.timeout = std::time::Duration::from_secs(u64::from(n.max(1))),
            None => return false,
        },
        ("tries", Some(_)) if on => match number {
            Some(n) => s.tries = n.max(1),
            None => return false,
        },
        ("retry", Some(_)) if on => match number {
            Some(n) => s.tries = n + 1,
            None => return false,
        },
        ("ndots", Some(_)) if on => match number {
            Some(n) => s.ndots = n as usize,
            None => return false,
        },
        _ => return false,
    }
    true
}

/// One reply as dig prints it.
fn print_reply(out: &mut String, a: &Answer, d: &Show, cmdline: Option<&String>, when: &str) {
    let msg = &a.message;
    if d.short {
        for r in &msg.answers {
            out.push_str(&text::rdata(&r.data));
            out.push('\n');
        }
        return;
    }
    if let Some(cmdline) = cmdline {
        out.push_str(cmdline);
    }
    let m = &msg.metadata;
    let additional_count =
        msg.additionals.len() + usize::from(msg.edns.is_some()) + usize::from(msg.signature.is_some());
    if d.comments {
        out.push_str(";; Got answer:\n");
        if is_dot_local(&a.qname) {
            out.push_str(";; WARNING: .local is reserved for Multicast DNS\n;; You are currently testing what happens when an mDNS query is leaked to DNS\n");
        }
        let _ = writeln!(
            out,
            ";; ->>HEADER<<- opcode: QUERY, status: {}, id: {}",
            message::rcode_name(m.response_code),
            m.id
        );
        let mut flags = String::new();
        for (set, name) in [
            (true, " qr"),
            (m.authoritative, " aa"),
            (m.truncation, " tc"),
            (m.recursion_desired, " rd"),
            (m.recursion_available, " ra"),
            (m.authentic_data, " ad"),
            (m.checking_disabled, " cd"),
        ] {
            if set {
                flags.push_str(name);
            }
        }
        let _ = writeln!(
            out,
            ";; flags:{flags}; QUERY: {}, ANSWER: {}, AUTHORITY: {}, ADDITIONAL: {}",
            msg.queries.len(),
            msg.answers.len(),
            msg.authorities.len(),
            additional_count
        );
        if m.recursion_desired && !m.recursion_available {
            out.push_str(";; WARNING: recursion requested but not available\n");
        }
        out.push('\n');
        if let Some(edns) = &msg.edns {
            let _ = writeln!(
                out,
                ";; OPT PSEUDOSECTION:\n; EDNS: version: {}, flags:{}; udp: {}",
                edns.version(),
                if edns.flags().dnssec_ok { " do" } else { "" },
                edns.max_payload()
            );
            for (code, value) in message::edns_options(edns) {
                out.push_str(&option_line(code, &value, a.cookie));
            }
        }
    }
    if d.question {
        if d.comments {
            out.push_str(";; QUESTION SECTION:\n");
        }
        for q in &msg.queries {
            let _ = writeln!(out, ";{}", text::question_line(q.name(), q.query_type(), text::DIG_COLUMNS));
        }
        if d.comments {
            out.push('\n');
        }
    }
    for (show, title, records) in [
        (d.answer, "ANSWER", &msg.answers),
        (d.authority, "AUTHORITY", &msg.authorities),
        (d.additional, "ADDITIONAL", &msg.additionals),
    ] {
        if !show || records.is_empty() {
            continue;
        }
        if d.comments {
            let _ = writeln!(out, ";; {title} SECTION:");
        }
        for r in records {
            out.push_str(&text::record_line(r, text::DIG_COLUMNS));
            out.push('\n');
        }
        if d.comments {
            out.push('\n');
        }
    }
    if d.stats {
        let _ = write!(
            out,
            ";; Query time: {} msec\n;; SERVER: {}#{}({}) ({})\n;; WHEN: {when}\n;; MSG SIZE  rcvd: {}\n\n",
            a.elapsed.as_millis(),
            a.server.addr.ip(),
            a.server.addr.port(),
            a.server.userarg,
            if a.tcp { "TCP" } else { "UDP" },
            a.size
        );
    }
}

/// Whether the query name is under `local.` (dig warns about mDNS names).
fn is_dot_local(qname: &Name) -> bool {
    qname.iter().next_back().is_some_and(|l| l.eq_ignore_ascii_case(b"local"))
}

/// One EDNS option line of the OPT pseudosection.
fn option_line(code: u16, value: &[u8], sent_cookie: Option<[u8; 8]>) -> String {
    let hex = |sep: &str| value.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(sep);
    if code == message::COOKIE_OPTION {
        let status = match sent_cookie {
            Some(c) if value == c.as_slice() => " (echoed)",
            Some(c) if value.len() > 8 && value[..8] == c => " (good)",
            _ => "",
        };
        return format!("; COOKIE: {}{status}\n", hex(""));
    }
    let printable: String =
        value.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
    let label = if code == 3 { "; NSID:".to_string() } else { format!("; OPT={code}:") };
    if value.is_empty() { format!("{label}\n") } else { format!("{label} {} (\"{printable}\")\n", hex(" ")) }
}
