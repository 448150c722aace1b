//! Route guards for actix-web product services, answered by the billing server.
//!
//! A product service gates its routes on what a user's plan allows: a feature
//! ([`RequireFeature`]), a minimum tier ([`RequireTier`]), or a metered quota with one atomic
//! consume per request ([`Consume`]). The answers come from a [`GateBackend`]:
//!
//! - [`LocalBackend`]: the billing application ([`billing_app::BillingApp`]) in this process,
//!   over the billing database, for a service that shares it. Decisions come from its
//!   in-memory gate cache (no database round trip for a cached user).
//! - [`RemoteBackend`]: the billing server's `/v1` API through [`billing_client::Client`], for
//!   a service that does not share the database. Outages (unreachable, 5xx, time-outs, rate
//!   limited) are "billing cannot answer"; a usage limit is a 429 with the period's end.
//!
//! # Example
//!
//! ```no_run
//! use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
//! use billing_gate::{Consume, Gate, LocalBackend, RequireFeature, RequireTier};
//! # async fn run(app: billing_app::BillingApp<billing_store_diesel::DieselStore>) -> Result<(), Box<dyn std::error::Error>> {
//! let gate = Gate::builder(LocalBackend::new(app))
//!     // The product owns authentication: here its middleware left the user in a header.
//!     .user_id(|req: &HttpRequest| {
//!         req.headers().get("x-user-id")?.to_str().ok().map(str::to_owned)
//!     })
//!     .build()
//!     .await?;
//! // Unknown names fail here, at start-up, not on a request.
//! let analytics = gate.require(RequireFeature::new("advanced_analytics"))?;
//! let support = gate.require(RequireTier::at_least("ENTERPRISE"))?;
//! let metered = gate.require(Consume::new("api_calls", 1))?;
//! HttpServer::new(move || {
//!     App::new()
//!         .service(web::resource("/analytics").wrap(analytics.clone()).to(HttpResponse::Ok))
//!         .service(web::resource("/support").wrap(support.clone()).to(HttpResponse::Ok))
//!         // A consume wraps the route: only requests the route takes are counted.
//!         .route("/api/search", web::post().to(HttpResponse::Ok).wrap(metered.clone()))
//! })
//! .bind("127.0.0.1:8000")?
//! .run()
//! .await?;
//! # Ok(()) }
//! ```
//!
//! # Answers
//! A refused request never reaches the handler and is answered in the billing server's error
//! shape, `{"error": {"code", "message", …}}` (see [`error`](mod@error) for every code): 401
//! without a user, 402 when the plan lacks the feature or tier (with the `tier` and the
//! `reason`), 429 when the period's quota is used up (with `Retry-After`, the seconds until the
//! period ends), 503 when billing cannot answer. A request let through carries an [`Access`]
//! in its extensions (`web::ReqData<Access>` in the handler).
//!
//! **Fail closed by default.** [`GateBuilder::fail_open`] lets requests through while billing
//! cannot answer (never a 402 or 429): a warning is logged when the gate is built and on every
//! request it lets through that way.
//!
//! # Why middleware, not extractors
//! A guard is built once, from a name checked against the catalog when the service starts
//! ([`Gate::require`] returns an error for a name the catalog does not know), and wrapped
//! around a resource or a whole scope: the routes' handlers stay free of billing code, one
//! `.wrap` gates a scope, and the refusal is answered before the handler's extractors read the
//! body. An extractor would take its name per handler, where an unknown name is only found on
//! a request, and would have to be repeated in each handler's signature. What the handler may
//! want to know (the tier, the usage left) is handed to it as [`Access`].
#![warn(missing_docs)]

mod backend;
pub mod error;
mod gate;
mod local;
mod remote;

pub use backend::{CatalogNames, FeatureDecision, GateBackend, Standing, UsageDecision};
pub use error::GateError;
pub use gate::{
    Access, Consume, DEFAULT_IDEMPOTENCY_HEADER, DEFAULT_REQUEST_ID_HEADER, Gate, GateBuilder,
    Guard, GuardService, RequireFeature, RequireTier, Requirement,
};
pub use local::LocalBackend;
pub use remote::RemoteBackend;
