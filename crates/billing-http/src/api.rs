//! `/v1`: the product's API. Every route needs a bearer API key, checked by the scope's
//! middleware before anything reads the request body.

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{Error, HttpRequest, HttpResponse, Route, web};
use billing_app::{CheckoutParams, PriceChoice};
use billing_ports::{BillingStore, CheckoutKind, FeedStore};

use crate::HttpState;
use std::borrow::Cow;

use billing_api::{
    Catalog, ChangesPage, CheckoutRequest, CheckoutSession, Entitlements, ErrorBody, ErrorCode,
    ErrorDetail, FeatureAnswer, Mode, PortalRequest, PortalSession, Synced, UsageAccepted,
    UsageRefused, UsageRequest,
};

use crate::dto;
use crate::error::ApiError;
use crate::input::{self, JsonObject};
use crate::openapi::{DatabaseErrors, JsonBodyErrors, StripeErrors, V1Errors};

/// The `/v1` scope, behind the API key middleware.
pub(crate) fn scope<S: BillingStore + FeedStore>() -> actix_web::Scope<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<BoxBody>,
        Error = Error,
        InitError = (),
    >,
> {
    web::scope("/v1")
        .wrap(from_fn(crate::auth::require_api_key))
        // The feature check first: the router tries the resources in order, and it is the
        // most frequent request.
        .service(resource(
            "/users/{user_id}/features/{feature}",
            Method::GET,
            web::get().to(feature::<S>),
        ))
        .service(resource(
            "/users/{user_id}/entitlements",
            Method::GET,
            web::get().to(entitlements::<S>),
        ))
        .service(resource(
            "/users/{user_id}/usage",
            Method::POST,
            web::post().to(usage::<S>),
        ))
        .service(resource(
            "/users/{user_id}/sync",
            Method::POST,
            web::post().to(sync::<S>),
        ))
        .service(resource(
            "/checkout/sessions",
            Method::POST,
            web::post().to(checkout::<S>),
        ))
        .service(resource(
            "/portal/sessions",
            Method::POST,
            web::post().to(portal::<S>),
        ))
        .service(resource(
            "/catalog",
            Method::GET,
            web::get().to(catalog::<S>),
        ))
        .service(resource(
            "/changes",
            Method::GET,
            web::get().to(changes::<S>),
        ))
}

/// One resource taking `method` only; any other method is answered 405 with `Allow`.
pub(crate) fn resource(path: &str, method: Method, route: Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(move || {
            std::future::ready(crate::error::method_not_allowed(&method))
        }))
}

/// A user's entitlements now.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/entitlements",
    tag = "v1",
    params(("user_id" = String, Path, description = "The product's user id", max_length = 255)),
    responses(
        (status = 200, description = "The user's entitlements", body = Entitlements),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        V1Errors, DatabaseErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn entitlements<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    input::user_id(&path)?;
    let e = state.app.entitlements(&path).await?;
    Ok(HttpResponse::Ok().json(dto::entitlements(&e)))
}

/// Whether a user has a feature now.
#[utoipa::path(
    get,
    path = "/v1/users/{user_id}/features/{feature}",
    tag = "v1",
    params(
        ("user_id" = String, Path, description = "The product's user id", max_length = 255),
        ("feature" = String, Path, description = "A feature of the plan catalog", max_length = 255, pattern = r"^[^\x00-\x1F\x7F-\x9F%/?#]+$"),
    ),
    responses(
        (status = 200, description = "Whether the feature is allowed", body = FeatureAnswer),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 404, description = "Unknown feature (`unknown_feature`)", body = ErrorBody),
        V1Errors, DatabaseErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn feature<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (user, feature) = path.into_inner();
    input::user_id(&user)?;
    let Some(access) = state.app.feature(&user, &feature).await? else {
        return Err(ApiError::new(
            ErrorCode::UnknownFeature,
            format!("feature {feature:?} is not in the plan catalog"),
        ));
    };
    Ok(HttpResponse::Ok().json(FeatureAnswer {
        user_id: Cow::Borrowed(&user),
        feature: Cow::Borrowed(&feature),
        allowed: access.allowed,
        tier: Cow::Borrowed(access.tier.as_str()),
        reason: Cow::Borrowed(access.reason.code()),
    }))
}

/// Counts usage against the period's limit, once per idempotency key.
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/usage",
    tag = "v1",
    params(("user_id" = String, Path, description = "The product's user id", max_length = 255)),
    request_body = UsageRequest,
    responses(
        (status = 200, description = "Usage counted", body = UsageAccepted),
        (status = 400, description = "Invalid input or unknown metric", body = ErrorBody),
        (status = 402, description = "The usage would exceed the limit (`usage_limit_exceeded`)", body = UsageRefused),
        (status = 422, description = "Idempotency key reused or a value refused", body = ErrorBody),
        V1Errors, JsonBodyErrors, DatabaseErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn usage<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<String>,
    body: JsonObject<UsageRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    input::user_id(&path)?;
    input::idempotency_key(&body.idempotency_key)?;
    input::quantity(body.quantity)?;
    let outcome = state
        .app
        .record_usage(&path, &body.metric, body.quantity, &body.idempotency_key)
        .await?;
    if outcome.allowed {
        Ok(HttpResponse::Ok().json(UsageAccepted {
            allowed: true,
            used: outcome.used,
            limit: outcome.limit,
            remaining: outcome.remaining,
            period_end: outcome.period_end,
            replayed: outcome.replayed,
        }))
    } else {
        // 402, not 429: the quota is exhausted until the period ends or the plan changes;
        // 429 invites automatic retries, which cannot succeed.
        Ok(HttpResponse::PaymentRequired().json(UsageRefused {
            allowed: false,
            used: outcome.used,
            limit: outcome.limit,
            period_end: outcome.period_end,
            replayed: outcome.replayed,
            error: ErrorDetail {
                code: ErrorCode::UsageLimitExceeded,
                message: format!("{} would exceed the limit of this period", body.metric),
            },
        }))
    }
}

/// Creates a Stripe Checkout session for a user, once per `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/checkout/sessions",
    tag = "v1",
    params(("Idempotency-Key" = String, Header, description = "The same key returns the same session", min_length = 1, max_length = 255, pattern = r"^[\x20-\x7E]+$")),
    request_body = CheckoutRequest,
    responses(
        (status = 200, description = "The session", body = CheckoutSession),
        (status = 400, description = "Invalid input, unknown price or tier", body = ErrorBody),
        (status = 404, description = "Stripe does not know an object", body = ErrorBody),
        (status = 422, description = "Idempotency key reused or a value refused", body = ErrorBody),
        V1Errors, JsonBodyErrors, StripeErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn checkout<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    request: HttpRequest,
    body: JsonObject<CheckoutRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = request
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::MissingIdempotencyKey,
                "send an Idempotency-Key header",
            )
        })?;
    let body = body.0;
    input::idempotency_key(key)?;
    input::user_id(&body.user_id)?;
    if let Some(email) = &body.email {
        input::email(email)?;
    }
    input::url("success_url", &body.success_url)?;
    input::url("cancel_url", &body.cancel_url)?;
    let price = match (body.price_id, body.tier) {
        (Some(p), None) => PriceChoice::Price(p),
        (None, Some(t)) => PriceChoice::Tier(t),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "send exactly one of price_id and tier",
            ));
        }
    };
    let outcome = state
        .app
        .create_checkout(CheckoutParams {
            user_id: body.user_id,
            email: body.email,
            kind: match body.mode {
                Mode::Payment => CheckoutKind::Payment,
                Mode::Subscription => CheckoutKind::Subscription,
            },
            price,
            success_url: body.success_url,
            cancel_url: body.cancel_url,
            trial_days: body.trial_days,
            idempotency_key: key.to_owned(),
        })
        .await?;
    Ok(HttpResponse::Ok().json(CheckoutSession {
        id: outcome.id,
        url: outcome.url,
        replayed: outcome.replayed,
    }))
}

/// Creates a Stripe billing portal session for a known user.
#[utoipa::path(
    post,
    path = "/v1/portal/sessions",
    tag = "v1",
    request_body = PortalRequest,
    responses(
        (status = 200, description = "The session", body = PortalSession),
        (status = 400, description = "Invalid input", body = ErrorBody),
        (status = 404, description = "Unknown user (`unknown_user`)", body = ErrorBody),
        V1Errors, JsonBodyErrors, StripeErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn portal<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    body: JsonObject<PortalRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    input::user_id(&body.user_id)?;
    input::url("return_url", &body.return_url)?;
    let url = state
        .app
        .portal_url(&body.user_id, &body.return_url)
        .await?;
    Ok(HttpResponse::Ok().json(PortalSession { url }))
}

/// Re-reads a known user's subscriptions from Stripe, then answers the entitlements.
#[utoipa::path(
    post,
    path = "/v1/users/{user_id}/sync",
    tag = "v1",
    params(("user_id" = String, Path, description = "The product's user id", max_length = 255)),
    responses(
        (status = 200, description = "The entitlements after the sync", body = Synced),
        (status = 400, description = "Invalid user id", body = ErrorBody),
        (status = 404, description = "Unknown user or Stripe object", body = ErrorBody),
        (status = 422, description = "A value refused by the database", body = ErrorBody),
        V1Errors, StripeErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn sync<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    input::user_id(&path)?;
    let written = state.app.sync_user(&path).await?;
    let e = state.app.entitlements(&path).await?;
    Ok(HttpResponse::Ok().json(Synced {
        entitlements: dto::entitlements(&e),
        synced_subscriptions: written as u64,
    }))
}

/// The plan catalog the server runs with: tiers lowest first, each feature with the tiers that
/// have it, each metric with every tier's limit.
#[utoipa::path(
    get,
    path = "/v1/catalog",
    tag = "v1",
    responses(
        (status = 200, description = "The plan catalog", body = Catalog),
        V1Errors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn catalog<S: BillingStore>(state: web::Data<HttpState<S>>) -> HttpResponse {
    HttpResponse::Ok().json(dto::catalog(state.app.catalog()))
}

/// The most records one page of the change feed holds.
pub(crate) const MAX_CHANGES_LIMIT: u32 = 1_000;

/// Records per page when `limit` is absent.
const DEFAULT_CHANGES_LIMIT: u32 = 100;

/// The longest a change feed read waits for a change.
pub(crate) const MAX_CHANGES_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// How often a waiting read looks again without being woken: changes committed by other
/// replicas wake no one here.
const CHANGES_RECHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// What `GET /v1/changes` asks.
struct ChangesQuery {
    after: Option<i64>,
    limit: u32,
    wait: std::time::Duration,
}

impl ChangesQuery {
    fn parse(query: &str) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("query: {e}")))?;
        let mut parsed = ChangesQuery {
            after: None,
            limit: DEFAULT_CHANGES_LIMIT,
            wait: std::time::Duration::ZERO,
        };
        for (name, value) in pairs.0 {
            match name.as_str() {
                "after" => parsed.after = Some(cursor(&value)?),
                "limit" => parsed.limit = limit(&value)?,
                "wait" => parsed.wait = wait(&value)?,
                _ => {}
            }
        }
        Ok(parsed)
    }
}

/// A cursor as served: the decimal position of a record (`0` before the first).
fn cursor(value: &str) -> Result<i64, ApiError> {
    value
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| value.parse::<i64>().ok())
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidCursor,
                "after is not a cursor this server gave",
            )
        })
}

fn limit(value: &str) -> Result<u32, ApiError> {
    value
        .parse::<u32>()
        .ok()
        .filter(|n| (1..=MAX_CHANGES_LIMIT).contains(n))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("limit must be a whole number from 1 to {MAX_CHANGES_LIMIT}"),
            )
        })
}

/// `30` or `30s`: whole seconds, at most [`MAX_CHANGES_WAIT`].
fn wait(value: &str) -> Result<std::time::Duration, ApiError> {
    let seconds = value.strip_suffix('s').unwrap_or(value);
    seconds
        .parse::<u64>()
        .ok()
        .filter(|s| *s <= MAX_CHANGES_WAIT.as_secs() && seconds.bytes().all(|b| b.is_ascii_digit()))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!(
                    "wait must be whole seconds (\"30\" or \"30s\"), at most {}",
                    MAX_CHANGES_WAIT.as_secs()
                ),
            )
        })
}

/// The change feed: records of every change of a user's access, in commit order, after a
/// cursor; with `wait`, an empty answer waits for the next commit.
#[utoipa::path(
    get,
    path = "/v1/changes",
    tag = "v1",
    params(
        ("after" = Option<String>, Query, description = "A cursor this server gave (`next_cursor` or a record's `cursor`); absent: from the first record kept", pattern = r"^[0-9]{1,19}$"),
        ("limit" = Option<u32>, Query, description = "Records per page, 1 to 1000 (default 100)", minimum = 1, maximum = 1000),
        ("wait" = Option<String>, Query, description = "Long poll: when nothing follows the cursor, wait up to this many seconds (`30` or `30s`, at most 60) for a change", pattern = r"^[0-9]{1,2}s?$"),
    ),
    responses(
        (status = 200, description = "The records after the cursor (none when the wait ended first, or the server began to stop)", body = ChangesPage),
        (status = 400, description = "A malformed or unknown cursor (`invalid_cursor`), a bad limit or wait (`invalid_input`)", body = ErrorBody),
        (status = 410, description = "The cursor is before the feed's retention horizon (`cursor_expired`): records after it were purged (`CHANGE_RETENTION_DAYS`). Resynchronise what the records would have told (e.g. each user's entitlements), then read from the start, without a cursor", body = ErrorBody),
        V1Errors, DatabaseErrors,
    ),
    security(("api_key" = []))
)]
pub(crate) async fn changes<S: BillingStore + FeedStore>(
    state: web::Data<HttpState<S>>,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query = ChangesQuery::parse(request.query_string())?;
    let deadline = tokio::time::Instant::now() + query.wait;
    let mut commits = state.app.feed_commits();
    loop {
        // Seen before reading: a commit after this read wakes the wait below.
        commits.borrow_and_update();
        let Some(page) = state.app.changes(query.after, query.limit).await? else {
            return Err(ApiError::new(
                ErrorCode::InvalidCursor,
                "after names no record of this feed (unknown, or beyond the newest)",
            ));
        };
        let now = tokio::time::Instant::now();
        if !page.changes.is_empty() || now >= deadline || state.app.is_stopping() {
            return Ok(HttpResponse::Ok().json(ChangesPage {
                changes: page
                    .changes
                    .iter()
                    .map(billing_push::change_record)
                    .collect(),
                next_cursor: page.next.to_string(),
            }));
        }
        let step = (deadline - now).min(CHANGES_RECHECK);
        // Woken by this process's commits; other replicas' are seen at the next look.
        let _ = tokio::time::timeout(step, commits.changed()).await;
    }
}
