//! The arithmetic of a rolling update, as upstream's `deploymentutil` computes it, over plain
//! numbers so it can be tested without a cluster: how many pods may surge above `replicas`, how
//! many may be unavailable, how far the new ReplicaSet may grow and the old ones shrink.

use k8s_openapi::{
    api::apps::v1::{Deployment, ReplicaSet},
    apimachinery::pkg::util::intstr::IntOrString,
};

/// `deployment.kubernetes.io/revision`: which rollout a ReplicaSet belongs to.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// `deployment.kubernetes.io/desired-replicas`: the Deployment's replicas when last scaled.
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
/// `deployment.kubernetes.io/max-replicas`: replicas + maxSurge when last scaled.
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
/// `deployment.kubernetes.io/revision-history`: earlier revisions of the same template.
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
/// The label that tells one ReplicaSet's pods from another's.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// `intstr.GetScaledValueFromIntOrPercent`: an absolute number, or a percentage of `total`
/// rounded up (maxSurge) or down (maxUnavailable). A malformed percentage counts as 0.
pub fn scaled_value(v: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match v {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let Some(pct) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else { return 0 };
            let product = pct * i64::from(total);
            let v = if round_up { (product + 99).div_euclid(100) } else { product.div_euclid(100) };
            v.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
        }
    }
}

/// `ResolveFenceposts`: (maxSurge, maxUnavailable) for `desired` replicas. Surge rounds up and
/// unavailable down; if both come to 0, one pod may be unavailable so the rollout can move.
pub fn resolve_fenceposts(
    surge: Option<&IntOrString>,
    unavailable: Option<&IntOrString>,
    desired: i32,
) -> (i32, i32) {
    let surge = scaled_value(surge, desired, true);
    let unavailable = scaled_value(unavailable, desired, false);
    if surge == 0 && unavailable == 0 { (0, 1) } else { (surge, unavailable) }
}

/// `spec.replicas` (defaulted to 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

/// Whether the strategy is RollingUpdate (the default).
pub fn is_rolling(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
        == "RollingUpdate"
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d.spec.as_ref().and_then(|s| s.strategy.as_ref()).and_then(|s| s.rolling_update.as_ref());
    // The apiserver defaults both to 25%; an object written without them still rolls as upstream.
    let default = IntOrString::String("25%".into());
    let surge = ru.and_then(|r| r.max_surge.as_ref()).unwrap_or(&default);
    let unavailable = ru.and_then(|r| r.max_unavailable.as_ref()).unwrap_or(&default);
    resolve_fenceposts(Some(surge), Some(unavailable), replicas(d))
}

/// `MaxSurge`: 0 unless rolling.
pub fn max_surge(d: &Deployment) -> i32 {
    if is_rolling(d) { fenceposts(d).0 } else { 0 }
}

/// `MaxUnavailable`: 0 unless rolling with replicas; never more than replicas.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

/// A ReplicaSet's `spec.replicas`.
pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

/// A ReplicaSet's `status.availableReplicas`.
pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
}

/// An integer annotation of a ReplicaSet.
pub fn annotation(rs: &ReplicaSet, key: &str) -> Option<i64> {
    rs.metadata.annotations.as_ref()?.get(key)?.parse().ok()
}

/// `NewRSNewReplicas` for RollingUpdate: the new ReplicaSet grows while the total stays within
/// `replicas + maxSurge`, never beyond `replicas`. `total` is the sum of every ReplicaSet's
/// `spec.replicas`, the new one's included.
pub fn new_rs_new_replicas(desired: i32, max_surge: i32, total: i32, new_replicas: i32) -> i32 {
    let max_total = desired + max_surge;
    if total >= max_total {
        return new_replicas;
    }
    let scale_up = (max_total - total).min(desired - new_replicas);
    new_replicas + scale_up.max(0)
}

/// `reconcileOldReplicaSets`' budget: how many old pods may go now, so that at least
/// `desired - maxUnavailable` pods stay available, counting the new ReplicaSet's unavailable
/// pods as already missing.
pub fn max_scaled_down(all_pods: i32, desired: i32, max_unavailable: i32, new_rs_unavailable: i32) -> i32 {
    let min_available = desired - max_unavailable;
    all_pods - min_available - new_rs_unavailable
}

/// `scaleDownOldReplicaSetsForRollingUpdate`'s budget: available pods above the minimum.
pub fn scale_down_budget(available: i32, desired: i32, max_unavailable: i32) -> i32 {
    (available - (desired - max_unavailable)).max(0)
}

/// `getReplicaSetFraction` and `GetProportion`: the share of `to_add` a ReplicaSet of `size`
/// gets during a scale in the middle of a rollout, in proportion to its share of the
/// Deployment's size when last scaled (`annotated`, its max-replicas annotation).
pub fn proportion(size: i32, desired: i32, max_surge: i32, annotated: i32, to_add: i32, added: i32) -> i32 {
    if size == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let fraction = if desired == 0 {
        -size
    } else if annotated == 0 {
        0
    } else {
        let new_size = f64::from(size) * f64::from(desired + max_surge) / f64::from(annotated);
        new_size.round() as i32 - size
    };
    let allowed = to_add - added;
    if to_add > 0 { fraction.min(allowed) } else { fraction.max(allowed) }
}
