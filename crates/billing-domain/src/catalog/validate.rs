//! The rules a catalog obeys however its tiers were written (TOML or code): shape, uniqueness
//! and consistency. Each rule is one function that records a problem, with its place, for every
//! tier that breaks it, so one pass reports them all; problems come tier by tier, in the order of
//! the rules below.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::TimeDelta;

use super::model::{CatalogProblem, MAX_GRACE_PERIOD_DAYS, Tier};

/// Which problems the TOML reader already reported for a tier, so validation does not repeat
/// them about the placeholder it put in their stead.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Reported {
    /// The id was missing or not a string.
    pub(super) id: bool,
}

/// Checks every rule on `tiers` (given lowest first), recording each problem found.
pub(super) fn validate_tiers(
    tiers: &[Tier],
    reported: &[Reported],
    problems: &mut Vec<CatalogProblem>,
) {
    if tiers.is_empty() {
        problems.push(CatalogProblem::new(
            "tiers",
            "the catalog is empty: it needs at least one tier (the free tier first)",
        ));
        return;
    }
    let mut seen = Seen::default();
    for (index, tier) in tiers.iter().enumerate() {
        if !reported.get(index).copied().unwrap_or_default().id {
            seen.tier_id(index, tier, problems);
        }
        name_is_not_empty(index, tier, problems);
        only_paid_tiers_have_prices(index, tier, problems);
        seen.price_ids(tiers, index, problems);
        credits_are_paid_and_not_negative(index, tier, problems);
        grace_period_is_in_range(index, tier, problems);
        metric_and_feature_names_are_not_empty(index, tier, problems);
    }
    every_tier_sets_every_metric_and_feature(tiers, problems);
}

/// The place of a tier's field, e.g. `tiers[1].price_ids`.
fn at(index: usize, field: impl fmt::Display) -> String {
    format!("tiers[{index}].{field}")
}

/// `tiers[1] (PRO)`, or `tiers[1]` when the id is unusable.
fn tier_label(index: usize, tier: &Tier) -> String {
    if tier.id.as_str().is_empty() {
        format!("tiers[{index}]")
    } else {
        format!("tiers[{index}] ({})", tier.id)
    }
}

fn valid_tier_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn valid_price_id(price: &str) -> bool {
    !price.is_empty() && !price.chars().any(char::is_whitespace)
}

/// The ids and prices of the tiers checked so far, each with the first tier that used it: tier
/// ids are unique, and price ids are unique across the whole catalog.
#[derive(Default)]
struct Seen<'t> {
    ids: HashMap<&'t str, usize>,
    prices: HashMap<&'t str, usize>,
}

impl<'t> Seen<'t> {
    /// A tier id is well-formed and not used by an earlier tier.
    fn tier_id(&mut self, index: usize, tier: &'t Tier, problems: &mut Vec<CatalogProblem>) {
        let id = tier.id.as_str();
        let message = if !valid_tier_id(id) {
            format!("invalid tier id {id:?}: use letters, digits, '_' and '-' (e.g. \"PRO\")")
        } else if let Some(&first) = self.ids.get(id) {
            format!("duplicate tier id {id:?}: also used by tiers[{first}]")
        } else {
            self.ids.insert(id, index);
            return;
        };
        problems.push(CatalogProblem::new(at(index, "id"), message));
    }

    /// Each price id of the tier is well-formed and not used before, by any tier.
    fn price_ids(&mut self, tiers: &'t [Tier], index: usize, problems: &mut Vec<CatalogProblem>) {
        for (i, price) in tiers[index].price_ids.iter().enumerate() {
            let message = if !valid_price_id(price) {
                format!("invalid price id {price:?}: must be non-empty without spaces")
            } else if let Some(&first) = self.prices.get(price.as_str()) {
                format!(
                    "duplicate price id {price:?}: already used by {}",
                    tier_label(first, &tiers[first])
                )
            } else {
                self.prices.insert(price, index);
                continue;
            };
            problems.push(CatalogProblem::new(
                at(index, format_args!("price_ids[{i}]")),
                message,
            ));
        }
    }
}

fn name_is_not_empty(index: usize, tier: &Tier, problems: &mut Vec<CatalogProblem>) {
    if tier.name.trim().is_empty() {
        problems.push(CatalogProblem::new(at(index, "name"), "must not be empty"));
    }
}

/// The first tier is the free tier and has no price; every other tier has at least one (a paid
/// tier nobody can buy is unreachable, so it is a mistake).
fn only_paid_tiers_have_prices(index: usize, tier: &Tier, problems: &mut Vec<CatalogProblem>) {
    if index == 0 && !tier.price_ids.is_empty() {
        problems.push(CatalogProblem::new(
            at(index, "price_ids"),
            format!(
                "the first tier is the free tier and must have no price, found {}",
                tier.price_ids.join(", ")
            ),
        ));
    }
    if index > 0 && tier.price_ids.is_empty() {
        problems.push(CatalogProblem::new(
            at(index, "price_ids"),
            "a paid tier needs at least one price id, otherwise no subscription can reach it",
        ));
    }
}

/// Credits are never negative, and the free tier has none (they are granted per paid period).
fn credits_are_paid_and_not_negative(
    index: usize,
    tier: &Tier,
    problems: &mut Vec<CatalogProblem>,
) {
    let credits = tier.credits_per_period;
    let message = if credits < 0 {
        format!("must not be negative, found {credits}")
    } else if index == 0 && credits != 0 {
        format!(
            "must be 0 for the free tier (credits are granted per paid period), found {credits}"
        )
    } else {
        return;
    };
    problems.push(CatalogProblem::new(
        at(index, "credits_per_period"),
        message,
    ));
}

/// The grace period lies between zero and [`MAX_GRACE_PERIOD_DAYS`].
fn grace_period_is_in_range(index: usize, tier: &Tier, problems: &mut Vec<CatalogProblem>) {
    let message = if tier.grace_period < TimeDelta::zero() {
        "must not be negative".to_owned()
    } else if tier.grace_period > TimeDelta::days(MAX_GRACE_PERIOD_DAYS) {
        format!("must be at most {MAX_GRACE_PERIOD_DAYS} days")
    } else {
        return;
    };
    problems.push(CatalogProblem::new(at(index, "grace_period"), message));
}

fn metric_and_feature_names_are_not_empty(
    index: usize,
    tier: &Tier,
    problems: &mut Vec<CatalogProblem>,
) {
    for metric in tier.limits.keys().filter(|m| m.trim().is_empty()) {
        problems.push(CatalogProblem::new(
            at(index, format_args!("limits.{metric:?}")),
            "metric names must not be empty",
        ));
    }
    for feature in tier.features.keys().filter(|f| f.trim().is_empty()) {
        problems.push(CatalogProblem::new(
            at(index, format_args!("features.{feature:?}")),
            "feature names must not be empty",
        ));
    }
}

/// Every metric and every feature named on one tier is set on every tier: a name missing on a
/// tier is an error, not an implicit "unlimited" or `false`, so a typo in a name fails the load
/// instead of silently granting or withholding something.
fn every_tier_sets_every_metric_and_feature(tiers: &[Tier], problems: &mut Vec<CatalogProblem>) {
    let metric_owner = first_tier_naming(tiers, |tier| tier.limits.keys());
    let feature_owner = first_tier_naming(tiers, |tier| tier.features.keys());
    for (index, tier) in tiers.iter().enumerate() {
        for (&metric, &owner) in &metric_owner {
            if !tier.limits.contains_key(metric) {
                problems.push(CatalogProblem::new(
                    at(index, format_args!("limits.{metric}")),
                    format!(
                        "missing: {} sets a limit for {metric:?}, so every tier must \
                         (a number or \"unlimited\")",
                        tier_label(owner, &tiers[owner])
                    ),
                ));
            }
        }
        for (&feature, &owner) in &feature_owner {
            if !tier.features.contains_key(feature) {
                problems.push(CatalogProblem::new(
                    at(index, format_args!("features.{feature}")),
                    format!(
                        "missing: {} names the feature {feature:?}, so every tier must say \
                         true or false",
                        tier_label(owner, &tiers[owner])
                    ),
                ));
            }
        }
    }
}

/// Each name `names` gives for some tier, with the first tier that gives it.
fn first_tier_naming<'t, I>(
    tiers: &'t [Tier],
    names: impl Fn(&'t Tier) -> I,
) -> BTreeMap<&'t str, usize>
where
    I: Iterator<Item = &'t String>,
{
    let mut owner = BTreeMap::new();
    for (index, tier) in tiers.iter().enumerate() {
        for name in names(tier) {
            owner.entry(name.as_str()).or_insert(index);
        }
    }
    owner
}
