//! The `cache` plugin's policy: which answers are kept (zones, `disable success|denial`), for how
//! long (the answer's own TTL clamped to the plugin's minimum and maximum; SERVFAIL for
//! `servfail`), how many (separate capacities for positive and negative answers, a random entry
//! evicted when full, as CoreDNS's sharded cache does), and how much of the TTL is left on a hit.
//!
//! Entries are the encoded response (wire bytes): the handler decodes a hit and rewrites its ID
//! and TTLs, which keeps this module free of DNS library types.

use std::{
    collections::HashMap,
    hash::BuildHasher,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use crate::corefile::CacheOpts;

/// Shards, so concurrent queries rarely share a lock.
const SHARDS: usize = 64;

/// What kind of answer an entry is (CoreDNS's `type` label: success / denial).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// NOERROR with records.
    Success,
    /// NXDOMAIN or NODATA.
    Denial,
    /// SERVFAIL (counted as denial).
    ServFail,
}

impl Kind {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Success => "success",
            Kind::Denial | Kind::ServFail => "denial",
        }
    }
}

/// A cache key: lowercase name, type, and the DO bit (CoreDNS keys on it too).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    /// Lowercase absolute name.
    pub name: String,
    /// Query type code.
    pub qtype: u16,
    /// The query's DO bit: CoreDNS caches DNSSEC and plain answers apart.
    pub dnssec_ok: bool,
}

/// A hit.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The stored response.
    pub wire: Arc<[u8]>,
    /// Seconds of TTL left: every record of the reply gets this TTL.
    pub ttl_left: u32,
    /// Success or denial.
    pub kind: Kind,
    /// Until when `ttl_left` stays what it is (the next whole second it ticks down, or the
    /// entry's expiry): the packet cache may repeat this reply's bytes until then.
    pub same_until: Instant,
}

struct Entry {
    wire: Arc<[u8]>,
    expires: Instant,
    kind: Kind,
}

/// One `cache` instance (one per server block; a reload starts empty, as CoreDNS's does).
pub struct Cache {
    opts: CacheOpts,
    shards: Vec<Mutex<HashMap<Key, Entry>>>,
    success: AtomicUsize,
    denial: AtomicUsize,
    hasher: std::collections::hash_map::RandomState,
}

// === impl Cache ===

impl Cache {
    /// An empty cache with `opts`.
    pub fn new(opts: CacheOpts) -> Self {
        Self {
            opts,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            success: AtomicUsize::new(0),
            denial: AtomicUsize::new(0),
            hasher: Default::default(),
        }
    }

    /// Whether the cache covers `lower` at all (its zones).
    pub fn covers(&self, lower: &str) -> bool {
        self.opts.zones.iter().any(|z| crate::zone::is_subdomain(lower, z))
    }

    /// Entries (success, denial), for `coredns_cache_entries`.
    pub fn entries(&self) -> (usize, usize) {
        (self.success.load(Ordering::Relaxed), self.denial.load(Ordering::Relaxed))
    }

    fn shard(&self, key: &Key) -> &Mutex<HashMap<Key, Entry>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    fn counter(&self, kind: Kind) -> &AtomicUsize {
        match kind {
            Kind::Success => &self.success,
            _ => &self.denial,
        }
    }

    /// A live entry for `key` at `now`.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Hit> {
        let mut shard = self.shard(key).lock().unwrap_or_else(|e| e.into_inner());
        let entry = shard.get(key)?;
        if entry.expires <= now {
            let kind = entry.kind;
            shard.remove(key);
            self.counter(kind).fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let left = (entry.expires.duration_since(now).as_secs_f64().ceil() as u32).max(1);
        let same_until = entry.expires - Duration::from_secs(u64::from(left - 1));
        Some(Hit { wire: entry.wire.clone(), ttl_left: left, kind: entry.kind, same_until })
    }

    /// How long an answer of `kind` for `lower` with record TTL `ttl` would be kept; None when
    /// it must not be cached (disabled for the zone, or a zero TTL).
    pub fn duration_for(&self, lower: &str, kind: Kind, ttl: u32) -> Option<Duration> {
        let disabled = match kind {
            Kind::Success => &self.opts.disable_success,
            Kind::Denial | Kind::ServFail => &self.opts.disable_denial,
        };
        if disabled.iter().any(|z| crate::zone::is_subdomain(lower, z)) {
            return None;
        }
        let secs = match kind {
            Kind::Success => ttl.clamp(self.opts.success_min_ttl, self.opts.success_ttl),
            Kind::Denial => ttl.clamp(self.opts.denial_min_ttl, self.opts.denial_ttl),
            Kind::ServFail => self.opts.servfail_ttl,
        };
        (secs > 0).then(|| Duration::from_secs(secs.into()))
    }

    /// Stores `wire` for `key` if the policy allows.
    pub fn insert(&self, key: Key, kind: Kind, ttl: u32, wire: Vec<u8>, now: Instant) {
        let Some(keep) = self.duration_for(&key.name, kind, ttl) else { return };
        let cap = match kind {
            Kind::Success => self.opts.success_cap,
            _ => self.opts.denial_cap,
        };
        let per_shard = cap.div_ceil(SHARDS).max(1);
        let mut shard = self.shard(&key).lock().unwrap_or_else(|e| e.into_inner());
        let same_kind = shard.values().filter(|e| (e.kind == Kind::Success) == (kind == Kind::Success));
        if !shard.contains_key(&key) && same_kind.count() >= per_shard {
            // Full: drop one random entry of that kind (HashMap order is random enough).
            let victim = shard
                .iter()
                .find(|(_, e)| (e.kind == Kind::Success) == (kind == Kind::Success))
                .map(|(k, e)| (k.clone(), e.kind));
            if let Some((k, kd)) = victim {
                shard.remove(&k);
                self.counter(kd).fetch_sub(1, Ordering::Relaxed);
            }
        }
        let entry = Entry { wire: wire.into(), expires: now + keep, kind };
        match shard.insert(key, entry) {
            Some(old) => {
                self.counter(old.kind).fetch_sub(1, Ordering::Relaxed);
                self.counter(kind).fetch_add(1, Ordering::Relaxed);
            }
            None => {
                self.counter(kind).fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corefile::Corefile;

    fn cache(text: &str) -> Cache {
        let c = Corefile::parse(&format!(".:53 {{\n{text}\n}}\n")).unwrap();
        Cache::new(c.servers[0].plugins.cache.clone().unwrap())
    }

    fn key(name: &str) -> Key {
        Key { name: name.into(), qtype: 1, dnssec_ok: false }
    }

    #[test]
    fn ttl_is_capped_and_floored() {
        let c = cache(" cache 30");
        assert_eq!(c.duration_for("example.com.", Kind::Success, 300), Some(Duration::from_secs(30)));
        assert_eq!(c.duration_for("example.com.", Kind::Success, 2), Some(Duration::from_secs(5)));
        assert_eq!(c.duration_for("example.com.", Kind::Denial, 3600), Some(Duration::from_secs(30)));
        assert_eq!(c.duration_for("example.com.", Kind::ServFail, 0), Some(Duration::from_secs(5)));
    }

    #[test]
    fn kubeadm_disables_cluster_local() {
        let c = cache(" cache 30 {\n  disable success cluster.local\n  disable denial cluster.local\n }");
        assert_eq!(c.duration_for("a.b.svc.cluster.local.", Kind::Success, 30), None);
        assert_eq!(c.duration_for("a.b.svc.cluster.local.", Kind::Denial, 30), None);
        assert!(c.duration_for("example.com.", Kind::Success, 30).is_some());
        assert!(c.covers("example.com."));
    }

    #[test]
    fn hits_count_down_and_expire() {
        let c = cache(" cache 30");
        let t0 = Instant::now();
        c.insert(key("example.com."), Kind::Success, 20, vec![1, 2, 3], t0);
        let hit = c.get(&key("example.com."), t0 + Duration::from_secs(5)).unwrap();
        assert_eq!((&*hit.wire, hit.ttl_left, hit.kind), (&[1u8, 2, 3][..], 15, Kind::Success));
        assert_eq!(c.entries(), (1, 0));
        assert!(c.get(&key("example.com."), t0 + Duration::from_secs(21)).is_none());
        assert_eq!(c.entries(), (0, 0));
    }

    #[test]
    fn capacity_evicts() {
        let c = cache(" cache {\n  success 64\n }");
        let t0 = Instant::now();
        for i in 0..1000 {
            c.insert(key(&format!("n{i}.example.")), Kind::Success, 60, vec![0], t0);
        }
        // One entry per shard at most.
        assert!(c.entries().0 <= SHARDS, "{:?}", c.entries());
    }
}
