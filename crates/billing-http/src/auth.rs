//! Bearer API keys for `/v1`, compared in constant time, checked by a middleware on the scope
//! before any handler or extractor reads the body.

use std::fmt;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};

/// The accepted API keys. `Debug` never shows them.
#[derive(Clone)]
pub struct ApiKeys(Vec<Box<[u8]>>);

impl ApiKeys {
    /// Accepts each of `keys` (empty ones are dropped).
    pub fn new<I: IntoIterator<Item = String>>(keys: I) -> Self {
        Self(
            keys.into_iter()
                .filter(|k| !k.is_empty())
                .map(|k| k.into_bytes().into_boxed_slice())
                .collect(),
        )
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no key is accepted (every `/v1` call is refused).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when `candidate` is one of the keys. Every key is compared, in constant time.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        self.0.iter().fold(0u8, |found, key| {
            found | key.as_ref().ct_eq(candidate).unwrap_u8()
        }) == 1
    }

    /// Checks the request's `Authorization: Bearer <key>` (the scheme in any case, RFC 7235).
    pub(crate) fn check(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::MissingApiKey,
                    "send Authorization: Bearer <api key>",
                )
            })?;
        if self.accepts(presented.trim().as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the API key is not valid",
            ))
        }
    }
}

/// The `/v1` middleware: answers 401 unless the request carries an accepted key; the handler
/// (and the extractor reading its body) runs only after the key is accepted.
pub(crate) async fn require_api_key(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let checked = match request.app_data::<web::Data<ApiKeys>>() {
        Some(keys) => keys.check(request.request()),
        None => Err(ApiError::new(
            ErrorCode::InternalError,
            "the request could not be completed",
        )
        .with_cause("billing_http::configure was not given the API keys")),
    };
    match checked {
        Ok(()) => next.call(request).await,
        Err(refused) => Ok(request.into_response(HttpResponse::from_error(refused))),
    }
}

/// The credentials of a `Bearer` authorization, the scheme matched case-insensitively.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim_start().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(credentials.trim())
        .filter(|c| !c.is_empty())
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys, redacted)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        for value in ["Bearer k_1", "bearer k_1", "BEARER k_1", "bEaReR   k_1 "] {
            assert_eq!(bearer_credentials(value), Some("k_1"), "{value:?}");
        }
        for value in ["Basic k_1", "Bearer", "Bearer ", "Bearerk_1", "Token k_1"] {
            assert_eq!(bearer_credentials(value), None, "{value:?}");
        }
    }
}
