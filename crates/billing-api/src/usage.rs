//! Usage counted against a metric's limit.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ErrorDetail;

/// Usage to count against a metric's limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageRequest {
    /// A metric of the plan catalog.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 255, pattern = r"^[\x21-\x7E]+$")
    )]
    pub metric: String,
    /// How much to count: 0 to 9223372036854775807, the largest count the database holds.
    /// A whole number written with a fraction or an exponent (`2.0`, `1e3`) counts up to 2^53.
    #[cfg_attr(
        feature = "openapi",
        schema(minimum = 0, maximum = 9_223_372_036_854_775_807_i64)
    )]
    #[serde(deserialize_with = "whole_number::required")]
    pub quantity: u64,
    /// The same key counts the usage once; 1–255 bytes without control characters.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 255,
            pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
        )
    )]
    pub idempotency_key: String,
}

/// Usage counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageAccepted {
    /// Always true: the usage was counted.
    pub allowed: bool,
    /// The metric's usage in this period, this request included.
    pub used: u64,
    /// Null is unlimited.
    pub limit: Option<u64>,
    /// What is left of the limit (null when unlimited).
    pub remaining: Option<u64>,
    /// The end of the metering period.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub period_end: DateTime<Utc>,
    /// True when the idempotency key was counted before (nothing counted again).
    pub replayed: bool,
}

/// Usage refused: it would exceed the period's limit (402 `usage_limit_exceeded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageRefused {
    /// Always false: nothing was counted.
    pub allowed: bool,
    /// The metric's usage in this period.
    pub used: u64,
    /// The period's limit (null is unlimited).
    pub limit: Option<u64>,
    /// The end of the metering period, when the usage starts again from zero.
    #[serde(with = "crate::time")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub period_end: DateTime<Utc>,
    /// True when the idempotency key was refused before.
    pub replayed: bool,
    /// `usage_limit_exceeded` and a message.
    pub error: ErrorDetail,
}

/// Whole numbers as JSON Schema reads them: `integer` admits `2.0` and `1e3` (a number whose
/// value is whole, however it is written), which serde refuses for an integer type; these
/// deserializers take them, up to 2^53 when written as a float (past it a float does not hold
/// every whole number exactly, so the number read could differ from the one written).
pub(crate) mod whole_number {
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
    pub(crate) fn required<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
        deserializer: D,
    ) -> Result<T, D::Error> {
        deserializer.deserialize_any(Whole(PhantomData))
    }

    /// A whole number or null.
    pub(crate) fn optional<'de, D: Deserializer<'de>, T: TryFrom<u64>>(
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::{CheckoutRequest, UsageRequest};

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
