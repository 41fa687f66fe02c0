//! `getent hosts`, as glibc's `getent` does it: `gethostbyname2(AF_INET6)` first and
//! `gethostbyname2(AF_INET)` only if that fails (so a dual-stack name prints its IPv6 address,
//! and an IPv4-only name costs a full AAAA search walk first), an address key through
//! `gethostbyaddr` (PTR), `%-15s %s` lines with the aliases, and exit 2 when a key is not found.
//! Only the `dns` source of nsswitch is modelled: the pod's `/etc/hosts` is not consulted.

use std::{fmt::Write as _, net::IpAddr};

use hickory_proto::rr::{RData, RecordType};

use super::{CommandOutput, Ctx, text};
use crate::{
    podnet::PodNetwork,
    resolver::{Lookup, Resolver, bare},
};

const TRY_HELP: &str = "Try `getent --help' or `getent --usage' for more information.\n";

/// `getent hosts KEY...`.
pub(super) async fn run(args: &[String], cx: &Ctx<'_>) -> CommandOutput {
    if let Some(bad) = args.iter().find(|a| a.starts_with('-') && a.len() > 1) {
        let shown = bad.trim_start_matches('-');
        let message = if bad.starts_with("--") {
            format!("getent: unrecognized option '{bad}'\n")
        } else {
            format!("getent: invalid option -- '{}'\n", shown.chars().next().unwrap_or('-'))
        };
        return CommandOutput { stdout: String::new(), stderr: format!("{message}{TRY_HELP}"), code: 64 };
    }
    let Some(database) = args.first() else {
        return CommandOutput {
            stdout: TRY_HELP.to_string(),
            stderr: "getent: wrong number of arguments\n".to_string(),
            code: 1,
        };
    };
    if database != "hosts" {
        return CommandOutput {
            stdout: TRY_HELP.to_string(),
            stderr: format!("Unknown database: {database}\n"),
            code: 1,
        };
    }
    let resolver = Resolver::from_resolv_conf(cx.resolv_conf).with_ids(cx.env.ids.clone());
    let mut out = String::new();
    let mut code = 0;
    for key in &args[1..] {
        match key.parse::<IpAddr>() {
            Ok(ip) => match by_addr(&resolver, ip, cx.net).await {
                Some(name) => {
                    let _ = writeln!(out, "{:<15} {name}", ip.to_string());
                }
                None => code = 2,
            },
            Err(_) => {
                let found = match resolver.lookup(key, &[RecordType::AAAA], cx.net).await {
                    Ok(l) if !l.addrs.is_empty() => Some(l),
                    _ => resolver
                        .lookup(key, &[RecordType::A], cx.net)
                        .await
                        .ok()
                        .filter(|l| !l.addrs.is_empty()),
                };
                match found {
                    Some(l) => print_host(&mut out, &l),
                    None => code = 2,
                }
            }
        }
    }
    CommandOutput { stdout: out, stderr: String::new(), code }
}

/// `gethostbyaddr`: the PTR of the reverse name, without its trailing dot.
async fn by_addr(resolver: &Resolver, ip: IpAddr, net: &dyn PodNetwork) -> Option<String> {
    let reverse = text::reverse_name(ip);
    let l = resolver.lookup(&reverse, &[RecordType::PTR], net).await.ok()?;
    l.records.iter().find_map(|r| match &r.data {
        RData::PTR(p) => Some(bare(&p.0)),
        _ => None,
    })
}

/// `print_hosts`: one line per address, `%-15s %s` then the aliases.
fn print_host(out: &mut String, l: &Lookup) {
    for addr in &l.addrs {
        let _ = write!(out, "{:<15} {}", addr.to_string(), l.canonical);
        for alias in &l.aliases {
            out.push(' ');
            out.push_str(alias);
        }
        out.push('\n');
    }
}
