//! Catalogs that load: the shipped `plans.toml`, every way to build one, defaults, and the
//! helpers of the catalog's types.

use billing_domain::catalog::DEFAULT_GRACE_PERIOD_DAYS;
use billing_domain::{Catalog, Limit, TierId};
use chrono::TimeDelta;

use super::MINIMAL;
use crate::PLANS;

#[test]
fn shipped_plans_toml_loads_as_documented() {
    let catalog = Catalog::from_toml_str(PLANS).unwrap();

    let ids: Vec<&str> = catalog.tiers().iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["FREE", "PRO", "ENTERPRISE"]);
    for (rank, tier) in catalog.tiers().iter().enumerate() {
        assert_eq!(tier.rank, rank);
        assert_eq!(tier.grace_period, TimeDelta::days(3));
    }

    let free = catalog.free_tier();
    assert_eq!(free.id.as_str(), "FREE");
    assert!(free.is_free());
    assert!(free.price_ids.is_empty());
    assert_eq!(free.credits_per_period, 0);

    let pro = catalog.tier("PRO").unwrap();
    assert_eq!(pro.name, "Pro");
    assert_eq!(pro.price_ids, ["price_pro_monthly", "price_pro_yearly"]);
    assert_eq!(pro.credits_per_period, 1000);

    let enterprise = catalog.tier("ENTERPRISE").unwrap();
    assert_eq!(enterprise.price_ids, ["price_enterprise_monthly"]);
    assert_eq!(enterprise.credits_per_period, 10000);

    assert_eq!(
        catalog.tier_for_price("price_pro_monthly").unwrap().id,
        "PRO"
    );
    assert_eq!(
        catalog.tier_for_price("price_pro_yearly").unwrap().id,
        "PRO"
    );
    assert_eq!(
        catalog
            .tier_for_price("price_enterprise_monthly")
            .unwrap()
            .id,
        "ENTERPRISE"
    );
    assert!(catalog.tier_for_price("price_unknown").is_none());
    assert!(catalog.tier("pro").is_none(), "tier ids match exactly");
    assert!(catalog.tier("MISSING").is_none());

    let limits = |metric: &str| -> Vec<Limit> {
        catalog
            .tiers()
            .iter()
            .map(|t| t.limit(metric).unwrap())
            .collect()
    };
    assert_eq!(
        limits("api_calls"),
        [
            Limit::Limited(100),
            Limit::Limited(10_000),
            Limit::Unlimited
        ]
    );
    assert_eq!(
        limits("ai_generations"),
        [Limit::Limited(10), Limit::Limited(500), Limit::Unlimited]
    );

    let features = |feature: &str| -> Vec<bool> {
        catalog.tiers().iter().map(|t| t.feature(feature)).collect()
    };
    assert_eq!(features("advanced_analytics"), [false, true, true]);
    assert_eq!(features("priority_support"), [false, false, true]);
    assert_eq!(features("custom_domain"), [false, true, true]);
    assert_eq!(features("no_such_feature"), [false, false, false]);

    assert_eq!(
        catalog.metrics().collect::<Vec<_>>(),
        ["ai_generations", "api_calls"]
    );
    assert_eq!(
        catalog.features().collect::<Vec<_>>(),
        ["advanced_analytics", "custom_domain", "priority_support"]
    );
}

#[test]
fn from_str_and_from_tiers_agree_with_from_toml_str() {
    let catalog: Catalog = PLANS.parse().unwrap();
    assert_eq!(catalog, Catalog::from_toml_str(PLANS).unwrap());

    let mut tiers = catalog.tiers().to_vec();
    for tier in &mut tiers {
        tier.rank = 99; // rebuilt from position
    }
    assert_eq!(Catalog::from_tiers(tiers).unwrap(), catalog);
}

#[test]
fn grace_period_defaults_and_overrides() {
    let catalog = Catalog::from_toml_str(MINIMAL).unwrap();
    assert_eq!(
        catalog.free_tier().grace_period,
        TimeDelta::days(DEFAULT_GRACE_PERIOD_DAYS)
    );

    let src = format!("default_grace_period_days = 5\n{MINIMAL}").replace(
        "price_ids = [\"price_pro\"]",
        "price_ids = [\"price_pro\"]\ngrace_period_days = 14",
    );
    let catalog = Catalog::from_toml_str(&src).unwrap();
    assert_eq!(catalog.free_tier().grace_period, TimeDelta::days(5));
    assert_eq!(
        catalog.tier("PRO").unwrap().grace_period,
        TimeDelta::days(14)
    );

    let src = MINIMAL.replace(
        "price_ids = [\"price_pro\"]",
        "price_ids = [\"price_pro\"]\ngrace_period_days = 0",
    );
    let catalog = Catalog::from_toml_str(&src).unwrap();
    assert_eq!(catalog.tier("PRO").unwrap().grace_period, TimeDelta::zero());
}

#[test]
fn inline_tables_are_accepted() {
    let catalog = Catalog::from_toml_str(
        r#"
        tiers = [
          { id = "FREE", name = "Free", limits = { a = 1 }, features = { f = false } },
          { id = "PLUS", name = "Plus", price_ids = ["p"], limits = { a = 2 }, features = { f = true } },
        ]
        "#,
    )
    .unwrap();
    assert_eq!(catalog.tiers().len(), 2);
    assert_eq!(catalog.tier_for_price("p").unwrap().rank, 1);
}

#[test]
fn a_catalog_without_metrics_or_features_is_valid() {
    let catalog = Catalog::from_toml_str(
        r#"
        [[tiers]]
        id = "FREE"
        name = "Free"
        "#,
    )
    .unwrap();
    assert_eq!(catalog.metrics().count(), 0);
    assert_eq!(catalog.features().count(), 0);
}

#[test]
fn limit_helpers() {
    assert!(Limit::Limited(10).allows(0));
    assert!(Limit::Limited(10).allows(10));
    assert!(!Limit::Limited(10).allows(11));
    assert!(!Limit::Limited(0).allows(1));
    assert!(Limit::Unlimited.allows(u64::MAX));
    assert_eq!(Limit::Limited(7).as_option(), Some(7));
    assert_eq!(Limit::Unlimited.as_option(), None);
    assert!(Limit::Limited(u64::MAX) < Limit::Unlimited);
    assert!(Limit::Limited(1) < Limit::Limited(2));
    assert_eq!(Limit::Limited(5).to_string(), "5");
    assert_eq!(Limit::Unlimited.to_string(), "unlimited");
    assert_eq!(
        toml::Value::try_from(Limit::Limited(5)).unwrap(),
        toml::Value::Integer(5)
    );
    assert_eq!(
        toml::Value::try_from(Limit::Unlimited).unwrap(),
        toml::Value::String("unlimited".to_owned())
    );
}

#[test]
fn tier_id_helpers() {
    let id = TierId::new("PRO");
    assert_eq!(id.as_str(), "PRO");
    assert_eq!(id.to_string(), "PRO");
    assert_eq!(id, "PRO");
    assert_eq!(TierId::from("PRO"), id);
    assert!(TierId::new("ENTERPRISE") < id);
    assert_eq!(
        toml::Value::try_from(&id).unwrap(),
        toml::Value::String("PRO".to_owned())
    );
}

#[test]
fn unknown_prices_is_free_by_default_and_fail_on_request() {
    use billing_domain::UnknownPrices;
    let catalog = Catalog::from_toml_str(MINIMAL).unwrap();
    assert_eq!(catalog.unknown_prices(), UnknownPrices::Free);
    for (value, policy) in [("free", UnknownPrices::Free), ("fail", UnknownPrices::Fail)] {
        let src = format!("unknown_prices = \"{value}\"\n{MINIMAL}");
        let catalog = Catalog::from_toml_str(&src).unwrap();
        assert_eq!(catalog.unknown_prices(), policy);
        // An operator's grace override keeps the policy.
        let overridden = catalog.with_grace_period(TimeDelta::days(7)).unwrap();
        assert_eq!(overridden.unknown_prices(), policy);
    }
}
