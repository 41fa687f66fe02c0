//! `nslookup`, as BIND 9.18 prints it (`bin/dig/nslookup.c`): the `Server:`/`Address:` header,
//! `Name:`/`Address:` pairs for A and then AAAA (the AAAA query goes to the end of the A
//! answer's CNAME chain), `** server can't find NAME: RCODE` and exit 1, and the
//! `;; Got recursion not available from SERVER` lines that CoreDNS's RA-less answers cause.

use std::fmt::Write as _;

use hickory_proto::{
    op::ResponseCode,
    rr::{Name, RData, Record, RecordType},
};

use super::{
    CommandOutput, Ctx,
    dighost::{self, Answer, Settings, Tool},
    text,
};
use crate::{
    podnet::PodNetwork,
    resolver::{bare, follow, message},
};

/// `nslookup [-option ...] NAME [SERVER]`.
pub(super) async fn run(args: &[String], cx: &Ctx<'_>) -> CommandOutput {
    let mut s = Settings::new(Tool::Nslookup, cx);
    let mut out = String::new();
    let mut rtype: Option<RecordType> = None;
    let mut port: Option<u16> = None;
    let mut positional = Vec::new();
    for arg in args {
        let Some(opt) = arg.strip_prefix('-').filter(|o| !o.is_empty()) else {
            positional.push(arg.clone());
            continue;
        };
        if !option(opt, &mut s, &mut rtype, &mut port) {
            let _ = writeln!(out, "*** Invalid option: {opt}");
        }
    }
    let Some(name) = positional.first().cloned() else {
        // Interactive mode, with no terminal to read from.
        out.push('\n');
        return CommandOutput { stdout: out, stderr: String::new(), code: 1 };
    };
    if let Err(e) = s.use_server(positional.get(1).map(String::as_str), port) {
        return CommandOutput { stdout: out, stderr: format!("nslookup: {e}\n"), code: 1 };
    }
    // A server the user chose is taken as it is: no RA check (nslookup.c `check_ra`).
    if positional.len() > 1 {
        s.check_ra = false;
    }

    let mut failed = false;
    let reverse = name.parse::<std::net::IpAddr>().ok();
    let default_lookups = rtype.is_none();
    let (qtext, qtype) = match (reverse, rtype) {
        // An address is always looked up in reverse, whatever -type says.
        (Some(ip), _) => {
            s.use_search = false;
            (text::reverse_name(ip), RecordType::PTR)
        }
        (None, t) => (name.clone(), t.unwrap_or(RecordType::A)),
    };
    let searched = match dighost::search(&s, &qtext, qtype, cx.net, &mut out).await {
        Ok(searched) => searched,
        Err(bad) => {
            return CommandOutput { stdout: out, stderr: format!("nslookup: {bad}\n"), code: 1 };
        }
    };
    let show_header = !default_lookups || qtype == RecordType::A;
    match (searched.unreached, searched.replies.last()) {
        (None, Some(a)) => {
            if show_header {
                header(&mut out, a);
            }
            let rcode = a.message.metadata.response_code;
            if rcode != ResponseCode::NoError {
                let _ = writeln!(
                    out,
                    "** server can't find {}: {}",
                    searched.last_name,
                    message::rcode_name(rcode)
                );
                failed = true;
            } else if default_lookups && qtype == RecordType::A {
                if !a.message.metadata.authoritative {
                    out.push_str("Non-authoritative answer:\n");
                }
                print_section(&mut out, &a.message.answers);
                let a_noanswer = a.message.answers.is_empty();
                // The AAAA lookup: for the end of the CNAME chain, no search.
                let (chain, _) = follow(&a.qname, RecordType::A, &a.message.answers);
                let chased = chain.last().cloned().unwrap_or_else(|| a.qname.clone());
                failed |= aaaa(&s, &chased, a_noanswer, cx.net, &mut out).await;
            } else {
                if !a.message.metadata.authoritative && show_header {
                    out.push_str("Non-authoritative answer:\n");
                }
                if !a.message.answers.is_empty() {
                    print_section(&mut out, &a.message.answers);
                } else if !default_lookups {
                    let _ = writeln!(out, "*** Can't find {qtext}: No answer");
                }
                if !a.message.metadata.authoritative && qtype != RecordType::A && qtype != RecordType::AAAA {
                    out.push_str("\nAuthoritative answers can be found from:\n");
                    print_section(&mut out, &a.message.authorities);
                    print_section(&mut out, &a.message.additionals);
                }
            }
        }
        _ => {
            if searched.unreached.is_some_and(|u| !u.tcp_refused) {
                out.push_str(";; no servers could be reached\n");
            }
            failed = true;
        }
    }
    out.push('\n');
    CommandOutput { stdout: out, stderr: String::new(), code: i32::from(failed) }
}

/// The AAAA half of a default lookup; true when it failed.
async fn aaaa(s: &Settings, chased: &Name, a_noanswer: bool, net: &dyn PodNetwork, out: &mut String) -> bool {
    let textname = bare(chased);
    match dighost::query(s, chased, RecordType::AAAA, &textname, net, out).await {
        Ok(a) => {
            let rcode = a.message.metadata.response_code;
            if rcode != ResponseCode::NoError {
                let _ = writeln!(out, "** server can't find {textname}: {}", message::rcode_name(rcode));
                return true;
            }
            if !a.message.answers.is_empty() {
                print_section(out, &a.message.answers);
            } else if a_noanswer {
                let _ = writeln!(out, "*** Can't find {textname}: No answer");
            }
            false
        }
        Err(u) => {
            if !u.tcp_refused {
                out.push_str(";; no servers could be reached\n");
            }
            true
        }
    }
}

/// `Server:\t\t10.96.0.10` / `Address:\t10.96.0.10#53` / blank.
fn header(out: &mut String, a: &Answer) {
    let _ = write!(
        out,
        "Server:\t\t{}\nAddress:\t{}#{}\n\n",
        a.server.userarg,
        a.server.addr.ip(),
        a.server.addr.port()
    );
}

/// nslookup's short form of a section.
fn print_section(out: &mut String, records: &[Record]) {
    for r in records {
        let owner = bare(&r.name);
        match &r.data {
            RData::A(a) => {
                let _ = write!(out, "Name:\t{owner}\nAddress: {}\n", a.0);
            }
            RData::AAAA(a) => {
                let _ = write!(out, "Name:\t{owner}\nAddress: {}\n", a.0);
            }
            RData::SOA(soa) => {
                let _ = write!(
                    out,
                    "{owner}\n\torigin = {}\n\tmail addr = {}\n\tserial = {}\n\trefresh = {}\n\tretry = {}\n\texpire = {}\n\tminimum = {}\n",
                    bare(&soa.mname),
                    bare(&soa.rname),
                    soa.serial,
                    soa.refresh,
                    soa.retry,
                    soa.expire,
                    soa.minimum
                );
            }
            data => {
                let label = match r.record_type() {
                    RecordType::NS => "nameserver = ".to_string(),
                    RecordType::CNAME => "canonical name = ".to_string(),
                    RecordType::PTR => "name = ".to_string(),
                    RecordType::MX => "mail exchanger = ".to_string(),
                    RecordType::TXT => "text = ".to_string(),
                    RecordType::SRV => "service = ".to_string(),
                    other => format!("rdata_{} = ", u16::from(other)),
                };
                let _ = writeln!(out, "{owner}\t{label}{}", text::rdata(data));
            }
        }
    }
}

/// Applies one `-option[=value]`; false when nslookup does not know it.
fn option(opt: &str, s: &mut Settings, rtype: &mut Option<RecordType>, port: &mut Option<u16>) -> bool {
    let (key, value) = match opt.split_once('=') {
        Some((k, v)) => (k.to_ascii_lowercase(), Some(v)),
        None => (opt.to_ascii_lowercase(), None),
    };
    let number = value.and_then(|v| v.parse::<u32>().ok());
    match (key.as_str(), value) {
        ("type" | "ty" | "querytype" | "query" | "q", Some(v)) => match text::parse_type(v) {
            Some(t) => *rtype = Some(t),
            None => return false,
        },
        ("class" | "cl", Some(v)) if v.eq_ignore_ascii_case("IN") => {}
        ("port" | "po", Some(_)) => match number.and_then(|n| u16::try_from(n).ok()) {
            Some(p) => *port = Some(p),
            None => return false,
        },
        ("timeout" | "ti", Some(_)) => match number {
            Some(n) => s.timeout = std::time::Duration::from_secs(u64::from(n.max(1))),
            None => return false,
        },
        ("retry" | "ret", Some(_)) => match number {
            Some(n) => s.tries = n.max(1),
            None => return false,
        },
        ("ndots", Some(_)) => match number {
            Some(n) => s.ndots = n as usize,
            None => return false,
        },
        ("domain" | "do", Some(v)) => s.search = vec![v.trim_end_matches('.').to_string()],
        ("vc", None) => s.tcp = true,
        ("novc", None) => s.tcp = false,
        ("recurse" | "rec", None) => s.recurse = true,
        ("norecurse" | "norec", None) => s.recurse = false,
        ("search" | "sea", None) => s.use_search = true,
        ("nosearch" | "nosea", None) => s.use_search = false,
        ("fail", None) => s.servfail_stops = true,
        ("nofail", None) => s.servfail_stops = false,
        ("nodebug" | "nod2", None) => {}
        _ => return false,
    }
    true
}
