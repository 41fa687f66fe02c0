//! From a `netlab fault` subcommand's flags to the fault object it creates, with Chaos Mesh's
//! field names, so the printed object is exactly what `netlab apply -f` would take.
//!
//! Pure: the flags, the namespace, the cluster's namespaces (for node partitions) and the name
//! suffix in; the object out. Choices a shortcut makes for the user are spelled out in the
//! object rather than left to defaults: the selector's namespace and `mode: all`.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use netlab_chaos::{
    ComponentChaos, ComponentChaosSpec, DnsChaos, DnsChaosSpec, ExhaustionChaos, ExhaustionChaosSpec, Fault,
    NetworkChaos, NetworkChaosSpec, PodChaos, PodChaosSpec, RegistryChaos, RegistryChaosSpec,
    UpstreamDnsChaos, UpstreamDnsChaosSpec,
    dns::DnsAction,
    lab::{Component, ComponentAction, ExhaustionAction, RegistryAction, UpstreamAction},
    network::{BandwidthSpec, CorruptSpec, DelaySpec, Direction, DuplicateSpec, LossSpec, NetworkAction},
    pod::PodAction,
    spec::{Mode, PodSelector, PodSelectorSpec},
};
use serde_json::{Value, json};

use super::{
    args::{
        ComponentArgs, CreateArgs, DnsArgs, ExhaustArgs, FaultCommand, ModeArgs, NetArgs, PartitionArgs,
        PodArgs, RegistryArgs, UpstreamArgs,
    },
    flags::{self, FlagError},
    name,
};

/// Where a fault is built: its namespace, and the suffix of a generated name.
#[derive(Debug, Clone)]
pub struct Place<'a> {
    /// The fault's namespace (`-n`), also the namespace its pod selectors look in.
    pub namespace: &'a str,
    /// Every namespace of the cluster, for selectors that span them (node partitions).
    pub all_namespaces: &'a [String],
    /// The random part of a generated name.
    pub suffix: &'a str,
}

// === impl Place ===

impl Place<'_> {
    fn meta(&self, create: &CreateArgs, short: &str, what: &[&str]) -> ObjectMeta {
        let name = create.name.clone().unwrap_or_else(|| name::with_suffix(short, what, self.suffix));
        ObjectMeta { name: Some(name), namespace: Some(self.namespace.to_string()), ..Default::default() }
    }

    /// Pods by label in the fault's namespace, picked by `--mode`/`--value`.
    fn pods(&self, flag: &'static str, labels: &str, mode: &ModeArgs) -> Result<PodSelector, FlagError> {
        Ok(PodSelector {
            selector: PodSelectorSpec {
                namespaces: vec![self.namespace.to_string()],
                label_selectors: flags::labels(flag, labels)?,
                ..Default::default()
            },
            mode: parse_mode(&mode.mode)?,
            value: mode.value.clone().unwrap_or_default(),
        })
    }

    /// The other side of a network fault: every pod matching.
    fn target(&self, flag: &'static str, labels: &str) -> Result<PodSelector, FlagError> {
        Ok(PodSelector {
            selector: PodSelectorSpec {
                namespaces: vec![self.namespace.to_string()],
                label_selectors: flags::labels(flag, labels)?,
                ..Default::default()
            },
            mode: Mode::All,
            value: String::new(),
        })
    }
}

fn duration(create: &CreateArgs) -> Result<Option<String>, FlagError> {
    create.duration.as_deref().map(|d| flags::duration("--duration", d)).transpose()
}

fn parse_mode(text: &str) -> Result<Mode, FlagError> {
    [Mode::One, Mode::All, Mode::Fixed, Mode::FixedPercent, Mode::RandomMaxPercent]
        .into_iter()
        .find(|m| m.as_str() == text)
        .ok_or_else(|| FlagError::Usage(format!("--mode {text}: must be one of {}", Mode::NAMES.join(", "))))
}

fn parse_direction(text: &str) -> Result<Direction, FlagError> {
    [Direction::To, Direction::From, Direction::Both]
        .into_iter()
        .find(|d| d.as_str() == text)
        .ok_or_else(|| FlagError::Usage(format!("--direction {text}: must be one of to, from, both")))
}

/// The label values of a selector flag, for the generated name (`app=client` → `client`).
fn label_values(labels: Option<&str>) -> String {
    labels
        .and_then(|l| flags::labels("", l).ok())
        .map(|m: BTreeMap<String, String>| m.into_values().collect::<Vec<_>>().join("-"))
        .unwrap_or_default()
}

/// The object a creating subcommand makes; `None` for `list` and `delete`.
pub fn fault(cmd: &FaultCommand, at: &Place<'_>) -> Option<Result<Fault, FlagError>> {
    Some(match cmd {
        FaultCommand::Net(a) => net(a, at),
        FaultCommand::Partition(a) => partition(a, at),
        FaultCommand::Dns(a) => dns(a, at),
        FaultCommand::Pod(a) => pod(a, at),
        FaultCommand::Stop(a) => component(ComponentAction::Stop, a, at),
        FaultCommand::Pause(a) => component(ComponentAction::Pause, a, at),
        FaultCommand::Kill(a) => component(ComponentAction::Kill, a, at),
        FaultCommand::Registry(a) => registry(a, at),
        FaultCommand::Upstream(a) => upstream(a, at),
        FaultCommand::Exhaust(a) => exhaust(a, at),
        FaultCommand::List(_) | FaultCommand::Delete(_) => return None,
    })
}

/// `netlab fault net`: the action is the one effect given, or `netem` for several.
pub fn net(a: &NetArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let percent = |flag, v: &Option<String>| v.as_deref().map(|v| flags::percent(flag, v)).transpose();
    let loss = percent("--loss", &a.loss)?;
    let duplicate = percent("--duplicate", &a.duplicate)?;
    let corrupt = percent("--corrupt", &a.corrupt)?;
    let correlation = percent("--correlation", &a.correlation)?.unwrap_or_default();
    let latency = a.delay.as_deref().map(|v| flags::latency("--delay", v)).transpose()?;
    let jitter = a.jitter.as_deref().map(|v| flags::latency("--jitter", v)).transpose()?;
    let rate = a.rate.as_deref().map(|v| flags::rate("--rate", v)).transpose()?;

    if jitter.is_some() && latency.is_none() {
        return Err(FlagError::Usage("--jitter needs --delay: it spreads the added delay".into()));
    }
    let mut netem = Vec::new();
    if latency.is_some() {
        netem.push(NetworkAction::Delay);
    }
    if loss.is_some() {
        netem.push(NetworkAction::Loss);
    }
    if duplicate.is_some() {
        netem.push(NetworkAction::Duplicate);
    }
    if corrupt.is_some() {
        netem.push(NetworkAction::Corrupt);
    }
    let action = match (netem.as_slice(), &rate) {
        ([], None) => {
            return Err(FlagError::Usage(
                "nothing to inject: give at least one of --delay, --loss, --duplicate, --corrupt or --rate"
                    .into(),
            ));
        }
        ([], Some(_)) if !correlation.is_empty() => {
            return Err(FlagError::Usage(
                "--correlation applies to --delay, --loss, --duplicate and --corrupt, not to --rate".into(),
            ));
        }
        ([], Some(_)) => NetworkAction::Bandwidth,
        (_, Some(_)) => {
            // Chaos Mesh's netem action merges delay, loss, duplicate and corrupt into one
            // netem qdisc; a bandwidth limit is a tbf, an action of its own.
            return Err(FlagError::Usage(
                "--rate cannot be combined with --delay, --loss, --duplicate or --corrupt: a bandwidth \
                 limit is a fault of its own (action bandwidth); create two faults"
                    .into(),
            ));
        }
        ([one], None) => *one,
        (_, None) => NetworkAction::Netem,
    };

    let from = at.pods("--from", &a.from, &a.mode)?;
    let target = a.to.as_deref().map(|to| at.target("--to", to)).transpose()?;
    let to_what = match (&a.to, a.to_cidr.first()) {
        (Some(_), _) => label_values(a.to.as_deref()),
        (None, Some(cidr)) => cidr.clone(),
        (None, None) => String::new(),
    };
    let spec = NetworkChaosSpec {
        action,
        pods: from,
        direction: a.direction.as_deref().map(parse_direction).transpose()?,
        target,
        external_targets: a.to_cidr.clone(),
        delay: latency.map(|latency| DelaySpec {
            latency,
            correlation: correlation.clone(),
            jitter: jitter.unwrap_or_default(),
        }),
        loss: loss.map(|loss| LossSpec { loss, correlation: correlation.clone() }),
        duplicate: duplicate.map(|duplicate| DuplicateSpec { duplicate, correlation: correlation.clone() }),
        corrupt: corrupt.map(|corrupt| CorruptSpec { corrupt, correlation: correlation.clone() }),
        bandwidth: rate.map(|rate| BandwidthSpec { rate, limit: a.limit, buffer: a.buffer }),
        duration: duration(&a.create)?,
    };
    let metadata = at.meta(&a.create, "net", &[&label_values(Some(&a.from)), &to_what]);
    Ok(Fault::NetworkChaos(NetworkChaos { metadata, spec, status: None }))
}

/// `netlab fault partition`: between the pods of two sets of nodes (every namespace), or two
/// label selectors; both directions unless told.
pub fn partition(a: &PartitionArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let direction = Some(parse_direction(&a.direction)?);
    let duration = duration(&a.create)?;
    let (pods, target, external_targets, what) = match a.nodes.as_slice() {
        [] => {
            let Some(from) = a.from.as_deref() else {
                return Err(FlagError::Usage(
                    "partition needs two nodes (netlab fault partition node-1 node-2), or --from LABELS \
                     with --to LABELS or --to-cidr CIDR"
                        .into(),
                ));
            };
            let pods = at.pods("--from", from, &a.mode)?;
            let target = a.to.as_deref().map(|to| at.target("--to", to)).transpose()?;
            let to_what = match (&a.to, a.to_cidr.first()) {
                (Some(to), _) => label_values(Some(to)),
                (None, Some(cidr)) => cidr.clone(),
                (None, None) => String::new(),
            };
            (pods, target, a.to_cidr.clone(), vec![label_values(Some(from)), to_what])
        }
        [_] => {
            return Err(FlagError::Usage(
                "partition needs a second node: netlab fault partition node-1 node-2".into(),
            ));
        }
        [first, rest @ ..] => {
            if !a.to_cidr.is_empty() {
                return Err(FlagError::Usage("--to-cidr goes with --from, not with nodes".into()));
            }
            let on = |nodes: Vec<String>, mode: Mode, value: String| PodSelector {
                selector: PodSelectorSpec {
                    namespaces: at.all_namespaces.to_vec(),
                    nodes,
                    ..Default::default()
                },
                mode,
                value,
            };
            let pods =
                on(vec![first.clone()], parse_mode(&a.mode.mode)?, a.mode.value.clone().unwrap_or_default());
            let target = on(rest.to_vec(), Mode::All, String::new());
            (pods, Some(target), Vec::new(), a.nodes.clone())
        }
    };
    let spec = NetworkChaosSpec {
        action: NetworkAction::Partition,
        pods,
        direction,
        target,
        external_targets,
        duration,
        ..Default::default()
    };
    let what: Vec<&str> = what.iter().map(String::as_str).collect();
    let metadata = at.meta(&a.create, "partition", &what);
    Ok(Fault::NetworkChaos(NetworkChaos { metadata, spec, status: None }))
}

/// `netlab fault dns`.
pub fn dns(a: &DnsArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let (action, rcode, delay) = match (a.error.as_deref(), a.delay.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(FlagError::Usage(
                "--error and --delay cannot be combined: a DNSChaos has one action".into(),
            ));
        }
        (None, Some(d)) => (DnsAction::Delay, None, Some(flags::duration("--delay", d)?)),
        (Some(e), None) => match e.to_ascii_uppercase().as_str() {
            // Chaos Mesh's `error` answers SERVFAIL: leave the lab's `rcode` out so the object
            // is Chaos Mesh's own.
            "SERVFAIL" => (DnsAction::Error, None, None),
            rcode @ ("NXDOMAIN" | "REFUSED") => (DnsAction::Error, Some(rcode.to_string()), None),
            "TIMEOUT" => (DnsAction::Timeout, None, None),
            "RANDOM-IP" => (DnsAction::Random, None, None),
            _ => {
                return Err(FlagError::Usage(format!(
                    "--error {e}: must be one of SERVFAIL, NXDOMAIN, REFUSED, timeout, random-ip"
                )));
            }
        },
        (None, None) => {
            return Err(FlagError::Usage(
                "give --error SERVFAIL|NXDOMAIN|REFUSED|timeout|random-ip or --delay DURATION".into(),
            ));
        }
    };
    let spec = DnsChaosSpec {
        action,
        pods: at.pods("--pods", &a.pods, &a.mode)?,
        patterns: a.names.clone(),
        rcode,
        delay,
        duration: duration(&a.create)?,
    };
    let metadata = at.meta(&a.create, "dns", &[&label_values(Some(&a.pods))]);
    Ok(Fault::DnsChaos(DnsChaos { metadata, spec, status: None }))
}

/// `netlab fault pod kill|fail|kill-container`.
pub fn pod(a: &PodArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let action = match a.action.as_str() {
        "kill" | "pod-kill" => PodAction::PodKill,
        "fail" | "pod-failure" => PodAction::PodFailure,
        "kill-container" | "container-kill" => PodAction::ContainerKill,
        other => {
            return Err(FlagError::Usage(format!("{other}: must be one of kill, fail, kill-container")));
        }
    };
    if a.grace_period.is_some() && action != PodAction::PodKill {
        return Err(FlagError::Usage("--grace-period applies to kill only".into()));
    }
    if let Some(g) = a.grace_period.filter(|g| *g < 0) {
        return Err(FlagError::Invalid {
            flag: "--grace-period",
            value: g.to_string(),
            reason: "must be 0 or more seconds".into(),
        });
    }
    if !a.container.is_empty() && action != PodAction::ContainerKill {
        return Err(FlagError::Usage("--container applies to kill-container only".into()));
    }
    let spec = PodChaosSpec {
        action,
        pods: at.pods("--pods", &a.pods, &a.mode)?,
        container_names: a.container.clone(),
        grace_period: a.grace_period,
        duration: duration(&a.create)?,
    };
    let short = match action {
        PodAction::PodKill => "kill",
        PodAction::PodFailure => "fail",
        PodAction::ContainerKill => "kill-container",
    };
    let metadata = at.meta(&a.create, "pod", &[short, &label_values(Some(&a.pods))]);
    Ok(Fault::PodChaos(PodChaos { metadata, spec, status: None }))
}

/// `netlab fault stop|pause|kill COMPONENT [NODE...]`.
pub fn component(action: ComponentAction, a: &ComponentArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let component = Component::parse(&a.component).ok_or_else(|| {
        FlagError::Usage(format!("{}: must be one of {}", a.component, Component::NAMES.join(", ")))
    })?;
    if !a.nodes.is_empty() && !component.per_node() {
        return Err(FlagError::Usage(format!(
            "{component} runs once per cluster, not on each node: drop {}",
            a.nodes.join(" ")
        )));
    }
    let spec =
        ComponentChaosSpec { action, component, nodes: a.nodes.clone(), duration: duration(&a.create)? };
    let mut what = vec![component.as_str()];
    what.extend(a.nodes.iter().map(String::as_str));
    let metadata = at.meta(&a.create, action.as_str(), &what);
    Ok(Fault::ComponentChaos(ComponentChaos { metadata, spec, status: None }))
}

/// `netlab fault registry`.
pub fn registry(a: &RegistryArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let (action, status_code, delay, what) = match (&a.status, &a.delay, a.unreachable) {
        (Some(s), None, false) => {
            let code = flags::status_code("--status", s)?;
            (RegistryAction::Error, Some(code), None, code.to_string())
        }
        (None, Some(d), false) => {
            (RegistryAction::Delay, None, Some(flags::duration("--delay", d)?), "delay".into())
        }
        (None, None, true) => (RegistryAction::Unreachable, None, None, "unreachable".into()),
        _ => {
            return Err(FlagError::Usage(
                "give exactly one of --status CODE, --delay DURATION, --unreachable".into(),
            ));
        }
    };
    let spec = RegistryChaosSpec {
        action,
        repositories: a.repos.clone(),
        status_code,
        delay,
        duration: duration(&a.create)?,
    };
    let metadata = at.meta(&a.create, "registry", &[&what]);
    Ok(Fault::RegistryChaos(RegistryChaos { metadata, spec, status: None }))
}

/// `netlab fault upstream`.
pub fn upstream(a: &UpstreamArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let (action, delay) = match (a.unreachable, &a.delay, a.servfail) {
        (true, None, false) => (UpstreamAction::Unreachable, None),
        (false, Some(d), false) => (UpstreamAction::Delay, Some(flags::duration("--delay", d)?)),
        (false, None, true) => (UpstreamAction::Servfail, None),
        _ => {
            return Err(FlagError::Usage(
                "give exactly one of --unreachable, --delay DURATION, --servfail".into(),
            ));
        }
    };
    let spec =
        UpstreamDnsChaosSpec { action, patterns: a.names.clone(), delay, duration: duration(&a.create)? };
    let metadata = at.meta(&a.create, "upstream", &[action.as_str()]);
    Ok(Fault::UpstreamDnsChaos(UpstreamDnsChaos { metadata, spec, status: None }))
}

/// `netlab fault exhaust WHAT [NODE...]`.
pub fn exhaust(a: &ExhaustArgs, at: &Place<'_>) -> Result<Fault, FlagError> {
    let action = ExhaustionAction::parse(&a.what).ok_or_else(|| {
        FlagError::Usage(format!("{}: must be one of {}", a.what, ExhaustionAction::NAMES.join(", ")))
    })?;
    if action == ExhaustionAction::ServiceCidr && !a.nodes.is_empty() {
        return Err(FlagError::Usage(format!(
            "service-cidr is the cluster's, not a node's: drop {}",
            a.nodes.join(" ")
        )));
    }
    let spec = ExhaustionChaosSpec { action, nodes: a.nodes.clone(), duration: duration(&a.create)? };
    let mut what = vec![action.as_str()];
    what.extend(a.nodes.iter().map(String::as_str));
    let metadata = at.meta(&a.create, "exhaust", &what);
    Ok(Fault::ExhaustionChaos(ExhaustionChaos { metadata, spec, status: None }))
}

/// The object as the apiserver takes it: the kind's fields plus `apiVersion` and `kind`.
pub fn to_json(fault: &Fault) -> Value {
    let body = match fault {
        Fault::NetworkChaos(f) => serde_json::to_value(f),
        Fault::DnsChaos(f) => serde_json::to_value(f),
        Fault::PodChaos(f) => serde_json::to_value(f),
        Fault::ComponentChaos(f) => serde_json::to_value(f),
        Fault::RegistryChaos(f) => serde_json::to_value(f),
        Fault::UpstreamDnsChaos(f) => serde_json::to_value(f),
        Fault::ExhaustionChaos(f) => serde_json::to_value(f),
    };
    // Plain data with string keys: serializing cannot fail.
    let mut v = body.unwrap_or_else(|_| json!({}));
    let r = fault.resource();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("apiVersion".into(), json!(r.api_version()));
        obj.insert("kind".into(), json!(r.kind()));
    }
    v
}

#[cfg(test)]
mod tests;
