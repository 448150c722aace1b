//! The outgoing Stripe API client: [`StripeClient`] implements the application's
//! [`StripeGateway`] port on top of async-stripe.
//!
//! # Requests
//!
//! | port method | Stripe call |
//! | --- | --- |
//! | [`create_customer`](StripeGateway::create_customer) | `POST /v1/customers` with `email` and `metadata[user_id]`, under the caller's idempotency key |
//! | [`create_checkout_session`](StripeGateway::create_checkout_session) | `POST /v1/checkout/sessions`: `customer`, `client_reference_id` and `metadata[user_id]` = user, one line item (`price` × 1), `mode`, success and cancel URLs; in payment mode also `payment_intent_data[metadata][user_id]`; in subscription mode also `subscription_data[metadata][user_id]` and `subscription_data[trial_period_days]`; under the caller's idempotency key |
//! | [`create_portal_session`](StripeGateway::create_portal_session) | `POST /v1/billing_portal/sessions` with `customer` and `return_url` |
//! | [`fetch_subscription`](StripeGateway::fetch_subscription) | `GET /v1/subscriptions/{id}` |
//! | [`customer_subscriptions`](StripeGateway::customer_subscriptions) | `GET /v1/subscriptions?customer=…&status=all&limit=100`, following `starting_after` while `has_more` |
//! | [`list_subscriptions`](StripeGateway::list_subscriptions) | one page of `GET /v1/subscriptions?status=all&limit=100` (with `customer=…` for one customer, `starting_after=…` after the first page) |
//! | [`list_events`](StripeGateway::list_events) | `GET /v1/events?created[gte]=…&limit=100`: after a known event one page with `ending_before=…`; from a time alone, pages with `starting_after=…` down to the last (oldest) one |
//!
//! Stripe lists newest first; the events of a page are returned oldest first. Each listed
//! event's JSON is read by [`parse_event`](crate::parse_event), the webhook's own parser, never
//! by async-stripe's typed events (which accept one API version only); an event whose object
//! it cannot read is returned with its identity ([`peek_envelope`](crate::peek_envelope)) and
//! the parser's error, so the caller can store it as failed.
//!
//! Create parameters are built with async-stripe's typed request builders (customer,
//! Checkout Session); the portal session and the reads are plain requests through the same
//! client. Every answer is read leniently: only the fields we need (`id`, `url`), and
//! subscriptions through the crate's [`wire`](crate::wire) parser, the one webhooks use, so a
//! fetched subscription gives exactly the snapshot its `customer.subscription.*` event would,
//! in any API version. async-stripe sends `Stripe-Version:` [`STRIPE_API_VERSION`].
//!
//! # Retries, idempotency and timeouts
//!
//! Each HTTP attempt is bounded by [`StripeClientConfig::timeout`] (async-stripe's per-attempt
//! timeout, which covers reading the body). A call is attempted at most
//! `1 + max_retries` times: it is repeated after a 429, a 424, a 5xx, a 409 caused by a
//! concurrent request with the same idempotency key (`idempotency_key_in_use`, `lock_timeout`),
//! a timeout or a network error, waiting a random 50–100 % of
//! [`StripeClientConfig::retry_backoff`] × 2ⁿ (capped at 10 s) before retry n, on a `backon`
//! schedule. async-stripe's own retrying strategies cannot be used because they generate a
//! fresh idempotency key, so every attempt of a create sends `RequestStrategy::Idempotent` with
//! the caller's key, the same key each time, and Stripe answers a repeat with the object the
//! first attempt created.
//!
//! Listing calls (events, subscriptions) go through the same schedule, page by page, so a
//! 429 during a long listing waits and repeats that page only.
//!
//! async-stripe does not expose response headers, so `Stripe-Should-Retry` and `Retry-After`
//! are not consulted (Stripe does not promise `Retry-After` on a 429 and recommends
//! exponential backoff, which the schedule is): a 5xx that Stripe replays for a key (it saves the result of a request
//! that started executing) is simply repeated until the retries run out.
//!
//! # Errors
//!
//! 404 → [`GatewayError::NotFound`]; other 4xx (bad parameters, authentication, a declined
//! card, an idempotency key reused with other parameters) → [`GatewayError::Rejected`] with
//! Stripe's type, code, parameter and message; 429, 5xx, timeouts and network errors, once
//! retries are exhausted → [`GatewayError::Unavailable`]; an answer that cannot be read →
//! [`GatewayError::Unexpected`]. Each error keeps its cause as its
//! [`source`](std::error::Error::source): the call's name with Stripe's answer, async-stripe's
//! report of the network or parsing failure, or the JSON parser's own error. No message
//! contains the secret key.

mod failure;
mod response;
mod retry;
mod secret;

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use billing_domain::facts::SubscriptionSnapshot;
use billing_ports::{
    Cause, CheckoutCreated, CheckoutKind, CheckoutRequest, ErrorChain, EventPage, EventQuery,
    GatewayError, StripeGateway, SubscriptionPage, UnreadableObject,
};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Serialize;
use stripe::{ClientBuilder, IdempotencyKey, RequestStrategy, StripeRequest};
use stripe_checkout::CheckoutSessionMode;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionSubscriptionData,
};
use stripe_client_core::{RequestBuilder, StripeMethod};
use stripe_core::customer::CreateCustomer;
use thiserror::Error;

use self::retry::RetryPolicy;
pub use self::secret::SecretKey;

/// The `Stripe-Version` every request carries: async-stripe's own API version, which it has
/// no setter for.
pub const STRIPE_API_VERSION: &str = "2026-09-30.endive";

/// The most subscriptions [`StripeClient::customer_subscriptions`](StripeGateway::customer_subscriptions)
/// reads for one customer (100 pages of 100); more is reported as unexpected rather than
/// paginated forever.
pub const MAX_LISTED_SUBSCRIPTIONS: usize = 10_000;

/// The most pages [`StripeClient::list_events`](StripeGateway::list_events) walks to find the
/// oldest events of a window (a million events); more is reported as unexpected.
pub const MAX_EVENT_PAGES: usize = 10_000;

/// The page size of list calls (Stripe's maximum).
const PAGE_SIZE: u32 = 100;

/// Where and how the client reaches Stripe: the key, the API base, the per-attempt timeout and
/// the retry schedule.
#[derive(Debug, Clone)]
pub struct StripeClientConfig {
    /// The secret (`sk_…`) or restricted (`rk_…`) API key.
    pub secret_key: SecretKey,
    /// Where the API is, e.g. `http://127.0.0.1:12111/` for a fake; `None` for
    /// `https://api.stripe.com/`. Requests go to `{api_base}/v1/…`.
    pub api_base: Option<String>,
    /// The limit on each HTTP attempt, from sending the request to the end of the body.
    pub timeout: Duration,
    /// Attempts after the first, for failures another attempt may get past (see the
    /// [module docs](self)).
    pub max_retries: u32,
    /// The wait before the first retry, doubled for each further one (capped at 10 s, with
    /// jitter).
    pub retry_backoff: Duration,
}

impl StripeClientConfig {
    /// The defaults for the real API: 30 s per attempt, 2 retries, 500 ms first backoff.
    pub fn new(secret_key: impl Into<SecretKey>) -> Self {
        Self {
            secret_key: secret_key.into(),
            api_base: None,
            timeout: Duration::from_secs(30),
            max_retries: 2,
            retry_backoff: Duration::from_millis(500),
        }
    }
}

/// Why a [`StripeClientConfig`] cannot become a client: an empty or unusable key, an unusable
/// `api_base`, or a zero timeout. Its message never contains the key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid Stripe client configuration: {0}")]
pub struct ClientConfigError(String);

/// The outgoing Stripe API client.
///
/// Cheap to clone (the HTTP client and its configuration are shared). Its `Debug` output
/// shows where it sends requests, never the key.
#[derive(Clone)]
pub struct StripeClient {
    client: stripe::Client,
    secret: SecretKey,
    api_base: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("api_base", &self.api_base)
            .field("stripe_version", &STRIPE_API_VERSION)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.retry.max_retries)
            .field("retry_backoff", &self.retry.backoff)
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Builds a client. Makes no request.
    ///
    /// # Errors
    ///
    /// An empty key or one that is not visible ASCII, an unusable `api_base`, or a zero
    /// timeout.
    pub fn new(config: StripeClientConfig) -> Result<Self, ClientConfigError> {
        let StripeClientConfig {
            secret_key,
            api_base,
            timeout,
            max_retries,
            retry_backoff,
        } = config;
        if secret_key.expose().is_empty() {
            return Err(ClientConfigError("the secret key is empty".to_owned()));
        }
        if timeout.is_zero() {
            return Err(ClientConfigError("the timeout is zero".to_owned()));
        }
        // async-stripe joins `{base}v1/…`, so the base must end with a slash.
        let api_base = match api_base {
            Some(base) if base.ends_with('/') => base,
            Some(base) => format!("{base}/"),
            None => "https://api.stripe.com/".to_owned(),
        };
        let client = ClientBuilder::new(secret_key.expose())
            .url(api_base.clone())
            .timeout(timeout)
            .request_strategy(RequestStrategy::Once)
            .build()
            .map_err(|error| ClientConfigError(secret::redact(&error.to_string(), &secret_key)))?;
        Ok(Self {
            client,
            secret: secret_key,
            api_base,
            timeout,
            retry: RetryPolicy {
                max_retries,
                backoff: retry_backoff,
            },
        })
    }

    /// Sends the request made by `build`, retrying as the [module docs](self) say, and returns
    /// the JSON object answered.
    ///
    /// `build` is called once per attempt (a request cannot be cloned); `key`, when given, is
    /// sent as `Idempotency-Key` on every attempt.
    async fn send(
        &self,
        call: &str,
        key: Option<&IdempotencyKey>,
        build: &(dyn Fn() -> RequestBuilder + Send + Sync),
    ) -> Result<response::Object, GatewayError> {
        let attempt = || async {
            let strategy = match key {
                Some(key) => RequestStrategy::Idempotent(key.clone()),
                None => RequestStrategy::Once,
            };
            build()
                .customize::<miniserde::json::Value>()
                .request_strategy(strategy)
                .send(&self.client)
                .await
                .map_err(|error| failure::classify(call, error, &self.secret))
        };
        let mut retry = 0;
        let answer = attempt
            .retry(self.retry.schedule())
            .when(|failure| failure.retryable)
            .notify(|failure, delay| {
                retry += 1;
                tracing::info!(call, retry, ?delay, error = %ErrorChain(&failure.error), "retrying stripe call");
            })
            .await;
        match answer {
            Ok(value) => response::object(call, &value),
            Err(failure) if failure.retryable => {
                let attempts = self.retry.max_retries.saturating_add(1);
                tracing::warn!(call, attempts, error = %ErrorChain(&failure.error), "stripe call failed after retries");
                Err(failure.error)
            }
            Err(failure) => {
                // The caller decides whether a refusal is worth more than a debug line.
                tracing::debug!(call, error = %ErrorChain(&failure.error), "stripe refused the call");
                Err(failure.error)
            }
        }
    }
}

/// The caller's idempotency key, checked the way Stripe checks it (1 to 255 characters).
fn idempotency_key(call: &str, key: &str) -> Result<IdempotencyKey, GatewayError> {
    IdempotencyKey::new(key).map_err(|error| {
        GatewayError::Rejected(Cause::context(format!("{call}: idempotency key"), error))
    })
}

/// `metadata[user_id]`.
fn user_metadata(user_id: &str) -> HashMap<String, String> {
    HashMap::from([("user_id".to_owned(), user_id.to_owned())])
}

/// The bytes of a path segment that are percent-encoded: all but RFC 3986's unreserved ones.
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'_')
    .remove(b'-')
    .remove(b'.')
    .remove(b'~');

/// An id as one path segment: refused when empty (the path would name the list instead),
/// percent-encoded otherwise (Stripe ids are `[A-Za-z0-9_]`, so this changes nothing for them).
fn path_segment(call: &str, id: &str) -> Result<String, GatewayError> {
    if id.is_empty() {
        return Err(GatewayError::Rejected(Cause::msg(format!(
            "{call}: the id is empty"
        ))));
    }
    Ok(utf8_percent_encode(id, PATH_SEGMENT).to_string())
}

/// The form of `POST /v1/billing_portal/sessions`.
#[derive(Serialize)]
struct PortalSessionForm<'a> {
    customer: &'a str,
    return_url: &'a str,
}

/// The query of `GET /v1/subscriptions`.
#[derive(Serialize)]
struct SubscriptionListQuery<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    customer: Option<&'a str>,
    status: &'static str,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
}

/// The query of `GET /v1/events`.
#[derive(Serialize)]
struct EventListQuery<'a> {
    #[serde(rename = "created[gte]")]
    created_gte: i64,
    limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    starting_after: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending_before: Option<&'a str>,
}

impl StripeClient {
    /// One page of `GET /v1/events` (newest first, as Stripe lists).
    async fn event_page(
        &self,
        call: &str,
        query: &EventQuery,
        starting_after: Option<&str>,
        ending_before: Option<&str>,
    ) -> Result<response::Page, GatewayError> {
        let query = EventListQuery {
            created_gte: query.since.timestamp(),
            limit: PAGE_SIZE,
            starting_after,
            ending_before,
        };
        let object = self
            .send(call, None, &|| {
                RequestBuilder::new(StripeMethod::Get, "/events").query(&query)
            })
            .await?;
        response::page(call, object)
    }

    /// One page of `GET /v1/subscriptions?status=all` (of one customer, or of the account).
    async fn subscription_page(
        &self,
        call: &str,
        customer: Option<&str>,
        starting_after: Option<&str>,
    ) -> Result<response::Page, GatewayError> {
        let query = SubscriptionListQuery {
            customer,
            status: "all",
            limit: PAGE_SIZE,
            starting_after,
        };
        let object = self
            .send(call, None, &|| {
                RequestBuilder::new(StripeMethod::Get, "/subscriptions").query(&query)
            })
            .await?;
        response::page(call, object)
    }
}

#[async_trait]
impl StripeGateway for StripeClient {
    async fn fetch_subscription(
        &self,
        subscription_id: &str,
    ) -> Result<SubscriptionSnapshot, GatewayError> {
        let call = "fetch subscription";
        let path = format!("/subscriptions/{}", path_segment(call, subscription_id)?);
        let object = self
            .send(call, None, &|| {
                RequestBuilder::new(StripeMethod::Get, path.clone())
            })
            .await?;
        response::subscription(call, serde_json::Value::Object(object))
    }

    async fn customer_subscriptions(
        &self,
        customer_id: &str,
    ) -> Result<Vec<SubscriptionSnapshot>, GatewayError> {
        let call = "list customer subscriptions";
        if customer_id.is_empty() {
            return Err(GatewayError::Rejected(Cause::msg(format!(
                "{call}: the customer id is empty"
            ))));
        }
        let mut subscriptions = Vec::new();
        let mut starting_after: Option<String> = None;
        loop {
            let page = self
                .subscription_page(call, Some(customer_id), starting_after.as_deref())
                .await?;
            let mut last_id = None;
            for object in page.data {
                let snapshot = response::subscription(call, object)?;
                last_id = Some(snapshot.id.clone());
                subscriptions.push(snapshot);
            }
            // An empty page that claims more would loop forever on the same cursor.
            match last_id {
                Some(last) if page.has_more => starting_after = Some(last),
                _ => return Ok(subscriptions),
            }
            if subscriptions.len() >= MAX_LISTED_SUBSCRIPTIONS {
                return Err(response::unexpected(
                    call,
                    &format!(
                        "customer {customer_id} has more than {MAX_LISTED_SUBSCRIPTIONS} subscriptions"
                    ),
                ));
            }
        }
    }

    async fn list_events(&self, query: &EventQuery) -> Result<EventPage, GatewayError> {
        let call = "list events";
        if let Some(after) = &query.after {
            // `ending_before`: the page just newer than `after`, listed newest first.
            let page = self.event_page(call, query, None, Some(after)).await?;
            return Ok(EventPage {
                events: response::events(call, page.data)?,
                has_more: page.has_more,
            });
        }
        // Stripe lists newest first: the oldest events are on the last page.
        let mut starting_after: Option<String> = None;
        for pages in 1..=MAX_EVENT_PAGES {
            let page = self
                .event_page(call, query, starting_after.as_deref(), None)
                .await?;
            match response::last_id(&page.data) {
                Some(last) if page.has_more => starting_after = Some(last),
                _ => {
                    return Ok(EventPage {
                        events: response::events(call, page.data)?,
                        has_more: pages > 1,
                    });
                }
            }
        }
        Err(response::unexpected(
            call,
            &format!("more than {MAX_EVENT_PAGES} pages of events"),
        ))
    }

    async fn list_subscriptions(
        &self,
        customer_id: Option<&str>,
        starting_after: Option<&str>,
    ) -> Result<SubscriptionPage, GatewayError> {
        let call = "list subscriptions";
        let page = self
            .subscription_page(call, customer_id, starting_after)
            .await?;
        let next = if page.has_more {
            response::last_id(&page.data)
        } else {
            None
        };
        let mut listed = SubscriptionPage {
            next,
            ..SubscriptionPage::default()
        };
        for object in page.data {
            let id = response::id_of(&object);
            match response::subscription(call, object) {
                Ok(snapshot) => listed.subscriptions.push(snapshot),
                Err(error) => listed.unreadable.push(UnreadableObject {
                    id,
                    error: ErrorChain(&error).to_string(),
                }),
            }
        }
        Ok(listed)
    }

    async fn create_customer(
        &self,
        user_id: &str,
        email: Option<&str>,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        let call = "create customer";
        let key = self::idempotency_key(call, idempotency_key)?;
        let mut request = CreateCustomer::new().metadata(user_metadata(user_id));
        if let Some(email) = email {
            request = request.email(email);
        }
        let object = self.send(call, Some(&key), &|| request.build()).await?;
        response::string(call, &object, "id")
    }

    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
        idempotency_key: &str,
    ) -> Result<CheckoutCreated, GatewayError> {
        let call = "create checkout session";
        let key = self::idempotency_key(call, idempotency_key)?;
        let line_item = CreateCheckoutSessionLineItems {
            price: Some(request.price_id.clone()),
            quantity: Some(1),
            ..CreateCheckoutSessionLineItems::new()
        };
        let mut params = CreateCheckoutSession::new()
            .customer(&request.customer_id)
            .client_reference_id(&request.user_id)
            .metadata(user_metadata(&request.user_id))
            .line_items(vec![line_item])
            .success_url(&request.success_url)
            .cancel_url(&request.cancel_url);
        params = match request.kind {
            CheckoutKind::Payment => {
                if request.trial_days.is_some() {
                    return Err(GatewayError::Rejected(Cause::msg(format!(
                        "{call}: trial days are only possible in subscription mode"
                    ))));
                }
                // The payment intent carries the user too, so its own events
                // (`payment_intent.*`) name the user even before the customer is linked.
                params
                    .mode(CheckoutSessionMode::Payment)
                    .payment_intent_data(CreateCheckoutSessionPaymentIntentData {
                        metadata: Some(user_metadata(&request.user_id)),
                        ..CreateCheckoutSessionPaymentIntentData::new()
                    })
            }
            CheckoutKind::Subscription => params
                .mode(CheckoutSessionMode::Subscription)
                .subscription_data(CreateCheckoutSessionSubscriptionData {
                    metadata: Some(user_metadata(&request.user_id)),
                    trial_period_days: request.trial_days,
                    ..CreateCheckoutSessionSubscriptionData::new()
                }),
        };
        let object = self.send(call, Some(&key), &|| params.build()).await?;
        Ok(CheckoutCreated {
            id: response::string(call, &object, "id")?,
            url: response::string(call, &object, "url")?,
        })
    }

    async fn create_portal_session(
        &self,
        customer_id: &str,
        return_url: &str,
    ) -> Result<String, GatewayError> {
        let call = "create portal session";
        let form = PortalSessionForm {
            customer: customer_id,
            return_url,
        };
        let object = self
            .send(call, None, &|| {
                RequestBuilder::new(StripeMethod::Post, "/billing_portal/sessions").form(&form)
            })
            .await?;
        response::string(call, &object, "url")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_constant_is_what_async_stripe_sends() {
        assert_eq!(STRIPE_API_VERSION, stripe_client_core::VERSION.as_str());
    }

    #[test]
    fn path_segments_are_encoded_and_never_empty() {
        assert_eq!(
            path_segment("x", "sub_123").ok().as_deref(),
            Some("sub_123")
        );
        assert_eq!(
            path_segment("x", "a/b?c").ok().as_deref(),
            Some("a%2Fb%3Fc")
        );
        assert!(matches!(
            path_segment("x", ""),
            Err(GatewayError::Rejected(_))
        ));
    }

    #[test]
    fn config_errors_never_show_the_key_and_debug_hides_it() {
        let mut config = StripeClientConfig::new("sk_test_secret\n");
        config.api_base = Some("http://127.0.0.1:9/".to_owned());
        let error = StripeClient::new(config.clone())
            .err()
            .map(|e| e.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|e| !e.contains("sk_test_secret")),
            "{error:?}"
        );
        assert!(!format!("{config:?}").contains("sk_test_secret"));

        config.secret_key = SecretKey::new("sk_test_secret");
        let client = StripeClient::new(config).map(|c| format!("{c:?}"));
        assert!(
            client
                .as_deref()
                .is_ok_and(|c| !c.contains("sk_test_secret")),
            "{client:?}"
        );
    }

    #[test]
    fn bad_configurations_are_refused() {
        assert!(StripeClient::new(StripeClientConfig::new("")).is_err());
        let mut config = StripeClientConfig::new("sk_test_x");
        config.timeout = Duration::ZERO;
        assert!(StripeClient::new(config).is_err());
        let mut config = StripeClientConfig::new("sk_test_x");
        config.api_base = Some("not a url at all".to_owned());
        assert!(StripeClient::new(config).is_err());
    }
}
