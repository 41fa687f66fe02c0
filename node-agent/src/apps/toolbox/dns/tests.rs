//! Tests for the DNS commands against [`FakeDns`]. The expected outputs were taken from the
//! real BIND 9.18 tools and glibc 2.36 run against an equivalent server; `interop` re-checks
//! dig's against the real binary when it is installed.

use std::{
    net::{Ipv4Addr, SocketAddr},
    sync::{Arc, atomic::AtomicU16},
    time::Duration,
};

use hickory_proto::rr::{RData, Record, RecordType, rdata::A};

use super::{dig, getent, host, nslookup, text, *};
use crate::{
    podnet::{Connected, Error, ErrorKind, PodNetwork},
    resolver::{
        Ids,
        fake::{DNS, FakeDns, Mode, RESOLV_CONF, addr, name},
    },
};

/// A run in a pod with `resolv_conf` on `net`, with ids from 100 and a fixed clock.
fn cx<'a>(resolv_conf: &'a str, net: &'a dyn PodNetwork) -> Ctx<'a> {
    let env = Env {
        ids: Ids::Sequence(Arc::new(AtomicU16::new(100))),
        now: Some("2026-11-26T08:31:14Z".parse().unwrap()),
    };
    Ctx { resolv_conf, net, env }
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

// --- nslookup ---

#[tokio::test]
async fn nslookup_short_name() {
    let dns = FakeDns::new();
    let out = nslookup::run(&args("cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

Name:\tcart.shop.svc.cluster.local
Address: 10.96.0.20
;; Got recursion not available from 10.96.0.10

"
    );
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    assert_eq!(dns.queries(), ["cart.shop.svc.cluster.local. A", "cart.shop.svc.cluster.local. AAAA"]);
}

#[tokio::test]
async fn nslookup_nxdomain_walks_the_search_list() {
    let dns = FakeDns::new();
    let out = nslookup::run(&args("nope"), &cx(RESOLV_CONF, &dns)).await;
    let comment = ";; Got recursion not available from 10.96.0.10\n";
    assert_eq!(
        out.stdout,
        format!(
            "{}Server:\t\t10.96.0.10\nAddress:\t10.96.0.10#53\n\n** server can't find nope: NXDOMAIN\n\n",
            comment.repeat(5)
        )
    );
    assert_eq!(out.code, 1);
    // BIND's search: A only, continued on NXDOMAIN.
    assert_eq!(
        dns.queries(),
        [
            "nope.shop.svc.cluster.local. A",
            "nope.svc.cluster.local. A",
            "nope.cluster.local. A",
            "nope.us-east-1.compute.internal. A",
            "nope. A"
        ]
    );
}

#[tokio::test]
async fn nslookup_cname_dual_stack_and_nodata() {
    let dns = FakeDns::new();
    let out = nslookup::run(&args("ext"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

ext.shop.svc.cluster.local\tcanonical name = example.com.
Name:\texample.com
Address: 93.184.215.14
;; Got recursion not available from 10.96.0.10

"
    );
    assert_eq!(dns.queries(), ["ext.shop.svc.cluster.local. A", "example.com. AAAA"]);

    let out = nslookup::run(&args("dual"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

Name:\tdual.shop.svc.cluster.local
Address: 10.96.0.22
;; Got recursion not available from 10.96.0.10
Name:\tdual.shop.svc.cluster.local
Address: fd00:10:96::22

"
    );

    let out = nslookup::run(&args("nodata"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

;; Got recursion not available from 10.96.0.10
*** Can't find nodata.shop.svc.cluster.local: No answer

"
    );
    assert_eq!(out.code, 0);
}

#[tokio::test]
async fn nslookup_servfail_stops_the_search() {
    let out = nslookup::run(&args("sf"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(
        out.stdout,
        ";; Got SERVFAIL reply from 10.96.0.10
Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

** server can't find sf.shop.svc.cluster.local: SERVFAIL

"
    );
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn nslookup_timeout() {
    let dns = FakeDns::new().mode(DNS, Mode::Silent);
    let out = nslookup::run(&args("cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out
;; no servers could be reached

"
    );
    assert_eq!(out.code, 1);
    assert!(dns.seen().iter().all(|s| s.timeout == Duration::from_secs(5)));
}

#[tokio::test]
async fn nslookup_with_server_type_and_reverse() {
    let dns = FakeDns::new();
    let out = nslookup::run(
        &args("-type=AAAA cart.shop.svc.cluster.local 10.96.0.10"),
        &cx("nameserver 1.1.1.1\n", &dns),
    )
    .await;
    // A server named on the command line is not checked for RA.
    assert_eq!(
        out.stdout,
        "Server:\t\t10.96.0.10
Address:\t10.96.0.10#53

*** Can't find cart.shop.svc.cluster.local: No answer

"
    );
    assert_eq!(dns.seen()[0].server, addr(DNS));

    let out = nslookup::run(&args("10.96.0.20"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(
        out.stdout,
        ";; Got recursion not available from 10.96.0.10
20.0.96.10.in-addr.arpa\tname = cart.shop.svc.cluster.local.

"
    );
    assert_eq!(out.code, 0);
}

#[tokio::test]
async fn nslookup_bad_option_and_no_name() {
    let out = nslookup::run(&args("-bogus cart"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert!(out.stdout.starts_with("*** Invalid option: bogus\n;; Got recursion"));
    assert_eq!(out.code, 0);
    let out = nslookup::run(&[], &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!((out.stdout.as_str(), out.code), ("\n", 1));
}

// --- host ---

#[tokio::test]
async fn host_found_follows_up_with_aaaa_and_mx() {
    let dns = FakeDns::new();
    let out = host::run(&args("cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(out.stdout, "cart.shop.svc.cluster.local has address 10.96.0.20\n");
    assert_eq!(out.code, 0);
    assert_eq!(
        dns.queries(),
        [
            "cart.shop.svc.cluster.local. A",
            "cart.shop.svc.cluster.local. AAAA",
            "cart.shop.svc.cluster.local. MX"
        ]
    );

    let dns = FakeDns::new();
    let out = host::run(&args("ext"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        "ext.shop.svc.cluster.local is an alias for example.com.\nexample.com has address 93.184.215.14\n"
    );
    assert_eq!(dns.queries(), ["ext.shop.svc.cluster.local. A", "example.com. AAAA", "example.com. MX"]);

    let out = host::run(&args("dual"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(
        out.stdout,
        "dual.shop.svc.cluster.local has address 10.96.0.22\ndual.shop.svc.cluster.local has IPv6 address fd00:10:96::22\n"
    );
}

#[tokio::test]
async fn host_not_found() {
    let dns = FakeDns::new();
    let out = host::run(&args("nope"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(out.stdout, "Host nope not found: 3(NXDOMAIN)\n");
    assert_eq!(out.code, 1);
    assert_eq!(dns.queries().len(), 5);

    let out = host::run(&args("sf"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(out.stdout, "Host sf.shop.svc.cluster.local not found: 2(SERVFAIL)\n");
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn host_with_type_and_server() {
    let out =
        host::run(&args("-t AAAA cart.shop.svc.cluster.local 10.96.0.10"), &cx(RESOLV_CONF, &FakeDns::new()))
            .await;
    assert_eq!(
        out.stdout,
        "Using domain server:\nName: 10.96.0.10\nAddress: 10.96.0.10#53\nAliases: \n\ncart.shop.svc.cluster.local has no AAAA record\n"
    );
    let out = host::run(&args("10.96.0.20"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(out.stdout, "20.0.96.10.in-addr.arpa domain name pointer cart.shop.svc.cluster.local.\n");
}

#[tokio::test]
async fn host_timeout_and_usage() {
    let dns = FakeDns::new().mode(DNS, Mode::Silent);
    let out = host::run(&args("cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.96.0.10#53: timed out\n;; communications error to 10.96.0.10#53: timed out\n;; no servers could be reached\n"
    );
    assert_eq!(out.code, 1);

    let out = host::run(&args("-z cart"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert!(out.stderr.starts_with("host: illegal option -- z\nUsage: host [-aCdilrTvVw]"));
    assert_eq!((out.stdout.as_str(), out.code), ("", 1));
    let out = host::run(&[], &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert!(out.stderr.starts_with("Usage: host"));
    assert_eq!(out.code, 1);
}

// --- getent ---

#[tokio::test]
async fn getent_hosts_asks_aaaa_through_the_whole_walk_first() {
    let dns = FakeDns::new();
    let out = getent::run(&args("hosts cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(out.stdout, "10.96.0.20      cart.shop.svc.cluster.local\n");
    assert_eq!(out.code, 0);
    assert_eq!(
        dns.queries(),
        [
            "cart.shop.svc.cluster.local. AAAA",
            "cart.svc.cluster.local. AAAA",
            "cart.cluster.local. AAAA",
            "cart.us-east-1.compute.internal. AAAA",
            "cart. AAAA",
            "cart.shop.svc.cluster.local. A",
        ]
    );
}

#[tokio::test]
async fn getent_hosts_lines() {
    let run = |key: &'static str| async move {
        getent::run(&args(&format!("hosts {key}")), &cx(RESOLV_CONF, &FakeDns::new())).await
    };
    assert_eq!(run("dual").await.stdout, "fd00:10:96::22  dual.shop.svc.cluster.local\n");
    assert_eq!(
        run("multi").await.stdout,
        "10.244.1.5      multi.shop.svc.cluster.local\n10.244.2.7      multi.shop.svc.cluster.local\n"
    );
    assert_eq!(run("ext").await.stdout, "93.184.215.14   example.com ext.shop.svc.cluster.local\n");
    assert_eq!(run("10.96.0.20").await.stdout, "10.96.0.20      cart.shop.svc.cluster.local\n");
    let nope = run("nope").await;
    assert_eq!((nope.stdout.as_str(), nope.stderr.as_str(), nope.code), ("", "", 2));
}

#[tokio::test]
async fn getent_usage_errors() {
    let dns = FakeDns::new();
    let out = getent::run(&args("passwdx root"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out,
        CommandOutput {
            stdout: "Try `getent --help' or `getent --usage' for more information.\n".into(),
            stderr: "Unknown database: passwdx\n".into(),
            code: 1
        }
    );
    let out = getent::run(&[], &cx(RESOLV_CONF, &dns)).await;
    assert_eq!((out.stderr.as_str(), out.code), ("getent: wrong number of arguments\n", 1));
    let out = getent::run(&args("-x hosts a"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        (out.stderr.as_str(), out.code),
        (
            "getent: invalid option -- 'x'\nTry `getent --help' or `getent --usage' for more information.\n",
            64
        )
    );
}

// --- dig ---

/// dig's full output for one UDP reply from 10.96.0.10, id 100.
fn dig_block(cmd: &str, header: &str, body: &str, size: usize) -> String {
    format!(
        "\n; <<>> DiG 9.18.39 <<>> {cmd}\n;; global options: +cmd\n;; Got answer:\n{header}\n;; OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 1232\n{body};; Query time: 0 msec\n;; SERVER: 10.96.0.10#53(10.96.0.10) (UDP)\n;; WHEN: Thu Nov 26 08:31:14 UTC 2026\n;; MSG SIZE  rcvd: {size}\n\n"
    )
}

const MDNS: &str = ";; WARNING: .local is reserved for Multicast DNS\n;; You are currently testing what happens when an mDNS query is leaked to DNS\n";

#[tokio::test]
async fn dig_full_output() {
    let dns = FakeDns::new();
    let out = dig::run(&args("cart.shop.svc.cluster.local"), &cx(RESOLV_CONF, &dns)).await;
    let want = dig_block(
        "cart.shop.svc.cluster.local",
        &format!(
            "{MDNS};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 100\n;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n"
        ),
        ";; QUESTION SECTION:\n;cart.shop.svc.cluster.local.\tIN\tA\n\n;; ANSWER SECTION:\ncart.shop.svc.cluster.local. 30\tIN\tA\t10.96.0.20\n\n",
        72,
    );
    assert_eq!(out.stdout, want);
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
    // No search list without +search; a client cookie in the OPT record.
    let seen = dns.seen();
    assert_eq!(dns.queries(), ["cart.shop.svc.cluster.local. A"]);
    let options = &seen[0].edns.as_ref().unwrap().1;
    assert_eq!(options.len(), 1);
    assert_eq!((options[0].0, options[0].1.len()), (10, 8));
}

#[tokio::test]
async fn dig_nxdomain_without_search() {
    let dns = FakeDns::new();
    let out = dig::run(&args("cart"), &cx(RESOLV_CONF, &dns)).await;
    let want = dig_block(
        "cart",
        ";; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 100\n;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n",
        ";; QUESTION SECTION:\n;cart.\t\t\t\tIN\tA\n\n;; AUTHORITY SECTION:\ncluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30\n\n",
        100,
    );
    assert_eq!(out.stdout, want);
    assert_eq!(out.code, 0, "dig exits 0 on NXDOMAIN");
    assert_eq!(dns.queries(), ["cart. A"]);
}

#[tokio::test]
async fn dig_short_answer_only_and_search() {
    let dns = FakeDns::new();
    let out = dig::run(&args("+short +search cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(out.stdout, "10.96.0.20\n");
    assert_eq!(dns.queries(), ["cart.shop.svc.cluster.local. A"]);

    let out = dig::run(&args("+short ext.shop.svc.cluster.local"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(out.stdout, "example.com.\n93.184.215.14\n");

    let out =
        dig::run(&args("+noall +answer multi.shop.svc.cluster.local"), &cx(RESOLV_CONF, &FakeDns::new()))
            .await;
    assert_eq!(
        out.stdout,
        "multi.shop.svc.cluster.local. 30 IN\tA\t10.244.1.5\nmulti.shop.svc.cluster.local. 30 IN\tA\t10.244.2.7\n"
    );

    let out = dig::run(&args("+short nope.x"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!((out.stdout.as_str(), out.code), ("", 0));
}

#[tokio::test]
async fn dig_showsearch_prints_every_candidate() {
    let dns = FakeDns::new();
    let out = dig::run(&args("+showsearch cart.other"), &cx(RESOLV_CONF, &dns)).await;
    let first = dig_block(
        "+showsearch cart.other",
        &format!(
            "{MDNS};; ->>HEADER<<- opcode: QUERY, status: NXDOMAIN, id: 100\n;; flags: qr aa rd; QUERY: 1, ANSWER: 0, AUTHORITY: 1, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n"
        ),
        ";; QUESTION SECTION:\n;cart.other.shop.svc.cluster.local. IN\tA\n\n;; AUTHORITY SECTION:\ncluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 1700000000 7200 1800 86400 30\n\n",
        116,
    );
    let second = dig_block(
        "+showsearch cart.other",
        &format!(
            "{MDNS};; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 101\n;; flags: qr aa rd; QUERY: 1, ANSWER: 1, AUTHORITY: 0, ADDITIONAL: 1\n;; WARNING: recursion requested but not available\n"
        ),
        ";; QUESTION SECTION:\n;cart.other.svc.cluster.local.\tIN\tA\n\n;; ANSWER SECTION:\ncart.other.svc.cluster.local. 30 IN\tA\t10.96.0.21\n\n",
        73,
    );
    assert_eq!(out.stdout, format!("{first}{second}"));
}

#[tokio::test]
async fn dig_tcp_truncation_and_reverse() {
    let out = dig::run(
        &args("+tcp +noall +answer +stats cart.shop.svc.cluster.local"),
        &cx(RESOLV_CONF, &FakeDns::new()),
    )
    .await;
    assert!(out.stdout.contains(";; SERVER: 10.96.0.10#53(10.96.0.10) (TCP)\n"), "{}", out.stdout);

    let dns = FakeDns::new();
    let out = dig::run(&args("+noall +answer big.shop.svc.cluster.local"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; Truncated, retrying in TCP mode.\nbig.shop.svc.cluster.local. 30\tIN\tA\t10.96.0.30\n"
    );
    let tcp: Vec<bool> = dns.seen().iter().map(|s| s.tcp).collect();
    assert_eq!(tcp, [false, true]);

    let out = dig::run(&args("+short -x 10.96.0.20"), &cx(RESOLV_CONF, &FakeDns::new())).await;
    assert_eq!(out.stdout, "cart.shop.svc.cluster.local.\n");
}

#[tokio::test]
async fn dig_timeout_and_refused() {
    let dns = FakeDns::new().mode(DNS, Mode::Silent);
    let out = dig::run(&args("cart.shop.svc.cluster.local"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out
;; communications error to 10.96.0.10#53: timed out

; <<>> DiG 9.18.39 <<>> cart.shop.svc.cluster.local
;; global options: +cmd
;; no servers could be reached
"
    );
    assert_eq!(out.code, 9);

    let dns = FakeDns::new().mode(DNS, Mode::Refuse);
    let out = dig::run(&args("@10.96.0.10 +tcp cart"), &cx(RESOLV_CONF, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; Connection to 10.96.0.10#53(10.96.0.10) for cart failed: connection refused.\n;; no servers could be reached\n".repeat(3)
    );
    assert_eq!(out.code, 9);
}

#[tokio::test]
async fn dig_tries_first_server_then_one_send_each_other() {
    let conf = "nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions timeout:1 attempts:2\n";
    let dns = FakeDns::new().mode("10.0.0.1:53", Mode::Silent).mode("10.0.0.2:53", Mode::Silent);
    let out = dig::run(&args("cart.x"), &cx(conf, &dns)).await;
    assert_eq!(
        out.stdout,
        ";; communications error to 10.0.0.1#53: timed out
;; communications error to 10.0.0.1#53: timed out
;; communications error to 10.0.0.2#53: timed out

; <<>> DiG 9.18.39 <<>> cart.x
;; global options: +cmd
;; no servers could be reached
"
    );
    assert!(dns.seen().iter().all(|s| s.timeout == Duration::from_secs(1)));
}

#[tokio::test]
async fn dig_server_port_options_and_traceparent() {
    let mut dns = FakeDns::new();
    dns.echo_options = true;
    dns.traceparent = Some("00-ab".to_string());
    let out =
        dig::run(&args("@10.96.0.10 -p 5353 +nocookie cart.shop.svc.cluster.local"), &cx(RESOLV_CONF, &dns))
            .await;
    assert!(out.stdout.starts_with(
        "\n; <<>> DiG 9.18.39 <<>> @10.96.0.10 -p 5353 +nocookie cart.shop.svc.cluster.local\n; (1 server found)\n;; global options: +cmd\n"
    ));
    assert!(
        out.stdout
            .contains("; EDNS: version: 0, flags:; udp: 1232\n; OPT=65001: 30 30 2d 61 62 (\"00-ab\")\n;; QUESTION SECTION:\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(";; SERVER: 10.96.0.10#5353(10.96.0.10) (UDP)\n"));
    assert_eq!(dns.seen()[0].server, addr("10.96.0.10:5353"));
}

#[tokio::test]
async fn dig_echoed_cookie() {
    let mut dns = FakeDns::new();
    dns.echo_options = true;
    let out = dig::run(&args("+noall +comments cart.shop.svc.cluster.local"), &cx(RESOLV_CONF, &dns)).await;
    let seen = dns.seen();
    let cookie = &seen[0].edns.as_ref().unwrap().1[0].1;
    let hex: String = cookie.iter().map(|b| format!("{b:02x}")).collect();
    assert!(out.stdout.contains(&format!("; COOKIE: {hex} (echoed)\n")), "{}", out.stdout);
}

#[tokio::test]
async fn dig_usage_errors() {
    for bad in ["+bogus", "-z"] {
        let out = dig::run(&args(&format!("{bad} cart")), &cx(RESOLV_CONF, &FakeDns::new())).await;
        assert_eq!(out.code, 1);
        assert!(out.stdout.is_empty());
        assert!(
            out.stderr.starts_with(&format!(
                "Invalid option: {bad}\nUsage:  dig [@global-server] [domain] [q-type] [q-class] {{q-opt}}\n"
            )),
            "{}",
            out.stderr
        );
    }
}

#[test]
fn presentation_columns() {
    let mut out = String::new();
    let mut col = 0;
    text::indent(&mut out, &mut col, 24);
    assert_eq!((out.as_str(), col), ("\t\t\t", 24));
    let r = Record::from_rdata(name("example.com."), 300, RData::A(A(Ipv4Addr::new(93, 184, 215, 14))));
    assert_eq!(text::record_line(&r, text::DIG_COLUMNS), "example.com.\t\t300\tIN\tA\t93.184.215.14");
    assert_eq!(
        text::question_line(&name("example.com."), RecordType::A, text::DIG_COLUMNS),
        "example.com.\t\t\tIN\tA"
    );
    assert_eq!(
        text::reverse_name("fd00::1".parse().unwrap()),
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa."
    );
}

/// Checks our dig against the real one (BIND 9.18, Debian's `dnsutils`, which .ci/run installs): both ask
/// the same fake, served on real sockets; ids, times, dates and the version are normalised.
#[tokio::test]
async fn interop_with_real_dig() {
    let dns = Arc::new(FakeDns::new());
    let port = serve(dns.clone()).await;
    let conf = "nameserver 127.0.0.1\n";
    let cases = [
        "cart.shop.svc.cluster.local",
        "nope.shop.svc.cluster.local",
        "ext.shop.svc.cluster.local",
        "dual.shop.svc.cluster.local AAAA",
        "nodata.shop.svc.cluster.local TXT",
        "sf.shop.svc.cluster.local",
        "cart.other.svc.cluster.local",
        "+noall +answer multi.shop.svc.cluster.local",
        "+short ext.shop.svc.cluster.local",
        "-x 10.96.0.20",
        "+tcp cart.shop.svc.cluster.local",
        "example.com",
        "cart",
    ];
    for case in cases {
        let line = format!("@127.0.0.1 -p {port} +nocookie {case}");
        let real =
            tokio::process::Command::new("dig").args(line.split_whitespace()).output().await.expect("dig");
        let ours =
            dig::run(&args(&line), &Ctx { resolv_conf: conf, net: &HostNetwork, env: Env::default() }).await;
        assert_eq!(normalise(&ours.stdout), normalise(&String::from_utf8_lossy(&real.stdout)), "dig {line}");
        assert_eq!(Some(ours.code), real.status.code(), "dig {line}");
    }
}

/// nslookup and host against the real binaries, with an explicit server (their search list
/// comes from the machine's /etc/resolv.conf, so only absolute-enough names are compared).
#[tokio::test]
async fn interop_with_real_nslookup_and_host() {
    let dns = Arc::new(FakeDns::new());
    let port = serve(dns.clone()).await;
    let conf = "nameserver 127.0.0.1\n";
    let names = [
        "cart.shop.svc.cluster.local",
        "nope.shop.svc.cluster.local",
        "ext.shop.svc.cluster.local",
        "dual.shop.svc.cluster.local",
        "multi.shop.svc.cluster.local",
        "nodata.shop.svc.cluster.local",
        "sf.shop.svc.cluster.local",
        "10.96.0.20",
    ];
    for name in names {
        for (tool, line) in [
            ("nslookup", format!("-port={port} {name} 127.0.0.1")),
            ("nslookup", format!("-port={port} -type=AAAA {name} 127.0.0.1")),
            ("host", format!("-p {port} {name} 127.0.0.1")),
            ("host", format!("-p {port} -t AAAA {name} 127.0.0.1")),
        ] {
            let real =
                tokio::process::Command::new(tool).args(line.split_whitespace()).output().await.expect(tool);
            let ours = match tool {
                "nslookup" => {
                    nslookup::run(
                        &args(&line),
                        &Ctx { resolv_conf: conf, net: &HostNetwork, env: Env::default() },
                    )
                    .await
                }
                _ => {
                    host::run(
                        &args(&line),
                        &Ctx { resolv_conf: conf, net: &HostNetwork, env: Env::default() },
                    )
                    .await
                }
            };
            assert_eq!(ours.stdout, String::from_utf8_lossy(&real.stdout), "{tool} {line}");
            assert_eq!(Some(ours.code), real.status.code(), "{tool} {line}");
        }
    }
}

/// Blanks out what differs between two runs of dig.
fn normalise(s: &str) -> String {
    s.lines()
        .map(|l| {
            if let Some(at) = l.find(", id: ") {
                format!("{}, id: N", &l[..at])
            } else if l.starts_with(";; WHEN:") {
                ";; WHEN: -".into()
            } else if l.starts_with(";; Query time:") {
                ";; Query time: -".into()
            } else if let Some(rest) = l.strip_prefix("; <<>> DiG ") {
                format!("; <<>> DiG V <<>>{}", rest.split_once(" <<>>").map_or("", |(_, r)| r))
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Serves `dns` on 127.0.0.1, UDP and TCP on the same port.
async fn serve(dns: Arc<FakeDns>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (udp, tcp) = loop {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = tcp.local_addr().unwrap().port();
        if let Ok(udp) = tokio::net::UdpSocket::bind(("127.0.0.1", port)).await {
            break (udp, tcp);
        }
    };
    let port = udp.local_addr().unwrap().port();
    let d = dns.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok((n, from)) = udp.recv_from(&mut buf).await {
            let reply = d.answer(&buf[..n], false);
            let _ = udp.send_to(&reply, from).await;
        }
    });
    tokio::spawn(async move {
        while let Ok((mut s, _)) = tcp.accept().await {
            let d = dns.clone();
            tokio::spawn(async move {
                let mut len = [0u8; 2];
                while s.read_exact(&mut len).await.is_ok() {
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).await.is_err() {
                        return;
                    }
                    let r = d.answer(&q, true);
                    let _ = s.write_all(&(r.len() as u16).to_be_bytes()).await;
                    let _ = s.write_all(&r).await;
                }
            });
        }
    });
    port
}

/// Real sockets on this machine, for the interop tests.
struct HostNetwork;

#[async_trait::async_trait]
impl PodNetwork for HostNetwork {
    async fn connect(&self, dst: SocketAddr, timeout: Duration) -> Result<Connected, Error> {
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(dst)).await {
            Ok(Ok(s)) => {
                let local = s.local_addr().unwrap();
                Ok(Connected { stream: Box::new(s), local, hops: Vec::new() })
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(ErrorKind::Refused.into()),
            _ => Err(ErrorKind::TimedOut.into()),
        }
    }

    async fn exchange(
        &self,
        dst: SocketAddr,
        datagram: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, Error> {
        let io = async {
            let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            s.connect(dst).await?;
            s.send(&datagram).await?;
            let mut buf = vec![0u8; 4096];
            let n = s.recv(&mut buf).await?;
            buf.truncate(n);
            Ok::<_, std::io::Error>(buf)
        };
        match tokio::time::timeout(timeout, io).await {
            Ok(Ok(buf)) => Ok(buf),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => Err(ErrorKind::Refused.into()),
            _ => Err(ErrorKind::TimedOut.into()),
        }
    }
}

/// A pod whose only peer is the fake DNS server.
struct DnsOnlyPod(FakeDns);

#[async_trait::async_trait]
impl Pod for DnsOnlyPod {
    fn network(&self) -> &dyn PodNetwork {
        &self.0
    }

    fn hostname(&self) -> &str {
        "client-7d4f9"
    }

    fn ip(&self) -> std::net::IpAddr {
        std::net::IpAddr::from([10, 244, 1, 5])
    }

    fn resolv_conf(&self) -> &str {
        RESOLV_CONF
    }

    fn env(&self) -> &[(String, String)] {
        &[]
    }

    fn ip_addr(&self) -> String {
        String::new()
    }

    fn ip_route(&self) -> String {
        String::new()
    }
}

/// The toolbox's own name resolution (`Pod::resolve`: glibc's getaddrinfo) and its DNS
/// commands share the pod's one network.
#[tokio::test]
async fn the_toolbox_resolves_through_the_pod_network() {
    let pod = DnsOnlyPod(FakeDns::new());
    assert_eq!(pod.resolve("cart").await, Ok(vec![std::net::IpAddr::from([10, 96, 0, 20])]));
    assert_eq!(pod.0.queries(), ["cart.shop.svc.cluster.local. A", "cart.shop.svc.cluster.local. AAAA"]);
    assert_eq!(pod.resolve("nope").await, Err(crate::resolver::ResolveError::NotFound));

    let (out, mut rx) = Output::new();
    let argv: Vec<String> = ["getent", "hosts", "cart"].map(String::from).to_vec();
    assert_eq!(crate::apps::toolbox::run(&argv, &pod, &out).await, Ok(0));
    drop(out);
    let mut stdout = Vec::new();
    while let Some(chunk) = rx.recv().await {
        if let crate::apps::toolbox::Chunk::Stdout(b) = chunk {
            stdout.extend_from_slice(&b);
        }
    }
    assert_eq!(String::from_utf8(stdout).unwrap(), "10.96.0.20      cart.shop.svc.cluster.local\n");
}
