//! Health, readiness, metrics, OpenAPI, unknown routes.

use billing_store_diesel::DieselStore;
use serde_json::Value;

use crate::helpers::{self, spawn_app, subscription_event};

#[actix_web::test]
async fn health_readiness_metrics_and_openapi() {
    let app = spawn_app().await;
    let get = |path: &'static str| {
        let client = app.client.clone();
        let url = format!("{}{path}", app.address);
        async move {
            let mut response = client.get(url).send().await.unwrap();
            (
                response.status().as_u16(),
                String::from_utf8(response.body().await.unwrap().to_vec()).unwrap(),
            )
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let event = subscription_event(
        "evt_m1",
        "customer.subscription.created",
        "u_m",
        "active",
        "price_pro_monthly",
        1_700_000_000,
    );
    app.webhook(&event).await;
    let (status, metrics) = get("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        metrics.contains("billing_webhook_deliveries_total"),
        "{metrics}"
    );
    assert!(metrics.contains("outcome=\"processed\""), "{metrics}");
    let (status, openapi) = get("/openapi.yaml").await;
    assert_eq!(status, 200);
    assert!(openapi.contains("/v1/users/{user_id}/usage"));
    let (status, body) = get("/nope").await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
}

#[actix_web::test]
async fn every_series_is_exposed_at_zero_before_the_first_request() {
    let app = spawn_app().await;
    let (status, metrics) = app.get_text("/metrics").await;
    assert_eq!(status, 200);
    // Series no test ever increments: present, and zero.
    for series in [
        r#"billing_api_requests_total{route="/v1/portal/sessions",status="502"} 0"#,
        r#"billing_webhook_deliveries_total{type="charge.dispute.closed",outcome="event_not_applied"} 0"#,
        r#"billing_webhook_deliveries_total{type="unknown",outcome="no_v1_signature"} 0"#,
        r#"billing_webhook_delivery_seconds_count{outcome="invalid_signature"} 0"#,
        r#"billing_api_request_seconds_count{route="/v1/users/{user_id}/sync"}"#,
        r#"billing_reconcile_differences_total{kind="cancel_at_period_end"} 0"#,
        "billing_delivery_lag_seconds_count 0",
        r#"billing_delivery_lag_seconds_bucket{le="259200"} 0"#,
        "billing_reconcile_last_success_timestamp_seconds 0",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from:\n{metrics}"
        );
    }
    for family in [
        "# HELP billing_webhook_deliveries_total",
        "# HELP billing_api_requests_total",
        "# TYPE billing_webhook_delivery_seconds histogram",
        "# TYPE billing_api_request_seconds histogram",
        "# TYPE billing_reconcile_last_success_timestamp_seconds gauge",
    ] {
        assert!(metrics.contains(family), "{family} missing");
    }
}

#[actix_web::test]
async fn api_requests_are_counted_under_their_route_whoever_answers() {
    let app = spawn_app().await;
    let count = |metrics: &str, series: &str| -> u64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let series = r#"billing_api_requests_total{route="/v1/users/{user_id}/features/{feature}",status="401"}"#;
    let before = count(&app.get_text("/metrics").await.1, series);
    let (status, _) = app
        .get_text("/v1/users/u_1/features/priority_support")
        .await;
    assert_eq!(status, 401);
    let after = count(&app.get_text("/metrics").await.1, series);
    assert_eq!(after, before + 1);
}

/// The value of a series without labels in a `/metrics` text.
fn gauge(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
}

#[actix_web::test]
async fn operator_gauges_follow_the_stored_events_and_the_pool() {
    let app = spawn_app().await;
    let (_, metrics) = app.get_text("/metrics").await;
    for name in [
        "billing_failed_events",
        "billing_failed_event_oldest_age_seconds",
        "billing_events_received_last_minute",
        "billing_pool_connections_in_use",
        "billing_pool_connections_waiting",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {name} gauge")),
            "{name}:\n{metrics}"
        );
    }
    for name in [
        "billing_ingest_transaction_deliveries",
        "billing_ingest_queue_wait_seconds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {name} histogram")),
            "{name}:\n{metrics}"
        );
        assert_eq!(gauge(&metrics, &format!("{name}_count")), 0.0);
    }
    assert_eq!(gauge(&metrics, "billing_failed_events"), 0.0);
    assert_eq!(gauge(&metrics, "billing_events_received_last_minute"), 0.0);
    // The delivery lag is a histogram of every delivery's lag, empty before the first.
    assert!(
        metrics.contains("# TYPE billing_delivery_lag_seconds histogram"),
        "{metrics}"
    );
    assert_eq!(gauge(&metrics, "billing_delivery_lag_seconds_count"), 0.0);

    let created = chrono::Utc::now().timestamp() - 90;
    let good = subscription_event(
        "evt_1QgZt4LkdIwHu7ixQ2mB8rTe",
        "customer.subscription.created",
        "u_gauge",
        "active",
        "price_pro_monthly",
        created,
    );
    assert_eq!(app.webhook(&good).await.0, 200);
    // An empty status can never apply: stored as failed, answered 422.
    let bad = subscription_event(
        "evt_1QgZt9Rm3xVbn0PcW8eKsJ4a",
        "customer.subscription.updated",
        "u_gauge",
        "",
        "price_pro_monthly",
        created,
    );
    assert_eq!(app.webhook(&bad).await.0, 422);

    let (_, metrics) = app.get_text("/metrics").await;
    assert_eq!(gauge(&metrics, "billing_failed_events"), 1.0);
    assert_eq!(gauge(&metrics, "billing_events_received_last_minute"), 2.0);
    let oldest = gauge(&metrics, "billing_failed_event_oldest_age_seconds");
    assert!((0.0..60.0).contains(&oldest), "{oldest}");
    // The readable event was created 90 s ago: one lag between a minute and five (the
    // unreadable one is refused before its lag is known).
    let lag = |series: &str| gauge(&metrics, &format!("billing_delivery_lag_seconds{series}"));
    assert_eq!(lag("_count"), 1.0);
    assert_eq!(lag(r#"_bucket{le="60"}"#), 0.0);
    assert_eq!(lag(r#"_bucket{le="300"}"#), 1.0);
    assert_eq!(lag(r#"_bucket{le="259200"}"#), 1.0);
    assert!((89.0..150.0).contains(&lag("_sum")), "{}", lag("_sum"));
    // The readable delivery went through the ingest queue: one transaction of one delivery,
    // one wait; no shared transaction failed.
    let batches = |series: &str| {
        gauge(
            &metrics,
            &format!("billing_ingest_transaction_deliveries{series}"),
        )
    };
    assert_eq!(batches("_count"), 1.0);
    assert_eq!(batches("_sum"), 1.0);
    assert_eq!(batches(r#"_bucket{le="1"}"#), 1.0);
    assert_eq!(
        gauge(&metrics, "billing_ingest_queue_wait_seconds_count"),
        1.0
    );
    for outcome in ["applied_alone", "unavailable"] {
        let failures = format!(r#"billing_ingest_shared_failures_total{{outcome="{outcome}"}}"#);
        assert_eq!(gauge(&metrics, &failures), 0.0);
    }
    // The pool is sampled before the scrape reads the counts, so what is in use belongs to
    // someone else: a background task the webhooks' commits woke. Once it is done the gauge
    // reaches zero; a scrape that kept its connection would show at least one forever.
    assert_eq!(gauge(&metrics, "billing_pool_connections_waiting"), 0.0);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, metrics) = app.get_text("/metrics").await;
        let in_use = gauge(&metrics, "billing_pool_connections_in_use");
        if in_use == 0.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{in_use} pooled connections still in use 10 s after the last request"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn undeclared_methods_on_declared_paths_answer_405_with_the_error_shape() {
    let app = spawn_app().await;
    let with_key = format!("Bearer {}", crate::helpers::API_KEY);
    for (method, path) in [
        ("GET", "/webhooks/stripe"),
        ("POST", "/healthz"),
        ("DELETE", "/v1/portal/sessions"),
        ("PUT", "/v1/users/u_1/entitlements"),
    ] {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut response = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .insert_header(("Authorization", with_key.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "method_not_allowed",
            "{method} {path}"
        );
    }
}

/// `docs/openapi.yaml` is what the server serves; `UPDATE_OPENAPI=1` (or `just openapi`)
/// rewrites it instead of failing.
#[actix_web::test]
async fn docs_openapi_yaml_is_the_served_document() {
    let app = spawn_app().await;
    let (status, served) = app.get_text("/openapi.yaml").await;
    assert_eq!(status, 200);
    let (status, json) = app.get_text("/openapi.json").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&json).unwrap();
    assert!(json["paths"]["/v1/checkout/sessions"]["post"].is_object());
    let codes = &json["components"]["schemas"]["ErrorCode"]["enum"];
    assert!(
        codes
            .as_array()
            .unwrap()
            .contains(&"method_not_allowed".into()),
        "{codes}"
    );
    // The example catalog's values, as the runtime catalog gives them.
    let schemas = &json["components"]["schemas"];
    assert_eq!(
        schemas["UsageRequest"]["properties"]["metric"]["enum"],
        serde_json::json!(["ai_generations", "api_calls"])
    );
    let choice = &schemas["CheckoutRequest"]["allOf"][1]["oneOf"];
    assert_eq!(
        choice[0]["properties"]["price_id"]["enum"],
        serde_json::json!([
            "price_pro_monthly",
            "price_pro_yearly",
            "price_enterprise_monthly"
        ])
    );
    assert_eq!(
        choice[1]["properties"]["tier"]["enum"],
        serde_json::json!(["PRO", "ENTERPRISE"]),
        "the free tier has no price: not purchasable"
    );
    let feature = &json["paths"]["/v1/users/{user_id}/features/{feature}"]["get"]["parameters"][1];
    assert_eq!(
        (&feature["name"], &feature["schema"]["enum"]),
        (
            &serde_json::json!("feature"),
            &serde_json::json!(["advanced_analytics", "custom_domain", "priority_support"])
        )
    );
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap();
    assert!(
        committed == served,
        "docs/openapi.yaml differs from the served document; run `just openapi` to regenerate it"
    );
}

/// The served document is the running server's: its catalog's metrics, features, prices and
/// purchasable tiers, not the example's.
#[actix_web::test]
async fn the_served_document_lists_the_running_catalog() {
    let mut settings = helpers::settings(helpers::Limits::default());
    settings.catalog = billing_domain::Catalog::from_toml_str(
        r#"
        default_grace_period_days = 3

        [[tiers]]
        id = "BASIC"
        name = "Basic"
        price_ids = []
        credits_per_period = 0
        limits = { seats = 1 }
        features = { sso = false }

        [[tiers]]
        id = "TEAM"
        name = "Team"
        price_ids = ["price_team_monthly"]
        credits_per_period = 0
        limits = { seats = "unlimited" }
        features = { sso = true }
        "#,
    )
    .unwrap();
    let stripe = std::sync::Arc::new(helpers::fake_gateway());
    let parts = billing_http::Parts {
        // Never reached: the document needs no database.
        store: DieselStore::connect("postgres://postgres@127.0.0.1:1/nowhere", 2).unwrap(),
        gateway: stripe,
        clock: std::sync::Arc::new(billing_ports::SystemClock),
    };
    let server = billing_http::Server::build_with(settings, parts).unwrap();
    let address = format!("http://{}", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    let mut response = awc::Client::default()
        .get(format!("{address}/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let json: Value = response.json().limit(1 << 20).await.unwrap();
    let schemas = &json["components"]["schemas"];
    assert_eq!(
        schemas["UsageRequest"]["properties"]["metric"]["enum"],
        serde_json::json!(["seats"])
    );
    let choice = &schemas["CheckoutRequest"]["allOf"][1]["oneOf"];
    assert_eq!(
        (
            &choice[0]["properties"]["price_id"]["enum"],
            &choice[1]["properties"]["tier"]["enum"]
        ),
        (
            &serde_json::json!(["price_team_monthly"]),
            &serde_json::json!(["TEAM"])
        )
    );
    let feature = &json["paths"]["/v1/users/{user_id}/features/{feature}"]["get"]["parameters"][1];
    assert_eq!(feature["schema"]["enum"], serde_json::json!(["sso"]));
}

/// Every metric the shipped alert rules and dashboard query is exported from start-up, so an
/// alert never watches a series that does not exist (renamed or never registered).
#[actix_web::test]
async fn the_alerts_and_the_dashboard_query_only_exported_series() {
    let app = spawn_app().await;
    let (_, metrics) = app.get_text("/metrics").await;
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs");
    let mut checked = 0;
    for file in ["alerts.yml", "grafana-dashboard.json"] {
        let text = std::fs::read_to_string(format!("{docs}/{file}")).unwrap();
        for name in metric_names(&text) {
            // A histogram's series are queried by their suffixed names.
            let histogram_part = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|suffix| name.strip_suffix(suffix));
            let family = histogram_part.unwrap_or(&name);
            assert!(
                metrics.contains(&format!("# TYPE {family} ")),
                "{file} queries {name}, which /metrics does not export at start-up"
            );
            // A histogram is queried by its parts, and only a histogram has parts.
            let is_histogram = metrics.contains(&format!("# TYPE {family} histogram"));
            assert_eq!(
                histogram_part.is_some(),
                is_histogram,
                "{file} queries {name}, but {family} is {}a histogram",
                if is_histogram { "" } else { "not " }
            );
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} metric references found");
}

/// The `billing_…` identifiers in a text.
fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("billing_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let before = rest[..at].chars().next_back();
        // Skip words that only contain the prefix (e.g. `docs/billing_…` paths have none).
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            names.push(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    names
}
