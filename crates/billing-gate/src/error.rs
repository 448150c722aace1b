//! The crate's one error type, and the one place where a guard's answer becomes HTTP: every
//! refusal is `{"error": {"code", "message", …}}` like the billing server's own errors.
//!
//! | answer | status | code |
//! |---|---|---|
//! | no user | 401 | `unauthenticated` |
//! | the tier lacks the feature | 402 | `feature_not_included` (+ `tier`, `reason`) |
//! | the tier is below the one required | 402 | `tier_too_low` (+ `tier`, `required`, `reason`) |
//! | the quota of the period is used up | 429 | `usage_limit_exceeded` (+ `used`, `limit`), `Retry-After` |
//! | a bad user id or idempotency key | 400 | `invalid_user_id`, `invalid_idempotency_key` |
//! | an idempotency key reused for another metric or quantity | 422 | `idempotency_key_reused` |
//! | billing cannot answer (fail closed) | 503 | `billing_unavailable` |
//! | the catalog changed under the running service, or billing refused the gate's request | 500 | `internal_error` |

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// Why the gate could not be built, or could not decide a request.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// A guard names a feature the billing catalog does not have (at start-up).
    #[error("the billing catalog has no feature {0:?}")]
    UnknownFeature(String),
    /// A guard names a tier the billing catalog does not have (at start-up).
    #[error("the billing catalog has no tier {0:?}")]
    UnknownTier(String),
    /// A guard names a metric the billing catalog does not have (at start-up).
    #[error("the billing catalog has no metric {0:?}")]
    UnknownMetric(String),
    /// A guard's option cannot work (a zero quantity, a header name that is not one).
    #[error("invalid gate option: {0}")]
    InvalidOption(String),
    /// The request carries no user (the product's authentication found none).
    #[error("no authenticated user")]
    Unauthenticated,
    /// The user id cannot be a billing user id (empty, too long, a control character).
    #[error("invalid user id: {0}")]
    InvalidUserId(String),
    /// The idempotency key cannot be used (too long, not visible ASCII).
    #[error("invalid idempotency key: {0}")]
    InvalidIdempotencyKey(String),
    /// The idempotency key was used before for another metric or quantity.
    #[error("idempotency key {0:?} was already used with different parameters")]
    IdempotencyConflict(String),
    /// Billing refused the gate's request as malformed (a bug or a version mismatch).
    #[error("billing refused the request: {0}")]
    Refused(String),
    /// Billing cannot answer now: the database or the billing server is unreachable, slow or
    /// failing. The source says why (it is logged, never answered).
    #[error("billing is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl GateError {
    /// Billing cannot answer, for `cause`.
    pub fn unavailable(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(cause.into())
    }

    /// True when billing could not answer: the case a fail-open gate lets through.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }

    /// The error with its sources, for a log line.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// A request the gate does not let through: a refusal of billing, or an error.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The tier in force lacks the feature.
    Feature {
        feature: String,
        tier: String,
        reason: String,
    },
    /// The tier in force is below `required`.
    Tier {
        required: String,
        tier: String,
        reason: String,
    },
    /// The quantity does not fit in what is left of the period's quota.
    Limit {
        metric: String,
        used: u64,
        limit: Option<u64>,
        retry_after: Duration,
    },
    /// The gate could not decide.
    Error(GateError),
}

impl From<GateError> for Refusal {
    fn from(error: GateError) -> Self {
        Self::Error(error)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    required: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    used: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    limit: Option<u64>,
}

impl Detail<'_> {
    fn plain(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            tier: None,
            required: None,
            reason: None,
            used: None,
            limit: None,
        }
    }
}

impl GateError {
    /// The status and body of this error as a guard's answer.
    fn answer(&self) -> (StatusCode, Detail<'_>) {
        match self {
            Self::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                Detail::plain("unauthenticated", "this route needs a signed-in user"),
            ),
            Self::InvalidUserId(problem) => (
                StatusCode::BAD_REQUEST,
                Detail::plain("invalid_user_id", format!("the user id {problem}")),
            ),
            Self::InvalidIdempotencyKey(problem) => (
                StatusCode::BAD_REQUEST,
                Detail::plain(
                    "invalid_idempotency_key",
                    format!("the idempotency key {problem}"),
                ),
            ),
            Self::IdempotencyConflict(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Detail::plain("idempotency_key_reused", self.to_string()),
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Detail::plain(
                    "billing_unavailable",
                    "billing cannot answer now; retry later",
                ),
            ),
            // Start-up errors reach a request only when the catalog changed under a running
            // service, or billing refused what the gate sent: a misconfiguration no retry
            // mends (logged with its cause; the answer stays opaque).
            Self::UnknownFeature(_)
            | Self::UnknownTier(_)
            | Self::UnknownMetric(_)
            | Self::InvalidOption(_)
            | Self::Refused(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Detail::plain("internal_error", "the gate cannot decide this request"),
            ),
        }
    }
}

impl ResponseError for GateError {
    fn status_code(&self) -> StatusCode {
        self.answer().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, detail) = self.answer();
        HttpResponse::build(status).json(Body { error: detail })
    }
}

impl Refusal {
    /// The answer to the client.
    pub(crate) fn response(&self) -> HttpResponse {
        match self {
            Self::Feature {
                feature,
                tier,
                reason,
            } => HttpResponse::PaymentRequired().json(Body {
                error: Detail {
                    tier: Some(tier),
                    reason: Some(reason),
                    ..Detail::plain(
                        "feature_not_included",
                        format!("{feature} is not included in the {tier} tier ({reason})"),
                    )
                },
            }),
            Self::Tier {
                required,
                tier,
                reason,
            } => HttpResponse::PaymentRequired().json(Body {
                error: Detail {
                    tier: Some(tier),
                    required: Some(required),
                    reason: Some(reason),
                    ..Detail::plain(
                        "tier_too_low",
                        format!("this route needs the {required} tier or higher; the user has {tier} ({reason})"),
                    )
                },
            }),
            Self::Limit {
                metric,
                used,
                limit,
                retry_after,
            } => {
                let mut response = HttpResponse::TooManyRequests().json(Body {
                    error: Detail {
                        used: Some(*used),
                        limit: *limit,
                        ..Detail::plain(
                            "usage_limit_exceeded",
                            format!("the {metric} quota of this period is used up"),
                        )
                    },
                });
                // Whole seconds, at least one: the period's end is when a retry can pass.
                let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                response
            }
            Self::Error(error) => error.error_response(),
        }
    }
}
