//! The catalog's types and lookups: tier ids, limits, tiers, the validated [`Catalog`] and the
//! problems that reject one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Grace period, in days, of a tier when the catalog does not say otherwise.
pub const DEFAULT_GRACE_PERIOD_DAYS: i64 = 3;

/// The longest grace period, in days, a catalog may configure (a larger value is taken as a typo).
pub const MAX_GRACE_PERIOD_DAYS: i64 = 365;

/// A tier's identifier as written in the catalog, e.g. `"PRO"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TierId(String);

impl TierId {
    /// Wraps an identifier without validating it (the catalog validates the ids it loads).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TierId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for TierId {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl From<String> for TierId {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl PartialEq<str> for TierId {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for TierId {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

/// How much of a metered action a tier allows per metering period.
///
/// Ordered so that a smaller limit sorts first and [`Limit::Unlimited`] sorts after every
/// [`Limit::Limited`]. Serializes as the number, or as the string `"unlimited"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Limit {
    /// At most this many per period.
    Limited(u64),
    /// No limit.
    Unlimited,
}

impl Limit {
    /// True when a total of `used_after` (usage including the request) stays within the limit.
    pub fn allows(&self, used_after: u64) -> bool {
        match self {
            Limit::Limited(max) => used_after <= *max,
            Limit::Unlimited => true,
        }
    }

    /// The limit as a number, `None` when unlimited.
    pub fn as_option(&self) -> Option<u64> {
        match self {
            Limit::Limited(max) => Some(*max),
            Limit::Unlimited => None,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Limited(max) => write!(f, "{max}"),
            Limit::Unlimited => f.write_str("unlimited"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Limited(max) => serializer.serialize_u64(*max),
            Limit::Unlimited => serializer.serialize_str("unlimited"),
        }
    }
}

/// One plan tier: the prices that buy it, what it allows and its grace period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// The tier's identifier, e.g. `"PRO"`.
    pub id: TierId,
    /// A display name, e.g. `"Pro"`.
    pub name: String,
    /// Position in the catalog, lowest first; 0 is the free tier.
    pub rank: usize,
    /// The Stripe prices (`price_…`) that buy this tier, e.g. a monthly and a yearly one.
    pub price_ids: Vec<String>,
    /// The limit of each metered action (e.g. `"api_calls"`) per metering period.
    pub limits: BTreeMap<String, Limit>,
    /// Whether each feature (e.g. `"custom_domain"`) is included.
    pub features: BTreeMap<String, bool>,
    /// Credits granted per paid billing period (0 for the free tier).
    pub credits_per_period: i64,
    /// How long paid access survives a failed payment.
    pub grace_period: TimeDelta,
}

impl Tier {
    /// True for the free tier (rank 0).
    pub fn is_free(&self) -> bool {
        self.rank == 0
    }

    /// The limit of a metered action, `None` when the catalog has no such metric.
    pub fn limit(&self, metric: &str) -> Option<Limit> {
        self.limits.get(metric).copied()
    }

    /// Whether a feature is included; `false` when the catalog has no such feature.
    pub fn feature(&self, name: &str) -> bool {
        self.features.get(name).copied().unwrap_or(false)
    }
}

/// What a paid invoice does when none of its prices (nor its subscription's) is in the
/// catalog: its period's credits depend on the tier, which is then unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownPrices {
    /// The free tier's credits (none) are granted and the event is done; a warning is logged.
    /// Right when the Stripe account sells other products than this catalog's.
    #[default]
    Free,
    /// The event fails (stored as failed, retried by the sweeper with backoff, answered 500 to
    /// Stripe): once the price is added to the catalog, the next attempt or a replay grants
    /// the credits, once. Right for an account that sells only this catalog.
    Fail,
}

/// A validated plan catalog: at least one tier, the first one free, prices unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalog {
    /// Never empty (checked when built).
    tiers: Vec<Tier>,
    /// What a paid invoice whose prices the catalog does not know does.
    unknown_prices: UnknownPrices,
    by_id: HashMap<String, usize>,
    by_price: HashMap<String, usize>,
    metrics: BTreeSet<String>,
    features: BTreeSet<String>,
}

impl Catalog {
    /// Builds the lookup tables of tiers that passed validation.
    pub(super) fn index(tiers: Vec<Tier>) -> Catalog {
        let mut by_id = HashMap::new();
        let mut by_price = HashMap::new();
        let mut metrics = BTreeSet::new();
        let mut features = BTreeSet::new();
        for (position, tier) in tiers.iter().enumerate() {
            by_id.insert(tier.id.as_str().to_owned(), position);
            for price in &tier.price_ids {
                by_price.insert(price.clone(), position);
            }
            metrics.extend(tier.limits.keys().cloned());
            features.extend(tier.features.keys().cloned());
        }
        Catalog {
            tiers,
            unknown_prices: UnknownPrices::default(),
            by_id,
            by_price,
            metrics,
            features,
        }
    }

    /// The same catalog with every tier's grace period for failed payments set to `grace`
    /// (an operator's override of the file's values), checked by the same rules.
    pub fn with_grace_period(&self, grace: TimeDelta) -> Result<Catalog, CatalogError> {
        let tiers = self
            .tiers
            .iter()
            .cloned()
            .map(|tier| Tier {
                grace_period: grace,
                ..tier
            })
            .collect();
        Catalog::from_tiers(tiers).map(|c| c.with_unknown_prices(self.unknown_prices))
    }

    /// The same catalog with `policy` for prices it does not know.
    pub fn with_unknown_prices(mut self, policy: UnknownPrices) -> Catalog {
        self.unknown_prices = policy;
        self
    }

    /// What a paid invoice whose prices this catalog does not know does (`unknown_prices`).
    pub fn unknown_prices(&self) -> UnknownPrices {
        self.unknown_prices
    }

    /// The free tier: the first (lowest) one, which has no price.
    pub fn free_tier(&self) -> &Tier {
        // Validation guarantees at least one tier.
        &self.tiers[0]
    }

    /// The tier with this id (matched exactly, case-sensitive).
    pub fn tier(&self, id: &str) -> Option<&Tier> {
        self.by_id.get(id).and_then(|&i| self.tiers.get(i))
    }

    /// The tier a Stripe price buys, if the price is in the catalog.
    pub fn tier_for_price(&self, price_id: &str) -> Option<&Tier> {
        self.by_price.get(price_id).and_then(|&i| self.tiers.get(i))
    }

    /// The highest tier bought by any of `price_ids`, with the price that buys it; `None` when
    /// the catalog knows none of them. A subscription with several items (a plan plus add-ons)
    /// is on the best plan among its items, whatever their order.
    pub fn highest_tier_for_prices<'p, I>(&self, price_ids: I) -> Option<(&Tier, &'p str)>
    where
        I: IntoIterator<Item = &'p str>,
    {
        price_ids
            .into_iter()
            .filter_map(|price| self.tier_for_price(price).map(|tier| (tier, price)))
            .fold(
                None,
                |best: Option<(&Tier, &str)>, (tier, price)| match best {
                    Some((held, _)) if held.rank >= tier.rank => best,
                    _ => Some((tier, price)),
                },
            )
    }

    /// All tiers, ordered from lowest (the free tier) to highest.
    pub fn tiers(&self) -> &[Tier] {
        &self.tiers
    }

    /// The names of all metered actions, sorted; every tier has a limit for each.
    pub fn metrics(&self) -> impl Iterator<Item = &str> {
        self.metrics.iter().map(String::as_str)
    }

    /// The names of all features, sorted; every tier says whether it includes each.
    pub fn features(&self) -> impl Iterator<Item = &str> {
        self.features.iter().map(String::as_str)
    }
}

/// Why a catalog was rejected: every problem found, in the order found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{}", render_problems(.problems))]
pub struct CatalogError {
    /// The problems; never empty.
    pub problems: Vec<CatalogProblem>,
}

/// One problem in a catalog and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{place}: {message}")]
pub struct CatalogProblem {
    /// Where: a path such as `tiers[1].limits.api_calls`, or `line 3, column 7` for TOML syntax.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl CatalogProblem {
    /// Builds a problem from its place and message.
    pub fn new(place: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            place: place.into(),
            message: message.into(),
        }
    }
}

fn render_problems(problems: &[CatalogProblem]) -> String {
    let mut out = match problems.len() {
        1 => "invalid plan catalog (1 problem):".to_owned(),
        n => format!("invalid plan catalog ({n} problems):"),
    };
    for problem in problems {
        out.push_str("\n  - ");
        out.push_str(&problem.to_string());
    }
    out
}
