//! Stripe subscription statuses, including ones Stripe may add later.

use strum::{AsRefStr, Display, EnumString};

/// A subscription's status as Stripe reports it.
///
/// Statuses this crate does not know yet parse as [`SubscriptionStatus::Unknown`], which grants
/// no paid access: a surprise from Stripe must never hand out a paid tier. The wire strings are
/// the variants' names in snake_case (`past_due`), matched exactly; parsing never fails, and an
/// unknown status displays as the string it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, AsRefStr, Display, EnumString)]
#[strum(serialize_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Paid and current.
    Active,
    /// In a trial period.
    Trialing,
    /// The latest invoice failed; Stripe is retrying it.
    PastDue,
    /// Ended for good: Stripe never changes a canceled subscription again.
    Canceled,
    /// Retries were exhausted and the subscription is left unpaid.
    Unpaid,
    /// The first payment has not succeeded yet.
    Incomplete,
    /// The first payment never succeeded within 23 hours.
    IncompleteExpired,
    /// Paused (trial ended without a payment method, or paused collection).
    Paused,
    /// A status this version does not know.
    #[strum(default, transparent)]
    Unknown(String),
}

impl SubscriptionStatus {
    /// Every status Stripe documents, in a stable order (for exhaustive tests and tables).
    pub const KNOWN: [SubscriptionStatus; 8] = [
        SubscriptionStatus::Active,
        SubscriptionStatus::Trialing,
        SubscriptionStatus::PastDue,
        SubscriptionStatus::Canceled,
        SubscriptionStatus::Unpaid,
        SubscriptionStatus::Incomplete,
        SubscriptionStatus::IncompleteExpired,
        SubscriptionStatus::Paused,
    ];

    /// Parses Stripe's wire string; never fails (unknown strings become `Unknown`).
    pub fn parse(value: &str) -> Self {
        // With a `default` variant, strum's `FromStr` cannot fail (`Err = Infallible`).
        let Ok(status) = value.parse();
        status
    }

    /// Stripe's wire string for this status.
    pub fn as_str(&self) -> &str {
        self.as_ref()
    }

    /// True for statuses after which Stripe never changes the subscription again.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }

    /// Position in a subscription's life, used only to order two events of the same second.
    ///
    /// Higher means later: a subscription moves from `incomplete` through `trialing`, `active`,
    /// `past_due`/`paused`, `unpaid` to `canceled`/`incomplete_expired`, and terminal statuses
    /// never move back. When two events about one subscription carry the same `created`
    /// second, the one with the higher rank is taken as the later one. Unknown statuses rank
    /// lowest so a surprise never overrides a known state of the same second.
    pub fn progression_rank(&self) -> u8 {
        match self {
            Self::Unknown(_) => 0,
            Self::Incomplete => 1,
            Self::Trialing => 2,
            Self::Active => 3,
            Self::PastDue => 4,
            Self::Paused => 5,
            Self::Unpaid => 6,
            Self::IncompleteExpired => 7,
            Self::Canceled => 8,
        }
    }
}
