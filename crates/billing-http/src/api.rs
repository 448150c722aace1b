//! `/v1`: the product's API. Every route needs a bearer API key, checked by the scope's
//! middleware before anything reads the request body.

use std::collections::BTreeMap;

use actix_web::body::BoxBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{Error, HttpRequest, HttpResponse, Route, web};
use billing_app::{CheckoutParams, PriceChoice, UserEntitlements};
use billing_ports::{BillingStore, CheckoutKind};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::HttpState;
use crate::error::{ApiError, ErrorCode};
use crate::input::{self, JsonObject};

/// The `/v1` scope, behind the API key middleware.
pub(crate) fn scope<S: BillingStore>() -> actix_web::Scope<
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
        .service(resource(
            "/users/{user_id}/entitlements",
            web::get().to(entitlements::<S>),
        ))
        .service(resource(
            "/users/{user_id}/features/{feature}",
            web::get().to(feature::<S>),
        ))
        .service(resource(
            "/users/{user_id}/usage",
            web::post().to(usage::<S>),
        ))
        .service(resource("/users/{user_id}/sync", web::post().to(sync::<S>)))
        .service(resource(
            "/checkout/sessions",
            web::post().to(checkout::<S>),
        ))
        .service(resource("/portal/sessions", web::post().to(portal::<S>)))
}

/// One resource taking one method; any other method is answered 405.
pub(crate) fn resource(path: &str, route: Route) -> actix_web::Resource {
    web::resource(path)
        .route(route)
        .default_service(web::to(crate::error::method_not_allowed))
}

fn rfc3339(at: Option<DateTime<Utc>>) -> Value {
    at.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(SecondsFormat::Secs, true))
    })
}

fn entitlements_json(e: &UserEntitlements) -> Value {
    let limits: BTreeMap<&str, Value> = e
        .limits
        .iter()
        .map(|(metric, limit)| {
            (
                metric.as_str(),
                limit.as_option().map_or(Value::Null, Value::from),
            )
        })
        .collect();
    json!({
        "user_id": e.user_id,
        "tier": e.tier.as_str(),
        "reason": e.reason.code(),
        "status": e.status.as_ref().map(|s| s.as_str().to_owned()),
        "subscription_id": e.subscription_id,
        "features": e.features,
        "limits": limits,
        "usage": e.usage,
        "usage_period": {"start": rfc3339(Some(e.period.start)), "end": rfc3339(Some(e.period.end))},
        "credits": e.credits,
        "period_end": rfc3339(e.period_end),
        "grace_period_end": rfc3339(e.grace_period_end),
        "trial_end": rfc3339(e.trial_end),
        "cancel_at_period_end": e.cancel_at_period_end,
    })
}

async fn entitlements<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    input::user_id(&path)?;
    let e = state.app.entitlements(&path).await?;
    Ok(HttpResponse::Ok().json(entitlements_json(&e)))
}

async fn feature<S: BillingStore>(
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
    Ok(HttpResponse::Ok().json(json!({
        "user_id": user, "feature": feature, "allowed": access.allowed,
        "tier": access.tier.as_str(), "reason": access.reason.code(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageBody {
    metric: String,
    quantity: u64,
    idempotency_key: String,
}

async fn usage<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<String>,
    body: JsonObject<UsageBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    input::user_id(&path)?;
    input::idempotency_key(&body.idempotency_key)?;
    input::quantity(body.quantity)?;
    let outcome = state
        .app
        .record_usage(&path, &body.metric, body.quantity, &body.idempotency_key)
        .await?;
    let limit = outcome.limit.map_or(Value::Null, Value::from);
    if outcome.allowed {
        Ok(HttpResponse::Ok().json(json!({
            "allowed": true, "used": outcome.used, "limit": limit,
            "remaining": outcome.remaining, "period_end": rfc3339(Some(outcome.period_end)),
            "replayed": outcome.replayed,
        })))
    } else {
        // 402, not 429: the quota is exhausted until the period ends or the plan changes;
        // 429 invites automatic retries, which cannot succeed.
        Ok(HttpResponse::PaymentRequired().json(json!({
            "allowed": false, "used": outcome.used, "limit": limit,
            "period_end": rfc3339(Some(outcome.period_end)), "replayed": outcome.replayed,
            "error": {"code": ErrorCode::UsageLimitExceeded, "message": format!("{} would exceed the limit of this period", body.metric)},
        })))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Payment,
    Subscription,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    user_id: String,
    email: Option<String>,
    mode: Mode,
    price_id: Option<String>,
    tier: Option<String>,
    success_url: String,
    cancel_url: String,
    trial_days: Option<u32>,
}

async fn checkout<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    request: HttpRequest,
    body: JsonObject<CheckoutBody>,
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
    Ok(HttpResponse::Ok()
        .json(json!({"id": outcome.id, "url": outcome.url, "replayed": outcome.replayed})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortalBody {
    user_id: String,
    return_url: String,
}

async fn portal<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    body: JsonObject<PortalBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0;
    input::user_id(&body.user_id)?;
    input::url("return_url", &body.return_url)?;
    let url = state
        .app
        .portal_url(&body.user_id, &body.return_url)
        .await?;
    Ok(HttpResponse::Ok().json(json!({"url": url})))
}

async fn sync<S: BillingStore>(
    state: web::Data<HttpState<S>>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    input::user_id(&path)?;
    let written = state.app.sync_user(&path).await?;
    let e = state.app.entitlements(&path).await?;
    let mut body = entitlements_json(&e);
    body["synced_subscriptions"] = json!(written);
    Ok(HttpResponse::Ok().json(body))
}
