//! Bearer API keys for `/v1`, compared in constant time, checked by a middleware on the scope
//! before any handler or extractor reads the body.
//!
//! Two kinds of keys are accepted: the bootstrap keys of the configuration
//! (`BILLING_API_KEYS`), compared as they are, and — when [`ApiKeys::with_stored`] is given a
//! loader — the keys stored by `billingctl keys create`, whose SHA-256 hashes are kept in
//! memory ([`StoredKeys`]) so the gate never waits for the database on an ordinary request:
//!
//! - a stored key found in memory is accepted; when the copy is older than the refresh
//!   interval, the request reloads it first, so **a revoked key is refused at most one
//!   refresh interval after `billingctl keys revoke`**;
//! - a key not found reloads the copy at most once per [`MISS_RELOAD_INTERVAL`] (or per refresh
//!   interval, if shorter), so a new key is accepted within that time and unknown keys cannot
//!   make the gate query the database more often;
//! - one request reloads at a time; the others decide with the copy they have. A failed
//!   reload keeps the copy and is logged.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{Error, HttpRequest, HttpResponse, web};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ErrorCode};

/// How often, at most, a key not found reloads the stored keys.
pub const MISS_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Reads the hashes of the stored keys not revoked (e.g. `BillingApp::live_api_key_hashes`);
/// an error is kept as its message, for the log.
pub type LoadKeyHashes = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Result<Vec<[u8; 32]>, String>> + Send>> + Send + Sync,
>;

/// The accepted API keys. `Debug` never shows them.
#[derive(Clone)]
pub struct ApiKeys {
    bootstrap: Arc<[Box<[u8]>]>,
    stored: Option<Arc<StoredKeys>>,
}

impl ApiKeys {
    /// Accepts each of `keys` (empty ones are dropped), and no stored key.
    pub fn new<I: IntoIterator<Item = String>>(keys: I) -> Self {
        Self {
            bootstrap: keys
                .into_iter()
                .filter(|k| !k.is_empty())
                .map(|k| k.into_bytes().into_boxed_slice())
                .collect(),
            stored: None,
        }
    }

    /// Also accepts the stored keys that `load` reads, kept in memory and reloaded as the
    /// module documentation says, `refresh` bounding how long a revoked key stays accepted.
    pub fn with_stored(self, load: LoadKeyHashes, refresh: Duration) -> Self {
        Self {
            stored: Some(Arc::new(StoredKeys::new(load, refresh))),
            ..self
        }
    }

    /// How many bootstrap keys are accepted.
    pub fn len(&self) -> usize {
        self.bootstrap.len()
    }

    /// True when no bootstrap key is accepted (and, without stored keys, every `/v1` call is
    /// refused).
    pub fn is_empty(&self) -> bool {
        self.bootstrap.is_empty()
    }

    /// True when `candidate` is one of the bootstrap keys. Every key is compared, in constant
    /// time.
    pub fn accepts(&self, candidate: &[u8]) -> bool {
        self.bootstrap.iter().fold(0u8, |found, key| {
            found | key.as_ref().ct_eq(candidate).unwrap_u8()
        }) == 1
    }

    /// Checks the request's `Authorization: Bearer <key>` (the scheme in any case, RFC 7235):
    /// a bootstrap key at once, else a stored key.
    pub(crate) async fn check(&self, request: &HttpRequest) -> Result<(), ApiError> {
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
        let presented = presented.trim().as_bytes();
        if self.accepts(presented) {
            return Ok(());
        }
        match &self.stored {
            Some(stored) if stored.accepts(presented).await => Ok(()),
            _ => Err(ApiError::new(
                ErrorCode::InvalidApiKey,
                "the API key is not valid",
            )),
        }
    }
}

/// The in-memory copy of the stored keys' hashes and when it was loaded.
struct StoredKeys {
    load: LoadKeyHashes,
    refresh: Duration,
    miss_interval: Duration,
    copy: RwLock<Snapshot>,
}

#[derive(Clone)]
struct Snapshot {
    hashes: Arc<[[u8; 32]]>,
    /// When the hashes were loaded (`None`: never).
    loaded: Option<Instant>,
    /// When a reload last started, successful or not (`None`: never).
    tried: Option<Instant>,
}

impl StoredKeys {
    fn new(load: LoadKeyHashes, refresh: Duration) -> Self {
        Self {
            load,
            refresh,
            miss_interval: MISS_RELOAD_INTERVAL.min(refresh),
            copy: RwLock::new(Snapshot {
                hashes: Arc::from(Vec::new()),
                loaded: None,
                tried: None,
            }),
        }
    }

    fn copy(&self) -> Snapshot {
        self.copy
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// True when `candidate`'s hash is a live stored key's, reloading first when due.
    async fn accepts(&self, candidate: &[u8]) -> bool {
        let hash = billing_app::api_key_hash(candidate);
        let copy = self.copy();
        let found = contains(&copy.hashes, &hash);
        let now = Instant::now();
        let older = |at: Option<Instant>, age: Duration| at.is_none_or(|t| now - t >= age);
        let due =
            older(copy.tried, self.miss_interval) && (!found || older(copy.loaded, self.refresh));
        if !due || !self.start_reload(copy.tried, now) {
            return found;
        }
        match (self.load)().await {
            Ok(hashes) => {
                let hashes: Arc<[[u8; 32]]> = Arc::from(hashes);
                let accepted = contains(&hashes, &hash);
                let mut copy = self
                    .copy
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                copy.hashes = hashes;
                copy.loaded = Some(now);
                accepted
            }
            Err(error) => {
                tracing::warn!(
                    error,
                    "stored API keys not reloaded; the copy in memory is kept"
                );
                found
            }
        }
    }

    /// Marks a reload as started at `now` unless another request started one since `seen`;
    /// true when this request is the one to reload.
    fn start_reload(&self, seen: Option<Instant>, now: Instant) -> bool {
        let mut copy = self
            .copy
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if copy.tried != seen {
            return false;
        }
        copy.tried = Some(now);
        true
    }
}

/// True when `hash` is among `hashes`; every hash is compared, in constant time.
fn contains(hashes: &[[u8; 32]], hash: &[u8; 32]) -> bool {
    hashes
        .iter()
        .fold(0u8, |found, h| found | h.ct_eq(hash).unwrap_u8())
        == 1
}

/// The `/v1` middleware: answers 401 unless the request carries an accepted key; the handler
/// (and the extractor reading its body) runs only after the key is accepted.
pub(crate) async fn require_api_key(
    request: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let checked = match request.app_data::<web::Data<ApiKeys>>() {
        Some(keys) => keys.check(request.request()).await,
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
        write!(
            f,
            "ApiKeys({} bootstrap keys, stored keys {}, redacted)",
            self.bootstrap.len(),
            if self.stored.is_some() { "on" } else { "off" }
        )
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
