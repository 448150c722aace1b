//! Catalogs that are rejected: every problem is reported at once, each with its place.

use billing_domain::catalog::MAX_GRACE_PERIOD_DAYS;
use billing_domain::{Catalog, CatalogError, CatalogProblem, Limit, TierId};
use chrono::TimeDelta;

use super::{MINIMAL, assert_problem, load_err};
use crate::PLANS;

#[test]
fn from_tiers_applies_the_same_rules() {
    let catalog = Catalog::from_toml_str(PLANS).unwrap();
    let mut tiers = catalog.tiers().to_vec();
    tiers[0].price_ids.push("price_pro_monthly".to_owned());
    tiers[2].id = TierId::new("PRO");
    tiers[2].credits_per_period = -1;
    tiers[2].grace_period = TimeDelta::days(-1);
    tiers[1].limits.remove("api_calls");
    let error = Catalog::from_tiers(tiers).unwrap_err();
    assert_problem(&error, "tiers[0].price_ids", "free tier");
    assert_problem(&error, "tiers[1].price_ids[0]", "duplicate price id");
    assert_problem(&error, "tiers[2].id", "duplicate tier id \"PRO\"");
    assert_problem(&error, "tiers[2].credits_per_period", "negative");
    assert_problem(&error, "tiers[2].grace_period", "negative");
    assert_problem(&error, "tiers[1].limits.api_calls", "missing");

    assert_problem(
        &Catalog::from_tiers(Vec::new()).unwrap_err(),
        "tiers",
        "empty",
    );
}

#[test]
fn empty_catalog_is_rejected() {
    assert_problem(&load_err(""), "tiers", "empty");
    assert_problem(&load_err("tiers = []"), "tiers", "empty");
    assert_problem(&load_err("default_grace_period_days = 3"), "tiers", "empty");
    let error = load_err("tiers = 3");
    assert_eq!(error.problems.len(), 1, "{error}");
    assert_problem(&error, "tiers", "array of tables");
    assert_problem(&load_err("tiers = [1]"), "tiers[0]", "must be a table");
}

#[test]
fn free_tier_with_a_price_is_rejected() {
    let src = MINIMAL.replacen(
        "name = \"Free\"",
        "name = \"Free\"\nprice_ids = [\"price_free\"]",
        1,
    );
    let error = load_err(&src);
    assert_problem(
        &error,
        "tiers[0].price_ids",
        "free tier and must have no price",
    );
    assert_eq!(error.problems.len(), 1, "{error}");
}

#[test]
fn free_tier_with_credits_is_rejected() {
    let src = MINIMAL.replacen(
        "name = \"Free\"",
        "name = \"Free\"\ncredits_per_period = 5",
        1,
    );
    assert_problem(&load_err(&src), "tiers[0].credits_per_period", "must be 0");
}

#[test]
fn paid_tier_without_a_price_is_rejected() {
    let src = MINIMAL.replace("price_ids = [\"price_pro\"]", "price_ids = []");
    assert_problem(&load_err(&src), "tiers[1].price_ids", "at least one price");
    let src = MINIMAL.replace("price_ids = [\"price_pro\"]", "");
    assert_problem(&load_err(&src), "tiers[1].price_ids", "at least one price");
}

#[test]
fn duplicate_price_ids_are_rejected_across_and_within_tiers() {
    let src = format!(
        "{MINIMAL}\n{}",
        r#"
[[tiers]]
id = "TEAM"
name = "Team"
price_ids = ["price_team", "price_pro", "price_team"]
[tiers.limits]
api_calls = 5
[tiers.features]
export = true
"#
    );
    let error = load_err(&src);
    assert_problem(
        &error,
        "tiers[2].price_ids[1]",
        "duplicate price id \"price_pro\": already used by tiers[1] (PRO)",
    );
    assert_problem(
        &error,
        "tiers[2].price_ids[2]",
        "duplicate price id \"price_team\": already used by tiers[2] (TEAM)",
    );
    assert_eq!(error.problems.len(), 2, "{error}");
}

#[test]
fn duplicate_and_invalid_tier_ids_are_rejected() {
    let src = MINIMAL.replace("id = \"PRO\"", "id = \"FREE\"");
    assert_problem(&load_err(&src), "tiers[1].id", "duplicate tier id \"FREE\"");

    let src = MINIMAL.replace("id = \"PRO\"", "id = \"\"");
    assert_problem(&load_err(&src), "tiers[1].id", "invalid tier id");
    let src = MINIMAL.replace("id = \"PRO\"", "id = \"P R O\"");
    assert_problem(&load_err(&src), "tiers[1].id", "invalid tier id");

    let src = MINIMAL.replace("id = \"PRO\"", "id = 7");
    let error = load_err(&src);
    assert_problem(&error, "tiers[1].id", "must be a string");
    assert_eq!(error.problems.len(), 1, "{error}");

    let src = MINIMAL.replace("id = \"PRO\"", "");
    let error = load_err(&src);
    assert_problem(&error, "tiers[1].id", "missing");
    assert_eq!(error.problems.len(), 1, "{error}");
}

#[test]
fn missing_or_empty_names_are_rejected() {
    let src = MINIMAL.replace("name = \"Pro\"", "");
    assert_problem(&load_err(&src), "tiers[1].name", "missing");
    let src = MINIMAL.replace("name = \"Pro\"", "name = \" \"");
    assert_problem(&load_err(&src), "tiers[1].name", "must not be empty");
}

#[test]
fn invalid_price_ids_are_rejected() {
    let src = MINIMAL.replace("[\"price_pro\"]", "[\"price_pro\", \"\", 3, \"a b\"]");
    let error = load_err(&src);
    assert_problem(&error, "tiers[1].price_ids[1]", "invalid price id");
    assert_problem(&error, "tiers[1].price_ids[2]", "must be a string");
    assert_problem(&error, "tiers[1].price_ids[2]", "integer 3");
    // The unreadable entry is skipped, so "a b" is the third readable one.
    assert_problem(&error, "tiers[1].price_ids[2]", "invalid price id \"a b\"");

    let src = MINIMAL.replace("[\"price_pro\"]", "\"price_pro\"");
    assert_problem(&load_err(&src), "tiers[1].price_ids", "array of strings");
}

#[test]
fn a_metric_missing_on_one_tier_is_rejected() {
    let src = MINIMAL.replace("api_calls = 10\n", "");
    let error = load_err(&src);
    assert_problem(
        &error,
        "tiers[0].limits.api_calls",
        "missing: tiers[1] (PRO) sets a limit for \"api_calls\"",
    );
    assert_eq!(error.problems.len(), 1, "{error}");

    let src = MINIMAL.replace(
        "api_calls = \"unlimited\"",
        "api_calls = \"unlimited\"\nseats = 3",
    );
    assert_problem(&load_err(&src), "tiers[0].limits.seats", "missing");
}

#[test]
fn a_feature_missing_on_one_tier_is_rejected() {
    let src = MINIMAL.replace("export = true", "exprot = true");
    let error = load_err(&src);
    assert_problem(&error, "tiers[1].features.export", "missing");
    assert_problem(&error, "tiers[0].features.exprot", "missing");
    assert_eq!(error.problems.len(), 2, "{error}");
}

#[test]
fn limits_must_be_whole_non_negative_numbers_or_unlimited() {
    for (value, fragment) in [
        ("-1", "negative"),
        ("1.5", "float"),
        ("inf", "float"),
        ("-inf", "float"),
        ("nan", "float"),
        ("1e3", "float"),
        ("\"infinite\"", "\"unlimited\""),
        ("\"Unlimited\"", "\"unlimited\""),
        ("\"100\"", "\"unlimited\""),
        ("true", "boolean"),
        ("[1]", "array"),
    ] {
        let src = MINIMAL.replace("api_calls = 10\n", &format!("api_calls = {value}\n"));
        let error = load_err(&src);
        assert_problem(&error, "tiers[0].limits.api_calls", fragment);
        // An unreadable limit is not also reported as missing.
        assert_eq!(error.problems.len(), 1, "{value}: {error}");
    }
    let src = MINIMAL.replace("api_calls = 10\n", "api_calls = 0\n");
    let catalog = Catalog::from_toml_str(&src).unwrap();
    assert_eq!(
        catalog.free_tier().limit("api_calls"),
        Some(Limit::Limited(0))
    );
    let src = MINIMAL.replace("api_calls = 10\n", "api_calls = 9223372036854775807\n");
    let catalog = Catalog::from_toml_str(&src).unwrap();
    assert_eq!(
        catalog.free_tier().limit("api_calls"),
        Some(Limit::Limited(i64::MAX as u64))
    );
}

#[test]
fn features_must_be_booleans() {
    let src = MINIMAL.replace("export = false", "export = \"no\"");
    let error = load_err(&src);
    assert_problem(&error, "tiers[0].features.export", "true or false");
    assert_eq!(error.problems.len(), 1, "{error}");
    let src = MINIMAL.replace("export = false", "export = 0");
    assert_problem(&load_err(&src), "tiers[0].features.export", "true or false");
}

#[test]
fn credits_and_grace_must_be_non_negative_integers() {
    let pro = "price_ids = [\"price_pro\"]";
    for (line, place, fragment) in [
        (
            "credits_per_period = -5",
            "tiers[1].credits_per_period",
            "negative",
        ),
        (
            "credits_per_period = 1.5",
            "tiers[1].credits_per_period",
            "float",
        ),
        (
            "credits_per_period = inf",
            "tiers[1].credits_per_period",
            "float",
        ),
        (
            "credits_per_period = \"10\"",
            "tiers[1].credits_per_period",
            "whole number",
        ),
        (
            "grace_period_days = -1",
            "tiers[1].grace_period_days",
            "negative",
        ),
        (
            "grace_period_days = 1.5",
            "tiers[1].grace_period_days",
            "float",
        ),
        (
            "grace_period_days = 366",
            "tiers[1].grace_period_days",
            "at most 365",
        ),
        (
            "grace_period_days = 9223372036854775807",
            "tiers[1].grace_period_days",
            "at most",
        ),
    ] {
        let src = MINIMAL.replace(pro, &format!("{pro}\n{line}"));
        let error = load_err(&src);
        assert_problem(&error, place, fragment);
        assert_eq!(error.problems.len(), 1, "{line}: {error}");
    }
    assert_eq!(MAX_GRACE_PERIOD_DAYS, 365);

    for (line, fragment) in [
        ("default_grace_period_days = -3", "negative"),
        ("default_grace_period_days = 3.0", "float"),
        ("default_grace_period_days = 1000", "at most"),
    ] {
        let error = load_err(&format!("{line}\n{MINIMAL}"));
        assert_problem(&error, "default_grace_period_days", fragment);
        assert_eq!(error.problems.len(), 1, "{line}: {error}");
    }
}

#[test]
fn unknown_keys_are_rejected_alongside_other_problems() {
    let src = format!("colour = \"blue\"\n{MINIMAL}")
        .replace("name = \"Pro\"", "name = \"Pro\"\nprice = \"price_x\"")
        .replace("api_calls = 10\n", "api_calls = -10\n");
    let error = load_err(&src);
    assert_problem(&error, "colour", "unknown key");
    assert_problem(&error, "tiers[1].price", "unknown key");
    assert_problem(&error, "tiers[0].limits.api_calls", "negative");
    assert_eq!(error.problems.len(), 3, "{error}");

    let src = MINIMAL.replace("[tiers.limits]\napi_calls = 10", "limits = 3");
    assert_problem(&load_err(&src), "tiers[0].limits", "must be a table");
    let src = MINIMAL.replace(
        "[tiers.limits]\napi_calls = 10\n[tiers.features]\nexport = false",
        "features = [\"export\"]\n[tiers.limits]\napi_calls = 10",
    );
    assert_problem(&load_err(&src), "tiers[0].features", "must be a table");
}

#[test]
fn every_problem_is_reported_at_once() {
    let src = r#"
default_grace_period_days = -1
typo = 1

[[tiers]]
id = "FREE"
name = "Free"
price_ids = ["price_a"]
[tiers.limits]
api_calls = 1.5
[tiers.features]
export = "yes"

[[tiers]]
id = "FREE"
name = "Pro"
price_ids = ["price_a"]
credits_per_period = -1
[tiers.limits]
api_calls = inf
seats = 3
[tiers.features]
"#;
    let error = load_err(src);
    let places: Vec<&str> = error.problems.iter().map(|p| p.place.as_str()).collect();
    for place in [
        "typo",
        "default_grace_period_days",
        "tiers[0].price_ids",
        "tiers[0].limits.api_calls",
        "tiers[0].features.export",
        "tiers[1].id",
        "tiers[1].price_ids[0]",
        "tiers[1].credits_per_period",
        "tiers[1].limits.api_calls",
        "tiers[0].limits.seats",
        "tiers[1].features.export",
    ] {
        assert!(places.contains(&place), "{place} not reported in:\n{error}");
    }
    assert_eq!(error.problems.len(), 11, "{error}");

    // Display lists every problem with its place.
    let shown = error.to_string();
    assert!(
        shown.starts_with("invalid plan catalog (11 problems):"),
        "{shown}"
    );
    for problem in &error.problems {
        assert!(shown.contains(&format!("  - {}: {}", problem.place, problem.message)));
    }
    assert_eq!(shown.lines().count(), 12);
}

#[test]
fn toml_syntax_errors_are_reported_alone_with_a_line() {
    let error = load_err("[[tiers]]\nid = \"FREE\"\nname = \n");
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(error.problems[0].place.starts_with("line 3"), "{error}");
    assert!(error.problems[0].message.contains("TOML syntax error"));

    let error = load_err("[[tiers]]\nid = \"A\"\nid = \"B\"\n");
    assert_eq!(error.problems.len(), 1, "{error}");
    assert!(error.problems[0].place.starts_with("line 3"), "{error}");
}

#[test]
fn problem_display() {
    let problem = CatalogProblem::new("tiers[1].limits.api_calls", "must not be negative");
    assert_eq!(
        problem.to_string(),
        "tiers[1].limits.api_calls: must not be negative"
    );
    let error = CatalogError {
        problems: vec![problem],
    };
    assert_eq!(
        error.to_string(),
        "invalid plan catalog (1 problem):\n  - tiers[1].limits.api_calls: must not be negative"
    );
}

#[test]
fn unknown_prices_must_be_free_or_fail() {
    for value in ["\"ignore\"", "true", "1", "[\"fail\"]"] {
        let src = format!("unknown_prices = {value}\n{MINIMAL}");
        assert_problem(&load_err(&src), "unknown_prices", "\"free\" or \"fail\"");
    }
}
