//! iptables-restore input and rule specs, parsed as iptables parses them (its error texts, the
//! line numbers of the first bad line), borrowing names and specs from the input.

use std::{net::IpAddr, sync::Arc};

use ipnet::IpNet;

use super::rule::*;
use crate::{
    Protocol,
    fxhash::{FxHashMap, FxHashSet},
};

/// One table's lines of a restore, borrowed from the input.
pub(super) struct TableOps<'t> {
    pub(super) table: TableName,
    pub(super) declared: FxHashMap<&'t str, Option<&'static str>>,
    pub(super) deleted: FxHashSet<&'t str>,
    pub(super) appends: Vec<Append<'t>>,
}

/// An `-A CHAIN SPEC` line.
pub(super) struct Append<'t> {
    pub(super) line: usize,
    pub(super) chain: &'t str,
    pub(super) spec: &'t str,
}

impl TableOps<'_> {
    pub(super) fn new(table: TableName) -> Self {
        Self { table, declared: FxHashMap::default(), deleted: FxHashSet::default(), appends: Vec::new() }
    }
}

pub(super) fn parse_restore(text: &str) -> Result<Vec<TableOps<'_>>, RestoreError> {
    let mut out = Vec::new();
    let mut cur: Option<TableOps> = None;
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        last_line = line_no;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let err = |error: LineError| RestoreError::Line { line: line_no, error };
        // The common line first: a partial sync at 10,000 Services is 10,000 of them.
        if let Some(rest) = line.strip_prefix("-A ")
            && let Some(ops) = cur.as_mut()
        {
            let rest = rest.trim_start();
            let (chain, spec) = rest.split_once(' ').ok_or_else(|| err(LineError::NoTarget))?;
            ops.appends.push(Append { line: line_no, chain, spec: spec.trim() });
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            if cur.is_some() {
                return Err(err(LineError::TableBeforeCommit));
            }
            let t = TableName::parse(name).ok_or_else(|| err(LineError::NoSuchTable(name.to_string())))?;
            cur = Some(TableOps::new(t));
            continue;
        }
        let Some(ops) = cur.as_mut() else {
            return Err(err(LineError::NoTable(line.to_string())));
        };
        if line == "COMMIT" {
            out.push(cur.take().expect("checked above"));
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut it = decl.split_whitespace();
            let name = it.next().ok_or_else(|| err(LineError::NoChainName))?;
            let policy = match it.next() {
                Some("-") | None => None,
                Some("ACCEPT") => Some("ACCEPT"),
                Some("DROP") => Some("DROP"),
                Some(p) => return Err(err(LineError::BadPolicy(p.to_string()))),
            };
            if ops.table.builtins().contains(&name) != policy.is_some() {
                return Err(err(LineError::PolicyMismatch(name.to_string())));
            }
            if name.len() > 28 {
                return Err(err(LineError::ChainNameTooLong(name.to_string())));
            }
            ops.deleted.remove(name);
            ops.declared.insert(name, policy);
            continue;
        }
        if let Some(name) = line.strip_prefix("-X ") {
            let name = name.trim();
            if ops.table.builtins().contains(&name) {
                return Err(err(LineError::DeleteBuiltin(name.to_string())));
            }
            ops.declared.remove(name);
            ops.deleted.insert(name);
            continue;
        }
        return Err(err(LineError::UnknownCommand(line.to_string())));
    }
    if cur.is_some() {
        return Err(RestoreError::NoCommit(last_line));
    }
    Ok(out)
}

/// Splits a rule spec into words, honouring double quotes as iptables-save writes them.
pub(super) fn words(spec: &str) -> Result<Vec<String>, LineError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = spec.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err(LineError::UnterminatedQuote);
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

pub(super) fn parse_net(s: &str) -> Result<IpNet, LineError> {
    let bad = || LineError::BadNetwork(s.to_string());
    if s.contains('/') {
        s.parse().map_err(|_| bad())
    } else {
        s.parse::<IpAddr>().map(IpNet::from).map_err(|_| bad())
    }
}

pub(super) fn parse_mark(s: &str) -> Result<(u32, u32), LineError> {
    let hex = |v: &str| {
        u32::from_str_radix(v.trim_start_matches("0x"), 16).map_err(|_| LineError::BadMark(s.to_string()))
    };
    match s.split_once('/') {
        Some((v, m)) => Ok((hex(v)?, hex(m)?)),
        None => Ok((hex(s)?, u32::MAX)),
    }
}

/// The `SNAT` target's options from word `i` on: `--to-source` (required) and the flags, in
/// any order. Returns them and the index of the first word that is not one of them.
fn parse_snat(w: &[String], mut i: usize) -> Result<(Snat, usize), LineError> {
    let (mut to, mut ports) = (None, None);
    let (mut random, mut random_fully, mut persistent) = (false, false, false);
    while let Some(word) = w.get(i) {
        match word.as_str() {
            "--to-source" => {
                let v = w.get(i + 1).ok_or_else(|| LineError::MissingArgument(word.clone()))?;
                let (ip, p) = parse_nat_to(v)?;
                (to, ports) = (Some(ip), p);
                i += 2;
                continue;
            }
            "--random" => random = true,
            "--random-fully" => random_fully = true,
            "--persistent" => persistent = true,
            _ => break,
        }
        i += 1;
    }
    let to = to.ok_or(LineError::NoSnatSource)?;
    Ok((Snat { to, ports, random, random_fully, persistent }, i))
}

/// `ADDR[:PORT[-PORT]]`, an IPv6 address in brackets when it has a port (libxt_NAT
/// `parse_to`).
fn parse_nat_to(v: &str) -> Result<(IpAddr, Option<(u16, u16)>), LineError> {
    let bad_addr = || LineError::BadAddress(v.to_string());
    let (addr, ports) = if let Some(rest) = v.strip_prefix('[') {
        let (addr, after) = rest.split_once(']').ok_or_else(bad_addr)?;
        (addr, after.strip_prefix(':'))
    } else if v.matches(':').count() > 1 {
        (v, None)
    } else {
        match v.split_once(':') {
            Some((addr, ports)) => (addr, Some(ports)),
            None => (v, None),
        }
    };
    let ip: IpAddr = addr.parse().map_err(|_| bad_addr())?;
    let ports = match ports {
        None => None,
        Some(p) => {
            let port = |s: &str| s.parse::<u16>().ok().filter(|&n| n != 0);
            let bad_port = || LineError::BadPort(p.to_string());
            let (lo, hi) = match p.split_once('-') {
                Some((lo, hi)) => (port(lo).ok_or_else(bad_port)?, port(hi).ok_or_else(bad_port)?),
                None => {
                    let n = port(p).ok_or_else(bad_port)?;
                    (n, n)
                }
            };
            if hi < lo {
                return Err(bad_port());
            }
            Some((lo, hi))
        }
    };
    Ok((ip, ports))
}

/// Parses one rule spec (`-m tcp -p tcp -d 10.96.0.1 --dport 443 -j KUBE-SVC-...`).
pub fn parse_rule(spec: &str) -> Result<Rule, LineError> {
    let w = words(spec)?;
    let mut m = Match::default();
    let mut target: Option<Target> = None;
    let mut i = 0;
    let mut neg = false;
    let arg = |i: usize| -> Result<&str, LineError> {
        w.get(i + 1).map(String::as_str).ok_or_else(|| LineError::MissingArgument(w[i].clone()))
    };
    while i < w.len() {
        let word = w[i].as_str();
        match word {
            "!" => {
                neg = true;
                i += 1;
                continue;
            }
            "-m" => {
                let module = arg(i)?;
                if !matches!(
                    module,
                    "tcp"
                        | "udp"
                        | "sctp"
                        | "comment"
                        | "statistic"
                        | "recent"
                        | "addrtype"
                        | "mark"
                        | "conntrack"
                ) {
                    return Err(LineError::UnknownMatch(module.to_string()));
                }
                i += 2;
            }
            "-p" => {
                let p = arg(i)?;
                m.protocol = Some(
                    Protocol::parse(&p.to_ascii_uppercase())
                        .ok_or_else(|| LineError::UnknownProtocol(p.to_string()))?,
                );
                i += 2;
            }
            "-s" | "--source" => {
                m.source = Some((neg, parse_net(arg(i)?)?));
                i += 2;
            }
            "-d" | "--destination" => {
                m.destination = Some((neg, parse_net(arg(i)?)?));
                i += 2;
            }
            "-o" | "--out-interface" => {
                let name = arg(i)?;
                // IFNAMSIZ is 16 with the NUL (xtables_parse_interface).
                if name.len() > 15 {
                    return Err(LineError::BadInterface(name.to_string()));
                }
                m.out_interface = Some((neg, Arc::from(name)));
                i += 2;
            }
            "--dport" => {
                let v = arg(i)?;
                m.dport = Some(v.parse().map_err(|_| LineError::BadPort(v.to_string()))?);
                i += 2;
            }
            "--comment" => {
                m.comment = Some(Arc::from(arg(i)?));
                i += 2;
            }
            "--mode" => {
                if arg(i)? != "random" {
                    return Err(LineError::BadMode(arg(i)?.to_string()));
                }
                i += 2;
            }
            "--probability" => {
                let v = arg(i)?;
                let p: f64 = v.parse().map_err(|_| LineError::BadProbability(v.to_string()))?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(LineError::ProbabilityOutOfRange(v.to_string()));
                }
                m.probability = Some(p);
                i += 2;
            }
            "--name" => {
                m.recent.get_or_insert(Recent { name: String::new(), set: false, seconds: None }).name =
                    arg(i)?.to_string();
                i += 2;
            }
            "--rcheck" | "--set" | "--reap" => {
                let r = m.recent.get_or_insert(Recent { name: String::new(), set: false, seconds: None });
                if word == "--set" {
                    r.set = true;
                }
                i += 1;
            }
            "--seconds" => {
                let v = arg(i)?;
                m.recent.get_or_insert(Recent { name: String::new(), set: false, seconds: None }).seconds =
                    Some(v.parse().map_err(|_| LineError::BadSeconds(v.to_string()))?);
                i += 2;
            }
            "--src-type" => {
                if arg(i)? != "LOCAL" {
                    return Err(LineError::UnsupportedAddrType {
                        option: "src-type",
                        value: arg(i)?.to_string(),
                    });
                }
                m.src_local = Some(!neg);
                i += 2;
            }
            "--dst-type" => {
                if arg(i)? != "LOCAL" {
                    return Err(LineError::UnsupportedAddrType {
                        option: "dst-type",
                        value: arg(i)?.to_string(),
                    });
                }
                m.dst_local = Some(!neg);
                i += 2;
            }
            "--mark" => {
                let (v, mask) = parse_mark(arg(i)?)?;
                m.mark = Some((neg, v, mask));
                i += 2;
            }
            "--ctstate" => {
                m.ctstate = Some((neg, CtStates::parse(arg(i)?)?));
                i += 2;
            }
            "-j" | "--jump" => {
                let t = arg(i)?;
                i += 2;
                target = Some(match t {
                    "DNAT" => {
                        if w.get(i).map(String::as_str) != Some("--to-destination") {
                            return Err(LineError::NoDnatDestination);
                        }
                        let to = arg(i)?;
                        i += 2;
                        Target::Dnat(to.parse().map_err(|_| LineError::BadAddress(to.to_string()))?)
                    }
                    "REJECT" => {
                        if w.get(i).map(String::as_str) == Some("--reject-with") {
                            i += 2;
                        }
                        Target::Reject
                    }
                    "DROP" => Target::Drop,
                    "ACCEPT" => Target::Accept,
                    "RETURN" => Target::Return,
                    "SNAT" => {
                        let (snat, next) = parse_snat(&w, i)?;
                        i = next;
                        Target::Snat(snat)
                    }
                    "MASQUERADE" => {
                        if w.get(i).map(String::as_str) == Some("--random-fully") {
                            i += 1;
                        }
                        Target::Masquerade
                    }
                    "MARK" => {
                        let opt = w.get(i).map(String::as_str).unwrap_or("");
                        let v = parse_mark(arg(i)?)?.0;
                        i += 2;
                        match opt {
                            "--or-mark" => Target::Mark { or: v, xor: 0 },
                            "--xor-mark" => Target::Mark { or: 0, xor: v },
                            "--set-xmark" => Target::Mark { or: 0, xor: v },
                            o => return Err(LineError::UnknownMarkOption(o.to_string())),
                        }
                    }
                    chain if chain.starts_with(|c: char| c.is_ascii_uppercase()) => {
                        Target::Jump(Arc::from(chain))
                    }
                    other => return Err(LineError::UnknownTarget(other.to_string())),
                });
            }
            other => return Err(LineError::UnknownOption(other.to_string())),
        }
        neg = false;
    }
    if m.recent.as_ref().is_some_and(|r| r.name.is_empty()) {
        return Err(LineError::NoRecentName);
    }
    let target = target.ok_or(LineError::NoJump)?;
    Ok(Rule { spec: spec.to_string(), matches: m, target })
}
