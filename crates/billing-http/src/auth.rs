//! Bearer API keys for `/v1`, compared in constant time.

use std::fmt;

use actix_web::HttpRequest;
use actix_web::http::{StatusCode, header};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

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

    /// Checks the request's `Authorization: Bearer <key>`.
    pub(crate) fn check(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_api_key",
                    "send Authorization: Bearer <api key>",
                )
            })?;
        if self.accepts(presented.trim().as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_api_key",
                "the API key is not valid",
            ))
        }
    }
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKeys({} keys, redacted)", self.0.len())
    }
}
