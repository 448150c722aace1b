//! The guards in-process (`actix_web::test`), on the local backend over SQLite: names checked
//! at start-up, the error shape, idempotency keys, what the handler is told.

use std::sync::Arc;

use actix_web::http::header::HeaderValue;
use actix_web::{App, HttpResponse, test, web};
use billing_app::{AppSettings, BillingApp};
use billing_gate::{
    Access, CatalogNames, Consume, FeatureDecision, Gate, GateBackend, GateError, LocalBackend,
    RequireFeature, RequireTier, Standing, UsageDecision,
};
use billing_ports::ManualClock;
use billing_store_diesel::DieselStore;
use billing_store_diesel::testing::TestDatabase;
use serde_json::Value;

use crate::support::{catalog, now};

fn app(db: &TestDatabase) -> BillingApp<DieselStore> {
    BillingApp::new(
        Arc::new(db.store().clone()),
        Arc::new(catalog()),
        Arc::new(ManualClock::new(now())),
        None,
        AppSettings::default(),
    )
}

async fn gate(db: &TestDatabase) -> Gate {
    Gate::builder(LocalBackend::new(app(db)))
        .user_id(crate::support::user_header)
        .build()
        .await
        .unwrap()
}

async fn echo(access: web::ReqData<Access>) -> HttpResponse {
    let access = access.into_inner();
    HttpResponse::Ok().json(serde_json::json!({
        "user_id": access.user_id,
        "tier": access.tier,
        "used": access.usage.as_ref().map(|u| u.used),
        "replayed": access.usage.as_ref().map(|u| u.replayed),
    }))
}

#[actix_web::test]
async fn names_the_catalog_does_not_know_fail_when_the_guard_is_built() {
    let db = TestDatabase::sqlite().await;
    let gate = gate(&db).await;
    assert!(matches!(
        gate.require(RequireFeature::new("teleportation")),
        Err(GateError::UnknownFeature(f)) if f == "teleportation"
    ));
    assert!(matches!(
        gate.require(RequireTier::at_least("GOLD")),
        Err(GateError::UnknownTier(t)) if t == "GOLD"
    ));
    assert!(matches!(
        gate.require(Consume::new("tokens", 1)),
        Err(GateError::UnknownMetric(m)) if m == "tokens"
    ));
    assert!(matches!(
        gate.require(Consume::new("api_calls", 0)),
        Err(GateError::InvalidOption(_))
    ));
    assert!(matches!(
        gate.require(Consume::new("api_calls", 1).idempotency_header("not a header")),
        Err(GateError::InvalidOption(_))
    ));
    assert!(gate.require(RequireFeature::new("custom_domain")).is_ok());
    assert_eq!(gate.catalog().tiers, ["FREE", "PRO", "ENTERPRISE"]);
    let no_user = Gate::builder(LocalBackend::new(app(&db))).build().await;
    assert!(matches!(no_user, Err(GateError::InvalidOption(_))));
}

#[actix_web::test]
async fn refusals_answer_in_the_servers_error_shape() {
    let db = TestDatabase::sqlite().await;
    let gate = gate(&db).await;
    let service = test::init_service(
        App::new()
            .service(
                web::resource("/custom")
                    .wrap(gate.require(RequireFeature::new("custom_domain")).unwrap())
                    .to(echo),
            )
            .service(
                web::resource("/metered")
                    .wrap(gate.require(Consume::new("api_calls", 1)).unwrap())
                    .to(echo),
            ),
    )
    .await;
    let call = |request: test::TestRequest| {
        let service = &service;
        async move {
            let response = test::call_service(service, request.to_request()).await;
            let status = response.status().as_u16();
            let body: Value = test::read_body_json(response).await;
            (status, body)
        }
    };

    let (status, body) = call(test::TestRequest::get().uri("/custom")).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthenticated");
    assert!(body["error"]["message"].is_string());

    let (status, body) = call(
        test::TestRequest::get()
            .uri("/custom")
            .insert_header(("x-user-id", "u".repeat(256))),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_user_id"))
    );

    let (status, body) = call(
        test::TestRequest::get()
            .uri("/custom")
            .insert_header(("x-user-id", "user_guard_free")),
    )
    .await;
    assert_eq!(status, 402);
    assert_eq!(body["error"]["code"], "feature_not_included");
    assert_eq!(body["error"]["tier"], "FREE");
    assert_eq!(body["error"]["reason"], "no_subscription");

    let (status, body) = call(
        test::TestRequest::post()
            .uri("/metered")
            .insert_header(("x-user-id", "user_guard_free"))
            .insert_header((
                "idempotency-key",
                HeaderValue::from_bytes("clé".as_bytes()).unwrap(),
            )),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_idempotency_key"))
    );
}

#[actix_web::test]
async fn a_consume_is_keyed_by_the_request_id_when_there_is_no_idempotency_key() {
    let db = TestDatabase::sqlite().await;
    let app = app(&db);
    let gate = Gate::builder(LocalBackend::new(app.clone()))
        .user_id(crate::support::user_header)
        .build()
        .await
        .unwrap();
    // Two consumes on one request: each metric gets its own key from the one request id.
    let service = test::init_service(
        App::new().service(
            web::resource("/both")
                .wrap(gate.require(Consume::new("api_calls", 2)).unwrap())
                .wrap(gate.require(Consume::new("ai_generations", 1)).unwrap())
                .wrap(gate.require(RequireTier::at_least("FREE")).unwrap())
                .to(echo),
        ),
    )
    .await;
    let user = "user_guard_keys";
    let send = |request_id: Option<&'static str>| {
        let service = &service;
        async move {
            let mut request = test::TestRequest::post()
                .uri("/both")
                .insert_header(("x-user-id", user));
            if let Some(id) = request_id {
                request = request.insert_header(("x-request-id", id));
            }
            let response = test::call_service(service, request.to_request()).await;
            assert_eq!(response.status(), 200);
            test::read_body_json::<Value, _>(response).await
        }
    };
    let first = send(Some("req-7f3a")).await;
    assert_eq!(first["tier"], "FREE");
    assert_eq!(first["replayed"], false);
    // The same request id again: a retry, counted once.
    let again = send(Some("req-7f3a")).await;
    assert_eq!(again["replayed"], true);
    let usage = app.entitlements(user).await.unwrap().usage;
    assert_eq!((usage["api_calls"], usage["ai_generations"]), (2, 1));
    // Without any key each request is new.
    send(None).await;
    send(None).await;
    let usage = app.entitlements(user).await.unwrap().usage;
    assert_eq!((usage["api_calls"], usage["ai_generations"]), (6, 3));
}

/// A backend whose catalog lost its names after the gate was built, and whose usage store
/// is down.
struct Drifted;

#[async_trait::async_trait]
impl GateBackend for Drifted {
    async fn feature(&self, _: &str, feature: &str) -> Result<FeatureDecision, GateError> {
        Err(GateError::UnknownFeature(feature.to_owned()))
    }

    async fn standing(&self, _: &str) -> Result<Standing, GateError> {
        Err(GateError::Refused("unknown tier".to_owned()))
    }

    async fn consume(&self, _: &str, _: &str, _: u64, _: &str) -> Result<UsageDecision, GateError> {
        Err(GateError::unavailable("connection refused"))
    }

    async fn catalog(&self) -> Result<CatalogNames, GateError> {
        Ok(CatalogNames {
            tiers: vec!["FREE".to_owned(), "PRO".to_owned()],
            features: ["reports".to_owned()].into(),
            metrics: ["calls".to_owned()].into(),
        })
    }
}

#[actix_web::test]
async fn a_catalog_changed_under_a_running_service_is_a_500_even_when_failing_open() {
    for fail_open in [false, true] {
        let mut builder = Gate::builder(Drifted).user_id(crate::support::user_header);
        if fail_open {
            builder = builder.fail_open();
        }
        let gate = builder.build().await.unwrap();
        assert_eq!(gate.fails_open(), fail_open);
        let service = test::init_service(
            App::new()
                .service(
                    web::resource("/reports")
                        .wrap(gate.require(RequireFeature::new("reports")).unwrap())
                        .to(echo),
                )
                .service(
                    web::resource("/pro")
                        .wrap(gate.require(RequireTier::at_least("PRO")).unwrap())
                        .to(echo),
                )
                .service(
                    web::resource("/calls")
                        .wrap(gate.require(Consume::new("calls", 1)).unwrap())
                        .to(echo),
                ),
        )
        .await;
        for (path, closed, open) in [
            ("/reports", 500, 500),
            ("/pro", 500, 500),
            ("/calls", 503, 200),
        ] {
            let request = test::TestRequest::get()
                .uri(path)
                .insert_header(("x-user-id", "user_drifted"))
                .to_request();
            let response = test::call_service(&service, request).await;
            let expected = if fail_open { open } else { closed };
            assert_eq!(
                response.status().as_u16(),
                expected,
                "{path}, fail_open {fail_open}"
            );
            if expected != 200 {
                let body: Value = test::read_body_json(response).await;
                let code = if expected == 500 {
                    "internal_error"
                } else {
                    "billing_unavailable"
                };
                assert_eq!(body["error"]["code"], code);
            }
        }
    }
}
