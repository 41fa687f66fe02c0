//! The warm-pool arithmetic of pkg/ipamd/ipamd.go: when the pool is too low or too high, how
//! many addresses or prefixes to ask for, and whether an ENI may be freed.
//!
//! Why pure functions over [`Stats`]: these few formulas (`isDatastorePoolTooLow`,
//! `datastoreTargetState`, `getPrefixesNeeded`, `GetENIResourcesToAllocate`,
//! `shouldRemoveExtraENIs`) decide every ENI and address the node holds, and the docs' worked
//! examples are checked against them directly, without EC2.

use crate::datastore::{IPS_PER_PREFIX, Stats};
use crate::knobs::Knobs;

/// The resolved targets and limits for one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// `WARM_ENI_TARGET`.
    pub warm_eni_target: u32,
    /// `WARM_IP_TARGET` (0 = unset).
    pub warm_ip_target: u32,
    /// `MINIMUM_IP_TARGET` (0 = unset).
    pub minimum_ip_target: u32,
    /// `WARM_PREFIX_TARGET`.
    pub warm_prefix_target: u32,
    /// Prefix delegation in effect (knob on and a Nitro type).
    pub prefix_delegation: bool,
    /// `maxIPsPerENI`: addresses per ENI for pods (PD: prefixes × 16).
    pub max_ips_per_eni: u32,
    /// `maxPrefixesPerENI` (PD only; else 0).
    pub max_prefixes_per_eni: u32,
    /// `GetENIIPv4Limit()`: IPv4 slots per ENI minus the primary.
    pub eni_ipv4_limit: u32,
    /// `maxENI`: the instance limit, lowered by `MAX_ENI`.
    pub max_enis: u32,
    /// `maxPods`.
    pub max_pods: u32,
}

/// What `datastoreTargetState` says when WARM_IP/MINIMUM_IP targets are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TargetState {
    /// Addresses (PD: prefixes) short of the targets.
    pub short: u32,
    /// Addresses (PD: prefixes) over the targets.
    pub over: u32,
}

// === impl Policy ===

impl Policy {
    /// The policy for an instance type with `max_enis` ENIs of `ipv4_per_eni` slots.
    /// `pd_supported` is whether the type is Nitro.
    pub fn new(knobs: &Knobs, max_enis: u32, ipv4_per_eni: u32, pd_supported: bool, max_pods: u32) -> Self {
        let prefix_delegation = knobs.enable_prefix_delegation && pd_supported;
        let eni_ipv4_limit = ipv4_per_eni.saturating_sub(1);
        let (max_ips_per_eni, max_prefixes_per_eni) = if prefix_delegation {
            (eni_ipv4_limit * IPS_PER_PREFIX, eni_ipv4_limit)
        } else {
            (eni_ipv4_limit, 0)
        };
        Self {
            warm_eni_target: knobs.warm_eni_target,
            warm_ip_target: knobs.warm_ip_target,
            minimum_ip_target: knobs.minimum_ip_target,
            warm_prefix_target: knobs.warm_prefix_target,
            prefix_delegation,
            max_ips_per_eni,
            max_prefixes_per_eni,
            eni_ipv4_limit,
            max_enis: knobs.max_enis(max_enis),
            max_pods,
        }
    }

    /// `warmIPTargetsDefined`.
    pub fn warm_ip_targets_defined(&self) -> bool {
        self.warm_ip_target != 0 || self.minimum_ip_target != 0
    }

    /// `datastoreTargetState` (network card 0): `None` when neither WARM_IP_TARGET nor
    /// MINIMUM_IP_TARGET is set.
    pub fn target_state(&self, s: &Stats) -> Option<TargetState> {
        if !self.warm_ip_targets_defined() {
            return None;
        }
        let (warm, min) = (i64::from(self.warm_ip_target), i64::from(self.minimum_ip_target));
        let (total, available) = (i64::from(s.total_ips), i64::from(s.available()));
        let short = (warm - available).max(0).max(min - total);
        let over = (available - warm).max(0).min(total - min).max(0);
        if self.prefix_delegation {
            let per = i64::from(IPS_PER_PREFIX);
            let short_prefix = div_ceil(short, per);
            let needed_for_warm = div_ceil(i64::from(s.assigned_ips) + warm, per);
            let needed_for_min = div_ceil(min, per);
            let total_prefixes = i64::from(s.total_prefixes);
            let over_prefix = i64::from(s.free_prefixes).min(total_prefixes - needed_for_warm).max(0);
            let over_prefix = over_prefix.min(total_prefixes - needed_for_min).max(0);
            return Some(TargetState { short: to_u32(short_prefix), over: to_u32(over_prefix) });
        }
        Some(TargetState { short: to_u32(short), over: to_u32(over) })
    }

    /// `isDatastorePoolTooLow` for network card 0.
    pub fn is_too_low(&self, s: &Stats) -> bool {
        if s.total_ips >= self.max_pods {
            return false;
        }
        if let Some(t) = self.target_state(s) {
            return t.short > 0;
        }
        let (warm_target, per) = if self.prefix_delegation {
            (self.warm_prefix_target, IPS_PER_PREFIX)
        } else {
            (self.warm_eni_target, self.max_ips_per_eni)
        };
        let available = s.available();
        available < per * warm_target || (warm_target == 0 && available == 0)
    }

    /// `isDatastorePoolTooHigh`: how many blocks are over the targets (0 = not too high). Only
    /// WARM_IP/MINIMUM_IP targets, or WARM_PREFIX_TARGET in PD mode, ever make it high.
    pub fn excess(&self, s: &Stats) -> u32 {
        if let Some(t) = self.target_state(s) {
            return t.over;
        }
        if self.prefix_delegation {
            return s.free_prefixes.saturating_sub(self.warm_prefix_target);
        }
        0
    }

    /// `shouldRemoveExtraENIs`; `freeable_eni_exists` is the datastore's
    /// `CheckFreeableENIexists` (only consulted in PD mode).
    pub fn should_remove_extra_enis(&self, s: &Stats, freeable_eni_exists: bool) -> bool {
        if self.warm_ip_targets_defined() {
            return true;
        }
        let warm = if self.prefix_delegation { self.warm_prefix_target } else { self.warm_eni_target } + 1;
        s.available() >= warm * self.max_ips_per_eni || (self.prefix_delegation && freeable_eni_exists)
    }

    /// `datastorePrefixTargetState` + `getPrefixesNeeded`: prefixes to ask for (at least 1).
    pub fn prefixes_needed(&self, s: &Stats) -> u32 {
        if let Some(t) = self.target_state(s) {
            return t.short.max(1);
        }
        self.warm_prefix_target.saturating_sub(s.free_prefixes).max(1)
    }

    /// `tryAssignIPs`'s amount for an ENI holding `current` blocks; `None` when the targets are
    /// met (nothing to assign).
    pub fn ips_to_assign(&self, s: &Stats, current: u32) -> Option<u32> {
        let room = self.max_ips_per_eni.saturating_sub(current);
        match self.target_state(s) {
            Some(t) if t.short == 0 => None,
            Some(t) => Some(room.min(t.short)),
            None => Some(room),
        }
    }

    /// `GetENIResourcesToAllocate`: addresses (or prefixes) to create a new ENI with.
    pub fn eni_resources_to_allocate(&self, s: &Stats) -> u32 {
        if self.prefix_delegation {
            return self.prefixes_needed(s).min(self.max_prefixes_per_eni);
        }
        match self.target_state(s) {
            Some(t) => t.short.min(self.max_ips_per_eni),
            None => self.max_ips_per_eni,
        }
    }
}

fn div_ceil(x: i64, y: i64) -> i64 {
    (x + y - 1).div_euclid(y)
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(knobs: Knobs, max_pods: u32) -> Policy {
        // t3.small: 3 ENIs × 4 IPv4 (Nitro).
        Policy::new(&knobs, 3, 4, true, max_pods)
    }

    fn stats(total: u32, assigned: u32) -> Stats {
        Stats { total_ips: total, assigned_ips: assigned, ..Stats::default() }
    }

    #[test]
    fn warm_eni_target_keeps_a_whole_eni_of_addresses_free() {
        let p = policy(Knobs::default(), 11);
        assert_eq!(p.max_ips_per_eni, 3);
        assert!(p.is_too_low(&stats(0, 0)));
        assert!(!p.is_too_low(&stats(3, 0)));
        assert!(p.is_too_low(&stats(3, 1)), "2 free < 3 × WARM_ENI_TARGET");
        assert!(!p.is_too_low(&stats(9, 5)));
        assert!(p.is_too_low(&stats(9, 9)));
        assert_eq!(p.ips_to_assign(&stats(0, 0), 0), Some(3));
        assert_eq!(p.excess(&stats(9, 0)), 0, "WARM_ENI_TARGET alone never shrinks by addresses");
        assert!(p.should_remove_extra_enis(&stats(9, 3), false), "6 free ≥ (1+1) × 3");
        assert!(!p.should_remove_extra_enis(&stats(9, 4), false));
    }

    #[test]
    fn max_pods_stops_growth() {
        let p = policy(Knobs::default(), 3);
        assert!(!p.is_too_low(&stats(3, 3)));
    }

    #[test]
    fn warm_ip_and_minimum_ip_targets() {
        let knobs = Knobs { warm_ip_target: 2, minimum_ip_target: 5, ..Knobs::default() };
        let p = policy(knobs, 11);
        assert_eq!(p.target_state(&stats(0, 0)), Some(TargetState { short: 5, over: 0 }));
        assert_eq!(p.ips_to_assign(&stats(0, 0), 0), Some(3));
        assert_eq!(p.target_state(&stats(3, 0)), Some(TargetState { short: 2, over: 0 }));
        assert_eq!(p.eni_resources_to_allocate(&stats(3, 0)), 2);
        assert!(!p.is_too_low(&stats(5, 0)));
        assert_eq!(p.target_state(&stats(5, 5)), Some(TargetState { short: 2, over: 0 }));
        assert_eq!(p.target_state(&stats(9, 1)), Some(TargetState { short: 0, over: 4 }));
        assert_eq!(p.excess(&stats(9, 1)), 4);
        assert_eq!(p.excess(&stats(6, 0)), 1, "never below MINIMUM_IP_TARGET");
    }

    #[test]
    fn minimum_ip_target_alone_means_no_warm_addresses() {
        let p = policy(Knobs { minimum_ip_target: 3, ..Knobs::default() }, 11);
        assert!(!p.is_too_low(&stats(3, 3)), "warm target 0: full is fine");
        assert!(p.is_too_low(&stats(2, 0)));
    }

    #[test]
    fn prefix_delegation_counts_in_prefixes() {
        let p = policy(Knobs { enable_prefix_delegation: true, ..Knobs::default() }, 110);
        assert_eq!((p.max_prefixes_per_eni, p.max_ips_per_eni), (3, 48));
        let empty = Stats::default();
        assert!(p.is_too_low(&empty), "WARM_PREFIX_TARGET 0 and nothing free");
        assert_eq!(p.prefixes_needed(&empty), 1);
        let one =
            Stats { total_ips: 16, total_prefixes: 1, assigned_ips: 1, free_prefixes: 0, cooldown_ips: 0 };
        assert!(!p.is_too_low(&one));
        let p1 =
            policy(Knobs { enable_prefix_delegation: true, warm_prefix_target: 1, ..Knobs::default() }, 110);
        assert!(p1.is_too_low(&one), "15 free < 16 × 1");
        assert_eq!(p1.prefixes_needed(&one), 1);
        let three_free =
            Stats { total_ips: 48, total_prefixes: 3, assigned_ips: 0, free_prefixes: 3, cooldown_ips: 0 };
        assert_eq!(p1.excess(&three_free), 2);
    }

    #[test]
    fn prefix_delegation_needs_nitro() {
        let p = Policy::new(&Knobs { enable_prefix_delegation: true, ..Knobs::default() }, 3, 4, false, 11);
        assert!(!p.prefix_delegation);
        assert_eq!(p.max_ips_per_eni, 3);
    }

    #[test]
    fn max_eni_caps_the_instance_limit() {
        let p = Policy::new(&Knobs { max_eni: Some(2), ..Knobs::default() }, 3, 4, true, 11);
        assert_eq!(p.max_enis, 2);
    }
}
