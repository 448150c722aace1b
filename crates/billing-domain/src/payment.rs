//! A one-time payment's status and amount: succeeded and canceled are final, other statuses
//! follow the newest event; an amount known only from a part of the payment only grows.

use chrono::{DateTime, Utc};

use crate::facts::PaymentIntentChange;
use crate::money::Money;

/// Where a payment stands. [`PaymentStatus::as_str`] is the stored (and Stripe's) spelling.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, strum::EnumString, strum::IntoStaticStr, strum::Display,
)]
#[strum(serialize_all = "snake_case")]
pub enum PaymentStatus {
    /// Money collected.
    Succeeded,
    /// The last attempt failed.
    Failed,
    /// Stripe is processing it.
    Processing,
    /// The customer must act (3-D Secure…).
    RequiresAction,
    /// Authorised, waiting for capture.
    RequiresCapture,
    /// Canceled before any money was collected.
    Canceled,
}

impl PaymentStatus {
    /// Every status, in declaration order.
    pub const ALL: &'static [Self] = &[
        Self::Succeeded,
        Self::Failed,
        Self::Processing,
        Self::RequiresAction,
        Self::RequiresCapture,
        Self::Canceled,
    ];

    /// The status as Stripe spells it and the store keeps it (`requires_action`).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The status a `payment_intent.*` event reports.
    pub fn of_change(change: PaymentIntentChange) -> Self {
        match change {
            PaymentIntentChange::Succeeded => Self::Succeeded,
            PaymentIntentChange::PaymentFailed => Self::Failed,
            PaymentIntentChange::Processing => Self::Processing,
            PaymentIntentChange::RequiresAction => Self::RequiresAction,
            PaymentIntentChange::Canceled => Self::Canceled,
        }
    }

    /// The status a completed Checkout session's payment is known in: succeeded when the
    /// session's `payment_status` is `paid`, else processing.
    pub fn of_checkout(payment_status: Option<&str>) -> Self {
        if payment_status == Some("paid") {
            Self::Succeeded
        } else {
            Self::Processing
        }
    }

    /// True for statuses no later event changes: succeeded and canceled.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Canceled)
    }
}

/// A payment's status and the `created` of the event that set it (`None`: not known).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusAt {
    /// Where the payment stands.
    pub status: PaymentStatus,
    /// Stripe's `created` of the event that set the status, which orders later events.
    pub at: Option<DateTime<Utc>>,
}

/// The payment's status after an event created at `at` reports `incoming`, or `None` when
/// the event changes nothing.
///
/// A final status stays (a late failure of an earlier attempt never undoes a success); a final
/// status always applies; any other status applies when its event is at least as new as the
/// one that set the current status. The time kept is the newer of the two.
pub fn next_status(
    current: StatusAt,
    incoming: PaymentStatus,
    at: DateTime<Utc>,
) -> Option<StatusAt> {
    if current.status.is_final() && current.status != incoming {
        return None;
    }
    let newer = current.at.is_none_or(|held| at >= held);
    if !(incoming.is_final() || newer) {
        return None;
    }
    Some(StatusAt {
        status: incoming,
        at: Some(current.at.map_or(at, |held| held.max(at))),
    })
}

/// What an event says of a payment's amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedAmount<'a> {
    /// The payment's own amount (a payment intent, a charge, a Checkout total).
    Whole(&'a Money),
    /// A part of it (a refund, a dispute): the payment is at least this much until it is seen.
    AtLeast(&'a Money),
}

impl<'a> ReportedAmount<'a> {
    /// The amount as reported.
    pub fn money(self) -> &'a Money {
        match self {
            Self::Whole(money) | Self::AtLeast(money) => money,
        }
    }
}

/// The payment's amount after an event reports `reported`, `held` being the amount known so
/// far: a whole amount replaces it; a part raises it when it is larger, in the same currency.
pub fn amount_after(held: &Money, reported: ReportedAmount<'_>) -> Money {
    match reported {
        ReportedAmount::Whole(money) => money.clone(),
        ReportedAmount::AtLeast(money)
            if money.currency == held.currency && money.amount_minor > held.amount_minor =>
        {
            money.clone()
        }
        ReportedAmount::AtLeast(_) => held.clone(),
    }
}
