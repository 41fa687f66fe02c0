//! The Corefile, parsed as CoreDNS (Caddy's parser) reads it: server blocks `ZONE[:PORT]... {`,
//! one directive per line, an optional `{ ... }` block of options per directive, `#` comments.
//! Only the plugins the lab implements are accepted; anything else is an error with CoreDNS's
//! wording (`Corefile:3 - Error during parsing: Unknown directive 'foo'`), so a bad edit of the
//! ConfigMap is rejected and the running config stays, as the reload plugin does.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use netlab_config::parse_duration;

use crate::zone::PodMode;

/// CoreDNS's default DNS port.
pub const DEFAULT_PORT: u16 = 53;

/// A parsed Corefile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Corefile {
    /// Server blocks, in file order.
    pub servers: Vec<ServerBlock>,
}

/// One server block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerBlock {
    /// Zones it serves, lowercase, absolute (`.`, `consul.local.`).
    pub zones: Vec<String>,
    /// The port it names (53 by default); the process's `--dns-listen` overrides it.
    pub port: u16,
    /// Its plugins.
    pub plugins: Plugins,
}

/// The plugins of one server block. CoreDNS orders plugins by plugin.cfg, not by the file, so
/// the order here does not matter either.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plugins {
    /// `errors`: log failed queries.
    pub errors: bool,
    /// `log`: one line per query.
    pub log: bool,
    /// `health [ADDR] { lameduck D }`.
    pub health: Option<HealthOpts>,
    /// `ready [ADDR]`.
    pub ready: Option<Option<String>>,
    /// `prometheus [ADDR]`.
    pub prometheus: Option<Option<String>>,
    /// `kubernetes [ZONES] { ... }`.
    pub kubernetes: Option<KubernetesOpts>,
    /// `forward FROM TO... { ... }`.
    pub forward: Option<ForwardOpts>,
    /// `cache [TTL] [ZONES] { ... }`.
    pub cache: Option<CacheOpts>,
    /// `loadbalance`: shuffle A/AAAA records.
    pub loadbalance: bool,
    /// `loop`: accepted (the lab's upstream never points back at itself).
    pub loop_detect: bool,
    /// `reload`: accepted; the lab reloads on every ConfigMap change.
    pub reload: bool,
}

/// `health` options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HealthOpts {
    /// Address, `:8080` by default.
    pub addr: Option<String>,
    /// Keep serving this long after a shutdown starts.
    pub lameduck: Option<Duration>,
}

/// `kubernetes` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesOpts {
    /// Zones (the block's zones when none are given).
    pub zones: Vec<String>,
    /// `pods`.
    pub pods: PodMode,
    /// `ttl` (0..=3600; 5 by default).
    pub ttl: u32,
    /// `fallthrough [ZONES]`.
    pub fallthrough: Option<Vec<String>>,
    /// `namespaces NS...`.
    pub namespaces: Vec<String>,
    /// `endpoint_pod_names`.
    pub endpoint_pod_names: bool,
    /// `ignore empty_service`.
    pub ignore_empty_service: bool,
}

/// One upstream of `forward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Upstream {
    /// `IP[:PORT]` or `dns://IP[:PORT]`.
    Addr(SocketAddr),
    /// A resolv.conf whose nameservers are the upstreams.
    ResolvConf(PathBuf),
}

/// `forward` upstream selection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Policy {
    /// CoreDNS's default.
    #[default]
    Random,
    /// In turn.
    RoundRobin,
    /// In order.
    Sequential,
}

/// `forward` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardOpts {
    /// The zone whose names are forwarded (`.`).
    pub from: String,
    /// Upstreams.
    pub to: Vec<Upstream>,
    /// `except ZONES`.
    pub except: Vec<String>,
    /// `max_concurrent N`: REFUSED above N queries in flight.
    pub max_concurrent: Option<usize>,
    /// `policy`.
    pub policy: Policy,
    /// `force_tcp`.
    pub force_tcp: bool,
    /// `max_fails N` (default 2): failed health probes in a row after which an upstream is
    /// down; 0 turns health checking off.
    pub max_fails: u32,
    /// `health_check DURATION` (default 0.5s): how often a failing upstream is probed.
    pub health_check: Duration,
    /// `health_check ... no_rec` clears RD on the probe.
    pub hc_recursion_desired: bool,
    /// `health_check ... domain NAME`: the probe's name (default `.`).
    pub hc_domain: String,
    /// `expire DURATION` (default 10s): how long an idle upstream connection is kept. Parsed
    /// and kept; the lab opens a socket per query, so nothing is cached to expire.
    pub expire: Duration,
    /// `failfast_all_unhealthy_upstreams`: SERVFAIL at once when every upstream is down, instead
    /// of trying one at random.
    pub failfast: bool,
}

/// `forward`'s defaults (forward.go `New`).
pub mod forward_defaults {
    use std::time::Duration;

    /// `max_fails`.
    pub const MAX_FAILS: u32 = 2;
    /// `health_check`.
    pub const HEALTH_CHECK: Duration = Duration::from_millis(500);
    /// `expire`.
    pub const EXPIRE: Duration = Duration::from_secs(10);
}

/// `cache` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOpts {
    /// Zones cached (the block's zones by default).
    pub zones: Vec<String>,
    /// Most entries and longest TTL for positive answers.
    pub success_cap: usize,
    /// Longest TTL of a positive answer.
    pub success_ttl: u32,
    /// Shortest TTL of a positive answer.
    pub success_min_ttl: u32,
    /// Most entries for negative answers.
    pub denial_cap: usize,
    /// Longest TTL of a negative answer.
    pub denial_ttl: u32,
    /// Shortest TTL of a negative answer.
    pub denial_min_ttl: u32,
    /// How long SERVFAIL is cached.
    pub servfail_ttl: u32,
    /// `disable success ZONES`.
    pub disable_success: Vec<String>,
    /// `disable denial ZONES`.
    pub disable_denial: Vec<String>,
}

/// CoreDNS cache defaults: 9984 entries, 3600 s success, 1800 s denial, 5 s minimum, 5 s SERVFAIL.
impl CacheOpts {
    fn new(zones: Vec<String>) -> Self {
        Self {
            zones,
            success_cap: 9984,
            success_ttl: 3600,
            success_min_ttl: 5,
            denial_cap: 9984,
            denial_ttl: 1800,
            denial_min_ttl: 5,
            servfail_ttl: 5,
            disable_success: vec![],
            disable_denial: vec![],
        }
    }
}

/// A Corefile that cannot be used, with the line it failed on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Corefile:{line} - Error during parsing: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// A token and its line.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    line: usize,
}

// === impl Corefile ===

impl Corefile {
    /// Parses a Corefile.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let lines = tokenize(text)?;
        let mut servers = Vec::new();
        let mut i = 0;
        while i < lines.len() {
            let header = &lines[i];
            let line = header[0].line;
            let Some(last) = header.last().filter(|t| t.text == "{") else {
                return Err(err(
                    line,
                    format!("Unexpected token '{}', expecting '{{'", header[header.len() - 1].text),
                ));
            };
            let _ = last;
            let keys = &header[..header.len() - 1];
            if keys.is_empty() {
                return Err(err(line, "Unexpected '{', expecting a server block key".into()));
            }
            let mut zones = Vec::new();
            let mut port = None;
            for k in keys {
                let (z, p) = parse_key(&k.text, k.line)?;
                if let (Some(a), Some(b)) = (port, p)
                    && a != b
                {
                    return Err(err(k.line, "all keys of a server block must use the same port".into()));
                }
                port = port.or(p);
                zones.push(z);
            }
            i += 1;
            let mut plugins = Plugins::default();
            let mut seen = Vec::new();
            loop {
                let Some(l) = lines.get(i) else {
                    return Err(err(line, "Unexpected EOF, expecting '}'".into()));
                };
                i += 1;
                if l[0].text == "}" {
                    break;
                }
                let name = l[0].text.as_str();
                let (args, block) = if l.last().is_some_and(|t| t.text == "{") {
                    let args = &l[1..l.len() - 1];
                    let mut block = Vec::new();
                    loop {
                        let Some(b) = lines.get(i) else {
                            return Err(err(l[0].line, "Unexpected EOF, expecting '}'".into()));
                        };
                        i += 1;
                        if b[0].text == "}" {
                            break;
                        }
                        if b.last().is_some_and(|t| t.text == "{") {
                            return Err(err(b[0].line, format!("Unexpected '{{' after '{}'", b[0].text)));
                        }
                        block.push(b.clone());
                    }
                    (args, block)
                } else {
                    (&l[1..], Vec::new())
                };
                if seen.contains(&name.to_string()) && !matches!(name, "log" | "errors") {
                    return Err(err(
                        l[0].line,
                        format!("plugin/{name}: this plugin can only be used once per Server Block"),
                    ));
                }
                seen.push(name.to_string());
                parse_plugin(&mut plugins, &l[0], args, &block, &zones)?;
            }
            servers.push(ServerBlock { zones, port: port.unwrap_or(DEFAULT_PORT), plugins });
        }
        if servers.is_empty() {
            return Err(err(1, "no server blocks".into()));
        }
        Ok(Self { servers })
    }
}

fn err(line: usize, message: String) -> ParseError {
    ParseError { line, message }
}

fn arg_count(t: &Tok) -> ParseError {
    err(t.line, format!("Wrong argument count or unexpected line ending after '{}'", t.text))
}

/// Lines of tokens; `{` and `}` are tokens of their own; comments dropped.
fn tokenize(text: &str) -> Result<Vec<Vec<Tok>>, ParseError> {
    let mut lines = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let mut toks = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        for c in raw.chars() {
            match c {
                '"' => quoted = !quoted,
                '#' if !quoted && cur.is_empty() => break,
                c if c.is_whitespace() && !quoted => {
                    if !cur.is_empty() {
                        toks.push(Tok { text: std::mem::take(&mut cur), line });
                    }
                }
                c => cur.push(c),
            }
        }
        if quoted {
            return Err(err(line, "unterminated quote".into()));
        }
        if !cur.is_empty() {
            toks.push(Tok { text: cur, line });
        }
        // `foo{` and `}` glued to words are split off.
        let mut split = Vec::new();
        for t in toks {
            if t.text.len() > 1 && t.text.ends_with('{') {
                split.push(Tok { text: t.text[..t.text.len() - 1].to_string(), line });
                split.push(Tok { text: "{".into(), line });
            } else {
                split.push(t);
            }
        }
        if !split.is_empty() {
            lines.push(split);
        }
    }
    Ok(lines)
}

/// `dns://zone:port`, `zone:port`, `zone`, `.:53`.
fn parse_key(key: &str, line: usize) -> Result<(String, Option<u16>), ParseError> {
    let key = key.strip_prefix("dns://").unwrap_or(key);
    if key.contains("://") {
        return Err(err(line, format!("unsupported scheme in server block key '{key}'")));
    }
    let (zone, port) = match key.rsplit_once(':') {
        Some((z, p)) => {
            (z, Some(p.parse::<u16>().map_err(|_| err(line, format!("invalid port '{p}' in '{key}'")))?))
        }
        None => (key, None),
    };
    Ok((fqdn(if zone.is_empty() { "." } else { zone }), port))
}

/// Lowercase, absolute.
pub fn fqdn(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with('.') { lower } else { format!("{lower}.") }
}

fn zones_or(args: &[Tok], default: &[String]) -> Vec<String> {
    if args.is_empty() { default.to_vec() } else { args.iter().map(|t| fqdn(&t.text)).collect() }
}

fn parse_plugin(
    p: &mut Plugins,
    name: &Tok,
    args: &[Tok],
    block: &[Vec<Tok>],
    zones: &[String],
) -> Result<(), ParseError> {
    let no_block = |block: &[Vec<Tok>]| match block.first() {
        Some(b) => Err(err(b[0].line, format!("unknown property '{}'", b[0].text))),
        None => Ok(()),
    };
    match name.text.as_str() {
        "errors" => p.errors = true,
        "log" => p.log = true,
        "loop" => {
            no_block(block)?;
            p.loop_detect = true;
        }
        "reload" => p.reload = true,
        "loadbalance" => {
            if let Some(a) = args.first()
                && a.text != "round_robin"
            {
                return Err(err(a.line, format!("unknown policy: {}", a.text)));
            }
            p.loadbalance = true;
        }
        "health" => {
            if args.len() > 1 {
                return Err(arg_count(name));
            }
            let mut h = HealthOpts { addr: args.first().map(|t| t.text.clone()), lameduck: None };
            for b in block {
                match (b[0].text.as_str(), b.get(1)) {
                    ("lameduck", Some(d)) if b.len() == 2 => {
                        h.lameduck = Some(parse_duration(&d.text).map_err(|m| err(d.line, m.to_string()))?)
                    }
                    ("lameduck", _) => return Err(arg_count(&b[0])),
                    (other, _) => return Err(err(b[0].line, format!("unknown property '{other}'"))),
                }
            }
            p.health = Some(h);
        }
        "ready" => {
            no_block(block)?;
            if args.len() > 1 {
                return Err(arg_count(name));
            }
            p.ready = Some(args.first().map(|t| t.text.clone()));
        }
        "prometheus" => {
            no_block(block)?;
            if args.len() > 1 {
                return Err(arg_count(name));
            }
            p.prometheus = Some(args.first().map(|t| t.text.clone()));
        }
        "kubernetes" => p.kubernetes = Some(parse_kubernetes(args, block, zones)?),
        "forward" => p.forward = Some(parse_forward(name, args, block)?),
        "cache" => p.cache = Some(parse_cache(args, block, zones)?),
        other => return Err(err(name.line, format!("Unknown directive '{other}'"))),
    }
    Ok(())
}

fn parse_kubernetes(
    args: &[Tok],
    block: &[Vec<Tok>],
    zones: &[String],
) -> Result<KubernetesOpts, ParseError> {
    let mut k = KubernetesOpts {
        zones: zones_or(args, zones),
        pods: PodMode::Disabled,
        ttl: crate::zone::DEFAULT_TTL,
        fallthrough: None,
        namespaces: vec![],
        endpoint_pod_names: false,
        ignore_empty_service: false,
    };
    for b in block {
        let opt = &b[0];
        let rest = &b[1..];
        match opt.text.as_str() {
            "pods" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                k.pods = match v.text.as_str() {
                    "disabled" => PodMode::Disabled,
                    "insecure" => PodMode::Insecure,
                    "verified" => PodMode::Verified,
                    other => {
                        return Err(err(
                            v.line,
                            format!("rejecting pod mode '{other}': must be disabled, insecure or verified"),
                        ));
                    }
                };
            }
            "ttl" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                let ttl: u32 =
                    v.text.parse().map_err(|_| err(v.line, format!("invalid ttl '{}'", v.text)))?;
                if ttl > 3600 {
                    return Err(err(v.line, format!("ttl must be in range [0, 3600]: {ttl}")));
                }
                k.ttl = ttl;
            }
            "fallthrough" => k.fallthrough = Some(rest.iter().map(|t| fqdn(&t.text)).collect()),
            "namespaces" => {
                if rest.is_empty() {
                    return Err(arg_count(opt));
                }
                k.namespaces = rest.iter().map(|t| t.text.to_ascii_lowercase()).collect();
            }
            "endpoint_pod_names" => k.endpoint_pod_names = true,
            "ignore" => match rest {
                [v] if v.text == "empty_service" => k.ignore_empty_service = true,
                _ => return Err(arg_count(opt)),
            },
            // Connection options: the lab always talks to its one apiserver (--server).
            "kubeconfig" | "endpoint" | "tls" | "noendpoints" | "labels" | "namespace_labels"
            | "startup_timeout" => {}
            other => return Err(err(opt.line, format!("unknown property '{other}'"))),
        }
    }
    Ok(k)
}

fn parse_forward(name: &Tok, args: &[Tok], block: &[Vec<Tok>]) -> Result<ForwardOpts, ParseError> {
    if args.len() < 2 {
        return Err(arg_count(name));
    }
    let from = fqdn(&args[0].text);
    let mut to = Vec::new();
    for t in &args[1..] {
        to.push(parse_upstream(&t.text, t.line)?);
    }
    let mut f = ForwardOpts {
        from,
        to,
        except: vec![],
        max_concurrent: None,
        policy: Policy::Random,
        force_tcp: false,
        max_fails: forward_defaults::MAX_FAILS,
        health_check: forward_defaults::HEALTH_CHECK,
        hc_recursion_desired: true,
        hc_domain: ".".into(),
        expire: forward_defaults::EXPIRE,
        failfast: false,
    };
    for b in block {
        let opt = &b[0];
        let rest = &b[1..];
        match opt.text.as_str() {
            "max_concurrent" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                let n: usize = v
                    .text
                    .parse()
                    .map_err(|_| err(v.line, format!("invalid max_concurrent '{}'", v.text)))?;
                if n == 0 {
                    return Err(err(v.line, "max_concurrent can't be zero".into()));
                }
                f.max_concurrent = Some(n);
            }
            "policy" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                f.policy = match v.text.as_str() {
                    "random" => Policy::Random,
                    "round_robin" => Policy::RoundRobin,
                    "sequential" => Policy::Sequential,
                    other => return Err(err(v.line, format!("unknown policy '{other}'"))),
                };
            }
            "except" => f.except = rest.iter().map(|t| fqdn(&t.text)).collect(),
            "force_tcp" => f.force_tcp = true,
            "max_fails" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                f.max_fails = v.text.parse().map_err(|e: std::num::ParseIntError| {
                    let why = match e.kind() {
                        std::num::IntErrorKind::PosOverflow => "value out of range",
                        _ => "invalid syntax",
                    };
                    err(v.line, format!("strconv.ParseUint: parsing {:?}: {why}", v.text))
                })?;
            }
            "health_check" => {
                let Some((v, extra)) = rest.split_first() else { return Err(arg_count(opt)) };
                f.health_check = go_duration(v, "health_check")?;
                let mut extra = extra.iter();
                while let Some(o) = extra.next() {
                    match o.text.as_str() {
                        "no_rec" => f.hc_recursion_desired = false,
                        "domain" => {
                            let Some(d) = extra.next() else { return Err(arg_count(o)) };
                            if d.text.is_empty() || d.text.len() > 255 || d.text.contains("..") {
                                return Err(err(
                                    d.line,
                                    format!("health_check: invalid domain name {}", d.text),
                                ));
                            }
                            f.hc_domain = fqdn(&d.text);
                        }
                        other => {
                            return Err(err(o.line, format!("health_check: unknown option {other}")));
                        }
                    }
                }
            }
            "expire" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                f.expire = go_duration(v, "expire")?;
            }
            "failfast_all_unhealthy_upstreams" => {
                if !rest.is_empty() {
                    return Err(arg_count(opt));
                }
                f.failfast = true;
            }
            // Connection tuning the lab's forwarder does not model (a socket per query).
            "prefer_udp" | "max_idle_conns" => {}
            other => return Err(err(opt.line, format!("unknown property '{other}'"))),
        }
    }
    Ok(f)
}

/// A Go duration option of `forward` that may not be negative, with CoreDNS's errors:
/// `time.ParseDuration`'s for a bad one, `<option> can't be negative: ...` for a negative one
/// (`health_check` prints Go's `%d` of the nanoseconds, `expire` its `%s`).
fn go_duration(v: &Tok, option: &str) -> Result<Duration, ParseError> {
    if let Some(positive) = v.text.strip_prefix('-') {
        let d = parse_duration(positive)
            .map_err(|_| err(v.line, netlab_config::DurationError::Invalid(v.text.clone()).to_string()))?;
        let shown = if option == "health_check" { format!("-{}", d.as_nanos()) } else { v.text.clone() };
        return Err(err(v.line, format!("{option} can't be negative: {shown}")));
    }
    parse_duration(&v.text).map_err(|m| err(v.line, m.to_string()))
}

/// `IP`, `IP:PORT`, `[v6]:PORT`, `dns://...`, or a path (a resolv.conf).
fn parse_upstream(s: &str, line: usize) -> Result<Upstream, ParseError> {
    if s.starts_with('/') || s.starts_with('.') {
        return Ok(Upstream::ResolvConf(PathBuf::from(s)));
    }
    let s = s.strip_prefix("dns://").unwrap_or(s);
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(Upstream::Addr(SocketAddr::new(ip, DEFAULT_PORT)));
    }
    s.parse::<SocketAddr>()
        .map(Upstream::Addr)
        .map_err(|_| err(line, format!("not an IP address or file: \"{s}\"")))
}

fn parse_cache(args: &[Tok], block: &[Vec<Tok>], zones: &[String]) -> Result<CacheOpts, ParseError> {
    let mut args = args;
    let mut ttl = None;
    if let Some(first) = args.first()
        && let Ok(t) = first.text.parse::<u32>()
    {
        if t == 0 {
            return Err(err(first.line, "cache TTL can not be zero or negative: 0".into()));
        }
        ttl = Some(t);
        args = &args[1..];
    }
    let mut c = CacheOpts::new(zones_or(args, zones));
    if let Some(t) = ttl {
        c.success_ttl = t;
        c.denial_ttl = t;
        // A TTL below the minimum lowers the minimum too (cache/setup.go).
        c.success_min_ttl = c.success_min_ttl.min(t);
        c.denial_min_ttl = c.denial_min_ttl.min(t);
    }
    for b in block {
        let opt = &b[0];
        let rest = &b[1..];
        let num =
            |t: &Tok| t.text.parse::<u32>().map_err(|_| err(t.line, format!("invalid number '{}'", t.text)));
        match opt.text.as_str() {
            "success" | "denial" => {
                if rest.is_empty() || rest.len() > 3 {
                    return Err(arg_count(opt));
                }
                let cap = num(&rest[0])? as usize;
                let (c_cap, c_ttl, c_min) = if opt.text == "success" {
                    (&mut c.success_cap, &mut c.success_ttl, &mut c.success_min_ttl)
                } else {
                    (&mut c.denial_cap, &mut c.denial_ttl, &mut c.denial_min_ttl)
                };
                *c_cap = cap;
                if let Some(t) = rest.get(1) {
                    *c_ttl = num(t)?;
                }
                if let Some(t) = rest.get(2) {
                    *c_min = num(t)?;
                }
            }
            "servfail" => {
                let [v] = rest else { return Err(arg_count(opt)) };
                let d = parse_duration(&v.text).map_err(|m| err(v.line, m.to_string()))?;
                if d > Duration::from_secs(300) {
                    return Err(err(v.line, "maximum servfail duration is 5m".into()));
                }
                c.servfail_ttl = d.as_secs() as u32;
            }
            "disable" => {
                let Some(kind) = rest.first() else { return Err(arg_count(opt)) };
                let dz = zones_or(&rest[1..], &c.zones);
                match kind.text.as_str() {
                    "success" => c.disable_success = dz,
                    "denial" => c.disable_denial = dz,
                    other => {
                        return Err(err(
                            kind.line,
                            format!("cache type for disable must be \"success\" or \"denial\": {other}"),
                        ));
                    }
                }
            }
            // Accepted, not modelled.
            "prefetch" | "serve_stale" | "keepttl" => {}
            other => return Err(err(opt.line, format!("unknown property '{other}'"))),
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// kubeadm's Corefile, as the apiserver bootstraps it.
    const KUBEADM: &str = ".:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30 {
       disable success cluster.local
       disable denial cluster.local
    }
    loop
    reload
    loadbalance
}
";

    #[test]
    fn kubeadm_default() {
        let c = Corefile::parse(KUBEADM).unwrap();
        assert_eq!(c.servers.len(), 1);
        let s = &c.servers[0];
        assert_eq!((s.zones.clone(), s.port), (vec![".".to_string()], 53));
        let p = &s.plugins;
        assert!(p.errors && p.loadbalance && p.loop_detect && p.reload && !p.log);
        assert_eq!(p.health, Some(HealthOpts { addr: None, lameduck: Some(Duration::from_secs(5)) }));
        assert_eq!(p.ready, Some(None));
        assert_eq!(p.prometheus, Some(Some(":9153".into())));
        let k = p.kubernetes.as_ref().unwrap();
        assert_eq!(k.zones, vec!["cluster.local.", "in-addr.arpa.", "ip6.arpa."]);
        assert_eq!(k.pods, PodMode::Insecure);
        assert_eq!(k.ttl, 30);
        assert_eq!(k.fallthrough, Some(vec!["in-addr.arpa.".into(), "ip6.arpa.".into()]));
        let f = p.forward.as_ref().unwrap();
        assert_eq!(f.from, ".");
        assert_eq!(f.to, vec![Upstream::ResolvConf("/etc/resolv.conf".into())]);
        assert_eq!(f.max_concurrent, Some(1000));
        let cache = p.cache.as_ref().unwrap();
        assert_eq!((cache.success_ttl, cache.denial_ttl, cache.success_cap), (30, 30, 9984));
        assert_eq!(cache.zones, vec!["."]);
        assert_eq!(cache.disable_success, vec!["cluster.local."]);
        assert_eq!(cache.disable_denial, vec!["cluster.local."]);
    }

    #[test]
    fn stub_domain_blocks_and_upstream_forms() {
        let c = Corefile::parse(
            ".:53 {\n  forward . 192.0.2.1 dns://192.0.2.2:5353 [2001:db8::1]:53\n}\n# stub\nconsul.local:53 {\n  errors\n  cache 30\n  forward . 10.150.0.1 { policy sequential }\n}\n",
        );
        // Options must be on their own lines.
        assert!(c.is_err());
        let c = Corefile::parse(
            ".:53 {\n  forward . 192.0.2.1 dns://192.0.2.2:5353 [2001:db8::1]:53\n}\n# stub\nConsul.Local:5300 {\n  errors\n  cache 30\n  forward . 10.150.0.1 {\n    policy sequential\n  }\n}\n",
        )
        .unwrap();
        assert_eq!(c.servers.len(), 2);
        let f = c.servers[0].plugins.forward.as_ref().unwrap();
        assert_eq!(
            f.to,
            vec![
                Upstream::Addr("192.0.2.1:53".parse().unwrap()),
                Upstream::Addr("192.0.2.2:5353".parse().unwrap()),
                Upstream::Addr("[2001:db8::1]:53".parse().unwrap()),
            ]
        );
        assert_eq!(c.servers[1].zones, vec!["consul.local."]);
        assert_eq!(c.servers[1].port, 5300);
        assert_eq!(c.servers[1].plugins.forward.as_ref().unwrap().policy, Policy::Sequential);
        assert_eq!(c.servers[1].plugins.cache.as_ref().unwrap().zones, vec!["consul.local."]);
    }

    #[test]
    fn bad_corefiles_say_where_and_why() {
        let e = Corefile::parse(".:53 {\n    errors\n    bogus\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "Corefile:3 - Error during parsing: Unknown directive 'bogus'");
        let e = Corefile::parse(".:53 {\n kubernetes cluster.local {\n  ttl 4000\n }\n}\n").unwrap_err();
        assert_eq!(e.to_string(), "Corefile:3 - Error during parsing: ttl must be in range [0, 3600]: 4000");
        let e = Corefile::parse(".:53 {\n forward .\n}\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("Wrong argument count"), "{e}");
        let e = Corefile::parse(".:53 {\n errors\n").unwrap_err();
        assert!(e.message.contains("EOF"), "{e}");
        let e = Corefile::parse(".:53 {\n forward . not-an-ip\n}\n").unwrap_err();
        assert!(e.message.contains("not an IP address or file"), "{e}");
        let e = Corefile::parse(".:53 {\n cache 30\n cache 40\n}\n").unwrap_err();
        assert!(e.message.contains("only be used once"), "{e}");
        assert!(Corefile::parse("").is_err());
    }

    #[test]
    fn cache_options() {
        let c = Corefile::parse(".:53 {\n cache {\n  success 100 60 10\n  denial 50\n  servfail 2s\n }\n}\n")
            .unwrap();
        let cache = c.servers[0].plugins.cache.clone().unwrap();
        assert_eq!((cache.success_cap, cache.success_ttl, cache.success_min_ttl), (100, 60, 10));
        assert_eq!((cache.denial_cap, cache.denial_ttl), (50, 1800));
        assert_eq!(cache.servfail_ttl, 2);
    }

    #[test]
    fn forward_health_options() {
        let c = Corefile::parse(".:53 {\n forward . 192.0.2.1\n}\n").unwrap();
        let f = c.servers[0].plugins.forward.clone().unwrap();
        assert_eq!(
            (f.max_fails, f.health_check, f.expire),
            (2, Duration::from_millis(500), Duration::from_secs(10))
        );
        assert!(f.hc_recursion_desired && !f.failfast);
        assert_eq!(f.hc_domain, ".");

        let c = Corefile::parse(
            ".:53 {\n forward . 192.0.2.1 {\n  max_fails 5\n  health_check 2s no_rec domain Example.org\n  expire 30s\n  failfast_all_unhealthy_upstreams\n }\n}\n",
        )
        .unwrap();
        let f = c.servers[0].plugins.forward.clone().unwrap();
        assert_eq!(
            (f.max_fails, f.health_check, f.expire),
            (5, Duration::from_secs(2), Duration::from_secs(30))
        );
        assert!(!f.hc_recursion_desired && f.failfast);
        assert_eq!(f.hc_domain, "example.org.");

        let bad = |opt: &str| {
            Corefile::parse(&format!(".:53 {{\n forward . 192.0.2.1 {{\n  {opt}\n }}\n}}\n"))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            bad("max_fails x"),
            "Corefile:3 - Error during parsing: strconv.ParseUint: parsing \"x\": invalid syntax"
        );
        assert!(bad("max_fails -1").ends_with("strconv.ParseUint: parsing \"-1\": invalid syntax"));
        assert!(bad("max_fails").contains("Wrong argument count"));
        assert!(bad("health_check 5").ends_with("time: missing unit in duration \"5\""));
        assert!(bad("health_check -1s").ends_with("health_check can't be negative: -1000000000"));
        assert!(bad("health_check 1s bogus").ends_with("health_check: unknown option bogus"));
        assert!(bad("expire -5s").ends_with("expire can't be negative: -5s"));
        assert!(bad("expire soon").ends_with("time: invalid duration \"soon\""));
        assert!(bad("policy fastest").ends_with("unknown policy 'fastest'"));
    }

    #[test]
    fn durations_are_go_durations() {
        let c = Corefile::parse(".:53 {\n    health {\n       lameduck 1.5s\n    }\n}\n").unwrap();
        assert_eq!(
            c.servers[0].plugins.health.as_ref().and_then(|h| h.lameduck),
            Some(Duration::from_millis(1500))
        );
        let e =
            Corefile::parse(".:53 {\n    health {\n       lameduck 5\n    }\n}\n").unwrap_err().to_string();
        assert!(e.contains("time: missing unit in duration \"5\""), "{e}");
    }
}
