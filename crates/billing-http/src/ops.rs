//! Operability routes: liveness, readiness, metrics, the OpenAPI document.

use actix_web::{HttpResponse, web};
use billing_ports::BillingStore;

use crate::HttpState;
use billing_api::ErrorBody;

use crate::dto::Status;
use crate::error::ApiError;
use crate::openapi::{self, RouteErrors, ServerErrors};

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "ops",
    responses(
        (status = 200, description = "The process is up", body = Status),
        RouteErrors,
    )
)]
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Status { status: "ok" })
}

/// The database answers and its migrations are applied, within the readiness time limit.
/// The answer says only "not ready"; the reason is logged (once, by the request log).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "ops",
    responses(
        (status = 200, description = "Ready", body = Status),
        RouteErrors,
        (status = 503, description = "Not ready (`not_ready`)", body = ErrorBody),
    )
)]
pub(crate) async fn readyz<S: BillingStore>(
    state: web::Data<HttpState<S>>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.readiness_timeout.min(crate::MAX_READINESS_TIMEOUT);
    match actix_web::rt::time::timeout(limit, (state.readiness)()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(Status { status: "ready" })),
        Ok(Err(reason)) => Err(ApiError::not_ready(reason)),
        Err(_) => Err(ApiError::not_ready(format!(
            "the readiness check did not finish within {} ms",
            limit.as_millis()
        ))),
    }
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "ops",
    responses(
        (status = 200, description = "Prometheus metrics", body = String, content_type = "text/plain"),
        RouteErrors,
    )
)]
pub(crate) async fn metrics<S: BillingStore>(state: web::Data<HttpState<S>>) -> HttpResponse {
    if state.metrics.is_some() {
        crate::gauges::refresh(&state).await;
    }
    match &state.metrics {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        None => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(""),
    }
}

/// This server's OpenAPI document (its catalog's values as enums), as JSON.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "ops",
    responses(
        (status = 200, description = "This document", body = Object, content_type = "application/json"),
        ServerErrors,
    )
)]
pub(crate) async fn openapi_json(
    document: web::Data<openapi::Served>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(document.json()?.to_owned()))
}

/// This server's OpenAPI document (its catalog's values as enums), as YAML.
#[utoipa::path(
    get,
    path = "/openapi.yaml",
    tag = "ops",
    responses(
        (status = 200, description = "This document", body = Object, content_type = "application/yaml"),
        ServerErrors,
    )
)]
pub(crate) async fn openapi_yaml(
    document: web::Data<openapi::Served>,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok()
        .content_type("application/yaml")
        .body(document.yaml()?.to_owned()))
}
