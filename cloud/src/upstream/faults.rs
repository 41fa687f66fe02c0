//! UpstreamDNSChaos: the outside world's resolver down (`unreachable`: nothing answers), slow
//! (`delay`) or failing (`servfail`), for names matching the fault's `patterns` (all names when
//! empty, the `. IN NS` health probes of CoreDNS's `forward` included). The cluster DNS in front
//! of it then behaves as CoreDNS's `forward` does with such an upstream.
//!
//! The faults are the lab's own kind, not pod-scoped: every query that reaches the resolver is
//! subject to them, whoever sends it. [`Faults`] is the set in force, rebuilt by [`watch`] on
//! every change and when a fault's `duration` ends (a timer on the earliest end).

use std::{
    sync::{Arc, RwLock},
    time::Duration,
};

use jiff::Timestamp;
use netlab_chaos::{
    FaultRef, UpstreamDnsChaos,
    lab::UpstreamAction,
    object::Chaos as _,
    pattern,
    report::{FaultKey, Reporter},
    window::Window,
};
use netlab_client::{Client, ListParams, reflector::reflector};
use tokio_util::sync::CancellationToken;

/// The name of cloud's entry in the faults' `status.counters`.
pub const REPORTER: &str = "cloud";

/// What a matching query meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// No answer at all.
    Unreachable,
    /// The answer, this much later.
    Delay(Duration),
    /// SERVFAIL.
    ServFail,
}

/// One UpstreamDNSChaos in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The fault, for span marks.
    pub fault: FaultRef,
    /// The fault, for counters.
    pub key: FaultKey,
    /// What it does.
    pub action: Action,
    patterns: Vec<String>,
    created: Timestamp,
}

impl Rule {
    fn of(chaos: &UpstreamDnsChaos) -> Option<Self> {
        let action = match chaos.spec.action {
            UpstreamAction::Unreachable => Action::Unreachable,
            UpstreamAction::Servfail => Action::ServFail,
            UpstreamAction::Delay => {
                Action::Delay(netlab_config::parse_duration(chaos.spec.delay.as_deref()?).ok()?)
            }
        };
        let meta = &chaos.metadata;
        Some(Self {
            fault: FaultRef::new(
                meta.namespace.as_deref().unwrap_or_default(),
                meta.name.as_deref().unwrap_or_default(),
                "UpstreamDNSChaos",
                chaos.action(),
            ),
            key: FaultKey::of(chaos),
            action,
            patterns: chaos.spec.patterns.clone(),
            created: meta.creation_timestamp.as_ref().map_or(Timestamp::MIN, |t| t.0),
        })
    }
}

/// The UpstreamDNSChaos rules in force, newest first.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Rule>,
}

impl Faults {
    /// The rules of `faults` in force at `now`, and how long until one ends by itself.
    pub fn build<'a>(
        faults: impl IntoIterator<Item = &'a UpstreamDnsChaos>,
        now: Timestamp,
    ) -> (Self, Option<Duration>) {
        let mut rules = Vec::new();
        let mut next: Option<Duration> = None;
        for chaos in faults {
            let window = Window::of(&chaos.metadata, chaos.spec.duration.as_deref());
            if let Some(left) = window.until_change(now) {
                next = Some(next.map_or(left, |n| n.min(left)));
            }
            if window.active_at(now)
                && let Some(rule) = Rule::of(chaos)
            {
                rules.push(rule);
            }
        }
        rules.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.fault.name.cmp(&b.fault.name)));
        (Self { rules }, next)
    }

    /// The rule for a query for `qname`, if any (the newest whose patterns match).
    pub fn decide(&self, qname: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| pattern::any(&r.patterns, qname))
    }
}

/// The faults the resolver consults, and what they did.
#[derive(Debug)]
pub struct State {
    faults: RwLock<Arc<Faults>>,
    /// Counters into the faults' status.
    pub reporter: Arc<Reporter>,
}

impl Default for State {
    fn default() -> Self {
        Self { faults: RwLock::default(), reporter: Reporter::new(REPORTER) }
    }
}

impl State {
    /// The faults in force.
    pub fn faults(&self) -> Arc<Faults> {
        self.faults.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swaps in new faults.
    pub fn set(&self, faults: Faults) {
        *self.faults.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(faults);
    }
}

/// Follows the UpstreamDNSChaos objects into `state` until `shutdown`, and writes the counters.
pub async fn watch(client: Client, state: Arc<State>, shutdown: CancellationToken) {
    let reporter = state.reporter.clone().run(client.clone(), Duration::from_secs(1));
    let reporter_token = shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = reporter_token.cancelled() => {}
            _ = reporter => {}
        }
    });
    let (cache, mut rx) =
        reflector::<UpstreamDnsChaos>(client, ListParams::default(), shutdown.child_token());
    cache.wait_synced().await;
    loop {
        while rx.try_recv().is_ok() {}
        let list = cache.list();
        let (faults, next) = Faults::build(list.iter().map(|f| f.as_ref()), Timestamp::now());
        state.set(faults);
        let wake = next.map(|d| d + Duration::from_millis(1));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            change = rx.recv() => if change.is_none() { return },
            () = async {
                match wake {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
    use netlab_chaos::UpstreamDnsChaosSpec;

    use super::*;

    fn chaos(name: &str, action: UpstreamAction, created: &str, patterns: &[&str]) -> UpstreamDnsChaos {
        UpstreamDnsChaos {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("default".into()),
                creation_timestamp: Some(Time(created.parse().unwrap())),
                ..Default::default()
            },
            spec: UpstreamDnsChaosSpec {
                action,
                patterns: patterns.iter().map(|p| p.to_string()).collect(),
                delay: Some("300ms".into()),
                duration: None,
            },
            status: None,
        }
    }

    const T0: &str = "2026-12-07T10:00:00Z";

    #[test]
    fn patterns_scope_and_newest_wins() {
        let down = chaos("down", UpstreamAction::Unreachable, T0, &[]);
        let slow = chaos("slow", UpstreamAction::Delay, "2026-12-07T10:00:01Z", &["example.*"]);
        let (f, next) = Faults::build([&down, &slow], "2026-12-07T10:00:02Z".parse().unwrap());
        assert_eq!(next, None);
        let r = f.decide("www.example.com.").unwrap();
        assert_eq!((r.action, r.fault.name.as_str()), (Action::Unreachable, "default/down"));
        assert_eq!(f.decide("example.com.").unwrap().action, Action::Delay(Duration::from_millis(300)));
        assert_eq!(f.decide(".").unwrap().action, Action::Unreachable, "health probes too");
        assert_eq!(f.decide("example.com.").unwrap().fault.kind, "UpstreamDNSChaos");
    }

    #[test]
    fn duration_ends_it() {
        let mut c = chaos("sf", UpstreamAction::Servfail, T0, &["example.com"]);
        c.spec.duration = Some("10s".into());
        let (f, next) = Faults::build([&c], "2026-12-07T10:00:04Z".parse().unwrap());
        assert_eq!(f.decide("example.com.").unwrap().action, Action::ServFail);
        assert!(f.decide("www.example.com.").is_none());
        assert_eq!(next, Some(Duration::from_secs(6)));
        let (f, _) = Faults::build([&c], "2026-12-07T10:00:10Z".parse().unwrap());
        assert!(f.decide("example.com.").is_none());
    }
}
