//! The bounded retry schedule: exponential backoff with jitter.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

/// The longest wait between two attempts, whatever the configured backoff.
const MAX_DELAY: Duration = Duration::from_secs(10);

/// How often and how patiently a failed call is repeated.
#[derive(Debug, Clone, Copy)]
pub(super) struct RetryPolicy {
    /// Attempts after the first.
    pub(super) max_retries: u32,
    /// The wait before the first retry; doubled for each further one.
    pub(super) backoff: Duration,
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0 for the first retry): `backoff × 2^retry`,
    /// capped at 10 s, of which a random 50–100 % is used so that clients that failed
    /// together do not come back together.
    pub(super) fn delay(&self, retry: u32) -> Duration {
        let full = self
            .backoff
            .saturating_mul(2_u32.saturating_pow(retry.min(16)))
            .min(MAX_DELAY);
        full.mul_f64(0.5 + 0.5 * unit_random())
    }
}

/// A number in `[0, 1)`, from the per-process random keys of the standard hasher: enough for
/// jitter, with no dependency.
fn unit_random() -> f64 {
    let bits = RandomState::new().hash_one(std::time::Instant::now());
    (bits >> 11) as f64 / (1_u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_and_are_capped() {
        let policy = RetryPolicy {
            max_retries: 5,
            backoff: Duration::from_millis(100),
        };
        for retry in 0..4 {
            let full = Duration::from_millis(100 * 2_u64.pow(retry));
            let delay = policy.delay(retry);
            assert!(delay >= full / 2 && delay <= full, "{retry}: {delay:?}");
        }
        assert!(policy.delay(30) <= MAX_DELAY);
        assert!(policy.delay(30) >= MAX_DELAY / 2);
    }

    #[test]
    fn zero_backoff_means_no_wait() {
        let policy = RetryPolicy {
            max_retries: 2,
            backoff: Duration::ZERO,
        };
        assert_eq!(policy.delay(3), Duration::ZERO);
    }
}
