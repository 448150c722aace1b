//! Turning async-stripe's errors into [`GatewayError`]s, and deciding which ones to retry.

use billing_ports::{Cause, GatewayError};
use stripe::{ApiErrors, ApiErrorsCode, StripeError};

use super::secret::{SecretKey, redact};

/// One failed attempt: the error to report, and whether another attempt may succeed.
#[derive(Debug)]
pub(super) struct Failure {
    /// What the caller gets if no attempt succeeds.
    pub(super) error: GatewayError,
    /// True for 429, 5xx, lock conflicts, timeouts and network errors.
    pub(super) retryable: bool,
}

impl Failure {
    fn retry(error: GatewayError) -> Self {
        Self {
            error,
            retryable: true,
        }
    }

    fn stop(error: GatewayError) -> Self {
        Self {
            error,
            retryable: false,
        }
    }
}

/// Classifies one failed attempt of the call named `call` (e.g. `"create customer"`).
///
/// | answer | error | retried |
/// | --- | --- | --- |
/// | 404 | `NotFound` | no |
/// | 409 `idempotency_key_in_use` / `lock_timeout` (a concurrent request) | `Rejected` | yes |
/// | other 400–499 but 404, 424 and 429 (bad parameters, authentication, card declined, idempotency key reused with other parameters) | `Rejected` | no |
/// | 424, 429, 500–599 | `Unavailable` | yes |
/// | timeout, connection or protocol error | `Unavailable` | yes |
/// | an error status whose body is not a Stripe error, or any other status | `Unexpected` | no |
///
/// The cause is Stripe's answer (status, type, code, parameter, message) or async-stripe's
/// report of the transport or parsing failure, under the call's name; its text never contains
/// the secret key (see [`redact`]).
pub(super) fn classify(call: &str, error: StripeError, secret: &SecretKey) -> Failure {
    match error {
        StripeError::Stripe(api, status) => {
            let answer = Cause::msg(redact(
                &format!("{call}: {}", describe(&api, status)),
                secret,
            ));
            match status {
                404 => Failure::stop(GatewayError::NotFound(answer)),
                409 if is_concurrency_conflict(&api) => {
                    Failure::retry(GatewayError::Rejected(answer))
                }
                424 | 429 | 500..=599 => Failure::retry(GatewayError::Unavailable(answer)),
                400..=499 => Failure::stop(GatewayError::Rejected(answer)),
                _ => Failure::stop(GatewayError::Unexpected(answer)),
            }
        }
        StripeError::Timeout => Failure::retry(GatewayError::Unavailable(Cause::msg(format!(
            "{call}: timed out waiting for Stripe"
        )))),
        StripeError::ClientError(message) => {
            Failure::retry(GatewayError::Unavailable(Cause::context(
                format!("{call}: could not reach Stripe"),
                Cause::msg(redact(&message, secret)),
            )))
        }
        // async-stripe reports an error status whose body it cannot read as a Stripe error
        // this way, without the status; a success body that is not JSON ends up here too.
        StripeError::JSONDeserialize(message) => {
            Failure::stop(GatewayError::Unexpected(Cause::context(
                format!("{call}: unreadable Stripe response"),
                Cause::msg(redact(&message, secret)),
            )))
        }
        StripeError::ConfigError(message) => {
            Failure::stop(GatewayError::Unexpected(Cause::context(
                format!("{call}: client configuration"),
                Cause::msg(redact(&message, secret)),
            )))
        }
    }
}

/// A 409 that another attempt may get past: the same idempotency key is in use by a request
/// still running, or an object is locked by one. Reusing a key with other parameters is a
/// 400 `idempotency_error` and is not retried.
fn is_concurrency_conflict(api: &ApiErrors) -> bool {
    matches!(
        api.code,
        Some(ApiErrorsCode::IdempotencyKeyInUse | ApiErrorsCode::LockTimeout)
    )
}

/// `"HTTP 400 invalid_request_error (resource_missing, param customer): No such customer: 'cus_x'"`.
fn describe(api: &ApiErrors, status: u16) -> String {
    let mut out = format!("HTTP {status} {}", api.type_.as_str());
    let mut details = Vec::new();
    if let Some(code) = &api.code {
        details.push(code.as_str().to_owned());
    }
    if let Some(decline) = &api.decline_code {
        details.push(format!("decline {decline}"));
    }
    if let Some(param) = &api.param {
        details.push(format!("param {param}"));
    }
    if !details.is_empty() {
        out.push_str(&format!(" ({})", details.join(", ")));
    }
    if let Some(message) = &api.message {
        out.push_str(": ");
        out.push_str(message);
    }
    out
}
