//! Wiring: store, Stripe client, application, HTTP server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer, web};
use billing_app::{BillingApp, IngestSettings};
use billing_http::{ApiKeys, HttpState, ReadinessCheck, ServerLimits};
use billing_ports::{StripeGateway, SystemClock};
use billing_store_diesel::DieselStore;
use stripe_webhook_signature::Verifier;

use crate::config::{Config, LogFormat};

type BoxError = Box<dyn std::error::Error>;

/// Installs the tracing subscriber (`RUST_LOG` filters, default `info`).
pub(crate) fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

fn open_store(config: &Config) -> Result<DieselStore, BoxError> {
    if let Some(path) = config.database_url.0.strip_prefix("sqlite://")
        && let Some(dir) = std::path::Path::new(path)
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)?;
    }
    Ok(DieselStore::connect_with(
        &config.database_url.0,
        config.database,
    )?)
}

/// Applies pending migrations.
pub(crate) async fn migrate(config: &Config) -> Result<(), BoxError> {
    open_store(config)?.run_migrations().await?;
    tracing::info!("migrations applied");
    Ok(())
}

fn stripe_client(config: &Config) -> Result<Arc<dyn StripeGateway>, BoxError> {
    let mut settings =
        billing_stripe::client::StripeClientConfig::new(config.stripe_secret_key.0.clone());
    settings.api_base = config.stripe_api_base.clone();
    let client = billing_stripe::client::StripeClient::new(settings)?;
    Ok(Arc::new(client))
}

/// Runs the server until SIGINT/SIGTERM; in-flight requests (and their transactions) finish,
/// each bounded by the database and request time limits, the whole stop by
/// `SHUTDOWN_TIMEOUT_SECS`.
pub(crate) async fn serve(config: Config) -> Result<(), BoxError> {
    let running = start(config).await?;
    for addr in &running.addrs {
        tracing::info!(addr = %addr, "listening");
    }
    running.server.await?;
    Ok(())
}

/// A started server: await `server` to run it until it stops.
pub(crate) struct Running {
    /// The server; its handle stops it (gracefully, as SIGTERM does).
    pub(crate) server: actix_web::dev::Server,
    /// Where it listens (`BIND_ADDR`, with the port chosen when it was 0).
    pub(crate) addrs: Vec<SocketAddr>,
}

/// Opens the store, migrates, wires the app and binds; the server runs once awaited.
pub(crate) async fn start(config: Config) -> Result<Running, BoxError> {
    let store = open_store(&config)?;
    store.run_migrations().await?;
    let app = BillingApp::new(
        Arc::new(store.clone()),
        Arc::new(config.catalog.clone()),
        Arc::new(SystemClock),
        Some(stripe_client(&config)?),
        IngestSettings {
            refetch: config.refetch,
            retention: config.event_retention,
            ..IngestSettings::default()
        },
    );
    let readiness: ReadinessCheck = Arc::new(move || {
        let store = store.clone();
        Box::pin(async move {
            match store.migrations_applied().await {
                Ok(true) => Ok(()),
                Ok(false) => Err("migrations are pending".to_owned()),
                Err(e) => Err(e.to_string()),
            }
        })
    });
    let state = web::Data::new(HttpState {
        verifier: Verifier::new(config.webhook_secrets.iter().map(|s| s.0.clone()))?,
        api_keys: ApiKeys::new(config.api_keys.iter().map(|k| k.0.clone())),
        webhook_body_limit: config.webhook_body_limit,
        readiness,
        readiness_timeout: billing_http::MAX_READINESS_TIMEOUT,
        request_timeout: config.http_request_timeout,
        metrics: Some(billing_http::install_metrics_recorder()?),
        app: app.clone(),
    });
    actix_web::rt::spawn(async move {
        let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every_hour.tick().await;
            match app.purge_events().await {
                Ok(n) => tracing::info!(purged = n, "event retention"),
                Err(e) => tracing::warn!(error = e.to_string(), "event retention failed"),
            }
        }
    });
    let limits = ServerLimits {
        request_timeout: config.http_request_timeout,
        max_connections: config.http_max_connections,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let server = limits
        .apply(HttpServer::new(move || {
            App::new().configure(|cfg| billing_http::configure(cfg, state.clone()))
        }))
        .bind(config.bind_addr)?
        .shutdown_timeout(config.shutdown_timeout_secs);
    let addrs = server.addrs();
    Ok(Running {
        server: server.run(),
        addrs,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::Instant;

    use billing_store_diesel::testing::{FreezableProxy, TestDatabase};

    use super::*;

    const PLANS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plans.toml");
    const API_KEY: &str = "key_shutdown_0123456789";

    #[actix_web::test]
    async fn a_stop_while_the_database_is_frozen_ends_with_the_database_limits_not_later() {
        let db = TestDatabase::postgres().await;
        let proxy = FreezableProxy::start(db.url()).await;
        let env: HashMap<&str, String> = [
            ("STRIPE_SECRET_KEY", "sk_test_shutdown".to_owned()),
            ("STRIPE_WEBHOOK_SECRET", "whsec_shutdown".to_owned()),
            ("BILLING_API_KEYS", API_KEY.to_owned()),
            ("PLANS_FILE", PLANS.to_owned()),
            ("DATABASE_URL", proxy.url(db.url())),
            ("BIND_ADDR", "127.0.0.1:0".to_owned()),
            ("DATABASE_POOL_TIMEOUT_MS", "300".to_owned()),
            ("DATABASE_CONNECT_TIMEOUT_MS", "300".to_owned()),
            ("DATABASE_RECYCLE_TIMEOUT_MS", "200".to_owned()),
            ("DATABASE_STATEMENT_TIMEOUT_MS", "700".to_owned()),
            ("SHUTDOWN_TIMEOUT_SECS", "30".to_owned()),
        ]
        .into_iter()
        .collect();
        let config = Config::from_lookup(|name| env.get(name).cloned()).unwrap();
        let bound = config.database.call_limit() + Duration::from_secs(1);
        let running = start(config).await.unwrap();
        let url = format!(
            "http://{}/v1/users/u_1QfZ9aStop/entitlements",
            running.addrs[0]
        );
        let handle = running.server.handle();
        let server = actix_web::rt::spawn(running.server);
        let client = awc::Client::default();
        let get = move || {
            let (client, url) = (client.clone(), url.clone());
            async move {
                client
                    .get(url)
                    .insert_header(("Authorization", format!("Bearer {API_KEY}")))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
            }
        };
        assert_eq!(get().await.unwrap(), 200);

        proxy.freeze();
        let in_flight = actix_web::rt::spawn(get());
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        let started = Instant::now();
        handle.stop(true).await; // what SIGTERM does
        server.await.unwrap().unwrap();
        let took = started.elapsed();
        assert!(
            took <= bound,
            "the stop took {took:?}; the database limits allow {bound:?} (shutdown timeout 30 s)"
        );
        assert_eq!(
            in_flight.await.unwrap().unwrap(),
            503,
            "the hung request was answered, not cut"
        );
        eprintln!("stop with a request hung on a frozen database: {took:?}");
        proxy.thaw();
    }
}
