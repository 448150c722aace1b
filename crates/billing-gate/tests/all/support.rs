//! The billing server (with `billing-http`'s test settings) and the example product on port 0,
//! and a user's signed Stripe story.

use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use billing_app::{AppSettings, BillingApp};
use billing_domain::{Catalog, SubscriptionStatus};
use billing_gate::GateBackend;
use billing_http::{Parts, Server};
use billing_ports::ManualClock;
use billing_ports::testing::FakeGateway;
use billing_store_diesel::DieselStore;
use billing_streamgen::fixtures::Templates;
use billing_streamgen::journey::{Account, Actor, DAY, add_interval};
use billing_streamgen::model::Shape;
use billing_streamgen::prices::PRO_MONTHLY;
use billing_streamgen::render::Renderer;
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::helpers::{API_KEY, Limits, SECRET, quick_store_settings, settings};

/// The example catalog (`plans.toml` at the workspace root).
pub fn catalog() -> Catalog {
    Catalog::from_toml_str(include_str!("../../../../plans.toml")).unwrap()
}

/// The user of a request as the tests' product authenticates it: the `X-User-Id` header.
pub fn user_header(request: &actix_web::HttpRequest) -> Option<String> {
    request
        .headers()
        .get("x-user-id")?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// Now, to the second (Stripe's resolution), for a manual clock.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap()
}

/// A running billing server.
pub struct Billing {
    pub address: String,
    pub handle: billing_http::StopHandle,
    pub client: awc::Client,
    pub clock: Arc<ManualClock>,
    /// The application the server serves (for what its jobs do on their own schedule).
    pub app: BillingApp<DieselStore>,
}

/// The billing server as `billing-server` builds it, over `store`, with `clock` and a fake
/// Stripe, on port 0.
pub async fn spawn_billing(store: DieselStore, clock: Arc<ManualClock>) -> Billing {
    let settings = settings(Limits::default());
    let parts = Parts {
        store,
        gateway: Arc::new(FakeGateway::new()),
        clock: clock.clone(),
    };
    let app = parts.app(&settings);
    let server = Server::build_with(settings, parts).unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    let handle = server.handle();
    actix_web::rt::spawn(server.run());
    Billing {
        address,
        handle,
        client: client(),
        clock,
        app,
    }
}

pub fn client() -> awc::Client {
    awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
}

impl Billing {
    /// Posts a webhook body signed with the endpoint secret at the server's clock.
    pub async fn webhook(&self, body: &str) -> u16 {
        let signature = stripe_webhook_signature::sign(
            body.as_bytes(),
            SECRET,
            billing_ports::Clock::now(&*self.clock).timestamp(),
        );
        let response = self
            .client
            .post(format!("{}/webhooks/stripe", self.address))
            .insert_header(("Stripe-Signature", signature))
            .insert_header(("Content-Type", "application/json"))
            .send_body(body.to_owned())
            .await
            .unwrap();
        response.status().as_u16()
    }

    /// `GET /v1/changes?after=…` without waiting: `user`'s records after `cursor` (all
    /// pages), and the cursor to ask after next.
    pub async fn changes(&self, user: &str, cursor: &str) -> (Vec<Value>, String) {
        let mut cursor = cursor.to_owned();
        let mut records = Vec::new();
        loop {
            let mut response = self
                .client
                .get(format!(
                    "{}/v1/changes?after={cursor}&limit=100&wait=0",
                    self.address
                ))
                .insert_header(("Authorization", format!("Bearer {API_KEY}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            let page: Value = response.json().await.unwrap();
            let changes = page["changes"].as_array().unwrap().clone();
            cursor = page["next_cursor"].as_str().unwrap().to_owned();
            if changes.is_empty() {
                return (records, cursor);
            }
            records.extend(changes.into_iter().filter(|c| c["user_id"] == user));
        }
    }

    /// `GET /v1/users/{user}/entitlements`.
    pub async fn entitlements(&self, user: &str) -> Value {
        let mut response = self
            .client
            .get(format!("{}/v1/users/{user}/entitlements", self.address))
            .insert_header(("Authorization", format!("Bearer {API_KEY}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.unwrap()
    }
}

/// The application a product sharing the billing database runs (its own pool, gate cache
/// and gate channel), on `clock`.
pub fn product_app(url: &str, clock: Arc<ManualClock>) -> BillingApp<DieselStore> {
    let store = DieselStore::connect_with(url, quick_store_settings()).unwrap();
    BillingApp::new(
        Arc::new(store),
        Arc::new(catalog()),
        clock,
        None,
        AppSettings::default(),
    )
}

/// A running example product.
pub struct Product {
    pub address: String,
    pub handle: ServerHandle,
    pub client: awc::Client,
}

/// The example product over `backend`, on port 0.
pub async fn spawn_product(backend: impl GateBackend, fail_open: bool) -> Product {
    let (server, addr) = crate::product::serve(backend, "127.0.0.1:0".parse().unwrap(), fail_open)
        .await
        .unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Product {
        address: format!("http://{addr}"),
        handle,
        client: client(),
    }
}

/// A product route's answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub retry_after: Option<u64>,
}

impl Answer {
    /// The error code of a refusal.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

impl Product {
    /// Calls a route as `user` (none: not signed in) with extra `headers`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        user: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let url = format!("{}{path}", self.address);
        let mut request = match method {
            "POST" => self.client.post(url),
            _ => self.client.get(url),
        };
        if let Some(user) = user {
            request = request.insert_header(("X-User-Id", user));
        }
        for (name, value) in headers {
            request = request.insert_header((*name, *value));
        }
        let mut response = request.send().await.unwrap();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        Answer {
            status: response.status().as_u16(),
            body: response.json().await.unwrap_or(Value::Null),
            retry_after,
        }
    }

    /// Calls a gated read route until its answer is `expected` (the billing server's changes
    /// reach the product's gate cache through the database's gate channel within
    /// milliseconds), at most five seconds; the last answer.
    pub async fn settled(
        &self,
        path: &str,
        user: &str,
        expected: impl Fn(&Answer) -> bool,
    ) -> Answer {
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let answer = self.call("GET", path, Some(user), &[]).await;
            if expected(&answer) || std::time::Instant::now() > deadline {
                return answer;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// One user's Stripe story as signed-ready webhook bodies, by step: bought PRO monthly a day
/// before `t0`; its renewal a month later failing into past due.
pub struct Story {
    pub user: String,
    /// `customer.created`, `customer.subscription.created`, the paid first invoice.
    pub bought: Vec<String>,
    /// The renewal's `customer.subscription.updated`, the failed payment, past due.
    pub renewal_failed: Vec<String>,
    /// When the failing renewal's period starts (its grace counts from there).
    pub renewed_at: DateTime<Utc>,
}

/// The story of a new user with fresh Stripe-shaped ids.
pub fn story(t0: DateTime<Utc>) -> Story {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).unwrap();
    let mut rng = StdRng::from_seed(seed);
    let mut renderer = Renderer::new(&mut rng);
    renderer.add_product(&mut rng, PRO_MONTHLY.product_name);
    let templates: &Templates = renderer.templates(Shape::Basil);
    let mut account = Account::new(&mut rng, templates);
    let p1 = t0.timestamp() - DAY;
    let p2 = add_interval(p1, &PRO_MONTHLY);
    let (journey, split) = {
        let mut actor = Actor::new(&mut rng, &mut account, templates, p1, p1);
        let customer = actor.customer.clone();
        actor.emit(
            p1,
            billing_streamgen::model::Intent::Customer(customer.clone()),
        );
        let mut sub = actor.subscription(&PRO_MONTHLY, SubscriptionStatus::Active, None);
        let line = actor.period_line(&PRO_MONTHLY, sub.period);
        let mut invoice = actor.invoice(&sub, "subscription_create", vec![line], (p1, p1));
        sub.latest_invoice = Some(invoice.id.clone());
        actor.snapshot(p1 + 2, "customer.subscription.created", &sub, None);
        actor.attempt(&mut invoice, true, false, p1 + 3);
        let split = actor.events.len();

        actor.sim = p2;
        let before = sub.clone();
        sub.period = (p2, add_interval(p2, &PRO_MONTHLY));
        let line = actor.period_line(&PRO_MONTHLY, sub.period);
        let mut failing = actor.invoice(&sub, "subscription_cycle", vec![line], (p1, p2));
        sub.latest_invoice = Some(failing.id.clone());
        actor.snapshot(p2, "customer.subscription.updated", &sub, Some(&before));
        actor.attempt(&mut failing, false, false, p2 + 3_600);
        let before = sub.clone();
        sub.status = SubscriptionStatus::PastDue;
        actor.snapshot(
            p2 + 3_600,
            "customer.subscription.updated",
            &sub,
            Some(&before),
        );
        (actor.finish(), split)
    };
    let mut bodies = journey.events.iter().map(|planned| {
        let id = account.ids.long(&mut rng, "evt");
        renderer.render(
            &mut rng,
            Shape::Basil,
            &journey.renames,
            &id,
            planned.created,
            &planned.intent,
        )
    });
    let bought = bodies.by_ref().take(split).collect();
    let renewal_failed = bodies.collect();
    Story {
        user: journey.customer.user,
        bought,
        renewal_failed,
        renewed_at: DateTime::from_timestamp(p2, 0).unwrap(),
    }
}
