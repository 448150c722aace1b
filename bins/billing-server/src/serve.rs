//! The `serve` and `migrate` commands over the configuration, and the log subscriber.

use std::error::Error;
use std::process::ExitCode;

use billing_http::{Server, StartError};

use crate::config::{Config, LogFormat};

/// Installs the tracing subscriber (`RUST_LOG` filters, default `info`).
pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

/// Applies pending migrations.
pub async fn migrate(config: Config) -> Result<(), StartError> {
    let store = config.server.database.open()?;
    store.run_migrations().await.map_err(StartError::Store)?;
    tracing::info!("migrations applied");
    Ok(())
}

/// Runs the server until SIGINT/SIGTERM; in-flight requests (and their transactions) finish,
/// each bounded by the database and request time limits, the whole stop by
/// `SHUTDOWN_TIMEOUT_SECS`.
pub async fn serve(config: Config) -> Result<(), Box<dyn Error>> {
    Server::build(config.server).await?.run().await?;
    Ok(())
}

/// Logs and prints a fatal error with its causes.
pub fn report(result: Result<(), Box<dyn Error>>) -> ExitCode {
    let Err(error) = result else {
        return ExitCode::SUCCESS;
    };
    let causes = std::iter::successors(error.source(), |e| (*e).source());
    let text = causes.fold(error.to_string(), |text, cause| format!("{text}: {cause}"));
    tracing::error!(error = text, "fatal");
    eprintln!("error: {text}");
    ExitCode::FAILURE
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

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
            // The second request must reach the frozen database, not the gate cache.
            ("GATE_CACHE_TTL_MS", "0".to_owned()),
        ]
        .into_iter()
        .collect();
        let config = Config::read(None, |name| env.get(name).cloned()).unwrap();
        let bound = config.server.database.pool.call_limit() + Duration::from_secs(1);
        let server = Server::build(config.server).await.unwrap();
        let url = format!(
            "http://{}/v1/users/u_1QfZ9aStop/entitlements",
            server.addrs()[0]
        );
        let handle = server.handle();
        let server = actix_web::rt::spawn(server.run());
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
