//! Spawning the server and talking to it.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use billing_domain::Catalog;
use billing_http::{
    DatabaseSettings, IngestSettings, Parts, Server, ServerLimits, Settings, StripeSettings,
};
use billing_ports::testing::{FakeGateway, GatewayCall};
use billing_ports::{StripeGateway, SystemClock};
use billing_store_diesel::DieselStore;
use billing_store_diesel::testing::TestDatabase;
use serde_json::{Value, json};

pub const API_KEY: &str = "test_api_key_0123456789";
pub const SECRET: &str = "whsec_test_secret";

/// Stripe for a test server: [`FakeGateway`] with 20 ms on each customer creation, so a
/// racing duplicate reaches it while the first is still in flight (as at Stripe).
pub fn fake_gateway() -> FakeGateway {
    let stripe = FakeGateway::new();
    stripe.delay(GatewayCall::CreateCustomer, Duration::from_millis(20));
    stripe
}

pub struct TestApp {
    pub address: String,
    pub stripe: FakeGateway,
    pub client: awc::Client,
    pub store: DieselStore,
    /// Stops the server as SIGTERM does.
    pub stop: billing_http::StopHandle,
    _db: Option<TestDatabase>,
}

/// The server over a fresh Postgres database.
pub async fn spawn_app() -> TestApp {
    let db = TestDatabase::postgres().await;
    let store = db.store().clone();
    spawn_with(store, Some(db), 1024 * 1024).await
}

/// The server over `store` (e.g. one whose database is unreachable).
pub async fn spawn_with(
    store: DieselStore,
    db: Option<TestDatabase>,
    body_limit: usize,
) -> TestApp {
    let stripe = fake_gateway();
    spawn_with_gateway(store, db, body_limit, Arc::new(stripe.clone()), stripe).await
}

/// The server's limits in a test.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub body_limit: usize,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(5),
            max_connections: 1024,
        }
    }
}

/// The server over `store`, calling Stripe through `gateway`.
pub async fn spawn_with_gateway(
    store: DieselStore,
    db: Option<TestDatabase>,
    body_limit: usize,
    gateway: Arc<dyn StripeGateway>,
    stripe: FakeGateway,
) -> TestApp {
    let limits = Limits {
        body_limit,
        ..Limits::default()
    };
    spawn_limited(store, db, limits, gateway, stripe).await
}

/// The server over `store` with `limits`, answering Stripe calls with a fake.
pub async fn spawn_with_limits(
    store: DieselStore,
    db: Option<TestDatabase>,
    limits: Limits,
) -> TestApp {
    let stripe = fake_gateway();
    spawn_limited(store, db, limits, Arc::new(stripe.clone()), stripe).await
}

/// The settings of a test server: the example plans, the test secrets (the current webhook
/// secret and a rotated one), port 0 and `limits` over two workers.
pub fn settings(limits: Limits) -> Settings {
    Settings {
        database: DatabaseSettings {
            // Never opened: the tests hand the server its store (see `spawn_limited`).
            url: "postgres://127.0.0.1:1/given_by_the_test".into(),
            pool: billing_store_diesel::StoreSettings::default(),
        },
        stripe: StripeSettings {
            secret_key: "sk_test_unused_by_the_fake".into(),
            webhook_secrets: vec!["whsec_old_rotated".into(), SECRET.into()],
            api_base: None,
            refetch: false,
        },
        catalog: Catalog::from_toml_str(include_str!("../../../../plans.toml")).unwrap(),
        api_keys: vec![API_KEY.into()],
        // Short, so the stored-key tests see a revocation quickly.
        api_key_refresh: Duration::from_millis(300),
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        limits: ServerLimits {
            request_timeout: limits.request_timeout,
            max_connections: limits.max_connections,
            workers: 2,
        },
        webhook_body_limit: limits.body_limit,
        shutdown_timeout: Duration::from_secs(30),
        event_retention: chrono::TimeDelta::days(30),
        change_retention: chrono::TimeDelta::days(30),
        gate_cache_ttl: Duration::from_secs(5),
        ingest: IngestSettings::default(),
        jobs: billing_http::JobSettings::default(),
        push: None,
    }
}

/// The server as `billing-server` builds it (`Server::build_with`), over `store` and
/// `gateway` with the system clock, running on the test's actix system.
pub async fn spawn_limited(
    store: DieselStore,
    db: Option<TestDatabase>,
    limits: Limits,
    gateway: Arc<dyn StripeGateway>,
    stripe: FakeGateway,
) -> TestApp {
    spawn_server(settings(limits), store, db, gateway, stripe).await
}

/// Another server (a replica) over `store`'s database, with a gate cache that keeps entries
/// for `gate_cache_ttl`; the database stays the caller's.
pub async fn spawn_replica(store: DieselStore, gate_cache_ttl: Duration) -> TestApp {
    let stripe = fake_gateway();
    let settings = Settings {
        gate_cache_ttl,
        ..settings(Limits::default())
    };
    spawn_server(settings, store, None, Arc::new(stripe.clone()), stripe).await
}

/// A server built from `settings` by `Server::build_with` over `store` and `gateway` (the
/// system clock), running (background jobs included) on the test's actix system.
pub async fn spawn_server(
    settings: Settings,
    store: DieselStore,
    db: Option<TestDatabase>,
    gateway: Arc<dyn StripeGateway>,
    stripe: FakeGateway,
) -> TestApp {
    let parts = Parts {
        store: store.clone(),
        gateway,
        clock: Arc::new(SystemClock),
    };
    let server = Server::build_with(settings, parts).unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    let stop = server.handle();
    actix_web::rt::spawn(server.run());
    TestApp {
        address,
        stripe,
        client: awc::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .finish(),
        store,
        stop,
        _db: db,
    }
}

/// Every log line of this process, in the server's default (human-readable) format without
/// colours, captured from the first call on: the billing crates' at DEBUG, the others' at INFO.
/// Tests find their own lines by unique ids.
pub fn logs() -> &'static Logs {
    static LOGS: OnceLock<&'static Logs> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static Logs = Box::leak(Box::new(Logs(Mutex::new(Vec::new()))));
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,billing_app=debug,billing_http=debug",
            ))
            .with_writer(move || LogWriter(logs))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        logs
    })
}

/// The captured log text.
pub struct Logs(Mutex<Vec<u8>>);

impl Logs {
    /// Every captured line, DEBUG included.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }

    /// The lines containing `needle` that the server logs at its default level, INFO: the
    /// ones at INFO, WARN or ERROR.
    pub fn lines_with(&self, needle: &str) -> Vec<String> {
        self.debug_lines_with(needle)
            .into_iter()
            .filter(|l| level(l).is_some_and(|level| level <= tracing::Level::INFO))
            .collect()
    }

    /// The lines containing `needle` at any captured level, DEBUG included.
    pub fn debug_lines_with(&self, needle: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// The level of a line of the default format (`<time> <LEVEL> <spans>: <target>: …`).
fn level(line: &str) -> Option<tracing::Level> {
    line.split_whitespace().nth(1)?.parse().ok()
}

struct LogWriter(&'static Logs);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Test settings of the store: a call is abandoned after 300 + 700 = 1000 ms, recording a
/// failure after 300 ms.
pub fn quick_store_settings() -> billing_store_diesel::StoreSettings {
    billing_store_diesel::StoreSettings {
        max_connections: 8,
        pool_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(300),
        recycle_timeout: Duration::from_millis(200),
        statement_timeout: Duration::from_millis(700),
        ..Default::default()
    }
}

impl TestApp {
    /// Posts a webhook body signed with the current secret.
    pub async fn webhook(&self, body: &Value) -> (u16, Value) {
        let bytes = serde_json::to_vec(body).unwrap();
        let signature =
            stripe_webhook_signature::sign(&bytes, SECRET, chrono::Utc::now().timestamp());
        self.raw_webhook(bytes, Some(signature)).await
    }

    pub async fn raw_webhook(&self, body: Vec<u8>, signature: Option<String>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}/webhooks/stripe", self.address));
        if let Some(signature) = signature {
            request = request.insert_header(("Stripe-Signature", signature));
        }
        let mut response = request.send_body(body).await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().limit(1 << 20).await.unwrap_or(Value::Null),
        )
    }

    /// GET without an API key; status and body text.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let mut response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .unwrap();
        let body = response.body().limit(16 << 20).await.unwrap_or_default();
        (
            response.status().as_u16(),
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let mut response = self
            .client
            .get(format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {API_KEY}")))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    pub async fn post(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .insert_header(("Authorization", format!("Bearer {API_KEY}")));
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send_json(body).await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }
}

/// A basil-shaped `customer.subscription.*` event of `user` on `price`.
pub fn subscription_event(
    id: &str,
    event_type: &str,
    user: &str,
    status: &str,
    price: &str,
    created: i64,
) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "id": id, "object": "event", "type": event_type, "api_version": "2025-03-31.basil",
        "created": created, "livemode": false,
        "data": {"object": {
            "id": format!("sub_{user}"), "object": "subscription", "customer": format!("cus_{user}"),
            "status": status, "cancel_at_period_end": false, "metadata": {"user_id": user},
            "items": {"object": "list", "data": [{
                "id": format!("si_{user}"), "object": "subscription_item",
                "price": {"id": price, "object": "price"},
                "current_period_start": now - 86_400, "current_period_end": now + 29 * 86_400,
            }]},
        }},
    })
}

/// Sends `count` subscription events, each of a user of its own (two records each).
pub async fn subscribe(app: &TestApp, prefix: &str, count: usize) {
    for n in 0..count {
        let event = subscription_event(
            &format!("evt_1Q{prefix}{n:0>12}"),
            "customer.subscription.created",
            &format!("u_{prefix}_{n}"),
            "active",
            "price_pro_monthly",
            1_700_000_000,
        );
        assert_eq!(app.webhook(&event).await.0, 200);
    }
}
