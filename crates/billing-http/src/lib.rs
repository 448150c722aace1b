//! The billing server's HTTP layer, on actix-web, mountable in any actix-web application.
//!
//! - `POST /webhooks/stripe`: the raw body is verified ([`stripe_webhook_signature`]) before
//!   anything parses it, parsed ([`billing_stripe::parse_event`]) and ingested exactly once
//!   ([`billing_app::BillingApp::ingest`]). 2xx only after the commit.
//! - `/v1/…`: the product's API (bearer API keys): entitlements, the feature gate, usage,
//!   Checkout and portal sessions, sync, the plan catalog, and the change feed
//!   (`GET /v1/changes`: records of every change of a user's access in commit order, after a
//!   cursor, with long polling). Its bodies are [`billing_api`]'s types, which clients
//!   (`billing-client`) share.
//! - `/healthz`, `/readyz`, `/metrics` (Prometheus), `/openapi.json` and `/openapi.yaml`
//!   (derived from the types and the plan catalog, see `docs/openapi.yaml`).
//!
//! Every error is `{"error": {"code", "message"}}` with a specific status; the mapping lives
//! in one place, [`error`]. Every answer carries an `X-Request-Id`; every 5xx is logged once
//! with it and its cause, while its body stays opaque.
//!
//! Bodies are read within a time limit ([`HttpState::request_timeout`], 408 past it) and a size
//! limit; `/v1` checks the API key before reading anything. Pair it with the server limits of
//! [`ServerLimits`] (header time limit, connection cap).
//!
//! ```no_run
//! # use std::sync::Arc;
//! # fn demo<S: billing_ports::BillingStore + billing_ports::FeedStore>(state: billing_http::HttpState<S>) {
//! let state = actix_web::web::Data::new(state);
//! let app = actix_web::App::new().configure(|cfg| billing_http::configure::<S>(cfg, state.clone()));
//! # }
//! ```
#![warn(missing_docs)]

mod api;
mod auth;
mod dto;
pub mod error;
mod gauges;
mod input;
pub mod jobs;
mod openapi;
mod ops;
mod request;
mod server;
mod telemetry;
mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::web;
use billing_app::BillingApp;
use billing_ports::{BillingStore, FeedStore};
use stripe_webhook_signature::Verifier;
use tracing_actix_web::TracingLogger;

pub use auth::{ApiKeys, LoadKeyHashes, MISS_RELOAD_INTERVAL};
pub use error::{ApiError, ErrorCode, status_of};
pub use jobs::{JobSchedule, JobSettings};
pub use server::{
    DatabaseSettings, IngestSettings, Parts, Server, Settings, StartError, StopHandle,
    StripeSettings,
};
pub use telemetry::install_metrics_recorder;

/// A readiness probe: `Ok` when the database answers and its migrations are applied.
pub type ReadinessCheck =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync>;

/// A connection pool's state now: (connections lent out, calls waiting), for `/metrics`.
pub type PoolProbe = Arc<dyn Fn() -> (usize, usize) + Send + Sync>;

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
    /// The store's connection pool for the pool gauges of `/metrics` (`None`: not exported).
    pub pool_status: Option<PoolProbe>,
    /// The readiness probe behind `/readyz`.
    pub readiness: ReadinessCheck,
    /// How long `/readyz` waits for the probe before answering 503; capped at
    /// [`MAX_READINESS_TIMEOUT`].
    pub readiness_timeout: Duration,
    /// How long a client may take to send a request body (408 past it).
    pub request_timeout: Duration,
    /// Renders the Prometheus metrics, when a recorder is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The longest `/readyz` may take.
pub const MAX_READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// Limits of the HTTP server itself, for `actix_web::HttpServer` (see [`ServerLimits::apply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// How long a client may take to send its request head (408 and close past it); the same
    /// value bounds each body ([`HttpState::request_timeout`]).
    pub request_timeout: Duration,
    /// Concurrent connections across all workers; further ones wait in the accept backlog.
    pub max_connections: usize,
    /// Worker threads.
    pub workers: usize,
}

impl ServerLimits {
    /// Applies the limits: workers, per-worker connection cap (the total divided among the
    /// workers, at least 1 each), the head time limit, and one second for a client to close.
    pub fn apply<F, I, S, B>(
        &self,
        server: actix_web::HttpServer<F, I, S, B>,
    ) -> actix_web::HttpServer<F, I, S, B>
    where
        F: Fn() -> I + Send + Clone + 'static,
        I: actix_service::IntoServiceFactory<S, actix_http::Request>,
        S: actix_web::dev::ServiceFactory<actix_http::Request, Config = actix_web::dev::AppConfig>
            + 'static,
        S::Error: Into<actix_web::Error> + 'static,
        S::InitError: std::fmt::Debug,
        S::Response: Into<actix_web::dev::Response<B>> + 'static,
        <S::Service as actix_web::dev::Service<actix_http::Request>>::Future: 'static,
        S::Service: 'static,
        B: actix_web::body::MessageBody + 'static,
    {
        let workers = self.workers.max(1);
        server
            .workers(workers)
            .max_connections(self.max_connections.div_ceil(workers).max(1))
            .client_request_timeout(self.request_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
    }
}

/// Registers every route on `cfg`, sharing `state`, inside the request middleware: the
/// request span and log (`TracingLogger`), then the `X-Request-Id` answer; `/v1` adds the API
/// key check.
pub fn configure<S: BillingStore + FeedStore>(
    cfg: &mut web::ServiceConfig,
    state: web::Data<HttpState<S>>,
) {
    let deadline = web::Data::new(input::BodyDeadline(state.request_timeout));
    let keys = web::Data::new(state.api_keys.clone());
    let document = web::Data::new(openapi::Served::new(state.app.catalog()));
    cfg.app_data(state)
        .app_data(deadline)
        .app_data(keys)
        .app_data(document)
        .app_data(web::PathConfig::default().error_handler(error::path_error_handler))
        .service(
            web::scope("")
                .wrap(from_fn(request::answer_request_id))
                .wrap(TracingLogger::<request::RequestSpan>::new())
                // `/v1` first: the router tries the services in order, and the gate's checks
                // are the most frequent requests (the other paths never start with `/v1`).
                .service(api::scope::<S>())
                .service(api::resource(
                    "/healthz",
                    Method::GET,
                    web::get().to(ops::healthz),
                ))
                .service(api::resource(
                    "/readyz",
                    Method::GET,
                    web::get().to(ops::readyz::<S>),
                ))
                .service(api::resource(
                    "/metrics",
                    Method::GET,
                    web::get().to(ops::metrics::<S>),
                ))
                .service(api::resource(
                    "/openapi.json",
                    Method::GET,
                    web::get().to(ops::openapi_json),
                ))
                .service(api::resource(
                    "/openapi.yaml",
                    Method::GET,
                    web::get().to(ops::openapi_yaml),
                ))
                .service(api::resource(
                    telemetry::WEBHOOK_ROUTE,
                    Method::POST,
                    web::post().to(webhook::receive::<S>),
                ))
                .default_service(web::to(error::not_found)),
        );
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
