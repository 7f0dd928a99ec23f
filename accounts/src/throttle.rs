//! Slowing down a source of failed logins.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A growing delay per source (a client's IP address) of failed logins: none for the first
/// failure, then 1 s, 2 s, 4 s ... up to [`Throttle::MAX_DELAY`]; a source is forgotten
/// [`Throttle::FORGET_AFTER`] after its last failure, or at its first success.
///
/// The caller waits the delay before it answers the failure, so a guesser gets a few
/// attempts a minute instead of thousands, while a user who mistyped once notices nothing.
///
/// ```
/// use std::time::{Duration, Instant};
/// let t = accounts::Throttle::default();
/// let now = Instant::now();
/// assert_eq!(t.failed("192.0.2.1", now), Duration::ZERO);
/// assert_eq!(t.failed("192.0.2.1", now), Duration::from_secs(1));
/// assert_eq!(t.failed("192.0.2.1", now), Duration::from_secs(2));
/// assert_eq!(t.failed("198.51.100.7", now), Duration::ZERO);
/// t.succeeded("192.0.2.1");
/// assert_eq!(t.failed("192.0.2.1", now), Duration::ZERO);
/// ```
#[derive(Debug, Default)]
pub struct Throttle {
    sources: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Throttle {
    /// The longest delay.
    pub const MAX_DELAY: Duration = Duration::from_secs(30);
    /// How long a source's failures are remembered.
    pub const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
    /// At most this many sources are remembered; the oldest are forgotten first.
    const MAX_SOURCES: usize = 10_000;

    /// Records a failure from `source` at `now`; returns how long to wait before answering.
    pub fn failed(&self, source: &str, now: Instant) -> Duration {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if sources.len() >= Self::MAX_SOURCES && !sources.contains_key(source) {
            sources.retain(|_, f| now.saturating_duration_since(f.last) < Self::FORGET_AFTER);
            if sources.len() >= Self::MAX_SOURCES
                && let Some(oldest) = sources
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone())
            {
                sources.remove(&oldest);
            }
        }
        let f = sources.entry(source.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
        });
        if now.saturating_duration_since(f.last) >= Self::FORGET_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        match f.count {
            1 => Duration::ZERO,
            n => Duration::from_secs(1u64 << (n - 2).min(5)).min(Self::MAX_DELAY),
        }
    }

    /// A login from `source` succeeded: its failures are forgotten.
    pub fn succeeded(&self, source: &str) {
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources.remove(source);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_to_the_cap_and_are_forgotten() {
        let t = Throttle::default();
        let now = Instant::now();
        let delays: Vec<u64> = (0..9).map(|_| t.failed("x", now).as_secs()).collect();
        assert_eq!(delays, [0, 1, 2, 4, 8, 16, 30, 30, 30]);
        let later = now + Throttle::FORGET_AFTER;
        assert_eq!(t.failed("x", later), Duration::ZERO);
    }
}
