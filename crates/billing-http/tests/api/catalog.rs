//! `GET /v1/catalog`: the configured plan catalog.

use serde_json::json;

use crate::helpers::spawn_app;

#[actix_web::test]
async fn the_catalog_lists_tiers_in_order_features_by_tier_and_limits_by_metric() {
    let app = spawn_app().await;
    let (status, catalog) = app.get("/v1/catalog").await;
    assert_eq!(status, 200, "{catalog}");
    let tiers: Vec<_> = catalog["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].as_str().unwrap(), t["rank"].as_u64().unwrap()))
        .collect();
    assert_eq!(tiers, [("FREE", 0), ("PRO", 1), ("ENTERPRISE", 2)]);
    assert_eq!(
        catalog["tiers"][1],
        json!({
            "id": "PRO", "name": "Pro", "rank": 1,
            "price_ids": ["price_pro_monthly", "price_pro_yearly"],
            "credits_per_period": 1000,
        })
    );
    assert_eq!(
        catalog["features"],
        json!([
            {"name": "advanced_analytics", "tiers": ["PRO", "ENTERPRISE"]},
            {"name": "custom_domain", "tiers": ["PRO", "ENTERPRISE"]},
            {"name": "priority_support", "tiers": ["ENTERPRISE"]},
        ])
    );
    assert_eq!(
        catalog["metrics"],
        json!([
            {"name": "ai_generations", "limits": {"ENTERPRISE": null, "FREE": 10, "PRO": 500}},
            {"name": "api_calls", "limits": {"ENTERPRISE": null, "FREE": 100, "PRO": 10000}},
        ])
    );
    // Behind the API key like every /v1 route.
    let (status, _) = app.get_text("/v1/catalog").await;
    assert_eq!(status, 401);
}
