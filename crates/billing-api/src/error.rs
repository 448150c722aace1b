//! Error answers: `{"error": {"code", "message"}}`, and the codes with their HTTP status.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares [`ErrorCode`] from one table: variant, wire string, HTTP status.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $wire:literal => $status:literal,)*) => {
        /// A stable machine-readable error code, sent as `error.code`; each one has exactly
        /// one HTTP status ([`ErrorCode::http_status`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The snake_case string clients match on.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)*
                }
            }

            /// The HTTP status this code is answered with.
            pub const fn http_status(self) -> u16 {
                match self {
                    $(ErrorCode::$variant => $status,)*
                }
            }
        }

        impl FromStr for ErrorCode {
            type Err = UnknownErrorCode;

            fn from_str(code: &str) -> Result<Self, UnknownErrorCode> {
                match code {
                    $($wire => Ok(ErrorCode::$variant),)*
                    _ => Err(UnknownErrorCode(code.to_owned())),
                }
            }
        }
    };
}

error_codes! {
    /// A path segment cannot be read.
    InvalidPath = "invalid_path" => 400,
    /// A user id is empty, too long or has a control character.
    InvalidUserId = "invalid_user_id" => 400,
    /// An idempotency key is empty, too long or has a control character.
    InvalidIdempotencyKey = "invalid_idempotency_key" => 400,
    /// The `Idempotency-Key` header is missing.
    MissingIdempotencyKey = "missing_idempotency_key" => 400,
    /// An email address cannot be handed to Stripe.
    InvalidEmail = "invalid_email" => 400,
    /// A redirect URL is not an acceptable http(s) URL.
    InvalidUrl = "invalid_url" => 400,
    /// A usage quantity is larger than the store can count.
    QuantityOutOfRange = "quantity_out_of_range" => 400,
    /// The body is not the JSON object the route takes.
    InvalidJson = "invalid_json" => 400,
    /// The request breaks a rule of the route (e.g. both `price_id` and `tier`).
    InvalidRequest = "invalid_request" => 400,
    /// A query parameter is out of range or cannot be read (the change feed's `limit`, `wait`).
    InvalidInput = "invalid_input" => 400,
    /// A change feed cursor is malformed, unknown or beyond the head.
    InvalidCursor = "invalid_cursor" => 400,
    /// A change feed cursor is before the feed's retention horizon: records after it were
    /// purged. Read again from the start (no cursor), after resynchronising what the records
    /// would have told.
    CursorExpired = "cursor_expired" => 410,
    /// The metric is not in the plan catalog.
    UnknownMetric = "unknown_metric" => 400,
    /// The price or tier cannot be purchased.
    UnknownPrice = "unknown_price" => 400,
    /// The body could not be read from the connection.
    UnreadableBody = "unreadable_body" => 400,
    /// The webhook has no `Stripe-Signature` header.
    MissingSignature = "missing_signature" => 400,
    /// The `Stripe-Signature` header cannot be parsed.
    MalformedSignature = "malformed_signature" => 400,
    /// The `Stripe-Signature` header has no `v1` signature.
    NoV1Signature = "no_v1_signature" => 400,
    /// No signature matches the body with any endpoint secret.
    SignatureMismatch = "signature_mismatch" => 400,
    /// The signed timestamp is outside the tolerance.
    TimestampOutsideTolerance = "timestamp_outside_tolerance" => 400,
    /// The body cannot be verified (not UTF-8, or it starts with a byte-order mark).
    UnverifiableBody = "unverifiable_body" => 400,
    /// Any other signature refusal.
    InvalidSignature = "invalid_signature" => 400,
    /// A verified webhook body without a valid event envelope; it is not stored.
    InvalidPayload = "invalid_payload" => 400,
    /// No `Authorization: Bearer` API key was sent.
    MissingApiKey = "missing_api_key" => 401,
    /// The API key is not one of the accepted keys.
    InvalidApiKey = "invalid_api_key" => 401,
    /// The usage would exceed the limit of the current period.
    UsageLimitExceeded = "usage_limit_exceeded" => 402,
    /// No route has this path.
    NotFound = "not_found" => 404,
    /// The user has no Stripe customer.
    UnknownUser = "unknown_user" => 404,
    /// The feature is not in the plan catalog.
    UnknownFeature = "unknown_feature" => 404,
    /// Stripe does not know the object.
    StripeNotFound = "stripe_not_found" => 404,
    /// The path exists but not with this method.
    MethodNotAllowed = "method_not_allowed" => 405,
    /// The body did not arrive in time.
    RequestTimeout = "request_timeout" => 408,
    /// The body is over the route's size limit.
    BodyTooLarge = "body_too_large" => 413,
    /// The body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type" => 415,
    /// The event can never apply as sent.
    UnprocessableEvent = "unprocessable_event" => 422,
    /// The database refused a value of the request.
    ValueRefused = "value_refused" => 422,
    /// The idempotency key was used before with other parameters.
    IdempotencyKeyReused = "idempotency_key_reused" => 422,
    /// Something failed inside the server; the cause is logged, not answered.
    InternalError = "internal_error" => 500,
    /// The event could not be applied; Stripe will retry it.
    EventNotApplied = "event_not_applied" => 500,
    /// Stripe refused the request.
    StripeRejected = "stripe_rejected" => 502,
    /// Stripe answered with something unexpected.
    StripeUnexpected = "stripe_unexpected" => 502,
    /// The database is unreachable.
    DatabaseUnavailable = "database_unavailable" => 503,
    /// Stripe is unreachable.
    StripeUnavailable = "stripe_unavailable" => 503,
    /// No Stripe client is configured.
    StripeNotConfigured = "stripe_not_configured" => 503,
    /// The readiness probe failed.
    NotReady = "not_ready" => 503,
}

/// A code string this version does not know (a newer server may add codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownErrorCode(pub String);

impl fmt::Display for UnknownErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown error code {:?}", self.0)
    }
}

impl std::error::Error for UnknownErrorCode {}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        code.parse().map_err(serde::de::Error::custom)
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "A stable machine-readable error code; each code has one HTTP status.",
            ))
            .enum_values(Some(ErrorCode::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for ErrorCode {}

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// An error's code and human message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// What went wrong, for machines.
    pub code: ErrorCode,
    /// What went wrong, for people (opaque on a 5xx answer).
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_reads_back_and_has_an_error_status() {
        for code in ErrorCode::ALL {
            assert_eq!(code.as_str().parse::<ErrorCode>(), Ok(*code));
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), *code);
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
        assert!("no_such_code".parse::<ErrorCode>().is_err());
    }
}
