//! When to reconcile an object again: interval jitter, per-object exponential backoff, and the
//! requeue decision derived from a reconcile's result.
//!
//! Everything here is pure (the random draw and the clock are passed in or kept behind a small
//! lock), so the arithmetic is unit-tested without a cluster.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

use crate::error::ErrorClass;

/// When the runtime schedules the next reconcile of an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requeue {
    /// Reconcile again after this delay (sooner if the object's spec changes or a reconcile is
    /// requested).
    After(Duration),
    /// Do not reconcile again until the spec changes (a new generation), a reconcile is requested
    /// with the `reconcile.fluxcd.io/requestedAt` annotation, or the object is deleted.
    OnChange,
}

/// The knobs of the requeue decision, taken from the controller's flags.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RequeuePolicy {
    /// Jitter applied to the success interval, in percent: 10 spreads the requeue uniformly over
    /// `interval ± 10%`. Values outside `0..100` disable jitter (as Flux does).
    pub jitter_percent: f64,
    /// First delay of the exponential backoff after a transient failure.
    pub min_retry_delay: Duration,
    /// Upper bound of the exponential backoff.
    pub max_retry_delay: Duration,
    /// How long to wait before checking again when a dependency is not ready
    /// (Flux's `--requeue-dependency`).
    pub dependency_requeue: Duration,
}

impl Default for RequeuePolicy {
    /// Flux's defaults: 10% jitter, backoff from 750ms to 15m, dependencies checked every 30s.
    fn default() -> Self {
        Self {
            jitter_percent: 10.0,
            min_retry_delay: Duration::from_millis(750),
            max_retry_delay: Duration::from_secs(15 * 60),
            dependency_requeue: Duration::from_secs(30),
        }
    }
}

/// What a failed reconcile tells the requeue decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The class of the error.
    pub class: ErrorClass,
    /// A delay the error itself asks for (for example a dependency's own interval).
    pub retry_after: Option<Duration>,
}

impl RequeuePolicy {
    /// The delay after a successful reconcile: `interval` (or the reconciler's own request)
    /// with jitter drawn from `draw`, a number in `[-1, 1]`.
    ///
    /// A zero interval means "do not requeue on a timer".
    pub fn after_success(&self, interval: Duration, draw: f64) -> Requeue {
        if interval.is_zero() {
            return Requeue::OnChange;
        }
        Requeue::After(jittered(interval, self.jitter_percent, draw))
    }

    /// The delay after a failed reconcile.
    ///
    /// - `Stalled`: never on a timer; only a spec change or a reconcile request helps.
    /// - `Waiting`: the error's own delay, else the dependency requeue interval.
    /// - `Transient`: the error's own delay, else the object's `spec.retryInterval`, else the
    ///   per-object exponential `backoff` (computed by [`Backoff`]).
    pub fn after_failure(
        &self,
        failure: Failure,
        retry_interval: Option<Duration>,
        backoff: Duration,
    ) -> Requeue {
        match failure.class {
            ErrorClass::Stalled => Requeue::OnChange,
            ErrorClass::Waiting => {
                Requeue::After(failure.retry_after.unwrap_or(self.dependency_requeue))
            }
            ErrorClass::Transient => Requeue::After(
                failure
                    .retry_after
                    .or(retry_interval.filter(|d| !d.is_zero()))
                    .unwrap_or(backoff),
            ),
        }
    }
}

/// `interval` moved by `draw × percent%`, where `draw` is in `[-1, 1]` (clamped).
///
/// With `percent` outside `(0, 100)` the interval is returned unchanged.
pub fn jittered(interval: Duration, percent: f64, draw: f64) -> Duration {
    if !(percent > 0.0 && percent < 100.0) {
        return interval;
    }
    let factor = 1.0 + (percent / 100.0) * draw.clamp(-1.0, 1.0);
    interval.mul_f64(factor)
}

/// A uniform random draw in `[-1, 1]` for [`jittered`].
pub fn jitter_draw() -> f64 {
    rand::rng().random_range(-1.0..=1.0)
}

/// The `failures`-th exponential delay (0-based): `min × 2^failures`, capped at `max`.
///
/// Never below `min` nor above `max` (if `min > max`, `max` wins).
pub fn exponential_delay(min: Duration, max: Duration, failures: u32) -> Duration {
    let factor = 2u32.checked_pow(failures.min(31)).unwrap_or(u32::MAX);
    min.checked_mul(factor).unwrap_or(max).min(max)
}

/// Per-object count of consecutive failures, turned into exponential delays.
///
/// Keys are whatever identifies an object (the runtime uses `namespace/name`). A success
/// forgets the object, so the next failure starts again at the minimum delay.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// A backoff between `min` and `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Records one more failure of `key` and returns how long to wait before retrying it.
    pub fn next_delay(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = failures.entry(key.to_owned()).or_insert(0);
        let delay = exponential_delay(self.min, self.max, *count);
        *count = count.saturating_add(1);
        delay
    }

    /// Forgets the failures of `key` (after a success, or once the object is gone).
    pub fn reset(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;
    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn exponential_delay_doubles_from_min_and_caps_at_max() {
        let cases = [
            (0, MS(750)),
            (1, MS(1500)),
            (2, MS(3000)),
            (3, MS(6000)),
            (10, MS(768_000)),
            (11, S(900)),
            (40, S(900)),
            (u32::MAX, S(900)),
        ];
        for (failures, want) in cases {
            assert_eq!(
                exponential_delay(MS(750), S(900), failures),
                want,
                "failures={failures}"
            );
        }
    }

    #[test]
    fn exponential_delay_with_min_above_max_returns_max() {
        assert_eq!(exponential_delay(S(10), S(5), 0), S(5));
    }

    #[test]
    fn backoff_grows_per_object_and_resets_on_success() {
        let backoff = Backoff::new(S(1), S(60));
        assert_eq!(backoff.next_delay("ns/a"), S(1));
        assert_eq!(backoff.next_delay("ns/a"), S(2));
        assert_eq!(backoff.next_delay("ns/a"), S(4));
        // Another object has its own count.
        assert_eq!(backoff.next_delay("ns/b"), S(1));
        backoff.reset("ns/a");
        assert_eq!(backoff.next_delay("ns/a"), S(1));
        assert_eq!(backoff.next_delay("ns/b"), S(2));
    }

    #[test]
    fn jitter_stays_within_the_percentage() {
        let interval = S(600);
        assert_eq!(jittered(interval, 10.0, -1.0), S(540));
        assert_eq!(jittered(interval, 10.0, 1.0), S(660));
        assert_eq!(jittered(interval, 10.0, 0.0), interval);
        // Out-of-range draws are clamped.
        assert_eq!(jittered(interval, 10.0, 7.0), S(660));
        for _ in 0..1000 {
            let d = jittered(interval, 5.0, jitter_draw());
            assert!(d >= S(570) && d <= S(630), "{d:?} outside 600s ± 5%");
        }
    }

    #[test]
    fn jitter_disabled_outside_zero_to_hundred() {
        for percent in [0.0, -5.0, 100.0, 150.0, f64::NAN] {
            assert_eq!(jittered(S(60), percent, 1.0), S(60), "percent={percent}");
        }
    }

    #[test]
    fn success_requeues_after_jittered_interval_or_never_for_zero() {
        let policy = RequeuePolicy {
            jitter_percent: 10.0,
            ..RequeuePolicy::default()
        };
        assert_eq!(policy.after_success(S(100), 0.5), Requeue::After(S(105)));
        assert_eq!(policy.after_success(Duration::ZERO, 0.5), Requeue::OnChange);
    }

    #[test]
    fn failure_requeue_follows_the_error_class() {
        let policy = RequeuePolicy {
            jitter_percent: 0.0,
            min_retry_delay: S(1),
            max_retry_delay: S(60),
            dependency_requeue: S(30),
        };
        let failure = |class, retry_after| Failure { class, retry_after };
        let backoff = S(8);
        let cases = [
            // Transient: error's delay, then retryInterval, then backoff.
            (
                failure(ErrorClass::Transient, None),
                None,
                Requeue::After(backoff),
            ),
            (
                failure(ErrorClass::Transient, None),
                Some(S(120)),
                Requeue::After(S(120)),
            ),
            (
                failure(ErrorClass::Transient, None),
                Some(Duration::ZERO),
                Requeue::After(backoff),
            ),
            (
                failure(ErrorClass::Transient, Some(S(5))),
                Some(S(120)),
                Requeue::After(S(5)),
            ),
            // Waiting: error's delay, else the dependency interval; retryInterval is ignored.
            (
                failure(ErrorClass::Waiting, None),
                Some(S(120)),
                Requeue::After(S(30)),
            ),
            (
                failure(ErrorClass::Waiting, Some(S(7))),
                None,
                Requeue::After(S(7)),
            ),
            // Stalled: never on a timer, whatever else is set.
            (
                failure(ErrorClass::Stalled, Some(S(7))),
                Some(S(120)),
                Requeue::OnChange,
            ),
        ];
        for (failure, retry_interval, want) in cases {
            assert_eq!(
                policy.after_failure(failure, retry_interval, backoff),
                want,
                "{failure:?} retryInterval={retry_interval:?}"
            );
        }
    }
}
