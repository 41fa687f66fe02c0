//! `host`, as BIND 9.18 prints it (`bin/dig/host.c`): A through the search list, then AAAA
//! and MX for the end of the CNAME chain, one sentence per record (`has address`, `is an alias
//! for`, ...), `Host NAME not found: 3(NXDOMAIN)` and exit 1.

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

/// The version `host -V` reports.
const HOST_VERSION: &str = super::dig::DIG_VERSION;

const USAGE: &str = "Usage: host [-aCdilrTvVw] [-c class] [-N ndots] [-t type] [-W time]
            [-R number] [-m flag] [-p port] hostname [server]
       -a is equivalent to -v -t ANY
       -A is like -a but omits RRSIG, NSEC, NSEC3
       -c specifies query class for non-IN data
       -C compares SOA records on authoritative nameservers
       -d is equivalent to -v
       -l lists all hosts in a domain, using AXFR
       -m set memory debugging flag (trace|record|usage)
       -N changes the number of dots allowed before root lookup is done
       -p specifies the port on the server to query
       -r disables recursive processing
       -R specifies number of retries for UDP packets
       -s a SERVFAIL response should stop query
       -t specifies the query type
       -T enables TCP/IP mode
       -U enables UDP mode
       -v enables verbose output
       -V print version number and exit
       -w specifies to wait forever for a reply
       -W specifies how long to wait for a reply
       -4 use IPv4 query transport only
       -6 use IPv6 query transport only
";

/// `host [-t type] [-W time] [-R number] [-p port] [-N ndots] [-sTUrw46] NAME [SERVER]`.
pub(super) async fn run(args: &[String], cx: &Ctx<'_>) -> CommandOutput {
    let mut s = Settings::new(Tool::Host, cx);
    let usage =
        |prefix: String| CommandOutput { stdout: String::new(), stderr: format!("{prefix}{USAGE}"), code: 1 };
    let mut list_type: Option<RecordType> = None;
    let mut port: Option<u16> = None;
    let mut positional: Vec<String> = Vec::new();
    let mut i = 0;
    // getopt(3): options until the first operand, clustered flags, values attached or next.
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty() && positional.is_empty()) else {
            positional.push(arg.clone());
            continue;
        };
        for (at, c) in flags.char_indices() {
            let rest = &flags[at + c.len_utf8()..];
            match c {
                's' => s.servfail_stops = true,
                'T' => s.tcp = true,
                'U' => s.tcp = false,
                'r' => s.recurse = false,
                'w' => s.timeout = std::time::Duration::from_secs(u64::from(u32::MAX)),
                '4' | '6' => {}
                'V' => {
                    return CommandOutput {
                        stdout: format!("host {HOST_VERSION}\n"),
                        stderr: String::new(),
                        code: 0,
                    };
                }
                't' | 'W' | 'R' | 'p' | 'N' | 'c' => {
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else if let Some(v) = args.get(i) {
                        i += 1;
                        v.clone()
                    } else {
                        return usage(format!("host: option requires an argument -- {c}\n"));
                    };
                    let number = value.parse::<u32>().ok();
                    match (c, number) {
                        ('t', _) => match text::parse_type(&value) {
                            Some(t) => list_type = Some(t),
                            None => {
                                return CommandOutput {
                                    stdout: String::new(),
                                    stderr: format!("host: invalid type: {value}\n"),
                                    code: 1,
                                };
                            }
                        },
                        ('W', Some(n)) => s.timeout = std::time::Duration::from_secs(u64::from(n.max(1))),
                        ('R', Some(n)) => s.tries = n.saturating_add(1),
                        ('p', Some(n)) if u16::try_from(n).is_ok() => port = u16::try_from(n).ok(),
                        ('N', Some(n)) => s.ndots = n as usize,
                        ('c', _) if value.eq_ignore_ascii_case("IN") => {}
                        _ => return usage(String::new()),
                    }
                    break;
                }
                other => return usage(format!("host: illegal option -- {other}\n")),
            }
        }
    }
    let Some(name) = positional.first().cloned() else {
        return usage(String::new());
    };
    let mut out = String::new();
    if let Err(e) = s.use_server(positional.get(1).map(String::as_str), port) {
        return CommandOutput { stdout: String::new(), stderr: format!("host: {e}\n"), code: 1 };
    }
    if let Some(server) = positional.get(1) {
        let _ = write!(
            out,
            "Using domain server:\nName: {server}\nAddress: {}#{}\nAliases: \n\n",
            s.servers[0].addr.ip(),
            s.servers[0].addr.port()
        );
    }

    let (textname, first_type) = match name.parse::<std::net::IpAddr>() {
        // An address is always looked up in reverse, whatever -t says.
        Ok(ip) => {
            s.use_search = false;
            (text::reverse_name(ip), RecordType::PTR)
        }
        Err(_) => (name.clone(), list_type.unwrap_or(RecordType::A)),
    };
    let searched = match dighost::search(&s, &textname, first_type, cx.net, &mut out).await {
        Ok(searched) => searched,
        Err(bad) => {
            return CommandOutput { stdout: out, stderr: format!("host: {bad}\n"), code: 1 };
        }
    };
    let mut failed = false;
    match (searched.unreached, searched.replies.last()) {
        (None, Some(a)) => {
            let ok = print_reply(&mut out, a, &textname, list_type.is_some());
            failed |= !ok;
            // With no -t, the A lookup is followed by AAAA and MX for the chain's end.
            if ok && list_type.is_none() && first_type == RecordType::A {
                let (chain, _) = follow(&a.qname, RecordType::A, &a.message.answers);
                let chased = chain.last().cloned().unwrap_or_else(|| a.qname.clone());
                for t in [RecordType::AAAA, RecordType::MX] {
                    failed |= !follow_up(&s, &chased, t, cx.net, &mut out).await;
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
    CommandOutput { stdout: out, stderr: String::new(), code: i32::from(failed) }
}

/// One follow-up query (AAAA, MX) of the default lookup; false when it failed.
async fn follow_up(
    s: &Settings,
    qname: &Name,
    rtype: RecordType,
    net: &dyn PodNetwork,
    out: &mut String,
) -> bool {
    let textname = bare(qname);
    match dighost::query(s, qname, rtype, &textname, net, out).await {
        Ok(a) => print_reply(out, &a, &textname, false),
        Err(u) => {
            if !u.tcp_refused {
                out.push_str(";; no servers could be reached\n");
            }
            false
        }
    }
}

/// Prints one reply; false when its rcode is an error.
fn print_reply(out: &mut String, a: &Answer, textname: &str, explicit_type: bool) -> bool {
    let rcode = a.message.metadata.response_code;
    if rcode != ResponseCode::NoError {
        // NXDOMAIN names the name as typed; other errors the name that was sent.
        let shown = if rcode == ResponseCode::NXDomain { textname.to_string() } else { bare(&a.qname) };
        let _ = writeln!(out, "Host {shown} not found: {}({})", u16::from(rcode), message::rcode_name(rcode));
        return false;
    }
    if a.message.answers.is_empty() {
        if explicit_type {
            let _ = writeln!(out, "{} has no {} record", bare(&a.qname), text::type_name(a.rtype));
        }
        return true;
    }
    for r in &a.message.answers {
        out.push_str(&sentence(r));
        out.push('\n');
    }
    true
}

/// host's sentence for one record.
fn sentence(r: &Record) -> String {
    let owner = bare(&r.name);
    let rdata = text::rdata(&r.data);
    match &r.data {
        RData::A(_) => format!("{owner} has address {rdata}"),
        RData::AAAA(_) => format!("{owner} has IPv6 address {rdata}"),
        RData::CNAME(_) => format!("{owner} is an alias for {rdata}"),
        RData::MX(_) => format!("{owner} mail is handled by {rdata}"),
        RData::PTR(_) => format!("{owner} domain name pointer {rdata}"),
        RData::NS(_) => format!("{owner} name server {rdata}"),
        RData::TXT(_) => format!("{owner} descriptive text {rdata}"),
        RData::SRV(_) => format!("{owner} has SRV record {rdata}"),
        RData::SOA(_) => format!("{owner} has SOA record {rdata}"),
        _ => format!("{owner} has {} record {rdata}", text::type_name(r.record_type())),
    }
}
