//! The bodies `/v1` and the webhook take and answer, as types: serde reads and writes them,
//! and the OpenAPI document (`openapi`) is derived from them, with the input rules the edge
//! enforces (`input`) written into the schema.

use std::collections::BTreeMap;

use billing_app::UserEntitlements;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::ErrorCode;

/// A time as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// An error's code and human message.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

/// The start and end of the metering period usage is counted in.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsagePeriod {
    #[schema(format = DateTime)]
    pub(crate) start: String,
    #[schema(format = DateTime)]
    pub(crate) end: String,
}

/// What a user may do now, and why.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Entitlements {
    pub(crate) user_id: String,
    #[schema(example = "PRO")]
    pub(crate) tier: String,
    /// no_subscription, active, trialing, in_grace_period, grace_period_over,
    /// canceling_at_period_end, paid_period_over, no_paid_access or unknown_price.
    pub(crate) reason: String,
    /// Stripe's subscription status, or null without a subscription.
    pub(crate) status: Option<String>,
    pub(crate) subscription_id: Option<String>,
    pub(crate) features: BTreeMap<String, bool>,
    /// Each metric's limit in this period; null is unlimited.
    pub(crate) limits: BTreeMap<String, Option<u64>>,
    pub(crate) usage: BTreeMap<String, u64>,
    pub(crate) usage_period: UsagePeriod,
    /// Prepaid credits, in minor units of the account's currency.
    pub(crate) credits: i64,
    #[schema(format = DateTime)]
    pub(crate) period_end: Option<String>,
    #[schema(format = DateTime)]
    pub(crate) grace_period_end: Option<String>,
    #[schema(format = DateTime)]
    pub(crate) trial_end: Option<String>,
    pub(crate) cancel_at_period_end: bool,
}

impl From<&UserEntitlements> for Entitlements {
    fn from(e: &UserEntitlements) -> Self {
        Self {
            user_id: e.user_id.clone(),
            tier: e.tier.as_str().to_owned(),
            reason: e.reason.code().to_owned(),
            status: e.status.as_ref().map(|s| s.as_str().to_owned()),
            subscription_id: e.subscription_id.clone(),
            features: e.features.clone(),
            limits: e
                .limits
                .iter()
                .map(|(metric, limit)| (metric.clone(), limit.as_option()))
                .collect(),
            usage: e.usage.clone(),
            usage_period: UsagePeriod {
                start: rfc3339(e.period.start),
                end: rfc3339(e.period.end),
            },
            credits: e.credits,
            period_end: e.period_end.map(rfc3339),
            grace_period_end: e.grace_period_end.map(rfc3339),
            trial_end: e.trial_end.map(rfc3339),
            cancel_at_period_end: e.cancel_at_period_end,
        }
    }
}

/// The entitlements after a sync, with how many subscriptions were written.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Synced {
    #[serde(flatten)]
    pub(crate) entitlements: Entitlements,
    pub(crate) synced_subscriptions: u64,
}

// Borrows the request's and the decision's strings: the answer is serialised at once.
/// Whether a user has a feature.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FeatureAnswer<'a> {
    pub(crate) user_id: &'a str,
    pub(crate) feature: &'a str,
    pub(crate) allowed: bool,
    pub(crate) tier: &'a str,
    pub(crate) reason: &'a str,
}

/// Whole numbers as JSON Schema reads them: `integer` admits `2.0` and `1e3` (a number whose
/// value is whole, however it is written), which serde refuses for an integer type; these
/// deserializers take them, up to 2^53 when written as a float (past it a float does not hold
/// every whole number exactly, so the number read could differ from the one written).
mod whole_number {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::Deserializer;
    use serde::de::{Error, Unexpected, Visitor};

    /// The largest whole number every float holds exactly.
    const EXACT_IN_FLOAT: f64 = 9_007_199_254_740_992.0;

    struct Whole<T>(PhantomData<T>);

    impl<T: TryFrom<u64>> Visitor<'_> for Whole<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(
                "a whole number within the field's range (at most 2^53 when written with a fraction or an exponent)",
            )
        }

        fn visit_u64<E: Error>(self, value: u64) -> Result<T, E> {
            T::try_from(value).map_err(|_| E::invalid_value(Unexpected::Unsigned(value), &self))
        }

        fn visit_i64<E: Error>(self, value: i64) -> Result<T, E> {
            let unsigned = u64::try_from(value)
                .map_err(|_| E::invalid_value(Unexpected::Signed(value), &self))?;
            self.visit_u64(unsigned)
        }

        fn visit_f64<E: Error>(self, value: f64) -> Result<T, E> {
            if value.fract() == 0.0 && (0.0..=EXACT_IN_FLOAT).contains(&value) {
                // Whole and within the exact range: the cast is lossless.
                self.visit_u64(value as u64)
            } else {
                Err(E::invalid_value(Unexpected::Float(value), &self))
            }
        }
    }

    /// A whole number.
    pub(super) fn required<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        deserializer.deserialize_any(Whole(PhantomData))
    }

    /// A whole number or null.
    pub(super) fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        deserializer: D,
    ) -> Result<Option<T>, D::Error> {
        struct OrNull<T>(PhantomData<T>);

        impl<'de, T: TryFrom<u64>> Visitor<'de> for OrNull<T> {
            type Value = Option<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number or null")
            }

            fn visit_none<E: Error>(self) -> Result<Option<T>, E> {
                Ok(None)
            }

            fn visit_unit<E: Error>(self) -> Result<Option<T>, E> {
                Ok(None)
            }

            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
                required(d).map(Some)
            }
        }

        deserializer.deserialize_option(OrNull(PhantomData))
    }
}

/// Usage to count against a metric's limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageRequest {
    /// A metric of the plan catalog.
    #[schema(min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$")]
    pub(crate) metric: String,
    /// How much to count: 0 to 9223372036854775807, the largest count the database holds.
    /// A whole number written with a fraction or an exponent (`2.0`, `1e3`) counts up to 2^53.
    #[schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)]
    #[serde(deserialize_with = "whole_number::required")]
    pub(crate) quantity: u64,
    /// The same key counts the usage once; 1–255 bytes without control characters.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub(crate) idempotency_key: String,
}

/// Usage counted.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageAccepted {
    pub(crate) allowed: bool,
    pub(crate) used: u64,
    /// Null is unlimited.
    pub(crate) limit: Option<u64>,
    pub(crate) remaining: Option<u64>,
    #[schema(format = DateTime)]
    pub(crate) period_end: String,
    pub(crate) replayed: bool,
}

/// Usage refused: it would exceed the period's limit (402 `usage_limit_exceeded`).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UsageRefused {
    pub(crate) allowed: bool,
    pub(crate) used: u64,
    pub(crate) limit: Option<u64>,
    #[schema(format = DateTime)]
    pub(crate) period_end: String,
    pub(crate) replayed: bool,
    pub(crate) error: ErrorDetail,
}

/// What a Checkout session buys.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Mode {
    Payment,
    Subscription,
}

/// A new Checkout session: exactly one of `price_id` and `tier`; `trial_days` with
/// `mode: subscription` only.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckoutRequest {
    /// The product's user id: no control characters, no `/`, `?`, `#` or `%`.
    // Its pattern is set with the path parameters' (`openapi::Conventions`).
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) user_id: String,
    #[schema(max_length = 254, pattern = r"^[\x21-\x7E]+@[\x21-\x7E]+$")]
    pub(crate) email: Option<String>,
    pub(crate) mode: Mode,
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) price_id: Option<String>,
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) tier: Option<String>,
    #[schema(max_length = 2048, pattern = r"^https?://[\x21-\x7E]*$")]
    pub(crate) success_url: String,
    #[schema(max_length = 2048, pattern = r"^https?://[\x21-\x7E]*$")]
    pub(crate) cancel_url: String,
    /// Trial days, subscriptions only.
    #[serde(default, deserialize_with = "whole_number::optional")]
    pub(crate) trial_days: Option<u32>,
}

/// A Checkout session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CheckoutSession {
    pub(crate) id: String,
    pub(crate) url: String,
    pub(crate) replayed: bool,
}

/// A new billing portal session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PortalRequest {
    /// The product's user id: no control characters, no `/`, `?`, `#` or `%`.
    // Its pattern is set with the path parameters' (`openapi::Conventions`).
    #[schema(min_length = 1, max_length = 255)]
    pub(crate) user_id: String,
    #[schema(max_length = 2048, pattern = r"^https?://[\x21-\x7E]*$")]
    pub(crate) return_url: String,
}

/// A billing portal session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PortalSession {
    pub(crate) url: String,
}

/// A delivery the server has taken (applied, ignored, stale or a duplicate).
#[derive(Debug, Default, Serialize, ToSchema)]
pub(crate) struct Received {
    pub(crate) received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) ignored: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stale: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) duplicate: Option<bool>,
}

/// A probe's answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Status {
    #[schema(example = "ok")]
    pub(crate) status: &'static str,
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::{CheckoutRequest, UsageRequest};

    fn quantity(value: Value) -> Result<u64, String> {
        serde_json::from_value::<UsageRequest>(
            json!({"metric": "api_calls", "quantity": value, "idempotency_key": "k"}),
        )
        .map(|usage| usage.quantity)
        .map_err(|e| e.to_string())
    }

    fn trial_days(value: Option<Value>) -> Result<Option<u32>, String> {
        let mut body = json!({
            "user_id": "u", "mode": "subscription", "tier": "PRO",
            "success_url": "https://a.example/ok", "cancel_url": "https://a.example/no",
        });
        if let Some(value) = value {
            body["trial_days"] = value;
        }
        serde_json::from_value::<CheckoutRequest>(body)
            .map(|checkout| checkout.trial_days)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_are_read_however_json_writes_them() {
        assert_eq!(quantity(json!(613)), Ok(613));
        assert_eq!(quantity(json!(613.0)), Ok(613));
        assert_eq!(quantity(serde_json::from_str("1e3").unwrap()), Ok(1000));
        // Parsed exactly (serde_json's float_roundtrip), not one float step off.
        let written = serde_json::from_str("2251799813685247.0").unwrap();
        assert_eq!(quantity(written), Ok(2_251_799_813_685_247));
        assert_eq!(quantity(json!(i64::MAX)), Ok(i64::MAX as u64));
        assert_eq!(quantity(json!(9_007_199_254_740_992.0)), Ok(1 << 53));
        for refused in [
            json!(613.5),
            json!(-1),
            json!(-1.0),
            json!(9_007_199_254_740_994.0),
            json!(1e20),
            json!("613"),
        ] {
            let error = quantity(refused.clone()).unwrap_err();
            assert!(error.contains("a whole number"), "{refused}: {error}");
        }
        assert_eq!(trial_days(None), Ok(None));
        assert_eq!(trial_days(Some(Value::Null)), Ok(None));
        assert_eq!(trial_days(Some(json!(14.0))), Ok(Some(14)));
        assert!(trial_days(Some(json!(u64::from(u32::MAX) + 1))).is_err());
        assert!(trial_days(Some(json!(1.5))).is_err());
    }
}

/// A user's access at one instant, as the entitlements answer states it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct AccessSnapshot {
    #[schema(example = "PRO")]
    pub(crate) tier: String,
    /// Stripe's status of the deciding subscription, or null without one.
    pub(crate) status: Option<String>,
    /// The entitlements' reason code (`active`, `in_grace_period`, …).
    pub(crate) reason: String,
    #[schema(format = DateTime)]
    pub(crate) grace_period_end: Option<String>,
    /// The credit balance.
    pub(crate) credits: i64,
}

impl From<&billing_ports::AccessSnapshot> for AccessSnapshot {
    fn from(s: &billing_ports::AccessSnapshot) -> Self {
        Self {
            tier: s.tier.as_str().to_owned(),
            status: s.status.as_ref().map(|s| s.as_str().to_owned()),
            reason: s.reason.clone(),
            grace_period_end: s.grace_period_end.map(rfc3339),
            credits: s.credits,
        }
    }
}

/// An amount of money: integer minor units and an ISO 4217 currency, lower case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub(crate) struct Amount {
    #[schema(example = 1234)]
    pub(crate) value: i64,
    #[schema(example = "usd")]
    pub(crate) currency: String,
}

/// One change of a user's access, written in the transaction that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ChangeRecord {
    /// Opaque; strictly increasing in commit order. Pass it as `after` to read on.
    pub(crate) cursor: String,
    /// `chg_…`: unique, the same in every delivery (a push's `webhook-id`).
    #[schema(example = "chg_4fT0aZ9qLm2Xc8VbN1sKe7Rw")]
    pub(crate) id: String,
    /// The product's user id (null when the customer has none linked).
    pub(crate) user_id: Option<String>,
    /// The user's Stripe customer, when linked.
    pub(crate) customer_id: Option<String>,
    /// tier_changed, status_changed, grace_started, grace_ended, credits_granted,
    /// payment_failed, payment_succeeded, refund or dispute.
    #[schema(example = "tier_changed")]
    pub(crate) kind: String,
    /// The user's access just before the change's transaction.
    pub(crate) before: AccessSnapshot,
    /// The user's access just after it.
    pub(crate) after: AccessSnapshot,
    /// A payment's, refund's or dispute's amount; null for the other kinds.
    pub(crate) amount: Option<Amount>,
    /// The Stripe event that caused it; null for a time-driven change (grace ended) or a
    /// repair (sync, reconciliation).
    pub(crate) stripe_event_id: Option<String>,
    #[schema(format = DateTime)]
    pub(crate) created_at: String,
}

impl From<&billing_ports::ChangeRecord> for ChangeRecord {
    fn from(record: &billing_ports::ChangeRecord) -> Self {
        let c = &record.change;
        Self {
            cursor: record.seq.to_string(),
            id: c.change_id.clone(),
            user_id: Some(c.user_id.clone()),
            customer_id: c.customer_id.clone(),
            kind: c.kind.as_str().to_owned(),
            before: AccessSnapshot::from(&c.before),
            after: AccessSnapshot::from(&c.after),
            amount: c.amount.as_ref().map(|m| Amount {
                value: m.amount_minor,
                currency: m.currency.as_str().to_owned(),
            }),
            stripe_event_id: c.stripe_event_id.clone(),
            created_at: rfc3339(c.created_at),
        }
    }
}

/// A page of the change feed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub(crate) struct ChangesPage {
    /// The records after the cursor, in commit order.
    pub(crate) changes: Vec<ChangeRecord>,
    /// The last record's cursor; the `after` given (or the head) when the page is empty.
    pub(crate) next_cursor: String,
}
