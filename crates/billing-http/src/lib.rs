//! The billing server's HTTP layer, on actix-web, mountable in any actix-web application.
//!
//! - `POST /webhooks/stripe`: the raw body is verified ([`stripe_webhook_signature`]) before
//!   anything parses it, parsed ([`billing_stripe::parse_event`]) and ingested exactly once
//!   ([`billing_app::BillingApp::ingest`]). 2xx only after the commit.
//! - `/v1/…`: the product's API (bearer API keys): entitlements, the feature gate, usage,
//!   Checkout and portal sessions, sync.
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus), `/openapi.yaml`.
//!
//! Every error is `{"error": {"code", "message"}}` with a specific status; the mapping lives
//! in one place, [`error`].
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo<S: billing_ports::BillingStore>(state: billing_http::HttpState<S>) {
//! let state = actix_web::web::Data::new(state);
//! let app = actix_web::App::new().configure(|cfg| billing_http::configure::<S>(cfg, state.clone()));
//! # }
//! ```

mod api;
mod auth;
pub mod error;
mod ops;
mod telemetry;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use actix_web::web;
use billing_app::BillingApp;
use billing_ports::BillingStore;
use stripe_webhook_signature::Verifier;

pub use auth::ApiKeys;
pub use error::ApiError;
pub use telemetry::install_metrics_recorder;

/// A readiness probe: `Ok` when the database answers and its migrations are applied.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// Everything the handlers need.
pub struct HttpState<S> {
    /// The use cases.
    pub app: BillingApp<S>,
    /// Verifies `Stripe-Signature` with the endpoint secret(s).
    pub verifier: Verifier,
    /// The API keys accepted on `/v1`.
    pub api_keys: ApiKeys,
    /// The largest webhook body accepted, in bytes.
    pub webhook_body_limit: usize,
    /// The readiness probe behind `/readyz`.
    pub readiness: ReadinessCheck,
    /// Renders the Prometheus metrics, when a recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// Registers every route on `cfg`, sharing `state`.
pub fn configure<S: BillingStore>(cfg: &mut web::ServiceConfig, state: web::Data<HttpState<S>>) {
    cfg.app_data(state)
        .app_data(web::JsonConfig::default().error_handler(error::json_error_handler))
        .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
        .route("/healthz", web::get().to(ops::healthz))
        .route("/readyz", web::get().to(ops::readyz::<S>))
        .route("/metrics", web::get().to(ops::metrics::<S>))
        .route("/openapi.yaml", web::get().to(ops::openapi))
        .route("/webhooks/stripe", web::post().to(webhook::receive::<S>))
        .service(api::scope::<S>())
        .default_service(web::to(error::not_found));
}
