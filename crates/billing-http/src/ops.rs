//! Operability routes: liveness, readiness, metrics, the OpenAPI document.

use actix_web::{HttpResponse, web};
use billing_ports::BillingStore;
use serde_json::json;

use crate::HttpState;
use crate::error::ApiError;

/// The OpenAPI document of the API (also in `docs/openapi.yaml`).
pub(crate) const OPENAPI: &str = include_str!("../../../docs/openapi.yaml");

/// The process is up.
pub(crate) async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers and its migrations are applied, within the readiness time limit.
/// The answer says only "not ready"; the reason is logged (once, by the request context).
pub(crate) async fn readyz<S: BillingStore>(
    state: web::Data<HttpState<S>>,
) -> Result<HttpResponse, ApiError> {
    let limit = state.readiness_timeout.min(crate::MAX_READINESS_TIMEOUT);
    match actix_web::rt::time::timeout(limit, (state.readiness)()).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(json!({"status": "ready"}))),
        Ok(Err(reason)) => Err(ApiError::not_ready(reason)),
        Err(_) => Err(ApiError::not_ready(format!(
            "the readiness check did not finish within {} ms",
            limit.as_millis()
        ))),
    }
}

/// Prometheus text exposition.
pub(crate) async fn metrics<S: BillingStore>(state: web::Data<HttpState<S>>) -> HttpResponse {
    match &state.metrics {
        Some(handle) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(handle.render()),
        None => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(""),
    }
}

/// The OpenAPI document.
pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(OPENAPI)
}
