//! Plan catalog: loading the shipped `plans.toml`, and validation reporting every problem.

mod load;
mod problems;

use billing_domain::{Catalog, CatalogError};

/// A minimal valid catalog the problem tests start from.
const MINIMAL: &str = r#"
[[tiers]]
id = "FREE"
name = "Free"
[tiers.limits]
api_calls = 10
[tiers.features]
export = false

[[tiers]]
id = "PRO"
name = "Pro"
price_ids = ["price_pro"]
[tiers.limits]
api_calls = "unlimited"
[tiers.features]
export = true
"#;

fn load_err(src: &str) -> CatalogError {
    match Catalog::from_toml_str(src) {
        Ok(catalog) => panic!("expected an error, loaded {catalog:?}"),
        Err(error) => error,
    }
}

#[track_caller]
fn assert_problem(error: &CatalogError, place: &str, fragment: &str) {
    assert!(
        error
            .problems
            .iter()
            .any(|p| p.place == place && p.message.contains(fragment)),
        "no problem at {place:?} mentioning {fragment:?} in:\n{error}"
    );
}
