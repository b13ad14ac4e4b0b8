//! `rateLimit` of a sink: a token bucket holding one token, shared by every thread of the sink.
//! Each request (or write) takes the next free slot; slots are `per / count` apart, so requests
//! start evenly spaced and the rate over any window of a few slots is the limit, never above
//! it. Retries take slots like first attempts.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often a wait for a slot looks at the stop request.
const STOP_POLL: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct RateLimit {
    interval: Duration,
    next: Mutex<Option<Instant>>,
}

impl RateLimit {
    /// At most `count` per `per_ms` (both positive; the checker ensures it).
    pub fn new(count: u64, per_ms: u64) -> RateLimit {
        let nanos = u128::from(per_ms.max(1)) * 1_000_000 / u128::from(count.max(1));
        RateLimit { interval: Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)), next: Mutex::new(None) }
    }

    /// Reserves the next slot and returns when it starts (now or later).
    pub fn reserve(&self) -> Instant {
        let now = Instant::now();
        let mut next = self.next.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let at = next.map_or(now, |next| next.max(now));
        *next = Some(at + self.interval);
        at
    }

    /// Waits for the next slot. Returns the time waited, or `None` when `stop()` became true
    /// during the wait (the slot is given up).
    pub fn wait(&self, stop: impl Fn() -> bool) -> Option<Duration> {
        let started = Instant::now();
        let at = self.reserve();
        loop {
            let now = Instant::now();
            if now >= at {
                return Some(now - started);
            }
            if stop() {
                return None;
            }
            std::thread::sleep((at - now).min(STOP_POLL));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_evenly_spaced_at_the_limit() {
        let limit = RateLimit::new(100, 1000);
        let first = limit.reserve();
        let slots: Vec<Instant> = (0..50).map(|_| limit.reserve()).collect();
        assert_eq!(slots[0] - first, Duration::from_millis(10));
        assert_eq!(slots[49] - first, Duration::from_millis(500));
        let per_minute = RateLimit::new(3000, 60_000);
        assert_eq!(per_minute.interval, Duration::from_millis(20));
    }

    #[test]
    fn a_wait_gives_up_its_slot_when_asked_to_stop() {
        let limit = RateLimit::new(1, 60_000);
        assert!(limit.wait(|| false).is_some_and(|waited| waited < Duration::from_millis(50)));
        let started = Instant::now();
        assert_eq!(limit.wait(|| true), None);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
