//! The client: configuration, the request path (timeouts, retries, answers to errors) and one
//! method per `/v1` route.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use billing_api::{
    Catalog, ChangesPage, CheckoutRequest, CheckoutSession, Entitlements, FeatureAnswer,
    PortalRequest, PortalSession, Synced, UsageAccepted, UsageRefused, UsageRequest,
};
use reqwest::header::{AUTHORIZATION, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::cache::EntitlementCache;
use crate::error::{Denial, Error};

/// The longest long-poll the change feed holds a request (`wait`).
pub const MAX_CHANGES_WAIT: Duration = Duration::from_secs(60);

/// Configures a [`Client`]; [`Client::builder`] starts one.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    api_key: Option<SecretString>,
    timeout: Duration,
    connect_timeout: Duration,
    retries: usize,
    retry_min_delay: Duration,
    retry_max_delay: Duration,
    cache: Option<(Duration, u64)>,
    changes_wait: Duration,
}

impl ClientBuilder {
    /// The API key sent as `Authorization: Bearer …` (kept secret: never in `Debug`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// How long one attempt may take, connecting included (default 5 s). A long-poll of the
    /// change feed gets its `wait` on top.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How many times a safe call is retried after an [`Error::Unavailable`] (default 2; 0
    /// turns retries off). Safe: every GET, a usage consume and a Checkout (the same
    /// idempotency key, so a retry never counts twice), a sync (a re-read). A portal session
    /// is never retried.
    pub fn retries(mut self, retries: usize) -> Self {
        self.retries = retries;
        self
    }

    /// The first and the longest wait between retries (default 25 ms and 1 s); each wait
    /// doubles and is jittered.
    pub fn retry_delays(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min_delay = min;
        self.retry_max_delay = max.max(min);
        self
    }

    /// Keeps each user's entitlements in process for `ttl` (at most 100 000 users), answering
    /// [`Client::entitlements`] and [`Client::feature`] from them; a usage consume or a sync
    /// forgets the user, and so does the change feed once
    /// [`Client::spawn_cache_invalidation`] runs.
    pub fn cache(self, ttl: Duration) -> Self {
        self.cache_with_capacity(ttl, 100_000)
    }

    /// [`ClientBuilder::cache`] with a bound on the users kept.
    pub fn cache_with_capacity(mut self, ttl: Duration, max_users: u64) -> Self {
        self.cache = Some((ttl, max_users));
        self
    }

    /// How long [`Client::changes_stream`] asks the server to hold an empty page (default
    /// 30 s, at most [`MAX_CHANGES_WAIT`]).
    pub fn changes_wait(mut self, wait: Duration) -> Self {
        self.changes_wait = wait.min(MAX_CHANGES_WAIT);
        self
    }

    /// The client; [`Error::Config`] for a base URL that is not http(s) or a missing or
    /// unsendable API key.
    pub fn build(self) -> Result<Client, Error> {
        let mut base = Url::parse(&self.base_url)
            .map_err(|e| Error::Config(format!("base URL {:?}: {e}", self.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::Config(format!(
                "base URL {:?} is not an http(s) URL",
                self.base_url
            )));
        }
        base.set_query(None);
        base.set_fragment(None);
        let key = self
            .api_key
            .ok_or_else(|| Error::Config("no API key: call ClientBuilder::api_key".to_owned()))?;
        let mut authorization =
            HeaderValue::from_str(&format!("Bearer {}", key.expose_secret()))
                .map_err(|_| Error::Config("the API key cannot be sent in a header".to_owned()))?;
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(concat!("billing-client/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        let retry = ExponentialBuilder::default()
            .with_min_delay(self.retry_min_delay)
            .with_max_delay(self.retry_max_delay)
            .with_max_times(self.retries)
            .with_jitter();
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                authorization,
                timeout: self.timeout,
                retry,
                retries: self.retries,
                cache: self
                    .cache
                    .map(|(ttl, max_users)| EntitlementCache::new(ttl, max_users)),
                changes_wait: self.changes_wait,
            }),
        })
    }
}

/// A typed client of the billing server's `/v1` API; cheap to clone (one connection pool and
/// cache shared by the clones).
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    http: reqwest::Client,
    base: Url,
    authorization: HeaderValue,
    timeout: Duration,
    retry: ExponentialBuilder,
    retries: usize,
    pub(crate) cache: Option<EntitlementCache>,
    pub(crate) changes_wait: Duration,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Client")
            .field("base_url", &inner.base.as_str())
            .field("timeout", &inner.timeout)
            .field("retries", &inner.retries)
            .field(
                "cache_ttl",
                &inner.cache.as_ref().map(EntitlementCache::ttl),
            )
            .field("changes_wait", &inner.changes_wait)
            .finish_non_exhaustive()
    }
}

/// Whether a call may be sent again after an [`Error::Unavailable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    Safe,
    Never,
}

/// One call: what to send, built again for each attempt from the same bytes.
struct Call<'a> {
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
    idempotency_key: Option<&'a str>,
    query: Vec<(&'static str, String)>,
    timeout: Duration,
    retry: Retry,
}

impl Client {
    /// A builder for a server at `base_url` (`http://billing:8080`; `/v1/…` is appended).
    pub fn builder(base_url: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.into(),
            api_key: None,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(1),
            retries: 2,
            retry_min_delay: Duration::from_millis(25),
            retry_max_delay: Duration::from_secs(1),
            cache: None,
            changes_wait: Duration::from_secs(30),
        }
    }

    /// A user's entitlements now (from the cache when one is configured and holds them).
    pub async fn entitlements(&self, user_id: &str) -> Result<Arc<Entitlements>, Error> {
        let Some(cache) = &self.inner.cache else {
            return self.fetch_entitlements(user_id).await.map(Arc::new);
        };
        if let Some(hit) = cache.get(user_id) {
            return Ok(hit);
        }
        let epoch = cache.epoch();
        let fetched = Arc::new(self.fetch_entitlements(user_id).await?);
        cache.insert_unless_invalidated(user_id, fetched.clone(), epoch);
        Ok(fetched)
    }

    /// A user's entitlements from the server, bypassing the cache.
    pub async fn fetch_entitlements(&self, user_id: &str) -> Result<Entitlements, Error> {
        let url = self.url(&["users", user_id, "entitlements"])?;
        self.send(self.get(url)).await
    }

    /// Whether a user has a feature now. With a cache, answered from the user's cached
    /// entitlements (fetched on a miss); without, by the server's feature check. An unknown
    /// feature is [`Error::NotFound`] (`unknown_feature`).
    pub async fn feature(
        &self,
        user_id: &str,
        feature: &str,
    ) -> Result<FeatureAnswer<'static>, Error> {
        if self.inner.cache.is_some() {
            let entitlements = self.entitlements(user_id).await?;
            return entitlements
                .feature(feature)
                .map(FeatureAnswer::into_owned)
                .ok_or_else(|| Error::NotFound {
                    code: billing_api::ErrorCode::UnknownFeature.as_str().to_owned(),
                    message: format!("feature {feature:?} is not in the plan catalog"),
                });
        }
        let url = self.url(&["users", user_id, "features", feature])?;
        self.send(self.get(url)).await
    }

    /// [`Client::feature`], with a feature the user lacks as [`Error::Denied`]
    /// ([`Denial::Feature`]).
    pub async fn require_feature(
        &self,
        user_id: &str,
        feature: &str,
    ) -> Result<FeatureAnswer<'static>, Error> {
        let answer = self.feature(user_id, feature).await?;
        if answer.allowed {
            Ok(answer)
        } else {
            Err(Error::Denied {
                reason: Denial::Feature {
                    feature: answer.feature.into_owned(),
                    tier: answer.tier.into_owned(),
                    reason: answer.reason.into_owned(),
                },
            })
        }
    }

    /// Counts `quantity` of `metric` for a user, once per `idempotency_key` (a retry sends the
    /// same key, so it never counts twice: the server answers `replayed: true`). Over the
    /// limit: [`Error::Denied`] with [`Denial::UsageLimit`], nothing counted.
    pub async fn consume(
        &self,
        user_id: &str,
        metric: &str,
        quantity: u64,
        idempotency_key: &str,
    ) -> Result<UsageAccepted, Error> {
        let url = self.url(&["users", user_id, "usage"])?;
        let body = json(&UsageRequest {
            metric: metric.to_owned(),
            quantity,
            idempotency_key: idempotency_key.to_owned(),
        })?;
        let answer = self.send(self.post(url, Some(body), Retry::Safe)).await;
        self.forget(user_id);
        answer
    }

    /// Creates a Stripe Checkout session, once per `idempotency_key` (retried with it).
    pub async fn checkout(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, Error> {
        let url = self.url(&["checkout", "sessions"])?;
        let mut call = self.post(url, Some(json(request)?), Retry::Safe);
        call.idempotency_key = Some(idempotency_key);
        self.send(call).await
    }

    /// Creates a Stripe billing portal session (never retried: each attempt is a new
    /// session). A user without a Stripe customer is [`Error::NotFound`] (`unknown_user`).
    pub async fn portal(&self, request: &PortalRequest) -> Result<PortalSession, Error> {
        let url = self.url(&["portal", "sessions"])?;
        self.send(self.post(url, Some(json(request)?), Retry::Never))
            .await
    }

    /// Re-reads a known user's subscriptions from Stripe and answers the entitlements after.
    pub async fn sync(&self, user_id: &str) -> Result<Synced, Error> {
        let url = self.url(&["users", user_id, "sync"])?;
        let answer = self.send(self.post(url, None, Retry::Safe)).await;
        self.forget(user_id);
        answer
    }

    /// The plan catalog the server runs with.
    pub async fn catalog(&self) -> Result<Catalog, Error> {
        let url = self.url(&["catalog"])?;
        self.send(self.get(url)).await
    }

    /// One page of the change feed after `after` (`None`: from the oldest record kept), at
    /// most `limit` records (the server's default when `None`); with `wait`, the server holds
    /// an empty page up to that long (at most [`MAX_CHANGES_WAIT`]) for a change to commit.
    /// A malformed or unknown cursor is [`Error::InvalidInput`] (`invalid_cursor`).
    pub async fn changes(
        &self,
        after: Option<&str>,
        limit: Option<u32>,
        wait: Option<Duration>,
    ) -> Result<ChangesPage, Error> {
        let mut call = self.get(self.url(&["changes"])?);
        if let Some(after) = after {
            call.query.push(("after", after.to_owned()));
        }
        if let Some(limit) = limit {
            call.query.push(("limit", limit.to_string()));
        }
        if let Some(wait) = wait {
            let wait = wait.min(MAX_CHANGES_WAIT);
            call.query.push(("wait", wait.as_secs().to_string()));
            call.timeout += wait;
        }
        self.send(call).await
    }

    /// Forgets a user's cached entitlements (no-op without a cache).
    pub fn forget(&self, user_id: &str) {
        if let Some(cache) = &self.inner.cache {
            cache.forget(user_id);
        }
    }

    /// `/v1/` and these path segments (each percent-encoded) under the base URL.
    fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|()| Error::Config("the base URL cannot have a path".to_owned()))?
            .pop_if_empty()
            .push("v1")
            .extend(segments);
        Ok(url)
    }

    fn get(&self, url: Url) -> Call<'static> {
        Call {
            method: Method::GET,
            url,
            body: None,
            idempotency_key: None,
            query: Vec::new(),
            timeout: self.inner.timeout,
            retry: Retry::Safe,
        }
    }

    fn post(&self, url: Url, body: Option<Vec<u8>>, retry: Retry) -> Call<'static> {
        Call {
            method: Method::POST,
            url,
            body,
            idempotency_key: None,
            query: Vec::new(),
            timeout: self.inner.timeout,
            retry,
        }
    }

    /// Sends `call`, retrying a safe one after [`Error::Unavailable`] with jittered
    /// exponential waits, and reads its answer.
    async fn send<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, Error> {
        let attempt = || self.attempt::<T>(&call);
        match call.retry {
            Retry::Never => attempt().await,
            Retry::Safe => {
                attempt
                    .retry(self.inner.retry)
                    .when(Error::is_retryable)
                    .notify(|error, wait| {
                        tracing::debug!(
                            url = %call.url,
                            %error,
                            wait_ms = wait.as_millis() as u64,
                            "billing call failed; retrying"
                        );
                    })
                    .await
            }
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, call: &Call<'_>) -> Result<T, Error> {
        let mut request = self
            .inner
            .http
            .request(call.method.clone(), call.url.clone())
            .header(AUTHORIZATION, self.inner.authorization.clone())
            .timeout(call.timeout);
        if !call.query.is_empty() {
            request = request.query(&call.query);
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("idempotency-key", key);
        }
        if let Some(body) = &call.body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
        }
        let response = request.send().await.map_err(|e| Error::transport(&e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = response.bytes().await.map_err(|e| Error::transport(&e))?;
        if status.is_success() {
            serde_json::from_slice(&body).map_err(|e| Error::Decode {
                status: status.as_u16(),
                message: e.to_string(),
            })
        } else {
            Err(answer_error(status, retry_after, &body))
        }
    }
}

/// A body as JSON bytes, serialised once so that every attempt sends the same bytes.
fn json<T: serde::Serialize>(body: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(body).map_err(|e| Error::Config(format!("request body: {e}")))
}

/// `{"error": {"code", "message"}}`, read leniently: a code this version does not know is
/// kept as written.
#[derive(Deserialize)]
struct LenientErrorBody {
    error: LenientErrorDetail,
}

#[derive(Deserialize)]
struct LenientErrorDetail {
    code: String,
    message: String,
}

/// The error an answer with a non-2xx `status` stands for.
fn answer_error(status: StatusCode, retry_after: Option<Duration>, body: &[u8]) -> Error {
    let (code, message) = match serde_json::from_slice::<LenientErrorBody>(body) {
        Ok(answer) => (answer.error.code, answer.error.message),
        Err(_) => (
            String::new(),
            String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        ),
    };
    match status.as_u16() {
        402 => Error::Denied {
            reason: match serde_json::from_slice::<UsageRefused>(body) {
                Ok(refused) => Denial::UsageLimit(Box::new(refused)),
                Err(_) => Denial::Other { code, message },
            },
        },
        401 => Error::Unauthorized { code, message },
        404 => Error::NotFound { code, message },
        410 if code == "cursor_expired" => Error::CursorExpired { message },
        429 => Error::RateLimited { retry_after },
        400 | 413 | 415 | 422 => Error::InvalidInput { code, message },
        408 | 500..=599 => Error::Unavailable {
            status: Some(status.as_u16()),
            message: if code.is_empty() {
                message
            } else {
                format!("{code}: {message}")
            },
        },
        other => Error::Unexpected {
            status: other,
            code,
            message,
        },
    }
}
