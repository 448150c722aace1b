//! An example product service whose routes are gated by billing.
//!
//! - `GET /reports/advanced`: the PRO feature `advanced_analytics`;
//! - `GET /support/priority`: the ENTERPRISE feature `priority_support`;
//! - `GET /domains`: any tier from PRO up (`custom_domain` lives there);
//! - `POST /generate`: metered, one `ai_generations` per request (FREE 10, PRO 500 a period);
//! - `GET /healthz`: not gated.
//!
//! Authentication is the product's: here a stand-in extractor, [`SignedInUser`], trusts an
//! `X-User-Id` header (put your session or token check there).
//!
//! Run it beside a billing server, sharing its database (the local backend):
//!
//! ```sh
//! BILLING_DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing PLANS_FILE=plans.toml \
//!     cargo run -p billing-gate --example product
//! curl -H 'X-User-Id: user_42' http://127.0.0.1:8000/reports/advanced
//! ```
//!
//! Or through the billing server's API (the remote backend), when `BILLING_URL` is set:
//!
//! ```sh
//! BILLING_URL=http://127.0.0.1:8080 BILLING_API_KEY=bk_… cargo run -p billing-gate --example product
//! ```
//!
//! `PRODUCT_BIND_ADDR` (default `127.0.0.1:8000`) and `GATE_FAIL_OPEN=true` (let requests
//! through while billing cannot answer) are read too.
#![allow(clippy::print_stdout)]

use std::future::{Ready, ready};
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::{Payload, Server};
use actix_web::{App, FromRequest, HttpRequest, HttpResponse, HttpServer, web};
use billing_app::{AppSettings, BillingApp};
use billing_gate::{Access, Consume, Gate, GateBackend, GateError, LocalBackend, RemoteBackend};
use billing_gate::{RequireFeature, RequireTier};
use billing_ports::{GateInvalidation, SystemClock};
use billing_store_diesel::{DieselStore, GateChannel, GateEvent, StoreSettings};

/// The signed-in user, as the product's authentication finds it (a stand-in: the
/// `X-User-Id` header).
pub struct SignedInUser(String);

impl FromRequest for SignedInUser {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let user = request
            .headers()
            .get("x-user-id")
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| SignedInUser(v.to_owned()));
        ready(user.ok_or_else(|| actix_web::error::ErrorUnauthorized("not signed in")))
    }
}

impl From<SignedInUser> for String {
    fn from(user: SignedInUser) -> Self {
        user.0
    }
}

/// The product's routes behind their guards, served on `bind` (port 0 picks one); the gate
/// is answered by `backend` and fails open when `fail_open`.
pub async fn serve(
    backend: impl GateBackend,
    bind: SocketAddr,
    fail_open: bool,
) -> Result<(Server, SocketAddr), Box<dyn std::error::Error>> {
    let mut gate = Gate::builder(backend).user_extractor::<SignedInUser>();
    if fail_open {
        gate = gate.fail_open();
    }
    let gate = gate.build().await?;
    // Every name is checked against the billing catalog here, before the server starts.
    let analytics = gate.require(RequireFeature::new("advanced_analytics"))?;
    let support = gate.require(RequireFeature::new("priority_support"))?;
    let domains = gate.require(RequireTier::at_least("PRO"))?;
    let generate = gate.require(Consume::new("ai_generations", 1))?;
    let server = HttpServer::new(move || {
        App::new()
            .service(
                web::resource("/reports/advanced")
                    .wrap(analytics.clone())
                    .get(advanced_report),
            )
            .service(
                web::resource("/support/priority")
                    .wrap(support.clone())
                    .get(priority_support),
            )
            .service(
                web::resource("/domains")
                    .wrap(domains.clone())
                    .get(domains_page),
            )
            // A consume wraps the route, not the resource: only a request with the route's
            // method is counted.
            .service(
                web::resource("/generate")
                    .route(web::post().to(generate_text).wrap(generate.clone())),
            )
            .route("/healthz", web::get().to(HttpResponse::Ok))
    })
    .workers(2)
    .bind(bind)?;
    let addr = server.addrs()[0];
    Ok((server.run(), addr))
}

async fn advanced_report(access: web::ReqData<Access>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "report": "advanced",
        "user_id": access.user_id,
        "tier": access.tier,
        "failed_open": access.failed_open,
    }))
}

async fn priority_support(access: web::ReqData<Access>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "queue": "priority",
        "user_id": access.user_id,
        "failed_open": access.failed_open,
    }))
}

async fn domains_page(access: web::ReqData<Access>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "domains": [],
        "tier": access.tier,
        "failed_open": access.failed_open,
    }))
}

async fn generate_text(access: web::ReqData<Access>) -> HttpResponse {
    let usage = access.usage.as_ref();
    HttpResponse::Ok().json(serde_json::json!({
        "text": "generated",
        "used": usage.map(|u| u.used),
        "remaining": usage.and_then(|u| u.remaining),
        "failed_open": access.failed_open,
    }))
}

/// On Postgres, keeps `app`'s gate cache in step with the billing server's writes (and the
/// server's with this service's consumes) through the database's gate channel; `None` on
/// SQLite, where entries live the gate cache's time to live.
pub fn listen(app: &BillingApp<DieselStore>) -> Result<Option<Arc<GateChannel>>, GateError> {
    let listener = app.clone();
    let channel = app
        .store()
        .gate_channel(move |event| match event {
            GateEvent::Connected { .. } => listener.forget_gate_state(&GateInvalidation::All),
            GateEvent::Changed(change) => listener.forget_gate_state(&change),
            GateEvent::Disconnected { .. } => {}
        })
        .map_err(GateError::unavailable)?;
    Ok(channel.map(|channel| {
        let channel = Arc::new(channel);
        app.broadcast_gate_changes(channel.clone());
        channel
    }))
}

/// An environment variable, or `default`.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().init();
    let bind: SocketAddr = env_or("PRODUCT_BIND_ADDR", "127.0.0.1:8000").parse()?;
    let fail_open = env_or("GATE_FAIL_OPEN", "false") == "true";
    if let Ok(base) = std::env::var("BILLING_URL") {
        let client = billing_client::Client::builder(base)
            .api_key(env_or("BILLING_API_KEY", ""))
            .build()?;
        let (server, addr) = serve(RemoteBackend::new(client), bind, fail_open).await?;
        println!("product service on http://{addr} (remote backend)");
        return Ok(server.await?);
    }
    let url = env_or("BILLING_DATABASE_URL", "sqlite://data/billing.sqlite");
    let catalog = billing_domain::Catalog::from_toml_str(&std::fs::read_to_string(env_or(
        "PLANS_FILE",
        "plans.toml",
    ))?)?;
    // The billing server owns the schema and its migrations; this service only reads and
    // counts usage.
    let store = DieselStore::connect_with(&url, StoreSettings::default())?;
    let app = BillingApp::new(
        Arc::new(store),
        Arc::new(catalog),
        Arc::new(SystemClock),
        None,
        AppSettings::default(),
    );
    let channel = listen(&app)?;
    let (server, addr) = serve(LocalBackend::new(app), bind, fail_open).await?;
    println!("product service on http://{addr}");
    server.await?;
    if let Some(channel) = channel {
        channel.stop();
    }
    Ok(())
}
