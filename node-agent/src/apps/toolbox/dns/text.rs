//! BIND's presentation format (`lib/dns/masterdump.c`, `rdata.c`), which dig prints records in
//! and nslookup/host print rdata in: the tab-stop layout of the columns, the rdata text of each
//! type, and the names of types (rcode names are the resolver's: `message::rcode_name`).

use std::fmt::Write as _;

use hickory_proto::rr::{Name, RData, Record, RecordType};

/// dig's default columns: TTL at 24, class at 32, type at 40, rdata at 48 (tab width 8).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns {
    pub ttl: usize,
    pub class: usize,
    pub rtype: usize,
    pub rdata: usize,
}

/// dig's `dns_master_stylecreate(..., 24, 32, 40, 48, ...)`.
pub(crate) const DIG_COLUMNS: Columns = Columns { ttl: 24, class: 32, rtype: 40, rdata: 48 };

/// masterdump.c's `indent()`: tabs to the last tab stop before `to`, then spaces; always at
/// least one character.
pub(crate) fn indent(out: &mut String, column: &mut usize, to: usize) {
    let from = *column;
    let to = to.max(from + 1);
    let tabs = to / 8 - from / 8;
    let mut at = from;
    if tabs > 0 {
        out.extend(std::iter::repeat_n('\t', tabs));
        at = (to / 8) * 8;
    }
    out.extend(std::iter::repeat_n(' ', to - at));
    *column = to;
}

/// A name as BIND prints it: ASCII (IDNA `xn--`), escaped, with the trailing dot.
pub(crate) fn name(n: &Name) -> String {
    let s = n.to_ascii();
    if s.ends_with('.') { s } else { format!("{s}.") }
}

/// One record line: `name TTL IN TYPE rdata`.
pub(crate) fn record_line(r: &Record, cols: Columns) -> String {
    let mut out = name(&r.name);
    let mut column = out.len();
    indent(&mut out, &mut column, cols.ttl);
    push(&mut out, &mut column, &r.ttl.to_string());
    indent(&mut out, &mut column, cols.class);
    push(&mut out, &mut column, "IN");
    indent(&mut out, &mut column, cols.rtype);
    push(&mut out, &mut column, &type_name(r.record_type()));
    indent(&mut out, &mut column, cols.rdata);
    out.push_str(&rdata(&r.data));
    out
}

/// The question line without its leading `;`: `name IN TYPE` (the `;` is not counted).
pub(crate) fn question_line(qname: &Name, rtype: RecordType, cols: Columns) -> String {
    let mut out = name(qname);
    let mut column = out.len();
    indent(&mut out, &mut column, cols.class);
    push(&mut out, &mut column, "IN");
    indent(&mut out, &mut column, cols.rtype);
    out.push_str(&type_name(rtype));
    out
}

fn push(out: &mut String, column: &mut usize, s: &str) {
    out.push_str(s);
    *column += s.len();
}

/// A record type's mnemonic, `TYPE65280` for unknown ones.
pub(crate) fn type_name(t: RecordType) -> String {
    match t {
        RecordType::Unknown(n) => format!("TYPE{n}"),
        other => other.to_string(),
    }
}

/// Parses a type mnemonic (any case) as dig does; `TYPEnnn` too.
pub(crate) fn parse_type(s: &str) -> Option<RecordType> {
    let upper = s.to_ascii_uppercase();
    if let Some(n) = upper.strip_prefix("TYPE") {
        return n.parse::<u16>().ok().map(RecordType::from);
    }
    let t: RecordType = upper.parse().ok()?;
    match t {
        RecordType::Unknown(_) => None,
        t => Some(t),
    }
}

/// The rdata text of a record, as `dns_rdata_totext` prints it.
pub(crate) fn rdata(d: &RData) -> String {
    match d {
        RData::A(a) => a.0.to_string(),
        RData::AAAA(a) => a.0.to_string(),
        RData::CNAME(n) => name(&n.0),
        RData::NS(n) => name(&n.0),
        RData::PTR(n) => name(&n.0),
        RData::MX(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::SRV(srv) => format!("{} {} {} {}", srv.priority, srv.weight, srv.port, name(&srv.target)),
        RData::SOA(soa) => format!(
            "{} {} {} {} {} {} {}",
            name(&soa.mname),
            name(&soa.rname),
            soa.serial,
            soa.refresh,
            soa.retry,
            soa.expire,
            soa.minimum
        ),
        RData::TXT(txt) => txt.txt_data.iter().map(|s| quoted(s)).collect::<Vec<_>>().join(" "),
        other => other.to_string(),
    }
}

/// A character-string in quotes, `"` and `\` escaped, non-printables as `\DDD`.
fn quoted(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03}");
            }
        }
    }
    out.push('"');
    out
}

/// The reverse-lookup name of an address (`20.0.96.10.in-addr.arpa.`, nibbles under `ip6.arpa.`).
pub(crate) fn reverse_name(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        std::net::IpAddr::V6(v6) => {
            let mut s = String::new();
            for byte in v6.octets().iter().rev() {
                let _ = write!(s, "{:x}.{:x}.", byte & 0xf, byte >> 4);
            }
            s.push_str("ip6.arpa.");
            s
        }
    }
}
