//! The one place where errors become HTTP responses: `{"error": {"code", "message"}}`, the
//! status fixed by the code ([`ErrorCode::status`]).
//!
//! A 5xx answer's message is opaque; what really happened travels in [`ApiError::cause`] (the
//! error's whole chain of sources, printed with [`ErrorChain`]), which rides in the response's
//! extensions to the request log (`request`), is printed there once with the request id, and
//! is never sent.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use billing_app::{AppError, IngestError};
use billing_ports::{ErrorChain, GatewayError, StoreError};
use serde::Serialize;
use stripe_webhook_signature::SignatureError;

/// Declares [`ErrorCode`] from one table: variant, wire string, HTTP status.
macro_rules! error_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $wire:literal => $status:ident,)*) => {
        /// A stable machine-readable error code, sent as `error.code`; each one has exactly
        /// one HTTP status ([`ErrorCode::status`]).
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

            /// The HTTP status this code is answered with: the only place a code meets a status.
            pub const fn status(self) -> StatusCode {
                match self {
                    $(ErrorCode::$variant => StatusCode::$status,)*
                }
            }
        }
    };
}

error_codes! {
    /// A path segment cannot be read.
    InvalidPath = "invalid_path" => BAD_REQUEST,
    /// A user id is empty, too long or has a control character.
    InvalidUserId = "invalid_user_id" => BAD_REQUEST,
    /// An idempotency key is empty, too long or has a control character.
    InvalidIdempotencyKey = "invalid_idempotency_key" => BAD_REQUEST,
    /// The `Idempotency-Key` header is missing.
    MissingIdempotencyKey = "missing_idempotency_key" => BAD_REQUEST,
    /// An email address cannot be handed to Stripe.
    InvalidEmail = "invalid_email" => BAD_REQUEST,
    /// A redirect URL is not an acceptable http(s) URL.
    InvalidUrl = "invalid_url" => BAD_REQUEST,
    /// A usage quantity is larger than the store can count.
    QuantityOutOfRange = "quantity_out_of_range" => BAD_REQUEST,
    /// The body is not the JSON object the route takes.
    InvalidJson = "invalid_json" => BAD_REQUEST,
    /// The request breaks a rule of the route (e.g. both `price_id` and `tier`).
    InvalidRequest = "invalid_request" => BAD_REQUEST,
    /// A query parameter is out of range or cannot be read (the change feed's `limit`, `wait`).
    InvalidInput = "invalid_input" => BAD_REQUEST,
    /// A change feed cursor is malformed, unknown or beyond the head.
    InvalidCursor = "invalid_cursor" => BAD_REQUEST,
    /// The metric is not in the plan catalog.
    UnknownMetric = "unknown_metric" => BAD_REQUEST,
    /// The price or tier cannot be purchased.
    UnknownPrice = "unknown_price" => BAD_REQUEST,
    /// The body could not be read from the connection.
    UnreadableBody = "unreadable_body" => BAD_REQUEST,
    /// The webhook has no `Stripe-Signature` header.
    MissingSignature = "missing_signature" => BAD_REQUEST,
    /// The `Stripe-Signature` header cannot be parsed.
    MalformedSignature = "malformed_signature" => BAD_REQUEST,
    /// The `Stripe-Signature` header has no `v1` signature.
    NoV1Signature = "no_v1_signature" => BAD_REQUEST,
    /// No signature matches the body with any endpoint secret.
    SignatureMismatch = "signature_mismatch" => BAD_REQUEST,
    /// The signed timestamp is outside the tolerance.
    TimestampOutsideTolerance = "timestamp_outside_tolerance" => BAD_REQUEST,
    /// The body cannot be verified (not UTF-8, or it starts with a byte-order mark).
    UnverifiableBody = "unverifiable_body" => BAD_REQUEST,
    /// Any other signature refusal.
    InvalidSignature = "invalid_signature" => BAD_REQUEST,
    /// A verified webhook body without a valid event envelope; it is not stored.
    InvalidPayload = "invalid_payload" => BAD_REQUEST,
    /// No `Authorization: Bearer` API key was sent.
    MissingApiKey = "missing_api_key" => UNAUTHORIZED,
    /// The API key is not one of the accepted keys.
    InvalidApiKey = "invalid_api_key" => UNAUTHORIZED,
    /// The usage would exceed the limit of the current period.
    UsageLimitExceeded = "usage_limit_exceeded" => PAYMENT_REQUIRED,
    /// No route has this path.
    NotFound = "not_found" => NOT_FOUND,
    /// The user has no Stripe customer.
    UnknownUser = "unknown_user" => NOT_FOUND,
    /// The feature is not in the plan catalog.
    UnknownFeature = "unknown_feature" => NOT_FOUND,
    /// Stripe does not know the object.
    StripeNotFound = "stripe_not_found" => NOT_FOUND,
    /// The path exists but not with this method.
    MethodNotAllowed = "method_not_allowed" => METHOD_NOT_ALLOWED,
    /// The body did not arrive in time.
    RequestTimeout = "request_timeout" => REQUEST_TIMEOUT,
    /// The body is over the route's size limit.
    BodyTooLarge = "body_too_large" => PAYLOAD_TOO_LARGE,
    /// The body is not `application/json`.
    UnsupportedMediaType = "unsupported_media_type" => UNSUPPORTED_MEDIA_TYPE,
    /// The event can never apply as sent.
    UnprocessableEvent = "unprocessable_event" => UNPROCESSABLE_ENTITY,
    /// The database refused a value of the request.
    ValueRefused = "value_refused" => UNPROCESSABLE_ENTITY,
    /// The idempotency key was used before with other parameters.
    IdempotencyKeyReused = "idempotency_key_reused" => UNPROCESSABLE_ENTITY,
    /// Something failed inside the server; the cause is logged, not answered.
    InternalError = "internal_error" => INTERNAL_SERVER_ERROR,
    /// The event could not be applied; Stripe will retry it.
    EventNotApplied = "event_not_applied" => INTERNAL_SERVER_ERROR,
    /// Stripe refused the request.
    StripeRejected = "stripe_rejected" => BAD_GATEWAY,
    /// Stripe answered with something unexpected.
    StripeUnexpected = "stripe_unexpected" => BAD_GATEWAY,
    /// The database is unreachable.
    DatabaseUnavailable = "database_unavailable" => SERVICE_UNAVAILABLE,
    /// Stripe is unreachable.
    StripeUnavailable = "stripe_unavailable" => SERVICE_UNAVAILABLE,
    /// No Stripe client is configured.
    StripeNotConfigured = "stripe_not_configured" => SERVICE_UNAVAILABLE,
    /// The readiness probe failed.
    NotReady = "not_ready" => SERVICE_UNAVAILABLE,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
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

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: ErrorDetail<'a>,
}

#[derive(Serialize)]
struct ErrorDetail<'a> {
    code: ErrorCode,
    message: &'a str,
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
        self.code.status()
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
        self.code.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.code.status()).json(ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: &self.message,
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
            AppError::Invalid(m) => ApiError::new(C::UnprocessableEvent, m),
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
