//! The one place where errors become HTTP responses: `{"error": {"code", "message"}}`.
//!
//! A 5xx answer's message is opaque; what really happened travels in [`ApiError::cause`],
//! which is logged once with the request id (see `request`) and never sent.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use billing_app::{AppError, IngestError};
use billing_ports::{GatewayError, StoreError};
use serde_json::json;
use stripe_webhook_signature::SignatureError;

/// An error answer: status, stable machine-readable code, human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable snake_case code clients can match on.
    pub code: &'static str,
    /// What went wrong, for people. Never contains a secret or an internal error's details
    /// on 5xx answers.
    pub message: String,
    /// The internal reason of a 5xx, for the log line only; never part of the answer.
    pub cause: Option<String>,
}

impl ApiError {
    /// Builds an error answer.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            cause: None,
        }
    }

    /// The same answer, remembering the internal reason for the log.
    pub fn with_cause(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// 400 with `code`: a request field that cannot be accepted.
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 408: the client did not send its request (or body) in time.
    pub(crate) fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} ms",
                limit.as_millis()
            ),
        )
    }

    /// 413: a body over `limit` bytes.
    pub(crate) fn body_too_large(what: &str, limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("{what} bodies are limited to {limit} bytes"),
        )
    }

    /// 400 `invalid_json`: the body is not the JSON object the route takes. `detail` is
    /// serde's message about a JSON object (field names, expected value types), which never
    /// names our internal types.
    pub(crate) fn invalid_json(detail: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("invalid JSON body: {detail}"),
        )
    }

    /// 503 `not_ready`: the readiness probe failed; `reason` is for the log only.
    pub(crate) fn not_ready(reason: impl fmt::Display) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "not ready").with_cause(reason)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status)
            .json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let cause = error.to_string();
        let api = Self::from_app(error);
        if api.status.is_server_error() {
            api.with_cause(cause)
        } else {
            api
        }
    }
}

impl ApiError {
    /// The answer to a webhook whose event `event_id` could not be applied: 503 when the
    /// database is unavailable, 422 when the event can never apply as sent, else 500. The
    /// message says whether the event is stored for a retry, and only when it is.
    pub fn ingest_failure(event_id: &str, error: IngestError) -> Self {
        use StatusCode as S;
        let cause = error.cause.to_string();
        let stored = if error.recorded {
            "it is stored as failed"
        } else {
            "it could not be stored"
        };
        let (status, code, message) = if error.cause.is_unavailable() {
            (
                S::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unreachable; retry later".to_owned(),
            )
        } else if error.cause.is_unprocessable() {
            (
                S::UNPROCESSABLE_ENTITY,
                "unprocessable_event",
                format!("event {event_id} cannot be applied as sent ({cause}); {stored}"),
            )
        } else {
            (
                S::INTERNAL_SERVER_ERROR,
                "event_not_applied",
                format!("event {event_id} could not be applied; {stored} and Stripe will retry"),
            )
        };
        let api = ApiError::new(status, code, message);
        if status.is_server_error() {
            api.with_cause(cause)
        } else {
            api
        }
    }

    /// The status, code and public message of an application error.
    fn from_app(error: AppError) -> Self {
        use StatusCode as S;
        match error {
            AppError::Store(StoreError::Unavailable(_)) => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the database is unreachable; retry later",
            ),
            AppError::Store(StoreError::Refused(_)) => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "value_refused",
                "a value of the request cannot be stored",
            ),
            AppError::Store(_) => ApiError::new(
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the request could not be completed",
            ),
            AppError::Invalid(m) => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, "unprocessable_event", m)
            }
            AppError::Gateway(GatewayError::Unavailable(_)) => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "stripe_unavailable",
                "Stripe is unreachable; retry later",
            ),
            AppError::Gateway(GatewayError::NotFound(m)) => {
                ApiError::new(S::NOT_FOUND, "stripe_not_found", m)
            }
            AppError::Gateway(GatewayError::Rejected(m)) => {
                ApiError::new(S::BAD_GATEWAY, "stripe_rejected", m)
            }
            AppError::Gateway(GatewayError::Unexpected(_)) => ApiError::new(
                S::BAD_GATEWAY,
                "stripe_unexpected",
                "Stripe answered with something unexpected",
            ),
            AppError::UnknownUser(u) => ApiError::new(
                S::NOT_FOUND,
                "unknown_user",
                format!("user {u:?} has no Stripe customer"),
            ),
            AppError::UnknownMetric(m) => ApiError::new(
                S::BAD_REQUEST,
                "unknown_metric",
                format!("metric {m:?} is not in the plan catalog"),
            ),
            AppError::UnknownPrice(p) => ApiError::new(
                S::BAD_REQUEST,
                "unknown_price",
                format!("{p:?} is not a purchasable price or tier"),
            ),
            AppError::BadRequest(m) => ApiError::new(S::BAD_REQUEST, "invalid_request", m),
            AppError::IdempotencyConflict(k) => ApiError::new(
                S::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                format!("idempotency key {k:?} was already used with different parameters"),
            ),
            AppError::NoGateway => ApiError::new(
                S::SERVICE_UNAVAILABLE,
                "stripe_not_configured",
                "no Stripe client is configured",
            ),
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        let code = match error {
            SignatureError::MissingHeader => "missing_signature",
            SignatureError::MalformedHeader(_) => "malformed_signature",
            SignatureError::NoV1Signature => "no_v1_signature",
            SignatureError::NoSignatureMatched => "signature_mismatch",
            SignatureError::TimestampOutsideTolerance { .. } => "timestamp_outside_tolerance",
            SignatureError::BodyNotUtf8 | SignatureError::BodyStartsWithByteOrderMark => {
                "unverifiable_body"
            }
            _ => "invalid_signature",
        };
        ApiError::new(StatusCode::BAD_REQUEST, code, error.to_string())
    }
}

/// Malformed path segments.
pub(crate) fn path_error_handler(
    error: actix_web::error::PathError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_path", error.to_string()).into()
}

/// Any route we do not serve.
pub(crate) async fn not_found() -> HttpResponse {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route").error_response()
}
