//! Duplicate suppression: an event whose key was accepted less than `--rate-limit-interval`
//! ago is refused, like Flux's one-token-per-interval limiter keyed by the event.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Remembers when each event key was last accepted.
///
/// Memory is bounded by the number of distinct events per interval: entries older than the
/// interval are swept out at most once per interval.
#[derive(Debug)]
pub struct DuplicateFilter {
    interval: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    accepted: HashMap<[u8; 32], Instant>,
    last_sweep: Instant,
}

impl DuplicateFilter {
    /// A filter that refuses repeats within `interval`; a zero interval refuses nothing.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            state: Mutex::new(State {
                accepted: HashMap::new(),
                last_sweep: Instant::now(),
            }),
        }
    }

    /// Whether the event with `key` is accepted at `now`: true the first time in an interval
    /// (the interval starts then), false for the repeats.
    pub fn accept(&self, key: [u8; 32], now: Instant) -> bool {
        if self.interval.is_zero() {
            return true;
        }
        let mut state = match self.state.lock() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now.saturating_duration_since(state.last_sweep) >= self.interval {
            let interval = self.interval;
            state
                .accepted
                .retain(|_, at| now.saturating_duration_since(*at) < interval);
            state.last_sweep = now;
        }
        match state.accepted.get_mut(&key) {
            Some(at) if now.saturating_duration_since(*at) < self.interval => false,
            Some(at) => {
                *at = now;
                true
            }
            None => {
                state.accepted.insert(key, now);
                true
            }
        }
    }

    /// How many keys are remembered (for tests and metrics).
    pub fn len(&self) -> usize {
        match self.state.lock() {
            Ok(state) => state.accepted.len(),
            Err(poisoned) => poisoned.into_inner().accepted.len(),
        }
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_within_the_interval_are_refused() {
        let filter = DuplicateFilter::new(Duration::from_secs(300));
        let t0 = Instant::now();
        assert!(filter.accept([1; 32], t0));
        assert!(!filter.accept([1; 32], t0 + Duration::from_secs(1)));
        assert!(!filter.accept([1; 32], t0 + Duration::from_secs(299)));
        assert!(filter.accept([2; 32], t0 + Duration::from_secs(1)));
        // The interval counts from the accepted event, not from the refused repeats.
        assert!(filter.accept([1; 32], t0 + Duration::from_secs(300)));
        assert!(!filter.accept([1; 32], t0 + Duration::from_secs(301)));
    }

    #[test]
    fn old_keys_are_swept() {
        let filter = DuplicateFilter::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for i in 0..100u8 {
            assert!(filter.accept([i; 32], t0));
        }
        assert_eq!(filter.len(), 100);
        assert!(filter.accept([200; 32], t0 + Duration::from_secs(11)));
        assert_eq!(filter.len(), 1);
    }

    #[test]
    fn zero_interval_accepts_everything() {
        let filter = DuplicateFilter::new(Duration::ZERO);
        let t0 = Instant::now();
        assert!(filter.accept([1; 32], t0));
        assert!(filter.accept([1; 32], t0));
        assert!(filter.is_empty());
    }
}
