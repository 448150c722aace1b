//! Refund totals and an order's refund status. Totals only grow, so the order in which refund
//! events arrive does not matter.

/// How much of an order's amount has been refunded. [`RefundStatus::as_str`] is the stored
/// spelling.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum RefundStatus {
    /// Nothing refunded.
    None,
    /// Part of the amount refunded.
    Partial,
    /// The whole amount (or more) refunded.
    Full,
}

impl RefundStatus {
    /// Every status, in declaration order.
    pub const ALL: &'static [Self] = &[Self::None, Self::Partial, Self::Full];

    /// The status as stored (`partial`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status of `refunded` minor units refunded out of `total`.
    pub fn of(refunded: i64, total: i64) -> Self {
        if refunded <= 0 {
            Self::None
        } else if refunded >= total {
            Self::Full
        } else {
            Self::Partial
        }
    }
}

/// The refunded total after an event reports `reported` refunded, `held` being the total known
/// so far: the larger of the two.
pub fn refunded_total(held: i64, reported: i64) -> i64 {
    held.max(reported)
}

/// The part of a payment's refunded total `payment_refunded` that falls on its order of
/// `order_amount`: an order is never refunded more than its amount.
pub fn order_share(payment_refunded: i64, order_amount: i64) -> i64 {
    payment_refunded.min(order_amount)
}

/// An order's refunded total once its payment has `payment_refunded` refunded, `held` being
/// the order's total so far: its [`order_share`], never less than `held`.
pub fn order_refunded(held: i64, payment_refunded: i64, order_amount: i64) -> i64 {
    refunded_total(held, order_share(payment_refunded, order_amount))
}

/// True when a refund in Stripe's `status` counts towards the refunded total: a pending or
/// succeeded refund is at least that much refunded, a failed or canceled one is not (the
/// charge's next `charge.refunded` total says what is).
pub fn refund_counts(status: &str) -> bool {
    matches!(status, "succeeded" | "pending")
}
