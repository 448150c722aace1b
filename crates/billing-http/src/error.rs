//! The one place where errors become HTTP responses: `{"error": {"code", "message"}}`, the
//! status fixed by the code ([`status_of`]).
//!
//! A 5xx answer's message is opaque; what really happened travels in [`ApiError::cause`] (the
//! error's whole chain of sources, printed with [`ErrorChain`]), which rides in the response's
//! extensions to the request log (`request`), is printed there once with the request id, and
//! is never sent.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use billing_api::{ErrorBody, ErrorDetail};
use billing_app::{AppError, IngestError};
use billing_ports::{ErrorChain, GatewayError, StoreError};
use stripe_webhook_signature::SignatureError;

pub use billing_api::ErrorCode;

/// The HTTP status `code` is answered with: the only place a code meets a status (the table
/// of [`ErrorCode`] gives each code its one status).
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// An error answer: a code (which fixes the status) and a human message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// What went wrong, for machines.
    pub code: ErrorCode,
    /// What went wrong, for people. Never contains a secret or an internal error's details
    /// on 5xx answers.
    pub message: String,
    /// The internal reason of a 5xx with all its sources, for the log line only; never part of
    /// the answer.
    pub cause: Option<String>,
}

/// What the request log prints of an error answer; it rides in the response's extensions.
#[derive(Debug, Clone)]
pub(crate) struct ErrorLog {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
    pub(crate) cause: Option<String>,
}

impl ApiError {
    /// Builds an error answer.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
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

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        status_of(self.code)
    }

    /// 408: the client did not send its request (or body) in time.
    pub(crate) fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            ErrorCode::RequestTimeout,
            format!(
                "the request body did not arrive within {} ms",
                limit.as_millis()
            ),
        )
    }

    /// 413: a body over `limit` bytes.
    pub(crate) fn body_too_large(what: &str, limit: usize) -> Self {
        Self::new(
            ErrorCode::BodyTooLarge,
            format!("{what} bodies are limited to {limit} bytes"),
        )
    }

    /// 400 `invalid_json`: the body is not the JSON object the route takes. `detail` is
    /// serde's message about a JSON object (field names, expected value types), which never
    /// names our internal types.
    pub(crate) fn invalid_json(detail: impl fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidJson,
            format!("invalid JSON body: {detail}"),
        )
    }

    /// 503 `not_ready`: the readiness probe failed; `reason` is for the log only.
    pub(crate) fn not_ready(reason: impl fmt::Display) -> Self {
        Self::new(ErrorCode::NotReady, "not ready").with_cause(reason)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code)
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(status_of(self.code)).json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message.clone(),
            },
        });
        response.extensions_mut().insert(ErrorLog {
            code: self.code,
            message: self.message.clone(),
            cause: self.cause.clone(),
        });
        response
    }
}

impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        let cause = ErrorChain(&error).to_string();
        let api = Self::from_app(error);
        if api.status().is_server_error() {
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
        let cause = ErrorChain(&error.cause).to_string();
        let stored = if error.recorded {
            "it is stored as failed"
        } else {
            "it could not be stored"
        };
        let api = if error.cause.is_unavailable() {
            ApiError::new(
                ErrorCode::DatabaseUnavailable,
                "the database is unreachable; retry later",
            )
        } else if error.cause.is_unprocessable() {
            ApiError::new(
                ErrorCode::UnprocessableEvent,
                format!("event {event_id} cannot be applied as sent ({cause}); {stored}"),
            )
        } else {
            ApiError::new(
                ErrorCode::EventNotApplied,
                format!("event {event_id} could not be applied; {stored} and Stripe will retry"),
            )
        };
        if api.status().is_server_error() {
            api.with_cause(cause)
        } else {
            api
        }
    }

    /// The code and public message of an application error.
    fn from_app(error: AppError) -> Self {
        use ErrorCode as C;
        match error {
            AppError::Store(StoreError::Unavailable(_)) => ApiError::new(
                C::DatabaseUnavailable,
                "the database is unreachable; retry later",
            ),
            AppError::Store(StoreError::Refused(_)) => {
                ApiError::new(C::ValueRefused, "a value of the request cannot be stored")
            }
            AppError::Store(_) => {
                ApiError::new(C::InternalError, "the request could not be completed")
            }
            AppError::FeedLockBusy(_) => ApiError::new(
                C::InternalError,
                "a concurrent change of the same user kept this one from completing; retry",
            ),
            AppError::Invalid(m) => ApiError::new(C::UnprocessableEvent, m),
            AppError::CursorExpired { cursor, horizon } => ApiError::new(
                C::CursorExpired,
                format!(
                    "cursor {cursor} is before the feed's retention horizon {horizon}: records \
                     after it were purged; read from the start (no cursor) and resynchronise"
                ),
            ),
            AppError::Gateway(GatewayError::Unavailable(_)) => {
                ApiError::new(C::StripeUnavailable, "Stripe is unreachable; retry later")
            }
            // Stripe's answer (under the call's name) is the message, as the client can act on
            // it; it never contains the key.
            AppError::Gateway(GatewayError::NotFound(cause)) => {
                ApiError::new(C::StripeNotFound, ErrorChain(&cause).to_string())
            }
            AppError::Gateway(GatewayError::Rejected(cause)) => {
                ApiError::new(C::StripeRejected, ErrorChain(&cause).to_string())
            }
            AppError::Gateway(GatewayError::Unexpected(_)) => ApiError::new(
                C::StripeUnexpected,
                "Stripe answered with something unexpected",
            ),
            AppError::UnknownUser(u) => {
                ApiError::new(C::UnknownUser, format!("user {u:?} has no Stripe customer"))
            }
            AppError::UnknownMetric(m) => ApiError::new(
                C::UnknownMetric,
                format!("metric {m:?} is not in the plan catalog"),
            ),
            AppError::UnknownPrice(p) => ApiError::new(
                C::UnknownPrice,
                format!("{p:?} is not a purchasable price or tier"),
            ),
            AppError::BadRequest(m) => ApiError::new(C::InvalidRequest, m),
            AppError::IdempotencyConflict(k) => ApiError::new(
                C::IdempotencyKeyReused,
                format!("idempotency key {k:?} was already used with different parameters"),
            ),
            AppError::NoGateway => {
                ApiError::new(C::StripeNotConfigured, "no Stripe client is configured")
            }
            AppError::NoDecoder | AppError::PriceNotInCatalog { .. } => {
                ApiError::new(C::InternalError, "the request could not be completed")
            }
        }
    }
}

impl From<SignatureError> for ApiError {
    fn from(error: SignatureError) -> Self {
        use ErrorCode as C;
        let code = match error {
            SignatureError::MissingHeader => C::MissingSignature,
            SignatureError::MalformedHeader(_) => C::MalformedSignature,
            SignatureError::NoV1Signature => C::NoV1Signature,
            SignatureError::NoSignatureMatched => C::SignatureMismatch,
            SignatureError::TimestampOutsideTolerance { .. } => C::TimestampOutsideTolerance,
            SignatureError::BodyNotUtf8 | SignatureError::BodyStartsWithByteOrderMark => {
                C::UnverifiableBody
            }
            _ => C::InvalidSignature,
        };
        ApiError::new(code, error.to_string())
    }
}

/// Malformed path segments.
pub(crate) fn path_error_handler(
    error: actix_web::error::PathError,
    _: &HttpRequest,
) -> actix_web::Error {
    ApiError::new(ErrorCode::InvalidPath, error.to_string()).into()
}

/// Any route we do not serve.
pub(crate) async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(ErrorCode::NotFound, "no such route"))
}

/// A route we serve, asked with a method other than `allowed`: 405 with `Allow`.
pub(crate) fn method_not_allowed(allowed: &actix_web::http::Method) -> HttpResponse {
    let mut response = ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("this route takes {allowed} only"),
    )
    .error_response();
    if let Ok(value) = actix_web::http::header::HeaderValue::from_str(allowed.as_str()) {
        response
            .headers_mut()
            .insert(actix_web::http::header::ALLOW, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::{ErrorCode, status_of};

    #[test]
    fn every_code_has_its_own_error_status() {
        for code in ErrorCode::ALL {
            let status = status_of(*code);
            assert_eq!(status.as_u16(), code.http_status(), "{code}");
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
        }
    }
}
