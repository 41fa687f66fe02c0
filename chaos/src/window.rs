//! When a fault is in force: from its creation until its `duration` is up, except while Chaos
//! Mesh's pause annotation holds it. Every enforcer decides this from the object and its own
//! clock, so a fault ends on time even when the controller that records `TimeUp` is down.

use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::PAUSE_ANNOTATION;

/// A fault's time in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// When it began (`metadata.creationTimestamp`).
    pub start: Timestamp,
    /// When it ends, if it has a duration.
    pub end: Option<Timestamp>,
    /// Whether the pause annotation is set.
    pub paused: bool,
    /// Whether the object is being deleted.
    pub deleting: bool,
}

impl Window {
    /// The window of a fault with `meta` and `spec.duration`. A duration that does not parse
    /// (the apiserver refuses those) counts as none.
    pub fn of(meta: &ObjectMeta, duration: Option<&str>) -> Self {
        let start = meta.creation_timestamp.as_ref().map(|t| t.0).unwrap_or(Timestamp::MIN);
        let end = duration
            .and_then(|d| netlab_config::parse_duration(d).ok())
            .and_then(|d| jiff::SignedDuration::try_from(d).ok())
            .and_then(|d| start.checked_add(d).ok());
        let paused =
            meta.annotations.as_ref().and_then(|a| a.get(PAUSE_ANNOTATION)).is_some_and(|v| v == "true");
        Self { start, end, paused, deleting: meta.deletion_timestamp.is_some() }
    }

    /// Whether the fault is in force at `now`.
    pub fn active_at(&self, now: Timestamp) -> bool {
        !self.paused && !self.deleting && now >= self.start && self.end.is_none_or(|end| now < end)
    }

    /// Whether the duration is over at `now`.
    pub fn expired_at(&self, now: Timestamp) -> bool {
        self.end.is_some_and(|end| now >= end)
    }

    /// How long until the fault's state changes by itself (its end), if it will.
    pub fn until_change(&self, now: Timestamp) -> Option<Duration> {
        let end = self.end?;
        let left = end.duration_since(now);
        (!left.is_negative()).then(|| left.unsigned_abs())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn duration_and_pause() {
        let start: Timestamp = "2026-12-07T10:00:00Z".parse().unwrap();
        let mut meta = ObjectMeta { creation_timestamp: Some(Time(start)), ..Default::default() };
        let w = Window::of(&meta, Some("60s"));
        assert!(w.active_at(start));
        assert!(w.active_at("2026-12-07T10:00:59Z".parse().unwrap()));
        assert!(!w.active_at("2026-12-07T10:01:00Z".parse().unwrap()));
        assert!(w.expired_at("2026-12-07T10:01:00Z".parse().unwrap()));
        assert_eq!(w.until_change("2026-12-07T10:00:30Z".parse().unwrap()), Some(Duration::from_secs(30)));
        assert!(Window::of(&meta, None).active_at("2030-01-01T00:00:00Z".parse().unwrap()));

        meta.annotations = Some([(PAUSE_ANNOTATION.to_string(), "true".to_string())].into());
        assert!(!Window::of(&meta, None).active_at(start));
    }
}
