//! Component faults (ComponentChaos): every netlab process serves behind one gate, so that a
//! `stop`, `pause` or `kill` aimed at it makes it behave to everything around it as a dead, hung
//! or killed process would.
//!
//! - `stop`: its listeners close (connecting is refused, established connections are closed),
//!   its DNS socket closes (ICMP port unreachable), its loops do nothing. What it already
//!   programmed stays: iptables rules keep working, running pods keep running.
//! - `pause`: as SIGSTOP: connections are accepted and never answered, loops are frozen; on
//!   resume they carry on where they were, as after SIGCONT.
//! - `kill`: it records the kill in the fault's status and exits with 137 at once, once per
//!   fault; its supervisor (`restart: unless-stopped`, `netlab up`) starts it again.
//!
//! While held, its health endpoints answer 503 naming the fault, and `/fault` on its health port
//! tells what holds it; `DELETE /fault` lifts the fault locally, which is how `netlab fault
//! delete` ends an apiserver stop (the API that would delete the object is the one refusing).
//!
//! # Layout
//! - [`gate`]: the process's state, which loops await.
//! - [`io`], [`listener`]: gated connections and TCP listeners (tonic, axum).
//! - [`socket`]: gated sockets for servers with their own socket loop (DNS over UDP, hickory).
//! - [`decide`]: which fault holds this process now. [`watch`]: the loop that follows the
//!   faults and sets the gate. [`http`]: the health guard and `/fault`.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use netlab_chaos::{
    ComponentChaos, FaultRef,
    report::{FaultKey, Reporter},
    status::counter,
};
use netlab_proto::apiserver::v1::Resource;
use tokio::sync::Notify;

pub mod decide;
pub mod gate;
pub mod http;
pub mod io;
pub mod listener;
pub mod socket;
pub mod watch;

pub use decide::Me;
pub use gate::{Gate, Mode};
pub use io::GatedIo;
pub use listener::GatedListener;

/// One process's faults: who it is, its gate, its counters. Clones share them.
#[derive(Clone)]
pub struct Faults {
    inner: Arc<Inner>,
}

struct Inner {
    me: Me,
    gate: Gate,
    reporter: Arc<Reporter>,
    /// The uids of faults lifted through `DELETE /fault`.
    lifted: Mutex<BTreeSet<String>>,
    /// The fault holding the process, as `/fault` shows it.
    holding: Mutex<Option<Arc<ComponentChaos>>>,
    relook: Notify,
    /// How long a new stop or pause waits before it holds the process.
    settle: std::time::Duration,
    /// Whether the faults have been listed and decided on once.
    synced: std::sync::atomic::AtomicBool,
    exit: Box<dyn Fn(i32) + Send + Sync>,
}

// === impl Faults ===

impl Faults {
    /// The faults of the process `me`; a kill exits the process.
    pub fn new(me: Me) -> Self {
        Self::with_exit(me, Box::new(|code| std::process::exit(code)))
    }

    /// [`Faults::new`] with another way to exit, for tests.
    pub fn with_exit(me: Me, exit: Box<dyn Fn(i32) + Send + Sync>) -> Self {
        let reporter = Reporter::new(me.reporter());
        Self {
            inner: Arc::new(Inner {
                me,
                gate: Gate::new(),
                reporter,
                lifted: Mutex::default(),
                holding: Mutex::default(),
                relook: Notify::new(),
                settle: std::time::Duration::ZERO,
                synced: Default::default(),
                exit,
            }),
        }
    }

    /// Makes a new stop or pause wait `settle` before it holds the process. For the apiserver,
    /// whose own API creates the fault: the create (or the un-pause) that brings the fault in
    /// gets its answer first, as an operator's `kill -STOP` comes after the command that asked
    /// for it returned. Without it the caller sees its connection broken mid-answer.
    pub fn settle(self, settle: std::time::Duration) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.settle = settle;
                Self { inner: Arc::new(inner) }
            }
            // Already shared: keep as it is (set it right after `new`).
            Err(inner) => Self { inner },
        }
    }

    /// Who this process is.
    pub fn me(&self) -> &Me {
        &self.inner.me
    }

    /// The gate loops await.
    pub fn gate(&self) -> &Gate {
        &self.inner.gate
    }

    /// Its counters (`requestsRefused`), flushed by [`Faults::watch`].
    pub fn reporter(&self) -> &Arc<Reporter> {
        &self.inner.reporter
    }

    /// Gates `listener`; connections held while paused are counted and marked.
    pub fn listener(&self, listener: tokio::net::TcpListener) -> std::io::Result<GatedListener> {
        let faults = self.clone();
        Ok(GatedListener::new(listener, self.gate())?
            .on_held(Arc::new(move |fault, peer| faults.held(fault, peer))))
    }

    /// Counts a request or connection that a stopped or paused process refused or held, and
    /// marks it on a span of its own (the server never saw a request to put it on).
    pub fn held(&self, fault: &FaultRef, peer: SocketAddr) {
        let (namespace, name) = fault.name.split_once('/').unwrap_or(("", fault.name.as_str()));
        let key =
            FaultKey { resource: Resource::ComponentChaos, namespace: namespace.into(), name: name.into() };
        self.inner.reporter.add(&key, counter::REQUESTS_REFUSED, 1);
        let span = tracing::info_span!("held_connection", component = %self.me().reporter(), %peer);
        fault.mark(&span, "held unanswered");
    }

    /// Holds the process for `hold`'s fault, or lets it run.
    pub(crate) fn hold(&self, hold: Option<(Mode, Arc<ComponentChaos>)>) {
        let (mode, fault) = match &hold {
            Some((mode, fault)) => (*mode, Some(decide::fault_ref(fault))),
            None => (Mode::Running, None),
        };
        let before = self.gate().state();
        *self.inner.holding.lock().unwrap_or_else(|e| e.into_inner()) = hold.map(|(_, f)| f);
        if !self.gate().set(mode, fault.clone()) {
            return;
        }
        let me = self.me().reporter();
        let span = tracing::info_span!("component_fault", component = %me, state = mode.as_str());
        match (&fault, &before.fault) {
            (Some(f), _) => {
                f.mark(&span, mode.as_str());
                tracing::warn!(component = %me, fault = %f.name, state = mode.as_str(), "Held by ComponentChaos.");
            }
            (None, Some(f)) => {
                f.mark(&span, "resumed");
                tracing::warn!(component = %me, fault = %f.name, "Fault over; running again.");
            }
            (None, None) => {}
        }
    }

    /// The fault holding the process, if any.
    pub fn holding(&self) -> Option<Arc<ComponentChaos>> {
        self.inner.holding.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Lifts the fault holding the process (until the process restarts); returns it.
    pub fn lift(&self) -> Option<Arc<ComponentChaos>> {
        let fault = self.holding()?;
        if let Some(uid) = &fault.metadata.uid {
            self.inner.lifted.lock().unwrap_or_else(|e| e.into_inner()).insert(uid.clone());
        }
        self.inner.relook.notify_one();
        Some(fault)
    }

    /// Whether the faults have been listed and decided on (`/fault` says so, for tests and
    /// people who want to know the process has seen them).
    pub fn is_synced(&self) -> bool {
        self.inner.synced.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn set_synced(&self) {
        self.inner.synced.store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn lifted(&self) -> BTreeSet<String> {
        self.inner.lifted.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) async fn relooked(&self) {
        self.inner.relook.notified().await;
    }
}

pub use netlab_chaos::lab::Component;

impl Faults {
    /// Spawns [`Faults::watch`] (the faults through the apiserver, the counters back).
    pub fn spawn_watch(&self, client: netlab_client::Client, shutdown: tokio_util::sync::CancellationToken) {
        let faults = self.clone();
        tokio::spawn(async move { faults.watch(client, shutdown).await });
    }
}
