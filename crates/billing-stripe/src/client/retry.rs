//! The bounded retry schedule: exponential backoff with jitter, built with `backon`.

use std::time::Duration;

use backon::ExponentialBuilder;

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
    /// The waits before each retry: before retry `n` (0 for the first), a random 50–100 % of
    /// `backoff × 2ⁿ` capped at 10 s, so that clients that failed together do not come back
    /// together; `max_retries` waits in all.
    pub(super) fn schedule(&self) -> ExponentialBuilder {
        // backon's jitter adds a random 0–100 % to each wait, so the schedule starts from half
        // the backoff and is capped at half the longest wait.
        ExponentialBuilder::new()
            .with_min_delay(self.backoff.min(MAX_DELAY) / 2)
            .with_factor(2.0)
            .with_max_delay(MAX_DELAY / 2)
            .with_max_times(usize::try_from(self.max_retries).unwrap_or(usize::MAX))
            .with_jitter()
    }
}

#[cfg(test)]
mod tests {
    use backon::BackoffBuilder;

    use super::*;

    #[test]
    fn delays_double_within_jitter_and_are_capped() {
        let policy = RetryPolicy {
            max_retries: 31,
            backoff: Duration::from_millis(100),
        };
        let delays: Vec<Duration> = policy.schedule().build().collect();
        assert_eq!(delays.len(), 31);
        for retry in 0..4 {
            let full = Duration::from_millis(100 * 2_u64.pow(retry));
            let delay = delays[retry as usize];
            assert!(delay >= full / 2 && delay <= full, "{retry}: {delay:?}");
        }
        assert!(delays[30] <= MAX_DELAY);
        assert!(delays[30] >= MAX_DELAY / 2);
    }

    #[test]
    fn zero_backoff_means_no_wait() {
        let policy = RetryPolicy {
            max_retries: 4,
            backoff: Duration::ZERO,
        };
        let delays: Vec<Duration> = policy.schedule().build().collect();
        assert_eq!(delays, [Duration::ZERO; 4]);
    }

    #[test]
    fn zero_retries_means_no_wait_at_all() {
        let policy = RetryPolicy {
            max_retries: 0,
            backoff: Duration::from_millis(100),
        };
        assert_eq!(policy.schedule().build().next(), None);
    }
}
